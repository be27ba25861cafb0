/*
 * OpenPGP mail; see pgpmail.h.
 *
 * The raw bytes are cut by hand (header fields, the signed part of a
 * multipart/signed) because a signature covers exact bytes and the served
 * form keeps the original header exactly; GMime is used for what it does
 * better: Content-Type parameters and transfer decoding of a part.
 */
#include "client-core/pgpmail.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>
#include <sodium.h>

#include "client-core/keys.h"
#include "client-core/pgpkeys.h"

#define FIELD "X-Sealpost-PGP"
#define SERVED_VERSION 1

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;

static void
gmime_start(void)
{
	g_mime_init();
}

/* ---- a growing buffer that never leaves plaintext behind -------------- */

struct buf {
	uint8_t *p;
	size_t len, cap;
	int oom;
};

static void
buf_add(struct buf *b, const void *d, size_t n)
{
	uint8_t *np;
	size_t cap;

	if (b->oom || n == 0)
		return;
	if (n > SIZE_MAX / 2 - b->len) {
		b->oom = 1;
		return;
	}
	if (b->len + n > b->cap) {
		cap = b->cap ? b->cap : 1024;
		while (cap < b->len + n)
			cap *= 2;
		if ((np = malloc(cap)) == NULL) {
			b->oom = 1;
			return;
		}
		if (b->len)
			memcpy(np, b->p, b->len);
		if (b->p) {
			sodium_memzero(b->p, b->cap);
			free(b->p);
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, d, n);
	b->len += n;
}

static void
buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void
buf_wipe(struct buf *b)
{
	if (b->p) {
		sodium_memzero(b->p, b->cap);
		free(b->p);
	}
	memset(b, 0, sizeof(*b));
}

/* Appends d with every bare LF turned into CRLF. */
static void
buf_add_crlf(struct buf *b, const uint8_t *d, size_t n)
{
	size_t i, s = 0;

	for (i = 0; i < n; i++) {
		if (d[i] != '\n' || (i > 0 && d[i - 1] == '\r'))
			continue;
		buf_add(b, d + s, i - s);
		buf_add(b, "\r\n", 2);
		s = i + 1;
	}
	buf_add(b, d + s, n - s);
}

/* ---- header fields ---------------------------------------------------- */

/* Offset just past the line starting at i (past its LF), or len. */
static size_t
line_end(const uint8_t *t, size_t len, size_t i)
{
	const uint8_t *nl = memchr(t + i, '\n', len - i);

	return nl ? (size_t)(nl - t) + 1 : len;
}

/*
 * Splits msg into the header fields [0, *hend_r) and the body
 * [*bstart_r, len).  Returns -1 when the header is over the limit.
 */
static int
hdr_split(const uint8_t *msg, size_t len, size_t *hend_r, size_t *bstart_r)
{
	size_t i = 0, e;

	while (i < len) {
		e = line_end(msg, len, i);
		if (msg[i] == '\n' || (msg[i] == '\r' && i + 1 < len &&
		    msg[i + 1] == '\n')) {
			*hend_r = i;
			*bstart_r = e;
			return 0;
		}
		if (e > SP_PGPMAIL_HDR_MAX)
			return -1;
		i = e;
	}
	*hend_r = *bstart_r = len;
	return len > SP_PGPMAIL_HDR_MAX ? -1 : 0;
}

/*
 * The next field of the header [pos, hend): its bytes [*fs, *fe) (folded
 * lines included) and the length of its name.  0 at the end.
 */
static int
field_next(const uint8_t *h, size_t hend, size_t *pos, size_t *fs,
    size_t *fe, size_t *nlen)
{
	size_t i = *pos, e;
	const uint8_t *colon;

	if (i >= hend)
		return 0;
	e = line_end(h, hend, i);
	while (e < hend && (h[e] == ' ' || h[e] == '\t'))
		e = line_end(h, hend, e);
	colon = memchr(h + i, ':', e - i);
	*fs = i;
	*fe = e;
	*nlen = colon ? (size_t)(colon - (h + i)) : 0;
	*pos = e;
	return 1;
}

static int
name_is(const uint8_t *h, size_t fs, size_t nlen, const char *name)
{
	size_t n = strlen(name);

	/* Trailing blanks before the colon are obsolete syntax, still
	 * seen: treat "Name :" as "Name". */
	while (nlen > n && (h[fs + nlen - 1] == ' ' || h[fs + nlen - 1] ==
	    '\t'))
		nlen--;
	return nlen == n && strncasecmp((const char *)h + fs, name, n) == 0;
}

static int
name_has_prefix(const uint8_t *h, size_t fs, size_t nlen, const char *pre)
{
	size_t n = strlen(pre);

	return nlen >= n && strncasecmp((const char *)h + fs, pre, n) == 0;
}

/* The unfolded, trimmed value of a field, malloc'd and NUL-terminated. */
static char *
field_value(const uint8_t *h, size_t fs, size_t fe, size_t nlen)
{
	size_t i = fs + nlen + 1, o = 0;
	char *v;

	if (nlen == 0 || fs + nlen + 1 > fe)
		return NULL;
	if ((v = malloc(fe - i + 1)) == NULL)
		return NULL;
	for (; i < fe; i++)
		if (h[i] != '\r' && h[i] != '\n')
			v[o++] = (char)h[i];
	v[o] = 0;
	while (o > 0 && (v[o - 1] == ' ' || v[o - 1] == '\t'))
		v[--o] = 0;
	for (i = 0; v[i] == ' ' || v[i] == '\t'; i++)
		;
	memmove(v, v + i, o - i + 1);
	return v;
}

/* The first field called name, unfolded (malloc'd) or NULL. */
static char *
hdr_get(const uint8_t *h, size_t hend, const char *name)
{
	size_t pos = 0, fs, fe, nlen, n = 0;

	while (field_next(h, hend, &pos, &fs, &fe, &nlen) &&
	    n++ < SP_PGPMAIL_FIELDS_MAX)
		if (name_is(h, fs, nlen, name))
			return field_value(h, fs, fe, nlen);
	return NULL;
}

static int
is_content_field(const uint8_t *h, size_t fs, size_t nlen)
{
	return name_has_prefix(h, fs, nlen, "Content-") ||
	    name_is(h, fs, nlen, "MIME-Version");
}

/*
 * Copies the fields of h, without any X-Sealpost-PGP field, and without
 * Content-* / MIME-Version (content = 0) or with only them (content = 1)
 * or all of them (content = -1).
 */
static void
copy_fields(struct buf *b, const uint8_t *h, size_t hend, int content)
{
	size_t pos = 0, fs, fe, nlen, n = 0;

	while (field_next(h, hend, &pos, &fs, &fe, &nlen) &&
	    n++ < SP_PGPMAIL_FIELDS_MAX) {
		if (nlen == 0 || name_is(h, fs, nlen, FIELD))
			continue;
		if (content >= 0 && is_content_field(h, fs, nlen) != content)
			continue;
		buf_add_crlf(b, h + fs, fe - fs);
		if (fe == hend && fe > fs && h[fe - 1] != '\n')
			buf_add(b, "\r\n", 2);
	}
}

/* ---- armor ------------------------------------------------------------ */

/* Does the line at i hold marker and nothing but blanks after it? */
static int
line_is(const uint8_t *t, size_t len, size_t i, const char *marker)
{
	size_t n = strlen(marker);

	if (len - i < n || memcmp(t + i, marker, n) != 0)
		return 0;
	for (i += n; i < len && t[i] != '\n'; i++)
		if (t[i] != ' ' && t[i] != '\t' && t[i] != '\r')
			return 0;
	return 1;
}

enum sp_armor_kind
sp_armor_find(const uint8_t *t, size_t len, size_t *begin_r, size_t *end_r)
{
	static const struct {
		const char *begin, *end;
		enum sp_armor_kind kind;
	} kinds[] = {
		{ "-----BEGIN PGP MESSAGE-----", "-----END PGP MESSAGE-----",
		  SP_ARMOR_MESSAGE },
		{ "-----BEGIN PGP SIGNED MESSAGE-----",
		  "-----END PGP SIGNATURE-----", SP_ARMOR_SIGNED },
	};
	size_t i, j, k;

	*begin_r = *end_r = 0;
	for (i = 0; i < len; i = line_end(t, len, i)) {
		if (t[i] != '-')
			continue;
		for (k = 0; k < 2; k++)
			if (line_is(t, len, i, kinds[k].begin))
				break;
		if (k == 2)
			continue;
		/* The first BEGIN decides: without its END there is no
		 * block, which also keeps this linear. */
		for (j = line_end(t, len, i); j < len; j = line_end(t, len, j))
			if (t[j] == '-' && line_is(t, len, j, kinds[k].end)) {
				*begin_r = i;
				*end_r = line_end(t, len, j);
				return kinds[k].kind;
			}
		return SP_ARMOR_NONE;
	}
	return SP_ARMOR_NONE;
}

/* ---- Autocrypt -------------------------------------------------------- */

void
sp_autocrypt_finish(struct sp_autocrypt *ac)
{
	if (ac == NULL)
		return;
	free(ac->keydata);
	memset(ac, 0, sizeof(*ac));
}

static const char *
skip_ws(const char *s, const char *e)
{
	while (s < e && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n'))
		s++;
	return s;
}

int
sp_autocrypt_parse(const char *value, size_t len, struct sp_autocrypt *ac)
{
	const char *p = value, *e = value + len, *semi, *eq, *ve;
	char tmp[256];
	int have_addr = 0, rc;
	size_t n;

	memset(ac, 0, sizeof(*ac));
	if (len > SP_AUTOCRYPT_MAX)
		return SP_ELIMIT;
	while (p < e) {
		p = skip_ws(p, e);
		if (p == e)
			break;
		if ((semi = memchr(p, ';', (size_t)(e - p))) == NULL)
			semi = e;
		if ((eq = memchr(p, '=', (size_t)(semi - p))) == NULL) {
			rc = SP_EFORMAT;
			goto fail;
		}
		n = (size_t)(eq - p);
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		ve = semi;
		eq = skip_ws(eq + 1, ve);
		while (ve > eq && (ve[-1] == ' ' || ve[-1] == '\t' ||
		    ve[-1] == '\r' || ve[-1] == '\n'))
			ve--;
		if (n == 4 && strncmp(p, "addr", 4) == 0) {
			if (have_addr || (size_t)(ve - eq) >= sizeof(tmp)) {
				rc = SP_EFORMAT;
				goto fail;
			}
			memcpy(tmp, eq, (size_t)(ve - eq));
			tmp[ve - eq] = 0;
			if (sp_keys_address(tmp, ac->addr) != 0) {
				rc = SP_EFORMAT;
				goto fail;
			}
			have_addr = 1;
		} else if (n == 7 && strncmp(p, "keydata", 7) == 0) {
			size_t cap = (size_t)(ve - eq) / 4 * 3 + 3;

			if (ac->keydata || ve == eq) {
				rc = SP_EFORMAT;
				goto fail;
			}
			if (cap > SP_AUTOCRYPT_KEY_MAX + 3 + cap / 50) {
				rc = SP_ELIMIT;
				goto fail;
			}
			if ((ac->keydata = malloc(cap)) == NULL) {
				rc = ENOMEM;
				goto fail;
			}
			if (sodium_base642bin(ac->keydata, cap, eq,
			    (size_t)(ve - eq), " \t\r\n", &ac->keydata_len,
			    NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
			    ac->keydata_len == 0) {
				rc = SP_EFORMAT;
				goto fail;
			}
			if (ac->keydata_len > SP_AUTOCRYPT_KEY_MAX) {
				rc = SP_ELIMIT;
				goto fail;
			}
		} else if (n == 14 && strncmp(p, "prefer-encrypt", 14) == 0) {
			ac->prefer_mutual = ve - eq == 6 &&
			    strncmp(eq, "mutual", 6) == 0;
		} else if (n == 0 || p[0] != '_') {
			/* Unknown critical attribute: the header is not
			 * for us (Autocrypt Level 1, 2.1). */
			rc = SP_EFORMAT;
			goto fail;
		}
		p = semi < e ? semi + 1 : e;
	}
	if (!have_addr || ac->keydata == NULL) {
		rc = SP_EFORMAT;
		goto fail;
	}
	return 0;
fail:
	sp_autocrypt_finish(ac);
	return rc;
}

int
sp_autocrypt_header(const char *addr, const uint8_t *key, size_t len,
    char **out_r)
{
	struct buf b = { 0 };
	char *b64, a[SP_KEYS_ADDR_BYTES];
	size_t n, i, step;

	*out_r = NULL;
	if (sp_keys_address(addr, a) != 0 || len == 0 ||
	    len > SP_AUTOCRYPT_KEY_MAX)
		return SP_EINVAL;
	n = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
	if ((b64 = malloc(n)) == NULL)
		return ENOMEM;
	sodium_bin2base64(b64, n, key, len, sodium_base64_VARIANT_ORIGINAL);
	buf_str(&b, "Autocrypt: addr=");
	buf_str(&b, a);
	buf_str(&b, "; keydata=");
	n = strlen(b64);
	for (i = 0; i < n; i += step) {
		step = n - i < 72 ? n - i : 72;
		buf_str(&b, "\r\n ");
		buf_add(&b, b64 + i, step);
	}
	buf_add(&b, "\r\n", 3); /* with the NUL */
	free(b64);
	if (b.oom) {
		buf_wipe(&b);
		return ENOMEM;
	}
	*out_r = (char *)b.p;
	return 0;
}

/* ---- peek -------------------------------------------------------------- */

void
sp_pgpmail_peek_finish(struct sp_pgpmail_peek *p)
{
	if (p == NULL)
		return;
	free(p->autocrypt);
	memset(p, 0, sizeof(*p));
}

/* The top-level Content-Type; NULL when absent or unreadable. */
static GMimeContentType *
content_type(const uint8_t *msg, size_t hend)
{
	GMimeContentType *ct;
	char *v;

	pthread_once(&gmime_once, gmime_start);
	if ((v = hdr_get(msg, hend, "Content-Type")) == NULL)
		return NULL;
	ct = g_mime_content_type_parse(NULL, v);
	free(v);
	return ct;
}

static int
param_is(GMimeContentType *ct, const char *name, const char *want)
{
	const char *v = g_mime_content_type_get_parameter(ct, name);

	return v && strcasecmp(v, want) == 0;
}

/* The kind from the Content-Type alone; inline needs the body. */
static int
kind_of(GMimeContentType *ct, int *textual)
{
	*textual = ct == NULL || g_mime_content_type_is_type(ct, "text",
	    "plain");
	if (ct == NULL)
		return SP_PGPMAIL_PLAIN;
	if (g_mime_content_type_is_type(ct, "multipart", "encrypted") &&
	    param_is(ct, "protocol", "application/pgp-encrypted"))
		return SP_PGPMAIL_MIME_ENCRYPTED;
	if (g_mime_content_type_is_type(ct, "multipart", "signed") &&
	    param_is(ct, "protocol", "application/pgp-signature"))
		return SP_PGPMAIL_MIME_SIGNED;
	return SP_PGPMAIL_PLAIN;
}

int
sp_pgpmail_peek(const uint8_t *msg, size_t len, struct sp_pgpmail_peek *p)
{
	GMimeContentType *ct;
	size_t hend, bstart, pos = 0, fs, fe, nlen, n = 0, b, e;
	char *v;
	int textual;

	memset(p, 0, sizeof(*p));
	if (len > SP_PGPMAIL_MSG_MAX || hdr_split(msg, len, &hend,
	    &bstart) != 0)
		return 0;
	while (field_next(msg, hend, &pos, &fs, &fe, &nlen) &&
	    n++ < SP_PGPMAIL_FIELDS_MAX)
		if (name_is(msg, fs, nlen, FIELD))
			p->has_outcome_field = 1;
	if ((v = hdr_get(msg, hend, "From")) != NULL) {
		if (sp_keys_address(v, p->from) != 0)
			p->from[0] = 0;
		free(v);
	}
	ct = content_type(msg, hend);
	p->kind = kind_of(ct, &textual);
	if (ct)
		g_object_unref(ct);
	/* Transfer-encoded text is decoded before decryption, so this scan
	 * of the raw body only misses armor hidden by base64: rare, and
	 * such mail is then served as it is. */
	if (textual) {
		switch (sp_armor_find(msg + bstart, len - bstart, &b, &e)) {
		case SP_ARMOR_MESSAGE:
			p->kind = SP_PGPMAIL_INLINE_ENCRYPTED;
			break;
		case SP_ARMOR_SIGNED:
			p->kind = SP_PGPMAIL_INLINE_SIGNED;
			break;
		default:
			break;
		}
	}
	if (p->from[0] && (v = hdr_get(msg, hend, "Autocrypt")) != NULL) {
		struct sp_autocrypt ac;

		/* Only a header for the sender's own address counts. */
		if (sp_autocrypt_parse(v, strlen(v), &ac) == 0 &&
		    strcmp(ac.addr, p->from) == 0)
			p->autocrypt = v;
		else
			free(v);
		sp_autocrypt_finish(&ac);
	}
	return 0;
}

/* ---- receiving --------------------------------------------------------- */

/* The decoded content of a GMime part, malloc'd (ciphertext or signed
 * text, not secret). */
static int
part_bytes(GMimeObject *o, uint8_t **out_r, size_t *len_r)
{
	GMimeDataWrapper *w;
	GMimeStream *s;
	GByteArray *ba;
	int rc = SP_EFORMAT;

	*out_r = NULL;
	*len_r = 0;
	if (!GMIME_IS_PART(o) ||
	    (w = g_mime_part_get_content(GMIME_PART(o))) == NULL)
		return SP_EFORMAT;
	if ((s = g_mime_stream_mem_new()) == NULL)
		return ENOMEM;
	if (g_mime_data_wrapper_write_to_stream(w, s) >= 0) {
		ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(s));
		if ((*out_r = malloc(ba->len ? ba->len : 1)) == NULL) {
			rc = ENOMEM;
		} else {
			memcpy(*out_r, ba->data, ba->len);
			*len_r = ba->len;
			rc = 0;
		}
		sodium_memzero(ba->data, ba->len);
	}
	g_object_unref(s);
	return rc;
}

static GMimeMessage *
parse_message(const uint8_t *msg, size_t len)
{
	GMimeStream *s;
	GMimeParser *pa;
	GMimeMessage *m;

	pthread_once(&gmime_once, gmime_start);
	s = g_mime_stream_mem_new_with_buffer((const char *)msg, len);
	pa = g_mime_parser_new_with_stream(s);
	m = g_mime_parser_construct_message(pa, NULL);
	g_object_unref(pa);
	g_object_unref(s);
	return m;
}

/* Part n of the top-level multipart, decoded. */
static int
mime_part(const uint8_t *msg, size_t len, int n, uint8_t **out_r,
    size_t *len_r)
{
	GMimeMessage *m;
	GMimeObject *top;
	int rc = SP_EFORMAT;

	*out_r = NULL;
	*len_r = 0;
	if ((m = parse_message(msg, len)) == NULL)
		return SP_EFORMAT;
	top = g_mime_message_get_mime_part(m);
	if (top && GMIME_IS_MULTIPART(top) &&
	    g_mime_multipart_get_count(GMIME_MULTIPART(top)) > n)
		rc = part_bytes(g_mime_multipart_get_part(GMIME_MULTIPART(top),
		    n), out_r, len_r);
	g_object_unref(m);
	return rc;
}

static const char *
sig_word(int status)
{
	switch (status) {
	case SP_PGP_SIG_GOOD: return "verified";
	case SP_PGP_SIG_BAD: return "bad";
	case SP_PGP_SIG_UNKNOWN_KEY: return "unknown-key";
	case SP_PGP_SIG_KEY_REVOKED: return "key-revoked";
	case SP_PGP_SIG_EXPIRED: return "key-expired";
	default: return "none";
	}
}

static const char *
kind_word(int kind)
{
	return kind == SP_PGPMAIL_INLINE_ENCRYPTED ||
	    kind == SP_PGPMAIL_INLINE_SIGNED ? "inline" : "pgp-mime";
}

/* The X-Sealpost-PGP value for res. */
static void
outcome(struct sp_pgpmail_result *res, const char *addr)
{
	char *f = res->field;
	size_t cap = sizeof(res->field), n;
	const struct sp_pgp_sig *s = &res->sig;

	if (res->kind == SP_PGPMAIL_PLAIN) {
		snprintf(f, cap, "not-encrypted; signature=none");
		return;
	}
	if (res->decrypt_error) {
		snprintf(f, cap, "decrypt-failed; format=%s; reason=\"%s\"",
		    kind_word(res->kind), sp_strerror(res->decrypt_error));
		return;
	}
	n = (size_t)snprintf(f, cap, "%s; format=%s; signature=%s",
	    res->decrypted ? "decrypted" : "signed", kind_word(res->kind),
	    sig_word(s->status));
	if (s->status != SP_PGP_SIG_NONE && n < cap)
		n += (size_t)snprintf(f + n, cap - n, "; signer=%s",
		    s->primary_fpr[0] ? s->primary_fpr : s->fpr);
	if (s->status == SP_PGP_SIG_GOOD && addr && addr[0] && n < cap)
		(void)snprintf(f + n, cap - n, "; addr=%s", addr);
}

/* Decrypts; a bad signature still yields the content (decrypted a second
 * time without keys to check against), with the verdict kept. */
static int
decrypt(sp_pgp *pgp, const uint8_t *seckey, size_t seckey_len,
    const struct sp_pgp_buf *signers, size_t nsigners, const uint8_t *ct,
    size_t ct_len, uint8_t **plain_r, size_t *plain_len_r,
    struct sp_pgpmail_result *res)
{
	struct sp_pgp_sig again;
	int rc;

	if (seckey == NULL)
		return res->decrypt_error = SP_ENOKEY, 0;
	rc = sp_pgp_decrypt(pgp, seckey, seckey_len, signers, nsigners, ct,
	    ct_len, plain_r, plain_len_r, &res->sig);
	if (rc == SP_ESIG)
		rc = sp_pgp_decrypt(pgp, seckey, seckey_len, NULL, 0, ct,
		    ct_len, plain_r, plain_len_r, &again);
	if (rc == ENOMEM)
		return rc;
	if (rc != 0) {
		res->decrypt_error = rc;
		return 0;
	}
	res->decrypted = 1;
	return 0;
}

/* The decrypted MIME entity of a PGP/MIME message: its Content-* fields
 * (others, such as protected headers, are not promoted) and body. */
static void
add_entity(struct buf *b, const uint8_t *p, size_t n)
{
	size_t hend, bstart, i = 0;

	/* Does it start with a header field at all? */
	while (i < n && i < 80 && p[i] != ':' && p[i] > ' ' && p[i] < 127)
		i++;
	if (i == 0 || i >= n || p[i] != ':' || hdr_split(p, n, &hend,
	    &bstart) != 0) {
		buf_str(b, "Content-Type: text/plain; charset=utf-8\r\n\r\n");
		buf_add_crlf(b, p, n);
		return;
	}
	copy_fields(b, p, hend, 1);
	buf_str(b, "\r\n");
	buf_add_crlf(b, p + bstart, n - bstart);
}

/* The signed entity of a multipart/signed message, as raw bytes: between
 * the first delimiter line and the line break before the next. */
static int
signed_range(const uint8_t *msg, size_t len, size_t bstart,
    const char *boundary, size_t *s_r, size_t *e_r)
{
	char delim[80];
	size_t dl, i, start = 0;
	int found = 0;

	if (strlen(boundary) > 70)
		return SP_EFORMAT;
	dl = (size_t)snprintf(delim, sizeof(delim), "--%s", boundary);
	for (i = bstart; i < len; i = line_end(msg, len, i)) {
		if (len - i < dl || memcmp(msg + i, delim, dl) != 0)
			continue;
		if (!found) {
			start = line_end(msg, len, i);
			found = 1;
			continue;
		}
		*s_r = start;
		*e_r = i;
		if (*e_r > start && msg[*e_r - 1] == '\n')
			(*e_r)--;
		if (*e_r > start && msg[*e_r - 1] == '\r')
			(*e_r)--;
		return 0;
	}
	return SP_EFORMAT;
}

static int
open_mime_signed(sp_pgp *pgp, const struct sp_pgp_buf *signers,
    size_t nsigners, const uint8_t *msg, size_t len, size_t bstart,
    struct sp_pgpmail_result *res)
{
	GMimeContentType *ct;
	struct buf data = { 0 };
	uint8_t *sig = NULL;
	size_t sig_len, s, e, hend, bs;
	int rc;

	if (hdr_split(msg, len, &hend, &bs) != 0 ||
	    (ct = content_type(msg, hend)) == NULL)
		return SP_EFORMAT;
	rc = g_mime_content_type_get_parameter(ct, "boundary") ?
	    signed_range(msg, len, bstart, g_mime_content_type_get_parameter(
	    ct, "boundary"), &s, &e) : SP_EFORMAT;
	g_object_unref(ct);
	if (rc != 0 || (rc = mime_part(msg, len, 1, &sig, &sig_len)) != 0)
		return rc;
	/* RFC 3156 5: the signature is over the canonical (CRLF) form. */
	buf_add_crlf(&data, msg + s, e - s);
	if (data.oom) {
		rc = ENOMEM;
		goto out;
	}
	rc = sp_pgp_verify(pgp, signers, nsigners, sig, sig_len, data.p,
	    data.len, NULL, NULL, &res->sig);
	if (rc == SP_ESIG)
		rc = 0; /* res->sig says BAD */
	else if (rc != 0 && rc != ENOMEM) {
		res->decrypt_error = rc;
		rc = 0;
	}
out:
	buf_wipe(&data);
	free(sig);
	return rc;
}

/* Inline: the text/plain body, transfer-decoded. */
static int
inline_text(const uint8_t *msg, size_t len, uint8_t **out_r, size_t *len_r)
{
	GMimeMessage *m;
	GMimeObject *top;
	int rc = SP_EFORMAT;

	if ((m = parse_message(msg, len)) == NULL)
		return SP_EFORMAT;
	if ((top = g_mime_message_get_mime_part(m)) != NULL)
		rc = part_bytes(top, out_r, len_r);
	g_object_unref(m);
	return rc;
}

static int
open_inline(sp_pgp *pgp, const uint8_t *seckey, size_t seckey_len,
    const struct sp_pgp_buf *signers, size_t nsigners, const uint8_t *msg,
    size_t len, struct buf *body, struct sp_pgpmail_result *res)
{
	uint8_t *text = NULL, *plain = NULL;
	size_t tlen = 0, plen = 0, b, e;
	enum sp_armor_kind k;
	int rc;

	if ((rc = inline_text(msg, len, &text, &tlen)) != 0)
		return rc;
	k = sp_armor_find(text, tlen, &b, &e);
	if (k == SP_ARMOR_MESSAGE) {
		res->kind = SP_PGPMAIL_INLINE_ENCRYPTED;
		rc = decrypt(pgp, seckey, seckey_len, signers, nsigners,
		    text + b, e - b, &plain, &plen, res);
	} else if (k == SP_ARMOR_SIGNED) {
		res->kind = SP_PGPMAIL_INLINE_SIGNED;
		rc = sp_pgp_verify(pgp, signers, nsigners, text + b, e - b,
		    NULL, 0, &plain, &plen, &res->sig);
		if (rc == SP_ESIG || (rc != 0 && rc != ENOMEM)) {
			if (rc != SP_ESIG)
				res->decrypt_error = rc;
			rc = 0;
		}
	} else {
		res->decrypt_error = SP_EFORMAT;
	}
	if (rc == 0 && plain && !res->decrypt_error) {
		buf_add_crlf(body, text, b);
		buf_add_crlf(body, plain, plen);
		if (plen && plain[plen - 1] != '\n')
			buf_str(body, "\r\n");
		buf_add_crlf(body, text + e, tlen - e);
	}
	if (plain) {
		sodium_memzero(plain, plen);
		free(plain);
	}
	sodium_memzero(text, tlen);
	free(text);
	return rc;
}

int
sp_pgpmail_open(sp_pgp *pgp, const uint8_t *seckey, size_t seckey_len,
    const struct sp_pgp_buf *signers, size_t nsigners, const char *addr,
    const uint8_t *msg, size_t len, uint8_t **out_r, size_t *out_len_r,
    struct sp_pgpmail_result *res)
{
	struct sp_pgpmail_peek pk;
	struct buf out = { 0 }, body = { 0 };
	uint8_t *ct = NULL, *plain = NULL;
	size_t ct_len = 0, plen = 0, hend, bstart;
	int rc = 0, replace = 0;

	*out_r = NULL;
	*out_len_r = 0;
	memset(res, 0, sizeof(*res));
	if ((rc = sp_pgpmail_peek(msg, len, &pk)) != 0)
		return rc;
	res->kind = pk.kind;
	if ((pk.kind == SP_PGPMAIL_PLAIN && !pk.has_outcome_field) ||
	    hdr_split(msg, len, &hend, &bstart) != 0)
		goto out;
	switch (pk.kind) {
	case SP_PGPMAIL_MIME_ENCRYPTED:
		if ((rc = mime_part(msg, len, 1, &ct, &ct_len)) != 0) {
			res->decrypt_error = rc;
			rc = 0;
			break;
		}
		rc = decrypt(pgp, seckey, seckey_len, signers, nsigners, ct,
		    ct_len, &plain, &plen, res);
		if (rc == 0 && res->decrypted) {
			add_entity(&body, plain, plen);
			replace = 1;
		}
		break;
	case SP_PGPMAIL_MIME_SIGNED:
		rc = open_mime_signed(pgp, signers, nsigners, msg, len,
		    bstart, res);
		if (rc == SP_EFORMAT) {
			res->decrypt_error = rc;
			rc = 0;
		}
		break;
	case SP_PGPMAIL_INLINE_ENCRYPTED:
	case SP_PGPMAIL_INLINE_SIGNED:
		rc = open_inline(pgp, seckey, seckey_len, signers, nsigners,
		    msg, len, &body, res);
		if (rc == 0 && body.len)
			replace = 2;
		break;
	default:
		break;
	}
	if (rc != 0)
		goto out;
	outcome(res, addr);
	/* The outcome first, so no client can mistake another field (or a
	 * forged one further down, which copy_fields drops) for it. */
	buf_str(&out, FIELD ": ");
	buf_str(&out, res->field);
	buf_str(&out, "\r\n");
	if (replace == 1) {
		copy_fields(&out, msg, hend, 0);
		buf_str(&out, "MIME-Version: 1.0\r\n");
		buf_add(&out, body.p, body.len);
	} else if (replace == 2) {
		copy_fields(&out, msg, hend, 0);
		buf_str(&out, "MIME-Version: 1.0\r\nContent-Type: text/plain; "
		    "charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n");
		buf_add(&out, body.p, body.len);
	} else {
		copy_fields(&out, msg, hend, -1);
		buf_str(&out, "\r\n");
		buf_add(&out, msg + bstart, len - bstart);
	}
	if (out.oom) {
		rc = ENOMEM;
		goto out;
	}
	*out_r = out.p;
	*out_len_r = out.len;
	memset(&out, 0, sizeof(out));
out:
	buf_wipe(&out);
	buf_wipe(&body);
	if (plain) {
		sodium_memzero(plain, plen);
		free(plain);
	}
	free(ct);
	sp_pgpmail_peek_finish(&pk);
	return rc;
}

/* ---- the served form, cached ------------------------------------------ */

/* SP_CACHE_T_PGPSERVED: id u64 BE -> version u8 | gen u64 BE | replaced u8
 * | served bytes (when replaced). */
static void
id_key(uint64_t id, uint8_t k[8])
{
	int i;

	for (i = 7; i >= 0; i--, id >>= 8)
		k[i] = (uint8_t)id;
}

static uint64_t
get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static int
served_cached(sp_cache *cache, uint64_t id, uint64_t gen, uint8_t **out_r,
    size_t *len_r)
{
	uint8_t k[8], *v = NULL;
	size_t vlen = 0;
	int rc;

	id_key(id, k);
	if (sp_cache_get(cache, SP_CACHE_T_PGPSERVED, k, 8, &v, &vlen) != 0)
		return ENOENT;
	rc = ENOENT;
	if (vlen >= 10 && v[0] == SERVED_VERSION && get_u64(v + 1) == gen) {
		rc = 0;
		if (v[9] && vlen > 10) {
			memmove(v, v + 10, vlen - 10);
			*out_r = v;
			*len_r = vlen - 10;
			return 0;
		}
	}
	sodium_memzero(v, vlen);
	free(v);
	return rc;
}

static int
served_store(sp_cache *cache, uint64_t id, uint64_t gen, const uint8_t *d,
    size_t len)
{
	struct buf b = { 0 };
	uint8_t k[8], h[10];
	int i, rc;

	id_key(id, k);
	h[0] = SERVED_VERSION;
	for (i = 0; i < 8; i++)
		h[1 + i] = (uint8_t)(gen >> (56 - 8 * i));
	h[9] = d != NULL;
	buf_add(&b, h, sizeof(h));
	if (d)
		buf_add(&b, d, len);
	rc = b.oom ? ENOMEM : sp_cache_put(cache, SP_CACHE_T_PGPSERVED, k, 8,
	    b.p, b.len);
	buf_wipe(&b);
	return rc;
}

int
sp_pgpmail_served(sp_cache *cache, const sp_keyset *ks, uint64_t id,
    const uint8_t *body, size_t len, uint8_t **out_r, size_t *out_len_r,
    struct sp_pgpmail_result *res_r)
{
	struct sp_pgpmail_result res;
	struct sp_pgpmail_peek pk;
	struct sp_pgpkeys_pin pin;
	struct sp_pgp_buf signer;
	const uint8_t *sec;
	size_t sec_len = 0;
	sp_pgp *pgp = NULL;
	uint64_t gen;
	int rc, have_pin = 0;

	*out_r = NULL;
	*out_len_r = 0;
	memset(&pin, 0, sizeof(pin));
	if (res_r)
		memset(res_r, 0, sizeof(*res_r));
	if ((rc = sp_pgpmail_peek(body, len, &pk)) != 0)
		return rc;
	if (pk.kind == SP_PGPMAIL_PLAIN && !pk.has_outcome_field &&
	    pk.autocrypt == NULL)
		goto out;
	gen = sp_pgpkeys_gen(cache);
	if (res_r == NULL && served_cached(cache, id, gen, out_r,
	    out_len_r) == 0)
		goto out;
	if ((rc = sp_pgp_create(&pgp)) != 0)
		goto out;
	if (pk.autocrypt) {
		struct sp_autocrypt ac;

		if (sp_autocrypt_parse(pk.autocrypt, strlen(pk.autocrypt),
		    &ac) == 0) {
			/* A changed key waits for the user; errors leave
			 * the message readable. */
			(void)sp_pgpkeys_learn(cache, pgp, ac.addr, ac.keydata,
			    ac.keydata_len, SP_PGPKEYS_SRC_AUTOCRYPT, NULL,
			    NULL, 0);
			sp_autocrypt_finish(&ac);
		}
		gen = sp_pgpkeys_gen(cache);
	}
	if (pk.from[0] && sp_pgpkeys_get(cache, pk.from, &pin) == 0)
		have_pin = 1;
	signer.data = have_pin ? pin.key : NULL;
	signer.len = have_pin ? pin.key_len : 0;
	sec = sp_keyset_pgp(ks, &sec_len);
	rc = sp_pgpmail_open(pgp, sec, sec_len, have_pin ? &signer : NULL,
	    have_pin ? 1 : 0, pk.from, body, len, out_r, out_len_r, &res);
	if (rc != 0)
		goto out;
	if (res_r)
		*res_r = res;
	/* A failed cache write costs only a later decryption. */
	(void)served_store(cache, id, gen, *out_r, *out_len_r);
out:
	(void)sp_pgp_destroy(pgp);
	sp_pgpkeys_pin_finish(&pin);
	sp_pgpmail_peek_finish(&pk);
	return rc;
}

/* ---- sending ----------------------------------------------------------- */

int
sp_pgpmail_encrypt(sp_pgp *pgp, const uint8_t *msg, size_t len,
    const struct sp_pgp_buf *rcpts, size_t nrcpts,
    const uint8_t *signer_seckey, size_t signer_seckey_len,
    const char *autocrypt, uint8_t **out_r, size_t *out_len_r)
{
	struct buf inner = { 0 }, out = { 0 };
	uint8_t *ct = NULL, rnd[16];
	size_t ct_len = 0, hend, bstart;
	char boundary[64], *cty;
	int rc;

	*out_r = NULL;
	*out_len_r = 0;
	if (len > SP_PGPMAIL_MSG_MAX || hdr_split(msg, len, &hend,
	    &bstart) != 0)
		return SP_ELIMIT;
	cty = hdr_get(msg, hend, "Content-Type");
	copy_fields(&inner, msg, hend, 1);
	if (cty == NULL) /* RFC 2045's default, said explicitly */
		buf_str(&inner, "Content-Type: text/plain; charset=utf-8\r\n");
	free(cty);
	buf_str(&inner, "\r\n");
	buf_add_crlf(&inner, msg + bstart, len - bstart);
	if (inner.oom) {
		rc = ENOMEM;
		goto out;
	}
	if ((rc = sp_pgp_encrypt(pgp, rcpts, nrcpts, signer_seckey,
	    signer_seckey_len, inner.p, inner.len, SP_PGP_ARMOR, &ct,
	    &ct_len)) != 0)
		goto out;
	randombytes_buf(rnd, sizeof(rnd));
	memcpy(boundary, "sp-pgp-", 7);
	sodium_bin2hex(boundary + 7, sizeof(boundary) - 7, rnd, sizeof(rnd));
	copy_fields(&out, msg, hend, 0);
	if (autocrypt)
		buf_str(&out, autocrypt);
	buf_str(&out, "MIME-Version: 1.0\r\nContent-Type: multipart/encrypted;"
	    " protocol=\"application/pgp-encrypted\";\r\n boundary=\"");
	buf_str(&out, boundary);
	buf_str(&out, "\"\r\n\r\nThis is an OpenPGP/MIME encrypted message "
	    "(RFC 4880 and 3156)\r\n--");
	buf_str(&out, boundary);
	buf_str(&out, "\r\nContent-Type: application/pgp-encrypted\r\n"
	    "Content-Description: PGP/MIME version identification\r\n\r\n"
	    "Version: 1\r\n\r\n--");
	buf_str(&out, boundary);
	buf_str(&out, "\r\nContent-Type: application/octet-stream; "
	    "name=\"encrypted.asc\"\r\nContent-Description: OpenPGP "
	    "encrypted message\r\nContent-Disposition: inline; "
	    "filename=\"encrypted.asc\"\r\n\r\n");
	buf_add_crlf(&out, ct, ct_len);
	buf_str(&out, "\r\n--");
	buf_str(&out, boundary);
	buf_str(&out, "--\r\n");
	if (out.oom) {
		rc = ENOMEM;
		goto out;
	}
	*out_r = out.p;
	*out_len_r = out.len;
	memset(&out, 0, sizeof(out));
out:
	buf_wipe(&inner);
	buf_wipe(&out);
	free(ct);
	return rc;
}
