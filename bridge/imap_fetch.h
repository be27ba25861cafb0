/*
 * What FETCH returns from a message's bytes: ENVELOPE, BODYSTRUCTURE and
 * BODY (RFC 3501 7.4.2, extensible form for BODYSTRUCTURE), body sections
 * with partials, and BINARY (RFC 3516) content with its transfer encoding
 * undone.
 *
 * An imap_msg is the parsed structure of one message: the byte ranges of
 * every entity's header and body (found here, so every section is an exact
 * slice of the original bytes and BODY[] is byte-identical), with header
 * values (Content-Type parameters, addresses, RFC 2047/2231) read by GMime.
 * Limits: 64 levels of nesting, 10000 entities; deeper or further parts are
 * treated as opaque bodies, never refused: a hostile message must still be
 * listed.
 *
 * The imap_msg takes ownership of the bytes (wiped with sodium_memzero and
 * freed by imap_msg_destroy).  Not thread-safe per imap_msg; GMime is
 * initialised on first use.  Never logs.
 */
#ifndef SP_BRIDGE_IMAP_FETCH_H
#define SP_BRIDGE_IMAP_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "bridge/imap_out.h"
#include "bridge/imap_parse.h"

typedef struct imap_msg imap_msg;

/* Parses data (malloc'd, len bytes; ownership passes in, also on
 * failure).  0 or ENOMEM. */
int imap_msg_create(uint8_t *data, size_t len, imap_msg **m_r);
void imap_msg_destroy(imap_msg *m);

size_t imap_msg_size(const imap_msg *m);
const uint8_t *imap_msg_data(const imap_msg *m);
/* Bytes of the top-level header block (from offset 0, blank line
 * included): what BODY[HEADER] returns. */
size_t imap_msg_header_len(const imap_msg *m);

/* Appends the ENVELOPE list. */
void imap_msg_envelope(imap_msg *m, struct imap_out *o);
/* Appends BODYSTRUCTURE (extensible 1) or BODY (0). */
void imap_msg_bodystructure(imap_msg *m, int extensible,
    struct imap_out *o);

/*
 * Appends "LABEL value" for one section item (IMAP_FI_SECTION,
 * IMAP_FI_BINARY, IMAP_FI_BINARY_SIZE, IMAP_FI_RFC822,
 * IMAP_FI_RFC822_HEADER, IMAP_FI_RFC822_TEXT).  A part that does not exist
 * gives an empty string (RFC 3501 leaves this open; clients cope with it
 * better than with NO).  Returns 0, or 1 for BINARY of a part whose
 * encoding is unknown (the caller answers NO [UNKNOWN-CTE]).
 */
int imap_msg_section(imap_msg *m, const struct imap_fetch_att *a,
    struct imap_out *o);

/* Top-level header text (for SEARCH HEADER and friends): the unfolded
 * value of the first field called name, malloc'd, or NULL. */
char *imap_msg_header(imap_msg *m, const char *name);
/* Every field called name, unfolded, joined by "\n" (malloc'd) or NULL. */
char *imap_msg_header_all(imap_msg *m, const char *name);
/* Text for full-text search: every text/ part decoded to UTF-8 and joined
 * (malloc'd, NUL-terminated), or NULL when there is none. */
char *imap_msg_text(imap_msg *m, size_t *len_r);

#endif
