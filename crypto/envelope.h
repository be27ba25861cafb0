/*
 * Envelope v1: how every message body and metadata record is stored.
 * Byte layout: docs/format.md, "Envelope v1".
 *
 * - A fresh random content key per envelope.
 * - The content, padded to sp_pad_size(), is cut into fixed chunks
 *   (2^chunk_shift bytes, default 64 KiB) each sealed with
 *   XChaCha20-Poly1305.  The nonce carries the chunk index and the
 *   associated data carries a hash of the header and a "final" flag, so
 *   reordering, truncation, extension and header tampering all fail
 *   authentication, and any byte range decrypts without the rest.
 * - The content key is sealed to each recipient's X25519 key
 *   (crypto_box_seal; recipients are not named) and/or wrapped by the
 *   account's mailbox key.
 * - An optional Ed25519 signature by the sender's identity key sits inside
 *   the encryption, in the "info" segment with the true content length.
 *
 * Sealed envelopes are ciphertext, returned in malloc() memory the caller
 * frees with free().  Readers (sp_envelope) keep the content key in
 * sodium_malloc memory and wipe it on sp_envelope_close().
 */
#ifndef SP_CRYPTO_ENVELOPE_H
#define SP_CRYPTO_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/error.h"
#include "crypto/keyset.h"

#define SP_ENVELOPE_VERSION 1
#define SP_ENVELOPE_KIND_BODY 1
#define SP_ENVELOPE_KIND_META 2
#define SP_ENVELOPE_KIND_CHANGE 3 /* a mailbox change (docs/format.md §12) */
#define SP_ENVELOPE_CHUNK_SHIFT_DEFAULT 16 /* 64 KiB */
#define SP_ENVELOPE_CHUNK_SHIFT_MIN 10     /* 1 KiB */
#define SP_ENVELOPE_CHUNK_SHIFT_MAX 20     /* 1 MiB */
#define SP_ENVELOPE_MAX_SLOTS 32
#define SP_ENVELOPE_MAX_CONTENT ((uint64_t)1 << 40) /* 1 TiB, by pad limit */

typedef struct sp_envelope sp_envelope;

struct sp_envelope_seal_args {
	unsigned kind;                   /* SP_ENVELOPE_KIND_* */
	const uint8_t (*recipients)[32]; /* X25519 public keys, or NULL */
	size_t n_recipients;
	const uint8_t *mailbox_key;      /* 32 bytes, or NULL */
	const sp_keyset *signer;         /* signs with its identity key, or NULL */
	unsigned chunk_shift;            /* 0 = default */
};

/*
 * Seals len bytes of msg.  At least one recipient or a mailbox key is
 * required, at most SP_ENVELOPE_MAX_SLOTS slots in all.  *out_r is malloc'd.
 */
int sp_envelope_seal(const struct sp_envelope_seal_args *a,
    const uint8_t *msg, size_t len, uint8_t **out_r, size_t *len_r);

/*
 * Opens an envelope with a key set: its X25519 key is tried on every
 * sealed-box slot and its mailbox key on every mailbox slot.  Checks the
 * structure and the total length, opens the content key and authenticates
 * the info segment; chunks are authenticated as they are read.
 * env must stay valid and unchanged until sp_envelope_close().
 * Errors: SP_EFORMAT/SP_EVERSION/SP_ETRUNC/SP_ELIMIT for structure,
 * SP_ENOKEY when no slot opens, SP_EAUTH when the header or info segment was
 * tampered with.
 */
SP_WUR int sp_envelope_open(const uint8_t *env, size_t len,
    const sp_keyset *ks, sp_envelope **r);

/* The same with raw keys; either pair may be NULL (not both). */
SP_WUR int sp_envelope_open_raw(const uint8_t *env, size_t len,
    const uint8_t *x25519_pk, const uint8_t *x25519_sk,
    const uint8_t *mailbox_key, sp_envelope **r);

/* Wipes the content key and frees; accepts NULL. */
void sp_envelope_close(sp_envelope *r);

unsigned sp_envelope_kind(const sp_envelope *r);
uint64_t sp_envelope_content_length(const sp_envelope *r);

/*
 * Copies the claimed signer's Ed25519 public key into pk_r and returns 1 if
 * the envelope carries a signature, 0 if it is unsigned.  The claim is only
 * proven once sp_envelope_read_all() returned 0; the caller must still
 * compare the key with the sender it expects.
 */
int sp_envelope_signer(const sp_envelope *r, uint8_t pk_r[32]);

/*
 * Decrypts content bytes [off, off + n) into buf, touching only the chunks
 * that hold them; each is authenticated.  Does not check the signature.
 * SP_ERANGE when the range passes the end of the content.
 */
SP_WUR int sp_envelope_read(sp_envelope *r, uint64_t off, uint8_t *buf,
    size_t n);

/*
 * Decrypts the whole content into buf (buf_len >= content length), checks
 * that the padding is zero and, if the envelope is signed, verifies the
 * signature over the content.  On any failure buf is wiped.
 * SP_ESIG for a signature that does not verify.
 */
SP_WUR int sp_envelope_read_all(sp_envelope *r, uint8_t *buf, size_t buf_len);

#endif
