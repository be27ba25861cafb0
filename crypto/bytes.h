/*
 * Big-endian integers in byte buffers: every sealpost format writes its
 * integers this way (docs/format.md, "Conventions"), and so does the store
 * so that keys sort numerically.  Header-only, no alignment assumed.
 */
#ifndef SP_CRYPTO_BYTES_H
#define SP_CRYPTO_BYTES_H

#include <stdint.h>

static inline void
sp_put_be32(uint8_t *b, uint32_t v)
{
	b[0] = (uint8_t)(v >> 24);
	b[1] = (uint8_t)(v >> 16);
	b[2] = (uint8_t)(v >> 8);
	b[3] = (uint8_t)v;
}

static inline uint32_t
sp_get_be32(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
	    (uint32_t)b[2] << 8 | b[3];
}

static inline void
sp_put_be64(uint8_t *b, uint64_t v)
{
	sp_put_be32(b, (uint32_t)(v >> 32));
	sp_put_be32(b + 4, (uint32_t)v);
}

static inline uint64_t
sp_get_be64(const uint8_t *b)
{
	return (uint64_t)sp_get_be32(b) << 32 | sp_get_be32(b + 4);
}

#endif
