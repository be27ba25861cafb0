/*
 * Contacts' OpenPGP keys; see pgpkeys.h.
 *
 * The WKD client speaks HTTP/1.1 over OpenSSL itself (one GET, Connection:
 * close, a bounded response) rather than pulling in libcurl for one
 * request: Debian's libcurl is not otherwise a dependency, and the
 * request is small enough to read in one screen.
 */
#include "client-core/pgpkeys.h"

#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "client-core/keys.h"

#define PIN_VERSION 1
#define GEN_KEY "#gen" /* no address lacks an '@' */
#define WKD_TIMEOUT_S 10
#define HTTP_HEADER_MAX (16 * 1024)

void
sp_pgpkeys_pin_finish(struct sp_pgpkeys_pin *p)
{
	if (p == NULL)
		return;
	free(p->key);
	free(p->pending);
	memset(p, 0, sizeof(*p));
}

const char *
sp_pgpkeys_source_name(int source)
{
	switch (source) {
	case SP_PGPKEYS_SRC_IMPORT: return "import";
	case SP_PGPKEYS_SRC_WKD: return "wkd";
	case SP_PGPKEYS_SRC_AUTOCRYPT: return "autocrypt";
	default: return "?";
	}
}

/* ---- stored form ------------------------------------------------------- */

static void
put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t
get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static int
pin_encode(const struct sp_pgpkeys_pin *p, uint8_t **out_r, size_t *len_r)
{
	size_t n = 1 + 1 + 8 + SP_PGP_FPR_SIZE + 4 + p->key_len + 1 +
	    SP_PGP_FPR_SIZE + 4 + p->pending_len, o = 0;
	uint8_t *b;
	int i;

	if ((b = calloc(1, n)) == NULL)
		return ENOMEM;
	b[o++] = PIN_VERSION;
	b[o++] = (uint8_t)p->source;
	for (i = 7; i >= 0; i--)
		b[o++] = (uint8_t)(p->first_seen >> (8 * i));
	memcpy(b + o, p->fpr, strnlen(p->fpr, SP_PGP_FPR_SIZE - 1));
	o += SP_PGP_FPR_SIZE;
	put_u32(b + o, (uint32_t)p->key_len);
	o += 4;
	memcpy(b + o, p->key, p->key_len);
	o += p->key_len;
	b[o++] = (uint8_t)p->pending_source;
	memcpy(b + o, p->pending_fpr, strnlen(p->pending_fpr,
	    SP_PGP_FPR_SIZE - 1));
	o += SP_PGP_FPR_SIZE;
	put_u32(b + o, (uint32_t)p->pending_len);
	o += 4;
	if (p->pending_len)
		memcpy(b + o, p->pending, p->pending_len);
	*out_r = b;
	*len_r = n;
	return 0;
}

static int
take(const uint8_t *v, size_t vlen, size_t *o, size_t n, uint8_t **out_r)
{
	if (vlen - *o < n)
		return SP_EFORMAT;
	if ((*out_r = malloc(n ? n : 1)) == NULL)
		return ENOMEM;
	memcpy(*out_r, v + *o, n);
	*o += n;
	return 0;
}

static int
pin_decode(const uint8_t *v, size_t vlen, struct sp_pgpkeys_pin *p)
{
	size_t o = 0, n;
	int rc, i;

	if (vlen < 2 + 8 + SP_PGP_FPR_SIZE + 4 || v[0] != PIN_VERSION)
		return SP_EFORMAT;
	p->source = v[1];
	o = 2;
	for (i = 0; i < 8; i++)
		p->first_seen = p->first_seen << 8 | v[o++];
	memcpy(p->fpr, v + o, SP_PGP_FPR_SIZE);
	p->fpr[SP_PGP_FPR_SIZE - 1] = 0;
	o += SP_PGP_FPR_SIZE;
	n = get_u32(v + o);
	o += 4;
	if ((rc = take(v, vlen, &o, n, &p->key)) != 0)
		return rc;
	p->key_len = n;
	if (vlen - o < 1 + SP_PGP_FPR_SIZE + 4)
		return SP_EFORMAT;
	p->pending_source = v[o++];
	memcpy(p->pending_fpr, v + o, SP_PGP_FPR_SIZE);
	p->pending_fpr[SP_PGP_FPR_SIZE - 1] = 0;
	o += SP_PGP_FPR_SIZE;
	n = get_u32(v + o);
	o += 4;
	if (n && (rc = take(v, vlen, &o, n, &p->pending)) != 0)
		return rc;
	p->pending_len = n;
	return o == vlen ? 0 : SP_EFORMAT;
}

int
sp_pgpkeys_get(sp_cache *cache, const char *address,
    struct sp_pgpkeys_pin *pin)
{
	char a[SP_KEYS_ADDR_BYTES];
	uint8_t *v = NULL;
	size_t vlen = 0;
	int rc;

	memset(pin, 0, sizeof(*pin));
	if (sp_keys_address(address, a) != 0)
		return SP_EINVAL;
	if ((rc = sp_cache_get(cache, SP_CACHE_T_PGPPINS, a, strlen(a), &v,
	    &vlen)) != 0)
		return rc;
	rc = pin_decode(v, vlen, pin);
	free(v);
	if (rc != 0) {
		sp_pgpkeys_pin_finish(pin);
		return rc;
	}
	snprintf(pin->address, sizeof(pin->address), "%s", a);
	return 0;
}

uint64_t
sp_pgpkeys_gen(sp_cache *cache)
{
	uint8_t *v = NULL;
	size_t vlen = 0, i;
	uint64_t g = 0;

	if (sp_cache_get(cache, SP_CACHE_T_PGPPINS, GEN_KEY, strlen(GEN_KEY),
	    &v, &vlen) != 0)
		return 0;
	for (i = 0; i < vlen && i < 8; i++)
		g = g << 8 | v[i];
	free(v);
	return g;
}

/* Stores the pin and a new generation in one batch. */
static int
pin_store(sp_cache *cache, const struct sp_pgpkeys_pin *p)
{
	sp_cache_batch *b = NULL;
	uint8_t *v = NULL, g[8];
	uint64_t gen = sp_pgpkeys_gen(cache) + 1;
	size_t vlen = 0;
	int rc, i;

	for (i = 0; i < 8; i++)
		g[i] = (uint8_t)(gen >> (56 - 8 * i));
	if ((rc = pin_encode(p, &v, &vlen)) != 0)
		return rc;
	if ((rc = sp_cache_begin(cache, &b)) != 0)
		goto out;
	if ((rc = sp_cache_batch_put(b, SP_CACHE_T_PGPPINS, p->address,
	    strlen(p->address), v, vlen)) != 0 ||
	    (rc = sp_cache_batch_put(b, SP_CACHE_T_PGPPINS, GEN_KEY,
	    strlen(GEN_KEY), g, sizeof(g))) != 0) {
		sp_cache_abort(b);
		goto out;
	}
	rc = sp_cache_commit(b);
out:
	free(v);
	return rc;
}

/* ---- learning ---------------------------------------------------------- */

static int
has_uid(const struct sp_pgp_keyinfo *info, const char *a)
{
	char e[SP_KEYS_ADDR_BYTES];
	size_t i;

	/* gpg marks every user id of a revoked key revoked; the key's
	 * revocation must still reach its pin, to be refused there. */
	for (i = 0; i < info->nuids; i++)
		if ((!info->uids[i].revoked || info->revoked) &&
		    sp_keys_address(info->uids[i].email, e) == 0 &&
		    strcmp(e, a) == 0)
			return 1;
	return 0;
}

static int
replace_bytes(uint8_t **dst, size_t *dst_len, const uint8_t *src, size_t n)
{
	uint8_t *c = malloc(n ? n : 1);

	if (c == NULL)
		return ENOMEM;
	memcpy(c, src, n);
	free(*dst);
	*dst = c;
	*dst_len = n;
	return 0;
}

int
sp_pgpkeys_learn(sp_cache *cache, sp_pgp *pgp, const char *address,
    const void *key, size_t len, int source, char fpr_r[SP_PGP_FPR_SIZE],
    char *err, size_t errlen)
{
	struct sp_pgp_keyinfo *info = NULL;
	struct sp_pgpkeys_pin pin;
	char a[SP_KEYS_ADDR_BYTES];
	uint8_t *pub = NULL;
	size_t pub_len = 0;
	int rc;

	memset(&pin, 0, sizeof(pin));
	if (fpr_r)
		fpr_r[0] = 0;
	if (sp_keys_address(address, a) != 0) {
		sp_keys_seterr(err, errlen, "%s: not an address", address);
		return SP_EINVAL;
	}
	if (len > SP_PGPKEYS_KEY_MAX) {
		sp_keys_seterr(err, errlen,
		    "%s: the key is larger than %d bytes", a,
		    SP_PGPKEYS_KEY_MAX);
		return SP_ELIMIT;
	}
	if ((rc = sp_pgp_key_import(pgp, key, len, 0, &pub, &pub_len, NULL,
	    NULL)) != 0 || (rc = sp_pgp_key_info(pgp, pub, pub_len,
	    &info)) != 0) {
		sp_keys_seterr(err, errlen, "%s: not one OpenPGP key: %s", a,
		    sp_strerror(rc));
		goto out;
	}
	if (fpr_r)
		memcpy(fpr_r, info->fpr, SP_PGP_FPR_SIZE);
	if (!has_uid(info, a)) {
		sp_keys_seterr(err, errlen, "the key %s has no user id for %s",
		    info->fpr, a);
		rc = SP_EINVAL;
		goto out;
	}
	rc = sp_pgpkeys_get(cache, a, &pin);
	if (rc == ENOENT) {
		memset(&pin, 0, sizeof(pin));
		snprintf(pin.address, sizeof(pin.address), "%s", a);
		pin.first_seen = (uint64_t)time(NULL);
		pin.source = source;
		memcpy(pin.fpr, info->fpr, SP_PGP_FPR_SIZE);
		rc = replace_bytes(&pin.key, &pin.key_len, pub, pub_len);
	} else if (rc == 0 && strcmp(pin.fpr, info->fpr) == 0) {
		/* The same key again: new user ids, subkeys, revocations
		 * are learnt.  Nothing to do if the bytes are equal. */
		if (pin.key_len == pub_len && memcmp(pin.key, pub,
		    pub_len) == 0)
			goto out;
		rc = replace_bytes(&pin.key, &pin.key_len, pub, pub_len);
	} else if (rc == 0) {
		if (pin.pending_len == pub_len && memcmp(pin.pending, pub,
		    pub_len) == 0)
			rc = 0;
		else if ((rc = replace_bytes(&pin.pending, &pin.pending_len,
		    pub, pub_len)) == 0) {
			pin.pending_source = source;
			memcpy(pin.pending_fpr, info->fpr, SP_PGP_FPR_SIZE);
		}
		if (rc == 0 && (rc = pin_store(cache, &pin)) == 0) {
			sp_keys_seterr(err, errlen,
			    "the OpenPGP key of %s CHANGED: "
			    "pinned %s, now offered %s (from %s); it is not "
			    "used until you compare it and run `sealpost keys "
			    "accept %s`", a, pin.fpr, info->fpr,
			    sp_pgpkeys_source_name(source), a);
			rc = SP_EKEYCHANGED;
		}
		goto out;
	}
	if (rc == 0)
		rc = pin_store(cache, &pin);
	if (rc != 0)
		sp_keys_seterr(err, errlen, "%s: cannot store the pin: %s", a,
		    sp_strerror(rc));
out:
	sp_pgp_keyinfo_free(info);
	sp_pgpkeys_pin_finish(&pin);
	free(pub);
	return rc;
}

int
sp_pgpkeys_import(sp_cache *cache, sp_pgp *pgp, const void *key,
    size_t len, void (*report)(void *arg, const char *address, int rc,
    const char *fpr, const char *err), void *arg, char *err, size_t errlen)
{
	struct sp_pgp_keyinfo *info = NULL;
	char a[SP_KEYS_ADDR_BYTES], fpr[SP_PGP_FPR_SIZE], e[512];
	size_t i, j;
	int rc, last = SP_EINVAL, any = 0;

	if (len > SP_PGPKEYS_KEY_MAX) {
		sp_keys_seterr(err, errlen,
		    "the key file is larger than %d bytes",
		    SP_PGPKEYS_KEY_MAX);
		return SP_ELIMIT;
	}
	if ((rc = sp_pgp_key_info(pgp, key, len, &info)) != 0) {
		sp_keys_seterr(err, errlen, "not one OpenPGP key: %s",
		    sp_strerror(rc));
		return rc;
	}
	sp_keys_seterr(err, errlen, "the key %s has no user id with an address",
	    info->fpr);
	for (i = 0; i < info->nuids; i++) {
		if ((info->uids[i].revoked && !info->revoked) ||
		    sp_keys_address(info->uids[i].email, a) != 0)
			continue;
		for (j = 0; j < i; j++) /* once per address */
			if (strcasecmp(info->uids[j].email,
			    info->uids[i].email) == 0)
				break;
		if (j < i)
			continue;
		e[0] = 0;
		rc = sp_pgpkeys_learn(cache, pgp, a, key, len,
		    SP_PGPKEYS_SRC_IMPORT, fpr, e, sizeof(e));
		if (report)
			report(arg, a, rc, fpr, e);
		if (rc == 0)
			any = 1;
		else {
			last = rc;
			sp_keys_seterr(err, errlen, "%s", e);
		}
	}
	sp_pgp_keyinfo_free(info);
	return any ? 0 : last;
}

/* Upper-case hex digits only. */
static void
fpr_norm(const char *in, char *out, size_t cap)
{
	size_t o = 0;

	for (; *in && o + 1 < cap; in++)
		if (isxdigit((unsigned char)*in))
			out[o++] = (char)toupper((unsigned char)*in);
	out[o] = 0;
}

int
sp_pgpkeys_accept(sp_cache *cache, const char *address,
    const char *expect_fpr, char fpr_r[SP_PGP_FPR_SIZE], char *err,
    size_t errlen)
{
	struct sp_pgpkeys_pin pin;
	char want[SP_PGP_FPR_SIZE];
	int rc;

	if (fpr_r)
		fpr_r[0] = 0;
	if ((rc = sp_pgpkeys_get(cache, address, &pin)) != 0) {
		sp_keys_seterr(err, errlen, "%s: no OpenPGP key pinned",
		    address);
		return rc;
	}
	if (pin.pending_len == 0) {
		sp_keys_seterr(err, errlen,
		    "%s: no changed OpenPGP key waits (pinned: "
		    "%s)", pin.address, pin.fpr);
		if (fpr_r)
			memcpy(fpr_r, pin.fpr, SP_PGP_FPR_SIZE);
		sp_pgpkeys_pin_finish(&pin);
		return ENOENT;
	}
	if (expect_fpr) {
		fpr_norm(expect_fpr, want, sizeof(want));
		if (strcmp(want, pin.pending_fpr) != 0) {
			sp_keys_seterr(err, errlen,
			    "%s: the waiting OpenPGP key is %s, "
			    "not the one you compared (%s); nothing changed",
			    pin.address, pin.pending_fpr, want);
			sp_pgpkeys_pin_finish(&pin);
			return SP_EKEYCHANGED;
		}
	}
	free(pin.key);
	pin.key = pin.pending;
	pin.key_len = pin.pending_len;
	pin.pending = NULL;
	pin.pending_len = 0;
	memcpy(pin.fpr, pin.pending_fpr, SP_PGP_FPR_SIZE);
	memset(pin.pending_fpr, 0, sizeof(pin.pending_fpr));
	pin.source = pin.pending_source;
	pin.pending_source = 0;
	pin.first_seen = (uint64_t)time(NULL);
	if ((rc = pin_store(cache, &pin)) != 0)
		sp_keys_seterr(err, errlen, "%s: cannot store the pin: %s",
		    pin.address, sp_strerror(rc));
	else if (fpr_r)
		memcpy(fpr_r, pin.fpr, SP_PGP_FPR_SIZE);
	sp_pgpkeys_pin_finish(&pin);
	return rc;
}

int
sp_pgpkeys_usable(sp_cache *cache, sp_pgp *pgp, const char *address,
    char *err, size_t errlen)
{
	struct sp_pgp_keyinfo *info = NULL;
	struct sp_pgpkeys_pin pin;
	int rc;

	if ((rc = sp_pgpkeys_get(cache, address, &pin)) != 0) {
		sp_keys_seterr(err, errlen, "%s: no OpenPGP key pinned",
		    address);
		return rc;
	}
	if ((rc = sp_pgp_key_info(pgp, pin.key, pin.key_len, &info)) != 0) {
		sp_keys_seterr(err, errlen,
		    "%s: the pinned key cannot be read: %s",
		    pin.address, sp_strerror(rc));
	} else if (info->revoked) {
		sp_keys_seterr(err, errlen,
		    "the OpenPGP key of %s (%s) is REVOKED by "
		    "its owner: ask them for their new key", pin.address,
		    pin.fpr);
		rc = SP_EKEYREVOKED;
	} else if (info->expired) {
		sp_keys_seterr(err, errlen,
		    "the OpenPGP key of %s (%s) has EXPIRED: "
		    "import a renewed copy of it", pin.address, pin.fpr);
		rc = SP_EKEYEXPIRED;
	} else if (!info->can_encrypt) {
		sp_keys_seterr(err, errlen,
		    "the OpenPGP key of %s (%s) has no usable "
		    "encryption subkey", pin.address, pin.fpr);
		rc = SP_EPGP;
	}
	sp_pgp_keyinfo_free(info);
	sp_pgpkeys_pin_finish(&pin);
	return rc;
}

/* ---- WKD --------------------------------------------------------------- */

void
sp_pgpkeys_wkd_hash(const char *local, size_t n, char out[33])
{
	static const char zb32[] = "ybndrfg8ejkmcpqxot1uwisza345h769";
	unsigned char d[SHA_DIGEST_LENGTH], lc[256];
	unsigned bits = 0, acc = 0;
	size_t i, o = 0;

	if (n > sizeof(lc))
		n = sizeof(lc);
	for (i = 0; i < n; i++)
		lc[i] = (unsigned char)tolower((unsigned char)local[i]);
	SHA1(lc, n, d);
	for (i = 0; i < sizeof(d); i++) {
		acc = (acc << 8 | d[i]) & 0xfff;
		bits += 8;
		while (bits >= 5) {
			out[o++] = zb32[(acc >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	out[o] = 0;
}

int
sp_pgpkeys_wkd_url(const char *address, const char *base, char *out,
    size_t cap)
{
	char a[SP_KEYS_ADDR_BYTES], hash[33], l[3 * 256];
	const char *at;
	size_t i, o = 0, nl;
	int n;

	if (sp_keys_address(address, a) != 0)
		return SP_EINVAL;
	/* The local part (lower-cased, as hashed) for l=, percent-encoded. */
	at = strrchr(a, '@');
	nl = (size_t)(at - a);
	sp_pgpkeys_wkd_hash(a, nl, hash);
	for (i = 0; i < nl; i++) {
		unsigned char c = (unsigned char)a[i];

		if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')
			l[o++] = (char)c;
		else
			o += (size_t)snprintf(l + o, sizeof(l) - o, "%%%02X",
			    c);
	}
	l[o] = 0;
	if (base)
		n = snprintf(out, cap, "%s/.well-known/openpgpkey/%s/hu/%s?l=%s",
		    base, at + 1, hash, l);
	else
		n = snprintf(out, cap, "https://openpgpkey.%s/.well-known/"
		    "openpgpkey/%s/hu/%s?l=%s", at + 1, at + 1, hash, l);
	return n < 0 || (size_t)n >= cap ? SP_ELIMIT : 0;
}

/* Splits "https://host[:port]/path". */
static int
url_split(const char *url, char *host, size_t hcap, char *port,
    size_t pcap, const char **path_r)
{
	const char *h, *e, *colon;
	size_t n;

	if (strncmp(url, "https://", 8) != 0)
		return SP_EINVAL;
	h = url + 8;
	if ((e = strchr(h, '/')) == NULL)
		return SP_EINVAL;
	*path_r = e;
	colon = memchr(h, ':', (size_t)(e - h));
	n = (size_t)((colon ? colon : e) - h);
	if (n == 0 || n >= hcap)
		return SP_EINVAL;
	memcpy(host, h, n);
	host[n] = 0;
	n = colon ? (size_t)(e - colon - 1) : 3;
	if (n == 0 || n >= pcap)
		return SP_EINVAL;
	memcpy(port, colon ? colon + 1 : "443", n);
	port[n] = 0;
	return 0;
}

static int
tcp_connect(const char *host, const char *port, int *fd_r)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	struct timeval tv = { .tv_sec = WKD_TIMEOUT_S };
	int fd = -1, rc = ECONNREFUSED;

	if (getaddrinfo(host, port, &hints, &res) != 0)
		return EHOSTUNREACH;
	for (ai = res; ai; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, ai->ai_socktype,
		    ai->ai_protocol)) < 0)
			continue;
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		rc = errno == EINPROGRESS || errno == EAGAIN ? ETIMEDOUT :
		    errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return rc;
	*fd_r = fd;
	return 0;
}

/* Undoes chunked transfer coding in place; -1 if malformed. */
static long
dechunk(uint8_t *b, size_t n)
{
	size_t i = 0, o = 0, sz;
	char *end;

	for (;;) {
		if (i >= n || !isxdigit(b[i]))
			return -1;
		sz = strtoul((char *)b + i, &end, 16);
		i = (size_t)((uint8_t *)end - b);
		while (i + 1 < n && !(b[i] == '\r' && b[i + 1] == '\n'))
			i++;
		i += 2;
		if (sz == 0)
			return (long)o;
		if (i > n || n - i < sz + 2)
			return -1;
		memmove(b + o, b + i, sz);
		o += sz;
		i += sz + 2;
	}
}

/* One GET; the body (at most SP_PGPKEYS_KEY_MAX) in *body_r. */
static int
https_get(const char *url, const char *ca_file, uint8_t **body_r,
    size_t *len_r, char *err, size_t errlen)
{
	char host[256], port[8], req[1024], *p;
	const char *path;
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	uint8_t *b = NULL;
	size_t n = 0, cap = HTTP_HEADER_MAX + SP_PGPKEYS_KEY_MAX + 1, hl;
	int fd = -1, rc, r, status;
	long cl = -1;

	*body_r = NULL;
	*len_r = 0;
	if (url_split(url, host, sizeof(host), port, sizeof(port),
	    &path) != 0) {
		sp_keys_seterr(err, errlen, "%s: not an https:// URL", url);
		return SP_EINVAL;
	}
	if ((rc = tcp_connect(host, port, &fd)) != 0) {
		sp_keys_seterr(err, errlen, "%s:%s: %s", host, port,
		    strerror(rc));
		return rc;
	}
	rc = EPROTO;
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    (ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL) :
	    SSL_CTX_set_default_verify_paths(ctx)) != 1)
		goto tls_fail;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if ((ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1)
		goto tls_fail;
	{
		X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);

		/* An address literal is checked against the certificate's
		 * IP names, a name against its DNS names. */
		if (X509_VERIFY_PARAM_set1_ip_asc(vp, host) != 1) {
			if (X509_VERIFY_PARAM_set1_host(vp, host, 0) != 1 ||
			    SSL_set_tlsext_host_name(ssl, host) != 1)
				goto tls_fail;
		}
	}
	if (SSL_connect(ssl) != 1)
		goto tls_fail;
	r = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n"
	    "User-Agent: sealpost\r\nAccept: */*\r\nConnection: close\r\n\r\n",
	    path, host);
	if (r < 0 || (size_t)r >= sizeof(req) || SSL_write(ssl, req, r) != r)
		goto tls_fail;
	if ((b = malloc(cap)) == NULL) {
		rc = ENOMEM;
		goto out;
	}
	while (n < cap - 1 && (r = SSL_read(ssl, b + n, (int)(cap - 1 -
	    n))) > 0)
		n += (size_t)r;
	if (n >= cap - 1) {
		sp_keys_seterr(err, errlen, "%s: the answer is too large", url);
		rc = SP_ELIMIT;
		goto out;
	}
	b[n] = 0;
	if (sscanf((char *)b, "HTTP/1.%*d %d", &status) != 1 ||
	    (p = strstr((char *)b, "\r\n\r\n")) == NULL) {
		sp_keys_seterr(err, errlen, "%s: not an HTTP answer", url);
		goto out;
	}
	hl = (size_t)(p - (char *)b) + 4;
	if (status == 404) {
		sp_keys_seterr(err, errlen, "%s: no key there (404)", url);
		rc = ENOENT;
		goto out;
	}
	if (status != 200) {
		sp_keys_seterr(err, errlen, "%s: HTTP status %d", url, status);
		goto out;
	}
	p[2] = 0; /* the header, as a string, for the searches below */
	{
		char *te = strcasestr((char *)b, "\r\ntransfer-encoding:");
		char *clh = strcasestr((char *)b, "\r\ncontent-length:");
		int chunked = te && strcasestr(te + 2, "chunked") != NULL &&
		    (strstr(te + 2, "\r\n") == NULL || strcasestr(te + 2,
		    "chunked") < strstr(te + 2, "\r\n"));

		if (clh)
			cl = strtol(clh + 17, NULL, 10);
		memmove(b, b + hl, n - hl);
		n -= hl;
		if (chunked) {
			long m = dechunk(b, n);

			if (m < 0) {
				sp_keys_seterr(err, errlen,
				    "%s: bad chunked body",
				    url);
				goto out;
			}
			n = (size_t)m;
		} else if (cl >= 0 && (size_t)cl < n) {
			n = (size_t)cl;
		}
	}
	*body_r = b;
	*len_r = n;
	b = NULL;
	rc = 0;
	goto out;
tls_fail:
	sp_keys_seterr(err, errlen, "%s: TLS failed: %s", url,
	    ERR_reason_error_string(ERR_peek_last_error()) ?
	    ERR_reason_error_string(ERR_peek_last_error()) : "?");
	ERR_clear_error();
out:
	free(b);
	if (ssl) {
		(void)SSL_shutdown(ssl);
		SSL_free(ssl);
	}
	SSL_CTX_free(ctx);
	if (fd >= 0)
		close(fd);
	return rc;
}

int
sp_pgpkeys_wkd(sp_cache *cache, sp_pgp *pgp, const char *address,
    const char *base, const char *ca_file, char fpr_r[SP_PGP_FPR_SIZE],
    char *err, size_t errlen)
{
	char url[1024], a[SP_KEYS_ADDR_BYTES], *at;
	uint8_t *body = NULL;
	size_t len = 0;
	int rc;

	if (fpr_r)
		fpr_r[0] = 0;
	if ((rc = sp_pgpkeys_wkd_url(address, base, url, sizeof(url))) != 0) {
		sp_keys_seterr(err, errlen, "%s: not an address", address);
		return rc;
	}
	rc = https_get(url, ca_file, &body, &len, err, errlen);
	if (rc != 0 && base == NULL && sp_keys_address(address, a) == 0 &&
	    (at = strchr(a, '@')) != NULL) {
		/* The direct form, when the domain has no openpgpkey.
		 * host. */
		char hash[33];

		sp_pgpkeys_wkd_hash(a, (size_t)(at - a), hash);
		*at = 0;
		snprintf(url, sizeof(url), "https://%s/.well-known/openpgpkey/"
		    "hu/%s?l=%s", at + 1, hash, a);
		rc = https_get(url, ca_file, &body, &len, err, errlen);
	}
	if (rc != 0)
		return rc;
	rc = sp_pgpkeys_learn(cache, pgp, address, body, len,
	    SP_PGPKEYS_SRC_WKD, fpr_r, err, errlen);
	free(body);
	return rc;
}
