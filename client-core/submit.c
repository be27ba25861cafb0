/* Outbound submission (submit.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client-core/mailbox.h"
#include "client-core/submit.h"
#include "crypto/envelope.h"

int
sp_submit_gateway_key(sp_client *c, uint8_t pk[32], char *err,
    size_t errlen)
{
	struct sp_client_msg *m = NULL;
	struct sp_frame f;
	int rc;

	sp_frame_init(&f, SP_MSG_GATEWAY_KEY, 0);
	rc = sp_client_call(c, &f, &m);
	if ((rc = sp_client_expect(rc, m, SP_MSG_GATEWAY_KEY_OK,
	    "gateway key", err, errlen)) == 0)
		memcpy(pk, m->f.f[SP_F_GATEWAY_PK].ptr, 32);
	sp_client_msg_free(m);
	return rc;
}

int
sp_submit(sp_client *c, const char *mail_from, const char *const *rcpts,
    size_t n, const uint8_t *msg, size_t len, char *err, size_t errlen)
{
	struct sp_envelope_seal_args sa;
	struct sp_client_msg *m = NULL;
	struct sp_frame f;
	uint8_t pk[32], id[32], *env = NULL;
	size_t envlen, i;
	int rc;

	if (n == 0 || n > SP_SUBMIT_RCPT_MAX || len == 0) {
		snprintf(err, errlen, "submit: %s", n == 0 ? "no recipients" :
		    len == 0 ? "empty message" : "too many recipients");
		return SP_EINVAL;
	}
	if ((rc = sp_submit_gateway_key(c, pk, err, errlen)) != 0)
		return rc;
	memset(&sa, 0, sizeof(sa));
	sa.kind = SP_ENVELOPE_KIND_BODY;
	sa.recipients = (const uint8_t (*)[32])pk;
	sa.n_recipients = 1;
	if ((rc = sp_envelope_seal(&sa, msg, len, &env, &envlen)) != 0) {
		snprintf(err, errlen, "submit: sealing: %s", sp_strerror(rc));
		return rc;
	}
	if ((rc = sp_mbox_blob_put(c, env, envlen, id, err, errlen)) != 0)
		goto out;
	sp_frame_init(&f, SP_MSG_SUBMIT, 0);
	sp_frame_set_bytes(&f, SP_F_BLOB_ID, id, 32);
	sp_frame_set_text(&f, SP_F_MAIL_FROM, mail_from);
	for (i = 0; i < n; i++)
		if ((rc = sp_frame_add_item(&f, SP_F_RECIPIENTS, rcpts[i],
		    strlen(rcpts[i]), 0)) != 0) {
			snprintf(err, errlen, "submit: too many recipients");
			goto out;
		}
	rc = sp_client_call(c, &f, &m);
	rc = sp_client_expect(rc, m, SP_MSG_OK, "submit", err, errlen);
	sp_client_msg_free(m);
out:
	free(env);
	return rc;
}
