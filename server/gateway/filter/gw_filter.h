/*
 * Content filters before encryption: rspamd over its HTTP protocol
 * (/checkv2) and clamd over INSTREAM.  Each is optional and each has a
 * configured action.  Blocking: call from a worker thread.  Thread-safe.
 * Never logs, never exits.
 */
#ifndef SP_GATEWAY_FILTER_H
#define SP_GATEWAY_FILTER_H

#include <stddef.h>
#include <stdint.h>

enum sp_gw_filter_action {
	SP_GW_FILTER_PASS = 0,   /* nothing found */
	SP_GW_FILTER_TAG,        /* deliver, verdict recorded */
	SP_GW_FILTER_JUNK,       /* deliver into Junk */
	SP_GW_FILTER_REJECT,     /* 550 5.7.1 */
	SP_GW_FILTER_TEMPFAIL,   /* filter unreachable and fail-closed: 451 */
};

struct sp_gw_filter_opts {
	const char *rspamd;      /* "HOST:PORT", or NULL for none */
	enum sp_gw_filter_action rspamd_spam_action; /* when rspamd says
	                          * "reject" or "add header"/"rewrite subject" */
	const char *clamd;       /* "HOST:PORT" or a unix socket path, or NULL */
	enum sp_gw_filter_action clamd_virus_action;
	int fail_open;           /* 1: an unreachable filter lets mail pass */
	int timeout_ms;          /* per filter; 0 = 30000 */
};

struct sp_gw_filter_envelope {
	const char *ip, *helo, *mail_from;
	const char *const *rcpts;
	size_t nrcpts;
};

struct sp_gw_filter_result {
	enum sp_gw_filter_action action; /* the strongest of all filters */
	char verdict[256];       /* e.g. "rspamd: spam score=12.1;
	                          * clamd: Eicar-Signature FOUND" */
};

int sp_gw_filter_run(const struct sp_gw_filter_opts *o,
    const struct sp_gw_filter_envelope *e, const uint8_t *msg, size_t len,
    struct sp_gw_filter_result *r);

#endif
