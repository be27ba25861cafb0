/*
 * libFuzzer target: vault and key-set decoders.  The first input byte picks
 * the slot to open; the rest is the vault.  Keys are fixed so seeds made
 * with them (fuzz-corpus/vault) reach the body and key-set parser.
 */
#include <string.h>

#include "crypto/vault.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t key[32];
	struct sp_kdf_params p;
	sp_keyset *ks;
	int slot;

	if (size < 1)
		return 0;
	slot = data[0] & 1 ? SP_VAULT_SLOT_RECOVERY : SP_VAULT_SLOT_PASSWORD;
	memset(key, slot == SP_VAULT_SLOT_PASSWORD ? 0x11 : 0x22, sizeof(key));
	if (sp_vault_params(data + 1, size - 1, &p) == 0)
		(void)p;
	if (sp_vault_open(data + 1, size - 1, slot, key, &ks) == 0)
		sp_keyset_destroy(ks);
	/* The key-set parser on raw bytes as well. */
	if (sp_keyset_parse(data + 1, size - 1, &ks) == 0)
		sp_keyset_destroy(ks);
	return 0;
}
