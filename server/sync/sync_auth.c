/*
 * Login support on the loop thread: one-use challenges, failed-login rate
 * limits, and plausible parameters for accounts that do not exist.
 *
 * Both tables are fixed-size and open-addressed, so a flood of requests
 * cannot grow memory; when one is full of live entries the newcomer is
 * refused (RATE) rather than evicting someone's valid challenge.  Client
 * addresses appear only as keyed hashes, in memory, for one minute.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "crypto/kdf.h"
#include "server/sync/sync.h"

#define CHAL_SLOTS 65536
#define CHAL_TTL_S 60
#define RATE_SLOTS 65536
#define PROBE 16

struct chal {
	uint8_t c[32];
	uint8_t who[16];        /* keyed hash of the address */
	uint64_t expires;
};

struct rate {
	uint8_t key[16];        /* keyed hash of tag, address or peer */
	uint64_t window;        /* now / window length */
	uint32_t fails;         /* events counted in that window */
};

struct sp_auth {
	struct sp_sync *s;
	struct chal chal[CHAL_SLOTS];
	struct rate rate[RATE_SLOTS];
};

static uint64_t
now_s(void)
{
	return (uint64_t)time(NULL);
}

static void
keyed(const struct sp_sync *s, const char *tag, const void *data, size_t len,
    uint8_t out[16])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, s->secret, sizeof(s->secret), 16);
	crypto_generichash_update(&st, (const uint8_t *)tag, strlen(tag));
	crypto_generichash_update(&st, data, len);
	crypto_generichash_final(&st, out, 16);
}

static uint32_t
slot_of(const uint8_t *k, uint32_t n)
{
	uint32_t v;

	memcpy(&v, k, sizeof(v));
	return v % n;
}

int
sp_auth_create(struct sp_sync *s)
{
	struct sp_auth *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return -1;
	a->s = s;
	s->auth = a;
	return 0;
}

void
sp_auth_destroy(struct sp_auth *a)
{
	if (a == NULL)
		return;
	sodium_memzero(a, sizeof(*a));
	free(a);
}

int
sp_auth_challenge(struct sp_auth *a, const char *address, uint8_t c[32])
{
	uint64_t now = now_s();
	uint32_t i, h;

	randombytes_buf(c, 32);
	h = slot_of(c, CHAL_SLOTS);
	for (i = 0; i < PROBE; i++) {
		struct chal *e = &a->chal[(h + i) % CHAL_SLOTS];

		if (e->expires > now)
			continue;
		memcpy(e->c, c, 32);
		keyed(a->s, "chal", address, strlen(address), e->who);
		e->expires = now + CHAL_TTL_S;
		return 0;
	}
	return -1;
}

int
sp_auth_take(struct sp_auth *a, const char *address, const uint8_t c[32])
{
	uint64_t now = now_s();
	uint8_t who[16];
	uint32_t i, h = slot_of(c, CHAL_SLOTS);

	keyed(a->s, "chal", address, strlen(address), who);
	for (i = 0; i < PROBE; i++) {
		struct chal *e = &a->chal[(h + i) % CHAL_SLOTS];

		if (e->expires <= now || sodium_memcmp(e->c, c, 32) != 0)
			continue;
		e->expires = 0;         /* one use, whatever the outcome */
		return sodium_memcmp(e->who, who, 16) == 0 ? 0 : -1;
	}
	return -1;
}

static struct rate *
rate_find(struct sp_auth *a, const uint8_t key[16], uint64_t window,
    int create)
{
	uint32_t i, h = slot_of(key, RATE_SLOTS);

	for (i = 0; i < PROBE; i++) {
		struct rate *e = &a->rate[(h + i) % RATE_SLOTS];

		if (e->window == window && memcmp(e->key, key, 16) == 0)
			return e;
	}
	if (!create)
		return NULL;
	for (i = 0; i < PROBE; i++) {
		struct rate *e = &a->rate[(h + i) % RATE_SLOTS];

		if (e->window != window) {
			memcpy(e->key, key, 16);
			e->window = window;
			e->fails = 0;
			return e;
		}
	}
	return NULL;
}

static uint32_t
rate_get(struct sp_auth *a, const char *tag, const void *k, size_t n,
    unsigned window_s)
{
	uint8_t key[16];
	struct rate *r;

	keyed(a->s, tag, k, n, key);
	r = rate_find(a, key, now_s() / window_s, 0);
	return r ? r->fails : 0;
}

static void
rate_add(struct sp_auth *a, const char *tag, const void *k, size_t n,
    unsigned window_s)
{
	uint8_t key[16];
	struct rate *r;

	keyed(a->s, tag, k, n, key);
	/* A full table forgets the newcomer rather than an old entry: the
	 * limits stay exact for everyone already being counted. */
	if ((r = rate_find(a, key, now_s() / window_s, 1)) != NULL)
		r->fails++;
}

int
sp_auth_limited(struct sp_auth *a, const char *address,
    const uint8_t peer_key[16])
{
	const struct sp_server_config *cfg = a->s->cfg;

	return rate_get(a, "fail-acct", address, strlen(address), 60) >=
	    (uint32_t)cfg->login_fail_per_account ||
	    rate_get(a, "fail-peer", peer_key, 16, 60) >=
	    (uint32_t)cfg->login_fail_per_ip;
}

void
sp_auth_failed(struct sp_auth *a, const char *address,
    const uint8_t peer_key[16])
{
	if (address)
		rate_add(a, "fail-acct", address, strlen(address), 60);
	rate_add(a, "fail-peer", peer_key, 16, 60);
}

int
sp_auth_count(struct sp_auth *a, const char *tag, const uint8_t peer_key[16],
    uint32_t limit, unsigned window_s)
{
	if (rate_get(a, tag, peer_key, 16, window_s) >= limit)
		return 1;
	rate_add(a, tag, peer_key, 16, window_s);
	return 0;
}

/*
 * Same shape as a real account's parameters: default cost, and a salt
 * that is stable per address (so asking twice gives the same answer, as
 * for a real account) but unpredictable without the server secret.
 * Thread-safe: reads only the secret.
 */
void
sp_auth_fake_params(struct sp_sync *s, const char *address, uint8_t out[25])
{
	struct sp_kdf_params p = { .alg = SP_KDF_ALG_ARGON2ID13,
	    .opslimit = SP_KDF_OPS_DEFAULT, .mem_kib = SP_KDF_MEM_KIB_DEFAULT };

	keyed(s, "sealpost-fake-salt-v1", address, strlen(address), p.salt);
	sp_kdf_params_encode(&p, out);
}
