#include <string.h>

#include <sodium.h>

#include "crypto/bytes.h"
#include "crypto/keyset.h"

struct sp_keyset {
	uint8_t id_seed[32];
	uint8_t id_pk[32];
	uint8_t id_sk[64];
	uint8_t enc_sk[32];
	uint8_t enc_pk[32];
	uint8_t mailbox[32];
	uint8_t *pgp;     /* sodium_malloc'd, or NULL */
	size_t pgp_len;
};

static int
keyset_alloc(sp_keyset **ks_r)
{
	sp_keyset *ks;

	*ks_r = NULL;
	if (sodium_init() < 0)
		return SP_ECRYPTO;
	if ((ks = sodium_malloc(sizeof(*ks))) == NULL)
		return SP_ENOMEM;
	memset(ks, 0, sizeof(*ks));
	*ks_r = ks;
	return 0;
}

/* Derives the public halves (and the expanded Ed25519 key) from secrets. */
static int
keyset_complete(sp_keyset *ks)
{
	if (crypto_sign_seed_keypair(ks->id_pk, ks->id_sk, ks->id_seed) != 0 ||
	    crypto_scalarmult_base(ks->enc_pk, ks->enc_sk) != 0)
		return SP_ECRYPTO;
	return 0;
}

int
sp_keyset_generate(sp_keyset **ks_r)
{
	sp_keyset *ks;
	int rc;

	if ((rc = keyset_alloc(&ks)) != 0)
		return rc;
	randombytes_buf(ks->id_seed, sizeof(ks->id_seed));
	randombytes_buf(ks->enc_sk, sizeof(ks->enc_sk));
	crypto_aead_xchacha20poly1305_ietf_keygen(ks->mailbox);
	if ((rc = keyset_complete(ks)) != 0) {
		sp_keyset_destroy(ks);
		return rc;
	}
	*ks_r = ks;
	return 0;
}

void
sp_keyset_destroy(sp_keyset *ks)
{
	if (ks == NULL)
		return;
	sodium_free(ks->pgp);
	sodium_free(ks);
}

const uint8_t *sp_keyset_identity_pk(const sp_keyset *ks) { return ks->id_pk; }
const uint8_t *sp_keyset_encryption_pk(const sp_keyset *ks) { return ks->enc_pk; }
const uint8_t *sp_keyset_identity_sk(const sp_keyset *ks) { return ks->id_sk; }
const uint8_t *sp_keyset_encryption_sk(const sp_keyset *ks) { return ks->enc_sk; }
const uint8_t *sp_keyset_mailbox_key(const sp_keyset *ks) { return ks->mailbox; }

int
sp_keyset_set_pgp(sp_keyset *ks, const uint8_t *key, size_t len)
{
	uint8_t *copy = NULL;

	if (len > SP_KEYSET_PGP_MAX)
		return SP_ELIMIT;
	if (len > 0) {
		if ((copy = sodium_malloc(len)) == NULL)
			return SP_ENOMEM;
		memcpy(copy, key, len);
	}
	sodium_free(ks->pgp);
	ks->pgp = copy;
	ks->pgp_len = len;
	return 0;
}

const uint8_t *
sp_keyset_pgp(const sp_keyset *ks, size_t *len_r)
{
	*len_r = ks->pgp_len;
	return ks->pgp;
}

int
sp_keyset_serialize(const sp_keyset *ks, uint8_t **out_r, size_t *len_r)
{
	size_t len = SP_KEYSET_FIXEDBYTES + ks->pgp_len;
	uint8_t *b;

	*out_r = NULL;
	if ((b = sodium_malloc(len)) == NULL)
		return SP_ENOMEM;
	b[0] = SP_KEYSET_VERSION;
	memcpy(b + 1, ks->id_seed, 32);
	memcpy(b + 33, ks->enc_sk, 32);
	memcpy(b + 65, ks->mailbox, 32);
	sp_put_be32(b + 97, (uint32_t)ks->pgp_len);
	if (ks->pgp_len)
		memcpy(b + SP_KEYSET_FIXEDBYTES, ks->pgp, ks->pgp_len);
	*out_r = b;
	*len_r = len;
	return 0;
}

int
sp_keyset_parse(const uint8_t *in, size_t len, sp_keyset **ks_r)
{
	sp_keyset *ks;
	uint32_t pgp_len;
	int rc;

	*ks_r = NULL;
	if (len < 1)
		return SP_ETRUNC;
	if (in[0] != SP_KEYSET_VERSION)
		return SP_EVERSION;
	if (len < SP_KEYSET_FIXEDBYTES)
		return SP_ETRUNC;
	pgp_len = sp_get_be32(in + 97);
	if (pgp_len > SP_KEYSET_PGP_MAX)
		return SP_ELIMIT;
	if (len != SP_KEYSET_FIXEDBYTES + (size_t)pgp_len)
		return SP_ETRUNC;
	if ((rc = keyset_alloc(&ks)) != 0)
		return rc;
	memcpy(ks->id_seed, in + 1, 32);
	memcpy(ks->enc_sk, in + 33, 32);
	memcpy(ks->mailbox, in + 65, 32);
	if ((rc = keyset_complete(ks)) != 0 ||
	    (rc = sp_keyset_set_pgp(ks, in + SP_KEYSET_FIXEDBYTES, pgp_len)) != 0) {
		sp_keyset_destroy(ks);
		return rc;
	}
	*ks_r = ks;
	return 0;
}
