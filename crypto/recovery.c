#include <string.h>

#include <sodium.h>

#include "crypto/recovery.h"

#define CHECK_CTX "sealpost-recovery-v1"
#define RAWBYTES (SP_RECOVERY_KEYBYTES + 2)
#define NCHARS 55 /* ceil(34 * 8 / 5) */

static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

static void
check_bytes(const uint8_t key[SP_RECOVERY_KEYBYTES], uint8_t out[2])
{
	crypto_generichash_state st;
	uint8_t h[32];

	crypto_generichash_init(&st, NULL, 0, sizeof(h));
	crypto_generichash_update(&st, (const uint8_t *)CHECK_CTX,
	    sizeof(CHECK_CTX) - 1);
	crypto_generichash_update(&st, key, SP_RECOVERY_KEYBYTES);
	crypto_generichash_final(&st, h, sizeof(h));
	out[0] = h[0];
	out[1] = h[1];
}

int
sp_recovery_generate(uint8_t key[SP_RECOVERY_KEYBYTES])
{
	if (sodium_init() < 0)
		return SP_ECRYPTO;
	randombytes_buf(key, SP_RECOVERY_KEYBYTES);
	return 0;
}

void
sp_recovery_encode(const uint8_t key[SP_RECOVERY_KEYBYTES],
    char text[SP_RECOVERY_TEXTBYTES])
{
	uint8_t raw[RAWBYTES];
	uint32_t acc = 0;
	unsigned bits = 0, i, n = 0, out = 0;

	memcpy(raw, key, SP_RECOVERY_KEYBYTES);
	check_bytes(key, raw + SP_RECOVERY_KEYBYTES);
	for (i = 0; i < RAWBYTES || bits > 0; ) {
		if (bits < 5 && i < RAWBYTES) {
			acc = acc << 8 | raw[i++];
			bits += 8;
		}
		if (bits < 5) { /* final partial group, zero-filled */
			acc <<= 5 - bits;
			bits = 5;
		}
		if (n && n % 5 == 0)
			text[out++] = '-';
		text[out++] = b32[(acc >> (bits - 5)) & 31];
		bits -= 5;
		n++;
	}
	text[out] = 0;
	sodium_memzero(raw, sizeof(raw));
}

int
sp_recovery_decode(const char *text, uint8_t key[SP_RECOVERY_KEYBYTES])
{
	uint8_t raw[RAWBYTES + 1], chk[2];
	uint32_t acc = 0;
	unsigned bits = 0, n = 0, got = 0;
	const char *p, *q;
	int rc = SP_EFORMAT;

	memset(key, 0, SP_RECOVERY_KEYBYTES);
	for (p = text; *p; p++) {
		char c = *p;

		if (c == '-' || c == ' ')
			continue;
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if ((q = strchr(b32, c)) == NULL || c == 0 || n >= NCHARS)
			goto out;
		acc = acc << 5 | (uint32_t)(q - b32);
		bits += 5;
		n++;
		if (bits >= 8) {
			raw[got++] = (uint8_t)(acc >> (bits - 8));
			bits -= 8;
		}
	}
	/* 55 characters carry 275 bits: 34 bytes and 3 zero bits. */
	if (n != NCHARS || got != RAWBYTES || (acc & ((1u << bits) - 1)) != 0)
		goto out;
	check_bytes(raw, chk);
	if (sodium_memcmp(chk, raw + SP_RECOVERY_KEYBYTES, 2) != 0)
		goto out;
	memcpy(key, raw, SP_RECOVERY_KEYBYTES);
	rc = 0;
out:
	sodium_memzero(raw, sizeof(raw));
	return rc;
}

/* ---- the recovery login key (protocol.md 6.6) -------------------------- */

#define RECOVERY_LOGIN_CTX "sp-recov"   /* id 2; id 1 wraps the vault slot */
#define RECOVERY_SIG_CTX "sealpost-recover-v1"

int
sp_recovery_login_keys(const uint8_t key[SP_RECOVERY_KEYBYTES],
    uint8_t pk[32], uint8_t sk[64])
{
	uint8_t seed[32];
	int rc;

	if (crypto_kdf_derive_from_key(seed, sizeof(seed), 2,
	    RECOVERY_LOGIN_CTX, key) != 0)
		return SP_ECRYPTO;
	rc = crypto_sign_seed_keypair(pk, sk, seed) == 0 ? 0 : SP_ECRYPTO;
	sodium_memzero(seed, sizeof(seed));
	return rc;
}

/* The digest signed: the context keeps this key from signing anything a
 * login signature or a mail signature could be. */
static void
recover_digest(const uint8_t *challenge, size_t len, uint8_t d[64])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, 64);
	crypto_generichash_update(&st, (const uint8_t *)RECOVERY_SIG_CTX,
	    sizeof(RECOVERY_SIG_CTX) - 1);
	crypto_generichash_update(&st, challenge, len);
	crypto_generichash_final(&st, d, 64);
}

int
sp_recovery_sign_challenge(const uint8_t sk[64], const uint8_t *challenge,
    size_t len, uint8_t sig[64])
{
	uint8_t d[64];

	recover_digest(challenge, len, d);
	if (crypto_sign_detached(sig, NULL, d, sizeof(d), sk) != 0)
		return SP_ECRYPTO;
	return 0;
}

int
sp_recovery_verify_challenge(const uint8_t pk[32], const uint8_t *challenge,
    size_t len, const uint8_t sig[64])
{
	uint8_t d[64];

	recover_digest(challenge, len, d);
	return crypto_sign_verify_detached(sig, d, sizeof(d), pk) == 0 ? 0 :
	    SP_ESIG;
}
