/*
 * The SMTP session state machine (see smtp_session.h).
 *
 * Commands go through one table: for each verb, the states it is allowed
 * in, the reply when it is not, and a handler.  Handlers validate, reply
 * and change state through enter(); the ones that need outside work
 * (RCPT, end of message, STARTTLS) park the session in a WAIT state and
 * return an event.
 *
 * Replies follow RFC 5321 4.2/4.3 and carry RFC 3463 enhanced codes (not
 * in the greeting and the EHLO reply, RFC 2034).  VRFY answers 252 without
 * looking (RFC 5321 7.3: a site that disables VRFY must not appear to have
 * verified anything, and 252 cannot be used to enumerate accounts); EXPN,
 * which is optional, is not implemented: 502.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "crypto/error.h"
#include "server/gateway/smtp_session.h"

#define DEFAULT_MAX_SIZE (25u * 1024 * 1024)
#define DEFAULT_MAX_RCPTS 100
#define DEFAULT_MAX_ERRORS 20
#define MSG_INITIAL (64u * 1024)

enum state {
	ST_INIT,        /* greeted, no HELO/EHLO yet */
	ST_READY,       /* HELO/EHLO done, no transaction */
	ST_MAIL,        /* MAIL accepted, no recipient yet */
	ST_RCPT,        /* at least one recipient */
	ST_DATA,        /* reading DATA */
	ST_BDAT,        /* reading a BDAT chunk */
	ST_WAIT_RCPT,   /* recipient being checked */
	ST_WAIT_MSG,    /* message being delivered */
	ST_WAIT_TLS,    /* TLS handshake */
	ST_CLOSED,
};

#define M(st) (1u << (st))
#define CMD_STATES (M(ST_INIT) | M(ST_READY) | M(ST_MAIL) | M(ST_RCPT))

enum { EV_CONTINUE = -1 };

struct sp_smtp_session {
	struct sp_smtp_session_opts o;
	char hostname[SP_SMTP_DOMAIN_MAX + 1];
	enum state state;
	int esmtp, tls;
	unsigned errors, messages;

	struct sp_smtp_lines lines;
	uint8_t in[SP_SMTP_INPUT_MAX];
	size_t inpos, inlen;

	uint8_t *out;
	size_t outlen, outcap;

	struct sp_smtp_cmd cmd;
	char helo[SP_SMTP_DOMAIN_MAX + 1];

	/* The transaction. */
	char mail_from[SP_SMTP_PATH_MAX + 1];
	int smtputf8, body8bit;
	char **rcpts;
	size_t nrcpts;
	char pending[SP_SMTP_PATH_MAX + 1];
	uint8_t *msg;
	size_t msglen, msgcap;
	struct sp_smtp_data data;
	int chunking;           /* BDAT used in this transaction */
	uint64_t bdat_left;
	int bdat_last;
	const char *bdat_fail;  /* reply for the chunk being discarded */
	int bdat_misplaced;     /* refused for the state it came in */
	enum state bdat_prev;   /* state before a misplaced BDAT */
};

struct command {
	unsigned states;        /* where it is allowed */
	const char *refusal;    /* reply elsewhere */
	int (*handler)(sp_smtp_session *s);
};

/* ---- output ---- */

static void
out_append(sp_smtp_session *s, const char *text, size_t n)
{
	if (s->outlen + n > s->outcap) {
		size_t cap = s->outcap ? s->outcap : 512;
		uint8_t *p;

		while (cap < s->outlen + n)
			cap *= 2;
		/* Out of memory: the reply is lost and the client times
		 * out, which is all that can be done here. */
		if ((p = realloc(s->out, cap)) == NULL)
			return;
		s->out = p;
		s->outcap = cap;
	}
	memcpy(s->out + s->outlen, text, n);
	s->outlen += n;
}

void
sp_smtp_session_reply(sp_smtp_session *s, const char *line)
{
	out_append(s, line, strlen(line));
	out_append(s, "\r\n", 2);
}

static void
replyf(sp_smtp_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
replyf(sp_smtp_session *s, const char *fmt, ...)
{
	char line[600];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	sp_smtp_session_reply(s, line);
}

/* A refused command: counts towards the error limit. */
static int
refuse(sp_smtp_session *s, const char *line)
{
	sp_smtp_session_reply(s, line);
	if (++s->errors >= s->o.max_errors) {
		sp_smtp_session_reply(s,
		    "421 4.7.0 Too many errors, closing connection");
		s->state = ST_CLOSED;
		return SP_SMTP_EV_CLOSE;
	}
	return EV_CONTINUE;
}

const uint8_t *
sp_smtp_session_output(const sp_smtp_session *s, size_t *len_r)
{
	*len_r = s->outlen;
	return s->out;
}

void
sp_smtp_session_output_clear(sp_smtp_session *s)
{
	s->outlen = 0;
}

/* ---- the transaction ---- */

static void
msg_wipe(sp_smtp_session *s)
{
	if (s->msg != NULL) {
		sodium_memzero(s->msg, s->msgcap);
		free(s->msg);
	}
	s->msg = NULL;
	s->msglen = s->msgcap = 0;
}

/* Room for n more bytes, never past the size limit.  Growing copies and
 * wipes the old buffer: realloc could leave plaintext in freed memory. */
static int
msg_reserve(sp_smtp_session *s, size_t n)
{
	size_t want = s->msglen + n, cap;
	uint8_t *p;

	if (want > s->o.max_size)
		want = (size_t)s->o.max_size;
	if (want <= s->msgcap)
		return 0;
	cap = s->msgcap ? s->msgcap : MSG_INITIAL;
	while (cap < want)
		cap *= 2;
	if (cap > s->o.max_size)
		cap = (size_t)s->o.max_size;
	if ((p = malloc(cap)) == NULL)
		return SP_ENOMEM;
	if (s->msg != NULL) {
		memcpy(p, s->msg, s->msglen);
		sodium_memzero(s->msg, s->msgcap);
		free(s->msg);
	}
	s->msg = p;
	s->msgcap = cap;
	return 0;
}

static void
transaction_reset(sp_smtp_session *s)
{
	size_t i;

	msg_wipe(s);
	for (i = 0; i < s->nrcpts; i++)
		free(s->rcpts[i]);
	free(s->rcpts);
	s->rcpts = NULL;
	s->nrcpts = 0;
	s->mail_from[0] = '\0';
	s->smtputf8 = s->body8bit = 0;
	s->chunking = 0;
	s->bdat_fail = NULL;
	if (s->state != ST_CLOSED)
		s->state = s->helo[0] ? ST_READY : ST_INIT;
}

/* ---- handlers ---- */

static int
h_helo(sp_smtp_session *s)
{
	transaction_reset(s);
	memcpy(s->helo, s->cmd.helo, sizeof(s->helo));
	s->esmtp = s->cmd.verb == SP_SMTP_EHLO;
	s->state = ST_READY;
	if (!s->esmtp) {
		replyf(s, "250 %s", s->hostname);
		return EV_CONTINUE;
	}
	replyf(s, "250-%s", s->hostname);
	sp_smtp_session_reply(s, "250-PIPELINING");
	replyf(s, "250-SIZE %llu", (unsigned long long)s->o.max_size);
	sp_smtp_session_reply(s, "250-8BITMIME");
	sp_smtp_session_reply(s, "250-SMTPUTF8");
	sp_smtp_session_reply(s, "250-ENHANCEDSTATUSCODES");
	if (s->o.tls_available && !s->tls)
		sp_smtp_session_reply(s, "250-STARTTLS");
	sp_smtp_session_reply(s, "250 CHUNKING");
	return EV_CONTINUE;
}

static int
h_mail(sp_smtp_session *s)
{
	const struct sp_smtp_cmd *c = &s->cmd;

	if (!s->esmtp && (c->has_size || c->body || c->smtputf8))
		return refuse(s, "555 5.5.4 MAIL parameters need EHLO");
	if (c->has_size && c->size > s->o.max_size)
		return refuse(s, "552 5.3.4 Message size exceeds fixed "
		    "maximum message size");
	if (c->path_utf8 && !c->smtputf8)
		return refuse(s, "553 5.6.7 Non-ASCII address needs "
		    "MAIL FROM:<...> SMTPUTF8");
	memcpy(s->mail_from, c->path, sizeof(s->mail_from));
	s->smtputf8 = c->smtputf8;
	s->body8bit = c->body == SP_SMTP_BODY_8BITMIME;
	s->state = ST_MAIL;
	sp_smtp_session_reply(s, "250 2.1.0 Sender OK");
	return EV_CONTINUE;
}

static int
h_rcpt(sp_smtp_session *s)
{
	const struct sp_smtp_cmd *c = &s->cmd;
	size_t i;

	if (c->path_utf8 && !s->smtputf8)
		return refuse(s, "553 5.6.7 Non-ASCII address needs "
		    "MAIL FROM:<...> SMTPUTF8");
	for (i = 0; i < s->nrcpts; i++) {
		/* Named twice: one delivery, not two. */
		if (strcasecmp(s->rcpts[i], c->path) == 0) {
			sp_smtp_session_reply(s, "250 2.1.5 OK (duplicate)");
			return EV_CONTINUE;
		}
	}
	if (s->nrcpts >= s->o.max_rcpts) {
		/* Not an error of the client's: RFC 5321 4.5.3.1.10. */
		sp_smtp_session_reply(s, "452 4.5.3 Too many recipients");
		return EV_CONTINUE;
	}
	memcpy(s->pending, c->path, sizeof(s->pending));
	s->state = ST_WAIT_RCPT;
	return SP_SMTP_EV_RCPT;
}

static int
h_data(sp_smtp_session *s)
{
	if (s->chunking)
		return refuse(s, "503 5.5.1 DATA after BDAT");
	if (s->nrcpts == 0)
		return refuse(s, "554 5.5.1 No valid recipients");
	if (msg_reserve(s, MSG_INITIAL) != 0) {
		sp_smtp_session_reply(s, "451 4.3.0 Out of memory");
		return EV_CONTINUE;
	}
	sp_smtp_data_init(&s->data, SP_SMTP_DATA_DOT, s->o.max_size);
	s->state = ST_DATA;
	sp_smtp_session_reply(s, "354 End data with <CR><LF>.<CR><LF>");
	return EV_CONTINUE;
}

/*
 * BDAT is accepted in every command state because its chunk must be read
 * whatever happens (RFC 3030 4.2): a refused BDAT is refused after its
 * octets, or the data would be read as commands.
 */
static int
h_bdat(sp_smtp_session *s)
{
	s->bdat_left = s->cmd.chunk;
	s->bdat_last = s->cmd.last;
	s->bdat_fail = NULL;
	s->bdat_prev = s->state;
	if (s->state == ST_INIT || s->state == ST_READY)
		s->bdat_fail = "503 5.5.1 Need MAIL command";
	else if (s->nrcpts == 0)
		s->bdat_fail = "554 5.5.1 No valid recipients";
	s->bdat_misplaced = s->bdat_fail != NULL;
	if (s->bdat_fail == NULL && !s->chunking) {
		sp_smtp_data_init(&s->data, SP_SMTP_DATA_RAW, s->o.max_size);
		s->chunking = 1;
	}
	s->state = ST_BDAT;
	return EV_CONTINUE;
}

static int
h_rset(sp_smtp_session *s)
{
	transaction_reset(s);
	sp_smtp_session_reply(s, "250 2.0.0 OK");
	return EV_CONTINUE;
}

static int
h_noop(sp_smtp_session *s)
{
	sp_smtp_session_reply(s, "250 2.0.0 OK");
	return EV_CONTINUE;
}

static int
h_help(sp_smtp_session *s)
{
	sp_smtp_session_reply(s, "214 2.0.0 See RFC 5321; "
	    "commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT STARTTLS");
	return EV_CONTINUE;
}

static int
h_quit(sp_smtp_session *s)
{
	replyf(s, "221 2.0.0 %s closing connection", s->hostname);
	s->state = ST_CLOSED;
	return SP_SMTP_EV_CLOSE;
}

static int
h_vrfy(sp_smtp_session *s)
{
	sp_smtp_session_reply(s, "252 2.5.0 Cannot VRFY user, but will "
	    "accept message and attempt delivery");
	return EV_CONTINUE;
}

static int
h_expn(sp_smtp_session *s)
{
	return refuse(s, "502 5.5.1 EXPN not available");
}

static int
h_starttls(sp_smtp_session *s)
{
	if (s->tls)
		return refuse(s, "503 5.5.1 TLS already active");
	if (!s->o.tls_available)
		return refuse(s, "502 5.5.1 STARTTLS not available");
	sp_smtp_session_reply(s, "220 2.0.0 Ready to start TLS");
	/* Whatever the client pipelined after STARTTLS arrived in clear
	 * text and must not be read as if it came over TLS (CVE-2011-0411
	 * and its many siblings). */
	s->inpos = s->inlen = 0;
	s->state = ST_WAIT_TLS;
	return SP_SMTP_EV_STARTTLS;
}

static int
h_unknown(sp_smtp_session *s)
{
	return refuse(s, "500 5.5.2 Command not recognized");
}

static const struct command commands[SP_SMTP_NVERBS] = {
	[SP_SMTP_HELO] = { CMD_STATES, NULL, h_helo },
	[SP_SMTP_EHLO] = { CMD_STATES, NULL, h_helo },
	[SP_SMTP_MAIL] = { M(ST_READY),
	    "503 5.5.1 Nested MAIL command", h_mail },
	[SP_SMTP_RCPT] = { M(ST_MAIL) | M(ST_RCPT),
	    "503 5.5.1 Need MAIL command", h_rcpt },
	[SP_SMTP_DATA] = { M(ST_MAIL) | M(ST_RCPT),
	    "503 5.5.1 Need MAIL command", h_data },
	[SP_SMTP_BDAT] = { CMD_STATES, NULL, h_bdat },
	[SP_SMTP_RSET] = { CMD_STATES, NULL, h_rset },
	[SP_SMTP_NOOP] = { CMD_STATES, NULL, h_noop },
	[SP_SMTP_QUIT] = { CMD_STATES, NULL, h_quit },
	[SP_SMTP_VRFY] = { CMD_STATES, NULL, h_vrfy },
	[SP_SMTP_EXPN] = { CMD_STATES, NULL, h_expn },
	[SP_SMTP_HELP] = { CMD_STATES, NULL, h_help },
	[SP_SMTP_STARTTLS] = { M(ST_INIT) | M(ST_READY),
	    "503 5.5.1 STARTTLS inside a mail transaction", h_starttls },
	[SP_SMTP_UNKNOWN] = { CMD_STATES, NULL, h_unknown },
};

/* Verbs that need HELO/EHLO first (RFC 5321 4.1.4 lets a server ask). */
static int
needs_helo(enum sp_smtp_verb v)
{
	return v == SP_SMTP_MAIL || v == SP_SMTP_RCPT || v == SP_SMTP_DATA;
}

static int
parse_refusal(sp_smtp_session *s, int rc)
{
	int mail = s->cmd.verb == SP_SMTP_MAIL;

	switch (rc) {
	case SP_SMTP_EPATH:
		return refuse(s, mail ? "501 5.1.7 Bad sender address syntax" :
		    "501 5.1.3 Bad recipient address syntax");
	case SP_SMTP_EUTF8:
		return refuse(s, "501 5.6.7 Invalid UTF-8 in address");
	case SP_SMTP_EPARAM:
		return refuse(s, "555 5.5.4 Unsupported or malformed "
		    "parameter");
	default:
		break;
	}
	switch (s->cmd.verb) {
	case SP_SMTP_HELO:
	case SP_SMTP_EHLO:
		return refuse(s, "501 5.5.4 Syntax: EHLO hostname");
	case SP_SMTP_MAIL:
		return refuse(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
	case SP_SMTP_RCPT:
		return refuse(s, "501 5.5.4 Syntax: RCPT TO:<address>");
	case SP_SMTP_VRFY:
	case SP_SMTP_EXPN:
		return refuse(s, "501 5.5.4 Argument required");
	case SP_SMTP_BDAT:
		/* The chunk's length is unknown, so is where the next
		 * command starts: nothing more can be read. */
		sp_smtp_session_reply(s, "501 5.5.4 Syntax: BDAT size [LAST]; "
		    "closing connection");
		s->state = ST_CLOSED;
		return SP_SMTP_EV_CLOSE;
	default:
		return refuse(s, "501 5.5.4 No arguments allowed");
	}
}

static int
run_command(sp_smtp_session *s)
{
	const struct command *c;
	size_t used, linelen;
	int rc;

	rc = sp_smtp_lines_next(&s->lines, s->in + s->inpos,
	    s->inlen - s->inpos, &used, &linelen);
	s->inpos += used;
	switch (rc) {
	case 0:
		break;
	case SP_SMTP_MORE:
		return used > 0 ? EV_CONTINUE : SP_SMTP_EV_MORE;
	case SP_SMTP_ELONG:
		return refuse(s, "500 5.5.6 Line too long");
	default:
		return refuse(s, "500 5.5.2 Bare CR or LF in command line");
	}
	rc = sp_smtp_cmd_parse((const char *)s->in + s->inpos - used, linelen,
	    &s->cmd);
	if (rc != 0)
		return parse_refusal(s, rc);
	c = &commands[s->cmd.verb];
	if (s->state == ST_INIT && needs_helo(s->cmd.verb))
		return refuse(s, "503 5.5.1 Send EHLO or HELO first");
	if (!(c->states & M(s->state)))
		return refuse(s, c->refusal);
	return c->handler(s);
}

/* Message bytes into the buffer; the reader never writes past max_size. */
static int
data_feed(sp_smtp_session *s, size_t avail, size_t *used_r)
{
	size_t outlen;
	int rc;

	*used_r = 0;
	if (msg_reserve(s, avail) != 0)
		return SP_ENOMEM;
	rc = sp_smtp_data_feed(&s->data, s->in + s->inpos, avail,
	    s->msg + s->msglen, used_r, &outlen);
	s->msglen += outlen;
	s->inpos += *used_r;
	return rc;
}

static int
smuggling(sp_smtp_session *s, int rc)
{
	sp_smtp_session_reply(s, rc == SP_SMTP_EBARELF ?
	    "554 5.5.2 Bare LF in message data (not accepted: SMTP "
	    "smuggling); closing connection" :
	    "554 5.5.2 Bare CR in message data (not accepted: SMTP "
	    "smuggling); closing connection");
	s->state = ST_CLOSED;
	return SP_SMTP_EV_CLOSE;
}

static int
run_data(sp_smtp_session *s)
{
	size_t used;
	int rc;

	rc = data_feed(s, s->inlen - s->inpos, &used);
	if (rc == SP_SMTP_MORE)
		return SP_SMTP_EV_MORE;
	if (rc == SP_ENOMEM) {
		sp_smtp_session_reply(s, "451 4.3.0 Out of memory; closing");
		s->state = ST_CLOSED;
		return SP_SMTP_EV_CLOSE;
	}
	if (rc != 0)
		return smuggling(s, rc);
	if (s->data.error == SP_SMTP_ESIZE) {
		transaction_reset(s);
		sp_smtp_session_reply(s, "552 5.3.4 Message size exceeds "
		    "fixed maximum message size");
		return EV_CONTINUE;
	}
	s->state = ST_WAIT_MSG;
	return SP_SMTP_EV_MESSAGE;
}

/* The end of a BDAT chunk: its reply, or the message. */
static int
bdat_end(sp_smtp_session *s)
{
	if (s->bdat_fail == NULL && s->data.error == SP_SMTP_ESIZE)
		s->bdat_fail = "552 5.3.4 Message size exceeds fixed "
		    "maximum message size";
	if (s->bdat_fail == NULL && s->bdat_last &&
	    sp_smtp_data_finish(&s->data) != 0)
		s->bdat_fail = "554 5.6.0 Bare CR at the end of the message";
	if (s->bdat_misplaced) {
		/* Not counted as an error: a client pipelining the chunks
		 * of a failed transaction sends several of these. */
		s->state = s->bdat_prev;
		sp_smtp_session_reply(s, s->bdat_fail);
		return EV_CONTINUE;
	}
	if (s->bdat_fail != NULL) {
		/* A failed chunk fails the transaction (RFC 3030 2). */
		const char *fail = s->bdat_fail;

		transaction_reset(s);
		sp_smtp_session_reply(s, fail);
		return EV_CONTINUE;
	}
	if (!s->bdat_last) {
		replyf(s, "250 2.0.0 %llu octets received",
		    (unsigned long long)s->cmd.chunk);
		s->state = ST_RCPT;
		return EV_CONTINUE;
	}
	s->state = ST_WAIT_MSG;
	return SP_SMTP_EV_MESSAGE;
}

static int
run_bdat(sp_smtp_session *s)
{
	size_t avail = s->inlen - s->inpos, used;
	int rc;

	if (avail > s->bdat_left)
		avail = (size_t)s->bdat_left;
	if (avail == 0 && s->bdat_left > 0)
		return SP_SMTP_EV_MORE;
	if (s->bdat_fail != NULL) {
		s->inpos += avail;
		s->bdat_left -= avail;
	} else {
		rc = data_feed(s, avail, &used);
		s->bdat_left -= used;
		if (rc == SP_ENOMEM) {
			s->bdat_fail = "451 4.3.0 Out of memory";
		} else if (rc != SP_SMTP_MORE) {
			/* The chunk frames the message, so the session can go
			 * on; the message, though, is not one we store. */
			s->bdat_fail = "554 5.6.0 Bare CR or LF in message "
			    "data (not accepted)";
		}
	}
	if (s->bdat_left > 0)
		return EV_CONTINUE;
	return bdat_end(s);
}

enum sp_smtp_event
sp_smtp_session_run(sp_smtp_session *s)
{
	int ev;

	for (;;) {
		switch (s->state) {
		case ST_WAIT_RCPT:
			return SP_SMTP_EV_RCPT;
		case ST_WAIT_MSG:
			return SP_SMTP_EV_MESSAGE;
		case ST_WAIT_TLS:
			return SP_SMTP_EV_STARTTLS;
		case ST_CLOSED:
			return SP_SMTP_EV_CLOSE;
		case ST_DATA:
			ev = run_data(s);
			break;
		case ST_BDAT:
			ev = run_bdat(s);
			break;
		default:
			ev = run_command(s);
			break;
		}
		if (ev != EV_CONTINUE)
			break;
	}
	/* Keep the unread tail at the front so feed() finds room. */
	if (s->inpos == s->inlen) {
		s->inpos = s->inlen = 0;
	} else if (s->inpos > 0) {
		memmove(s->in, s->in + s->inpos, s->inlen - s->inpos);
		s->inlen -= s->inpos;
		s->inpos = 0;
	}
	return (enum sp_smtp_event)ev;
}

/* ---- the rest of the API ---- */

int
sp_smtp_session_create(const struct sp_smtp_session_opts *o,
    sp_smtp_session **s_r)
{
	sp_smtp_session *s;

	*s_r = NULL;
	if (o->hostname == NULL || strlen(o->hostname) > SP_SMTP_DOMAIN_MAX)
		return SP_EINVAL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return SP_ENOMEM;
	s->o = *o;
	if (s->o.max_size == 0)
		s->o.max_size = DEFAULT_MAX_SIZE;
	if (s->o.max_rcpts == 0)
		s->o.max_rcpts = DEFAULT_MAX_RCPTS;
	if (s->o.max_errors == 0)
		s->o.max_errors = DEFAULT_MAX_ERRORS;
	/* A line can never need more than the input buffer. */
	if (s->o.line_margin > SP_SMTP_INPUT_MAX / 2)
		s->o.line_margin = SP_SMTP_INPUT_MAX / 2;
	memcpy(s->hostname, o->hostname, strlen(o->hostname) + 1);
	s->o.hostname = s->hostname;
	sp_smtp_lines_init(&s->lines, s->o.line_margin);
	s->state = ST_INIT;
	*s_r = s;
	return 0;
}

void
sp_smtp_session_destroy(sp_smtp_session *s)
{
	if (s == NULL)
		return;
	s->state = ST_CLOSED;
	transaction_reset(s);
	sodium_memzero(s->in, sizeof(s->in));
	free(s->out);
	free(s);
}

void
sp_smtp_session_greet(sp_smtp_session *s)
{
	replyf(s, "220 %s ESMTP sealpost", s->hostname);
}

int
sp_smtp_session_feed(sp_smtp_session *s, const uint8_t *buf, size_t n)
{
	if (n > sizeof(s->in) - s->inlen)
		return SP_SMTP_EFULL;
	memcpy(s->in + s->inlen, buf, n);
	s->inlen += n;
	return 0;
}

size_t
sp_smtp_session_pending_input(const sp_smtp_session *s)
{
	return s->inlen - s->inpos;
}

const char *
sp_smtp_session_pending_rcpt(const sp_smtp_session *s)
{
	return s->pending;
}

void
sp_smtp_session_rcpt_done(sp_smtp_session *s, int ok, const char *reply)
{
	char **r;
	char *copy;

	if (s->state != ST_WAIT_RCPT)
		return;
	s->state = s->nrcpts > 0 ? ST_RCPT : ST_MAIL;
	if (!ok) {
		(void)refuse(s, reply);
		return;
	}
	if ((copy = strdup(s->pending)) == NULL ||
	    (r = realloc(s->rcpts, (s->nrcpts + 1) * sizeof(*r))) == NULL) {
		free(copy);
		sp_smtp_session_reply(s, "451 4.3.0 Out of memory");
		return;
	}
	r[s->nrcpts++] = copy;
	s->rcpts = r;
	s->state = ST_RCPT;
	sp_smtp_session_reply(s, reply ? reply : "250 2.1.5 OK");
}

void
sp_smtp_session_envelope(const sp_smtp_session *s,
    struct sp_smtp_envelope *e)
{
	e->helo = s->helo;
	e->mail_from = s->mail_from;
	e->rcpts = (const char *const *)s->rcpts;
	e->nrcpts = s->nrcpts;
	e->msg = s->msg;
	e->len = s->msglen;
	e->smtputf8 = s->smtputf8;
	e->body8bit = s->body8bit;
}

void
sp_smtp_session_message_done(sp_smtp_session *s, const char *reply)
{
	if (s->state != ST_WAIT_MSG)
		return;
	if (reply[0] == '2')
		s->messages++;
	s->state = ST_READY;
	transaction_reset(s);
	sp_smtp_session_reply(s, reply);
}

void
sp_smtp_session_tls_started(sp_smtp_session *s)
{
	s->tls = 1;
	s->esmtp = 0;
	s->helo[0] = '\0';
	s->inpos = s->inlen = 0;
	sp_smtp_lines_init(&s->lines, s->o.line_margin);
	s->state = ST_INIT;
	transaction_reset(s);
}

int
sp_smtp_session_tls_active(const sp_smtp_session *s)
{
	return s->tls;
}

int
sp_smtp_session_in_data(const sp_smtp_session *s)
{
	return s->state == ST_DATA || s->state == ST_BDAT ||
	    s->state == ST_WAIT_MSG || s->state == ST_WAIT_RCPT;
}

unsigned
sp_smtp_session_messages(const sp_smtp_session *s)
{
	return s->messages;
}
