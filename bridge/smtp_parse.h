/*
 * The bridge's SMTP submission input (RFC 5321, RFC 6409): an incremental
 * reader of command lines and of DATA, plus the parsers for a command's
 * verb, path and ESMTP parameters.  Pure: no sockets, no accounts, so the
 * unit test feeds it a byte at a time and the fuzz target anything.
 *
 * Command lines end in CRLF; a bare LF is taken as the end of a line too
 * (local mail clients only: nothing is smuggled through a command).  A
 * line longer than SMTP_LINE_MAX is discarded up to its end and reported
 * as SMTP_EV_TOOLONG; a NUL byte makes it SMTP_EV_BAD.
 *
 * DATA: the message ends only at CRLF "." CRLF.  Leading dots are removed
 * (RFC 5321 4.5.2).  A bare LF is turned into CRLF (RFC 6409 8 lets the
 * submission server fix up what a client sent; "\n.\n" does NOT end the
 * message, so no second message can be smuggled behind a first one).  A
 * bare CR, or a message over the size limit, is read to its end and then
 * reported (the flags), never cut short: the client and the server stay
 * in step.
 *
 * Ownership: the parser owns its buffers; a line is valid until the next
 * feed; a message's bytes are taken with smtp_parser_take_data().
 * Errors: SP_ENOMEM only (create).  Never logs.
 */
#ifndef SP_BRIDGE_SMTP_PARSE_H
#define SP_BRIDGE_SMTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define SMTP_LINE_MAX 2048       /* bytes of a command line, CRLF incl. */
#define SMTP_ADDR_MAX 254        /* bytes of an address (RFC 5321 4.5.3.1) */

typedef struct smtp_parser smtp_parser;

enum smtp_ev {
	SMTP_EV_MORE = 0,        /* every byte consumed; feed more */
	SMTP_EV_LINE,            /* ev->line: a command line (no CRLF) */
	SMTP_EV_TOOLONG,         /* a line over SMTP_LINE_MAX was dropped */
	SMTP_EV_BAD,             /* a line with a NUL byte was dropped */
	SMTP_EV_DATA,            /* the message ended: ev->data_flags */
};

#define SMTP_DATA_TOO_BIG 1u     /* over the limit: bytes were dropped */
#define SMTP_DATA_BARE_CR 2u     /* a CR not followed by LF */
#define SMTP_DATA_BARE_LF 4u     /* bare LFs were turned into CRLF */

struct smtp_event {
	const char *line;        /* SMTP_EV_LINE: NUL-terminated */
	size_t line_len;
	unsigned data_flags;     /* SMTP_EV_DATA */
	size_t data_len;         /* SMTP_EV_DATA: bytes kept */
};

int smtp_parser_create(smtp_parser **p_r);
/* Wipes and frees.  NULL ok. */
void smtp_parser_destroy(smtp_parser *p);

/*
 * Consumes bytes of in (n of them) up to the next event; *used_r says how
 * many.  Returns the event (SMTP_EV_MORE when all n were used without
 * one).  Call again with the rest.
 */
enum smtp_ev smtp_parser_feed(smtp_parser *p, const uint8_t *in, size_t n,
    size_t *used_r, struct smtp_event *ev);

/* After "354": what follows is a message of at most max bytes. */
void smtp_parser_begin_data(smtp_parser *p, size_t max);
/* After SMTP_EV_DATA: the message, malloc'd, for the caller (who wipes and
 * frees it); NULL when nothing was kept (empty or too big). */
uint8_t *smtp_parser_take_data(smtp_parser *p, size_t *len_r);
/* Forgets a partial line (after STARTTLS: clear-text bytes are dropped). */
void smtp_parser_reset(smtp_parser *p);

/* ---- command syntax --------------------------------------------------- */

/*
 * The verb of line (letters only, up to 15, upper-cased into verb) and a
 * pointer to what follows the spaces after it.  -1 when the line does not
 * start with a verb.
 */
int smtp_parse_verb(const char *line, char verb[16], const char **rest_r);

/*
 * "FROM:<path> params" / "TO:<path> params": s starts after the verb;
 * prefix is "FROM:" or "TO:" (case-insensitive; spaces after the colon
 * are tolerated, as many clients send them).  The address (without the
 * brackets, may be empty for "<>") goes to addr; *params_r points at the
 * parameters (or the empty string).  -1 with *error_r on bad syntax:
 * the path must be in angle brackets, without source route, at most
 * SMTP_ADDR_MAX bytes, printable ASCII or UTF-8 (utf8 = 1 after SMTPUTF8
 * was given) and with at most one '@' outside a quoted local part.
 */
int smtp_parse_path(const char *s, const char *prefix, int utf8,
    char addr[SMTP_ADDR_MAX + 1], const char **params_r,
    const char **error_r);

/*
 * The next "KEY[=VALUE]" of a parameter list: key and value (empty when
 * none) are copied (keys up-cased).  Returns 1 for a parameter, 0 at the
 * end, -1 with *error_r for bad syntax or a too-long key or value.
 */
int smtp_parse_param(const char **s, char key[32], char value[256],
    const char **error_r);

/* Base64 (RFC 4648, padding required) of in into out (cap bytes); the
 * length decoded, or -1 on bad input or overflow. */
long smtp_base64_decode(const char *in, uint8_t *out, size_t cap);

#endif
