/*
 * libFuzzer: the SMTP submission reader (lines, DATA after "DATA") and
 * the path and parameter parsers on every line, fed in chunks whose sizes
 * come from the input's first byte.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/smtp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	smtp_parser *p;
	size_t step, off = 1;

	if (size < 1 || smtp_parser_create(&p) != 0)
		return 0;
	step = (size_t)(data[0] % 16) + 1;
	while (off < size) {
		struct smtp_event ev;
		size_t used = 0, n = size - off < step ? size - off : step;
		enum smtp_ev e = smtp_parser_feed(p, data + off, n, &used, &ev);

		off += used;
		if (e == SMTP_EV_LINE) {
			char verb[16], addr[SMTP_ADDR_MAX + 1], k[32], v[256];
			const char *rest, *params, *err;
			uint8_t b64[256];

			if (smtp_parse_verb(ev.line, verb, &rest) == 0) {
				if (strcmp(verb, "DATA") == 0)
					smtp_parser_begin_data(p, 4096);
				if (smtp_parse_path(rest, strcmp(verb, "MAIL")
				    == 0 ? "FROM:" : "TO:", verb[0] & 1, addr,
				    &params, &err) == 0)
					while (smtp_parse_param(&params, k, v,
					    &err) == 1)
						;
			}
			(void)smtp_base64_decode(ev.line, b64, sizeof(b64));
		} else if (e == SMTP_EV_DATA) {
			size_t len;

			free(smtp_parser_take_data(p, &len));
		}
	}
	smtp_parser_destroy(p);
	return 0;
}
