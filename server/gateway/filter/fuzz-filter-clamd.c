/*
 * libFuzzer target: clamd reply parser.  Whatever the bytes, the parser
 * must not read past them, and a parsed reply must carry only printable
 * ASCII; parsing a prefix must never succeed where the whole fails.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server/gateway/filter/filter_clamd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct filter_clamd_reply r;
	size_t i;
	int err;

	err = filter_clamd_parse(data, size, 1, &r);
	if (err == 0) {
		for (i = 0; r.text[i]; i++)
			if (r.text[i] < 0x20 || r.text[i] >= 0x7f)
				abort();
		if (r.kind == FILTER_CLAMD_FOUND && r.text[0] == '\0')
			abort();
	} else if (err != SP_EFORMAT && err != SP_ETRUNC &&
	    err != SP_ELIMIT) {
		abort();
	}
	/* Without EOF, a complete reply parses the same; else need more. */
	if (filter_clamd_parse(data, size, 0, &r) == EAGAIN &&
	    err != SP_ETRUNC)
		abort();
	return 0;
}
