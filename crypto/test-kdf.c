#include <sodium.h>

#include "crypto/kdf.h"
#include "tests/unit.h"

/* Tests use the cheapest accepted cost; the format is the same. */
#define OPS 1
#define MEM 8

static void
t_params_roundtrip(void)
{
	struct sp_kdf_params p, q;
	uint8_t w[SP_KDF_PARAMSBYTES];

	CHECK_RC(sp_kdf_params_new(&p, 0, 0), 0);
	CHECK(p.opslimit == SP_KDF_OPS_DEFAULT && p.mem_kib == SP_KDF_MEM_KIB_DEFAULT);
	sp_kdf_params_encode(&p, w);
	CHECK_RC(sp_kdf_params_decode(w, &q), 0);
	CHECK(memcmp(&p.salt, &q.salt, 16) == 0 && q.opslimit == 3);
	CHECK_RC(sp_kdf_params_new(&q, 0, 0), 0);
	CHECK(memcmp(p.salt, q.salt, 16) != 0); /* fresh salt each time */
	w[0] = 2;
	CHECK_RC(sp_kdf_params_decode(w, &q), SP_EVERSION);
	w[0] = 1;
	w[5] = w[6] = w[7] = w[8] = 0; /* memory 0 KiB: below the floor */
	CHECK_RC(sp_kdf_params_decode(w, &q), SP_ELIMIT);
	w[5] = 0xff; /* ~4 TiB: above the ceiling */
	CHECK_RC(sp_kdf_params_decode(w, &q), SP_ELIMIT);
	CHECK_RC(sp_kdf_params_new(&q, 1000, 0), SP_EINVAL);
}

static void
t_derive(void)
{
	struct sp_kdf_params p, p2;
	struct sp_login_keys *a, *b, *c, *d;
	uint8_t chal[32], sig[64];

	CHECK_RC(sp_kdf_params_new(&p, OPS, MEM), 0);
	CHECK_RC(sp_kdf_derive("hunter2", 7, &p, &a), 0);
	CHECK_RC(sp_kdf_derive("hunter2", 7, &p, &b), 0);
	CHECK_RC(sp_kdf_derive("hunter3", 7, &p, &c), 0);
	p2 = p;
	p2.salt[0] ^= 1;
	CHECK_RC(sp_kdf_derive("hunter2", 7, &p2, &d), 0);
	/* Deterministic for one password and salt, different otherwise. */
	CHECK(sodium_memcmp(a->vault_key, b->vault_key, 32) == 0);
	CHECK(memcmp(a->auth_pk, b->auth_pk, 32) == 0);
	CHECK(sodium_memcmp(a->vault_key, c->vault_key, 32) != 0);
	CHECK(sodium_memcmp(a->vault_key, d->vault_key, 32) != 0);
	/* The two subkeys are independent. */
	CHECK(memcmp(a->vault_key, a->auth_sk, 32) != 0);

	randombytes_buf(chal, sizeof(chal));
	CHECK_RC(sp_kdf_sign_challenge(a, chal, sizeof(chal), sig), 0);
	CHECK_RC(sp_kdf_verify_challenge(a->auth_pk, chal, sizeof(chal), sig), 0);
	CHECK_RC(sp_kdf_verify_challenge(c->auth_pk, chal, sizeof(chal), sig),
	    SP_ESIG);
	chal[0] ^= 1;
	CHECK_RC(sp_kdf_verify_challenge(a->auth_pk, chal, sizeof(chal), sig),
	    SP_ESIG);
	CHECK_RC(sp_kdf_sign_challenge(a, chal, 8, sig), SP_EINVAL);
	/* A plain Ed25519 signature over the challenge (no context) must not
	 * count: the auth key signs only login challenges. */
	crypto_sign_detached(sig, NULL, chal, sizeof(chal), a->auth_sk);
	CHECK_RC(sp_kdf_verify_challenge(a->auth_pk, chal, sizeof(chal), sig),
	    SP_ESIG);
	sp_login_keys_free(a);
	sp_login_keys_free(b);
	sp_login_keys_free(c);
	sp_login_keys_free(d);
	sp_login_keys_free(NULL);
}

static void
t_bad_params(void)
{
	struct sp_kdf_params p = { .alg = 9, .opslimit = 1, .mem_kib = 8 };
	struct sp_login_keys *k = (struct sp_login_keys *)1;

	CHECK_RC(sp_kdf_derive("x", 1, &p, &k), SP_EVERSION);
	CHECK(k == NULL);
	p.alg = SP_KDF_ALG_ARGON2ID13;
	p.mem_kib = 1;
	CHECK_RC(sp_kdf_derive("x", 1, &p, &k), SP_ELIMIT);
}

int
main(void)
{
	RUN(t_params_roundtrip);
	RUN(t_derive);
	RUN(t_bad_params);
	return unit_done();
}
