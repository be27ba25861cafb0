/*
 * The listener of the bridge's IMAP, SMTP submission and POP3 servers on
 * the libuv loop: a plain port (with STARTTLS/STLS on request) and an
 * implicit-TLS port, TLS 1.2+ over OpenSSL memory BIOs, buffered output
 * with back-pressure, an idle timer per connection.  One implementation,
 * so the three protocols share the rules that matter (plaintext after
 * STARTTLS dropped, reading stopped at the output limit).
 *
 * The protocol plugs in through struct btls_proto: open() when a client
 * connects (write the greeting), input() with plaintext bytes as they
 * arrive (over TLS: decrypted), shutdown() when the server stops (write a
 * last line), finish() when the connection is gone (free the state).
 * Output written during a callback is sent when the callback returns.
 *
 * Everything runs on the loop thread.  The server logs one line per
 * connection event to stderr (this file belongs to the program): never
 * content, never secrets.
 */
#ifndef SP_BRIDGE_TLS_H
#define SP_BRIDGE_TLS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct btls_server;
struct btls_conn;

struct btls_proto {
	const char *name;        /* "imap", "smtp", "pop3": log prefix */
	/* A client connected; *state_r is handed to the other callbacks.
	 * Non-zero closes the connection at once. */
	int (*open)(struct btls_conn *c, void *arg, void **state_r);
	void (*input)(void *state, const uint8_t *p, size_t n);
	void (*shutdown)(void *state);
	void (*finish)(void *state);
	void (*timeout)(void *state);   /* before the close; may write */
};

struct btls_opts {
	const char *host;
	int port;                /* plain (+STARTTLS); -1 = none, 0 = any */
	int tls_port;            /* implicit TLS; -1 = none, 0 = any */
	const char *cert_file, *key_file;
	const struct btls_proto *proto;
	void *arg;               /* for proto->open */
	unsigned timeout_ms;     /* idle timeout before btls_set_timeout */
};

int btls_server_create(uv_loop_t *loop, const struct btls_opts *o,
    struct btls_server **s_r, char *err, size_t errlen);
int btls_server_port(const struct btls_server *s);
int btls_server_tls_port(const struct btls_server *s);
/* Calls proto->shutdown and closes every connection and the listeners;
 * the loop then ends once their handles are closed. */
void btls_server_shutdown(struct btls_server *s);
/* After the loop ended.  NULL ok. */
void btls_server_destroy(struct btls_server *s);

/* ---- for the protocol, on its connection ------------------------------ */

/* Queues bytes for the client (sent after the current callback). */
void btls_write(struct btls_conn *c, const void *p, size_t n);
void btls_printf(struct btls_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Sends what is queued now. */
void btls_flush(struct btls_conn *c);
/* Sends p now, without copying it when nothing is queued before it (for
 * a protocol with its own output buffer); before the TLS handshake ends
 * it is queued like btls_write. */
void btls_send(struct btls_conn *c, const void *p, size_t n);
/* After the reply now queued: switch to TLS.  Input bytes that arrived in
 * the clear after the command are dropped, never run as if they came over
 * TLS (CVE-2011-0411): the protocol stops feeding its parser when it asks
 * for this and resets it.  Outside a callback it switches at once. */
void btls_starttls(struct btls_conn *c);
/* 1 when the connection is TLS now (or will be after this reply). */
int btls_is_tls(const struct btls_conn *c);
/* 1 when STARTTLS can be offered (plain and not switching). */
int btls_can_starttls(const struct btls_conn *c);
/* Closes after the queued output is sent. */
void btls_close(struct btls_conn *c);
int btls_closing(const struct btls_conn *c);
/* Restarts the idle timer with ms from now on. */
void btls_set_timeout(struct btls_conn *c, unsigned ms);
/* The protocol holds its input (a command waits): reading stops until
 * btls_resume, whatever the output queue does meanwhile. */
void btls_pause(struct btls_conn *c);
void btls_resume(struct btls_conn *c);
/* The connection's number in the log lines. */
uint64_t btls_id(const struct btls_conn *c);
void btls_log(const struct btls_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Binds and listens on host:port (0: any free port; its number goes to
 * *port_r) with t->data = data.  0, or a negative libuv code with err;
 * t is initialised either way and must be closed by the caller.  For
 * the bridge's other listeners too (autoconfig). */
int btls_listen(uv_loop_t *loop, uv_tcp_t *t, const char *host, int port,
    int backlog, uv_connection_cb cb, void *data, int *port_r, char *err,
    size_t errlen);

#endif
