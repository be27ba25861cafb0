/*
 * libFuzzer target: rspamd reply parser (HTTP head and JSON body).  The
 * input is fed whole and then split at a point chosen from its first byte,
 * as two reads: both ways must agree, and an accepted 200 reply must carry
 * a printable, known-length action and a finite score.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "server/gateway/filter/filter_rspamd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct filter_rspamd_parser p;
	struct filter_rspamd_reply r, r2;
	size_t cut = size ? data[0] % (size + 1) : 0, i;
	int err, err2;

	filter_rspamd_parser_init(&p);
	err = filter_rspamd_parse(&p, data, size, 1, &r);
	if (err == 0 && r.status == 200) {
		if (!isfinite(r.score) || r.action[0] == '\0')
			abort();
		for (i = 0; r.action[i]; i++)
			if (r.action[i] < 0x20 || r.action[i] >= 0x7f)
				abort();
	}
	filter_rspamd_parser_init(&p);
	err2 = filter_rspamd_parse(&p, data, cut, 0, &r2);
	if (err2 == EAGAIN)
		err2 = filter_rspamd_parse(&p, data, size, 1, &r2);
	/* An early verdict on a prefix may only be an error or the same. */
	if (err2 == 0 && err == 0 && (r.status != r2.status ||
	    strcmp(r.action, r2.action) != 0))
		abort();
	if (err == 0 && err2 != 0 && cut == size)
		abort();
	return 0;
}
