/*
 * The local cache: round trips, the log, atomic batches across SIGKILL,
 * tampering, what a stolen disk shows, the key file, map growth.
 *
 * Tampering tests open the LMDB environment directly, as a thief with
 * write access to the disk would, always with the cache closed (LMDB
 * forbids one process to open an environment twice).
 */
#include <dirent.h>
#include <errno.h>
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
#include <unistd.h>

#include <lmdb.h>
#include <sodium.h>

#include "client-core/cache.h"
#include "crypto/bytes.h"
#include "tests/unit.h"

static char base[] = "/tmp/sp-test-cache-XXXXXX";
static struct sp_kdf_params cheap; /* Argon2id ops 1, 8 KiB */

static void
dir_for(const char *name, char *out, size_t len)
{
	snprintf(out, len, "%s/%s", base, name);
}

static sp_cache *
open_with(const char *dir, const uint8_t key[SP_CACHE_KEYBYTES],
    const struct sp_cache_opts *o)
{
	sp_cache *c = NULL;

	CHECK_RC(sp_cache_open(dir, key, o, &c), 0);
	return c;
}

/* Fetches (table, key) and compares it with want; wipes and frees. */
static void
expect_at(int line, sp_cache *c, uint8_t table, const char *key,
    const char *want)
{
	uint8_t *v = NULL;
	size_t n = 0;
	int rc = sp_cache_get(c, table, key, strlen(key), &v, &n);

	if (rc != 0 || n != strlen(want) || memcmp(v, want, n) != 0) {
		fprintf(stderr, "# line %d: get %u/%s: %s, %zu bytes\n", line,
		    table, key, sp_strerror(rc), n);
		unit_case_failed = 1;
	}
	if (v != NULL) {
		sodium_memzero(v, n);
		free(v);
	}
}
#define EXPECT(c, t, k, w) expect_at(__LINE__, c, t, k, w)

static int
get_rc(sp_cache *c, uint8_t table, const char *key)
{
	uint8_t *v = NULL;
	size_t n = 0;
	int rc = sp_cache_get(c, table, key, strlen(key), &v, &n);

	if (rc != 0 && (v != NULL || n != 0))
		unit_case_failed = 1; /* outputs must be cleared */
	free(v);
	return rc;
}

static int
log_rc(sp_cache *c, uint64_t seq)
{
	uint8_t *v = NULL;
	size_t n = 0;
	int rc = sp_cache_log_get(c, seq, &v, &n);

	if (rc != 0 && (v != NULL || n != 0))
		unit_case_failed = 1;
	free(v);
	return rc;
}

static int
put_str(sp_cache *c, uint8_t table, const char *key, const char *val)
{
	return sp_cache_put(c, table, key, strlen(key), val, strlen(val));
}

/* ---- raw LMDB: the thief's view ---------------------------------------- */

static int
raw_begin(const char *dir, const char *db, MDB_env **env_r, MDB_txn **txn_r,
    MDB_dbi *dbi_r)
{
	MDB_env *env;
	MDB_txn *txn;
	int rc;

	if ((rc = mdb_env_create(&env)) != 0)
		return rc;
	if ((rc = mdb_env_set_maxdbs(env, 4)) != 0 ||
	    (rc = mdb_env_open(env, dir, 0, 0600)) != 0 ||
	    (rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0) {
		mdb_env_close(env);
		return rc;
	}
	if ((rc = mdb_dbi_open(txn, db, 0, dbi_r)) != 0) {
		mdb_txn_abort(txn);
		mdb_env_close(env);
		return rc;
	}
	*env_r = env;
	*txn_r = txn;
	return 0;
}

/* Returns a malloc'd copy of a stored value, or NULL. */
static uint8_t *
raw_get(const char *dir, const char *db, const void *key, size_t klen,
    size_t *len_r)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = { klen, (void *)(uintptr_t)key }, v;
	uint8_t *p = NULL;

	if (raw_begin(dir, db, &env, &txn, &dbi) != 0)
		return NULL;
	if (mdb_get(txn, dbi, &k, &v) == 0 &&
	    (p = malloc(v.mv_size)) != NULL) {
		memcpy(p, v.mv_data, v.mv_size);
		*len_r = v.mv_size;
	}
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return p;
}

static int
raw_set(const char *dir, const char *db, const void *key, size_t klen,
    const void *val, size_t vlen)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = { klen, (void *)(uintptr_t)key };
	MDB_val v = { vlen, (void *)(uintptr_t)val };
	int rc;

	if ((rc = raw_begin(dir, db, &env, &txn, &dbi)) != 0)
		return rc;
	if ((rc = mdb_put(txn, dbi, &k, &v, 0)) == 0)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	mdb_env_close(env);
	return rc;
}

/* Flips one bit of a stored value; off < 0 counts from the end. */
static int
raw_flip(const char *dir, const char *db, const void *key, size_t klen,
    long off)
{
	size_t len = 0;
	uint8_t *p = raw_get(dir, db, key, klen, &len);
	int rc;

	if (p == NULL)
		return -1;
	p[off < 0 ? (long)len + off : off] ^= 0x01;
	rc = raw_set(dir, db, key, klen, p, len);
	free(p);
	return rc;
}

static int
raw_swap(const char *dir, const char *db, const void *k1, size_t l1,
    const void *k2, size_t l2)
{
	size_t n1 = 0, n2 = 0;
	uint8_t *v1 = raw_get(dir, db, k1, l1, &n1);
	uint8_t *v2 = raw_get(dir, db, k2, l2, &n2);
	int rc = -1;

	if (v1 != NULL && v2 != NULL &&
	    (rc = raw_set(dir, db, k1, l1, v2, n2)) == 0)
		rc = raw_set(dir, db, k2, l2, v1, n1);
	free(v1);
	free(v2);
	return rc;
}

/* The stored key as cache.h documents it, computed independently. */
static void
stored_key(const uint8_t lk[SP_CACHE_KEYBYTES], uint8_t table,
    const char *key, uint8_t out[32])
{
	crypto_generichash_state st;
	uint8_t hk[32];

	crypto_kdf_derive_from_key(hk, sizeof(hk), 1, "sp-cache", lk);
	crypto_generichash_init(&st, hk, sizeof(hk), 32);
	crypto_generichash_update(&st, &table, 1);
	crypto_generichash_update(&st, (const uint8_t *)key, strlen(key));
	crypto_generichash_final(&st, out, 32);
}

/* ---- 1. tables --------------------------------------------------------- */

static void
t_tables(void)
{
	uint8_t key[SP_CACHE_KEYBYTES], big[SP_CACHE_KEY_MAX + 1], *v;
	char dir[256];
	sp_cache *c;
	size_t n;

	randombytes_buf(key, sizeof(key));
	dir_for("tables", dir, sizeof(dir));
	if ((c = open_with(dir, key, NULL)) == NULL)
		return;
	CHECK_RC(put_str(c, SP_CACHE_T_MESSAGE, "k", "one"), 0);
	CHECK_RC(put_str(c, SP_CACHE_T_MAILBOX, "k", "two"), 0);
	EXPECT(c, SP_CACHE_T_MESSAGE, "k", "one");
	EXPECT(c, SP_CACHE_T_MAILBOX, "k", "two");
	CHECK_RC(put_str(c, SP_CACHE_T_MESSAGE, "k", "uno, overwritten"), 0);
	EXPECT(c, SP_CACHE_T_MESSAGE, "k", "uno, overwritten");
	EXPECT(c, SP_CACHE_T_MAILBOX, "k", "two");
	CHECK_RC(get_rc(c, SP_CACHE_T_BODY, "k"), ENOENT);
	CHECK_RC(get_rc(c, SP_CACHE_T_MESSAGE, "K"), ENOENT);
	/* Presence without decryption: the same answers as get. */
	CHECK_RC(sp_cache_has(c, SP_CACHE_T_MESSAGE, "k", 1), 0);
	CHECK_RC(sp_cache_has(c, SP_CACHE_T_BODY, "k", 1), ENOENT);
	CHECK_RC(sp_cache_has(c, SP_CACHE_T_MESSAGE, "K", 1), ENOENT);

	/* Empty key and empty value. */
	CHECK_RC(sp_cache_put(c, 200, NULL, 0, NULL, 0), 0);
	v = NULL;
	CHECK_RC(sp_cache_get(c, 200, NULL, 0, &v, &n), 0);
	CHECK(v != NULL && n == 0);
	free(v);

	CHECK_RC(sp_cache_del(c, SP_CACHE_T_MAILBOX, "k", 1), 0);
	CHECK_RC(get_rc(c, SP_CACHE_T_MAILBOX, "k"), ENOENT);
	CHECK_RC(sp_cache_del(c, SP_CACHE_T_MAILBOX, "k", 1), ENOENT);
	EXPECT(c, SP_CACHE_T_MESSAGE, "k", "uno, overwritten");

	/* Limits and arguments. */
	memset(big, 'a', sizeof(big));
	CHECK_RC(sp_cache_put(c, 200, big, sizeof(big), "x", 1), SP_ELIMIT);
	CHECK_RC(sp_cache_put(c, 200, big, sizeof(big) - 1, "x", 1), 0);
	CHECK_RC(sp_cache_get(c, 200, big, sizeof(big) - 1, &v, &n), 0);
	CHECK(n == 1 && v[0] == 'x');
	free(v);
	CHECK_RC(sp_cache_put(c, 0, "k", 1, "x", 1), SP_EINVAL);
	CHECK_RC(sp_cache_put(c, 200, NULL, 1, "x", 1), SP_EINVAL);
	CHECK_RC(sp_cache_get(c, 200, "k", 1, NULL, &n), SP_EINVAL);

	/* Durable across close. */
	sp_cache_close(c);
	if ((c = open_with(dir, key, NULL)) == NULL)
		return;
	EXPECT(c, SP_CACHE_T_MESSAGE, "k", "uno, overwritten");
	CHECK_RC(get_rc(c, SP_CACHE_T_MAILBOX, "k"), ENOENT);
	sp_cache_close(c);
	sp_cache_close(NULL);
}

/* ---- 2. the log -------------------------------------------------------- */

struct walk {
	uint64_t next;
	size_t count, stop_after;
	sp_cache *c; /* when set, the callback writes to the cache */
	int bad;
};

static int
walk_fn(void *arg, uint64_t seq, const uint8_t *rec, size_t len)
{
	struct walk *w = arg;
	char want[64];

	snprintf(want, sizeof(want), "record %llu", (unsigned long long)seq);
	if (seq != w->next || len != strlen(want) || memcmp(rec, want, len))
		w->bad = 1;
	w->next = seq + 1;
	w->count++;
	if (w->c != NULL && put_str(w->c, SP_CACHE_T_STATE, "walked",
	    want) != 0)
		w->bad = 1;
	return w->stop_after && w->count == w->stop_after ? 7 : 0;
}

static int
log_put_str(sp_cache_batch *b, sp_cache *c, uint64_t seq)
{
	char rec[64];

	snprintf(rec, sizeof(rec), "record %llu", (unsigned long long)seq);
	if (b != NULL)
		return sp_cache_batch_log_put(b, seq, rec, strlen(rec));
	return sp_cache_log_put(c, seq, rec, strlen(rec));
}

static void
t_log(void)
{
	uint8_t key[SP_CACHE_KEYBYTES], *v;
	struct walk w;
	sp_cache_batch *b;
	char dir[256];
	sp_cache *c;
	uint64_t s;
	size_t n;

	randombytes_buf(key, sizeof(key));
	dir_for("log", dir, sizeof(dir));
	if ((c = open_with(dir, key, NULL)) == NULL)
		return;
	/* Out of order: the evens in one batch, then the odds one by one. */
	CHECK_RC(sp_cache_begin(c, &b), 0);
	for (s = 200; s >= 2; s -= 2)
		CHECK_RC(log_put_str(b, c, s), 0);
	CHECK_RC(sp_cache_commit(b), 0);
	for (s = 1; s < 200; s += 2)
		CHECK_RC(log_put_str(NULL, c, s), 0);

	/* From the middle, across several pages of 64. */
	memset(&w, 0, sizeof(w));
	w.next = 57;
	CHECK_RC(sp_cache_log_each(c, 57, walk_fn, &w), 0);
	CHECK(w.count == 144 && w.next == 201 && !w.bad);

	/* The callback stops the walk, and may write. */
	memset(&w, 0, sizeof(w));
	w.next = 10;
	w.stop_after = 70;
	w.c = c;
	CHECK_RC(sp_cache_log_each(c, 10, walk_fn, &w), 7);
	CHECK(w.count == 70 && !w.bad);
	EXPECT(c, SP_CACHE_T_STATE, "walked", "record 79");

	memset(&w, 0, sizeof(w));
	CHECK_RC(sp_cache_log_each(c, 201, walk_fn, &w), 0);
	CHECK(w.count == 0);

	CHECK_RC(sp_cache_log_get(c, 7, &v, &n), 0);
	CHECK(n == 8 && memcmp(v, "record 7", 8) == 0);
	sodium_memzero(v, n);
	free(v);
	CHECK_RC(log_rc(c, 0), ENOENT);
	CHECK_RC(log_rc(c, 999), ENOENT);

	/* The last possible seq ends the walk instead of wrapping. */
	CHECK_RC(log_put_str(NULL, c, UINT64_MAX), 0);
	memset(&w, 0, sizeof(w));
	w.next = UINT64_MAX;
	CHECK_RC(sp_cache_log_each(c, UINT64_MAX - 5, walk_fn, &w), 0);
	CHECK(w.count == 1 && !w.bad);
	memset(&w, 0, sizeof(w));
	w.next = 1;
	CHECK_RC(sp_cache_log_each(c, 0, walk_fn, &w), 0);
	CHECK(w.count == 201);
	CHECK_RC(sp_cache_log_each(c, 0, NULL, NULL), SP_EINVAL);
	sp_cache_close(c);
}

/* ---- 3. batches -------------------------------------------------------- */

static void
t_batch(void)
{
	uint8_t key[SP_CACHE_KEYBYTES], *v;
	sp_cache_batch *b;
	char dir[256];
	sp_cache *c;
	size_t n;

	randombytes_buf(key, sizeof(key));
	dir_for("batch", dir, sizeof(dir));
	if ((c = open_with(dir, key, NULL)) == NULL)
		return;
	CHECK_RC(put_str(c, SP_CACHE_T_STATE, "last", "0"), 0);

	/* Reads in a batch see its own writes; reads outside do not. */
	CHECK_RC(sp_cache_begin(c, &b), 0);
	CHECK_RC(sp_cache_batch_put(b, SP_CACHE_T_STATE, "last", 4, "1", 1),
	    0);
	CHECK_RC(sp_cache_batch_get(b, SP_CACHE_T_STATE, "last", 4, &v, &n),
	    0);
	CHECK(n == 1 && v[0] == '1');
	free(v);
	EXPECT(c, SP_CACHE_T_STATE, "last", "0");
	CHECK_RC(sp_cache_batch_del(b, SP_CACHE_T_STATE, "nothing", 7),
	    ENOENT);
	/* ENOENT left the batch usable. */
	CHECK_RC(sp_cache_batch_put(b, SP_CACHE_T_STATE, "x", 1, "y", 1), 0);
	CHECK_RC(sp_cache_batch_del(b, SP_CACHE_T_STATE, "x", 1), 0);
	CHECK_RC(sp_cache_batch_get(b, SP_CACHE_T_STATE, "x", 1, &v, &n),
	    ENOENT);
	sp_cache_abort(b);
	EXPECT(c, SP_CACHE_T_STATE, "last", "0");
	sp_cache_abort(NULL);

	CHECK_RC(sp_cache_begin(c, &b), 0);
	CHECK_RC(sp_cache_batch_put(b, SP_CACHE_T_STATE, "last", 4, "2", 1),
	    0);
	CHECK_RC(log_put_str(b, c, 2), 0);
	CHECK_RC(sp_cache_commit(b), 0);
	EXPECT(c, SP_CACHE_T_STATE, "last", "2");
	CHECK_RC(log_rc(c, 2), 0);
	sp_cache_close(c);
}

/*
 * The child writes 1000 messages, the state and a log record in one batch,
 * commits or not, tells the parent and waits to be killed.
 */
static void
crash_child(const char *dir, const uint8_t key[SP_CACHE_KEYBYTES],
    int commit, int fd)
{
	char k[32], val[32];
	sp_cache_batch *b;
	sp_cache *c;
	int i;

	if (sp_cache_open(dir, key, NULL, &c) != 0 ||
	    sp_cache_begin(c, &b) != 0)
		_exit(2);
	for (i = 0; i < 1000; i++) {
		snprintf(k, sizeof(k), "msg-%d", i);
		snprintf(val, sizeof(val), "value-%d", i);
		if (sp_cache_batch_put(b, SP_CACHE_T_MESSAGE, k, strlen(k),
		    val, strlen(val)) != 0)
			_exit(2);
	}
	if (sp_cache_batch_put(b, SP_CACHE_T_STATE, "last", 4, "1000",
	    4) != 0 || log_put_str(b, c, 1000) != 0)
		_exit(2);
	if (commit && sp_cache_commit(b) != 0)
		_exit(2);
	if (write(fd, "r", 1) != 1)
		_exit(2);
	for (;;)
		pause();
}

/* Runs crash_child and SIGKILLs it once it reported; 0 on success. */
static int
crash_run(const char *dir, const uint8_t key[SP_CACHE_KEYBYTES], int commit)
{
	int fds[2], status;
	char ch;
	pid_t pid;

	if (pipe(fds) != 0)
		return -1;
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		close(fds[0]);
		crash_child(dir, key, commit, fds[1]);
	}
	close(fds[1]);
	if (read(fds[0], &ch, 1) != 1) {
		close(fds[0]);
		(void)waitpid(pid, &status, 0);
		return -1;
	}
	close(fds[0]);
	kill(pid, SIGKILL);
	if (waitpid(pid, &status, 0) != pid || !WIFSIGNALED(status) ||
	    WTERMSIG(status) != SIGKILL)
		return -1;
	return 0;
}

static void
count_msgs(sp_cache *c, int *present_r, int *right_r)
{
	char k[32], val[32];
	int i;

	*present_r = *right_r = 0;
	for (i = 0; i < 1000; i++) {
		uint8_t *v = NULL;
		size_t n = 0;

		snprintf(k, sizeof(k), "msg-%d", i);
		snprintf(val, sizeof(val), "value-%d", i);
		if (sp_cache_get(c, SP_CACHE_T_MESSAGE, k, strlen(k), &v,
		    &n) != 0)
			continue;
		(*present_r)++;
		*right_r += n == strlen(val) && memcmp(v, val, n) == 0;
		free(v);
	}
}

static void
t_crash(void)
{
	uint8_t key[SP_CACHE_KEYBYTES];
	int present, right;
	char dir[256];
	sp_cache *c;

	randombytes_buf(key, sizeof(key));
	dir_for("crash", dir, sizeof(dir));
	if ((c = open_with(dir, key, NULL)) == NULL)
		return;
	CHECK_RC(put_str(c, SP_CACHE_T_STATE, "last", "0"), 0);
	sp_cache_close(c);

	/* Killed before commit: nothing of the batch exists. */
	CHECK_RC(crash_run(dir, key, 0), 0);
	if ((c = open_with(dir, key, NULL)) == NULL)
		return;
	count_msgs(c, &present, &right);
	CHECK(present == 0);
	EXPECT(c, SP_CACHE_T_STATE, "last", "0");
	CHECK_RC(log_rc(c, 1000), ENOENT);
	/* The dead writer's lock is gone. */
	CHECK_RC(put_str(c, SP_CACHE_T_STATE, "after", "crash"), 0);
	sp_cache_close(c);

	/* Killed right after commit: all of it exists. */
	CHECK_RC(crash_run(dir, key, 1), 0);
	if ((c = open_with(dir, key, NULL)) == NULL)
		return;
	count_msgs(c, &present, &right);
	CHECK(present == 1000 && right == 1000);
	EXPECT(c, SP_CACHE_T_STATE, "last", "1000");
	EXPECT(c, SP_CACHE_T_STATE, "after", "crash");
	CHECK_RC(log_rc(c, 1000), 0);
	sp_cache_close(c);
}

/* ---- 4. tampering and wrong keys --------------------------------------- */

struct count {
	size_t n;
};

static int
count_fn(void *arg, uint64_t seq, const uint8_t *rec, size_t len)
{
	((struct count *)arg)->n++;
	return 0;
}

static int
walk_rc(sp_cache *c, size_t *n_r)
{
	struct count k = { 0 };
	int rc = sp_cache_log_each(c, 0, count_fn, &k);

	*n_r = k.n;
	return rc;
}

static void
t_tamper(void)
{
	uint8_t key[SP_CACHE_KEYBYTES], other[SP_CACHE_KEYBYTES];
	uint8_t sk1[32], sk2[32], seq1[8], seq2[8], seq3[8], *v, *m;
	char dir[256], dir2[256];
	unsigned long long mlen;
	sp_cache *c;
	size_t n, walked;

	randombytes_buf(key, sizeof(key));
	randombytes_buf(other, sizeof(other));
	dir_for("tamper", dir, sizeof(dir));
	dir_for("tamper-other", dir2, sizeof(dir2));
	if ((c = open_with(dir, key, NULL)) == NULL)
		return;
	CHECK_RC(put_str(c, SP_CACHE_T_MESSAGE, "k1", "value one"), 0);
	CHECK_RC(put_str(c, SP_CACHE_T_MESSAGE, "k2", "value two"), 0);
	CHECK_RC(log_put_str(NULL, c, 1), 0);
	CHECK_RC(log_put_str(NULL, c, 2), 0);
	sp_cache_close(c);
	if ((c = open_with(dir2, other, NULL)) == NULL)
		return;
	sp_cache_close(c);

	/* The stored layout is what cache.h says: decrypt it by hand. */
	stored_key(key, SP_CACHE_T_MESSAGE, "k1", sk1);
	stored_key(key, SP_CACHE_T_MESSAGE, "k2", sk2);
	v = raw_get(dir, "kv", sk1, 32, &n);
	CHECK(v != NULL && n == 24 + 9 + 16);
	if (v != NULL && n == 24 + 9 + 16) {
		uint8_t ek[32];

		crypto_kdf_derive_from_key(ek, sizeof(ek), 2, "sp-cache", key);
		m = malloc(n);
		CHECK(crypto_aead_xchacha20poly1305_ietf_decrypt(m, &mlen,
		    NULL, v + 24, n - 24, sk1, 32, v, ek) == 0);
		CHECK(mlen == 9 && memcmp(m, "value one", 9) == 0);
		free(m);
	}
	free(v);
	sp_put_be64(seq1, 1);
	sp_put_be64(seq2, 2);
	sp_put_be64(seq3, 3);

	/* Wrong key: refused at open. */
	CHECK(sp_cache_open(dir, other, NULL, &c) == SP_EAUTH && c == NULL);

	/* One flipped bit in the nonce, the ciphertext, the tag. */
	CHECK_RC(raw_flip(dir, "kv", sk1, 32, 0), 0);
	if ((c = open_with(dir, key, NULL)) == NULL)
		return;
	CHECK_RC(get_rc(c, SP_CACHE_T_MESSAGE, "k1"), SP_EAUTH);
	EXPECT(c, SP_CACHE_T_MESSAGE, "k2", "value two");
	sp_cache_close(c);
	CHECK_RC(raw_flip(dir, "kv", sk1, 32, 0), 0);
	CHECK_RC(raw_flip(dir, "kv", sk1, 32, 24 + 3), 0);
	if ((c = open_with(dir, key, NULL)) == NULL)
		return;
	CHECK_RC(get_rc(c, SP_CACHE_T_MESSAGE, "k1"), SP_EAUTH);
	sp_cache_close(c);
	CHECK_RC(raw_flip(dir, "kv", sk1, 32, 24 + 3), 0);
	CHECK_RC(raw_flip(dir, "kv", sk1, 32, -1), 0);
	if ((c = open_with(dir, key, NULL)) == NULL)
		return;
	CHECK_RC(get_rc(c, SP_CACHE_T_MESSAGE, "k1"), SP_EAUTH);
	sp_cache_close(c);
	CHECK_RC(raw_flip(dir, "kv", sk1, 32, -1), 0);

	/* Values swapped between keys, and between log records. */
	CHECK_RC(raw_swap(dir, "kv", sk1, 32, sk2, 32), 0);
	CHECK_RC(raw_swap(dir, "log", seq1, 8, seq2, 8), 0);
	if ((c = open_with(dir, key, NULL)) == NULL)
		return;
	CHECK_RC(get_rc(c, SP_CACHE_T_MESSAGE, "k1"), SP_EAUTH);
	CHECK_RC(get_rc(c, SP_CACHE_T_MESSAGE, "k2"), SP_EAUTH);
	CHECK_RC(log_rc(c, 1), SP_EAUTH);
	CHECK_RC(log_rc(c, 2), SP_EAUTH);
	CHECK_RC(walk_rc(c, &walked), SP_EAUTH);
	CHECK(walked == 0);
	sp_cache_close(c);
	CHECK_RC(raw_swap(dir, "kv", sk1, 32, sk2, 32), 0);
	CHECK_RC(raw_swap(dir, "log", seq1, 8, seq2, 8), 0);

	/* A flipped log record stops the walk after the ones before it. */
	CHECK_RC(raw_flip(dir, "log", seq2, 8, 30), 0);
	if ((c = open_with(dir, key, NULL)) == NULL)
		return;
	CHECK_RC(log_rc(c, 1), 0);
	CHECK_RC(log_rc(c, 2), SP_EAUTH);
	CHECK_RC(walk_rc(c, &walked), SP_EAUTH);
	CHECK(walked == 1);
	sp_cache_close(c);
	CHECK_RC(raw_flip(dir, "log", seq2, 8, 30), 0);

	/* A table value planted as a log record; a truncated value. */
	v = raw_get(dir, "kv", sk1, 32, &n);
	CHECK(v != NULL);
	if (v != NULL) {
		CHECK_RC(raw_set(dir, "log", seq3, 8, v, n), 0);
		CHECK_RC(raw_set(dir, "kv", sk2, 32, v, 20), 0);
		free(v);
	}
	if ((c = open_with(dir, key, NULL)) == NULL)
		return;
	CHECK_RC(log_rc(c, 3), SP_EAUTH);
	CHECK_RC(get_rc(c, SP_CACHE_T_MESSAGE, "k2"), SP_EFORMAT);
	EXPECT(c, SP_CACHE_T_MESSAGE, "k1", "value one");
	sp_cache_close(c);

	/*
	 * Wrong key past the check: graft the other cache's check value in.
	 * Every log record is SP_EAUTH, never garbage; table lookups miss,
	 * since the key hash differs too.
	 */
	v = raw_get(dir2, "meta", "check", 5, &n);
	CHECK(v != NULL);
	if (v != NULL) {
		CHECK_RC(raw_set(dir, "meta", "check", 5, v, n), 0);
		free(v);
	}
	if ((c = open_with(dir, other, NULL)) == NULL)
		return;
	CHECK_RC(log_rc(c, 1), SP_EAUTH);
	CHECK_RC(log_rc(c, 2), SP_EAUTH);
	CHECK_RC(walk_rc(c, &walked), SP_EAUTH);
	CHECK(walked == 0);
	CHECK_RC(get_rc(c, SP_CACHE_T_MESSAGE, "k1"), ENOENT);
	sp_cache_close(c);
	/* ... and now the right key fails the check instead. */
	CHECK(sp_cache_open(dir, key, NULL, &c) == SP_EAUTH);

	/* Data without any check value is not ours. */
	CHECK_RC(raw_set(dir, "meta", "check", 5, "", 0), 0);
	CHECK(sp_cache_open(dir, key, NULL, &c) == SP_EFORMAT);
}

/* ---- 5. the stolen laptop ---------------------------------------------- */

static const char *const markers[] = {
	"SUBJ-9f3a1c", "alice-7d2e@example.org", "BODY-c0ffee",
	"FOLDER-5b1d", "LOGREC-a11ce", "STATE-0d15ea5e",
};
#define NMARKERS (sizeof(markers) / sizeof(markers[0]))

static uint8_t *
slurp(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	uint8_t *p = NULL;
	size_t cap = 0, len = 0, n;

	if (f == NULL)
		return NULL;
	do {
		if (len == cap) {
			uint8_t *q = realloc(p, cap = cap ? cap * 2 : 65536);

			if (q == NULL) {
				free(p);
				fclose(f);
				return NULL;
			}
			p = q;
		}
		n = fread(p + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	fclose(f);
	*len_r = len;
	return p;
}

/* Counts occurrences of needle in every file of dir; -1 on error. */
static int
scan_dir(const char *dir, const void *needle, size_t nlen, int *files_r)
{
	struct dirent *e;
	char path[512];
	DIR *d;
	int hits = 0;

	*files_r = 0;
	if ((d = opendir(dir)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		uint8_t *p;
		size_t len;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if ((p = slurp(path, &len)) == NULL) {
			hits = -1;
			break;
		}
		(*files_r)++;
		hits += memmem(p, len, needle, nlen) != NULL;
		free(p);
	}
	closedir(d);
	return hits;
}

static int
file_mode(const char *dir, const char *name)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s%s%s", dir, name ? "/" : "",
	    name ? name : "");
	return stat(path, &st) == 0 ? (int)(st.st_mode & 0777) : -1;
}

static void
t_stolen(void)
{
	static const char pw[] = "PASS-horse-battery";
	char dir[256], ctl[256], path[512], hex[SP_CACHE_KEYBYTES * 2 + 1];
	uint8_t *key = NULL;
	sp_cache_batch *b;
	sp_cache *c;
	size_t i;
	int files, hits;
	FILE *f;

	dir_for("stolen", dir, sizeof(dir));
	CHECK_RC(sp_cache_key_create(dir, pw, strlen(pw), &cheap, &key), 0);
	if (key == NULL || (c = open_with(dir, key, NULL)) == NULL)
		goto out;
	/* Markers as keys, as values, as log records, in and out of
	 * batches, overwritten and deleted. */
	CHECK_RC(put_str(c, SP_CACHE_T_MESSAGE, "SUBJ-9f3a1c",
	    "From: alice-7d2e@example.org"), 0);
	CHECK_RC(put_str(c, SP_CACHE_T_PINS, "alice-7d2e@example.org",
	    "SUBJ-9f3a1c"), 0);
	CHECK_RC(put_str(c, SP_CACHE_T_BODY, "BODY-c0ffee", "BODY-c0ffee"),
	    0);
	CHECK_RC(put_str(c, SP_CACHE_T_MAILBOX, "FOLDER-5b1d", "old"), 0);
	CHECK_RC(put_str(c, SP_CACHE_T_MAILBOX, "FOLDER-5b1d",
	    "FOLDER-5b1d renamed"), 0);
	CHECK_RC(put_str(c, SP_CACHE_T_INDEX, "STATE-0d15ea5e",
	    "STATE-0d15ea5e"), 0);
	CHECK_RC(sp_cache_del(c, SP_CACHE_T_INDEX, "STATE-0d15ea5e", 14), 0);
	CHECK_RC(sp_cache_log_put(c, 1, "LOGREC-a11ce", 12), 0);
	CHECK_RC(sp_cache_begin(c, &b), 0);
	CHECK_RC(sp_cache_batch_put(b, SP_CACHE_T_STATE, "STATE-0d15ea5e", 14,
	    "BODY-c0ffee LOGREC-a11ce", 24), 0);
	CHECK_RC(sp_cache_batch_log_put(b, 2, "SUBJ-9f3a1c FOLDER-5b1d", 23),
	    0);
	CHECK_RC(sp_cache_commit(b), 0);
	EXPECT(c, SP_CACHE_T_MESSAGE, "SUBJ-9f3a1c",
	    "From: alice-7d2e@example.org");
	sp_cache_close(c);

	for (i = 0; i < NMARKERS; i++) {
		hits = scan_dir(dir, markers[i], strlen(markers[i]), &files);
		if (hits != 0)
			fprintf(stderr, "# %s: %d hits\n", markers[i], hits);
		CHECK(hits == 0);
	}
	CHECK(files == 3); /* data.mdb, lock.mdb, cache.key, nothing else */
	CHECK(scan_dir(dir, pw, strlen(pw), &files) == 0);
	CHECK(scan_dir(dir, key, SP_CACHE_KEYBYTES, &files) == 0);
	sodium_bin2hex(hex, sizeof(hex), key, SP_CACHE_KEYBYTES);
	CHECK(scan_dir(dir, hex, strlen(hex), &files) == 0);
	for (i = 0; hex[i] != '\0'; i++)
		if (hex[i] >= 'a' && hex[i] <= 'f')
			hex[i] = (char)(hex[i] - 'a' + 'A');
	CHECK(scan_dir(dir, hex, strlen(hex), &files) == 0);

	/* The scanner does see a marker where there is one. */
	dir_for("stolen-control", ctl, sizeof(ctl));
	CHECK(mkdir(ctl, 0700) == 0);
	snprintf(path, sizeof(path), "%s/plain", ctl);
	if ((f = fopen(path, "wb")) != NULL) {
		fputs("xx SUBJ-9f3a1c xx", f);
		fclose(f);
	}
	CHECK(scan_dir(ctl, markers[0], strlen(markers[0]), &files) == 1);

	CHECK(file_mode(dir, NULL) == 0700);
	CHECK(file_mode(dir, "data.mdb") == 0600);
	CHECK(file_mode(dir, "lock.mdb") == 0600);
	CHECK(file_mode(dir, "cache.key") == 0600);
out:
	sodium_free(key);
}

/* ---- 6. the key file --------------------------------------------------- */

static int
key_open_rc(const char *dir, const char *pw, uint8_t *same_as)
{
	uint8_t *k = NULL;
	int rc = sp_cache_key_open(dir, pw, strlen(pw), &k);

	if (rc == 0 && same_as != NULL &&
	    sodium_memcmp(k, same_as, SP_CACHE_KEYBYTES) != 0)
		rc = -1;
	if (rc != 0 && k != NULL)
		rc = -2; /* must stay NULL on failure */
	sodium_free(k);
	return rc;
}

static int
write_file(const char *dir, const char *name, const void *p, size_t len)
{
	char path[512];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "wb")) == NULL)
		return -1;
	ok = fwrite(p, 1, len, f) == len;
	return fclose(f) == 0 && ok ? 0 : -1;
}

static void
t_keyfile(void)
{
	uint8_t *key = NULL, *k2 = NULL, *good = NULL, *bad;
	struct sp_kdf_params p2;
	char dir[256], path[512];
	size_t len = 0;
	sp_cache *c;
	int files;

	dir_for("keyfile", dir, sizeof(dir));
	CHECK_RC(key_open_rc(dir, "pw", NULL), ENOENT);
	CHECK_RC(sp_cache_key_create(dir, "old pw", 6, &cheap, &key), 0);
	if (key == NULL)
		return;
	CHECK_RC(sp_cache_key_create(dir, "old pw", 6, &cheap, &k2), EEXIST);
	CHECK(k2 == NULL);
	CHECK_RC(key_open_rc(dir, "old pw", key), 0);
	CHECK_RC(key_open_rc(dir, "old pW", NULL), SP_EAUTH);
	CHECK_RC(key_open_rc(dir, "", NULL), SP_EAUTH);

	/* Data written before a password change opens after it. */
	if ((c = open_with(dir, key, NULL)) != NULL) {
		CHECK_RC(put_str(c, SP_CACHE_T_STATE, "before", "rewrap"), 0);
		sp_cache_close(c);
	}
	snprintf(path, sizeof(path), "%s/cache.key", dir);
	good = slurp(path, &len);
	CHECK(good != NULL && len == 102);
	CHECK_RC(sp_cache_key_rewrap(dir, "wrong", 5, "new pw", 6, NULL),
	    SP_EAUTH);
	CHECK_RC(key_open_rc(dir, "old pw", key), 0);
	CHECK_RC(sp_cache_key_rewrap(dir, "old pw", 6, "new pw", 6, NULL), 0);
	CHECK_RC(key_open_rc(dir, "old pw", NULL), SP_EAUTH);
	CHECK_RC(key_open_rc(dir, "new pw", key), 0);
	CHECK_RC(sp_cache_key_open(dir, "new pw", 6, &k2), 0);
	if (k2 != NULL && (c = open_with(dir, k2, NULL)) != NULL) {
		EXPECT(c, SP_CACHE_T_STATE, "before", "rewrap");
		sp_cache_close(c);
	}
	sodium_free(k2);
	k2 = NULL;
	/* With new parameters, and the salt changes each time. */
	CHECK_RC(sp_kdf_params_new(&p2, 2, 16), 0);
	CHECK_RC(sp_cache_key_rewrap(dir, "new pw", 6, "newer", 5, &p2), 0);
	CHECK_RC(key_open_rc(dir, "newer", key), 0);
	bad = slurp(path, &len);
	CHECK(bad != NULL && good != NULL && len == 102 &&
	    memcmp(bad + 9, good + 9, 16) != 0);
	free(bad);
	/* No temporary file left behind. */
	(void)scan_dir(dir, "x", 1, &files);
	CHECK(files == 3);

	/* Damaged files give clear errors. */
	if (good != NULL) {
		CHECK_RC(write_file(dir, "cache.key", good, 50), 0);
		CHECK_RC(key_open_rc(dir, "old pw", NULL), SP_ETRUNC);
		CHECK_RC(write_file(dir, "cache.key", good, 3), 0);
		CHECK_RC(key_open_rc(dir, "old pw", NULL), SP_ETRUNC);
		CHECK_RC(write_file(dir, "cache.key", "", 0), 0);
		CHECK_RC(key_open_rc(dir, "old pw", NULL), SP_ETRUNC);
		bad = malloc(103);
		memcpy(bad, good, 102);
		bad[102] = 0;
		CHECK_RC(write_file(dir, "cache.key", bad, 103), 0);
		CHECK_RC(key_open_rc(dir, "old pw", NULL), SP_ETRUNC);
		randombytes_buf(bad, 102);
		CHECK_RC(write_file(dir, "cache.key", bad, 102), 0);
		CHECK_RC(key_open_rc(dir, "old pw", NULL), SP_EFORMAT);
		memcpy(bad, good, 102);
		bad[4] = 2;
		CHECK_RC(write_file(dir, "cache.key", bad, 102), 0);
		CHECK_RC(key_open_rc(dir, "old pw", NULL), SP_EVERSION);
		memcpy(bad, good, 102);
		bad[8] = 0xff; /* opslimit far out of range */
		CHECK_RC(write_file(dir, "cache.key", bad, 102), 0);
		CHECK_RC(key_open_rc(dir, "old pw", NULL), SP_ELIMIT);
		memcpy(bad, good, 102);
		bad[20] ^= 1; /* the salt: covered as associated data */
		CHECK_RC(write_file(dir, "cache.key", bad, 102), 0);
		CHECK_RC(key_open_rc(dir, "old pw", NULL), SP_EAUTH);
		memcpy(bad, good, 102);
		bad[70] ^= 1; /* the wrapped key */
		CHECK_RC(write_file(dir, "cache.key", bad, 102), 0);
		CHECK_RC(key_open_rc(dir, "old pw", NULL), SP_EAUTH);
		CHECK_RC(sp_cache_key_rewrap(dir, "old pw", 6, "x", 1, NULL),
		    SP_EAUTH);
		free(bad);
		CHECK_RC(write_file(dir, "cache.key", good, 102), 0);
		CHECK_RC(key_open_rc(dir, "old pw", key), 0);
	}
	CHECK_RC(sp_cache_key_open(dir, "old pw", 6, NULL), SP_EINVAL);
	free(good);
	sodium_free(key);
}

/* ---- 7. map growth ----------------------------------------------------- */

static void
t_grow(void)
{
	struct sp_cache_opts small = { 1 << 20, 0 }, capped = { 1 << 20,
		2 << 20 };
	uint8_t key[SP_CACHE_KEYBYTES], *big, *v;
	sp_cache_batch *b;
	char dir[256], k[16];
	sp_cache *c;
	size_t n;
	int i, right;

	randombytes_buf(key, sizeof(key));
	if ((big = malloc(SP_CACHE_VALUE_MAX + 1)) == NULL) {
		CHECK(big != NULL);
		return;
	}
	randombytes_buf(big, SP_CACHE_VALUE_MAX + 1);
	dir_for("grow", dir, sizeof(dir));
	if ((c = open_with(dir, key, &small)) == NULL)
		goto out;
	/* The largest value, into a 1 MiB map. */
	CHECK_RC(sp_cache_put(c, SP_CACHE_T_BODY, "big", 3, big,
	    SP_CACHE_VALUE_MAX + 1), SP_ELIMIT);
	CHECK_RC(sp_cache_log_put(c, 1, big, SP_CACHE_VALUE_MAX + 1),
	    SP_ELIMIT);
	CHECK_RC(sp_cache_put(c, SP_CACHE_T_BODY, "big", 3, big,
	    SP_CACHE_VALUE_MAX), 0);
	CHECK_RC(sp_cache_get(c, SP_CACHE_T_BODY, "big", 3, &v, &n), 0);
	CHECK(n == SP_CACHE_VALUE_MAX && memcmp(v, big, n) == 0);
	free(v);
	CHECK_RC(sp_cache_del(c, SP_CACHE_T_BODY, "big", 3), 0);
	sp_cache_close(c);

	/* A batch that read, then outgrew the map, is replayed whole (in a
	 * fresh cache: the first one keeps the room the big value freed). */
	dir_for("grow-batch", dir, sizeof(dir));
	if ((c = open_with(dir, key, &small)) == NULL)
		goto out;
	CHECK_RC(sp_cache_begin(c, &b), 0);
	CHECK_RC(sp_cache_batch_get(b, SP_CACHE_T_BODY, "big", 3, &v, &n),
	    ENOENT);
	for (i = 0; i < 40; i++) {
		snprintf(k, sizeof(k), "b%d", i);
		CHECK_RC(sp_cache_batch_put(b, SP_CACHE_T_BODY, k, strlen(k),
		    big + i, 1 << 20), 0);
	}
	CHECK_RC(sp_cache_batch_log_put(b, 5, big, 3 << 20), 0);
	CHECK_RC(sp_cache_commit(b), 0);
	for (i = 0, right = 0; i < 40; i++) {
		snprintf(k, sizeof(k), "b%d", i);
		if (sp_cache_get(c, SP_CACHE_T_BODY, k, strlen(k), &v,
		    &n) != 0)
			continue;
		right += n == 1 << 20 && memcmp(v, big + i, n) == 0;
		free(v);
	}
	CHECK(right == 40);
	CHECK_RC(sp_cache_log_get(c, 5, &v, &n), 0);
	CHECK(n == 3 << 20 && memcmp(v, big, n) == 0);
	free(v);
	sp_cache_close(c);

	/* At map_max: ENOSPC, and the cache goes on working. */
	dir_for("capped", dir, sizeof(dir));
	if ((c = open_with(dir, key, &capped)) == NULL)
		goto out;
	CHECK_RC(put_str(c, SP_CACHE_T_STATE, "small", "fits"), 0);
	CHECK_RC(sp_cache_put(c, SP_CACHE_T_BODY, "big", 3, big, 4 << 20),
	    ENOSPC);
	CHECK_RC(sp_cache_begin(c, &b), 0);
	CHECK_RC(sp_cache_batch_put(b, SP_CACHE_T_BODY, "big", 3, big,
	    4 << 20), ENOSPC);
	CHECK_RC(sp_cache_batch_put(b, SP_CACHE_T_BODY, "s", 1, "s", 1),
	    ENOSPC);
	CHECK_RC(sp_cache_commit(b), ENOSPC);
	CHECK_RC(put_str(c, SP_CACHE_T_STATE, "after", "enospc"), 0);
	EXPECT(c, SP_CACHE_T_STATE, "small", "fits");
	sp_cache_close(c);
	if ((c = open_with(dir, key, &capped)) == NULL)
		goto out;
	EXPECT(c, SP_CACHE_T_STATE, "after", "enospc");
	CHECK_RC(get_rc(c, SP_CACHE_T_BODY, "s"), ENOENT);
	sp_cache_close(c);
out:
	free(big);
}

/* ---- 8. another process ----------------------------------------------- */

/*
 * Another process grows the map under an open cache (LMDB then answers
 * MDB_MAP_RESIZED, and the cache adopts the new size).  The child opens
 * its own handle; it never touches the one it inherited.
 */
static void
t_resized(void)
{
	struct sp_cache_opts small = { 1 << 20, 0 };
	static uint8_t chunk[8 << 20];
	uint8_t key[SP_CACHE_KEYBYTES], *v;
	char dir[256];
	sp_cache *c, *cc;
	int status;
	size_t n;
	pid_t pid;

	randombytes_buf(key, sizeof(key));
	dir_for("resized", dir, sizeof(dir));
	if ((c = open_with(dir, key, &small)) == NULL)
		return;
	CHECK_RC(put_str(c, SP_CACHE_T_STATE, "parent", "first"), 0);
	if ((pid = fork()) == 0) {
		if (sp_cache_open(dir, key, &small, &cc) != 0 ||
		    sp_cache_put(cc, SP_CACHE_T_BODY, "child", 5, chunk,
		    sizeof(chunk)) != 0)
			_exit(2);
		sp_cache_close(cc);
		_exit(0);
	}
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid &&
	    WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK_RC(sp_cache_get(c, SP_CACHE_T_BODY, "child", 5, &v, &n), 0);
	CHECK(n == sizeof(chunk));
	free(v);
	CHECK_RC(put_str(c, SP_CACHE_T_STATE, "parent", "second"), 0);
	EXPECT(c, SP_CACHE_T_STATE, "parent", "second");
	sp_cache_close(c);
}

/* ---- 9. threads while the map grows ------------------------------------ */

struct reader {
	sp_cache *c;
	atomic_int *stop;
	int bad;
	long reads;
};

static void *
reader_main(void *arg)
{
	struct reader *r = arg;
	uint8_t *v;
	size_t n;

	while (!atomic_load(r->stop)) {
		if (sp_cache_get(r->c, SP_CACHE_T_STATE, "fixed", 5, &v,
		    &n) != 0 || n != 5 || memcmp(v, "value", 5) != 0)
			r->bad++;
		free(v);
		r->reads++;
	}
	return NULL;
}

struct writer {
	sp_cache *c;
	int id, bad;
};

static void *
writer_main(void *arg)
{
	static uint8_t chunk[128 << 10];
	struct writer *w = arg;
	sp_cache_batch *b;
	char k[32];
	int i;

	for (i = 0; i < 30; i++) {
		snprintf(k, sizeof(k), "w%d-%d", w->id, i);
		if (sp_cache_begin(w->c, &b) != 0) {
			w->bad++;
			continue;
		}
		if (sp_cache_batch_put(b, SP_CACHE_T_BODY, k, strlen(k),
		    chunk, sizeof(chunk)) != 0 ||
		    sp_cache_batch_log_put(b, (uint64_t)w->id << 32 | i,
		    k, strlen(k)) != 0) {
			w->bad++;
			sp_cache_abort(b);
			continue;
		}
		w->bad += sp_cache_commit(b) != 0;
	}
	return NULL;
}

static void
t_threads(void)
{
	struct sp_cache_opts small = { 1 << 20, 0 };
	uint8_t key[SP_CACHE_KEYBYTES];
	struct reader r[3];
	struct writer w[2];
	pthread_t rt[3], wt[2];
	atomic_int stop = 0;
	struct count cnt = { 0 };
	char dir[256];
	sp_cache *c;
	int i;

	randombytes_buf(key, sizeof(key));
	dir_for("threads", dir, sizeof(dir));
	if ((c = open_with(dir, key, &small)) == NULL)
		return;
	CHECK_RC(put_str(c, SP_CACHE_T_STATE, "fixed", "value"), 0);
	for (i = 0; i < 3; i++) {
		r[i] = (struct reader){ c, &stop, 0, 0 };
		CHECK(pthread_create(&rt[i], NULL, reader_main, &r[i]) == 0);
	}
	for (i = 0; i < 2; i++) {
		w[i] = (struct writer){ c, i + 1, 0 };
		CHECK(pthread_create(&wt[i], NULL, writer_main, &w[i]) == 0);
	}
	for (i = 0; i < 2; i++) {
		pthread_join(wt[i], NULL);
		CHECK(w[i].bad == 0);
	}
	atomic_store(&stop, 1);
	for (i = 0; i < 3; i++) {
		pthread_join(rt[i], NULL);
		CHECK(r[i].bad == 0 && r[i].reads > 0);
	}
	CHECK_RC(sp_cache_log_each(c, 0, count_fn, &cnt), 0);
	CHECK(cnt.n == 60);
	sp_cache_close(c);
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

int
main(void)
{
	if (sodium_init() < 0 || mkdtemp(base) == NULL ||
	    sp_kdf_params_new(&cheap, 1, 8) != 0) {
		printf("Bail out! setup failed\n");
		return 1;
	}
	RUN(t_tables);
	RUN(t_log);
	RUN(t_batch);
	RUN(t_crash);
	RUN(t_tamper);
	RUN(t_stolen);
	RUN(t_keyfile);
	RUN(t_grow);
	RUN(t_resized);
	RUN(t_threads);
	(void)nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return unit_done();
}
