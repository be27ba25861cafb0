/*
 * sealpost error codes, shared by every sealpost library.
 *
 * Shaped after LMDB: every call returns an int, 0 on success, one of the
 * codes below (a reserved negative range) on a sealpost-level failure, or a
 * positive errno value when the operating system said no.  sp_strerror()
 * turns any of them into a static English string.
 */
#ifndef SP_CRYPTO_ERROR_H
#define SP_CRYPTO_ERROR_H

/* Results that callers must not ignore: decrypt, verify, parse. */
#define SP_WUR __attribute__((warn_unused_result))

enum {
	SP_OK = 0,
	SP_ERR_FIRST = -32100,
	SP_EINVAL = SP_ERR_FIRST, /* bad argument from the caller */
	SP_EFORMAT,     /* input bytes are malformed */
	SP_EVERSION,    /* unknown version or algorithm id */
	SP_ETRUNC,      /* input is shorter (or longer) than it claims */
	SP_EAUTH,       /* authentication failed: tampered data or wrong key */
	SP_ENOKEY,      /* no recipient slot opens with the given keys */
	SP_ESIG,        /* a signature is present and does not verify */
	SP_ELIMIT,      /* input exceeds a documented limit */
	SP_ENOMEM,      /* allocation failed (also sodium_malloc) */
	SP_ECRYPTO,     /* libsodium refused an operation it should not */
	SP_EPGP,        /* an OpenPGP (GPGME/gpg) operation failed */
	SP_EKEYREVOKED, /* an OpenPGP key is revoked */
	SP_EKEYEXPIRED, /* an OpenPGP key has expired */
	SP_ERANGE,      /* requested byte range lies outside the content */
	SP_ESERVER,     /* the server refused a request (its reason is given) */
	SP_EWEAK,       /* the server asked for weaker password hashing */
	SP_EKEYCHANGED, /* a correspondent's key differs from the pinned one */
	SP_ERR_LAST
};

/*
 * Returns a static, never-NULL string for any value returned by a sealpost
 * function (including positive errno values).
 */
const char *sp_strerror(int err);

#endif
