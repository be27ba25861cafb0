/*
 * SMTP submission input; see smtp_parse.h.
 *
 * Why a byte state machine for DATA instead of searching for "\r\n.\r\n":
 * dot-unstuffing, bare-LF fix-up and the end marker all depend on where a
 * line starts, and a read can end anywhere, also between the CR and the
 * LF of the marker; the state carries that across reads.
 */
#include "bridge/smtp_parse.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "crypto/error.h"

enum dstate { D_BOL, D_DOT, D_DOT_CR, D_MID, D_CR };

struct smtp_parser {
	int data;                /* 1: reading a message */
	/* line mode */
	char line[SMTP_LINE_MAX + 1];
	size_t line_len;
	int too_long, has_nul;
	/* data mode */
	enum dstate ds;
	size_t max;
	uint8_t *buf;
	size_t len, cap;
	unsigned flags;
};

int
smtp_parser_create(smtp_parser **p_r)
{
	if ((*p_r = calloc(1, sizeof(**p_r))) == NULL)
		return SP_ENOMEM;
	return 0;
}

static void
drop_data(smtp_parser *p)
{
	if (p->buf) {
		sodium_memzero(p->buf, p->cap);
		free(p->buf);
	}
	p->buf = NULL;
	p->len = p->cap = 0;
}

void
smtp_parser_destroy(smtp_parser *p)
{
	if (p == NULL)
		return;
	drop_data(p);
	sodium_memzero(p, sizeof(*p));
	free(p);
}

void
smtp_parser_reset(smtp_parser *p)
{
	sodium_memzero(p->line, sizeof(p->line));
	p->line_len = 0;
	p->too_long = p->has_nul = 0;
	drop_data(p);
	p->data = 0;
}

void
smtp_parser_begin_data(smtp_parser *p, size_t max)
{
	drop_data(p);
	p->data = 1;
	p->ds = D_BOL;
	p->max = max;
	p->flags = 0;
}

uint8_t *
smtp_parser_take_data(smtp_parser *p, size_t *len_r)
{
	uint8_t *b = p->buf;

	*len_r = p->len;
	if (p->len == 0) {
		drop_data(p);
		return NULL;
	}
	p->buf = NULL;
	p->len = p->cap = 0;
	return b;
}

/* Appends to the message; past the limit only the flag changes. */
static void
put(smtp_parser *p, const uint8_t *b, size_t n)
{
	if (p->flags & SMTP_DATA_TOO_BIG)
		return;
	if (p->len + n > p->max) {
		p->flags |= SMTP_DATA_TOO_BIG;
		drop_data(p);
		return;
	}
	if (p->len + n > p->cap) {
		size_t cap = p->cap ? p->cap : 16384;
		uint8_t *nb;

		while (cap < p->len + n)
			cap *= 2;
		if (cap > p->max + 2)
			cap = p->max + 2;
		if ((nb = malloc(cap)) == NULL) {
			/* Treated as too big: the client hears 552. */
			p->flags |= SMTP_DATA_TOO_BIG;
			drop_data(p);
			return;
		}
		if (p->buf) {
			memcpy(nb, p->buf, p->len);
			sodium_memzero(p->buf, p->cap);
			free(p->buf);
		}
		p->buf = nb;
		p->cap = cap;
	}
	memcpy(p->buf + p->len, b, n);
	p->len += n;
}

static const uint8_t crlf[2] = { '\r', '\n' };

/* One byte in the middle of a line (state D_MID or after a fix-up). */
static void
mid_byte(smtp_parser *p, uint8_t b)
{
	if (b == '\r') {
		p->ds = D_CR;
	} else if (b == '\n') {
		p->flags |= SMTP_DATA_BARE_LF;
		put(p, crlf, 2);
		p->ds = D_BOL;
	} else {
		put(p, &b, 1);
		p->ds = D_MID;
	}
}

/* Returns 1 at the end of the message, having consumed *i bytes. */
static int
data_feed(smtp_parser *p, const uint8_t *in, size_t n, size_t *i)
{
	for (; *i < n; (*i)++) {
		uint8_t b = in[*i];

		switch (p->ds) {
		case D_BOL:
			if (b == '.')
				p->ds = D_DOT;
			else
				mid_byte(p, b);
			break;
		case D_DOT:
			/* The dot is gone (unstuffing); what follows is
			 * the line. */
			if (b == '\r')
				p->ds = D_DOT_CR;
			else
				mid_byte(p, b);
			break;
		case D_DOT_CR:
			if (b == '\n') {
				(*i)++;
				return 1;
			}
			p->flags |= SMTP_DATA_BARE_CR;
			mid_byte(p, b);
			break;
		case D_MID:
			mid_byte(p, b);
			break;
		case D_CR:
			if (b == '\n') {
				put(p, crlf, 2);
				p->ds = D_BOL;
			} else {
				p->flags |= SMTP_DATA_BARE_CR;
				mid_byte(p, b);
			}
			break;
		}
	}
	return 0;
}

enum smtp_ev
smtp_parser_feed(smtp_parser *p, const uint8_t *in, size_t n,
    size_t *used_r, struct smtp_event *ev)
{
	size_t i = 0;

	memset(ev, 0, sizeof(*ev));
	if (p->data) {
		if (data_feed(p, in, n, &i)) {
			p->data = 0;
			ev->data_flags = p->flags;
			ev->data_len = p->len;
			*used_r = i;
			return SMTP_EV_DATA;
		}
		*used_r = i;
		return SMTP_EV_MORE;
	}
	for (; i < n; i++) {
		uint8_t b = in[i];
		enum smtp_ev r;

		if (b != '\n') {
			if (b == 0)
				p->has_nul = 1;
			if (p->line_len < SMTP_LINE_MAX)
				p->line[p->line_len++] = (char)b;
			else
				p->too_long = 1;
			continue;
		}
		*used_r = i + 1;
		if (p->line_len > 0 && p->line[p->line_len - 1] == '\r')
			p->line_len--;
		p->line[p->line_len] = 0;
		r = p->too_long ? SMTP_EV_TOOLONG : p->has_nul ? SMTP_EV_BAD :
		    SMTP_EV_LINE;
		ev->line = p->line;
		ev->line_len = p->line_len;
		p->line_len = 0;
		p->too_long = p->has_nul = 0;
		return r;
	}
	*used_r = n;
	return SMTP_EV_MORE;
}

/* ---- command syntax ----------------------------------------------------- */

int
smtp_parse_verb(const char *line, char verb[16], const char **rest_r)
{
	size_t i = 0;

	while (isalpha((unsigned char)line[i]) && i < 15) {
		verb[i] = (char)toupper((unsigned char)line[i]);
		i++;
	}
	verb[i] = 0;
	if (i == 0 || (line[i] != 0 && line[i] != ' '))
		return -1;
	line += i;
	while (*line == ' ')
		line++;
	*rest_r = line;
	return 0;
}

/* Length of a valid UTF-8 sequence at s (2..4), or 0. */
static size_t
utf8_len(const unsigned char *s)
{
	size_t n, i;
	uint32_t cp;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

int
smtp_parse_path(const char *s, const char *prefix, int utf8,
    char addr[SMTP_ADDR_MAX + 1], const char **params_r,
    const char **error_r)
{
	size_t plen = strlen(prefix), n = 0;
	int ats = 0, quoted = 0;

	addr[0] = 0;
	if (strncasecmp(s, prefix, plen) != 0) {
		*error_r = "syntax: expected a path after the command";
		return -1;
	}
	s += plen;
	while (*s == ' ')
		s++;
	if (*s++ != '<') {
		*error_r = "syntax: the path must be in angle brackets";
		return -1;
	}
	if (*s == '@') {
		*error_r = "source routes are not accepted";
		return -1;
	}
	while (*s && (*s != '>' || quoted)) {
		const unsigned char *u = (const unsigned char *)s;
		size_t l = 1;

		if (*u >= 0x80) {
			if (!utf8 || (l = utf8_len(u)) == 0) {
				*error_r = utf8 ? "bad UTF-8 in the address" :
				    "non-ASCII address without SMTPUTF8";
				return -1;
			}
		} else if (*u < 0x21 || *u == 0x7f) {
			if (!(quoted && *u == ' ')) {
				*error_r = "bad character in the address";
				return -1;
			}
		} else if (*u == '"') {
			quoted = !quoted;
		} else if (*u == '\\' && quoted) {
			if (u[1] < 0x20 || u[1] >= 0x7f) {
				*error_r = "bad quoted pair in the address";
				return -1;
			}
			l = 2;
		} else if (*u == '@' && !quoted) {
			ats++;
		} else if ((*u == '<' || *u == ',') && !quoted) {
			*error_r = "bad character in the address";
			return -1;
		}
		if (n + l > SMTP_ADDR_MAX) {
			*error_r = "the address is too long";
			return -1;
		}
		memcpy(addr + n, s, l);
		n += l;
		s += l;
	}
	addr[n] = 0;
	if (*s != '>') {
		*error_r = "syntax: the path has no closing '>'";
		return -1;
	}
	s++;
	if (*s != 0 && *s != ' ') {
		*error_r = "syntax: text after the path";
		return -1;
	}
	if (n > 0 && (ats != 1 || addr[0] == '@' || addr[n - 1] == '@')) {
		*error_r = "the address must be local-part@domain";
		return -1;
	}
	while (*s == ' ')
		s++;
	*params_r = s;
	return 0;
}

int
smtp_parse_param(const char **sp, char key[32], char value[256],
    const char **error_r)
{
	const char *s = *sp;
	size_t k = 0, v = 0;

	while (*s == ' ')
		s++;
	if (*s == 0) {
		*sp = s;
		return 0;
	}
	while (isalnum((unsigned char)*s) || *s == '-') {
		if (k == 31) {
			*error_r = "parameter name too long";
			return -1;
		}
		key[k++] = (char)toupper((unsigned char)*s++);
	}
	key[k] = 0;
	if (k == 0) {
		*error_r = "bad parameter";
		return -1;
	}
	if (*s == '=') {
		s++;
		while (*s && *s != ' ') {
			if (v == 255 || (unsigned char)*s < 0x21 ||
			    *s == '=') {
				*error_r = "bad parameter value";
				return -1;
			}
			value[v++] = *s++;
		}
		if (v == 0) {
			*error_r = "empty parameter value";
			return -1;
		}
	}
	value[v] = 0;
	if (*s != 0 && *s != ' ') {
		*error_r = "bad parameter";
		return -1;
	}
	*sp = s;
	return 1;
}

long
smtp_base64_decode(const char *in, uint8_t *out, size_t cap)
{
	size_t len = strlen(in), bin_len = 0;

	if (len % 4 != 0)
		return -1;
	if (sodium_base642bin(out, cap, in, len, NULL, &bin_len, NULL,
	    sodium_base64_VARIANT_ORIGINAL) != 0)
		return -1;
	return (long)bin_len;
}
