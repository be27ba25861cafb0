#!/usr/bin/python3
"""The man pages against the programs: TAP output.

Every page is rendered (scdoc, then groff as man(1) would, with a line long
enough that nothing is hyphenated), and every option a program's --help
prints must appear in its page: the commands of sealpost-admin and
sealpost, each setting of sealpost-server as --KEY in sealpost-server(8)
and as a key in sealpost.conf(5), both usages of sealpost-gateway, the
options sealpost-stack's argument loop accepts and the environment it
reads.  A name that no program has is looked up too, and must be missing,
so that the matching can fail.

Arguments: the build root, the directory holding the built pages (empty if
scdoc was not found: then the .scd sources are rendered here), the source
directory of the pages, the source root.
"""
import os
import re
import shutil
import subprocess
import sys

BUILD, MANDIR, SRCDIR, TOP = sys.argv[1:5]

n = 0
failed = 0


def ok(cond, what, diag=None):
    global n, failed
    n += 1
    print('%s %d - %s' % ('ok' if cond else 'not ok', n, what))
    if not cond:
        failed += 1
        for line in str(diag or '').splitlines():
            print('# ' + line)
    sys.stdout.flush()
    return cond


def run(*cmd, stdin=None):
    r = subprocess.run(list(cmd), capture_output=True, text=True,
                       input=stdin)
    return r.stdout + r.stderr


def render(page):
    """The page as a reader sees it, one paragraph per line."""
    built = os.path.join(MANDIR, page) if MANDIR else ''
    if built and os.path.exists(built):
        roff = open(built).read()
    else:
        roff = run('scdoc', stdin=open(os.path.join(SRCDIR,
                                                    page + '.scd')).read())
    if shutil.which('groff'):
        text = subprocess.run(
            ['groff', '-man', '-Tascii', '-P-c', '-P-b', '-P-u',
             '-rLL=2000n'], input=roff, capture_output=True,
            text=True).stdout
    else:
        text = roff.replace('\\-', '-').replace('\\&', '')
    return re.sub(r'-\n\s+', '-', text)


def options(text):
    return sorted(set(re.findall(r'--[a-z][a-z0-9-]*', text)))


def help_keys(text):
    """The setting names in sealpost-server --help: each is followed by
    its placeholder (N, FILE, ADDR, D1,D2) or yes|no."""
    keys = set()
    for line in text.splitlines():
        if re.match(r'  [a-z]', line):
            keys.update(re.findall(r'(?<![\w-])([a-z][a-z0-9-]*) '
                                   r'(?:[A-Z][A-Z0-9,]*|yes\|no)\b', line))
    return sorted(keys)


def check_all(page, text, names, what, form='%s'):
    missing = [x for x in names if (form % x) not in text]
    ok(names and not missing, '%s: every %s (%d) is in it' %
       (page, what, len(names)), 'missing: %s' % ' '.join(missing))


def main():
    if not shutil.which('scdoc'):
        print('1..0 # SKIP scdoc is not installed (scripts/setup)')
        return 0
    pages = {p: render(p) for p in (
        'sealpost.1', 'sealpost-bridge.1', 'sealpost-stack.1',
        'sealpost.conf.5', 'sealpost-server.8', 'sealpost-gateway.8',
        'sealpost-admin.8')}
    for p, text in pages.items():
        ok('NAME' in text and 'SEE ALSO' in text and len(text) > 500,
           '%s renders (scdoc, groff)' % p, text[:200])

    # sealpost-admin: options and commands.
    h = run(os.path.join(BUILD, 'server', 'sealpost-admin'), '--help')
    check_all('sealpost-admin.8', pages['sealpost-admin.8'], options(h),
              'option of --help')
    cmds = sorted(set(' '.join(m.split()[:2]) if m.split()[0] in
                      ('user', 'domain') else m.split()[0] for m in
                      re.findall(r'^  ([a-z][a-z ]+)', h, re.M)))
    check_all('sealpost-admin.8', pages['sealpost-admin.8'], cmds,
              'command of --help')

    # sealpost-server and sealpost.conf: every setting.
    h = run(os.path.join(BUILD, 'server', 'sealpost-server'), '--help')
    keys = help_keys(h.split('settings', 1)[-1])
    ok(len(keys) > 20 and 'listen' in keys and 'kdf-min-mem-kib' in keys,
       'sealpost-server --help lists its settings', keys)
    check_all('sealpost-server.8', pages['sealpost-server.8'],
              options(h), 'option of --help')
    check_all('sealpost-server.8', pages['sealpost-server.8'], keys,
              'setting as --KEY', '--%s')
    check_all('sealpost.conf.5', pages['sealpost.conf.5'], keys,
              'setting as "KEY ="', '%s =')

    # sealpost-gateway: serve's options and check's usage.
    gw = os.path.join(BUILD, 'server', 'gateway', 'sealpost-gateway')
    h = run(gw, '--help') + run(gw, 'check')
    check_all('sealpost-gateway.8', pages['sealpost-gateway.8'], options(h),
              'option of serve and check')

    # sealpost: options and commands.
    h = run(os.path.join(BUILD, 'client-core', 'sealpost'), '--help')
    check_all('sealpost.1', pages['sealpost.1'], options(h),
              'option of --help')
    words = sorted(set(re.findall(r'^  ([a-z]+)', h, re.M)))
    check_all('sealpost.1', pages['sealpost.1'], words, 'command of --help')

    # sealpost-bridge.
    h = run(os.path.join(BUILD, 'bridge', 'sealpost-bridge'), '--help')
    check_all('sealpost-bridge.1', pages['sealpost-bridge.1'], options(h),
              'option of --help')

    # sealpost-stack: what its argument loop and environment take.
    src = open(os.path.join(TOP, 'scripts', 'sealpost-stack')).read()
    check_all('sealpost-stack.1', pages['sealpost-stack.1'],
              sorted(set(re.findall(r'^\s*(--[a-z-]+)\)', src, re.M))),
              'option of its argument loop')
    check_all('sealpost-stack.1', pages['sealpost-stack.1'],
              sorted(set(re.findall(r'\$\{(SEALPOST_[A-Z_]+)', src))),
              'environment variable it reads')

    # The matching can fail.
    ok('--no-such-option' not in pages['sealpost-admin.8'] and
       'no-such-key =' not in pages['sealpost.conf.5'],
       'a name no program has is not found')
    print('1..%d' % n)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
