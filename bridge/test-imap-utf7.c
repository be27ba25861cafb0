/*
 * Modified UTF-7 (imap_utf7.h): the RFC 3501 examples, the strictness
 * rules one by one, buffer limits, and both round trips over random
 * input (every valid name decodes back to itself; everything that
 * decodes re-encodes to the very bytes it came from).
 */
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "bridge/imap_utf7.h"
#include "tests/unit.h"

static int
enc_is(const char *utf8, const char *want)
{
	char out[256];
	size_t n;

	if (imap_utf7_encode(utf8, strlen(utf8), out, sizeof(out), &n) != 0)
		return 0;
	return n == strlen(want) && strcmp(out, want) == 0;
}

static int
dec_is(const char *m, const char *want)
{
	char out[256];
	size_t n;

	if (imap_utf7_decode(m, strlen(m), out, sizeof(out), &n) != 0)
		return 0;
	return n == strlen(want) && strcmp(out, want) == 0;
}

static int
dec_rc(const char *m)
{
	char out[256];

	return imap_utf7_decode(m, strlen(m), out, sizeof(out), NULL);
}

static void
t_examples(void)
{
	/* RFC 3501 5.1.3. */
	CHECK(enc_is("~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/"
	    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
	    "~peter/mail/&U,BTFw-/&ZeVnLIqe-"));
	CHECK(dec_is("~peter/mail/&U,BTFw-/&ZeVnLIqe-",
	    "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/"
	    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"));
	CHECK(enc_is("Entw\xc3\xbcrfe", "Entw&APw-rfe"));
	CHECK(dec_is("Entw&APw-rfe", "Entw\xc3\xbcrfe"));
	CHECK(enc_is("A&B", "A&-B"));
	CHECK(dec_is("A&-B", "A&B"));
	CHECK(enc_is("INBOX", "INBOX"));
	CHECK(enc_is("", ""));
	/* Outside the BMP: a surrogate pair. */
	CHECK(enc_is("\xf0\x9f\x98\x80", "&2D3eAA-"));
	CHECK(dec_is("&2D3eAA-", "\xf0\x9f\x98\x80"));
	/* A run right before '&' and after it. */
	CHECK(enc_is("\xc3\xa4&\xc3\xa4", "&AOQ-&-&AOQ-"));
	CHECK(dec_is("&AOQ-&-&AOQ-", "\xc3\xa4&\xc3\xa4"));
	CHECK(enc_is("\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82",
	    "&BB8EQAQ4BDIENQRC-"));
}

static void
t_strict_decode(void)
{
	CHECK(dec_rc("&") == EINVAL);              /* unterminated */
	CHECK(dec_rc("&AOQ") == EINVAL);
	CHECK(dec_rc("&AGE-") == EINVAL);          /* 'a' encoded */
	CHECK(dec_rc("&ACY-") == EINVAL);          /* '&' encoded */
	CHECK(dec_rc("&AAE-") == EINVAL);          /* control */
	CHECK(dec_rc("&AOQ-&AOQ-") == EINVAL);     /* two runs back to back */
	CHECK(dec_rc("&AOR-") == EINVAL);          /* leftover bits set */
	CHECK(dec_rc("&AOQA-") == EINVAL);         /* a 6-bit leftover */
	CHECK(dec_rc("&2D0-") == EINVAL);          /* lone high surrogate */
	CHECK(dec_rc("&3gA-") == EINVAL);          /* lone low surrogate */
	CHECK(dec_rc("&AO/-") == EINVAL);          /* '/' is not modified b64 */
	CHECK(dec_rc("&=-") == EINVAL);
	CHECK(dec_rc("Entw\xc3\xbcrfe") == EINVAL); /* raw 8-bit */
	CHECK(dec_rc("a\tb") == EINVAL);
	CHECK(dec_rc("a\x7f") == EINVAL);
}

static void
t_strict_encode(void)
{
	char out[64];

#define ENC_RC(s) imap_utf7_encode(s, sizeof(s) - 1, out, sizeof(out), NULL)
	CHECK(ENC_RC("\xc0\xaf") == EINVAL);       /* overlong '/' */
	CHECK(ENC_RC("\xed\xa0\x80") == EINVAL);   /* surrogate */
	CHECK(ENC_RC("\xf4\x90\x80\x80") == EINVAL); /* > U+10FFFF */
	CHECK(ENC_RC("\xc3") == EINVAL);           /* cut short */
	CHECK(ENC_RC("\xff") == EINVAL);
	CHECK(ENC_RC("a\nb") == EINVAL);
	CHECK(ENC_RC("\xc2\x85") == EINVAL);       /* C1 control */
	CHECK(strcmp(out, "") == 0);
#undef ENC_RC
}

static void
t_limits(void)
{
	char out[8];
	size_t n = 99;

	/* "Entw&APw-rfe" needs 13 bytes with its NUL. */
	CHECK(imap_utf7_encode("Entw\xc3\xbcrfe", 9, out, sizeof(out), &n) ==
	    ENOSPC);
	CHECK(n == 0 && out[0] == 0);
	CHECK(imap_utf7_decode("Entw&APw-rfe", 12, out, 9, &n) == ENOSPC);
	CHECK(imap_utf7_decode("Entw&APw-rfe", 12, out, 8, &n) == ENOSPC);
	{
		char big[16];

		CHECK(imap_utf7_decode("Entw&APw-rfe", 12, big, 10, &n) == 0);
		CHECK(n == 9);
		CHECK(imap_utf7_encode("Entw\xc3\xbcrfe", 9, big, 13, &n) ==
		    0 && n == 12);
	}
	/* The worst case named in the header holds. */
	{
		char in[40], enc[IMAP_UTF7_ENCODED_MAX(40)];
		size_t i;

		for (i = 0; i + 3 <= sizeof(in); i += 3)
			memcpy(in + i, "a\xc3\xa4", 3);
		CHECK(imap_utf7_encode(in, i, enc, sizeof(enc), &n) == 0);
		CHECK(n <= i * 5 / 2 + 1);
	}
}

/* Random code points (ASCII, BMP, astral) as UTF-8. */
static size_t
random_name(char *buf, size_t cap)
{
	size_t len = 0, k = randombytes_uniform(12);

	while (k-- > 0 && len + 4 < cap) {
		uint32_t c, kind = randombytes_uniform(4);

		if (kind == 0)
			c = 0x20 + randombytes_uniform(0x5f);
		else if (kind == 1)
			c = 0xa0 + randombytes_uniform(0x700);
		else if (kind == 2)
			c = 0x800 + randombytes_uniform(0xd000);
		else
			c = 0x10000 + randombytes_uniform(0x100000);
		if (c >= 0xd800 && c <= 0xdfff)
			c = '&';
		if (c < 0x80) {
			buf[len++] = (char)c;
		} else if (c < 0x800) {
			buf[len++] = (char)(0xc0 | (c >> 6));
			buf[len++] = (char)(0x80 | (c & 0x3f));
		} else if (c < 0x10000) {
			buf[len++] = (char)(0xe0 | (c >> 12));
			buf[len++] = (char)(0x80 | ((c >> 6) & 0x3f));
			buf[len++] = (char)(0x80 | (c & 0x3f));
		} else {
			buf[len++] = (char)(0xf0 | (c >> 18));
			buf[len++] = (char)(0x80 | ((c >> 12) & 0x3f));
			buf[len++] = (char)(0x80 | ((c >> 6) & 0x3f));
			buf[len++] = (char)(0x80 | (c & 0x3f));
		}
	}
	buf[len] = 0;
	return len;
}

static void
t_roundtrip_random(void)
{
	char name[64], enc[IMAP_UTF7_ENCODED_MAX(64)], dec[64];
	size_t i, n, e, d;
	int bad = 0;

	for (i = 0; i < 20000 && !bad; i++) {
		n = random_name(name, sizeof(name));
		if (imap_utf7_encode(name, n, enc, sizeof(enc), &e) != 0 ||
		    imap_utf7_decode(enc, e, dec, sizeof(dec), &d) != 0 ||
		    d != n || memcmp(dec, name, n) != 0)
			bad = 1;
	}
	CHECK(!bad);
}

static void
t_decode_random_is_canonical(void)
{
	static const char alpha[] = "&-AOQPwaZ+,2D3e/ x";
	char in[24], dec[64], enc[IMAP_UTF7_ENCODED_MAX(64)];
	size_t i, j, d, e, ok = 0;
	int bad = 0;

	for (i = 0; i < 200000 && !bad; i++) {
		size_t n = randombytes_uniform(sizeof(in));

		for (j = 0; j < n; j++)
			in[j] = alpha[randombytes_uniform(sizeof(alpha) - 1)];
		if (imap_utf7_decode(in, n, dec, sizeof(dec), &d) != 0)
			continue;
		ok++;
		if (imap_utf7_encode(dec, d, enc, sizeof(enc), &e) != 0 ||
		    e != n || memcmp(enc, in, n) != 0)
			bad = 1;
	}
	CHECK(!bad);
	CHECK(ok > 1000);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	RUN(t_examples);
	RUN(t_strict_decode);
	RUN(t_strict_encode);
	RUN(t_limits);
	RUN(t_roundtrip_random);
	RUN(t_decode_random_is_canonical);
	return unit_done();
}
