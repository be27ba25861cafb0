/*
 * The sync server's network side: one libwebsockets context on the libuv
 * loop, serving the WebSocket protocol "sealpost.v1" and plain HTTP
 * (health, metrics) on the same TLS listener.
 *
 * Each connection reassembles WebSocket messages into frames, queues them,
 * and runs them one at a time through the handler table (sync_handlers.c)
 * so replies come back in request order; different connections run in
 * parallel on the thread pool, which is what lets the store batch their
 * writes into one commit.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <sodium.h>

#include "server/sync/sync.h"

#define OUT_HIGH_WATER (4u * 1024 * 1024) /* pause pushes above this */
#define OUT_MAX (16u * 1024 * 1024)       /* close a reader this slow */
#define UNAUTH_TIMEOUT_S 30
#define READ_AHEAD 64                     /* requests queued per conn */
#define CLOSE_PROTOCOL 4000
#define CLOSE_SESSION 4001
#define CLOSE_LOGIN_TIMEOUT 4002
#define CLOSE_SLOW 4003

uint64_t
sp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void
sp_conn_unref(struct sp_conn *c)
{
	struct sp_out *o;
	struct sp_in *in;

	if (--c->refs > 0)
		return;
	while ((o = TAILQ_FIRST(&c->outq)) != NULL) {
		TAILQ_REMOVE(&c->outq, o, entry);
		free(o->buf);
		free(o);
	}
	while ((in = TAILQ_FIRST(&c->inq)) != NULL) {
		TAILQ_REMOVE(&c->inq, in, entry);
		free(in->buf);
		free(in);
	}
	free(c->rx);
	sodium_memzero(c->token_hash, sizeof(c->token_hash));
	free(c);
}

void
sp_conn_send(struct sp_conn *c, uint8_t *buf, size_t len, uint64_t t_commit_ns)
{
	struct sp_out *o;

	if (c->wsi == NULL || c->state == SP_CONN_CLOSING ||
	    (o = malloc(sizeof(*o))) == NULL) {
		free(buf);
		return;
	}
	if (c->out_bytes + len > OUT_MAX) {
		/* A client that does not read gets no more memory: drop what
		 * waits and close, it resumes from its last applied seq. */
		struct sp_out *q;

		free(buf);
		free(o);
		while ((q = TAILQ_FIRST(&c->outq)) != NULL) {
			TAILQ_REMOVE(&c->outq, q, entry);
			free(q->buf);
			free(q);
		}
		c->out_bytes = 0;
		sp_conn_close_code(c, CLOSE_SLOW);
		return;
	}
	o->buf = buf;
	o->len = len;
	o->t_commit_ns = t_commit_ns;
	TAILQ_INSERT_TAIL(&c->outq, o, entry);
	c->out_bytes += len;
	lws_callback_on_writable(c->wsi);
}

/* Closes after what is queued has been written. */
void
sp_conn_close(struct sp_conn *c)
{
	c->state = SP_CONN_CLOSING;
	c->subscribed = 0;
	if (c->wsi)
		lws_callback_on_writable(c->wsi);
}

void
sp_conn_close_code(struct sp_conn *c, int code)
{
	if (c->close_code == 0)
		c->close_code = code;
	sp_conn_close(c);
}

void
sp_conn_login_timer(struct sp_conn *c)
{
	if (c->wsi)
		lws_set_timer_usecs(c->wsi,
		    (lws_usec_t)UNAUTH_TIMEOUT_S * LWS_USEC_PER_SEC);
}

/* Closing with a status: set the reason, then let lws send the close. */
static int
conn_finish_close(struct sp_conn *c)
{
	lws_close_reason(c->wsi, c->close_code ? (enum lws_close_status)
	    c->close_code : LWS_CLOSE_STATUS_NORMAL, NULL, 0);
	return -1;
}

static void
latency_record(struct sp_metrics *m, uint64_t t0)
{
	static const double bounds[] = { 1, 2, 5, 10, 20, 50, 100, 200, 500,
	    1000, 5000 };
	double ms = (double)(sp_now_ns() - t0) / 1e6;
	size_t i;

	for (i = 0; i < sizeof(bounds) / sizeof(bounds[0]); i++)
		if (ms <= bounds[i])
			break;
	m->lat_bucket[i]++;
	m->lat_count++;
	m->lat_sum_ms += ms;
}

static int
conn_writeable(struct sp_conn *c)
{
	struct sp_out *o = TAILQ_FIRST(&c->outq);

	if (o == NULL)
		return c->state == SP_CONN_CLOSING ? conn_finish_close(c) : 0;
	TAILQ_REMOVE(&c->outq, o, entry);
	c->out_bytes -= o->len;
	if (lws_write(c->wsi, o->buf + LWS_PRE, o->len, LWS_WRITE_BINARY) <
	    (int)o->len) {
		free(o->buf);
		free(o);
		return -1;
	}
	c->srv->m.frames_out++;
	if (o->t_commit_ns)
		latency_record(&c->srv->m, o->t_commit_ns);
	free(o->buf);
	free(o);
	if (!TAILQ_EMPTY(&c->outq) || c->state == SP_CONN_CLOSING)
		lws_callback_on_writable(c->wsi);
	if (c->subscribed && c->out_bytes < OUT_HIGH_WATER)
		sp_hub_drained(c->srv, c);
	return 0;
}

/* ---- requests ----------------------------------------------------------- */

static void conn_next(struct sp_conn *c);

static void
job_free(struct sp_job *j)
{
	if (j->in) {
		free(j->in->buf);
		free(j->in);
	}
	free(j->reply);
	free(j->recs_buf);
	free(j->recs);
	sodium_memzero(j, sizeof(*j));
	free(j);
}

static void
job_work_cb(uv_work_t *req)
{
	struct sp_job *j = req->data;

	j->work(j);
}

/* Loop thread: queue the reply, run the side effects, take the next. */
static void
job_finish(struct sp_job *j)
{
	struct sp_conn *c = j->conn;

	if (c->wsi != NULL) {
		if (j->reply) {
			sp_conn_send(c, j->reply, j->reply_len, 0);
			j->reply = NULL;
		}
		if (j->done)
			j->done(j);
		if (j->close_after)
			sp_conn_close_code(c, j->close_after);
	} else if (j->done && j->h && j->h->done_always) {
		/* The client went away, but its records committed: other
		 * devices must still get them. */
		j->done(j);
	}
	c->busy = 0;
	job_free(j);
	conn_next(c);
	sp_conn_unref(c);
}

static void
job_after_cb(uv_work_t *req, int status)
{
	struct sp_job *j = req->data;

	j->conn->srv->jobs_in_flight--;
	if (status == UV_ECANCELED)
		sp_job_reply_error(j, SP_PERR_INTERNAL, "server stopping");
	job_finish(j);
}

/*
 * The state table of docs/protocol.md 5.1: NEW takes only HELLO; GREETED
 * (SP_CONN_OPEN) the login-free requests; AUTHENTICATED the rest, but not
 * HELLO, REGISTER, PRELOGIN, LOGIN or RESUME (log out first).  NULL when
 * the request may run, else the reason, with its code in *code_r.
 */
static const char *
state_refusal(const struct sp_conn *c, const struct sp_handler *h,
    int *code_r)
{
	*code_r = SP_PERR_SEQUENCE;
	if (c->state == SP_CONN_NEW)
		return h->type == SP_MSG_HELLO ? NULL : "HELLO must come first";
	if (h->type == SP_MSG_HELLO)
		return "HELLO only once";
	if (c->state < h->need) {
		*code_r = SP_PERR_AUTH;
		return "log in first";
	}
	if (c->state > h->max)
		return "already logged in: log out first";
	return NULL;
}

static void
conn_dispatch(struct sp_conn *c, struct sp_in *in)
{
	struct sp_job *j;
	const char *why = NULL;
	int code;

	if ((j = calloc(1, sizeof(*j))) == NULL) {
		free(in->buf);
		free(in);
		sp_conn_close(c);
		return;
	}
	j->conn = c;
	j->in = in;
	c->busy = 1;
	c->refs++;
	if (in->buf == NULL) {
		/* An oversized message, dropped unread: its place in the
		 * order of replies gets an error with id 0. */
		sp_job_reply_error(j, SP_PERR_TOO_LARGE,
		    "message larger than WELCOME.size");
		job_finish(j);
		return;
	}
	code = sp_frame_decode(in->buf, in->len, &j->f, &why);
	if (code != 0) {
		/* Type and id are known except for MALFORMED (frame.h). */
		if (code == SP_PERR_MALFORMED)
			j->f.id = 0;
		sp_job_reply_error(j, code, why);
		/* Garbage means the peer is not speaking our protocol:
		 * say why once, then hang up. */
		if (code == SP_PERR_MALFORMED)
			j->close_after = CLOSE_PROTOCOL;
		job_finish(j);
		return;
	}
	c->srv->m.frames_in++;
	j->h = sp_handler_find(j->f.type);
	if (j->h == NULL || j->h->work == NULL) {
		sp_job_reply_error(j, SP_PERR_SEQUENCE,
		    "message is not a request");
		job_finish(j);
		return;
	}
	if ((why = state_refusal(c, j->h, &code)) != NULL) {
		sp_job_reply_error(j, code, why);
		job_finish(j);
		return;
	}
	j->work = j->h->work;
	j->done = j->h->done;
	if (j->h->check) {
		j->h->check(j);
		if (j->reply) {         /* answered without the store */
			j->done = NULL;
			job_finish(j);
			return;
		}
	}
	if (c->srv->stopping) {
		sp_job_reply_error(j, SP_PERR_INTERNAL, "server stopping");
		job_finish(j);
		return;
	}
	j->req.data = j;
	c->srv->jobs_in_flight++;
	uv_queue_work(c->srv->loop, &j->req, job_work_cb, job_after_cb);
}

static void
conn_next(struct sp_conn *c)
{
	struct sp_in *in;

	if (c->busy || c->wsi == NULL || c->state == SP_CONN_CLOSING ||
	    (in = TAILQ_FIRST(&c->inq)) == NULL)
		return;
	TAILQ_REMOVE(&c->inq, in, entry);
	if (--c->nin < READ_AHEAD / 2 && c->rx_paused) {
		c->rx_paused = 0;
		lws_rx_flow_control(c->wsi, 1);
	}
	conn_dispatch(c, in);
}

static void
queue_in(struct sp_conn *c, struct sp_in *in)
{
	TAILQ_INSERT_TAIL(&c->inq, in, entry);
	/* Read ahead at most READ_AHEAD requests; then TCP pushes back. */
	if (++c->nin >= READ_AHEAD && !c->rx_paused) {
		c->rx_paused = 1;
		lws_rx_flow_control(c->wsi, 0);
	}
	conn_next(c);
}

/* Collects message fragments; queues each whole message as one frame.  A
 * message over the frame limit is skipped to its end and stands in the
 * queue as a marker (buf NULL) so its error comes back in order. */
static int
conn_receive(struct sp_conn *c, const void *data, size_t len)
{
	int last = lws_is_final_fragment(c->wsi) &&
	    lws_remaining_packet_payload(c->wsi) == 0;
	struct sp_in *in;
	uint8_t *nrx;

	if (c->state == SP_CONN_CLOSING)
		return 0;
	if (lws_frame_is_binary(c->wsi) == 0) {
		sp_conn_close_code(c, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE);
		return 0;
	}
	if (!c->discarding && c->rx_len + len > SP_FRAME_MAX) {
		free(c->rx);
		c->rx = NULL;
		c->rx_len = c->rx_cap = 0;
		c->discarding = 1;
	}
	if (c->discarding) {
		if (!last)
			return 0;
		c->discarding = 0;
		if ((in = calloc(1, sizeof(*in))) == NULL)
			return -1;
		queue_in(c, in);
		return 0;
	}
	if (c->rx_len + len > c->rx_cap) {
		size_t cap = c->rx_cap ? c->rx_cap : 1024;

		while (cap < c->rx_len + len)
			cap *= 2;
		if ((nrx = realloc(c->rx, cap)) == NULL)
			return -1;
		c->rx = nrx;
		c->rx_cap = cap;
	}
	memcpy(c->rx + c->rx_len, data, len);
	c->rx_len += len;
	if (!last)
		return 0;
	if ((in = malloc(sizeof(*in))) == NULL)
		return -1;
	in->buf = c->rx;
	in->len = c->rx_len;
	c->rx = NULL;
	c->rx_len = c->rx_cap = 0;
	queue_in(c, in);
	return 0;
}

static void
conn_open(struct sp_sync *s, struct sp_conn *c, struct lws *wsi)
{
	char peer[128] = "";

	memset(c, 0, sizeof(*c));
	c->srv = s;
	c->wsi = wsi;
	c->refs = 1;
	TAILQ_INIT(&c->inq);
	TAILQ_INIT(&c->outq);
	/* The peer address is kept only as a keyed hash, in memory, for
	 * rate limiting; it is never stored or logged unless configured. */
	lws_get_peer_simple(wsi, peer, sizeof(peer));
	crypto_generichash(c->peer_key, sizeof(c->peer_key),
	    (const uint8_t *)peer, strlen(peer), s->secret, sizeof(s->secret));
	if (s->cfg->log_client_ips && s->cfg->verbose)
		lwsl_notice("connection from %s\n", peer);
	LIST_INSERT_HEAD(&s->all, c, all_entry);
	sp_conn_login_timer(c);
	s->m.connections++;
	s->m.connections_total++;
}

static void
conn_gone(struct sp_conn *c)
{
	struct sp_sync *s = c->srv;

	s->m.connections--;
	LIST_REMOVE(c, all_entry);
	if (c->acct)
		sp_acct_detach(s, c);
	c->wsi = NULL;
	sp_conn_unref(c);
}

/* ---- HTTP --------------------------------------------------------------- */

struct http_pss {
	char *body;
	size_t len, sent;
};

static size_t
metrics_text(struct sp_sync *s, char *out, size_t cap)
{
	static const char *const le[] = { "1", "2", "5", "10", "20", "50",
	    "100", "200", "500", "1000", "5000", "+Inf" };
	struct sp_store_stat st = { 0 };
	struct sp_metrics *m = &s->m;
	uint64_t cum = 0;
	size_t n, i;

	(void)sp_store_stat(s->store, &st);
	n = (size_t)snprintf(out, cap,
	    "# TYPE sealpost_connections gauge\n"
	    "sealpost_connections %llu\n"
	    "# TYPE sealpost_connections_total counter\n"
	    "sealpost_connections_total %llu\n"
	    "# TYPE sealpost_frames_in_total counter\n"
	    "sealpost_frames_in_total %llu\n"
	    "# TYPE sealpost_frames_out_total counter\n"
	    "sealpost_frames_out_total %llu\n"
	    "# TYPE sealpost_records_appended_total counter\n"
	    "sealpost_records_appended_total %llu\n"
	    "# TYPE sealpost_records_pushed_total counter\n"
	    "sealpost_records_pushed_total %llu\n"
	    "# TYPE sealpost_notifies_total counter\n"
	    "sealpost_notifies_total %llu\n"
	    "# TYPE sealpost_logins_total counter\n"
	    "sealpost_logins_total{result=\"ok\"} %llu\n"
	    "sealpost_logins_total{result=\"failed\"} %llu\n"
	    "# TYPE sealpost_store_map_bytes gauge\n"
	    "sealpost_store_map_bytes %llu\n"
	    "# TYPE sealpost_store_used_bytes gauge\n"
	    "sealpost_store_used_bytes %llu\n"
	    "# TYPE sealpost_store_commits_total counter\n"
	    "sealpost_store_commits_total %llu\n"
	    "# TYPE sealpost_push_latency_ms histogram\n",
	    (unsigned long long)m->connections,
	    (unsigned long long)m->connections_total,
	    (unsigned long long)m->frames_in, (unsigned long long)m->frames_out,
	    (unsigned long long)m->records_appended,
	    (unsigned long long)m->records_pushed,
	    (unsigned long long)m->notifies,
	    (unsigned long long)m->logins_ok,
	    (unsigned long long)m->logins_failed,
	    (unsigned long long)st.map_size, (unsigned long long)st.used_bytes,
	    (unsigned long long)st.commits);
	for (i = 0; i < 12 && n < cap; i++) {
		cum += m->lat_bucket[i];
		n += (size_t)snprintf(out + n, cap - n,
		    "sealpost_push_latency_ms_bucket{le=\"%s\"} %llu\n", le[i],
		    (unsigned long long)cum);
	}
	if (n < cap)
		n += (size_t)snprintf(out + n, cap - n,
		    "sealpost_push_latency_ms_sum %.3f\n"
		    "sealpost_push_latency_ms_count %llu\n", m->lat_sum_ms,
		    (unsigned long long)m->lat_count);
	return n < cap ? n : cap - 1;
}

static int
peer_is_loopback(struct lws *wsi)
{
	char peer[128] = "";

	lws_get_peer_simple(wsi, peer, sizeof(peer));
	return strncmp(peer, "127.", 4) == 0 || strcmp(peer, "::1") == 0 ||
	    strncmp(peer, "::ffff:127.", 11) == 0;
}

static int
http_respond(struct lws *wsi, struct http_pss *p, int status,
    const char *type, const char *body, size_t len)
{
	uint8_t hdr[LWS_PRE + 1024], *start = hdr + LWS_PRE, *q = start,
	    *end = hdr + sizeof(hdr) - 1;

	if ((p->body = malloc(len ? len : 1)) == NULL)
		return -1;
	memcpy(p->body, body, len);
	p->len = len;
	p->sent = 0;
	if (lws_add_http_common_headers(wsi, (unsigned)status, type,
	    (lws_filepos_t)len, &q, end) ||
	    lws_finalize_write_http_header(wsi, start, &q, end))
		return -1;
	lws_callback_on_writable(wsi);
	return 0;
}

static int
http_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct sp_sync *s = lws_context_user(lws_get_context(wsi));
	struct http_pss *p = user;
	static char buf[16384];
	const char *uri = in;
	size_t n;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		if (p == NULL)
			return -1;
		if (strcmp(uri, "/health") == 0) {
			struct sp_store_stat st;

			if (sp_store_stat(s->store, &st) != 0)
				return http_respond(wsi, p, 503, "text/plain",
				    "store unavailable\n", 18);
			return http_respond(wsi, p, 200, "text/plain",
			    "ok\n", 3);
		}
		if (strcmp(uri, "/metrics") == 0 && !s->cfg->metrics_public &&
		    !peer_is_loopback(wsi))
			return http_respond(wsi, p, 403, "text/plain",
			    "forbidden\n", 10);
		if (strcmp(uri, "/metrics") == 0) {
			n = metrics_text(s, buf, sizeof(buf));
			return http_respond(wsi, p, 200,
			    "text/plain; version=0.0.4", buf, n);
		}
		{
			uint8_t *key;
			size_t klen;
			int w = sp_wkd_lookup(s, wsi, uri, &key, &klen);

			if (w == 2)
				return http_respond(wsi, p, 200, "text/plain",
				    "", 0);
			if (w == 1) {
				int rc = http_respond(wsi, p, 200,
				    "application/octet-stream",
				    (const char *)key, klen);

				free(key);
				return rc;
			}
		}
		return http_respond(wsi, p, 404, "text/plain",
		    "not found\n", 10);
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (p == NULL || p->body == NULL)
			return -1;
		n = p->len - p->sent;
		{
			uint8_t *w = malloc(LWS_PRE + n + 1);
			int rc;

			if (w == NULL)
				return -1;
			memcpy(w + LWS_PRE, p->body + p->sent, n);
			rc = lws_write(wsi, w + LWS_PRE, n, LWS_WRITE_HTTP_FINAL);
			free(w);
			if (rc < (int)n)
				return -1;
		}
		p->sent = p->len;
		free(p->body);
		p->body = NULL;
		if (lws_http_transaction_completed(wsi))
			return -1;
		return 0;
	case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
		/* Once per TLS context: give the 16 KiB read and write
		 * buffers back whenever a connection is idle, which is most
		 * of the time for a sync connection. */
		SSL_CTX_set_mode((SSL_CTX *)user, SSL_MODE_RELEASE_BUFFERS);
		/* No server-side session cache: it would keep a session per
		 * connection in memory; resumption uses stateless tickets. */
		SSL_CTX_set_session_cache_mode((SSL_CTX *)user,
		    SSL_SESS_CACHE_OFF);
		return 0;
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		/* A WebSocket upgrade lands here only when it did not offer
		 * "sealpost.v1": refuse it rather than hold an idle socket. */
		return -1;
	case LWS_CALLBACK_CLOSED_HTTP:
		/* Also called for sockets closed before any request, when
		 * lws has not allocated per-session data. */
		if (p) {
			free(p->body);
			p->body = NULL;
		}
		return 0;
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

/* ---- WebSocket ---------------------------------------------------------- */

static int
ws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct sp_sync *s = lws_context_user(lws_get_context(wsi));
	struct sp_conn **cp = user, *c = cp ? *cp : NULL;

	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		if (s->stopping || s->m.connections >=
		    (uint64_t)s->cfg->max_connections)
			return -1;
		if ((c = malloc(sizeof(*c))) == NULL)
			return -1;
		conn_open(s, c, wsi);
		*cp = c;
		return 0;
	case LWS_CALLBACK_RECEIVE:
		return c ? conn_receive(c, in, len) : -1;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return c ? conn_writeable(c) : -1;
	case LWS_CALLBACK_TIMER:
		/* Not logged in within the limit (docs/protocol.md 5.5). */
		if (c && c->state != SP_CONN_AUTH && c->state != SP_CONN_CLOSING)
			sp_conn_close_code(c, CLOSE_LOGIN_TIMEOUT);
		return 0;
	case LWS_CALLBACK_CLOSED:
		if (c) {
			*cp = NULL;
			conn_gone(c);
		}
		return 0;
	default:
		return 0;
	}
}

static struct lws_protocols protocols[] = {
	{ "http", http_cb, sizeof(struct http_pss), 0, 0, NULL, 0 },
	/* rx_buffer_size is allocated per connection: 1 KiB keeps an idle
	 * connection small; larger messages arrive as several fragments,
	 * which conn_receive() reassembles into a buffer that grows by
	 * doubling. */
	{ "sealpost.v1", ws_cb, sizeof(struct sp_conn *), 1024, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

/* ---- start and stop ----------------------------------------------------- */

/* Idle authenticated connections are kept alive with WebSocket pings; one
 * that answers nothing for 5 minutes is dropped. */
static const lws_retry_bo_t idle_policy = {
	.secs_since_valid_ping = 60,
	.secs_since_valid_hangup = 300,
};

static int
load_secret(struct sp_sync *s)
{
	char path[1200];
	int fd, rc = -1;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/server.key", s->cfg->data_dir);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		n = read(fd, s->secret, sizeof(s->secret));
		close(fd);
		return n == (ssize_t)sizeof(s->secret) ? 0 : -1;
	}
	if (errno != ENOENT)
		return -1;
	randombytes_buf(s->secret, sizeof(s->secret));
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
		return -1;
	if (write(fd, s->secret, sizeof(s->secret)) ==
	    (ssize_t)sizeof(s->secret) && fsync(fd) == 0)
		rc = 0;
	close(fd);
	return rc;
}

static void
stop_check(uv_timer_t *t)
{
	struct sp_sync *s = t->data;

	/* Every write in flight finishes (and is acknowledged) before the
	 * store closes; nothing new is started once stopping is set.  The
	 * clients' close handshakes get up to 2 s. */
	if (s->jobs_in_flight > 0 ||
	    (!LIST_EMPTY(&s->all) && sp_now_ns() < s->stop_deadline))
		return;
	uv_timer_stop(&s->stop_timer);
	uv_close((uv_handle_t *)&s->stop_timer, NULL);
	uv_timer_stop(&s->sweep_timer);
	uv_close((uv_handle_t *)&s->sweep_timer, NULL);
	if (s->notify_fd >= 0) {
		uv_poll_stop(&s->notify_poll);
		uv_close((uv_handle_t *)&s->notify_poll, NULL);
	}
	uv_close((uv_handle_t *)&s->sigterm, NULL);
	uv_close((uv_handle_t *)&s->sigint, NULL);
	lws_context_destroy(s->ctx);
	s->ctx = NULL;
}

#define SWEEP_MS 5000

/*
 * The gateway appends to logs from its own process, through the same
 * LMDB store; after each commit it sends the account's address as one
 * datagram to DATA_DIR/notify.sock, and the server pushes the new records
 * to that account's devices.  Only processes that can write the data
 * directory (mode 0700) can reach the socket.  Datagrams are hints: a
 * bogus one costs a log_last read; the sweep catches anything lost.
 */
static void
on_notify(uv_poll_t *p, int status, int events)
{
	struct sp_sync *s = p->data;
	char buf[SP_STORE_ADDR_MAX + 1];
	ssize_t n;
	int i;

	(void)events;
	if (status < 0)
		return;
	for (i = 0; i < 256; i++) {     /* bounded: let the loop breathe */
		n = recv(s->notify_fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
		if (n <= 0)
			break;
		buf[n] = 0;
		s->m.notifies++;
		if (memchr(buf, 0, (size_t)n) == NULL)
			sp_hub_external(s, buf);
	}
}

static int
notify_open(struct sp_sync *s, uv_loop_t *loop)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	int n;

	n = snprintf(un.sun_path, sizeof(un.sun_path), "%s/notify.sock",
	    s->cfg->data_dir);
	if (n < 0 || (size_t)n >= sizeof(un.sun_path))
		return ENAMETOOLONG;
	(void)unlink(un.sun_path);      /* left by a previous run */
	s->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0);
	if (s->notify_fd < 0)
		return errno;
	if (bind(s->notify_fd, (struct sockaddr *)&un, sizeof(un)) != 0) {
		n = errno;
		close(s->notify_fd);
		s->notify_fd = -1;
		return n;
	}
	uv_poll_init(loop, &s->notify_poll, s->notify_fd);
	s->notify_poll.data = s;
	uv_poll_start(&s->notify_poll, UV_READABLE, on_notify);
	return 0;
}

static void
on_sweep(uv_timer_t *t)
{
	sp_hub_sweep(t->data);
}

static void
on_signal(uv_signal_t *h, int signum)
{
	struct sp_sync *s = h->data;

	if (s->stopping)
		return;
	s->stopping = 1;
	lwsl_notice("signal %d: stopping after %d request(s) in flight\n",
	    signum, s->jobs_in_flight);
	uv_signal_stop(&s->sigterm);
	uv_signal_stop(&s->sigint);
	{
		struct sp_conn *c;

		LIST_FOREACH(c, &s->all, all_entry)
			sp_conn_close_code(c, LWS_CLOSE_STATUS_GOINGAWAY);
	}
	s->stop_deadline = sp_now_ns() + 2000000000ull;
	s->stop_timer.data = s;
	uv_timer_start(&s->stop_timer, stop_check, 0, 20);
}

int
sp_sync_run(const struct sp_server_config *cfg)
{
	struct sp_sync *s;
	struct lws_context_creation_info info;
	struct sp_store_opts so = { 0 };
	uv_loop_t loop;
	void *foreign[1];
	char sdir[1200];
	int rc = 1, i;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return 1;
	s->cfg = cfg;
	s->notify_fd = -1;
	LIST_INIT(&s->all);
	if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "sealpost-server: %s: %s\n", cfg->data_dir,
		    strerror(errno));
		goto out_free;
	}
	if (load_secret(s) != 0) {
		fprintf(stderr, "sealpost-server: cannot read or create %s/"
		    "server.key\n", cfg->data_dir);
		goto out_free;
	}
	snprintf(sdir, sizeof(sdir), "%s/store", cfg->data_dir);
	so.no_sync = cfg->no_sync;
	if ((i = sp_store_open(sdir, &so, &s->store)) != 0) {
		fprintf(stderr, "sealpost-server: store %s: %s\n", sdir,
		    sp_store_strerror(i));
		goto out_free;
	}
	if (sp_auth_create(s) != 0)
		goto out_store;

	/* Each request in progress holds a pool thread until its commit;
	 * the store can batch only as many writers as there are threads.
	 * libuv reads the size once, at the first uv_queue_work(). */
	{
		char n[16];

		snprintf(n, sizeof(n), "%d", cfg->worker_threads);
		setenv("UV_THREADPOOL_SIZE", n, 1);
	}
	uv_loop_init(&loop);
	s->loop = &loop;
	foreign[0] = &loop;
	memset(&info, 0, sizeof(info));
	info.port = cfg->port;
	info.iface = cfg->listen;
	info.protocols = protocols;
	info.user = s;
	info.foreign_loops = foreign;
	info.options = LWS_SERVER_OPTION_LIBUV |
	    LWS_SERVER_OPTION_VALIDATE_UTF8 |
	    LWS_SERVER_OPTION_DISABLE_IPV6;
	info.retry_and_idle_policy = &idle_policy;
	info.timeout_secs = 30;
	if (cfg->tls_cert[0]) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = cfg->tls_cert;
		info.ssl_private_key_filepath = cfg->tls_key;
		/* TLS 1.2 and later only. */
		info.ssl_options_set = SSL_OP_NO_SSLv2 | SSL_OP_NO_SSLv3 |
		    SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1;
	}
	lws_set_log_level(cfg->verbose ? LLL_ERR | LLL_WARN | LLL_NOTICE :
	    LLL_ERR | LLL_WARN, NULL);
	/* lws returns a context even when the listening vhost failed (port
	 * taken): check for the vhost too. */
	if ((s->ctx = lws_create_context(&info)) == NULL ||
	    lws_get_vhost_by_name(s->ctx, "default") == NULL) {
		fprintf(stderr, "sealpost-server: cannot listen on %s:%d\n",
		    cfg->listen, cfg->port);
		/* A context whose vhost failed does not tear down cleanly on
		 * a foreign libuv loop (libuv asserts); the process is about
		 * to exit, so leave it and close only the store. */
		s->ctx = NULL;
		goto out_auth;
	}
	uv_signal_init(&loop, &s->sigterm);
	uv_signal_init(&loop, &s->sigint);
	uv_timer_init(&loop, &s->stop_timer);
	uv_timer_init(&loop, &s->sweep_timer);
	s->sweep_timer.data = s;
	uv_timer_start(&s->sweep_timer, on_sweep, SWEEP_MS, SWEEP_MS);
	if ((rc = notify_open(s, &loop)) != 0)
		fprintf(stderr, "sealpost-server: %s/notify.sock: %s (the "
		    "gateway's mail will reach devices within %d s)\n",
		    cfg->data_dir, strerror(rc), SWEEP_MS / 1000);
	s->sigterm.data = s->sigint.data = s;
	uv_signal_start(&s->sigterm, on_signal, SIGTERM);
	uv_signal_start(&s->sigint, on_signal, SIGINT);
	fprintf(stderr, "sealpost-server: listening on %s://%s:%d\n",
	    cfg->tls_cert[0] ? "wss" : "ws", cfg->listen, cfg->port);
	uv_run(&loop, UV_RUN_DEFAULT);
	rc = 0;
	if (s->ctx)
		lws_context_destroy(s->ctx);
	uv_run(&loop, UV_RUN_NOWAIT);
	(void)uv_loop_close(&loop);
out_auth:
	sp_auth_destroy(s->auth);
out_store:
	sp_store_close(s->store);
out_free:
	sodium_memzero(s->secret, sizeof(s->secret));
	free(s);
	return rc;
}
