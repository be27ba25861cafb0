/*
 * Modified UTF-7 for IMAP mailbox names (RFC 3501 5.1.3), to and from the
 * UTF-8 names of the mailbox model (client-core/mailbox.h).
 *
 * IMAP4rev1 clients that have not enabled UTF8=ACCEPT (RFC 6855) or
 * IMAP4rev2 (RFC 9051) send and expect names in this form: printable
 * US-ASCII stands for itself except '&', which is "&-"; everything else
 * is UTF-16 in a base64 variant (',' for '/', no padding) between '&' and
 * '-'.
 *
 * Both directions are strict, so every name has exactly one spelling and
 * two different inputs never land on the same folder: the decoder refuses
 * 8-bit bytes, control characters (also base64-encoded ones), base64 runs that encode printable ASCII, runs
 * that follow a run directly, leftover bits that are not zero, unpaired
 * surrogates and an unterminated '&'.  The encoder refuses malformed
 * UTF-8 (overlong forms, surrogates, above U+10FFFF) and control
 * characters, which have no business in a folder name.
 *
 * Both work on buffers given by the caller: no allocation, no state, and
 * out is always NUL-terminated when cap > 0.  Encoding at most multiplies
 * the length by 2.5 (one 2-byte character between ASCII ones: 5 bytes);
 * decoding never makes a name longer.
 * Return: 0, EINVAL (malformed input) or ENOSPC (out too small); on error
 * out holds "" (nothing half-converted escapes).
 */
#ifndef SP_BRIDGE_IMAP_UTF7_H
#define SP_BRIDGE_IMAP_UTF7_H

#include <stddef.h>

/* Worst case size of the encoded form of n bytes of UTF-8, with NUL. */
#define IMAP_UTF7_ENCODED_MAX(n) ((n) * 3 + 3)

int imap_utf7_encode(const char *utf8, size_t len, char *out, size_t cap,
    size_t *len_r);
int imap_utf7_decode(const char *mutf7, size_t len, char *out, size_t cap,
    size_t *len_r);

#endif
