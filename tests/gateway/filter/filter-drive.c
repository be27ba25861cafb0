/*
 * filter-drive: runs sp_gw_filter_run once on a message file and prints
 *   action=<pass|tag|junk|reject|tempfail>
 *   verdict=<text>
 * for test-filter.sh, which starts real clamd and rspamd daemons.
 *
 * With --threads T --repeat N, T threads each run the filters N times on
 * the same message at once (as the gateway's worker threads do); every
 * result must equal the first, else the exit status is 1.  The rate is
 * printed to stderr as "# runs=R seconds=S per_second=P".
 *
 * filter-drive [--rspamd ADDR] [--clamd ADDR] [--spam A] [--suspect A]
 *     [--virus A] [--limit A] [--fail-open] [--timeout MS] [--ip IP]
 *     [--helo NAME] [--from ADDR] [--rcpt ADDR]... [--threads T]
 *     [--repeat N] FILE
 * Exit status 0, or 2 for bad usage or a failing call.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/gateway/filter/gw_filter.h"

#define MAX_RCPTS 16
#define MAX_THREADS 32

struct job {
	const struct sp_gw_filter_opts *o;
	const struct sp_gw_filter_envelope *e;
	const unsigned char *msg;
	size_t len;
	int repeat;
	const struct sp_gw_filter_result *want; /* NULL: just fill got */
	struct sp_gw_filter_result got;
	int mismatches, err;
	pthread_t tid;
};

static void *
job_run(void *arg)
{
	struct job *j = arg;
	int i;

	for (i = 0; i < j->repeat; i++) {
		if ((j->err = sp_gw_filter_run(j->o, j->e, j->msg, j->len,
		    &j->got)) != 0)
			break;
		if (j->want && (j->got.action != j->want->action ||
		    strcmp(j->got.verdict, j->want->verdict) != 0)) {
			fprintf(stderr, "# mismatch: %s | %s\n",
			    j->got.verdict, j->want->verdict);
			j->mismatches++;
		}
	}
	return NULL;
}

static double
now_s(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
parse_action(const char *s, enum sp_gw_filter_action *a_r)
{
	static const enum sp_gw_filter_action all[] = { SP_GW_FILTER_PASS,
		SP_GW_FILTER_TAG, SP_GW_FILTER_JUNK, SP_GW_FILTER_REJECT,
		SP_GW_FILTER_TEMPFAIL };
	size_t i;

	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		if (strcmp(s, sp_gw_filter_action_name(all[i])) == 0) {
			*a_r = all[i];
			return 0;
		}
	}
	return -1;
}

static unsigned char *
read_all(const char *path, size_t *len_r)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	unsigned char *buf = NULL, *nb;
	size_t cap = 0, len = 0, n;

	if (f == NULL)
		return NULL;
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 65536;
			if ((nb = realloc(buf, cap)) == NULL)
				goto out_fail;
			buf = nb;
		}
		if ((n = fread(buf + len, 1, cap - len, f)) == 0)
			break;
		len += n;
	}
	if (ferror(f))
		goto out_fail;
	if (f != stdin)
		(void)fclose(f);
	*len_r = len;
	return buf;
out_fail:
	if (f != stdin)
		(void)fclose(f);
	free(buf);
	return NULL;
}

int
main(int argc, char **argv)
{
	struct sp_gw_filter_opts o = { 0 };
	struct sp_gw_filter_envelope e = { 0 };
	struct job first = { 0 }, jobs[MAX_THREADS];
	const char *rcpts[MAX_RCPTS];
	unsigned char *msg;
	size_t len;
	int i, t, nthreads = 1, repeat = 0, bad_runs = 0;
	double t0;

	e.rcpts = rcpts;
	for (i = 1; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		const char *k = argv[i], *v = argv[i + 1];
		int bad = 0;

		if (strcmp(k, "--fail-open") == 0) {
			o.fail_open = 1;
			continue;
		}
		i++;
		if (strcmp(k, "--rspamd") == 0)
			o.rspamd = v;
		else if (strcmp(k, "--clamd") == 0)
			o.clamd = v;
		else if (strcmp(k, "--spam") == 0)
			bad = parse_action(v, &o.rspamd_spam_action);
		else if (strcmp(k, "--suspect") == 0)
			bad = parse_action(v, &o.rspamd_suspect_action);
		else if (strcmp(k, "--virus") == 0)
			bad = parse_action(v, &o.clamd_virus_action);
		else if (strcmp(k, "--limit") == 0)
			bad = parse_action(v, &o.clamd_limit_action);
		else if (strcmp(k, "--timeout") == 0)
			o.timeout_ms = atoi(v);
		else if (strcmp(k, "--ip") == 0)
			e.ip = v;
		else if (strcmp(k, "--helo") == 0)
			e.helo = v;
		else if (strcmp(k, "--from") == 0)
			e.mail_from = v;
		else if (strcmp(k, "--rcpt") == 0 && e.nrcpts < MAX_RCPTS)
			rcpts[e.nrcpts++] = v;
		else if (strcmp(k, "--threads") == 0)
			bad = (nthreads = atoi(v)) < 1 || nthreads > MAX_THREADS;
		else if (strcmp(k, "--repeat") == 0)
			bad = (repeat = atoi(v)) < 1;
		else
			bad = 1;
		if (bad) {
			fprintf(stderr, "filter-drive: bad option %s %s\n", k, v);
			return 2;
		}
	}
	if (i + 1 != argc) {
		fprintf(stderr, "usage: filter-drive [options] FILE\n");
		return 2;
	}
	if ((msg = read_all(argv[i], &len)) == NULL) {
		fprintf(stderr, "filter-drive: cannot read %s\n", argv[i]);
		return 2;
	}
	first = (struct job){ .o = &o, .e = &e, .msg = msg, .len = len,
		.repeat = 1 };
	(void)job_run(&first);
	if (first.err != 0) {
		fprintf(stderr, "filter-drive: sp_gw_filter_run: %d\n",
		    first.err);
		free(msg);
		return 2;
	}
	printf("action=%s\nverdict=%s\n",
	    sp_gw_filter_action_name(first.got.action), first.got.verdict);
	if (repeat > 0) {
		t0 = now_s();
		for (t = 0; t < nthreads; t++) {
			jobs[t] = first;
			jobs[t].repeat = repeat;
			jobs[t].want = &first.got;
			if (pthread_create(&jobs[t].tid, NULL, job_run,
			    &jobs[t]) != 0)
				abort();
		}
		for (t = 0; t < nthreads; t++) {
			(void)pthread_join(jobs[t].tid, NULL);
			bad_runs += jobs[t].mismatches + (jobs[t].err != 0);
		}
		fprintf(stderr, "# runs=%d seconds=%.3f per_second=%.1f\n",
		    nthreads * repeat, now_s() - t0,
		    nthreads * repeat / (now_s() - t0));
	}
	free(msg);
	if (bad_runs > 0) {
		printf("mismatches=%d\n", bad_runs);
		return 1;
	}
	return 0;
}
