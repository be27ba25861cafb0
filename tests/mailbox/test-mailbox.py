#!/usr/bin/python3
"""The mailbox model end to end, through the real `sealpost` command on a
real local stack (server over TLS on 127.0.0.1).

- A 1,000-message mbox (with "From " lines inside bodies, CRLF and LF
  messages, 8-bit text, an attachment) is imported, exported to Maildir
  and to mbox, and every message comes back byte-identical.
- Two devices of one account converge after concurrent flag, move and
  delete changes, with identical UIDs; a third device, starting empty,
  computes the same UIDs.
- Folders: create, rename (with children), delete; system folders refuse.
- Zero-access: unique markers in subjects, display names, bodies and
  attachment names (raw and base64 forms; quoted-printable
  leaves these ASCII markers as they are, so raw covers it) appear nowhere
  in the server's files or log.

TAP output.  Argument 1: the build directory.
"""
import base64
import binascii
import os
import re
import shutil
import subprocess
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(TOP, "build"))
SEALPOST = os.path.join(BUILD, "client-core", "sealpost")
STACK = os.path.join(TOP, "scripts", "sealpost-stack")
NMSG = int(os.environ.get("SP_TEST_MBOX_MESSAGES", "1000"))

sys.path.insert(0, os.path.join(TOP, "tests", "lib"))
import sptest  # noqa: E402
from sptest import ok  # noqa: E402


def run(args, env=None, input=None):
    p = subprocess.run(args, env=env, input=input, capture_output=True)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def marker(tag):
    return "SPMARK%s%s" % (tag, binascii.hexlify(os.urandom(6)).decode())


def make_messages(markers):
    """NMSG messages as bytes; a few carry the zero-access markers."""
    msgs = []
    for i in range(NMSG):
        nl = b"\r\n" if i % 3 == 0 else b"\n"
        if i == 7:
            m = markers
            boundary = "b%d" % i
            att = base64.encodebytes(("attachment " + m["att_body"]).encode()).decode()
            text = ("From: =?utf-8?q?%s_K=C3=A4the?= <kathe@example.org>\n"
                    "To: user1@demo.sealpost.test\n"
                    "Subject: %s\n"
                    "Date: Mon, 30 Nov 2026 08:00:00 +0000\n"
                    "Message-ID: <m%d@example.org>\n"
                    "MIME-Version: 1.0\n"
                    "Content-Type: multipart/mixed; boundary=%s\n\n"
                    "--%s\nContent-Type: text/plain; charset=utf-8\n"
                    "Content-Transfer-Encoding: 8bit\n\n%s body text\n"
                    "--%s\nContent-Type: application/octet-stream; name=\"%s.pdf\"\n"
                    "Content-Disposition: attachment; filename=\"%s.pdf\"\n"
                    "Content-Transfer-Encoding: base64\n\n%s"
                    "--%s--\n") % (m["name"], m["subject"], i, boundary, boundary,
                                   m["body"], boundary, m["att"], m["att"], att, boundary)
            msgs.append(text.encode())
            continue
        lines = [b"From: Sender %d <s%d@example.org>" % (i, i),
                 b"To: user1@demo.sealpost.test",
                 b"Subject: message %d \xc3\xa9t\xc3\xa9" % i,
                 b"Date: Mon, 30 Nov 2026 07:%02d:00 +0000" % (i % 60),
                 b"Message-ID: <%d@example.org>" % i,
                 b"Content-Type: text/plain; charset=utf-8",
                 b"Content-Transfer-Encoding: 8bit",
                 b"",
                 b"Hello %d." % i,
                 b"From the start of a line: must survive mbox.",
                 b">From quoted already, must survive too.",
                 b"caf\xc3\xa9 " * (i % 50)]
        msgs.append(nl.join(lines) + nl)
    return msgs


def mboxrd(msgs):
    out = []
    for m in msgs:
        out.append(b"From sender@example.org Mon Nov 30 07:00:00 2026\n")
        for line in m.splitlines(keepends=True):
            if re.match(rb"^>*From ", line):
                line = b">" + line
            out.append(line)
        if not m.endswith(b"\n"):
            out.append(b"\n")
        out.append(b"\n")
    return b"".join(out)


def parse_mboxrd(data):
    msgs, cur = [], None
    for line in data.splitlines(keepends=True):
        if line.startswith(b"From "):
            if cur is not None:
                msgs.append(b"".join(cur)[:-1])  # the separator blank line
            cur = []
            continue
        if re.match(rb"^>+From ", line):
            line = line[1:]
        cur.append(line)
    if cur is not None:
        msgs.append(b"".join(cur)[:-1])
    return msgs


def main():
    tmp = tempfile.mkdtemp(prefix="sp-mbox-")
    env = dict(os.environ, SEALPOST_BUILD_DIR=BUILD, SEALPOST_NO_BUILD="1")
    stack = os.path.join(tmp, "stack")
    rc, out, err = run([STACK, "up", stack, "--accounts", "2", "--no-welcome"], env=env)
    if rc != 0:
        print("1..1")
        ok(False, "the local stack starts", err)
        shutil.rmtree(tmp, ignore_errors=True)
        return 1
    try:
        return tests(tmp, stack, env)
    finally:
        run([STACK, "down", stack], env=env)
        shutil.rmtree(tmp, ignore_errors=True)


def tests(tmp, stack, env):
    conf = dict(l.split("=", 1) for l in open(os.path.join(stack, "stack.env")).read().split())
    u_env = dict(env, SEALPOST_PASSWORD=conf["USER1_PASSWORD"])
    first = ["--server", conf["SERVER"], "--ca", conf["CA_FILE"], "--address", conf["USER1"]]
    devA, devB, devC = (os.path.join(tmp, d) for d in ("devA", "devB", "devC"))

    def sp(*args, cache=devA, extra=()):
        return run([SEALPOST] + list(args[:1]) + ["--cache", cache] + list(extra) + list(args[1:]), env=u_env)

    def listing(cache):
        out = {}
        rc, o, e = sp("folders", cache=cache)
        for line in o.decode().splitlines():
            name = line.split("\t")[0]
            rc, lo, e = sp("ls", name, cache=cache)
            out[name] = lo.decode()
        return out

    markers = {k: marker(k) for k in ("subject", "name", "body", "att", "att_body")}
    msgs = make_messages(markers)
    mbox = os.path.join(tmp, "in.mbox")
    with open(mbox, "wb") as f:
        f.write(mboxrd(msgs))
    ok(parse_mboxrd(open(mbox, "rb").read()) == msgs, "the test's own mbox writer and reader agree")

    rc, o, e = sp("sync", cache=devA, extra=first)
    ok(rc == 0, "device A: first sync remembers the settings", e)
    rc, o, e = sp("import", "--mbox", mbox)
    ok(rc == 0 and b"imported %d messages" % NMSG in o, "import of a %d-message mbox" % NMSG, e)

    maildir = os.path.join(tmp, "out-maildir")
    rc, o, e = sp("export", "--maildir", maildir)
    ok(rc == 0, "export to Maildir", e)
    cur = os.path.join(maildir, "INBOX", "cur")
    files = sorted(os.listdir(cur), key=lambda f: int(f.split(".")[1])) if os.path.isdir(cur) else []
    got = [open(os.path.join(cur, f), "rb").read() for f in files]
    bad = [i for i in range(min(len(got), len(msgs))) if got[i] != msgs[i]]
    ok(len(got) == NMSG and not bad, "Maildir export: %d messages, all byte-identical" % len(got),
       "first differing: %s" % bad[:5])

    out_mbox = os.path.join(tmp, "out.mbox")
    rc, o, e = sp("export", "--mbox", out_mbox, "--folder", "INBOX")
    back = parse_mboxrd(open(out_mbox, "rb").read()) if rc == 0 else []
    ok(rc == 0 and back == msgs, "mbox export round-trips byte-identical (mboxrd quoting)", e)

    rc, o, e = sp("ls", "INBOX")
    lines = o.decode().splitlines()
    ok(rc == 0 and len(lines) == NMSG, "ls lists every message", e)
    uids = [int(l.split("\t")[1]) for l in lines]
    ok(uids == list(range(1, NMSG + 1)), "UIDs are 1..N in arrival order")
    ok(any(markers["subject"] in l and ("%s K\u00e4the" % markers["name"]) in l for l in lines),
       "the subject and the RFC 2047 display name are decoded for listing")
    ids = [l.split("\t")[0] for l in lines]

    rc, o, e = sp("read", ids[7])
    ok(rc == 0 and o == msgs[7], "read returns the message byte-identical", e)
    rc, o, e = sp("ls", "INBOX")
    ok("\tseen\t" in o.decode().splitlines()[7], "read marks the message seen")

    # --- two devices, concurrent changes ---------------------------------
    rc, o, e = sp("sync", cache=devB, extra=first)
    ok(rc == 0, "device B: first sync", e)
    ok(listing(devA) == listing(devB), "device B sees what device A sees, same UIDs")
    # Concurrent: with --no-pull each device acts on the state it last saw,
    # so its change is written without knowing the other device's.
    NP = ("--no-pull",)
    rc1, _, e1 = sp("flag", "+flagged", ids[1], ids[2], cache=devA)
    rc2, _, e2 = sp("mv", ids[1], "Archive", cache=devB, extra=NP)
    rc3, _, e3 = sp("rm", ids[2], cache=devB, extra=NP)
    rc4, _, e4 = sp("flag", "+seen", ids[2], ids[3], cache=devA, extra=NP)
    rc5, _, e5 = sp("flag", "+urgent", ids[3], cache=devB, extra=NP)
    rc6, _, e6 = sp("flag", "-seen", ids[7], cache=devA, extra=NP)
    ok(rc1 == rc2 == rc3 == rc4 == rc5 == rc6 == 0, "concurrent changes from two devices are accepted",
       e1 + e2 + e3 + e4 + e5 + e6)
    la, lb = listing(devA), listing(devB)
    ok(la == lb, "the devices converge", "A: %r\nB: %r" % (la.get("Archive"), lb.get("Archive")))
    arch = la.get("Archive", "")
    ok(("%s\t1\tflagged\t" % ids[1]) in arch, "moved on B, flagged on A: in Archive with uid 1, flagged", arch)
    inbox = la.get("INBOX", "")
    ok(("\n%s\t" % ids[2]) not in "\n" + inbox and ids[2] + "\t" not in arch,
       "deleted on B: gone on A, the later flag change on A has no effect")
    row3 = [l for l in inbox.splitlines() if l.startswith(ids[3] + "\t")]
    ok(row3 and "seen" in row3[0] and "urgent" in row3[0], "flags from both devices on one message both apply",
       row3)
    rc, o, e = sp("read", ids[2], cache=devA)
    ok(rc != 0 and "no message" in e, "a deleted message cannot be read", e)

    rc, o, e = sp("sync", cache=devC, extra=first)
    ok(rc == 0 and listing(devC) == la, "a new device computes the same folders, UIDs and flags", e)

    # --- folders ----------------------------------------------------------
    rc, o, e = sp("folder", "create", "Projects/2026")
    ok(rc == 0, "folder create", e)
    rc, o, e = sp("folder", "create", "Projects")
    rc2, o2, e2 = sp("folder", "create", "Projects")
    ok(rc == 0 and rc2 != 0 and "exists" in e2, "creating an existing name is refused", e2)
    rc, o, e = sp("mv", ids[10], ids[11], "Projects/2026")
    rc2, o2, e2 = sp("folder", "rename", "Projects", "Old")
    rc3, o3, e3 = sp("ls", "Old/2026")
    ok(rc == 0 and rc2 == 0 and rc3 == 0 and len(o3.splitlines()) == 2,
       "rename takes the folders below along, messages stay", e + e2 + e3)
    rc, o, e = sp("folder", "rename", "INBOX", "X")
    ok(rc != 0 and ("cannot" in e or "no folder" in e), "system folders cannot be renamed", e)
    rc, o, e = sp("folder", "delete", "Old/2026")
    rc2, o2, e2 = sp("ls", "Old/2026")
    ok(rc == 0 and rc2 != 0, "folder delete", e + e2)
    ok(listing(devB) == listing(devA), "folder changes reach the other device")

    # --- a deleted message's body blob leaves the server ------------------
    def server_blobs():
        r = subprocess.run([os.path.join(BUILD, "server", "sealpost-admin"),
                            "--data-dir", conf["DATA_DIR"], "status"],
                           capture_output=True, text=True)
        m = re.search(r"^blobs\s+(\d+)", r.stdout, re.M)
        return int(m.group(1)) if m else -1
    b0 = server_blobs()
    rc, o, e = sp("rm", ids[50], ids[51])
    b1 = server_blobs()
    ok(rc == 0 and b0 > 0 and b1 == b0 - 2,
       "rm deletes each message's body blob on the server (%d -> %d)" % (b0, b1), e)

    # --- snapshot and compaction -------------------------------------------
    # B falls behind (changes on A it has not seen), A compacts, then B, a
    # brand-new device D and A all agree; changes after it still flow.
    rc, o, e = sp("flag", "+answered", ids[20], ids[21], cache=devA)
    rc2, o2, e2 = sp("mv", ids[22], "Archive", cache=devA)
    before = listing(devA)
    rc3, o3, e3 = sp("compact", cache=devA)
    ok(rc == rc2 == rc3 == 0 and b"compacted" in o3, "compact writes a snapshot and drops the log before it",
       e + e2 + e3)
    ok(listing(devA) == before, "the device that compacted sees no change")
    devD = os.path.join(tmp, "devD")
    rc, o, e = sp("sync", cache=devD, extra=first)
    ok(rc == 0 and listing(devD) == before,
       "a new device builds the same folders, UIDs and flags from the snapshot alone", e)
    ok(listing(devB) == before, "a device that fell behind rebuilds from the snapshot")
    rc, o, e = sp("read", ids[30], cache=devD)
    ok(rc == 0 and o == msgs[30], "bodies still open after compaction", e)
    rc, o, e = sp("flag", "+flagged", ids[40], cache=devD)
    rc2, o2, e2 = sp("ls", "INBOX", cache=devB)
    ok(rc == 0 and any(l.startswith(ids[40] + "\t") and "flagged" in l for l in o2.decode().splitlines()),
       "changes after the snapshot reach the other devices", e + e2)
    rc, o, e = sp("compact", cache=devB)
    ok(rc == 0 and listing(devA) == listing(devB) == listing(devD), "a second compaction keeps everyone equal", e)

    # --- sent mail carries markers too --------------------------------------
    sent = {k: marker("sent" + k) for k in ("subject", "name", "body", "att")}
    att = os.path.join(tmp, sent["att"] + ".txt")
    with open(att, "w") as f:
        f.write("attachment " + sent["body"] + "\n")
    u2_env = dict(env, SEALPOST_PASSWORD=conf["USER2_PASSWORD"])
    rc, o, e = run([SEALPOST, "send", "--cache", devA, "--to", conf["USER2"],
                    "--subject", sent["subject"], "--body", "hello " + sent["body"],
                    "--attach", att], env=u_env)
    ok(rc == 0, "internal send with markers in subject, body and attachment name", e)
    msg2 = ("From: %s <%s>\r\nTo: <%s>\r\nSubject: display name %s\r\n\r\nbody\r\n" % (
        sent["name"], conf["USER1"], conf["USER2"], sent["name"])).encode()
    rc2, o2, e2 = run([SEALPOST, "send", "--cache", devA], env=u_env, input=msg2)
    ok(rc2 == 0, "internal send of an RFC 5322 message with a marker display name", e2)
    devU2 = os.path.join(tmp, "devU2")
    rc, o, e = run([SEALPOST, "ls", "--cache", devU2, "--server", conf["SERVER"], "--ca",
                    conf["CA_FILE"], "--address", conf["USER2"], "INBOX"], env=u2_env)
    row = [l for l in o.decode().splitlines() if sent["subject"] in l]
    ok(rc == 0 and len(row) == 1, "the recipient lists the sent message", e)
    if row:
        rc, o, e = run([SEALPOST, "read", "--cache", devU2, row[0].split("\t")[0]], env=u2_env)
        ok(rc == 0 and sent["body"].encode() in o and "valid" in e,
           "the recipient reads it with a valid signature", e)
    markers.update({"sent " + k: v for k, v in sent.items()})

    # --- zero-access ------------------------------------------------------
    data = conf["DATA_DIR"]
    forms = {}
    for k, m in markers.items():
        raw = m.encode()
        forms[k + " raw"] = raw
        for off in range(3):
            b64 = base64.b64encode(b"x" * off + raw)[4 if off else 0:][:len(raw)]
            forms["%s base64+%d" % (k, off)] = b64[:16]
    blobs = []
    for root, _, fs in os.walk(stack):
        for f in fs:
            p = os.path.join(root, f)
            if p.startswith(os.path.join(tmp, "dev")) or p == att:
                continue
            try:
                blobs.append((p, open(p, "rb").read()))
            except OSError:
                pass
    found = [(k, p) for k, v in forms.items() for p, b in blobs if v in b]
    ok(not found and any(p.endswith("data.mdb") for p, _ in blobs),
       "no marker (raw or base64) in the server's files or log (%d files)" % len(blobs),
       found[:5])
    found_local = [k for k, v in forms.items()
                   for root, _, fs in os.walk(devA) for f in fs
                   if v in open(os.path.join(root, f), "rb").read()]
    ok(not found_local, "nor in a device's local cache (a stolen laptop)", found_local[:5])

    print("1..%d" % sptest.n_tests)
    return 1 if sptest.failed else 0


if __name__ == "__main__":
    sys.exit(main())
