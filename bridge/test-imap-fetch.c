/*
 * FETCH items from message bytes: exact BODYSTRUCTURE, ENVELOPE and
 * sections for a known message, and for every message of the MIME corpora
 * in ../shared/testdata/mime: BODYSTRUCTURE, BODY and ENVELOPE are well
 * formed IMAP, BODY[] is byte-identical, every part's sections resolve.
 */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/imap_fetch.h"
#include "tests/unit.h"

/* One IMAP value at *p (list, string, literal, atom); 0 or -1. */
static int
skip_value(const char *s, size_t len, size_t *p, int depth)
{
	size_t i = *p;

	if (i >= len || depth > 100)
		return -1;
	if (s[i] == '(') {
		i++;
		if (i < len && s[i] == ')') {
			*p = i + 1;
			return 0;
		}
		for (;;) {
			if (skip_value(s, len, &i, depth + 1) != 0)
				return -1;
			if (i < len && s[i] == ')') {
				*p = i + 1;
				return 0;
			}
			/* Lists of lists (bodies, addresses) have no
			 * space between their elements. */
			if (i < len && s[i] == '(' && s[i - 1] == ')')
				continue;
			if (i >= len || s[i] != ' ')
				return -1;
			i++;
		}
	}
	if (s[i] == '"') {
		for (i++; i < len && s[i] != '"'; i++) {
			if (s[i] == '\\')
				i++;
			if (s[i] == '\r' || s[i] == '\n')
				return -1;
		}
		if (i >= len)
			return -1;
		*p = i + 1;
		return 0;
	}
	if (s[i] == '{' || (s[i] == '~' && i + 1 < len && s[i + 1] == '{')) {
		size_t n = 0;

		i += s[i] == '~' ? 2 : 1;
		while (i < len && s[i] >= '0' && s[i] <= '9')
			n = n * 10 + (size_t)(s[i++] - '0');
		if (i + 3 > len || s[i] != '}' || s[i + 1] != '\r' ||
		    s[i + 2] != '\n' || i + 3 + n > len)
			return -1;
		*p = i + 3 + n;
		return 0;
	}
	{
		size_t st = i;

		while (i < len && s[i] != ' ' && s[i] != ')' && s[i] != '(' &&
		    s[i] != '"')
			i++;
		if (i == st)
			return -1;
		*p = i;
		return 0;
	}
}

static int
well_formed_list(const struct imap_out *o)
{
	size_t p = 0;

	return o->len > 0 && o->p[0] == '(' &&
	    skip_value(o->p, o->len, &p, 0) == 0 && p == o->len;
}

static imap_msg *
msg_from(const char *s)
{
	size_t n = strlen(s);
	uint8_t *d = malloc(n + 1);
	imap_msg *m = NULL;

	memcpy(d, s, n);
	if (imap_msg_create(d, n, &m) != 0)
		return NULL;
	return m;
}

static void
section(imap_msg *m, const char *spec, struct imap_out *o)
{
	struct imap_command *cmd;
	struct imap_fetch_atts f;
	const char *tag, *err;
	imap_parser *p;
	char line[512];
	size_t used;

	imap_out_reset(o);
	snprintf(line, sizeof(line), "a FETCH 1 %s\r\n", spec);
	if (imap_parser_create(NULL, &p) != 0)
		return;
	if (imap_parser_feed(p, (const uint8_t *)line, strlen(line), &used,
	    &cmd, &tag, &err) == IMAP_PARSE_DONE &&
	    imap_fetch_atts_parse(&cmd->args[1], &f, &err) == 0) {
		(void)imap_msg_section(m, &f.a[0], o);
		imap_fetch_atts_finish(&f);
	}
	imap_parser_destroy(p);
}

/* A section's answer must be "LABEL {len}\r\nDATA". */
static void
expect(imap_msg *m, const char *spec, const char *label, const char *data,
    size_t len)
{
	struct imap_out o, want;

	imap_out_init(&o);
	imap_out_init(&want);
	section(m, spec, &o);
	imap_out_printf(&want, "%s%s{%zu}\r\n", label,
	    label[strlen(label) - 1] == '~' ? "" : " ", len);
	imap_out_add(&want, data, len);
	if (o.len != want.len || memcmp(o.p, want.p, o.len) != 0) {
		fprintf(stderr, "# %s: got '%.*s'\n", spec, (int)o.len,
		    o.p ? o.p : "");
		unit_case_failed = 1;
	}
	imap_out_finish(&o);
	imap_out_finish(&want);
}

static const char known[] =
    "From: =?utf-8?q?J=C3=B6rg?= <joerg@example.org>\r\n"
    "To: a@example.com, Group: b@example.com, \"C \\\"x\\\"\" "
    "<c@example.com>;\r\n"
    "Subject: hello\r\n"
    " world\r\n"
    "Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
    "Message-ID: <1@example.org>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"XX\"\r\n"
    "\r\n"
    "preamble\r\n"
    "--XX\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "line one\r\n"
    "line two\r\n"
    "--XX\r\n"
    "Content-Type: message/rfc822\r\n"
    "Content-Disposition: attachment; filename=inner.eml\r\n"
    "\r\n"
    "Subject: inner\r\n"
    "Content-Type: application/octet-stream\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "aGVsbG8AeA==\r\n"
    "--XX--\r\n"
    "epilogue\r\n";

static void
t_known(void)
{
	imap_msg *m = msg_from(known);
	struct imap_out o;

	CHECK(m != NULL);
	if (m == NULL)
		return;
	imap_out_init(&o);
	imap_msg_bodystructure(m, 1, &o);
	CHECK(well_formed_list(&o));
	CHECK(strcmp(o.p,
	    "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 18 2"
	    " NIL NIL NIL NIL)"
	    "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 105 "
	    "(NIL \"inner\" NIL NIL NIL NIL NIL NIL NIL NIL) "
	    "(\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"BASE64\" 12 NIL "
	    "NIL NIL NIL) 5 NIL (\"ATTACHMENT\" (\"FILENAME\" \"inner.eml\")) "
	    "NIL NIL) \"MIXED\" (\"BOUNDARY\" \"XX\") NIL NIL NIL)") == 0);
	imap_out_reset(&o);
	imap_msg_bodystructure(m, 0, &o);
	CHECK(well_formed_list(&o));
	imap_out_reset(&o);
	imap_msg_envelope(m, &o);
	CHECK(well_formed_list(&o));
	CHECK(strstr(o.p, "\"Mon, 7 Feb 1994 21:52:25 -0800\" \"hello world\" "
	    "((\"=?UTF-8?b?SsO2cmc=?=\" NIL \"joerg\" \"example.org\")) "
	    "((\"=?UTF-8?b?SsO2cmc=?=\" NIL \"joerg\" \"example.org\")) "));
	CHECK(strstr(o.p, "((NIL NIL \"a\" \"example.com\")(NIL NIL \"Group\" "
	    "NIL)(NIL NIL \"b\" \"example.com\")") != NULL);
	CHECK(strstr(o.p, "(NIL NIL NIL NIL)") != NULL);
	CHECK(strstr(o.p, "\"<1@example.org>\")") != NULL);

	section(m, "BODY[]", &o);
	CHECK(o.len > 9 && memcmp(o.p, "BODY[] {", 8) == 0);
	CHECK(o.len >= sizeof(known) - 1 && memcmp(o.p + o.len -
	    (sizeof(known) - 1), known, sizeof(known) - 1) == 0);
	expect(m, "BODY[1]", "BODY[1]", "line one\r\nline two", 18);
	expect(m, "BODY[1]<5.100>", "BODY[1]<5>", "one\r\nline two", 13);
	expect(m, "BODY[1]<50.10>", "BODY[1]<50>", "", 0);
	expect(m, "BODY[1]<0.4>", "BODY[1]<0>", "line", 4);
	expect(m, "BODY[1.MIME]", "BODY[1.MIME]",
	    "Content-Type: text/plain; charset=utf-8\r\n\r\n", 43);
	expect(m, "BODY[2.HEADER]", "BODY[2.HEADER]", "Subject: inner\r\n"
	    "Content-Type: application/octet-stream\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n", 93);
	expect(m, "BODY[2.TEXT]", "BODY[2.TEXT]", "aGVsbG8AeA==", 12);
	expect(m, "BODY[2.1]", "BODY[2.1]", "aGVsbG8AeA==", 12);
	expect(m, "BINARY[2.1]", "BINARY[2.1] ~", "hello\0x", 7);
	section(m, "BINARY.SIZE[2.1]", &o);
	CHECK(strcmp(o.p, "BINARY.SIZE[2.1] 7") == 0);
	section(m, "BODY[3]", &o);
	CHECK(strcmp(o.p, "BODY[3] \"\"") == 0);
	section(m, "BODY[1.2]", &o);
	CHECK(strcmp(o.p, "BODY[1.2] \"\"") == 0);
	expect(m, "BODY[HEADER.FIELDS (subject message-id)]",
	    "BODY[HEADER.FIELDS (SUBJECT MESSAGE-ID)]", "Subject: hello\r\n"
	    " world\r\nMessage-ID: <1@example.org>\r\n\r\n", 55);
	expect(m, "BODY[HEADER.FIELDS.NOT (From To Subject Date Message-ID "
	    "MIME-Version)]", "BODY[HEADER.FIELDS.NOT (FROM TO SUBJECT DATE "
	    "MESSAGE-ID MIME-VERSION)]", "Content-Type: multipart/mixed; "
	    "boundary=\"XX\"\r\n\r\n", 48);
	section(m, "RFC822.HEADER", &o);
	CHECK(strncmp(o.p, "RFC822.HEADER {", 15) == 0 &&
	    o.p[o.len - 3] == '\n' && o.p[o.len - 1] == '\n');
	imap_out_finish(&o);
	{
		char *h = imap_msg_header(m, "subject");

		CHECK(h && strcmp(h, "hello world") == 0);
		free(h);
	}
	{
		size_t n = 0;
		char *t = imap_msg_text(m, &n);

		CHECK(t && strstr(t, "line two") && strstr(t, "inner"));
		free(t);
	}
	imap_msg_destroy(m);
}

static void
t_odd(void)
{
	static const char *odd[] = {
		"",
		"no header at all",
		"Subject: x\r\n",
		"Content-Type: multipart/mixed\r\n\r\nno boundary\r\n",
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n",
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b--\r\n",
		"Content-Type: message/rfc822\r\n\r\n",
		"Content-Type: ;;;\r\nContent-Transfer-Encoding: x y\r\n\r\nb",
		"Content-Type: text\r\n\r\nno subtype",
		"From: \r\nTo: ,,,\r\nCc: undisclosed-recipients:;\r\n\r\n",
	};
	size_t i;

	for (i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		imap_msg *m = msg_from(odd[i]);
		struct imap_out o;

		CHECK(m != NULL);
		if (m == NULL)
			continue;
		imap_out_init(&o);
		imap_msg_bodystructure(m, 1, &o);
		if (!well_formed_list(&o)) {
			fprintf(stderr, "# odd %zu: %s\n", i, o.p);
			unit_case_failed = 1;
		}
		imap_out_reset(&o);
		imap_msg_envelope(m, &o);
		CHECK(well_formed_list(&o));
		section(m, "BINARY[1]", &o);
		imap_out_finish(&o);
		imap_msg_destroy(m);
	}
}

static int corpus_n, corpus_bad;

static int
corpus_file(const char *path, const struct stat *st, int type,
    struct FTW *ftw)
{
	const char *base = path + ftw->base;
	static const char *skip[] = { "COPYING", "COMMIT", "LICENSE",
	    "NOTICE", "COPYRIGHT", "ARTISTIC", ".json" };
	struct imap_out o;
	imap_msg *m;
	uint8_t *d;
	FILE *f;
	size_t i, n;
	char spec[64];

	if (type != FTW_F)
		return 0;
	for (i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
		if (strstr(base, skip[i]))
			return 0;
	n = (size_t)st->st_size;
	if ((f = fopen(path, "rb")) == NULL || (d = malloc(n + 1)) == NULL ||
	    fread(d, 1, n, f) != n) {
		fprintf(stderr, "# cannot read %s\n", path);
		corpus_bad++;
		if (f)
			fclose(f);
		return 0;
	}
	fclose(f);
	corpus_n++;
	if (imap_msg_create(d, n, &m) != 0) {
		corpus_bad++;
		return 0;
	}
	imap_out_init(&o);
	imap_msg_bodystructure(m, 1, &o);
	if (!well_formed_list(&o)) {
		fprintf(stderr, "# %s: BODYSTRUCTURE %.300s\n", path, o.p);
		corpus_bad++;
	}
	imap_out_reset(&o);
	imap_msg_bodystructure(m, 0, &o);
	if (!well_formed_list(&o)) {
		fprintf(stderr, "# %s: BODY %.300s\n", path, o.p);
		corpus_bad++;
	}
	imap_out_reset(&o);
	imap_msg_envelope(m, &o);
	if (!well_formed_list(&o)) {
		fprintf(stderr, "# %s: ENVELOPE %.300s\n", path, o.p);
		corpus_bad++;
	}
	section(m, "BODY[]", &o);
	snprintf(spec, sizeof(spec), "BODY[] {%zu}\r\n", n);
	if (o.len != strlen(spec) + n || memcmp(o.p, spec, strlen(spec)) ||
	    memcmp(o.p + strlen(spec), imap_msg_data(m), n) != 0) {
		fprintf(stderr, "# %s: BODY[] differs\n", path);
		corpus_bad++;
	}
	for (i = 1; i <= 3; i++) {
		snprintf(spec, sizeof(spec), "BODY[%zu.MIME]", i);
		section(m, spec, &o);
		snprintf(spec, sizeof(spec), "BINARY[%zu]", i);
		section(m, spec, &o);
	}
	section(m, "BODY[TEXT]", &o);
	free(imap_msg_text(m, &n));
	imap_out_finish(&o);
	imap_msg_destroy(m);
	return 0;
}

static void
t_corpora(void)
{
	const char *root = getenv("SP_SOURCE_ROOT");
	const char *data = getenv("SP_TESTDATA");
	char dir[4096];

	if (data && *data)
		snprintf(dir, sizeof(dir), "%s/mime", data);
	else
		snprintf(dir, sizeof(dir), "%s/../shared/testdata/mime",
		    root ? root : ".");
	CHECK(nftw(dir, corpus_file, 16, FTW_PHYS) == 0);
	fprintf(stderr, "# %d corpus messages, %d problems\n", corpus_n,
	    corpus_bad);
	CHECK(corpus_n >= 150);
	CHECK(corpus_bad == 0);
}

int
main(void)
{
	RUN(t_known);
	RUN(t_odd);
	RUN(t_corpora);
	return unit_done();
}
