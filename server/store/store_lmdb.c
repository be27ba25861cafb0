/*
 * The store on LMDB: one environment in the store's directory, one named
 * database per kind of record.  Integers in keys and values are big-endian
 * so that keys sort numerically.
 *
 *   meta       "format" -> u32, "next_acct" -> u64, "blobs" -> u64
 *   accounts   address -> account record (acct_encode: 94 bytes)
 *   vaults     address -> vault
 *   pubkeys    address -> key set
 *   log        acct id || seq -> record
 *   logmeta    acct id -> last seq
 *   blobs      blob id || chunk index -> chunk
 *   blobmeta   blob id -> size, refs, chunks stored, flags
 *   blobrefs   acct id || blob id -> (empty)
 *   sessions   token hash -> acct id, created, last_seen, device, address
 *   sessidx    acct id || created || token hash -> (empty)
 *   queue      due || queue id -> entry
 *   queueid    queue id -> due
 *   invites    BLAKE2b-256 of the token -> expires (u64)
 *   factors    acct id || kind u8 || factor id -> value (opaque)
 *
 * Accounts get an internal number at creation, never reused, so that the
 * log, sessions and blob references key on 8 bytes instead of repeating
 * the address, and so that a deleted and recreated address cannot inherit
 * anything.
 *
 * Quota: used_bytes counts log record bytes and, for each blob the
 * account references, the blob's size once.  A blob is charged at begin
 * (so an upload cannot outgrow the quota half-way) and uncharged at
 * unref; two accounts referencing one blob are both charged for it.
 *
 * Writes: every write function describes its work as an operation and
 * hands it to store_write().  Operations queue up while a commit is in
 * progress; whoever finds no commit in progress becomes the leader, runs
 * every queued operation in one write transaction (each in a nested
 * transaction of its own, so that one failing operation is undone alone),
 * commits once and wakes the others.  One fsync serves the whole batch.
 *
 * The map: LMDB needs its map size fixed while any transaction of this
 * process is open.  Every transaction therefore holds maplock shared; the
 * leader grows the map (doubling, up to map_max) holding it exclusively
 * after a batch ran out of room, then runs the batch again.  Read
 * functions copy what they found and end their transaction before calling
 * back, so a callback may call into the store (the gateway deletes queue
 * entries from queue_due's callback) and a slow one cannot hold up growth.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>
#include <sodium.h>

#include "crypto/bytes.h"
#include "server/store/store.h"

#define MAP_INITIAL_DEFAULT ((uint64_t)64 << 20)
#define MAP_MAX_DEFAULT ((uint64_t)1 << 40)
/* Readers hold a slot only while they copy; threadpools and the gateway
 * share the table, so leave room above LMDB's default of 126. */
#define MAX_READERS 1024
#define STORE_FORMAT 1
/* Vaults, key sets and queue entries: far above any real one, and low
 * enough that sums of sizes cannot overflow. */
#define VALUE_MAX ((size_t)1 << 30)
#define BLOB_SIZE_MAX ((uint64_t)1 << 48)
/* What one read transaction copies before calling back. */
#define PAGE_ITEMS 64
#define PAGE_BYTES ((size_t)256 << 10)

#define ACCT_V1 1
#define ACCT_LEN 94
#define BLOBMETA_LEN 25
#define BLOB_COMPLETE 0x1
#define SESS_FIXED 26

enum {
	DB_META,
	DB_ACCOUNTS,
	DB_VAULTS,
	DB_PUBKEYS,
	DB_LOG,
	DB_LOGMETA,
	DB_BLOBS,
	DB_BLOBMETA,
	DB_BLOBREFS,
	DB_SESSIONS,
	DB_SESSIDX,
	DB_QUEUE,
	DB_QUEUEID,
	DB_INVITES,
	DB_FACTORS,
	DB_COUNT
};

static const char *const db_names[DB_COUNT] = {
	"meta", "accounts", "vaults", "pubkeys", "log", "logmeta", "blobs",
	"blobmeta", "blobrefs", "sessions", "sessidx", "queue", "queueid",
	"invites", "factors",
};

typedef int (*op_fn)(sp_store *s, MDB_txn *txn, void *arg);

/* One queued write; lives on the stack of the thread that submitted it. */
struct wop {
	op_fn run;
	void *arg;
	struct wop *next;
	int rc;
	int done;
};

struct sp_store {
	MDB_env *env;
	MDB_dbi db[DB_COUNT];
	uint64_t map_max;
	/* Shared by every transaction, exclusive to change the map size;
	 * map_size and broken change only under it exclusively. */
	pthread_rwlock_t maplock;
	uint64_t map_size;
	int broken; /* a remap failed: LMDB has no map any more */
	/* Guards the write queue and the counters. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct wop *head, **tailp;
	int committing;
	uint64_t commits, batched;
};

struct acct {
	uint64_t id;
	struct sp_store_account a;
};

struct blobmeta {
	uint64_t size, refs, have;
	uint8_t flags;
};

struct buf {
	uint8_t *p;
	size_t len, cap;
};

/* ---- bytes ------------------------------------------------------------ */

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

static int
buf_add(struct buf *b, const void *d, size_t n)
{
	size_t cap;
	void *p;

	if (n > b->cap - b->len) {
		for (cap = b->cap ? b->cap : 4096; cap - b->len < n; cap *= 2)
			;
		if ((p = realloc(b->p, cap)) == NULL)
			return ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	if (n > 0)
		memcpy(b->p + b->len, d, n);
	b->len += n;
	return 0;
}

static int
dup_out(const MDB_val *v, uint8_t **out_r, size_t *len_r)
{
	uint8_t *p;

	if ((p = malloc(v->mv_size ? v->mv_size : 1)) == NULL)
		return ENOMEM;
	memcpy(p, v->mv_data, v->mv_size);
	*out_r = p;
	*len_r = v->mv_size;
	return 0;
}

/* ---- errors ----------------------------------------------------------- */

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
		return E2BIG; /* one operation dirties too many pages */
	case MDB_READERS_FULL:
		return EAGAIN;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
		return SP_STORE_ECORRUPT;
	}
	if (rc >= MDB_KEYEXIST && rc <= MDB_LAST_ERRCODE)
		return EIO;
	return rc;
}

static const char *const store_errstr[] = {
	[SP_STORE_ECONFLICT - SP_STORE_ECONFLICT] =
	    "log append conflict: the log has moved past expected_last",
	[SP_STORE_EQUOTA - SP_STORE_ECONFLICT] = "account quota exceeded",
	[SP_STORE_ECORRUPT - SP_STORE_ECONFLICT] =
	    "store database is corrupt",
	[SP_STORE_EINCOMPLETE - SP_STORE_ECONFLICT] =
	    "blob upload is not complete",
	[SP_STORE_EHASH - SP_STORE_ECONFLICT] =
	    "blob content does not match its id",
	[SP_STORE_EINVITE - SP_STORE_ECONFLICT] =
	    "invite unknown, used or expired",
};

const char *
sp_store_strerror(int err)
{
	if (err >= SP_STORE_ECONFLICT && err < SP_STORE_ELAST)
		return store_errstr[err - SP_STORE_ECONFLICT];
	if (err == ENOSPC)
		return "storage full (map_max reached or disk full)";
	return sp_strerror(err);
}

/* ---- validation ------------------------------------------------------- */

/* Lower-cases ASCII; refuses empty, over-long, control and space bytes. */
static int
addr_norm(const char *in, char out[SP_STORE_ADDR_MAX + 1])
{
	unsigned char c;
	size_t i;

	if (in == NULL)
		return EINVAL;
	for (i = 0; in[i] != '\0'; i++) {
		c = (unsigned char)in[i];
		if (i == SP_STORE_ADDR_MAX || c <= 0x20 || c == 0x7f)
			return EINVAL;
		out[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
	}
	out[i] = '\0';
	return i == 0 ? EINVAL : 0;
}

static int
value_ok(const void *p, size_t len)
{
	return p != NULL && len > 0 && len <= VALUE_MAX;
}

static uint64_t
blob_nchunks(uint64_t size)
{
	return (size + SP_STORE_BLOB_CHUNK - 1) / SP_STORE_BLOB_CHUNK;
}

static size_t
blob_chunk_len(uint64_t size, uint64_t index)
{
	uint64_t off = index * SP_STORE_BLOB_CHUNK;

	return (size_t)(size - off < SP_STORE_BLOB_CHUNK ?
	    size - off : SP_STORE_BLOB_CHUNK);
}

/* ---- the map and transactions ----------------------------------------- */

/* Called with maplock held exclusively. */
static int
map_apply(sp_store *s, uint64_t size)
{
	MDB_envinfo info;
	int rc;

	if (s->broken)
		return EIO;
	if ((rc = mdb_env_set_mapsize(s->env, (size_t)size)) != 0) {
		/* Past the unmap LMDB has no map left to fall back on. */
		if (rc != EINVAL)
			s->broken = 1;
		return rc;
	}
	(void)mdb_env_info(s->env, &info);
	s->map_size = info.me_mapsize;
	return 0;
}

/* Adopts the size another process (the gateway) grew the map to. */
static int
map_adopt(sp_store *s)
{
	int rc;

	pthread_rwlock_wrlock(&s->maplock);
	rc = map_apply(s, 0);
	pthread_rwlock_unlock(&s->maplock);
	return rc;
}

/*
 * Doubles the map after a batch found it full at size seen.  If someone
 * changed it meanwhile, the batch just runs again.  ENOSPC at map_max.
 */
static int
map_grow(sp_store *s, uint64_t seen)
{
	uint64_t want;
	int rc = 0;

	pthread_rwlock_wrlock(&s->maplock);
	if (s->map_size != seen)
		goto out_unlock;
	if (seen >= s->map_max) {
		rc = ENOSPC;
		goto out_unlock;
	}
	want = seen > s->map_max / 2 ? s->map_max : seen * 2;
	rc = map_apply(s, want);
out_unlock:
	pthread_rwlock_unlock(&s->maplock);
	return rc;
}

/*
 * Begins a transaction holding maplock shared; the caller ends it with
 * txn_end() (reads) or commits or aborts it and unlocks (writes).
 */
static int
txn_begin(sp_store *s, unsigned flags, MDB_txn **txn_r)
{
	int rc;

	for (;;) {
		pthread_rwlock_rdlock(&s->maplock);
		rc = s->broken ? EIO :
		    mdb_txn_begin(s->env, NULL, flags, txn_r);
		if (rc == 0)
			return 0;
		pthread_rwlock_unlock(&s->maplock);
		if (rc != MDB_MAP_RESIZED)
			return rc;
		if ((rc = map_adopt(s)) != 0)
			return rc;
	}
}

static void
txn_end(sp_store *s, MDB_txn *txn)
{
	mdb_txn_abort(txn);
	pthread_rwlock_unlock(&s->maplock);
}

/* ---- group commit ----------------------------------------------------- */

/* Runs one operation in a nested transaction so it can fail alone. */
static int
op_run(sp_store *s, MDB_txn *txn, struct wop *op)
{
	MDB_txn *child;
	int rc;

	if ((rc = mdb_txn_begin(s->env, txn, 0, &child)) != 0)
		return rc;
	if ((rc = op->run(s, child, op->arg)) != 0) {
		mdb_txn_abort(child);
		return rc;
	}
	return mdb_txn_commit(child);
}

/*
 * Runs ops in txn.  Returns MDB_MAP_FULL if the map should grow and the
 * whole batch run again; sets *rest_r to the first op left for the next
 * transaction when this one cannot hold more dirty pages.
 */
static int
batch_run(sp_store *s, MDB_txn *txn, struct wop *ops, struct wop **rest_r,
    size_t *nok_r)
{
	struct wop *op;
	int rc;

	for (op = ops; op != NULL; op = op->next) {
		rc = op_run(s, txn, op);
		if (rc == MDB_MAP_FULL && s->map_size < s->map_max)
			return rc;
		if (rc == MDB_TXN_FULL && op != ops) {
			*rest_r = op;
			return 0;
		}
		op->rc = err_map(rc);
		*nok_r += rc == 0;
	}
	return 0;
}

/* Gives every op before rest that had succeeded the batch's error. */
static void
batch_fail(struct wop *ops, struct wop *rest, int rc)
{
	struct wop *op;

	for (op = ops; op != rest; op = op->next)
		if (op->rc == 0)
			op->rc = err_map(rc);
}

/* Returns how many ops committed (0 if no commit happened). */
static size_t
batch_commit(sp_store *s, struct wop *ops, struct wop **rest_r)
{
	struct wop *op;
	MDB_txn *txn;
	uint64_t seen;
	size_t nok;
	int rc;

	for (;;) {
		*rest_r = NULL;
		nok = 0;
		for (op = ops; op != NULL; op = op->next)
			op->rc = 0; /* forget a run the map cut short */
		if ((rc = txn_begin(s, 0, &txn)) != 0)
			break;
		seen = s->map_size;
		rc = batch_run(s, txn, ops, rest_r, &nok);
		if (rc == 0 && nok > 0)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
		pthread_rwlock_unlock(&s->maplock);
		if (rc != MDB_MAP_FULL || (rc = map_grow(s, seen)) != 0)
			break;
	}
	if (rc == 0)
		return nok;
	batch_fail(ops, *rest_r, rc);
	return 0;
}

static void
queue_push_front(sp_store *s, struct wop *list)
{
	struct wop *last;

	for (last = list; last->next != NULL; last = last->next)
		;
	last->next = s->head;
	if (s->head == NULL)
		s->tailp = &last->next;
	s->head = list;
}

/*
 * Called with mu held, returns with it held.  Takes every queued write,
 * commits them without the mutex, then wakes their writers.
 */
static void
lead(sp_store *s)
{
	struct wop *batch = s->head, *rest, *op, *next;
	size_t nok;

	s->head = NULL;
	s->tailp = &s->head;
	s->committing = 1;
	pthread_mutex_unlock(&s->mu);
	nok = batch_commit(s, batch, &rest);
	pthread_mutex_lock(&s->mu);
	for (op = batch; op != rest; op = next) {
		next = op->next; /* op may be gone once its writer runs */
		op->done = 1;
	}
	if (rest != NULL)
		queue_push_front(s, rest);
	s->commits += nok > 0;
	s->batched += nok > 1 ? nok : 0;
	s->committing = 0;
	pthread_cond_broadcast(&s->cv);
}

/* Runs run(arg) in the next group commit; returns after it committed. */
static int
store_write(sp_store *s, op_fn run, void *arg)
{
	struct wop op = { .run = run, .arg = arg };

	pthread_mutex_lock(&s->mu);
	*s->tailp = &op;
	s->tailp = &op.next;
	while (!op.done) {
		if (s->committing)
			pthread_cond_wait(&s->cv, &s->mu);
		else
			lead(s);
	}
	pthread_mutex_unlock(&s->mu);
	return op.rc;
}

/* ---- small database helpers ------------------------------------------- */

static int
db_get(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kn, MDB_val *v)
{
	MDB_val key = mv(k, kn);

	return mdb_get(txn, dbi, &key, v);
}

static int
db_put(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kn, const void *d,
    size_t dn, unsigned flags)
{
	MDB_val key = mv(k, kn), data = mv(d, dn);

	return mdb_put(txn, dbi, &key, &data, flags);
}

static int
db_del(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kn)
{
	MDB_val key = mv(k, kn);

	return mdb_del(txn, dbi, &key, NULL);
}

static int
meta_get64(sp_store *s, MDB_txn *txn, const char *name, uint64_t *v_r)
{
	MDB_val v;
	int rc;

	rc = db_get(txn, s->db[DB_META], name, strlen(name), &v);
	if (rc == MDB_NOTFOUND) {
		*v_r = 0;
		return 0;
	}
	if (rc != 0)
		return rc;
	if (v.mv_size != 8)
		return SP_STORE_ECORRUPT;
	*v_r = sp_get_be64(v.mv_data);
	return 0;
}

static int
meta_put64(sp_store *s, MDB_txn *txn, const char *name, uint64_t v)
{
	uint8_t b[8];

	sp_put_be64(b, v);
	return db_put(txn, s->db[DB_META], name, strlen(name), b, 8, 0);
}

static int
meta_add(sp_store *s, MDB_txn *txn, const char *name, int64_t delta)
{
	uint64_t v;
	int rc;

	if ((rc = meta_get64(s, txn, name, &v)) != 0)
		return rc;
	return meta_put64(s, txn, name, v + (uint64_t)delta);
}

typedef int (*each_fn)(sp_store *s, MDB_txn *txn, const MDB_val *k,
    const MDB_val *v, void *arg);

/*
 * Deletes every key of dbi starting with pfx (plen bytes), handing each
 * to each() (if set) first.  each() must not touch dbi itself.
 */
static int
del_prefix(sp_store *s, MDB_txn *txn, MDB_dbi dbi, const void *pfx,
    size_t plen, each_fn each, void *arg)
{
	MDB_cursor *c;
	MDB_val k = mv(pfx, plen), v;
	int rc;

	if ((rc = mdb_cursor_open(txn, dbi, &c)) != 0)
		return rc;
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size >= plen &&
	    memcmp(k.mv_data, pfx, plen) == 0) {
		if (each != NULL && (rc = each(s, txn, &k, &v, arg)) != 0)
			break;
		if ((rc = mdb_cursor_del(c, 0)) != 0)
			break;
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* ---- open and close --------------------------------------------------- */

static int
opts_apply(sp_store *s, const struct sp_store_opts *o)
{
	s->map_size = o && o->map_initial ? o->map_initial :
	    MAP_INITIAL_DEFAULT;
	s->map_max = o && o->map_max ? o->map_max : MAP_MAX_DEFAULT;
	if (s->map_max > SIZE_MAX)
		s->map_max = SIZE_MAX;
	return s->map_size <= s->map_max ? 0 : EINVAL;
}

static int
locks_init(sp_store *s)
{
	pthread_rwlockattr_t ra;
	int rc;

	if ((rc = pthread_rwlockattr_init(&ra)) != 0)
		return rc;
	/* A waiting resize must not starve behind a stream of readers. */
	(void)pthread_rwlockattr_setkind_np(&ra,
	    PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	rc = pthread_rwlock_init(&s->maplock, &ra);
	(void)pthread_rwlockattr_destroy(&ra);
	if (rc != 0)
		return rc;
	if ((rc = pthread_mutex_init(&s->mu, NULL)) != 0)
		goto out_rwlock;
	if ((rc = pthread_cond_init(&s->cv, NULL)) != 0)
		goto out_mutex;
	s->tailp = &s->head;
	return 0;
out_mutex:
	pthread_mutex_destroy(&s->mu);
out_rwlock:
	pthread_rwlock_destroy(&s->maplock);
	return rc;
}

static void
locks_destroy(sp_store *s)
{
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	pthread_rwlock_destroy(&s->maplock);
}

static int
env_open(sp_store *s, const char *dir, const struct sp_store_opts *o)
{
	unsigned flags = MDB_NOTLS | (o && o->no_sync ? MDB_NOSYNC : 0);
	MDB_envinfo info;
	int rc, dead;

	if ((rc = mdb_env_create(&s->env)) != 0)
		return rc;
	if ((rc = mdb_env_set_maxdbs(s->env, DB_COUNT)) != 0 ||
	    (rc = mdb_env_set_maxreaders(s->env, MAX_READERS)) != 0 ||
	    (rc = mdb_env_set_mapsize(s->env, (size_t)s->map_size)) != 0 ||
	    (rc = mdb_env_open(s->env, dir, flags, 0600)) != 0)
		goto out_env;
	/* Free slots of readers that died (a killed server or gateway). */
	(void)mdb_reader_check(s->env, &dead);
	(void)mdb_env_info(s->env, &info);
	s->map_size = info.me_mapsize;
	return 0;
out_env:
	mdb_env_close(s->env);
	return rc;
}

static int
format_check(sp_store *s, MDB_txn *txn)
{
	static const char key[] = "format";
	uint8_t b[4];
	MDB_val v;
	int rc;

	rc = db_get(txn, s->db[DB_META], key, sizeof(key) - 1, &v);
	if (rc == MDB_NOTFOUND) {
		sp_put_be32(b, STORE_FORMAT);
		return db_put(txn, s->db[DB_META], key, sizeof(key) - 1, b,
		    4, 0);
	}
	if (rc != 0)
		return rc;
	if (v.mv_size != 4)
		return SP_STORE_ECORRUPT;
	return sp_get_be32(v.mv_data) == STORE_FORMAT ? 0 : ENOTSUP;
}

static int
dbs_open(sp_store *s)
{
	MDB_txn *txn;
	int i, rc;

	if ((rc = txn_begin(s, 0, &txn)) != 0)
		return rc;
	for (i = 0; i < DB_COUNT && rc == 0; i++)
		rc = mdb_dbi_open(txn, db_names[i], MDB_CREATE, &s->db[i]);
	if (rc == 0)
		rc = format_check(s, txn);
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	pthread_rwlock_unlock(&s->maplock);
	return rc;
}

int
sp_store_open(const char *dir, const struct sp_store_opts *o,
    sp_store **s_r)
{
	sp_store *s;
	int rc;

	if (s_r == NULL || dir == NULL)
		return EINVAL;
	*s_r = NULL;
	if (sodium_init() < 0)
		return SP_ECRYPTO;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return ENOMEM;
	if ((rc = opts_apply(s, o)) != 0 || (rc = locks_init(s)) != 0)
		goto out_free;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		rc = errno;
		goto out_locks;
	}
	if ((rc = env_open(s, dir, o)) != 0)
		goto out_locks;
	if ((rc = dbs_open(s)) != 0)
		goto out_env;
	*s_r = s;
	return 0;
out_env:
	mdb_env_close(s->env);
out_locks:
	locks_destroy(s);
out_free:
	free(s);
	return err_map(rc);
}

void
sp_store_close(sp_store *s)
{
	int i;

	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	while (s->committing || s->head != NULL)
		pthread_cond_wait(&s->cv, &s->mu);
	pthread_mutex_unlock(&s->mu);
	/* Readers still copying hold maplock; wait for them too. */
	pthread_rwlock_wrlock(&s->maplock);
	pthread_rwlock_unlock(&s->maplock);
	for (i = 0; i < DB_COUNT; i++)
		mdb_dbi_close(s->env, s->db[i]);
	mdb_env_close(s->env);
	locks_destroy(s);
	free(s);
}

/* ---- accounts --------------------------------------------------------- */

static void
acct_encode(const struct acct *x, uint8_t v[ACCT_LEN])
{
	v[0] = ACCT_V1;
	sp_put_be64(v + 1, x->id);
	memcpy(v + 9, x->a.auth_pk, 32);
	memcpy(v + 41, x->a.kdf_params, 25);
	sp_put_be32(v + 66, x->a.flags);
	sp_put_be64(v + 70, x->a.created);
	sp_put_be64(v + 78, x->a.quota_bytes);
	sp_put_be64(v + 86, x->a.used_bytes);
}

static int
acct_decode(const MDB_val *k, const MDB_val *v, struct acct *x)
{
	const uint8_t *p = v->mv_data;

	if (v->mv_size != ACCT_LEN || p[0] != ACCT_V1 || k->mv_size == 0 ||
	    k->mv_size > SP_STORE_ADDR_MAX)
		return SP_STORE_ECORRUPT;
	memset(x, 0, sizeof(*x));
	memcpy(x->a.address, k->mv_data, k->mv_size);
	x->id = sp_get_be64(p + 1);
	memcpy(x->a.auth_pk, p + 9, 32);
	memcpy(x->a.kdf_params, p + 41, 25);
	x->a.flags = sp_get_be32(p + 66);
	x->a.created = sp_get_be64(p + 70);
	x->a.quota_bytes = sp_get_be64(p + 78);
	x->a.used_bytes = sp_get_be64(p + 86);
	return 0;
}

static int
acct_load(sp_store *s, MDB_txn *txn, const char *addr, struct acct *x)
{
	MDB_val k = mv(addr, strlen(addr)), v;
	int rc;

	if ((rc = mdb_get(txn, s->db[DB_ACCOUNTS], &k, &v)) != 0)
		return rc;
	return acct_decode(&k, &v, x);
}

static int
acct_save(sp_store *s, MDB_txn *txn, const struct acct *x, unsigned flags)
{
	uint8_t v[ACCT_LEN];

	acct_encode(x, v);
	return db_put(txn, s->db[DB_ACCOUNTS], x->a.address,
	    strlen(x->a.address), v, sizeof(v), flags);
}

/* Charges add bytes to x, or SP_STORE_EQUOTA. */
static int
acct_charge(struct acct *x, uint64_t add)
{
	uint64_t used = x->a.used_bytes;

	if (add > UINT64_MAX - used ||
	    (x->a.quota_bytes != 0 && used + add > x->a.quota_bytes))
		return SP_STORE_EQUOTA;
	x->a.used_bytes = used + add;
	return 0;
}

static void
acct_uncharge(struct acct *x, uint64_t sub)
{
	x->a.used_bytes -= sub < x->a.used_bytes ? sub : x->a.used_bytes;
}

struct invite_arg {
	uint8_t hash[32];
	uint64_t t;             /* put: expires; take: now */
};

struct create_arg {
	struct acct x;
	const void *vault, *keys;
	size_t vault_len, keys_len;
	const uint8_t *invite;  /* hash to consume first, or NULL */
	uint64_t now;
};

static int run_invite_take(sp_store *s, MDB_txn *txn, void *arg);

static int
run_account_create(sp_store *s, MDB_txn *txn, void *arg)
{
	struct create_arg *c = arg;
	const char *addr = c->x.a.address;
	uint8_t idk[8], zero[8] = { 0 };
	int rc;

	/* The invite first: without one, nothing tells whether the address
	 * exists.  Both happen in this op's transaction, so an invite is
	 * used up only if the account is really created. */
	if (c->invite) {
		struct invite_arg ia = { .t = c->now };

		memcpy(ia.hash, c->invite, 32);
		if ((rc = run_invite_take(s, txn, &ia)) != 0)
			return rc == MDB_NOTFOUND ? SP_STORE_EINVITE : rc;
	}
	if ((rc = meta_get64(s, txn, "next_acct", &c->x.id)) != 0)
		return rc;
	c->x.id += c->x.id == 0; /* ids start at 1 */
	if ((rc = meta_put64(s, txn, "next_acct", c->x.id + 1)) != 0 ||
	    (rc = acct_save(s, txn, &c->x, MDB_NOOVERWRITE)) != 0)
		return rc;
	sp_put_be64(idk, c->x.id);
	if ((rc = db_put(txn, s->db[DB_LOGMETA], idk, 8, zero, 8, 0)) != 0 ||
	    (rc = db_put(txn, s->db[DB_VAULTS], addr, strlen(addr), c->vault,
	    c->vault_len, 0)) != 0)
		return rc;
	return db_put(txn, s->db[DB_PUBKEYS], addr, strlen(addr), c->keys,
	    c->keys_len, 0);
}

int
sp_store_account_create(sp_store *s, const struct sp_store_account *a,
    const void *vault, size_t vault_len, const void *pubkeys,
    size_t pubkeys_len)
{
	return sp_store_account_create_invited(s, a, vault, vault_len, pubkeys,
	    pubkeys_len, NULL, 0);
}

int
sp_store_account_create_invited(sp_store *s, const struct sp_store_account *a,
    const void *vault, size_t vault_len, const void *pubkeys,
    size_t pubkeys_len, const uint8_t *invite_hash, uint64_t now)
{
	struct create_arg c;
	int rc;

	if (s == NULL || a == NULL || !value_ok(vault, vault_len) ||
	    !value_ok(pubkeys, pubkeys_len) ||
	    (a->flags & ~SP_STORE_ACCT_KNOWN) != 0 ||
	    memchr(a->address, '\0', sizeof(a->address)) == NULL)
		return EINVAL;
	memset(&c, 0, sizeof(c));
	c.x.a = *a;
	if ((rc = addr_norm(a->address, c.x.a.address)) != 0)
		return rc;
	c.x.a.used_bytes = 0;
	if (c.x.a.created == 0)
		c.x.a.created = (uint64_t)time(NULL);
	c.vault = vault;
	c.vault_len = vault_len;
	c.keys = pubkeys;
	c.keys_len = pubkeys_len;
	c.invite = invite_hash;
	c.now = now;
	return store_write(s, run_account_create, &c);
}

int
sp_store_account_get(sp_store *s, const char *address,
    struct sp_store_account *a_r)
{
	char addr[SP_STORE_ADDR_MAX + 1];
	struct acct x;
	MDB_txn *txn;
	int rc;

	if (s == NULL || a_r == NULL)
		return EINVAL;
	if ((rc = addr_norm(address, addr)) != 0)
		return rc;
	if ((rc = txn_begin(s, MDB_RDONLY, &txn)) != 0)
		return err_map(rc);
	rc = acct_load(s, txn, addr, &x);
	txn_end(s, txn);
	if (rc == 0)
		*a_r = x.a;
	return err_map(rc);
}

static int
run_account_update(sp_store *s, MDB_txn *txn, void *arg)
{
	const struct sp_store_account *a = arg;
	struct acct x;
	int rc;

	if ((rc = acct_load(s, txn, a->address, &x)) != 0)
		return rc;
	memcpy(x.a.auth_pk, a->auth_pk, sizeof(x.a.auth_pk));
	memcpy(x.a.kdf_params, a->kdf_params, sizeof(x.a.kdf_params));
	x.a.flags = a->flags;
	x.a.quota_bytes = a->quota_bytes;
	return acct_save(s, txn, &x, 0);
}

struct admin_arg {
	char address[SP_STORE_ADDR_MAX + 1];
	uint32_t flags;
	uint64_t quota;
	int set_flags, set_quota;
};

/* Only the operator's fields, read and written in one transaction, so a
 * password change racing with it is never undone. */
static int
run_account_admin(sp_store *s, MDB_txn *txn, void *arg)
{
	const struct admin_arg *p = arg;
	struct acct x;
	int rc;

	if ((rc = acct_load(s, txn, p->address, &x)) != 0)
		return rc;
	if (p->set_flags)
		x.a.flags = p->flags;
	if (p->set_quota)
		x.a.quota_bytes = p->quota;
	return acct_save(s, txn, &x, 0);
}

int
sp_store_account_set_flags(sp_store *s, const char *address, uint32_t flags)
{
	struct admin_arg p = { .flags = flags, .set_flags = 1 };
	int rc;

	if (s == NULL || address == NULL ||
	    (flags & ~SP_STORE_ACCT_KNOWN) != 0)
		return EINVAL;
	if ((rc = addr_norm(address, p.address)) != 0)
		return rc;
	return store_write(s, run_account_admin, &p);
}

int
sp_store_account_set_quota(sp_store *s, const char *address, uint64_t quota)
{
	struct admin_arg p = { .quota = quota, .set_quota = 1 };
	int rc;

	if (s == NULL || address == NULL)
		return EINVAL;
	if ((rc = addr_norm(address, p.address)) != 0)
		return rc;
	return store_write(s, run_account_admin, &p);
}

int
sp_store_account_update(sp_store *s, const struct sp_store_account *a)
{
	struct sp_store_account n;
	int rc;

	if (s == NULL || a == NULL ||
	    (a->flags & ~SP_STORE_ACCT_KNOWN) != 0 ||
	    memchr(a->address, '\0', sizeof(a->address)) == NULL)
		return EINVAL;
	n = *a;
	if ((rc = addr_norm(a->address, n.address)) != 0)
		return rc;
	return store_write(s, run_account_update, &n);
}

/* ---- blob references (used by account delete and unref) --------------- */

static int
bm_load(sp_store *s, MDB_txn *txn, const uint8_t id[32],
    struct blobmeta *bm)
{
	MDB_val v;
	const uint8_t *p;
	int rc;

	if ((rc = db_get(txn, s->db[DB_BLOBMETA], id, 32, &v)) != 0)
		return rc;
	if (v.mv_size != BLOBMETA_LEN)
		return SP_STORE_ECORRUPT;
	p = v.mv_data;
	bm->size = sp_get_be64(p);
	bm->refs = sp_get_be64(p + 8);
	bm->have = sp_get_be64(p + 16);
	bm->flags = p[24];
	return 0;
}

static int
bm_save(sp_store *s, MDB_txn *txn, const uint8_t id[32],
    const struct blobmeta *bm)
{
	uint8_t v[BLOBMETA_LEN];

	sp_put_be64(v, bm->size);
	sp_put_be64(v + 8, bm->refs);
	sp_put_be64(v + 16, bm->have);
	v[24] = bm->flags;
	return db_put(txn, s->db[DB_BLOBMETA], id, 32, v, sizeof(v), 0);
}

/*
 * Drops one reference to blob id (the caller deletes the reference key);
 * the last one takes the chunks and the metadata with it.  *size_r gets
 * the blob's size, to uncharge.
 */
static int
blob_drop(sp_store *s, MDB_txn *txn, const uint8_t id[32],
    uint64_t *size_r)
{
	struct blobmeta bm;
	int rc;

	if ((rc = bm_load(s, txn, id, &bm)) != 0)
		return rc == MDB_NOTFOUND ? SP_STORE_ECORRUPT : rc;
	*size_r = bm.size;
	if (bm.refs > 1) {
		bm.refs--;
		return bm_save(s, txn, id, &bm);
	}
	if ((rc = del_prefix(s, txn, s->db[DB_BLOBS], id, 32, NULL,
	    NULL)) != 0 ||
	    (rc = db_del(txn, s->db[DB_BLOBMETA], id, 32)) != 0)
		return rc;
	return bm.flags & BLOB_COMPLETE ? meta_add(s, txn, "blobs", -1) : 0;
}

/* ---- account delete --------------------------------------------------- */

static int
each_ref_drop(sp_store *s, MDB_txn *txn, const MDB_val *k, const MDB_val *v,
    void *arg)
{
	uint64_t size;

	if (k->mv_size != 40)
		return SP_STORE_ECORRUPT;
	return blob_drop(s, txn, (const uint8_t *)k->mv_data + 8, &size);
}

static int
each_session_drop(sp_store *s, MDB_txn *txn, const MDB_val *k,
    const MDB_val *v, void *arg)
{
	int rc;

	if (k->mv_size != 48)
		return SP_STORE_ECORRUPT;
	rc = db_del(txn, s->db[DB_SESSIONS], (const uint8_t *)k->mv_data + 16,
	    32);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int
run_account_delete(sp_store *s, MDB_txn *txn, void *arg)
{
	const char *addr = arg;
	size_t alen = strlen(addr);
	struct acct x;
	uint8_t idk[8];
	int rc;

	if ((rc = acct_load(s, txn, addr, &x)) != 0)
		return rc;
	sp_put_be64(idk, x.id);
	if ((rc = del_prefix(s, txn, s->db[DB_SESSIDX], idk, 8,
	    each_session_drop, NULL)) != 0 ||
	    (rc = del_prefix(s, txn, s->db[DB_FACTORS], idk, 8, NULL,
	    NULL)) != 0 ||
	    (rc = del_prefix(s, txn, s->db[DB_BLOBREFS], idk, 8,
	    each_ref_drop, NULL)) != 0 ||
	    (rc = del_prefix(s, txn, s->db[DB_LOG], idk, 8, NULL, NULL)) != 0 ||
	    (rc = db_del(txn, s->db[DB_LOGMETA], idk, 8)) != 0 ||
	    (rc = db_del(txn, s->db[DB_VAULTS], addr, alen)) != 0 ||
	    (rc = db_del(txn, s->db[DB_PUBKEYS], addr, alen)) != 0)
		return rc == MDB_NOTFOUND ? SP_STORE_ECORRUPT : rc;
	return db_del(txn, s->db[DB_ACCOUNTS], addr, alen);
}

int
sp_store_account_delete(sp_store *s, const char *address)
{
	char addr[SP_STORE_ADDR_MAX + 1];
	int rc;

	if (s == NULL)
		return EINVAL;
	if ((rc = addr_norm(address, addr)) != 0)
		return rc;
	return store_write(s, run_account_delete, addr);
}

/* ---- account list ----------------------------------------------------- */

/* Copies up to PAGE_ITEMS accounts after *after ("" = from the start). */
static int
acct_page(sp_store *s, const char *after, struct sp_store_account *page,
    size_t *n_r)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k = mv(after, strlen(after)), v;
	struct acct x;
	int rc;

	*n_r = 0;
	if ((rc = txn_begin(s, MDB_RDONLY, &txn)) != 0)
		return rc;
	if ((rc = mdb_cursor_open(txn, s->db[DB_ACCOUNTS], &c)) != 0)
		goto out_txn;
	rc = mdb_cursor_get(c, &k, &v, *after ? MDB_SET_RANGE : MDB_FIRST);
	if (rc == 0 && *after && k.mv_size == strlen(after) &&
	    memcmp(k.mv_data, after, k.mv_size) == 0)
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	while (rc == 0 && *n_r < PAGE_ITEMS &&
	    (rc = acct_decode(&k, &v, &x)) == 0) {
		page[(*n_r)++] = x.a;
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(c);
out_txn:
	txn_end(s, txn);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int
sp_store_account_list(sp_store *s,
    int (*fn)(const struct sp_store_account *a, void *arg), void *arg)
{
	char after[SP_STORE_ADDR_MAX + 1] = "";
	struct sp_store_account *page;
	size_t i, n;
	int rc;

	if (s == NULL || fn == NULL)
		return EINVAL;
	if ((page = calloc(PAGE_ITEMS, sizeof(*page))) == NULL)
		return ENOMEM;
	do {
		if ((rc = err_map(acct_page(s, after, page, &n))) != 0)
			break;
		for (i = 0; i < n && rc == 0; i++)
			rc = fn(&page[i], arg);
		if (n > 0)
			memcpy(after, page[n - 1].address, sizeof(after));
	} while (rc == 0 && n == PAGE_ITEMS);
	free(page);
	return rc;
}

/* ---- vault and key directory ------------------------------------------ */

/* Copies the value of addr in dbi (vaults or pubkeys). */
static int
by_addr_get(sp_store *s, int db, const char *address, uint8_t **out_r,
    size_t *len_r)
{
	char addr[SP_STORE_ADDR_MAX + 1];
	MDB_txn *txn;
	MDB_val v;
	int rc;

	if (s == NULL || out_r == NULL || len_r == NULL)
		return EINVAL;
	if ((rc = addr_norm(address, addr)) != 0)
		return rc;
	if ((rc = txn_begin(s, MDB_RDONLY, &txn)) != 0)
		return err_map(rc);
	rc = db_get(txn, s->db[db], addr, strlen(addr), &v);
	if (rc == 0)
		rc = dup_out(&v, out_r, len_r);
	txn_end(s, txn);
	return err_map(rc);
}

int
sp_store_vault_get(sp_store *s, const char *address, uint8_t **vault_r,
    size_t *len_r)
{
	return by_addr_get(s, DB_VAULTS, address, vault_r, len_r);
}

int
sp_store_pubkeys_get(sp_store *s, const char *address, uint8_t **keys_r,
    size_t *len_r)
{
	return by_addr_get(s, DB_PUBKEYS, address, keys_r, len_r);
}

struct vault_arg {
	char addr[SP_STORE_ADDR_MAX + 1];
	const void *data;
	size_t len;
	const uint8_t *auth_pk, *kdf_params; /* NULL: keys only */
};

static int
run_vault_put(sp_store *s, MDB_txn *txn, void *arg)
{
	struct vault_arg *p = arg;
	struct acct x;
	int rc;

	if ((rc = acct_load(s, txn, p->addr, &x)) != 0)
		return rc;
	memcpy(x.a.auth_pk, p->auth_pk, sizeof(x.a.auth_pk));
	memcpy(x.a.kdf_params, p->kdf_params, sizeof(x.a.kdf_params));
	if ((rc = acct_save(s, txn, &x, 0)) != 0)
		return rc;
	return db_put(txn, s->db[DB_VAULTS], p->addr, strlen(p->addr),
	    p->data, p->len, 0);
}

int
sp_store_vault_put(sp_store *s, const char *address, const void *vault,
    size_t len, const uint8_t auth_pk[32], const uint8_t kdf_params[25])
{
	struct vault_arg p = { .data = vault, .len = len, .auth_pk = auth_pk,
	    .kdf_params = kdf_params };
	int rc;

	if (s == NULL || !value_ok(vault, len) || auth_pk == NULL ||
	    kdf_params == NULL)
		return EINVAL;
	if ((rc = addr_norm(address, p.addr)) != 0)
		return rc;
	return store_write(s, run_vault_put, &p);
}

static int
run_pubkeys_put(sp_store *s, MDB_txn *txn, void *arg)
{
	struct vault_arg *p = arg;
	struct acct x;
	int rc;

	if ((rc = acct_load(s, txn, p->addr, &x)) != 0)
		return rc;
	return db_put(txn, s->db[DB_PUBKEYS], p->addr, strlen(p->addr),
	    p->data, p->len, 0);
}

int
sp_store_pubkeys_put(sp_store *s, const char *address, const void *keys,
    size_t len)
{
	struct vault_arg p = { .data = keys, .len = len };
	int rc;

	if (s == NULL || !value_ok(keys, len))
		return EINVAL;
	if ((rc = addr_norm(address, p.addr)) != 0)
		return rc;
	return store_write(s, run_pubkeys_put, &p);
}

/* ---- the per-account log ---------------------------------------------- */

static int
log_last_get(sp_store *s, MDB_txn *txn, uint64_t id, uint64_t *last_r)
{
	uint8_t idk[8];
	MDB_val v;
	int rc;

	sp_put_be64(idk, id);
	if ((rc = db_get(txn, s->db[DB_LOGMETA], idk, 8, &v)) != 0)
		return rc;
	if (v.mv_size != 8)
		return SP_STORE_ECORRUPT;
	*last_r = sp_get_be64(v.mv_data);
	return 0;
}

static int
log_last_put(sp_store *s, MDB_txn *txn, uint64_t id, uint64_t last)
{
	uint8_t idk[8], v[8];

	sp_put_be64(idk, id);
	sp_put_be64(v, last);
	return db_put(txn, s->db[DB_LOGMETA], idk, 8, v, 8, 0);
}

struct append_arg {
	char addr[SP_STORE_ADDR_MAX + 1];
	uint64_t expected, total;
	const struct sp_store_rec *recs;
	size_t n;
	uint64_t first, last;
};

static int
log_put_recs(sp_store *s, MDB_txn *txn, uint64_t id, uint64_t first,
    const struct sp_store_rec *recs, size_t n)
{
	uint8_t key[16];
	size_t i;
	int rc;

	sp_put_be64(key, id);
	for (i = 0; i < n; i++) {
		sp_put_be64(key + 8, first + i);
		rc = db_put(txn, s->db[DB_LOG], key, 16, recs[i].data,
		    recs[i].len, MDB_NOOVERWRITE);
		if (rc != 0) /* a record past "last": logmeta is wrong */
			return rc == MDB_KEYEXIST ? SP_STORE_ECORRUPT : rc;
	}
	return 0;
}

static int
run_log_append(sp_store *s, MDB_txn *txn, void *arg)
{
	struct append_arg *p = arg;
	struct acct x;
	uint64_t last;
	int rc;

	if ((rc = acct_load(s, txn, p->addr, &x)) != 0 ||
	    (rc = log_last_get(s, txn, x.id, &last)) != 0)
		return rc;
	p->last = last;
	if (p->expected != SP_STORE_ANY && p->expected != last)
		return SP_STORE_ECONFLICT;
	if (p->n >= SP_STORE_ANY - last)
		return EOVERFLOW;
	if ((rc = acct_charge(&x, p->total)) != 0 ||
	    (rc = log_put_recs(s, txn, x.id, last + 1, p->recs, p->n)) != 0 ||
	    (rc = log_last_put(s, txn, x.id, last + p->n)) != 0 ||
	    (rc = acct_save(s, txn, &x, 0)) != 0)
		return rc;
	p->first = last + 1;
	p->last = last + p->n;
	return 0;
}

int
sp_store_log_append(sp_store *s, const char *address,
    uint64_t expected_last, const struct sp_store_rec *recs, size_t n,
    uint64_t *first_r, uint64_t *last_r)
{
	struct append_arg p = { .expected = expected_last, .recs = recs,
	    .n = n };
	size_t i;
	int rc;

	if (s == NULL || recs == NULL || n == 0)
		return EINVAL;
	for (i = 0; i < n; i++) {
		if (recs[i].data == NULL || recs[i].len == 0 ||
		    recs[i].len > SP_STORE_RECORD_MAX ||
		    p.total > UINT64_MAX - recs[i].len)
			return EINVAL;
		p.total += recs[i].len;
	}
	if ((rc = addr_norm(address, p.addr)) != 0)
		return rc;
	rc = store_write(s, run_log_append, &p);
	if (rc == 0 && first_r != NULL)
		*first_r = p.first;
	if ((rc == 0 || rc == SP_STORE_ECONFLICT) && last_r != NULL)
		*last_r = p.last;
	return rc;
}

int
sp_store_log_last(sp_store *s, const char *address, uint64_t *last_r)
{
	char addr[SP_STORE_ADDR_MAX + 1];
	struct acct x;
	MDB_txn *txn;
	int rc;

	if (s == NULL || last_r == NULL)
		return EINVAL;
	if ((rc = addr_norm(address, addr)) != 0)
		return rc;
	if ((rc = txn_begin(s, MDB_RDONLY, &txn)) != 0)
		return err_map(rc);
	if ((rc = acct_load(s, txn, addr, &x)) == 0)
		rc = log_last_get(s, txn, x.id, last_r);
	txn_end(s, txn);
	return err_map(rc);
}

/* Where a paged log read stands; 0 in max_* means no limit. */
struct log_walk {
	const char *addr;
	uint64_t id, next, last;
	size_t max_records, max_bytes, count, bytes;
	int done;
};

/* Copies the next records of the walk into b as seq, len, data. */
static int
log_copy(MDB_cursor *c, struct log_walk *w, struct buf *b)
{
	uint8_t key[16], hdr[16];
	MDB_val k, v;
	int rc;

	sp_put_be64(key, w->id);
	sp_put_be64(key + 8, w->next);
	k = mv(key, 16);
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	for (; rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size != 16 || memcmp(k.mv_data, key, 8) != 0 ||
		    (w->max_records && w->count == w->max_records) ||
		    (w->max_bytes && w->count > 0 &&
		    (w->bytes >= w->max_bytes ||
		    v.mv_size > w->max_bytes - w->bytes)))
			break;
		if (b->len >= PAGE_BYTES)
			return 0; /* page full; the walk goes on */
		memcpy(hdr, k.mv_data, 16);
		sp_put_be64(hdr, v.mv_size);
		if ((rc = buf_add(b, hdr, 16)) != 0 ||
		    (rc = buf_add(b, v.mv_data, v.mv_size)) != 0)
			return rc;
		w->next = sp_get_be64(hdr + 8) + 1;
		w->count++;
		w->bytes += v.mv_size;
	}
	w->done = 1;
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int
log_page(sp_store *s, struct log_walk *w, struct buf *b)
{
	MDB_txn *txn;
	MDB_cursor *c;
	struct acct x;
	int rc;

	if ((rc = txn_begin(s, MDB_RDONLY, &txn)) != 0)
		return rc;
	if (w->id == 0 && (rc = acct_load(s, txn, w->addr, &x)) == 0)
		w->id = x.id;
	if (rc == 0)
		rc = log_last_get(s, txn, w->id, &w->last);
	if (rc == 0 && (rc = mdb_cursor_open(txn, s->db[DB_LOG], &c)) == 0) {
		rc = log_copy(c, w, b);
		mdb_cursor_close(c);
	}
	txn_end(s, txn);
	return rc;
}

static int
log_deliver(const struct buf *b,
    int (*fn)(uint64_t seq, const void *data, size_t len, void *arg),
    void *arg)
{
	const uint8_t *p = b->p, *end = b->p + b->len;
	size_t len;
	int rc = 0;

	while (rc == 0 && p < end) {
		len = (size_t)sp_get_be64(p);
		rc = fn(sp_get_be64(p + 8), p + 16, len, arg);
		p += 16 + len;
	}
	return rc;
}

int
sp_store_log_read(sp_store *s, const char *address, uint64_t from,
    size_t max_records, size_t max_bytes,
    int (*fn)(uint64_t seq, const void *data, size_t len, void *arg),
    void *arg, uint64_t *last_r)
{
	char addr[SP_STORE_ADDR_MAX + 1];
	struct log_walk w = { .addr = addr, .next = from ? from : 1,
	    .max_records = max_records, .max_bytes = max_bytes };
	struct buf b = { 0 };
	int rc;

	if (s == NULL || fn == NULL)
		return EINVAL;
	if ((rc = addr_norm(address, addr)) != 0)
		return rc;
	do {
		b.len = 0;
		if ((rc = err_map(log_page(s, &w, &b))) != 0)
			break;
		if (last_r != NULL)
			*last_r = w.last;
		rc = log_deliver(&b, fn, arg);
	} while (rc == 0 && !w.done);
	free(b.p);
	return rc;
}

struct compact_arg {
	char addr[SP_STORE_ADDR_MAX + 1];
	uint64_t upto;
};

/* Deletes records 1..upto of account id, adding their bytes to *freed. */
static int
log_del_upto(sp_store *s, MDB_txn *txn, uint64_t id, uint64_t upto,
    uint64_t *freed)
{
	uint8_t key[16];
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	sp_put_be64(key, id);
	sp_put_be64(key + 8, 0);
	k = mv(key, 16);
	if ((rc = mdb_cursor_open(txn, s->db[DB_LOG], &c)) != 0)
		return rc;
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size == 16 && memcmp(k.mv_data, key, 8) == 0 &&
	    sp_get_be64((const uint8_t *)k.mv_data + 8) <= upto) {
		*freed += v.mv_size;
		if ((rc = mdb_cursor_del(c, 0)) == 0)
			rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int
run_log_compact(sp_store *s, MDB_txn *txn, void *arg)
{
	struct compact_arg *p = arg;
	struct acct x;
	uint64_t last, freed = 0;
	int rc;

	if ((rc = acct_load(s, txn, p->addr, &x)) != 0 ||
	    (rc = log_last_get(s, txn, x.id, &last)) != 0)
		return rc;
	if (p->upto > last)
		return EINVAL;
	if ((rc = log_del_upto(s, txn, x.id, p->upto, &freed)) != 0)
		return rc;
	acct_uncharge(&x, freed);
	return acct_save(s, txn, &x, 0);
}

int
sp_store_log_compact(sp_store *s, const char *address, uint64_t upto)
{
	struct compact_arg p = { .upto = upto };
	int rc;

	if (s == NULL)
		return EINVAL;
	if ((rc = addr_norm(address, p.addr)) != 0)
		return rc;
	return store_write(s, run_log_compact, &p);
}

/* ---- blobs ------------------------------------------------------------ */

struct blob_arg {
	char addr[SP_STORE_ADDR_MAX + 1];
	const uint8_t *id;
	uint64_t size, index, have;
	const void *data;
	size_t len;
};

/* Loads the account and checks that it references the blob. */
static int
blob_ref_check(sp_store *s, MDB_txn *txn, struct blob_arg *p,
    struct acct *x, struct blobmeta *bm)
{
	uint8_t rk[40];
	MDB_val v;
	int rc;

	if ((rc = acct_load(s, txn, p->addr, x)) != 0)
		return rc;
	sp_put_be64(rk, x->id);
	memcpy(rk + 8, p->id, 32);
	if ((rc = db_get(txn, s->db[DB_BLOBREFS], rk, 40, &v)) != 0)
		return rc;
	rc = bm_load(s, txn, p->id, bm);
	return rc == MDB_NOTFOUND ? SP_STORE_ECORRUPT : rc;
}

static int
run_blob_begin(sp_store *s, MDB_txn *txn, void *arg)
{
	struct blob_arg *p = arg;
	struct blobmeta bm = { .size = p->size };
	struct acct x;
	uint8_t rk[40];
	MDB_val v;
	int rc;

	if ((rc = acct_load(s, txn, p->addr, &x)) != 0)
		return rc;
	if ((rc = bm_load(s, txn, p->id, &bm)) != 0 && rc != MDB_NOTFOUND)
		return rc;
	if (bm.size != p->size)
		return EINVAL;
	p->have = bm.have;
	sp_put_be64(rk, x.id);
	memcpy(rk + 8, p->id, 32);
	rc = db_get(txn, s->db[DB_BLOBREFS], rk, 40, &v);
	if (rc != MDB_NOTFOUND)
		return rc; /* 0: already ours, a resumed upload */
	bm.refs++;
	if ((rc = acct_charge(&x, p->size)) != 0 ||
	    (rc = acct_save(s, txn, &x, 0)) != 0 ||
	    (rc = bm_save(s, txn, p->id, &bm)) != 0)
		return rc;
	return db_put(txn, s->db[DB_BLOBREFS], rk, 40, "", 0, 0);
}

int
sp_store_blob_begin(sp_store *s, const char *address,
    const uint8_t id[32], uint64_t size, uint64_t *have_r)
{
	struct blob_arg p = { .id = id, .size = size };
	int rc;

	if (s == NULL || id == NULL || size == 0 || size > BLOB_SIZE_MAX)
		return EINVAL;
	if ((rc = addr_norm(address, p.addr)) != 0)
		return rc;
	if ((rc = store_write(s, run_blob_begin, &p)) == 0 && have_r != NULL)
		*have_r = p.have;
	return rc;
}

static int
run_blob_chunk(sp_store *s, MDB_txn *txn, void *arg)
{
	struct blob_arg *p = arg;
	struct blobmeta bm;
	struct acct x;
	uint8_t ck[40];
	MDB_val v;
	int rc;

	if ((rc = blob_ref_check(s, txn, p, &x, &bm)) != 0)
		return rc;
	if (p->index >= blob_nchunks(bm.size) ||
	    p->len != blob_chunk_len(bm.size, p->index))
		return EINVAL;
	if (bm.flags & BLOB_COMPLETE)
		return 0; /* immutable; a late retry changes nothing */
	memcpy(ck, p->id, 32);
	sp_put_be64(ck + 32, p->index);
	if ((rc = db_get(txn, s->db[DB_BLOBS], ck, 40, &v)) == MDB_NOTFOUND) {
		bm.have++;
		rc = bm_save(s, txn, p->id, &bm);
	}
	if (rc != 0)
		return rc;
	return db_put(txn, s->db[DB_BLOBS], ck, 40, p->data, p->len, 0);
}

int
sp_store_blob_chunk(sp_store *s, const char *address,
    const uint8_t id[32], uint64_t index, const void *data, size_t len)
{
	struct blob_arg p = { .id = id, .index = index, .data = data,
	    .len = len };
	int rc;

	if (s == NULL || id == NULL || data == NULL || len == 0 ||
	    len > SP_STORE_BLOB_CHUNK)
		return EINVAL;
	if ((rc = addr_norm(address, p.addr)) != 0)
		return rc;
	return store_write(s, run_blob_chunk, &p);
}

/* BLAKE2b-256 over the chunks in order, checking each one's length. */
static int
blob_hash(sp_store *s, MDB_txn *txn, const uint8_t id[32],
    const struct blobmeta *bm, uint8_t out[32])
{
	crypto_generichash_state st;
	uint8_t key[40];
	MDB_cursor *c;
	MDB_val k, v;
	uint64_t i, n = blob_nchunks(bm->size);
	int rc;

	memcpy(key, id, 32);
	sp_put_be64(key + 32, 0);
	k = mv(key, 40);
	if ((rc = mdb_cursor_open(txn, s->db[DB_BLOBS], &c)) != 0)
		return rc;
	crypto_generichash_init(&st, NULL, 0, 32);
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	for (i = 0; i < n && rc == 0; i++) {
		sp_put_be64(key + 32, i);
		if (k.mv_size != 40 || memcmp(k.mv_data, key, 40) != 0 ||
		    v.mv_size != blob_chunk_len(bm->size, i)) {
			rc = SP_STORE_ECORRUPT; /* bm->have said all there */
			break;
		}
		crypto_generichash_update(&st, v.mv_data, v.mv_size);
		if (i + 1 < n)
			rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(c);
	crypto_generichash_final(&st, out, 32);
	return rc == MDB_NOTFOUND ? SP_STORE_ECORRUPT : rc;
}

/*
 * Hashes the whole blob inside the write transaction: the chunks cannot
 * change under the hash, at the cost of holding up the batch for as long
 * as hashing takes (about 1 ms per MiB).
 */
static int
run_blob_finish(sp_store *s, MDB_txn *txn, void *arg)
{
	struct blob_arg *p = arg;
	struct blobmeta bm;
	struct acct x;
	uint8_t h[32];
	int rc;

	if ((rc = blob_ref_check(s, txn, p, &x, &bm)) != 0)
		return rc;
	if (bm.flags & BLOB_COMPLETE)
		return 0;
	if (bm.have != blob_nchunks(bm.size))
		return SP_STORE_EINCOMPLETE;
	if ((rc = blob_hash(s, txn, p->id, &bm, h)) != 0)
		return rc;
	if (memcmp(h, p->id, 32) != 0)
		return SP_STORE_EHASH;
	bm.flags |= BLOB_COMPLETE;
	if ((rc = bm_save(s, txn, p->id, &bm)) != 0)
		return rc;
	return meta_add(s, txn, "blobs", 1);
}

int
sp_store_blob_finish(sp_store *s, const char *address,
    const uint8_t id[32])
{
	struct blob_arg p = { .id = id };
	int rc;

	if (s == NULL || id == NULL)
		return EINVAL;
	if ((rc = addr_norm(address, p.addr)) != 0)
		return rc;
	return store_write(s, run_blob_finish, &p);
}

/* ---- delivery: a whole blob and its log records in one commit -------- */

struct deliver_arg {
	struct blob_arg blob;
	struct append_arg log;
	const uint8_t *data;
	uint64_t size;
};

/*
 * The gateway's write: the body blob (begun, every chunk, finished) and
 * the records naming it, as one operation of the batch.  Either the
 * account has both or neither, so an acknowledged message never points
 * at a missing body and a failed one leaves no orphan blob.
 */
static int
run_deliver(sp_store *s, MDB_txn *txn, void *arg)
{
	struct deliver_arg *p = arg;
	struct blobmeta bm;
	uint64_t i, n = blob_nchunks(p->size);
	int rc;

	if ((rc = run_blob_begin(s, txn, &p->blob)) != 0)
		return rc;
	for (i = 0; i < n; i++) {
		p->blob.index = i;
		p->blob.data = p->data + i * SP_STORE_BLOB_CHUNK;
		p->blob.len = blob_chunk_len(p->size, i);
		if ((rc = run_blob_chunk(s, txn, &p->blob)) != 0)
			return rc;
	}
	if ((rc = bm_load(s, txn, p->blob.id, &bm)) != 0)
		return rc;
	if (!(bm.flags & BLOB_COMPLETE)) {
		bm.flags |= BLOB_COMPLETE;
		if ((rc = bm_save(s, txn, p->blob.id, &bm)) != 0 ||
		    (rc = meta_add(s, txn, "blobs", 1)) != 0)
			return rc;
	}
	return run_log_append(s, txn, &p->log);
}

int
sp_store_deliver(sp_store *s, const char *address, const uint8_t id[32],
    const void *blob, uint64_t size, const struct sp_store_rec *recs,
    size_t n, uint64_t *first_r, uint64_t *last_r)
{
	struct deliver_arg p = { .data = blob, .size = size };
	uint8_t h[32];
	size_t i;
	int rc;

	if (s == NULL || id == NULL || blob == NULL || size == 0 ||
	    size > BLOB_SIZE_MAX || recs == NULL || n == 0)
		return EINVAL;
	/* The id names the content; check it here, outside the write lock. */
	crypto_generichash(h, 32, blob, (size_t)size, NULL, 0);
	if (sodium_memcmp(h, id, 32) != 0)
		return SP_STORE_EHASH;
	for (i = 0; i < n; i++) {
		if (recs[i].data == NULL || recs[i].len == 0 ||
		    recs[i].len > SP_STORE_RECORD_MAX)
			return EINVAL;
		p.log.total += recs[i].len;
	}
	if ((rc = addr_norm(address, p.blob.addr)) != 0)
		return rc;
	memcpy(p.log.addr, p.blob.addr, sizeof(p.log.addr));
	p.blob.id = id;
	p.blob.size = size;
	p.log.expected = SP_STORE_ANY;
	p.log.recs = recs;
	p.log.n = n;
	rc = store_write(s, run_deliver, &p);
	if (rc == 0 && first_r != NULL)
		*first_r = p.log.first;
	if (rc == 0 && last_r != NULL)
		*last_r = p.log.last;
	return rc;
}

/* Loads the metadata of a finished blob; ENOENT for unfinished ones. */
static int
blob_visible(sp_store *s, MDB_txn *txn, const uint8_t id[32],
    struct blobmeta *bm)
{
	int rc;

	if ((rc = bm_load(s, txn, id, bm)) != 0)
		return rc;
	return bm->flags & BLOB_COMPLETE ? 0 : ENOENT;
}

int
sp_store_blob_stat(sp_store *s, const uint8_t id[32], uint64_t *size_r)
{
	struct blobmeta bm;
	MDB_txn *txn;
	int rc;

	if (s == NULL || id == NULL || size_r == NULL)
		return EINVAL;
	if ((rc = txn_begin(s, MDB_RDONLY, &txn)) != 0)
		return err_map(rc);
	rc = blob_visible(s, txn, id, &bm);
	txn_end(s, txn);
	if (rc == 0)
		*size_r = bm.size;
	return err_map(rc);
}

int
sp_store_blob_read(sp_store *s, const uint8_t id[32], uint64_t index,
    uint8_t **data_r, size_t *len_r)
{
	struct blobmeta bm = { 0 };
	uint8_t ck[40];
	MDB_txn *txn;
	MDB_val v;
	int rc;

	if (s == NULL || id == NULL || data_r == NULL || len_r == NULL)
		return EINVAL;
	memcpy(ck, id, 32);
	sp_put_be64(ck + 32, index);
	if ((rc = txn_begin(s, MDB_RDONLY, &txn)) != 0)
		return err_map(rc);
	if ((rc = blob_visible(s, txn, id, &bm)) == 0 &&
	    index >= blob_nchunks(bm.size))
		rc = EINVAL;
	if (rc == 0 && (rc = db_get(txn, s->db[DB_BLOBS], ck, 40, &v)) == 0)
		rc = dup_out(&v, data_r, len_r);
	else if (rc == MDB_NOTFOUND && bm.flags & BLOB_COMPLETE)
		rc = SP_STORE_ECORRUPT; /* a finished blob lacks a chunk */
	txn_end(s, txn);
	return err_map(rc);
}

static int
run_blob_unref(sp_store *s, MDB_txn *txn, void *arg)
{
	struct blob_arg *p = arg;
	struct acct x;
	uint8_t rk[40];
	uint64_t size;
	int rc;

	if ((rc = acct_load(s, txn, p->addr, &x)) != 0)
		return rc;
	sp_put_be64(rk, x.id);
	memcpy(rk + 8, p->id, 32);
	if ((rc = db_del(txn, s->db[DB_BLOBREFS], rk, 40)) != 0 ||
	    (rc = blob_drop(s, txn, p->id, &size)) != 0)
		return rc;
	acct_uncharge(&x, size);
	return acct_save(s, txn, &x, 0);
}

int
sp_store_blob_unref(sp_store *s, const char *address,
    const uint8_t id[32])
{
	struct blob_arg p = { .id = id };
	int rc;

	if (s == NULL || id == NULL)
		return EINVAL;
	if ((rc = addr_norm(address, p.addr)) != 0)
		return rc;
	return store_write(s, run_blob_unref, &p);
}

/* ---- sessions --------------------------------------------------------- */

/* Value: acct id, created, last_seen, device len, address len, device,
 * address. */
static int
sess_encode(const struct sp_store_session *ss, uint64_t id, struct buf *b)
{
	uint8_t hdr[SESS_FIXED];
	size_t dl = strlen(ss->device), al = strlen(ss->address);
	int rc;

	sp_put_be64(hdr, id);
	sp_put_be64(hdr + 8, ss->created);
	sp_put_be64(hdr + 16, ss->last_seen);
	hdr[24] = (uint8_t)dl;
	hdr[25] = (uint8_t)al;
	if ((rc = buf_add(b, hdr, sizeof(hdr))) != 0 ||
	    (rc = buf_add(b, ss->device, dl)) != 0)
		return rc;
	return buf_add(b, ss->address, al);
}

static int
sess_decode(const uint8_t token[32], const MDB_val *v,
    struct sp_store_session *ss, uint64_t *id_r)
{
	const uint8_t *p = v->mv_data;
	size_t dl, al;

	if (v->mv_size < SESS_FIXED)
		return SP_STORE_ECORRUPT;
	dl = p[24];
	al = p[25];
	if (dl >= sizeof(ss->device) || al > SP_STORE_ADDR_MAX ||
	    v->mv_size != SESS_FIXED + dl + al)
		return SP_STORE_ECORRUPT;
	memset(ss, 0, sizeof(*ss));
	memcpy(ss->token_hash, token, 32);
	*id_r = sp_get_be64(p);
	ss->created = sp_get_be64(p + 8);
	ss->last_seen = sp_get_be64(p + 16);
	memcpy(ss->device, p + SESS_FIXED, dl);
	memcpy(ss->address, p + SESS_FIXED + dl, al);
	return 0;
}

static void
sessidx_key(uint8_t k[48], uint64_t id, uint64_t created,
    const uint8_t token[32])
{
	sp_put_be64(k, id);
	sp_put_be64(k + 8, created);
	memcpy(k + 16, token, 32);
}

/* Removes token's session and its index entry; MDB_NOTFOUND if none. */
static int
sess_remove(sp_store *s, MDB_txn *txn, const uint8_t token[32])
{
	struct sp_store_session old;
	uint8_t ik[48];
	uint64_t id;
	MDB_val v;
	int rc;

	if ((rc = db_get(txn, s->db[DB_SESSIONS], token, 32, &v)) != 0 ||
	    (rc = sess_decode(token, &v, &old, &id)) != 0)
		return rc;
	sessidx_key(ik, id, old.created, token);
	if ((rc = db_del(txn, s->db[DB_SESSIDX], ik, 48)) != 0)
		return rc == MDB_NOTFOUND ? SP_STORE_ECORRUPT : rc;
	return db_del(txn, s->db[DB_SESSIONS], token, 32);
}

static int
run_session_put(sp_store *s, MDB_txn *txn, void *arg)
{
	const struct sp_store_session *ss = arg;
	struct buf b = { 0 };
	struct acct x;
	uint8_t ik[48];
	int rc;

	if ((rc = acct_load(s, txn, ss->address, &x)) != 0)
		return rc;
	if ((rc = sess_remove(s, txn, ss->token_hash)) != 0 &&
	    rc != MDB_NOTFOUND)
		return rc;
	if ((rc = sess_encode(ss, x.id, &b)) != 0)
		goto out_free;
	rc = db_put(txn, s->db[DB_SESSIONS], ss->token_hash, 32, b.p, b.len,
	    0);
	sessidx_key(ik, x.id, ss->created, ss->token_hash);
	if (rc == 0)
		rc = db_put(txn, s->db[DB_SESSIDX], ik, 48, "", 0, 0);
out_free:
	free(b.p);
	return rc;
}

int
sp_store_session_put(sp_store *s, const struct sp_store_session *ss)
{
	struct sp_store_session n;
	int rc;

	if (s == NULL || ss == NULL ||
	    memchr(ss->device, '\0', sizeof(ss->device)) == NULL ||
	    memchr(ss->address, '\0', sizeof(ss->address)) == NULL)
		return EINVAL;
	n = *ss;
	if ((rc = addr_norm(ss->address, n.address)) != 0)
		return rc;
	return store_write(s, run_session_put, &n);
}

int
sp_store_session_get(sp_store *s, const uint8_t token_hash[32],
    struct sp_store_session *ss_r)
{
	MDB_txn *txn;
	MDB_val v;
	uint64_t id;
	int rc;

	if (s == NULL || token_hash == NULL || ss_r == NULL)
		return EINVAL;
	if ((rc = txn_begin(s, MDB_RDONLY, &txn)) != 0)
		return err_map(rc);
	rc = db_get(txn, s->db[DB_SESSIONS], token_hash, 32, &v);
	if (rc == 0)
		rc = sess_decode(token_hash, &v, ss_r, &id);
	txn_end(s, txn);
	return err_map(rc);
}

static int
run_session_delete(sp_store *s, MDB_txn *txn, void *arg)
{
	return sess_remove(s, txn, arg);
}

int
sp_store_session_delete(sp_store *s, const uint8_t token_hash[32])
{
	uint8_t token[32];

	if (s == NULL || token_hash == NULL)
		return EINVAL;
	memcpy(token, token_hash, sizeof(token));
	return store_write(s, run_session_delete, token);
}

/* Where a paged session listing stands. */
struct sess_walk {
	const char *addr;
	uint64_t id;
	uint8_t after[48]; /* last index key copied */
	int started, done;
};

static int
sess_copy(sp_store *s, MDB_txn *txn, MDB_cursor *c, struct sess_walk *w,
    struct sp_store_session *page, size_t *n_r)
{
	MDB_val k, v;
	uint64_t id;
	int rc;

	sp_put_be64(w->after, w->id);
	k = mv(w->after, w->started ? 48 : 8);
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	if (rc == 0 && w->started && k.mv_size == 48 &&
	    memcmp(k.mv_data, w->after, 48) == 0)
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	for (; rc == 0 && *n_r < PAGE_ITEMS;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size != 48 || memcmp(k.mv_data, w->after, 8) != 0)
			break;
		memcpy(w->after, k.mv_data, 48);
		w->started = 1;
		if ((rc = db_get(txn, s->db[DB_SESSIONS], w->after + 16, 32,
		    &v)) != 0 ||
		    (rc = sess_decode(w->after + 16, &v, &page[*n_r],
		    &id)) != 0)
			return rc == MDB_NOTFOUND ? SP_STORE_ECORRUPT : rc;
		(*n_r)++;
	}
	w->done = *n_r < PAGE_ITEMS;
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int
sess_page(sp_store *s, struct sess_walk *w, struct sp_store_session *page,
    size_t *n_r)
{
	MDB_txn *txn;
	MDB_cursor *c;
	struct acct x;
	int rc;

	*n_r = 0;
	if ((rc = txn_begin(s, MDB_RDONLY, &txn)) != 0)
		return rc;
	if (w->id == 0 && (rc = acct_load(s, txn, w->addr, &x)) == 0)
		w->id = x.id;
	if (rc == 0 &&
	    (rc = mdb_cursor_open(txn, s->db[DB_SESSIDX], &c)) == 0) {
		rc = sess_copy(s, txn, c, w, page, n_r);
		mdb_cursor_close(c);
	}
	txn_end(s, txn);
	return rc;
}

int
sp_store_session_list(sp_store *s, const char *address,
    int (*fn)(const struct sp_store_session *ss, void *arg), void *arg)
{
	char addr[SP_STORE_ADDR_MAX + 1];
	struct sess_walk w = { .addr = addr };
	struct sp_store_session *page;
	size_t i, n;
	int rc;

	if (s == NULL || fn == NULL)
		return EINVAL;
	if ((rc = addr_norm(address, addr)) != 0)
		return rc;
	if ((page = calloc(PAGE_ITEMS, sizeof(*page))) == NULL)
		return ENOMEM;
	do {
		if ((rc = err_map(sess_page(s, &w, page, &n))) != 0)
			break;
		for (i = 0; i < n && rc == 0; i++)
			rc = fn(&page[i], arg);
	} while (rc == 0 && !w.done);
	free(page);
	return rc;
}

/* ---- the gateway's outbound queue -------------------------------------- */

struct queue_arg {
	uint8_t id[16];
	uint64_t due;
	const void *data;
	size_t len;
};

/* Removes entry id from both queue databases; MDB_NOTFOUND if none. */
static int
queue_remove(sp_store *s, MDB_txn *txn, const uint8_t id[16])
{
	uint8_t qk[24];
	MDB_val v;
	int rc;

	if ((rc = db_get(txn, s->db[DB_QUEUEID], id, 16, &v)) != 0)
		return rc;
	if (v.mv_size != 8)
		return SP_STORE_ECORRUPT;
	memcpy(qk, v.mv_data, 8);
	memcpy(qk + 8, id, 16);
	if ((rc = db_del(txn, s->db[DB_QUEUE], qk, 24)) != 0)
		return rc == MDB_NOTFOUND ? SP_STORE_ECORRUPT : rc;
	return db_del(txn, s->db[DB_QUEUEID], id, 16);
}

static int
run_queue_put(sp_store *s, MDB_txn *txn, void *arg)
{
	struct queue_arg *p = arg;
	uint8_t qk[24];
	int rc;

	if ((rc = queue_remove(s, txn, p->id)) != 0 && rc != MDB_NOTFOUND)
		return rc;
	sp_put_be64(qk, p->due);
	memcpy(qk + 8, p->id, 16);
	if ((rc = db_put(txn, s->db[DB_QUEUE], qk, 24, p->data, p->len,
	    0)) != 0)
		return rc;
	return db_put(txn, s->db[DB_QUEUEID], p->id, 16, qk, 8, 0);
}

/* An existing id is rescheduled and its entry replaced. */
int
sp_store_queue_put(sp_store *s, const uint8_t id[16], uint64_t due,
    const void *data, size_t len)
{
	struct queue_arg p = { .due = due, .data = data, .len = len };

	if (s == NULL || id == NULL || !value_ok(data, len))
		return EINVAL;
	memcpy(p.id, id, 16);
	return store_write(s, run_queue_put, &p);
}

static int
run_queue_delete(sp_store *s, MDB_txn *txn, void *arg)
{
	return queue_remove(s, txn, arg);
}

int
sp_store_queue_delete(sp_store *s, const uint8_t id[16])
{
	uint8_t qid[16];

	if (s == NULL || id == NULL)
		return EINVAL;
	memcpy(qid, id, sizeof(qid));
	return store_write(s, run_queue_delete, qid);
}

/* ---- invites ------------------------------------------------------------ */

static int
run_invite_put(sp_store *s, MDB_txn *txn, void *arg)
{
	struct invite_arg *p = arg;
	uint8_t v[8];

	sp_put_be64(v, p->t);
	return db_put(txn, s->db[DB_INVITES], p->hash, 32, v, 8, 0);
}

int
sp_store_invite_put(sp_store *s, const uint8_t hash[32], uint64_t expires)
{
	struct invite_arg p = { .t = expires };

	if (s == NULL || hash == NULL)
		return EINVAL;
	memcpy(p.hash, hash, 32);
	return store_write(s, run_invite_put, &p);
}

/* One use: the invite is deleted in the same transaction that finds it,
 * so two registrations racing for one invite cannot both succeed. */
static int
run_invite_take(sp_store *s, MDB_txn *txn, void *arg)
{
	struct invite_arg *p = arg;
	MDB_val v;
	int rc;

	if ((rc = db_get(txn, s->db[DB_INVITES], p->hash, 32, &v)) != 0)
		return rc;
	if (v.mv_size != 8)
		return SP_STORE_ECORRUPT;
	if (sp_get_be64(v.mv_data) <= p->t)
		return MDB_NOTFOUND;    /* expired: as if it never was */
	return db_del(txn, s->db[DB_INVITES], p->hash, 32);
}

int
sp_store_invite_take(sp_store *s, const uint8_t hash[32], uint64_t now)
{
	struct invite_arg p = { .t = now };

	if (s == NULL || hash == NULL)
		return EINVAL;
	memcpy(p.hash, hash, 32);
	return store_write(s, run_invite_take, &p);
}

/* Where a paged due-scan stands; max 0 means no limit. */
struct queue_walk {
	uint64_t now;
	size_t max, count;
	uint8_t after[24];
	int started, done;
};

/* Copies due entries into b as key (due || id), len, data. */
static int
queue_copy(MDB_cursor *c, struct queue_walk *w, struct buf *b)
{
	MDB_val k = mv(w->after, w->started ? 24 : 0), v;
	uint8_t len[8];
	int rc;

	rc = mdb_cursor_get(c, &k, &v, w->started ? MDB_SET_RANGE : MDB_FIRST);
	if (rc == 0 && w->started && k.mv_size == 24 &&
	    memcmp(k.mv_data, w->after, 24) == 0)
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	for (; rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size != 24)
			return SP_STORE_ECORRUPT;
		if (sp_get_be64(k.mv_data) > w->now ||
		    (w->max && w->count == w->max))
			break;
		if (b->len >= PAGE_BYTES)
			return 0;
		memcpy(w->after, k.mv_data, 24);
		w->started = 1;
		w->count++;
		sp_put_be64(len, v.mv_size);
		if ((rc = buf_add(b, w->after, 24)) != 0 ||
		    (rc = buf_add(b, len, 8)) != 0 ||
		    (rc = buf_add(b, v.mv_data, v.mv_size)) != 0)
			return rc;
	}
	w->done = 1;
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int
queue_page(sp_store *s, struct queue_walk *w, struct buf *b)
{
	MDB_txn *txn;
	MDB_cursor *c;
	int rc;

	if ((rc = txn_begin(s, MDB_RDONLY, &txn)) != 0)
		return rc;
	if ((rc = mdb_cursor_open(txn, s->db[DB_QUEUE], &c)) == 0) {
		rc = queue_copy(c, w, b);
		mdb_cursor_close(c);
	}
	txn_end(s, txn);
	return rc;
}

int
sp_store_queue_due(sp_store *s, uint64_t now, size_t max,
    int (*fn)(const uint8_t id[16], uint64_t due, const void *data,
    size_t len, void *arg), void *arg)
{
	struct queue_walk w = { .now = now, .max = max };
	struct buf b = { 0 };
	const uint8_t *p;
	size_t len;
	int rc;

	if (s == NULL || fn == NULL)
		return EINVAL;
	do {
		b.len = 0;
		if ((rc = err_map(queue_page(s, &w, &b))) != 0)
			break;
		for (p = b.p; rc == 0 && p < b.p + b.len; p += 32 + len) {
			len = (size_t)sp_get_be64(p + 24);
			rc = fn(p + 8, sp_get_be64(p), p + 32, len, arg);
		}
	} while (rc == 0 && !w.done);
	free(b.p);
	return rc;
}

/* ---- operation -------------------------------------------------------- */

/*
 * Pages on LMDB's free list (database 0), counted as mdb_stat -f does:
 * each record is a page-number list whose first element is its length.
 */
static int
free_pages(MDB_txn *txn, uint64_t *n_r)
{
	MDB_cursor *c;
	MDB_val k, v;
	size_t n;
	int rc;

	*n_r = 0;
	if ((rc = mdb_cursor_open(txn, 0, &c)) != 0)
		return rc;
	while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
		if (v.mv_size < sizeof(n)) {
			rc = SP_STORE_ECORRUPT;
			break;
		}
		memcpy(&n, v.mv_data, sizeof(n)); /* may be unaligned */
		*n_r += n;
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int
stat_counts(sp_store *s, MDB_txn *txn, struct sp_store_stat *st)
{
	MDB_stat ms;
	int rc;

	if ((rc = mdb_stat(txn, s->db[DB_ACCOUNTS], &ms)) != 0)
		return rc;
	st->accounts = ms.ms_entries;
	if ((rc = mdb_stat(txn, s->db[DB_LOG], &ms)) != 0)
		return rc;
	st->records = ms.ms_entries;
	return meta_get64(s, txn, "blobs", &st->blobs);
}

int
sp_store_stat(sp_store *s, struct sp_store_stat *st_r)
{
	struct sp_store_stat st;
	MDB_envinfo info;
	MDB_stat es;
	MDB_txn *txn;
	uint64_t nfree = 0;
	int rc;

	if (s == NULL || st_r == NULL)
		return EINVAL;
	memset(&st, 0, sizeof(st));
	if ((rc = txn_begin(s, MDB_RDONLY, &txn)) != 0)
		return err_map(rc);
	(void)mdb_env_info(s->env, &info);
	(void)mdb_env_stat(s->env, &es);
	if ((rc = stat_counts(s, txn, &st)) == 0)
		rc = free_pages(txn, &nfree);
	txn_end(s, txn);
	st.map_size = info.me_mapsize;
	st.used_bytes = (info.me_last_pgno + 1 - nfree) * es.ms_psize;
	pthread_mutex_lock(&s->mu);
	st.commits = s->commits;
	st.batched_writes = s->batched;
	pthread_mutex_unlock(&s->mu);
	if (rc == 0)
		*st_r = st;
	return err_map(rc);
}

/* Creates dir 0700, or accepts an existing empty one. */
static int
backup_dir(const char *path)
{
	struct dirent *e;
	DIR *d;
	int rc = 0;

	if (mkdir(path, 0700) == 0)
		return 0;
	if (errno != EEXIST)
		return errno;
	if ((d = opendir(path)) == NULL)
		return errno;
	while (rc == 0 && (e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			rc = ENOTEMPTY;
	closedir(d);
	return rc;
}

static int
fsync_path(const char *path)
{
	int fd, rc = 0;

	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return errno;
	if (fsync(fd) != 0)
		rc = errno;
	(void)close(fd);
	return rc;
}

static int
backup_copy(sp_store *s, int fd)
{
	int rc;

	for (;;) {
		pthread_rwlock_rdlock(&s->maplock);
		rc = s->broken ? EIO :
		    mdb_env_copyfd2(s->env, fd, MDB_CP_COMPACT);
		pthread_rwlock_unlock(&s->maplock);
		if (rc != MDB_MAP_RESIZED)
			return rc;
		if ((rc = map_adopt(s)) != 0)
			return rc;
		if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0)
			return errno;
	}
}

/*
 * The copy runs in one read transaction (LMDB's compacting copy), so it
 * is a consistent snapshot while writers go on.  It holds maplock shared
 * throughout: should the map need to grow meanwhile, the growing batch
 * waits for the copy, and so do reads that arrive after it (maplock
 * prefers the resize).  We open the file ourselves (rather than calling
 * mdb_env_copy2) so that it gets mode 0600.
 */
int
sp_store_backup(sp_store *s, const char *path)
{
	char file[4096];
	int fd, rc;

	if (s == NULL || path == NULL)
		return EINVAL;
	if ((size_t)snprintf(file, sizeof(file), "%s/data.mdb", path) >=
	    sizeof(file))
		return ENAMETOOLONG;
	if ((rc = backup_dir(path)) != 0)
		return rc;
	fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno;
	rc = backup_copy(s, fd);
	if (rc == 0 && fsync(fd) != 0)
		rc = errno;
	if (close(fd) != 0 && rc == 0)
		rc = errno;
	if (rc == 0)
		rc = fsync_path(path);
	if (rc != 0)
		(void)unlink(file);
	return err_map(rc);
}

/* ---- second factors ----------------------------------------------------- */

struct factor_arg {
	char addr[SP_STORE_ADDR_MAX + 1];
	uint8_t key[8 + 1 + SP_STORE_FACTOR_ID_MAX];
	size_t klen;
	const void *old, *val;
	size_t old_len, len;
	int excl;
};

/* The key needs the account's number, so it is completed in the txn. */
static int
factor_key(sp_store *s, MDB_txn *txn, struct factor_arg *p)
{
	struct acct x;
	int rc;

	if ((rc = acct_load(s, txn, p->addr, &x)) != 0)
		return rc;
	sp_put_be64(p->key, x.id);
	return 0;
}

static int
factor_arg_init(struct factor_arg *p, const char *address, unsigned kind,
    const void *id, size_t id_len)
{
	int rc;

	if (kind == 0 || kind > 255 || id_len > SP_STORE_FACTOR_ID_MAX ||
	    (id_len > 0 && id == NULL))
		return EINVAL;
	if ((rc = addr_norm(address, p->addr)) != 0)
		return rc;
	p->key[8] = (uint8_t)kind;
	if (id_len > 0)
		memcpy(p->key + 9, id, id_len);
	p->klen = 9 + id_len;
	return 0;
}

static int
run_factor_put(sp_store *s, MDB_txn *txn, void *arg)
{
	struct factor_arg *p = arg;
	MDB_val v;
	int rc;

	if ((rc = factor_key(s, txn, p)) != 0)
		return rc;
	if (p->old != NULL || p->old_len > 0) {
		/* Compare and swap: counters and used TOTP steps only move
		 * forward even when two logins race. */
		if ((rc = db_get(txn, s->db[DB_FACTORS], p->key, p->klen,
		    &v)) != 0)
			return rc;
		if (v.mv_size != p->old_len ||
		    memcmp(v.mv_data, p->old, p->old_len) != 0)
			return SP_STORE_ECONFLICT;
	}
	return db_put(txn, s->db[DB_FACTORS], p->key, p->klen, p->val, p->len,
	    p->excl ? MDB_NOOVERWRITE : 0);
}

int
sp_store_factor_put(sp_store *s, const char *address, unsigned kind,
    const void *id, size_t id_len, const void *val, size_t len, int excl)
{
	struct factor_arg p = { .val = val, .len = len, .excl = excl };
	int rc;

	if (s == NULL || val == NULL || len == 0 ||
	    len > SP_STORE_FACTOR_VALUE_MAX)
		return EINVAL;
	if ((rc = factor_arg_init(&p, address, kind, id, id_len)) != 0)
		return rc;
	return store_write(s, run_factor_put, &p);
}

int
sp_store_factor_swap(sp_store *s, const char *address, unsigned kind,
    const void *id, size_t id_len, const void *old, size_t old_len,
    const void *val, size_t len)
{
	struct factor_arg p = { .old = old, .old_len = old_len, .val = val,
	    .len = len };
	int rc;

	if (s == NULL || val == NULL || len == 0 || old == NULL ||
	    old_len == 0 || len > SP_STORE_FACTOR_VALUE_MAX)
		return EINVAL;
	if ((rc = factor_arg_init(&p, address, kind, id, id_len)) != 0)
		return rc;
	return store_write(s, run_factor_put, &p);
}

int
sp_store_factor_get(sp_store *s, const char *address, unsigned kind,
    const void *id, size_t id_len, uint8_t **val_r, size_t *len_r)
{
	struct factor_arg p = { 0 };
	MDB_txn *txn;
	MDB_val v;
	int rc;

	if (s == NULL || val_r == NULL || len_r == NULL)
		return EINVAL;
	*val_r = NULL;
	*len_r = 0;
	if ((rc = factor_arg_init(&p, address, kind, id, id_len)) != 0)
		return rc;
	if ((rc = txn_begin(s, MDB_RDONLY, &txn)) != 0)
		return err_map(rc);
	if ((rc = factor_key(s, txn, &p)) == 0 &&
	    (rc = db_get(txn, s->db[DB_FACTORS], p.key, p.klen, &v)) == 0)
		rc = dup_out(&v, val_r, len_r);
	txn_end(s, txn);
	return err_map(rc);
}

/* Deleting is how a one-time code is used: exactly one caller gets 0. */
static int
run_factor_delete(sp_store *s, MDB_txn *txn, void *arg)
{
	struct factor_arg *p = arg;
	int rc;

	if ((rc = factor_key(s, txn, p)) != 0)
		return rc;
	if (p->klen > 9)
		return db_del(txn, s->db[DB_FACTORS], p->key, p->klen);
	return del_prefix(s, txn, s->db[DB_FACTORS], p->key, 9, NULL, NULL);
}

int
sp_store_factor_delete(sp_store *s, const char *address, unsigned kind,
    const void *id, size_t id_len)
{
	struct factor_arg p = { 0 };
	int rc;

	if (s == NULL)
		return EINVAL;
	if ((rc = factor_arg_init(&p, address, kind, id, id_len)) != 0)
		return rc;
	return store_write(s, run_factor_delete, &p);
}

/* Factors are few per account (the sync server allows
 * SP_STORE_FACTORS_MAX): one read transaction copies them all. */
int
sp_store_factor_list(sp_store *s, const char *address,
    int (*fn)(unsigned kind, const uint8_t *id, size_t id_len,
    const uint8_t *val, size_t len, void *arg), void *arg)
{
	struct factor_arg p = { 0 };
	struct buf b = { 0 };
	MDB_cursor *c = NULL;
	MDB_txn *txn;
	MDB_val k, v;
	size_t off, n = 0;
	int rc;

	if (s == NULL || fn == NULL)
		return EINVAL;
	if ((rc = factor_arg_init(&p, address, 1, NULL, 0)) != 0)
		return rc;
	if ((rc = txn_begin(s, MDB_RDONLY, &txn)) != 0)
		return err_map(rc);
	if ((rc = factor_key(s, txn, &p)) != 0 ||
	    (rc = mdb_cursor_open(txn, s->db[DB_FACTORS], &c)) != 0)
		goto out_txn;
	k = mv(p.key, 8);
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size > 8 && memcmp(k.mv_data, p.key, 8) == 0) {
		uint8_t hdr[4];

		/* Values fit the 16-bit lengths (VALUE_MAX); a list past
		 * what any caller writes means a damaged database. */
		if (n++ == SP_STORE_FACTORS_MAX * 2 ||
		    v.mv_size > SP_STORE_FACTOR_VALUE_MAX) {
			rc = SP_STORE_ECORRUPT;
			break;
		}
		hdr[0] = (uint8_t)((k.mv_size - 8) >> 8);
		hdr[1] = (uint8_t)(k.mv_size - 8);
		hdr[2] = (uint8_t)(v.mv_size >> 8);
		hdr[3] = (uint8_t)v.mv_size;
		if ((rc = buf_add(&b, hdr, 4)) != 0 ||
		    (rc = buf_add(&b, (uint8_t *)k.mv_data + 8,
		    k.mv_size - 8)) != 0 ||
		    (rc = buf_add(&b, v.mv_data, v.mv_size)) != 0)
			break;
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
	mdb_cursor_close(c);
out_txn:
	txn_end(s, txn);
	rc = err_map(rc);
	/* Callbacks run outside the transaction (see the top comment). */
	for (off = 0; rc == 0 && off < b.len;) {
		size_t kl = (size_t)b.p[off] << 8 | b.p[off + 1];
		size_t vl = (size_t)b.p[off + 2] << 8 | b.p[off + 3];
		const uint8_t *kp = b.p + off + 4;

		rc = fn(kp[0], kp + 1, kl - 1, kp + kl, vl, arg);
		off += 4 + kl + vl;
	}
	free(b.p);
	return rc;
}
