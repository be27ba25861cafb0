/*
 * sealpost: the command-line client.  For now it carries one command,
 * `selfcheck`, which proves the build is whole: it prints the version of
 * every library sealpost links and runs the crypto core end to end (password
 * to keys, vault, recovery key, signed envelope) on this machine.
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
	    "usage: sealpost COMMAND\n"
	    "\n"
	    "commands:\n"
	    "  account create --address A [--invite T] [server options]\n"
	    "              make keys here, register, print the recovery key\n"
	    "  account login --address A [server options]\n"
	    "              log in and unlock the vault\n"
	    "  sync --address A --cache DIR [server options]\n"
	    "              log in and pull the account's log into DIR\n"
	    "  selfcheck   print library versions and run a crypto round trip\n"
	    "  version     print the sealpost version\n"
	    "\n"
	    "server options:\n"
	    "  --server HOST:PORT   (127.0.0.1:8443)\n"
	    "  --ca FILE            certificate to trust for the server\n"
	    "  --plain              ws:// without TLS (tests only)\n"
	    "  --password-file F    read the password from F (first line);\n"
	    "                       else $SEALPOST_PASSWORD, else a prompt\n"
	    "  --kdf-ops N --kdf-mem-mib N   password hashing cost (create)\n");
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

struct cli {
	char host[256];
	int port;
	const char *ca_file, *address, *invite, *password_file;
	int plain;
	uint32_t kdf_ops, kdf_mem_kib;
};

static int
cli_parse(struct cli *o, int argc, char **argv)
{
	int i;

	memset(o, 0, sizeof(*o));
	snprintf(o->host, sizeof(o->host), "127.0.0.1");
	o->port = 8443;
	for (i = 0; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--plain") == 0) {
			o->plain = 1;
			continue;
		}
		if (v == NULL) {
			fprintf(stderr, "sealpost: %s needs a value\n", a);
			return -1;
		}
		i++;
		if (strcmp(a, "--server") == 0) {
			const char *colon = strrchr(v, ':');

			if (colon == NULL || colon == v ||
			    (size_t)(colon - v) >= sizeof(o->host) ||
			    (o->port = atoi(colon + 1)) <= 0 || o->port > 65535) {
				fprintf(stderr, "sealpost: --server HOST:PORT\n");
				return -1;
			}
			memcpy(o->host, v, (size_t)(colon - v));
			o->host[colon - v] = 0;
		} else if (strcmp(a, "--ca") == 0) {
			o->ca_file = v;
		} else if (strcmp(a, "--address") == 0) {
			o->address = v;
		} else if (strcmp(a, "--invite") == 0) {
			o->invite = v;
		} else if (strcmp(a, "--password-file") == 0) {
			o->password_file = v;
		} else if (strcmp(a, "--kdf-ops") == 0) {
			o->kdf_ops = (uint32_t)strtoul(v, NULL, 10);
		} else if (strcmp(a, "--kdf-mem-mib") == 0) {
			o->kdf_mem_kib = (uint32_t)strtoul(v, NULL, 10) * 1024;
		} else {
			fprintf(stderr, "sealpost: unknown option %s\n", a);
			return -1;
		}
	}
	if (o->address == NULL) {
		fprintf(stderr, "sealpost: --address is required\n");
		return -1;
	}
	return 0;
}

/*
 * The password, into sodium_malloc memory: from a file (first line), from
 * $SEALPOST_PASSWORD, or typed at the terminal without echo.
 */
static char *
read_password(const char *file, size_t *len_r)
{
	char *pw = sodium_malloc(1024);
	const char *env = getenv("SEALPOST_PASSWORD");
	size_t n = 0;
	FILE *f = NULL;

	if (pw == NULL)
		return NULL;
	pw[0] = 0;
	if (file) {
		if ((f = fopen(file, "r")) == NULL ||
		    fgets(pw, 1024, f) == NULL) {
			fprintf(stderr, "sealpost: %s: cannot read a password\n",
			    file);
			if (f)
				fclose(f);
			sodium_free(pw);
			return NULL;
		}
		fclose(f);
	} else if (env) {
		snprintf(pw, 1024, "%s", env);
	} else {
		struct termios t, quiet;
		int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);

		if (fd < 0 || (f = fdopen(fd, "r+")) == NULL) {
			fprintf(stderr, "sealpost: no terminal to ask for the "
			    "password (use --password-file)\n");
			if (fd >= 0)
				close(fd);
			sodium_free(pw);
			return NULL;
		}
		fputs("Password: ", f);
		fflush(f);
		tcgetattr(fd, &t);
		quiet = t;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(fd, TCSAFLUSH, &quiet);
		if (fgets(pw, 1024, f) == NULL)
			pw[0] = 0;
		tcsetattr(fd, TCSAFLUSH, &t);
		fputs("\n", f);
		fclose(f);
	}
	n = strlen(pw);
	while (n > 0 && (pw[n - 1] == '\n' || pw[n - 1] == '\r'))
		pw[--n] = 0;
	if (n == 0) {
		fprintf(stderr, "sealpost: empty password\n");
		sodium_free(pw);
		return NULL;
	}
	*len_r = n;
	return pw;
}

static sp_client *
cli_connect(const struct cli *o)
{
	struct sp_client_opts co = { .host = o->host, .port = o->port,
	    .tls = !o->plain, .ca_file = o->ca_file, .device = "sealpost-cli",
	    .timeout_ms = 30000 };
	sp_client *c;
	char err[256];
	int rc;

	if ((rc = sp_client_connect(&co, &c, err, sizeof(err))) != 0) {
		fprintf(stderr, "sealpost: cannot reach %s:%d: %s\n", o->host,
		    o->port, err);
		return NULL;
	}
	return c;
}

static int
cmd_account(int argc, char **argv)
{
	struct cli o;
	sp_client *c = NULL;
	char *pw = NULL, err[512] = "";
	size_t pwlen;
	int rc = 1, create;

	if (argc < 1 || (strcmp(argv[0], "create") != 0 &&
	    strcmp(argv[0], "login") != 0))
		return usage(stderr);
	create = strcmp(argv[0], "create") == 0;
	if (cli_parse(&o, argc - 1, argv + 1) != 0)
		return 2;
	if ((pw = read_password(o.password_file, &pwlen)) == NULL)
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

/* A progress bar on stderr (only called when stderr is a terminal). */
static void
sync_progress(void *arg, uint64_t applied, uint64_t last)
{
	int pct = last ? (int)(applied * 100 / last) : 100, i;

	(void)arg;
	fprintf(stderr, "\rsyncing [");
	for (i = 0; i < 40; i++)
		fputc(i < pct * 40 / 100 ? '#' : '.', stderr);
	fprintf(stderr, "] %llu/%llu", (unsigned long long)applied,
	    (unsigned long long)last);
	fflush(stderr);
}

/* The local key from DIR/cache.key, made under the password if absent. */
static int
sync_cache_open(const char *dir, const char *pw, size_t pwlen,
    sp_cache **cache_r)
{
	uint8_t *key = NULL;
	int rc;

	rc = sp_cache_key_open(dir, pw, pwlen, &key);
	if (rc == ENOENT)
		rc = sp_cache_key_create(dir, pw, pwlen, NULL, &key);
	if (rc == 0)
		rc = sp_cache_open(dir, key, NULL, cache_r);
	sodium_free(key);
	if (rc != 0)
		fprintf(stderr, "sealpost: cache %s: %s\n", dir,
		    sp_strerror(rc));
	return rc;
}

static int
cmd_sync(int argc, char **argv)
{
	struct sp_syncer_opts so = { .progress = NULL };
	struct cli o;
	sp_client *c = NULL;
	sp_cache *cache = NULL;
	sp_keyset *ks = NULL;
	const char *dir = NULL;
	char *pw = NULL, err[512] = "", **rest;
	uint8_t token[32];
	uint64_t last = 0, applied = 0;
	size_t pwlen;
	int rc = 1, i, n = 0;

	/* --cache is ours; the rest are the common options. */
	if ((rest = calloc((size_t)argc + 1, sizeof(*rest))) == NULL)
		return 1;
	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--cache") == 0 && i + 1 < argc)
			dir = argv[++i];
		else
			rest[n++] = argv[i];
	}
	if (cli_parse(&o, n, rest) != 0 || dir == NULL) {
		if (dir == NULL)
			fprintf(stderr, "sealpost: --cache DIR is required\n");
		free(rest);
		return 2;
	}
	free(rest);
	if ((pw = read_password(o.password_file, &pwlen)) == NULL)
		return 2;
	if ((c = cli_connect(&o)) == NULL)
		goto out;
	if (sp_account_login(c, o.address, pw, pwlen, "sealpost-cli", &ks,
	    token, &last, err, sizeof(err)) != 0) {
		fprintf(stderr, "sealpost: %s\n", err);
		goto out;
	}
	sodium_memzero(token, sizeof(token));
	if (sync_cache_open(dir, pw, pwlen, &cache) != 0)
		goto out;
	if (isatty(STDERR_FILENO))
		so.progress = sync_progress;
	i = sp_syncer_pull(c, cache, &so, &applied, err, sizeof(err));
	if (so.progress != NULL && applied > 0)
		fputc('\n', stderr);
	if (i != 0) {
		fprintf(stderr, "sealpost: sync: %s\n", err);
		goto out;
	}
	if (sp_syncer_last_applied(cache, &last) != 0)
		goto out;
	printf("synced: %llu records, last seq %llu\n",
	    (unsigned long long)applied, (unsigned long long)last);
	rc = 0;
out:
	sp_cache_close(cache);
	sp_keyset_destroy(ks);
	sp_client_close(c);
	sodium_free(pw);
	return rc;
}

int
main(int argc, char **argv)
{
	if (argc < 2)
		return usage(stderr);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0)
		return usage(stdout);
	if (strcmp(argv[1], "account") == 0) {
		if (sodium_init() < 0)
			return 1;
		return cmd_account(argc - 2, argv + 2);
	}
	if (strcmp(argv[1], "sync") == 0) {
		if (sodium_init() < 0)
			return 1;
		return cmd_sync(argc - 2, argv + 2);
	}
	if (strcmp(argv[1], "version") == 0) {
		printf("sealpost %s\n", SEALPOST_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "selfcheck") == 0) {
		if (sodium_init() < 0) {
			fprintf(stderr, "sealpost: libsodium failed to start\n");
			return 1;
		}
		print_versions();
		printf("\n");
		if (crypto_round_trip() != 0) {
			printf("\nselfcheck FAILED\n");
			return 1;
		}
		printf("\nselfcheck passed\n");
		return 0;
	}
	fprintf(stderr, "sealpost: unknown command '%s'\n", argv[1]);
	return usage(stderr);
}
