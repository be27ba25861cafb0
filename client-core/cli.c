/*
 * Shared parts of the `sealpost` command (cli.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "client-core/cli.h"
#include "client-core/keyring.h"

static int
server_parse(struct cli *o, const char *v)
{
	const char *colon = strrchr(v, ':');

	if (colon == NULL || colon == v ||
	    (size_t)(colon - v) >= sizeof(o->host) ||
	    (o->port = atoi(colon + 1)) <= 0 || o->port > 65535) {
		fprintf(stderr, "sealpost: --server HOST:PORT\n");
		return -1;
	}
	memcpy(o->host, v, (size_t)(colon - v));
	o->host[colon - v] = 0;
	return 0;
}

/* The second factor typed at the terminal (sp_second_factor.ask). */
static int
cli_ask_code(void *arg, const unsigned *kinds, size_t nkinds, char *buf,
    size_t buflen)
{
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC), totp = 0;
	size_t i, n;
	FILE *f;

	(void)arg;
	for (i = 0; i < nkinds; i++)
		totp |= kinds[i] == SP_FACTOR_TOTP;
	if (fd < 0 || (f = fdopen(fd, "r+")) == NULL) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	fputs(totp ? "Second factor (code from the authenticator app, or a "
	    "recovery code): " : "Second factor (a recovery code): ", f);
	fflush(f);
	if (fgets(buf, (int)buflen, f) == NULL)
		buf[0] = 0;
	fclose(f);
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = 0;
	return n > 0 ? 0 : -1;
}

int
cli_parse(struct cli *o, int argc, char **argv, const struct cli_opt *opts)
{
	const struct cli_opt *op;
	int i;

	memset(o, 0, sizeof(*o));
	o->cache_dir = getenv("SEALPOST_CACHE");
	for (i = 0; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--") == 0 || strncmp(a, "--", 2) != 0) {
			int j = strcmp(a, "--") == 0 ? i + 1 : i;
			int all = j > i;

			for (; j < argc && (all || j == i); j++) {
				if (o->nargs == CLI_ARGS_MAX) {
					fprintf(stderr, "sealpost: too many "
					    "arguments\n");
					return -1;
				}
				o->args[o->nargs++] = argv[j];
			}
			i = j - 1;
			continue;
		}
		for (op = opts; op && op->name; op++)
			if (strcmp(a + 2, op->name) == 0)
				break;
		if (op && op->name) {
			if (op->flag) {
				*op->flag = 1;
				continue;
			}
			if (v == NULL) {
				fprintf(stderr, "sealpost: %s needs a value\n",
				    a);
				return -1;
			}
			*op->value = v;
			i++;
			continue;
		}
		if (strcmp(a, "--plain") == 0) {
			o->plain = 1;
			continue;
		}
		if (strcmp(a, "--no-pull") == 0) {
			o->no_pull = 1;
			continue;
		}
		if (v == NULL) {
			fprintf(stderr, "sealpost: %s needs a value (or is "
			    "unknown)\n", a);
			return -1;
		}
		i++;
		if (strcmp(a, "--server") == 0) {
			if (server_parse(o, v) != 0)
				return -1;
		} else if (strcmp(a, "--ca") == 0) {
			o->ca_file = v;
		} else if (strcmp(a, "--address") == 0) {
			o->address = v;
		} else if (strcmp(a, "--invite") == 0) {
			o->invite = v;
		} else if (strcmp(a, "--password-file") == 0) {
			o->password_file = v;
		} else if (strcmp(a, "--cache") == 0) {
			o->cache_dir = v;
		} else if (strcmp(a, "--kdf-ops") == 0) {
			o->kdf_ops = (uint32_t)strtoul(v, NULL, 10);
		} else if (strcmp(a, "--kdf-mem-mib") == 0) {
			o->kdf_mem_kib = (uint32_t)strtoul(v, NULL, 10) * 1024;
		} else if (strcmp(a, "--totp") == 0) {
			o->totp = v;
		} else if (strcmp(a, "--recovery-code") == 0) {
			o->recovery_code = v;
		} else if (strcmp(a, "--fido2-device") == 0) {
			o->fido2_device = v;
		} else {
			fprintf(stderr, "sealpost: unknown option %s\n", a);
			return -1;
		}
	}
	if (o->totp == NULL)
		o->totp = getenv("SEALPOST_TOTP");
	o->sf.fido2_device = o->fido2_device;
	o->sf.totp = o->totp;
	o->sf.recovery = o->recovery_code;
	/* Never a prompt when stdin is not a terminal: a script must not
	 * hang on a question it cannot see. */
	if (isatty(STDIN_FILENO))
		o->sf.ask = cli_ask_code;
	return 0;
}

/*
 * The password, into sodium_malloc memory: from a file (first line), from
 * $SEALPOST_PASSWORD, or typed at the terminal without echo.
 */
char *
cli_password(const struct cli *o, size_t *len_r)
{
	char *pw = sodium_malloc(1024);
	const char *env = getenv("SEALPOST_PASSWORD");
	size_t n = 0;
	FILE *f = NULL;

	if (pw == NULL)
		return NULL;
	pw[0] = 0;
	if (o->password_file) {
		if ((f = fopen(o->password_file, "r")) == NULL ||
		    fgets(pw, 1024, f) == NULL) {
			fprintf(stderr, "sealpost: %s: cannot read a password\n",
			    o->password_file);
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
			    "password (use --password-file or "
			    "SEALPOST_PASSWORD)\n");
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

sp_client *
cli_connect(const struct cli *o)
{
	struct sp_client_opts co = { .host = o->host[0] ? o->host :
	    "127.0.0.1", .port = o->port ? o->port : 8443,
	    .tls = !o->plain, .ca_file = o->ca_file,
	    .device = "sealpost-cli", .timeout_ms = 30000 };
	sp_client *c;
	char err[256];
	int rc;

	if ((rc = sp_client_connect(&co, &c, err, sizeof(err))) != 0) {
		fprintf(stderr, "sealpost: cannot reach %s:%d: %s\n", co.host,
		    co.port, err);
		return NULL;
	}
	return c;
}

void
cli_progress(void *arg, uint64_t done, uint64_t total)
{
	int pct = total ? (int)(done * 100 / total) : 100, i;

	(void)arg;
	if (!isatty(STDERR_FILENO))
		return;
	if (pct > 100)
		pct = 100;
	fprintf(stderr, "\r%s [", arg ? (const char *)arg : "syncing");
	for (i = 0; i < 40; i++)
		fputc(i < pct * 40 / 100 ? '#' : '.', stderr);
	fprintf(stderr, "] %llu/%llu", (unsigned long long)done,
	    (unsigned long long)total);
	if (done >= total)
		fputc('\n', stderr);
	fflush(stderr);
}

sp_session *
cli_session(const struct cli *o, int no_sync)
{
	struct sp_session_opts so = { .cache_dir = o->cache_dir,
	    .host = o->host[0] ? o->host : NULL, .port = o->port,
	    .plain = o->plain, .ca_file = o->ca_file, .address = o->address,
	    .device = "sealpost-cli", .no_sync = no_sync,
	    .second_factor = &o->sf };
	sp_session *s = NULL;
	char *pw, err[512] = "";
	size_t pwlen;

	if (o->cache_dir == NULL) {
		fprintf(stderr, "sealpost: --cache DIR (or $SEALPOST_CACHE) "
		    "is required: the account's local directory\n");
		return NULL;
	}
	if (isatty(STDERR_FILENO))
		so.progress = cli_progress;
	/* A device whose cache key is in the desktop keyring opens without
	 * a password (keyring.h); ask only when that is not enough. */
	if (o->password_file == NULL && getenv("SEALPOST_PASSWORD") == NULL &&
	    sp_keyring_enabled()) {
		if (sp_session_open(&so, &s, err, sizeof(err)) == 0)
			return s;
		s = NULL;
	}
	if ((pw = cli_password(o, &pwlen)) == NULL)
		return NULL;
	so.password = pw;
	so.password_len = pwlen;
	if (sp_session_open(&so, &s, err, sizeof(err)) != 0) {
		fprintf(stderr, "sealpost: %s\n", err);
		s = NULL;
	}
	sodium_free(pw);
	return s;
}
