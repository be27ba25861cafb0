/*
 * rspamd client: see filter_rspamd.h.
 *
 * The envelope travels in request headers (rspamd's protocol: IP, Helo,
 * From, one Rcpt per recipient), so every value is checked for control
 * characters first: a CR or LF from the SMTP side must never split a
 * header.  The JSON body is parsed by json-c with a depth limit, after our
 * own size limit; json-c is strict about what it accepts and we check that
 * nothing but whitespace follows the object.
 */
#include "server/gateway/filter/filter_rspamd.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <json-c/json.h>

#include "server/gateway/filter/filter_net.h"

void
filter_rspamd_parser_init(struct filter_rspamd_parser *p)
{
	memset(p, 0, sizeof(*p));
}

static void
rspamd_copy_text(char *dst, size_t cap, const char *src, size_t n)
{
	size_t i;

	if (n >= cap)
		n = cap - 1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)src[i];

		dst[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	dst[n] = '\0';
}

/* "HTTP/1.x NNN reason": the status, or -1. */
static int
rspamd_status_line(const char *s, size_t n)
{
	int i, st = 0;

	if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 ||
	    (s[7] != '0' && s[7] != '1') || s[8] != ' ' ||
	    (n > 12 && s[12] != ' '))
		return -1;
	for (i = 9; i < 12; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		st = st * 10 + (s[i] - '0');
	}
	return st < 100 ? -1 : st;
}

static int
rspamd_is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != 0 && strchr("!#$%&'*+-.^_`|~",
	    c) != NULL);
}

/* One "Name: value" header line; records what we care about. */
static int
rspamd_header(struct filter_rspamd_parser *p, const char *s, size_t n)
{
	size_t i, nl, vs;
	size_t cl = 0;

	for (nl = 0; nl < n && rspamd_is_tchar((unsigned char)s[nl]); nl++)
		;
	if (nl == 0 || nl >= n || s[nl] != ':')
		return SP_EFORMAT;
	for (i = nl + 1; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return SP_EFORMAT;
	}
	for (vs = nl + 1; vs < n && (s[vs] == ' ' || s[vs] == '\t'); vs++)
		;
	while (n > vs && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (nl == 14 && strncasecmp(s, "Content-Length", nl) == 0) {
		if (p->has_length || vs == n || n - vs > 9)
			return SP_EFORMAT;
		for (i = vs; i < n; i++) {
			if (s[i] < '0' || s[i] > '9')
				return SP_EFORMAT;
			cl = cl * 10 + (size_t)(s[i] - '0');
		}
		if (cl > FILTER_RSPAMD_BODY_MAX)
			return SP_ELIMIT;
		p->content_length = cl;
		p->has_length = 1;
	} else if ((nl == 17 && strncasecmp(s, "Transfer-Encoding", nl) == 0) ||
	    (nl == 16 && strncasecmp(s, "Content-Encoding", nl) == 0)) {
		/* We never send Compression or ask for chunks. */
		if (n - vs != 8 || strncasecmp(s + vs, "identity", 8) != 0)
			return SP_EFORMAT;
	}
	return 0;
}

/* The complete head buf[0..end) (blank line excluded). */
static int
rspamd_head_parse(struct filter_rspamd_parser *p, const char *buf, size_t end)
{
	size_t ls = 0, le;
	int err, first = 1;

	while (ls < end) {
		const char *crlf = memmem(buf + ls, end - ls + 2, "\r\n", 2);

		le = (size_t)(crlf - buf);
		if (memchr(buf + ls, '\n', le - ls) != NULL ||
		    memchr(buf + ls, '\r', le - ls) != NULL)
			return SP_EFORMAT; /* bare LF or CR */
		if (first) {
			if ((p->status = rspamd_status_line(buf + ls,
			    le - ls)) < 0)
				return SP_EFORMAT;
			first = 0;
		} else if ((err = rspamd_header(p, buf + ls, le - ls)) != 0) {
			return err;
		}
		ls = le + 2;
	}
	return first ? SP_EFORMAT : 0;
}

/* Finds the end of the head; 0 with p->body_off set, or EAGAIN etc. */
static int
rspamd_find_head(struct filter_rspamd_parser *p, const uint8_t *buf,
    size_t len, int eof)
{
	const char *s = (const char *)buf;
	size_t lim = len < FILTER_RSPAMD_HEAD_MAX ? len :
	    FILTER_RSPAMD_HEAD_MAX;
	size_t i = p->scanned > 3 ? p->scanned - 3 : 0;
	int err;

	for (; i + 4 <= lim; i++) {
		if (memcmp(s + i, "\r\n\r\n", 4) != 0)
			continue;
		if ((err = rspamd_head_parse(p, s, i)) != 0)
			return err;
		p->body_off = i + 4;
		return 0;
	}
	p->scanned = lim;
	if (len >= FILTER_RSPAMD_HEAD_MAX)
		return SP_ELIMIT;
	return eof ? SP_ETRUNC : EAGAIN;
}

static int
rspamd_get_string(json_object *o, const char *key, char *dst, size_t cap,
    int strict)
{
	json_object *v;
	const char *s;
	size_t n, i;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return SP_EFORMAT;
	s = json_object_get_string(v);
	n = (size_t)json_object_get_string_len(v);
	if (strict) {
		if (n == 0 || n >= cap)
			return SP_EFORMAT;
		for (i = 0; i < n; i++)
			if ((unsigned char)s[i] < 0x20 ||
			    (unsigned char)s[i] >= 0x7f)
				return SP_EFORMAT;
	}
	rspamd_copy_text(dst, cap, s, n);
	return 0;
}

static int
rspamd_get_number(json_object *o, const char *key, double *d_r)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    (!json_object_is_type(v, json_type_double) &&
	    !json_object_is_type(v, json_type_int)))
		return SP_EFORMAT;
	*d_r = json_object_get_double(v);
	return isfinite(*d_r) ? 0 : SP_EFORMAT;
}

/* The JSON body: an object; for 200 "action" and "score" are required. */
static int
rspamd_body_parse(const char *body, size_t n, struct filter_rspamd_reply *r)
{
	struct json_tokener *tok;
	json_object *o = NULL;
	size_t end, i;
	int err = SP_EFORMAT;

	/* json-c stops at a NUL; a NUL in the body is simply malformed. */
	if (n == 0 || memchr(body, '\0', n) != NULL)
		return SP_EFORMAT;
	if ((tok = json_tokener_new_ex(FILTER_RSPAMD_JSON_DEPTH)) == NULL)
		return SP_ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, body, (int)n);
	if (o == NULL || json_tokener_get_error(tok) != json_tokener_success)
		goto out;
	end = json_tokener_get_parse_end(tok);
	for (i = end; i < n; i++)
		if (!strchr(" \t\r\n", body[i]))
			goto out;
	if (!json_object_is_type(o, json_type_object))
		goto out;
	if (r->status != 200) {
		(void)rspamd_get_string(o, "error", r->error,
		    sizeof(r->error), 0);
		err = 0;
		goto out;
	}
	if ((err = rspamd_get_string(o, "action", r->action,
	    sizeof(r->action), 1)) != 0 ||
	    (err = rspamd_get_number(o, "score", &r->score)) != 0)
		goto out;
	if (json_object_object_get_ex(o, "required_score", NULL) &&
	    (err = rspamd_get_number(o, "required_score",
	    &r->required_score)) != 0)
		goto out;
	err = 0;
out:
	json_object_put(o);
	json_tokener_free(tok);
	return err;
}

int
filter_rspamd_parse(struct filter_rspamd_parser *p, const uint8_t *buf,
    size_t len, int eof, struct filter_rspamd_reply *r)
{
	size_t blen;
	int err;

	if (p->body_off == 0 &&
	    (err = rspamd_find_head(p, buf, len, eof)) != 0)
		return err;
	blen = len - p->body_off;
	if (blen > FILTER_RSPAMD_BODY_MAX)
		return SP_ELIMIT;
	if (p->has_length) {
		if (blen < p->content_length)
			return eof ? SP_ETRUNC : EAGAIN;
		if (blen > p->content_length)
			return SP_EFORMAT; /* we asked for Connection: close */
	} else if (!eof) {
		return EAGAIN;
	}
	memset(r, 0, sizeof(*r));
	r->status = p->status;
	if (r->status != 200 && blen == 0)
		return 0;
	return rspamd_body_parse((const char *)buf + p->body_off, blen, r);
}

/* A header value: non-empty (unless empty_ok), no controls, bounded. */
static int
rspamd_value_ok(const char *v, int empty_ok)
{
	size_t i, n = strlen(v);

	if ((n == 0 && !empty_ok) || n > FILTER_RSPAMD_VALUE_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			return 0;
	return 1;
}

int
filter_rspamd_head(const struct sp_gw_filter_envelope *e, size_t msglen,
    char **head_r, size_t *len_r)
{
	size_t cap = 256, off, i;
	char *h;
	int n;

	*head_r = NULL;
	if ((e->ip && !rspamd_value_ok(e->ip, 0)) ||
	    (e->helo && !rspamd_value_ok(e->helo, 0)) ||
	    (e->mail_from && !rspamd_value_ok(e->mail_from, 1)) ||
	    (e->nrcpts > 0 && e->rcpts == NULL))
		return SP_EINVAL;
	cap += e->ip ? strlen(e->ip) + 8 : 0;
	cap += e->helo ? strlen(e->helo) + 8 : 0;
	cap += e->mail_from ? strlen(e->mail_from) + 10 : 0;
	for (i = 0; i < e->nrcpts; i++) {
		if (e->rcpts[i] == NULL || !rspamd_value_ok(e->rcpts[i], 0))
			return SP_EINVAL;
		cap += strlen(e->rcpts[i]) + 8;
	}
	if ((h = malloc(cap)) == NULL)
		return SP_ENOMEM;
	n = snprintf(h, cap, "POST /checkv2 HTTP/1.1\r\nHost: rspamd\r\n"
	    "Connection: close\r\nContent-Length: %zu\r\n", msglen);
	off = (size_t)n;
#define ADD(fmt, v) off += (size_t)snprintf(h + off, cap - off, fmt, v)
	if (e->ip)
		ADD("IP: %s\r\n", e->ip);
	if (e->helo)
		ADD("Helo: %s\r\n", e->helo);
	if (e->mail_from)
		ADD("From: %s\r\n", e->mail_from[0] ? e->mail_from : "<>");
	for (i = 0; i < e->nrcpts; i++)
		ADD("Rcpt: %s\r\n", e->rcpts[i]);
	ADD("%s", "\r\n");
#undef ADD
	*head_r = h;
	*len_r = off;
	return 0;
}

/* Reads the reply into a buffer grown up to the limits, then parses. */
static int
rspamd_read(int fd, int64_t deadline, struct filter_rspamd_reply *r)
{
	const size_t max = FILTER_RSPAMD_HEAD_MAX + FILTER_RSPAMD_BODY_MAX + 1;
	struct filter_rspamd_parser p;
	uint8_t *buf = NULL, *nb;
	size_t cap = 0, len = 0, n;
	int err;

	filter_rspamd_parser_init(&p);
	for (;;) {
		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 16 * 1024;

			if (ncap > max)
				ncap = max;
			if (ncap == cap) {
				err = SP_ELIMIT;
				break;
			}
			if ((nb = malloc(ncap)) == NULL) {
				err = SP_ENOMEM;
				break;
			}
			/* The reply quotes the subject: wipe the old copy. */
			if (buf) {
				memcpy(nb, buf, len);
				explicit_bzero(buf, cap);
				free(buf);
			}
			buf = nb;
			cap = ncap;
		}
		if ((err = filter_net_recv(fd, buf + len, cap - len,
		    deadline, &n)) != 0)
			break;
		len += n;
		if ((err = filter_rspamd_parse(&p, buf, len, n == 0,
		    r)) != EAGAIN)
			break;
	}
	if (buf) {
		explicit_bzero(buf, cap);
		free(buf);
	}
	return err;
}

int
filter_rspamd_check(const char *addr,
    const struct sp_gw_filter_envelope *e, const uint8_t *msg, size_t len,
    int64_t deadline, struct filter_rspamd_reply *r)
{
	struct iovec iov[2];
	char *head;
	size_t hlen;
	int fd, err, spoke;

	memset(r, 0, sizeof(*r));
	if ((err = filter_rspamd_head(e, len, &head, &hlen)) != 0)
		return err;
	if ((err = filter_net_connect(addr, deadline, &fd)) != 0)
		goto out_head;
	iov[0].iov_base = head;
	iov[0].iov_len = hlen;
	iov[1].iov_base = (void *)(uintptr_t)msg; /* only read */
	iov[1].iov_len = len;
	err = filter_net_sendv(fd, iov, 2, deadline, &spoke);
	/* As in filter_clamd.c: an answer read after a reset wins. */
	if (err == 0 || err == EPIPE || err == ECONNRESET) {
		int rerr = rspamd_read(fd, deadline, r);

		if (err == 0 || rerr <= 0)
			err = rerr;
	}
	(void)close(fd);
out_head:
	explicit_bzero(head, hlen);
	free(head);
	return err;
}
