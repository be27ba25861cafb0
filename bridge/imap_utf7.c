/*
 * Modified UTF-7; see imap_utf7.h.
 */
#include "bridge/imap_utf7.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/* Printable US-ASCII that stands for itself ('&' is the escape). */
static int
direct(uint32_t c)
{
	return c >= 0x20 && c <= 0x7e;
}

static int
is_control(uint32_t c)
{
	return c < 0x20 || (c >= 0x7f && c < 0xa0);
}

/* One UTF-8 character at s (n bytes left): its length, or 0 when it is
 * malformed (overlong, surrogate, above U+10FFFF, cut short). */
static size_t
utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
	uint32_t c = s[0], min;
	size_t len, i;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if ((c & 0xe0) == 0xc0) {
		len = 2, c &= 0x1f, min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3, c &= 0x0f, min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		len = 4, c &= 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

struct outbuf {
	char *p;
	size_t len, cap;
	int full;
};

static void
put(struct outbuf *o, char ch)
{
	if (o->len + 1 >= o->cap) {
		o->full = 1;
		return;
	}
	o->p[o->len++] = ch;
}

static int
finish(struct outbuf *o, int rc, size_t *len_r)
{
	if (rc == 0 && o->full)
		rc = ENOSPC;
	if (o->cap > 0) {
		if (rc != 0)
			o->len = 0;
		o->p[o->len] = 0;
	}
	if (len_r)
		*len_r = rc == 0 ? o->len : 0;
	return rc;
}

int
imap_utf7_encode(const char *utf8, size_t len, char *out, size_t cap,
    size_t *len_r)
{
	const unsigned char *s = (const unsigned char *)utf8;
	struct outbuf o = { out, 0, cap, 0 };
	uint32_t bits = 0, cp;
	int nbits = 0, in_run = 0;
	size_t i = 0, k;

	while (i < len && !o.full) {
		if ((k = utf8_next(s + i, len - i, &cp)) == 0 ||
		    is_control(cp))
			return finish(&o, EINVAL, len_r);
		i += k;
		if (direct(cp)) {
			if (in_run) {
				if (nbits > 0)
					put(&o, b64[(bits << (6 - nbits)) &
					    0x3f]);
				put(&o, '-');
				in_run = 0;
				nbits = 0;
			}
			put(&o, (char)cp);
			if (cp == '&')
				put(&o, '-');
			continue;
		}
		if (!in_run) {
			put(&o, '&');
			in_run = 1;
			bits = 0;
			nbits = 0;
		}
		{
			uint16_t u[2];
			int nu = 1, j;

			if (cp >= 0x10000) {
				cp -= 0x10000;
				u[0] = (uint16_t)(0xd800 + (cp >> 10));
				u[1] = (uint16_t)(0xdc00 + (cp & 0x3ff));
				nu = 2;
			} else {
				u[0] = (uint16_t)cp;
			}
			for (j = 0; j < nu; j++) {
				bits = (bits << 16) | u[j];
				nbits += 16;
				while (nbits >= 6) {
					nbits -= 6;
					put(&o, b64[(bits >> nbits) & 0x3f]);
				}
				bits &= (1u << nbits) - 1;
			}
		}
	}
	if (in_run) {
		if (nbits > 0)
			put(&o, b64[(bits << (6 - nbits)) & 0x3f]);
		put(&o, '-');
	}
	return finish(&o, 0, len_r);
}

static int
b64_value(unsigned char ch)
{
	const char *p;

	if (ch == 0 || (p = strchr(b64, ch)) == NULL)
		return -1;
	return (int)(p - b64);
}

/* Appends code point cp as UTF-8. */
static void
put_utf8(struct outbuf *o, uint32_t cp)
{
	if (cp < 0x80) {
		put(o, (char)cp);
	} else if (cp < 0x800) {
		put(o, (char)(0xc0 | (cp >> 6)));
		put(o, (char)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		put(o, (char)(0xe0 | (cp >> 12)));
		put(o, (char)(0x80 | ((cp >> 6) & 0x3f)));
		put(o, (char)(0x80 | (cp & 0x3f)));
	} else {
		put(o, (char)(0xf0 | (cp >> 18)));
		put(o, (char)(0x80 | ((cp >> 12) & 0x3f)));
		put(o, (char)(0x80 | ((cp >> 6) & 0x3f)));
		put(o, (char)(0x80 | (cp & 0x3f)));
	}
}

/* The base64 run starting after '&' at s[*i]; *i ends after the '-'. */
static int
decode_run(const unsigned char *s, size_t len, size_t *i, struct outbuf *o)
{
	uint32_t bits = 0, hi = 0;
	int nbits = 0, v, units = 0;

	for (; *i < len && s[*i] != '-'; (*i)++) {
		if ((v = b64_value(s[*i])) < 0)
			return EINVAL;
		bits = (bits << 6) | (uint32_t)v;
		nbits += 6;
		if (nbits < 16)
			continue;
		nbits -= 16;
		{
			uint32_t u = (bits >> nbits) & 0xffff;

			bits &= (1u << nbits) - 1;
			units++;
			if (hi) {
				if (u < 0xdc00 || u > 0xdfff)
					return EINVAL;
				put_utf8(o, 0x10000 + ((hi - 0xd800) << 10) +
				    (u - 0xdc00));
				hi = 0;
			} else if (u >= 0xd800 && u <= 0xdbff) {
				hi = u;
			} else if (u >= 0xdc00 && u <= 0xdfff) {
				return EINVAL;
			} else if (direct(u) || is_control(u)) {
				/* Must have been written directly. */
				return EINVAL;
			} else {
				put_utf8(o, u);
			}
		}
	}
	/* Unterminated, a dangling surrogate, more than 5 bits left over
	 * or left-over bits that are not zero: not the encoder's output. */
	if (*i >= len || hi || nbits >= 6 || bits != 0 || units == 0)
		return EINVAL;
	(*i)++;
	return 0;
}

int
imap_utf7_decode(const char *mutf7, size_t len, char *out, size_t cap,
    size_t *len_r)
{
	const unsigned char *s = (const unsigned char *)mutf7;
	struct outbuf o = { out, 0, cap, 0 };
	size_t i = 0;
	int rc, after_run = 0;

	while (i < len && !o.full) {
		if (!direct(s[i]))
			return finish(&o, EINVAL, len_r);
		if (s[i] != '&') {
			put(&o, (char)s[i++]);
			after_run = 0;
			continue;
		}
		i++;
		if (i < len && s[i] == '-') {
			put(&o, '&');
			i++;
			after_run = 0;
			continue;
		}
		/* "&AOQ-&AOQ-" is one run written as two. */
		if (after_run)
			return finish(&o, EINVAL, len_r);
		if ((rc = decode_run(s, len, &i, &o)) != 0)
			return finish(&o, rc, len_r);
		after_run = 1;
	}
	return finish(&o, 0, len_r);
}
