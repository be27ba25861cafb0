/*
 * Tests of the sync frame codec (proto/frame.h).
 *
 * The tables below are a second, independent transcription of the protocol
 * (field types and limits, which fields each message must and may carry).
 * The codec is probed against them through its public interface only, and
 * docs/protocol.md's tables are parsed and compared with them, so code,
 * tests and specification have to agree.  raw_encode() is a test-side CBOR
 * writer that ignores every rule: it builds the frames the encoder refuses
 * to, for the decoder to reject, and checks that the encoder's bytes are the
 * canonical encoding.
 *
 * Every decode runs on an exact-size heap copy, so that under ASan a read
 * one byte past the input is caught.
 *
 * With --corpus DIR, writes the fuzzer's seed frames into DIR and exits.
 */
#include <errno.h>
#include <stdint.h>

#include "proto/frame.h"
#include "tests/unit.h"

#define ANY UINT64_MAX
#define BIT(k) (UINT64_C(1) << (k))
#define NMSGS (sizeof(tmsgs) / sizeof(tmsgs[0]))

static const struct tfield {
	unsigned key;
	const char *name;
	const char *type;
	uint64_t min, max;	/* value, or length in bytes (of each item) */
} tfields[SP_F_MAX] = {
	[SP_F_TYPE] = { SP_F_TYPE, "type", "uint", 0, ANY },
	[SP_F_ID] = { SP_F_ID, "id", "uint", 0, ANY },
	[SP_F_VERSION] = { SP_F_VERSION, "version", "uint", 1, 65535 },
	[SP_F_CODE] = { SP_F_CODE, "code", "uint", 1, 65535 },
	[SP_F_MESSAGE] = { SP_F_MESSAGE, "message", "text", 0, 256 },
	[SP_F_ADDRESS] = { SP_F_ADDRESS, "address", "text", 3, 254 },
	[SP_F_TOKEN] = { SP_F_TOKEN, "token", "bytes", 32, 32 },
	[SP_F_AUTH_PK] = { SP_F_AUTH_PK, "auth_pk", "bytes", 32, 32 },
	[SP_F_KDF_PARAMS] = { SP_F_KDF_PARAMS, "kdf_params", "bytes", 25, 25 },
	[SP_F_VAULT] = { SP_F_VAULT, "vault", "bytes", 1, 70000 },
	[SP_F_PUBKEYS] = { SP_F_PUBKEYS, "pubkeys", "bytes", 1, 16384 },
	[SP_F_CHALLENGE] = { SP_F_CHALLENGE, "challenge", "bytes", 32, 32 },
	[SP_F_SIGNATURE] = { SP_F_SIGNATURE, "signature", "bytes", 64, 64 },
	[SP_F_DEVICE] = { SP_F_DEVICE, "device", "text", 0, 63 },
	[SP_F_SEQ] = { SP_F_SEQ, "seq", "uint", 0, ANY },
	[SP_F_EXPECTED] = { SP_F_EXPECTED, "expected", "uint", 0, ANY },
	[SP_F_RECORDS] = { SP_F_RECORDS, "records", "array of bytes", 1, 1048576 },
	[SP_F_LAST] = { SP_F_LAST, "last", "uint", 0, ANY },
	[SP_F_BLOB_ID] = { SP_F_BLOB_ID, "blob_id", "bytes", 32, 32 },
	[SP_F_SIZE] = { SP_F_SIZE, "size", "uint", 0, ANY },
	[SP_F_INDEX] = { SP_F_INDEX, "index", "uint", 0, ANY },
	[SP_F_DATA] = { SP_F_DATA, "data", "bytes", 0, 65536 },
	[SP_F_HAVE] = { SP_F_HAVE, "have", "uint", 0, ANY },
	[SP_F_SESSION_IDS] = { SP_F_SESSION_IDS, "session_ids", "array of bytes", 16, 16 },
	[SP_F_DEVICES] = { SP_F_DEVICES, "devices", "array of text", 0, 63 },
	[SP_F_CREATED] = { SP_F_CREATED, "created", "array of uint", 0, ANY },
	[SP_F_LAST_SEEN] = { SP_F_LAST_SEEN, "last_seen", "array of uint", 0, ANY },
	[SP_F_INVITE] = { SP_F_INVITE, "invite", "text", 1, 64 },
	[SP_F_MAX_RECORDS] = { SP_F_MAX_RECORDS, "max_records", "uint", 0, ANY },
	[SP_F_MAX_BYTES] = { SP_F_MAX_BYTES, "max_bytes", "uint", 0, ANY },
	[SP_F_RECIPIENT] = { SP_F_RECIPIENT, "recipient", "text", 3, 254 },
	[SP_F_SESSION_ID] = { SP_F_SESSION_ID, "session_id", "bytes", 16, 16 },
	[SP_F_TIME] = { SP_F_TIME, "time", "uint", 0, ANY },
	[SP_F_MORE] = { SP_F_MORE, "more", "bool", 0, 1 },
	[SP_F_MAIL_FROM] = { SP_F_MAIL_FROM, "mail_from", "text", 3, 254 },
	[SP_F_RECIPIENTS] = { SP_F_RECIPIENTS, "recipients", "array of text", 3, 254 },
	[SP_F_GATEWAY_PK] = { SP_F_GATEWAY_PK, "gateway_pk", "bytes", 32, 32 },
	[SP_F_FACTOR] = { SP_F_FACTOR, "factor", "uint", 1, 3 },
	[SP_F_FACTOR_ID] = { SP_F_FACTOR_ID, "factor_id", "bytes", 1, 255 },
	[SP_F_FACTORS] = { SP_F_FACTORS, "factors", "array of uint", 0, ANY },
	[SP_F_FACTOR_IDS] = { SP_F_FACTOR_IDS, "factor_ids", "array of bytes", 1, 255 },
	[SP_F_AUTH_DATA] = { SP_F_AUTH_DATA, "auth_data", "bytes", 37, 1024 },
	[SP_F_CLIENT_DATA] = { SP_F_CLIENT_DATA, "client_data", "bytes", 1, 1024 },
	[SP_F_ASSERTION] = { SP_F_ASSERTION, "assertion", "bytes", 8, 80 },
	[SP_F_OTP] = { SP_F_OTP, "otp", "text", 6, 32 },
	[SP_F_FACTOR_KEY] = { SP_F_FACTOR_KEY, "factor_key", "bytes", 16, 256 },
	[SP_F_CODES] = { SP_F_CODES, "codes", "array of text", 1, 32 },
	[SP_F_RECOVERY_PK] = { SP_F_RECOVERY_PK, "recovery_pk", "bytes", 32,
	    32 },
};

/* Field lists are comma-separated names, "—" for none, as in the doc. */
static const struct tmsg {
	uint32_t type;
	const char *name, *dir, *id, *req, *opt, *reply;
} tmsgs[] = {
	{ SP_MSG_ERROR, "ERROR", "S→C", "any", "code, message", "—", "—" },
	{ SP_MSG_OK, "OK", "S→C", "≠ 0", "—", "—", "—" },
	{ SP_MSG_HELLO, "HELLO", "C→S", "≠ 0", "version", "device",
	    "WELCOME" },
	{ SP_MSG_WELCOME, "WELCOME", "S→C", "≠ 0",
	    "version, time, size, max_records", "—", "—" },
	{ SP_MSG_REGISTER, "REGISTER", "C→S", "≠ 0",
	    "address, auth_pk, kdf_params, vault, pubkeys",
	    "invite, recovery_pk", "OK" },
	{ SP_MSG_PRELOGIN, "PRELOGIN", "C→S", "≠ 0", "address", "—",
	    "PRELOGIN_OK" },
	{ SP_MSG_PRELOGIN_OK, "PRELOGIN_OK", "S→C", "≠ 0",
	    "kdf_params, challenge", "—", "—" },
	{ SP_MSG_LOGIN, "LOGIN", "C→S", "≠ 0",
	    "address, challenge, signature", "device", "LOGIN_OK" },
	{ SP_MSG_LOGIN_OK, "LOGIN_OK", "S→C", "≠ 0",
	    "token, session_id, vault, last", "—", "—" },
	{ SP_MSG_RESUME, "RESUME", "C→S", "≠ 0", "token", "—", "RESUME_OK" },
	{ SP_MSG_RESUME_OK, "RESUME_OK", "S→C", "≠ 0",
	    "address, session_id, last", "—", "—" },
	{ SP_MSG_LOGOUT, "LOGOUT", "C→S", "≠ 0", "—", "—", "OK" },
	{ SP_MSG_SESSIONS, "SESSIONS", "C→S", "≠ 0", "—", "—",
	    "SESSIONS_OK" },
	{ SP_MSG_SESSIONS_OK, "SESSIONS_OK", "S→C", "≠ 0",
	    "session_ids, devices, created, last_seen", "—", "—" },
	{ SP_MSG_REVOKE, "REVOKE", "C→S", "≠ 0", "session_id", "—", "OK" },
	{ SP_MSG_VAULT_PUT, "VAULT_PUT", "C→S", "≠ 0",
	    "vault, auth_pk, kdf_params", "—", "OK" },
	{ SP_MSG_COMPACT, "COMPACT", "C→S", "≠ 0", "seq", "—", "OK" },
	{ SP_MSG_RECOVER, "RECOVER", "C→S", "≠ 0",
	    "address, challenge, signature", "device", "LOGIN_OK" },
	{ SP_MSG_APPEND, "APPEND", "C→S", "≠ 0", "records", "expected",
	    "APPENDED" },
	{ SP_MSG_APPENDED, "APPENDED", "S→C", "≠ 0", "seq, last", "—", "—" },
	{ SP_MSG_READ, "READ", "C→S", "≠ 0", "seq", "max_records, max_bytes",
	    "RECORDS" },
	{ SP_MSG_RECORDS, "RECORDS", "S→C", "≠ 0",
	    "seq, records, last, more", "—", "—" },
	{ SP_MSG_SUBSCRIBE, "SUBSCRIBE", "C→S", "≠ 0", "seq", "—",
	    "SUBSCRIBED" },
	{ SP_MSG_SUBSCRIBED, "SUBSCRIBED", "S→C", "≠ 0", "last", "—", "—" },
	{ SP_MSG_PUSH, "PUSH", "S→C", "0", "seq, records, last", "—", "—" },
	{ SP_MSG_DELIVER, "DELIVER", "C→S", "≠ 0", "recipient, records", "—",
	    "OK" },
	{ SP_MSG_BLOB_BEGIN, "BLOB_BEGIN", "C→S", "≠ 0", "blob_id, size", "—",
	    "BLOB_BEGUN" },
	{ SP_MSG_BLOB_BEGUN, "BLOB_BEGUN", "S→C", "≠ 0", "have", "—", "—" },
	{ SP_MSG_BLOB_CHUNK, "BLOB_CHUNK", "C→S", "≠ 0",
	    "blob_id, index, data", "—", "OK" },
	{ SP_MSG_BLOB_FINISH, "BLOB_FINISH", "C→S", "≠ 0", "blob_id", "—",
	    "OK" },
	{ SP_MSG_BLOB_GET, "BLOB_GET", "C→S", "≠ 0", "blob_id, index", "—",
	    "BLOB_DATA" },
	{ SP_MSG_BLOB_DATA, "BLOB_DATA", "S→C", "≠ 0", "data, size", "—",
	    "—" },
	{ SP_MSG_BLOB_DELETE, "BLOB_DELETE", "C→S", "≠ 0", "blob_id", "—",
	    "OK" },
	{ SP_MSG_KEYS_GET, "KEYS_GET", "C→S", "≠ 0", "address", "—", "KEYS" },
	{ SP_MSG_KEYS, "KEYS", "S→C", "≠ 0", "address, pubkeys", "—", "—" },
	{ SP_MSG_GATEWAY_KEY, "GATEWAY_KEY", "C→S", "≠ 0", "—", "—",
	    "GATEWAY_KEY_OK" },
	{ SP_MSG_GATEWAY_KEY_OK, "GATEWAY_KEY_OK", "S→C", "≠ 0", "gateway_pk",
	    "—", "—" },
	{ SP_MSG_SUBMIT, "SUBMIT", "C→S", "≠ 0",
	    "blob_id, mail_from, recipients", "—", "OK" },	{ SP_MSG_SECOND_FACTOR, "SECOND_FACTOR", "S→C", "≠ 0",
	    "challenge, factors", "factor_ids", "—" },
	{ SP_MSG_LOGIN_2FA, "LOGIN_2FA", "C→S", "≠ 0", "challenge, factor",
	    "factor_id, auth_data, client_data, assertion, otp", "LOGIN_OK" },
	{ SP_MSG_FACTORS, "FACTORS", "C→S", "≠ 0", "—", "—", "FACTORS_OK" },
	{ SP_MSG_FACTORS_OK, "FACTORS_OK", "S→C", "≠ 0",
	    "factors, factor_ids, created", "—", "—" },
	{ SP_MSG_FACTOR_ADD, "FACTOR_ADD", "C→S", "≠ 0", "factor, factor_key",
	    "factor_id, otp", "OK" },
	{ SP_MSG_FACTOR_REMOVE, "FACTOR_REMOVE", "C→S", "≠ 0", "factor",
	    "factor_id", "OK" },
	{ SP_MSG_RECOVERY_NEW, "RECOVERY_NEW", "C→S", "≠ 0", "—", "—",
	    "RECOVERY_CODES" },
	{ SP_MSG_RECOVERY_CODES, "RECOVERY_CODES", "S→C", "≠ 0", "codes", "—",
	    "—" },
};

/* ---- helpers ------------------------------------------------------------ */

static uint8_t *pat;			/* SP_FRAME_MAX + 64 patterned bytes */
static char texts[SP_F_MAX][300];	/* text values, NUL-terminated */
static uint8_t *held[2];		/* the inputs of decoded frames */

static int
is_array(unsigned key)
{
	return strncmp(tfields[key].type, "array of ", 9) == 0;
}

/* 'u' uint, 'b' bytes, 't' text, 'B' bool; of the items for arrays. */
static int
kind(unsigned key)
{
	const char *t = tfields[key].type + (is_array(key) ? 9 : 0);

	if (strcmp(t, "bool") == 0)
		return 'B';
	return t[0];
}

static uint64_t
names_mask(const char *list)
{
	char buf[256], *tok, *save = NULL;
	uint64_t m = 0;
	unsigned k;

	snprintf(buf, sizeof(buf), "%s", list);
	for (tok = strtok_r(buf, ", ", &save); tok != NULL;
	    tok = strtok_r(NULL, ", ", &save)) {
		if (strcmp(tok, "—") == 0)
			continue;
		for (k = 0; k < SP_F_MAX; k++)
			if (tfields[k].name != NULL &&
			    strcmp(tfields[k].name, tok) == 0)
				break;
		if (k == SP_F_MAX) {
			fprintf(stderr, "# unknown field name '%s'\n", tok);
			unit_case_failed = 1;
			continue;
		}
		m |= BIT(k);
	}
	return m;
}

static uint64_t
req_mask(const struct tmsg *m)
{
	return names_mask(m->req);
}

static uint64_t
allowed_mask(const struct tmsg *m)
{
	return names_mask(m->req) | names_mask(m->opt);
}

static uint64_t
msg_id(const struct tmsg *m)
{
	return m->type == SP_MSG_PUSH ? 0 : 1000 + m->type;
}

/* A valid uint for field key (within its range). */
static uint64_t
uint_value(unsigned key)
{
	const struct tfield *t = &tfields[key];

	if (t->max == ANY)
		return UINT64_C(0xfedcba9876543210) >> (key % 61);
	return t->max;
}

static const char *
text_of(unsigned key, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		texts[key][i] = (char)('a' + (i + key) % 26);
	texts[key][n] = 0;
	return texts[key];
}

/*
 * Sets field key to a value of length len (bytes and text, of each item for
 * arrays; not clamped), with nitems items for arrays.
 */
static void
set_len(struct sp_frame *f, unsigned key, size_t len, size_t nitems)
{
	size_t i;

	switch (is_array(key) ? 'A' : kind(key)) {
	case 'u':
		sp_frame_set_uint(f, key, uint_value(key));
		break;
	case 'B':
		sp_frame_set_bool(f, key, 1);
		break;
	case 'b':
		sp_frame_set_bytes(f, key, pat + key, len);
		break;
	case 't':
		sp_frame_set_text(f, key, text_of(key, len));
		break;
	default:
		if (kind(key) == 't')
			(void)text_of(key, len);
		for (i = 0; i < nitems; i++)
			CHECK_RC(sp_frame_add_item(f, key, kind(key) == 't' ?
			    (const void *)texts[key] : (const void *)(pat + i),
			    kind(key) == 'u' ? 0 : len, uint_value(key) + i),
			    0);
		if (nitems == 0)
			sp_frame_set_array_empty(f, key);
	}
}

/* A valid value of about len bytes, clamped to the field's limits. */
static void
set_valid(struct sp_frame *f, unsigned key, size_t len)
{
	const struct tfield *t = &tfields[key];

	if (len < t->min)
		len = (size_t)t->min;
	if (len > t->max)
		len = (size_t)t->max;
	set_len(f, key, len, 2);
}

/* Message m with every required field but skip (-1: none). */
static void
base(struct sp_frame *f, const struct tmsg *m, int skip)
{
	uint64_t req = req_mask(m);
	unsigned k;

	sp_frame_init(f, m->type, msg_id(m));
	for (k = 2; k < SP_F_MAX; k++)
		if ((req & BIT(k)) && (int)k != skip)
			set_valid(f, k, 8);
}

static const struct tmsg *
tmsg_of(uint32_t type)
{
	size_t i;

	for (i = 0; i < NMSGS; i++)
		if (tmsgs[i].type == type)
			return &tmsgs[i];
	return NULL;
}

/* The first message that may carry field key. */
static const struct tmsg *
carrier(unsigned key)
{
	size_t i;

	for (i = 0; i < NMSGS; i++)
		if (allowed_mask(&tmsgs[i]) & BIT(key))
			return &tmsgs[i];
	return NULL;
}

struct tb {
	uint8_t *b;
	size_t n, cap;
};

static void
tb_put(struct tb *t, const void *p, size_t n)
{
	if (t->n + n > t->cap) {
		t->cap = (t->n + n) * 2 + 64;
		if ((t->b = realloc(t->b, t->cap)) == NULL)
			abort();
	}
	if (n > 0)
		memcpy(t->b + t->n, p, n);
	t->n += n;
}

static void
tb_head(struct tb *t, unsigned major, uint64_t v)
{
	uint8_t h[9];
	int n, i;

	if (v < 24) {
		h[0] = (uint8_t)(major << 5 | v);
		tb_put(t, h, 1);
		return;
	}
	n = v <= 0xff ? 1 : v <= 0xffff ? 2 : v <= 0xffffffff ? 4 : 8;
	h[0] = (uint8_t)(major << 5 | (n == 1 ? 24 : n == 2 ? 25 : n == 4 ?
	    26 : 27));
	for (i = n; i >= 1; i--, v >>= 8)
		h[i] = (uint8_t)v;
	tb_put(t, h, (size_t)n + 1);
}

static void
tb_item(struct tb *t, int k, const struct sp_frame_item *x)
{
	switch (k) {
	case 'u':
		tb_head(t, 0, x->u);
		break;
	case 'B':
		tb_head(t, 7, x->u ? 21 : 20);
		break;
	default:
		tb_head(t, k == 'b' ? 2 : 3, x->len);
		tb_put(t, x->ptr, x->len);
	}
}

/*
 * Encodes f in canonical CBOR with no checks at all, leaving out field omit
 * and writing the bytes swap (swap_len) as the value of field swap_key
 * (-1: neither).  Returns a malloc'd buffer.
 */
static uint8_t *
raw_encode(const struct sp_frame *f, int omit, int swap_key,
    const uint8_t *swap, size_t swap_len, size_t *len_r)
{
	struct tb t = { NULL, 0, 0 };
	size_t n = 0, i, cnt;
	const struct sp_frame_item *it;
	unsigned k;

	for (k = 0; k < SP_F_MAX; k++)
		if (sp_frame_has(f, k) && (int)k != omit)
			n++;
	tb_head(&t, 5, n);
	for (k = 0; k < SP_F_MAX; k++) {
		if (!sp_frame_has(f, k) || (int)k == omit)
			continue;
		tb_head(&t, 0, k);
		if ((int)k == swap_key)
			tb_put(&t, swap, swap_len);
		else if (k == SP_F_TYPE)
			tb_head(&t, 0, f->type);
		else if (k == SP_F_ID)
			tb_head(&t, 0, f->id);
		else if (!is_array(k))
			tb_item(&t, kind(k), &f->f[k]);
		else {
			it = sp_frame_array(f, k, &cnt);
			tb_head(&t, 4, cnt);
			for (i = 0; i < cnt; i++)
				tb_item(&t, kind(k), &it[i]);
		}
	}
	*len_r = t.n;
	return t.b;
}

/* Decodes an exact-size heap copy, kept in held[slot] until the next use of
 * that slot (decoded values point into it). */
static int
dec(const uint8_t *b, size_t n, struct sp_frame *f, const char **why_r,
    int slot)
{
	free(held[slot]);
	if ((held[slot] = malloc(n ? n : 1)) == NULL)
		abort();
	if (n > 0)
		memcpy(held[slot], b, n);
	*why_r = NULL;
	return sp_frame_decode(held[slot], n, f, why_r);
}

static int
same_item(int k, const struct sp_frame_item *a, const struct sp_frame_item *b)
{
	if (k == 'u' || k == 'B')
		return a->u == b->u;
	return a->len == b->len &&
	    (a->len == 0 || memcmp(a->ptr, b->ptr, a->len) == 0);
}

static int
same_frame(const struct sp_frame *a, const struct sp_frame *b)
{
	const struct sp_frame_item *ia, *ib;
	size_t na, nb, i;
	unsigned k;

	if (a->type != b->type || a->id != b->id || a->present != b->present)
		return 0;
	for (k = 2; k < SP_F_MAX; k++) {
		if (!sp_frame_has(a, k))
			continue;
		if (!is_array(k)) {
			if (!same_item(kind(k), &a->f[k], &b->f[k]))
				return 0;
			continue;
		}
		ia = sp_frame_array(a, k, &na);
		ib = sp_frame_array(b, k, &nb);
		if (na != nb)
			return 0;
		for (i = 0; i < na; i++)
			if (ia[i].key != k || ib[i].key != k ||
			    !same_item(kind(k), &ia[i], &ib[i]))
				return 0;
	}
	return 1;
}

static size_t
unhex(const char *s, uint8_t *out, size_t cap)
{
	size_t n = 0;
	unsigned v;

	while (*s) {
		if (*s == ' ') {
			s++;
			continue;
		}
		if (n == cap || sscanf(s, "%2x", &v) != 1)
			abort();
		out[n++] = (uint8_t)v;
		s += 2;
	}
	return n;
}

/* Hex for n zero bytes (n <= 200), for byte strings in CHECK_HEX. */
static const char *
zeros(size_t n)
{
	static char buf[4][401];
	static int i;

	i = (i + 1) % 4;
	memset(buf[i], '0', 2 * n);
	buf[i][2 * n] = 0;
	return buf[i];
}

static void
check_dec_at(int line, const uint8_t *b, size_t n, int want,
    const char *want_why)
{
	struct sp_frame f;
	const char *why;
	int rc = dec(b, n, &f, &why, 0);

	if (rc != want || (rc != 0 && why == NULL) ||
	    (want_why && (why == NULL || strcmp(why, want_why) != 0))) {
		fprintf(stderr, "# line %d: decode gave %d (%s), want %d "
		    "(%s)\n", line, rc, why ? why : "-", want,
		    want_why ? want_why : "-");
		unit_case_failed = 1;
	}
}

static void
check_hex_at(int line, const char *hex, int want, const char *want_why)
{
	static uint8_t b[4096];

	check_dec_at(line, b, unhex(hex, b, sizeof(b)), want, want_why);
}

#define CHECK_DEC(b, n, want, why) check_dec_at(__LINE__, b, n, want, why)
#define CHECK_HEX(hex, want, why) check_hex_at(__LINE__, hex, want, why)

/* Encodes f, checks the bytes against raw_encode (canonical) and that they
 * decode to the same frame. */
static void
check_roundtrip(const struct sp_frame *f)
{
	struct sp_frame g;
	uint8_t *enc, *raw;
	size_t len, rlen;
	const char *why;
	int rc;

	if ((rc = sp_frame_encode(f, 16, &enc, &len)) != 0) {
		fprintf(stderr, "# encode %s: %s\n", sp_msg_name(f->type),
		    sp_strerror(rc));
		unit_case_failed = 1;
		return;
	}
	raw = raw_encode(f, -1, -1, NULL, 0, &rlen);
	CHECK(rlen == len && memcmp(raw, enc + 16, len) == 0);
	rc = dec(enc + 16, len, &g, &why, 1);
	if (rc != 0)
		fprintf(stderr, "# decode %s: %d %s\n", sp_msg_name(f->type),
		    rc, why);
	CHECK(rc == 0 && same_frame(f, &g));
	free(raw);
	free(enc);
}

/* "field 'NAME'" followed by what, as the decoder words its reasons. */
static char *
fwhy(const char *name, const char *what)
{
	static char buf[4][128];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "field '%s'%s", name, what);
	return buf[i];
}

/* ---- tests -------------------------------------------------------------- */

/* Every message, first with every field it may carry, then only with the
 * required ones. */
static void
t_roundtrip(void)
{
	struct sp_frame f;
	size_t i;
	unsigned k;

	for (i = 0; i < NMSGS; i++) {
		const struct tmsg *m = &tmsgs[i];

		sp_frame_init(&f, m->type, msg_id(m));
		for (k = 2; k < SP_F_MAX; k++)
			if (allowed_mask(m) & BIT(k))
				set_valid(&f, k, 40);
		check_roundtrip(&f);
		base(&f, m, -1);
		check_roundtrip(&f);
	}
	/* Non-ASCII text; an empty records array (RECORDS may be empty);
	 * parallel arrays of unequal length, which the codec leaves to the
	 * receiver to refuse. */
	sp_frame_init(&f, SP_MSG_ERROR, 0);
	sp_frame_set_uint(&f, SP_F_CODE, SP_PERR_RATE);
	sp_frame_set_text(&f, SP_F_MESSAGE, "Grüße, 世界 — 🙂");
	check_roundtrip(&f);
	base(&f, tmsg_of(SP_MSG_RECORDS), SP_F_RECORDS);
	sp_frame_set_array_empty(&f, SP_F_RECORDS);
	check_roundtrip(&f);
	sp_frame_init(&f, SP_MSG_SESSIONS_OK, 9);
	set_len(&f, SP_F_SESSION_IDS, 16, 3);
	set_len(&f, SP_F_DEVICES, 5, 1);
	set_len(&f, SP_F_CREATED, 0, 0);
	set_len(&f, SP_F_LAST_SEEN, 0, 2);
	check_roundtrip(&f);
}

/* Each message accepts exactly its own fields, requires the required ones,
 * and the decoder names the offending field. */
static void
t_message_table(void)
{
	struct sp_frame f;
	uint8_t *enc, *raw;
	size_t i, len, elen;
	unsigned k;

	for (i = 0; i < NMSGS; i++) {
		const struct tmsg *m = &tmsgs[i];

		CHECK(strcmp(sp_msg_name(m->type), m->name) == 0);
		for (k = 2; k < SP_F_MAX; k++) {
			if (tfields[k].name == NULL)    /* unassigned key */
				continue;
			base(&f, m, -1);
			if (!sp_frame_has(&f, k))
				set_valid(&f, k, 8);
			raw = raw_encode(&f, -1, -1, NULL, 0, &len);
			if (allowed_mask(m) & BIT(k)) {
				CHECK_RC(sp_frame_encode(&f, 0, &enc, &elen),
				    0);
				free(enc);
				CHECK_DEC(raw, len, 0, NULL);
			} else {
				CHECK_RC(sp_frame_encode(&f, 0, &enc, &elen),
				    SP_EINVAL);
				CHECK(enc == NULL && elen == 0);
				CHECK_DEC(raw, len, SP_PERR_INVALID,
				    fwhy(tfields[k].name,
				    " not allowed in this message"));
			}
			free(raw);
			if (!(req_mask(m) & BIT(k)))
				continue;
			base(&f, m, (int)k);
			CHECK_RC(sp_frame_encode(&f, 0, &enc, &elen),
			    SP_EINVAL);
			raw = raw_encode(&f, -1, -1, NULL, 0, &len);
			CHECK_DEC(raw, len, SP_PERR_INVALID,
			    fwhy(tfields[k].name, " missing"));
			free(raw);
		}
	}
	/* Nothing else has a name or decodes. */
	for (k = 0; k <= SP_MSG_TYPE_MAX + 1; k++) {
		if (tmsg_of(k) != NULL)
			continue;
		CHECK(strcmp(sp_msg_name(k), "(unknown)") == 0);
		sp_frame_init(&f, k, 1);
		CHECK_RC(sp_frame_encode(&f, 0, &enc, &len), SP_EINVAL);
		raw = raw_encode(&f, -1, -1, NULL, 0, &len);
		CHECK_DEC(raw, len, SP_PERR_UNKNOWN, "unknown message type");
		free(raw);
	}
}

/* Where the value of uint field key is (its first item for arrays). */
static uint64_t *
uint_slot(struct sp_frame *f, unsigned key)
{
	return is_array(key) ? &f->items[f->f[key].u].u : &f->f[key].u;
}

/* Every field at its limits and one past them, through both directions. */
static void
t_field_limits(void)
{
	struct sp_frame f;
	uint8_t *enc, *raw;
	size_t len;
	unsigned k;

	for (k = 2; k < SP_F_MAX; k++) {
		const struct tfield *t = &tfields[k];
		const struct tmsg *m = carrier(k);
		int c;
		const char *item;
		char why[128];

		if (t->name == NULL)    /* a key not assigned yet */
			continue;
		c = kind(k);
		item = is_array(k) ? " item" : "";
		CHECK(m != NULL);
		if (m == NULL || c == 'B')
			continue;
		if (c == 'u') {
			if (t->min > 0) {
				base(&f, m, (int)k);
				set_valid(&f, k, 0);
				*uint_slot(&f, k) = t->min;
				check_roundtrip(&f);
				*uint_slot(&f, k) = t->min - 1;
				CHECK_RC(sp_frame_encode(&f, 0, &enc, &len),
				    SP_EINVAL);
				raw = raw_encode(&f, -1, -1, NULL, 0, &len);
				CHECK_DEC(raw, len, SP_PERR_INVALID,
				    fwhy(t->name, " out of range"));
				free(raw);
			}
			base(&f, m, (int)k);
			set_valid(&f, k, 0);
			*uint_slot(&f, k) = t->max;
			check_roundtrip(&f);
			if (t->max == ANY)
				continue;
			*uint_slot(&f, k) = t->max + 1;
			CHECK_RC(sp_frame_encode(&f, 0, &enc, &len), SP_EINVAL);
			raw = raw_encode(&f, -1, -1, NULL, 0, &len);
			CHECK_DEC(raw, len, SP_PERR_INVALID,
			    fwhy(t->name, " out of range"));
			free(raw);
			continue;
		}
		base(&f, m, (int)k);
		set_len(&f, k, (size_t)t->min, 1);
		check_roundtrip(&f);
		base(&f, m, (int)k);
		set_len(&f, k, (size_t)t->max, 1);
		check_roundtrip(&f);
		if (t->min > 0) {
			base(&f, m, (int)k);
			set_len(&f, k, (size_t)t->min - 1, 1);
			CHECK_RC(sp_frame_encode(&f, 0, &enc, &len), SP_EINVAL);
			raw = raw_encode(&f, -1, -1, NULL, 0, &len);
			snprintf(why, sizeof(why), "field '%s'%s too short",
			    t->name, item);
			CHECK_DEC(raw, len, SP_PERR_INVALID, why);
			free(raw);
		}
		base(&f, m, (int)k);
		set_len(&f, k, (size_t)t->max + 1, 1);
		CHECK_RC(sp_frame_encode(&f, 0, &enc, &len), SP_EINVAL);
		raw = raw_encode(&f, -1, -1, NULL, 0, &len);
		snprintf(why, sizeof(why), "field '%s'%s too long", t->name,
		    item);
		CHECK_DEC(raw, len, SP_PERR_TOO_LARGE, why);
		free(raw);
	}
}

/* A value of another CBOR type, for every field, and array items of
 * another type. */
static void
t_wrong_types(void)
{
	static const uint8_t as_uint[] = { 0x01 }, as_bytes[] = { 0x41, 0 },
	    as_text[] = { 0x61, 'a' }, as_bool[] = { 0xf5 },
	    as_array[] = { 0x81, 0x01 };
	struct sp_frame f;
	const uint8_t *v;
	uint8_t *raw, item[3];
	size_t len, vlen;
	unsigned k;

	for (k = 2; k < SP_F_MAX; k++) {
		const struct tmsg *m;
		int c;

		if (tfields[k].name == NULL)    /* unassigned key */
			continue;
		m = carrier(k);
		c = kind(k);
		if (m == NULL)
			continue;
		base(&f, m, (int)k);
		set_valid(&f, k, 8);
		v = c == 'u' || c == 'B' ? as_bytes : c == 'b' ? as_text :
		    as_uint;
		vlen = c == 'u' || c == 'B' ? 2 : c == 'b' ? 2 : 1;
		if (is_array(k)) {
			/* a scalar of the item type where the array goes */
			v = c == 'u' ? as_uint : c == 'b' ? as_bytes :
			    as_text;
			vlen = c == 'u' ? 1 : 2;
		} else {
			/* an array where a scalar goes */
			raw = raw_encode(&f, -1, (int)k, as_array, 2, &len);
			CHECK_DEC(raw, len, SP_PERR_INVALID,
			    fwhy(tfields[k].name, " has the wrong CBOR type"));
			free(raw);
		}
		raw = raw_encode(&f, -1, (int)k, v, vlen, &len);
		CHECK_DEC(raw, len, SP_PERR_INVALID,
		    fwhy(tfields[k].name, " has the wrong CBOR type"));
		free(raw);
		if (c != 'B' || is_array(k)) {
			raw = raw_encode(&f, -1, (int)k, as_bool, 1, &len);
			CHECK_DEC(raw, len, SP_PERR_INVALID,
			    fwhy(tfields[k].name, " has the wrong CBOR type"));
			free(raw);
		}
		if (!is_array(k))
			continue;
		item[0] = 0x81;
		memcpy(item + 1, c == 'u' ? as_bytes : as_uint,
		    c == 'u' ? 2 : 1);
		raw = raw_encode(&f, -1, (int)k, item, c == 'u' ? 3 : 2, &len);
		CHECK_DEC(raw, len, SP_PERR_INVALID,
		    fwhy(tfields[k].name, " item has the wrong CBOR type"));
		free(raw);
	}
}

/* Everything outside the CBOR subset, and structural errors. */
static void
t_malformed(void)
{
	static uint8_t big[SP_FRAME_MAX + 1];
	const int M = SP_PERR_MALFORMED;

	CHECK_DEC(big, 0, M, "empty frame");
	CHECK_HEX("80", M, "frame is not a map");
	CHECK_HEX("01", M, "frame is not a map");
	CHECK_HEX("41 00", M, "frame is not a map");
	/* indefinite map, bytes, array, text */
	CHECK_HEX("bf 00 18 1e 01 01 10 81 41 61 ff", M, "indefinite length");
	CHECK_HEX("a3 00 18 1e 01 01 10 81 5f 41 61 ff", M,
	    "indefinite length");
	CHECK_HEX("a3 00 18 1e 01 01 10 9f 41 61 ff", M, "indefinite length");
	CHECK_HEX("a3 00 0c 01 01 05 7f 63 61 40 62 ff", M,
	    "indefinite length");
	/* tags: on a value, on the map */
	CHECK_HEX("a4 00 18 1e 01 01 0f c1 05 10 81 41 61", M, "tag");
	CHECK_HEX("c0 a2 00 02 01 01", M, "tag");
	CHECK_HEX("d8 20 a2 00 02 01 01", M, "tag");
	/* negative integers: value, key */
	CHECK_HEX("a4 00 18 1e 01 01 0f 20 10 81 41 61", M,
	    "negative integer");
	CHECK_HEX("a3 00 18 1e 01 01 20 00", M, "negative integer");
	/* floats, null, undefined, other simple values, break */
	CHECK_HEX("a4 00 18 1e 01 01 0f f9 3c 00 10 81 41 61", M,
	    "floating-point value");
	CHECK_HEX("a4 00 18 1e 01 01 0f fa 3f 80 00 00 10 81 41 61", M,
	    "floating-point value");
	CHECK_HEX("a4 00 18 1e 01 01 0f fb 3f f0 00 00 00 00 00 00 10 81 41 61",
	    M, "floating-point value");
	CHECK_HEX("a4 00 18 1e 01 01 0f f6 10 81 41 61", M,
	    "null or undefined value");
	CHECK_HEX("a4 00 18 1e 01 01 0f f7 10 81 41 61", M,
	    "null or undefined value");
	CHECK_HEX("a4 00 18 1e 01 01 0f f8 20 10 81 41 61", M,
	    "simple value other than true or false");
	CHECK_HEX("a4 00 18 1e 01 01 0f e0 10 81 41 61", M,
	    "simple value other than true or false");
	CHECK_HEX("a4 00 18 1e 01 01 0f ff 10 81 41 61", M,
	    "break outside an indefinite-length item");
	CHECK_HEX("a4 00 18 1e 01 01 0f 1c 10 81 41 61", M,
	    "reserved additional information");
	CHECK_HEX("a4 00 18 1e 01 01 0f 5d 10 81 41 61", M,
	    "reserved additional information");
	/* nested containers */
	CHECK_HEX("a4 00 18 1e 01 01 0f a0 10 81 41 61", M, "nested map");
	CHECK_HEX("a3 00 18 1e 01 01 10 81 80", M, "nested array");
	CHECK_HEX("a3 00 18 1e 01 01 10 81 a1 00 00", M, "nested map");
	CHECK_HEX("a4 00 18 1e 01 01 10 81 41 61 18 22 a0", M, "nested map");
	CHECK_HEX("a4 00 18 1e 01 01 0f 81 80 10 81 41 61", M,
	    "nested array");
	/* keys */
	CHECK_HEX("a3 00 18 1e 01 01 61 61 00", M,
	    "key is not an unsigned integer");
	CHECK_HEX("a3 00 18 1e 01 01 41 10 00", M,
	    "key is not an unsigned integer");
	CHECK_HEX("a4 00 18 1e 01 01 10 81 41 61 10 81 41 62", M,
	    "field 'records' repeated");
	CHECK_HEX("a4 00 18 1e 00 18 1e 01 01 10 81 41 61", M,
	    "field 'type' repeated");
	/* the same key written long-hand is still the same key */
	CHECK_HEX("a4 00 18 1e 01 01 10 81 41 61 19 00 10 81 41 62", M,
	    "field 'records' repeated");
	/* type and id */
	CHECK_HEX("a2 01 01 10 81 41 61", M, "field 'type' missing");
	CHECK_HEX("a2 00 18 1e 10 81 41 61", M, "field 'id' missing");
	CHECK_HEX("a3 00 61 41 01 01 10 81 41 61", M,
	    "field 'type' has the wrong CBOR type");
	CHECK_HEX("a3 00 18 1e 01 41 01 10 81 41 61", M,
	    "field 'id' has the wrong CBOR type");
	CHECK_HEX("a3 00 18 1e 01 81 01 10 81 41 61", M,
	    "field 'id' has the wrong CBOR type");
	CHECK_HEX("a3 00 18 1e 01 f5 10 81 41 61", M,
	    "field 'id' has the wrong CBOR type");
	/* lengths and counts past the end */
	CHECK_HEX("a3 00 18 1e 01 01 10 81 41 61 00", M,
	    "bytes after the frame");
	CHECK_HEX("a3 00 18 1e 01 01 10 81 41 61 a0", M,
	    "bytes after the frame");
	CHECK_HEX("a4 00 18 1e 01 01 10 81 41 61", M, "truncated frame");
	CHECK_HEX("a3 00 18 1e 01 01 10 81 45 61", M, "truncated frame");
	CHECK_HEX("a3 00 18 1e 01 01 10 81 5b ff ff ff ff ff ff ff ff", M,
	    "truncated frame");
	CHECK_HEX("a3 00 18 1e 01 01 10 81 5b 00 00 00 01 00 00 00 01 61",
	    M, "truncated frame");
	CHECK_HEX("a3 00 18 1e 01 01 10 9b ff ff ff ff ff ff ff ff", M,
	    "truncated frame");
	CHECK_HEX("bb ff ff ff ff ff ff ff ff 00 18 1e", M, "truncated frame");
	CHECK_HEX("a3 00 18 1e 01 19 01", M, "truncated frame");
	/* a structural error wins over an earlier field-level one */
	CHECK_HEX("a4 00 18 1e 01 01 18 22 00 10 81 5f", M,
	    "indefinite length");
	CHECK_HEX("a4 00 18 1e 01 01 06 41 00 10 81 41 61 00", M,
	    "bytes after the frame");
}

static void
t_rejections(void)
{
	static const char append_hdr[] = "00 18 1e 01 01";
	struct sp_frame f;
	const char *why;
	char hex[512];
	uint8_t b[64];
	int rc;

	/* UNKNOWN: unassigned, past the table, past 32 bits (where a cast
	 * would turn 2^32 + 30 into APPEND) */
	CHECK_HEX("a2 00 05 01 01", SP_PERR_UNKNOWN, "unknown message type");
	CHECK_HEX("a2 00 00 01 01", SP_PERR_UNKNOWN, "unknown message type");
	CHECK_HEX("a2 00 18 25 01 01", SP_PERR_UNKNOWN, NULL);
	CHECK_HEX("a2 00 18 40 01 01", SP_PERR_UNKNOWN, NULL);
	CHECK_HEX("a3 00 1b 00 00 00 01 00 00 00 1e 01 01 10 81 41 61",
	    SP_PERR_UNKNOWN, NULL);
	/* INVALID: unknown keys */
	snprintf(hex, sizeof(hex), "a4 %s 10 81 41 61 18 3e 00", append_hdr);
	CHECK_HEX(hex, SP_PERR_INVALID, "unknown field");
	snprintf(hex, sizeof(hex), "a4 %s 10 81 41 61 1b ff ff ff ff ff ff ff "
	    "ff 81 40", append_hdr);
	CHECK_HEX(hex, SP_PERR_INVALID, "unknown field");
	/* not allowed, missing, wrong type, bad text, ids */
	snprintf(hex, sizeof(hex), "a4 %s 10 81 41 61 06 58 20 %s", append_hdr,
	    zeros(32));
	CHECK_HEX(hex, SP_PERR_INVALID,
	    "field 'token' not allowed in this message");
	CHECK_HEX("a2 00 18 1e 01 01", SP_PERR_INVALID,
	    "field 'records' missing");
	CHECK_HEX("a3 00 18 1e 01 01 10 41 61", SP_PERR_INVALID,
	    "field 'records' has the wrong CBOR type");
	CHECK_HEX("a3 00 18 1e 01 01 10 81 01", SP_PERR_INVALID,
	    "field 'records' item has the wrong CBOR type");
	CHECK_HEX("a3 00 18 1e 01 01 10 81 40", SP_PERR_INVALID,
	    "field 'records' item too short");
	CHECK_HEX("a3 00 0c 01 01 05 63 61 40 ff", SP_PERR_INVALID,
	    "field 'address' is not valid UTF-8");
	CHECK_HEX("a3 00 0c 01 01 05 63 61 c0 80", SP_PERR_INVALID,
	    "field 'address' is not valid UTF-8");
	CHECK_HEX("a3 00 0c 01 01 05 63 ed a0 80", SP_PERR_INVALID,
	    "field 'address' is not valid UTF-8");
	CHECK_HEX("a3 00 0c 01 01 05 64 f4 90 80 80", SP_PERR_INVALID,
	    "field 'address' is not valid UTF-8");
	CHECK_HEX("a3 00 0c 01 01 05 63 61 00 62", SP_PERR_INVALID,
	    "field 'address' is not valid UTF-8");
	CHECK_HEX("a3 00 0c 01 01 05 63 61 62 e2", SP_PERR_INVALID,
	    "field 'address' is not valid UTF-8");
	CHECK_HEX("a3 00 0c 01 01 05 63 e2 82 ac", 0, NULL);
	CHECK_HEX("a3 00 03 01 01 02 00", SP_PERR_INVALID,
	    "field 'version' out of range");
	CHECK_HEX("a6 00 18 21 01 01 0e 01 10 80 11 01 18 21 01",
	    SP_PERR_INVALID, "field 'more' has the wrong CBOR type");
	CHECK_HEX("a5 00 18 24 01 05 0e 01 10 81 41 61 11 01",
	    SP_PERR_INVALID, "field 'id' must be 0 in a push");
	CHECK_HEX("a3 00 18 1e 01 00 10 81 41 61", SP_PERR_INVALID,
	    "field 'id' 0 is reserved for pushes and errors");
	CHECK_HEX("a4 00 01 01 00 03 01 04 60", 0, NULL);
	/* TOO_LARGE */
	snprintf(hex, sizeof(hex), "a3 00 10 01 01 06 58 21 %s", zeros(33));
	CHECK_HEX(hex, SP_PERR_TOO_LARGE, "field 'token' too long");
	snprintf(hex, sizeof(hex), "a3 00 10 01 01 06 58 1f %s", zeros(31));
	CHECK_HEX(hex, SP_PERR_INVALID, "field 'token' too short");
	snprintf(hex, sizeof(hex), "a3 00 10 01 01 06 58 20 %s", zeros(32));
	CHECK_HEX(hex, 0, NULL);
	/* Field-level problems: the first in input order; then an unknown
	 * type; the type and id are still returned wherever they are. */
	CHECK_HEX("a3 06 41 00 00 05 01 01", SP_PERR_INVALID,
	    "field 'token' too short");
	CHECK_HEX("a4 10 41 61 06 41 00 00 18 1e 01 01", SP_PERR_INVALID,
	    "field 'records' has the wrong CBOR type");
	rc = dec(b, unhex("a3 10 41 61 00 18 1e 01 19 01 00", b, sizeof(b)),
	    &f, &why, 0);
	CHECK(rc == SP_PERR_INVALID && f.type == SP_MSG_APPEND &&
	    f.id == 256);
	rc = dec(b, unhex("a2 01 1a 00 01 00 00 00 18 27", b, sizeof(b)), &f,
	    &why, 0);
	CHECK(rc == SP_PERR_UNKNOWN && f.type == 39 && f.id == 65536);
	/* a frame that is too large is refused before it is read */
	{
		static uint8_t big[SP_FRAME_MAX + 1];

		CHECK_DEC(big, sizeof(big), SP_PERR_TOO_LARGE,
		    "frame too large");
	}
}

/* The 256 array items are shared by all array fields of a frame. */
static void
t_array_items(void)
{
	struct sp_frame f;
	uint8_t *raw, *enc;
	size_t len, i;
	unsigned k;

	base(&f, tmsg_of(SP_MSG_APPEND), SP_F_RECORDS);
	set_len(&f, SP_F_RECORDS, 1, SP_FRAME_ARRAY_MAX);
	check_roundtrip(&f);
	CHECK_RC(sp_frame_add_item(&f, SP_F_RECORDS, pat, 1, 0), SP_ELIMIT);
	check_roundtrip(&f);	/* SP_ELIMIT leaves the frame usable */
	{
		struct tb t = { NULL, 0, 0 };

		tb_head(&t, 5, 3);
		tb_head(&t, 0, 0), tb_head(&t, 0, SP_MSG_APPEND);
		tb_head(&t, 0, 1), tb_head(&t, 0, 1);
		tb_head(&t, 0, SP_F_RECORDS);
		tb_head(&t, 4, SP_FRAME_ARRAY_MAX + 1);
		for (i = 0; i <= SP_FRAME_ARRAY_MAX; i++)
			tb_head(&t, 2, 1), tb_put(&t, pat, 1);
		CHECK_DEC(t.b, t.n, SP_PERR_TOO_LARGE,
		    "field 'records' has too many items");
		t.b[t.n - 2] = 0x40;	/* the first problem is reported */
		t.n--;
		CHECK_DEC(t.b, t.n, SP_PERR_TOO_LARGE,
		    "field 'records' has too many items");
		free(t.b);
	}

	sp_frame_init(&f, SP_MSG_SESSIONS_OK, 3);
	for (k = SP_F_SESSION_IDS; k <= SP_F_LAST_SEEN; k++)
		set_len(&f, k, k == SP_F_SESSION_IDS ? 16 : 10,
		    SP_FRAME_ARRAY_MAX / 4);
	check_roundtrip(&f);
	CHECK_RC(sp_frame_add_item(&f, SP_F_LAST_SEEN, NULL, 0, 1),
	    SP_ELIMIT);
	/* 255 items are fine; with one more session id the array that
	 * crosses 256 is named */
	sp_frame_init(&f, SP_MSG_SESSIONS_OK, 3);
	for (k = SP_F_SESSION_IDS; k <= SP_F_LAST_SEEN; k++)
		set_len(&f, k, k == SP_F_SESSION_IDS ? 16 : 10,
		    SP_FRAME_ARRAY_MAX / 4 - (k == SP_F_LAST_SEEN));
	raw = raw_encode(&f, -1, -1, NULL, 0, &len);
	CHECK_DEC(raw, len, 0, NULL);
	free(raw);
	{
		struct tb t = { NULL, 0, 0 };

		tb_head(&t, 5, 6);
		tb_head(&t, 0, 0), tb_head(&t, 0, SP_MSG_SESSIONS_OK);
		tb_head(&t, 0, 1), tb_head(&t, 0, 3);
		tb_head(&t, 0, SP_F_SESSION_IDS), tb_head(&t, 4, 65);
		for (i = 0; i < 65; i++)
			tb_head(&t, 2, 16), tb_put(&t, pat, 16);
		tb_head(&t, 0, SP_F_DEVICES), tb_head(&t, 4, 64);
		for (i = 0; i < 64; i++)
			tb_head(&t, 3, 0);
		tb_head(&t, 0, SP_F_CREATED), tb_head(&t, 4, 64);
		for (i = 0; i < 64; i++)
			tb_head(&t, 0, i);
		tb_head(&t, 0, SP_F_LAST_SEEN), tb_head(&t, 4, 64);
		for (i = 0; i < 64; i++)
			tb_head(&t, 0, i);
		CHECK_DEC(t.b, t.n, SP_PERR_TOO_LARGE,
		    "field 'last_seen' has too many items");
		free(t.b);
	}
	/* items of one field must be contiguous */
	sp_frame_init(&f, SP_MSG_SESSIONS_OK, 3);
	CHECK_RC(sp_frame_add_item(&f, SP_F_CREATED, NULL, 0, 1), 0);
	CHECK_RC(sp_frame_add_item(&f, SP_F_LAST_SEEN, NULL, 0, 1), 0);
	CHECK_RC(sp_frame_add_item(&f, SP_F_CREATED, NULL, 0, 2),
	    SP_EINVAL);
	set_len(&f, SP_F_SESSION_IDS, 16, 1);
	set_len(&f, SP_F_DEVICES, 1, 1);
	CHECK_RC(sp_frame_encode(&f, 0, &enc, &len), SP_EINVAL);
}

/* Frames exactly at SP_FRAME_MAX, and one byte over. */
static void
t_frame_size(void)
{
	struct sp_frame f;
	uint8_t *enc, *raw;
	size_t len, second = 1000000;

	sp_frame_init(&f, SP_MSG_DELIVER, 1);
	sp_frame_set_text(&f, SP_F_RECIPIENT, "bob@example.org");
	CHECK_RC(sp_frame_add_item(&f, SP_F_RECORDS, pat, 1048576, 0), 0);
	CHECK_RC(sp_frame_add_item(&f, SP_F_RECORDS, pat, second, 0), 0);
	CHECK_RC(sp_frame_encode(&f, 0, &enc, &len), 0);
	free(enc);
	f.items[1].len = second + (SP_FRAME_MAX - len);
	CHECK_RC(sp_frame_encode(&f, 7, &enc, &len), 0);
	CHECK(len == SP_FRAME_MAX);
	if (len == SP_FRAME_MAX)
		CHECK_DEC(enc + 7, len, 0, NULL);
	free(enc);
	f.items[1].len++;
	CHECK_RC(sp_frame_encode(&f, 0, &enc, &len), SP_ELIMIT);
	CHECK(enc == NULL && len == 0);
	raw = raw_encode(&f, -1, -1, NULL, 0, &len);
	CHECK(len == SP_FRAME_MAX + 1);
	CHECK_DEC(raw, len, SP_PERR_TOO_LARGE, "frame too large");
	free(raw);
}

/* The wire format, pinned byte for byte. */
static void
t_wire(void)
{
	/* APPEND id 7: expected 5, records ["abc", "de"] */
	static const char append[] =
	    "a4 00 18 1e 01 07 0f 05 10 82 43 61 62 63 42 64 65";
	/* WELCOME id 1: version 1, size 2097152, max_records 256,
	 * time 1764460800 */
	static const char welcome[] = "a6 00 04 01 01 02 01 13 1a 00 20 00 00 "
	    "18 1c 19 01 00 18 20 1a 69 2b 89 00";
	/* ERROR id 0: code 1 (MALFORMED), "nested map" */
	static const char error[] = "a4 00 01 01 00 03 01 04 6a 6e 65 73 74 65 "
	    "64 20 6d 61 70";
	/* RECORDS id 8: seq 41, records [h'0102'], last 1000, more true */
	static const char records[] = "a6 00 18 21 01 08 0e 18 29 10 81 42 01 "
	    "02 11 19 03 e8 18 21 f5";
	/* The APPEND again, with long heads and keys out of order. */
	static const char loose[] = "b8 04 10 98 02 58 03 61 62 63 59 00 02 "
	    "64 65 1b 00 00 00 00 00 00 00 01 1a 00 00 00 07 0f 18 05 00 19 00 "
	    "1e";
	struct sp_frame f, g;
	uint8_t want[128], *enc;
	size_t n, len;
	const char *why;

	sp_frame_init(&f, SP_MSG_APPEND, 7);
	sp_frame_set_uint(&f, SP_F_EXPECTED, 5);
	CHECK_RC(sp_frame_add_item(&f, SP_F_RECORDS, "abc", 3, 0), 0);
	CHECK_RC(sp_frame_add_item(&f, SP_F_RECORDS, "de", 2, 0), 0);
	n = unhex(append, want, sizeof(want));
	CHECK_RC(sp_frame_encode(&f, 0, &enc, &len), 0);
	CHECK(len == n && memcmp(enc, want, n) == 0);
	free(enc);
	n = unhex(loose, want, sizeof(want));
	CHECK(dec(want, n, &g, &why, 1) == 0 && same_frame(&f, &g));

	sp_frame_init(&f, SP_MSG_WELCOME, 1);
	sp_frame_set_uint(&f, SP_F_VERSION, SP_PROTO_VERSION);
	sp_frame_set_uint(&f, SP_F_TIME, 1764460800);
	sp_frame_set_uint(&f, SP_F_SIZE, SP_FRAME_MAX);
	sp_frame_set_uint(&f, SP_F_MAX_RECORDS, 256);
	n = unhex(welcome, want, sizeof(want));
	CHECK_RC(sp_frame_encode(&f, 0, &enc, &len), 0);
	CHECK(len == n && memcmp(enc, want, n) == 0);
	free(enc);

	n = unhex(error, want, sizeof(want));
	CHECK_RC(sp_frame_error(0, SP_PERR_MALFORMED, "nested map", 0, &enc,
	    &len), 0);
	CHECK(len == n && memcmp(enc, want, n) == 0);
	free(enc);

	sp_frame_init(&f, SP_MSG_RECORDS, 8);
	sp_frame_set_uint(&f, SP_F_SEQ, 41);
	CHECK_RC(sp_frame_add_item(&f, SP_F_RECORDS, "\x01\x02", 2, 0), 0);
	sp_frame_set_uint(&f, SP_F_LAST, 1000);
	sp_frame_set_bool(&f, SP_F_MORE, 1);
	n = unhex(records, want, sizeof(want));
	CHECK_RC(sp_frame_encode(&f, 0, &enc, &len), 0);
	CHECK(len == n && memcmp(enc, want, n) == 0);
	free(enc);
}

static void
check_prefixes(const struct sp_frame *f)
{
	uint8_t *enc;
	size_t len, n;

	CHECK_RC(sp_frame_encode(f, 0, &enc, &len), 0);
	if (enc == NULL)
		return;
	for (n = 0; n < len; n++)
		CHECK_DEC(enc, n, SP_PERR_MALFORMED, NULL);
	CHECK_DEC(enc, len, 0, NULL);
	free(enc);
}

/* Every proper prefix of a frame is malformed. */
static void
t_truncation(void)
{
	struct sp_frame f;
	size_t i;
	unsigned k;

	for (i = 0; i < NMSGS; i++) {
		sp_frame_init(&f, tmsgs[i].type, UINT64_MAX - i);
		if (tmsgs[i].type == SP_MSG_PUSH)
			f.id = 0;
		for (k = 2; k < SP_F_MAX; k++)
			if (allowed_mask(&tmsgs[i]) & BIT(k))
				set_valid(&f, k, 300);
		check_prefixes(&f);
	}
}

/* Every single-bit flip of every message is refused with a code and a
 * reason, or is a frame that survives a round trip. */
static void
t_bit_flips(void)
{
	struct sp_frame f, g, h;
	uint8_t *enc, *enc2;
	size_t i, len, len2, bit, valid = 0, total = 0;
	const char *why;
	unsigned k;
	int rc;

	for (i = 0; i < NMSGS; i++) {
		sp_frame_init(&f, tmsgs[i].type, msg_id(&tmsgs[i]));
		for (k = 2; k < SP_F_MAX; k++)
			if (allowed_mask(&tmsgs[i]) & BIT(k))
				set_valid(&f, k, 3);
		if (sp_frame_encode(&f, 0, &enc, &len) != 0) {
			CHECK(0);
			continue;
		}
		for (bit = 0; bit < len * 8; bit++) {
			enc[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			rc = dec(enc, len, &g, &why, 0);
			enc[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			total++;
			if (rc != 0) {
				CHECK(rc > 0 && rc < SP_PERR_MAX &&
				    why != NULL);
				continue;
			}
			valid++;
			CHECK_RC(sp_frame_encode(&g, 0, &enc2, &len2), 0);
			CHECK(dec(enc2, len2, &h, &why, 1) == 0 &&
			    same_frame(&g, &h));
			free(enc2);
		}
		free(enc);
	}
	printf("# bit flips: %zu of %zu decode to a valid frame\n", valid,
	    total);
}

static void
t_encoder_misuse(void)
{
	struct sp_frame f, g;
	uint8_t *enc;
	size_t len;
	char msg[400];
	const char *why;
	int i;

#define REFUSED(stmt) do {						\
	sp_frame_init(&f, SP_MSG_APPEND, 1);				\
	CHECK_RC(sp_frame_add_item(&f, SP_F_RECORDS, "x", 1, 0), 0);	\
	stmt;								\
	CHECK_RC(sp_frame_encode(&f, 0, &enc, &len), SP_EINVAL);	\
} while (0)
	REFUSED(sp_frame_set_bytes(&f, SP_F_EXPECTED, "x", 1));
	REFUSED(sp_frame_set_uint(&f, SP_F_RECORDS, 1));
	REFUSED(sp_frame_set_uint(&f, SP_F_TYPE, SP_MSG_OK));
	REFUSED(sp_frame_set_uint(&f, SP_F_ID, 2));
	REFUSED(sp_frame_set_uint(&f, SP_F_MAX, 2));
	REFUSED(sp_frame_set_uint(&f, 63, 2));
	REFUSED(sp_frame_set_uint(&f, 1000, 2));
	REFUSED(sp_frame_set_bool(&f, SP_F_EXPECTED, 1));
	REFUSED(sp_frame_set_text(&f, SP_F_EXPECTED, "x"));
	REFUSED(sp_frame_set_array_empty(&f, SP_F_EXPECTED));
	REFUSED(CHECK_RC(sp_frame_add_item(&f, SP_F_EXPECTED, "x", 1, 0),
	    SP_EINVAL));
	REFUSED(CHECK_RC(sp_frame_add_item(&f, SP_F_RECORDS, NULL, 1, 0),
	    SP_EINVAL));
	REFUSED(f.type = SP_MSG_PUSH);
	REFUSED(f.id = 0);
	REFUSED(f.type = 5);
	REFUSED(f.type = 1u << 31);
	REFUSED(f.items[0].len = 0);
	REFUSED(f.items[0].ptr = NULL);
	REFUSED(f.items[0].key = SP_F_DEVICES);
	REFUSED(f.f[SP_F_RECORDS].len = 2);
	REFUSED(f.nitems = SP_FRAME_ARRAY_MAX + 1);
#undef REFUSED
	sp_frame_init(&f, SP_MSG_PRELOGIN, 1);
	sp_frame_set_text(&f, SP_F_ADDRESS, NULL);
	CHECK_RC(sp_frame_encode(&f, 0, &enc, &len), SP_EINVAL);
	sp_frame_init(&f, SP_MSG_PRELOGIN, 1);
	sp_frame_set_text(&f, SP_F_ADDRESS, "a\xc3@b");
	CHECK_RC(sp_frame_encode(&f, 0, &enc, &len), SP_EINVAL);
	sp_frame_init(&f, SP_MSG_BLOB_CHUNK, 1);
	sp_frame_set_bytes(&f, SP_F_BLOB_ID, pat, 32);
	sp_frame_set_uint(&f, SP_F_INDEX, 0);
	sp_frame_set_bytes(&f, SP_F_DATA, NULL, 1);
	CHECK_RC(sp_frame_encode(&f, 0, &enc, &len), SP_EINVAL);
	sp_frame_set_bytes(&f, SP_F_DATA, NULL, 0);
	CHECK_RC(sp_frame_encode(&f, 0, &enc, &len), SP_EINVAL); /* sticky */
	sp_frame_init(&f, SP_MSG_BLOB_CHUNK, 1);
	sp_frame_set_bytes(&f, SP_F_BLOB_ID, pat, 32);
	sp_frame_set_uint(&f, SP_F_INDEX, 0);
	sp_frame_set_bytes(&f, SP_F_DATA, NULL, 0);
	check_roundtrip(&f);
	f.f[SP_F_DATA].len = 1;		/* NULL with a length */
	CHECK_RC(sp_frame_encode(&f, 0, &enc, &len), SP_EINVAL);
	/* marking an array empty keeps the items it already has */
	sp_frame_init(&f, SP_MSG_APPEND, 1);
	CHECK_RC(sp_frame_add_item(&f, SP_F_RECORDS, "x", 1, 0), 0);
	sp_frame_set_array_empty(&f, SP_F_RECORDS);
	CHECK(f.f[SP_F_RECORDS].len == 1);
	check_roundtrip(&f);
	CHECK_RC(sp_frame_encode(&f, SIZE_MAX, &enc, &len), SP_EINVAL);

	/* ERROR: id 0 allowed; a long message is cut at a character */
	msg[0] = 'a';
	for (i = 0; i < 150; i++)
		memcpy(msg + 1 + 2 * i, "\xc3\xa9", 2);
	msg[301] = 0;
	CHECK_RC(sp_frame_error(0, SP_PERR_RATE, msg, 4, &enc, &len), 0);
	CHECK(dec(enc + 4, len, &g, &why, 0) == 0);
	CHECK(g.type == SP_MSG_ERROR && g.id == 0 &&
	    g.f[SP_F_CODE].u == SP_PERR_RATE && g.f[SP_F_MESSAGE].len == 255);
	free(enc);
	CHECK_RC(sp_frame_error(5, SP_PERR_RATE, NULL, 0, &enc, &len), 0);
	free(enc);
	CHECK_RC(sp_frame_error(5, -1, "x", 0, &enc, &len), SP_EINVAL);
	CHECK_RC(sp_frame_error(5, 70000, "x", 0, &enc, &len), SP_EINVAL);
}

static void
t_names(void)
{
	int i, j;

	for (i = 1; i < SP_PERR_MAX; i++) {
		CHECK(sp_proto_strerror(i) != NULL);
		for (j = 1; j < i; j++)
			CHECK(strcmp(sp_proto_strerror(i),
			    sp_proto_strerror(j)) != 0);
	}
	CHECK(strcmp(sp_proto_strerror(0), "unknown protocol error") == 0);
	CHECK(strcmp(sp_proto_strerror(SP_PERR_MAX),
	    "unknown protocol error") == 0);
	CHECK(strcmp(sp_proto_strerror(SP_PERR_MALFORMED), "malformed frame")
	    == 0);
	CHECK(strcmp(sp_msg_name(SP_MSG_LOGIN), "LOGIN") == 0);
	CHECK(strcmp(sp_msg_name(UINT32_MAX), "(unknown)") == 0);
}

/* ---- docs/protocol.md ---------------------------------------------------- */

/* Splits a table row into trimmed cells without backticks.  Returns the
 * number of cells. */
static int
cells(const char *line, char out[][160], int max)
{
	const char *p = line + 1, *e;
	int n = 0;
	size_t i, k;

	while (n < max && (e = strchr(p, '|')) != NULL) {
		for (i = 0, k = 0; p + i < e && k < 159; i++)
			if (p[i] != '`')
				out[n][k++] = p[i];
		while (k > 0 && out[n][k - 1] == ' ')
			k--;
		out[n][k] = 0;
		memmove(out[n], out[n] + strspn(out[n], " "),
		    strlen(out[n] + strspn(out[n], " ")) + 1);
		n++;
		p = e + 1;
	}
	return n;
}

/* The data rows of the table after marker, as lines; returns the count. */
static int
table_rows(const char *doc, const char *marker, const char *rows[], int max)
{
	const char *p = strstr(doc, marker);
	int n = 0, seen = 0;

	if (p == NULL)
		return -1;
	p = strchr(p, '\n');
	while (p != NULL && *++p != 0) {
		if (*p != '|') {
			if (seen)
				break;
			p = strchr(p, '\n');
			continue;
		}
		if (seen++ >= 2 && n < max)	/* skip header, separator */
			rows[n++] = p;
		p = strchr(p, '\n');
	}
	return n;
}

static uint64_t
doc_num(const char *s)
{
	if (strcmp(s, "2^64-1") == 0)
		return ANY;
	return strtoull(s, NULL, 10);
}

static void
t_doc(void)
{
	char c[8][160], line[1024];
	const char *rows[64];
	unsigned char *doc;
	size_t len, i;
	int n, r;

	doc = unit_read_file("docs/protocol.md", &len);
	CHECK(doc != NULL);
	if (doc == NULL)
		return;
	n = table_rows((const char *)doc, "<!-- table:fields -->", rows, 64);
	for (i = 0, r = 0; i < SP_F_MAX; i++)
		r += tfields[i].name != NULL;
	CHECK(n == r);
	for (r = 0; r < n; r++) {
		const struct tfield *t;
		unsigned key;

		snprintf(line, sizeof(line), "%.*s",
		    (int)strcspn(rows[r], "\n"), rows[r]);
		if (cells(line, c, 8) < 6) {
			CHECK(0);
			continue;
		}
		/* Rows name their key: assigned keys need not be dense. */
		key = (unsigned)atoi(c[0]);
		t = key < SP_F_MAX ? &tfields[key] : NULL;
		if (t == NULL || t->name == NULL || key != t->key ||
		    strcmp(c[1], t->name) != 0 || strcmp(c[2], t->type) != 0 ||
		    (key > SP_F_ID && kind(t->key) != 'B' &&
		    (doc_num(c[3]) != t->min || doc_num(c[4]) != t->max))) {
			fprintf(stderr, "# doc field row differs: %s\n", line);
			unit_case_failed = 1;
		}
	}
	n = table_rows((const char *)doc, "<!-- table:messages -->", rows, 64);
	CHECK(n == (int)NMSGS);
	for (r = 0; r < n && r < (int)NMSGS; r++) {
		const struct tmsg *m;

		snprintf(line, sizeof(line), "%.*s",
		    (int)strcspn(rows[r], "\n"), rows[r]);
		if (cells(line, c, 8) < 7) {
			CHECK(0);
			continue;
		}
		m = tmsg_of((uint32_t)atoi(c[0]));
		if (m == NULL || strcmp(c[1], m->name) != 0 ||
		    strcmp(c[2], m->dir) != 0 || strcmp(c[3], m->id) != 0 ||
		    names_mask(c[4]) != req_mask(m) ||
		    names_mask(c[5]) != names_mask(m->opt) ||
		    strcmp(c[6], m->reply) != 0) {
			fprintf(stderr, "# doc message row differs: %s\n",
			    line);
			unit_case_failed = 1;
		}
	}
	/* every error code, by number and name */
	n = table_rows((const char *)doc, "<!-- table:errors -->", rows, 64);
	CHECK(n == SP_PERR_MAX - 1);
	for (i = 0; (int)i < n; i++) {
		snprintf(line, sizeof(line), "%.*s",
		    (int)strcspn(rows[i], "\n"), rows[i]);
		CHECK(cells(line, c, 8) >= 3 && atoi(c[0]) == (int)i + 1);
	}
	free(doc);
}

/* ---- seed corpus -------------------------------------------------------- */

static int
write_file(const char *dir, const char *name, const uint8_t *b, size_t n)
{
	char path[4096];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fp = fopen(path, "wb")) == NULL)
		return errno;
	if (fwrite(b, 1, n, fp) != n) {
		fclose(fp);
		return EIO;
	}
	return fclose(fp) == 0 ? 0 : errno;
}

/* One frame of every message type with every field it may carry, plus the
 * pinned APPEND in a loose (non-canonical) encoding. */
static int
write_corpus(const char *dir)
{
	struct sp_frame f;
	uint8_t *enc, b[128];
	char name[64];
	size_t i, len, j;
	unsigned k;
	int rc;

	for (i = 0; i < NMSGS; i++) {
		sp_frame_init(&f, tmsgs[i].type, msg_id(&tmsgs[i]));
		for (k = 2; k < SP_F_MAX; k++)
			if (allowed_mask(&tmsgs[i]) & BIT(k))
				set_valid(&f, k, 5);
		if ((rc = sp_frame_encode(&f, 0, &enc, &len)) != 0)
			return rc;
		for (j = 0; tmsgs[i].name[j] && j < sizeof(name) - 1; j++) {
			char ch = tmsgs[i].name[j];

			name[j] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
		}
		name[j] = 0;
		rc = write_file(dir, name, enc, len);
		free(enc);
		if (rc != 0)
			return rc;
	}
	len = unhex("b8 04 10 98 02 58 03 61 62 63 59 00 02 64 65 1b 00 00 00 "
	    "00 00 00 00 01 1a 00 00 00 07 0f 18 05 00 19 00 1e", b, sizeof(b));
	return write_file(dir, "append-loose", b, len);
}

int
main(int argc, char **argv)
{
	size_t i;
	int rc;

	if ((pat = malloc(SP_FRAME_MAX + 64)) == NULL)
		return 1;
	for (i = 0; i < SP_FRAME_MAX + 64; i++)
		pat[i] = (uint8_t)(i * 31 + 7);
	if (argc == 3 && strcmp(argv[1], "--corpus") == 0) {
		if ((rc = write_corpus(argv[2])) != 0)
			fprintf(stderr, "test-frame: %s\n", sp_strerror(rc));
		return rc != 0;
	}
	RUN(t_roundtrip);
	RUN(t_message_table);
	RUN(t_field_limits);
	RUN(t_wrong_types);
	RUN(t_malformed);
	RUN(t_rejections);
	RUN(t_array_items);
	RUN(t_frame_size);
	RUN(t_wire);
	RUN(t_truncation);
	RUN(t_bit_flips);
	RUN(t_encoder_misuse);
	RUN(t_names);
	RUN(t_doc);
	free(held[0]);
	free(held[1]);
	free(pat);
	return unit_done();
}
