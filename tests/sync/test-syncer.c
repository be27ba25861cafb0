/*
 * Integration tests of the sync engine (client-core/syncer.c): the real
 * server, real clients, a real encrypted cache.  Every test checks the
 * cache log record by record: seq 1..N exactly once, in order, with the
 * bytes the writer appended.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "client-core/cache.h"
#include "client-core/syncer.h"
#include "tests/sync/harness.h"
#include "tests/unit.h"

static struct srv S;
static uint8_t *key;            /* the cache key, sodium_malloc'd */
static struct acct A;           /* tests 1, 2 and 4 share its log */
static char cdir[64];           /* and this cache directory */

/* The record with seq s: its own number, then 0..199 bytes of filler. */
static size_t
rec_make(uint64_t s, uint8_t *buf)
{
	int n = snprintf((char *)buf, 32, "rec-%llu:", (unsigned long long)s);
	size_t len = (size_t)n + s * 7919 % 200, i;

	for (i = (size_t)n; i < len; i++)
		buf[i] = (uint8_t)(s * 31 + i);
	return len;
}

static sp_client *
login(struct acct *a)
{
	sp_client *c = srv_connect(&S, "syncer");

	if (c != NULL && acct_login(c, a) != 0) {
		sp_client_close(c);
		c = NULL;
	}
	return c;
}

/*
 * Appends records from..from+count-1 (their seqs, if only we write),
 * per records a frame, up to 32 frames in flight.  0 if every APPENDED
 * gave the seq we expected.
 */
static int
append_run(sp_client *c, uint64_t from, uint64_t count, size_t per)
{
	static uint8_t buf[256][256];
	uint64_t ids[32], firsts[32], next = from, end = from + count;
	size_t head = 0, tail = 0, i, k;
	struct sp_client_msg *m;
	struct sp_frame f;
	int bad = 0;

	while (tail < head || next < end) {
		while (next < end && head - tail < 32) {
			sp_frame_init(&f, SP_MSG_APPEND, 0);
			for (k = 0; k < per && next + k < end; k++) {
				size_t len = rec_make(next + k, buf[k]);

				(void)sp_frame_add_item(&f, SP_F_RECORDS,
				    buf[k], len, 0);
			}
			/* sp_client_send encodes now: buf may be reused. */
			if (sp_client_send(c, &f, &ids[head % 32]) != 0)
				return -1;
			firsts[head++ % 32] = next;
			next += k;
		}
		i = tail++ % 32;
		if (sp_client_wait(c, ids[i], &m) != 0)
			return -1;
		if (m->f.type != SP_MSG_APPENDED || m->f.f[SP_F_SEQ].u !=
		    firsts[i])
			bad++;
		sp_client_msg_free(m);
	}
	return bad ? -1 : 0;
}

/* Appends from a child process on its own connection, slowly. */
static pid_t
append_later(uint64_t from, uint64_t count, size_t per, int gap_ms)
{
	pid_t pid = fork();
	struct timespec ts = { 0, (long)gap_ms * 1000000L };
	sp_client *c;
	uint64_t s;

	if (pid != 0)
		return pid;
	if ((c = login(&A)) == NULL)
		_exit(1);
	nanosleep(&ts, NULL);
	for (s = from; s < from + count; s += per) {
		if (append_run(c, s, per, per) != 0)
			_exit(2);
		nanosleep(&ts, NULL);
	}
	sp_client_close(c);
	_exit(0);
}

static int
child_ok(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return 0;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

struct walk {
	uint64_t next, bad;
	uint8_t buf[256];
};

static int
walk_fn(void *arg, uint64_t seq, const uint8_t *rec, size_t len)
{
	struct walk *w = arg;
	size_t want = rec_make(seq, w->buf);

	if (seq != w->next || len != want || memcmp(rec, w->buf, len) != 0) {
		if (w->bad++ < 5)
			fprintf(stderr, "# cache log: seq %llu (expected "
			    "%llu), %zu bytes\n", (unsigned long long)seq,
			    (unsigned long long)w->next, len);
	}
	w->next = seq + 1;
	return 0;
}

/* 1 if the cache holds exactly records 1..n, right, and last_applied n. */
static int
cache_holds(sp_cache *cache, uint64_t n)
{
	struct walk w = { .next = 1 };
	uint64_t last = 0;
	int rc = sp_cache_log_each(cache, 1, walk_fn, &w);

	if (sp_syncer_last_applied(cache, &last) != 0 || last != n ||
	    rc != 0 || w.bad != 0 || w.next != n + 1) {
		fprintf(stderr, "# cache: rc %d, %llu bad, ends at %llu, "
		    "last_applied %llu, want %llu\n", rc,
		    (unsigned long long)w.bad, (unsigned long long)w.next - 1,
		    (unsigned long long)last, (unsigned long long)n);
		return 0;
	}
	return 1;
}

static sp_cache *
cache_open(const char *dir)
{
	sp_cache *cache = NULL;

	return sp_cache_open(dir, key, NULL, &cache) == 0 ? cache : NULL;
}

static void
rm_rf(const char *dir)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	(void)system(cmd);
}

/* 1. A writer appends 1000; a second device pulls them into an empty
 * cache; a second pull applies nothing. */
static void
t_pull(void)
{
	sp_client *w = login(&A), *d = login(&A);
	sp_cache *cache = cache_open(cdir);
	uint64_t applied = 99, last = 0;
	char err[256] = "";

	CHECK(w && d && cache);
	if (!w || !d || !cache)
		goto out;
	CHECK_RC(append_run(w, 1, 1000, 7), 0);
	CHECK_RC(sp_syncer_last_applied(cache, &last), 0);
	CHECK(last == 0);
	CHECK_RC(sp_syncer_pull(d, cache, NULL, &applied, err, sizeof(err)),
	    0);
	CHECK(applied == 1000);
	CHECK(cache_holds(cache, 1000));
	CHECK_RC(sp_syncer_pull(d, cache, NULL, &applied, err, sizeof(err)),
	    0);
	CHECK(applied == 0);
	CHECK(cache_holds(cache, 1000));
	if (err[0])
		fprintf(stderr, "# %s\n", err);
out:
	sp_cache_close(cache);
	sp_client_close(w);
	sp_client_close(d);
}

/* 2. Follow: records appended on another connection while we listen. */
static void
t_follow(void)
{
	sp_client *d = login(&A);
	sp_cache *cache = cache_open(cdir);
	uint64_t applied = 0;
	char err[256] = "";
	pid_t pid;

	CHECK(d && cache);
	if (!d || !cache)
		goto out;
	pid = append_later(1001, 50, 10, 100);
	CHECK_RC(sp_syncer_follow(d, cache, 2000, NULL, &applied, err,
	    sizeof(err)), 0);
	CHECK(child_ok(pid));
	CHECK(applied == 50);
	CHECK(cache_holds(cache, 1050));
	if (err[0])
		fprintf(stderr, "# %s\n", err);
out:
	sp_cache_close(cache);
	sp_client_close(d);
}

/* 4. Connections cut in the middle of following, while a writer writes:
 * nothing lost, nothing twice. */
static void
t_follow_reconnect(void)
{
	sp_cache *cache = cache_open(cdir);
	struct sp_syncer_opts o = { .duration_ms = 150 };
	uint64_t applied, total = 0;
	char err[256] = "";
	int rounds = 0, st, writing = 1, rc = 0;
	pid_t pid;

	CHECK(cache != NULL);
	if (cache == NULL)
		return;
	pid = append_later(1051, 300, 5, 15);
	while (rc == 0 && rounds < 200) {
		sp_client *d = login(&A);

		if (d == NULL) {
			rc = -1;
			break;
		}
		/* Once the writer is done, one last follow drains. */
		if (!writing)
			o.duration_ms = 0;
		rc = sp_syncer_follow(d, cache, 1000, &o, &applied, err,
		    sizeof(err));
		total += applied;
		sp_client_close(d);
		rounds++;
		if (!writing)
			break;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
			writing = 0;
		}
	}
	CHECK_RC(rc, 0);
	CHECK(!writing);
	if (writing)
		(void)child_ok(pid);
	fprintf(stderr, "# %d connections, %llu records applied\n", rounds,
	    (unsigned long long)total);
	CHECK(rounds >= 3);
	CHECK(total == 300);
	CHECK(cache_holds(cache, 1350));
	if (err[0])
		fprintf(stderr, "# %s\n", err);
	sp_cache_close(cache);
}

static void
report_progress(void *arg, uint64_t applied, uint64_t last)
{
	int fd = *(int *)arg;

	(void)last;
	(void)!write(fd, &applied, sizeof(applied));
}

/* The child of t_crash_resume: pulls in pages of 50, reporting each. */
static void
pull_child(struct acct *b, const char *dir, int fd)
{
	sp_cache *cache = cache_open(dir);
	sp_client *c = srv_connect(&S, "victim");
	struct sp_syncer_opts o = { .max_records = 50,
	    .progress = report_progress, .arg = &fd };

	if (cache == NULL || c == NULL || acct_login(c, b) != 0)
		_exit(1);
	_exit(sp_syncer_pull(c, cache, &o, NULL, NULL, 0) == 0 ? 0 : 2);
}

/* One round: kill a pulling child once it has applied at least at, then
 * pull the rest here.  Returns where the child was killed, 0 on failure. */
static uint64_t
crash_round(struct acct *b, uint64_t at)
{
	char dir[64] = "/tmp/sp-syncer-crash-XXXXXX", err[256] = "";
	struct timespec ts = { 0, 0 };
	uint64_t seen = 0, where = 0, applied = 0;
	sp_cache *cache;
	sp_client *c;
	int p[2], st;
	pid_t pid;

	if (mkdtemp(dir) == NULL || pipe(p) != 0)
		return 0;
	if ((pid = fork()) == 0) {
		close(p[0]);
		pull_child(b, dir, p[1]);
	}
	close(p[1]);
	while (seen < at && read(p[0], &seen, sizeof(seen)) ==
	    (ssize_t)sizeof(seen))
		;
	/* Somewhere inside the next page or two, not just between. */
	ts.tv_nsec = (long)randombytes_uniform(4000) * 1000L;
	nanosleep(&ts, NULL);
	kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	close(p[0]);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	if ((cache = cache_open(dir)) == NULL)
		goto out;
	CHECK_RC(sp_syncer_last_applied(cache, &where), 0);
	CHECK(where >= at && where < 5000);
	CHECK(where == 0 || cache_holds(cache, where));
	c = login(b);
	CHECK(c != NULL);
	if (c != NULL)
		CHECK_RC(sp_syncer_pull(c, cache, NULL, &applied, err,
		    sizeof(err)), 0);
	CHECK(applied == 5000 - where);
	CHECK(cache_holds(cache, 5000));
	if (err[0])
		fprintf(stderr, "# %s\n", err);
	sp_client_close(c);
	sp_cache_close(cache);
out:
	rm_rf(dir);
	fprintf(stderr, "# killed at seq %llu (aimed at %llu)\n",
	    (unsigned long long)where, (unsigned long long)at);
	return where;
}

/* 3. SIGKILL mid-pull at three points, then resume: 1..5000 once each. */
static void
t_crash_resume(void)
{
	sp_client *c = srv_connect(&S, "writer");
	struct acct b;
	int i;

	CHECK(c && acct_register(c, &b, "crash@example.org", NULL, NULL) ==
	    SP_MSG_OK && acct_login(c, &b) == 0);
	if (c == NULL)
		return;
	CHECK_RC(append_run(c, 1, 5000, 100), 0);
	sp_client_close(c);
	for (i = 0; i < 3; i++) {
		/* One point in each third of the log. */
		uint64_t at = 1 + (uint64_t)i * 1600 +
		    randombytes_uniform(1500);

		CHECK(crash_round(&b, at) != 0);
	}
	acct_free(&b);
}

int
main(void)
{
	sp_client *c;
	int rc;

	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0 || (key = sodium_malloc(32)) == NULL)
		return 1;
	randombytes_buf(key, 32);
	snprintf(cdir, sizeof(cdir), "/tmp/sp-syncer-XXXXXX");
	if (mkdtemp(cdir) == NULL ||
	    srv_start(&S, 1, "--open-registration yes") != 0)
		return 1;
	if ((c = srv_connect(&S, "setup")) == NULL ||
	    acct_register(c, &A, "sync@example.org", NULL, NULL) !=
	    SP_MSG_OK)
		return 1;
	sp_client_close(c);
	RUN(t_pull);
	RUN(t_follow);
	RUN(t_follow_reconnect);
	RUN(t_crash_resume);
	rc = unit_done();
	acct_free(&A);
	srv_cleanup(&S);
	rm_rf(cdir);
	sodium_free(key);
	return rc;
}
