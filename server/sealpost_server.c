/*
 * sealpost-server: the sync server.  Reads a configuration file (--config)
 * and flags, opens the store and serves the sync protocol and its HTTP
 * endpoints until SIGTERM or SIGINT, then finishes the writes in flight and
 * exits 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "server/config.h"

int sp_sync_run(const struct sp_server_config *cfg);

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: sealpost-server [--config FILE] [--KEY=VALUE ...]\n"
	    "\n"
	    "settings (in the file as 'key = value', or as flags):\n"
	    "  listen ADDR                 address to bind (127.0.0.1)\n"
	    "  port N                      port for wss:// and https:// (8443)\n"
	    "  data-dir DIR                store and server key (/var/lib/sealpost)\n"
	    "  tls-cert FILE, tls-key FILE PEM certificate and key; without them\n"
	    "                              the server speaks plain ws:// (tests only)\n"
	    "  domains D1,D2               mail domains served here\n"
	    "  open-registration yes|no    allow registration without invite (no)\n"
	    "  log-client-ips yes|no       log client addresses (no)\n"
	    "  max-connections N           (20000)\n"
	    "  login-failures-per-account N  per minute (5)\n"
	    "  login-failures-per-ip N     per minute (20)\n"
	    "  deliver-per-minute N        internal-mail records per sender (600)\n"
	    "  submit-per-hour N           outbound messages per account (100)\n"
	    "  submit-max-recipients N     per outbound message, <= 100 (100)\n"
	    "  quota-mb N                  per new account, 0 = none (0)\n"
	    "  kdf-min-ops N, kdf-min-mem-kib N  weakest Argon2id cost a new\n"
	    "                              account may use (2, 65536)\n"
	    "  session-days N              unused sessions expire (90)\n"
	    "  register-per-hour N         REGISTER attempts per source (5)\n"
	    "  prelogin-per-minute N       per source (30)\n"
	    "  keys-per-minute N           KEYS_GET per source (60)\n"
	    "  blob-max-mb N               largest blob (64)\n"
	    "  metrics-public yes|no       /metrics beyond loopback (no)\n"
	    "  worker-threads N            threads for store calls (32)\n"
	    "  no-sync yes|no              skip fsync: benchmarks only (no)\n"
	    "  verbose yes|no              (no)\n");
}

int
main(int argc, char **argv)
{
	struct sp_server_config cfg;
	char err[512];
	int i;

	if (sodium_init() < 0) {
		fprintf(stderr, "sealpost-server: libsodium failed to start\n");
		return 1;
	}
	sp_config_defaults(&cfg);
	/* The file first, so that flags override it wherever they stand. */
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			if (sp_config_load(&cfg, argv[++i], err,
			    sizeof(err)) != 0) {
				fprintf(stderr, "sealpost-server: %s\n", err);
				return 2;
			}
		} else if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		}
	}
	for (i = 1; i < argc; i++) {
		char key[64], *eq;
		const char *val;

		if (strcmp(argv[i], "--config") == 0) {
			i++;
			continue;
		}
		if (strncmp(argv[i], "--", 2) != 0) {
			fprintf(stderr, "sealpost-server: unexpected '%s'\n",
			    argv[i]);
			usage(stderr);
			return 2;
		}
		snprintf(key, sizeof(key), "%s", argv[i] + 2);
		if ((eq = strchr(key, '=')) != NULL) {
			*eq = 0;
			val = strchr(argv[i], '=') + 1;
		} else if (i + 1 < argc) {
			val = argv[++i];
		} else {
			fprintf(stderr, "sealpost-server: %s needs a value\n",
			    argv[i]);
			return 2;
		}
		if (sp_config_set(&cfg, key, val, err, sizeof(err)) != 0) {
			fprintf(stderr, "sealpost-server: %s\n", err);
			return 2;
		}
	}
	if ((cfg.tls_cert[0] == 0) != (cfg.tls_key[0] == 0)) {
		fprintf(stderr, "sealpost-server: tls-cert and tls-key go "
		    "together\n");
		return 2;
	}
	if (cfg.ndomains == 0) {
		fprintf(stderr, "sealpost-server: no domains configured "
		    "(domains = example.org)\n");
		return 2;
	}
	return sp_sync_run(&cfg) == 0 ? 0 : 1;
}
