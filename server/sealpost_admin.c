/*
 * sealpost-admin: the operator's tool.  Works on the store directly (LMDB
 * allows it while the server runs), so it needs access to the data
 * directory and nothing else.
 *
 *   sealpost-admin [--data-dir DIR] invite [--days N]
 *   sealpost-admin [--data-dir DIR] status
 *   sealpost-admin [--data-dir DIR] backup DEST
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sodium.h>

#include "server/store/store.h"

static int
usage(FILE *f)
{
	fprintf(f,
	    "usage: sealpost-admin [--data-dir DIR] COMMAND\n"
	    "\n"
	    "commands:\n"
	    "  invite [--days N]   print a one-time registration token (7 days)\n"
	    "  status              accounts, records, blobs and store size\n"
	    "  backup DEST         consistent copy of the store, while serving\n");
	return f == stderr ? 2 : 0;
}

static int
cmd_invite(sp_store *st, int argc, char **argv)
{
	uint8_t raw[24], hash[32];
	char token[2 * sizeof(raw) + 1];
	long days = 7;
	int rc;

	if (argc >= 2 && strcmp(argv[0], "--days") == 0) {
		days = strtol(argv[1], NULL, 10);
		if (days < 1 || days > 365) {
			fprintf(stderr, "sealpost-admin: --days takes 1 to 365\n");
			return 2;
		}
	}
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(token, sizeof(token), raw, sizeof(raw));
	/* Only the hash is stored: a stolen database holds no usable invite. */
	crypto_generichash(hash, sizeof(hash), (const uint8_t *)token,
	    strlen(token), NULL, 0);
	rc = sp_store_invite_put(st, hash,
	    (uint64_t)time(NULL) + (uint64_t)days * 86400);
	sodium_memzero(raw, sizeof(raw));
	if (rc != 0) {
		fprintf(stderr, "sealpost-admin: invite: %s\n",
		    sp_store_strerror(rc));
		return 1;
	}
	printf("%s\n", token);
	sodium_memzero(token, sizeof(token));
	return 0;
}

static int
cmd_status(sp_store *st)
{
	struct sp_store_stat s;
	int rc;

	if ((rc = sp_store_stat(st, &s)) != 0) {
		fprintf(stderr, "sealpost-admin: status: %s\n",
		    sp_store_strerror(rc));
		return 1;
	}
	printf("accounts     %llu\nrecords      %llu\nblobs        %llu\n"
	    "map bytes    %llu\nused bytes   %llu\n",
	    (unsigned long long)s.accounts, (unsigned long long)s.records,
	    (unsigned long long)s.blobs, (unsigned long long)s.map_size,
	    (unsigned long long)s.used_bytes);
	return 0;
}

/* Creates the missing parent directories of path (0700), like mkdir -p. */
static int
mkparents(const char *path)
{
	char buf[4096], *p;

	if (strlen(path) >= sizeof(buf))
		return ENAMETOOLONG;
	memcpy(buf, path, strlen(path) + 1);
	for (p = buf + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = 0;
		if (mkdir(buf, 0700) != 0 && errno != EEXIST)
			return errno;
		*p = '/';
	}
	return 0;
}

int
main(int argc, char **argv)
{
	const char *data_dir = "/var/lib/sealpost";
	char path[1200];
	struct sp_store_opts opts = { 0 };
	sp_store *st;
	int i = 1, rc;

	if (sodium_init() < 0)
		return 1;
	if (argc > 2 && strcmp(argv[1], "--data-dir") == 0) {
		data_dir = argv[2];
		i = 3;
	}
	if (i >= argc)
		return usage(stderr);
	if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "help") == 0)
		return usage(stdout);
	snprintf(path, sizeof(path), "%s/store", data_dir);
	if ((rc = sp_store_open(path, &opts, &st)) != 0) {
		fprintf(stderr, "sealpost-admin: store %s: %s\n", path,
		    sp_store_strerror(rc));
		return 1;
	}
	if (strcmp(argv[i], "invite") == 0)
		rc = cmd_invite(st, argc - i - 1, argv + i + 1);
	else if (strcmp(argv[i], "status") == 0)
		rc = cmd_status(st);
	else if (strcmp(argv[i], "backup") == 0 && i + 1 < argc) {
		rc = mkparents(argv[i + 1]);
		if (rc == 0)
			rc = sp_store_backup(st, argv[i + 1]);
		if (rc != 0)
			fprintf(stderr, "sealpost-admin: backup: %s\n",
			    sp_store_strerror(rc));
		rc = rc ? 1 : 0;
	} else {
		fprintf(stderr, "sealpost-admin: unknown command '%s'\n",
		    argv[i]);
		rc = usage(stderr);
	}
	sp_store_close(st);
	return rc;
}
