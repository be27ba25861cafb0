/*
 * IMAP command parser: framing (lines and literals, incremental) and the
 * tokenizer (argument tree, once the command is complete).  See
 * imap_parse.h for the contract.
 *
 * Framing keeps the whole command in one buffer: each line without its
 * CRLF, and after a line that announced a literal, the literal's bytes and
 * one NUL, so a literal can be handed out in place and NUL-terminated.  A
 * table remembers where each announcement ('{' or '~') sits and where its
 * bytes are; the tokenizer takes a literal only at such a place, so
 * "{5}" inside a quoted string or in the middle of a line stays text.
 */
#include "bridge/imap_parse.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum frame_state {
	F_LINE,        /* reading a line */
	F_LITERAL,     /* reading literal bytes */
};

struct literal {
	size_t spec;   /* offset of '{' (or '~' of ~{n}) in buf */
	size_t data;   /* offset of the bytes */
	size_t len;
};

/* Bump allocator for one command's tokens: freed in one go. */
struct arena_chunk {
	struct arena_chunk *next;
	size_t used, size;
	max_align_t data[];
};

struct imap_parser {
	struct imap_parse_limits lim;
	enum frame_state st;
	uint8_t *buf;
	size_t len, cap;
	size_t line_start;      /* offset of the line being read */
	size_t lit_left;        /* F_LITERAL: bytes still to come */
	struct literal *lits;
	size_t nlits, lits_cap;
	int raw;                /* next line is raw */
	int done;               /* last feed returned a command: reset first */
	struct arena_chunk *arena;
	struct imap_command cmd;
	char tag[128];
	char errbuf[160];
	/* tokenizer state */
	size_t pos, end, lit_i;
	unsigned nargs;
};

void
imap_parse_limits_default(struct imap_parse_limits *l)
{
	l->line_max = 64 * 1024;
	l->literal_max = (size_t)64 << 20;
	l->command_max = (size_t)64 << 20;
	l->depth_max = 16;
	l->args_max = 100000;
}

int
imap_parser_create(const struct imap_parse_limits *l, imap_parser **p_r)
{
	imap_parser *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return ENOMEM;
	if (l)
		p->lim = *l;
	else
		imap_parse_limits_default(&p->lim);
	*p_r = p;
	return 0;
}

static void
arena_clear(imap_parser *p)
{
	struct arena_chunk *c, *next;

	for (c = p->arena; c; c = next) {
		next = c->next;
		free(c);
	}
	p->arena = NULL;
}

void
imap_parser_destroy(imap_parser *p)
{
	if (p == NULL)
		return;
	arena_clear(p);
	free(p->buf);
	free(p->lits);
	free(p);
}

void
imap_parser_raw_line(imap_parser *p)
{
	p->raw = 1;
}

static void *
arena_alloc(imap_parser *p, size_t n)
{
	struct arena_chunk *c = p->arena;
	size_t need = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) *
	    sizeof(max_align_t);

	if (c == NULL || c->size - c->used < need) {
		size_t size = need > 16384 ? need : 16384;

		if ((c = malloc(sizeof(*c) + size)) == NULL)
			return NULL;
		c->next = p->arena;
		c->used = 0;
		c->size = size;
		p->arena = c;
	}
	c->used += need;
	return (char *)c->data + c->used - need;
}

static void
reset(imap_parser *p)
{
	p->len = 0;
	p->line_start = 0;
	p->nlits = 0;
	p->st = F_LINE;
	p->done = 0;
	p->tag[0] = 0;
	arena_clear(p);
	memset(&p->cmd, 0, sizeof(p->cmd));
}

static int
buf_reserve(imap_parser *p, size_t more)
{
	size_t cap = p->cap ? p->cap : 1024;
	uint8_t *nb;

	if (p->len + more <= p->cap)
		return 0;
	while (cap < p->len + more)
		cap *= 2;
	if ((nb = realloc(p->buf, cap)) == NULL)
		return -1;
	p->buf = nb;
	p->cap = cap;
	return 0;
}

/* The tag of the command being framed, once its first line has one. */
static const char *
frame_tag(imap_parser *p)
{
	size_t i, n = p->len;

	if (p->tag[0])
		return p->tag;
	for (i = 0; i < n && i < sizeof(p->tag) - 1; i++) {
		uint8_t ch = p->buf[i];

		if (ch == ' ')
			break;
		if (ch <= 0x20 || ch >= 0x7f || strchr("(){%*\"\\+", ch))
			return NULL;
	}
	if (i == 0 || i >= n || i >= sizeof(p->tag) - 1)
		return NULL;
	memcpy(p->tag, p->buf, i);
	p->tag[i] = 0;
	return p->tag;
}

/*
 * At the end of a line: does it end with a literal announcement?  Returns
 * 1 and fills the out parameters, 0 if not, -1 for a malformed or
 * oversized number (*error_r).
 */
static int
line_literal(imap_parser *p, size_t *spec_r, uint64_t *n_r, int *plus_r,
    const char **error_r)
{
	const uint8_t *l = p->buf + p->line_start;
	size_t n = p->len - p->line_start, i;
	uint64_t v = 0;

	if (n < 3 || l[n - 1] != '}')
		return 0;
	i = n - 1;
	*plus_r = 0;
	if (l[i - 1] == '+') {
		*plus_r = 1;
		i--;
	}
	/* digits back to '{' */
	{
		size_t end = i, start;

		while (i > 0 && l[i - 1] >= '0' && l[i - 1] <= '9')
			i--;
		start = i;
		if (i == 0 || l[i - 1] != '{' || start == end)
			return 0;
		if (end - start > 19) {
			*error_r = "literal size too large";
			return -1;
		}
		for (; start < end; start++)
			v = v * 10 + (uint64_t)(l[start] - '0');
		i--;
	}
	if (i > 0 && l[i - 1] == '~')
		i--;
	*spec_r = p->line_start + i;
	*n_r = v;
	return 1;
}

static int tokenize(imap_parser *p, const char **error_r);

/* A complete line is in buf[line_start..len). */
static int
end_of_line(imap_parser *p, struct imap_command **cmd_r,
    const char **error_r)
{
	size_t spec;
	uint64_t n;
	int plus, r;

	if (p->raw) {
		p->raw = 0;
		if (buf_reserve(p, 1) != 0)
			goto nomem;
		p->buf[p->len] = 0;
		p->cmd.raw = (const char *)p->buf;
		p->cmd.raw_len = p->len;
		p->done = 1;
		*cmd_r = &p->cmd;
		return IMAP_PARSE_DONE;
	}
	r = line_literal(p, &spec, &n, &plus, error_r);
	if (r < 0)
		return IMAP_PARSE_ERROR;
	if (r == 0) {
		if (tokenize(p, error_r) != 0)
			return IMAP_PARSE_ERROR;
		p->done = 1;
		*cmd_r = &p->cmd;
		return IMAP_PARSE_DONE;
	}
	if (n > p->lim.literal_max || p->len + n + 1 > p->lim.command_max) {
		*error_r = "literal too large";
		return plus ? IMAP_PARSE_FATAL : IMAP_PARSE_ERROR;
	}
	if (p->nlits == p->lits_cap) {
		size_t cap = p->lits_cap ? p->lits_cap * 2 : 8;
		struct literal *nl;

		if (cap > p->lim.args_max + 8 ||
		    (nl = realloc(p->lits, cap * sizeof(*nl))) == NULL) {
			*error_r = "too many literals";
			return IMAP_PARSE_FATAL;
		}
		p->lits = nl;
		p->lits_cap = cap;
	}
	if (buf_reserve(p, (size_t)n + 1) != 0)
		goto nomem;
	p->lits[p->nlits].spec = spec;
	p->lits[p->nlits].data = p->len;
	p->lits[p->nlits].len = (size_t)n;
	p->nlits++;
	p->lit_left = (size_t)n;
	p->st = F_LITERAL;
	return plus ? IMAP_PARSE_MORE : IMAP_PARSE_CONTINUE;
nomem:
	*error_r = "out of memory";
	return IMAP_PARSE_FATAL;
}

int
imap_parser_feed(imap_parser *p, const uint8_t *buf, size_t len,
    size_t *used_r, struct imap_command **cmd_r, const char **tag_r,
    const char **error_r)
{
	size_t i = 0;
	int rc;

	*cmd_r = NULL;
	*tag_r = NULL;
	*error_r = NULL;
	if (p->done)
		reset(p);
	while (i < len) {
		if (p->st == F_LITERAL) {
			size_t take = len - i < p->lit_left ? len - i :
			    p->lit_left;

			memcpy(p->buf + p->len, buf + i, take);
			p->len += take;
			p->lit_left -= take;
			i += take;
			if (p->lit_left == 0) {
				p->buf[p->len++] = 0;
				p->line_start = p->len;
				p->st = F_LINE;
			}
			continue;
		}
		{
			const uint8_t *nl = memchr(buf + i, '\n', len - i);
			size_t take = nl ? (size_t)(nl - (buf + i)) : len - i;
			size_t line_len = p->len - p->line_start + take;

			if (line_len > p->lim.line_max + 1 ||
			    p->len + take > p->lim.command_max) {
				/* Keep the line's start, for its tag. */
				size_t keep = p->len < 128 ? 128 - p->len : 0;

				if (keep > take)
					keep = take;
				if (buf_reserve(p, keep) == 0) {
					memcpy(p->buf + p->len, buf + i, keep);
					p->len += keep;
				}
				*used_r = i + take + (nl ? 1 : 0);
				*tag_r = frame_tag(p);
				*error_r = "line too long";
				p->done = 1;    /* reset at the next call */
				return IMAP_PARSE_FATAL;
			}
			if (buf_reserve(p, take + 1) != 0) {
				*used_r = len;
				*error_r = "out of memory";
				return IMAP_PARSE_FATAL;
			}
			memcpy(p->buf + p->len, buf + i, take);
			p->len += take;
			i += take;
			if (nl == NULL)
				break;
			i++;    /* the LF */
			if (p->len > p->line_start && p->buf[p->len - 1] == '\r')
				p->len--;
			if (p->len - p->line_start > p->lim.line_max) {
				*used_r = i;
				*tag_r = frame_tag(p);
				*error_r = "line too long";
				p->done = 1;    /* reset at the next call */
				return IMAP_PARSE_FATAL;
			}
			rc = end_of_line(p, cmd_r, error_r);
			if (rc == IMAP_PARSE_MORE)
				continue;
			*used_r = i;
			if (rc == IMAP_PARSE_ERROR || rc == IMAP_PARSE_FATAL) {
				*tag_r = frame_tag(p);
				p->done = 1;    /* reset at the next call */
			}
			return rc;
		}
	}
	*used_r = i;
	return IMAP_PARSE_MORE;
}

/* ---- tokenizer ---------------------------------------------------------- */

static int
is_atom_char(uint8_t ch)
{
	/* RFC 3501 ATOM-CHAR, plus list-wildcards and ']' (astrings and LIST
	 * patterns); '[' is handled by the caller. */
	return ch > 0x20 && ch != 0x7f && ch != '(' && ch != ')' &&
	    ch != '{' && ch != '"' && ch != '[';
}

static struct literal *
literal_at(imap_parser *p, size_t pos)
{
	size_t i;

	for (i = p->lit_i; i < p->nlits; i++)
		if (p->lits[i].spec == pos)
			return &p->lits[i];
	return NULL;
}

static char *
arena_strndup(imap_parser *p, const uint8_t *s, size_t n)
{
	char *d = arena_alloc(p, n + 1);

	if (d) {
		memcpy(d, s, n);
		d[n] = 0;
	}
	return d;
}

static int parse_list(imap_parser *p, unsigned depth, int in_list,
    struct imap_arg **args_r, size_t *n_r, const char **error_r);

static int
parse_atom(imap_parser *p, struct imap_arg *a, const char **error_r)
{
	size_t start = p->pos;

	while (p->pos < p->end) {
		uint8_t ch = p->buf[p->pos];

		if (ch == '[') {
			/* A section: anything up to ']' but CTLs and 8-bit. */
			p->pos++;
			while (p->pos < p->end && p->buf[p->pos] != ']') {
				ch = p->buf[p->pos];
				if (ch < 0x20 || ch >= 0x7f) {
					*error_r = "bad character in section";
					return -1;
				}
				p->pos++;
			}
			if (p->pos == p->end) {
				*error_r = "missing ]";
				return -1;
			}
			p->pos++;
			continue;
		}
		if (!is_atom_char(ch))
			break;
		if (ch >= 0x80) {
			*error_r = "8-bit character in atom";
			return -1;
		}
		p->pos++;
	}
	if (p->pos == start) {
		*error_r = "unexpected character";
		return -1;
	}
	a->type = IMAP_ARG_ATOM;
	a->len = p->pos - start;
	if ((a->s = arena_strndup(p, p->buf + start, a->len)) == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	return 0;
}

static int
parse_quoted(imap_parser *p, struct imap_arg *a, const char **error_r)
{
	size_t start = ++p->pos, n = 0;
	char *d;

	/* Measure first, then copy with escapes resolved. */
	while (p->pos < p->end && p->buf[p->pos] != '"') {
		uint8_t ch = p->buf[p->pos];

		if (ch == '\\') {
			if (p->pos + 1 >= p->end || (p->buf[p->pos + 1] != '"' &&
			    p->buf[p->pos + 1] != '\\')) {
				*error_r = "bad escape in quoted string";
				return -1;
			}
			p->pos++;
		} else if (ch == 0 || ch == '\r') {
			*error_r = "bad character in quoted string";
			return -1;
		}
		p->pos++;
		n++;
	}
	if (p->pos >= p->end) {
		*error_r = "unterminated quoted string";
		return -1;
	}
	if ((d = arena_alloc(p, n + 1)) == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	a->type = IMAP_ARG_QUOTED;
	a->s = d;
	a->len = n;
	for (; start < p->pos; start++) {
		if (p->buf[start] == '\\')
			start++;
		*d++ = (char)p->buf[start];
	}
	*d = 0;
	p->pos++;       /* closing quote */
	return 0;
}

static int
parse_literal(imap_parser *p, struct imap_arg *a, const char **error_r)
{
	struct literal *l = literal_at(p, p->pos);

	if (l == NULL) {
		*error_r = "literal not at the end of a line";
		return -1;
	}
	a->type = IMAP_ARG_LITERAL;
	a->literal8 = p->buf[p->pos] == '~';
	a->s = (const char *)p->buf + l->data;
	a->len = l->len;
	p->lit_i = (size_t)(l - p->lits) + 1;
	/* The next segment starts after the literal's bytes and its NUL;
	 * it runs to the next literal's data or to the end. */
	p->pos = l->data + l->len + 1;
	p->end = p->lit_i < p->nlits ? p->lits[p->lit_i].data : p->len;
	return 0;
}

static int
parse_one(imap_parser *p, unsigned depth, struct imap_arg *a,
    const char **error_r)
{
	uint8_t ch = p->buf[p->pos];

	memset(a, 0, sizeof(*a));
	if (++p->nargs > p->lim.args_max) {
		*error_r = "too many arguments";
		return -1;
	}
	if (ch == '(') {
		if (depth + 1 > p->lim.depth_max) {
			*error_r = "lists nested too deeply";
			return -1;
		}
		p->pos++;
		a->type = IMAP_ARG_LIST;
		if (parse_list(p, depth + 1, 1, &a->list, &a->n, error_r) != 0)
			return -1;
		return 0;
	}
	if (ch == '"')
		return parse_quoted(p, a, error_r);
	if (ch == '{' || (ch == '~' && p->pos + 1 < p->end &&
	    p->buf[p->pos + 1] == '{'))
		return parse_literal(p, a, error_r);
	return parse_atom(p, a, error_r);
}

/*
 * Arguments up to ')' (in_list) or the end.  Children are gathered in a
 * growing heap array and copied into the arena once their number is known.
 */
static int
parse_list(imap_parser *p, unsigned depth, int in_list,
    struct imap_arg **args_r, size_t *n_r, const char **error_r)
{
	struct imap_arg *v = NULL, *nv;
	size_t n = 0, cap = 0;
	int rc = -1;

	for (;;) {
		if (p->pos >= p->end) {
			if (in_list) {
				*error_r = "missing )";
				goto out;
			}
			break;
		}
		if (p->buf[p->pos] == ')') {
			if (!in_list) {
				*error_r = "unexpected )";
				goto out;
			}
			p->pos++;
			break;
		}
		if (n > 0) {
			if (p->buf[p->pos] != ' ') {
				*error_r = "missing space between arguments";
				goto out;
			}
			p->pos++;
			/* A trailing space before the end is tolerated;
			 * some clients send one. */
			if (p->pos >= p->end && !in_list)
				break;
		}
		if (p->pos >= p->end || p->buf[p->pos] == ' ') {
			*error_r = "empty argument";
			goto out;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
				*error_r = "out of memory";
				goto out;
			}
			v = nv;
		}
		if (parse_one(p, depth, &v[n], error_r) != 0)
			goto out;
		n++;
	}
	*args_r = NULL;
	if (n > 0) {
		if ((*args_r = arena_alloc(p, n * sizeof(*v))) == NULL) {
			*error_r = "out of memory";
			goto out;
		}
		memcpy(*args_r, v, n * sizeof(*v));
	}
	*n_r = n;
	rc = 0;
out:
	free(v);
	return rc;
}

static int
tokenize(imap_parser *p, const char **error_r)
{
	struct imap_arg word;
	const char *tag;
	char *name;
	size_t i;

	p->pos = 0;
	p->lit_i = 0;
	p->nargs = 0;
	p->end = p->nlits ? p->lits[0].data : p->len;
	if ((tag = frame_tag(p)) == NULL) {
		*error_r = p->len == 0 ? "empty line" : "bad tag";
		return -1;
	}
	p->cmd.tag = tag;
	p->pos = strlen(tag) + 1;
	if (p->pos >= p->end || parse_atom(p, &word, error_r) != 0) {
		*error_r = "missing command";
		return -1;
	}
	name = (char *)(uintptr_t)word.s;
	for (i = 0; name[i]; i++)
		name[i] = (char)toupper((unsigned char)name[i]);
	if (strcmp(name, "UID") == 0) {
		struct imap_arg sub;
		char *full;

		if (p->pos + 1 >= p->end || p->buf[p->pos] != ' ') {
			*error_r = "UID needs a command";
			return -1;
		}
		p->pos++;
		if (parse_atom(p, &sub, error_r) != 0)
			return -1;
		if ((full = arena_alloc(p, sub.len + 5)) == NULL) {
			*error_r = "out of memory";
			return -1;
		}
		memcpy(full, "UID ", 4);
		for (i = 0; i <= sub.len; i++)
			full[4 + i] = (char)toupper((unsigned char)sub.s[i]);
		name = full;
	}
	p->cmd.name = name;
	p->cmd.args = NULL;
	p->cmd.nargs = 0;
	if (p->pos < p->end) {
		if (p->buf[p->pos] != ' ') {
			*error_r = "bad command name";
			return -1;
		}
		p->pos++;
		if (parse_list(p, 0, 0, &p->cmd.args, &p->cmd.nargs,
		    error_r) != 0)
			return -1;
	}
	if (p->lit_i != p->nlits) {
		*error_r = "literal where none belongs";
		return -1;
	}
	return 0;
}

/* ---- helpers ------------------------------------------------------------ */

int
imap_arg_is_string(const struct imap_arg *a)
{
	return a && a->type != IMAP_ARG_LIST;
}

int
imap_arg_is_nil(const struct imap_arg *a)
{
	return imap_arg_atom_is(a, "NIL");
}

int
imap_arg_atom_is(const struct imap_arg *a, const char *word)
{
	return a && a->type == IMAP_ARG_ATOM && strcasecmp(a->s, word) == 0;
}

int
imap_arg_number(const struct imap_arg *a, uint64_t *n_r)
{
	uint64_t v = 0;
	size_t i;

	if (a == NULL || a->type != IMAP_ARG_ATOM || a->len == 0 ||
	    a->len > 19)
		return -1;
	for (i = 0; i < a->len; i++) {
		if (a->s[i] < '0' || a->s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(a->s[i] - '0');
	}
	*n_r = v;
	return 0;
}

/* ---- sequence sets ------------------------------------------------------ */

static int
seq_number(const char **s, uint32_t *v_r)
{
	uint64_t v = 0;
	const char *q = *s;

	if (*q == '*') {
		*v_r = IMAP_SEQ_STAR;
		*s = q + 1;
		return 0;
	}
	if (*q < '1' || *q > '9')
		return -1;
	while (*q >= '0' && *q <= '9') {
		v = v * 10 + (uint64_t)(*q - '0');
		if (v >= UINT32_MAX)
			return -1;
		q++;
	}
	*v_r = (uint32_t)v;
	*s = q;
	return 0;
}

int
imap_seqset_parse(const char *s, struct imap_seqset *set)
{
	size_t cap = 0;

	memset(set, 0, sizeof(*set));
	if (strcmp(s, "$") == 0) {
		set->saved = 1;
		return 0;
	}
	for (;;) {
		struct imap_seq_range r;

		if (seq_number(&s, &r.lo) != 0)
			goto bad;
		r.hi = r.lo;
		if (*s == ':') {
			s++;
			if (seq_number(&s, &r.hi) != 0)
				goto bad;
		}
		if (set->n == cap) {
			struct imap_seq_range *nr;

			cap = cap ? cap * 2 : 4;
			if (cap > IMAP_SEQSET_MAX * 2 ||
			    (nr = realloc(set->r, cap * sizeof(*nr))) == NULL)
				goto bad;
			set->r = nr;
		}
		if (set->n >= IMAP_SEQSET_MAX)
			goto bad;
		set->r[set->n++] = r;
		if (*s == 0)
			return 0;
		if (*s++ != ',')
			goto bad;
	}
bad:
	imap_seqset_finish(set);
	return -1;
}

void
imap_seqset_finish(struct imap_seqset *set)
{
	free(set->r);
	set->r = NULL;
	set->n = 0;
}

void
imap_seqset_resolve(struct imap_seqset *set, uint32_t max)
{
	size_t i;

	for (i = 0; i < set->n; i++) {
		struct imap_seq_range *r = &set->r[i];

		if (r->lo == IMAP_SEQ_STAR)
			r->lo = max;
		if (r->hi == IMAP_SEQ_STAR)
			r->hi = max;
		if (r->lo > r->hi) {
			uint32_t t = r->lo;

			r->lo = r->hi;
			r->hi = t;
		}
	}
}

int
imap_seqset_contains(const struct imap_seqset *set, uint32_t v)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		if (v >= set->r[i].lo && v <= set->r[i].hi)
			return 1;
	return 0;
}

/* ---- FETCH attributes --------------------------------------------------- */

static const struct {
	const char *name;
	enum imap_fetch_item item;
} simple_items[] = {
	{ "UID", IMAP_FI_UID },
	{ "FLAGS", IMAP_FI_FLAGS },
	{ "INTERNALDATE", IMAP_FI_INTERNALDATE },
	{ "ENVELOPE", IMAP_FI_ENVELOPE },
	{ "BODYSTRUCTURE", IMAP_FI_BODYSTRUCTURE },
	{ "BODY", IMAP_FI_BODY },
	{ "RFC822.SIZE", IMAP_FI_RFC822_SIZE },
	{ "RFC822", IMAP_FI_RFC822 },
	{ "RFC822.HEADER", IMAP_FI_RFC822_HEADER },
	{ "RFC822.TEXT", IMAP_FI_RFC822_TEXT },
	{ "MODSEQ", IMAP_FI_MODSEQ },
};

static const struct {
	const char *name;
	const char *items[6];
} macros[] = {
	{ "ALL", { "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE" } },
	{ "FAST", { "FLAGS", "INTERNALDATE", "RFC822.SIZE" } },
	{ "FULL", { "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE",
	    "BODY" } },
};

static int
add_att(struct imap_fetch_atts *f, struct imap_fetch_att **a_r)
{
	struct imap_fetch_att *na;

	if (f->n >= 256)
		return -1;
	if ((na = realloc(f->a, (f->n + 1) * sizeof(*na))) == NULL)
		return -1;
	f->a = na;
	*a_r = &f->a[f->n++];
	memset(*a_r, 0, sizeof(**a_r));
	return 0;
}

static int
parse_simple(struct imap_fetch_atts *f, const char *s)
{
	struct imap_fetch_att *a;
	size_t i;

	for (i = 0; i < sizeof(simple_items) / sizeof(simple_items[0]); i++) {
		if (strcasecmp(s, simple_items[i].name) != 0)
			continue;
		if (add_att(f, &a) != 0)
			return -1;
		a->item = simple_items[i].item;
		if (a->item == IMAP_FI_BODY ||
		    a->item == IMAP_FI_BODYSTRUCTURE ||
		    a->item == IMAP_FI_RFC822 ||
		    a->item == IMAP_FI_RFC822_HEADER ||
		    a->item == IMAP_FI_RFC822_TEXT ||
		    a->item == IMAP_FI_ENVELOPE)
			f->has_body = 1;
		if (a->item == IMAP_FI_RFC822 ||
		    a->item == IMAP_FI_RFC822_TEXT)
			f->sets_seen = 1;
		return 0;
	}
	return 1;
}

/* "HEADER.FIELDS (A B)" field names, upper-cased into a->fields. */
static int
section_fields(struct imap_fetch_att *a, const char *s, const char **end_r)
{
	const char *q = s;

	while (*q == ' ')
		q++;
	if (*q++ != '(')
		return -1;
	for (;;) {
		const char *st = q;
		char *name;
		size_t i, n;

		while (*q && *q != ' ' && *q != ')') {
			if (*q <= 0x20 || *q >= 0x7f || *q == ':' ||
			    *q == '"' || *q == '(')
				return -1;
			q++;
		}
		n = (size_t)(q - st);
		if (n == 0 && *q != ')')
			return -1;
		if (n > 0) {
			char **nf;

			if (a->nfields >= IMAP_SECTION_FIELDS)
				return -1;
			if ((nf = realloc(a->fields, (a->nfields + 1) *
			    sizeof(*nf))) == NULL)
				return -1;
			a->fields = nf;
			if ((name = malloc(n + 1)) == NULL)
				return -1;
			for (i = 0; i < n; i++)
				name[i] = (char)toupper((unsigned char)st[i]);
			name[n] = 0;
			a->fields[a->nfields++] = name;
		}
		if (*q == ')')
			break;
		q++;
	}
	if (a->nfields == 0)
		return -1;
	*end_r = q + 1;
	return 0;
}

static int
parse_number_u64(const char **s, uint64_t *v_r)
{
	const char *q = *s;
	uint64_t v = 0;

	if (*q < '0' || *q > '9')
		return -1;
	while (*q >= '0' && *q <= '9') {
		if (v > (UINT64_MAX - 9) / 10 || q - *s > 18)
			return -1;
		v = v * 10 + (uint64_t)(*q - '0');
		q++;
	}
	*s = q;
	*v_r = v;
	return 0;
}

/* Builds the label the response names the item by. */
static int
make_label(struct imap_fetch_att *a, const char *prefix)
{
	size_t cap = 64 + strlen(prefix), n, i;
	char *l;

	for (i = 0; i < a->nfields; i++)
		cap += strlen(a->fields[i]) + 1;
	cap += a->nparts * 11;
	if ((l = malloc(cap)) == NULL)
		return -1;
	n = (size_t)snprintf(l, cap, "%s[", prefix);
	for (i = 0; i < a->nparts; i++)
		n += (size_t)snprintf(l + n, cap - n, "%s%u", i ? "." : "",
		    a->part[i]);
	if (a->text != IMAP_ST_ALL && a->nparts)
		l[n++] = '.';
	switch (a->text) {
	case IMAP_ST_ALL:
		break;
	case IMAP_ST_HEADER:
		n += (size_t)snprintf(l + n, cap - n, "HEADER");
		break;
	case IMAP_ST_HEADER_FIELDS:
	case IMAP_ST_HEADER_FIELDS_NOT:
		n += (size_t)snprintf(l + n, cap - n, "HEADER.FIELDS%s (",
		    a->text == IMAP_ST_HEADER_FIELDS_NOT ? ".NOT" : "");
		for (i = 0; i < a->nfields; i++)
			n += (size_t)snprintf(l + n, cap - n, "%s%s",
			    i ? " " : "", a->fields[i]);
		l[n++] = ')';
		break;
	case IMAP_ST_TEXT:
		n += (size_t)snprintf(l + n, cap - n, "TEXT");
		break;
	case IMAP_ST_MIME:
		n += (size_t)snprintf(l + n, cap - n, "MIME");
		break;
	}
	l[n++] = ']';
	l[n] = 0;
	if (a->partial)
		snprintf(l + n, cap - n, "<%llu>",
		    (unsigned long long)a->start);
	a->label = l;
	return 0;
}

/* BODY[...]<...>, BODY.PEEK[...], BINARY[...], BINARY.PEEK, BINARY.SIZE */
static int
parse_section(struct imap_fetch_atts *f, const char *s, const char **error_r)
{
	struct imap_fetch_att *a;
	const char *q, *prefix = "BODY";
	enum imap_fetch_item item = IMAP_FI_SECTION;
	int peek = 0;

	if (strncasecmp(s, "BODY.PEEK[", 10) == 0) {
		peek = 1;
		q = s + 9;
	} else if (strncasecmp(s, "BODY[", 5) == 0) {
		q = s + 4;
	} else if (strncasecmp(s, "BINARY.PEEK[", 12) == 0) {
		peek = 1;
		q = s + 11;
		item = IMAP_FI_BINARY;
		prefix = "BINARY";
	} else if (strncasecmp(s, "BINARY.SIZE[", 12) == 0) {
		q = s + 11;
		item = IMAP_FI_BINARY_SIZE;
		prefix = "BINARY.SIZE";
		peek = 1;
	} else if (strncasecmp(s, "BINARY[", 7) == 0) {
		q = s + 6;
		item = IMAP_FI_BINARY;
		prefix = "BINARY";
	} else {
		*error_r = "unknown FETCH attribute";
		return -1;
	}
	if (add_att(f, &a) != 0)
		goto bad;
	a->item = item;
	a->peek = peek;
	q++;    /* '[' */
	while (*q >= '1' && *q <= '9') {
		uint64_t v;

		if (parse_number_u64(&q, &v) != 0 || v > UINT32_MAX ||
		    a->nparts >= IMAP_SECTION_DEPTH)
			goto bad;
		a->part[a->nparts++] = (uint32_t)v;
		if (*q != '.')
			break;
		q++;
	}
	if (*q != ']') {
		static const struct {
			const char *name;
			enum imap_section_text t;
		} texts[] = {
			{ "HEADER.FIELDS.NOT", IMAP_ST_HEADER_FIELDS_NOT },
			{ "HEADER.FIELDS", IMAP_ST_HEADER_FIELDS },
			{ "HEADER", IMAP_ST_HEADER },
			{ "TEXT", IMAP_ST_TEXT },
			{ "MIME", IMAP_ST_MIME },
		};
		size_t i;

		for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
			if (strncasecmp(q, texts[i].name,
			    strlen(texts[i].name)) == 0)
				break;
		if (i == sizeof(texts) / sizeof(texts[0]) ||
		    item != IMAP_FI_SECTION)
			goto bad;
		a->text = texts[i].t;
		q += strlen(texts[i].name);
		if (a->text == IMAP_ST_MIME && a->nparts == 0)
			goto bad;
		if ((a->text == IMAP_ST_HEADER_FIELDS ||
		    a->text == IMAP_ST_HEADER_FIELDS_NOT) &&
		    section_fields(a, q, &q) != 0)
			goto bad;
	}
	if (*q++ != ']')
		goto bad;
	if (*q == '<') {
		q++;
		if (item == IMAP_FI_BINARY_SIZE ||
		    parse_number_u64(&q, &a->start) != 0 || *q++ != '.' ||
		    parse_number_u64(&q, &a->count) != 0 || a->count == 0 ||
		    *q++ != '>')
			goto bad;
		a->partial = 1;
	}
	if (*q != 0)
		goto bad;
	if (make_label(a, prefix) != 0)
		goto bad;
	f->has_body = 1;
	if (!peek)
		f->sets_seen = 1;
	return 0;
bad:
	*error_r = "bad FETCH section";
	return -1;
}

static int
parse_att(struct imap_fetch_atts *f, const struct imap_arg *a,
    const char **error_r)
{
	int r;

	if (a->type != IMAP_ARG_ATOM) {
		*error_r = "FETCH attributes are atoms";
		return -1;
	}
	if ((r = parse_simple(f, a->s)) <= 0) {
		if (r < 0)
			*error_r = "too many FETCH attributes";
		return r;
	}
	return parse_section(f, a->s, error_r);
}

int
imap_fetch_atts_parse(const struct imap_arg *arg, struct imap_fetch_atts *f,
    const char **error_r)
{
	size_t i, j;

	memset(f, 0, sizeof(*f));
	if (arg->type == IMAP_ARG_ATOM) {
		for (i = 0; i < sizeof(macros) / sizeof(macros[0]); i++) {
			if (strcasecmp(arg->s, macros[i].name) != 0)
				continue;
			for (j = 0; macros[i].items[j]; j++)
				if (parse_simple(f, macros[i].items[j]) != 0)
					goto bad;
			return 0;
		}
		if (parse_att(f, arg, error_r) != 0)
			goto bad;
		return 0;
	}
	if (arg->type != IMAP_ARG_LIST || arg->n == 0) {
		*error_r = "bad FETCH attributes";
		goto bad;
	}
	for (i = 0; i < arg->n; i++)
		if (parse_att(f, &arg->list[i], error_r) != 0)
			goto bad;
	return 0;
bad:
	if (*error_r == NULL)
		*error_r = "bad FETCH attributes";
	imap_fetch_atts_finish(f);
	return -1;
}

void
imap_fetch_atts_finish(struct imap_fetch_atts *f)
{
	size_t i, j;

	for (i = 0; i < f->n; i++) {
		for (j = 0; j < f->a[i].nfields; j++)
			free(f->a[i].fields[j]);
		free(f->a[i].fields);
		free(f->a[i].label);
	}
	free(f->a);
	memset(f, 0, sizeof(*f));
}
