/*
 * A session: one account opened on this device, as the CLI and the bridge
 * use it.  It bundles what every command needs, in order:
 *   connect (TLS) -> log in (keys unlocked from the vault) -> open the
 *   account's encrypted cache (local key wrapped by the password) -> open
 *   the mailbox model -> optionally pull and apply the log.
 *
 * The cache directory also remembers the account's settings
 * (DIR/account.conf: server, ca, address; not secret), so later commands
 * need only the directory and the password.
 *
 * Not thread-safe: a session belongs to one thread at a time; the bridge
 * opens a second connection (sp_session_connect_extra) for a follow
 * thread.  Never logs, never exits.  Errors: 0 or an SP_E* or errno code
 * with a sentence in err.
 */
#ifndef SP_CLIENT_SESSION_H
#define SP_CLIENT_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "client-core/cache.h"
#include "client-core/mailbox.h"
#include "client-core/sync_client.h"
#include "client-core/syncer.h"
#include "crypto/keyset.h"

typedef struct sp_session sp_session;
struct sp_second_factor;

struct sp_session_opts {
	const char *cache_dir;   /* required */
	/* Settings; NULL/0 = the ones remembered in cache_dir/account.conf.
	 * Given ones are remembered for next time. */
	const char *host;
	int port;
	int plain;               /* 1: ws:// without TLS (tests only) */
	const char *ca_file;
	const char *address;
	const char *password;    /* unlocks the cache and logs in; may be
	                          * NULL when the desktop keyring holds the
	                          * cache's key and the device has a session:
	                          * EACCES "a password is needed" otherwise */
	size_t password_len;
	int no_keyring;          /* 1: never use the desktop keyring */
	const char *device;      /* session label; NULL = "sealpost" */
	int no_sync;             /* 1: do not pull at open */
	sp_syncer_progress_fn progress; /* pull progress, may be NULL */
	void *progress_arg;
	/* What to answer when a LOGIN asks for a second factor (factors.h);
	 * NULL: nothing.  A resumed session never asks. */
	const struct sp_second_factor *second_factor;
};

int sp_session_open(const struct sp_session_opts *o, sp_session **s_r,
    char *err, size_t errlen);
/* Closes the connection, the model and the cache; wipes keys.  NULL ok. */
void sp_session_close(sp_session *s);
/* Logs the session out on the server (LOGOUT), then closes it. */
int sp_session_logout(sp_session *s, char *err, size_t errlen);

sp_client *sp_session_client(sp_session *s);
sp_cache *sp_session_cache(sp_session *s);
sp_mbox *sp_session_mbox(sp_session *s);
const sp_keyset *sp_session_keys(sp_session *s);
const char *sp_session_address(const sp_session *s);

/* Pull and apply (sp_mbox_sync on the session's connection). */
int sp_session_sync(sp_session *s, char *err, size_t errlen);

/* Fetches every body not cached yet over nconn connections (this one and
 * nconn - 1 extra ones, resumed), as sp_mbox_fetch_bodies. */
int sp_session_fetch_bodies(sp_session *s, size_t nconn,
    void (*progress)(void *arg, uint64_t done, uint64_t total), void *arg,
    size_t *failed_r, char *err, size_t errlen);

/* A new connection to the same server, logged in with the session's
 * token (RESUME), for another thread.  The caller closes it. */
int sp_session_connect_extra(sp_session *s, sp_client **c_r, char *err,
    size_t errlen);

/* A new connection to the same server with a fresh LOGIN (and second
 * factor, sf), for requests that need one (FACTOR_REMOVE: a second factor
 * in the last 5 minutes).  The new session is the caller's to LOGOUT; the
 * caller closes the connection. */
int sp_session_connect_fresh(sp_session *s, const char *password,
    size_t password_len, const struct sp_second_factor *sf, sp_client **c_r,
    char *err, size_t errlen);

#endif
