/*
 * The account key set: identity (Ed25519), encryption (X25519), the mailbox
 * key (symmetric, for the account's own log and blobs) and, optionally, the
 * account's OpenPGP secret key as exported by crypto/pgp.h.
 *
 * A key set lives entirely in sodium_malloc memory (guard pages, wiped on
 * free).  It is serialized only to be sealed into the vault (crypto/vault.h).
 */
#ifndef SP_CRYPTO_KEYSET_H
#define SP_CRYPTO_KEYSET_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/error.h"

#define SP_KEYSET_VERSION 1
#define SP_KEYSET_FIXEDBYTES 101      /* serialized size without PGP key */
#define SP_KEYSET_PGP_MAX (64 * 1024) /* limit on the OpenPGP secret key */

typedef struct sp_keyset sp_keyset;

/* Generates fresh keys.  *ks_r is owned by the caller (sp_keyset_destroy). */
int sp_keyset_generate(sp_keyset **ks_r);

/* Wipes and frees; accepts NULL. */
void sp_keyset_destroy(sp_keyset *ks);

/* Public halves, 32 bytes each; valid as long as ks. */
const uint8_t *sp_keyset_identity_pk(const sp_keyset *ks);
const uint8_t *sp_keyset_encryption_pk(const sp_keyset *ks);

/* Secret material for the other crypto modules; valid as long as ks.
 * identity_sk is the 64-byte libsodium Ed25519 secret key. */
const uint8_t *sp_keyset_identity_sk(const sp_keyset *ks);
const uint8_t *sp_keyset_encryption_sk(const sp_keyset *ks);
const uint8_t *sp_keyset_mailbox_key(const sp_keyset *ks);

/* Copies an OpenPGP secret key into the set (replacing any previous one).
 * SP_ELIMIT above SP_KEYSET_PGP_MAX. */
int sp_keyset_set_pgp(sp_keyset *ks, const uint8_t *key, size_t len);
/* The OpenPGP secret key, or NULL with *len_r = 0 if none; valid as long as
 * ks and until the next sp_keyset_set_pgp(). */
const uint8_t *sp_keyset_pgp(const sp_keyset *ks, size_t *len_r);

/*
 * Serialized form (docs/format.md, "Key set"):
 *   version u8 | identity seed[32] | x25519 secret[32] | mailbox key[32] |
 *   pgp_len u32 BE | pgp key[pgp_len]
 * *out_r is sodium_malloc'd; the caller frees it with sodium_free().
 */
int sp_keyset_serialize(const sp_keyset *ks, uint8_t **out_r, size_t *len_r);

/* Parses the serialized form; the length must match exactly. */
SP_WUR int sp_keyset_parse(const uint8_t *in, size_t len, sp_keyset **ks_r);

#endif
