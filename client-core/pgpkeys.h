/*
 * Contacts' OpenPGP keys: outside PGP users we read signed mail from and
 * write encrypted mail to.  Keys come from a file the user imports, from
 * WKD (the key's domain, over HTTPS) and from Autocrypt headers of
 * received mail; every one is pinned per address in the account's
 * encrypted cache (table SP_CACHE_T_PGPPINS), like keys.h pins sealpost
 * key sets.
 *
 * Trust rules:
 *   - the first key seen for an address is pinned (TOFU);
 *   - a key with another primary fingerprint is never used silently: it
 *     is kept beside the pin as "pending" and SP_EKEYCHANGED is returned,
 *     until the user accepts it (sp_pgpkeys_accept, `sealpost keys
 *     accept ADDRESS`), optionally naming the fingerprint they compared;
 *   - the same fingerprint again replaces the stored bytes, so new user
 *     ids, new subkeys and revocations are learnt;
 *   - a revoked or expired pinned key is refused for sending
 *     (sp_pgpkeys_usable: SP_EKEYREVOKED / SP_EKEYEXPIRED, with a
 *     sentence saying so) and shown as such when it signed something;
 *   - a key is pinned under an address only if one of its user ids is
 *     that address.
 *
 * Stored format, SP_CACHE_T_PGPPINS (inside the encrypted cache):
 *   key = lower-case address:
 *     version u8 (1) | source u8 | first_seen u64 BE | fpr[65] (NUL padded)
 *     | key_len u32 BE | key | pending_source u8 | pending_fpr[65]
 *     | pending_len u32 BE | pending key
 *   key = "#gen": u64 BE, bumped on every change, so cached served forms
 *     (pgpmail.h) made under older pins are made again.
 * Keys are stored in gpg's canonical binary form (sp_pgp_key_import).
 *
 * Conventions: 0, an SP_E* code or a positive errno; err (may be NULL)
 * gets a sentence for the user.  Never logs, never exits.
 */
#ifndef SP_CLIENT_PGPKEYS_H
#define SP_CLIENT_PGPKEYS_H

#include <stddef.h>
#include <stdint.h>

#include "client-core/cache.h"
#include "crypto/pgp.h"

#define SP_PGPKEYS_KEY_MAX (256 * 1024) /* a key block we accept */

enum sp_pgpkeys_source {
	SP_PGPKEYS_SRC_IMPORT = 1,
	SP_PGPKEYS_SRC_WKD = 2,
	SP_PGPKEYS_SRC_AUTOCRYPT = 3,
};

/* A pin as stored; all owned by the struct (sp_pgpkeys_pin_finish). */
struct sp_pgpkeys_pin {
	char address[255];
	int source;
	uint64_t first_seen;
	char fpr[SP_PGP_FPR_SIZE];
	uint8_t *key;
	size_t key_len;
	int pending_source;		/* 0: no change waiting */
	char pending_fpr[SP_PGP_FPR_SIZE];
	uint8_t *pending;
	size_t pending_len;
};

void sp_pgpkeys_pin_finish(struct sp_pgpkeys_pin *p);

/* The name of a source ("import", "wkd", "autocrypt"). */
const char *sp_pgpkeys_source_name(int source);

/* The pin of address (any case); ENOENT if none. */
int sp_pgpkeys_get(sp_cache *cache, const char *address,
    struct sp_pgpkeys_pin *pin_r);

/* The pins' generation (0 before the first pin). */
uint64_t sp_pgpkeys_gen(sp_cache *cache);

/*
 * Learns key (binary or armored, one certificate) for address from
 * source.  0: pinned (first time, or the same fingerprint updated);
 * SP_EKEYCHANGED: another key is pinned, this one waits as pending;
 * SP_EINVAL: no user id of the key is address; SP_EFORMAT: not one
 * certificate.  fpr_r (may be NULL) gets the key's fingerprint.
 */
int sp_pgpkeys_learn(sp_cache *cache, sp_pgp *pgp, const char *address,
    const void *key, size_t len, int source, char fpr_r[SP_PGP_FPR_SIZE],
    char *err, size_t errlen);

/*
 * Imports a key file for every address among its user ids (each as
 * sp_pgpkeys_learn with SP_PGPKEYS_SRC_IMPORT).  report (may be NULL) is
 * called once per address with that call's result.  Returns 0 when at
 * least one address was pinned or updated, else the last error.
 */
int sp_pgpkeys_import(sp_cache *cache, sp_pgp *pgp, const void *key,
    size_t len, void (*report)(void *arg, const char *address, int rc,
    const char *fpr, const char *err), void *arg, char *err, size_t errlen);

/*
 * The user accepts the pending key of address (or, with no pending key
 * and the same fingerprint pinned, nothing changes).  expect_fpr (may be
 * NULL; spaces and case ignored) must name the pending key's
 * fingerprint, else SP_EKEYCHANGED.  ENOENT: no pin or nothing pending.
 */
int sp_pgpkeys_accept(sp_cache *cache, const char *address,
    const char *expect_fpr, char fpr_r[SP_PGP_FPR_SIZE], char *err,
    size_t errlen);

/*
 * Whether the pinned key of address may be encrypted to now: 0,
 * SP_EKEYREVOKED, SP_EKEYEXPIRED, SP_EPGP (cannot encrypt), ENOENT (no
 * pin), with a sentence in err.
 */
int sp_pgpkeys_usable(sp_cache *cache, sp_pgp *pgp, const char *address,
    char *err, size_t errlen);

/* ---- WKD (draft-koch-openpgp-webkey-service) -------------------------- */

/* z-base-32 of SHA-1 of the lower-cased local part: 32 characters. */
void sp_pgpkeys_wkd_hash(const char *local, size_t len, char out[33]);

/*
 * The WKD URL for address, advanced form when base is NULL
 * (https://openpgpkey.DOMAIN/.well-known/openpgpkey/DOMAIN/hu/HASH?l=L),
 * else base ("https://host:port") followed by the advanced path.
 */
int sp_pgpkeys_wkd_url(const char *address, const char *base, char *out,
    size_t cap);

/*
 * Fetches address's key over HTTPS (TLS 1.2+, certificate and host name
 * checked against ca_file, or the system's store when NULL), at most
 * SP_PGPKEYS_KEY_MAX bytes, and learns it (SP_PGPKEYS_SRC_WKD).  Results
 * as sp_pgpkeys_learn, plus ENOENT when the server has no key (404) and
 * EPROTO / ECONNREFUSED / ETIMEDOUT for transport failures.
 */
int sp_pgpkeys_wkd(sp_cache *cache, sp_pgp *pgp, const char *address,
    const char *base, const char *ca_file, char fpr_r[SP_PGP_FPR_SIZE],
    char *err, size_t errlen);

#endif
