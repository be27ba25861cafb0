/*
 * The OpenPGP edge of libsealpost-crypto, on top of GPGME.
 *
 * Sealpost's own formats never touch OpenPGP; this module exists only where
 * another system speaks it: mail to and from outside PGP users, and the
 * account's OpenPGP key kept (encrypted) in the vault.
 *
 * Model.  An sp_pgp handle owns one private GNUPGHOME, made with mkdtemp()
 * under $TMPDIR (or /tmp), mode 0700, and the gpg-agent that gpg starts for
 * it.  Keys never live in that home between calls: every call takes the keys
 * it needs as bytes, imports them, does its work, and deletes them again, so
 * one call cannot decrypt or verify with a key a previous call brought in.
 * If that deletion ever fails the handle refuses all further work
 * (SP_EPGP); sp_pgp_destroy() still removes everything.  sp_pgp_destroy()
 * kills the agent and deletes the home recursively.
 *
 * Key bytes.  Inputs may be binary or ASCII-armored; each key block must
 * hold exactly one certificate (a primary key with its subkeys), so that a
 * block cannot smuggle an extra recipient into a message.  Outputs are
 * binary OpenPGP unless SP_PGP_ARMOR is passed.  Secret keys are exported
 * unprotected (no passphrase): the caller encrypts them in the vault.
 * Passphrase-protected secret keys are refused (SP_EPGP); no pinentry is
 * ever shown, the agent of our home is configured with none.
 *
 * Memory.  Secret key blocks returned by this module are in sodium_malloc()
 * memory: free them with sodium_free().  Every other returned buffer
 * (public keys, ciphertext, plaintext) is malloc()'d: free it with free();
 * the caller decides whether to wipe plaintext first.  Buffers this module
 * fills internally are wiped before they are freed.  Returned buffers are
 * never NULL on success, even when their length is 0.  On failure every
 * output is NULL / 0.
 *
 * Limits of the promise.  While a call runs, gpg and gpg-agent hold the keys
 * in their own memory and the agent stores imported secret keys
 * unprotected in the home's private-keys-v1.d/ until the call deletes them;
 * put $TMPDIR on a tmpfs where that matters.  A process that dies before
 * sp_pgp_destroy() leaves its home behind, and its agent running until the
 * home is removed.
 *
 * Cost.  Every call runs several gpg processes (about 5-30 ms each), so this
 * is the slow path: fine at the edge, never for storage.
 *
 * Threads.  One sp_pgp per thread; separate handles are independent.
 * GPGME's initialisation sets SIGPIPE to SIG_IGN for the whole process.
 *
 * Return codes: 0, a SP_E* code from crypto/error.h, or a positive errno.
 * GPGME's errors map to SP_EPGP unless a more specific code fits.
 */
#ifndef SP_CRYPTO_PGP_H
#define SP_CRYPTO_PGP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/error.h"

/* Room for a hex fingerprint: 40 digits for v4 keys, 64 for v5, and NUL. */
#define SP_PGP_FPR_SIZE 65

/* Flags for functions that produce OpenPGP data. */
#define SP_PGP_ARMOR 0x1u /* ASCII armor instead of binary packets */

typedef struct sp_pgp sp_pgp;

/* A caller-owned byte range, e.g. one key block in a list of recipients. */
struct sp_pgp_buf {
	const void *data;
	size_t len;
};

/* One user id of a certificate; strings are never NULL (maybe ""). */
struct sp_pgp_uid {
	char *uid;   /* as written, e.g. "Alice <alice@example.org>" */
	char *name;  /* "Alice" */
	char *email; /* "alice@example.org", not normalised */
	bool revoked;
};

/* Facts about one certificate, as gpg sees them at the time of the call. */
struct sp_pgp_keyinfo {
	char fpr[SP_PGP_FPR_SIZE]; /* primary key, upper-case hex */
	int64_t created;	   /* primary key, seconds since the epoch */
	int64_t expires;	   /* primary key, 0 if it never expires */
	bool revoked;
	bool expired;
	bool secret;	  /* the block held the secret key */
	bool can_encrypt; /* has a usable encryption (sub)key now */
	bool can_sign;	  /* has a usable signing (sub)key now */
	size_t nuids;
	struct sp_pgp_uid *uids;
};

/* The verdict on the signatures of a message; see sp_pgp_decrypt(). */
enum sp_pgp_sig_status {
	SP_PGP_SIG_NONE = 0,	/* the data carries no signature */
	SP_PGP_SIG_UNKNOWN_KEY, /* signed by a key we were not given */
	SP_PGP_SIG_EXPIRED,	/* verifies, but signature or key expired */
	SP_PGP_SIG_KEY_REVOKED, /* verifies, but the signing key is revoked */
	SP_PGP_SIG_GOOD,	/* verifies with a key we were given */
	SP_PGP_SIG_BAD,		/* made by a known key and does not verify */
};

struct sp_pgp_sig {
	int status;	 /* enum sp_pgp_sig_status */
	unsigned nsigs;	 /* signatures found in the data */
	unsigned index;	 /* which of them status describes (0-based) */
	int64_t created; /* creation time of that signature, 0 if unknown */
	/*
	 * The key that made the signature (a subkey if a subkey signed).  For
	 * SP_PGP_SIG_UNKNOWN_KEY it is what the signature names: the issuer
	 * fingerprint, or only a 16-digit key id for old signatures.
	 */
	char fpr[SP_PGP_FPR_SIZE];
	/* Its primary key's fingerprint; "" when the key is unknown. */
	char primary_fpr[SP_PGP_FPR_SIZE];
};

/*
 * Returns GPGME's version string (static, valid for the process lifetime),
 * initialising GPGME first if needed.
 */
const char *sp_pgp_version(void);

/*
 * Creates a handle with its own empty GNUPGHOME.  Fails with SP_EVERSION if
 * GPGME or gpg is missing or too old, ENAMETOOLONG if $TMPDIR is too long
 * for the agent's socket path, or an errno from mkdtemp()/open().
 * *pgp_r is the caller's until sp_pgp_destroy().
 */
SP_WUR int sp_pgp_create(sp_pgp **pgp_r);

/*
 * Kills the home's gpg-agent (running `gpgconf --kill all` for it, and
 * waiting briefly for its socket to go away), deletes the home recursively
 * and frees the handle.  The handle is gone whatever this returns; a
 * non-zero return (an errno) says something may have been left on disk.
 * Accepts NULL.
 */
int sp_pgp_destroy(sp_pgp *pgp);

/*
 * Generates an account key: an Ed25519 primary key (certify, sign) and a
 * Curve25519 encryption subkey, for userid (e.g. "Alice
 * <alice@example.org>"; no control characters), without passphrase.
 * expires_s is the lifetime in seconds from now, 0 for none.  flags:
 * SP_PGP_ARMOR or 0.  On success *seckey_r is the transferable secret key
 * (which includes the public key) in sodium_malloc() memory, *seckey_len_r
 * its length; free it with sodium_free().
 */
SP_WUR int sp_pgp_key_generate(sp_pgp *pgp, const char *userid,
    uint64_t expires_s, unsigned flags, unsigned char **seckey_r,
    size_t *seckey_len_r);

/*
 * Imports one certificate (public or secret, binary or armored) and exports
 * it again in canonical form.  This is how keys cross the edge: a key pasted
 * by a user or fetched by WKD goes in, clean bytes for storage come out; and
 * it derives the public key from a secret key block.
 *
 * pubkey_r (may be NULL if not wanted): the public certificate, malloc()'d.
 * seckey_r (may be NULL): the secret key, in sodium_malloc() memory; if
 * asked for and the block holds no secret key, fails with SP_ENOKEY.
 * flags: SP_PGP_ARMOR or 0, for both outputs.  SP_EFORMAT if the block does
 * not hold exactly one certificate.
 */
SP_WUR int sp_pgp_key_import(sp_pgp *pgp, const void *key, size_t key_len,
    unsigned flags, unsigned char **pubkey_r, size_t *pubkey_len_r,
    unsigned char **seckey_r, size_t *seckey_len_r);

/*
 * Reads the facts about one certificate (public or secret block).  *info_r
 * is the caller's; free it with sp_pgp_keyinfo_free().  SP_EFORMAT if the
 * block does not hold exactly one certificate.
 */
SP_WUR int sp_pgp_key_info(sp_pgp *pgp, const void *key, size_t key_len,
    struct sp_pgp_keyinfo **info_r);

/* Frees what sp_pgp_key_info() returned.  Accepts NULL. */
void sp_pgp_keyinfo_free(struct sp_pgp_keyinfo *info);

/*
 * Encrypts msg to every certificate in rcpts (nrcpts >= 1; add your own
 * public key to be able to read it back) and, if signer_seckey is not NULL,
 * signs it inside the encryption with that secret key block.
 *
 * Each recipient must be usable right now: a revoked certificate (or one
 * whose encryption subkeys are all revoked) fails the whole call with
 * SP_EKEYREVOKED, an expired one with SP_EKEYEXPIRED, one without an
 * encryption subkey with SP_EPGP; the same for the signer.  Validity in the
 * web-of-trust sense is not consulted: the caller decides whom to trust.
 *
 * flags: SP_PGP_ARMOR or 0.  On success *out_r is malloc()'d, the caller's.
 */
SP_WUR int sp_pgp_encrypt(sp_pgp *pgp, const struct sp_pgp_buf *rcpts,
    size_t nrcpts, const void *signer_seckey, size_t signer_seckey_len,
    const void *msg, size_t msg_len, unsigned flags, unsigned char **out_r,
    size_t *out_len_r);

/*
 * Decrypts an OpenPGP message with one secret key block and checks its
 * signatures against the certificates in signers (may be NULL/0; the
 * decryption key's own public key counts as known too).
 *
 * Returns 0 with the plaintext in *plain_r (malloc()'d, the caller's) and
 * the verdict in *sig_r.  0 does not mean "signed": look at sig_r->status;
 * only SP_PGP_SIG_GOOD says the message comes from sig_r->primary_fpr.
 * A present signature that does not verify is an error, not a status:
 * SP_ESIG, no plaintext, *sig_r filled (status SP_PGP_SIG_BAD) so the
 * caller can say whose signature failed.  With several signatures, the
 * verdict is the worst of BAD, then the best of GOOD > KEY_REVOKED >
 * EXPIRED > UNKNOWN_KEY.  A signature by an unknown key cannot be checked,
 * so tampering under it shows as SP_PGP_SIG_UNKNOWN_KEY.
 *
 * Errors: SP_ENOKEY when the message is not encrypted to this key,
 * SP_EAUTH when the ciphertext fails its integrity check (or has none),
 * SP_EFORMAT for input that is not an encrypted OpenPGP message (a message
 * that is only signed included: that is sp_pgp_verify()'s), SP_EPGP
 * otherwise, e.g. for a message encrypted to a passphrase.
 */
SP_WUR int sp_pgp_decrypt(sp_pgp *pgp, const void *seckey, size_t seckey_len,
    const struct sp_pgp_buf *signers, size_t nsigners, const void *in,
    size_t in_len, unsigned char **plain_r, size_t *plain_len_r,
    struct sp_pgp_sig *sig_r);

/*
 * Checks a signed, unencrypted message against the certificates in signers
 * (may be NULL/0), with the verdict in *sig_r and the same rules as
 * sp_pgp_decrypt(), including SP_ESIG for a bad signature.
 *
 * Inline or clearsigned: data is NULL, in is the signed message, and the
 * signed content comes back in *plain_r (malloc()'d, the caller's).
 * Detached: in is the signature over data (data_len bytes), and plain_r and
 * plain_len_r must be NULL.  SP_EFORMAT if in holds no signature.
 */
SP_WUR int sp_pgp_verify(sp_pgp *pgp, const struct sp_pgp_buf *signers,
    size_t nsigners, const void *in, size_t in_len, const void *data,
    size_t data_len, unsigned char **plain_r, size_t *plain_len_r,
    struct sp_pgp_sig *sig_r);

#endif
