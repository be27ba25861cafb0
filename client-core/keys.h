/*
 * Other people's keys: fetched from the key directory (KEYS_GET,
 * docs/protocol.md section 9), verified, and pinned on first use (TOFU) in
 * the account's encrypted cache (cache.h, table SP_CACHE_T_PINS).
 *
 * The server is not trusted with keys: a hostile server could serve any
 * validly self-signed key set under any address.  So
 *   - every served set's self-signature is checked (crypto/pubkeys.h) and
 *     its address must be the one asked for;
 *   - the first set seen for an address is pinned; later, a set whose
 *     identity key differs from the pinned one is refused with
 *     SP_EKEYCHANGED until the user accepts it (sp_keys_accept), after
 *     comparing fingerprints out of band;
 *   - a set with the pinned identity key but other contents was signed by
 *     the pinned identity, so it replaces the pin if it is newer (its
 *     signed `created` time is later) and is refused (SP_EKEYCHANGED) if
 *     it is older: a server must not roll a correspondent back to an
 *     encryption key they have replaced.
 *
 * Stored format, SP_CACHE_T_PINS (all inside the encrypted cache):
 *   key = lower-case address:  version u8 (1) | first_seen u64 BE |
 *                              the signed key set as served
 *   key = "" (no address is empty): the pinned addresses, each followed
 *                              by a NUL, for listing (the cache hashes its
 *                              keys, so it cannot enumerate a table)
 * The signed set is kept whole, so a pin can be re-verified and shown
 * (OpenPGP key included) without the network.
 *
 * Fingerprint (docs/format.md "Fingerprints"): BLAKE2b-160 of
 * "sealpost-fingerprint-v1" || identity_pk || encryption_pk, as 40
 * upper-case hex digits in ten groups of four separated by spaces.  Both
 * ends compute it the same way: the owner from the key set in its vault,
 * a correspondent from the directory's set.
 *
 * Conventions: every call returns 0, an SP_E* code (crypto/error.h) or a
 * positive errno; err (may be NULL) receives a sentence for the user.
 * ENOENT: no such account in the directory (or, for pinned-only lookups,
 * no pin).  SP_ESERVER: the server refused (reason in err).  SP_ESIG,
 * SP_EFORMAT...: the directory served a set that does not verify.
 * Never logs, never exits.  Not thread-safe per sp_client (sync_client.h);
 * the cache may be shared (cache.h).
 */
#ifndef SP_CLIENT_KEYS_H
#define SP_CLIENT_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "client-core/cache.h"
#include "client-core/sync_client.h"
#include "crypto/keyset.h"
#include "crypto/pubkeys.h"

#define SP_KEYS_FPR_BYTES 50  /* 40 hex digits, 9 spaces, NUL */
#define SP_KEYS_ADDR_BYTES 255 /* an address (254) and its NUL */

/* A key set (served or pinned).  pk.pgp points into raw; everything is
 * owned by the struct: release with sp_keys_info_finish(). */
struct sp_keys_info {
	struct sp_pubkeys pk;    /* address, identity, encryption, created */
	uint64_t first_seen;     /* when pinned here (0 for a served set) */
	int pinned_now;          /* 1: sp_keys_get pinned it on this call */
	uint8_t *raw;            /* the signed set, malloc'd */
	size_t raw_len;
};

/* Frees what info holds and zeroes it; accepts a zeroed struct. */
void sp_keys_info_finish(struct sp_keys_info *info);

/* The fingerprint of a key pair (format above). */
void sp_keys_fingerprint(const uint8_t identity_pk[32],
    const uint8_t encryption_pk[32], char out[SP_KEYS_FPR_BYTES]);

/* The account's own fingerprint, from its unlocked key set. */
void sp_keys_own_fingerprint(const sp_keyset *ks,
    char out[SP_KEYS_FPR_BYTES]);

/* Formats an error message into err (NULL or errlen 0: nothing), for the
 * client-core files that report through err/errlen. */
void sp_keys_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * The address of a single mailbox ("ann@x.org", "Ann <Ann@X.org>", as in
 * a From: header), lower-cased, into out.  SP_EINVAL when s is not exactly
 * one address of 3..254 printable ASCII bytes with one '@'.
 */
int sp_keys_address(const char *s, char out[SP_KEYS_ADDR_BYTES]);

/*
 * Asks the directory for address's key set (KEYS_GET on c, logged in or
 * not) and verifies it, without pinning anything.  *info_r is the served
 * set (first_seen 0).  Cost: one round trip and one signature check.
 */
int sp_keys_fetch(sp_client *c, const char *address,
    struct sp_keys_info *info_r, char *err, size_t errlen);

/* The pinned set for address, from the cache only.  ENOENT if none. */
int sp_keys_pinned(sp_cache *cache, const char *address,
    struct sp_keys_info *info_r);

/*
 * The keys to use for address: fetches and verifies the served set and
 * checks it against the pin (pinning it if there is none: pinned_now = 1).
 * On 0, *info_r holds the set to encrypt to (now pinned).  On
 * SP_EKEYCHANGED, *info_r holds the pinned set and *served_r (may be NULL)
 * the served one, so the caller can show both fingerprints; nothing is
 * pinned.  On any other error both are zeroed.
 */
int sp_keys_get(sp_cache *cache, sp_client *c, const char *address,
    struct sp_keys_info *info_r, struct sp_keys_info *served_r, char *err,
    size_t errlen);

/*
 * The user accepts the key set the directory serves now for address:
 * fetches, verifies and pins it, replacing any pin (first_seen = now).
 * expect_fpr (may be NULL) is the fingerprint the user compared out of
 * band; if given, a served set with another fingerprint is refused
 * (SP_EKEYCHANGED) and nothing is pinned, so the server cannot swap keys
 * between the comparison and the acceptance.  Spaces and letter case in
 * it do not matter.  *info_r (may be NULL) receives the new pin.
 */
int sp_keys_accept(sp_cache *cache, sp_client *c, const char *address,
    const char *expect_fpr, struct sp_keys_info *info_r, char *err,
    size_t errlen);

/*
 * The pinned addresses, in the order they were pinned: *addrs_r is one
 * malloc'd block holding *n_r NUL-terminated strings one after another
 * (walk with strlen + 1); the caller frees it.  0 with *n_r = 0 when none.
 */
int sp_keys_list(sp_cache *cache, char **addrs_r, size_t *n_r);

/*
 * Receiving side: is signer_pk (a verified body's signer, mailbox.h
 * sp_mbox_body) the pinned identity key of the message's sender?  from
 * is the From: text (one mailbox).  Without a pin, the sender's keys are
 * fetched through c and pinned first (c NULL: ENOENT instead).  Returns 0
 * when it matches; SP_ESIG when the message was signed by another key
 * (a forgery, or a sender whose key changed: when c is given and the
 * directory now serves signer_pk for the sender, SP_EKEYCHANGED instead,
 * so the user is told to compare fingerprints and accept); SP_EINVAL for
 * a From that is not one address; fetch errors as sp_keys_get.
 */
int sp_keys_check_signer(sp_cache *cache, sp_client *c, const char *from,
    const uint8_t signer_pk[32], char *err, size_t errlen);

#endif
