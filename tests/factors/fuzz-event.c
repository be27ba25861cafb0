/*
 * libFuzzer target for the client's security-event reader
 * (client-core/factors.c sp_event_parse): what a sealed kind-3 record
 * holds once opened.  Corpus in fuzz-corpus/event, replayed by .ci/run.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "client-core/factors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sp_security_event e;

	if (sp_event_parse(data, size, &e) == 0 &&
	    strlen(e.detail) > SP_EVENT_DETAIL_MAX)
		__builtin_trap();
	(void)sp_event_name(e.type);
	return 0;
}
