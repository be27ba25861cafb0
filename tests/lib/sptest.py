"""What the Python integration tests share: TAP output, a local stack
(scripts/sealpost-stack) in a temporary directory with the processes a
test starts, stopped and removed at the end.

Import by path:  sys.path.insert(0, os.path.join(TOP, 'tests', 'lib'))
"""
import os
import shutil
import subprocess
import sys
import tempfile

n_tests = 0
failed = 0
diag_lines = 20     # lines of a failed check's diagnostic printed


def ok(cond, name, diag=None):
    """One TAP test point; diag is printed (as # lines) when cond fails."""
    global n_tests, failed
    n_tests += 1
    if not cond:
        failed += 1
        if diag is not None:
            for line in str(diag).splitlines()[:diag_lines]:
                print('# ' + line)
    print('%sok %d - %s' % ('' if cond else 'not ', n_tests, name),
          flush=True)
    return cond


def note(msg):
    print('# ' + msg, flush=True)


def finish():
    """The TAP plan, then exit: 1 when a check failed."""
    print('1..%d' % n_tests)
    sys.exit(1 if failed else 0)


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
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        subprocess.run([self.script, 'down', self.dir],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if before_rmtree:
            before_rmtree()
        if os.environ.get('SP_TEST_KEEP'):
            print('# kept: %s' % self.tmp, flush=True)
            return
        shutil.rmtree(self.tmp, ignore_errors=True)
