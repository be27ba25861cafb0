/*
 * The POP3 session: a command table (state mask and TLS requirement
 * checked in one place, then the command's function) over pop3_parse.c;
 * see pop3_server.h.
 *
 * Everything runs on the loop thread; fetching a body blocks the loop for
 * its duration, as IMAP FETCH does.
 */
#include "bridge/pop3_server.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "bridge/bridge_conn.h"
#include "bridge/pop3_parse.h"
#include "bridge/smtp_parse.h"
#include "crypto/error.h"

#define ERRORS_MAX 20
#define AUTH_FAILURES_MAX 3
#define TIMEOUT_MS (10 * 60 * 1000)  /* RFC 1939 3: at least 10 minutes */
#define DROP_MAX 1000000             /* messages in one maildrop */

struct pop3_server {
	struct bridge_server l;   /* first: the listener's */
};

enum { S_AUTHORIZATION = 1, S_TRANSACTION = 2, S_SASL = 4 };

struct drop_msg {
	uint64_t id;
	uint32_t uid;
	uint64_t size;
	int deleted;
};

struct sess {
	struct btls_conn *c;
	struct pop3_server *srv;
	struct pop3_reader r;
	int state;
	char user[SMTP_ADDR_MAX + 1];  /* after USER */
	bridge_account *acct;
	struct drop_msg *drop;
	size_t ndrop;
	int errors, auth_failures;
	int tls_switch;
};

static void
out_ok(struct sess *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void
out_err(struct sess *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void out_line(struct sess *s, const char *pfx, const char *fmt,
    va_list ap) __attribute__((format(printf, 3, 0)));

static void
out_line(struct sess *s, const char *pfx, const char *fmt, va_list ap)
{
	char text[512];
	size_t i;

	(void)vsnprintf(text, sizeof(text), fmt, ap);
	for (i = 0; text[i]; i++)
		if ((unsigned char)text[i] < 0x20)
			text[i] = ' ';
	btls_printf(s->c, "%s%s%s\r\n", pfx, text[0] ? " " : "", text);
}

static void
out_ok(struct sess *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	out_line(s, "+OK", fmt, ap);
	va_end(ap);
}

static void
out_err(struct sess *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	out_line(s, "-ERR", fmt, ap);
	va_end(ap);
	if (++s->errors >= ERRORS_MAX) {
		btls_printf(s->c, "-ERR too many errors, closing\r\n");
		btls_close(s->c);
	}
}

/* ---- the maildrop ------------------------------------------------------- */

/* The INBOX as it is now.  Lock held. */
static int
drop_load(struct sess *s)
{
	const struct sp_mbox_msg *const *msgs;
	size_t n, i;
	sp_mbox *mb = bridge_account_mbox(s->acct);

	if (sp_mbox_list(mb, SP_MBOX_INBOX, &msgs, &n) != 0)
		return -1;
	if (n > DROP_MAX)
		n = DROP_MAX;
	if (n && (s->drop = calloc(n, sizeof(*s->drop))) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		s->drop[i].id = msgs[i]->id;
		s->drop[i].uid = msgs[i]->uid;
		s->drop[i].size = msgs[i]->meta.size;
	}
	s->ndrop = n;
	return 0;
}

/* Message number arg (1-based, not deleted); NULL after -ERR. */
static struct drop_msg *
msg_arg(struct sess *s, const char *arg)
{
	long n = pop3_parse_num(arg, (long)s->ndrop);

	if (n < 0) {
		out_err(s, "no such message");
		return NULL;
	}
	if (s->drop[n - 1].deleted) {
		out_err(s, "message %ld already deleted", n);
		return NULL;
	}
	return &s->drop[n - 1];
}

/* ---- AUTHORIZATION ------------------------------------------------------ */

static void
login(struct sess *s, const char *user, const char *pw, size_t pwlen)
{
	bridge_account *a = bridge_server_find_account(&s->srv->l, user);
	int rc;

	s->state = S_AUTHORIZATION;
	s->user[0] = 0;
	if (a == NULL || !bridge_account_check_password(a, pw, pwlen)) {
		btls_log(s->c, "login failed");
		out_err(s, "[AUTH] wrong address or bridge password");
		if (++s->auth_failures >= AUTH_FAILURES_MAX) {
			btls_printf(s->c, "-ERR too many failed logins\r\n");
			btls_close(s->c);
		}
		return;
	}
	s->acct = a;
	bridge_account_lock(a);
	rc = drop_load(s);
	bridge_account_unlock(a);
	if (rc != 0) {
		s->acct = NULL;
		out_err(s, "[SYS/TEMP] cannot open the INBOX");
		return;
	}
	s->state = S_TRANSACTION;
	btls_log(s->c, "login as %s (%zu messages)", bridge_account_address(a),
	    s->ndrop);
	out_ok(s, "maildrop has %zu messages", s->ndrop);
}

static void
h_user(struct sess *s, const struct pop3_cmd *cmd)
{
	if (cmd->nargs != 1) {
		out_err(s, "USER address");
		return;
	}
	{
		size_t l = strnlen(cmd->arg[0], sizeof(s->user) - 1);

		memcpy(s->user, cmd->arg[0], l);
		s->user[l] = 0;
	}
	out_ok(s, "send PASS");
}

static void
h_pass(struct sess *s, const struct pop3_cmd *cmd)
{
	if (s->user[0] == 0) {
		out_err(s, "USER first");
		return;
	}
	if (cmd->nargs != 1) {
		s->user[0] = 0;
		login(s, "", "", 0);
		return;
	}
	login(s, s->user, cmd->arg[0], strlen(cmd->arg[0]));
}

static void
auth_plain(struct sess *s, const char *b64)
{
	uint8_t buf[1024];
	const char *user, *pw;
	size_t pwlen;
	int rc = bridge_sasl_plain(b64, buf, sizeof(buf), &user, &pw,
	    &pwlen);

	s->state = S_AUTHORIZATION;
	if (rc == BRIDGE_PLAIN_BASE64)
		out_err(s, "bad base64");
	else if (rc != 0)
		login(s, "", "", 0);
	else
		login(s, user, pw, pwlen);
	sodium_memzero(buf, sizeof(buf));
}

static void
h_auth(struct sess *s, const struct pop3_cmd *cmd)
{
	if (cmd->nargs == 0) {
		btls_printf(s->c, "+OK\r\nPLAIN\r\n.\r\n");
		return;
	}
	if (strcasecmp(cmd->arg[0], "PLAIN") != 0) {
		out_err(s, "mechanism not supported (PLAIN)");
		return;
	}
	if (cmd->nargs == 2) {
		auth_plain(s, cmd->arg[1]);
		return;
	}
	s->state = S_SASL;
	btls_printf(s->c, "+ \r\n");
}

static void
h_stls(struct sess *s, const struct pop3_cmd *cmd)
{
	(void)cmd;
	if (!btls_can_starttls(s->c)) {
		out_err(s, "TLS is already on");
		return;
	}
	out_ok(s, "begin TLS");
	s->user[0] = 0;
	pop3_reader_reset(&s->r);
	s->tls_switch = 1;
	btls_starttls(s->c);
}

static void
h_capa(struct sess *s, const struct pop3_cmd *cmd)
{
	(void)cmd;
	btls_printf(s->c, "+OK capabilities\r\nCAPA\r\nTOP\r\nUIDL\r\n"
	    "RESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n");
	if (btls_can_starttls(s->c))
		btls_printf(s->c, "STLS\r\n");
	else if (s->state == S_AUTHORIZATION)
		btls_printf(s->c, "USER\r\nSASL PLAIN\r\n");
	btls_printf(s->c, "IMPLEMENTATION sealpost-bridge\r\n.\r\n");
}

/* ---- TRANSACTION -------------------------------------------------------- */

static void
h_stat(struct sess *s, const struct pop3_cmd *cmd)
{
	uint64_t size = 0;
	size_t i, n = 0;

	(void)cmd;
	for (i = 0; i < s->ndrop; i++) {
		if (s->drop[i].deleted)
			continue;
		n++;
		size += s->drop[i].size;
	}
	out_ok(s, "%zu %llu", n, (unsigned long long)size);
}

static void
h_list_uidl(struct sess *s, const struct pop3_cmd *cmd, int uidl)
{
	struct drop_msg *m;
	size_t i;

	if (cmd->nargs == 1) {
		if ((m = msg_arg(s, cmd->arg[0])) == NULL)
			return;
		if (uidl)
			out_ok(s, "%zu %u.%u", (size_t)(m - s->drop) + 1,
			    SP_MBOX_INBOX, m->uid);
		else
			out_ok(s, "%zu %llu", (size_t)(m - s->drop) + 1,
			    (unsigned long long)m->size);
		return;
	}
	out_ok(s, "%s", uidl ? "unique-id listing" : "scan listing");
	for (i = 0; i < s->ndrop; i++) {
		if (s->drop[i].deleted)
			continue;
		if (uidl)
			btls_printf(s->c, "%zu %u.%u\r\n", i + 1,
			    SP_MBOX_INBOX, s->drop[i].uid);
		else
			btls_printf(s->c, "%zu %llu\r\n", i + 1,
			    (unsigned long long)s->drop[i].size);
	}
	btls_printf(s->c, ".\r\n");
}

static void
h_list(struct sess *s, const struct pop3_cmd *cmd)
{
	if (cmd->nargs > 1) {
		out_err(s, "LIST [msg]");
		return;
	}
	h_list_uidl(s, cmd, 0);
}

static void
h_uidl(struct sess *s, const struct pop3_cmd *cmd)
{
	if (cmd->nargs > 1) {
		out_err(s, "UIDL [msg]");
		return;
	}
	h_list_uidl(s, cmd, 1);
}

/*
 * Writes body as a multi-line response: CRLF line ends (a bare LF gets
 * its CR), dot-stuffed, the header and at most `lines` body lines
 * (lines < 0: all), then the terminating ".".
 */
static void
send_body(struct sess *s, const uint8_t *b, size_t len, long lines)
{
	size_t i = 0, start;
	int in_body = 0;
	long done = 0;

	while (i < len) {
		size_t l;

		if (in_body && lines >= 0 && done >= lines)
			break;
		start = i;
		while (i < len && b[i] != '\n')
			i++;
		l = i - start;
		if (l > 0 && b[start + l - 1] == '\r')
			l--;
		if (i < len)
			i++;
		if (l > 0 && b[start] == '.')
			btls_write(s->c, ".", 1);
		btls_write(s->c, b + start, l);
		btls_write(s->c, "\r\n", 2);
		if (in_body)
			done++;
		else if (l == 0)
			in_body = 1;
	}
	btls_write(s->c, ".\r\n", 3);
}

static void
retr_top(struct sess *s, struct drop_msg *m, long lines)
{
	char err[256] = "";
	enum sp_mbox_sig sig;
	uint8_t *body = NULL;
	size_t len = 0;
	sp_client *c;
	int rc;

	bridge_account_lock(s->acct);
	if (sp_mbox_msg(bridge_account_mbox(s->acct), m->id) == NULL) {
		rc = ENOENT;
		snprintf(err, sizeof(err), "the message was deleted by "
		    "another client");
	} else if ((c = bridge_account_client(s->acct, err,
	    sizeof(err))) == NULL) {
		rc = EPIPE;
	} else {
		rc = sp_mbox_body(bridge_account_mbox(s->acct), c, m->id,
		    &body, &len, &sig, NULL, err, sizeof(err));
		if (rc == EPIPE || rc == ETIMEDOUT)
			(void)bridge_account_settle(s->acct, rc, err,
			    sizeof(err));
	}
	bridge_account_unlock(s->acct);
	if (rc != 0) {
		out_err(s, "%s%s", rc == ENOENT ? "" : "[SYS/TEMP] ",
		    err[0] ? err : sp_strerror(rc));
		return;
	}
	out_ok(s, "%zu octets", len);
	send_body(s, body, len, lines);
	sodium_memzero(body, len);
	free(body);
}

static void
h_retr(struct sess *s, const struct pop3_cmd *cmd)
{
	struct drop_msg *m;

	if (cmd->nargs != 1) {
		out_err(s, "RETR msg");
		return;
	}
	if ((m = msg_arg(s, cmd->arg[0])) != NULL)
		retr_top(s, m, -1);
}

static void
h_top(struct sess *s, const struct pop3_cmd *cmd)
{
	struct drop_msg *m;
	long lines;

	if (cmd->nargs != 2) {
		out_err(s, "TOP msg lines");
		return;
	}
	if (strcmp(cmd->arg[1], "0") == 0)
		lines = 0;
	else if ((lines = pop3_parse_num(cmd->arg[1], 999999999)) < 0) {
		out_err(s, "TOP msg lines");
		return;
	}
	if ((m = msg_arg(s, cmd->arg[0])) != NULL)
		retr_top(s, m, lines);
}

static void
h_dele(struct sess *s, const struct pop3_cmd *cmd)
{
	struct drop_msg *m;

	if (cmd->nargs != 1) {
		out_err(s, "DELE msg");
		return;
	}
	if ((m = msg_arg(s, cmd->arg[0])) == NULL)
		return;
	m->deleted = 1;
	out_ok(s, "message %zu deleted", (size_t)(m - s->drop) + 1);
}

static void
h_rset(struct sess *s, const struct pop3_cmd *cmd)
{
	size_t i;

	(void)cmd;
	for (i = 0; i < s->ndrop; i++)
		s->drop[i].deleted = 0;
	out_ok(s, "maildrop has %zu messages", s->ndrop);
}

static void
h_noop(struct sess *s, const struct pop3_cmd *cmd)
{
	(void)cmd;
	out_ok(s, "%s", "");
}

/* UPDATE state (RFC 1939 6): the marked messages go for good. */
static int
update(struct sess *s, char *err, size_t errlen)
{
	uint64_t *ids;
	size_t i, n = 0, k;
	sp_mbox *mb;
	sp_client *c;
	int rc = 0;

	if ((ids = calloc(s->ndrop ? s->ndrop : 1, sizeof(*ids))) == NULL)
		return ENOMEM;
	bridge_account_lock(s->acct);
	mb = bridge_account_mbox(s->acct);
	for (i = 0; i < s->ndrop; i++)
		if (s->drop[i].deleted && sp_mbox_msg(mb, s->drop[i].id))
			ids[n++] = s->drop[i].id;
	for (i = 0; i < n && rc == 0; i += k) {
		k = n - i > SP_MBOX_BATCH_MAX ? SP_MBOX_BATCH_MAX : n - i;
		if ((c = bridge_account_client(s->acct, err, errlen)) ==
		    NULL) {
			rc = EPIPE;
			break;
		}
		rc = sp_mbox_delete(mb, c, ids + i, k, err, errlen);
		rc = bridge_account_settle(s->acct, rc, err, errlen);
	}
	bridge_account_unlock(s->acct);
	free(ids);
	return rc;
}

static void
h_quit(struct sess *s, const struct pop3_cmd *cmd)
{
	char err[256] = "";

	(void)cmd;
	if (s->state == S_TRANSACTION && update(s, err, sizeof(err)) != 0) {
		btls_printf(s->c, "-ERR some deleted messages not removed: "
		    "%s\r\n", err);
		btls_close(s->c);
		return;
	}
	out_ok(s, "bye");
	btls_close(s->c);
}

/* ---- the table ---------------------------------------------------------- */

#define NEED_TLS 1

static const struct cmd {
	const char *kw;
	int states;
	int needs;
	void (*run)(struct sess *, const struct pop3_cmd *);
} cmds[] = {
	{ "CAPA", S_AUTHORIZATION | S_TRANSACTION, 0, h_capa },
	{ "STLS", S_AUTHORIZATION, 0, h_stls },
	{ "USER", S_AUTHORIZATION, NEED_TLS, h_user },
	{ "PASS", S_AUTHORIZATION, NEED_TLS, h_pass },
	{ "AUTH", S_AUTHORIZATION, NEED_TLS, h_auth },
	{ "STAT", S_TRANSACTION, 0, h_stat },
	{ "LIST", S_TRANSACTION, 0, h_list },
	{ "UIDL", S_TRANSACTION, 0, h_uidl },
	{ "RETR", S_TRANSACTION, 0, h_retr },
	{ "TOP", S_TRANSACTION, 0, h_top },
	{ "DELE", S_TRANSACTION, 0, h_dele },
	{ "RSET", S_TRANSACTION, 0, h_rset },
	{ "NOOP", S_TRANSACTION, 0, h_noop },
	{ "QUIT", S_AUTHORIZATION | S_TRANSACTION, 0, h_quit },
};

static void
run_line(struct sess *s, const char *line)
{
	struct pop3_cmd cmd;
	const char *error;
	size_t i;

	if (s->state == S_SASL) {
		if (strcmp(line, "*") == 0) {
			s->state = S_AUTHORIZATION;
			out_err(s, "authentication cancelled");
			return;
		}
		auth_plain(s, line);
		return;
	}
	if (pop3_parse_cmd(line, &cmd, &error) != 0) {
		out_err(s, "%s", error);
		return;
	}
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(cmds[i].kw, cmd.kw) != 0)
			continue;
		if (!(cmds[i].states & s->state)) {
			out_err(s, "%s not valid %s", cmd.kw,
			    s->state == S_TRANSACTION ? "after login" :
			    "before login");
		} else if ((cmds[i].needs & NEED_TLS) &&
		    !btls_is_tls(s->c)) {
			out_err(s, "[AUTH] STLS first");
		} else {
			cmds[i].run(s, &cmd);
		}
		sodium_memzero(&cmd, sizeof(cmd));
		return;
	}
	sodium_memzero(&cmd, sizeof(cmd));
	out_err(s, "no such command");
}

/* ---- the connection ----------------------------------------------------- */

static void
sess_input(void *arg, const uint8_t *p, size_t n)
{
	struct sess *s = arg;

	while (n > 0 && !btls_closing(s->c)) {
		size_t used = 0;
		enum pop3_ev e = pop3_reader_feed(&s->r, p, n, &used);

		p += used;
		n -= used;
		if (e == POP3_EV_LINE) {
			run_line(s, s->r.line);
			sodium_memzero(s->r.line, sizeof(s->r.line));
			if (s->tls_switch) {
				s->tls_switch = 0;
				return;
			}
		} else if (e == POP3_EV_TOOLONG) {
			out_err(s, "line too long");
		} else if (e == POP3_EV_BAD) {
			out_err(s, "control byte in a command");
		}
	}
}

static int
sess_open(struct btls_conn *c, void *arg, void **state_r)
{
	struct sess *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return -1;
	s->c = c;
	s->srv = arg;
	s->state = S_AUTHORIZATION;
	*state_r = s;
	out_ok(s, "sealpost-bridge POP3 ready");
	return 0;
}

static void
sess_shutdown(void *arg)
{
	struct sess *s = arg;

	btls_printf(s->c, "-ERR [SYS/TEMP] the bridge is stopping\r\n");
}

static void
sess_finish(void *arg)
{
	struct sess *s = arg;

	free(s->drop);
	sodium_memzero(s, sizeof(*s));
	free(s);
}

static const struct btls_proto pop3_proto = {
	.name = "pop3",
	.open = sess_open,
	.input = sess_input,
	.shutdown = sess_shutdown,
	.finish = sess_finish,
};

int
pop3_server_create(uv_loop_t *loop, const struct bridge_server_opts *o,
    struct bridge_server **s_r, char *err, size_t errlen)
{
	return bridge_server_create(loop, sizeof(struct pop3_server), o,
	    &pop3_proto, TIMEOUT_MS, s_r, err, errlen);
}
