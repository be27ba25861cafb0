/*
 * DKIM verification (gw_dkim.h).  Hashes with libsodium's SHA-256;
 * Ed25519 through libsodium (RFC 8463 signs the SHA-256 of the header
 * data with PureEdDSA), RSA through OpenSSL's EVP_PKEY_verify on the same
 * digest.  Every tag list is hostile input with the limits in gw_dkim.h.
 */
#include "server/gateway/auth/gw_dkim.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/nameser.h>

#include <openssl/decoder.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <sodium.h>

static const char *const result_names[] = {
	[SP_GW_DKIM_NONE] = "none", [SP_GW_DKIM_PASS] = "pass",
	[SP_GW_DKIM_FAIL] = "fail", [SP_GW_DKIM_POLICY] = "policy",
	[SP_GW_DKIM_TEMPERROR] = "temperror",
	[SP_GW_DKIM_PERMERROR] = "permerror",
};

const char *
sp_gw_dkim_str(enum sp_gw_dkim_result r)
{
	if ((unsigned)r >= sizeof(result_names) / sizeof(result_names[0]))
		return "permerror";
	return result_names[r];
}

static int
is_wsp(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* ---- tag lists (3.2) ---- */

int
sp_gw_dkim_tags_parse(const char *s, size_t len, struct sp_gw_dkim_tag *tags,
    int max, int *n_r)
{
	size_t i = 0;
	int n = 0;

	*n_r = 0;
	while (i < len) {
		size_t ns, ne, vs, ve;

		while (i < len && is_wsp(s[i]))
			i++;
		if (i >= len)
			break;
		if (s[i] == ';') {    /* empty spec: tolerated, as by most */
			i++;
			continue;
		}
		ns = i;
		if (!isalpha((unsigned char)s[i]))
			return -1;
		while (i < len && (isalnum((unsigned char)s[i]) || s[i] == '_'))
			i++;
		ne = i;
		while (i < len && is_wsp(s[i]))
			i++;
		if (i >= len || s[i] != '=')
			return -1;
		i++;
		while (i < len && is_wsp(s[i]))
			i++;
		vs = i;
		while (i < len && s[i] != ';') {
			unsigned char c = (unsigned char)s[i];
			if (!is_wsp(c) && (c < 0x21 || c > 0x7e))
				return -1;
			i++;
		}
		ve = i;
		while (ve > vs && is_wsp(s[ve - 1]))
			ve--;
		if (i < len)
			i++;    /* ';' */
		for (int k = 0; k < n; k++)
			if (tags[k].name_len == ne - ns &&
			    memcmp(tags[k].name, s + ns, ne - ns) == 0)
				return -1;    /* duplicate tag (3.2) */
		if (n >= max)
			return -1;
		tags[n].name = s + ns;
		tags[n].name_len = ne - ns;
		tags[n].value = s + vs;
		tags[n].value_len = ve - vs;
		n++;
	}
	*n_r = n;
	return 0;
}

static const struct sp_gw_dkim_tag *
tag_get(const struct sp_gw_dkim_tag *t, int n, const char *name)
{
	size_t l = strlen(name);

	for (int i = 0; i < n; i++)
		if (t[i].name_len == l && memcmp(t[i].name, name, l) == 0)
			return &t[i];
	return NULL;
}

static int
tag_is(const struct sp_gw_dkim_tag *t, const char *v)
{
	return t->value_len == strlen(v) &&
	    strncasecmp(t->value, v, t->value_len) == 0;
}

/* Copies a value without whitespace (b=, bh=, p= may be folded). */
static int
copy_nows(const struct sp_gw_dkim_tag *t, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < t->value_len; i++) {
		if (is_wsp(t->value[i]))
			continue;
		if (o + 1 >= outlen)
			return -1;
		out[o++] = t->value[i];
	}
	out[o] = '\0';
	return 0;
}

static int
b64_tag(const struct sp_gw_dkim_tag *t, uint8_t *out, size_t outmax,
    size_t *len_r)
{
	char buf[4 * SP_GW_DKIM_MAX_KEY / 3 + 8];

	if (copy_nows(t, buf, sizeof(buf)) != 0)
		return -1;
	return sodium_base642bin(out, outmax, buf, strlen(buf), NULL, len_r,
	    NULL, sodium_base64_VARIANT_ORIGINAL);
}

static int
copy_plain(const struct sp_gw_dkim_tag *t, char *out, size_t outlen)
{
	if (t->value_len == 0 || t->value_len >= outlen)
		return -1;
	memcpy(out, t->value, t->value_len);
	out[t->value_len] = '\0';
	return 0;
}

static int
parse_u64(const struct sp_gw_dkim_tag *t, uint64_t *v)
{
	uint64_t x = 0;

	if (t->value_len == 0 || t->value_len > 76)
		return -1;
	for (size_t i = 0; i < t->value_len; i++) {
		if (!isdigit((unsigned char)t->value[i]))
			return -1;
		/* Saturate: a larger l= or x= than 2^63 means "never". */
		if (x > (UINT64_MAX >> 1) / 10)
			x = UINT64_MAX >> 1;
		else
			x = x * 10 + (uint64_t)(t->value[i] - '0');
	}
	*v = x;
	return 0;
}

static int
parse_h(const struct sp_gw_dkim_tag *t, struct sp_gw_dkim_sig *s)
{
	size_t i = 0;
	int from = 0;

	while (i <= t->value_len) {
		size_t st, e, o = 0;
		while (i < t->value_len && is_wsp(t->value[i]))
			i++;
		st = i;
		while (i < t->value_len && t->value[i] != ':')
			i++;
		e = i;
		while (e > st && is_wsp(t->value[e - 1]))
			e--;
		if (e == st || s->nh >= SP_GW_DKIM_MAX_H ||
		    e - st >= sizeof(s->h[0]))
			return -1;
		for (size_t k = st; k < e; k++) {
			unsigned char c = (unsigned char)t->value[k];
			if (c <= 0x20 || c >= 0x7f)
				return -1;
			s->h[s->nh][o++] = (char)tolower(c);
		}
		s->h[s->nh][o] = '\0';
		if (strcmp(s->h[s->nh], "from") == 0)
			from = 1;
		s->nh++;
		i++;    /* ':' or past the end */
	}
	return from ? 0 : -1;    /* From must be signed (5.4) */
}

#define FAIL_PARSE(...) do { snprintf(err, errlen, __VA_ARGS__); \
	return -1; } while (0)

static int
parse_c(const struct sp_gw_dkim_tag *t, struct sp_gw_dkim_sig *s)
{
	const char *slash = memchr(t->value, '/', t->value_len);
	size_t hl = slash ? (size_t)(slash - t->value) : t->value_len;
	struct sp_gw_dkim_tag part = *t;

	part.value_len = hl;
	if (tag_is(&part, "relaxed"))
		s->c_head_relaxed = 1;
	else if (!tag_is(&part, "simple"))
		return -1;
	if (slash == NULL)
		return 0;
	part.value = slash + 1;
	part.value_len = t->value_len - hl - 1;
	if (tag_is(&part, "relaxed"))
		s->c_body_relaxed = 1;
	else if (!tag_is(&part, "simple"))
		return -1;
	return 0;
}

/* i= must be in d= or a subdomain of it (3.5). */
static int
i_in_d(const char *i, const char *d)
{
	const char *at = strrchr(i, '@');
	size_t il, dl = strlen(d);

	if (at == NULL)
		return 0;
	at++;
	il = strlen(at);
	if (il == dl)
		return strcasecmp(at, d) == 0;
	return il > dl && at[il - dl - 1] == '.' &&
	    strcasecmp(at + il - dl, d) == 0;
}

int
sp_gw_dkim_sig_parse(const char *v, size_t len, struct sp_gw_dkim_sig *s,
    char *err, size_t errlen)
{
	struct sp_gw_dkim_tag tags[SP_GW_DKIM_MAX_TAGS];
	const struct sp_gw_dkim_tag *t;
	int n;
	uint64_t u;
	static const char *const required[] = {"v", "a", "b", "bh", "d", "h",
	    "s"};

	memset(s, 0, sizeof(*s));
	if (sp_gw_dkim_tags_parse(v, len, tags, SP_GW_DKIM_MAX_TAGS, &n))
		FAIL_PARSE("bad tag list");
	for (size_t k = 0; k < sizeof(required) / sizeof(required[0]); k++)
		if (tag_get(tags, n, required[k]) == NULL)
			FAIL_PARSE("no %s= tag", required[k]);
	if (!tag_is(tag_get(tags, n, "v"), "1"))
		FAIL_PARSE("unknown version");
	t = tag_get(tags, n, "a");
	if (copy_plain(t, s->a, sizeof(s->a)) != 0)
		FAIL_PARSE("bad a=");
	if (tag_is(t, "rsa-sha256"))
		s->alg = SP_GW_DKIM_RSA_SHA256;
	else if (tag_is(t, "ed25519-sha256"))
		s->alg = SP_GW_DKIM_ED25519_SHA256;
	else if (tag_is(t, "rsa-sha1"))
		s->alg = SP_GW_DKIM_RSA_SHA1;
	else
		FAIL_PARSE("unknown algorithm");
	t = tag_get(tags, n, "b");
	if (b64_tag(t, s->b, sizeof(s->b), &s->b_len) != 0 || s->b_len == 0)
		FAIL_PARSE("bad b=");
	s->bval = t->value;
	s->bval_len = t->value_len;
	{
		char b64[16];
		struct sp_gw_dkim_tag head = *t;
		if (head.value_len > 40)
			head.value_len = 40;
		if (copy_nows(&head, b64, sizeof(b64)) != 0)
			b64[sizeof(b64) - 1] = '\0';
		snprintf(s->b8, sizeof(s->b8), "%.8s", b64);
	}
	if (b64_tag(tag_get(tags, n, "bh"), s->bh, sizeof(s->bh),
	    &s->bh_len) != 0 || s->bh_len != 32)
		FAIL_PARSE("bad bh=");
	if (copy_plain(tag_get(tags, n, "d"), s->d, sizeof(s->d)) != 0 ||
	    strchr(s->d, '.') == NULL)
		FAIL_PARSE("bad d=");
	if (copy_plain(tag_get(tags, n, "s"), s->s, sizeof(s->s)) != 0)
		FAIL_PARSE("bad s=");
	for (const char *p = s->s; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' &&
		    *p != '_')
			FAIL_PARSE("bad s=");
	if (parse_h(tag_get(tags, n, "h"), s) != 0)
		FAIL_PARSE("bad h= (From must be signed)");
	if ((t = tag_get(tags, n, "c")) != NULL && parse_c(t, s) != 0)
		FAIL_PARSE("bad c=");
	if ((t = tag_get(tags, n, "i")) != NULL) {
		if (copy_plain(t, s->i, sizeof(s->i)) != 0 || !i_in_d(s->i, s->d))
			FAIL_PARSE("i= not within d=");
	} else {
		snprintf(s->i, sizeof(s->i), "@%s", s->d);
	}
	if ((t = tag_get(tags, n, "q")) != NULL &&
	    (t->value_len < 7 || strncasecmp(t->value, "dns/txt", 7) != 0))
		FAIL_PARSE("unknown q=");
	if ((t = tag_get(tags, n, "l")) != NULL) {
		if (parse_u64(t, &s->l) != 0)
			FAIL_PARSE("bad l=");
		s->have_l = 1;
	}
	if ((t = tag_get(tags, n, "t")) != NULL) {
		if (parse_u64(t, &u) != 0)
			FAIL_PARSE("bad t=");
		s->t = (int64_t)u;
		s->have_t = 1;
	}
	if ((t = tag_get(tags, n, "x")) != NULL) {
		if (parse_u64(t, &u) != 0)
			FAIL_PARSE("bad x=");
		s->x = (int64_t)u;
		s->have_x = 1;
	}
	if (s->have_t && s->have_x && s->x < s->t)
		FAIL_PARSE("x= before t=");
	return 0;
}

/* A colon-separated list (h=, s=, t= of keys) contains word? */
static int
list_has(const struct sp_gw_dkim_tag *t, const char *word)
{
	size_t wl = strlen(word), i = 0;

	while (i < t->value_len) {
		size_t st, e;
		while (i < t->value_len && is_wsp(t->value[i]))
			i++;
		st = i;
		while (i < t->value_len && t->value[i] != ':')
			i++;
		e = i;
		while (e > st && is_wsp(t->value[e - 1]))
			e--;
		if (e - st == wl && strncasecmp(t->value + st, word, wl) == 0)
			return 1;
		i++;
	}
	return 0;
}

int
sp_gw_dkim_key_parse(const char *txt, size_t len, struct sp_gw_dkim_key *k,
    char *err, size_t errlen)
{
	struct sp_gw_dkim_tag tags[SP_GW_DKIM_MAX_TAGS];
	const struct sp_gw_dkim_tag *t;
	int n;

	memset(k, 0, sizeof(*k));
	if (memchr(txt, '\0', len) != NULL ||
	    sp_gw_dkim_tags_parse(txt, len, tags, SP_GW_DKIM_MAX_TAGS, &n))
		FAIL_PARSE("bad key record");
	/* v=, when present, must come first and be DKIM1 (3.6.1). */
	if ((t = tag_get(tags, n, "v")) != NULL &&
	    (t != &tags[0] || !tag_is(t, "DKIM1")))
		FAIL_PARSE("bad key v=");
	if ((t = tag_get(tags, n, "k")) != NULL) {
		if (tag_is(t, "ed25519"))
			k->ed25519 = 1;
		else if (!tag_is(t, "rsa"))
			FAIL_PARSE("unknown key type");
	}
	k->sha256_ok = (t = tag_get(tags, n, "h")) == NULL ||
	    list_has(t, "sha256");
	k->email_ok = (t = tag_get(tags, n, "s")) == NULL ||
	    list_has(t, "*") || list_has(t, "email");
	if ((t = tag_get(tags, n, "t")) != NULL) {
		k->testing = list_has(t, "y");
		k->strict = list_has(t, "s");
	}
	if ((t = tag_get(tags, n, "p")) == NULL)
		FAIL_PARSE("no p= in key");
	if (t->value_len > 0 &&
	    b64_tag(t, k->p, sizeof(k->p), &k->p_len) != 0)
		FAIL_PARSE("bad p= in key");
	return 0;
}

/* ---- canonicalization (3.4) ---- */

struct buf {
	char *p;
	size_t len, cap;
};

static int
buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *np;
		while (cap < b->len + n + 1)
			cap *= 2;
		if ((np = realloc(b->p, cap)) == NULL)
			return -1;
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

int
sp_gw_dkim_canon_body(const char *body, size_t len, int relaxed, char **out,
    size_t *out_len)
{
	struct buf b = {0};
	size_t i = 0, pending = 0;    /* empty lines not yet written */

	*out = NULL;
	*out_len = 0;
	if (buf_add(&b, "", 0) != 0)
		return ENOMEM;
	while (i < len) {
		const char *crlf = NULL;
		size_t e, le;

		for (size_t k = i; k + 1 < len; k++)
			if (body[k] == '\r' && body[k + 1] == '\n') {
				crlf = body + k;
				break;
			}
		e = crlf ? (size_t)(crlf - body) : len;
		le = e;
		if (relaxed)
			while (le > i && (body[le - 1] == ' ' ||
			    body[le - 1] == '\t'))
				le--;
		if (le == i) {
			/* An empty line only counts if content follows:
			 * trailing empty lines are dropped. */
			pending++;
		} else {
			for (; pending > 0; pending--)
				if (buf_add(&b, "\r\n", 2) != 0)
					goto nomem;
			if (!relaxed) {
				if (buf_add(&b, body + i, le - i) != 0)
					goto nomem;
			} else {
				for (size_t k = i; k < le; k++) {
					int ws = body[k] == ' ' ||
					    body[k] == '\t';
					if (ws && k > i && (body[k - 1] == ' ' ||
					    body[k - 1] == '\t'))
						continue;
					if (buf_add(&b, ws ? " " : body + k, 1))
						goto nomem;
				}
			}
			if (buf_add(&b, "\r\n", 2) != 0)
				goto nomem;
		}
		i = crlf ? e + 2 : len;
	}
	/* Simple: an empty body is one CRLF (3.4.3); relaxed: empty. */
	if (b.len == 0 && !relaxed && buf_add(&b, "\r\n", 2) != 0)
		goto nomem;
	*out = b.p;
	*out_len = b.len;
	return 0;
nomem:
	free(b.p);
	return ENOMEM;
}

/* Relaxed header canonicalization of "name:value" (3.4.2), appended. */
static int
canon_head_relaxed(struct buf *b, const char *name, size_t nl,
    const char *v, size_t vl)
{
	size_t i = 0, e = vl;
	int ws = 0;

	for (size_t k = 0; k < nl; k++) {
		char c = (char)tolower((unsigned char)name[k]);
		if (buf_add(b, &c, 1) != 0)
			return -1;
	}
	if (buf_add(b, ":", 1) != 0)
		return -1;
	while (i < vl && is_wsp(v[i]))
		i++;
	while (e > i && is_wsp(v[e - 1]))
		e--;
	for (; i < e; i++) {
		if (v[i] == '\r' || v[i] == '\n')
			continue;    /* unfold */
		if (v[i] == ' ' || v[i] == '\t') {
			ws = 1;
			continue;
		}
		if (ws && buf_add(b, " ", 1) != 0)
			return -1;
		ws = 0;
		if (buf_add(b, v + i, 1) != 0)
			return -1;
	}
	return 0;
}

/* ---- verification ---- */

static int
fetch_key(const struct sp_gw_dns_conf *dns, const struct sp_gw_dkim_sig *s,
    struct sp_gw_dkim_key *k, struct sp_gw_dkim_out *o)
{
	struct sp_gw_dns_answer a;
	char name[330], err[64] = "";
	int st, found = 0;

	snprintf(name, sizeof(name), "%s._domainkey.%s", s->s, s->d);
	st = sp_gw_dns_query(dns, name, ns_t_txt, &a);
	if (st == SP_GW_DNS_TEMP || st < 0) {
		snprintf(o->reason, sizeof(o->reason), "key lookup failed");
		return SP_GW_DKIM_TEMPERROR;
	}
	if (st != SP_GW_DNS_OK) {
		snprintf(o->reason, sizeof(o->reason), "no key");
		return SP_GW_DKIM_PERMERROR;
	}
	/* The first record that parses is the key (3.6.2.2). */
	for (int i = 0; i < a.n && !found; i++)
		found = sp_gw_dkim_key_parse((const char *)a.rr[i].data,
		    a.rr[i].len, k, err, sizeof(err)) == 0;
	sp_gw_dns_answer_free(&a);
	if (!found) {
		snprintf(o->reason, sizeof(o->reason), "%s",
		    err[0] ? err : "bad key record");
		return SP_GW_DKIM_PERMERROR;
	}
	return SP_GW_DKIM_PASS;
}

/* Header hash input: the signed fields bottom-up, then the signature
 * field itself with b= emptied and without its CRLF (3.7). */
static int
header_hash(const struct sp_gw_msg *m, const struct sp_gw_dkim_sig *s,
    int sig_idx, uint8_t hash[32])
{
	struct buf b = {0};
	uint8_t used[SP_GW_MSG_MAX_FIELDS];
	const struct sp_gw_hdr *sh = &m->h[sig_idx];
	size_t pre, post;
	int rc = -1;

	memset(used, 0, sizeof(used));
	if (buf_add(&b, "", 0) != 0)
		return -1;
	for (int k = 0; k < s->nh; k++) {
		for (int j = m->n - 1; j >= 0; j--) {
			const struct sp_gw_hdr *h = &m->h[j];
			if (used[j] || h->name_len != strlen(s->h[k]) ||
			    strncasecmp(h->name, s->h[k], h->name_len) != 0)
				continue;
			used[j] = 1;
			if (s->c_head_relaxed) {
				if (canon_head_relaxed(&b, h->name,
				    h->name_len, h->value, h->value_len) ||
				    buf_add(&b, "\r\n", 2))
					goto out;
			} else if (buf_add(&b, h->raw, h->raw_len)) {
				goto out;
			}
			break;
		}
	}
	pre = (size_t)(s->bval - sh->value);
	post = pre + s->bval_len;
	if (s->c_head_relaxed) {
		struct buf v = {0};
		if (buf_add(&v, sh->value, pre) ||
		    buf_add(&v, sh->value + post, sh->value_len - post) ||
		    canon_head_relaxed(&b, sh->name, sh->name_len, v.p,
		    v.len)) {
			free(v.p);
			goto out;
		}
		free(v.p);
	} else {
		size_t head = (size_t)(sh->value - sh->raw);
		if (buf_add(&b, sh->raw, head + pre) ||
		    buf_add(&b, sh->value + post, sh->value_len - post))
			goto out;
	}
	crypto_hash_sha256(hash, (const unsigned char *)b.p, b.len);
	rc = 0;
out:
	free(b.p);
	return rc;
}

static int
verify_rsa(const struct sp_gw_dkim_key *k, const struct sp_gw_dkim_sig *s,
    const uint8_t hash[32], struct sp_gw_dkim_out *o)
{
	OSSL_DECODER_CTX *dctx;
	EVP_PKEY *pkey = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	const unsigned char *p = k->p;
	size_t plen = k->p_len;
	int r = SP_GW_DKIM_PERMERROR;

	/* p= is SubjectPublicKeyInfo, or a bare RSAPublicKey as some
	 * signers publish: let the decoder try both. */
	dctx = OSSL_DECODER_CTX_new_for_pkey(&pkey, "DER", NULL, "RSA",
	    EVP_PKEY_PUBLIC_KEY, NULL, NULL);
	if (dctx == NULL)
		goto out;
	if (OSSL_DECODER_from_data(dctx, &p, &plen) != 1 || pkey == NULL) {
		snprintf(o->reason, sizeof(o->reason), "bad RSA key");
		goto out;
	}
	if (EVP_PKEY_get_bits(pkey) < 1024) {
		snprintf(o->reason, sizeof(o->reason),
		    "RSA key under 1024 bits (RFC 8301)");
		goto out;
	}
	if ((pctx = EVP_PKEY_CTX_new(pkey, NULL)) == NULL ||
	    EVP_PKEY_verify_init(pctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(pctx, EVP_sha256()) != 1)
		goto out;
	if (EVP_PKEY_verify(pctx, s->b, s->b_len, hash, 32) == 1) {
		r = SP_GW_DKIM_PASS;
	} else {
		snprintf(o->reason, sizeof(o->reason), "bad signature");
		r = SP_GW_DKIM_FAIL;
	}
out:
	EVP_PKEY_CTX_free(pctx);
	EVP_PKEY_free(pkey);
	OSSL_DECODER_CTX_free(dctx);
	return r;
}

/* The canonical bodies, made once per message and mode: several
 * signatures over a large message must not each copy it again. */
struct bodies {
	char *b[2];
	size_t len[2];
};

static int
verify_sig(const struct sp_gw_dns_conf *dns, const struct sp_gw_msg *m,
    const struct sp_gw_dkim_sig *s, int idx, time_t now,
    struct bodies *bodies, struct sp_gw_dkim_out *o)
{
	struct sp_gw_dkim_key *k;
	uint8_t bh[32], hash[32];
	const char *body;
	size_t blen;
	int mode = s->c_body_relaxed;
	int r;

	if (s->alg == SP_GW_DKIM_RSA_SHA1) {
		snprintf(o->reason, sizeof(o->reason),
		    "rsa-sha1 not accepted (RFC 8301)");
		return SP_GW_DKIM_PERMERROR;
	}
	if (s->have_x && s->x < (int64_t)now) {
		snprintf(o->reason, sizeof(o->reason), "signature expired");
		return SP_GW_DKIM_FAIL;
	}
	if ((k = malloc(sizeof(*k))) == NULL)
		return -ENOMEM;
	if ((r = fetch_key(dns, s, k, o)) != SP_GW_DKIM_PASS)
		goto out;
	o->testing = k->testing;
	r = SP_GW_DKIM_PERMERROR;
	if (k->p_len == 0) {
		snprintf(o->reason, sizeof(o->reason), "key revoked");
		goto out;
	}
	if (k->ed25519 != (s->alg == SP_GW_DKIM_ED25519_SHA256) ||
	    !k->sha256_ok || !k->email_ok) {
		snprintf(o->reason, sizeof(o->reason),
		    "key not usable for this signature");
		goto out;
	}
	if (k->strict) {
		const char *at = strrchr(s->i, '@');
		if (at == NULL || strcasecmp(at + 1, s->d) != 0) {
			snprintf(o->reason, sizeof(o->reason),
			    "key t=s forbids a subdomain i=");
			goto out;
		}
	}
	if (bodies->b[mode] == NULL &&
	    sp_gw_dkim_canon_body(m->body ? m->body : "", m->body_len, mode,
	    &bodies->b[mode], &bodies->len[mode]) != 0) {
		r = -ENOMEM;
		goto out;
	}
	body = bodies->b[mode];
	blen = bodies->len[mode];
	if (s->have_l && s->l > blen) {
		snprintf(o->reason, sizeof(o->reason), "l= beyond the body");
		r = SP_GW_DKIM_FAIL;
		goto out;
	}
	crypto_hash_sha256(bh, (const unsigned char *)body,
	    s->have_l ? (size_t)s->l : blen);
	if (sodium_memcmp(bh, s->bh, 32) != 0) {
		snprintf(o->reason, sizeof(o->reason), "body hash mismatch");
		r = SP_GW_DKIM_FAIL;
		goto out;
	}
	if (header_hash(m, s, idx, hash) != 0) {
		r = -ENOMEM;
		goto out;
	}
	if (s->alg == SP_GW_DKIM_ED25519_SHA256) {
		if (k->p_len != crypto_sign_PUBLICKEYBYTES ||
		    s->b_len != crypto_sign_BYTES) {
			snprintf(o->reason, sizeof(o->reason),
			    "bad Ed25519 key or signature size");
			goto out;
		}
		if (crypto_sign_verify_detached(s->b, hash, 32, k->p) == 0) {
			r = SP_GW_DKIM_PASS;
		} else {
			snprintf(o->reason, sizeof(o->reason),
			    "bad signature");
			r = SP_GW_DKIM_FAIL;
		}
	} else {
		r = verify_rsa(k, s, hash, o);
	}
	if (r == SP_GW_DKIM_PASS && s->have_l && s->l < blen) {
		snprintf(o->reason, sizeof(o->reason),
		    "l= leaves %zu body bytes unsigned", blen - (size_t)s->l);
		r = SP_GW_DKIM_POLICY;
	}
out:
	free(k);
	return r;
}

int
sp_gw_dkim_verify(const struct sp_gw_dns_conf *dns, const struct sp_gw_msg *m,
    time_t now, struct sp_gw_dkim_out *out, int *n_r)
{
	struct sp_gw_dkim_sig *s;
	struct bodies bodies = {{NULL, NULL}, {0, 0}};
	int n = 0, idx = -1, r, rc = 0;

	*n_r = 0;
	if ((s = malloc(sizeof(*s))) == NULL)
		return ENOMEM;
	while (n < SP_GW_DKIM_MAX_SIGS &&
	    (idx = sp_gw_msg_find(m, "DKIM-Signature", idx + 1)) >= 0) {
		struct sp_gw_dkim_out *o = &out[n++];
		const struct sp_gw_hdr *h = &m->h[idx];

		memset(o, 0, sizeof(*o));
		if (sp_gw_dkim_sig_parse(h->value, h->value_len, s, o->reason,
		    sizeof(o->reason)) != 0) {
			o->result = SP_GW_DKIM_PERMERROR;
			continue;
		}
		snprintf(o->d, sizeof(o->d), "%s", s->d);
		snprintf(o->s, sizeof(o->s), "%s", s->s);
		snprintf(o->a, sizeof(o->a), "%s", s->a);
		snprintf(o->b8, sizeof(o->b8), "%s", s->b8);
		for (char *p = o->d; *p != '\0'; p++)
			*p = (char)tolower((unsigned char)*p);
		r = verify_sig(dns, m, s, idx, now, &bodies, o);
		if (r < 0) {
			rc = -r;
			n = 0;
			break;
		}
		o->result = (enum sp_gw_dkim_result)r;
	}
	free(bodies.b[0]);
	free(bodies.b[1]);
	free(s);
	*n_r = n;
	return rc;
}
