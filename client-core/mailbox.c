/*
 * The mailbox model over the log (mailbox.h; records in docs/format.md
 * §12).
 *
 * In memory: every live message (sorted by id, which is also arrival
 * order in the log) and every folder with its messages sorted by uid.
 * In the cache (every value encrypted by cache.c):
 *   T_MESSAGE  id u64            -> message state (msg_encode)
 *   T_STATE    "mbox_ids" || b   -> the live ids in bucket b (ids >> 12),
 *                                   sorted u64s; lets open() find every
 *                                   message without a table scan (cache
 *                                   keys are hashed, so there is none)
 *   T_MAILBOX  "folders"         -> every folder (folders_encode)
 *   T_STATE    "mbox_applied"    -> u64: last log seq applied to the model
 *   T_BODY     id u64            -> sig u8 || signer[32] || RFC 5322 bytes
 * A batch of records is applied in one cache batch with "mbox_applied",
 * so the model never disagrees with the log after a crash.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

#include "client-core/mailbox.h"
#include "client-core/syncer.h"
#include "crypto/bytes.h"
#include "crypto/envelope.h"
#include "crypto/text.h"
#include "proto/frame.h"
#include "proto/summary.h"

#define BUCKET_SHIFT 12
#define APPLY_BATCH 512          /* records per cache batch */
#define CHANGE_VERSION 1
#define BLOB_CHUNK 65536
#define APPEND_MAX 128           /* records per APPEND we send */
#define REC_MAX (1024 * 1024)    /* a log record (protocol.md §7) */

enum {
	OP_FLAGS = 1,
	OP_MOVE = 2,
	OP_DELETE = 3,
	OP_FOLDER_CREATE = 4,
	OP_FOLDER_RENAME = 5,
	OP_FOLDER_DELETE = 6,
	OP_SUBSCRIBE = 7,
	OP_SNAPSHOT = 8,
};

#define SNAP_PART_MAX (900 * 1024)  /* payload per snapshot record */
#define COMPACT_MIN 5000            /* records before auto-compaction */

struct msg {
	struct sp_mbox_msg m;        /* first: pointers are handed out */
	int needs_ref;               /* take a blob reference (sync) */
	int dirty;
};

struct folder {
	struct sp_mbox_folder f;
	struct msg **v;              /* by uid */
	size_t n, cap;
};

struct sp_mbox {
	sp_cache *cache;
	const sp_keyset *ks;
	struct folder *folders;      /* by id */
	size_t nfolders;
	struct sp_mbox_folder *fview;
	struct msg **msgs;           /* by id */
	size_t nmsgs, cap;
	uint64_t applied, skipped;
	sp_mbox_listener listener;
	void *listener_arg;
	void (*progress)(void *, uint64_t, uint64_t);
	void *progress_arg;
	/* during an apply */
	struct msg **dirty;
	size_t ndirty, dirty_cap;
	uint64_t *gone;              /* ids deleted in this batch */
	size_t ngone, gone_cap;
	int folders_dirty;
	/* snapshot loading (format.md §12.5) */
	int snap_wait;               /* the log before us is gone: load the
	                              * snapshot that starts it */
	uint64_t snap_base;
	uint32_t snap_next;
	uint64_t log_start;          /* first seq of the log we have */
	int compacting;
};

static const char *const system_names[] = {
	NULL, "INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive",
};

/* ---- small helpers ------------------------------------------------------ */

static int
grow(void **p, size_t *cap, size_t need, size_t size)
{
	size_t n = *cap ? *cap : 16;
	void *q;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	if ((q = realloc(*p, n * size)) == NULL)
		return SP_ENOMEM;
	*p = q;
	*cap = n;
	return 0;
}

static void
set_err(char *err, size_t errlen, const char *what, int rc)
{
	if (err && errlen)
		snprintf(err, errlen, "%s: %s", what, sp_strerror(rc));
}

static struct folder *
folder_get(sp_mbox *mb, uint32_t id)
{
	size_t lo = 0, hi = mb->nfolders;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (mb->folders[mid].f.id == id)
			return &mb->folders[mid];
		if (mb->folders[mid].f.id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static struct folder *
folder_named(sp_mbox *mb, const char *name)
{
	size_t i;

	for (i = 0; i < mb->nfolders; i++) {
		const char *n = mb->folders[i].f.name;

		if (mb->folders[i].f.id == SP_MBOX_INBOX ?
		    strcasecmp(n, name) == 0 : strcmp(n, name) == 0)
			return &mb->folders[i];
	}
	return NULL;
}

static size_t
msg_index(const sp_mbox *mb, uint64_t id, int *found)
{
	size_t lo = 0, hi = mb->nmsgs;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (mb->msgs[mid]->m.id == id) {
			*found = 1;
			return mid;
		}
		if (mb->msgs[mid]->m.id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = 0;
	return lo;
}

static struct msg *
msg_get(sp_mbox *mb, uint64_t id)
{
	int found;
	size_t i = msg_index(mb, id, &found);

	return found ? mb->msgs[i] : NULL;
}

static void
msg_free(struct msg *x)
{
	size_t i;

	if (x == NULL)
		return;
	for (i = 0; i < x->m.nkeywords; i++)
		free(x->m.keywords[i]);
	free(x->m.keywords);
	sp_meta_finish(&x->m.meta);
	free(x);
}

static int
folder_insert(sp_mbox *mb, uint32_t id, const char *name, uint32_t uidnext,
    uint64_t hms, int subscribed)
{
	struct folder *f;
	size_t i, cap = mb->nfolders;
	void *p = mb->folders;
	char *nm;

	if ((nm = strdup(name)) == NULL)
		return SP_ENOMEM;
	/* exact growth: folders are few */
	if ((p = realloc(p, (cap + 1) * sizeof(*f))) == NULL) {
		free(nm);
		return SP_ENOMEM;
	}
	mb->folders = p;
	for (i = mb->nfolders; i > 0 && mb->folders[i - 1].f.id > id; i--)
		mb->folders[i] = mb->folders[i - 1];
	f = &mb->folders[i];
	memset(f, 0, sizeof(*f));
	f->f.id = id;
	f->f.name = nm;
	f->f.uidnext = uidnext ? uidnext : 1;
	f->f.highest_modseq = hms;
	f->f.subscribed = subscribed;
	mb->nfolders++;
	free(mb->fview);
	mb->fview = NULL;
	mb->folders_dirty = 1;
	return 0;
}

static void
folder_remove(sp_mbox *mb, struct folder *f)
{
	size_t i = (size_t)(f - mb->folders);

	free(f->f.name);
	free(f->v);
	memmove(&mb->folders[i], &mb->folders[i + 1],
	    (mb->nfolders - i - 1) * sizeof(*f));
	mb->nfolders--;
	free(mb->fview);
	mb->fview = NULL;
	mb->folders_dirty = 1;
}

/* A message enters folder f with the next uid. */
static int
folder_add(struct folder *f, struct msg *x)
{
	if (grow((void **)&f->v, &f->cap, f->n + 1, sizeof(*f->v)) != 0)
		return SP_ENOMEM;
	x->m.folder = f->f.id;
	x->m.uid = f->f.uidnext++;
	f->v[f->n++] = x;
	return 0;
}

static void
folder_drop(struct folder *f, struct msg *x)
{
	size_t lo = 0, hi = f->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (f->v[mid]->m.uid == x->m.uid) {
			memmove(&f->v[mid], &f->v[mid + 1],
			    (f->n - mid - 1) * sizeof(*f->v));
			f->n--;
			return;
		}
		if (f->v[mid]->m.uid < x->m.uid)
			lo = mid + 1;
		else
			hi = mid;
	}
}

static int
mark_dirty(sp_mbox *mb, struct msg *x)
{
	if (x->dirty)
		return 0;
	if (grow((void **)&mb->dirty, &mb->dirty_cap, mb->ndirty + 1,
	    sizeof(*mb->dirty)) != 0)
		return SP_ENOMEM;
	x->dirty = 1;
	mb->dirty[mb->ndirty++] = x;
	return 0;
}

static void
emit(sp_mbox *mb, enum sp_mbox_event ev, uint32_t folder,
    const struct sp_mbox_msg *m)
{
	if (mb->listener)
		mb->listener(mb->listener_arg, ev, folder, m);
}

/* ---- keywords ------------------------------------------------------------ */

static int
keyword_ok(const char *k)
{
	size_t i, n = strlen(k);

	if (n == 0 || n > SP_MBOX_KEYWORD_MAX || k[0] == '\\')
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)k[i];

		/* an IMAP atom: no specials, no space, no controls */
		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c))
			return 0;
	}
	return 1;
}

static int
keyword_has(const struct msg *x, const char *k)
{
	size_t i;

	for (i = 0; i < x->m.nkeywords; i++)
		if (strcasecmp(x->m.keywords[i], k) == 0)
			return 1;
	return 0;
}

static int
keyword_add(struct msg *x, const char *k)
{
	char **v;

	if (!keyword_ok(k) || keyword_has(x, k) ||
	    x->m.nkeywords >= SP_MBOX_KEYWORDS_MAX)
		return 0;
	v = realloc(x->m.keywords, (x->m.nkeywords + 1) * sizeof(*v));
	if (v == NULL)
		return SP_ENOMEM;
	x->m.keywords = v;
	if ((v[x->m.nkeywords] = strdup(k)) == NULL)
		return SP_ENOMEM;
	x->m.nkeywords++;
	return 0;
}

static void
keyword_del(struct msg *x, const char *k)
{
	size_t i;

	for (i = 0; i < x->m.nkeywords; i++) {
		if (strcasecmp(x->m.keywords[i], k) != 0)
			continue;
		free(x->m.keywords[i]);
		x->m.keywords[i] = x->m.keywords[--x->m.nkeywords];
		return;
	}
}

/* ---- persistence ----------------------------------------------------------
 *
 * message value: version u8 (1) | folder u32 | uid u32 | flags u32 |
 *   modseq u64 | received u64 | own u8 | needs_ref u8 | nkw u8 |
 *   (len u8 | keyword)* | meta_len u32 | metadata record (crypto/meta.h)
 */

static int
msg_encode(const struct msg *x, uint8_t **out_r, size_t *len_r)
{
	uint8_t *meta = NULL, *out, *p;
	size_t mlen = 0, n = 1 + 4 + 4 + 4 + 8 + 8 + 3 + 4, i;
	int rc;

	if ((rc = sp_meta_encode(&x->m.meta, &meta, &mlen)) != 0)
		return rc;
	for (i = 0; i < x->m.nkeywords; i++)
		n += 1 + strlen(x->m.keywords[i]);
	n += mlen;
	if ((out = malloc(n)) == NULL) {
		free(meta);
		return SP_ENOMEM;
	}
	p = out;
	*p++ = 1;
	sp_put_be32(p, x->m.folder), p += 4;
	sp_put_be32(p, x->m.uid), p += 4;
	sp_put_be32(p, x->m.flags), p += 4;
	sp_put_be64(p, x->m.modseq), p += 8;
	sp_put_be64(p, x->m.received), p += 8;
	*p++ = (uint8_t)x->m.own;
	*p++ = (uint8_t)x->needs_ref;
	*p++ = (uint8_t)x->m.nkeywords;
	for (i = 0; i < x->m.nkeywords; i++) {
		size_t k = strlen(x->m.keywords[i]);

		*p++ = (uint8_t)k;
		memcpy(p, x->m.keywords[i], k);
		p += k;
	}
	sp_put_be32(p, (uint32_t)mlen), p += 4;
	memcpy(p, meta, mlen);
	sodium_memzero(meta, mlen);
	free(meta);
	*out_r = out;
	*len_r = n;
	return 0;
}

static int
msg_decode(uint64_t id, const uint8_t *v, size_t len, struct msg **x_r)
{
	const uint8_t *p = v, *end = v + len;
	struct msg *x;
	size_t i, nkw;
	uint32_t mlen;
	int rc = SP_EFORMAT;

	if (len < 1 + 4 + 4 + 4 + 8 + 8 + 3 + 4 || v[0] != 1)
		return SP_EFORMAT;
	if ((x = calloc(1, sizeof(*x))) == NULL)
		return SP_ENOMEM;
	x->m.id = id;
	p++;
	x->m.folder = sp_get_be32(p), p += 4;
	x->m.uid = sp_get_be32(p), p += 4;
	x->m.flags = sp_get_be32(p), p += 4;
	x->m.modseq = sp_get_be64(p), p += 8;
	x->m.received = sp_get_be64(p), p += 8;
	x->m.own = *p++;
	x->needs_ref = *p++;
	nkw = *p++;
	if (nkw && (x->m.keywords = calloc(nkw, sizeof(char *))) == NULL) {
		rc = SP_ENOMEM;
		goto fail;
	}
	for (i = 0; i < nkw; i++) {
		size_t k;

		if (p >= end)
			goto fail;
		k = *p++;
		if (k > (size_t)(end - p))
			goto fail;
		if ((x->m.keywords[i] = strndup((const char *)p, k)) == NULL) {
			rc = SP_ENOMEM;
			goto fail;
		}
		x->m.nkeywords++;
		p += k;
	}
	if (end - p < 4)
		goto fail;
	mlen = sp_get_be32(p), p += 4;
	if (mlen != (size_t)(end - p))
		goto fail;
	if ((rc = sp_meta_decode(p, mlen, &x->m.meta)) != 0)
		goto fail;
	*x_r = x;
	return 0;
fail:
	msg_free(x);
	return rc;
}

static void
bucket_key(uint8_t k[12], uint64_t bucket)
{
	memcpy(k, "mbox_ids", 8);
	sp_put_be32(k + 8, (uint32_t)bucket);
}

/* folders value: count u32 | (id u32 | uidnext u32 | hms u64 | subscribed
 * u8 | name_len u16 | name)* */
static int
folders_encode(const sp_mbox *mb, uint8_t **out_r, size_t *len_r)
{
	size_t n = 4, i;
	uint8_t *out, *p;

	for (i = 0; i < mb->nfolders; i++)
		n += 4 + 4 + 8 + 1 + 2 + strlen(mb->folders[i].f.name);
	if ((out = malloc(n)) == NULL)
		return SP_ENOMEM;
	p = out;
	sp_put_be32(p, (uint32_t)mb->nfolders), p += 4;
	for (i = 0; i < mb->nfolders; i++) {
		const struct sp_mbox_folder *f = &mb->folders[i].f;
		size_t k = strlen(f->name);

		sp_put_be32(p, f->id), p += 4;
		sp_put_be32(p, f->uidnext), p += 4;
		sp_put_be64(p, f->highest_modseq), p += 8;
		*p++ = (uint8_t)f->subscribed;
		*p++ = (uint8_t)(k >> 8);
		*p++ = (uint8_t)k;
		memcpy(p, f->name, k);
		p += k;
	}
	*out_r = out;
	*len_r = n;
	return 0;
}

static int
folders_decode(sp_mbox *mb, const uint8_t *v, size_t len)
{
	const uint8_t *p = v, *end = v + len;
	uint32_t n, i;
	char name[SP_MBOX_NAME_MAX + 1];
	int rc;

	if (len < 4)
		return SP_EFORMAT;
	n = sp_get_be32(p), p += 4;
	for (i = 0; i < n; i++) {
		uint32_t id, uidnext;
		uint64_t hms;
		int sub;
		size_t k;

		if (end - p < 19)
			return SP_EFORMAT;
		id = sp_get_be32(p), p += 4;
		uidnext = sp_get_be32(p), p += 4;
		hms = sp_get_be64(p), p += 8;
		sub = *p++;
		k = (size_t)p[0] << 8 | p[1];
		p += 2;
		if (k > SP_MBOX_NAME_MAX || k > (size_t)(end - p))
			return SP_EFORMAT;
		memcpy(name, p, k);
		name[k] = 0;
		p += k;
		if ((rc = folder_insert(mb, id, name, uidnext, hms, sub)) != 0)
			return rc;
	}
	return p == end ? 0 : SP_EFORMAT;
}

static int
state_get_u64(sp_cache *c, const char *name, uint64_t *v_r)
{
	uint8_t *v = NULL;
	size_t len = 0;
	int rc;

	*v_r = 0;
	rc = sp_cache_get(c, SP_CACHE_T_STATE, name, strlen(name), &v, &len);
	if (rc == ENOENT)
		return 0;
	if (rc == 0 && len == 8)
		*v_r = sp_get_be64(v);
	else if (rc == 0)
		rc = SP_EFORMAT;
	free(v);
	return rc;
}

/* ---- open / close ------------------------------------------------------- */

static int
load_messages(sp_mbox *mb)
{
	uint64_t b, last = mb->applied >> BUCKET_SHIFT;
	int rc = 0;

	for (b = 0; b <= last; b++) {
		uint8_t k[12], *ids = NULL;
		size_t len = 0, i;

		bucket_key(k, b);
		rc = sp_cache_get(mb->cache, SP_CACHE_T_STATE, k, sizeof(k),
		    &ids, &len);
		if (rc == ENOENT)
			continue;
		if (rc != 0)
			return rc;
		if (len % 8) {
			free(ids);
			return SP_EFORMAT;
		}
		for (i = 0; i < len / 8 && rc == 0; i++) {
			uint64_t id = sp_get_be64(ids + 8 * i);
			uint8_t key[8], *v = NULL;
			size_t vlen = 0;
			struct msg *x = NULL;
			struct folder *f;

			sp_put_be64(key, id);
			rc = sp_cache_get(mb->cache, SP_CACHE_T_MESSAGE, key, 8,
			    &v, &vlen);
			if (rc == 0)
				rc = msg_decode(id, v, vlen, &x);
			if (v) {
				sodium_memzero(v, vlen);
				free(v);
			}
			if (rc != 0)
				break;
			if ((f = folder_get(mb, x->m.folder)) == NULL ||
			    grow((void **)&mb->msgs, &mb->cap, mb->nmsgs + 1,
			    sizeof(*mb->msgs)) != 0 ||
			    grow((void **)&f->v, &f->cap, f->n + 1,
			    sizeof(*f->v)) != 0) {
				msg_free(x);
				rc = f ? SP_ENOMEM : SP_EFORMAT;
				break;
			}
			mb->msgs[mb->nmsgs++] = x;
			f->v[f->n++] = x;
		}
		free(ids);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int
uid_cmp(const void *a, const void *b)
{
	const struct msg *x = *(struct msg *const *)a;
	const struct msg *y = *(struct msg *const *)b;

	return x->m.uid < y->m.uid ? -1 : x->m.uid > y->m.uid;
}

int
sp_mbox_open(sp_cache *cache, const sp_keyset *ks, sp_mbox **mb_r)
{
	sp_mbox *mb;
	uint8_t *v = NULL;
	size_t len = 0, i;
	uint32_t id;
	int rc;

	*mb_r = NULL;
	if ((mb = calloc(1, sizeof(*mb))) == NULL)
		return SP_ENOMEM;
	mb->cache = cache;
	mb->ks = ks;
	if ((rc = state_get_u64(cache, "mbox_applied", &mb->applied)) != 0)
		goto fail;
	rc = sp_cache_get(cache, SP_CACHE_T_MAILBOX, "folders", 7, &v, &len);
	if (rc == 0) {
		rc = folders_decode(mb, v, len);
		sodium_memzero(v, len);
		free(v);
	} else if (rc == ENOENT) {
		rc = 0;
		for (id = SP_MBOX_INBOX; id <= SP_MBOX_ARCHIVE && rc == 0; id++)
			rc = folder_insert(mb, id, system_names[id], 1, 0, 1);
	}
	if (rc != 0 || (rc = load_messages(mb)) != 0)
		goto fail;
	for (i = 0; i < mb->nfolders; i++)
		if (mb->folders[i].n > 1)
			qsort(mb->folders[i].v, mb->folders[i].n,
			    sizeof(struct msg *), uid_cmp);
	mb->folders_dirty = 0;
	*mb_r = mb;
	return 0;
fail:
	sp_mbox_close(mb);
	return rc;
}

void
sp_mbox_close(sp_mbox *mb)
{
	size_t i;

	if (mb == NULL)
		return;
	for (i = 0; i < mb->nmsgs; i++)
		msg_free(mb->msgs[i]);
	for (i = 0; i < mb->nfolders; i++) {
		free(mb->folders[i].f.name);
		free(mb->folders[i].v);
	}
	free(mb->folders);
	free(mb->fview);
	free(mb->msgs);
	free(mb->dirty);
	free(mb->gone);
	free(mb);
}

void
sp_mbox_set_listener(sp_mbox *mb, sp_mbox_listener fn, void *arg)
{
	mb->listener = fn;
	mb->listener_arg = arg;
}

void
sp_mbox_set_progress(sp_mbox *mb, void (*fn)(void *, uint64_t, uint64_t),
    void *arg)
{
	mb->progress = fn;
	mb->progress_arg = arg;
}

uint64_t sp_mbox_skipped(const sp_mbox *mb) { return mb->skipped; }

/* ---- applying records --------------------------------------------------- */

/* The folder a new message lands in (format.md §12.2). */
static uint32_t
landing_folder(sp_mbox *mb, const struct sp_meta *m, int own)
{
	if (own && m->has_folder_id && folder_get(mb, m->folder_id))
		return m->folder_id;
	if ((m->folder && strcmp(m->folder, "Junk") == 0) ||
	    (m->has_flags && (m->flags & SP_META_F_JUNK)))
		return SP_MBOX_JUNK;
	return SP_MBOX_INBOX;
}

static int
apply_new(sp_mbox *mb, uint64_t seq, struct sp_meta *m, int own,
    int signed_meta)
{
	struct msg *x;
	struct folder *f;
	char *kw, *save = NULL, *t;
	int rc;

	if ((x = calloc(1, sizeof(*x))) == NULL)
		return SP_ENOMEM;
	x->m.id = seq;
	x->m.own = own;
	x->m.modseq = seq;
	x->m.meta = *m;              /* takes the strings */
	memset(m, 0, sizeof(*m));
	if (own)
		x->m.flags = x->m.meta.flags & SP_MBOX_F_SYSTEM;
	else
		/* a sender may not mark its mail read, or anything else */
		x->m.flags = x->m.meta.flags & SP_META_F_JUNK;
	x->m.received = x->m.meta.has_received ? x->m.meta.received :
	    x->m.meta.has_date ? x->m.meta.date : 0;
	/* Internal mail: the sender's blob; hold our own reference. */
	x->needs_ref = !own && signed_meta;
	if (own && x->m.meta.keywords &&
	    (kw = strdup(x->m.meta.keywords)) != NULL) {
		for (t = strtok_r(kw, " ", &save); t;
		    t = strtok_r(NULL, " ", &save))
			if (keyword_add(x, t) != 0)
				break;
		free(kw);
	}
	f = folder_get(mb, landing_folder(mb, &x->m.meta, own));
	if (grow((void **)&mb->msgs, &mb->cap, mb->nmsgs + 1,
	    sizeof(*mb->msgs)) != 0 || (rc = folder_add(f, x)) != 0) {
		msg_free(x);
		return SP_ENOMEM;
	}
	/* seqs only grow, so appending keeps msgs sorted by id */
	mb->msgs[mb->nmsgs++] = x;
	if (f->f.highest_modseq < seq)
		f->f.highest_modseq = seq;
	mb->folders_dirty = 1;
	if ((rc = mark_dirty(mb, x)) != 0)
		return rc;
	emit(mb, SP_MBOX_EV_NEW, f->f.id, &x->m);
	return 0;
}

static void
touch(sp_mbox *mb, struct msg *x, uint64_t seq)
{
	struct folder *f = folder_get(mb, x->m.folder);

	x->m.modseq = seq;
	if (f && f->f.highest_modseq < seq)
		f->f.highest_modseq = seq;
	mb->folders_dirty = 1;
}

/* Removes a message for good (delete, or its folder deleted). */
static int
msg_kill(sp_mbox *mb, struct msg *x, uint64_t seq)
{
	struct folder *f = folder_get(mb, x->m.folder);
	int found;
	size_t i = msg_index(mb, x->m.id, &found);

	if (f) {
		if (f->f.highest_modseq < seq)
			f->f.highest_modseq = seq;
		emit(mb, SP_MBOX_EV_EXPUNGE, f->f.id, &x->m);
		folder_drop(f, x);
	}
	if (grow((void **)&mb->gone, &mb->gone_cap, mb->ngone + 1,
	    sizeof(*mb->gone)) != 0)
		return SP_ENOMEM;
	mb->gone[mb->ngone++] = x->m.id;
	if (found)
		memmove(&mb->msgs[i], &mb->msgs[i + 1],
		    (mb->nmsgs - i - 1) * sizeof(*mb->msgs));
	mb->nmsgs--;
	if (x->dirty) {
		for (i = 0; i < mb->ndirty; i++)
			if (mb->dirty[i] == x)
				mb->dirty[i] = mb->dirty[--mb->ndirty];
	}
	msg_free(x);
	mb->folders_dirty = 1;
	return 0;
}

/* A change record's reader: bounds-checked, never past end. */
struct rd {
	const uint8_t *p, *end;
	int bad;
};

static uint64_t
rd_uint(struct rd *r, size_t n)
{
	uint64_t v = 0;

	if (r->bad || (size_t)(r->end - r->p) < n) {
		r->bad = 1;
		return 0;
	}
	while (n--)
		v = v << 8 | *r->p++;
	return v;
}

/* A string of len-prefix bytes (1 or 2) into buf; 0 on success. */
static int
rd_str(struct rd *r, size_t lenbytes, char *buf, size_t cap)
{
	size_t n = (size_t)rd_uint(r, lenbytes);

	if (r->bad || n >= cap || (size_t)(r->end - r->p) < n ||
	    !sp_utf8_valid(r->p, n)) {
		r->bad = 1;
		return -1;
	}
	memcpy(buf, r->p, n);
	buf[n] = 0;
	r->p += n;
	return 0;
}

static int
name_ok(const char *name)
{
	size_t n = strlen(name);

	/* no empty levels, no leading or trailing separator */
	return n > 0 && n <= SP_MBOX_NAME_MAX && name[0] != '/' &&
	    name[n - 1] != '/' && strstr(name, "//") == NULL &&
	    strcasecmp(name, "INBOX") != 0;
}

/* Forgets the whole model (its stored messages go in this batch), ready
 * to be rebuilt from a snapshot. */
static int
model_reset(sp_mbox *mb)
{
	size_t i;
	uint32_t id;
	int rc = 0;

	for (i = 0; i < mb->nmsgs; i++) {
		if (grow((void **)&mb->gone, &mb->gone_cap, mb->ngone + 1,
		    sizeof(*mb->gone)) != 0)
			return SP_ENOMEM;
		mb->gone[mb->ngone++] = mb->msgs[i]->m.id;
		msg_free(mb->msgs[i]);
	}
	mb->nmsgs = 0;
	mb->ndirty = 0;
	while (mb->nfolders > 0)
		folder_remove(mb, &mb->folders[mb->nfolders - 1]);
	for (id = SP_MBOX_INBOX; id <= SP_MBOX_ARCHIVE && rc == 0; id++)
		rc = folder_insert(mb, id, system_names[id], 1, 0, 1);
	mb->folders_dirty = 1;
	return rc;
}

/*
 * A snapshot record (op 8): base u64 | part u32 | nparts u32 | payload.
 * Part 0's payload starts with folders_len u32 | folders (as stored);
 * every part then has count u32 | (id u64 | len u32 | message state)*.
 * A model that is current ignores snapshots (it already is that state);
 * one whose log prefix is gone loads the first complete one it meets.
 */
static int
apply_snapshot(sp_mbox *mb, struct rd *r)
{
	uint64_t base = rd_uint(r, 8);
	uint32_t part = (uint32_t)rd_uint(r, 4), nparts = (uint32_t)rd_uint(r, 4);
	uint32_t count, i;
	int rc;

	if (r->bad || nparts == 0 || part >= nparts)
		return SP_EFORMAT;
	if (!mb->snap_wait)
		return 0;
	if (part == 0) {
		uint32_t flen = (uint32_t)rd_uint(r, 4);

		if (r->bad || flen > (size_t)(r->end - r->p))
			return SP_EFORMAT;
		if ((rc = model_reset(mb)) != 0)
			return rc;
		while (mb->nfolders > 0)
			folder_remove(mb, &mb->folders[mb->nfolders - 1]);
		if ((rc = folders_decode(mb, r->p, flen)) != 0)
			return rc;
		r->p += flen;
		mb->snap_base = base;
		mb->snap_next = 0;
	} else if (base != mb->snap_base || part != mb->snap_next) {
		return SP_EFORMAT;      /* not the snapshot we are loading */
	}
	count = (uint32_t)rd_uint(r, 4);
	for (i = 0; i < count && !r->bad; i++) {
		uint64_t id = rd_uint(r, 8);
		uint32_t len = (uint32_t)rd_uint(r, 4);
		struct msg *x = NULL;
		struct folder *f;

		if (r->bad || len > (size_t)(r->end - r->p) ||
		    (mb->nmsgs && mb->msgs[mb->nmsgs - 1]->m.id >= id))
			return SP_EFORMAT;
		if ((rc = msg_decode(id, r->p, len, &x)) != 0)
			return rc;
		r->p += len;
		if ((f = folder_get(mb, x->m.folder)) == NULL ||
		    grow((void **)&mb->msgs, &mb->cap, mb->nmsgs + 1,
		    sizeof(*mb->msgs)) != 0 ||
		    grow((void **)&f->v, &f->cap, f->n + 1, sizeof(*f->v)) != 0) {
			msg_free(x);
			return f ? SP_ENOMEM : SP_EFORMAT;
		}
		mb->msgs[mb->nmsgs++] = x;
		f->v[f->n++] = x;
		if ((rc = mark_dirty(mb, x)) != 0)
			return rc;
	}
	if (r->bad || r->p != r->end)
		return SP_EFORMAT;
	mb->snap_next = part + 1;
	if (mb->snap_next == nparts) {
		for (i = 0; i < mb->nfolders; i++)
			if (mb->folders[i].n > 1)
				qsort(mb->folders[i].v, mb->folders[i].n,
				    sizeof(struct msg *), uid_cmp);
		mb->snap_wait = 0;
		emit(mb, SP_MBOX_EV_FOLDERS, 0, NULL);
	}
	return 0;
}

static int
apply_change(sp_mbox *mb, uint64_t seq, const uint8_t *c, size_t len)
{
	struct rd r = { c + 2, c + len, 0 };
	char name[SP_MBOX_NAME_MAX + 1], kw[SP_MBOX_KEYWORD_MAX + 1];
	struct folder *f;
	size_t n, i, k;
	int rc = 0;

	if (len < 2 || c[0] != CHANGE_VERSION)
		return SP_EVERSION;
	switch (c[1]) {
	case OP_FLAGS:
	case OP_MOVE:
	case OP_DELETE: {
		const uint8_t *ids;
		uint32_t add = 0, rm = 0, dest = 0;
		const uint8_t *kwp;
		size_t nka = 0, nkr = 0;
		struct rd kr = { NULL, NULL, 0 };

		n = (size_t)rd_uint(&r, 2);
		if (r.bad || n == 0 || (size_t)(r.end - r.p) < 8 * n)
			return SP_EFORMAT;
		ids = r.p;
		r.p += 8 * n;
		if (c[1] == OP_FLAGS) {
			add = (uint32_t)rd_uint(&r, 4) & SP_MBOX_F_SYSTEM;
			rm = (uint32_t)rd_uint(&r, 4) & SP_MBOX_F_SYSTEM;
			kwp = r.p;
			nka = (size_t)rd_uint(&r, 1);
			for (k = 0; k < nka; k++)
				rd_str(&r, 1, kw, sizeof(kw));
			nkr = (size_t)rd_uint(&r, 1);
			for (k = 0; k < nkr; k++)
				rd_str(&r, 1, kw, sizeof(kw));
			kr.p = kwp;
			kr.end = r.p;
			kr.bad = 0;
		} else if (c[1] == OP_MOVE) {
			dest = (uint32_t)rd_uint(&r, 4);
		}
		if (r.bad || r.p != r.end)
			return SP_EFORMAT;
		if (c[1] == OP_MOVE && folder_get(mb, dest) == NULL)
			return 0;    /* folder deleted earlier: log order wins */
		for (i = 0; i < n && rc == 0; i++) {
			struct msg *x = msg_get(mb, sp_get_be64(ids + 8 * i));
			struct rd kk = kr;

			if (x == NULL)
				continue;   /* deleted earlier in the log */
			if (c[1] == OP_DELETE) {
				rc = msg_kill(mb, x, seq);
				continue;
			}
			if (c[1] == OP_MOVE) {
				struct folder *from = folder_get(mb,
				    x->m.folder), *to = folder_get(mb, dest);

				if (from == to)
					continue;
				if (from) {
					emit(mb, SP_MBOX_EV_EXPUNGE,
					    from->f.id, &x->m);
					folder_drop(from, x);
					if (from->f.highest_modseq < seq)
						from->f.highest_modseq = seq;
				}
				if ((rc = folder_add(to, x)) != 0)
					break;
				touch(mb, x, seq);
				rc = mark_dirty(mb, x);
				emit(mb, SP_MBOX_EV_NEW, to->f.id, &x->m);
				continue;
			}
			x->m.flags = (x->m.flags | add) & ~rm;
			nka = (size_t)rd_uint(&kk, 1);
			for (k = 0; k < nka && rc == 0; k++)
				if (rd_str(&kk, 1, kw, sizeof(kw)) == 0)
					rc = keyword_add(x, kw);
			nkr = (size_t)rd_uint(&kk, 1);
			for (k = 0; k < nkr; k++)
				if (rd_str(&kk, 1, kw, sizeof(kw)) == 0)
					keyword_del(x, kw);
			touch(mb, x, seq);
			if (rc == 0)
				rc = mark_dirty(mb, x);
			emit(mb, SP_MBOX_EV_FLAGS, x->m.folder, &x->m);
		}
		return rc;
	}
	case OP_FOLDER_CREATE:
		if (rd_str(&r, 2, name, sizeof(name)) != 0 || r.p != r.end)
			return SP_EFORMAT;
		if (!name_ok(name) || folder_named(mb, name) ||
		    seq > UINT32_MAX - SP_MBOX_USER_BASE)
			return 0;   /* exists already: the earlier one wins */
		if ((rc = folder_insert(mb, (uint32_t)(SP_MBOX_USER_BASE + seq),
		    name, 1, seq, 1)) != 0)
			return rc;
		emit(mb, SP_MBOX_EV_FOLDERS, (uint32_t)(SP_MBOX_USER_BASE +
		    seq), NULL);
		return 0;
	case OP_FOLDER_RENAME: {
		uint32_t id = (uint32_t)rd_uint(&r, 4);
		size_t oldlen;
		char old[SP_MBOX_NAME_MAX + 1];

		if (rd_str(&r, 2, name, sizeof(name)) != 0 || r.p != r.end)
			return SP_EFORMAT;
		if (id < SP_MBOX_USER_BASE || (f = folder_get(mb, id)) == NULL ||
		    !name_ok(name) || folder_named(mb, name))
			return 0;
		snprintf(old, sizeof(old), "%s", f->f.name);
		oldlen = strlen(old);
		/* the folder and everything below it */
		for (i = 0; i < mb->nfolders; i++) {
			struct folder *g = &mb->folders[i];
			char nn[2 * SP_MBOX_NAME_MAX + 2], *dup;

			if (strcmp(g->f.name, old) == 0)
				snprintf(nn, sizeof(nn), "%s", name);
			else if (strncmp(g->f.name, old, oldlen) == 0 &&
			    g->f.name[oldlen] == '/')
				snprintf(nn, sizeof(nn), "%s%s", name,
				    g->f.name + oldlen);
			else
				continue;
			if (strlen(nn) > SP_MBOX_NAME_MAX ||
			    (dup = strdup(nn)) == NULL)
				continue;
			free(g->f.name);
			g->f.name = dup;
		}
		mb->folders_dirty = 1;
		emit(mb, SP_MBOX_EV_FOLDERS, id, NULL);
		return 0;
	}
	case OP_FOLDER_DELETE: {
		uint32_t id = (uint32_t)rd_uint(&r, 4);

		if (r.bad || r.p != r.end)
			return SP_EFORMAT;
		if (id < SP_MBOX_USER_BASE || (f = folder_get(mb, id)) == NULL)
			return 0;
		while (f->n > 0 && rc == 0)
			rc = msg_kill(mb, f->v[f->n - 1], seq);
		if (rc == 0) {
			folder_remove(mb, folder_get(mb, id));
			emit(mb, SP_MBOX_EV_FOLDERS, id, NULL);
		}
		return rc;
	}
	case OP_SNAPSHOT:
		return apply_snapshot(mb, &r);
	case OP_SUBSCRIBE: {
		uint32_t id = (uint32_t)rd_uint(&r, 4);
		int on = (int)rd_uint(&r, 1);

		if (r.bad || r.p != r.end)
			return SP_EFORMAT;
		if ((f = folder_get(mb, id)) == NULL)
			return 0;
		f->f.subscribed = on != 0;
		mb->folders_dirty = 1;
		emit(mb, SP_MBOX_EV_FOLDERS, id, NULL);
		return 0;
	}
	default:
		return SP_EVERSION;
	}
}

/* One log record: open it (mailbox key first: our own; then X25519:
 * sealed to us) and apply.  A record that fails is skipped. */
static int
apply_record(sp_mbox *mb, uint64_t seq, const uint8_t *rec, size_t len)
{
	sp_envelope *e = NULL;
	uint8_t *buf = NULL, pk[32];
	size_t n;
	int rc, own = 1, kind, signed_env;
	struct sp_meta m;

	rc = sp_envelope_open_raw(rec, len, NULL, NULL,
	    sp_keyset_mailbox_key(mb->ks), &e);
	if (rc == SP_ENOKEY) {
		own = 0;
		rc = sp_envelope_open_raw(rec, len,
		    sp_keyset_encryption_pk(mb->ks),
		    sp_keyset_encryption_sk(mb->ks), NULL, &e);
	}
	if (rc != 0)
		goto skip;
	kind = (int)sp_envelope_kind(e);
	n = (size_t)sp_envelope_content_length(e);
	if (n > REC_MAX || (buf = malloc(n ? n : 1)) == NULL ||
	    sp_envelope_read_all(e, buf, n) != 0)
		goto skip;
	signed_env = sp_envelope_signer(e, pk);
	if (kind == SP_ENVELOPE_KIND_META) {
		if (sp_meta_decode(buf, n, &m) != 0)
			goto skip;
		rc = apply_new(mb, seq, &m, own, signed_env);
		sp_meta_finish(&m);
		if (rc == SP_ENOMEM)
			goto out;
	} else if (kind == SP_ENVELOPE_KIND_CHANGE && own) {
		/* Only this account's own key writes changes: a sealed
		 * record from someone else could otherwise delete mail. */
		if ((rc = apply_change(mb, seq, buf, n)) == SP_ENOMEM)
			goto out;
		if (rc != 0)
			goto skip;
	} else {
		goto skip;
	}
	rc = 0;
	goto out;
skip:
	mb->skipped++;
	rc = 0;
out:
	if (buf) {
		sodium_memzero(buf, n);
		free(buf);
	}
	sp_envelope_close(e);
	return rc;
}

/* Writes the batch's dirty state with the new mark, and commits. */
static int
persist(sp_mbox *mb, uint64_t applied)
{
	static const uint8_t derived[] = { SP_CACHE_T_BODY,
	    SP_CACHE_T_PGPSERVED, SP_CACHE_T_IMAPSUM };
	sp_cache_batch *b = NULL;
	uint64_t *buckets = NULL;
	size_t nb = 0, cap = 0, i, j;
	uint8_t k[12], v8[8];
	int rc;

	if ((rc = sp_cache_begin(mb->cache, &b)) != 0)
		return rc;
	for (i = 0; i < mb->ngone && rc == 0; i++) {
		uint8_t key[8];

		/* a reset followed by a snapshot brings ids back: those are
		 * written below, after the deletes */
		sp_put_be64(key, mb->gone[i]);
		if (msg_get(mb, mb->gone[i]) != NULL)
			goto bucket;
		rc = sp_cache_batch_del(b, SP_CACHE_T_MESSAGE, key, 8);
		if (rc == ENOENT)
			rc = 0;
		/* everything derived from the plaintext goes with it: the
		 * body, the served OpenPGP form, the bridge's IMAP summary */
		for (j = 0; rc == 0 && j < sizeof(derived); j++) {
			rc = sp_cache_batch_del(b, derived[j], key, 8);
			if (rc == ENOENT)
				rc = 0;
		}
bucket:
		if (rc == 0 && (rc = grow((void **)&buckets, &cap, nb + 1,
		    sizeof(*buckets))) == 0)
			buckets[nb++] = mb->gone[i] >> BUCKET_SHIFT;
	}
	for (i = 0; i < mb->ndirty && rc == 0; i++) {
		uint8_t key[8], *val = NULL;
		size_t vlen = 0;

		sp_put_be64(key, mb->dirty[i]->m.id);
		if ((rc = msg_encode(mb->dirty[i], &val, &vlen)) == 0)
			rc = sp_cache_batch_put(b, SP_CACHE_T_MESSAGE, key, 8,
			    val, vlen);
		if (val) {
			sodium_memzero(val, vlen);
			free(val);
		}
		if (rc == 0 && (rc = grow((void **)&buckets, &cap, nb + 1,
		    sizeof(*buckets))) == 0)
			buckets[nb++] = mb->dirty[i]->m.id >> BUCKET_SHIFT;
	}
	/* Rewrite each touched bucket's id list from memory. */
	for (i = 0; i < nb && rc == 0; i++) {
		uint64_t bk = buckets[i], lo = bk << BUCKET_SHIFT;
		size_t first, cnt = 0;
		uint8_t *ids;
		int found;

		for (j = 0; j < i; j++)
			if (buckets[j] == bk)
				break;
		if (j < i)
			continue;
		first = msg_index(mb, lo, &found);
		while (first + cnt < mb->nmsgs &&
		    mb->msgs[first + cnt]->m.id >> BUCKET_SHIFT == bk)
			cnt++;
		bucket_key(k, bk);
		if (cnt == 0) {
			rc = sp_cache_batch_del(b, SP_CACHE_T_STATE, k,
			    sizeof(k));
			if (rc == ENOENT)
				rc = 0;
			continue;
		}
		if ((ids = malloc(cnt * 8)) == NULL) {
			rc = SP_ENOMEM;
			break;
		}
		for (j = 0; j < cnt; j++)
			sp_put_be64(ids + 8 * j, mb->msgs[first + j]->m.id);
		rc = sp_cache_batch_put(b, SP_CACHE_T_STATE, k, sizeof(k), ids,
		    cnt * 8);
		free(ids);
	}
	if (rc == 0 && mb->folders_dirty) {
		uint8_t *val = NULL;
		size_t vlen = 0;

		if ((rc = folders_encode(mb, &val, &vlen)) == 0)
			rc = sp_cache_batch_put(b, SP_CACHE_T_MAILBOX,
			    "folders", 7, val, vlen);
		free(val);
	}
	sp_put_be64(v8, applied);
	if (rc == 0)
		rc = sp_cache_batch_put(b, SP_CACHE_T_STATE, "mbox_applied",
		    12, v8, 8);
	free(buckets);
	if (rc != 0) {
		sp_cache_abort(b);
		return rc;
	}
	if ((rc = sp_cache_commit(b)) != 0)
		return rc;
	for (i = 0; i < mb->ndirty; i++)
		mb->dirty[i]->dirty = 0;
	mb->ndirty = mb->ngone = 0;
	mb->folders_dirty = 0;
	mb->applied = applied;
	return 0;
}

struct apply_walk {
	sp_mbox *mb;
	uint64_t until, count, last_seq;
};

static int
apply_one(void *arg, uint64_t seq, const uint8_t *rec, size_t len)
{
	struct apply_walk *w = arg;
	int rc;

	if (seq > w->until)
		return 1;
	if ((rc = apply_record(w->mb, seq, rec, len)) != 0)
		return rc;
	w->last_seq = seq;
	/* Not in the middle of loading a snapshot: a crash there must find
	 * the gap again and load the snapshot from its start. */
	if (++w->count % APPLY_BATCH == 0 && !w->mb->snap_wait)
		return persist(w->mb, seq);
	return 0;
}

int
sp_mbox_apply(sp_mbox *mb, uint64_t *napplied_r)
{
	struct apply_walk w = { .mb = mb };
	int rc;

	if (napplied_r)
		*napplied_r = 0;
	if ((rc = sp_syncer_last_applied(mb->cache, &w.until)) != 0 ||
	    (rc = state_get_u64(mb->cache, "log_start", &mb->log_start)) != 0)
		return rc;
	if (w.until <= mb->applied)
		return 0;
	if (mb->log_start > mb->applied + 1) {
		/* The records after what we applied were compacted away:
		 * start over from the snapshot that begins the log. */
		if ((rc = model_reset(mb)) != 0)
			return rc;
		mb->snap_wait = 1;
		mb->applied = mb->log_start - 1;
	}
	w.last_seq = mb->applied;
	rc = sp_cache_log_each(mb->cache, mb->applied + 1, apply_one, &w);
	if (rc == 1)
		rc = 0;
	/* The in-memory model is ahead of the cache until persist(); on an
	 * error the caller should reopen (the cache is still consistent). */
	if (rc == 0 && w.last_seq > mb->applied)
		rc = persist(mb, w.last_seq);
	if (rc == 0 && w.until > mb->applied)
		rc = persist(mb, w.until);   /* a compacted gap, if any */
	if (napplied_r)
		*napplied_r = w.count;
	return rc;
}

/* ---- reading ------------------------------------------------------------- */

const struct sp_mbox_folder *
sp_mbox_folders(sp_mbox *mb, size_t *n_r)
{
	size_t i;

	free(mb->fview);
	if ((mb->fview = calloc(mb->nfolders + 1, sizeof(*mb->fview))) ==
	    NULL) {
		*n_r = 0;
		return NULL;
	}
	for (i = 0; i < mb->nfolders; i++) {
		struct folder *f = &mb->folders[i];
		size_t j;

		f->f.exists = (uint32_t)f->n;
		f->f.unseen = 0;
		for (j = 0; j < f->n; j++)
			f->f.unseen += !(f->v[j]->m.flags & SP_META_F_SEEN);
		mb->fview[i] = f->f;
	}
	*n_r = mb->nfolders;
	return mb->fview;
}

const struct sp_mbox_folder *
sp_mbox_folder(sp_mbox *mb, uint32_t id)
{
	struct folder *f = folder_get(mb, id);
	size_t j;

	if (f == NULL)
		return NULL;
	f->f.exists = (uint32_t)f->n;
	f->f.unseen = 0;
	for (j = 0; j < f->n; j++)
		f->f.unseen += !(f->v[j]->m.flags & SP_META_F_SEEN);
	return &f->f;
}

const struct sp_mbox_folder *
sp_mbox_folder_by_name(sp_mbox *mb, const char *name)
{
	struct folder *f = folder_named(mb, name);

	return f ? sp_mbox_folder(mb, f->f.id) : NULL;
}

int
sp_mbox_list(sp_mbox *mb, uint32_t folder,
    const struct sp_mbox_msg *const **msgs_r, size_t *n_r)
{
	struct folder *f = folder_get(mb, folder);

	if (f == NULL)
		return ENOENT;
	/* struct msg begins with its sp_mbox_msg */
	*msgs_r = (const struct sp_mbox_msg *const *)(void *)f->v;
	*n_r = f->n;
	return 0;
}

const struct sp_mbox_msg *
sp_mbox_msg(sp_mbox *mb, uint64_t id)
{
	struct msg *x = msg_get(mb, id);

	return x ? &x->m : NULL;
}

/* ---- talking to the server ---------------------------------------------- */

static int
call(sp_client *c, struct sp_frame *f, uint32_t want, const char *what,
    struct sp_client_msg **m_r, char *err, size_t errlen)
{
	int rc;

	*m_r = NULL;
	rc = sp_client_call(c, f, m_r);
	if ((rc = sp_client_expect(rc, *m_r, want, what, err, errlen)) != 0) {
		sp_client_msg_free(*m_r);
		*m_r = NULL;
	}
	return rc;
}

static int
blob_get(sp_client *c, const uint8_t id[32], uint8_t **out_r, size_t *len_r,
    char *err, size_t errlen)
{
	struct sp_client_msg *m = NULL;
	struct sp_frame f;
	uint8_t *out = NULL;
	uint64_t size = 0, n = 1, i;
	int rc;

	for (i = 0; i < n; i++) {
		sp_frame_init(&f, SP_MSG_BLOB_GET, 0);
		sp_frame_set_bytes(&f, SP_F_BLOB_ID, id, 32);
		sp_frame_set_uint(&f, SP_F_INDEX, i);
		if ((rc = call(c, &f, SP_MSG_BLOB_DATA, "fetching a body", &m,
		    err, errlen)) != 0)
			goto fail;
		if (i == 0) {
			size = m->f.f[SP_F_SIZE].u;
			if (size == 0 || size > ((uint64_t)1 << 30)) {
				snprintf(err, errlen, "fetching a body: the "
				    "server claims %llu bytes",
				    (unsigned long long)size);
				rc = EPROTO;
				goto fail;
			}
			n = (size + BLOB_CHUNK - 1) / BLOB_CHUNK;
			if ((out = malloc((size_t)size)) == NULL) {
				rc = SP_ENOMEM;
				goto fail;
			}
		}
		if (m->f.f[SP_F_SIZE].u != size ||
		    m->f.f[SP_F_DATA].len != (i + 1 < n ? BLOB_CHUNK :
		    size - i * BLOB_CHUNK)) {
			snprintf(err, errlen, "fetching a body: a chunk of the "
			    "wrong size");
			rc = EPROTO;
			goto fail;
		}
		memcpy(out + i * BLOB_CHUNK, m->f.f[SP_F_DATA].ptr,
		    m->f.f[SP_F_DATA].len);
		sp_client_msg_free(m);
		m = NULL;
	}
	{
		/* the id names the bytes: check what the server gave us */
		uint8_t h[32];

		crypto_generichash(h, 32, out, (size_t)size, NULL, 0);
		if (sodium_memcmp(h, id, 32) != 0) {
			snprintf(err, errlen, "fetching a body: the bytes do "
			    "not match their id");
			rc = SP_EAUTH;
			goto fail;
		}
	}
	*out_r = out;
	*len_r = (size_t)size;
	return 0;
fail:
	sp_client_msg_free(m);
	free(out);
	return rc;
}

int
sp_mbox_blob_put(sp_client *c, const uint8_t *blob, size_t len,
    uint8_t id_r[32], char *err, size_t errlen)
{
	struct sp_client_msg *m = NULL;
	struct sp_frame f;
	uint64_t have, n = (len + BLOB_CHUNK - 1) / BLOB_CHUNK, i;
	uint64_t ids[16];
	size_t inflight = 0, j;
	int rc;

	crypto_generichash(id_r, 32, blob, len, NULL, 0);
	sp_frame_init(&f, SP_MSG_BLOB_BEGIN, 0);
	sp_frame_set_bytes(&f, SP_F_BLOB_ID, id_r, 32);
	sp_frame_set_uint(&f, SP_F_SIZE, len);
	if ((rc = call(c, &f, SP_MSG_BLOB_BEGUN, "uploading", &m, err,
	    errlen)) != 0)
		return rc;
	have = m->f.f[SP_F_HAVE].u;
	sp_client_msg_free(m);
	if (have >= n)
		return 0;            /* already there */
	/* Pipelined: up to 16 chunks in flight, each acknowledged. */
	for (i = have; i < n || inflight > 0;) {
		if (i < n && inflight < 16) {
			sp_frame_init(&f, SP_MSG_BLOB_CHUNK, 0);
			sp_frame_set_bytes(&f, SP_F_BLOB_ID, id_r, 32);
			sp_frame_set_uint(&f, SP_F_INDEX, i);
			sp_frame_set_bytes(&f, SP_F_DATA, blob + i * BLOB_CHUNK,
			    i + 1 < n ? BLOB_CHUNK : len - i * BLOB_CHUNK);
			if ((rc = sp_client_send(c, &f, &ids[inflight])) != 0) {
				snprintf(err, errlen, "uploading: the "
				    "connection closed");
				return rc;
			}
			inflight++;
			i++;
			continue;
		}
		rc = sp_client_wait(c, ids[0], &m);
		if ((rc = sp_client_expect(rc, m, SP_MSG_OK, "uploading", err,
		    errlen)) != 0) {
			sp_client_msg_free(m);
			return rc;
		}
		sp_client_msg_free(m);
		for (j = 1; j < inflight; j++)
			ids[j - 1] = ids[j];
		inflight--;
	}
	sp_frame_init(&f, SP_MSG_BLOB_FINISH, 0);
	sp_frame_set_bytes(&f, SP_F_BLOB_ID, id_r, 32);
	rc = call(c, &f, SP_MSG_OK, "uploading", &m, err, errlen);
	sp_client_msg_free(m);
	return rc;
}

/* Takes our own reference to the body blob of internal mail. */
static int
take_ref(sp_client *c, const uint8_t id[32], char *err, size_t errlen)
{
	struct sp_client_msg *m = NULL;
	struct sp_frame f;
	uint64_t size;
	int rc;

	sp_frame_init(&f, SP_MSG_BLOB_GET, 0);
	sp_frame_set_bytes(&f, SP_F_BLOB_ID, id, 32);
	sp_frame_set_uint(&f, SP_F_INDEX, 0);
	if ((rc = call(c, &f, SP_MSG_BLOB_DATA, "keeping a body", &m, err,
	    errlen)) != 0)
		return rc;
	size = m->f.f[SP_F_SIZE].u;
	sp_client_msg_free(m);
	sp_frame_init(&f, SP_MSG_BLOB_BEGIN, 0);
	sp_frame_set_bytes(&f, SP_F_BLOB_ID, id, 32);
	sp_frame_set_uint(&f, SP_F_SIZE, size);
	rc = call(c, &f, SP_MSG_BLOB_BEGUN, "keeping a body", &m, err, errlen);
	sp_client_msg_free(m);
	return rc;
}

int
sp_mbox_sync(sp_mbox *mb, sp_client *c, char *err, size_t errlen)
{
	struct sp_syncer_opts so = { .progress = mb->progress,
	    .arg = mb->progress_arg };
	size_t i;
	int rc;

	if ((rc = sp_syncer_pull(c, mb->cache, &so, NULL, err, errlen)) != 0)
		return rc;
	if ((rc = sp_mbox_apply(mb, NULL)) != 0) {
		set_err(err, errlen, "applying the log", rc);
		return rc;
	}
	/* References taken are recorded in one commit, also when a later
	 * one fails (the server keeps them either way). */
	for (i = 0; i < mb->nmsgs && rc == 0; i++) {
		struct msg *x = mb->msgs[i];

		if (!x->needs_ref || x->m.meta.blob_id_len != 32)
			continue;
		rc = take_ref(c, x->m.meta.blob_id, err, errlen);
		if (rc == SP_ESERVER) {
			/* gone already (the sender deleted it): keep going,
			 * reading the body will say so */
			rc = 0;
		}
		if (rc != 0)
			break;
		x->needs_ref = 0;
		rc = mark_dirty(mb, x);
	}
	if (mb->ndirty > 0) {
		int prc = persist(mb, mb->applied);

		if (rc == 0)
			rc = prc;
	}
	if (rc != 0)
		return rc;
	/* When the log has grown well past what it describes, compact it.
	 * Best effort: another device may be doing the same ("the log
	 * moved"), and a failure here is not a failure to sync. */
	if (!mb->compacting && mb->applied >= mb->log_start &&
	    mb->applied - (mb->log_start ? mb->log_start : 1) + 1 >
	    COMPACT_MIN + 4 * (uint64_t)mb->nmsgs) {
		char why[256];

		mb->compacting = 1;
		(void)sp_mbox_compact(mb, c, why, sizeof(why));
		mb->compacting = 0;
	}
	return 0;
}

/* ---- bodies -------------------------------------------------------------- */

int
sp_mbox_body(sp_mbox *mb, sp_client *c, uint64_t id, uint8_t **body_r,
    size_t *len_r, enum sp_mbox_sig *sig_r, uint8_t signer_pk[32],
    char *err, size_t errlen)
{
	struct msg *x = msg_get(mb, id);
	sp_envelope *e = NULL;
	uint8_t key[8], *v = NULL, *blob = NULL, *plain = NULL, pk[32];
	size_t vlen = 0, blen = 0, n = 0;
	int rc, sig;

	*body_r = NULL;
	*sig_r = SP_MBOX_SIG_NONE;
	if (x == NULL) {
		snprintf(err, errlen, "no message %llu",
		    (unsigned long long)id);
		return ENOENT;
	}
	sp_put_be64(key, id);
	rc = sp_cache_get(mb->cache, SP_CACHE_T_BODY, key, 8, &v, &vlen);
	if (rc == 0 && vlen >= 33) {
		if (v[0] == SP_MBOX_SIG_VALID) {
			*sig_r = SP_MBOX_SIG_VALID;
			if (signer_pk)
				memcpy(signer_pk, v + 1, 32);
		}
		if ((*body_r = malloc(vlen - 33 + 1)) == NULL) {
			rc = SP_ENOMEM;
			goto out;
		}
		memcpy(*body_r, v + 33, vlen - 33);
		*len_r = vlen - 33;
		goto out;
	}
	if (rc != 0 && rc != ENOENT)
		goto out;
	if (c == NULL) {
		snprintf(err, errlen, "message %llu is not in the local cache",
		    (unsigned long long)id);
		rc = ENOENT;
		goto out;
	}
	if (x->m.meta.blob_id_len != 32) {
		snprintf(err, errlen, "message %llu has no body",
		    (unsigned long long)id);
		rc = SP_EFORMAT;
		goto out;
	}
	if ((rc = blob_get(c, x->m.meta.blob_id, &blob, &blen, err,
	    errlen)) != 0)
		goto out;
	if ((rc = sp_envelope_open(blob, blen, mb->ks, &e)) != 0 ||
	    sp_envelope_kind(e) != SP_ENVELOPE_KIND_BODY) {
		snprintf(err, errlen, "message %llu: the body does not open: "
		    "%s", (unsigned long long)id, rc ? sp_strerror(rc) :
		    "not a body");
		rc = rc ? rc : SP_EFORMAT;
		goto out;
	}
	n = (size_t)sp_envelope_content_length(e);
	if ((plain = malloc(33 + n + 1)) == NULL) {
		rc = SP_ENOMEM;
		goto out;
	}
	if ((rc = sp_envelope_read_all(e, plain + 33, n)) != 0) {
		snprintf(err, errlen, "message %llu: %s",
		    (unsigned long long)id, rc == SP_ESIG ?
		    "BAD SIGNATURE: the body was altered or forged" :
		    sp_strerror(rc));
		goto out;
	}
	sig = sp_envelope_signer(e, pk);
	memset(plain, 0, 33);
	if (sig == 1) {
		plain[0] = SP_MBOX_SIG_VALID;
		memcpy(plain + 1, pk, 32);
		*sig_r = SP_MBOX_SIG_VALID;
		if (signer_pk)
			memcpy(signer_pk, pk, 32);
	}
	/* Cache it (encrypted by the cache); a failure to cache is not a
	 * failure to read. */
	(void)sp_cache_put(mb->cache, SP_CACHE_T_BODY, key, 8, plain,
	    33 + n);
	if ((*body_r = malloc(n + 1)) == NULL) {
		rc = SP_ENOMEM;
		goto out;
	}
	memcpy(*body_r, plain + 33, n);
	*len_r = n;
out:
	if (v) {
		sodium_memzero(v, vlen);
		free(v);
	}
	if (plain) {
		sodium_memzero(plain, 33 + n);
		free(plain);
	}
	sp_envelope_close(e);
	free(blob);
	return rc;
}

/* Opens a fetched body envelope into "sig u8 || signer [32] || body"
 * (sodium_malloc'd: it is plaintext). */
static int
body_open(sp_mbox *mb, const uint8_t *blob, size_t blen, uint8_t **out_r,
    size_t *len_r)
{
	sp_envelope *e = NULL;
	uint8_t *plain, pk[32];
	size_t n;
	int rc;

	*out_r = NULL;
	if ((rc = sp_envelope_open(blob, blen, mb->ks, &e)) != 0)
		return rc;
	if (sp_envelope_kind(e) != SP_ENVELOPE_KIND_BODY) {
		sp_envelope_close(e);
		return SP_EFORMAT;
	}
	n = (size_t)sp_envelope_content_length(e);
	if ((plain = sodium_malloc(33 + n + 1)) == NULL) {
		sp_envelope_close(e);
		return SP_ENOMEM;
	}
	memset(plain, 0, 33);
	if ((rc = sp_envelope_read_all(e, plain + 33, n)) == 0 &&
	    sp_envelope_signer(e, pk) == 1) {
		plain[0] = SP_MBOX_SIG_VALID;
		memcpy(plain + 1, pk, 32);
	}
	sp_envelope_close(e);
	if (rc != 0) {
		sodium_free(plain);
		return rc;
	}
	*out_r = plain;
	*len_r = 33 + n;
	return 0;
}

#define FETCH_WINDOW 32          /* BLOB_GETs in flight per connection */
#define FETCH_COMMIT 256         /* bodies per cache commit */
#define FETCH_QUEUE 64           /* decrypted bodies waiting to be cached */

/*
 * Parallel fetch.  Fetcher threads, one per connection, claim runs of
 * message ids, pipeline their BLOB_GETs, check and decrypt each body and
 * queue the plaintext; this thread takes it from the queue and writes it
 * to the cache in batches (a cache batch belongs to one thread).  The
 * queue is bounded, so memory stays at about FETCH_QUEUE bodies.
 */
struct fetched {
	uint64_t id;
	uint8_t *plain;              /* sodium_malloc; NULL: failed */
	size_t len;
};

struct fetch {
	sp_mbox *mb;
	uint64_t *want;
	size_t nwant, next;
	pthread_mutex_t mu;
	pthread_cond_t cv_item, cv_space;
	struct fetched q[FETCH_QUEUE];
	size_t qhead, qlen;
	int workers, fatal;
	char err[256];
};

struct fetcher {
	struct fetch *f;
	sp_client *c;
	pthread_t th;
};

static void
fetch_push(struct fetch *f, uint64_t id, uint8_t *plain, size_t len)
{
	pthread_mutex_lock(&f->mu);
	while (f->qlen == FETCH_QUEUE && !f->fatal)
		pthread_cond_wait(&f->cv_space, &f->mu);
	if (f->fatal) {
		pthread_mutex_unlock(&f->mu);
		if (plain)
			sodium_free(plain);
		return;
	}
	f->q[(f->qhead + f->qlen) % FETCH_QUEUE] =
	    (struct fetched){ id, plain, len };
	f->qlen++;
	pthread_cond_signal(&f->cv_item);
	pthread_mutex_unlock(&f->mu);
}

static void
fetch_fail(struct fetch *f, const char *why)
{
	pthread_mutex_lock(&f->mu);
	if (!f->fatal) {
		f->fatal = 1;
		if (why != f->err)
			snprintf(f->err, sizeof(f->err), "%s", why);
	}
	pthread_cond_broadcast(&f->cv_space);
	pthread_cond_broadcast(&f->cv_item);
	pthread_mutex_unlock(&f->mu);
}

static void *
fetcher_run(void *arg)
{
	struct fetcher *w = arg;
	struct fetch *f = w->f;
	struct sp_client_msg *m = NULL;
	struct sp_frame fr;
	uint64_t reqs[FETCH_WINDOW], ids[FETCH_WINDOW];
	char err[256];
	size_t n, i;
	int rc;

	for (;;) {
		pthread_mutex_lock(&f->mu);
		n = f->fatal ? 0 : f->nwant - f->next;
		if (n > FETCH_WINDOW)
			n = FETCH_WINDOW;
		for (i = 0; i < n; i++)
			ids[i] = f->want[f->next + i];
		f->next += n;
		pthread_mutex_unlock(&f->mu);
		if (n == 0)
			break;
		for (i = 0; i < n; i++) {
			const struct msg *x = msg_get(f->mb, ids[i]);

			sp_frame_init(&fr, SP_MSG_BLOB_GET, 0);
			sp_frame_set_bytes(&fr, SP_F_BLOB_ID, x->m.meta.blob_id,
			    32);
			sp_frame_set_uint(&fr, SP_F_INDEX, 0);
			if (sp_client_send(w->c, &fr, &reqs[i]) != 0) {
				fetch_fail(f, "fetching bodies: the connection "
				    "closed");
				goto out;
			}
		}
		for (i = 0; i < n; i++) {
			const struct msg *x = msg_get(f->mb, ids[i]);
			uint8_t *plain = NULL, h[32];
			size_t plen = 0, blen;

			rc = sp_client_wait(w->c, reqs[i], &m);
			if ((rc = sp_client_expect(rc, m, SP_MSG_BLOB_DATA,
			    "fetching bodies", err, sizeof(err))) != 0) {
				sp_client_msg_free(m);
				m = NULL;
				if (rc != SP_ESERVER) {
					fetch_fail(f, err);
					goto out;
				}
				fetch_push(f, ids[i], NULL, 0); /* blob gone */
				continue;
			}
			if (m->f.f[SP_F_SIZE].u <= BLOB_CHUNK &&
			    m->f.f[SP_F_DATA].len == m->f.f[SP_F_SIZE].u) {
				blen = m->f.f[SP_F_DATA].len;
				crypto_generichash(h, 32, m->f.f[SP_F_DATA].ptr,
				    blen, NULL, 0);
				rc = sodium_memcmp(h, x->m.meta.blob_id, 32) ?
				    SP_EAUTH : body_open(f->mb,
				    m->f.f[SP_F_DATA].ptr, blen, &plain, &plen);
				sp_client_msg_free(m);
				m = NULL;
			} else {
				/* more than one chunk: the rest, in order,
				 * once this window's replies are read */
				sp_client_msg_free(m);
				m = NULL;
				rc = -1;
			}
			if (rc == -1)
				ids[i] |= (uint64_t)1 << 63;   /* later */
			else
				fetch_push(f, ids[i], rc == 0 ? plain : NULL,
				    plen);
		}
		for (i = 0; i < n; i++) {
			const struct msg *x;
			uint8_t *plain = NULL, *blob = NULL;
			size_t plen = 0, blen = 0;

			if (!(ids[i] >> 63))
				continue;
			ids[i] &= ~((uint64_t)1 << 63);
			x = msg_get(f->mb, ids[i]);
			rc = blob_get(w->c, x->m.meta.blob_id, &blob, &blen,
			    err, sizeof(err));
			if (rc == EPIPE || rc == ETIMEDOUT) {
				fetch_fail(f, err);
				goto out;
			}
			if (rc == 0)
				rc = body_open(f->mb, blob, blen, &plain,
				    &plen);
			free(blob);
			fetch_push(f, ids[i], rc == 0 ? plain : NULL, plen);
		}
	}
out:
	pthread_mutex_lock(&f->mu);
	f->workers--;
	pthread_cond_broadcast(&f->cv_item);
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

int
sp_mbox_fetch_bodies_par(sp_mbox *mb, sp_client *const *cs, size_t ncs,
    void (*progress)(void *, uint64_t, uint64_t), void *arg,
    size_t *failed_r, char *err, size_t errlen)
{
	struct fetch f = { .mb = mb };
	struct fetcher *w = NULL;
	sp_cache_batch *b = NULL;
	size_t i, done = 0, inbatch = 0, failed = 0, started = 0;
	int rc = 0;

	if (failed_r)
		*failed_r = 0;
	if (ncs == 0)
		return SP_EINVAL;
	if ((f.want = calloc(mb->nmsgs + 1, sizeof(*f.want))) == NULL ||
	    (w = calloc(ncs, sizeof(*w))) == NULL) {
		free(f.want);
		return SP_ENOMEM;
	}
	for (i = 0; i < mb->nmsgs; i++) {
		uint8_t key[8];

		if (mb->msgs[i]->m.meta.blob_id_len != 32)
			continue;
		sp_put_be64(key, mb->msgs[i]->m.id);
		if (sp_cache_has(mb->cache, SP_CACHE_T_BODY, key, 8) == 0)
			continue;
		f.want[f.nwant++] = mb->msgs[i]->m.id;
	}
	pthread_mutex_init(&f.mu, NULL);
	pthread_cond_init(&f.cv_item, NULL);
	pthread_cond_init(&f.cv_space, NULL);
	for (i = 0; i < ncs && f.nwant > 0; i++) {
		w[i].f = &f;
		w[i].c = cs[i];
		pthread_mutex_lock(&f.mu);
		f.workers++;
		pthread_mutex_unlock(&f.mu);
		if (pthread_create(&w[i].th, NULL, fetcher_run, &w[i]) != 0) {
			pthread_mutex_lock(&f.mu);
			f.workers--;
			pthread_mutex_unlock(&f.mu);
			break;
		}
		started++;
	}
	if (started == 0 && f.nwant > 0) {
		rc = SP_ENOMEM;
		goto out;
	}
	for (;;) {
		struct fetched it;
		uint8_t key[8];

		pthread_mutex_lock(&f.mu);
		while (f.qlen == 0 && f.workers > 0)
			pthread_cond_wait(&f.cv_item, &f.mu);
		if (f.qlen == 0) {
			pthread_mutex_unlock(&f.mu);
			break;
		}
		it = f.q[f.qhead];
		f.qhead = (f.qhead + 1) % FETCH_QUEUE;
		f.qlen--;
		pthread_cond_signal(&f.cv_space);
		pthread_mutex_unlock(&f.mu);
		done++;
		if (it.plain == NULL) {
			failed++;
			continue;
		}
		if (rc == 0 && b == NULL)
			rc = sp_cache_begin(mb->cache, &b);
		sp_put_be64(key, it.id);
		if (rc == 0)
			rc = sp_cache_batch_put(b, SP_CACHE_T_BODY, key, 8,
			    it.plain, it.len);
		sodium_free(it.plain);
		if (rc == 0 && ++inbatch == FETCH_COMMIT) {
			rc = sp_cache_commit(b);
			b = NULL;
			inbatch = 0;
		}
		if (rc != 0) {
			char why[256];

			set_err(why, sizeof(why), "caching bodies", rc);
			fetch_fail(&f, why);
		}
		if (progress && rc == 0)
			progress(arg, done, f.nwant);
	}
	if (b != NULL) {
		if (rc == 0)
			rc = sp_cache_commit(b);
		else
			sp_cache_abort(b);
	}
	if (rc == 0 && f.fatal)
		rc = EPIPE;
	if (rc != 0)
		snprintf(err, errlen, "%s", f.err[0] ? f.err :
		    "caching bodies failed");
out:
	for (i = 0; i < started; i++)
		pthread_join(w[i].th, NULL);
	while (f.qlen > 0) {
		if (f.q[f.qhead].plain)
			sodium_free(f.q[f.qhead].plain);
		f.qhead = (f.qhead + 1) % FETCH_QUEUE;
		f.qlen--;
	}
	pthread_mutex_destroy(&f.mu);
	pthread_cond_destroy(&f.cv_item);
	pthread_cond_destroy(&f.cv_space);
	free(w);
	free(f.want);
	if (failed_r)
		*failed_r = failed;
	return rc;
}

int
sp_mbox_fetch_bodies(sp_mbox *mb, sp_client *c,
    void (*progress)(void *, uint64_t, uint64_t), void *arg,
    size_t *failed_r, char *err, size_t errlen)
{
	return sp_mbox_fetch_bodies_par(mb, &c, 1, progress, arg, failed_r,
	    err, errlen);
}

/* ---- changes ------------------------------------------------------------- */

/* Seals and APPENDs records (each a plaintext of the given kinds), then
 * pulls and applies.  first_r (may be NULL) gets the first new seq. */
static int
append_records(sp_client *c, uint8_t *const *env, const size_t *envlen,
    size_t n, uint64_t *first_r, const char *what, char *err, size_t errlen)
{
	struct sp_client_msg *m = NULL;
	struct sp_frame f;
	size_t i;
	int rc;

	sp_frame_init(&f, SP_MSG_APPEND, 0);
	for (i = 0; i < n; i++)
		if ((rc = sp_frame_add_item(&f, SP_F_RECORDS, env[i], envlen[i],
		    0)) != 0) {
			snprintf(err, errlen, "too many records at once");
			return rc;
		}
	if ((rc = call(c, &f, SP_MSG_APPENDED, what, &m, err, errlen)) != 0)
		return rc;
	if (first_r)
		*first_r = m->f.f[SP_F_SEQ].u;
	sp_client_msg_free(m);
	return 0;
}

/* APPENDs, then pulls and applies. */
static int
append_sealed(sp_mbox *mb, sp_client *c, uint8_t *const *env,
    const size_t *envlen, size_t n, uint64_t *first_r, char *err,
    size_t errlen)
{
	int rc = append_records(c, env, envlen, n, first_r,
	    "saving the change", err, errlen);

	return rc ? rc : sp_mbox_sync(mb, c, err, errlen);
}

static int
seal_own(sp_mbox *mb, unsigned kind, const uint8_t *p, size_t n, int sign,
    uint8_t **env_r, size_t *len_r)
{
	struct sp_envelope_seal_args a = { .kind = kind,
	    .mailbox_key = sp_keyset_mailbox_key(mb->ks),
	    .signer = sign ? mb->ks : NULL };

	return sp_envelope_seal(&a, p, n, env_r, len_r);
}

static int
append_change(sp_mbox *mb, sp_client *c, const uint8_t *p, size_t n,
    uint64_t *seq_r, char *err, size_t errlen)
{
	uint8_t *env = NULL;
	size_t elen = 0;
	int rc;

	if ((rc = seal_own(mb, SP_ENVELOPE_KIND_CHANGE, p, n, 0, &env,
	    &elen)) != 0) {
		set_err(err, errlen, "sealing the change", rc);
		return rc;
	}
	rc = append_sealed(mb, c, &env, &elen, 1, seq_r, err, errlen);
	free(env);
	return rc;
}

/* A growing byte buffer for change records. */
struct wbuf {
	uint8_t *p;
	size_t n, cap;
	int bad;
};

static void
wb_put(struct wbuf *w, const void *d, size_t n)
{
	if (w->bad || grow((void **)&w->p, &w->cap, w->n + n, 1) != 0) {
		w->bad = 1;
		return;
	}
	memcpy(w->p + w->n, d, n);
	w->n += n;
}

static void
wb_uint(struct wbuf *w, uint64_t v, size_t n)
{
	uint8_t b[8];
	size_t i;

	for (i = 0; i < n; i++)
		b[n - 1 - i] = (uint8_t)(v >> (8 * i));
	wb_put(w, b, n);
}

static int
ids_check(sp_mbox *mb, const uint64_t *ids, size_t n, char *err,
    size_t errlen)
{
	size_t i;

	if (n == 0 || n > SP_MBOX_BATCH_MAX) {
		snprintf(err, errlen, "between 1 and %d messages at a time",
		    SP_MBOX_BATCH_MAX);
		return SP_EINVAL;
	}
	for (i = 0; i < n; i++)
		if (msg_get(mb, ids[i]) == NULL) {
			snprintf(err, errlen, "no message %llu",
			    (unsigned long long)ids[i]);
			return ENOENT;
		}
	return 0;
}

static int
wb_done(struct wbuf *w, sp_mbox *mb, sp_client *c, uint64_t *seq_r,
    char *err, size_t errlen)
{
	int rc;

	if (w->bad) {
		free(w->p);
		snprintf(err, errlen, "out of memory");
		return SP_ENOMEM;
	}
	rc = append_change(mb, c, w->p, w->n, seq_r, err, errlen);
	free(w->p);
	return rc;
}

static void
wb_head(struct wbuf *w, unsigned op)
{
	uint8_t h[2] = { CHANGE_VERSION, (uint8_t)op };

	wb_put(w, h, 2);
}

static void
wb_ids(struct wbuf *w, const uint64_t *ids, size_t n)
{
	size_t i;

	wb_uint(w, n, 2);
	for (i = 0; i < n; i++)
		wb_uint(w, ids[i], 8);
}

static int
wb_keywords(struct wbuf *w, const char *const *kw, size_t n, char *err,
    size_t errlen)
{
	size_t i;

	if (n > 255) {
		snprintf(err, errlen, "too many keywords");
		return SP_EINVAL;
	}
	wb_uint(w, n, 1);
	for (i = 0; i < n; i++) {
		if (!keyword_ok(kw[i])) {
			snprintf(err, errlen, "not a valid keyword: %s", kw[i]);
			return SP_EINVAL;
		}
		wb_uint(w, strlen(kw[i]), 1);
		wb_put(w, kw[i], strlen(kw[i]));
	}
	return 0;
}

int
sp_mbox_set_flags(sp_mbox *mb, sp_client *c, const uint64_t *ids, size_t n,
    uint32_t add, uint32_t remove, const char *const *kw_add, size_t nkw_add,
    const char *const *kw_remove, size_t nkw_remove, char *err,
    size_t errlen)
{
	struct wbuf w = { 0 };
	int rc;

	if ((rc = ids_check(mb, ids, n, err, errlen)) != 0)
		return rc;
	wb_head(&w, OP_FLAGS);
	wb_ids(&w, ids, n);
	wb_uint(&w, add & SP_MBOX_F_SYSTEM, 4);
	wb_uint(&w, remove & SP_MBOX_F_SYSTEM, 4);
	if ((rc = wb_keywords(&w, kw_add, nkw_add, err, errlen)) != 0 ||
	    (rc = wb_keywords(&w, kw_remove, nkw_remove, err, errlen)) != 0) {
		free(w.p);
		return rc;
	}
	return wb_done(&w, mb, c, NULL, err, errlen);
}

int
sp_mbox_move(sp_mbox *mb, sp_client *c, const uint64_t *ids, size_t n,
    uint32_t folder, char *err, size_t errlen)
{
	struct wbuf w = { 0 };
	int rc;

	if ((rc = ids_check(mb, ids, n, err, errlen)) != 0)
		return rc;
	if (folder_get(mb, folder) == NULL) {
		snprintf(err, errlen, "no such folder");
		return ENOENT;
	}
	wb_head(&w, OP_MOVE);
	wb_ids(&w, ids, n);
	wb_uint(&w, folder, 4);
	return wb_done(&w, mb, c, NULL, err, errlen);
}

/* Orders 32-byte blob ids. */
static int
blob_cmp(const void *a, const void *b)
{
	return memcmp(a, b, 32);
}

/* Deletes the blobs of the given (now dead) messages that no live message
 * still names.  Best effort: a blob left behind costs quota, not mail.
 * The candidates are sorted once, so one pass over the mailbox finds the
 * ones still in use (a bulk delete in a large mailbox stays linear). */
static void
blobs_release(sp_mbox *mb, sp_client *c, uint8_t (*blobs)[32], size_t n)
{
	struct sp_client_msg *m = NULL;
	struct sp_frame f;
	uint8_t *used;
	char err[128];
	size_t i, j;

	if (n == 0 || (used = calloc(n, 1)) == NULL)
		return;
	qsort(blobs, n, 32, blob_cmp);
	for (i = 0; i < mb->nmsgs; i++) {
		const uint8_t (*hit)[32];

		if (mb->msgs[i]->m.meta.blob_id_len != 32)
			continue;
		hit = bsearch(mb->msgs[i]->m.meta.blob_id, blobs, n, 32,
		    blob_cmp);
		if (hit != NULL)
			used[hit - (const uint8_t (*)[32])blobs] = 1;
	}
	/* equal ids sit together, and bsearch marks any one of them */
	for (i = 0; i < n; i = j) {
		int in_use = 0;

		for (j = i; j < n && memcmp(blobs[j], blobs[i], 32) == 0; j++)
			in_use |= used[j];
		if (in_use)
			continue;
		sp_frame_init(&f, SP_MSG_BLOB_DELETE, 0);
		sp_frame_set_bytes(&f, SP_F_BLOB_ID, blobs[i], 32);
		if (call(c, &f, SP_MSG_OK, "deleting a body", &m, err,
		    sizeof(err)) == 0)
			sp_client_msg_free(m);
	}
	free(used);
}

static int
collect_blobs(sp_mbox *mb, const uint64_t *ids, size_t n,
    uint8_t (**blobs_r)[32], size_t *nb_r)
{
	uint8_t (*b)[32];
	size_t i, k = 0;

	if ((b = calloc(n ? n : 1, 32)) == NULL)
		return SP_ENOMEM;
	for (i = 0; i < n; i++) {
		struct msg *x = msg_get(mb, ids[i]);

		if (x && x->m.meta.blob_id_len == 32)
			memcpy(b[k++], x->m.meta.blob_id, 32);
	}
	*blobs_r = b;
	*nb_r = k;
	return 0;
}

int
sp_mbox_delete(sp_mbox *mb, sp_client *c, const uint64_t *ids, size_t n,
    char *err, size_t errlen)
{
	struct wbuf w = { 0 };
	uint8_t (*blobs)[32] = NULL;
	size_t nb = 0;
	int rc;

	if ((rc = ids_check(mb, ids, n, err, errlen)) != 0)
		return rc;
	if ((rc = collect_blobs(mb, ids, n, &blobs, &nb)) != 0)
		return rc;
	wb_head(&w, OP_DELETE);
	wb_ids(&w, ids, n);
	if ((rc = wb_done(&w, mb, c, NULL, err, errlen)) == 0)
		blobs_release(mb, c, blobs, nb);
	free(blobs);
	return rc;
}

int
sp_mbox_folder_create(sp_mbox *mb, sp_client *c, const char *name,
    uint32_t *id_r, char *err, size_t errlen)
{
	struct wbuf w = { 0 };
	uint64_t seq = 0;
	int rc;

	if (!name_ok(name) || !sp_utf8_valid((const uint8_t *)name,
	    strlen(name))) {
		snprintf(err, errlen, "not a valid folder name: %s", name);
		return SP_EINVAL;
	}
	if (folder_named(mb, name)) {
		snprintf(err, errlen, "a folder %s exists", name);
		return EEXIST;
	}
	wb_head(&w, OP_FOLDER_CREATE);
	wb_uint(&w, strlen(name), 2);
	wb_put(&w, name, strlen(name));
	if ((rc = wb_done(&w, mb, c, &seq, err, errlen)) != 0)
		return rc;
	/* Another device may have created the same name first. */
	if (folder_get(mb, (uint32_t)(SP_MBOX_USER_BASE + seq)) == NULL) {
		snprintf(err, errlen, "a folder %s exists", name);
		return EEXIST;
	}
	if (id_r)
		*id_r = (uint32_t)(SP_MBOX_USER_BASE + seq);
	return 0;
}

int
sp_mbox_folder_rename(sp_mbox *mb, sp_client *c, uint32_t id,
    const char *name, char *err, size_t errlen)
{
	struct wbuf w = { 0 };

	if (id < SP_MBOX_USER_BASE) {
		snprintf(err, errlen, "system folders cannot be renamed");
		return EPERM;
	}
	if (folder_get(mb, id) == NULL) {
		snprintf(err, errlen, "no such folder");
		return ENOENT;
	}
	if (!name_ok(name) || !sp_utf8_valid((const uint8_t *)name,
	    strlen(name))) {
		snprintf(err, errlen, "not a valid folder name: %s", name);
		return SP_EINVAL;
	}
	if (folder_named(mb, name)) {
		snprintf(err, errlen, "a folder %s exists", name);
		return EEXIST;
	}
	wb_head(&w, OP_FOLDER_RENAME);
	wb_uint(&w, id, 4);
	wb_uint(&w, strlen(name), 2);
	wb_put(&w, name, strlen(name));
	return wb_done(&w, mb, c, NULL, err, errlen);
}

int
sp_mbox_folder_delete(sp_mbox *mb, sp_client *c, uint32_t id, char *err,
    size_t errlen)
{
	struct wbuf w = { 0 };
	struct folder *f = folder_get(mb, id);
	uint8_t (*blobs)[32] = NULL;
	uint64_t *ids = NULL;
	size_t nb = 0, i;
	int rc;

	if (id < SP_MBOX_USER_BASE) {
		snprintf(err, errlen, "system folders cannot be deleted");
		return EPERM;
	}
	if (f == NULL) {
		snprintf(err, errlen, "no such folder");
		return ENOENT;
	}
	if ((ids = calloc(f->n + 1, sizeof(*ids))) == NULL)
		return SP_ENOMEM;
	for (i = 0; i < f->n; i++)
		ids[i] = f->v[i]->m.id;
	rc = collect_blobs(mb, ids, f->n, &blobs, &nb);
	free(ids);
	if (rc != 0)
		return rc;
	wb_head(&w, OP_FOLDER_DELETE);
	wb_uint(&w, id, 4);
	if ((rc = wb_done(&w, mb, c, NULL, err, errlen)) == 0)
		blobs_release(mb, c, blobs, nb);
	free(blobs);
	return rc;
}

int
sp_mbox_folder_subscribe(sp_mbox *mb, sp_client *c, uint32_t id, int on,
    char *err, size_t errlen)
{
	struct wbuf w = { 0 };

	if (folder_get(mb, id) == NULL) {
		snprintf(err, errlen, "no such folder");
		return ENOENT;
	}
	wb_head(&w, OP_SUBSCRIBE);
	wb_uint(&w, id, 4);
	wb_uint(&w, on != 0, 1);
	return wb_done(&w, mb, c, NULL, err, errlen);
}

/* The metadata record of an own message: the summary plus our fields. */
static int
own_meta(sp_mbox *mb, const struct sp_mbox_add *a, const struct sp_meta *base,
    const uint8_t blob_id[32], uint8_t **out_r, size_t *len_r)
{
	struct sp_meta m = *base;
	char kw[SP_MBOX_KEYWORDS_MAX * (SP_MBOX_KEYWORD_MAX + 1) + 1] = "";
	size_t i;

	(void)mb;
	for (i = 0; i < a->nkeywords && i < SP_MBOX_KEYWORDS_MAX; i++) {
		if (!keyword_ok(a->keywords[i]))
			return SP_EINVAL;
		if (i)
			strcat(kw, " ");
		strcat(kw, a->keywords[i]);
	}
	m.keywords = kw[0] ? kw : NULL;
	m.folder_id = a->folder;
	m.has_folder_id = 1;
	m.flags = a->flags & SP_MBOX_F_SYSTEM;
	if (a->sign)
		m.flags |= SP_META_F_SIGNED;
	m.has_flags = 1;
	m.received = a->received ? a->received : (uint64_t)time(NULL);
	m.has_received = 1;
	if (a->bcc)
		m.bcc = (char *)(uintptr_t)a->bcc;
	m.blob_id = (uint8_t *)(uintptr_t)blob_id;
	m.blob_id_len = 32;
	return sp_meta_encode(&m, out_r, len_r);
}

/* The summary of msg; one that does not parse still has its size. */
static void
summary_of(const uint8_t *msg, size_t len, struct sp_meta *summary)
{
	if (sp_summary_from_message(msg, len, summary) != 0) {
		memset(summary, 0, sizeof(*summary));
		summary->size = len;
		summary->has_size = 1;
	}
}

/* The sealed metadata record of an own message whose body is blob_id. */
static int
seal_meta_record(sp_mbox *mb, const struct sp_mbox_add *a, const uint8_t *msg,
    size_t len, const uint8_t blob_id[32], uint8_t **env_r, size_t *elen_r,
    char *err, size_t errlen)
{
	struct sp_meta summary;
	uint8_t *meta = NULL;
	size_t mlen = 0;
	int rc;

	if (folder_get(mb, a->folder) == NULL) {
		snprintf(err, errlen, "no such folder");
		return ENOENT;
	}
	/* the Bcc header of a summary is replaced by a->bcc */
	summary_of(msg, len, &summary);
	rc = own_meta(mb, a, &summary, blob_id, &meta, &mlen);
	sp_meta_finish(&summary);
	if (rc == 0)
		rc = seal_own(mb, SP_ENVELOPE_KIND_META, meta, mlen, a->sign,
		    env_r, elen_r);
	if (meta) {
		sodium_memzero(meta, mlen);
		free(meta);
	}
	if (rc != 0)
		set_err(err, errlen, "sealing the message", rc);
	return rc;
}

/* Seals msg as a body under the mailbox key and uploads it. */
static int
upload_body(sp_mbox *mb, sp_client *c, const struct sp_mbox_add *a,
    const uint8_t *msg, size_t len, uint8_t id_r[32], char *err,
    size_t errlen)
{
	uint8_t *env = NULL;
	size_t elen = 0;
	int rc;

	if ((rc = seal_own(mb, SP_ENVELOPE_KIND_BODY, msg, len, a->sign, &env,
	    &elen)) != 0) {
		set_err(err, errlen, "sealing the message", rc);
		return rc;
	}
	rc = sp_mbox_blob_put(c, env, elen, id_r, err, errlen);
	free(env);
	return rc;
}

int
sp_mbox_add_uploaded(sp_mbox *mb, sp_client *c, const struct sp_mbox_add *a,
    const uint8_t *msg, size_t len, const uint8_t blob_id[32], uint64_t *id_r,
    char *err, size_t errlen)
{
	uint8_t *env = NULL;
	size_t elen = 0;
	int rc;

	if ((rc = seal_meta_record(mb, a, msg, len, blob_id, &env, &elen, err,
	    errlen)) == 0)
		rc = append_sealed(mb, c, &env, &elen, 1, id_r, err, errlen);
	free(env);
	return rc;
}

int
sp_mbox_add(sp_mbox *mb, sp_client *c, const struct sp_mbox_add *a,
    const uint8_t *msg, size_t len, uint64_t *id_r, char *err, size_t errlen)
{
	uint8_t id[32];
	int rc;

	if ((rc = upload_body(mb, c, a, msg, len, id, err, errlen)) != 0)
		return rc;
	return sp_mbox_add_uploaded(mb, c, a, msg, len, id, id_r, err, errlen);
}

int
sp_mbox_add_many(sp_mbox *mb, sp_client *c, const struct sp_mbox_add *a,
    const uint8_t *const *msgs, const size_t *lens, size_t n, size_t *done_r,
    char *err, size_t errlen)
{
	uint8_t *env[APPEND_MAX], id[32];
	size_t elen[APPEND_MAX], i, k = 0, done = 0;
	int rc = 0;

	if (done_r)
		*done_r = 0;
	for (i = 0; i < n && rc == 0; i++) {
		if (folder_get(mb, a[i].folder) == NULL) {   /* before uploading */
			snprintf(err, errlen, "no such folder");
			rc = ENOENT;
			break;
		}
		if ((rc = upload_body(mb, c, &a[i], msgs[i], lens[i], id, err,
		    errlen)) != 0 ||
		    (rc = seal_meta_record(mb, &a[i], msgs[i], lens[i], id,
		    &env[k], &elen[k], err, errlen)) != 0)
			break;
		k++;
		if (k < APPEND_MAX && i + 1 < n)
			continue;
		if ((rc = append_records(c, env, elen, k, NULL,
		    "saving the messages", err, errlen)) == 0)
			done += k;
		while (k > 0)
			free(env[--k]);
	}
	while (k > 0)
		free(env[--k]);
	if (done_r)
		*done_r = done;
	if (rc == 0 || done > 0) {
		int src = sp_mbox_sync(mb, c, rc ? NULL : err, rc ? 0 : errlen);

		if (rc == 0)
			rc = src;
	}
	return rc;
}

int
sp_mbox_copy(sp_mbox *mb, sp_client *c, const uint64_t *ids, size_t n,
    uint32_t folder, uint64_t *new_ids_r, char *err, size_t errlen)
{
	uint8_t *env[APPEND_MAX];
	size_t elen[APPEND_MAX], i, k = 0, done = 0;
	uint64_t first = 0;
	int rc = 0;

	if ((rc = ids_check(mb, ids, n, err, errlen)) != 0)
		return rc;
	if (folder_get(mb, folder) == NULL) {
		snprintf(err, errlen, "no such folder");
		return ENOENT;
	}
	while (done < n && rc == 0) {
		for (k = 0; k < APPEND_MAX && done + k < n && rc == 0; k++) {
			const struct msg *x = msg_get(mb, ids[done + k]);
			struct sp_mbox_add a = { .folder = folder,
			    .flags = x->m.flags, .received = x->m.received,
			    .keywords = (const char *const *)x->m.keywords,
			    .nkeywords = x->m.nkeywords };
			struct sp_meta base = x->m.meta;
			uint8_t *meta = NULL;
			size_t mlen = 0;

			env[k] = NULL;
			if (x->m.meta.blob_id_len != 32) {
				rc = SP_EFORMAT;
				break;
			}
			base.bcc = NULL;
			if ((rc = own_meta(mb, &a, &base, x->m.meta.blob_id,
			    &meta, &mlen)) == 0)
				rc = seal_own(mb, SP_ENVELOPE_KIND_META, meta,
				    mlen, 0, &env[k], &elen[k]);
			if (meta) {
				sodium_memzero(meta, mlen);
				free(meta);
			}
		}
		if (rc == 0)
			rc = append_sealed(mb, c, env, elen, k, &first, err,
			    errlen);
		else
			set_err(err, errlen, "copying", rc);
		for (i = 0; i < k; i++) {
			free(env[i]);
			if (rc == 0 && new_ids_r)
				new_ids_r[done + i] = first + i;
		}
		done += k;
	}
	return rc;
}

/* ---- snapshot and compaction (format.md §12.5, protocol.md 7.6) --------- */

/* Appends one sealed change record, only if the log's last is *last;
 * on success *last is the new last. */
static int
append_if(sp_mbox *mb, sp_client *c, const uint8_t *p, size_t n,
    uint64_t *last, char *err, size_t errlen)
{
	struct sp_client_msg *m = NULL;
	struct sp_frame f;
	uint8_t *env = NULL;
	size_t elen = 0;
	int rc;

	if ((rc = seal_own(mb, SP_ENVELOPE_KIND_CHANGE, p, n, 0, &env,
	    &elen)) != 0) {
		set_err(err, errlen, "sealing the snapshot", rc);
		return rc;
	}
	sp_frame_init(&f, SP_MSG_APPEND, 0);
	sp_frame_set_uint(&f, SP_F_EXPECTED, *last);
	if ((rc = sp_frame_add_item(&f, SP_F_RECORDS, env, elen, 0)) == 0)
		rc = call(c, &f, SP_MSG_APPENDED, "writing the snapshot", &m,
		    err, errlen);
	if (rc == 0)
		*last = m->f.f[SP_F_LAST].u;
	sp_client_msg_free(m);
	free(env);
	return rc;
}

int
sp_mbox_compact(sp_mbox *mb, sp_client *c, char *err, size_t errlen)
{
	struct sp_client_msg *m = NULL;
	struct sp_frame f;
	struct wbuf w = { 0 };
	uint8_t *folders = NULL;
	size_t flen = 0, i = 0, nparts = 0, pass, countpos = 0;
	uint64_t base, last;
	uint32_t part = 0, count = 0;
	int rc;

	if ((rc = sp_mbox_sync(mb, c, err, errlen)) != 0)
		return rc;
	base = last = mb->applied;
	if (base < 2 || base + 1 == mb->log_start) {
		snprintf(err, errlen, "nothing to compact");
		return 0;
	}
	if ((rc = folders_encode(mb, &folders, &flen)) != 0)
		return rc;
	/* Pass 0 counts the parts, pass 1 writes them: each part says how
	 * many there are, so a reader knows when the snapshot is whole. */
	for (pass = 0; pass < 2 && rc == 0; pass++) {
		part = 0;
		i = 0;
		do {
			uint8_t *val = NULL;
			size_t vlen = 0;

			w.n = 0;
			w.bad = 0;
			wb_head(&w, OP_SNAPSHOT);
			wb_uint(&w, base, 8);
			wb_uint(&w, part, 4);
			wb_uint(&w, pass ? nparts : 1, 4);
			if (part == 0) {
				wb_uint(&w, flen, 4);
				wb_put(&w, folders, flen);
			}
			countpos = w.n;
			wb_uint(&w, 0, 4);
			count = 0;
			while (i < mb->nmsgs && rc == 0) {
				if ((rc = msg_encode(mb->msgs[i], &val,
				    &vlen)) != 0)
					break;
				if (count > 0 && w.n + 12 + vlen >
				    SNAP_PART_MAX) {
					sodium_memzero(val, vlen);
					free(val);
					break;
				}
				wb_uint(&w, mb->msgs[i]->m.id, 8);
				wb_uint(&w, vlen, 4);
				wb_put(&w, val, vlen);
				sodium_memzero(val, vlen);
				free(val);
				count++;
				i++;
			}
			if (w.bad)
				rc = SP_ENOMEM;
			if (rc != 0)
				break;
			sp_put_be32(w.p + countpos, count);
			if (pass == 1 && (rc = append_if(mb, c, w.p, w.n, &last,
			    err, errlen)) != 0) {
				if (rc == SP_ESERVER)
					snprintf(err, errlen, "the log moved "
					    "while the snapshot was written (another "
					    "device?): nothing was compacted; try "
					    "again");
				break;
			}
			part++;
		} while (i < mb->nmsgs);
		nparts = part;
	}
	if (w.p) {
		sodium_memzero(w.p, w.cap);
		free(w.p);
	}
	free(folders);
	if (rc != 0)
		return rc;
	sp_frame_init(&f, SP_MSG_COMPACT, 0);
	sp_frame_set_uint(&f, SP_F_SEQ, base);
	if ((rc = call(c, &f, SP_MSG_OK, "compacting the log", &m, err,
	    errlen)) != 0)
		return rc;
	sp_client_msg_free(m);
	return sp_mbox_sync(mb, c, err, errlen);
}
