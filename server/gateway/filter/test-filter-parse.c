/*
 * Unit tests for the filter reply parsers: every reply is fed one byte at
 * a time (each shorter prefix must ask for more, never misparse), then
 * against each limit and malformation.  The clients themselves are tested
 * against real daemons in tests/gateway/filter/.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server/gateway/filter/filter_clamd.h"
#include "server/gateway/filter/filter_rspamd.h"
#include "server/gateway/filter/gw_filter.h"
#include "tests/unit.h"

/* clamd: every strict prefix needs more; the whole parses to want. */
static int
clamd_bytewise(const char *s, size_t n, struct filter_clamd_reply *r)
{
	size_t i;

	for (i = 0; i + 1 < n; i++)
		if (filter_clamd_parse((const uint8_t *)s, i, 0, r) != EAGAIN)
			return -1;
	return filter_clamd_parse((const uint8_t *)s, n, 0, r);
}

static void
t_clamd_ok(void)
{
	struct filter_clamd_reply r;

	CHECK_RC(clamd_bytewise("stream: OK", 11, &r), 0);
	CHECK(r.kind == FILTER_CLAMD_CLEAN);
	CHECK_RC(clamd_bytewise("stream: OK\n", 11, &r), 0);
	CHECK(r.kind == FILTER_CLAMD_CLEAN);
}

static void
t_clamd_found(void)
{
	static const char s[] = "stream: Eicar-Test-Signature FOUND";
	struct filter_clamd_reply r;

	CHECK_RC(clamd_bytewise(s, sizeof(s), &r), 0);
	CHECK(r.kind == FILTER_CLAMD_FOUND);
	CHECK(strcmp(r.text, "Eicar-Test-Signature") == 0);
}

static void
t_clamd_errors(void)
{
	static const char lim[] = "INSTREAM size limit exceeded. ERROR";
	static const char mem[] = "stream: Can't allocate memory ERROR";
	struct filter_clamd_reply r;

	CHECK_RC(clamd_bytewise(lim, sizeof(lim), &r), 0);
	CHECK(r.kind == FILTER_CLAMD_LIMIT);
	CHECK_RC(clamd_bytewise(mem, sizeof(mem), &r), 0);
	CHECK(r.kind == FILTER_CLAMD_ERROR);
	CHECK(strcmp(r.text, "stream: Can't allocate memory") == 0);
}

static void
t_clamd_malformed(void)
{
	static const char *const bad[] = { "hello", "stream: ", "stream: ok",
		"stream: two words FOUND", "stream:  FOUND", " FOUND", "ERROR",
		"stream: OK ", "stream: x\tFOUND", "stream: a\x80 FOUND", "" };
	struct filter_clamd_reply r;
	uint8_t big[FILTER_CLAMD_REPLY_MAX + 10];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_RC(filter_clamd_parse((const uint8_t *)bad[i],
		    strlen(bad[i]) + 1, 0, &r), SP_EFORMAT);
	/* The peer closed before the terminator. */
	CHECK_RC(filter_clamd_parse((const uint8_t *)"stream: OK", 10, 1, &r),
	    SP_ETRUNC);
	CHECK_RC(filter_clamd_parse((const uint8_t *)"", 0, 1, &r), SP_ETRUNC);
	memset(big, 'A', sizeof(big));
	CHECK_RC(filter_clamd_parse(big, sizeof(big), 0, &r), SP_ELIMIT);
	CHECK_RC(filter_clamd_parse(big, FILTER_CLAMD_REPLY_MAX, 0, &r),
	    EAGAIN);
	/* A name of control bytes never reaches the verdict. */
	CHECK_RC(filter_clamd_parse((const uint8_t *)"stream: \x1b[31m FOUND",
	    21, 1, &r), SP_EFORMAT);
}

/* rspamd: each prefix needs more (eof 0); returns the whole's result. */
static int
rspamd_bytewise(const char *s, int eof, struct filter_rspamd_reply *r)
{
	struct filter_rspamd_parser p;
	size_t i, n = strlen(s);
	int err;

	filter_rspamd_parser_init(&p);
	for (i = 0; i < n; i++) {
		err = filter_rspamd_parse(&p, (const uint8_t *)s, i, 0, r);
		if (err != EAGAIN)
			return -1;
	}
	return filter_rspamd_parse(&p, (const uint8_t *)s, n, eof, r);
}

static int
rspamd_once(const char *s, size_t n, int eof, struct filter_rspamd_reply *r)
{
	struct filter_rspamd_parser p;

	filter_rspamd_parser_init(&p);
	return filter_rspamd_parse(&p, (const uint8_t *)s, n, eof, r);
}

#define BODY_REJECT "{\"is_skipped\":true,\"score\":15.0," \
	"\"required_score\":15.0,\"action\":\"reject\",\"symbols\":{\"GTUBE\":" \
	"{\"name\":\"GTUBE\",\"score\":0.0}},\"messages\":{\"smtp_message\":" \
	"\"Gtube pattern\"}}"

/* A reply with a head that declares the body's length. */
static char *
http_reply(const char *status, const char *body)
{
	static char buf[4096];

	(void)snprintf(buf, sizeof(buf), "HTTP/1.1 %s\r\nConnection: close\r\n"
	    "Server: rspamd/3.4\r\nContent-Length: %zu\r\n"
	    "Content-Type: application/json\r\n\r\n%s", status, strlen(body),
	    body);
	return buf;
}

static void
t_rspamd_ok(void)
{
	struct filter_rspamd_reply r;

	CHECK_RC(rspamd_bytewise(http_reply("200 OK", BODY_REJECT), 0, &r), 0);
	CHECK(r.status == 200);
	CHECK(strcmp(r.action, "reject") == 0);
	CHECK(r.score == 15.0 && r.required_score == 15.0);
}

static void
t_rspamd_until_eof(void)
{
	static const char s[] = "HTTP/1.0 200 OK\r\n\r\n"
	    "{\"action\":\"add header\",\"score\":7}\r\n";
	struct filter_rspamd_reply r;

	CHECK_RC(rspamd_bytewise(s, 0, &r), EAGAIN); /* not before EOF */
	CHECK_RC(rspamd_once(s, strlen(s), 1, &r), 0);
	CHECK(strcmp(r.action, "add header") == 0 && r.score == 7.0);
}

static void
t_rspamd_error_status(void)
{
	static const char empty[] = "HTTP/1.1 503 Unavailable\r\n"
	    "Content-Length: 0\r\n\r\n";
	struct filter_rspamd_reply r;

	CHECK_RC(rspamd_bytewise(http_reply("400 Bad Request",
	    "{\"error\":\"message has no\\u0007\"}"), 0, &r), 0);
	CHECK(r.status == 400);
	CHECK(strcmp(r.error, "message has no?") == 0);
	CHECK_RC(rspamd_once(empty, strlen(empty), 0, &r), 0);
	CHECK(r.status == 503 && r.error[0] == '\0');
}

static void
t_rspamd_malformed(void)
{
	static const char *const bad[] = {
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Encoding: zstd\r\n\r\n{}",
		"HTTP/1.1 200 OK\nContent-Length: 2\r\n\r\n{}",
		"HTTP/1.1 200 OK\r\nX\rY: 1\r\n\r\n{}",
		"HTTP/2 200 OK\r\n\r\n{}",
		"HTTP/1.1 2x0 OK\r\n\r\n{}",
		"HTTP/1.1 200 OK\r\n : x\r\n\r\n{}",
		"HTTP/1.1 200 OK\r\n folded\r\n\r\n{}",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n{",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}x",
		"HTTP/1.1 200 OK\r\n\r\n{\"score\":1}",
		"HTTP/1.1 200 OK\r\n\r\n{\"action\":\"reject\"}",
		"HTTP/1.1 200 OK\r\n\r\n{\"action\":\"reject\",\"score\":\"9\"}",
		"HTTP/1.1 200 OK\r\n\r\n{\"action\":7,\"score\":9}",
		"HTTP/1.1 200 OK\r\n\r\n{\"action\":\"\",\"score\":9}",
		"HTTP/1.1 200 OK\r\n\r\n{\"action\":\"a\\nb\",\"score\":9}",
		"HTTP/1.1 200 OK\r\n\r\n{\"action\":\"reject\",\"score\":9} x",
		"HTTP/1.1 200 OK\r\n\r\n{\"action\":\"reject\",\"score\":9,}",
		"HTTP/1.1 200 OK\r\n\r\n[\"reject\"]",
		"HTTP/1.1 200 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\n\r\n{'action':'reject','score':9}",
	};
	struct filter_rspamd_reply r;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int err = rspamd_once(bad[i], strlen(bad[i]), 1, &r);

		if (err != SP_EFORMAT)
			fprintf(stderr, "# case %zu: %d\n", i, err);
		CHECK(err == SP_EFORMAT);
	}
}

static void
t_rspamd_limits(void)
{
	static const char deep_head[] = "HTTP/1.1 200 OK\r\n\r\n";
	const size_t depth = 100;
	struct filter_rspamd_reply r;
	char *s;
	size_t n, i;

	/* A head that never ends. */
	n = FILTER_RSPAMD_HEAD_MAX + 10;
	s = malloc(n + 64);
	memcpy(s, "HTTP/1.1 200 OK\r\n", 17);
	memset(s + 17, 'a', n - 17);
	CHECK_RC(rspamd_once(s, n, 0, &r), SP_ELIMIT);
	free(s);
	/* A declared body past the limit. */
	CHECK_RC(rspamd_once("HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n"
	    "\r\n", 45, 0, &r), SP_ELIMIT);
	/* Nesting deeper than the JSON depth limit. */
	s = malloc(sizeof(deep_head) + 2 * depth + 64);
	n = (size_t)sprintf(s, "%s{\"action\":\"reject\",\"score\":1,\"x\":",
	    deep_head);
	for (i = 0; i < depth; i++)
		s[n++] = '[';
	for (i = 0; i < depth; i++)
		s[n++] = ']';
	s[n++] = '}';
	CHECK_RC(rspamd_once(s, n, 1, &r), SP_EFORMAT);
	free(s);
	/* A body cut short by the peer. */
	CHECK_RC(rspamd_once("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}",
	    42, 1, &r), SP_ETRUNC);
	CHECK_RC(rspamd_once("HTTP/1.1 200", 12, 1, &r), SP_ETRUNC);
	/* A NUL inside the body. */
	CHECK_RC(rspamd_once("HTTP/1.1 200 OK\r\n\r\n{\"action\":\"reject\"\0}",
	    39, 1, &r), SP_EFORMAT);
}

static void
t_rspamd_head(void)
{
	static const char *const rcpts[] = { "a@x.example", "b@x.example" };
	static const char *const evil[] = { "a@x.example\r\nIP: 1.2.3.4" };
	struct sp_gw_filter_envelope e = { .ip = "192.0.2.1", .helo = "mx",
		.mail_from = "", .rcpts = rcpts, .nrcpts = 2 };
	char *h;
	size_t n;

	CHECK_RC(filter_rspamd_head(&e, 42, &h, &n), 0);
	CHECK(n == strlen(h));
	CHECK(strstr(h, "Content-Length: 42\r\n") != NULL);
	CHECK(strstr(h, "IP: 192.0.2.1\r\nHelo: mx\r\nFrom: <>\r\n"
	    "Rcpt: a@x.example\r\nRcpt: b@x.example\r\n\r\n") != NULL);
	free(h);
	e.rcpts = evil;
	e.nrcpts = 1;
	CHECK_RC(filter_rspamd_head(&e, 1, &h, &n), SP_EINVAL);
	e.nrcpts = 0;
	e.helo = "mx\n";
	CHECK_RC(filter_rspamd_head(&e, 1, &h, &n), SP_EINVAL);
	e.helo = "";
	CHECK_RC(filter_rspamd_head(&e, 1, &h, &n), SP_EINVAL);
}

static void
t_run_args(void)
{
	struct sp_gw_filter_opts o = { 0 };
	struct sp_gw_filter_envelope e = { .helo = "bad\r\nhelo" };
	struct sp_gw_filter_result r;

	/* Nothing configured: a pass with an empty verdict. */
	CHECK_RC(sp_gw_filter_run(&o, NULL, (const uint8_t *)"x", 1, &r), 0);
	CHECK(r.action == SP_GW_FILTER_PASS && r.verdict[0] == '\0');
	CHECK_RC(sp_gw_filter_run(NULL, NULL, NULL, 0, &r), SP_EINVAL);
	CHECK_RC(sp_gw_filter_run(&o, NULL, NULL, 1, &r), SP_EINVAL);
	/* A header-splitting envelope is refused before any connection. */
	o.rspamd = "127.0.0.1:1";
	CHECK_RC(sp_gw_filter_run(&o, &e, (const uint8_t *)"x", 1, &r),
	    SP_EINVAL);
	o.rspamd = NULL;
	o.clamd_virus_action = (enum sp_gw_filter_action)42;
	CHECK_RC(sp_gw_filter_run(&o, NULL, NULL, 0, &r), SP_EINVAL);
	o.clamd_virus_action = SP_GW_FILTER_REJECT;
	/* Addresses that cannot be connected to fail closed, then open. */
	o.clamd = "no-port";
	o.rspamd = "[::1]";
	CHECK_RC(sp_gw_filter_run(&o, NULL, (const uint8_t *)"x", 1, &r), 0);
	CHECK(r.action == SP_GW_FILTER_TEMPFAIL);
	CHECK(strcmp(r.verdict, "clamd: unavailable (bad address); "
	    "rspamd: unavailable (bad address)") == 0);
	o.fail_open = 1;
	o.rspamd = NULL;
	o.clamd = "/nonexistent/a/socket/path/that/is/much/too/long/for/a/"
	    "sockaddr_un/which/holds/one/hundred/and/eight/bytes/only/x.sock";
	CHECK_RC(sp_gw_filter_run(&o, NULL, (const uint8_t *)"x", 1, &r), 0);
	CHECK(r.action == SP_GW_FILTER_PASS);
	CHECK(strcmp(r.verdict, "clamd: unavailable (socket path too long)")
	    == 0);
	CHECK(strcmp(sp_gw_filter_action_name(SP_GW_FILTER_JUNK), "junk") == 0);
	CHECK(strcmp(sp_gw_filter_action_name((enum sp_gw_filter_action)9),
	    "?") == 0);
}

int
main(void)
{
	RUN(t_clamd_ok);
	RUN(t_clamd_found);
	RUN(t_clamd_errors);
	RUN(t_clamd_malformed);
	RUN(t_rspamd_ok);
	RUN(t_rspamd_until_eof);
	RUN(t_rspamd_error_status);
	RUN(t_rspamd_malformed);
	RUN(t_rspamd_limits);
	RUN(t_rspamd_head);
	RUN(t_run_args);
	return unit_done();
}
