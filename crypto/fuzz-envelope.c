/*
 * libFuzzer target: envelope decoder.  Input is untrusted envelope bytes;
 * the key set is fixed, so seeds sealed to it (fuzz-corpus/envelope) reach
 * the chunk code too.  Any crash, leak or sanitizer report is a bug.
 */
#include <stdlib.h>
#include <string.h>

#include "crypto/envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Key set from a fixed serialization: seed 0x01.., x25519 0x02.., mbx 0x03.. */
static sp_keyset *
fixed_keyset(void)
{
	static sp_keyset *ks;
	uint8_t ser[SP_KEYSET_FIXEDBYTES] = { 1 };

	if (ks == NULL) {
		memset(ser + 1, 1, 32);
		memset(ser + 33, 2, 32);
		memset(ser + 65, 3, 32);
		if (sp_keyset_parse(ser, sizeof(ser), &ks) != 0)
			abort();
	}
	return ks;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sp_envelope *r;
	uint8_t *buf, part[64];
	uint64_t n;

	if (sp_envelope_open(data, size, fixed_keyset(), &r) != 0)
		return 0;
	n = sp_envelope_content_length(r);
	if (sp_envelope_read(r, n / 2, part, n - n / 2 < 64 ? n - n / 2 : 64))
		(void)0;
	if (n < (1u << 24) && (buf = malloc(n ? n : 1)) != NULL) {
		if (sp_envelope_read_all(r, buf, n))
			(void)0;
		free(buf);
	}
	sp_envelope_close(r);
	return 0;
}
