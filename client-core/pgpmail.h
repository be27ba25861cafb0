/*
 * OpenPGP mail (RFC 3156 PGP/MIME, inline PGP, Autocrypt Level 1) on top
 * of crypto/pgp.h: what the bridge serves for a received PGP message, and
 * the PGP/MIME message it sends to an outside PGP user.
 *
 * Receiving.  After the native envelope is opened (mailbox.h), a message
 * may still be OpenPGP: multipart/encrypted (application/pgp-encrypted),
 * multipart/signed (application/pgp-signature), or a text/plain body
 * holding an armored "PGP MESSAGE" or "PGP SIGNED MESSAGE".  The served
 * form is the decrypted content under the original outer headers, plus
 * one header stating the outcome (docs/format.md, "Served OpenPGP mail"):
 *
 *   X-Sealpost-PGP: decrypted; format=pgp-mime; signature=verified;
 *       signer=<primary fingerprint>; addr=<sender>
 *
 * with signature= one of verified, bad, unknown-key, key-revoked,
 * key-expired, none; the first word one of decrypted, signed (not
 * encrypted), decrypt-failed (reason= follows; the original is served).
 * A bad signature is never hidden: the content is served (decrypted again
 * without checking, so the user can see what was claimed) under
 * signature=bad.  Any X-Sealpost-PGP field already in a message (outer
 * headers or decrypted ones) is removed, so a sender cannot forge it.
 *
 * Signatures are checked only against the keys the caller passes: the
 * pinned key of the From: address (pgpkeys.h), so a signature by anyone
 * else, however valid, is "unknown-key".
 *
 * Limits (every message is hostile): a header block of at most
 * SP_PGPMAIL_HDR_MAX bytes and SP_PGPMAIL_FIELDS_MAX fields, an Autocrypt
 * value of at most SP_AUTOCRYPT_MAX bytes, messages of at most
 * SP_PGPMAIL_MSG_MAX bytes.  Beyond them the message is served as it is.
 *
 * Memory: outputs are malloc()'d and the caller's; those holding plaintext
 * are to be wiped (sodium_memzero) before free().  Return codes: 0, an
 * SP_E* code (crypto/error.h) or a positive errno.  Never logs, never
 * exits.  Thread-safe as long as each thread uses its own sp_pgp.
 */
#ifndef SP_CLIENT_PGPMAIL_H
#define SP_CLIENT_PGPMAIL_H

#include <stddef.h>
#include <stdint.h>

#include "client-core/cache.h"
#include "crypto/keyset.h"
#include "crypto/pgp.h"

#define SP_PGPMAIL_HDR_MAX (256 * 1024)
#define SP_PGPMAIL_FIELDS_MAX 2000
#define SP_PGPMAIL_MSG_MAX ((size_t)64 << 20)
#define SP_AUTOCRYPT_MAX (64 * 1024)   /* one Autocrypt header value */
#define SP_AUTOCRYPT_KEY_MAX (32 * 1024) /* its decoded keydata */

/* What a message is, from its top-level structure alone. */
enum sp_pgpmail_kind {
	SP_PGPMAIL_PLAIN = 0,	    /* no OpenPGP seen */
	SP_PGPMAIL_MIME_ENCRYPTED,  /* RFC 3156 section 4 */
	SP_PGPMAIL_MIME_SIGNED,	    /* RFC 3156 section 5 */
	SP_PGPMAIL_INLINE_ENCRYPTED, /* text/plain with a PGP MESSAGE */
	SP_PGPMAIL_INLINE_SIGNED,   /* text/plain with a PGP SIGNED MESSAGE */
};

/* ---- parsers (pure, no gpg; each has a fuzz target) ------------------- */

/* An armored block found in text. */
enum sp_armor_kind {
	SP_ARMOR_NONE = 0,
	SP_ARMOR_MESSAGE, /* -----BEGIN PGP MESSAGE----- */
	SP_ARMOR_SIGNED,  /* -----BEGIN PGP SIGNED MESSAGE----- ...
			   * -----END PGP SIGNATURE----- */
};

/*
 * Finds the first armored block in text that starts at the beginning of a
 * line and has its END line.  On success returns the kind and sets
 * [*begin_r, *end_r) to the block (end just past the END line's line
 * break, if any).  SP_ARMOR_NONE when there is none (an unterminated
 * block included).  Cost: linear in len.
 */
enum sp_armor_kind sp_armor_find(const uint8_t *text, size_t len,
    size_t *begin_r, size_t *end_r);

/* A parsed Autocrypt header (Level 1). */
struct sp_autocrypt {
	char addr[255];		/* lower-cased */
	int prefer_mutual;	/* prefer-encrypt=mutual */
	uint8_t *keydata;	/* decoded, malloc'd */
	size_t keydata_len;
};

/*
 * Parses an Autocrypt header value (attributes "name=value" separated by
 * ';', whitespace and folding anywhere in keydata).  As the spec says, a
 * header with an unknown critical attribute (a name not starting with
 * '_'), without addr or keydata, or with either twice, is not valid:
 * SP_EFORMAT.  SP_ELIMIT above SP_AUTOCRYPT_MAX or SP_AUTOCRYPT_KEY_MAX.
 * On success ac_r is the caller's: release with sp_autocrypt_finish().
 */
int sp_autocrypt_parse(const char *value, size_t len,
    struct sp_autocrypt *ac_r);
void sp_autocrypt_finish(struct sp_autocrypt *ac);

/*
 * The header line "Autocrypt: addr=ADDR; keydata=..." for outgoing mail,
 * folded at 76 columns, ending in CRLF; key is a binary OpenPGP public
 * key (the account's minimal key: primary, one user id, one encryption
 * subkey).  *out_r is malloc'd and NUL-terminated.
 */
int sp_autocrypt_header(const char *addr, const uint8_t *key, size_t len,
    char **out_r);

/* Facts read from a message's top-level header without decrypting. */
struct sp_pgpmail_peek {
	int kind;		/* enum sp_pgpmail_kind */
	int has_outcome_field;	/* carries an X-Sealpost-PGP field */
	char from[255];		/* lower-cased From address, "" if none */
	char *autocrypt;	/* Autocrypt value (unfolded), malloc'd, or
				 * NULL; only when its addr is From's */
};

/*
 * Reads the header (and, for text/plain, looks for armor in the body).
 * Never fails on hostile input: what cannot be read is PLAIN.  Returns 0
 * or ENOMEM.  Release with sp_pgpmail_peek_finish().
 */
int sp_pgpmail_peek(const uint8_t *msg, size_t len,
    struct sp_pgpmail_peek *p);
void sp_pgpmail_peek_finish(struct sp_pgpmail_peek *p);

/* ---- receiving --------------------------------------------------------- */

/* The outcome, as put in the X-Sealpost-PGP field. */
struct sp_pgpmail_result {
	int kind;	     /* enum sp_pgpmail_kind */
	int decrypted;	     /* 1: the content was decrypted */
	int decrypt_error;   /* 0, or why it could not be (SP_ENOKEY...) */
	struct sp_pgp_sig sig; /* verdict (status SP_PGP_SIG_*) */
	char field[1024];    /* the X-Sealpost-PGP value written */
};

/*
 * Turns msg into what the mail client sees (module comment).  seckey is
 * the account's OpenPGP secret key block (NULL: nothing is decrypted,
 * signatures are still checked); signers are the keys a signature may be
 * checked against (the sender's pinned key), addr (may be NULL) the
 * address they belong to, for the field.  For a PLAIN message without an
 * X-Sealpost-PGP field, *out_r is NULL: serve msg as it is.  Otherwise
 * *out_r is the served message (malloc'd, plaintext: wipe it), with CRLF
 * line ends.  Decryption failures are outcomes, not errors: 0 with the
 * original served under decrypt-failed.  Errors: ENOMEM, SP_EPGP when
 * gpg itself cannot run.
 */
int sp_pgpmail_open(sp_pgp *pgp, const uint8_t *seckey, size_t seckey_len,
    const struct sp_pgp_buf *signers, size_t nsigners, const char *addr,
    const uint8_t *msg, size_t len, uint8_t **out_r, size_t *out_len_r,
    struct sp_pgpmail_result *res_r);

/*
 * The served form of message id of the account (keys ks, cache), cached
 * in table SP_CACHE_T_PGPSERVED: learns the sender's Autocrypt key
 * (pgpkeys.h: pinned if none is, else a change waits to be accepted),
 * then sp_pgpmail_open() with the sender's pinned key.  A cached form is
 * reused until the pins change.  *out_r as for sp_pgpmail_open (NULL:
 * serve body as it is); res_r (may be NULL: then a cached form is
 * returned without gpg).  Meant for received mail: the bridge and
 * `sealpost read` leave what the account stored itself (sp_mbox_msg
 * own) byte for byte.  Cost for mail without
 * OpenPGP: a scan of the header and, for text/plain, of the body.
 */
int sp_pgpmail_served(sp_cache *cache, const sp_keyset *ks, uint64_t id,
    const uint8_t *body, size_t len, uint8_t **out_r, size_t *out_len_r,
    struct sp_pgpmail_result *res_r);

/* ---- sending ----------------------------------------------------------- */

/*
 * Builds an RFC 3156 multipart/encrypted message from msg (RFC 5322
 * bytes): the outer header is msg's minus its Content-* fields and
 * MIME-Version, plus autocrypt (a whole header line from
 * sp_autocrypt_header, may be NULL); the encrypted part holds msg's
 * Content-* fields and body (text/plain if it has none), encrypted to
 * rcpts (which should include the sender's own public key, so the Sent
 * copy stays readable) and signed with signer_seckey (may be NULL).
 * Revoked or expired recipients fail the call (SP_EKEYREVOKED,
 * SP_EKEYEXPIRED).  *out_r is malloc'd, CRLF line ends.
 */
int sp_pgpmail_encrypt(sp_pgp *pgp, const uint8_t *msg, size_t len,
    const struct sp_pgp_buf *rcpts, size_t nrcpts,
    const uint8_t *signer_seckey, size_t signer_seckey_len,
    const char *autocrypt, uint8_t **out_r, size_t *out_len_r);

#endif
