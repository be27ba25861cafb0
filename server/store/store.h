/*
 * The store: everything the server keeps, behind one narrow interface.
 *
 * This header is the seam where a distributed engine (Ceph RADOS, S3 for
 * blobs) can later replace the embedded LMDB default, so nothing here names
 * an LMDB type and every result is copied out to the caller.  Every value
 * the store holds is opaque to it: vaults, key sets and log records are
 * client-encrypted; only account addresses, public keys, sizes and times are
 * readable (docs/threat-model.md, "What the server sees").
 *
 * Conventions (LMDB-shaped): opaque handle, every call returns 0, a positive
 * errno (ENOENT not found, EEXIST exists, ENOSPC storage full, EINVAL bad
 * argument, EIO) or an SP_STORE_E* code; sp_store_strerror() names them.
 * Memory returned through *_r pointers is malloc()'d and the caller's.
 *
 * Threads and durability: every function may be called from any thread at
 * once.  Writes are synchronous and durable: when a write returns 0 its
 * transaction has committed to disk (fsync), so the caller may acknowledge.
 * Writers that arrive while a commit is under way are batched into the next
 * transaction (group commit: one fsync for the whole batch), each still
 * returning only after that commit.  Readers never block writers.
 */
#ifndef SP_SERVER_STORE_H
#define SP_SERVER_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/error.h"

typedef struct sp_store sp_store;

enum {
	SP_STORE_ECONFLICT = -32200, /* log append: expected_last mismatch */
	SP_STORE_EQUOTA,             /* account quota exceeded */
	SP_STORE_ECORRUPT,           /* the database fails its own checks */
	SP_STORE_EINCOMPLETE,        /* blob upload not finished */
	SP_STORE_EHASH,              /* blob content does not match its id */
	SP_STORE_EINVITE,            /* invite unknown, used or expired */
	SP_STORE_ELAST
};

#define SP_STORE_ADDR_MAX 254       /* RFC 5321 path limit */
#define SP_STORE_ANY UINT64_MAX     /* log append without a check */
#define SP_STORE_BLOB_CHUNK (64 * 1024)
#define SP_STORE_RECORD_MAX (1024 * 1024)

struct sp_store_opts {
	uint64_t map_initial;  /* bytes; 0 = 64 MiB.  Grows on demand. */
	uint64_t map_max;      /* bytes; 0 = 1 TiB.  ENOSPC beyond this. */
	int no_sync;           /* tests and benchmarks only: skip fsync */
};

/* Opens (creating if needed) the store in directory dir. */
int sp_store_open(const char *dir, const struct sp_store_opts *o,
    sp_store **s_r);
/* Waits for writes in flight, then closes; accepts NULL. */
void sp_store_close(sp_store *s);
const char *sp_store_strerror(int err);

/* ---- accounts ---------------------------------------------------------- */

#define SP_STORE_ACCT_DISABLED 0x1u
#define SP_STORE_ACCT_ENCRYPTED_ONLY 0x2u /* SUBMIT refused: policy says
                                           * mail leaves only end-to-end
                                           * encrypted */
#define SP_STORE_ACCT_KNOWN (SP_STORE_ACCT_DISABLED | \
	SP_STORE_ACCT_ENCRYPTED_ONLY)  /* other bits are refused (EINVAL) */

struct sp_store_account {
	char address[SP_STORE_ADDR_MAX + 1]; /* lower-case, NUL-terminated */
	uint8_t auth_pk[32];                 /* Ed25519 login key (public) */
	uint8_t kdf_params[25];              /* crypto/kdf.h wire form */
	uint32_t flags;                      /* SP_STORE_ACCT_* */
	uint64_t created;                    /* seconds since the epoch */
	uint64_t quota_bytes;                /* 0 = unlimited */
	uint64_t used_bytes;                 /* log records + blobs */
};

/*
 * Creates an account with its vault and its public key set (the signed
 * directory entry).  EEXIST if the address is taken.
 */
int sp_store_account_create(sp_store *s, const struct sp_store_account *a,
    const void *vault, size_t vault_len, const void *pubkeys,
    size_t pubkeys_len);
/*
 * The same, consuming a registration invite (BLAKE2b-256 of the token) in
 * the same transaction: SP_STORE_EINVITE if it is unknown, used or expired
 * at now (checked before the address, so a caller without an invite learns
 * nothing about it); on any failure the invite stays unused.
 */
int sp_store_account_create_invited(sp_store *s,
    const struct sp_store_account *a, const void *vault, size_t vault_len,
    const void *pubkeys, size_t pubkeys_len, const uint8_t *invite_hash,
    uint64_t now);
/* ENOENT if there is no such account. */
int sp_store_account_get(sp_store *s, const char *address,
    struct sp_store_account *a_r);
/* Replaces auth_pk, kdf_params, flags and quota_bytes (not used_bytes). */
int sp_store_account_update(sp_store *s, const struct sp_store_account *a);
/* The operator's changes: flags or quota alone, read-modify-write in one
 * transaction, so a concurrent password change (sp_store_vault_put) is
 * never overwritten with an old login key.  ENOENT for no such account. */
int sp_store_account_set_flags(sp_store *s, const char *address,
    uint32_t flags);
int sp_store_account_set_quota(sp_store *s, const char *address,
    uint64_t quota_bytes);
/* Deletes the account, its vault, keys, log, sessions and its blob refs. */
int sp_store_account_delete(sp_store *s, const char *address);
/* Calls fn for each account in address order; fn returning non-zero stops
 * the walk and that value is returned. */
int sp_store_account_list(sp_store *s,
    int (*fn)(const struct sp_store_account *a, void *arg), void *arg);

/* ---- vault and key directory ------------------------------------------ */

int sp_store_vault_get(sp_store *s, const char *address, uint8_t **vault_r,
    size_t *len_r);
/* Password change: the new vault, auth key and KDF parameters in one
 * transaction. */
int sp_store_vault_put(sp_store *s, const char *address, const void *vault,
    size_t len, const uint8_t auth_pk[32], const uint8_t kdf_params[25]);
int sp_store_pubkeys_get(sp_store *s, const char *address, uint8_t **keys_r,
    size_t *len_r);
int sp_store_pubkeys_put(sp_store *s, const char *address, const void *keys,
    size_t len);

/* ---- the per-account log ---------------------------------------------- */

struct sp_store_rec {
	const void *data;
	size_t len;          /* 1..SP_STORE_RECORD_MAX */
};

/*
 * Appends n records as one unit.  If expected_last is not SP_STORE_ANY and
 * the account's last sequence number differs, nothing is written and the
 * result is SP_STORE_ECONFLICT (with *last_r set to the real last).
 * Sequence numbers start at 1 and have no gaps.  On success *first_r is
 * the sequence number of the first record and *last_r of the last.
 * SP_STORE_EQUOTA if the account's quota would be exceeded.
 */
int sp_store_log_append(sp_store *s, const char *address,
    uint64_t expected_last, const struct sp_store_rec *recs, size_t n,
    uint64_t *first_r, uint64_t *last_r);

/* The account's last sequence number (0 for an empty log). */
int sp_store_log_last(sp_store *s, const char *address, uint64_t *last_r);

/*
 * Calls fn for records with seq >= from, in order, until max_records or
 * max_bytes (of record data) would be passed (at least one record is
 * delivered if any exists), or fn returns non-zero.  data is valid only
 * during the call.  Also reports the log's last seq in *last_r.
 */
int sp_store_log_read(sp_store *s, const char *address, uint64_t from,
    size_t max_records, size_t max_bytes,
    int (*fn)(uint64_t seq, const void *data, size_t len, void *arg),
    void *arg, uint64_t *last_r);

/*
 * Replaces every record with seq <= upto by nothing: a client that wrote a
 * snapshot record at seq upto+1 may drop what it summarises.  Sequence
 * numbers are never reused.
 */
int sp_store_log_compact(sp_store *s, const char *address, uint64_t upto);

/* ---- blobs: immutable, content-addressed, reference-counted ----------- */

/*
 * A blob's id is BLAKE2b-256 of its bytes (the ciphertext).  Uploads are
 * chunked and resumable: begin declares the total size; chunks of
 * SP_STORE_BLOB_CHUNK bytes (the last may be shorter) are written by index
 * in any order and any number of times; finish checks that every chunk is
 * present and the hash matches, then makes the blob visible with one
 * reference held by address.  Beginning an upload of a blob that already
 * exists just adds a reference (and finish is then a no-op).
 * *have_r (may be NULL) receives how many chunks are already stored, so a
 * client can resume.
 */
int sp_store_blob_begin(sp_store *s, const char *address,
    const uint8_t id[32], uint64_t size, uint64_t *have_r);
int sp_store_blob_chunk(sp_store *s, const char *address,
    const uint8_t id[32], uint64_t index, const void *data, size_t len);
int sp_store_blob_finish(sp_store *s, const char *address,
    const uint8_t id[32]);
/* Size of a finished blob; ENOENT otherwise. */
int sp_store_blob_stat(sp_store *s, const uint8_t id[32], uint64_t *size_r);
/* Copies chunk index of a finished blob. */
int sp_store_blob_read(sp_store *s, const uint8_t id[32], uint64_t index,
    uint8_t **data_r, size_t *len_r);
/* Drops address's reference; the blob's bytes go with the last one. */
int sp_store_blob_unref(sp_store *s, const char *address,
    const uint8_t id[32]);

/*
 * Delivery (the gateway): stores a whole blob of size bytes (its id must
 * be BLAKE2b-256 of blob: SP_STORE_EHASH otherwise) with a reference
 * held by address, and appends the n records to address's log, all in
 * one durable commit: the account gets both or neither.  Results as for
 * sp_store_blob_begin and sp_store_log_append (SP_STORE_EQUOTA, ENOENT).
 */
int sp_store_deliver(sp_store *s, const char *address, const uint8_t id[32],
    const void *blob, uint64_t size, const struct sp_store_rec *recs,
    size_t n, uint64_t *first_r, uint64_t *last_r);

/* ---- sessions (server login sessions; the token is stored hashed) ------ */

struct sp_store_session {
	uint8_t token_hash[32];
	char address[SP_STORE_ADDR_MAX + 1];
	char device[64];
	uint64_t created, last_seen;
};

int sp_store_session_put(sp_store *s, const struct sp_store_session *ss);
int sp_store_session_get(sp_store *s, const uint8_t token_hash[32],
    struct sp_store_session *ss_r);
int sp_store_session_delete(sp_store *s, const uint8_t token_hash[32]);
/* Sessions of one account, oldest first; fn as in sp_store_account_list. */
int sp_store_session_list(sp_store *s, const char *address,
    int (*fn)(const struct sp_store_session *ss, void *arg), void *arg);

/* ---- second factors (the sync server's; values opaque here) ----------- */

/*
 * Each account holds factors named by (kind 1..255, id of 0..
 * SP_STORE_FACTOR_ID_MAX bytes) with a value of 1..SP_STORE_FACTOR_VALUE_MAX
 * bytes the caller encodes (server/sync/sync_factors.c).  All go with the
 * account.  ENOENT for no such account or factor.
 */
#define SP_STORE_FACTOR_ID_MAX 255
#define SP_STORE_FACTOR_VALUE_MAX 4096
#define SP_STORE_FACTORS_MAX 64     /* callers keep to this many */
/* Not a second factor: the recovery login key (protocol.md 6.6), id empty,
 * value the 32-byte Ed25519 public key. */
#define SP_STORE_KIND_RECOVERY_PK 100

/* Creates or replaces; with excl, EEXIST if it exists. */
int sp_store_factor_put(sp_store *s, const char *address, unsigned kind,
    const void *id, size_t id_len, const void *val, size_t len, int excl);
/* Replaces the value only if it is still exactly old (compare and swap):
 * SP_STORE_ECONFLICT if another writer changed it first. */
int sp_store_factor_swap(sp_store *s, const char *address, unsigned kind,
    const void *id, size_t id_len, const void *old, size_t old_len,
    const void *val, size_t len);
/* *val_r is malloc'd, the caller's. */
int sp_store_factor_get(sp_store *s, const char *address, unsigned kind,
    const void *id, size_t id_len, uint8_t **val_r, size_t *len_r);
/* Deletes one factor (ENOENT if absent: of two callers deleting the same
 * one-time code, exactly one gets 0), or with id_len 0 every factor of
 * that kind (0 even if there was none). */
int sp_store_factor_delete(sp_store *s, const char *address, unsigned kind,
    const void *id, size_t id_len);
/* Calls fn for each factor of the account in (kind, id) order; pointers
 * valid only during the call; fn returning non-zero stops the walk. */
int sp_store_factor_list(sp_store *s, const char *address,
    int (*fn)(unsigned kind, const uint8_t *id, size_t id_len,
    const uint8_t *val, size_t len, void *arg), void *arg);

/* ---- the gateway's outbound queue -------------------------------------- */

/*
 * Queue entries are opaque (the gateway encrypts them under its own key).
 * id is chosen by the caller (16 bytes); due is when the entry is next
 * worth trying (seconds since the epoch).
 */
int sp_store_queue_put(sp_store *s, const uint8_t id[16], uint64_t due,
    const void *data, size_t len);
/* Calls fn for entries with due <= now, earliest first, up to max. */
int sp_store_queue_due(sp_store *s, uint64_t now, size_t max,
    int (*fn)(const uint8_t id[16], uint64_t due, const void *data,
    size_t len, void *arg), void *arg);
int sp_store_queue_delete(sp_store *s, const uint8_t id[16]);

/* ---- invites: one-time registration tokens, stored hashed ------------- */

/* Records an invite (BLAKE2b-256 of the token) valid until expires. */
int sp_store_invite_put(sp_store *s, const uint8_t hash[32],
    uint64_t expires);
/* Consumes an invite: 0 if it existed and had not expired at now (it is
 * gone afterwards either way), ENOENT otherwise. */
int sp_store_invite_take(sp_store *s, const uint8_t hash[32], uint64_t now);

/* ---- operation --------------------------------------------------------- */

struct sp_store_stat {
	uint64_t map_size;      /* bytes mapped now */
	uint64_t used_bytes;    /* pages in use * page size */
	uint64_t accounts;
	uint64_t records;       /* log records over all accounts */
	uint64_t blobs;
	uint64_t commits;       /* transactions committed since open */
	uint64_t batched_writes;/* writes that shared a commit with another */
};
int sp_store_stat(sp_store *s, struct sp_store_stat *st_r);

/*
 * Hot backup: writes a consistent copy of the whole store to the directory
 * path (created, must be empty) while writers go on.  The copy opens with
 * sp_store_open().
 */
int sp_store_backup(sp_store *s, const char *path);

#endif
