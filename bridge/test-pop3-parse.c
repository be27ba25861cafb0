/*
 * The POP3 command reader and splitter, whole and a byte at a time.
 */
#include <string.h>

#include "bridge/pop3_parse.h"
#include "tests/unit.h"

static void
collect(const char *in, size_t n, int step, char *out, int *nlong,
    int *nbad)
{
	struct pop3_reader r;
	size_t off = 0;

	pop3_reader_reset(&r);
	*nlong = *nbad = 0;
	out[0] = 0;
	while (off < n) {
		size_t used = 0;
		enum pop3_ev e = pop3_reader_feed(&r, (const uint8_t *)in +
		    off, step ? 1 : n - off, &used);

		off += used;
		if (e == POP3_EV_LINE) {
			strcat(out, r.line);
			strcat(out, "|");
		} else if (e == POP3_EV_TOOLONG) {
			(*nlong)++;
		} else if (e == POP3_EV_BAD) {
			(*nbad)++;
		}
	}
}

static void
t_lines(void)
{
	static char in[POP3_LINE_MAX * 2];
	char out[4096];
	int step, nlong, nbad;
	size_t n;

	for (step = 0; step < 2; step++) {
		collect("USER a\r\nPASS b\nQUIT\r\n", 21, step, out, &nlong,
		    &nbad);
		CHECK(strcmp(out, "USER a|PASS b|QUIT|") == 0);
		memset(in, 'x', POP3_LINE_MAX + 3);
		n = POP3_LINE_MAX + 3;
		memcpy(in + n, "\r\nNO\x01OP\r\nST\rAT\r\nSTAT\r\n", 22);
		collect(in, n + 22, step, out, &nlong, &nbad);
		CHECK(nlong == 1 && nbad == 2);
		CHECK(strcmp(out, "STAT|") == 0);
	}
}

static void
t_cmd(void)
{
	struct pop3_cmd c;
	const char *err;
	char big[POP3_ARG_MAX + 20];

	CHECK(pop3_parse_cmd("top 1 10", &c, &err) == 0);
	CHECK(strcmp(c.kw, "TOP") == 0 && c.nargs == 2);
	CHECK(strcmp(c.arg[0], "1") == 0 && strcmp(c.arg[1], "10") == 0);
	CHECK(pop3_parse_cmd("STAT", &c, &err) == 0 && c.nargs == 0);
	CHECK(pop3_parse_cmd("LIST ", &c, &err) == 0 && c.nargs == 0);
	CHECK(pop3_parse_cmd("RETR 1 2 3", &c, &err) == -1);
	CHECK(pop3_parse_cmd("RETRX", &c, &err) == -1);
	CHECK(pop3_parse_cmd("NO", &c, &err) == -1);
	CHECK(pop3_parse_cmd("", &c, &err) == -1);
	memset(big, 'a', sizeof(big));
	memcpy(big, "USER ", 5);
	big[sizeof(big) - 1] = 0;
	CHECK(pop3_parse_cmd(big, &c, &err) == -1);
}

static void
t_num(void)
{
	CHECK(pop3_parse_num("1", 3) == 1);
	CHECK(pop3_parse_num("3", 3) == 3);
	CHECK(pop3_parse_num("4", 3) == -1);
	CHECK(pop3_parse_num("0", 3) == -1);
	CHECK(pop3_parse_num("-1", 3) == -1);
	CHECK(pop3_parse_num("1x", 3) == -1);
	CHECK(pop3_parse_num("", 3) == -1);
	CHECK(pop3_parse_num("99999999999", 3) == -1);
}

int
main(void)
{
	RUN(t_lines);
	RUN(t_cmd);
	RUN(t_num);
	return unit_done();
}
