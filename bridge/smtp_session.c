/*
 * The SMTP submission session: a command table (state mask, TLS and
 * login requirements checked in one place, then the command's proceed
 * function) over the incremental reader of smtp_parse.c; see
 * smtp_server.h.
 *
 * Everything runs on the loop thread; account work (key look-ups, the
 * send) blocks the loop for its duration, as IMAP APPEND does.
 */
#include "bridge/smtp_server.h"

#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

#include "bridge/bridge_conn.h"
#include "bridge/smtp_parse.h"
#include "bridge/smtp_sent.h"
#include "client-core/keys.h"
#include "client-core/outbox.h"
#include "client-core/session.h"
#include "crypto/error.h"
#include "proto/summary.h"

#define RCPT_MAX 100             /* RFC 5321 4.5.3.1.8 minimum */
#define ERRORS_MAX 20            /* bad commands before 421 */
#define AUTH_FAILURES_MAX 3      /* then 421 */
#define TIMEOUT_MS (5 * 60 * 1000)   /* RFC 5321 4.5.3.2 */

struct smtp_server {
	struct bridge_server l;   /* first: the listener's */
	size_t size_max;
};

enum {
	S_GREET = 1,             /* before HELO/EHLO */
	S_READY = 2,             /* HELO/EHLO done, no transaction */
	S_MAIL = 4,              /* MAIL accepted */
	S_RCPT = 8,              /* at least one RCPT accepted */
	S_DATA = 16,             /* reading the message */
	S_AUTH = 32,             /* an AUTH exchange waits for a line */
};

enum auth_step { A_NONE, A_PLAIN, A_LOGIN_USER, A_LOGIN_PASS };

struct sess {
	struct btls_conn *c;
	struct smtp_server *srv;
	smtp_parser *p;
	int state;
	int esmtp;
	bridge_account *acct;    /* after AUTH */
	enum auth_step auth;
	char login_user[SMTP_ADDR_MAX + 1];
	int smtputf8;
	char *rcpts[RCPT_MAX];
	size_t nrcpts;
	int errors, auth_failures;
	int tls_switch;          /* STARTTLS answered: stop reading */
};

/* ---- replies ------------------------------------------------------------ */

/* Mail-client-visible text: one line, printable, no CR/LF from errors. */
static void
reply(struct sess *s, int code, const char *esc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
reply(struct sess *s, int code, const char *esc, const char *fmt, ...)
{
	char text[1024];
	va_list ap;
	size_t i;

	va_start(ap, fmt);
	(void)vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	for (i = 0; text[i]; i++)
		if ((unsigned char)text[i] < 0x20)
			text[i] = ' ';
	if (esc)
		btls_printf(s->c, "%d %s %s\r\n", code, esc, text);
	else
		btls_printf(s->c, "%d %s\r\n", code, text);
}

static void
enter_state(struct sess *s, int st)
{
	s->state = st;
}

static void
txn_reset(struct sess *s)
{
	size_t i;

	for (i = 0; i < s->nrcpts; i++)
		free(s->rcpts[i]);
	s->nrcpts = 0;
	s->smtputf8 = 0;
}

/* A command failed: counts toward ERRORS_MAX. */
static void
fail(struct sess *s)
{
	if (++s->errors >= ERRORS_MAX) {
		reply(s, 421, "4.7.0", "too many errors, closing");
		btls_close(s->c);
	}
}

/* ---- HELO, EHLO, NOOP, RSET, QUIT, VRFY, HELP --------------------------- */

static void
proceed_helo(struct sess *s, const char *arg, int esmtp)
{
	if (arg[0] == 0) {
		reply(s, 501, "5.5.4", "%s needs a domain or address",
		    esmtp ? "EHLO" : "HELO");
		fail(s);
		return;
	}
	txn_reset(s);
	s->esmtp = esmtp;
	enter_state(s, S_READY);
	if (!esmtp) {
		reply(s, 250, NULL, "127.0.0.1 sealpost-bridge");
		return;
	}
	btls_printf(s->c, "250-127.0.0.1 sealpost-bridge\r\n"
	    "250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
	    "250-SIZE %zu\r\n250-ENHANCEDSTATUSCODES\r\n", s->srv->size_max);
	if (btls_can_starttls(s->c))
		btls_printf(s->c, "250-STARTTLS\r\n");
	else
		btls_printf(s->c, "250-AUTH PLAIN LOGIN\r\n");
	btls_printf(s->c, "250 HELP\r\n");
}

static void
proceed_ehlo(struct sess *s, const char *arg)
{
	proceed_helo(s, arg, 1);
}

static void
proceed_helo1(struct sess *s, const char *arg)
{
	proceed_helo(s, arg, 0);
}

static void
proceed_noop(struct sess *s, const char *arg)
{
	(void)arg;
	reply(s, 250, "2.0.0", "OK");
}

static void
proceed_rset(struct sess *s, const char *arg)
{
	(void)arg;
	txn_reset(s);
	enter_state(s, S_READY);
	reply(s, 250, "2.0.0", "OK");
}

static void
proceed_quit(struct sess *s, const char *arg)
{
	(void)arg;
	reply(s, 221, "2.0.0", "bye");
	btls_close(s->c);
}

static void
proceed_vrfy(struct sess *s, const char *arg)
{
	(void)arg;
	reply(s, 252, "2.5.0", "not verified; send and see");
}

static void
proceed_help(struct sess *s, const char *arg)
{
	(void)arg;
	reply(s, 214, "2.0.0", "EHLO STARTTLS AUTH MAIL RCPT DATA RSET NOOP "
	    "QUIT; see RFC 6409");
}

/* ---- STARTTLS ----------------------------------------------------------- */

static void
proceed_starttls(struct sess *s, const char *arg)
{
	if (arg[0]) {
		reply(s, 501, "5.5.4", "STARTTLS takes no argument");
		fail(s);
		return;
	}
	if (!btls_can_starttls(s->c)) {
		reply(s, 503, "5.5.1", "TLS is already on");
		fail(s);
		return;
	}
	reply(s, 220, "2.0.0", "ready to start TLS");
	/* RFC 3207 4.2: forget everything said in the clear. */
	txn_reset(s);
	s->esmtp = 0;
	enter_state(s, S_GREET);
	smtp_parser_reset(s->p);
	s->tls_switch = 1;
	btls_starttls(s->c);
}

/* ---- AUTH --------------------------------------------------------------- */

static void
auth_result(struct sess *s, const char *user, const char *pw, size_t pwlen)
{
	bridge_account *a = bridge_server_find_account(&s->srv->l, user);

	s->auth = A_NONE;
	enter_state(s, S_READY);
	if (a == NULL || !bridge_account_check_password(a, pw, pwlen)) {
		btls_log(s->c, "AUTH failed");
		reply(s, 535, "5.7.8", "authentication failed (use the "
		    "address and the bridge password)");
		if (++s->auth_failures >= AUTH_FAILURES_MAX) {
			reply(s, 421, "4.7.0", "too many failed logins");
			btls_close(s->c);
		}
		return;
	}
	s->acct = a;
	btls_log(s->c, "AUTH as %s", bridge_account_address(a));
	reply(s, 235, "2.7.0", "authenticated");
}

/* A user name, cut to what an address can be (a longer one fails). */
static void
copy_user(char dst[SMTP_ADDR_MAX + 1], const char *src)
{
	size_t l = strnlen(src, SMTP_ADDR_MAX);

	memcpy(dst, src, l);
	dst[l] = 0;
}

/* "authzid NUL authcid NUL password", base64. */
static void
auth_plain(struct sess *s, const char *b64)
{
	uint8_t buf[1024];
	const char *user, *pw;
	size_t pwlen;
	int rc = bridge_sasl_plain(b64, buf, sizeof(buf), &user, &pw,
	    &pwlen);

	if (rc == BRIDGE_PLAIN_BASE64) {
		s->auth = A_NONE;
		enter_state(s, S_READY);
		reply(s, 501, "5.5.2", "bad base64");
		fail(s);
	} else if (rc != 0) {
		auth_result(s, "", "", 0);
	} else {
		auth_result(s, user, pw, pwlen);
	}
	sodium_memzero(buf, sizeof(buf));
}

static void
proceed_auth(struct sess *s, const char *arg)
{
	char mech[16];
	const char *ir;

	if (s->acct) {
		reply(s, 503, "5.5.1", "already authenticated");
		fail(s);
		return;
	}
	if (smtp_parse_verb(arg, mech, &ir) != 0) {
		reply(s, 501, "5.5.4", "AUTH mechanism [initial-response]");
		fail(s);
		return;
	}
	if (strcmp(mech, "PLAIN") == 0) {
		if (ir[0] && strcmp(ir, "=") != 0) {
			auth_plain(s, ir);
			return;
		}
		s->auth = A_PLAIN;
		enter_state(s, S_AUTH);
		btls_printf(s->c, "334 \r\n");
	} else if (strcmp(mech, "LOGIN") == 0) {
		uint8_t u[SMTP_ADDR_MAX + 1];
		long n;

		if (ir[0]) {
			if ((n = smtp_base64_decode(ir, u, sizeof(u) - 1)) <
			    0) {
				reply(s, 501, "5.5.2", "bad base64");
				fail(s);
				return;
			}
			u[n] = 0;
			copy_user(s->login_user, (const char *)u);
			s->auth = A_LOGIN_PASS;
			btls_printf(s->c, "334 UGFzc3dvcmQ6\r\n");
		} else {
			s->auth = A_LOGIN_USER;
			btls_printf(s->c, "334 VXNlcm5hbWU6\r\n");
		}
		enter_state(s, S_AUTH);
	} else {
		reply(s, 504, "5.5.4", "mechanism not supported (PLAIN, "
		    "LOGIN)");
		fail(s);
	}
}

/* A line during an AUTH exchange. */
static void
auth_line(struct sess *s, const char *line)
{
	uint8_t buf[1024];
	long n;

	if (strcmp(line, "*") == 0) {
		s->auth = A_NONE;
		enter_state(s, S_READY);
		reply(s, 501, "5.0.0", "authentication cancelled");
		return;
	}
	if (s->auth == A_PLAIN) {
		auth_plain(s, line);
		return;
	}
	if ((n = smtp_base64_decode(line, buf, sizeof(buf) - 1)) < 0) {
		s->auth = A_NONE;
		enter_state(s, S_READY);
		reply(s, 501, "5.5.2", "bad base64");
		fail(s);
		return;
	}
	buf[n] = 0;
	if (s->auth == A_LOGIN_USER) {
		copy_user(s->login_user, (const char *)buf);
		s->auth = A_LOGIN_PASS;
		btls_printf(s->c, "334 UGFzc3dvcmQ6\r\n");
	} else {
		auth_result(s, s->login_user, (const char *)buf, (size_t)n);
	}
	sodium_memzero(buf, sizeof(buf));
}

/* ---- MAIL, RCPT --------------------------------------------------------- */

static void
proceed_mail(struct sess *s, const char *arg)
{
	char addr[SMTP_ADDR_MAX + 1], key[32], val[256];
	const char *params, *error;
	int r, utf8 = 0;

	if (smtp_parse_path(arg, "FROM:", 1, addr, &params, &error) != 0) {
		reply(s, 501, "5.5.4", "%s", error);
		fail(s);
		return;
	}
	while ((r = smtp_parse_param(&params, key, val, &error)) == 1) {
		if (strcmp(key, "SIZE") == 0) {
			char *end;
			unsigned long long v = strtoull(val, &end, 10);

			if (*end || val[0] == 0 || !isdigit((unsigned char)
			    val[0])) {
				reply(s, 501, "5.5.4", "bad SIZE");
				fail(s);
				return;
			}
			if (v > s->srv->size_max) {
				reply(s, 552, "5.3.4", "message too big (at "
				    "most %zu bytes)", s->srv->size_max);
				return;
			}
		} else if (strcmp(key, "BODY") == 0) {
			if (strcasecmp(val, "7BIT") != 0 &&
			    strcasecmp(val, "8BITMIME") != 0) {
				reply(s, 501, "5.5.4", "BODY is 7BIT or "
				    "8BITMIME");
				fail(s);
				return;
			}
		} else if (strcmp(key, "SMTPUTF8") == 0 && val[0] == 0) {
			utf8 = 1;
		} else if (strcmp(key, "AUTH") == 0) {
			/* RFC 4954 5: the identity is ours anyway. */
		} else {
			reply(s, 555, "5.5.4", "parameter %s not supported",
			    key);
			fail(s);
			return;
		}
	}
	if (r < 0) {
		reply(s, 501, "5.5.4", "%s", error);
		fail(s);
		return;
	}
	if (strcasecmp(addr, bridge_account_address(s->acct)) != 0) {
		reply(s, 550, "5.7.1", "MAIL FROM must be your address, %s",
		    bridge_account_address(s->acct));
		return;
	}
	txn_reset(s);
	s->smtputf8 = utf8;
	enter_state(s, S_MAIL);
	reply(s, 250, "2.1.0", "sender OK");
}

/* The domain part of addr (after the last '@'). */
static const char *
domain_of(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at ? at + 1 : "";
}

/* Does addr have an account on our server?  0 yes, ENOENT no, else a
 * temporary failure (err says why). */
static int
lookup_rcpt(struct sess *s, const char *addr, char *err, size_t errlen)
{
	struct sp_keys_info info;
	sp_client *c;
	int rc;

	memset(&info, 0, sizeof(info));
	bridge_account_lock(s->acct);
	if ((c = bridge_account_client(s->acct, err, errlen)) == NULL) {
		rc = EPIPE;
	} else {
		rc = sp_keys_fetch(c, addr, &info, err, errlen);
		if (rc == EPIPE || rc == ETIMEDOUT)
			rc = bridge_account_settle(s->acct, rc, err, errlen);
	}
	bridge_account_unlock(s->acct);
	sp_keys_info_finish(&info);
	return rc;
}

static void
proceed_rcpt(struct sess *s, const char *arg)
{
	char addr[SMTP_ADDR_MAX + 1], key[32], val[256], err[256] = "";
	char norm[SP_KEYS_ADDR_BYTES];
	const char *params, *error;
	size_t i;
	int r, rc;

	if (smtp_parse_path(arg, "TO:", 1, addr, &params, &error) != 0 ||
	    addr[0] == 0) {
		reply(s, 501, "5.5.4", "%s", addr[0] ? error :
		    "a recipient is needed");
		fail(s);
		return;
	}
	if ((r = smtp_parse_param(&params, key, val, &error)) != 0) {
		reply(s, r < 0 ? 501 : 555, "5.5.4", r < 0 ? "%s" :
		    "parameter %s not supported", r < 0 ? error : key);
		fail(s);
		return;
	}
	if (s->nrcpts == RCPT_MAX) {
		reply(s, 452, "4.5.3", "too many recipients (at most %d)",
		    RCPT_MAX);
		return;
	}
	if (sp_keys_address(addr, norm) != 0) {
		reply(s, 553, "5.1.3", "not an address this bridge can send "
		    "to");
		return;
	}
	for (i = 0; i < s->nrcpts; i++) {
		if (strcmp(s->rcpts[i], norm) == 0) {
			reply(s, 250, "2.1.5", "recipient OK (again)");
			return;
		}
	}
	rc = lookup_rcpt(s, norm, err, sizeof(err));
	if (rc == ENOENT && strcasecmp(domain_of(norm), domain_of(
	    bridge_account_address(s->acct))) == 0) {
		reply(s, 550, "5.1.1", "%s has no sealpost account", norm);
		return;
	}
	/* Another domain: outbox.h sends it PGP/MIME or as written
	 * through the gateway; the account's policy is the server's to
	 * apply, after DATA. */
	if (rc != 0 && rc != ENOENT) {
		reply(s, 451, "4.4.1", "cannot look up %s now: %s", norm,
		    err);
		return;
	}
	if ((s->rcpts[s->nrcpts] = strdup(norm)) == NULL) {
		reply(s, 452, "4.3.1", "out of memory");
		return;
	}
	s->nrcpts++;
	enter_state(s, S_RCPT);
	reply(s, 250, "2.1.5", "recipient OK (%s)", rc == 0 ? "end to end" :
	    "outside sealpost: through the outbound gateway");
}

/* ---- DATA --------------------------------------------------------------- */

static void
proceed_data(struct sess *s, const char *arg)
{
	if (arg[0]) {
		reply(s, 501, "5.5.4", "DATA takes no argument");
		fail(s);
		return;
	}
	enter_state(s, S_DATA);
	smtp_parser_begin_data(s->p, s->srv->size_max);
	reply(s, 354, NULL, "end with <CRLF>.<CRLF>");
}

/*
 * RFC 6409 8.2, 8.3: a submission server may add a missing Message-ID
 * and Date.  The Message-ID matters here: it is how an APPEND of the same
 * message to Sent is recognised (smtp_sent.h).  Returns a new buffer
 * (header fields + msg) or NULL when nothing is missing.
 */
static uint8_t *
add_missing(const uint8_t *msg, size_t len, const struct sp_meta *m,
    const char *domain, size_t *len_r)
{
	char hdr[512], rnd[33], date[64];
	uint8_t r[16], *out;
	size_t n = 0;
	time_t now = time(NULL);
	struct tm tm;

	if (m->message_id && m->has_date)
		return NULL;
	if (!m->message_id) {
		randombytes_buf(r, sizeof(r));
		sodium_bin2hex(rnd, sizeof(rnd), r, sizeof(r));
		n += (size_t)snprintf(hdr + n, sizeof(hdr) - n,
		    "Message-ID: <%s@%s>\r\n", rnd, domain);
	}
	if (!m->has_date && gmtime_r(&now, &tm)) {
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000",
		    &tm);
		n += (size_t)snprintf(hdr + n, sizeof(hdr) - n,
		    "Date: %s\r\n", date);
	}
	if ((out = malloc(n + len)) == NULL)
		return NULL;
	memcpy(out, hdr, n);
	memcpy(out + n, msg, len);
	*len_r = n + len;
	return out;
}

/* The Sent copy's id by Message-ID (when the send could not say). */
static uint64_t
find_sent(sp_mbox *mb, const char *message_id)
{
	const struct sp_mbox_msg *const *msgs;
	size_t n, i;

	if (sp_mbox_list(mb, SP_MBOX_SENT, &msgs, &n) != 0)
		return 0;
	for (i = n; i > 0; i--)
		if (msgs[i - 1]->own && msgs[i - 1]->meta.message_id &&
		    strcmp(msgs[i - 1]->meta.message_id, message_id) == 0)
			return msgs[i - 1]->id;
	return 0;
}

static void
send_reply(struct sess *s, int rc, const struct sp_outbox_report *rep,
    const char *err)
{
	size_t got = rep->ndelivered + rep->nqueued;

	if (rc == 0) {
		reply(s, 250, "2.0.0", "sent: %zu end to end, %zu to the "
		    "outbound queue (%zu PGP/MIME)", rep->ndelivered,
		    rep->nqueued, rep->npgp);
	} else if (got > 0) {
		/* SMTP cannot answer per recipient after DATA: say who
		 * got it, so a resend can leave them out. */
		reply(s, 554, "5.0.0", "sent to %zu of %zu only: %s",
		    got, rep->nrcpts, err);
	} else if (rc == ENOENT) {
		reply(s, 550, "5.1.1", "%s", err);
	} else if (rc == EACCES) {
		/* The account's policy (encrypted only), in the server's
		 * words: a permanent refusal the user must see. */
		reply(s, 550, "5.7.1", "%s", err);
	} else if (rc == EBUSY) {
		reply(s, 451, "4.7.0", "%s", err);
	} else if (rc == SP_EKEYCHANGED || rc == SP_EINVAL ||
	    rc == SP_EKEYREVOKED || rc == SP_EKEYEXPIRED) {
		reply(s, 550, "5.7.1", "%s", err);
	} else if (rc == SP_ELIMIT) {
		reply(s, 552, "5.5.3", "%s", err);
	} else if (rc == SP_EFORMAT) {
		reply(s, 554, "5.6.0", "%s", err);
	} else {
		reply(s, 451, "4.3.0", "not sent, try again: %s",
		    err[0] ? err : sp_strerror(rc));
	}
}

/* The whole message is here (flags from the reader). */
static void
data_done(struct sess *s, unsigned flags)
{
	char own[SP_KEYS_ADDR_BYTES], from[SP_KEYS_ADDR_BYTES], err[768] = "";
	struct sp_outbox_report rep;
	struct sp_outbox_args sa;
	struct sp_meta m;
	uint8_t *msg, *fixed = NULL;
	size_t len = 0, flen = 0;
	uint64_t sent_id = 0;
	sp_session *ss;
	int rc;

	memset(&rep, 0, sizeof(rep));
	memset(&m, 0, sizeof(m));
	enter_state(s, S_READY);
	msg = smtp_parser_take_data(s->p, &len);
	if (flags & SMTP_DATA_TOO_BIG) {
		reply(s, 552, "5.3.4", "message too big (at most %zu bytes)",
		    s->srv->size_max);
		goto out;
	}
	if (flags & SMTP_DATA_BARE_CR) {
		reply(s, 554, "5.6.0", "a bare CR in the message: lines end "
		    "in CRLF (RFC 5322 2.3)");
		goto out;
	}
	if (msg == NULL || sp_summary_from_message(msg, len, &m) != 0) {
		reply(s, 554, "5.6.0", "the message cannot be parsed");
		goto out;
	}
	(void)sp_keys_address(bridge_account_address(s->acct), own);
	if (m.from == NULL || sp_keys_address(m.from, from) != 0 ||
	    strcmp(from, own) != 0) {
		reply(s, 550, "5.7.1", "the From: header must be your "
		    "address, %s", own);
		goto out;
	}
	if ((fixed = add_missing(msg, len, &m, domain_of(own), &flen))) {
		sp_meta_finish(&m);
		if (sp_summary_from_message(fixed, flen, &m) != 0) {
			reply(s, 554, "5.6.0", "the message cannot be parsed");
			goto out;
		}
	}
	bridge_account_lock(s->acct);
	ss = bridge_account_session(s->acct);
	memset(&sa, 0, sizeof(sa));
	sa.cache = sp_session_cache(ss);
	sa.mb = bridge_account_mbox(s->acct);
	sa.ks = sp_session_keys(ss);
	sa.address = own;
	sa.rcpts = (const char *const *)s->rcpts;
	sa.nrcpts = s->nrcpts;
	if ((sa.c = bridge_account_client(s->acct, err, sizeof(err))) ==
	    NULL) {
		rc = EPIPE;
	} else {
		rc = sp_outbox_send(&sa, fixed ? fixed : msg, fixed ? flen :
		    len, &rep, err, sizeof(err));
		/* EAGAIN: the follow thread moved the cache under the
		 * Sent copy's pull; the copy is on the server. */
		if (rc == EAGAIN || rc == EPIPE || rc == ETIMEDOUT)
			rc = bridge_account_settle(s->acct, rc, err,
			    sizeof(err));
	}
	if (rc == 0 && m.message_id) {
		sent_id = rep.sent_id ? rep.sent_id :
		    find_sent(sa.mb, m.message_id);
		smtp_sent_note(s->acct, m.message_id, sent_id);
	}
	bridge_account_unlock(s->acct);
	btls_log(s->c, "DATA %zu bytes to %zu recipients: %s (Sent copy "
	    "%llu)", len, s->nrcpts, rc == 0 ? "sent" : "failed",
	    (unsigned long long)sent_id);
	send_reply(s, rc, &rep, err);
out:
	txn_reset(s);
	sp_meta_finish(&m);
	if (fixed) {
		sodium_memzero(fixed, flen);
		free(fixed);
	}
	if (msg) {
		sodium_memzero(msg, len);
		free(msg);
	}
}

/* ---- the table ---------------------------------------------------------- */

#define ANY (S_GREET | S_READY | S_MAIL | S_RCPT)
#define NEED_TLS 1
#define NEED_LOGIN 2
#define NEED_HELO 4

static const struct cmd {
	const char *verb;
	int states;              /* where it is valid */
	int needs;
	void (*proceed)(struct sess *, const char *);
} cmds[] = {
	{ "EHLO", ANY, 0, proceed_ehlo },
	{ "HELO", ANY, 0, proceed_helo1 },
	{ "STARTTLS", ANY, NEED_HELO, proceed_starttls },
	{ "AUTH", S_READY, NEED_TLS | NEED_HELO, proceed_auth },
	{ "MAIL", S_READY, NEED_TLS | NEED_LOGIN | NEED_HELO, proceed_mail },
	{ "RCPT", S_MAIL | S_RCPT, NEED_TLS | NEED_LOGIN, proceed_rcpt },
	{ "DATA", S_RCPT, NEED_TLS | NEED_LOGIN, proceed_data },
	{ "RSET", ANY, 0, proceed_rset },
	{ "NOOP", ANY, 0, proceed_noop },
	{ "QUIT", ANY, 0, proceed_quit },
	{ "VRFY", ANY, 0, proceed_vrfy },
	{ "HELP", ANY, 0, proceed_help },
};

/* The common checks; 0 when the command may proceed (else replied). */
static int
check(struct sess *s, const struct cmd *cmd)
{
	if ((cmd->needs & NEED_HELO) && s->state == S_GREET) {
		reply(s, 503, "5.5.1", "EHLO first");
		return -1;
	}
	if ((cmd->needs & NEED_TLS) && !btls_is_tls(s->c)) {
		reply(s, 530, "5.7.0", "STARTTLS first");
		return -1;
	}
	if ((cmd->needs & NEED_LOGIN) && s->acct == NULL) {
		reply(s, 530, "5.7.0", "authentication required");
		return -1;
	}
	if (!(cmd->states & s->state)) {
		if (s->state & (S_MAIL | S_RCPT) && strcmp(cmd->verb, "MAIL")
		    == 0)
			reply(s, 503, "5.5.1", "a transaction is open (RSET)");
		else if (strcmp(cmd->verb, "RCPT") == 0)
			reply(s, 503, "5.5.1", "MAIL first");
		else if (strcmp(cmd->verb, "DATA") == 0)
			reply(s, 503, "5.5.1", s->state == S_MAIL ?
			    "no valid recipients" : "MAIL first");
		else
			reply(s, 503, "5.5.1", "bad sequence of commands");
		return -1;
	}
	return 0;
}

static void
run_line(struct sess *s, const char *line)
{
	const char *arg;
	char verb[16];
	size_t i;

	if (s->state == S_AUTH) {
		auth_line(s, line);
		return;
	}
	if (smtp_parse_verb(line, verb, &arg) != 0) {
		reply(s, 500, "5.5.2", "syntax error");
		fail(s);
		return;
	}
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(cmds[i].verb, verb) != 0)
			continue;
		if (check(s, &cmds[i]) != 0) {
			fail(s);
			return;
		}
		cmds[i].proceed(s, arg);
		return;
	}
	reply(s, 502, "5.5.1", "command not implemented");
	fail(s);
}

/* ---- the connection ----------------------------------------------------- */

static void
sess_input(void *arg, const uint8_t *p, size_t n)
{
	struct sess *s = arg;

	while (n > 0 && !btls_closing(s->c)) {
		struct smtp_event ev;
		size_t used = 0;
		enum smtp_ev e = smtp_parser_feed(s->p, p, n, &used, &ev);

		p += used;
		n -= used;
		switch (e) {
		case SMTP_EV_MORE:
			break;
		case SMTP_EV_LINE:
			run_line(s, ev.line);
			/* STARTTLS: the rest of this read was sent in the
			 * clear and is dropped. */
			if (s->tls_switch) {
				s->tls_switch = 0;
				return;
			}
			break;
		case SMTP_EV_TOOLONG:
			reply(s, 500, "5.5.2", "line too long");
			fail(s);
			break;
		case SMTP_EV_BAD:
			reply(s, 500, "5.5.2", "NUL byte in a command");
			fail(s);
			break;
		case SMTP_EV_DATA:
			data_done(s, ev.data_flags);
			break;
		}
	}
}

static int
sess_open(struct btls_conn *c, void *arg, void **state_r)
{
	struct sess *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return -1;
	if (smtp_parser_create(&s->p) != 0) {
		free(s);
		return -1;
	}
	s->c = c;
	s->srv = arg;
	s->state = S_GREET;
	*state_r = s;
	reply(s, 220, NULL, "127.0.0.1 ESMTP sealpost-bridge submission");
	return 0;
}

static void
sess_shutdown(void *arg)
{
	struct sess *s = arg;

	reply(s, 421, "4.3.2", "the bridge is stopping");
}

static void
sess_timeout(void *arg)
{
	struct sess *s = arg;

	reply(s, 421, "4.4.2", "idle for too long");
}

static void
sess_finish(void *arg)
{
	struct sess *s = arg;

	txn_reset(s);
	smtp_parser_destroy(s->p);
	sodium_memzero(s, sizeof(*s));
	free(s);
}

static const struct btls_proto smtp_proto = {
	.name = "smtp",
	.open = sess_open,
	.input = sess_input,
	.shutdown = sess_shutdown,
	.finish = sess_finish,
	.timeout = sess_timeout,
};

int
smtp_server_create(uv_loop_t *loop, const struct smtp_server_opts *o,
    struct bridge_server **s_r, char *err, size_t errlen)
{
	int rc = bridge_server_create(loop, sizeof(struct smtp_server), &o->l,
	    &smtp_proto, TIMEOUT_MS, s_r, err, errlen);

	if (*s_r)
		((struct smtp_server *)*s_r)->size_max = o->size_max ?
		    o->size_max : SMTP_SIZE_MAX;
	return rc;
}
