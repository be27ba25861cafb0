#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/meta.h"
#include "crypto/text.h"

enum { T_TEXT, T_U64, T_U32, T_BYTES };

/* The table that drives both directions: tag, type, field offset. */
static const struct meta_field {
	uint8_t tag;
	uint8_t type;
	size_t off;
} meta_fields[] = {
	{ SP_META_FROM, T_TEXT, offsetof(struct sp_meta, from) },
	{ SP_META_TO, T_TEXT, offsetof(struct sp_meta, to) },
	{ SP_META_CC, T_TEXT, offsetof(struct sp_meta, cc) },
	{ SP_META_BCC, T_TEXT, offsetof(struct sp_meta, bcc) },
	{ SP_META_SUBJECT, T_TEXT, offsetof(struct sp_meta, subject) },
	{ SP_META_DATE, T_U64, offsetof(struct sp_meta, date) },
	{ SP_META_SIZE, T_U64, offsetof(struct sp_meta, size) },
	{ SP_META_FLAGS, T_U32, offsetof(struct sp_meta, flags) },
	{ SP_META_AUTH_RESULTS, T_TEXT, offsetof(struct sp_meta, auth_results) },
	{ SP_META_MESSAGE_ID, T_TEXT, offsetof(struct sp_meta, message_id) },
	{ SP_META_FOLDER, T_TEXT, offsetof(struct sp_meta, folder) },
	{ SP_META_BLOB_ID, T_BYTES, 0 },
	{ SP_META_FOLDER_ID, T_U32, offsetof(struct sp_meta, folder_id) },
	{ SP_META_KEYWORDS, T_TEXT, offsetof(struct sp_meta, keywords) },
	{ SP_META_RECEIVED, T_U64, offsetof(struct sp_meta, received) },
	{ SP_META_SPAM, T_TEXT, offsetof(struct sp_meta, spam) },
};
#define NFIELDS (sizeof(meta_fields) / sizeof(meta_fields[0]))

static int
has_field(const struct sp_meta *m, const struct meta_field *f)
{
	const char *base = (const char *)m;

	switch (f->type) {
	case T_TEXT:
		return *(char *const *)(const void *)(base + f->off) != NULL;
	case T_BYTES:
		return m->blob_id != NULL;
	case T_U64:
		return f->tag == SP_META_DATE ? m->has_date :
		    f->tag == SP_META_SIZE ? m->has_size : m->has_received;
	default:
		return f->tag == SP_META_FLAGS ? m->has_flags :
		    m->has_folder_id;
	}
}

/* Value bytes of a present field; numbers are written into tmp. */
static const uint8_t *
field_value(const struct sp_meta *m, const struct meta_field *f,
    uint8_t tmp[8], size_t *len_r)
{
	const char *base = (const char *)m;
	uint64_t v;
	int i;

	switch (f->type) {
	case T_TEXT: {
		const char *s = *(char *const *)(const void *)(base + f->off);

		*len_r = strlen(s);
		return (const uint8_t *)s;
	}
	case T_BYTES:
		*len_r = m->blob_id_len;
		return m->blob_id;
	case T_U64:
		v = *(const uint64_t *)(const void *)(base + f->off);
		for (i = 7; i >= 0; i--, v >>= 8)
			tmp[i] = (uint8_t)v;
		*len_r = 8;
		return tmp;
	default:
		v = *(const uint32_t *)(const void *)(base + f->off);
		for (i = 3; i >= 0; i--, v >>= 8)
			tmp[i] = (uint8_t)v;
		*len_r = 4;
		return tmp;
	}
}

int
sp_meta_encode(const struct sp_meta *m, uint8_t **out_r, size_t *len_r)
{
	uint8_t tmp[8], *out;
	const uint8_t *v;
	size_t i, n, total = 1, off;

	*out_r = NULL;
	for (i = 0; i < NFIELDS; i++) {
		if (!has_field(m, &meta_fields[i]))
			continue;
		v = field_value(m, &meta_fields[i], tmp, &n);
		if (n > 0xffff)
			return SP_ELIMIT;
		if (meta_fields[i].type == T_TEXT && !sp_utf8_valid(v, n))
			return SP_EINVAL;
		total += 3 + n;
	}
	if (total > SP_META_MAX)
		return SP_ELIMIT;
	if ((out = malloc(total)) == NULL)
		return SP_ENOMEM;
	out[0] = SP_META_VERSION;
	off = 1;
	for (i = 0; i < NFIELDS; i++) {
		if (!has_field(m, &meta_fields[i]))
			continue;
		v = field_value(m, &meta_fields[i], tmp, &n);
		out[off] = meta_fields[i].tag;
		out[off + 1] = (uint8_t)(n >> 8);
		out[off + 2] = (uint8_t)n;
		memcpy(out + off + 3, v, n);
		off += 3 + n;
	}
	*out_r = out;
	*len_r = total;
	return 0;
}

static const struct meta_field *
field_by_tag(uint8_t tag)
{
	size_t i;

	for (i = 0; i < NFIELDS; i++)
		if (meta_fields[i].tag == tag)
			return &meta_fields[i];
	return NULL;
}

static int
decode_field(struct sp_meta *m, const struct meta_field *f,
    const uint8_t *v, size_t n)
{
	char *base = (char *)m;
	uint64_t x = 0;
	size_t i;

	switch (f->type) {
	case T_TEXT:
	case T_BYTES: {
		char *s;

		if (f->type == T_TEXT && !sp_utf8_valid(v, n))
			return SP_EFORMAT;
		if ((s = malloc(n + 1)) == NULL)
			return SP_ENOMEM;
		memcpy(s, v, n);
		s[n] = 0;
		if (f->type == T_BYTES) {
			m->blob_id = (uint8_t *)s;
			m->blob_id_len = n;
		} else {
			*(char **)(void *)(base + f->off) = s;
		}
		return 0;
	}
	case T_U64:
		if (n != 8)
			return SP_EFORMAT;
		for (i = 0; i < 8; i++)
			x = x << 8 | v[i];
		*(uint64_t *)(void *)(base + f->off) = x;
		if (f->tag == SP_META_DATE)
			m->has_date = 1;
		else if (f->tag == SP_META_SIZE)
			m->has_size = 1;
		else
			m->has_received = 1;
		return 0;
	default:
		if (n != 4)
			return SP_EFORMAT;
		*(uint32_t *)(void *)(base + f->off) = (uint32_t)v[0] << 24 |
		    (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];
		if (f->tag == SP_META_FLAGS)
			m->has_flags = 1;
		else
			m->has_folder_id = 1;
		return 0;
	}
}

int
sp_meta_decode(const uint8_t *in, size_t len, struct sp_meta *m)
{
	const struct meta_field *f;
	size_t off = 1, n;
	int last = 0, rc;

	memset(m, 0, sizeof(*m));
	if (len < 1)
		return SP_ETRUNC;
	if (in[0] != SP_META_VERSION)
		return SP_EVERSION;
	if (len > SP_META_MAX)
		return SP_ELIMIT;
	while (off < len) {
		if (len - off < 3) {
			rc = SP_ETRUNC;
			goto fail;
		}
		if (in[off] <= last) {
			rc = SP_EFORMAT; /* out of order or repeated */
			goto fail;
		}
		last = in[off];
		n = (size_t)in[off + 1] << 8 | in[off + 2];
		if (len - off - 3 < n) {
			rc = SP_ETRUNC;
			goto fail;
		}
		if ((f = field_by_tag(in[off])) != NULL &&
		    (rc = decode_field(m, f, in + off + 3, n)) != 0)
			goto fail;
		off += 3 + n;
	}
	return 0;
fail:
	sp_meta_finish(m);
	return rc;
}

static void
free_text(char **s)
{
	if (*s) {
		sodium_memzero(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

void
sp_meta_finish(struct sp_meta *m)
{
	free_text(&m->from);
	free_text(&m->to);
	free_text(&m->cc);
	free_text(&m->bcc);
	free_text(&m->subject);
	free_text(&m->auth_results);
	free_text(&m->message_id);
	free_text(&m->folder);
	free_text(&m->keywords);
	free_text(&m->spam);
	if (m->blob_id) {
		sodium_memzero(m->blob_id, m->blob_id_len);
		free(m->blob_id);
	}
	memset(m, 0, sizeof(*m));
}
