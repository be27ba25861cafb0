/*
 * Key directory and pinning (keys.h).  The directory is asked every time a
 * key is about to be used for sending, so that a change is seen at once;
 * the pin is what the answer is judged against.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gmime/gmime.h>
#include <sodium.h>

#include "client-core/keys.h"
#include "crypto/bytes.h"

#define PIN_VERSION 1
#define PIN_HDR 9               /* version u8 | first_seen u64 */
#define FPR_CTX "sealpost-fingerprint-v1"
#define INDEX_KEY ""            /* no address is empty */

void
sp_keys_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

void
sp_keys_info_finish(struct sp_keys_info *info)
{
	if (info == NULL)
		return;
	free(info->raw);
	memset(info, 0, sizeof(*info));
}

void
sp_keys_fingerprint(const uint8_t identity_pk[32],
    const uint8_t encryption_pk[32], char out[SP_KEYS_FPR_BYTES])
{
	static const char hex[] = "0123456789ABCDEF";
	crypto_generichash_state st;
	uint8_t d[20];
	size_t i, o = 0;

	crypto_generichash_init(&st, NULL, 0, sizeof(d));
	crypto_generichash_update(&st, (const uint8_t *)FPR_CTX,
	    sizeof(FPR_CTX) - 1);
	crypto_generichash_update(&st, identity_pk, 32);
	crypto_generichash_update(&st, encryption_pk, 32);
	crypto_generichash_final(&st, d, sizeof(d));
	for (i = 0; i < sizeof(d); i++) {
		if (i > 0 && i % 2 == 0)
			out[o++] = ' ';
		out[o++] = hex[d[i] >> 4];
		out[o++] = hex[d[i] & 15];
	}
	out[o] = 0;
}

void
sp_keys_own_fingerprint(const sp_keyset *ks, char out[SP_KEYS_FPR_BYTES])
{
	sp_keys_fingerprint(sp_keyset_identity_pk(ks),
	    sp_keyset_encryption_pk(ks), out);
}

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;

static void
gmime_start(void)
{
	g_mime_init();
}

/* The rules of crypto/pubkeys.c: printable ASCII, no space, one '@' not at
 * either end; lower-cased into out. */
static int
canon(const char *a, size_t n, char out[SP_KEYS_ADDR_BYTES])
{
	size_t i, at = 0;

	if (n < 3 || n > 254)
		return SP_EINVAL;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)a[i];

		if (ch <= ' ' || ch >= 0x7f)
			return SP_EINVAL;
		at += ch == '@';
		out[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
	}
	out[n] = 0;
	if (at != 1 || out[0] == '@' || out[n - 1] == '@')
		return SP_EINVAL;
	return 0;
}

int
sp_keys_address(const char *s, char out[SP_KEYS_ADDR_BYTES])
{
	InternetAddressList *l;
	InternetAddress *ia;
	const char *addr;
	int rc = SP_EINVAL;

	out[0] = 0;
	if (s == NULL || strlen(s) > 4096)
		return SP_EINVAL;
	/* A bare address needs no parser (and GMime would accept more). */
	if (strpbrk(s, "<>\"(),;: \t") == NULL)
		return canon(s, strlen(s), out);
	pthread_once(&gmime_once, gmime_start);
	if ((l = internet_address_list_parse(NULL, s)) == NULL)
		return SP_EINVAL;
	if (internet_address_list_length(l) == 1 &&
	    INTERNET_ADDRESS_IS_MAILBOX(ia = internet_address_list_get_address(
	    l, 0)) &&
	    (addr = internet_address_mailbox_get_addr(
	    INTERNET_ADDRESS_MAILBOX(ia))) != NULL)
		rc = canon(addr, strlen(addr), out);
	g_object_unref(l);
	return rc;
}

/* Parses and verifies a signed set copied into info (raw owned by it). */
static int
info_from_raw(struct sp_keys_info *info, const uint8_t *b, size_t n)
{
	int rc;

	memset(info, 0, sizeof(*info));
	if (n == 0 || n > SP_PUBKEYS_MAX)
		return SP_ELIMIT;
	if ((info->raw = malloc(n)) == NULL)
		return SP_ENOMEM;
	memcpy(info->raw, b, n);
	info->raw_len = n;
	if ((rc = sp_pubkeys_parse(info->raw, n, &info->pk)) != 0)
		sp_keys_info_finish(info);
	return rc;
}

int
sp_keys_fetch(sp_client *c, const char *address,
    struct sp_keys_info *info_r, char *err, size_t errlen)
{
	char addr[SP_KEYS_ADDR_BYTES];
	struct sp_frame f;
	struct sp_client_msg *m = NULL;
	int rc;

	memset(info_r, 0, sizeof(*info_r));
	if (sp_keys_address(address, addr) != 0) {
		sp_keys_seterr(err, errlen, "'%s' is not an address", address);
		return SP_EINVAL;
	}
	sp_frame_init(&f, SP_MSG_KEYS_GET, 0);
	sp_frame_set_text(&f, SP_F_ADDRESS, addr);
	if ((rc = sp_client_call(c, &f, &m)) != 0) {
		sp_keys_seterr(err, errlen, "key directory: %s",
		    rc == ETIMEDOUT ?
		    "the server did not answer" : "the connection closed");
		return rc;
	}
	if (m->f.type == SP_MSG_ERROR) {
		if (m->f.f[SP_F_CODE].u == SP_PERR_NOT_FOUND) {
			sp_keys_seterr(err, errlen,
			    "%s has no sealpost account on "
			    "this server", addr);
			rc = ENOENT;
		} else {
			sp_keys_seterr(err, errlen, "key directory: %s (%.*s)",
			    sp_proto_strerror((int)m->f.f[SP_F_CODE].u),
			    (int)m->f.f[SP_F_MESSAGE].len,
			    (const char *)m->f.f[SP_F_MESSAGE].ptr);
			rc = SP_ESERVER;
		}
		goto out;
	}
	if (m->f.type != SP_MSG_KEYS) {
		sp_keys_seterr(err, errlen, "key directory: unexpected reply");
		rc = EPROTO;
		goto out;
	}
	if ((rc = info_from_raw(info_r, m->f.f[SP_F_PUBKEYS].ptr,
	    m->f.f[SP_F_PUBKEYS].len)) != 0) {
		sp_keys_seterr(err, errlen,
		    "the key directory served a key set for %s "
		    "that does not verify: %s", addr, sp_strerror(rc));
		goto out;
	}
	/* The self-signature binds the address: a set signed for another
	 * address is someone else's keys, whatever the server says. */
	if (strcmp(info_r->pk.address, addr) != 0) {
		sp_keys_seterr(err, errlen,
		    "the key directory served the key set of "
		    "%s when asked for %s", info_r->pk.address, addr);
		sp_keys_info_finish(info_r);
		rc = SP_EAUTH;
	}
out:
	sp_client_msg_free(m);
	return rc;
}

static int
load_pin(sp_cache *cache, const char *addr, struct sp_keys_info *info)
{
	uint8_t *v = NULL;
	size_t n = 0;
	int rc;

	memset(info, 0, sizeof(*info));
	if ((rc = sp_cache_get(cache, SP_CACHE_T_PINS, addr, strlen(addr), &v,
	    &n)) != 0)
		return rc;
	if (n <= PIN_HDR || v[0] != PIN_VERSION)
		rc = v[0] != PIN_VERSION ? SP_EVERSION : SP_EFORMAT;
	else if ((rc = info_from_raw(info, v + PIN_HDR, n - PIN_HDR)) == 0)
		info->first_seen = sp_get_be64(v + 1);
	/* A pin under another address's key would be a cache bug, but the
	 * check is cheap and the consequence of missing it is not. */
	if (rc == 0 && strcmp(info->pk.address, addr) != 0) {
		sp_keys_info_finish(info);
		rc = SP_EFORMAT;
	}
	free(v);
	return rc;
}

int
sp_keys_pinned(sp_cache *cache, const char *address,
    struct sp_keys_info *info_r)
{
	char addr[SP_KEYS_ADDR_BYTES];

	memset(info_r, 0, sizeof(*info_r));
	if (sp_keys_address(address, addr) != 0)
		return SP_EINVAL;
	return load_pin(cache, addr, info_r);
}

/* Is addr in the NUL-separated list idx[0..n)? */
static int
index_has(const uint8_t *idx, size_t n, const char *addr)
{
	size_t off = 0, alen = strlen(addr);

	while (off < n) {
		const uint8_t *end = memchr(idx + off, 0, n - off);
		size_t l = end ? (size_t)(end - (idx + off)) : n - off;

		if (l == alen && memcmp(idx + off, addr, l) == 0)
			return 1;
		off += l + 1;
	}
	return 0;
}

/* Writes the pin and adds the address to the index, in one batch. */
static int
store_pin(sp_cache *cache, struct sp_keys_info *info, uint64_t first_seen)
{
	const char *addr = info->pk.address;
	size_t alen = strlen(addr), ilen = 0;
	sp_cache_batch *b = NULL;
	uint8_t *v = NULL, *idx = NULL, *nidx = NULL;
	int rc;

	if ((v = malloc(PIN_HDR + info->raw_len)) == NULL)
		return SP_ENOMEM;
	v[0] = PIN_VERSION;
	sp_put_be64(v + 1, first_seen);
	memcpy(v + PIN_HDR, info->raw, info->raw_len);
	if ((rc = sp_cache_begin(cache, &b)) != 0)
		goto out;
	if ((rc = sp_cache_batch_put(b, SP_CACHE_T_PINS, addr, alen, v,
	    PIN_HDR + info->raw_len)) != 0)
		goto out_abort;
	rc = sp_cache_batch_get(b, SP_CACHE_T_PINS, INDEX_KEY, 0, &idx, &ilen);
	if (rc == ENOENT) {
		ilen = 0;
		rc = 0;
	}
	if (rc != 0)
		goto out_abort;
	if (!index_has(idx, ilen, addr)) {
		if ((nidx = malloc(ilen + alen + 1)) == NULL) {
			rc = SP_ENOMEM;
			goto out_abort;
		}
		if (ilen)
			memcpy(nidx, idx, ilen);
		memcpy(nidx + ilen, addr, alen + 1);
		if ((rc = sp_cache_batch_put(b, SP_CACHE_T_PINS, INDEX_KEY, 0,
		    nidx, ilen + alen + 1)) != 0)
			goto out_abort;
	}
	rc = sp_cache_commit(b);
	b = NULL;
	if (rc == 0)
		info->first_seen = first_seen;
out_abort:
	sp_cache_abort(b);
out:
	free(nidx);
	free(idx);
	free(v);
	return rc;
}

/* Same identity: is the served set the pinned one, or a newer one? */
static int
same_contents(const struct sp_keys_info *a, const struct sp_keys_info *b)
{
	return a->raw_len == b->raw_len &&
	    memcmp(a->raw, b->raw, a->raw_len) == 0;
}

int
sp_keys_get(sp_cache *cache, sp_client *c, const char *address,
    struct sp_keys_info *info_r, struct sp_keys_info *served_r, char *err,
    size_t errlen)
{
	struct sp_keys_info served, pin;
	char fp_pin[SP_KEYS_FPR_BYTES], fp_new[SP_KEYS_FPR_BYTES];
	int rc;

	memset(info_r, 0, sizeof(*info_r));
	if (served_r)
		memset(served_r, 0, sizeof(*served_r));
	if ((rc = sp_keys_fetch(c, address, &served, err, errlen)) != 0)
		return rc;
	rc = load_pin(cache, served.pk.address, &pin);
	if (rc == ENOENT) {
		if ((rc = store_pin(cache, &served,
		    (uint64_t)time(NULL))) != 0) {
			sp_keys_seterr(err, errlen, "pinning the key of %s: %s",
			    served.pk.address, sp_strerror(rc));
			sp_keys_info_finish(&served);
			return rc;
		}
		served.pinned_now = 1;
		*info_r = served;
		return 0;
	}
	if (rc != 0) {
		sp_keys_seterr(err, errlen, "the pinned key of %s: %s",
		    served.pk.address, sp_strerror(rc));
		sp_keys_info_finish(&served);
		return rc;
	}
	if (sodium_memcmp(pin.pk.identity_pk, served.pk.identity_pk, 32) == 0) {
		if (same_contents(&pin, &served)) {
			sp_keys_info_finish(&served);
			*info_r = pin;
			return 0;
		}
		/* Signed by the pinned identity: the owner's own update, if
		 * it is newer than what we hold. */
		if (served.pk.created > pin.pk.created) {
			if ((rc = store_pin(cache, &served,
			    pin.first_seen)) != 0) {
				sp_keys_seterr(err, errlen,
				    "pinning the key of %s: %s",
				    served.pk.address, sp_strerror(rc));
				sp_keys_info_finish(&served);
				sp_keys_info_finish(&pin);
				return rc;
			}
			sp_keys_info_finish(&pin);
			*info_r = served;
			return 0;
		}
		sp_keys_seterr(err, errlen,
		    "the server serves an older key set for "
		    "%s than the one pinned here (a rollback); refused",
		    served.pk.address);
		goto changed;
	}
	sp_keys_fingerprint(pin.pk.identity_pk, pin.pk.encryption_pk, fp_pin);
	sp_keys_fingerprint(served.pk.identity_pk, served.pk.encryption_pk,
	    fp_new);
	sp_keys_seterr(err, errlen,
	    "the key of %s changed: pinned %s, the server "
	    "now gives %s; compare the fingerprint with %s, then run "
	    "`sealpost keys accept %s`", served.pk.address, fp_pin, fp_new,
	    served.pk.address, served.pk.address);
changed:
	*info_r = pin;
	if (served_r)
		*served_r = served;
	else
		sp_keys_info_finish(&served);
	return SP_EKEYCHANGED;
}

/* Do two fingerprints match, ignoring spaces and letter case? */
static int
fpr_equal(const char *a, const char *b)
{
	for (;;) {
		while (*a == ' ')
			a++;
		while (*b == ' ')
			b++;
		if (*a == 0 || *b == 0)
			return *a == *b;
		if ((*a | 0x20) != (*b | 0x20))
			return 0;
		a++;
		b++;
	}
}

int
sp_keys_accept(sp_cache *cache, sp_client *c, const char *address,
    const char *expect_fpr, struct sp_keys_info *info_r, char *err,
    size_t errlen)
{
	struct sp_keys_info served;
	char fpr[SP_KEYS_FPR_BYTES];
	int rc;

	if (info_r)
		memset(info_r, 0, sizeof(*info_r));
	if ((rc = sp_keys_fetch(c, address, &served, err, errlen)) != 0)
		return rc;
	sp_keys_fingerprint(served.pk.identity_pk, served.pk.encryption_pk,
	    fpr);
	if (expect_fpr && !fpr_equal(fpr, expect_fpr)) {
		sp_keys_seterr(err, errlen,
		    "the directory serves %s for %s, not the "
		    "fingerprint you gave; nothing was pinned", fpr,
		    served.pk.address);
		sp_keys_info_finish(&served);
		return SP_EKEYCHANGED;
	}
	if ((rc = store_pin(cache, &served, (uint64_t)time(NULL))) != 0) {
		sp_keys_seterr(err, errlen, "pinning the key of %s: %s",
		    served.pk.address, sp_strerror(rc));
		sp_keys_info_finish(&served);
		return rc;
	}
	served.pinned_now = 1;
	if (info_r)
		*info_r = served;
	else
		sp_keys_info_finish(&served);
	return 0;
}

int
sp_keys_list(sp_cache *cache, char **addrs_r, size_t *n_r)
{
	uint8_t *idx = NULL;
	size_t ilen = 0, i, n = 0;
	int rc;

	*addrs_r = NULL;
	*n_r = 0;
	rc = sp_cache_get(cache, SP_CACHE_T_PINS, INDEX_KEY, 0, &idx, &ilen);
	if (rc == ENOENT)
		return 0;
	if (rc != 0)
		return rc;
	/* Every entry ends in a NUL; a list that does not is not ours. */
	if (ilen == 0 || idx[ilen - 1] != 0) {
		free(idx);
		return SP_EFORMAT;
	}
	for (i = 0; i < ilen; i++)
		n += idx[i] == 0;
	*addrs_r = (char *)idx;
	*n_r = n;
	return 0;
}

int
sp_keys_check_signer(sp_cache *cache, sp_client *c, const char *from,
    const uint8_t signer_pk[32], char *err, size_t errlen)
{
	struct sp_keys_info pin, served;
	char addr[SP_KEYS_ADDR_BYTES];
	int rc;

	if (from == NULL || sp_keys_address(from, addr) != 0) {
		sp_keys_seterr(err, errlen,
		    "the sender '%s' is not one address",
		    from ? from : "");
		return SP_EINVAL;
	}
	rc = load_pin(cache, addr, &pin);
	if (rc == ENOENT && c != NULL) {
		/* First message from this sender: pin what the directory
		 * serves now, then judge the signature against it. */
		rc = sp_keys_get(cache, c, addr, &pin, NULL, err, errlen);
		if (rc != 0)
			return rc;
	} else if (rc == ENOENT) {
		sp_keys_seterr(err, errlen, "no pinned key for %s", addr);
		return ENOENT;
	} else if (rc != 0) {
		sp_keys_seterr(err, errlen, "the pinned key of %s: %s", addr,
		    sp_strerror(rc));
		return rc;
	}
	if (sodium_memcmp(pin.pk.identity_pk, signer_pk, 32) == 0) {
		sp_keys_info_finish(&pin);
		return 0;
	}
	sp_keys_info_finish(&pin);
	rc = SP_ESIG;
	sp_keys_seterr(err, errlen,
	    "signed by a key that is not the pinned key of %s",
	    addr);
	if (c != NULL && sp_keys_fetch(c, addr, &served, NULL, 0) == 0) {
		if (sodium_memcmp(served.pk.identity_pk, signer_pk, 32) == 0) {
			rc = SP_EKEYCHANGED;
			sp_keys_seterr(err, errlen,
			    "signed by the new key of %s, not "
			    "the pinned one: the key changed; compare "
			    "fingerprints, then run `sealpost keys accept %s`",
			    addr, addr);
		}
		sp_keys_info_finish(&served);
	}
	return rc;
}
