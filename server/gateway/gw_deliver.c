/*
 * Delivery of inbound mail (gw_deliver.h): seal, store, notify.
 *
 * Per recipient the message becomes two envelopes sealed to the
 * recipient's X25519 key, which is read from the key set the account
 * registered (its self-signature is checked here too, so a damaged store
 * entry is not silently used):
 *   - the body: the message bytes exactly as received, as a blob;
 *   - the log record: the metadata record (summary, auth results, spam
 *     verdict, blob id, Junk hint), a kind-2 envelope (format.md §12).
 * Both go to the store in one operation (sp_store_deliver), which joins
 * the store's group commit, so many sessions share one fsync.  Then one
 * datagram on the server's notify socket makes it push the record to the
 * account's connected devices at once; if that datagram is lost, the
 * server's periodic sweep finds the new record anyway.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto/envelope.h"
#include "crypto/meta.h"
#include "crypto/pubkeys.h"
#include "proto/summary.h"
#include "server/gateway/gw_deliver.h"
#include "server/store/store.h"

#define DOMAIN_MAX 253

struct sp_gw_deliver {
	sp_store *store;
	char **domains;
	size_t ndomains;
	struct sockaddr_un notify;
	int notify_fd;
};

static const char *const errstr[] = {
	"no such user here",
	"relaying denied: we do not serve that domain",
	"mailbox full",
	"temporary failure in the mail store",
	"bad recipient address syntax",
};

const char *
sp_gw_deliver_strerror(int err)
{
	if (err == 0)
		return "delivered";
	if (err >= SP_GW_ENOUSER && err <= SP_GW_ESYNTAX)
		return errstr[err - SP_GW_ENOUSER];
	return strerror(err > 0 ? err : EIO);
}

struct sp_store *
sp_gw_deliver_store(sp_gw_deliver *d)
{
	return d->store;
}

int
sp_gw_deliver_open(const struct sp_gw_deliver_opts *o, sp_gw_deliver **d_r)
{
	struct sp_store_opts so = { .no_sync = o->no_sync };
	sp_gw_deliver *d;
	size_t i;
	int rc;

	*d_r = NULL;
	if (o->data_dir == NULL || o->ndomains == 0)
		return EINVAL;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return ENOMEM;
	d->notify_fd = -1;
	if ((d->domains = calloc(o->ndomains, sizeof(char *))) == NULL) {
		rc = ENOMEM;
		goto fail;
	}
	for (i = 0; i < o->ndomains; i++) {
		if (strlen(o->domains[i]) > DOMAIN_MAX) {
			rc = EINVAL;
			goto fail;
		}
		if ((d->domains[i] = strdup(o->domains[i])) == NULL) {
			rc = ENOMEM;
			goto fail;
		}
		d->ndomains++;
	}
	d->notify.sun_family = AF_UNIX;
	if (o->notify_path)
		rc = snprintf(d->notify.sun_path, sizeof(d->notify.sun_path),
		    "%s", o->notify_path);
	else
		rc = snprintf(d->notify.sun_path, sizeof(d->notify.sun_path),
		    "%s/notify.sock", o->data_dir);
	if (rc < 0 || (size_t)rc >= sizeof(d->notify.sun_path)) {
		rc = ENAMETOOLONG;
		goto fail;
	}
	d->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0);
	if (d->notify_fd < 0) {
		rc = errno;
		goto fail;
	}
	{
		char sdir[4096];

		rc = snprintf(sdir, sizeof(sdir), "%s/store", o->data_dir);
		if (rc < 0 || (size_t)rc >= sizeof(sdir)) {
			rc = ENAMETOOLONG;
			goto fail;
		}
		/* The server creates it; a gateway started first must not
		 * make an empty store the server would then share. */
		if (access(sdir, F_OK) != 0) {
			rc = errno;
			goto fail;
		}
		if ((rc = sp_store_open(sdir, &so, &d->store)) != 0)
			goto fail;
	}
	*d_r = d;
	return 0;
fail:
	sp_gw_deliver_close(d);
	return rc;
}

void
sp_gw_deliver_close(sp_gw_deliver *d)
{
	size_t i;

	if (d == NULL)
		return;
	sp_store_close(d->store);
	if (d->notify_fd >= 0)
		close(d->notify_fd);
	for (i = 0; i < d->ndomains; i++)
		free(d->domains[i]);
	free(d->domains);
	free(d);
}

/* Lower-cases address into out and checks the shape local@domain. */
static int
addr_canon(const char *address, char out[SP_STORE_ADDR_MAX + 1],
    const char **domain_r)
{
	const char *at;
	size_t i, n = strlen(address);

	if (n == 0 || n > SP_STORE_ADDR_MAX)
		return SP_GW_ESYNTAX;
	for (i = 0; i <= n; i++) {
		unsigned char c = (unsigned char)address[i];

		if (i < n && (c <= 0x20 || c == 0x7f))
			return SP_GW_ESYNTAX;
		out[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
	}
	at = strrchr(out, '@');
	if (at == NULL || at == out || at[1] == 0)
		return SP_GW_ESYNTAX;
	*domain_r = at + 1;
	return 0;
}

static int
serves(const sp_gw_deliver *d, const char *domain)
{
	size_t i;

	for (i = 0; i < d->ndomains; i++)
		if (strcasecmp(d->domains[i], domain) == 0)
			return 1;
	return 0;
}

int
sp_gw_deliver_rcpt(sp_gw_deliver *d, const char *address)
{
	struct sp_store_account a;
	char addr[SP_STORE_ADDR_MAX + 1];
	const char *domain;
	int rc;

	if ((rc = addr_canon(address, addr, &domain)) != 0)
		return rc;
	if (!serves(d, domain))
		return SP_GW_ERELAY;
	rc = sp_store_account_get(d->store, addr, &a);
	if (rc == ENOENT || (rc == 0 && (a.flags & SP_STORE_ACCT_DISABLED)))
		return SP_GW_ENOUSER;
	return rc == 0 ? SP_GW_OK : SP_GW_ETEMP;
}

/* The recipient's X25519 key from its self-signed key set. */
static int
recipient_key(sp_gw_deliver *d, const char *addr, uint8_t pk[32])
{
	struct sp_pubkeys pub;
	uint8_t *keys = NULL;
	size_t len = 0;
	int rc;

	rc = sp_store_pubkeys_get(d->store, addr, &keys, &len);
	if (rc == ENOENT)
		return SP_GW_ENOUSER;
	if (rc != 0)
		return SP_GW_ETEMP;
	if (sp_pubkeys_parse(keys, len, &pub) != 0 ||
	    strcmp(pub.address, addr) != 0)
		rc = SP_GW_ETEMP; /* a damaged entry: keep the mail queued */
	else
		memcpy(pk, pub.encryption_pk, 32);
	free(keys);
	return rc;
}

/* "auth results" and "spam verdict" join into the record's text fields. */
static int
deliver_one(sp_gw_deliver *d, const char *address, const uint8_t *msg,
    size_t len, const struct sp_meta *summary, const struct sp_gw_verdict *v)
{
	struct sp_envelope_seal_args sa = { .n_recipients = 1 };
	struct sp_store_rec rec;
	struct sp_meta m;
	struct sockaddr_un *un = &d->notify;
	char addr[SP_STORE_ADDR_MAX + 1];
	const char *domain;
	uint8_t pk[32], id[32], *body = NULL, *meta = NULL, *env = NULL;
	size_t body_len = 0, meta_len = 0, env_len = 0;
	int rc;

	if ((rc = addr_canon(address, addr, &domain)) != 0)
		return rc;
	if (!serves(d, domain))
		return SP_GW_ERELAY;
	if ((rc = recipient_key(d, addr, pk)) != 0)
		return rc;
	sa.recipients = (const uint8_t (*)[32])pk;
	sa.kind = SP_ENVELOPE_KIND_BODY;
	if (sp_envelope_seal(&sa, msg, len, &body, &body_len) != 0)
		return SP_GW_ETEMP;
	crypto_generichash(id, sizeof(id), body, body_len, NULL, 0);

	/* The summary's strings are borrowed, not copied: m is not finished. */
	m = *summary;
	m.blob_id = id;
	m.blob_id_len = sizeof(id);
	m.auth_results = (char *)(uintptr_t)(v ? v->auth_results : NULL);
	m.spam = (char *)(uintptr_t)(v ? v->spam : NULL);
	m.received = (uint64_t)time(NULL);
	m.has_received = 1;
	if (v && v->junk) {
		m.folder = (char *)(uintptr_t)"Junk";
		m.flags = SP_META_F_JUNK;
		m.has_flags = 1;
	}
	if (sp_meta_encode(&m, &meta, &meta_len) != 0) {
		rc = SP_GW_ETEMP;
		goto out;
	}
	sa.kind = SP_ENVELOPE_KIND_META;
	if (sp_envelope_seal(&sa, meta, meta_len, &env, &env_len) != 0) {
		rc = SP_GW_ETEMP;
		goto out;
	}
	rec.data = env;
	rec.len = env_len;
	rc = sp_store_deliver(d->store, addr, id, body, body_len, &rec, 1,
	    NULL, NULL);
	if (rc == SP_STORE_EQUOTA) {
		rc = SP_GW_EQUOTA;
		goto out;
	}
	if (rc == ENOENT) {
		rc = SP_GW_ENOUSER;
		goto out;
	}
	if (rc != 0) {
		rc = SP_GW_ETEMP;
		goto out;
	}
	/* Durable now.  The push is best effort: the sweep is the backstop. */
	(void)sendto(d->notify_fd, addr, strlen(addr), MSG_DONTWAIT,
	    (struct sockaddr *)un, sizeof(*un));
out:
	if (meta) {
		sodium_memzero(meta, meta_len);
		free(meta);
	}
	free(env);
	free(body);
	return rc;
}

int
sp_gw_deliver_message(sp_gw_deliver *d, const char *const *rcpts,
    size_t n, const uint8_t *msg, size_t len, const struct sp_gw_verdict *v,
    int *results)
{
	struct sp_meta summary;
	size_t i;
	int rc, first_err = 0, delivered = 0;

	if (d == NULL || rcpts == NULL || n == 0 || msg == NULL ||
	    results == NULL)
		return EINVAL;
	if ((rc = sp_summary_from_message(msg, len, &summary)) != 0) {
		/* Unparseable headers still deliver: the body is kept as is. */
		memset(&summary, 0, sizeof(summary));
		summary.size = len;
		summary.has_size = 1;
	}
	for (i = 0; i < n; i++) {
		results[i] = deliver_one(d, rcpts[i], msg, len, &summary, v);
		if (results[i] == 0)
			delivered++;
		else if (first_err == 0)
			first_err = results[i];
	}
	sp_meta_finish(&summary);
	return delivered > 0 ? 0 : first_err;
}
