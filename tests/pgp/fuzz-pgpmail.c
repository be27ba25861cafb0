/*
 * libFuzzer target for the parsers of client-core/pgpmail.h that read
 * hostile mail without gpg: armor detection, the Autocrypt header and the
 * header/structure peek (which runs both, and GMime's Content-Type).
 * The first byte picks the parser, so one corpus covers all three.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client-core/pgpmail.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sp_pgpmail_peek p;
	struct sp_autocrypt ac;
	size_t b, e;
	char *s;

	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		if (sp_armor_find(data + 1, size - 1, &b, &e) != SP_ARMOR_NONE &&
		    (b >= e || e > size - 1))
			abort();
		break;
	case 1:
		if ((s = malloc(size)) == NULL)
			return 0;
		memcpy(s, data + 1, size - 1);
		s[size - 1] = 0;
		if (sp_autocrypt_parse(s, strlen(s), &ac) == 0) {
			if (ac.keydata == NULL || ac.keydata_len == 0 ||
			    ac.keydata_len > SP_AUTOCRYPT_KEY_MAX)
				abort();
			sp_autocrypt_finish(&ac);
		}
		free(s);
		break;
	default:
		if (sp_pgpmail_peek(data + 1, size - 1, &p) == 0)
			sp_pgpmail_peek_finish(&p);
		break;
	}
	return 0;
}
