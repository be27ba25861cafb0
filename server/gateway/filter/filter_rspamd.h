/*
 * rspamd client (internal to the filter library): POST /checkv2 over plain
 * HTTP/1.1 (TCP or a unix socket), and the parser of its reply: an HTTP
 * head, then a JSON object of which we read "action" and "score".
 *
 * Return codes follow crypto/error.h: 0, a positive errno (EAGAIN from the
 * parser means "need more bytes"; socket errors from filter_net.h),
 * SP_EFORMAT / SP_ETRUNC / SP_ELIMIT for a reply that is not rspamd's, or
 * SP_EINVAL for an envelope value that cannot go into a header.
 */
#ifndef SP_GATEWAY_FILTER_RSPAMD_H
#define SP_GATEWAY_FILTER_RSPAMD_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/error.h"
#include "server/gateway/filter/gw_filter.h"

/* Limits on what rspamd may send back.  The body holds every symbol with
 * its description, which grows with the rules, not with the message. */
#define FILTER_RSPAMD_HEAD_MAX (8 * 1024)
#define FILTER_RSPAMD_BODY_MAX (1024 * 1024)
#define FILTER_RSPAMD_JSON_DEPTH 16
/* Longest envelope value we put in a request header. */
#define FILTER_RSPAMD_VALUE_MAX 1000

struct filter_rspamd_reply {
	int status;              /* HTTP status */
	char action[32];         /* 200: rspamd's action, e.g. "add header" */
	double score;            /* 200: the message's score */
	double required_score;   /* 200: the reject threshold (0 if absent) */
	char error[128];         /* other statuses: rspamd's "error" text,
	                          * printable ASCII, possibly cut or empty */
};

/* Incremental reply parser: caller-owned, set up with _init. */
struct filter_rspamd_parser {
	size_t scanned;          /* head bytes searched for the blank line */
	size_t body_off;         /* 0 until the head is complete */
	size_t content_length;
	int has_length;
	int status;
};

void filter_rspamd_parser_init(struct filter_rspamd_parser *p);

/*
 * Parses buf[0..len), all bytes received so far (the same buffer, grown,
 * on each call); eof is 1 once the peer has closed.  Returns 0 with *r
 * filled when the reply is complete and well formed (any HTTP status: a
 * non-200 reply is well formed too, with r->error), EAGAIN for more bytes,
 * SP_ETRUNC if the peer closed early, SP_ELIMIT past the limits above,
 * SP_EFORMAT otherwise (including chunked or compressed bodies, which we
 * never ask for).
 */
int filter_rspamd_parse(struct filter_rspamd_parser *p, const uint8_t *buf,
    size_t len, int eof, struct filter_rspamd_reply *r) SP_WUR;

/*
 * Builds the request head for a message of msglen bytes: every envelope
 * value must be non-empty printable text without control characters (UTF-8
 * allowed) of at most FILTER_RSPAMD_VALUE_MAX bytes, else SP_EINVAL; NULL
 * values are left out.  *head_r is malloc'd, the caller's to wipe and free.
 */
int filter_rspamd_head(const struct sp_gw_filter_envelope *e, size_t msglen,
    char **head_r, size_t *len_r) SP_WUR;

/* One /checkv2 exchange with rspamd at addr, bounded by the deadline. */
int filter_rspamd_check(const char *addr,
    const struct sp_gw_filter_envelope *e, const uint8_t *msg, size_t len,
    int64_t deadline, struct filter_rspamd_reply *r) SP_WUR;

#endif
