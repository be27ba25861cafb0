/*
 * Sync protocol frame codec (proto/frame.h, docs/protocol.md).
 *
 * Everything the codec knows about the protocol is in the two tables below:
 * fields[] gives each key its name, CBOR type and limits; msgs[] gives each
 * message type its name, direction, reply and the fields it must and may
 * carry.  The decoder, the encoder, sp_msg_name() and the reason strings all
 * come from them, and test-frame.c checks docs/protocol.md against the
 * codec, so the specification cannot drift from the code.
 *
 * Decoding uses a small hand-written reader of exactly the CBOR subset a
 * frame may contain, not libcbor's cbor_stream_decode():
 *  - the subset is six item heads (uint, bytes, text, array, map, true and
 *    false); reading them takes one 50-line function that can be audited at
 *    a glance, where the callback decoder needs some 25 callbacks driving an
 *    inverted state machine to express the same rules;
 *  - a refusal must name the field and say why; the streaming decoder reports
 *    a bare CBOR_DECODER_ERROR with no position or cause;
 *  - it converts 64-bit string and array lengths to size_t with a cast, so on
 *    a 32-bit target a huge length wraps into a small one and a malformed
 *    frame parses as a different, valid one.  Here every length stays a
 *    uint64_t until it has been compared with the bytes that remain.
 * Both approaches are zero-copy and allocation-free.  Encoding does use
 * libcbor (cbor_encode_*), whose writers always choose the shortest head,
 * which is what makes our encoding deterministic.
 */
#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>

#include "crypto/text.h"
#include "proto/frame.h"

#define BIT(k) (UINT64_C(1) << (k))
#define ANY UINT64_MAX

/* A setter was misused (unknown key, wrong type, NULL value): the frame
 * carries this bit, which no field can have, and refuses to encode. */
#define POISON BIT(63)

/* CBOR item kinds of the subset; the first four are also field types. */
enum { T_UINT, T_BYTES, T_TEXT, T_BOOL, T_ARRAY, T_MAP };

/* Reasons a field can be refused; each field has its own static string. */
enum {
	W_TYPE, W_SHORT, W_LONG, W_RANGE, W_UTF8, W_ITEM_TYPE, W_ITEMS, W_DUP,
	W_NOT_ALLOWED, W_MISSING, W_MAX
};

struct field_def {
	const char *name;
	uint8_t type;		/* T_UINT, T_BYTES, T_TEXT or T_BOOL */
	uint8_t array;		/* 1: a definite array of items of that type */
	uint64_t min, max;	/* uint: the value; bytes, text: the length;
				 * arrays: of each item */
	const char *why[W_MAX];
};

/* String literal concatenation gives every field its own static reasons. */
#define REASONS(n, p) {							\
	"field '" n "' has the wrong CBOR type", p " too short",	\
	p " too long", p " out of range", p " is not valid UTF-8",	\
	"field '" n "' item has the wrong CBOR type",			\
	"field '" n "' has too many items", "field '" n "' repeated",	\
	"field '" n "' not allowed in this message",			\
	"field '" n "' missing" }
#define F(k, n, t, lo, hi) \
	[k] = { n, t, 0, lo, hi, REASONS(n, "field '" n "'") }
#define A(k, n, t, lo, hi) \
	[k] = { n, t, 1, lo, hi, REASONS(n, "field '" n "' item") }

/*
 * The field table.  A key means the same thing, with the same CBOR type, in
 * every message.  Limits on lengths are in bytes (text: UTF-8 bytes, not
 * characters).  Type and id are checked by the message table instead.
 */
static const struct field_def fields[SP_F_MAX] = {
	F(SP_F_TYPE, "type", T_UINT, 0, ANY),
	F(SP_F_ID, "id", T_UINT, 0, ANY),
	F(SP_F_VERSION, "version", T_UINT, 1, 65535),
	F(SP_F_CODE, "code", T_UINT, 1, 65535),
	F(SP_F_MESSAGE, "message", T_TEXT, 0, 256),
	F(SP_F_ADDRESS, "address", T_TEXT, 3, 254),
	F(SP_F_TOKEN, "token", T_BYTES, 32, 32),
	F(SP_F_AUTH_PK, "auth_pk", T_BYTES, 32, 32),
	F(SP_F_KDF_PARAMS, "kdf_params", T_BYTES, 25, 25),
	F(SP_F_VAULT, "vault", T_BYTES, 1, 70000),
	F(SP_F_PUBKEYS, "pubkeys", T_BYTES, 1, 16384),
	F(SP_F_CHALLENGE, "challenge", T_BYTES, 32, 32),
	F(SP_F_SIGNATURE, "signature", T_BYTES, 64, 64),
	F(SP_F_DEVICE, "device", T_TEXT, 0, 63),
	F(SP_F_SEQ, "seq", T_UINT, 0, ANY),
	F(SP_F_EXPECTED, "expected", T_UINT, 0, ANY),
	A(SP_F_RECORDS, "records", T_BYTES, 1, 1048576),
	F(SP_F_LAST, "last", T_UINT, 0, ANY),
	F(SP_F_BLOB_ID, "blob_id", T_BYTES, 32, 32),
	F(SP_F_SIZE, "size", T_UINT, 0, ANY),
	F(SP_F_INDEX, "index", T_UINT, 0, ANY),
	F(SP_F_DATA, "data", T_BYTES, 0, 65536),
	F(SP_F_HAVE, "have", T_UINT, 0, ANY),
	A(SP_F_SESSION_IDS, "session_ids", T_BYTES, 16, 16),
	A(SP_F_DEVICES, "devices", T_TEXT, 0, 63),
	A(SP_F_CREATED, "created", T_UINT, 0, ANY),
	A(SP_F_LAST_SEEN, "last_seen", T_UINT, 0, ANY),
	F(SP_F_INVITE, "invite", T_TEXT, 1, 64),
	F(SP_F_MAX_RECORDS, "max_records", T_UINT, 0, ANY),
	F(SP_F_MAX_BYTES, "max_bytes", T_UINT, 0, ANY),
	F(SP_F_RECIPIENT, "recipient", T_TEXT, 3, 254),
	F(SP_F_SESSION_ID, "session_id", T_BYTES, 16, 16),
	F(SP_F_TIME, "time", T_UINT, 0, ANY),
	F(SP_F_MORE, "more", T_BOOL, 0, 1),
	F(SP_F_MAIL_FROM, "mail_from", T_TEXT, 3, 254),
	A(SP_F_RECIPIENTS, "recipients", T_TEXT, 3, 254),
	F(SP_F_GATEWAY_PK, "gateway_pk", T_BYTES, 32, 32),
	F(SP_F_FACTOR, "factor", T_UINT, 1, 3),
	F(SP_F_FACTOR_ID, "factor_id", T_BYTES, 1, 255),
	A(SP_F_FACTORS, "factors", T_UINT, 0, ANY),
	A(SP_F_FACTOR_IDS, "factor_ids", T_BYTES, 1, 255),
	F(SP_F_AUTH_DATA, "auth_data", T_BYTES, 37, 1024),
	F(SP_F_CLIENT_DATA, "client_data", T_BYTES, 1, 1024),
	F(SP_F_ASSERTION, "assertion", T_BYTES, 8, 80),
	F(SP_F_OTP, "otp", T_TEXT, 6, 32),
	F(SP_F_FACTOR_KEY, "factor_key", T_BYTES, 16, 256),
	A(SP_F_CODES, "codes", T_TEXT, 1, 32),
	F(SP_F_RECOVERY_PK, "recovery_pk", T_BYTES, 32, 32),
};

enum { C2S = 1, S2C = 2 };

/* Which request ids a message may carry. */
enum {
	ID_REQ,		/* not 0: a request, or the reply to one */
	ID_ZERO,	/* exactly 0: a push */
	ID_ANY		/* ERROR: 0 when the failed frame's id is unknown */
};

struct msg_def {
	const char *name;
	uint8_t dir;		/* C2S or S2C */
	uint8_t ids;		/* ID_* */
	uint8_t reply;		/* requests: the type of the success reply */
	uint64_t req, opt;	/* fields it must and may carry (besides type
				 * and id, which every frame carries) */
};

/* &"SP_MSG_APPEND"[7] is "APPEND": names cannot differ from the enum. */
#define M(t, d, ids, rep, r, o) [t] = { &(#t)[7], d, ids, rep, r, o }

/*
 * The message table.  Direction and reply are not used by the codec (it
 * does not know which side it runs on) but belong to the protocol's one
 * description; docs/protocol.md's message table mirrors this one.
 */
static const struct msg_def msgs[SP_MSG_TYPE_MAX + 1] = {
	M(SP_MSG_ERROR, S2C, ID_ANY, 0, BIT(SP_F_CODE) | BIT(SP_F_MESSAGE), 0),
	M(SP_MSG_OK, S2C, ID_REQ, 0, 0, 0),
	M(SP_MSG_HELLO, C2S, ID_REQ, SP_MSG_WELCOME, BIT(SP_F_VERSION),
	    BIT(SP_F_DEVICE)),
	M(SP_MSG_WELCOME, S2C, ID_REQ, 0, BIT(SP_F_VERSION) | BIT(SP_F_TIME) |
	    BIT(SP_F_SIZE) | BIT(SP_F_MAX_RECORDS), 0),
	M(SP_MSG_REGISTER, C2S, ID_REQ, SP_MSG_OK, BIT(SP_F_ADDRESS) |
	    BIT(SP_F_AUTH_PK) | BIT(SP_F_KDF_PARAMS) | BIT(SP_F_VAULT) |
	    BIT(SP_F_PUBKEYS), BIT(SP_F_INVITE) | BIT(SP_F_RECOVERY_PK)),
	M(SP_MSG_PRELOGIN, C2S, ID_REQ, SP_MSG_PRELOGIN_OK, BIT(SP_F_ADDRESS),
	    0),
	M(SP_MSG_PRELOGIN_OK, S2C, ID_REQ, 0, BIT(SP_F_KDF_PARAMS) |
	    BIT(SP_F_CHALLENGE), 0),
	M(SP_MSG_LOGIN, C2S, ID_REQ, SP_MSG_LOGIN_OK, BIT(SP_F_ADDRESS) |
	    BIT(SP_F_CHALLENGE) | BIT(SP_F_SIGNATURE), BIT(SP_F_DEVICE)),
	M(SP_MSG_LOGIN_OK, S2C, ID_REQ, 0, BIT(SP_F_TOKEN) |
	    BIT(SP_F_SESSION_ID) | BIT(SP_F_VAULT) | BIT(SP_F_LAST), 0),
	M(SP_MSG_RESUME, C2S, ID_REQ, SP_MSG_RESUME_OK, BIT(SP_F_TOKEN), 0),
	M(SP_MSG_RESUME_OK, S2C, ID_REQ, 0, BIT(SP_F_ADDRESS) |
	    BIT(SP_F_SESSION_ID) | BIT(SP_F_LAST), 0),
	M(SP_MSG_LOGOUT, C2S, ID_REQ, SP_MSG_OK, 0, 0),
	M(SP_MSG_SESSIONS, C2S, ID_REQ, SP_MSG_SESSIONS_OK, 0, 0),
	/* Parallel arrays, one item per session in each; the codec does not
	 * compare their lengths, the receiver must. */
	M(SP_MSG_SESSIONS_OK, S2C, ID_REQ, 0, BIT(SP_F_SESSION_IDS) |
	    BIT(SP_F_DEVICES) | BIT(SP_F_CREATED) | BIT(SP_F_LAST_SEEN), 0),
	M(SP_MSG_REVOKE, C2S, ID_REQ, SP_MSG_OK, BIT(SP_F_SESSION_ID), 0),
	M(SP_MSG_VAULT_PUT, C2S, ID_REQ, SP_MSG_OK, BIT(SP_F_VAULT) |
	    BIT(SP_F_AUTH_PK) | BIT(SP_F_KDF_PARAMS), 0),
	M(SP_MSG_APPEND, C2S, ID_REQ, SP_MSG_APPENDED, BIT(SP_F_RECORDS),
	    BIT(SP_F_EXPECTED)),
	M(SP_MSG_APPENDED, S2C, ID_REQ, 0, BIT(SP_F_SEQ) | BIT(SP_F_LAST), 0),
	M(SP_MSG_READ, C2S, ID_REQ, SP_MSG_RECORDS, BIT(SP_F_SEQ),
	    BIT(SP_F_MAX_RECORDS) | BIT(SP_F_MAX_BYTES)),
	M(SP_MSG_RECORDS, S2C, ID_REQ, 0, BIT(SP_F_SEQ) | BIT(SP_F_RECORDS) |
	    BIT(SP_F_LAST) | BIT(SP_F_MORE), 0),
	M(SP_MSG_SUBSCRIBE, C2S, ID_REQ, SP_MSG_SUBSCRIBED, BIT(SP_F_SEQ), 0),
	M(SP_MSG_SUBSCRIBED, S2C, ID_REQ, 0, BIT(SP_F_LAST), 0),
	M(SP_MSG_PUSH, S2C, ID_ZERO, 0, BIT(SP_F_SEQ) | BIT(SP_F_RECORDS) |
	    BIT(SP_F_LAST), 0),
	M(SP_MSG_DELIVER, C2S, ID_REQ, SP_MSG_OK, BIT(SP_F_RECIPIENT) |
	    BIT(SP_F_RECORDS), 0),
	M(SP_MSG_BLOB_BEGIN, C2S, ID_REQ, SP_MSG_BLOB_BEGUN, BIT(SP_F_BLOB_ID) |
	    BIT(SP_F_SIZE), 0),
	M(SP_MSG_BLOB_BEGUN, S2C, ID_REQ, 0, BIT(SP_F_HAVE), 0),
	M(SP_MSG_BLOB_CHUNK, C2S, ID_REQ, SP_MSG_OK, BIT(SP_F_BLOB_ID) |
	    BIT(SP_F_INDEX) | BIT(SP_F_DATA), 0),
	M(SP_MSG_BLOB_FINISH, C2S, ID_REQ, SP_MSG_OK, BIT(SP_F_BLOB_ID), 0),
	M(SP_MSG_BLOB_GET, C2S, ID_REQ, SP_MSG_BLOB_DATA, BIT(SP_F_BLOB_ID) |
	    BIT(SP_F_INDEX), 0),
	M(SP_MSG_BLOB_DATA, S2C, ID_REQ, 0, BIT(SP_F_DATA) | BIT(SP_F_SIZE), 0),
	M(SP_MSG_BLOB_DELETE, C2S, ID_REQ, SP_MSG_OK, BIT(SP_F_BLOB_ID), 0),
	M(SP_MSG_COMPACT, C2S, ID_REQ, SP_MSG_OK, BIT(SP_F_SEQ), 0),
	M(SP_MSG_RECOVER, C2S, ID_REQ, SP_MSG_LOGIN_OK, BIT(SP_F_ADDRESS) |
	    BIT(SP_F_CHALLENGE) | BIT(SP_F_SIGNATURE), BIT(SP_F_DEVICE)),
	M(SP_MSG_KEYS_GET, C2S, ID_REQ, SP_MSG_KEYS, BIT(SP_F_ADDRESS), 0),
	M(SP_MSG_KEYS, S2C, ID_REQ, 0, BIT(SP_F_ADDRESS) | BIT(SP_F_PUBKEYS),
	    0),
	M(SP_MSG_GATEWAY_KEY, C2S, ID_REQ, SP_MSG_GATEWAY_KEY_OK, 0, 0),
	M(SP_MSG_GATEWAY_KEY_OK, S2C, ID_REQ, 0, BIT(SP_F_GATEWAY_PK), 0),
	M(SP_MSG_SUBMIT, C2S, ID_REQ, SP_MSG_OK, BIT(SP_F_BLOB_ID) |
	    BIT(SP_F_MAIL_FROM) | BIT(SP_F_RECIPIENTS), 0),	/* LOGIN's other answer: the password was right, a second factor is
	 * still needed (docs/protocol.md 6.5). */
	M(SP_MSG_SECOND_FACTOR, S2C, ID_REQ, 0, BIT(SP_F_CHALLENGE) |
	    BIT(SP_F_FACTORS), BIT(SP_F_FACTOR_IDS)),
	M(SP_MSG_LOGIN_2FA, C2S, ID_REQ, SP_MSG_LOGIN_OK, BIT(SP_F_CHALLENGE) |
	    BIT(SP_F_FACTOR), BIT(SP_F_FACTOR_ID) | BIT(SP_F_AUTH_DATA) |
	    BIT(SP_F_CLIENT_DATA) | BIT(SP_F_ASSERTION) | BIT(SP_F_OTP)),
	M(SP_MSG_FACTORS, C2S, ID_REQ, SP_MSG_FACTORS_OK, 0, 0),
	/* Parallel arrays, as SESSIONS_OK. */
	M(SP_MSG_FACTORS_OK, S2C, ID_REQ, 0, BIT(SP_F_FACTORS) |
	    BIT(SP_F_FACTOR_IDS) | BIT(SP_F_CREATED), 0),
	M(SP_MSG_FACTOR_ADD, C2S, ID_REQ, SP_MSG_OK, BIT(SP_F_FACTOR) |
	    BIT(SP_F_FACTOR_KEY), BIT(SP_F_FACTOR_ID) | BIT(SP_F_OTP)),
	M(SP_MSG_FACTOR_REMOVE, C2S, ID_REQ, SP_MSG_OK, BIT(SP_F_FACTOR),
	    BIT(SP_F_FACTOR_ID)),
	M(SP_MSG_RECOVERY_NEW, C2S, ID_REQ, SP_MSG_RECOVERY_CODES, 0, 0),
	M(SP_MSG_RECOVERY_CODES, S2C, ID_REQ, 0, BIT(SP_F_CODES), 0),
};

static const char *const perr_names[SP_PERR_MAX] = {
	[SP_PERR_MALFORMED] = "malformed frame",
	[SP_PERR_VERSION] = "unsupported protocol version",
	[SP_PERR_UNKNOWN] = "unknown message type",
	[SP_PERR_TOO_LARGE] = "frame or field too large",
	[SP_PERR_SEQUENCE] = "message not allowed in this state",
	[SP_PERR_AUTH] = "not logged in, or session revoked",
	[SP_PERR_DENIED] = "bad credentials",
	[SP_PERR_RATE] = "rate limited",
	[SP_PERR_EXISTS] = "already exists",
	[SP_PERR_NOT_FOUND] = "not found",
	[SP_PERR_CONFLICT] = "conflict: log has moved on",
	[SP_PERR_QUOTA] = "over quota",
	[SP_PERR_FULL] = "server storage full",
	[SP_PERR_INVITE] = "registration needs a valid invite",
	[SP_PERR_DOMAIN] = "address not in a domain served here",
	[SP_PERR_INVALID] = "invalid field value",
	[SP_PERR_INTERNAL] = "internal server error",
};

static const struct msg_def *
msg_get(uint32_t type)
{
	if (type > SP_MSG_TYPE_MAX || msgs[type].name == NULL)
		return NULL;
	return &msgs[type];
}

const char *
sp_msg_name(uint32_t type)
{
	const struct msg_def *m = msg_get(type);

	return m ? m->name : "(unknown)";
}

const char *
sp_proto_strerror(int code)
{
	if (code <= 0 || code >= SP_PERR_MAX)
		return "unknown protocol error";
	return perr_names[code];
}

/*
 * Checks one value (or one array item) of field d against its limits.
 * Returns 0, or SP_PERR_INVALID / SP_PERR_TOO_LARGE with *why_r set.  Too
 * long is TOO_LARGE, everything else INVALID.
 */
static int
value_check(const struct field_def *d, const uint8_t *ptr, size_t len,
    uint64_t v, const char **why_r)
{
	switch (d->type) {
	case T_UINT:
	case T_BOOL:
		if (v < d->min || v > d->max) {
			*why_r = d->why[W_RANGE];
			return SP_PERR_INVALID;
		}
		return 0;
	default:
		if (len > d->max) {
			*why_r = d->why[W_LONG];
			return SP_PERR_TOO_LARGE;
		}
		if (len < d->min) {
			*why_r = d->why[W_SHORT];
			return SP_PERR_INVALID;
		}
		if (d->type == T_TEXT && !sp_utf8_valid(ptr, len)) {
			*why_r = d->why[W_UTF8];
			return SP_PERR_INVALID;
		}
		return 0;
	}
}

/*
 * Checks a frame's type, id and set of fields against the message table.
 * Shared by the decoder and the encoder.  Returns 0, SP_PERR_UNKNOWN or
 * SP_PERR_INVALID with *why_r set.
 */
static int
message_check(uint32_t type, uint64_t id, uint64_t present,
    const char **why_r)
{
	const struct msg_def *m = msg_get(type);
	uint64_t extra, missing;
	unsigned k;

	if (m == NULL) {
		*why_r = "unknown message type";
		return SP_PERR_UNKNOWN;
	}
	if (m->ids == ID_ZERO && id != 0) {
		*why_r = "field 'id' must be 0 in a push";
		return SP_PERR_INVALID;
	}
	if (m->ids == ID_REQ && id == 0) {
		*why_r = "field 'id' 0 is reserved for pushes and errors";
		return SP_PERR_INVALID;
	}
	extra = present & ~(m->req | m->opt | BIT(SP_F_TYPE) | BIT(SP_F_ID));
	missing = m->req & ~present;
	for (k = 0; k < SP_F_MAX; k++) {
		if (extra & BIT(k)) {
			*why_r = fields[k].why[W_NOT_ALLOWED];
			return SP_PERR_INVALID;
		}
	}
	for (k = 0; k < SP_F_MAX; k++) {
		if (missing & BIT(k)) {
			*why_r = fields[k].why[W_MISSING];
			return SP_PERR_INVALID;
		}
	}
	return 0;
}

/* ---- decoding ----------------------------------------------------------- */

struct reader {
	const uint8_t *p, *end;
	int code;		/* first field-level problem (sticky), or 0 */
	const char *why;	/* its reason; or the structural one */
};

struct item {
	int kind;		/* T_* */
	uint64_t v;		/* uint, bool; element count of arrays, pair
				 * count of maps; length of bytes and text */
	const uint8_t *ptr;	/* bytes and text: the payload */
};

/* A structural problem: the frame is malformed and parsing stops. */
static int
stop(struct reader *r, const char *why)
{
	r->why = why;
	return -1;
}

/*
 * A field-level problem: remembered if it is the first, and parsing goes
 * on, so that a later structural problem still wins (the frame as a whole
 * is then malformed) and the frame's type and id are still found, wherever
 * they are in the map, for the caller's error reply.
 */
static void
note(struct reader *r, int code, const char *why)
{
	if (r->code == 0) {
		r->code = code;
		r->why = why;
	}
}

static int
read_simple(struct reader *r, unsigned ai, struct item *it)
{
	switch (ai) {
	case 20:
	case 21:
		it->kind = T_BOOL;
		it->v = ai == 21;
		return 0;
	case 22:
	case 23:
		return stop(r, "null or undefined value");
	case 25:
	case 26:
	case 27:
		return stop(r, "floating-point value");
	case 31:
		return stop(r, "break outside an indefinite-length item");
	default:
		return stop(r, "simple value other than true or false");
	}
}

/*
 * Reads one item head and, for bytes and text, steps over the payload.
 * Returns 0, or -1 for anything outside the subset or running past the end
 * (r->why set).  Every length and count is compared, as a uint64_t, with
 * the bytes that remain before it is used, so nothing past r->end is read
 * and a claimed count can never make a caller loop longer than the input.
 */
static int
read_item(struct reader *r, struct item *it)
{
	size_t left = (size_t)(r->end - r->p);
	unsigned major, ai, n, i;
	uint64_t v;

	it->ptr = NULL;
	if (left == 0)
		return stop(r, "truncated frame");
	major = *r->p >> 5;
	ai = *r->p & 0x1f;
	r->p++, left--;
	if (major == 7)
		return read_simple(r, ai, it);
	if (major == 1)
		return stop(r, "negative integer");
	if (major == 6)
		return stop(r, "tag");
	if (ai == 31)
		return stop(r, "indefinite length");
	if (ai >= 28)
		return stop(r, "reserved additional information");
	v = ai;
	if (ai >= 24) {
		n = 1u << (ai - 24);
		if (left < n)
			return stop(r, "truncated frame");
		for (v = 0, i = 0; i < n; i++)
			v = v << 8 | *r->p++;
		left -= n;
	}
	it->v = v;
	switch (major) {
	case 0:
		it->kind = T_UINT;
		return 0;
	case 2:
	case 3:
		if (v > left)
			return stop(r, "truncated frame");
		it->kind = major == 2 ? T_BYTES : T_TEXT;
		it->ptr = r->p;
		r->p += (size_t)v;
		return 0;
	case 4:
		/* Every element takes at least one byte. */
		if (v > left)
			return stop(r, "truncated frame");
		it->kind = T_ARRAY;
		return 0;
	default:
		if (v > left / 2)
			return stop(r, "truncated frame");
		it->kind = T_MAP;
		return 0;
	}
}

/* Reads an array element: a scalar, never a container. */
static int
read_element(struct reader *r, struct item *it)
{
	if (read_item(r, it) != 0)
		return -1;
	if (it->kind == T_ARRAY)
		return stop(r, "nested array");
	if (it->kind == T_MAP)
		return stop(r, "nested map");
	return 0;
}

/* Steps over n array elements, checking only their structure. */
static int
skip_elements(struct reader *r, uint64_t n)
{
	struct item it;

	while (n-- > 0)
		if (read_element(r, &it) != 0)
			return -1;
	return 0;
}

static int
read_array(struct reader *r, struct sp_frame *f, unsigned key,
    const struct item *arr)
{
	const struct field_def *d = &fields[key];
	struct sp_frame_item *fi = &f->f[key];
	const char *why;
	struct item it;
	uint64_t i;
	int code, keep = 1;

	if (arr->kind != T_ARRAY) {
		note(r, SP_PERR_INVALID, d->why[W_TYPE]);
		return 0;
	}
	if (arr->v > SP_FRAME_ARRAY_MAX - f->nitems) {
		note(r, SP_PERR_TOO_LARGE, d->why[W_ITEMS]);
		keep = 0;
	}
	fi->u = f->nitems;
	fi->len = 0;
	for (i = 0; i < arr->v; i++) {
		if (read_element(r, &it) != 0)
			return -1;
		if (it.kind != d->type) {
			note(r, SP_PERR_INVALID, d->why[W_ITEM_TYPE]);
			continue;
		}
		if ((code = value_check(d, it.ptr, it.v, it.v, &why)) != 0)
			note(r, code, why);
		if (keep) {
			struct sp_frame_item *x = &f->items[f->nitems++];

			x->key = key;
			if (it.kind == T_UINT) {
				x->u = it.v;
			} else {
				x->ptr = it.ptr;
				x->len = (size_t)it.v;
			}
			fi->len++;
		}
	}
	return 0;
}

/* Reads the value of known field key into f. */
static int
read_field(struct reader *r, struct sp_frame *f, unsigned key)
{
	const struct field_def *d = &fields[key];
	struct sp_frame_item *fi = &f->f[key];
	const char *why;
	struct item it;
	int code;

	if (read_item(r, &it) != 0)
		return -1;
	if (it.kind == T_MAP)
		return stop(r, "nested map");
	/* Without a readable type and id no one could answer the frame. */
	if (key <= SP_F_ID && it.kind != T_UINT)
		return stop(r, d->why[W_TYPE]);
	if (d->array)
		return read_array(r, f, key, &it);
	if (it.kind != d->type) {
		note(r, SP_PERR_INVALID, d->why[W_TYPE]);
		return it.kind == T_ARRAY ? skip_elements(r, it.v) : 0;
	}
	if ((code = value_check(d, it.ptr, it.v, it.v, &why)) != 0)
		note(r, code, why);
	if (it.kind == T_BYTES || it.kind == T_TEXT) {
		fi->ptr = it.ptr;
		fi->len = (size_t)it.v;
	} else {
		fi->u = it.v;
	}
	if (key == SP_F_TYPE)
		f->type = it.v > UINT32_MAX ? UINT32_MAX : (uint32_t)it.v;
	else if (key == SP_F_ID)
		f->id = it.v;
	return 0;
}

/* Reads the value of a key we do not know, to find the end of the frame. */
static int
skip_value(struct reader *r)
{
	struct item it;

	if (read_item(r, &it) != 0)
		return -1;
	if (it.kind == T_MAP)
		return stop(r, "nested map");
	return it.kind == T_ARRAY ? skip_elements(r, it.v) : 0;
}

/*
 * Problems are reported in this order: frame over SP_FRAME_MAX; anything
 * structural (MALFORMED), wherever it is; the first field-level problem in
 * input order (INVALID or TOO_LARGE); then an unknown type (UNKNOWN); then
 * the message table's rules (INVALID).  Except after MALFORMED, f->type and
 * f->id are those of the frame so the caller can address its answer.
 */
int
sp_frame_decode(const uint8_t *buf, size_t len, struct sp_frame *f,
    const char **error_r)
{
	struct reader r = { buf, buf, 0, NULL };
	struct item map, key;
	uint64_t i;
	int code;

	sp_frame_init(f, 0, 0);
	f->present = 0;
	if (len > SP_FRAME_MAX) {
		*error_r = "frame too large";
		return SP_PERR_TOO_LARGE;
	}
	/* Checked first: NULL + 0 is undefined behaviour. */
	if (len == 0) {
		*error_r = "empty frame";
		return SP_PERR_MALFORMED;
	}
	r.end = buf + len;
	if (read_item(&r, &map) != 0)
		goto malformed;
	if (map.kind != T_MAP) {
		r.why = "frame is not a map";
		goto malformed;
	}
	for (i = 0; i < map.v; i++) {
		if (read_item(&r, &key) != 0)
			goto malformed;
		if (key.kind != T_UINT) {
			r.why = "key is not an unsigned integer";
			goto malformed;
		}
		/* Keys not yet assigned (gaps in the table) are unknown
		 * too. */
		if (key.v >= SP_F_MAX || fields[key.v].name == NULL) {
			note(&r, SP_PERR_INVALID, "unknown field");
			if (skip_value(&r) != 0)
				goto malformed;
			continue;
		}
		if (sp_frame_has(f, (unsigned)key.v)) {
			r.why = fields[key.v].why[W_DUP];
			goto malformed;
		}
		f->present |= BIT(key.v);
		if (read_field(&r, f, (unsigned)key.v) != 0)
			goto malformed;
	}
	if (r.p != r.end) {
		r.why = "bytes after the frame";
		goto malformed;
	}
	if (!sp_frame_has(f, SP_F_TYPE) || !sp_frame_has(f, SP_F_ID)) {
		r.why = fields[sp_frame_has(f, SP_F_TYPE) ? SP_F_ID :
		    SP_F_TYPE].why[W_MISSING];
		goto malformed;
	}
	if (r.code != 0) {
		*error_r = r.why;
		return r.code;
	}
	if ((code = message_check(f->type, f->id, f->present, error_r)) != 0)
		return code;
	return 0;

malformed:
	*error_r = r.why;
	return SP_PERR_MALFORMED;
}

/* ---- building and encoding ---------------------------------------------- */

void
sp_frame_init(struct sp_frame *f, uint32_t type, uint64_t id)
{
	memset(f, 0, sizeof(*f));
	f->type = type;
	f->id = id;
	f->f[SP_F_TYPE].u = type;
	f->f[SP_F_ID].u = id;
	f->present = BIT(SP_F_TYPE) | BIT(SP_F_ID);
}

/* 1 if key is a settable field of this type; else poisons the frame.  Type
 * and id are not settable: sp_frame_init() owns them. */
static int
settable(struct sp_frame *f, unsigned key, int type, int array)
{
	if (key <= SP_F_ID || key >= SP_F_MAX || fields[key].type != type ||
	    fields[key].array != array) {
		f->present |= POISON;
		return 0;
	}
	return 1;
}

void
sp_frame_set_uint(struct sp_frame *f, unsigned key, uint64_t v)
{
	if (!settable(f, key, T_UINT, 0))
		return;
	f->f[key].u = v;
	f->present |= BIT(key);
}

void
sp_frame_set_bytes(struct sp_frame *f, unsigned key, const void *ptr,
    size_t len)
{
	if (!settable(f, key, T_BYTES, 0))
		return;
	if (ptr == NULL && len > 0) {
		f->present |= POISON;
		return;
	}
	f->f[key].ptr = ptr;
	f->f[key].len = len;
	f->present |= BIT(key);
}

void
sp_frame_set_text(struct sp_frame *f, unsigned key, const char *s)
{
	if (!settable(f, key, T_TEXT, 0))
		return;
	if (s == NULL) {
		f->present |= POISON;
		return;
	}
	f->f[key].ptr = (const uint8_t *)s;
	f->f[key].len = strlen(s);
	f->present |= BIT(key);
}

void
sp_frame_set_bool(struct sp_frame *f, unsigned key, int v)
{
	if (!settable(f, key, T_BOOL, 0))
		return;
	f->f[key].u = v != 0;
	f->present |= BIT(key);
}

/* An SP_ELIMIT leaves the frame as it was, so a caller filling a page of
 * records may stop there and send what it has; SP_EINVAL poisons it. */
int
sp_frame_add_item(struct sp_frame *f, unsigned key, const void *ptr,
    size_t len, uint64_t u)
{
	struct sp_frame_item *fi, *x;

	if (key >= SP_F_MAX || !fields[key].array ||
	    (ptr == NULL && len > 0)) {
		f->present |= POISON;
		return SP_EINVAL;
	}
	fi = &f->f[key];
	if (sp_frame_has(f, key) && fi->u + fi->len != f->nitems) {
		f->present |= POISON;
		return SP_EINVAL;
	}
	if (f->nitems >= SP_FRAME_ARRAY_MAX)
		return SP_ELIMIT;
	if (!sp_frame_has(f, key)) {
		f->present |= BIT(key);
		fi->u = f->nitems;
		fi->len = 0;
	}
	x = &f->items[f->nitems++];
	x->key = key;
	x->u = fields[key].type == T_UINT ? u : 0;
	x->ptr = fields[key].type == T_UINT ? NULL : ptr;
	x->len = fields[key].type == T_UINT ? 0 : len;
	fi->len++;
	return 0;
}

/* An array already present (with or without items) is left as it is. */
void
sp_frame_set_array_empty(struct sp_frame *f, unsigned key)
{
	if (key >= SP_F_MAX || !fields[key].array) {
		f->present |= POISON;
		return;
	}
	if (sp_frame_has(f, key))
		return;
	f->f[key].u = f->nitems;
	f->f[key].len = 0;
	f->present |= BIT(key);
}

/* Bytes in the shortest CBOR head carrying argument v. */
static size_t
head_size(uint64_t v)
{
	if (v < 24)
		return 1;
	if (v <= UINT8_MAX)
		return 2;
	if (v <= UINT16_MAX)
		return 3;
	if (v <= UINT32_MAX)
		return 5;
	return 9;
}

/* Encoded size of a checked scalar value. */
static uint64_t
value_size(int type, const struct sp_frame_item *x)
{
	switch (type) {
	case T_UINT:
		return head_size(x->u);
	case T_BOOL:
		return 1;
	default:
		return head_size(x->len) + x->len;
	}
}

/*
 * Checks present field key of f and adds its encoded size (key included)
 * to *size.  Returns 0 or SP_EINVAL.
 */
static int
field_size(const struct sp_frame *f, unsigned key, uint64_t *size)
{
	const struct field_def *d = &fields[key];
	const struct sp_frame_item *fi = &f->f[key], *x;
	const char *why;
	size_t i;

	*size += head_size(key);
	if (!d->array) {
		if ((d->type == T_BYTES || d->type == T_TEXT) &&
		    fi->ptr == NULL && fi->len > 0)
			return SP_EINVAL;
		if (value_check(d, fi->ptr, fi->len, fi->u, &why) != 0)
			return SP_EINVAL;
		*size += value_size(d->type, fi);
		return 0;
	}
	if (fi->u > f->nitems || fi->len > f->nitems - fi->u)
		return SP_EINVAL;
	*size += head_size(fi->len);
	for (i = 0; i < fi->len; i++) {
		x = &f->items[fi->u + i];
		if (x->key != key || (x->ptr == NULL && x->len > 0) ||
		    value_check(d, x->ptr, x->len, x->u, &why) != 0)
			return SP_EINVAL;
		*size += value_size(d->type, x);
	}
	return 0;
}

/* Writes one head with libcbor; the buffer was sized exactly beforehand. */
static uint8_t *
put_head(uint8_t *w, const uint8_t *end, int kind, uint64_t v)
{
	size_t room = (size_t)(end - w), n;

	switch (kind) {
	case T_UINT:
		n = cbor_encode_uint(v, w, room);
		break;
	case T_BOOL:
		n = cbor_encode_bool(v != 0, w, room);
		break;
	case T_BYTES:
		n = cbor_encode_bytestring_start((size_t)v, w, room);
		break;
	case T_TEXT:
		n = cbor_encode_string_start((size_t)v, w, room);
		break;
	case T_ARRAY:
		n = cbor_encode_array_start((size_t)v, w, room);
		break;
	default:
		n = cbor_encode_map_start((size_t)v, w, room);
		break;
	}
	assert(n == head_size(kind == T_BOOL ? 0 : v));
	return w + n;
}

static uint8_t *
put_value(uint8_t *w, const uint8_t *end, int type,
    const struct sp_frame_item *x)
{
	if (type == T_UINT || type == T_BOOL)
		return put_head(w, end, type, x->u);
	w = put_head(w, end, type, x->len);
	if (x->len > 0)
		memcpy(w, x->ptr, x->len);
	return w + x->len;
}

/*
 * The exact size is computed while checking, so the buffer is allocated
 * once, with nothing to grow or copy, and an oversized frame is refused
 * before any allocation.  Fields go out in ascending key order with the
 * shortest heads: one frame has one encoding.
 */
int
sp_frame_encode(const struct sp_frame *f, size_t pre, uint8_t **out_r,
    size_t *len_r)
{
	uint64_t size = 0, present = f->present | BIT(SP_F_TYPE) | BIT(SP_F_ID);
	const struct field_def *d;
	const char *why;
	uint8_t *buf, *w, *end;
	size_t npairs = 0;
	unsigned k;
	int rc;

	*out_r = NULL;
	*len_r = 0;
	if ((present & ~(BIT(SP_F_MAX) - 1)) != 0 ||
	    f->nitems > SP_FRAME_ARRAY_MAX ||
	    message_check(f->type, f->id, present, &why) != 0)
		return SP_EINVAL;
	for (k = 0; k < SP_F_MAX; k++) {
		if (!(present & BIT(k)))
			continue;
		npairs++;
		if (k == SP_F_TYPE || k == SP_F_ID)
			size += head_size(k) + head_size(k == SP_F_TYPE ?
			    f->type : f->id);
		else if ((rc = field_size(f, k, &size)) != 0)
			return rc;
	}
	size += head_size(npairs);
	if (size > SP_FRAME_MAX)
		return SP_ELIMIT;
	if (pre > SIZE_MAX - size)
		return SP_EINVAL;
	if ((buf = malloc(pre + (size_t)size)) == NULL)
		return SP_ENOMEM;
	w = buf + pre;
	end = w + size;
	w = put_head(w, end, T_MAP, npairs);
	w = put_head(w, end, T_UINT, SP_F_TYPE);
	w = put_head(w, end, T_UINT, f->type);
	w = put_head(w, end, T_UINT, SP_F_ID);
	w = put_head(w, end, T_UINT, f->id);
	for (k = SP_F_ID + 1; k < SP_F_MAX; k++) {
		const struct sp_frame_item *fi = &f->f[k];
		size_t i;

		if (!(present & BIT(k)))
			continue;
		d = &fields[k];
		w = put_head(w, end, T_UINT, k);
		if (!d->array) {
			w = put_value(w, end, d->type, fi);
			continue;
		}
		w = put_head(w, end, T_ARRAY, fi->len);
		for (i = 0; i < fi->len; i++)
			w = put_value(w, end, d->type, &f->items[fi->u + i]);
	}
	assert(w == end);
	*out_r = buf;
	*len_r = (size_t)size;
	return 0;
}

/* Cuts s to at most max bytes without splitting a UTF-8 sequence. */
static size_t
utf8_cut(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n <= max)
		return n;
	n = max;
	while (n > 0 && ((uint8_t)s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

/* A message over the field's limit is cut rather than refused: an error
 * report must not itself fail for being too wordy. */
int
sp_frame_error(uint64_t id, int code, const char *message, size_t pre,
    uint8_t **out_r, size_t *len_r)
{
	struct sp_frame f;

	if (message == NULL)
		message = "";
	sp_frame_init(&f, SP_MSG_ERROR, id);
	sp_frame_set_uint(&f, SP_F_CODE, code < 0 ? 0 : (uint64_t)code);
	sp_frame_set_text(&f, SP_F_MESSAGE, message);
	f.f[SP_F_MESSAGE].len = utf8_cut(message,
	    (size_t)fields[SP_F_MESSAGE].max);
	return sp_frame_encode(&f, pre, out_r, len_r);
}
