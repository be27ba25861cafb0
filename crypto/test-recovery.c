#include <ctype.h>

#include "crypto/recovery.h"
#include "tests/unit.h"

static void
t_roundtrip(void)
{
	uint8_t k[32], back[32];
	char text[SP_RECOVERY_TEXTBYTES], lower[SP_RECOVERY_TEXTBYTES + 8];
	size_t i, j;
	int n;

	for (n = 0; n < 50; n++) {
		CHECK_RC(sp_recovery_generate(k), 0);
		sp_recovery_encode(k, text);
		CHECK(strlen(text) == 65);
		CHECK(text[5] == '-' && text[59] == '-');
		CHECK_RC(sp_recovery_decode(text, back), 0);
		CHECK(memcmp(k, back, 32) == 0);
	}
	/* Lower case, spaces instead of dashes. */
	for (i = j = 0; text[i]; i++)
		lower[j++] = text[i] == '-' ? ' ' : (char)tolower(text[i]);
	lower[j] = 0;
	CHECK_RC(sp_recovery_decode(lower, back), 0);
	CHECK(memcmp(k, back, 32) == 0);
}

static void
t_typos_caught(void)
{
	uint8_t k[32], back[32];
	char text[SP_RECOVERY_TEXTBYTES];
	size_t i, caught = 0, tried = 0;

	CHECK_RC(sp_recovery_generate(k), 0);
	sp_recovery_encode(k, text);
	for (i = 0; text[i]; i++) {
		char save = text[i];

		if (save == '-')
			continue;
		text[i] = save == 'A' ? 'B' : 'A';
		tried++;
		if (sp_recovery_decode(text, back) == SP_EFORMAT)
			caught++;
		text[i] = save;
	}
	/* The last character carries 2 data bits and 3 zero bits; every
	 * single-character change is caught by the 16-bit check or those. */
	CHECK(caught == tried);
	CHECK_RC(sp_recovery_decode("", back), SP_EFORMAT);
	CHECK_RC(sp_recovery_decode("ABC!", back), SP_EFORMAT);
	text[64] = 0; /* one character short */
	CHECK_RC(sp_recovery_decode(text, back), SP_EFORMAT);
}

int
main(void)
{
	RUN(t_roundtrip);
	RUN(t_typos_caught);
	return unit_done();
}
