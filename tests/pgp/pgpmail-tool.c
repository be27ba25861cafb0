/*
 * pgpmail-tool: client-core/pgpmail.h from the command line, for the
 * end-to-end test (test-pgp.py), where gpg checks what it makes.
 *
 *   pgpmail-tool encrypt MSG SIGNER_SECKEY OWN_PUBKEY RCPT_KEY...
 *       sp_pgpmail_encrypt of MSG to every RCPT_KEY, signed with
 *       SIGNER_SECKEY, with an Autocrypt header for the From address
 *       carrying OWN_PUBKEY; the message on stdout.
 *   pgpmail-tool open MSG SECKEY [SIGNER_KEY]
 *       sp_pgpmail_open: the served form on stdout (or MSG as it is).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client-core/pgpmail.h"

static uint8_t *
slurp(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	uint8_t *b = NULL;
	size_t n = 0, cap = 0, r;

	if (f == NULL) {
		perror(path);
		exit(1);
	}
	do {
		if (n == cap) {
			cap = cap ? cap * 2 : 65536;
			if ((b = realloc(b, cap)) == NULL)
				exit(1);
		}
		r = fread(b + n, 1, cap - n, f);
		n += r;
	} while (r > 0);
	fclose(f);
	*len_r = n;
	return b;
}

static int
do_encrypt(sp_pgp *pgp, int argc, char **argv)
{
	struct sp_pgp_buf rcpts[16];
	struct sp_pgpmail_peek pk;
	uint8_t *msg, *sec, *own, *out = NULL;
	size_t len, sec_len, own_len, out_len, n = 0;
	char *ac = NULL;
	int rc, i;

	msg = slurp(argv[0], &len);
	sec = slurp(argv[1], &sec_len);
	own = slurp(argv[2], &own_len);
	for (i = 3; i < argc && n < 16; i++, n++)
		rcpts[n].data = slurp(argv[i], &rcpts[n].len);
	if (sp_pgpmail_peek(msg, len, &pk) != 0 || pk.from[0] == 0 ||
	    (rc = sp_autocrypt_header(pk.from, own, own_len, &ac)) != 0) {
		fprintf(stderr, "pgpmail-tool: no From for Autocrypt\n");
		return 1;
	}
	sp_pgpmail_peek_finish(&pk);
	rc = sp_pgpmail_encrypt(pgp, msg, len, rcpts, n, sec, sec_len, ac,
	    &out, &out_len);
	if (rc != 0) {
		fprintf(stderr, "pgpmail-tool: %s\n", sp_strerror(rc));
		return 1;
	}
	fwrite(out, 1, out_len, stdout);
	free(out);
	free(ac);
	free(msg);
	free(sec);
	free(own);
	for (i = 0; i < (int)n; i++)
		free((void *)(uintptr_t)rcpts[i].data);
	return 0;
}

static int
do_open(sp_pgp *pgp, int argc, char **argv)
{
	struct sp_pgpmail_result res;
	struct sp_pgp_buf signer;
	uint8_t *msg, *sec, *out = NULL;
	size_t len, sec_len, out_len;
	int rc;

	msg = slurp(argv[0], &len);
	sec = slurp(argv[1], &sec_len);
	if (argc > 2)
		signer.data = slurp(argv[2], &signer.len);
	rc = sp_pgpmail_open(pgp, sec, sec_len, argc > 2 ? &signer : NULL,
	    argc > 2 ? 1 : 0, NULL, msg, len, &out, &out_len, &res);
	if (rc != 0) {
		fprintf(stderr, "pgpmail-tool: %s\n", sp_strerror(rc));
		return 1;
	}
	if (out)
		fwrite(out, 1, out_len, stdout);
	else
		fwrite(msg, 1, len, stdout);
	free(out);
	free(msg);
	free(sec);
	if (argc > 2)
		free((void *)(uintptr_t)signer.data);
	return 0;
}

int
main(int argc, char **argv)
{
	sp_pgp *pgp = NULL;
	int rc = 2;

	if (sodium_init() < 0 || sp_pgp_create(&pgp) != 0)
		return 1;
	if (argc >= 6 && strcmp(argv[1], "encrypt") == 0)
		rc = do_encrypt(pgp, argc - 2, argv + 2);
	else if (argc >= 4 && strcmp(argv[1], "open") == 0)
		rc = do_open(pgp, argc - 2, argv + 2);
	else
		fprintf(stderr, "usage: pgpmail-tool encrypt MSG SIGNER_SECKEY "
		    "OWN_PUBKEY RCPT_KEY... | open MSG SECKEY [SIGNER_KEY]\n");
	(void)sp_pgp_destroy(pgp);
	return rc;
}
