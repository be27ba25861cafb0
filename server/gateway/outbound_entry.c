/*
 * Outbound queue entries (outbound_entry.h, docs/format.md §13).
 *
 * A flat big-endian layout rather than CBOR: the entry never crosses a
 * process boundary except through the store, both writers are ours, and a
 * reader of thirty lines is easier to fuzz than a second CBOR subset.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "server/gateway/outbound_entry.h"

struct wbuf {
	uint8_t *p;
	size_t len, cap;
	int err;
};

static void
put(struct wbuf *w, const void *src, size_t n)
{
	if (w->err || w->len + n > w->cap) {
		w->err = 1;
		return;
	}
	memcpy(w->p + w->len, src, n);
	w->len += n;
}

static void
put_u(struct wbuf *w, uint64_t v, unsigned bytes)
{
	uint8_t b[8];
	unsigned i;

	for (i = 0; i < bytes; i++)
		b[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
	put(w, b, bytes);
}

/* A string with a 2-byte length; over max is the caller's mistake. */
static void
put_str(struct wbuf *w, const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);

	if (n > max) {
		w->err = 1;
		return;
	}
	put_u(w, n, 2);
	put(w, s, n);
}

int
sp_ob_entry_encode(const struct sp_ob_entry *e, uint8_t **out_r,
    size_t *len_r)
{
	struct wbuf w = { .cap = SP_OB_ENTRY_MAX };
	unsigned i;

	*out_r = NULL;
	if (e->nrcpt == 0 || e->nrcpt > SP_OB_RCPT_MAX)
		return SP_EINVAL;
	if ((w.p = malloc(w.cap)) == NULL)
		return SP_ENOMEM;
	put_u(&w, SP_OB_ENTRY_VERSION, 1);
	put_str(&w, e->account, SP_OB_ADDR_MAX);
	put_str(&w, e->mail_from, SP_OB_ADDR_MAX);
	put(&w, e->blob_id, 32);
	put_u(&w, e->created, 8);
	put_u(&w, e->delay_notified, 1);
	put_u(&w, e->dsn_done, 1);
	put_u(&w, e->nrcpt, 2);
	for (i = 0; i < e->nrcpt; i++) {
		const struct sp_ob_rcpt *r = &e->rcpt[i];

		put_str(&w, r->addr, SP_OB_ADDR_MAX);
		put_u(&w, r->state, 1);
		put_u(&w, r->attempts, 2);
		put_u(&w, r->next, 8);
		put_str(&w, r->reply, SP_OB_REPLY_MAX);
	}
	if (w.err) {
		free(w.p);
		return SP_EINVAL;
	}
	*out_r = w.p;
	*len_r = w.len;
	return 0;
}

struct rbuf {
	const uint8_t *p, *end;
	int err;
};

static uint64_t
get_u(struct rbuf *r, unsigned bytes)
{
	uint64_t v = 0;
	unsigned i;

	if (r->err || (size_t)(r->end - r->p) < bytes) {
		r->err = 1;
		return 0;
	}
	for (i = 0; i < bytes; i++)
		v = v << 8 | *r->p++;
	return v;
}

static void
get(struct rbuf *r, void *dst, size_t n)
{
	if (r->err || (size_t)(r->end - r->p) < n) {
		r->err = 1;
		return;
	}
	memcpy(dst, r->p, n);
	r->p += n;
}

/* A string into dst (max + 1 bytes); NUL bytes inside are refused so a
 * stored address cannot be cut short into another one. */
static void
get_str(struct rbuf *r, char *dst, size_t max)
{
	uint64_t n = get_u(r, 2);

	if (r->err || n > max || (size_t)(r->end - r->p) < n ||
	    memchr(r->p, 0, (size_t)n) != NULL) {
		r->err = 1;
		dst[0] = '\0';
		return;
	}
	memcpy(dst, r->p, (size_t)n);
	dst[n] = '\0';
	r->p += n;
}

int
sp_ob_entry_decode(const uint8_t *buf, size_t len, struct sp_ob_entry *e)
{
	struct rbuf r = { buf, buf + len, 0 };
	unsigned i;

	memset(e->account, 0, sizeof(e->account));
	e->nrcpt = 0;
	if (len > SP_OB_ENTRY_MAX || get_u(&r, 1) != SP_OB_ENTRY_VERSION)
		return SP_EFORMAT;
	get_str(&r, e->account, SP_OB_ADDR_MAX);
	get_str(&r, e->mail_from, SP_OB_ADDR_MAX);
	get(&r, e->blob_id, 32);
	e->created = get_u(&r, 8);
	e->delay_notified = (uint8_t)get_u(&r, 1);
	e->dsn_done = (uint8_t)get_u(&r, 1);
	e->nrcpt = (uint16_t)get_u(&r, 2);
	if (r.err || e->nrcpt == 0 || e->nrcpt > SP_OB_RCPT_MAX) {
		e->nrcpt = 0;
		return SP_EFORMAT;
	}
	for (i = 0; i < e->nrcpt && !r.err; i++) {
		struct sp_ob_rcpt *p = &e->rcpt[i];

		get_str(&r, p->addr, SP_OB_ADDR_MAX);
		p->state = (uint8_t)get_u(&r, 1);
		p->attempts = (uint16_t)get_u(&r, 2);
		p->next = get_u(&r, 8);
		get_str(&r, p->reply, SP_OB_REPLY_MAX);
		if (p->state > SP_OB_FAILED || p->addr[0] == '\0')
			r.err = 1;
	}
	if (r.err || r.p != r.end) {
		e->nrcpt = 0;
		return SP_EFORMAT;
	}
	return 0;
}

int
sp_ob_entry_seal(const struct sp_ob_entry *e, const uint8_t pk[32],
    uint8_t **out_r, size_t *len_r)
{
	uint8_t *plain, *sealed;
	size_t n;
	int rc;

	*out_r = NULL;
	if ((rc = sp_ob_entry_encode(e, &plain, &n)) != 0)
		return rc;
	if ((sealed = malloc(n + crypto_box_SEALBYTES)) == NULL) {
		rc = SP_ENOMEM;
		goto out_free_plain;
	}
	if (crypto_box_seal(sealed, plain, n, pk) != 0) {
		free(sealed);
		rc = SP_ECRYPTO;
		goto out_free_plain;
	}
	*out_r = sealed;
	*len_r = n + crypto_box_SEALBYTES;
out_free_plain:
	sodium_memzero(plain, n);
	free(plain);
	return rc;
}

int
sp_ob_entry_open(const uint8_t *buf, size_t len, const uint8_t pk[32],
    const uint8_t sk[32], struct sp_ob_entry *e)
{
	uint8_t *plain;
	size_t n;
	int rc;

	e->nrcpt = 0;
	if (len < crypto_box_SEALBYTES ||
	    len > SP_OB_ENTRY_MAX + crypto_box_SEALBYTES)
		return SP_EFORMAT;
	n = len - crypto_box_SEALBYTES;
	if ((plain = malloc(n ? n : 1)) == NULL)
		return SP_ENOMEM;
	if (crypto_box_seal_open(plain, buf, len, pk, sk) != 0)
		rc = SP_EAUTH;
	else
		rc = sp_ob_entry_decode(plain, n, e);
	sodium_memzero(plain, n);
	free(plain);
	return rc;
}

uint64_t
sp_ob_entry_due(const struct sp_ob_entry *e)
{
	uint64_t due = 0;
	unsigned i;

	for (i = 0; i < e->nrcpt; i++)
		if (e->rcpt[i].state == SP_OB_PENDING &&
		    (due == 0 || e->rcpt[i].next < due))
			due = e->rcpt[i].next ? e->rcpt[i].next : 1;
	return due;
}

int
sp_ob_pub_read(const char *data_dir, uint8_t pk[32])
{
	char path[4096];
	ssize_t n;
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/gateway.pub", data_dir) >=
	    sizeof(path))
		return EINVAL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT ? ENOENT : EIO;
	n = read(fd, pk, 32);
	close(fd);
	return n == 32 ? 0 : EINVAL;
}
