/*
 * IMAP summaries (imap_summary.h): a summary renders exactly what
 * imap_fetch.c renders from the message; it survives the cache (a real
 * encrypted cache in a temp dir) byte for byte; the validity rules for
 * stored and served forms; every truncation and a flipped version or
 * flag of a stored value is refused, never read past.
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "bridge/imap_summary.h"
#include "tests/unit.h"

static const char msg_text[] =
    "From: \"Ann Example\" <ann@example.org>\r\n"
    "To: bob@example.net, Group: c@x.org, d@y.org;\r\n"
    "Subject: =?utf-8?q?caf=C3=A9?= report\r\n"
    "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
    "Message-ID: <m1@example.org>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
    "\r\n"
    "--b1\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "hello\r\nworld\r\n"
    "--b1\r\n"
    "Content-Type: application/pdf; name=a.pdf\r\n"
    "Content-Disposition: attachment; filename=a.pdf\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "JVBERi0=\r\n"
    "--b1--\r\n";

static imap_msg *
parse(const char *text)
{
	size_t n = strlen(text);
	uint8_t *d = malloc(n);
	imap_msg *m = NULL;

	memcpy(d, text, n);
	if (imap_msg_create(d, n, &m) != 0)
		return NULL;
	return m;
}

static void
t_compute_matches_fetch(void)
{
	imap_msg *m = parse(msg_text);
	struct imap_summary s;
	struct imap_out o;

	CHECK(m != NULL);
	CHECK_RC(imap_summary_compute(m, IMAP_SUMMARY_STORED, 0, &s), 0);
	CHECK(s.size == strlen(msg_text));
	imap_out_init(&o);
	imap_msg_envelope(m, &o);
	CHECK(o.len == s.envelope_len && memcmp(o.p, s.envelope, o.len) == 0);
	imap_out_reset(&o);
	imap_msg_bodystructure(m, 1, &o);
	CHECK(o.len == s.bodystructure_len &&
	    memcmp(o.p, s.bodystructure, o.len) == 0);
	CHECK(strstr(s.bodystructure, "\"MIXED\"") != NULL);
	imap_out_reset(&o);
	imap_msg_bodystructure(m, 0, &o);
	CHECK(o.len == s.body_len && memcmp(o.p, s.body, o.len) == 0);
	imap_out_finish(&o);
	/* the header block, blank line included, and nothing after */
	CHECK(s.header != NULL && s.header_len == (size_t)(strstr(msg_text,
	    "\r\n\r\n") - msg_text) + 4);
	CHECK(memcmp(s.header, msg_text, s.header_len) == 0);
	CHECK(strstr(s.envelope, "\"Ann Example\"") != NULL);
	imap_summary_finish(&s);
	imap_msg_destroy(m);
}

static void
t_long_header_not_kept(void)
{
	size_t n = IMAP_SUMMARY_HEADER_MAX + 200, i;
	char *t = malloc(n + 100);
	imap_msg *m;
	struct imap_summary s, d;
	uint8_t *v;
	size_t vlen;

	strcpy(t, "X-Long: ");
	for (i = strlen(t); i < n; i++)
		t[i] = 'a';
	strcpy(t + n, "\r\nSubject: s\r\n\r\nbody\r\n");
	m = parse(t);
	CHECK(m != NULL);
	CHECK_RC(imap_summary_compute(m, IMAP_SUMMARY_STORED, 0, &s), 0);
	CHECK(s.header == NULL && (s.what & IMAP_SUMMARY_NOHEADER));
	CHECK_RC(imap_summary_encode(&s, &v, &vlen), 0);
	CHECK_RC(imap_summary_decode(v, vlen, &d), 0);
	CHECK(d.header == NULL && (d.what & IMAP_SUMMARY_NOHEADER));
	CHECK(d.size == s.size);
	imap_summary_finish(&d);
	free(v);
	imap_summary_finish(&s);
	imap_msg_destroy(m);
	free(t);
}

static void
t_valid(void)
{
	struct imap_summary s = { 0 };

	s.what = IMAP_SUMMARY_STORED;
	CHECK(imap_summary_valid(&s, 1, 5));
	CHECK(!imap_summary_valid(&s, 0, 5)); /* served form not known */
	s.what = IMAP_SUMMARY_STORED | IMAP_SUMMARY_SERVED;
	CHECK(imap_summary_valid(&s, 1, 5));
	CHECK(imap_summary_valid(&s, 0, 5));  /* no OpenPGP: any pins */
	CHECK(imap_summary_valid(&s, 0, 6));
	s.what = IMAP_SUMMARY_SERVED;
	s.gen = 5;
	CHECK(!imap_summary_valid(&s, 1, 5)); /* passthrough: the stored */
	CHECK(imap_summary_valid(&s, 0, 5));
	CHECK(!imap_summary_valid(&s, 0, 6)); /* pins changed: again */
}

static void
t_decode_refuses_damage(void)
{
	imap_msg *m = parse(msg_text);
	struct imap_summary s, d;
	uint8_t *v;
	size_t vlen, i;

	CHECK_RC(imap_summary_compute(m, IMAP_SUMMARY_SERVED, 7, &s), 0);
	CHECK_RC(imap_summary_encode(&s, &v, &vlen), 0);
	CHECK_RC(imap_summary_decode(v, vlen, &d), 0);
	CHECK(d.what == s.what && d.gen == 7 && d.size == s.size);
	CHECK(d.envelope_len == s.envelope_len &&
	    memcmp(d.envelope, s.envelope, s.envelope_len) == 0);
	CHECK(d.bodystructure_len == s.bodystructure_len &&
	    memcmp(d.bodystructure, s.bodystructure,
	    s.bodystructure_len) == 0);
	CHECK(d.body_len == s.body_len &&
	    memcmp(d.body, s.body, s.body_len) == 0);
	CHECK(d.header_len == s.header_len &&
	    memcmp(d.header, s.header, s.header_len) == 0);
	imap_summary_finish(&d);
	for (i = 0; i < vlen; i++)
		CHECK(imap_summary_decode(v, i, &d) != 0);
	v[0] = 2;
	CHECK_RC(imap_summary_decode(v, vlen, &d), SP_EVERSION);
	v[0] = IMAP_SUMMARY_VERSION;
	v[1] |= 0x80;
	CHECK_RC(imap_summary_decode(v, vlen, &d), SP_EFORMAT);
	v[1] &= 0x7f;
	v[18] = 0x7f;           /* the envelope's length, past the end */
	CHECK_RC(imap_summary_decode(v, vlen, &d), SP_EFORMAT);
	free(v);
	imap_summary_finish(&s);
	imap_msg_destroy(m);
}

static void
t_cache_roundtrip(void)
{
	char dir[] = "/tmp/sp-test-summary-XXXXXX", cmd[128];
	uint8_t key[SP_CACHE_KEYBYTES];
	sp_cache *c = NULL;
	imap_msg *m = parse(msg_text);
	struct imap_summary s, d;

	CHECK(mkdtemp(dir) != NULL);
	randombytes_buf(key, sizeof(key));
	CHECK_RC(sp_cache_open(dir, key, NULL, &c), 0);
	CHECK_RC(imap_summary_compute(m, IMAP_SUMMARY_STORED |
	    IMAP_SUMMARY_SERVED, 0, &s), 0);
	CHECK_RC(imap_summary_get(c, 42, &d), ENOENT);
	CHECK_RC(imap_summary_put(c, 42, &s), 0);
	CHECK_RC(imap_summary_get(c, 42, &d), 0);
	CHECK(d.bodystructure_len == s.bodystructure_len &&
	    memcmp(d.bodystructure, s.bodystructure,
	    s.bodystructure_len) == 0);
	CHECK(d.size == s.size && d.what == s.what);
	imap_summary_finish(&d);
	CHECK_RC(imap_summary_get(c, 43, &d), ENOENT);
	CHECK_RC(imap_summary_del(c, 42), 0);
	CHECK_RC(imap_summary_get(c, 42, &d), ENOENT);
	sp_cache_close(c);
	imap_summary_finish(&s);
	imap_msg_destroy(m);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	RUN(t_compute_matches_fetch);
	RUN(t_long_header_not_kept);
	RUN(t_valid);
	RUN(t_decode_refuses_damage);
	RUN(t_cache_roundtrip);
	return unit_done();
}
