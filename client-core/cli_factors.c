/*
 * `sealpost account 2fa ...` and `sealpost account events`: second factors
 * (docs/protocol.md 6.5) and the security events the server seals into
 * the account's log (docs/format.md 12.5), over client-core/factors.h.
 *
 * Removing a factor weakens the account, so the server accepts it only on
 * a connection that passed a second factor in the last 5 minutes: remove
 * logs in afresh on a second connection (password and second factor, as
 * for any login), removes there and logs that session out again.  The
 * device's own session is untouched.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "client-core/cli.h"
#include "client-core/factors.h"

static int
fa_usage(void)
{
	fprintf(stderr,
	    "usage: sealpost account 2fa list\n"
	    "       sealpost account 2fa add-totp\n"
	    "       sealpost account 2fa add-key [--device PATH]\n"
	    "       sealpost account 2fa remove totp|recovery|KEY_ID\n"
	    "       sealpost account 2fa recovery-codes\n"
	    "       sealpost account events\n"
	    "(each takes --cache DIR; a login takes --totp CODE, "
	    "--recovery-code CODE or --fido2-device PATH)\n");
	return 2;
}

static void
fmt_time(uint64_t t, char *buf, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, n, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, n, "?");
}

static const char *
kind_name(unsigned kind)
{
	return kind == SP_FACTOR_FIDO2 ? "security-key" :
	    kind == SP_FACTOR_TOTP ? "totp" :
	    kind == SP_FACTOR_RECOVERY ? "recovery-code" : "unknown";
}

/* ---- list ------------------------------------------------------------------ */

static int
fa_list(sp_session *s)
{
	struct sp_factor_info *fi;
	char err[512] = "", t[32], hex[2 * SP_FACTORS_ID_MAX + 1];
	size_t n = 0, i, nrec = 0;
	int status = 1;

	if ((fi = calloc(SP_FACTORS_MAX, sizeof(*fi))) == NULL)
		return 1;
	if (sp_factors_list(sp_session_client(s), fi, SP_FACTORS_MAX, &n, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "sealpost: %s\n", err);
		goto out;
	}
	printf("%-14s  %-40s  %s\n", "KIND", "ID", "ADDED (UTC)");
	for (i = 0; i < n; i++) {
		fmt_time(fi[i].created, t, sizeof(t));
		if (fi[i].kind == SP_FACTOR_RECOVERY) {
			nrec++;
			continue;
		}
		if (fi[i].kind == SP_FACTOR_TOTP)
			snprintf(hex, sizeof(hex), "totp");
		else
			sodium_bin2hex(hex, sizeof(hex), fi[i].id,
			    fi[i].id_len);
		printf("%-14s  %-40.40s  %s\n", kind_name(fi[i].kind), hex, t);
	}
	/* Ten lines of hash prefixes say nothing; their number does. */
	if (nrec > 0)
		printf("%-14s  %-40s  %zu left\n", kind_name(SP_FACTOR_RECOVERY),
		    "recovery", nrec);
	status = 0;
out:
	free(fi);
	return status;
}

/* ---- add-totp ---------------------------------------------------------------- */

/* The confirmation code: typed at the terminal, or one line of stdin. */
static int
read_code(char *buf, size_t n)
{
	FILE *in = stdin;
	int fd = -1;
	size_t l;

	if (isatty(STDIN_FILENO)) {
		if ((fd = open("/dev/tty", O_RDWR | O_CLOEXEC)) < 0 ||
		    (in = fdopen(fd, "r+")) == NULL) {
			if (fd >= 0)
				close(fd);
			return -1;
		}
		fputs("Code from the app: ", in);
		fflush(in);
	} else {
		printf("Code from the app (one line on stdin):\n");
		fflush(stdout);
	}
	if (fgets(buf, (int)n, in) == NULL)
		buf[0] = 0;
	if (in != stdin)
		fclose(in);
	l = strlen(buf);
	while (l > 0 && (buf[l - 1] == '\n' || buf[l - 1] == '\r' ||
	    buf[l - 1] == ' '))
		buf[--l] = 0;
	return l > 0 ? 0 : -1;
}

static int
fa_add_totp(sp_session *s)
{
	uint8_t *secret = NULL;
	char *uri = NULL, *qr = NULL, code[64], err[512] = "";
	int size = 0, status = 1, rc;

	if (sp_factors_totp_secret(&secret) != 0 ||
	    (uri = sodium_malloc(SP_FACTORS_URI_MAX)) == NULL)
		goto out;
	if ((rc = sp_factors_totp_uri(secret, SP_FACTORS_TOTP_BYTES,
	    "sealpost", sp_session_address(s), uri,
	    SP_FACTORS_URI_MAX)) != 0 ||
	    (rc = sp_factors_qr(uri, &qr, &size)) != 0) {
		fprintf(stderr, "sealpost: %s\n", sp_strerror(rc));
		goto out;
	}
	printf("Scan this with the authenticator app, or enter the URI:\n\n"
	    "%s\n%s\n\n", qr, uri);
	fflush(stdout);
	if (read_code(code, sizeof(code)) != 0) {
		fprintf(stderr, "sealpost: no code given; nothing was added\n");
		goto out;
	}
	if (sp_factors_totp_add(sp_session_client(s), secret,
	    SP_FACTORS_TOTP_BYTES, code, err, sizeof(err)) != 0) {
		fprintf(stderr, "sealpost: %s\n", err);
		goto out;
	}
	printf("authenticator app added: new logins on new devices now "
	    "need its code\n");
	status = 0;
out:
	sodium_memzero(code, sizeof(code));
	if (qr)
		sodium_free(qr);
	if (uri)
		sodium_free(uri);
	if (secret)
		sodium_free(secret);
	return status;
}

/* ---- add-key ------------------------------------------------------------------- */

static int
fa_add_key(sp_session *s, const char *device)
{
	const char *addr = sp_session_address(s), *at = strrchr(addr, '@');
	char err[512] = "";

	printf("Touch the security key...\n");
	fflush(stdout);
	if (sp_factors_fido2_add(sp_session_client(s), device ? device : "",
	    at ? at + 1 : addr, addr, getenv("SEALPOST_FIDO2_PIN"), err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "sealpost: %s\n", err);
		return 1;
	}
	printf("security key added\n");
	return 0;
}

/* ---- remove -------------------------------------------------------------------- */

static int
fa_remove(const struct cli *o, sp_session *s, const char *which)
{
	struct sp_frame f;
	struct sp_client_msg *m = NULL;
	sp_client *c = NULL;
	uint8_t id[SP_FACTORS_ID_MAX];
	size_t idlen = 0, pwlen;
	unsigned kind;
	char *pw = NULL, err[512] = "";
	int status = 1;

	if (strcmp(which, "totp") == 0) {
		kind = SP_FACTOR_TOTP;
	} else if (strcmp(which, "recovery") == 0) {
		kind = SP_FACTOR_RECOVERY;
	} else if (sodium_hex2bin(id, sizeof(id), which, strlen(which), NULL,
	    &idlen, NULL) == 0 && idlen > 0) {
		kind = SP_FACTOR_FIDO2;
	} else {
		fprintf(stderr, "sealpost: remove totp, recovery or a security "
		    "key's id (hex, as `2fa list` shows it)\n");
		return 2;
	}
	if ((pw = cli_password(o, &pwlen)) == NULL)
		return 1;
	if (sp_session_connect_fresh(s, pw, pwlen, &o->sf, &c, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "sealpost: %s\n", err);
		goto out;
	}
	if (sp_factors_remove(c, kind, id, idlen, err, sizeof(err)) != 0) {
		fprintf(stderr, "sealpost: %s\n", err);
		goto logout;
	}
	printf("removed: %s\n", which);
	status = 0;
logout:
	/* The fresh session was only for this. */
	sp_frame_init(&f, SP_MSG_LOGOUT, 0);
	(void)sp_client_call(c, &f, &m);
	sp_client_msg_free(m);
out:
	sp_client_close(c);
	sodium_free(pw);
	return status;
}

/* ---- recovery-codes ------------------------------------------------------------ */

static int
fa_recovery(sp_session *s)
{
	char *codes = NULL, err[512] = "";
	size_t n = 0, i;

	if (sp_factors_recovery_new(sp_session_client(s), &codes, &n, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "sealpost: %s\n", err);
		return 1;
	}
	printf("New recovery codes (shown once; each works once; the old "
	    "ones no longer work):\n");
	for (i = 0; i < n; i++)
		printf("  %s\n", codes + i * (SP_FACTORS_RECOVERY_LEN + 1));
	sodium_free(codes);
	return 0;
}

int
cmd_2fa(int argc, char **argv)
{
	const char *sub = argc > 0 ? argv[0] : "", *device = NULL;
	const struct cli_opt opts[] = {
		{ "device", &device, NULL }, { NULL, NULL, NULL },
	};
	struct cli o;
	sp_session *s;
	int status, want = strcmp(sub, "remove") == 0 ? 1 : 0;

	if (strcmp(sub, "list") != 0 && strcmp(sub, "add-totp") != 0 &&
	    strcmp(sub, "add-key") != 0 && strcmp(sub, "remove") != 0 &&
	    strcmp(sub, "recovery-codes") != 0)
		return fa_usage();
	if (cli_parse(&o, argc - 1, argv + 1, opts) != 0 || o.nargs != want)
		return fa_usage();
	if ((s = cli_session(&o, 1)) == NULL)
		return 1;
	if (strcmp(sub, "list") == 0)
		status = fa_list(s);
	else if (strcmp(sub, "add-totp") == 0)
		status = fa_add_totp(s);
	else if (strcmp(sub, "add-key") == 0)
		status = fa_add_key(s, device);
	else if (strcmp(sub, "remove") == 0)
		status = fa_remove(&o, s, o.args[0]);
	else
		status = fa_recovery(s);
	sp_session_close(s);
	return status;
}

/* ---- events -------------------------------------------------------------------- */

static int
print_event(void *arg, const struct sp_security_event *e)
{
	char t[32];

	(void)arg;
	fmt_time(e->time, t, sizeof(t));
	/* detail was checked for control bytes (sp_event_parse) */
	printf("%-19s  %-22s  %s\n", t, sp_event_name(e->type), e->detail);
	return 0;
}

int
cmd_events(int argc, char **argv)
{
	struct cli o;
	sp_session *s;
	char err[512] = "";
	int status = 0;

	if (cli_parse(&o, argc, argv, NULL) != 0 || o.nargs != 0)
		return fa_usage();
	if ((s = cli_session(&o, 1)) == NULL)
		return 1;
	printf("%-19s  %-22s  %s\n", "TIME (UTC)", "EVENT", "DETAIL");
	if (sp_factors_events(sp_session_client(s), sp_session_keys(s),
	    print_event, NULL, err, sizeof(err)) != 0) {
		fprintf(stderr, "sealpost: %s\n", err);
		status = 1;
	}
	sp_session_close(s);
	return status;
}
