#!/usr/bin/python3
"""bench/imap: the bridge against Dovecot (Debian dovecot-imapd, started
here unprivileged with its own configuration in a temporary directory, a
maildir) holding the same N messages, in one run.  Measures for both:

- UID FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE),
  first and again.  The bridge is measured once its background thread has
  caught up (bodies fetched pipelined from the server and summarised,
  bridge/imap_summary.h), as Dovecot is after delivery; the time it took
  is printed;
- an mbsync first full sync of INBOX into an empty maildir;
- UID SEARCH TEXT rareword (the bridge's first one builds its encrypted
  index, so the first and a second run are printed);
- peak RSS (VmHWM: the bridge process; the sum over Dovecot's processes).
  The bridge here unlocks its cache key with the password (no desktop
  keyring), so its peak is the one-off 256 MiB Argon2id at start; the
  RSS after the work is the figure for serving.

Prints each figure and its ratio to Dovecot (bridge / Dovecot: time
ratios above 1 mean the bridge is slower).  Never fails on speed.

Environment: SP_BENCH_IMAP_MESSAGES (default 10000; 100000 shows the
bridge's RSS at that size).  Argument: the build directory.
"""
import imaplib
import os
import pwd
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

build = os.path.abspath(sys.argv[1])
top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(top, "tests", "lib"))
from sptest import free_port, read_env  # noqa: E402
N = int(os.environ.get("SP_BENCH_IMAP_MESSAGES", "10000"))
BRIDGE = os.path.join(build, "bridge", "sealpost-bridge")
SEALPOST = os.path.join(build, "client-core", "sealpost")
STACK = os.path.join(top, "scripts", "sealpost-stack")
RARE = "quuxmarmalade"
WORDS = ("the of and to in is that it was for on are as with his they at be "
         "this from have or by one had not but what all were when we there "
         "can an your which their said if do will each about how up out them "
         "then she many some so these would other into has more her two like "
         "him see time could no make than first been its who now people my "
         "made over did down only way find use may water long little very "
         "after words called just where most know get through back much "
         "before go good new write our used me man too any day same right "
         "look think also around another came come work three word must "
         "because does part even place well such here take why things help "
         "put years different away again off went old number great tell "
         "men say small every found still between name should home big give "
         "air line set own under read last never us left end along while "
         "might next sound below saw something thought both few those always "
         "looked show large often together asked house world going want "
         "school important until form food keep children feet land side "
         "without boy once animals life enough took sometimes four head "
         "above kind began almost live page got earth need far hand high "
         "year mother light parts country father let night following picture "
         "being study second eyes soon times story boys since white days "
         "ever paper hard near sentence better best across during today "
         "others however sure means knew its try told young miles sun ways "
         "thing whole hear example heard several change answer room sea "
         "against top turned learn point city play toward five using himself "
         "usually").split()

tmp = tempfile.mkdtemp(prefix="sp-bench-imap-")
procs = []


def message(i, rng):
    words = [rng.choice(WORDS) for _ in range(rng.randint(60, 600))]
    if i % (N // 3 or 1) == 7:
        words.insert(rng.randrange(len(words)), RARE)
    lines = [" ".join(words[k:k + 12]) for k in range(0, len(words), 12)]
    return ("From: Sender %d <sender%d@example.org>\n"
            "To: Bench <bench@example.org>\n"
            "Subject: message %d about %s\n"
            "Date: Mon, 1 Jan 2024 00:%02d:%02d +0000\n"
            "Message-ID: <bench%d@example.org>\n"
            "MIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=us-ascii\n\n%s\n"
            % (i % 97, i % 97, i, rng.choice(WORDS), (i // 60) % 60, i % 60,
               i, "\n".join(lines)))


def make_data():
    rng = random.Random(6)
    mbox = os.path.join(tmp, "bench.mbox")
    md = os.path.join(tmp, "dovecot", "Maildir")
    for d in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(md, d))
    with open(mbox, "w") as mb:
        for i in range(N):
            text = message(i, rng)
            mb.write("From bench@example.org Mon Jan  1 00:00:00 2024\n")
            mb.write(text.replace("\nFrom ", "\n>From ") + "\n")
            with open(os.path.join(md, "cur", "%d.%d.bench:2,S"
                                   % (1700000000 + i, i)), "w") as f:
                f.write(text.replace("\n", "\r\n"))
    return mbox


def vmhwm(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_split(pid):
    """RssAnon and RssFile (KiB): mapped cache pages count as file."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k = line.split(":")[0]
                if k in ("RssAnon", "RssFile", "VmRSS"):
                    out[k] = int(line.split()[1])
    except OSError:
        pass
    return out


def children_of(root):
    """Every process under root (from /proc), root included."""
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += [c for c, pp in parent.items() if pp == p]
    return out


def dovecot_up():
    d = os.path.join(tmp, "dovecot")
    user = "nobody"
    pw = pwd.getpwnam(user)
    port = free_port()
    for sub in ("run", "state"):
        os.makedirs(os.path.join(d, sub))
    conf = os.path.join(d, "dovecot.conf")
    with open(conf, "w") as f:
        f.write("""base_dir = %(d)s/run
state_dir = %(d)s/state
log_path = %(d)s/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = %(u)s
default_internal_group = %(g)s
default_login_user = %(u)s
first_valid_uid = %(uid)d
passdb {
  driver = static
  args = password=bench
}
userdb {
  driver = static
  args = uid=%(u)s gid=%(g)s home=%(d)s
}
mail_location = maildir:%(d)s/Maildir
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %(port)d
  }
  inet_listener imaps {
    port = 0
  }
}
service anvil {
  chroot =
}
service imap-login {
  chroot =
}
""" % {"d": d, "u": user, "g": "nogroup", "uid": pw.pw_uid, "port": port})
    if os.getuid() == 0:
        subprocess.run(["chown", "-R", "%s:nogroup" % user,
                        os.path.join(d, "Maildir")], check=True)
        os.chmod(d, 0o755)
        os.chmod(tmp, 0o755)
    p = subprocess.Popen(["/usr/sbin/dovecot", "-F", "-c", conf],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    procs.append(p)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            break
        except OSError:
            time.sleep(0.1)
    return p, port


def bridge_up(mbox):
    env = dict(os.environ, SEALPOST_BUILD_DIR=build,
               SEALPOST_STACK_ACCOUNTS="1")
    sdir = os.path.join(tmp, "stack")
    subprocess.run([STACK, "up", sdir, "--no-welcome"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    conf = read_env(os.path.join(sdir, "stack.env"))
    env = dict(os.environ, SEALPOST_PASSWORD=conf["USER1_PASSWORD"])
    t0 = time.monotonic()
    subprocess.run([SEALPOST, "import", "--mbox", mbox, "--cache",
                    os.path.join(tmp, "cli"), "--server", conf["SERVER"],
                    "--ca", conf["CA_FILE"], "--address", conf["USER1"]],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    print("# imported %d messages in %.1f s" % (N, time.monotonic() - t0))
    home = os.path.join(tmp, "bridge")
    pwf = os.path.join(tmp, "pw")
    with open(pwf, "w") as f:
        f.write(conf["USER1_PASSWORD"] + "\n")
    out = subprocess.run([BRIDGE, "--home", home, "accounts", "add",
                          "--address", conf["USER1"], "--server",
                          conf["SERVER"], "--ca", conf["CA_FILE"],
                          "--password-file", pwf], capture_output=True,
                         text=True, check=True)
    bpw = out.stdout.strip().split()[-1]
    log = open(os.path.join(tmp, "bridge.log"), "w")
    p = subprocess.Popen([BRIDGE, "--home", home, "serve", "--imap",
                          "127.0.0.1:0", "--password-file", pwf],
                         stdout=subprocess.PIPE, stderr=log, text=True)
    procs.append(p)
    port = int(p.stdout.readline().split()[1].rsplit(":", 1)[1])
    # Like Dovecot, which indexed the messages as they were delivered,
    # the bridge is measured once it has caught up: its background thread
    # has fetched the bodies and made the IMAP summaries (it logs a line).
    t0 = time.monotonic()
    while time.monotonic() - t0 < 600:
        with open(os.path.join(tmp, "bridge.log")) as f:
            if "summaries made in the background" in f.read():
                break
        time.sleep(0.2)
    print("# the bridge caught up (bodies, summaries) %.1f s after it "
          "started serving" % (time.monotonic() - t0))
    return p, port, conf["USER1"], bpw, sdir, os.path.join(home, "tls",
                                                            "cert.pem")


def login(port, user, pw, cert):
    m = imaplib.IMAP4("127.0.0.1", port)
    if cert:
        m.starttls(ssl_context=ssl.create_default_context(cafile=cert))
    m.login(user, pw)
    return m


def timed(fn):
    t0 = time.monotonic()
    r = fn()
    return time.monotonic() - t0, r


def measure(name, port, user, pw, cert):
    res = {}
    m = login(port, user, pw, cert)
    m.select("INBOX", readonly=True)
    res["fetch"], (typ, data) = timed(lambda: m.uid(
        "FETCH", "1:*", "(FLAGS INTERNALDATE RFC822.SIZE ENVELOPE "
        "BODYSTRUCTURE)"))
    n = sum(1 for d in data if isinstance(d, tuple) or
            (isinstance(d, bytes) and d[:1].isdigit()))
    print("# %s: FETCH returned %d items" % (name, n))
    res["fetch2"], (typ, data2) = timed(lambda: m.uid(
        "FETCH", "1:*", "(FLAGS INTERNALDATE RFC822.SIZE ENVELOPE "
        "BODYSTRUCTURE)"))
    if data2 != data:
        print("# %s: the second FETCH differs from the first" % name)
    res["search1"], (typ, data) = timed(lambda: m.uid("SEARCH", "TEXT",
                                                      RARE))
    res["search2"], (typ, data2) = timed(lambda: m.uid("SEARCH", "TEXT",
                                                       RARE))
    print("# %s: SEARCH TEXT %s: %s" % (name, RARE, data[0].decode()))
    m.logout()
    near = os.path.join(tmp, "mbsync-" + name)
    os.makedirs(near)
    rc = os.path.join(tmp, "mbsyncrc-" + name)
    with open(rc, "w") as f:
        f.write("IMAPAccount a\nHost 127.0.0.1\nPort %d\nUser %s\n"
                "Pass %s\n" % (port, user, pw))
        if cert:
            f.write("SSLType STARTTLS\nCertificateFile %s\n" % cert)
        else:
            f.write("SSLType None\nAuthMechs PLAIN\n")
        f.write("\nIMAPStore far\nAccount a\n\nMaildirStore near\n"
                "Path %s/\nInbox %s/INBOX\n\nChannel c\nFar :far:\n"
                "Near :near:\nPatterns INBOX\nCreate Near\nSync Pull\n"
                "SyncState *\n" % (near, near))
    res["mbsync"], r = timed(lambda: subprocess.run(
        ["mbsync", "-c", rc, "-a"], capture_output=True, text=True,
        env=dict(os.environ, HOME=tmp)))
    got = len(os.listdir(os.path.join(near, "INBOX", "cur"))) + len(
        os.listdir(os.path.join(near, "INBOX", "new"))) \
        if os.path.isdir(os.path.join(near, "INBOX")) else 0
    print("# %s: mbsync rc %d, %d messages" % (name, r.returncode, got))
    if r.returncode != 0:
        print("# " + r.stderr[-500:].replace("\n", "\n# "))
    return res


def main():
    mbox = make_data()
    dp, dport = dovecot_up()
    d = measure("dovecot", dport, "bench", "bench", None)
    d["rss"] = sum(vmhwm(p) for p in children_of(dp.pid))
    d["rss_now"] = sum(rss_split(p).get("VmRSS", 0)
                       for p in children_of(dp.pid))
    bp, bport, user, bpw, sdir, cert = bridge_up(mbox)
    try:
        b = measure("bridge", bport, user, bpw, cert)
        b["rss"] = vmhwm(bp.pid)
        now = rss_split(bp.pid)
        b["rss_now"] = now.get("VmRSS", 0)
        print("# bridge now: %s (the peak is the account unlock's "
              "Argon2id, 256 MiB, once at start)" % now)
    finally:
        subprocess.run([STACK, "down", sdir], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    print("bench/imap: %d messages" % N)
    for k, label, unit in (
            ("fetch", "UID FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE "
             "ENVELOPE BODYSTRUCTURE)", "s"),
            ("fetch2", "the same FETCH again", "s"),
            ("mbsync", "mbsync first full sync", "s"),
            ("search1", "UID SEARCH TEXT rareword (first)", "s"),
            ("search2", "UID SEARCH TEXT rareword (again)", "s"),
            ("rss", "peak RSS", "KiB"),
            ("rss_now", "RSS after the work", "KiB")):
        fmt = "%-62s bridge %10.3f %s  dovecot %10.3f %s  ratio %.2f" \
            if unit == "s" else \
            "%-62s bridge %10d %s  dovecot %10d %s  ratio %.2f"
        print(fmt % (label, b[k], unit, d[k], unit,
                     b[k] / d[k] if d[k] else float("nan")))
    print("bridge peak RSS %.1f MB with %d messages (goal: < 100 MB at "
          "100,000)" % (b["rss"] / 1024, N))


if __name__ == "__main__":
    try:
        main()
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(tmp, ignore_errors=True)
