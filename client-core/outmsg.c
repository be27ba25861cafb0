/*
 * A message on its way out (outmsg.h): its recipients, its Bcc list, its
 * line ends.  One copy of what send.c and outbox.c both need, so the two
 * cannot come to disagree on who a message is for.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>
#include <sodium.h>

#include "client-core/outmsg.h"
#include "crypto/error.h"

/* An entry while collecting: keep says it is a recipient, not only a
 * To/Cc name that marks one as visible (envelope_only). */
struct entry {
	struct sp_outmsg_rcpt r;
	int keep;
};

struct collect {
	const struct sp_outmsg_args *a;
	struct entry *e;
	size_t n;
	char *err;
	size_t errlen;
};

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;

static void
gmime_start(void)
{
	g_mime_init();
}

/* Adds raw; a visible entry wins over a Bcc one. */
static int
add_rcpt(struct collect *c, const char *raw, int bcc, int keep)
{
	char addr[SP_KEYS_ADDR_BYTES];
	size_t i;

	if (sp_keys_address(raw, addr) != 0) {
		if (!keep)
			return 0;
		sp_keys_seterr(c->err, c->errlen, "'%s' is not an address",
		    raw);
		return SP_EINVAL;
	}
	for (i = 0; i < c->n; i++) {
		if (strcmp(c->e[i].r.addr, addr) == 0) {
			c->e[i].r.bcc = c->e[i].r.bcc && bcc;
			c->e[i].keep |= keep;
			return 0;
		}
	}
	if (c->n == c->a->cap) {
		sp_keys_seterr(c->err, c->errlen, "more than %zu recipients",
		    c->a->max);
		return SP_ELIMIT;
	}
	memcpy(c->e[c->n].r.addr, addr, sizeof(addr));
	c->e[c->n].r.bcc = bcc;
	c->e[c->n].keep = keep;
	c->n++;
	return 0;
}

/* Walks an address list, descending into groups (RFC 5322 3.4). */
static int
add_list(struct collect *c, InternetAddressList *l, int bcc, int keep,
    int depth)
{
	int i, len, rc;

	if (l == NULL)
		return 0;
	len = internet_address_list_length(l);
	for (i = 0; i < len; i++) {
		InternetAddress *ia = internet_address_list_get_address(l, i);

		if (INTERNET_ADDRESS_IS_GROUP(ia)) {
			if (depth > 0)
				continue; /* groups do not nest */
			rc = add_list(c, internet_address_group_get_members(
			    INTERNET_ADDRESS_GROUP(ia)), bcc, keep, depth + 1);
		} else {
			rc = add_rcpt(c, internet_address_mailbox_get_addr(
			    INTERNET_ADDRESS_MAILBOX(ia)), bcc, keep);
		}
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Is the From: of gm exactly one address, own? */
static int
from_is_own(GMimeMessage *gm, const char *own)
{
	InternetAddressList *from = g_mime_message_get_from(gm);
	InternetAddress *ia;
	char faddr[SP_KEYS_ADDR_BYTES];

	if (from == NULL || internet_address_list_length(from) != 1)
		return 0;
	ia = internet_address_list_get_address(from, 0);
	return INTERNET_ADDRESS_IS_MAILBOX(ia) && sp_keys_address(
	    internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia)),
	    faddr) == 0 && strcmp(faddr, own) == 0;
}

/* The header addresses and the envelope ones into c. */
static int
collect(struct collect *c, const uint8_t *msg, size_t len)
{
	const struct sp_outmsg_args *a = c->a;
	GMimeStream *stream;
	GMimeParser *parser = NULL;
	GMimeMessage *gm = NULL;
	size_t i;
	int rc = SP_EFORMAT, hk = !a->envelope_only;

	pthread_once(&gmime_once, gmime_start);
	stream = g_mime_stream_mem_new_with_buffer((const char *)msg, len);
	if (stream == NULL)
		return SP_ENOMEM;
	parser = g_mime_parser_new_with_stream(stream);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	if ((gm = g_mime_parser_construct_message(parser, NULL)) == NULL) {
		sp_keys_seterr(c->err, c->errlen,
		    "the message cannot be parsed");
		goto out;
	}
	if (!from_is_own(gm, a->own)) {
		sp_keys_seterr(c->err, c->errlen, "the From: header must be "
		    "exactly your address, %s", a->own);
		rc = SP_EINVAL;
		goto out;
	}
	if ((rc = add_list(c, g_mime_message_get_to(gm), 0, hk, 0)) != 0 ||
	    (rc = add_list(c, g_mime_message_get_cc(gm), 0, hk, 0)) != 0 ||
	    (hk && (rc = add_list(c, g_mime_message_get_bcc(gm), 1, 1,
	    0)) != 0))
		goto out;
	for (i = 0; i < a->nrcpts; i++)
		if ((rc = add_rcpt(c, a->rcpts[i], 1, 1)) != 0)
			goto out;
	rc = 0;
out:
	if (gm)
		g_object_unref(gm);
	if (parser)
		g_object_unref(parser);
	g_object_unref(stream);
	return rc;
}

int
sp_outmsg_rcpts(const struct sp_outmsg_args *a, const uint8_t *msg,
    size_t len, struct sp_outmsg_rcpt **r_out, size_t *n_r, char *err,
    size_t errlen)
{
	struct collect c = { .a = a, .err = err, .errlen = errlen };
	struct sp_outmsg_rcpt *r = NULL;
	size_t i, n = 0;
	int rc;

	*r_out = NULL;
	*n_r = 0;
	if ((c.e = calloc(a->cap ? a->cap : 1, sizeof(*c.e))) == NULL)
		return SP_ENOMEM;
	if ((rc = collect(&c, msg, len)) != 0)
		goto out;
	for (i = 0; i < c.n; i++)
		n += (size_t)c.e[i].keep;
	rc = SP_EINVAL;
	if (n == 0) {
		sp_keys_seterr(err, errlen, "the message has no recipients");
		goto out;
	}
	rc = SP_ELIMIT;
	if (n > a->max) {
		sp_keys_seterr(err, errlen, "more than %zu recipients",
		    a->max);
		goto out;
	}
	rc = SP_ENOMEM;
	if ((r = calloc(n, sizeof(*r))) == NULL)
		goto out;
	for (i = 0, n = 0; i < c.n; i++)
		if (c.e[i].keep)
			r[n++] = c.e[i].r;
	*r_out = r;
	*n_r = n;
	rc = 0;
out:
	sodium_memzero(c.e, (a->cap ? a->cap : 1) * sizeof(*c.e));
	free(c.e);
	return rc;
}

void
sp_outmsg_rcpts_free(struct sp_outmsg_rcpt *r, size_t n)
{
	if (r == NULL)
		return;
	sodium_memzero(r, n * sizeof(*r));
	free(r);
}

char *
sp_outmsg_bcc_list(const struct sp_outmsg_rcpt *r, size_t n)
{
	size_t i, len = 1;
	char *l;

	for (i = 0; i < n; i++)
		len += r[i].bcc ? strlen(r[i].addr) + 2 : 0;
	if (len == 1 || (l = malloc(len)) == NULL)
		return NULL;
	l[0] = 0;
	for (i = 0; i < n; i++) {
		if (!r[i].bcc)
			continue;
		if (l[0])
			strcat(l, ", ");
		strcat(l, r[i].addr);
	}
	return l;
}

uint8_t *
sp_outmsg_crlf(const uint8_t *in, size_t len, size_t *len_r)
{
	uint8_t *out = malloc(len * 2 + 1);
	size_t i, n = 0;

	if (out == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			out[n++] = '\r';
		out[n++] = in[i];
	}
	*len_r = n;
	return out;
}
