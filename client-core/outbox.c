/*
 * The outbox (outbox.h): classify, check, build, then send.  Nothing
 * leaves before the last check passed, so a refusal leaves no trace.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "client-core/keys.h"
#include "client-core/outbox.h"
#include "client-core/outmsg.h"
#include "client-core/pgpkeys.h"
#include "client-core/pgpmail.h"
#include "client-core/send.h"
#include "client-core/submit.h"
#include "crypto/error.h"

enum kind { K_INTERNAL = 1, K_PGP, K_PLAIN };

struct rcpt {
	char addr[SP_KEYS_ADDR_BYTES];
	int kind;
	int bcc;                 /* not in To/Cc */
	uint8_t *key;            /* K_PGP: the pinned key, malloc'd */
	size_t key_len;
};

/* One submission: a body and the recipients (indexes into r) it is for. */
struct job {
	uint8_t *body;
	size_t len;
	int owns;                /* body is this job's to wipe and free */
	size_t first, n;         /* a slice of outbox.order */
};

struct outbox {
	const struct sp_outbox_args *a;
	struct rcpt *r;
	struct sp_outmsg_rcpt *l; /* the same recipients, as outmsg.h gave */
	size_t n;
	size_t *order;           /* outside recipients, by job */
	struct job *jobs;
	size_t njobs;
	char own[SP_KEYS_ADDR_BYTES];
	sp_pgp *pgp;
	uint8_t *pub;            /* the account's OpenPGP public key */
	size_t pub_len;
	char *autocrypt;         /* its Autocrypt header line, or NULL */
	uint8_t *text;           /* msg without Bcc, CRLF */
	size_t text_len;
	char *err;
	size_t errlen;
	size_t off;              /* failure sentences written to err */
	int sent_any;            /* someone got it */
	int first_rc;
};

#define RCPT_CAP (2 * SP_OUTBOX_RCPT_MAX) /* recipients and header names */

static void seterr(struct outbox *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
seterr(struct outbox *o, const char *fmt, ...)
{
	va_list ap;

	if (o->err == NULL || o->errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(o->err, o->errlen, fmt, ap);
	va_end(ap);
}

/* Appends "; nothing was sent" to err (a refusal before anything left). */
static void
nothing_sent(struct outbox *o)
{
	size_t l;

	if (o->err == NULL || o->errlen == 0)
		return;
	l = strlen(o->err);
	if (l + 1 < o->errlen)
		snprintf(o->err + l, o->errlen - l, "; nothing was sent");
}

/* A failure after something left: "not sent to A, B: why" appended. */
static void
add_failure(struct outbox *o, const size_t *idx, size_t n,
    const char *const *names, const char *why, int rc)
{
	size_t i;

	if (o->first_rc == 0)
		o->first_rc = rc;
	if (o->err == NULL || o->off + 1 >= o->errlen)
		return;
	o->off += (size_t)snprintf(o->err + o->off, o->errlen - o->off,
	    "%snot sent to ", o->off ? "; " : "");
	for (i = 0; i < n && o->off + 1 < o->errlen; i++)
		o->off += (size_t)snprintf(o->err + o->off, o->errlen - o->off,
		    "%s%s", i ? ", " : "", idx ? o->r[idx[i]].addr : names[i]);
	if (o->off + 1 < o->errlen)
		o->off += (size_t)snprintf(o->err + o->off, o->errlen - o->off,
		    ": %s", why);
	if (o->off >= o->errlen)
		o->off = o->errlen - 1;
}

static const char *
domain_of(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at ? at + 1 : "";
}

/* ---- recipients ---------------------------------------------------------- */

/* The recipients and who of them is visible (outmsg.h); the From check.
 * o->l is kept for the Sent copy's Bcc list. */
static int
collect(struct outbox *o, const uint8_t *msg, size_t len)
{
	struct sp_outmsg_args oa;
	size_t i;
	int rc;

	memset(&oa, 0, sizeof(oa));
	oa.own = o->own;
	oa.rcpts = o->a->rcpts;
	oa.nrcpts = o->a->nrcpts;
	oa.envelope_only = !o->a->from_headers;
	oa.cap = RCPT_CAP;
	oa.max = SP_OUTBOX_RCPT_MAX;
	if ((rc = sp_outmsg_rcpts(&oa, msg, len, &o->l, &o->n, o->err,
	    o->errlen)) != 0)
		return rc;
	if ((o->r = calloc(o->n, sizeof(*o->r))) == NULL)
		return SP_ENOMEM;
	for (i = 0; i < o->n; i++) {
		memcpy(o->r[i].addr, o->l[i].addr, sizeof(o->r[i].addr));
		o->r[i].bcc = o->l[i].bcc;
	}
	return 0;
}

/* ---- classification ------------------------------------------------------ */

static int
need_pgp(struct outbox *o)
{
	int rc;

	if (o->pgp)
		return 0;
	if ((rc = sp_pgp_create(&o->pgp)) != 0)
		seterr(o, "OpenPGP (gpg) cannot run: %s", sp_strerror(rc));
	return rc;
}

/* An outside address: PGP when its pinned key may be used, plain when
 * there is no pin; a changed, revoked or expired key refuses the send
 * (sending such mail in the clear instead would be a silent downgrade). */
static int
classify_outside(struct outbox *o, struct rcpt *r)
{
	struct sp_pgpkeys_pin pin;
	int rc;

	memset(&pin, 0, sizeof(pin));
	rc = sp_pgpkeys_get(o->a->cache, r->addr, &pin);
	if (rc == ENOENT) {
		r->kind = K_PLAIN;
		return 0;
	}
	if (rc != 0) {
		seterr(o, "reading the OpenPGP key pinned for %s: %s",
		    r->addr, sp_strerror(rc));
		goto out;
	}
	if (pin.pending_source != 0) {
		seterr(o, "the OpenPGP key of %s changed (pinned %s, now %s "
		    "from %s): compare fingerprints, then `sealpost keys "
		    "accept %s`", r->addr, pin.fpr, pin.pending_fpr,
		    sp_pgpkeys_source_name(pin.pending_source), r->addr);
		rc = SP_EKEYCHANGED;
		goto out;
	}
	if ((rc = need_pgp(o)) != 0 ||
	    (rc = sp_pgpkeys_usable(o->a->cache, o->pgp, r->addr, o->err,
	    o->errlen)) != 0)
		goto out;
	r->kind = K_PGP;
	r->key = pin.key;
	r->key_len = pin.key_len;
	pin.key = NULL;
out:
	sp_pgpkeys_pin_finish(&pin);
	return rc;
}

static int
classify(struct outbox *o)
{
	size_t i;
	int rc;

	for (i = 0; i < o->n; i++) {
		struct rcpt *r = &o->r[i];
		struct sp_keys_info k;

		if (strcmp(r->addr, o->own) == 0) {
			r->kind = K_INTERNAL;
			continue;
		}
		memset(&k, 0, sizeof(k));
		rc = sp_keys_get(o->a->cache, o->a->c, r->addr, &k, NULL,
		    o->err, o->errlen);
		sp_keys_info_finish(&k);
		if (rc == 0) {
			r->kind = K_INTERNAL;
			continue;
		}
		if (rc == ENOENT && strcasecmp(domain_of(r->addr),
		    domain_of(o->own)) != 0)
			rc = classify_outside(o, r);
		if (rc != 0)
			return rc; /* keys.c / pgpkeys.c wrote the sentence */
	}
	return 0;
}

/* ---- building ------------------------------------------------------------ */

/* The account's OpenPGP public key and Autocrypt header (Autocrypt
 * Level 1: on every outgoing message), when it has a key. */
static int
own_key(struct outbox *o)
{
	const uint8_t *sec;
	size_t sec_len = 0;
	int rc;

	sec = sp_keyset_pgp(o->a->ks, &sec_len);
	if (sec == NULL || sec_len == 0)
		return 0;
	if ((rc = need_pgp(o)) != 0)
		return rc;
	if ((rc = sp_pgp_key_import(o->pgp, sec, sec_len, 0, &o->pub,
	    &o->pub_len, NULL, NULL)) != 0 ||
	    (rc = sp_autocrypt_header(o->own, o->pub, o->pub_len,
	    &o->autocrypt)) != 0)
		seterr(o, "the account's OpenPGP key cannot be read: %s",
		    sp_strerror(rc));
	return rc;
}

static void
add_job(struct outbox *o, uint8_t *body, size_t len, int owns,
    size_t first, size_t n)
{
	struct job *j = &o->jobs[o->njobs++];

	j->body = body;
	j->len = len;
	j->owns = owns;
	j->first = first;
	j->n = n;
}

/* PGP/MIME of the text for the recipients order[first, first + n), to
 * their keys and the account's own. */
static int
pgp_job(struct outbox *o, size_t first, size_t n)
{
	struct sp_pgp_buf *keys;
	const uint8_t *sec;
	size_t sec_len = 0, i, nk = 0;
	uint8_t *out = NULL;
	size_t out_len = 0;
	int rc;

	if ((keys = calloc(n + 1, sizeof(*keys))) == NULL)
		return SP_ENOMEM;
	for (i = 0; i < n; i++) {
		keys[nk].data = o->r[o->order[first + i]].key;
		keys[nk++].len = o->r[o->order[first + i]].key_len;
	}
	if (o->pub) {
		keys[nk].data = o->pub;
		keys[nk++].len = o->pub_len;
	}
	sec = sp_keyset_pgp(o->a->ks, &sec_len);
	rc = sp_pgpmail_encrypt(o->pgp, o->text, o->text_len, keys, nk,
	    sec_len ? sec : NULL, sec_len, o->autocrypt, &out, &out_len);
	free(keys);
	if (rc != 0) {
		seterr(o, "encrypting to %s%s: %s", o->r[o->order[first]].addr,
		    n > 1 ? " and others" : "", sp_strerror(rc));
		return rc;
	}
	add_job(o, out, out_len, 1, first, n);
	return 0;
}

/*
 * Every outside message, before anything is sent.  order: the plain
 * recipients, the visible PGP ones, then each Bcc PGP one; jobs of at
 * most SP_SUBMIT_RCPT_MAX recipients.
 */
static int
build(struct outbox *o, uint8_t *plain, size_t plain_len)
{
	size_t i, k = 0, start, m;
	int rc, pass;

	if ((o->order = calloc(o->n, sizeof(*o->order))) == NULL ||
	    (o->jobs = calloc(o->n + 2, sizeof(*o->jobs))) == NULL)
		return SP_ENOMEM;
	for (i = 0; i < o->n; i++)
		if (o->r[i].kind == K_PLAIN)
			o->order[k++] = i;
	for (start = 0; start < k; start += m) {
		m = k - start < SP_SUBMIT_RCPT_MAX ? k - start :
		    SP_SUBMIT_RCPT_MAX;
		add_job(o, plain, plain_len, 0, start, m);
	}
	for (pass = 0; pass < 2; pass++) {
		start = k;
		for (i = 0; i < o->n; i++) {
			if (o->r[i].kind != K_PGP || o->r[i].bcc != pass)
				continue;
			o->order[k++] = i;
			/* A Bcc recipient: a message of its own. */
			if (pass == 1 && (rc = pgp_job(o, k - 1, 1)) != 0)
				return rc;
			/* Visible ones: share a message per 100. */
			if (pass == 0 && k - start == SP_SUBMIT_RCPT_MAX) {
				if ((rc = pgp_job(o, start, k - start)) != 0)
					return rc;
				start = k;
			}
		}
		if (pass == 0 && k > start &&
		    (rc = pgp_job(o, start, k - start)) != 0)
			return rc;
	}
	return 0;
}

/* ---- sending ------------------------------------------------------------- */

/* The server's own words from a submit error "submit: NAME (WORDS)". */
static const char *
server_words(const char *why, char *buf, size_t cap)
{
	const char *p = strchr(why, '(');
	size_t l;

	if (p == NULL || (l = strlen(p + 1)) == 0 || p[l] != ')')
		return why;
	snprintf(buf, cap, "%.*s", (int)(l - 1), p + 1);
	return buf;
}

static int
submit_job(struct outbox *o, const struct job *j,
    struct sp_outbox_report *rep)
{
	const char *names[SP_SUBMIT_RCPT_MAX], *words;
	char why[512], wbuf[512];
	size_t i;
	int rc;

	for (i = 0; i < j->n; i++)
		names[i] = o->r[o->order[j->first + i]].addr;
	rc = sp_submit(o->a->c, o->own, names, j->n, j->body, j->len, why,
	    sizeof(why));
	if (rc == 0) {
		rep->nqueued += j->n;
		o->sent_any = 1;
		return 0;
	}
	words = why;
	if (rc == SP_ESERVER) {
		/* protocol.md 7.5 names these refusals; the codes are
		 * DENIED and RATE, which other causes share. */
		words = server_words(why, wbuf, sizeof(wbuf));
		if (strstr(words, "encrypted-only"))
			rc = EACCES;
		else if (strstr(why, "rate limited"))
			rc = EBUSY;
	}
	add_failure(o, o->order + j->first, j->n, NULL, words, rc);
	return rc;
}

/* The internal recipients through send.h; its Sent copy is the one. */
static void
send_internal(struct outbox *o, const uint8_t *msg, size_t len,
    const char *bcc, struct sp_outbox_report *rep)
{
	const char **names;
	struct sp_send_args sa;
	struct sp_send_report srep;
	char why[1024] = "";
	size_t i, n = 0;
	int rc;

	memset(&srep, 0, sizeof(srep));
	if ((names = calloc(o->n, sizeof(*names))) == NULL) {
		add_failure(o, NULL, 0, NULL, "out of memory", SP_ENOMEM);
		return;
	}
	for (i = 0; i < o->n; i++)
		if (o->r[i].kind == K_INTERNAL)
			names[n++] = o->r[i].addr;
	memset(&sa, 0, sizeof(sa));
	sa.cache = o->a->cache;
	sa.c = o->a->c;
	sa.mb = o->a->mb;
	sa.ks = o->a->ks;
	sa.address = o->a->address;
	sa.rcpts = names;
	sa.nrcpts = n;
	sa.envelope_only = 1;
	sa.sent_bcc = bcc;
	rc = sp_send(&sa, msg, len, &srep, why, sizeof(why));
	rep->ndelivered = srep.ndelivered;
	rep->sent_id = srep.sent_id;
	if (srep.ndelivered > 0)
		o->sent_any = 1;
	if (rc != 0) {
		/* send.h names the addresses itself. */
		if (o->first_rc == 0)
			o->first_rc = rc;
		if (o->err && o->off + 1 < o->errlen) {
			o->off += (size_t)snprintf(o->err + o->off,
			    o->errlen - o->off, "%s%s", o->off ? "; " : "",
			    why);
			if (o->off >= o->errlen)
				o->off = o->errlen - 1;
		}
	}
	free(names);
}

static void
release(struct outbox *o)
{
	size_t i;

	for (i = 0; o->jobs && i < o->njobs; i++) {
		if (o->jobs[i].owns && o->jobs[i].body) {
			sodium_memzero(o->jobs[i].body, o->jobs[i].len);
			free(o->jobs[i].body);
		}
	}
	free(o->jobs);
	free(o->order);
	for (i = 0; o->r && i < o->n; i++)
		free(o->r[i].key);
	free(o->r);
	sp_outmsg_rcpts_free(o->l, o->n);
	if (o->text) {
		sodium_memzero(o->text, o->text_len);
		free(o->text);
	}
	free(o->pub);
	free(o->autocrypt);
	(void)sp_pgp_destroy(o->pgp);
}

/* Outside recipients: the texts, the checks, the jobs; then submits. */
static int
send_outside(struct outbox *o, struct sp_outbox_report *rep,
    uint8_t **plain_r, size_t *plain_len_r)
{
	size_t i, l;
	int rc;

	if ((rc = own_key(o)) != 0)
		return rc;
	*plain_r = o->text;
	*plain_len_r = o->text_len;
	if (o->autocrypt && rep->nplain > 0) {
		l = strlen(o->autocrypt);
		if ((*plain_r = malloc(l + o->text_len)) == NULL)
			return SP_ENOMEM;
		memcpy(*plain_r, o->autocrypt, l);
		memcpy(*plain_r + l, o->text, o->text_len);
		*plain_len_r = l + o->text_len;
	}
	if ((rc = build(o, *plain_r, *plain_len_r)) != 0)
		return rc;
	for (i = 0; i < o->njobs; i++) {
		/* The first refusal while nothing has gone (the policy,
		 * the rate limit) ends the send; later ones are reported
		 * beside what went. */
		if ((rc = submit_job(o, &o->jobs[i], rep)) != 0 &&
		    !o->sent_any)
			return rc;
	}
	return 0;
}

int
sp_outbox_send(const struct sp_outbox_args *a, const uint8_t *msg,
    size_t len, struct sp_outbox_report *report, char *err, size_t errlen)
{
	struct outbox o;
	struct sp_outbox_report rep;
	uint8_t *stripped = NULL, *plain = NULL;
	size_t slen = 0, plain_len = 0, i;
	char *bcc = NULL;
	int rc;

	memset(&o, 0, sizeof(o));
	memset(&rep, 0, sizeof(rep));
	o.a = a;
	o.err = err;
	o.errlen = errlen;
	if (err && errlen)
		err[0] = 0;
	if (sp_keys_address(a->address, o.own) != 0) {
		seterr(&o, "'%s' is not an address", a->address);
		return SP_EINVAL;
	}
	if ((rc = collect(&o, msg, len)) != 0 || (rc = classify(&o)) != 0) {
		if (rc != SP_EINVAL && rc != SP_EFORMAT)
			nothing_sent(&o);
		goto out;
	}
	rep.nrcpts = o.n;
	for (i = 0; i < o.n; i++) {
		rep.ninternal += o.r[i].kind == K_INTERNAL;
		rep.npgp += o.r[i].kind == K_PGP;
		rep.nplain += o.r[i].kind == K_PLAIN;
		rep.nbcc += (size_t)o.r[i].bcc;
	}
	bcc = sp_outmsg_bcc_list(o.l, o.n);
	if ((rc = sp_send_strip_bcc(msg, len, &stripped, &slen, NULL)) != 0 ||
	    (o.text = sp_outmsg_crlf(stripped, slen, &o.text_len)) == NULL) {
		rc = SP_ENOMEM;
		goto out;
	}
	if (rep.npgp + rep.nplain > 0 &&
	    (rc = send_outside(&o, &rep, &plain, &plain_len)) != 0 &&
	    !o.sent_any) {
		nothing_sent(&o);
		goto out;
	}
	if (rep.ninternal > 0)
		send_internal(&o, msg, len, bcc, &rep);
	if (o.sent_any && rep.ndelivered == 0) {
		struct sp_mbox_add ad = { .folder = SP_MBOX_SENT,
		    .flags = SP_META_F_SEEN, .sign = 1, .bcc = bcc };
		char serr[256];

		rc = sp_mbox_add(a->mb, a->c, &ad, o.text, o.text_len,
		    &rep.sent_id, serr, sizeof(serr));
		if (rc != 0 && o.first_rc == 0) {
			seterr(&o, "sent, but the Sent copy was not stored: "
			    "%s", serr);
			o.first_rc = rc;
		}
	}
	rc = o.first_rc;
out:
	if (plain && plain != o.text) {
		sodium_memzero(plain, plain_len);
		free(plain);
	}
	if (stripped) {
		sodium_memzero(stripped, slen);
		free(stripped);
	}
	free(bcc);
	release(&o);
	if (report)
		*report = rep;
	return rc;
}
