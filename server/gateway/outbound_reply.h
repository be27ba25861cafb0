/*
 * SMTP replies from remote MTAs (RFC 5321 4.2), parsed incrementally:
 * bytes go in as they arrive, and the parser says "need more" until a
 * whole reply (all its "250-" lines and the final "250 ") is in.
 *
 * The remote is hostile: a line is at most SP_OB_LINE_MAX bytes, a reply
 * at most SP_OB_LINES_MAX lines, every line's code must be the first's,
 * and only the first SP_OB_REPLY_TEXT bytes of text are kept (for logs and
 * DSNs).  EHLO keywords the client cares about are noted as flags.
 * No allocation; never logs.
 */
#ifndef SP_GW_OUTBOUND_REPLY_H
#define SP_GW_OUTBOUND_REPLY_H

#include <stddef.h>
#include <stdint.h>

#define SP_OB_LINE_MAX 2048     /* RFC 5321 says 512; be lenient */
#define SP_OB_LINES_MAX 128
#define SP_OB_REPLY_TEXT 512

enum {
	SP_OB_EXT_STARTTLS = 1 << 0,
	SP_OB_EXT_8BITMIME = 1 << 1,
	SP_OB_EXT_SMTPUTF8 = 1 << 2,
	SP_OB_EXT_SIZE = 1 << 3,
};

struct sp_ob_reply {
	/* Result, valid when sp_ob_reply_feed() returned 1. */
	int code;                         /* 200..599 */
	char text[SP_OB_REPLY_TEXT + 1];  /* "250-a / 250 b" joined by ' ' */
	unsigned ext;                     /* SP_OB_EXT_* from the lines */
	/* State. */
	char line[SP_OB_LINE_MAX];
	size_t line_len;
	size_t text_len;
	int lines;
};

/* Ready for a new reply. */
void sp_ob_reply_init(struct sp_ob_reply *r);

/*
 * Feeds len bytes; *used_r gets how many were consumed (bytes after a
 * complete reply are left for the next one).  Returns 1 when a reply is
 * complete, 0 when more input is needed, -1 when the input is not an
 * SMTP reply or passes a limit.
 */
int sp_ob_reply_feed(struct sp_ob_reply *r, const uint8_t *buf, size_t len,
    size_t *used_r);

#endif
