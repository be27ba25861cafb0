#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "client-core/account.h"
#include "client-core/factors.h"
#include "crypto/kdf.h"
#include "crypto/pgp.h"
#include "crypto/pubkeys.h"
#include "crypto/vault.h"

#define check_reply sp_client_expect

/* The account's OpenPGP key: secret part into the key set, public part
 * returned for the signed public key set (malloc'd). */
static int
make_pgp_key(sp_keyset *ks, const char *address, uint8_t **pub_r,
    size_t *pub_len_r)
{
	sp_pgp *pgp = NULL;
	unsigned char *sec = NULL, *pub = NULL;
	size_t sec_len = 0, pub_len = 0;
	char uid[300];
	int rc;

	*pub_r = NULL;
	snprintf(uid, sizeof(uid), "<%s>", address);
	if ((rc = sp_pgp_create(&pgp)) != 0)
		return rc;
	if ((rc = sp_pgp_key_generate(pgp, uid, 0, 0, &sec, &sec_len)) == 0 &&
	    (rc = sp_pgp_key_import(pgp, sec, sec_len, 0, &pub, &pub_len, NULL,
	    NULL)) == 0)
		rc = sp_keyset_set_pgp(ks, sec, sec_len);
	if (sec)
		sodium_free(sec);
	(void)sp_pgp_destroy(pgp);
	if (rc != 0) {
		free(pub);
		return rc;
	}
	*pub_r = pub;
	*pub_len_r = pub_len;
	return 0;
}

int
sp_account_create(sp_client *c, const struct sp_account_new *n,
    char recovery_text[SP_RECOVERY_TEXTBYTES], char *err, size_t errlen)
{
	struct sp_kdf_params p;
	struct sp_login_keys *lk = NULL;
	sp_keyset *ks = NULL;
	uint8_t *rkey = NULL, *vault = NULL, *pub = NULL, *pgp = NULL;
	uint8_t params[SP_KDF_PARAMSBYTES], rpk[32], *rsk = NULL;
	size_t vlen, plen, pgp_len = 0;
	struct sp_frame f;
	struct sp_client_msg *m = NULL;
	int rc;

	recovery_text[0] = 0;
	if ((rkey = sodium_malloc(SP_RECOVERY_KEYBYTES)) == NULL)
		return SP_ENOMEM;
	if ((rc = sp_kdf_params_new(&p, n->kdf_ops, n->kdf_mem_kib)) != 0) {
		snprintf(err, errlen, "password hashing cost out of range");
		goto out;
	}
	if ((rc = sp_keyset_generate(&ks)) != 0 ||
	    (!n->no_pgp && (rc = make_pgp_key(ks, n->address, &pgp,
	    &pgp_len)) != 0) ||
	    (rc = sp_kdf_derive(n->password, n->password_len, &p, &lk)) != 0 ||
	    (rc = sp_recovery_generate(rkey)) != 0 ||
	    (rc = sp_vault_seal(ks, lk->vault_key, &p, rkey, &vault,
	    &vlen)) != 0 ||
	    (rc = sp_pubkeys_sign(ks, n->address, (uint64_t)time(NULL), pgp,
	    pgp_len, &pub, &plen)) != 0) {
		snprintf(err, errlen, "making keys: %s", sp_strerror(rc));
		goto out;
	}
	/* The recovery login key (protocol.md 6.6): the way back in when
	 * the password is lost. */
	if ((rsk = sodium_malloc(64)) == NULL ||
	    (rc = sp_recovery_login_keys(rkey, rpk, rsk)) != 0) {
		rc = rc ? rc : SP_ENOMEM;
		snprintf(err, errlen, "making keys: %s", sp_strerror(rc));
		goto out;
	}
	sp_kdf_params_encode(&p, params);
	sp_frame_init(&f, SP_MSG_REGISTER, 0);
	sp_frame_set_text(&f, SP_F_ADDRESS, n->address);
	sp_frame_set_bytes(&f, SP_F_AUTH_PK, lk->auth_pk, 32);
	sp_frame_set_bytes(&f, SP_F_KDF_PARAMS, params, sizeof(params));
	sp_frame_set_bytes(&f, SP_F_VAULT, vault, vlen);
	sp_frame_set_bytes(&f, SP_F_PUBKEYS, pub, plen);
	sp_frame_set_bytes(&f, SP_F_RECOVERY_PK, rpk, sizeof(rpk));
	if (n->invite)
		sp_frame_set_text(&f, SP_F_INVITE, n->invite);
	rc = sp_client_call(c, &f, &m);
	if ((rc = check_reply(rc, m, SP_MSG_OK, "registration", err,
	    errlen)) != 0)
		goto out;
	sp_recovery_encode(rkey, recovery_text);
out:
	sp_client_msg_free(m);
	free(pub);
	free(pgp);
	free(vault);
	sp_login_keys_free(lk);
	sp_keyset_destroy(ks);
	sodium_free(rkey);
	sodium_free(rsk);
	return rc;
}

int
sp_account_login(sp_client *c, const char *address, const char *password,
    size_t password_len, const char *device, sp_keyset **ks_r,
    uint8_t token_r[32], uint64_t *last_r, char *err, size_t errlen)
{
	return sp_account_login_2fa(c, address, password, password_len, device,
	    NULL, ks_r, token_r, last_r, err, errlen);
}

int
sp_account_login_2fa(sp_client *c, const char *address, const char *password,
    size_t password_len, const char *device,
    const struct sp_second_factor *sf, sp_keyset **ks_r, uint8_t token_r[32],
    uint64_t *last_r, char *err, size_t errlen)
{
	struct sp_kdf_params p;
	struct sp_login_keys *lk = NULL;
	struct sp_frame f;
	struct sp_client_msg *m = NULL;
	uint8_t chal[32], sig[64];
	int rc;

	*ks_r = NULL;
	sp_frame_init(&f, SP_MSG_PRELOGIN, 0);
	sp_frame_set_text(&f, SP_F_ADDRESS, address);
	rc = sp_client_call(c, &f, &m);
	if ((rc = check_reply(rc, m, SP_MSG_PRELOGIN_OK, "login", err,
	    errlen)) != 0)
		goto out;
	memcpy(chal, m->f.f[SP_F_CHALLENGE].ptr, sizeof(chal));
	if ((rc = sp_kdf_params_decode(m->f.f[SP_F_KDF_PARAMS].ptr, &p)) != 0) {
		snprintf(err, errlen, "login: the server sent unusable password "
		    "parameters");
		goto out;
	}
	if (p.opslimit < SP_ACCOUNT_KDF_FLOOR_OPS ||
	    p.mem_kib < SP_ACCOUNT_KDF_FLOOR_MEM_KIB) {
		rc = SP_EWEAK;
		snprintf(err, errlen, "login: refused: %s", sp_strerror(rc));
		goto out;
	}
	sp_client_msg_free(m);
	m = NULL;
	if ((rc = sp_kdf_derive(password, password_len, &p, &lk)) != 0 ||
	    (rc = sp_kdf_sign_challenge(lk, chal, sizeof(chal), sig)) != 0) {
		snprintf(err, errlen, "login: %s", sp_strerror(rc));
		goto out;
	}
	sp_frame_init(&f, SP_MSG_LOGIN, 0);
	sp_frame_set_text(&f, SP_F_ADDRESS, address);
	sp_frame_set_bytes(&f, SP_F_CHALLENGE, chal, sizeof(chal));
	sp_frame_set_bytes(&f, SP_F_SIGNATURE, sig, sizeof(sig));
	if (device)
		sp_frame_set_text(&f, SP_F_DEVICE, device);
	rc = sp_client_call(c, &f, &m);
	/* The password was right and the account wants a second factor:
	 * the session and the vault come only after it (protocol.md 6.5). */
	if (rc == 0 && m->f.type == SP_MSG_SECOND_FACTOR) {
		struct sp_client_msg *ok = NULL;

		rc = sp_factors_answer(c, address, &m->f, sf, &ok, err, errlen);
		sp_client_msg_free(m);
		m = ok;
		if (rc != 0)
			goto out;
	}
	if ((rc = check_reply(rc, m, SP_MSG_LOGIN_OK, "login", err,
	    errlen)) != 0)
		goto out;
	/* The vault must open with the key our password derives: a server
	 * that hands out another vault gets nothing from us. */
	if ((rc = sp_vault_open(m->f.f[SP_F_VAULT].ptr, m->f.f[SP_F_VAULT].len,
	    SP_VAULT_SLOT_PASSWORD, lk->vault_key, ks_r)) != 0) {
		snprintf(err, errlen, "login: the vault does not open: %s",
		    sp_strerror(rc));
		goto out;
	}
	memcpy(token_r, m->f.f[SP_F_TOKEN].ptr, 32);
	*last_r = m->f.f[SP_F_LAST].u;
out:
	sodium_memzero(sig, sizeof(sig));
	sp_client_msg_free(m);
	sp_login_keys_free(lk);
	return rc;
}

int
sp_account_recover(sp_client *c, const char *address,
    const char *recovery_text, const char *new_password, size_t new_len,
    uint32_t kdf_ops, uint32_t kdf_mem_kib, const char *device,
    const struct sp_second_factor *sf, char *err, size_t errlen)
{
	struct sp_kdf_params p;
	struct sp_login_keys *lk = NULL;
	struct sp_frame f;
	struct sp_client_msg *m = NULL;
	uint8_t *rkey = NULL, *rsk = NULL, *vault = NULL;
	uint8_t chal[32], sig[64], rpk[32], params[SP_KDF_PARAMSBYTES];
	size_t vlen = 0;
	int rc;

	if ((rkey = sodium_malloc(SP_RECOVERY_KEYBYTES)) == NULL ||
	    (rsk = sodium_malloc(64)) == NULL) {
		rc = SP_ENOMEM;
		goto out;
	}
	if ((rc = sp_recovery_decode(recovery_text, rkey)) != 0) {
		snprintf(err, errlen, "that is not a valid recovery key (a "
		    "letter or digit is wrong or missing)");
		goto out;
	}
	if ((rc = sp_recovery_login_keys(rkey, rpk, rsk)) != 0)
		goto out;
	sp_frame_init(&f, SP_MSG_PRELOGIN, 0);
	sp_frame_set_text(&f, SP_F_ADDRESS, address);
	rc = sp_client_call(c, &f, &m);
	if ((rc = check_reply(rc, m, SP_MSG_PRELOGIN_OK, "recovery", err,
	    errlen)) != 0)
		goto out;
	memcpy(chal, m->f.f[SP_F_CHALLENGE].ptr, sizeof(chal));
	sp_client_msg_free(m);
	m = NULL;
	if ((rc = sp_recovery_sign_challenge(rsk, chal, sizeof(chal),
	    sig)) != 0)
		goto out;
	sp_frame_init(&f, SP_MSG_RECOVER, 0);
	sp_frame_set_text(&f, SP_F_ADDRESS, address);
	sp_frame_set_bytes(&f, SP_F_CHALLENGE, chal, sizeof(chal));
	sp_frame_set_bytes(&f, SP_F_SIGNATURE, sig, sizeof(sig));
	if (device)
		sp_frame_set_text(&f, SP_F_DEVICE, device);
	rc = sp_client_call(c, &f, &m);
	/* The recovery key replaces the password, not the second factor:
	 * an account that has one answers it here, as at LOGIN. */
	if (rc == 0 && m->f.type == SP_MSG_SECOND_FACTOR) {
		struct sp_client_msg *ok = NULL;

		rc = sp_factors_answer(c, address, &m->f, sf, &ok, err,
		    errlen);
		sp_client_msg_free(m);
		m = ok;
		if (rc != 0)
			goto out;
	}
	if ((rc = check_reply(rc, m, SP_MSG_LOGIN_OK, "recovery", err,
	    errlen)) != 0)
		goto out;
	/* The vault as it is, with a new password slot; the recovery slot
	 * and the key set are copied, so the same recovery key still
	 * works.  The server's parameters are not trusted: ours are new. */
	if ((rc = sp_kdf_params_new(&p, kdf_ops, kdf_mem_kib)) != 0 ||
	    (rc = sp_kdf_derive(new_password, new_len, &p, &lk)) != 0 ||
	    (rc = sp_vault_rewrap(m->f.f[SP_F_VAULT].ptr,
	    m->f.f[SP_F_VAULT].len, SP_VAULT_SLOT_RECOVERY, rkey,
	    lk->vault_key, &p, &vault, &vlen)) != 0) {
		snprintf(err, errlen, "recovery: %s", rc == SP_EAUTH ?
		    "the recovery key does not open this account's vault" :
		    sp_strerror(rc));
		goto out;
	}
	sp_client_msg_free(m);
	m = NULL;
	sp_kdf_params_encode(&p, params);
	sp_frame_init(&f, SP_MSG_VAULT_PUT, 0);
	sp_frame_set_bytes(&f, SP_F_VAULT, vault, vlen);
	sp_frame_set_bytes(&f, SP_F_AUTH_PK, lk->auth_pk, 32);
	sp_frame_set_bytes(&f, SP_F_KDF_PARAMS, params, sizeof(params));
	rc = sp_client_call(c, &f, &m);
	rc = check_reply(rc, m, SP_MSG_OK, "recovery: setting the new "
	    "password", err, errlen);
out:
	sodium_memzero(sig, sizeof(sig));
	sp_client_msg_free(m);
	free(vault);
	sp_login_keys_free(lk);
	sodium_free(rkey);
	sodium_free(rsk);
	return rc;
}
