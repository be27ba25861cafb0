/*
 * Internal send (send.h).  Everything that can refuse the send (parsing,
 * recipients, keys) happens before anything is uploaded or delivered, so
 * a refused send leaves no trace on the server.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

#include "client-core/keys.h"
#include "client-core/outmsg.h"
#include "client-core/send.h"
#include "crypto/envelope.h"
#include "crypto/meta.h"
#include "proto/summary.h"

struct rcpt {
	char addr[SP_KEYS_ADDR_BYTES];
	int bcc;                 /* not in To/Cc: gets its own body */
	int self;                /* the sender: own keys, no directory */
	uint8_t enc_pk[32];
	uint8_t blob_id[32];     /* the body this recipient opens */
	int delivered;
};

struct send {
	const struct sp_send_args *a;
	struct rcpt *r;
	struct sp_outmsg_rcpt *l; /* the same recipients, as outmsg.h gave */
	size_t n;
	char *err;
	size_t errlen;
};

/* ---- Bcc removal --------------------------------------------------------- */

/* Length of the line at p (up to and including its LF, or to the end). */
static size_t
line_len(const uint8_t *p, size_t left)
{
	const uint8_t *lf = memchr(p, '\n', left);

	return lf ? (size_t)(lf - p) + 1 : left;
}

static int
blank_line(const uint8_t *p, size_t n)
{
	return (n == 1 && p[0] == '\n') ||
	    (n == 2 && p[0] == '\r' && p[1] == '\n');
}

/* Does the field starting at p (a line that is not a continuation) have
 * the name Bcc?  Names end at ':'; obsolete syntax allows white space
 * before it (RFC 5322 4.5), which GMime accepts too. */
static int
is_bcc(const uint8_t *p, size_t n)
{
	size_t i = 3;

	if (n < 4 || strncasecmp((const char *)p, "bcc", 3) != 0)
		return 0;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return i < n && p[i] == ':';
}

int
sp_send_strip_bcc(const uint8_t *msg, size_t len, uint8_t **out_r,
    size_t *out_len_r, size_t *removed_r)
{
	uint8_t *out;
	size_t off = 0, o = 0, removed = 0;
	int dropping = 0;

	*out_r = NULL;
	*out_len_r = 0;
	if ((out = malloc(len ? len : 1)) == NULL)
		return SP_ENOMEM;
	while (off < len) {
		size_t n = line_len(msg + off, len - off);

		if (blank_line(msg + off, n))
			break;
		if (msg[off] != ' ' && msg[off] != '\t') {
			dropping = is_bcc(msg + off, n);
			removed += (size_t)dropping;
		}
		if (!dropping) {
			memcpy(out + o, msg + off, n);
			o += n;
		}
		off += n;
	}
	/* The blank line and the body, untouched. */
	memcpy(out + o, msg + off, len - off);
	o += len - off;
	*out_r = out;
	*out_len_r = o;
	if (removed_r)
		*removed_r = removed;
	return 0;
}

/* ---- recipients ---------------------------------------------------------- */

/* Recipients from the headers (and the extra ones), outmsg.h; the From
 * check.  s->l is kept for the Sent copy's Bcc list. */
static int
collect(struct send *s, const uint8_t *msg, size_t len)
{
	struct sp_outmsg_args oa;
	char own[SP_KEYS_ADDR_BYTES];
	size_t i;
	int rc;

	if (sp_keys_address(s->a->address, own) != 0) {
		sp_keys_seterr(s->err, s->errlen, "'%s' is not an address",
		    s->a->address);
		return SP_EINVAL;
	}
	memset(&oa, 0, sizeof(oa));
	oa.own = own;
	oa.rcpts = s->a->rcpts;
	oa.nrcpts = s->a->nrcpts;
	oa.envelope_only = s->a->envelope_only;
	oa.cap = oa.max = SP_SEND_RCPT_MAX;
	if ((rc = sp_outmsg_rcpts(&oa, msg, len, &s->l, &s->n, s->err,
	    s->errlen)) != 0)
		return rc;
	for (i = 0; i < s->n; i++) {
		memcpy(s->r[i].addr, s->l[i].addr, sizeof(s->r[i].addr));
		s->r[i].bcc = s->l[i].bcc;
		s->r[i].self = strcmp(s->r[i].addr, own) == 0;
	}
	return 0;
}

/* Every recipient's encryption key, checked against its pin. */
static int
fetch_keys(struct send *s)
{
	size_t i, visible = 0;
	int rc;

	for (i = 0; i < s->n; i++)
		visible += !s->r[i].bcc;
	if (visible > SP_SEND_VISIBLE_MAX) {
		sp_keys_seterr(s->err, s->errlen,
		    "more than %d To/Cc recipients",
		    SP_SEND_VISIBLE_MAX);
		return SP_ELIMIT;
	}
	for (i = 0; i < s->n; i++) {
		struct sp_keys_info k;

		if (s->r[i].self) {
			memcpy(s->r[i].enc_pk,
			    sp_keyset_encryption_pk(s->a->ks), 32);
			continue;
		}
		rc = sp_keys_get(s->a->cache, s->a->c, s->r[i].addr, &k, NULL,
		    s->err, s->errlen);
		if (rc == ENOENT) {
			sp_keys_seterr(s->err, s->errlen,
			    "%s has no sealpost account "
			    "on this server (outbox.h sends to other servers); "
			    "nothing was sent", s->r[i].addr);
			return rc;
		}
		if (rc == SP_EKEYCHANGED) {
			/* keys.c wrote the fingerprints and the way out;
			 * say that nothing went anywhere. */
			size_t l = strlen(s->err);

			if (l + 1 < s->errlen)
				snprintf(s->err + l, s->errlen - l,
				    "; nothing was sent");
			sp_keys_info_finish(&k);
			return rc;
		}
		if (rc != 0)
			return rc;
		memcpy(s->r[i].enc_pk, k.pk.encryption_pk, 32);
		sp_keys_info_finish(&k);
	}
	return 0;
}

/* ---- sealing and delivering ---------------------------------------------- */

/* Seals body to pks (and the mailbox key if mk), uploads it, blob id out. */
static int
put_body(struct send *s, const uint8_t *body, size_t len,
    const uint8_t (*pks)[32], size_t npk, const uint8_t *mk,
    uint8_t id_r[32])
{
	struct sp_envelope_seal_args sa = { .kind = SP_ENVELOPE_KIND_BODY,
	    .recipients = pks, .n_recipients = npk, .mailbox_key = mk,
	    .signer = s->a->ks };
	uint8_t *env = NULL;
	size_t elen = 0;
	int rc;

	if ((rc = sp_envelope_seal(&sa, body, len, &env, &elen)) != 0) {
		sp_keys_seterr(s->err, s->errlen, "sealing the message: %s",
		    sp_strerror(rc));
		return rc;
	}
	rc = sp_mbox_blob_put(s->a->c, env, elen, id_r, s->err, s->errlen);
	free(env);
	return rc;
}

static int
put_bodies(struct send *s, const uint8_t *body, size_t len,
    uint8_t shared_id[32])
{
	uint8_t (*pks)[32];
	size_t i, n = 0;
	int rc;

	if ((pks = calloc(s->n ? s->n : 1, 32)) == NULL)
		return SP_ENOMEM;
	for (i = 0; i < s->n; i++)
		if (!s->r[i].bcc)
			memcpy(pks[n++], s->r[i].enc_pk, 32);
	rc = put_body(s, body, len, (const uint8_t (*)[32])pks, n,
	    sp_keyset_mailbox_key(s->a->ks), shared_id);
	for (i = 0; rc == 0 && i < s->n; i++) {
		if (!s->r[i].bcc)
			memcpy(s->r[i].blob_id, shared_id, 32);
		else
			rc = put_body(s, body, len,
			    (const uint8_t (*)[32])s->r[i].enc_pk, 1, NULL,
			    s->r[i].blob_id);
	}
	free(pks);
	return rc;
}

/* The metadata record for r, sealed to r alone and signed, DELIVERed. */
static int
deliver(struct send *s, struct rcpt *r, const struct sp_meta *summary,
    char *why, size_t whylen)
{
	struct sp_envelope_seal_args sa = { .kind = SP_ENVELOPE_KIND_META,
	    .recipients = (const uint8_t (*)[32])r->enc_pk,
	    .n_recipients = 1, .signer = s->a->ks };
	struct sp_meta m = *summary;    /* borrows the summary's strings */
	struct sp_frame f;
	struct sp_client_msg *reply = NULL;
	uint8_t *rec = NULL, *env = NULL;
	size_t rlen = 0, elen = 0;
	int rc;

	m.bcc = NULL;
	m.blob_id = r->blob_id;
	m.blob_id_len = 32;
	m.received = (uint64_t)time(NULL);
	m.has_received = 1;
	if ((rc = sp_meta_encode(&m, &rec, &rlen)) != 0 ||
	    (rc = sp_envelope_seal(&sa, rec, rlen, &env, &elen)) != 0) {
		sp_keys_seterr(why, whylen, "%s", sp_strerror(rc));
		goto out;
	}
	sp_frame_init(&f, SP_MSG_DELIVER, 0);
	sp_frame_set_text(&f, SP_F_RECIPIENT, r->addr);
	if ((rc = sp_frame_add_item(&f, SP_F_RECORDS, env, elen, 0)) != 0) {
		sp_keys_seterr(why, whylen, "%s", sp_strerror(rc));
		goto out;
	}
	rc = sp_client_call(s->a->c, &f, &reply);
	if (rc != 0) {
		sp_keys_seterr(why, whylen, "%s", rc == ETIMEDOUT ?
		    "the server did not answer" : "the connection closed");
	} else if (reply->f.type == SP_MSG_ERROR) {
		sp_keys_seterr(why, whylen, "%s", sp_proto_strerror(
		    (int)reply->f.f[SP_F_CODE].u));
		rc = SP_ESERVER;
	} else if (reply->f.type != SP_MSG_OK) {
		sp_keys_seterr(why, whylen, "unexpected reply");
		rc = EPROTO;
	}
out:
	sp_client_msg_free(reply);
	if (rec) {
		sodium_memzero(rec, rlen);
		free(rec);
	}
	free(env);
	return rc;
}

int
sp_send(const struct sp_send_args *a, const uint8_t *msg, size_t len,
    struct sp_send_report *report, char *err, size_t errlen)
{
	struct send s = { .a = a, .err = err, .errlen = errlen };
	struct sp_send_report rep;
	struct sp_meta summary;
	uint8_t *body = NULL, shared_id[32];
	size_t blen = 0, i, off;
	char *bcc = NULL, why[128];
	int rc, first_rc = 0;

	memset(&rep, 0, sizeof(rep));
	memset(&summary, 0, sizeof(summary));
	if (err && errlen)
		err[0] = 0;
	if ((s.r = calloc(SP_SEND_RCPT_MAX, sizeof(*s.r))) == NULL)
		return SP_ENOMEM;
	if ((rc = collect(&s, msg, len)) != 0)
		goto out;
	rep.nrcpts = s.n;
	for (i = 0; i < s.n; i++)
		rep.nbcc += (size_t)s.r[i].bcc;
	if ((rc = fetch_keys(&s)) != 0)
		goto out;
	if ((rc = sp_send_strip_bcc(msg, len, &body, &blen, NULL)) != 0)
		goto out;
	/* Belt and braces: what GMime sees in the stripped body must have
	 * no Bcc left, whatever header syntax tricked the stripper. */
	if ((rc = sp_summary_from_message(body, blen, &summary)) != 0 ||
	    summary.bcc != NULL) {
		sp_keys_seterr(err, errlen, "the message cannot be parsed%s",
		    rc == 0 ? " (a Bcc header survived its removal)" : "");
		rc = rc ? rc : SP_EFORMAT;
		goto out;
	}
	if ((rc = put_bodies(&s, body, blen, shared_id)) != 0)
		goto out;
	off = 0;
	for (i = 0; i < s.n; i++) {
		if ((rc = deliver(&s, &s.r[i], &summary, why,
		    sizeof(why))) == 0) {
			s.r[i].delivered = 1;
			rep.ndelivered++;
			continue;
		}
		if (first_rc == 0)
			first_rc = rc;
		if (err && off + 1 < errlen)
			off += (size_t)snprintf(err + off, errlen - off,
			    "%s%s: %s", off ? "; " : "not delivered to ",
			    s.r[i].addr, why);
	}
	if (rep.ndelivered > 0) {
		struct sp_mbox_add ad = { .folder = SP_MBOX_SENT,
		    .flags = SP_META_F_SEEN, .sign = 1 };
		char serr[256];

		ad.bcc = a->sent_bcc ? a->sent_bcc :
		    (bcc = sp_outmsg_bcc_list(s.l, s.n));
		rc = sp_mbox_add_uploaded(a->mb, a->c, &ad, body, blen,
		    shared_id, &rep.sent_id, serr, sizeof(serr));
		if (rc != 0 && first_rc == 0) {
			sp_keys_seterr(err, errlen,
			    "delivered, but the Sent copy was "
			    "not stored: %s", serr);
			first_rc = rc;
		}
	}
	rc = first_rc;
out:
	if (body) {
		sodium_memzero(body, blen);
		free(body);
	}
	free(bcc);
	sp_meta_finish(&summary);
	sodium_memzero(s.r, SP_SEND_RCPT_MAX * sizeof(*s.r));
	free(s.r);
	sp_outmsg_rcpts_free(s.l, s.n);
	if (report)
		*report = rep;
	return rc;
}
