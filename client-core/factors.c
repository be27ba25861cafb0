/*
 * Second factors and security events, client side (factors.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fido.h>
#include <openssl/sha.h>
#include <qrencode.h>
#include <sodium.h>

#include "client-core/factors.h"
#include "crypto/envelope.h"

#define EVENT_OP 64
#define EVENT_HDR 12              /* version, op, type, time u64, len */
#define READ_PAGE 256
#define B32_MAX 104               /* 64 bytes in base32, and a NUL */

/* ---- answering SECOND_FACTOR ---------------------------------------------- */

static int
accepts(const struct sp_frame *sf, unsigned kind)
{
	size_t i;

	for (i = 0; i < sf->f[SP_F_FACTORS].len; i++)
		if (sf->items[sf->f[SP_F_FACTORS].u + i].u == kind)
			return 1;
	return 0;
}

/* What clientDataJSON says for a ceremony; the server checks type,
 * challenge (base64url, unpadded) and origin (https:// + rp id). */
static int
client_data(const char *type, const uint8_t *chal, size_t clen,
    const char *rp_id, char *out, size_t outlen, uint8_t hash[32])
{
	char b64[sodium_base64_ENCODED_LEN(64,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
	int n;

	if (clen > 64)
		return SP_EINVAL;
	sodium_bin2base64(b64, sizeof(b64), chal, clen,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	n = snprintf(out, outlen, "{\"type\":\"%s\",\"challenge\":\"%s\","
	    "\"origin\":\"https://%s\",\"crossOrigin\":false}", type, b64,
	    rp_id);
	if (n < 0 || (size_t)n >= outlen)
		return SP_ERANGE;
	SHA256((const unsigned char *)out, (size_t)n, hash);
	return 0;
}

static const char *
rp_of(const char *address)
{
	const char *at = strrchr(address, '@');

	return at ? at + 1 : address;
}

/* libfido2's device: the path given, or the first one it finds. */
static int
fido_open(const char *path, fido_dev_t **dev_r, char *err, size_t errlen)
{
	fido_dev_info_t *list = NULL;
	fido_dev_t *dev = NULL;
	size_t n = 0;
	int rc;

	fido_init(0);
	*dev_r = NULL;
	if ((dev = fido_dev_new()) == NULL)
		return SP_ENOMEM;
	if (path == NULL || path[0] == 0) {
		if ((list = fido_dev_info_new(8)) == NULL) {
			fido_dev_free(&dev);
			return SP_ENOMEM;
		}
		if (fido_dev_info_manifest(list, 8, &n) != FIDO_OK || n == 0) {
			snprintf(err, errlen, "no FIDO2 security key found "
			    "(give its path: --fido2-device /dev/hidrawN)");
			rc = ENODEV;
			goto out;
		}
		path = fido_dev_info_path(fido_dev_info_ptr(list, 0));
	}
	if ((rc = fido_dev_open(dev, path)) != FIDO_OK) {
		snprintf(err, errlen, "the security key %s: %s", path,
		    fido_strerr(rc));
		rc = ENODEV;
		goto out;
	}
	*dev_r = dev;
	dev = NULL;
	rc = 0;
out:
	fido_dev_info_free(&list, 8);
	fido_dev_free(&dev);
	return rc;
}

/* The raw authenticatorData: libfido2 gives it CBOR-encoded (a byte
 * string), the server wants the bytes. */
static int
authdata_raw(const uint8_t *cbor, size_t n, const uint8_t **p_r,
    size_t *len_r)
{
	size_t len, hdr;

	if (n < 2 || (cbor[0] & 0xe0) != 0x40)
		return SP_EFORMAT;
	if ((cbor[0] & 0x1f) < 24) {
		len = cbor[0] & 0x1f;
		hdr = 1;
	} else if (cbor[0] == 0x58) {
		len = cbor[1];
		hdr = 2;
	} else if (cbor[0] == 0x59 && n >= 3) {
		len = (size_t)cbor[1] << 8 | cbor[2];
		hdr = 3;
	} else {
		return SP_EFORMAT;
	}
	if (hdr + len != n)
		return SP_EFORMAT;
	*p_r = cbor + hdr;
	*len_r = len;
	return 0;
}

/*
 * The FIDO2 answer: an assertion over our clientDataJSON for the
 * pending challenge, limited to the account's credentials.
 */
static int
answer_fido2(sp_client *c, const char *address, const struct sp_frame *sf,
    const char *path, struct sp_client_msg **m_r, char *err, size_t errlen)
{
	const char *rp = rp_of(address);
	const struct sp_frame_item *chal = &sf->f[SP_F_CHALLENGE];
	fido_dev_t *dev = NULL;
	fido_assert_t *a = NULL;
	char cd[400];
	uint8_t hash[32];
	const uint8_t *ad;
	size_t adlen, i;
	struct sp_frame f;
	int rc;

	if ((rc = client_data("webauthn.get", chal->ptr, chal->len, rp, cd,
	    sizeof(cd), hash)) != 0)
		return rc;
	if ((rc = fido_open(path, &dev, err, errlen)) != 0)
		return rc;
	if ((a = fido_assert_new()) == NULL) {
		rc = SP_ENOMEM;
		goto out;
	}
	if (fido_assert_set_rp(a, rp) != FIDO_OK ||
	    fido_assert_set_clientdata_hash(a, hash, sizeof(hash)) !=
	    FIDO_OK || fido_assert_set_up(a, FIDO_OPT_TRUE) != FIDO_OK) {
		rc = SP_EINVAL;
		goto out;
	}
	for (i = 0; i < sf->f[SP_F_FACTOR_IDS].len; i++) {
		const struct sp_frame_item *id =
		    &sf->items[sf->f[SP_F_FACTOR_IDS].u + i];

		(void)fido_assert_allow_cred(a, id->ptr, id->len);
	}
	if ((rc = fido_dev_get_assert(dev, a, getenv("SEALPOST_FIDO2_PIN"))) !=
	    FIDO_OK) {
		snprintf(err, errlen, "the security key did not sign: %s",
		    fido_strerr(rc));
		rc = SP_EAUTH;
		goto out;
	}
	if (fido_assert_count(a) < 1 ||
	    authdata_raw(fido_assert_authdata_ptr(a, 0),
	    fido_assert_authdata_len(a, 0), &ad, &adlen) != 0) {
		snprintf(err, errlen, "the security key's answer is unusable");
		rc = EPROTO;
		goto out;
	}
	sp_frame_init(&f, SP_MSG_LOGIN_2FA, 0);
	sp_frame_set_bytes(&f, SP_F_CHALLENGE, chal->ptr, chal->len);
	sp_frame_set_uint(&f, SP_F_FACTOR, SP_FACTOR_FIDO2);
	sp_frame_set_bytes(&f, SP_F_FACTOR_ID, fido_assert_id_ptr(a, 0),
	    fido_assert_id_len(a, 0));
	sp_frame_set_bytes(&f, SP_F_AUTH_DATA, ad, adlen);
	sp_frame_set_bytes(&f, SP_F_CLIENT_DATA, cd, strlen(cd));
	sp_frame_set_bytes(&f, SP_F_ASSERTION, fido_assert_sig_ptr(a, 0),
	    fido_assert_sig_len(a, 0));
	rc = sp_client_call(c, &f, m_r);
out:
	fido_assert_free(&a);
	if (dev) {
		(void)fido_dev_close(dev);
		fido_dev_free(&dev);
	}
	return rc;
}

static int
answer_code(sp_client *c, const struct sp_frame *sf, unsigned kind,
    const char *code, struct sp_client_msg **m_r)
{
	struct sp_frame f;

	sp_frame_init(&f, SP_MSG_LOGIN_2FA, 0);
	sp_frame_set_bytes(&f, SP_F_CHALLENGE, sf->f[SP_F_CHALLENGE].ptr,
	    sf->f[SP_F_CHALLENGE].len);
	sp_frame_set_uint(&f, SP_F_FACTOR, kind);
	sp_frame_set_text(&f, SP_F_OTP, code);
	return sp_client_call(c, &f, m_r);
}

/* A code the user typed: six digits are TOTP, anything else recovery. */
static unsigned
code_kind(const char *code)
{
	size_t i, n = strlen(code);

	for (i = 0; i < n; i++)
		if (code[i] < '0' || code[i] > '9')
			return SP_FACTOR_RECOVERY;
	return n == 6 ? SP_FACTOR_TOTP : SP_FACTOR_RECOVERY;
}

/* The code's length as the protocol allows it (otp: 6..32 bytes). */
static int
code_ok(const char *code)
{
	size_t n = strlen(code);

	return n >= 6 && n <= 32;
}

int
sp_factors_answer(sp_client *c, const char *address,
    const struct sp_frame *sf, const struct sp_second_factor *in,
    struct sp_client_msg **reply_r, char *err, size_t errlen)
{
	static const struct sp_second_factor none;
	struct sp_client_msg *m = NULL;
	unsigned kinds[8];
	size_t nk = 0, i;
	char *buf = NULL;
	const char *what;
	int rc;

	*reply_r = NULL;
	if (in == NULL)
		in = &none;
	for (i = 0; i < sf->f[SP_F_FACTORS].len && nk < 8; i++)
		kinds[nk++] = (unsigned)sf->items[sf->f[SP_F_FACTORS].u + i].u;
	if (in->fido2_device && accepts(sf, SP_FACTOR_FIDO2)) {
		what = "the security key";
		rc = answer_fido2(c, address, sf, in->fido2_device, &m, err,
		    errlen);
		if (rc != 0 && rc != ETIMEDOUT && rc != EPIPE)
			return rc;
	} else if (in->totp && accepts(sf, SP_FACTOR_TOTP)) {
		what = "the authenticator code";
		if (!code_ok(in->totp))
			goto bad_code;
		rc = answer_code(c, sf, SP_FACTOR_TOTP, in->totp, &m);
	} else if (in->recovery && accepts(sf, SP_FACTOR_RECOVERY)) {
		what = "the recovery code";
		if (!code_ok(in->recovery))
			goto bad_code;
		rc = answer_code(c, sf, SP_FACTOR_RECOVERY, in->recovery, &m);
	} else if (in->ask) {
		if ((buf = sodium_malloc(64)) == NULL)
			return SP_ENOMEM;
		buf[0] = 0;
		if (in->ask(in->ask_arg, kinds, nk, buf, 64) != 0 ||
		    !code_ok(buf)) {
			sodium_free(buf);
			goto bad_code;
		}
		what = code_kind(buf) == SP_FACTOR_TOTP ?
		    "the authenticator code" : "the recovery code";
		rc = answer_code(c, sf, code_kind(buf), buf, &m);
		sodium_free(buf);
	} else {
		snprintf(err, errlen, "this account needs a second factor: "
		    "give %s%s%s", accepts(sf, SP_FACTOR_FIDO2) ?
		    "--fido2-device PATH, " : "", accepts(sf, SP_FACTOR_TOTP) ?
		    "--totp CODE (or $SEALPOST_TOTP), " : "",
		    "--recovery-code CODE");
		return EACCES;
	}
	if (rc == 0 && m->f.type == SP_MSG_ERROR &&
	    m->f.f[SP_F_CODE].u == SP_PERR_DENIED) {
		snprintf(err, errlen, "second factor refused: %s is wrong, was "
		    "already used or has expired", what);
		sp_client_msg_free(m);
		return SP_EAUTH;
	}
	if ((rc = sp_client_expect(rc, m, SP_MSG_LOGIN_OK, "second factor",
	    err, errlen)) != 0) {
		sp_client_msg_free(m);
		return rc;
	}
	*reply_r = m;
	return 0;
bad_code:
	snprintf(err, errlen, "second factor: a TOTP code is 6 digits, a "
	    "recovery code 10 letters and digits");
	return EACCES;
}

/* ---- listing, adding, removing --------------------------------------------- */

int
sp_factors_list(sp_client *c, struct sp_factor_info *out, size_t max,
    size_t *n_r, char *err, size_t errlen)
{
	struct sp_frame f;
	struct sp_client_msg *m = NULL;
	const struct sp_frame *r;
	size_t i, n;
	int rc;

	*n_r = 0;
	sp_frame_init(&f, SP_MSG_FACTORS, 0);
	rc = sp_client_call(c, &f, &m);
	if ((rc = sp_client_expect(rc, m, SP_MSG_FACTORS_OK, "factors", err,
	    errlen)) != 0)
		goto out;
	r = &m->f;
	n = r->f[SP_F_FACTORS].len;
	/* Parallel arrays: the receiver checks their lengths (as for
	 * SESSIONS_OK, protocol.md 4). */
	if (r->f[SP_F_FACTOR_IDS].len != n || r->f[SP_F_CREATED].len != n) {
		snprintf(err, errlen, "factors: malformed reply");
		rc = EPROTO;
		goto out;
	}
	for (i = 0; i < n && i < max; i++) {
		const struct sp_frame_item *id =
		    &r->items[r->f[SP_F_FACTOR_IDS].u + i];

		out[i].kind = (unsigned)r->items[r->f[SP_F_FACTORS].u + i].u;
		out[i].id_len = id->len > SP_FACTORS_ID_MAX ?
		    SP_FACTORS_ID_MAX : id->len;
		memcpy(out[i].id, id->ptr, out[i].id_len);
		out[i].created = r->items[r->f[SP_F_CREATED].u + i].u;
	}
	*n_r = i;
out:
	sp_client_msg_free(m);
	return rc;
}

int
sp_factors_totp_secret(uint8_t **secret_r)
{
	if ((*secret_r = sodium_malloc(SP_FACTORS_TOTP_BYTES)) == NULL)
		return SP_ENOMEM;
	randombytes_buf(*secret_r, SP_FACTORS_TOTP_BYTES);
	return 0;
}

/* RFC 4648 base32 without padding, as authenticator apps read it. */
static int
base32(const uint8_t *in, size_t n, char *out, size_t outlen)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	size_t i, k = 0;
	unsigned buf = 0, bits = 0;

	for (i = 0; i < n; i++) {
		buf = (buf << 8) | in[i];
		bits += 8;
		while (bits >= 5) {
			if (k + 1 >= outlen)
				return SP_ERANGE;
			out[k++] = a[(buf >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if (bits > 0) {
		if (k + 1 >= outlen)
			return SP_ERANGE;
		out[k++] = a[(buf << (5 - bits)) & 31];
	}
	out[k] = 0;
	return 0;
}

/* Percent-encoding of a URI label part (RFC 3986 unreserved kept). */
static int
pct(const char *s, char *out, size_t outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t k = 0;

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		int plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' &&
		    ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
		    ch == '.' || ch == '_' || ch == '~';

		if (k + (plain ? 1 : 3) >= outlen)
			return SP_ERANGE;
		if (plain) {
			out[k++] = (char)ch;
		} else {
			out[k++] = '%';
			out[k++] = hex[ch >> 4];
			out[k++] = hex[ch & 15];
		}
	}
	out[k] = 0;
	return 0;
}

int
sp_factors_totp_uri(const uint8_t *secret, size_t len, const char *issuer,
    const char *account, char *buf, size_t buflen)
{
	char b32[B32_MAX], is[128], ac[3 * 254 + 1];
	int n, rc;

	if (len == 0 || len > 64)
		return SP_EINVAL;
	if ((rc = base32(secret, len, b32, sizeof(b32))) != 0 ||
	    (rc = pct(issuer, is, sizeof(is))) != 0 ||
	    (rc = pct(account, ac, sizeof(ac))) != 0)
		goto out;
	n = snprintf(buf, buflen, "otpauth://totp/%s:%s?secret=%s&issuer=%s"
	    "&algorithm=SHA1&digits=6&period=30", is, ac, b32, is);
	rc = n < 0 || (size_t)n >= buflen ? SP_ERANGE : 0;
out:
	sodium_memzero(b32, sizeof(b32));
	return rc;
}

int
sp_factors_totp_add(sp_client *c, const uint8_t *secret, size_t len,
    const char *code, char *err, size_t errlen)
{
	struct sp_frame f;
	struct sp_client_msg *m = NULL;
	int rc;

	if (!code_ok(code) || code_kind(code) != SP_FACTOR_TOTP) {
		snprintf(err, errlen, "a TOTP code is 6 digits");
		return SP_EINVAL;
	}
	sp_frame_init(&f, SP_MSG_FACTOR_ADD, 0);
	sp_frame_set_uint(&f, SP_F_FACTOR, SP_FACTOR_TOTP);
	sp_frame_set_bytes(&f, SP_F_FACTOR_KEY, secret, len);
	sp_frame_set_text(&f, SP_F_OTP, code);
	rc = sp_client_call(c, &f, &m);
	if (rc == 0 && m->f.type == SP_MSG_ERROR &&
	    m->f.f[SP_F_CODE].u == SP_PERR_INVALID) {
		snprintf(err, errlen, "the code does not match the new secret "
		    "(is the phone's clock right?); nothing was added");
		rc = SP_EAUTH;
	} else if (rc == 0 && m->f.type == SP_MSG_ERROR &&
	    m->f.f[SP_F_CODE].u == SP_PERR_EXISTS) {
		snprintf(err, errlen, "the account has an authenticator app "
		    "already; remove it first");
		rc = SP_ESERVER;
	} else {
		rc = sp_client_expect(rc, m, SP_MSG_OK, "adding the "
		    "authenticator app", err, errlen);
	}
	sp_client_msg_free(m);
	return rc;
}

int
sp_factors_qr(const char *text, char **out_r, int *size_r)
{
	/* Upper half, lower half, both, neither: dark modules are drawn
	 * with the glyph, so dark-on-light terminals show a readable code
	 * and the light quiet zone is spaces. */
	static const char *cell[4] = { " ", "\xe2\x96\x80", "\xe2\x96\x84",
	    "\xe2\x96\x88" };
	const int margin = 4;
	QRcode *q;
	char *out;
	size_t cap, k = 0;
	int w, y, x;

	*out_r = NULL;
	if ((q = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8,
	    1)) == NULL)
		return errno == ERANGE ? SP_ELIMIT : SP_ENOMEM;
	w = q->width + 2 * margin;
	cap = (size_t)(w * 3 + 1) * (size_t)((w + 1) / 2) + 1;
	if ((out = sodium_malloc(cap)) == NULL) {
		QRcode_free(q);
		return SP_ENOMEM;
	}
	for (y = 0; y < w; y += 2) {
		for (x = 0; x < w; x++) {
			int top = 0, bot = 0, mx = x - margin;
			int my = y - margin;
			const char *g;

			if (mx >= 0 && mx < q->width && my >= 0 &&
			    my < q->width)
				top = q->data[my * q->width + mx] & 1;
			if (mx >= 0 && mx < q->width && my + 1 >= 0 &&
			    my + 1 < q->width)
				bot = q->data[(my + 1) * q->width + mx] & 1;
			g = cell[top | bot << 1];
			memcpy(out + k, g, strlen(g));
			k += strlen(g);
		}
		out[k++] = '\n';
	}
	out[k] = 0;
	*size_r = q->width;
	sodium_memzero(q->data, (size_t)q->width * (size_t)q->width);
	QRcode_free(q);
	*out_r = out;
	return 0;
}

/* A COSE_Key (RFC 9053) for libfido2's raw public key. */
static int
cose_key(int type, const uint8_t *pk, size_t n, uint8_t *out,
    size_t *len_r)
{
	static const uint8_t es256[] = { 0xa5, 0x01, 0x02, 0x03, 0x26, 0x20,
	    0x01, 0x21, 0x58, 0x20 };
	static const uint8_t eddsa[] = { 0xa4, 0x01, 0x01, 0x03, 0x27, 0x20,
	    0x06, 0x21, 0x58, 0x20 };

	if (type == COSE_ES256 && n == 64) {
		memcpy(out, es256, sizeof(es256));
		memcpy(out + sizeof(es256), pk, 32);
		out[sizeof(es256) + 32] = 0x22;
		out[sizeof(es256) + 33] = 0x58;
		out[sizeof(es256) + 34] = 0x20;
		memcpy(out + sizeof(es256) + 35, pk + 32, 32);
		*len_r = sizeof(es256) + 67;
		return 0;
	}
	if (type == COSE_EDDSA && n == 32) {
		memcpy(out, eddsa, sizeof(eddsa));
		memcpy(out + sizeof(eddsa), pk, 32);
		*len_r = sizeof(eddsa) + 32;
		return 0;
	}
	return SP_EFORMAT;
}

int
sp_factors_fido2_add(sp_client *c, const char *device, const char *rp_id,
    const char *address, const char *pin, char *err, size_t errlen)
{
	fido_dev_t *dev = NULL;
	fido_cred_t *cr = NULL;
	struct sp_frame f;
	struct sp_client_msg *m = NULL;
	uint8_t chal[32], hash[32], user[16], cose[128];
	char cd[400];
	size_t clen = 0;
	int rc;

	/* The registration challenge is ours: the server trusts the
	 * enrolling session, not an attestation (protocol.md 6.5). */
	randombytes_buf(chal, sizeof(chal));
	randombytes_buf(user, sizeof(user));
	if ((rc = client_data("webauthn.create", chal, sizeof(chal), rp_id,
	    cd, sizeof(cd), hash)) != 0)
		return rc;
	if ((rc = fido_open(device, &dev, err, errlen)) != 0)
		return rc;
	if ((cr = fido_cred_new()) == NULL) {
		rc = SP_ENOMEM;
		goto out;
	}
	if (fido_cred_set_type(cr, COSE_ES256) != FIDO_OK ||
	    fido_cred_set_clientdata_hash(cr, hash, sizeof(hash)) !=
	    FIDO_OK || fido_cred_set_rp(cr, rp_id, "sealpost") != FIDO_OK ||
	    fido_cred_set_user(cr, user, sizeof(user), address, address,
	    NULL) != FIDO_OK || fido_cred_set_rk(cr, FIDO_OPT_FALSE) !=
	    FIDO_OK) {
		rc = SP_EINVAL;
		goto out;
	}
	if ((rc = fido_dev_make_cred(dev, cr, pin)) != FIDO_OK) {
		snprintf(err, errlen, "the security key made no credential: %s",
		    fido_strerr(rc));
		rc = SP_EAUTH;
		goto out;
	}
	if (fido_cred_id_len(cr) < 1 || fido_cred_id_len(cr) > 255 ||
	    cose_key(fido_cred_type(cr), fido_cred_pubkey_ptr(cr),
	    fido_cred_pubkey_len(cr), cose, &clen) != 0) {
		snprintf(err, errlen, "the security key's credential is "
		    "unusable");
		rc = EPROTO;
		goto out;
	}
	sp_frame_init(&f, SP_MSG_FACTOR_ADD, 0);
	sp_frame_set_uint(&f, SP_F_FACTOR, SP_FACTOR_FIDO2);
	sp_frame_set_bytes(&f, SP_F_FACTOR_ID, fido_cred_id_ptr(cr),
	    fido_cred_id_len(cr));
	sp_frame_set_bytes(&f, SP_F_FACTOR_KEY, cose, clen);
	rc = sp_client_call(c, &f, &m);
	rc = sp_client_expect(rc, m, SP_MSG_OK, "adding the security key",
	    err, errlen);
out:
	sp_client_msg_free(m);
	fido_cred_free(&cr);
	if (dev) {
		(void)fido_dev_close(dev);
		fido_dev_free(&dev);
	}
	return rc;
}

int
sp_factors_remove(sp_client *c, unsigned kind, const uint8_t *id,
    size_t id_len, char *err, size_t errlen)
{
	struct sp_frame f;
	struct sp_client_msg *m = NULL;
	int rc;

	sp_frame_init(&f, SP_MSG_FACTOR_REMOVE, 0);
	sp_frame_set_uint(&f, SP_F_FACTOR, kind);
	if (kind == SP_FACTOR_FIDO2)
		sp_frame_set_bytes(&f, SP_F_FACTOR_ID, id, id_len);
	rc = sp_client_call(c, &f, &m);
	if (rc == 0 && m->f.type == SP_MSG_ERROR &&
	    m->f.f[SP_F_CODE].u == SP_PERR_AUTH) {
		snprintf(err, errlen, "removing a factor needs a login with a "
		    "second factor in the last 5 minutes");
		rc = SP_EAUTH;
	} else if (rc == 0 && m->f.type == SP_MSG_ERROR &&
	    m->f.f[SP_F_CODE].u == SP_PERR_NOT_FOUND) {
		snprintf(err, errlen, "the account has no such factor");
		rc = SP_ESERVER;
	} else {
		rc = sp_client_expect(rc, m, SP_MSG_OK, "removing the factor",
		    err, errlen);
	}
	sp_client_msg_free(m);
	return rc;
}

int
sp_factors_recovery_new(sp_client *c, char **codes_r, size_t *n_r,
    char *err, size_t errlen)
{
	const size_t w = SP_FACTORS_RECOVERY_LEN + 1;
	struct sp_frame f;
	struct sp_client_msg *m = NULL;
	char *codes = NULL;
	size_t i, n;
	int rc;

	*codes_r = NULL;
	*n_r = 0;
	sp_frame_init(&f, SP_MSG_RECOVERY_NEW, 0);
	rc = sp_client_call(c, &f, &m);
	if ((rc = sp_client_expect(rc, m, SP_MSG_RECOVERY_CODES,
	    "new recovery codes", err, errlen)) != 0)
		goto out;
	n = m->f.f[SP_F_CODES].len;
	if (n == 0 || n > 32 || (codes = sodium_malloc(n * w)) == NULL) {
		snprintf(err, errlen, "new recovery codes: %s", n ?
		    "out of memory" : "none came");
		rc = n ? SP_ENOMEM : EPROTO;
		goto out;
	}
	for (i = 0; i < n; i++) {
		const struct sp_frame_item *it =
		    &m->f.items[m->f.f[SP_F_CODES].u + i];
		size_t l = it->len < w - 1 ? it->len : w - 1, k;

		memcpy(codes + i * w, it->ptr, l);
		codes[i * w + l] = 0;
		/* The server's text goes to a terminal: letters, digits
		 * and dashes only. */
		for (k = 0; k < l; k++) {
			char ch = codes[i * w + k];

			if (!((ch >= '0' && ch <= '9') || (ch >= 'a' &&
			    ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			    ch == '-'))
				codes[i * w + k] = '?';
		}
	}
	*codes_r = codes;
	*n_r = n;
out:
	if (m && m->buf)
		sodium_memzero(m->buf, m->len);
	sp_client_msg_free(m);
	return rc;
}

/* ---- security events ------------------------------------------------------- */

int
sp_event_parse(const uint8_t *p, size_t n, struct sp_security_event *e)
{
	size_t len, i;

	memset(e, 0, sizeof(*e));
	if (n < EVENT_HDR || p[0] != 1 || p[1] != EVENT_OP)
		return SP_EFORMAT;
	len = p[11];
	if (len > SP_EVENT_DETAIL_MAX || EVENT_HDR + len != n)
		return SP_EFORMAT;
	for (i = 0; i < len; i++)
		if (p[EVENT_HDR + i] < 0x20 || p[EVENT_HDR + i] == 0x7f)
			return SP_EFORMAT;
	e->type = p[2];
	e->time = (uint64_t)p[3] << 56 | (uint64_t)p[4] << 48 |
	    (uint64_t)p[5] << 40 | (uint64_t)p[6] << 32 |
	    (uint64_t)p[7] << 24 | (uint64_t)p[8] << 16 |
	    (uint64_t)p[9] << 8 | p[10];
	memcpy(e->detail, p + EVENT_HDR, len);
	e->detail[len] = 0;
	return 0;
}

const char *
sp_event_name(unsigned type)
{
	static const char *names[] = { "unknown", "new session",
	    "factor added", "factor removed", "password changed",
	    "keys changed", "key counter went back", "recovery code used",
	    "recovery key used" };

	return type < sizeof(names) / sizeof(names[0]) ? names[type] :
	    names[0];
}

/* One record: an event when it is kind 3 and opens with the X25519 key
 * alone.  1 when it is one (in *e), 0 when not. */
static int
record_event(const uint8_t *rec, size_t len, const sp_keyset *ks,
    struct sp_security_event *e)
{
	sp_envelope *r = NULL;
	uint8_t buf[EVENT_HDR + SP_EVENT_DETAIL_MAX];
	uint64_t n;
	int is = 0;

	/* byte 1 is the kind: skip the rest before any key is tried */
	if (len < 2 || rec[1] != SP_ENVELOPE_KIND_CHANGE)
		return 0;
	if (sp_envelope_open_raw(rec, len, sp_keyset_encryption_pk(ks),
	    sp_keyset_encryption_sk(ks), NULL, &r) != 0)
		return 0;
	n = sp_envelope_content_length(r);
	if (sp_envelope_kind(r) == SP_ENVELOPE_KIND_CHANGE &&
	    n <= sizeof(buf) && sp_envelope_read_all(r, buf, (size_t)n) == 0)
		is = sp_event_parse(buf, (size_t)n, e) == 0;
	sp_envelope_close(r);
	return is;
}

int
sp_factors_events(sp_client *c, const sp_keyset *ks, sp_event_fn fn,
    void *arg, char *err, size_t errlen)
{
	struct sp_security_event e;
	struct sp_frame f;
	struct sp_client_msg *m = NULL;
	uint64_t seq = 1, first;
	size_t i;
	int rc = 0, more = 1;

	while (more) {
		sp_frame_init(&f, SP_MSG_READ, 0);
		sp_frame_set_uint(&f, SP_F_SEQ, seq);
		sp_frame_set_uint(&f, SP_F_MAX_RECORDS, READ_PAGE);
		rc = sp_client_call(c, &f, &m);
		if ((rc = sp_client_expect(rc, m, SP_MSG_RECORDS, "reading "
		    "the log", err, errlen)) != 0)
			break;
		first = m->f.f[SP_F_SEQ].u;
		/* A page that does not move forward would loop forever. */
		if (first < seq || m->f.f[SP_F_RECORDS].len == 0) {
			more = 0;
		} else {
			for (i = 0; i < m->f.f[SP_F_RECORDS].len; i++) {
				const struct sp_frame_item *it =
				    &m->f.items[m->f.f[SP_F_RECORDS].u + i];

				if (!record_event(it->ptr, it->len, ks, &e))
					continue;
				e.seq = first + i;
				if ((rc = fn(arg, &e)) != 0)
					goto out;
			}
			seq = first + m->f.f[SP_F_RECORDS].len;
			more = m->f.f[SP_F_MORE].u != 0;
		}
		sp_client_msg_free(m);
		m = NULL;
	}
out:
	sp_client_msg_free(m);
	return rc;
}
