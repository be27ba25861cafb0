#!/usr/bin/python3
"""OpenPGP interop end to end, with the gpg command line as the outside
party: a local stack (sealpost-stack), gpg users sending PGP mail through
the gateway (smtplib), the bridge serving it (imaplib), keys learnt by
`sealpost keys import`, WKD and Autocrypt.  Prints TAP.

usage: test-pgp.py BUILD_DIR SOURCE_ROOT
"""
import email.message
import email.utils
import imaplib
import os
import re
import smtplib
import ssl
import subprocess
import sys
import time
import hashlib

BUILD, TOP = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(TOP, 'tests', 'lib'))
import sptest  # noqa: E402
from sptest import ok, note  # noqa: E402
sptest.diag_lines = 30
BRIDGE = os.path.join(BUILD, 'bridge', 'sealpost-bridge')
SEALPOST = os.path.join(BUILD, 'client-core', 'sealpost')
ENCTOOL = os.path.join(BUILD, 'tests', 'pgp', 'pgpmail-tool')

st = sptest.Stack(BUILD, TOP, 'sp-pgp-')
tmp, stack_dir, procs = st.tmp, st.dir, st.procs


def cleanup():
    def kill_agents():
        for home in gpg_homes:
            subprocess.run(['gpgconf', '--homedir', home, '--kill', 'all'],
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    st.cleanup(kill_agents)


# ---- gpg, the outside party ----------------------------------------------

gpg_homes = []


def gpg_home(name):
    home = os.path.join(tmp, 'gnupg-' + name)
    os.mkdir(home, 0o700)
    gpg_homes.append(home)
    return home


def gpg(home, *args, input=None, check=True):
    r = subprocess.run(['gpg', '--homedir', home, '--batch', '--yes',
                        '--no-tty', '--pinentry-mode', 'loopback',
                        '--passphrase', '', '--trust-model', 'always']
                       + list(args), input=input, capture_output=True)
    if check and r.returncode != 0:
        raise RuntimeError('gpg %s: %s' % (' '.join(args),
                                           r.stderr.decode()))
    return r


def gpg_newkey(home, uid):
    gpg(home, '--quick-gen-key', uid, 'future-default', 'default', 'never')
    out = gpg(home, '--with-colons', '--list-keys', uid).stdout.decode()
    fprs = [l.split(':')[9] for l in out.splitlines() if l.startswith('fpr')]
    return fprs[0]


def gpg_export(home, who, path=None, minimal=False):
    args = ['--export']
    if minimal:
        args = ['--export-options', 'export-minimal', '--export']
    data = gpg(home, *args, who).stdout
    if path:
        with open(path, 'wb') as f:
            f.write(data)
    return data


# ---- messages --------------------------------------------------------------

def inner_entity(text):
    return ('Content-Type: text/plain; charset=utf-8\r\n'
            'Content-Transfer-Encoding: 8bit\r\n\r\n' + text + '\r\n')


def outer(frm, to, subject, extra=''):
    return ('From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n'
            'Message-ID: %s\r\n%s' % (frm, to, subject,
                                      email.utils.formatdate(),
                                      email.utils.make_msgid('pgp'), extra))


def pgp_mime_encrypted(home, signer, frm, to, subject, text, extra=''):
    args = ['--armor', '--encrypt', '-r', to]
    if signer:
        args = ['--armor', '--sign', '-u', signer, '--encrypt', '-r', to]
    ct = gpg(home, *args, input=inner_entity(text).encode()).stdout.decode()
    b = 'b-' + os.urandom(8).hex()
    return (outer(frm, to, subject, extra) +
            'MIME-Version: 1.0\r\nContent-Type: multipart/encrypted; '
            'protocol="application/pgp-encrypted"; boundary="%s"\r\n\r\n'
            'OpenPGP/MIME\r\n--%s\r\nContent-Type: application/pgp-encrypted'
            '\r\n\r\nVersion: 1\r\n\r\n--%s\r\nContent-Type: '
            'application/octet-stream; name="encrypted.asc"\r\n\r\n%s\r\n'
            '--%s--\r\n' % (b, b, b, ct.replace('\n', '\r\n'), b))


def pgp_mime_signed(home, signer, frm, to, subject, text, tamper=None):
    part = inner_entity(text)
    # RFC 3156 5: the CRLF before the delimiter is not signed.
    sig = gpg(home, '--armor', '--detach-sign', '-u', signer,
              input=part[:-2].encode()).stdout.decode()
    if tamper:
        part = part.replace(text, tamper)
    b = 's-' + os.urandom(8).hex()
    return (outer(frm, to, subject) +
            'MIME-Version: 1.0\r\nContent-Type: multipart/signed; '
            'micalg=pgp-sha256; protocol="application/pgp-signature"; '
            'boundary="%s"\r\n\r\n--%s\r\n%s\r\n--%s\r\nContent-Type: '
            'application/pgp-signature; name="signature.asc"\r\n\r\n%s\r\n'
            '--%s--\r\n' % (b, b, part[:-2], b, sig.replace('\n', '\r\n'), b))


def inline_encrypted(home, signer, frm, to, subject, text):
    ct = gpg(home, '--armor', '--sign', '-u', signer, '--encrypt', '-r', to,
             input=text.encode()).stdout.decode()
    return (outer(frm, to, subject) +
            'MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii'
            '\r\n\r\nSee below.\r\n\r\n%s' % ct.replace('\n', '\r\n'))


def autocrypt_header(addr, keydata):
    import base64
    b64 = base64.b64encode(keydata).decode()
    lines = [b64[i:i + 72] for i in range(0, len(b64), 72)]
    return 'Autocrypt: addr=%s; prefer-encrypt=mutual; keydata=\r\n %s\r\n' % (
        addr, '\r\n '.join(lines))


# ---- the stack ------------------------------------------------------------

def stack_up():
    return st.up(2, welcome=False, no_build=True)


def send(conf, frm, to, msg):
    host, port = conf['GATEWAY_SMTP'].rsplit(':', 1)
    with smtplib.SMTP(host, int(port), timeout=30) as s:
        s.sendmail(frm, [to], msg.encode())


class Imap:
    def __init__(self, conf, port=None, cafile=None):
        host, p = conf['BRIDGE_IMAP'].rsplit(':', 1)
        self.m = imaplib.IMAP4('127.0.0.1', port or int(p))
        self.m.starttls(ssl_context=ssl.create_default_context(
            cafile=cafile or conf['BRIDGE_CA_FILE']))
        self.m.login(conf['USER1'], conf['USER1_BRIDGE_PASSWORD'])
        self.m.select('INBOX')

    def by_subject(self, subject, timeout=20):
        end = time.time() + timeout
        while True:
            self.m.noop()
            typ, data = self.m.uid('SEARCH', None, 'SUBJECT', '"%s"' % subject)
            uids = data[0].split() if typ == 'OK' and data[0] else []
            if uids or time.time() > end:
                return uids[-1].decode() if uids else None
            time.sleep(0.2)

    def fetch(self, uid, items='(RFC822.SIZE BODY.PEEK[])'):
        typ, data = self.m.uid('FETCH', uid, items)
        if typ != 'OK' or not data or data[0] is None:
            return None, None
        head = data[0][0].decode()
        body = data[0][1]
        m = re.search(r'RFC822\.SIZE (\d+)', head)
        return (int(m.group(1)) if m else None), body

    def close(self):
        try:
            self.m.logout()
        except Exception:
            pass


def outcome(body):
    m = re.search(rb'^X-Sealpost-PGP: ([^\r\n]*)', body, re.M)
    return m.group(1).decode() if m else None


def main():
    conf = stack_up()
    user, domain = conf['USER1'], conf['USER1'].split('@')[1]
    acct_dir = os.path.join(stack_dir, 'bridge', 'accounts', user)
    if not os.path.isdir(acct_dir):
        cands = os.listdir(os.path.join(stack_dir, 'bridge', 'accounts'))
        acct_dir = os.path.join(stack_dir, 'bridge', 'accounts',
                                [c for c in cands if user in c][0])
    pwfile = os.path.join(tmp, 'user1.pw')
    with open(pwfile, 'w') as f:
        f.write(conf['USER1_PASSWORD'] + '\n')

    def sealpost(*args):
        return subprocess.run([SEALPOST] + list(args) +
                              ['--cache', acct_dir, '--password-file',
                               pwfile], capture_output=True, text=True)

    # -- WKD: the server serves the account's key under gpg's hash --------
    src = gpg_home('source')
    local = user.split('@')[0]
    zb = 'ybndrfg8ejkmcpqxot1uwisza345h769'
    d = hashlib.sha1(local.lower().encode()).digest()
    bits = ''.join('{:08b}'.format(x) for x in d)
    h = ''.join(zb[int(bits[i:i + 5], 2)] for i in range(0, 160, 5))
    url = 'https://%s/.well-known/openpgpkey/%s/hu/%s?l=%s' % (
        conf['SERVER'], domain, h, local)
    r = subprocess.run(['curl', '-sf', '--cacert', conf['CA_FILE'], url],
                       capture_output=True)
    ok(r.returncode == 0 and len(r.stdout) > 100,
       'WKD serves a key for the hashed local part', r.stderr)
    keyfile = os.path.join(tmp, 'user1.pgp')
    with open(keyfile, 'wb') as f:
        f.write(r.stdout)
    gpg(src, '--import', keyfile)
    out = gpg(src, '--with-wkd-hash', '--list-keys', user).stdout.decode()
    ok(('%s@%s' % (h, domain)) in out,
       "the hash served matches gpg's --with-wkd-hash", out)
    bad = url.replace(h, 'y' * 32)
    r = subprocess.run(['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}',
                        '--cacert', conf['CA_FILE'], bad],
                       capture_output=True, text=True)
    ok(r.stdout == '404', 'a wrong hash for l= is 404', r.stdout)

    # -- gpg sends signed and encrypted mail: unknown key first -----------
    src_addr = 'source@outside.test'
    src_fpr = gpg_newkey(src, 'Source <%s>' % src_addr)
    src_key = os.path.join(tmp, 'source.asc')
    gpg_export(src, src_fpr, src_key)
    subj = 'pgp-mime one'
    send(conf, src_addr, user, pgp_mime_encrypted(
        src, src_fpr, src_addr, user, subj, 'the secret is 4242'))
    im = Imap(conf)
    uid = im.by_subject(subj)
    ok(uid is not None, 'the PGP/MIME message arrives in INBOX')
    size, body = im.fetch(uid)
    oc = outcome(body or b'') or ''
    ok(b'the secret is 4242' in (body or b''),
       'the bridge serves it decrypted', body)
    ok(oc.startswith('decrypted; format=pgp-mime; signature=unknown-key'),
       'the signer is an unknown key before it is known', oc)
    ok(src_fpr in oc, 'the field names the signing key', oc)
    ok(size == len(body), 'RFC822.SIZE is the served size (%s, %d)' %
       (size, len(body)))
    ok(b'multipart/encrypted' not in body and
       b'Subject: pgp-mime one' in body,
       'outer headers kept, encrypted structure gone', body[:600])
    typ, bs = im.m.uid('FETCH', uid, '(BODYSTRUCTURE)')
    ok(typ == 'OK' and b'"TEXT" "PLAIN"' in bs[0].upper(),
       'BODYSTRUCTURE describes the decrypted form', bs)

    # -- the key imported: verified ----------------------------------------
    r = sealpost('keys', 'import', src_key)
    ok(r.returncode == 0 and src_fpr in r.stdout,
       'sealpost keys import pins the key', r.stdout + r.stderr)
    size, body = im.fetch(uid)
    oc = outcome(body or b'') or ''
    ok(oc.startswith('decrypted; format=pgp-mime; signature=verified; '
                     'signer=%s; addr=%s' % (src_fpr, src_addr)),
       'the same message is verified once the key is known', oc)

    # -- a tampered signature is bad, and shown --------------------------
    subj = 'tampered'
    send(conf, src_addr, user, pgp_mime_signed(
        src, src_fpr, src_addr, user, subj, 'pay 10 EUR',
        tamper='pay 99 EUR'))
    uid = im.by_subject(subj)
    size, body = im.fetch(uid)
    oc = outcome(body or b'') or ''
    ok(oc.startswith('signed; format=pgp-mime; signature=bad'),
       'a tampered signature is reported as bad', oc)
    ok(b'pay 99 EUR' in (body or b''), 'and the content is still shown')
    subj = 'signed fine'
    send(conf, src_addr, user, pgp_mime_signed(
        src, src_fpr, src_addr, user, subj, 'pay 10 EUR'))
    uid = im.by_subject(subj)
    size, body = im.fetch(uid)
    oc = outcome(body or b'') or ''
    ok(oc.startswith('signed; format=pgp-mime; signature=verified'),
       'an untouched multipart/signed verifies', oc)

    # -- inline PGP --------------------------------------------------------
    subj = 'inline one'
    send(conf, src_addr, user, inline_encrypted(
        src, src_fpr, src_addr, user, subj, 'inline secret 777\n'))
    uid = im.by_subject(subj)
    size, body = im.fetch(uid)
    oc = outcome(body or b'') or ''
    ok(b'inline secret 777' in (body or b'') and
       b'BEGIN PGP MESSAGE' not in (body or b''),
       'inline PGP is decrypted', body)
    ok(oc.startswith('decrypted; format=inline; signature=verified'),
       'and verified', oc)

    # -- a forged outcome field in plain mail is replaced ----------------
    subj = 'forged field'
    send(conf, src_addr, user, outer(src_addr, user, subj,
         'X-Sealpost-PGP: decrypted; signature=verified\r\n') +
         '\r\nhello\r\n')
    uid = im.by_subject(subj)
    size, body = im.fetch(uid)
    fields = re.findall(rb'^X-Sealpost-PGP:[^\r\n]*', body or b'', re.M)
    ok(fields == [b'X-Sealpost-PGP: not-encrypted; signature=none'],
       'a forged X-Sealpost-PGP field is removed', fields)

    # -- Autocrypt teaches a key; a changed key is refused ---------------
    oth = gpg_home('other')
    oth_addr = 'other@outside.test'
    oth_fpr = gpg_newkey(oth, oth_addr)
    gpg(oth, '--import', keyfile)
    subj = 'autocrypt one'
    send(conf, oth_addr, user, pgp_mime_encrypted(
        oth, oth_fpr, oth_addr, user, subj, 'hello via autocrypt',
        extra=autocrypt_header(oth_addr, gpg_export(oth, oth_fpr,
                                                    minimal=True))))
    uid = im.by_subject(subj)
    size, body = im.fetch(uid)
    oc = outcome(body or b'') or ''
    ok(oc.startswith('decrypted; format=pgp-mime; signature=verified; '
                     'signer=%s' % oth_fpr),
       'an Autocrypt header teaches the key', oc)
    r = sealpost('keys', 'show', oth_addr)
    oth2 = gpg_home('other2')
    oth2_fpr = gpg_newkey(oth2, oth_addr)
    gpg(oth2, '--import', keyfile)
    subj = 'autocrypt changed'
    send(conf, oth_addr, user, pgp_mime_encrypted(
        oth2, oth2_fpr, oth_addr, user, subj, 'new key here',
        extra=autocrypt_header(oth_addr, gpg_export(oth2, oth2_fpr,
                                                    minimal=True))))
    uid = im.by_subject(subj)
    size, body = im.fetch(uid)
    oc = outcome(body or b'') or ''
    ok(oc.startswith('decrypted; format=pgp-mime; signature=unknown-key'),
       'a changed key is not used silently', oc)
    r = sealpost('keys', 'accept', oth_addr, '--fingerprint', '0' * 40)
    ok(r.returncode != 0, 'accept with the wrong fingerprint is refused',
       r.stdout + r.stderr)
    r = sealpost('keys', 'accept', oth_addr, '--fingerprint', oth2_fpr)
    ok(r.returncode == 0 and oth2_fpr in r.stdout,
       'sealpost keys accept takes the changed key', r.stdout + r.stderr)
    size, body = im.fetch(uid)
    oc = outcome(body or b'') or ''
    ok(oc.startswith('decrypted; format=pgp-mime; signature=verified; '
                     'signer=%s' % oth2_fpr), 'then it verifies', oc)

    # -- WKD from the client side -----------------------------------------
    r = sealpost('keys', 'wkd', conf['USER2'], '--wkd-base',
                 'https://' + conf['SERVER'], '--wkd-ca', conf['CA_FILE'])
    ok(r.returncode == 0 and 'pinned the OpenPGP key' in r.stdout,
       'sealpost keys wkd fetches and pins over HTTPS', r.stdout + r.stderr)
    r = sealpost('keys', 'wkd', 'nobody@' + domain, '--wkd-base',
                 'https://' + conf['SERVER'], '--wkd-ca', conf['CA_FILE'])
    ok(r.returncode != 0 and '404' in r.stderr,
       'an unknown address is not found', r.stdout + r.stderr)
    # -- sealpost read shows the outcome ---------------------------------
    r = sealpost('ls')
    mid = [l.split()[0] for l in r.stdout.splitlines() if 'inline one' in l]
    r = sealpost('read', '--peek', mid[0]) if mid else r
    ok(mid and r.returncode == 0 and 'inline secret 777' in r.stdout and
       'openpgp: decrypted; format=inline; signature=verified' in r.stderr,
       'sealpost read shows it decrypted, with the outcome', r.stdout[-400:] +
       r.stderr)

    # -- revoked and expired keys are refused, saying so -----------------
    r = sealpost('keys', 'show', src_addr)
    ok(r.returncode == 0 and src_fpr in r.stdout and 'usable' in r.stdout,
       'keys show: a usable OpenPGP pin', r.stdout + r.stderr)
    old = gpg_home('old')
    old_addr = 'old@outside.test'
    gpg(old, '--faked-system-time', '20200101T000000!', '--quick-gen-key',
        old_addr, 'future-default', 'default', '1d')
    old_key = os.path.join(tmp, 'old.asc')
    gpg_export(old, old_addr, old_key)
    r = sealpost('keys', 'import', old_key)
    r = sealpost('keys', 'show', old_addr)
    ok(r.returncode == 1 and 'EXPIRED' in r.stderr,
       'an expired key is refused with a clear message', r.stdout + r.stderr)
    rev = gpg_home('rev')
    rev_addr = 'revoked@outside.test'
    rev_fpr = gpg_newkey(rev, rev_addr)
    with open(os.path.join(rev, 'openpgp-revocs.d', rev_fpr + '.rev')) as f:
        cert = f.read().replace(':-----BEGIN', '-----BEGIN')
    gpg(rev, '--import', input=cert.encode())
    rev_key = os.path.join(tmp, 'rev.asc')
    gpg_export(rev, rev_fpr, rev_key)
    r = sealpost('keys', 'import', rev_key)
    r = sealpost('keys', 'show', rev_addr)
    ok(r.returncode == 1 and 'REVOKED' in r.stderr,
       'a revoked key is refused with a clear message', r.stdout + r.stderr)
    im.close()

    # -- --pgp-passthrough hands the original over ------------------------
    home = os.path.join(tmp, 'bridge2')
    out = subprocess.run([BRIDGE, '--home', home, 'accounts', 'add',
                          '--address', user, '--server', conf['SERVER'],
                          '--ca', conf['CA_FILE'], '--password-file', pwfile],
                         capture_output=True, text=True)
    bpw = re.search(r'bridge password \(for your mail client\): (\S+)',
                    out.stdout + out.stderr)
    log = open(os.path.join(tmp, 'bridge2.log'), 'w')
    p = subprocess.Popen([BRIDGE, '--home', home, 'serve', '--imap',
                          '127.0.0.1:0', '--password-file', pwfile,
                          '--pgp-passthrough'],
                         stdout=subprocess.PIPE, stderr=log, text=True)
    procs.append(p)
    line = p.stdout.readline()
    ok(bpw is not None and line.startswith('imap'),
       'a second bridge with --pgp-passthrough starts', out.stdout + line)
    if bpw and line.startswith('imap'):
        c2 = dict(conf, USER1_BRIDGE_PASSWORD=bpw.group(1))
        im2 = Imap(c2, port=int(line.split()[1].rsplit(':', 1)[1]),
                   cafile=os.path.join(home, 'tls', 'cert.pem'))
        uid = im2.by_subject('pgp-mime one')
        size, body = im2.fetch(uid)
        ok(body is not None and b'multipart/encrypted' in body and
           b'-----BEGIN PGP MESSAGE-----' in body and
           outcome(body) is None,
           'passthrough serves the encrypted original', body)
        im2.close()

    # -- sp_pgpmail_encrypt: gpg decrypts and verifies --------------------
    me = gpg_home('me')
    me_fpr = gpg_newkey(me, 'Me <me@%s>' % domain)
    me_sec = os.path.join(tmp, 'me.sec')
    with open(me_sec, 'wb') as f:
        f.write(gpg(me, '--export-secret-keys', me_fpr).stdout)
    me_pub = os.path.join(tmp, 'me.pub')
    gpg_export(me, me_fpr, me_pub)
    gpg(src, '--import', me_pub)
    plain = os.path.join(tmp, 'plain.eml')
    with open(plain, 'w') as f:
        f.write(outer('me@' + domain, src_addr, 'to gpg') +
                'Content-Type: text/plain; charset=utf-8\r\n\r\n'
                'sent through sp_pgpmail_encrypt\r\n')
    r = subprocess.run([ENCTOOL, 'encrypt', plain, me_sec, me_pub,
                        src_key, me_pub], capture_output=True)
    ok(r.returncode == 0 and b'multipart/encrypted' in r.stdout and
       b'Autocrypt: addr=me@' in r.stdout,
       'sp_pgpmail_encrypt builds multipart/encrypted with Autocrypt',
       r.stderr)
    m = re.search(rb'-----BEGIN PGP MESSAGE-----.*?-----END PGP MESSAGE-----',
                  r.stdout, re.S)
    d = gpg(src, '--status-fd', '1', '--decrypt', input=m.group(0) if m
            else b'', check=False)
    ok(d.returncode == 0 and b'[GNUPG:] GOODSIG' in d.stdout and
       me_fpr.encode() in d.stdout and
       b'sent through sp_pgpmail_encrypt' in d.stdout,
       'gpg decrypts it and verifies the signature', d.stdout + d.stderr)
    d = gpg(me, '--decrypt', input=m.group(0) if m else b'', check=False)
    ok(d.returncode == 0, 'the sender can read its own copy', d.stderr)


try:
    main()
except Exception as e:
    import traceback
    for line in traceback.format_exc().splitlines():
        note(line)
    ok(False, 'no exception: %s' % e)
finally:
    cleanup()
sptest.finish()
