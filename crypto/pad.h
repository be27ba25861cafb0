/*
 * Length padding for everything the server stores.
 *
 * sp_pad_size(L) = round_up(padme(max(L, 1)), 256)
 *
 * Padmé (Nikitin et al., "Reducing Metadata Leakage from Encrypted Files and
 * Communication with PURBs", PETS 2019) keeps the top floor(log2(E))+1 bits
 * of L (E = floor(log2 L)) and rounds the rest up, so the overhead is at most
 * about 12% and a length reveals O(log log L) bits.  Padmé alone leaves small
 * lengths exact; the final 256-byte rounding hides those (subjects, short
 * replies).  A 50 KB message pads to a multiple of 2 KiB.
 */
#ifndef SP_CRYPTO_PAD_H
#define SP_CRYPTO_PAD_H

#include <stdint.h>

/* Largest length sp_pad_size() accepts; larger inputs return 0. */
#define SP_PAD_MAX ((uint64_t)1 << 48)

/* Padded length for a content of len bytes (>= len, >= 256), or 0 when
 * len > SP_PAD_MAX.  Pure function, no allocation. */
uint64_t sp_pad_size(uint64_t len);

#endif
