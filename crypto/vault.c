#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/bytes.h"
#include "crypto/vault.h"

#define AEAD_XCHACHA 1
#define NONCEBYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES /* 24 */
#define ABYTES crypto_aead_xchacha20poly1305_ietf_ABYTES        /* 16 */
#define WRAPBYTES (32 + ABYTES)
#define PW_SLOTBYTES (1 + SP_KDF_PARAMSBYTES + NONCEBYTES + WRAPBYTES)
#define RC_SLOTBYTES (1 + NONCEBYTES + WRAPBYTES)
#define MAX_SLOTS 2
#define SLOT_AD "sealpost-vault-slot-v1"
#define BODY_AD "sealpost-vault-v1"
#define RECOVERY_CTX "sp-recov"
#define MAC_CTX "sp-vault"
#define MACBYTES 32

struct vault_slot {
	int type;
	const uint8_t *start;   /* the type byte */
	size_t len;
	const uint8_t *params;  /* password slots only */
	const uint8_t *nonce;
	const uint8_t *wrapped;
};

struct vault_view {
	struct vault_slot slot[MAX_SLOTS];
	unsigned nslots;
	const uint8_t *body;      /* nonce | ct_len | ct */
	size_t body_len;
	const uint8_t *nonce;
	const uint8_t *ct;
	size_t ct_len;
	const uint8_t *mac;       /* over every byte before it */
	size_t mac_off;
};

/* Structural parse: no key needed, every length checked. */
static int
vault_view_parse(const uint8_t *v, size_t len, struct vault_view *w)
{
	size_t off = 3, need;
	unsigned i, n;

	memset(w, 0, sizeof(*w));
	if (len < 3)
		return SP_ETRUNC;
	if (v[0] != SP_VAULT_VERSION || v[1] != AEAD_XCHACHA)
		return SP_EVERSION;
	if (len > SP_VAULT_MAX)
		return SP_ELIMIT;
	n = v[2];
	if (n < 1 || n > MAX_SLOTS)
		return SP_EFORMAT;
	for (i = 0; i < n; i++) {
		struct vault_slot *s = &w->slot[i];

		if (off >= len)
			return SP_ETRUNC;
		s->type = v[off];
		s->start = v + off;
		if (s->type == SP_VAULT_SLOT_PASSWORD)
			need = PW_SLOTBYTES;
		else if (s->type == SP_VAULT_SLOT_RECOVERY)
			need = RC_SLOTBYTES;
		else
			return SP_EVERSION;
		/* One slot per type: a second would be ambiguous. */
		if (i > 0 && w->slot[0].type == s->type)
			return SP_EFORMAT;
		if (len - off < need)
			return SP_ETRUNC;
		s->len = need;
		s->params = s->type == SP_VAULT_SLOT_PASSWORD ? v + off + 1 : NULL;
		if (s->params) {
			struct sp_kdf_params p;
			int rc = sp_kdf_params_decode(s->params, &p);

			if (rc != 0)
				return rc;
		}
		s->nonce = v + off + 1 +
		    (s->params ? SP_KDF_PARAMSBYTES : 0);
		s->wrapped = s->nonce + NONCEBYTES;
		off += need;
	}
	w->nslots = n;
	if (len - off < NONCEBYTES + 4)
		return SP_ETRUNC;
	w->body = v + off;
	w->nonce = v + off;
	w->ct_len = sp_get_be32(v + off + NONCEBYTES);
	w->ct = v + off + NONCEBYTES + 4;
	if (w->ct_len < ABYTES + SP_KEYSET_FIXEDBYTES ||
	    w->ct_len > ABYTES + SP_KEYSET_FIXEDBYTES + SP_KEYSET_PGP_MAX)
		return SP_EFORMAT;
	if (len - off - NONCEBYTES - 4 != w->ct_len + MACBYTES)
		return SP_ETRUNC;
	w->body_len = NONCEBYTES + 4 + w->ct_len;
	w->mac_off = off + w->body_len;
	w->mac = v + w->mac_off;
	return 0;
}

/* AD binding a slot to its type, the vault version and, for password
 * slots, the KDF parameters (so they cannot be swapped for weaker ones). */
static size_t
slot_ad(uint8_t *ad, int type, const uint8_t *params)
{
	size_t n = sizeof(SLOT_AD) - 1;

	memcpy(ad, SLOT_AD, n);
	ad[n++] = SP_VAULT_VERSION;
	ad[n++] = AEAD_XCHACHA;
	ad[n++] = (uint8_t)type;
	if (params) {
		memcpy(ad + n, params, SP_KDF_PARAMSBYTES);
		n += SP_KDF_PARAMSBYTES;
	}
	return n;
}

static size_t
body_ad(uint8_t *ad)
{
	size_t n = sizeof(BODY_AD) - 1;

	memcpy(ad, BODY_AD, n);
	ad[n++] = SP_VAULT_VERSION;
	ad[n++] = AEAD_XCHACHA;
	return n;
}

/*
 * The trailer MAC, keyed by a subkey of the data key, covers every slot and
 * the body.  Without it a server could damage the recovery slot unnoticed
 * by a client that only ever opens the password slot, and the user would
 * learn it on the day they need to recover.
 */
static int
vault_mac(const uint8_t *dk, const uint8_t *v, size_t len, uint8_t *mac)
{
	uint8_t *mk;

	if ((mk = sodium_malloc(32)) == NULL)
		return SP_ENOMEM;
	crypto_kdf_derive_from_key(mk, 32, 1, MAC_CTX, dk);
	crypto_generichash(mac, MACBYTES, v, len, mk, 32);
	sodium_free(mk);
	return 0;
}

static int
vault_mac_check(const uint8_t *dk, const uint8_t *v,
    const struct vault_view *w)
{
	uint8_t mac[MACBYTES];
	int rc;

	if ((rc = vault_mac(dk, v, w->mac_off, mac)) != 0)
		return rc;
	return crypto_verify_32(mac, w->mac) == 0 ? 0 : SP_EAUTH;
}

/* The key that wraps a slot: the vault key itself, or for recovery slots a
 * subkey of the recovery key (so the raw recovery key never keys an AEAD). */
static int
slot_key(int type, const uint8_t key[32], uint8_t *out)
{
	if (type == SP_VAULT_SLOT_PASSWORD) {
		memcpy(out, key, 32);
		return 0;
	}
	return crypto_kdf_derive_from_key(out, 32, 1, RECOVERY_CTX, key) ?
	    SP_ECRYPTO : 0;
}

/* Writes one slot (type byte first) wrapping dk; returns bytes written. */
static int
slot_write(uint8_t *p, int type, const uint8_t key[32],
    const struct sp_kdf_params *pw, const uint8_t *dk, size_t *len_r)
{
	uint8_t ad[64], *kw = NULL, *params = NULL, *nonce;
	size_t adlen;
	int rc = SP_ENOMEM;

	if ((kw = sodium_malloc(32)) == NULL)
		return SP_ENOMEM;
	if ((rc = slot_key(type, key, kw)) != 0)
		goto out;
	p[0] = (uint8_t)type;
	if (type == SP_VAULT_SLOT_PASSWORD) {
		params = p + 1;
		sp_kdf_params_encode(pw, params);
	}
	nonce = p + 1 + (params ? SP_KDF_PARAMSBYTES : 0);
	randombytes_buf(nonce, NONCEBYTES);
	adlen = slot_ad(ad, type, params);
	crypto_aead_xchacha20poly1305_ietf_encrypt(nonce + NONCEBYTES, NULL,
	    dk, 32, ad, adlen, NULL, nonce, kw);
	*len_r = type == SP_VAULT_SLOT_PASSWORD ? PW_SLOTBYTES : RC_SLOTBYTES;
	rc = 0;
out:
	sodium_free(kw);
	return rc;
}

/* Unwraps the data key from the slot of the given type into dk. */
static int
slot_unwrap(const struct vault_view *w, int type, const uint8_t key[32],
    uint8_t *dk)
{
	const struct vault_slot *s = NULL;
	uint8_t ad[64], *kw;
	unsigned i;
	int rc;

	for (i = 0; i < w->nslots; i++)
		if (w->slot[i].type == type)
			s = &w->slot[i];
	if (s == NULL)
		return SP_ENOKEY;
	if ((kw = sodium_malloc(32)) == NULL)
		return SP_ENOMEM;
	if ((rc = slot_key(type, key, kw)) == 0 &&
	    crypto_aead_xchacha20poly1305_ietf_decrypt(dk, NULL, NULL,
	    s->wrapped, WRAPBYTES, ad, slot_ad(ad, type, s->params), s->nonce,
	    kw) != 0)
		rc = SP_EAUTH;
	sodium_free(kw);
	return rc;
}

int
sp_vault_seal(const sp_keyset *ks, const uint8_t vault_key[32],
    const struct sp_kdf_params *pw, const uint8_t *recovery_key,
    uint8_t **out_r, size_t *len_r)
{
	uint8_t *dk = NULL, *plain = NULL, *out = NULL, *p, ad[32];
	size_t plain_len, total, n;
	int rc;

	*out_r = NULL;
	if (sodium_init() < 0)
		return SP_ECRYPTO;
	if ((rc = sp_keyset_serialize(ks, &plain, &plain_len)) != 0)
		return rc;
	rc = SP_ENOMEM;
	total = 3 + PW_SLOTBYTES + (recovery_key ? RC_SLOTBYTES : 0) +
	    NONCEBYTES + 4 + plain_len + ABYTES + MACBYTES;
	if ((dk = sodium_malloc(32)) == NULL || (out = malloc(total)) == NULL)
		goto out;
	crypto_aead_xchacha20poly1305_ietf_keygen(dk);
	out[0] = SP_VAULT_VERSION;
	out[1] = AEAD_XCHACHA;
	out[2] = recovery_key ? 2 : 1;
	p = out + 3;
	if ((rc = slot_write(p, SP_VAULT_SLOT_PASSWORD, vault_key, pw, dk,
	    &n)) != 0)
		goto out;
	p += n;
	if (recovery_key) {
		if ((rc = slot_write(p, SP_VAULT_SLOT_RECOVERY, recovery_key,
		    NULL, dk, &n)) != 0)
			goto out;
		p += n;
	}
	randombytes_buf(p, NONCEBYTES);
	n = plain_len + ABYTES;
	p[NONCEBYTES] = (uint8_t)(n >> 24);
	p[NONCEBYTES + 1] = (uint8_t)(n >> 16);
	p[NONCEBYTES + 2] = (uint8_t)(n >> 8);
	p[NONCEBYTES + 3] = (uint8_t)n;
	crypto_aead_xchacha20poly1305_ietf_encrypt(p + NONCEBYTES + 4, NULL,
	    plain, plain_len, ad, body_ad(ad), NULL, p, dk);
	if ((rc = vault_mac(dk, out, total - MACBYTES, out + total - MACBYTES)))
		goto out;
	*out_r = out;
	*len_r = total;
	out = NULL;
	rc = 0;
out:
	free(out);
	sodium_free(dk);
	sodium_free(plain);
	return rc;
}

int
sp_vault_open(const uint8_t *v, size_t len, int slot_type,
    const uint8_t key[32], sp_keyset **ks_r)
{
	struct vault_view w;
	uint8_t *dk = NULL, *plain = NULL, ad[32];
	size_t plain_len;
	int rc;

	*ks_r = NULL;
	if (sodium_init() < 0)
		return SP_ECRYPTO;
	if ((rc = vault_view_parse(v, len, &w)) != 0)
		return rc;
	rc = SP_ENOMEM;
	plain_len = w.ct_len - ABYTES;
	if ((dk = sodium_malloc(32)) == NULL ||
	    (plain = sodium_malloc(plain_len)) == NULL)
		goto out;
	if ((rc = slot_unwrap(&w, slot_type, key, dk)) != 0 ||
	    (rc = vault_mac_check(dk, v, &w)) != 0)
		goto out;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, NULL, NULL,
	    w.ct, w.ct_len, ad, body_ad(ad), w.nonce, dk) != 0) {
		rc = SP_EAUTH;
		goto out;
	}
	rc = sp_keyset_parse(plain, plain_len, ks_r);
	/* Authenticated bytes that do not parse mean a broken writer, not an
	 * attacker; still an error, never a partial key set. */
	if (rc != 0)
		rc = SP_EFORMAT;
out:
	sodium_free(dk);
	sodium_free(plain);
	return rc;
}

int
sp_vault_rewrap(const uint8_t *v, size_t len, int slot_type,
    const uint8_t key[32], const uint8_t new_vault_key[32],
    const struct sp_kdf_params *new_pw, uint8_t **out_r, size_t *len_r)
{
	struct vault_view w;
	uint8_t *dk = NULL, *out = NULL, *p;
	size_t total, n;
	unsigned i;
	int rc;

	*out_r = NULL;
	if (sodium_init() < 0)
		return SP_ECRYPTO;
	if ((rc = vault_view_parse(v, len, &w)) != 0)
		return rc;
	rc = SP_ENOMEM;
	total = 3 + PW_SLOTBYTES + w.body_len + MACBYTES;
	for (i = 0; i < w.nslots; i++)
		if (w.slot[i].type != SP_VAULT_SLOT_PASSWORD)
			total += w.slot[i].len;
	if ((dk = sodium_malloc(32)) == NULL || (out = malloc(total)) == NULL)
		goto out;
	if ((rc = slot_unwrap(&w, slot_type, key, dk)) != 0)
		goto out;
	/* Check the body too: never re-wrap a vault whose key set was
	 * tampered with, or the new password would seal garbage. */
	{
		sp_keyset *ks;

		if ((rc = sp_vault_open(v, len, slot_type, key, &ks)) != 0)
			goto out;
		sp_keyset_destroy(ks);
	}
	out[0] = SP_VAULT_VERSION;
	out[1] = AEAD_XCHACHA;
	out[2] = 1;
	p = out + 3;
	if ((rc = slot_write(p, SP_VAULT_SLOT_PASSWORD, new_vault_key, new_pw,
	    dk, &n)) != 0)
		goto out;
	p += n;
	for (i = 0; i < w.nslots; i++) {
		if (w.slot[i].type == SP_VAULT_SLOT_PASSWORD)
			continue;
		memcpy(p, w.slot[i].start, w.slot[i].len);
		p += w.slot[i].len;
		out[2]++;
	}
	memcpy(p, w.body, w.body_len);
	if ((rc = vault_mac(dk, out, total - MACBYTES, out + total - MACBYTES)))
		goto out;
	*out_r = out;
	*len_r = total;
	out = NULL;
	rc = 0;
out:
	free(out);
	sodium_free(dk);
	return rc;
}

int
sp_vault_params(const uint8_t *v, size_t len, struct sp_kdf_params *pw)
{
	struct vault_view w;
	unsigned i;
	int rc;

	if ((rc = vault_view_parse(v, len, &w)) != 0)
		return rc;
	for (i = 0; i < w.nslots; i++)
		if (w.slot[i].type == SP_VAULT_SLOT_PASSWORD)
			return sp_kdf_params_decode(w.slot[i].params, pw);
	return SP_ENOKEY;
}
