/*
 * The one way a message leaves: the bridge's SMTP submission and
 * `sealpost send` hand a message and its recipients here, and each
 * recipient gets it the best way open to them (docs/architecture.md,
 * "Outbound"):
 *
 *   - an account of this server (the key directory knows it, KEYS_GET,
 *     checked against its pin): end to end, signed (send.h, with
 *     envelope_only so the outside addresses in To/Cc are left alone);
 *   - an outside address with a pinned, usable OpenPGP key (pgpkeys.h):
 *     PGP/MIME (RFC 3156, pgpmail.h), encrypted to that key and to the
 *     account's own, signed with the account's OpenPGP key, with an
 *     Autocrypt header; then the gateway's queue (submit.h).  The visible
 *     (To/Cc) PGP recipients share one message; each Bcc one gets its
 *     own, so no key id names a Bcc recipient to the others;
 *   - any other outside address: the message as written (Bcc removed,
 *     CRLF line ends, an Autocrypt header added when the account has an
 *     OpenPGP key) to the gateway's queue (submit.h).  The gateway sees
 *     this plaintext (docs/threat-model.md); an account whose policy is
 *     "encrypted only" is refused by the server, and that refusal (with
 *     the server's words) comes back as EACCES.
 *
 * Order, so that a refusal leaves nothing behind: every recipient is
 * classified and every key checked, every PGP/MIME message built, before
 * anything leaves; then the plain submission (the one the policy or the
 * rate limit refuses), then the PGP ones, then the internal send.  Once
 * something has left, later failures do not undo it: the error names the
 * addresses that did not get the mail, *report says who did.
 *
 * A Sent copy is stored once whenever anyone got the message: the one
 * send.h makes (it shares the internal body blob) when an internal
 * recipient got it, else one made here (sp_mbox_add: Sent, Seen,
 * signed).  Either records every Bcc recipient, inside and outside, and
 * holds the message as written (not the PGP/MIME form), Bcc removed.
 *
 * Recipients: with from_headers the To, Cc and Bcc addresses of the
 * message and the rcpts given (as Bcc), else exactly rcpts (the SMTP
 * envelope: To/Cc only tell who is visible).  An address of the
 * account's own domain without an account is refused (ENOENT): it is
 * not "outside", and the gateway would only bring it back.
 *
 * Returns 0, or: SP_EINVAL (From: not exactly the account's address, a
 * recipient that is not an address, no recipients), ENOENT (above),
 * SP_EKEYCHANGED (a pinned sealpost key set or OpenPGP key changed),
 * SP_EKEYREVOKED / SP_EKEYEXPIRED (a pinned OpenPGP key), SP_ELIMIT (too
 * many recipients), EACCES (the account's policy refuses mail to
 * recipients without a key), EBUSY (the outbound rate limit), EAGAIN /
 * EPIPE / ETIMEDOUT as send.h and mailbox.h give them (the bridge settles
 * them), or another SP_E* / errno code; always with a sentence in err
 * naming the addresses concerned.  Never logs, never exits; uses c,
 * cache and mb from one thread.
 */
#ifndef SP_CLIENT_OUTBOX_H
#define SP_CLIENT_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "client-core/cache.h"
#include "client-core/mailbox.h"
#include "client-core/sync_client.h"
#include "crypto/keyset.h"

#define SP_OUTBOX_RCPT_MAX 256

struct sp_outbox_args {
	sp_cache *cache;         /* the sender's cache (pins) */
	sp_client *c;            /* logged in as the sender */
	sp_mbox *mb;             /* the sender's mailbox (Sent copy) */
	const sp_keyset *ks;     /* the sender's keys */
	const char *address;     /* the sender's address */
	const char *const *rcpts; /* envelope recipients (may be NULL) */
	size_t nrcpts;
	int from_headers;        /* 1: To/Cc/Bcc are recipients too */
};

/* What a send did.  Fill-in only; no memory to free. */
struct sp_outbox_report {
	size_t nrcpts;           /* distinct recipients */
	size_t ninternal;        /* of which accounts of this server */
	size_t npgp;             /* outside, PGP/MIME */
	size_t nplain;           /* outside, as written */
	size_t nbcc;             /* not in To/Cc, of all kinds */
	size_t ndelivered;       /* internal ones that got it end to end */
	size_t nqueued;          /* outside ones the gateway's queue took */
	uint64_t sent_id;        /* the Sent copy's message id; 0 if none */
};

/*
 * Sends msg (len bytes, RFC 5322, CRLF or LF line ends) as described
 * above.  msg stays the caller's; copies made here are wiped.  report
 * (may be NULL) is filled also on failure.
 */
int sp_outbox_send(const struct sp_outbox_args *a, const uint8_t *msg,
    size_t len, struct sp_outbox_report *report, char *err, size_t errlen);

#endif
