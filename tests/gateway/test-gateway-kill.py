#!/usr/bin/python3
"""kill -9 under load: parallel SMTP sessions deliver to the gateway, the
gateway is SIGKILLed in the middle, restarted, and every message that got
250 must be in the recipient's mailbox afterwards, read back through the
real client.  TAP.  Argument: the build dir."""

import os
import signal
import smtplib
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gwtest import Gateway, NxDns, Stack, diag, done, message, ok

THREADS = 16
build = os.path.abspath(sys.argv[1])
stack = Stack(build, accounts=1)
if not ok(stack.up, "sealpost-stack up"):
    sys.exit(done())
U1 = stack["USER1"]
dns = NxDns()
gw = Gateway(build, stack, "--record-only-loopback", "--greet-delay", "0",
             dns=dns.port)
acked = set()
lock = threading.Lock()
stop = threading.Event()
killing = threading.Event()
errors = []


def sender(t):
    i = 0
    s = None
    while not stop.is_set():
        try:
            if s is None:
                s = smtplib.SMTP("127.0.0.1", gw.port, timeout=30)
                s.ehlo("load.test")
            tag = "kill-%d-%d" % (t, i)
            i += 1
            s.sendmail("load@remote.test", [U1],
                       message(tag, "payload %s\r\n" % ("z" * 2000)))
            with lock:
                acked.add(tag)
        except (OSError, smtplib.SMTPException) as e:
            # the gateway died: what was not acknowledged may be lost
            s = None
            if not killing.is_set():
                errors.append(repr(e))
            time.sleep(0.05)
    if s is not None:
        try:
            s.close()
        except OSError:
            pass


try:
    threads = [threading.Thread(target=sender, args=(t,))
               for t in range(THREADS)]
    for th in threads:
        th.start()
    deadline = time.time() + 120
    while len(acked) < 200 and time.time() < deadline:
        time.sleep(0.05)
    n_before = len(acked)
    killing.set()
    gw.p.send_signal(signal.SIGKILL)
    gw.p.wait()
    gw.logf.close()
    time.sleep(0.5)
    stop.set()
    for th in threads:
        th.join(60)
    ok(n_before >= 200, "%d messages acknowledged under load before "
       "SIGKILL" % n_before)
    ok(not errors, "no session failed while the gateway ran")
    for e in errors[:5]:
        diag(e)
    gw.start()
    s = smtplib.SMTP("127.0.0.1", gw.port, timeout=30)
    r = s.sendmail("load@remote.test", [U1], message("after-restart"))
    s.quit()
    ok(r == {}, "the restarted gateway accepts mail")
    got = stack.export(U1, stack["USER1_PASSWORD"])
    ok(got is not None, "the mailbox reads back")
    got = got or []
    tags = {}
    for _, body in got:
        for line in body.split(b"\r\n"):
            if line.startswith(b"Subject: "):
                tag = line[9:].decode()
                tags[tag] = tags.get(tag, 0) + 1
    missing = sorted(acked - set(tags))
    ok(not missing, "every acknowledged message is there (%d acked, %d "
       "stored, %d missing)" % (len(acked), len(tags), len(missing)))
    for m in missing[:10]:
        diag("missing: " + m)
    ok("after-restart" in tags, "the message after the restart is there")
    dup = [t for t, n in tags.items() if n > 1]
    ok(not dup, "no message stored twice")
finally:
    stop.set()
    if gw.p.poll() is None:
        gw.stop()
    dns.close()
    stack.down()

sys.exit(done())
