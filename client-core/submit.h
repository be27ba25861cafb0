/*
 * Submission to the gateway's outbound queue (docs/protocol.md 7.5): the
 * path for recipients who have no key, where the gateway must see the
 * message to deliver it.  The server in between does not: the message is
 * sealed on this machine to the gateway's X25519 key (envelope v1, kind
 * 1), uploaded as a blob, and only then named in SUBMIT with its
 * envelope sender and recipients.
 *
 * The gateway key comes from the server (GATEWAY_KEY) over the logged-in
 * TLS connection; a server that lies about it could read outbound mail,
 * which it would see anyway at the gateway it runs (docs/threat-model.md).
 *
 * Never logs, never exits; not thread-safe per sp_client.
 */
#ifndef SP_CLIENT_SUBMIT_H
#define SP_CLIENT_SUBMIT_H

#include <stddef.h>
#include <stdint.h>

#include "client-core/sync_client.h"

#define SP_SUBMIT_RCPT_MAX 100

/*
 * Seals msg (the RFC 5322 message as it should leave, CRLF line ends;
 * Bcc already removed by the caller) to the gateway, uploads it and asks
 * the server to queue it from mail_from to the n recipients.  Returns 0
 * once the queue entry is durable, SP_ESERVER with the server's reason in
 * err (rate limit, "encrypted only" policy, a sender that is not the
 * account's), or another SP_E* / errno code with a sentence in err.
 */
int sp_submit(sp_client *c, const char *mail_from, const char *const *rcpts,
    size_t n, const uint8_t *msg, size_t len, char *err, size_t errlen);

/* The gateway's public key (GATEWAY_KEY); 0 or as sp_submit. */
int sp_submit_gateway_key(sp_client *c, uint8_t pk[32], char *err,
    size_t errlen);

#endif
