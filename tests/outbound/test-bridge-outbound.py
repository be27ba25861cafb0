#!/usr/bin/python3
"""Sending to everyone (issue 7, the joining piece: client-core/outbox.h):
a local stack (sealpost-stack, three accounts, its bridge), our own
sealpost-gateway on its data with knotd serving MX and DKIM records and an
aiosmtpd "recipient MTA" with STARTTLS (the helpers of test-outbound.py),
dkimpy as the verifier and gpg as an outside PGP user.  Mail goes in the
way Thunderbird sends it (smtplib: EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA)
and with swaks through the bridge, and with `sealpost send`.  Prints TAP.

usage: test-bridge-outbound.py BUILD_DIR SOURCE_ROOT
"""
import base64
import importlib.util
import imaplib
import os
import re
import shutil
import smtplib
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
_spec = importlib.util.spec_from_file_location(
    "outbound_helpers", os.path.join(HERE, "test-outbound.py"))
ob = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ob)
dkim = ob.dkim
Controller = ob.Controller
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import sptest  # noqa: E402
from sptest import note, ok, run, wait_for  # noqa: E402

BUILD = os.path.abspath(sys.argv[1])
TOP = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else os.path.join(
    HERE, "..", "..")
STACK = os.path.join(TOP, "scripts", "sealpost-stack")
SEALPOST = os.path.join(BUILD, "client-core", "sealpost")
GATEWAY = os.path.join(BUILD, "server", "gateway", "sealpost-gateway")
ADMIN = os.path.join(BUILD, "server", "sealpost-admin")


# ---- gpg, the outside PGP user ------------------------------------------

def gpg(home, *args, input=None, check=True):
    r = subprocess.run(["gpg", "--homedir", home, "--batch", "--yes",
                        "--no-tty", "--pinentry-mode", "loopback",
                        "--passphrase", "", "--trust-model", "always"] +
                       list(args), input=input, capture_output=True,
                       timeout=120)
    if check and r.returncode != 0:
        raise RuntimeError("gpg %s: %s" % (" ".join(args),
                                           r.stderr.decode()))
    return r


# ---- the test -----------------------------------------------------------

def main():
    tmp = tempfile.mkdtemp(prefix="sp-bridge-out-")
    stack = os.path.join(tmp, "stack")
    env = dict(os.environ, SEALPOST_NO_BUILD="1", SEALPOST_BUILD_DIR=BUILD)
    procs = []
    homes = []
    try:
        rc, o, e = run([STACK, "up", stack, "--no-welcome", "--accounts",
                        "3"], env=env, timeout=300)
        if rc != 0:
            ok(False, "the stack starts", e.decode()[-600:])
            return
        conf = dict(l.split("=", 1) for l in
                    open(os.path.join(stack, "stack.env")).read().split())
        tests(tmp, stack, conf, env, procs, homes)
    finally:
        sptest.stop_procs(procs, 20)
        run([STACK, "down", stack], env=env)
        for h in homes:
            run(["gpgconf", "--homedir", h, "--kill", "all"])
        shutil.rmtree(tmp, ignore_errors=True)


def outside_world(tmp, stack, conf, procs):
    """DKIM keys, knotd, the recipient MTA and our gateway; returns the
    recorder, a dnsfunc for dkimpy and a function reading the gateway
    log."""
    data = conf["DATA_DIR"]
    domain = conf["DOMAIN"]
    ca = ob.make_cert(tmp, "ca", ["sealpost test CA"])
    mx_key, mx_crt = ob.make_cert(tmp, "mx", ["mx.ok.test"], ca)
    zones = {domain + ".": ob.dkim_keys(data, domain),
             "ok.test.": [("@", "MX", "10 mx.ok.test."),
                          ("mx", "A", "127.0.0.1")],
             "pgp.test.": [("@", "MX", "10 mx.ok.test.")]}
    os.makedirs(os.path.join(tmp, "knot"))
    knot = sptest.Knot(os.path.join(tmp, "knot"), zones)
    procs.append(knot.proc)

    rec = ob.Recorder()
    tctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tctx.load_cert_chain(mx_crt, mx_key)
    mport = sptest.free_port()
    ctl = Controller(rec, hostname="127.0.0.1", port=mport,
                     server_kwargs={"tls_context": tctx,
                                    "require_starttls": False})
    ctl.start()
    procs.append(ob.ctl_proc(ctl))

    ob.stop_pidfile(os.path.join(stack, "gateway.pid"))
    glog_path = os.path.join(tmp, "gateway.log")
    glog = open(glog_path, "wb")
    gw = subprocess.Popen([GATEWAY, "serve", "--data-dir", data,
                           "--listen", conf["GATEWAY_SMTP"], "--domains",
                           domain, "--hostname", "mx." + domain,
                           "--record-only-loopback", "--dns",
                           "127.0.0.1:%d" % knot.port,
                           "--outbound-port", str(mport),
                           "--retry-base", "1", "--outbound-ca", ca[1],
                           "--greet-delay", "0", "--threads", "2"],
                          stdout=glog, stderr=subprocess.STDOUT)
    procs.append(gw)
    with open(os.path.join(stack, "gateway.pid"), "w") as f:
        f.write(str(gw.pid))

    dnsfunc = ob.zone_dnsfunc(zones)

    def gwlog():
        return open(glog_path, "rb").read().decode("utf-8", "replace")
    return rec, dnsfunc, gwlog


def dkim_ok(content, dnsfunc):
    """Both DKIM signatures (RSA and Ed25519) verify with dkimpy."""
    n = sum(1 for l in content.split(b"\r\n")
            if l.lower().startswith(b"dkim-signature:"))
    d = dkim.DKIM(content)
    res = [d.verify(idx=i, dnsfunc=dnsfunc) for i in range(n)]
    return n == 2 and all(res), (n, res)


def header_block(content):
    return content.split(b"\r\n\r\n", 1)[0]


def tests(tmp, stack, conf, env, procs, homes):
    domain = conf["DOMAIN"]
    u1, u2, u3 = conf["USER1"], conf["USER2"], conf["USER3"]
    ok("BRIDGE_SMTP" in conf, "the stack's bridge offers SMTP", conf)
    rec, dnsfunc, gwlog = outside_world(tmp, stack, conf, procs)
    ctx = ssl.create_default_context(cafile=conf["BRIDGE_CA_FILE"])
    bhost, bport = conf["BRIDGE_SMTP"].rsplit(":", 1)
    bport = int(bport)
    pw1 = os.path.join(tmp, "user1.pw")
    with open(pw1, "w") as f:
        f.write(conf["USER1_PASSWORD"] + "\n")
    accts = os.path.join(stack, "bridge", "accounts")
    acct_dir = os.path.join(accts, u1)
    if not os.path.isdir(acct_dir):
        acct_dir = os.path.join(accts, [c for c in os.listdir(accts)
                                        if u1 in c][0])

    def cli(n, *args, stdin=None):
        """The sealpost CLI as USERn on a device of its own."""
        e = dict(env, SEALPOST_PASSWORD=conf["USER%d_PASSWORD" % n])
        return run([SEALPOST] + list(args) + [
            "--cache", os.path.join(tmp, "cli-user%d" % n), "--server",
            conf["SERVER"], "--ca", conf["CA_FILE"], "--address",
            conf["USER%d" % n]], env=e, stdin=stdin)

    def find(n, subject, folder="INBOX"):
        cli(n, "sync")
        rc, o, e = cli(n, "ls", folder)
        return [l.split("\t")[0] for l in
                o.decode("utf-8", "replace").splitlines()
                if l.endswith("\t" + subject)]

    def read(n, mid):
        rc, o, e = cli(n, "read", mid)
        return rc, o, e

    def smtp():
        """EHLO, STARTTLS, EHLO, AUTH: how Thunderbird starts."""
        s = smtplib.SMTP(bhost, bport, timeout=120)
        s.ehlo("thunderbird.local")
        s.starttls(context=ctx)
        s.ehlo("thunderbird.local")
        s.login(u1, conf["USER1_BRIDGE_PASSWORD"])
        return s

    def imap_sent_count(subject):
        m = imaplib.IMAP4(bhost, int(conf["BRIDGE_IMAP"].rsplit(":", 1)[1]))
        m.starttls(ssl_context=ctx)
        m.login(u1, conf["USER1_BRIDGE_PASSWORD"])
        m.select("Sent")
        typ, data = m.search(None, "SUBJECT", '"%s"' % subject)
        m.logout()
        return len(data[0].split()) if typ == "OK" else -1

    def msg(subject, to, cc=None, bcc=None, body="hello\r\n", mid=None):
        h = "From: User One <%s>\r\nTo: %s\r\n" % (u1, to)
        if cc:
            h += "Cc: %s\r\n" % cc
        if bcc:
            h += "Bcc: %s\r\n" % bcc
        h += ("Subject: %s\r\nMessage-ID: <%s@test.invalid>\r\n"
              "Date: Mon, 30 Nov 2026 08:00:00 +0000\r\nMIME-Version: 1.0\r\n"
              "Content-Type: text/plain; charset=utf-8\r\n\r\n%s" %
              (subject, mid or os.urandom(8).hex(), body))
        return h

    # ---- 1. Thunderbird's way, smtplib: one internal, one outside, and a
    # ----    Bcc of each kind
    mark = "MARK-MIX-" + os.urandom(5).hex()
    subj = "mixed " + mark
    out1, out2 = "alice@ok.test", "bob@ok.test"
    s = smtp()
    s.mail(u1)
    replies = [s.rcpt(r) for r in (u2, out1, u3, out2)]
    ok([c for c, t in replies] == [250] * 4 and
       b"end to end" in replies[0][1] and b"outside" in replies[1][1],
       "RCPT: the internal recipient end to end, the outside one accepted "
       "for the gateway", replies)
    t0 = time.monotonic()
    code, text = s.data(msg(subj, "%s, %s" % (u2, out1),
                            bcc="%s, %s" % (u3, out2),
                            body="secret body %s\r\n" % mark).encode())
    note("DATA to 2 internal + 2 outside recipients answered in %.0f ms"
         % ((time.monotonic() - t0) * 1000))
    s.quit()
    ok(code == 250 and b"1 end to end" not in text and
       b"2 end to end, 2 to the outbound queue" in text,
       "DATA: 250, two end to end and two to the outbound queue",
       (code, text))

    got = wait_for(lambda: rec.find(mark), "outside delivery", 60)
    ok(bool(got), "the outside recipient MTA receives it", gwlog()[-800:])
    rcpts = sorted(r for m in (got or []) for r in m[1])
    ok(rcpts == [out1, out2], "envelope: the two outside recipients only "
       "(no internal one goes through the gateway)", rcpts)
    if got:
        content = got[0][2]
        good, why = dkim_ok(content, dnsfunc)
        ok(good, "its DKIM signatures (RSA, Ed25519) verify with dkimpy",
           why)
        hdr = header_block(content)
        ok(not re.search(rb"(?im)^bcc:", hdr) and u3.encode() not in
           content and out2.encode() not in content,
           "the outside copy names no Bcc recipient", hdr.decode())
        ok(re.search(rb"(?im)^autocrypt: addr=" + re.escape(u1.encode()),
                     hdr) is not None,
           "it carries the account's Autocrypt header", hdr.decode())
        ok(got[0][3], "the gateway used STARTTLS to the MX")

    ids = wait_for(lambda: find(2, subj), "internal", 60) or []
    rc, body, err = read(2, ids[0]) if ids else (1, b"", b"")
    ok(len(ids) == 1 and b"signature: valid, by the pinned key of " +
       u1.encode() in err and mark.encode() in body,
       "the internal recipient reads it, signature verified", err)
    ok(not re.search(rb"(?im)^bcc:", header_block(body)) and
       u3.encode() not in body and out2.encode() not in body,
       "the internal copy names no Bcc recipient", body[:600])
    ok(out1.encode() in header_block(body),
       "its To: still names the outside recipient (headers untouched)")
    ids3 = wait_for(lambda: find(3, subj), "bcc internal", 60) or []
    rc, body3, err3 = read(3, ids3[0]) if ids3 else (1, b"", b"")
    ok(len(ids3) == 1 and mark.encode() in body3 and
       u3.encode() not in header_block(body3),
       "the internal Bcc recipient got it, without a Bcc header", body3[:400])
    sent = find(1, subj, "Sent")
    ok(len(sent) == 1, "exactly one Sent copy for the mixed send", sent)
    if sent:
        rc, sb, se = read(1, sent[0])
        ok(mark.encode() in sb, "the Sent copy reads back", se)

    # ---- 2. swaks, outside only: Sent copy made by the outbox --------
    mark2 = "MARK-SWAKS-" + os.urandom(5).hex()
    subj2 = "swaks " + mark2
    mid2 = "swaks-" + os.urandom(6).hex()
    if shutil.which("swaks"):
        sw = subprocess.run(
            ["swaks", "--server", bhost, "--port", str(bport), "--tls",
             "--tls-ca-path", conf["BRIDGE_CA_FILE"], "--auth", "LOGIN",
             "--auth-user", u1, "--auth-password",
             conf["USER1_BRIDGE_PASSWORD"], "--from", u1, "--to",
             "carol@ok.test", "--header", "Subject: " + subj2,
             "--header", "Message-ID: <%s@test.invalid>" % mid2,
             "--body", "swaks body " + mark2],
            capture_output=True, text=True, timeout=120)
        ok(sw.returncode == 0 and "to the outbound queue" in sw.stdout,
           "swaks through the bridge to an outside address: 250",
           sw.stdout[-800:])
        got = wait_for(lambda: rec.find(mark2), "swaks delivery", 60)
        ok(bool(got) and dkim_ok(got[0][2], dnsfunc)[0],
           "delivered, DKIM verified", gwlog()[-600:])
        sent = wait_for(lambda: find(1, subj2, "Sent"), "sent", 30) or []
        ok(len(sent) == 1, "an outside-only send stores one Sent copy",
           sent)
        ok(wait_for(lambda: imap_sent_count(subj2) == 1, "imap", 30),
           "the bridge's IMAP shows it in Sent once")
        # Thunderbird then APPENDs its own copy: not stored again.
        m = imaplib.IMAP4(bhost, int(conf["BRIDGE_IMAP"].rsplit(":", 1)[1]))
        m.starttls(ssl_context=ctx)
        m.login(u1, conf["USER1_BRIDGE_PASSWORD"])
        typ, resp = m.append("Sent", "(\\Seen)", None, (
            "From: %s\r\nTo: carol@ok.test\r\nSubject: %s\r\nMessage-ID: "
            "<%s@test.invalid>\r\n\r\nswaks body %s\r\n" %
            (u1, subj2, mid2, mark2)).encode())
        m.logout()
        ok(typ == "OK" and imap_sent_count(subj2) == 1,
           "a client's APPEND of the same message adds no second copy",
           resp)
    else:
        ok(False, "swaks is installed (scripts/setup)")

    # ---- 3. an outside PGP user with a pinned key ----------------------
    home = os.path.join(tmp, "gnupg-pgpuser")
    os.mkdir(home, 0o700)
    homes.append(home)
    paddr = "pgpuser@pgp.test"
    gpg(home, "--quick-gen-key", "PGP User <%s>" % paddr, "future-default",
        "default", "never")
    pkey = os.path.join(tmp, "pgpuser.asc")
    with open(pkey, "wb") as f:
        f.write(gpg(home, "--armor", "--export", paddr).stdout)
    r = run([SEALPOST, "keys", "import", pkey, "--cache", acct_dir,
             "--password-file", pw1], env=env)
    ok(r[0] == 0, "sealpost keys import pins the PGP user's key in the "
       "bridge's account", r[1] + r[2])
    mark3 = "MARK-PGP-" + os.urandom(5).hex()
    subj3 = "pgp " + mark3
    s = smtp()
    try:
        t0 = time.monotonic()
        refused = s.sendmail(u1, [paddr, u2], msg(
            subj3, "%s, %s" % (paddr, u2),
            body="the plan is %s\r\n" % mark3).encode())
        note("MAIL..DATA to 1 PGP/MIME + 1 internal recipient answered "
             "in %.0f ms" % ((time.monotonic() - t0) * 1000))
        res = (True, refused)
    except smtplib.SMTPException as ex:
        res = (False, ex)
    s.quit()
    ok(res[0] and res[1] == {}, "smtplib to a PGP user and an internal "
       "one: accepted", res)
    got = wait_for(lambda: [m for m in rec.messages if paddr in m[1]],
                   "pgp delivery", 60)
    ok(bool(got), "the PGP user's MTA receives a message", gwlog()[-600:])
    if got:
        content = got[0][2]
        hdr = header_block(content)
        ok(b"multipart/encrypted" in hdr and
           b"application/pgp-encrypted" in content and
           mark3.encode() not in content[len(hdr):] and
           subj3.encode() in hdr,
           "it is PGP/MIME (RFC 3156): the outer header as written, the "
           "body encrypted (its marker nowhere)", content[:800])
        ok(dkim_ok(content, dnsfunc)[0], "DKIM verifies on it too")
        # The sender's key, as the PGP user learns it: Autocrypt.
        ac = re.search(rb"(?ims)^autocrypt:(.*?)\r\n(?![ \t])", hdr)
        kd = re.search(rb"keydata=([A-Za-z0-9+/=\s]+)", ac.group(1)) \
            if ac else None
        if kd:
            gpg(home, "--import", input=base64.b64decode(
                re.sub(rb"\s", b"", kd.group(1))), check=False)
        armored = re.search(rb"-----BEGIN PGP MESSAGE-----.*?"
                            rb"-----END PGP MESSAGE-----", content, re.S)
        d = gpg(home, "--status-fd", "2", "--decrypt",
                input=armored.group(0) if armored else b"", check=False)
        ok(d.returncode == 0 and mark3.encode() in d.stdout,
           "gpg --decrypt opens it", d.stderr.decode()[-800:])
        ok(b"[GNUPG:] GOODSIG" in d.stderr and
           b"[GNUPG:] VALIDSIG" in d.stderr,
           "and the signature verifies with the key from Autocrypt",
           d.stderr.decode()[-800:])
    ids = wait_for(lambda: find(2, subj3), "internal pgp", 60) or []
    rc, body, err = read(2, ids[0]) if ids else (1, b"", b"")
    ok(len(ids) == 1 and mark3.encode() in body and
       b"multipart/encrypted" not in body,
       "the internal recipient of the same send gets it end to end, not "
       "PGP/MIME", body[:400])
    sent = find(1, subj3, "Sent")
    ok(len(sent) == 1, "one Sent copy", sent)
    if sent:
        rc, sb, se = read(1, sent[0])
        ok(mark3.encode() in sb and b"multipart/encrypted" not in sb,
           "the Sent copy holds the message as written, not the PGP/MIME "
           "form", sb[:400])

    # ---- 3b. no silent downgrade: a revoked or changed pinned key
    # ----     refuses the whole send, nothing leaves
    def refused_send(rcpt, subject):
        s = smtp()
        try:
            s.sendmail(u1, [u2, rcpt], msg(subject, "%s, %s" % (u2, rcpt),
                                           body=subject + "\r\n").encode())
            res = None
        except smtplib.SMTPException as ex:
            res = ex
        s.quit()
        return res

    rev = os.path.join(tmp, "gnupg-revoked")
    os.mkdir(rev, 0o700)
    homes.append(rev)
    raddr = "revoked@pgp.test"
    gpg(rev, "--quick-gen-key", raddr, "future-default", "default", "never")
    rfpr = [l.split(":")[9] for l in gpg(
        rev, "--with-colons", "--list-keys", raddr).stdout.decode()
        .splitlines() if l.startswith("fpr")][0]
    with open(os.path.join(rev, "openpgp-revocs.d", rfpr + ".rev")) as f:
        cert = f.read().replace(":-----BEGIN", "-----BEGIN")
    gpg(rev, "--import", input=cert.encode())
    rkey = os.path.join(tmp, "revoked.asc")
    with open(rkey, "wb") as f:
        f.write(gpg(rev, "--armor", "--export", raddr).stdout)
    run([SEALPOST, "keys", "import", rkey, "--cache", acct_dir,
         "--password-file", pw1], env=env)
    subj_r = "revoked " + os.urandom(4).hex()
    res = refused_send(raddr, subj_r)
    ok(isinstance(res, smtplib.SMTPDataError) and res.smtp_code == 550 and
       b"revoked" in res.smtp_error.lower() and raddr.encode() in
       res.smtp_error and b"nothing was sent" in res.smtp_error,
       "a revoked pinned key: 550, naming the address, nothing sent (no "
       "fall back to plaintext)", res)
    home2 = os.path.join(tmp, "gnupg-pgpuser-new")
    os.mkdir(home2, 0o700)
    homes.append(home2)
    gpg(home2, "--quick-gen-key", "PGP User <%s>" % paddr,
        "future-default", "default", "never")
    nkey = os.path.join(tmp, "pgpuser-new.asc")
    with open(nkey, "wb") as f:
        f.write(gpg(home2, "--armor", "--export", paddr).stdout)
    run([SEALPOST, "keys", "import", nkey, "--cache", acct_dir,
         "--password-file", pw1], env=env)
    subj_c = "changed " + os.urandom(4).hex()
    res = refused_send(paddr, subj_c)
    ok(isinstance(res, smtplib.SMTPDataError) and res.smtp_code == 550 and
       b"changed" in res.smtp_error and b"keys accept" in res.smtp_error,
       "a changed OpenPGP key waits for `keys accept`: the send is refused",
       res)
    ok(not find(2, subj_r) and not find(2, subj_c) and
       not find(1, subj_r, "Sent") and not find(1, subj_c, "Sent") and
       not rec.find(subj_r) and not rec.find(subj_c),
       "neither refused send reached anyone, nor Sent")

    # ---- 4. `sealpost send`: the same split from the command line --
    mark4 = "MARK-CLI-" + os.urandom(5).hex()
    rc, o, e = cli(1, "send", "--to", "%s,dave@ok.test" % u2, "--bcc",
                   "erin@ok.test", "--subject", "cli " + mark4, "--body",
                   "cli body " + mark4)
    ok(rc == 0 and b"1 end to end, 2 to the outbound queue" in o,
       "sealpost send: one end to end, two through the gateway", o + e)
    got = wait_for(lambda: rec.find(mark4), "cli delivery", 60)
    rcpts = sorted(r for m in (got or []) for r in m[1])
    ok(rcpts == ["dave@ok.test", "erin@ok.test"] and
       b"erin@ok.test" not in got[0][2],
       "both outside recipients get it; the Bcc one is named nowhere",
       rcpts)
    ok(len(wait_for(lambda: find(2, "cli " + mark4), "cli int", 60) or [])
       == 1, "the internal recipient gets it")
    ok(len(find(1, "cli " + mark4, "Sent")) == 1, "one Sent copy")

    mark6 = "MARK-NOACCT-" + os.urandom(5).hex()
    rc, o, e = cli(1, "send", "--to", "greta@ok.test,nobody@" + domain,
                   "--subject", mark6, "--body", mark6)
    ok(rc != 0 and (b"nobody@" + domain.encode() +
                    b" has no sealpost account") in e and
       b"nothing was sent" in e,
       "an unknown address of the own domain is not 'outside': refused, "
       "named, before anything leaves", e)
    ok(not rec.find(mark6) and not find(1, mark6, "Sent"),
       "so the outside recipient of that send got nothing")

    # ---- 5. "encrypted only": refused, with the server's words ------
    rc, o, e = run([ADMIN, "--data-dir", conf["DATA_DIR"], "user",
                    "policy", u1, "encrypted-only"])
    ok(rc == 0, "sealpost-admin user policy ... encrypted-only", e)
    mark5 = "MARK-POLICY-" + os.urandom(5).hex()
    subj5 = "policy " + mark5
    s = smtp()
    try:
        s.sendmail(u1, [u2, "frank@ok.test"], msg(
            subj5, "%s, frank@ok.test" % u2, body=mark5 + "\r\n").encode())
        res = None
    except smtplib.SMTPDataError as ex:
        res = ex
    except smtplib.SMTPException as ex:
        res = ex
    s.quit()
    ok(isinstance(res, smtplib.SMTPDataError) and res.smtp_code == 550 and
       b"5.7.1" in res.smtp_error and b"encrypted-only" in res.smtp_error
       and b"frank@ok.test" in res.smtp_error,
       "550 5.7.1 naming the address, in the server's words", res)
    ok(not find(2, subj5) and not find(1, subj5, "Sent") and
       not rec.find(mark5),
       "nothing was sent: not to the internal recipient, no Sent copy, "
       "nothing outside")
    rc, o, e = cli(1, "send", "--to", "frank@ok.test", "--subject", "x",
                   "--body", "y")
    ok(rc != 0 and b"encrypted-only" in e,
       "sealpost send says the same", e)
    s = smtp()
    try:
        refused = s.sendmail(u1, [u2], msg("policy internal " + mark5, u2))
        res = refused == {}
    except smtplib.SMTPException as ex:
        res = ex
    s.quit()
    ok(res is True, "internal mail still goes under encrypted-only", res)
    run([ADMIN, "--data-dir", conf["DATA_DIR"], "user", "policy", u1,
         "any"])


if __name__ == "__main__":
    try:
        main()
    except Exception:  # a crash is a failure, with its reason
        import traceback
        ok(False, "the test ran to the end", traceback.format_exc())
    sptest.finish()
