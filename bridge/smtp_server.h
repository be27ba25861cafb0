/*
 * The bridge's SMTP submission server (RFC 6409) on 127.0.0.1: STARTTLS
 * and implicit TLS (bridge_tls.h), AUTH PLAIN and LOGIN with the bridge
 * password (after TLS only), PIPELINING, 8BITMIME, SMTPUTF8, SIZE,
 * ENHANCEDSTATUSCODES.  Commands run from a table (smtp_session.c).
 *
 * Recipients: the envelope's, handed to client-core's outbox.h, which
 * sends end to end to sealpost accounts, PGP/MIME to outside addresses
 * with a pinned OpenPGP key and the message as written to the others,
 * both through the gateway's outbound queue.  An unknown address in the
 * account's own domain is 550 5.1.1 at RCPT; the account's "encrypted
 * only" policy refuses after DATA with 550 5.7.1 and the server's words.
 *
 * The program logs (connection events only, never content or secrets).
 */
#ifndef SP_BRIDGE_SMTP_SERVER_H
#define SP_BRIDGE_SMTP_SERVER_H

#include <stddef.h>

#include <uv.h>

#include "bridge/bridge_conn.h"

#define SMTP_SIZE_MAX ((size_t)32 << 20)   /* default message limit */

struct smtp_server;

struct smtp_server_opts {
	struct bridge_server_opts l; /* port: STARTTLS */
	size_t size_max;         /* 0 = SMTP_SIZE_MAX */
};

/* On failure *s_r may still be set: run the loop (the listeners close),
 * then smtp_server_destroy(). */
/* The ports, shutdown and destroy: bridge_server_*() (bridge_conn.h). */
int smtp_server_create(uv_loop_t *loop, const struct smtp_server_opts *o,
    struct bridge_server **s_r, char *err, size_t errlen);

#endif
