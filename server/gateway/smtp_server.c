/*
 * The gateway's SMTP server on libuv (see smtp_server.h).
 *
 * Each connection owns a session (smtp_session.c), a TCP handle and a
 * timer.  pump() moves bytes between them: input (decrypted first when TLS
 * is up) into the session, the session's replies out, and the session's
 * events onto the thread pool.  While a work item runs the connection
 * stops reading, which is also what bounds memory for a client that
 * pipelines without reading replies.
 *
 * A connection is freed only when its handles are closed and no work item
 * refers to it (refs), so a client that disconnects during a delivery
 * cannot pull the session from under the worker.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <sodium.h>

#include "crypto/error.h"
#include "server/gateway/smtp_server.h"
#include "server/gateway/smtp_session.h"

#define RX_CHUNK 16384
#define TLS_RX_MAX (64u * 1024)   /* ciphertext buffered before pausing */
#define TX_MAX (1024u * 1024)     /* unwritten output before closing */
#define SOURCES 4096              /* per-source table slots */
#define SOURCE_PROBES 16

struct source {
	char ip[INET6_ADDRSTRLEN];
	unsigned conns;
	double tokens;
	uint64_t refill_ms;
	uint64_t trusted_until_ms;
};

enum work_kind { WORK_RCPT, WORK_MESSAGE };

struct conn {
	TAILQ_ENTRY(conn) entry;
	struct sp_smtp_server *srv;
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_shutdown_t shutdown;
	uv_work_t work;
	sp_smtp_session *sess;
	struct source *src;
	char ip[INET6_ADDRSTRLEN];
	int loopback;
	int refs;           /* handles open + work in flight */
	int greeted, reading, busy, closing, draining;

	SSL *ssl;           /* non-NULL from STARTTLS on */
	BIO *rbio, *wbio;   /* network side of the memory BIOs */
	int tls_up;

	uint8_t rx[RX_CHUNK];

	/* The work item's result. */
	enum work_kind kind;
	int ok;
	char reply[512];
	char summary[64];   /* auth results for the log */
	uint64_t t0_ms;
};

struct sp_smtp_server {
	struct sp_smtp_server_opts o;
	uv_loop_t *loop;
	uv_tcp_t listener;
	int port, listening;
	TAILQ_HEAD(, conn) conns;
	unsigned nconns;
	struct source sources[SOURCES];
	void (*done)(void *);
	void *done_arg;
	int stopping;
	unsigned long seq;  /* message ids for the log */
};

static void pump(struct conn *c);
static void conn_close(struct conn *c, int graceful);
static void timer_arm(struct conn *c);
static void read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *buf);

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void
slog(struct sp_smtp_server *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
slog(struct sp_smtp_server *s, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (s->o.log == NULL)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	s->o.log(s->o.log_arg, line);
}

/* ---- per-source limits ---- */

static struct source *
source_get(struct sp_smtp_server *s, const char *ip)
{
	uint32_t h = 2166136261u;
	const char *p;
	size_t i;
	struct source *idle = NULL;

	for (p = ip; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	for (i = 0; i < SOURCE_PROBES; i++) {
		struct source *e = &s->sources[(h + i) % SOURCES];

		if (strcmp(e->ip, ip) == 0)
			return e;
		if (e->conns == 0 && idle == NULL)
			idle = e;
	}
	/* A new source takes a slot nobody is connected from; the old
	 * source's rate history is forgotten, which only errs lenient. */
	if (idle != NULL) {
		memset(idle, 0, sizeof(*idle));
		snprintf(idle->ip, sizeof(idle->ip), "%s", ip);
		idle->tokens = s->o.rate_per_ip;
		idle->refill_ms = now_ms();
	}
	return idle;
}

/* NULL and a reason when the source may not connect now. */
static const char *
source_admit(struct sp_smtp_server *s, struct source *src)
{
	uint64_t t = now_ms();

	if (s->nconns >= s->o.max_conns)
		return "421 4.3.2 Too many connections, try again later";
	if (src == NULL)
		return "421 4.3.2 Too many sources, try again later";
	src->tokens += (double)(t - src->refill_ms) * s->o.rate_per_ip /
	    60000.0;
	if (src->tokens > s->o.rate_per_ip)
		src->tokens = s->o.rate_per_ip;
	src->refill_ms = t;
	if (src->conns >= s->o.max_conns_per_ip)
		return "421 4.7.0 Too many connections from your address";
	if (src->tokens < 1.0)
		return "421 4.7.0 Connection rate limit exceeded, try later";
	src->tokens -= 1.0;
	return NULL;
}

/* ---- output ---- */

static void
write_done(uv_write_t *req, int status)
{
	free(req->data);
	free(req);
}

static void
net_write(struct conn *c, const void *buf, size_t len)
{
	uv_write_t *req;
	uv_buf_t b;

	if (len == 0 || c->closing)
		return;
	if (c->tcp.write_queue_size > TX_MAX) {
		/* The client does not read its replies. */
		conn_close(c, 0);
		return;
	}
	if ((req = malloc(sizeof(*req))) == NULL ||
	    (req->data = malloc(len)) == NULL) {
		free(req);
		conn_close(c, 0);
		return;
	}
	memcpy(req->data, buf, len);
	b = uv_buf_init(req->data, (unsigned)len);
	if (uv_write(req, (uv_stream_t *)&c->tcp, &b, 1, write_done) != 0) {
		free(req->data);
		free(req);
		conn_close(c, 0);
	}
}

/* What OpenSSL wrote into the memory BIO goes to the socket. */
static void
tls_flush(struct conn *c)
{
	uint8_t buf[RX_CHUNK];
	int n;

	while ((n = BIO_read(c->wbio, buf, sizeof(buf))) > 0)
		net_write(c, buf, (size_t)n);
}

static void
flush_output(struct conn *c)
{
	size_t len;
	const uint8_t *out = sp_smtp_session_output(c->sess, &len);

	if (len > 0 && c->tls_up) {
		if (SSL_write(c->ssl, out, (int)len) != (int)len) {
			sp_smtp_session_output_clear(c->sess);
			conn_close(c, 0);
			return;
		}
		tls_flush(c);
	} else if (len > 0) {
		net_write(c, out, len);
	}
	sp_smtp_session_output_clear(c->sess);
}

/* ---- closing ---- */

static void
conn_unref(struct conn *c)
{
	struct sp_smtp_server *s = c->srv;

	if (--c->refs > 0)
		return;
	TAILQ_REMOVE(&s->conns, c, entry);
	s->nconns--;
	if (c->src != NULL)
		c->src->conns--;
	sp_smtp_session_destroy(c->sess);
	SSL_free(c->ssl);   /* frees both BIOs */
	sodium_memzero(c->rx, sizeof(c->rx));
	free(c);
	if (s->stopping && s->nconns == 0 && !s->listening && s->done)
		s->done(s->done_arg);
}

static void
handle_closed(uv_handle_t *h)
{
	conn_unref(h->data);
}

static void
close_handles(struct conn *c)
{
	uv_close((uv_handle_t *)&c->tcp, handle_closed);
	uv_close((uv_handle_t *)&c->timer, handle_closed);
}

static void
shutdown_done(uv_shutdown_t *req, int status)
{
	close_handles(req->data);
}

/* Graceful: after what was written has gone out. */
static void
conn_close(struct conn *c, int graceful)
{
	if (c->closing)
		return;
	c->closing = 1;
	(void)uv_timer_stop(&c->timer);
	(void)uv_read_stop((uv_stream_t *)&c->tcp);
	c->shutdown.data = c;
	if (!graceful || uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp,
	    shutdown_done) != 0)
		close_handles(c);
}

/* ---- timers ---- */

static void
on_timer(uv_timer_t *t)
{
	struct conn *c = t->data;

	if (!c->greeted) {
		/* The client kept quiet through the wait: greet it. */
		c->greeted = 1;
		if (c->src != NULL && c->srv->o.greet_cache_s)
			c->src->trusted_until_ms = now_ms() +
			    c->srv->o.greet_cache_s * 1000u;
		sp_smtp_session_greet(c->sess);
		flush_output(c);
		timer_arm(c);
		pump(c);
		return;
	}
	if (c->busy) {
		/* Our own work is slow, not the client. */
		(void)uv_timer_again(t);
		return;
	}
	slog(c->srv, "%s: timeout", c->ip);
	sp_smtp_session_reply(c->sess, "421 4.4.2 Timeout, closing "
	    "connection");
	flush_output(c);
	conn_close(c, 1);
}

static void
timer_arm(struct conn *c)
{
	unsigned ms = sp_smtp_session_in_data(c->sess) ?
	    c->srv->o.timeout_data_ms : c->srv->o.timeout_cmd_ms;

	(void)uv_timer_start(&c->timer, on_timer, ms, ms);
}

/* ---- the work items (thread pool) ---- */

static const char *
rcpt_reply(int rc)
{
	switch (rc) {
	case SP_GW_ENOUSER:
		return "550 5.1.1 No such user here";
	case SP_GW_ERELAY:
		return "550 5.7.1 Relaying denied: we do not serve that domain";
	case SP_GW_EQUOTA:
		return "452 4.2.2 Mailbox full, try again later";
	case SP_GW_ESYNTAX:
		return "501 5.1.3 Bad recipient address syntax";
	default:
		return "451 4.3.0 Temporary failure, try again later";
	}
}

/* Text from a library for a reply line: printable ASCII only. */
static void
clean(char *dst, size_t dstlen, const char *src)
{
	size_t i = 0;

	for (; src && *src && i + 1 < dstlen; src++)
		dst[i++] = (*src >= 32 && *src < 127) ? *src : '?';
	dst[i] = '\0';
}

struct verdict {
	int junk;
	char *auth_results;         /* malloc'd by gw_auth */
	char spam[256];
	char auth_summary[64];      /* for the log */
};

/* The most lenient policy among the recipients' domains. */
static enum sp_gw_policy_mode
policy_for(const struct sp_smtp_server_opts *so,
    const struct sp_smtp_envelope *e)
{
	enum sp_gw_policy_mode mode = SP_GW_POLICY_ENFORCE;
	size_t i, k;

	for (i = 0; i < e->nrcpts; i++) {
		const char *at = strrchr(e->rcpts[i], '@');

		for (k = 0; at && k < so->npolicies; k++)
			if (strcasecmp(at + 1, so->policies[k].domain) == 0 &&
			    so->policies[k].mode > mode)
				mode = so->policies[k].mode;
	}
	return mode;
}

/* Authentication: 0 to go on, else the reply is in c->reply. */
static int
run_auth(struct conn *c, const struct sp_smtp_envelope *e,
    struct verdict *v)
{
	const struct sp_smtp_server_opts *so = &c->srv->o;
	struct sp_gw_auth_opts ao;
	struct sp_gw_auth_result r;
	enum sp_gw_policy_mode mode;
	char why[200];
	int rc;

	if (so->auth == NULL)
		return 0;
	ao = *so->auth;
	mode = policy_for(so, e);
	if ((so->record_only_loopback && c->loopback) ||
	    mode == SP_GW_POLICY_RECORD)
		ao.record_only = 1;
	memset(&r, 0, sizeof(r));
	rc = sp_gw_auth_check(&ao, c->ip, e->helo, e->mail_from, e->msg,
	    e->len, &r);
	if (rc != 0) {
		snprintf(c->reply, sizeof(c->reply),
		    "451 4.3.0 Sender authentication failed internally, try "
		    "again later");
		return -1;
	}
	snprintf(v->auth_summary, sizeof(v->auth_summary),
	    "spf=%.15s dkim=%.15s dmarc=%.15s", r.spf, r.dkim, r.dmarc);
	clean(why, sizeof(why), r.reason);
	rc = 0;
	if (mode == SP_GW_POLICY_QUARANTINE && r.action == SP_GW_REJECT)
		r.action = SP_GW_QUARANTINE;
	switch (r.action) {
	case SP_GW_REJECT:
		snprintf(c->reply, sizeof(c->reply), "550 5.7.1 %s",
		    why[0] ? why : "Sender authentication failed");
		rc = -1;
		break;
	case SP_GW_TEMPFAIL:
		snprintf(c->reply, sizeof(c->reply), "451 4.7.0 %s",
		    why[0] ? why : "Temporary DNS failure, try again later");
		rc = -1;
		break;
	case SP_GW_QUARANTINE:
		v->junk = 1;
		break;
	case SP_GW_ACCEPT:
		break;
	}
	v->auth_results = r.auth_results;
	r.auth_results = NULL;
	sp_gw_auth_result_free(&r);
	return rc;
}

static int
run_filter(struct conn *c, const struct sp_smtp_envelope *e,
    struct verdict *v)
{
	struct sp_gw_filter_envelope fe = {
		.ip = c->ip, .helo = e->helo, .mail_from = e->mail_from,
		.rcpts = e->rcpts, .nrcpts = e->nrcpts,
	};
	struct sp_gw_filter_result r;
	char why[200];

	if (c->srv->o.filter == NULL)
		return 0;
	memset(&r, 0, sizeof(r));
	if (sp_gw_filter_run(c->srv->o.filter, &fe, e->msg, e->len, &r) != 0)
		r.action = SP_GW_FILTER_TEMPFAIL;
	clean(why, sizeof(why), r.verdict);
	switch (r.action) {
	case SP_GW_FILTER_REJECT:
		snprintf(c->reply, sizeof(c->reply),
		    "550 5.7.1 Message refused by content filter");
		return -1;
	case SP_GW_FILTER_TEMPFAIL:
		snprintf(c->reply, sizeof(c->reply),
		    "451 4.7.1 Content filter unavailable, try again later");
		return -1;
	case SP_GW_FILTER_JUNK:
		v->junk = 1;
		snprintf(v->spam, sizeof(v->spam), "%s", why);
		break;
	case SP_GW_FILTER_TAG:
		snprintf(v->spam, sizeof(v->spam), "%s", why);
		break;
	case SP_GW_FILTER_PASS:
		break;
	}
	return 0;
}

static const char *
final_error(int rc)
{
	switch (rc) {
	case SP_GW_ENOUSER:
		return "550 5.1.1 No such user here";
	case SP_GW_EQUOTA:
		return "552 5.2.2 Mailbox full";
	case SP_GW_ERELAY:
		return "550 5.7.1 Relaying denied";
	case SP_GW_ESYNTAX:
		return "501 5.1.3 Bad recipient address syntax";
	default:
		return "451 4.3.0 Temporary failure in the mail store, try "
		    "again later";
	}
}

/* Delivery, with the retry of failed recipients described in the header.
 * Returns the number of recipients that have the message. */
static size_t
run_deliver(struct conn *c, const struct sp_smtp_envelope *e,
    const struct verdict *v, int *first_err_r)
{
	struct sp_gw_verdict gv = {
		.auth_results = v->auth_results,
		.junk = v->junk,
		.spam = v->spam[0] ? v->spam : NULL,
	};
	static const unsigned backoff_ms[] = { 100, 500 };
	const char **todo;
	int *res;
	size_t n = e->nrcpts, ok = 0, i, k, attempt;

	*first_err_r = SP_GW_ETEMP;
	todo = calloc(n, sizeof(*todo));
	res = calloc(n, sizeof(*res));
	if (todo == NULL || res == NULL)
		goto out;
	for (i = 0; i < n; i++)
		todo[i] = e->rcpts[i];
	for (attempt = 0; n > 0; attempt++) {
		for (i = 0; i < n; i++)
			res[i] = SP_GW_ETEMP;
		(void)sp_gw_deliver_message(c->srv->o.deliver, todo, n,
		    e->msg, e->len, &gv, res);
		for (i = k = 0; i < n; i++) {
			if (res[i] == SP_GW_OK) {
				ok++;
				continue;
			}
			if (k == 0 && ok == 0)
				*first_err_r = res[i];
			todo[k++] = todo[i];
		}
		n = k;
		/* Nothing delivered yet: one answer for all, no retry. */
		if (n == 0 || ok == 0 || attempt >= 2)
			break;
		usleep(backoff_ms[attempt] * 1000u);
	}
out:
	free(todo);
	free(res);
	return ok;
}

static void
work_message(struct conn *c)
{
	struct sp_smtp_envelope e;
	struct verdict v;
	size_t ok;
	int err;

	memset(&v, 0, sizeof(v));
	sp_smtp_session_envelope(c->sess, &e);
	snprintf(v.auth_summary, sizeof(v.auth_summary), "auth=off");
	if (run_auth(c, &e, &v) != 0 || run_filter(c, &e, &v) != 0)
		goto out;
	ok = run_deliver(c, &e, &v, &err);
	if (ok == e.nrcpts) {
		snprintf(c->reply, sizeof(c->reply),
		    "250 2.0.0 Message accepted%s", v.junk ? " (junk)" : "");
	} else if (ok == 0) {
		snprintf(c->reply, sizeof(c->reply), "%s", final_error(err));
	} else {
		snprintf(c->reply, sizeof(c->reply), "451 4.3.0 Delivery to "
		    "%zu of %zu recipients failed, try again later",
		    e.nrcpts - ok, e.nrcpts);
		c->ok = (int)ok;   /* partial: logged as possible duplicates */
	}
out:
	/* The header is not secret but tells who wrote to whom. */
	if (v.auth_results != NULL) {
		sodium_memzero(v.auth_results, strlen(v.auth_results));
		free(v.auth_results);
	}
	snprintf(c->summary, sizeof(c->summary), "%s", v.auth_summary);
}

static void
work_cb(uv_work_t *w)
{
	struct conn *c = w->data;
	int rc;

	c->ok = 0;
	c->reply[0] = '\0';
	if (c->kind == WORK_RCPT) {
		rc = sp_gw_deliver_rcpt(c->srv->o.deliver,
		    sp_smtp_session_pending_rcpt(c->sess));
		c->ok = rc == SP_GW_OK;
		if (!c->ok)
			snprintf(c->reply, sizeof(c->reply), "%s",
			    rcpt_reply(rc));
		return;
	}
	work_message(c);
}

static void
after_work(uv_work_t *w, int status)
{
	struct conn *c = w->data;

	c->busy = 0;
	if (c->closing) {
		conn_unref(c);
		return;
	}
	if (c->kind == WORK_RCPT) {
		sp_smtp_session_rcpt_done(c->sess, c->ok,
		    c->ok ? NULL : c->reply);
	} else {
		struct sp_smtp_envelope e;

		sp_smtp_session_envelope(c->sess, &e);
		c->srv->seq++;
		if (c->ok > 0)
			slog(c->srv, "%s: msg %lu: partial delivery: %d of "
			    "%zu recipient(s) have it and will get it again "
			    "(duplicates possible): %.3s %s", c->ip,
			    c->srv->seq, c->ok, e.nrcpts, c->reply,
			    c->summary);
		else
			slog(c->srv, "%s: msg %lu: %zu bytes, %zu rcpt(s): "
			    "%.3s %s, %llu ms", c->ip, c->srv->seq, e.len,
			    e.nrcpts, c->reply, c->summary,
			    (unsigned long long)(now_ms() - c->t0_ms));
		sp_smtp_session_message_done(c->sess, c->reply);
	}
	conn_unref(c);
	if (c->draining && !sp_smtp_session_in_data(c->sess)) {
		flush_output(c);
		sp_smtp_session_reply(c->sess, "421 4.3.2 Shutting down");
		flush_output(c);
		conn_close(c, 1);
		return;
	}
	timer_arm(c);
	pump(c);
}

static void
queue_work(struct conn *c, enum work_kind kind)
{
	c->kind = kind;
	c->busy = 1;
	c->refs++;
	c->t0_ms = now_ms();
	c->work.data = c;
	(void)uv_read_stop((uv_stream_t *)&c->tcp);
	c->reading = 0;
	if (uv_queue_work(c->srv->loop, &c->work, work_cb, after_work) != 0) {
		c->busy = 0;
		c->refs--;
		conn_close(c, 0);
	}
}

/* ---- input ---- */

static void
alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;
	size_t room = SP_SMTP_INPUT_MAX -
	    sp_smtp_session_pending_input(c->sess);

	/* In clear text, never read more than the session can take, so
	 * nothing read has to be kept elsewhere. */
	if (c->ssl == NULL && room < sizeof(c->rx))
		*buf = uv_buf_init((char *)c->rx, (unsigned)room);
	else
		*buf = uv_buf_init((char *)c->rx, sizeof(c->rx));
}

static void
want_read(struct conn *c)
{
	int want = !c->closing && !c->busy;

	if (want && c->ssl == NULL)
		want = sp_smtp_session_pending_input(c->sess) <
		    SP_SMTP_INPUT_MAX;
	if (want && c->ssl != NULL)
		want = BIO_ctrl_pending(c->rbio) < TLS_RX_MAX;
	if (want && !c->reading)
		c->reading = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb,
		    read_cb) == 0;
	else if (!want && c->reading) {
		(void)uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = 0;
	}
}

/* Decrypted input into the session, as much as it takes.  -1: TLS
 * failed or the peer closed it. */
static int
tls_input(struct conn *c)
{
	uint8_t buf[RX_CHUNK];

	if (!c->tls_up) {
		int r = SSL_do_handshake(c->ssl);

		tls_flush(c);
		if (r != 1) {
			int e = SSL_get_error(c->ssl, r);

			return e == SSL_ERROR_WANT_READ ? 0 : -1;
		}
		c->tls_up = 1;
		sp_smtp_session_tls_started(c->sess);
		slog(c->srv, "%s: TLS %s %s", c->ip, SSL_get_version(c->ssl),
		    SSL_get_cipher_name(c->ssl));
	}
	for (;;) {
		size_t room = SP_SMTP_INPUT_MAX -
		    sp_smtp_session_pending_input(c->sess);
		int r;

		if (room == 0)
			return 0;
		if (room > sizeof(buf))
			room = sizeof(buf);
		r = SSL_read(c->ssl, buf, (int)room);
		if (r <= 0) {
			int e = SSL_get_error(c->ssl, r);

			tls_flush(c);
			return e == SSL_ERROR_WANT_READ ? 0 : -1;
		}
		if (sp_smtp_session_feed(c->sess, buf, (size_t)r) != 0)
			return -1;
	}
}

static int
tls_start(struct conn *c)
{
	if ((c->ssl = SSL_new(c->srv->o.tls)) == NULL)
		return -1;
	c->rbio = BIO_new(BIO_s_mem());
	c->wbio = BIO_new(BIO_s_mem());
	if (c->rbio == NULL || c->wbio == NULL) {
		BIO_free(c->rbio);
		BIO_free(c->wbio);
		return -1;
	}
	SSL_set_bio(c->ssl, c->rbio, c->wbio);
	SSL_set_accept_state(c->ssl);
	return 0;
}

/* Runs the session until it waits for the client or for work. */
static void
pump(struct conn *c)
{
	for (;;) {
		enum sp_smtp_event ev;

		if (c->closing || c->busy || !c->greeted)
			return;
		if (c->ssl != NULL && tls_input(c) != 0) {
			slog(c->srv, "%s: TLS failed or closed", c->ip);
			conn_close(c, 0);
			return;
		}
		if (c->closing)
			return;
		if (c->ssl != NULL && !c->tls_up) {
			/* Handshake under way: the session waits for it. */
			want_read(c);
			return;
		}
		ev = sp_smtp_session_run(c->sess);
		flush_output(c);
		if (c->closing)
			return;
		switch (ev) {
		case SP_SMTP_EV_MORE:
			/* More decrypted input may wait inside OpenSSL. */
			if (c->tls_up && SSL_pending(c->ssl) > 0 &&
			    sp_smtp_session_pending_input(c->sess) <
			    SP_SMTP_INPUT_MAX)
				continue;
			want_read(c);
			return;
		case SP_SMTP_EV_RCPT:
			queue_work(c, WORK_RCPT);
			return;
		case SP_SMTP_EV_MESSAGE:
			queue_work(c, WORK_MESSAGE);
			return;
		case SP_SMTP_EV_STARTTLS:
			if (tls_start(c) != 0) {
				conn_close(c, 0);
				return;
			}
			want_read(c);
			return;
		case SP_SMTP_EV_CLOSE:
			conn_close(c, 1);
			return;
		}
	}
}

static void
read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct conn *c = st->data;

	if (n == 0 || c->closing)
		return;
	if (n == UV_ENOBUFS) {
		want_read(c);
		return;
	}
	if (n < 0) {
		conn_close(c, 0);
		return;
	}
	if (!c->greeted) {
		static const char early[] = "554 5.5.0 SMTP protocol "
		    "violation: talked before the greeting\r\n";

		slog(c->srv, "%s: early talker", c->ip);
		net_write(c, early, sizeof(early) - 1);
		conn_close(c, 1);
		return;
	}
	timer_arm(c);
	if (c->ssl != NULL) {
		if (BIO_write(c->rbio, buf->base, (int)n) != (int)n) {
			conn_close(c, 0);
			return;
		}
	} else if (sp_smtp_session_feed(c->sess, (const uint8_t *)buf->base,
	    (size_t)n) != 0) {
		conn_close(c, 0);   /* alloc_cb made this impossible */
		return;
	}
	pump(c);
	if (!c->closing && !c->busy)
		want_read(c);
}

/* ---- accepting ---- */

/* A connection refused at accept: in no list, counted nowhere. */
static void
refused_closed(uv_handle_t *h)
{
	free(h->data);
}

static void
refuse_conn(struct conn *c, const char *line)
{
	/* Best effort, without waiting for a slow reader: the socket's
	 * buffer takes a line. */
	char buf[128];
	uv_buf_t b;

	snprintf(buf, sizeof(buf), "%s\r\n", line);
	b = uv_buf_init(buf, (unsigned)strlen(buf));
	(void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
	c->tcp.data = c;
	uv_close((uv_handle_t *)&c->tcp, refused_closed);
}

static void
peer_ip(uv_tcp_t *tcp, char *ip, size_t iplen, int *loopback_r)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	snprintf(ip, iplen, "unknown");
	*loopback_r = 0;
	if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len) != 0)
		return;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		uv_ip4_name(a, ip, iplen);
		*loopback_r = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		uv_ip6_name(a, ip, iplen);
		*loopback_r = IN6_IS_ADDR_LOOPBACK(&a->sin6_addr);
		if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
			/* ::ffff:a.b.c.d is the IPv4 client it stands for */
			snprintf(ip, iplen, "%u.%u.%u.%u",
			    a->sin6_addr.s6_addr[12], a->sin6_addr.s6_addr[13],
			    a->sin6_addr.s6_addr[14], a->sin6_addr.s6_addr[15]);
			*loopback_r = a->sin6_addr.s6_addr[12] == 127;
		}
	}
}

static void
on_connection(uv_stream_t *l, int status)
{
	struct sp_smtp_server *s = l->data;
	struct sp_smtp_session_opts so = {
		.hostname = s->o.hostname,
		.max_size = s->o.max_size,
		.max_rcpts = s->o.max_rcpts,
		.tls_available = s->o.tls != NULL,
	};
	const char *why;
	struct conn *c;
	char ip[INET6_ADDRSTRLEN];
	int loopback;
	struct source *src;

	if (status != 0 || (c = calloc(1, sizeof(*c))) == NULL)
		return;
	uv_tcp_init(s->loop, &c->tcp);
	c->tcp.data = c;
	if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
		uv_close((uv_handle_t *)&c->tcp, refused_closed);
		return;
	}
	peer_ip(&c->tcp, ip, sizeof(ip), &loopback);
	src = source_get(s, ip);
	if ((why = source_admit(s, src)) != NULL) {
		slog(s, "%s: refused: %s", ip, why);
		refuse_conn(c, why);
		return;
	}
	c->srv = s;
	c->src = src;
	src->conns++;
	snprintf(c->ip, sizeof(c->ip), "%s", ip);
	c->loopback = loopback;
	c->tcp.data = c;
	uv_timer_init(s->loop, &c->timer);
	c->timer.data = c;
	c->refs = 2;
	TAILQ_INSERT_TAIL(&s->conns, c, entry);
	s->nconns++;
	(void)uv_tcp_nodelay(&c->tcp, 1);
	if (sp_smtp_session_create(&so, &c->sess) != 0) {
		close_handles(c);
		return;
	}
	/* Read at once: input before the greeting is the early talker. */
	c->reading = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb,
	    read_cb) == 0;
	if (s->o.greet_delay_ms > 0 && now_ms() >= src->trusted_until_ms) {
		(void)uv_timer_start(&c->timer, on_timer, s->o.greet_delay_ms,
		    0);
		return;
	}
	c->greeted = 1;
	sp_smtp_session_greet(c->sess);
	flush_output(c);
	timer_arm(c);
}

/* ---- the server ---- */

int
sp_smtp_server_start(uv_loop_t *loop, const struct sp_smtp_server_opts *o,
    sp_smtp_server **s_r)
{
	struct sp_smtp_server *s;
	struct sockaddr_storage ss;
	int rc, len;

	*s_r = NULL;
	if (o->hostname == NULL || o->deliver == NULL || o->host == NULL)
		return SP_EINVAL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return SP_ENOMEM;
	s->o = *o;
	s->loop = loop;
	TAILQ_INIT(&s->conns);
	if (s->o.max_conns == 0)
		s->o.max_conns = 1000;
	if (s->o.max_conns_per_ip == 0)
		s->o.max_conns_per_ip = 50;
	if (s->o.rate_per_ip == 0)
		s->o.rate_per_ip = 1200;
	if (s->o.timeout_cmd_ms == 0)
		s->o.timeout_cmd_ms = 300000;
	if (s->o.timeout_data_ms == 0)
		s->o.timeout_data_ms = 180000;
	if (uv_ip4_addr(o->host, o->port, (struct sockaddr_in *)&ss) != 0 &&
	    uv_ip6_addr(o->host, o->port, (struct sockaddr_in6 *)&ss) != 0) {
		free(s);
		return SP_EINVAL;
	}
	uv_tcp_init(loop, &s->listener);
	s->listener.data = s;
	s->listening = 1;
	if ((rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0)) != 0 ||
	    (rc = uv_listen((uv_stream_t *)&s->listener, 511,
	    on_connection)) != 0) {
		*s_r = s;   /* the caller runs shutdown + free */
		return rc;
	}
	len = sizeof(ss);
	if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len) == 0)
		s->port = ntohs(ss.ss_family == AF_INET ?
		    ((struct sockaddr_in *)&ss)->sin_port :
		    ((struct sockaddr_in6 *)&ss)->sin6_port);
	*s_r = s;
	return 0;
}

int
sp_smtp_server_port(const sp_smtp_server *s)
{
	return s->port;
}

static void
listener_closed(uv_handle_t *h)
{
	struct sp_smtp_server *s = h->data;

	s->listening = 0;
	if (s->nconns == 0 && s->done)
		s->done(s->done_arg);
}

void
sp_smtp_server_shutdown(sp_smtp_server *s, void (*done)(void *), void *arg)
{
	struct conn *c, *next;

	if (s->stopping)
		return;
	s->stopping = 1;
	s->done = done;
	s->done_arg = arg;
	for (c = TAILQ_FIRST(&s->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (c->closing)
			continue;
		if (c->busy) {
			/* Its delivery finishes and is answered first. */
			c->draining = 1;
			continue;
		}
		sp_smtp_session_reply(c->sess, "421 4.3.2 Shutting down");
		if (c->greeted)
			flush_output(c);
		conn_close(c, 1);
	}
	uv_close((uv_handle_t *)&s->listener, listener_closed);
}

void
sp_smtp_server_free(sp_smtp_server *s)
{
	free(s);
}

int
sp_smtp_tls_ctx(const char *cert, const char *key, SSL_CTX **ctx_r,
    char *err, size_t errlen)
{
	SSL_CTX *ctx;

	*ctx_r = NULL;
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL)
		goto fail;
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1)
		goto fail;
	/* No renegotiation, no compression, no session tickets to keep. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_NO_COMPRESSION | SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	*ctx_r = ctx;
	return 0;
fail:
	snprintf(err, errlen, "%s",
	    ERR_reason_error_string(ERR_get_error()) ?
	    ERR_reason_error_string(ERR_get_error()) : "TLS setup failed");
	SSL_CTX_free(ctx);
	return SP_EINVAL;
}
