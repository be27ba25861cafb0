/*
 * The IMAP listener; see imap_server.h.
 *
 * TLS runs over memory BIOs: bytes from the socket go into rbio, OpenSSL
 * turns them into plaintext for the parser, and whatever OpenSSL writes
 * into wbio goes to the socket.  So plain, STARTTLS and implicit TLS share
 * one read path and one write path, and libuv owns every socket.
 */
#include "bridge/imap_server.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <sodium.h>

#include "bridge/imap_conn.h"

#define TIMEOUT_NOTAUTH_MS (60 * 1000)
#define TIMEOUT_AUTH_MS (30 * 60 * 1000)
#define WRITE_QUEUE_MAX ((size_t)8 << 20)   /* then stop reading */

struct imap_server {
	uv_loop_t *loop;
	uv_tcp_t listen, listen_tls;
	int have_tls_listener;
	uv_async_t wake;
	SSL_CTX *ctx;
	bridge_account **accounts;
	size_t naccounts;
	struct imap_conn *conns;
	int port, tls_port;
	uint64_t next_id;
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

/* ---- writing ------------------------------------------------------------ */

struct write_req {
	uv_write_t req;
	struct imap_conn *c;
	size_t len;
	char data[];
};

static void conn_close(struct imap_conn *c);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);

static void
on_write(uv_write_t *req, int status)
{
	struct write_req *w = (struct write_req *)req;
	struct imap_conn *c = w->c;

	sodium_memzero(w->data, w->len);
	free(w);
	if (status < 0) {
		conn_close(c);
		return;
	}
	if (!c->closing && !c->job && !c->parked &&
	    c->tcp.write_queue_size < WRITE_QUEUE_MAX / 2)
		/* libuv refuses NULL callbacks: reading never resumed. */
		(void)uv_read_start((uv_stream_t *)&c->tcp, on_alloc,
		    on_read);
}

static void
send_raw(struct imap_conn *c, const void *p, size_t n)
{
	struct write_req *w;
	uv_buf_t b;

	if (n == 0 || c->closing)
		return;
	if ((w = malloc(sizeof(*w) + n)) == NULL) {
		conn_close(c);
		return;
	}
	w->c = c;
	w->len = n;
	memcpy(w->data, p, n);
	b = uv_buf_init(w->data, (unsigned)n);
	if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
		sodium_memzero(w->data, n);
		free(w);
		conn_close(c);
	}
}

/* Moves what OpenSSL wrote into wbio onto the socket. */
static void
tls_drain(struct imap_conn *c)
{
	char buf[16384];
	int n;

	while ((n = BIO_read(c->wbio, buf, sizeof(buf))) > 0)
		send_raw(c, buf, (size_t)n);
}

void
imap_conn_flush(struct imap_conn *c)
{
	if (c->out.len == 0 || c->closing) {
		imap_out_reset(&c->out);
		return;
	}
	if (imap_out_failed(&c->out)) {
		conn_close(c);
		return;
	}
	if (c->ssl) {
		size_t off = 0;

		/* Before the handshake ends (implicit TLS), keep it. */
		if (!SSL_is_init_finished(c->ssl))
			return;
		while (off < c->out.len) {
			size_t n = c->out.len - off > 16384 ? 16384 :
			    c->out.len - off;
			int w = SSL_write(c->ssl, c->out.p + off, (int)n);

			if (w <= 0) {
				conn_close(c);
				return;
			}
			off += (size_t)w;
			tls_drain(c);
		}
	} else {
		send_raw(c, c->out.p, c->out.len);
	}
	imap_out_reset(&c->out);
	if (c->tcp.write_queue_size > WRITE_QUEUE_MAX)
		(void)uv_read_stop((uv_stream_t *)&c->tcp);
}

/* ---- closing ------------------------------------------------------------ */

static void
on_handle_closed(uv_handle_t *h)
{
	struct imap_conn *c = h->data;

	if (--c->handles_open > 0)
		return;
	/* A worker still uses the connection: imap_cmd.c frees it after. */
	if (c->job) {
		c->free_pending = 1;
		return;
	}
	imap_conn_free(c);
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
	SSL_free(c->ssl);      /* frees both BIOs of the pair's SSL side */
	BIO_free(c->wbio);
	free(c);
}

static void
conn_close(struct imap_conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	imap_conn_log(c, "closed");
	if (c->prev)
		c->prev->next = c->next;
	else
		c->srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	uv_close((uv_handle_t *)&c->timer, on_handle_closed);
	uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

/* ---- reading ------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);

static void
touch_timer(struct imap_conn *c)
{
	uint64_t ms = c->state == IMAP_S_NOTAUTH ? TIMEOUT_NOTAUTH_MS :
	    TIMEOUT_AUTH_MS;

	(void)uv_timer_again(&c->timer);
	uv_timer_set_repeat(&c->timer, ms);
	(void)uv_timer_again(&c->timer);
}

static void
on_timeout(uv_timer_t *t)
{
	struct imap_conn *c = t->data;

	imap_conn_log(c, "idle timeout");
	if (c->job == NULL) {   /* else out is the worker's */
		imap_out_str(&c->out, "* BYE idle for too long\r\n");
		imap_conn_flush(c);
	}
	conn_close(c);
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
		 * dropped, never run as if it came over TLS (CVE-2011-0411). */
		c->starttls_now = 0;
		imap_conn_flush(c);
		if (imap_server_starttls(c) != 0)
			conn_close(c);
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
	while (n > 0 && !c->closing) {
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
				(void)uv_read_stop((uv_stream_t *)&c->tcp);
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

	if (c->closing)
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
	if (!c->closing && !c->job && !c->parked) {
		touch_timer(c);
		(void)uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
	}
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	static char buf[65536];  /* one loop thread: one buffer suffices */

	(void)h;
	(void)suggested;
	*b = uv_buf_init(buf, sizeof(buf));
}

static void
tls_input(struct imap_conn *c, const char *p, size_t n)
{
	char plain[16384];
	int r, e;

	while (n > 0 && !c->closing) {
		int w = BIO_write(c->rbio, p, (int)(n > 65536 ? 65536 : n));

		if (w <= 0) {
			conn_close(c);
			break;
		}
		p += w;
		n -= (size_t)w;
		if (!SSL_is_init_finished(c->ssl)) {
			r = SSL_do_handshake(c->ssl);
			tls_drain(c);
			if (r <= 0) {
				e = SSL_get_error(c->ssl, r);
				if (e != SSL_ERROR_WANT_READ) {
					imap_conn_log(c, "TLS handshake "
					    "failed");
					conn_close(c);
					break;
				}
				continue;
			}
			/* The greeting (implicit TLS) waited for this. */
			imap_conn_flush(c);
		}
		while (!c->closing && (r = SSL_read(c->ssl, plain,
		    sizeof(plain))) > 0)
			conn_input(c, (const uint8_t *)plain, (size_t)r);
		if (c->closing)
			break;
		e = SSL_get_error(c->ssl, r);
		tls_drain(c);
		if (e == SSL_ERROR_ZERO_RETURN || (e != SSL_ERROR_WANT_READ &&
		    e != SSL_ERROR_WANT_WRITE)) {
			conn_close(c);
			break;
		}
	}
	sodium_memzero(plain, sizeof(plain));
}

static void
on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct imap_conn *c = s->data;

	if (nread < 0) {
		conn_close(c);
		return;
	}
	if (nread == 0 || c->closing)
		return;
	touch_timer(c);
	if (c->ssl)
		tls_input(c, b->base, (size_t)nread);
	else
		conn_input(c, (const uint8_t *)b->base, (size_t)nread);
	sodium_memzero(b->base, (size_t)nread);
}

/* ---- TLS ---------------------------------------------------------------- */

static int
tls_setup(struct imap_conn *c)
{
	BIO *int_bio = NULL, *ext_bio = NULL;

	if ((c->ssl = SSL_new(c->srv->ctx)) == NULL)
		return -1;
	/* A BIO pair: OpenSSL uses one end; the other (ours) takes the
	 * bytes received and gives the bytes to send.  64 KiB each way
	 * holds a whole TLS record with room to spare. */
	if (!BIO_new_bio_pair(&int_bio, 65536, &ext_bio, 65536))
		return -1;
	SSL_set_bio(c->ssl, int_bio, int_bio);
	SSL_set_accept_state(c->ssl);
	c->rbio = c->wbio = ext_bio;
	return 0;
}

int
imap_server_starttls(struct imap_conn *c)
{
	imap_conn_log(c, "STARTTLS");
	return tls_setup(c);
}

int
imap_server_tls_available(const struct imap_conn *c)
{
	return c->ssl == NULL;
}

bridge_account *
imap_server_find_account(struct imap_server *s, const char *user)
{
	size_t i;

	for (i = 0; i < s->naccounts; i++)
		if (strcasecmp(bridge_account_address(s->accounts[i]),
		    user) == 0)
			return s->accounts[i];
	return NULL;
}

/* ---- accepting ---------------------------------------------------------- */

static void
accept_one(uv_stream_t *l, int implicit)
{
	struct imap_server *s = l->data;
	struct imap_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return;
	c->srv = s;
	c->id = ++s->next_id;
	c->state = IMAP_S_NOTAUTH;
	imap_out_init(&c->out);
	uv_tcp_init(s->loop, &c->tcp);
	uv_timer_init(s->loop, &c->timer);
	c->tcp.data = c;
	c->timer.data = c;
	c->handles_open = 2;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0 ||
	    imap_parser_create(NULL, &c->parser) != 0) {
		conn_close(c);
		return;
	}
	c->tls_implicit = implicit;
	if (implicit && tls_setup(c) != 0) {
		conn_close(c);
		return;
	}
	imap_conn_log(c, "connected (%s)", implicit ? "TLS" : "plain");
	uv_timer_start(&c->timer, on_timeout, TIMEOUT_NOTAUTH_MS,
	    TIMEOUT_NOTAUTH_MS);
	uv_tcp_nodelay(&c->tcp, 1);
	imap_cmd_greeting(c);
	imap_conn_flush(c);
	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void
on_connection(uv_stream_t *l, int status)
{
	if (status == 0)
		accept_one(l, 0);
}

static void
on_connection_tls(uv_stream_t *l, int status)
{
	if (status == 0)
		accept_one(l, 1);
}

static void
on_wake(uv_async_t *a)
{
	struct imap_server *s = a->data;
	struct imap_conn *c, *next;

	for (c = s->conns; c; c = next) {
		next = c->next;
		if (!c->closing && c->state == IMAP_S_SELECTED && c->idling)
			imap_cmd_changed(c);
	}
}

void
imap_server_wake(void *arg)
{
	struct imap_server *s = arg;

	uv_async_send(&s->wake);
}

static int
listen_on(struct imap_server *s, uv_tcp_t *t, const char *host, int port,
    uv_connection_cb cb, int *port_r, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss), rc;

	uv_tcp_init(s->loop, t);
	t->data = s;
	if ((rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss)) != 0 &&
	    (rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss)) != 0)
		goto fail;
	if ((rc = uv_tcp_bind(t, (const struct sockaddr *)&ss, 0)) != 0 ||
	    (rc = uv_listen((uv_stream_t *)t, 128, cb)) != 0 ||
	    (rc = uv_tcp_getsockname(t, (struct sockaddr *)&ss, &len)) != 0)
		goto fail;
	*port_r = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return 0;
fail:
	snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port,
	    uv_strerror(rc));
	return -rc;
}

int
imap_server_create(uv_loop_t *loop, const struct imap_server_opts *o,
    struct imap_server **s_r, char *err, size_t errlen)
{
	struct imap_server *s = calloc(1, sizeof(*s));
	int rc;

	*s_r = NULL;
	if (s == NULL)
		return ENOMEM;
	s->loop = loop;
	s->accounts = o->accounts;
	s->naccounts = o->naccounts;
	s->ctx = SSL_CTX_new(TLS_server_method());
	if (s->ctx == NULL ||
	    !SSL_CTX_set_min_proto_version(s->ctx, TLS1_2_VERSION) ||
	    SSL_CTX_use_certificate_chain_file(s->ctx, o->cert_file) != 1 ||
	    SSL_CTX_use_PrivateKey_file(s->ctx, o->key_file,
	    SSL_FILETYPE_PEM) != 1) {
		snprintf(err, errlen, "TLS setup with %s failed",
		    o->cert_file);
		SSL_CTX_free(s->ctx);
		free(s);
		return EIO;
	}
	SSL_CTX_set_options(s->ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_session_cache_mode(s->ctx, SSL_SESS_CACHE_OFF);
	uv_async_init(loop, &s->wake, on_wake);
	s->wake.data = s;
	if ((rc = listen_on(s, &s->listen, o->host, o->port, on_connection,
	    &s->port, err, errlen)) != 0)
		goto fail;
	if (o->tls_port >= 0) {
		s->have_tls_listener = 1;
		if ((rc = listen_on(s, &s->listen_tls, o->host, o->tls_port,
		    on_connection_tls, &s->tls_port, err, errlen)) != 0)
			goto fail;
	}
	*s_r = s;
	return 0;
fail:
	/* The handles are closed by the caller's loop run after shutdown. */
	*s_r = s;
	imap_server_shutdown(s);
	*s_r = NULL;
	return rc;
}

int
imap_server_port(const struct imap_server *s)
{
	return s->port;
}

int
imap_server_tls_port(const struct imap_server *s)
{
	return s->tls_port;
}

void
imap_server_shutdown(struct imap_server *s)
{
	struct imap_conn *c, *next;

	if (s->shutting_down)
		return;
	s->shutting_down = 1;
	for (c = s->conns; c; c = next) {
		next = c->next;
		imap_out_str(&c->out, "* BYE the bridge is stopping\r\n");
		imap_conn_flush(c);
		conn_close(c);
	}
	uv_close((uv_handle_t *)&s->listen, NULL);
	if (s->have_tls_listener)
		uv_close((uv_handle_t *)&s->listen_tls, NULL);
	uv_close((uv_handle_t *)&s->wake, NULL);
}

void
imap_server_destroy(struct imap_server *s)
{
	if (s == NULL)
		return;
	SSL_CTX_free(s->ctx);
	free(s);
}
