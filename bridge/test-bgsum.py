#!/usr/bin/python3
"""Summaries made in the background (imap_cmd.c, imap_bgsum_run): mail
delivered through the gateway is summarised by the bridge before any
client asks, so the first FETCH of ENVELOPE/BODYSTRUCTURE after a sync
needs neither the server nor a body fetch.

Asserted: after 40 messages (the pipelined path) and then 2 more (the
one-by-one path) the bridge's log counts exactly one summary per message
(made once, never twice); then, with the sync server stopped, a first
FETCH of ENVELOPE, BODYSTRUCTURE and RFC822.SIZE answers for every
message with its own subject, and RFC822.SIZE equals the length of what
BODY[] serves.  Waiting is bounded only to catch a hang, never timed.
TAP output.  Argument: build dir.
"""
import imaplib
import os
import re
import signal
import smtplib
import ssl
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(TOP, "build"))
sys.path.insert(0, os.path.join(TOP, "tests", "lib"))
import sptest  # noqa: E402
from sptest import ok  # noqa: E402


def made(tmp, user):
    """Summaries the bridge reports it made in the background."""
    pat = re.compile(r"sealpost-bridge: %s: (\d+) summaries made in the background"
                     % re.escape(user))
    with open(os.path.join(tmp, "bridge.log"), errors="replace") as f:
        return sum(int(m.group(1)) for m in pat.finditer(f.read()))


def wait_made(tmp, user, want, limit=300):
    deadline = time.monotonic() + limit       # a hang guard, not a speed test
    while time.monotonic() < deadline:
        got = made(tmp, user)
        if got >= want:
            time.sleep(1)                   # a duplicate would show up now
            return made(tmp, user)
        time.sleep(0.2)
    return made(tmp, user)


def send(conf, subjects):
    gh, gp = conf["GATEWAY_SMTP"].rsplit(":", 1)
    s = smtplib.SMTP(gh, int(gp), timeout=60)
    for i, subj in enumerate(subjects):
        body = "".join("line %d of message %s\r\n" % (k, subj) for k in range(i % 7 + 1))
        s.sendmail("sender@example.org", [conf["USER1"]],
                   ("From: Sender <sender@example.org>\r\nTo: <%s>\r\nSubject: %s\r\n"
                    "Message-ID: <%s@example.org>\r\n\r\n%s" %
                    (conf["USER1"], subj, subj, body)).encode())
    s.quit()


def main(st):
    conf = st.up(1, welcome=False)
    ok(True, "the local stack is up (server, gateway, bridge)")
    tmp = st.dir
    user = conf["USER1"]
    tag = os.urandom(3).hex()
    first = ["bg-%s-%02d" % (tag, i) for i in range(40)]
    send(conf, first)
    got = wait_made(tmp, user, 40)
    ok(got == 40, "40 delivered messages are summarised once each in the background",
       got)
    more = ["bg-%s-late-%d" % (tag, i) for i in range(2)]
    send(conf, more)
    got = wait_made(tmp, user, 42)
    ok(got == 42, "2 more are summarised too, and only they", got)

    # No server from here: what a FETCH answers was made beforehand.
    with open(os.path.join(tmp, "server.pid")) as f:
        spid = int(f.read())
    os.kill(spid, signal.SIGTERM)
    for _ in range(200):
        try:
            os.kill(spid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    host, port = conf["BRIDGE_IMAP"].rsplit(":", 1)
    m = imaplib.IMAP4(host, int(port))
    m.starttls(ssl_context=ssl.create_default_context(cafile=conf["BRIDGE_CA_FILE"]))
    m.login(user, conf["USER1_BRIDGE_PASSWORD"])
    typ, data = m.select("INBOX", readonly=True)
    ok(typ == "OK" and data[0] == b"42", "the INBOX holds the 42 messages", data)
    typ, data = m.uid("FETCH", "1:*", "(ENVELOPE BODYSTRUCTURE RFC822.SIZE)")
    items = [d for d in data if isinstance(d, bytes)]
    ok(typ == "OK" and len(items) == 42,
       "the first FETCH answers for every message with the server stopped",
       (typ, data[:2]))
    want = first + more
    subj = [re.search(rb'ENVELOPE \((?:NIL|"[^"]*") "([^"]*)"', d) for d in items]
    subj = [s.group(1).decode() if s else None for s in subj]
    ok(subj == want, "each envelope has its message's subject", subj[:3])
    ok(all(b'BODYSTRUCTURE ("TEXT" "PLAIN"' in d for d in items),
       "each has its body structure", items[:1])
    sizes = [int(re.search(rb"RFC822\.SIZE (\d+)", d).group(1)) for d in items]
    typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[])")
    bodies = [d[1] for d in data if isinstance(d, tuple)]
    ok(typ == "OK" and [len(b) for b in bodies] == sizes,
       "RFC822.SIZE is the length of what BODY[] serves",
       (sizes[:3], [len(b) for b in bodies[:3]]))
    m.logout()


if __name__ == "__main__":
    st = sptest.Stack(BUILD, TOP, "sp-bgsum-")
    try:
        main(st)
    except Exception:  # a crash is a failure, with its story
        import traceback
        ok(False, "no exception", traceback.format_exc())
    finally:
        st.cleanup()
    sptest.finish()
