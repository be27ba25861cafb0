/*
 * The recently submitted Message-IDs; see smtp_sent.h.
 *
 * Why Message-ID and not the bytes: the copy a client appends is not the
 * bytes it submitted (Thunderbird keeps the Bcc header in its Sent copy
 * and may re-encode headers), while the Message-ID is the client's own
 * name for the message.  A hash of it is kept, not the text.
 */
#include "bridge/smtp_sent.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "crypto/meta.h"
#include "proto/summary.h"

struct entry {
	const bridge_account *a;
	uint8_t h[32];
	uint64_t sent_id;
	uint64_t when;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry entries[SMTP_SENT_MAX];
static size_t next_slot;

static void
hash_id(const char *id, uint8_t h[32])
{
	crypto_generichash(h, 32, (const unsigned char *)id, strlen(id),
	    NULL, 0);
}

void
smtp_sent_note(const bridge_account *a, const char *message_id,
    uint64_t sent_id)
{
	struct entry *e;

	if (message_id == NULL || message_id[0] == 0 || sent_id == 0)
		return;
	pthread_mutex_lock(&lock);
	e = &entries[next_slot];
	next_slot = (next_slot + 1) % SMTP_SENT_MAX;
	e->a = a;
	hash_id(message_id, e->h);
	e->sent_id = sent_id;
	e->when = (uint64_t)time(NULL);
	pthread_mutex_unlock(&lock);
}

int
smtp_sent_take(const bridge_account *a, const uint8_t *msg, size_t len,
    uint64_t now, uint64_t *sent_id_r)
{
	struct sp_meta m;
	uint8_t h[32];
	size_t i;
	int found = 0;

	*sent_id_r = 0;
	if (sp_summary_from_message(msg, len, &m) != 0)
		return 0;
	if (m.message_id == NULL || m.message_id[0] == 0) {
		sp_meta_finish(&m);
		return 0;
	}
	hash_id(m.message_id, h);
	sp_meta_finish(&m);
	pthread_mutex_lock(&lock);
	for (i = 0; i < SMTP_SENT_MAX && !found; i++) {
		struct entry *e = &entries[i];

		if (e->a != a || e->sent_id == 0 ||
		    now > e->when + SMTP_SENT_WINDOW ||
		    sodium_memcmp(e->h, h, 32) != 0)
			continue;
		*sent_id_r = e->sent_id;
		memset(e, 0, sizeof(*e));
		found = 1;
	}
	pthread_mutex_unlock(&lock);
	return found;
}

void
smtp_sent_forget(const bridge_account *a)
{
	size_t i;

	pthread_mutex_lock(&lock);
	for (i = 0; i < SMTP_SENT_MAX; i++)
		if (entries[i].a == a)
			memset(&entries[i], 0, sizeof(entries[i]));
	pthread_mutex_unlock(&lock);
}
