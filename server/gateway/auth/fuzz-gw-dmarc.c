/* libFuzzer: the DMARC record parser and the From-domain extraction. */
#include <stdint.h>
#include <stdlib.h>

#include "server/gateway/auth/gw_dmarc.h"
#include "server/gateway/auth/gw_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sp_gw_msg m;
	struct sp_gw_dmarc_record r;
	char dom[256], err[128];

	(void)sp_gw_dmarc_parse((const char *)data, size, &r);
	(void)sp_gw_msg_parse(data, size, &m);
	(void)sp_gw_dmarc_from_domain(&m, dom, sizeof(dom), err, sizeof(err));
	return 0;
}
