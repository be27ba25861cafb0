/*
 * The bridge's POP3 server (RFC 1939) on 127.0.0.1, on the INBOX of the
 * account that logs in: STLS (RFC 2595) and implicit TLS (bridge_tls.h),
 * CAPA (RFC 2449), USER/PASS and AUTH PLAIN (RFC 5034) with the bridge
 * password (after TLS only), STAT, LIST, UIDL, TOP, RETR, DELE, RSET,
 * NOOP, QUIT.  Commands run from a table (pop3_session.c).
 *
 * The maildrop is the INBOX as it was at login (RFC 1939 wants a fixed
 * numbering for the session).  UIDL is "UIDVALIDITY.UID" of the message
 * in the INBOX: stable forever and the same on every device, since UIDs
 * come from the log (client-core/mailbox.h).  DELE marks; QUIT deletes
 * the marked messages for good (sp_mbox_delete: a log record, so IMAP
 * clients see an EXPUNGE like any other); a connection that ends without
 * QUIT deletes nothing.  No DELE = "leave on server".
 *
 * The program logs (connection events only, never content or secrets).
 */
#ifndef SP_BRIDGE_POP3_SERVER_H
#define SP_BRIDGE_POP3_SERVER_H

#include <stddef.h>

#include <uv.h>

#include "bridge/bridge_conn.h"

/* o->port is the one with STLS.  On failure *s_r may still be set: run
 * the loop, then bridge_server_destroy().  The ports, shutdown and
 * destroy: bridge_server_*() (bridge_conn.h). */
int pop3_server_create(uv_loop_t *loop, const struct bridge_server_opts *o,
    struct bridge_server **s_r, char *err, size_t errlen);

#endif
