/*
 * The outbound worker (outbound_worker.h).
 *
 * Threads poll the queue once a second (and at once when woken at stop).
 * An entry is claimed by putting its id in the in-flight table under the
 * worker's lock, so two threads never work one entry; the store is the
 * only state that outlives an attempt.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

#include "crypto/envelope.h"
#include "server/gateway/auth/gw_dns.h"
#include "server/gateway/dkim_sign.h"
#include "server/gateway/outbound_dsn.h"
#include "server/gateway/outbound_entry.h"
#include "server/gateway/outbound_key.h"
#include "server/gateway/outbound_mtasts.h"
#include "server/gateway/outbound_smtp.h"
#include "server/gateway/outbound_worker.h"
#include "server/store/store.h"

#define THREADS_MAX 64
#define INFLIGHT_MAX THREADS_MAX
#define MX_MAX 8
#define ADDRS_PER_MX 4
#define MSG_MAX ((size_t)64 << 20)

struct sp_ob_worker {
	struct sp_ob_worker_opts o;
	sp_store *store;
	struct sp_ob_key key;
	struct sp_gw_dns_conf dns;
	pthread_t th[THREADS_MAX];
	unsigned nth;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
	uint8_t inflight[INFLIGHT_MAX][16];
	int inflight_used[INFLIGHT_MAX];
};

static void logf_(sp_ob_worker *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
logf_(sp_ob_worker *w, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (w->o.log == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	w->o.log(w->o.log_arg, line);
}

/* ---- claiming entries --------------------------------------------------- */

struct claim {
	sp_ob_worker *w;
	int found;
	uint8_t id[16];
	uint8_t *data;
	size_t len;
};

/* Called with w->mu held (inside queue_due). */
static int
claim_fn(const uint8_t id[16], uint64_t due, const void *data, size_t len,
    void *arg)
{
	struct claim *c = arg;
	sp_ob_worker *w = c->w;
	int i, slot = -1;

	(void)due;
	for (i = 0; i < INFLIGHT_MAX; i++) {
		if (w->inflight_used[i] && memcmp(w->inflight[i], id, 16) == 0)
			return 0;
		if (!w->inflight_used[i] && slot < 0)
			slot = i;
	}
	if (slot < 0 || (c->data = malloc(len)) == NULL)
		return 1;
	memcpy(c->data, data, len);
	c->len = len;
	memcpy(c->id, id, 16);
	memcpy(w->inflight[slot], id, 16);
	w->inflight_used[slot] = 1;
	c->found = 1;
	return 1;
}

static void
release(sp_ob_worker *w, const uint8_t id[16])
{
	int i;

	pthread_mutex_lock(&w->mu);
	for (i = 0; i < INFLIGHT_MAX; i++)
		if (w->inflight_used[i] && memcmp(w->inflight[i], id, 16) == 0)
			w->inflight_used[i] = 0;
	pthread_mutex_unlock(&w->mu);
}

/* ---- the message -------------------------------------------------------- */

/* Reads and opens the blob: the plaintext in sodium_malloc memory. */
static int
load_message(sp_ob_worker *w, const uint8_t id[32], uint8_t **msg_r,
    size_t *len_r)
{
	uint8_t *env = NULL, *chunk, *plain = NULL;
	sp_envelope *e = NULL;
	uint64_t size, idx, off = 0, clen;
	size_t n;
	int rc;

	*msg_r = NULL;
	if ((rc = sp_store_blob_stat(w->store, id, &size)) != 0)
		return rc;
	if (size > MSG_MAX * 2 || (env = malloc(size ? size : 1)) == NULL)
		return ENOMEM;
	for (idx = 0; off < size; idx++) {
		if ((rc = sp_store_blob_read(w->store, id, idx, &chunk,
		    &n)) != 0)
			goto out;
		if (n == 0 || n > size - off) {
			free(chunk);
			rc = EIO;
			goto out;
		}
		memcpy(env + off, chunk, n);
		off += n;
		free(chunk);
	}
	if ((rc = sp_envelope_open_raw(env, size, w->key.pk, w->key.sk, NULL,
	    &e)) != 0)
		goto out;
	clen = sp_envelope_content_length(e);
	if (sp_envelope_kind(e) != SP_ENVELOPE_KIND_BODY || clen > MSG_MAX ||
	    clen == 0) {
		rc = SP_EFORMAT;
		goto out;
	}
	if ((plain = sodium_malloc(clen)) == NULL) {
		rc = ENOMEM;
		goto out;
	}
	if ((rc = sp_envelope_read_all(e, plain, clen)) != 0) {
		sodium_free(plain);
		goto out;
	}
	*msg_r = plain;
	*len_r = clen;
out:
	sp_envelope_close(e);
	free(env);
	return rc;
}

/* The DKIM-signed message: signature fields in front of msg. */
static int
sign_message(sp_ob_worker *w, const char *mail_from, const uint8_t *msg,
    size_t len, uint8_t **out_r, size_t *len_r)
{
	const char *dom = strrchr(mail_from, '@');
	char *hdr = NULL, err[160] = "";
	size_t hl = 0;
	int n = 0, rc;

	rc = sp_dkim_sign(w->o.data_dir, dom ? dom + 1 : "", msg, len,
	    time(NULL), &hdr, &n, err, sizeof(err));
	if (rc != 0)
		logf_(w, "outbound: unsigned: %s", err);
	if (hdr != NULL)
		hl = strlen(hdr);
	if ((*out_r = sodium_malloc(hl + len + 1)) == NULL) {
		free(hdr);
		return ENOMEM;
	}
	memcpy(*out_r, hdr, hl);
	memcpy(*out_r + hl, msg, len);
	*len_r = hl + len;
	free(hdr);
	return 0;
}

/* ---- routing ------------------------------------------------------------ */

struct mx {
	char host[256];
	int pref;
};

static int
mx_cmp(const void *a, const void *b)
{
	return ((const struct mx *)a)->pref - ((const struct mx *)b)->pref;
}

/*
 * The domain's MX hosts in preference order, or the domain itself when
 * it has no MX (RFC 5321 5.1).  Returns the count, 0 for a permanent
 * "no route" (NXDOMAIN, null MX RFC 7505), -1 for a temporary failure.
 */
static int
route(sp_ob_worker *w, const char *domain, struct mx *mx, char *why,
    size_t whylen)
{
	struct sp_gw_dns_answer a;
	int st, i, n = 0;

	st = sp_gw_dns_query(&w->dns, domain, ns_t_mx, &a);
	if (st == SP_GW_DNS_NXDOMAIN) {
		snprintf(why, whylen, "domain %s does not exist", domain);
		return 0;
	}
	if (st == SP_GW_DNS_NODATA) {
		snprintf(mx[0].host, sizeof(mx[0].host), "%s", domain);
		mx[0].pref = 0;
		return 1;
	}
	if (st != SP_GW_DNS_OK) {
		snprintf(why, whylen, "MX lookup for %s failed", domain);
		return -1;
	}
	for (i = 0; i < a.n && n < MX_MAX; i++) {
		if (a.rr[i].type != ns_t_mx)
			continue;
		if (a.rr[i].len == 0 || strcmp((char *)a.rr[i].data, ".") == 0) {
			sp_gw_dns_answer_free(&a);
			snprintf(why, whylen, "domain %s accepts no mail (null "
			    "MX)", domain);
			return 0;
		}
		snprintf(mx[n].host, sizeof(mx[n].host), "%s",
		    (char *)a.rr[i].data);
		mx[n++].pref = a.rr[i].pref;
	}
	sp_gw_dns_answer_free(&a);
	qsort(mx, (size_t)n, sizeof(mx[0]), mx_cmp);
	if (n == 0)
		snprintf(why, whylen, "no usable MX for %s", domain);
	return n > 0 ? n : -1;
}

/* IPv4 then IPv6 addresses of host, port set; the count. */
static int
addresses(sp_ob_worker *w, const char *host, struct sockaddr_storage *out,
    int max)
{
	static const int types[] = { ns_t_a, ns_t_aaaa };
	struct sp_gw_dns_answer a;
	int t, i, n = 0;

	for (t = 0; t < 2; t++) {
		if (sp_gw_dns_query(&w->dns, host, types[t], &a) !=
		    SP_GW_DNS_OK)
			continue;
		for (i = 0; i < a.n && n < max; i++) {
			memset(&out[n], 0, sizeof(out[n]));
			if (a.rr[i].type == ns_t_a && a.rr[i].len == 4) {
				struct sockaddr_in *s = (void *)&out[n];

				s->sin_family = AF_INET;
				s->sin_port = htons((uint16_t)w->o.port);
				memcpy(&s->sin_addr, a.rr[i].data, 4);
				n++;
			} else if (a.rr[i].type == ns_t_aaaa &&
			    a.rr[i].len == 16) {
				struct sockaddr_in6 *s = (void *)&out[n];

				s->sin6_family = AF_INET6;
				s->sin6_port = htons((uint16_t)w->o.port);
				memcpy(&s->sin6_addr, a.rr[i].data, 16);
				n++;
			}
		}
		sp_gw_dns_answer_free(&a);
	}
	return n;
}

/* ---- one domain's recipients -------------------------------------------- */

static void
set_all(struct sp_ob_smtp_result *res, size_t n, int code, const char *why)
{
	size_t i;

	for (i = 0; i < n; i++) {
		res->rcpt_code[i] = code;
		snprintf(res->rcpt_text[i], sizeof(res->rcpt_text[i]), "%s",
		    why);
	}
}

/* Delivers to the recipients idx[0..n) of e (all of one domain). */
static void
deliver_domain(sp_ob_worker *w, const char *domain, struct sp_ob_entry *e,
    const size_t *idx, size_t n, const uint8_t *msg, size_t len,
    struct sp_ob_smtp_result *res)
{
	struct sockaddr_storage addrs[ADDRS_PER_MX];
	struct mx mx[MX_MAX];
	struct sp_ob_mtasts pol;
	struct sp_ob_smtp_opts so;
	const char *rcpts[SP_OB_RCPT_MAX];
	char why[256] = "";
	int nmx, i, k, na, tried = 0;
	size_t r;

	for (r = 0; r < n; r++)
		rcpts[r] = e->rcpt[idx[r]].addr;
	nmx = route(w, domain, mx, why, sizeof(why));
	if (nmx <= 0) {
		set_all(res, n, nmx == 0 ? 550 : 451, why);
		return;
	}
	sp_ob_mtasts_get(&w->dns, domain, w->o.ca_file, w->o.mta_sts_connect,
	    &pol);
	if (pol.mode == SP_OB_STS_TEMP) {
		set_all(res, n, 451, "MTA-STS policy could not be fetched");
		return;
	}
	memset(&so, 0, sizeof(so));
	so.helo = w->o.hostname;
	so.timeout_ms = (int)w->o.timeout_s * 1000;
	so.ca_file = w->o.ca_file;
	set_all(res, n, 451, "no MX could be reached");
	for (i = 0; i < nmx; i++) {
		if (pol.mode == SP_OB_STS_ENFORCE &&
		    !sp_ob_mtasts_mx_match(&pol, mx[i].host)) {
			logf_(w, "outbound: MTA-STS: MX %s not in %s's policy",
			    mx[i].host, domain);
			set_all(res, n, 451, "MTA-STS enforce: no MX matches "
			    "the policy");
			continue;
		}
		so.require_tls = pol.mode == SP_OB_STS_ENFORCE;
		so.verify_host = mx[i].host;
		na = addresses(w, mx[i].host, addrs, ADDRS_PER_MX);
		for (k = 0; k < na; k++) {
			if (sp_ob_smtp_send(&so, &addrs[k], e->mail_from, rcpts,
			    n, msg, len, res) != 0) {
				set_all(res, n, 451, "out of memory");
				return;
			}
			tried++;
			logf_(w, "outbound: %s via %s%s: %d", domain,
			    mx[i].host, res->tls ? " (TLS)" : "",
			    res->session_code ? res->session_code :
			    res->rcpt_code[0]);
			/* Only a failure to talk at all moves on to the next
			 * address; an answer from an MTA is the answer. */
			if (res->session_code != 421)
				return;
		}
	}
	(void)tried;
}

/* ---- one entry ---------------------------------------------------------- */

static uint64_t
backoff(const sp_ob_worker *w, unsigned attempts)
{
	uint64_t d = w->o.retry_base_s ? w->o.retry_base_s : 1;
	uint64_t cap = w->o.expire_s / 8 > d ? w->o.expire_s / 8 : d;

	while (attempts-- > 1 && d < cap)
		d *= 2;
	return d < cap ? d : cap;
}

static void
send_dsn(sp_ob_worker *w, struct sp_ob_entry *e, int delayed,
    const int *which, const uint8_t *msg, size_t len, uint64_t now)
{
	struct sp_ob_dsn_rcpt r[SP_OB_RCPT_MAX];
	const char *to[1] = { e->account };
	struct sp_gw_verdict v = { 0 };
	size_t n = 0, dlen;
	char *dsn;
	int res, i;

	for (i = 0; i < e->nrcpt; i++) {
		if (!which[i])
			continue;
		/* reply is "CODE TEXT" (record()); code 0: never answered */
		r[n].addr = e->rcpt[i].addr;
		r[n].code = atoi(e->rcpt[i].reply);
		r[n].text = strchr(e->rcpt[i].reply, ' ');
		r[n].text = r[n].text ? r[n].text + 1 : "";
		n++;
	}
	if (n == 0)
		return;
	if (sp_ob_dsn_build(w->o.hostname, e->mail_from, delayed, r, n, msg,
	    len, (time_t)e->created, (time_t)now, &dsn, &dlen) != 0) {
		logf_(w, "outbound: DSN: out of memory");
		return;
	}
	/* Into the sender's own mailbox, sealed to the sender: never out to
	 * the internet, so a forged sender cannot turn us into a
	 * backscatter source. */
	if (sp_gw_deliver_message(w->o.deliver, to, 1, (uint8_t *)dsn, dlen,
	    &v, &res) != 0 || res != 0)
		logf_(w, "outbound: %s DSN not delivered: %s", delayed ?
		    "delay" : "failure", sp_gw_deliver_strerror(res));
	else
		logf_(w, "outbound: %s DSN delivered for %zu recipient(s)",
		    delayed ? "delay" : "failure", n);
	sodium_memzero(dsn, dlen);
	free(dsn);
}

static void
record(struct sp_ob_rcpt *r, int code, const char *text)
{
	snprintf(r->reply, sizeof(r->reply), "%d %s", code, text);
}

static void
work_entry(sp_ob_worker *w, struct sp_ob_entry *e)
{
	struct sp_ob_smtp_result *res = NULL;
	uint8_t *msg = NULL, *signed_msg = NULL, *sealed = NULL;
	size_t len = 0, slen = 0, sealed_len, idx[SP_OB_RCPT_MAX];
	int failed[SP_OB_RCPT_MAX] = {0}, delayed[SP_OB_RCPT_MAX] = {0};
	uint64_t now = (uint64_t)time(NULL), due;
	int rc, i, j, any_failed = 0, any_delayed = 0;
	int expired = now >= e->created + w->o.expire_s;

	rc = load_message(w, e->blob_id, &msg, &len);
	if (rc != 0) {
		logf_(w, "outbound: message blob unreadable (%s): failing",
		    rc == ENOENT ? "deleted" : sp_strerror(rc));
		for (i = 0; i < e->nrcpt; i++)
			if (e->rcpt[i].state == SP_OB_PENDING) {
				e->rcpt[i].state = SP_OB_FAILED;
				record(&e->rcpt[i], 554, "5.3.0 the message "
				    "could not be read from the queue");
				failed[i] = 1;
				any_failed = 1;
			}
		goto finish;
	}
	if (sign_message(w, e->mail_from, msg, len, &signed_msg, &slen) != 0)
		goto out;
	if ((res = malloc(sizeof(*res))) == NULL)
		goto out;
	/* One transaction per domain, for the recipients due now. */
	for (i = 0; i < e->nrcpt; i++) {
		const char *dom;
		size_t n = 0;

		if (e->rcpt[i].state != SP_OB_PENDING || e->rcpt[i].next > now ||
		    e->rcpt[i].attempts == UINT16_MAX)
			continue;
		dom = strrchr(e->rcpt[i].addr, '@') + 1;
		for (j = i; j < e->nrcpt; j++) {
			const char *d2 = strrchr(e->rcpt[j].addr, '@') + 1;

			if (e->rcpt[j].state == SP_OB_PENDING &&
			    e->rcpt[j].next <= now && strcasecmp(d2, dom) == 0) {
				idx[n++] = (size_t)j;
				/* mark as taken this round */
				e->rcpt[j].attempts++;
			}
		}
		deliver_domain(w, dom, e, idx, n, signed_msg, slen, res);
		for (j = 0; j < (int)n; j++) {
			struct sp_ob_rcpt *r = &e->rcpt[idx[j]];
			int code = res->rcpt_code[j];

			record(r, code, res->rcpt_text[j]);
			if (code / 100 == 2) {
				r->state = SP_OB_SENT;
			} else if (code / 100 == 5 || expired) {
				r->state = SP_OB_FAILED;
				failed[idx[j]] = 1;
				any_failed = 1;
			} else {
				r->next = now + backoff(w, r->attempts);
			}
		}
	}
finish:
	/* Expiry also catches recipients not due this round. */
	for (i = 0; i < e->nrcpt; i++) {
		if (e->rcpt[i].state != SP_OB_PENDING)
			continue;
		if (expired) {
			e->rcpt[i].state = SP_OB_FAILED;
			if (e->rcpt[i].reply[0] == '\0')
				record(&e->rcpt[i], 0, "never attempted");
			failed[i] = 1;
			any_failed = 1;
		} else if (!e->delay_notified &&
		    now >= e->created + w->o.delay_notice_s) {
			delayed[i] = 1;
			any_delayed = 1;
		}
	}
	if (any_failed)
		send_dsn(w, e, 0, failed, msg, len, now);
	if (any_delayed) {
		send_dsn(w, e, 1, delayed, msg, len, now);
		e->delay_notified = 1;
	}
	due = sp_ob_entry_due(e);
	if (due == 0) {
		/* Done: the entry goes, then the blob reference the account
		 * gave the queue; its bytes go with the last reference. */
		if ((rc = sp_store_queue_delete(w->store, e->id)) != 0)
			logf_(w, "outbound: queue delete: %s",
			    sp_store_strerror(rc));
		else if ((rc = sp_store_blob_unref(w->store, e->account,
		    e->blob_id)) != 0 && rc != ENOENT)
			logf_(w, "outbound: blob release: %s",
			    sp_store_strerror(rc));
		logf_(w, "outbound: entry finished");
	} else if ((rc = sp_ob_entry_seal(e, w->key.pk, &sealed,
	    &sealed_len)) != 0 ||
	    (rc = sp_store_queue_put(w->store, e->id, due, sealed,
	    sealed_len)) != 0)
		logf_(w, "outbound: queue update failed: %s", rc < -32000 &&
		    rc > -32200 ? sp_strerror(rc) : sp_store_strerror(rc));
out:
	free(sealed);
	free(res);
	if (signed_msg)
		sodium_free(signed_msg);     /* wipes */
	if (msg)
		sodium_free(msg);
}

static void *
thread_main(void *arg)
{
	sp_ob_worker *w = arg;
	struct sp_ob_entry *e = malloc(sizeof(*e));

	if (e == NULL)
		return NULL;
	for (;;) {
		struct claim c = { .w = w };
		struct timespec ts;
		int rc;

		pthread_mutex_lock(&w->mu);
		if (w->stop) {
			pthread_mutex_unlock(&w->mu);
			break;
		}
		(void)sp_store_queue_due(w->store, (uint64_t)time(NULL), 64,
		    claim_fn, &c);
		if (!c.found) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			(void)pthread_cond_timedwait(&w->cv, &w->mu, &ts);
			pthread_mutex_unlock(&w->mu);
			continue;
		}
		pthread_mutex_unlock(&w->mu);
		rc = sp_ob_entry_open(c.data, c.len, w->key.pk, w->key.sk, e);
		free(c.data);
		if (rc != 0) {
			/* Not ours (another gateway key) or damaged: keeping
			 * it would spin; it is logged and dropped. */
			logf_(w, "outbound: queue entry does not open (%s): "
			    "dropped", sp_strerror(rc));
			(void)sp_store_queue_delete(w->store, c.id);
		} else {
			memcpy(e->id, c.id, 16);
			work_entry(w, e);
		}
		sodium_memzero(e, sizeof(*e));
		release(w, c.id);
	}
	free(e);
	return NULL;
}

int
sp_ob_worker_start(const struct sp_ob_worker_opts *o, sp_ob_worker **w_r,
    char *err, size_t errlen)
{
	sp_ob_worker *w;
	unsigned i;
	int rc;

	*w_r = NULL;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return ENOMEM;
	w->o = *o;
	if (w->o.threads == 0 || w->o.threads > THREADS_MAX)
		w->o.threads = w->o.threads ? THREADS_MAX : 4;
	w->store = sp_gw_deliver_store(o->deliver);
	if ((rc = sp_ob_key_load(o->data_dir, &w->key)) != 0) {
		snprintf(err, errlen, "gateway key in %s: %s", o->data_dir,
		    rc == EINVAL ? "gateway.key and gateway.pub do not "
		    "belong together" : strerror(rc));
		free(w);
		return rc;
	}
	if ((rc = sp_gw_dns_conf_init(&w->dns, o->dns, 0)) != 0) {
		snprintf(err, errlen, "--dns wants HOST:PORT");
		sp_ob_key_free(&w->key);
		free(w);
		return rc;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	for (i = 0; i < w->o.threads; i++) {
		if (pthread_create(&w->th[i], NULL, thread_main, w) != 0)
			break;
		w->nth++;
	}
	*w_r = w;
	return 0;
}

void
sp_ob_worker_stop(sp_ob_worker *w)
{
	unsigned i;

	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = 1;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	for (i = 0; i < w->nth; i++)
		pthread_join(w->th[i], NULL);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	sp_ob_key_free(&w->key);
	free(w);
}
