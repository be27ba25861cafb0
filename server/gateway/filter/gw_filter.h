/*
 * Content filters before encryption: rspamd over its HTTP protocol
 * (/checkv2) and clamd over INSTREAM.  Each is optional and each has a
 * configured action.  Blocking: call from a worker thread.  Thread-safe.
 * Never logs, never exits.
 *
 * The message goes to the filters in plaintext: put them on 127.0.0.1 or a
 * unix socket on the gateway's host (docs/threat-model.md).
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
	const char *rspamd;      /* "HOST:PORT", or NULL for none (a unix
	                          * socket path works too) */
	enum sp_gw_filter_action rspamd_spam_action; /* when rspamd says
	                          * "reject" or "add header"/"rewrite subject" */
	const char *clamd;       /* "HOST:PORT" or a unix socket path, or NULL */
	enum sp_gw_filter_action clamd_virus_action;
	int fail_open;           /* 1: an unreachable filter lets mail pass */
	int timeout_ms;          /* per filter; 0 = 30000 */
	/* Added after the first version; zero keeps the behaviour above. */
	enum sp_gw_filter_action rspamd_suspect_action; /* for "add header"
	                          * and "rewrite subject" only; PASS = use
	                          * rspamd_spam_action */
	enum sp_gw_filter_action clamd_limit_action; /* clamd refused the
	                          * message as larger than its StreamMaxLength:
	                          * PASS = deliver unscanned (noted in the
	                          * verdict); TEMPFAIL would defer it forever */
};

/*
 * rspamd's actions map as follows: "no action" -> PASS; "add header",
 * "rewrite subject" -> rspamd_suspect_action (or rspamd_spam_action);
 * "reject" -> rspamd_spam_action; "greylist", "soft reject" -> TEMPFAIL
 * (rspamd asks for a later retry).  clamd's "FOUND" -> clamd_virus_action.
 * A filter that cannot be reached, times out, answers an error or
 * something malformed counts as unreachable: PASS if fail_open, else
 * TEMPFAIL; the verdict says which and why.
 */

struct sp_gw_filter_envelope {
	const char *ip, *helo, *mail_from; /* NULL = not sent; mail_from ""
	                          * is the null sender */
	const char *const *rcpts;
	size_t nrcpts;
};

struct sp_gw_filter_result {
	enum sp_gw_filter_action action; /* the strongest of all filters */
	char verdict[256];       /* e.g. "rspamd: spam score=12.1;
	                          * clamd: Eicar-Signature FOUND" */
};

/*
 * Runs the configured filters on msg[0..len) (the message as received)
 * and fills *r.  Strength, weakest first: PASS, TAG, JUNK, TEMPFAIL,
 * REJECT (a definite rejection beats asking the sender to come back).
 * clamd runs first; when it already rejects, rspamd is not asked.  The
 * verdict is printable ASCII, cut to fit, "" when no filter is configured.
 *
 * Returns 0 (r filled; filter failures are part of the result, not an
 * error), SP_EINVAL for a NULL argument or an envelope value with control
 * characters (it would split rspamd's request headers), SP_ENOMEM.
 */
int sp_gw_filter_run(const struct sp_gw_filter_opts *o,
    const struct sp_gw_filter_envelope *e, const uint8_t *msg, size_t len,
    struct sp_gw_filter_result *r);

/* "pass", "tag", "junk", "reject", "tempfail" (static; "?" otherwise). */
const char *sp_gw_filter_action_name(enum sp_gw_filter_action a);

#endif
