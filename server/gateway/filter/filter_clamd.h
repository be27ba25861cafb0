/*
 * clamd client (internal to the filter library): INSTREAM over TCP or a
 * unix socket, and the parser of its one-line reply.
 *
 * Return codes follow crypto/error.h: 0, a positive errno (EAGAIN from the
 * parser means "need more bytes"; socket errors from filter_net.h) or
 * SP_EFORMAT / SP_ELIMIT for a reply that is not clamd's.
 */
#ifndef SP_GATEWAY_FILTER_CLAMD_H
#define SP_GATEWAY_FILTER_CLAMD_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/error.h"

/* A reply line longer than this (terminator excluded) is refused. */
#define FILTER_CLAMD_REPLY_MAX 1024
/* INSTREAM chunk size; clamd's own default StreamMaxLength is 25 MB. */
#define FILTER_CLAMD_CHUNK (64 * 1024)

enum filter_clamd_kind {
	FILTER_CLAMD_CLEAN = 0, /* "stream: OK" */
	FILTER_CLAMD_FOUND,     /* "stream: NAME FOUND" */
	FILTER_CLAMD_LIMIT,     /* "INSTREAM size limit exceeded. ERROR" */
	FILTER_CLAMD_ERROR,     /* any other "... ERROR" */
};

struct filter_clamd_reply {
	enum filter_clamd_kind kind;
	/* FOUND: the signature name; ERROR: clamd's text.  Printable ASCII
	 * only, NUL-terminated, possibly cut. */
	char text[128];
};

/*
 * Parses clamd's reply from buf[0..len), all bytes received so far; eof is
 * 1 once the peer has closed.  The reply ends at the first NUL (z-commands)
 * or LF.  Returns 0 with *r filled, EAGAIN when the terminator has not come
 * yet (and eof is 0), SP_ETRUNC when the peer closed before it, SP_ELIMIT
 * past FILTER_CLAMD_REPLY_MAX, SP_EFORMAT for anything else.  Pure: no
 * state between calls, so calling it again on a longer buffer is correct.
 */
int filter_clamd_parse(const uint8_t *buf, size_t len, int eof,
    struct filter_clamd_reply *r) SP_WUR;

/*
 * Scans msg[0..len) with clamd at addr ("HOST:PORT" or a socket path),
 * everything before the deadline (filter_net_now_ms() scale).  Returns 0
 * with *r filled (which may say ERROR or LIMIT), or a socket/parse error.
 */
int filter_clamd_scan(const char *addr, const uint8_t *msg, size_t len,
    int64_t deadline, struct filter_clamd_reply *r) SP_WUR;

#endif
