/*
 * libFuzzer target: the sync frame decoder.  A frame that decodes must
 * encode again, that encoding must decode to the same values, and encoding
 * those must give the same bytes (one frame, one encoding).
 */
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Which keys hold bytes or text (compared by content), which are arrays;
 * the rest are uint or bool (compared by value). */
#define B(k) (UINT64_C(1) << (k))
#define STRINGS (B(SP_F_MESSAGE) | B(SP_F_ADDRESS) | B(SP_F_TOKEN) |	\
	B(SP_F_AUTH_PK) | B(SP_F_KDF_PARAMS) | B(SP_F_VAULT) |		\
	B(SP_F_PUBKEYS) | B(SP_F_CHALLENGE) | B(SP_F_SIGNATURE) |	\
	B(SP_F_DEVICE) | B(SP_F_BLOB_ID) | B(SP_F_DATA) | B(SP_F_INVITE) | \
	B(SP_F_RECIPIENT) | B(SP_F_SESSION_ID))
#define ARRAYS (B(SP_F_RECORDS) | B(SP_F_SESSION_IDS) | B(SP_F_DEVICES) | \
	B(SP_F_CREATED) | B(SP_F_LAST_SEEN))
#define ARRAY_STRINGS (B(SP_F_RECORDS) | B(SP_F_SESSION_IDS) |		\
	B(SP_F_DEVICES))

static int
same_item(int str, const struct sp_frame_item *a,
    const struct sp_frame_item *b)
{
	if (!str)
		return a->u == b->u;
	return a->len == b->len &&
	    (a->len == 0 || memcmp(a->ptr, b->ptr, a->len) == 0);
}

static int
same(const struct sp_frame *a, const struct sp_frame *b)
{
	const struct sp_frame_item *ia, *ib;
	size_t na, nb, i;
	unsigned k;

	if (a->type != b->type || a->id != b->id || a->present != b->present)
		return 0;
	for (k = SP_F_ID + 1; k < SP_F_MAX; k++) {
		if (!sp_frame_has(a, k))
			continue;
		if (!((ARRAYS >> k) & 1)) {
			if (!same_item((STRINGS >> k) & 1, &a->f[k], &b->f[k]))
				return 0;
			continue;
		}
		ia = sp_frame_array(a, k, &na);
		ib = sp_frame_array(b, k, &nb);
		if (na != nb)
			return 0;
		for (i = 0; i < na; i++)
			if (!same_item((ARRAY_STRINGS >> k) & 1, &ia[i],
			    &ib[i]))
				return 0;
	}
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* static: two frames are 18 KiB, more than a fuzzer stack likes */
	static struct sp_frame f, g;
	uint8_t *enc, *enc2;
	size_t len, len2;
	const char *why;

	if (sp_frame_decode(data, size, &f, &why) != 0)
		return 0;
	if (sp_frame_encode(&f, 3, &enc, &len) != 0)
		abort();	/* what we accept, we can send */
	if (sp_frame_decode(enc + 3, len, &g, &why) != 0 || !same(&f, &g))
		abort();
	if (len > size)
		abort();	/* canonical is never longer */
	if (sp_frame_encode(&g, 0, &enc2, &len2) != 0 || len2 != len ||
	    memcmp(enc + 3, enc2, len) != 0)
		abort();
	free(enc2);
	free(enc);
	return 0;
}
