/*
 * libFuzzer: the POP3 command reader and splitter, fed in chunks whose
 * sizes come from the input's first byte.
 */
#include <stdint.h>
#include <string.h>

#include "bridge/pop3_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct pop3_reader r;
	size_t step, off = 1;

	if (size < 1)
		return 0;
	pop3_reader_reset(&r);
	step = (size_t)(data[0] % 16) + 1;
	while (off < size) {
		struct pop3_cmd c;
		const char *err;
		size_t used = 0, n = size - off < step ? size - off : step;

		if (pop3_reader_feed(&r, data + off, n, &used) == POP3_EV_LINE &&
		    pop3_parse_cmd(r.line, &c, &err) == 0 && c.nargs > 0)
			(void)pop3_parse_num(c.arg[0], 1000);
		off += used;
	}
	return 0;
}
