/*
 * Accounts with logged-in connections, and the push of new records.
 *
 * Every subscribed connection has a cursor, next_seq: the first record it
 * has not been sent.  When a commit to the account is seen, a subscriber
 * whose cursor is exactly at the start of the new records gets them pushed
 * straight from memory; one that is behind (catching up after SUBSCRIBE,
 * or paused because its socket is slow) reads from the store instead, one
 * page at a time, until its cursor passes the last commit.  Either way the
 * records go out in order with no gap and no duplicate, because the cursor
 * only ever moves by what was queued.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "server/sync/sync.h"

#define PUSH_PAGE_BYTES (1024u * 1024)
#define PUSH_HIGH_WATER (4u * 1024 * 1024)

int sp_sync_read_page(sp_store *st, const char *address, uint64_t from,
    size_t max_records, size_t max_bytes, struct sp_frame *r, uint8_t **buf_r,
    uint64_t *first_r, uint64_t *lastseen_r, uint64_t *last_r);

static unsigned
bucket(const char *address)
{
	uint32_t h = 2166136261u;

	while (*address)
		h = (h ^ (uint8_t)*address++) * 16777619u;
	return h % SP_ACCT_BUCKETS;
}

struct sp_acct *
sp_acct_get(struct sp_sync *s, const char *address, int create)
{
	unsigned b = bucket(address);
	struct sp_acct *a;

	for (a = s->accts[b]; a; a = a->next)
		if (strcmp(a->address, address) == 0)
			return a;
	if (!create || (a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	memcpy(a->address, address, strlen(address) + 1);
	LIST_INIT(&a->conns);
	a->next = s->accts[b];
	s->accts[b] = a;
	return a;
}

static void
acct_release(struct sp_sync *s, struct sp_acct *a)
{
	struct sp_acct **pp;

	if (a->nconns > 0)
		return;
	for (pp = &s->accts[bucket(a->address)]; *pp; pp = &(*pp)->next)
		if (*pp == a) {
			*pp = a->next;
			free(a);
			return;
		}
}

void
sp_acct_attach(struct sp_sync *s, struct sp_conn *c)
{
	struct sp_acct *a = sp_acct_get(s, c->address, 1);

	if (a == NULL) {
		sp_conn_close(c);
		return;
	}
	c->acct = a;
	LIST_INSERT_HEAD(&a->conns, c, acct_entry);
	a->nconns++;
}

void
sp_acct_detach(struct sp_sync *s, struct sp_conn *c)
{
	struct sp_acct *a = c->acct;

	if (a == NULL)
		return;
	LIST_REMOVE(c, acct_entry);
	a->nconns--;
	c->acct = NULL;
	c->subscribed = 0;
	acct_release(s, a);
}

void
sp_session_id(const uint8_t token_hash[32], uint8_t id_r[16])
{
	static const char ctx[] = "sealpost-session-id";
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, 16);
	crypto_generichash_update(&st, (const uint8_t *)ctx, sizeof(ctx) - 1);
	crypto_generichash_update(&st, token_hash, 32);
	crypto_generichash_final(&st, id_r, 16);
}

/* Encodes a PUSH of records [first .. first+n-1] and queues it; -1 when
 * they do not fit one frame (an APPEND at the very limit: its PUSH carries
 * a few more bytes), and the caller reads them in pages instead. */
static int
push_records(struct sp_conn *c, uint64_t first, uint64_t last,
    const struct sp_store_rec *recs, size_t n, uint64_t t_commit)
{
	struct sp_frame r;
	uint8_t *buf;
	size_t len, i;

	sp_frame_init(&r, SP_MSG_PUSH, 0);
	sp_frame_set_uint(&r, SP_F_SEQ, first);
	sp_frame_set_uint(&r, SP_F_LAST, last);
	sp_frame_set_array_empty(&r, SP_F_RECORDS);
	for (i = 0; i < n; i++)
		(void)sp_frame_add_item(&r, SP_F_RECORDS, recs[i].data,
		    recs[i].len, 0);
	if (sp_frame_encode(&r, LWS_PRE, &buf, &len) != 0)
		return -1;
	c->srv->m.records_pushed += n;
	sp_conn_send(c, buf, len, t_commit);
	return 0;
}

/* ---- catch-up reads on the thread pool --------------------------------- */

struct push_read {
	uv_work_t req;
	struct sp_conn *c;
	char address[SP_STORE_ADDR_MAX + 1];
	uint64_t from, first, lastseen, last;
	uint8_t *buf;
	uint8_t *frame;
	size_t frame_len;
	size_t n;
	int rc;
};

static void catch_up(struct sp_sync *s, struct sp_conn *c);
static void session_gone(struct sp_conn *c, const char *why);

static void
push_read_work(uv_work_t *req)
{
	struct push_read *p = req->data;
	struct sp_frame r;

	sp_frame_init(&r, SP_MSG_PUSH, 0);
	p->rc = sp_sync_read_page(p->c->srv->store, p->address, p->from, 0,
	    PUSH_PAGE_BYTES, &r, &p->buf, &p->first, &p->lastseen, &p->last);
	if (p->rc != 0)
		return;
	sp_frame_array(&r, SP_F_RECORDS, &p->n);
	if (p->n == 0)
		return;
	sp_frame_set_uint(&r, SP_F_SEQ, p->first);
	sp_frame_set_uint(&r, SP_F_LAST, p->last);
	p->rc = sp_frame_encode(&r, LWS_PRE, &p->frame, &p->frame_len);
}

static void
push_read_after(uv_work_t *req, int status)
{
	struct push_read *p = req->data;
	struct sp_conn *c = p->c;
	struct sp_sync *s = c->srv;

	s->jobs_in_flight--;
	c->sub_reading = 0;
	if (status == 0 && p->rc == 0 && c->wsi && c->subscribed &&
	    c->next_seq == p->from) {
		if (p->n > 0) {
			s->m.records_pushed += p->n;
			sp_conn_send(c, p->frame, p->frame_len,
			    c->acct && c->acct->last <= p->lastseen ?
			    c->acct->last_commit_ns : 0);
			p->frame = NULL;
			c->next_seq = p->lastseen + 1;
		}
		if (c->acct && p->last > c->acct->last)
			c->acct->last = p->last;
		catch_up(s, c);
	} else if (c->wsi && p->rc != 0) {
		sp_conn_close(c);
	}
	free(p->frame);
	free(p->buf);
	free(p);
	sp_conn_unref(c);       /* the reference catch_up() took */
}

static void
catch_up(struct sp_sync *s, struct sp_conn *c)
{
	struct push_read *p;

	if (!c->subscribed || c->sub_reading || c->acct == NULL ||
	    c->next_seq > c->acct->last || c->out_bytes >= PUSH_HIGH_WATER ||
	    s->stopping)
		return;
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		sp_conn_close(c);
		return;
	}
	p->c = c;
	memcpy(p->address, c->address, sizeof(p->address));
	p->from = c->next_seq;
	p->req.data = p;
	c->sub_reading = 1;
	c->refs++;
	s->jobs_in_flight++;
	uv_queue_work(s->loop, &p->req, push_read_work, push_read_after);
}

void
sp_hub_subscribe(struct sp_sync *s, struct sp_conn *c, uint64_t from,
    uint64_t last)
{
	if (c->acct == NULL)
		return;
	c->subscribed = 1;
	c->next_seq = from ? from : 1;
	if (last > c->acct->last)
		c->acct->last = last;
	catch_up(s, c);
}

void
sp_hub_committed(struct sp_sync *s, const char *address, uint64_t first,
    uint64_t last, const struct sp_store_rec *recs, size_t nrecs)
{
	struct sp_acct *a = sp_acct_get(s, address, 0);
	struct sp_conn *c;
	uint64_t t = sp_now_ns();

	if (a == NULL)
		return;         /* nobody of that account is connected */
	if (last > a->last) {
		a->last = last;
		a->last_commit_ns = t;
	}
	LIST_FOREACH(c, &a->conns, acct_entry) {
		if (!c->subscribed)
			continue;
		if (!c->sub_reading && c->next_seq == first &&
		    c->out_bytes < PUSH_HIGH_WATER &&
		    push_records(c, first, a->last, recs, nrecs, t) == 0)
			c->next_seq = last + 1;
		else
			catch_up(s, c);
	}
}

void
sp_hub_external(struct sp_sync *s, const char *address)
{
	struct sp_acct *a = sp_acct_get(s, address, 0);
	struct sp_conn *c;
	uint64_t last;

	if (a == NULL)
		return;
	/* An LMDB read never waits for a writer: fine on the loop thread. */
	if (sp_store_log_last(s->store, a->address, &last) != 0 ||
	    last <= a->last)
		return;
	a->last = last;
	a->last_commit_ns = sp_now_ns();
	LIST_FOREACH(c, &a->conns, acct_entry)
		if (c->subscribed && c->state != SP_CONN_CLOSING)
			catch_up(s, c);
}

void
sp_hub_drained(struct sp_sync *s, struct sp_conn *c)
{
	catch_up(s, c);
}

void
sp_hub_revoke(struct sp_sync *s, const char *address,
    const uint8_t session_id[16])
{
	struct sp_acct *a = sp_acct_get(s, address, 0);
	struct sp_conn *c;
	uint8_t id[16];

	if (a == NULL)
		return;
	LIST_FOREACH(c, &a->conns, acct_entry) {
		sp_session_id(c->token_hash, id);
		/* Cut off at once: tell it why, then close. */
		if (sodium_memcmp(id, session_id, 16) == 0)
			session_gone(c, "session revoked");
	}
}

/* Ends a connection whose session or account is gone (id 0 ERROR AUTH,
 * then close 4001). */
static void
session_gone(struct sp_conn *c, const char *why)
{
	uint8_t *buf;
	size_t len;

	c->subscribed = 0;
	if (sp_frame_error(0, SP_PERR_AUTH, why, LWS_PRE, &buf, &len) == 0)
		sp_conn_send(c, buf, len, 0);
	sp_conn_close_code(c, 4001);
}

/*
 * The operator's tool changes the store from another process: it disables
 * and deletes accounts and ends their sessions.  Every few seconds the
 * server looks at the accounts and sessions it has connections for, and
 * cuts those that no longer exist.  LMDB reads are cheap and never wait
 * for a writer, so this runs on the loop thread.
 */
void
sp_hub_sweep(struct sp_sync *s)
{
	struct sp_store_account acct;
	struct sp_store_session ss;
	struct sp_acct *a;
	struct sp_conn *c;
	unsigned b;

	for (b = 0; b < SP_ACCT_BUCKETS; b++) {
		for (a = s->accts[b]; a; a = a->next) {
			int gone = sp_store_account_get(s->store, a->address,
			    &acct) == ENOENT ||
			    (acct.flags & SP_STORE_ACCT_DISABLED);

			/* A notify datagram from the gateway can be lost
			 * (full socket buffer, server restart): catch up. */
			if (!gone)
				sp_hub_external(s, a->address);

			LIST_FOREACH(c, &a->conns, acct_entry) {
				if (c->state == SP_CONN_CLOSING)
					continue;
				if (gone)
					session_gone(c, "account disabled");
				else if (sp_store_session_get(s->store,
				    c->token_hash, &ss) == ENOENT)
					session_gone(c, "session ended");
			}
		}
	}
}
