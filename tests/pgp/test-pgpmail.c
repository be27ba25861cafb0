/*
 * client-core/pgpmail.h and pgpkeys.h without a server: the armor and
 * Autocrypt parsers, message kinds, the WKD hash (the draft's own
 * example), and a PGP/MIME round trip through sp_pgpmail_encrypt and
 * sp_pgpmail_open with keys made by gpg.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client-core/pgpkeys.h"
#include "client-core/pgpmail.h"
#include "tests/unit.h"

#define S(x) (const uint8_t *)(x), strlen(x)
#define A(x) (x), strlen(x)

static void
t_armor(void)
{
	const char *m = "hello\n-----BEGIN PGP MESSAGE-----\n\nabc\n"
	    "-----END PGP MESSAGE-----\nbye\n";
	const char *sgn = "-----BEGIN PGP SIGNED MESSAGE-----\r\nHash: x\r\n"
	    "\r\nhi\r\n-----BEGIN PGP SIGNATURE-----\r\n\r\nzz\r\n"
	    "-----END PGP SIGNATURE-----\r\n";
	size_t b, e, i, n = strlen(m);

	CHECK(sp_armor_find(S(m), &b, &e) == SP_ARMOR_MESSAGE);
	CHECK(b == 6 && e == n - 4);
	CHECK(sp_armor_find(S(sgn), &b, &e) == SP_ARMOR_SIGNED);
	CHECK(b == 0 && e == strlen(sgn));
	/* Not at a line start, unterminated, or cut anywhere: none. */
	CHECK(sp_armor_find(S("x -----BEGIN PGP MESSAGE-----\n"
	    "-----END PGP MESSAGE-----\n"), &b, &e) == SP_ARMOR_NONE);
	CHECK(sp_armor_find(S("-----BEGIN PGP MESSAGE-----\nabc\n"), &b,
	    &e) == SP_ARMOR_NONE);
	for (i = 0; i < n - 4 - 25; i++)
		CHECK(sp_armor_find((const uint8_t *)m, i, &b, &e) ==
		    SP_ARMOR_NONE);
	CHECK(sp_armor_find((const uint8_t *)m, n - 4, &b, &e) ==
	    SP_ARMOR_MESSAGE);
}

static void
t_autocrypt(void)
{
	struct sp_autocrypt ac;
	uint8_t key[300];
	char *h = NULL, *v;
	size_t i;

	CHECK_RC(sp_autocrypt_parse(A("addr=A@X.org; keydata=AAEC"), &ac), 0);
	CHECK(strcmp(ac.addr, "a@x.org") == 0 && ac.keydata_len == 3 &&
	    ac.keydata[2] == 2 && !ac.prefer_mutual);
	sp_autocrypt_finish(&ac);
	CHECK_RC(sp_autocrypt_parse(A("addr=a@x.org; prefer-encrypt=mutual;"
	    " _ignored=1; keydata=AA\r\n EC"), &ac), 0);
	CHECK(ac.prefer_mutual && ac.keydata_len == 3);
	sp_autocrypt_finish(&ac);
	/* Unknown critical attribute, missing or doubled parts. */
	CHECK_RC(sp_autocrypt_parse(A("addr=a@x.org; type=2; keydata=AAEC"),
	    &ac), SP_EFORMAT);
	CHECK_RC(sp_autocrypt_parse(A("addr=a@x.org"), &ac), SP_EFORMAT);
	CHECK_RC(sp_autocrypt_parse(A("keydata=AAEC"), &ac), SP_EFORMAT);
	CHECK_RC(sp_autocrypt_parse(A("addr=a@x.org; addr=b@x.org; "
	    "keydata=AAEC"), &ac), SP_EFORMAT);
	CHECK_RC(sp_autocrypt_parse(A("addr=a@x.org; keydata=!!!"), &ac),
	    SP_EFORMAT);
	CHECK_RC(sp_autocrypt_parse(A("addr=not-an-address; keydata=AAEC"),
	    &ac), SP_EFORMAT);
	/* What we write, we read (after unfolding as a header would be). */
	for (i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)i;
	CHECK_RC(sp_autocrypt_header("Me <Me@X.org>", key, sizeof(key), &h),
	    0);
	CHECK(h && strncmp(h, "Autocrypt: addr=me@x.org; keydata=", 34) == 0);
	v = h ? strchr(h, ':') + 1 : NULL;
	if (v) {
		CHECK(strstr(h, "\r\n\r\n") == NULL);
		CHECK_RC(sp_autocrypt_parse(v, strlen(v), &ac), 0);
		CHECK(ac.keydata_len == sizeof(key) &&
		    memcmp(ac.keydata, key, sizeof(key)) == 0);
		sp_autocrypt_finish(&ac);
	}
	free(h);
}

static void
t_peek(void)
{
	struct sp_pgpmail_peek p;

	CHECK_RC(sp_pgpmail_peek(S("From: A <a@x.org>\r\nContent-Type: "
	    "multipart/encrypted; boundary=b;\r\n protocol=\"application/"
	    "pgp-encrypted\"\r\n\r\n--b--\r\n"), &p), 0);
	CHECK(p.kind == SP_PGPMAIL_MIME_ENCRYPTED);
	CHECK(strcmp(p.from, "a@x.org") == 0 && !p.has_outcome_field);
	sp_pgpmail_peek_finish(&p);
	CHECK_RC(sp_pgpmail_peek(S("Content-Type: multipart/signed; "
	    "boundary=b; protocol=application/pgp-signature\r\n\r\n"), &p), 0);
	CHECK(p.kind == SP_PGPMAIL_MIME_SIGNED);
	sp_pgpmail_peek_finish(&p);
	CHECK_RC(sp_pgpmail_peek(S("Subject: x\r\nx-sealpost-pgp: forged\r\n"
	    "\r\n-----BEGIN PGP MESSAGE-----\r\nx\r\n-----END PGP MESSAGE-----"
	    "\r\n"), &p), 0);
	CHECK(p.kind == SP_PGPMAIL_INLINE_ENCRYPTED && p.has_outcome_field);
	sp_pgpmail_peek_finish(&p);
	/* Armor in an HTML part is not inline PGP; no header at all. */
	CHECK_RC(sp_pgpmail_peek(S("Content-Type: text/html\r\n\r\n"
	    "-----BEGIN PGP MESSAGE-----\r\nx\r\n-----END PGP MESSAGE-----"
	    "\r\n"), &p), 0);
	CHECK(p.kind == SP_PGPMAIL_PLAIN);
	sp_pgpmail_peek_finish(&p);
	CHECK_RC(sp_pgpmail_peek(S(""), &p), 0);
	CHECK(p.kind == SP_PGPMAIL_PLAIN && p.from[0] == 0);
	sp_pgpmail_peek_finish(&p);
	/* An Autocrypt header for another address than From is ignored. */
	CHECK_RC(sp_pgpmail_peek(S("From: a@x.org\r\nAutocrypt: addr=b@x.org;"
	    " keydata=AAEC\r\n\r\n"), &p), 0);
	CHECK(p.autocrypt == NULL);
	sp_pgpmail_peek_finish(&p);
	CHECK_RC(sp_pgpmail_peek(S("From: a@x.org\r\nAutocrypt: addr=a@x.org;"
	    " keydata=AAEC\r\n\r\n"), &p), 0);
	CHECK(p.autocrypt != NULL);
	sp_pgpmail_peek_finish(&p);
}

static void
t_wkd_hash(void)
{
	char h[33], url[512];

	/* draft-koch-openpgp-webkey-service, section 3.1. */
	sp_pgpkeys_wkd_hash("Joe.Doe", 7, h);
	CHECK(strcmp(h, "iy9q119eutrkn8s1mk4r39qejnbu3n5q") == 0);
	CHECK_RC(sp_pgpkeys_wkd_url("Joe.Doe@Example.ORG", NULL, url,
	    sizeof(url)), 0);
	CHECK(strcmp(url, "https://openpgpkey.example.org/.well-known/"
	    "openpgpkey/example.org/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q"
	    "?l=joe.doe") == 0);
	CHECK_RC(sp_pgpkeys_wkd_url("nope", NULL, url, sizeof(url)),
	    SP_EINVAL);
}

/* Sender and recipient keys made by gpg; a message goes out through
 * sp_pgpmail_encrypt and comes back through sp_pgpmail_open. */
static void
t_roundtrip(void)
{
	const char *msg = "From: Ann <ann@x.org>\r\nTo: bob@y.org\r\n"
	    "Subject: hi\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
	    "secret line\r\n";
	struct sp_pgpmail_result res;
	struct sp_pgp_buf rcpts[2], signer;
	unsigned char *ann_sec = NULL, *bob_sec = NULL, *ann_pub = NULL,
	    *bob_pub = NULL, *eve_sec = NULL, *eve_pub = NULL;
	size_t as, bs, ap, bp, es, ep, out_len = 0, srv_len = 0;
	uint8_t *out = NULL, *srv = NULL;
	sp_pgp *pgp = NULL;

	CHECK_RC(sp_pgp_create(&pgp), 0);
	if (pgp == NULL)
		return;
	CHECK_RC(sp_pgp_key_generate(pgp, "Ann <ann@x.org>", 0, 0, &ann_sec,
	    &as), 0);
	CHECK_RC(sp_pgp_key_generate(pgp, "Bob <bob@y.org>", 0, 0, &bob_sec,
	    &bs), 0);
	CHECK_RC(sp_pgp_key_generate(pgp, "Eve <ann@x.org>", 0, 0, &eve_sec,
	    &es), 0);
	CHECK_RC(sp_pgp_key_import(pgp, ann_sec, as, 0, &ann_pub, &ap, NULL,
	    NULL), 0);
	CHECK_RC(sp_pgp_key_import(pgp, bob_sec, bs, 0, &bob_pub, &bp, NULL,
	    NULL), 0);
	CHECK_RC(sp_pgp_key_import(pgp, eve_sec, es, 0, &eve_pub, &ep, NULL,
	    NULL), 0);
	if (!ann_pub || !bob_pub || !eve_pub)
		goto out;
	rcpts[0].data = bob_pub;
	rcpts[0].len = bp;
	rcpts[1].data = ann_pub;
	rcpts[1].len = ap;
	CHECK_RC(sp_pgpmail_encrypt(pgp, S(msg), rcpts, 2, ann_sec, as, NULL,
	    &out, &out_len), 0);
	if (out == NULL)
		goto out;
	CHECK(memmem(out, out_len, "secret line", 11) == NULL);
	CHECK(memmem(out, out_len, "Subject: hi\r\n", 13) != NULL);
	signer.data = ann_pub;
	signer.len = ap;
	CHECK_RC(sp_pgpmail_open(pgp, bob_sec, bs, &signer, 1, "ann@x.org",
	    out, out_len, &srv, &srv_len, &res), 0);
	CHECK(res.decrypted && res.sig.status == SP_PGP_SIG_GOOD);
	CHECK(srv && memmem(srv, srv_len, "secret line", 11) != NULL);
	CHECK(srv && memmem(srv, srv_len, "X-Sealpost-PGP: decrypted; "
	    "format=pgp-mime; signature=verified; signer=", 71) != NULL);
	free(srv);
	srv = NULL;
	/* The sender reads its own copy. */
	CHECK_RC(sp_pgpmail_open(pgp, ann_sec, as, NULL, 0, NULL, out,
	    out_len, &srv, &srv_len, &res), 0);
	CHECK(res.decrypted);
	free(srv);
	srv = NULL;
	/* Checked against another key for the same address: unknown. */
	signer.data = eve_pub;
	signer.len = ep;
	CHECK_RC(sp_pgpmail_open(pgp, bob_sec, bs, &signer, 1, "ann@x.org",
	    out, out_len, &srv, &srv_len, &res), 0);
	CHECK(res.decrypted && res.sig.status == SP_PGP_SIG_UNKNOWN_KEY);
	free(srv);
	srv = NULL;
	/* Not for us: the original, said so. */
	CHECK_RC(sp_pgpmail_open(pgp, eve_sec, es, NULL, 0, NULL, out,
	    out_len, &srv, &srv_len, &res), 0);
	CHECK(!res.decrypted && res.decrypt_error != 0);
	CHECK(srv && memmem(srv, srv_len, "X-Sealpost-PGP: decrypt-failed",
	    30) != NULL && memmem(srv, srv_len, "BEGIN PGP MESSAGE", 17));
out:
	free(srv);
	free(out);
	free(ann_pub);
	free(bob_pub);
	free(eve_pub);
	if (ann_sec)
		sodium_free(ann_sec);
	if (bob_sec)
		sodium_free(bob_sec);
	if (eve_sec)
		sodium_free(eve_sec);
	(void)sp_pgp_destroy(pgp);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	RUN(t_armor);
	RUN(t_autocrypt);
	RUN(t_peek);
	RUN(t_wkd_hash);
	RUN(t_roundtrip);
	return unit_done();
}
