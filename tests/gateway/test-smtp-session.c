/*
 * Unit tests of the SMTP session state machine, driven the way the server
 * drives it but with the outside work (recipient checks, delivery, TLS)
 * done here: every command, wrong-state refusals, pipelining, BDAT,
 * smuggling, limits, STARTTLS dropping pipelined clear text.  Each script
 * also runs one byte at a time.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "server/gateway/smtp_session.h"
#include "tests/unit.h"

struct drive {
	sp_smtp_session *s;
	char out[65536];
	size_t outlen;
	/* what the last delivered message looked like */
	char msg[8192];
	size_t msglen;
	char from[300];
	char rcpts[8][300];
	size_t nrcpts;
	int messages, tls_started, closed;
};

static void
collect(struct drive *d)
{
	size_t n;
	const uint8_t *o = sp_smtp_session_output(d->s, &n);

	if (n > sizeof(d->out) - 1 - d->outlen)
		n = sizeof(d->out) - 1 - d->outlen;
	memcpy(d->out + d->outlen, o, n);
	d->outlen += n;
	d->out[d->outlen] = '\0';
	sp_smtp_session_output_clear(d->s);
}

/* Recipients at ok.example exist; full.example is temporarily broken. */
static void
events(struct drive *d)
{
	for (;;) {
		enum sp_smtp_event ev = sp_smtp_session_run(d->s);
		struct sp_smtp_envelope e;
		const char *r;
		size_t i;

		collect(d);
		switch (ev) {
		case SP_SMTP_EV_MORE:
			return;
		case SP_SMTP_EV_CLOSE:
			d->closed = 1;
			return;
		case SP_SMTP_EV_RCPT:
			r = sp_smtp_session_pending_rcpt(d->s);
			if (strstr(r, "@ok.example"))
				sp_smtp_session_rcpt_done(d->s, 1, NULL);
			else if (strstr(r, "@full.example"))
				sp_smtp_session_rcpt_done(d->s, 0,
				    "452 4.2.2 Mailbox full");
			else
				sp_smtp_session_rcpt_done(d->s, 0,
				    "550 5.1.1 No such user");
			break;
		case SP_SMTP_EV_MESSAGE:
			sp_smtp_session_envelope(d->s, &e);
			memcpy(d->msg, e.msg, e.len);
			d->msglen = e.len;
			snprintf(d->from, sizeof(d->from), "%s", e.mail_from);
			d->nrcpts = e.nrcpts;
			for (i = 0; i < e.nrcpts && i < 8; i++)
				snprintf(d->rcpts[i], sizeof(d->rcpts[i]), "%s",
				    e.rcpts[i]);
			d->messages++;
			sp_smtp_session_message_done(d->s, "250 2.0.0 Stored");
			break;
		case SP_SMTP_EV_STARTTLS:
			d->tls_started++;
			sp_smtp_session_tls_started(d->s);
			break;
		}
	}
}

/* Runs a client script, whole or `step` bytes at a time. */
static void
drive(struct drive *d, const struct sp_smtp_session_opts *o, const char *in,
    size_t inlen, size_t step)
{
	size_t pos = 0;

	memset(d, 0, sizeof(*d));
	if (sp_smtp_session_create(o, &d->s) != 0)
		return;
	sp_smtp_session_greet(d->s);
	collect(d);
	while (pos < inlen && !d->closed) {
		size_t n = step && step < inlen - pos ? step : inlen - pos;

		if (n > SP_SMTP_INPUT_MAX)
			n = SP_SMTP_INPUT_MAX;
		if (sp_smtp_session_feed(d->s, (const uint8_t *)in + pos, n)
		    != 0)
			break;
		pos += n;
		events(d);
	}
	sp_smtp_session_destroy(d->s);
	d->s = NULL;
}

static const struct sp_smtp_session_opts opts = {
	.hostname = "mx.test",
	.max_size = 1000,
	.max_rcpts = 3,
	.tls_available = 1,
};

/* Both ways of feeding give the same replies. */
static void
script(struct drive *d, const struct sp_smtp_session_opts *o, const char *in)
{
	static struct drive bytewise;

	drive(&bytewise, o, in, strlen(in), 1);
	drive(d, o, in, strlen(in), 0);
	if (strcmp(bytewise.out, d->out) != 0)
		fprintf(stderr, "# bytewise replies differ:\n%s\n--\n%s\n",
		    bytewise.out, d->out);
	CHECK(strcmp(bytewise.out, d->out) == 0);
	CHECK(bytewise.messages == d->messages);
	CHECK(bytewise.msglen == d->msglen &&
	    memcmp(bytewise.msg, d->msg, d->msglen) == 0);
}

/* The replies, one code per line, joined by spaces ("220 250 ..."). */
static const char *
codes(const struct drive *d)
{
	static char c[4096];
	const char *p = d->out;
	size_t n = 0;

	c[0] = '\0';
	while (*p && n + 5 < sizeof(c)) {
		const char *eol = strstr(p, "\r\n");

		if (eol == NULL)
			break;
		/* multi-line replies count once */
		if (p[3] == ' ') {
			memcpy(c + n, p, 3);
			c[n + 3] = ' ';
			n += 4;
		}
		p = eol + 2;
	}
	if (n > 0)
		n--;
	c[n] = '\0';
	return c;
}

static void
t_basic(void)
{
	struct drive d;

	script(&d, &opts, "EHLO client.test\r\n"
	    "MAIL FROM:<alice@remote.test>\r\n"
	    "RCPT TO:<bob@ok.example>\r\n"
	    "DATA\r\n"
	    "Subject: hi\r\n\r\n..dot\r\nbody\r\n.\r\n"
	    "QUIT\r\n");
	CHECK(strcmp(codes(&d), "220 250 250 250 354 250 221") == 0);
	CHECK(d.messages == 1 && d.closed);
	CHECK(d.msglen == 27 &&
	    memcmp(d.msg, "Subject: hi\r\n\r\n.dot\r\nbody\r\n", 27) == 0);
	CHECK(strcmp(d.from, "alice@remote.test") == 0);
	CHECK(d.nrcpts == 1 && strcmp(d.rcpts[0], "bob@ok.example") == 0);
	CHECK(strstr(d.out, "250-PIPELINING\r\n") != NULL);
	CHECK(strstr(d.out, "250-SIZE 1000\r\n") != NULL);
	CHECK(strstr(d.out, "250-8BITMIME\r\n") != NULL);
	CHECK(strstr(d.out, "250-SMTPUTF8\r\n") != NULL);
	CHECK(strstr(d.out, "250-ENHANCEDSTATUSCODES\r\n") != NULL);
	CHECK(strstr(d.out, "250-STARTTLS\r\n") != NULL);
	CHECK(strstr(d.out, "250 CHUNKING\r\n") != NULL);
	CHECK(strncmp(d.out, "220 mx.test ESMTP", 17) == 0);
}

static void
t_helo(void)
{
	struct drive d;

	script(&d, &opts, "HELO client.test\r\n"
	    "MAIL FROM:<a@r.test> SIZE=10\r\n"
	    "MAIL FROM:<a@r.test>\r\n");
	/* HELO: no extensions, so no parameters */
	CHECK(strcmp(codes(&d), "220 250 555 250") == 0);
	CHECK(strstr(d.out, "PIPELINING") == NULL);
}

static void
t_wrong_state(void)
{
	struct drive d;

	script(&d, &opts, "MAIL FROM:<a@r.test>\r\n"
	    "RCPT TO:<bob@ok.example>\r\n"
	    "DATA\r\n"
	    "EHLO c\r\n"
	    "RCPT TO:<bob@ok.example>\r\n"
	    "DATA\r\n"
	    "MAIL FROM:<a@r.test>\r\n"
	    "MAIL FROM:<a@r.test>\r\n"
	    "DATA\r\n"
	    "STARTTLS\r\n"
	    "RSET\r\n"
	    "NOOP\r\n");
	CHECK(strcmp(codes(&d),
	    "220 503 503 503 250 503 503 250 503 554 503 250 250") == 0);
	CHECK(strstr(d.out, "503 5.5.1 Send EHLO or HELO first") != NULL);
	CHECK(strstr(d.out, "503 5.5.1 Nested MAIL command") != NULL);
	CHECK(strstr(d.out, "554 5.5.1 No valid recipients") != NULL);
}

static void
t_recipients(void)
{
	struct drive d;

	script(&d, &opts, "EHLO c\r\nMAIL FROM:<>\r\n"
	    "RCPT TO:<nobody@other.example>\r\n"
	    "RCPT TO:<x@full.example>\r\n"
	    "RCPT TO:<a@ok.example>\r\n"
	    "RCPT TO:<A@ok.example>\r\n"
	    "RCPT TO:<b@ok.example>\r\n"
	    "RCPT TO:<c@ok.example>\r\n"
	    "RCPT TO:<d@ok.example>\r\n"
	    "RCPT TO:<Postmaster>\r\n"
	    "RCPT TO:<a@ok.example> NOTIFY=NEVER\r\n"
	    "RCPT TO:<bad address>\r\n"
	    "DATA\r\nx\r\n.\r\n");
	CHECK(strcmp(codes(&d),
	    "220 250 250 550 452 250 250 250 250 452 452 555 501 354 250")
	    == 0);
	CHECK(strstr(d.out, "452 4.5.3 Too many recipients") != NULL);
	CHECK(strstr(d.out, "250 2.1.5 OK (duplicate)") != NULL);
	CHECK(d.nrcpts == 3 && d.from[0] == '\0');
}

static void
t_vrfy_expn_help(void)
{
	struct drive d;

	script(&d, &opts, "VRFY root\r\nEXPN staff\r\nHELP\r\nXYZZY\r\n"
	    "VRFY\r\nDATA now\r\n");
	CHECK(strcmp(codes(&d), "220 252 502 214 500 501 501") == 0);
	CHECK(strstr(d.out, "252 2.5.0 ") != NULL);
	CHECK(strstr(d.out, "502 5.5.1 ") != NULL);
}

static void
t_pipelining(void)
{
	struct drive d;

	/* Everything at once, including the next transaction after the
	 * final dot: replies in order, two messages. */
	script(&d, &opts, "EHLO c\r\nMAIL FROM:<a@r.test>\r\n"
	    "RCPT TO:<b@ok.example>\r\nRCPT TO:<c@nope.example>\r\nDATA\r\n"
	    "one\r\n.\r\nMAIL FROM:<a@r.test>\r\nRCPT TO:<b@ok.example>\r\n"
	    "DATA\r\ntwo\r\n.\r\nQUIT\r\n");
	CHECK(strcmp(codes(&d),
	    "220 250 250 250 550 354 250 250 250 354 250 221") == 0);
	CHECK(d.messages == 2 && d.msglen == 5 &&
	    memcmp(d.msg, "two\r\n", 5) == 0);
}

static void
t_bdat(void)
{
	struct drive d;

	script(&d, &opts, "EHLO c\r\nMAIL FROM:<a@r.test>\r\n"
	    "RCPT TO:<b@ok.example>\r\n"
	    "BDAT 7\r\nA: b\r\n\r"
	    "BDAT 10\r\n\n.\r\nbody\r\n"
	    "BDAT 0 LAST\r\n"
	    "QUIT\r\n");
	CHECK(strcmp(codes(&d), "220 250 250 250 250 250 250 221") == 0);
	CHECK(d.messages == 1 && d.msglen == 17 &&
	    memcmp(d.msg, "A: b\r\n\r\n.\r\nbody\r\n", 17) == 0);
	/* DATA after BDAT is refused; a misplaced BDAT's octets are
	 * skipped, not read as commands */
	script(&d, &opts, "EHLO c\r\n"
	    "BDAT 6\r\nQUIT\r\n"
	    "MAIL FROM:<a@r.test>\r\nRCPT TO:<b@ok.example>\r\n"
	    "BDAT 3\r\nabc"
	    "DATA\r\n"
	    "BDAT 2 LAST\r\n\r\n"
	    "NOOP\r\n");
	CHECK(strcmp(codes(&d), "220 250 503 250 250 250 503 250 250") == 0);
	CHECK(d.messages == 1 && d.msglen == 5 && !d.closed);
	/* a bare LF inside a chunk fails the transaction, not the session */
	script(&d, &opts, "EHLO c\r\nMAIL FROM:<a@r.test>\r\n"
	    "RCPT TO:<b@ok.example>\r\n"
	    "BDAT 4 LAST\r\na\nb\n"
	    "RCPT TO:<b@ok.example>\r\nNOOP\r\n");
	CHECK(strcmp(codes(&d), "220 250 250 250 554 503 250") == 0);
	CHECK(d.messages == 0);
	/* an unparsable BDAT loses the framing: closed */
	script(&d, &opts, "EHLO c\r\nBDAT many\r\nNOOP\r\n");
	CHECK(strcmp(codes(&d), "220 250 501") == 0 && d.closed);
}

static void
t_smuggling(void)
{
	struct drive d;

	/* <LF>.<LF> and <CR>.<CR>: refused, connection closed, the smuggled
	 * MAIL never seen as a command */
	script(&d, &opts, "EHLO c\r\nMAIL FROM:<a@r.test>\r\n"
	    "RCPT TO:<b@ok.example>\r\nDATA\r\n"
	    "x\r\n\n.\nMAIL FROM:<evil@r.test>\r\n"
	    "RCPT TO:<b@ok.example>\r\nDATA\r\nspoof\r\n.\r\n");
	CHECK(strcmp(codes(&d), "220 250 250 250 354 554") == 0);
	CHECK(strstr(d.out, "554 5.5.2 Bare LF") != NULL);
	CHECK(d.closed && d.messages == 0);
	script(&d, &opts, "EHLO c\r\nMAIL FROM:<a@r.test>\r\n"
	    "RCPT TO:<b@ok.example>\r\nDATA\r\nx\r\n.\rQUIT\r\n");
	CHECK(strcmp(codes(&d), "220 250 250 250 354 554") == 0);
	CHECK(strstr(d.out, "554 5.5.2 Bare CR") != NULL);
	/* bare LF in a command line: refused, the session goes on */
	script(&d, &opts, "EHLO c\nNOOP\r\n");
	CHECK(strcmp(codes(&d), "220 500 250") == 0);
}

static void
t_size(void)
{
	struct drive d;
	static char in[4096];
	size_t n;

	script(&d, &opts, "EHLO c\r\nMAIL FROM:<a@r.test> SIZE=1001\r\n"
	    "MAIL FROM:<a@r.test> SIZE=1000\r\n");
	CHECK(strcmp(codes(&d), "220 250 552 250") == 0);
	n = (size_t)snprintf(in, sizeof(in), "EHLO c\r\nMAIL FROM:<a@r.test>"
	    "\r\nRCPT TO:<b@ok.example>\r\nDATA\r\n");
	memset(in + n, 'x', 1200);
	n += 1200;
	n += (size_t)snprintf(in + n, sizeof(in) - n, "\r\n.\r\nNOOP\r\n");
	script(&d, &opts, in);
	CHECK(strcmp(codes(&d), "220 250 250 250 354 552 250") == 0);
	CHECK(strstr(d.out, "552 5.3.4 ") != NULL && d.messages == 0);
	/* BDAT over the limit */
	n = (size_t)snprintf(in, sizeof(in), "EHLO c\r\nMAIL FROM:<a@r.test>"
	    "\r\nRCPT TO:<b@ok.example>\r\nBDAT 1001 LAST\r\n");
	memset(in + n, 'x', 1001);
	n += 1001;
	snprintf(in + n, sizeof(in) - n, "NOOP\r\n");
	script(&d, &opts, in);
	CHECK(strcmp(codes(&d), "220 250 250 250 552 250") == 0);
}

static void
t_long_line(void)
{
	struct drive d;
	static char in[2048];

	memcpy(in, "NOOP ", 5);
	memset(in + 5, 'x', 600);
	strcpy(in + 605, "\r\nNOOP\r\n");
	script(&d, &opts, in);
	CHECK(strcmp(codes(&d), "220 500 250") == 0);
	CHECK(strstr(d.out, "500 5.5.6 Line too long") != NULL);
}

static void
t_utf8(void)
{
	struct drive d;

	script(&d, &opts, "EHLO c\r\n"
	    "MAIL FROM:<j\xc3\xb6rg@r.test>\r\n"
	    "MAIL FROM:<j\xc3\xb6rg@r.test> SMTPUTF8 BODY=8BITMIME\r\n"
	    "RCPT TO:<b@ok.example>\r\n"
	    "DATA\r\nSubject: gr\xc3\xbc\xc3\x9f" "e\r\n.\r\n");
	CHECK(strcmp(codes(&d), "220 250 553 250 250 354 250") == 0);
	CHECK(strstr(d.out, "553 5.6.7 ") != NULL);
	CHECK(d.messages == 1 && strcmp(d.from, "j\xc3\xb6rg@r.test") == 0);
	/* without SMTPUTF8 a UTF-8 recipient is refused */
	script(&d, &opts, "EHLO c\r\nMAIL FROM:<a@r.test>\r\n"
	    "RCPT TO:<j\xc3\xb6rg@ok.example>\r\n");
	CHECK(strcmp(codes(&d), "220 250 250 553") == 0);
}

static void
t_starttls(void)
{
	struct drive d;

	static const char inject[] = "EHLO c\r\nSTARTTLS\r\n"
	    "MAIL FROM:<inject@r.test>\r\n";

	/* The MAIL pipelined after STARTTLS in clear text is dropped (fed
	 * at once: byte by byte it would arrive after the handshake). */
	drive(&d, &opts, inject, strlen(inject), 0);
	CHECK(strcmp(codes(&d), "220 250 220") == 0);
	CHECK(d.tls_started == 1);
	script(&d, &opts, "EHLO c\r\nSTARTTLS\r\n");
	CHECK(d.tls_started == 1);
	{
		struct sp_smtp_session_opts no = opts;

		no.tls_available = 0;
		script(&d, &no, "EHLO c\r\nSTARTTLS\r\n");
		CHECK(strcmp(codes(&d), "220 250 502") == 0);
		CHECK(strstr(d.out, "STARTTLS\r\n") == NULL ||
		    strstr(d.out, "250-STARTTLS") == NULL);
	}
}

/* Driving by hand: after TLS, the next EHLO has no STARTTLS and a second
 * STARTTLS is refused. */
static void
t_after_tls(void)
{
	struct drive d;
	static const char a[] = "EHLO c\r\nSTARTTLS\r\n";
	static const char b[] = "MAIL FROM:<a@r.test>\r\nEHLO c\r\nSTARTTLS\r\n";

	memset(&d, 0, sizeof(d));
	CHECK_RC(sp_smtp_session_create(&opts, &d.s), 0);
	sp_smtp_session_greet(d.s);
	CHECK_RC(sp_smtp_session_feed(d.s, (const uint8_t *)a, strlen(a)), 0);
	events(&d);
	CHECK(d.tls_started == 1 && sp_smtp_session_tls_active(d.s));
	d.outlen = 0;
	CHECK_RC(sp_smtp_session_feed(d.s, (const uint8_t *)b, strlen(b)), 0);
	events(&d);
	CHECK(strcmp(codes(&d), "503 250 503") == 0);
	CHECK(strstr(d.out, "STARTTLS") == NULL);
	sp_smtp_session_destroy(d.s);
}

static void
t_errors_close(void)
{
	struct drive d;
	char in[1024];
	int i;

	in[0] = '\0';
	for (i = 0; i < 22; i++)
		strcat(in, "BOGUS\r\n");
	script(&d, &opts, in);
	CHECK(d.closed);
	CHECK(strstr(d.out, "421 4.7.0 Too many errors") != NULL);
}

static void
t_input_cap(void)
{
	sp_smtp_session *s;
	static uint8_t big[SP_SMTP_INPUT_MAX];

	CHECK_RC(sp_smtp_session_create(&opts, &s), 0);
	memset(big, 'a', sizeof(big));
	CHECK_RC(sp_smtp_session_feed(s, big, sizeof(big)), 0);
	CHECK_RC(sp_smtp_session_feed(s, big, 1), SP_SMTP_EFULL);
	/* one over-long line: reported, dropped, room again */
	CHECK(sp_smtp_session_run(s) == SP_SMTP_EV_MORE);
	CHECK(sp_smtp_session_pending_input(s) == 0);
	CHECK_RC(sp_smtp_session_feed(s, big, 1), 0);
	sp_smtp_session_destroy(s);
}

int
main(void)
{
	RUN(t_basic);
	RUN(t_helo);
	RUN(t_wrong_state);
	RUN(t_recipients);
	RUN(t_vrfy_expn_help);
	RUN(t_pipelining);
	RUN(t_bdat);
	RUN(t_smuggling);
	RUN(t_size);
	RUN(t_long_line);
	RUN(t_utf8);
	RUN(t_starttls);
	RUN(t_after_tls);
	RUN(t_errors_close);
	RUN(t_input_cap);
	return unit_done();
}
