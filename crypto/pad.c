#include "crypto/pad.h"

static unsigned
log2_floor(uint64_t x)
{
	return 63u - (unsigned)__builtin_clzll(x);
}

static uint64_t
padme(uint64_t len)
{
	unsigned e, s, last_bits;
	uint64_t mask;

	if (len < 2)
		return len;
	e = log2_floor(len);
	s = e ? log2_floor(e) + 1 : 1;
	last_bits = e - s;
	mask = ((uint64_t)1 << last_bits) - 1;
	return (len + mask) & ~mask;
}

uint64_t
sp_pad_size(uint64_t len)
{
	uint64_t p;

	if (len > SP_PAD_MAX)
		return 0;
	p = padme(len ? len : 1);
	return (p + 255) & ~(uint64_t)255;
}
