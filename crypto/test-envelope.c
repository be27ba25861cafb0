#include <sodium.h>

#include "crypto/envelope.h"
#include "crypto/pad.h"
#include "tests/unit.h"

static sp_keyset *alice, *bob, *carol;

static uint8_t *
pattern(size_t n)
{
	uint8_t *p = malloc(n ? n : 1);
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 131 + 7);
	return p;
}

static int
seal_to(const sp_keyset *to, const sp_keyset *signer, unsigned shift,
    const uint8_t *msg, size_t len, uint8_t **env, size_t *env_len)
{
	uint8_t rcpt[1][32];
	struct sp_envelope_seal_args a = {
		.kind = SP_ENVELOPE_KIND_BODY,
		.recipients = (const uint8_t(*)[32])rcpt,
		.n_recipients = 1, .signer = signer, .chunk_shift = shift,
	};

	memcpy(rcpt[0], sp_keyset_encryption_pk(to), 32);
	return sp_envelope_seal(&a, msg, len, env, env_len);
}

/* Opens and fully reads; returns the first error. */
static int
open_all(const uint8_t *env, size_t len, const sp_keyset *ks, uint8_t *buf,
    size_t buf_len)
{
	sp_envelope *r;
	int rc;

	if ((rc = sp_envelope_open(env, len, ks, &r)) != 0)
		return rc;
	if (sp_envelope_content_length(r) > buf_len)
		rc = SP_EFORMAT;
	else
		rc = sp_envelope_read_all(r, buf, buf_len);
	sp_envelope_close(r);
	return rc;
}

static void
t_roundtrip_sizes(void)
{
	static const size_t sizes[] = { 0, 1, 255, 256, 1023, 1024, 1025,
	    4096, 51200, 70000, 200000 };
	size_t i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i], env_len;
		uint8_t *msg = pattern(n), *env, *out = malloc(n + 1);
		sp_envelope *r;

		CHECK_RC(seal_to(bob, NULL, i % 2 ? 10 : 0, msg, n, &env,
		    &env_len), 0);
		CHECK_RC(sp_envelope_open(env, env_len, bob, &r), 0);
		CHECK(sp_envelope_content_length(r) == n);
		CHECK(sp_envelope_kind(r) == SP_ENVELOPE_KIND_BODY);
		CHECK_RC(sp_envelope_read_all(r, out, n + 1), 0);
		CHECK(memcmp(out, msg, n) == 0);
		sp_envelope_close(r);
		/* Stored size reveals only the padded size. */
		CHECK(env_len >= sp_pad_size(n));
		free(env);
		free(msg);
		free(out);
	}
}

static void
t_padding_hides_size(void)
{
	uint8_t *m = pattern(50000), *e1, *e2;
	size_t l1, l2;

	CHECK_RC(seal_to(bob, NULL, 0, m, 49500, &e1, &l1), 0);
	CHECK_RC(seal_to(bob, NULL, 0, m, 50000, &e2, &l2), 0);
	CHECK(l1 == l2); /* both pad to 51200 */
	free(e1);
	CHECK_RC(seal_to(bob, NULL, 0, m, 49000, &e1, &l1), 0);
	CHECK(l1 < l2); /* 49152 */
	free(e1);
	free(e2);
	free(m);
}

static void
t_multi_recipient_and_mailbox(void)
{
	uint8_t rc2[2][32], *env, *msg = pattern(3000), out[3000];
	struct sp_envelope_seal_args a = {
		.kind = SP_ENVELOPE_KIND_META, .recipients = (const uint8_t(*)[32])rc2,
		.n_recipients = 2, .mailbox_key = sp_keyset_mailbox_key(alice),
	};
	size_t len;
	sp_envelope *r;

	memcpy(rc2[0], sp_keyset_encryption_pk(bob), 32);
	memcpy(rc2[1], sp_keyset_encryption_pk(carol), 32);
	CHECK_RC(sp_envelope_seal(&a, msg, 3000, &env, &len), 0);
	CHECK_RC(open_all(env, len, bob, out, sizeof(out)), 0);
	CHECK(memcmp(out, msg, 3000) == 0);
	CHECK_RC(open_all(env, len, carol, out, sizeof(out)), 0);
	CHECK_RC(open_all(env, len, alice, out, sizeof(out)), 0);
	/* Mailbox key alone, no X25519 key. */
	CHECK_RC(sp_envelope_open_raw(env, len, NULL, NULL,
	    sp_keyset_mailbox_key(alice), &r), 0);
	CHECK(sp_envelope_kind(r) == SP_ENVELOPE_KIND_META);
	sp_envelope_close(r);
	free(env);
	free(msg);
}

static void
t_wrong_key_and_recipient(void)
{
	uint8_t *env, *msg = pattern(100), out[100];
	size_t len;
	sp_envelope *r = (sp_envelope *)1;

	CHECK_RC(seal_to(bob, NULL, 0, msg, 100, &env, &len), 0);
	CHECK_RC(open_all(env, len, alice, out, sizeof(out)), SP_ENOKEY);
	CHECK_RC(open_all(env, len, carol, out, sizeof(out)), SP_ENOKEY);
	CHECK_RC(sp_envelope_open_raw(env, len, NULL, NULL,
	    sp_keyset_mailbox_key(bob), &r), SP_ENOKEY);
	CHECK(r == NULL);
	free(env);
	free(msg);
}

static void
t_wrong_version_and_args(void)
{
	uint8_t *env, *msg = pattern(10), out[10];
	size_t len;
	struct sp_envelope_seal_args none = { .kind = SP_ENVELOPE_KIND_BODY };
	struct sp_envelope_seal_args badkind = { .kind = 9,
	    .mailbox_key = sp_keyset_mailbox_key(bob) };

	CHECK_RC(seal_to(bob, NULL, 0, msg, 10, &env, &len), 0);
	env[0] = 2;
	CHECK_RC(open_all(env, len, bob, out, sizeof(out)), SP_EVERSION);
	env[0] = 1;
	env[2] = 7; /* unknown AEAD */
	CHECK_RC(open_all(env, len, bob, out, sizeof(out)), SP_EVERSION);
	env[2] = 1;
	CHECK_RC(open_all(env, len, bob, out, sizeof(out)), 0);
	free(env);
	CHECK_RC(sp_envelope_seal(&none, msg, 10, &env, &len), SP_EINVAL);
	CHECK_RC(sp_envelope_seal(&badkind, msg, 10, &env, &len), SP_EINVAL);
	CHECK(env == NULL);
	free(msg);
}

/* Every single-bit flip anywhere in a signed, multi-chunk envelope must be
 * rejected, either at open or at read_all. */
static void
t_every_bit_flip(void)
{
	uint8_t *env, *msg = pattern(2100), out[2100];
	size_t len, i, accepted = 0;
	int b;

	CHECK_RC(seal_to(bob, alice, 10, msg, 2100, &env, &len), 0);
	for (i = 0; i < len; i++) {
		for (b = 0; b < 8; b++) {
			env[i] ^= (uint8_t)(1u << b);
			if (open_all(env, len, bob, out, sizeof(out)) == 0)
				accepted++;
			env[i] ^= (uint8_t)(1u << b);
		}
	}
	CHECK(accepted == 0);
	CHECK_RC(open_all(env, len, bob, out, sizeof(out)), 0);
	free(env);
	free(msg);
}

static void
t_every_truncation(void)
{
	uint8_t *env, *msg = pattern(2100), out[2100], *longer;
	size_t len, i, accepted = 0;

	CHECK_RC(seal_to(bob, NULL, 10, msg, 2100, &env, &len), 0);
	for (i = 0; i < len; i++)
		if (open_all(env, i, bob, out, sizeof(out)) == 0)
			accepted++;
	CHECK(accepted == 0);
	CHECK_RC(open_all(env, 0, bob, out, sizeof(out)), SP_ETRUNC);
	/* Drop exactly the last chunk: lengths no longer add up. */
	CHECK_RC(open_all(env, len - (256 + 16), bob, out, sizeof(out)),
	    SP_ETRUNC);
	/* One extra byte is as wrong as one missing. */
	longer = malloc(len + 1);
	memcpy(longer, env, len);
	longer[len] = 0;
	CHECK_RC(open_all(longer, len + 1, bob, out, sizeof(out)), SP_ETRUNC);
	free(longer);
	free(env);
	free(msg);
}

/* Chunks are 1 KiB here: 2100 bytes pad to 2304 -> chunks of 1024, 1024,
 * 256.  Swapping chunks 1 and 2 must fail; a range inside an intact chunk
 * still decrypts when another chunk is damaged. */
static void
t_chunk_reorder_and_ranges(void)
{
	uint8_t *env, *msg = pattern(2100), out[2100], tmp[1040];
	size_t len, data;
	sp_envelope *r;

	CHECK_RC(seal_to(bob, NULL, 10, msg, 2100, &env, &len), 0);
	data = len - (1040 + 1040 + 272);
	memcpy(tmp, env + data, 1040);
	memcpy(env + data, env + data + 1040, 1040);
	memcpy(env + data + 1040, tmp, 1040);
	CHECK_RC(open_all(env, len, bob, out, sizeof(out)), SP_EAUTH);
	CHECK_RC(sp_envelope_open(env, len, bob, &r), 0);
	CHECK_RC(sp_envelope_read(r, 0, out, 10), SP_EAUTH);
	CHECK_RC(sp_envelope_read(r, 2048, out, 52), 0); /* chunk 3 intact */
	CHECK(memcmp(out, msg + 2048, 52) == 0);
	sp_envelope_close(r);
	/* Swap back, then every range reads right. */
	memcpy(tmp, env + data, 1040);
	memcpy(env + data, env + data + 1040, 1040);
	memcpy(env + data + 1040, tmp, 1040);
	CHECK_RC(sp_envelope_open(env, len, bob, &r), 0);
	CHECK_RC(sp_envelope_read(r, 1000, out, 1100), 0); /* spans 3 chunks */
	CHECK(memcmp(out, msg + 1000, 1100) == 0);
	CHECK_RC(sp_envelope_read(r, 2099, out, 1), 0);
	CHECK(out[0] == msg[2099]);
	CHECK_RC(sp_envelope_read(r, 2099, out, 2), SP_ERANGE);
	CHECK_RC(sp_envelope_read(r, UINT64_MAX, out, 2), SP_ERANGE);
	sp_envelope_close(r);
	free(env);
	free(msg);
}

static void
t_signature(void)
{
	uint8_t *env, *msg = pattern(5000), out[5000], pk[32];
	size_t len;
	sp_envelope *r;

	CHECK_RC(seal_to(bob, alice, 0, msg, 5000, &env, &len), 0);
	CHECK_RC(sp_envelope_open(env, len, bob, &r), 0);
	CHECK(sp_envelope_signer(r, pk) == 1);
	CHECK(memcmp(pk, sp_keyset_identity_pk(alice), 32) == 0);
	CHECK_RC(sp_envelope_read_all(r, out, sizeof(out)), 0);
	sp_envelope_close(r);
	free(env);
	CHECK_RC(seal_to(bob, NULL, 0, msg, 5000, &env, &len), 0);
	CHECK_RC(sp_envelope_open(env, len, bob, &r), 0);
	CHECK(sp_envelope_signer(r, pk) == 0);
	sp_envelope_close(r);
	free(env);
	free(msg);
}

/*
 * A malicious sender holds the content key and can write any signature.
 * Build such an envelope by hand (mailbox-key slot, so the test can unwrap
 * the content key itself) and check that a forged signature is SP_ESIG and
 * never a silent success.  This also re-derives the layout from
 * docs/format.md independently of envelope.c.
 */
static void
t_forged_signature(void)
{
	const uint8_t *mbx = sp_keyset_mailbox_key(bob);
	struct sp_envelope_seal_args a = { .kind = SP_ENVELOPE_KIND_BODY,
	    .mailbox_key = mbx, .signer = alice };
	uint8_t *env, *msg = pattern(300), out[300], key[32], info[128];
	uint8_t hash[32], nonce[24], ad[41];
	const char *mad = "sealpost-envelope-mailbox-v1";
	size_t len, hlen = 32 + 73;
	unsigned long long n;

	CHECK_RC(sp_envelope_seal(&a, msg, 300, &env, &len), 0);
	CHECK(env[32] == 2);
	CHECK(crypto_aead_xchacha20poly1305_ietf_decrypt(key, &n, NULL,
	    env + 33 + 24, 48, (const uint8_t *)mad, strlen(mad), env + 33,
	    mbx) == 0);
	crypto_generichash(hash, 32, env, hlen, NULL, 0);
	memcpy(nonce, env + 16, 16);
	memset(nonce + 16, 0, 8);
	memcpy(ad, hash, 32);
	memset(ad + 32, 0, 9);
	CHECK(crypto_aead_xchacha20poly1305_ietf_decrypt(info, &n, NULL,
	    env + hlen, 144, ad, sizeof(ad), nonce, key) == 0);
	CHECK(info[8] == 1);
	CHECK(memcmp(info + 16, sp_keyset_identity_pk(alice), 32) == 0);
	info[48] ^= 1; /* forge */
	crypto_aead_xchacha20poly1305_ietf_encrypt(env + hlen, NULL, info, 128,
	    ad, sizeof(ad), NULL, nonce, key);
	CHECK_RC(open_all(env, len, bob, out, sizeof(out)), SP_ESIG);
	/* Claiming carol's key with alice's signature fails the same way. */
	info[48] ^= 1;
	memcpy(info + 16, sp_keyset_identity_pk(carol), 32);
	crypto_aead_xchacha20poly1305_ietf_encrypt(env + hlen, NULL, info, 128,
	    ad, sizeof(ad), NULL, nonce, key);
	CHECK_RC(open_all(env, len, bob, out, sizeof(out)), SP_ESIG);
	/* Non-zero padding is refused too. */
	memcpy(info + 16, sp_keyset_identity_pk(alice), 32);
	info[8] = 0;
	memset(info + 16, 0, 96);
	crypto_aead_xchacha20poly1305_ietf_encrypt(env + hlen, NULL, info, 128,
	    ad, sizeof(ad), NULL, nonce, key);
	CHECK_RC(open_all(env, len, bob, out, sizeof(out)), 0);
	{
		uint8_t chunk[512]; /* 300 pads to 512 */

		nonce[23] = 1;
		ad[40] = 1;
		ad[39] = 1;
		CHECK(crypto_aead_xchacha20poly1305_ietf_decrypt(chunk, &n,
		    NULL, env + hlen + 144, 512 + 16, ad, sizeof(ad), nonce,
		    key) == 0);
		chunk[511] = 0xff;
		crypto_aead_xchacha20poly1305_ietf_encrypt(env + hlen + 144,
		    NULL, chunk, 512, ad, sizeof(ad), NULL, nonce, key);
		CHECK_RC(open_all(env, len, bob, out, sizeof(out)),
		    SP_EFORMAT);
	}
	sodium_memzero(key, sizeof(key));
	free(env);
	free(msg);
}

int
main(void)
{
	if (sp_keyset_generate(&alice) || sp_keyset_generate(&bob) ||
	    sp_keyset_generate(&carol))
		return 99;
	RUN(t_roundtrip_sizes);
	RUN(t_padding_hides_size);
	RUN(t_multi_recipient_and_mailbox);
	RUN(t_wrong_key_and_recipient);
	RUN(t_wrong_version_and_args);
	RUN(t_every_bit_flip);
	RUN(t_every_truncation);
	RUN(t_chunk_reorder_and_ranges);
	RUN(t_signature);
	RUN(t_forged_signature);
	sp_keyset_destroy(alice);
	sp_keyset_destroy(bob);
	sp_keyset_destroy(carol);
	return unit_done();
}
