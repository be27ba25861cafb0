/*
 * A per-message IMAP summary: what FETCH returns without the body
 * (ENVELOPE, BODYSTRUCTURE, BODY, RFC822.SIZE, and the top-level header
 * block for BODY[HEADER], HEADER.FIELDS and RFC822.HEADER), computed once
 * from the parsed message (imap_fetch.h) and kept in the account's
 * encrypted cache (client-core/cache.h, table SP_CACHE_T_IMAPSUM, key:
 * the message id, u64 big-endian), so listing a folder never decrypts or
 * parses a body again.
 *
 * A summary describes exactly the bytes BODY[] serves.  For OpenPGP mail
 * the bridge serves a decrypted form (client-core/pgpmail.h) that depends
 * on the pinned keys, so each summary says what it describes:
 *
 *   IMAP_SUMMARY_STORED   the bytes as stored (own mail, --pgp-passthrough)
 *   IMAP_SUMMARY_SERVED   the served form of received mail; without
 *                         STORED it holds only under pins generation gen
 *
 * Both bits: the message has no OpenPGP, its served form is the stored
 * bytes under any pins.  imap_summary_valid() applies these rules; a
 * summary that does not hold is recomputed and replaced by the caller.
 *
 * Stored value (a parser with limits: cache values are authenticated,
 * but a format change or a bug must not read out of bounds):
 *
 *   version u8 = 1 | what u8 | gen u64 | size u64 |
 *   4 x (len u32 | bytes): envelope, bodystructure, body, header
 *
 * integers big-endian; each string at most IMAP_SUMMARY_FIELD_MAX bytes.
 * A header block longer than IMAP_SUMMARY_HEADER_MAX is not kept (len 0
 * with the flag IMAP_SUMMARY_NOHEADER): such a message serves header
 * sections from its body.
 *
 * Memory: a decoded summary owns its strings (malloc'd, plaintext: freed
 * wiped by imap_summary_finish).  Not thread-safe per summary; the cache
 * calls follow cache.h (the bridge holds the account lock).  Never logs.
 * Returns 0, an SP_E* code or a positive errno.
 */
#ifndef SP_BRIDGE_IMAP_SUMMARY_H
#define SP_BRIDGE_IMAP_SUMMARY_H

#include <stddef.h>
#include <stdint.h>

#include "bridge/imap_fetch.h"
#include "client-core/cache.h"

#define IMAP_SUMMARY_VERSION 1
#define IMAP_SUMMARY_FIELD_MAX ((size_t)4 << 20)
#define IMAP_SUMMARY_HEADER_MAX ((size_t)16 << 10)

/* what */
#define IMAP_SUMMARY_STORED 0x01u
#define IMAP_SUMMARY_SERVED 0x02u
#define IMAP_SUMMARY_NOHEADER 0x04u

struct imap_summary {
	uint8_t what;
	uint64_t gen;            /* pins generation (SERVED without STORED) */
	uint64_t size;           /* RFC822.SIZE: bytes of BODY[] */
	char *envelope;          /* "(...)" as after "ENVELOPE " */
	size_t envelope_len;
	char *bodystructure;     /* as after "BODYSTRUCTURE " */
	size_t bodystructure_len;
	char *body;              /* as after "BODY " */
	size_t body_len;
	uint8_t *header;         /* top-level header block, blank line
	                          * included; NULL with NOHEADER */
	size_t header_len;
};

/*
 * Fills s from the parsed message m (which stays the caller's), marked
 * what/gen.  Strings are NUL-terminated too.  0 or ENOMEM; on error s
 * holds nothing to free.
 */
int imap_summary_compute(imap_msg *m, uint8_t what, uint64_t gen,
    struct imap_summary *s);

/* Wipes and frees the strings of s; accepts a zeroed s. */
void imap_summary_finish(struct imap_summary *s);

/*
 * 1 when s describes what BODY[] serves now: want_stored (own mail or
 * passthrough) needs STORED; otherwise SERVED, and gen == s->gen unless
 * STORED is also set.
 */
int imap_summary_valid(const struct imap_summary *s, int want_stored,
    uint64_t gen);

/* The stored value of s: *val_r malloc'd (plaintext: wipe, then free). */
int imap_summary_encode(const struct imap_summary *s, uint8_t **val_r,
    size_t *len_r);

/* Parses a stored value into s (zeroed first).  SP_EFORMAT for anything
 * malformed or beyond the limits, SP_EVERSION for another version. */
int imap_summary_decode(const uint8_t *val, size_t len,
    struct imap_summary *s);

/* The summary of message id from cache: ENOENT when there is none,
 * SP_EFORMAT/SP_EVERSION as decode (the caller recomputes). */
int imap_summary_get(sp_cache *cache, uint64_t id, struct imap_summary *s);
/* Stores (replaces) the summary of message id; durable on return. */
int imap_summary_put(sp_cache *cache, uint64_t id,
    const struct imap_summary *s);
/* Removes it (the message is gone); ENOENT when there was none. */
int imap_summary_del(sp_cache *cache, uint64_t id);

#endif
