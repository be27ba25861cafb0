#!/usr/bin/python3
"""sealpost-gateway end to end: a real stack, the real gateway, real
clients (Python smtplib, swaks, openssl s_client, raw sockets).  Every
command and every error path of the SMTP side, and the messages read back
through the real client byte for byte.  TAP.  Argument: the build dir."""

import os
import signal
import smtplib
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gwtest import (Gateway, NxDns, Raw, Stack, diag, done, message, ok)

build = os.path.abspath(sys.argv[1])
stack = Stack(build)
if not ok(stack.up, "sealpost-stack up"):
    sys.exit(done())
U1, U2, DOM = stack["USER1"], stack["USER2"], stack["DOMAIN"]
sent = {U1: [], U2: []}   # what each user must find, byte for byte
dns = NxDns()
gw = Gateway(build, stack, "--record-only-loopback", "--max-recipients", "2",
             "--max-size", "200000", "--greet-delay", "0", dns=dns.port)
gws = []

try:
    # ---- the happy path, smtplib ----
    s = smtplib.SMTP("127.0.0.1", gw.port, timeout=30)
    code, banner = s.ehlo("client.remote.test")
    ok(code == 250 and banner.startswith(b"mx.test"), "EHLO: 250 mx.test")
    feats = [f for f in ("pipelining", "size", "8bitmime", "smtputf8",
                         "enhancedstatuscodes", "starttls", "chunking")
             if s.has_extn(f)]
    ok(len(feats) == 7, "EHLO lists PIPELINING SIZE 8BITMIME SMTPUTF8 "
       "ENHANCEDSTATUSCODES STARTTLS CHUNKING")
    ok(s.esmtp_features.get("size") == "200000", "SIZE is the configured "
       "limit")
    m1 = message("plain one", "line\r\n.leading dot\r\n..two\r\n")
    r = s.sendmail("alice@remote.test", [U1, U2], m1)
    ok(r == {}, "a message to two users is accepted")
    sent[U1].append(m1)
    sent[U2].append(m1)
    ok(s.noop()[0] == 250, "NOOP: 250")
    code, msg = s.docmd("HELP")
    ok(code == 214, "HELP: 214")
    code, msg = s.docmd("VRFY", U1)
    ok(code == 252 and msg.startswith(b"2.5.0"),
       "VRFY: 252, nothing verified")
    code, msg = s.docmd("EXPN", "staff")
    ok(code == 502 and msg.startswith(b"5.5.1"), "EXPN: 502 5.5.1")
    # RSET ends the transaction
    s.mail("alice@remote.test")
    s.rcpt(U1)
    ok(s.rset()[0] == 250, "RSET: 250")
    code, msg = s.docmd("RCPT TO:<%s>" % U1)
    ok(code == 503, "RCPT after RSET: 503")
    code, msg = s.docmd("DATA")
    ok(code == 503, "DATA without MAIL: 503")
    # recipients
    s.mail("alice@remote.test")
    code, msg = s.rcpt("nobody@" + DOM)
    ok(code == 550 and msg.startswith(b"5.1.1"), "unknown user: 550 5.1.1")
    code, msg = s.rcpt("someone@elsewhere.example")
    ok(code == 550 and msg.startswith(b"5.7.1"), "other domain: 550 5.7.1 "
       "(no relay)")
    code, msg = s.rcpt("bad address")
    ok(code == 501, "bad address syntax: 501")
    for u in (U1, U2):
        s.rcpt(u)
    code, msg = s.rcpt(U1.upper())
    ok(code == 250 and b"duplicate" in msg, "a recipient named twice: "
       "250, one delivery")
    code, msg = s.docmd("RCPT TO:<x%s>" % U1)
    ok(code == 452 and msg.startswith(b"4.5.3"),
       "a 3rd recipient over --max-recipients 2: 452 4.5.3")
    s.quit()
    s = smtplib.SMTP("127.0.0.1", gw.port, timeout=30)
    s.ehlo("client.remote.test")
    # sizes
    code, msg = s.mail("alice@remote.test", ["SIZE=200001"])
    ok(code == 552 and msg.startswith(b"5.3.4"), "MAIL SIZE over the limit: "
       "552 5.3.4")
    code, msg = s.mail("alice@remote.test", ["BODY=BINARYMIME"])
    ok(code == 555, "unsupported BODY: 555")
    s.mail("alice@remote.test")
    s.rcpt(U1)
    # smtplib's data() returns the final reply instead of raising
    code, msg = s.data(message("big", ("x" * 998 + "\r\n") * 250))
    ok(code == 552 and msg.startswith(b"5.3.4"),
       "a message over --max-size: 552 5.3.4")
    # 8BITMIME and SMTPUTF8
    m2 = message("utf8 gr\xfc\xdfe", "8-bit body: \xe4\xf6\xfc \u263a\r\n"
                 ).decode().encode("utf-8")
    r = s.sendmail("j\xf6rg@remote.test", [U1], m2,
                   mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    ok(r == {}, "SMTPUTF8 sender and an 8-bit body: accepted")
    sent[U1].append(m2)
    code, msg = s.docmd("MAIL FROM:<j\xf6rg@remote.test>")
    ok(code == 553 and msg.startswith(b"5.6.7"),
       "UTF-8 address without SMTPUTF8: 553 5.6.7")
    code, msg = s.docmd("QUIT")
    ok(code == 221, "QUIT: 221")
    s.close()

    # ---- STARTTLS: smtplib, swaks, openssl ----
    ctx = ssl.create_default_context(cafile=stack.cert)
    ctx.check_hostname = False
    s = smtplib.SMTP("127.0.0.1", gw.port, timeout=30)
    s.ehlo("c")
    code, _ = s.starttls(context=ctx)
    ok(code == 220, "STARTTLS: 220, TLS up")
    s.ehlo("c")
    ok(not s.has_extn("starttls"), "after TLS, no STARTTLS offered")
    code, _ = s.docmd("STARTTLS")
    ok(code == 503, "a second STARTTLS: 503")
    m3 = message("over tls")
    ok(s.sendmail("alice@remote.test", [U2], m3) == {}, "mail over TLS")
    sent[U2].append(m3)
    s.quit()
    # swaks ends the data with CRLF "." CRLF itself
    m4 = b"Subject: swaks tls\r\n\r\nsent by swaks"
    mf = os.path.join(stack.dir, "m4.eml")
    with open(mf, "wb") as f:
        f.write(m4)
    m4 += b"\r\n"
    r = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % gw.port,
                        "--to", U1, "--from", "bob@remote.test", "-tls",
                        "--data", "@" + mf, "--helo", "swaks.test"],
                       capture_output=True, text=True, timeout=60)
    ok(r.returncode == 0 and "TLS started" in r.stdout,
       "swaks -tls delivers")
    if r.returncode == 0:
        sent[U1].append(m4)
    else:
        diag(r.stdout[-2000:])
    r = subprocess.run(["openssl", "s_client", "-starttls", "smtp",
                        "-connect", "127.0.0.1:%d" % gw.port, "-tls1_1",
                        "-cipher", "DEFAULT:@SECLEVEL=0"],
                       input="QUIT\n", capture_output=True, text=True,
                       timeout=30)
    ok("Cipher is (NONE)" in r.stdout, "TLS 1.1 is refused")
    r = subprocess.run(["openssl", "s_client", "-starttls", "smtp",
                        "-connect", "127.0.0.1:%d" % gw.port, "-tls1_2"],
                       input="QUIT\n", capture_output=True, text=True,
                       timeout=30)
    ok("Protocol  : TLSv1.2" in r.stdout, "TLS 1.2 works")
    # clear text pipelined after STARTTLS is not read as a command
    c = Raw(gw.port)
    c.send("EHLO c\r\nSTARTTLS\r\nMAIL FROM:<inject@remote.test>\r\n")
    rr = c.replies(2)
    sc = ctx.wrap_socket(c.s, server_hostname="localhost")
    sc.sendall(b"RCPT TO:<%s>\r\n" % U1.encode())
    ok(rr[1].startswith("220") and sc.recv(4096).startswith(b"503"),
       "clear text pipelined after STARTTLS is dropped (RCPT: 503)")
    sc.close()

    # ---- raw sessions: pipelining, BDAT, smuggling ----
    c = Raw(gw.port)
    m5 = message("pipelined")
    c.send(b"EHLO c\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<" +
           U1.encode() + b">\r\nRCPT TO:<nobody@" + DOM.encode() +
           b">\r\nDATA\r\n")
    rr = c.replies(5)
    c.send(m5 + b".\r\nNOOP\r\nQUIT\r\n")
    rr += c.replies(3)
    ok([x[:3] for x in rr] == ["250", "250", "250", "550", "354", "250",
                               "250", "221"], "pipelined session: replies "
       "in order (%s)" % " ".join(x[:3] for x in rr))
    sent[U1].append(m5)
    c.close()
    c = Raw(gw.port)
    m6 = message("chunked", "one\r\n.two\r\n")
    half = len(m6) // 2
    c.send(b"EHLO c\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<" +
           U2.encode() + b">\r\n")
    c.send(b"BDAT %d\r\n" % half + m6[:half] +
           b"BDAT %d LAST\r\n" % (len(m6) - half) + m6[half:])
    rr = c.replies(5)
    ok([x[:3] for x in rr] == ["250"] * 5, "BDAT in two chunks, LAST: 250")
    sent[U2].append(m6)
    c.send("DATA\r\n")
    ok(c.reply().startswith("503"), "DATA without a transaction: 503")
    c.close()
    before = len(sent[U1])
    for name, body, want in (
            ("bare LF", b"x\r\n\n.\nMAIL FROM:<evil@remote.test>\r\n",
             "554 5.5.2 Bare LF"),
            ("bare CR", b"x\r\n\r.\rMAIL FROM:<evil@remote.test>\r\n",
             "554 5.5.2 Bare CR")):
        c = Raw(gw.port)
        c.send(b"EHLO c\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<" +
               U1.encode() + b">\r\nDATA\r\n")
        c.replies(4)
        c.send(b"Subject: smuggle\r\n\r\n" + body +
               b"RCPT TO:<" + U1.encode() + b">\r\nDATA\r\nspoof\r\n.\r\n")
        r1 = c.reply()
        ok(r1.startswith(want) and c.closed(),
           "%s in DATA: %s and the connection is closed" % (name, want[:9]))
        c.close()
    c = Raw(gw.port)
    c.send("NOOP\nNOOP\r\n")
    ok(c.replies(2)[0].startswith("500 5.5.2"),
       "bare LF in a command line: 500 5.5.2")
    c.send("NOOP " + "x" * 600 + "\r\nNOOP\r\n")
    ok(c.replies(2)[0].startswith("500 5.5.6"), "a 600-octet line: 500 5.5.6")
    c.send("MAIL FROM:<a@remote.test>\r\n")
    ok(c.reply().startswith("503 5.5.1"), "MAIL before EHLO: 503 5.5.1")
    c.close()

    # ---- limits, early talker, timeouts: a second gateway ----
    gw2 = Gateway(build, stack, "--no-auth", "--greet-delay", "400",
                  "--greet-cache", "0", "--max-connections-per-ip", "3",
                  "--timeout-cmd", "1", "--timeout-data", "1")
    gws.append(gw2)
    c = Raw(gw2.port, wait_greeting=False)
    c.send("EHLO early\r\n")
    r1 = c.reply()
    ok(r1.startswith("554 5.5.0") and c.closed(),
       "early talker: 554 5.5.0, closed")
    c.close()
    time.sleep(0.2)
    cs = [Raw(gw2.port) for _ in range(3)]
    c = Raw(gw2.port, wait_greeting=False)
    r1 = c.reply()
    ok(r1.startswith("421 4.7.0"), "a 4th connection from one address: "
       "421 4.7.0")
    c.close()
    t0 = time.time()
    r1 = cs[0].reply()
    ok(r1.startswith("421 4.4.2") and cs[0].closed(),
       "idle past --timeout-cmd: 421 4.4.2, closed")
    for x in cs:
        x.close()
    c = Raw(gw2.port)
    c.send("EHLO c\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<%s>\r\nDATA\r\n"
           "Subject: slow\r\n" % U1)
    rr = c.replies(4)
    r1 = c.reply()
    ok(rr[3].startswith("354") and r1.startswith("421 4.4.2"),
       "stalled in DATA past --timeout-data: 421 4.4.2")
    c.close()
    # SIGTERM: an idle client is told, the process exits 0
    c = Raw(gw2.port)
    gw2.stop(signal.SIGTERM)
    ok(gw2.p.returncode == 0, "SIGTERM: exit 0")
    ok(c.reply().startswith("421 4.3.2"), "SIGTERM: an idle client gets "
       "421 4.3.2")
    c.close()

    # ---- what arrived, read by the real client ----
    for user, pw in ((U1, stack["USER1_PASSWORD"]),
                     (U2, stack["USER2_PASSWORD"])):
        got = stack.export(user, pw)
        if got is None:
            ok(False, "%s: export" % user)
            continue
        bodies = sorted(b for _, b in got)
        want = sorted(sent[user])
        ok(bodies == want, "%s: %d messages, byte-identical to what was sent "
           "(got %d)" % (user, len(want), len(bodies)))
        if bodies != want:
            for b in bodies:
                if b not in want:
                    diag("unexpected: %r" % b[:200])
            for b in want:
                if b not in bodies:
                    diag("missing: %r" % b[:200])
    # the gateway's log has no message content
    lt = gw.logtext()
    ok("plain one" not in lt and "leading dot" not in lt and U1 not in lt,
       "the log holds no subject, body or recipient address")
    ok("spf=none" in lt, "auth checks ran (spf=none via the test's DNS)")
finally:
    for g in [gw] + gws:
        if g.p.poll() is None:
            g.stop()
    dns.close()
    stack.down()

sys.exit(done())
