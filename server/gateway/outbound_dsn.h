/*
 * Delivery status notifications (RFC 3464, multipart/report; RFC 3461
 * is not offered, so every DSN is the default one).  Pure text building:
 * no I/O; the worker delivers the result into the sender's own mailbox.
 */
#ifndef SP_GW_OUTBOUND_DSN_H
#define SP_GW_OUTBOUND_DSN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct sp_ob_dsn_rcpt {
	const char *addr;
	int code;             /* the remote's reply code, or 0 (expiry) */
	const char *text;     /* the remote's reply text (printable ASCII) */
};

/*
 * Builds a DSN to mail_from about the recipients: delayed (Action:
 * delayed, 4.x.x) or failed (Action: failed).  orig (may be NULL) is the
 * message; only its header section is quoted (text/rfc822-headers), so
 * a bounce never repeats the content.  *out_r is malloc'd, the caller's
 * (it holds the headers: wipe it).  0 or ENOMEM.
 */
int sp_ob_dsn_build(const char *reporting_mta, const char *mail_from,
    int delayed, const struct sp_ob_dsn_rcpt *r, size_t n,
    const uint8_t *orig, size_t orig_len, time_t arrival, time_t now,
    char **out_r, size_t *len_r);

#endif
