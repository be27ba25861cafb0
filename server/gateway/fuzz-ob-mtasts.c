/* libFuzzer: MTA-STS policy bodies (outbound_mtasts.h). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "server/gateway/outbound_mtasts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sp_ob_mtasts p;

	if (sp_ob_mtasts_parse((const char *)data, size, &p) == 0) {
		if (p.nmx > SP_OB_STS_MX_MAX)
			__builtin_trap();
		(void)sp_ob_mtasts_mx_match(&p, "mx.example.net");
	}
	return 0;
}
