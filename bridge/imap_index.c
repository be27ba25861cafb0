/*
 * The search index; see imap_index.h.
 */
#include "bridge/imap_index.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <sodium.h>

#define BUCKET_SHIFT 16
#define LONG_MARK "\x01"   /* never a term: not a word byte */

struct imap_index {
	sp_cache *cache;
	GHashTable *dict;        /* term -> 1 (keys owned) */
	GHashTable *done;        /* indexed ids (as pointers) */
	uint32_t nbatches;
	uint64_t max_id;
	GHashTable *pend;        /* term -> GArray of ids (keys owned) */
	GArray *pend_ids;
};

static int
word_byte(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9') || ch >= 0x80;
}

static char
fold(unsigned char ch)
{
	return (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
}

static void
free_array(gpointer p)
{
	g_array_free(p, TRUE);
}

/* ---- varints ------------------------------------------------------------ */

static void
put_varint(GByteArray *b, uint64_t v)
{
	uint8_t c;

	do {
		c = v & 0x7f;
		v >>= 7;
		if (v)
			c |= 0x80;
		g_byte_array_append(b, &c, 1);
	} while (v);
}

/* Decodes ascending deltas into a; -1 on a malformed value. */
static int
decode_postings(const uint8_t *p, size_t n, GArray *a)
{
	uint64_t prev = 0, v;
	size_t i = 0;
	int shift;

	while (i < n) {
		v = 0;
		for (shift = 0; i < n && shift < 64; shift += 7) {
			v |= (uint64_t)(p[i] & 0x7f) << shift;
			if (!(p[i++] & 0x80))
				break;
		}
		prev += v;
		g_array_append_val(a, prev);
	}
	return 0;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Sorts and drops duplicates. */
static void
sort_uniq(GArray *a)
{
	size_t i, k = 0;
	uint64_t *v = (uint64_t *)(void *)a->data;

	if (a->len == 0)
		return;
	qsort(v, a->len, sizeof(*v), cmp_u64);
	for (i = 1; i < a->len; i++)
		if (v[i] != v[k])
			v[++k] = v[i];
	g_array_set_size(a, k + 1);
}

/* ---- keys --------------------------------------------------------------- */

static size_t
postings_key(uint8_t *key, uint32_t bucket, const char *term)
{
	size_t tl = strlen(term);

	key[0] = 'P';
	memcpy(key + 1, &bucket, 4);
	memcpy(key + 5, term, tl);
	return 5 + tl;
}

/* ---- open --------------------------------------------------------------- */

static int
load_batch(imap_index *ix, uint32_t n)
{
	uint8_t key[5] = { 'B' }, *v = NULL;
	size_t len = 0, off, i;
	uint32_t nids;
	int rc;

	memcpy(key + 1, &n, 4);
	if ((rc = sp_cache_get(ix->cache, SP_CACHE_T_INDEX, key, sizeof(key),
	    &v, &len)) != 0)
		return rc;
	rc = EINVAL;
	if (len < 4)
		goto out;
	memcpy(&nids, v, 4);
	if ((len - 4) / 8 < nids)
		goto out;
	for (i = 0; i < nids; i++) {
		uint64_t id;

		memcpy(&id, v + 4 + 8 * i, 8);
		g_hash_table_add(ix->done, GSIZE_TO_POINTER(id));
		if (id > ix->max_id)
			ix->max_id = id;
	}
	for (off = 4 + 8 * (size_t)nids; off < len;) {
		const char *t = (const char *)v + off;
		size_t tl = strnlen(t, len - off);

		if (tl == len - off || tl == 0)
			goto out;
		g_hash_table_add(ix->dict, g_strndup(t, tl));
		off += tl + 1;
	}
	rc = 0;
out:
	sodium_memzero(v, len);
	free(v);
	return rc;
}

int
imap_index_open(sp_cache *cache, imap_index **ix_r)
{
	imap_index *ix = calloc(1, sizeof(*ix));
	uint8_t *v = NULL;
	size_t len = 0;
	uint32_t i;
	int rc;

	if (ix == NULL)
		return ENOMEM;
	ix->cache = cache;
	ix->dict = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	ix->done = g_hash_table_new(g_direct_hash, g_direct_equal);
	ix->pend = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
	    free_array);
	ix->pend_ids = g_array_new(FALSE, FALSE, sizeof(uint64_t));
	rc = sp_cache_get(cache, SP_CACHE_T_INDEX, "H", 1, &v, &len);
	if (rc == 0 && len == 4)
		memcpy(&ix->nbatches, v, 4);
	free(v);
	if (rc != 0 && rc != ENOENT)
		goto fail;
	for (i = 0; i < ix->nbatches; i++)
		if ((rc = load_batch(ix, i)) != 0)
			goto fail;
	*ix_r = ix;
	return 0;
fail:
	imap_index_close(ix);
	return rc;
}

void
imap_index_close(imap_index *ix)
{
	if (ix == NULL)
		return;
	g_hash_table_destroy(ix->dict);
	g_hash_table_destroy(ix->done);
	g_hash_table_destroy(ix->pend);
	g_array_free(ix->pend_ids, TRUE);
	free(ix);
}

int
imap_index_has(const imap_index *ix, uint64_t id)
{
	return g_hash_table_contains(ix->done, GSIZE_TO_POINTER(id));
}

void
imap_index_stats(const imap_index *ix, size_t *msgs_r, size_t *terms_r)
{
	*msgs_r = g_hash_table_size(ix->done);
	*terms_r = g_hash_table_size(ix->dict);
}

/* ---- adding ------------------------------------------------------------- */

static void
pend_term(imap_index *ix, GHashTable *seen, const char *term, uint64_t id)
{
	GArray *a;

	if (g_hash_table_contains(seen, term))
		return;
	g_hash_table_add(seen, g_strdup(term));
	if ((a = g_hash_table_lookup(ix->pend, term)) == NULL) {
		a = g_array_new(FALSE, FALSE, sizeof(uint64_t));
		g_hash_table_insert(ix->pend, g_strdup(term), a);
	}
	g_array_append_val(a, id);
}

int
imap_index_add(imap_index *ix, uint64_t id, const char *text, size_t len)
{
	GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal,
	    g_free, NULL);
	char term[IMAP_INDEX_TERM_MAX + 1];
	size_t i = 0, k;

	if (id == 0) {
		g_hash_table_destroy(seen);
		return EINVAL;
	}
	while (i < len) {
		while (i < len && !word_byte((unsigned char)text[i]))
			i++;
		for (k = 0; i < len && word_byte((unsigned char)text[i]); i++)
			if (k <= IMAP_INDEX_TERM_MAX) {
				if (k < IMAP_INDEX_TERM_MAX)
					term[k] = fold((unsigned char)text[i]);
				k++;
			}
		if (k == 0)
			continue;
		if (k > IMAP_INDEX_TERM_MAX) {
			pend_term(ix, seen, LONG_MARK, id);
			continue;
		}
		term[k] = 0;
		pend_term(ix, seen, term, id);
	}
	g_hash_table_destroy(seen);
	/* A message without words is still indexed (it matches no word). */
	g_array_append_val(ix->pend_ids, id);
	g_hash_table_add(ix->done, GSIZE_TO_POINTER(id));
	if (id > ix->max_id)
		ix->max_id = id;
	return 0;
}

/* Merges ids (sorted) into the stored postings of term, bucket by
 * bucket. */
static int
merge_term(sp_cache_batch *b, const char *term, GArray *ids)
{
	uint8_t key[5 + IMAP_INDEX_TERM_MAX + 1], *v = NULL;
	const uint64_t *p = (const uint64_t *)(const void *)ids->data;
	size_t i = 0, j, len, klen;
	int rc = 0;

	while (i < ids->len && rc == 0) {
		uint32_t bucket = (uint32_t)(p[i] >> BUCKET_SHIFT);
		GArray *all = g_array_new(FALSE, FALSE, sizeof(uint64_t));
		GByteArray *out = g_byte_array_new();
		uint64_t prev = 0;

		klen = postings_key(key, bucket, term);
		rc = sp_cache_batch_get(b, SP_CACHE_T_INDEX, key, klen, &v,
		    &len);
		if (rc == 0) {
			(void)decode_postings(v, len, all);
			free(v);
			v = NULL;
		} else if (rc == ENOENT) {
			rc = 0;
		}
		for (; i < ids->len && (p[i] >> BUCKET_SHIFT) == bucket; i++)
			g_array_append_val(all, p[i]);
		sort_uniq(all);
		for (j = 0; j < all->len; j++) {
			uint64_t id = g_array_index(all, uint64_t, j);

			put_varint(out, id - prev);
			prev = id;
		}
		if (rc == 0)
			rc = sp_cache_batch_put(b, SP_CACHE_T_INDEX, key, klen,
			    out->data, out->len);
		g_array_free(all, TRUE);
		g_byte_array_free(out, TRUE);
	}
	return rc;
}

int
imap_index_flush(imap_index *ix)
{
	sp_cache_batch *b = NULL;
	GByteArray *rec;
	GHashTableIter it;
	gpointer k, v;
	uint8_t key[5] = { 'B' };
	uint32_t nids = ix->pend_ids->len;
	int rc;

	if (nids == 0)
		return 0;
	if ((rc = sp_cache_begin(ix->cache, &b)) != 0)
		return rc;
	rec = g_byte_array_new();
	g_byte_array_append(rec, (const guint8 *)&nids, 4);
	g_byte_array_append(rec, (const guint8 *)ix->pend_ids->data,
	    nids * 8);
	g_hash_table_iter_init(&it, ix->pend);
	while (rc == 0 && g_hash_table_iter_next(&it, &k, &v)) {
		sort_uniq(v);
		rc = merge_term(b, k, v);
		if (!g_hash_table_contains(ix->dict, k)) {
			g_byte_array_append(rec, k, (guint)strlen(k) + 1);
			g_hash_table_add(ix->dict, g_strdup(k));
		}
	}
	memcpy(key + 1, &ix->nbatches, 4);
	if (rc == 0)
		rc = sp_cache_batch_put(b, SP_CACHE_T_INDEX, key, sizeof(key),
		    rec->data, rec->len);
	ix->nbatches++;
	if (rc == 0)
		rc = sp_cache_batch_put(b, SP_CACHE_T_INDEX, "H", 1,
		    &ix->nbatches, 4);
	if (rc == 0)
		rc = sp_cache_commit(b);
	else
		sp_cache_abort(b);
	if (rc != 0)
		ix->nbatches--;
	g_byte_array_free(rec, TRUE);
	g_hash_table_remove_all(ix->pend);
	g_array_set_size(ix->pend_ids, 0);
	return rc;
}

/* ---- querying ----------------------------------------------------------- */

static int
term_postings(imap_index *ix, const char *term, GArray *out)
{
	uint8_t key[5 + IMAP_INDEX_TERM_MAX + 1], *v;
	uint32_t bucket, last = (uint32_t)(ix->max_id >> BUCKET_SHIFT);
	size_t len, klen;
	int rc;

	for (bucket = 0; bucket <= last; bucket++) {
		klen = postings_key(key, bucket, term);
		rc = sp_cache_get(ix->cache, SP_CACHE_T_INDEX, key, klen, &v,
		    &len);
		if (rc == ENOENT)
			continue;
		if (rc != 0)
			return rc;
		(void)decode_postings(v, len, out);
		free(v);
	}
	return 0;
}

static int
ends_with(const char *s, size_t sl, const char *t, size_t tl)
{
	return sl >= tl && memcmp(s + sl - tl, t, tl) == 0;
}

/* The ids of one query word: an exact term, or every dictionary term
 * that the word can be part of given which of its sides are open.
 * 1 when it does not narrow (too many terms). */
static int
word_ids(imap_index *ix, const char *w, int left_open, int right_open,
    GArray *out, int *rc_r)
{
	GHashTableIter it;
	gpointer k;
	GPtrArray *terms;
	size_t wl = strlen(w), i;

	*rc_r = 0;
	if (!left_open && !right_open) {
		*rc_r = term_postings(ix, w, out);
		return 0;
	}
	terms = g_ptr_array_new();
	g_hash_table_iter_init(&it, ix->dict);
	while (g_hash_table_iter_next(&it, &k, NULL)) {
		const char *t = k;
		size_t tl = strlen(t);
		int hit;

		if (left_open && right_open)
			hit = strstr(t, w) != NULL;
		else if (left_open)
			hit = ends_with(t, tl, w, wl);
		else
			hit = tl >= wl && memcmp(t, w, wl) == 0;
		if (hit)
			g_ptr_array_add(terms, k);
		if (terms->len > IMAP_INDEX_OPEN_TERMS) {
			g_ptr_array_free(terms, TRUE);
			return 1;
		}
	}
	for (i = 0; i < terms->len && *rc_r == 0; i++)
		*rc_r = term_postings(ix, terms->pdata[i], out);
	g_ptr_array_free(terms, TRUE);
	return 0;
}

/* a := a ∩ b (both sorted, unique). */
static void
intersect(GArray *a, const GArray *b)
{
	size_t i = 0, j = 0, k = 0;
	uint64_t *x = (uint64_t *)(void *)a->data;
	const uint64_t *y = (const uint64_t *)(const void *)b->data;

	while (i < a->len && j < b->len) {
		if (x[i] < y[j])
			i++;
		else if (x[i] > y[j])
			j++;
		else {
			x[k++] = x[i++];
			j++;
		}
	}
	g_array_set_size(a, k);
}

int
imap_index_query(imap_index *ix, const char *needle, uint64_t **ids_r,
    size_t *n_r, int *all_r)
{
	GArray *acc = NULL, *cur;
	char w[IMAP_INDEX_TERM_MAX + 1];
	size_t nl = strlen(needle), i = 0, k, start;
	int rc = 0, narrowed = 0;

	*ids_r = NULL;
	*n_r = 0;
	*all_r = 0;
	while (i < nl && rc == 0) {
		while (i < nl && !word_byte((unsigned char)needle[i]))
			i++;
		start = i;
		for (k = 0; i < nl && word_byte((unsigned char)needle[i]); i++)
			if (k++ < IMAP_INDEX_TERM_MAX)
				w[k - 1] = fold((unsigned char)needle[i]);
		if (k == 0)
			break;
		if (k > IMAP_INDEX_TERM_MAX)
			continue;       /* only long-word messages: see below */
		w[k] = 0;
		cur = g_array_new(FALSE, FALSE, sizeof(uint64_t));
		if (word_ids(ix, w, start == 0, i == nl, cur, &rc) != 0) {
			g_array_free(cur, TRUE);
			continue;       /* this word does not narrow */
		}
		sort_uniq(cur);
		if (acc == NULL) {
			acc = cur;
		} else {
			intersect(acc, cur);
			g_array_free(cur, TRUE);
		}
		narrowed = 1;
	}
	if (rc != 0 || !narrowed) {
		if (acc)
			g_array_free(acc, TRUE);
		*all_r = rc == 0;
		return rc;
	}
	/* Messages with words too long to index may hold anything. */
	cur = g_array_new(FALSE, FALSE, sizeof(uint64_t));
	rc = term_postings(ix, LONG_MARK, cur);
	g_array_append_vals(acc, cur->data, cur->len);
	g_array_free(cur, TRUE);
	sort_uniq(acc);
	if (rc == 0 && acc->len > 0) {
		if ((*ids_r = malloc(acc->len * sizeof(uint64_t))) == NULL)
			rc = ENOMEM;
		else {
			memcpy(*ids_r, acc->data, acc->len * sizeof(uint64_t));
			*n_r = acc->len;
		}
	}
	g_array_free(acc, TRUE);
	return rc;
}
