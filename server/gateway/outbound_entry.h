/*
 * The outbound queue entry (docs/format.md §13): what the gateway must
 * remember about one submitted message, sealed to the gateway's own X25519
 * key before it reaches the store, so the store (and its backups) see only
 * an opaque value, an id and a due time.
 *
 * Written by two processes: the sync server creates an entry on SUBMIT
 * (it knows only the gateway's public key, DATA_DIR/gateway.pub), the
 * gateway reads it with the secret key and rewrites it after each attempt.
 * No message content is ever in an entry: the message is a blob, sealed
 * by the client to the gateway key (envelope v1, kind 1).
 *
 * Decoding is of untrusted bytes in the sense that a damaged store must
 * not crash the gateway: every length is checked against the limits
 * below.  Never logs, never exits; thread-safe (no state).
 */
#ifndef SP_GW_OUTBOUND_ENTRY_H
#define SP_GW_OUTBOUND_ENTRY_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/error.h"

#define SP_OB_ENTRY_VERSION 1
#define SP_OB_RCPT_MAX 100       /* recipients per submission */
#define SP_OB_ADDR_MAX 254       /* RFC 5321 path */
#define SP_OB_REPLY_MAX 512      /* last remote reply kept per recipient */
#define SP_OB_ENTRY_MAX (64 * 1024 + SP_OB_RCPT_MAX * (SP_OB_ADDR_MAX + \
	SP_OB_REPLY_MAX + 32))

/* Recipient states. */
enum sp_ob_state {
	SP_OB_PENDING = 0,   /* not delivered yet; next attempt at next */
	SP_OB_SENT = 1,      /* a remote MTA accepted it (250 after DATA) */
	SP_OB_FAILED = 2,    /* permanent failure or expiry; DSN owed/sent */
};

struct sp_ob_rcpt {
	char addr[SP_OB_ADDR_MAX + 1];
	uint8_t state;               /* enum sp_ob_state */
	uint16_t attempts;
	uint64_t next;               /* seconds since the epoch */
	char reply[SP_OB_REPLY_MAX + 1]; /* last remote answer, for the DSN */
};

struct sp_ob_entry {
	uint8_t id[16];              /* the queue id (not encoded: the key) */
	char account[SP_OB_ADDR_MAX + 1];
	char mail_from[SP_OB_ADDR_MAX + 1];
	uint8_t blob_id[32];
	uint64_t created;
	uint8_t delay_notified;      /* the 4-hour delay DSN went out */
	uint8_t dsn_done;            /* the failure DSN went out */
	uint16_t nrcpt;
	struct sp_ob_rcpt rcpt[SP_OB_RCPT_MAX];
};

/* Serialises e (plaintext, no sealing) into *out_r (malloc'd, the
 * caller's).  0, SP_EINVAL (a field over its limit) or SP_ENOMEM. */
int sp_ob_entry_encode(const struct sp_ob_entry *e, uint8_t **out_r,
    size_t *len_r);
/* Parses what sp_ob_entry_encode wrote; 0 or SP_EFORMAT.  The fuzz
 * target's entry point. */
SP_WUR int sp_ob_entry_decode(const uint8_t *buf, size_t len,
    struct sp_ob_entry *e);

/* Encodes and seals e to the gateway's public key (crypto_box_seal). */
int sp_ob_entry_seal(const struct sp_ob_entry *e, const uint8_t pk[32],
    uint8_t **out_r, size_t *len_r);
/* Opens and decodes; SP_EAUTH when the key does not open it. */
SP_WUR int sp_ob_entry_open(const uint8_t *buf, size_t len,
    const uint8_t pk[32], const uint8_t sk[32], struct sp_ob_entry *e);

/* The earliest next of the pending recipients, or 0 when none is. */
uint64_t sp_ob_entry_due(const struct sp_ob_entry *e);

/* Reads DATA_DIR/gateway.pub (32 raw bytes).  0, ENOENT (no gateway has
 * started yet: outbound is not configured) or EINVAL/EIO. */
int sp_ob_pub_read(const char *data_dir, uint8_t pk[32]);

#endif
