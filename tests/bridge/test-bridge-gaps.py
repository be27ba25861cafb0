#!/usr/bin/python3
"""sealpost-bridge: the IMAP gaps of issue 6, end to end against a local
stack and a bridge of the test's own serving two accounts.

- modified UTF-7 folder names (RFC 3501 5.1.3) for every command that
  takes or shows one, and UTF-8 after ENABLE UTF8=ACCEPT / IMAP4rev2;
- writes run on a worker: while account 1's STORE waits for the server
  (its connection goes through a proxy the test holds), account 2's
  commands are answered, account 1's other connection waits its turn,
  and pipelined commands keep their order;
- SEARCH TEXT/BODY from the encrypted search index: substring semantics,
  BODY vs TEXT, base64 and quoted-printable parts, messages that arrive
  from another device (follow thread) and that leave;
- neomutt reads a message in batch mode.

usage: test-bridge-gaps.py BUILD_DIR SOURCE_ROOT
"""
import imaplib
import os
import select
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time

BUILD, TOP = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(TOP, 'tests', 'lib'))
import sptest  # noqa: E402
from sptest import ok, note  # noqa: E402
BRIDGE = os.path.join(BUILD, 'bridge', 'sealpost-bridge')
SEALPOST = os.path.join(BUILD, 'client-core', 'sealpost')

st = sptest.Stack(BUILD, TOP, 'sp-gaps-')
tmp, stack_dir, procs = st.tmp, st.dir, st.procs


def cleanup():
    st.cleanup()


def stack_up():
    return st.up(2)


class HoldProxy:
    """TCP forwarder to the sync server.  While held, bytes from the
    bridge wait in the proxy: the bridge's next round trip cannot end
    until the test releases it, whatever the machine's speed."""

    def __init__(self, target):
        self.target = target
        self.flowing = threading.Event()
        self.flowing.set()
        self.ls = socket.socket()
        self.ls.bind(('127.0.0.1', 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            host, port = self.target.rsplit(':', 1)
            u = socket.create_connection((host, int(port)))
            threading.Thread(target=self.pump, args=(c, u, True),
                             daemon=True).start()
            threading.Thread(target=self.pump, args=(u, c, False),
                             daemon=True).start()

    def pump(self, a, b, upstream):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                if upstream:
                    self.flowing.wait()
                b.sendall(d)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def add_account(home, conf, n, server):
    pw = os.path.join(tmp, 'u%d.pw' % n)
    with open(pw, 'w') as f:
        f.write(conf['USER%d_PASSWORD' % n] + '\n')
    out = subprocess.run([BRIDGE, '--home', home, 'accounts', 'add',
                          '--address', conf['USER%d' % n], '--server',
                          server, '--ca', conf['CA_FILE'],
                          '--password-file', pw],
                         capture_output=True, text=True)
    return out.stdout.strip().split()[-1] if out.returncode == 0 else None, pw


def serve(home, pwfiles):
    log = open(os.path.join(tmp, 'bridge.log'), 'w')
    args = [BRIDGE, '--home', home, 'serve', '--imap', '127.0.0.1:0']
    for pw in pwfiles:
        args += ['--password-file', pw]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True)
    procs.append(p)
    line = p.stdout.readline()
    return int(line.split()[1].rsplit(':', 1)[1])


class Raw:
    """A hand-driven IMAP connection (STARTTLS, LOGIN), for commands sent
    without waiting and replies read when the test wants them."""

    def __init__(self, port, ctx, user, pw):
        s = socket.create_connection(('127.0.0.1', port), timeout=60)
        f = s.makefile('rb')
        f.readline()
        s.sendall(b's STARTTLS\r\n')
        f.readline()
        self.s = ctx.wrap_socket(s, server_hostname='127.0.0.1')
        self.f = self.s.makefile('rb')
        self.n = 0
        self.cmd('LOGIN "%s" "%s"' % (user, pw))

    def send(self, text):
        self.n += 1
        tag = 'r%d' % self.n
        self.s.sendall(('%s %s\r\n' % (tag, text)).encode())
        return tag

    def wait(self, tag, timeout=60):
        self.s.settimeout(timeout)
        lines = []
        while True:
            line = self.f.readline()
            if not line:
                return lines, b''
            if line.startswith(tag.encode() + b' '):
                return lines, line
            lines.append(line)

    def cmd(self, text, timeout=60):
        return self.wait(self.send(text), timeout)

    def pending(self):
        """Is a reply readable now (without blocking)?"""
        if self.s.pending() > 0:
            return True
        r, _, _ = select.select([self.s], [], [], 0)
        return bool(r)

    def close(self):
        try:
            self.send('LOGOUT')
        except OSError:
            pass
        self.s.close()


def imap(port, ctx, user, pw):
    m = imaplib.IMAP4('127.0.0.1', port)
    m.starttls(ssl_context=ctx)
    m.login(user, pw)
    return m


def list_names(m):
    typ, data = m.list('""', '*')
    names = []
    for d in data:
        if d is None:
            continue
        if isinstance(d, tuple):
            names.append(d[1].decode('utf-8', 'replace'))
            continue
        s = d.decode('utf-8', 'replace')
        names.append(s.rsplit(' ', 1)[1].strip('"'))
    return names


def msg(subject, body, extra=''):
    return ('From: Alice <alice@example.org>\r\nTo: bob@example.org\r\n'
            'Subject: %s\r\nMessage-ID: <%s@test>\r\n%s'
            '\r\n%s\r\n' % (subject, abs(hash(subject + body)), extra,
                            body)).encode()


def t_utf7(port, ctx, user, pw):
    m = imap(port, ctx, user, pw)
    typ, _ = m.create('Entw&APw-rfe')
    ok(typ == 'OK', 'CREATE a modified UTF-7 name')
    names = list_names(m)
    ok('Entw&APw-rfe' in names, 'LIST shows it in modified UTF-7', names)
    for bad in ('"&AGE-"', '"&AOQ"', '"&AOQ-&AOQ-"'):
        try:
            r = m._simple_command('CREATE', bad)
        except imaplib.IMAP4.error as e:
            r = ('BAD', str(e))
        ok(r[0] == 'BAD', 'malformed modified UTF-7 %s is BAD' % bad, r)
    typ, data = m.status('Entw&APw-rfe', '(MESSAGES UIDNEXT)')
    ok(typ == 'OK' and b'Entw&APw-rfe' in data[0], 'STATUS by the name',
       data)
    typ, _ = m.append('Entw&APw-rfe', None, None,
                      msg('utf7 append', 'into a folder with an umlaut'))
    ok(typ == 'OK', 'APPEND to it')
    typ, data = m.select('Entw&APw-rfe')
    ok(typ == 'OK' and data == [b'1'], 'SELECT it', data)
    typ, _ = m.rename('Entw&APw-rfe', '&ZeVnLIqe-/&U,BTFw-')
    ok(typ == 'OK', 'RENAME to CJK with a level')
    names = list_names(m)
    ok('&ZeVnLIqe-/&U,BTFw-' in names and 'Entw&APw-rfe' not in names,
       'LIST shows the new name', names)
    typ, data = m.lsub('""', '*')
    typ, _ = m.subscribe('&ZeVnLIqe-/&U,BTFw-')
    typ, data = m.lsub('""', '&ZeVnLIqe-/*')
    ok(typ == 'OK' and any(b'&ZeVnLIqe-/&U,BTFw-' in d for d in data if d),
       'SUBSCRIBE and LSUB with an encoded pattern', data)
    m.select('INBOX')
    m.append('INBOX', None, None, msg('utf7 copy', 'copied and moved'))
    typ, data = m.uid('SEARCH', 'SUBJECT', '"utf7 copy"')
    uid = data[0].split()[-1].decode()
    typ, data = m.uid('COPY', uid, '&ZeVnLIqe-/&U,BTFw-')
    ok(typ == 'OK', 'COPY to it', data)
    typ, data = m.uid('MOVE', uid, '&ZeVnLIqe-/&U,BTFw-')
    ok(typ == 'OK', 'MOVE to it', data)
    typ, data = m.select('&ZeVnLIqe-/&U,BTFw-')
    ok(data == [b'3'], 'the folder holds the three messages', data)
    m.close()

    # The same folder for a client that speaks UTF-8.
    u = imap(port, ctx, user, pw)
    typ, data = u.enable('UTF8=ACCEPT')
    ok(typ == 'OK' and b'UTF8=ACCEPT' in
       b' '.join(u.untagged_responses.get('ENABLED', [b''])),
       'ENABLE UTF8=ACCEPT', u.untagged_responses)
    typ, data = u.list('""', '*')
    raw = b' '.join(d if isinstance(d, bytes) else d[1] for d in data if d)
    ok('\u65e5\u672c\u8a9e/\u53f0\u5317'.encode() in raw,
       'LIST in UTF-8 after UTF8=ACCEPT', raw)
    typ, data = u.select('"\u65e5\u672c\u8a9e/\u53f0\u5317"')
    ok(typ == 'OK' and data == [b'3'], 'SELECT by the UTF-8 name', data)
    typ, data = u._simple_command('CREATE', '"Entw&APw-rfe"')
    typ, data = u.list('""', 'Entw*')
    ok(any(b'"Entw&APw-rfe"' in d or b'Entw&APw-rfe' in d
           for d in data if d), 'after UTF8=ACCEPT "&" names are literal',
       data)
    u.delete('"Entw&APw-rfe"')
    u.logout()

    r2 = imap(port, ctx, user, pw)
    typ, data = r2._simple_command('ENABLE', 'IMAP4rev2')
    ok(typ == 'OK' and b'IMAP4rev2' in
       r2.untagged_responses.get('ENABLED', [b''])[-1], 'ENABLE IMAP4rev2')
    typ, data = r2.select('INBOX')
    ok('RECENT' not in r2.untagged_responses, 'IMAP4rev2: no RECENT',
       r2.untagged_responses)
    typ, data = r2._simple_command('SEARCH', 'ALL')
    ok(typ == 'OK' and 'ESEARCH' in r2.untagged_responses and
       'SEARCH' not in r2.untagged_responses,
       'IMAP4rev2: SEARCH answers with ESEARCH', r2.untagged_responses)
    r2.logout()

    typ, _ = m.delete('&ZeVnLIqe-/&U,BTFw-')
    ok(typ == 'OK' and '&ZeVnLIqe-/&U,BTFw-' not in list_names(m),
       'DELETE by the encoded name')
    m.logout()


def t_worker(port, ctx, conf, pws, proxy):
    u1, u2 = conf['USER1'], conf['USER2']
    m = imap(port, ctx, u1, pws[0])
    m.append('INBOX', None, None, msg('held store', 'flag me'))
    m.logout()
    a = Raw(port, ctx, u1, pws[0])
    a2 = Raw(port, ctx, u1, pws[0])
    b = Raw(port, ctx, u2, pws[1])
    a.cmd('SELECT INBOX')
    b.cmd('SELECT INBOX')
    proxy.flowing.clear()
    try:
        t_store = a.send('UID STORE 1:* +FLAGS (\\Flagged)')
        t_after = a.send('NOOP')        # pipelined behind the STORE
        t_other = a2.send('NOOP')       # same account, other connection
        lines, tagline = b.cmd('UID FETCH 1:* (FLAGS)', timeout=30)
        ok(tagline.split()[1:2] == [b'OK'],
           'account 2 is served while account 1 writes', tagline)
        lines, tagline = b.cmd('NOOP', timeout=30)
        ok(tagline.split()[1:2] == [b'OK'], 'and again', tagline)
        ok(not a.pending(), 'the held STORE has not answered yet')
        ok(not a2.pending(), 'account 1\'s other connection waits its turn')
    finally:
        proxy.flowing.set()
    lines, tagline = a.wait(t_store)
    ok(tagline.split()[1:2] == [b'OK'] and
       any(b'\\Flagged' in ln for ln in lines),
       'the STORE completes once the server answers', lines + [tagline])
    lines, tagline = a.wait(t_after)
    ok(tagline.split()[1:2] == [b'OK'], 'the pipelined NOOP after it')
    lines, tagline = a2.wait(t_other)
    ok(tagline.split()[1:2] == [b'OK'], 'the waiting connection runs then')
    # A connection that goes away while its write is held.
    proxy.flowing.clear()
    c = Raw(port, ctx, u1, pws[0])
    c.cmd('SELECT INBOX')
    c.send('UID STORE 1:* -FLAGS (\\Flagged)')
    time.sleep(0.2)
    c.s.close()
    proxy.flowing.set()
    lines, tagline = a.cmd('UID FETCH 1:* (FLAGS)')
    ok(tagline.split()[1:2] == [b'OK'] and
       not any(b'\\Flagged' in ln for ln in lines),
       'a write finishes after its connection closed', lines)
    for x in (a, a2, b):
        x.close()


TEXT_MSGS = [
    ('plain one', 'The quick brown fox jumps over the lazy dog. '
     'zanzibarquux is a rare word.', ''),
    ('plain two', 'Nothing to see here; only common words and dogs.', ''),
    ('qp body', 'caf=C3=A9 cr=C3=A8me and s=\r\nplitword across a soft '
     'break', 'MIME-Version: 1.0\r\nContent-Type: text/plain; '
     'charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n'),
    ('b64 body', 'SGlkZGVuIHRyZWFzdXJlIGlzIGJhc2U2NGVuY29kZWQu',
     'MIME-Version: 1.0\r\nContent-Type: text/plain\r\n'
     'Content-Transfer-Encoding: base64\r\n'),
    ('header only', 'the body says little',
     'X-Note: glockenspielxyz in a header\r\n'),
]


def search(m, *crit):
    typ, data = m.uid('SEARCH', *crit)
    return [int(x) for x in data[0].split()] if typ == 'OK' else None


def t_search(port, ctx, conf, pws):
    u2 = conf['USER2']
    m = imap(port, ctx, u2, pws[1])
    m.create('Search')
    for subj, body, extra in TEXT_MSGS:
        m.append('Search', None, None, msg(subj, body, extra))
    m.select('Search')
    uid = {}
    for i, (subj, _, _) in enumerate(TEXT_MSGS):
        uid[subj] = search(m, 'SUBJECT', '"%s"' % subj)
    ok(all(len(v) == 1 for v in uid.values()), 'subjects found', uid)
    uid = {k: v[0] for k, v in uid.items() if v}
    ok(search(m, 'TEXT', 'zanzibarquux') == [uid['plain one']],
       'TEXT a rare word')
    ok(search(m, 'BODY', 'anzibarqu') == [uid['plain one']],
       'BODY matches a substring inside a word')
    ok(search(m, 'BODY', '"fox jumps ov"') == [uid['plain one']],
       'BODY matches across words')
    ok(search(m, 'BODY', 'DOG') == sorted([uid['plain one'],
                                           uid['plain two']]),
       'case-insensitive, and "dog" inside "dogs"')
    m.literal = 'cr\u00e8me'.encode()
    ok(search(m, 'CHARSET', 'UTF-8', 'BODY') == [uid['qp body']],
       'a UTF-8 word of a quoted-printable body (as a literal)')
    ok(search(m, 'BODY', 'splitword') == [uid['qp body']],
       'a soft line break does not split a word')
    ok(search(m, 'BODY', 'base64encoded') == [uid['b64 body']],
       'base64 body decoded before indexing')
    ok(search(m, 'BODY', 'glockenspielxyz') == [],
       'BODY does not look into the header')
    ok(search(m, 'TEXT', 'glockenspielxyz') == [uid['header only']],
       'TEXT does')
    ok(search(m, 'TEXT', 'nosuchwordanywhere') == [],
       'a word in no message')
    ok(search(m, 'NOT', 'BODY', 'zanzibarquux', 'SUBJECT', 'plain') ==
       [uid['plain two']], 'TEXT keys combine with others')

    # A message from another device: the follow thread indexes it.
    mbox = os.path.join(tmp, 'other.mbox')
    with open(mbox, 'wb') as f:
        f.write(b'From alice@example.org Thu Jan  1 00:00:00 2024\n' +
                msg('other device', 'hovercraftfulleels arrives')
                .replace(b'\r\n', b'\n') + b'\n')
    env = dict(os.environ, SEALPOST_PASSWORD=conf['USER2_PASSWORD'])
    r = subprocess.run([SEALPOST, 'import', '--mbox', mbox, '--folder',
                        'Search', '--cache', os.path.join(tmp, 'cli2'),
                        '--server', conf['SERVER'], '--ca',
                        conf['CA_FILE'], '--address', u2], env=env,
                       capture_output=True, text=True)
    found = []
    end = time.time() + 30
    while time.time() < end:
        m.noop()
        found = search(m, 'BODY', 'hovercraftfulleels')
        if found:
            break
        time.sleep(0.2)
    ok(len(found or []) == 1, 'a message from another device is found',
       r.stderr)
    # Leaving: expunged messages are not found any more.
    m.uid('STORE', str(uid['plain one']), '+FLAGS', '(\\Deleted)')
    m.expunge()
    ok(search(m, 'TEXT', 'zanzibarquux') == [],
       'an expunged message is not found')
    # Moved: found in its new folder.
    m.uid('MOVE', str(uid['plain two']), 'INBOX')
    m.select('INBOX')
    ok(len(search(m, 'BODY', '"only common words"') or []) == 1,
       'a moved message is found in its new folder')
    m.logout()
    return True


def t_neomutt(port, home, conf, pw):
    neomutt = shutil.which('neomutt')
    if not ok(neomutt is not None, 'neomutt is installed (scripts/setup)'):
        return
    m = imap(port, ssl.create_default_context(
        cafile=os.path.join(home, 'tls', 'cert.pem')), conf['USER2'], pw)
    m.append('INBOX', None, None, msg('for neomutt', 'neomutt reads '
                                      'this line: marmaladeweasel'))
    m.logout()
    out = os.path.join(tmp, 'neomutt.out')
    rc = os.path.join(tmp, 'muttrc')
    user = conf['USER2']
    with open(rc, 'w') as f:
        f.write('set folder="imap://%s@127.0.0.1:%d/"\n'
                % (user.replace('@', '%40'), port))
        f.write('set spoolfile="+INBOX"\nset imap_pass="%s"\n' % pw)
        f.write('set ssl_starttls=yes\nset ssl_force_tls=yes\n')
        f.write('set certificate_file="%s"\n' % os.path.join(tmp, 'certs'))
        f.write('set ssl_ca_certificates_file="%s"\n'
                % os.path.join(home, 'tls', 'cert.pem'))
        f.write('set header_cache=""\nset message_cachedir=""\n')
        f.write('set pager_stop=yes\nset wait_key=no\nset confirmappend=no'
                '\nset quit=yes\nset mail_check=0\nset timeout=1\n')
        f.write('set pipe_decode=yes\n')
    env = dict(os.environ, HOME=tmp, TERM='xterm')
    # neomutt's interface needs a terminal: script(1) gives it one.
    cmd = ('%s -n -F %s -e \'push "<limit>~s neomutt<enter>'
           '<pipe-message>cat > %s<enter><quit>"\'' % (neomutt, rc, out))
    p = subprocess.run(['script', '-qec', cmd, '/dev/null'], env=env,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=120)
    text = ''
    if os.path.exists(out):
        with open(out, errors='replace') as f:
            text = f.read()
    ok('marmaladeweasel' in text and 'for neomutt' in text,
       'neomutt reads a message', p.stderr[-2000:] if p.stderr else text)


def main():
    conf = stack_up()
    proxy = HoldProxy(conf['SERVER'])
    home = os.path.join(tmp, 'bridge')
    pw1, f1 = add_account(home, conf, 1, '127.0.0.1:%d' % proxy.port)
    pw2, f2 = add_account(home, conf, 2, conf['SERVER'])
    ok(pw1 and pw2, 'two accounts added, one through the proxy')
    order = subprocess.run([BRIDGE, '--home', home, 'accounts'],
                           capture_output=True, text=True).stdout.split()
    files = {conf['USER1']: f1, conf['USER2']: f2}
    port = serve(home, [files[a] for a in order if a in files])
    ctx = ssl.create_default_context(
        cafile=os.path.join(home, 'tls', 'cert.pem'))
    caps = imaplib.IMAP4('127.0.0.1', port)
    ok(all(c in caps.capabilities for c in ('IMAP4REV2', 'UTF8=ACCEPT')),
       'IMAP4rev2 and UTF8=ACCEPT offered', caps.capabilities)
    caps.logout()
    t_utf7(port, ctx, conf['USER2'], pw2)
    t_worker(port, ctx, conf, [pw1, pw2], proxy)
    t_search(port, ctx, conf, [pw1, pw2])
    t_neomutt(port, home, conf, pw2)


if __name__ == '__main__':
    try:
        main()
    except Exception as e:  # a crash is a failure, with its story
        import traceback
        ok(False, 'no exception', traceback.format_exc())
    finally:
        cleanup()
    sptest.finish()
