"""Shared helpers for the gateway's integration tests: a real sealpost
stack (scripts/sealpost-stack), a gateway process on a free port, a tiny
DNS responder (TXT records given, NXDOMAIN for everything else), raw SMTP
sockets, and reading a user's mail back through the real client
(`sealpost export`).  TAP output through ok() (tests/lib/sptest.py)."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

sys.path.insert(0, os.path.join(TOP, "tests", "lib"))
import sptest  # noqa: E402
from sptest import free_port, ok  # noqa: E402,F401
from sptest import note as diag  # noqa: E402,F401


def done():
    """The TAP plan; the exit code (1 when a check failed)."""
    print("1..%d" % sptest.n_tests, flush=True)
    return 1 if sptest.failed else 0


class TxtDns:
    """A DNS server on UDP 127.0.0.1: answers TXT queries from zone
    ({name: [strings]}), NOERROR with no answer for other types of a name
    in zone, NXDOMAIN for everything else (so SPF/DKIM/DMARC run for real
    and quickly find nothing)."""

    def __init__(self, zone=None):
        self.zone = zone or {}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def answer(self, q):
        i, labels = 12, []
        while i < len(q) and q[i] != 0:
            labels.append(q[i + 1:i + 1 + q[i]].decode("ascii", "replace"))
            i += q[i] + 1
        qtype = int.from_bytes(q[i + 1:i + 3], "big")
        name = ".".join(labels).lower()
        question = q[12:i + 5]
        txts = self.zone.get(name) if qtype == 16 else None
        rcode = 0 if (name in self.zone) else 3
        # QR=1, opcode from the query, AA=1, RD copied, RA=1, rcode; the
        # question section is echoed.
        flags = 0x8000 | (q[2] & 0x79) << 8 | 0x0400 | 0x0080 | rcode
        an = b""
        for t in txts or []:
            rdata = bytes([len(t)]) + t.encode()
            an += b"\xc0\x0c" + (16).to_bytes(2, "big") + b"\x00\x01" + \
                (60).to_bytes(4, "big") + len(rdata).to_bytes(2, "big") + rdata
        return q[:2] + flags.to_bytes(2, "big") + q[4:6] + \
            len(txts or []).to_bytes(2, "big") + b"\0\0\0\0" + question + an

    def run(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                q, addr = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(q) >= 17:
                try:
                    self.sock.sendto(self.answer(q), addr)
                except OSError:
                    pass

    def close(self):
        self.stop = True
        self.t.join(2)
        self.sock.close()


NxDns = TxtDns      # no records: NXDOMAIN for every name


class Stack:
    def __init__(self, build, accounts=2):
        self.build = build
        self.dir = tempfile.mkdtemp(prefix="sp-gw-")
        env = dict(os.environ, SEALPOST_BUILD_DIR=build)
        r = subprocess.run([os.path.join(TOP, "scripts/sealpost-stack"),
                            "up", self.dir, "--accounts", str(accounts), "--no-welcome",
                            "--no-bridge"],
                           env=env, capture_output=True, text=True)
        self.up = r.returncode == 0
        if not self.up:
            diag(r.stdout + r.stderr)
            return
        self.env = sptest.read_env(os.path.join(self.dir, "stack.env"))
        self.cert = os.path.join(self.dir, "tls/cert.pem")
        self.key = os.path.join(self.dir, "tls/key.pem")

    def __getitem__(self, k):
        return self.env[k]

    def export(self, user, password):
        """The user's mailbox through the real client: a list of
        (folder, bytes) for every message, or None."""
        md = tempfile.mkdtemp(prefix="md-", dir=self.dir)
        shutil.rmtree(md)
        cache = tempfile.mkdtemp(prefix="cache-", dir=self.dir)
        env = dict(os.environ, SEALPOST_PASSWORD=password)
        r = subprocess.run([os.path.join(self.build, "client-core/sealpost"),
                            "export", "--maildir", md, "--server",
                            self["SERVER"], "--ca", self["CA_FILE"],
                            "--address", user, "--cache", cache],
                           env=env, capture_output=True, timeout=300)
        if r.returncode != 0:
            diag(r.stderr.decode(errors="replace"))
            return None
        out = []
        for root, _, files in os.walk(md):
            for fn in files:
                with open(os.path.join(root, fn), "rb") as f:
                    out.append((os.path.relpath(root, md), f.read()))
        shutil.rmtree(md, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)
        return out

    def down(self):
        subprocess.run([os.path.join(TOP, "scripts/sealpost-stack"), "down",
                        self.dir], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


class Gateway:
    def __init__(self, build, stack, *extra, dns=None, port=None):
        self.build = build
        self.stack = stack
        self.port = port or free_port()
        self.log = os.path.join(stack.dir, "gateway-%d.log" % self.port)
        args = [os.path.join(build, "server/gateway/sealpost-gateway"),
                "serve", "--data-dir", stack["DATA_DIR"],
                "--listen", "127.0.0.1:%d" % self.port,
                "--domains", stack["DOMAIN"], "--hostname", "mx.test",
                "--tls-cert", stack.cert, "--tls-key", stack.key]
        if dns is not None:
            args += ["--dns", "127.0.0.1:%d" % dns]
        args += list(extra)
        self.args = args
        self.start()

    def start(self):
        self.logf = open(self.log, "ab")
        self.p = subprocess.Popen(self.args, stdout=self.logf,
                                  stderr=self.logf)
        for _ in range(200):
            if self.p.poll() is not None:
                break
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                return
            except OSError:
                time.sleep(0.05)
        diag("gateway did not start: " + self.logtext())

    def logtext(self):
        with open(self.log, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait()
        self.logf.close()
        return rc


class Raw:
    """A raw SMTP connection: send bytes, read reply lines."""

    def __init__(self, port, wait_greeting=True, timeout=10):
        self.s = socket.create_connection(("127.0.0.1", port), timeout)
        self.s.settimeout(timeout)
        self.buf = b""
        self.greeting = self.reply() if wait_greeting else None

    def send(self, data):
        self.s.sendall(data if isinstance(data, bytes) else data.encode())

    def line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError("closed")
            self.buf += d
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line.decode(errors="replace")

    def reply(self):
        """One (possibly multi-line) reply: its last line."""
        while True:
            line = self.line()
            if len(line) < 4 or line[3] != "-":
                return line

    def replies(self, n):
        return [self.reply() for _ in range(n)]

    def closed(self):
        """True if the server closed the connection (after any data)."""
        try:
            while True:
                d = self.s.recv(65536)
                if not d:
                    return True
        except (socket.timeout, ConnectionResetError):
            return False

    def close(self):
        self.s.close()


def message(subject, body="hello\r\n", extra=""):
    return ("From: sender@remote.test\r\nTo: someone\r\nSubject: %s\r\n"
            "Message-ID: <%s@remote.test>\r\n%s\r\n%s" %
            (subject, subject.replace(" ", "."), extra, body)).encode()
