/* libFuzzer: SMTP replies from a remote MTA (outbound_reply.h), fed in
 * pieces whose sizes come from the input, so every split is tried. */
#include <stddef.h>
#include <stdint.h>

#include "server/gateway/outbound_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sp_ob_reply r;
	size_t off = 1, used;
	unsigned step = size ? (data[0] % 7) + 1 : 1;

	sp_ob_reply_init(&r);
	while (off < size) {
		size_t n = size - off < step ? size - off : step;
		int rc = sp_ob_reply_feed(&r, data + off, n, &used);

		if (used > n)
			__builtin_trap();
		off += used;
		if (rc < 0)
			break;
		if (rc == 1) {
			if (r.code < 200 || r.code > 599 ||
			    r.text_len > SP_OB_REPLY_TEXT)
				__builtin_trap();
			sp_ob_reply_init(&r);
		}
	}
	return 0;
}
