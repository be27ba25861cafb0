/*
 * libFuzzer target: the DATA/BDAT reader.  The input is read whole and in
 * pieces (sizes from the first byte) in both modes; the results must
 * agree, never more than the limit is written, and in DATA mode what was
 * read, stuffed again, must read back to the same message.
 */
#include <stdlib.h>
#include <string.h>

#include "server/gateway/smtp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX 2048

static int
read_all(enum sp_smtp_data_mode mode, const uint8_t *in, size_t len,
    size_t step, uint8_t *out, size_t *outlen_r, size_t *used_r)
{
	struct sp_smtp_data d;
	size_t pos = 0;
	int rc = SP_SMTP_MORE;

	sp_smtp_data_init(&d, mode, MAX);
	*outlen_r = 0;
	while (pos < len) {
		size_t n = step && step < len - pos ? step : len - pos;
		size_t used, outlen;

		rc = sp_smtp_data_feed(&d, in + pos, n, out + *outlen_r, &used,
		    &outlen);
		*outlen_r += outlen;
		pos += used;
		if (*outlen_r > MAX || used > n)
			abort();
		if (rc != SP_SMTP_MORE)
			break;
	}
	*used_r = pos;
	if (rc == 0 && d.error != 0)
		rc = d.error;
	if (rc == SP_SMTP_MORE && mode == SP_SMTP_DATA_RAW &&
	    sp_smtp_data_finish(&d) != 0)
		rc = SP_SMTP_EBARECR;
	return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t a[1 << 16], b[1 << 16], st[1 << 17];
	size_t step, alen, blen, aused, bused, i, n = 0;
	int ra, rb, m;

	if (size == 0 || size > (1 << 16))
		return 0;
	step = (size_t)data[0] % 13 + 1;
	data++;
	size--;
	for (m = 0; m < 2; m++) {
		enum sp_smtp_data_mode mode = m ? SP_SMTP_DATA_RAW :
		    SP_SMTP_DATA_DOT;

		ra = read_all(mode, data, size, 0, a, &alen, &aused);
		rb = read_all(mode, data, size, step, b, &blen, &bused);
		if (ra != rb || alen != blen || aused != bused ||
		    memcmp(a, b, alen) != 0)
			abort();
	}
	/* DATA mode, a complete message: stuff it again, add the end, read
	 * it back. */
	ra = read_all(SP_SMTP_DATA_DOT, data, size, 0, a, &alen, &aused);
	if (ra != 0)
		return 0;
	for (i = 0; i < alen; i++) {
		if (a[i] == '.' && (i == 0 || a[i - 1] == '\n'))
			st[n++] = '.';
		st[n++] = a[i];
	}
	if (alen > 0 && (alen < 2 || a[alen - 1] != '\n'))
		abort();    /* a message always ends at a line end */
	memcpy(st + n, ".\r\n", 3);
	n += 3;
	rb = read_all(SP_SMTP_DATA_DOT, st, n, step, b, &blen, &bused);
	if (rb != 0 || blen != alen || bused != n || memcmp(a, b, alen) != 0)
		abort();
	return 0;
}
