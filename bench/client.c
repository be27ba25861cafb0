/*
 * bench/client: the initial sync of a new device, against a baseline
 * measured in the same run.
 *
 *   1. Setup (not timed): the real server on 127.0.0.1 (TLS), one account
 *      made by the real client, and MESSAGES messages of SIZE bytes
 *      delivered into its log the way the gateway does it (sealed to the
 *      account, body blob + metadata record, group commit), from 8
 *      threads.
 *   2. Baseline: the raw decrypt rate for the same kind of data in memory
 *      here: per message, open the metadata envelope (X25519) and the
 *      body envelope (X25519, full read with padding check).
 *   3. Timed, in a child process so its memory is its own: a device with
 *      an empty cache opens the account (login, pull of the whole log,
 *      the mailbox model applied) and fetches, decrypts and caches every
 *      body.  Messages per second and MB per second, and the ratio to the
 *      baseline (the goal is at least 0.5); peak RSS during the sync and
 *      RSS after it.
 *
 *   bench-client [MESSAGES [SIZE]]   (default 10000 and 51200; also
 *                                     $SP_BENCH_MESSAGES)
 *
 * SP_SERVER_BIN and SP_ADMIN_BIN come from meson (benchmark 'client').
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "client-core/account.h"
#include "client-core/session.h"
#include "crypto/envelope.h"
#include "crypto/meta.h"
#include "server/gateway/gw_deliver.h"
#include "tests/sync/harness.h"

#define ADDRESS "bench@example.org"
#define PASSWORD "bench-password-0123456789"
#define THREADS 8

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A plausible message of exactly size bytes (headers + text). */
static uint8_t *
make_message(size_t i, size_t size)
{
	uint8_t *m = malloc(size);
	int h;
	size_t k;

	if (m == NULL)
		return NULL;
	h = snprintf((char *)m, size, "From: Sender %zu <s%zu@example.net>\r\n"
	    "To: " ADDRESS "\r\nSubject: benchmark message %zu\r\n"
	    "Date: Mon, 30 Nov 2026 08:00:00 +0000\r\n"
	    "Message-ID: <%zu@example.net>\r\n\r\n", i, i, i, i);
	for (k = (size_t)h; k < size; k++)
		m[k] = (k % 64 == 63) ? '\n' : (uint8_t)('a' + (k * 7 + i) % 26);
	return m;
}

struct deliver_job {
	sp_gw_deliver *d;
	size_t from, to, size;
	int failed;
};

static void *
deliver_thread(void *arg)
{
	struct deliver_job *j = arg;
	const char *rcpt = ADDRESS;
	size_t i;
	int res;

	for (i = j->from; i < j->to; i++) {
		uint8_t *m = make_message(i, j->size);

		if (m == NULL || sp_gw_deliver_message(j->d, &rcpt, 1, m,
		    j->size, NULL, &res) != 0)
			j->failed++;
		free(m);
	}
	return NULL;
}

/* RSS now, in KiB, from /proc/self/statm. */
static long
rss_kib(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* The child: open a fresh device and fetch everything.  Writes
 * "seconds messages failed rss_after_kib" to fd. */
static int
device_sync(struct srv *s, const char *cache_dir, int fd)
{
	struct sp_session_opts o = { .cache_dir = cache_dir,
	    .host = "127.0.0.1", .port = s->port, .ca_file = s->cert,
	    .address = ADDRESS, .password = PASSWORD,
	    .password_len = strlen(PASSWORD), .device = "bench" };
	sp_session *ss = NULL;
	char err[512] = "", line[128];
	size_t failed = 0, n = 0, i;
	const struct sp_mbox_folder *f;
	double t0;
	int rc;

	double t1, t2;

	o.no_sync = 1;
	t0 = now();
	if ((rc = sp_session_open(&o, &ss, err, sizeof(err))) != 0)
		goto fail;
	t1 = now();
	if ((rc = sp_session_sync(ss, err, sizeof(err))) != 0)
		goto fail;
	t2 = now();
	if ((rc = sp_session_fetch_bodies(ss, 4, NULL, NULL, &failed, err,
	    sizeof(err))) != 0)
		goto fail;
	fprintf(stderr, "    (device: login and local key %.2f s, log and "
	    "model %.2f s, bodies %.2f s)\n", t1 - t0, t2 - t1, now() - t2);
	t0 = now() - t0;
	f = sp_mbox_folders(sp_session_mbox(ss), &i);
	while (i-- > 0)
		n += f[i].exists;
	snprintf(line, sizeof(line), "%.6f %zu %zu %ld\n", t0, n, failed,
	    rss_kib());
	sp_session_close(ss);
	return write(fd, line, strlen(line)) > 0 ? 0 : 1;
fail:
	fprintf(stderr, "bench-client: device sync: %s\n", err);
	sp_session_close(ss);
	return 1;
}

/* Baseline: open meta + body envelopes of the same shape, in memory. */
static double
raw_rate(sp_keyset *ks, size_t size, size_t count)
{
	struct sp_envelope_seal_args a = { .kind = SP_ENVELOPE_KIND_BODY,
	    .n_recipients = 1 };
	struct sp_meta m = { .subject = (char *)(uintptr_t)"benchmark",
	    .from = (char *)(uintptr_t)"s@example.net" };
	uint8_t pk[32], *msg = make_message(1, size), *body = NULL,
	    *meta = NULL, *menv = NULL, *buf = malloc(size + 1);
	size_t blen = 0, mlen = 0, melen = 0, i;
	double t0, dt;
	sp_envelope *e;

	memcpy(pk, sp_keyset_encryption_pk(ks), 32);
	a.recipients = (const uint8_t (*)[32])pk;
	m.blob_id = pk;
	m.blob_id_len = 32;
	if (msg == NULL || buf == NULL ||
	    sp_envelope_seal(&a, msg, size, &body, &blen) != 0 ||
	    sp_meta_encode(&m, &meta, &mlen) != 0)
		return 0;
	a.kind = SP_ENVELOPE_KIND_META;
	if (sp_envelope_seal(&a, meta, mlen, &menv, &melen) != 0)
		return 0;
	t0 = now();
	for (i = 0; i < count; i++) {
		struct sp_meta out;

		if (sp_envelope_open(menv, melen, ks, &e) != 0 ||
		    sp_envelope_read_all(e, buf, mlen) != 0 ||
		    sp_meta_decode(buf, mlen, &out) != 0)
			return 0;
		sp_meta_finish(&out);
		sp_envelope_close(e);
		if (sp_envelope_open(body, blen, ks, &e) != 0 ||
		    sp_envelope_read_all(e, buf, size) != 0)
			return 0;
		sp_envelope_close(e);
	}
	dt = now() - t0;
	free(msg);
	free(buf);
	free(body);
	free(meta);
	free(menv);
	return (double)count / dt;
}

int
main(int argc, char **argv)
{
	const char *env = getenv("SP_BENCH_MESSAGES");
	size_t count = argc > 1 ? strtoul(argv[1], NULL, 10) :
	    env ? strtoul(env, NULL, 10) : 10000;
	size_t size = argc > 2 ? strtoul(argv[2], NULL, 10) : 51200;
	struct sp_account_new an = { .address = ADDRESS, .password = PASSWORD,
	    .password_len = strlen(PASSWORD), .kdf_ops = 2,
	    .kdf_mem_kib = 19 * 1024, .no_pgp = 1 };
	const char *domains[] = { "example.org" };
	struct sp_gw_deliver_opts dopts = { .domains = domains, .ndomains = 1 };
	struct deliver_job jobs[THREADS];
	pthread_t th[THREADS];
	struct srv s;
	sp_client *c;
	sp_gw_deliver *d = NULL;
	sp_keyset *ks = NULL;
	struct rusage ru;
	char err[512], rtext[128], invite[128], cache[512], line[128];
	uint8_t token[32];
	uint64_t last;
	double t0, dt, raw, secs = 0;
	size_t got = 0, failed = 0, i, delivered = 0;
	long rss_after = 0;
	int p[2], status, rc = 1;
	pid_t pid;

	if (sodium_init() < 0 || count == 0 || size < 512)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	if (srv_start(&s, 1, NULL) != 0)
		return 1;
	if (srv_admin(&s, "invite", invite, sizeof(invite)) != 0)
		goto out;
	invite[strcspn(invite, "\r\n")] = 0;
	an.invite = invite;
	if ((c = srv_connect(&s, "bench")) == NULL)
		goto out;
	if (sp_account_create(c, &an, rtext, err, sizeof(err)) != 0 ||
	    sp_account_login(c, ADDRESS, PASSWORD, strlen(PASSWORD), "bench",
	    &ks, token, &last, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench-client: %s\n", err);
		sp_client_close(c);
		goto out;
	}
	sp_client_close(c);

	printf("bench-client: %zu messages of %zu bytes\n", count, size);
	dopts.data_dir = s.data;
	if ((rc = sp_gw_deliver_open(&dopts, &d)) != 0) {
		fprintf(stderr, "bench-client: delivery: %s\n",
		    sp_gw_deliver_strerror(rc));
		rc = 1;
		goto out;
	}
	t0 = now();
	for (i = 0; i < THREADS; i++) {
		jobs[i] = (struct deliver_job){ .d = d, .size = size,
		    .from = count * i / THREADS,
		    .to = count * (i + 1) / THREADS };
		pthread_create(&th[i], NULL, deliver_thread, &jobs[i]);
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		delivered += jobs[i].to - jobs[i].from - (size_t)jobs[i].failed;
	}
	dt = now() - t0;
	sp_gw_deliver_close(d);
	printf("  setup: delivered %zu in %.1f s (%.0f msg/s, gateway path, "
	    "fsync)\n", delivered, dt, (double)delivered / dt);
	rc = 1;
	if (delivered != count)
		goto out;

	raw = raw_rate(ks, size, count < 2000 ? count : 2000);
	printf("  baseline: raw decrypt (metadata + body envelopes, in "
	    "memory): %.0f msg/s, %.1f MB/s\n", raw, raw * (double)size / 1e6);

	snprintf(cache, sizeof(cache), "%s/device", s.dir);
	if (pipe(p) != 0)
		goto out;
	if ((pid = fork()) == 0) {
		close(p[0]);
		_exit(device_sync(&s, cache, p[1]));
	}
	close(p[1]);
	memset(line, 0, sizeof(line));
	if (read(p[0], line, sizeof(line) - 1) <= 0)
		line[0] = 0;
	close(p[0]);
	if (wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0 ||
	    sscanf(line, "%lf %zu %zu %ld", &secs, &got, &failed,
	    &rss_after) != 4) {
		fprintf(stderr, "bench-client: the device sync failed\n");
		goto out;
	}
	printf("  initial sync of a new device (login, log, model, every "
	    "body fetched, decrypted, verified, cached):\n"
	    "    %zu messages in %.2f s: %.0f msg/s, %.1f MB/s "
	    "(%zu failed)\n", got, secs, (double)got / secs,
	    (double)got * (double)size / secs / 1e6, failed);
	printf("    ratio to raw decrypt: %.2f (goal >= 0.50)\n",
	    (double)got / secs / raw);
	printf("    peak RSS during the sync: %.1f MiB; RSS after: %.1f "
	    "MiB\n", (double)ru.ru_maxrss / 1024, (double)rss_after / 1024);
	printf("    at this rate 100,000 messages take %.0f s\n",
	    100000.0 * secs / (double)got);
	rc = got == count && failed == 0 ? 0 : 1;
out:
	sp_keyset_destroy(ks);
	srv_cleanup(&s);
	return rc;
}
