/*
 * Second factors end to end: the real sealpost-server on 127.0.0.1, the
 * real protocol client, and an independent software FIDO2 authenticator
 * written here with OpenSSL (ES256 and Ed25519): it builds
 * authenticatorData and clientDataJSON by the WebAuthn rules and signs
 * them, sharing no code with the server's verifier.  TOTP codes are
 * computed here with OpenSSL's HMAC, not with the server's function.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <sodium.h>

#include "crypto/envelope.h"
#include "tests/sync/harness.h"
#include "tests/unit.h"

#define RP "example.org"

static struct srv S;

/* ---- the software authenticator ---------------------------------------------- */

struct authn {
	EVP_PKEY *key;
	int ed;                 /* Ed25519, else P-256 */
	uint8_t cred[16];
	uint8_t cose[80];
	size_t cose_len;
	uint32_t counter;
};

static int
authn_new(struct authn *a, int ed)
{
	uint8_t pub[65];
	size_t n = sizeof(pub);

	memset(a, 0, sizeof(*a));
	a->ed = ed;
	randombytes_buf(a->cred, sizeof(a->cred));
	a->key = ed ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519") :
	    EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (a->key == NULL)
		return -1;
	if (ed) {
		/* {1: 1 (OKP), 3: -8 (EdDSA), -1: 6 (Ed25519), -2: x} */
		static const uint8_t h[] = { 0xa4, 0x01, 0x01, 0x03, 0x27,
		    0x20, 0x06, 0x21, 0x58, 0x20 };

		n = 32;
		if (EVP_PKEY_get_raw_public_key(a->key, pub, &n) != 1)
			return -1;
		memcpy(a->cose, h, sizeof(h));
		memcpy(a->cose + sizeof(h), pub, 32);
		a->cose_len = sizeof(h) + 32;
	} else {
		/* {1: 2 (EC2), 3: -7 (ES256), -1: 1 (P-256), -2: x, -3: y} */
		static const uint8_t h[] = { 0xa5, 0x01, 0x02, 0x03, 0x26,
		    0x20, 0x01, 0x21, 0x58, 0x20 };

		if (EVP_PKEY_get_octet_string_param(a->key,
		    OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub), &n) != 1 ||
		    n != 65)
			return -1;
		memcpy(a->cose, h, sizeof(h));
		memcpy(a->cose + 10, pub + 1, 32);
		a->cose[42] = 0x22;
		a->cose[43] = 0x58;
		a->cose[44] = 0x20;
		memcpy(a->cose + 45, pub + 33, 32);
		a->cose_len = 77;
	}
	return 0;
}

struct assertion {
	uint8_t ad[37];
	char cd[400];
	uint8_t sig[80];
	size_t sig_len;
};

/* An assertion for rp over chal, with the counter given. */
static int
authn_sign(struct authn *a, const char *rp, const uint8_t chal[32],
    uint32_t counter, struct assertion *as)
{
	char b64[64];
	uint8_t msg[37 + 32];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok;

	SHA256((const uint8_t *)rp, strlen(rp), as->ad);
	as->ad[32] = 0x01 | 0x04;       /* UP, UV */
	as->ad[33] = (uint8_t)(counter >> 24);
	as->ad[34] = (uint8_t)(counter >> 16);
	as->ad[35] = (uint8_t)(counter >> 8);
	as->ad[36] = (uint8_t)counter;
	sodium_bin2base64(b64, sizeof(b64), chal, 32,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	snprintf(as->cd, sizeof(as->cd), "{\"type\":\"webauthn.get\","
	    "\"challenge\":\"%s\",\"origin\":\"https://%s\","
	    "\"crossOrigin\":false}", b64, rp);
	memcpy(msg, as->ad, 37);
	SHA256((const uint8_t *)as->cd, strlen(as->cd), msg + 37);
	as->sig_len = sizeof(as->sig);
	ok = md != NULL && EVP_DigestSignInit(md, NULL, a->ed ? NULL :
	    EVP_sha256(), NULL, a->key) == 1 &&
	    EVP_DigestSign(md, as->sig, &as->sig_len, msg, sizeof(msg)) == 1;
	EVP_MD_CTX_free(md);
	return ok ? 0 : -1;
}

/* ---- TOTP, independently ------------------------------------------------------- */

static uint32_t
totp_at(const uint8_t *key, size_t n, uint64_t step)
{
	uint8_t msg[8], mac[20];
	unsigned len = 0, off, i;

	for (i = 0; i < 8; i++)
		msg[i] = (uint8_t)(step >> (56 - 8 * i));
	HMAC(EVP_sha1(), key, (int)n, msg, 8, mac, &len);
	off = mac[19] & 15;
	return ((uint32_t)(mac[off] & 0x7f) << 24 | (uint32_t)mac[off + 1] << 16 |
	    (uint32_t)mac[off + 2] << 8 | mac[off + 3]) % 1000000;
}

/* ---- protocol helpers ------------------------------------------------------------- */

/* PRELOGIN + LOGIN with the password; the reply (LOGIN_OK or
 * SECOND_FACTOR or ERROR) is the caller's. */
static struct sp_client_msg *
login_password(sp_client *c, struct acct *a, const char *device)
{
	struct sp_login_keys *lk = NULL;
	struct sp_kdf_params p;
	struct sp_frame f;
	struct sp_client_msg *m;
	uint8_t chal[32], sig[64];

	sp_frame_init(&f, SP_MSG_PRELOGIN, 0);
	sp_frame_set_text(&f, SP_F_ADDRESS, a->address);
	if ((m = call(c, &f)) == NULL || reply_code(m) != 0)
		return m;
	memcpy(chal, m->f.f[SP_F_CHALLENGE].ptr, 32);
	if (sp_kdf_params_decode(m->f.f[SP_F_KDF_PARAMS].ptr, &p) != 0 ||
	    sp_kdf_derive(a->password, strlen(a->password), &p, &lk) != 0 ||
	    sp_kdf_sign_challenge(lk, chal, 32, sig) != 0) {
		sp_client_msg_free(m);
		sp_login_keys_free(lk);
		return NULL;
	}
	sp_client_msg_free(m);
	sp_login_keys_free(lk);
	sp_frame_init(&f, SP_MSG_LOGIN, 0);
	sp_frame_set_text(&f, SP_F_ADDRESS, a->address);
	sp_frame_set_bytes(&f, SP_F_CHALLENGE, chal, 32);
	sp_frame_set_bytes(&f, SP_F_SIGNATURE, sig, 64);
	sp_frame_set_text(&f, SP_F_DEVICE, device);
	return call(c, &f);
}

/* LOGIN up to SECOND_FACTOR; its challenge in chal.  0 or -1. */
static int
pending(sp_client *c, struct acct *a, uint8_t chal[32])
{
	struct sp_client_msg *m = login_password(c, a, "new laptop");
	int ok = m && m->f.type == SP_MSG_SECOND_FACTOR;

	if (ok)
		memcpy(chal, m->f.f[SP_F_CHALLENGE].ptr, 32);
	else
		fprintf(stderr, "# expected SECOND_FACTOR, got %u code %d\n",
		    m ? m->f.type : 0, reply_code(m));
	sp_client_msg_free(m);
	return ok ? 0 : -1;
}

/* LOGIN_2FA with an assertion; the reply type or error code. */
static int
send_fido(sp_client *c, const uint8_t chal[32], const uint8_t *cred,
    struct assertion *as)
{
	struct sp_frame f;
	struct sp_client_msg *m;
	int rc;

	sp_frame_init(&f, SP_MSG_LOGIN_2FA, 0);
	sp_frame_set_bytes(&f, SP_F_CHALLENGE, chal, 32);
	sp_frame_set_uint(&f, SP_F_FACTOR, SP_FACTOR_FIDO2);
	sp_frame_set_bytes(&f, SP_F_FACTOR_ID, cred, 16);
	sp_frame_set_bytes(&f, SP_F_AUTH_DATA, as->ad, 37);
	sp_frame_set_bytes(&f, SP_F_CLIENT_DATA, as->cd, strlen(as->cd));
	sp_frame_set_bytes(&f, SP_F_ASSERTION, as->sig, as->sig_len);
	m = call(c, &f);
	rc = m == NULL ? -1 : m->f.type == SP_MSG_LOGIN_OK ? 0 : reply_code(m);
	sp_client_msg_free(m);
	return rc;
}

static int
send_otp(sp_client *c, const uint8_t chal[32], unsigned kind, const char *otp)
{
	struct sp_frame f;
	struct sp_client_msg *m;
	int rc;

	sp_frame_init(&f, SP_MSG_LOGIN_2FA, 0);
	sp_frame_set_bytes(&f, SP_F_CHALLENGE, chal, 32);
	sp_frame_set_uint(&f, SP_F_FACTOR, kind);
	sp_frame_set_text(&f, SP_F_OTP, otp);
	m = call(c, &f);
	rc = m == NULL ? -1 : m->f.type == SP_MSG_LOGIN_OK ? 0 : reply_code(m);
	sp_client_msg_free(m);
	return rc;
}

static int
add_fido(sp_client *c, struct authn *a)
{
	struct sp_frame f;
	struct sp_client_msg *m;
	int rc;

	sp_frame_init(&f, SP_MSG_FACTOR_ADD, 0);
	sp_frame_set_uint(&f, SP_F_FACTOR, SP_FACTOR_FIDO2);
	sp_frame_set_bytes(&f, SP_F_FACTOR_ID, a->cred, 16);
	sp_frame_set_bytes(&f, SP_F_FACTOR_KEY, a->cose, a->cose_len);
	m = call(c, &f);
	rc = m == NULL ? -1 : reply_code(m);
	sp_client_msg_free(m);
	return rc;
}

static sp_client *
logged_in(struct acct *a, const char *addr)
{
	sp_client *c = srv_connect(&S, "factors-test");
	int code;

	if (c == NULL)
		return NULL;
	if (addr && acct_register(c, a, addr, NULL, &code) != SP_MSG_OK) {
		sp_client_close(c);
		return NULL;
	}
	if (acct_login(c, a) != 0) {
		sp_client_close(c);
		return NULL;
	}
	return c;
}

/* ---- the cases --------------------------------------------------------------------- */

static struct acct A;   /* FIDO2, then TOTP and recovery codes */

static void
t_fido(void)
{
	struct authn es, ed, stranger;
	struct assertion as;
	uint8_t chal[32], other[32];
	sp_client *c, *c2;

	CHECK(authn_new(&es, 0) == 0 && authn_new(&ed, 1) == 0 &&
	    authn_new(&stranger, 0) == 0);
	c = logged_in(&A, "fido@example.org");
	CHECK(c != NULL);
	if (c == NULL)
		return;
	CHECK(add_fido(c, &es) == 0);
	CHECK(add_fido(c, &ed) == 0);
	CHECK(add_fido(c, &es) == SP_PERR_EXISTS);
	sp_client_close(c);

	c2 = srv_connect(&S, "factors-test");
	CHECK(c2 != NULL);
	/* A valid ES256 assertion. */
	CHECK(pending(c2, &A, chal) == 0);
	CHECK(authn_sign(&es, RP, chal, 1, &as) == 0);
	CHECK(send_fido(c2, chal, es.cred, &as) == 0);
	sp_client_close(c2);

	c2 = srv_connect(&S, "factors-test");
	/* A wrong challenge: signed over another one. */
	CHECK(pending(c2, &A, chal) == 0);
	randombytes_buf(other, 32);
	CHECK(authn_sign(&es, RP, other, 2, &as) == 0);
	CHECK(send_fido(c2, chal, es.cred, &as) == SP_PERR_DENIED);
	/* A wrong relying party id (a phishing site's). */
	CHECK(authn_sign(&es, "examp1e.org", chal, 3, &as) == 0);
	CHECK(send_fido(c2, chal, es.cred, &as) == SP_PERR_DENIED);
	/* An unknown credential. */
	CHECK(authn_sign(&stranger, RP, chal, 1, &as) == 0);
	CHECK(send_fido(c2, chal, stranger.cred, &as) == SP_PERR_DENIED);
	/* Three failures end the pending login: the right one now fails. */
	CHECK(authn_sign(&es, RP, chal, 4, &as) == 0);
	CHECK(send_fido(c2, chal, es.cred, &as) == SP_PERR_DENIED);
	/* A replayed counter (1 was used) and a backwards one. */
	CHECK(pending(c2, &A, chal) == 0);
	CHECK(authn_sign(&es, RP, chal, 1, &as) == 0);
	CHECK(send_fido(c2, chal, es.cred, &as) == SP_PERR_DENIED);
	CHECK(authn_sign(&es, RP, chal, 0, &as) == 0);
	CHECK(send_fido(c2, chal, es.cred, &as) == SP_PERR_DENIED);
	/* Ed25519, counter 0 on a key that never counts: accepted. */
	CHECK(authn_sign(&ed, RP, chal, 0, &as) == 0);
	CHECK(send_fido(c2, chal, ed.cred, &as) == 0);
	sp_client_close(c2);
	/* After a valid login the same assertion cannot be replayed: the
	 * challenge was for that login only. */
	c2 = srv_connect(&S, "factors-test");
	CHECK(send_fido(c2, chal, ed.cred, &as) == SP_PERR_DENIED);
	sp_client_close(c2);
	EVP_PKEY_free(es.key);
	EVP_PKEY_free(ed.key);
	EVP_PKEY_free(stranger.key);
}

static void
t_totp(void)
{
	static const uint8_t secret[20] = "sealpost-totp-secret";
	struct acct b;
	struct sp_frame f;
	struct sp_client_msg *m;
	uint8_t chal[32];
	char code[8];
	uint64_t step = (uint64_t)time(NULL) / 30;
	sp_client *c;

	memset(&b, 0, sizeof(b));
	c = logged_in(&b, "totp@example.org");
	CHECK(c != NULL);
	if (c == NULL)
		return;
	/* A wrong code at enrolment: refused, nothing stored. */
	snprintf(code, sizeof(code), "%06u", (totp_at(secret, 20, step) + 1) %
	    1000000);
	sp_frame_init(&f, SP_MSG_FACTOR_ADD, 0);
	sp_frame_set_uint(&f, SP_F_FACTOR, SP_FACTOR_TOTP);
	sp_frame_set_bytes(&f, SP_F_FACTOR_KEY, secret, 20);
	sp_frame_set_text(&f, SP_F_OTP, code);
	m = call(c, &f);
	CHECK(reply_code(m) == SP_PERR_INVALID);
	sp_client_msg_free(m);
	snprintf(code, sizeof(code), "%06u", totp_at(secret, 20, step));
	sp_frame_set_text(&f, SP_F_OTP, code);
	m = call(c, &f);
	CHECK(m && m->f.type == SP_MSG_OK);
	sp_client_msg_free(m);
	sp_client_close(c);

	/* The code used at enrolment counts as used; the next step's code
	 * (within the window) logs in once, and only once. */
	c = srv_connect(&S, "factors-test");
	CHECK(pending(c, &b, chal) == 0);
	CHECK(send_otp(c, chal, SP_FACTOR_TOTP, code) == SP_PERR_DENIED);
	snprintf(code, sizeof(code), "%06u", totp_at(secret, 20, step + 1));
	CHECK(send_otp(c, chal, SP_FACTOR_TOTP, code) == 0);
	sp_client_close(c);
	c = srv_connect(&S, "factors-test");
	CHECK(pending(c, &b, chal) == 0);
	CHECK(send_otp(c, chal, SP_FACTOR_TOTP, code) == SP_PERR_DENIED);
	sp_client_close(c);
	acct_free(&b);
}

static void
t_recovery(void)
{
	struct sp_frame f;
	struct sp_client_msg *m;
	const struct sp_frame_item *it;
	char codes[10][16], mangled[16];
	uint8_t chal[32];
	size_t n = 0, i;
	sp_client *c;

	/* A logs in with a security key first (FIDO2 passed above); a
	 * password alone now gets SECOND_FACTOR, so use a recovery code
	 * of a fresh set made on an authenticated connection.  The
	 * session from t_fido's LOGIN_OK is not kept, so RESUME is not an
	 * option: make the codes with an account that has none yet. */
	struct acct r;

	memset(&r, 0, sizeof(r));
	c = logged_in(&r, "recovery@example.org");
	CHECK(c != NULL);
	if (c == NULL)
		return;
	sp_frame_init(&f, SP_MSG_RECOVERY_NEW, 0);
	m = call(c, &f);
	CHECK(m && m->f.type == SP_MSG_RECOVERY_CODES);
	it = m ? sp_frame_array(&m->f, SP_F_CODES, &n) : NULL;
	CHECK(n == 10);
	for (i = 0; i < n && i < 10; i++)
		snprintf(codes[i], sizeof(codes[i]), "%.*s", (int)it[i].len,
		    (const char *)it[i].ptr);
	sp_client_msg_free(m);
	/* Recovery codes alone do not make a second factor required. */
	sp_client_close(c);
	c = srv_connect(&S, "factors-test");
	m = login_password(c, &r, "x");
	CHECK(m && m->f.type == SP_MSG_LOGIN_OK);
	sp_client_msg_free(m);
	{
		struct authn k;

		CHECK(authn_new(&k, 1) == 0);
		CHECK(add_fido(c, &k) == 0);
		EVP_PKEY_free(k.key);
	}
	sp_client_close(c);
	/* Each code works once; case and dashes do not matter. */
	c = srv_connect(&S, "factors-test");
	CHECK(pending(c, &r, chal) == 0);
	CHECK(send_otp(c, chal, SP_FACTOR_RECOVERY, codes[0]) == 0);
	sp_client_close(c);
	c = srv_connect(&S, "factors-test");
	CHECK(pending(c, &r, chal) == 0);
	CHECK(send_otp(c, chal, SP_FACTOR_RECOVERY, codes[0]) ==
	    SP_PERR_DENIED);
	for (i = 0; codes[1][i]; i++)
		mangled[i] = codes[1][i] == '-' ? ' ' :
		    (char)(codes[1][i] >= 'a' && codes[1][i] <= 'z' ?
		    codes[1][i] - 32 : codes[1][i]);
	mangled[i] = 0;
	CHECK(send_otp(c, chal, SP_FACTOR_RECOVERY, mangled) == 0);
	/* Removal needs the fresh second factor this connection passed. */
	sp_frame_init(&f, SP_MSG_FACTORS, 0);
	m = call(c, &f);
	it = m ? sp_frame_array(&m->f, SP_F_FACTORS, &n) : NULL;
	CHECK(m && m->f.type == SP_MSG_FACTORS_OK && n == 9);
	sp_client_msg_free(m);
	sp_frame_init(&f, SP_MSG_FACTOR_REMOVE, 0);
	sp_frame_set_uint(&f, SP_F_FACTOR, SP_FACTOR_RECOVERY);
	m = call(c, &f);
	CHECK(m && m->f.type == SP_MSG_OK);
	sp_client_msg_free(m);
	sp_client_close(c);
	/* A RESUMEd connection has not: AUTH. */
	c = srv_connect(&S, "factors-test");
	sp_frame_init(&f, SP_MSG_RESUME, 0);
	sp_frame_set_bytes(&f, SP_F_TOKEN, r.token, 32);
	m = call(c, &f);
	CHECK(m && m->f.type == SP_MSG_RESUME_OK);
	sp_client_msg_free(m);
	sp_frame_init(&f, SP_MSG_FACTOR_REMOVE, 0);
	sp_frame_set_uint(&f, SP_F_FACTOR, SP_FACTOR_TOTP);
	m = call(c, &f);
	CHECK(reply_code(m) == SP_PERR_AUTH);
	sp_client_msg_free(m);
	sp_client_close(c);
	acct_free(&r);
}

/* Reads A's log and opens what it can with ks: the event types seen. */
static int
events_of(sp_client *c, const sp_keyset *ks, unsigned seen[16])
{
	struct sp_frame f;
	struct sp_client_msg *m;
	const struct sp_frame_item *it;
	size_t n, i;
	int opened = 0;

	sp_frame_init(&f, SP_MSG_READ, 0);
	sp_frame_set_uint(&f, SP_F_SEQ, 1);
	if ((m = call(c, &f)) == NULL || m->f.type != SP_MSG_RECORDS) {
		sp_client_msg_free(m);
		return -1;
	}
	it = sp_frame_array(&m->f, SP_F_RECORDS, &n);
	for (i = 0; i < n; i++) {
		sp_envelope *e;
		uint8_t buf[512];
		size_t len;

		if (sp_envelope_open(it[i].ptr, it[i].len, ks, &e) != 0)
			continue;
		len = (size_t)sp_envelope_content_length(e);
		if (sp_envelope_kind(e) == SP_ENVELOPE_KIND_CHANGE &&
		    len >= 12 && len <= sizeof(buf) &&
		    sp_envelope_read_all(e, buf, len) == 0 && buf[0] == 1 &&
		    buf[1] == 64 && buf[2] < 16) {
			seen[buf[2]]++;
			opened++;
		}
		sp_envelope_close(e);
	}
	sp_client_msg_free(m);
	return opened;
}

/* 1 if a regular file under dir holds needle (sockets and FIFOs are
 * skipped: opening a FIFO would wait for a writer). */
static int
file_has(const char *dir, const char *needle)
{
	static char buf[1 << 20];
	char path[600];
	DIR *d = opendir(dir);
	struct dirent *de;
	struct stat st;
	int found = 0;

	while (d && !found && (de = readdir(d)) != NULL) {
		FILE *fp;
		size_t n, k = strlen(needle), keep = 0;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (lstat(path, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			found = file_has(path, needle);
			continue;
		}
		if (!S_ISREG(st.st_mode) || (fp = fopen(path, "rb")) == NULL)
			continue;
		/* Windows overlap by k - 1 bytes so no match is split. */
		while (!found &&
		    (n = fread(buf + keep, 1, sizeof(buf) - keep, fp)) > 0) {
			n += keep;
			found = memmem(buf, n, needle, k) != NULL;
			keep = n >= k ? k - 1 : n;
			memmove(buf, buf + n - keep, keep);
		}
		fclose(fp);
	}
	if (d)
		closedir(d);
	return found;
}

static void
t_events(void)
{
	struct acct o;
	unsigned seen[16] = { 0 }, none[16] = { 0 };
	struct sp_frame f;
	struct sp_client_msg *m;
	uint8_t chal[32];
	sp_client *c;
	struct authn k;

	/* An account with a key, logged in through it. */
	memset(&o, 0, sizeof(o));
	c = logged_in(&o, "events@example.org");
	CHECK(c != NULL);
	if (c == NULL)
		return;
	CHECK(authn_new(&k, 0) == 0);
	CHECK(add_fido(c, &k) == 0);
	sp_client_close(c);
	c = srv_connect(&S, "factors-test");
	CHECK(pending(c, &o, chal) == 0);
	{
		struct assertion as;

		CHECK(authn_sign(&k, RP, chal, 5, &as) == 0);
		CHECK(send_fido(c, chal, k.cred, &as) == 0);
	}
	/* The account reads its events: logins, the key added. */
	CHECK(events_of(c, o.ks, seen) >= 3);
	CHECK(seen[1] >= 2);     /* two logins */
	CHECK(seen[2] == 1);     /* a factor added */
	/* Another account holding the same records cannot open them. */
	CHECK(events_of(c, A.ks, none) == 0);
	/* A kind-3 record cannot be delivered to another account. */
	{
		static const uint8_t fake[] = { 1, 3, 1, 16, 1 };

		sp_frame_init(&f, SP_MSG_DELIVER, 0);
		sp_frame_set_text(&f, SP_F_RECIPIENT, "events@example.org");
		(void)sp_frame_add_item(&f, SP_F_RECORDS, fake, sizeof(fake), 0);
		m = call(c, &f);
		CHECK(reply_code(m) == SP_PERR_INVALID);
		sp_client_msg_free(m);
	}
	sp_client_close(c);
	/* Not in the clear anywhere in the server's files. */
	CHECK(!file_has(S.data, "security key (FIDO2) was added"));
	EVP_PKEY_free(k.key);
	acct_free(&o);
}

static void
t_revoke_cuts(void)
{
	struct acct v;
	struct sp_frame f;
	struct sp_client_msg *m = NULL;
	struct timeval t0, t1;
	sp_client *c1, *c2;
	uint8_t sid[16];

	memset(&v, 0, sizeof(v));
	c1 = logged_in(&v, "revoke@example.org");
	CHECK(c1 != NULL);
	memcpy(sid, v.session_id, 16);
	c2 = c1 ? logged_in(&v, NULL) : NULL;
	CHECK(c2 != NULL);
	if (c2 == NULL)
		goto out;
	sp_frame_init(&f, SP_MSG_SUBSCRIBE, 0);
	sp_frame_set_uint(&f, SP_F_SEQ, 1);
	m = call(c2, &f);
	sp_client_msg_free(m);
	/* c1 revokes c2's session (the second login's id is in v). */
	gettimeofday(&t0, NULL);
	sp_frame_init(&f, SP_MSG_REVOKE, 0);
	sp_frame_set_bytes(&f, SP_F_SESSION_ID, v.session_id, 16);
	m = call(c1, &f);
	CHECK(m && m->f.type == SP_MSG_OK);
	sp_client_msg_free(m);
	m = NULL;
	/* The subscription's catch-up (the login events) may come first. */
	while (sp_client_next_push(c2, 5000, &m) == 0 &&
	    m->f.type == SP_MSG_PUSH) {
		sp_client_msg_free(m);
		m = NULL;
	}
	CHECK(m != NULL && reply_code(m) == SP_PERR_AUTH);
	sp_client_msg_free(m);
	sp_client_service(c2, 200);
	gettimeofday(&t1, NULL);
	CHECK(sp_client_is_closed(c2));
	printf("# revoked websocket closed after %.1f ms\n",
	    (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_usec - t0.tv_usec) / 1e3);
	(void)sid;
out:
	if (c2)
		sp_client_close(c2);
	if (c1)
		sp_client_close(c1);
	acct_free(&v);
}

int
main(void)
{
	if (sodium_init() < 0 || srv_start(&S, 1,
	    "--login-failures-per-account=1000 --login-failures-per-ip=1000 "
	    "--rp-id=" RP " --open-registration=yes --security-events=yes") != 0) {
		printf("Bail out! server did not start\n");
		return 1;
	}
	memset(&A, 0, sizeof(A));
	RUN(t_fido);
	RUN(t_totp);
	RUN(t_recovery);
	RUN(t_events);
	RUN(t_revoke_cuts);
	acct_free(&A);
	srv_cleanup(&S);
	return unit_done();
}
