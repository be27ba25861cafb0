/*
 * Password to keys.  The password never leaves the client.
 *
 *   root      = Argon2id(password, salt, opslimit, memlimit)      32 bytes
 *   auth seed = crypto_kdf_derive(root, id 1, ctx "sp-login")    32 bytes
 *   vault key = crypto_kdf_derive(root, id 2, ctx "sp-login")    32 bytes
 *
 * The auth seed is an Ed25519 seed: the server keeps only its public half
 * and checks a signature over a fresh challenge.  The vault key unwraps the
 * account's key vault (crypto/vault.h).  The Argon2id parameters travel with
 * the salt (struct sp_kdf_params, 25 bytes on the wire) so they can be raised
 * later without a format change.
 */
#ifndef SP_CRYPTO_KDF_H
#define SP_CRYPTO_KDF_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/error.h"

#define SP_KDF_ALG_ARGON2ID13 1
#define SP_KDF_SALTBYTES 16
#define SP_KDF_PARAMSBYTES 25 /* alg(1) ops(4) mem_kib(4) salt(16) */
#define SP_KDF_KEYBYTES 32

/* Defaults: libsodium's MODERATE (about 0.7 s and 256 MiB on one core). */
#define SP_KDF_OPS_DEFAULT 3u
#define SP_KDF_MEM_KIB_DEFAULT (256u * 1024u)
/* Accepted range: below the floor a hostile server could make clients
 * derive cheap-to-guess keys; above the ceiling it could exhaust memory. */
#define SP_KDF_OPS_MIN 1u
#define SP_KDF_OPS_MAX 64u
#define SP_KDF_MEM_KIB_MIN 8u
#define SP_KDF_MEM_KIB_MAX (4u * 1024u * 1024u)

struct sp_kdf_params {
	uint8_t alg;          /* SP_KDF_ALG_ARGON2ID13 */
	uint32_t opslimit;
	uint32_t mem_kib;     /* memory in KiB */
	uint8_t salt[SP_KDF_SALTBYTES];
};

/* Login keys derived from a password; lives in sodium_malloc memory. */
struct sp_login_keys {
	uint8_t auth_pk[32];  /* Ed25519 public: what the server stores */
	uint8_t auth_sk[64];  /* Ed25519 secret: signs login challenges */
	uint8_t vault_key[SP_KDF_KEYBYTES];
};

/* Fills p with a fresh random salt and the given cost (0 = default).
 * Returns SP_EINVAL when a cost is outside the accepted range. */
int sp_kdf_params_new(struct sp_kdf_params *p, uint32_t opslimit,
    uint32_t mem_kib);

/* Wire form: alg u8 | opslimit u32 BE | mem_kib u32 BE | salt[16]. */
void sp_kdf_params_encode(const struct sp_kdf_params *p,
    uint8_t out[SP_KDF_PARAMSBYTES]);
/* Parses and range-checks; SP_EVERSION for an unknown alg, SP_ELIMIT for a
 * cost outside [MIN, MAX]. */
SP_WUR int sp_kdf_params_decode(const uint8_t in[SP_KDF_PARAMSBYTES],
    struct sp_kdf_params *p);

/*
 * Runs Argon2id and derives both subkeys.  On success *keys_r points to
 * sodium_malloc'd memory the caller releases with sp_login_keys_free().
 * ENOMEM from Argon2id (memlimit too large for this machine) is SP_ENOMEM.
 * Cost: one Argon2id evaluation (deliberately slow).
 */
SP_WUR int sp_kdf_derive(const char *password, size_t password_len,
    const struct sp_kdf_params *p, struct sp_login_keys **keys_r);

/* Wipes and frees; accepts NULL. */
void sp_login_keys_free(struct sp_login_keys *k);

/*
 * Signs a login challenge: sig = Ed25519(auth_sk, "sealpost-login-v1" ||
 * challenge).  The prefix keeps the auth key from ever signing bytes that
 * could mean something else.  challenge_len must be 16..256.
 */
int sp_kdf_sign_challenge(const struct sp_login_keys *k,
    const uint8_t *challenge, size_t challenge_len, uint8_t sig[64]);
/* Server side: 0 when sig is valid for auth_pk, SP_ESIG otherwise. */
SP_WUR int sp_kdf_verify_challenge(const uint8_t auth_pk[32],
    const uint8_t *challenge, size_t challenge_len, const uint8_t sig[64]);

#endif
