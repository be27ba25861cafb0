/*
 * DKIM signing (RFC 6376) for outbound mail: rsa-sha256 and
 * ed25519-sha256 (RFC 8463), relaxed/relaxed canonicalization.
 *
 * Keys are per domain, in the layout `sealpost-admin domain add` writes
 * (docs/operations.md, "Outbound"):
 *   DATA_DIR/dkim/DOMAIN/domain.conf      rsa-selector = S, ed25519-selector = T
 *   DATA_DIR/dkim/DOMAIN/S.rsa.key        PKCS#8 PEM
 *   DATA_DIR/dkim/DOMAIN/T.ed25519.key    PKCS#8 PEM
 * A domain without that directory is sent unsigned (the caller logs it).
 *
 * Signed fields: those of a fixed list that the message has (every
 * instance), and From once more than it has, so a From added later on the
 * way breaks the signature (RFC 6376 8.15).
 *
 * Thread-safe (no shared state; keys are read per call: a signer that
 * caches would need invalidation on rotation, and one file read per
 * message is noise next to an RSA signature).  Never logs, never exits.
 */
#ifndef SP_GW_DKIM_SIGN_H
#define SP_GW_DKIM_SIGN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/*
 * Signs msg (CRLF line ends) for domain with every key configured for it
 * under data_dir/dkim.  *hdr_r (malloc'd, the caller's) receives the
 * DKIM-Signature fields to prepend, each ending in CRLF, or NULL with
 * *n_r = 0 when the domain has no keys.  Returns 0, ENOENT (no key for
 * the domain: *hdr_r NULL), EINVAL (message header malformed, key
 * unreadable: err says which) or ENOMEM.
 */
int sp_dkim_sign(const char *data_dir, const char *domain,
    const uint8_t *msg, size_t len, time_t now, char **hdr_r, int *n_r,
    char *err, size_t errlen);

#endif
