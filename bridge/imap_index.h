/*
 * The bridge's full-text search index, kept in the account's encrypted
 * cache (client-core/cache.h, table SP_CACHE_T_INDEX: every value is
 * encrypted there and every key hashed, so the index is as private at
 * rest as the bodies it was built from).
 *
 * Terms are runs of ASCII letters and digits and of bytes >= 0x80 (UTF-8
 * letters pass whole), ASCII-folded to lower case: the same folding the
 * SEARCH scan uses, so the index never disagrees with it.  A term longer
 * than IMAP_INDEX_TERM_MAX is not stored; the message gets a marker that
 * makes it a candidate for every query instead.
 *
 * IMAP SEARCH TEXT/BODY is a substring match (RFC 3501 6.4.4), which no
 * word index answers exactly, so the index only narrows: the query's
 * words must occur as terms (the first may be the end of a longer word,
 * the last its start, a lone one any part of it: those are matched
 * against the dictionary of terms held in memory), and the caller scans
 * only the candidates' text to confirm.  The answer is therefore exactly
 * the scan's answer, at the cost of scanning the few candidates.
 *
 * Layout in the table: "H" the number of batches; "B"+n one batch: the
 * message ids it indexed and the terms it introduced (loaded at open: the
 * dictionary and the set of indexed ids live in memory); "P"+bucket+term
 * the postings of a term for ids in [bucket << 16, (bucket + 1) << 16),
 * as ascending varint deltas, so adding a batch rewrites only the recent
 * bucket of each term it touches.
 *
 * Removed messages are not taken out: message ids are never reused, and
 * the caller drops candidates the model no longer has.
 *
 * Not thread-safe: the caller serialises (the bridge holds the account
 * lock).  Never logs, never exits.  0 or an errno / SP_E* code.
 */
#ifndef SP_BRIDGE_IMAP_INDEX_H
#define SP_BRIDGE_IMAP_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "client-core/cache.h"

#define IMAP_INDEX_TERM_MAX 64       /* bytes of a stored term */
#define IMAP_INDEX_OPEN_TERMS 4096   /* dictionary matches per word,
                                      * beyond which it does not narrow */

typedef struct imap_index imap_index;

/* Opens the index of cache (which must outlive it), loading the
 * dictionary and the indexed ids. */
int imap_index_open(sp_cache *cache, imap_index **ix_r);
void imap_index_close(imap_index *ix);

/* 1 when message id has been indexed. */
int imap_index_has(const imap_index *ix, uint64_t id);

/* Adds message id's text (the decoded text parts and the header, or
 * anything else to search); kept in memory until imap_index_flush(). */
int imap_index_add(imap_index *ix, uint64_t id, const char *text,
    size_t len);
/* Writes what was added since the last flush, in one cache batch. */
int imap_index_flush(imap_index *ix);

/*
 * The candidates for a substring needle: *all_r = 1 when the index
 * cannot narrow it (no word in it, or only short ones matching too many
 * terms): every message is a candidate.  Else *ids_r (malloc'd, the
 * caller frees; may be NULL when *n_r is 0) holds the candidate ids,
 * ascending.  Messages not indexed yet are not among them: index first.
 */
int imap_index_query(imap_index *ix, const char *needle, uint64_t **ids_r,
    size_t *n_r, int *all_r);

/* Number of indexed messages and of dictionary terms (for benchmarks). */
void imap_index_stats(const imap_index *ix, size_t *msgs_r, size_t *terms_r);

#endif
