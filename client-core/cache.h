/*
 * The local cache: one encrypted LMDB store per account on the user's
 * machine (docs/architecture.md, "Bridge cache"; docs/threat-model.md,
 * "Stolen laptop").
 *
 * Everything in it is encrypted under a 32-byte local key, metadata too:
 * a thief with the disk but not the key learns the size of the files, the
 * number of entries and the size of each entry, and the log's sequence
 * numbers, nothing else.  In particular keys are hidden as well as values,
 * because callers use addresses, subjects and mailbox names as keys.
 *
 *   generic tables   stored key   = BLAKE2b-256(hash subkey; table || key)
 *                    stored value = nonce[24] || XChaCha20-Poly1305(value,
 *                                   AD = stored key)
 *   log              stored key   = seq, u64 big-endian (not secret: the
 *                                   server assigns it and sees it)
 *                    stored value = nonce[24] || XChaCha20-Poly1305(record,
 *                                   AD = "log" || seq)
 *
 * The hash and encryption subkeys are crypto_kdf subkeys of the local key
 * (context "sp-cache", ids 1 and 2).  Binding each value to its stored key
 * means values cannot be moved between keys or seqs without SP_EAUTH.
 * The cache does not pad: a stored value is its plaintext plus 40 bytes,
 * so callers that must hide a size pad it first (crypto/pad.h).
 *
 * Conventions (LMDB-shaped): opaque handles; every call returns 0, an SP_E*
 * code (crypto/error.h) or a positive errno; sp_strerror() names them.
 * ENOENT: not found.  ENOSPC: the map could not grow further (map_max) or
 * the disk is full.  SP_EAUTH: a value failed authentication (a tampered
 * file or the wrong key); such a value is never returned.  SP_EFORMAT: the
 * environment or a stored value is malformed.  Memory returned through
 * *_r pointers is malloc()'d and belongs to the caller; it holds plaintext,
 * so wipe it (sodium_memzero) before free().
 *
 * Threads: one sp_cache may be shared by threads.  A batch belongs to the
 * thread that began it; while it is open that thread must not begin
 * another batch or call sp_cache_put/del/log_put (they would wait for the
 * open batch forever).  Reads outside a batch see the last committed
 * state.  Open a directory once per process (an LMDB rule), and do not use
 * a handle across fork().
 */
#ifndef SP_CLIENT_CACHE_H
#define SP_CLIENT_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/error.h"
#include "crypto/kdf.h"

typedef struct sp_cache sp_cache;
typedef struct sp_cache_batch sp_cache_batch;

#define SP_CACHE_KEYBYTES 32
#define SP_CACHE_KEY_MAX 1024                 /* bytes in a table key */
#define SP_CACHE_VALUE_MAX ((size_t)64 << 20) /* value or log record */

/*
 * Table ids.  A table is a namespace hashed into the stored key, not an
 * LMDB database, so a thief cannot even tell the tables apart.  The ids
 * are part of the stored format: add new ones here, never renumber or
 * reuse one.  0 is invalid; the cache accepts any other id, so ids not
 * listed (200 and up are never assigned) serve tests and experiments.
 */
enum {
	SP_CACHE_T_STATE = 1,   /* sync engine: last applied seq, cursors */
	SP_CACHE_T_MAILBOX = 2, /* mailbox: name, UIDVALIDITY, next UID */
	SP_CACHE_T_MESSAGE = 3, /* message: metadata record, flags */
	SP_CACHE_T_BODY = 4,    /* message body (envelope or plaintext) */
	SP_CACHE_T_UID = 5,     /* mailbox || IMAP UID -> message */
	SP_CACHE_T_INDEX = 6,   /* search index: term -> postings */
	SP_CACHE_T_PINS = 7,    /* key directory: address -> pinned keys */
	SP_CACHE_T_PGPPINS = 8, /* pgpkeys.h: address -> pinned OpenPGP key */
	SP_CACHE_T_PGPSERVED = 9, /* pgpmail.h: message -> served form */
	SP_CACHE_T_IMAPSUM = 10, /* bridge/imap_summary.h: message -> IMAP
	                          * ENVELOPE, BODYSTRUCTURE, size, header */
};

struct sp_cache_opts {
	uint64_t map_initial; /* bytes; 0 = 64 MiB.  Doubles on demand. */
	uint64_t map_max;     /* bytes; 0 = 1 TiB.  ENOSPC beyond this. */
};

/* ---- the local key ------------------------------------------------------
 *
 * DIR/cache.key holds the local key wrapped under a key derived from a
 * password with Argon2id (crypto/kdf.h):
 *
 *   "SPCK" | version 1 | kdf params[25] | nonce[24] | XChaCha20-Poly1305(
 *   local key[32]) with AD = every byte before the nonce      102 bytes
 *
 * The desktop keyring (Secret Service, via libsecret) is the planned second
 * home for the local key: a pair of sp_cache_key_*_keyring() calls would
 * store and fetch the same 32 bytes, with cache.key kept as the fallback
 * where no keyring runs.  sp_cache_open() only ever sees the 32 bytes, so
 * nothing below this section changes when it arrives.
 */

/*
 * Makes a random local key and stores it in DIR/cache.key (created 0600,
 * DIR 0700 if missing), wrapped under password.  p gives the Argon2id cost
 * and salt (sp_kdf_params_new()); NULL means a fresh salt at the default
 * cost.  EEXIST if the file exists: replacing it would orphan the cache.
 * On success *key_r is sodium_malloc()'d, SP_CACHE_KEYBYTES long; the
 * caller releases it with sodium_free().  Cost: one Argon2id evaluation
 * and two fsyncs.
 */
int sp_cache_key_create(const char *dir, const char *password,
    size_t password_len, const struct sp_kdf_params *p, uint8_t **key_r);

/*
 * Unwraps DIR/cache.key.  SP_EAUTH for a wrong password (or a tampered
 * file); ENOENT if there is none; SP_EFORMAT, SP_EVERSION or SP_ETRUNC for
 * a file that is not a cache key file of this version or has the wrong
 * length; SP_ELIMIT for Argon2id costs out of range.  *key_r as for
 * sp_cache_key_create().  Cost: one Argon2id evaluation.
 */
SP_WUR int sp_cache_key_open(const char *dir, const char *password,
    size_t password_len, uint8_t **key_r);

/*
 * Password change: unwraps with old_password and rewraps the same local key
 * under new_password with a fresh salt, replacing the file atomically.
 * The cache itself is untouched.  p as for sp_cache_key_create(), except
 * that NULL keeps the file's present cost.  Errors as sp_cache_key_open();
 * on any error the file is unchanged.  Cost: two Argon2id evaluations.
 */
int sp_cache_key_rewrap(const char *dir, const char *old_password,
    size_t old_len, const char *new_password, size_t new_len,
    const struct sp_kdf_params *p);

/* ---- the cache ---------------------------------------------------------- */

/*
 * Opens (creating if needed) the cache in directory dir (created 0700;
 * LMDB files 0600) with the local key, which is not kept: only subkeys
 * derived from it are, in sodium_malloc memory, so the caller may free key
 * at once.  o may be NULL.  A new cache records a check value; opening
 * with a different key is SP_EAUTH here, rather than a cache that looks
 * empty and would be filled under the wrong key.  SP_EVERSION for a cache
 * of another format; SP_EFORMAT for an environment that holds data but no
 * check value, or is not an LMDB environment.  Cost: one write transaction
 * (one fsync).
 */
int sp_cache_open(const char *dir, const uint8_t key[SP_CACHE_KEYBYTES],
    const struct sp_cache_opts *o, sp_cache **c_r);

/* Closes; accepts NULL.  No batch may be open. */
void sp_cache_close(sp_cache *c);

/*
 * Stores val under (table, key), replacing any value; durable on return.
 * key may be empty; klen <= SP_CACHE_KEY_MAX and vlen <=
 * SP_CACHE_VALUE_MAX, else SP_ELIMIT.  SP_EINVAL for table 0.
 */
int sp_cache_put(sp_cache *c, uint8_t table, const void *key, size_t klen,
    const void *val, size_t vlen);

/*
 * Fetches the value under (table, key) into *val_r (malloc'd, the caller
 * wipes and frees it; never NULL on success, even for an empty value).
 * ENOENT if absent, SP_EAUTH if it fails authentication.
 */
SP_WUR int sp_cache_get(sp_cache *c, uint8_t table, const void *key,
    size_t klen, uint8_t **val_r, size_t *vlen_r);

/* 0 if (table, key) holds a value, ENOENT if not, without decrypting it
 * (so a tampered value is only found when it is read).  For callers that
 * need presence only: asking sp_cache_get costs a full decryption. */
SP_WUR int sp_cache_has(sp_cache *c, uint8_t table, const void *key,
    size_t klen);

/* Removes (table, key); ENOENT if absent.  Durable on return. */
int sp_cache_del(sp_cache *c, uint8_t table, const void *key, size_t klen);

/* Stores log record seq, replacing any; len <= SP_CACHE_VALUE_MAX. */
int sp_cache_log_put(sp_cache *c, uint64_t seq, const void *rec, size_t len);

/* Fetches log record seq as sp_cache_get() does. */
SP_WUR int sp_cache_log_get(sp_cache *c, uint64_t seq, uint8_t **rec_r,
    size_t *len_r);

/*
 * Called for each record in seq order; rec is valid only during the call
 * (and wiped after it).  A non-zero return stops the walk.
 */
typedef int (*sp_cache_log_fn)(void *arg, uint64_t seq, const uint8_t *rec,
    size_t len);

/*
 * Calls fn for every log record with seq >= from_seq, in order.  Returns 0
 * after the last one, fn's value if fn stopped the walk, or an error (a
 * record failing authentication stops the walk with SP_EAUTH after every
 * record before it was delivered).  Records are decrypted in pages of up
 * to 64 under one read transaction, which ends before fn is called, so fn
 * may write to the cache and a later page sees what it wrote.
 */
SP_WUR int sp_cache_log_each(sp_cache *c, uint64_t from_seq,
    sp_cache_log_fn fn, void *arg);

/* ---- atomic batches -----------------------------------------------------
 *
 * A batch is one LMDB write transaction: all of its writes become visible
 * and durable together at sp_cache_commit(), or none of them do (abort,
 * error, crash, SIGKILL).  A sync engine applies a record and advances its
 * last applied seq in one batch, so after a crash it resumes exactly where
 * it stopped.  Batches of one process run one at a time (begin waits).
 *
 * When the map fills up, the batch grows it and replays its writes in a new
 * transaction, so the caller sees nothing.  For that the batch keeps its
 * writes (encrypted) in memory until it ends.  If the batch has read and
 * another process committed in between, the replay could build on values
 * the caller never saw: the batch fails with EAGAIN instead, to be run
 * again from the start.  After a failed write (anything but ENOENT from
 * sp_cache_batch_del, or an argument refused before writing) every further
 * call returns that error and commit writes nothing; ENOENT and SP_EAUTH
 * from sp_cache_batch_get leave the batch usable.  Either way the caller
 * ends a batch with commit or abort.
 */

int sp_cache_begin(sp_cache *c, sp_cache_batch **b_r);
int sp_cache_batch_put(sp_cache_batch *b, uint8_t table, const void *key,
    size_t klen, const void *val, size_t vlen);
/* Reads the batch's own view, including its uncommitted writes. */
SP_WUR int sp_cache_batch_get(sp_cache_batch *b, uint8_t table,
    const void *key, size_t klen, uint8_t **val_r, size_t *vlen_r);
int sp_cache_batch_del(sp_cache_batch *b, uint8_t table, const void *key,
    size_t klen);
int sp_cache_batch_log_put(sp_cache_batch *b, uint64_t seq, const void *rec,
    size_t len);

/* Commits durably (fsync) and frees b, also when it fails. */
int sp_cache_commit(sp_cache_batch *b);

/* Discards every write of b and frees it; accepts NULL. */
void sp_cache_abort(sp_cache_batch *b);

#endif
