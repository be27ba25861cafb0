/*
 * Sync protocol frames: the one thing server and clients must agree on byte
 * for byte (docs/protocol.md is the full specification).
 *
 * One WebSocket binary message carries one frame.  A frame is a CBOR map
 * (RFC 8949, definite lengths only) with small unsigned integer keys:
 *   key 0 = message type (uint), key 1 = request id (uint; 0 for pushes),
 *   keys 2.. = fields, each with one fixed CBOR type in every message.
 * Which fields a message carries, and which are required, is one table
 * (frame.c), used by the decoder, the encoder and the documentation alike.
 *
 * Decoding is zero-copy: byte and text values point into the input buffer,
 * which must outlive the struct sp_frame.  Array items of all the array
 * fields of a message together are limited to SP_FRAME_ARRAY_MAX and are
 * stored in the frame itself.
 */
#ifndef SP_PROTO_FRAME_H
#define SP_PROTO_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/error.h"

#define SP_PROTO_VERSION 1
#define SP_FRAME_MAX (2u * 1024 * 1024)  /* bytes in one frame */
#define SP_FRAME_ARRAY_MAX 256           /* array items in one frame */

/* Message types. */
enum sp_msg_type {
	SP_MSG_ERROR = 1,       /* S->C: a request failed (code, message) */
	SP_MSG_OK = 2,          /* S->C: a request succeeded, nothing to say */
	SP_MSG_HELLO = 3,       /* C->S: version */
	SP_MSG_WELCOME = 4,     /* S->C: version, limits, server time */
	SP_MSG_REGISTER = 10,
	SP_MSG_PRELOGIN = 12,
	SP_MSG_PRELOGIN_OK = 13,
	SP_MSG_LOGIN = 14,
	SP_MSG_LOGIN_OK = 15,
	SP_MSG_RESUME = 16,
	SP_MSG_RESUME_OK = 17,
	SP_MSG_LOGOUT = 18,
	SP_MSG_SESSIONS = 20,
	SP_MSG_SESSIONS_OK = 21,
	SP_MSG_REVOKE = 22,
	SP_MSG_VAULT_PUT = 24,
	SP_MSG_COMPACT = 26,    /* C->S: drop the log prefix a snapshot replaces */
	SP_MSG_RECOVER = 27,    /* C->S: log in with the recovery key */
	SP_MSG_APPEND = 30,
	SP_MSG_APPENDED = 31,
	SP_MSG_READ = 32,
	SP_MSG_RECORDS = 33,
	SP_MSG_SUBSCRIBE = 34,
	SP_MSG_SUBSCRIBED = 35,
	SP_MSG_PUSH = 36,       /* S->C, id 0: new records, in order */
	SP_MSG_DELIVER = 38,
	SP_MSG_BLOB_BEGIN = 40,
	SP_MSG_BLOB_BEGUN = 41,
	SP_MSG_BLOB_CHUNK = 42,
	SP_MSG_BLOB_FINISH = 44,
	SP_MSG_BLOB_GET = 46,
	SP_MSG_BLOB_DATA = 47,
	SP_MSG_BLOB_DELETE = 48,
	SP_MSG_KEYS_GET = 50,
	SP_MSG_KEYS = 51,
	SP_MSG_GATEWAY_KEY = 52,    /* C->S: the gateway's X25519 key */
	SP_MSG_GATEWAY_KEY_OK = 53,
	SP_MSG_SUBMIT = 54,         /* C->S: queue a sealed blob for outside
	                             * recipients (docs/protocol.md 7.5) */
	/* Second factors (docs/protocol.md 6.5). */
	SP_MSG_SECOND_FACTOR = 56,  /* S->C: LOGIN needs a second factor */
	SP_MSG_LOGIN_2FA = 57,      /* C->S: the second factor -> LOGIN_OK */
	SP_MSG_FACTORS = 58,
	SP_MSG_FACTORS_OK = 59,
	SP_MSG_FACTOR_ADD = 60,
	SP_MSG_FACTOR_REMOVE = 61,
	SP_MSG_RECOVERY_NEW = 62,
	SP_MSG_RECOVERY_CODES = 63,
	SP_MSG_TYPE_MAX = 63
};

/* Field keys; each has one CBOR type everywhere (see frame.c). */
enum sp_field {
	SP_F_TYPE = 0,         /* uint */
	SP_F_ID = 1,           /* uint */
	SP_F_VERSION = 2,      /* uint */
	SP_F_CODE = 3,         /* uint: enum sp_proto_err */
	SP_F_MESSAGE = 4,      /* text <= 256 */
	SP_F_ADDRESS = 5,      /* text 3..254 */
	SP_F_TOKEN = 6,        /* bytes 32: session token */
	SP_F_AUTH_PK = 7,      /* bytes 32 */
	SP_F_KDF_PARAMS = 8,   /* bytes 25 */
	SP_F_VAULT = 9,        /* bytes <= 70000 */
	SP_F_PUBKEYS = 10,     /* bytes <= 16384 */
	SP_F_CHALLENGE = 11,   /* bytes 32 */
	SP_F_SIGNATURE = 12,   /* bytes 64 */
	SP_F_DEVICE = 13,      /* text <= 63 */
	SP_F_SEQ = 14,         /* uint */
	SP_F_EXPECTED = 15,    /* uint: expected last seq */
	SP_F_RECORDS = 16,     /* array of bytes, each 1..1 MiB */
	SP_F_LAST = 17,        /* uint */
	SP_F_BLOB_ID = 18,     /* bytes 32 */
	SP_F_SIZE = 19,        /* uint */
	SP_F_INDEX = 20,       /* uint */
	SP_F_DATA = 21,        /* bytes <= 65536 */
	SP_F_HAVE = 22,        /* uint */
	SP_F_SESSION_IDS = 23, /* array of bytes 16 */
	SP_F_DEVICES = 24,     /* array of text <= 63 */
	SP_F_CREATED = 25,     /* array of uint */
	SP_F_LAST_SEEN = 26,   /* array of uint */
	SP_F_INVITE = 27,      /* text <= 64 */
	SP_F_MAX_RECORDS = 28, /* uint */
	SP_F_MAX_BYTES = 29,   /* uint */
	SP_F_RECIPIENT = 30,   /* text 3..254 */
	SP_F_SESSION_ID = 31,  /* bytes 16 */
	SP_F_TIME = 32,        /* uint: seconds since the epoch */
	SP_F_MORE = 33,        /* bool */
	SP_F_MAIL_FROM = 34,   /* text 3..254: SUBMIT's envelope sender */
	SP_F_RECIPIENTS = 35,  /* array of text 3..254 */
	SP_F_GATEWAY_PK = 36,  /* bytes 32: the gateway's X25519 key */
	/* 37..39: outbound submission. */
	SP_F_FACTOR = 40,      /* uint 1..3: enum sp_factor_kind */
	SP_F_FACTOR_ID = 41,   /* bytes 1..255: a FIDO2 credential id, ... */
	SP_F_FACTORS = 42,     /* array of uint: factor kinds */
	SP_F_FACTOR_IDS = 43,  /* array of bytes 1..255 */
	SP_F_AUTH_DATA = 44,   /* bytes 37..1024: WebAuthn authenticatorData */
	SP_F_CLIENT_DATA = 45, /* bytes 1..1024: WebAuthn clientDataJSON */
	SP_F_ASSERTION = 46,   /* bytes 8..80: FIDO2 signature (DER or raw) */
	SP_F_OTP = 47,         /* text 6..32: TOTP or recovery code */
	SP_F_FACTOR_KEY = 48,  /* bytes 16..256: COSE key or TOTP secret */
	SP_F_CODES = 49,       /* array of text 1..32: new recovery codes */
	SP_F_RECOVERY_PK = 50, /* bytes 32: the recovery login key (public) */
	SP_F_MAX = 51
};

/* Error codes carried in SP_MSG_ERROR's SP_F_CODE. */
enum sp_proto_err {
	SP_PERR_MALFORMED = 1,   /* not a valid frame; connection closes */
	SP_PERR_VERSION = 2,     /* unsupported protocol version */
	SP_PERR_UNKNOWN = 3,     /* unknown message type */
	SP_PERR_TOO_LARGE = 4,   /* frame or field over its limit */
	SP_PERR_SEQUENCE = 5,    /* message not allowed in this state */
	SP_PERR_AUTH = 6,        /* not logged in, or session revoked */
	SP_PERR_DENIED = 7,      /* bad credentials */
	SP_PERR_RATE = 8,        /* rate limited; retry later */
	SP_PERR_EXISTS = 9,
	SP_PERR_NOT_FOUND = 10,
	SP_PERR_CONFLICT = 11,   /* append: expected last seq differs */
	SP_PERR_QUOTA = 12,
	SP_PERR_FULL = 13,       /* server storage full */
	SP_PERR_INVITE = 14,     /* registration needs a valid invite */
	SP_PERR_DOMAIN = 15,     /* address not in a domain served here */
	SP_PERR_INVALID = 16,    /* a field's value is not acceptable */
	SP_PERR_INTERNAL = 17,   /* server fault; nothing was changed */
	SP_PERR_MAX
};

/* Second factor kinds (SP_F_FACTOR). */
enum sp_factor_kind {
	SP_FACTOR_FIDO2 = 1,
	SP_FACTOR_TOTP = 2,
	SP_FACTOR_RECOVERY = 3
};

/* One value.  For an array field k, f[k].u is the index of its first item
 * in items[] and f[k].len the number of items (see sp_frame_array()). */
struct sp_frame_item {
	const uint8_t *ptr;     /* bytes/text (not NUL-terminated) */
	size_t len;
	uint64_t u;             /* uint and bool */
	unsigned key;           /* array items only: the field they belong to */
};

struct sp_frame {
	uint32_t type;
	uint64_t id;
	uint64_t present;       /* bit k set when field k is present */
	struct sp_frame_item f[SP_F_MAX];
	/* The items of every array field, each field's items contiguous. */
	struct sp_frame_item items[SP_FRAME_ARRAY_MAX];
	size_t nitems;
};

/*
 * Decodes one frame from untrusted bytes and checks it against the message
 * table: known type, only the fields that message may carry, each of its
 * fixed CBOR type and within its limits, every required field present, no
 * key twice, nothing after the map.  Returns 0, or an enum sp_proto_err
 * code (positive) with a static English reason in *error_r.  On any error
 * but SP_PERR_MALFORMED (and a frame over SP_FRAME_MAX), f->type and f->id
 * are the frame's, so the caller can answer it; the rest of f is undefined.
 */
SP_WUR int sp_frame_decode(const uint8_t *buf, size_t len, struct sp_frame *f,
    const char **error_r);

/* Empties f and sets its type and id, ready for the setters below. */
void sp_frame_init(struct sp_frame *f, uint32_t type, uint64_t id);
/* Setters borrow ptr: it must stay valid until the frame is encoded. */
void sp_frame_set_uint(struct sp_frame *f, unsigned key, uint64_t v);
void sp_frame_set_bytes(struct sp_frame *f, unsigned key, const void *ptr,
    size_t len);
/* Text as UTF-8 bytes (NUL-terminated C string). */
void sp_frame_set_text(struct sp_frame *f, unsigned key, const char *s);
void sp_frame_set_bool(struct sp_frame *f, unsigned key, int v);
/* Appends one item to array field key (marking the field present); items
 * of one field must be added consecutively.  SP_ELIMIT past
 * SP_FRAME_ARRAY_MAX, SP_EINVAL if another field's items came between. */
int sp_frame_add_item(struct sp_frame *f, unsigned key, const void *ptr,
    size_t len, uint64_t u);
/* Marks array field key present with no items (an empty array). */
void sp_frame_set_array_empty(struct sp_frame *f, unsigned key);

/*
 * Encodes f into *out_r (malloc'd, the caller's), checking it against the
 * same table as the decoder so that we never send what we would refuse.
 * Returns 0 or SP_EINVAL (field not allowed, missing, or over a limit) or
 * SP_ELIMIT (frame over SP_FRAME_MAX).  pre bytes are reserved, uninitialised,
 * in front of the frame (libwebsockets needs LWS_PRE); *len_r excludes them.
 */
int sp_frame_encode(const struct sp_frame *f, size_t pre, uint8_t **out_r,
    size_t *len_r);

/* Convenience: an ERROR frame for request id. */
int sp_frame_error(uint64_t id, int code, const char *message, size_t pre,
    uint8_t **out_r, size_t *len_r);

/* Names for logs and docs: "LOGIN", "malformed", ... (static strings). */
const char *sp_msg_name(uint32_t type);
const char *sp_proto_strerror(int code);

/* Field accessors: 1 if present. */
static inline int
sp_frame_has(const struct sp_frame *f, unsigned key)
{
	return key < SP_F_MAX && (f->present >> key) & 1;
}

/* The items of array field key of a frame, or NULL with *n_r = 0. */
static inline const struct sp_frame_item *
sp_frame_array(const struct sp_frame *f, unsigned key, size_t *n_r)
{
	if (!sp_frame_has(f, key)) {
		*n_r = 0;
		return NULL;
	}
	*n_r = f->f[key].len;
	return f->items + f->f[key].u;
}

#endif
