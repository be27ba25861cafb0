/*
 * Known-answer tests: tests/vectors/crypto-v1.txt was written once by
 * tests/tools/sp-vectors and committed.  Every later build must still open
 * it to the same bytes, so an accidental format change cannot slip in.
 */
#include <sodium.h>

#include "crypto/envelope.h"
#include "crypto/kdf.h"
#include "crypto/meta.h"
#include "crypto/recovery.h"
#include "crypto/vault.h"
#include "tests/unit.h"

#define MAXV 32

static struct { char name[64]; uint8_t *val; size_t len; } vec[MAXV];
static int nvec;

static int
load(const char *rel)
{
	size_t flen;
	char *text = (char *)unit_read_file(rel, &flen), *line, *save = NULL;

	if (text == NULL)
		return -1;
	for (line = strtok_r(text, "\n", &save); line && nvec < MAXV;
	    line = strtok_r(NULL, "\n", &save)) {
		char *eq = strstr(line, " = ");
		size_t hl;

		if (eq == NULL)
			continue;
		*eq = 0;
		snprintf(vec[nvec].name, sizeof(vec[nvec].name), "%s", line);
		hl = strlen(eq + 3);
		vec[nvec].val = malloc(hl + 1);
		if (strstr(line, "_text")) {
			memcpy(vec[nvec].val, eq + 3, hl + 1);
			vec[nvec].len = hl;
		} else if (sodium_hex2bin(vec[nvec].val, hl, eq + 3, hl, NULL,
		    &vec[nvec].len, NULL) != 0) {
			free(text);
			return -1;
		}
		nvec++;
	}
	free(text);
	return 0;
}

static const uint8_t *
get(const char *name, size_t *len_r)
{
	int i;

	for (i = 0; i < nvec; i++)
		if (strcmp(vec[i].name, name) == 0) {
			if (len_r)
				*len_r = vec[i].len;
			return vec[i].val;
		}
	fprintf(stderr, "# vector %s missing\n", name);
	exit(1);
}

static void
t_kdf(void)
{
	struct sp_kdf_params p;
	struct sp_login_keys *k;
	size_t pl;
	const uint8_t *pw = get("password", &pl);

	CHECK_RC(sp_kdf_params_decode(get("kdf_params", NULL), &p), 0);
	CHECK_RC(sp_kdf_derive((const char *)pw, pl, &p, &k), 0);
	CHECK(memcmp(k->auth_pk, get("auth_pk", NULL), 32) == 0);
	CHECK(memcmp(k->vault_key, get("vault_key", NULL), 32) == 0);
	sp_login_keys_free(k);
}

static void
t_vault_and_recovery(void)
{
	size_t vl, kl, sl;
	const uint8_t *v = get("vault", &vl), *want = get("keyset", &kl);
	uint8_t rk[32], *ser;
	sp_keyset *ks;

	CHECK_RC(sp_recovery_decode((const char *)get("recovery_text", NULL),
	    rk), 0);
	CHECK(memcmp(rk, get("recovery_key", NULL), 32) == 0);
	CHECK_RC(sp_vault_open(v, vl, SP_VAULT_SLOT_PASSWORD,
	    get("vault_key", NULL), &ks), 0);
	if (ks == NULL)
		return;
	CHECK_RC(sp_keyset_serialize(ks, &ser, &sl), 0);
	CHECK(sl == kl && memcmp(ser, want, kl) == 0);
	CHECK(memcmp(sp_keyset_identity_pk(ks), get("bob_identity_pk", NULL),
	    32) == 0);
	CHECK(memcmp(sp_keyset_encryption_pk(ks),
	    get("bob_encryption_pk", NULL), 32) == 0);
	sodium_free(ser);
	sp_keyset_destroy(ks);
	CHECK_RC(sp_vault_open(v, vl, SP_VAULT_SLOT_RECOVERY, rk, &ks), 0);
	sp_keyset_destroy(ks);
}

static void
t_envelopes(void)
{
	size_t kl, el, ml, pl;
	const uint8_t *env, *plain = get("plaintext", &pl);
	const uint8_t *rec = get("meta_record", &ml);
	uint8_t buf[4096], signer[32];
	sp_keyset *ks;
	sp_envelope *r;
	struct sp_meta m;
	const uint8_t *ser = get("keyset", &kl);

	CHECK_RC(sp_keyset_parse(ser, kl, &ks), 0);
	if (ks == NULL)
		return;
	env = get("envelope_body", &el);
	CHECK_RC(sp_envelope_open(env, el, ks, &r), 0);
	if (r) {
		CHECK(sp_envelope_content_length(r) == pl);
		CHECK(sp_envelope_signer(r, signer) == 1);
		CHECK(memcmp(signer, get("alice_identity_pk", NULL), 32) == 0);
		CHECK_RC(sp_envelope_read_all(r, buf, sizeof(buf)), 0);
		CHECK(memcmp(buf, plain, pl) == 0);
		sp_envelope_close(r);
	}
	env = get("envelope_meta", &el);
	CHECK_RC(sp_envelope_open(env, el, ks, &r), 0);
	if (r) {
		CHECK(sp_envelope_kind(r) == SP_ENVELOPE_KIND_META);
		CHECK(sp_envelope_content_length(r) == ml);
		CHECK_RC(sp_envelope_read_all(r, buf, sizeof(buf)), 0);
		CHECK(memcmp(buf, rec, ml) == 0);
		sp_envelope_close(r);
	}
	CHECK_RC(sp_meta_decode(rec, ml, &m), 0);
	CHECK(m.subject && strcmp(m.subject, "Quarterly report — résumé") == 0);
	CHECK(m.has_date && m.date == 1764460800 && m.size == 3000);
	CHECK(m.flags == (SP_META_F_SEEN | SP_META_F_SIGNED));
	sp_meta_finish(&m);
	sp_keyset_destroy(ks);
}

int
main(void)
{
	int i;

	if (load("tests/vectors/crypto-v1.txt") != 0) {
		fprintf(stderr, "cannot read tests/vectors/crypto-v1.txt "
		    "(is SP_SOURCE_ROOT set?)\n");
		return 1;
	}
	RUN(t_kdf);
	RUN(t_vault_and_recovery);
	RUN(t_envelopes);
	for (i = 0; i < nvec; i++)
		free(vec[i].val);
	return unit_done();
}
