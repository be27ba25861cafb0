/*
 * The SMTP submission reader: command lines and DATA fed whole and a byte
 * at a time, dot-unstuffing, the end marker split across reads, bare LF
 * fixed up and "\n.\n" not ending the message, bare CR flagged, the size
 * limit, too-long lines; paths and parameters.
 */
#include <string.h>

#include "bridge/smtp_parse.h"
#include "tests/unit.h"

/* Feeds in (a byte at a time when step) and collects lines joined by '|'
 * and the message of the first DATA event. */
struct run {
	char lines[4096];
	char data[4096];
	size_t data_len;
	unsigned flags;
	int ndata, ntoolong, nbad;
};

static void
feed(smtp_parser *p, const char *in, size_t n, int step, struct run *r)
{
	size_t off = 0;

	while (off < n) {
		struct smtp_event ev;
		size_t used = 0, chunk = step ? 1 : n - off;
		enum smtp_ev e = smtp_parser_feed(p, (const uint8_t *)in + off,
		    chunk, &used, &ev);

		off += used;
		if (e == SMTP_EV_LINE) {
			strcat(r->lines, ev.line);
			strcat(r->lines, "|");
			if (strcmp(ev.line, "DATA") == 0)
				smtp_parser_begin_data(p, 100);
		} else if (e == SMTP_EV_DATA) {
			size_t len;
			uint8_t *b = smtp_parser_take_data(p, &len);

			if (r->ndata++ == 0) {
				r->flags = ev.data_flags;
				r->data_len = len;
				if (b)
					memcpy(r->data, b, len);
			}
			free(b);
		} else if (e == SMTP_EV_TOOLONG) {
			r->ntoolong++;
		} else if (e == SMTP_EV_BAD) {
			r->nbad++;
		}
	}
}

static void
both(const char *in, void (*check)(const struct run *))
{
	int step;

	for (step = 0; step < 2; step++) {
		smtp_parser *p;
		struct run r;

		memset(&r, 0, sizeof(r));
		CHECK_RC(smtp_parser_create(&p), 0);
		feed(p, in, strlen(in), step, &r);
		check(&r);
		smtp_parser_destroy(p);
	}
}

static void
c_session(const struct run *r)
{
	CHECK(strcmp(r->lines, "EHLO x|MAIL FROM:<a@b>|DATA|QUIT|") == 0);
	CHECK(r->ndata == 1);
	CHECK(r->data_len == 21);
	CHECK(memcmp(r->data, "Subject: a\r\n\r\n.b\r\nc\r\n", 21) == 0);
	CHECK(r->flags == 0);
}

static void
t_session(void)
{
	both("EHLO x\r\nMAIL FROM:<a@b>\r\nDATA\r\nSubject: a\r\n\r\n..b\r\n"
	    "c\r\n.\r\nQUIT\r\n", c_session);
}

static void
c_bare_lf(const struct run *r)
{
	/* "\n.\n" is content, the end is only CRLF.CRLF. */
	CHECK(r->ndata == 1);
	CHECK(r->flags == SMTP_DATA_BARE_LF);
	CHECK(r->data_len == 14);
	CHECK(memcmp(r->data, "a\r\n\r\nMAIL\r\nb\r\n", 14) == 0);
	CHECK(strcmp(r->lines, "DATA|QUIT|") == 0);
}

static void
t_bare_lf(void)
{
	both("DATA\r\na\n.\nMAIL\r\nb\r\n.\r\nQUIT\r\n", c_bare_lf);
}

static void
c_bare_cr(const struct run *r)
{
	CHECK(r->ndata == 1);
	CHECK(r->flags & SMTP_DATA_BARE_CR);
	CHECK(strcmp(r->lines, "DATA|NOOP|") == 0);
}

static void
t_bare_cr(void)
{
	both("DATA\r\na\rb\r\n.\r\nNOOP\r\n", c_bare_cr);
}

static void
c_too_big(const struct run *r)
{
	CHECK(r->ndata == 1);
	CHECK(r->flags & SMTP_DATA_TOO_BIG);
	CHECK(r->data_len == 0);
	CHECK(strcmp(r->lines, "DATA|NOOP|") == 0);
}

static void
t_too_big(void)
{
	char in[1024];

	strcpy(in, "DATA\r\n");
	memset(in + 6, 'x', 200);
	strcpy(in + 206, "\r\n.\r\nNOOP\r\n");
	both(in, c_too_big);
}

static void
c_long(const struct run *r)
{
	CHECK(r->ntoolong == 1);
	CHECK(r->nbad == 1);
	CHECK(strcmp(r->lines, "NOOP|") == 0);
}

static void
t_long_line(void)
{
	static char in[SMTP_LINE_MAX * 2 + 64];

	memset(in, 'A', SMTP_LINE_MAX + 5);
	memcpy(in + SMTP_LINE_MAX + 5, "\r\nNO\0OP\r\nNOOP\r\n", 16);
	/* strlen stops at the NUL: feed by hand. */
	{
		int step;

		for (step = 0; step < 2; step++) {
			smtp_parser *p;
			struct run r;

			memset(&r, 0, sizeof(r));
			CHECK_RC(smtp_parser_create(&p), 0);
			feed(p, in, SMTP_LINE_MAX + 5 + 16, step, &r);
			c_long(&r);
			smtp_parser_destroy(p);
		}
	}
}

static void
t_verb(void)
{
	char verb[16];
	const char *rest;

	CHECK(smtp_parse_verb("ehlo  x.y", verb, &rest) == 0);
	CHECK(strcmp(verb, "EHLO") == 0 && strcmp(rest, "x.y") == 0);
	CHECK(smtp_parse_verb("QUIT", verb, &rest) == 0 && *rest == 0);
	CHECK(smtp_parse_verb("MAIL:x", verb, &rest) == -1);
	CHECK(smtp_parse_verb("", verb, &rest) == -1);
	CHECK(smtp_parse_verb("AAAAAAAAAAAAAAAAAAAA", verb, &rest) == -1);
}

static void
t_path(void)
{
	char a[SMTP_ADDR_MAX + 1], key[32], val[256], big[400];
	const char *params, *err;

	CHECK(smtp_parse_path("FROM:<a@b.c> SIZE=10 BODY=8BITMIME", "FROM:",
	    0, a, &params, &err) == 0);
	CHECK(strcmp(a, "a@b.c") == 0);
	CHECK(smtp_parse_param(&params, key, val, &err) == 1);
	CHECK(strcmp(key, "SIZE") == 0 && strcmp(val, "10") == 0);
	CHECK(smtp_parse_param(&params, key, val, &err) == 1);
	CHECK(strcmp(key, "BODY") == 0 && strcmp(val, "8BITMIME") == 0);
	CHECK(smtp_parse_param(&params, key, val, &err) == 0);
	CHECK(smtp_parse_path("from: <>", "FROM:", 0, a, &params, &err) == 0);
	CHECK(a[0] == 0);
	CHECK(smtp_parse_path("TO:<\"a b\"@c>", "TO:", 0, a, &params,
	    &err) == 0 && strcmp(a, "\"a b\"@c") == 0);
	CHECK(smtp_parse_path("TO:a@b", "TO:", 0, a, &params, &err) == -1);
	CHECK(smtp_parse_path("TO:<@x:a@b>", "TO:", 0, a, &params, &err) ==
	    -1);
	CHECK(smtp_parse_path("TO:<a@b@c>", "TO:", 0, a, &params, &err) ==
	    -1);
	CHECK(smtp_parse_path("TO:<a@b", "TO:", 0, a, &params, &err) == -1);
	CHECK(smtp_parse_path("TO:<a@b>x", "TO:", 0, a, &params, &err) ==
	    -1);
	CHECK(smtp_parse_path("TO:<\xc3\xa9@b>", "TO:", 0, a, &params,
	    &err) == -1);
	CHECK(smtp_parse_path("TO:<\xc3\xa9@b>", "TO:", 1, a, &params,
	    &err) == 0);
	CHECK(smtp_parse_path("TO:<\xc3@b>", "TO:", 1, a, &params, &err) ==
	    -1);
	memset(big, 'a', sizeof(big));
	memcpy(big, "TO:<", 4);
	strcpy(big + 300, "@b>");
	CHECK(smtp_parse_path(big, "TO:", 0, a, &params, &err) == -1);
	params = "X=";
	CHECK(smtp_parse_param(&params, key, val, &err) == -1);
}

static void
t_base64(void)
{
	uint8_t out[64];

	CHECK(smtp_base64_decode("AGFAYgBw", out, sizeof(out)) == 6);
	CHECK(memcmp(out, "\0a@b\0p", 6) == 0);
	CHECK(smtp_base64_decode("AGFAYgBw=", out, sizeof(out)) == -1);
	CHECK(smtp_base64_decode("!!!!", out, sizeof(out)) == -1);
	CHECK(smtp_base64_decode("AGFAYgBw", out, 3) == -1);
}

int
main(void)
{
	RUN(t_session);
	RUN(t_bare_lf);
	RUN(t_bare_cr);
	RUN(t_too_big);
	RUN(t_long_line);
	RUN(t_verb);
	RUN(t_path);
	RUN(t_base64);
	return unit_done();
}
