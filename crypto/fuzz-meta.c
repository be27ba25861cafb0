/*
 * libFuzzer target: metadata record decoder.  A record that decodes must
 * encode again, and that encoding must decode to the same fields.
 */
#include <stdlib.h>
#include <string.h>

#include "crypto/meta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sp_meta m, m2;
	uint8_t *enc;
	size_t len;

	if (sp_meta_decode(data, size, &m) != 0)
		return 0;
	if (sp_meta_encode(&m, &enc, &len) != 0)
		abort(); /* decoded records always re-encode */
	if (sp_meta_decode(enc, len, &m2) != 0 || !same(m.subject, m2.subject) ||
	    !same(m.from, m2.from) || m.date != m2.date ||
	    m.blob_id_len != m2.blob_id_len)
		abort();
	sp_meta_finish(&m2);
	free(enc);
	sp_meta_finish(&m);
	return 0;
}
