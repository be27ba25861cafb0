/*
 * The mailbox model: folders, messages, flags and keywords, built by
 * applying the account's log in order (docs/format.md "Log records").
 *
 * - A message's id is the seq of the log record that added it; it never
 *   changes, also not when the message moves.
 * - Folders 1..6 always exist (INBOX, Sent, Drafts, Trash, Junk, Archive);
 *   a user folder's id is SP_MBOX_USER_BASE + the seq of the record that
 *   created it, so every device computes the same ids.
 * - UIDs: a message gets uid = the folder's uidnext (then uidnext + 1)
 *   each time it enters a folder, in log order.  Every device applies the
 *   same log in the same order, so UIDs are the same on every device and
 *   stable forever; a folder's UIDVALIDITY is its id and never changes.
 * - MODSEQ: the seq of the last record that changed the message; a
 *   folder's highest modseq is the largest over its messages and expunges.
 * - Conflicts resolve by log order: a change to a message or folder that an
 *   earlier record deleted is ignored; flag changes are add/remove sets, so
 *   concurrent changes of different flags both take effect.
 *
 * The model lives in the encrypted cache (cache.h) and in memory.
 * sp_mbox_apply() takes the records the syncer has put into the cache log
 * since the last apply and applies them in one cache batch with the new
 * "mbox_applied" mark, so a crash leaves model and log consistent.
 *
 * Changes (flags, move, delete, folders, new messages) are made by
 * appending records to the server log through an sp_client and then
 * pulling and applying: the log is the only truth, and the caller's view
 * is updated before these functions return.
 *
 * Not thread-safe: one thread at a time per sp_mbox (callers lock).
 * Pointers returned into the model stay valid until the next call that
 * applies records (sp_mbox_apply, any change, sp_mbox_sync).
 * Never logs, never exits.  Errors: 0 or an SP_E* / errno code as in
 * syncer.h, with a sentence in err where the function takes one.
 */
#ifndef SP_CLIENT_MAILBOX_H
#define SP_CLIENT_MAILBOX_H

#include <stddef.h>
#include <stdint.h>

#include "client-core/cache.h"
#include "client-core/sync_client.h"
#include "crypto/keyset.h"
#include "crypto/meta.h"

typedef struct sp_mbox sp_mbox;

enum {
	SP_MBOX_INBOX = 1,
	SP_MBOX_SENT = 2,
	SP_MBOX_DRAFTS = 3,
	SP_MBOX_TRASH = 4,
	SP_MBOX_JUNK = 5,
	SP_MBOX_ARCHIVE = 6,
};
#define SP_MBOX_USER_BASE 16u

/* Message flags: the SP_META_F_* bits of crypto/meta.h, plus: */
#define SP_MBOX_F_DELETED 0x40u  /* IMAP \Deleted (expunge removes) */
#define SP_MBOX_F_SYSTEM (SP_META_F_SEEN | SP_META_F_ANSWERED | \
    SP_META_F_FLAGGED | SP_META_F_DRAFT | SP_META_F_JUNK | SP_MBOX_F_DELETED)

#define SP_MBOX_NAME_MAX 1024    /* bytes of a folder's full name */
#define SP_MBOX_KEYWORD_MAX 64   /* bytes of one keyword */
#define SP_MBOX_KEYWORDS_MAX 32  /* keywords per message */
#define SP_MBOX_BATCH_MAX 4096   /* messages named by one change record */

struct sp_mbox_folder {
	uint32_t id;             /* also the UIDVALIDITY */
	char *name;              /* full name, '/' separates levels; UTF-8 */
	uint32_t uidnext;
	uint64_t highest_modseq;
	uint32_t exists, unseen, recent;
	int subscribed;
};

struct sp_mbox_msg {
	uint64_t id;             /* seq of the record that added it */
	uint32_t folder, uid;
	uint32_t flags;          /* SP_MBOX_F_SYSTEM bits */
	uint64_t modseq;
	uint64_t received;       /* seconds since the epoch (INTERNALDATE) */
	char **keywords;         /* nkeywords NUL-terminated strings */
	size_t nkeywords;
	struct sp_meta meta;     /* from the metadata record (decrypted) */
	int own;                 /* 1: written by this account (mailbox key),
	                          * 0: sealed to it (gateway, other senders) */
};

/* What sp_mbox_apply() changed, for IMAP IDLE and friends.  Called during
 * the apply, after the model changed; msg is valid during the call. */
enum sp_mbox_event {
	SP_MBOX_EV_NEW = 1,      /* msg entered folder (new, moved, copied) */
	SP_MBOX_EV_FLAGS,        /* msg's flags or keywords changed */
	SP_MBOX_EV_EXPUNGE,      /* msg (folder, uid) left folder */
	SP_MBOX_EV_FOLDERS,      /* a folder was created, renamed, deleted or
	                          * (un)subscribed; msg is NULL */
};
typedef void (*sp_mbox_listener)(void *arg, enum sp_mbox_event ev,
    uint32_t folder, const struct sp_mbox_msg *msg);

/*
 * Opens the model stored in cache (loading it into memory), for the
 * account whose keys are ks (used to open records and bodies; both stay
 * the caller's and must outlive the sp_mbox).  Does not apply anything.
 */
int sp_mbox_open(sp_cache *cache, const sp_keyset *ks, sp_mbox **mb_r);
void sp_mbox_close(sp_mbox *mb);

void sp_mbox_set_listener(sp_mbox *mb, sp_mbox_listener fn, void *arg);
/* Progress of sp_mbox_sync (records pulled of the log's last), or NULL. */
void sp_mbox_set_progress(sp_mbox *mb, void (*fn)(void *arg, uint64_t done,
    uint64_t total), void *arg);

/* Applies every record in the cache log after the last applied one.
 * *napplied_r (may be NULL) receives the number applied.  A record that
 * does not open or parse is skipped (counted in sp_mbox_skipped()), never
 * fatal: a hostile sender must not be able to stop a mailbox. */
int sp_mbox_apply(sp_mbox *mb, uint64_t *napplied_r);
uint64_t sp_mbox_skipped(const sp_mbox *mb);

/* Pull (syncer) then apply.  c must be logged in. */
int sp_mbox_sync(sp_mbox *mb, sp_client *c, char *err, size_t errlen);

/* ---- reading ---------------------------------------------------------- */

/* Folders, ordered by id.  The array belongs to the model. */
const struct sp_mbox_folder *sp_mbox_folders(sp_mbox *mb, size_t *n_r);
/* By id or by name (INBOX case-insensitive); NULL when there is none. */
const struct sp_mbox_folder *sp_mbox_folder(sp_mbox *mb, uint32_t id);
const struct sp_mbox_folder *sp_mbox_folder_by_name(sp_mbox *mb,
    const char *name);

/* The messages of a folder, ordered by uid (array owned by the model). */
int sp_mbox_list(sp_mbox *mb, uint32_t folder,
    const struct sp_mbox_msg *const **msgs_r, size_t *n_r);
/* A message by id; NULL when it does not exist (any more). */
const struct sp_mbox_msg *sp_mbox_msg(sp_mbox *mb, uint64_t id);

/* Signature state of a body after sp_mbox_body(). */
enum sp_mbox_sig {
	SP_MBOX_SIG_NONE = 0,    /* not signed */
	SP_MBOX_SIG_VALID,       /* verified; signer_pk is the key */
	SP_MBOX_SIG_BAD,         /* never returned: a bad signature is an
	                          * error (SP_ESIG) and no body is returned */
};

/*
 * The message's RFC 5322 bytes: from the cache, or fetched from the
 * server (c, which may be NULL to use the cache only: then ENOENT when
 * it is not there), decrypted, verified and cached.  *body_r is
 * malloc'd; the caller wipes (sodium_memzero) and frees it.  signer_pk
 * (may be NULL) receives the signer's identity key when *sig_r is
 * SP_MBOX_SIG_VALID; comparing it with the sender's pinned key is the
 * caller's part (keys.h).
 */
int sp_mbox_body(sp_mbox *mb, sp_client *c, uint64_t id, uint8_t **body_r,
    size_t *len_r, enum sp_mbox_sig *sig_r, uint8_t signer_pk[32],
    char *err, size_t errlen);

/*
 * Fetches, decrypts, verifies and caches the body of every message not
 * cached yet (an initial sync of a new device), pipelined; the cache
 * commits every 64 bodies.  A body that fails to open or verify is
 * skipped and counted in *failed_r (may be NULL); sp_mbox_body() on it
 * later says why.  progress (may be NULL) gets (done, total).
 */
int sp_mbox_fetch_bodies(sp_mbox *mb, sp_client *c,
    void (*progress)(void *arg, uint64_t done, uint64_t total), void *arg,
    size_t *failed_r, char *err, size_t errlen);

/* The same over several connections at once (each used by one thread
 * for the duration of the call; all logged in to this account). */
int sp_mbox_fetch_bodies_par(sp_mbox *mb, sp_client *const *cs, size_t ncs,
    void (*progress)(void *arg, uint64_t done, uint64_t total), void *arg,
    size_t *failed_r, char *err, size_t errlen);

/* ---- changing: append records, then pull and apply -------------------- */

/* Flags and keywords: adds then removes, for each message of ids. */
int sp_mbox_set_flags(sp_mbox *mb, sp_client *c, const uint64_t *ids,
    size_t n, uint32_t add, uint32_t remove, const char *const *kw_add,
    size_t nkw_add, const char *const *kw_remove, size_t nkw_remove,
    char *err, size_t errlen);

/* Moves messages to folder (they get new uids there). */
int sp_mbox_move(sp_mbox *mb, sp_client *c, const uint64_t *ids, size_t n,
    uint32_t folder, char *err, size_t errlen);

/* Copies messages to folder: new messages sharing the body blob.
 * new_ids_r (may be NULL) receives n ids. */
int sp_mbox_copy(sp_mbox *mb, sp_client *c, const uint64_t *ids, size_t n,
    uint32_t folder, uint64_t *new_ids_r, char *err, size_t errlen);

/* Deletes messages for good (IMAP EXPUNGE), and each body blob no other
 * message of the account still uses. */
int sp_mbox_delete(sp_mbox *mb, sp_client *c, const uint64_t *ids,
    size_t n, char *err, size_t errlen);

/* Folders.  Creating a name that exists is EEXIST; system folders cannot
 * be renamed or deleted (EPERM); deleting a folder deletes its messages. */
int sp_mbox_folder_create(sp_mbox *mb, sp_client *c, const char *name,
    uint32_t *id_r, char *err, size_t errlen);
int sp_mbox_folder_rename(sp_mbox *mb, sp_client *c, uint32_t id,
    const char *name, char *err, size_t errlen);
int sp_mbox_folder_delete(sp_mbox *mb, sp_client *c, uint32_t id,
    char *err, size_t errlen);
int sp_mbox_folder_subscribe(sp_mbox *mb, sp_client *c, uint32_t id,
    int on, char *err, size_t errlen);

/*
 * Adds a message of this account (IMAP APPEND, import, the Sent copy):
 * seals the body under the mailbox key (signed when sign is 1), uploads
 * it, and appends its metadata record (summary of msg, plus folder,
 * flags, keywords and received time; received 0 = now).  *id_r (may be
 * NULL) receives the new message's id.
 */
struct sp_mbox_add {
	uint32_t folder;
	uint32_t flags;
	const char *const *keywords;
	size_t nkeywords;
	uint64_t received;
	int sign;
	const char *bcc;         /* sender's copy only, or NULL */
};
int sp_mbox_add(sp_mbox *mb, sp_client *c, const struct sp_mbox_add *a,
    const uint8_t *msg, size_t len, uint64_t *id_r, char *err,
    size_t errlen);

/*
 * The same for a body envelope already uploaded as blob_id (internal
 * send: one body envelope sealed to every recipient and to the mailbox
 * key, shared by the recipients' copies and the Sent copy).  msg is the
 * plaintext, for the summary; it is not uploaded again.
 */
int sp_mbox_add_uploaded(sp_mbox *mb, sp_client *c,
    const struct sp_mbox_add *a, const uint8_t *msg, size_t len,
    const uint8_t blob_id[32], uint64_t *id_r, char *err, size_t errlen);

/* Adds n messages (a[i] for msgs[i]) with one APPEND per 128 and one
 * pull at the end: the import path.  On error the messages before the
 * failing one may have been added (*done_r, may be NULL, says how many). */
int sp_mbox_add_many(sp_mbox *mb, sp_client *c, const struct sp_mbox_add *a,
    const uint8_t *const *msgs, const size_t *lens, size_t n, size_t *done_r,
    char *err, size_t errlen);

/*
 * Writes a snapshot of the whole model after the log's last record (one
 * or more records, appended only while nobody else appends: SP_ESERVER
 * with "the log moved" otherwise, and nothing is compacted), then asks the
 * server to drop every record before it (COMPACT).  Devices that applied
 * the log already ignore the snapshot; a device whose records were
 * dropped before it applied them rebuilds its model from it.
 */
int sp_mbox_compact(sp_mbox *mb, sp_client *c, char *err, size_t errlen);

/* Uploads an envelope as a blob (BLOB_BEGIN/CHUNK/FINISH, resuming),
 * and puts its id in id_r. */
int sp_mbox_blob_put(sp_client *c, const uint8_t *blob, size_t len,
    uint8_t id_r[32], char *err, size_t errlen);

#endif
