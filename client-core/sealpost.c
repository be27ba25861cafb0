/*
 * sealpost: the command-line client.  This file holds the command table,
 * the usage text and `selfcheck` (library versions and a crypto round trip
 * on this machine); each command group lives in its own cli_*.c file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <cbor.h>
#include <gmime/gmime.h>
#include <libwebsockets.h>
#include <lmdb.h>
#include <openssl/crypto.h>
#include <sodium.h>
#include <uv.h>

#include "client-core/account.h"
#include "client-core/cli.h"
#include "client-core/cache.h"
#include "client-core/syncer.h"
#include "crypto/envelope.h"
#include "crypto/kdf.h"
#include "crypto/pgp.h"
#include "crypto/recovery.h"
#include "crypto/vault.h"

static int
usage(FILE *f)
{
	fprintf(f,
	    "usage: sealpost COMMAND [options]\n"
	    "\n"
	    "account:\n"
	    "  account create --address A [--invite T]   make keys here, register,\n"
	    "                                            print the recovery key\n"
	    "  account login --address A                 log in, unlock the vault\n"
	    "  account logout | passwd [--revoke-others] | devices [--revoke ID]\n"
	    "          | recover                          (take --cache DIR)\n"
	    "  account 2fa list | add-totp | add-key [--device PATH]\n"
	    "          | remove totp|recovery|KEY_ID | recovery-codes\n"
	    "                                            second factors\n"
	    "  account events                            security events (logins,\n"
	    "                                            factors added, removed)\n"
	    "mail (every command takes --cache DIR, the account's local\n"
	    "directory; the first use also needs --server, --ca, --address):\n"
	    "  sync                       pull the log, apply it to the mailbox\n"
	    "  ls [FOLDER]                list a folder (default INBOX)\n"
	    "  folders                    list folders with counts\n"
	    "  read ID                    print a message (RFC 5322) and its\n"
	    "                             signature state on stderr\n"
	    "  mv ID... FOLDER            move messages\n"
	    "  rm ID...                   delete messages (and their bodies)\n"
	    "  flag [+-]FLAG ID...        seen answered flagged draft junk deleted,\n"
	    "                             or a keyword\n"
	    "  folder create|rename|delete NAME [NEW]\n"
	    "  export --maildir DIR | --mbox FILE [--folder F]\n"
	    "  import --maildir DIR | --mbox FILE [--folder F]\n"
	    "  compact                    write a snapshot, drop the log before it\n"
	    "  send [--rcpt A,B] < MESSAGE, or send --to A[,B] [--cc ..] [--bcc ..]\n"
	    "       [--subject S] [--body T | --body-file F] [--attach FILE]...\n"
	    "                             encrypt, sign and deliver (internal)\n"
	    "keys:\n"
	    "  keys [list | show ADDRESS | accept ADDRESS [--fingerprint FPR]]\n"
	    "                             pinned keys of correspondents\n"
	    "  keys import FILE           pin an outside PGP user's key\n"
	    "  keys wkd ADDRESS [--wkd-base URL] [--wkd-ca FILE]\n"
	    "                             fetch and pin it from WKD\n"
	    "  fingerprint [ADDRESS]      yours, or a correspondent's (pins it)\n"
	    "other:\n"
	    "  selfcheck                  library versions and a crypto round trip\n"
	    "  version                    the sealpost version\n"
	    "\n"
	    "server options:\n"
	    "  --server HOST:PORT   (127.0.0.1:8443)\n"
	    "  --ca FILE            certificate to trust for the server\n"
	    "  --plain              ws:// without TLS (tests only)\n"
	    "  --password-file F    read the password from F (first line);\n"
	    "                       else $SEALPOST_PASSWORD, else a prompt\n"
	    "  --kdf-ops N --kdf-mem-mib N   password hashing cost (create)\n"
	    "second factor (when a login asks for one):\n"
	    "  --fido2-device PATH  a FIDO2 security key (libfido2)\n"
	    "  --totp CODE          authenticator app code; else $SEALPOST_TOTP,\n"
	    "                       else a prompt on a terminal\n"
	    "  --recovery-code CODE a one-time recovery code\n"
	    "\n"
	    "Exit status: 0 success, 1 failure, 2 usage error.\n");
	return f == stderr ? 2 : 0;
}

static void
print_versions(void)
{
	printf("sealpost      %s\n", SEALPOST_VERSION);
	printf("libsodium     %s\n", sodium_version_string());
	printf("OpenSSL       %s\n", OpenSSL_version(OPENSSL_VERSION));
	printf("GPGME         %s\n", sp_pgp_version());
	printf("LMDB          %s\n", mdb_version(NULL, NULL, NULL));
	printf("libwebsockets %s\n", lws_get_library_version());
	printf("libuv         %s\n", uv_version_string());
	printf("GMime         %u.%u.%u\n", gmime_major_version,
	    gmime_minor_version, gmime_micro_version);
	printf("libcbor       %d.%d.%d\n", CBOR_MAJOR_VERSION,
	    CBOR_MINOR_VERSION, CBOR_PATCH_VERSION);
}

static int
step(const char *what, int rc)
{
	printf("%-44s %s\n", what, rc == 0 ? "ok" : sp_strerror(rc));
	return rc;
}

/* The whole account life cycle of crypto/ in one pass. */
static int
crypto_round_trip(void)
{
	static const char pw[] = "selfcheck password";
	static const char body[] = "From: a@example.org\r\nSubject: hi\r\n\r\n"
	    "selfcheck body\r\n";
	struct sp_kdf_params p;
	struct sp_login_keys *lk = NULL;
	sp_keyset *alice = NULL, *bob = NULL, *opened = NULL;
	sp_envelope *r = NULL;
	uint8_t *rkey = NULL, *vault = NULL, *env = NULL, rcpt[1][32];
	uint8_t out[sizeof(body)], signer[32];
	char rtext[SP_RECOVERY_TEXTBYTES];
	size_t vlen, elen;
	struct sp_envelope_seal_args a = { .kind = SP_ENVELOPE_KIND_BODY };
	int rc;

	if ((rkey = sodium_malloc(32)) == NULL)
		return step("allocate", SP_ENOMEM);
	/* Interactive cost keeps the check quick; the path is the same. */
	if ((rc = step("argon2id parameters",
	    sp_kdf_params_new(&p, 2, 64 * 1024))) ||
	    (rc = step("password -> auth key + vault key",
	    sp_kdf_derive(pw, strlen(pw), &p, &lk))) ||
	    (rc = step("generate key sets", sp_keyset_generate(&alice))) ||
	    (rc = sp_keyset_generate(&bob)) ||
	    (rc = step("recovery key", sp_recovery_generate(rkey))))
		goto out;
	sp_recovery_encode(rkey, rtext);
	if ((rc = step("seal vault", sp_vault_seal(bob, lk->vault_key, &p,
	    rkey, &vault, &vlen))) ||
	    (rc = step("open vault with password key", sp_vault_open(vault,
	    vlen, SP_VAULT_SLOT_PASSWORD, lk->vault_key, &opened))))
		goto out;
	sp_keyset_destroy(opened);
	opened = NULL;
	if ((rc = sp_recovery_decode(rtext, rkey)) ||
	    (rc = step("open vault with recovery key", sp_vault_open(vault,
	    vlen, SP_VAULT_SLOT_RECOVERY, rkey, &opened))))
		goto out;
	memcpy(rcpt[0], sp_keyset_encryption_pk(opened), 32);
	a.recipients = (const uint8_t(*)[32])rcpt;
	a.n_recipients = 1;
	a.signer = alice;
	if ((rc = step("seal signed envelope", sp_envelope_seal(&a,
	    (const uint8_t *)body, sizeof(body), &env, &elen))) ||
	    (rc = step("open envelope", sp_envelope_open(env, elen, opened,
	    &r))) ||
	    (rc = step("decrypt and verify signature",
	    sp_envelope_read_all(r, out, sizeof(out)))))
		goto out;
	if (sp_envelope_signer(r, signer) != 1 ||
	    memcmp(signer, sp_keyset_identity_pk(alice), 32) != 0 ||
	    memcmp(out, body, sizeof(body)) != 0)
		rc = step("round trip matches", SP_EAUTH);
	else
		rc = step("round trip matches", 0);
	env[elen / 2] ^= 1;
	sp_envelope_close(r);
	r = NULL;
	if (sp_envelope_open(env, elen, opened, &r) == 0 &&
	    sp_envelope_read_all(r, out, sizeof(out)) == 0)
		rc = step("tampered envelope rejected", SP_EAUTH);
	else
		(void)step("tampered envelope rejected", 0);
out:
	sp_envelope_close(r);
	free(env);
	free(vault);
	sp_keyset_destroy(opened);
	sp_keyset_destroy(alice);
	sp_keyset_destroy(bob);
	sp_login_keys_free(lk);
	sodium_free(rkey);
	return rc;
}

static int
cmd_selfcheck(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	print_versions();
	printf("\n");
	if (crypto_round_trip() != 0) {
		printf("\nselfcheck FAILED\n");
		return 1;
	}
	printf("\nselfcheck passed\n");
	return 0;
}

static int
cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("sealpost %s\n", SEALPOST_VERSION);
	return 0;
}

int cmd_submit(int argc, char **argv);    /* cli_submit.c */

/* The command table: every command, its function. */
static const struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
} commands[] = {
	{ "account", cmd_account },
	{ "sync", cmd_sync },
	{ "ls", cmd_ls },
	{ "folders", cmd_folder },
	{ "folder", cmd_folder },
	{ "read", cmd_read },
	{ "mv", cmd_mv },
	{ "rm", cmd_rm },
	{ "flag", cmd_flag },
	{ "export", cmd_export },
	{ "import", cmd_import },
	{ "compact", cmd_compact },
	{ "send", cmd_send },
	{ "submit", cmd_submit },
	{ "keys", cmd_keys },
	{ "fingerprint", cmd_fingerprint },
	{ "selfcheck", cmd_selfcheck },
	{ "version", cmd_version },
};

int
main(int argc, char **argv)
{
	size_t i;

	if (argc < 2)
		return usage(stderr);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0)
		return usage(stdout);
	if (sodium_init() < 0) {
		fprintf(stderr, "sealpost: libsodium failed to start\n");
		return 1;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name) != 0)
			continue;
		return commands[i].fn(argc - 2, argv + 2);
	}
	fprintf(stderr, "sealpost: unknown command '%s'\n", argv[1]);
	return usage(stderr);
}
