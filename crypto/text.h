/*
 * Text checks shared by every decoder of untrusted bytes (metadata records,
 * sync frames): one definition of "valid text" for the whole project.
 */
#ifndef SP_CRYPTO_TEXT_H
#define SP_CRYPTO_TEXT_H

#include <stddef.h>
#include <stdint.h>

/*
 * 1 if s[0..n) is strict UTF-8 (no overlong forms, no surrogates, nothing
 * above U+10FFFF) and contains no NUL; 0 otherwise.  Never reads past n.
 */
int sp_utf8_valid(const uint8_t *s, size_t n);

#endif
