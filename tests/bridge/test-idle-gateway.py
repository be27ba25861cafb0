#!/usr/bin/python3
"""IDLE sees mail that came in through the gateway: a mail client in IDLE
on the stack's bridge is told about a message the moment the gateway's
commit reaches the server (the gateway's notify datagram makes the server
push the record; the bridge's follow thread applies it and wakes IDLE).

Asserted: the EXISTS arrives, the message is the one sent, and the server
counted the gateway's notify datagrams (so it came by push, not by the
server's periodic sweep).  The latency (SMTP 250 to IMAP EXISTS) is
printed as a figure, never asserted.  TAP output.  Argument: build dir.
"""
import imaplib
import os
import smtplib
import ssl
import sys
import time
import urllib.request

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(TOP, "build"))
sys.path.insert(0, os.path.join(TOP, "tests", "lib"))
import sptest  # noqa: E402
from sptest import ok, note  # noqa: E402


def notifies(conf):
    ctx = ssl.create_default_context(cafile=conf["CA_FILE"])
    with urllib.request.urlopen("https://%s/metrics" % conf["SERVER"], context=ctx,
                                timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("sealpost_notifies_total "):
                return int(line.split()[1])
    return -1


def main(st):
    conf = st.up(1, welcome=False)
    ok(True, "the local stack is up (server, gateway, bridge)")
    host, port = conf["BRIDGE_IMAP"].rsplit(":", 1)
    m = imaplib.IMAP4(host, int(port))
    m.starttls(ssl_context=ssl.create_default_context(cafile=conf["BRIDGE_CA_FILE"]))
    m.login(conf["USER1"], conf["USER1_BRIDGE_PASSWORD"])
    typ, data = m.select("INBOX")
    ok(typ == "OK" and data[0] == b"0", "the INBOX starts empty", data)
    before = notifies(conf)
    tag = m._new_tag().decode()
    m.send(("%s IDLE\r\n" % tag).encode())
    cont = m.readline()
    ok(cont.startswith(b"+"), "IDLE is accepted", cont)

    subject = "through the gateway %s" % os.urandom(4).hex()
    gh, gp = conf["GATEWAY_SMTP"].rsplit(":", 1)
    s = smtplib.SMTP(gh, int(gp), timeout=60)
    s.sendmail("sender@example.org", [conf["USER1"]],
               ("From: <sender@example.org>\r\nTo: <%s>\r\nSubject: %s\r\n\r\n"
                "hello\r\n" % (conf["USER1"], subject)).encode())
    t_acked = time.monotonic()      # the 250: the commit is durable
    m.sock.settimeout(60)
    line = m.readline()
    latency = time.monotonic() - t_acked
    s.quit()
    ok(line.strip() == b"* 1 EXISTS", "the client in IDLE is told of the new message",
       line)
    note("figure: gateway 250 to IMAP EXISTS in %.3f s" % latency)
    m.send(b"DONE\r\n")
    while True:
        line = m.readline()
        if line.startswith(tag.encode()) or not line:
            break
    ok(line.startswith((tag + " OK").encode()), "IDLE ends with DONE", line)
    typ, d = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    ok(typ == "OK" and subject.encode() in d[0][1], "it is the message that was sent", d)
    after = notifies(conf)
    ok(before >= 0 and after > before,
       "the server was told by the gateway's notify datagram (%d -> %d)" % (before, after))
    m.logout()


if __name__ == "__main__":
    st = sptest.Stack(BUILD, TOP, "sp-idle-")
    try:
        main(st)
    except Exception:  # a crash is a failure, with its story
        import traceback
        ok(False, "no exception", traceback.format_exc())
    finally:
        st.cleanup()
    sptest.finish()
