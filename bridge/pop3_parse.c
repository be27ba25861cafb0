/*
 * POP3 command input; see pop3_parse.h.
 */
#include "bridge/pop3_parse.h"

#include <ctype.h>
#include <string.h>

#include <sodium.h>

void
pop3_reader_reset(struct pop3_reader *r)
{
	sodium_memzero(r, sizeof(*r));
}

enum pop3_ev
pop3_reader_feed(struct pop3_reader *r, const uint8_t *in, size_t n,
    size_t *used_r)
{
	size_t i;

	for (i = 0; i < n; i++) {
		uint8_t b = in[i];
		enum pop3_ev ev;

		if (b != '\n') {
			if (b == 0 || (b < 0x20 && b != '\r' && b != '\t'))
				r->bad = 1;
			if (r->len < POP3_LINE_MAX)
				r->line[r->len++] = (char)b;
			else
				r->too_long = 1;
			continue;
		}
		*used_r = i + 1;
		if (r->len > 0 && r->line[r->len - 1] == '\r')
			r->len--;
		if (memchr(r->line, '\r', r->len))
			r->bad = 1;
		r->line[r->len] = 0;
		ev = r->too_long ? POP3_EV_TOOLONG : r->bad ? POP3_EV_BAD :
		    POP3_EV_LINE;
		r->len = 0;
		r->too_long = r->bad = 0;
		return ev;
	}
	*used_r = n;
	return POP3_EV_MORE;
}

int
pop3_parse_cmd(const char *line, struct pop3_cmd *cmd, const char **error_r)
{
	size_t i = 0, k;

	memset(cmd, 0, sizeof(*cmd));
	while (i < 4 && isalpha((unsigned char)line[i])) {
		cmd->kw[i] = (char)toupper((unsigned char)line[i]);
		i++;
	}
	if (i < 3 || (line[i] != 0 && line[i] != ' ')) {
		*error_r = "no such command";
		return -1;
	}
	line += i;
	while (*line == ' ') {
		while (*line == ' ')
			line++;
		if (*line == 0)
			break;
		if (cmd->nargs == 2) {
			*error_r = "too many arguments";
			return -1;
		}
		for (k = 0; *line && *line != ' '; k++) {
			if (k == POP3_ARG_MAX) {
				*error_r = "argument too long";
				return -1;
			}
			cmd->arg[cmd->nargs][k] = *line++;
		}
		cmd->arg[cmd->nargs][k] = 0;
		cmd->nargs++;
	}
	if (*line != 0) {
		*error_r = "syntax error";
		return -1;
	}
	return 0;
}

long
pop3_parse_num(const char *s, long max)
{
	long v = 0;

	if (*s == 0 || strlen(s) > 9)
		return -1;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v >= 1 && v <= max ? v : -1;
}
