/*
 * The outbound worker: threads inside `sealpost-gateway serve` that take
 * due entries from the store's queue, open the message blob with the
 * gateway key, DKIM-sign it, route it (MX, then A/AAAA, RFC 5321 5.1),
 * deliver it over SMTP with STARTTLS (MTA-STS when published), and retry,
 * notify (delay DSN) and bounce (failure DSN into the sender's own
 * mailbox through gw_deliver, sealed like any inbound mail).
 *
 * Each entry is worked by one thread at a time; results are written back
 * to the store before the next attempt, so a crash repeats at most the
 * attempt in flight (a remote may then get a duplicate: SMTP's usual
 * at-least-once).
 *
 * The plaintext exists only inside this process, in sodium_malloc memory,
 * for the duration of one attempt, and is wiped after it.
 */
#ifndef SP_GW_OUTBOUND_WORKER_H
#define SP_GW_OUTBOUND_WORKER_H

#include <stdint.h>

#include "server/gateway/gw_deliver.h"

typedef struct sp_ob_worker sp_ob_worker;

struct sp_ob_worker_opts {
	const char *data_dir;       /* keys: gateway.key, dkim/ */
	sp_gw_deliver *deliver;     /* the store and DSN delivery */
	const char *hostname;       /* EHLO name, Reporting-MTA */
	const char *dns;            /* "HOST:PORT" or NULL: system */
	int port;                   /* remote SMTP port: 25 (tests change) */
	unsigned threads;           /* 1.. */
	unsigned retry_base_s;      /* first retry after this, doubling */
	unsigned delay_notice_s;    /* delay DSN after this (4 h) */
	unsigned expire_s;          /* give up after this (5 days) */
	unsigned timeout_s;         /* per SMTP read/write (300) */
	const char *ca_file;        /* trust for MTA-STS (NULL: system) */
	const char *mta_sts_connect;/* "HOST:PORT": fetch every policy from
	                             * here (tests), keeping the policy
	                             * host's name for SNI and the check */
	void (*log)(void *arg, const char *line);
	void *log_arg;
};

/* Loads (or creates) the gateway key and starts the threads. */
int sp_ob_worker_start(const struct sp_ob_worker_opts *o,
    sp_ob_worker **w_r, char *err, size_t errlen);
/* Asks the threads to finish their attempt in flight, joins them and
 * frees; accepts NULL. */
void sp_ob_worker_stop(sp_ob_worker *w);

#endif
