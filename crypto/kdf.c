#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "crypto/bytes.h"
#include "crypto/kdf.h"

#define KDF_CTX "sp-login"
#define KDF_ID_AUTH 1
#define KDF_ID_VAULT 2
#define LOGIN_PREFIX "sealpost-login-v1"

static int
cost_ok(uint32_t ops, uint32_t mem_kib)
{
	return ops >= SP_KDF_OPS_MIN && ops <= SP_KDF_OPS_MAX &&
	    mem_kib >= SP_KDF_MEM_KIB_MIN && mem_kib <= SP_KDF_MEM_KIB_MAX;
}

int
sp_kdf_params_new(struct sp_kdf_params *p, uint32_t opslimit, uint32_t mem_kib)
{
	if (sodium_init() < 0)
		return SP_ECRYPTO;
	if (opslimit == 0)
		opslimit = SP_KDF_OPS_DEFAULT;
	if (mem_kib == 0)
		mem_kib = SP_KDF_MEM_KIB_DEFAULT;
	if (!cost_ok(opslimit, mem_kib))
		return SP_EINVAL;
	p->alg = SP_KDF_ALG_ARGON2ID13;
	p->opslimit = opslimit;
	p->mem_kib = mem_kib;
	randombytes_buf(p->salt, sizeof(p->salt));
	return 0;
}

void
sp_kdf_params_encode(const struct sp_kdf_params *p,
    uint8_t out[SP_KDF_PARAMSBYTES])
{
	out[0] = p->alg;
	sp_put_be32(out + 1, p->opslimit);
	sp_put_be32(out + 5, p->mem_kib);
	memcpy(out + 9, p->salt, SP_KDF_SALTBYTES);
}

int
sp_kdf_params_decode(const uint8_t in[SP_KDF_PARAMSBYTES],
    struct sp_kdf_params *p)
{
	if (in[0] != SP_KDF_ALG_ARGON2ID13)
		return SP_EVERSION;
	p->alg = in[0];
	p->opslimit = sp_get_be32(in + 1);
	p->mem_kib = sp_get_be32(in + 5);
	memcpy(p->salt, in + 9, SP_KDF_SALTBYTES);
	return cost_ok(p->opslimit, p->mem_kib) ? 0 : SP_ELIMIT;
}

int
sp_kdf_derive(const char *password, size_t password_len,
    const struct sp_kdf_params *p, struct sp_login_keys **keys_r)
{
	struct sp_login_keys *k = NULL;
	uint8_t *root = NULL, *seed = NULL;
	int rc = SP_ENOMEM;

	*keys_r = NULL;
	if (sodium_init() < 0)
		return SP_ECRYPTO;
	if (p->alg != SP_KDF_ALG_ARGON2ID13)
		return SP_EVERSION;
	if (!cost_ok(p->opslimit, p->mem_kib))
		return SP_ELIMIT;
	if ((k = sodium_malloc(sizeof(*k))) == NULL ||
	    (root = sodium_malloc(SP_KDF_KEYBYTES)) == NULL ||
	    (seed = sodium_malloc(32)) == NULL)
		goto out;
	if (crypto_pwhash(root, SP_KDF_KEYBYTES, password, password_len,
	    p->salt, p->opslimit, (size_t)p->mem_kib * 1024,
	    crypto_pwhash_ALG_ARGON2ID13) != 0) {
		rc = errno == ENOMEM ? SP_ENOMEM : SP_ECRYPTO;
		goto out;
	}
	if (crypto_kdf_derive_from_key(seed, 32, KDF_ID_AUTH, KDF_CTX,
	    root) != 0 ||
	    crypto_kdf_derive_from_key(k->vault_key, SP_KDF_KEYBYTES,
	    KDF_ID_VAULT, KDF_CTX, root) != 0 ||
	    crypto_sign_seed_keypair(k->auth_pk, k->auth_sk, seed) != 0) {
		rc = SP_ECRYPTO;
		goto out;
	}
	*keys_r = k;
	k = NULL;
	rc = 0;
out:
	sp_login_keys_free(k);
	sodium_free(root);
	sodium_free(seed);
	return rc;
}

void
sp_login_keys_free(struct sp_login_keys *k)
{
	/* sodium_free wipes the whole allocation before unmapping it. */
	sodium_free(k);
}

static int
challenge_digest(const uint8_t *challenge, size_t len, uint8_t out[64])
{
	crypto_generichash_state st;

	if (len < 16 || len > 256)
		return SP_EINVAL;
	crypto_generichash_init(&st, NULL, 0, 64);
	crypto_generichash_update(&st, (const uint8_t *)LOGIN_PREFIX,
	    sizeof(LOGIN_PREFIX) - 1);
	crypto_generichash_update(&st, challenge, len);
	crypto_generichash_final(&st, out, 64);
	return 0;
}

int
sp_kdf_sign_challenge(const struct sp_login_keys *k,
    const uint8_t *challenge, size_t challenge_len, uint8_t sig[64])
{
	uint8_t d[64];
	int rc;

	if ((rc = challenge_digest(challenge, challenge_len, d)) != 0)
		return rc;
	return crypto_sign_detached(sig, NULL, d, sizeof(d), k->auth_sk) ?
	    SP_ECRYPTO : 0;
}

int
sp_kdf_verify_challenge(const uint8_t auth_pk[32], const uint8_t *challenge,
    size_t challenge_len, const uint8_t sig[64])
{
	uint8_t d[64];
	int rc;

	if (sodium_init() < 0)
		return SP_ECRYPTO;
	if ((rc = challenge_digest(challenge, challenge_len, d)) != 0)
		return rc;
	return crypto_sign_verify_detached(sig, d, sizeof(d), auth_pk) ?
	    SP_ESIG : 0;
}
