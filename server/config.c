#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/config.h"

void
sp_config_defaults(struct sp_server_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->listen, sizeof(c->listen), "127.0.0.1");
	c->port = 8443;
	snprintf(c->data_dir, sizeof(c->data_dir), "/var/lib/sealpost");
	c->max_connections = 20000;
	c->login_fail_per_account = 5;
	c->login_fail_per_ip = 20;
	c->deliver_per_minute = 600;
	c->submit_per_hour = 100;
	c->submit_max_rcpts = 100;
	c->kdf_min_ops = 2;
	c->kdf_min_mem_kib = 65536;
	c->session_days = 90;
	c->security_events = 1;
	c->register_per_hour = 5;
	c->prelogin_per_minute = 30;
	c->keys_per_minute = 60;
	c->blob_max = 64u * 1024 * 1024;
	c->worker_threads = 32;
}

static int
set_str(char *dst, size_t cap, const char *v, const char *key, char *errbuf,
    size_t errlen)
{
	if (strlen(v) >= cap) {
		snprintf(errbuf, errlen, "%s: value too long", key);
		return -1;
	}
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

static int
set_int(int *dst, const char *v, long min, long max, const char *key,
    char *errbuf, size_t errlen)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < min || n > max) {
		snprintf(errbuf, errlen, "%s: expected a number from %ld to %ld",
		    key, min, max);
		return -1;
	}
	*dst = (int)n;
	return 0;
}

static int
set_bool(int *dst, const char *v, const char *key, char *errbuf, size_t errlen)
{
	if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1") ||
	    !strcmp(v, "on"))
		*dst = 1;
	else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0") ||
	    !strcmp(v, "off"))
		*dst = 0;
	else {
		snprintf(errbuf, errlen, "%s: expected yes or no", key);
		return -1;
	}
	return 0;
}

static int
add_domains(struct sp_server_config *c, const char *v, char *errbuf,
    size_t errlen)
{
	char buf[2048], *tok, *save = NULL;
	size_t i;

	if (strlen(v) >= sizeof(buf))
		goto bad;
	memcpy(buf, v, strlen(v) + 1);
	for (tok = strtok_r(buf, ", ", &save); tok;
	    tok = strtok_r(NULL, ", ", &save)) {
		if (c->ndomains >= SP_CONFIG_DOMAINS_MAX || strlen(tok) >= 254 ||
		    strchr(tok, '@'))
			goto bad;
		for (i = 0; tok[i]; i++)
			tok[i] = (char)tolower((unsigned char)tok[i]);
		memcpy(c->domains[c->ndomains++], tok, strlen(tok) + 1);
	}
	return 0;
bad:
	snprintf(errbuf, errlen, "domains: a comma-separated list of at most %d "
	    "domain names", SP_CONFIG_DOMAINS_MAX);
	return -1;
}

int
sp_config_set(struct sp_server_config *c, const char *key, const char *v,
    char *errbuf, size_t errlen)
{
	if (!strcmp(key, "listen"))
		return set_str(c->listen, sizeof(c->listen), v, key, errbuf, errlen);
	if (!strcmp(key, "port"))
		return set_int(&c->port, v, 0, 65535, key, errbuf, errlen);
	if (!strcmp(key, "data-dir"))
		return set_str(c->data_dir, sizeof(c->data_dir), v, key, errbuf,
		    errlen);
	if (!strcmp(key, "tls-cert"))
		return set_str(c->tls_cert, sizeof(c->tls_cert), v, key, errbuf,
		    errlen);
	if (!strcmp(key, "tls-key"))
		return set_str(c->tls_key, sizeof(c->tls_key), v, key, errbuf,
		    errlen);
	if (!strcmp(key, "domains"))
		return add_domains(c, v, errbuf, errlen);
	if (!strcmp(key, "open-registration"))
		return set_bool(&c->open_registration, v, key, errbuf, errlen);
	if (!strcmp(key, "log-client-ips"))
		return set_bool(&c->log_client_ips, v, key, errbuf, errlen);
	if (!strcmp(key, "max-connections"))
		return set_int(&c->max_connections, v, 1, 1000000, key, errbuf,
		    errlen);
	if (!strcmp(key, "login-failures-per-account"))
		return set_int(&c->login_fail_per_account, v, 1, 1000, key,
		    errbuf, errlen);
	if (!strcmp(key, "login-failures-per-ip"))
		return set_int(&c->login_fail_per_ip, v, 1, 100000, key, errbuf,
		    errlen);
	if (!strcmp(key, "deliver-per-minute"))
		return set_int(&c->deliver_per_minute, v, 1, 1000000, key,
		    errbuf, errlen);
	if (!strcmp(key, "submit-per-hour"))
		return set_int(&c->submit_per_hour, v, 1, 1000000, key,
		    errbuf, errlen);
	if (!strcmp(key, "submit-max-recipients"))
		return set_int(&c->submit_max_rcpts, v, 1, 100, key,
		    errbuf, errlen);
	if (!strcmp(key, "quota-mb")) {
		int mb;

		if (set_int(&mb, v, 0, 1 << 30, key, errbuf, errlen))
			return -1;
		c->quota_default = (uint64_t)mb * 1024 * 1024;
		return 0;
	}
	if (!strcmp(key, "kdf-min-ops"))
		return set_int(&c->kdf_min_ops, v, 1, 64, key, errbuf, errlen);
	if (!strcmp(key, "kdf-min-mem-kib"))
		return set_int(&c->kdf_min_mem_kib, v, 8, 4 * 1024 * 1024, key,
		    errbuf, errlen);
	if (!strcmp(key, "session-days"))
		return set_int(&c->session_days, v, 1, 3650, key, errbuf, errlen);
	if (!strcmp(key, "register-per-hour"))
		return set_int(&c->register_per_hour, v, 1, 1000000, key, errbuf,
		    errlen);
	if (!strcmp(key, "prelogin-per-minute"))
		return set_int(&c->prelogin_per_minute, v, 1, 1000000, key,
		    errbuf, errlen);
	if (!strcmp(key, "keys-per-minute"))
		return set_int(&c->keys_per_minute, v, 1, 1000000, key, errbuf,
		    errlen);
	if (!strcmp(key, "blob-max-mb")) {
		int mb;

		if (set_int(&mb, v, 1, 1 << 20, key, errbuf, errlen))
			return -1;
		c->blob_max = (uint64_t)mb * 1024 * 1024;
		return 0;
	}
	if (!strcmp(key, "worker-threads"))
		return set_int(&c->worker_threads, v, 1, 1024, key, errbuf,
		    errlen);
	if (!strcmp(key, "security-events"))
		return set_bool(&c->security_events, v, key, errbuf, errlen);
	if (!strcmp(key, "rp-id"))
		return set_str(c->rp_id, sizeof(c->rp_id), v, key, errbuf, errlen);
	if (!strcmp(key, "metrics-public"))
		return set_bool(&c->metrics_public, v, key, errbuf, errlen);
	if (!strcmp(key, "no-sync"))
		return set_bool(&c->no_sync, v, key, errbuf, errlen);
	if (!strcmp(key, "verbose"))
		return set_bool(&c->verbose, v, key, errbuf, errlen);
	snprintf(errbuf, errlen, "unknown setting '%s'", key);
	return -1;
}

static char *
trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

int
sp_config_load(struct sp_server_config *c, const char *path, char *errbuf,
    size_t errlen)
{
	char line[4096], sub[256], *k, *v, *eq, *hash;
	FILE *f;
	int n = 0, rc = 0;

	if ((f = fopen(path, "r")) == NULL) {
		snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		n++;
		if ((hash = strchr(line, '#')) != NULL)
			*hash = 0;
		k = trim(line);
		if (*k == 0)
			continue;
		if ((eq = strchr(k, '=')) == NULL) {
			snprintf(errbuf, errlen, "%s:%d: expected key = value",
			    path, n);
			rc = -1;
			break;
		}
		*eq = 0;
		k = trim(k);
		v = trim(eq + 1);
		if (sp_config_set(c, k, v, sub, sizeof(sub)) != 0) {
			snprintf(errbuf, errlen, "%s:%d: %s", path, n, sub);
			rc = -1;
			break;
		}
	}
	fclose(f);
	return rc;
}

int
sp_config_serves(const struct sp_server_config *c, const char *address)
{
	const char *at = strrchr(address, '@');
	int i;

	if (at == NULL || at == address || at[1] == 0)
		return 0;
	for (i = 0; i < c->ndomains; i++)
		if (strcasecmp(at + 1, c->domains[i]) == 0)
			return 1;
	return 0;
}
