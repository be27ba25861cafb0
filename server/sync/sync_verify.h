/*
 * Second-factor verification, pure functions with no server state, so
 * that unit tests and fuzz targets reach them directly: TOTP (RFC 6238),
 * COSE public keys and FIDO2/WebAuthn assertions (docs/protocol.md 6.5).
 *
 * Every input is hostile: lengths are checked before use, parsers have
 * fixed limits, and nothing here allocates what the caller must free.
 */
#ifndef SP_SERVER_SYNC_VERIFY_H
#define SP_SERVER_SYNC_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/error.h"

#define SP_TOTP_STEP 30
#define SP_TOTP_DIGITS 6
#define SP_TOTP_SECRET_MIN 16       /* bytes; RFC 4226 asks for >= 128 bits */
#define SP_TOTP_SECRET_MAX 64

/* RFC 6238 with HMAC-SHA1: the code of time step `step` (unix time / 30),
 * digits 6..8.  0, or SP_EINVAL. */
int sp_totp(const uint8_t *key, size_t key_len, uint64_t step,
    unsigned digits, uint32_t *code_r);

/* COSE_Key algorithms we accept (RFC 9053). */
#define SP_COSE_ES256 (-7)
#define SP_COSE_EDDSA (-8)
#define SP_COSE_MAX 256             /* bytes of an encoded key */

struct sp_cose_key {
	int alg;                /* SP_COSE_ES256 or SP_COSE_EDDSA */
	uint8_t pk[65];         /* ES256: 0x04 || x || y; EdDSA: 32 bytes */
	size_t pk_len;
};

/* Parses an EC2 P-256 / ES256 or OKP Ed25519 / EdDSA COSE_Key: a CBOR
 * map of at most 8 pairs with integer keys.  0 or SP_EFORMAT. */
SP_WUR int sp_cose_parse(const uint8_t *cose, size_t len,
    struct sp_cose_key *k_r);

/* Why an assertion was refused (sp_fido_verify). */
enum {
	SP_FIDO_OK = 0,
	SP_FIDO_EFORMAT,        /* authenticatorData or clientDataJSON broken */
	SP_FIDO_ERPID,          /* rpIdHash is not SHA-256 of our rp id */
	SP_FIDO_EFLAGS,         /* user presence not asserted */
	SP_FIDO_ETYPE,          /* clientDataJSON type is not webauthn.get */
	SP_FIDO_ECHALLENGE,     /* not the challenge we issued */
	SP_FIDO_EORIGIN,        /* origin is not https://<rp id> */
	SP_FIDO_ESIG            /* signature does not verify */
};

#define SP_FIDO_AUTHDATA_MAX 1024
#define SP_FIDO_CLIENTDATA_MAX 1024

/*
 * Verifies a WebAuthn assertion (the "get" ceremony, W3C WebAuthn 2
 * section 7.2) made over challenge for relying party rp_id with key k:
 * clientDataJSON's type, challenge (base64url, unpadded) and origin
 * ("https://" rp_id); authenticatorData's rpIdHash and UP flag; and the
 * signature over authenticatorData || SHA-256(clientDataJSON).  The
 * signature counter is returned in *counter_r; comparing it with the
 * stored one is the caller's (it owns the store).  Returns SP_FIDO_*.
 */
SP_WUR int sp_fido_verify(const struct sp_cose_key *k, const char *rp_id,
    const uint8_t challenge[32], const uint8_t *auth_data, size_t ad_len,
    const uint8_t *client_data, size_t cd_len, const uint8_t *sig,
    size_t sig_len, uint32_t *counter_r);

const char *sp_fido_strerror(int rc);

#endif
