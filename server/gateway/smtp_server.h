/*
 * The gateway's SMTP server: a libuv TCP listener that runs one
 * smtp_session per connection, STARTTLS through OpenSSL memory BIOs
 * (TLS 1.2 and later only), and every blocking step (recipient check,
 * sender authentication, content filters, delivery) on libuv's thread
 * pool so the loop never waits on DNS, a filter or an fsync.
 *
 * Protection of the listener: a cap on connections in total and per
 * source address, a connection rate per source (token bucket), early-talker
 * detection (a client that sends before the greeting gets 554 and is
 * closed; a source that waited once is trusted for greet_cache_s), and
 * command and data timeouts.
 *
 * The end of a message runs: sp_gw_auth_check (REJECT -> 550 5.7.1,
 * TEMPFAIL -> 451 4.7.0, QUARANTINE -> delivered as junk), sp_gw_filter_run
 * (REJECT -> 550 5.7.1, TEMPFAIL -> 451 4.7.1, JUNK -> junk, TAG ->
 * verdict recorded), then sp_gw_deliver_message; 250 is sent only after
 * that returned, i.e. after the commit is durable.
 *
 * Several recipients with mixed results: SMTP has one reply per message.
 * Recipients that failed at DATA time are retried twice on the worker
 * (100 ms, then 500 ms later).  If some still failed while others got the
 * message, the reply is 451 4.3.0: the sender keeps the message and tries
 * all recipients again, so nothing acknowledged is lost; those that
 * already have it get it again, and the log line counts them ("partial
 * delivery ... duplicates possible") so it is never silent.  A recipient
 * that keeps failing is refused at RCPT time on the next attempt (the
 * check sees a missing account or a full mailbox), so the retries
 * converge.  A 250 for all would lose the failed recipients' copies, which
 * is worse than a duplicate.
 *
 * Logging goes through the log callback, without message content,
 * addresses or secrets.  Not thread-safe: call everything from the loop.
 */
#ifndef SP_GATEWAY_SMTP_SERVER_H
#define SP_GATEWAY_SMTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "server/gateway/auth/gw_auth.h"
#include "server/gateway/filter/gw_filter.h"
#include "server/gateway/gw_deliver.h"

typedef struct sp_smtp_server sp_smtp_server;

/*
 * What sender-authentication failures do to mail for a served domain (the
 * recipient's).  ENFORCE is the default: DMARC p=reject fails get 550,
 * p=quarantine fails go to Junk, DNS trouble gets 451.  QUARANTINE sends
 * what would be rejected to Junk instead.  RECORD only records the results
 * (the Authentication-Results stay in the metadata) and never acts.
 * A message for several domains gets the most lenient of their policies,
 * so that no recipient loses mail its domain wanted.
 */
enum sp_gw_policy_mode {
	SP_GW_POLICY_ENFORCE = 0,
	SP_GW_POLICY_QUARANTINE,
	SP_GW_POLICY_RECORD,
};

struct sp_gw_policy {
	const char *domain;
	enum sp_gw_policy_mode mode;
};

struct sp_smtp_server_opts {
	const char *host;             /* listen address, e.g. "127.0.0.1" */
	int port;                     /* 0 = any free port */
	const char *hostname;         /* greeting, EHLO, authserv-id */
	SSL_CTX *tls;                 /* STARTTLS; NULL = not offered.  Not
	                               * owned: outlive the server */
	sp_gw_deliver *deliver;       /* not owned */
	const struct sp_gw_auth_opts *auth;     /* NULL: no SPF/DKIM/DMARC */
	int record_only_loopback;     /* auth only records for 127/8, ::1 */
	const struct sp_gw_policy *policies; /* per served domain; not
	                               * owned; others ENFORCE */
	size_t npolicies;
	const struct sp_gw_filter_opts *filter; /* NULL: no filters */
	uint64_t max_size;            /* 0 = 25 MiB */
	size_t max_rcpts;             /* 0 = 100 */
	unsigned max_conns;           /* 0 = 1000 */
	unsigned max_conns_per_ip;    /* 0 = 50 */
	unsigned rate_per_ip;         /* connections per minute; 0 = 1200 */
	unsigned greet_delay_ms;      /* early-talker wait; 0 = greet now */
	unsigned greet_cache_s;       /* trust a source that waited; 0 = no */
	unsigned timeout_cmd_ms;      /* 0 = 300000 (RFC 5321 4.5.3.2.7) */
	unsigned timeout_data_ms;     /* 0 = 180000 */
	void (*log)(void *arg, const char *line);
	void *log_arg;
};

/* Binds and listens.  0, or a negative libuv error (UV_EADDRINUSE...),
 * or SP_EINVAL / SP_ENOMEM. */
int sp_smtp_server_start(uv_loop_t *loop, const struct sp_smtp_server_opts *o,
    sp_smtp_server **s_r);

/* The port actually bound (useful with port 0). */
int sp_smtp_server_port(const sp_smtp_server *s);

/*
 * Stops accepting, tells idle clients and clients in the middle of sending
 * a message 421 (the latter's message was not acknowledged, so they send
 * it again later), lets deliveries in flight finish and answer, then
 * closes.  done(arg) runs on the loop when the last connection is gone.
 */
void sp_smtp_server_shutdown(sp_smtp_server *s, void (*done)(void *),
    void *arg);

/* After done() ran (or if start failed half-way): frees the server. */
void sp_smtp_server_free(sp_smtp_server *s);

/* A server TLS context: TLS 1.2 and later, certificate chain and key from
 * PEM files.  0 or SP_EINVAL (with OpenSSL's reason in err[errlen]). */
int sp_smtp_tls_ctx(const char *cert, const char *key, SSL_CTX **ctx_r,
    char *err, size_t errlen);

#endif
