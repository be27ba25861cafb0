/* Response text for IMAP; see imap_out.h. */
#include "bridge/imap_out.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

void
imap_out_init(struct imap_out *o)
{
	memset(o, 0, sizeof(*o));
}

void
imap_out_finish(struct imap_out *o)
{
	if (o->p) {
		sodium_memzero(o->p, o->cap);
		free(o->p);
	}
	memset(o, 0, sizeof(*o));
}

int
imap_out_failed(const struct imap_out *o)
{
	return o->failed;
}

void
imap_out_reset(struct imap_out *o)
{
	if (o->p)
		sodium_memzero(o->p, o->len);
	o->len = 0;
}

static int
reserve(struct imap_out *o, size_t more)
{
	size_t cap = o->cap ? o->cap : 256;
	char *np;

	if (o->failed)
		return -1;
	if (o->len + more + 1 <= o->cap)
		return 0;
	while (cap < o->len + more + 1) {
		if (cap > SIZE_MAX / 2)
			goto fail;
		cap *= 2;
	}
	/* Not realloc: the old block holds mail and must be wiped. */
	if ((np = malloc(cap)) == NULL)
		goto fail;
	if (o->p) {
		memcpy(np, o->p, o->len);
		sodium_memzero(o->p, o->cap);
		free(o->p);
	}
	o->p = np;
	o->cap = cap;
	return 0;
fail:
	o->failed = 1;
	return -1;
}

void
imap_out_add(struct imap_out *o, const void *s, size_t n)
{
	if (reserve(o, n) != 0)
		return;
	if (n)
		memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = 0;
}

void
imap_out_str(struct imap_out *o, const char *s)
{
	imap_out_add(o, s, strlen(s));
}

void
imap_out_printf(struct imap_out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || reserve(o, (size_t)n) != 0)
		return;
	va_start(ap, fmt);
	vsnprintf(o->p + o->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	o->len += (size_t)n;
}

void
imap_out_literal(struct imap_out *o, const void *s, size_t n)
{
	imap_out_printf(o, "{%zu}\r\n", n);
	imap_out_add(o, s, n);
}

void
imap_out_string(struct imap_out *o, const void *s, size_t n)
{
	const unsigned char *b = s;
	size_t i, esc = 0;

	if (n > 512)
		goto literal;
	for (i = 0; i < n; i++) {
		if (b[i] < 0x20 || b[i] >= 0x7f)
			goto literal;
		if (b[i] == '"' || b[i] == '\\')
			esc++;
	}
	if (reserve(o, n + esc + 2) != 0)
		return;
	o->p[o->len++] = '"';
	for (i = 0; i < n; i++) {
		if (b[i] == '"' || b[i] == '\\')
			o->p[o->len++] = '\\';
		o->p[o->len++] = (char)b[i];
	}
	o->p[o->len++] = '"';
	o->p[o->len] = 0;
	return;
literal:
	imap_out_literal(o, s, n);
}

void
imap_out_nstring(struct imap_out *o, const char *s)
{
	if (s == NULL)
		imap_out_str(o, "NIL");
	else
		imap_out_string(o, s, strlen(s));
}

void
imap_out_astring(struct imap_out *o, const char *s)
{
	imap_out_string(o, s, strlen(s));
}
