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

#endif
