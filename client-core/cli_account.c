/*
 * `sealpost account ...`: create, login (and more to come).
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "client-core/account.h"
#include "client-core/cli.h"
#include "crypto/recovery.h"

int
cmd_account(int argc, char **argv)
{
	struct cli o;
	sp_client *c = NULL;
	char *pw = NULL, err[512] = "";
	size_t pwlen;
	int rc = 1, create;

	if (argc < 1 || (strcmp(argv[0], "create") != 0 &&
	    strcmp(argv[0], "login") != 0)) {
		fprintf(stderr, "usage: sealpost account create|login "
		    "--address A [options]\n");
		return 2;
	}
	create = strcmp(argv[0], "create") == 0;
	if (cli_parse(&o, argc - 1, argv + 1, NULL) != 0)
		return 2;
	if (o.address == NULL) {
		fprintf(stderr, "sealpost: --address is required\n");
		return 2;
	}
	if ((pw = cli_password(&o, &pwlen)) == NULL)
		return 2;
	if ((c = cli_connect(&o)) == NULL)
		goto out;
	if (create) {
		struct sp_account_new n = { .address = o.address,
		    .password = pw, .password_len = pwlen, .invite = o.invite,
		    .kdf_ops = o.kdf_ops, .kdf_mem_kib = o.kdf_mem_kib };
		char rtext[SP_RECOVERY_TEXTBYTES];

		if (sp_account_create(c, &n, rtext, err, sizeof(err)) != 0) {
			fprintf(stderr, "sealpost: %s\n", err);
			goto out;
		}
		printf("account %s created\n"
		    "recovery key (shown once; it opens the account if the "
		    "password is lost):\n%s\n", o.address, rtext);
		sodium_memzero(rtext, sizeof(rtext));
	} else {
		sp_keyset *ks = NULL;
		uint8_t token[32];
		uint64_t last = 0;

		if (sp_account_login(c, o.address, pw, pwlen, "sealpost-cli",
		    &ks, token, &last, err, sizeof(err)) != 0) {
			fprintf(stderr, "sealpost: %s\n", err);
			goto out;
		}
		sodium_memzero(token, sizeof(token));
		printf("logged in as %s; vault unlocked; log at seq %llu\n",
		    o.address, (unsigned long long)last);
		sp_keyset_destroy(ks);
	}
	rc = 0;
out:
	sp_client_close(c);
	sodium_free(pw);
	return rc;
}

