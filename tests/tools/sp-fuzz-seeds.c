/*
 * sp-fuzz-seeds DIR: writes seed inputs for the crypto fuzz targets into
 * DIR/envelope, DIR/vault and DIR/meta, made with the same fixed keys the
 * targets use, so the fuzzer starts from inputs that reach deep code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/envelope.h"
#include "crypto/meta.h"
#include "crypto/pubkeys.h"
#include "crypto/vault.h"

static void
put(const char *dir, const char *sub, const char *name, const uint8_t *pre,
    size_t plen, const uint8_t *b, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
	if ((f = fopen(path, "wb")) == NULL) {
		perror(path);
		exit(1);
	}
	if (plen)
		fwrite(pre, 1, plen, f);
	fwrite(b, 1, n, f);
	fclose(f);
}

int
main(int argc, char **argv)
{
	uint8_t ser[SP_KEYSET_FIXEDBYTES] = { 1 }, rcpt[1][32], *out, key[32];
	uint8_t msg[3000], rkey[32], slot;
	struct sp_envelope_seal_args a = { .kind = SP_ENVELOPE_KIND_BODY };
	struct sp_kdf_params p;
	struct sp_meta m = { .from = (char *)(uintptr_t)"a@example.org",
	    .subject = (char *)(uintptr_t)"seed", .date = 1, .has_date = 1,
	    .flags = 1, .has_flags = 1 };
	sp_keyset *ks;
	size_t len;
	unsigned i;

	if (argc != 2) {
		fprintf(stderr, "usage: sp-fuzz-seeds DIR\n");
		return 2;
	}
	memset(ser + 1, 1, 32);
	memset(ser + 33, 2, 32);
	memset(ser + 65, 3, 32);
	if (sp_keyset_parse(ser, sizeof(ser), &ks) != 0)
		return 1;
	for (i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)i;
	memcpy(rcpt[0], sp_keyset_encryption_pk(ks), 32);
	a.recipients = (const uint8_t(*)[32])rcpt;
	a.n_recipients = 1;
	a.signer = ks;
	a.chunk_shift = 10;
	if (sp_envelope_seal(&a, msg, sizeof(msg), &out, &len) != 0)
		return 1;
	put(argv[1], "envelope", "signed-x25519", NULL, 0, out, len);
	free(out);
	a.n_recipients = 0;
	a.signer = NULL;
	a.chunk_shift = 0;
	a.kind = SP_ENVELOPE_KIND_META;
	a.mailbox_key = sp_keyset_mailbox_key(ks);
	if (sp_envelope_seal(&a, msg, 100, &out, &len) != 0)
		return 1;
	put(argv[1], "envelope", "meta-mailbox", NULL, 0, out, len);
	free(out);

	memset(key, 0x11, sizeof(key));
	memset(rkey, 0x22, sizeof(rkey));
	if (sp_kdf_params_new(&p, 1, 8) != 0 ||
	    sp_keyset_set_pgp(ks, msg, 50) != 0 ||
	    sp_vault_seal(ks, key, &p, rkey, &out, &len) != 0)
		return 1;
	slot = 0;
	put(argv[1], "vault", "password-slot", &slot, 1, out, len);
	slot = 1;
	put(argv[1], "vault", "recovery-slot", &slot, 1, out, len);
	free(out);

	if (sp_meta_encode(&m, &out, &len) != 0)
		return 1;
	put(argv[1], "meta", "basic", NULL, 0, out, len);
	free(out);

	if (sp_pubkeys_sign(ks, "seed@example.org", 1, msg, 200, &out, &len))
		return 1;
	put(argv[1], "pubkeys", "with-pgp", NULL, 0, out, len);
	free(out);
	sp_keyset_destroy(ks);
	return 0;
}
