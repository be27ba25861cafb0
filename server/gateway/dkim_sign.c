/*
 * DKIM signing (dkim_sign.h).  The verifier in auth/ is the reference for
 * canonicalization: the body goes through its sp_gw_dkim_canon_body(), so
 * what we sign is what we would verify.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>

#include "server/gateway/auth/gw_dkim.h"
#include "server/gateway/auth/gw_msg.h"
#include "server/gateway/dkim_sign.h"

#define CONF_MAX 4096
#define KEY_MAX (64 * 1024)
#define HDR_MAX (16 * 1024)     /* one signature field */
#define HASHED_MAX (1024 * 1024)

/* Fields worth protecting; others (Received, trace) change in transit. */
static const char *const signed_fields[] = {
	"from", "to", "cc", "subject", "date", "message-id", "reply-to",
	"in-reply-to", "references", "mime-version", "content-type",
	"content-transfer-encoding", "sender", "list-unsubscribe",
};

struct sbuf {
	char *p;
	size_t len, cap;
	int err;
};

static void
sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->err)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 1024;
		char *np;

		while (cap < b->len + n + 1)
			cap *= 2;
		if (cap > HASHED_MAX || (np = realloc(b->p, cap)) == NULL) {
			b->err = 1;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

/* Relaxed header canonicalization (RFC 6376 3.4.2) of name:value. */
static void
canon_relaxed(struct sbuf *b, const char *name, size_t nl, const char *v,
    size_t vl)
{
	size_t i = 0, e = vl, k;
	int ws = 0;

	for (k = 0; k < nl; k++) {
		char c = (char)tolower((unsigned char)name[k]);

		sb_add(b, &c, 1);
	}
	sb_add(b, ":", 1);
	while (i < vl && (v[i] == ' ' || v[i] == '\t' || v[i] == '\r' ||
	    v[i] == '\n'))
		i++;
	while (e > i && (v[e - 1] == ' ' || v[e - 1] == '\t' ||
	    v[e - 1] == '\r' || v[e - 1] == '\n'))
		e--;
	for (; i < e; i++) {
		if (v[i] == '\r' || v[i] == '\n')
			continue;
		if (v[i] == ' ' || v[i] == '\t') {
			ws = 1;
			continue;
		}
		if (ws)
			sb_add(b, " ", 1);
		ws = 0;
		sb_add(b, v + i, 1);
	}
}

/* Reads "key = value" from domain.conf text; 0 if found. */
static int
conf_get(const char *text, const char *key, char *out, size_t cap)
{
	const char *p = text;
	size_t kl = strlen(key);

	while (p && *p) {
		const char *eol = strchr(p, '\n'), *v;
		size_t n;

		if (strncmp(p, key, kl) == 0) {
			v = p + kl;
			while (*v == ' ' || *v == '\t')
				v++;
			if (*v == '=') {
				v++;
				while (*v == ' ' || *v == '\t')
					v++;
				n = eol ? (size_t)(eol - v) : strlen(v);
				while (n > 0 && (v[n - 1] == ' ' ||
				    v[n - 1] == '\r' || v[n - 1] == '\t'))
					n--;
				if (n == 0 || n >= cap)
					return -1;
				memcpy(out, v, n);
				out[n] = '\0';
				return 0;
			}
		}
		p = eol ? eol + 1 : NULL;
	}
	return -1;
}

static int
slurp(const char *path, size_t max, char **buf_r, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	char *b;
	size_t n;

	if (f == NULL)
		return errno == ENOENT ? ENOENT : EIO;
	if ((b = malloc(max + 1)) == NULL) {
		fclose(f);
		return ENOMEM;
	}
	n = fread(b, 1, max + 1, f);
	fclose(f);
	if (n > max) {
		free(b);
		return EINVAL;
	}
	b[n] = '\0';
	*buf_r = b;
	*len_r = n;
	return 0;
}

static EVP_PKEY *
load_key(const char *path, int want_type)
{
	EVP_PKEY *pk = NULL;
	char *pem;
	size_t len;
	BIO *b;

	if (slurp(path, KEY_MAX, &pem, &len) != 0)
		return NULL;
	if ((b = BIO_new_mem_buf(pem, (int)len)) != NULL) {
		pk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
		BIO_free(b);
	}
	OPENSSL_cleanse(pem, len);
	free(pem);
	if (pk != NULL && EVP_PKEY_get_base_id(pk) != want_type) {
		EVP_PKEY_free(pk);
		pk = NULL;
	}
	return pk;
}

/*
 * The h= list and the canonical fields it names, bottom-up per name as
 * 5.4.2 asks.  From is named once more than it occurs.
 */
static void
header_part(const struct sp_gw_msg *m, struct sbuf *h, struct sbuf *data)
{
	size_t f;
	int i, count;

	for (f = 0; f < sizeof(signed_fields) / sizeof(signed_fields[0]);
	    f++) {
		const char *name = signed_fields[f];

		count = 0;
		for (i = m->n - 1; i >= 0; i--) {
			const struct sp_gw_hdr *x = &m->h[i];

			if (x->name_len != strlen(name) ||
			    strncasecmp(x->name, name, x->name_len) != 0)
				continue;
			if (h->len)
				sb_add(h, ":", 1);
			sb_str(h, name);
			canon_relaxed(data, x->name, x->name_len, x->value,
			    x->value_len);
			sb_add(data, "\r\n", 2);
			count++;
		}
		if (strcmp(name, "from") == 0) {
			if (h->len)
				sb_add(h, ":", 1);
			sb_str(h, name);
		}
	}
}

static int
sign_one(EVP_PKEY *pk, int ed, const char *domain, const char *sel,
    const char *bh, const struct sbuf *h, const struct sbuf *hdata,
    time_t now, struct sbuf *out)
{
	struct sbuf v = {0}, data = {0};
	unsigned char hash[32], sig[1024];
	char b64[1400];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *ctx = NULL;
	char tbuf[32];
	int rc = EINVAL;

	snprintf(tbuf, sizeof(tbuf), "%lld", (long long)now);
	sb_str(&v, "v=1; a=");
	sb_str(&v, ed ? "ed25519-sha256" : "rsa-sha256");
	sb_str(&v, "; c=relaxed/relaxed; d=");
	sb_str(&v, domain);
	sb_str(&v, "; s=");
	sb_str(&v, sel);
	sb_str(&v, "; t=");
	sb_str(&v, tbuf);
	sb_str(&v, "; h=");
	sb_add(&v, h->p, h->len);
	sb_str(&v, "; bh=");
	sb_str(&v, bh);
	sb_str(&v, "; b=");
	/* What is signed: the fields, then this field with b= empty and no
	 * final CRLF (3.7). */
	sb_add(&data, hdata->p, hdata->len);
	if (!v.err)
		canon_relaxed(&data, "DKIM-Signature", 14, v.p, v.len);
	if (v.err || data.err || (ctx = EVP_MD_CTX_new()) == NULL) {
		rc = ENOMEM;
		goto out;
	}
	if (ed) {
		/* RFC 8463: Ed25519 over the SHA-256 of the data (PureEdDSA
		 * of the hash, not Ed25519ph). */
		crypto_hash_sha256(hash, (const unsigned char *)data.p,
		    data.len);
		if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, pk) != 1 ||
		    EVP_DigestSign(ctx, sig, &siglen, hash, 32) != 1)
			goto out;
	} else {
		if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pk) != 1 ||
		    EVP_DigestSign(ctx, NULL, &siglen, (unsigned char *)data.p,
		    data.len) != 1 || siglen > sizeof(sig) ||
		    EVP_DigestSign(ctx, sig, &siglen, (unsigned char *)data.p,
		    data.len) != 1)
			goto out;
	}
	sodium_bin2base64(b64, sizeof(b64), sig, siglen,
	    sodium_base64_VARIANT_ORIGINAL);
	/* Folded between tags: relaxed canonicalization at the verifier
	 * turns ";\r\n\t" back into "; ", the bytes signed above. */
	sb_str(out, "DKIM-Signature: ");
	for (size_t i = 0; i < v.len; i++) {
		if (v.p[i] == ';' && i + 1 < v.len && v.p[i + 1] == ' ') {
			sb_str(out, ";\r\n\t");
			i++;
			continue;
		}
		sb_add(out, v.p + i, 1);
	}
	sb_str(out, b64);
	sb_str(out, "\r\n");
	rc = out->err ? ENOMEM : 0;
out:
	EVP_MD_CTX_free(ctx);
	free(v.p);
	free(data.p);
	return rc;
}

int
sp_dkim_sign(const char *data_dir, const char *domain, const uint8_t *msg,
    size_t len, time_t now, char **hdr_r, int *n_r, char *err,
    size_t errlen)
{
	static const struct { const char *conf, *ext; int type; } kinds[] = {
		{ "rsa-selector", "rsa", EVP_PKEY_RSA },
		{ "ed25519-selector", "ed25519", EVP_PKEY_ED25519 },
	};
	struct sbuf out = {0}, h = {0}, hdata = {0};
	struct sp_gw_msg *m = NULL;
	char path[4096], sel[64], *conf = NULL, *cbody = NULL;
	unsigned char bhash[32];
	char bh[64];
	size_t clen, cblen;
	int rc, k;

	*hdr_r = NULL;
	*n_r = 0;
	snprintf(path, sizeof(path), "%s/dkim/%s/domain.conf", data_dir,
	    domain);
	if (strchr(domain, '/') != NULL || domain[0] == '.' ||
	    (rc = slurp(path, CONF_MAX, &conf, &clen)) != 0) {
		snprintf(err, errlen, "no DKIM keys for %s", domain);
		return ENOENT;
	}
	if ((m = malloc(sizeof(*m))) == NULL) {
		rc = ENOMEM;
		goto out;
	}
	if (sp_gw_msg_parse(msg, len, m) != 0) {
		snprintf(err, errlen, "message header is malformed");
		rc = EINVAL;
		goto out;
	}
	if (sp_gw_dkim_canon_body(m->body ? m->body : "", m->body ?
	    m->body_len : 0, 1, &cbody, &cblen) != 0) {
		rc = ENOMEM;
		goto out;
	}
	crypto_hash_sha256(bhash, (unsigned char *)cbody, cblen);
	sodium_bin2base64(bh, sizeof(bh), bhash, 32,
	    sodium_base64_VARIANT_ORIGINAL);
	header_part(m, &h, &hdata);
	if (h.err || hdata.err) {
		rc = ENOMEM;
		goto out;
	}
	rc = ENOENT;
	for (k = 0; k < 2; k++) {
		EVP_PKEY *pk;

		if (conf_get(conf, kinds[k].conf, sel, sizeof(sel)) != 0 ||
		    strchr(sel, '/') != NULL)
			continue;
		snprintf(path, sizeof(path), "%s/dkim/%s/%s.%s.key", data_dir,
		    domain, sel, kinds[k].ext);
		if ((pk = load_key(path, kinds[k].type)) == NULL) {
			snprintf(err, errlen, "DKIM key %s.%s.key of %s is "
			    "unreadable", sel, kinds[k].ext, domain);
			rc = EINVAL;
			goto out;
		}
		rc = sign_one(pk, k == 1, domain, sel, bh, &h, &hdata, now,
		    &out);
		EVP_PKEY_free(pk);
		if (rc != 0) {
			snprintf(err, errlen, "DKIM signing failed");
			goto out;
		}
		(*n_r)++;
	}
	if (*n_r > 0) {
		*hdr_r = out.p;
		out.p = NULL;
		rc = 0;
	} else
		snprintf(err, errlen, "no DKIM selector for %s", domain);
out:
	free(out.p);
	free(h.p);
	free(hdata.p);
	free(cbody);
	free(conf);
	free(m);
	return rc;
}
