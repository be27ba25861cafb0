"""What the Python integration tests share: TAP output, free ports,
running a command, polling for a condition, knotd serving zones written
here, a local stack (scripts/sealpost-stack) in a temporary directory with
the processes a test starts, stopped and removed at the end.

Import by path:  sys.path.insert(0, os.path.join(TOP, 'tests', 'lib'))
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

n_tests = 0
failed = 0
diag_lines = 20     # lines of a failed check's diagnostic printed
diag_tail = False   # True: its last lines (a log's end), else its first


def ok(cond, name, diag=None):
    """One TAP test point; diag is printed (as # lines) when cond fails."""
    global n_tests, failed
    n_tests += 1
    if not cond:
        failed += 1
        if diag is not None:
            lines = str(diag).splitlines()
            lines = lines[-diag_lines:] if diag_tail else lines[:diag_lines]
            for line in lines:
                print('# ' + line)
    print('%sok %d - %s' % ('' if cond else 'not ', n_tests, name),
          flush=True)
    return cond


def note(msg):
    """A comment (TAP #), each of its lines."""
    for line in str(msg).splitlines() or ['']:
        print('# ' + line, flush=True)


def finish():
    """The TAP plan, then exit: 1 when a check failed."""
    print('1..%d' % n_tests)
    sys.exit(1 if failed else 0)


def free_port(udp=False):
    """A free TCP port on 127.0.0.1; with udp, one free for UDP too (a
    DNS server listens on both)."""
    for _ in range(50):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        if not udp:
            t.close()
            return port
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
        except OSError:
            t.close()
            u.close()
            continue
        t.close()
        u.close()
        return port
    raise RuntimeError("no free port")


def run(cmd, env=None, stdin=None, timeout=120):
    """Runs cmd; (exit code, stdout bytes, stderr bytes)."""
    p = subprocess.run(cmd, env=env, input=stdin, capture_output=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def wait_for(pred, what="", limit=60, step=0.1):
    """Polls pred until it returns something true, and returns that; None
    after limit seconds.  The limit only stops a hung test (never a speed
    assertion)."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return None


def txt(value):
    """A TXT rdata in zone-file syntax: strings of at most 255 bytes."""
    if isinstance(value, bytes):
        value = value.decode()
    parts = [value[i:i + 255] for i in range(0, len(value), 255)] or [""]
    return " ".join('"%s"' % p.replace("\\", "\\\\").replace('"', '\\"')
                    for p in parts)


class Knot:
    """knotd (Debian's Knot DNS) on a free port of 127.0.0.1 serving zones
    ({origin: [(name, type, rdata)], or None: configured, never loads, so
    SERVFAIL}) from files written into the existing directory tmp.
    Started when made, ready when its log says the server started and the
    zones in ready (default: every one with records) are loaded; no fixed
    sleep."""

    def __init__(self, tmp, zones, ready=None):
        self.tmp = tmp
        self.port = free_port(udp=True)
        conf = ["server:", "    rundir: %s" % tmp,
                "    listen: 127.0.0.1@%d" % self.port,
                "database:", "    storage: %s" % tmp,
                "log:", "  - target: %s/knot.log" % tmp, "    any: info",
                "template:", "  - id: default", "    storage: %s" % tmp,
                "    zonefile-sync: -1", "    journal-content: none",
                "zone:"]
        for origin, records in zones.items():
            fname = origin.rstrip(".") + ".zone"
            conf += ["  - domain: %s" % origin, "    file: %s" % fname]
            if records is None:
                continue
            with open(os.path.join(tmp, fname), "w") as f:
                f.write("$ORIGIN %s\n$TTL 60\n" % origin)
                f.write("@ SOA ns.test. hostmaster.test. 1 60 60 60 60\n")
                f.write("@ NS ns.test.\n")
                for name, rtype, data in records:
                    f.write("%s %s %s\n" % (name, rtype, data))
        with open(os.path.join(tmp, "knot.conf"), "w") as f:
            f.write("\n".join(conf) + "\n")
        self.ready = list(ready if ready is not None else
                          [o for o, r in zones.items() if r is not None])
        self.proc = subprocess.Popen(
            ["knotd", "-c", os.path.join(tmp, "knot.conf")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_for(self._ready, "knotd", step=0.05):
            self.stop()
            raise RuntimeError("knotd not ready")

    def _ready(self):
        log = os.path.join(self.tmp, "knot.log")
        try:
            with open(log) as f:
                text = f.read()
        except FileNotFoundError:
            text = ""
        if self.proc.poll() is not None:
            raise RuntimeError("knotd exited: " + text)
        return "server started" in text and all(
            "[%s] loaded" % o in text for o in self.ready)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def stop_procs(procs, timeout):
    """Terminates each process of procs still running (SIGTERM; SIGKILL
    after timeout seconds) and reaps it."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def read_env(path):
    """KEY=VALUE lines (stack.env) as a dict."""
    conf = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.strip().partition('=')
            conf[k] = v
    return conf


class Stack:
    """A temporary directory (tmp) holding a stack (dir), and procs: the
    processes to stop at cleanup()."""

    def __init__(self, build, top, prefix):
        self.build = build
        self.script = os.path.join(top, 'scripts', 'sealpost-stack')
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        self.dir = os.path.join(self.tmp, 'stack')
        self.procs = []

    def up(self, accounts, welcome=True, no_build=False):
        """Starts the stack; returns its stack.env."""
        env = dict(os.environ, SEALPOST_BUILD_DIR=self.build,
                   SEALPOST_STACK_ACCOUNTS=str(accounts))
        if no_build:
            env['SEALPOST_NO_BUILD'] = '1'
        cmd = [self.script, 'up', self.dir]
        if not welcome:
            cmd.append('--no-welcome')
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
        return read_env(os.path.join(self.dir, 'stack.env'))

    def cleanup(self, before_rmtree=None):
        stop_procs(self.procs, 15)
        subprocess.run([self.script, 'down', self.dir],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if before_rmtree:
            before_rmtree()
        if os.environ.get('SP_TEST_KEEP'):
            print('# kept: %s' % self.tmp, flush=True)
            return
        shutil.rmtree(self.tmp, ignore_errors=True)
