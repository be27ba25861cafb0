/*
 * client-core/factors.c without a server: the security-event reader
 * (format.md 12.5) against every truncation and damage, the otpauth://
 * URI of the RFC 6238 test secret, and the QR code read back from its
 * half blocks.  The end-to-end part is test-client.py.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client-core/factors.h"
#include "tests/unit.h"

static size_t
event(uint8_t *b, unsigned type, uint64_t t, const char *detail)
{
	size_t n = strlen(detail), i;

	b[0] = 1;
	b[1] = 64;
	b[2] = (uint8_t)type;
	for (i = 0; i < 8; i++)
		b[3 + i] = (uint8_t)(t >> (56 - 8 * i));
	b[11] = (uint8_t)n;
	memcpy(b + 12, detail, n);
	return 12 + n;
}

static void
t_event_parse(void)
{
	struct sp_security_event e;
	uint8_t b[300];
	char long_detail[202];
	size_t n = event(b, 1, 1700000000, "laptop"), i;

	CHECK_RC(sp_event_parse(b, n, &e), 0);
	CHECK(e.type == 1 && e.time == 1700000000);
	CHECK(strcmp(e.detail, "laptop") == 0);
	/* Every truncation and every extension is refused. */
	for (i = 0; i < n; i++)
		CHECK_RC(sp_event_parse(b, i, &e), SP_EFORMAT);
	b[n] = 'x';
	CHECK_RC(sp_event_parse(b, n + 1, &e), SP_EFORMAT);
	/* Another version, or a change record (op 1..8), is not an event. */
	b[0] = 2;
	CHECK_RC(sp_event_parse(b, n, &e), SP_EFORMAT);
	b[0] = 1;
	b[1] = 1;
	CHECK_RC(sp_event_parse(b, n, &e), SP_EFORMAT);
	b[1] = 64;
	/* A detail with control bytes would reach a terminal: refused. */
	b[12] = 0x1b;
	CHECK_RC(sp_event_parse(b, n, &e), SP_EFORMAT);
	b[12] = 0;
	CHECK_RC(sp_event_parse(b, n, &e), SP_EFORMAT);
	/* 200 bytes of detail is the most. */
	memset(long_detail, 'a', 200);
	long_detail[200] = 0;
	n = event(b, 7, 1, long_detail);
	CHECK_RC(sp_event_parse(b, n, &e), 0);
	CHECK(strlen(e.detail) == 200);
	long_detail[200] = 'a';
	long_detail[201] = 0;
	n = event(b, 7, 1, long_detail);
	CHECK_RC(sp_event_parse(b, n, &e), SP_EFORMAT);
	/* Unknown types parse and are named unknown. */
	n = event(b, 99, 5, "");
	CHECK_RC(sp_event_parse(b, n, &e), 0);
	CHECK(strcmp(sp_event_name(e.type), "unknown") == 0);
	CHECK(strcmp(sp_event_name(2), "factor added") == 0);
}

static void
t_totp_uri(void)
{
	/* RFC 6238 appendix B's SHA-1 secret. */
	static const uint8_t sec[] = "12345678901234567890";
	char uri[SP_FACTORS_URI_MAX];

	CHECK_RC(sp_factors_totp_uri(sec, 20, "sealpost", "a+b@example.org",
	    uri, sizeof(uri)), 0);
	CHECK(strcmp(uri, "otpauth://totp/sealpost:a%2Bb%40example.org?"
	    "secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=sealpost"
	    "&algorithm=SHA1&digits=6&period=30") == 0);
	CHECK_RC(sp_factors_totp_uri(sec, 20, "sealpost", "a@example.org",
	    uri, 40), SP_ERANGE);
	/* 21 bytes: base32 with a partial last group */
	CHECK_RC(sp_factors_totp_uri((const uint8_t *)"123456789012345678901",
	    21, "x", "y", uri, sizeof(uri)), 0);
	CHECK(strstr(uri, "secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGE&") !=
	    NULL);
}

/* Module (x, y) of the half-block drawing, margin included. */
static int
module(const char *qr, int x, int y)
{
	const char *line = qr;
	int i;
	unsigned char b;

	for (i = 0; i < y / 2; i++)
		line = strchr(line, '\n') + 1;
	for (i = 0; i < x; i++)
		line += *line == ' ' ? 1 : 3;
	if (*line == ' ')
		return 0;
	b = (unsigned char)line[2];
	return b == 0x88 ? 1 : b == 0x80 ? (y % 2 == 0) : (y % 2 == 1);
}

static void
t_qr(void)
{
	char *qr = NULL;
	int size = 0, x, y, ring, bad = 0, lines = 0;
	const char *p;

	CHECK_RC(sp_factors_qr("otpauth://totp/x:y?secret=AAAA", &qr, &size),
	    0);
	CHECK(size >= 21 && (size - 21) % 4 == 0);
	for (p = qr; *p; p++)
		lines += *p == '\n';
	CHECK(lines == (size + 8 + 1) / 2);
	/* the three finder patterns, 4 modules in */
	for (y = 0; y < 7; y++)
		for (x = 0; x < 7; x++) {
			ring = abs(x - 3) > abs(y - 3) ? abs(x - 3) :
			    abs(y - 3);
			bad += module(qr, 4 + x, 4 + y) != (ring != 2);
			bad += module(qr, 4 + size - 7 + x, 4 + y) !=
			    (ring != 2);
			bad += module(qr, 4 + x, 4 + size - 7 + y) !=
			    (ring != 2);
		}
	CHECK(bad == 0);
	/* the quiet zone is light, and the fourth corner has no finder */
	for (x = 0; x < size + 8; x++)
		CHECK(module(qr, x, 0) == 0 && module(qr, x, 3) == 0);
	sodium_free(qr);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	RUN(t_event_parse);
	RUN(t_totp_uri);
	RUN(t_qr);
	return unit_done();
}
