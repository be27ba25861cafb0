#!/usr/bin/python3
"""Second factors from the client's side, end to end: the real `sealpost`
command against a real server (scripts/sealpost-stack).  TOTP codes are
computed here from the secret in the otpauth:// URI the client printed,
with Python's hmac (RFC 6238), sharing no code with client or server.
Prints TAP.

usage: test-client.py BUILD_DIR SOURCE_ROOT
"""
import base64
import hashlib
import hmac
import os
import re
import struct
import subprocess
import sys
import time
import urllib.parse

BUILD, TOP = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(TOP, 'tests', 'lib'))
import sptest  # noqa: E402
from sptest import ok, note  # noqa: E402
sptest.diag_lines = 30
SEALPOST = os.path.join(BUILD, 'client-core', 'sealpost')

st = sptest.Stack(BUILD, TOP, 'sp-factors-')


def totp(secret, step):
    """RFC 6238 / RFC 4226: HMAC-SHA1, 6 digits."""
    mac = hmac.new(secret, struct.pack('>Q', step), hashlib.sha1).digest()
    off = mac[-1] & 15
    v = struct.unpack('>I', mac[off:off + 4])[0] & 0x7fffffff
    return '%06d' % (v % 1000000)


def now_step():
    return int(time.time()) // 30


def run(cache, *args, extra=(), env_add=None, input=None):
    env = dict(os.environ, SEALPOST_PASSWORD=conf['USER1_PASSWORD'],
               SEALPOST_NO_KEYRING='1')
    env.pop('SEALPOST_TOTP', None)
    if env_add:
        env.update(env_add)
    cmd = [SEALPOST] + list(args) + ['--cache', os.path.join(st.tmp, cache),
                                     '--server', conf['SERVER'],
                                     '--ca', conf['CA_FILE'],
                                     '--address', conf['USER1']] + list(extra)
    return subprocess.run(cmd, env=env, capture_output=True, text=True,
                          input=input,
                          stdin=None if input is not None
                          else subprocess.DEVNULL, timeout=120)


def out(r):
    return 'rc=%d\nstdout:\n%s\nstderr:\n%s' % (r.returncode, r.stdout,
                                                 r.stderr)


def qr_matrix(text):
    """The half-block picture back into modules (1 dark), margin kept."""
    cells = {' ': (0, 0), '\u2580': (1, 0), '\u2584': (0, 1),
             '\u2588': (1, 1)}
    lines = [ln for ln in text.split('\n')
             if ln and set(ln) <= set(cells)]
    rows = []
    for ln in lines:
        rows.append([cells[c][0] for c in ln])
        rows.append([cells[c][1] for c in ln])
    return rows


def finder_at(m, y, x):
    """A QR finder pattern (7x7: dark ring, light ring, dark 3x3)."""
    for dy in range(7):
        for dx in range(7):
            ring = max(abs(dy - 3), abs(dx - 3))
            want = 0 if ring == 2 else 1
            if m[y + dy][x + dx] != want:
                return False
    return True


def qr_ok(text):
    m = qr_matrix(text)
    if len(m) < 29:
        return False, 'too few rows: %d' % len(m)
    w = len(m[0])
    size = w - 8                        # four-module quiet zone each side
    if (size - 21) % 4 != 0 or any(len(r) != w for r in m):
        return False, 'width %d is not a QR size' % w
    if any(m[y][x] for y in range(4) for x in range(w)):
        return False, 'quiet zone not light'
    return (finder_at(m, 4, 4) and finder_at(m, 4, 4 + size - 7) and
            finder_at(m, 4 + size - 7, 4)), 'size %d' % size


def scan_data(needles):
    """Which of needles occur in any file under DATA_DIR."""
    found = set()
    for root, _, files in os.walk(conf['DATA_DIR']):
        for f in files:
            try:
                with open(os.path.join(root, f), 'rb') as fh:
                    data = fh.read()
            except OSError:
                continue
            for n in needles:
                if n.encode() in data:
                    found.add(n)
    return found


try:
    subprocess.run([st.script, 'up', st.dir, '--no-welcome', '--no-bridge'],
                   env=dict(os.environ, SEALPOST_BUILD_DIR=BUILD,
                            SEALPOST_NO_BUILD='1',
                            SEALPOST_STACK_ACCOUNTS='1'),
                   check=True, stdout=subprocess.DEVNULL)
    conf = sptest.read_env(os.path.join(st.dir, 'stack.env'))

    # Device A logs in before any second factor exists.
    r = run('devA', 'sync')
    ok(r.returncode == 0, 'device A logs in (no second factor yet)', out(r))

    # ---- enrol TOTP on a terminal with a wrong code: QR shown, nothing
    # added.  script(1) gives the command a pty; stdin is passed through.
    cmd = ' '.join([SEALPOST, 'account', '2fa', 'add-totp', '--cache',
                    os.path.join(st.tmp, 'devA')])
    r = subprocess.run(['script', '-q', '-e', '-c', cmd, '/dev/null'],
                       input='000000\n', capture_output=True, text=True,
                       env=dict(os.environ, SEALPOST_NO_KEYRING='1',
                                SEALPOST_PASSWORD=conf['USER1_PASSWORD']),
                       timeout=120)
    tty_out = r.stdout.replace('\r', '')
    good, why = qr_ok(tty_out)
    ok(good, 'on a terminal, add-totp draws a QR code (finder patterns '
       'in three corners, quiet zone): ' + why, tty_out)
    ok('Code from the app: ' in tty_out and 'otpauth://totp/' in tty_out,
       'on a terminal it shows the URI and prompts for the code', tty_out)
    ok(r.returncode != 0 and 'does not match' in tty_out,
       'a wrong enrolment code adds nothing, and says why', tty_out)

    # ---- enrol TOTP for real: the URI on stdout, the code on stdin.
    p = subprocess.Popen([SEALPOST, 'account', '2fa', 'add-totp', '--cache',
                          os.path.join(st.tmp, 'devA')],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, SEALPOST_NO_KEYRING='1',
                                  SEALPOST_PASSWORD=conf['USER1_PASSWORD']))
    printed = ''
    uri = None
    for line in p.stdout:
        printed += line
        if line.startswith('otpauth://'):
            uri = line.strip()
        if line.startswith('Code from the app'):
            break
    ok(uri is not None, 'add-totp prints an otpauth:// URI', printed)
    u = urllib.parse.urlparse(uri or 'otpauth://x/y')
    q = urllib.parse.parse_qs(u.query)
    ok(u.netloc == 'totp' and urllib.parse.unquote(u.path) ==
       '/sealpost:' + conf['USER1'] and q.get('issuer') == ['sealpost'] and
       q.get('digits') == ['6'] and q.get('period') == ['30'] and
       q.get('algorithm') == ['SHA1'],
       'the URI names the account, issuer, SHA1, 6 digits, 30 s', uri)
    b32 = q.get('secret', [''])[0]
    secret = base64.b32decode(b32 + '=' * (-len(b32) % 8))
    ok(len(secret) == 20, 'the secret is 160 bits', b32)
    good, why = qr_ok(printed)
    ok(good, 'the QR code is printed when not a terminal too: ' + why,
       printed)
    enrol_step = now_step()
    rest, err = p.communicate(totp(secret, enrol_step) + '\n', timeout=120)
    ok(p.returncode == 0 and 'authenticator app added' in rest,
       'add-totp confirmed with a current code', rest + err)

    r = run('devA', 'account', '2fa', 'list')
    ok(r.returncode == 0 and re.search(r'^totp\s+totp\s', r.stdout, re.M),
       '2fa list shows the authenticator app', out(r))

    # ---- FIDO2: no key on this machine (no /dev/uhid for a virtual
    # one), so only the refusal is checked: clear, and nothing added.
    r = run('devA', 'account', '2fa', 'add-key', extra=[
        '--device', os.path.join(st.tmp, 'no-such-hidraw')])
    ok(r.returncode == 1 and 'security key' in r.stderr,
       'add-key without a device fails clearly', out(r))

    # ---- a device with a saved session never asks.
    r = run('devA', 'sync')
    ok(r.returncode == 0, 'device A (saved session) syncs without a code',
       out(r))

    # ---- a new device needs the second factor.
    r = run('devB', 'sync')
    ok(r.returncode == 1 and 'needs a second factor' in r.stderr and
       '--totp' in r.stderr,
       'a new device without a code is refused, naming the options',
       out(r))
    # After the enrolment's step, and current however slow this machine
    # is: the server takes the step before, at or after its own.
    step = max(enrol_step + 1, now_step())
    wrong = '%06d' % ((int(totp(secret, step)) + 500000) % 1000000)
    while wrong in (totp(secret, s) for s in range(step - 3, step + 3)):
        wrong = '%06d' % ((int(wrong) + 1) % 1000000)
    r = run('devB', 'sync', extra=['--totp', wrong])
    ok(r.returncode == 1 and 'second factor refused' in r.stderr,
       'a wrong code is refused with a clear message', out(r))
    code = totp(secret, step)
    r = run('devB', 'sync', env_add={'SEALPOST_TOTP': code})
    ok(r.returncode == 0, 'a new device logs in with a fresh code '
       '($SEALPOST_TOTP)', out(r))
    r = run('devC', 'sync', extra=['--totp', code])
    ok(r.returncode == 1 and 'second factor refused' in r.stderr,
       'the same code is refused the second time', out(r))
    r = run('devB', 'sync')
    ok(r.returncode == 0, 'device B, once authorised, resumes without a '
       'code', out(r))

    # ---- recovery codes.
    r = run('devA', 'account', '2fa', 'recovery-codes')
    codes = re.findall(r'^  ([0-9a-z]{5}-[0-9a-z]{5})$', r.stdout, re.M)
    ok(r.returncode == 0 and len(codes) == 10 and len(set(codes)) == 10,
       'recovery-codes shows ten distinct codes', out(r))
    codes += ['x'] * 3
    r = run('devC', 'sync', extra=['--recovery-code', codes[0].upper()])
    ok(r.returncode == 0, 'a recovery code logs a new device in (case '
       'ignored)', out(r))
    r = run('devD', 'sync', extra=['--recovery-code', codes[0]])
    ok(r.returncode == 1 and 'second factor refused' in r.stderr,
       'the same recovery code is refused the second time', out(r))
    r = run('devD', 'sync', extra=['--recovery-code', codes[1]])
    ok(r.returncode == 0, 'another recovery code works once', out(r))
    r = run('devA', 'account', '2fa', 'list')
    ok(r.returncode == 0 and re.search(r'^recovery-code\s.*\b8 left',
                                       r.stdout, re.M),
       '2fa list counts eight codes left', out(r))

    # ---- the recovery key (account recover) replaces the password, not
    # the second factor.  The "new" password is the current one, so the
    # devices above keep their caches.
    rk = os.path.join(st.tmp, 'recovery-key')
    with open(rk, 'w') as f:
        f.write(conf['USER1_RECOVERY'] + '\n')
    renv = {'SEALPOST_NEW_PASSWORD': conf['USER1_PASSWORD']}
    cost = ['--kdf-ops', '2', '--kdf-mem-mib', '64']
    r = run('devR', 'account', 'recover', extra=['--recovery-file', rk] + cost,
            env_add=renv)
    ok(r.returncode == 1 and 'second factor' in r.stderr,
       'account recover still needs the second factor', out(r))
    r = run('devR', 'account', 'recover', extra=['--recovery-file', rk,
            '--recovery-code', codes[9]] + cost, env_add=renv)
    ok(r.returncode == 0 and 'recovered' in r.stdout,
       'with it, the recovery key sets the password', out(r))


    # ---- passwd's fresh login answers the second factor too; the
    # device's session ends, so its next login needs one again.
    r = run('devA', 'account', 'passwd', extra=['--recovery-code',
                                                  codes[3]],
            env_add={'SEALPOST_NEW_PASSWORD': 'a new password 1'})
    ok(r.returncode == 0 and 'password changed' in r.stdout,
       'passwd on an account with TOTP (second factor at its login)',
       out(r))
    conf['USER1_PASSWORD'] = 'a new password 1'
    r = run('devA', 'sync')
    ok(r.returncode == 1 and 'needs a second factor' in r.stderr,
       'after passwd the device logs in again, with a second factor',
       out(r))
    r = run('devA', 'sync', extra=['--recovery-code', codes[4]])
    ok(r.returncode == 0, 'the new password and a recovery code log it in',
       out(r))

    # ---- remove: needs a fresh second factor.
    r = run('devA', 'account', '2fa', 'remove', 'totp')
    ok(r.returncode == 1 and 'needs a second factor' in r.stderr,
       'remove without a second factor is refused', out(r))
    r = run('devA', 'account', '2fa', 'remove', 'totp',
            extra=['--recovery-code', codes[5]])
    ok(r.returncode == 0 and 'removed' in r.stdout,
       'remove totp with a fresh second factor', out(r))
    r = run('devA', 'account', '2fa', 'list')
    ok(r.returncode == 0 and not re.search(r'^totp', r.stdout, re.M),
       'the authenticator app is gone from the list', out(r))
    r = run('devE', 'sync')
    ok(r.returncode == 0, 'with only recovery codes left, a new device '
       'logs in without a second factor', out(r))


    # ---- events: listed from the account's log, sealed on the server.
    r = run('devA', 'account', 'events')
    ev = r.stdout
    ok(r.returncode == 0 and re.search(
        r'new session\s+sealpost-cli', ev),
       'events show a login from a new device', out(r))
    ok(re.search(r'factor added\s+an authenticator app \(TOTP\) was added',
                 ev), 'events show the authenticator app added', ev)
    ok(re.search(r'factor added\s+ten new recovery codes', ev) and
       len(re.findall(r'recovery code used', ev)) == 6 and
       len(re.findall(r'recovery key used', ev)) == 2,
       'events show new recovery codes, each of six used (one by account '
       'recover), and both times the recovery key was proven', ev)
    ok(re.search(r'factor removed\s+the authenticator app \(TOTP\) was '
                 r'removed', ev), 'events show the factor removed', ev)
    note('events as listed:\n' + ev)
    ok(len(re.findall(r'new session', ev)) == 9 and
       len(re.findall(r'password changed', ev)) == 2,
       'one new-session event per login (A, B, C, D, recover, passwd, A '
       'again, remove, E) and both password changes',
       ev)
    leaked = scan_data(['an authenticator app (TOTP) was added',
                        'the authenticator app (TOTP) was removed',
                        'ten new recovery codes', 'a recovery code was used',
                        b32] + codes[:10])
    ok(not leaked, 'the server\'s files hold neither the events\' text, '
       'the TOTP secret nor a recovery code', repr(leaked))
    r = run('devA', 'ls')
    ok(r.returncode == 0 and 'authenticator' not in r.stdout,
       'the mailbox model skips the events', out(r))
except Exception as e:                  # noqa: BLE001
    ok(False, 'the test ran to the end', repr(e))
finally:
    st.cleanup()
sptest.finish()
