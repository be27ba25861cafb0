/*
 * SMTP client for outbound delivery (outbound_smtp.h).  A straight-line
 * dialogue rather than a table: the client side has one path (EHLO,
 * STARTTLS?, EHLO, MAIL, RCPT..., DATA, QUIT) and every reply either
 * continues it or ends it; what varies is decided by the reply parser.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "server/gateway/outbound_smtp.h"

struct conn {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	int timeout_ms;
	uint8_t in[4096];
	size_t in_off, in_len;
	struct sp_ob_reply reply;
};

static int
wait_fd(struct conn *c, short ev)
{
	struct pollfd p = { .fd = c->fd, .events = ev };
	int rc;

	do
		rc = poll(&p, 1, c->timeout_ms);
	while (rc < 0 && errno == EINTR);
	return rc > 0 ? 0 : -1;
}

static int
conn_write(struct conn *c, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n;

		if (c->ssl) {
			int r = SSL_write(c->ssl, p, (int)(len > 65536 ? 65536 :
			    len));

			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);

				if ((e == SSL_ERROR_WANT_WRITE &&
				    wait_fd(c, POLLOUT) == 0) ||
				    (e == SSL_ERROR_WANT_READ &&
				    wait_fd(c, POLLIN) == 0))
					continue;
				return -1;
			}
			n = r;
		} else {
			n = send(c->fd, p, len, MSG_NOSIGNAL);
			if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
				if (wait_fd(c, POLLOUT) != 0)
					return -1;
				continue;
			}
			if (n <= 0)
				return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
conn_fill(struct conn *c)
{
	for (;;) {
		ssize_t n;

		if (c->ssl) {
			int r = SSL_read(c->ssl, c->in, sizeof(c->in));

			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);

				if ((e == SSL_ERROR_WANT_READ &&
				    wait_fd(c, POLLIN) == 0) ||
				    (e == SSL_ERROR_WANT_WRITE &&
				    wait_fd(c, POLLOUT) == 0))
					continue;
				return -1;
			}
			n = r;
		} else {
			n = recv(c->fd, c->in, sizeof(c->in), 0);
			if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
				if (wait_fd(c, POLLIN) != 0)
					return -1;
				continue;
			}
			if (n <= 0)
				return -1;
		}
		c->in_off = 0;
		c->in_len = (size_t)n;
		return 0;
	}
}

/* Reads one whole reply into c->reply; its code, or -1. */
static int
read_reply(struct conn *c)
{
	sp_ob_reply_init(&c->reply);
	for (;;) {
		size_t used;
		int rc;

		if (c->in_off == c->in_len && conn_fill(c) != 0)
			return -1;
		rc = sp_ob_reply_feed(&c->reply, c->in + c->in_off,
		    c->in_len - c->in_off, &used);
		c->in_off += used;
		if (rc < 0)
			return -1;
		if (rc == 1)
			return c->reply.code;
	}
}

/* Sends verb, arg and the closing text, then reads the reply. */
static int
command(struct conn *c, const char *verb, const char *arg, const char *tail)
{
	char line[1100];
	int n = snprintf(line, sizeof(line), "%s%s%s\r\n", verb, arg, tail);

	if (n < 0 || (size_t)n >= sizeof(line) || conn_write(c, line,
	    (size_t)n) != 0)
		return -1;
	return read_reply(c);
}

static void
session_fail(struct sp_ob_smtp_result *res, int code, const char *text)
{
	res->session_code = code;
	snprintf(res->session_text, sizeof(res->session_text), "%s", text);
}

static int
tcp_connect(const struct sockaddr_storage *a, int timeout_ms)
{
	socklen_t alen = a->ss_family == AF_INET6 ?
	    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	struct pollfd p;
	int fd, err = 0;
	socklen_t el = sizeof(err);

	if ((fd = socket(a->ss_family, SOCK_STREAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0)) < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)a, alen) != 0) {
		if (errno != EINPROGRESS)
			goto fail;
		p.fd = fd;
		p.events = POLLOUT;
		if (poll(&p, 1, timeout_ms) != 1 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 ||
		    err != 0)
			goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

static int
start_tls(struct conn *c, const struct sp_ob_smtp_opts *o)
{
	int r;

	if ((c->ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION) != 1)
		return -1;
	if (o->require_tls) {
		SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
		if ((o->ca_file ? SSL_CTX_load_verify_locations(c->ctx,
		    o->ca_file, NULL) : SSL_CTX_set_default_verify_paths(
		    c->ctx)) != 1)
			return -1;
	} else
		SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL);
	if ((c->ssl = SSL_new(c->ctx)) == NULL ||
	    SSL_set_fd(c->ssl, c->fd) != 1)
		return -1;
	if (o->verify_host != NULL) {
		/* SSL_set_tlsext_host_name() is a macro that casts const
		 * away, which clang's -Wcast-qual refuses: say it plainly. */
		(void)SSL_ctrl(c->ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME,
		    TLSEXT_NAMETYPE_host_name,
		    (void *)(uintptr_t)o->verify_host);
		if (o->require_tls && SSL_set1_host(c->ssl, o->verify_host) != 1)
			return -1;
	}
	for (;;) {
		r = SSL_connect(c->ssl);
		if (r == 1)
			break;
		r = SSL_get_error(c->ssl, r);
		if ((r == SSL_ERROR_WANT_READ && wait_fd(c, POLLIN) == 0) ||
		    (r == SSL_ERROR_WANT_WRITE && wait_fd(c, POLLOUT) == 0))
			continue;
		return -1;
	}
	/* Bytes the remote sent before the handshake would be a STARTTLS
	 * injection (CVE-2011-0411 class): drop them. */
	c->in_off = c->in_len = 0;
	return 0;
}

/* Sends msg with dot-stuffing, then ".". */
static int
send_data(struct conn *c, const uint8_t *msg, size_t len)
{
	size_t i, start = 0;
	int bol = 1;

	for (i = 0; i < len; i++) {
		if (bol && msg[i] == '.') {
			if (conn_write(c, msg + start, i - start) != 0 ||
			    conn_write(c, ".", 1) != 0)
				return -1;
			start = i;
		}
		bol = msg[i] == '\n';
	}
	if (conn_write(c, msg + start, len - start) != 0)
		return -1;
	if (len >= 2 && msg[len - 2] == '\r' && msg[len - 1] == '\n')
		return conn_write(c, ".\r\n", 3);
	return conn_write(c, "\r\n.\r\n", 5);
}

int
sp_ob_smtp_send(const struct sp_ob_smtp_opts *o,
    const struct sockaddr_storage *addr, const char *mail_from,
    const char *const *rcpts, size_t n, const uint8_t *msg, size_t len,
    struct sp_ob_smtp_result *res)
{
	struct conn *c;
	size_t i, accepted = 0;
	int code;

	memset(res, 0, sizeof(*res));
	if (n > 128 || (c = calloc(1, sizeof(*c))) == NULL)
		return -1;
	c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 300000;
	if ((c->fd = tcp_connect(addr, c->timeout_ms)) < 0) {
		session_fail(res, 421, "connection failed");
		goto out;
	}
	if ((code = read_reply(c)) != 220) {
		session_fail(res, code >= 400 ? code : 421, code > 0 ?
		    c->reply.text : "no greeting");
		goto out_quit;
	}
	if ((code = command(c, "EHLO ", o->helo, "")) != 250 &&
	    (code = command(c, "HELO ", o->helo, "")) != 250) {
		session_fail(res, code >= 400 ? code : 421, "EHLO refused");
		goto out_quit;
	}
	if (c->reply.ext & SP_OB_EXT_STARTTLS) {
		if ((code = command(c, "STARTTLS", "", "")) != 220 ||
		    start_tls(c, o) != 0) {
			/* Opportunistic TLS that fails is not retried in the
			 * clear here: the next attempt may succeed, and a
			 * downgrade on demand is what an attacker wants. */
			session_fail(res, 421, o->require_tls ?
			    "TLS failed (MTA-STS enforce: certificate not "
			    "valid for the MX)" : "TLS handshake failed");
			goto out;
		}
		res->tls = 1;
		if ((code = command(c, "EHLO ", o->helo, "")) != 250) {
			session_fail(res, code >= 400 ? code : 421,
			    "EHLO after STARTTLS refused");
			goto out_quit;
		}
	} else if (o->require_tls) {
		session_fail(res, 421, "MTA-STS enforce: the MX does not offer "
		    "STARTTLS");
		goto out_quit;
	}
	if ((code = command(c, "MAIL FROM:<", mail_from, ">")) != 250) {
		session_fail(res, code >= 400 ? code : 421, code > 0 ?
		    c->reply.text : "connection lost");
		goto out_quit;
	}
	for (i = 0; i < n; i++) {
		code = command(c, "RCPT TO:<", rcpts[i], ">");
		res->rcpt_code[i] = code > 0 ? code : 421;
		snprintf(res->rcpt_text[i], sizeof(res->rcpt_text[i]), "%s",
		    code > 0 ? c->reply.text : "connection lost");
		if (code < 0)
			goto out;
		if (code / 100 == 2)
			accepted++;
	}
	if (accepted == 0)
		goto out_quit;
	if ((code = command(c, "DATA", "", "")) != 354 ||
	    send_data(c, msg, len) != 0 || (code = read_reply(c)) != 250) {
		for (i = 0; i < n; i++) {
			if (res->rcpt_code[i] / 100 != 2)
				continue;
			res->rcpt_code[i] = code >= 400 ? code : 421;
			snprintf(res->rcpt_text[i], sizeof(res->rcpt_text[i]),
			    "%s", code > 0 ? c->reply.text : "connection lost "
			    "during DATA");
		}
		goto out_quit;
	}
	for (i = 0; i < n; i++)
		if (res->rcpt_code[i] / 100 == 2) {
			res->rcpt_code[i] = 250;
			snprintf(res->rcpt_text[i], sizeof(res->rcpt_text[i]),
			    "%s", c->reply.text);
		}
out_quit:
	(void)command(c, "QUIT", "", "");
out:
	if (res->session_code != 0)
		for (i = 0; i < n; i++) {
			res->rcpt_code[i] = res->session_code;
			snprintf(res->rcpt_text[i], sizeof(res->rcpt_text[i]),
			    "%s", res->session_text);
		}
	if (c->ssl) {
		(void)SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	SSL_CTX_free(c->ctx);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
	return 0;
}
