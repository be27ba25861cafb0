/*
 * libFuzzer target for the second-factor parsers (server/sync/
 * sync_verify.c): the first byte picks COSE_Key or a FIDO2 assertion
 * (authenticatorData of 37 bytes, then clientDataJSON), the rest is input.
 */
#include <stddef.h>
#include <stdint.h>

#include "server/sync/sync_verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t chal[32];
	struct sp_cose_key k = { .alg = SP_COSE_EDDSA, .pk_len = 32 };
	uint8_t sig[64] = { 0 };
	uint32_t counter;

	if (size < 1)
		return 0;
	if (data[0] & 1) {
		(void)sp_cose_parse(data + 1, size - 1, &k);
	} else if (size > 38) {
		(void)sp_fido_verify(&k, "example.org", chal, data + 1, 37,
		    data + 38, size - 38, sig, sizeof(sig), &counter);
	}
	return 0;
}
