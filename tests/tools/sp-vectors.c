/*
 * sp-vectors: writes a fresh set of crypto test vectors, one "name = value"
 * line each (hex unless the name ends in _text), to standard output.
 *
 * Used twice: once to make the committed known-answer file
 * tests/vectors/crypto-v1.txt (read back by crypto/test-kat.c), and on
 * every test run to feed tests/format/decode.py, the independent PyNaCl
 * decoder written from docs/format.md alone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/envelope.h"
#include "crypto/kdf.h"
#include "crypto/meta.h"
#include "crypto/recovery.h"
#include "crypto/vault.h"

static void
hexline(const char *name, const uint8_t *b, size_t n)
{
	size_t i;

	printf("%s = ", name);
	for (i = 0; i < n; i++)
		printf("%02x", b[i]);
	printf("\n");
}

static void
die(const char *what, int rc)
{
	fprintf(stderr, "sp-vectors: %s: %s\n", what, sp_strerror(rc));
	exit(1);
}

static uint8_t *
message(size_t n)
{
	static const char line[] = "The quick brown fox jumps over the lazy dog. ";
	uint8_t *m = malloc(n);
	size_t i;

	for (i = 0; i < n; i++)
		m[i] = (uint8_t)line[i % (sizeof(line) - 1)];
	return m;
}

int
main(void)
{
	static const char password[] = "correct horse battery staple";
	struct sp_kdf_params pw;
	struct sp_login_keys *lk;
	uint8_t params[SP_KDF_PARAMSBYTES], rkey[32], *v, *env, *ser, *rec;
	uint8_t pgp[40], rcpt[1][32], *msg;
	char rtext[SP_RECOVERY_TEXTBYTES];
	size_t vlen, elen, slen, rlen, i;
	sp_keyset *bob, *alice;
	struct sp_envelope_seal_args a = { 0 };
	struct sp_meta m = {
		.from = (char *)(uintptr_t)"Alice <alice@example.org>",
		.to = (char *)(uintptr_t)"bob@example.org",
		.subject = (char *)(uintptr_t)"Quarterly report — résumé",
		.auth_results = (char *)(uintptr_t)"mx.example.org; spf=pass",
		.date = 1764460800, .has_date = 1,
		.size = 3000, .has_size = 1,
		.flags = SP_META_F_SEEN | SP_META_F_SIGNED, .has_flags = 1,
	};
	int rc;

	if (sodium_init() < 0)
		die("sodium_init", SP_ECRYPTO);
	/* Cheapest accepted Argon2id cost, so the decoder runs fast. */
	if ((rc = sp_kdf_params_new(&pw, 1, 8)) != 0)
		die("params", rc);
	sp_kdf_params_encode(&pw, params);
	if ((rc = sp_kdf_derive(password, strlen(password), &pw, &lk)) != 0)
		die("derive", rc);
	hexline("password", (const uint8_t *)password, strlen(password));
	hexline("kdf_params", params, sizeof(params));
	hexline("auth_pk", lk->auth_pk, 32);
	hexline("vault_key", lk->vault_key, 32);

	if ((rc = sp_keyset_generate(&bob)) || (rc = sp_keyset_generate(&alice)))
		die("keyset", rc);
	for (i = 0; i < sizeof(pgp); i++)
		pgp[i] = (uint8_t)(0xa0 + i);
	if ((rc = sp_keyset_set_pgp(bob, pgp, sizeof(pgp))) != 0)
		die("pgp", rc);
	if ((rc = sp_recovery_generate(rkey)) != 0)
		die("recovery", rc);
	sp_recovery_encode(rkey, rtext);
	hexline("recovery_key", rkey, 32);
	printf("recovery_text = %s\n", rtext);
	if ((rc = sp_keyset_serialize(bob, &ser, &slen)) != 0)
		die("serialize", rc);
	hexline("keyset", ser, slen);
	sodium_free(ser);
	hexline("bob_identity_pk", sp_keyset_identity_pk(bob), 32);
	hexline("bob_encryption_pk", sp_keyset_encryption_pk(bob), 32);
	if ((rc = sp_vault_seal(bob, lk->vault_key, &pw, rkey, &v, &vlen)))
		die("vault", rc);
	hexline("vault", v, vlen);
	free(v);

	hexline("alice_identity_pk", sp_keyset_identity_pk(alice), 32);
	msg = message(3000);
	hexline("plaintext", msg, 3000);
	/* Body: to bob's X25519 key, signed by alice, 1 KiB chunks. */
	memcpy(rcpt[0], sp_keyset_encryption_pk(bob), 32);
	a.kind = SP_ENVELOPE_KIND_BODY;
	a.recipients = (const uint8_t(*)[32])rcpt;
	a.n_recipients = 1;
	a.signer = alice;
	a.chunk_shift = 10;
	if ((rc = sp_envelope_seal(&a, msg, 3000, &env, &elen)) != 0)
		die("seal body", rc);
	hexline("envelope_body", env, elen);
	free(env);
	/* Metadata: under bob's mailbox key, unsigned, default chunks. */
	if ((rc = sp_meta_encode(&m, &rec, &rlen)) != 0)
		die("meta", rc);
	hexline("meta_record", rec, rlen);
	memset(&a, 0, sizeof(a));
	a.kind = SP_ENVELOPE_KIND_META;
	a.mailbox_key = sp_keyset_mailbox_key(bob);
	if ((rc = sp_envelope_seal(&a, rec, rlen, &env, &elen)) != 0)
		die("seal meta", rc);
	hexline("envelope_meta", env, elen);
	free(env);
	free(rec);
	free(msg);
	sp_keyset_destroy(bob);
	sp_keyset_destroy(alice);
	sp_login_keys_free(lk);
	return 0;
}
