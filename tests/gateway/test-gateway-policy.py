#!/usr/bin/python3
"""sealpost-gateway: the per-domain policy for sender-authentication
failures, and zero-access after delivery.

A small DNS server in this test publishes SPF and DMARC records for two
sender domains (a DMARC p=reject one and a p=quarantine one); the gateway
(no record-only for loopback) is run with each --policy mode:
  enforce (default): p=reject failure -> 550 5.7.1, p=quarantine -> Junk
  quarantine:        p=reject failure -> delivered, into Junk
  record:            delivered into the INBOX, results only recorded
Then unique markers in the subject, the sender's display name, the body
and an attachment name are searched for in every file of the server's data
directory and in the gateway's log, raw and base64: none may appear.
TAP output.  Argument: the build directory.
"""
import base64
import os
import smtplib
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gwtest import Gateway, Stack, TxtDns, done, ok, diag  # noqa: E402

ZONE = {
    "evil.test": ["v=spf1 -all"],
    "_dmarc.evil.test": ["v=DMARC1; p=reject"],
    "soft.test": ["v=spf1 -all"],
    "_dmarc.soft.test": ["v=DMARC1; p=quarantine"],
}


def msg(frm, to, subject, body="hello\r\n"):
    return ("From: %s\r\nTo: <%s>\r\nSubject: %s\r\n"
            "Date: Mon, 30 Nov 2026 08:00:00 +0000\r\n"
            "Message-ID: <%s@x>\r\n\r\n%s" % (frm, to, subject,
                                              os.urandom(6).hex(), body)).encode()


def send(port, mail_from, to, data):
    """The reply to the message: (code, text)."""
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
            s.ehlo("sender.test")
            s.sendmail(mail_from, [to], data)
        return 250, ""
    except smtplib.SMTPDataError as e:
        return e.smtp_code, e.smtp_error.decode(errors="replace")
    except smtplib.SMTPException as e:
        return -1, str(e)


build = os.path.abspath(sys.argv[1])
stack = Stack(build, accounts=1)
if not ok(stack.up, "sealpost-stack up"):
    sys.exit(done())
dns = TxtDns(ZONE)
user, pw = stack["USER1"], stack["USER1_PASSWORD"]
dom = stack["DOMAIN"]
expect = {}   # subject -> folder it must be in (None: refused)
try:
    # enforce (the default)
    gw = Gateway(build, stack, "--greet-delay", "0", dns=dns.port)
    code, text = send(gw.port, "a@evil.test", user,
                      msg("A <a@evil.test>", user, "enforce-reject"))
    ok(code == 550 and "5.7.1" in text, "enforce: a DMARC p=reject failure "
       "gets 550 5.7.1 (%s %s)" % (code, text.strip()[:60]))
    code, _ = send(gw.port, "b@soft.test", user,
                   msg("B <b@soft.test>", user, "enforce-quarantine"))
    ok(code == 250, "enforce: a DMARC p=quarantine failure is accepted")
    expect["enforce-quarantine"] = "Junk"
    gw.stop()
    ok("dmarc=fail" in gw.logtext(), "the log records dmarc=fail")

    gw = Gateway(build, stack, "--greet-delay", "0", "--policy",
                 dom + "=quarantine", dns=dns.port)
    code, _ = send(gw.port, "a@evil.test", user,
                   msg("A <a@evil.test>", user, "quarantine-reject"))
    ok(code == 250, "--policy quarantine: a p=reject failure is accepted")
    expect["quarantine-reject"] = "Junk"
    gw.stop()

    gw = Gateway(build, stack, "--greet-delay", "0", "--policy",
                 dom + "=record", dns=dns.port)
    code, _ = send(gw.port, "a@evil.test", user,
                   msg("A <a@evil.test>", user, "record-reject"))
    ok(code == 250, "--policy record: a p=reject failure is accepted")
    expect["record-reject"] = "INBOX"

    # zero-access: markers in subject, display name, body, attachment name
    mk = {k: "ZAMARK%s%s" % (k, os.urandom(5).hex())
          for k in ("subj", "name", "body", "att")}
    body = ("--b1\r\nContent-Type: text/plain\r\n\r\n%s text\r\n--b1\r\n"
            "Content-Type: application/pdf; name=\"%s.pdf\"\r\n"
            "Content-Disposition: attachment; filename=\"%s.pdf\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n--b1--\r\n" % (
                mk["body"], mk["att"], mk["att"],
                base64.b64encode(b"%PDF-1.4 " + mk["body"].encode()).decode()))
    data = ("From: %s <x@elsewhere.test>\r\nTo: <%s>\r\nSubject: %s\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; "
            "boundary=b1\r\n\r\n%s" % (mk["name"], user, mk["subj"],
                                       body)).encode()
    code, _ = send(gw.port, "x@elsewhere.test", user, data)
    ok(code == 250, "a message with planted markers is delivered")
    gw.stop()

    got = stack.export(user, pw) or []
    where = {}
    for folder, b in got:
        for s in expect:
            if ("Subject: " + s).encode() in b:
                where[s] = folder.split("/")[0]
    for s, f in sorted(expect.items()):
        ok(where.get(s) == f, "%s: delivered into %s (found in %s)" % (
            s, f, where.get(s)))
    ok(not any(b"enforce-reject" in b for _, b in got),
       "the rejected message was not stored")
    ok(any(data == b for _, b in got),
       "the marker message decrypts byte-identical on the client")

    forms = []
    for v in mk.values():
        raw = v.encode()
        forms.append(raw)
        for off in range(3):
            b64 = base64.b64encode(b"x" * off + raw)
            forms.append(b64[4 if off else 0:][:12])
    found = []
    nfiles = 0
    for root, _, files in os.walk(stack.dir):
        if "/cache-" in root or "/md-" in root:
            continue     # the client's own export and cache
        for fn in files:
            p = os.path.join(root, fn)
            try:
                with open(p, "rb") as f:
                    data_f = f.read()
            except OSError:
                continue
            nfiles += 1
            found += [p for v in forms if v in data_f]
    ok(nfiles > 3 and not found, "no marker (raw or base64) in the server's "
       "data directory or the gateway's log (%d files)" % nfiles)
    if found:
        diag("found in: %s" % sorted(set(found))[:5])
finally:
    dns.close()
    stack.down()
sys.exit(done())
