/*
 * A message on its way out, the parts send.h and outbox.h (and
 * `sealpost submit`) share: who it is for, the Bcc list of the Sent copy,
 * and CRLF line ends.
 *
 * Recipients (sp_outmsg_rcpts): the message is parsed (GMime); its From:
 * must be exactly one address, own (the signature and DKIM say who sent
 * it).  Then, in order, the To and Cc addresses (visible), the Bcc ones
 * (unless envelope_only) and the envelope addresses given (as Bcc); an
 * address given twice is one recipient, and a visible entry wins over a
 * Bcc one.  With envelope_only the recipients are exactly the envelope
 * addresses: the To/Cc ones only tell which of them are visible, and a
 * To/Cc entry that is not an address is ignored; without it any entry
 * that is not an address refuses the message.
 *
 * Limits: at most cap entries while collecting (header names and
 * envelope addresses), at most max recipients in the end.
 *
 * Errors: 0, SP_ENOMEM, SP_EFORMAT (cannot be parsed), SP_EINVAL (From:,
 * an address, no recipients), SP_ELIMIT (cap or max), always with a
 * sentence in err.  Never logs, never exits; thread-safe.
 */
#ifndef SP_CLIENT_OUTMSG_H
#define SP_CLIENT_OUTMSG_H

#include <stddef.h>
#include <stdint.h>

#include "client-core/keys.h"

struct sp_outmsg_rcpt {
	char addr[SP_KEYS_ADDR_BYTES]; /* normalised (keys.h) */
	int bcc;                 /* not in To/Cc */
};

struct sp_outmsg_args {
	const char *own;         /* the sender's address, normalised */
	const char *const *rcpts; /* envelope recipients, or NULL */
	size_t nrcpts;
	int envelope_only;       /* 1: exactly rcpts (above) */
	size_t cap, max;         /* limits (above) */
};

/*
 * The recipients of msg (len bytes, RFC 5322) as described above:
 * *r_out (calloc'd, *n_r entries, in the order first met) is the
 * caller's to release with sp_outmsg_rcpts_free; NULL on failure.
 */
int sp_outmsg_rcpts(const struct sp_outmsg_args *a, const uint8_t *msg,
    size_t len, struct sp_outmsg_rcpt **r_out, size_t *n_r, char *err,
    size_t errlen);

/* Wipes and frees what sp_outmsg_rcpts gave (r may be NULL). */
void sp_outmsg_rcpts_free(struct sp_outmsg_rcpt *r, size_t n);

/*
 * "a@x, b@y": the Bcc recipients of r, for a Sent copy; malloc'd (the
 * caller frees it), NULL when there are none or memory ran out.
 */
char *sp_outmsg_bcc_list(const struct sp_outmsg_rcpt *r, size_t n);

/*
 * in with every bare LF made CRLF (SMTP, DKIM and RFC 3156 want CRLF);
 * malloc'd (the caller wipes and frees it), NULL when memory ran out.
 */
uint8_t *sp_outmsg_crlf(const uint8_t *in, size_t len, size_t *len_r);

#endif
