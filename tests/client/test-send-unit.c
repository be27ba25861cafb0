/*
 * The parts of client-core/send.c and keys.c that need no server: Bcc
 * removal (every header form GMime would read as Bcc goes, nothing else
 * changes) and address extraction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client-core/keys.h"
#include "client-core/send.h"
#include "proto/summary.h"
#include "tests/unit.h"

/* Strips in, compares with want and the number of fields removed; and
 * asks GMime (the summary) whether any Bcc is left. */
static void
strip_case(const char *in, const char *want, size_t want_removed)
{
	struct sp_meta m;
	uint8_t *out = NULL;
	size_t len = 0, removed = 99;

	CHECK_RC(sp_send_strip_bcc((const uint8_t *)in, strlen(in), &out,
	    &len, &removed), 0);
	CHECK(removed == want_removed);
	CHECK(len == strlen(want) && memcmp(out, want, len) == 0);
	if (len != strlen(want) || memcmp(out, want, len) != 0)
		fprintf(stderr, "# got [%.*s]\n", (int)len, (const char *)out);
	if (sp_summary_from_message(out, len, &m) == 0) {
		CHECK(m.bcc == NULL);
		sp_meta_finish(&m);
	}
	free(out);
}

static void
t_strip_simple(void)
{
	strip_case("From: a@x.org\r\nBcc: b@x.org\r\nTo: c@x.org\r\n\r\nbody\r\n",
	    "From: a@x.org\r\nTo: c@x.org\r\n\r\nbody\r\n", 1);
	strip_case("From: a@x.org\nBcc: b@x.org\nTo: c@x.org\n\nbody\n",
	    "From: a@x.org\nTo: c@x.org\n\nbody\n", 1);
	/* nothing to strip: byte for byte the same */
	strip_case("From: a@x.org\r\n\r\nBcc: in the body stays\r\n",
	    "From: a@x.org\r\n\r\nBcc: in the body stays\r\n", 0);
}

static void
t_strip_forms(void)
{
	/* case, obsolete white space before the colon, folding */
	strip_case("BCC: b@x.org\r\nSubject: s\r\n\r\n",
	    "Subject: s\r\n\r\n", 1);
	strip_case("bcc \t: b@x.org\r\nSubject: s\r\n\r\n",
	    "Subject: s\r\n\r\n", 1);
	strip_case("Bcc: b@x.org,\r\n c@x.org,\r\n\td@x.org\r\nTo: e@x.org\r\n"
	    "\r\nx", "To: e@x.org\r\n\r\nx", 1);
	/* several Bcc fields, first and last */
	strip_case("Bcc: a@x.org\r\nTo: t@x.org\r\nBcc: b@x.org\r\n\r\n",
	    "To: t@x.org\r\n\r\n", 2);
	/* an empty Bcc (RFC 5322 allows it) */
	strip_case("To: t@x.org\r\nBcc:\r\n\r\nb", "To: t@x.org\r\n\r\nb", 1);
	/* headers only, no blank line, no final newline */
	strip_case("To: t@x.org\r\nBcc: b@x.org", "To: t@x.org\r\n", 1);
}

static void
t_strip_not_bcc(void)
{
	/* other fields that start with the same letters stay */
	strip_case("Bccx: 1\r\nBc: 2\r\nResent-Bcc: 3\r\nX-Bcc: 4\r\n\r\n",
	    "Bccx: 1\r\nBc: 2\r\nResent-Bcc: 3\r\nX-Bcc: 4\r\n\r\n", 0);
	/* a continuation line that looks like Bcc belongs to its field */
	strip_case("Subject: a\r\n Bcc: b@x.org\r\n\r\n",
	    "Subject: a\r\n Bcc: b@x.org\r\n\r\n", 0);
	strip_case("", "", 0);
}

static void
t_strip_every_prefix(void)
{
	/* Every cut of a message strips without reading past its end
	 * (ASan builds see it) and keeps the subsequence property. */
	static const char msg[] = "From: a@x.org\r\nBcc: b@x.org,\r\n c@x.org"
	    "\r\nTo: t@x.org\r\n\r\nbody\r\n";
	size_t cut;

	for (cut = 0; cut <= sizeof(msg) - 1; cut++) {
		uint8_t *in = malloc(cut ? cut : 1), *out = NULL;
		size_t len = 0;

		memcpy(in, msg, cut);
		CHECK_RC(sp_send_strip_bcc(in, cut, &out, &len, NULL), 0);
		CHECK(len <= cut);
		free(out);
		free(in);
	}
}

static void
t_address(void)
{
	char out[SP_KEYS_ADDR_BYTES];

	CHECK_RC(sp_keys_address("=?utf-8?q?Gr=C3=BC=C3=9Fe?= <A@X.org>",
	    out), 0);
	CHECK(strcmp(out, "a@x.org") == 0);
	CHECK_RC(sp_keys_address("a@x.org (comment)", out), 0);
	CHECK(strcmp(out, "a@x.org") == 0);
	CHECK_RC(sp_keys_address("<>", out), SP_EINVAL);
	CHECK_RC(sp_keys_address("a b@x.org", out), SP_EINVAL);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	RUN(t_strip_simple);
	RUN(t_strip_forms);
	RUN(t_strip_not_bcc);
	RUN(t_strip_every_prefix);
	RUN(t_address);
	return unit_done();
}
