/*
 * client-core/keys.c against the real server: fetch, verify and pin on
 * first use; a re-created account (same address, new keys) is refused
 * until accepted; the signer check on the receiving side; fingerprints
 * the same at both ends.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "client-core/cache.h"
#include "client-core/keys.h"
#include "crypto/pubkeys.h"
#include "tests/sync/harness.h"
#include "tests/unit.h"

static struct srv S;
static char cache_dir[256];
static sp_cache *cache;
static sp_client *C;
static struct acct alice, bob, bob2;

static void
t_fingerprint_format(void)
{
	uint8_t id[32] = { 0 }, enc[32] = { 0 };
	char a[SP_KEYS_FPR_BYTES], b[SP_KEYS_FPR_BYTES];
	size_t i;

	sp_keys_fingerprint(id, enc, a);
	CHECK(strlen(a) == 49);
	for (i = 0; i < 49; i++)
		CHECK(i % 5 == 4 ? a[i] == ' ' :
		    ((a[i] >= '0' && a[i] <= '9') ||
		    (a[i] >= 'A' && a[i] <= 'F')));
	/* Both keys count: a change of either changes it. */
	enc[31] = 1;
	sp_keys_fingerprint(id, enc, b);
	CHECK(strcmp(a, b) != 0);
	enc[31] = 0;
	id[0] = 1;
	sp_keys_fingerprint(id, enc, b);
	CHECK(strcmp(a, b) != 0);
	/* Pinned value (docs/format.md "Fingerprints"): BLAKE2b-160 of the
	 * context and 64 zero bytes (Python's hashlib agrees). */
	CHECK(strcmp(a, "E929 93AD 85D7 6FDA 6378 103D 57AD 46C5 65EA 6F40") ==
	    0);
}

static void
t_address(void)
{
	char out[SP_KEYS_ADDR_BYTES];

	CHECK_RC(sp_keys_address("Ann <Ann@Example.ORG>", out), 0);
	CHECK(strcmp(out, "ann@example.org") == 0);
	CHECK_RC(sp_keys_address("BOB@example.org", out), 0);
	CHECK(strcmp(out, "bob@example.org") == 0);
	CHECK_RC(sp_keys_address("\"a, b\" <c@d.org>", out), 0);
	CHECK(strcmp(out, "c@d.org") == 0);
	CHECK_RC(sp_keys_address("a@b.org, c@d.org", out), SP_EINVAL);
	CHECK_RC(sp_keys_address("nobody", out), SP_EINVAL);
	CHECK_RC(sp_keys_address("a@@b", out), SP_EINVAL);
	CHECK_RC(sp_keys_address("", out), SP_EINVAL);
	CHECK_RC(sp_keys_address("Group: a@b.org;", out), SP_EINVAL);
}

static void
t_pin_first_use(void)
{
	struct sp_keys_info k, again;
	char err[512] = "", *list = NULL;
	size_t n = 0;

	CHECK_RC(sp_keys_pinned(cache, "bob@example.org", &k), ENOENT);
	CHECK_RC(sp_keys_get(cache, C, "Bob@Example.org", &k, NULL, err,
	    sizeof(err)), 0);
	CHECK(k.pinned_now == 1 && k.first_seen > 0);
	CHECK(strcmp(k.pk.address, "bob@example.org") == 0);
	CHECK(memcmp(k.pk.identity_pk, sp_keyset_identity_pk(bob.ks), 32) ==
	    0);
	CHECK(memcmp(k.pk.encryption_pk, sp_keyset_encryption_pk(bob.ks),
	    32) == 0);
	CHECK_RC(sp_keys_get(cache, C, "bob@example.org", &again, NULL, err,
	    sizeof(err)), 0);
	CHECK(again.pinned_now == 0 && again.first_seen == k.first_seen);
	sp_keys_info_finish(&again);
	CHECK_RC(sp_keys_pinned(cache, "bob@example.org", &again), 0);
	CHECK(memcmp(again.pk.identity_pk, k.pk.identity_pk, 32) == 0);
	sp_keys_info_finish(&again);
	sp_keys_info_finish(&k);
	CHECK_RC(sp_keys_list(cache, &list, &n), 0);
	CHECK(n == 1 && list && strcmp(list, "bob@example.org") == 0);
	free(list);
}

static void
t_fingerprint_both_ends(void)
{
	struct sp_keys_info k;
	char mine[SP_KEYS_FPR_BYTES], theirs[SP_KEYS_FPR_BYTES], err[512];

	sp_keys_own_fingerprint(bob.ks, mine);
	CHECK_RC(sp_keys_fetch(C, "bob@example.org", &k, err, sizeof(err)),
	    0);
	sp_keys_fingerprint(k.pk.identity_pk, k.pk.encryption_pk, theirs);
	CHECK(strcmp(mine, theirs) == 0);
	sp_keys_info_finish(&k);
}

static void
t_unknown(void)
{
	struct sp_keys_info k;
	char err[512] = "";

	CHECK_RC(sp_keys_get(cache, C, "nobody@example.org", &k, NULL, err,
	    sizeof(err)), ENOENT);
	CHECK(strstr(err, "nobody@example.org") != NULL);
	CHECK_RC(sp_keys_get(cache, C, "not an address", &k, NULL, err,
	    sizeof(err)), SP_EINVAL);
}

static void
t_signer(void)
{
	char err[512] = "";

	CHECK_RC(sp_keys_check_signer(cache, C, "Bob <BOB@example.org>",
	    sp_keyset_identity_pk(bob.ks), err, sizeof(err)), 0);
	CHECK_RC(sp_keys_check_signer(cache, C, "Bob <bob@example.org>",
	    sp_keyset_identity_pk(alice.ks), err, sizeof(err)), SP_ESIG);
	CHECK(strstr(err, "bob@example.org") != NULL);
	/* No pin and no connection: nothing to judge by. */
	CHECK_RC(sp_keys_check_signer(cache, NULL, "alice@example.org",
	    sp_keyset_identity_pk(alice.ks), err, sizeof(err)), ENOENT);
	/* With a connection, the first message pins the sender. */
	CHECK_RC(sp_keys_check_signer(cache, C, "alice@example.org",
	    sp_keyset_identity_pk(alice.ks), err, sizeof(err)), 0);
	CHECK_RC(sp_keys_check_signer(cache, NULL, "alice@example.org",
	    sp_keyset_identity_pk(alice.ks), err, sizeof(err)), 0);
	CHECK_RC(sp_keys_check_signer(cache, C, "a@example.org, b@x.org",
	    sp_keyset_identity_pk(alice.ks), err, sizeof(err)), SP_EINVAL);
}

static void
t_changed_key(void)
{
	struct sp_keys_info k, served;
	char out[512], err[512] = "", fp_new[SP_KEYS_FPR_BYTES], *list = NULL;
	char fp_lc[SP_KEYS_FPR_BYTES];
	size_t n = 0, i, j;
	sp_client *c2;

	CHECK(srv_admin(&S, "user delete bob@example.org --yes", out,
	    sizeof(out)) == 0);
	CHECK((c2 = srv_connect(&S, "bob2")) != NULL);
	CHECK(c2 && acct_register(c2, &bob2, "bob@example.org", NULL, NULL) ==
	    SP_MSG_OK);
	sp_client_close(c2);
	sp_keys_own_fingerprint(bob2.ks, fp_new);

	CHECK_RC(sp_keys_get(cache, C, "bob@example.org", &k, &served, err,
	    sizeof(err)), SP_EKEYCHANGED);
	printf("# %s\n", err);
	CHECK(strstr(err, "bob@example.org") != NULL);
	CHECK(strstr(err, "sealpost keys accept") != NULL);
	CHECK(strstr(err, fp_new) != NULL);
	CHECK(memcmp(k.pk.identity_pk, sp_keyset_identity_pk(bob.ks), 32) ==
	    0);
	CHECK(memcmp(served.pk.identity_pk, sp_keyset_identity_pk(bob2.ks),
	    32) == 0);
	sp_keys_info_finish(&k);
	sp_keys_info_finish(&served);
	/* Still refused on the next try: nothing was pinned. */
	CHECK_RC(sp_keys_get(cache, C, "bob@example.org", &k, NULL, err,
	    sizeof(err)), SP_EKEYCHANGED);
	sp_keys_info_finish(&k);
	/* A message signed by the new key: the sender's key changed. */
	CHECK_RC(sp_keys_check_signer(cache, C, "bob@example.org",
	    sp_keyset_identity_pk(bob2.ks), err, sizeof(err)),
	    SP_EKEYCHANGED);
	/* One still signed by the old key matches the old pin. */
	CHECK_RC(sp_keys_check_signer(cache, C, "bob@example.org",
	    sp_keyset_identity_pk(bob.ks), err, sizeof(err)), 0);

	/* A fingerprint that is not the served one: nothing pinned. */
	CHECK_RC(sp_keys_accept(cache, C, "bob@example.org",
	    "E929 93AD 85D7 6FDA 6378 103D 57AD 46C5 65EA 6F40", &k, err,
	    sizeof(err)), SP_EKEYCHANGED);
	CHECK_RC(sp_keys_get(cache, C, "bob@example.org", &k, NULL, err,
	    sizeof(err)), SP_EKEYCHANGED);
	sp_keys_info_finish(&k);
	/* The compared one, in lower case without spaces: pinned. */
	for (i = j = 0; fp_new[i]; i++)
		if (fp_new[i] != ' ')
			fp_lc[j++] = (char)(fp_new[i] | 0x20);
	fp_lc[j] = 0;
	CHECK_RC(sp_keys_accept(cache, C, "bob@example.org", fp_lc, &k, err,
	    sizeof(err)), 0);
	CHECK(memcmp(k.pk.identity_pk, sp_keyset_identity_pk(bob2.ks), 32) ==
	    0);
	sp_keys_info_finish(&k);
	CHECK_RC(sp_keys_get(cache, C, "bob@example.org", &k, NULL, err,
	    sizeof(err)), 0);
	CHECK(k.pinned_now == 0);
	CHECK(memcmp(k.pk.encryption_pk, sp_keyset_encryption_pk(bob2.ks),
	    32) == 0);
	sp_keys_info_finish(&k);
	CHECK_RC(sp_keys_check_signer(cache, C, "bob@example.org",
	    sp_keyset_identity_pk(bob.ks), err, sizeof(err)), SP_ESIG);
	/* The index lists each address once. */
	CHECK_RC(sp_keys_list(cache, &list, &n), 0);
	CHECK(n == 2);
	CHECK(list && strcmp(list, "bob@example.org") == 0 &&
	    strcmp(list + strlen(list) + 1, "alice@example.org") == 0);
	free(list);
}

/* Pins alice's keys as signed at created, first seen 12345 (the pin
 * record of docs/format.md "Fingerprints"). */
static void
pin_alice_at(uint64_t created)
{
	uint8_t *set = NULL, *v = NULL;
	size_t len = 0;

	CHECK_RC(sp_pubkeys_sign(alice.ks, "alice@example.org", created, NULL,
	    0, &set, &len), 0);
	if (set == NULL || (v = malloc(9 + len)) == NULL)
		return;
	v[0] = 1;
	memset(v + 1, 0, 8);
	v[7] = 0x30;
	v[8] = 0x39;
	memcpy(v + 9, set, len);
	CHECK_RC(sp_cache_put(cache, SP_CACHE_T_PINS, "alice@example.org", 17,
	    v, 9 + len), 0);
	free(v);
	free(set);
}

static void
t_same_identity(void)
{
	struct sp_keys_info k;
	char err[512] = "";

	/* The server's set (created 1764460800) is older than the pin: a
	 * rollback, refused even though the identity key is the same. */
	pin_alice_at(1764460800 + 1000);
	CHECK_RC(sp_keys_get(cache, C, "alice@example.org", &k, NULL, err,
	    sizeof(err)), SP_EKEYCHANGED);
	CHECK(strstr(err, "rollback") != NULL);
	CHECK(k.pk.created == 1764460800 + 1000);
	sp_keys_info_finish(&k);
	/* Newer than the pin and signed by the pinned identity: the
	 * owner's update, taken, keeping the first-seen time. */
	pin_alice_at(1764460800 - 1000);
	CHECK_RC(sp_keys_get(cache, C, "alice@example.org", &k, NULL, err,
	    sizeof(err)), 0);
	CHECK(k.pk.created == 1764460800 && k.first_seen == 12345 &&
	    k.pinned_now == 0);
	sp_keys_info_finish(&k);
	CHECK_RC(sp_keys_pinned(cache, "alice@example.org", &k), 0);
	CHECK(k.pk.created == 1764460800 && k.first_seen == 12345);
	sp_keys_info_finish(&k);
}

static void
t_pins_survive_reopen(void)
{
	struct sp_keys_info k;
	uint8_t key[SP_CACHE_KEYBYTES] = { 7 };

	sp_cache_close(cache);
	cache = NULL;
	CHECK_RC(sp_cache_open(cache_dir, key, NULL, &cache), 0);
	CHECK_RC(sp_keys_pinned(cache, "bob@example.org", &k), 0);
	CHECK(memcmp(k.pk.identity_pk, sp_keyset_identity_pk(bob2.ks), 32) ==
	    0);
	sp_keys_info_finish(&k);
}

int
main(void)
{
	uint8_t key[SP_CACHE_KEYBYTES] = { 7 };
	char cmd[300];
	int rc;

	if (sodium_init() < 0)
		return 1;
	RUN(t_fingerprint_format);
	RUN(t_address);
	snprintf(cache_dir, sizeof(cache_dir), "/tmp/sp-test-keys-XXXXXX");
	if (mkdtemp(cache_dir) == NULL ||
	    srv_start(&S, 0, "--open-registration yes") != 0) {
		printf("not ok - start the server\n");
		return 1;
	}
	if ((C = srv_connect(&S, "keys")) == NULL ||
	    acct_register(C, &alice, "alice@example.org", NULL, NULL) !=
	    SP_MSG_OK ||
	    acct_register(C, &bob, "bob@example.org", NULL, NULL) !=
	    SP_MSG_OK ||
	    sp_cache_open(cache_dir, key, NULL, &cache) != 0) {
		printf("not ok - accounts and cache\n");
		srv_cleanup(&S);
		return 1;
	}
	RUN(t_pin_first_use);
	RUN(t_fingerprint_both_ends);
	RUN(t_unknown);
	RUN(t_signer);
	RUN(t_changed_key);
	RUN(t_same_identity);
	RUN(t_pins_survive_reopen);
	sp_cache_close(cache);
	sp_client_close(C);
	acct_free(&alice);
	acct_free(&bob);
	acct_free(&bob2);
	srv_cleanup(&S);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", cache_dir);
	rc = system(cmd);
	(void)rc;
	return unit_done();
}
