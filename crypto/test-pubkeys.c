#include "crypto/pubkeys.h"
#include "tests/unit.h"

static void
t_roundtrip_and_tamper(void)
{
	sp_keyset *ks, *other;
	struct sp_pubkeys p;
	uint8_t *b, pgp[300];
	size_t len, i, accepted = 0;
	int bit;

	memset(pgp, 0x99, sizeof(pgp));
	CHECK_RC(sp_keyset_generate(&ks), 0);
	CHECK_RC(sp_keyset_generate(&other), 0);
	CHECK_RC(sp_pubkeys_sign(ks, "Ann@Example.org", 1764460800, pgp,
	    sizeof(pgp), &b, &len), 0);
	CHECK_RC(sp_pubkeys_parse(b, len, &p), 0);
	CHECK(strcmp(p.address, "ann@example.org") == 0);
	CHECK(memcmp(p.identity_pk, sp_keyset_identity_pk(ks), 32) == 0);
	CHECK(memcmp(p.encryption_pk, sp_keyset_encryption_pk(ks), 32) == 0);
	CHECK(p.created == 1764460800 && p.pgp_len == sizeof(pgp) &&
	    memcmp(p.pgp, pgp, sizeof(pgp)) == 0);
	/* Any change anywhere, including swapping in another identity key
	 * (the server's favourite trick), breaks the signature. */
	for (i = 0; i < len; i++)
		for (bit = 0; bit < 8; bit++) {
			b[i] ^= (uint8_t)(1 << bit);
			if (sp_pubkeys_parse(b, len, &p) == 0)
				accepted++;
			b[i] ^= (uint8_t)(1 << bit);
		}
	CHECK(accepted == 0);
	memcpy(b + 2 + 15, sp_keyset_identity_pk(other), 32);
	CHECK_RC(sp_pubkeys_parse(b, len, &p), SP_ESIG);
	for (i = 0; i < len; i++)
		if (sp_pubkeys_parse(b, i, &p) == 0)
			accepted++;
	CHECK(accepted == 0);
	free(b);
	CHECK_RC(sp_pubkeys_sign(ks, "no-at-sign", 0, NULL, 0, &b, &len),
	    SP_EINVAL);
	CHECK_RC(sp_pubkeys_sign(ks, "a@b", 0, pgp, SP_PUBKEYS_PGP_MAX + 1, &b,
	    &len), SP_EINVAL);
	CHECK_RC(sp_pubkeys_sign(ks, "bob@example.org", 0, NULL, 0, &b, &len), 0);
	CHECK_RC(sp_pubkeys_parse(b, len, &p), 0);
	CHECK(p.pgp == NULL && p.pgp_len == 0);
	b[0] = 2;
	CHECK_RC(sp_pubkeys_parse(b, len, &p), SP_EVERSION);
	free(b);
	sp_keyset_destroy(ks);
	sp_keyset_destroy(other);
}

int
main(void)
{
	RUN(t_roundtrip_and_tamper);
	return unit_done();
}
