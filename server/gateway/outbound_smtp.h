/*
 * The client side of SMTP for outbound delivery: one transaction to one
 * remote MTA address, blocking with a timeout per read and write (it runs
 * on an outbound worker thread).
 *
 * TLS: STARTTLS whenever the remote offers it (TLS 1.2 or newer, never
 * anything older).  Without a policy that is opportunistic: any
 * certificate is accepted, because RFC 7435 says encryption without
 * authentication still beats plaintext.  With require_tls (MTA-STS
 * "enforce", RFC 8461 4.2) the remote must offer STARTTLS and present a
 * certificate that chains to the CA store (ca_file, or the system's) and
 * names verify_host; otherwise the delivery is not attempted.
 *
 * Never logs, never exits.
 */
#ifndef SP_GW_OUTBOUND_SMTP_H
#define SP_GW_OUTBOUND_SMTP_H

#include <stddef.h>
#include <stdint.h>

#include <netinet/in.h>

#include "server/gateway/outbound_reply.h"

struct sp_ob_smtp_opts {
	const char *helo;           /* our name in EHLO */
	int timeout_ms;             /* per read or write */
	int require_tls;            /* MTA-STS enforce */
	const char *verify_host;    /* name the certificate must carry */
	const char *ca_file;        /* PEM, or NULL for the system store */
};

/* The outcome of one transaction. */
struct sp_ob_smtp_result {
	int tls;                    /* 1: the transaction ran over TLS */
	int session_code;           /* 0, or the code that ended it early
	                             * (4xx/5xx); 421 for a connection or
	                             * TLS failure */
	char session_text[SP_OB_REPLY_TEXT + 1];
	int rcpt_code[128];         /* per recipient: its final code */
	char rcpt_text[128][SP_OB_REPLY_TEXT + 1];
};

/*
 * Delivers msg (CRLF line ends; dot-stuffed here) from mail_from to the n
 * recipients (n <= 128) at addr (IPv4 or IPv6, port set).  res->rcpt_code
 * gets 250 for each accepted recipient after the final "250" to DATA,
 * or the code that refused it.  Returns 0 when the dialogue ran (see
 * res), or -1 for an internal failure (memory).
 */
int sp_ob_smtp_send(const struct sp_ob_smtp_opts *o,
    const struct sockaddr_storage *addr, const char *mail_from,
    const char *const *rcpts, size_t n, const uint8_t *msg, size_t len,
    struct sp_ob_smtp_result *res);

#endif
