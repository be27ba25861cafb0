/*
 * Second factors and security events (docs/protocol.md 6.5, format.md
 * 12.5): the LOGIN gate, LOGIN_2FA, FACTORS, FACTOR_ADD, FACTOR_REMOVE and
 * RECOVERY_NEW, and the events the server seals into an account's log.
 *
 * What the store keeps per factor (values opaque to the store):
 *   FIDO2     id = credential id;  1 || created u64 || counter u32 ||
 *             cose_len u16 || COSE_Key
 *   TOTP      id = "totp";         1 || created u64 || last_step u64 ||
 *             nonce [24] || XChaCha20-Poly1305(totp key, secret)
 *   recovery  id = BLAKE2b-256(recovery key, normalised code);
 *             1 || created u64
 * The TOTP key and the recovery key are derived from DATA_DIR/server.key,
 * so a copy of the database alone neither yields TOTP secrets nor lets
 * recovery codes be tested offline.  Counters and TOTP steps change by
 * compare-and-swap and recovery codes are used by deleting them, so two
 * logins racing with one code cannot both pass.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "crypto/bytes.h"
#include "crypto/envelope.h"
#include "crypto/pubkeys.h"
#include "server/sync/sync.h"
#include "server/sync/sync_verify.h"

#define PENDING_NS (120ull * 1000000000ull)  /* to touch a key or read a code */
#define PENDING_TRIES 3
#define FRESH_NS (300ull * 1000000000ull)    /* FACTOR_REMOVE */
#define RECOVERY_CODES 10
#define RECOVERY_LEN 11                      /* xxxxx-xxxxx */
#define TOTP_ID "totp"
#define TOTP_AD "sealpost-totp-v1"
#define EVENT_OP 64                          /* format.md 12.5 */
#define EVENT_DETAIL_MAX 200

static uint64_t
now_s(void)
{
	return (uint64_t)time(NULL);
}

static const char *
rp_id(const struct sp_sync *s)
{
	if (s->cfg->rp_id[0])
		return s->cfg->rp_id;
	return s->cfg->ndomains > 0 ? s->cfg->domains[0] : "localhost";
}

/* Keys for one purpose each, from the server secret. */
static void
subkey(const struct sp_sync *s, const char *label, uint8_t out[32])
{
	crypto_generichash(out, 32, (const uint8_t *)label, strlen(label),
	    s->secret, sizeof(s->secret));
}

static void
reply_ok(struct sp_job *j)
{
	struct sp_frame r;

	sp_frame_init(&r, SP_MSG_OK, j->f.id);
	sp_job_reply(j, &r);
}

/* ---- events ---------------------------------------------------------------- */

int
sp_factors_event(struct sp_sync *s, const char *address, unsigned type,
    const char *detail)
{
	struct sp_envelope_seal_args a = { .kind = SP_ENVELOPE_KIND_CHANGE };
	uint8_t body[12 + EVENT_DETAIL_MAX], *keys = NULL, *env = NULL;
	uint8_t pk[1][32];
	struct sp_pubkeys p;
	struct sp_store_rec rec;
	size_t klen, elen, dlen = detail ? strlen(detail) : 0;
	uint64_t first, last;
	int rc;

	if (!s->cfg->security_events)
		return 0;
	if ((rc = sp_store_pubkeys_get(s->store, address, &keys, &klen)) != 0)
		return rc;
	if ((rc = sp_pubkeys_parse(keys, klen, &p)) != 0)
		goto out;
	memcpy(pk[0], p.encryption_pk, 32);
	if (dlen > EVENT_DETAIL_MAX)
		dlen = EVENT_DETAIL_MAX;
	body[0] = 1;
	body[1] = EVENT_OP;
	body[2] = (uint8_t)type;
	sp_put_be64(body + 3, now_s());
	memmove(body + 12, detail ? detail : "", dlen);
	body[11] = (uint8_t)dlen;
	a.recipients = (const uint8_t (*)[32])pk;
	a.n_recipients = 1;
	if ((rc = sp_envelope_seal(&a, body, 12 + dlen, &env, &elen)) != 0)
		goto out;
	rec.data = env;
	rec.len = elen;
	rc = sp_store_log_append(s->store, address, SP_STORE_ANY, &rec, 1,
	    &first, &last);
out:
	free(env);
	free(keys);
	return rc;
}

/* ---- stored values ----------------------------------------------------------- */

struct fido_val {
	uint64_t created;
	uint32_t counter;
	const uint8_t *cose;
	size_t cose_len;
};

static int
fido_decode(const uint8_t *v, size_t n, struct fido_val *f)
{
	if (n < 15 || v[0] != 1)
		return -1;
	f->created = sp_get_be64(v + 1);
	f->counter = sp_get_be32(v + 9);
	f->cose_len = (size_t)v[13] << 8 | v[14];
	f->cose = v + 15;
	return f->cose_len == n - 15 ? 0 : -1;
}

static size_t
fido_encode(uint8_t *v, uint64_t created, uint32_t counter,
    const uint8_t *cose, size_t cose_len)
{
	v[0] = 1;
	sp_put_be64(v + 1, created);
	sp_put_be32(v + 9, counter);
	v[13] = (uint8_t)(cose_len >> 8);
	v[14] = (uint8_t)cose_len;
	memcpy(v + 15, cose, cose_len);
	return 15 + cose_len;
}

#define TOTP_HDR 41     /* 1 + 8 + 8 + 24 */

static void
totp_ad(const char *address, uint8_t *ad, size_t *n)
{
	size_t l = strlen(address);

	memcpy(ad, TOTP_AD, sizeof(TOTP_AD) - 1);
	memcpy(ad + sizeof(TOTP_AD) - 1, address, l);
	*n = sizeof(TOTP_AD) - 1 + l;
}

/* Decrypts the secret into sodium_malloc'd *sec_r (the caller frees it
 * with sodium_free). */
static int
totp_open(struct sp_sync *s, const char *address, const uint8_t *v,
    size_t n, uint8_t **sec_r, size_t *len_r, uint64_t *last_r)
{
	uint8_t key[32], ad[sizeof(TOTP_AD) + SP_STORE_ADDR_MAX];
	unsigned long long out;
	size_t adn;
	int rc = -1;

	*sec_r = NULL;
	if (n < TOTP_HDR + crypto_aead_xchacha20poly1305_ietf_ABYTES +
	    SP_TOTP_SECRET_MIN || n > TOTP_HDR + 16 + SP_TOTP_SECRET_MAX ||
	    v[0] != 1)
		return -1;
	if ((*sec_r = sodium_malloc(SP_TOTP_SECRET_MAX)) == NULL)
		return -1;
	subkey(s, "sealpost-totp-key-v1", key);
	totp_ad(address, ad, &adn);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(*sec_r, &out, NULL,
	    v + TOTP_HDR, n - TOTP_HDR, ad, adn, v + 17, key) == 0) {
		*len_r = (size_t)out;
		*last_r = sp_get_be64(v + 9);
		rc = 0;
	} else {
		sodium_free(*sec_r);
		*sec_r = NULL;
	}
	sodium_memzero(key, sizeof(key));
	return rc;
}

/* Which step of now-1..now+1 the code matches (after last), or 0. */
static uint64_t
totp_match(const uint8_t *sec, size_t n, uint64_t last, const char *otp,
    size_t otp_len)
{
	uint64_t now = now_s() / SP_TOTP_STEP, st, found = 0;
	uint32_t code, want = 0;
	size_t i;

	if (otp_len != SP_TOTP_DIGITS)
		return 0;
	for (i = 0; i < otp_len; i++) {
		if (otp[i] < '0' || otp[i] > '9')
			return 0;
		want = want * 10 + (uint32_t)(otp[i] - '0');
	}
	/* All three steps are computed, whatever matches, so timing says
	 * nothing about which one did. */
	for (st = now - 1; st <= now + 1; st++)
		if (sp_totp(sec, n, st, SP_TOTP_DIGITS, &code) == 0 &&
		    code == want && st > last && found == 0)
			found = st;
	return found;
}

/* Normalised recovery code: lower case, no dashes or spaces, Crockford's
 * reading of o/i/l.  0, or -1 if it cannot be one. */
static int
recovery_norm(const char *in, size_t n, char out[RECOVERY_LEN])
{
	size_t i, k = 0;

	for (i = 0; i < n; i++) {
		char c = in[i];

		if (c == '-' || c == ' ')
			continue;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c == 'o')
			c = '0';
		if (c == 'i' || c == 'l')
			c = '1';
		if (k == RECOVERY_LEN - 1 || !((c >= '0' && c <= '9') ||
		    (c >= 'a' && c <= 'z')))
			return -1;
		out[k++] = c;
	}
	out[k] = 0;
	return k == RECOVERY_LEN - 1 ? 0 : -1;
}

static void
recovery_id(struct sp_sync *s, const char *norm, uint8_t id[32])
{
	uint8_t key[32];

	subkey(s, "sealpost-recovery-v1", key);
	crypto_generichash(id, 32, (const uint8_t *)norm, strlen(norm), key,
	    sizeof(key));
	sodium_memzero(key, sizeof(key));
}

/* ---- the LOGIN gate ---------------------------------------------------------- */

struct gate {
	int fido, totp, recovery;
	uint8_t ids[SP_STORE_FACTORS_MAX][SP_STORE_FACTOR_ID_MAX];
	size_t id_len[SP_STORE_FACTORS_MAX];
	size_t nids;
};

static int
gate_collect(unsigned kind, const uint8_t *id, size_t id_len,
    const uint8_t *val, size_t len, void *arg)
{
	struct gate *g = arg;

	if (kind == SP_FACTOR_FIDO2) {
		g->fido++;
		if (g->nids < SP_STORE_FACTORS_MAX && id_len > 0) {
			memcpy(g->ids[g->nids], id, id_len);
			g->id_len[g->nids++] = id_len;
		}
	} else if (kind == SP_FACTOR_TOTP) {
		g->totp++;
	} else if (kind == SP_FACTOR_RECOVERY) {
		g->recovery++;
	}
	return 0;
}

int
sp_factors_login_gate(struct sp_job *j)
{
	struct gate *g = calloc(1, sizeof(*g));
	struct sp_frame r;
	size_t i;
	int rc;

	if (g == NULL) {
		sp_job_reply_error(j, SP_PERR_INTERNAL, "out of memory");
		return 1;
	}
	rc = sp_store_factor_list(j->conn->srv->store, j->address,
	    gate_collect, g);
	if (rc != 0) {
		sp_job_reply_error(j, sp_store_to_proto(rc),
		    sp_store_strerror(rc));
		free(g);
		return 1;
	}
	/* Recovery codes alone do not make an account need them. */
	if (g->fido == 0 && g->totp == 0) {
		free(g);
		return 0;
	}
	randombytes_buf(j->token_hash, 32);   /* the FIDO2 challenge */
	sp_frame_init(&r, SP_MSG_SECOND_FACTOR, j->f.id);
	sp_frame_set_bytes(&r, SP_F_CHALLENGE, j->token_hash, 32);
	sp_frame_set_array_empty(&r, SP_F_FACTORS);
	if (g->fido)
		(void)sp_frame_add_item(&r, SP_F_FACTORS, NULL, 0,
		    SP_FACTOR_FIDO2);
	if (g->totp)
		(void)sp_frame_add_item(&r, SP_F_FACTORS, NULL, 0,
		    SP_FACTOR_TOTP);
	if (g->recovery)
		(void)sp_frame_add_item(&r, SP_F_FACTORS, NULL, 0,
		    SP_FACTOR_RECOVERY);
	for (i = 0; i < g->nids; i++)
		(void)sp_frame_add_item(&r, SP_F_FACTOR_IDS, g->ids[i],
		    g->id_len[i], 0);
	sp_job_reply(j, &r);
	j->rc = SP_JOB_SECOND_FACTOR;
	free(g);
	return 1;
}

void
sp_factors_login_pending(struct sp_job *j)
{
	struct sp_conn *c = j->conn;
	size_t n = 0;

	memset(&c->mfa, 0, sizeof(c->mfa));
	memcpy(c->mfa.address, j->address, sizeof(c->mfa.address));
	memcpy(c->mfa.challenge, j->token_hash, 32);
	if (sp_frame_has(&j->f, SP_F_DEVICE))
		n = j->f.f[SP_F_DEVICE].len;
	if (n >= sizeof(c->mfa.device))
		n = sizeof(c->mfa.device) - 1;
	memcpy(c->mfa.device, j->f.f[SP_F_DEVICE].ptr, n);
	c->mfa.expires = sp_now_ns() + PENDING_NS;
	sodium_memzero(j->token_hash, 32);
}

/* ---- LOGIN_2FA ------------------------------------------------------------------ */

void
sp_login2fa_check(struct sp_job *j)
{
	struct sp_conn *c = j->conn;

	if (c->mfa.expires == 0 || c->mfa.expires < sp_now_ns() ||
	    sodium_memcmp(c->mfa.challenge, j->f.f[SP_F_CHALLENGE].ptr,
	    32) != 0)
		return sp_job_reply_error(j, SP_PERR_DENIED,
		    "no second factor pending for this challenge; LOGIN again");
	memcpy(j->address, c->mfa.address, sizeof(j->address));
	if (sp_auth_limited(c->srv->auth, j->address, c->peer_key))
		return sp_job_reply_error(j, SP_PERR_RATE,
		    "too many failed logins; retry in a minute");
	memcpy(j->token_hash, c->mfa.challenge, 32);
}

static int
fido_login(struct sp_job *j)
{
	struct sp_sync *s = j->conn->srv;
	const struct sp_frame *f = &j->f;
	const struct sp_frame_item *id = &f->f[SP_F_FACTOR_ID];
	uint8_t *v = NULL, nv[15 + SP_COSE_MAX];
	struct sp_cose_key k;
	struct fido_val fv;
	uint32_t counter;
	size_t n;
	int rc = -1;

	if (!sp_frame_has(f, SP_F_FACTOR_ID) ||
	    !sp_frame_has(f, SP_F_AUTH_DATA) ||
	    !sp_frame_has(f, SP_F_CLIENT_DATA) ||
	    !sp_frame_has(f, SP_F_ASSERTION))
		return -1;
	if (sp_store_factor_get(s->store, j->address, SP_FACTOR_FIDO2,
	    id->ptr, id->len, &v, &n) != 0 || fido_decode(v, n, &fv) != 0 ||
	    sp_cose_parse(fv.cose, fv.cose_len, &k) != 0)
		goto out;
	if (sp_fido_verify(&k, rp_id(s), j->token_hash,
	    f->f[SP_F_AUTH_DATA].ptr, f->f[SP_F_AUTH_DATA].len,
	    f->f[SP_F_CLIENT_DATA].ptr, f->f[SP_F_CLIENT_DATA].len,
	    f->f[SP_F_ASSERTION].ptr, f->f[SP_F_ASSERTION].len,
	    &counter) != SP_FIDO_OK)
		goto out;
	/* A counter must grow; an authenticator without one sends 0
	 * every time.  Anything else may be a cloned key: refused, and
	 * the account is told. */
	if ((counter != 0 || fv.counter != 0) && counter <= fv.counter) {
		(void)sp_factors_event(s, j->address, SP_EVENT_COUNTER,
		    "a security key's signature counter went backwards");
		goto out;
	}
	n = fido_encode(nv, fv.created, counter, fv.cose, fv.cose_len);
	rc = sp_store_factor_swap(s->store, j->address, SP_FACTOR_FIDO2,
	    id->ptr, id->len, v, 15 + fv.cose_len, nv, n) == 0 ? 0 : -1;
out:
	free(v);
	return rc;
}

static int
totp_login(struct sp_job *j)
{
	struct sp_sync *s = j->conn->srv;
	const struct sp_frame_item *otp = &j->f.f[SP_F_OTP];
	uint8_t *v = NULL, *sec = NULL, *nv = NULL;
	uint64_t last, step;
	size_t n, slen;
	int rc = -1;

	if (!sp_frame_has(&j->f, SP_F_OTP) ||
	    sp_store_factor_get(s->store, j->address, SP_FACTOR_TOTP, TOTP_ID,
	    4, &v, &n) != 0 ||
	    totp_open(s, j->address, v, n, &sec, &slen, &last) != 0)
		goto out;
	step = totp_match(sec, slen, last, (const char *)otp->ptr, otp->len);
	if (step == 0 || (nv = malloc(n)) == NULL)
		goto out;
	/* The step is remembered: no code works twice, and an older one
	 * never works after a newer one did. */
	memcpy(nv, v, n);
	sp_put_be64(nv + 9, step);
	rc = sp_store_factor_swap(s->store, j->address, SP_FACTOR_TOTP,
	    TOTP_ID, 4, v, n, nv, n) == 0 ? 0 : -1;
out:
	if (sec)
		sodium_free(sec);
	free(nv);
	free(v);
	return rc;
}

static int
recovery_login(struct sp_job *j)
{
	const struct sp_frame_item *otp = &j->f.f[SP_F_OTP];
	char norm[RECOVERY_LEN];
	uint8_t id[32];
	int rc;

	if (!sp_frame_has(&j->f, SP_F_OTP) ||
	    recovery_norm((const char *)otp->ptr, otp->len, norm) != 0)
		return -1;
	recovery_id(j->conn->srv, norm, id);
	sodium_memzero(norm, sizeof(norm));
	rc = sp_store_factor_delete(j->conn->srv->store, j->address,
	    SP_FACTOR_RECOVERY, id, sizeof(id));
	if (rc == 0)
		(void)sp_factors_event(j->conn->srv, j->address,
		    SP_EVENT_RECOVERY_USED, "a recovery code was used");
	return rc == 0 ? 0 : -1;
}

void
sp_login2fa_work(struct sp_job *j)
{
	struct sp_conn *c = j->conn;
	int ok;

	j->rc = SP_PERR_DENIED;
	switch (j->f.f[SP_F_FACTOR].u) {
	case SP_FACTOR_FIDO2: ok = fido_login(j) == 0; break;
	case SP_FACTOR_TOTP: ok = totp_login(j) == 0; break;
	case SP_FACTOR_RECOVERY: ok = recovery_login(j) == 0; break;
	default: ok = 0; break;
	}
	if (!ok)
		return sp_job_reply_error(j, SP_PERR_DENIED,
		    "second factor failed");
	j->rc = 0;
	/* Requests of one connection run one at a time: mfa is stable. */
	sp_login_grant(j, c->mfa.device, strlen(c->mfa.device));
}

void
sp_login2fa_done(struct sp_job *j)
{
	struct sp_conn *c = j->conn;
	struct sp_sync *s = c->srv;

	if (j->rc == 0) {
		memset(&c->mfa, 0, sizeof(c->mfa));
		sp_login_granted(j);
		c->mfa_time = sp_now_ns();
		return;
	}
	if (j->rc == SP_PERR_DENIED || j->rc == SP_PERR_INVALID) {
		sp_auth_failed(s->auth, j->address, c->peer_key);
		s->m.logins_failed++;
		if (++c->mfa.tries >= PENDING_TRIES)
			memset(&c->mfa, 0, sizeof(c->mfa));
	}
}

/* ---- FACTORS -------------------------------------------------------------------- */

struct listing {
	unsigned kind[SP_STORE_FACTORS_MAX * 2];
	uint8_t id[SP_STORE_FACTORS_MAX * 2][SP_STORE_FACTOR_ID_MAX];
	size_t id_len[SP_STORE_FACTORS_MAX * 2];
	uint64_t created[SP_STORE_FACTORS_MAX * 2];
	size_t n;
};

static int
list_collect(unsigned kind, const uint8_t *id, size_t id_len,
    const uint8_t *val, size_t len, void *arg)
{
	struct listing *l = arg;

	if (l->n == SP_STORE_FACTORS_MAX * 2 || len < 9 || id_len == 0)
		return 0;
	l->kind[l->n] = kind;
	/* A recovery code is listed by a prefix of its keyed hash, which
	 * says nothing about the code. */
	if (kind == SP_FACTOR_RECOVERY && id_len > 4)
		id_len = 4;
	memcpy(l->id[l->n], id, id_len);
	l->id_len[l->n] = id_len;
	l->created[l->n] = sp_get_be64(val + 1);
	l->n++;
	return 0;
}

void
sp_factors_work(struct sp_job *j)
{
	struct listing *l = calloc(1, sizeof(*l));
	struct sp_frame r;
	size_t i;
	int rc;

	if (l == NULL)
		return sp_job_reply_error(j, SP_PERR_INTERNAL, "out of memory");
	if ((rc = sp_store_factor_list(j->conn->srv->store, j->conn->address,
	    list_collect, l)) != 0) {
		sp_job_reply_error(j, sp_store_to_proto(rc),
		    sp_store_strerror(rc));
		goto out;
	}
	sp_frame_init(&r, SP_MSG_FACTORS_OK, j->f.id);
	sp_frame_set_array_empty(&r, SP_F_FACTORS);
	for (i = 0; i < l->n; i++)
		(void)sp_frame_add_item(&r, SP_F_FACTORS, NULL, 0, l->kind[i]);
	sp_frame_set_array_empty(&r, SP_F_FACTOR_IDS);
	for (i = 0; i < l->n; i++)
		(void)sp_frame_add_item(&r, SP_F_FACTOR_IDS, l->id[i],
		    l->id_len[i], 0);
	sp_frame_set_array_empty(&r, SP_F_CREATED);
	for (i = 0; i < l->n; i++)
		(void)sp_frame_add_item(&r, SP_F_CREATED, NULL, 0,
		    l->created[i]);
	sp_job_reply(j, &r);
out:
	free(l);
}

/* ---- FACTOR_ADD ------------------------------------------------------------------ */

void
sp_factor_add_check(struct sp_job *j)
{
	const struct sp_frame *f = &j->f;
	struct sp_cose_key k;
	size_t klen = f->f[SP_F_FACTOR_KEY].len;

	switch (f->f[SP_F_FACTOR].u) {
	case SP_FACTOR_FIDO2:
		if (!sp_frame_has(f, SP_F_FACTOR_ID) ||
		    sp_cose_parse(f->f[SP_F_FACTOR_KEY].ptr, klen, &k) != 0)
			return sp_job_reply_error(j, SP_PERR_INVALID,
			    "FIDO2: a credential id and an ES256 or EdDSA "
			    "COSE key are needed");
		return;
	case SP_FACTOR_TOTP:
		if (klen < SP_TOTP_SECRET_MIN || klen > SP_TOTP_SECRET_MAX ||
		    !sp_frame_has(f, SP_F_OTP))
			return sp_job_reply_error(j, SP_PERR_INVALID,
			    "TOTP: a secret of 16..64 bytes and a current code "
			    "are needed");
		return;
	default:
		return sp_job_reply_error(j, SP_PERR_INVALID,
		    "recovery codes come from RECOVERY_NEW");
	}
}

static int
count_collect(unsigned kind, const uint8_t *id, size_t id_len,
    const uint8_t *val, size_t len, void *arg)
{
	if (kind != SP_FACTOR_RECOVERY)
		++*(size_t *)arg;
	return 0;
}

static int
totp_seal(struct sp_sync *s, const char *address, const uint8_t *sec,
    size_t n, uint64_t step, uint8_t *v, size_t *len_r)
{
	uint8_t key[32], ad[sizeof(TOTP_AD) + SP_STORE_ADDR_MAX];
	unsigned long long out;
	size_t adn;

	v[0] = 1;
	sp_put_be64(v + 1, now_s());
	sp_put_be64(v + 9, step);      /* the enrolment code is used */
	randombytes_buf(v + 17, 24);
	subkey(s, "sealpost-totp-key-v1", key);
	totp_ad(address, ad, &adn);
	crypto_aead_xchacha20poly1305_ietf_encrypt(v + TOTP_HDR, &out, sec, n,
	    ad, adn, NULL, v + 17, key);
	sodium_memzero(key, sizeof(key));
	*len_r = TOTP_HDR + (size_t)out;
	return 0;
}

void
sp_factor_add_work(struct sp_job *j)
{
	struct sp_sync *s = j->conn->srv;
	const struct sp_frame *f = &j->f;
	const struct sp_frame_item *key = &f->f[SP_F_FACTOR_KEY];
	uint8_t v[TOTP_HDR + 16 + SP_COSE_MAX];
	size_t n = 0, count = 0;
	const char *what;
	int rc;

	if ((rc = sp_store_factor_list(s->store, j->conn->address,
	    count_collect, &count)) != 0)
		return sp_job_reply_error(j, sp_store_to_proto(rc),
		    sp_store_strerror(rc));
	if (count >= SP_STORE_FACTORS_MAX - 1)
		return sp_job_reply_error(j, SP_PERR_TOO_LARGE,
		    "too many factors");
	if (f->f[SP_F_FACTOR].u == SP_FACTOR_FIDO2) {
		n = fido_encode(v, now_s(), 0, key->ptr, key->len);
		rc = sp_store_factor_put(s->store, j->conn->address,
		    SP_FACTOR_FIDO2, f->f[SP_F_FACTOR_ID].ptr,
		    f->f[SP_F_FACTOR_ID].len, v, n, 1);
		what = "a security key (FIDO2) was added";
	} else {
		/* The code proves the user's app holds the same secret
		 * before the account starts to depend on it. */
		uint64_t step = totp_match(key->ptr, key->len, 0,
		    (const char *)f->f[SP_F_OTP].ptr, f->f[SP_F_OTP].len);

		if (step == 0)
			return sp_job_reply_error(j, SP_PERR_INVALID,
			    "TOTP code does not match the secret");
		totp_seal(s, j->conn->address, key->ptr, key->len, step, v,
		    &n);
		rc = sp_store_factor_put(s->store, j->conn->address,
		    SP_FACTOR_TOTP, TOTP_ID, 4, v, n, 1);
		what = "an authenticator app (TOTP) was added";
	}
	sodium_memzero(v, sizeof(v));
	if (rc != 0)
		return sp_job_reply_error(j, sp_store_to_proto(rc),
		    rc == EEXIST ? "this factor exists; remove it first" :
		    sp_store_strerror(rc));
	(void)sp_factors_event(s, j->conn->address, SP_EVENT_FACTOR_ADDED,
	    what);
	reply_ok(j);
}

/* ---- FACTOR_REMOVE ----------------------------------------------------------------- */

/* Removing a factor weakens the account, so a stolen session token is
 * not enough: this connection must have passed a second factor (LOGIN_2FA)
 * in the last 5 minutes. */
void
sp_factor_remove_check(struct sp_job *j)
{
	struct sp_conn *c = j->conn;

	if (c->mfa_time == 0 || sp_now_ns() - c->mfa_time > FRESH_NS)
		return sp_job_reply_error(j, SP_PERR_AUTH,
		    "log in again with a second factor first");
	if (j->f.f[SP_F_FACTOR].u == SP_FACTOR_FIDO2 &&
	    !sp_frame_has(&j->f, SP_F_FACTOR_ID))
		return sp_job_reply_error(j, SP_PERR_INVALID,
		    "which security key: factor_id");
}

void
sp_factor_remove_work(struct sp_job *j)
{
	struct sp_sync *s = j->conn->srv;
	const struct sp_frame *f = &j->f;
	unsigned kind = (unsigned)f->f[SP_F_FACTOR].u;
	uint8_t *v = NULL;
	size_t n;
	int rc;

	if (kind == SP_FACTOR_FIDO2)
		rc = sp_store_factor_delete(s->store, j->conn->address, kind,
		    f->f[SP_F_FACTOR_ID].ptr, f->f[SP_F_FACTOR_ID].len);
	else if (kind == SP_FACTOR_TOTP &&
	    (rc = sp_store_factor_get(s->store, j->conn->address, kind,
	    TOTP_ID, 4, &v, &n)) != 0)
		;
	else
		rc = sp_store_factor_delete(s->store, j->conn->address, kind,
		    NULL, 0);
	free(v);
	if (rc != 0)
		return sp_job_reply_error(j, sp_store_to_proto(rc),
		    sp_store_strerror(rc));
	(void)sp_factors_event(s, j->conn->address, SP_EVENT_FACTOR_REMOVED,
	    kind == SP_FACTOR_FIDO2 ? "a security key (FIDO2) was removed" :
	    kind == SP_FACTOR_TOTP ? "the authenticator app (TOTP) was removed" :
	    "the recovery codes were removed");
	reply_ok(j);
}

/* ---- RECOVERY_NEW ------------------------------------------------------------------- */

void
sp_recovery_new_work(struct sp_job *j)
{
	/* Crockford's base32: no i, l, o, u; 10 symbols are 50 bits. */
	static const char alpha[] = "0123456789abcdefghjkmnpqrstvwxyz";
	struct sp_sync *s = j->conn->srv;
	char (*codes)[RECOVERY_LEN + 1];
	char norm[RECOVERY_LEN];
	uint8_t id[32], v[9];
	struct sp_frame r;
	size_t i, k;
	int rc;

	if ((codes = sodium_malloc(RECOVERY_CODES * sizeof(*codes))) == NULL)
		return sp_job_reply_error(j, SP_PERR_INTERNAL, "out of memory");
	/* New codes replace the old ones, all of them. */
	if ((rc = sp_store_factor_delete(s->store, j->conn->address,
	    SP_FACTOR_RECOVERY, NULL, 0)) != 0)
		goto fail;
	v[0] = 1;
	sp_put_be64(v + 1, now_s());
	sp_frame_init(&r, SP_MSG_RECOVERY_CODES, j->f.id);
	for (i = 0; i < RECOVERY_CODES; i++) {
		for (k = 0; k < RECOVERY_LEN; k++)
			codes[i][k] = k == 5 ? '-' :
			    alpha[randombytes_uniform(32)];
		codes[i][RECOVERY_LEN] = 0;
		if (recovery_norm(codes[i], RECOVERY_LEN, norm) != 0) {
			rc = EINVAL;
			goto fail;
		}
		recovery_id(s, norm, id);
		if ((rc = sp_store_factor_put(s->store, j->conn->address,
		    SP_FACTOR_RECOVERY, id, sizeof(id), v, sizeof(v), 0)) != 0)
			goto fail;
		(void)sp_frame_add_item(&r, SP_F_CODES, codes[i], RECOVERY_LEN,
		    0);
	}
	sodium_memzero(norm, sizeof(norm));
	(void)sp_factors_event(s, j->conn->address, SP_EVENT_FACTOR_ADDED,
	    "ten new recovery codes replaced the old ones");
	sp_job_reply(j, &r);
	sodium_free(codes);
	return;
fail:
	sodium_free(codes);
	sp_job_reply_error(j, sp_store_to_proto(rc), sp_store_strerror(rc));
}

void
sp_factor_changed(struct sp_job *j)
{
	sp_hub_external(j->conn->srv, j->conn->address);
}
