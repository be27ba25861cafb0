/*
 * The bridge's IMAP listener on the libuv loop: plain with STARTTLS and
 * implicit TLS (both TLS 1.2+, OpenSSL over memory BIOs), per-connection
 * output buffering with back-pressure, idle timeouts (60 s before login,
 * 30 min after, as RFC 3501 5.4 asks), and wake-ups from the accounts'
 * follow threads so IDLE clients hear of changes at once.
 *
 * The server logs one line per connection event to stderr (programs log;
 * this file belongs to the program): never content, never secrets.
 */
#ifndef SP_BRIDGE_IMAP_SERVER_H
#define SP_BRIDGE_IMAP_SERVER_H

#include <stddef.h>

#include <uv.h>

#include "bridge/bridge_conn.h"

struct imap_server;


/* 1: OpenPGP mail is served as stored, for clients that do their own
 * OpenPGP (sealpost-bridge serve --pgp-passthrough); 0: decrypted and
 * verified by client-core/pgpmail.h.  Set before the server starts. */
extern int imap_pgp_passthrough;

/*
 * Summaries made in the background (imap_cmd.c): run on the account's
 * background thread (bridge_account_start_background) after new messages
 * arrive, so a first FETCH of ENVELOPE/BODYSTRUCTURE after a sync finds
 * them kept.  The state is the thread's (create it, hand destroy to the
 * account).  run returns the number of summaries it made.
 */
struct imap_bgsum;
struct imap_bgsum *imap_bgsum_create(void);
void imap_bgsum_destroy(void *st);
size_t imap_bgsum_run(bridge_account *a, struct imap_bgsum *st);

/* o->port (STARTTLS) must be 0 or more. */
int imap_server_create(uv_loop_t *loop, const struct bridge_server_opts *o,
    struct imap_server **s_r, char *err, size_t errlen);
/* The ports bound (after create). */
int imap_server_port(const struct imap_server *s);
int imap_server_tls_port(const struct imap_server *s);
/* Thread-safe: the model of some account changed. */
void imap_server_wake(void *s);
/* Closes the listeners and every connection (BYE); the loop then ends. */
void imap_server_shutdown(struct imap_server *s);
/* After the loop ended. */
void imap_server_destroy(struct imap_server *s);

/* Makes DIR/cert.pem and DIR/key.pem unless both exist: a P-256 key and a
 * self-signed certificate for 127.0.0.1 and localhost that is not a CA
 * (basicConstraints CA:FALSE), so it cannot sign other certificates if
 * it leaks.  Paths of the files go to cert_r and key_r. */
int bridge_cert_ensure(const char *dir, char *cert_r, char *key_r,
    size_t cap, char *err, size_t errlen);

#endif
