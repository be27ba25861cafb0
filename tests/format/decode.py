#!/usr/bin/python3
"""Independent decoder for the sealpost storage formats, version 1.

Written from docs/format.md alone (never from crypto/*.c), to show that the
document is complete. PyNaCl + the standard library only.

Usage: decode.py [FILE ...] [--generator EXE ...]   (FILE: `name = hex` lines;
EXE prints such a file). Prints TAP; exits 0 only if every check passed.
"""
import argparse
import hashlib
import hmac
import os
import subprocess
import sys

import nacl.bindings as nb
import nacl.exceptions
import nacl.pwhash
import nacl.signing


# ---- Conventions: errors, integers, primitives -----------------------------

class FormatError(Exception):
    """The decoder rejected its input (the only way it ever fails)."""

def need(cond, why):
    if not cond:
        raise FormatError(why)

def be(b, off, size):
    """Big-endian unsigned integer of `size` bytes at `off` (format.md: Conventions)."""
    return int.from_bytes(b[off:off + size], "big")

def blake2b(data, size, key=b""):
    return hashlib.blake2b(data, digest_size=size, key=key).digest()

def kdf(key, sub_id, ctx):
    """libsodium crypto_kdf_derive_from_key, 32-byte output (Conventions)."""
    assert len(ctx) == 8
    return hashlib.blake2b(b"", digest_size=32, key=key,
                           salt=sub_id.to_bytes(8, "little") + bytes(8),
                           person=ctx + bytes(8)).digest()

def aead_open(key, nonce, ad, ct):
    """XChaCha20-Poly1305-IETF decryption; any failure becomes FormatError."""
    try:
        return nb.crypto_aead_xchacha20poly1305_ietf_decrypt(ct, ad, nonce, key)
    except nacl.exceptions.CryptoError:
        raise FormatError("AEAD authentication failed") from None

def ed25519_pk(seed):
    return nacl.signing.SigningKey(seed).verify_key.encode()


# ---- Section 1: password parameters and login keys -------------------------

def parse_params(p):
    need(len(p) == 25, "password parameters are not 25 bytes")
    need(p[0] == 1, "unknown password-hash alg %d" % p[0])
    ops, mem_kib = be(p, 1, 4), be(p, 5, 4)
    need(1 <= ops <= 64, "opslimit out of range")
    need(8 <= mem_kib <= 4194304, "mem_kib out of range")
    return ops, mem_kib, p[9:25]

def derive_login(password, params):
    """-> (auth_pk, vault_key) from the password and 25-byte parameters."""
    ops, mem_kib, salt = parse_params(params)
    root = nacl.pwhash.argon2id.kdf(32, password, salt, opslimit=ops,
                                    memlimit=mem_kib * 1024)
    return ed25519_pk(kdf(root, 1, b"sp-login")), kdf(root, 2, b"sp-login")


# ---- Section 2: key set -----------------------------------------------------

def parse_keyset(ks):
    need(len(ks) >= 101, "key set shorter than 101 bytes")
    need(ks[0] == 1, "unknown key set version")
    pgp_len = be(ks, 97, 4)
    need(pgp_len <= 65536, "pgp_len out of range")
    need(len(ks) == 101 + pgp_len, "key set length != 101 + pgp_len")
    return {"identity_seed": ks[1:33], "x25519_sk": ks[33:65],
            "mailbox_key": ks[65:97], "pgp": ks[101:]}


# ---- Section 3: vault -------------------------------------------------------

VAULT_MAX = 65887
VAULT_SLOT_LEN = {1: 98, 2: 73}

def decode_vault(v, vault_key=None, recovery_key=None):
    """Open the vault with the password slot (vault_key) or the recovery slot
    (recovery_key); return the key set bytes. Checks in section-7 order."""
    need(len(v) >= 3, "vault shorter than 3 bytes")
    need(v[0] == 1, "unknown vault version")
    need(v[1] == 1, "unknown vault aead")
    need(len(v) <= VAULT_MAX, "vault larger than the maximum")
    nslots = v[2]
    need(1 <= nslots <= 2, "bad vault nslots")
    pos, slots = 3, {}
    for _ in range(nslots):
        need(pos < len(v), "vault truncated in slots")
        t = v[pos]
        need(t in VAULT_SLOT_LEN, "unsupported vault slot type %d" % t)
        need(t not in slots, "duplicate vault slot type")
        end = pos + VAULT_SLOT_LEN[t]
        need(end <= len(v), "vault slot truncated")
        s = v[pos + 1:end]
        if t == 1:
            parse_params(s[:25])          # the slot's copy must be valid too
            slots[1] = (s[:25], s[25:49], s[49:97])
        else:
            slots[2] = (b"", s[:24], s[24:72])
        pos = end
    need(pos + 28 <= len(v), "vault truncated before body")
    body_nonce, ct_len = v[pos:pos + 24], be(v, pos + 24, 4)
    pos += 28
    need(117 <= ct_len <= 65653, "ct_len out of range")
    need(len(v) == pos + ct_len + 32, "vault length mismatch")
    ct, mac = v[pos:pos + ct_len], v[pos + ct_len:]

    if vault_key is not None:
        t, wrap_key = 1, vault_key
    else:
        t, wrap_key = 2, kdf(recovery_key, 1, b"sp-recov")
    need(t in slots, "vault has no slot of type %d" % t)
    params, nonce, wrapped = slots[t]
    slot_ad = b"sealpost-vault-slot-v1" + bytes([1, 1, t]) + params
    dk = aead_open(wrap_key, nonce, slot_ad, wrapped)
    mac_key = kdf(dk, 1, b"sp-vault")
    need(hmac.compare_digest(blake2b(v[:-32], 32, mac_key), mac), "vault mac mismatch")
    keyset = aead_open(dk, body_nonce, b"sealpost-vault-v1\x01\x01", ct)
    parse_keyset(keyset)
    return keyset


# ---- Section 4: padding -----------------------------------------------------

def padme(n):
    if n < 2:
        return n
    e = n.bit_length() - 1            # floor(log2 n)
    s = e.bit_length()                # floor(log2 e) + 1
    m = (1 << (e - s)) - 1
    return (n + m) & ~m

def pad(n):
    need(n <= 1 << 48, "length above 2^48")
    return (padme(max(n, 1)) + 255) // 256 * 256


# ---- Section 5: envelope v1 -------------------------------------------------

ENV_SLOT_LEN = {1: 81, 2: 73}

def decode_envelope(env, x25519_sk=None, mailbox_key=None):
    """Full read of an envelope. Returns a dict (kind, padded_len, content,
    sig_alg, signer, chunk_ranges) or raises FormatError. Never partial."""
    need(len(env) >= 32, "envelope shorter than 32 bytes")
    need(env[0] == 1, "unknown envelope version")
    need(env[2] == 1, "unknown envelope aead")
    kind, shift, nslots = env[1], env[3], env[4]
    need(kind in (1, 2, 3), "unknown kind")
    need(10 <= shift <= 20, "chunk_shift out of range")
    need(1 <= nslots <= 32, "nslots out of range")
    need(env[5:8] == bytes(3), "reserved header bytes not zero")
    padded_len = be(env, 8, 8)
    need(padded_len <= 1 << 48, "padded_len above 2^48")
    prefix = env[16:32]
    pos, slots = 32, []
    for _ in range(nslots):
        need(pos < len(env), "envelope truncated in slots")
        t = env[pos]
        need(t in ENV_SLOT_LEN, "unsupported envelope slot type %d" % t)
        need(pos + ENV_SLOT_LEN[t] <= len(env), "envelope slot truncated")
        slots.append((t, env[pos + 1:pos + ENV_SLOT_LEN[t]]))
        pos += ENV_SLOT_LEN[t]
    header_len = pos
    C = 1 << shift
    n = max(1, -(-padded_len // C))
    need(len(env) == header_len + 144 + padded_len + 16 * n, "envelope length mismatch")

    # Try our keys on every slot of the matching type; first that opens wins.
    ck = None
    x_pk = nb.crypto_scalarmult_base(x25519_sk) if x25519_sk else None
    for t, body in slots:
        try:
            if t == 1 and x25519_sk:
                ck = nb.crypto_box_seal_open(body, x_pk, x25519_sk)
            elif t == 2 and mailbox_key:
                ck = nb.crypto_aead_xchacha20poly1305_ietf_decrypt(
                    body[24:], b"sealpost-envelope-mailbox-v1", body[:24], mailbox_key)
        except nacl.exceptions.CryptoError:
            continue
        if ck is not None:
            break
    need(ck is not None and len(ck) == 32, "no slot opens with our keys")

    h = blake2b(env[:header_len], 32)

    def segment(s, ct):
        idx = s.to_bytes(8, "big")
        final = 1 if s == n else 0   # n >= 1, so never for s = 0
        return aead_open(ck, prefix + idx, h + idx + bytes([final]), ct)

    info = segment(0, env[header_len:header_len + 144])
    content_len, sig_alg = be(info, 0, 8), info[8]
    need(content_len <= padded_len, "content_len > padded_len")
    need(info[9:16] == bytes(7) and info[112:128] == bytes(16), "info reserved not zero")
    need(sig_alg in (0, 1), "unknown sig_alg")
    if sig_alg == 0:   # doc: "zero if unsigned"; we insist on it
        need(info[16:112] == bytes(96), "unsigned envelope has signer/signature bytes")

    plain, off, ranges = bytearray(), header_len + 144, []
    for i in range(1, n + 1):
        size = min(i * C, padded_len) - (i - 1) * C + 16
        ranges.append((off, off + size))
        plain += segment(i, env[off:off + size])
        off += size
    need(not any(plain[content_len:]), "padding bytes not zero")
    content = bytes(plain[:content_len])

    signer = info[16:48] if sig_alg == 1 else None
    if sig_alg == 1:
        d = blake2b(b"sealpost-envelope-sig-v1" + bytes([kind])
                    + content_len.to_bytes(8, "big") + content, 64)
        try:
            nacl.signing.VerifyKey(signer).verify(d, info[48:112])
        except nacl.exceptions.CryptoError:
            raise FormatError("envelope signature does not verify") from None
    return {"kind": kind, "padded_len": padded_len, "content": content,
            "sig_alg": sig_alg, "signer": signer, "C": C, "chunk_ranges": ranges,
            "header_len": header_len}


# ---- Section 6: metadata record --------------------------------------------

META_TEXT = {1: "from", 2: "to", 3: "cc", 4: "bcc", 5: "subject",
             9: "auth_results", 10: "message_id", 11: "folder",
             14: "keywords", 16: "spam"}
META_INT = {6: ("date", 8), 7: ("size", 8), 8: ("flags", 4),
            13: ("folder_id", 4), 15: ("received", 8)}

def parse_meta(r):
    need(1 <= len(r) <= 65536, "record length out of range")
    need(r[0] == 1, "unknown record version")
    pos, last, out = 1, -1, {}
    while pos < len(r):
        need(pos + 3 <= len(r), "truncated field header")
        tag, ln = r[pos], be(r, pos + 1, 2)
        pos += 3
        need(tag > last, "tags not strictly increasing")
        last = tag
        need(pos + ln <= len(r), "truncated field value")
        val, pos = r[pos:pos + ln], pos + ln
        if tag in META_TEXT:
            try:
                text = val.decode("utf-8", "strict")
            except UnicodeDecodeError:
                raise FormatError("field %d is not strict UTF-8" % tag) from None
            need("\0" not in text, "NUL in text field")
            out[META_TEXT[tag]] = text
        elif tag in META_INT:
            name, size = META_INT[tag]
            need(ln == size, "%s is not %d bytes" % (name, size))
            out[name] = int.from_bytes(val, "big")
        elif tag == 12:
            out["blob_id"] = val
        # other tags: unknown, skipped
    return out


# ---- Section 8: recovery key text ------------------------------------------

B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

def recovery_check(key):
    return blake2b(b"sealpost-recovery-v1" + key, 32)[:2]

def decode_recovery(text):
    s = "".join(c for c in text.upper() if c not in "- ")
    need(len(s) == 55, "recovery text has wrong length")
    need(all(c in B32 for c in s), "recovery text has a non-base32 character")
    acc = 0
    for c in s:
        acc = (acc << 5) | B32.index(c)
    need(acc & 7 == 0, "recovery text tail bits not zero")
    raw = (acc >> 3).to_bytes(34, "big")
    need(hmac.compare_digest(recovery_check(raw[:32]), raw[32:]), "recovery check mismatch")
    return raw[:32]

def encode_recovery(key):
    acc = int.from_bytes(key + recovery_check(key), "big") << 3
    s = "".join(B32[(acc >> (5 * (54 - i))) & 31] for i in range(55))
    return "-".join(s[i:i + 5] for i in range(0, 55, 5))


# ---- Test harness -----------------------------------------------------------

class State(dict):
    def __missing__(self, key):
        raise RuntimeError("needs %r from an earlier failed check" % key)

class Tap:
    def __init__(self):
        self.n = self.failed = 0

    def check(self, desc, fn):
        self.n += 1
        try:
            fn()
            print("ok %d - %s" % (self.n, desc))
        except Exception as e:   # noqa: any failure is a "not ok"
            self.failed += 1
            print("not ok %d - %s\n# %s: %s" % (self.n, desc, type(e).__name__, e))
        sys.stdout.flush()

def expect(cond, why):
    if not cond:
        raise AssertionError(why)

def parse_vectors(text):
    out = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, value = line.partition("=")
        expect(sep, "bad vectors line: %r" % line)
        name, value = name.strip(), value.strip()
        out[name] = value if name == "recovery_text" else bytes.fromhex(value)
    return out

def all_rejected(decode, variants):
    """Every (label, data) variant must make `decode` raise FormatError."""
    bad = []
    for label, data in variants:
        try:
            decode(data)
            bad.append("%s: accepted" % label)
        except FormatError:
            pass
        except Exception as e:
            bad.append("%s: %s instead of FormatError" % (label, type(e).__name__))
    expect(not bad, "%d of %d not rejected: %s" % (len(bad), len(variants), "; ".join(bad[:5])))

def flips(data, start, end):
    """One variant per byte in [start, end), flipping bit (offset % 8)."""
    for i in range(start, end):
        b = bytearray(data)
        b[i] ^= 1 << (i % 8)
        yield "flip byte %d" % i, bytes(b)

EXPECTED_META = {"from": "Alice <alice@example.org>", "to": "bob@example.org",
                 "subject": "Quarterly report \u2014 r\u00e9sum\u00e9", "date": 1764460800,
                 "size": 3000, "flags": 0x21, "auth_results": "mx.example.org; spf=pass"}

NAMES = ("password kdf_params auth_pk vault_key recovery_key recovery_text keyset "
         "bob_identity_pk bob_encryption_pk vault alice_identity_pk plaintext "
         "envelope_body meta_record envelope_meta").split()

def check_vectors(tap, label, text):
    st = State()        # values derived by earlier checks, for later ones
    t = lambda desc, fn: tap.check("%s: %s" % (label, desc), fn)  # noqa: E731

    def load():
        v = parse_vectors(text)
        expect(set(NAMES) <= set(v), "missing names: %s" % sorted(set(NAMES) - set(v)))
        st["v"] = v
    t("vectors parse, all names present", load)

    def login():   # 1. password + params -> auth_pk, vault_key
        v = st["v"]
        auth_pk, vault_key = derive_login(v["password"], v["kdf_params"])
        expect(auth_pk == v["auth_pk"], "auth_pk differs")
        expect(vault_key == v["vault_key"], "vault_key differs")
        st["vault_key"] = vault_key   # (state is only stored once its check passed)
    t("Argon2id + KDF derive auth_pk and vault_key (sec. 1)", login)

    def recovery():   # section 8, both directions, plus case/separator tolerance
        v = st["v"]
        key = decode_recovery(v["recovery_text"])
        expect(key == v["recovery_key"], "decoded key differs")
        expect(encode_recovery(key) == v["recovery_text"], "re-encoding differs")
        expect(decode_recovery(v["recovery_text"].lower().replace("-", " ")) == key,
               "case/separators not ignored")
        st["recovery_key"] = key
    t("recovery text decodes to recovery_key, check bytes ok (sec. 8)", recovery)

    def vault_pw():   # 2. password slot (its params copy must be ours)
        v = st["v"]
        expect(v["vault"][4:29] == v["kdf_params"], "password slot params != kdf_params")
        ks = decode_vault(v["vault"], vault_key=st["vault_key"])
        expect(ks == v["keyset"], "key set differs")
        st["keyset"] = ks
    t("vault opens with derived vault_key (sec. 3)", vault_pw)
    t("vault opens with recovery key, same key set (sec. 3)", lambda: expect(
        decode_vault(st["v"]["vault"], recovery_key=st["recovery_key"]) == st["v"]["keyset"],
        "key set differs"))

    def keyset():   # 3.
        v = st["v"]
        ks = parse_keyset(st["keyset"])
        expect(nb.crypto_scalarmult_base(ks["x25519_sk"]) == v["bob_encryption_pk"],
               "X25519 public differs")
        expect(ed25519_pk(ks["identity_seed"]) == v["bob_identity_pk"], "Ed25519 public differs")
        st["ks"] = ks
    t("key set parses; bob's X25519 and Ed25519 publics match (sec. 2)", keyset)

    def body():   # 4.
        v = st["v"]
        e = decode_envelope(v["envelope_body"], x25519_sk=st["ks"]["x25519_sk"])
        expect(e["kind"] == 1, "kind is not 1 (body)")
        expect(e["sig_alg"] == 1 and e["signer"] == v["alice_identity_pk"],
               "not signed by alice_identity_pk")
        expect(e["content"] == v["plaintext"], "content != plaintext")
        st["env"] = e
    t("body envelope decodes, alice's signature verifies, content = plaintext (sec. 5)", body)

    def padding():   # 7.
        e = st["env"]
        expect(e["padded_len"] == pad(len(e["content"])), "padded_len %d != pad(%d) = %d"
               % (e["padded_len"], len(e["content"]), pad(len(e["content"]))))
        for n, p in ((0, 256), (257, 512), (3000, 3072), (50000, 51200), (1000001, 1015808)):
            expect(pad(n) == p, "pad(%d) != %d" % (n, p))
    t("body padded_len == pad(content_len); doc's pad examples hold (sec. 4)", padding)

    def meta():   # 5.
        v = st["v"]
        e = decode_envelope(v["envelope_meta"], mailbox_key=st["ks"]["mailbox_key"])
        expect(e["kind"] == 2 and e["sig_alg"] == 0, "not an unsigned kind-2 envelope")
        expect(e["padded_len"] == pad(len(e["content"])), "padded_len != pad(content_len)")
        expect(e["content"] == v["meta_record"], "content != meta_record")
        fields = parse_meta(e["content"])
        expect(fields == EXPECTED_META, "fields differ: %r" % fields)
    t("metadata envelope decodes with mailbox key; record fields match (sec. 5, 6)", meta)

    # 6. Negative checks: every tampered variant must be rejected.
    open_body = lambda d: decode_envelope(d, x25519_sk=st["ks"]["x25519_sk"])  # noqa: E731
    env, e = st.get("v", {}).get("envelope_body", b""), st.get("env")
    if e:   # one TAP line per region of the envelope
        hl, c1 = e["header_len"], e["chunk_ranges"][0][0]
        regions = [("fixed header", 0, 32), ("slots", 32, hl), ("info segment", hl, c1)]
        regions += [("chunk %d" % i, a, b) for i, (a, b) in enumerate(e["chunk_ranges"], 1)]
        regions += [("last byte", len(env) - 1, len(env))]
    else:
        regions = [("any region", 0, 0)]   # reported "not ok": st["env"] is missing
    for name, a, b in regions:
        t("body envelope: every bit flip in %s rejected" % name,
          lambda a=a, b=b: st["env"] and all_rejected(open_body, list(flips(env, a, b))))

    def body_struct():
        (a, b), (_, c) = st["env"]["chunk_ranges"][:2]
        variants = [("truncate 1 byte", env[:-1]),
                    ("truncate one chunk", env[:-(st["env"]["C"] + 16)]),
                    ("swap chunks 1 and 2", env[:a] + env[b:c] + env[a:b] + env[c:])]
        all_rejected(open_body, variants)
    t("body envelope: truncation by 1 byte / one chunk and chunk swap rejected", body_struct)

    for how in ("vault_key", "recovery_key"):
        def vault_neg(how=how):
            vault, key = st["v"]["vault"], st[how]
            variants = list(flips(vault, 0, len(vault))) + [("truncate 1 byte", vault[:-1])]
            all_rejected(lambda d: decode_vault(d, **{how: key}), variants)
        t("vault: every bit flip and truncation rejected (opened with %s)" % how, vault_neg)

def main():
    ap = argparse.ArgumentParser(description="Check sealpost format vectors.")
    ap.add_argument("files", nargs="*", help="vectors file(s)")
    ap.add_argument("--generator", action="append", default=[], metavar="EXE",
                    help="program printing a fresh vectors file (repeatable)")
    args = ap.parse_args()
    if not args.files and not args.generator:
        ap.error("give a vectors FILE and/or --generator EXE")
    tap = Tap()
    for f in args.files:
        with open(f, encoding="utf-8") as fh:
            check_vectors(tap, os.path.basename(f), fh.read())
    for g in args.generator:
        label, out = "generator " + os.path.basename(g), []
        tap.check(label + ": runs and exits 0", lambda: out.append(subprocess.run(
            [g], capture_output=True, check=True, timeout=300, text=True).stdout))
        check_vectors(tap, label, out[0] if out else "")
    print("1..%d" % tap.n)
    return 0 if tap.failed == 0 else 1

if __name__ == "__main__":
    sys.exit(main())
