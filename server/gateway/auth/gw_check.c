/*
 * `sealpost-gateway check`: runs the sender checks on a message from
 * stdin as the gateway would, for operators and tests.  Prints
 * "Authentication-Results: <value>" on stdout and "action: <action>
 * (<reason>)" on stderr; exits 0 when the check ran (whatever its
 * verdict), 64 for bad usage, 1 when the check itself failed.
 *
 * A message file with LF line ends is turned into CRLF first, as SMTP
 * would have carried it.
 */
#include "server/gateway/auth/gw_auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_MAX_MSG (64u << 20)

static const char usage[] =
    "usage: sealpost-gateway check --ip IP --helo NAME --mail-from ADDR\n"
    "       [--dns HOST:PORT] [--authserv-id ID] [--psl FILE]\n"
    "       [--timeout MS] [--record-only] < message\n";

static const char *const action_names[] = {
	[SP_GW_ACCEPT] = "accept", [SP_GW_QUARANTINE] = "quarantine",
	[SP_GW_REJECT] = "reject", [SP_GW_TEMPFAIL] = "tempfail",
};

/* Reads stdin whole, LF -> CRLF where the CR is missing. */
static uint8_t *
read_message(size_t *len_r)
{
	uint8_t *buf = NULL, *np;
	size_t len = 0, cap = 0;
	int c, prev = 0;

	while ((c = getchar()) != EOF) {
		if (len + 2 >= cap) {
			cap = cap ? cap * 2 : 65536;
			if (cap > CHECK_MAX_MSG * 2 + 2 ||
			    (np = realloc(buf, cap)) == NULL) {
				free(buf);
				return NULL;
			}
			buf = np;
		}
		if (c == '\n' && prev != '\r')
			buf[len++] = '\r';
		buf[len++] = (uint8_t)c;
		prev = c;
		if (len > CHECK_MAX_MSG) {
			free(buf);
			return NULL;
		}
	}
	if (buf == NULL && (buf = malloc(1)) == NULL)
		return NULL;
	*len_r = len;
	return buf;
}

int
sp_gw_check_main(int argc, char **argv)
{
	struct sp_gw_auth_opts o = {0};
	struct sp_gw_auth_result r;
	const char *ip = NULL, *helo = NULL, *from = NULL;
	uint8_t *msg;
	size_t len = 0;
	int rc;

	o.authserv_id = "localhost";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--record-only") == 0) {
			o.record_only = 1;
			continue;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(usage, stdout);
			return 0;
		}
		if (v == NULL)
			goto bad_usage;
		i++;
		if (strcmp(a, "--ip") == 0)
			ip = v;
		else if (strcmp(a, "--helo") == 0)
			helo = v;
		else if (strcmp(a, "--mail-from") == 0)
			from = v;
		else if (strcmp(a, "--dns") == 0)
			o.dns = v;
		else if (strcmp(a, "--authserv-id") == 0)
			o.authserv_id = v;
		else if (strcmp(a, "--psl") == 0)
			o.psl_file = v;
		else if (strcmp(a, "--timeout") == 0)
			o.timeout_ms = atoi(v);
		else
			goto bad_usage;
	}
	if (ip == NULL || helo == NULL || from == NULL)
		goto bad_usage;
	if ((msg = read_message(&len)) == NULL) {
		fprintf(stderr, "check: cannot read the message (over %u "
		    "bytes or out of memory)\n", CHECK_MAX_MSG);
		return 1;
	}
	rc = sp_gw_auth_check(&o, ip, helo, from, msg, len, &r);
	free(msg);
	if (rc != 0) {
		fprintf(stderr, "check: %s\n", rc == EINVAL ?
		    "invalid argument (--ip, --dns or --psl)" : strerror(rc));
		return 1;
	}
	printf("Authentication-Results: %s\n", r.auth_results);
	fprintf(stderr, "action: %s%s%s%s\n", action_names[r.action],
	    r.reason[0] ? " (" : "", r.reason, r.reason[0] ? ")" : "");
	sp_gw_auth_result_free(&r);
	return fflush(stdout) == 0 ? 0 : 1;
bad_usage:
	fputs(usage, stderr);
	return 64;
}
