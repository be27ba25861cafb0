/*
 * libFuzzer: the stored form of an IMAP summary (imap_summary.h).  What
 * decodes must encode back to the same bytes: two spellings of one
 * summary would mean the decoder accepts more than the encoder writes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/imap_summary.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_summary s;
	uint8_t *v = NULL;
	size_t vlen = 0;

	if (imap_summary_decode(data, size, &s) != 0)
		return 0;
	if (imap_summary_encode(&s, &v, &vlen) != 0 || vlen != size ||
	    memcmp(v, data, size) != 0)
		abort();
	free(v);
	imap_summary_finish(&s);
	return 0;
}
