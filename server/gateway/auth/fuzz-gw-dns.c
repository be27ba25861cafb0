/* libFuzzer: the DNS answer parser, for every type the checks ask. */
#include <arpa/nameser.h>
#include <stdint.h>
#include <stdlib.h>

#include "server/gateway/auth/gw_dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int types[] = {ns_t_a, ns_t_aaaa, ns_t_txt, ns_t_mx,
	    ns_t_ptr};
	struct sp_gw_dns_answer a;

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (sp_gw_dns_parse(data, size, types[i], &a) == SP_GW_DNS_OK)
			sp_gw_dns_answer_free(&a);
	return 0;
}
