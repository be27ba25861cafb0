/*
 * The local cache on LMDB: one environment in the cache's directory, three
 * named databases.
 *
 *   meta   "check" -> nonce || AEAD(format u32 BE, AD "sealpost-cache-check")
 *   kv     BLAKE2b-256(hash subkey; table || key) -> nonce || AEAD(value,
 *          AD = that stored key)
 *   log    seq u64 BE -> nonce || AEAD(record, AD = "log" || seq u64 BE)
 *
 * AEAD is XChaCha20-Poly1305 under the encryption subkey with a random
 * 24-byte nonce per write.  The three kinds of AD are 20, 32 and 11 bytes
 * long, so a value of one kind can never authenticate as another.  Even
 * the format number sits inside the check value: no byte of data.mdb that
 * we write is plaintext except the log's sequence numbers.
 *
 * Log keys stay plain because they are not secret (the server assigns them
 * and every device sees them) and because they must sort: a keyed hash
 * would destroy the order that sp_cache_log_each() walks in.
 *
 * Writes go through batches, one LMDB write transaction each; the single
 * put/del/log_put calls are batches of one.  A batch records its writes
 * (already encrypted) so that it can run them again when the map fills up.
 *
 * The map: LMDB needs its size fixed while any transaction of this process
 * is open.  Every transaction therefore holds maplock shared, and whoever
 * found the map full doubles it (up to map_max) holding maplock exclusively,
 * as server/store/store_lmdb.c does.  wmu makes the batches of this process
 * take turns, so that no other batch of ours can commit between a full
 * batch's abort and its replay.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>
#include <sodium.h>

#include "client-core/cache.h"
#include "crypto/bytes.h"

#define MAP_INITIAL_DEFAULT ((uint64_t)64 << 20)
#define MAP_MAX_DEFAULT ((uint64_t)1 << 40)
#define CACHE_FORMAT 1

#define SUBKEY_CTX "sp-cache"
#define SUBKEY_HASH 1
#define SUBKEY_ENC 2

#define NONCEBYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES /* 24 */
#define ABYTES crypto_aead_xchacha20poly1305_ietf_ABYTES        /* 16 */
#define SEALBYTES (NONCEBYTES + ABYTES)
#define HASHBYTES 32
#define SEQBYTES 8
#define CHECK_NAME "check"
#define CHECK_AD "sealpost-cache-check"
#define LOG_AD "log"
#define LOG_ADBYTES (sizeof(LOG_AD) - 1 + SEQBYTES)

/* What one read transaction of sp_cache_log_each() decrypts. */
#define PAGE_ITEMS 64
#define PAGE_BYTES ((size_t)4 << 20)

/* DIR/cache.key: magic | version | kdf params | nonce | wrapped key. */
#define KEYFILE "cache.key"
#define KF_MAGIC "SPCK"
#define KF_VERSION 1
#define KF_HDRBYTES (4 + 1 + SP_KDF_PARAMSBYTES)
#define KF_BYTES (KF_HDRBYTES + NONCEBYTES + SP_CACHE_KEYBYTES + ABYTES)
#define WRAP_CTX "sp-cwrap"
#define WRAP_ID 1

struct subkeys {
	uint8_t hash[crypto_generichash_KEYBYTES];
	uint8_t enc[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
};

struct sp_cache {
	MDB_env *env;
	MDB_dbi meta, kv, log;
	struct subkeys *k; /* sodium_malloc'd, read-only once derived */
	uint64_t map_max;
	/* Shared by every transaction, exclusive to change the map size;
	 * map_size and broken change only under it exclusively. */
	pthread_rwlock_t maplock;
	uint64_t map_size;
	int broken; /* a remap failed: LMDB has no map any more */
	pthread_mutex_t wmu; /* held by the open batch of this process */
};

/* One write of a batch, kept for a replay: stored key, then value. */
struct op {
	struct op *next;
	MDB_dbi dbi;
	int del;
	size_t klen, vlen;
	uint8_t b[];
};

struct sp_cache_batch {
	sp_cache *c;
	MDB_txn *txn;    /* NULL between attempts; else maplock is held */
	uint64_t seen;   /* map size when txn began */
	size_t txnid;    /* of the first attempt */
	int did_read;
	int err;         /* sticky: the batch failed */
	struct op *head, **tailp;
};

/* ---- bytes and errors -------------------------------------------------- */

/*
 * MDB_val has no const member.  LMDB only reads through the pointers of
 * keys and of data being put, so dropping const here is safe.
 */
static MDB_val
mv(const void *p, size_t n)
{
	MDB_val v;

	v.mv_size = n;
	v.mv_data = (void *)(uintptr_t)p;
	return v;
}

/* LMDB's codes become errno values or ours here, and nowhere else. */
static int
err_map(int rc)
{
	switch (rc) {
	case MDB_SUCCESS:
		return 0;
	case MDB_NOTFOUND:
		return ENOENT;
	case MDB_KEYEXIST:
		return EEXIST;
	case MDB_MAP_FULL:
		return ENOSPC;
	case MDB_TXN_FULL:
		return E2BIG; /* one batch dirties too many pages */
	case MDB_READERS_FULL:
		return EAGAIN;
	case MDB_VERSION_MISMATCH:
		return SP_EVERSION;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
		return SP_EFORMAT;
	}
	if (rc >= MDB_KEYEXIST && rc <= MDB_LAST_ERRCODE)
		return EIO;
	return rc;
}

static int
key_args(uint8_t table, const void *key, size_t klen)
{
	if (table == 0 || (key == NULL && klen > 0))
		return SP_EINVAL;
	return klen > SP_CACHE_KEY_MAX ? SP_ELIMIT : 0;
}

static int
val_args(const void *val, size_t vlen)
{
	if (val == NULL && vlen > 0)
		return SP_EINVAL;
	return vlen > SP_CACHE_VALUE_MAX ? SP_ELIMIT : 0;
}

static int
out_args(uint8_t **p_r, size_t *len_r)
{
	if (p_r == NULL || len_r == NULL)
		return SP_EINVAL;
	*p_r = NULL;
	*len_r = 0;
	return 0;
}

/* ---- sealing ----------------------------------------------------------- */

static void
kv_key(const sp_cache *c, uint8_t table, const void *key, size_t klen,
    uint8_t out[HASHBYTES])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, c->k->hash, sizeof(c->k->hash),
	    HASHBYTES);
	crypto_generichash_update(&st, &table, 1);
	if (klen > 0)
		crypto_generichash_update(&st, key, klen);
	crypto_generichash_final(&st, out, HASHBYTES);
	sodium_memzero(&st, sizeof(st)); /* it held the hash subkey */
}

static void
log_ad(uint64_t seq, uint8_t ad[LOG_ADBYTES])
{
	memcpy(ad, LOG_AD, sizeof(LOG_AD) - 1);
	sp_put_be64(ad + sizeof(LOG_AD) - 1, seq);
}

/* Writes nonce || ciphertext, SEALBYTES + mlen bytes, to out. */
static int
seal(const sp_cache *c, const void *ad, size_t adlen, const void *m,
    size_t mlen, uint8_t *out)
{
	randombytes_buf(out, NONCEBYTES);
	if (crypto_aead_xchacha20poly1305_ietf_encrypt(out + NONCEBYTES, NULL,
	    mlen > 0 ? m : (const void *)"", mlen, ad, adlen, NULL, out,
	    c->k->enc) != 0)
		return SP_ECRYPTO;
	return 0;
}

/*
 * Decrypts a stored value into a fresh malloc'd buffer.  v may point into
 * the map: the single copy out of it is the decryption itself.
 */
static int
unseal(const sp_cache *c, const void *ad, size_t adlen, const MDB_val *v,
    uint8_t **m_r, size_t *mlen_r)
{
	const uint8_t *s = v->mv_data;
	size_t mlen;
	uint8_t *m;

	if (v->mv_size < SEALBYTES ||
	    v->mv_size - SEALBYTES > SP_CACHE_VALUE_MAX)
		return SP_EFORMAT;
	mlen = v->mv_size - SEALBYTES;
	if ((m = malloc(mlen > 0 ? mlen : 1)) == NULL)
		return ENOMEM;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(m, NULL, NULL,
	    s + NONCEBYTES, v->mv_size - NONCEBYTES, ad, adlen, s,
	    c->k->enc) != 0) {
		sodium_memzero(m, mlen);
		free(m);
		return SP_EAUTH;
	}
	*m_r = m;
	*mlen_r = mlen;
	return 0;
}

/* ---- the map and transactions ------------------------------------------ */

/* Called with maplock held exclusively. */
static int
map_apply(sp_cache *c, uint64_t size)
{
	MDB_envinfo info;
	int rc;

	if (c->broken)
		return EIO;
	if ((rc = mdb_env_set_mapsize(c->env, (size_t)size)) != 0) {
		/* Past the unmap LMDB has no map left to fall back on. */
		if (rc != EINVAL)
			c->broken = 1;
		return rc;
	}
	(void)mdb_env_info(c->env, &info);
	c->map_size = info.me_mapsize;
	return 0;
}

/* Adopts the size another process grew the map to. */
static int
map_adopt(sp_cache *c)
{
	int rc;

	pthread_rwlock_wrlock(&c->maplock);
	rc = map_apply(c, 0);
	pthread_rwlock_unlock(&c->maplock);
	return rc;
}

/*
 * Doubles the map after a transaction found it full at size seen.  If
 * someone changed it meanwhile, the caller just tries again.  ENOSPC at
 * map_max.
 */
static int
map_grow(sp_cache *c, uint64_t seen)
{
	uint64_t want;
	int rc = 0;

	pthread_rwlock_wrlock(&c->maplock);
	if (c->map_size != seen)
		goto out_unlock;
	if (seen >= c->map_max) {
		rc = ENOSPC;
		goto out_unlock;
	}
	want = seen > c->map_max / 2 ? c->map_max : seen * 2;
	rc = map_apply(c, want);
out_unlock:
	pthread_rwlock_unlock(&c->maplock);
	return rc;
}

/*
 * Begins a transaction holding maplock shared; the caller ends it with
 * txn_end() or commits it and unlocks.  Returns LMDB codes.
 */
static int
txn_begin(sp_cache *c, unsigned flags, MDB_txn **txn_r)
{
	int rc;

	for (;;) {
		pthread_rwlock_rdlock(&c->maplock);
		rc = c->broken ? EIO :
		    mdb_txn_begin(c->env, NULL, flags, txn_r);
		if (rc == 0)
			return 0;
		pthread_rwlock_unlock(&c->maplock);
		if (rc != MDB_MAP_RESIZED)
			return rc;
		if ((rc = map_adopt(c)) != 0)
			return rc;
	}
}

static void
txn_end(sp_cache *c, MDB_txn *txn)
{
	mdb_txn_abort(txn);
	pthread_rwlock_unlock(&c->maplock);
}

/* Looks up k in dbi and decrypts what it finds against ad. */
static int
get_in(const sp_cache *c, MDB_txn *txn, MDB_dbi dbi, const void *k,
    size_t klen, const void *ad, size_t adlen, uint8_t **val_r,
    size_t *vlen_r)
{
	MDB_val key = mv(k, klen), v;
	int rc;

	if ((rc = mdb_get(txn, dbi, &key, &v)) != 0)
		return rc;
	return unseal(c, ad, adlen, &v, val_r, vlen_r);
}

/* ---- opening ----------------------------------------------------------- */

static int
opts_apply(sp_cache *c, const struct sp_cache_opts *o)
{
	c->map_size = o && o->map_initial ? o->map_initial :
	    MAP_INITIAL_DEFAULT;
	c->map_max = o && o->map_max ? o->map_max : MAP_MAX_DEFAULT;
	if (c->map_size > c->map_max || c->map_max > SIZE_MAX)
		return SP_EINVAL;
	return 0;
}

static int
subkeys_derive(sp_cache *c, const uint8_t key[SP_CACHE_KEYBYTES])
{
	if ((c->k = sodium_malloc(sizeof(*c->k))) == NULL)
		return SP_ENOMEM;
	if (crypto_kdf_derive_from_key(c->k->hash, sizeof(c->k->hash),
	    SUBKEY_HASH, SUBKEY_CTX, key) != 0 ||
	    crypto_kdf_derive_from_key(c->k->enc, sizeof(c->k->enc),
	    SUBKEY_ENC, SUBKEY_CTX, key) != 0) {
		sodium_free(c->k);
		c->k = NULL;
		return SP_ECRYPTO;
	}
	/* A stray write through a bad pointer faults instead of
	 * silently changing the keys. */
	(void)sodium_mprotect_readonly(c->k);
	return 0;
}

static int
locks_init(sp_cache *c)
{
	int rc;

	if ((rc = pthread_rwlock_init(&c->maplock, NULL)) != 0)
		return rc;
	if ((rc = pthread_mutex_init(&c->wmu, NULL)) != 0)
		pthread_rwlock_destroy(&c->maplock);
	return rc;
}

static void
locks_destroy(sp_cache *c)
{
	pthread_mutex_destroy(&c->wmu);
	pthread_rwlock_destroy(&c->maplock);
}

static int
env_open(sp_cache *c, const char *dir)
{
	MDB_envinfo info;
	int rc, dead;

	/*
	 * MDB_NOTLS: read transactions are not tied to a thread, so a thread
	 * with a batch open may still read.  No MDB_NOSYNC: commits are
	 * durable.  No MDB_NOMEMINIT: LMDB zeroes the unused parts of pages
	 * it writes, which would otherwise carry leftover heap memory of
	 * this process (plaintext a caller freed) into data.mdb.
	 */
	if ((rc = mdb_env_create(&c->env)) != 0)
		return rc;
	if ((rc = mdb_env_set_maxdbs(c->env, 3)) != 0 ||
	    (rc = mdb_env_set_mapsize(c->env, (size_t)c->map_size)) != 0 ||
	    (rc = mdb_env_open(c->env, dir, MDB_NOTLS, 0600)) != 0)
		goto out_env;
	/* Free the reader slots of processes that died holding them. */
	(void)mdb_reader_check(c->env, &dead);
	(void)mdb_env_info(c->env, &info);
	c->map_size = info.me_mapsize;
	return 0;
out_env:
	mdb_env_close(c->env);
	return rc;
}

/*
 * A new cache gets a check value; an existing one must open with the key
 * that wrote it.  Without this a wrong key would find nothing under its
 * hashed keys, the cache would look empty, and a sync engine would start
 * to refill it under the wrong key.
 */
static int
check_key(sp_cache *c, MDB_txn *txn)
{
	uint8_t fmt[4], sealed[SEALBYTES + sizeof(fmt)], *p = NULL;
	MDB_val k = mv(CHECK_NAME, sizeof(CHECK_NAME) - 1), v;
	MDB_stat kv, log;
	size_t len;
	int rc;

	rc = get_in(c, txn, c->meta, CHECK_NAME, sizeof(CHECK_NAME) - 1,
	    CHECK_AD, sizeof(CHECK_AD) - 1, &p, &len);
	if (rc == 0) {
		rc = len != sizeof(fmt) ? SP_EFORMAT :
		    sp_get_be32(p) != CACHE_FORMAT ? SP_EVERSION : 0;
		free(p);
		return rc;
	}
	if (rc != MDB_NOTFOUND)
		return rc;
	/* Data without a check value was not written by this code. */
	if ((rc = mdb_stat(txn, c->kv, &kv)) != 0 ||
	    (rc = mdb_stat(txn, c->log, &log)) != 0)
		return rc;
	if (kv.ms_entries > 0 || log.ms_entries > 0)
		return SP_EFORMAT;
	sp_put_be32(fmt, CACHE_FORMAT);
	if ((rc = seal(c, CHECK_AD, sizeof(CHECK_AD) - 1, fmt, sizeof(fmt),
	    sealed)) != 0)
		return rc;
	v = mv(sealed, sizeof(sealed));
	return mdb_put(txn, c->meta, &k, &v, 0);
}

static int
dbs_open(sp_cache *c)
{
	MDB_txn *txn;
	int rc;

	if ((rc = txn_begin(c, 0, &txn)) != 0)
		return rc;
	if ((rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &c->meta)) == 0 &&
	    (rc = mdb_dbi_open(txn, "kv", MDB_CREATE, &c->kv)) == 0 &&
	    (rc = mdb_dbi_open(txn, "log", MDB_CREATE, &c->log)) == 0)
		rc = check_key(c, txn);
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	pthread_rwlock_unlock(&c->maplock);
	return rc;
}

int
sp_cache_open(const char *dir, const uint8_t key[SP_CACHE_KEYBYTES],
    const struct sp_cache_opts *o, sp_cache **c_r)
{
	sp_cache *c;
	int rc;

	if (c_r == NULL)
		return SP_EINVAL;
	*c_r = NULL;
	if (dir == NULL || key == NULL)
		return SP_EINVAL;
	if (sodium_init() < 0)
		return SP_ECRYPTO;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return ENOMEM;
	if ((rc = opts_apply(c, o)) != 0 ||
	    (rc = subkeys_derive(c, key)) != 0)
		goto out_free;
	if ((rc = locks_init(c)) != 0)
		goto out_keys;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		rc = errno;
		goto out_locks;
	}
	if ((rc = env_open(c, dir)) != 0)
		goto out_locks;
	if ((rc = dbs_open(c)) != 0)
		goto out_env;
	*c_r = c;
	return 0;
out_env:
	mdb_env_close(c->env);
out_locks:
	locks_destroy(c);
out_keys:
	sodium_free(c->k);
out_free:
	free(c);
	return err_map(rc);
}

void
sp_cache_close(sp_cache *c)
{
	if (c == NULL)
		return;
	mdb_env_close(c->env);
	locks_destroy(c);
	sodium_free(c->k);
	free(c);
}

/* ---- batches ----------------------------------------------------------- */

static int
batch_txn(sp_cache_batch *b)
{
	int rc;

	if ((rc = txn_begin(b->c, 0, &b->txn)) != 0) {
		b->txn = NULL;
		return rc;
	}
	b->seen = b->c->map_size;
	return 0;
}

static void
batch_txn_drop(sp_cache_batch *b)
{
	if (b->txn == NULL)
		return;
	mdb_txn_abort(b->txn);
	b->txn = NULL;
	pthread_rwlock_unlock(&b->c->maplock);
}

static void
batch_fail(sp_cache_batch *b, int err)
{
	b->err = err;
	batch_txn_drop(b);
}

static void
batch_free(sp_cache_batch *b)
{
	struct op *op, *next;

	batch_txn_drop(b);
	for (op = b->head; op != NULL; op = next) {
		next = op->next;
		free(op); /* ciphertext and hashed keys only: no wipe */
	}
	pthread_mutex_unlock(&b->c->wmu);
	free(b);
}

static struct op *
op_new(MDB_dbi dbi, size_t klen, size_t vlen)
{
	struct op *op;

	if ((op = malloc(sizeof(*op) + klen + vlen)) == NULL)
		return NULL;
	op->next = NULL;
	op->dbi = dbi;
	op->del = 0;
	op->klen = klen;
	op->vlen = vlen;
	return op;
}

static int
op_run(sp_cache_batch *b, const struct op *op)
{
	MDB_val k = mv(op->b, op->klen), v = mv(op->b + op->klen, op->vlen);

	if (op->del)
		return mdb_del(b->txn, op->dbi, &k, NULL);
	return mdb_put(b->txn, op->dbi, &k, &v, 0);
}

/*
 * The map was full: grows it and runs every recorded write again in a new
 * transaction, until they fit or the map is at map_max (ENOSPC).  Returns
 * with a transaction open on success.
 */
static int
batch_regrow(sp_cache_batch *b)
{
	const struct op *op;
	int rc;

	for (;;) {
		batch_txn_drop(b);
		if ((rc = map_grow(b->c, b->seen)) != 0 ||
		    (rc = batch_txn(b)) != 0)
			return rc;
		/* Another process committed since the batch read. */
		if (b->did_read && mdb_txn_id(b->txn) != b->txnid)
			return EAGAIN;
		for (op = b->head, rc = 0; op != NULL && rc == 0;
		    op = op->next) {
			rc = op_run(b, op);
			if (rc == MDB_NOTFOUND && op->del)
				rc = 0;
		}
		if (rc != MDB_MAP_FULL)
			return rc;
	}
}

/* Runs op in the batch and keeps it for a replay; takes op. */
static int
batch_exec(sp_cache_batch *b, struct op *op)
{
	int rc;

	if (b->err != 0) {
		free(op);
		return b->err;
	}
	rc = op_run(b, op);
	if (rc == MDB_NOTFOUND && op->del) {
		free(op); /* changed nothing, and the batch goes on */
		return ENOENT;
	}
	if (rc == 0 || rc == MDB_MAP_FULL) {
		*b->tailp = op;
		b->tailp = &op->next;
	} else {
		free(op);
	}
	if (rc == MDB_MAP_FULL)
		rc = batch_regrow(b);
	if (rc != 0) {
		/* LMDB's transaction is unusable after a failed write. */
		batch_fail(b, err_map(rc));
		return b->err;
	}
	return 0;
}

int
sp_cache_begin(sp_cache *c, sp_cache_batch **b_r)
{
	sp_cache_batch *b;
	int rc;

	if (b_r == NULL)
		return SP_EINVAL;
	*b_r = NULL;
	if (c == NULL)
		return SP_EINVAL;
	if ((b = calloc(1, sizeof(*b))) == NULL)
		return ENOMEM;
	b->c = c;
	b->tailp = &b->head;
	pthread_mutex_lock(&c->wmu);
	if ((rc = batch_txn(b)) != 0) {
		pthread_mutex_unlock(&c->wmu);
		free(b);
		return err_map(rc);
	}
	b->txnid = mdb_txn_id(b->txn);
	*b_r = b;
	return 0;
}

int
sp_cache_batch_put(sp_cache_batch *b, uint8_t table, const void *key,
    size_t klen, const void *val, size_t vlen)
{
	struct op *op;
	int rc;

	if (b == NULL)
		return SP_EINVAL;
	if ((rc = key_args(table, key, klen)) != 0 ||
	    (rc = val_args(val, vlen)) != 0)
		return rc;
	if ((op = op_new(b->c->kv, HASHBYTES, SEALBYTES + vlen)) == NULL)
		return ENOMEM;
	kv_key(b->c, table, key, klen, op->b);
	if ((rc = seal(b->c, op->b, HASHBYTES, val, vlen,
	    op->b + HASHBYTES)) != 0) {
		free(op);
		return rc;
	}
	return batch_exec(b, op);
}

int
sp_cache_batch_get(sp_cache_batch *b, uint8_t table, const void *key,
    size_t klen, uint8_t **val_r, size_t *vlen_r)
{
	uint8_t sk[HASHBYTES];
	int rc;

	if ((rc = out_args(val_r, vlen_r)) != 0)
		return rc;
	if (b == NULL)
		return SP_EINVAL;
	if ((rc = key_args(table, key, klen)) != 0)
		return rc;
	if (b->err != 0)
		return b->err;
	kv_key(b->c, table, key, klen, sk);
	b->did_read = 1; /* absence, too, is something the caller saw */
	rc = get_in(b->c, b->txn, b->c->kv, sk, sizeof(sk), sk, sizeof(sk),
	    val_r, vlen_r);
	return err_map(rc);
}

int
sp_cache_batch_del(sp_cache_batch *b, uint8_t table, const void *key,
    size_t klen)
{
	struct op *op;
	int rc;

	if (b == NULL)
		return SP_EINVAL;
	if ((rc = key_args(table, key, klen)) != 0)
		return rc;
	if ((op = op_new(b->c->kv, HASHBYTES, 0)) == NULL)
		return ENOMEM;
	op->del = 1;
	kv_key(b->c, table, key, klen, op->b);
	return batch_exec(b, op);
}

int
sp_cache_batch_log_put(sp_cache_batch *b, uint64_t seq, const void *rec,
    size_t len)
{
	uint8_t ad[LOG_ADBYTES];
	struct op *op;
	int rc;

	if (b == NULL)
		return SP_EINVAL;
	if ((rc = val_args(rec, len)) != 0)
		return rc;
	if ((op = op_new(b->c->log, SEQBYTES, SEALBYTES + len)) == NULL)
		return ENOMEM;
	sp_put_be64(op->b, seq);
	log_ad(seq, ad);
	if ((rc = seal(b->c, ad, sizeof(ad), rec, len,
	    op->b + SEQBYTES)) != 0) {
		free(op);
		return rc;
	}
	return batch_exec(b, op);
}

int
sp_cache_commit(sp_cache_batch *b)
{
	int rc;

	if (b == NULL)
		return SP_EINVAL;
	rc = b->err;
	while (rc == 0) {
		/* LMDB frees the transaction whatever the outcome. */
		rc = mdb_txn_commit(b->txn);
		b->txn = NULL;
		pthread_rwlock_unlock(&b->c->maplock);
		if (rc != MDB_MAP_FULL)
			break;
		rc = batch_regrow(b); /* 0: commit the replay */
	}
	rc = err_map(rc);
	batch_free(b);
	return rc;
}

void
sp_cache_abort(sp_cache_batch *b)
{
	if (b != NULL)
		batch_free(b);
}

/* ---- single writes and reads ------------------------------------------- */

int
sp_cache_put(sp_cache *c, uint8_t table, const void *key, size_t klen,
    const void *val, size_t vlen)
{
	sp_cache_batch *b;
	int rc;

	if ((rc = key_args(table, key, klen)) != 0 ||
	    (rc = val_args(val, vlen)) != 0 ||
	    (rc = sp_cache_begin(c, &b)) != 0)
		return rc;
	if ((rc = sp_cache_batch_put(b, table, key, klen, val, vlen)) != 0) {
		sp_cache_abort(b);
		return rc;
	}
	return sp_cache_commit(b);
}

int
sp_cache_del(sp_cache *c, uint8_t table, const void *key, size_t klen)
{
	sp_cache_batch *b;
	int rc;

	if ((rc = key_args(table, key, klen)) != 0 ||
	    (rc = sp_cache_begin(c, &b)) != 0)
		return rc;
	if ((rc = sp_cache_batch_del(b, table, key, klen)) != 0) {
		sp_cache_abort(b);
		return rc;
	}
	return sp_cache_commit(b);
}

int
sp_cache_log_put(sp_cache *c, uint64_t seq, const void *rec, size_t len)
{
	sp_cache_batch *b;
	int rc;

	if ((rc = val_args(rec, len)) != 0 ||
	    (rc = sp_cache_begin(c, &b)) != 0)
		return rc;
	if ((rc = sp_cache_batch_log_put(b, seq, rec, len)) != 0) {
		sp_cache_abort(b);
		return rc;
	}
	return sp_cache_commit(b);
}

int
sp_cache_get(sp_cache *c, uint8_t table, const void *key, size_t klen,
    uint8_t **val_r, size_t *vlen_r)
{
	uint8_t sk[HASHBYTES];
	MDB_txn *txn;
	int rc;

	if ((rc = out_args(val_r, vlen_r)) != 0)
		return rc;
	if (c == NULL)
		return SP_EINVAL;
	if ((rc = key_args(table, key, klen)) != 0)
		return rc;
	kv_key(c, table, key, klen, sk);
	if ((rc = txn_begin(c, MDB_RDONLY, &txn)) != 0)
		return err_map(rc);
	rc = get_in(c, txn, c->kv, sk, sizeof(sk), sk, sizeof(sk), val_r,
	    vlen_r);
	txn_end(c, txn);
	return err_map(rc);
}

int
sp_cache_has(sp_cache *c, uint8_t table, const void *key, size_t klen)
{
	uint8_t sk[HASHBYTES];
	MDB_val k, v;
	MDB_txn *txn;
	int rc;

	if (c == NULL)
		return SP_EINVAL;
	if ((rc = key_args(table, key, klen)) != 0)
		return rc;
	kv_key(c, table, key, klen, sk);
	k = mv(sk, sizeof(sk));
	if ((rc = txn_begin(c, MDB_RDONLY, &txn)) != 0)
		return err_map(rc);
	rc = mdb_get(txn, c->kv, &k, &v);
	txn_end(c, txn);
	return err_map(rc);
}

int
sp_cache_log_get(sp_cache *c, uint64_t seq, uint8_t **rec_r, size_t *len_r)
{
	uint8_t k[SEQBYTES], ad[LOG_ADBYTES];
	MDB_txn *txn;
	int rc;

	if ((rc = out_args(rec_r, len_r)) != 0)
		return rc;
	if (c == NULL)
		return SP_EINVAL;
	sp_put_be64(k, seq);
	log_ad(seq, ad);
	if ((rc = txn_begin(c, MDB_RDONLY, &txn)) != 0)
		return err_map(rc);
	rc = get_in(c, txn, c->log, k, sizeof(k), ad, sizeof(ad), rec_r,
	    len_r);
	txn_end(c, txn);
	return err_map(rc);
}

struct rec {
	uint64_t seq;
	uint8_t *p;
	size_t len;
};

/*
 * Decrypts up to a page of log records from seq from on into recs; *n_r
 * says how many, *more_r whether records remain after them.  On an error
 * the records before it are still returned.
 */
static int
log_page(sp_cache *c, uint64_t from, struct rec recs[PAGE_ITEMS],
    size_t *n_r, int *more_r)
{
	uint8_t kb[SEQBYTES], ad[LOG_ADBYTES];
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_val k, v;
	size_t n = 0, bytes = 0;
	int rc;

	*n_r = 0;
	*more_r = 0;
	if ((rc = txn_begin(c, MDB_RDONLY, &txn)) != 0)
		return rc;
	if ((rc = mdb_cursor_open(txn, c->log, &cur)) != 0)
		goto out_txn;
	sp_put_be64(kb, from);
	k = mv(kb, sizeof(kb));
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (n == PAGE_ITEMS || bytes >= PAGE_BYTES) {
			*more_r = 1;
			break;
		}
		if (k.mv_size != SEQBYTES) {
			rc = SP_EFORMAT;
			break;
		}
		recs[n].seq = sp_get_be64(k.mv_data);
		log_ad(recs[n].seq, ad);
		if ((rc = unseal(c, ad, sizeof(ad), &v, &recs[n].p,
		    &recs[n].len)) != 0)
			break;
		bytes += recs[n++].len;
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
	mdb_cursor_close(cur);
out_txn:
	txn_end(c, txn);
	*n_r = n;
	return rc;
}

int
sp_cache_log_each(sp_cache *c, uint64_t from_seq, sp_cache_log_fn fn,
    void *arg)
{
	struct rec recs[PAGE_ITEMS];
	size_t i, n;
	int more, rc, stop = 0;

	if (c == NULL || fn == NULL)
		return SP_EINVAL;
	do {
		rc = log_page(c, from_seq, recs, &n, &more);
		for (i = 0; i < n; i++) {
			if (stop == 0)
				stop = fn(arg, recs[i].seq, recs[i].p,
				    recs[i].len);
			sodium_memzero(recs[i].p, recs[i].len);
			free(recs[i].p);
		}
		if (stop != 0)
			return stop;
		if (rc != 0)
			return err_map(rc);
		if (n > 0 && recs[n - 1].seq == UINT64_MAX)
			break;
		if (n > 0)
			from_seq = recs[n - 1].seq + 1;
	} while (more);
	return 0;
}

/* ---- the local key ------------------------------------------------------
 *
 * Where the desktop keyring plugs in: a libsecret-backed pair of calls
 * beside these three would keep the same 32 bytes in the Secret Service
 * (attributes naming sealpost and the account) and hand them to
 * sp_cache_open(); cache.key then stays as the fallback for machines
 * without a keyring.  Nothing in the cache itself changes.
 */

static int
path_join(const char *dir, const char *name, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= size ? ENAMETOOLONG : 0;
}

/*
 * The wrapping key: Argon2id through crypto/kdf.h (its range checks, its
 * ENOMEM mapping), then a subkey of what kdf.h calls the vault key under a
 * context of our own, so that a wrapping key can never equal an account's
 * vault key, even for one password and one salt.
 */
static int
wrap_key(const char *pw, size_t pwlen, const struct sp_kdf_params *p,
    uint8_t wk[SP_CACHE_KEYBYTES])
{
	struct sp_login_keys *lk;
	int rc;

	if ((rc = sp_kdf_derive(pw, pwlen, p, &lk)) != 0)
		return rc;
	rc = crypto_kdf_derive_from_key(wk, SP_CACHE_KEYBYTES, WRAP_ID,
	    WRAP_CTX, lk->vault_key) != 0 ? SP_ECRYPTO : 0;
	sp_login_keys_free(lk);
	return rc;
}

static int
kf_seal(const uint8_t *key, const char *pw, size_t pwlen,
    const struct sp_kdf_params *p, uint8_t out[KF_BYTES])
{
	uint8_t *wk;
	int rc;

	if ((wk = sodium_malloc(SP_CACHE_KEYBYTES)) == NULL)
		return SP_ENOMEM;
	memcpy(out, KF_MAGIC, 4);
	out[4] = KF_VERSION;
	sp_kdf_params_encode(p, out + 5);
	randombytes_buf(out + KF_HDRBYTES, NONCEBYTES);
	if ((rc = wrap_key(pw, pwlen, p, wk)) == 0 &&
	    crypto_aead_xchacha20poly1305_ietf_encrypt(
	    out + KF_HDRBYTES + NONCEBYTES, NULL, key, SP_CACHE_KEYBYTES,
	    out, KF_HDRBYTES, NULL, out + KF_HDRBYTES, wk) != 0)
		rc = SP_ECRYPTO;
	sodium_free(wk);
	return rc;
}

/* Checks the file's shape, then unwraps; *p_r receives its parameters. */
static int
kf_open(const uint8_t *buf, size_t len, const char *pw, size_t pwlen,
    struct sp_kdf_params *p_r, uint8_t **key_r)
{
	uint8_t *wk = NULL, *key = NULL;
	int rc;

	if (len < 5)
		return SP_ETRUNC;
	if (memcmp(buf, KF_MAGIC, 4) != 0)
		return SP_EFORMAT;
	if (buf[4] != KF_VERSION)
		return SP_EVERSION;
	if (len != KF_BYTES)
		return SP_ETRUNC;
	if ((rc = sp_kdf_params_decode(buf + 5, p_r)) != 0)
		return rc;
	rc = SP_ENOMEM;
	if ((wk = sodium_malloc(SP_CACHE_KEYBYTES)) == NULL ||
	    (key = sodium_malloc(SP_CACHE_KEYBYTES)) == NULL)
		goto out;
	if ((rc = wrap_key(pw, pwlen, p_r, wk)) != 0)
		goto out;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(key, NULL, NULL,
	    buf + KF_HDRBYTES + NONCEBYTES, SP_CACHE_KEYBYTES + ABYTES,
	    buf, KF_HDRBYTES, buf + KF_HDRBYTES, wk) != 0) {
		rc = SP_EAUTH;
		goto out;
	}
	*key_r = key;
	key = NULL;
	rc = 0;
out:
	sodium_free(key);
	sodium_free(wk);
	return rc;
}

/* Reads up to one byte more than a key file holds, to see a longer one. */
static int
kf_read(const char *dir, uint8_t buf[KF_BYTES + 1], size_t *len_r)
{
	char path[PATH_MAX];
	size_t len = 0;
	ssize_t n;
	int fd, rc;

	if ((rc = path_join(dir, KEYFILE, path, sizeof(path))) != 0)
		return rc;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno;
	while (len < KF_BYTES + 1) {
		n = read(fd, buf + len, KF_BYTES + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	(void)close(fd);
	*len_r = len;
	return rc;
}

static int
write_all(int fd, const uint8_t *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, p, len)) < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
dir_sync(const char *dir)
{
	int fd, rc = 0;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return errno;
	if (fsync(fd) != 0)
		rc = errno;
	(void)close(fd);
	return rc;
}

/*
 * Writes a complete key file under a temporary name (0600: mkostemp), then
 * gives it its name atomically: link() when it must not replace a key file
 * (EEXIST), rename() when it replaces one.  A crash leaves the old file or
 * the new one, never a torn one.
 */
static int
kf_write(const char *dir, const uint8_t buf[KF_BYTES], int replace)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	int fd, rc;

	if ((rc = path_join(dir, KEYFILE, path, sizeof(path))) != 0 ||
	    (rc = path_join(dir, KEYFILE ".XXXXXX", tmp, sizeof(tmp))) != 0)
		return rc;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return errno;
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0)
		return errno;
	rc = write_all(fd, buf, KF_BYTES);
	if (rc == 0 && fsync(fd) != 0)
		rc = errno;
	if (close(fd) != 0 && rc == 0)
		rc = errno;
	if (rc != 0)
		goto out_unlink;
	if (replace) {
		if (rename(tmp, path) != 0) {
			rc = errno;
			goto out_unlink;
		}
	} else {
		if (link(tmp, path) != 0)
			rc = errno;
		(void)unlink(tmp);
		if (rc != 0)
			return rc;
	}
	return dir_sync(dir);
out_unlink:
	(void)unlink(tmp);
	return rc;
}

int
sp_cache_key_create(const char *dir, const char *password,
    size_t password_len, const struct sp_kdf_params *p, uint8_t **key_r)
{
	struct sp_kdf_params dp;
	uint8_t buf[KF_BYTES], *key;
	char path[PATH_MAX];
	int rc;

	if (key_r == NULL)
		return SP_EINVAL;
	*key_r = NULL;
	if (dir == NULL || password == NULL)
		return SP_EINVAL;
	if (sodium_init() < 0)
		return SP_ECRYPTO;
	/* Spare the Argon2id run when the answer is EEXIST anyway; link()
	 * still decides in the end. */
	if ((rc = path_join(dir, KEYFILE, path, sizeof(path))) != 0)
		return rc;
	if (access(path, F_OK) == 0)
		return EEXIST;
	if (p == NULL) {
		if ((rc = sp_kdf_params_new(&dp, 0, 0)) != 0)
			return rc;
		p = &dp;
	}
	if ((key = sodium_malloc(SP_CACHE_KEYBYTES)) == NULL)
		return SP_ENOMEM;
	randombytes_buf(key, SP_CACHE_KEYBYTES);
	if ((rc = kf_seal(key, password, password_len, p, buf)) != 0 ||
	    (rc = kf_write(dir, buf, 0)) != 0) {
		sodium_free(key);
		return rc;
	}
	*key_r = key;
	return 0;
}

int
sp_cache_key_open(const char *dir, const char *password,
    size_t password_len, uint8_t **key_r)
{
	struct sp_kdf_params p;
	uint8_t buf[KF_BYTES + 1];
	size_t len;
	int rc;

	if (key_r == NULL)
		return SP_EINVAL;
	*key_r = NULL;
	if (dir == NULL || password == NULL)
		return SP_EINVAL;
	if (sodium_init() < 0)
		return SP_ECRYPTO;
	if ((rc = kf_read(dir, buf, &len)) != 0)
		return rc;
	return kf_open(buf, len, password, password_len, &p, key_r);
}

int
sp_cache_key_rewrap(const char *dir, const char *old_password,
    size_t old_len, const char *new_password, size_t new_len,
    const struct sp_kdf_params *p)
{
	struct sp_kdf_params op, np;
	uint8_t buf[KF_BYTES + 1], *key = NULL;
	size_t len;
	int rc;

	if (dir == NULL || old_password == NULL || new_password == NULL)
		return SP_EINVAL;
	if (sodium_init() < 0)
		return SP_ECRYPTO;
	if ((rc = kf_read(dir, buf, &len)) != 0 ||
	    (rc = kf_open(buf, len, old_password, old_len, &op, &key)) != 0)
		return rc;
	if (p == NULL) {
		/* Same cost, fresh salt. */
		if ((rc = sp_kdf_params_new(&np, op.opslimit,
		    op.mem_kib)) != 0)
			goto out;
		p = &np;
	}
	if ((rc = kf_seal(key, new_password, new_len, p, buf)) == 0)
		rc = kf_write(dir, buf, 1);
out:
	sodium_free(key);
	return rc;
}
