#!/usr/bin/python3
"""Outbound mail end to end (issue 7, "Gateway outbound"): a local stack
(sealpost-stack), our own sealpost-gateway on its data with test timings,
knotd serving MX, DKIM and MTA-STS records for outside domains that all
point at 127.0.0.1, an aiosmtpd "recipient MTA" (STARTTLS, behaviour by
recipient domain) and an HTTPS server for MTA-STS policies.  Mail goes in
with `sealpost submit`; DSNs come back through `sealpost sync/ls/read`.
dkimpy verifies the signatures.  Prints TAP.

usage: test-outbound.py BUILD_DIR
"""
import base64
import http.server
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "gateway", "auth"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import sptest  # noqa: E402
from sptest import Knot, free_port, ok, run, txt, wait_for  # noqa: E402,F401
sptest.diag_tail = True     # a failure shows the end of a log
import dkim  # noqa: E402
from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.smtp import SMTP  # noqa: E402

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.abspath(sys.argv[1])
STACK = os.path.join(TOP, "scripts", "sealpost-stack")
SEALPOST = os.path.join(BUILD, "client-core", "sealpost")
GATEWAY = os.path.join(BUILD, "server", "gateway", "sealpost-gateway")
SERVER = os.path.join(BUILD, "server", "sealpost-server")
ADMIN = os.path.join(BUILD, "server", "sealpost-admin")


# ---- outside world: DNS, recipient MTA, MTA-STS policy server ----------

class Recorder:
    """The recipient MTA's behaviour, per recipient domain:
    temp.test: 451 to the first two RCPTs of each address, then 250;
    never.test: always 451; bad.test: 550 5.1.1; others: 250."""

    def __init__(self):
        self.lock = threading.Lock()
        self.messages = []      # (mail_from, rcpts, data, tls)
        self.rcpt_tries = {}

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        dom = address.rsplit("@", 1)[-1].lower()
        with self.lock:
            n = self.rcpt_tries[address] = self.rcpt_tries.get(address, 0) + 1
        if dom == "bad.test":
            return "550 5.1.1 no such user here"
        if dom == "never.test" or (dom == "temp.test" and n <= 2):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append((envelope.mail_from,
                                  list(envelope.rcpt_tos), envelope.content,
                                  session.ssl is not None))
        return "250 2.0.0 queued"

    def find(self, marker):
        with self.lock:
            return [m for m in self.messages if marker.encode() in m[2]]


def make_cert(tmp, name, sans, ca=None):
    key = os.path.join(tmp, name + ".key")
    crt = os.path.join(tmp, name + ".pem")
    san = ",".join("DNS:" + s for s in sans)
    if ca is None:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                        "-nodes", "-keyout", key, "-out", crt, "-days", "2",
                        "-subj", "/CN=" + sans[0], "-addext",
                        "subjectAltName=" + san], check=True,
                       capture_output=True)
        return key, crt
    csr = os.path.join(tmp, name + ".csr")
    ext = os.path.join(tmp, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=%s\n" % san)
    subprocess.run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", key, "-out", csr, "-subj", "/CN=" + sans[0]],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca[1],
                    "-CAkey", ca[0], "-CAcreateserial", "-out", crt, "-days",
                    "2", "-extfile", ext], check=True, capture_output=True)
    return key, crt


class Policies(http.server.BaseHTTPRequestHandler):
    policies = {}

    def do_GET(self):
        host = (self.headers.get("Host") or "").split(":")[0]
        body = self.policies.get(host)
        if self.path != "/.well-known/mta-sts.txt" or body is None:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a):
        pass


# ---- the test -----------------------------------------------------------

def main():
    tmp = tempfile.mkdtemp(prefix="sp-outbound-")
    stack = os.path.join(tmp, "stack")
    env = dict(os.environ, SEALPOST_NO_BUILD="1", SEALPOST_BUILD_DIR=BUILD)
    procs = []
    try:
        rc, o, e = run([STACK, "up", stack, "--no-welcome", "--no-bridge",
                        "--accounts", "2"], env=env, timeout=300)
        if rc != 0:
            print("1..0 # SKIP the stack did not start: %s" % e.decode()[-300:])
            return 0
        conf = dict(l.split("=", 1) for l in
                    open(os.path.join(stack, "stack.env")).read().split())
        return tests(tmp, stack, conf, env, procs)
    finally:
        sptest.stop_procs(procs, 20)
        run([STACK, "down", stack], env=env)
        shutil.rmtree(tmp, ignore_errors=True)


class ctl_proc:
    """Lets the cleanup loop stop in-process servers like processes."""

    def __init__(self, obj):
        self.obj = obj
        self.done = False

    def poll(self):
        return 0 if self.done else None

    def terminate(self):
        self.done = True
        if hasattr(self.obj, "stop"):
            self.obj.stop()
        else:
            self.obj.shutdown()

    def wait(self, t=None):
        return 0


def stop_pidfile(path):
    try:
        pid = int(open(path).read())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    wait_for(lambda: not os.path.exists("/proc/%d" % pid) or
             open("/proc/%d/stat" % pid).read().split()[2] == "Z", "exit")


def dkim_keys(data, domain):
    """DKIM keys (RSA r1, Ed25519 e1) for domain in the layout
    `sealpost-admin domain add` writes under data; their zone records."""
    kdir = os.path.join(data, "dkim", domain)
    os.makedirs(kdir, exist_ok=True)
    rsa_key = os.path.join(kdir, "r1.rsa.key")
    ed_key = os.path.join(kdir, "e1.ed25519.key")
    run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
         "rsa_keygen_bits:2048", "-out", rsa_key])
    run(["openssl", "genpkey", "-algorithm", "ED25519", "-out", ed_key])
    with open(os.path.join(kdir, "domain.conf"), "w") as f:
        f.write("domain = %s\nrsa-selector = r1\ned25519-selector = e1\n"
                % domain)
    rc, rsa_pub, e = run(["openssl", "pkey", "-in", rsa_key, "-pubout",
                          "-outform", "DER"])
    rc, ed_pub, e = run(["openssl", "pkey", "-in", ed_key, "-pubout",
                         "-outform", "DER"])
    return [("r1._domainkey", "TXT", txt(
        "v=DKIM1; k=rsa; p=" + base64.b64encode(rsa_pub).decode())),
        ("e1._domainkey", "TXT", txt(
            "v=DKIM1; k=ed25519; p=" +
            base64.b64encode(ed_pub[-32:]).decode()))]


def zone_dnsfunc(zones):
    """A dnsfunc for dkimpy answering TXT queries from zones (as given to
    Knot), so it reads the same records as the gateway."""
    def dnsfunc(name, timeout=5):
        n = name.decode().rstrip(".")
        for origin, recs in zones.items():
            o = origin.rstrip(".")
            if n.endswith("." + o):
                label = n[:-len(o) - 1]
                for lab, t, d in recs:
                    if lab == label and t == "TXT":
                        return "".join(re.findall(r'"([^"]*)"', d)).encode()
        return None
    return dnsfunc


def tests(tmp, stack, conf, env, procs):
    data = conf["DATA_DIR"]
    domain = conf["DOMAIN"]
    user1, user2 = conf["USER1"], conf["USER2"]

    dkim_records = dkim_keys(data, domain)

    # Certificates: a test CA for MTA-STS, the MX's certificate from it
    # naming only mx.ok.test (so for mx.sts.test it is a bad certificate).
    ca = make_cert(tmp, "ca", ["sealpost test CA"])
    mx_key, mx_crt = make_cert(tmp, "mx", ["mx.ok.test"], ca)
    web_key, web_crt = make_cert(tmp, "web", ["mta-sts.sts.test",
                                              "mta-sts.stsgood.test"], ca)

    zones = {domain + ".": dkim_records}
    for d in ("ok.test", "temp.test", "bad.test", "never.test", "sts.test",
              "stsgood.test"):
        mx = "mx.sts.test." if d == "sts.test" else "mx.ok.test."
        recs = [("@", "MX", "10 " + mx)]
        if d == "ok.test":
            recs.append(("mx", "A", "127.0.0.1"))
        if d == "sts.test":
            recs.append(("mx", "A", "127.0.0.1"))
        if d.startswith("sts"):
            recs.append(("_mta-sts", "TXT", '"v=STSv1; id=20261130"'))
        zones[d + "."] = recs
    os.makedirs(os.path.join(tmp, "knot"))
    knot = Knot(os.path.join(tmp, "knot"), zones)
    procs.append(knot.proc)
    dns = "127.0.0.1:%d" % knot.port

    # The recipient MTA, STARTTLS offered.
    rec = Recorder()
    tctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tctx.load_cert_chain(mx_crt, mx_key)
    mport = free_port()
    ctl = Controller(rec, hostname="127.0.0.1", port=mport,
                     server_kwargs={"tls_context": tctx,
                                    "require_starttls": False})
    ctl.start()
    procs.append(ctl_proc(ctl))

    # The MTA-STS policy server.
    Policies.policies = {
        "mta-sts.sts.test": "version: STSv1\nmode: enforce\n"
                            "mx: mx.sts.test\nmax_age: 86400\n",
        "mta-sts.stsgood.test": "version: STSv1\nmode: enforce\n"
                                "mx: *.ok.test\nmax_age: 86400\n"}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Policies)
    wctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    wctx.load_cert_chain(web_crt, web_key)
    httpd.socket = wctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    procs.append(ctl_proc(httpd))
    hport = httpd.server_address[1]

    # Our gateway replaces the stack's (same data, same SMTP port).
    stop_pidfile(os.path.join(stack, "gateway.pid"))
    glog = open(os.path.join(tmp, "gateway.log"), "wb")
    gw = subprocess.Popen([GATEWAY, "serve", "--data-dir", data,
                           "--listen", conf["GATEWAY_SMTP"], "--domains",
                           domain, "--hostname", "mx." + domain,
                           "--record-only-loopback", "--dns", dns,
                           "--outbound-port", str(mport),
                           "--retry-base", "1", "--delay-notice", "4",
                           "--expire", "9", "--outbound-ca", ca[1],
                           "--mta-sts-connect", "127.0.0.1:%d" % hport,
                           "--greet-delay", "0", "--threads", "4"],
                          stdout=glog, stderr=subprocess.STDOUT)
    procs.append(gw)
    with open(os.path.join(stack, "gateway.pid"), "w") as f:
        f.write(str(gw.pid))

    def gwlog():
        return open(os.path.join(tmp, "gateway.log"), "rb").read().decode(
            "utf-8", "replace")

    ok(os.path.exists(os.path.join(data, "gateway.pub")) and
       oct(os.stat(os.path.join(data, "gateway.key")).st_mode & 0o777) ==
       "0o600", "gateway key pair in DATA_DIR, the secret 0600")

    u1 = dict(env, SEALPOST_PASSWORD=conf["USER1_PASSWORD"])
    dev1 = os.path.join(tmp, "dev1")
    first = ["--server", conf["SERVER"], "--ca", conf["CA_FILE"],
             "--address", user1]
    rc, o, e = run([SEALPOST, "sync", "--cache", dev1] + first, env=u1)
    ok(rc == 0, "user 1 logs in and syncs", e)

    def submit(to, marker, frm=None, subject="outbound test", cache=dev1,
               uenv=u1):
        msg = ("From: User One <%s>\r\nTo: <%s>\r\nSubject: %s %s\r\n"
               "Date: Mon, 30 Nov 2026 08:00:00 +0000\r\n"
               "Message-ID: <%s@test>\r\nMIME-Version: 1.0\r\n"
               "Content-Type: text/plain; charset=utf-8\r\n\r\n"
               "Hello outside world, %s.\r\n.leading dot line\r\n"
               % (user1, to.split(",")[0], subject, marker, marker, marker))
        return run([SEALPOST, "submit", "--cache", cache, "--from",
                    frm or user1, "--to", to], env=uenv, stdin=msg.encode())

    # ---- plain delivery, DKIM, STARTTLS, zero-access ----
    m1 = "MARKER-OK-" + os.urandom(6).hex()
    rc, o, e = submit("alice@ok.test", m1)
    ok(rc == 0 and b"queued" in o, "sealpost submit queues a message", e)
    got = wait_for(lambda: rec.find(m1), "delivery")
    ok(bool(got), "the recipient MTA received it", gwlog())
    if got:
        frm, rcpts, content, tls = got[0]
        ok(frm == user1 and rcpts == ["alice@ok.test"],
           "envelope: MAIL FROM and RCPT TO as submitted", (frm, rcpts))
        ok(tls, "STARTTLS was used (the MX offers it)")
        ok(b"\r\n.leading dot line" in content,
           "dot-stuffing undone at the other end")
        dnsfunc = zone_dnsfunc(zones)
        sigs = [i for i, l in enumerate(content.split(b"\r\n"))
                if l.lower().startswith(b"dkim-signature:")]
        ok(len(sigs) == 2, "two DKIM signatures (RSA and Ed25519)",
           content[:600])
        d = dkim.DKIM(content)
        res = [d.verify(idx=i, dnsfunc=dnsfunc) for i in range(len(sigs))]
        ok(len(res) == 2 and all(res),
           "both signatures verify with dkimpy (rsa-sha256, ed25519-sha256)",
           "results %s; %s" % (res, d.logger))
        algs = sorted(re.findall(rb"a=([a-z0-9-]+);", content))
        ok(algs == [b"ed25519-sha256", b"rsa-sha256"], "algorithms", algs)
        wait_for(lambda: "entry finished" in gwlog(), "entry done", 20)
        leaked = []
        for root, _, files in os.walk(data):
            for fn in files:
                p = os.path.join(root, fn)
                try:
                    if m1.encode() in open(p, "rb").read():
                        leaked.append(p)
                except OSError:
                    pass
        ok(not leaked, "no file under DATA_DIR holds the plaintext marker",
           leaked)
        ok(m1 not in gwlog(), "the gateway log does not hold the content")

    # ---- 4xx retried, then delivered ----
    m2 = "MARKER-TEMP-" + os.urandom(6).hex()
    rc, o, e = submit("bob@temp.test", m2)
    got = wait_for(lambda: rec.find(m2), "retry", 60)
    ok(rc == 0 and bool(got) and rec.rcpt_tries.get("bob@temp.test") == 3,
       "a 4xx remote is retried with backoff, then delivered (3 attempts)",
       "%s %s" % (rec.rcpt_tries, gwlog()[-800:]))

    # ---- 5xx: a DSN in the sender's INBOX; expiry: delay + failure DSN --
    m3 = "MARKER-BAD-" + os.urandom(6).hex()
    rc, o, e = submit("nobody@bad.test", m3)
    ok(rc == 0, "submission to a 5xx recipient is accepted", e)
    m4 = "MARKER-NEVER-" + os.urandom(6).hex()
    rc, o, e = submit("carol@never.test", m4)

    def inbox():
        run([SEALPOST, "sync", "--cache", dev1], env=u1)
        rc, o, e = run([SEALPOST, "ls", "--cache", dev1, "INBOX"], env=u1)
        return o.decode("utf-8", "replace").splitlines()

    def read(line):
        rc, o, e = run([SEALPOST, "read", "--cache", dev1,
                        line.split("\t")[0]], env=u1)
        return o.decode("utf-8", "replace")

    def dsn_lines(subject):
        return [l for l in inbox() if subject in l]

    got = wait_for(lambda: [l for l in dsn_lines("Undelivered")
                            if m3 in read(l)], "5xx DSN", 60)
    ok(bool(got), "a 5xx gives a failure DSN in the sender's INBOX",
       "\n".join(inbox()) + gwlog()[-600:])
    if got:
        t = read(got[0])
        ok("multipart/report" in t and "report-type=delivery-status" in t
           and "Action: failed" in t and "Status: 5.1.1" in t and
           "Final-Recipient: rfc822; nobody@bad.test" in t and
           "550 5.1.1" in t, "the DSN is RFC 3464 (Action, Status from the "
           "enhanced code, Diagnostic-Code)", t[:1500])
        ok("Hello outside world" not in t,
           "the DSN quotes the headers only, never the body")
    got = wait_for(lambda: [l for l in dsn_lines("Delayed")
                            if m4 in read(l)], "delay DSN", 60)
    ok(bool(got), "a delay DSN after --delay-notice", gwlog()[-600:])
    got = wait_for(lambda: [l for l in dsn_lines("Undelivered")
                            if m4 in read(l)], "expiry DSN", 60)
    ok(bool(got), "expiry after --expire: a failure DSN", gwlog()[-600:])
    if got:
        t = read(got[0])
        ok("Action: failed" in t and "451 4.3.0" in t,
           "the expiry DSN carries the last remote answer", t[:1500])
    ok(not rec.find(m4) and not rec.find(m3),
       "neither message reached the recipient MTA")

    # ---- MTA-STS ----
    m5 = "MARKER-STS-" + os.urandom(6).hex()
    rc, o, e = submit("dave@stsgood.test", m5)
    got = wait_for(lambda: rec.find(m5), "sts good", 60)
    ok(bool(got) and got[0][3], "MTA-STS enforce with a valid certificate: "
       "delivered over TLS", gwlog()[-600:])
    m6 = "MARKER-STSBAD-" + os.urandom(6).hex()
    before = gwlog().count("MTA-STS")
    rc, o, e = submit("erin@sts.test", m6)
    wait_for(lambda: [l for l in dsn_lines("Undelivered") if m6 in read(l)],
             "sts bad", 60)
    ok(not rec.find(m6) and
       "MTA-STS enforce: certificate not valid" in
       "\n".join(read(l) for l in dsn_lines("Undelivered")),
       "MTA-STS enforce with a bad certificate: never delivered, the "
       "DSN says why", gwlog()[-800:])
    ok(rec.rcpt_tries.get("erin@sts.test") is None,
       "no RCPT was ever sent to the MX with the bad certificate")

    # ---- refusals: sender, policy, rate ----
    rc, o, e = submit("x@ok.test", "m", frm=user2)
    ok(rc != 0 and b"own address" in e, "a sender other than the account "
       "is refused", e)
    rc, o, e = run([ADMIN, "--data-dir", data, "user", "policy", user1,
                    "encrypted-only"])
    ok(rc == 0, "sealpost-admin user policy ... encrypted-only", e)
    rc, o, e = submit("x@ok.test", "m")
    ok(rc != 0 and b"encrypted-only" in e, "encrypted-only refuses "
       "submission with a clear message", e)
    rc, o, e = run([ADMIN, "--data-dir", data, "user", "policy", user1,
                    "any"])
    rc, o, e = submit("y@ok.test", "m-again")
    ok(rc == 0, "policy any: submission accepted again", e)

    # Rate: restart the server with a small limit.
    stop_pidfile(os.path.join(stack, "server.pid"))
    port = conf["SERVER"].split(":")[1]
    slog = open(os.path.join(tmp, "server2.log"), "wb")
    srv = subprocess.Popen([SERVER, "--listen", "127.0.0.1", "--port", port,
                            "--data-dir", data, "--domains", domain,
                            "--tls-cert", os.path.join(stack, "tls",
                                                       "cert.pem"),
                            "--tls-key", os.path.join(stack, "tls",
                                                      "key.pem"),
                            "--submit-per-hour", "3"],
                           stdout=slog, stderr=subprocess.STDOUT)
    procs.append(srv)
    with open(os.path.join(stack, "server.pid"), "w") as f:
        f.write(str(srv.pid))
    wait_for(lambda: run(["curl", "-sf", "--cacert", conf["CA_FILE"],
                          "https://%s/health" % conf["SERVER"]])[0] == 0,
             "server")
    results = [submit("r%d@ok.test" % i, "rate")[0] for i in range(4)]
    rc, o, e = submit("r9@ok.test", "rate")
    ok(results[:3] == [0, 0, 0] and results[3] != 0 and rc != 0 and
       b"limit" in e, "the per-account rate limit (3/hour here) refuses "
       "the 4th", "%s %s" % (results, e))
    return 0


if __name__ == "__main__":
    try:
        main()
    except Exception as ex:  # a crash is a failure, with its reason
        import traceback
        ok(False, "the test ran to the end", traceback.format_exc())
    sptest.finish()
