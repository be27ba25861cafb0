#include <pthread.h>
#include <string.h>

#include <sodium.h>

#include "crypto/secmem.h"

#define PAGEBYTES (16 * 1024)
#define SLOTS_PER_PAGE (PAGEBYTES / SP_SECMEM_SLOTBYTES)

/* A free slot stores the next free slot's address in its first bytes. */
static pthread_mutex_t secmem_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *secmem_free_list;

static int
secmem_grow(void)
{
	uint8_t *page;
	size_t i;

	if ((page = sodium_malloc(PAGEBYTES)) == NULL)
		return -1;
	for (i = 0; i < SLOTS_PER_PAGE; i++) {
		uint8_t *slot = page + i * SP_SECMEM_SLOTBYTES;

		memcpy(slot, &secmem_free_list, sizeof(uint8_t *));
		secmem_free_list = slot;
	}
	return 0;
}

uint8_t *
sp_secmem_alloc(void)
{
	uint8_t *slot = NULL;

	if (sodium_init() < 0)
		return NULL;
	pthread_mutex_lock(&secmem_lock);
	if (secmem_free_list != NULL || secmem_grow() == 0) {
		slot = secmem_free_list;
		memcpy(&secmem_free_list, slot, sizeof(uint8_t *));
	}
	pthread_mutex_unlock(&secmem_lock);
	if (slot)
		sodium_memzero(slot, SP_SECMEM_SLOTBYTES);
	return slot;
}

void
sp_secmem_free(uint8_t *slot)
{
	if (slot == NULL)
		return;
	sodium_memzero(slot, SP_SECMEM_SLOTBYTES);
	pthread_mutex_lock(&secmem_lock);
	memcpy(slot, &secmem_free_list, sizeof(uint8_t *));
	secmem_free_list = slot;
	pthread_mutex_unlock(&secmem_lock);
}
