/*
 * Blocking sync client over libwebsockets (see sync_client.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <libwebsockets.h>

#include "client-core/sync_client.h"

struct cmsg {
	TAILQ_ENTRY(cmsg) entry;
	struct sp_client_msg *m;
};
TAILQ_HEAD(cmsgq, cmsg);

struct craw {
	TAILQ_ENTRY(craw) entry;
	uint8_t *buf;           /* LWS_PRE + len */
	size_t len;
	int binary;
};
TAILQ_HEAD(crawq, craw);

struct sp_client {
	struct lws_context *ctx;
	lws_sorted_usec_list_t wake;  /* bounds each lws_service() wait */
	struct lws *wsi;
	int connected, closed, failed;
	char why[256];
	uint64_t next_id;
	int timeout_ms;
	uint8_t *rx;
	size_t rx_len;
	struct cmsgq replies, pushes;
	struct crawq out;
};

void
sp_client_msg_free(struct sp_client_msg *m)
{
	if (m == NULL)
		return;
	free(m->buf);
	free(m);
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
take_frame(struct sp_client *c)
{
	struct sp_client_msg *m = calloc(1, sizeof(*m));
	struct cmsg *e = calloc(1, sizeof(*e));
	const char *why;

	if (m == NULL || e == NULL)
		goto drop;
	m->buf = c->rx;
	m->len = c->rx_len;
	c->rx = NULL;
	c->rx_len = 0;
	if (sp_frame_decode(m->buf, m->len, &m->f, &why) != 0) {
		/* A server we cannot understand is as good as gone. */
		snprintf(c->why, sizeof(c->why), "bad frame from server: %s",
		    why);
		c->failed = 1;
		goto drop;
	}
	e->m = m;
	if (m->f.id == 0)
		TAILQ_INSERT_TAIL(&c->pushes, e, entry);
	else
		TAILQ_INSERT_TAIL(&c->replies, e, entry);
	return;
drop:
	sp_client_msg_free(m);
	free(e);
	free(c->rx);
	c->rx = NULL;
	c->rx_len = 0;
}

static int
client_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct sp_client *c = lws_get_opaque_user_data(wsi);
	struct craw *r;
	uint8_t *n;

	if (c == NULL)
		return 0;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		c->connected = 1;
		if (!TAILQ_EMPTY(&c->out))
			lws_callback_on_writable(wsi);
		break;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		snprintf(c->why, sizeof(c->why), "%s",
		    in ? (const char *)in : "connection failed");
		c->failed = 1;
		c->wsi = NULL;
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		if ((n = realloc(c->rx, c->rx_len + len + 1)) == NULL)
			return -1;
		c->rx = n;
		memcpy(c->rx + c->rx_len, in, len);
		c->rx_len += len;
		if (lws_is_final_fragment(wsi) &&
		    lws_remaining_packet_payload(wsi) == 0)
			take_frame(c);
		break;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if ((r = TAILQ_FIRST(&c->out)) == NULL)
			break;
		TAILQ_REMOVE(&c->out, r, entry);
		if (lws_write(wsi, r->buf + LWS_PRE, r->len, r->binary ?
		    LWS_WRITE_BINARY : LWS_WRITE_TEXT) < (int)r->len) {
			free(r->buf);
			free(r);
			return -1;
		}
		free(r->buf);
		free(r);
		if (!TAILQ_EMPTY(&c->out))
			lws_callback_on_writable(wsi);
		break;
	case LWS_CALLBACK_CLIENT_CLOSED:
	case LWS_CALLBACK_WSI_DESTROY:
		c->closed = 1;
		c->wsi = NULL;
		break;
	default:
		break;
	}
	return 0;
}

static const struct lws_protocols client_protocols[] = {
	{ "sealpost.v1", client_cb, 0, 65536, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static void
wake_cb(lws_sorted_usec_list_t *sul)
{
	(void)sul;      /* only here to end the poll() inside lws_service() */
}

/*
 * One round of servicing that returns by the deadline.  libwebsockets 4.1
 * ignores lws_service()'s timeout and sleeps until its next event, so a
 * timer event is scheduled at the deadline (at most 100 ms away).
 */
static void
service_until(sp_client *c, uint64_t end_ms)
{
	uint64_t now = now_ms();
	lws_usec_t us = end_ms > now ? (lws_usec_t)(end_ms - now) * 1000 : 0;

	if (us > 100000)
		us = 100000;
	lws_sul_schedule(c->ctx, 0, &c->wake, wake_cb, us ? us : 1);
	lws_service(c->ctx, 0);
}

void
sp_client_service(sp_client *c, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;

	do {
		service_until(c, end);
	} while (now_ms() < end && !c->closed && !c->failed &&
	    TAILQ_EMPTY(&c->pushes) && TAILQ_EMPTY(&c->replies));
}

static int
queue_raw(sp_client *c, uint8_t *buf, size_t len, int binary)
{
	struct craw *r = calloc(1, sizeof(*r));

	if (r == NULL) {
		free(buf);
		return ENOMEM;
	}
	r->buf = buf;
	r->len = len;
	r->binary = binary;
	TAILQ_INSERT_TAIL(&c->out, r, entry);
	if (c->wsi && c->connected)
		lws_callback_on_writable(c->wsi);
	return 0;
}

int
sp_client_send_raw(sp_client *c, const void *buf, size_t len, int binary)
{
	uint8_t *b = malloc(LWS_PRE + len + 1);

	if (b == NULL)
		return ENOMEM;
	memcpy(b + LWS_PRE, buf, len);
	return queue_raw(c, b, len, binary);
}

int
sp_client_send(sp_client *c, struct sp_frame *req, uint64_t *id_r)
{
	uint8_t *buf;
	size_t len;
	int rc;

	if (c->closed || c->failed)
		return EPIPE;
	req->id = ++c->next_id;
	if ((rc = sp_frame_encode(req, LWS_PRE, &buf, &len)) != 0)
		return EINVAL;
	*id_r = req->id;
	return queue_raw(c, buf, len, 1);
}

int
sp_client_wait(sp_client *c, uint64_t id, struct sp_client_msg **reply_r)
{
	uint64_t end = now_ms() + (uint64_t)c->timeout_ms;
	struct cmsg *e;

	*reply_r = NULL;
	for (;;) {
		TAILQ_FOREACH(e, &c->replies, entry) {
			if (e->m->f.id == id) {
				TAILQ_REMOVE(&c->replies, e, entry);
				*reply_r = e->m;
				free(e);
				return 0;
			}
		}
		if (c->closed || c->failed)
			return EPIPE;
		if (now_ms() >= end)
			return ETIMEDOUT;
		service_until(c, end);
	}
}

int
sp_client_call(sp_client *c, struct sp_frame *req,
    struct sp_client_msg **reply_r)
{
	uint64_t id;
	int rc;

	*reply_r = NULL;
	if ((rc = sp_client_send(c, req, &id)) != 0)
		return rc;
	return sp_client_wait(c, id, reply_r);
}

int
sp_client_next_push(sp_client *c, int timeout_ms, struct sp_client_msg **m_r)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	struct cmsg *e;

	*m_r = NULL;
	for (;;) {
		if ((e = TAILQ_FIRST(&c->pushes)) != NULL) {
			TAILQ_REMOVE(&c->pushes, e, entry);
			*m_r = e->m;
			free(e);
			return 0;
		}
		if (c->closed || c->failed)
			return EPIPE;
		if (now_ms() >= end)
			return ETIMEDOUT;
		service_until(c, end);
	}
}

int
sp_client_is_closed(const sp_client *c)
{
	return c->closed || c->failed;
}

int
sp_client_connect(const struct sp_client_opts *o, sp_client **c_r,
    char *err, size_t errlen)
{
	struct lws_context_creation_info info;
	struct lws_client_connect_info ci;
	struct sp_client *c;
	uint64_t end;
	int rc = EPROTO;

	*c_r = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return ENOMEM;
	TAILQ_INIT(&c->replies);
	TAILQ_INIT(&c->pushes);
	TAILQ_INIT(&c->out);
	c->timeout_ms = o->timeout_ms ? o->timeout_ms : 10000;
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = client_protocols;
	info.gid = -1;
	info.uid = -1;
	if (o->tls) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.client_ssl_ca_filepath = o->ca_file;
		/* TLS 1.2 and later only, as on the server. */
		info.ssl_client_options_set = SSL_OP_NO_SSLv2 | SSL_OP_NO_SSLv3 |
		    SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1;
	}
	lws_set_log_level(getenv("SP_LWS_DEBUG") ? LLL_ERR | LLL_WARN | LLL_NOTICE | LLL_INFO : LLL_ERR, NULL);
	if ((c->ctx = lws_create_context(&info)) == NULL) {
		snprintf(err, errlen, "cannot create client context");
		goto fail;
	}
	/* Let the context reach OPERATIONAL before the first connection. */
	lws_service(c->ctx, 0);
	memset(&ci, 0, sizeof(ci));
	ci.context = c->ctx;
	ci.address = o->host;
	ci.port = o->port;
	ci.path = "/sync";
	ci.host = o->host;
	ci.origin = o->host;
	ci.protocol = "sealpost.v1";
	ci.ssl_connection = o->tls ? LCCSCF_USE_SSL : 0;
	ci.opaque_user_data = c;
	ci.pwsi = &c->wsi;
	if (lws_client_connect_via_info(&ci) == NULL) {
		snprintf(err, errlen, "cannot start connecting");
		goto fail;
	}
	end = now_ms() + (uint64_t)c->timeout_ms;
	while (!c->connected && !c->failed && !c->closed && now_ms() < end)
		service_until(c, end);
	if (!c->connected) {
		rc = c->failed && strstr(c->why, "refused") ? ECONNREFUSED :
		    c->failed ? EPROTO : ETIMEDOUT;
		snprintf(err, errlen, "%s", c->why[0] ? c->why :
		    "connection timed out");
		goto fail;
	}
	if (!o->skip_hello) {
		struct sp_frame h;
		struct sp_client_msg *m;

		sp_frame_init(&h, SP_MSG_HELLO, 0);
		sp_frame_set_uint(&h, SP_F_VERSION, SP_PROTO_VERSION);
		if (o->device)
			sp_frame_set_text(&h, SP_F_DEVICE, o->device);
		if ((rc = sp_client_call(c, &h, &m)) != 0) {
			snprintf(err, errlen, "HELLO: %s", strerror(rc));
			goto fail;
		}
		if (m->f.type != SP_MSG_WELCOME) {
			snprintf(err, errlen, "HELLO refused");
			sp_client_msg_free(m);
			rc = EPROTO;
			goto fail;
		}
		sp_client_msg_free(m);
	}
	*c_r = c;
	return 0;
fail:
	sp_client_close(c);
	return rc;
}

void
sp_client_close(sp_client *c)
{
	struct cmsg *e;
	struct craw *r;

	if (c == NULL)
		return;
	if (c->ctx) {
		lws_sul_cancel(&c->wake);
		lws_context_destroy(c->ctx);
	}
	while ((e = TAILQ_FIRST(&c->replies)) != NULL) {
		TAILQ_REMOVE(&c->replies, e, entry);
		sp_client_msg_free(e->m);
		free(e);
	}
	while ((e = TAILQ_FIRST(&c->pushes)) != NULL) {
		TAILQ_REMOVE(&c->pushes, e, entry);
		sp_client_msg_free(e->m);
		free(e);
	}
	while ((r = TAILQ_FIRST(&c->out)) != NULL) {
		TAILQ_REMOVE(&c->out, r, entry);
		free(r->buf);
		free(r);
	}
	free(c->rx);
	free(c);
}

/* Turns a reply into 0, or SP_ESERVER with the server's reason in err. */
int
sp_client_expect(int rc, struct sp_client_msg *m, uint32_t want, const char *what,
    char *err, size_t errlen)
{
	if (rc != 0) {
		snprintf(err, errlen, "%s: %s", what, rc == ETIMEDOUT ?
		    "the server did not answer" : "the connection closed");
		return rc;
	}
	if (m->f.type == SP_MSG_ERROR) {
		snprintf(err, errlen, "%s: %s (%.*s)", what,
		    sp_proto_strerror((int)m->f.f[SP_F_CODE].u),
		    (int)m->f.f[SP_F_MESSAGE].len,
		    (const char *)m->f.f[SP_F_MESSAGE].ptr);
		return SP_ESERVER;
	}
	if (m->f.type != want) {
		snprintf(err, errlen, "%s: unexpected reply", what);
		return EPROTO;
	}
	return 0;
}
