/*
 * The checker on its own, for tests that must not wait for the whole
 * sealpost-gateway program; never installed.
 *
 *   sp-gw-auth-check check --ip ... < message      as sealpost-gateway
 *   sp-gw-auth-check stress THREADS COUNT --ip IP --helo NAME
 *       --mail-from ADDR --dns HOST:PORT [--psl FILE] < message
 *
 * stress runs COUNT checks of the same message over THREADS threads at
 * once, as the gateway's workers do, and fails unless every result equals
 * the first; it prints the result and checks per second.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/gateway/auth/gw_auth.h"

struct job {
	const struct sp_gw_auth_opts *o;
	const char *ip, *helo, *from;
	const uint8_t *msg;
	size_t len;
	int count;
	char *first;              /* first thread's A-R, to compare with */
	enum sp_gw_action action;
	pthread_mutex_t mu;
	int next, mismatches, errors;
};

static void *
worker(void *arg)
{
	struct job *j = arg;
	struct sp_gw_auth_result r;

	for (;;) {
		int differ;

		pthread_mutex_lock(&j->mu);
		if (j->next >= j->count) {
			pthread_mutex_unlock(&j->mu);
			return NULL;
		}
		j->next++;
		pthread_mutex_unlock(&j->mu);
		if (sp_gw_auth_check(j->o, j->ip, j->helo, j->from, j->msg,
		    j->len, &r) != 0) {
			pthread_mutex_lock(&j->mu);
			j->errors++;
			pthread_mutex_unlock(&j->mu);
			continue;
		}
		pthread_mutex_lock(&j->mu);
		if (j->first == NULL) {
			j->first = strdup(r.auth_results);
			j->action = r.action;
		}
		differ = j->first == NULL ||
		    strcmp(j->first, r.auth_results) != 0 ||
		    j->action != r.action;
		j->mismatches += differ;
		pthread_mutex_unlock(&j->mu);
		sp_gw_auth_result_free(&r);
	}
}

static int
stress(int argc, char **argv)
{
	struct sp_gw_auth_opts o = {.authserv_id = "stress"};
	struct job j;
	pthread_t th[64];
	struct timespec t0, t1;
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0, n;
	int threads, rc = 1;
	double secs;

	if (argc < 3)
		return 64;
	memset(&j, 0, sizeof(j));
	threads = atoi(argv[1]);
	j.count = atoi(argv[2]);
	if (threads < 1 || threads > 64 || j.count < 1)
		return 64;
	for (int i = 3; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--ip") == 0)
			j.ip = argv[i + 1];
		else if (strcmp(argv[i], "--helo") == 0)
			j.helo = argv[i + 1];
		else if (strcmp(argv[i], "--mail-from") == 0)
			j.from = argv[i + 1];
		else if (strcmp(argv[i], "--dns") == 0)
			o.dns = argv[i + 1];
		else if (strcmp(argv[i], "--psl") == 0)
			o.psl_file = argv[i + 1];
		else
			return 64;
	}
	if (j.ip == NULL || j.helo == NULL || j.from == NULL)
		return 64;
	do {
		if (len + 65536 > cap) {
			uint8_t *nb = realloc(buf, cap += 65536);
			if (nb == NULL)
				goto out;
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, stdin);
		len += n;
	} while (n > 0);
	j.o = &o;
	j.msg = buf;
	j.len = len;
	pthread_mutex_init(&j.mu, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < threads; i++)
		if (pthread_create(&th[i], NULL, worker, &j) != 0)
			threads = i;
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("result: %s\n", j.first ? j.first : "(none)");
	printf("stress: %d threads, %d checks, %d errors, %d different, "
	    "%.0f checks/s\n", threads, j.count, j.errors, j.mismatches,
	    secs > 0 ? j.count / secs : 0.0);
	rc = threads > 0 && j.errors == 0 && j.mismatches == 0 &&
	    j.first != NULL ? 0 : 1;
	pthread_mutex_destroy(&j.mu);
	free(j.first);
out:
	free(buf);
	return rc;
}

int
main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "stress") == 0)
		return stress(argc - 1, argv + 1);
	if (argc < 2)
		return sp_gw_check_main(argc, argv);
	return sp_gw_check_main(argc - 1, argv + 1);
}
