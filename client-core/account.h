/*
 * Accounts, from the client's side: everything secret is made and opened
 * here, on the user's machine; the server gets public keys, a sealed vault
 * and signatures (docs/protocol.md section 6, docs/format.md).
 *
 * Both calls talk over an sp_client that has completed HELLO.  Errors are
 * SP_E* codes or errno values; when the server refused (SP_ESERVER) or
 * anything else went wrong, err receives a sentence for the user.
 */
#ifndef SP_CLIENT_ACCOUNT_H
#define SP_CLIENT_ACCOUNT_H

#include <stddef.h>
#include <stdint.h>

#include "client-core/sync_client.h"
#include "crypto/keyset.h"
#include "crypto/recovery.h"

/* Weakest password hashing a client accepts at login, whatever the server
 * says (a hostile server could otherwise ask for a cheaply guessed key):
 * OWASP's minimum for Argon2id. */
#define SP_ACCOUNT_KDF_FLOOR_OPS 2u
#define SP_ACCOUNT_KDF_FLOOR_MEM_KIB (19u * 1024u)

struct sp_account_new {
	const char *address;
	const char *password;
	size_t password_len;
	const char *invite;        /* NULL on an open-registration server */
	uint32_t kdf_ops;          /* 0: SP_KDF_OPS_DEFAULT */
	uint32_t kdf_mem_kib;      /* 0: SP_KDF_MEM_KIB_DEFAULT */
	int no_pgp;                /* skip the OpenPGP key (tests) */
};

/*
 * Creates an account: generates the key set (and an OpenPGP key, unless
 * no_pgp), derives the login key and vault key from the password, seals
 * the vault with a password slot and a recovery slot, signs the public key
 * set and registers.  recovery_text receives the recovery key, to be shown
 * to the user once; it is the only way back in without the password.
 */
int sp_account_create(sp_client *c, const struct sp_account_new *n,
    char recovery_text[SP_RECOVERY_TEXTBYTES], char *err, size_t errlen);

/*
 * Logs in: PRELOGIN, Argon2id with the account's parameters (refused below
 * the floor above: SP_EWEAK), a signature over the challenge, LOGIN, and
 * the vault opened with the derived vault key.  On success *ks_r is the
 * unlocked key set (the caller's; sp_keyset_destroy), token_r the session
 * token for RESUME (secret), *last_r the log's last seq.
 */
int sp_account_login(sp_client *c, const char *address, const char *password,
    size_t password_len, const char *device, sp_keyset **ks_r,
    uint8_t token_r[32], uint64_t *last_r, char *err, size_t errlen);

/*
 * The same for an account that may need a second factor: when LOGIN is
 * answered SECOND_FACTOR, sf says what to answer with (factors.h,
 * sp_factors_answer; NULL: nothing, so such an account fails with EACCES
 * and a sentence naming the options).  A refused factor is SP_EAUTH.
 */
struct sp_second_factor;
int sp_account_login_2fa(sp_client *c, const char *address,
    const char *password, size_t password_len, const char *device,
    const struct sp_second_factor *sf, sp_keyset **ks_r, uint8_t token_r[32],
    uint64_t *last_r, char *err, size_t errlen);

/*
 * Recovery (protocol.md 6.6): proves the recovery key (its text form),
 * receives the vault, opens its recovery slot and replaces the password
 * slot with one for new_password (Argon2id cost kdf_ops/kdf_mem_kib, 0 =
 * defaults), all on connection c, which ends logged in.  The recovery key
 * stays valid.  An account with second factors must still pass one: sf
 * says with what, as for sp_account_login_2fa (may be NULL).  Accounts
 * registered before recovery login existed cannot recover this way.
 */
int sp_account_recover(sp_client *c, const char *address,
    const char *recovery_text, const char *new_password, size_t new_len,
    uint32_t kdf_ops, uint32_t kdf_mem_kib, const char *device,
    const struct sp_second_factor *sf, char *err, size_t errlen);

#endif
