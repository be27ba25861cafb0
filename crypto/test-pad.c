#include "crypto/pad.h"
#include "tests/unit.h"

static void
t_known_values(void)
{
	/* Worked by hand from the Padmé definition, then rounded to 256. */
	CHECK(sp_pad_size(0) == 256);
	CHECK(sp_pad_size(1) == 256);
	CHECK(sp_pad_size(256) == 256);
	CHECK(sp_pad_size(257) == 512);   /* padme(257)=272 (E=8,S=4,4 bits) */
	CHECK(sp_pad_size(1000) == 1024); /* padme(1000)=1008 */
	CHECK(sp_pad_size(51200) == 51200);  /* 50 KiB: multiple of 2048 */
	CHECK(sp_pad_size(50000) == 51200);  /* E=15,S=4 -> 2048 granules */
	CHECK(sp_pad_size(1000001) == 1015808); /* E=19,S=5 -> 16384 */
	CHECK(sp_pad_size(SP_PAD_MAX + 1) == 0);
}

static void
t_properties(void)
{
	uint64_t l, p, worst = 0;

	for (l = 0; l < 300000; l += 7) {
		p = sp_pad_size(l);
		CHECK(p >= l && p >= 256 && p % 256 == 0);
		/* Monotonic: a longer content never pads shorter. */
		CHECK(sp_pad_size(l + 7) >= p);
		if (l > 4096 && (p - l) * 1000 / l > worst)
			worst = (p - l) * 1000 / l;
	}
	CHECK(worst <= 125); /* at most 12.5% overhead past 4 KiB */
}

int
main(void)
{
	RUN(t_known_values);
	RUN(t_properties);
	return unit_done();
}
