/* libFuzzer: the SPF record parser and, on what parses, the macro
 * expander over every domain-spec (no DNS: p is "unknown"). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/gateway/auth/gw_spf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sp_gw_spf_record r;
	char err[96], spec[600], out[2048];

	if (size > 4096)
		return 0;
	(void)sp_gw_spf_macro_valid((const char *)data, size, 1);
	if (sp_gw_spf_parse((const char *)data, size, &r, err,
	    sizeof(err)) != 0)
		return 0;
	for (int i = 0; i < r.n; i++) {
		if (r.t[i].spec == NULL || r.t[i].spec_len >= sizeof(spec))
			continue;
		memcpy(spec, r.t[i].spec, r.t[i].spec_len);
		spec[r.t[i].spec_len] = '\0';
		(void)sp_gw_spf_expand_test(spec, "2001:db8::1",
		    "a.b-c+d@ex.example.com", "ex.example.com",
		    "helo.example", 0, out, sizeof(out));
	}
	return 0;
}
