/*
 * Web Key Directory (draft-koch-openpgp-webkey-service): serves each
 * account's OpenPGP public key, taken from its self-signed public key set,
 * so that outside PGP users can write in encrypted.
 *
 *   direct:   /.well-known/openpgpkey/hu/HASH?l=LOCAL      (domain: Host)
 *   advanced: /.well-known/openpgpkey/DOMAIN/hu/HASH?l=LOCAL
 *   policy:   /.well-known/openpgpkey[/DOMAIN]/policy       (empty file)
 *
 * HASH is z-base-32(SHA-1(lower-case local part)).  The server keeps no
 * index by hash: it needs the l= parameter that current clients (gpg 2.2+)
 * send, checks that it hashes to HASH, and looks the address up.  A
 * request without l= is answered 404.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "crypto/pubkeys.h"
#include "server/sync/sync.h"

#define WKD_PREFIX "/.well-known/openpgpkey/"

/* z-base-32 of SHA-1 of the lower-cased local part: 32 characters. */
void
sp_wkd_hash(const char *local, char out[33])
{
	static const char zb32[] = "ybndrfg8ejkmcpqxot1uwisza345h769";
	unsigned char d[SHA_DIGEST_LENGTH], lc[256];
	size_t n = strlen(local), i;
	unsigned bits = 0, acc = 0, o = 0;

	if (n > sizeof(lc))
		n = sizeof(lc);
	for (i = 0; i < n; i++)
		lc[i] = (unsigned char)tolower((unsigned char)local[i]);
	SHA1(lc, n, d);
	for (i = 0; i < sizeof(d); i++) {
		acc = (acc << 8) | d[i];
		bits += 8;
		while (bits >= 5) {
			out[o++] = zb32[(acc >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	out[o] = 0;
}

static int
domain_served(const struct sp_server_config *cfg, const char *d)
{
	char addr[300];

	snprintf(addr, sizeof(addr), "x@%s", d);
	return sp_config_serves(cfg, addr);
}

int
sp_wkd_lookup(struct sp_sync *s, struct lws *wsi, const char *uri,
    uint8_t **body_r, size_t *len_r)
{
	char domain[256] = "", hash[64], local[256], argbuf[300], want[33];
	char address[512];
	const char *rest = uri + strlen(WKD_PREFIX), *slash, *l;
	struct sp_pubkeys pk;
	uint8_t *keys = NULL;
	size_t klen;
	int rc = 0;

	*body_r = NULL;
	if (strncmp(uri, WKD_PREFIX, strlen(WKD_PREFIX)) != 0)
		return 0;
	if (strncmp(rest, "hu/", 3) != 0 && strcmp(rest, "policy") != 0) {
		/* Advanced: DOMAIN/ first. */
		if ((slash = strchr(rest, '/')) == NULL ||
		    (size_t)(slash - rest) >= sizeof(domain))
			return 0;
		memcpy(domain, rest, (size_t)(slash - rest));
		domain[slash - rest] = 0;
		rest = slash + 1;
	} else if (lws_hdr_copy(wsi, domain, sizeof(domain),
	    WSI_TOKEN_HOST) > 0 || lws_hdr_copy(wsi, domain, sizeof(domain),
	    WSI_TOKEN_HTTP_COLON_AUTHORITY) > 0) {
		/* HTTP/1.1 Host, or HTTP/2 :authority; without the port. */
		char *colon = strchr(domain, ':');

		if (colon)
			*colon = 0;
	}
	if (!domain_served(s->cfg, domain))
		return 0;
	if (strcmp(rest, "policy") == 0)
		return 2;
	if (strncmp(rest, "hu/", 3) != 0 || strlen(rest + 3) != 32)
		return 0;
	snprintf(hash, sizeof(hash), "%s", rest + 3);
	if ((l = lws_get_urlarg_by_name(wsi, "l=", argbuf,
	    sizeof(argbuf))) == NULL || strlen(l) == 0 ||
	    strlen(l) >= sizeof(local) || strchr(l, '@'))
		return 0;
	snprintf(local, sizeof(local), "%s", l);
	sp_wkd_hash(local, want);
	if (strcmp(want, hash) != 0)
		return 0;
	snprintf(address, sizeof(address), "%s@%s", local, domain);
	for (char *p = address; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	/* A read on the loop thread: LMDB reads do not wait for writers. */
	if (sp_store_pubkeys_get(s->store, address, &keys, &klen) != 0)
		return 0;
	if (sp_pubkeys_parse(keys, klen, &pk) == 0 && pk.pgp_len > 0 &&
	    (*body_r = malloc(pk.pgp_len)) != NULL) {
		memcpy(*body_r, pk.pgp, pk.pgp_len);
		*len_r = pk.pgp_len;
		rc = 1;
	}
	free(keys);
	return rc;
}
