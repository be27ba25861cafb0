#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/bytes.h"
#include "crypto/envelope.h"
#include "crypto/pad.h"
#include "crypto/secmem.h"

#define AEAD_XCHACHA 1
#define SLOT_SEALBOX 1
#define SLOT_MAILBOX 2
#define FIXEDBYTES 32
#define PREFIXBYTES 16
#define NONCEBYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES /* 24 */
#define ABYTES crypto_aead_xchacha20poly1305_ietf_ABYTES        /* 16 */
#define SEALBOX_SLOTBYTES (1 + crypto_box_SEALBYTES + 32)       /* 81 */
#define MAILBOX_SLOTBYTES (1 + NONCEBYTES + 32 + ABYTES)        /* 73 */
#define INFOBYTES 128
#define HASHBYTES 32
#define SIG_ALG_NONE 0
#define SIG_ALG_ED25519 1
#define SIG_CONTEXT "sealpost-envelope-sig-v1"
#define MAILBOX_AD "sealpost-envelope-mailbox-v1"

struct sp_envelope {
	const uint8_t *env;
	size_t len;
	unsigned kind;
	unsigned chunk_shift;
	uint64_t padded_len;
	uint64_t content_len;
	uint64_t nchunks;
	size_t data_off;          /* first byte of chunk 1 */
	uint8_t prefix[PREFIXBYTES];
	uint8_t hash[HASHBYTES];
	int signed_;
	uint8_t signer[32];
	uint8_t sig[64];
	uint8_t *key;             /* content key, from crypto/secmem */
	uint8_t *chunk;           /* plaintext scratch, one chunk, wiped */
	size_t chunk_cap;
};

/* What the structural parse learns before any key is used. */
struct env_header {
	unsigned kind, chunk_shift, nslots;
	uint64_t padded_len, nchunks;
	size_t header_len;
	const uint8_t *slots;
};

static uint64_t
chunk_count(uint64_t padded, unsigned shift)
{
	uint64_t n = (padded + ((uint64_t)1 << shift) - 1) >> shift;

	return n ? n : 1;
}

static int
header_parse(const uint8_t *env, size_t len, struct env_header *h)
{
	size_t off;
	uint64_t total;
	unsigned i;

	if (len < FIXEDBYTES)
		return len >= 1 && env[0] != SP_ENVELOPE_VERSION ?
		    SP_EVERSION : SP_ETRUNC;
	if (env[0] != SP_ENVELOPE_VERSION || env[2] != AEAD_XCHACHA)
		return SP_EVERSION;
	h->kind = env[1];
	h->chunk_shift = env[3];
	h->nslots = env[4];
	if ((h->kind < SP_ENVELOPE_KIND_BODY ||
	    h->kind > SP_ENVELOPE_KIND_CHANGE) ||
	    h->chunk_shift < SP_ENVELOPE_CHUNK_SHIFT_MIN ||
	    h->chunk_shift > SP_ENVELOPE_CHUNK_SHIFT_MAX ||
	    h->nslots < 1 || h->nslots > SP_ENVELOPE_MAX_SLOTS ||
	    env[5] || env[6] || env[7])
		return SP_EFORMAT;
	h->padded_len = sp_get_be64(env + 8);
	if (h->padded_len > SP_PAD_MAX)
		return SP_ELIMIT;
	off = FIXEDBYTES;
	h->slots = env + off;
	for (i = 0; i < h->nslots; i++) {
		if (off >= len)
			return SP_ETRUNC;
		if (env[off] == SLOT_SEALBOX)
			off += SEALBOX_SLOTBYTES;
		else if (env[off] == SLOT_MAILBOX)
			off += MAILBOX_SLOTBYTES;
		else
			return SP_EVERSION;
	}
	h->header_len = off;
	h->nchunks = chunk_count(h->padded_len, h->chunk_shift);
	total = (uint64_t)off + INFOBYTES + ABYTES + h->padded_len +
	    h->nchunks * ABYTES;
	if ((uint64_t)len != total)
		return SP_ETRUNC;
	return 0;
}

static void
seg_nonce(uint8_t nonce[NONCEBYTES], const uint8_t prefix[PREFIXBYTES],
    uint64_t index)
{
	memcpy(nonce, prefix, PREFIXBYTES);
	sp_put_be64(nonce + PREFIXBYTES, index);
}

static void
seg_ad(uint8_t ad[HASHBYTES + 9], const uint8_t hash[HASHBYTES],
    uint64_t index, int final)
{
	memcpy(ad, hash, HASHBYTES);
	sp_put_be64(ad + HASHBYTES, index);
	ad[HASHBYTES + 8] = final ? 1 : 0;
}

/* Ed25519 signs a BLAKE2b-512 digest of context, kind, length, content. */
static void
sig_digest(uint8_t d[64], unsigned kind, const uint8_t *msg, uint64_t len)
{
	crypto_generichash_state st;
	uint8_t hdr[9];

	hdr[0] = (uint8_t)kind;
	sp_put_be64(hdr + 1, len);
	crypto_generichash_init(&st, NULL, 0, 64);
	crypto_generichash_update(&st, (const uint8_t *)SIG_CONTEXT,
	    sizeof(SIG_CONTEXT) - 1);
	crypto_generichash_update(&st, hdr, sizeof(hdr));
	crypto_generichash_update(&st, msg, len);
	crypto_generichash_final(&st, d, 64);
}

static int
seal_check_args(const struct sp_envelope_seal_args *a, size_t len)
{
	size_t nslots = a->n_recipients + (a->mailbox_key ? 1 : 0);
	unsigned shift = a->chunk_shift;

	if (a->kind < SP_ENVELOPE_KIND_BODY || a->kind > SP_ENVELOPE_KIND_CHANGE)
		return SP_EINVAL;
	if (nslots < 1 || nslots > SP_ENVELOPE_MAX_SLOTS ||
	    (a->n_recipients && a->recipients == NULL))
		return SP_EINVAL;
	if (shift && (shift < SP_ENVELOPE_CHUNK_SHIFT_MIN ||
	    shift > SP_ENVELOPE_CHUNK_SHIFT_MAX))
		return SP_EINVAL;
	if ((uint64_t)len > SP_ENVELOPE_MAX_CONTENT)
		return SP_ELIMIT;
	return 0;
}

/* Writes the slots sealing key; returns the header length. */
static size_t
seal_slots(const struct sp_envelope_seal_args *a, uint8_t *out,
    const uint8_t *key)
{
	size_t off = FIXEDBYTES, i;

	for (i = 0; i < a->n_recipients; i++) {
		out[off] = SLOT_SEALBOX;
		crypto_box_seal(out + off + 1, key, 32, a->recipients[i]);
		off += SEALBOX_SLOTBYTES;
	}
	if (a->mailbox_key) {
		uint8_t *nonce = out + off + 1;

		out[off] = SLOT_MAILBOX;
		randombytes_buf(nonce, NONCEBYTES);
		crypto_aead_xchacha20poly1305_ietf_encrypt(nonce + NONCEBYTES,
		    NULL, key, 32, (const uint8_t *)MAILBOX_AD,
		    sizeof(MAILBOX_AD) - 1, NULL, nonce, a->mailbox_key);
		off += MAILBOX_SLOTBYTES;
	}
	return off;
}

static void
seal_info(const struct sp_envelope_seal_args *a, const uint8_t *msg,
    size_t len, uint8_t info[INFOBYTES])
{
	uint8_t d[64];

	memset(info, 0, INFOBYTES);
	sp_put_be64(info, len);
	if (a->signer) {
		info[8] = SIG_ALG_ED25519;
		memcpy(info + 16, sp_keyset_identity_pk(a->signer), 32);
		sig_digest(d, a->kind, msg, len);
		crypto_sign_detached(info + 48, NULL, d, sizeof(d),
		    sp_keyset_identity_sk(a->signer));
	}
}

int
sp_envelope_seal(const struct sp_envelope_seal_args *a, const uint8_t *msg,
    size_t len, uint8_t **out_r, size_t *len_r)
{
	unsigned shift;
	uint64_t padded, nchunks, i;
	size_t hlen, total, csize, off, take;
	uint8_t *out = NULL, *key = NULL, info[INFOBYTES];
	uint8_t hash[HASHBYTES], nonce[NONCEBYTES], ad[HASHBYTES + 9];
	uint8_t prefix[PREFIXBYTES];
	int rc;

	*out_r = NULL;
	if (sodium_init() < 0)
		return SP_ECRYPTO;
	if ((rc = seal_check_args(a, len)) != 0)
		return rc;
	shift = a->chunk_shift ? a->chunk_shift : SP_ENVELOPE_CHUNK_SHIFT_DEFAULT;
	csize = (size_t)1 << shift;
	padded = sp_pad_size(len);
	nchunks = chunk_count(padded, shift);
	hlen = FIXEDBYTES + a->n_recipients * SEALBOX_SLOTBYTES +
	    (a->mailbox_key ? MAILBOX_SLOTBYTES : 0);
	total = hlen + INFOBYTES + ABYTES + padded + nchunks * ABYTES;

	rc = SP_ENOMEM;
	if ((out = malloc(total)) == NULL || (key = sp_secmem_alloc()) == NULL)
		goto out;
	crypto_aead_xchacha20poly1305_ietf_keygen(key);
	randombytes_buf(prefix, sizeof(prefix));

	out[0] = SP_ENVELOPE_VERSION;
	out[1] = (uint8_t)a->kind;
	out[2] = AEAD_XCHACHA;
	out[3] = (uint8_t)shift;
	out[4] = (uint8_t)(a->n_recipients + (a->mailbox_key ? 1 : 0));
	out[5] = out[6] = out[7] = 0;
	sp_put_be64(out + 8, padded);
	memcpy(out + 16, prefix, PREFIXBYTES);
	(void)seal_slots(a, out, key);
	crypto_generichash(hash, sizeof(hash), out, hlen, NULL, 0);

	/* Segment 0: content length and signature. */
	off = hlen;
	seal_info(a, msg, len, info);
	seg_nonce(nonce, prefix, 0);
	seg_ad(ad, hash, 0, 0);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + off, NULL, info,
	    INFOBYTES, ad, sizeof(ad), NULL, nonce, key);
	sodium_memzero(info, sizeof(info));
	off += INFOBYTES + ABYTES;

	/*
	 * Segments 1..n.  Whole chunks of content are encrypted straight from
	 * msg; the chunk that holds the end of the content and the padding is
	 * assembled in place in out and encrypted there (libsodium allows the
	 * output to alias the input), so no scratch buffer is needed.
	 */
	for (i = 0; i < nchunks; i++) {
		uint64_t start = i << shift;
		size_t clen = (size_t)(padded - start < csize ?
		    padded - start : csize);
		const uint8_t *src = msg + start;

		take = start < len ? (size_t)(len - start < clen ?
		    len - start : clen) : 0;
		if (take < clen) {
			memmove(out + off, msg + start, take);
			memset(out + off + take, 0, clen - take);
			src = out + off;
		}
		seg_nonce(nonce, prefix, i + 1);
		seg_ad(ad, hash, i + 1, i + 1 == nchunks);
		crypto_aead_xchacha20poly1305_ietf_encrypt(out + off, NULL,
		    src, clen, ad, sizeof(ad), NULL, nonce, key);
		off += clen + ABYTES;
	}
	*out_r = out;
	*len_r = total;
	out = NULL;
	rc = 0;
out:
	free(out);
	sp_secmem_free(key);
	return rc;
}

/* Tries every slot with the keys given; 0 with key filled, or SP_ENOKEY. */
static int
open_slots(const struct env_header *h, const uint8_t *x_pk,
    const uint8_t *x_sk, const uint8_t *mbx, uint8_t *key)
{
	const uint8_t *p = h->slots;
	unsigned i;

	for (i = 0; i < h->nslots; i++) {
		if (p[0] == SLOT_SEALBOX) {
			if (x_sk && crypto_box_seal_open(key, p + 1,
			    crypto_box_SEALBYTES + 32, x_pk, x_sk) == 0)
				return 0;
			p += SEALBOX_SLOTBYTES;
		} else {
			if (mbx && crypto_aead_xchacha20poly1305_ietf_decrypt(
			    key, NULL, NULL, p + 1 + NONCEBYTES, 32 + ABYTES,
			    (const uint8_t *)MAILBOX_AD, sizeof(MAILBOX_AD) - 1,
			    p + 1, mbx) == 0)
				return 0;
			p += MAILBOX_SLOTBYTES;
		}
	}
	return SP_ENOKEY;
}

/* Length of chunk i (1-based) without decrypting it. */
static size_t
chunk_len(const sp_envelope *r, uint64_t i)
{
	uint64_t start = (i - 1) << r->chunk_shift;
	size_t csize = (size_t)1 << r->chunk_shift;

	return (size_t)(r->padded_len - start < csize ?
	    r->padded_len - start : csize);
}

/* Decrypts segment index (0 = info) into dst (r->chunk when NULL);
 * returns its length in *len_r. */
static int
open_segment(sp_envelope *r, uint64_t index, uint8_t *dst, size_t *len_r)
{
	uint8_t nonce[NONCEBYTES], ad[HASHBYTES + 9];
	const uint8_t *ct;
	size_t clen, csize = (size_t)1 << r->chunk_shift;

	if (index == 0) {
		ct = r->env + r->data_off - INFOBYTES - ABYTES;
		clen = INFOBYTES;
	} else {
		ct = r->env + r->data_off + (index - 1) * (csize + ABYTES);
		clen = chunk_len(r, index);
	}
	seg_nonce(nonce, r->prefix, index);
	seg_ad(ad, r->hash, index, index == r->nchunks);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(dst ? dst : r->chunk,
	    NULL, NULL, ct, clen + ABYTES, ad, sizeof(ad), nonce, r->key) != 0)
		return SP_EAUTH;
	*len_r = clen;
	return 0;
}

static int
open_info(sp_envelope *r)
{
	const uint8_t *info = r->chunk;
	size_t n;
	int rc, i;

	if ((rc = open_segment(r, 0, NULL, &n)) != 0)
		return rc;
	r->content_len = sp_get_be64(info);
	if (r->content_len > r->padded_len)
		return SP_EFORMAT;
	for (i = 9; i < 16; i++)
		if (info[i])
			return SP_EFORMAT;
	for (i = 112; i < INFOBYTES; i++)
		if (info[i])
			return SP_EFORMAT;
	if (info[8] == SIG_ALG_ED25519) {
		r->signed_ = 1;
		memcpy(r->signer, info + 16, 32);
		memcpy(r->sig, info + 48, 64);
	} else if (info[8] != SIG_ALG_NONE) {
		return SP_EVERSION;
	} else {
		for (i = 16; i < 112; i++)
			if (info[i])
				return SP_EFORMAT; /* unsigned: fields zero */
	}
	return 0;
}

int
sp_envelope_open_raw(const uint8_t *env, size_t len, const uint8_t *x25519_pk,
    const uint8_t *x25519_sk, const uint8_t *mailbox_key, sp_envelope **r_out)
{
	struct env_header h;
	sp_envelope *r = NULL;
	size_t csize;
	int rc;

	*r_out = NULL;
	if (sodium_init() < 0)
		return SP_ECRYPTO;
	if ((x25519_sk == NULL) != (x25519_pk == NULL) ||
	    (x25519_sk == NULL && mailbox_key == NULL))
		return SP_EINVAL;
	if ((rc = header_parse(env, len, &h)) != 0)
		return rc;
	csize = (size_t)1 << h.chunk_shift;
	rc = SP_ENOMEM;
	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    (r->key = sp_secmem_alloc()) == NULL ||
	    (r->chunk = malloc(csize)) == NULL)
		goto fail;
	r->chunk_cap = csize;
	r->env = env;
	r->len = len;
	r->kind = h.kind;
	r->chunk_shift = h.chunk_shift;
	r->padded_len = h.padded_len;
	r->nchunks = h.nchunks;
	r->data_off = h.header_len + INFOBYTES + ABYTES;
	memcpy(r->prefix, env + 16, PREFIXBYTES);
	crypto_generichash(r->hash, sizeof(r->hash), env, h.header_len, NULL, 0);
	if ((rc = open_slots(&h, x25519_pk, x25519_sk, mailbox_key, r->key)) ||
	    (rc = open_info(r)))
		goto fail;
	*r_out = r;
	return 0;
fail:
	sp_envelope_close(r);
	return rc;
}

int
sp_envelope_open(const uint8_t *env, size_t len, const sp_keyset *ks,
    sp_envelope **r)
{
	return sp_envelope_open_raw(env, len, sp_keyset_encryption_pk(ks),
	    sp_keyset_encryption_sk(ks), sp_keyset_mailbox_key(ks), r);
}

void
sp_envelope_close(sp_envelope *r)
{
	if (r == NULL)
		return;
	sp_secmem_free(r->key);
	if (r->chunk) {
		sodium_memzero(r->chunk, r->chunk_cap);
		free(r->chunk);
	}
	sodium_memzero(r, sizeof(*r));
	free(r);
}

unsigned sp_envelope_kind(const sp_envelope *r) { return r->kind; }
uint64_t sp_envelope_content_length(const sp_envelope *r) { return r->content_len; }

int
sp_envelope_signer(const sp_envelope *r, uint8_t pk_r[32])
{
	if (!r->signed_)
		return 0;
	memcpy(pk_r, r->signer, 32);
	return 1;
}

int
sp_envelope_read(sp_envelope *r, uint64_t off, uint8_t *buf, size_t n)
{
	uint64_t idx, start, end = off + n;
	size_t clen, from, take, done = 0;
	int rc;

	if (end < off || end > r->content_len)
		return SP_ERANGE;
	while (done < n) {
		idx = ((off + done) >> r->chunk_shift) + 1;
		start = (idx - 1) << r->chunk_shift;
		if ((rc = open_segment(r, idx, NULL, &clen)) != 0) {
			sodium_memzero(buf, n);
			return rc;
		}
		from = (size_t)(off + done - start);
		take = clen - from < n - done ? clen - from : n - done;
		memcpy(buf + done, r->chunk + from, take);
		done += take;
	}
	sodium_memzero(r->chunk, r->chunk_cap);
	return 0;
}

int
sp_envelope_read_all(sp_envelope *r, uint8_t *buf, size_t buf_len)
{
	uint64_t i, start;
	size_t clen, take, j;
	uint8_t d[64];
	int rc = 0;

	if (buf_len < r->content_len)
		return SP_EINVAL;
	for (i = 1; i <= r->nchunks; i++) {
		start = (i - 1) << r->chunk_shift;
		/* Chunks wholly inside the content decrypt straight into buf;
		 * the one holding the end goes through the scratch buffer so
		 * its padding never lands in the caller's memory. */
		if (start + chunk_len(r, i) <= r->content_len) {
			if ((rc = open_segment(r, i, buf + start, &clen)) != 0)
				goto fail;
			continue;
		}
		if ((rc = open_segment(r, i, NULL, &clen)) != 0)
			goto fail;
		take = start < r->content_len ?
		    (size_t)(r->content_len - start) : 0;
		memcpy(buf + start, r->chunk, take);
		/* Padding must be zero: a writer that leaks data there is
		 * broken, and we refuse rather than hide it. */
		for (j = take; j < clen; j++)
			if (r->chunk[j]) {
				rc = SP_EFORMAT;
				goto fail;
			}
	}
	sodium_memzero(r->chunk, r->chunk_cap);
	if (r->signed_) {
		sig_digest(d, r->kind, buf, r->content_len);
		if (crypto_sign_verify_detached(r->sig, d, sizeof(d),
		    r->signer) != 0) {
			rc = SP_ESIG;
			goto fail;
		}
	}
	return 0;
fail:
	sodium_memzero(r->chunk, r->chunk_cap);
	sodium_memzero(buf, buf_len);
	return rc;
}
