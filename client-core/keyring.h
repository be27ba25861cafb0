/*
 * The desktop keyring (the freedesktop Secret Service: GNOME Keyring,
 * KWallet, KeePassXC; through libsecret) as the home of a cache's local
 * key, so a device opens its mail without asking for the password on every
 * start (docs/threat-model.md, "Stolen laptop").  DIR/cache.key, wrapped by
 * the password, stays the fallback where no keyring runs.
 *
 * An entry is named by the cache directory's absolute path (attribute
 * "cache"), labelled with the account address.  The secret is the 32-byte
 * key in base64.
 *
 * The keyring is used only when a session bus is announced
 * ($DBUS_SESSION_BUS_ADDRESS) and $SEALPOST_NO_KEYRING is not set: a
 * headless machine never waits for a keyring that is not there.
 * Never logs, never exits.  Return codes: 0; ENOENT no entry; ENOTSUP no
 * keyring here; EIO the keyring refused (locked, an error).
 */
#ifndef SP_CLIENT_KEYRING_H
#define SP_CLIENT_KEYRING_H

#include <stdint.h>

/* 1 when a keyring may be asked (see above), 0 otherwise. */
int sp_keyring_enabled(void);

/* Stores key (32 bytes) for cache directory dir. */
int sp_keyring_store(const char *dir, const char *address,
    const uint8_t key[32]);

/* Fetches it into *key_r (sodium_malloc'd, 32 bytes; sodium_free it). */
int sp_keyring_load(const char *dir, uint8_t **key_r);

/* Removes the entry (0 also when there was none). */
int sp_keyring_delete(const char *dir);

#endif
