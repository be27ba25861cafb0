/*
 * The request table: one row per message type, each with
 *   check (loop thread): validate against connection state, answer
 *                        directly when no store access is needed;
 *   work  (thread pool): the store calls, and the encoded reply;
 *   done  (loop thread): state changes and pushes after the reply.
 * A reply is queued only after work returned, and work returns only after
 * the store committed: acknowledgement follows durability.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "crypto/kdf.h"
#include "crypto/pubkeys.h"
#include "crypto/recovery.h"
#include "server/gateway/outbound_entry.h"
#include "server/sync/sync.h"

#define MAX_RECORDS 256            /* per APPEND, DELIVER, READ page */
#define READ_MAX_BYTES (1536u * 1024)
#define SESSIONS_MAX 64

/* ---- replies ------------------------------------------------------------ */

void
sp_job_reply(struct sp_job *j, struct sp_frame *f)
{
	free(j->reply);
	j->reply = NULL;
	if (sp_frame_encode(f, LWS_PRE, &j->reply, &j->reply_len) != 0 &&
	    sp_frame_error(j->f.id, SP_PERR_INTERNAL, "reply encoding failed",
	    LWS_PRE, &j->reply, &j->reply_len) != 0)
		j->reply = NULL;
}

void
sp_job_reply_error(struct sp_job *j, int code, const char *msg)
{
	free(j->reply);
	j->reply = NULL;
	j->rc = code;
	if (sp_frame_error(j->f.id, code, msg, LWS_PRE, &j->reply,
	    &j->reply_len) != 0)
		j->reply = NULL;
	if (j->conn)
		j->conn->srv->m.errors_sent++;
}

static void
reply_ok(struct sp_job *j)
{
	struct sp_frame r;

	sp_frame_init(&r, SP_MSG_OK, j->f.id);
	sp_job_reply(j, &r);
}

int
sp_store_to_proto(int rc)
{
	switch (rc) {
	case ENOENT: return SP_PERR_NOT_FOUND;
	case EEXIST: return SP_PERR_EXISTS;
	case EINVAL: return SP_PERR_INVALID;
	case ENOSPC: return SP_PERR_FULL;
	case SP_STORE_ECONFLICT: return SP_PERR_CONFLICT;
	case SP_STORE_EQUOTA: return SP_PERR_QUOTA;
	case SP_STORE_EHASH: return SP_PERR_INVALID;
	case SP_STORE_EINCOMPLETE: return SP_PERR_SEQUENCE;
	default: return SP_PERR_INTERNAL;
	}
}

/* Replies with the store error; messages never carry mail content. */
static void
reply_store_error(struct sp_job *j, int rc)
{
	sp_job_reply_error(j, sp_store_to_proto(rc), sp_store_strerror(rc));
}

/* Copies a frame text field into a NUL-terminated, lower-cased address. */
static int
field_address(const struct sp_frame *f, unsigned key, char *out)
{
	const struct sp_frame_item *it = &f->f[key];
	size_t i;

	if (it->len == 0 || it->len > SP_STORE_ADDR_MAX ||
	    memchr(it->ptr, '@', it->len) == NULL)
		return -1;
	for (i = 0; i < it->len; i++) {
		unsigned char ch = it->ptr[i];

		if (ch <= ' ' || ch == 0x7f || ch == '<' || ch == '>')
			return -1;
		out[i] = (char)tolower(ch);
	}
	out[it->len] = 0;
	return 0;
}

/*
 * Policy for new accounts' local parts: 1..64 of [a-z0-9._+-], no leading,
 * trailing or doubled dot.  Kept to what every MTA and client handles.
 */
static int
local_part_ok(const char *address)
{
	const char *at = strchr(address, '@'), *p;

	if (at == NULL || at == address || at - address > 64 ||
	    address[0] == '.' || at[-1] == '.')
		return 0;
	for (p = address; p < at; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '.' || *p == '-' || *p == '_' || *p == '+'))
			return 0;
		if (p[0] == '.' && p[1] == '.')
			return 0;
	}
	return 1;
}

/* KDF parameters a new password may use: valid and not below policy. */
static int
kdf_params_ok(const struct sp_server_config *cfg, const uint8_t *w)
{
	struct sp_kdf_params p;

	return sp_kdf_params_decode(w, &p) == 0 &&
	    p.opslimit >= (uint32_t)cfg->kdf_min_ops &&
	    p.mem_kib >= (uint32_t)cfg->kdf_min_mem_kib;
}

static uint64_t
now_s(void)
{
	return (uint64_t)time(NULL);
}

static void
hash_token(const uint8_t token[32], uint8_t out[32])
{
	crypto_generichash(out, 32, token, 32, NULL, 0);
}

/* Records of a frame as store records (pointing into the frame). */
static int
frame_records(struct sp_job *j)
{
	const struct sp_frame_item *it;
	size_t n, i;

	it = sp_frame_array(&j->f, SP_F_RECORDS, &n);
	if (n == 0 || n > MAX_RECORDS)
		return -1;
	if ((j->recs = calloc(n, sizeof(*j->recs))) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		j->recs[i].data = it[i].ptr;
		j->recs[i].len = it[i].len;
	}
	j->nrecs = n;
	return 0;
}

/* ---- HELLO -------------------------------------------------------------- */

static void
hello_check(struct sp_job *j)
{
	struct sp_frame r;

	if (j->f.f[SP_F_VERSION].u != SP_PROTO_VERSION) {
		sp_job_reply_error(j, SP_PERR_VERSION,
		    "this server speaks protocol version 1");
		j->close_after = 4000;
		return;
	}
	j->conn->state = SP_CONN_OPEN;
	sp_frame_init(&r, SP_MSG_WELCOME, j->f.id);
	sp_frame_set_uint(&r, SP_F_VERSION, SP_PROTO_VERSION);
	sp_frame_set_uint(&r, SP_F_TIME, now_s());
	sp_frame_set_uint(&r, SP_F_SIZE, SP_FRAME_MAX);
	sp_frame_set_uint(&r, SP_F_MAX_RECORDS, MAX_RECORDS);
	sp_job_reply(j, &r);
}

/* ---- REGISTER ----------------------------------------------------------- */

static void
register_check(struct sp_job *j)
{
	struct sp_sync *srv = j->conn->srv;
	const struct sp_server_config *cfg = srv->cfg;

	if (sp_auth_count(srv->auth, "register", j->conn->peer_key,
	    (uint32_t)cfg->register_per_hour, 3600))
		return sp_job_reply_error(j, SP_PERR_RATE,
		    "too many registrations from here; retry later");
	if (field_address(&j->f, SP_F_ADDRESS, j->address) != 0)
		return sp_job_reply_error(j, SP_PERR_INVALID,
		    "address is not a mail address");
	if (!sp_config_serves(cfg, j->address))
		return sp_job_reply_error(j, SP_PERR_DOMAIN,
		    "this server does not serve that domain");
	if (!local_part_ok(j->address))
		return sp_job_reply_error(j, SP_PERR_INVALID,
		    "local part: 1 to 64 of a-z 0-9 . - _ +");
	if (!cfg->open_registration && !sp_frame_has(&j->f, SP_F_INVITE))
		return sp_job_reply_error(j, SP_PERR_INVITE,
		    "registration needs an invite");
	if (!kdf_params_ok(cfg, j->f.f[SP_F_KDF_PARAMS].ptr))
		return sp_job_reply_error(j, SP_PERR_INVALID,
		    "kdf_params invalid or weaker than this server accepts");
	/* The directory entry must be self-signed by the identity key and
	 * name this address: no account can publish keys for another. */
	{
		struct sp_pubkeys pk;

		if (sp_pubkeys_parse(j->f.f[SP_F_PUBKEYS].ptr,
		    j->f.f[SP_F_PUBKEYS].len, &pk) != 0)
			return sp_job_reply_error(j, SP_PERR_INVALID,
			    "pubkeys: not a valid self-signed key set");
		if (strcmp(pk.address, j->address) != 0)
			return sp_job_reply_error(j, SP_PERR_INVALID,
			    "pubkeys: signed for another address");
	}
}

static void
register_work(struct sp_job *j)
{
	const struct sp_server_config *cfg = j->conn->srv->cfg;
	sp_store *st = j->conn->srv->store;
	struct sp_store_account a;
	uint8_t h[32];
	int rc, invited = sp_frame_has(&j->f, SP_F_INVITE);

	if (invited)
		crypto_generichash(h, sizeof(h), j->f.f[SP_F_INVITE].ptr,
		    j->f.f[SP_F_INVITE].len, NULL, 0);
	memset(&a, 0, sizeof(a));
	memcpy(a.address, j->address, strlen(j->address) + 1);
	memcpy(a.auth_pk, j->f.f[SP_F_AUTH_PK].ptr, 32);
	memcpy(a.kdf_params, j->f.f[SP_F_KDF_PARAMS].ptr, 25);
	a.created = now_s();
	a.quota_bytes = cfg->quota_default;
	/* With an invite, it is consumed in the transaction that creates
	 * the account, so a failed registration does not use it up. */
	rc = sp_store_account_create_invited(st, &a, j->f.f[SP_F_VAULT].ptr,
	    j->f.f[SP_F_VAULT].len, j->f.f[SP_F_PUBKEYS].ptr,
	    j->f.f[SP_F_PUBKEYS].len, invited ? h : NULL, now_s());
	if (rc == SP_STORE_EINVITE)
		return sp_job_reply_error(j, SP_PERR_INVITE,
		    "invite unknown, used or expired");
	if (rc != 0)
		return reply_store_error(j, rc);
	/* The recovery login key (6.6) is kept with the factors, under a
	 * kind of its own that is never listed.  If it cannot be stored the
	 * registration is undone: an account must not lose its way back
	 * without its owner knowing. */
	if (sp_frame_has(&j->f, SP_F_RECOVERY_PK) &&
	    (rc = sp_store_factor_put(st, j->address, SP_STORE_KIND_RECOVERY_PK,
	    NULL, 0, j->f.f[SP_F_RECOVERY_PK].ptr, 32, 1)) != 0) {
		(void)sp_store_account_delete(st, j->address);
		return reply_store_error(j, rc);
	}
	reply_ok(j);
}

/* ---- PRELOGIN / LOGIN / RESUME / LOGOUT -------------------------------- */

static void
prelogin_check(struct sp_job *j)
{
	struct sp_sync *srv = j->conn->srv;

	if (sp_auth_count(srv->auth, "prelogin", j->conn->peer_key,
	    (uint32_t)srv->cfg->prelogin_per_minute, 60))
		return sp_job_reply_error(j, SP_PERR_RATE,
		    "too many logins from here; retry in a minute");
	if (field_address(&j->f, SP_F_ADDRESS, j->address) != 0)
		return sp_job_reply_error(j, SP_PERR_INVALID,
		    "address is not a mail address");
	/* The challenge is made here, on the loop thread that owns the
	 * challenge table; token_hash holds it until work replies. */
	if (sp_auth_challenge(j->conn->srv->auth, j->address,
	    j->token_hash) != 0)
		return sp_job_reply_error(j, SP_PERR_RATE,
		    "too many logins in progress; retry later");
}

static void
prelogin_work(struct sp_job *j)
{
	struct sp_store_account a;
	struct sp_frame r;
	uint8_t params[25];

	/* An unknown account gets plausible parameters after the same
	 * store lookup and the same salt computation (done for every
	 * address), so neither answer nor timing tells them apart. */
	sp_auth_fake_params(j->conn->srv, j->address, params);
	if (sp_store_account_get(j->conn->srv->store, j->address, &a) == 0 &&
	    !(a.flags & SP_STORE_ACCT_DISABLED))
		memcpy(params, a.kdf_params, sizeof(params));
	sp_frame_init(&r, SP_MSG_PRELOGIN_OK, j->f.id);
	sp_frame_set_bytes(&r, SP_F_KDF_PARAMS, params, sizeof(params));
	sp_frame_set_bytes(&r, SP_F_CHALLENGE, j->token_hash, 32);
	sp_job_reply(j, &r);
}

/* At most SESSIONS_MAX sessions (what SESSIONS_OK can list): before a new
 * one, the least recently used beyond SESSIONS_MAX - 1 are ended. */
struct lru {
	struct sp_store_session oldest;
	size_t n;
};

static int
lru_collect(const struct sp_store_session *ss, void *arg)
{
	struct lru *l = arg;

	if (l->n++ == 0 || ss->last_seen < l->oldest.last_seen)
		l->oldest = *ss;
	return 0;
}

static void
session_make_room(sp_store *st, const char *address)
{
	struct lru l;
	int guard;

	for (guard = 0; guard < 4; guard++) {
		memset(&l, 0, sizeof(l));
		if (sp_store_session_list(st, address, lru_collect, &l) != 0 ||
		    l.n < SESSIONS_MAX)
			return;
		(void)sp_store_session_delete(st, l.oldest.token_hash);
	}
}

static void
login_check(struct sp_job *j)
{
	struct sp_auth *a = j->conn->srv->auth;

	if (field_address(&j->f, SP_F_ADDRESS, j->address) != 0)
		return sp_job_reply_error(j, SP_PERR_INVALID,
		    "address is not a mail address");
	if (sp_auth_limited(a, j->address, j->conn->peer_key))
		return sp_job_reply_error(j, SP_PERR_RATE,
		    "too many failed logins; retry in a minute");
	if (sp_auth_take(a, j->address, j->f.f[SP_F_CHALLENGE].ptr) != 0) {
		sp_auth_failed(a, j->address, j->conn->peer_key);
		j->conn->srv->m.logins_failed++;
		return sp_job_reply_error(j, SP_PERR_DENIED,
		    "unknown or expired challenge");
	}
}

static void
login_work(struct sp_job *j)
{
	sp_store *st = j->conn->srv->store;
	struct sp_store_account a;

	j->rc = SP_PERR_DENIED;
	if (sp_store_account_get(st, j->address, &a) != 0 ||
	    (a.flags & SP_STORE_ACCT_DISABLED) ||
	    sp_kdf_verify_challenge(a.auth_pk, j->f.f[SP_F_CHALLENGE].ptr, 32,
	    j->f.f[SP_F_SIGNATURE].ptr) != 0)
		return sp_job_reply_error(j, SP_PERR_DENIED,
		    "login failed");
	/* The password is right; an account with second factors gets
	 * SECOND_FACTOR instead of a session (sync_factors.c). */
	if (sp_factors_login_gate(j))
		return;
	sp_login_grant(j, (const char *)j->f.f[SP_F_DEVICE].ptr,
	    sp_frame_has(&j->f, SP_F_DEVICE) ? j->f.f[SP_F_DEVICE].len : 0);
}

/* RECOVER (6.6): LOGIN with the recovery login key instead of the
 * password's; the same check, gate and grant. */
static void
recover_work(struct sp_job *j)
{
	sp_store *st = j->conn->srv->store;
	struct sp_store_account a;
	uint8_t *pk = NULL;
	size_t len = 0;
	int ok;

	j->rc = SP_PERR_DENIED;
	ok = sp_store_account_get(st, j->address, &a) == 0 &&
	    !(a.flags & SP_STORE_ACCT_DISABLED) &&
	    sp_store_factor_get(st, j->address, SP_STORE_KIND_RECOVERY_PK,
	    NULL, 0, &pk, &len) == 0 && len == 32 &&
	    sp_recovery_verify_challenge(pk, j->f.f[SP_F_CHALLENGE].ptr, 32,
	    j->f.f[SP_F_SIGNATURE].ptr) == 0;
	free(pk);
	if (!ok)
		return sp_job_reply_error(j, SP_PERR_DENIED,
		    "recovery failed");
	sp_factors_event(j->conn->srv, j->address, SP_EVENT_RECOVERY_KEY,
	    "the recovery key was proven");
	if (sp_factors_login_gate(j))
		return;
	sp_login_grant(j, (const char *)j->f.f[SP_F_DEVICE].ptr,
	    sp_frame_has(&j->f, SP_F_DEVICE) ? j->f.f[SP_F_DEVICE].len : 0);
}

/* Every factor passed: a new session, its token and the vault.  Also the
 * end of LOGIN_2FA. */
void
sp_login_grant(struct sp_job *j, const char *device, size_t dlen)
{
	sp_store *st = j->conn->srv->store;
	struct sp_store_session ss;
	struct sp_frame r;
	uint8_t token[32], *vault = NULL;
	size_t vlen;
	uint64_t last = 0;
	int rc;

	randombytes_buf(token, sizeof(token));
	memset(&ss, 0, sizeof(ss));
	hash_token(token, ss.token_hash);
	memcpy(ss.address, j->address, strlen(j->address) + 1);
	if (dlen > 0)
		memcpy(ss.device, device,
		    dlen < sizeof(ss.device) ? dlen : sizeof(ss.device) - 1);
	ss.created = ss.last_seen = now_s();
	session_make_room(st, j->address);
	if ((rc = sp_store_session_put(st, &ss)) != 0) {
		sodium_memzero(token, sizeof(token));
		return reply_store_error(j, rc);
	}
	/* Before the reply's `last`, so the new device sees its own event. */
	sp_factors_event(j->conn->srv, j->address, SP_EVENT_LOGIN, ss.device);
	if ((rc = sp_store_vault_get(st, j->address, &vault, &vlen)) != 0 ||
	    (rc = sp_store_log_last(st, j->address, &last)) != 0) {
		free(vault);
		sodium_memzero(token, sizeof(token));
		return reply_store_error(j, rc);
	}
	memcpy(j->token_hash, ss.token_hash, 32);
	sp_session_id(ss.token_hash, j->session_id);
	sp_frame_init(&r, SP_MSG_LOGIN_OK, j->f.id);
	sp_frame_set_bytes(&r, SP_F_TOKEN, token, sizeof(token));
	sp_frame_set_bytes(&r, SP_F_SESSION_ID, j->session_id, 16);
	sp_frame_set_bytes(&r, SP_F_VAULT, vault, vlen);
	sp_frame_set_uint(&r, SP_F_LAST, last);
	sp_job_reply(j, &r);
	sodium_memzero(token, sizeof(token));
	free(vault);
	j->rc = 0;
}

static void
become_authenticated(struct sp_job *j)
{
	struct sp_conn *c = j->conn;

	memcpy(c->address, j->address, sizeof(c->address));
	memcpy(c->token_hash, j->token_hash, 32);
	c->state = SP_CONN_AUTH;
	lws_set_timer_usecs(c->wsi, LWS_SET_TIMER_USEC_CANCEL);
	sp_acct_attach(c->srv, c);
}

static void
login_done(struct sp_job *j)
{
	struct sp_sync *s = j->conn->srv;

	if (j->rc == SP_JOB_SECOND_FACTOR)
		return sp_factors_login_pending(j);
	if (j->rc != 0) {
		sp_auth_failed(s->auth, j->address, j->conn->peer_key);
		s->m.logins_failed++;
		return;
	}
	sp_login_granted(j);
}

void
sp_login_granted(struct sp_job *j)
{
	struct sp_sync *s = j->conn->srv;

	s->m.logins_ok++;
	become_authenticated(j);
	j->conn->login_time = sp_now_ns();
	sp_hub_external(s, j->address);     /* the login event */
}

static void
resume_work(struct sp_job *j)
{
	sp_store *st = j->conn->srv->store;
	struct sp_store_session ss;
	struct sp_store_account a;
	struct sp_frame r;
	uint64_t last = 0;
	int rc;

	j->rc = SP_PERR_AUTH;
	hash_token(j->f.f[SP_F_TOKEN].ptr, j->token_hash);
	if (sp_store_session_get(st, j->token_hash, &ss) != 0 ||
	    sp_store_account_get(st, ss.address, &a) != 0 ||
	    (a.flags & SP_STORE_ACCT_DISABLED))
		return sp_job_reply_error(j, SP_PERR_AUTH,
		    "session unknown or revoked");
	if (ss.last_seen + (uint64_t)j->conn->srv->cfg->session_days * 86400 <
	    now_s()) {
		(void)sp_store_session_delete(st, j->token_hash);
		return sp_job_reply_error(j, SP_PERR_AUTH, "session expired");
	}
	ss.last_seen = now_s();
	if ((rc = sp_store_session_put(st, &ss)) != 0 ||
	    (rc = sp_store_log_last(st, ss.address, &last)) != 0)
		return reply_store_error(j, rc);
	memcpy(j->address, ss.address, sizeof(j->address));
	sp_session_id(j->token_hash, j->session_id);
	sp_frame_init(&r, SP_MSG_RESUME_OK, j->f.id);
	sp_frame_set_text(&r, SP_F_ADDRESS, j->address);
	sp_frame_set_bytes(&r, SP_F_SESSION_ID, j->session_id, 16);
	sp_frame_set_uint(&r, SP_F_LAST, last);
	sp_job_reply(j, &r);
	j->rc = 0;
}

static void
resume_check(struct sp_job *j)
{
	if (sp_auth_limited(j->conn->srv->auth, "", j->conn->peer_key))
		sp_job_reply_error(j, SP_PERR_RATE,
		    "too many failed logins; retry in a minute");
}

static void
resume_done(struct sp_job *j)
{
	if (j->rc == 0) {
		become_authenticated(j);
		j->conn->login_time = 0;        /* not a fresh LOGIN */
	} else {
		/* Guessing tokens counts like guessing passwords. */
		sp_auth_failed(j->conn->srv->auth, NULL, j->conn->peer_key);
	}
}

static void
logout_work(struct sp_job *j)
{
	int rc = sp_store_session_delete(j->conn->srv->store,
	    j->conn->token_hash);

	if (rc != 0 && rc != ENOENT)
		return reply_store_error(j, rc);
	reply_ok(j);
}

static void
logout_done(struct sp_job *j)
{
	struct sp_conn *c = j->conn;

	sp_acct_detach(c->srv, c);
	sodium_memzero(c->token_hash, sizeof(c->token_hash));
	c->state = SP_CONN_OPEN;
	c->login_time = 0;
	sp_conn_login_timer(c);
}

/* ---- SESSIONS / REVOKE -------------------------------------------------- */

struct session_list {
	struct sp_store_session s[SESSIONS_MAX];
	size_t n;
	const uint8_t *want;    /* REVOKE: session id to find */
	int found;
	uint8_t found_hash[32];
};

static int
session_collect(const struct sp_store_session *ss, void *arg)
{
	struct session_list *l = arg;
	uint8_t id[16];

	if (l->want) {
		sp_session_id(ss->token_hash, id);
		if (sodium_memcmp(id, l->want, 16) == 0) {
			memcpy(l->found_hash, ss->token_hash, 32);
			l->found = 1;
			return 1;
		}
		return 0;
	}
	if (l->n == SESSIONS_MAX) /* keep the newest SESSIONS_MAX */
		memmove(&l->s[0], &l->s[1], sizeof(l->s[0]) * (SESSIONS_MAX - 1));
	else
		l->n++;
	l->s[l->n - 1] = *ss;
	return 0;
}

static void
sessions_work(struct sp_job *j)
{
	struct session_list *l = calloc(1, sizeof(*l));
	uint8_t (*ids)[16] = NULL;
	struct sp_frame r;
	size_t i;
	int rc;

	if (l == NULL || (ids = calloc(SESSIONS_MAX, 16)) == NULL)
		goto fail;
	if ((rc = sp_store_session_list(j->conn->srv->store, j->conn->address,
	    session_collect, l)) != 0) {
		reply_store_error(j, rc);
		goto out;
	}
	sp_frame_init(&r, SP_MSG_SESSIONS_OK, j->f.id);
	/* Each array's items must be added together (frame.h), and an empty
	 * one is marked just before its turn. */
	sp_frame_set_array_empty(&r, SP_F_SESSION_IDS);
	for (i = 0; i < l->n; i++) {
		sp_session_id(l->s[i].token_hash, ids[i]);
		(void)sp_frame_add_item(&r, SP_F_SESSION_IDS, ids[i], 16, 0);
	}
	sp_frame_set_array_empty(&r, SP_F_DEVICES);
	for (i = 0; i < l->n; i++)
		(void)sp_frame_add_item(&r, SP_F_DEVICES, l->s[i].device,
		    strlen(l->s[i].device), 0);
	sp_frame_set_array_empty(&r, SP_F_CREATED);
	for (i = 0; i < l->n; i++)
		(void)sp_frame_add_item(&r, SP_F_CREATED, NULL, 0,
		    l->s[i].created);
	sp_frame_set_array_empty(&r, SP_F_LAST_SEEN);
	for (i = 0; i < l->n; i++)
		(void)sp_frame_add_item(&r, SP_F_LAST_SEEN, NULL, 0,
		    l->s[i].last_seen);
	sp_job_reply(j, &r);
	goto out;
fail:
	sp_job_reply_error(j, SP_PERR_INTERNAL, "out of memory");
out:
	free(ids);
	free(l);
}

static void
revoke_work(struct sp_job *j)
{
	struct session_list *l = calloc(1, sizeof(*l));
	int rc;

	if (l == NULL)
		return sp_job_reply_error(j, SP_PERR_INTERNAL, "out of memory");
	l->want = j->f.f[SP_F_SESSION_ID].ptr;
	rc = sp_store_session_list(j->conn->srv->store, j->conn->address,
	    session_collect, l);
	if (rc == 1)
		rc = 0;
	if (rc == 0 && !l->found)
		rc = ENOENT;
	if (rc == 0)
		rc = sp_store_session_delete(j->conn->srv->store,
		    l->found_hash);
	if (rc != 0)
		reply_store_error(j, rc);
	else
		reply_ok(j);
	memcpy(j->session_id, j->f.f[SP_F_SESSION_ID].ptr, 16);
	free(l);
}

static void
revoke_done(struct sp_job *j)
{
	if (j->rc == 0)
		sp_hub_revoke(j->conn->srv, j->conn->address, j->session_id);
}

#define FRESH_LOGIN_NS (300ull * 1000000000ull)

/* Replacing the login key needs a LOGIN on this connection in the last
 * 5 minutes: a stolen session token alone cannot change the password. */
static void
vault_put_check(struct sp_job *j)
{
	struct sp_conn *c = j->conn;

	if (c->login_time == 0 || sp_now_ns() - c->login_time > FRESH_LOGIN_NS)
		return sp_job_reply_error(j, SP_PERR_AUTH,
		    "log in again with the current password first");
	if (!kdf_params_ok(c->srv->cfg, j->f.f[SP_F_KDF_PARAMS].ptr))
		return sp_job_reply_error(j, SP_PERR_INVALID,
		    "kdf_params invalid or weaker than this server accepts");
}

static void
vault_put_work(struct sp_job *j)
{
	int rc;

	rc = sp_store_vault_put(j->conn->srv->store, j->conn->address,
	    j->f.f[SP_F_VAULT].ptr, j->f.f[SP_F_VAULT].len,
	    j->f.f[SP_F_AUTH_PK].ptr, j->f.f[SP_F_KDF_PARAMS].ptr);
	if (rc != 0)
		return reply_store_error(j, rc);
	sp_factors_event(j->conn->srv, j->conn->address, SP_EVENT_PASSWORD,
	    "");
	reply_ok(j);
}

static void
vault_put_done(struct sp_job *j)
{
	sp_hub_external(j->conn->srv, j->conn->address);
}

/* ---- the log ------------------------------------------------------------ */

static void
records_check(struct sp_job *j)
{
	if (frame_records(j) != 0)
		sp_job_reply_error(j, SP_PERR_TOO_LARGE,
		    "records: 1 to 256 per message");
}

static void
append_work(struct sp_job *j)
{
	uint64_t expected = sp_frame_has(&j->f, SP_F_EXPECTED) ?
	    j->f.f[SP_F_EXPECTED].u : SP_STORE_ANY;
	struct sp_frame r;
	int rc;

	rc = sp_store_log_append(j->conn->srv->store, j->conn->address,
	    expected, j->recs, j->nrecs, &j->first, &j->last);
	if (rc != 0) {
		j->nrecs = 0;
		if (rc == SP_STORE_ECONFLICT) {
			char msg[96];

			snprintf(msg, sizeof(msg), "log is at seq %llu",
			    (unsigned long long)j->last);
			return sp_job_reply_error(j, SP_PERR_CONFLICT, msg);
		}
		return reply_store_error(j, rc);
	}
	memcpy(j->address, j->conn->address, sizeof(j->address));
	sp_frame_init(&r, SP_MSG_APPENDED, j->f.id);
	sp_frame_set_uint(&r, SP_F_SEQ, j->first);
	sp_frame_set_uint(&r, SP_F_LAST, j->last);
	sp_job_reply(j, &r);
}

static void
append_done(struct sp_job *j)
{
	struct sp_sync *s = j->conn->srv;

	if (j->nrecs == 0)
		return;
	s->m.records_appended += j->nrecs;
	sp_hub_committed(s, j->address, j->first, j->last, j->recs, j->nrecs);
}

struct read_ctx {
	struct sp_frame *r;
	uint8_t *buf;
	size_t used, cap;
	size_t n;
	uint64_t first, lastseen;
};

static int
read_collect(uint64_t seq, const void *data, size_t len, void *arg)
{
	struct read_ctx *x = arg;

	if (x->used + len > x->cap || x->n == MAX_RECORDS)
		return 1;
	memcpy(x->buf + x->used, data, len);
	if (x->n == 0)
		x->first = seq;
	x->lastseen = seq;
	/* Pointers are fixed up after the walk (buf does not move). */
	(void)sp_frame_add_item(x->r, SP_F_RECORDS, x->buf + x->used, len, 0);
	x->used += len;
	x->n++;
	return 0;
}

/* Reads one page from seq from into frame r (type already set). */
int sp_sync_read_page(sp_store *st, const char *address, uint64_t from,
    size_t max_records, size_t max_bytes, struct sp_frame *r, uint8_t **buf_r,
    uint64_t *first_r, uint64_t *lastseen_r, uint64_t *last_r);

int
sp_sync_read_page(sp_store *st, const char *address, uint64_t from,
    size_t max_records, size_t max_bytes, struct sp_frame *r, uint8_t **buf_r,
    uint64_t *first_r, uint64_t *lastseen_r, uint64_t *last_r)
{
	struct read_ctx x = { .r = r };
	int rc;

	if (max_bytes > READ_MAX_BYTES)
		max_bytes = READ_MAX_BYTES;
	if (max_records > MAX_RECORDS || max_records == 0)
		max_records = MAX_RECORDS;
	/* A record may be up to 1 MiB: a page always has room for one. */
	x.cap = max_bytes < SP_STORE_RECORD_MAX ? SP_STORE_RECORD_MAX :
	    max_bytes;
	if ((x.buf = malloc(x.cap)) == NULL)
		return ENOMEM;
	sp_frame_set_array_empty(r, SP_F_RECORDS);
	rc = sp_store_log_read(st, address, from ? from : 1, max_records,
	    max_bytes, read_collect, &x, last_r);
	if (rc == 1)
		rc = 0;
	*buf_r = x.buf;
	*first_r = x.n ? x.first : from;
	*lastseen_r = x.n ? x.lastseen : (from ? from - 1 : 0);
	return rc;
}

static void
read_work(struct sp_job *j)
{
	struct sp_frame r;
	uint64_t first, lastseen, last = 0;
	size_t maxr = sp_frame_has(&j->f, SP_F_MAX_RECORDS) ?
	    (size_t)j->f.f[SP_F_MAX_RECORDS].u : MAX_RECORDS;
	size_t maxb = sp_frame_has(&j->f, SP_F_MAX_BYTES) ?
	    (size_t)j->f.f[SP_F_MAX_BYTES].u : READ_MAX_BYTES;
	int rc;

	sp_frame_init(&r, SP_MSG_RECORDS, j->f.id);
	rc = sp_sync_read_page(j->conn->srv->store, j->conn->address,
	    j->f.f[SP_F_SEQ].u, maxr, maxb, &r, &j->recs_buf, &first,
	    &lastseen, &last);
	if (rc != 0)
		return reply_store_error(j, rc);
	sp_frame_set_uint(&r, SP_F_SEQ, first);
	sp_frame_set_uint(&r, SP_F_LAST, last);
	sp_frame_set_bool(&r, SP_F_MORE, lastseen < last);
	sp_job_reply(j, &r);
}

static void
subscribe_work(struct sp_job *j)
{
	struct sp_frame r;
	int rc;

	if ((rc = sp_store_log_last(j->conn->srv->store, j->conn->address,
	    &j->last)) != 0)
		return reply_store_error(j, rc);
	sp_frame_init(&r, SP_MSG_SUBSCRIBED, j->f.id);
	sp_frame_set_uint(&r, SP_F_LAST, j->last);
	sp_job_reply(j, &r);
}

static void
subscribe_done(struct sp_job *j)
{
	if (j->rc == 0)
		sp_hub_subscribe(j->conn->srv, j->conn, j->f.f[SP_F_SEQ].u,
		    j->last);
}

static void
deliver_check(struct sp_job *j)
{
	struct sp_acct *a = j->conn->acct;
	uint64_t minute = now_s() / 60;

	records_check(j);
	if (j->reply)
		return;
	if (a == NULL)
		return sp_job_reply_error(j, SP_PERR_INTERNAL, "no account state");
	if (field_address(&j->f, SP_F_RECIPIENT, j->address) != 0)
		return sp_job_reply_error(j, SP_PERR_INVALID,
		    "recipient is not a mail address");
	/* Change records (envelope v1 kind 3, format.md 12) never travel
	 * between accounts: one sealed to an account is a security event
	 * of the server's, which no other account may forge. */
	{
		const struct sp_frame_item *it;
		size_t n, i;

		it = sp_frame_array(&j->f, SP_F_RECORDS, &n);
		for (i = 0; i < n; i++)
			if (it[i].len >= 2 && it[i].ptr[0] == 1 &&
			    it[i].ptr[1] == 3)
				return sp_job_reply_error(j, SP_PERR_INVALID,
				    "change records cannot be delivered");
	}
	/* Per-sender limit: records per minute, across its connections. */
	if (a->deliver_minute != minute) {
		a->deliver_minute = minute;
		a->deliver_count = 0;
	}
	if (a->deliver_count + j->nrecs >
	    (uint64_t)j->conn->srv->cfg->deliver_per_minute)
		return sp_job_reply_error(j, SP_PERR_RATE,
		    "delivery limit reached; retry in a minute");
	a->deliver_count += j->nrecs;
}

static void
deliver_work(struct sp_job *j)
{
	sp_store *st = j->conn->srv->store;
	struct sp_store_account a;
	int rc;

	/* The sender learns only "delivered" or "not deliverable": not
	 * whether the account is missing, disabled or over quota. */
	if ((rc = sp_store_account_get(st, j->address, &a)) == 0 &&
	    (a.flags & SP_STORE_ACCT_DISABLED))
		rc = ENOENT;
	if (rc == 0)
		rc = sp_store_log_append(st, j->address, SP_STORE_ANY, j->recs,
		    j->nrecs, &j->first, &j->last);
	if (rc != 0) {
		j->nrecs = 0;
		if (rc == ENOENT || rc == SP_STORE_EQUOTA)
			return sp_job_reply_error(j, SP_PERR_NOT_FOUND,
			    "recipient cannot receive");
		return reply_store_error(j, rc);
	}
	reply_ok(j);
}

/* ---- blobs -------------------------------------------------------------- */

static void
blob_begin_check(struct sp_job *j)
{
	if (j->f.f[SP_F_SIZE].u > j->conn->srv->cfg->blob_max)
		sp_job_reply_error(j, SP_PERR_TOO_LARGE,
		    "blob larger than this server accepts");
}

static void
blob_begin_work(struct sp_job *j)
{
	struct sp_frame r;
	uint64_t have = 0;
	int rc;

	rc = sp_store_blob_begin(j->conn->srv->store, j->conn->address,
	    j->f.f[SP_F_BLOB_ID].ptr, j->f.f[SP_F_SIZE].u, &have);
	if (rc != 0)
		return reply_store_error(j, rc);
	sp_frame_init(&r, SP_MSG_BLOB_BEGUN, j->f.id);
	sp_frame_set_uint(&r, SP_F_HAVE, have);
	sp_job_reply(j, &r);
}

static void
blob_chunk_work(struct sp_job *j)
{
	int rc = sp_store_blob_chunk(j->conn->srv->store, j->conn->address,
	    j->f.f[SP_F_BLOB_ID].ptr, j->f.f[SP_F_INDEX].u,
	    j->f.f[SP_F_DATA].ptr, j->f.f[SP_F_DATA].len);

	if (rc != 0)
		return reply_store_error(j, rc);
	reply_ok(j);
}

static void
blob_finish_work(struct sp_job *j)
{
	int rc = sp_store_blob_finish(j->conn->srv->store, j->conn->address,
	    j->f.f[SP_F_BLOB_ID].ptr);

	if (rc != 0)
		return reply_store_error(j, rc);
	reply_ok(j);
}

static void
blob_get_work(struct sp_job *j)
{
	struct sp_frame r;
	uint64_t size;
	int rc;

	/* Blobs are readable by whoever names them: the id is the hash of
	 * ciphertext that only its recipients can open. */
	if ((rc = sp_store_blob_stat(j->conn->srv->store,
	    j->f.f[SP_F_BLOB_ID].ptr, &size)) != 0 ||
	    (rc = sp_store_blob_read(j->conn->srv->store,
	    j->f.f[SP_F_BLOB_ID].ptr, j->f.f[SP_F_INDEX].u, &j->recs_buf,
	    &j->reply_len)) != 0)
		return reply_store_error(j, rc);
	sp_frame_init(&r, SP_MSG_BLOB_DATA, j->f.id);
	sp_frame_set_bytes(&r, SP_F_DATA, j->recs_buf, j->reply_len);
	sp_frame_set_uint(&r, SP_F_SIZE, size);
	sp_job_reply(j, &r);
}

static void
blob_delete_work(struct sp_job *j)
{
	int rc = sp_store_blob_unref(j->conn->srv->store, j->conn->address,
	    j->f.f[SP_F_BLOB_ID].ptr);

	if (rc != 0)
		return reply_store_error(j, rc);
	reply_ok(j);
}

/* ---- COMPACT (docs/protocol.md 7.6) ------------------------------------- */

static void
compact_work(struct sp_job *j)
{
	sp_store *st = j->conn->srv->store;
	uint64_t upto = j->f.f[SP_F_SEQ].u, last = 0;
	int rc;

	if ((rc = sp_store_log_last(st, j->conn->address, &last)) != 0)
		return reply_store_error(j, rc);
	/* Never to nothing: the snapshot that replaces the prefix follows. */
	if (upto == 0 || upto >= last)
		return sp_job_reply_error(j, SP_PERR_INVALID,
		    "compact: seq must be below the log's last seq");
	if ((rc = sp_store_log_compact(st, j->conn->address, upto)) != 0)
		return reply_store_error(j, rc);
	reply_ok(j);
}

/* ---- key directory ------------------------------------------------------ */

static void
keys_check(struct sp_job *j)
{
	struct sp_sync *srv = j->conn->srv;

	if (sp_auth_count(srv->auth, "keys", j->conn->peer_key,
	    (uint32_t)srv->cfg->keys_per_minute, 60))
		return sp_job_reply_error(j, SP_PERR_RATE,
		    "too many key lookups from here; retry in a minute");
	if (field_address(&j->f, SP_F_ADDRESS, j->address) != 0)
		sp_job_reply_error(j, SP_PERR_INVALID,
		    "address is not a mail address");
}

static void
keys_work(struct sp_job *j)
{
	struct sp_store_account a;
	struct sp_frame r;
	int rc;

	if ((rc = sp_store_account_get(j->conn->srv->store, j->address,
	    &a)) == 0 && (a.flags & SP_STORE_ACCT_DISABLED))
		rc = ENOENT;
	if (rc == 0)
		rc = sp_store_pubkeys_get(j->conn->srv->store, j->address,
		    &j->recs_buf, &j->reply_len);
	if (rc != 0)
		return reply_store_error(j, rc);
	sp_frame_init(&r, SP_MSG_KEYS, j->f.id);
	sp_frame_set_text(&r, SP_F_ADDRESS, j->address);
	sp_frame_set_bytes(&r, SP_F_PUBKEYS, j->recs_buf, j->reply_len);
	sp_job_reply(j, &r);
}

/* ---- outbound submission (docs/protocol.md 7.6) ------------------------ */

static void
gateway_key_work(struct sp_job *j)
{
	struct sp_frame r;
	uint8_t pk[32];
	int rc;

	if ((rc = sp_ob_pub_read(j->conn->srv->cfg->data_dir, pk)) != 0)
		return sp_job_reply_error(j, SP_PERR_NOT_FOUND, rc == ENOENT ?
		    "outbound mail is not configured: no gateway key" :
		    "the gateway key is unreadable");
	memcpy(j->token_hash, pk, 32);   /* the reply borrows it */
	sp_frame_init(&r, SP_MSG_GATEWAY_KEY_OK, j->f.id);
	sp_frame_set_bytes(&r, SP_F_GATEWAY_PK, j->token_hash, 32);
	sp_job_reply(j, &r);
}

/* RFC 5321 path syntax, as strict as we need to hand it to an MTA:
 * local@domain, printable ASCII without spaces, brackets or quotes, a
 * domain of letters, digits, hyphens and dots (or SMTPUTF8 bytes). */
static int
outside_address_ok(const uint8_t *p, size_t n)
{
	const uint8_t *at = NULL;
	size_t i;

	if (n < 3 || n > SP_OB_ADDR_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		if (p[i] <= ' ' || p[i] == 0x7f || p[i] == '<' || p[i] == '>' ||
		    p[i] == '"' || p[i] == '\\' || p[i] == '(' || p[i] == ')' ||
		    p[i] == ',' || p[i] == ';' || p[i] == '[' || p[i] == ']')
			return 0;
		if (p[i] == '@') {
			if (at != NULL)
				return 0;
			at = p + i;
		}
	}
	if (at == NULL || at == p || at - p > 64 || at + 1 == p + n ||
	    at[1] == '.' || p[n - 1] == '.')
		return 0;
	for (i = (size_t)(at - p) + 1; i < n; i++)
		if (!(isalnum(p[i]) || p[i] == '-' || p[i] == '.' || p[i] >= 0x80))
			return 0;
	return 1;
}

static void
submit_check(struct sp_job *j)
{
	struct sp_sync *srv = j->conn->srv;
	const struct sp_frame_item *it;
	uint8_t key[16];
	size_t n, i;

	if (field_address(&j->f, SP_F_MAIL_FROM, j->address) != 0)
		return sp_job_reply_error(j, SP_PERR_INVALID,
		    "mail_from is not a mail address");
	/* Exact match only: aliases would need the operator to say which
	 * addresses an account owns, and we keep no such list yet. */
	if (strcmp(j->address, j->conn->address) != 0)
		return sp_job_reply_error(j, SP_PERR_DENIED,
		    "mail_from must be the account's own address");
	it = sp_frame_array(&j->f, SP_F_RECIPIENTS, &n);
	if (n == 0)
		return sp_job_reply_error(j, SP_PERR_INVALID, "no recipients");
	if (n > (size_t)srv->cfg->submit_max_rcpts || n > SP_OB_RCPT_MAX)
		return sp_job_reply_error(j, SP_PERR_TOO_LARGE,
		    "too many recipients in one submission");
	for (i = 0; i < n; i++)
		if (!outside_address_ok(it[i].ptr, it[i].len))
			return sp_job_reply_error(j, SP_PERR_INVALID,
			    "a recipient is not a valid mail address");
	crypto_generichash(key, sizeof(key), (const uint8_t *)j->address,
	    strlen(j->address), NULL, 0);
	if (sp_auth_count(srv->auth, "submit", key,
	    (uint32_t)srv->cfg->submit_per_hour, 3600))
		return sp_job_reply_error(j, SP_PERR_RATE,
		    "outbound limit reached for this account; retry later");
}

static void
submit_work(struct sp_job *j)
{
	struct sp_sync *srv = j->conn->srv;
	struct sp_store_account a;
	struct sp_ob_entry *e;
	const struct sp_frame_item *it;
	uint8_t pk[32], *sealed = NULL;
	size_t n, i, len;
	uint64_t size, now = now_s();
	int rc;

	if ((rc = sp_store_account_get(srv->store, j->conn->address, &a)) != 0)
		return reply_store_error(j, rc);
	if (a.flags & SP_STORE_ACCT_ENCRYPTED_ONLY)
		return sp_job_reply_error(j, SP_PERR_DENIED, "account policy "
		    "is encrypted-only: mail to recipients without a key is "
		    "refused");
	if ((rc = sp_store_blob_stat(srv->store, j->f.f[SP_F_BLOB_ID].ptr,
	    &size)) != 0)
		return sp_job_reply_error(j, SP_PERR_NOT_FOUND,
		    "the message blob is not uploaded");
	if (size > srv->cfg->blob_max)
		return sp_job_reply_error(j, SP_PERR_TOO_LARGE,
		    "message too large");
	if ((rc = sp_ob_pub_read(srv->cfg->data_dir, pk)) != 0)
		return sp_job_reply_error(j, SP_PERR_NOT_FOUND,
		    "outbound mail is not configured: no gateway key");
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return sp_job_reply_error(j, SP_PERR_INTERNAL, "out of memory");
	randombytes_buf(e->id, sizeof(e->id));
	memcpy(e->account, j->conn->address, strlen(j->conn->address) + 1);
	memcpy(e->mail_from, j->address, strlen(j->address) + 1);
	memcpy(e->blob_id, j->f.f[SP_F_BLOB_ID].ptr, 32);
	e->created = now;
	it = sp_frame_array(&j->f, SP_F_RECIPIENTS, &n);
	for (i = 0; i < n; i++) {
		memcpy(e->rcpt[i].addr, it[i].ptr, it[i].len);
		e->rcpt[i].addr[it[i].len] = '\0';
		e->rcpt[i].next = now;
	}
	e->nrcpt = (uint16_t)n;
	if ((rc = sp_ob_entry_seal(e, pk, &sealed, &len)) != 0) {
		sp_job_reply_error(j, SP_PERR_INTERNAL, "queue entry");
		goto out_free;
	}
	/* OK only once the entry is durable: from here the gateway owns the
	 * delivery, and releases the account's blob reference when done. */
	if ((rc = sp_store_queue_put(srv->store, e->id, now, sealed,
	    len)) != 0) {
		reply_store_error(j, rc);
		goto out_free;
	}
	reply_ok(j);
out_free:
	free(sealed);
	sodium_memzero(e, sizeof(*e));
	free(e);
}

/* type, lowest and highest connection state, check, work, done, and
 * whether done runs even when the client has gone. */
#define H(t, lo, hi, check, work, done, always) \
	{ SP_MSG_##t, SP_CONN_##lo, SP_CONN_##hi, check, work, done, always }

static const struct sp_handler handlers[] = {
	H(HELLO, NEW, OPEN, hello_check, hello_check, NULL, 0),
	H(REGISTER, OPEN, OPEN, register_check, register_work, NULL, 0),
	H(PRELOGIN, OPEN, OPEN, prelogin_check, prelogin_work, NULL, 0),
	H(LOGIN, OPEN, OPEN, login_check, login_work, login_done, 0),
	H(RECOVER, OPEN, OPEN, login_check, recover_work, login_done, 0),
	H(RESUME, OPEN, OPEN, resume_check, resume_work, resume_done, 0),
	H(KEYS_GET, OPEN, AUTH, keys_check, keys_work, NULL, 0),
	H(LOGOUT, AUTH, AUTH, NULL, logout_work, logout_done, 0),
	H(SESSIONS, AUTH, AUTH, NULL, sessions_work, NULL, 0),
	H(REVOKE, AUTH, AUTH, NULL, revoke_work, revoke_done, 0),
	H(VAULT_PUT, AUTH, AUTH, vault_put_check, vault_put_work, vault_put_done,
	    0),
	H(APPEND, AUTH, AUTH, records_check, append_work, append_done, 1),
	H(READ, AUTH, AUTH, NULL, read_work, NULL, 0),
	H(SUBSCRIBE, AUTH, AUTH, NULL, subscribe_work, subscribe_done, 0),
	H(DELIVER, AUTH, AUTH, deliver_check, deliver_work, append_done, 1),
	H(BLOB_BEGIN, AUTH, AUTH, blob_begin_check, blob_begin_work, NULL, 0),
	H(BLOB_CHUNK, AUTH, AUTH, NULL, blob_chunk_work, NULL, 0),
	H(BLOB_FINISH, AUTH, AUTH, NULL, blob_finish_work, NULL, 0),
	H(BLOB_GET, AUTH, AUTH, NULL, blob_get_work, NULL, 0),
	H(BLOB_DELETE, AUTH, AUTH, NULL, blob_delete_work, NULL, 0),
	H(LOGIN_2FA, OPEN, OPEN, sp_login2fa_check, sp_login2fa_work,
	    sp_login2fa_done, 0),
	H(FACTORS, AUTH, AUTH, NULL, sp_factors_work, NULL, 0),
	H(FACTOR_ADD, AUTH, AUTH, sp_factor_add_check, sp_factor_add_work,
	    sp_factor_changed, 0),
	H(FACTOR_REMOVE, AUTH, AUTH, sp_factor_remove_check,
	    sp_factor_remove_work, sp_factor_changed, 0),
	H(RECOVERY_NEW, AUTH, AUTH, NULL, sp_recovery_new_work,
	    sp_factor_changed, 0),
	H(COMPACT, AUTH, AUTH, NULL, compact_work, NULL, 0),
	H(GATEWAY_KEY, AUTH, AUTH, NULL, gateway_key_work, NULL, 0),
	H(SUBMIT, AUTH, AUTH, submit_check, submit_work, NULL, 0),
};

const struct sp_handler *
sp_handler_find(uint32_t type)
{
	size_t i;

	for (i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
		if (handlers[i].type == type)
			return &handlers[i];
	return NULL;
}
