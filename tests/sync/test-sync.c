/*
 * Integration tests of sealpost-server: the real daemon on 127.0.0.1, the
 * real libwebsockets client (client-core/sync_client.c), over TLS and plain
 * TCP.  Every message type and every error path the protocol defines.
 */
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto/pgp.h"
#include "crypto/vault.h"
#include "crypto/pubkeys.h"
#include "tests/sync/harness.h"
#include "tests/unit.h"

static struct srv S;

static struct sp_client_msg *
simple(sp_client *c, uint32_t type)
{
	struct sp_frame f;

	sp_frame_init(&f, type, 0);
	return call(c, &f);
}

static int
append(sp_client *c, const char *text, uint64_t expected, uint64_t *seq_r)
{
	struct sp_frame f;
	struct sp_client_msg *m;
	int code;

	sp_frame_init(&f, SP_MSG_APPEND, 0);
	(void)sp_frame_add_item(&f, SP_F_RECORDS, text, strlen(text), 0);
	if (expected != UINT64_MAX)
		sp_frame_set_uint(&f, SP_F_EXPECTED, expected);
	if ((m = call(c, &f)) == NULL)
		return -1;
	code = reply_code(m);
	if (code == 0 && seq_r)
		*seq_r = m->f.f[SP_F_SEQ].u;
	sp_client_msg_free(m);
	return code;
}

/* Expects the next push to carry exactly one record equal to text. */
static int
push_is(sp_client *c, const char *text, uint64_t seq)
{
	struct sp_client_msg *m;
	const struct sp_frame_item *it;
	size_t n;
	int ok;

	if (sp_client_next_push(c, 3000, &m) != 0)
		return 0;
	it = sp_frame_array(&m->f, SP_F_RECORDS, &n);
	ok = m->f.type == SP_MSG_PUSH && m->f.f[SP_F_SEQ].u == seq && n == 1 &&
	    it[0].len == strlen(text) && memcmp(it[0].ptr, text, n) == 0;
	if (!ok)
		fprintf(stderr, "# push: type %u seq %llu n %zu\n", m->f.type,
		    (unsigned long long)m->f.f[SP_F_SEQ].u, n);
	sp_client_msg_free(m);
	return ok;
}

static void
t_hello_and_version(void)
{
	struct sp_client_opts o = { .host = "127.0.0.1", .port = S.port,
	    .tls = 1, .ca_file = S.cert, .skip_hello = 1 };
	sp_client *c;
	struct sp_frame f;
	struct sp_client_msg *m;
	char err[256];

	/* Anything before HELLO is refused. */
	CHECK_RC(sp_client_connect(&o, &c, err, sizeof(err)), 0);
	if (c == NULL) {
		fprintf(stderr, "# connect: %s\n", err);
		return;
	}
	m = simple(c, SP_MSG_SESSIONS);
	CHECK(reply_code(m) == SP_PERR_SEQUENCE);
	sp_client_msg_free(m);
	/* A version we do not speak: ERROR VERSION, then the close. */
	sp_frame_init(&f, SP_MSG_HELLO, 0);
	sp_frame_set_uint(&f, SP_F_VERSION, 99);
	m = call(c, &f);
	CHECK(reply_code(m) == SP_PERR_VERSION);
	sp_client_msg_free(m);
	sp_client_service(c, 500);
	CHECK(sp_client_is_closed(c));
	sp_client_close(c);
	/* The good path, then a second HELLO is out of sequence. */
	c = srv_connect(&S, "t");
	CHECK(c != NULL);
	if (c == NULL)
		return;
	sp_frame_init(&f, SP_MSG_HELLO, 0);
	sp_frame_set_uint(&f, SP_F_VERSION, 1);
	m = call(c, &f);
	CHECK(reply_code(m) == SP_PERR_SEQUENCE);
	sp_client_msg_free(m);
	sp_client_close(c);
}

static void
t_register(void)
{
	sp_client *c = srv_connect(&S, "reg");
	struct acct a, b;
	char invite[128];
	int code = 0;

	CHECK(c != NULL);
	if (c == NULL)
		return;
	/* Registration is by invite on this server. */
	CHECK(acct_register(c, &a, "ann@example.org", NULL, &code) ==
	    SP_MSG_ERROR && code == SP_PERR_INVITE);
	acct_free(&a);
	CHECK(acct_register(c, &a, "ann@example.org", "bogus", &code) ==
	    SP_MSG_ERROR && code == SP_PERR_INVITE);
	acct_free(&a);
	CHECK_RC(srv_admin(&S, "invite", invite, sizeof(invite)), 0);
	CHECK(strlen(invite) == 48);
	CHECK(acct_register(c, &a, "Ann@Example.ORG", invite, &code) ==
	    SP_MSG_OK);
	/* An invite is good once. */
	CHECK(acct_register(c, &b, "bob@example.org", invite, &code) ==
	    SP_MSG_ERROR && code == SP_PERR_INVITE);
	acct_free(&b);
	CHECK_RC(srv_admin(&S, "invite", invite, sizeof(invite)), 0);
	CHECK(acct_register(c, &b, "elsewhere@example.com", invite, &code) ==
	    SP_MSG_ERROR && code == SP_PERR_DOMAIN);
	acct_free(&b);
	CHECK(acct_register(c, &b, "not-an-address", invite, &code) ==
	    SP_MSG_ERROR && code == SP_PERR_INVALID);
	acct_free(&b);
	CHECK(acct_register(c, &b, "ann@example.org", invite, &code) ==
	    SP_MSG_ERROR && code == SP_PERR_EXISTS);
	acct_free(&b);
	acct_free(&a);
	sp_client_close(c);
}

static int
make_account(const char *address, struct acct *a)
{
	sp_client *c = srv_connect(&S, "mk");
	char invite[128];
	int ok;

	if (c == NULL || srv_admin(&S, "invite", invite, sizeof(invite)) != 0)
		return -1;
	ok = acct_register(c, a, address, invite, NULL) == SP_MSG_OK;
	sp_client_close(c);
	return ok ? 0 : -1;
}

static void
t_prelogin_hides_accounts(void)
{
	sp_client *c = srv_connect(&S, "pre");
	struct sp_frame f;
	struct sp_client_msg *m1, *m2, *m3;
	uint8_t real[25];

	CHECK(c != NULL);
	if (c == NULL)
		return;
	sp_frame_init(&f, SP_MSG_PRELOGIN, 0);
	sp_frame_set_text(&f, SP_F_ADDRESS, "ann@example.org");
	m1 = call(c, &f);
	sp_frame_init(&f, SP_MSG_PRELOGIN, 0);
	sp_frame_set_text(&f, SP_F_ADDRESS, "nobody@example.org");
	m2 = call(c, &f);
	sp_frame_init(&f, SP_MSG_PRELOGIN, 0);
	sp_frame_set_text(&f, SP_F_ADDRESS, "nobody@example.org");
	m3 = call(c, &f);
	CHECK(m1 && m2 && m3 && m1->f.type == SP_MSG_PRELOGIN_OK &&
	    m2->f.type == SP_MSG_PRELOGIN_OK);
	if (m1 && m2 && m3) {
		struct sp_kdf_params p;

		memcpy(real, m1->f.f[SP_F_KDF_PARAMS].ptr, 25);
		/* Plausible: valid parameters, stable per address, a salt
		 * unlike the real account's, fresh challenges. */
		CHECK_RC(sp_kdf_params_decode(m2->f.f[SP_F_KDF_PARAMS].ptr, &p),
		    0);
		CHECK(memcmp(m2->f.f[SP_F_KDF_PARAMS].ptr,
		    m3->f.f[SP_F_KDF_PARAMS].ptr, 25) == 0);
		CHECK(memcmp(real + 9, m2->f.f[SP_F_KDF_PARAMS].ptr + 9, 16));
		CHECK(memcmp(m2->f.f[SP_F_CHALLENGE].ptr,
		    m3->f.f[SP_F_CHALLENGE].ptr, 32) != 0);
	}
	sp_client_msg_free(m1);
	sp_client_msg_free(m2);
	sp_client_msg_free(m3);
	sp_client_close(c);
}

static void
t_login_failures_and_rate_limit(void)
{
	sp_client *c = srv_connect(&S, "lf");
	struct acct a;
	struct sp_frame f;
	struct sp_client_msg *m;
	uint8_t chal[32], sig[64];
	int i, code;

	CHECK(c != NULL && make_account("carl@example.org", &a) == 0);
	if (c == NULL)
		return;
	/* A signature by the wrong key. */
	sp_frame_init(&f, SP_MSG_PRELOGIN, 0);
	sp_frame_set_text(&f, SP_F_ADDRESS, a.address);
	m = call(c, &f);
	memcpy(chal, m->f.f[SP_F_CHALLENGE].ptr, 32);
	sp_client_msg_free(m);
	memset(sig, 7, sizeof(sig));
	sp_frame_init(&f, SP_MSG_LOGIN, 0);
	sp_frame_set_text(&f, SP_F_ADDRESS, a.address);
	sp_frame_set_bytes(&f, SP_F_CHALLENGE, chal, 32);
	sp_frame_set_bytes(&f, SP_F_SIGNATURE, sig, 64);
	m = call(c, &f);
	CHECK(reply_code(m) == SP_PERR_DENIED);
	sp_client_msg_free(m);
	/* The same challenge again: used up. */
	m = call(c, &f);
	CHECK(reply_code(m) == SP_PERR_DENIED);
	sp_client_msg_free(m);
	/* A challenge never issued. */
	chal[0] ^= 1;
	sp_frame_set_bytes(&f, SP_F_CHALLENGE, chal, 32);
	for (i = 0; i < 3; i++) {
		m = call(c, &f);
		code = reply_code(m);
		sp_client_msg_free(m);
	}
	/* Five failures in a minute: even the right password is refused.
	 * The limit counts in whole minutes; if a minute ended during the
	 * failures above, five more in the new minute make the same point. */
	if ((code = acct_login(c, &a)) != SP_PERR_RATE) {
		CHECK(code == 0);
		sp_client_close(c);
		c = srv_connect(&S, "lf2");
		for (i = 0; c && i < 5; i++) {
			m = call(c, &f);
			sp_client_msg_free(m);
		}
		code = c ? acct_login(c, &a) : -1;
	}
	CHECK(code == SP_PERR_RATE);
	acct_free(&a);
	sp_client_close(c);
}

static void
t_log_and_two_sessions(void)
{
	sp_client *c1 = srv_connect(&S, "desk"), *c2 = srv_connect(&S, "phone");
	struct acct a;
	struct sp_frame f;
	struct sp_client_msg *m;
	uint64_t seq = 0;
	const struct sp_frame_item *it;
	size_t n;

	CHECK(c1 && c2 && make_account("dora@example.org", &a) == 0);
	if (!c1 || !c2)
		return;
	/* Requests that need a login are refused before it. */
	CHECK(append(c1, "x", UINT64_MAX, NULL) == SP_PERR_AUTH);
	CHECK_RC(acct_login(c1, &a), 0);
	CHECK_RC(acct_login(c2, &a), 0);
	/* Logged in: no second login, registration or HELLO on it. */
	CHECK_RC(acct_login(c1, &a), SP_PERR_SEQUENCE);
	{
		struct sp_frame t;
		struct sp_client_msg *r;

		sp_frame_init(&t, SP_MSG_RESUME, 0);
		sp_frame_set_bytes(&t, SP_F_TOKEN, a.token, 32);
		r = call(c1, &t);
		CHECK(reply_code(r) == SP_PERR_SEQUENCE);
		sp_client_msg_free(r);
		sp_frame_init(&t, SP_MSG_KEYS_GET, 0);
		sp_frame_set_text(&t, SP_F_ADDRESS, "dora@example.org");
		r = call(c1, &t);
		CHECK(r && r->f.type == SP_MSG_KEYS);  /* allowed in both */
		sp_client_msg_free(r);
	}
	CHECK_RC(append(c1, "r1", 0, &seq), 0);
	CHECK(seq == 1);
	/* Optimistic concurrency: expected last seq 0 is stale now. */
	CHECK(append(c1, "lost", 0, NULL) == SP_PERR_CONFLICT);
	CHECK_RC(append(c1, "r2", 1, &seq), 0);
	CHECK(seq == 2);
	/* Subscribe from 1: catch-up in order, then live records. */
	sp_frame_init(&f, SP_MSG_SUBSCRIBE, 0);
	sp_frame_set_uint(&f, SP_F_SEQ, 1);
	m = call(c2, &f);
	CHECK(m && m->f.type == SP_MSG_SUBSCRIBED && m->f.f[SP_F_LAST].u == 2);
	sp_client_msg_free(m);
	{
		struct sp_client_msg *p;
		uint64_t next = 1;

		while (next <= 2 && sp_client_next_push(c2, 3000, &p) == 0) {
			it = sp_frame_array(&p->f, SP_F_RECORDS, &n);
			CHECK(p->f.f[SP_F_SEQ].u == next);
			next += n;
			sp_client_msg_free(p);
		}
		CHECK(next == 3);
	}
	/* c1 subscribes too: each sees the other's appends at once. */
	sp_frame_init(&f, SP_MSG_SUBSCRIBE, 0);
	sp_frame_set_uint(&f, SP_F_SEQ, 3);
	m = call(c1, &f);
	CHECK(m && m->f.type == SP_MSG_SUBSCRIBED);
	sp_client_msg_free(m);
	CHECK_RC(append(c1, "from desk", UINT64_MAX, &seq), 0);
	CHECK(push_is(c2, "from desk", 3));
	CHECK(push_is(c1, "from desk", 3));
	CHECK_RC(append(c2, "from phone", UINT64_MAX, &seq), 0);
	CHECK(push_is(c1, "from phone", 4));
	CHECK(push_is(c2, "from phone", 4));
	/* READ pages. */
	sp_frame_init(&f, SP_MSG_READ, 0);
	sp_frame_set_uint(&f, SP_F_SEQ, 2);
	sp_frame_set_uint(&f, SP_F_MAX_RECORDS, 2);
	m = call(c1, &f);
	CHECK(m && m->f.type == SP_MSG_RECORDS);
	if (m && m->f.type == SP_MSG_RECORDS) {
		it = sp_frame_array(&m->f, SP_F_RECORDS, &n);
		CHECK(n == 2 && m->f.f[SP_F_SEQ].u == 2 &&
		    m->f.f[SP_F_LAST].u == 4 && m->f.f[SP_F_MORE].u == 1);
		CHECK(n == 2 && it[1].len == 9 && !memcmp(it[1].ptr,
		    "from desk", 9));
	}
	sp_client_msg_free(m);
	acct_free(&a);
	sp_client_close(c1);
	sp_client_close(c2);
}

static void
t_deliver_keys_blobs(void)
{
	sp_client *c = srv_connect(&S, "x"), *d = srv_connect(&S, "y");
	struct acct a, b;
	struct sp_frame f;
	struct sp_client_msg *m;
	uint8_t blob[100000], id[32], bad[32];

	size_t i;

	CHECK(c && d && make_account("eve@example.org", &a) == 0 &&
	    make_account("fay@example.net", &b) == 0);
	if (!c || !d)
		return;
	CHECK_RC(acct_login(c, &a), 0);
	CHECK_RC(acct_login(d, &b), 0);
	sp_frame_init(&f, SP_MSG_SUBSCRIBE, 0);
	sp_frame_set_uint(&f, SP_F_SEQ, 1);
	sp_client_msg_free(call(d, &f));
	/* Internal mail: eve appends a sealed record to fay's log. */
	sp_frame_init(&f, SP_MSG_DELIVER, 0);
	sp_frame_set_text(&f, SP_F_RECIPIENT, "fay@example.net");
	(void)sp_frame_add_item(&f, SP_F_RECORDS, "sealed", 6, 0);
	m = call(c, &f);
	CHECK(m && m->f.type == SP_MSG_OK);
	sp_client_msg_free(m);
	CHECK(push_is(d, "sealed", 1));
	sp_frame_init(&f, SP_MSG_DELIVER, 0);
	sp_frame_set_text(&f, SP_F_RECIPIENT, "ghost@example.net");
	(void)sp_frame_add_item(&f, SP_F_RECORDS, "sealed", 6, 0);
	m = call(c, &f);
	CHECK(reply_code(m) == SP_PERR_NOT_FOUND);
	sp_client_msg_free(m);
	/* Key directory. */
	sp_frame_init(&f, SP_MSG_KEYS_GET, 0);
	sp_frame_set_text(&f, SP_F_ADDRESS, "fay@example.net");
	m = call(c, &f);
	CHECK(m && m->f.type == SP_MSG_KEYS);
	if (m && m->f.type == SP_MSG_KEYS) {
		struct sp_pubkeys pk;

		/* Verifiable by the client: self-signed, for that address. */
		CHECK_RC(sp_pubkeys_parse(m->f.f[SP_F_PUBKEYS].ptr,
		    m->f.f[SP_F_PUBKEYS].len, &pk), 0);
		CHECK(strcmp(pk.address, "fay@example.net") == 0);
		CHECK(!memcmp(pk.identity_pk, sp_keyset_identity_pk(b.ks), 32));
	}
	sp_client_msg_free(m);
	/* Blobs: chunked upload, resume, hash check, download, delete. */
	for (i = 0; i < sizeof(blob); i++)
		blob[i] = (uint8_t)(i * 7);
	crypto_generichash(id, 32, blob, sizeof(blob), NULL, 0);
	sp_frame_init(&f, SP_MSG_BLOB_BEGIN, 0);
	sp_frame_set_bytes(&f, SP_F_BLOB_ID, id, 32);
	sp_frame_set_uint(&f, SP_F_SIZE, sizeof(blob));
	m = call(c, &f);
	CHECK(m && m->f.type == SP_MSG_BLOB_BEGUN && m->f.f[SP_F_HAVE].u == 0);
	sp_client_msg_free(m);
	sp_frame_init(&f, SP_MSG_BLOB_CHUNK, 0);
	sp_frame_set_bytes(&f, SP_F_BLOB_ID, id, 32);
	sp_frame_set_uint(&f, SP_F_INDEX, 0);
	sp_frame_set_bytes(&f, SP_F_DATA, blob, 65536);
	m = call(c, &f);
	CHECK(m && m->f.type == SP_MSG_OK);
	sp_client_msg_free(m);
	/* Finishing early fails; resuming says one chunk is there. */
	sp_frame_init(&f, SP_MSG_BLOB_FINISH, 0);
	sp_frame_set_bytes(&f, SP_F_BLOB_ID, id, 32);
	m = call(c, &f);
	CHECK(reply_code(m) != 0);
	sp_client_msg_free(m);
	sp_frame_init(&f, SP_MSG_BLOB_BEGIN, 0);
	sp_frame_set_bytes(&f, SP_F_BLOB_ID, id, 32);
	sp_frame_set_uint(&f, SP_F_SIZE, sizeof(blob));
	m = call(c, &f);
	CHECK(m && m->f.type == SP_MSG_BLOB_BEGUN && m->f.f[SP_F_HAVE].u == 1);
	sp_client_msg_free(m);
	sp_frame_init(&f, SP_MSG_BLOB_CHUNK, 0);
	sp_frame_set_bytes(&f, SP_F_BLOB_ID, id, 32);
	sp_frame_set_uint(&f, SP_F_INDEX, 1);
	sp_frame_set_bytes(&f, SP_F_DATA, blob + 65536, sizeof(blob) - 65536);
	sp_client_msg_free(call(c, &f));
	sp_frame_init(&f, SP_MSG_BLOB_FINISH, 0);
	sp_frame_set_bytes(&f, SP_F_BLOB_ID, id, 32);
	m = call(c, &f);
	CHECK(m && m->f.type == SP_MSG_OK);
	sp_client_msg_free(m);
	/* fay can fetch it by id (she got it in a sealed record). */
	sp_frame_init(&f, SP_MSG_BLOB_GET, 0);
	sp_frame_set_bytes(&f, SP_F_BLOB_ID, id, 32);
	sp_frame_set_uint(&f, SP_F_INDEX, 1);
	m = call(d, &f);
	CHECK(m && m->f.type == SP_MSG_BLOB_DATA &&
	    m->f.f[SP_F_SIZE].u == sizeof(blob) &&
	    m->f.f[SP_F_DATA].len == sizeof(blob) - 65536 &&
	    !memcmp(m->f.f[SP_F_DATA].ptr, blob + 65536, sizeof(blob) - 65536));
	sp_client_msg_free(m);
	/* A blob whose bytes do not hash to its id is refused. */
	memset(bad, 1, sizeof(bad));
	sp_frame_init(&f, SP_MSG_BLOB_BEGIN, 0);
	sp_frame_set_bytes(&f, SP_F_BLOB_ID, bad, 32);
	sp_frame_set_uint(&f, SP_F_SIZE, 10);
	sp_client_msg_free(call(c, &f));
	sp_frame_init(&f, SP_MSG_BLOB_CHUNK, 0);
	sp_frame_set_bytes(&f, SP_F_BLOB_ID, bad, 32);
	sp_frame_set_uint(&f, SP_F_INDEX, 0);
	sp_frame_set_bytes(&f, SP_F_DATA, blob, 10);
	sp_client_msg_free(call(c, &f));
	sp_frame_init(&f, SP_MSG_BLOB_FINISH, 0);
	sp_frame_set_bytes(&f, SP_F_BLOB_ID, bad, 32);
	m = call(c, &f);
	CHECK(reply_code(m) == SP_PERR_INVALID);
	sp_client_msg_free(m);
	/* Delete: the last reference takes the bytes with it. */
	sp_frame_init(&f, SP_MSG_BLOB_DELETE, 0);
	sp_frame_set_bytes(&f, SP_F_BLOB_ID, id, 32);
	m = call(c, &f);
	CHECK(m && m->f.type == SP_MSG_OK);
	sp_client_msg_free(m);
	sp_frame_init(&f, SP_MSG_BLOB_GET, 0);
	sp_frame_set_bytes(&f, SP_F_BLOB_ID, id, 32);
	sp_frame_set_uint(&f, SP_F_INDEX, 0);
	m = call(d, &f);
	CHECK(reply_code(m) == SP_PERR_NOT_FOUND);
	sp_client_msg_free(m);
	acct_free(&a);
	acct_free(&b);
	sp_client_close(c);
	sp_client_close(d);
}

static void
t_sessions_revoke_resume_logout(void)
{
	sp_client *c1 = srv_connect(&S, "a"), *c2 = srv_connect(&S, "b");
	sp_client *c3;
	struct acct a;
	uint8_t token1[32], sid2[16];
	struct sp_frame f;
	struct sp_client_msg *m;
	const struct sp_frame_item *ids;
	size_t n = 0;

	CHECK(c1 && c2 && make_account("gus@example.org", &a) == 0);
	if (!c1 || !c2)
		return;
	CHECK_RC(acct_login(c1, &a), 0);
	memcpy(token1, a.token, 32);
	CHECK_RC(acct_login(c2, &a), 0);
	memcpy(sid2, a.session_id, 16);
	m = simple(c1, SP_MSG_SESSIONS);
	if (m && m->f.type == SP_MSG_ERROR)
		fprintf(stderr, "# SESSIONS: %.*s\n",
		    (int)m->f.f[SP_F_MESSAGE].len, m->f.f[SP_F_MESSAGE].ptr);
	CHECK(m && m->f.type == SP_MSG_SESSIONS_OK);
	ids = m ? sp_frame_array(&m->f, SP_F_SESSION_IDS, &n) : NULL;
	CHECK(n == 2);
	CHECK(ids && (memcmp(ids[0].ptr, sid2, 16) == 0 ||
	    memcmp(ids[1].ptr, sid2, 16) == 0));
	sp_client_msg_free(m);
	/* Revoking the phone cuts its open connection at once. */
	sp_frame_init(&f, SP_MSG_REVOKE, 0);
	sp_frame_set_bytes(&f, SP_F_SESSION_ID, sid2, 16);
	m = call(c1, &f);
	CHECK(m && m->f.type == SP_MSG_OK);
	sp_client_msg_free(m);
	CHECK(sp_client_next_push(c2, 2000, &m) == 0 &&
	    reply_code(m) == SP_PERR_AUTH);
	sp_client_msg_free(m);
	sp_client_service(c2, 300);
	CHECK(sp_client_is_closed(c2));
	m = call(c1, &f);
	CHECK(reply_code(m) == SP_PERR_NOT_FOUND);
	sp_client_msg_free(m);
	/* RESUME with the desk's token on a new connection. */
	c3 = srv_connect(&S, "c");
	sp_frame_init(&f, SP_MSG_RESUME, 0);
	sp_frame_set_bytes(&f, SP_F_TOKEN, token1, 32);
	m = c3 ? call(c3, &f) : NULL;
	CHECK(m && m->f.type == SP_MSG_RESUME_OK &&
	    m->f.f[SP_F_ADDRESS].len == strlen("gus@example.org"));
	sp_client_msg_free(m);
	/* LOGOUT ends the session everywhere: RESUME fails afterwards. */
	m = simple(c1, SP_MSG_LOGOUT);
	CHECK(m && m->f.type == SP_MSG_OK);
	sp_client_msg_free(m);
	CHECK(append(c1, "x", UINT64_MAX, NULL) == SP_PERR_AUTH);
	sp_client_close(c3);
	c3 = srv_connect(&S, "d");
	m = c3 ? call(c3, &f) : NULL;
	CHECK(reply_code(m) == SP_PERR_AUTH);
	sp_client_msg_free(m);
	acct_free(&a);
	sp_client_close(c1);
	sp_client_close(c2);
	sp_client_close(c3);
}

/* Hostile bytes: the server answers, closes that connection cleanly, and
 * keeps serving everyone else. */
static void
t_malformed_frames(void)
{
	static const uint8_t garbage[] = { 0xff, 0x00, 0x13, 0x37 };
	static const uint8_t unknown[] = { 0xa2, 0x00, 0x18, 0x27, 0x01, 0x05 };
	sp_client *c;
	struct sp_client_msg *m;
	uint8_t *big;

	c = srv_connect(&S, "m1");
	CHECK(c != NULL);
	CHECK_RC(sp_client_send_raw(c, garbage, sizeof(garbage), 1), 0);
	CHECK(sp_client_next_push(c, 2000, &m) == 0 &&
	    reply_code(m) == SP_PERR_MALFORMED);
	sp_client_msg_free(m);
	sp_client_service(c, 300);
	CHECK(sp_client_is_closed(c));
	sp_client_close(c);

	c = srv_connect(&S, "m2");
	CHECK_RC(sp_client_send_raw(c, "hello", 5, 0), 0);  /* text */
	sp_client_service(c, 1000);
	sp_client_service(c, 300);
	CHECK(sp_client_is_closed(c));
	sp_client_close(c);

	/* Unknown message type 39, id 5: an error reply, connection open. */
	c = srv_connect(&S, "m3");
	CHECK_RC(sp_client_send_raw(c, unknown, sizeof(unknown), 1), 0);
	CHECK(sp_client_wait(c, 5, &m) == 0 &&
	    reply_code(m) == SP_PERR_UNKNOWN);
	sp_client_msg_free(m);
	m = simple(c, SP_MSG_SESSIONS);
	CHECK(reply_code(m) == SP_PERR_AUTH);   /* still talking */
	sp_client_msg_free(m);
	sp_client_close(c);

	/* Over the frame limit: dropped unread, ERROR TOO_LARGE with id 0
	 * in its place, and the connection goes on. */
	c = srv_connect(&S, "m4");
	big = calloc(1, SP_FRAME_MAX + 10);
	CHECK_RC(sp_client_send_raw(c, big, SP_FRAME_MAX + 10, 1), 0);
	free(big);
	CHECK(sp_client_next_push(c, 5000, &m) == 0 &&
	    reply_code(m) == SP_PERR_TOO_LARGE);
	sp_client_msg_free(m);
	m = simple(c, SP_MSG_SESSIONS);
	CHECK(reply_code(m) == SP_PERR_AUTH);
	sp_client_msg_free(m);
	sp_client_close(c);

	c = srv_connect(&S, "after");
	CHECK(c != NULL);
	sp_client_close(c);
}

/*
 * Runs cmd through the shell; what it prints goes to out (binary-safe,
 * NUL-terminated, *n_r bytes) or is discarded when out is NULL.  Returns
 * its exit status, -1 if it could not run.
 */
static int
run_cmd(const char *cmd, char *out, size_t cap, size_t *n_r)
{
	FILE *p = popen(cmd, "r");
	char sink[4096];
	size_t n = 0;
	int rc;

	if (n_r)
		*n_r = 0;
	if (p == NULL)
		return -1;
	if (out) {
		n = fread(out, 1, cap - 1, p);
		out[n] = 0;
	}
	while (fread(sink, 1, sizeof(sink), p) > 0)
		;
	rc = pclose(p);
	if (n_r)
		*n_r = n;
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int
sh(const char *cmd, char *out, size_t outlen)
{
	return run_cmd(cmd, out, outlen, NULL);
}

static void
t_http_endpoints(void)
{
	char cmd[512], out[8192];

	snprintf(cmd, sizeof(cmd), "curl -sS --cacert %s "
	    "https://127.0.0.1:%d/health", S.cert, S.port);
	(void)sh(cmd, out, sizeof(out));
	CHECK(strcmp(out, "ok\n") == 0);
	snprintf(cmd, sizeof(cmd), "curl -sS --cacert %s "
	    "https://127.0.0.1:%d/metrics", S.cert, S.port);
	(void)sh(cmd, out, sizeof(out));
	CHECK(strstr(out, "sealpost_records_appended_total ") != NULL);
	CHECK(strstr(out, "sealpost_push_latency_ms_bucket{le=\"+Inf\"}") !=
	    NULL);
	CHECK(strstr(out, "sealpost_store_used_bytes ") != NULL);
	/* TLS below 1.2 is refused. */
	snprintf(cmd, sizeof(cmd), "curl -sS --cacert %s --tlsv1.1 "
	    "--tls-max 1.1 https://127.0.0.1:%d/health >/dev/null 2>&1",
	    S.cert, S.port);
	CHECK(system(cmd) != 0);
}

/* The same protocol over plain TCP (ws://), on a second server. */
static void
t_plain_tcp(void)
{
	struct srv p;
	sp_client *c;
	struct acct a;
	uint64_t seq = 0;

	CHECK_RC(srv_start(&p, 0, "--open-registration yes"), 0);
	c = srv_connect(&p, "plain");
	CHECK(c != NULL);
	if (c) {
		CHECK(acct_register(c, &a, "pat@example.org", NULL, NULL) ==
		    SP_MSG_OK);
		CHECK_RC(acct_login(c, &a), 0);
		CHECK_RC(append(c, "plain", UINT64_MAX, &seq), 0);
		CHECK(seq == 1);
		acct_free(&a);
		sp_client_close(c);
	}
	/* SIGTERM: a clean stop with exit status 0. */
	{
		int st = srv_stop(&p, SIGTERM);

		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	srv_cleanup(&p);
}

/*
 * WKD: the key published in the self-signed key set is served under the
 * hash gpg itself computes (--with-wkd-hash), in both URL layouts.
 */
static void
t_wkd(void)
{
	sp_client *c = srv_connect(&S, "wkd");
	sp_pgp *pgp = NULL;
	struct acct a;
	unsigned char *sec = NULL, *pub = NULL;
	size_t sec_len, pub_len, n;
	char invite[128], cmd[2048], out[8192], hash[40] = "", *at, *p;
	char keyfile[400], home[400];
	FILE *f;

	CHECK(c != NULL);
	CHECK_RC(sp_pgp_create(&pgp), 0);
	if (c == NULL || pgp == NULL)
		return;
	CHECK_RC(sp_pgp_key_generate(pgp, "Wendy <wendy@example.org>", 0, 0,
	    &sec, &sec_len), 0);
	CHECK_RC(sp_pgp_key_import(pgp, sec, sec_len, 0, &pub, &pub_len, NULL,
	    NULL), 0);
	CHECK_RC(srv_admin(&S, "invite", invite, sizeof(invite)), 0);
	CHECK(acct_register_pgp(c, &a, "wendy@example.org", invite, pub,
	    pub_len, NULL) == SP_MSG_OK);
	/* gpg's own hash of the local part. */
	snprintf(keyfile, sizeof(keyfile), "%s/wendy.pgp", S.dir);
	snprintf(home, sizeof(home), "%s/gnupg", S.dir);
	if ((f = fopen(keyfile, "wb")) != NULL) {
		fwrite(pub, 1, pub_len, f);
		fclose(f);
	}
	snprintf(cmd, sizeof(cmd), "mkdir -p -m 700 %s && gpg --homedir %s "
	    "--batch --with-wkd-hash --show-keys %s 2>/dev/null", home, home,
	    keyfile);
	CHECK_RC(sh(cmd, out, sizeof(out)), 0);
	/* The line "   <32 z-base-32 characters>@example.org". */
	for (at = strstr(out, "@example.org"); at && !hash[0];
	    at = strstr(at + 1, "@example.org")) {
		for (p = at; p > out && p[-1] != ' ' && p[-1] != '\n'; p--)
			;
		if (at - p == 32) {
			memcpy(hash, p, 32);
			hash[32] = 0;
		}
	}
	CHECK(strlen(hash) == 32);
	/* Advanced layout. */
	snprintf(cmd, sizeof(cmd), "curl -sS -f --cacert %s 'https://127.0.0.1:"
	    "%d/.well-known/openpgpkey/example.org/hu/%s?l=wendy'", S.cert,
	    S.port, hash);
	(void)run_cmd(cmd, out, sizeof(out), &n);
	CHECK(n == pub_len && memcmp(out, pub, n) == 0);
	/* Direct layout: the domain comes from the Host header. */
	snprintf(cmd, sizeof(cmd), "curl -sS -f --cacert %s -H 'Host: "
	    "example.org' 'https://127.0.0.1:%d/.well-known/openpgpkey/hu/%s?"
	    "l=wendy'", S.cert, S.port, hash);
	(void)run_cmd(cmd, out, sizeof(out), &n);
	CHECK(n == pub_len && memcmp(out, pub, n) == 0);
	/* A local part that does not hash to the path, an unknown user, a
	 * domain not served: 404.  The policy file exists. */
	snprintf(cmd, sizeof(cmd), "curl -s -o /dev/null -w '%%{http_code}' "
	    "--cacert %s 'https://127.0.0.1:%d/.well-known/openpgpkey/"
	    "example.org/hu/%s?l=mallory'", S.cert, S.port, hash);
	CHECK(sh(cmd, out, sizeof(out)) == 0 && strcmp(out, "404") == 0);
	snprintf(cmd, sizeof(cmd), "curl -s -o /dev/null -w '%%{http_code}' "
	    "--cacert %s 'https://127.0.0.1:%d/.well-known/openpgpkey/"
	    "example.com/hu/%s?l=wendy'", S.cert, S.port, hash);
	CHECK(sh(cmd, out, sizeof(out)) == 0 && strcmp(out, "404") == 0);
	snprintf(cmd, sizeof(cmd), "curl -s -o /dev/null -w '%%{http_code}' "
	    "--cacert %s 'https://127.0.0.1:%d/.well-known/openpgpkey/"
	    "example.org/policy'", S.cert, S.port);
	CHECK(sh(cmd, out, sizeof(out)) == 0 && strcmp(out, "200") == 0);
	snprintf(cmd, sizeof(cmd), "gpgconf --homedir %s --kill all", home);
	(void)sh(cmd, NULL, 0);
	acct_free(&a);
	sodium_free(sec);
	free(pub);
	(void)sp_pgp_destroy(pgp);
	sp_client_close(c);
}

/* A key set signed for someone else's address is refused. */
static void
t_pubkeys_must_match(void)
{
	sp_client *c = srv_connect(&S, "pk");
	struct sp_login_keys *lk = NULL;
	struct sp_kdf_params p;
	sp_keyset *ks = NULL;
	uint8_t params[25], *vault = NULL, *pub = NULL;
	size_t vlen = 0, plen = 0;
	struct sp_frame f;
	struct sp_client_msg *m;
	char invite[128];

	CHECK(c && srv_admin(&S, "invite", invite, sizeof(invite)) == 0);
	if (c == NULL)
		return;
	CHECK(sp_keyset_generate(&ks) == 0 && sp_kdf_params_new(&p, 1, 8) == 0 &&
	    sp_kdf_derive("pw", 2, &p, &lk) == 0 &&
	    sp_vault_seal(ks, lk->vault_key, &p, NULL, &vault, &vlen) == 0 &&
	    sp_pubkeys_sign(ks, "ann@example.org", 1, NULL, 0, &pub, &plen) ==
	    0);
	if (pub == NULL || vault == NULL)
		goto out;
	sp_kdf_params_encode(&p, params);
	sp_frame_init(&f, SP_MSG_REGISTER, 0);
	sp_frame_set_text(&f, SP_F_ADDRESS, "hal@example.org");
	sp_frame_set_bytes(&f, SP_F_AUTH_PK, lk->auth_pk, 32);
	sp_frame_set_bytes(&f, SP_F_KDF_PARAMS, params, 25);
	sp_frame_set_bytes(&f, SP_F_VAULT, vault, vlen);
	sp_frame_set_bytes(&f, SP_F_PUBKEYS, pub, plen);
	sp_frame_set_text(&f, SP_F_INVITE, invite);
	m = call(c, &f);
	CHECK(reply_code(m) == SP_PERR_INVALID);
	sp_client_msg_free(m);
	/* Tampered bytes: the signature fails. */
	pub[plen - 1] ^= 1;
	sp_frame_set_text(&f, SP_F_ADDRESS, "ann@example.org");
	sp_frame_set_bytes(&f, SP_F_PUBKEYS, pub, plen);
	m = call(c, &f);
	CHECK(reply_code(m) == SP_PERR_INVALID);
	sp_client_msg_free(m);
out:
	free(pub);
	free(vault);
	sp_login_keys_free(lk);
	sp_keyset_destroy(ks);
	sp_client_close(c);
}

/*
 * kill -9 in the middle of a write burst loses no acknowledged record:
 * a server with fsync on, a client with 64 appends in flight, SIGKILL
 * after a few hundred acknowledgements, restart, and every acknowledged
 * record is there with its bytes.
 */
#define BURST 2000
static void
t_kill9_loses_no_ack(void)
{
	struct srv k;
	sp_client *c;
	struct acct a;
	static uint64_t ids[BURST], acked_seq[BURST];
	static int acked[BURST];
	char rec[64];
	struct sp_frame f;
	struct sp_client_msg *m;
	size_t sent = 0, done = 0, nacked = 0, i, bad = 0, found = 0;
	uint64_t from = 1;
	int killed = 0;

	CHECK_RC(srv_start(&k, 0, "--open-registration yes"), 0);
	c = srv_connect(&k, "burst");
	CHECK(c && acct_register(c, &a, "kim@example.org", NULL, NULL) ==
	    SP_MSG_OK && acct_login(c, &a) == 0);
	if (c == NULL)
		goto out;
	while (done < BURST) {
		while (sent < BURST && sent - done < 64) {
			snprintf(rec, sizeof(rec), "record-%zu", sent);
			sp_frame_init(&f, SP_MSG_APPEND, 0);
			(void)sp_frame_add_item(&f, SP_F_RECORDS, rec,
			    strlen(rec), 0);
			if (sp_client_send(c, &f, &ids[sent]) != 0)
				break;
			sent++;
		}
		if (sp_client_wait(c, ids[done], &m) != 0)
			break;
		if (m->f.type == SP_MSG_APPENDED) {
			acked[done] = 1;
			acked_seq[done] = m->f.f[SP_F_SEQ].u;
			nacked++;
		}
		sp_client_msg_free(m);
		done++;
		if (nacked == 300 && !killed) {
			CHECK(srv_stop(&k, SIGKILL) != -1);
			killed = 1;
		}
	}
	sp_client_close(c);
	CHECK(killed && nacked >= 300);
	/* Restart on the same data and read everything back. */
	CHECK_RC(srv_restart(&k), 0);
	c = srv_connect(&k, "verify");
	CHECK(c && acct_login(c, &a) == 0);
	if (c == NULL)
		goto out;
	for (;;) {
		const struct sp_frame_item *it;
		size_t nit;

		sp_frame_init(&f, SP_MSG_READ, 0);
		sp_frame_set_uint(&f, SP_F_SEQ, from);
		if ((m = call(c, &f)) == NULL || m->f.type != SP_MSG_RECORDS) {
			bad++;
			sp_client_msg_free(m);
			break;
		}
		it = sp_frame_array(&m->f, SP_F_RECORDS, &nit);
		for (i = 0; i < nit; i++) {
			uint64_t seq = m->f.f[SP_F_SEQ].u + i;
			size_t j;

			/* The records that were acked under this seq. */
			for (j = 0; j < done; j++) {
				if (!acked[j] || acked_seq[j] != seq)
					continue;
				snprintf(rec, sizeof(rec), "record-%zu", j);
				if (it[i].len != strlen(rec) ||
				    memcmp(it[i].ptr, rec, it[i].len) != 0)
					bad++;
				else
					found++;
			}
		}
		from = m->f.f[SP_F_SEQ].u + nit;
		if (nit == 0 || !m->f.f[SP_F_MORE].u) {
			sp_client_msg_free(m);
			break;
		}
		sp_client_msg_free(m);
	}
	CHECK(bad == 0);
	CHECK(found == nacked);
	fprintf(stderr, "# kill -9: %zu acknowledged, %zu found after "
	    "restart\n", nacked, found);
	sp_client_close(c);
out:
	acct_free(&a);
	srv_cleanup(&k);
}

/* sealpost-admin backup while a client keeps writing: the copy serves. */
static void
t_hot_backup(void)
{
	struct srv b, r;
	sp_client *c;
	struct acct a;
	struct sp_frame f;
	struct sp_client_msg *m;
	uint64_t ids[400];
	char rec[64], cmd[1024], out[256];
	size_t i, got = 0, nacked_before;
	const struct sp_frame_item *it;

	CHECK_RC(srv_start(&b, 0, "--open-registration yes"), 0);
	c = srv_connect(&b, "bk");
	CHECK(c && acct_register(c, &a, "liz@example.org", NULL, NULL) ==
	    SP_MSG_OK && acct_login(c, &a) == 0);
	if (c == NULL) {
		srv_cleanup(&b);
		return;
	}
	for (i = 0; i < 100; i++) {
		snprintf(rec, sizeof(rec), "r%zu", i + 1);
		sp_frame_init(&f, SP_MSG_APPEND, 0);
		(void)sp_frame_add_item(&f, SP_F_RECORDS, rec, strlen(rec), 0);
		sp_client_msg_free(call(c, &f));
	}
	nacked_before = 100;
	/* 300 more in flight while the backup runs. */
	for (i = 0; i < 300; i++) {
		snprintf(rec, sizeof(rec), "r%zu", i + 101);
		sp_frame_init(&f, SP_MSG_APPEND, 0);
		(void)sp_frame_add_item(&f, SP_F_RECORDS, rec, strlen(rec), 0);
		(void)sp_client_send(c, &f, &ids[i]);
	}
	sp_client_service(c, 5);
	snprintf(cmd, sizeof(cmd), "backup %s/copy/store", b.dir);
	CHECK_RC(srv_admin(&b, cmd, out, sizeof(out)), 0);
	for (i = 0; i < 300; i++)
		if (sp_client_wait(c, ids[i], &m) == 0)
			sp_client_msg_free(m);
	sp_client_close(c);
	/* Serve the copy with a second server. */
	memset(&r, 0, sizeof(r));
	r = b;
	snprintf(r.data, sizeof(r.data), "%s/copy", b.dir);
	r.pid = 0;
	r.port = srv_free_port();
	r.dir[0] = 0;   /* cleanup belongs to b */
	CHECK_RC(srv_restart(&r), 0);
	c = srv_connect(&r, "restore");
	CHECK(c && acct_login(c, &a) == 0);
	if (c) {
		sp_frame_init(&f, SP_MSG_READ, 0);
		sp_frame_set_uint(&f, SP_F_SEQ, 1);
		m = call(c, &f);
		CHECK(m && m->f.type == SP_MSG_RECORDS);
		if (m && m->f.type == SP_MSG_RECORDS) {
			it = sp_frame_array(&m->f, SP_F_RECORDS, &got);
			/* A gap-free prefix, at least what was acked before. */
			CHECK(got >= nacked_before && got <= 400);
			for (i = 0; i < got; i++) {
				snprintf(rec, sizeof(rec), "r%zu", i + 1);
				CHECK(it[i].len == strlen(rec) &&
				    !memcmp(it[i].ptr, rec, it[i].len));
			}
		}
		sp_client_msg_free(m);
		sp_client_close(c);
	}
	fprintf(stderr, "# hot backup holds %zu of 400 records\n", got);
	srv_stop(&r, SIGTERM);
	acct_free(&a);
	srv_cleanup(&b);
}

/* Settings from a file, flags over the file, and clear errors. */
static void
t_config(void)
{
	struct srv c;
	sp_client *cl;
	struct acct a;
	char path[300], cmd[1024], out[1024];
	FILE *f;
	const char *bin = getenv("SP_SERVER_BIN");

	snprintf(path, sizeof(path), "/tmp/sp-config-%d.conf", (int)getpid());
	f = fopen(path, "w");
	CHECK(f != NULL);
	if (f == NULL)
		return;
	fprintf(f, "# test configuration\nopen-registration = yes\n"
	    "port = 1  # overridden by the flag\n");
	fclose(f);
	snprintf(cmd, sizeof(cmd), "--config %s", path);
	CHECK_RC(srv_start(&c, 0, cmd), 0);
	cl = srv_connect(&c, "cfg");
	CHECK(cl && acct_register(cl, &a, "max@example.org", NULL, NULL) ==
	    SP_MSG_OK);
	acct_free(&a);
	sp_client_close(cl);
	srv_cleanup(&c);
	/* Policies: the default Argon2id floor refuses a cheap password
	 * hash, and registrations per source address are limited. */
	CHECK_RC(srv_start(&c, 0, "--open-registration yes --kdf-min-ops 2 "
	    "--register-per-hour 2"), 0);
	cl = srv_connect(&c, "pol");
	{
		int code = 0;

		CHECK(cl && acct_register(cl, &a, "cheap@example.org", NULL,
		    &code) == SP_MSG_ERROR && code == SP_PERR_INVALID);
		acct_free(&a);
		CHECK(cl && acct_register(cl, &a, "bad..dots@example.org", NULL,
		    &code) == SP_MSG_ERROR && code == SP_PERR_INVALID);
		acct_free(&a);
		CHECK(cl && acct_register(cl, &a, "third@example.org", NULL,
		    &code) == SP_MSG_ERROR && code == SP_PERR_RATE);
		acct_free(&a);
	}
	sp_client_close(cl);
	srv_cleanup(&c);
	f = fopen(path, "w");
	fprintf(f, "open-registration = perhaps\n");
	fclose(f);
	snprintf(cmd, sizeof(cmd), "%s --config %s --domains example.org 2>&1",
	    bin, path);
	CHECK(sh(cmd, out, sizeof(out)) == 2);
	CHECK(strstr(out, ":1: open-registration: expected yes or no") != NULL);
	snprintf(cmd, sizeof(cmd), "%s --bogus 1 --domains example.org 2>&1",
	    bin);
	CHECK(sh(cmd, out, sizeof(out)) == 2 &&
	    strstr(out, "unknown setting 'bogus'") != NULL);
	unlink(path);
}

/* A WebSocket handshake that does not offer "sealpost.v1" is refused. */
static void
t_subprotocol_required(void)
{
	static const char *const req[2] = {
		"GET /sync HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
		"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
		"GET /sync HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
		"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		"Sec-WebSocket-Protocol: sealpost.v1\r\n\r\n",
	};
	struct srv p;
	int i;

	CHECK_RC(srv_start(&p, 0, NULL), 0);
	for (i = 0; i < 2; i++) {
		struct sockaddr_in a = { .sin_family = AF_INET };
		struct timeval tv = { 2, 0 };
		char buf[256] = "";
		ssize_t n;
		int fd = socket(AF_INET, SOCK_STREAM, 0);

		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a.sin_port = htons((uint16_t)p.port);
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		CHECK(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
		CHECK(write(fd, req[i], strlen(req[i])) == (ssize_t)strlen(req[i]));
		n = read(fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = 0;
		if (i == 0)
			CHECK(strstr(buf, " 101 ") == NULL);
		else
			CHECK(strncmp(buf, "HTTP/1.1 101 ", 13) == 0 &&
			    strstr(buf, "sealpost.v1") != NULL);
		close(fd);
	}
	srv_cleanup(&p);
}

/* Per-account quota and the per-sender DELIVER limit. */
static void
t_quota_and_deliver_limit(void)
{
	struct srv q;
	sp_client *c, *d;
	struct acct a, b;
	struct sp_frame f;
	struct sp_client_msg *m;
	static uint8_t big[600 * 1024];
	int i, code = 0;

	CHECK_RC(srv_start(&q, 0, "--open-registration yes --quota-mb 1 "
	    "--deliver-per-minute 3"), 0);
	c = srv_connect(&q, "q1");
	d = srv_connect(&q, "q2");
	CHECK(c && d && acct_register(c, &a, "quinn@example.org", NULL, NULL) ==
	    SP_MSG_OK && acct_register(d, &b, "rose@example.org", NULL, NULL) ==
	    SP_MSG_OK && acct_login(c, &a) == 0 && acct_login(d, &b) == 0);
	if (!c || !d)
		goto out;
	/* 600 KiB fits in 1 MiB once, not twice; nothing of the refused
	 * append is written. */
	for (i = 0; i < 2; i++) {
		sp_frame_init(&f, SP_MSG_APPEND, 0);
		(void)sp_frame_add_item(&f, SP_F_RECORDS, big, sizeof(big), 0);
		m = call(c, &f);
		code = reply_code(m);
		CHECK(i == 0 ? code == 0 : code == SP_PERR_QUOTA);
		sp_client_msg_free(m);
	}
	/* DELIVER to an account over quota: "cannot receive", nothing more. */
	sp_frame_init(&f, SP_MSG_DELIVER, 0);
	sp_frame_set_text(&f, SP_F_RECIPIENT, "quinn@example.org");
	(void)sp_frame_add_item(&f, SP_F_RECORDS, big, sizeof(big), 0);
	m = call(d, &f);
	CHECK(reply_code(m) == SP_PERR_NOT_FOUND);
	sp_client_msg_free(m);
	/* Three records a minute per sender, then RATE.  (Counted in whole
	 * minutes: five tries cover a minute ending half way.) */
	for (i = 0; i < 10; i++) {
		sp_frame_init(&f, SP_MSG_DELIVER, 0);
		sp_frame_set_text(&f, SP_F_RECIPIENT, "quinn@example.org");
		(void)sp_frame_add_item(&f, SP_F_RECORDS, "x", 1, 0);
		m = call(d, &f);
		code = reply_code(m);
		sp_client_msg_free(m);
		if (code == SP_PERR_RATE)
			break;
		CHECK(code == 0);
	}
	/* Within one minute at most 3 went through before RATE. */
	CHECK(code == SP_PERR_RATE && i <= 6);
out:
	acct_free(&a);
	acct_free(&b);
	sp_client_close(c);
	sp_client_close(d);
	srv_cleanup(&q);
}

/* An APPEND at the very frame limit: its PUSH would be a few bytes too
 * big for one frame, so the records reach the subscriber in pages. */
static void
t_push_at_frame_limit(void)
{
	sp_client *w = srv_connect(&S, "w"), *r = srv_connect(&S, "r");
	struct acct a;
	struct sp_frame f;
	struct sp_client_msg *m;
	/* 2 x 1,048,566 bytes: the APPEND frame is 2,097,150 bytes, its PUSH
	 * would be 2,097,154, over SP_FRAME_MAX. */
	static uint8_t big[2][1048566];
	size_t got = 0, n, i;
	const struct sp_frame_item *it;

	CHECK(w && r && make_account("ida@example.org", &a) == 0 &&
	    acct_login(w, &a) == 0 && acct_login(r, &a) == 0);
	if (!w || !r)
		return;
	memset(big[0], 'a', sizeof(big[0]));
	memset(big[1], 'b', sizeof(big[1]));
	sp_frame_init(&f, SP_MSG_SUBSCRIBE, 0);
	sp_frame_set_uint(&f, SP_F_SEQ, 1);
	sp_client_msg_free(call(r, &f));
	sp_frame_init(&f, SP_MSG_APPEND, 0);
	(void)sp_frame_add_item(&f, SP_F_RECORDS, big[0], sizeof(big[0]), 0);
	(void)sp_frame_add_item(&f, SP_F_RECORDS, big[1], sizeof(big[1]), 0);
	m = call(w, &f);
	CHECK(m && m->f.type == SP_MSG_APPENDED && m->f.f[SP_F_LAST].u == 2);
	sp_client_msg_free(m);
	while (got < 2 && sp_client_next_push(r, 5000, &m) == 0) {
		it = sp_frame_array(&m->f, SP_F_RECORDS, &n);
		CHECK(m->f.f[SP_F_SEQ].u == got + 1);
		for (i = 0; i < n; i++, got++)
			CHECK(it[i].len == sizeof(big[0]) &&
			    it[i].ptr[0] == (got == 0 ? 'a' : 'b'));
		sp_client_msg_free(m);
	}
	CHECK(got == 2);
	CHECK(!sp_client_is_closed(r));
	acct_free(&a);
	sp_client_close(w);
	sp_client_close(r);
}

/* The operator disables an account from another process: its open,
 * subscribed connection is cut within the server's sweep interval. */
static void
t_admin_disable_cuts_connections(void)
{
	sp_client *c = srv_connect(&S, "victim");
	struct acct a;
	struct sp_frame f;
	struct sp_client_msg *m = NULL;
	char out[256];

	CHECK(c && make_account("jay@example.org", &a) == 0 &&
	    acct_login(c, &a) == 0);
	if (c == NULL)
		return;
	sp_frame_init(&f, SP_MSG_SUBSCRIBE, 0);
	sp_frame_set_uint(&f, SP_F_SEQ, 1);
	sp_client_msg_free(call(c, &f));
	CHECK_RC(srv_admin(&S, "user disable jay@example.org", out,
	    sizeof(out)), 0);
	CHECK(sp_client_next_push(c, 8000, &m) == 0 &&
	    reply_code(m) == SP_PERR_AUTH);
	sp_client_msg_free(m);
	sp_client_service(c, 500);
	CHECK(sp_client_is_closed(c));
	sp_client_close(c);
	/* And no way back in while disabled. */
	c = srv_connect(&S, "again");
	CHECK(c && acct_login(c, &a) == SP_PERR_DENIED);
	acct_free(&a);
	sp_client_close(c);
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (srv_start(&S, 1, NULL) != 0)
		return 1;
	RUN(t_hello_and_version);
	RUN(t_register);
	RUN(t_prelogin_hides_accounts);
	RUN(t_login_failures_and_rate_limit);
	RUN(t_log_and_two_sessions);
	RUN(t_push_at_frame_limit);
	RUN(t_deliver_keys_blobs);
	RUN(t_sessions_revoke_resume_logout);
	RUN(t_malformed_frames);
	RUN(t_http_endpoints);
	RUN(t_plain_tcp);
	RUN(t_wkd);
	RUN(t_pubkeys_must_match);
	RUN(t_kill9_loses_no_ack);
	RUN(t_hot_backup);
	RUN(t_config);
	RUN(t_subprotocol_required);
	RUN(t_quota_and_deliver_limit);
	RUN(t_admin_disable_cuts_connections);
	{
		int st = srv_stop(&S, SIGTERM);

		unit_case_failed = 0;
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		unit_n++;
		printf("%sok %d - server stops cleanly on SIGTERM\n",
		    unit_case_failed ? "not " : "", unit_n);
		if (unit_case_failed)
			unit_failed++;
	}
	srv_cleanup(&S);
	return unit_done();
}
