/*
 * The header section of a message as received, split into fields for
 * DKIM and DMARC: every field keeps its exact bytes (DKIM hashes them),
 * folded lines included.  Nothing is copied: fields point into the
 * caller's buffer, valid as long as it is.
 */
#ifndef SP_GW_MSG_H
#define SP_GW_MSG_H

#include <stddef.h>
#include <stdint.h>

#define SP_GW_MSG_MAX_FIELDS 1000    /* more is abuse, not mail */

struct sp_gw_hdr {
	const char *name;      /* field name, name_len bytes */
	size_t name_len;
	const char *raw;       /* the whole field, through its final CRLF */
	size_t raw_len;
	const char *value;     /* after the ':', before the final CRLF */
	size_t value_len;
};

struct sp_gw_msg {
	int n;
	struct sp_gw_hdr h[SP_GW_MSG_MAX_FIELDS];
	const char *body;      /* after the empty line; NULL if none */
	size_t body_len;
};

/* Splits msg (CRLF line ends).  Returns 0, or EINVAL when the header
 * section is malformed (a line that is neither a field nor a
 * continuation, or more than SP_GW_MSG_MAX_FIELDS fields); m holds the
 * fields before the fault either way. */
int sp_gw_msg_parse(const uint8_t *msg, size_t len, struct sp_gw_msg *m);

/* Index of the next field named name (case-insensitive) at or after
 * from, or -1. */
int sp_gw_msg_find(const struct sp_gw_msg *m, const char *name, int from);

#endif
