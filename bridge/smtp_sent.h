/*
 * The Sent copy is stored once.  A submission through the bridge's SMTP
 * stores the Sent copy itself (client-core send.h), and many mail clients
 * (Thunderbird by default) then also APPEND the same message to Sent over
 * IMAP.  This small registry remembers, per account, the Message-IDs the
 * bridge submitted in the last SMTP_SENT_WINDOW seconds and the id of the
 * Sent copy it stored; an APPEND to the Sent folder of a message with one
 * of those Message-IDs succeeds without adding anything and names the
 * stored copy in its APPENDUID (bridge/README.md, "The Sent copy").
 *
 * Each entry answers one APPEND only: a second APPEND of the same message
 * (the user really wants two) adds a copy.  Entries live in memory only:
 * after a restart of the bridge nothing is recognised (a duplicate is
 * then possible, never a lost message).
 *
 * Thread-safe (one lock).  Never logs.
 */
#ifndef SP_BRIDGE_SMTP_SENT_H
#define SP_BRIDGE_SMTP_SENT_H

#include <stddef.h>
#include <stdint.h>

#include "bridge/bridge_account.h"

#define SMTP_SENT_WINDOW 600     /* seconds an entry is kept */
#define SMTP_SENT_MAX 256        /* entries kept in all (oldest dropped) */

/* The bridge submitted a message with this Message-ID (without <>) and
 * stored its Sent copy as message sent_id. */
void smtp_sent_note(const bridge_account *a, const char *message_id,
    uint64_t sent_id);

/*
 * An APPEND of msg (len bytes) to a's Sent folder: when its Message-ID
 * was submitted within the window, the entry is consumed, *sent_id_r is
 * the stored copy and 1 is returned; else 0.  now = time(NULL) normally
 * (given, so the unit test can age entries).
 */
int smtp_sent_take(const bridge_account *a, const uint8_t *msg, size_t len,
    uint64_t now, uint64_t *sent_id_r);

/* Forgets every entry of a (the account is closing).  NULL ok. */
void smtp_sent_forget(const bridge_account *a);

#endif
