/*
 * FETCH items from a message's bytes; see imap_fetch.h.
 *
 * The structure (where each entity's header and body begin and end) is
 * found here by scanning for the blank line and multipart boundaries,
 * because sections must be exact slices of the original bytes; GMime's
 * parser normalises what it keeps.  Header values go through GMime, which
 * knows every quirk of RFC 2045/2047/2231 and RFC 5322 addresses.
 */
#include "bridge/imap_fetch.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>
#include <sodium.h>

#define DEPTH_MAX 64
#define ENTITIES_MAX 10000

struct entity {
	size_t hdr_off, hdr_len;   /* header, blank line included */
	size_t body_off, body_len;
	size_t lines;              /* LF count in the body */
	char *type, *subtype;      /* lower case as parsed; never NULL */
	GMimeContentType *ct;      /* NULL when absent or unparseable */
	struct entity *child;      /* multipart parts or the encapsulated
	                            * message of a message/rfc822 */
	size_t nchild;
	int is_multipart, is_message;
};

struct imap_msg {
	uint8_t *data;
	size_t len;
	struct entity root;
	size_t nentities;
};

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;

static void
gmime_start(void)
{
	g_mime_init();
}

/* ---- headers ------------------------------------------------------------ */

/* Offset just past the line starting at off (after its LF) within end. */
static size_t
line_end(const uint8_t *d, size_t off, size_t end)
{
	const uint8_t *nl = memchr(d + off, '\n', end - off);

	return nl ? (size_t)(nl - d) + 1 : end;
}

/* Finds the header block of [off, end): up to and including the blank
 * line; no blank line means all header and an empty body. */
static void
split_header(const uint8_t *d, size_t off, size_t end, struct entity *e)
{
	size_t p = off;

	e->hdr_off = off;
	while (p < end) {
		size_t next = line_end(d, p, end);

		if (d[p] == '\n' || (d[p] == '\r' && p + 1 < end &&
		    d[p + 1] == '\n')) {
			e->hdr_len = next - off;
			e->body_off = next;
			e->body_len = end - next;
			return;
		}
		p = next;
	}
	e->hdr_len = end - off;
	e->body_off = end;
	e->body_len = 0;
}

/*
 * Calls fn for each field of the header block: name (not NUL-terminated,
 * nlen bytes) and the raw field [fstart, fend) with its folding and line
 * ends.  fn returns non-zero to stop.
 */
typedef int (*field_fn)(void *arg, const uint8_t *d, size_t fstart,
    size_t fend, size_t nlen);

static void
each_field(const uint8_t *d, size_t off, size_t len, field_fn fn, void *arg)
{
	size_t p = off, end = off + len;

	while (p < end) {
		size_t start = p, nlen;
		const uint8_t *colon;

		if (d[p] == '\n' || d[p] == '\r')
			break;          /* the blank line */
		p = line_end(d, p, end);
		while (p < end && (d[p] == ' ' || d[p] == '\t'))
			p = line_end(d, p, end);
		colon = memchr(d + start, ':', p - start);
		if (colon == NULL)
			continue;       /* not a field: skipped */
		nlen = (size_t)(colon - (d + start));
		while (nlen > 0 && (d[start + nlen - 1] == ' ' ||
		    d[start + nlen - 1] == '\t'))
			nlen--;
		if (fn(arg, d, start, p, nlen) != 0)
			return;
	}
}

struct find {
	const char *name;
	size_t nlen;
	char *value;            /* unfolded, malloc'd */
	int all;
};

/* The value of a raw field, unfolded (CR LF removed), trimmed. */
static char *
unfold(const uint8_t *d, size_t vstart, size_t fend)
{
	char *v = malloc(fend - vstart + 1);
	size_t n = 0, i;

	if (v == NULL)
		return NULL;
	for (i = vstart; i < fend; i++) {
		if (d[i] == '\r' || d[i] == '\n')
			continue;
		if (d[i] == 0)
			v[n++] = ' ';
		else
			v[n++] = (char)d[i];
	}
	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	v[n] = 0;
	i = 0;
	while (v[i] == ' ' || v[i] == '\t')
		i++;
	if (i)
		memmove(v, v + i, n - i + 1);
	return v;
}

static int
find_cb(void *arg, const uint8_t *d, size_t fstart, size_t fend,
    size_t nlen)
{
	struct find *f = arg;
	char *v, *joined;

	if (nlen != f->nlen || strncasecmp((const char *)d + fstart, f->name,
	    nlen) != 0)
		return 0;
	v = unfold(d, fstart + nlen + 1, fend);
	if (v == NULL)
		return 1;
	if (!f->all || f->value == NULL) {
		free(f->value);
		f->value = v;
		/* An odd name like "From " with the colon later is not
		 * ours: nlen matched exactly, so this is the field. */
		return !f->all;
	}
	if ((joined = malloc(strlen(f->value) + strlen(v) + 2)) != NULL) {
		sprintf(joined, "%s\n%s", f->value, v);
		free(f->value);
		f->value = joined;
	}
	free(v);
	return 0;
}

static char *
entity_header(const imap_msg *m, const struct entity *e, const char *name,
    int all)
{
	struct find f = { .name = name, .nlen = strlen(name), .all = all };

	each_field(m->data, e->hdr_off, e->hdr_len, find_cb, &f);
	return f.value;
}

char *
imap_msg_header(imap_msg *m, const char *name)
{
	return entity_header(m, &m->root, name, 0);
}

char *
imap_msg_header_all(imap_msg *m, const char *name)
{
	return entity_header(m, &m->root, name, 1);
}

/* ---- structure ---------------------------------------------------------- */

static char *
lower_dup(const char *s)
{
	char *d = strdup(s ? s : "");
	size_t i;

	if (d)
		for (i = 0; d[i]; i++)
			d[i] = (char)tolower((unsigned char)d[i]);
	return d;
}

static int parse_entity(imap_msg *m, struct entity *e, size_t off,
    size_t end, int depth, int digest_child);

/* Is the line at p "--boundary" (optionally "--" after), and which? */
static int
boundary_at(const uint8_t *d, size_t p, size_t end, const char *b,
    size_t blen, int *close_r)
{
	size_t q;

	if (end - p < blen + 2 || d[p] != '-' || d[p + 1] != '-' ||
	    memcmp(d + p + 2, b, blen) != 0)
		return 0;
	q = p + 2 + blen;
	*close_r = end - q >= 2 && d[q] == '-' && d[q + 1] == '-';
	if (*close_r)
		q += 2;
	while (q < end && (d[q] == ' ' || d[q] == '\t'))
		q++;
	return q == end || d[q] == '\n' || d[q] == '\r';
}

static int
add_child(struct entity *e)
{
	struct entity *nc;

	if ((nc = realloc(e->child, (e->nchild + 1) * sizeof(*nc))) == NULL)
		return -1;
	e->child = nc;
	memset(&e->child[e->nchild], 0, sizeof(*nc));
	e->nchild++;
	return 0;
}

static int
parse_multipart(imap_msg *m, struct entity *e, int depth)
{
	const uint8_t *d = m->data;
	const char *b = g_mime_content_type_get_parameter(e->ct, "boundary");
	size_t p = e->body_off, end = e->body_off + e->body_len, blen;
	size_t part_start = 0;
	int in_part = 0, close = 0, digest;

	if (b == NULL || (blen = strlen(b)) == 0 || blen > 200)
		return 0;       /* no boundary: no parts */
	digest = strcmp(e->subtype, "digest") == 0;
	while (p < end) {
		size_t next = line_end(d, p, end);

		if (boundary_at(d, p, end, b, blen, &close)) {
			if (in_part) {
				/* The CRLF before the boundary belongs to
				 * the boundary, not to the part. */
				size_t pend = p;

				if (pend > part_start && d[pend - 1] == '\n')
					pend--;
				if (pend > part_start && d[pend - 1] == '\r')
					pend--;
				if (add_child(e) != 0)
					return -1;
				if (parse_entity(m, &e->child[e->nchild - 1],
				    part_start, pend, depth + 1, digest) != 0)
					return -1;
			}
			if (close)
				return 0;
			in_part = 1;
			part_start = next;
		}
		p = next;
	}
	if (in_part && part_start < end) {
		/* Unterminated last part: up to the end. */
		if (add_child(e) != 0)
			return -1;
		return parse_entity(m, &e->child[e->nchild - 1], part_start,
		    end, depth + 1, digest);
	}
	return 0;
}

static int
parse_entity(imap_msg *m, struct entity *e, size_t off, size_t end,
    int depth, int digest_child)
{
	char *ctv;
	size_t i;

	split_header(m->data, off, end, e);
	/* Lines of text: a last line without a line end counts too. */
	for (i = e->body_off; i < e->body_off + e->body_len; i++)
		if (m->data[i] == '\n')
			e->lines++;
	if (e->body_len > 0 && m->data[e->body_off + e->body_len - 1] != '\n')
		e->lines++;
	m->nentities++;
	ctv = entity_header(m, e, "Content-Type", 0);
	if (ctv != NULL) {
		e->ct = g_mime_content_type_parse(NULL, ctv);
		free(ctv);
		if (e->ct && (g_mime_content_type_get_media_type(e->ct) ==
		    NULL || g_mime_content_type_get_media_subtype(e->ct) ==
		    NULL)) {
			g_object_unref(e->ct);
			e->ct = NULL;
		}
	}
	if (e->ct) {
		e->type = lower_dup(g_mime_content_type_get_media_type(e->ct));
		e->subtype = lower_dup(
		    g_mime_content_type_get_media_subtype(e->ct));
	} else {
		e->type = lower_dup(digest_child ? "message" : "text");
		e->subtype = lower_dup(digest_child ? "rfc822" : "plain");
	}
	if (e->type == NULL || e->subtype == NULL)
		return -1;
	if (depth >= DEPTH_MAX || m->nentities >= ENTITIES_MAX)
		return 0;
	if (strcmp(e->type, "multipart") == 0) {
		e->is_multipart = 1;
		if (e->ct == NULL)
			return 0;
		return parse_multipart(m, e, depth);
	}
	if (strcmp(e->type, "message") == 0 &&
	    (strcmp(e->subtype, "rfc822") == 0 ||
	    strcmp(e->subtype, "global") == 0)) {
		e->is_message = 1;
		if (add_child(e) != 0)
			return -1;
		return parse_entity(m, &e->child[0], e->body_off,
		    e->body_off + e->body_len, depth + 1, 0);
	}
	return 0;
}

static void
entity_finish(struct entity *e)
{
	size_t i;

	for (i = 0; i < e->nchild; i++)
		entity_finish(&e->child[i]);
	free(e->child);
	free(e->type);
	free(e->subtype);
	if (e->ct)
		g_object_unref(e->ct);
}

int
imap_msg_create(uint8_t *data, size_t len, imap_msg **m_r)
{
	imap_msg *m;

	pthread_once(&gmime_once, gmime_start);
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		sodium_memzero(data, len);
		free(data);
		return ENOMEM;
	}
	m->data = data;
	m->len = len;
	if (parse_entity(m, &m->root, 0, len, 0, 0) != 0) {
		imap_msg_destroy(m);
		return ENOMEM;
	}
	*m_r = m;
	return 0;
}

void
imap_msg_destroy(imap_msg *m)
{
	if (m == NULL)
		return;
	entity_finish(&m->root);
	if (m->data) {
		sodium_memzero(m->data, m->len);
		free(m->data);
	}
	free(m);
}

size_t
imap_msg_size(const imap_msg *m)
{
	return m->len;
}

const uint8_t *
imap_msg_data(const imap_msg *m)
{
	return m->data;
}

size_t
imap_msg_header_len(const imap_msg *m)
{
	return m->root.hdr_len;
}

/* ---- ENVELOPE ----------------------------------------------------------- */

static void
out_upper(struct imap_out *o, const char *s)
{
	char buf[256];
	size_t i, n = strlen(s);

	if (n >= sizeof(buf)) {
		imap_out_string(o, s, n);
		return;
	}
	for (i = 0; i <= n; i++)
		buf[i] = (char)toupper((unsigned char)s[i]);
	imap_out_string(o, buf, n);
}

static int
is_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return 0;
	return 1;
}

static void
out_mailbox(struct imap_out *o, InternetAddress *ia)
{
	const char *name = internet_address_get_name(ia);
	const char *addr = internet_address_mailbox_get_addr(
	    INTERNET_ADDRESS_MAILBOX(ia));
	const char *at = addr ? strrchr(addr, '@') : NULL;

	imap_out_str(o, "(");
	if (name && *name && !is_ascii(name)) {
		char *enc = g_mime_utils_header_encode_phrase(NULL, name,
		    "utf-8");

		imap_out_nstring(o, enc);
		g_free(enc);
	} else {
		imap_out_nstring(o, name && *name ? name : NULL);
	}
	imap_out_str(o, " NIL ");
	if (addr == NULL || *addr == 0) {
		imap_out_str(o, "\"\" NIL)");
		return;
	}
	if (at) {
		imap_out_string(o, addr, (size_t)(at - addr));
		imap_out_str(o, " ");
		imap_out_nstring(o, at + 1);
	} else {
		imap_out_nstring(o, addr);
		imap_out_str(o, " NIL");
	}
	imap_out_str(o, ")");
}

static void
out_addresses(struct imap_out *o, InternetAddressList *l, int *any)
{
	int i, n = l ? internet_address_list_length(l) : 0;

	for (i = 0; i < n; i++) {
		InternetAddress *ia = internet_address_list_get_address(l, i);

		if (INTERNET_ADDRESS_IS_GROUP(ia)) {
			const char *gname = internet_address_get_name(ia);

			if (!*any)
				imap_out_str(o, "(");
			*any = 1;
			imap_out_str(o, "(NIL NIL ");
			imap_out_nstring(o, gname ? gname : "");
			imap_out_str(o, " NIL)");
			out_addresses(o, internet_address_group_get_members(
			    INTERNET_ADDRESS_GROUP(ia)), any);
			imap_out_str(o, "(NIL NIL NIL NIL)");
		} else if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
			if (!*any)
				imap_out_str(o, "(");
			*any = 1;
			out_mailbox(o, ia);
		}
	}
}

static void
out_address_field(struct imap_out *o, const imap_msg *m,
    const struct entity *e, const char *name, const char *fallback)
{
	char *v = entity_header(m, e, name, 0);
	InternetAddressList *l = NULL;
	int any = 0;

	if (v == NULL && fallback)
		v = entity_header(m, e, fallback, 0);
	if (v != NULL)
		l = internet_address_list_parse(NULL, v);
	if (l)
		out_addresses(o, l, &any);
	if (any)
		imap_out_str(o, ")");
	else
		imap_out_str(o, "NIL");
	if (l)
		g_object_unref(l);
	free(v);
}

static void
out_field(struct imap_out *o, const imap_msg *m, const struct entity *e,
    const char *name)
{
	char *v = entity_header(m, e, name, 0);

	imap_out_nstring(o, v);
	free(v);
}

static void
entity_envelope(const imap_msg *m, const struct entity *e,
    struct imap_out *o)
{
	imap_out_str(o, "(");
	out_field(o, m, e, "Date");
	imap_out_str(o, " ");
	out_field(o, m, e, "Subject");
	imap_out_str(o, " ");
	out_address_field(o, m, e, "From", NULL);
	imap_out_str(o, " ");
	out_address_field(o, m, e, "Sender", "From");
	imap_out_str(o, " ");
	out_address_field(o, m, e, "Reply-To", "From");
	imap_out_str(o, " ");
	out_address_field(o, m, e, "To", NULL);
	imap_out_str(o, " ");
	out_address_field(o, m, e, "Cc", NULL);
	imap_out_str(o, " ");
	out_address_field(o, m, e, "Bcc", NULL);
	imap_out_str(o, " ");
	out_field(o, m, e, "In-Reply-To");
	imap_out_str(o, " ");
	out_field(o, m, e, "Message-ID");
	imap_out_str(o, ")");
}

void
imap_msg_envelope(imap_msg *m, struct imap_out *o)
{
	entity_envelope(m, &m->root, o);
}

/* ---- BODYSTRUCTURE ------------------------------------------------------ */

static void
out_params(struct imap_out *o, GMimeParamList *pl)
{
	int i, n = pl ? g_mime_param_list_length(pl) : 0, any = 0;

	for (i = 0; i < n; i++) {
		GMimeParam *pa = g_mime_param_list_get_parameter_at(pl, i);
		const char *name = g_mime_param_get_name(pa);
		const char *value = g_mime_param_get_value(pa);

		if (name == NULL || value == NULL)
			continue;
		imap_out_str(o, any ? " " : "(");
		any = 1;
		out_upper(o, name);
		imap_out_str(o, " ");
		imap_out_nstring(o, value);
	}
	imap_out_str(o, any ? ")" : "NIL");
}

static void
out_disposition(struct imap_out *o, const imap_msg *m,
    const struct entity *e)
{
	char *v = entity_header(m, e, "Content-Disposition", 0);
	GMimeContentDisposition *cd = v ? g_mime_content_disposition_parse(
	    NULL, v) : NULL;
	const char *disp = cd ? g_mime_content_disposition_get_disposition(
	    cd) : NULL;

	if (disp == NULL || *disp == 0) {
		imap_out_str(o, "NIL");
	} else {
		imap_out_str(o, "(");
		out_upper(o, disp);
		imap_out_str(o, " ");
		out_params(o, g_mime_content_disposition_get_parameters(cd));
		imap_out_str(o, ")");
	}
	if (cd)
		g_object_unref(cd);
	free(v);
}

/* body-fld-lang: one string or a list, from Content-Language. */
static void
out_language(struct imap_out *o, const imap_msg *m, const struct entity *e)
{
	char *v = entity_header(m, e, "Content-Language", 0), *tok, *save;
	int n = 0;

	if (v == NULL) {
		imap_out_str(o, "NIL");
		return;
	}
	for (tok = strtok_r(v, ", \t", &save); tok;
	    tok = strtok_r(NULL, ", \t", &save)) {
		imap_out_str(o, n ? " " : "(");
		imap_out_nstring(o, tok);
		n++;
	}
	imap_out_str(o, n ? ")" : "NIL");
	free(v);
}

static void
out_extension(struct imap_out *o, const imap_msg *m, const struct entity *e)
{
	imap_out_str(o, " ");
	out_disposition(o, m, e);
	imap_out_str(o, " ");
	out_language(o, m, e);
	imap_out_str(o, " ");
	out_field(o, m, e, "Content-Location");
}

static void
entity_structure(const imap_msg *m, const struct entity *e, int ext,
    struct imap_out *o)
{
	char *enc;
	size_t i;

	if (e->is_multipart) {
		imap_out_str(o, "(");
		if (e->nchild == 0)
			/* IMAP needs at least one part. */
			imap_out_str(o, "(\"TEXT\" \"PLAIN\" (\"CHARSET\" "
			    "\"US-ASCII\") NIL NIL \"7BIT\" 0 0)");
		for (i = 0; i < e->nchild; i++)
			entity_structure(m, &e->child[i], ext, o);
		imap_out_str(o, " ");
		out_upper(o, e->subtype);
		if (ext) {
			imap_out_str(o, " ");
			out_params(o, e->ct ? g_mime_content_type_get_parameters(
			    e->ct) : NULL);
			out_extension(o, m, e);
		}
		imap_out_str(o, ")");
		return;
	}
	imap_out_str(o, "(");
	out_upper(o, e->type);
	imap_out_str(o, " ");
	out_upper(o, e->subtype);
	imap_out_str(o, " ");
	if (e->ct)
		out_params(o, g_mime_content_type_get_parameters(e->ct));
	else if (strcmp(e->type, "text") == 0)
		imap_out_str(o, "(\"CHARSET\" \"US-ASCII\")");
	else
		imap_out_str(o, "NIL");
	imap_out_str(o, " ");
	out_field(o, m, e, "Content-ID");
	imap_out_str(o, " ");
	out_field(o, m, e, "Content-Description");
	imap_out_str(o, " ");
	enc = entity_header(m, e, "Content-Transfer-Encoding", 0);
	if (enc && *enc && strpbrk(enc, " \t;(") == NULL)
		out_upper(o, enc);
	else
		imap_out_str(o, "\"7BIT\"");
	free(enc);
	imap_out_printf(o, " %zu", e->body_len);
	if (e->is_message && e->nchild == 1) {
		imap_out_str(o, " ");
		entity_envelope(m, &e->child[0], o);
		imap_out_str(o, " ");
		entity_structure(m, &e->child[0], ext, o);
		imap_out_printf(o, " %zu", e->lines);
	} else if (strcmp(e->type, "text") == 0) {
		imap_out_printf(o, " %zu", e->lines);
	}
	if (ext) {
		imap_out_str(o, " ");
		out_field(o, m, e, "Content-MD5");
		out_extension(o, m, e);
	}
	imap_out_str(o, ")");
}

void
imap_msg_bodystructure(imap_msg *m, int extensible, struct imap_out *o)
{
	entity_structure(m, &m->root, extensible, o);
}

/* ---- sections ----------------------------------------------------------- */

/* The entity a part path names (RFC 3501 6.4.5), or NULL. */
static const struct entity *
resolve(const imap_msg *m, const uint32_t *part, unsigned n)
{
	const struct entity *e = &m->root;
	unsigned i;

	for (i = 0; i < n; i++) {
		if (i > 0 && e->is_message && e->nchild == 1)
			e = &e->child[0];
		if (e->is_multipart) {
			if (part[i] == 0 || part[i] > e->nchild)
				return NULL;
			e = &e->child[part[i] - 1];
		} else if (part[i] != 1) {
			return NULL;
		}
	}
	return e;
}

struct fields_filter {
	const struct imap_fetch_att *a;
	int not;
	struct imap_out *o;
};

static int
filter_cb(void *arg, const uint8_t *d, size_t fstart, size_t fend,
    size_t nlen)
{
	struct fields_filter *f = arg;
	size_t i;
	int match = 0;

	for (i = 0; i < f->a->nfields && !match; i++)
		match = strlen(f->a->fields[i]) == nlen &&
		    strncasecmp(f->a->fields[i], (const char *)d + fstart,
		    nlen) == 0;
	if (match != f->not)
		imap_out_add(f->o, d + fstart, fend - fstart);
	return 0;
}

static void
out_partial(struct imap_out *o, const struct imap_fetch_att *a,
    const void *p, size_t n)
{
	if (a->partial) {
		if (a->start >= n) {
			n = 0;
		} else {
			p = (const uint8_t *)p + a->start;
			n -= (size_t)a->start;
			if (a->count < n)
				n = (size_t)a->count;
		}
	}
	imap_out_literal(o, p, n);
}

/* Undoes the Content-Transfer-Encoding: 0, or 1 for an unknown one. */
static int
decode_body(const imap_msg *m, const struct entity *e, uint8_t **out_r,
    size_t *len_r)
{
	char *encv = entity_header(m, e, "Content-Transfer-Encoding", 0);
	GMimeContentEncoding enc = encv ?
	    g_mime_content_encoding_from_string(encv) :
	    GMIME_CONTENT_ENCODING_DEFAULT;
	GMimeStream *mem, *filt;
	GMimeFilter *f;
	GByteArray *arr;
	int unknown = encv && *encv && enc == GMIME_CONTENT_ENCODING_DEFAULT;

	free(encv);
	*out_r = NULL;
	*len_r = 0;
	if (unknown)
		return 1;
	if (enc != GMIME_CONTENT_ENCODING_BASE64 &&
	    enc != GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE &&
	    enc != GMIME_CONTENT_ENCODING_UUENCODE) {
		if ((*out_r = malloc(e->body_len + 1)) == NULL)
			return 0;
		memcpy(*out_r, m->data + e->body_off, e->body_len);
		*len_r = e->body_len;
		return 0;
	}
	mem = g_mime_stream_mem_new();
	arr = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
	filt = g_mime_stream_filter_new(mem);
	f = g_mime_filter_basic_new(enc, FALSE);
	g_mime_stream_filter_add(GMIME_STREAM_FILTER(filt), f);
	g_object_unref(f);
	g_mime_stream_write(filt, (const char *)m->data + e->body_off,
	    e->body_len);
	g_mime_stream_flush(filt);
	g_object_unref(filt);
	if ((*out_r = malloc(arr->len + 1)) != NULL && arr->len > 0) {
		memcpy(*out_r, arr->data, arr->len);
		*len_r = arr->len;
	}
	if (arr->len > 0)
		sodium_memzero(arr->data, arr->len);
	g_object_unref(mem);
	return 0;
}

static int
out_binary(const imap_msg *m, const struct imap_fetch_att *a,
    const struct entity *e, struct imap_out *o)
{
	uint8_t *b;
	size_t n;

	if (e == NULL || e->is_multipart) {
		imap_out_printf(o, "%s %s", a->label,
		    a->item == IMAP_FI_BINARY_SIZE ? "0" : "\"\"");
		return 0;
	}
	if (a->nparts == 0)
		e = NULL;   /* BINARY[]: the whole message, as is */
	if (e == NULL) {
		if (a->item == IMAP_FI_BINARY_SIZE) {
			imap_out_printf(o, "%s %zu", a->label, m->len);
		} else {
			imap_out_printf(o, "%s ", a->label);
			out_partial(o, a, m->data, m->len);
		}
		return 0;
	}
	if (decode_body(m, e, &b, &n) != 0)
		return 1;
	if (a->item == IMAP_FI_BINARY_SIZE) {
		imap_out_printf(o, "%s %zu", a->label, n);
	} else {
		imap_out_printf(o, "%s ", a->label);
		/* literal8 (RFC 3516) when it holds a NUL */
		if (memchr(b ? (const void *)b : "", 0, n) != NULL)
			imap_out_str(o, "~");
		out_partial(o, a, b ? (const void *)b : "", n);
	}
	if (b) {
		sodium_memzero(b, n);
		free(b);
	}
	return 0;
}

int
imap_msg_section(imap_msg *m, const struct imap_fetch_att *a,
    struct imap_out *o)
{
	const struct entity *e, *hm;
	struct imap_out tmp;
	struct fields_filter ff;

	switch (a->item) {
	case IMAP_FI_RFC822:
		imap_out_str(o, "RFC822 ");
		imap_out_literal(o, m->data, m->len);
		return 0;
	case IMAP_FI_RFC822_HEADER:
		imap_out_str(o, "RFC822.HEADER ");
		imap_out_literal(o, m->data + m->root.hdr_off,
		    m->root.hdr_len);
		return 0;
	case IMAP_FI_RFC822_TEXT:
		imap_out_str(o, "RFC822.TEXT ");
		imap_out_literal(o, m->data + m->root.body_off,
		    m->root.body_len);
		return 0;
	default:
		break;
	}
	e = resolve(m, a->part, a->nparts);
	if (a->item == IMAP_FI_BINARY || a->item == IMAP_FI_BINARY_SIZE)
		return out_binary(m, a, e, o);
	imap_out_printf(o, "%s ", a->label);
	if (e == NULL) {
		imap_out_str(o, "\"\"");
		return 0;
	}
	if (a->text == IMAP_ST_ALL) {
		if (a->nparts == 0)
			out_partial(o, a, m->data, m->len);
		else
			out_partial(o, a, m->data + e->body_off, e->body_len);
		return 0;
	}
	if (a->text == IMAP_ST_MIME) {
		out_partial(o, a, m->data + e->hdr_off, e->hdr_len);
		return 0;
	}
	/* HEADER, HEADER.FIELDS[.NOT], TEXT: of the message itself or of
	 * an encapsulated message. */
	hm = e;
	if (a->nparts > 0) {
		if (!e->is_message || e->nchild != 1) {
			imap_out_str(o, "\"\"");
			return 0;
		}
		hm = &e->child[0];
	}
	switch (a->text) {
	case IMAP_ST_HEADER:
		out_partial(o, a, m->data + hm->hdr_off, hm->hdr_len);
		break;
	case IMAP_ST_TEXT:
		out_partial(o, a, m->data + hm->body_off, hm->body_len);
		break;
	default:
		imap_out_init(&tmp);
		ff.a = a;
		ff.not = a->text == IMAP_ST_HEADER_FIELDS_NOT;
		ff.o = &tmp;
		each_field(m->data, hm->hdr_off, hm->hdr_len, filter_cb, &ff);
		imap_out_add(&tmp, "\r\n", 2);
		if (imap_out_failed(&tmp))
			o->failed = 1;
		out_partial(o, a, tmp.p, tmp.len);
		imap_out_finish(&tmp);
		break;
	}
	return 0;
}

/* ---- text for search ---------------------------------------------------- */

static void
text_of(const imap_msg *m, const struct entity *e, struct imap_out *o)
{
	size_t i;

	if (e->is_multipart || e->is_message) {
		for (i = 0; i < e->nchild; i++)
			text_of(m, &e->child[i], o);
		if (e->is_message && e->nchild == 1) {
			char *s = entity_header(m, &e->child[0], "Subject", 0);

			if (s) {
				imap_out_str(o, s);
				imap_out_str(o, "\n");
				free(s);
			}
		}
		return;
	}
	if (strcmp(e->type, "text") == 0) {
		const char *cs = e->ct ? g_mime_content_type_get_parameter(
		    e->ct, "charset") : NULL;
		uint8_t *b;
		size_t n;

		if (decode_body(m, e, &b, &n) != 0 || b == NULL)
			return;
		if (cs && strcasecmp(cs, "utf-8") != 0 &&
		    strcasecmp(cs, "us-ascii") != 0) {
			char *u = g_mime_utils_decode_8bit(NULL,
			    (const char *)b, n);

			if (u) {
				imap_out_str(o, u);
				g_free(u);
			}
		} else {
			imap_out_add(o, b, n);
		}
		imap_out_str(o, "\n");
		sodium_memzero(b, n);
		free(b);
	}
}

char *
imap_msg_text(imap_msg *m, size_t *len_r)
{
	struct imap_out o;
	char *r;

	imap_out_init(&o);
	text_of(m, &m->root, &o);
	if (imap_out_failed(&o) || o.p == NULL) {
		imap_out_finish(&o);
		return NULL;
	}
	r = o.p;
	*len_r = o.len;
	return r;  /* o.p is malloc'd and NUL-terminated */
}
