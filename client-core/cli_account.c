/*
 * `sealpost account ...`: create, login, logout, passwd, devices, recover.
 *
 * passwd follows docs/protocol.md 6.4: VAULT_PUT is accepted only on a
 * connection that logged in with LOGIN (not RESUME) in the last 5
 * minutes, and the vault must be re-wrapped, not re-sealed, so that the
 * recovery slot and the encrypted key set stay as they are (crypto/vault.h
 * sp_vault_rewrap).  The vault's bytes come only in LOGIN_OK, so passwd
 * ends the device's session, logs in afresh with the current password on
 * the same connection, puts the new vault, and logs that session out
 * too: the next command logs in with the new password.  (Keeping the
 * device's session would need a second, not yet logged-in connection to
 * the session's server, which session.h does not offer.)
 *
 * recover: the recovery login (protocol.md 6.6) sets a new password.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "client-core/account.h"
#include "client-core/cache.h"
#include "client-core/cli.h"
#include "crypto/kdf.h"
#include "crypto/recovery.h"
#include "crypto/vault.h"

#define PW_MAX 1024

static int
account_usage(void)
{
	fprintf(stderr,
	    "usage: sealpost account create --address A [--invite T]\n"
	    "       sealpost account login --address A\n"
	    "       sealpost account logout [--cache DIR]\n"
	    "       sealpost account passwd [--cache DIR] "
	    "[--new-password-file F] [--revoke-others]\n"
	    "       sealpost account devices [--cache DIR] "
	    "[--revoke SESSION_ID]\n"
	    "       sealpost account recover --address A [--recovery-file F] "
	    "[--new-password-file F]\n"
	    "New passwords come from --new-password-file, "
	    "$SEALPOST_NEW_PASSWORD, or a prompt (asked twice).\n");
	return 2;
}

/* ---- create and login ---------------------------------------------------- */

static int
cmd_create_login(int argc, char **argv, int create)
{
	struct cli o;
	sp_client *c = NULL;
	char *pw = NULL, err[512] = "";
	size_t pwlen;
	int rc = 1;

	if (cli_parse(&o, argc, argv, NULL) != 0)
		return 2;
	if (o.address == NULL) {
		fprintf(stderr, "sealpost: --address is required\n");
		return 2;
	}
	if ((pw = cli_password(&o, &pwlen)) == NULL)
		return 2;
	if ((c = cli_connect(&o)) == NULL)
		goto out;
	if (create) {
		struct sp_account_new n = { .address = o.address,
		    .password = pw, .password_len = pwlen, .invite = o.invite,
		    .kdf_ops = o.kdf_ops, .kdf_mem_kib = o.kdf_mem_kib };
		char rtext[SP_RECOVERY_TEXTBYTES];

		if (sp_account_create(c, &n, rtext, err, sizeof(err)) != 0) {
			fprintf(stderr, "sealpost: %s\n", err);
			goto out;
		}
		printf("account %s created\n"
		    "recovery key (shown once; it opens the account if the "
		    "password is lost):\n%s\n", o.address, rtext);
		sodium_memzero(rtext, sizeof(rtext));
	} else {
		sp_keyset *ks = NULL;
		uint8_t token[32];
		uint64_t last = 0;

		if (sp_account_login_2fa(c, o.address, pw, pwlen,
		    "sealpost-cli", &o.sf, &ks, token, &last, err,
		    sizeof(err)) != 0) {
			fprintf(stderr, "sealpost: %s\n", err);
			goto out;
		}
		sodium_memzero(token, sizeof(token));
		printf("logged in as %s; vault unlocked; log at seq %llu\n",
		    o.address, (unsigned long long)last);
		sp_keyset_destroy(ks);
	}
	rc = 0;
out:
	sp_client_close(c);
	sodium_free(pw);
	return rc;
}

/* ---- logout -------------------------------------------------------------- */

static int
cmd_logout(int argc, char **argv)
{
	struct cli o;
	sp_session *s;
	char err[512] = "";

	if (cli_parse(&o, argc, argv, NULL) != 0 || o.nargs != 0)
		return account_usage();
	if ((s = cli_session(&o, 1)) == NULL)
		return 1;
	/* sp_session_logout closes s whatever the answer. */
	if (sp_session_logout(s, err, sizeof(err)) != 0) {
		fprintf(stderr, "sealpost: %s\n", err);
		return 1;
	}
	printf("logged out: the session ended on the server; the local "
	    "cache is kept\n");
	return 0;
}

/* ---- helpers ------------------------------------------------------------- */

/* Reads one line from a file or the terminal into sodium_malloc memory. */
static char *
read_secret(const char *file, const char *env_name, const char *prompt,
    int twice, size_t *len_r)
{
	char *a = sodium_malloc(PW_MAX), *b = NULL;
	const char *env = getenv(env_name);
	size_t n;
	FILE *f = NULL;

	if (a == NULL)
		return NULL;
	a[0] = 0;
	if (file) {
		if ((f = fopen(file, "r")) == NULL ||
		    fgets(a, PW_MAX, f) == NULL) {
			fprintf(stderr, "sealpost: %s: cannot read it\n", file);
			goto fail;
		}
	} else if (env) {
		snprintf(a, PW_MAX, "%s", env);
	} else {
		struct termios t, quiet;
		int fd = open("/dev/tty", O_RDWR | O_CLOEXEC), i;

		if (fd < 0 || (f = fdopen(fd, "r+")) == NULL) {
			fprintf(stderr, "sealpost: no terminal to ask (use a "
			    "file or $%s)\n", env_name);
			if (fd >= 0)
				close(fd);
			goto fail;
		}
		if ((b = sodium_malloc(PW_MAX)) == NULL)
			goto fail;
		tcgetattr(fd, &t);
		quiet = t;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		for (i = 0; i < (twice ? 2 : 1); i++) {
			char *dst = i ? b : a;

			fputs(i ? "Again: " : prompt, f);
			fflush(f);
			tcsetattr(fd, TCSAFLUSH, &quiet);
			if (fgets(dst, PW_MAX, f) == NULL)
				dst[0] = 0;
			tcsetattr(fd, TCSAFLUSH, &t);
			fputs("\n", f);
		}
		if (twice && strcmp(a, b) != 0) {
			fprintf(stderr, "sealpost: the two entries differ\n");
			goto fail;
		}
	}
	if (f)
		fclose(f);
	f = NULL;
	sodium_free(b);
	n = strlen(a);
	while (n > 0 && (a[n - 1] == '\n' || a[n - 1] == '\r'))
		a[--n] = 0;
	if (n == 0) {
		fprintf(stderr, "sealpost: empty entry\n");
		sodium_free(a);
		return NULL;
	}
	*len_r = n;
	return a;
fail:
	if (f)
		fclose(f);
	sodium_free(b);
	sodium_free(a);
	return NULL;
}

/* Opens the session like cli_session, with a password already read. */
static sp_session *
open_session(const struct cli *o, const char *pw, size_t pwlen)
{
	struct sp_session_opts so = { .cache_dir = o->cache_dir,
	    .host = o->host[0] ? o->host : NULL, .port = o->port,
	    .plain = o->plain, .ca_file = o->ca_file, .address = o->address,
	    .password = pw, .password_len = pwlen, .device = "sealpost-cli",
	    .no_sync = 1, .second_factor = &o->sf };
	sp_session *s = NULL;
	char err[512] = "";

	if (o->cache_dir == NULL) {
		fprintf(stderr, "sealpost: --cache DIR (or $SEALPOST_CACHE) "
		    "is required: the account's local directory\n");
		return NULL;
	}
	if (sp_session_open(&so, &s, err, sizeof(err)) != 0) {
		fprintf(stderr, "sealpost: %s\n", err);
		return NULL;
	}
	return s;
}

/* A fresh LOGIN (VAULT_PUT needs one) that keeps what LOGIN_OK carries. */
struct fresh {
	struct sp_kdf_params params;
	struct sp_login_keys *lk;
	uint8_t *vault;
	size_t vlen;
	uint8_t session_id[16];
};

static void
fresh_finish(struct fresh *fr)
{
	sp_login_keys_free(fr->lk);
	free(fr->vault);
	memset(fr, 0, sizeof(*fr));
}

static int
fresh_login(sp_client *c, const char *address, const char *pw, size_t pwlen,
    const struct sp_second_factor *sf, struct fresh *fr, char *err,
    size_t errlen)
{
	struct sp_frame f;
	struct sp_client_msg *m = NULL;
	uint8_t chal[32], sig[64];
	int rc;

	memset(fr, 0, sizeof(*fr));
	sp_frame_init(&f, SP_MSG_PRELOGIN, 0);
	sp_frame_set_text(&f, SP_F_ADDRESS, address);
	rc = sp_client_call(c, &f, &m);
	if ((rc = sp_client_expect(rc, m, SP_MSG_PRELOGIN_OK, "login", err,
	    errlen)) != 0)
		goto out;
	memcpy(chal, m->f.f[SP_F_CHALLENGE].ptr, 32);
	if ((rc = sp_kdf_params_decode(m->f.f[SP_F_KDF_PARAMS].ptr,
	    &fr->params)) != 0 ||
	    fr->params.opslimit < SP_ACCOUNT_KDF_FLOOR_OPS ||
	    fr->params.mem_kib < SP_ACCOUNT_KDF_FLOOR_MEM_KIB) {
		snprintf(err, errlen, "login: the server's password parameters "
		    "are unusable or too weak");
		rc = rc ? rc : SP_EWEAK;
		goto out;
	}
	sp_client_msg_free(m);
	m = NULL;
	if ((rc = sp_kdf_derive(pw, pwlen, &fr->params, &fr->lk)) != 0 ||
	    (rc = sp_kdf_sign_challenge(fr->lk, chal, 32, sig)) != 0) {
		snprintf(err, errlen, "login: %s", sp_strerror(rc));
		goto out;
	}
	sp_frame_init(&f, SP_MSG_LOGIN, 0);
	sp_frame_set_text(&f, SP_F_ADDRESS, address);
	sp_frame_set_bytes(&f, SP_F_CHALLENGE, chal, 32);
	sp_frame_set_bytes(&f, SP_F_SIGNATURE, sig, 64);
	sp_frame_set_text(&f, SP_F_DEVICE, "sealpost-cli");
	rc = sp_client_call(c, &f, &m);
	if (rc == 0 && m->f.type == SP_MSG_SECOND_FACTOR) {
		struct sp_client_msg *ok = NULL;

		rc = sp_factors_answer(c, address, &m->f, sf, &ok, err, errlen);
		sp_client_msg_free(m);
		m = ok;
		if (rc != 0)
			goto out;
	}
	if ((rc = sp_client_expect(rc, m, SP_MSG_LOGIN_OK, "login", err,
	    errlen)) != 0)
		goto out;
	if ((fr->vault = malloc(m->f.f[SP_F_VAULT].len)) == NULL) {
		rc = SP_ENOMEM;
		goto out;
	}
	memcpy(fr->vault, m->f.f[SP_F_VAULT].ptr, m->f.f[SP_F_VAULT].len);
	fr->vlen = m->f.f[SP_F_VAULT].len;
	memcpy(fr->session_id, m->f.f[SP_F_SESSION_ID].ptr, 16);
	/* The token is not kept: this connection is the only user. */
out:
	sodium_memzero(sig, sizeof(sig));
	sp_client_msg_free(m);
	if (rc != 0)
		fresh_finish(fr);
	return rc;
}

/* The account's sessions (SESSIONS); *m_r holds the four arrays. */
static int
sessions(sp_client *c, struct sp_client_msg **m_r, size_t *n_r, char *err,
    size_t errlen)
{
	struct sp_frame f;
	const struct sp_frame *r;
	int rc;

	*m_r = NULL;
	sp_frame_init(&f, SP_MSG_SESSIONS, 0);
	rc = sp_client_call(c, &f, m_r);
	if ((rc = sp_client_expect(rc, *m_r, SP_MSG_SESSIONS_OK, "sessions",
	    err, errlen)) != 0)
		return rc;
	r = &(*m_r)->f;
	/* protocol.md 4: the receiver checks the parallel arrays. */
	if (r->f[SP_F_DEVICES].len != r->f[SP_F_SESSION_IDS].len ||
	    r->f[SP_F_CREATED].len != r->f[SP_F_SESSION_IDS].len ||
	    r->f[SP_F_LAST_SEEN].len != r->f[SP_F_SESSION_IDS].len) {
		snprintf(err, errlen, "sessions: malformed reply");
		return EPROTO;
	}
	*n_r = r->f[SP_F_SESSION_IDS].len;
	return 0;
}

/* Item i of array field key. */
static const struct sp_frame_item *
item(const struct sp_frame *f, unsigned key, size_t i)
{
	return &f->items[f->f[key].u + i];
}

static int
revoke_session(sp_client *c, const uint8_t id[16], char *err, size_t errlen)
{
	struct sp_frame f;
	struct sp_client_msg *m = NULL;
	int rc;

	sp_frame_init(&f, SP_MSG_REVOKE, 0);
	sp_frame_set_bytes(&f, SP_F_SESSION_ID, id, 16);
	rc = sp_client_call(c, &f, &m);
	rc = sp_client_expect(rc, m, SP_MSG_OK, "revoke", err, errlen);
	sp_client_msg_free(m);
	return rc;
}

/* Revokes every session but keep; *n_r the number revoked. */
static int
revoke_others(sp_client *c, const uint8_t keep[16], size_t *n_r, char *err,
    size_t errlen)
{
	struct sp_client_msg *m = NULL;
	size_t n = 0, i;
	int rc;

	*n_r = 0;
	if ((rc = sessions(c, &m, &n, err, errlen)) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		const struct sp_frame_item *id = item(&m->f,
		    SP_F_SESSION_IDS, i);

		if (memcmp(id->ptr, keep, 16) == 0)
			continue;
		if ((rc = revoke_session(c, id->ptr, err, errlen)) != 0)
			goto out;
		(*n_r)++;
	}
out:
	sp_client_msg_free(m);
	return rc;
}

/* ---- passwd -------------------------------------------------------------- */

static int
cmd_passwd(int argc, char **argv)
{
	const char *new_file = NULL;
	int revoke_flag = 0;
	const struct cli_opt opts[] = {
		{ "new-password-file", &new_file, NULL },
		{ "revoke-others", NULL, &revoke_flag },
		{ NULL, NULL, NULL },
	};
	struct cli o;
	struct fresh fr;
	struct sp_kdf_params np;
	struct sp_login_keys *nlk = NULL;
	struct sp_frame f;
	struct sp_client_msg *m = NULL;
	sp_session *s = NULL;
	sp_client *c;
	char *pw = NULL, *npw = NULL, err[512] = "", address[255];
	uint8_t *nv = NULL, params[SP_KDF_PARAMSBYTES];
	size_t pwlen = 0, npwlen = 0, nvlen = 0, nrevoked = 0;
	int rc, status = 1;

	memset(&fr, 0, sizeof(fr));
	if (cli_parse(&o, argc, argv, opts) != 0 || o.nargs != 0)
		return account_usage();
	if ((pw = cli_password(&o, &pwlen)) == NULL)
		return 2;
	if ((npw = read_secret(new_file, "SEALPOST_NEW_PASSWORD",
	    "New password: ", 1, &npwlen)) == NULL)
		goto out;
	/* The session proves the current password and finds the server,
	 * the address and the cache. */
	if ((s = open_session(&o, pw, pwlen)) == NULL)
		goto out;
	snprintf(address, sizeof(address), "%s", sp_session_address(s));
	c = sp_session_client(s);
	/* End the session just opened (the connection stays, back in
	 * GREETED) and log in afresh: only LOGIN_OK carries the vault, and
	 * only a fresh LOGIN may VAULT_PUT. */
	sp_frame_init(&f, SP_MSG_LOGOUT, 0);
	rc = sp_client_call(c, &f, &m);
	if ((rc = sp_client_expect(rc, m, SP_MSG_OK, "logout", err,
	    sizeof(err))) != 0)
		goto fail;
	sp_client_msg_free(m);
	m = NULL;
	if ((rc = fresh_login(c, address, pw, pwlen, &o.sf, &fr, err,
	    sizeof(err))) != 0)
		goto fail;
	/* A fresh salt; the cost only ever goes up unless asked. */
	if ((rc = sp_kdf_params_new(&np, o.kdf_ops ? o.kdf_ops :
	    fr.params.opslimit, o.kdf_mem_kib ? o.kdf_mem_kib :
	    fr.params.mem_kib)) != 0) {
		snprintf(err, sizeof(err), "password hashing cost out of range");
		goto fail;
	}
	if ((rc = sp_kdf_derive(npw, npwlen, &np, &nlk)) != 0 ||
	    (rc = sp_vault_rewrap(fr.vault, fr.vlen, SP_VAULT_SLOT_PASSWORD,
	    fr.lk->vault_key, nlk->vault_key, &np, &nv, &nvlen)) != 0) {
		snprintf(err, sizeof(err), "re-wrapping the vault: %s",
		    sp_strerror(rc));
		goto fail;
	}
	sp_kdf_params_encode(&np, params);
	sp_frame_init(&f, SP_MSG_VAULT_PUT, 0);
	sp_frame_set_bytes(&f, SP_F_VAULT, nv, nvlen);
	sp_frame_set_bytes(&f, SP_F_AUTH_PK, nlk->auth_pk, 32);
	sp_frame_set_bytes(&f, SP_F_KDF_PARAMS, params, sizeof(params));
	rc = sp_client_call(c, &f, &m);
	if ((rc = sp_client_expect(rc, m, SP_MSG_OK, "changing the password",
	    err, sizeof(err))) != 0)
		goto fail;
	printf("password changed for %s\n", address);
	/* The server holds the new password now; the local key follows. */
	if ((rc = sp_cache_key_rewrap(o.cache_dir ? o.cache_dir : ".", pw,
	    pwlen, npw, npwlen, NULL)) != 0) {
		fprintf(stderr, "sealpost: the server has the new password, "
		    "but the local cache %s is still locked by the old one: "
		    "%s\n", o.cache_dir, sp_strerror(rc));
		goto out;
	}
	if (revoke_flag) {
		if ((rc = revoke_others(c, fr.session_id, &nrevoked, err,
		    sizeof(err))) != 0) {
			fprintf(stderr, "sealpost: %s (%zu other sessions "
			    "revoked before that)\n", err, nrevoked);
			goto out;
		}
		printf("revoked %zu other session%s\n", nrevoked,
		    nrevoked == 1 ? "" : "s");
	}
	/* The session this device keeps in its cache was ended above to log
	 * in afresh; end the fresh one too rather than leave it unused: the
	 * device logs in with the new password on its next command. */
	sp_frame_init(&f, SP_MSG_LOGOUT, 0);
	sp_client_msg_free(m);
	m = NULL;
	rc = sp_client_call(c, &f, &m);
	if (sp_client_expect(rc, m, SP_MSG_OK, "logout", err,
	    sizeof(err)) != 0)
		fprintf(stderr, "sealpost: %s (harmless: the session "
		    "expires)\n", err);
	status = 0;
	goto out;
fail:
	fprintf(stderr, "sealpost: %s\n", err);
out:
	sp_client_msg_free(m);
	free(nv);
	sp_login_keys_free(nlk);
	fresh_finish(&fr);
	sp_session_close(s);
	sodium_free(npw);
	sodium_free(pw);
	return status;
}

/* ---- devices ------------------------------------------------------------- */

static void
fmt_time(uint64_t t, char *buf, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, n, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, n, "?");
}

static int
cmd_devices(int argc, char **argv)
{
	const char *revoke_id = NULL;
	const struct cli_opt opts[] = {
		{ "revoke", &revoke_id, NULL }, { NULL, NULL, NULL },
	};
	struct cli o;
	struct sp_client_msg *m = NULL;
	sp_session *s;
	char err[512] = "", hex[33], cr[32], ls[32];
	uint8_t id[16];
	size_t n = 0, i, idlen = 0;
	int status = 1;

	if (cli_parse(&o, argc, argv, opts) != 0 || o.nargs != 0)
		return account_usage();
	if (revoke_id && (sodium_hex2bin(id, sizeof(id), revoke_id,
	    strlen(revoke_id), NULL, &idlen, NULL) != 0 || idlen != 16)) {
		fprintf(stderr, "sealpost: a session id is 32 hex digits (as "
		    "`sealpost account devices` lists them)\n");
		return 2;
	}
	if ((s = cli_session(&o, 1)) == NULL)
		return 1;
	if (revoke_id) {
		if (revoke_session(sp_session_client(s), id, err, sizeof(err)) != 0) {
			fprintf(stderr, "sealpost: %s\n", err);
			goto out;
		}
		printf("revoked session %s\n", revoke_id);
		status = 0;
		goto out;
	}
	if (sessions(sp_session_client(s), &m, &n, err, sizeof(err)) != 0) {
		fprintf(stderr, "sealpost: %s\n", err);
		goto out;
	}
	printf("%-32s  %-20s  %-19s  %s\n", "SESSION", "DEVICE", "CREATED (UTC)",
	    "LAST SEEN (UTC)");
	for (i = 0; i < n; i++) {
		const struct sp_frame_item *d = item(&m->f, SP_F_DEVICES, i);

		sodium_bin2hex(hex, sizeof(hex),
		    item(&m->f, SP_F_SESSION_IDS, i)->ptr, 16);
		fmt_time(item(&m->f, SP_F_CREATED, i)->u, cr, sizeof(cr));
		fmt_time(item(&m->f, SP_F_LAST_SEEN, i)->u, ls, sizeof(ls));
		/* The label is the server's text: printed as data, cut. */
		printf("%-32s  %-20.*s  %-19s  %s\n", hex,
		    (int)(d->len > 20 ? 20 : d->len), (const char *)d->ptr, cr,
		    ls);
	}
	status = 0;
out:
	sp_client_msg_free(m);
	sp_session_close(s);
	return status;
}

/* ---- recover ------------------------------------------------------------- */

/*
 * The way back in when the password is lost (protocol.md 6.6): the
 * recovery key proves itself with the recovery login key it derives, the
 * vault comes back, its recovery slot opens, and a new password slot
 * replaces the old one.  The account's server and address come from the
 * flags (or the cache directory's remembered settings are not needed: a
 * lost password means a fresh start).  A local cache made under the old
 * password stays locked; start a new one with the new password.
 */
static int
cmd_recover(int argc, char **argv)
{
	const char *file = NULL, *new_file = NULL;
	const struct cli_opt opts[] = {
		{ "recovery-file", &file, NULL },
		{ "new-password-file", &new_file, NULL },
		{ NULL, NULL, NULL },
	};
	struct cli o;
	sp_client *c = NULL;
	char *text = NULL, *npw = NULL, err[512] = "";
	size_t len, npwlen;
	int rc = 1;

	if (cli_parse(&o, argc, argv, opts) != 0 || o.nargs != 0)
		return account_usage();
	if (o.address == NULL) {
		fprintf(stderr, "sealpost: account recover needs --address "
		    "(and --server, --ca)\n");
		return 2;
	}
	if ((text = read_secret(file, "SEALPOST_RECOVERY", "Recovery key: ",
	    0, &len)) == NULL)
		return 2;
	if ((npw = read_secret(new_file, "SEALPOST_NEW_PASSWORD",
	    "New password: ", 1, &npwlen)) == NULL)
		goto out;
	if ((c = cli_connect(&o)) == NULL)
		goto out;
	if (sp_account_recover(c, o.address, text, npw, npwlen, o.kdf_ops,
	    o.kdf_mem_kib, "sealpost-cli", &o.sf, err, sizeof(err)) != 0) {
		fprintf(stderr, "sealpost: %s\n", err);
		goto out;
	}
	printf("account %s recovered: the new password is set (the recovery "
	    "key still works; keep it safe)\n", o.address);
	rc = 0;
out:
	sp_client_close(c);
	if (npw)
		sodium_free(npw);
	sodium_free(text);
	return rc;
}

int
cmd_account(int argc, char **argv)
{
	const char *sub = argc > 0 ? argv[0] : "";

	if (strcmp(sub, "create") == 0)
		return cmd_create_login(argc - 1, argv + 1, 1);
	if (strcmp(sub, "login") == 0)
		return cmd_create_login(argc - 1, argv + 1, 0);
	if (strcmp(sub, "logout") == 0)
		return cmd_logout(argc - 1, argv + 1);
	if (strcmp(sub, "passwd") == 0)
		return cmd_passwd(argc - 1, argv + 1);
	if (strcmp(sub, "devices") == 0)
		return cmd_devices(argc - 1, argv + 1);
	if (strcmp(sub, "2fa") == 0)
		return cmd_2fa(argc - 1, argv + 1);
	if (strcmp(sub, "events") == 0)
		return cmd_events(argc - 1, argv + 1);
	if (strcmp(sub, "recover") == 0)
		return cmd_recover(argc - 1, argv + 1);
	return account_usage();
}
