/*
 * Second factors and security events from the client's side
 * (docs/protocol.md 6.5, docs/format.md 12.5): answering SECOND_FACTOR at
 * login, listing, enrolling (TOTP, FIDO2 through libfido2) and removing
 * factors, new recovery codes, the otpauth:// URI and its QR code, and
 * reading the security events the server seals into the account's log.
 *
 * Every call that talks takes an sp_client that is logged in (or, for
 * sp_factors_answer, one whose LOGIN was just answered SECOND_FACTOR).
 * Errors are 0, an SP_E* or errno code, with a sentence for the user in
 * err; SP_ESERVER when the server refused.  Nothing here logs or exits.
 * Secrets (TOTP secrets, recovery codes) live in sodium_malloc memory that
 * the caller frees with sodium_free, which wipes it.
 *
 * FIDO2 goes through libfido2 with a device path (/dev/hidrawN), or the
 * first device libfido2 finds when the path is "".  The relying-party id
 * is the domain of the account's address (the server's default rp-id is
 * its first served domain; an operator who sets another one must use the
 * same for the client).  Since libfido2 is not a browser, it builds the
 * WebAuthn clientDataJSON here and hands its SHA-256 to the key as the
 * clientDataHash, as protocol.md 6.5 says.
 */
#ifndef SP_CLIENT_FACTORS_H
#define SP_CLIENT_FACTORS_H

#include <stddef.h>
#include <stdint.h>

#include "client-core/sync_client.h"
#include "crypto/keyset.h"

#define SP_FACTORS_TOTP_BYTES 20      /* 160 bits: RFC 4226's advice */
#define SP_FACTORS_RECOVERY_N 10
#define SP_FACTORS_RECOVERY_LEN 11    /* xxxxx-xxxxx */
#define SP_FACTORS_MAX 64
#define SP_FACTORS_ID_MAX 255
#define SP_FACTORS_URI_MAX 512
#define SP_EVENT_DETAIL_MAX 200

/*
 * What the caller offers when LOGIN answers SECOND_FACTOR.  Tried in this
 * order, each only if the server accepts that kind: a FIDO2 device, a
 * TOTP code, a recovery code, then ask().  Any member may be NULL.
 */
struct sp_second_factor {
	const char *fido2_device;   /* a path, "" = the first found */
	const char *totp;           /* 6 digits */
	const char *recovery;       /* 10 symbols, dashes and spaces ignored */
	/* Asked for a code when nothing above applies: kinds are what the
	 * server accepts (SP_FACTOR_*); writes a NUL-terminated TOTP or
	 * recovery code into buf and returns 0, or nonzero to give up. */
	int (*ask)(void *arg, const unsigned *kinds, size_t nkinds,
	    char *buf, size_t buflen);
	void *ask_arg;
};

/*
 * Answers the SECOND_FACTOR frame sf (just received on c for address)
 * with LOGIN_2FA.  On success *reply_r is the server's LOGIN_OK (the
 * caller's; sp_client_msg_free).  A refused factor is SP_EAUTH with a
 * sentence saying so; no usable input is EACCES.
 */
int sp_factors_answer(sp_client *c, const char *address,
    const struct sp_frame *sf, const struct sp_second_factor *in,
    struct sp_client_msg **reply_r, char *err, size_t errlen);

/* One factor as FACTORS lists it. */
struct sp_factor_info {
	unsigned kind;                    /* SP_FACTOR_* */
	uint8_t id[SP_FACTORS_ID_MAX];
	size_t id_len;
	uint64_t created;                 /* seconds since the epoch */
};

/* FACTORS: at most max factors into out, *n_r how many. */
int sp_factors_list(sp_client *c, struct sp_factor_info *out, size_t max,
    size_t *n_r, char *err, size_t errlen);

/* A new random TOTP secret of SP_FACTORS_TOTP_BYTES (sodium_malloc). */
int sp_factors_totp_secret(uint8_t **secret_r);

/*
 * The otpauth:// URI of a secret (Key Uri Format: base32 secret, SHA1,
 * 6 digits, 30 s), labelled issuer:account, into buf.  SP_ERANGE when
 * it does not fit.  The URI holds the secret: wipe buf after use.
 */
int sp_factors_totp_uri(const uint8_t *secret, size_t len,
    const char *issuer, const char *account, char *buf, size_t buflen);

/* FACTOR_ADD for TOTP with a current code from the user's app. */
int sp_factors_totp_add(sp_client *c, const uint8_t *secret, size_t len,
    const char *code, char *err, size_t errlen);

/*
 * Text as a QR code (libqrencode, error correction M) drawn with Unicode
 * half blocks, two modules per character cell, dark on light, with the
 * four-module quiet zone.  *out_r is a NUL-terminated, sodium_malloc'd
 * string (it draws a secret); *size_r the module count per side without
 * the margin.
 */
int sp_factors_qr(const char *text, char **out_r, int *size_r);

/*
 * Enrols a FIDO2 key: makeCredential (ES256) on the device for rp_id,
 * then FACTOR_ADD with the credential id and its COSE key.  pin may be
 * NULL.  ENODEV when no device is there.
 */
int sp_factors_fido2_add(sp_client *c, const char *device, const char *rp_id,
    const char *address, const char *pin, char *err, size_t errlen);

/* FACTOR_REMOVE; id only for FIDO2.  The connection must have passed
 * LOGIN_2FA in the last 5 minutes (else the server says AUTH). */
int sp_factors_remove(sp_client *c, unsigned kind, const uint8_t *id,
    size_t id_len, char *err, size_t errlen);

/* RECOVERY_NEW: *codes_r (sodium_malloc, n * (LEN + 1), NUL-terminated
 * each) receives the new codes, *n_r how many. */
int sp_factors_recovery_new(sp_client *c, char **codes_r, size_t *n_r,
    char *err, size_t errlen);

/* One security event (format.md 12.5). */
struct sp_security_event {
	uint64_t seq;                     /* the log record */
	unsigned type;                    /* 1..7, others unknown */
	uint64_t time;
	char detail[SP_EVENT_DETAIL_MAX + 1];  /* UTF-8 as sent, NUL ended */
};

/*
 * Parses an event's plaintext (version 1, op 64).  0, or SP_EFORMAT for
 * anything else (a change record, a damaged one).  A detail with a NUL or
 * control byte is refused: it is printed to a terminal.
 */
int sp_event_parse(const uint8_t *p, size_t n, struct sp_security_event *e);

/* "new session", ... or "unknown". */
const char *sp_event_name(unsigned type);

typedef int (*sp_event_fn)(void *arg, const struct sp_security_event *e);

/*
 * Reads the account's log from seq 1 and calls fn for every record that
 * is a kind-3 envelope opened with the account's X25519 key (not its
 * mailbox key) and parses as an event.  Anything else is skipped, never
 * fatal.  fn returning nonzero stops the walk with that value.
 */
int sp_factors_events(sp_client *c, const sp_keyset *ks, sp_event_fn fn,
    void *arg, char *err, size_t errlen);

#endif
