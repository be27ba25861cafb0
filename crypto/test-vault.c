#include <sodium.h>

#include "crypto/recovery.h"
#include "crypto/vault.h"
#include "tests/unit.h"

static struct sp_kdf_params pw;
static struct sp_login_keys *lk, *lk2;
static uint8_t rkey[32];
static sp_keyset *ks;

static int
same_keyset(const sp_keyset *a, const sp_keyset *b)
{
	uint8_t *sa, *sb;
	size_t la, lb;
	int same;

	if (sp_keyset_serialize(a, &sa, &la) || sp_keyset_serialize(b, &sb, &lb))
		return 0;
	same = la == lb && sodium_memcmp(sa, sb, la) == 0;
	sodium_free(sa);
	sodium_free(sb);
	return same;
}

static void
t_seal_open(void)
{
	uint8_t *v;
	size_t len;
	sp_keyset *o;
	struct sp_kdf_params got;

	CHECK_RC(sp_vault_seal(ks, lk->vault_key, &pw, rkey, &v, &len), 0);
	CHECK_RC(sp_vault_open(v, len, SP_VAULT_SLOT_PASSWORD, lk->vault_key,
	    &o), 0);
	CHECK(o && same_keyset(ks, o));
	sp_keyset_destroy(o);
	CHECK_RC(sp_vault_open(v, len, SP_VAULT_SLOT_RECOVERY, rkey, &o), 0);
	CHECK(o && same_keyset(ks, o));
	sp_keyset_destroy(o);
	CHECK_RC(sp_vault_params(v, len, &got), 0);
	CHECK(memcmp(got.salt, pw.salt, 16) == 0 && got.mem_kib == pw.mem_kib);
	/* Wrong keys. */
	CHECK_RC(sp_vault_open(v, len, SP_VAULT_SLOT_PASSWORD, lk2->vault_key,
	    &o), SP_EAUTH);
	CHECK(o == NULL);
	CHECK_RC(sp_vault_open(v, len, SP_VAULT_SLOT_RECOVERY, lk->vault_key,
	    &o), SP_EAUTH);
	free(v);
	/* Without a recovery slot. */
	CHECK_RC(sp_vault_seal(ks, lk->vault_key, &pw, NULL, &v, &len), 0);
	CHECK_RC(sp_vault_open(v, len, SP_VAULT_SLOT_RECOVERY, rkey, &o),
	    SP_ENOKEY);
	free(v);
}

static void
t_password_change_rewraps_only(void)
{
	uint8_t *v, *v2, *v3;
	size_t len, len2, len3, body;
	sp_keyset *o;
	struct sp_kdf_params pw2;

	CHECK_RC(sp_kdf_params_new(&pw2, 2, 16), 0);
	CHECK_RC(sp_vault_seal(ks, lk->vault_key, &pw, rkey, &v, &len), 0);
	CHECK_RC(sp_vault_rewrap(v, len, SP_VAULT_SLOT_PASSWORD, lk->vault_key,
	    lk2->vault_key, &pw2, &v2, &len2), 0);
	CHECK(len2 == len);
	/* Recovery slot and encrypted key set are carried byte for byte. */
	body = 3 + 98;
	CHECK(memcmp(v + body, v2 + body, len - body - 32) == 0);
	CHECK(memcmp(v + 3, v2 + 3, 98) != 0);
	CHECK_RC(sp_vault_open(v2, len2, SP_VAULT_SLOT_PASSWORD, lk->vault_key,
	    &o), SP_EAUTH);
	CHECK_RC(sp_vault_open(v2, len2, SP_VAULT_SLOT_PASSWORD,
	    lk2->vault_key, &o), 0);
	CHECK(o && same_keyset(ks, o));
	sp_keyset_destroy(o);
	CHECK_RC(sp_vault_open(v2, len2, SP_VAULT_SLOT_RECOVERY, rkey, &o), 0);
	sp_keyset_destroy(o);
	/* Forgotten password: the recovery key sets a new one. */
	CHECK_RC(sp_vault_rewrap(v2, len2, SP_VAULT_SLOT_RECOVERY, rkey,
	    lk->vault_key, &pw, &v3, &len3), 0);
	CHECK_RC(sp_vault_open(v3, len3, SP_VAULT_SLOT_PASSWORD, lk->vault_key,
	    &o), 0);
	sp_keyset_destroy(o);
	/* A wrong old key re-wraps nothing. */
	free(v3);
	CHECK_RC(sp_vault_rewrap(v2, len2, SP_VAULT_SLOT_PASSWORD, lk->vault_key,
	    lk->vault_key, &pw, &v3, &len3), SP_EAUTH);
	CHECK(v3 == NULL);
	free(v);
	free(v2);
}

static void
t_every_bit_flip_and_truncation(void)
{
	uint8_t *v;
	size_t len, i, accepted = 0;
	sp_keyset *o;
	int b;

	CHECK_RC(sp_vault_seal(ks, lk->vault_key, &pw, rkey, &v, &len), 0);
	for (i = 0; i < len; i++) {
		for (b = 0; b < 8; b++) {
			v[i] ^= (uint8_t)(1u << b);
			if (sp_vault_open(v, len, SP_VAULT_SLOT_PASSWORD,
			    lk->vault_key, &o) == 0) {
				accepted++;
				sp_keyset_destroy(o);
			}
			if (sp_vault_open(v, len, SP_VAULT_SLOT_RECOVERY,
			    rkey, &o) == 0) {
				accepted++;
				sp_keyset_destroy(o);
			}
			v[i] ^= (uint8_t)(1u << b);
		}
	}
	for (i = 0; i < len; i++)
		if (sp_vault_open(v, i, SP_VAULT_SLOT_PASSWORD, lk->vault_key,
		    &o) == 0)
			accepted++;
	CHECK(accepted == 0);
	v[0] = 9;
	CHECK_RC(sp_vault_open(v, len, SP_VAULT_SLOT_PASSWORD, lk->vault_key,
	    &o), SP_EVERSION);
	free(v);
}

static void
t_pgp_in_keyset(void)
{
	uint8_t *v, big[100];
	size_t len, pl;
	sp_keyset *o;
	const uint8_t *p;

	memset(big, 0x42, sizeof(big));
	CHECK_RC(sp_keyset_set_pgp(ks, big, sizeof(big)), 0);
	CHECK_RC(sp_vault_seal(ks, lk->vault_key, &pw, rkey, &v, &len), 0);
	CHECK_RC(sp_vault_open(v, len, SP_VAULT_SLOT_PASSWORD, lk->vault_key,
	    &o), 0);
	p = sp_keyset_pgp(o, &pl);
	CHECK(pl == sizeof(big) && p && memcmp(p, big, pl) == 0);
	sp_keyset_destroy(o);
	free(v);
	CHECK_RC(sp_keyset_set_pgp(ks, big, SP_KEYSET_PGP_MAX + 1), SP_ELIMIT);
	CHECK_RC(sp_keyset_set_pgp(ks, NULL, 0), 0);
}

static void
t_keyset_parse(void)
{
	uint8_t *s;
	size_t len;
	sp_keyset *o;

	CHECK_RC(sp_keyset_serialize(ks, &s, &len), 0);
	CHECK_RC(sp_keyset_parse(s, len - 1, &o), SP_ETRUNC);
	CHECK_RC(sp_keyset_parse(s, 0, &o), SP_ETRUNC);
	s[100] = 1; /* claims a 1-byte PGP key that is not there */
	CHECK_RC(sp_keyset_parse(s, len, &o), SP_ETRUNC);
	s[97] = 0xff;
	CHECK_RC(sp_keyset_parse(s, len, &o), SP_ELIMIT);
	s[0] = 2;
	CHECK_RC(sp_keyset_parse(s, len, &o), SP_EVERSION);
	sodium_free(s);
}

int
main(void)
{
	if (sp_kdf_params_new(&pw, 1, 8) || sp_kdf_derive("pw1", 3, &pw, &lk) ||
	    sp_kdf_derive("pw2", 3, &pw, &lk2) || sp_recovery_generate(rkey) ||
	    sp_keyset_generate(&ks))
		return 99;
	RUN(t_seal_open);
	RUN(t_password_change_rewraps_only);
	RUN(t_every_bit_flip_and_truncation);
	RUN(t_pgp_in_keyset);
	RUN(t_keyset_parse);
	sp_keyset_destroy(ks);
	sp_login_keys_free(lk);
	sp_login_keys_free(lk2);
	return unit_done();
}
