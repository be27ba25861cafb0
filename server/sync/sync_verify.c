/*
 * TOTP, COSE keys and FIDO2 assertions (sync_verify.h).
 *
 * clientDataJSON is read by a small strict reader rather than a JSON
 * library: the server needs three string members of a flat object, and a
 * reader that accepts only flat objects of strings and booleans (what
 * libfido2-based clients and browsers send for "webauthn.get", minus the
 * long-retired tokenBinding object) has no depth to exhaust.  Member
 * values we compare must not contain escapes; they never need any.
 */
#include <string.h>

#include <cbor.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/sha.h>
#include <sodium.h>

#include "server/sync/sync_verify.h"

int
sp_totp(const uint8_t *key, size_t key_len, uint64_t step, unsigned digits,
    uint32_t *code_r)
{
	static const uint32_t mod[] = { 1000000, 10000000, 100000000 };
	uint8_t msg[8], mac[EVP_MAX_MD_SIZE];
	unsigned mac_len = 0, off, i;
	uint32_t bin;

	if (key == NULL || key_len == 0 || key_len > 1024 || digits < 6 ||
	    digits > 8 || code_r == NULL)
		return SP_EINVAL;
	for (i = 0; i < 8; i++)
		msg[i] = (uint8_t)(step >> (56 - 8 * i));
	if (HMAC(EVP_sha1(), key, (int)key_len, msg, sizeof(msg), mac,
	    &mac_len) == NULL || mac_len != 20)
		return SP_EINVAL;
	/* RFC 4226 5.3 dynamic truncation. */
	off = mac[19] & 0x0f;
	bin = (uint32_t)(mac[off] & 0x7f) << 24 | (uint32_t)mac[off + 1] << 16 |
	    (uint32_t)mac[off + 2] << 8 | mac[off + 3];
	*code_r = bin % mod[digits - 6];
	sodium_memzero(mac, sizeof(mac));
	return 0;
}

/* ---- COSE_Key ------------------------------------------------------------ */

static int
cbor_int(const cbor_item_t *it, int64_t *v)
{
	uint64_t u;

	if (!cbor_isa_uint(it) && !cbor_isa_negint(it))
		return -1;
	u = cbor_get_int(it);
	if (u > INT32_MAX)
		return -1;
	*v = cbor_isa_uint(it) ? (int64_t)u : -1 - (int64_t)u;
	return 0;
}

static int
cbor_fixed_bytes(const cbor_item_t *it, uint8_t *out, size_t n)
{
	if (!cbor_isa_bytestring(it) || !cbor_bytestring_is_definite(it) ||
	    cbor_bytestring_length(it) != n)
		return -1;
	memcpy(out, cbor_bytestring_handle(it), n);
	return 0;
}

/*
 * Before libcbor sees it: one definite map of at most 8 pairs whose keys
 * and values are integers or definite byte strings that fit the input.
 * libcbor allocates what a header declares, so a 256-byte key declaring a
 * huge array must never reach it.
 */
static int
cose_shape_ok(const uint8_t *p, size_t len)
{
	size_t i = 1, n, item;

	if (len == 0 || p[0] < 0xa0 || p[0] > 0xa8)
		return 0;
	for (item = 0; item < (size_t)(p[0] - 0xa0) * 2; item++) {
		unsigned major, ai;
		uint64_t arg;

		if (i >= len)
			return 0;
		major = p[i] >> 5;
		ai = p[i] & 0x1f;
		i++;
		if (major > 2)
			return 0;
		if (ai < 24) {
			arg = ai;
		} else if (ai == 24 || ai == 25) {
			n = ai == 24 ? 1 : 2;
			if (len - i < n)
				return 0;
			arg = n == 1 ? p[i] : (uint64_t)p[i] << 8 | p[i + 1];
			i += n;
		} else {
			return 0;       /* longer forms never fit 256 bytes */
		}
		if (major == 2) {
			if (arg > len - i)
				return 0;
			i += (size_t)arg;
		}
	}
	return i == len;
}

int
sp_cose_parse(const uint8_t *cose, size_t len, struct sp_cose_key *k)
{
	struct cbor_load_result res;
	cbor_item_t *m;
	struct cbor_pair *p;
	int64_t kty = 0, alg = 0, crv = 0, key, v;
	int have_x = 0, have_y = 0, rc = SP_EFORMAT;
	size_t i, n;

	memset(k, 0, sizeof(*k));
	if (cose == NULL || len == 0 || len > SP_COSE_MAX ||
	    !cose_shape_ok(cose, len))
		return SP_EFORMAT;
	/* libcbor's nesting is bounded by the input's length (256 bytes). */
	m = cbor_load(cose, len, &res);
	if (m == NULL)
		return SP_EFORMAT;
	if (res.error.code != CBOR_ERR_NONE || res.read != len ||
	    !cbor_isa_map(m) || !cbor_map_is_definite(m) ||
	    (n = cbor_map_size(m)) > 8)
		goto out;
	p = cbor_map_handle(m);
	for (i = 0; i < n; i++) {
		if (cbor_int(p[i].key, &key) != 0)
			goto out;
		switch (key) {
		case 1: case 3: case -1:
			if (cbor_int(p[i].value, &v) != 0)
				goto out;
			*(key == 1 ? &kty : key == 3 ? &alg : &crv) = v;
			break;
		case -2:        /* x, or the Ed25519 key: 32 bytes either way */
			if (have_x++ || cbor_fixed_bytes(p[i].value, k->pk + 1,
			    32) != 0)
				goto out;
			break;
		case -3:
			if (have_y++ || cbor_fixed_bytes(p[i].value, k->pk + 33,
			    32) != 0)
				goto out;
			break;
		default:        /* kid, key_ops...: not needed */
			break;
		}
	}
	if (kty == 2 && alg == SP_COSE_ES256 && crv == 1 && have_x && have_y) {
		k->pk[0] = 0x04;
		k->pk_len = 65;
	} else if (kty == 1 && alg == SP_COSE_EDDSA && crv == 6 && have_x &&
	    !have_y) {
		memmove(k->pk, k->pk + 1, 32);
		k->pk_len = 32;
	} else {
		goto out;
	}
	k->alg = (int)alg;
	rc = 0;
out:
	cbor_decref(&m);
	if (rc != 0)
		memset(k, 0, sizeof(*k));
	return rc;
}

/* ---- clientDataJSON -------------------------------------------------------- */

struct json {
	const uint8_t *p, *end;
};

static void
ws(struct json *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' ||
	    *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

/* A string: *s_r and *n_r are its raw bytes between the quotes, *esc_r whether
 * it had escapes (then the raw bytes are not its value). */
static int
json_string(struct json *j, const uint8_t **s_r, size_t *n_r, int *esc_r)
{
	const uint8_t *s;

	if (j->p >= j->end || *j->p != '"')
		return -1;
	s = ++j->p;
	*esc_r = 0;
	while (j->p < j->end && *j->p != '"') {
		if (*j->p < 0x20)
			return -1;
		if (*j->p == '\\') {
			*esc_r = 1;
			if (++j->p >= j->end)
				return -1;
		}
		j->p++;
	}
	if (j->p >= j->end)
		return -1;
	*s_r = s;
	*n_r = (size_t)(j->p - s);
	j->p++;
	return 0;
}

static int
json_literal(struct json *j, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0)
		return -1;
	j->p += n;
	return 0;
}

struct client_data {
	const uint8_t *type, *challenge, *origin;
	size_t type_len, challenge_len, origin_len;
};

static int
member_is(const uint8_t *k, size_t n, const char *name)
{
	return n == strlen(name) && memcmp(k, name, n) == 0;
}

static int
client_data_parse(const uint8_t *b, size_t len, struct client_data *cd)
{
	struct json j = { b, b + len };
	const uint8_t *k, *v;
	size_t kn, vn;
	int kesc, vesc, first = 1;

	memset(cd, 0, sizeof(*cd));
	ws(&j);
	if (j.p >= j.end || *j.p++ != '{')
		return -1;
	for (;;) {
		ws(&j);
		if (j.p < j.end && *j.p == '}' && first) {
			j.p++;
			break;
		}
		if (json_string(&j, &k, &kn, &kesc) != 0)
			return -1;
		ws(&j);
		if (j.p >= j.end || *j.p++ != ':')
			return -1;
		ws(&j);
		if (j.p < j.end && *j.p == '"') {
			if (json_string(&j, &v, &vn, &vesc) != 0)
				return -1;
			/* A member twice is refused: which one a
			 * browser would honour is not ours to guess. */
			if (!kesc && !vesc && member_is(k, kn, "type")) {
				if (cd->type)
					return -1;
				cd->type = v, cd->type_len = vn;
			} else if (!kesc && !vesc &&
			    member_is(k, kn, "challenge")) {
				if (cd->challenge)
					return -1;
				cd->challenge = v, cd->challenge_len = vn;
			} else if (!kesc && !vesc &&
			    member_is(k, kn, "origin")) {
				if (cd->origin)
					return -1;
				cd->origin = v, cd->origin_len = vn;
			}
		} else if (json_literal(&j, "true") != 0 &&
		    json_literal(&j, "false") != 0) {
			return -1;
		}
		first = 0;
		ws(&j);
		if (j.p < j.end && *j.p == ',') {
			j.p++;
			continue;
		}
		if (j.p < j.end && *j.p == '}') {
			j.p++;
			break;
		}
		return -1;
	}
	ws(&j);
	return j.p == j.end && cd->type && cd->challenge && cd->origin ? 0 : -1;
}

/* ---- assertions ------------------------------------------------------------ */

#define AD_UP 0x01
#define AD_AT 0x40

static int
sig_check(const struct sp_cose_key *k, const uint8_t *msg, size_t len,
    const uint8_t *sig, size_t sig_len)
{
	EVP_PKEY *pkey = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	EVP_MD_CTX *md = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	int ok = 0;

	if (k->alg == SP_COSE_EDDSA) {
		pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, k->pk,
		    32);
	} else {
		if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
		    !OSSL_PARAM_BLD_push_utf8_string(bld,
		    OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
		    !OSSL_PARAM_BLD_push_octet_string(bld,
		    OSSL_PKEY_PARAM_PUB_KEY, k->pk, 65) ||
		    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
		    (pctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) ==
		    NULL || EVP_PKEY_fromdata_init(pctx) <= 0 ||
		    EVP_PKEY_fromdata(pctx, &pkey, EVP_PKEY_PUBLIC_KEY,
		    params) <= 0)
			goto out;
	}
	/* Ed25519 is "pure": no digest; ECDSA hashes with SHA-256. */
	if (pkey == NULL || (md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit(md, NULL, k->alg == SP_COSE_EDDSA ? NULL :
	    EVP_sha256(), NULL, pkey) <= 0)
		goto out;
	ok = EVP_DigestVerify(md, sig, sig_len, msg, len) == 1;
out:
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(pctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	return ok;
}

int
sp_fido_verify(const struct sp_cose_key *k, const char *rp_id,
    const uint8_t challenge[32], const uint8_t *ad, size_t ad_len,
    const uint8_t *cdj, size_t cd_len, const uint8_t *sig, size_t sig_len,
    uint32_t *counter_r)
{
	uint8_t rp_hash[32], msg[SP_FIDO_AUTHDATA_MAX + 32];
	char b64[64], origin[300];
	struct client_data cd;
	int n;

	*counter_r = 0;
	if (k == NULL || k->pk_len == 0 || ad == NULL || ad_len < 37 ||
	    ad_len > SP_FIDO_AUTHDATA_MAX || cdj == NULL || cd_len == 0 ||
	    cd_len > SP_FIDO_CLIENTDATA_MAX || sig == NULL || sig_len == 0 ||
	    sig_len > 80 || client_data_parse(cdj, cd_len, &cd) != 0)
		return SP_FIDO_EFORMAT;
	/* An assertion never carries attested credential data. */
	if (ad[32] & AD_AT)
		return SP_FIDO_EFORMAT;
	if (cd.type_len != 12 || memcmp(cd.type, "webauthn.get", 12) != 0)
		return SP_FIDO_ETYPE;
	sodium_bin2base64(b64, sizeof(b64), challenge, 32,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	if (cd.challenge_len != strlen(b64) ||
	    sodium_memcmp(cd.challenge, b64, cd.challenge_len) != 0)
		return SP_FIDO_ECHALLENGE;
	n = snprintf(origin, sizeof(origin), "https://%s", rp_id);
	if (n < 0 || (size_t)n >= sizeof(origin) ||
	    cd.origin_len != (size_t)n || memcmp(cd.origin, origin, n) != 0)
		return SP_FIDO_EORIGIN;
	SHA256((const uint8_t *)rp_id, strlen(rp_id), rp_hash);
	if (memcmp(ad, rp_hash, 32) != 0)
		return SP_FIDO_ERPID;
	if (!(ad[32] & AD_UP))
		return SP_FIDO_EFLAGS;
	memcpy(msg, ad, ad_len);
	SHA256(cdj, cd_len, msg + ad_len);
	if (!sig_check(k, msg, ad_len + 32, sig, sig_len))
		return SP_FIDO_ESIG;
	*counter_r = (uint32_t)ad[33] << 24 | (uint32_t)ad[34] << 16 |
	    (uint32_t)ad[35] << 8 | ad[36];
	return SP_FIDO_OK;
}

const char *
sp_fido_strerror(int rc)
{
	static const char *const s[] = {
		"ok", "assertion malformed", "wrong relying party",
		"user presence not asserted", "not a webauthn.get assertion",
		"wrong challenge", "wrong origin", "signature does not verify",
	};

	return rc >= 0 && rc <= SP_FIDO_ESIG ? s[rc] : "unknown";
}
