/*
 * The key vault: the account's key set (crypto/keyset.h), encrypted on the
 * client and stored on the server.
 *
 * A random 32-byte vault data key encrypts the serialized key set with
 * XChaCha20-Poly1305.  The data key itself is wrapped in "slots":
 *   - a password slot, by the vault key from sp_kdf_derive(), carrying the
 *     Argon2id parameters and salt it was derived with;
 *   - a recovery slot, by a key derived from the 32-byte recovery key shown
 *     once at account creation (crypto/recovery.h).
 * A keyed BLAKE2b MAC under the data key closes the vault, so damage to any
 * slot is seen by whoever opens any slot.  Changing the password rewrites
 * the password slot (and the MAC) only: the encrypted key set is carried
 * over byte for byte.  Layout: docs/format.md, "Vault".
 *
 * Sealed vaults are ciphertext: they are returned in malloc() memory that
 * the caller frees with free().  Opened key sets are sodium_malloc'd.
 */
#ifndef SP_CRYPTO_VAULT_H
#define SP_CRYPTO_VAULT_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/error.h"
#include "crypto/kdf.h"
#include "crypto/keyset.h"

#define SP_VAULT_VERSION 1
#define SP_VAULT_SLOT_PASSWORD 1
#define SP_VAULT_SLOT_RECOVERY 2
#define SP_VAULT_KEYBYTES 32
/* Largest vault any version-1 decoder accepts. */
#define SP_VAULT_MAX (3 + 98 + 73 + 28 + 32 + SP_KEYSET_FIXEDBYTES + \
    SP_KEYSET_PGP_MAX + 16)

/*
 * Seals ks under a fresh data key.  vault_key and pw come from the password
 * (sp_kdf_derive / sp_kdf_params_new); recovery_key may be NULL for a vault
 * without a recovery slot.
 */
int sp_vault_seal(const sp_keyset *ks, const uint8_t vault_key[32],
    const struct sp_kdf_params *pw, const uint8_t *recovery_key,
    uint8_t **out_r, size_t *len_r);

/*
 * Opens a vault with the key for one slot type: the vault key for
 * SP_VAULT_SLOT_PASSWORD, the raw 32-byte recovery key for
 * SP_VAULT_SLOT_RECOVERY.  SP_EAUTH for a wrong key or tampered vault,
 * SP_ENOKEY when the vault has no slot of that type.
 */
SP_WUR int sp_vault_open(const uint8_t *v, size_t len, int slot_type,
    const uint8_t key[32], sp_keyset **ks_r);

/*
 * Password change: unlocks with (slot_type, key) and writes a new vault whose
 * password slot is wrapped by new_vault_key with new_pw; the recovery slot
 * and the encrypted key set are copied unchanged.
 */
SP_WUR int sp_vault_rewrap(const uint8_t *v, size_t len, int slot_type,
    const uint8_t key[32], const uint8_t new_vault_key[32],
    const struct sp_kdf_params *new_pw, uint8_t **out_r, size_t *len_r);

/* Reads the Argon2id parameters stored in the password slot (no key needed). */
SP_WUR int sp_vault_params(const uint8_t *v, size_t len,
    struct sp_kdf_params *pw);

#endif
