/*
 * The sync engine: brings the account's log from the server into the local
 * cache (docs/protocol.md sections 7.2 and 7.4), exactly once and in order.
 *
 * Records are opaque bytes here (their writers encrypted them); the mailbox
 * model that interprets them is built on the cache log later.
 *
 * State lives in the cache, table SP_CACHE_T_STATE:
 *
 *   "last_applied"   u64 big-endian: every record 1..last_applied (or from
 *                    "log_start" on) is in the cache log; absent = 0
 *   "log_start"      u64 big-endian: present once the server skipped a
 *                    compacted prefix (section 7): the first seq it sent
 *                    after the jump; records below it are summarised by a
 *                    snapshot record and are not in the cache
 *
 * Each page (READ) or PUSH is applied in one cache batch together with the
 * new last_applied, so a crash (SIGKILL, power loss) leaves the cache at a
 * page boundary: the next pull or follow resumes from last_applied + 1 with
 * no gap and no duplicate.
 *
 * The server is checked, not trusted: a page or PUSH must start at the seq
 * asked for (or, as the protocol allows for a dropped prefix, higher: that
 * is recorded in "log_start"), be consecutive, not run past its own `last`,
 * and a PUSH must follow the previous one exactly.  Anything else is
 * EPROTO with the reason in err, and nothing of that frame is applied.
 *
 * Return codes: 0; SP_ESERVER when the server answered ERROR (its code and
 * message in err); EPROTO for a server that broke the protocol; ETIMEDOUT or
 * EPIPE from the connection (sync_client.h); cache errors as cache.h gives
 * them.  err (may be NULL) receives a sentence for the user on any error.
 * The engine never logs and never exits.  Not thread-safe per cache: one
 * syncer per cache at a time.
 */
#ifndef SP_CLIENT_SYNCER_H
#define SP_CLIENT_SYNCER_H

#include <stddef.h>
#include <stdint.h>

#include "client-core/cache.h"
#include "client-core/sync_client.h"

/* Called after every committed page or PUSH: applied = the new
 * last_applied, last = the server's last seq as that frame reported it. */
typedef void (*sp_syncer_progress_fn)(void *arg, uint64_t applied,
    uint64_t last);

struct sp_syncer_opts {
	uint64_t max_records;   /* READ page size; 0 = the server's (256) */
	uint64_t max_bytes;     /* READ page bytes; 0 = the server's */
	int duration_ms;        /* follow: return after this long in all,
	                         * even while pushes keep coming; 0 = no cap */
	sp_syncer_progress_fn progress;  /* may be NULL */
	void *arg;
};

/* Reads last_applied (0 for a cache that never synced). */
SP_WUR int sp_syncer_last_applied(sp_cache *cache, uint64_t *seq_r);

/*
 * Catches up: READ pages from last_applied + 1 until the server says there
 * is no more, applying each page atomically.  c must be logged in.  o may
 * be NULL.  *applied_r (may be NULL) receives the number of records
 * applied by this call, also on error (what was committed stays).
 * Cost: one round trip and one cache commit (fsync) per page.
 */
int sp_syncer_pull(sp_client *c, sp_cache *cache,
    const struct sp_syncer_opts *o, uint64_t *applied_r, char *err,
    size_t errlen);

/*
 * Follows the log live: SUBSCRIBE from last_applied + 1, then applies each
 * PUSH (catch-up first, then new records from any writer) atomically, and
 * returns 0 once timeout_ms pass without a PUSH (or o->duration_ms in
 * all).  *applied_r as for sp_syncer_pull().
 *
 * Every call subscribes anew, and the protocol gives no way to tell a PUSH
 * of a replaced subscription from one of the new, so call it on a
 * connection that has no subscription yet: once per connection (with a
 * long timeout), reconnecting in between.  When the connection drops
 * (EPIPE) nothing is lost: reconnect, log in and call it again.
 */
int sp_syncer_follow(sp_client *c, sp_cache *cache, int timeout_ms,
    const struct sp_syncer_opts *o, uint64_t *applied_r, char *err,
    size_t errlen);

#endif
