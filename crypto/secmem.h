/*
 * Small secrets (symmetric keys) from a pool of sodium_malloc'd pages.
 *
 * sodium_malloc costs several system calls and guard pages (about 25 us
 * here), which is more than sealing a 50 KB message costs otherwise.  Keys
 * that live for one message therefore come from this pool: whole pages are
 * taken once from sodium_malloc (guard pages, mlock'd, never swapped), cut
 * into 64-byte slots, and a slot is wiped with sodium_memzero when it is
 * returned.  Pages are kept for the life of the process; the pool grows to
 * the largest number of keys alive at once.  Thread-safe.
 */
#ifndef SP_CRYPTO_SECMEM_H
#define SP_CRYPTO_SECMEM_H

#include <stdint.h>

#define SP_SECMEM_SLOTBYTES 64

/* A zeroed 64-byte slot, or NULL when memory is exhausted. */
uint8_t *sp_secmem_alloc(void);

/* Wipes the slot and returns it to the pool; accepts NULL. */
void sp_secmem_free(uint8_t *slot);

#endif
