#include "crypto/envelope.h"
#include "crypto/meta.h"
#include "tests/unit.h"

static void
t_roundtrip(void)
{
	uint8_t blob[5] = { 0, 1, 2, 3, 0xff }, *enc;
	struct sp_meta m = {
		.from = (char *)(uintptr_t)"Ann <ann@example.org>",
		.to = (char *)(uintptr_t)"bob@example.net",
		.subject = (char *)(uintptr_t)"Grüße — 你好",
		.auth_results = (char *)(uintptr_t)"mx.example.net; spf=pass",
		.blob_id = blob, .blob_id_len = 5,
		.date = 1764460800, .has_date = 1,
		.size = 51200, .has_size = 1,
		.flags = SP_META_F_SEEN | SP_META_F_JUNK, .has_flags = 1,
	}, d;
	size_t len;

	CHECK_RC(sp_meta_encode(&m, &enc, &len), 0);
	CHECK_RC(sp_meta_decode(enc, len, &d), 0);
	CHECK(strcmp(d.from, m.from) == 0 && strcmp(d.to, m.to) == 0);
	CHECK(strcmp(d.subject, m.subject) == 0);
	CHECK(strcmp(d.auth_results, m.auth_results) == 0);
	CHECK(d.cc == NULL && d.bcc == NULL && d.folder == NULL);
	CHECK(d.blob_id_len == 5 && memcmp(d.blob_id, blob, 5) == 0);
	CHECK(d.has_date && d.date == m.date && d.has_size && d.size == 51200);
	CHECK(d.has_flags && d.flags == m.flags);
	sp_meta_finish(&d);
	free(enc);
}

static void
t_bad_input(void)
{
	struct sp_meta d, m = { .subject = (char *)(uintptr_t)"\xc3\x28" };
	uint8_t *enc;
	size_t len;
	/* version, tag 5 len 1 'a', tag 5 again */
	uint8_t dup[] = { 1, 5, 0, 1, 'a', 5, 0, 1, 'b' };
	uint8_t order[] = { 1, 5, 0, 1, 'a', 2, 0, 1, 'b' };
	uint8_t trunc[] = { 1, 5, 0, 9, 'a' };
	uint8_t badnum[] = { 1, 6, 0, 2, 0, 1 };
	uint8_t nul[] = { 1, 5, 0, 2, 'a', 0 };
	uint8_t overlong[] = { 1, 5, 0, 2, 0xc0, 0xaf };
	uint8_t unknown[] = { 1, 5, 0, 1, 'a', 200, 0, 2, 'z', 'z' };

	CHECK_RC(sp_meta_encode(&m, &enc, &len), SP_EINVAL);
	CHECK_RC(sp_meta_decode(dup, sizeof(dup), &d), SP_EFORMAT);
	CHECK_RC(sp_meta_decode(order, sizeof(order), &d), SP_EFORMAT);
	CHECK_RC(sp_meta_decode(trunc, sizeof(trunc), &d), SP_ETRUNC);
	CHECK_RC(sp_meta_decode(trunc, 2, &d), SP_ETRUNC);
	CHECK_RC(sp_meta_decode(badnum, sizeof(badnum), &d), SP_EFORMAT);
	CHECK_RC(sp_meta_decode(nul, sizeof(nul), &d), SP_EFORMAT);
	CHECK_RC(sp_meta_decode(overlong, sizeof(overlong), &d), SP_EFORMAT);
	CHECK_RC(sp_meta_decode(trunc, 0, &d), SP_ETRUNC);
	unknown[0] = 2;
	CHECK_RC(sp_meta_decode(unknown, sizeof(unknown), &d), SP_EVERSION);
	unknown[0] = 1;
	/* Unknown tags are skipped: a later version may add fields. */
	CHECK_RC(sp_meta_decode(unknown, sizeof(unknown), &d), 0);
	CHECK(d.subject && strcmp(d.subject, "a") == 0);
	sp_meta_finish(&d);
}

static void
t_limits(void)
{
	char *big = malloc(70000);
	struct sp_meta m = { 0 };
	uint8_t *enc;
	size_t len;

	memset(big, 'x', 69999);
	big[69999] = 0;
	m.subject = big;
	CHECK_RC(sp_meta_encode(&m, &enc, &len), SP_ELIMIT);
	big[30000] = 0;
	m.from = big;
	m.to = big;
	CHECK_RC(sp_meta_encode(&m, &enc, &len), SP_ELIMIT); /* 90 KB total */
	free(big);
}

/* The metadata record travels as a kind-2 envelope under the mailbox key. */
static void
t_in_envelope(void)
{
	sp_keyset *ks;
	struct sp_meta m = { .subject = (char *)(uintptr_t)"hello" }, d;
	uint8_t *enc, *env, buf[512];
	size_t len, env_len;
	sp_envelope *r;
	struct sp_envelope_seal_args a = { .kind = SP_ENVELOPE_KIND_META };

	CHECK_RC(sp_keyset_generate(&ks), 0);
	a.mailbox_key = sp_keyset_mailbox_key(ks);
	CHECK_RC(sp_meta_encode(&m, &enc, &len), 0);
	CHECK_RC(sp_envelope_seal(&a, enc, len, &env, &env_len), 0);
	CHECK(env_len == 32 + 73 + 144 + 256 + 16);
	CHECK_RC(sp_envelope_open(env, env_len, ks, &r), 0);
	CHECK(sp_envelope_kind(r) == SP_ENVELOPE_KIND_META);
	CHECK_RC(sp_envelope_read_all(r, buf, sizeof(buf)), 0);
	CHECK_RC(sp_meta_decode(buf, sp_envelope_content_length(r), &d), 0);
	CHECK(strcmp(d.subject, "hello") == 0);
	sp_meta_finish(&d);
	sp_envelope_close(r);
	sp_keyset_destroy(ks);
	free(enc);
	free(env);
}

int
main(void)
{
	RUN(t_roundtrip);
	RUN(t_bad_input);
	RUN(t_limits);
	RUN(t_in_envelope);
	return unit_done();
}
