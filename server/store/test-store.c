/*
 * Unit tests of the LMDB store.  Every test works in its own directory
 * below one mkdtemp() root that is removed at the end.  Tests that are not
 * about durability open with no_sync to stay fast.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "server/store/store.h"
#include "tests/unit.h"

#define MiB ((uint64_t)1 << 20)

static char root[] = "/tmp/sp-store-XXXXXX";

static void
path_of(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", root, name);
}

static sp_store *
open_opts(const char *name, uint64_t initial, uint64_t max, int no_sync)
{
	struct sp_store_opts o = { initial, max, no_sync };
	char path[512];
	sp_store *s = NULL;
	int rc;

	path_of(path, sizeof(path), name);
	if ((rc = sp_store_open(path, &o, &s)) != 0) {
		/* Nothing after this can run without a store. */
		fprintf(stderr, "# open %s: %s\n", path, sp_store_strerror(rc));
		exit(1);
	}
	return s;
}

static sp_store *
open_fast(const char *name)
{
	return open_opts(name, 0, 0, 1);
}

static void
account_new(sp_store *s, const char *addr, uint64_t quota)
{
	struct sp_store_account a;

	memset(&a, 0, sizeof(a));
	snprintf(a.address, sizeof(a.address), "%s", addr);
	memset(a.auth_pk, 0xa1, sizeof(a.auth_pk));
	memset(a.kdf_params, 0x02, sizeof(a.kdf_params));
	a.quota_bytes = quota;
	CHECK_RC(sp_store_account_create(s, &a, "vault", 5, "keys", 4), 0);
}

/* ---- records whose content is derived from their sequence number ------ */

static size_t
rec_len(uint64_t seq)
{
	return 16 + (size_t)(seq * 7919 % 2000);
}

static void
rec_fill(uint8_t *p, size_t len, uint64_t seq)
{
	uint64_t x = seq * 0x9e3779b97f4a7c15ull + 1;
	size_t i;

	for (i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

static int
rec_ok(const void *data, size_t len, uint64_t seq, size_t want_len)
{
	uint8_t *exp;
	int ok;

	if (len != want_len || (exp = malloc(len)) == NULL)
		return 0;
	rec_fill(exp, len, seq);
	ok = memcmp(exp, data, len) == 0;
	free(exp);
	return ok;
}

/* Appends one derived record at seq (expected_last = seq - 1). */
static int
append_seq(sp_store *s, const char *addr, uint64_t seq, size_t len)
{
	struct sp_store_rec r;
	uint64_t first = 0;
	uint8_t *buf;
	int rc;

	if ((buf = malloc(len)) == NULL)
		return ENOMEM;
	rec_fill(buf, len, seq);
	r.data = buf;
	r.len = len;
	rc = sp_store_log_append(s, addr, seq - 1, &r, 1, &first, NULL);
	free(buf);
	if (rc == 0 && first != seq)
		rc = EIO;
	return rc;
}

/* Collects what log_read delivers: order, gaps, derived content. */
struct coll {
	size_t fixed_len; /* 0: rec_len(seq); else every record's length */
	int plain;        /* content is not derived: do not check it */
	size_t n, stop_after;
	uint64_t first, prev, seqs[16];
	int gaps, bad;
};

static int
coll_cb(uint64_t seq, const void *data, size_t len, void *arg)
{
	struct coll *c = arg;
	size_t want = c->fixed_len ? c->fixed_len : rec_len(seq);

	if (c->n == 0)
		c->first = seq;
	else if (seq != c->prev + 1)
		c->gaps++;
	if (!c->plain && !rec_ok(data, len, seq, want))
		c->bad++;
	if (c->n < 16)
		c->seqs[c->n] = seq;
	c->prev = seq;
	c->n++;
	return c->stop_after && c->n == c->stop_after ? 7 : 0;
}

/* ---- accounts --------------------------------------------------------- */

static unsigned
mode_of(const char *name)
{
	char path[512];
	struct stat sb;

	path_of(path, sizeof(path), name);
	return stat(path, &sb) == 0 ? (unsigned)(sb.st_mode & 0777) : 0;
}

struct names {
	char v[200][SP_STORE_ADDR_MAX + 1];
	size_t n, stop;
};

static int
names_cb(const struct sp_store_account *a, void *arg)
{
	struct names *nm = arg;

	if (nm->n < 200)
		memcpy(nm->v[nm->n], a->address, sizeof(a->address));
	nm->n++;
	return nm->stop && nm->n == nm->stop ? 42 : 0;
}

static void
t_accounts(void)
{
	sp_store *s = open_fast("accounts");
	struct sp_store_account a, b;
	struct names *nm = calloc(1, sizeof(*nm));
	char addr[64];
	uint64_t last;
	int i, sorted = 1;

	account_new(s, "Alice@Example.ORG", 0);
	CHECK_RC(sp_store_account_get(s, "ALICE@example.org", &a), 0);
	CHECK(strcmp(a.address, "alice@example.org") == 0);
	CHECK(a.auth_pk[0] == 0xa1 && a.kdf_params[24] == 0x02);
	CHECK(a.created != 0 && a.used_bytes == 0 && a.flags == 0);
	CHECK_RC(sp_store_account_create(s, &a, "v", 1, "k", 1), EEXIST);
	CHECK_RC(sp_store_account_get(s, "nobody@example.org", &b), ENOENT);

	b = a;
	b.flags = SP_STORE_ACCT_DISABLED;
	b.quota_bytes = 1000;
	b.used_bytes = 999; /* not the caller's to set */
	memset(b.auth_pk, 0x33, sizeof(b.auth_pk));
	CHECK_RC(sp_store_account_update(s, &b), 0);
	CHECK_RC(sp_store_account_get(s, "alice@example.org", &b), 0);
	CHECK(b.flags == SP_STORE_ACCT_DISABLED && b.quota_bytes == 1000);
	CHECK(b.auth_pk[5] == 0x33 && b.used_bytes == 0);
	CHECK(b.created == a.created);
	snprintf(b.address, sizeof(b.address), "ghost@example.org");
	CHECK_RC(sp_store_account_update(s, &b), ENOENT);

	account_new(s, "carol@example.org", 0);
	account_new(s, "bob@example.org", 0);
	CHECK_RC(sp_store_account_list(s, names_cb, nm), 0);
	CHECK(nm->n == 3);
	CHECK(strcmp(nm->v[0], "alice@example.org") == 0 &&
	    strcmp(nm->v[1], "bob@example.org") == 0 &&
	    strcmp(nm->v[2], "carol@example.org") == 0);
	nm->n = 0;
	nm->stop = 2;
	CHECK_RC(sp_store_account_list(s, names_cb, nm), 42);
	CHECK(nm->n == 2);

	/* More than one page of the listing. */
	for (i = 0; i < 150; i++) {
		snprintf(addr, sizeof(addr), "user%03d@example.net", i);
		account_new(s, addr, 0);
	}
	nm->n = 0;
	nm->stop = 0;
	CHECK_RC(sp_store_account_list(s, names_cb, nm), 0);
	CHECK(nm->n == 153);
	for (i = 1; i < 153; i++)
		sorted &= strcmp(nm->v[i - 1], nm->v[i]) < 0;
	CHECK(sorted);

	CHECK_RC(sp_store_account_delete(s, "BOB@example.org"), 0);
	CHECK_RC(sp_store_account_get(s, "bob@example.org", &b), ENOENT);
	CHECK_RC(sp_store_account_delete(s, "bob@example.org"), ENOENT);
	CHECK_RC(sp_store_log_last(s, "bob@example.org", &last), ENOENT);
	account_new(s, "bob@example.org", 0);
	CHECK_RC(sp_store_log_last(s, "bob@example.org", &last), 0);
	CHECK(last == 0);
	free(nm);
	sp_store_close(s);
	CHECK(mode_of("accounts") == 0700);
	CHECK(mode_of("accounts/data.mdb") == 0600);
	CHECK(mode_of("accounts/lock.mdb") == 0600);
}

static void
t_vault_keys(void)
{
	sp_store *s = open_fast("vault");
	uint8_t pk[32], kdf[25], *p = NULL;
	struct sp_store_account a;
	size_t n = 0;

	account_new(s, "dave@example.org", 0);
	CHECK_RC(sp_store_vault_get(s, "Dave@example.org", &p, &n), 0);
	CHECK(n == 5 && memcmp(p, "vault", 5) == 0);
	free(p);
	CHECK_RC(sp_store_pubkeys_get(s, "dave@example.org", &p, &n), 0);
	CHECK(n == 4 && memcmp(p, "keys", 4) == 0);
	free(p);
	CHECK_RC(sp_store_pubkeys_put(s, "dave@example.org", "keyset2", 7),
	    0);
	CHECK_RC(sp_store_pubkeys_get(s, "dave@example.org", &p, &n), 0);
	CHECK(n == 7 && memcmp(p, "keyset2", 7) == 0);
	free(p);

	/* Password change: vault, auth key and KDF parameters together. */
	memset(pk, 0x44, sizeof(pk));
	memset(kdf, 0x55, sizeof(kdf));
	CHECK_RC(sp_store_vault_put(s, "dave@example.org", "new-vault", 9,
	    pk, kdf), 0);
	CHECK_RC(sp_store_vault_get(s, "dave@example.org", &p, &n), 0);
	CHECK(n == 9 && memcmp(p, "new-vault", 9) == 0);
	free(p);
	CHECK_RC(sp_store_account_get(s, "dave@example.org", &a), 0);
	CHECK(memcmp(a.auth_pk, pk, 32) == 0);
	CHECK(memcmp(a.kdf_params, kdf, 25) == 0);

	CHECK_RC(sp_store_vault_put(s, "eve@example.org", "x", 1, pk, kdf),
	    ENOENT);
	CHECK_RC(sp_store_pubkeys_put(s, "eve@example.org", "x", 1), ENOENT);
	CHECK_RC(sp_store_vault_get(s, "eve@example.org", &p, &n), ENOENT);
	CHECK_RC(sp_store_pubkeys_get(s, "eve@example.org", &p, &n), ENOENT);
	sp_store_close(s);
}

/* ---- sessions --------------------------------------------------------- */

static void
session_make(struct sp_store_session *ss, int tok, const char *addr,
    uint64_t created)
{
	memset(ss, 0, sizeof(*ss));
	memset(ss->token_hash, tok, sizeof(ss->token_hash));
	snprintf(ss->address, sizeof(ss->address), "%s", addr);
	snprintf(ss->device, sizeof(ss->device), "device-%d", tok);
	ss->created = created;
	ss->last_seen = created;
}

struct sess_seen {
	uint64_t created[128];
	size_t n;
};

static int
sess_cb(const struct sp_store_session *ss, void *arg)
{
	struct sess_seen *c = arg;

	if (c->n < 128)
		c->created[c->n] = ss->created;
	c->n++;
	return 0;
}

static void
t_sessions(void)
{
	sp_store *s = open_fast("sessions");
	struct sp_store_session ss, got;
	struct sess_seen seen = { { 0 }, 0 };
	int i, sorted = 1;

	account_new(s, "frank@example.org", 0);
	account_new(s, "grace@example.org", 0);
	session_make(&ss, 1, "Frank@example.org", 300);
	CHECK_RC(sp_store_session_put(s, &ss), 0);
	session_make(&ss, 2, "frank@example.org", 100);
	CHECK_RC(sp_store_session_put(s, &ss), 0);
	session_make(&ss, 3, "frank@example.org", 200);
	CHECK_RC(sp_store_session_put(s, &ss), 0);
	session_make(&ss, 4, "grace@example.org", 50);
	CHECK_RC(sp_store_session_put(s, &ss), 0);

	CHECK_RC(sp_store_session_list(s, "frank@example.org", sess_cb, &seen),
	    0);
	CHECK(seen.n == 3 && seen.created[0] == 100 &&
	    seen.created[1] == 200 && seen.created[2] == 300);

	session_make(&ss, 1, "frank@example.org", 300);
	CHECK_RC(sp_store_session_get(s, ss.token_hash, &got), 0);
	CHECK(strcmp(got.address, "frank@example.org") == 0);
	CHECK(strcmp(got.device, "device-1") == 0 && got.created == 300);
	ss.last_seen = 999;
	CHECK_RC(sp_store_session_put(s, &ss), 0);
	CHECK_RC(sp_store_session_get(s, ss.token_hash, &got), 0);
	CHECK(got.last_seen == 999);

	session_make(&ss, 3, "frank@example.org", 200);
	CHECK_RC(sp_store_session_delete(s, ss.token_hash), 0);
	CHECK_RC(sp_store_session_get(s, ss.token_hash, &got), ENOENT);
	CHECK_RC(sp_store_session_delete(s, ss.token_hash), ENOENT);
	seen.n = 0;
	CHECK_RC(sp_store_session_list(s, "frank@example.org", sess_cb, &seen),
	    0);
	CHECK(seen.n == 2 && seen.created[0] == 100);

	session_make(&ss, 9, "nobody@example.org", 1);
	CHECK_RC(sp_store_session_put(s, &ss), ENOENT);
	CHECK_RC(sp_store_session_list(s, "nobody@example.org", sess_cb, &seen),
	    ENOENT);
	memset(ss.device, 'x', sizeof(ss.device)); /* no terminator */
	CHECK_RC(sp_store_session_put(s, &ss), EINVAL);

	/* Account delete takes its sessions, not others'. */
	CHECK_RC(sp_store_account_delete(s, "frank@example.org"), 0);
	session_make(&ss, 1, "frank@example.org", 300);
	CHECK_RC(sp_store_session_get(s, ss.token_hash, &got), ENOENT);
	session_make(&ss, 4, "grace@example.org", 50);
	CHECK_RC(sp_store_session_get(s, ss.token_hash, &got), 0);

	/* More than one page, given in reverse age order. */
	for (i = 0; i < 100; i++) {
		session_make(&ss, 0, "grace@example.org", 1000 - (uint64_t)i);
		ss.token_hash[0] = (uint8_t)i;
		ss.token_hash[1] = 0x77;
		CHECK_RC(sp_store_session_put(s, &ss), 0);
	}
	seen.n = 0;
	CHECK_RC(sp_store_session_list(s, "grace@example.org", sess_cb, &seen),
	    0);
	CHECK(seen.n == 101 && seen.created[0] == 50);
	for (i = 1; i < 101; i++)
		sorted &= seen.created[i - 1] < seen.created[i];
	CHECK(sorted);
	sp_store_close(s);
}

/* ---- queue ------------------------------------------------------------ */

struct qseen {
	sp_store *s;
	int del;
	size_t n;
	uint8_t ids[8];
	uint64_t dues[8];
	char data[8];
};

static int
queue_cb(const uint8_t id[16], uint64_t due, const void *data, size_t len,
    void *arg)
{
	struct qseen *q = arg;

	if (q->n < 8) {
		q->ids[q->n] = id[0];
		q->dues[q->n] = due;
		q->data[q->n] = len == 1 ? *(const char *)data : '?';
	}
	q->n++;
	/* The gateway deletes what it sent from inside the callback. */
	return q->del ? sp_store_queue_delete(q->s, id) : 0;
}

static void
t_queue(void)
{
	sp_store *s = open_fast("queue");
	struct qseen q = { .s = s };
	uint8_t id1[16], id2[16], id3[16];

	memset(id1, 1, 16);
	memset(id2, 2, 16);
	memset(id3, 3, 16);
	CHECK_RC(sp_store_queue_put(s, id1, 30, "c", 1), 0);
	CHECK_RC(sp_store_queue_put(s, id2, 10, "a", 1), 0);
	CHECK_RC(sp_store_queue_put(s, id3, 20, "b", 1), 0);

	CHECK_RC(sp_store_queue_due(s, 25, 0, queue_cb, &q), 0);
	CHECK(q.n == 2 && q.ids[0] == 2 && q.ids[1] == 3);
	CHECK(q.dues[0] == 10 && q.data[0] == 'a' && q.data[1] == 'b');
	q.n = 0;
	CHECK_RC(sp_store_queue_due(s, 25, 1, queue_cb, &q), 0);
	CHECK(q.n == 1 && q.ids[0] == 2);

	/* Rescheduling replaces the entry. */
	CHECK_RC(sp_store_queue_put(s, id2, 40, "z", 1), 0);
	q.n = 0;
	CHECK_RC(sp_store_queue_due(s, 25, 0, queue_cb, &q), 0);
	CHECK(q.n == 1 && q.ids[0] == 3);
	q.n = 0;
	CHECK_RC(sp_store_queue_due(s, 100, 0, queue_cb, &q), 0);
	CHECK(q.n == 3 && q.ids[0] == 3 && q.ids[1] == 1 && q.ids[2] == 2);
	CHECK(q.data[2] == 'z' && q.dues[2] == 40);

	CHECK_RC(sp_store_queue_delete(s, id3), 0);
	CHECK_RC(sp_store_queue_delete(s, id3), ENOENT);
	q.n = 0;
	CHECK_RC(sp_store_queue_due(s, 100, 0, queue_cb, &q), 0);
	CHECK(q.n == 2 && q.ids[0] == 1);

	q.n = 0;
	q.del = 1;
	CHECK_RC(sp_store_queue_due(s, 100, 0, queue_cb, &q), 0);
	CHECK(q.n == 2);
	q.n = 0;
	q.del = 0;
	CHECK_RC(sp_store_queue_due(s, UINT64_MAX - 1, 0, queue_cb, &q), 0);
	CHECK(q.n == 0);
	sp_store_close(s);
}

/* ---- log -------------------------------------------------------------- */

static uint64_t
used_of(sp_store *s, const char *addr)
{
	struct sp_store_account a;

	if (sp_store_account_get(s, addr, &a) != 0)
		return UINT64_MAX;
	return a.used_bytes;
}

static uint64_t
rec_bytes(uint64_t from, uint64_t to)
{
	uint64_t n = 0;

	for (; from <= to; from++)
		n += rec_len(from);
	return n;
}

/* Appends records from..to (derived content) as one batch. */
static int
append_batch(sp_store *s, const char *addr, uint64_t expected,
    uint64_t from, uint64_t to, uint64_t *first_r, uint64_t *last_r)
{
	struct sp_store_rec recs[64] = { { 0 } };
	uint8_t *bufs[64];
	size_t i, n = (size_t)(to - from + 1);
	int rc;

	if (n > 64)
		return EINVAL;
	for (i = 0; i < n; i++) {
		bufs[i] = malloc(rec_len(from + i));
		rec_fill(bufs[i], rec_len(from + i), from + i);
		recs[i].data = bufs[i];
		recs[i].len = rec_len(from + i);
	}
	rc = sp_store_log_append(s, addr, expected, recs, n, first_r, last_r);
	for (i = 0; i < n; i++)
		free(bufs[i]);
	return rc;
}

static void
t_log(void)
{
	static const char *addr = "heidi@example.org";
	sp_store *s = open_fast("log");
	struct sp_store_stat st0, st1;
	struct coll c = { 0 };
	uint64_t first = 0, last = 0, seq;

	account_new(s, addr, 0);
	CHECK_RC(append_batch(s, addr, SP_STORE_ANY, 1, 1, &first, &last), 0);
	CHECK(first == 1 && last == 1);
	CHECK_RC(append_batch(s, addr, SP_STORE_ANY, 2, 6, &first, &last), 0);
	CHECK(first == 2 && last == 6);
	CHECK_RC(sp_store_log_last(s, addr, &last), 0);
	CHECK(last == 6);

	/* A stale expected_last writes nothing. */
	CHECK_RC(sp_store_stat(s, &st0), 0);
	last = 0;
	CHECK_RC(append_batch(s, addr, 3, 4, 5, &first, &last),
	    SP_STORE_ECONFLICT);
	CHECK(last == 6);
	CHECK_RC(sp_store_stat(s, &st1), 0);
	CHECK(st1.records == st0.records && st1.records == 6);
	CHECK_RC(append_batch(s, addr, 6, 7, 7, &first, &last), 0);
	CHECK(first == 7 && last == 7);
	CHECK(used_of(s, addr) == rec_bytes(1, 7));

	/* Reads from the middle, limited by count and by bytes. */
	CHECK_RC(sp_store_log_read(s, addr, 3, 2, 0, coll_cb, &c, &last), 0);
	CHECK(c.n == 2 && c.seqs[0] == 3 && c.seqs[1] == 4 && c.bad == 0);
	CHECK(last == 7);
	memset(&c, 0, sizeof(c));
	CHECK_RC(sp_store_log_read(s, addr, 1, 0, rec_bytes(1, 2), coll_cb,
	    &c, NULL), 0);
	CHECK(c.n == 2 && c.first == 1 && c.bad == 0);
	memset(&c, 0, sizeof(c));
	CHECK_RC(sp_store_log_read(s, addr, 2, 0, 1, coll_cb, &c, NULL), 0);
	CHECK(c.n == 1 && c.first == 2); /* at least one record */
	memset(&c, 0, sizeof(c));
	CHECK_RC(sp_store_log_read(s, addr, 100, 0, 0, coll_cb, &c, &last),
	    0);
	CHECK(c.n == 0 && last == 7);

	/* Compaction drops the head; numbering goes on. */
	CHECK_RC(sp_store_log_compact(s, addr, 4), 0);
	memset(&c, 0, sizeof(c));
	CHECK_RC(sp_store_log_read(s, addr, 1, 0, 0, coll_cb, &c, &last), 0);
	CHECK(c.n == 3 && c.first == 5 && c.gaps == 0 && c.bad == 0);
	CHECK(used_of(s, addr) == rec_bytes(5, 7));
	CHECK_RC(append_batch(s, addr, 7, 8, 8, &first, &last), 0);
	CHECK(first == 8);
	CHECK_RC(sp_store_log_compact(s, addr, 9), EINVAL);
	CHECK_RC(sp_store_log_compact(s, addr, 0), 0);
	CHECK_RC(sp_store_log_compact(s, "ivan@example.org", 1), ENOENT);

	/* Several read pages' worth; a callback can stop the walk. */
	for (seq = 9; seq <= 400; seq += 56)
		CHECK_RC(append_batch(s, addr, seq - 1, seq, seq + 55, &first,
		    &last), 0);
	memset(&c, 0, sizeof(c));
	CHECK_RC(sp_store_log_read(s, addr, 0, 0, 0, coll_cb, &c, &last), 0);
	CHECK(c.n == 396 && c.first == 5 && c.prev == 400 && c.gaps == 0);
	CHECK(c.bad == 0 && last == 400);
	memset(&c, 0, sizeof(c));
	c.stop_after = 3;
	CHECK_RC(sp_store_log_read(s, addr, 0, 0, 0, coll_cb, &c, NULL), 7);
	CHECK(c.n == 3);
	sp_store_close(s);
}

static void
t_quota(void)
{
	static const char *addr = "judy@example.org";
	sp_store *s = open_fast("quota");
	uint8_t big[6000], id[32];
	struct sp_store_rec r = { big, 6000 };
	uint64_t last;

	memset(big, 0x5a, sizeof(big));
	memset(id, 0x11, sizeof(id));
	account_new(s, addr, 10000);
	CHECK_RC(sp_store_log_append(s, addr, SP_STORE_ANY, &r, 1, NULL, NULL),
	    0);
	r.len = 5000;
	CHECK_RC(sp_store_log_append(s, addr, SP_STORE_ANY, &r, 1, NULL, NULL),
	    SP_STORE_EQUOTA);
	CHECK_RC(sp_store_log_last(s, addr, &last), 0);
	CHECK(last == 1 && used_of(s, addr) == 6000);
	CHECK_RC(sp_store_blob_begin(s, addr, id, 4001, NULL),
	    SP_STORE_EQUOTA);
	CHECK_RC(sp_store_blob_begin(s, addr, id, 4000, NULL), 0);
	CHECK(used_of(s, addr) == 10000);
	CHECK_RC(sp_store_blob_unref(s, addr, id), 0);
	CHECK_RC(sp_store_log_compact(s, addr, 1), 0);
	CHECK(used_of(s, addr) == 0);
	CHECK_RC(sp_store_log_append(s, addr, SP_STORE_ANY, &r, 1, NULL, NULL),
	    0);
	CHECK(used_of(s, addr) == 5000);
	sp_store_close(s);
}

/* ---- blobs ------------------------------------------------------------ */

#define CH SP_STORE_BLOB_CHUNK

static void
blob_put_chunk(sp_store *s, const char *addr, const uint8_t id[32],
    const uint8_t *content, uint64_t size, uint64_t i)
{
	size_t len = size - i * CH < CH ? (size_t)(size - i * CH) : CH;

	CHECK_RC(sp_store_blob_chunk(s, addr, id, i, content + i * CH, len),
	    0);
}

static void
blob_upload(sp_store *s, const char *addr, const uint8_t *content,
    uint64_t size, uint8_t id[32])
{
	uint64_t i;

	crypto_generichash(id, 32, content, size, NULL, 0);
	CHECK_RC(sp_store_blob_begin(s, addr, id, size, NULL), 0);
	for (i = 0; i * CH < size; i++)
		blob_put_chunk(s, addr, id, content, size, i);
	CHECK_RC(sp_store_blob_finish(s, addr, id), 0);
}

static void
t_blobs(void)
{
	static const char *a = "ken@example.org", *b = "lee@example.org",
	    *c = "mia@example.org";
	sp_store *s = open_fast("blobs");
	uint64_t size = 2 * CH + 1000, have = 99, got;
	uint8_t *content = malloc(size), *p = NULL, id[32], id2[32], id3[32];
	struct sp_store_stat st;
	size_t n;
	int i;

	randombytes_buf(content, size);
	crypto_generichash(id, 32, content, size, NULL, 0);
	account_new(s, a, 0);
	account_new(s, b, 0);
	account_new(s, c, 0);

	/* Out of order, resumed, finished. */
	CHECK_RC(sp_store_blob_begin(s, a, id, size, &have), 0);
	CHECK(have == 0 && used_of(s, a) == size);
	blob_put_chunk(s, a, id, content, size, 2);
	blob_put_chunk(s, a, id, content, size, 0);
	blob_put_chunk(s, a, id, content, size, 0); /* again: harmless */
	CHECK_RC(sp_store_blob_begin(s, a, id, size, &have), 0);
	CHECK(have == 2 && used_of(s, a) == size);
	CHECK_RC(sp_store_blob_stat(s, id, &got), ENOENT);
	CHECK_RC(sp_store_blob_read(s, id, 0, &p, &n), ENOENT);
	CHECK_RC(sp_store_blob_finish(s, a, id), SP_STORE_EINCOMPLETE);
	CHECK_RC(sp_store_blob_chunk(s, b, id, 1, content + CH, CH), ENOENT);
	blob_put_chunk(s, a, id, content, size, 1);
	CHECK_RC(sp_store_blob_finish(s, a, id), 0);
	CHECK_RC(sp_store_blob_stat(s, id, &got), 0);
	CHECK(got == size);
	CHECK_RC(sp_store_stat(s, &st), 0);
	CHECK(st.blobs == 1);
	for (i = 0; i < 3; i++) {
		CHECK_RC(sp_store_blob_read(s, id, (uint64_t)i, &p, &n), 0);
		CHECK(n == (i < 2 ? CH : 1000));
		CHECK(p != NULL && memcmp(p, content + i * CH, n) == 0);
		free(p);
	}
	CHECK_RC(sp_store_blob_read(s, id, 3, &p, &n), EINVAL);

	/* A second account: begin only adds a reference. */
	CHECK_RC(sp_store_blob_begin(s, b, id, size + 1, &have), EINVAL);
	CHECK_RC(sp_store_blob_begin(s, b, id, size, &have), 0);
	CHECK(have == 3 && used_of(s, b) == size);
	CHECK_RC(sp_store_blob_finish(s, b, id), 0);
	CHECK_RC(sp_store_blob_unref(s, a, id), 0);
	CHECK(used_of(s, a) == 0);
	CHECK_RC(sp_store_blob_unref(s, a, id), ENOENT);
	CHECK_RC(sp_store_blob_stat(s, id, &got), 0);
	CHECK_RC(sp_store_blob_unref(s, b, id), 0);
	CHECK_RC(sp_store_blob_stat(s, id, &got), ENOENT);
	CHECK_RC(sp_store_blob_read(s, id, 0, &p, &n), ENOENT);
	CHECK_RC(sp_store_stat(s, &st), 0);
	CHECK(st.blobs == 0);

	/* Wrong content stays incomplete until the chunk is right. */
	CHECK_RC(sp_store_blob_begin(s, a, id, size, &have), 0);
	CHECK(have == 0); /* the last unref took the chunks */
	content[CH + 5] ^= 1;
	for (i = 0; i < 3; i++)
		blob_put_chunk(s, a, id, content, size, (uint64_t)i);
	CHECK_RC(sp_store_blob_finish(s, a, id), SP_STORE_EHASH);
	CHECK_RC(sp_store_blob_stat(s, id, &got), ENOENT);
	content[CH + 5] ^= 1;
	blob_put_chunk(s, a, id, content, size, 1);
	CHECK_RC(sp_store_blob_finish(s, a, id), 0);
	CHECK_RC(sp_store_blob_stat(s, id, &got), 0);

	/* Account delete drops its references, finished or not. */
	blob_upload(s, c, content, 100, id2);
	CHECK_RC(sp_store_blob_begin(s, c, id, size, NULL), 0);
	memset(id3, 0x3c, sizeof(id3));
	CHECK_RC(sp_store_blob_begin(s, c, id3, 10, NULL), 0);
	CHECK_RC(sp_store_blob_chunk(s, c, id3, 0, "0123456789", 10), 0);
	CHECK_RC(sp_store_account_delete(s, c), 0);
	CHECK_RC(sp_store_blob_stat(s, id2, &got), ENOENT);
	CHECK_RC(sp_store_blob_stat(s, id, &got), 0); /* a still holds it */
	CHECK_RC(sp_store_blob_begin(s, a, id3, 10, &have), 0);
	CHECK(have == 0);
	free(content);
	sp_store_close(s);
}

/* ---- group commit ----------------------------------------------------- */

#define GC_THREADS 8
#define GC_N 200

struct gc_arg {
	sp_store *s;
	const char *addr;
	int tid, fails;
	uint64_t firsts[GC_N];
};

static void *
gc_thread(void *p)
{
	struct gc_arg *g = p;
	struct sp_store_rec r;
	char buf[32];
	int i;

	for (i = 0; i < GC_N; i++) {
		snprintf(buf, sizeof(buf), "t%d-i%03d", g->tid, i);
		r.data = buf;
		r.len = strlen(buf);
		if (sp_store_log_append(g->s, g->addr, SP_STORE_ANY, &r, 1,
		    &g->firsts[i], NULL) != 0)
			g->fails++;
	}
	return NULL;
}

/* Counts each (thread, i) record and checks the seqs run 1, 2, 3... */
struct gc_seen {
	int count[GC_THREADS][GC_N];
	uint64_t prev;
	int gaps, bad, in_order;
	int tid; /* for one thread's own log: records in its own order */
};

static int
gc_cb(uint64_t seq, const void *data, size_t len, void *arg)
{
	struct gc_seen *g = arg;
	char buf[32];
	int tid, i;

	if (seq != g->prev + 1)
		g->gaps++;
	g->prev = seq;
	snprintf(buf, sizeof(buf), "%.*s", (int)len, (const char *)data);
	if (sscanf(buf, "t%d-i%d", &tid, &i) != 2 || tid < 0 ||
	    tid >= GC_THREADS || i < 0 || i >= GC_N) {
		g->bad++;
		return 0;
	}
	g->count[tid][i]++;
	if (g->tid >= 0 && (tid != g->tid || (uint64_t)i + 1 != seq))
		g->in_order = 0;
	return 0;
}

static void
gc_check_own(sp_store *s, struct gc_arg *g)
{
	struct gc_seen *seen = calloc(1, sizeof(*seen));
	uint64_t last;
	int i, ok = 1;

	seen->tid = g->tid;
	seen->in_order = 1;
	CHECK_RC(sp_store_log_read(s, g->addr, 1, 0, 0, gc_cb, seen, &last),
	    0);
	CHECK(last == GC_N && seen->prev == GC_N && seen->gaps == 0);
	CHECK(seen->in_order && seen->bad == 0);
	for (i = 0; i < GC_N; i++)
		ok &= g->firsts[i] == (uint64_t)i + 1;
	CHECK(ok);
	free(seen);
}

static void
gc_check_shared(sp_store *s, struct gc_arg *gs, int nthreads)
{
	struct gc_seen *seen = calloc(1, sizeof(*seen));
	uint8_t *firsts = calloc(nthreads * GC_N + 1, 1);
	uint64_t last, total = (uint64_t)nthreads * GC_N;
	int t, i, once = 1, unique = 1;

	seen->tid = -1;
	CHECK_RC(sp_store_log_read(s, gs[0].addr, 1, 0, 0, gc_cb, seen, &last),
	    0);
	CHECK(last == total && seen->prev == total && seen->gaps == 0);
	for (t = 0; t < nthreads; t++)
		for (i = 0; i < GC_N; i++) {
			once &= seen->count[gs[t].tid][i] == 1;
			if (gs[t].firsts[i] == 0 || gs[t].firsts[i] > total ||
			    firsts[gs[t].firsts[i]]++)
				unique = 0;
		}
	CHECK(once && unique && seen->bad == 0);
	free(firsts);
	free(seen);
}

static void
t_group_commit(void)
{
	sp_store *s = open_opts("group", 0, 0, 0); /* with fsync */
	struct gc_arg *g = calloc(GC_THREADS, sizeof(*g));
	pthread_t th[GC_THREADS];
	struct sp_store_stat st0, st1;
	char own[GC_THREADS / 2][32];
	int t, fails = 0;

	for (t = 0; t < GC_THREADS / 2; t++) {
		snprintf(own[t], sizeof(own[t]), "own%d@example.org", t);
		account_new(s, own[t], 0);
	}
	account_new(s, "shared@example.org", 0);
	CHECK_RC(sp_store_stat(s, &st0), 0);
	for (t = 0; t < GC_THREADS; t++) {
		g[t].s = s;
		g[t].tid = t;
		g[t].addr = t < GC_THREADS / 2 ? own[t] : "shared@example.org";
		CHECK(pthread_create(&th[t], NULL, gc_thread, &g[t]) == 0);
	}
	for (t = 0; t < GC_THREADS; t++) {
		pthread_join(th[t], NULL);
		fails += g[t].fails;
	}
	CHECK(fails == 0);
	CHECK_RC(sp_store_stat(s, &st1), 0);
	for (t = 0; t < GC_THREADS / 2; t++)
		gc_check_own(s, &g[t]);
	gc_check_shared(s, g + GC_THREADS / 2, GC_THREADS / 2);
	printf("# group commit: %llu writes in %llu commits, %llu batched\n",
	    (unsigned long long)GC_THREADS * GC_N,
	    (unsigned long long)(st1.commits - st0.commits),
	    (unsigned long long)(st1.batched_writes - st0.batched_writes));
	CHECK(st1.commits - st0.commits < (uint64_t)GC_THREADS * GC_N);
	CHECK(st1.batched_writes > st0.batched_writes);
	CHECK(st1.records == (uint64_t)GC_THREADS * GC_N);
	free(g);
	sp_store_close(s);
}

/* ---- map growth ------------------------------------------------------- */

#define BIG (64 * 1024)

struct rd_arg {
	sp_store *s;
	const char *addr;
	atomic_int stop, reads, fails;
};

/* Reads the newest records over and over while the map grows. */
static void *
rd_thread(void *p)
{
	struct rd_arg *r = p;
	struct coll c;
	uint64_t last;

	while (!atomic_load(&r->stop)) {
		memset(&c, 0, sizeof(c));
		c.fixed_len = BIG;
		if (sp_store_log_last(r->s, r->addr, &last) != 0 ||
		    sp_store_log_read(r->s, r->addr, last > 3 ? last - 3 : 1,
		    0, 0, coll_cb, &c, NULL) != 0 || c.bad || c.gaps)
			atomic_fetch_add(&r->fails, 1);
		atomic_fetch_add(&r->reads, 1);
	}
	return NULL;
}

static void
t_map_growth(void)
{
	static const char *addr = "nina@example.org";
	sp_store *s = open_opts("grow", MiB, 0, 1);
	struct rd_arg r = { .s = s, .addr = addr };
	struct sp_store_account acct;
	struct sp_store_stat st;
	struct coll c = { .fixed_len = BIG };
	pthread_t th[2];
	uint64_t seq, last = 0;
	int rc = 0;

	account_new(s, addr, 0);
	CHECK(pthread_create(&th[0], NULL, rd_thread, &r) == 0);
	CHECK(pthread_create(&th[1], NULL, rd_thread, &r) == 0);
	for (seq = 1; seq <= 320 && rc == 0; seq++) /* 20 MiB */
		rc = append_seq(s, addr, seq, BIG);
	atomic_store(&r.stop, 1);
	pthread_join(th[0], NULL);
	pthread_join(th[1], NULL);
	CHECK_RC(rc, 0);
	CHECK(atomic_load(&r.fails) == 0 && atomic_load(&r.reads) > 0);
	CHECK_RC(sp_store_stat(s, &st), 0);
	CHECK(st.map_size >= 20 * MiB && st.records == 320);
	CHECK_RC(sp_store_log_read(s, addr, 1, 0, 0, coll_cb, &c, NULL), 0);
	CHECK(c.n == 320 && c.gaps == 0 && c.bad == 0);
	sp_store_close(s);

	/* At map_max the store says so, and still reads. */
	s = open_opts("full", MiB, 2 * MiB, 1);
	account_new(s, addr, 0);
	for (seq = 1, rc = 0; seq <= 100 && rc == 0; seq++)
		if ((rc = append_seq(s, addr, seq, BIG)) == 0)
			last = seq;
	CHECK_RC(rc, ENOSPC);
	CHECK(strstr(sp_store_strerror(rc), "storage full") != NULL);
	CHECK(last > 5);
	CHECK_RC(sp_store_stat(s, &st), 0);
	CHECK(st.map_size <= 2 * MiB);
	CHECK_RC(sp_store_log_last(s, addr, &seq), 0);
	CHECK(seq == last);
	memset(&c, 0, sizeof(c));
	c.fixed_len = BIG;
	CHECK_RC(sp_store_log_read(s, addr, 1, 0, 0, coll_cb, &c, NULL), 0);
	CHECK(c.n == last && c.gaps == 0 && c.bad == 0);
	CHECK_RC(sp_store_account_get(s, addr, &acct), 0);
	CHECK(acct.used_bytes == last * BIG);
	/*
	 * Deleting still works in a full map (LMDB hands the freed pages
	 * out again only two commits later, so no append follows here).
	 */
	CHECK(st.used_bytes > last * BIG);
	CHECK_RC(sp_store_log_compact(s, addr, last), 0);
	CHECK_RC(sp_store_account_get(s, addr, &acct), 0);
	CHECK(acct.used_bytes == 0);
	CHECK_RC(sp_store_stat(s, &st), 0);
	CHECK(st.used_bytes < BIG);
	sp_store_close(s);
}

/* Another process (the gateway) grows the map under an open store. */
static void
t_map_resized(void)
{
	static const char *addr = "oscar@example.org";
	struct sp_store_opts o = { MiB, 0, 1 };
	struct coll c = { .fixed_len = BIG };
	struct sp_store_stat st;
	char path[512], go;
	int fds[2], status;
	uint64_t seq;
	sp_store *s;
	pid_t pid;

	s = open_opts("resized", MiB, 0, 1);
	account_new(s, addr, 0);
	sp_store_close(s);
	path_of(path, sizeof(path), "resized");
	CHECK(pipe(fds) == 0);
	fflush(NULL);
	if ((pid = fork()) == 0) {
		close(fds[1]);
		if (read(fds[0], &go, 1) != 1 || sp_store_open(path, &o, &s))
			_exit(2);
		for (seq = 1; seq <= 160; seq++) /* 10 MiB */
			if (append_seq(s, addr, seq, BIG) != 0)
				_exit(3);
		sp_store_close(s);
		_exit(0);
	}
	close(fds[0]);
	s = open_opts("resized", MiB, 0, 1);
	CHECK_RC(sp_store_stat(s, &st), 0);
	CHECK(st.map_size < 2 * MiB);
	CHECK(write(fds[1], "x", 1) == 1);
	close(fds[1]);
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK_RC(sp_store_log_read(s, addr, 1, 0, 0, coll_cb, &c, &seq), 0);
	CHECK(c.n == 160 && seq == 160 && c.gaps == 0 && c.bad == 0);
	CHECK_RC(append_seq(s, addr, 161, BIG), 0);
	CHECK_RC(sp_store_stat(s, &st), 0);
	CHECK(st.map_size >= 10 * MiB && st.records == 161);
	sp_store_close(s);
}

/* ---- crash durability ------------------------------------------------- */

static void
crash_child(const char *path, int fd)
{
	struct sp_store_opts o = { 0, 0, 0 };
	sp_store *s;
	uint64_t seq;

	if (sp_store_open(path, &o, &s) != 0)
		_exit(2);
	for (seq = 1;; seq++) {
		if (append_seq(s, "olga@example.org", seq, rec_len(seq)) != 0)
			_exit(3);
		/* Acknowledge only after the append returned. */
		if (write(fd, &seq, sizeof(seq)) != (ssize_t)sizeof(seq))
			_exit(4);
	}
}

static void
t_crash(void)
{
	char path[512];
	sp_store *s = open_fast("crash");
	struct coll c = { 0 };
	uint64_t ack = 0, n = 0, last = 0;
	int fds[2], status;
	pid_t pid;

	account_new(s, "olga@example.org", 0);
	sp_store_close(s);
	path_of(path, sizeof(path), "crash");
	CHECK(pipe(fds) == 0);
	fflush(NULL);
	if ((pid = fork()) == 0) {
		close(fds[0]);
		crash_child(path, fds[1]);
	}
	CHECK(pid > 0);
	close(fds[1]);
	while (n < 300 && read(fds[0], &ack, sizeof(ack)) == sizeof(ack))
		n++;
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	close(fds[0]);
	CHECK(n == 300 && ack == 300);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	s = open_opts("crash", 0, 0, 0);
	CHECK_RC(sp_store_log_last(s, "olga@example.org", &last), 0);
	CHECK(last >= ack);
	CHECK_RC(sp_store_log_read(s, "olga@example.org", 1, 0, 0, coll_cb, &c,
	    NULL), 0);
	CHECK(c.first == 1 && c.n == last && c.gaps == 0 && c.bad == 0);
	printf("# crash: %llu acknowledged, %llu present after SIGKILL\n",
	    (unsigned long long)ack, (unsigned long long)last);
	sp_store_close(s);
}

/* ---- hot backup ------------------------------------------------------- */

struct bk_arg {
	sp_store *s;
	atomic_int stop;
	atomic_ullong done;
	int fails;
};

static void *
bk_thread(void *p)
{
	struct bk_arg *b = p;
	uint64_t seq;

	for (seq = 1; !atomic_load(&b->stop); seq++) {
		if (append_seq(b->s, "pete@example.org", seq, rec_len(seq))) {
			b->fails++;
			break;
		}
		atomic_store(&b->done, seq);
	}
	return NULL;
}

static void
t_backup(void)
{
	struct bk_arg b = { .s = open_fast("backup") };
	struct coll c = { 0 };
	char copy[512];
	struct stat sb;
	pthread_t th;
	sp_store *s2;
	uint64_t last = 0, at_start, final;

	account_new(b.s, "pete@example.org", 0);
	CHECK(pthread_create(&th, NULL, bk_thread, &b) == 0);
	while (atomic_load(&b.done) < 300)
		usleep(1000);
	path_of(copy, sizeof(copy), "backup-copy");
	at_start = atomic_load(&b.done);
	CHECK_RC(sp_store_backup(b.s, copy), 0);
	while (atomic_load(&b.done) < at_start + 200)
		usleep(1000);
	atomic_store(&b.stop, 1);
	pthread_join(th, NULL);
	final = atomic_load(&b.done);
	CHECK(b.fails == 0);
	CHECK_RC(sp_store_backup(b.s, copy), ENOTEMPTY);
	sp_store_close(b.s);

	path_of(copy, sizeof(copy), "backup-copy/data.mdb");
	CHECK(stat(copy, &sb) == 0 && (sb.st_mode & 0777) == 0600);
	s2 = open_fast("backup-copy");
	CHECK_RC(sp_store_log_last(s2, "pete@example.org", &last), 0);
	CHECK_RC(sp_store_log_read(s2, "pete@example.org", 1, 0, 0, coll_cb,
	    &c, NULL), 0);
	CHECK(last >= at_start && last <= final);
	CHECK(c.first == 1 && c.n == last && c.gaps == 0 && c.bad == 0);
	printf("# backup: copy holds %llu of %llu records\n",
	    (unsigned long long)last, (unsigned long long)final);
	sp_store_close(s2);
}

/* ---- bad input -------------------------------------------------------- */

static void
t_bad_addresses(void)
{
	static const char *bad[] = { "", "a b@x", "a\tb@x", "a\nb@x",
		"a\x7f@x", "\x01@x" };
	sp_store *s = open_fast("bad-addr");
	struct sp_store_account a;
	char addr[SP_STORE_ADDR_MAX + 2];
	uint64_t last;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_RC(sp_store_account_get(s, bad[i], &a), EINVAL);
		CHECK_RC(sp_store_log_last(s, bad[i], &last), EINVAL);
		memset(&a, 0, sizeof(a));
		snprintf(a.address, sizeof(a.address), "%s", bad[i]);
		CHECK_RC(sp_store_account_create(s, &a, "v", 1, "k", 1),
		    EINVAL);
	}
	CHECK_RC(sp_store_account_get(s, NULL, &a), EINVAL);
	memset(addr, 'a', sizeof(addr));
	addr[SP_STORE_ADDR_MAX + 1] = '\0'; /* 255 bytes */
	CHECK_RC(sp_store_account_get(s, addr, &a), EINVAL);
	addr[SP_STORE_ADDR_MAX] = '\0'; /* 254 bytes: valid, absent */
	CHECK_RC(sp_store_account_get(s, addr, &a), ENOENT);
	account_new(s, addr, 0);
	CHECK_RC(sp_store_account_get(s, addr, &a), 0);
	memset(a.address, 'b', sizeof(a.address)); /* unterminated */
	CHECK_RC(sp_store_account_create(s, &a, "v", 1, "k", 1), EINVAL);
	sp_store_close(s);
}

static void
t_bad_records(void)
{
	static const char *addr = "quinn@example.org";
	sp_store *s = open_fast("bad-rec");
	uint8_t *big = calloc(1, SP_STORE_RECORD_MAX + 1), id[32];
	struct sp_store_rec r = { big, 0 };
	uint64_t last;

	account_new(s, addr, 0);
	CHECK_RC(sp_store_log_append(s, addr, SP_STORE_ANY, &r, 1, NULL, NULL),
	    EINVAL);
	r.len = SP_STORE_RECORD_MAX + 1;
	CHECK_RC(sp_store_log_append(s, addr, SP_STORE_ANY, &r, 1, NULL, NULL),
	    EINVAL);
	CHECK_RC(sp_store_log_append(s, addr, SP_STORE_ANY, &r, 0, NULL, NULL),
	    EINVAL);
	r.data = NULL;
	r.len = 1;
	CHECK_RC(sp_store_log_append(s, addr, SP_STORE_ANY, &r, 1, NULL, NULL),
	    EINVAL);
	r.data = big;
	r.len = SP_STORE_RECORD_MAX;
	CHECK_RC(sp_store_log_append(s, addr, SP_STORE_ANY, &r, 1, NULL, NULL),
	    0);
	CHECK_RC(sp_store_log_last(s, addr, &last), 0);
	CHECK(last == 1);

	/* Blob chunks: every chunk full-sized except the last. */
	memset(id, 0x42, sizeof(id));
	CHECK_RC(sp_store_blob_begin(s, addr, id, 0, NULL), EINVAL);
	CHECK_RC(sp_store_blob_begin(s, addr, id, 2 * CH + 5, NULL), 0);
	CHECK_RC(sp_store_blob_chunk(s, addr, id, 0, big, 100), EINVAL);
	CHECK_RC(sp_store_blob_chunk(s, addr, id, 2, big, CH), EINVAL);
	CHECK_RC(sp_store_blob_chunk(s, addr, id, 3, big, 5), EINVAL);
	CHECK_RC(sp_store_blob_chunk(s, addr, id, 1, big, CH + 1), EINVAL);
	CHECK_RC(sp_store_blob_chunk(s, addr, id, 2, big, 5), 0);
	CHECK_RC(sp_store_queue_put(s, id, 1, big, 0), EINVAL);
	free(big);
	sp_store_close(s);
}

static void
t_bad_open(void)
{
	struct sp_store_opts o = { 4 * MiB, 2 * MiB, 1 };
	char path[512], junk[4096];
	sp_store *s = NULL;
	int fd, i, rc;

	path_of(path, sizeof(path), "bad-open");
	CHECK_RC(sp_store_open(NULL, NULL, &s), EINVAL);
	CHECK_RC(sp_store_open(path, &o, &s), EINVAL);
	CHECK(s == NULL);

	/* Garbage over data.mdb: an error, not a crash. */
	s = open_fast("corrupt");
	account_new(s, "rita@example.org", 0);
	sp_store_close(s);
	s = NULL;
	path_of(path, sizeof(path), "corrupt/data.mdb");
	CHECK((fd = open(path, O_WRONLY)) >= 0);
	for (i = 0; i < 64; i++) {
		randombytes_buf(junk, sizeof(junk));
		CHECK(write(fd, junk, sizeof(junk)) == (ssize_t)sizeof(junk));
	}
	close(fd);
	path_of(path, sizeof(path), "corrupt");
	rc = sp_store_open(path, NULL, &s);
	CHECK_RC(rc, SP_STORE_ECORRUPT);
	CHECK(s == NULL);
	CHECK(strstr(sp_store_strerror(rc), "corrupt") != NULL);
}

static void
t_strerror(void)
{
	CHECK(strstr(sp_store_strerror(SP_STORE_ECONFLICT), "conflict"));
	CHECK(strstr(sp_store_strerror(SP_STORE_EQUOTA), "quota"));
	CHECK(strstr(sp_store_strerror(SP_STORE_EINCOMPLETE), "complete"));
	CHECK(strstr(sp_store_strerror(SP_STORE_EHASH), "match"));
	CHECK(strstr(sp_store_strerror(ENOSPC), "storage full"));
	CHECK(strcmp(sp_store_strerror(ENOENT), strerror(ENOENT)) == 0);
	CHECK(strcmp(sp_store_strerror(SP_EINVAL), sp_strerror(SP_EINVAL)) ==
	    0);
	CHECK(strcmp(sp_store_strerror(0), "success") == 0);
}

static int
rm_entry(const char *path, const struct stat *sb, int type, struct FTW *f)
{
	return remove(path);
}

static void
t_invites(void)
{
	sp_store *s = open_fast("invites");
	uint8_t a[32], b[32];

	memset(a, 0xaa, sizeof(a));
	memset(b, 0xbb, sizeof(b));
	CHECK_RC(sp_store_invite_put(s, a, 1000), 0);
	CHECK_RC(sp_store_invite_put(s, b, 1000), 0);
	/* Expired at 1000: refused. */
	CHECK_RC(sp_store_invite_take(s, b, 1000), ENOENT);
	/* Good once. */
	CHECK_RC(sp_store_invite_take(s, a, 999), 0);
	CHECK_RC(sp_store_invite_take(s, a, 999), ENOENT);
	CHECK_RC(sp_store_invite_take(s, NULL, 1), EINVAL);
	/* The operator's updates touch only their own fields. */
	{
		struct sp_store_account acc = { .address = "op@example.org" }, g;

		memset(acc.auth_pk, 7, 32);
		CHECK_RC(sp_store_account_create(s, &acc, "v", 1, "k", 1), 0);
		memset(g.auth_pk, 0, 32);
		CHECK_RC(sp_store_account_set_flags(s, "OP@example.org",
		    SP_STORE_ACCT_DISABLED), 0);
		CHECK_RC(sp_store_account_set_quota(s, "op@example.org", 5), 0);
		CHECK_RC(sp_store_account_get(s, "op@example.org", &g), 0);
		CHECK(g.flags == SP_STORE_ACCT_DISABLED && g.quota_bytes == 5 &&
		    g.auth_pk[0] == 7);
		CHECK_RC(sp_store_account_set_flags(s, "op@example.org", 0x80),
		    EINVAL);
		CHECK_RC(sp_store_account_set_quota(s, "nobody@example.org", 1),
		    ENOENT);
	}
	/* Registration by invite: the invite goes only with a new account. */
	{
		struct sp_store_account acc = { .address = "inv@example.org" };
		uint8_t never[32];

		memset(never, 0xcc, sizeof(never));
		CHECK_RC(sp_store_invite_put(s, a, 1000), 0);
		CHECK_RC(sp_store_account_create_invited(s, &acc, "v", 1, "k", 1,
		    never, 10), SP_STORE_EINVITE);
		CHECK_RC(sp_store_account_get(s, "inv@example.org", &acc), ENOENT);
		CHECK_RC(sp_store_account_create_invited(s, &acc, "v", 1, "k", 1,
		    a, 10), 0);
		CHECK_RC(sp_store_account_get(s, "inv@example.org", &acc), 0);
		CHECK_RC(sp_store_invite_put(s, a, 1000), 0);
		/* The address is taken: EEXIST, and the invite survives. */
		CHECK_RC(sp_store_account_create_invited(s, &acc, "v", 1, "k", 1,
		    a, 10), EEXIST);
		CHECK_RC(sp_store_invite_take(s, a, 10), 0);
	}
	sp_store_close(s);
}

int
main(void)
{
	if (mkdtemp(root) == NULL || sodium_init() < 0) {
		perror("mkdtemp");
		return 1;
	}
	RUN(t_accounts);
	RUN(t_vault_keys);
	RUN(t_sessions);
	RUN(t_queue);
	RUN(t_invites);
	RUN(t_log);
	RUN(t_quota);
	RUN(t_blobs);
	RUN(t_group_commit);
	RUN(t_map_growth);
	RUN(t_map_resized);
	RUN(t_crash);
	RUN(t_backup);
	RUN(t_bad_addresses);
	RUN(t_bad_records);
	RUN(t_bad_open);
	RUN(t_strerror);
	(void)nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return unit_done();
}
