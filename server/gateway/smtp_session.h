/*
 * One SMTP server session (RFC 5321 with PIPELINING, SIZE, 8BITMIME,
 * SMTPUTF8, ENHANCEDSTATUSCODES, STARTTLS and CHUNKING) as a pure state
 * machine: bytes in, replies out, and "events" for the work it cannot do
 * itself (checking a recipient, delivering a message, starting TLS).  It
 * does no I/O and never blocks, so the server drives it from the event
 * loop and the tests drive it from plain C.
 *
 * Driving it:
 *   sp_smtp_session_greet(s);                 // the 220 line
 *   loop: sp_smtp_session_feed(s, bytes, n);  // what the client sent
 *         ev = sp_smtp_session_run(s);        // process until an event
 *         write sp_smtp_session_output(s) to the client, then
 *         sp_smtp_session_output_clear(s);
 *         SP_SMTP_EV_MORE     -> read more input
 *         SP_SMTP_EV_RCPT     -> check sp_smtp_session_pending_rcpt(s),
 *                                then sp_smtp_session_rcpt_done()
 *         SP_SMTP_EV_MESSAGE  -> deliver sp_smtp_session_envelope(s),
 *                                then sp_smtp_session_message_done()
 *         SP_SMTP_EV_STARTTLS -> flush, start TLS (input buffered so far
 *                                was dropped: no injection across the
 *                                handshake), sp_smtp_session_tls_started()
 *         SP_SMTP_EV_CLOSE    -> flush and close
 *
 * The message is kept in memory the session owns, wiped (sodium_memzero)
 * before it is freed or reused.  Input is buffered up to a fixed cap;
 * sp_smtp_session_feed refuses more (SP_SMTP_EFULL) until run() consumed
 * some, which is the server's cue to stop reading from the socket.
 *
 * Not thread-safe: one session belongs to one connection.  Never logs.
 */
#ifndef SP_GATEWAY_SMTP_SESSION_H
#define SP_GATEWAY_SMTP_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "server/gateway/smtp_parse.h"

#define SP_SMTP_EFULL (-32390)   /* input buffer full: stop reading */
#define SP_SMTP_INPUT_MAX 65536  /* bytes of unprocessed input kept */

typedef struct sp_smtp_session sp_smtp_session;

struct sp_smtp_session_opts {
	const char *hostname;    /* in the greeting and the EHLO reply */
	uint64_t max_size;       /* message size limit (SIZE); 0 = 25 MiB */
	size_t max_rcpts;        /* per transaction; 0 = 100 */
	size_t line_margin;      /* accepted past 512 octets per line */
	int tls_available;       /* offer STARTTLS */
	unsigned max_errors;     /* refused commands before 421; 0 = 20 */
};

enum sp_smtp_event {
	SP_SMTP_EV_MORE = 0,
	SP_SMTP_EV_RCPT,
	SP_SMTP_EV_MESSAGE,
	SP_SMTP_EV_STARTTLS,
	SP_SMTP_EV_CLOSE,
};

/* The transaction handed over with SP_SMTP_EV_MESSAGE.  Valid until
 * sp_smtp_session_message_done(); the caller must not free anything. */
struct sp_smtp_envelope {
	const char *helo;
	const char *mail_from;   /* without <>; "" for the null sender */
	const char *const *rcpts;
	size_t nrcpts;
	const uint8_t *msg;      /* dot-unstuffed, CRLF line ends */
	size_t len;
	int smtputf8, body8bit;
};

/* Returns 0, SP_ENOMEM or SP_EINVAL; *s_r owns copies of the options. */
int sp_smtp_session_create(const struct sp_smtp_session_opts *o,
    sp_smtp_session **s_r);
/* Wipes the message and frees everything; NULL is fine. */
void sp_smtp_session_destroy(sp_smtp_session *s);

void sp_smtp_session_greet(sp_smtp_session *s);

/* Appends input.  0, or SP_SMTP_EFULL when it does not fit (nothing was
 * taken: call run() and feed again, or stop reading). */
int sp_smtp_session_feed(sp_smtp_session *s, const uint8_t *buf, size_t n);
/* Bytes of input buffered and not yet processed. */
size_t sp_smtp_session_pending_input(const sp_smtp_session *s);

enum sp_smtp_event sp_smtp_session_run(sp_smtp_session *s);

/* Replies waiting to be written (owned by the session). */
const uint8_t *sp_smtp_session_output(const sp_smtp_session *s,
    size_t *len_r);
void sp_smtp_session_output_clear(sp_smtp_session *s);

/* Adds one reply line (e.g. "421 4.4.2 timeout"), CRLF appended. */
void sp_smtp_session_reply(sp_smtp_session *s, const char *line);

/* After SP_SMTP_EV_RCPT: the address to check (valid until rcpt_done). */
const char *sp_smtp_session_pending_rcpt(const sp_smtp_session *s);
/* ok = 1 accepts the recipient with reply (NULL: "250 2.1.5 OK"); ok = 0
 * refuses it with reply (a full reply line, e.g. "550 5.1.1 ..."). */
void sp_smtp_session_rcpt_done(sp_smtp_session *s, int ok,
    const char *reply);

void sp_smtp_session_envelope(const sp_smtp_session *s,
    struct sp_smtp_envelope *e);
/* The reply to the message ("250 2.0.0 ...", "451 ...", ...); ends the
 * transaction and wipes the message. */
void sp_smtp_session_message_done(sp_smtp_session *s, const char *reply);

/* TLS is up: back to the start (RFC 3207 4.2), no STARTTLS offered. */
void sp_smtp_session_tls_started(sp_smtp_session *s);
int sp_smtp_session_tls_active(const sp_smtp_session *s);

/* Is a reply to a message pending (between EV_MESSAGE and message_done)
 * or is the session reading message data?  For shutdown decisions. */
int sp_smtp_session_in_data(const sp_smtp_session *s);

/* Counters for logs: messages accepted, bytes of the last message. */
unsigned sp_smtp_session_messages(const sp_smtp_session *s);

#endif
