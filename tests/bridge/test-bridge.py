#!/usr/bin/python3
"""sealpost-bridge end to end: a local stack (sealpost-stack), two bridges
on one account, real clients (Python imaplib, curl, mbsync).  Prints TAP.

usage: test-bridge.py BUILD_DIR SOURCE_ROOT
"""
import base64
import imaplib
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time

BUILD, TOP = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(TOP, 'tests', 'lib'))
import sptest  # noqa: E402
from sptest import ok, note  # noqa: E402
BRIDGE = os.path.join(BUILD, 'bridge', 'sealpost-bridge')
MIME = os.path.join(os.environ.get('SP_TESTDATA') or
                    os.path.join(TOP, '..', 'shared', 'testdata'), 'mime')

st = sptest.Stack(BUILD, TOP, 'sp-bridge-')
tmp, stack_dir, procs = st.tmp, st.dir, st.procs


def cleanup():
    st.cleanup()


def stack_up():
    return st.up(1)


def bridge_add(home, conf):
    pwfile = os.path.join(tmp, 'pw')
    with open(pwfile, 'w') as f:
        f.write(conf['USER1_PASSWORD'] + '\n')
    out = subprocess.run([BRIDGE, '--home', home, 'accounts', 'add',
                          '--address', conf['USER1'], '--server',
                          conf['SERVER'], '--ca', conf['CA_FILE'],
                          '--password-file', pwfile],
                         capture_output=True, text=True)
    return out, pwfile


def bridge_serve(home, pwfile):
    log = open(os.path.join(home, 'serve.log'), 'w')
    p = subprocess.Popen([BRIDGE, '--home', home, 'serve', '--imap',
                          '127.0.0.1:0', '--imaps', '127.0.0.1:0',
                          '--password-file', pwfile],
                         stdout=subprocess.PIPE, stderr=log, text=True)
    procs.append(p)
    ports = {}
    for _ in range(2):
        line = p.stdout.readline()
        if not line:
            break
        kind, addr = line.split()
        ports[kind] = int(addr.rsplit(':', 1)[1])
    return p, ports


def tls_ctx(home):
    return ssl.create_default_context(
        cafile=os.path.join(home, 'tls', 'cert.pem'))


def connect(home, ports, user, pw):
    m = imaplib.IMAP4('127.0.0.1', ports['imap'])
    m.starttls(ssl_context=tls_ctx(home))
    m.login(user, pw)
    return m


def raw_cmd(m, text):
    """Sends a command by hand; returns the tagged line (imaplib raises on
    BAD, which these tests expect)."""
    tag = m._new_tag()
    m.send(tag + b' ' + text.encode() + b'\r\n')
    while True:
        line = m.readline()
        if line.startswith(tag + b' ') or not line:
            return line[len(tag) + 1:]


def wait_for(fn, timeout=15.0):
    end = time.time() + timeout
    while time.time() < end:
        r = fn()
        if r:
            return r
        time.sleep(0.1)
    return fn()


def corpus_files():
    skip = ('COPYING', 'COMMIT', 'LICENSE', 'NOTICE', 'COPYRIGHT',
            'ARTISTIC', '.json')
    out = []
    for root, _, files in os.walk(MIME):
        for name in sorted(files):
            if any(s in name for s in skip):
                continue
            out.append(os.path.join(root, name))
    return sorted(out)


def main():
    conf = stack_up()
    user = conf['USER1']
    home_a = os.path.join(tmp, 'bridge-a')
    home_b = os.path.join(tmp, 'bridge-b')

    # ---- accounts ---------------------------------------------------
    out, pwfile = bridge_add(home_a, conf)
    ok(out.returncode == 0 and 'bridge password' in out.stdout,
       'accounts add logs in and makes a bridge password', out.stderr)
    pw_a = out.stdout.strip().split()[-1]
    lst = subprocess.run([BRIDGE, '--home', home_a, 'accounts'],
                         capture_output=True, text=True).stdout
    ok(lst.split() == [user, pw_a], 'accounts lists address and password',
       lst)
    ok(os.stat(os.path.join(home_a, 'accounts', user,
                            'bridge.pass')).st_mode & 0o077 == 0,
       'bridge password file is private')
    bad = subprocess.run([BRIDGE, '--home', os.path.join(tmp, 'bad'),
                          'accounts', 'add', '--address', user, '--server',
                          conf['SERVER'], '--ca', conf['CA_FILE']],
                         capture_output=True, text=True,
                         env=dict(os.environ, SEALPOST_PASSWORD='wrong'))
    ok(bad.returncode != 0, 'accounts add refuses a wrong password')
    out, _ = bridge_add(home_b, conf)
    pw_b = out.stdout.strip().split()[-1]
    ok(pw_a != pw_b and len(pw_a) == 24, 'each bridge has its own password')

    pa, ports_a = bridge_serve(home_a, pwfile)
    pb, ports_b = bridge_serve(home_b, pwfile)
    ok('imap' in ports_a and 'imaps' in ports_a and 'imap' in ports_b,
       'both bridges serve')

    # ---- the certificate ------------------------------------------------
    cert = os.path.join(home_a, 'tls', 'cert.pem')
    text = subprocess.run(['openssl', 'x509', '-noout', '-text', '-in',
                           cert], capture_output=True, text=True).stdout
    ok('CA:FALSE' in text and 'IP Address:127.0.0.1' in text,
       'certificate is not a CA and names 127.0.0.1', text)

    # ---- before login -------------------------------------------------
    m = imaplib.IMAP4('127.0.0.1', ports_a['imap'])
    caps = m.capabilities
    ok(all(c in caps for c in ('IMAP4REV1', 'STARTTLS', 'AUTH=PLAIN',
                               'IDLE', 'UIDPLUS', 'MOVE', 'CONDSTORE',
                               'QRESYNC', 'SPECIAL-USE', 'LITERAL+',
                               'ESEARCH', 'ENABLE', 'ID', 'NAMESPACE',
                               'UNSELECT', 'LIST-STATUS', 'SASL-IR')),
       'capabilities', caps)
    m.send(b'x1 SELECT INBOX\r\n')
    line = m.readline()
    ok(line.startswith(b'x1 BAD'), 'SELECT before login is refused', line)
    try:
        m.login(user, 'wrong password 123456789')
        ok(False, 'wrong bridge password refused')
    except imaplib.IMAP4.error as e:
        ok('AUTHENTICATIONFAILED' in str(e), 'wrong bridge password refused',
           e)
    r = raw_cmd(m, 'BOGUS')
    ok(r.startswith(b'BAD'), 'unknown command is BAD', r)
    r = raw_cmd(m, 'LOGIN "unterminated')
    ok(r.startswith(b'BAD'), 'syntax error is BAD', r)
    m.starttls(ssl_context=tls_ctx(home_a))
    ok(isinstance(m.sock, ssl.SSLSocket) and
       m.sock.version() in ('TLSv1.2', 'TLSv1.3'), 'STARTTLS, TLS 1.2+')
    typ, data = m.capability()
    ok(b'STARTTLS' not in data[0], 'no STARTTLS offered after STARTTLS')
    m.login(user, pw_a)
    ok(m.state == 'AUTH', 'LOGIN over STARTTLS')
    typ, data = m.xatom('ID', '("name" "test")')
    ok(typ == 'OK' and b'sealpost-bridge' in m.untagged_responses.get(
        'ID', [b''])[0], 'ID', data)
    typ, data = m.namespace()
    ok(data == [b'(("" "/")) NIL NIL'], 'NAMESPACE', data)
    typ, data = m._simple_command('ENABLE', 'CONDSTORE')
    ok(typ == 'OK', 'ENABLE CONDSTORE')
    m.logout()

    # implicit TLS, AUTHENTICATE PLAIN with SASL-IR
    s = imaplib.IMAP4_SSL('127.0.0.1', ports_a['imaps'],
                          ssl_context=tls_ctx(home_a))
    typ, _ = s.authenticate('PLAIN', lambda _: ('\0%s\0%s' % (user, pw_a))
                            .encode())
    ok(typ == 'OK', 'implicit TLS and AUTHENTICATE PLAIN')
    s.logout()
    # SASL-IR in one line, by hand
    raw = socket.create_connection(('127.0.0.1', ports_a['imap']))
    f = raw.makefile('rb')
    f.readline()
    ir = base64.b64encode(('\0%s\0%s' % (user, pw_a)).encode()).decode()
    raw.sendall(('a AUTHENTICATE PLAIN %s\r\nb LOGOUT\r\n' % ir).encode())
    lines = [f.readline() for _ in range(3)]
    ok(lines[0].startswith(b'a OK'), 'SASL-IR', lines)
    raw.close()
    # literals: synchronizing and LITERAL+
    raw = socket.create_connection(('127.0.0.1', ports_a['imap']))
    f = raw.makefile('rb')
    f.readline()
    raw.sendall(('a LOGIN {%d}\r\n' % len(user)).encode())
    cont = f.readline()
    raw.sendall(('%s {%d+}\r\n%s\r\n' % (user, len(pw_a), pw_a)).encode())
    resp = f.readline()
    ok(cont.startswith(b'+') and resp.startswith(b'a OK'),
       'synchronizing literal and LITERAL+', (cont, resp))
    raw.sendall(b'b NOOP\r\nc LOGOUT\r\n')
    raw.close()

    # ---- mailboxes ------------------------------------------------------
    m = connect(home_a, ports_a, user, pw_a)
    typ, data = m.list()
    names = {re.search(rb'"/" "?([^"]*)"?$', d).group(1): d for d in data}
    ok(set(names) >= {b'INBOX', b'Sent', b'Drafts', b'Trash', b'Junk',
                      b'Archive'}, 'LIST shows the system folders', data)
    ok(b'\\Sent' in names.get(b'Sent', b'') and
       b'\\Trash' in names.get(b'Trash', b''), 'SPECIAL-USE attributes')
    typ, data = m._simple_command('LIST', '(SPECIAL-USE)', '""', '*')
    ok(typ == 'OK' and len(m.untagged_responses.pop('LIST', [])) == 5,
       'LIST (SPECIAL-USE)')
    ok(m.create('Work')[0] == 'OK' and m.create('Work/2024')[0] == 'OK',
       'CREATE')
    typ, data = m.create('Work')
    ok(typ == 'NO' and b'ALREADYEXISTS' in data[0], 'CREATE existing', data)
    typ, data = m.list('""', 'Work/%')
    ok(len(data) == 1 and data[0].endswith(b'"Work/2024"'),
       'LIST with %', data)
    typ, data = m.list('""', 'Work')
    ok(b'\\HasChildren' in data[0], 'CHILDREN', data)
    ok(m.rename('Work/2024', 'Work/2025')[0] == 'OK', 'RENAME')
    typ, data = m.rename('INBOX', 'Other')
    ok(typ == 'NO', 'RENAME INBOX refused')
    ok(m.subscribe('Work')[0] == 'OK', 'SUBSCRIBE')
    typ, data = m.lsub('""', '*')
    ok(any(d.endswith(b'"Work"') for d in data), 'LSUB', data)
    ok(m.unsubscribe('Work')[0] == 'OK', 'UNSUBSCRIBE')
    ok(m.delete('Work/2025')[0] == 'OK', 'DELETE')
    typ, data = m.delete('Trash')
    ok(typ == 'NO', 'DELETE of a system folder refused')
    typ, data = m.status('NoSuch', '(MESSAGES)')
    ok(typ == 'NO' and b'NONEXISTENT' in data[0], 'STATUS unknown mailbox')
    typ, data = m.select('NoSuch')
    ok(typ == 'NO', 'SELECT unknown mailbox')

    # ---- the MIME corpora: APPEND, BODY[] byte-identical ------------------
    files = corpus_files()
    m.select('Archive')
    uids = {}
    t0 = time.time()
    for path in files:
        with open(path, 'rb') as fh:
            data = fh.read()
        typ, resp = m.append('Archive', None, None, data)
        mm = re.search(rb'APPENDUID (\d+) (\d+)', resp[0])
        if typ != 'OK' or not mm:
            ok(False, 'APPEND %s' % path, resp)
            continue
        # imaplib sends line ends as CRLF (as every IMAP client must);
        # what was sent is what must come back.
        uids[path] = (int(mm.group(2)),
                      re.sub(rb'\r\n|\r|\n', b'\r\n', data))
    dt = time.time() - t0
    ok(len(uids) == len(files), 'APPEND %d corpus messages' % len(files))
    note('APPEND: %.1f messages/s' % (len(files) / dt))
    same = 0
    bad = []
    t0 = time.time()
    for path, (uid, data) in uids.items():
        typ, resp = m.uid('FETCH', str(uid), '(BODY.PEEK[] BODYSTRUCTURE)')
        got = resp[0][1] if typ == 'OK' and isinstance(resp[0], tuple) \
            else None
        # BODYSTRUCTURE may hold literals (8-bit names): imaplib splits
        # the response at each one.
        flat = b''.join(b''.join(x) if isinstance(x, tuple) else x
                        for x in resp if x is not None) if typ == 'OK' \
            else b''
        if got == data and b'BODYSTRUCTURE (' in flat:
            same += 1
        else:
            d = next((i for i in range(min(len(got or b''), len(data)))
                      if got[i] != data[i]), None) if got else None
            bad.append((path, resp[:2] if got is None else
                        (len(got), len(data), d,
                         got[d:d + 8] if d is not None else b'',
                         data[d:d + 8] if d is not None else b'')))
    ok(same == len(uids), 'BODY[] byte-identical and BODYSTRUCTURE for '
       'every corpus message', bad[:5])
    note('FETCH BODY[] BODYSTRUCTURE: %.1f messages/s' %
         (len(uids) / (time.time() - t0)))
    typ, resp = m.fetch('1:*', '(FLAGS INTERNALDATE RFC822.SIZE ENVELOPE '
                        'BODYSTRUCTURE)')
    ok(typ == 'OK' and len([r for r in resp if r != b')']) >= len(uids),
       'FETCH 1:* ALL items')

    # ---- INBOX: commands on messages --------------------------------------
    typ, data = m.select('INBOX')
    base = int(data[0])
    msgs = [b'From: Alice <alice@example.org>\r\nTo: %s\r\n'
            b'Subject: plan %d\r\nDate: Mon, 7 Feb 1994 21:52:25 -0800\r\n'
            b'Message-ID: <p%d@example.org>\r\n\r\nrareword%d body\r\n'
            % (user.encode(), i, i, i) for i in range(4)]
    for i, b in enumerate(msgs):
        flags = '(\\Seen)' if i == 0 else None
        typ, _ = m.append('INBOX', flags, '"07-Feb-1994 22:43:04 -0800"', b)
    typ, data = m.noop()
    typ, data = m.search(None, 'ALL')
    ok(len(data[0].split()) == base + 4, 'EXISTS and SEARCH ALL', data)
    typ, data = m.search(None, 'UNSEEN', 'SUBJECT', 'plan')
    ok(len(data[0].split()) == 3, 'SEARCH UNSEEN', data)
    typ, data = m.search(None, 'FROM', 'alice', 'SUBJECT', '"plan 2"')
    ok(len(data[0].split()) == 1, 'SEARCH FROM SUBJECT', data)
    typ, data = m.search(None, 'BODY', 'rareword3')
    ok(len(data[0].split()) == 1, 'SEARCH BODY', data)
    typ, data = m.search(None, 'OR', 'SEEN', 'TEXT', 'rareword2')
    ok(len(data[0].split()) == 2, 'SEARCH OR TEXT', data)
    typ, data = m.search(None, 'NOT', 'SEEN', 'SINCE', '1-Feb-1994',
                         'BEFORE', '1-Jan-2100', 'FROM', 'alice')
    ok(len(data[0].split()) == 3, 'SEARCH NOT SINCE BEFORE', data)
    typ, data = m.search(None, 'HEADER', 'Message-ID', 'p1@example')
    ok(len(data[0].split()) == 1, 'SEARCH HEADER', data)
    typ, data = m.search(None, 'LARGER', '10', 'SMALLER', '100000')
    ok(len(data[0].split()) >= 4, 'SEARCH LARGER SMALLER', data)
    typ, data = m.uid('SEARCH', 'RETURN', '(MIN MAX COUNT)', 'ALL')
    ok(typ == 'OK' and b'COUNT %d' % (base + 4) in
       m.untagged_responses.pop('ESEARCH', [b''])[0], 'ESEARCH')
    r = raw_cmd(m, 'SEARCH FOO')
    ok(r.startswith(b'BAD'), 'SEARCH unknown key is BAD', r)
    def sq(i):
        return str(base + i)
    typ, data = m.fetch(sq(1), '(UID FLAGS INTERNALDATE RFC822.SIZE '
                        'ENVELOPE)')
    ok(typ == 'OK' and b'"08-Feb-1994 06:43:04 +0000"' in data[0] and
       b'"plan 0"' in data[0], 'FETCH INTERNALDATE ENVELOPE', data)
    typ, data = m.fetch(sq(2), '(BODY.PEEK[HEADER.FIELDS (Subject)])')
    ok(data[0][1] == b'Subject: plan 1\r\n\r\n', 'BODY.PEEK[HEADER.FIELDS]',
       data)
    typ, data = m.fetch(sq(2), '(BODY[TEXT]<0.8>)')
    ok(data[0][1] == b'rareword', 'BODY[TEXT]<partial> sets \\Seen', data)
    typ, data = m.fetch(sq(2), '(FLAGS)')
    ok(b'\\Seen' in data[0], '\\Seen after BODY[]', data)
    r = raw_cmd(m, 'FETCH 9999 (FLAGS)')
    ok(r.startswith(b'BAD'), 'FETCH beyond EXISTS is BAD', r)
    r = raw_cmd(m, 'FETCH 1 (BODY[MIME])')
    ok(r.startswith(b'BAD'), 'bad FETCH section is BAD', r)
    typ, data = m.store(sq(3), '+FLAGS', '(\\Flagged $Work)')
    ok(typ == 'OK' and b'\\Flagged' in data[0] and b'$Work' in data[0],
       'STORE +FLAGS with a keyword', data)
    typ, data = m.store(sq(3), '-FLAGS.SILENT', '($Work)')
    ok(typ == 'OK' and data == [None], 'STORE -FLAGS.SILENT', data)
    typ, data = m.store(sq(3), 'FLAGS', '(\\Answered)')
    ok(b'(\\Answered)' in data[0], 'STORE FLAGS replaces', data)
    typ, data = m.fetch(sq(3), '(MODSEQ)')
    modseq = int(re.search(rb'MODSEQ \((\d+)\)', data[0]).group(1))
    typ, data = m._simple_command('STORE', sq(3), '(UNCHANGEDSINCE %d)' %
                                  (modseq - 1), '+FLAGS', '(\\Seen)')
    ok(typ == 'OK' and b'MODIFIED' in data[0], 'STORE UNCHANGEDSINCE', data)
    typ, data = m.uid('COPY', '1:*', 'Archive')
    cu = m.untagged_responses.pop('COPYUID', [b''])[0]
    ok(typ == 'OK' and re.match(rb'6 [\d,:]+ [\d,:]+$', cu),
       'UID COPY with COPYUID', cu)
    typ, data = m._simple_command('MOVE', sq(4), 'Trash')
    ok(typ == 'OK', 'MOVE')
    ok(any(b'COPYUID' in x for x in m.untagged_responses.pop('OK', [])),
       'MOVE reports COPYUID')
    m.noop()
    typ, data = m.search(None, 'ALL')
    ok(len(data[0].split()) == base + 3, 'MOVE removed the message', data)
    m.store(sq(1), '+FLAGS', '(\\Deleted)')
    m.untagged_responses.pop('EXPUNGE', None)
    typ, data = m.expunge()
    ok(typ == 'OK' and data == [sq(1).encode()], 'EXPUNGE', data)
    m.store('1', '+FLAGS', '(\\Deleted)')
    typ, data = m.uid('EXPUNGE', '1:2')
    ok(typ == 'OK', 'UID EXPUNGE')
    typ, data = m.status('INBOX', '(MESSAGES UIDNEXT UIDVALIDITY UNSEEN '
                         'HIGHESTMODSEQ)')
    ok(typ == 'OK' and b'UIDVALIDITY 1' in data[0], 'STATUS', data)
    typ, data = m.select('INBOX', readonly=True)
    typ, data = m.store('1', '+FLAGS', '(\\Flagged)')
    ok(typ == 'NO', 'STORE in EXAMINE refused')
    typ, data = m.unselect() if hasattr(m, 'unselect') else \
        m._simple_command('UNSELECT')
    ok(typ == 'OK', 'UNSELECT')
    m.logout()

    # ---- curl reads a message --------------------------------------------
    cu = subprocess.run(['curl', '-sS', '--cacert', cert, '--ssl-reqd',
                         '-u', '%s:%s' % (user, pw_a),
                         'imap://127.0.0.1:%d/Archive;UID=1' %
                         ports_a['imap']], capture_output=True)
    first = uids[sorted(uids, key=lambda p: uids[p][0])[0]][1]
    ok(cu.returncode == 0 and cu.stdout == first, 'curl imap:// reads a '
       'message byte for byte', cu.stderr)

    # ---- IDLE sees a message from the other bridge ------------------------
    ma = connect(home_a, ports_a, user, pw_a)
    ma.select('INBOX')
    mb = connect(home_b, ports_b, user, pw_b)
    tag = ma._new_tag().decode()
    ma.send(('%s IDLE\r\n' % tag).encode())
    cont = ma.readline()
    t0 = time.time()
    mb.append('INBOX', None, None, b'Subject: idle test\r\n\r\nx\r\n')
    ma.sock.settimeout(30)
    line = ma.readline()
    latency = time.time() - t0
    ok(cont.startswith(b'+') and re.match(rb'\* \d+ EXISTS', line),
       'IDLE sees a message added through the other bridge', (cont, line))
    note('IDLE latency (APPEND on bridge B returned to EXISTS on bridge A): '
         '%.3f s' % latency)
    ma.send(b'DONE\r\n')
    while True:
        line = ma.readline()
        if line.startswith(tag.encode()):
            break
    ok(line.startswith((tag + ' OK').encode()), 'IDLE DONE', line)

    # ---- two bridges converge -------------------------------------------
    ma.select('INBOX')
    mb.select('INBOX')
    typ, data = mb.search(None, 'SUBJECT', '"idle test"')
    n_b = data[0].split()[-1]
    mb.store(n_b, '+FLAGS', '(\\Flagged)')

    def flagged_on_a():
        ma.noop()
        return ma.search(None, 'FLAGGED', 'SUBJECT', '"idle test"')[1][0]
    ok(wait_for(flagged_on_a), 'flags converge (B to A)')
    typ, data = ma.search(None, 'SUBJECT', '"idle test"')
    n_a = data[0].split()[-1]
    ma._simple_command('MOVE', n_a.decode(), 'Archive')

    def moved_on_b():
        mb.noop()
        return not mb.search(None, 'SUBJECT', '"idle test"')[1][0]
    ok(wait_for(moved_on_b), 'moves converge (A to B)')
    mb.select('Archive')
    typ, data = mb.search(None, 'SUBJECT', '"idle test"')
    ok(len(data[0].split()) == 1, 'moved message is in Archive on B', data)
    mb.store(data[0].split()[-1], '+FLAGS', '(\\Deleted)')
    mb.expunge()
    ma.select('Archive')

    def deleted_on_a():
        ma.noop()
        return not ma.search(None, 'SUBJECT', '"idle test"')[1][0]
    ok(wait_for(deleted_on_a), 'deletions converge (B to A)')
    ma.logout()
    mb.logout()

    # ---- mbsync: full sync down and up ----------------------------------
    if shutil.which('mbsync'):
        mdir = os.path.join(tmp, 'maildir')
        os.makedirs(mdir)
        rc = os.path.join(tmp, 'mbsyncrc')
        with open(rc, 'w') as fh:
            fh.write('IMAPAccount a\nHost 127.0.0.1\nPort %d\nUser %s\n'
                     'Pass %s\nSSLType STARTTLS\nCertificateFile %s\n\n'
                     'IMAPStore remote\nAccount a\n\n'
                     'MaildirStore local\nPath %s/\nInbox %s/INBOX\n'
                     'SubFolders Verbatim\n\n'
                     'Channel c\nFar :remote:\nNear :local:\nPatterns *\n'
                     'Create Both\nExpunge Both\nSyncState *\n'
                     % (ports_a['imap'], user, pw_a, cert, mdir, mdir))
        r = subprocess.run(['mbsync', '-c', rc, '-a'], capture_output=True,
                           text=True)
        n_local = sum(len(fs) for _, _, fs in
                      os.walk(os.path.join(mdir, 'Archive')))
        ok(r.returncode == 0 and n_local >= len(uids),
           'mbsync full sync down (%d messages in Archive)' % n_local,
           r.stderr)
        newdir = os.path.join(mdir, 'INBOX', 'new')
        with open(os.path.join(newdir, '1.local:2,'), 'wb') as fh:
            fh.write(b'Subject: from mbsync\r\n\r\nup\r\n')
        r = subprocess.run(['mbsync', '-c', rc, '-a'], capture_output=True,
                           text=True)
        m = connect(home_b, ports_b, user, pw_b)
        m.select('INBOX')
        ok(wait_for(lambda: (m.noop(), m.search(
            None, 'SUBJECT', '"from mbsync"')[1][0])[1]) and
           r.returncode == 0, 'mbsync sync up reaches the other bridge',
           r.stderr)
        m.logout()
    else:
        ok(True, 'mbsync # SKIP isync not installed')

    # ---- stopping --------------------------------------------------------
    pa.terminate()
    try:
        rc = pa.wait(20)
    except subprocess.TimeoutExpired:
        rc = None
    ok(rc == 0, 'SIGTERM stops the bridge cleanly', rc)
    with open(os.path.join(home_a, 'serve.log')) as fh:
        log = fh.read()
    ok(pw_a not in log and conf['USER1_PASSWORD'] not in log and
       'rareword' not in log, 'log has no secrets and no content')


try:
    main()
except Exception as e:  # a crash is a failure, with its reason
    import traceback
    ok(False, 'test crashed: %r' % e, traceback.format_exc())
finally:
    cleanup()
sptest.finish()
