/*
 * libFuzzer target for the IMAP command parser: the input is fed in
 * chunks whose sizes come from its first byte, as a client's segments
 * would arrive; every complete command's FETCH attributes and sequence
 * sets go through their parsers too.  Small limits make the limit paths
 * reachable.
 */
#include <stddef.h>
#include <stdint.h>

#include "bridge/imap_parse.h"

static void
use_command(const struct imap_command *cmd)
{
	struct imap_fetch_atts f;
	struct imap_seqset s;
	const char *err;
	size_t i;

	for (i = 0; i < cmd->nargs; i++) {
		const struct imap_arg *a = &cmd->args[i];

		if (a->type == IMAP_ARG_ATOM && imap_seqset_parse(a->s, &s) ==
		    0) {
			imap_seqset_resolve(&s, 100);
			(void)imap_seqset_contains(&s, 7);
			imap_seqset_finish(&s);
		}
		if (imap_fetch_atts_parse(a, &f, &err) == 0)
			imap_fetch_atts_finish(&f);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_parse_limits l;
	imap_parser *p;
	size_t off = 1, chunk;

	if (size < 1)
		return 0;
	chunk = (size_t)(data[0] % 16) + 1;
	imap_parse_limits_default(&l);
	l.line_max = 512;
	l.literal_max = 256;
	l.command_max = 2048;
	l.depth_max = 8;
	l.args_max = 200;
	if (imap_parser_create(&l, &p) != 0)
		return 0;
	while (off < size) {
		size_t n = size - off < chunk ? size - off : chunk, used = 0;
		struct imap_command *cmd;
		const char *tag, *err;
		int rc = imap_parser_feed(p, data + off, n, &used, &cmd, &tag,
		    &err);

		off += used;
		if (rc == IMAP_PARSE_DONE && cmd->raw == NULL)
			use_command(cmd);
		if (rc == IMAP_PARSE_DONE && (data[0] & 0x80))
			imap_parser_raw_line(p);
		if (rc == IMAP_PARSE_FATAL)
			break;
	}
	imap_parser_destroy(p);
	return 0;
}
