/*
 * libFuzzer target: what client-core's send and keys code parses from
 * bytes it does not control: the header section it strips Bcc from
 * (sp_send_strip_bcc) and From:/address text (sp_keys_address, fed the
 * From: of received mail).  Checks the stripper's promises: the output
 * is never longer, stripping again removes nothing, the body is kept.
 */
#include <stdlib.h>
#include <string.h>

#include "client-core/keys.h"
#include "client-core/send.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *out = NULL, *again = NULL;
	size_t len = 0, len2 = 0, removed = 0;
	char addr[SP_KEYS_ADDR_BYTES], *s;

	if (sp_send_strip_bcc(data, size, &out, &len, &removed) != 0)
		return 0;
	if (len > size || (removed == 0 && (len != size ||
	    memcmp(out, data, size) != 0)))
		__builtin_trap();
	if (sp_send_strip_bcc(out, len, &again, &len2, &removed) == 0 &&
	    (removed != 0 || len2 != len))
		__builtin_trap();
	free(again);
	free(out);
	if (size < 1024 && (s = malloc(size + 1)) != NULL) {
		memcpy(s, data, size);
		s[size] = 0;
		if (sp_keys_address(s, addr) == 0 && strlen(addr) > 254)
			__builtin_trap();
		free(s);
	}
	return 0;
}
