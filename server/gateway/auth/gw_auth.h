/*
 * Sender authentication for inbound mail: SPF (RFC 7208), DKIM (RFC 6376,
 * RSA and Ed25519 per RFC 8463) and DMARC (RFC 7489, organisational domain
 * from the Public Suffix List), with the outcome as an
 * Authentication-Results value (RFC 8601) and the policy action.
 *
 * Blocking (DNS): call from a worker thread.  Thread-safe.  Never logs,
 * never exits.
 */
#ifndef SP_GATEWAY_AUTH_H
#define SP_GATEWAY_AUTH_H

#include <stddef.h>
#include <stdint.h>

enum sp_gw_action {
	SP_GW_ACCEPT = 0,
	SP_GW_QUARANTINE,  /* deliver, into Junk */
	SP_GW_REJECT,      /* 550 5.7.1 */
	SP_GW_TEMPFAIL,    /* 451 4.7.x: a temporary DNS error */
};

struct sp_gw_auth_opts {
	const char *dns;         /* "HOST:PORT" of the resolver; NULL = the
	                          * system's (/etc/resolv.conf) */
	const char *authserv_id; /* e.g. the gateway's host name */
	int timeout_ms;          /* per DNS query; 0 = 5000 */
	int record_only;         /* 1: never reject or quarantine, only record
	                          * (the stack uses it for loopback senders) */
	const char *psl_file;    /* Public Suffix List file; NULL = libpsl's
	                          * built-in / system list */
};

struct sp_gw_auth_result {
	char spf[16];            /* pass fail softfail neutral none
	                          * permerror temperror */
	char dkim[16];           /* pass fail none permerror temperror
	                          * (best of all signatures) */
	char dmarc[16];          /* pass fail none permerror temperror */
	char *auth_results;      /* malloc'd Authentication-Results value,
	                          * without the "Authentication-Results:" */
	enum sp_gw_action action;
	char reason[160];        /* for the SMTP reply and the log */
};

/*
 * Checks one message.  ip is the client's address (text, v4 or v6), helo
 * its EHLO name, mail_from the MAIL FROM path without <> (empty for the
 * null sender).  msg is the message as received (CRLF line ends).
 * Returns 0 and fills r (free with sp_gw_auth_result_free), or an errno
 * value for a failure of the checker itself (ENOMEM, EINVAL).
 */
int sp_gw_auth_check(const struct sp_gw_auth_opts *o, const char *ip,
    const char *helo, const char *mail_from, const uint8_t *msg, size_t len,
    struct sp_gw_auth_result *r);
void sp_gw_auth_result_free(struct sp_gw_auth_result *r);

/* `sealpost-gateway check --ip IP --helo NAME --mail-from ADDR
 * [--dns HOST:PORT] [--authserv-id ID] < message`: prints
 * "Authentication-Results: ..." and returns the exit status. */
int sp_gw_check_main(int argc, char **argv);

#endif
