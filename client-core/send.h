/*
 * Internal send: mail between accounts of this server, end to end
 * encrypted and signed by the sender's client (docs/architecture.md,
 * "Internal mail"; docs/protocol.md 7.3 DELIVER, 8 blobs, 9 keys).
 *
 * For a message (RFC 5322 bytes) and its recipients (To, Cc, Bcc, plus
 * envelope recipients given apart, which are treated as Bcc; or, with
 * envelope_only, exactly the envelope recipients given):
 *
 *  1. Every recipient's key set is fetched from the directory and checked
 *     against its pin (keys.h).  Any recipient without an account here, or
 *     whose key changed, refuses the whole send before anything is
 *     uploaded, with a sentence naming the address.  (Mail to other
 *     servers: outbox.h splits the recipients and calls this for the
 *     accounts of this server only, with envelope_only.)
 *  2. The Bcc header is removed from the body (sp_send_strip_bcc): no
 *     recipient's copy names a Bcc recipient, and the body each one
 *     decrypts is the same bytes, signature included.
 *  3. Body envelopes (kind 1), signed with the sender's identity key:
 *       - one shared by the visible recipients (To, Cc) and the sender's
 *         own mailbox key (for the Sent copy), uploaded once;
 *       - one per Bcc recipient, sealed to that recipient alone.  A shared
 *         envelope would show every reader how many slots it has, and so
 *         that there were Bcc recipients; separate ones show nothing.
 *  4. Per recipient, a metadata record (proto/summary.h of the stripped
 *     body: no Bcc; blob_id of the body that recipient can open; received
 *     time; no flags, no folder) sealed as a kind-2 envelope to that
 *     recipient alone, signed, and DELIVERed to that recipient's log.
 *  5. The Sent copy (mailbox.h sp_mbox_add_uploaded): folder Sent, flag
 *     Seen, signed, with the Bcc list recorded (the sender's copy only),
 *     sharing the shared body blob.
 *
 * Limits: at most SP_SEND_VISIBLE_MAX visible recipients (an envelope has
 * at most 32 slots and one is the sender's mailbox key) and SP_SEND_RCPT_MAX
 * recipients in all; the message must have exactly one From address, the
 * account's own (the signature says who sent it; a From naming someone
 * else would make every recipient see a bad signer).
 *
 * A delivery that fails after others succeeded does not undo them: the
 * send returns the error naming the addresses that did not get the mail,
 * and the Sent copy is still stored if anyone got it (*report says who).
 *
 * Errors: 0 or an SP_E* or errno code with a sentence in err (keys.h, mailbox.h
 * codes; ENOENT for a recipient without an account; SP_EKEYCHANGED).
 * Never logs, never exits.  Uses c, cache and mb from one thread.
 */
#ifndef SP_CLIENT_SEND_H
#define SP_CLIENT_SEND_H

#include <stddef.h>
#include <stdint.h>

#include "client-core/cache.h"
#include "client-core/mailbox.h"
#include "client-core/sync_client.h"
#include "crypto/keyset.h"

#define SP_SEND_VISIBLE_MAX 31
#define SP_SEND_RCPT_MAX 256

/* What a send did.  Fill-in only; no memory to free. */
struct sp_send_report {
	size_t nrcpts;           /* distinct recipients */
	size_t nbcc;             /* of which Bcc (or envelope-only) */
	size_t ndelivered;       /* DELIVERed successfully */
	uint64_t sent_id;        /* the Sent copy's message id; 0 if none */
};

struct sp_send_args {
	sp_cache *cache;         /* the sender's cache (pins) */
	sp_client *c;            /* logged in as the sender */
	sp_mbox *mb;             /* the sender's mailbox (Sent copy) */
	const sp_keyset *ks;     /* the sender's keys */
	const char *address;     /* the sender's address */
	const char *const *rcpts; /* extra envelope recipients, or NULL */
	size_t nrcpts;
	/* 1: the recipients are exactly rcpts (the SMTP envelope, of which
	 * outbox.h passes the sealpost accounts): no To/Cc/Bcc header
	 * address is added, the headers only tell a visible recipient (in
	 * To or Cc: shares the visible body) from a Bcc one (its own body);
	 * header addresses that cannot be parsed are ignored. */
	int envelope_only;
	/* The Bcc list recorded in the Sent copy instead of the one send
	 * works out, e.g. with outside Bcc recipients (outbox.h); NULL:
	 * its own. */
	const char *sent_bcc;
};

/*
 * Sends msg (len bytes, RFC 5322, CRLF or LF line ends) as described
 * above.  msg stays the caller's; copies of it made here are wiped.
 * report (may be NULL) is filled also on failure.
 */
int sp_send(const struct sp_send_args *a, const uint8_t *msg, size_t len,
    struct sp_send_report *report, char *err, size_t errlen);

/*
 * Removes every Bcc header field (with its folded continuation lines)
 * from the header section of msg: the header ends at the first empty line
 * (or the end of msg); nothing after it is touched, nor any other byte of
 * the header.  *out_r is malloc'd (the caller wipes and frees it);
 * *removed_r (may be NULL) gets the number of fields removed.
 * Cost: one pass over the header.  SP_ENOMEM only.
 */
int sp_send_strip_bcc(const uint8_t *msg, size_t len, uint8_t **out_r,
    size_t *out_len_r, size_t *removed_r);

#endif
