/*
 * One account served by the bridge; see bridge_account.h.
 *
 * Why a writer connection and a follow connection: sp_client is blocking
 * and belongs to one thread, and a connection with a subscription gets
 * PUSH frames at any time.  The follow thread owns a connection that only
 * follows; changes go over the session's own connection on the IMAP
 * thread.  Both move the cache's last_applied; the syncer notices when the
 * other one moved it (EAGAIN) and nothing is lost: the follow thread then
 * subscribes again on a new connection, the writer pulls again.
 */
#include "bridge/bridge_account.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "client-core/session.h"
#include "client-core/syncer.h"
#include "crypto/error.h"

/* How long one follow call waits for a PUSH before it subscribes anew on
 * a fresh connection; also the longest a shutdown waits for the thread. */
#define FOLLOW_TIMEOUT_MS 3000

struct bridge_account {
	sp_session *s;
	sp_client *writer;      /* NULL: the session's own connection */
	int writer_broken;
	pthread_mutex_t lock;
	pthread_t thread;
	int thread_started;
	volatile int stop;      /* read by the follow thread */
	bridge_wake_fn wake;
	void *wake_arg;
	char pass[BRIDGE_PASS_LEN + 1];
	char address[256];
	uint64_t prefetched_at;  /* folders' uidnext sum at the last clean
	                          * prefetch (bridge_account_prefetch) */
	/* The background thread (bridge_account_start_background): it
	 * sleeps on changed until changes moves past what it last ran on. */
	pthread_cond_t changed;
	uint64_t changes;        /* applies that changed the model; lock */
	pthread_t bg_thread;
	int bg_started;
	bridge_bg_fn bg_run;
	void (*bg_destroy)(void *arg);
	void *bg_arg;
};

static void
follow_progress(void *arg, uint64_t applied, uint64_t last)
{
	bridge_account *a = arg;
	uint64_t n = 0;

	bridge_wake_fn wake;
	void *wake_arg;

	pthread_mutex_lock(&a->lock);
	(void)sp_mbox_apply(sp_session_mbox(a->s), &n);
	wake = a->wake;
	wake_arg = a->wake_arg;
	if (n > 0) {
		a->changes++;
		pthread_cond_broadcast(&a->changed);
	}
	pthread_mutex_unlock(&a->lock);
	if (n > 0 && wake)
		wake(wake_arg);
}

void
bridge_account_set_wake(bridge_account *a, bridge_wake_fn wake,
    void *wake_arg)
{
	pthread_mutex_lock(&a->lock);
	a->wake = wake;
	a->wake_arg = wake_arg;
	pthread_mutex_unlock(&a->lock);
}

static void *
follow_main(void *arg)
{
	bridge_account *a = arg;
	struct sp_syncer_opts so = { .progress = follow_progress, .arg = a };
	sp_client *c = NULL;
	char err[256];
	int rc, backoff_ms = 0;

	while (!a->stop) {
		if (backoff_ms > 0) {
			int waited;

			for (waited = 0; waited < backoff_ms && !a->stop;
			    waited += 100)
				usleep(100 * 1000);
			if (a->stop)
				break;
		}
		pthread_mutex_lock(&a->lock);
		rc = sp_session_connect_extra(a->s, &c, err, sizeof(err));
		pthread_mutex_unlock(&a->lock);
		if (rc != 0) {
			backoff_ms = backoff_ms ? backoff_ms * 2 : 500;
			if (backoff_ms > 10000)
				backoff_ms = 10000;
			continue;
		}
		rc = sp_syncer_follow(c, sp_session_cache(a->s),
		    FOLLOW_TIMEOUT_MS, &so, NULL, err, sizeof(err));
		sp_client_close(c);
		c = NULL;
		/* Records committed by a follow that then failed are applied
		 * here too. */
		follow_progress(a, 0, 0);
		backoff_ms = rc == 0 || rc == EAGAIN ? 0 : 1000;
	}
	return NULL;
}

int
bridge_account_open(const char *dir, const char *password,
    size_t password_len, bridge_wake_fn wake, void *wake_arg,
    bridge_account **a_r, char *err, size_t errlen)
{
	struct sp_session_opts so = { .cache_dir = dir, .password = password,
	    .password_len = password_len, .device = "sealpost-bridge" };
	bridge_account *a;
	int rc;

	*a_r = NULL;
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return ENOMEM;
	}
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->changed, NULL);
	a->wake = wake;
	a->wake_arg = wake_arg;
	if ((rc = bridge_account_read_password(dir, a->pass,
	    sizeof(a->pass))) != 0) {
		snprintf(err, errlen, "%s: no bridge password (%s)", dir,
		    strerror(rc));
		goto fail;
	}
	if ((rc = sp_session_open(&so, &a->s, err, errlen)) != 0)
		goto fail;
	snprintf(a->address, sizeof(a->address), "%s",
	    sp_session_address(a->s));
	if ((rc = pthread_create(&a->thread, NULL, follow_main, a)) != 0) {
		snprintf(err, errlen, "cannot start a thread: %s",
		    strerror(rc));
		goto fail;
	}
	a->thread_started = 1;
	*a_r = a;
	return 0;
fail:
	bridge_account_close(a);
	return rc;
}

void
bridge_account_close(bridge_account *a)
{
	if (a == NULL)
		return;
	pthread_mutex_lock(&a->lock);
	a->stop = 1;
	pthread_cond_broadcast(&a->changed);
	pthread_mutex_unlock(&a->lock);
	if (a->bg_started)
		pthread_join(a->bg_thread, NULL);
	if (a->bg_destroy)
		a->bg_destroy(a->bg_arg);
	if (a->thread_started)
		pthread_join(a->thread, NULL);
	sp_client_close(a->writer);
	sp_session_close(a->s);
	pthread_cond_destroy(&a->changed);
	pthread_mutex_destroy(&a->lock);
	sodium_memzero(a->pass, sizeof(a->pass));
	free(a);
}

const char *
bridge_account_address(const bridge_account *a)
{
	return a->address;
}

int
bridge_account_check_password(const bridge_account *a, const char *pw,
    size_t len)
{
	if (len != BRIDGE_PASS_LEN)
		return 0;
	return sodium_memcmp(a->pass, pw, BRIDGE_PASS_LEN) == 0;
}

void
bridge_account_lock(bridge_account *a)
{
	pthread_mutex_lock(&a->lock);
}

void
bridge_account_unlock(bridge_account *a)
{
	pthread_mutex_unlock(&a->lock);
}

sp_mbox *
bridge_account_mbox(bridge_account *a)
{
	return sp_session_mbox(a->s);
}

struct sp_session *
bridge_account_session(bridge_account *a)
{
	return a->s;
}

sp_client *
bridge_account_client(bridge_account *a, char *err, size_t errlen)
{
	if (a->writer_broken) {
		sp_client_close(a->writer);
		a->writer = NULL;
		if (sp_session_connect_extra(a->s, &a->writer, err,
		    errlen) != 0)
			return NULL;
		a->writer_broken = 0;
	}
	return a->writer ? a->writer : sp_session_client(a->s);
}

int
bridge_account_settle(bridge_account *a, int rc, char *err, size_t errlen)
{
	int i;

	if (rc == EPIPE || rc == ETIMEDOUT) {
		a->writer_broken = 1;
		return rc;
	}
	for (i = 0; rc == EAGAIN && i < 10; i++) {
		sp_client *c = bridge_account_client(a, err, errlen);

		if (c == NULL)
			return EPIPE;
		rc = sp_mbox_sync(sp_session_mbox(a->s), c, err, errlen);
		if (rc == EPIPE || rc == ETIMEDOUT)
			a->writer_broken = 1;
	}
	return rc;
}

int
bridge_account_prefetch(bridge_account *a, char *err, size_t errlen)
{
	sp_client *cs[BRIDGE_PREFETCH_CONNS];
	size_t n = 0, i, failed = 0;
	const struct sp_mbox_folder *fo;
	uint64_t mark = 1;
	int rc;

	/* Every message entering a folder moves its uidnext: their sum
	 * marks the set of messages. */
	fo = sp_mbox_folders(sp_session_mbox(a->s), &n);
	for (i = 0; i < n; i++)
		mark += fo[i].uidnext;
	n = 0;

	/* Bodies that failed stay missing: once the model has not changed
	 * since a prefetch, another one would only fail them again. */
	if (a->prefetched_at != 0 && a->prefetched_at == mark)
		return 0;
	if ((cs[n] = bridge_account_client(a, err, errlen)) == NULL)
		return EPIPE;
	n++;
	while (n < BRIDGE_PREFETCH_CONNS &&
	    sp_session_connect_extra(a->s, &cs[n], err, errlen) == 0)
		n++;
	rc = sp_mbox_fetch_bodies_par(sp_session_mbox(a->s), cs, n, NULL,
	    NULL, &failed, err, errlen);
	for (i = 1; i < n; i++)
		sp_client_close(cs[i]);
	if (rc == EPIPE || rc == ETIMEDOUT)
		a->writer_broken = 1;
	if (rc == 0)
		a->prefetched_at = mark;
	return rc;
}

/* ---- background work ---------------------------------------------------- */

static void *
bg_main(void *arg)
{
	bridge_account *a = arg;
	uint64_t seen;

	pthread_mutex_lock(&a->lock);
	for (;;) {
		if (a->stop)
			break;
		seen = a->changes;
		pthread_mutex_unlock(&a->lock);
		a->bg_run(a, a->bg_arg);
		pthread_mutex_lock(&a->lock);
		while (!a->stop && a->changes == seen)
			pthread_cond_wait(&a->changed, &a->lock);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

int
bridge_account_start_background(bridge_account *a, bridge_bg_fn run,
    void (*destroy)(void *arg), void *arg)
{
	int rc;

	if (a->bg_started || a->bg_destroy)
		return EBUSY;
	a->bg_run = run;
	a->bg_arg = arg;
	if ((rc = pthread_create(&a->bg_thread, NULL, bg_main, a)) != 0)
		return rc;
	/* Only now: a failed start leaves arg to the caller. */
	a->bg_destroy = destroy;
	a->bg_started = 1;
	return 0;
}

int
bridge_account_stopping(const bridge_account *a)
{
	return a->stop;
}

int
bridge_account_fetch_missing(bridge_account *a, char *err, size_t errlen)
{
	sp_client *cs[BRIDGE_PREFETCH_CONNS];
	sp_mbox *copy = NULL;
	size_t n = 0, i, failed = 0;
	int rc;

	/* The copy is read by the fetcher threads while the follow thread
	 * may apply to the live model; both read the same committed cache,
	 * and the copy is loaded under the lock, between applies. */
	pthread_mutex_lock(&a->lock);
	rc = sp_mbox_open(sp_session_cache(a->s), sp_session_keys(a->s),
	    &copy);
	while (rc == 0 && n < BRIDGE_PREFETCH_CONNS &&
	    sp_session_connect_extra(a->s, &cs[n], err, errlen) == 0)
		n++;
	pthread_mutex_unlock(&a->lock);
	if (rc != 0) {
		snprintf(err, errlen, "cannot read the model: %s",
		    sp_strerror(rc));
		goto out;
	}
	if (n == 0) {
		rc = EPIPE;
		goto out;
	}
	rc = sp_mbox_fetch_bodies_par(copy, cs, n, NULL, NULL, &failed, err,
	    errlen);
out:
	for (i = 0; i < n; i++)
		sp_client_close(cs[i]);
	sp_mbox_close(copy);
	return rc;
}

/* ---- the account's directory -------------------------------------------- */

int
bridge_account_make_password(const char *dir)
{
	static const char alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijk"
	    "mnopqrstuvwxyz23456789";
	char path[4096], pw[BRIDGE_PASS_LEN + 2];
	size_t i;
	int fd, rc = 0;

	if ((size_t)snprintf(path, sizeof(path), "%s/bridge.pass", dir) >=
	    sizeof(path))
		return ENAMETOOLONG;
	if (access(path, F_OK) == 0)
		return 0;
	for (i = 0; i < BRIDGE_PASS_LEN; i++)
		pw[i] = alphabet[randombytes_uniform(sizeof(alphabet) - 1)];
	pw[BRIDGE_PASS_LEN] = '\n';
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600)) < 0)
		return errno;
	if (write(fd, pw, BRIDGE_PASS_LEN + 1) != BRIDGE_PASS_LEN + 1 ||
	    fsync(fd) != 0)
		rc = errno ? errno : EIO;
	close(fd);
	sodium_memzero(pw, sizeof(pw));
	if (rc != 0)
		unlink(path);
	return rc;
}

int
bridge_account_read_password(const char *dir, char *buf, size_t cap)
{
	char path[4096];
	ssize_t n;
	int fd;

	if (cap <= BRIDGE_PASS_LEN)
		return SP_EINVAL;
	if ((size_t)snprintf(path, sizeof(path), "%s/bridge.pass", dir) >=
	    sizeof(path))
		return ENAMETOOLONG;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno;
	n = read(fd, buf, BRIDGE_PASS_LEN);
	close(fd);
	if (n != BRIDGE_PASS_LEN)
		return SP_EFORMAT;
	buf[BRIDGE_PASS_LEN] = 0;
	return 0;
}
