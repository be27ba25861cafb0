#!/usr/bin/python3
"""sealpost-bridge SMTP submission, POP3 and autoconfig end to end: a local
stack (sealpost-stack, three accounts, no welcome mail) whose bridge serves
IMAP, SMTP and POP3; Python smtplib the way Thunderbird sends (EHLO,
STARTTLS, AUTH, MAIL, RCPT, DATA), swaks, raw sockets for the error paths,
poplib and fetchmail, imaplib to see the other side, and `sealpost read` of
the recipient to verify the signature.  Prints TAP.

usage: test-bridge-smtp.py BUILD_DIR SOURCE_ROOT
"""
import base64
import imaplib
import os
import poplib
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
import xml.etree.ElementTree as ET

BUILD, TOP = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(TOP, 'tests', 'lib'))
import sptest  # noqa: E402
from sptest import ok, note  # noqa: E402
BRIDGE = os.path.join(BUILD, 'bridge', 'sealpost-bridge')
SEALPOST = os.path.join(BUILD, 'client-core', 'sealpost')

st = sptest.Stack(BUILD, TOP, 'sp-bsmtp-')
tmp, stack_dir, procs = st.tmp, st.dir, st.procs


def cleanup():
    st.cleanup()


def stack_up():
    return st.up(3, welcome=False, no_build=True)


def hostport(v):
    h, p = v.rsplit(':', 1)
    return h, int(p)


def wait_for(fn, timeout=20.0):
    end = time.time() + timeout
    while time.time() < end:
        r = fn()
        if r:
            return r
        time.sleep(0.2)
    return fn()


class Raw:
    """A line-oriented client for commands smtplib will not send."""

    def __init__(self, port, ctx=None, implicit=False):
        self.s = socket.create_connection(('127.0.0.1', port), 10)
        if implicit:
            self.s = ctx.wrap_socket(self.s, server_hostname='127.0.0.1')
        self.f = self.s.makefile('rb')

    def reply(self):
        lines = []
        while True:
            line = self.f.readline()
            if not line:
                return lines
            lines.append(line.decode('utf-8', 'replace').rstrip('\r\n'))
            if len(line) < 4 or line[3:4] != b'-':
                return lines

    def cmd(self, text):
        self.s.sendall(text.encode() + b'\r\n')
        return self.reply()

    def starttls(self, ctx):
        r = self.cmd('STARTTLS')
        self.s = ctx.wrap_socket(self.s, server_hostname='127.0.0.1')
        self.f = self.s.makefile('rb')
        return r

    def close(self):
        self.s.close()


def code(lines):
    return lines[-1][:3] if lines else ''


def sealpost(conf, n, *args):
    """Runs the sealpost CLI as USERn with its own cache (a device of its
    own, not the bridge's)."""
    cache = os.path.join(tmp, 'cli-user%d' % n)
    env = dict(os.environ, SEALPOST_PASSWORD=conf['USER%d_PASSWORD' % n])
    return subprocess.run([SEALPOST] + list(args) + [
        '--cache', cache, '--server', conf['SERVER'], '--ca',
        conf['CA_FILE'], '--address', conf['USER%d' % n]],
        capture_output=True, env=env, timeout=120)


def cli_find(conf, n, subject, folder='INBOX'):
    """The id of the message with subject in USERn's folder, via the CLI."""
    out = sealpost(conf, n, 'ls', folder)
    for line in out.stdout.decode('utf-8', 'replace').splitlines():
        if line.endswith('\t' + subject):
            return line.split('\t')[0]
    return None


def imap_login(conf, n, ctx):
    h, p = hostport(conf['BRIDGE_IMAP'])
    m = imaplib.IMAP4(h, p)
    m.starttls(ssl_context=ctx)
    m.login(conf['USER%d' % n], conf['USER%d_BRIDGE_PASSWORD' % n])
    return m


def imap_subjects(conf, n, ctx, folder='INBOX'):
    m = imap_login(conf, n, ctx)
    m.select(folder)
    typ, data = m.fetch('1:*', '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
    subs = []
    for d in data:
        if isinstance(d, tuple):
            subs.append(d[1].decode().strip().replace('Subject: ', ''))
    m.logout()
    return subs


def smtp_session(conf, n, ctx):
    """EHLO, STARTTLS, EHLO, AUTH: how Thunderbird starts."""
    h, p = hostport(conf['BRIDGE_SMTP'])
    s = smtplib.SMTP(h, p, timeout=60)
    s.ehlo('thunderbird.local')
    s.starttls(context=ctx)
    s.ehlo('thunderbird.local')
    s.login(conf['USER%d' % n], conf['USER%d_BRIDGE_PASSWORD' % n])
    return s


def message(frm, to, subject, extra='', body='hello\r\n', msgid=None):
    msgid = msgid or '<%s.%d@test.invalid>' % (subject.replace(' ', '-'),
                                               os.getpid())
    return ('From: %s\r\nTo: %s\r\n%sSubject: %s\r\nMessage-ID: %s\r\n'
            'Date: Mon, 30 Nov 2026 08:00:00 +0000\r\n\r\n%s' %
            (frm, to, extra, subject, msgid, body))


def main():
    conf = stack_up()
    u1, u2, u3 = conf['USER1'], conf['USER2'], conf['USER3']
    ok('BRIDGE_SMTP' in conf and 'BRIDGE_POP3' in conf,
       'the stack\'s bridge offers SMTP and POP3', conf)
    ctx = ssl.create_default_context(cafile=conf['BRIDGE_CA_FILE'])
    sport = hostport(conf['BRIDGE_SMTP'])[1]
    pport = hostport(conf['BRIDGE_POP3'])[1]

    # ---- SMTP before login ------------------------------------------
    r = Raw(sport)
    greet = r.reply()
    ok(code(greet) == '220', 'SMTP greeting', greet)
    e = r.cmd('EHLO x')
    ok(code(e) == '250' and any('STARTTLS' in x for x in e) and
       not any('AUTH' in x for x in e) and
       all(any(c in x for x in e) for c in
           ('PIPELINING', '8BITMIME', 'SMTPUTF8', 'SIZE',
            'ENHANCEDSTATUSCODES')),
       'EHLO in the clear: extensions, STARTTLS, no AUTH', e)
    a = r.cmd('AUTH PLAIN AGEAYg==')
    ok(code(a) == '530', 'AUTH before TLS is refused', a)
    mm = r.cmd('MAIL FROM:<%s>' % u1)
    ok(code(mm) == '530', 'MAIL before TLS is refused', mm)
    ok(code(r.cmd('BOGUS')) == '502', 'unknown command: 502')
    ok(code(r.cmd('RCPT TO:<%s>' % u2)) == '530',
       'RCPT before TLS is refused')
    ok(code(r.cmd('X' * 3000)) == '500', 'a too-long line: 500')
    ok(code(r.cmd('NOOP')) == '250', 'the session goes on after errors')
    # Bytes sent in the clear behind STARTTLS are dropped, not run over
    # TLS (CVE-2011-0411).
    r.s.sendall(b'STARTTLS\r\nRSET\r\n')
    st = r.reply()
    r.s = ctx.wrap_socket(r.s, server_hostname='127.0.0.1')
    r.f = r.s.makefile('rb')
    ok(code(st) == '220', 'STARTTLS', st)
    e = r.cmd('EHLO x')
    ok(code(e) == '250' and any('AUTH PLAIN LOGIN' in x for x in e) and
       not any('STARTTLS' in x for x in e),
       'EHLO over TLS offers AUTH PLAIN LOGIN (and no RSET reply was '
       'waiting: the injected command was dropped)', e)
    bad = base64.b64encode(('\0%s\0wrongpassword' % u1).encode()).decode()
    ok(code(r.cmd('AUTH PLAIN ' + bad)) == '535', 'wrong password: 535')
    ok(code(r.cmd('MAIL FROM:<%s>' % u1)) == '530',
       'MAIL before AUTH: 530')
    lg = r.cmd('AUTH LOGIN')
    ok(code(lg) == '334', 'AUTH LOGIN asks for the user', lg)
    r.cmd(base64.b64encode(u1.encode()).decode())
    ok(code(r.cmd(base64.b64encode(
        conf['USER1_BRIDGE_PASSWORD'].encode()).decode())) == '235',
       'AUTH LOGIN with the bridge password')
    wf = r.cmd('MAIL FROM:<%s>' % u2)
    ok(code(wf) == '550' and '5.7.1' in wf[-1],
       'MAIL FROM another address: 550 5.7.1', wf)
    ok(code(r.cmd('MAIL FROM:<%s> SIZE=999999999999' % u1)) == '552',
       'SIZE over the limit: 552')
    ok(code(r.cmd('MAIL FROM:<%s> FOO=1' % u1)) == '555',
       'unknown MAIL parameter: 555')
    ok(code(r.cmd('RCPT TO:<%s>' % u2)) == '503', 'RCPT before MAIL: 503')
    ok(code(r.cmd('MAIL FROM:<%s> BODY=8BITMIME SMTPUTF8' % u1)) == '250',
       'MAIL FROM own address with BODY and SMTPUTF8')
    ok(code(r.cmd('DATA')) == '503', 'DATA without recipients: 503')
    nu = r.cmd('RCPT TO:<nobody@%s>' % conf['DOMAIN'])
    ok(code(nu) == '550' and '5.1.1' in nu[-1],
       'unknown internal recipient: 550 5.1.1', nu)
    out = r.cmd('RCPT TO:<someone@example.org>')
    ok(code(out) == '250' and 'outbound gateway' in out[-1],
       'outside recipient: accepted for the outbound gateway (outbox.h; '
       'delivery is tests/outbound/test-bridge-outbound.py\'s)', out)
    ok(code(r.cmd('RCPT TO:<%s>' % u2)) == '250', 'internal recipient')
    ok(code(r.cmd('DATA')) == '354', 'DATA: 354')
    r.s.sendall(message(u2, u2, 'forged from').encode() + b'.\r\n')
    ff = r.reply()
    ok(code(ff) == '550' and '5.7.1' in ff[-1] and 'From' in ff[-1],
       'a From: header of another address: 550 5.7.1', ff)
    ok(code(r.cmd('MAIL FROM:<%s>' % u1)) == '250' and
       code(r.cmd('RCPT TO:<%s>' % u2)) == '250' and
       code(r.cmd('DATA')) == '354', 'a new transaction after the refusal')
    r.s.sendall(b'From: ' + u1.encode() + b'\r\nSubject: cr\r\n\r\na\rb\r\n'
                b'.\r\n')
    cr = r.reply()
    ok(code(cr) == '554' and '5.6.0' in cr[-1], 'a bare CR: 554 5.6.0', cr)
    ok(code(r.cmd('QUIT')) == '221', 'QUIT: 221')
    r.close()

    # ---- implicit TLS is not offered by the stack; a bridge of our own
    # ---- would be the same code path (bridge_tls.c), tested below with
    # ---- --smtps on a second bridge.

    # ---- a send the way Thunderbird does it -------------------------
    s = smtp_session(conf, 1, ctx)
    subj = 'thunderbird way'
    refused = s.sendmail(u1, [u2], message(u1, u2, subj,
                         body='caf\u00e9 8bit line\r\n..dot line\r\n'
                         'bare\nlf\r\n').encode())
    ok(refused == {}, 'smtplib: EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA')
    s.quit()
    got = wait_for(lambda: subj in imap_subjects(conf, 2, ctx))
    ok(got, 'the internal recipient sees the message over IMAP')
    mid = wait_for(lambda: (sealpost(conf, 2, 'sync'),
                            cli_find(conf, 2, subj))[1])
    rd = sealpost(conf, 2, 'read', mid) if mid else None
    ok(rd is not None and rd.returncode == 0 and
       b'signature: valid, by the pinned key of ' + u1.encode() in
       rd.stderr, 'the recipient\'s own device verifies the sender\'s '
       'signature', rd and rd.stderr)
    body = rd.stdout if rd else b''
    # smtplib dot-stuffs "..dot" to "...dot"; the bridge unstuffs it.
    ok(b'caf\xc3\xa9 8bit line\r\n..dot line\r\nbare\r\nlf\r\n' in body,
       'body: 8-bit kept, dots transparent, bare LF made CRLF',
       body[-200:])
    sent = imap_subjects(conf, 1, ctx, 'Sent')
    ok(sent.count(subj) == 1, 'one Sent copy for the sender', sent)

    # ---- Bcc does not leak; the Bcc recipient gets it ---------------
    s = smtp_session(conf, 1, ctx)
    subj = 'bcc check'
    s.sendmail(u1, [u2, u3], message(u1, u2, subj,
               extra='Bcc: %s\r\n' % u3))
    s.quit()
    mid2 = wait_for(lambda: (sealpost(conf, 2, 'sync'),
                             cli_find(conf, 2, subj))[1])
    rd = sealpost(conf, 2, 'read', mid2) if mid2 else None
    ok(rd is not None and rd.returncode == 0 and
       u3.encode() not in rd.stdout and b'Bcc' not in rd.stdout,
       'the To recipient\'s copy names no Bcc recipient',
       rd and rd.stdout[:400])
    ok(wait_for(lambda: subj in imap_subjects(conf, 3, ctx)),
       'the Bcc recipient received it')
    # Envelope-only recipient (how Thunderbird sends Bcc: no header).
    s = smtp_session(conf, 1, ctx)
    subj = 'envelope bcc'
    s.sendmail(u1, [u2, u3], message(u1, u2, subj))
    s.quit()
    ok(wait_for(lambda: subj in imap_subjects(conf, 3, ctx)),
       'an envelope-only recipient receives the message')

    # ---- swaks, pipelining, AUTH PLAIN ------------------------------
    if shutil.which('swaks'):
        sw = subprocess.run(
            ['swaks', '--server', '127.0.0.1', '--port', str(sport),
             '--tls', '--tls-ca-path', conf['BRIDGE_CA_FILE'],
             '--auth', 'PLAIN', '--auth-user', u1, '--auth-password',
             conf['USER1_BRIDGE_PASSWORD'], '--from', u1, '--to', u2,
             '--pipeline', '--header', 'Subject: via swaks',
             '--header', 'From: ' + u1, '--body', 'swaks body'],
            capture_output=True, text=True, timeout=120)
        ok(sw.returncode == 0 and '250 2.0.0' in sw.stdout,
           'swaks: STARTTLS, AUTH PLAIN, PIPELINING', sw.stdout[-800:])
        ok(wait_for(lambda: 'via swaks' in imap_subjects(conf, 2, ctx)),
           'the swaks message arrives')
        sw = subprocess.run(
            ['swaks', '--server', '127.0.0.1', '--port', str(sport),
             '--tls', '--auth', 'LOGIN', '--auth-user', u1,
             '--auth-password', 'not-the-password', '--from', u1, '--to',
             u2], capture_output=True, text=True, timeout=60)
        ok(sw.returncode != 0 and '535' in sw.stdout,
           'swaks with a wrong password: 535', sw.stdout[-400:])
    else:
        ok(False, 'swaks is installed (scripts/setup)')

    # Pipelined by hand: every reply in order, the message sent.
    r = Raw(sport)
    r.reply()
    r.cmd('EHLO x')
    r.starttls(ctx)
    r.cmd('EHLO x')
    plain = base64.b64encode(('\0%s\0%s' % (
        u1, conf['USER1_BRIDGE_PASSWORD'])).encode()).decode()
    ok(code(r.cmd('AUTH PLAIN ' + plain)) == '235', 'AUTH PLAIN')
    r.s.sendall(('MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nRCPT TO:<nobody@%s>'
                 '\r\nDATA\r\n' % (u1, u2, conf['DOMAIN'])).encode())
    codes = [code(r.reply()) for _ in range(4)]
    r.s.sendall(message(u1, u2, 'pipelined').encode() + b'.\r\nQUIT\r\n')
    codes += [code(r.reply()), code(r.reply())]
    ok(codes == ['250', '250', '550', '354', '250', '221'],
       'PIPELINING: replies in order, the refused recipient left out',
       codes)
    r.close()

    # ---- no duplicate Sent copy when the client also APPENDs ---------
    s = smtp_session(conf, 1, ctx)
    subj = 'sent once'
    msgid = '<sent-once.%d@test.invalid>' % os.getpid()
    msg = message(u1, u2, subj, msgid=msgid)
    s.sendmail(u1, [u2], msg)
    s.quit()
    m = imap_login(conf, 1, ctx)
    # Thunderbird's copy keeps a Bcc header and differs in bytes.
    typ, resp = m.append('Sent', '(\\Seen)', None,
                         ('Bcc: %s\r\n' % u3 + msg).encode())
    ok(typ == 'OK' and b'APPENDUID' in resp[0],
       'APPEND of the submitted message to Sent succeeds', resp)
    m.logout()
    sent = imap_subjects(conf, 1, ctx, 'Sent')
    ok(sent.count(subj) == 1, 'and Sent still holds one copy', sent)
    m = imap_login(conf, 1, ctx)
    m.append('Sent', None, None, msg.encode())
    m.logout()
    sent = imap_subjects(conf, 1, ctx, 'Sent')
    ok(sent.count(subj) == 2, 'a second APPEND of it adds a copy (the '
       'registry answers once)', sent)

    # ---- POP3 -------------------------------------------------------
    p = poplib.POP3('127.0.0.1', pport, timeout=60)
    caps = p.capa()
    ok('STLS' in caps and 'UIDL' in caps and 'TOP' in caps and
       'USER' not in caps, 'CAPA in the clear: STLS, UIDL, TOP, no USER',
       caps)
    try:
        p.user(u2)
        ok(False, 'USER before STLS is refused')
    except poplib.error_proto as ex:
        ok(b'STLS' in ex.args[0], 'USER before STLS is refused', ex)
    p.stls(context=ctx)
    caps = p.capa()
    ok('USER' in caps and 'SASL' in caps, 'CAPA over TLS: USER, SASL',
       caps)
    try:
        p.user(u2)
        p.pass_('wrong-password')
        ok(False, 'wrong POP3 password is refused')
    except poplib.error_proto as ex:
        ok(b'[AUTH]' in ex.args[0], 'wrong POP3 password: -ERR [AUTH]',
           ex)
    p.user(u2)
    p.pass_(conf['USER2_BRIDGE_PASSWORD'])
    count, size = p.stat()
    inbox = imap_subjects(conf, 2, ctx)
    ok(count == len(inbox) and count >= 4 and size > 0,
       'STAT counts the INBOX', (count, inbox))
    uidl1 = p.uidl()[1]
    lst = p.list()[1]
    ok(len(uidl1) == count and len(lst) == count, 'UIDL and LIST')
    top = p.top(1, 0)[1]
    ok(any(l.startswith(b'Subject:') for l in top) and top[-1] == b'',
       'TOP n 0: the header and the blank line', top)
    retr = p.retr(1)[1]
    ok(retr[:len(top)] == top and b'..dot line' in retr,
       'RETR: the header TOP gave, the body, dots stuffed and unstuffed',
       retr[:12])
    try:
        p.retr(count + 1)
        ok(False, 'RETR of a message that does not exist')
    except poplib.error_proto:
        ok(True, 'RETR of a message that does not exist: -ERR')
    p.quit()
    p = poplib.POP3('127.0.0.1', pport, timeout=60)
    p.stls(context=ctx)
    p.user(u2)
    p.pass_(conf['USER2_BRIDGE_PASSWORD'])
    ok(p.uidl()[1] == uidl1 and p.stat()[0] == count,
       'leave on server: nothing deleted, UIDL stable across sessions')
    # DELE then RSET: nothing goes.
    p.dele(1)
    ok(p.stat()[0] == count - 1, 'DELE hides the message in the session')
    p.rset()
    ok(p.stat()[0] == count, 'RSET brings it back')
    # DELE without QUIT (dropped connection): nothing goes.
    p.dele(1)
    p.sock.close()
    time.sleep(0.5)
    ok(len(imap_subjects(conf, 2, ctx)) == count,
       'a connection dropped without QUIT deletes nothing')
    # DELE + QUIT: gone, also for IMAP on the recipient's other device.
    p = poplib.POP3('127.0.0.1', pport, timeout=60)
    p.stls(context=ctx)
    p.user(u2)
    p.pass_(conf['USER2_BRIDGE_PASSWORD'])
    first = p.top(1, 0)[1]
    gone = [l for l in first if l.startswith(b'Subject:')][0]
    gone = gone.decode().replace('Subject: ', '')
    p.dele(1)
    p.quit()
    ok(wait_for(lambda: gone not in imap_subjects(conf, 2, ctx)),
       'DELE + QUIT: the message leaves the INBOX over IMAP')
    ok(wait_for(lambda: (sealpost(conf, 2, 'sync'),
                         cli_find(conf, 2, gone) is None)[1]),
       'and on the account\'s other device (the log carried it)')
    p = poplib.POP3('127.0.0.1', pport, timeout=60)
    p.stls(context=ctx)
    p._shortcmd('AUTH PLAIN ' + base64.b64encode(('\0%s\0%s' % (
        u2, conf['USER2_BRIDGE_PASSWORD'])).encode()).decode())
    ok(p.stat()[0] == count - 1 and p.uidl()[1] == uidl1[1:] or
       [x.split()[1] for x in p.uidl()[1]] ==
       [x.split()[1] for x in uidl1[1:]],
       'AUTH PLAIN; the other messages keep their UIDL')
    p.quit()

    # fetchmail: keep, then fetch into an mbox.
    if shutil.which('fetchmail'):
        mbox = os.path.join(tmp, 'fetched.mbox')
        rc = os.path.join(tmp, 'fetchmailrc')
        with open(rc, 'w') as f:
            # The certificate names DNS localhost and IP 127.0.0.1;
            # fetchmail checks names only, so it is told which.
            f.write('poll 127.0.0.1 protocol pop3 port %d\n'
                    '  user "%s" password "%s"\n'
                    '  sslproto tls1.2+ sslcertck sslcertfile "%s"\n'
                    '  sslcommonname localhost\n'
                    '  keep fetchall\n'
                    '  mda "/bin/sh -c \'cat >> %s\'"\n' %
                    (pport, u2, conf['USER2_BRIDGE_PASSWORD'],
                     conf['BRIDGE_CA_FILE'], mbox))
        os.chmod(rc, 0o600)
        fm = subprocess.run(['fetchmail', '-f', rc, '-i',
                             os.path.join(tmp, 'fm.ids'), '--nosyslog',
                             '--nodetach', '-v'],
                            capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, HOME=tmp))
        data = open(mbox, 'rb').read() if os.path.exists(mbox) else b''
        ok(fm.returncode == 0 and data.count(b'Subject: ') == count - 1,
           'fetchmail (STLS, keep) fetches every message',
           fm.stdout[-600:] + fm.stderr[-600:])
        ok(len(imap_subjects(conf, 2, ctx)) == count - 1,
           'fetchmail keep left them on the server')
    else:
        ok(False, 'fetchmail is installed (scripts/setup)')

    # ---- a bridge of our own: implicit TLS ports and autoconfig ------
    home = os.path.join(tmp, 'own')
    pw = os.path.join(tmp, 'u1.pw')
    with open(pw, 'w') as f:
        f.write(conf['USER1_PASSWORD'] + '\n')
    add = subprocess.run([BRIDGE, '--home', home, 'accounts', 'add',
                          '--address', u1, '--server', conf['SERVER'],
                          '--ca', conf['CA_FILE'], '--password-file', pw],
                         capture_output=True, text=True)
    bpw = add.stdout.strip().split()[-1]
    log = open(os.path.join(tmp, 'own.log'), 'w')
    b = subprocess.Popen([BRIDGE, '--home', home, 'serve',
                          '--imap', '127.0.0.1:0', '--smtps', '127.0.0.1:0',
                          '--pop3s', '127.0.0.1:0', '--autoconfig',
                          '127.0.0.1:0', '--password-file', pw],
                         stdout=subprocess.PIPE, stderr=log, text=True)
    procs.append(b)
    ports = {}
    for _ in range(4):
        line = b.stdout.readline()
        if not line:
            break
        kind, addr = line.split()
        ports[kind] = int(addr.rsplit(':', 1)[1])
    ok(set(ports) == {'imap', 'smtps', 'pop3s', 'autoconfig'},
       'serve --smtps --pop3s --autoconfig prints its ports', ports)
    ctx2 = ssl.create_default_context(
        cafile=os.path.join(home, 'tls', 'cert.pem'))
    s = smtplib.SMTP_SSL('127.0.0.1', ports['smtps'], context=ctx2,
                         timeout=60)
    s.login(u1, bpw)
    s.sendmail(u1, [u2], message(u1, u2, 'implicit tls'))
    s.quit()
    ok(wait_for(lambda: 'implicit tls' in imap_subjects(conf, 2, ctx)),
       'SMTP over implicit TLS delivers')
    p = poplib.POP3_SSL('127.0.0.1', ports['pop3s'], context=ctx2,
                        timeout=60)
    p.user(u1)
    p.pass_(bpw)
    ok(p.stat()[0] >= 0, 'POP3 over implicit TLS')
    p.quit()
    url = 'http://127.0.0.1:%d/mail/config-v1.1.xml?emailaddress=%s' % (
        ports['autoconfig'], u1.replace('@', '%40'))
    xml = urllib.request.urlopen(url, timeout=10).read()
    root = ET.fromstring(xml)
    inc = root.findall('./emailProvider/incomingServer')
    outg = root.findall('./emailProvider/outgoingServer')
    ok(root.tag == 'clientConfig' and root.get('version') == '1.1' and
       root.find('./emailProvider/domain').text == conf['DOMAIN'],
       'autoconfig: a clientConfig 1.1 for the domain', xml[:300])
    kinds = sorted((e.get('type'), int(e.find('port').text),
                    e.find('socketType').text) for e in inc + outg)
    ok(kinds == sorted([('imap', ports['imap'], 'STARTTLS'),
                        ('pop3', ports['pop3s'], 'SSL'),
                        ('smtp', ports['smtps'], 'SSL')]),
       'autoconfig names each listener with its socketType', kinds)
    ok(all(e.find('username').text == u1 and
           e.find('hostname').text == '127.0.0.1' for e in inc + outg),
       'autoconfig: username is the address, host 127.0.0.1')
    try:
        urllib.request.urlopen(url.replace(u1.split('@')[0], 'nobody'),
                               timeout=10)
        ok(False, 'autoconfig for an unknown address is 404')
    except urllib.error.HTTPError as ex:
        ok(ex.code == 404, 'autoconfig for an unknown address is 404')
    b.terminate()
    ok(b.wait(30) == 0, 'the bridge stops cleanly on SIGTERM')


try:
    main()
except Exception as ex:  # a crash is a failure, with its reason
    import traceback
    for line in traceback.format_exc().splitlines():
        print('# ' + line)
    ok(False, 'test ran to the end (%s)' % ex)
finally:
    cleanup()
sptest.finish()
