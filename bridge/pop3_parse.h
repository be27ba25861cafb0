/*
 * POP3 command input (RFC 1939 3): an incremental line reader and the
 * split of a line into a keyword (3-4 letters, upper-cased) and up to two
 * arguments.  Lines end in CRLF (a bare LF is taken too); a line longer
 * than POP3_LINE_MAX (RFC 2449 4: 255 octets, we allow more for AUTH
 * PLAIN's initial response) is dropped up to its end and reported.
 * Pure, so the unit test feeds a byte at a time and the fuzz target
 * anything.  Never logs.
 */
#ifndef SP_BRIDGE_POP3_PARSE_H
#define SP_BRIDGE_POP3_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define POP3_LINE_MAX 1024
#define POP3_ARG_MAX 512

enum pop3_ev {
	POP3_EV_MORE = 0,        /* all consumed, feed more */
	POP3_EV_LINE,            /* a line is in p->line */
	POP3_EV_TOOLONG,         /* a too-long line was dropped */
	POP3_EV_BAD,             /* a line with a NUL or control byte */
};

struct pop3_reader {
	char line[POP3_LINE_MAX + 1];
	size_t len;
	int too_long, bad;
};

/* Consumes bytes up to an event; *used_r says how many. */
enum pop3_ev pop3_reader_feed(struct pop3_reader *r, const uint8_t *in,
    size_t n, size_t *used_r);
void pop3_reader_reset(struct pop3_reader *r);

struct pop3_cmd {
	char kw[5];
	char arg[2][POP3_ARG_MAX + 1];
	int nargs;
};

/* Splits line; -1 with *error_r when it is not "KEYWORD [arg [arg]]". */
int pop3_parse_cmd(const char *line, struct pop3_cmd *cmd,
    const char **error_r);

/* A decimal message number or count: 1..max; -1 otherwise. */
long pop3_parse_num(const char *s, long max);

#endif
