/*
 * The recovery key: 32 random bytes made at account creation, shown to the
 * user once as text, and able to unwrap the vault (crypto/vault.h) when the
 * password is lost.
 *
 * Text form: the key and a 2-byte check (BLAKE2b-256("sealpost-recovery-v1"
 * || key), first two bytes) in RFC 4648 base32, upper case, in groups of
 * five joined by '-': 55 characters, 65 with the dashes.  Decoding ignores
 * case, dashes and spaces, so a key read over the phone still works, and
 * the check catches a mistyped character.
 */
#ifndef SP_CRYPTO_RECOVERY_H
#define SP_CRYPTO_RECOVERY_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/error.h"

#define SP_RECOVERY_KEYBYTES 32
#define SP_RECOVERY_TEXTBYTES 66 /* including the terminating NUL */

/* Fills key with fresh random bytes (the caller's sodium_malloc memory). */
int sp_recovery_generate(uint8_t key[SP_RECOVERY_KEYBYTES]);

/* Writes the text form of key into text (NUL-terminated). */
void sp_recovery_encode(const uint8_t key[SP_RECOVERY_KEYBYTES],
    char text[SP_RECOVERY_TEXTBYTES]);

/* Parses the text form; SP_EFORMAT for a bad character, a wrong length or a
 * check that does not match.  key is zeroed on failure. */
SP_WUR int sp_recovery_decode(const char *text,
    uint8_t key[SP_RECOVERY_KEYBYTES]);

/*
 * The recovery login key (protocol.md 6.6): an Ed25519 key pair derived
 * from the recovery key, seed = KDF(key, 2, "sp-recov").  pk 32 bytes, sk
 * 64 bytes (the caller's sodium_malloc memory).
 */
int sp_recovery_login_keys(const uint8_t key[SP_RECOVERY_KEYBYTES],
    uint8_t pk[32], uint8_t sk[64]);

/* sig = Ed25519(sk, BLAKE2b-512("sealpost-recover-v1" || challenge)). */
int sp_recovery_sign_challenge(const uint8_t sk[64], const uint8_t *challenge,
    size_t len, uint8_t sig[64]);

/* Checks such a signature against pk: 0, or SP_ESIG. */
SP_WUR int sp_recovery_verify_challenge(const uint8_t pk[32],
    const uint8_t *challenge, size_t len, const uint8_t sig[64]);

#endif
