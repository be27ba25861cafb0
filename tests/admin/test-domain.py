#!/usr/bin/python3
"""sealpost-admin domain add|list|show, end to end.  TAP output.

The keys are checked against what they must be (OpenSSL reads them: RSA of
2048 bits, Ed25519, mode 0600), the printed zone text is parsed as a zone
(dnspython), the DKIM records' p= are compared with the keys' public halves
as OpenSSL prints them, and dkimpy signs a message with each private key
and verifies it against the printed record alone (and fails against the
other domain's record, so the check can fail).  Then: show prints the same
bytes as add, list, rotation by --selector (old keys kept, never replaced),
a new --mx gives a new MTA-STS id, and usage errors touch nothing.

Argument 1: the build directory.
"""
import base64
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile

import dkim
import dns.rdatatype
import dns.zone

BUILD = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(__file__), '..', '..', 'build')
ADMIN = os.path.join(BUILD, 'server', 'sealpost-admin')

n = 0
failed = 0


def ok(cond, what, diag=None):
    global n, failed
    n += 1
    print('%s %d - %s' % ('ok' if cond else 'not ok', n, what))
    if not cond:
        failed += 1
        if diag:
            for line in str(diag).splitlines():
                print('# ' + line)
    sys.stdout.flush()
    return cond


def admin(data, *args):
    return subprocess.run([ADMIN, '--data-dir', data] + list(args),
                          capture_output=True, text=True)


def openssl(*args, data=None):
    r = subprocess.run(['openssl'] + list(args), input=data,
                       capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.decode())
    return r.stdout


def txt_records(zone_text, origin):
    """{owner: [joined TXT string]} and the parsed zone."""
    z = dns.zone.from_text(zone_text, origin=origin, relativize=False,
                           check_origin=False)
    txt = {}
    for name, node in z.nodes.items():
        for rds in node.rdatasets:
            if rds.rdtype == dns.rdatatype.TXT:
                for rd in rds:
                    txt.setdefault(name.to_text(), []).append(
                        b''.join(rd.strings).decode())
    return z, txt


def tags(value):
    return dict((k.decode(), v.decode()) for k, v in
                dkim.util.parse_tag_value(value.encode()).items())


def rdata(z, owner, rdtype):
    rds = z.get_rdataset(owner, rdtype)
    return [r.to_text() for r in rds] if rds else []


MESSAGE = (b'From: Alice <alice@example.org>\r\n'
           b'To: bob@example.net\r\n'
           b'Subject: DKIM check\r\n'
           b'Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n'
           b'Message-ID: <dkim-check@example.org>\r\n'
           b'\r\n'
           b'Signed by a key that sealpost-admin made.\r\n')


def sign_verify(key_pem, selector, algo, records):
    """dkimpy signs with the key and verifies against records only."""
    if algo == b'ed25519-sha256':
        # dkimpy takes the raw 32-byte seed, base64: the tail of the DER.
        der = openssl('pkey', '-outform', 'DER', data=key_pem)
        key = base64.b64encode(der[-32:])
    else:
        key = key_pem
    sig = dkim.sign(MESSAGE, selector.encode(), b'example.org', key,
                    signature_algorithm=algo,
                    include_headers=[b'from', b'to', b'subject'])

    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        v = records.get(name.rstrip('.') + '.')
        return v[0].encode() if v else None
    return dkim.verify(sig + MESSAGE, dnsfunc=dnsfunc)


def main():
    tmp = tempfile.mkdtemp(prefix='sp-domain-')
    try:
        run(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print('1..%d' % n)
    return 1 if failed else 0


def run(tmp):
    data = os.path.join(tmp, 'data')
    r = admin(data, 'domain', 'add', 'example.org')
    ok(r.returncode == 1 and 'no store' in r.stderr,
       'domain add refuses a data directory that was never initialised',
       r.stderr)
    r = subprocess.run([ADMIN, '--data-dir', data, 'init'],
                       capture_output=True, text=True)
    ok(r.returncode == 0, 'init', r.stderr)

    r = admin(data, 'domain', 'add', 'Example.ORG', '--rua',
              'dmarc@example.org')
    ok(r.returncode == 0, 'domain add Example.ORG --rua', r.stderr)
    zone = r.stdout
    year = re.search(r'^created = (\d{4})', open(os.path.join(
        data, 'dkim', 'example.org', 'domain.conf')).read(), re.M).group(1)
    rsel, esel = 'sp%sr' % year, 'sp%se' % year
    ddir = os.path.join(data, 'dkim', 'example.org')
    rkey = os.path.join(ddir, rsel + '.rsa.key')
    ekey = os.path.join(ddir, esel + '.ed25519.key')

    # The files, their modes and what OpenSSL makes of them.
    for path, mode in ((os.path.join(data, 'dkim'), 0o700), (ddir, 0o700),
                       (rkey, 0o600), (ekey, 0o600),
                       (os.path.join(ddir, 'domain.conf'), 0o600)):
        m = stat.S_IMODE(os.stat(path).st_mode) if os.path.exists(path) \
            else None
        ok(m == mode, '%s has mode %o' % (os.path.relpath(path, data),
                                          mode), 'mode %r' % m)
    rpem = open(rkey, 'rb').read()
    epem = open(ekey, 'rb').read()
    rtext = openssl('pkey', '-noout', '-text', data=rpem).decode()
    ok('Private-Key: (2048 bit' in rtext, 'the RSA key is RSA-2048',
       rtext[:80])
    etext = openssl('pkey', '-noout', '-text', data=epem).decode()
    ok('ED25519 Private-Key' in etext, 'the Ed25519 key is Ed25519',
       etext[:80])

    # The zone text parses as a zone; every record is where it belongs.
    try:
        z, txt = txt_records(zone, 'example.org.')
        parsed = True
    except Exception as e:  # noqa: BLE001 - any parse error fails the test
        ok(False, 'the printed records parse as a zone', e)
        return
    ok(parsed, 'the printed records parse as a zone (dnspython)')
    ok(rdata(z, 'example.org.', 'MX') == ['10 mail.example.org.'],
       'MX 10 mail.example.org.', rdata(z, 'example.org.', 'MX'))
    ok(txt.get('example.org.') == ['v=spf1 mx -all'], 'SPF v=spf1 mx -all',
       txt.get('example.org.'))
    rrec = txt.get('%s._domainkey.example.org.' % rsel, [''])[0]
    erec = txt.get('%s._domainkey.example.org.' % esel, [''])[0]
    rt, et = tags(rrec), tags(erec)
    ok(rt.get('v') == 'DKIM1' and rt.get('k') == 'rsa',
       'the RSA DKIM record parses (v=DKIM1; k=rsa)', rrec)
    ok(et.get('v') == 'DKIM1' and et.get('k') == 'ed25519',
       'the Ed25519 DKIM record parses (v=DKIM1; k=ed25519)', erec)
    spki = openssl('pkey', '-pubout', '-outform', 'DER', data=rpem)
    ok(rt.get('p') == base64.b64encode(spki).decode(),
       "the RSA record's p= is the key's SubjectPublicKeyInfo", rt.get('p'))
    espki = openssl('pkey', '-pubout', '-outform', 'DER', data=epem)
    ok(et.get('p') == base64.b64encode(espki[-32:]).decode(),
       "the Ed25519 record's p= is the raw public key (RFC 8463)",
       et.get('p'))
    strings = [s for ln in zone.splitlines() if not ln.startswith(';')
               for s in re.findall(r'"([^"]*)"', ln)]
    ok(strings and max(len(s) for s in strings) <= 255 and
       len(rrec) > 255,
       'the RSA record is split into strings of at most 255 bytes',
       [len(s) for s in strings])
    dmarc = tags(txt.get('_dmarc.example.org.', [''])[0])
    ok(dmarc.get('v') == 'DMARC1' and dmarc.get('p') == 'quarantine' and
       dmarc.get('rua') == 'mailto:dmarc@example.org',
       'DMARC p=quarantine with the rua given', dmarc)
    sts = tags(txt.get('_mta-sts.example.org.', [''])[0])
    ok(sts.get('v') == 'STSv1' and
       re.fullmatch(r'[A-Za-z0-9]{1,32}', sts.get('id', '')) is not None,
       '_mta-sts TXT v=STSv1 with a valid id', sts)
    rpt = tags(txt.get('_smtp._tls.example.org.', [''])[0])
    ok(rpt.get('v') == 'TLSRPTv1' and
       rpt.get('rua') == 'mailto:dmarc@example.org',
       '_smtp._tls TXT v=TLSRPTv1 with the rua', rpt)
    for host in ('mta-sts', 'openpgpkey', 'autoconfig'):
        owner = '%s.example.org.' % host
        ok(rdata(z, owner, 'CNAME') == ['mail.example.org.'],
           '%s is the mail host' % owner, rdata(z, owner, 'CNAME'))
    m = re.search(r'^; BEGIN mta-sts.txt\n(.*?)^; END mta-sts.txt$', zone,
                  re.M | re.S)
    policy = [ln[2:] for ln in m.group(1).splitlines()] if m else []
    ok(policy == ['version: STSv1', 'mode: enforce', 'mx: mail.example.org',
                  'max_age: 604800'],
       'the MTA-STS policy file names the MX', policy)

    # The keys sign, and the records alone verify them.
    ok(sign_verify(rpem, rsel, b'rsa-sha256', txt),
       'dkimpy: signed with the RSA key, verified by the printed record')
    ok(sign_verify(epem, esel, b'ed25519-sha256', txt),
       'dkimpy: signed with the Ed25519 key, verified by the printed record')

    # A second domain: its records do not verify the first one's keys.
    r = admin(data, 'domain', 'add', 'example.net', '--mx', 'mx1.example.com',
              '--dmarc-policy', 'reject', '--selector', 'x1')
    ok(r.returncode == 0, 'domain add example.net --mx --dmarc-policy '
       '--selector', r.stderr)
    z2, txt2 = txt_records(r.stdout, 'example.net.')
    other = {'%s._domainkey.example.org.' % rsel:
             txt2.get('x1r._domainkey.example.net.')}
    ok(not sign_verify(rpem, rsel, b'rsa-sha256', other),
       "another domain's RSA record does not verify this key")
    ok(rdata(z2, 'example.net.', 'MX') == ['10 mx1.example.com.'] and
       tags(txt2['_dmarc.example.net.'][0]).get('p') == 'reject' and
       'rua' not in tags(txt2['_dmarc.example.net.'][0]) and
       tags(txt2['_smtp._tls.example.net.'][0]).get('rua') ==
       'mailto:postmaster@example.net',
       '--mx and --dmarc-policy are used; TLS-RPT defaults to postmaster',
       r.stdout)

    # show and list.
    r = admin(data, 'domain', 'show', 'example.org')
    ok(r.returncode == 0 and r.stdout == zone,
       'domain show prints the same records as domain add', r.stdout)
    r = admin(data, 'domain', 'list')
    lines = r.stdout.splitlines()
    ok(r.returncode == 0 and len(lines) == 2 and
       lines[0].split('\t')[:4] == ['example.net', 'mx1.example.com',
                                    'x1r', 'x1e'] and
       lines[1].split('\t')[:4] == ['example.org', 'mail.example.org',
                                    rsel, esel],
       'domain list: one sorted line per domain', r.stdout)

    # Again: nothing replaced.  A new selector: new keys, old ones kept.
    r = admin(data, 'domain', 'add', 'example.org')
    ok(r.returncode == 0 and r.stdout == zone and
       open(rkey, 'rb').read() == rpem and 'kept' in r.stderr,
       'domain add again keeps keys and records', r.stderr)
    r = admin(data, 'domain', 'add', 'example.org', '--selector', 'k2')
    ok(r.returncode == 0 and
       os.path.exists(os.path.join(ddir, 'k2r.rsa.key')) and
       os.path.exists(os.path.join(ddir, 'k2e.ed25519.key')) and
       open(rkey, 'rb').read() == rpem and open(ekey, 'rb').read() == epem,
       '--selector k2 makes k2r and k2e beside the old keys', r.stderr)
    _, t3 = txt_records(r.stdout, 'example.org.')
    ok('k2r._domainkey.example.org.' in t3 and
       '%s._domainkey.example.org.' % rsel not in t3 and
       t3['_mta-sts.example.org.'] == txt['_mta-sts.example.org.'],
       'the records name the new selectors; the MTA-STS id stays', t3)
    r = admin(data, 'domain', 'add', 'example.org', '--mx', 'mx9.example.org')
    _, t4 = txt_records(r.stdout, 'example.org.')
    ok(r.returncode == 0 and
       t4['_mta-sts.example.org.'] != txt['_mta-sts.example.org.'] and
       'mx: mx9.example.org' in r.stdout,
       'a new --mx gives the MTA-STS policy a new id', r.stdout)

    # Usage errors: exit 2, nothing made.
    before = sorted(os.listdir(os.path.join(data, 'dkim')))
    for args, what in ((['../evil'], 'a path as the name'),
                       (['localhost'], 'a name of one label'),
                       (['-x.org'], 'a label starting with -'),
                       (['a.org', '--selector', 'A_B'], 'a bad selector'),
                       (['a.org', '--dmarc-policy', 'maybe'], 'a bad policy'),
                       (['a.org', '--rua', 'x;y@a.org'], 'a bad rua'),
                       (['a.org', '--mx', 'bad host'], 'a bad --mx'),
                       (['a.org', '--hostname', 'x'], 'an option of init')):
        r = admin(data, 'domain', 'add', *args)
        ok(r.returncode == 2, 'domain add refuses %s (exit 2)' % what,
           r.stderr)
    ok(sorted(os.listdir(os.path.join(data, 'dkim'))) == before,
       'the refused commands made nothing')
    r = admin(data, 'domain', 'show', 'nowhere.example')
    ok(r.returncode == 1 and 'no such domain' in r.stderr,
       'domain show of an unknown domain fails (exit 1)', r.stderr)
    r = admin(data, 'domain')
    ok(r.returncode == 2, 'domain without a command is a usage error')
    os.unlink(ekey)
    os.unlink(os.path.join(ddir, 'k2e.ed25519.key'))
    r = admin(data, 'domain', 'show', 'example.org')
    ok(r.returncode == 1 and 'missing' in r.stderr,
       'domain show says so when a key is missing', r.stderr)


if __name__ == '__main__':
    sys.exit(main())
