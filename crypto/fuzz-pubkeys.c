/*
 * libFuzzer target: public key set parser (what the key directory serves,
 * so hostile bytes from a hostile server).
 */
#include "crypto/pubkeys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sp_pubkeys p;

	if (sp_pubkeys_parse(data, size, &p) == 0 && p.pgp_len > size)
		__builtin_trap();
	return 0;
}
