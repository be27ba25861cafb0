/*
 * sealpost-bridge: serves the user's decrypted mail to ordinary mail
 * clients over IMAP, SMTP submission and POP3 on 127.0.0.1.
 *
 *   sealpost-bridge --home DIR accounts add --address A --server HOST:PORT
 *       --ca FILE [--password-file F]
 *   sealpost-bridge --home DIR accounts [list]
 *   sealpost-bridge --home DIR serve [--imap HOST:PORT] [--imaps HOST:PORT]
 *       [--smtp HOST:PORT] [--smtps HOST:PORT] [--pop3 HOST:PORT]
 *       [--pop3s HOST:PORT] [--autoconfig HOST:PORT] [--password-file F]...
 *
 * Each listener bound is printed on stdout as "KIND HOST:PORT" (imap,
 * imaps, smtp, smtps, pop3, pop3s, autoconfig, in that order), so port 0
 * (any free one) can be used by tests.
 *
 * Accounts live in DIR/accounts/ADDRESS/ (settings, encrypted cache, the
 * generated bridge password); the TLS certificate in DIR/tls/.  Account
 * passwords for unlocking come from --password-file (one per account, in
 * the order `accounts` lists them; one file serves all), else from
 * $SEALPOST_PASSWORD.  Log lines go to stderr and never carry mail content
 * or secrets.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <uv.h>

#include "bridge/bridge_account.h"
#include "bridge/autoconfig.h"
#include "bridge/imap_server.h"
#include "bridge/pop3_server.h"
#include "bridge/smtp_server.h"
#include "bridge/smtp_sent.h"
#include "client-core/session.h"
#include "crypto/error.h"

#define MAX_ACCOUNTS 64

static int
usage(FILE *f)
{
	fprintf(f, "usage:\n"
	    "  sealpost-bridge --home DIR accounts add --address A "
	    "--server HOST:PORT --ca FILE [--password-file F]\n"
	    "  sealpost-bridge --home DIR accounts [list]\n"
	    "  sealpost-bridge --home DIR serve [--imap HOST:PORT] "
	    "[--imaps HOST:PORT]\n"
	    "      [--smtp HOST:PORT] [--smtps HOST:PORT] [--pop3 HOST:PORT] "
	    "[--pop3s HOST:PORT]\n"
	    "      [--autoconfig HOST:PORT] [--password-file F]... "
	    "[--pgp-passthrough]\n");
	return f == stderr ? 2 : 0;
}

/* A password into sodium_malloc memory: first line of file, or env. */
static char *
read_password(const char *file, size_t *len_r)
{
	char *pw = sodium_malloc(1024);
	const char *env = getenv("SEALPOST_PASSWORD");
	size_t n;
	FILE *f;

	if (pw == NULL)
		return NULL;
	pw[0] = 0;
	if (file) {
		if ((f = fopen(file, "r")) == NULL || fgets(pw, 1024, f) ==
		    NULL) {
			fprintf(stderr, "sealpost-bridge: %s: cannot read a "
			    "password\n", file);
			if (f)
				fclose(f);
			sodium_free(pw);
			return NULL;
		}
		fclose(f);
	} else if (env) {
		snprintf(pw, 1024, "%s", env);
	}
	n = strlen(pw);
	while (n > 0 && (pw[n - 1] == '\n' || pw[n - 1] == '\r'))
		pw[--n] = 0;
	if (n == 0) {
		fprintf(stderr, "sealpost-bridge: no password (use "
		    "--password-file or SEALPOST_PASSWORD)\n");
		sodium_free(pw);
		return NULL;
	}
	*len_r = n;
	return pw;
}

static int
split_hostport(const char *v, char *host, size_t cap, int *port)
{
	const char *colon = strrchr(v, ':');

	if (colon == NULL || colon == v || (size_t)(colon - v) >= cap)
		return -1;
	*port = atoi(colon + 1);
	if (*port < 0 || *port > 65535)
		return -1;
	memcpy(host, v, (size_t)(colon - v));
	host[colon - v] = 0;
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Account directory names (addresses), sorted; *n_r of them. */
static char **
account_names(const char *home, size_t *n_r)
{
	char path[4096], **v = NULL;
	struct dirent *e;
	DIR *d;
	size_t n = 0;

	*n_r = 0;
	snprintf(path, sizeof(path), "%s/accounts", home);
	if ((d = opendir(path)) == NULL)
		return NULL;
	while ((e = readdir(d)) != NULL && n < MAX_ACCOUNTS) {
		char **nv;

		if (e->d_name[0] == '.' || strchr(e->d_name, '@') == NULL)
			continue;
		if ((nv = realloc(v, (n + 1) * sizeof(*v))) == NULL)
			break;
		v = nv;
		if ((v[n] = strdup(e->d_name)) == NULL)
			break;
		n++;
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), cmp_str);
	*n_r = n;
	return v;
}

static void
free_names(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static int
cmd_accounts_add(const char *home, int argc, char **argv)
{
	const char *address = NULL, *server = NULL, *ca = NULL, *pwfile = NULL;
	char host[256], dir[4096], err[512] = "", pass[BRIDGE_PASS_LEN + 1];
	struct sp_session_opts so;
	sp_session *s = NULL;
	size_t pwlen;
	char *pw;
	int i, port, rc;

	for (i = 0; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--address") == 0)
			address = argv[i + 1];
		else if (strcmp(argv[i], "--server") == 0)
			server = argv[i + 1];
		else if (strcmp(argv[i], "--ca") == 0)
			ca = argv[i + 1];
		else if (strcmp(argv[i], "--password-file") == 0)
			pwfile = argv[i + 1];
		else
			return usage(stderr);
	}
	if (i != argc || address == NULL || server == NULL ||
	    strchr(address, '/') || address[0] == '.' ||
	    split_hostport(server, host, sizeof(host), &port) != 0)
		return usage(stderr);
	if ((pw = read_password(pwfile, &pwlen)) == NULL)
		return 2;
	snprintf(dir, sizeof(dir), "%s/accounts", home);
	(void)mkdir(home, 0700);
	(void)mkdir(dir, 0700);
	snprintf(dir, sizeof(dir), "%s/accounts/%s", home, address);
	memset(&so, 0, sizeof(so));
	so.cache_dir = dir;
	so.host = host;
	so.port = port;
	so.ca_file = ca;
	so.address = address;
	so.password = pw;
	so.password_len = pwlen;
	so.device = "sealpost-bridge";
	rc = sp_session_open(&so, &s, err, sizeof(err));
	sodium_free(pw);
	if (rc != 0) {
		fprintf(stderr, "sealpost-bridge: %s\n", err);
		return 1;
	}
	sp_session_close(s);
	if ((rc = bridge_account_make_password(dir)) != 0 ||
	    (rc = bridge_account_read_password(dir, pass, sizeof(pass))) !=
	    0) {
		fprintf(stderr, "sealpost-bridge: bridge password: %s\n",
		    sp_strerror(rc));
		return 1;
	}
	printf("account %s added\nbridge password (for your mail client): "
	    "%s\n", address, pass);
	sodium_memzero(pass, sizeof(pass));
	return 0;
}

static int
cmd_accounts_list(const char *home)
{
	char **names, dir[4096], pass[BRIDGE_PASS_LEN + 1];
	size_t n, i;

	names = account_names(home, &n);
	for (i = 0; i < n; i++) {
		snprintf(dir, sizeof(dir), "%s/accounts/%s", home, names[i]);
		if (bridge_account_read_password(dir, pass, sizeof(pass)) != 0)
			snprintf(pass, sizeof(pass), "(none)");
		printf("%s %s\n", names[i], pass);
	}
	sodium_memzero(pass, sizeof(pass));
	if (n == 0)
		fprintf(stderr, "sealpost-bridge: no accounts in %s\n", home);
	free_names(names, n);
	return 0;
}

static struct imap_server *the_server;
static struct bridge_server *the_smtp;
static struct bridge_server *the_pop3;
static struct autoconfig_server *the_autoconfig;
static uv_signal_t sigterm, sigint;

static void shutdown_all(void);

static void
on_signal(uv_signal_t *h, int signum)
{
	fprintf(stderr, "sealpost-bridge: signal %d, stopping\n", signum);
	shutdown_all();
	/* With no handle left the loop ends. */
	if (!uv_is_closing((uv_handle_t *)&sigterm))
		uv_close((uv_handle_t *)&sigterm, NULL);
	if (!uv_is_closing((uv_handle_t *)&sigint))
		uv_close((uv_handle_t *)&sigint, NULL);
}

static void
close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/* A "HOST:PORT" option into host (cap bytes) and *port; -1 when absent
 * (v NULL) stays -1.  Returns -1 on a malformed value. */
static int
listen_opt(const char *v, char *host, size_t cap, int *port)
{
	*port = -1;
	if (v == NULL)
		return 0;
	return split_hostport(v, host, cap, port);
}

/* The account's background work: summaries for IMAP.  The line tells
 * an operator (and the tests) that a first FETCH will be cheap. */
static void
bgsum_run(bridge_account *a, void *arg)
{
	size_t made = imap_bgsum_run(a, arg);

	if (made > 0)
		fprintf(stderr, "sealpost-bridge: %s: %zu summaries made "
		    "in the background\n", bridge_account_address(a), made);
}

/* Starts every listener asked for and prints what it bound.  0 or 1. */
static int
start_servers(uv_loop_t *loop, const char *const *opt, const char *cert,
    const char *key, bridge_account **accts, size_t nacct)
{
	char host[7][256], err[512] = "";
	int port[7], i;

	for (i = 0; i < 7; i++)
		if (listen_opt(opt[i], host[i], sizeof(host[i]),
		    &port[i]) != 0)
			return usage(stderr);
	if (port[0] >= 0 || port[1] >= 0) {
		struct bridge_server_opts so;

		memset(&so, 0, sizeof(so));
		so.host = port[0] >= 0 ? host[0] : host[1];
		so.port = port[0] >= 0 ? port[0] : 0;
		so.tls_port = port[1];
		so.cert_file = cert;
		so.key_file = key;
		so.accounts = accts;
		so.naccounts = nacct;
		if (imap_server_create(loop, &so, &the_server, err,
		    sizeof(err)) != 0)
			goto fail;
		/* Wake-ups go to the server, which exists only now; the
		 * follow threads read the pointer on their next change. */
		for (size_t k = 0; k < nacct; k++) {
			struct imap_bgsum *st = imap_bgsum_create();

			bridge_account_set_wake(accts[k], imap_server_wake,
			    the_server);
			/* Without it, summaries are made by the first FETCH,
			 * as they always could be. */
			if (st != NULL && bridge_account_start_background(
			    accts[k], bgsum_run, imap_bgsum_destroy, st) != 0)
				imap_bgsum_destroy(st);
		}
		printf("imap %s:%d\n", so.host, imap_server_port(the_server));
		if (port[1] >= 0)
			printf("imaps %s:%d\n", host[1],
			    imap_server_tls_port(the_server));
	}
	if (port[2] >= 0 || port[3] >= 0) {
		struct smtp_server_opts mo;

		memset(&mo, 0, sizeof(mo));
		mo.l.host = port[2] >= 0 ? host[2] : host[3];
		mo.l.port = port[2];
		mo.l.tls_port = port[3];
		mo.l.cert_file = cert;
		mo.l.key_file = key;
		mo.l.accounts = accts;
		mo.l.naccounts = nacct;
		if (smtp_server_create(loop, &mo, &the_smtp, err,
		    sizeof(err)) != 0)
			goto fail;
		if (port[2] >= 0)
			printf("smtp %s:%d\n", host[2],
			    bridge_server_port(the_smtp));
		if (port[3] >= 0)
			printf("smtps %s:%d\n", host[3],
			    bridge_server_tls_port(the_smtp));
	}
	if (port[4] >= 0 || port[5] >= 0) {
		struct bridge_server_opts po;

		memset(&po, 0, sizeof(po));
		po.host = port[4] >= 0 ? host[4] : host[5];
		po.port = port[4];
		po.tls_port = port[5];
		po.cert_file = cert;
		po.key_file = key;
		po.accounts = accts;
		po.naccounts = nacct;
		if (pop3_server_create(loop, &po, &the_pop3, err,
		    sizeof(err)) != 0)
			goto fail;
		if (port[4] >= 0)
			printf("pop3 %s:%d\n", host[4],
			    bridge_server_port(the_pop3));
		if (port[5] >= 0)
			printf("pop3s %s:%d\n", host[5],
			    bridge_server_tls_port(the_pop3));
	}
	if (port[6] >= 0) {
		struct autoconfig_opts ao;

		memset(&ao, 0, sizeof(ao));
		ao.host = host[6];
		ao.port = port[6];
		ao.accounts = accts;
		ao.naccounts = nacct;
		ao.imap_port = the_server ? imap_server_port(the_server) : -1;
		ao.imaps_port = the_server && port[1] >= 0 ?
		    imap_server_tls_port(the_server) : -1;
		ao.smtp_port = the_smtp && port[2] >= 0 ?
		    bridge_server_port(the_smtp) : -1;
		ao.smtps_port = the_smtp && port[3] >= 0 ?
		    bridge_server_tls_port(the_smtp) : -1;
		ao.pop3_port = the_pop3 && port[4] >= 0 ?
		    bridge_server_port(the_pop3) : -1;
		ao.pop3s_port = the_pop3 && port[5] >= 0 ?
		    bridge_server_tls_port(the_pop3) : -1;
		if (autoconfig_create(loop, &ao, &the_autoconfig, err,
		    sizeof(err)) != 0)
			goto fail;
		printf("autoconfig %s:%d\n", host[6],
		    autoconfig_port(the_autoconfig));
	}
	fflush(stdout);
	return 0;
fail:
	fprintf(stderr, "sealpost-bridge: %s\n", err);
	return 1;
}

static void
shutdown_all(void)
{
	if (the_server)
		imap_server_shutdown(the_server);
	bridge_server_shutdown(the_smtp);
	bridge_server_shutdown(the_pop3);
	autoconfig_shutdown(the_autoconfig);
}

static int
cmd_serve(const char *home, int argc, char **argv)
{
	static const char *const names_opt[7] = { "--imap", "--imaps",
	    "--smtp", "--smtps", "--pop3", "--pop3s", "--autoconfig" };
	const char *pwfiles[MAX_ACCOUNTS], *opt[7] = { NULL };
	bridge_account *accts[MAX_ACCOUNTS];
	char **names = NULL, dir[4096], err[512] = "", tlsdir[4096];
	char cert[4200], key[4200];
	size_t npw = 0, n = 0, nacct = 0, i;
	uv_loop_t *loop = uv_default_loop();
	int j, k, any = 0, rc = 1;

	/* A flag among the option pairs: taken out before they are read. */
	for (j = k = 0; j < argc; j++)
		if (strcmp(argv[j], "--pgp-passthrough") == 0)
			imap_pgp_passthrough = 1;
		else
			argv[k++] = argv[j];
	argc = k;
	for (j = 0; j + 1 < argc; j += 2) {
		for (k = 0; k < 7; k++)
			if (strcmp(argv[j], names_opt[k]) == 0)
				break;
		if (k < 7) {
			opt[k] = argv[j + 1];
			any = 1;
		} else if (strcmp(argv[j], "--password-file") == 0 &&
		    npw < MAX_ACCOUNTS) {
			pwfiles[npw++] = argv[j + 1];
		} else {
			return usage(stderr);
		}
	}
	if (j != argc || !any)
		return usage(stderr);
	names = account_names(home, &n);
	if (n == 0) {
		fprintf(stderr, "sealpost-bridge: no accounts in %s (accounts "
		    "add first)\n", home);
		return 1;
	}
	for (i = 0; i < n; i++) {
		size_t pwlen;
		char *pw = read_password(npw == 0 ? NULL : pwfiles[i < npw ?
		    i : npw - 1], &pwlen);

		if (pw == NULL)
			goto out;
		snprintf(dir, sizeof(dir), "%s/accounts/%s", home, names[i]);
		rc = bridge_account_open(dir, pw, pwlen, NULL, NULL,
		    &accts[nacct], err, sizeof(err));
		sodium_free(pw);
		if (rc != 0) {
			fprintf(stderr, "sealpost-bridge: %s: %s\n", names[i],
			    err);
			rc = 1;
			goto out;
		}
		nacct++;
		fprintf(stderr, "sealpost-bridge: account %s open\n",
		    names[i]);
	}
	snprintf(tlsdir, sizeof(tlsdir), "%s/tls", home);
	if (bridge_cert_ensure(tlsdir, cert, key, sizeof(cert), err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "sealpost-bridge: %s\n", err);
		rc = 1;
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	if (start_servers(loop, opt, cert, key, accts, nacct) != 0) {
		shutdown_all();
		uv_run(loop, UV_RUN_DEFAULT);
		rc = 1;
		goto out;
	}
	uv_signal_init(loop, &sigterm);
	uv_signal_init(loop, &sigint);
	uv_signal_start(&sigterm, on_signal, SIGTERM);
	uv_signal_start(&sigint, on_signal, SIGINT);
	fprintf(stderr, "sealpost-bridge: serving\n");
	uv_run(loop, UV_RUN_DEFAULT);
	/* The other signal handler is still open: close what is left. */
	uv_walk(loop, close_walk, NULL);
	uv_run(loop, UV_RUN_DEFAULT);
	rc = 0;
out:
	for (i = 0; i < nacct; i++)
		bridge_account_set_wake(accts[i], NULL, NULL);
	for (i = 0; i < nacct; i++) {
		smtp_sent_forget(accts[i]);
		bridge_account_close(accts[i]);
	}
	imap_server_destroy(the_server);
	the_server = NULL;
	bridge_server_destroy(the_smtp);
	the_smtp = NULL;
	bridge_server_destroy(the_pop3);
	the_pop3 = NULL;
	autoconfig_destroy(the_autoconfig);
	the_autoconfig = NULL;
	free_names(names, n);
	(void)uv_loop_close(loop);
	fprintf(stderr, "sealpost-bridge: stopped\n");
	return rc;
}

int
main(int argc, char **argv)
{
	const char *home = NULL;

	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0))
		return usage(stdout);
	if (argc < 4 || strcmp(argv[1], "--home") != 0)
		return usage(stderr);
	home = argv[2];
	if (sodium_init() < 0)
		return 1;
	setvbuf(stderr, NULL, _IOLBF, 0);
	if (strcmp(argv[3], "accounts") == 0) {
		if (argc == 4 || (argc == 5 && strcmp(argv[4], "list") == 0))
			return cmd_accounts_list(home);
		if (strcmp(argv[4], "add") == 0)
			return cmd_accounts_add(home, argc - 5, argv + 5);
		return usage(stderr);
	}
	if (strcmp(argv[3], "serve") == 0)
		return cmd_serve(home, argc - 4, argv + 4);
	return usage(stderr);
}
