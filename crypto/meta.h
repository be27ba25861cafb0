/*
 * The metadata record: the small, separately encrypted summary of a message
 * (envelope kind SP_ENVELOPE_KIND_META) that lets a client list a mailbox
 * without fetching bodies.  Written by the gateway for inbound mail and by
 * clients for their own mail; layout in docs/format.md, "Metadata record".
 *
 *   version u8 (1) | field* ; field = tag u8 | length u16 BE | value
 *
 * Tags appear in strictly increasing order, each at most once; unknown tags
 * are skipped so later versions can add fields.  Text values are UTF-8
 * without NUL.  The whole record is at most SP_META_MAX bytes.
 */
#ifndef SP_CRYPTO_META_H
#define SP_CRYPTO_META_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/error.h"

#define SP_META_VERSION 1
#define SP_META_MAX (64 * 1024)

enum sp_meta_tag {
	SP_META_FROM = 1,
	SP_META_TO = 2,
	SP_META_CC = 3,
	SP_META_BCC = 4,
	SP_META_SUBJECT = 5,
	SP_META_DATE = 6,         /* u64 BE, seconds since the epoch */
	SP_META_SIZE = 7,         /* u64 BE, plaintext message size */
	SP_META_FLAGS = 8,        /* u32 BE, SP_META_F_* */
	SP_META_AUTH_RESULTS = 9, /* Authentication-Results value */
	SP_META_MESSAGE_ID = 10,
	SP_META_FOLDER = 11,      /* delivery hint, e.g. "Junk" */
	SP_META_BLOB_ID = 12,     /* opaque bytes naming the body blob */
	SP_META_FOLDER_ID = 13,   /* u32 BE, the account's own folder id */
	SP_META_KEYWORDS = 14,    /* text: IMAP keywords, space-separated */
	SP_META_RECEIVED = 15,    /* u64 BE, arrival (IMAP INTERNALDATE) */
	SP_META_SPAM = 16,        /* text: content filter verdict */
};

#define SP_META_F_SEEN 0x01u
#define SP_META_F_ANSWERED 0x02u
#define SP_META_F_FLAGGED 0x04u
#define SP_META_F_DRAFT 0x08u
#define SP_META_F_JUNK 0x10u       /* content filter or DMARC quarantine */
#define SP_META_F_SIGNED 0x20u     /* body envelope carries a signature */

/* Decoded record.  Every pointer is NULL when the field is absent; strings
 * are NUL-terminated.  All memory belongs to the struct (sp_meta_finish). */
struct sp_meta {
	char *from, *to, *cc, *bcc, *subject, *auth_results, *message_id,
	    *folder, *keywords, *spam;
	uint8_t *blob_id;
	size_t blob_id_len;
	uint64_t date, size, received;
	uint32_t flags, folder_id;
	unsigned has_date : 1, has_size : 1, has_flags : 1, has_folder_id : 1,
	    has_received : 1;
};

/* Encodes m; *out_r is malloc'd (the caller wipes and frees it).  Absent
 * fields are skipped.  SP_ELIMIT when a field or the record is too long,
 * SP_EINVAL for text that is not UTF-8. */
int sp_meta_encode(const struct sp_meta *m, uint8_t **out_r, size_t *len_r);

/* Decodes untrusted bytes into m (zeroed first).  On error m holds nothing
 * that needs freeing. */
SP_WUR int sp_meta_decode(const uint8_t *in, size_t len, struct sp_meta *m);

/* Wipes and frees every field of m; m itself is the caller's. */
void sp_meta_finish(struct sp_meta *m);

#endif
