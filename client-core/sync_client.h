/*
 * The sync protocol client (docs/protocol.md) over libwebsockets, TLS or
 * plain.  This is the connection client-core's sync engine stands on; it is
 * also what the server's integration tests and benchmarks talk through.
 *
 * Blocking by design: each call services the connection until its answer
 * arrives or the timeout passes.  PUSH frames (id 0) that arrive meanwhile
 * are kept, in order, for sp_client_next_push().  One sp_client is one
 * connection with its own libwebsockets context; it is not thread-safe.
 */
#ifndef SP_CLIENT_SYNC_CLIENT_H
#define SP_CLIENT_SYNC_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "proto/frame.h"

typedef struct sp_client sp_client;

struct sp_client_opts {
	const char *host;        /* e.g. "127.0.0.1" */
	int port;
	int tls;                 /* wss:// (verified against ca_file) */
	const char *ca_file;     /* PEM; NULL = system store */
	const char *device;      /* sent in HELLO; may be NULL */
	int timeout_ms;          /* per call; 0 = 10000 */
	int skip_hello;          /* tests: connect without sending HELLO */
};

/* A received frame; f points into buf.  Free with sp_client_msg_free. */
struct sp_client_msg {
	struct sp_frame f;
	uint8_t *buf;
	size_t len;
};

void sp_client_msg_free(struct sp_client_msg *m);

/*
 * Connects, completes the WebSocket (and TLS) handshake and, unless
 * skip_hello, exchanges HELLO/WELCOME.  Errors: ECONNREFUSED, ETIMEDOUT,
 * EPROTO (handshake or protocol failure); a reason goes to err.
 */
int sp_client_connect(const struct sp_client_opts *o, sp_client **c_r,
    char *err, size_t errlen);
/* Closes and frees; accepts NULL. */
void sp_client_close(sp_client *c);

/*
 * Sends req (its id is assigned here) and waits for the frame with the same
 * id.  Returns 0 with *reply_r (an ERROR frame is a reply too: check
 * (*reply_r)->f.type), ETIMEDOUT, or EPIPE if the connection closed.
 */
int sp_client_call(sp_client *c, struct sp_frame *req,
    struct sp_client_msg **reply_r);

/* Pipelining: send now, collect the reply later by id. */
int sp_client_send(sp_client *c, struct sp_frame *req, uint64_t *id_r);
int sp_client_wait(sp_client *c, uint64_t id, struct sp_client_msg **reply_r);

/* Next PUSH (or unsolicited id-0 frame), waiting up to timeout_ms. */
int sp_client_next_push(sp_client *c, int timeout_ms,
    struct sp_client_msg **m_r);

/* Raw bytes as one WebSocket message (tests: malformed frames). */
int sp_client_send_raw(sp_client *c, const void *buf, size_t len,
    int binary);

/* Services the connection for up to ms milliseconds. */
void sp_client_service(sp_client *c, int ms);

/* 1 once the server closed the connection. */
int sp_client_is_closed(const sp_client *c);

/*
 * Turns the result of sp_client_call into 0, or an error with a sentence
 * in err: the call's own error (ETIMEDOUT, EPIPE), SP_ESERVER when the
 * server answered ERROR (its code and message in err), EPROTO when the
 * reply is not of type want.  what names the request for the sentence.
 */
int sp_client_expect(int rc, struct sp_client_msg *m, uint32_t want,
    const char *what, char *err, size_t errlen);

#endif
