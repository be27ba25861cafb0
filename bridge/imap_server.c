/*
 * The IMAP listener; see imap_server.h.
 *
 * Sockets, TLS (plain, STARTTLS, implicit), back-pressure and the idle
 * timer are bridge_tls.c's, shared with SMTP and POP3; this file holds
 * the IMAP side of a connection: the parser, the output buffer the
 * command handlers write (a worker's while a command runs on one), input
 * kept while a command waits, and the wake-ups for IDLE.
 */
#include "bridge/imap_server.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "bridge/bridge_conn.h"
#include "bridge/imap_conn.h"

#define TIMEOUT_NOTAUTH_MS (60 * 1000)
#define TIMEOUT_AUTH_MS (30 * 60 * 1000)

struct imap_server {
	struct bridge_server l;   /* first: the listener's */
	uv_loop_t *loop;
	uv_async_t wake;
	struct imap_conn *conns;  /* for the wake-ups */
	int shutting_down;
};

void
imap_conn_log(const struct imap_conn *c, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "imap[%llu]: ", (unsigned long long)c->id);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
imap_conn_closing(const struct imap_conn *c)
{
	/* No bc: bridge_tls.c freed its side (a worker still ran). */
	return c->bc == NULL || btls_closing(c->bc);
}

static void
conn_close(struct imap_conn *c)
{
	if (c->bc)
		btls_close(c->bc);
}

void
imap_conn_flush(struct imap_conn *c)
{
	if (c->out.len == 0 || imap_conn_closing(c)) {
		imap_out_reset(&c->out);
		return;
	}
	if (imap_out_failed(&c->out)) {
		conn_close(c);
		return;
	}
	btls_send(c->bc, c->out.p, c->out.len);
	imap_out_reset(&c->out);
}

void
imap_conn_free(struct imap_conn *c)
{
	imap_cmd_conn_finish(c);
	if (c->pending) {
		sodium_memzero(c->pending, c->pending_cap);
		free(c->pending);
	}
	imap_parser_destroy(c->parser);
	imap_out_finish(&c->out);
	free(c);
}

static void
touch_timer(struct imap_conn *c)
{
	btls_set_timeout(c->bc, c->state == IMAP_S_NOTAUTH ?
	    TIMEOUT_NOTAUTH_MS : TIMEOUT_AUTH_MS);
}

/* Keeps input that arrives while a command waits (bounded: reading
 * stops while one waits, so this holds at most what one read brought). */
static int
stash(struct imap_conn *c, const uint8_t *p, size_t n)
{
	if (n == 0)
		return 0;
	if (c->npending + n > c->pending_cap) {
		size_t cap = (c->npending + n) * 2;
		uint8_t *q = malloc(cap);

		if (q == NULL)
			return -1;
		if (c->pending) {
			memcpy(q, c->pending, c->npending);
			sodium_memzero(c->pending, c->pending_cap);
			free(c->pending);
		}
		c->pending = q;
		c->pending_cap = cap;
	}
	memcpy(c->pending + c->npending, p, n);
	c->npending += n;
	return 0;
}

/* After a command: 1 when the connection stops reading here. */
static int
after_command(struct imap_conn *c)
{
	if (c->state == IMAP_S_LOGOUT) {
		imap_conn_flush(c);
		conn_close(c);
		return 1;
	}
	if (c->starttls_now) {
		/* Anything the client sent after STARTTLS in the clear is
		 * dropped, never run as if it came over TLS (CVE-2011-0411):
		 * this read's rest is not parsed, and bridge_tls switches
		 * before the next. */
		c->starttls_now = 0;
		imap_conn_flush(c);
		btls_starttls(c->bc);
		return 1;
	}
	return 0;
}

/* Plaintext from the client: parse and run every complete command. */
static void
conn_input(struct imap_conn *c, const uint8_t *p, size_t n)
{
	if (c->job || c->parked) {
		if (stash(c, p, n) != 0)
			conn_close(c);
		return;
	}
	while (n > 0 && !imap_conn_closing(c)) {
		struct imap_command *cmd;
		const char *tag, *err;
		size_t used = 0;
		int rc;

		rc = imap_parser_feed(c->parser, p, n, &used, &cmd, &tag, &err);
		p += used;
		n -= used;
		switch (rc) {
		case IMAP_PARSE_MORE:
			break;
		case IMAP_PARSE_CONTINUE:
			imap_out_str(&c->out, "+ OK\r\n");
			break;
		case IMAP_PARSE_DONE:
			if (imap_cmd_run(c, cmd) == IMAP_CMD_WAIT) {
				btls_pause(c->bc);
				if (stash(c, p, n) != 0)
					conn_close(c);
				imap_conn_flush(c);
				return;
			}
			if (after_command(c))
				return;
			break;
		case IMAP_PARSE_ERROR:
			imap_out_printf(&c->out, "%s BAD %s\r\n",
			    tag ? tag : "*", err);
			break;
		default:
			imap_out_printf(&c->out, "* BYE %s\r\n", err);
			imap_conn_flush(c);
			conn_close(c);
			return;
		}
	}
	imap_conn_flush(c);
}

void
imap_conn_resume(struct imap_conn *c)
{
	uint8_t *p;
	size_t n, cap;

	if (imap_conn_closing(c))
		return;
	if (c->parked) {
		struct imap_command *cmd = c->parked;

		c->parked = NULL;
		if (imap_cmd_run(c, cmd) == IMAP_CMD_WAIT) {
			imap_conn_flush(c);
			return;
		}
	}
	imap_conn_flush(c);
	if (c->job == NULL && after_command(c))
		return;
	/* What came in meanwhile, in order; it may wait again. */
	p = c->pending;
	n = c->npending;
	cap = c->pending_cap;
	c->pending = NULL;
	c->npending = c->pending_cap = 0;
	if (n > 0)
		conn_input(c, p, n);
	if (p) {
		sodium_memzero(p, cap);
		free(p);
	}
	if (!imap_conn_closing(c) && !c->job && !c->parked) {
		touch_timer(c);
		btls_resume(c->bc);
	}
}

/* ---- bridge_tls callbacks ----------------------------------------------- */

static int
conn_open(struct btls_conn *bc, void *arg, void **state_r)
{
	struct imap_server *s = arg;
	struct imap_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return -1;
	if (imap_parser_create(NULL, &c->parser) != 0) {
		free(c);
		return -1;
	}
	c->srv = s;
	c->bc = bc;
	c->loop = s->loop;
	c->id = btls_id(bc);
	c->state = IMAP_S_NOTAUTH;
	imap_out_init(&c->out);
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	*state_r = c;
	imap_cmd_greeting(c);
	imap_conn_flush(c);
	return 0;
}

/* Plaintext from the client (over TLS: decrypted). */
static void
conn_read(void *state, const uint8_t *p, size_t n)
{
	struct imap_conn *c = state;

	touch_timer(c);
	conn_input(c, p, n);
}

static void
conn_timeout(void *state)
{
	struct imap_conn *c = state;

	if (c->job == NULL) {   /* else out is the worker's */
		imap_out_str(&c->out, "* BYE idle for too long\r\n");
		imap_conn_flush(c);
	}
}

static void
conn_shutdown(void *state)
{
	struct imap_conn *c = state;

	imap_out_str(&c->out, "* BYE the bridge is stopping\r\n");
	imap_conn_flush(c);
}

/* The connection's handles are closed and bridge_tls frees its side. */
static void
conn_finish(void *state)
{
	struct imap_conn *c = state;

	c->bc = NULL;
	if (c->prev)
		c->prev->next = c->next;
	else
		c->srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
	/* A worker still uses the connection: imap_cmd.c frees it after. */
	if (c->job) {
		c->free_pending = 1;
		return;
	}
	imap_conn_free(c);
}

static const struct btls_proto imap_proto = {
	.name = "imap",
	.open = conn_open,
	.input = conn_read,
	.shutdown = conn_shutdown,
	.finish = conn_finish,
	.timeout = conn_timeout,
};

/* ---- the server --------------------------------------------------------- */

int
imap_server_tls_available(const struct imap_conn *c)
{
	return c->bc != NULL && btls_can_starttls(c->bc);
}

bridge_account *
imap_server_find_account(struct imap_server *s, const char *user)
{
	return bridge_server_find_account(&s->l, user);
}

static void
on_wake(uv_async_t *a)
{
	struct imap_server *s = a->data;
	struct imap_conn *c, *next;

	for (c = s->conns; c; c = next) {
		next = c->next;
		if (!imap_conn_closing(c) && c->state == IMAP_S_SELECTED &&
		    c->idling)
			imap_cmd_changed(c);
	}
}

void
imap_server_wake(void *arg)
{
	struct imap_server *s = arg;

	uv_async_send(&s->wake);
}

int
imap_server_create(uv_loop_t *loop, const struct bridge_server_opts *o,
    struct imap_server **s_r, char *err, size_t errlen)
{
	struct bridge_server *b;
	struct imap_server *s;
	int rc;

	*s_r = NULL;
	/* On failure the listeners opened are closed by the caller's loop
	 * run; the struct stays behind (the bridge exits). */
	if ((rc = bridge_server_create(loop, sizeof(*s), o, &imap_proto,
	    TIMEOUT_NOTAUTH_MS, &b, err, errlen)) != 0)
		return rc;
	s = (struct imap_server *)b;
	s->loop = loop;
	uv_async_init(loop, &s->wake, on_wake);
	s->wake.data = s;
	*s_r = s;
	return 0;
}

int
imap_server_port(const struct imap_server *s)
{
	return bridge_server_port(&s->l);
}

int
imap_server_tls_port(const struct imap_server *s)
{
	return bridge_server_tls_port(&s->l);
}

void
imap_server_shutdown(struct imap_server *s)
{
	if (s->shutting_down)
		return;
	s->shutting_down = 1;
	bridge_server_shutdown(&s->l);
	uv_close((uv_handle_t *)&s->wake, NULL);
}

void
imap_server_destroy(struct imap_server *s)
{
	if (s)
		bridge_server_destroy(&s->l);
}
