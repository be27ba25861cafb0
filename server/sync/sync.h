/*
 * Internal interface of the sync server (server/sync).  Not a library API:
 * these structures are shared by the files of this folder only.
 *
 * Threads: everything here runs on the libuv loop thread except the
 * *_work functions of jobs, which run on libuv's thread pool and may touch
 * only the store (thread-safe, group-committing) and their own job.  That
 * split lets many connections' writes share one commit while the loop
 * never waits for an fsync.
 */
#ifndef SP_SERVER_SYNC_H
#define SP_SERVER_SYNC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <libwebsockets.h>
#include <uv.h>

#include "proto/frame.h"
#include "server/config.h"
#include "server/store/store.h"

struct sp_sync;
struct sp_conn;
struct sp_acct;

/* One encoded frame waiting to be written (LWS_PRE bytes in front). */
struct sp_out {
	TAILQ_ENTRY(sp_out) entry;
	size_t len;
	uint64_t t_commit_ns;   /* PUSH only: when its records committed */
	uint8_t *buf;           /* LWS_PRE + len, malloc'd */
};
TAILQ_HEAD(sp_outq, sp_out);

/* One received frame waiting for its turn (requests run one at a time per
 * connection, so replies come back in request order). */
struct sp_in {
	TAILQ_ENTRY(sp_in) entry;
	uint8_t *buf;
	size_t len;
};
TAILQ_HEAD(sp_inq, sp_in);

enum sp_conn_state {
	SP_CONN_NEW,        /* until HELLO */
	SP_CONN_OPEN,       /* HELLO done, not logged in */
	SP_CONN_AUTH,       /* logged in */
	SP_CONN_CLOSING,    /* flushing a final frame, then close */
};

struct sp_conn {
	struct sp_sync *srv;
	struct lws *wsi;            /* NULL once the socket is gone */
	int refs;                   /* the socket + each job in flight */
	enum sp_conn_state state;
	char address[SP_STORE_ADDR_MAX + 1];
	uint8_t token_hash[32];
	struct sp_acct *acct;       /* when logged in */
	LIST_ENTRY(sp_conn) acct_entry;
	uint8_t peer_key[16];       /* keyed hash of the peer address */

	uint8_t *rx;                /* message being reassembled */
	size_t rx_len, rx_cap;

	struct sp_inq inq;
	int busy;                   /* a request is being processed */
	struct sp_outq outq;
	size_t out_bytes;

	uint64_t login_time;        /* sp_now_ns() of LOGIN here; 0 if RESUME */
	LIST_ENTRY(sp_conn) all_entry;
	size_t nin;                 /* frames waiting in inq */
	int rx_paused;              /* read-ahead limit reached */
	int discarding;             /* skipping an oversized message */
	int close_code;             /* WebSocket close status to send */

	int subscribed;
	uint64_t next_seq;          /* next record this subscriber needs */
	int sub_reading;            /* a catch-up read is in flight */
	/* LOGIN passed the password, a second factor is awaited here
	 * (sync_factors.c); expires 0 when none is. */
	struct {
		char address[SP_STORE_ADDR_MAX + 1];
		uint8_t challenge[32];
		char device[64];
		uint64_t expires;       /* sp_now_ns() deadline */
		int tries;
	} mfa;
	uint64_t mfa_time;          /* sp_now_ns() of a second factor passed
	                             * here; 0 if none (FACTOR_REMOVE) */
};
LIST_HEAD(sp_connlist, sp_conn);

/* Per-account registry of logged-in connections, for push and revoke. */
struct sp_acct {
	struct sp_acct *next;       /* hash chain */
	char address[SP_STORE_ADDR_MAX + 1];
	struct sp_connlist conns;
	uint64_t last;              /* last committed seq we know of */
	uint64_t last_commit_ns;    /* when that commit was seen */
	int nconns;
	uint64_t deliver_minute;    /* DELIVER rate limit window */
	uint64_t deliver_count;
};

#define SP_ACCT_BUCKETS 4096

struct sp_metrics {
	uint64_t connections, connections_total;
	uint64_t frames_in, frames_out, records_appended, records_pushed;
	uint64_t logins_ok, logins_failed, errors_sent;
	uint64_t notifies;          /* datagrams from the gateway */
	/* Push latency, commit to write, in buckets (ms upper bounds). */
	uint64_t lat_bucket[12];
	uint64_t lat_count;
	double lat_sum_ms;
};

struct sp_auth;

struct sp_sync {
	const struct sp_server_config *cfg;
	uv_loop_t *loop;
	struct lws_context *ctx;
	sp_store *store;
	struct sp_auth *auth;
	uint8_t secret[32];         /* from DATA_DIR/server.key */
	struct sp_acct *accts[SP_ACCT_BUCKETS];
	struct sp_connlist all;     /* every WebSocket connection */
	struct sp_metrics m;
	int jobs_in_flight;
	int stopping;
	uint64_t stop_deadline;
	uv_signal_t sigterm, sigint;
	uv_timer_t stop_timer;
	uv_timer_t sweep_timer;
	uv_poll_t notify_poll;      /* DATA_DIR/notify.sock (the gateway) */
	int notify_fd;
};

/* A request (or an internal read) run on the thread pool. */
struct sp_job;
typedef void (*sp_job_fn)(struct sp_job *j);

struct sp_job {
	uv_work_t req;
	struct sp_conn *conn;
	struct sp_frame f;          /* the decoded request */
	struct sp_in *in;           /* owns the bytes f points into */
	const struct sp_handler *h;
	sp_job_fn work;             /* thread pool */
	sp_job_fn done;             /* loop thread, after the reply is queued */
	/* Results filled by work. */
	uint8_t *reply;             /* encoded frame with LWS_PRE in front */
	size_t reply_len;
	int close_after;            /* close the connection after the reply */
	uint64_t first, last;       /* log range written or read */
	uint8_t *recs_buf;          /* records kept for a direct push */
	struct sp_store_rec *recs;
	size_t nrecs;
	char address[SP_STORE_ADDR_MAX + 1];
	uint8_t token_hash[32];
	uint8_t session_id[16];
	int rc;
};

struct sp_handler {
	uint32_t type;
	enum sp_conn_state need;    /* minimum state */
	enum sp_conn_state max;     /* maximum state */
	sp_job_fn check;            /* loop thread; may reply and finish */
	sp_job_fn work;
	sp_job_fn done;             /* may be NULL */
	int done_always;            /* run done even if the client left */
};

/* sync_server.c */
int sp_sync_run(const struct sp_server_config *cfg);
void sp_conn_send(struct sp_conn *c, uint8_t *buf, size_t len,
    uint64_t t_commit_ns);
void sp_conn_close(struct sp_conn *c);
/* The same with a WebSocket close status (docs/protocol.md, section 1). */
void sp_conn_close_code(struct sp_conn *c, int code);
void sp_conn_unref(struct sp_conn *c);
/* (Re)starts the timer that closes a connection not logged in (4002). */
void sp_conn_login_timer(struct sp_conn *c);
uint64_t sp_now_ns(void);

/* sync_handlers.c */
const struct sp_handler *sp_handler_find(uint32_t type);
void sp_job_reply_error(struct sp_job *j, int code, const char *msg);
void sp_job_reply(struct sp_job *j, struct sp_frame *f);
int sp_store_to_proto(int rc);

/* The end of a successful LOGIN or LOGIN_2FA: a session (work), then
 * the connection logged in (done). */
void sp_login_grant(struct sp_job *j, const char *device, size_t dlen);
void sp_login_granted(struct sp_job *j);

/* sync_factors.c: second factors (docs/protocol.md 6.5) and security
 * events (docs/format.md 12.5). */
#define SP_JOB_SECOND_FACTOR (-2)   /* j->rc: SECOND_FACTOR was sent */
enum sp_event_type {
	SP_EVENT_LOGIN = 1,         /* a new session (device) */
	SP_EVENT_FACTOR_ADDED = 2,
	SP_EVENT_FACTOR_REMOVED = 3,
	SP_EVENT_PASSWORD = 4,
	SP_EVENT_KEYS = 5,
	SP_EVENT_COUNTER = 6,       /* a FIDO2 counter went backwards */
	SP_EVENT_RECOVERY_USED = 7,
	SP_EVENT_RECOVERY_KEY = 8   /* account recover (protocol.md 6.6) */
};
/* LOGIN's work, after the password: 1 if the account needs a second
 * factor (SECOND_FACTOR queued, j->rc = SP_JOB_SECOND_FACTOR). */
int sp_factors_login_gate(struct sp_job *j);
void sp_factors_login_pending(struct sp_job *j);
/* Seals an event to the account's encryption key and appends it to its
 * log (any thread but the loop's: it commits).  Best effort: a failure
 * does not undo what happened. */
int sp_factors_event(struct sp_sync *s, const char *address, unsigned type,
    const char *detail);
void sp_login2fa_check(struct sp_job *j);
void sp_login2fa_work(struct sp_job *j);
void sp_login2fa_done(struct sp_job *j);
void sp_factors_work(struct sp_job *j);
void sp_factor_add_check(struct sp_job *j);
void sp_factor_add_work(struct sp_job *j);
void sp_factor_remove_check(struct sp_job *j);
void sp_factor_remove_work(struct sp_job *j);
void sp_recovery_new_work(struct sp_job *j);
void sp_factor_changed(struct sp_job *j);

/* sync_hub.c */
struct sp_acct *sp_acct_get(struct sp_sync *s, const char *address,
    int create);
void sp_acct_attach(struct sp_sync *s, struct sp_conn *c);
void sp_acct_detach(struct sp_sync *s, struct sp_conn *c);
void sp_hub_committed(struct sp_sync *s, const char *address, uint64_t first,
    uint64_t last, const struct sp_store_rec *recs, size_t nrecs);
void sp_hub_subscribe(struct sp_sync *s, struct sp_conn *c, uint64_t from,
    uint64_t last);
void sp_hub_drained(struct sp_sync *s, struct sp_conn *c);
void sp_hub_revoke(struct sp_sync *s, const char *address,
    const uint8_t session_id[16]);
void sp_session_id(const uint8_t token_hash[32], uint8_t id_r[16]);
/* Cuts connections whose account was disabled or deleted, or whose session
 * ended, by another process (sealpost-admin). */
void sp_hub_sweep(struct sp_sync *s);
/* Another process (the gateway) committed to address's log: push what
 * its connected devices have not seen. */
void sp_hub_external(struct sp_sync *s, const char *address);

/* sync_wkd.c: 1 key (body malloc'd), 2 policy file, 0 not found */
int sp_wkd_lookup(struct sp_sync *s, struct lws *wsi, const char *uri,
    uint8_t **body_r, size_t *len_r);
void sp_wkd_hash(const char *local, char out[33]);

/* sync_auth.c */
int sp_auth_create(struct sp_sync *s);
void sp_auth_destroy(struct sp_auth *a);
/* New challenge bound to address, valid 60 s, one use. */
int sp_auth_challenge(struct sp_auth *a, const char *address, uint8_t c[32]);
/* Consumes a challenge; 0 if it was issued for address and is fresh. */
int sp_auth_take(struct sp_auth *a, const char *address, const uint8_t c[32]);
/* Failed-login accounting; 1 when the caller is over a limit. */
int sp_auth_limited(struct sp_auth *a, const char *address,
    const uint8_t peer_key[16]);
void sp_auth_failed(struct sp_auth *a, const char *address,
    const uint8_t peer_key[16]);
/* Counts one event for (tag, peer) in a window of window_s seconds; 1 when
 * the peer already had limit events in it (the event is then refused). */
int sp_auth_count(struct sp_auth *a, const char *tag,
    const uint8_t peer_key[16], uint32_t limit, unsigned window_s);
/* Plausible KDF parameters for an address with no account. */
void sp_auth_fake_params(struct sp_sync *s, const char *address,
    uint8_t params[25]);

#endif
