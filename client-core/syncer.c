/*
 * The sync engine (syncer.h): READ pages and PUSH frames into the cache
 * log, each frame's records and the new last_applied in one cache batch.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client-core/syncer.h"
#include "proto/frame.h"

static const char KEY_LAST[] = "last_applied";
static const char KEY_START[] = "log_start";

static int __attribute__((format(printf, 4, 5)))
fail(int rc, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

static void
u64_be(uint8_t out[8], uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--, v >>= 8)
		out[i] = (uint8_t)v;
}

/* Decodes a stored u64; SP_EFORMAT for a value of the wrong length. */
static int
be_u64(const uint8_t *p, size_t len, uint64_t *v_r)
{
	uint64_t v = 0;
	size_t i;

	if (len != 8)
		return SP_EFORMAT;
	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	*v_r = v;
	return 0;
}

/* last_applied from a get result: ENOENT means 0. */
static int
decode_last(int rc, uint8_t *val, size_t len, uint64_t *seq_r)
{
	if (rc == ENOENT) {
		*seq_r = 0;
		return 0;
	}
	if (rc == 0)
		rc = be_u64(val, len, seq_r);
	free(val);
	return rc;
}

int
sp_syncer_last_applied(sp_cache *cache, uint64_t *seq_r)
{
	uint8_t *val = NULL;
	size_t len = 0;
	int rc;

	rc = sp_cache_get(cache, SP_CACHE_T_STATE, KEY_LAST,
	    sizeof(KEY_LAST) - 1, &val, &len);
	return decode_last(rc, val, len, seq_r);
}

/* A reply to what: 0 if it is of type want, else the error. */
static int
check_reply(int rc, const struct sp_client_msg *m, uint32_t want,
    const char *what, char *err, size_t errlen)
{
	if (rc != 0)
		return fail(rc, err, errlen, "%s: %s", what, rc == ETIMEDOUT ?
		    "the server did not answer" : "the connection closed");
	if (m->f.type == SP_MSG_ERROR)
		return fail(SP_ESERVER, err, errlen, "%s: %s (%.*s)", what,
		    sp_proto_strerror((int)m->f.f[SP_F_CODE].u),
		    (int)m->f.f[SP_F_MESSAGE].len,
		    (const char *)m->f.f[SP_F_MESSAGE].ptr);
	if (m->f.type != want)
		return fail(EPROTO, err, errlen, "%s: unexpected %s reply",
		    what, sp_msg_name(m->f.type));
	return 0;
}

/*
 * Checks that records seq.. of a frame (n >= 1) may follow last_applied
 * (want - 1): they start at want, or past it when may_skip (a dropped
 * prefix), and do not run past the frame's own last.
 */
static int
check_run(const char *what, uint64_t want, int may_skip, uint64_t seq,
    size_t n, uint64_t last, char *err, size_t errlen)
{
	if (seq < want)
		return fail(EPROTO, err, errlen, "%s: server sent seq %llu "
		    "again (expected %llu): a duplicate", what,
		    (unsigned long long)seq, (unsigned long long)want);
	if (seq > want && !may_skip)
		return fail(EPROTO, err, errlen, "%s: server skipped from "
		    "seq %llu to %llu: a gap", what,
		    (unsigned long long)want, (unsigned long long)seq);
	if (n - 1 > UINT64_MAX - seq || seq + (n - 1) > last)
		return fail(EPROTO, err, errlen, "%s: %zu records from seq "
		    "%llu run past the log's last seq %llu", what, n,
		    (unsigned long long)seq, (unsigned long long)last);
	return 0;
}

/*
 * Writes records seq..seq+n-1 and last_applied = seq+n-1 (and log_start
 * when seq skipped past want) in one batch.  The batch rereads
 * last_applied: if it is no longer want - 1, another syncer ran on this
 * cache and nothing is written (EAGAIN).
 */
static int
commit_run(sp_cache *cache, uint64_t want, uint64_t seq,
    const struct sp_frame_item *it, size_t n, char *err, size_t errlen)
{
	sp_cache_batch *b = NULL;
	uint8_t *val = NULL, be[8];
	size_t len = 0, i;
	uint64_t cur;
	int rc;

	if ((rc = sp_cache_begin(cache, &b)) != 0)
		goto out_fail;
	rc = sp_cache_batch_get(b, SP_CACHE_T_STATE, KEY_LAST,
	    sizeof(KEY_LAST) - 1, &val, &len);
	if ((rc = decode_last(rc, val, len, &cur)) != 0)
		goto out_abort;
	if (cur != want - 1) {
		sp_cache_abort(b);
		return fail(EAGAIN, err, errlen, "another sync of this cache "
		    "moved it from seq %llu to %llu", (unsigned long long)(
		    want - 1), (unsigned long long)cur);
	}
	for (i = 0; i < n; i++)
		if ((rc = sp_cache_batch_log_put(b, seq + i, it[i].ptr,
		    it[i].len)) != 0)
			goto out_abort;
	u64_be(be, seq + (n - 1));
	if ((rc = sp_cache_batch_put(b, SP_CACHE_T_STATE, KEY_LAST,
	    sizeof(KEY_LAST) - 1, be, 8)) != 0)
		goto out_abort;
	if (seq > want) {
		u64_be(be, seq);
		if ((rc = sp_cache_batch_put(b, SP_CACHE_T_STATE, KEY_START,
		    sizeof(KEY_START) - 1, be, 8)) != 0)
			goto out_abort;
	}
	if ((rc = sp_cache_commit(b)) != 0)
		goto out_fail;
	return 0;
out_abort:
	sp_cache_abort(b);
out_fail:
	return fail(rc, err, errlen, "local cache: %s", sp_strerror(rc));
}

/* Checks and applies the records of a RECORDS or PUSH frame (n >= 1). */
static int
apply(sp_cache *cache, const char *what, uint64_t want, int may_skip,
    const struct sp_frame *f, uint64_t *done_r, char *err, size_t errlen)
{
	const struct sp_frame_item *it;
	uint64_t seq = f->f[SP_F_SEQ].u, last = f->f[SP_F_LAST].u;
	size_t n;
	int rc;

	it = sp_frame_array(f, SP_F_RECORDS, &n);
	if ((rc = check_run(what, want, may_skip, seq, n, last, err,
	    errlen)) != 0)
		return rc;
	if ((rc = commit_run(cache, want, seq, it, n, err, errlen)) != 0)
		return rc;
	*done_r = seq + (n - 1);
	return 0;
}

static int
has_fields(const struct sp_frame *f, int more)
{
	return sp_frame_has(f, SP_F_SEQ) && sp_frame_has(f, SP_F_LAST) &&
	    sp_frame_has(f, SP_F_RECORDS) && (!more ||
	    sp_frame_has(f, SP_F_MORE));
}

/*
 * Checks a RECORDS page against the request (seq want, at most max
 * records) before anything is applied.
 */
static int
check_page(const struct sp_frame *f, uint64_t want, uint64_t max,
    char *err, size_t errlen)
{
	uint64_t seq = f->f[SP_F_SEQ].u, last = f->f[SP_F_LAST].u;
	int more = f->f[SP_F_MORE].u != 0;
	size_t n;

	(void)sp_frame_array(f, SP_F_RECORDS, &n);
	if (!has_fields(f, 1))
		return fail(EPROTO, err, errlen, "READ: incomplete reply");
	if (max != 0 && n > max)
		return fail(EPROTO, err, errlen, "READ: %zu records for a "
		    "page of %llu", n, (unsigned long long)max);
	if (n == 0 && (seq != want || more || last >= want))
		return fail(EPROTO, err, errlen, "READ: an empty page from seq "
		    "%llu, but the log's last seq is %llu%s",
		    (unsigned long long)seq, (unsigned long long)last,
		    more ? " and more follow" : "");
	if (n > 0 && seq >= want && n - 1 <= UINT64_MAX - seq &&
	    (more != (seq + (n - 1) < last)))
		return fail(EPROTO, err, errlen, "READ: page ends at seq %llu, "
		    "log at %llu, yet more is %s", (unsigned long long)(
		    seq + (n - 1)), (unsigned long long)last,
		    more ? "true" : "false");
	return 0;
}

/* One READ from want; on success *m_r is a checked RECORDS reply. */
static int
read_page(sp_client *c, uint64_t want, const struct sp_syncer_opts *o,
    struct sp_client_msg **m_r, char *err, size_t errlen)
{
	struct sp_frame f;
	int rc;

	sp_frame_init(&f, SP_MSG_READ, 0);
	sp_frame_set_uint(&f, SP_F_SEQ, want);
	if (o->max_records)
		sp_frame_set_uint(&f, SP_F_MAX_RECORDS, o->max_records);
	if (o->max_bytes)
		sp_frame_set_uint(&f, SP_F_MAX_BYTES, o->max_bytes);
	*m_r = NULL;
	rc = sp_client_call(c, &f, m_r);
	if ((rc = check_reply(rc, *m_r, SP_MSG_RECORDS, "READ", err,
	    errlen)) == 0)
		rc = check_page(&(*m_r)->f, want, o->max_records, err, errlen);
	if (rc != 0) {
		sp_client_msg_free(*m_r);
		*m_r = NULL;
	}
	return rc;
}

int
sp_syncer_pull(sp_client *c, sp_cache *cache,
    const struct sp_syncer_opts *o, uint64_t *applied_r, char *err,
    size_t errlen)
{
	static const struct sp_syncer_opts none;
	struct sp_client_msg *m;
	uint64_t done, applied = 0, want;
	int rc, more;

	if (o == NULL)
		o = &none;
	if (applied_r != NULL)
		*applied_r = 0;
	if ((rc = sp_syncer_last_applied(cache, &done)) != 0)
		return fail(rc, err, errlen, "local cache: %s",
		    sp_strerror(rc));
	do {
		if (done == UINT64_MAX)
			break;
		want = done + 1;
		if ((rc = read_page(c, want, o, &m, err, errlen)) != 0)
			break;
		more = m->f.f[SP_F_MORE].u != 0;
		if (m->f.f[SP_F_RECORDS].len > 0) {
			/* Each READ may begin past a dropped prefix. */
			rc = apply(cache, "READ", want, 1, &m->f, &done, err,
			    errlen);
			if (rc == 0) {
				applied += m->f.f[SP_F_RECORDS].len;
				if (o->progress != NULL)
					o->progress(o->arg, done,
					    m->f.f[SP_F_LAST].u);
			}
		}
		sp_client_msg_free(m);
	} while (rc == 0 && more);
	if (applied_r != NULL)
		*applied_r = applied;
	return rc;
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int
subscribe(sp_client *c, uint64_t want, char *err, size_t errlen)
{
	struct sp_frame f;
	struct sp_client_msg *m = NULL;
	int rc;

	sp_frame_init(&f, SP_MSG_SUBSCRIBE, 0);
	sp_frame_set_uint(&f, SP_F_SEQ, want);
	rc = sp_client_call(c, &f, &m);
	rc = check_reply(rc, m, SP_MSG_SUBSCRIBED, "SUBSCRIBE", err, errlen);
	sp_client_msg_free(m);
	return rc;
}

/* Applies one frame that arrived as a push; *first is cleared after it. */
static int
take_push(sp_cache *cache, const struct sp_client_msg *m, uint64_t *done,
    int *first, char *err, size_t errlen)
{
	int rc;

	if (m->f.type == SP_MSG_ERROR)
		return check_reply(0, m, SP_MSG_PUSH, "subscription", err,
		    errlen);
	if (m->f.type != SP_MSG_PUSH)
		return fail(EPROTO, err, errlen, "subscription: unexpected "
		    "%s", sp_msg_name(m->f.type));
	if (!has_fields(&m->f, 0) || m->f.f[SP_F_RECORDS].len == 0)
		return fail(EPROTO, err, errlen, "PUSH: no records");
	/* Only the first PUSH may begin past a dropped prefix; each later
	 * one starts where the previous ended (section 7.4). */
	rc = apply(cache, "PUSH", *done + 1, *first, &m->f, done, err,
	    errlen);
	*first = 0;
	return rc;
}

int
sp_syncer_follow(sp_client *c, sp_cache *cache, int timeout_ms,
    const struct sp_syncer_opts *o, uint64_t *applied_r, char *err,
    size_t errlen)
{
	static const struct sp_syncer_opts none;
	struct sp_client_msg *m;
	uint64_t done, applied = 0, start = now_ms();
	int rc, first = 1, wait;

	if (o == NULL)
		o = &none;
	if (applied_r != NULL)
		*applied_r = 0;
	if ((rc = sp_syncer_last_applied(cache, &done)) != 0)
		return fail(rc, err, errlen, "local cache: %s",
		    sp_strerror(rc));
	if (done == UINT64_MAX)
		return 0;
	if ((rc = subscribe(c, done + 1, err, errlen)) != 0)
		return rc;
	for (;;) {
		wait = timeout_ms;
		if (o->duration_ms > 0) {
			uint64_t spent = now_ms() - start;

			if (spent >= (uint64_t)o->duration_ms)
				break;
			if ((uint64_t)o->duration_ms - spent < (uint64_t)wait)
				wait = (int)((uint64_t)o->duration_ms - spent);
		}
		rc = sp_client_next_push(c, wait, &m);
		if (rc == ETIMEDOUT) {
			rc = 0;
			break;
		}
		if (rc == EPIPE)
			rc = fail(rc, err, errlen, "subscription: the "
			    "connection closed");
		if (rc != 0)
			break;
		rc = take_push(cache, m, &done, &first, err, errlen);
		if (rc == 0) {
			applied += m->f.f[SP_F_RECORDS].len;
			if (o->progress != NULL)
				o->progress(o->arg, done, m->f.f[SP_F_LAST].u);
		}
		sp_client_msg_free(m);
		if (rc != 0)
			break;
	}
	if (applied_r != NULL)
		*applied_r = applied;
	return rc;
}
