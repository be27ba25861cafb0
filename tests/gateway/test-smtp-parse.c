/*
 * Unit tests of the SMTP parser: command-line framing (whole and one byte
 * at a time), command syntax, paths and parameters, and the DATA/BDAT
 * reader including the SMTP smuggling cases.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "server/gateway/smtp_parse.h"
#include "tests/unit.h"

/* Frames buf into lines, feeding `step` bytes at a time (0 = all). */
static int
frame(const char *buf, size_t step, size_t margin, char lines[][600],
    int *codes, int max)
{
	struct sp_smtp_lines l;
	uint8_t acc[8192];
	size_t acclen = 0, fed = 0, len = strlen(buf);
	int n = 0;

	sp_smtp_lines_init(&l, margin);
	while (fed < len || acclen > 0) {
		size_t add = step ? step : len;
		size_t used, linelen;
		int rc;

		if (add > len - fed)
			add = len - fed;
		memcpy(acc + acclen, buf + fed, add);
		acclen += add;
		fed += add;
		for (;;) {
			rc = sp_smtp_lines_next(&l, acc, acclen, &used, &linelen);
			if (rc != SP_SMTP_MORE && n < max) {
				codes[n] = rc;
				lines[n][0] = '\0';
				if (rc == 0) {
					memcpy(lines[n], acc, linelen);
					lines[n][linelen] = '\0';
				}
				n++;
			}
			memmove(acc, acc + used, acclen - used);
			acclen -= used;
			if (rc == SP_SMTP_MORE && used == 0)
				break;
		}
		if (fed == len)
			break;
	}
	return n;
}

static void
t_lines(void)
{
	static const size_t steps[] = { 0, 1, 2, 7 };
	size_t i;

	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		char lines[8][600];
		int codes[8];
		int n = frame("EHLO a\r\nNOOP\r\n\r\nQUIT\r\n", steps[i], 0,
		    lines, codes, 8);

		CHECK(n == 4);
		CHECK(codes[0] == 0 && strcmp(lines[0], "EHLO a") == 0);
		CHECK(codes[1] == 0 && strcmp(lines[1], "NOOP") == 0);
		CHECK(codes[2] == 0 && strcmp(lines[2], "") == 0);
		CHECK(codes[3] == 0 && strcmp(lines[3], "QUIT") == 0);
	}
}

static void
t_lines_bare(void)
{
	static const size_t steps[] = { 0, 1 };
	size_t i;

	for (i = 0; i < 2; i++) {
		char lines[8][600];
		int codes[8];
		int n = frame("NOOP\nNO\rOP\r\nRSET\r\n", steps[i], 0, lines,
		    codes, 8);

		CHECK(n == 3);
		CHECK(codes[0] == SP_SMTP_EBARELF);
		CHECK(codes[1] == SP_SMTP_EBARECR);
		CHECK(codes[2] == 0 && strcmp(lines[2], "RSET") == 0);
	}
}

/* 512 octets with CRLF pass; 513 do not, and the line after is fine. */
static void
t_lines_limit(void)
{
	static char buf[4096];
	char lines[8][600];
	int codes[8], n;
	size_t step;

	for (step = 0; step <= 1; step++) {
		memset(buf, 'a', 510);
		strcpy(buf + 510, "\r\n");
		memset(buf + 512, 'b', 511);
		strcpy(buf + 1023, "\r\nNOOP\r\n");
		n = frame(buf, step, 0, lines, codes, 8);
		CHECK(n == 3);
		CHECK(codes[0] == 0 && strlen(lines[0]) == 510);
		CHECK(codes[1] == SP_SMTP_ELONG);
		CHECK(codes[2] == 0 && strcmp(lines[2], "NOOP") == 0);
		/* the margin lets the long line through */
		n = frame(buf, step, 1, lines, codes, 8);
		CHECK(n == 3 && codes[1] == 0 && strlen(lines[1]) == 511);
	}
	/* a line far longer than the limit is reported once */
	memset(buf, 'c', 3000);
	strcpy(buf + 3000, "\r\nQUIT\r\n");
	n = frame(buf, 0, 0, lines, codes, 8);
	CHECK(n == 2 && codes[0] == SP_SMTP_ELONG && codes[1] == 0);
	n = frame(buf, 1, 0, lines, codes, 8);
	CHECK(n == 2 && codes[0] == SP_SMTP_ELONG && codes[1] == 0);
}

static int
parse(const char *line, struct sp_smtp_cmd *c)
{
	return sp_smtp_cmd_parse(line, strlen(line), c);
}

static void
t_cmd_verbs(void)
{
	struct sp_smtp_cmd c;

	CHECK_RC(parse("ehlo client.example", &c), 0);
	CHECK(c.verb == SP_SMTP_EHLO && strcmp(c.helo, "client.example") == 0);
	CHECK_RC(parse("HELO [192.0.2.1]", &c), 0);
	CHECK(c.verb == SP_SMTP_HELO && strcmp(c.helo, "[192.0.2.1]") == 0);
	CHECK_RC(parse("EHLO", &c), SP_SMTP_ESYNTAX);
	CHECK(c.verb == SP_SMTP_EHLO);
	CHECK_RC(parse("DATA", &c), 0);
	CHECK(c.verb == SP_SMTP_DATA);
	CHECK_RC(parse("DATA x", &c), SP_SMTP_ESYNTAX);
	CHECK_RC(parse("Quit", &c), 0);
	CHECK(c.verb == SP_SMTP_QUIT);
	CHECK_RC(parse("STARTTLS", &c), 0);
	CHECK(c.verb == SP_SMTP_STARTTLS);
	CHECK_RC(parse("NOOP anything", &c), 0);
	CHECK(c.verb == SP_SMTP_NOOP);
	CHECK_RC(parse("VRFY", &c), SP_SMTP_ESYNTAX);
	CHECK_RC(parse("VRFY root", &c), 0);
	CHECK(c.verb == SP_SMTP_VRFY);
	CHECK_RC(parse("XYZZY", &c), 0);
	CHECK(c.verb == SP_SMTP_UNKNOWN);
	CHECK_RC(parse("MAILX FROM:<a@b>", &c), 0);
	CHECK(c.verb == SP_SMTP_UNKNOWN);
	CHECK_RC(sp_smtp_cmd_parse("NOOP\0x", 6, &c), SP_SMTP_ESYNTAX);
}

static void
t_cmd_paths(void)
{
	struct sp_smtp_cmd c;

	CHECK_RC(parse("MAIL FROM:<alice@example.org>", &c), 0);
	CHECK(c.verb == SP_SMTP_MAIL &&
	    strcmp(c.path, "alice@example.org") == 0 && !c.path_utf8);
	CHECK_RC(parse("mail from: <a.b+c@x-y.example>", &c), 0);
	CHECK(strcmp(c.path, "a.b+c@x-y.example") == 0);
	CHECK_RC(parse("MAIL FROM:<>", &c), 0);
	CHECK(c.path[0] == '\0');
	CHECK_RC(parse("RCPT TO:<>", &c), SP_SMTP_EPATH);
	CHECK_RC(parse("RCPT TO:<Postmaster>", &c), 0);
	CHECK(strcmp(c.path, "Postmaster") == 0);
	CHECK_RC(parse("MAIL FROM:<Postmaster>", &c), SP_SMTP_EPATH);
	CHECK_RC(parse("RCPT TO:<@relay.example,@r2.example:bob@x.example>",
	    &c), 0);
	CHECK(strcmp(c.path, "bob@x.example") == 0);
	CHECK_RC(parse("RCPT TO:<\"john doe\"@x.example>", &c), 0);
	CHECK(strcmp(c.path, "\"john doe\"@x.example") == 0);
	CHECK_RC(parse("RCPT TO:<bob@[192.0.2.7]>", &c), 0);
	CHECK_RC(parse("RCPT TO:bob@x.example", &c), SP_SMTP_EPATH);
	CHECK_RC(parse("RCPT TO:<bob@x.example", &c), SP_SMTP_EPATH);
	CHECK_RC(parse("RCPT TO:<bob@@x.example>", &c), SP_SMTP_EPATH);
	CHECK_RC(parse("RCPT TO:<bob..b@x.example>", &c), SP_SMTP_EPATH);
	CHECK_RC(parse("RCPT TO:<bob@-x.example>", &c), SP_SMTP_EPATH);
	CHECK_RC(parse("RCPT TO:<bob@x..example>", &c), SP_SMTP_EPATH);
	CHECK_RC(parse("RCPT TO:<bob@x.example>>", &c), SP_SMTP_ESYNTAX);
	CHECK_RC(parse("RCPT TO:<b ob@x.example>", &c), SP_SMTP_EPATH);
	CHECK_RC(parse("RCPT TO:<\"a\x01\"@x.example>", &c), SP_SMTP_EPATH);
	CHECK_RC(parse("RCPT FROM:<bob@x.example>", &c), SP_SMTP_ESYNTAX);
	CHECK(c.verb == SP_SMTP_RCPT);
	/* SMTPUTF8: UTF-8 in local part and domain, flagged */
	CHECK_RC(parse("RCPT TO:<j\xc3\xb6rg@b\xc3\xbc" "cher.example>", &c),
	    0);
	CHECK(c.path_utf8);
	CHECK_RC(parse("RCPT TO:<j\xc3rg@x.example>", &c), SP_SMTP_EUTF8);
	CHECK_RC(parse("RCPT TO:<j\xed\xa0\x80@x.example>", &c),
	    SP_SMTP_EUTF8);
}

static void
t_cmd_limits(void)
{
	struct sp_smtp_cmd c;
	char line[1024];

	/* local part: 64 octets pass, 65 do not */
	strcpy(line, "RCPT TO:<");
	memset(line + 9, 'l', 64);
	strcpy(line + 73, "@x.example>");
	CHECK_RC(parse(line, &c), 0);
	memset(line + 9, 'l', 65);
	strcpy(line + 74, "@x.example>");
	CHECK_RC(parse(line, &c), SP_SMTP_EPATH);
	/* path: 256 octets with <> pass, 257 do not */
	strcpy(line, "RCPT TO:<a@");
	memset(line + 11, 'd', 252);
	strcpy(line + 263, ">");
	CHECK_RC(parse(line, &c), 0);
	memset(line + 11, 'd', 253);
	strcpy(line + 264, ">");
	CHECK_RC(parse(line, &c), SP_SMTP_EPATH);
	/* HELO name over 255 */
	strcpy(line, "EHLO ");
	memset(line + 5, 'h', 256);
	line[261] = '\0';
	CHECK_RC(parse(line, &c), SP_SMTP_ESYNTAX);
}

static void
t_cmd_params(void)
{
	struct sp_smtp_cmd c;

	CHECK_RC(parse("MAIL FROM:<a@b.example> SIZE=1000 BODY=8BITMIME "
	    "SMTPUTF8", &c), 0);
	CHECK(c.has_size && c.size == 1000);
	CHECK(c.body == SP_SMTP_BODY_8BITMIME && c.smtputf8);
	CHECK_RC(parse("MAIL FROM:<a@b.example> body=7bit", &c), 0);
	CHECK(c.body == SP_SMTP_BODY_7BIT && !c.has_size);
	CHECK_RC(parse("MAIL FROM:<a@b.example> BODY=BINARYMIME", &c),
	    SP_SMTP_EPARAM);
	CHECK_RC(parse("MAIL FROM:<a@b.example> SIZE=", &c), SP_SMTP_EPARAM);
	CHECK_RC(parse("MAIL FROM:<a@b.example> SIZE=12x", &c),
	    SP_SMTP_EPARAM);
	CHECK_RC(parse("MAIL FROM:<a@b.example> SIZE=99999999999999999999999",
	    &c), SP_SMTP_EPARAM);
	CHECK_RC(parse("MAIL FROM:<a@b.example> SIZE=1 SIZE=2", &c),
	    SP_SMTP_EPARAM);
	CHECK_RC(parse("MAIL FROM:<a@b.example> SMTPUTF8=yes", &c),
	    SP_SMTP_EPARAM);
	CHECK_RC(parse("MAIL FROM:<a@b.example> RET=FULL", &c),
	    SP_SMTP_EPARAM);
	CHECK_RC(parse("RCPT TO:<a@b.example> NOTIFY=NEVER", &c),
	    SP_SMTP_EPARAM);
	CHECK_RC(parse("MAIL FROM:<a@b.example>SIZE=1", &c), SP_SMTP_ESYNTAX);
}

static void
t_cmd_bdat(void)
{
	struct sp_smtp_cmd c;

	CHECK_RC(parse("BDAT 1000", &c), 0);
	CHECK(c.verb == SP_SMTP_BDAT && c.chunk == 1000 && !c.last);
	CHECK_RC(parse("bdat 0 last", &c), 0);
	CHECK(c.chunk == 0 && c.last);
	CHECK_RC(parse("BDAT", &c), SP_SMTP_ESYNTAX);
	CHECK_RC(parse("BDAT -1", &c), SP_SMTP_ESYNTAX);
	CHECK_RC(parse("BDAT 10 LASTX", &c), SP_SMTP_ESYNTAX);
	CHECK_RC(parse("BDAT 10 LAST x", &c), SP_SMTP_ESYNTAX);
}

/* Reads msg through the DATA reader `step` bytes at a time. */
static int
data(enum sp_smtp_data_mode mode, const char *in, size_t inlen, size_t step,
    uint64_t max, uint8_t *out, size_t *outlen_r, size_t *used_r,
    struct sp_smtp_data *d)
{
	size_t pos = 0;
	int rc = SP_SMTP_MORE;

	sp_smtp_data_init(d, mode, max);
	*outlen_r = 0;
	while (pos < inlen) {
		size_t n = step && step < inlen - pos ? step : inlen - pos;
		size_t used, outlen;

		rc = sp_smtp_data_feed(d, (const uint8_t *)in + pos, n,
		    out + *outlen_r, &used, &outlen);
		*outlen_r += outlen;
		pos += used;
		if (rc != SP_SMTP_MORE)
			break;
	}
	*used_r = pos;
	return rc;
}

static void
t_data_dot(void)
{
	static const char in[] = "Subject: x\r\n\r\n..leading dot\r\n..\r\n"
	    "line\r\n.\r\nQUIT\r\n";
	static const char want[] = "Subject: x\r\n\r\n.leading dot\r\n.\r\n"
	    "line\r\n";
	size_t step;

	for (step = 0; step <= 3; step++) {
		struct sp_smtp_data d;
		uint8_t out[256];
		size_t outlen, used;
		int rc = data(SP_SMTP_DATA_DOT, in, sizeof(in) - 1, step,
		    1000, out, &outlen, &used, &d);

		/* "..\r\n" is a stuffed dot; the lone dot line ends it and
		 * what follows is the next command */
		CHECK_RC(rc, 0);
		CHECK(outlen == sizeof(want) - 1 &&
		    memcmp(out, want, outlen) == 0);
		CHECK(used == sizeof(in) - 1 - strlen("QUIT\r\n"));
		CHECK(d.error == 0);
	}
}

static void
t_data_empty(void)
{
	struct sp_smtp_data d;
	uint8_t out[16];
	size_t outlen, used;

	CHECK_RC(data(SP_SMTP_DATA_DOT, ".\r\n", 3, 1, 100, out, &outlen,
	    &used, &d), 0);
	CHECK(outlen == 0 && used == 3);
}

/* The smuggling shapes: <LF>.<LF>, <CR>.<CR>, <LF>.<CR><LF>,
 * <CR><LF>.<LF>, and bare CR/LF in ordinary lines. */
static void
t_data_smuggling(void)
{
	static const struct {
		const char *in;
		int rc;
	} cases[] = {
		{ "a\r\nb\n.\nMAIL FROM:<x@y>\r\n", SP_SMTP_EBARELF },
		{ "a\r\nb\r.\rMAIL FROM:<x@y>\r\n", SP_SMTP_EBARECR },
		{ "a\r\nb\n.\r\nMAIL FROM:<x@y>\r\n", SP_SMTP_EBARELF },
		{ "a\r\n.\nMAIL FROM:<x@y>\r\n", SP_SMTP_EBARELF },
		{ "a\r\n.\rMAIL FROM:<x@y>\r\n", SP_SMTP_EBARECR },
		{ "a\rb\r\n.\r\n", SP_SMTP_EBARECR },
		{ "\n.\r\n", SP_SMTP_EBARELF },
	};
	size_t i, step;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (step = 0; step <= 1; step++) {
			struct sp_smtp_data d;
			uint8_t out[256];
			size_t outlen, used;
			int rc = data(SP_SMTP_DATA_DOT, cases[i].in,
			    strlen(cases[i].in), step, 1000, out, &outlen,
			    &used, &d);

			if (rc != cases[i].rc)
				fprintf(stderr, "# case %zu step %zu: %d\n",
				    i, step, rc);
			CHECK(rc == cases[i].rc);
		}
	}
}

static void
t_data_size(void)
{
	static const char in[] = "0123456789\r\n0123456789\r\n.\r\n";
	struct sp_smtp_data d;
	uint8_t out[64];
	size_t outlen, used;

	/* exactly at the limit: fine */
	CHECK_RC(data(SP_SMTP_DATA_DOT, in, sizeof(in) - 1, 0, 24, out,
	    &outlen, &used, &d), 0);
	CHECK(d.error == 0 && outlen == 24);
	/* one byte less: read to the end, nothing past the limit stored */
	memset(out, 0, sizeof(out));
	CHECK_RC(data(SP_SMTP_DATA_DOT, in, sizeof(in) - 1, 1, 23, out,
	    &outlen, &used, &d), 0);
	CHECK(d.error == SP_SMTP_ESIZE && outlen == 23 && d.size == 24);
	CHECK(used == sizeof(in) - 1);
}

static void
t_data_raw(void)
{
	static const char in[] = ".dot\r\n.\r\nrest";
	struct sp_smtp_data d;
	uint8_t out[64];
	size_t outlen, used;

	/* BDAT: no dot handling, no end marker */
	CHECK_RC(data(SP_SMTP_DATA_RAW, in, sizeof(in) - 1, 1, 100, out,
	    &outlen, &used, &d), SP_SMTP_MORE);
	CHECK(outlen == sizeof(in) - 1 && memcmp(out, in, outlen) == 0);
	CHECK_RC(sp_smtp_data_finish(&d), 0);
	CHECK_RC(data(SP_SMTP_DATA_RAW, "ab\r", 3, 0, 100, out, &outlen,
	    &used, &d), SP_SMTP_MORE);
	CHECK_RC(sp_smtp_data_finish(&d), SP_SMTP_EBARECR);
	CHECK_RC(data(SP_SMTP_DATA_RAW, "ab\ncd", 5, 0, 100, out, &outlen,
	    &used, &d), SP_SMTP_EBARELF);
}

int
main(void)
{
	RUN(t_lines);
	RUN(t_lines_bare);
	RUN(t_lines_limit);
	RUN(t_cmd_verbs);
	RUN(t_cmd_paths);
	RUN(t_cmd_limits);
	RUN(t_cmd_params);
	RUN(t_cmd_bdat);
	RUN(t_data_dot);
	RUN(t_data_empty);
	RUN(t_data_smuggling);
	RUN(t_data_size);
	RUN(t_data_raw);
	return unit_done();
}
