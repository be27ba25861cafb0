/*
 * The public key set: what the key directory serves for an account, self-
 * signed by the account's identity key so that the server cannot alter it
 * without the signature failing.  Clients pin the identity key on first
 * use (TOFU) and refuse a changed one until the user accepts it.
 * Layout: docs/format.md, "Public key set".
 *
 *   version u8 (1) | addr_len u8 | address | identity_pk[32] |
 *   encryption_pk[32] | created u64 | pgp_len u32 | pgp public key |
 *   signature[64]
 *
 * signature = Ed25519(identity, BLAKE2b-512("sealpost-pubkeys-v1" || every
 * byte before the signature)).
 */
#ifndef SP_CRYPTO_PUBKEYS_H
#define SP_CRYPTO_PUBKEYS_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/error.h"
#include "crypto/keyset.h"

#define SP_PUBKEYS_VERSION 1
#define SP_PUBKEYS_PGP_MAX (15 * 1024) /* whole set fits a 16 KiB field */
#define SP_PUBKEYS_MAX (1 + 1 + 254 + 32 + 32 + 8 + 4 + \
    SP_PUBKEYS_PGP_MAX + 64)

struct sp_pubkeys {
	char address[255];            /* NUL-terminated, lower case */
	uint8_t identity_pk[32];
	uint8_t encryption_pk[32];
	uint64_t created;             /* seconds since the epoch */
	const uint8_t *pgp;           /* binary OpenPGP public key, or NULL */
	size_t pgp_len;
};

/*
 * Builds and signs the key set of ks for address (lower-cased here) with
 * an optional OpenPGP public key.  *out_r is malloc'd (public data).
 */
int sp_pubkeys_sign(const sp_keyset *ks, const char *address,
    uint64_t created, const uint8_t *pgp, size_t pgp_len, uint8_t **out_r,
    size_t *len_r);

/*
 * Parses untrusted bytes and verifies the self-signature.  On success p's
 * pgp pointer points into in.  SP_ESIG for a bad signature; SP_EFORMAT,
 * SP_ETRUNC, SP_EVERSION, SP_ELIMIT for structure.
 */
SP_WUR int sp_pubkeys_parse(const uint8_t *in, size_t len,
    struct sp_pubkeys *p);

#endif
