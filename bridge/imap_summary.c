/*
 * Per-message IMAP summaries in the encrypted cache; see imap_summary.h.
 *
 * The strings are the exact text imap_fetch.c writes, rendered once: a
 * FETCH of them is then a cache read (one LMDB lookup and one
 * XChaCha20-Poly1305 open of a few hundred bytes) instead of a body
 * decryption and a GMime parse.  Rejected: a parsed structure stored as
 * a tree (smaller for huge MIME trees, but every FETCH would render it
 * again, and the rendering is where GMime's time goes).
 */
#include "bridge/imap_summary.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/error.h"

#define HEAD_BYTES (1 + 1 + 8 + 8)

static void
put_be64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t
get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void
put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t
get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* Takes the rendered text out of o into *s_r (NUL-terminated). */
static int
take(struct imap_out *o, char **s_r, size_t *len_r)
{
	if (imap_out_failed(o)) {
		imap_out_finish(o);
		return ENOMEM;
	}
	if (o->p == NULL) {
		/* nothing written: still a string */
		if ((*s_r = calloc(1, 1)) == NULL)
			return ENOMEM;
		*len_r = 0;
		return 0;
	}
	*s_r = o->p;            /* malloc'd and NUL-terminated */
	*len_r = o->len;
	return 0;
}

int
imap_summary_compute(imap_msg *m, uint8_t what, uint64_t gen,
    struct imap_summary *s)
{
	struct imap_out o;
	size_t hlen = imap_msg_header_len(m);
	int rc;

	memset(s, 0, sizeof(*s));
	s->what = what & (IMAP_SUMMARY_STORED | IMAP_SUMMARY_SERVED);
	s->gen = gen;
	s->size = imap_msg_size(m);
	imap_out_init(&o);
	imap_msg_envelope(m, &o);
	if ((rc = take(&o, &s->envelope, &s->envelope_len)) != 0)
		goto fail;
	imap_out_init(&o);
	imap_msg_bodystructure(m, 1, &o);
	if ((rc = take(&o, &s->bodystructure, &s->bodystructure_len)) != 0)
		goto fail;
	imap_out_init(&o);
	imap_msg_bodystructure(m, 0, &o);
	if ((rc = take(&o, &s->body, &s->body_len)) != 0)
		goto fail;
	if (hlen > IMAP_SUMMARY_HEADER_MAX) {
		s->what |= IMAP_SUMMARY_NOHEADER;
	} else {
		if ((s->header = malloc(hlen + 1)) == NULL) {
			rc = ENOMEM;
			goto fail;
		}
		memcpy(s->header, imap_msg_data(m), hlen);
		s->header[hlen] = 0;
		s->header_len = hlen;
	}
	if (s->envelope_len > IMAP_SUMMARY_FIELD_MAX ||
	    s->bodystructure_len > IMAP_SUMMARY_FIELD_MAX ||
	    s->body_len > IMAP_SUMMARY_FIELD_MAX) {
		/* a hostile MIME tree: not kept, FETCH renders it each time */
		rc = SP_ELIMIT;
		goto fail;
	}
	return 0;
fail:
	imap_summary_finish(s);
	return rc;
}

static void
wipe_free(void *p, size_t n)
{
	if (p == NULL)
		return;
	sodium_memzero(p, n);
	free(p);
}

void
imap_summary_finish(struct imap_summary *s)
{
	wipe_free(s->envelope, s->envelope_len);
	wipe_free(s->bodystructure, s->bodystructure_len);
	wipe_free(s->body, s->body_len);
	wipe_free(s->header, s->header_len);
	memset(s, 0, sizeof(*s));
}

int
imap_summary_valid(const struct imap_summary *s, int want_stored,
    uint64_t gen)
{
	if (want_stored)
		return (s->what & IMAP_SUMMARY_STORED) != 0;
	if (!(s->what & IMAP_SUMMARY_SERVED))
		return 0;
	return (s->what & IMAP_SUMMARY_STORED) != 0 || s->gen == gen;
}

int
imap_summary_encode(const struct imap_summary *s, uint8_t **val_r,
    size_t *len_r)
{
	const void *f[4] = { s->envelope, s->bodystructure, s->body,
	    s->header };
	size_t fl[4] = { s->envelope_len, s->bodystructure_len, s->body_len,
	    s->header_len };
	size_t n = HEAD_BYTES, i;
	uint8_t *v, *p;

	for (i = 0; i < 4; i++) {
		if (fl[i] > IMAP_SUMMARY_FIELD_MAX)
			return SP_ELIMIT;
		n += 4 + fl[i];
	}
	if ((v = malloc(n)) == NULL)
		return ENOMEM;
	v[0] = IMAP_SUMMARY_VERSION;
	v[1] = s->what;
	put_be64(v + 2, s->gen);
	put_be64(v + 10, s->size);
	p = v + HEAD_BYTES;
	for (i = 0; i < 4; i++) {
		put_be32(p, (uint32_t)fl[i]);
		if (fl[i])
			memcpy(p + 4, f[i], fl[i]);
		p += 4 + fl[i];
	}
	*val_r = v;
	*len_r = n;
	return 0;
}

/* One "len u32 | bytes" field into a NUL-terminated malloc'd copy. */
static int
field(const uint8_t *val, size_t len, size_t *off, char **s_r,
    size_t *len_r)
{
	size_t n;

	if (len - *off < 4)
		return SP_EFORMAT;
	n = get_be32(val + *off);
	*off += 4;
	if (n > IMAP_SUMMARY_FIELD_MAX || n > len - *off)
		return SP_EFORMAT;
	if ((*s_r = malloc(n + 1)) == NULL)
		return ENOMEM;
	memcpy(*s_r, val + *off, n);
	(*s_r)[n] = 0;
	*len_r = n;
	*off += n;
	return 0;
}

int
imap_summary_decode(const uint8_t *val, size_t len, struct imap_summary *s)
{
	size_t off = HEAD_BYTES;
	char *h = NULL;
	int rc;

	memset(s, 0, sizeof(*s));
	if (len < HEAD_BYTES)
		return SP_EFORMAT;
	if (val[0] != IMAP_SUMMARY_VERSION)
		return SP_EVERSION;
	if (val[1] & ~(IMAP_SUMMARY_STORED | IMAP_SUMMARY_SERVED |
	    IMAP_SUMMARY_NOHEADER))
		return SP_EFORMAT;
	s->what = val[1];
	s->gen = get_be64(val + 2);
	s->size = get_be64(val + 10);
	if ((rc = field(val, len, &off, &s->envelope, &s->envelope_len)) ||
	    (rc = field(val, len, &off, &s->bodystructure,
	    &s->bodystructure_len)) ||
	    (rc = field(val, len, &off, &s->body, &s->body_len)) ||
	    (rc = field(val, len, &off, &h, &s->header_len)))
		goto fail;
	s->header = (uint8_t *)h;
	if (off != len || s->header_len > IMAP_SUMMARY_HEADER_MAX ||
	    ((s->what & IMAP_SUMMARY_NOHEADER) && s->header_len != 0) ||
	    s->header_len > s->size) {
		rc = SP_EFORMAT;
		goto fail;
	}
	if (s->what & IMAP_SUMMARY_NOHEADER) {
		wipe_free(s->header, 0);
		s->header = NULL;
	}
	return 0;
fail:
	imap_summary_finish(s);
	return rc;
}

int
imap_summary_get(sp_cache *cache, uint64_t id, struct imap_summary *s)
{
	uint8_t key[8], *v = NULL;
	size_t vlen = 0;
	int rc;

	memset(s, 0, sizeof(*s));
	put_be64(key, id);
	if ((rc = sp_cache_get(cache, SP_CACHE_T_IMAPSUM, key, sizeof(key),
	    &v, &vlen)) != 0)
		return rc;
	rc = imap_summary_decode(v, vlen, s);
	wipe_free(v, vlen);
	return rc;
}

int
imap_summary_put(sp_cache *cache, uint64_t id, const struct imap_summary *s)
{
	uint8_t key[8], *v = NULL;
	size_t vlen = 0;
	int rc;

	if ((rc = imap_summary_encode(s, &v, &vlen)) != 0)
		return rc;
	put_be64(key, id);
	rc = sp_cache_put(cache, SP_CACHE_T_IMAPSUM, key, sizeof(key), v,
	    vlen);
	wipe_free(v, vlen);
	return rc;
}

int
imap_summary_del(sp_cache *cache, uint64_t id)
{
	uint8_t key[8];

	put_be64(key, id);
	return sp_cache_del(cache, SP_CACHE_T_IMAPSUM, key, sizeof(key));
}
