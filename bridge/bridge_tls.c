/*
 * The line-protocol listener; see bridge_tls.h.
 *
 * Bytes from the socket go into the TLS memory BIO (or straight to the
 * protocol when plain); whatever OpenSSL writes into its BIO goes to the
 * socket.  Plain, STARTTLS and implicit TLS share one read path and one
 * write path, and libuv owns every socket.
 */
#include "bridge/bridge_tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sodium.h>

#define WRITE_QUEUE_MAX ((size_t)8 << 20)   /* then stop reading */
#define OUT_MAX ((size_t)64 << 20)          /* queued output: a bug */

struct btls_server {
	uv_loop_t *loop;
	uv_tcp_t listen, listen_tls;
	int have_listen, have_listen_tls;
	SSL_CTX *ctx;
	const struct btls_proto *proto;
	void *arg;
	unsigned timeout_ms;
	struct btls_conn *conns;
	int port, tls_port;
	uint64_t next_id;
	int shutting_down;
};

struct btls_conn {
	struct btls_server *srv;
	struct btls_conn *next, *prev;
	uv_tcp_t tcp;
	uv_timer_t timer;
	int handles_open;
	SSL *ssl;
	BIO *bio;                /* our end of the BIO pair */
	int starttls_pending;
	int paused;              /* the protocol holds input (btls_pause) */
	int closing, close_after;
	int in_callback;
	void *state;
	char *out;               /* queued plaintext */
	size_t out_len, out_cap;
	int out_failed;
	uint64_t id;
};

void
btls_log(const struct btls_conn *c, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s[%llu]: ", c->srv->proto->name,
	    (unsigned long long)c->id);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- writing ------------------------------------------------------------ */

struct write_req {
	uv_write_t req;
	struct btls_conn *c;
	size_t len;
	char data[];
};

static void conn_close(struct btls_conn *c);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);

static void
on_write(uv_write_t *req, int status)
{
	struct write_req *w = (struct write_req *)req;
	struct btls_conn *c = w->c;

	sodium_memzero(w->data, w->len);
	free(w);
	if (status < 0) {
		conn_close(c);
		return;
	}
	if (!c->closing && !c->paused &&
	    c->tcp.write_queue_size < WRITE_QUEUE_MAX / 2)
		/* libuv refuses NULL callbacks: reading would never resume. */
		(void)uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void
send_raw(struct btls_conn *c, const void *p, size_t n)
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

static void
tls_drain(struct btls_conn *c)
{
	char buf[16384];
	int n;

	while ((n = BIO_read(c->bio, buf, sizeof(buf))) > 0)
		send_raw(c, buf, (size_t)n);
}

void
btls_write(struct btls_conn *c, const void *p, size_t n)
{
	if (c->closing || c->out_failed || n == 0)
		return;
	if (c->out_len + n > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		char *np;

		while (cap < c->out_len + n)
			cap *= 2;
		if (cap > OUT_MAX || (np = malloc(cap)) == NULL) {
			c->out_failed = 1;
			return;
		}
		if (c->out) {
			memcpy(np, c->out, c->out_len);
			sodium_memzero(c->out, c->out_cap);
			free(c->out);
		}
		c->out = np;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, p, n);
	c->out_len += n;
}

void
btls_printf(struct btls_conn *c, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	btls_write(c, buf, (size_t)n < sizeof(buf) ? (size_t)n :
	    sizeof(buf) - 1);
}

/* Plaintext onto the socket now (over TLS: encrypted), then reading stops
 * while the socket's queue is over its limit.  The handshake is done. */
static void
send_plain(struct btls_conn *c, const char *p, size_t len)
{
	if (c->ssl) {
		size_t off = 0;

		while (off < len) {
			size_t n = len - off > 16384 ? 16384 : len - off;
			int w = SSL_write(c->ssl, p + off, (int)n);

			if (w <= 0) {
				conn_close(c);
				return;
			}
			off += (size_t)w;
			tls_drain(c);
		}
	} else {
		send_raw(c, p, len);
	}
	if (!c->closing && c->tcp.write_queue_size > WRITE_QUEUE_MAX)
		(void)uv_read_stop((uv_stream_t *)&c->tcp);
}

/* 1 while output must wait: before the handshake ends (implicit TLS). */
static int
must_queue(const struct btls_conn *c)
{
	return c->ssl != NULL && !SSL_is_init_finished(c->ssl);
}

void
btls_flush(struct btls_conn *c)
{
	if (c->closing)
		return;
	if (c->out_failed) {
		conn_close(c);
		return;
	}
	if (c->out_len == 0 || must_queue(c))
		return;
	send_plain(c, c->out, c->out_len);
	sodium_memzero(c->out, c->out_len);
	c->out_len = 0;
}

void
btls_send(struct btls_conn *c, const void *p, size_t n)
{
	if (c->closing || c->out_failed || n == 0)
		return;
	/* Behind what is queued, or before the handshake: in order. */
	if (c->out_len > 0 || must_queue(c)) {
		btls_write(c, p, n);
		return;
	}
	send_plain(c, p, n);
}

/* ---- closing ------------------------------------------------------------ */

static void
on_handle_closed(uv_handle_t *h)
{
	struct btls_conn *c = h->data;

	if (--c->handles_open > 0)
		return;
	if (c->state)
		c->srv->proto->finish(c->state);
	SSL_free(c->ssl);
	BIO_free(c->bio);
	if (c->out) {
		sodium_memzero(c->out, c->out_cap);
		free(c->out);
	}
	free(c);
}

static void
conn_close(struct btls_conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	btls_log(c, "closed");
	if (c->prev)
		c->prev->next = c->next;
	else
		c->srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	uv_close((uv_handle_t *)&c->timer, on_handle_closed);
	uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

void
btls_close(struct btls_conn *c)
{
	if (c->in_callback) {
		c->close_after = 1;
		return;
	}
	btls_flush(c);
	conn_close(c);
}

int
btls_closing(const struct btls_conn *c)
{
	return c->closing || c->close_after;
}

/* ---- TLS ---------------------------------------------------------------- */

static int
tls_setup(struct btls_conn *c)
{
	BIO *int_bio = NULL, *ext_bio = NULL;

	if ((c->ssl = SSL_new(c->srv->ctx)) == NULL)
		return -1;
	if (!BIO_new_bio_pair(&int_bio, 65536, &ext_bio, 65536))
		return -1;
	SSL_set_bio(c->ssl, int_bio, int_bio);
	SSL_set_accept_state(c->ssl);
	c->bio = ext_bio;
	return 0;
}

static void
starttls_now(struct btls_conn *c)
{
	c->starttls_pending = 0;
	btls_log(c, "STARTTLS");
	if (tls_setup(c) != 0)
		conn_close(c);
}

void
btls_starttls(struct btls_conn *c)
{
	if (c->closing || c->ssl != NULL)
		return;
	if (c->in_callback) {
		c->starttls_pending = 1;
		return;
	}
	/* Outside a callback no input is under way: switch now, so the
	 * next bytes read go through TLS. */
	btls_flush(c);
	if (!c->closing)
		starttls_now(c);
}

int
btls_is_tls(const struct btls_conn *c)
{
	return c->ssl != NULL || c->starttls_pending;
}

int
btls_can_starttls(const struct btls_conn *c)
{
	return !btls_is_tls(c);
}

/* ---- reading ------------------------------------------------------------ */

void
btls_pause(struct btls_conn *c)
{
	c->paused = 1;
	if (!c->closing)
		(void)uv_read_stop((uv_stream_t *)&c->tcp);
}

void
btls_resume(struct btls_conn *c)
{
	c->paused = 0;
	if (!c->closing)
		(void)uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

uint64_t
btls_id(const struct btls_conn *c)
{
	return c->id;
}

void
btls_set_timeout(struct btls_conn *c, unsigned ms)
{
	if (c->closing)
		return;
	uv_timer_set_repeat(&c->timer, ms);
	(void)uv_timer_again(&c->timer);
}

static void
on_timeout(uv_timer_t *t)
{
	struct btls_conn *c = t->data;

	btls_log(c, "idle timeout");
	c->in_callback = 1;
	if (c->srv->proto->timeout)
		c->srv->proto->timeout(c->state);
	c->in_callback = 0;
	btls_flush(c);
	conn_close(c);
}

/* Plaintext to the protocol; afterwards the deferred actions. Returns 1
 * when the caller must stop handing over bytes of this read. */
static int
deliver(struct btls_conn *c, const uint8_t *p, size_t n)
{
	c->in_callback = 1;
	c->srv->proto->input(c->state, p, n);
	c->in_callback = 0;
	btls_flush(c);
	if (c->close_after) {
		conn_close(c);
		return 1;
	}
	if (c->starttls_pending && c->ssl == NULL) {
		starttls_now(c);
		return 1;
	}
	return c->closing;
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
tls_input(struct btls_conn *c, const char *p, size_t n)
{
	char plain[16384];
	int r = 0, e;

	while (n > 0 && !c->closing) {
		int w = BIO_write(c->bio, p, (int)(n > 65536 ? 65536 : n));

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
					btls_log(c, "TLS handshake failed");
					conn_close(c);
					break;
				}
				continue;
			}
			/* The greeting (implicit TLS) waited for this. */
			btls_flush(c);
		}
		while (!c->closing && (r = SSL_read(c->ssl, plain,
		    sizeof(plain))) > 0)
			if (deliver(c, (const uint8_t *)plain, (size_t)r))
				break;
		if (c->closing)
			break;
		if (r > 0)
			continue;
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
	struct btls_conn *c = s->data;

	if (nread < 0) {
		conn_close(c);
		return;
	}
	if (nread == 0 || c->closing)
		return;
	(void)uv_timer_again(&c->timer);
	if (c->ssl)
		tls_input(c, b->base, (size_t)nread);
	else
		(void)deliver(c, (const uint8_t *)b->base, (size_t)nread);
	sodium_memzero(b->base, (size_t)nread);
}

/* ---- accepting ---------------------------------------------------------- */

static void
accept_one(uv_stream_t *l, int implicit)
{
	struct btls_server *s = l->data;
	struct btls_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return;
	c->srv = s;
	c->id = ++s->next_id;
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
	    (implicit && tls_setup(c) != 0)) {
		conn_close(c);
		return;
	}
	btls_log(c, "connected (%s)", implicit ? "TLS" : "plain");
	uv_timer_start(&c->timer, on_timeout, s->timeout_ms, s->timeout_ms);
	uv_tcp_nodelay(&c->tcp, 1);
	c->in_callback = 1;
	if (s->proto->open(c, s->arg, &c->state) != 0) {
		c->in_callback = 0;
		conn_close(c);
		return;
	}
	c->in_callback = 0;
	btls_flush(c);
	if (c->close_after) {
		conn_close(c);
		return;
	}
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

int
btls_listen(uv_loop_t *loop, uv_tcp_t *t, const char *host, int port,
    int backlog, uv_connection_cb cb, void *data, int *port_r, char *err,
    size_t errlen)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss), rc;

	uv_tcp_init(loop, t);
	t->data = data;
	if ((rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss)) != 0 &&
	    (rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss)) != 0)
		goto fail;
	if ((rc = uv_tcp_bind(t, (const struct sockaddr *)&ss, 0)) != 0 ||
	    (rc = uv_listen((uv_stream_t *)t, backlog, cb)) != 0 ||
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
btls_server_create(uv_loop_t *loop, const struct btls_opts *o,
    struct btls_server **s_r, char *err, size_t errlen)
{
	struct btls_server *s = calloc(1, sizeof(*s));
	int rc = 0;

	*s_r = NULL;
	if (s == NULL)
		return ENOMEM;
	s->loop = loop;
	s->proto = o->proto;
	s->arg = o->arg;
	s->timeout_ms = o->timeout_ms ? o->timeout_ms : 60 * 1000;
	s->port = s->tls_port = -1;
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
	if (o->port >= 0) {
		s->have_listen = 1;
		if ((rc = btls_listen(loop, &s->listen, o->host, o->port,
		    128, on_connection, s, &s->port, err, errlen)) != 0)
			goto fail;
	}
	if (o->tls_port >= 0) {
		s->have_listen_tls = 1;
		if ((rc = btls_listen(loop, &s->listen_tls, o->host,
		    o->tls_port, 128, on_connection_tls, s, &s->tls_port, err,
		    errlen)) != 0)
			goto fail;
	}
	*s_r = s;
	return 0;
fail:
	/* The handles are closed by the caller's loop run; the struct
	 * stays until then and is freed by btls_server_destroy. */
	btls_server_shutdown(s);
	*s_r = s;
	return rc;
}

int
btls_server_port(const struct btls_server *s)
{
	return s->port;
}

int
btls_server_tls_port(const struct btls_server *s)
{
	return s->tls_port;
}

void
btls_server_shutdown(struct btls_server *s)
{
	struct btls_conn *c, *next;

	if (s == NULL || s->shutting_down)
		return;
	s->shutting_down = 1;
	for (c = s->conns; c; c = next) {
		next = c->next;
		if (c->state && s->proto->shutdown) {
			c->in_callback = 1;
			s->proto->shutdown(c->state);
			c->in_callback = 0;
		}
		btls_flush(c);
		conn_close(c);
	}
	if (s->have_listen)
		uv_close((uv_handle_t *)&s->listen, NULL);
	if (s->have_listen_tls)
		uv_close((uv_handle_t *)&s->listen_tls, NULL);
}

void
btls_server_destroy(struct btls_server *s)
{
	if (s == NULL)
		return;
	SSL_CTX_free(s->ctx);
	free(s);
}
