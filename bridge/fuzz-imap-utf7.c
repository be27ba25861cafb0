/*
 * libFuzzer: modified UTF-7 both ways.  Whatever decodes must encode back
 * to the same bytes, and whatever encodes must decode back: a difference
 * would let two spellings reach one folder.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/imap_utf7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char dec[1100], enc[IMAP_UTF7_ENCODED_MAX(1100)];
	size_t d, e;

	if (size > 1024)
		return 0;
	if (imap_utf7_decode((const char *)data, size, dec, sizeof(dec),
	    &d) == 0) {
		if (imap_utf7_encode(dec, d, enc, sizeof(enc), &e) != 0 ||
		    e != size || memcmp(enc, data, size) != 0)
			abort();
	}
	if (imap_utf7_encode((const char *)data, size, enc, sizeof(enc),
	    &e) == 0) {
		if (imap_utf7_decode(enc, e, dec, sizeof(dec), &d) != 0 ||
		    d != size || memcmp(dec, data, size) != 0)
			abort();
	}
	return 0;
}
