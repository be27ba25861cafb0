/*
 * The gateway's X25519 key pair (docs/format.md §13): clients seal
 * outbound messages to its public half, the sync server seals queue
 * entries to it, and only the gateway process holds the secret.
 *
 *   DATA_DIR/gateway.key   32 raw bytes, the secret, mode 0600
 *   DATA_DIR/gateway.pub   32 raw bytes, the public key, mode 0644
 *
 * Created on the gateway's first start (both files, the secret written
 * and fsync'd before the public one appears, so a reader that sees the
 * public key can count on the secret existing).  Never logs, never exits.
 */
#ifndef SP_GW_OUTBOUND_KEY_H
#define SP_GW_OUTBOUND_KEY_H

#include <stdint.h>

struct sp_ob_key {
	uint8_t pk[32];
	uint8_t *sk;     /* 32 bytes of sodium_malloc memory */
};

/* Loads the pair, creating it if neither file exists.  0, or an errno
 * (EINVAL: the files do not belong together or have the wrong size). */
int sp_ob_key_load(const char *data_dir, struct sp_ob_key *k);
/* Wipes and frees the secret; accepts a zeroed struct. */
void sp_ob_key_free(struct sp_ob_key *k);

#endif
