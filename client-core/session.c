/*
 * Opening an account on this device (session.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "client-core/account.h"
#include "client-core/keyring.h"
#include "client-core/session.h"
#include "client-core/syncer.h"

#define CONF_NAME "account.conf"

struct settings {
	char host[256];
	int port;
	int plain;
	char ca_file[1024];
	char address[255];
};

struct sp_session {
	struct settings set;
	char device[64];
	sp_client *c;
	sp_cache *cache;
	sp_keyset *ks;
	sp_mbox *mb;
	uint8_t *token;          /* sodium_malloc, 32 bytes */
	int timeout_ms;
};

/* Reads DIR/account.conf ("key=value" lines) if it exists. */
static int
conf_read(const char *dir, struct settings *st)
{
	char path[4096], line[1300];
	FILE *f;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, CONF_NAME) >=
	    sizeof(path))
		return ENAMETOOLONG;
	if ((f = fopen(path, "r")) == NULL)
		return errno == ENOENT ? 0 : errno;
	while (fgets(line, sizeof(line), f)) {
		char *eq = strchr(line, '='), *v;
		size_t n;

		if (eq == NULL)
			continue;
		*eq = 0;
		v = eq + 1;
		n = strlen(v);
		while (n > 0 && (v[n - 1] == '\n' || v[n - 1] == '\r'))
			v[--n] = 0;
		if (strcmp(line, "host") == 0)
			snprintf(st->host, sizeof(st->host), "%s", v);
		else if (strcmp(line, "port") == 0)
			st->port = atoi(v);
		else if (strcmp(line, "plain") == 0)
			st->plain = atoi(v);
		else if (strcmp(line, "ca") == 0)
			snprintf(st->ca_file, sizeof(st->ca_file), "%s", v);
		else if (strcmp(line, "address") == 0)
			snprintf(st->address, sizeof(st->address), "%s", v);
	}
	fclose(f);
	return 0;
}

/* Writes the settings atomically (temp file, fsync, rename). */
static int
conf_write(const char *dir, const struct settings *st)
{
	char path[4096], tmp[4100];
	FILE *f;
	int rc = 0;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, CONF_NAME) >=
	    sizeof(path))
		return ENAMETOOLONG;
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	if ((f = fopen(tmp, "w")) == NULL)
		return errno;
	fprintf(f, "host=%s\nport=%d\nplain=%d\nca=%s\naddress=%s\n",
	    st->host, st->port, st->plain, st->ca_file, st->address);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		rc = errno;
	if (fclose(f) != 0 && rc == 0)
		rc = errno;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = errno;
	if (rc != 0)
		unlink(tmp);
	return rc;
}

/*
 * The local key from the desktop keyring if it holds it (no Argon2id, no
 * password), else from DIR/cache.key under the password, which is then
 * put into the keyring for next time (best effort: keyring.h).
 */
static int
cache_open(const struct sp_session_opts *o, const char *address,
    sp_cache **c_r, char *err, size_t errlen)
{
	const char *dir = o->cache_dir;
	uint8_t *key = NULL;
	int rc;

	if (!o->no_keyring && sp_keyring_load(dir, &key) == 0) {
		rc = sp_cache_open(dir, key, NULL, c_r);
		sodium_free(key);
		key = NULL;
		if (rc == 0)
			return 0;
		/* a stale entry (the cache was made again): the password */
	}
	if (o->password == NULL) {
		snprintf(err, errlen, "a password is needed: no desktop keyring "
		    "holds the key of %s", dir);
		return EACCES;
	}
	rc = sp_cache_key_open(dir, o->password, o->password_len, &key);
	if (rc == ENOENT)
		rc = sp_cache_key_create(dir, o->password, o->password_len,
		    NULL, &key);
	if (rc == 0)
		rc = sp_cache_open(dir, key, NULL, c_r);
	if (rc == 0 && !o->no_keyring)
		(void)sp_keyring_store(dir, address, key);
	sodium_free(key);
	if (rc != 0)
		snprintf(err, errlen, "the local cache %s: %s", dir,
		    rc == SP_EAUTH ? "the password does not open it" :
		    sp_strerror(rc));
	return rc;
}

static int
connect_to(const struct sp_session *s, sp_client **c_r, char *err,
    size_t errlen)
{
	struct sp_client_opts co = { .host = s->set.host, .port = s->set.port,
	    .tls = !s->set.plain, .ca_file = s->set.ca_file[0] ?
	    s->set.ca_file : NULL, .device = s->device,
	    .timeout_ms = s->timeout_ms };
	char why[256] = "";
	int rc;

	if ((rc = sp_client_connect(&co, c_r, why, sizeof(why))) != 0)
		snprintf(err, errlen, "cannot reach %s:%d: %s", s->set.host,
		    s->set.port, why);
	return rc;
}

static int
cache_exists(const char *dir)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/cache.key", dir);
	return access(path, F_OK) == 0;
}

/* "session" in the cache: token [32] || the serialized key set. */
static int
session_save(sp_session *s)
{
	uint8_t *ks = NULL, *v = NULL;
	size_t kslen = 0;
	int rc;

	if ((rc = sp_keyset_serialize(s->ks, &ks, &kslen)) != 0)
		return rc;
	if ((v = sodium_malloc(32 + kslen)) == NULL) {
		sodium_free(ks);
		return SP_ENOMEM;
	}
	memcpy(v, s->token, 32);
	memcpy(v + 32, ks, kslen);
	rc = sp_cache_put(s->cache, SP_CACHE_T_STATE, "session", 7, v,
	    32 + kslen);
	sodium_free(ks);
	sodium_free(v);
	return rc;
}

static int
session_resume(sp_session *s)
{
	struct sp_frame f;
	struct sp_client_msg *m = NULL;
	uint8_t *v = NULL;
	size_t len = 0;
	int rc;

	if ((rc = sp_cache_get(s->cache, SP_CACHE_T_STATE, "session", 7, &v,
	    &len)) != 0)
		return rc;
	if (len <= 32 || (rc = sp_keyset_parse(v + 32, len - 32,
	    &s->ks)) != 0) {
		rc = SP_EFORMAT;
		goto out;
	}
	memcpy(s->token, v, 32);
	sp_frame_init(&f, SP_MSG_RESUME, 0);
	sp_frame_set_bytes(&f, SP_F_TOKEN, s->token, 32);
	rc = sp_client_call(s->c, &f, &m);
	if (rc != 0 || m->f.type != SP_MSG_RESUME_OK ||
	    m->f.f[SP_F_ADDRESS].len != strlen(s->set.address) ||
	    strncasecmp((const char *)m->f.f[SP_F_ADDRESS].ptr,
	    s->set.address, m->f.f[SP_F_ADDRESS].len) != 0)
		rc = rc ? rc : SP_EAUTH;
	if (rc == EPIPE || rc == ETIMEDOUT) {
		/* The server closed on us: a fresh connection for login. */
		char err[64];

		sp_client_close(s->c);
		s->c = NULL;
		if (connect_to(s, &s->c, err, sizeof(err)) != 0)
			s->c = NULL;
	}
out:
	if (rc != 0) {
		sp_keyset_destroy(s->ks);
		s->ks = NULL;
	}
	sp_client_msg_free(m);
	if (v) {
		sodium_memzero(v, len);
		free(v);
	}
	return rc;
}

int
sp_session_open(const struct sp_session_opts *o, sp_session **s_r,
    char *err, size_t errlen)
{
	sp_session *s;
	uint64_t last = 0;
	int rc;

	*s_r = NULL;
	if (o->cache_dir == NULL) {
		snprintf(err, errlen, "a cache directory is needed");
		return SP_EINVAL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->token = sodium_malloc(32)) == NULL) {
		free(s);
		snprintf(err, errlen, "out of memory");
		return SP_ENOMEM;
	}
	s->timeout_ms = 30000;
	snprintf(s->device, sizeof(s->device), "%s",
	    o->device ? o->device : "sealpost");
	if ((rc = conf_read(o->cache_dir, &s->set)) != 0) {
		snprintf(err, errlen, "%s/%s: %s", o->cache_dir, CONF_NAME,
		    strerror(rc));
		goto fail;
	}
	if (o->host)
		snprintf(s->set.host, sizeof(s->set.host), "%s", o->host);
	if (o->port)
		s->set.port = o->port;
	if (o->host || o->port)
		s->set.plain = o->plain;
	if (o->ca_file)
		snprintf(s->set.ca_file, sizeof(s->set.ca_file), "%s",
		    o->ca_file);
	if (o->address)
		snprintf(s->set.address, sizeof(s->set.address), "%s",
		    o->address);
	if (!s->set.host[0]) {
		snprintf(s->set.host, sizeof(s->set.host), "127.0.0.1");
		s->set.port = s->set.port ? s->set.port : 8443;
	}
	if (!s->set.address[0]) {
		snprintf(err, errlen, "which account? give --address the "
		    "first time a cache directory is used");
		rc = SP_EINVAL;
		goto fail;
	}
	if ((rc = connect_to(s, &s->c, err, errlen)) != 0)
		goto fail;
	/* A device that logged in before resumes its session: the token and
	 * keys wait in the cache, under the password-wrapped local key, so
	 * no login (and no second Argon2id) is needed. */
	if (cache_exists(o->cache_dir)) {
		if ((rc = cache_open(o, s->set.address, &s->cache, err,
		    errlen)) != 0)
			goto fail;
		if (session_resume(s) == 0)
			goto logged_in;
	}
	if (o->password == NULL) {
		snprintf(err, errlen, "a password is needed to log in");
		rc = EACCES;
		goto fail;
	}
	if (s->c == NULL && (rc = connect_to(s, &s->c, err, errlen)) != 0)
		goto fail;
	if ((rc = sp_account_login_2fa(s->c, s->set.address, o->password,
	    o->password_len, s->device, o->second_factor, &s->ks, s->token,
	    &last, err, errlen)) != 0)
		goto fail;
	if (s->cache == NULL && (rc = cache_open(o, s->set.address,
	    &s->cache, err, errlen)) != 0)
		goto fail;
	if ((rc = session_save(s)) != 0) {
		snprintf(err, errlen, "saving the session: %s",
		    sp_strerror(rc));
		goto fail;
	}
logged_in:
	/* Remember the settings only once they worked. */
	if ((rc = conf_write(o->cache_dir, &s->set)) != 0) {
		snprintf(err, errlen, "%s/%s: %s", o->cache_dir, CONF_NAME,
		    strerror(rc));
		goto fail;
	}
	if ((rc = sp_mbox_open(s->cache, s->ks, &s->mb)) != 0) {
		snprintf(err, errlen, "the mailbox model: %s",
		    sp_strerror(rc));
		goto fail;
	}
	if (!o->no_sync) {
		if (o->progress)
			sp_mbox_set_progress(s->mb, o->progress,
			    o->progress_arg);
		rc = sp_mbox_sync(s->mb, s->c, err, errlen);
		sp_mbox_set_progress(s->mb, NULL, NULL);
		if (rc != 0)
			goto fail;
	}
	*s_r = s;
	return 0;
fail:
	sp_session_close(s);
	return rc;
}

void
sp_session_close(sp_session *s)
{
	if (s == NULL)
		return;
	sp_mbox_close(s->mb);
	sp_cache_close(s->cache);
	sp_keyset_destroy(s->ks);
	sp_client_close(s->c);
	sodium_free(s->token);
	free(s);
}

int
sp_session_logout(sp_session *s, char *err, size_t errlen)
{
	struct sp_frame f;
	struct sp_client_msg *m = NULL;
	int rc;

	sp_frame_init(&f, SP_MSG_LOGOUT, 0);
	rc = sp_client_call(s->c, &f, &m);
	rc = sp_client_expect(rc, m, SP_MSG_OK, "logout", err, errlen);
	sp_client_msg_free(m);
	/* Forget the session here too, whatever the server said. */
	(void)sp_cache_del(s->cache, SP_CACHE_T_STATE, "session", 7);
	sp_session_close(s);
	return rc;
}

sp_client *sp_session_client(sp_session *s) { return s->c; }
sp_cache *sp_session_cache(sp_session *s) { return s->cache; }
sp_mbox *sp_session_mbox(sp_session *s) { return s->mb; }
const sp_keyset *sp_session_keys(sp_session *s) { return s->ks; }
const char *sp_session_address(const sp_session *s) { return s->set.address; }

int
sp_session_sync(sp_session *s, char *err, size_t errlen)
{
	return sp_mbox_sync(s->mb, s->c, err, errlen);
}

int
sp_session_connect_extra(sp_session *s, sp_client **c_r, char *err,
    size_t errlen)
{
	struct sp_frame f;
	struct sp_client_msg *m = NULL;
	sp_client *c = NULL;
	int rc;

	*c_r = NULL;
	if ((rc = connect_to(s, &c, err, errlen)) != 0)
		return rc;
	sp_frame_init(&f, SP_MSG_RESUME, 0);
	sp_frame_set_bytes(&f, SP_F_TOKEN, s->token, 32);
	rc = sp_client_call(c, &f, &m);
	rc = sp_client_expect(rc, m, SP_MSG_RESUME_OK, "resume", err, errlen);
	sp_client_msg_free(m);
	if (rc != 0) {
		sp_client_close(c);
		return rc;
	}
	*c_r = c;
	return 0;
}

int
sp_session_connect_fresh(sp_session *s, const char *password,
    size_t password_len, const struct sp_second_factor *sf, sp_client **c_r,
    char *err, size_t errlen)
{
	sp_keyset *ks = NULL;
	sp_client *c = NULL;
	uint8_t *token;
	uint64_t last;
	int rc;

	*c_r = NULL;
	if ((token = sodium_malloc(32)) == NULL)
		return SP_ENOMEM;
	if ((rc = connect_to(s, &c, err, errlen)) == 0 &&
	    (rc = sp_account_login_2fa(c, s->set.address, password,
	    password_len, s->device, sf, &ks, token, &last, err,
	    errlen)) == 0)
		*c_r = c;
	else
		sp_client_close(c);
	/* The keys are the session's already; the token dies with c's
	 * LOGOUT or expires. */
	sp_keyset_destroy(ks);
	sodium_free(token);
	return rc;
}

int
sp_session_fetch_bodies(sp_session *s, size_t nconn,
    void (*progress)(void *, uint64_t, uint64_t), void *arg,
    size_t *failed_r, char *err, size_t errlen)
{
	sp_client *cs[16];
	size_t n = 1, i;
	int rc;

	if (nconn > 16)
		nconn = 16;
	cs[0] = s->c;
	/* Extra connections are an optimisation: fewer is fine. */
	while (n < nconn && sp_session_connect_extra(s, &cs[n], err,
	    errlen) == 0)
		n++;
	rc = sp_mbox_fetch_bodies_par(s->mb, cs, n, progress, arg, failed_r,
	    err, errlen);
	for (i = 1; i < n; i++)
		sp_client_close(cs[i]);
	return rc;
}
