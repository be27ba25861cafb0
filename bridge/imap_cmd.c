/*
 * IMAP commands: one table maps each command to its handler, the states
 * it is allowed in, and whether it takes the UID form (OpenSMTPD's
 * shape).  imap_cmd_run() checks state and arguments common to all, then
 * calls the handler, then reports what changed in the selected folder.
 *
 * The selected folder's "view" is what this connection told its client:
 * sequence numbers are positions in it.  After every command (and on a
 * wake-up while in IDLE) the view is compared with the model, which the
 * follow thread keeps current; the differences become untagged EXISTS,
 * EXPUNGE (or VANISHED) and FETCH FLAGS responses.  EXPUNGE is held back
 * during FETCH, STORE and SEARCH, as RFC 3501 7.4.1 requires.
 *
 * Commands that change the account (F_WORKER: STORE, COPY, MOVE, EXPUNGE,
 * APPEND and the folder commands) wait for a server round trip, so they
 * run on a libuv worker thread with the account lock held, and the
 * tagged reply goes out from the after-callback on the loop.  Meanwhile
 * the loop never takes that account's lock: a command of another
 * connection on the same account is parked (and run when the worker is
 * done), IDLE wake-ups for it are put off, so other connections and
 * accounts are never stalled by one account's writes.  Only one worker
 * per account runs at a time: the lock would serialise them anyway.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

#include "bridge/imap_conn.h"
#include "bridge/imap_fetch.h"
#include "bridge/imap_summary.h"
#include "bridge/imap_server.h"
#include "bridge/imap_index.h"
#include "bridge/imap_utf7.h"
#include "bridge/smtp_sent.h"
#include "client-core/pgpkeys.h"
#include "client-core/pgpmail.h"
#include "client-core/session.h"
#include "crypto/error.h"

#define CAPS_COMMON "IMAP4rev1 IMAP4rev2 UTF8=ACCEPT LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE " \
	"UNSELECT UIDPLUS MOVE CONDSTORE QRESYNC SPECIAL-USE LIST-EXTENDED " \
	"LIST-STATUS ESEARCH BINARY CHILDREN"

enum {
	F_UID = 1,          /* a UID variant exists */
	F_NOEXPUNGE = 2,    /* untagged EXPUNGE must wait (non-UID form) */
	F_WORKER = 4,       /* runs on a worker thread (a round trip) */
};

struct cmd {
	const char *name;
	void (*fn)(struct imap_conn *c, struct imap_command *cmd, int uid);
	unsigned states;
	unsigned flags;
	size_t min_args, max_args;
};

/* Per account, on the loop thread only: a worker holds its lock (busy),
 * and the connections waiting for it.  Accounts live as long as the
 * server, so entries are never removed. */
struct acct_entry {
	bridge_account *acct;
	int busy;
	struct imap_conn *parked;
	struct imap_server *srv;
	imap_index *index;       /* opened at the first TEXT/BODY search */
};
static struct acct_entry *acct_entry(bridge_account *a);

/* ---- replies ------------------------------------------------------------ */

static void
reply(struct imap_conn *c, const struct imap_command *cmd, const char *st,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The tagged reply waits here until the untagged updates that the view
 * comparison adds after the handler are out: a client takes the tagged
 * line as the end of the command's responses.  One loop thread, so one
 * pending line suffices. */
static _Thread_local char tagged[1024];

static void
reply(struct imap_conn *c, const struct imap_command *cmd, const char *st,
    const char *fmt, ...)
{
	char text[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	snprintf(tagged, sizeof(tagged), "%s %s %s\r\n", cmd->tag, st, text);
}

static void
reply_flush(struct imap_conn *c)
{
	if (tagged[0]) {
		imap_out_str(&c->out, tagged);
		tagged[0] = 0;
	}
}

static const char *
errtext(int rc, const char *err)
{
	return err && *err ? err : sp_strerror(rc);
}

/* ---- flags -------------------------------------------------------------- */

static const struct {
	const char *name;
	uint32_t bit;
} system_flags[] = {
	{ "\\Seen", SP_META_F_SEEN },
	{ "\\Answered", SP_META_F_ANSWERED },
	{ "\\Flagged", SP_META_F_FLAGGED },
	{ "\\Deleted", SP_MBOX_F_DELETED },
	{ "\\Draft", SP_META_F_DRAFT },
	{ "$Junk", SP_META_F_JUNK },
};
#define NSYSFLAGS (sizeof(system_flags) / sizeof(system_flags[0]))

static void
out_flags(struct imap_out *o, uint32_t flags, char *const *kw, size_t nkw,
    int recent)
{
	size_t i;
	int n = 0;

	imap_out_str(o, "(");
	for (i = 0; i < NSYSFLAGS; i++)
		if (flags & system_flags[i].bit) {
			imap_out_printf(o, "%s%s", n++ ? " " : "",
			    system_flags[i].name);
		}
	for (i = 0; i < nkw; i++)
		imap_out_printf(o, "%s%s", n++ ? " " : "", kw[i]);
	if (recent)
		imap_out_printf(o, "%s\\Recent", n++ ? " " : "");
	imap_out_str(o, ")");
}

/* A flag list argument into system bits and keywords (pointers into the
 * argument tree).  0 or -1 (BAD). */
static int
parse_flags(const struct imap_arg *a, uint32_t *bits, const char **kw,
    size_t *nkw)
{
	const struct imap_arg *v = a;
	size_t n = 1, i, j;

	*bits = 0;
	*nkw = 0;
	if (a->type == IMAP_ARG_LIST) {
		v = a->list;
		n = a->n;
	}
	for (i = 0; i < n; i++) {
		if (v[i].type != IMAP_ARG_ATOM)
			return -1;
		for (j = 0; j < NSYSFLAGS; j++)
			if (strcasecmp(v[i].s, system_flags[j].name) == 0)
				break;
		if (j < NSYSFLAGS) {
			*bits |= system_flags[j].bit;
			continue;
		}
		if (v[i].s[0] == '\\') {
			if (strcasecmp(v[i].s, "\\Recent") == 0)
				continue;
			return -1;      /* unknown system flag */
		}
		if (v[i].len > SP_MBOX_KEYWORD_MAX ||
		    *nkw >= SP_MBOX_KEYWORDS_MAX ||
		    strpbrk(v[i].s, "%*]") != NULL)
			return -1;
		kw[(*nkw)++] = v[i].s;
	}
	return 0;
}

/* ---- folders ------------------------------------------------------------ */

static const char *special_use[] = {
	NULL, NULL, "\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive",
};

/* The model's name (UTF-8) for an IMAP mailbox name: modified UTF-7
 * decoded unless the client enabled UTF8=ACCEPT or IMAP4rev2, INBOX
 * case-insensitive, no trailing '/'.  Copies into buf.  NULL when the
 * name is not valid in the client's form (then BAD). */
static const char *
mailbox_name(struct imap_conn *c, const struct imap_arg *a, char *buf,
    size_t cap)
{
	size_t n;

	if (!imap_arg_is_string(a) || a->len == 0 || a->len >= cap ||
	    memchr(a->s, 0, a->len) != NULL)
		return NULL;
	if (c->utf8) {
		/* Valid UTF-8 without control characters is what the
		 * encoder takes. */
		char probe[IMAP_UTF7_ENCODED_MAX(SP_MBOX_NAME_MAX)];

		if (imap_utf7_encode(a->s, a->len, probe, sizeof(probe),
		    NULL) != 0)
			return NULL;
		memcpy(buf, a->s, a->len + 1);
		n = a->len;
	} else if (imap_utf7_decode(a->s, a->len, buf, cap, &n) != 0) {
		return NULL;
	}
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = 0;
	if (strcasecmp(buf, "INBOX") == 0)
		memcpy(buf, "INBOX", 6);
	return buf;
}

static const struct sp_mbox_folder *
folder_arg(struct imap_conn *c, const struct imap_arg *a)
{
	char name[SP_MBOX_NAME_MAX + 1];

	if (mailbox_name(c, a, name, sizeof(name)) == NULL)
		return NULL;
	return sp_mbox_folder_by_name(bridge_account_mbox(c->acct), name);
}

/* A model name as the client reads it: UTF-8 after UTF8=ACCEPT or
 * IMAP4rev2, modified UTF-7 otherwise.  A name the encoder refuses
 * (control characters, from another device) goes out as it is: still
 * one string, which the client may not be able to select. */
static void
out_mailbox(struct imap_conn *c, const char *name)
{
	char enc[IMAP_UTF7_ENCODED_MAX(SP_MBOX_NAME_MAX)];

	if (!c->utf8 && imap_utf7_encode(name, strlen(name), enc, sizeof(enc),
	    NULL) == 0)
		imap_out_astring(&c->out, enc);
	else
		imap_out_astring(&c->out, name);
}

/* ---- the view of the selected folder ------------------------------------ */

static int
view_reserve(struct imap_conn *c, size_t n)
{
	struct imap_view_msg *nv;
	size_t cap = c->view_cap ? c->view_cap : 64;

	if (n <= c->view_cap)
		return 0;
	while (cap < n)
		cap *= 2;
	if ((nv = realloc(c->view, cap * sizeof(*nv))) == NULL)
		return -1;
	c->view = nv;
	c->view_cap = cap;
	return 0;
}

static void
out_fetch_flags(struct imap_conn *c, size_t seq,
    const struct sp_mbox_msg *m, int with_uid)
{
	imap_out_printf(&c->out, "* %zu FETCH (", seq);
	if (with_uid)
		imap_out_printf(&c->out, "UID %u ", m->uid);
	imap_out_str(&c->out, "FLAGS ");
	out_flags(&c->out, m->flags, m->keywords, m->nkeywords, 0);
	if (c->condstore)
		imap_out_printf(&c->out, " MODSEQ (%llu)",
		    (unsigned long long)m->modseq);
	imap_out_str(&c->out, ")\r\n");
}

/*
 * Compares the view with the model and reports the differences.  Lock
 * held.  Expunges are reported (and leave the view) only when allowed.
 */
static void
view_sync(struct imap_conn *c, int allow_expunge)
{
	sp_mbox *mb = bridge_account_mbox(c->acct);
	const struct sp_mbox_msg *const *msgs;
	const struct sp_mbox_folder *f = sp_mbox_folder(mb, c->folder);
	struct imap_out vanished;
	size_t n = 0, i = 0, j = 0, added = 0;

	if (f == NULL) {
		/* Deleted under us (another device): the client must
		 * leave; everything is gone. */
		if (allow_expunge && c->nview > 0) {
			while (c->nview > 0)
				imap_out_printf(&c->out, "* %zu EXPUNGE\r\n",
				    c->nview--);
		}
		return;
	}
	if (sp_mbox_list(mb, c->folder, &msgs, &n) != 0)
		return;
	imap_out_init(&vanished);
	while (i < c->nview || j < n) {
		if (i < c->nview && (j >= n || c->view[i].uid < msgs[j]->uid)) {
			if (!allow_expunge) {
				i++;
				continue;
			}
			if (c->qresync)
				imap_out_printf(&vanished, "%s%u",
				    vanished.len ? "," : "", c->view[i].uid);
			else
				imap_out_printf(&c->out, "* %zu EXPUNGE\r\n",
				    i + 1);
			memmove(&c->view[i], &c->view[i + 1],
			    (c->nview - i - 1) * sizeof(*c->view));
			c->nview--;
			continue;
		}
		if (i < c->nview && c->view[i].uid == msgs[j]->uid) {
			if (c->view[i].modseq != msgs[j]->modseq ||
			    c->view[i].flags != msgs[j]->flags) {
				out_fetch_flags(c, i + 1, msgs[j], 0);
				c->view[i].modseq = msgs[j]->modseq;
				c->view[i].flags = msgs[j]->flags;
			}
			i++;
			j++;
			continue;
		}
		/* Only new messages remain (uids only grow). */
		if (i < c->nview) {
			j++;    /* a uid below the view's: cannot happen */
			continue;
		}
		if (view_reserve(c, c->nview + 1) != 0)
			break;
		c->view[c->nview].uid = msgs[j]->uid;
		c->view[c->nview].id = msgs[j]->id;
		c->view[c->nview].flags = msgs[j]->flags;
		c->view[c->nview].modseq = msgs[j]->modseq;
		c->view[c->nview].recent = 0;
		c->nview++;
		i++;
		j++;
		added++;
	}
	if (vanished.len > 0) {
		imap_out_str(&c->out, "* VANISHED ");
		imap_out_add(&c->out, vanished.p, vanished.len);
		imap_out_str(&c->out, "\r\n");
	}
	imap_out_finish(&vanished);
	if (added > 0)
		imap_out_printf(&c->out, "* %zu EXISTS\r\n", c->nview);
	c->view_uidnext = f->uidnext;
	c->view_modseq = f->highest_modseq;
}

static void
view_clear(struct imap_conn *c)
{
	free(c->view);
	c->view = NULL;
	c->nview = c->view_cap = 0;
	c->folder = 0;
}

/* The view positions a sequence set names (seq numbers or UIDs); a
 * malloc'd array of indexes in view order.  0 or -1 (BAD). */
static int
resolve_set(struct imap_conn *c, const struct imap_arg *a, int uid,
    size_t **idx_r, size_t *n_r)
{
	struct imap_seqset set;
	size_t *idx, n = 0, i;

	*idx_r = NULL;
	*n_r = 0;
	if (a->type != IMAP_ARG_ATOM || imap_seqset_parse(a->s, &set) != 0 ||
	    set.saved) {
		imap_seqset_finish(&set);
		return -1;
	}
	if (uid)
		imap_seqset_resolve(&set, c->nview ? c->view[c->nview - 1].uid
		    : 0);
	else
		imap_seqset_resolve(&set, (uint32_t)c->nview);
	if (!uid) {
		/* A sequence number beyond the view is an error. */
		for (i = 0; i < set.n; i++)
			if (set.r[i].hi > c->nview) {
				imap_seqset_finish(&set);
				return -2;
			}
	}
	if ((idx = malloc((c->nview ? c->nview : 1) * sizeof(*idx))) ==
	    NULL) {
		imap_seqset_finish(&set);
		return -1;
	}
	for (i = 0; i < c->nview; i++)
		if (imap_seqset_contains(&set, uid ? c->view[i].uid :
		    (uint32_t)(i + 1)))
			idx[n++] = i;
	imap_seqset_finish(&set);
	*idx_r = idx;
	*n_r = n;
	return 0;
}

/* ---- the body cache ----------------------------------------------------- */

/* Parsed messages, shared by every connection: a FETCH of headers and
 * structure over a whole folder parses each message once, not once per
 * item.  A few entries only: bodies are plaintext, kept briefly. */
#define BODY_CACHE 32

static struct {
	bridge_account *acct;
	uint64_t id;
	imap_msg *m;
	uint64_t used;
	uint64_t pgp_gen;        /* pins generation it was served under */
	uint8_t what;            /* IMAP_SUMMARY_* it can be summarised as */
} body_cache[BODY_CACHE];
static uint64_t body_clock;

int imap_pgp_passthrough;

/*
 * OpenPGP mail is served decrypted (client-core/pgpmail.h), unless the
 * bridge runs with --pgp-passthrough.  The served form is cached by
 * client-core; a new or accepted key of a correspondent (a new pins
 * generation) makes it again, so "unknown-key" turns into "verified".
 * Returns 0 when the stored bytes are served (no OpenPGP, or own mail),
 * 1 when *body was replaced by the served form, -1 when serving failed
 * (the stored bytes are served this time, but may not be next time).
 */
static int
pgp_serve(bridge_account *a, uint64_t id, uint8_t **body, size_t *len)
{
	sp_session *s = bridge_account_session(a);
	const struct sp_mbox_msg *m = sp_mbox_msg(bridge_account_mbox(a), id);
	uint8_t *out = NULL;
	size_t out_len = 0;

	/* Only received mail: what this account stored itself (APPEND,
	 * imports, drafts) comes back byte for byte, as IMAP promises.  On
	 * error the message is served as stored: still readable, and the
	 * client sees the OpenPGP data as it arrived. */
	if (m == NULL || m->own)
		return 0;
	if (sp_pgpmail_served(sp_session_cache(s), sp_session_keys(s), id,
	    *body, *len, &out, &out_len, NULL) != 0)
		return -1;
	if (out == NULL)
		return 0;
	sodium_memzero(*body, *len);
	free(*body);
	*body = out;
	*len = out_len;
	return 1;
}

static uint64_t
pgp_gen(bridge_account *a)
{
	return imap_pgp_passthrough ? 0 :
	    sp_pgpkeys_gen(sp_session_cache(bridge_account_session(a)));
}

/* The served message id, parsed; *what_r (may be NULL) receives what a
 * summary of it describes (imap_summary.h; 0: nothing to keep, serving
 * failed). */
static imap_msg *
body_get(struct imap_conn *c, uint64_t id, uint8_t *what_r, char *err,
    size_t errlen)
{
	sp_mbox *mb = bridge_account_mbox(c->acct);
	enum sp_mbox_sig sig;
	uint8_t *body = NULL, what;
	size_t len = 0, i, victim = 0;
	imap_msg *m;
	sp_client *cl;
	uint64_t gen = pgp_gen(c->acct);
	int rc;

	for (i = 0; i < BODY_CACHE; i++) {
		if (body_cache[i].m && body_cache[i].acct == c->acct &&
		    body_cache[i].id == id && body_cache[i].pgp_gen == gen) {
			body_cache[i].used = ++body_clock;
			if (what_r)
				*what_r = body_cache[i].what;
			return body_cache[i].m;
		}
		if (body_cache[i].used < body_cache[victim].used)
			victim = i;
	}
	if ((cl = bridge_account_client(c->acct, err, errlen)) == NULL)
		return NULL;
	rc = sp_mbox_body(mb, cl, id, &body, &len, &sig, NULL, err, errlen);
	if (rc != 0) {
		(void)bridge_account_settle(c->acct, rc, err, errlen);
		return NULL;
	}
	if (imap_pgp_passthrough) {
		what = IMAP_SUMMARY_STORED;
	} else {
		switch (pgp_serve(c->acct, id, &body, &len)) {
		case 0:
			what = IMAP_SUMMARY_STORED | IMAP_SUMMARY_SERVED;
			break;
		case 1:
			what = IMAP_SUMMARY_SERVED;
			break;
		default:
			what = 0;
			break;
		}
	}
	if (imap_msg_create(body, len, &m) != 0)
		return NULL;
	imap_msg_destroy(body_cache[victim].m);
	body_cache[victim].acct = c->acct;
	body_cache[victim].id = id;
	body_cache[victim].m = m;
	body_cache[victim].pgp_gen = gen;
	body_cache[victim].what = what;
	body_cache[victim].used = ++body_clock;
	if (what_r)
		*what_r = what;
	return m;
}

struct imap_msg *
imap_cmd_body(struct imap_conn *c, uint64_t id, char *err, size_t errlen)
{
	return body_get(c, id, NULL, err, errlen);
}

void
imap_cmd_conn_finish(struct imap_conn *c)
{
	if (c->parked && c->acct) {
		struct imap_conn **pp = &acct_entry(c->acct)->parked;

		while (*pp && *pp != c)
			pp = &(*pp)->park_next;
		if (*pp)
			*pp = c->park_next;
		c->parked = NULL;
	}
	view_clear(c);
	free(c->search_saved);
}

/* ---- not authenticated -------------------------------------------------- */

void
imap_cmd_greeting(struct imap_conn *c)
{
	imap_out_printf(&c->out, "* OK [CAPABILITY %s%s AUTH=PLAIN] "
	    "sealpost bridge ready\r\n", CAPS_COMMON,
	    imap_server_tls_available(c) ? " STARTTLS" : "");
}

static void
h_capability(struct imap_conn *c, struct imap_command *cmd, int uid)
{
	imap_out_printf(&c->out, "* CAPABILITY %s%s%s\r\n", CAPS_COMMON,
	    imap_server_tls_available(c) && c->state == IMAP_S_NOTAUTH ?
	    " STARTTLS" : "", c->state == IMAP_S_NOTAUTH ? " AUTH=PLAIN" :
	    "");
	reply(c, cmd, "OK", "CAPABILITY completed");
}

static void
h_noop(struct imap_conn *c, struct imap_command *cmd, int uid)
{
	reply(c, cmd, "OK", "%s completed", cmd->name);
}

static void
h_logout(struct imap_conn *c, struct imap_command *cmd, int uid)
{
	imap_out_str(&c->out, "* BYE logging out\r\n");
	reply(c, cmd, "OK", "LOGOUT completed");
	c->state = IMAP_S_LOGOUT;
}

static void
h_starttls(struct imap_conn *c, struct imap_command *cmd, int uid)
{
	if (!imap_server_tls_available(c)) {
		reply(c, cmd, "BAD", "TLS is already on");
		return;
	}
	reply(c, cmd, "OK", "begin TLS now");
	c->starttls_now = 1;
}

static void
login_as(struct imap_conn *c, struct imap_command *cmd, const char *user,
    const char *pw, size_t pwlen)
{
	bridge_account *a = imap_server_find_account(c->srv, user);

	if (a == NULL || !bridge_account_check_password(a, pw, pwlen)) {
		imap_conn_log(c, "login failed");
		reply(c, cmd, "NO", "[AUTHENTICATIONFAILED] wrong user name "
		    "or bridge password");
		return;
	}
	c->acct = a;
	c->state = IMAP_S_AUTH;
	imap_conn_log(c, "logged in as %s", bridge_account_address(a));
	reply(c, cmd, "OK", "[CAPABILITY %s] logged in", CAPS_COMMON);
}

static void
h_login(struct imap_conn *c, struct imap_command *cmd, int uid)
{
	if (!imap_arg_is_string(&cmd->args[0]) ||
	    !imap_arg_is_string(&cmd->args[1])) {
		reply(c, cmd, "BAD", "LOGIN user password");
		return;
	}
	login_as(c, cmd, cmd->args[0].s, cmd->args[1].s, cmd->args[1].len);
}

static void
auth_plain(struct imap_conn *c, struct imap_command *cmd, const char *b64,
    size_t len)
{
	unsigned char *dec = sodium_malloc(len + 1);
	size_t n = 0;
	const char *authz, *user, *pw;
	size_t ulen;

	if (dec == NULL || sodium_base642bin(dec, len, b64, len, NULL, &n,
	    NULL, sodium_base64_VARIANT_ORIGINAL) != 0) {
		reply(c, cmd, "BAD", "invalid base64");
		goto out;
	}
	dec[n] = 0;
	authz = (const char *)dec;
	user = memchr(dec, 0, n) ? authz + strlen(authz) + 1 : NULL;
	if (user == NULL || (size_t)(user - authz) >= n ||
	    (ulen = strlen(user), (size_t)(user - authz) + ulen >= n)) {
		reply(c, cmd, "BAD", "malformed PLAIN response");
		goto out;
	}
	pw = user + ulen + 1;
	if (*authz && strcasecmp(authz, user) != 0) {
		reply(c, cmd, "NO", "[AUTHORIZATIONFAILED] cannot act as "
		    "another user");
		goto out;
	}
	login_as(c, cmd, user, pw, n - (size_t)(pw - authz));
out:
	if (dec)
		sodium_free(dec);
}

static void
h_authenticate(struct imap_conn *c, struct imap_command *cmd, int uid)
{
	if (!imap_arg_is_string(&cmd->args[0]) ||
	    strcasecmp(cmd->args[0].s, "PLAIN") != 0) {
		reply(c, cmd, "NO", "only AUTHENTICATE PLAIN is offered");
		return;
	}
	if (cmd->nargs == 2) {
		if (strcmp(cmd->args[1].s, "=") == 0)
			auth_plain(c, cmd, "", 0);
		else
			auth_plain(c, cmd, cmd->args[1].s, cmd->args[1].len);
		return;
	}
	snprintf(c->auth_tag, sizeof(c->auth_tag), "%s", cmd->tag);
	c->auth_pending = 1;
	imap_parser_raw_line(c->parser);
	imap_out_str(&c->out, "+ \r\n");
}

/* The client's line after "+ " in AUTHENTICATE. */
static void
auth_continue(struct imap_conn *c, struct imap_command *raw)
{
	struct imap_command cmd = { .tag = c->auth_tag, .name =
	    "AUTHENTICATE" };

	c->auth_pending = 0;
	if (raw->raw_len == 1 && raw->raw[0] == '*') {
		reply(c, &cmd, "BAD", "AUTHENTICATE cancelled");
		return;
	}
	auth_plain(c, &cmd, raw->raw, raw->raw_len);
}

/* ---- authenticated ------------------------------------------------------ */

static void
h_enable(struct imap_conn *c, struct imap_command *cmd, int uid)
{
	size_t i;

	imap_out_str(&c->out, "* ENABLED");
	for (i = 0; i < cmd->nargs; i++) {
		if (imap_arg_atom_is(&cmd->args[i], "CONDSTORE") &&
		    !c->condstore) {
			c->condstore = 1;
			imap_out_str(&c->out, " CONDSTORE");
		} else if (imap_arg_atom_is(&cmd->args[i], "QRESYNC") &&
		    !c->qresync) {
			c->qresync = c->condstore = 1;
			imap_out_str(&c->out, " QRESYNC");
		} else if (imap_arg_atom_is(&cmd->args[i], "UTF8=ACCEPT") &&
		    !c->utf8) {
			/* RFC 6855: names (and strings) are UTF-8 now. */
			c->utf8 = 1;
			imap_out_str(&c->out, " UTF8=ACCEPT");
		} else if (imap_arg_atom_is(&cmd->args[i], "IMAP4rev2") &&
		    !c->rev2) {
			/* RFC 9051: UTF-8 names, ESEARCH replies to SEARCH,
			 * no RECENT. */
			c->rev2 = c->utf8 = 1;
			imap_out_str(&c->out, " IMAP4rev2");
		}
	}
	imap_out_str(&c->out, "\r\n");
	reply(c, cmd, "OK", "ENABLE completed");
}

static void
h_id(struct imap_conn *c, struct imap_command *cmd, int uid)
{
	imap_out_str(&c->out, "* ID (\"name\" \"sealpost-bridge\" "
	    "\"vendor\" \"sealpost\")\r\n");
	reply(c, cmd, "OK", "ID completed");
}

static void
h_namespace(struct imap_conn *c, struct imap_command *cmd, int uid)
{
	imap_out_str(&c->out, "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
	reply(c, cmd, "OK", "NAMESPACE completed");
}

/* LIST pattern match: '*' anything, '%' anything but '/'. */
static int
match(const char *pat, const char *s)
{
	for (; *pat; pat++, s++) {
		if (*pat == '*' || *pat == '%') {
			for (;; s++) {
				if (match(pat + 1, s))
					return 1;
				if (*s == 0 || (*pat == '%' && *s == '/'))
					return 0;
			}
		}
		if (*s == 0)
			return 0;
		if (*pat != *s)
			return 0;
	}
	return *s == 0;
}

static int
match_mailbox(const char *pat, const char *name)
{
	/* INBOX matches case-insensitively. */
	if (strncasecmp(pat, "INBOX", 5) == 0 && strcmp(name, "INBOX") == 0)
		return match(pat + 5, "") || match(pat, name);
	return match(pat, name);
}

static int
has_children(const struct sp_mbox_folder *fs, size_t n, const char *name)
{
	size_t i, l = strlen(name);

	for (i = 0; i < n; i++)
		if (strncmp(fs[i].name, name, l) == 0 && fs[i].name[l] == '/')
			return 1;
	return 0;
}

enum {
	LR_SUBSCRIBED = 1, LR_SPECIAL = 2, LR_CHILDREN = 4, LR_STATUS = 8,
	LS_SUBSCRIBED = 16, LS_SPECIAL = 32, LS_RECURSIVE = 64,
};

static unsigned status_items(const struct imap_arg *a);
static void out_status(struct imap_conn *c, const struct sp_mbox_folder *f,
    unsigned items);

/* A LIST reference or pattern in the model's UTF-8.  One that does not
 * decode is taken as it is: it then matches only names spelt that way,
 * which is what a client sending raw UTF-8 without UTF8=ACCEPT means. */
static void
list_name(struct imap_conn *c, const struct imap_arg *a, char *buf,
    size_t cap)
{
	if (c->utf8 || imap_utf7_decode(a->s, a->len, buf, cap, NULL) != 0)
		snprintf(buf, cap, "%s", a->s);
}

/* LIST and LSUB, with LIST-EXTENDED selection and return options. */
static void
list_run(struct imap_conn *c, struct imap_command *cmd, int lsub)
{
	sp_mbox *mb = bridge_account_mbox(c->acct);
	const struct imap_arg *a = cmd->args, *pats;
	const struct sp_mbox_folder *fs;
	unsigned opts = 0, st_items = 0;
	size_t na = cmd->nargs, npats, i, k, nf;
	char ref[SP_MBOX_NAME_MAX + 1], pat[2 * SP_MBOX_NAME_MAX + 2];

	if (!lsub && na > 0 && a[0].type == IMAP_ARG_LIST) {
		for (i = 0; i < a[0].n; i++) {
			if (imap_arg_atom_is(&a[0].list[i], "SUBSCRIBED"))
				opts |= LS_SUBSCRIBED | LR_SUBSCRIBED;
			else if (imap_arg_atom_is(&a[0].list[i],
			    "SPECIAL-USE"))
				opts |= LS_SPECIAL | LR_SPECIAL;
			else if (imap_arg_atom_is(&a[0].list[i],
			    "RECURSIVEMATCH"))
				opts |= LS_RECURSIVE;
			else if (!imap_arg_atom_is(&a[0].list[i], "REMOTE")) {
				reply(c, cmd, "BAD", "unknown selection "
				    "option");
				return;
			}
		}
		a++;
		na--;
	}
	if (na < 2 || !imap_arg_is_string(&a[0])) {
		reply(c, cmd, "BAD", "%s reference mailbox", cmd->name);
		return;
	}
	pats = &a[1];
	npats = 1;
	if (a[1].type == IMAP_ARG_LIST) {
		pats = a[1].list;
		npats = a[1].n;
	}
	if (!lsub && na >= 4 && imap_arg_atom_is(&a[2], "RETURN") &&
	    a[3].type == IMAP_ARG_LIST) {
		for (i = 0; i < a[3].n; i++) {
			const struct imap_arg *r = &a[3].list[i];

			if (imap_arg_atom_is(r, "SUBSCRIBED"))
				opts |= LR_SUBSCRIBED;
			else if (imap_arg_atom_is(r, "SPECIAL-USE"))
				opts |= LR_SPECIAL;
			else if (imap_arg_atom_is(r, "CHILDREN"))
				opts |= LR_CHILDREN;
			else if (imap_arg_atom_is(r, "STATUS") &&
			    i + 1 < a[3].n) {
				opts |= LR_STATUS;
				if ((st_items = status_items(
				    &a[3].list[++i])) == 0) {
					reply(c, cmd, "BAD", "bad STATUS "
					    "items");
					return;
				}
			} else {
				reply(c, cmd, "BAD", "unknown return option");
				return;
			}
		}
	} else if (na != 2) {
		reply(c, cmd, "BAD", "%s reference mailbox", cmd->name);
		return;
	}
	list_name(c, &a[0], ref, sizeof(ref));
	fs = sp_mbox_folders(mb, &nf);
	for (k = 0; k < npats; k++) {
		if (!imap_arg_is_string(&pats[k])) {
			reply(c, cmd, "BAD", "bad mailbox pattern");
			return;
		}
		if (pats[k].len == 0 && !(opts & ~0u)) {
			/* The hierarchy delimiter query. */
			imap_out_printf(&c->out, "* %s (\\Noselect) \"/\" "
			    "\"\"\r\n", lsub ? "LSUB" : "LIST");
			continue;
		}
		{
			char p1[SP_MBOX_NAME_MAX + 1];

			list_name(c, &pats[k], p1, sizeof(p1));
			snprintf(pat, sizeof(pat), "%s%s", ref, p1);
		}
		for (i = 0; i < nf; i++) {
			const struct sp_mbox_folder *f = &fs[i];
			int n = 0;

			if (!match_mailbox(pat, f->name))
				continue;
			if ((lsub || (opts & LS_SUBSCRIBED)) && !f->subscribed)
				continue;
			if ((opts & LS_SPECIAL) && (f->id >= sizeof(
			    special_use) / sizeof(special_use[0]) ||
			    special_use[f->id] == NULL))
				continue;
			imap_out_printf(&c->out, "* %s (", lsub ? "LSUB" :
			    "LIST");
			if (!lsub) {
				imap_out_str(&c->out, has_children(fs, nf,
				    f->name) ? "\\HasChildren" :
				    "\\HasNoChildren");
				n++;
			}
			if (f->subscribed && (opts & LR_SUBSCRIBED))
				imap_out_printf(&c->out, "%s\\Subscribed",
				    n++ ? " " : "");
			if (f->id < sizeof(special_use) /
			    sizeof(special_use[0]) && special_use[f->id] &&
			    !lsub)
				imap_out_printf(&c->out, "%s%s", n++ ? " " :
				    "", special_use[f->id]);
			imap_out_str(&c->out, ") \"/\" ");
			out_mailbox(c, f->name);
			imap_out_str(&c->out, "\r\n");
			if (opts & LR_STATUS)
				out_status(c, f, st_items);
		}
	}
	reply(c, cmd, "OK", "%s completed", cmd->name);
}

static void
h_list(struct imap_conn *c, struct imap_command *cmd, int uid)
{
	list_run(c, cmd, 0);
}

static void
h_lsub(struct imap_conn *c, struct imap_command *cmd, int uid)
{
	list_run(c, cmd, 1);
}

enum {
	ST_MESSAGES = 1, ST_RECENT = 2, ST_UIDNEXT = 4, ST_UIDVALIDITY = 8,
	ST_UNSEEN = 16, ST_HIGHESTMODSEQ = 32, ST_SIZE = 64, ST_DELETED = 128,
};

static unsigned
status_items(const struct imap_arg *a)
{
	static const char *names[] = { "MESSAGES", "RECENT", "UIDNEXT",
	    "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ", "SIZE", "DELETED" };
	unsigned items = 0;
	size_t i, j;

	if (a->type != IMAP_ARG_LIST || a->n == 0)
		return 0;
	for (i = 0; i < a->n; i++) {
		for (j = 0; j < sizeof(names) / sizeof(names[0]); j++)
			if (imap_arg_atom_is(&a->list[i], names[j]))
				break;
		if (j == sizeof(names) / sizeof(names[0]))
			return 0;
		items |= 1u << j;
	}
	return items;
}

static void
out_status(struct imap_conn *c, const struct sp_mbox_folder *f,
    unsigned items)
{
	sp_mbox *mb = bridge_account_mbox(c->acct);
	const struct sp_mbox_msg *const *msgs;
	uint64_t size = 0, deleted = 0;
	size_t n = 0, i;
	int sp = 0;

	if ((items & (ST_SIZE | ST_DELETED)) &&
	    sp_mbox_list(mb, f->id, &msgs, &n) == 0)
		for (i = 0; i < n; i++) {
			size += msgs[i]->meta.size;
			deleted += (msgs[i]->flags & SP_MBOX_F_DELETED) != 0;
		}
	imap_out_str(&c->out, "* STATUS ");
	out_mailbox(c, f->name);
	imap_out_str(&c->out, " (");
#define ITEM(bit, fmt, v) do { if (items & (bit)) { imap_out_printf( \
	&c->out, "%s" fmt, sp++ ? " " : "", v); } } while (0)
	ITEM(ST_MESSAGES, "MESSAGES %u", f->exists);
	ITEM(ST_RECENT, "RECENT %u", 0u);
	ITEM(ST_UIDNEXT, "UIDNEXT %u", f->uidnext);
	ITEM(ST_UIDVALIDITY, "UIDVALIDITY %u", f->id);
	ITEM(ST_UNSEEN, "UNSEEN %u", f->unseen);
	ITEM(ST_HIGHESTMODSEQ, "HIGHESTMODSEQ %llu",
	    (unsigned long long)(f->highest_modseq ? f->highest_modseq : 1));
	ITEM(ST_SIZE, "SIZE %llu", (unsigned long long)size);
	ITEM(ST_DELETED, "DELETED %llu", (unsigned long long)deleted);
#undef ITEM
	imap_out_str(&c->out, ")\r\n");
}

static void
h_status(struct imap_conn *c, struct imap_command *cmd, int uid)
{
	const struct sp_mbox_folder *f = folder_arg(c, &cmd->args[0]);
	unsigned items = status_items(&cmd->args[1]);

	if (items == 0) {
		reply(c, cmd, "BAD", "STATUS mailbox (items)");
		return;
	}
	if (f == NULL) {
		reply(c, cmd, "NO", "[NONEXISTENT] no such mailbox");
		return;
	}
	out_status(c, f, items);
	reply(c, cmd, "OK", "STATUS completed");
}

/* QRESYNC: VANISHED (EARLIER) for the uids the client may know that are
 * gone, and FETCH for what changed since its modseq. */
static void
qresync_report(struct imap_conn *c, uint64_t since, const char *known)
{
	struct imap_seqset ks;
	struct imap_out v;
	uint32_t u, lo = 0, hi = 0, last_uid;
	size_t i, j = 0;
	int have = 0;

	last_uid = c->view_uidnext > 0 ? c->view_uidnext - 1 : 0;
	memset(&ks, 0, sizeof(ks));
	if (known && imap_seqset_parse(known, &ks) == 0)
		imap_seqset_resolve(&ks, last_uid);
	imap_out_init(&v);
	/* Every uid below uidnext that is not in the view has gone. */
	for (u = 1; u <= last_uid && u != 0; u++) {
		while (j < c->nview && c->view[j].uid < u)
			j++;
		if ((j < c->nview && c->view[j].uid == u) ||
		    (known && !imap_seqset_contains(&ks, u))) {
			continue;
		}
		if (have && u == hi + 1) {
			hi = u;
			continue;
		}
		if (have)
			imap_out_printf(&v, lo == hi ? "%s%u" : "%s%u:%u",
			    v.len ? "," : "", lo, hi);
		lo = hi = u;
		have = 1;
		if (u > 10000000)
			break;
	}
	if (have)
		imap_out_printf(&v, lo == hi ? "%s%u" : "%s%u:%u",
		    v.len ? "," : "", lo, hi);
	if (v.len > 0 && since > 0) {
		imap_out_str(&c->out, "* VANISHED (EARLIER) ");
		imap_out_add(&c->out, v.p, v.len);
		imap_out_str(&c->out, "\r\n");
	}
	imap_out_finish(&v);
	imap_seqset_finish(&ks);
	for (i = 0; i < c->nview; i++) {
		const struct sp_mbox_msg *m;

		if (c->view[i].modseq <= since)
			continue;
		m = sp_mbox_msg(bridge_account_mbox(c->acct), c->view[i].id);
		if (m)
			out_fetch_flags(c, i + 1, m, 1);
	}
}

static void
h_select(struct imap_conn *c, struct imap_command *cmd, int uid)
{
	const struct sp_mbox_folder *f;
	int examine = strcmp(cmd->name, "EXAMINE") == 0;
	uint64_t since = 0;
	const char *known = NULL;
	int qresync = 0;
	size_t i, unseen = 0;

	if (cmd->nargs == 2) {
		const struct imap_arg *p = &cmd->args[1];

		if (p->type != IMAP_ARG_LIST) {
			reply(c, cmd, "BAD", "bad SELECT parameters");
			return;
		}
		for (i = 0; i < p->n; i++) {
			if (imap_arg_atom_is(&p->list[i], "CONDSTORE")) {
				c->condstore = 1;
			} else if (imap_arg_atom_is(&p->list[i], "QRESYNC") &&
			    i + 1 < p->n && p->list[i + 1].type ==
			    IMAP_ARG_LIST && p->list[i + 1].n >= 2) {
				const struct imap_arg *q = p->list[i + 1].list;
				uint64_t uv;

				if (!c->qresync) {
					reply(c, cmd, "BAD", "ENABLE QRESYNC "
					    "first");
					return;
				}
				if (imap_arg_number(&q[0], &uv) != 0 ||
				    imap_arg_number(&q[1], &since) != 0) {
					reply(c, cmd, "BAD", "bad QRESYNC");
					return;
				}
				if (p->list[i + 1].n >= 3 &&
				    q[2].type == IMAP_ARG_ATOM)
					known = q[2].s;
				qresync = 1;
				i++;
				/* A different UIDVALIDITY: no resync. */
				f = folder_arg(c, &cmd->args[0]);
				if (f && uv != f->id)
					qresync = 0;
			} else {
				reply(c, cmd, "BAD", "bad SELECT parameter");
				return;
			}
		}
	}
	if (c->state == IMAP_S_SELECTED) {
		view_clear(c);
		c->state = IMAP_S_AUTH;
		if (c->condstore)
			imap_out_str(&c->out, "* OK [CLOSED] previous "
			    "mailbox closed\r\n");
	}
	if ((f = folder_arg(c, &cmd->args[0])) == NULL) {
		reply(c, cmd, "NO", "[NONEXISTENT] no such mailbox");
		return;
	}
	c->folder = f->id;
	c->readonly = examine;
	c->nview = 0;
	c->state = IMAP_S_SELECTED;
	{
		/* Fill the view silently: SELECT reports EXISTS itself. */
		struct imap_out keep = c->out;

		imap_out_init(&c->out);
		view_sync(c, 1);
		imap_out_finish(&c->out);
		c->out = keep;
	}
	imap_out_str(&c->out, "* FLAGS (\\Answered \\Flagged \\Deleted "
	    "\\Seen \\Draft $Junk)\r\n");
	imap_out_printf(&c->out, "* OK [PERMANENTFLAGS (\\Answered \\Flagged "
	    "\\Deleted \\Seen \\Draft $Junk \\*)] flags that stay\r\n");
	imap_out_printf(&c->out, "* %zu EXISTS\r\n%s", c->nview,
	    c->rev2 ? "" : "* 0 RECENT\r\n");
	for (i = 0; i < c->nview; i++)
		if (!(c->view[i].flags & SP_META_F_SEEN)) {
			unseen = i + 1;
			break;
		}
	if (unseen)
		imap_out_printf(&c->out, "* OK [UNSEEN %zu] first unseen\r\n",
		    unseen);
	imap_out_printf(&c->out, "* OK [UIDVALIDITY %u] UIDs valid\r\n"
	    "* OK [UIDNEXT %u] predicted next UID\r\n", f->id, f->uidnext);
	imap_out_printf(&c->out, "* OK [HIGHESTMODSEQ %llu] modseq\r\n",
	    (unsigned long long)(c->view_modseq ? c->view_modseq : 1));
	if (qresync)
		qresync_report(c, since, known);
	reply(c, cmd, "OK", "[%s] %s completed", examine ? "READ-ONLY" :
	    "READ-WRITE", cmd->name);
}

static void
h_create(struct imap_conn *c, struct imap_command *cmd, int uid)
{
	char name[SP_MBOX_NAME_MAX + 1], err[256] = "";
	sp_client *cl;
	int rc;

	if (mailbox_name(c, &cmd->args[0], name, sizeof(name)) == NULL) {
		reply(c, cmd, "BAD", "bad mailbox name");
		return;
	}
	if (sp_mbox_folder_by_name(bridge_account_mbox(c->acct), name)) {
		reply(c, cmd, "NO", "[ALREADYEXISTS] mailbox exists");
		return;
	}
	if ((cl = bridge_account_client(c->acct, err, sizeof(err))) == NULL) {
		reply(c, cmd, "NO", "[UNAVAILABLE] %s", err);
		return;
	}
	rc = sp_mbox_folder_create(bridge_account_mbox(c->acct), cl, name,
	    NULL, err, sizeof(err));
	rc = bridge_account_settle(c->acct, rc, err, sizeof(err));
	if (rc == EEXIST)
		reply(c, cmd, "NO", "[ALREADYEXISTS] mailbox exists");
	else if (rc != 0)
		reply(c, cmd, "NO", "%s", errtext(rc, err));
	else
		reply(c, cmd, "OK", "CREATE completed");
}

static void
h_delete(struct imap_conn *c, struct imap_command *cmd, int uid)
{
	const struct sp_mbox_folder *f = folder_arg(c, &cmd->args[0]);
	char err[256] = "";
	sp_client *cl;
	int rc;

	if (f == NULL) {
		reply(c, cmd, "NO", "[NONEXISTENT] no such mailbox");
		return;
	}
	if (f->id < SP_MBOX_USER_BASE) {
		reply(c, cmd, "NO", "[CANNOT] system mailboxes stay");
		return;
	}
	if ((cl = bridge_account_client(c->acct, err, sizeof(err))) == NULL) {
		reply(c, cmd, "NO", "[UNAVAILABLE] %s", err);
		return;
	}
	rc = sp_mbox_folder_delete(bridge_account_mbox(c->acct), cl, f->id,
	    err, sizeof(err));
	rc = bridge_account_settle(c->acct, rc, err, sizeof(err));
	if (rc != 0)
		reply(c, cmd, "NO", "%s", errtext(rc, err));
	else
		reply(c, cmd, "OK", "DELETE completed");
}

static void
h_rename(struct imap_conn *c, struct imap_command *cmd, int uid)
{
	const struct sp_mbox_folder *f = folder_arg(c, &cmd->args[0]);
	char name[SP_MBOX_NAME_MAX + 1], err[256] = "";
	sp_client *cl;
	uint32_t id;
	int rc;

	if (mailbox_name(c, &cmd->args[1], name, sizeof(name)) == NULL) {
		reply(c, cmd, "BAD", "bad mailbox name");
		return;
	}
	if (f == NULL) {
		reply(c, cmd, "NO", "[NONEXISTENT] no such mailbox");
		return;
	}
	if (sp_mbox_folder_by_name(bridge_account_mbox(c->acct), name)) {
		reply(c, cmd, "NO", "[ALREADYEXISTS] mailbox exists");
		return;
	}
	if (f->id < SP_MBOX_USER_BASE) {
		reply(c, cmd, "NO", "[CANNOT] system mailboxes keep their "
		    "names");
		return;
	}
	id = f->id;
	if ((cl = bridge_account_client(c->acct, err, sizeof(err))) == NULL) {
		reply(c, cmd, "NO", "[UNAVAILABLE] %s", err);
		return;
	}
	rc = sp_mbox_folder_rename(bridge_account_mbox(c->acct), cl, id, name,
	    err, sizeof(err));
	rc = bridge_account_settle(c->acct, rc, err, sizeof(err));
	if (rc != 0)
		reply(c, cmd, "NO", "%s", errtext(rc, err));
	else
		reply(c, cmd, "OK", "RENAME completed");
}

static void
h_subscribe(struct imap_conn *c, struct imap_command *cmd, int uid)
{
	const struct sp_mbox_folder *f = folder_arg(c, &cmd->args[0]);
	int on = strcmp(cmd->name, "SUBSCRIBE") == 0;
	char err[256] = "";
	sp_client *cl;
	int rc;

	if (f == NULL) {
		reply(c, cmd, "NO", "[NONEXISTENT] no such mailbox");
		return;
	}
	if (f->subscribed == on) {
		reply(c, cmd, "OK", "%s completed", cmd->name);
		return;
	}
	if ((cl = bridge_account_client(c->acct, err, sizeof(err))) == NULL) {
		reply(c, cmd, "NO", "[UNAVAILABLE] %s", err);
		return;
	}
	rc = sp_mbox_folder_subscribe(bridge_account_mbox(c->acct), cl,
	    f->id, on, err, sizeof(err));
	rc = bridge_account_settle(c->acct, rc, err, sizeof(err));
	if (rc != 0)
		reply(c, cmd, "NO", "%s", errtext(rc, err));
	else
		reply(c, cmd, "OK", "%s completed", cmd->name);
}

/* "07-Feb-1994 22:43:04 -0800" to seconds since the epoch. */
static int
parse_date_time(const char *s, uint64_t *t_r)
{
	static const char *mon[] = { "Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;
	char m[4], sign;
	int d, y, hh, mm, ss, zone, i;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%2d-%3s-%4d %2d:%2d:%2d %c%4d", &d, m, &y, &hh, &mm,
	    &ss, &sign, &zone) != 8 || (sign != '+' && sign != '-'))
		return -1;
	for (i = 0; i < 12; i++)
		if (strcasecmp(m, mon[i]) == 0)
			break;
	if (i == 12 || d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60 ||
	    y < 1970 || y > 9999)
		return -1;
	tm.tm_mday = d;
	tm.tm_mon = i;
	tm.tm_year = y - 1900;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	if ((t = timegm(&tm)) == (time_t)-1)
		return -1;
	t -= (sign == '-' ? -1 : 1) * ((zone / 100) * 3600 + (zone % 100) *
	    60);
	*t_r = t > 0 ? (uint64_t)t : 1;
	return 0;
}

static void
h_append(struct imap_conn *c, struct imap_command *cmd, int uid)
{
	const struct sp_mbox_folder *f = folder_arg(c, &cmd->args[0]);
	const struct imap_arg *a = &cmd->args[1], *msg;
	const char *kw[SP_MBOX_KEYWORDS_MAX];
	struct sp_mbox_add add;
	const struct sp_mbox_msg *m;
	char err[256] = "";
	uint32_t flags = 0;
	uint64_t id = 0, received = 0;
	size_t nkw = 0, left = cmd->nargs - 1;
	sp_client *cl;
	int rc;

	if (left > 0 && a->type == IMAP_ARG_LIST) {
		if (parse_flags(a, &flags, kw, &nkw) != 0) {
			reply(c, cmd, "BAD", "bad flags");
			return;
		}
		a++;
		left--;
	}
	if (left > 1 && a->type == IMAP_ARG_QUOTED) {
		if (parse_date_time(a->s, &received) != 0) {
			reply(c, cmd, "BAD", "bad date-time");
			return;
		}
		a++;
		left--;
	}
	msg = a;
	if (left != 1 || msg->type != IMAP_ARG_LITERAL) {
		reply(c, cmd, "BAD", "APPEND mailbox [(flags)] [date] literal");
		return;
	}
	if (f == NULL) {
		reply(c, cmd, "NO", "[TRYCREATE] no such mailbox");
		return;
	}
	/* The bridge's SMTP stored this Sent copy already (smtp_sent.h). */
	if (f->id == SP_MBOX_SENT && smtp_sent_take(c->acct,
	    (const uint8_t *)msg->s, msg->len, (uint64_t)time(NULL), &id) &&
	    (m = sp_mbox_msg(bridge_account_mbox(c->acct), id)) != NULL) {
		reply(c, cmd, "OK", "[APPENDUID %u %u] APPEND completed",
		    m->folder, m->uid);
		return;
	}
	memset(&add, 0, sizeof(add));
	add.folder = f->id;
	add.flags = flags;
	add.keywords = kw;
	add.nkeywords = nkw;
	add.received = received;
	add.sign = 1;
	if ((cl = bridge_account_client(c->acct, err, sizeof(err))) == NULL) {
		reply(c, cmd, "NO", "[UNAVAILABLE] %s", err);
		return;
	}
	rc = sp_mbox_add(bridge_account_mbox(c->acct), cl, &add,
	    (const uint8_t *)msg->s, msg->len, &id, err, sizeof(err));
	rc = bridge_account_settle(c->acct, rc, err, sizeof(err));
	if (rc != 0) {
		reply(c, cmd, "NO", "%s", errtext(rc, err));
		return;
	}
	m = sp_mbox_msg(bridge_account_mbox(c->acct), id);
	if (m)
		reply(c, cmd, "OK", "[APPENDUID %u %u] APPEND completed",
		    m->folder, m->uid);
	else
		reply(c, cmd, "OK", "APPEND completed");
}

/* ---- selected ----------------------------------------------------------- */

/* Deletes the \Deleted messages of the view (all, or those in idx). */
static int
expunge(struct imap_conn *c, const size_t *idx, size_t nidx, char *err,
    size_t errlen)
{
	sp_mbox *mb = bridge_account_mbox(c->acct);
	uint64_t *ids;
	size_t n = 0, i, total = idx ? nidx : c->nview;
	sp_client *cl;
	int rc = 0;

	if ((ids = malloc((total ? total : 1) * sizeof(*ids))) == NULL)
		return ENOMEM;
	for (i = 0; i < total; i++) {
		size_t k = idx ? idx[i] : i;
		const struct sp_mbox_msg *m = sp_mbox_msg(mb, c->view[k].id);

		if (m && m->folder == c->folder &&
		    (m->flags & SP_MBOX_F_DELETED))
			ids[n++] = m->id;
	}
	for (i = 0; i < n && rc == 0; i += SP_MBOX_BATCH_MAX) {
		size_t k = n - i > SP_MBOX_BATCH_MAX ? SP_MBOX_BATCH_MAX :
		    n - i;

		if ((cl = bridge_account_client(c->acct, err, errlen)) ==
		    NULL) {
			rc = EPIPE;
			break;
		}
		rc = sp_mbox_delete(mb, cl, ids + i, k, err, errlen);
		rc = bridge_account_settle(c->acct, rc, err, errlen);
	}
	free(ids);
	return rc;
}

static void
h_close(struct imap_conn *c, struct imap_command *cmd, int uid)
{
	char err[256] = "";

	if (strcmp(cmd->name, "CLOSE") == 0 && !c->readonly)
		(void)expunge(c, NULL, 0, err, sizeof(err));
	view_clear(c);
	c->state = IMAP_S_AUTH;
	reply(c, cmd, "OK", "%s completed", cmd->name);
}

static void
h_expunge(struct imap_conn *c, struct imap_command *cmd, int uid)
{
	char err[256] = "";
	size_t *idx = NULL, n = 0;
	int rc;

	if (c->readonly) {
		reply(c, cmd, "NO", "[READ-ONLY] mailbox is read-only");
		return;
	}
	if (uid) {
		if (cmd->nargs != 1 || resolve_set(c, &cmd->args[0], 1, &idx,
		    &n) != 0) {
			reply(c, cmd, "BAD", "UID EXPUNGE uid-set");
			return;
		}
	} else if (cmd->nargs != 0) {
		reply(c, cmd, "BAD", "EXPUNGE takes no arguments");
		return;
	}
	rc = expunge(c, uid ? idx : NULL, n, err, sizeof(err));
	free(idx);
	view_sync(c, 1);
	if (rc != 0)
		reply(c, cmd, "NO", "%s", errtext(rc, err));
	else
		reply(c, cmd, "OK", "%s completed", cmd->name);
}

static void
out_internaldate(struct imap_out *o, uint64_t t)
{
	static const char *mon[] = { "Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	imap_out_printf(o, "\"%02d-%s-%04d %02d:%02d:%02d +0000\"",
	    tm.tm_mday, mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
	    tm.tm_min, tm.tm_sec);
}

/* ---- summaries ------------------------------------------------------
 *
 * ENVELOPE, BODYSTRUCTURE, BODY, RFC822.SIZE and top-level header
 * sections come from the message's summary in the cache (imap_summary.h)
 * when it describes what BODY[] serves now; otherwise from the body,
 * whose summary is then kept.  Summaries made during one FETCH are
 * written in batches of SUM_FLUSH (one fsync each) after the bodies they
 * came from: a batch cannot stay open while sp_mbox_body() caches a body
 * with sp_cache_put() on this thread.
 */
#define SUM_FLUSH 256

struct fetch_ctx {
	sp_cache *cache;
	uint64_t gen;            /* pins generation, read once per FETCH */
	size_t n;
	uint64_t id[SUM_FLUSH];
	uint8_t *v[SUM_FLUSH];
	size_t len[SUM_FLUSH];
};

static void
fetch_ctx_flush(struct fetch_ctx *x)
{
	sp_cache_batch *b = NULL;
	size_t i;
	int rc;

	if (x->n == 0)
		return;
	rc = sp_cache_begin(x->cache, &b);
	for (i = 0; i < x->n; i++) {
		uint8_t key[8];
		int k;

		for (k = 0; k < 8; k++)
			key[k] = (uint8_t)(x->id[i] >> (56 - 8 * k));
		if (rc == 0)
			rc = sp_cache_batch_put(b, SP_CACHE_T_IMAPSUM, key, 8,
			    x->v[i], x->len[i]);
		sodium_memzero(x->v[i], x->len[i]);
		free(x->v[i]);
	}
	/* A summary not kept is made again next time: not an error. */
	if (rc == 0)
		(void)sp_cache_commit(b);
	else
		sp_cache_abort(b);
	x->n = 0;
}

static void
fetch_ctx_keep(struct fetch_ctx *x, uint64_t id,
    const struct imap_summary *sum)
{
	if (imap_summary_encode(sum, &x->v[x->n], &x->len[x->n]) != 0)
		return;
	x->id[x->n++] = id;
	if (x->n == SUM_FLUSH)
		fetch_ctx_flush(x);
}

/* A header section the summary's header block answers alone. */
static int
header_only(const struct imap_fetch_att *a)
{
	if (a->item == IMAP_FI_RFC822_HEADER)
		return 1;
	return a->item == IMAP_FI_SECTION && a->nparts == 0 &&
	    (a->text == IMAP_ST_HEADER || a->text == IMAP_ST_HEADER_FIELDS ||
	    a->text == IMAP_ST_HEADER_FIELDS_NOT);
}

/*
 * The summary of m into *sum: from the cache when valid, else from the
 * body (*body_r is set then, owned by the body cache).  0 or -1 (err).
 */
static int
summary_get(struct imap_conn *c, struct fetch_ctx *x,
    const struct sp_mbox_msg *m, struct imap_summary *sum,
    imap_msg **body_r, char *err, size_t errlen)
{
	int want_stored = imap_pgp_passthrough || m->own;
	uint8_t what = 0;

	if (imap_summary_get(x->cache, m->id, sum) == 0) {
		if (imap_summary_valid(sum, want_stored, x->gen))
			return 0;
		imap_summary_finish(sum);
	}
	if ((*body_r = body_get(c, m->id, &what, err, errlen)) == NULL)
		return -1;
	if (imap_summary_compute(*body_r, what ? what : IMAP_SUMMARY_SERVED,
	    x->gen, sum) != 0) {
		snprintf(err, errlen, "message %llu cannot be summarised",
		    (unsigned long long)m->id);
		return -1;
	}
	if (what != 0)
		fetch_ctx_keep(x, m->id, sum);
	return 0;
}

/* One message's FETCH response.  0, or -1 when its body is unavailable
 * (err says why). */
static int
fetch_one(struct imap_conn *c, struct fetch_ctx *x, size_t seq,
    const struct sp_mbox_msg *m, const struct imap_fetch_atts *f, int uid,
    int modseq, char *err, size_t errlen)
{
	imap_msg *body = NULL, *head = NULL;
	struct imap_summary sum = { 0 };
	size_t i;
	int sp = 0, have_uid = 0, have_modseq = 0, need_sum = 0, rc = 0;
	int need_body = 0, headers = 0;

	/* RFC822.SIZE is the size of what BODY[] serves, which for OpenPGP
	 * mail is the decrypted form: it needs the summary. */
	for (i = 0; i < f->n; i++) {
		switch (f->a[i].item) {
		case IMAP_FI_ENVELOPE:
		case IMAP_FI_BODYSTRUCTURE:
		case IMAP_FI_BODY:
			need_sum = 1;
			break;
		case IMAP_FI_RFC822_SIZE:
			need_sum |= !imap_pgp_passthrough;
			break;
		default:
			if (header_only(&f->a[i]))
				headers = 1;
			else if (f->has_body)
				need_body |= f->a[i].item != IMAP_FI_UID &&
				    f->a[i].item != IMAP_FI_FLAGS &&
				    f->a[i].item != IMAP_FI_INTERNALDATE &&
				    f->a[i].item != IMAP_FI_MODSEQ;
			break;
		}
	}
	if ((need_sum || headers) && !need_body &&
	    summary_get(c, x, m, &sum, &body, err, errlen) != 0)
		return -1;
	if (headers && body == NULL && !need_body) {
		uint8_t *h;

		if (sum.header == NULL)
			need_body = 1;  /* too long to keep: from the body */
		else if ((h = malloc(sum.header_len + 1)) != NULL) {
			memcpy(h, sum.header, sum.header_len);
			if (imap_msg_create(h, sum.header_len, &head) != 0)
				head = NULL;
		}
		if (head == NULL)
			need_body = 1;
	}
	if (need_body && body == NULL) {
		uint8_t what = 0;

		if ((body = body_get(c, m->id, &what, err, errlen)) == NULL)
			goto fail;
		if (need_sum && sum.envelope == NULL) {
			if (imap_summary_compute(body, what ? what :
			    IMAP_SUMMARY_SERVED, x->gen, &sum) != 0)
				goto fail;
			if (what != 0)
				fetch_ctx_keep(x, m->id, &sum);
		}
	}
	imap_out_printf(&c->out, "* %zu FETCH (", seq);
	for (i = 0; i < f->n; i++) {
		const struct imap_fetch_att *a = &f->a[i];

		if (sp++)
			imap_out_str(&c->out, " ");
		switch (a->item) {
		case IMAP_FI_UID:
			imap_out_printf(&c->out, "UID %u", m->uid);
			have_uid = 1;
			break;
		case IMAP_FI_FLAGS:
			imap_out_str(&c->out, "FLAGS ");
			out_flags(&c->out, m->flags, m->keywords,
			    m->nkeywords, 0);
			break;
		case IMAP_FI_INTERNALDATE:
			imap_out_str(&c->out, "INTERNALDATE ");
			out_internaldate(&c->out, m->received);
			break;
		case IMAP_FI_RFC822_SIZE:
			imap_out_printf(&c->out, "RFC822.SIZE %llu",
			    (unsigned long long)(sum.envelope ? sum.size :
			    body ? imap_msg_size(body) :
			    m->meta.has_size ? m->meta.size : 0));
			break;
		case IMAP_FI_MODSEQ:
			imap_out_printf(&c->out, "MODSEQ (%llu)",
			    (unsigned long long)m->modseq);
			have_modseq = 1;
			break;
		case IMAP_FI_ENVELOPE:
			imap_out_str(&c->out, "ENVELOPE ");
			imap_out_add(&c->out, sum.envelope, sum.envelope_len);
			break;
		case IMAP_FI_BODYSTRUCTURE:
			imap_out_str(&c->out, "BODYSTRUCTURE ");
			imap_out_add(&c->out, sum.bodystructure,
			    sum.bodystructure_len);
			break;
		case IMAP_FI_BODY:
			imap_out_str(&c->out, "BODY ");
			imap_out_add(&c->out, sum.body, sum.body_len);
			break;
		default:
			(void)imap_msg_section(body ? body : head, a,
			    &c->out);
			break;
		}
	}
	if (uid && !have_uid)
		imap_out_printf(&c->out, "%sUID %u", sp++ ? " " : "", m->uid);
	if (modseq && !have_modseq)
		imap_out_printf(&c->out, "%sMODSEQ (%llu)", sp++ ? " " : "",
		    (unsigned long long)m->modseq);
	imap_out_str(&c->out, ")\r\n");
	goto out;
fail:
	rc = -1;
out:
	imap_msg_destroy(head);
	imap_summary_finish(&sum);
	return rc;
}

/*
 * Before a FETCH of summaries over many messages whose summaries are not
 * kept yet (the first listing after a sync): their bodies are fetched
 * from the server pipelined over several connections
 * (bridge_account_prefetch), not one round trip each.
 */
#define PREFETCH_MIN 32
#define PREFETCH_SAMPLE_MISSING 8

static void
prefetch(struct imap_conn *c, struct fetch_ctx *x,
    const struct imap_fetch_atts *f, const size_t *idx, size_t n)
{
	struct imap_summary sum;
	size_t i, step, missing = 0;
	char err[256];

	if (n < PREFETCH_MIN)
		return;
	for (i = 0; i < f->n; i++)
		if (f->a[i].item == IMAP_FI_ENVELOPE ||
		    f->a[i].item == IMAP_FI_BODYSTRUCTURE ||
		    f->a[i].item == IMAP_FI_BODY ||
		    f->a[i].item == IMAP_FI_RFC822_SIZE || f->has_body)
			break;
	if (i == f->n)
		return;
	/* A sample of up to 128 spread over the set, so that a listing
	 * whose summaries are all kept reads few of them twice. */
	step = n / 128 ? n / 128 : 1;
	for (i = 0; i < n; i += step) {
		const struct sp_mbox_msg *m = sp_mbox_msg(
		    bridge_account_mbox(c->acct), c->view[idx[i]].id);

		if (m == NULL)
			continue;
		if (imap_summary_get(x->cache, m->id, &sum) == 0 &&
		    imap_summary_valid(&sum, imap_pgp_passthrough || m->own,
		    x->gen)) {
			imap_summary_finish(&sum);
			continue;
		}
		imap_summary_finish(&sum);
		missing++;
	}
	if (missing >= PREFETCH_SAMPLE_MISSING)
		(void)bridge_account_prefetch(c->acct, err, sizeof(err));
}

/* ---- summaries in the background ------------------------------------
 *
 * After new messages arrive (and once at start), the account's
 * background thread (bridge_account_start_background) makes the
 * summaries a first FETCH would otherwise make, so that listing a folder
 * after a sync reads summaries only.  The IMAP loop holds the account
 * lock for whole commands, so this never holds it for long:
 *
 *   1. locked: the ids above the last one done (all of them again when
 *      the pins generation moved), with their own flag;
 *   2. unlocked: drop those whose kept summary holds;
 *   3. unlocked: when many are left, their bodies are fetched pipelined
 *      over extra connections against a private copy of the model
 *      (bridge_account_fetch_missing);
 *   4. BG_SLICE at a time: locked, the body from the cache (a few only:
 *      from the server over the writer connection) and its served form
 *      (pgp_serve, as body_get: the summary must describe what BODY[]
 *      serves); unlocked, parsing and summarising, then one cache batch.
 *
 * The state belongs to the background thread; the body cache of this
 * file is the loop's and is not touched.
 */
#define BG_SLICE 32

struct imap_bgsum {
	uint64_t hi;             /* every id <= hi was done (under gen) */
	uint64_t gen;
	int started;
};

struct imap_bgsum *
imap_bgsum_create(void)
{
	return calloc(1, sizeof(struct imap_bgsum));
}

void
imap_bgsum_destroy(void *st)
{
	free(st);
}

struct bg_item {
	uint64_t id;
	int own;
};

/* Step 1: the ids above st->hi, ascending by folder then uid (any order
 * will do).  Lock held.  *hi_r receives the largest id in the model. */
static struct bg_item *
bg_list(bridge_account *a, uint64_t above, size_t *n_r, uint64_t *hi_r)
{
	sp_mbox *mb = bridge_account_mbox(a);
	const struct sp_mbox_folder *fo;
	const struct sp_mbox_msg *const *v;
	struct bg_item *it = NULL, *t;
	size_t nf = 0, f, k, nv, n = 0, cap = 0;

	*hi_r = above;
	fo = sp_mbox_folders(mb, &nf);
	for (f = 0; f < nf; f++) {
		if (sp_mbox_list(mb, fo[f].id, &v, &nv) != 0)
			continue;
		for (k = 0; k < nv; k++) {
			if (v[k]->id <= above)
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 256;
				if ((t = realloc(it, cap * sizeof(*t))) ==
				    NULL) {
					free(it);
					*n_r = 0;
					*hi_r = above;
					return NULL;
				}
				it = t;
			}
			it[n].id = v[k]->id;
			it[n++].own = v[k]->own;
			if (v[k]->id > *hi_r)
				*hi_r = v[k]->id;
		}
	}
	*n_r = n;
	return it;
}

/* Step 4 for one slice: the summaries of it[0..n) into the cache.  The
 * number made. */
static size_t
bg_slice(bridge_account *a, sp_cache *cache, const struct bg_item *it,
    size_t n, uint64_t gen, int remote)
{
	struct fetch_ctx *x;
	uint8_t *body[BG_SLICE], what[BG_SLICE];
	size_t len[BG_SLICE], i, made = 0;
	enum sp_mbox_sig sig;
	char err[256];

	if ((x = calloc(1, sizeof(*x))) == NULL)
		return 0;
	x->cache = cache;
	x->gen = gen;
	bridge_account_lock(a);
	/* The pins moved since the list: the next run starts over. */
	if (pgp_gen(a) != gen)
		n = 0;
	for (i = 0; i < n; i++) {
		sp_mbox *mb = bridge_account_mbox(a);
		sp_client *cl = remote ? bridge_account_client(a, err,
		    sizeof(err)) : NULL;
		int rc;

		body[i] = NULL;
		what[i] = 0;
		if (sp_mbox_msg(mb, it[i].id) == NULL)
			continue;       /* gone meanwhile */
		rc = sp_mbox_body(mb, cl, it[i].id, &body[i], &len[i], &sig,
		    NULL, err, sizeof(err));
		if (rc != 0) {
			if (cl != NULL)
				(void)bridge_account_settle(a, rc, err,
				    sizeof(err));
			body[i] = NULL;
			continue;
		}
		if (imap_pgp_passthrough) {
			what[i] = IMAP_SUMMARY_STORED;
			continue;
		}
		switch (pgp_serve(a, it[i].id, &body[i], &len[i])) {
		case 0:
			what[i] = IMAP_SUMMARY_STORED | IMAP_SUMMARY_SERVED;
			break;
		case 1:
			what[i] = IMAP_SUMMARY_SERVED;
			break;
		default:
			/* Not kept: the FETCH tries serving it again. */
			sodium_memzero(body[i], len[i]);
			free(body[i]);
			body[i] = NULL;
			break;
		}
	}
	bridge_account_unlock(a);
	for (i = 0; i < n; i++) {
		struct imap_summary sum = { 0 };
		imap_msg *m;

		if (body[i] == NULL)
			continue;
		if (imap_msg_create(body[i], len[i], &m) != 0)
			continue;
		if (imap_summary_compute(m, what[i], gen, &sum) == 0) {
			fetch_ctx_keep(x, it[i].id, &sum);
			made++;
		}
		imap_summary_finish(&sum);
		imap_msg_destroy(m);
	}
	fetch_ctx_flush(x);
	free(x);
	return made;
}

size_t
imap_bgsum_run(bridge_account *a, struct imap_bgsum *st)
{
	sp_cache *cache = sp_session_cache(bridge_account_session(a));
	struct imap_summary sum;
	struct bg_item *it;
	uint64_t gen, hi;
	size_t n = 0, i, k, made = 0;
	char err[256];
	int remote;

	bridge_account_lock(a);
	gen = pgp_gen(a);
	if (!st->started || gen != st->gen) {
		st->hi = 0;
		st->gen = gen;
		st->started = 1;
	}
	it = bg_list(a, st->hi, &n, &hi);
	bridge_account_unlock(a);
	if (it == NULL)
		return 0;
	for (i = k = 0; i < n && !bridge_account_stopping(a); i++) {
		if (imap_summary_get(cache, it[i].id, &sum) == 0 &&
		    imap_summary_valid(&sum, imap_pgp_passthrough ||
		    it[i].own, gen)) {
			imap_summary_finish(&sum);
			continue;
		}
		imap_summary_finish(&sum);
		it[k++] = it[i];
	}
	n = k;
	/* Many: pipelined into the cache first; a few: one by one, from the
	 * server if need be, as the FETCH would. */
	remote = n < PREFETCH_MIN;
	if (!remote && !bridge_account_stopping(a))
		(void)bridge_account_fetch_missing(a, err, sizeof(err));
	for (i = 0; i < n && !bridge_account_stopping(a); i += BG_SLICE)
		made += bg_slice(a, cache, it + i, n - i < BG_SLICE ? n - i :
		    BG_SLICE, gen, remote);
	/* Bodies that failed are not tried again here: a FETCH will, and
	 * says why. */
	bridge_account_lock(a);
	if (i >= n && pgp_gen(a) == gen)
		st->hi = hi;
	bridge_account_unlock(a);
	free(it);
	return made;
}

static void
h_fetch(struct imap_conn *c, struct imap_command *cmd, int uid)
{
	sp_mbox *mb = bridge_account_mbox(c->acct);
	struct imap_fetch_atts f;
	const char *error = NULL;
	uint64_t since = 0, *seen_ids = NULL;
	size_t *idx = NULL, n = 0, i, nseen = 0;
	char err[256] = "";
	int rc, vanished = 0, failed = 0, modseq;
	struct fetch_ctx *x;

	if (cmd->nargs < 2 || cmd->nargs > 3) {
		reply(c, cmd, "BAD", "FETCH set items");
		return;
	}
	if (cmd->nargs == 3) {
		const struct imap_arg *m = &cmd->args[2];

		for (i = 0; m->type == IMAP_ARG_LIST && i < m->n; i++) {
			if (imap_arg_atom_is(&m->list[i], "CHANGEDSINCE") &&
			    i + 1 < m->n &&
			    imap_arg_number(&m->list[i + 1], &since) == 0)
				i++;
			else if (imap_arg_atom_is(&m->list[i], "VANISHED") &&
			    uid && c->qresync)
				vanished = 1;
			else
				break;
		}
		if (m->type != IMAP_ARG_LIST || i < m->n || since == 0) {
			reply(c, cmd, "BAD", "bad FETCH modifiers");
			return;
		}
		c->condstore = 1;
	}
	if (imap_fetch_atts_parse(&cmd->args[1], &f, &error) != 0) {
		reply(c, cmd, "BAD", "%s", error);
		return;
	}
	rc = resolve_set(c, &cmd->args[0], uid, &idx, &n);
	if (rc != 0) {
		imap_fetch_atts_finish(&f);
		reply(c, cmd, "BAD", rc == -2 ? "no such message" :
		    "bad sequence set");
		return;
	}
	modseq = c->condstore && (since > 0 || f.n > 0);
	if (vanished) {
		/* The gone uids in the set, as QRESYNC's VANISHED (EARLIER). */
		qresync_report(c, since, cmd->args[0].s);
	}
	/* Reading a body sets \Seen (not in EXAMINE, not with PEEK). */
	if (f.sets_seen && !c->readonly && n > 0 &&
	    (seen_ids = malloc(n * sizeof(*seen_ids))) != NULL) {
		for (i = 0; i < n; i++)
			if (!(c->view[idx[i]].flags & SP_META_F_SEEN))
				seen_ids[nseen++] = c->view[idx[i]].id;
		for (i = 0; i < nseen; i += SP_MBOX_BATCH_MAX) {
			size_t k = nseen - i > SP_MBOX_BATCH_MAX ?
			    SP_MBOX_BATCH_MAX : nseen - i;
			sp_client *cl = bridge_account_client(c->acct, err,
			    sizeof(err));

			if (cl == NULL)
				break;
			rc = sp_mbox_set_flags(mb, cl, seen_ids + i, k,
			    SP_META_F_SEEN, 0, NULL, 0, NULL, 0, err,
			    sizeof(err));
			(void)bridge_account_settle(c->acct, rc, err,
			    sizeof(err));
		}
		free(seen_ids);
	}
	if ((x = calloc(1, sizeof(*x))) == NULL) {
		free(idx);
		imap_fetch_atts_finish(&f);
		reply(c, cmd, "NO", "out of memory");
		return;
	}
	x->cache = sp_session_cache(bridge_account_session(c->acct));
	x->gen = pgp_gen(c->acct);
	if (f.n > 0)
		prefetch(c, x, &f, idx, n);
	for (i = 0; i < n; i++) {
		const struct sp_mbox_msg *m = sp_mbox_msg(mb,
		    c->view[idx[i]].id);
		int flags_now = 0;

		if (m == NULL || m->folder != c->folder)
			continue;       /* expunged elsewhere, not yet told */
		if (since && m->modseq <= since)
			continue;
		if (fetch_one(c, x, idx[i] + 1, m, &f, uid, modseq, err,
		    sizeof(err)) != 0) {
			failed = 1;
			continue;
		}
		/* What the client just saw is what its view holds. */
		if (c->view[idx[i]].flags != m->flags ||
		    c->view[idx[i]].modseq != m->modseq) {
			size_t k;

			for (k = 0; k < f.n; k++)
				flags_now |= f.a[k].item == IMAP_FI_FLAGS;
			if (!flags_now)
				out_fetch_flags(c, idx[i] + 1, m, uid);
			c->view[idx[i]].flags = m->flags;
			c->view[idx[i]].modseq = m->modseq;
		}
		if (c->out.len > 256 * 1024)
			imap_conn_flush(c);
	}
	fetch_ctx_flush(x);
	free(x);
	free(idx);
	imap_fetch_atts_finish(&f);
	if (failed)
		reply(c, cmd, "NO", "some messages could not be read: %s",
		    err);
	else
		reply(c, cmd, "OK", "%s completed", cmd->name);
}

static void
h_store(struct imap_conn *c, struct imap_command *cmd, int uid)
{
	sp_mbox *mb = bridge_account_mbox(c->acct);
	const struct imap_arg *a = cmd->args + 1;
	const char *kw[SP_MBOX_KEYWORDS_MAX], *op;
	uint64_t unchanged = UINT64_MAX;
	size_t *idx = NULL, n = 0, nkw = 0, i, nleft = cmd->nargs - 1;
	uint32_t bits;
	char err[256] = "";
	int silent, mode, rc, failed = 0;
	struct imap_out modified;

	if (nleft >= 3 && a->type == IMAP_ARG_LIST) {
		if (a->n != 2 || !imap_arg_atom_is(&a->list[0],
		    "UNCHANGEDSINCE") || imap_arg_number(&a->list[1],
		    &unchanged) != 0) {
			reply(c, cmd, "BAD", "bad STORE modifier");
			return;
		}
		c->condstore = 1;
		a++;
		nleft--;
	}
	if (nleft != 2 || a->type != IMAP_ARG_ATOM) {
		reply(c, cmd, "BAD", "STORE set item flags");
		return;
	}
	op = a->s;
	mode = op[0] == '+' ? 1 : op[0] == '-' ? -1 : 0;
	if (mode)
		op++;
	if (strncasecmp(op, "FLAGS", 5) != 0 || (op[5] && strcasecmp(op + 5,
	    ".SILENT") != 0)) {
		reply(c, cmd, "BAD", "unknown STORE item");
		return;
	}
	silent = op[5] != 0;
	if (parse_flags(&a[1], &bits, kw, &nkw) != 0) {
		reply(c, cmd, "BAD", "bad flags");
		return;
	}
	if (c->readonly) {
		reply(c, cmd, "NO", "[READ-ONLY] mailbox is read-only");
		return;
	}
	if ((rc = resolve_set(c, &cmd->args[0], uid, &idx, &n)) != 0) {
		reply(c, cmd, "BAD", rc == -2 ? "no such message" :
		    "bad sequence set");
		return;
	}
	imap_out_init(&modified);
	for (i = 0; i < n; i++) {
		const struct sp_mbox_msg *m = sp_mbox_msg(mb,
		    c->view[idx[i]].id);
		uint32_t add = 0, del = 0;
		const char *kdel[SP_MBOX_KEYWORDS_MAX];
		size_t nkdel = 0, k, j;
		uint64_t id;
		sp_client *cl;

		if (m == NULL || m->folder != c->folder)
			continue;
		if (m->modseq > unchanged) {
			imap_out_printf(&modified, "%s%u", modified.len ? "," :
			    "", uid ? m->uid : (uint32_t)(idx[i] + 1));
			continue;
		}
		if (mode >= 0)
			add = bits & ~m->flags;
		if (mode < 0)
			del = bits & m->flags;
		if (mode == 0) {
			del = m->flags & ~bits & SP_MBOX_F_SYSTEM;
			for (k = 0; k < m->nkeywords; k++) {
				for (j = 0; j < nkw; j++)
					if (strcasecmp(kw[j],
					    m->keywords[k]) == 0)
						break;
				if (j == nkw && nkdel < SP_MBOX_KEYWORDS_MAX)
					kdel[nkdel++] = m->keywords[k];
			}
		}
		id = m->id;
		if ((cl = bridge_account_client(c->acct, err, sizeof(err))) ==
		    NULL) {
			failed = 1;
			break;
		}
		/* One message at a time: each one's change differs in
		 * FLAGS mode, and UNCHANGEDSINCE is per message. */
		rc = sp_mbox_set_flags(mb, cl, &id, 1, add, del,
		    mode >= 0 ? kw : NULL, mode >= 0 ? nkw : 0,
		    mode < 0 ? kw : kdel, mode < 0 ? nkw : nkdel, err,
		    sizeof(err));
		rc = bridge_account_settle(c->acct, rc, err, sizeof(err));
		if (rc != 0) {
			failed = 1;
			break;
		}
	}
	for (i = 0; i < n && !failed; i++) {
		const struct sp_mbox_msg *m = sp_mbox_msg(mb,
		    c->view[idx[i]].id);

		if (m == NULL || m->folder != c->folder)
			continue;
		if (!silent || (c->condstore && m->modseq !=
		    c->view[idx[i]].modseq && unchanged != UINT64_MAX))
			out_fetch_flags(c, idx[i] + 1, m, uid);
		c->view[idx[i]].flags = m->flags;
		c->view[idx[i]].modseq = m->modseq;
	}
	free(idx);
	if (failed)
		reply(c, cmd, "NO", "%s", err);
	else if (modified.len)
		reply(c, cmd, "OK", "[MODIFIED %s] conditional STORE failed "
		    "for some", modified.p);
	else
		reply(c, cmd, "OK", "%s completed", cmd->name);
	imap_out_finish(&modified);
}

static void
h_copy(struct imap_conn *c, struct imap_command *cmd, int uid)
{
	sp_mbox *mb = bridge_account_mbox(c->acct);
	const struct sp_mbox_folder *dst = folder_arg(c, &cmd->args[1]);
	int move = strcmp(cmd->name, "MOVE") == 0 ||
	    strcmp(cmd->name, "UID MOVE") == 0;
	struct imap_out src_uids, dst_uids;
	uint64_t *ids = NULL, *new_ids = NULL;
	size_t *idx = NULL, n = 0, i, k = 0;
	char err[256] = "";
	uint32_t dst_id;
	sp_client *cl;
	int rc;

	if ((rc = resolve_set(c, &cmd->args[0], uid, &idx, &n)) != 0) {
		reply(c, cmd, "BAD", rc == -2 ? "no such message" :
		    "bad sequence set");
		return;
	}
	if (dst == NULL) {
		free(idx);
		reply(c, cmd, "NO", "[TRYCREATE] no such mailbox");
		return;
	}
	if (move && c->readonly) {
		free(idx);
		reply(c, cmd, "NO", "[READ-ONLY] mailbox is read-only");
		return;
	}
	dst_id = dst->id;
	imap_out_init(&src_uids);
	imap_out_init(&dst_uids);
	ids = malloc((n ? n : 1) * sizeof(*ids));
	new_ids = malloc((n ? n : 1) * sizeof(*new_ids));
	if (ids == NULL || new_ids == NULL) {
		rc = ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		const struct sp_mbox_msg *m = sp_mbox_msg(mb,
		    c->view[idx[i]].id);

		if (m && m->folder == c->folder) {
			ids[k++] = m->id;
			imap_out_printf(&src_uids, "%s%u", src_uids.len ? ","
			    : "", m->uid);
		}
	}
	rc = 0;
	for (i = 0; i < k && rc == 0; i += SP_MBOX_BATCH_MAX) {
		size_t b = k - i > SP_MBOX_BATCH_MAX ? SP_MBOX_BATCH_MAX :
		    k - i;

		if ((cl = bridge_account_client(c->acct, err, sizeof(err))) ==
		    NULL) {
			rc = EPIPE;
			break;
		}
		if (move) {
			rc = sp_mbox_move(mb, cl, ids + i, b, dst_id, err,
			    sizeof(err));
			memcpy(new_ids + i, ids + i, b * sizeof(*ids));
		} else {
			rc = sp_mbox_copy(mb, cl, ids + i, b, dst_id,
			    new_ids + i, err, sizeof(err));
		}
		rc = bridge_account_settle(c->acct, rc, err, sizeof(err));
	}
	if (rc == 0)
		for (i = 0; i < k; i++) {
			const struct sp_mbox_msg *m = sp_mbox_msg(mb,
			    new_ids[i]);

			imap_out_printf(&dst_uids, "%s%u", dst_uids.len ?
			    "," : "", m ? m->uid : 0);
		}
out:
	free(idx);
	free(ids);
	free(new_ids);
	if (rc != 0)
		reply(c, cmd, "NO", "%s", errtext(rc, err));
	else if (k == 0)
		reply(c, cmd, "OK", "nothing to %s", move ? "move" : "copy");
	else if (move) {
		imap_out_printf(&c->out, "* OK [COPYUID %u %s %s] moved\r\n",
		    dst_id, src_uids.p, dst_uids.p);
		view_sync(c, 1);
		reply(c, cmd, "OK", "%s completed", cmd->name);
	} else {
		reply(c, cmd, "OK", "[COPYUID %u %s %s] %s completed", dst_id,
		    src_uids.p, dst_uids.p, cmd->name);
	}
	imap_out_finish(&src_uids);
	imap_out_finish(&dst_uids);
}

static void
h_search(struct imap_conn *c, struct imap_command *cmd, int uid)
{
	const struct imap_arg *a = cmd->args;
	size_t na = cmd->nargs, i, count = 0;
	const char *error = NULL;
	unsigned ret = 0;   /* ESEARCH: 1 MIN 2 MAX 4 ALL 8 COUNT */
	int esearch = 0, has_modseq = 0;
	uint64_t maxmod = 0;
	uint8_t *res;
	uint32_t min = 0, max = 0;

	if (na >= 2 && imap_arg_atom_is(&a[0], "RETURN") &&
	    a[1].type == IMAP_ARG_LIST) {
		esearch = 1;
		for (i = 0; i < a[1].n; i++) {
			if (imap_arg_atom_is(&a[1].list[i], "MIN"))
				ret |= 1;
			else if (imap_arg_atom_is(&a[1].list[i], "MAX"))
				ret |= 2;
			else if (imap_arg_atom_is(&a[1].list[i], "ALL"))
				ret |= 4;
			else if (imap_arg_atom_is(&a[1].list[i], "COUNT"))
				ret |= 8;
			else {
				reply(c, cmd, "BAD", "unknown RETURN option");
				return;
			}
		}
		if (ret == 0)
			ret = 4;
		a += 2;
		na -= 2;
	}
	/* IMAP4rev2 answers every SEARCH with ESEARCH (RFC 9051 7.3.4). */
	if (!esearch && c->rev2) {
		esearch = 1;
		ret = 4;
	}
	if (na >= 2 && imap_arg_atom_is(&a[0], "CHARSET")) {
		if (!imap_arg_is_string(&a[1]) || (strcasecmp(a[1].s,
		    "UTF-8") != 0 && strcasecmp(a[1].s, "US-ASCII") != 0)) {
			reply(c, cmd, "NO", "[BADCHARSET (UTF-8 US-ASCII)] "
			    "unknown charset");
			return;
		}
		a += 2;
		na -= 2;
	}
	if (na == 0) {
		reply(c, cmd, "BAD", "SEARCH needs criteria");
		return;
	}
	for (i = 0; i < na; i++)
		if (imap_arg_atom_is(&a[i], "MODSEQ"))
			has_modseq = 1;
	if ((res = calloc(c->nview ? c->nview : 1, 1)) == NULL) {
		reply(c, cmd, "NO", "out of memory");
		return;
	}
	if (imap_search_run(c, a, na, res, &error) != 0) {
		free(res);
		reply(c, cmd, "BAD", "%s", error ? error : "bad criteria");
		return;
	}
	if (esearch) {
		struct imap_out all;

		imap_out_init(&all);
		for (i = 0; i < c->nview; i++) {
			uint32_t v = uid ? c->view[i].uid : (uint32_t)(i + 1);

			if (!res[i])
				continue;
			if (count++ == 0)
				min = v;
			max = v;
			if (c->view[i].modseq > maxmod)
				maxmod = c->view[i].modseq;
			imap_out_printf(&all, "%s%u", all.len ? "," : "", v);
		}
		imap_out_printf(&c->out, "* ESEARCH (TAG \"%s\")%s", cmd->tag,
		    uid ? " UID" : "");
		if ((ret & 1) && count)
			imap_out_printf(&c->out, " MIN %u", min);
		if ((ret & 2) && count)
			imap_out_printf(&c->out, " MAX %u", max);
		if ((ret & 4) && count)
			imap_out_printf(&c->out, " ALL %s", all.p);
		if (ret & 8)
			imap_out_printf(&c->out, " COUNT %zu", count);
		if (has_modseq && count)
			imap_out_printf(&c->out, " MODSEQ %llu",
			    (unsigned long long)maxmod);
		imap_out_str(&c->out, "\r\n");
		imap_out_finish(&all);
	} else {
		imap_out_str(&c->out, "* SEARCH");
		for (i = 0; i < c->nview; i++)
			if (res[i]) {
				imap_out_printf(&c->out, " %u", uid ?
				    c->view[i].uid : (uint32_t)(i + 1));
				if (c->view[i].modseq > maxmod)
					maxmod = c->view[i].modseq;
				count++;
			}
		if (has_modseq && count)
			imap_out_printf(&c->out, " (MODSEQ %llu)",
			    (unsigned long long)maxmod);
		imap_out_str(&c->out, "\r\n");
	}
	free(res);
	reply(c, cmd, "OK", "%s completed", cmd->name);
}

static void
h_idle(struct imap_conn *c, struct imap_command *cmd, int uid)
{
	snprintf(c->idle_tag, sizeof(c->idle_tag), "%s", cmd->tag);
	c->idling = 1;
	imap_parser_raw_line(c->parser);
	imap_out_str(&c->out, "+ idling\r\n");
}

static void
idle_line(struct imap_conn *c, struct imap_command *raw)
{
	struct imap_command cmd = { .tag = c->idle_tag, .name = "IDLE" };

	c->idling = 0;
	if (raw->raw_len != 4 || strncasecmp(raw->raw, "DONE", 4) != 0) {
		reply(c, &cmd, "BAD", "expected DONE");
		return;
	}
	if (c->state == IMAP_S_SELECTED) {
		bridge_account_lock(c->acct);
		view_sync(c, 1);
		bridge_account_unlock(c->acct);
	}
	reply(c, &cmd, "OK", "IDLE terminated");
}

void
imap_cmd_changed(struct imap_conn *c)
{
	/* A worker holds the lock: its after-callback wakes us again. */
	if (acct_entry(c->acct)->busy)
		return;
	bridge_account_lock(c->acct);
	view_sync(c, 1);
	bridge_account_unlock(c->acct);
	imap_conn_flush(c);
}

/* ---- workers ------------------------------------------------------------ */

static struct acct_entry *accts;
static size_t naccts;

static struct acct_entry *
acct_entry(bridge_account *a)
{
	static struct acct_entry none;
	struct acct_entry *n;
	size_t i;

	for (i = 0; i < naccts; i++)
		if (accts[i].acct == a)
			return &accts[i];
	if ((n = realloc(accts, (naccts + 1) * sizeof(*n))) == NULL) {
		memset(&none, 0, sizeof(none));
		return &none;   /* never busy: commands run on the loop */
	}
	accts = n;
	memset(&accts[naccts], 0, sizeof(accts[naccts]));
	accts[naccts].acct = a;
	return &accts[naccts++];
}

imap_index *
imap_cmd_index(struct imap_conn *c)
{
	struct acct_entry *e = acct_entry(c->acct);

	if (e->index == NULL && e->acct != NULL)
		(void)imap_index_open(sp_session_cache(bridge_account_session(
		    c->acct)), &e->index);
	return e->index;
}

struct job {
	uv_work_t req;
	struct imap_conn *c;
	const struct cmd *k;
	struct imap_command *cmd;
	int uid;
	char tagged[sizeof(tagged)];
};

/* ---- the table ---------------------------------------------------------- */

#define ANY (IMAP_S_NOTAUTH | IMAP_S_AUTH | IMAP_S_SELECTED)
#define AUTHED (IMAP_S_AUTH | IMAP_S_SELECTED)
#define SEL IMAP_S_SELECTED
#define MANY ((size_t)-1)

static const struct cmd commands[] = {
	{ "CAPABILITY", h_capability, ANY, 0, 0, 0 },
	{ "NOOP", h_noop, ANY, 0, 0, 0 },
	{ "LOGOUT", h_logout, ANY, 0, 0, 0 },
	{ "STARTTLS", h_starttls, IMAP_S_NOTAUTH, 0, 0, 0 },
	{ "LOGIN", h_login, IMAP_S_NOTAUTH, 0, 2, 2 },
	{ "AUTHENTICATE", h_authenticate, IMAP_S_NOTAUTH, 0, 1, 2 },
	{ "ID", h_id, ANY, 0, 1, 1 },
	{ "ENABLE", h_enable, AUTHED, 0, 1, MANY },
	{ "NAMESPACE", h_namespace, AUTHED, 0, 0, 0 },
	{ "LIST", h_list, AUTHED, 0, 2, 4 },
	{ "LSUB", h_lsub, AUTHED, 0, 2, 2 },
	{ "STATUS", h_status, AUTHED, 0, 2, 2 },
	{ "SELECT", h_select, AUTHED, 0, 1, 2 },
	{ "EXAMINE", h_select, AUTHED, 0, 1, 2 },
	{ "CREATE", h_create, AUTHED, F_WORKER, 1, 2 },
	{ "DELETE", h_delete, AUTHED, F_WORKER, 1, 1 },
	{ "RENAME", h_rename, AUTHED, F_WORKER, 2, 2 },
	{ "SUBSCRIBE", h_subscribe, AUTHED, F_WORKER, 1, 1 },
	{ "UNSUBSCRIBE", h_subscribe, AUTHED, F_WORKER, 1, 1 },
	{ "APPEND", h_append, AUTHED, F_WORKER, 2, 4 },
	{ "IDLE", h_idle, AUTHED, 0, 0, 0 },
	{ "CHECK", h_noop, SEL, 0, 0, 0 },
	{ "CLOSE", h_close, SEL, 0, 0, 0 },
	{ "UNSELECT", h_close, SEL, 0, 0, 0 },
	{ "EXPUNGE", h_expunge, SEL, F_UID | F_WORKER, 0, 1 },
	{ "SEARCH", h_search, SEL, F_UID | F_NOEXPUNGE, 1, MANY },
	{ "FETCH", h_fetch, SEL, F_UID | F_NOEXPUNGE, 2, 3 },
	{ "STORE", h_store, SEL, F_UID | F_NOEXPUNGE | F_WORKER, 3, 4 },
	{ "COPY", h_copy, SEL, F_UID | F_WORKER, 2, 2 },
	{ "MOVE", h_copy, SEL, F_UID | F_WORKER, 2, 2 },
};

/* The part of a command that holds the account lock: the handler, then
 * the untagged updates of the view.  On the loop or on a worker. */
static void
run_locked(struct imap_conn *c, const struct cmd *k, struct imap_command *cmd,
    int uid)
{
	int locked = 0;

	if (c->acct) {
		bridge_account_lock(c->acct);
		locked = 1;
	}
	k->fn(c, cmd, uid);
	/* Changes from elsewhere, and this command's own effects. */
	if (c->state == IMAP_S_SELECTED && !c->idling &&
	    strcmp(k->name, "SELECT") != 0 && strcmp(k->name, "EXAMINE") != 0)
		view_sync(c, uid || !(k->flags & F_NOEXPUNGE));
	if (locked)
		bridge_account_unlock(c->acct);
}

static void
job_work(uv_work_t *req)
{
	struct job *j = req->data;

	tagged[0] = 0;
	run_locked(j->c, j->k, j->cmd, j->uid);
	memcpy(j->tagged, tagged, sizeof(j->tagged));
	tagged[0] = 0;
}

static void
job_after(uv_work_t *req, int status)
{
	struct job *j = req->data;
	struct imap_conn *c = j->c;
	struct acct_entry *e = acct_entry(c->acct);

	(void)status;
	c->job = NULL;
	e->busy = 0;
	if (c->free_pending) {
		imap_conn_free(c);
	} else if (!imap_conn_closing(c)) {
		memcpy(tagged, j->tagged, sizeof(tagged));
		reply_flush(c);
		imap_conn_resume(c);
	}
	sodium_memzero(j, sizeof(*j));
	free(j);
	/* Connections that waited for this account, in order, until one
	 * starts a worker again; IDLE clients hear of the change. */
	while (!e->busy && e->parked) {
		struct imap_conn *p = e->parked;

		e->parked = p->park_next;
		p->park_next = NULL;
		imap_conn_resume(p);
	}
	imap_server_wake(e->srv);
}

/* Sends the command to a worker.  0, or -1 when it cannot (then it runs
 * here, blocking, as it always could). */
static int
job_start(struct imap_conn *c, const struct cmd *k, struct imap_command *cmd,
    int uid)
{
	struct job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return -1;
	j->req.data = j;
	j->c = c;
	j->k = k;
	j->cmd = cmd;
	j->uid = uid;
	/* What is in out now goes first; from here the worker owns it. */
	imap_conn_flush(c);
	if (uv_queue_work(c->loop, &j->req, job_work, job_after) != 0) {
		free(j);
		return -1;
	}
	c->job = j;
	acct_entry(c->acct)->busy = 1;
	acct_entry(c->acct)->srv = c->srv;
	return 0;
}

static void
park(struct imap_conn *c, struct imap_command *cmd)
{
	struct acct_entry *e = acct_entry(c->acct);
	struct imap_conn **pp = &e->parked;

	while (*pp)
		pp = &(*pp)->park_next;
	*pp = c;
	c->park_next = NULL;
	c->parked = cmd;
}

int
imap_cmd_run(struct imap_conn *c, struct imap_command *cmd)
{
	const struct cmd *k = NULL;
	const char *name = cmd->name;
	size_t i;
	int uid = 0;

	tagged[0] = 0;
	/* The account's lock is a worker's now: wait for it (in order). */
	if (c->acct && acct_entry(c->acct)->busy) {
		park(c, cmd);
		return IMAP_CMD_WAIT;
	}
	if (cmd->raw) {
		if (c->auth_pending)
			auth_continue(c, cmd);
		else if (c->idling)
			idle_line(c, cmd);
		reply_flush(c);
		return 0;
	}
	if (strncmp(name, "UID ", 4) == 0) {
		uid = 1;
		name += 4;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0) {
			k = &commands[i];
			break;
		}
	if (k == NULL || (uid && !(k->flags & F_UID))) {
		reply(c, cmd, "BAD", "unknown command");
		reply_flush(c);
		return 0;
	}
	if (!(k->states & c->state)) {
		reply(c, cmd, "BAD", "%s is not allowed %s", k->name,
		    c->state == IMAP_S_NOTAUTH ? "before login" :
		    c->state == IMAP_S_SELECTED ? "now" :
		    "without a selected mailbox");
		reply_flush(c);
		return 0;
	}
	if (cmd->nargs < k->min_args || (k->max_args != MANY &&
	    cmd->nargs > k->max_args && !(uid && strcmp(k->name,
	    "EXPUNGE") == 0))) {
		reply(c, cmd, "BAD", "wrong number of arguments");
		reply_flush(c);
		return 0;
	}
	if ((k->flags & F_WORKER) && c->acct && job_start(c, k, cmd, uid) == 0)
		return IMAP_CMD_WAIT;
	run_locked(c, k, cmd, uid);
	reply_flush(c);
	return 0;
}
