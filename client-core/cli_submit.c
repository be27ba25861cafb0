/*
 * `sealpost submit --from A --to B[,C] < message`: hands a message for
 * recipients without a key to the gateway's outbound queue (submit.h).
 * The message is sent as read (no Bcc handling: the caller gives the
 * envelope recipients and a message that is fit for all of them).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client-core/cli.h"
#include "client-core/outmsg.h"
#include "client-core/submit.h"

#define MSG_MAX ((size_t)48 << 20)

int cmd_submit(int argc, char **argv);

static uint8_t *
read_stdin(size_t *len_r)
{
	size_t cap = 65536, n = 0, got;
	uint8_t *b = malloc(cap), *nb;

	while (b != NULL && (got = fread(b + n, 1, cap - n, stdin)) > 0) {
		n += got;
		if (n > MSG_MAX)
			goto fail;
		if (n == cap) {
			if ((nb = realloc(b, cap * 2)) == NULL)
				goto fail;
			b = nb;
			cap *= 2;
		}
	}
	*len_r = n;
	return b;
fail:
	sodium_memzero(b, n);
	free(b);
	return NULL;
}

int
cmd_submit(int argc, char **argv)
{
	const char *from = NULL, *to = NULL;
	const struct cli_opt opts[] = {
		{ "from", &from, NULL },
		{ "to", &to, NULL },
		{ NULL, NULL, NULL },
	};
	const char *rv[SP_SUBMIT_RCPT_MAX];
	struct cli o;
	sp_session *s = NULL;
	uint8_t *raw = NULL, *msg = NULL;
	size_t rawlen = 0, len = 0, nr = 0;
	char err[512], *list = NULL, *tok, *save;
	int rc = 1;

	if (cli_parse(&o, argc, argv, opts) != 0 || to == NULL ||
	    o.nargs > 0) {
		fprintf(stderr, "usage: sealpost submit [--from ADDR] --to "
		    "A[,B] < MESSAGE\n");
		return 2;
	}
	if ((raw = read_stdin(&rawlen)) == NULL || rawlen == 0) {
		fprintf(stderr, "sealpost: submit: no message on stdin\n");
		goto out;
	}
	if ((msg = sp_outmsg_crlf(raw, rawlen, &len)) == NULL)
		goto out;
	if ((list = strdup(to)) == NULL)
		goto out;
	for (tok = strtok_r(list, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		if (nr == SP_SUBMIT_RCPT_MAX) {
			fprintf(stderr, "sealpost: submit: more than %d "
			    "recipients\n", SP_SUBMIT_RCPT_MAX);
			goto out;
		}
		rv[nr++] = tok;
	}
	if ((s = cli_session(&o, 1)) == NULL)
		goto out;
	if (sp_submit(sp_session_client(s), from ? from :
	    sp_session_address(s), rv, nr, msg, len, err, sizeof(err)) != 0) {
		fprintf(stderr, "sealpost: submit: %s\n", err);
		goto out;
	}
	printf("queued for %zu recipient%s\n", nr, nr == 1 ? "" : "s");
	rc = 0;
out:
	if (raw) {
		sodium_memzero(raw, rawlen);
		free(raw);
	}
	if (msg) {
		sodium_memzero(msg, len);
		free(msg);
	}
	free(list);
	sp_session_close(s);
	return rc;
}
