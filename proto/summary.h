/*
 * The message summary: how the metadata record (crypto/meta.h) of a
 * message is derived from its RFC 5322 bytes.  The gateway (for inbound
 * mail) and client-core (for sent, imported and appended mail) must derive
 * it the same way, so it lives here, between them.  Parsing is GMime's.
 *
 * Fields filled: from, to, cc (header values decoded from RFC 2047 into
 * UTF-8, addresses kept), subject (decoded), date (seconds since the epoch;
 * has_date = 0 when the header is missing or unparseable), size (len),
 * message_id (without <>).  bcc is filled only if the message has a Bcc
 * header (the sender's own copy).  Text that is not valid UTF-8 after
 * decoding is replaced character by character (U+FFFD), never refused;
 * values longer than the metadata limits are cut at a character boundary.
 *
 * Thread-safe (GMime is initialised once, on first use).  Never logs.
 */
#ifndef SP_PROTO_SUMMARY_H
#define SP_PROTO_SUMMARY_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/error.h"
#include "crypto/meta.h"

/* Text fields of the summary are cut to this many bytes. */
#define SP_SUMMARY_TEXT_MAX 4096

/* Fills m (zeroed first; free with sp_meta_finish).  0, SP_ENOMEM, or
 * SP_EFORMAT when GMime cannot parse the bytes as a message at all. */
int sp_summary_from_message(const uint8_t *msg, size_t len,
    struct sp_meta *m);

#endif
