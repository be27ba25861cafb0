#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/bytes.h"
#include "crypto/pubkeys.h"

#define SIG_CTX "sealpost-pubkeys-v1"

static void
digest(const uint8_t *b, size_t n, uint8_t d[64])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, 64);
	crypto_generichash_update(&st, (const uint8_t *)SIG_CTX,
	    sizeof(SIG_CTX) - 1);
	crypto_generichash_update(&st, b, n);
	crypto_generichash_final(&st, d, 64);
}

/* Addresses: printable ASCII without spaces, one '@', lower case. */
static int
address_ok(const uint8_t *a, size_t n)
{
	size_t i, at = 0;

	if (n < 3 || n > 254)
		return 0;
	for (i = 0; i < n; i++) {
		if (a[i] <= ' ' || a[i] >= 0x7f || (a[i] >= 'A' && a[i] <= 'Z'))
			return 0;
		at += a[i] == '@';
	}
	return at == 1 && a[0] != '@' && a[n - 1] != '@';
}

int
sp_pubkeys_sign(const sp_keyset *ks, const char *address, uint64_t created,
    const uint8_t *pgp, size_t pgp_len, uint8_t **out_r, size_t *len_r)
{
	size_t alen = strlen(address), total, off = 0, i;
	uint8_t *b, d[64];

	*out_r = NULL;
	if (pgp_len > SP_PUBKEYS_PGP_MAX || (pgp_len && pgp == NULL))
		return SP_EINVAL;
	if (alen < 3 || alen > 254)
		return SP_EINVAL;
	total = 2 + alen + 64 + 8 + 4 + pgp_len + 64;
	if ((b = malloc(total)) == NULL)
		return SP_ENOMEM;
	b[off++] = SP_PUBKEYS_VERSION;
	b[off++] = (uint8_t)alen;
	for (i = 0; i < alen; i++)
		b[off++] = (uint8_t)tolower((unsigned char)address[i]);
	if (!address_ok(b + 2, alen)) {
		free(b);
		return SP_EINVAL;
	}
	memcpy(b + off, sp_keyset_identity_pk(ks), 32);
	memcpy(b + off + 32, sp_keyset_encryption_pk(ks), 32);
	off += 64;
	sp_put_be64(b + off, created);
	sp_put_be32(b + off + 8, (uint32_t)pgp_len);
	off += 12;
	if (pgp_len)
		memcpy(b + off, pgp, pgp_len);
	off += pgp_len;
	digest(b, off, d);
	crypto_sign_detached(b + off, NULL, d, sizeof(d),
	    sp_keyset_identity_sk(ks));
	*out_r = b;
	*len_r = total;
	return 0;
}

int
sp_pubkeys_parse(const uint8_t *in, size_t len, struct sp_pubkeys *p)
{
	size_t alen, off, pgp_len;
	uint8_t d[64];

	memset(p, 0, sizeof(*p));
	if (len < 1)
		return SP_ETRUNC;
	if (in[0] != SP_PUBKEYS_VERSION)
		return SP_EVERSION;
	if (len > SP_PUBKEYS_MAX)
		return SP_ELIMIT;
	if (len < 2)
		return SP_ETRUNC;
	alen = in[1];
	if (len < 2 + alen + 64 + 8 + 4 + 64)
		return SP_ETRUNC;
	if (!address_ok(in + 2, alen))
		return SP_EFORMAT;
	off = 2 + alen;
	memcpy(p->identity_pk, in + off, 32);
	memcpy(p->encryption_pk, in + off + 32, 32);
	off += 64;
	p->created = sp_get_be64(in + off);
	pgp_len = sp_get_be32(in + off + 8);
	off += 12;
	if (pgp_len > SP_PUBKEYS_PGP_MAX)
		return SP_ELIMIT;
	if (len != off + pgp_len + 64)
		return SP_ETRUNC;
	digest(in, off + pgp_len, d);
	if (crypto_sign_verify_detached(in + off + pgp_len, d, sizeof(d),
	    p->identity_pk) != 0) {
		memset(p, 0, sizeof(*p));
		return SP_ESIG;
	}
	memcpy(p->address, in + 2, alen);
	p->address[alen] = 0;
	p->pgp = pgp_len ? in + off : NULL;
	p->pgp_len = pgp_len;
	return 0;
}
