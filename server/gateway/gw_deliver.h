/*
 * Delivery: the last step of inbound mail in the gateway.  For each
 * recipient it seals the message to the recipient's X25519 key (read from
 * the key set the account registered), stores the body as a blob, appends a
 * metadata record to the recipient's log with group commit, and tells the
 * sync server to push it (docs/format.md "Log records", docs/protocol.md).
 *
 * The gateway holds no user's private key: it can write to a log but never
 * read one back.
 *
 * Thread-safe: sp_gw_deliver_rcpt and sp_gw_deliver_message may be called
 * from any thread at once (they block on the store: call them from a
 * worker thread, not the event loop).  Never logs, never exits.
 */
#ifndef SP_GATEWAY_DELIVER_H
#define SP_GATEWAY_DELIVER_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/error.h"

typedef struct sp_gw_deliver sp_gw_deliver;

/* Results of sp_gw_deliver_rcpt() and of each recipient's delivery. */
enum {
	SP_GW_OK = 0,
	SP_GW_ENOUSER = -32300, /* no such account, or disabled: 550 5.1.1 */
	SP_GW_ERELAY,           /* a domain we do not serve: 550 5.7.1 */
	SP_GW_EQUOTA,           /* mailbox full: 452 4.2.2 (552 5.2.2 at DATA) */
	SP_GW_ETEMP,            /* store or notify trouble: 451 4.3.0 */
	SP_GW_ESYNTAX,          /* not an address we can deliver: 501 5.1.3 */
};

struct sp_gw_deliver_opts {
	const char *data_dir;        /* the server's data directory (the
	                              * store is data_dir/store) */
	const char *const *domains;  /* domains we accept mail for */
	size_t ndomains;
	const char *notify_path;     /* server's notify socket; NULL =
	                              * data_dir/notify.sock */
	int no_sync;                 /* benchmarks only: skip fsync */
};

/* What the gateway learned about a message, kept inside the recipient's
 * encrypted metadata record (never in the clear on the server). */
struct sp_gw_verdict {
	const char *auth_results;    /* Authentication-Results value, or NULL */
	int junk;                    /* 1: deliver to Junk (quarantine, spam) */
	const char *spam;            /* filter verdict text for the user, or
	                              * NULL; stored after the auth results */
};

int sp_gw_deliver_open(const struct sp_gw_deliver_opts *o,
    sp_gw_deliver **d_r);
void sp_gw_deliver_close(sp_gw_deliver *d);

/* May address receive mail here?  SP_GW_OK, SP_GW_ENOUSER, SP_GW_ERELAY,
 * SP_GW_ESYNTAX or SP_GW_ETEMP. */
int sp_gw_deliver_rcpt(sp_gw_deliver *d, const char *address);

/*
 * Delivers msg (the message as received: dot-unstuffed, CRLF line ends) to
 * each of the n recipients.  Returns only when every delivery that
 * succeeded is durable; results[i] gets SP_GW_OK or an SP_GW_E* code for
 * recipient i.  The function's own result is 0 if at least one recipient
 * got the message, else the first error.  The body stored is msg byte for
 * byte; v goes into the metadata.  Internal buffers holding plaintext are
 * wiped before return; msg is the caller's to wipe.
 */
int sp_gw_deliver_message(sp_gw_deliver *d, const char *const *rcpts,
    size_t n, const uint8_t *msg, size_t len, const struct sp_gw_verdict *v,
    int *results);

const char *sp_gw_deliver_strerror(int err);

/* The store d opened (the outbound queue shares it: LMDB allows one open
 * per process).  Valid until sp_gw_deliver_close(). */
struct sp_store *sp_gw_deliver_store(sp_gw_deliver *d);

#endif
