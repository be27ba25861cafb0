/*
 * Thunderbird autoconfig over HTTP; see autoconfig.h.
 *
 * Plain HTTP on loopback is what Thunderbird's autoconfig asks for first
 * (http://autoconfig.DOMAIN/...), and the document holds no secret; the
 * mail protocols themselves run over TLS.
 */
#include "bridge/autoconfig.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bridge/bridge_tls.h"

#define REQ_MAX 8192
#define REQ_TIMEOUT_MS 10000

struct autoconfig_server {
	uv_loop_t *loop;
	uv_tcp_t listen;
	struct autoconfig_opts o;
	char mail_host[256];
	int port;
	int closed;
	struct ac_conn *conns;
};

struct ac_conn {
	struct autoconfig_server *srv;
	struct ac_conn *next, *prev;
	uv_tcp_t tcp;
	uv_timer_t timer;
	int handles_open, closing;
	char req[REQ_MAX + 1];
	size_t len;
};

/* ---- the document ------------------------------------------------------- */

struct sbuf {
	char *p;
	size_t len, cap;
	int failed;
};

static void
sb_add(struct sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
sb_add(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap -
		    b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = 1;
			return;
		}
		if (b->p && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		{
			size_t cap = (b->cap ? b->cap : 1024) * 2 + (size_t)n;
			char *np = realloc(b->p, cap);

			if (np == NULL) {
				b->failed = 1;
				return;
			}
			b->p = np;
			b->cap = cap;
		}
	}
}

/* XML-escaped copy of s into out (cap bytes). */
static const char *
xml_esc(const char *s, char *out, size_t cap)
{
	size_t n = 0;

	for (; *s && n + 7 < cap; s++) {
		const char *e = NULL;

		switch (*s) {
		case '&': e = "&amp;"; break;
		case '<': e = "&lt;"; break;
		case '>': e = "&gt;"; break;
		case '"': e = "&quot;"; break;
		case '\'': e = "&apos;"; break;
		}
		if (e) {
			memcpy(out + n, e, strlen(e));
			n += strlen(e);
		} else {
			out[n++] = *s;
		}
	}
	out[n] = 0;
	return out;
}

static void
server_entry(struct sbuf *b, const char *tag, const char *type,
    const char *host, int port, const char *socket_type, const char *user,
    const char *extra)
{
	sb_add(b, "    <%s type=\"%s\">\n"
	    "      <hostname>%s</hostname>\n"
	    "      <port>%d</port>\n"
	    "      <socketType>%s</socketType>\n"
	    "      <username>%s</username>\n"
	    "      <authentication>password-cleartext</authentication>\n"
	    "%s"
	    "    </%s>\n", tag, type, host, port, socket_type, user,
	    extra, tag);
}

int
autoconfig_xml(const struct autoconfig_opts *o, const char *address,
    char **xml_r)
{
	const bridge_account *a = NULL;
	char user[1600], domain[1600], host[1600];
	const char *addr, *at;
	struct sbuf b = { NULL, 0, 0, 0 };
	size_t i;

	*xml_r = NULL;
	for (i = 0; i < o->naccounts && a == NULL; i++)
		if (address == NULL || strcasecmp(address,
		    bridge_account_address(o->accounts[i])) == 0)
			a = o->accounts[i];
	if (a == NULL)
		return ENOENT;
	addr = bridge_account_address(a);
	at = strrchr(addr, '@');
	xml_esc(addr, user, sizeof(user));
	xml_esc(at ? at + 1 : addr, domain, sizeof(domain));
	xml_esc(o->mail_host ? o->mail_host : o->host, host, sizeof(host));
	sb_add(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<clientConfig version=\"1.1\">\n"
	    "  <emailProvider id=\"%s\">\n"
	    "    <domain>%s</domain>\n"
	    "    <displayName>%s (sealpost bridge)</displayName>\n"
	    "    <displayShortName>sealpost</displayShortName>\n",
	    domain, domain, user);
	/* Implicit TLS first: Thunderbird takes the first entry it can
	 * use. */
	if (o->imaps_port >= 0)
		server_entry(&b, "incomingServer", "imap", host,
		    o->imaps_port, "SSL", user, "");
	if (o->imap_port >= 0)
		server_entry(&b, "incomingServer", "imap", host, o->imap_port,
		    "STARTTLS", user, "");
	if (o->pop3s_port >= 0)
		server_entry(&b, "incomingServer", "pop3", host,
		    o->pop3s_port, "SSL", user, "      <pop3>\n"
		    "        <leaveMessagesOnServer>true"
		    "</leaveMessagesOnServer>\n      </pop3>\n");
	if (o->pop3_port >= 0)
		server_entry(&b, "incomingServer", "pop3", host, o->pop3_port,
		    "STARTTLS", user, "      <pop3>\n"
		    "        <leaveMessagesOnServer>true"
		    "</leaveMessagesOnServer>\n      </pop3>\n");
	if (o->smtps_port >= 0)
		server_entry(&b, "outgoingServer", "smtp", host,
		    o->smtps_port, "SSL", user, "");
	if (o->smtp_port >= 0)
		server_entry(&b, "outgoingServer", "smtp", host, o->smtp_port,
		    "STARTTLS", user, "");
	sb_add(&b, "  </emailProvider>\n</clientConfig>\n");
	if (b.failed) {
		free(b.p);
		return ENOMEM;
	}
	*xml_r = b.p;
	return 0;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int
autoconfig_query_address(const char *target, char *out, size_t cap)
{
	const char *q = strchr(target, '?'), *p;
	size_t n = 0;

	if (q == NULL || cap == 0)
		return -1;
	for (p = q + 1; *p; ) {
		if (strncasecmp(p, "emailaddress=", 13) == 0) {
			p += 13;
			while (*p && *p != '&') {
				int c = (unsigned char)*p++;

				if (c == '%') {
					int h = hexval((unsigned char)p[0]);
					int l = h < 0 ? -1 :
					    hexval((unsigned char)p[1]);

					if (l < 0)
						return -1;
					c = h * 16 + l;
					p += 2;
				} else if (c == '+') {
					/* A '+' in an address is literal;
					 * clients encode spaces, which an
					 * address has none of. */
				}
				if (c < 0x21 || c == 0x7f || n + 1 >= cap)
					return -1;
				out[n++] = (char)c;
			}
			out[n] = 0;
			return n > 0 ? 0 : -1;
		}
		while (*p && *p != '&')
			p++;
		if (*p == '&')
			p++;
	}
	return -1;
}

/* ---- HTTP --------------------------------------------------------------- */

static void
on_closed(uv_handle_t *h)
{
	struct ac_conn *c = h->data;

	if (--c->handles_open == 0)
		free(c);
}

static void
conn_close(struct ac_conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	if (c->prev)
		c->prev->next = c->next;
	else
		c->srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	uv_close((uv_handle_t *)&c->timer, on_closed);
	uv_close((uv_handle_t *)&c->tcp, on_closed);
}

struct ac_write {
	uv_write_t req;
	struct ac_conn *c;
	char data[];
};

static void
on_written(uv_write_t *req, int status)
{
	struct ac_write *w = (struct ac_write *)req;

	(void)status;
	conn_close(w->c);
	free(w);
}

static void
respond(struct ac_conn *c, int code, const char *reason, const char *type,
    const char *body, int head)
{
	size_t blen = strlen(body), cap = blen + 512;
	struct ac_write *w = malloc(sizeof(*w) + cap);
	uv_buf_t b;
	int n;

	uv_read_stop((uv_stream_t *)&c->tcp);
	if (w == NULL) {
		conn_close(c);
		return;
	}
	w->c = c;
	n = snprintf(w->data, cap, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\nCache-Control: no-store\r\n"
	    "Connection: close\r\n\r\n%s", code, reason, type, blen,
	    head ? "" : body);
	b = uv_buf_init(w->data, (unsigned)n);
	fprintf(stderr, "autoconfig: %d\n", code);
	if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) !=
	    0) {
		free(w);
		conn_close(c);
	}
}

static int
path_is(const char *t, size_t plen, const char *path)
{
	return plen == strlen(path) && strncmp(t, path, plen) == 0;
}

static void
handle(struct ac_conn *c)
{
	char method[8], target[2048], addr[512], *xml = NULL;
	int head, rc;
	const char *path_end;
	size_t plen;

	if (sscanf(c->req, "%7s %2047s HTTP/1.", method, target) != 2) {
		respond(c, 400, "Bad Request", "text/plain", "bad request\n",
		    0);
		return;
	}
	head = strcmp(method, "HEAD") == 0;
	if (!head && strcmp(method, "GET") != 0) {
		respond(c, 405, "Method Not Allowed", "text/plain",
		    "GET only\n", 0);
		return;
	}
	path_end = strchr(target, '?');
	plen = path_end ? (size_t)(path_end - target) : strlen(target);
	if (!path_is(target, plen, "/mail/config-v1.1.xml") &&
	    !path_is(target, plen,
	    "/.well-known/autoconfig/mail/config-v1.1.xml")) {
		respond(c, 404, "Not Found", "text/plain", "not found\n",
		    head);
		return;
	}
	rc = autoconfig_query_address(target, addr, sizeof(addr));
	rc = autoconfig_xml(&c->srv->o, rc == 0 ? addr : NULL, &xml);
	if (rc != 0) {
		respond(c, 404, "Not Found", "text/plain", "no such account "
		    "in this bridge\n", head);
		return;
	}
	respond(c, 200, "OK", "text/xml; charset=utf-8", xml, head);
	free(xml);
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct ac_conn *c = h->data;

	(void)suggested;
	*b = uv_buf_init(c->req + c->len, (unsigned)(REQ_MAX - c->len));
}

static void
on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct ac_conn *c = s->data;

	(void)b;
	if (nread < 0) {
		conn_close(c);
		return;
	}
	c->len += (size_t)nread;
	c->req[c->len] = 0;
	if (strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n")) {
		handle(c);
		return;
	}
	if (c->len == REQ_MAX)
		respond(c, 431, "Request Header Fields Too Large",
		    "text/plain", "too large\n", 0);
}

static void
on_timeout(uv_timer_t *t)
{
	conn_close(t->data);
}

static void
on_connection(uv_stream_t *l, int status)
{
	struct autoconfig_server *s = l->data;
	struct ac_conn *c;

	if (status != 0 || (c = calloc(1, sizeof(*c))) == NULL)
		return;
	c->srv = s;
	uv_tcp_init(s->loop, &c->tcp);
	uv_timer_init(s->loop, &c->timer);
	c->tcp.data = c->timer.data = c;
	c->handles_open = 2;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
		conn_close(c);
		return;
	}
	uv_timer_start(&c->timer, on_timeout, REQ_TIMEOUT_MS, 0);
	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int
autoconfig_create(uv_loop_t *loop, const struct autoconfig_opts *o,
    struct autoconfig_server **s_r, char *err, size_t errlen)
{
	struct autoconfig_server *s = calloc(1, sizeof(*s));
	int rc;

	*s_r = NULL;
	if (s == NULL)
		return ENOMEM;
	s->loop = loop;
	s->o = *o;
	snprintf(s->mail_host, sizeof(s->mail_host), "%s",
	    o->mail_host ? o->mail_host : o->host);
	s->o.mail_host = s->mail_host;
	s->o.host = s->mail_host;
	*s_r = s;
	if ((rc = btls_listen(loop, &s->listen, o->host, o->port, 16,
	    on_connection, s, &s->port, err, errlen)) != 0)
		autoconfig_shutdown(s);
	return rc;
}

int
autoconfig_port(const struct autoconfig_server *s)
{
	return s->port;
}

void
autoconfig_shutdown(struct autoconfig_server *s)
{
	struct ac_conn *c, *next;

	if (s == NULL || s->closed)
		return;
	s->closed = 1;
	for (c = s->conns; c; c = next) {
		next = c->next;
		conn_close(c);
	}
	uv_close((uv_handle_t *)&s->listen, NULL);
}

void
autoconfig_destroy(struct autoconfig_server *s)
{
	free(s);
}
