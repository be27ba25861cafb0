/* libFuzzer: the header splitter, the DKIM-Signature parser on every
 * such field, the key record parser and both body canonicalizations. */
#include <stdint.h>
#include <stdlib.h>

#include "server/gateway/auth/gw_dkim.h"
#include "server/gateway/auth/gw_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sp_gw_msg m;
	static struct sp_gw_dkim_sig s;
	static struct sp_gw_dkim_key k;
	char err[96], *out;
	size_t outlen;
	int i = -1;

	(void)sp_gw_msg_parse(data, size, &m);
	while ((i = sp_gw_msg_find(&m, "DKIM-Signature", i + 1)) >= 0)
		(void)sp_gw_dkim_sig_parse(m.h[i].value, m.h[i].value_len, &s,
		    err, sizeof(err));
	(void)sp_gw_dkim_key_parse((const char *)data, size, &k, err,
	    sizeof(err));
	for (int relaxed = 0; relaxed < 2; relaxed++)
		if (m.body != NULL && sp_gw_dkim_canon_body(m.body, m.body_len,
		    relaxed, &out, &outlen) == 0)
			free(out);
	return 0;
}
