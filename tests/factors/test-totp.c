/*
 * Unit tests of server/sync/sync_verify.c: TOTP against the RFC 6238
 * appendix B vectors (SHA-1), and the COSE and clientDataJSON readers on
 * hostile inputs.
 */
#include <string.h>

#include "server/sync/sync_verify.h"
#include "tests/unit.h"

static void
t_rfc6238(void)
{
	static const struct { uint64_t t; uint32_t code; } v[] = {
		{ 59, 94287082 }, { 1111111109, 7081804 },
		{ 1111111111, 14050471 }, { 1234567890, 89005924 },
		{ 2000000000, 69279037 }, { 20000000000ull, 65353130 },
	};
	const uint8_t *key = (const uint8_t *)"12345678901234567890";
	uint32_t code;
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		CHECK_RC(sp_totp(key, 20, v[i].t / 30, 8, &code), 0);
		CHECK(code == v[i].code);
		/* Six digits are the last six of eight. */
		CHECK_RC(sp_totp(key, 20, v[i].t / 30, 6, &code), 0);
		CHECK(code == v[i].code % 1000000);
	}
	CHECK(sp_totp(key, 20, 1, 5, &code) != 0);
	CHECK(sp_totp(key, 0, 1, 6, &code) != 0);
}

static void
t_cose(void)
{
	/* {1: 1, 3: -8, -1: 6, -2: h'00..'} : an Ed25519 key */
	uint8_t ed[64] = { 0xa4, 0x01, 0x01, 0x03, 0x27, 0x20, 0x06, 0x21,
	    0x58, 0x20 };
	struct sp_cose_key k;

	CHECK_RC(sp_cose_parse(ed, 42, &k), 0);
	CHECK(k.alg == SP_COSE_EDDSA && k.pk_len == 32);
	CHECK(sp_cose_parse(ed, 41, &k) != 0);      /* truncated */
	CHECK(sp_cose_parse(ed, 43, &k) != 0);      /* trailing byte */
	ed[4] = 0x26;                               /* alg -7 with OKP */
	CHECK(sp_cose_parse(ed, 42, &k) != 0);
	ed[4] = 0x27;
	ed[0] = 0xbf;                               /* indefinite map */
	CHECK(sp_cose_parse(ed, 42, &k) != 0);
}

static void
t_client_data(void)
{
	static const char *bad[] = {
		"", "{", "[]", "{\"type\":\"webauthn.get\"}",
		"{\"type\":\"webauthn.get\",\"type\":\"webauthn.get\","
		    "\"challenge\":\"x\",\"origin\":\"https://a\"}",
		"{\"type\":\"webauthn.get\",\"challenge\":\"x\",\"origin\":"
		    "\"https://a\",\"x\":{}}",
		"{\"type\":\"webauthn.get\",\"challenge\":\"x\",\"origin\":"
		    "\"https://a\"} x",
	};
	struct sp_cose_key k = { .alg = SP_COSE_EDDSA, .pk_len = 32 };
	uint8_t chal[32] = { 0 }, ad[37] = { 0 }, sig[64] = { 0 };
	uint32_t ctr;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(sp_fido_verify(&k, "example.org", chal, ad, sizeof(ad),
		    (const uint8_t *)bad[i], strlen(bad[i]), sig, sizeof(sig),
		    &ctr) == SP_FIDO_EFORMAT || bad[i][0] == 0);
	{
		const char *cd = "{\"type\":\"webauthn.create\",\"challenge\":"
		    "\"x\",\"origin\":\"https://example.org\"}";

		CHECK(sp_fido_verify(&k, "example.org", chal, ad, sizeof(ad),
		    (const uint8_t *)cd, strlen(cd), sig, sizeof(sig),
		    &ctr) == SP_FIDO_ETYPE);
	}
}

int
main(void)
{
	RUN(t_rfc6238);
	RUN(t_cose);
	RUN(t_client_data);
	return unit_done();
}
