/*
 * SEARCH criteria (RFC 3501 6.4.4, RFC 7162 MODSEQ), evaluated against
 * the selected folder's view.
 *
 * The argument tree is checked once without a message (so a bad key is
 * BAD even in an empty folder), then evaluated per message.  Keys on
 * addresses and subject use the decrypted metadata record; HEADER, BODY
 * and TEXT need the message itself, read through the body cache (the
 * local cache holds bodies once fetched).
 *
 * BODY and TEXT go through the encrypted search index (imap_index.h)
 * first: messages of the view not indexed yet are indexed (their decoded
 * text parts and their header, the very text the scan reads), then each
 * needle's candidates come from the index and only they are scanned, so
 * the answer is the substring scan's answer at the cost of the
 * candidates.  New messages are indexed at the first such SEARCH after
 * they arrive; removed ones drop out because only the view is searched.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "bridge/imap_conn.h"
#include "bridge/imap_fetch.h"
#include "bridge/imap_index.h"

#define NEEDLES_MAX 16     /* distinct TEXT/BODY strings served by index */
#define INDEX_BATCH 512    /* messages per index flush */

struct needle {
	const char *s;           /* the argument's string (pointer identity) */
	uint64_t *ids;
	size_t n;
	int all;
};

struct ctx {
	struct imap_conn *c;
	const struct sp_mbox_msg *m;   /* NULL: syntax check only */
	size_t seq;                    /* 1-based */
	const char *error;
	int depth;
	imap_index *ix;                /* NULL: scan every message */
	struct needle needles[NEEDLES_MAX];
	size_t nneedles;
};

static int eval_key(struct ctx *x, const struct imap_arg *a, size_t n,
    size_t *pos, int *r);

/* Case-insensitive substring (ASCII folding; UTF-8 passes through). */
static int
contains(const char *hay, const char *needle)
{
	size_t nl = strlen(needle), i;

	if (nl == 0)
		return 1;
	if (hay == NULL)
		return 0;
	for (i = 0; hay[i]; i++)
		if (strncasecmp(hay + i, needle, nl) == 0)
			return 1;
	return 0;
}

static int
parse_date(const char *s, time_t *t_r)
{
	static const char *mon[] = { "Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;
	char m[4];
	int d, y, i;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%2d-%3s-%4d", &d, m, &y) != 3)
		return -1;
	for (i = 0; i < 12; i++)
		if (strcasecmp(m, mon[i]) == 0)
			break;
	if (i == 12 || d < 1 || d > 31 || y < 1900)
		return -1;
	tm.tm_mday = d;
	tm.tm_mon = i;
	tm.tm_year = y - 1900;
	*t_r = timegm(&tm);
	return 0;
}

/* Seconds to the start of their day (UTC). */
static time_t
day_of(uint64_t t)
{
	return (time_t)(t - t % 86400);
}

static const struct imap_arg *
next_arg(struct ctx *x, const struct imap_arg *a, size_t n, size_t *pos)
{
	if (*pos >= n) {
		x->error = "missing search argument";
		return NULL;
	}
	return &a[(*pos)++];
}

static const char *
next_string(struct ctx *x, const struct imap_arg *a, size_t n, size_t *pos)
{
	const struct imap_arg *v = next_arg(x, a, n, pos);

	if (v == NULL || !imap_arg_is_string(v)) {
		x->error = "search key needs a string";
		return NULL;
	}
	return v->s;
}

static int
flag_key(const char *k, uint32_t *bit, int *want)
{
	static const struct {
		const char *name;
		uint32_t bit;
		int want;
	} t[] = {
		{ "ANSWERED", SP_META_F_ANSWERED, 1 },
		{ "DELETED", SP_MBOX_F_DELETED, 1 },
		{ "DRAFT", SP_META_F_DRAFT, 1 },
		{ "FLAGGED", SP_META_F_FLAGGED, 1 },
		{ "SEEN", SP_META_F_SEEN, 1 },
		{ "UNANSWERED", SP_META_F_ANSWERED, 0 },
		{ "UNDELETED", SP_MBOX_F_DELETED, 0 },
		{ "UNDRAFT", SP_META_F_DRAFT, 0 },
		{ "UNFLAGGED", SP_META_F_FLAGGED, 0 },
		{ "UNSEEN", SP_META_F_SEEN, 0 },
		{ "OLD", 0, 1 },
		{ "NEW", 0, 0 },
		{ "RECENT", 0, 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcasecmp(k, t[i].name) == 0) {
			*bit = t[i].bit;
			*want = t[i].want;
			return 1;
		}
	return 0;
}

static int
has_keyword(const struct sp_mbox_msg *m, const char *kw)
{
	size_t i;

	if (strcasecmp(kw, "$Junk") == 0)
		return (m->flags & SP_META_F_JUNK) != 0;
	for (i = 0; i < m->nkeywords; i++)
		if (strcasecmp(m->keywords[i], kw) == 0)
			return 1;
	return 0;
}

static imap_msg *
body_of(struct ctx *x)
{
	char err[256];

	return imap_cmd_body(x->c, x->m->id, err, sizeof(err));
}

static int
cmp_id(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* 0 when the index rules the message out for needle s. */
static int
candidate(struct ctx *x, const char *s)
{
	struct needle *nd = NULL;
	size_t i;

	if (x->ix == NULL)
		return 1;
	for (i = 0; i < x->nneedles; i++)
		if (x->needles[i].s == s)
			nd = &x->needles[i];
	if (nd == NULL) {
		if (x->nneedles == NEEDLES_MAX)
			return 1;
		nd = &x->needles[x->nneedles++];
		nd->s = s;
		if (imap_index_query(x->ix, s, &nd->ids, &nd->n, &nd->all) != 0)
			nd->all = 1;
	}
	if (nd->all || !imap_index_has(x->ix, x->m->id))
		return 1;
	/* no posting at all: bsearch may not be given a NULL array */
	if (nd->n == 0 || nd->ids == NULL)
		return 0;
	return bsearch(&x->m->id, nd->ids, nd->n, sizeof(uint64_t),
	    cmp_id) != NULL;
}

/* The text the index and the scan share: the decoded text parts, and
 * for TEXT the header (not the raw body: base64 is not words). */
static char *
header_of(imap_msg *b)
{
	const char *d = (const char *)imap_msg_data(b);
	size_t n = imap_msg_size(b), i;

	for (i = 0; i + 3 < n; i++)
		if (memcmp(d + i, "\r\n\r\n", 4) == 0)
			return strndup(d, i + 2);
	for (i = 0; i + 1 < n; i++)
		if (memcmp(d + i, "\n\n", 2) == 0)
			return strndup(d, i + 1);
	return strndup(d, n);
}

/* Indexes the view's messages that are not yet (bodies from the cache,
 * or fetched once).  Errors leave the index out: the search scans. */
static void
index_view(struct ctx *x)
{
	struct imap_conn *c = x->c;
	imap_index *ix = imap_cmd_index(c);
	size_t i, added = 0;
	int rc = 0;

	if (ix == NULL)
		return;
	for (i = 0; i < c->nview && rc == 0; i++) {
		imap_msg *b;
		char err[256], *t, *h;
		size_t tl = 0;

		if (imap_index_has(ix, c->view[i].id))
			continue;
		if ((b = imap_cmd_body(c, c->view[i].id, err,
		    sizeof(err))) == NULL)
			continue;       /* unreadable: the scan says no */
		t = imap_msg_text(b, &tl);
		h = header_of(b);
		if (t && h) {
			size_t hl = strlen(h);
			char *all = malloc(tl + hl + 2);

			if (all) {
				memcpy(all, t, tl);
				all[tl] = '\n';
				memcpy(all + tl + 1, h, hl);
				rc = imap_index_add(ix, c->view[i].id, all,
				    tl + hl + 1);
				free(all);
			}
		}
		free(t);
		free(h);
		if (++added % INDEX_BATCH == 0 && rc == 0)
			rc = imap_index_flush(ix);
	}
	if (rc == 0)
		rc = imap_index_flush(ix);
	x->ix = rc == 0 ? ix : NULL;
}

static int
text_key(struct ctx *x, const char *k, const char *s, int *r)
{
	const struct sp_meta *me = &x->m->meta;
	imap_msg *b;

	if (strcasecmp(k, "FROM") == 0)
		*r = contains(me->from, s);
	else if (strcasecmp(k, "TO") == 0)
		*r = contains(me->to, s);
	else if (strcasecmp(k, "CC") == 0)
		*r = contains(me->cc, s);
	else if (strcasecmp(k, "BCC") == 0)
		*r = contains(me->bcc, s);
	else if (strcasecmp(k, "SUBJECT") == 0)
		*r = contains(me->subject, s);
	else if (!candidate(x, s))
		*r = 0;
	else if ((b = body_of(x)) == NULL)
		*r = 0;
	else {
		size_t len = 0;
		char *t = imap_msg_text(b, &len);

		*r = contains(t, s);
		if (!*r && strcasecmp(k, "TEXT") == 0) {
			/* TEXT covers the header too. */
			char *h = header_of(b);

			*r = contains(h, s);
			free(h);
		}
		free(t);
	}
	return 0;
}

static int
eval_key(struct ctx *x, const struct imap_arg *a, size_t n, size_t *pos,
    int *r)
{
	const struct imap_arg *k = next_arg(x, a, n, pos);
	const char *s, *name;
	uint32_t bit;
	uint64_t num;
	time_t d;
	int want, r2;

	*r = 1;
	if (k == NULL)
		return -1;
	if (++x->depth > 32) {
		x->error = "search nested too deeply";
		return -1;
	}
	if (k->type == IMAP_ARG_LIST) {
		size_t p = 0;

		if (k->n == 0) {
			x->error = "empty search list";
			goto bad;
		}
		while (p < k->n) {
			if (eval_key(x, k->list, k->n, &p, &r2) != 0)
				goto bad;
			*r = *r && r2;
		}
		goto ok;
	}
	if (k->type != IMAP_ARG_ATOM) {
		x->error = "search key expected";
		goto bad;
	}
	name = k->s;
	if (strcasecmp(name, "ALL") == 0)
		goto ok;
	if (flag_key(name, &bit, &want)) {
		if (x->m)
			*r = bit == 0 ? want : ((x->m->flags & bit) != 0) ==
			    want;
		goto ok;
	}
	if (strcasecmp(name, "NOT") == 0) {
		if (eval_key(x, a, n, pos, &r2) != 0)
			goto bad;
		*r = !r2;
		goto ok;
	}
	if (strcasecmp(name, "OR") == 0) {
		int r1;

		if (eval_key(x, a, n, pos, &r1) != 0 ||
		    eval_key(x, a, n, pos, &r2) != 0)
			goto bad;
		*r = r1 || r2;
		goto ok;
	}
	if (strcasecmp(name, "KEYWORD") == 0 ||
	    strcasecmp(name, "UNKEYWORD") == 0) {
		if ((s = next_string(x, a, n, pos)) == NULL)
			goto bad;
		if (x->m)
			*r = has_keyword(x->m, s) == (name[0] != 'U' &&
			    name[0] != 'u');
		goto ok;
	}
	if (strcasecmp(name, "LARGER") == 0 ||
	    strcasecmp(name, "SMALLER") == 0) {
		const struct imap_arg *v = next_arg(x, a, n, pos);

		if (v == NULL || imap_arg_number(v, &num) != 0) {
			x->error = "LARGER/SMALLER need a number";
			goto bad;
		}
		if (x->m)
			*r = (name[0] == 'L' || name[0] == 'l') ?
			    x->m->meta.size > num : x->m->meta.size < num;
		goto ok;
	}
	if (strcasecmp(name, "BEFORE") == 0 || strcasecmp(name, "ON") == 0 ||
	    strcasecmp(name, "SINCE") == 0 ||
	    strcasecmp(name, "SENTBEFORE") == 0 ||
	    strcasecmp(name, "SENTON") == 0 ||
	    strcasecmp(name, "SENTSINCE") == 0) {
		int sent = strncasecmp(name, "SENT", 4) == 0;
		const char *op = name + (sent ? 4 : 0);
		time_t day;

		if ((s = next_string(x, a, n, pos)) == NULL ||
		    parse_date(s, &d) != 0) {
			x->error = "bad search date";
			goto bad;
		}
		if (x->m) {
			day = day_of(sent ? x->m->meta.date :
			    x->m->received);
			if (strcasecmp(op, "BEFORE") == 0)
				*r = day < d;
			else if (strcasecmp(op, "ON") == 0)
				*r = day == d;
			else
				*r = day >= d;
		}
		goto ok;
	}
	if (strcasecmp(name, "FROM") == 0 || strcasecmp(name, "TO") == 0 ||
	    strcasecmp(name, "CC") == 0 || strcasecmp(name, "BCC") == 0 ||
	    strcasecmp(name, "SUBJECT") == 0 || strcasecmp(name, "BODY") == 0 ||
	    strcasecmp(name, "TEXT") == 0) {
		if ((s = next_string(x, a, n, pos)) == NULL)
			goto bad;
		if (x->m)
			text_key(x, name, s, r);
		goto ok;
	}
	if (strcasecmp(name, "HEADER") == 0) {
		const char *field = next_string(x, a, n, pos);
		imap_msg *b;

		if (field == NULL || (s = next_string(x, a, n, pos)) == NULL)
			goto bad;
		if (x->m) {
			char *v = (b = body_of(x)) ? imap_msg_header_all(b,
			    field) : NULL;

			*r = v != NULL && contains(v, s);
			free(v);
		}
		goto ok;
	}
	if (strcasecmp(name, "UID") == 0) {
		const struct imap_arg *v = next_arg(x, a, n, pos);
		struct imap_seqset set;

		if (v == NULL || v->type != IMAP_ARG_ATOM ||
		    imap_seqset_parse(v->s, &set) != 0 || set.saved) {
			x->error = "bad UID set";
			goto bad;
		}
		imap_seqset_resolve(&set, x->c->nview ?
		    x->c->view[x->c->nview - 1].uid : 0);
		if (x->m)
			*r = imap_seqset_contains(&set, x->m->uid);
		imap_seqset_finish(&set);
		goto ok;
	}
	if (strcasecmp(name, "MODSEQ") == 0) {
		const struct imap_arg *v = next_arg(x, a, n, pos);

		/* Optional entry name and type, then the number. */
		if (v && v->type == IMAP_ARG_QUOTED) {
			if (next_arg(x, a, n, pos) == NULL)
				goto bad;
			v = next_arg(x, a, n, pos);
		}
		if (v == NULL || imap_arg_number(v, &num) != 0) {
			x->error = "MODSEQ needs a number";
			goto bad;
		}
		x->c->condstore = 1;
		if (x->m)
			*r = x->m->modseq >= num;
		goto ok;
	}
	{
		struct imap_seqset set;

		if (imap_seqset_parse(name, &set) == 0 && !set.saved) {
			imap_seqset_resolve(&set, (uint32_t)x->c->nview);
			if (x->m)
				*r = imap_seqset_contains(&set,
				    (uint32_t)x->seq);
			imap_seqset_finish(&set);
			goto ok;
		}
		imap_seqset_finish(&set);
	}
	x->error = "unknown search key";
bad:
	x->depth--;
	return -1;
ok:
	x->depth--;
	return 0;
}

/* Whether any TEXT or BODY key is among args (lists and all). */
static int
uses_text(const struct imap_arg *a, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (a[i].type == IMAP_ARG_LIST && uses_text(a[i].list, a[i].n))
			return 1;
		if (imap_arg_atom_is(&a[i], "TEXT") ||
		    imap_arg_atom_is(&a[i], "BODY"))
			return 1;
	}
	return 0;
}

static void
needles_free(struct ctx *x)
{
	size_t i;

	for (i = 0; i < x->nneedles; i++)
		free(x->needles[i].ids);
	x->nneedles = 0;
}

int
imap_search_run(struct imap_conn *c, const struct imap_arg *args,
    size_t nargs, uint8_t *results, const char **error_r)
{
	sp_mbox *mb = bridge_account_mbox(c->acct);
	struct ctx x = { .c = c };
	size_t i, pos;
	int r, all;

	/* Syntax first. */
	for (pos = 0; pos < nargs;)
		if (eval_key(&x, args, nargs, &pos, &r) != 0) {
			*error_r = x.error;
			return -1;
		}
	if (uses_text(args, nargs))
		index_view(&x);
	for (i = 0; i < c->nview; i++) {
		x.m = sp_mbox_msg(mb, c->view[i].id);
		x.seq = i + 1;
		results[i] = 0;
		if (x.m == NULL || x.m->folder != c->folder)
			continue;
		all = 1;
		for (pos = 0; pos < nargs && all;) {
			if (eval_key(&x, args, nargs, &pos, &r) != 0) {
				*error_r = x.error;
				needles_free(&x);
				return -1;
			}
			all = r;
		}
		results[i] = (uint8_t)all;
	}
	needles_free(&x);
	return 0;
}
