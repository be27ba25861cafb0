#!/usr/bin/python3
"""bench/gateway: Postfix's smtp-source sends N messages of 50 KB over 20
sessions to sealpost-gateway (sender authentication on through a local
DNS responder, encryption to the recipient, durable group commit), and
the same load to Postfix's smtp-sink (accepts and discards: the no-op
ceiling of this machine), in the same run.  Prints messages per second
for both and their ratio.

Environment: SP_BENCH_GW_MESSAGES (default 20000), SP_BENCH_GW_SESSIONS
(20), SP_BENCH_GW_SIZE (51200).  Argument: the build directory.
rspamd and clamd are not part of this run (they are separate daemons
with their own cost; see tests/gateway/filter)."""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "tests", "gateway"))
from gwtest import Gateway, NxDns, Stack, free_port  # noqa: E402

build = os.path.abspath(sys.argv[1])
N = int(os.environ.get("SP_BENCH_GW_MESSAGES", "20000"))
S = int(os.environ.get("SP_BENCH_GW_SESSIONS", "20"))
SIZE = int(os.environ.get("SP_BENCH_GW_SIZE", "51200"))


def source(port, to):
    """smtp-source over S sessions that stay connected (-d), as an MTA
    with a queue for one destination would; returns seconds."""
    t0 = time.monotonic()
    r = subprocess.run(["smtp-source", "-d", "-s", str(S), "-m", str(N),
                        "-l", str(SIZE), "-f", "bench@remote.test",
                        "-t", to, "-M", "bench.remote.test",
                        "127.0.0.1:%d" % port],
                       capture_output=True, text=True, timeout=7200)
    t = time.monotonic() - t0
    if r.returncode != 0:
        sys.exit("smtp-source failed: " + r.stderr[-2000:])
    return t


stack = Stack(build, accounts=1)
if not stack.up:
    sys.exit("sealpost-stack up failed")
dns = NxDns()
try:
    # The ceiling: smtp-sink, in this run, on this machine.
    sport = free_port()
    # smtp-sink refuses to run as root without a user to switch to
    user = ["-u", "nobody"] if os.getuid() == 0 else []
    sink = subprocess.Popen(["smtp-sink"] + user + ["127.0.0.1:%d" % sport,
                             "256"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    t_sink = source(sport, stack["USER1"])
    sink.terminate()
    sink.wait()

    gw = Gateway(build, stack, dns=dns.port)
    t_gw = source(gw.port, stack["USER1"])
    gw.stop()
    log = gw.logtext()
    accepted = len(re.findall(r": 250 spf=", log))
    if accepted != N:
        sys.exit("the gateway logged %d accepted messages, not %d"
                 % (accepted, N))
    r_sink = N / t_sink
    r_gw = N / t_gw
    print("bench/gateway: %d messages of %d bytes over %d sessions"
          % (N, SIZE, S))
    print("  smtp-sink (no-op ceiling)          %8.0f msg/s  (%.1f s)"
          % (r_sink, t_sink))
    print("  sealpost-gateway (auth, seal, fsync) %6.0f msg/s  (%.1f s)"
          % (r_gw, t_gw))
    print("  ratio gateway / smtp-sink          %8.2f  (goal >= 0.50)"
          % (r_gw / r_sink))
finally:
    dns.close()
    stack.down()
