/*
 * sealpost-gateway: the inbound SMTP gateway (MX) of a sealpost domain.
 *
 *   sealpost-gateway serve [options]   accept mail, check, filter, seal,
 *                                      store; until SIGTERM/SIGINT
 *   sealpost-gateway check ...         print the Authentication-Results
 *                                      the gateway would add (gw_auth.h)
 *
 * The process holds no user's private key: delivery seals to public keys.
 * It logs to stderr, one line per event, never message content, addresses
 * or secrets.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>
#include <uv.h>

#include "crypto/error.h"
#include "server/gateway/outbound_worker.h"
#include "server/gateway/smtp_server.h"

#define MAX_DOMAINS 64

struct cfg {
	const char *data_dir, *listen, *hostname, *tls_cert, *tls_key;
	const char *domains, *dns, *rspamd, *clamd, *notify, *policy;
	const char *rspamd_action, *clamd_action;
	int record_only_loopback, no_sync, no_auth, filter_fail_open;
	unsigned long long max_size;
	unsigned long max_rcpts, max_conns, max_conns_per_ip, rate_per_ip;
	unsigned long greet_delay_ms, greet_cache_s, threads;
	const char *outbound_ca, *mta_sts_connect;
	unsigned long outbound_port, outbound_threads, retry_base;
	unsigned long delay_notice, expire;
	double timeout_cmd, timeout_data;
};

enum kind { FLAG, STR, ULL, UL, SEC };

/* The options: name, kind, where, help. */
struct option_def {
	const char *name;
	enum kind kind;
	size_t off;
	const char *arg, *help;
};

#define O(f) offsetof(struct cfg, f)
static const struct option_def options[] = {
	{ "data-dir", STR, O(data_dir), "DIR", "the server's store (required)" },
	{ "listen", STR, O(listen), "HOST:PORT", "address (127.0.0.1:2525; "
	    "port 0 = any)" },
	{ "domains", STR, O(domains), "A,B", "mail domains served (required)" },
	{ "hostname", STR, O(hostname), "NAME", "greeting and authserv-id "
	    "(localhost)" },
	{ "tls-cert", STR, O(tls_cert), "FILE", "PEM certificate chain for "
	    "STARTTLS" },
	{ "tls-key", STR, O(tls_key), "FILE", "PEM private key for STARTTLS" },
	{ "dns", STR, O(dns), "HOST:PORT", "resolver for SPF/DKIM/DMARC "
	    "(system's)" },
	{ "no-auth", FLAG, O(no_auth), NULL, "skip SPF/DKIM/DMARC "
	    "(tests only)" },
	{ "record-only-loopback", FLAG, O(record_only_loopback), NULL,
	    "auth checks only record for 127.0.0.0/8 and ::1" },
	{ "policy", STR, O(policy), "D=MODE,...", "per served domain: "
	    "enforce (default), quarantine (Junk instead of 550) or record "
	    "(never act)" },
	{ "rspamd", STR, O(rspamd), "HOST:PORT", "rspamd to ask (none)" },
	{ "rspamd-action", STR, O(rspamd_action), "reject|junk|tag",
	    "for spam (junk)" },
	{ "clamd", STR, O(clamd), "ADDR", "clamd, HOST:PORT or socket path "
	    "(none)" },
	{ "clamd-action", STR, O(clamd_action), "reject|junk|tag",
	    "for a virus (reject)" },
	{ "filter-fail-open", FLAG, O(filter_fail_open), NULL,
	    "deliver when a filter is down (default: 451)" },
	{ "max-size", ULL, O(max_size), "BYTES", "message size limit "
	    "(26214400)" },
	{ "max-recipients", UL, O(max_rcpts), "N", "per message (100)" },
	{ "max-connections", UL, O(max_conns), "N", "in total (1000)" },
	{ "max-connections-per-ip", UL, O(max_conns_per_ip), "N", "(50)" },
	{ "rate-per-ip", UL, O(rate_per_ip), "N", "connections per minute "
	    "per source (1200)" },
	{ "greet-delay", UL, O(greet_delay_ms), "MS", "early-talker wait "
	    "before the greeting (1000; 0 = none)" },
	{ "greet-cache", UL, O(greet_cache_s), "SEC", "skip the wait for a "
	    "source that passed it (600; 0 = never)" },
	{ "timeout-cmd", SEC, O(timeout_cmd), "SEC", "waiting for a command "
	    "(300)" },
	{ "timeout-data", SEC, O(timeout_data), "SEC", "waiting for message "
	    "data (180)" },
	{ "notify", STR, O(notify), "PATH", "server's notify socket "
	    "(DATA_DIR/notify.sock)" },
	{ "threads", UL, O(threads), "N", "worker threads (32)" },
	{ "no-sync", FLAG, O(no_sync), NULL, "skip fsync: benchmarks only" },
	{ "outbound-port", UL, O(outbound_port), "PORT", "remote MTAs' SMTP "
	    "port (25; tests change it)" },
	{ "outbound-threads", UL, O(outbound_threads), "N", "outbound "
	    "delivery threads (4)" },
	{ "retry-base", UL, O(retry_base), "SEC", "first retry after a "
	    "temporary failure, doubling (300)" },
	{ "delay-notice", UL, O(delay_notice), "SEC", "delay DSN to the "
	    "sender after (14400)" },
	{ "expire", UL, O(expire), "SEC", "give up and bounce after "
	    "(432000)" },
	{ "outbound-ca", STR, O(outbound_ca), "FILE", "CA certificates for "
	    "MTA-STS (system's)" },
	{ "mta-sts-connect", STR, O(mta_sts_connect), "HOST:PORT",
	    "fetch MTA-STS policies here (tests only)" },
};

static void
usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: sealpost-gateway serve [options]\n"
	    "       sealpost-gateway check --ip IP --helo NAME --mail-from ADDR "
	    "[--dns HOST:PORT]\n"
	    "                              [--authserv-id ID] < message\n"
	    "       sealpost-gateway --help\n\noptions of serve:\n");
	for (i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
		char left[64];

		snprintf(left, sizeof(left), "--%s%s%s", options[i].name,
		    options[i].arg ? " " : "", options[i].arg ?
		    options[i].arg : "");
		fprintf(f, "  %-34s %s\n", left, options[i].help);
	}
}

static int
set_option(struct cfg *c, const struct option_def *d, const char *val)
{
	char *end;
	void *p = (char *)c + d->off;

	errno = 0;
	switch (d->kind) {
	case FLAG:
		*(int *)p = 1;
		return 0;
	case STR:
		*(const char **)p = val;
		return 0;
	case ULL:
		*(unsigned long long *)p = strtoull(val, &end, 10);
		break;
	case UL:
		*(unsigned long *)p = strtoul(val, &end, 10);
		break;
	case SEC:
		*(double *)p = strtod(val, &end);
		if (*(double *)p <= 0 || *(double *)p > 86400)
			return -1;
		break;
	}
	return (errno != 0 || end == val || *end != '\0' || val[0] == '-') ?
	    -1 : 0;
}

static int
parse_args(struct cfg *c, int argc, char **argv)
{
	int i;
	size_t k;

	for (i = 0; i < argc; i++) {
		const struct option_def *d = NULL;

		for (k = 0; k < sizeof(options) / sizeof(options[0]); k++)
			if (strncmp(argv[i], "--", 2) == 0 &&
			    strcmp(argv[i] + 2, options[k].name) == 0)
				d = &options[k];
		if (d == NULL) {
			fprintf(stderr, "sealpost-gateway: unknown option "
			    "'%s'\n", argv[i]);
			return -1;
		}
		if (d->kind != FLAG && i + 1 >= argc) {
			fprintf(stderr, "sealpost-gateway: --%s needs %s\n",
			    d->name, d->arg);
			return -1;
		}
		if (set_option(c, d, d->kind == FLAG ? NULL : argv[++i]) != 0) {
			fprintf(stderr, "sealpost-gateway: bad value for --%s\n",
			    d->name);
			return -1;
		}
	}
	return 0;
}

static int
filter_action(const char *s, enum sp_gw_filter_action *a)
{
	if (strcmp(s, "reject") == 0)
		*a = SP_GW_FILTER_REJECT;
	else if (strcmp(s, "junk") == 0)
		*a = SP_GW_FILTER_JUNK;
	else if (strcmp(s, "tag") == 0)
		*a = SP_GW_FILTER_TAG;
	else
		return -1;
	return 0;
}

static void
log_line(void *arg, const char *line)
{
	char ts[32];
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(stderr, "%s sealpost-gateway: %s\n", ts, line);
}

struct run {
	uv_loop_t *loop;
	sp_smtp_server *srv;
	uv_signal_t sigterm, sigint;
	int stopped;
};

static void
server_done(void *arg)
{
	struct run *r = arg;

	r->stopped = 1;
	uv_close((uv_handle_t *)&r->sigterm, NULL);
	uv_close((uv_handle_t *)&r->sigint, NULL);
}

static void
on_signal(uv_signal_t *h, int signum)
{
	struct run *r = h->data;

	fprintf(stderr, "sealpost-gateway: signal %d: stopping, finishing "
	    "deliveries in flight\n", signum);
	uv_signal_stop(&r->sigterm);
	uv_signal_stop(&r->sigint);
	sp_smtp_server_shutdown(r->srv, server_done, r);
}

/* "HOST:PORT", "[v6]:PORT" or ":PORT". */
static int
split_hostport(const char *s, char *host, size_t hostlen, int *port_r)
{
	const char *colon = strrchr(s, ':');
	char *end;
	long port;
	size_t n;

	if (colon == NULL)
		return -1;
	n = (size_t)(colon - s);
	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		s++;
		n -= 2;
	}
	if (n == 0) {
		s = "0.0.0.0";
		n = 7;
	}
	if (n >= hostlen)
		return -1;
	memcpy(host, s, n);
	host[n] = '\0';
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || end == colon + 1 || port < 0 || port > 65535)
		return -1;
	*port_r = (int)port;
	return 0;
}

static int
serve(struct cfg *c)
{
	char host[256], err[256], threads[16], *dom_copy = NULL, *tok, *save;
	const char *domains[MAX_DOMAINS];
	struct sp_gw_policy policies[MAX_DOMAINS];
	char *pol_copy = NULL;
	size_t np = 0;
	struct sp_gw_deliver_opts dopts;
	struct sp_gw_auth_opts aopts;
	struct sp_gw_filter_opts fopts;
	struct sp_smtp_server_opts so;
	struct sp_ob_worker_opts wo;
	sp_ob_worker *ob = NULL;
	struct run r;
	uv_loop_t loop;
	SSL_CTX *tls = NULL;
	sp_gw_deliver *d = NULL;
	size_t nd = 0;
	int port, rc, status = 1;

	memset(&r, 0, sizeof(r));
	if (c->data_dir == NULL || c->domains == NULL) {
		fprintf(stderr, "sealpost-gateway: --data-dir and --domains "
		    "are required\n");
		return 2;
	}
	if (split_hostport(c->listen, host, sizeof(host), &port) != 0) {
		fprintf(stderr, "sealpost-gateway: --listen wants HOST:PORT\n");
		return 2;
	}
	if ((c->tls_cert == NULL) != (c->tls_key == NULL)) {
		fprintf(stderr, "sealpost-gateway: --tls-cert and --tls-key go "
		    "together\n");
		return 2;
	}
	memset(&fopts, 0, sizeof(fopts));
	fopts.rspamd = c->rspamd;
	fopts.clamd = c->clamd;
	fopts.fail_open = c->filter_fail_open;
	if (filter_action(c->rspamd_action, &fopts.rspamd_spam_action) != 0 ||
	    filter_action(c->clamd_action, &fopts.clamd_virus_action) != 0) {
		fprintf(stderr, "sealpost-gateway: actions are reject, junk "
		    "or tag\n");
		return 2;
	}
	if ((dom_copy = strdup(c->domains)) == NULL)
		return 1;
	for (tok = strtok_r(dom_copy, ",", &save); tok && nd < MAX_DOMAINS;
	    tok = strtok_r(NULL, ",", &save))
		domains[nd++] = tok;
	if (nd == 0) {
		fprintf(stderr, "sealpost-gateway: --domains is empty\n");
		status = 2;
		goto out_free_domains;
	}
	if (c->policy != NULL && (pol_copy = strdup(c->policy)) == NULL)
		goto out_free_domains;
	for (tok = pol_copy ? strtok_r(pol_copy, ",", &save) : NULL; tok;
	    tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		size_t k;

		for (k = 0; eq && k < nd; k++)
			if (strncasecmp(domains[k], tok, (size_t)(eq - tok)) ==
			    0 && domains[k][eq - tok] == 0)
				break;
		if (eq == NULL || k == nd || np == MAX_DOMAINS) {
			fprintf(stderr, "sealpost-gateway: --policy %s: "
			    "DOMAIN=MODE for a domain of --domains\n", tok);
			status = 2;
			goto out_free_domains;
		}
		*eq = 0;
		policies[np].domain = tok;
		if (strcmp(eq + 1, "enforce") == 0)
			policies[np].mode = SP_GW_POLICY_ENFORCE;
		else if (strcmp(eq + 1, "quarantine") == 0)
			policies[np].mode = SP_GW_POLICY_QUARANTINE;
		else if (strcmp(eq + 1, "record") == 0)
			policies[np].mode = SP_GW_POLICY_RECORD;
		else {
			fprintf(stderr, "sealpost-gateway: --policy: the "
			    "modes are enforce, quarantine and record\n");
			status = 2;
			goto out_free_domains;
		}
		np++;
	}
	/* Group commit needs many deliveries in flight at once: the thread
	 * pool is the only place they run.  Set before the pool starts. */
	snprintf(threads, sizeof(threads), "%lu", c->threads);
	setenv("UV_THREADPOOL_SIZE", threads, 1);
	if (c->tls_cert != NULL &&
	    sp_smtp_tls_ctx(c->tls_cert, c->tls_key, &tls, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "sealpost-gateway: TLS: %s\n", err);
		goto out_free_domains;
	}
	memset(&dopts, 0, sizeof(dopts));
	dopts.data_dir = c->data_dir;
	dopts.domains = domains;
	dopts.ndomains = nd;
	dopts.notify_path = c->notify;
	dopts.no_sync = c->no_sync;
	if ((rc = sp_gw_deliver_open(&dopts, &d)) != 0) {
		fprintf(stderr, "sealpost-gateway: store %s: %s\n", c->data_dir,
		    sp_gw_deliver_strerror(rc));
		goto out_free_tls;
	}
	memset(&wo, 0, sizeof(wo));
	wo.data_dir = c->data_dir;
	wo.deliver = d;
	wo.hostname = c->hostname;
	wo.dns = c->dns;
	wo.port = (int)c->outbound_port;
	wo.threads = (unsigned)c->outbound_threads;
	wo.retry_base_s = (unsigned)c->retry_base;
	wo.delay_notice_s = (unsigned)c->delay_notice;
	wo.expire_s = (unsigned)c->expire;
	wo.timeout_s = (unsigned)c->timeout_cmd;
	wo.ca_file = c->outbound_ca;
	wo.mta_sts_connect = c->mta_sts_connect;
	wo.log = log_line;
	if (sp_ob_worker_start(&wo, &ob, err, sizeof(err)) != 0) {
		fprintf(stderr, "sealpost-gateway: outbound: %s\n", err);
		goto out_close_deliver;
	}
	memset(&aopts, 0, sizeof(aopts));
	aopts.dns = c->dns;
	aopts.authserv_id = c->hostname;
	memset(&so, 0, sizeof(so));
	so.host = host;
	so.port = port;
	so.hostname = c->hostname;
	so.tls = tls;
	so.deliver = d;
	so.auth = c->no_auth ? NULL : &aopts;
	so.record_only_loopback = c->record_only_loopback;
	so.policies = policies;
	so.npolicies = np;
	so.filter = (c->rspamd || c->clamd) ? &fopts : NULL;
	so.max_size = c->max_size;
	so.max_rcpts = c->max_rcpts;
	so.max_conns = (unsigned)c->max_conns;
	so.max_conns_per_ip = (unsigned)c->max_conns_per_ip;
	so.rate_per_ip = (unsigned)c->rate_per_ip;
	so.greet_delay_ms = (unsigned)c->greet_delay_ms;
	so.greet_cache_s = (unsigned)c->greet_cache_s;
	so.timeout_cmd_ms = (unsigned)(c->timeout_cmd * 1000);
	so.timeout_data_ms = (unsigned)(c->timeout_data * 1000);
	so.log = log_line;
	uv_loop_init(&loop);
	r.loop = &loop;
	uv_signal_init(&loop, &r.sigterm);
	uv_signal_init(&loop, &r.sigint);
	r.sigterm.data = r.sigint.data = &r;
	if ((rc = sp_smtp_server_start(&loop, &so, &r.srv)) != 0) {
		fprintf(stderr, "sealpost-gateway: cannot listen on %s: %s\n",
		    c->listen, rc < 0 && rc > -4096 ? uv_strerror(rc) :
		    sp_strerror(rc));
		if (r.srv != NULL)
			sp_smtp_server_shutdown(r.srv, server_done, &r);
		else
			server_done(&r);
		(void)uv_run(&loop, UV_RUN_DEFAULT);
		goto out_close;
	}
	uv_signal_start(&r.sigterm, on_signal, SIGTERM);
	uv_signal_start(&r.sigint, on_signal, SIGINT);
	fprintf(stderr, "sealpost-gateway: listening on %s:%d as %s%s\n",
	    host, sp_smtp_server_port(r.srv), c->hostname,
	    tls ? " (STARTTLS)" : "");
	(void)uv_run(&loop, UV_RUN_DEFAULT);
	status = r.stopped ? 0 : 1;
	fprintf(stderr, "sealpost-gateway: stopped\n");
out_close:
	sp_smtp_server_free(r.srv);
	(void)uv_loop_close(&loop);
	sp_ob_worker_stop(ob);
out_close_deliver:
	sp_gw_deliver_close(d);
out_free_tls:
	SSL_CTX_free(tls);
out_free_domains:
	free(pol_copy);
	free(dom_copy);
	return status;
}

int
main(int argc, char **argv)
{
	struct cfg c = {
		.listen = "127.0.0.1:2525",
		.hostname = "localhost",
		.rspamd_action = "junk",
		.clamd_action = "reject",
		.greet_delay_ms = 1000,
		.greet_cache_s = 600,
		.threads = 32,
		.timeout_cmd = 300,
		.timeout_data = 180,
		.outbound_port = 25,
		.outbound_threads = 4,
		.retry_base = 300,
		.delay_notice = 4 * 3600,
		.expire = 5 * 86400,
	};

	if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "check") == 0)
		return sp_gw_check_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "serve") != 0) {
		fprintf(stderr, "sealpost-gateway: unknown command '%s'\n",
		    argv[1]);
		usage(stderr);
		return 2;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "sealpost-gateway: libsodium failed to start\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	if (parse_args(&c, argc - 2, argv + 2) != 0) {
		usage(stderr);
		return 2;
	}
	return serve(&c);
}
