/*
 * One account served by the bridge: the client-core session (keys, cache,
 * mailbox model), a writer connection for changes, and a follow thread
 * that keeps the model live.
 *
 * Threads: the follow thread has its own connection and subscribes to the
 * log (sp_syncer_follow); after each committed PUSH it applies the
 * records to the model under the account lock and calls the wake-up
 * function, so the IMAP loop can tell IDLE clients within a second of the
 * server's commit, without polling.  Everything else (reads of the model,
 * bodies, changes) happens on the caller's thread with the lock held:
 * bridge_account_lock() before any sp_mbox_* call on bridge_account_mbox()
 * and bridge_account_client(), and no model pointer kept past unlock.
 *
 * Files in the account's directory: account.conf and the cache (session.h),
 * bridge.pass (the generated local password, 0600).
 * Never logs, never exits: errors come back as codes with a sentence.
 */
#ifndef SP_BRIDGE_ACCOUNT_H
#define SP_BRIDGE_ACCOUNT_H

#include <stddef.h>
#include <stdint.h>

#include "client-core/mailbox.h"
#include "client-core/sync_client.h"

typedef struct bridge_account bridge_account;
struct sp_session;

#define BRIDGE_PASS_LEN 24      /* characters of a generated password */

/* Wake-up: called from the follow thread (or any) after the model
 * changed; must be thread-safe (uv_async_send). */
typedef void (*bridge_wake_fn)(void *arg);

/* Opens the account in dir with its password: logs in, opens the cache,
 * pulls and applies the log, starts the follow thread. */
int bridge_account_open(const char *dir, const char *password,
    size_t password_len, bridge_wake_fn wake, void *wake_arg,
    bridge_account **a_r, char *err, size_t errlen);
/* Replaces the wake-up function (thread-safe). */
void bridge_account_set_wake(bridge_account *a, bridge_wake_fn wake,
    void *wake_arg);
/* Stops the follow thread (waits for it) and closes.  NULL ok. */
void bridge_account_close(bridge_account *a);

const char *bridge_account_address(const bridge_account *a);
/* 1 when pw is this account's bridge password (constant time). */
int bridge_account_check_password(const bridge_account *a, const char *pw,
    size_t len);

void bridge_account_lock(bridge_account *a);
void bridge_account_unlock(bridge_account *a);
sp_mbox *bridge_account_mbox(bridge_account *a);
/* The session (keys, cache), for client-core calls such as sp_send on
 * bridge_account_client().  Lock held. */
struct sp_session *bridge_account_session(bridge_account *a);
/* The writer connection (reconnected when the last call found it
 * closed); NULL with err when it cannot connect.  Lock held. */
sp_client *bridge_account_client(bridge_account *a, char *err,
    size_t errlen);
/* After a change call failed: EAGAIN (the follow thread moved the cache
 * meanwhile) means the change is on the server: pull and apply until it
 * is in the model and return 0.  EPIPE/ETIMEDOUT: drop the connection so
 * the next call reconnects.  Returns rc otherwise.  Lock held. */
int bridge_account_settle(bridge_account *a, int rc, char *err,
    size_t errlen);

/*
 * Fetches every body not in the cache yet, pipelined over the writer
 * connection and up to BRIDGE_PREFETCH_CONNS - 1 extra ones
 * (sp_mbox_fetch_bodies_par): before a FETCH that will need many bodies.
 * Skipped (0) when the last prefetch since the model last changed left
 * nothing to do but bodies that failed.  Lock held; blocks for the
 * duration.
 */
#define BRIDGE_PREFETCH_CONNS 4
int bridge_account_prefetch(bridge_account *a, char *err, size_t errlen);

/*
 * Background work after the model changes: run(a, arg) is called on the
 * account's background thread once at start and again after each apply
 * that changed the model (changes while it runs are coalesced into one
 * more call).  run is called WITHOUT the lock: it takes it itself, in
 * short slices, and checks bridge_account_stopping() between them.
 * destroy(arg) (may be NULL) runs at bridge_account_close(), after the
 * thread has ended.  At most once per account; 0 or an errno.
 */
typedef void (*bridge_bg_fn)(bridge_account *a, void *arg);
int bridge_account_start_background(bridge_account *a, bridge_bg_fn run,
    void (*destroy)(void *arg), void *arg);
/* 1 once bridge_account_close() has begun (any thread, no lock). */
int bridge_account_stopping(const bridge_account *a);

/*
 * The background twin of bridge_account_prefetch(): fetches every body
 * not in the cache yet, pipelined over up to BRIDGE_PREFETCH_CONNS extra
 * connections, holding the lock only to take a private copy of the model
 * (sp_mbox_open on the same cache) and to connect; the fetch itself runs
 * unlocked against that copy, so IMAP commands go on meanwhile.  Bodies
 * are cached (the cache is shared between threads, cache.h).  Lock NOT
 * held; blocks for the duration.
 */
int bridge_account_fetch_missing(bridge_account *a, char *err,
    size_t errlen);

/* ---- the account's directory ------------------------------------------ */

/* Creates the bridge password file (random, BRIDGE_PASS_LEN characters
 * [A-Za-z0-9]) unless it exists. */
int bridge_account_make_password(const char *dir);
/* Reads it into buf (cap > BRIDGE_PASS_LEN). */
int bridge_account_read_password(const char *dir, char *buf, size_t cap);

#endif
