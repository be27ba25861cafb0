/* libFuzzer: outbound queue entries as read back from the store
 * (outbound_entry.h); a decoded entry must encode to the same bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/gateway/outbound_entry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sp_ob_entry e;
	uint8_t *out;
	size_t len;

	if (sp_ob_entry_decode(data, size, &e) != 0)
		return 0;
	if (sp_ob_entry_encode(&e, &out, &len) != 0)
		__builtin_trap();
	if (len != size || memcmp(out, data, size) != 0)
		__builtin_trap();
	free(out);
	return 0;
}
