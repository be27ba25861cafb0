/*
 * SMTP (RFC 5321) input parsing for the gateway: command lines and the
 * message data, both incremental and both with hard limits, because every
 * byte comes from the internet.
 *
 * Command lines end in CRLF only.  A line longer than the limit (512 octets
 * including CRLF, RFC 5321 4.5.3.1.4, plus a configurable margin for
 * clients that send long parameter lists) is skipped up to its CRLF and
 * reported once, so the session can answer 500 5.5.6 and stay in sync.  A
 * bare LF or bare CR in a command line is an error of its own: framing that
 * differs between two SMTP implementations is how SMTP smuggling works.
 *
 * The data reader undoes dot-stuffing (DATA) or only checks line ends
 * (BDAT), refuses bare LF and bare CR anywhere, and counts the message
 * against its size limit without storing what goes past it.
 *
 * No function here allocates, logs or keeps pointers into the caller's
 * buffers after it returns.
 */
#ifndef SP_GATEWAY_SMTP_PARSE_H
#define SP_GATEWAY_SMTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* Results; 0 and positive values are successes. */
enum {
	SP_SMTP_MORE = -32400,  /* need more input: nothing was lost */
	SP_SMTP_ELONG,          /* command line over the limit (skipped) */
	SP_SMTP_EBARELF,        /* LF not preceded by CR */
	SP_SMTP_EBARECR,        /* CR not followed by LF */
	SP_SMTP_ESYNTAX,        /* malformed command or argument */
	SP_SMTP_EPATH,          /* malformed path (address) */
	SP_SMTP_EPARAM,         /* unknown or malformed MAIL/RCPT parameter */
	SP_SMTP_ESIZE,          /* message over the size limit */
	SP_SMTP_EUTF8,          /* invalid UTF-8 */
};

#define SP_SMTP_LINE_MAX 512    /* RFC 5321 4.5.3.1.4, CRLF included */
#define SP_SMTP_PATH_MAX 256    /* RFC 5321 4.5.3.1.3, <> included */
#define SP_SMTP_LOCAL_MAX 64    /* RFC 5321 4.5.3.1.1 */
#define SP_SMTP_DOMAIN_MAX 255  /* RFC 5321 4.5.3.1.2 */

enum sp_smtp_verb {
	SP_SMTP_HELO,
	SP_SMTP_EHLO,
	SP_SMTP_MAIL,
	SP_SMTP_RCPT,
	SP_SMTP_DATA,
	SP_SMTP_BDAT,
	SP_SMTP_RSET,
	SP_SMTP_NOOP,
	SP_SMTP_QUIT,
	SP_SMTP_VRFY,
	SP_SMTP_EXPN,
	SP_SMTP_HELP,
	SP_SMTP_STARTTLS,
	SP_SMTP_UNKNOWN,
	SP_SMTP_NVERBS
};

enum sp_smtp_body {
	SP_SMTP_BODY_NONE = 0,  /* no BODY= parameter */
	SP_SMTP_BODY_7BIT,
	SP_SMTP_BODY_8BITMIME,
};

/* One parsed command.  Strings are NUL-terminated copies. */
struct sp_smtp_cmd {
	enum sp_smtp_verb verb;
	/* HELO/EHLO: the client's name (domain or address literal). */
	char helo[SP_SMTP_DOMAIN_MAX + 1];
	/* MAIL/RCPT: the mailbox without <> and without a source route;
	 * empty for the null path <> (MAIL only). */
	char path[SP_SMTP_PATH_MAX + 1];
	int path_utf8;          /* the path has non-ASCII (RFC 6531) */
	/* MAIL parameters (RFC 1870, 6152, 6531). */
	int has_size;
	uint64_t size;
	enum sp_smtp_body body;
	int smtputf8;
	/* BDAT (RFC 3030). */
	uint64_t chunk;
	int last;
};

/*
 * Command-line framing.  Caller-owned state; init before the first line and
 * after STARTTLS (which must also drop any buffered input).
 */
struct sp_smtp_lines {
	size_t max;             /* longest line accepted, CRLF included */
	int skipping;           /* inside an over-long line */
};

void sp_smtp_lines_init(struct sp_smtp_lines *l, size_t margin);

/*
 * Looks for one command line at the start of buf[0..len).  Returns:
 *   0: *used_r bytes (the line with its CRLF) form a line of *linelen_r
 *      bytes without the CRLF;
 *   SP_SMTP_MORE: no complete line yet.  *used_r bytes may be dropped
 *      (non-zero only while skipping the rest of a rejected line: call
 *      again with what follows them);
 *   SP_SMTP_ELONG: the line is too long.  *used_r bytes may be dropped; the
 *      rest of the line will be skipped by later calls.  Reported once per
 *      line;
 *   SP_SMTP_EBARELF, SP_SMTP_EBARECR: *used_r bytes (through the offending
 *      character's line end) are a broken line to be answered with 500.
 */
int sp_smtp_lines_next(struct sp_smtp_lines *l, const uint8_t *buf,
    size_t len, size_t *used_r, size_t *linelen_r);

/*
 * Parses one command line (without CRLF).  Verbs are case-insensitive.
 * Fills cmd and returns 0, or SP_SMTP_ESYNTAX / EPATH / EPARAM / EUTF8
 * with cmd->verb still set when the verb was recognised, so the session can
 * name the command in its reply.  An unknown verb returns 0 with
 * SP_SMTP_UNKNOWN.
 */
int sp_smtp_cmd_parse(const char *line, size_t len, struct sp_smtp_cmd *cmd);

/* The verb's name ("MAIL"), for replies and logs. */
const char *sp_smtp_verb_name(enum sp_smtp_verb v);

/*
 * The message data reader.  DATA mode undoes dot-stuffing and ends at
 * CRLF.CRLF; BDAT mode passes bytes through (the chunk sizes frame the
 * message) and only checks line ends.  In both, CR must be followed by LF
 * and LF preceded by CR.
 */
enum sp_smtp_data_mode { SP_SMTP_DATA_DOT, SP_SMTP_DATA_RAW };

struct sp_smtp_data {
	enum sp_smtp_data_mode mode;
	int state;
	uint64_t max;           /* size limit of the unstuffed message */
	uint64_t size;          /* unstuffed bytes seen (also past max) */
	int error;              /* first error (ESIZE), sticky */
};

void sp_smtp_data_init(struct sp_smtp_data *d, enum sp_smtp_data_mode mode,
    uint64_t max);

/*
 * Reads in[0..len), appending message bytes to out (room for len bytes is
 * enough: unstuffing only shrinks).  Bytes past the size limit are counted,
 * not written.  *used_r gets the input consumed, *outlen_r the bytes
 * written.  Returns:
 *   SP_SMTP_MORE: all input consumed, the message goes on;
 *   0: DATA mode saw the end (CRLF.CRLF); input after *used_r is the next
 *      command (pipelining);
 *   SP_SMTP_EBARELF, SP_SMTP_EBARECR: framing broken; the reader is dead
 *      and the connection should close, since where the message ends can
 *      no longer be known the same way by both sides.
 * A message over the limit is not an error here: check d->error
 * (SP_SMTP_ESIZE) at the end, after the whole message has been read.
 */
int sp_smtp_data_feed(struct sp_smtp_data *d, const uint8_t *in, size_t len,
    uint8_t *out, size_t *used_r, size_t *outlen_r);

/*
 * BDAT mode, after the LAST chunk: 0, or SP_SMTP_EBARECR when the message
 * ended in a lone CR.
 */
int sp_smtp_data_finish(struct sp_smtp_data *d);

#endif
