/* MTA-STS (outbound_mtasts.h). */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "server/gateway/outbound_mtasts.h"

#define TIMEOUT_MS 10000
#define RESPONSE_MAX (SP_OB_STS_BODY_MAX + 16 * 1024)

static int
trim(const char **s, size_t *n)
{
	while (*n > 0 && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t' ||
	    (*s)[*n - 1] == '\r'))
		(*n)--;
	return 0;
}

static int
is(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && strncmp(s, word, n) == 0;
}

int
sp_ob_mtasts_parse(const char *body, size_t len, struct sp_ob_mtasts *p)
{
	const char *s = body, *end = body + len;
	int have_version = 0, have_mode = 0, have_age = 0;

	memset(p, 0, sizeof(*p));
	if (len > SP_OB_STS_BODY_MAX)
		return -1;
	while (s < end) {
		const char *eol = memchr(s, '\n', (size_t)(end - s));
		const char *colon, *k, *v;
		size_t ln = eol ? (size_t)(eol - s) : (size_t)(end - s), kn, vn;

		colon = memchr(s, ':', ln);
		if (colon != NULL) {
			k = s;
			kn = (size_t)(colon - s);
			v = colon + 1;
			vn = ln - kn - 1;
			trim(&k, &kn);
			trim(&v, &vn);
			if (is(k, kn, "version")) {
				if (have_version || !is(v, vn, "STSv1"))
					return -1;
				have_version = 1;
			} else if (is(k, kn, "mode")) {
				if (have_mode)
					return -1;
				if (is(v, vn, "enforce"))
					p->mode = SP_OB_STS_ENFORCE;
				else if (is(v, vn, "testing"))
					p->mode = SP_OB_STS_TESTING;
				else if (is(v, vn, "none"))
					p->mode = SP_OB_STS_NONE;
				else
					return -1;
				have_mode = 1;
			} else if (is(k, kn, "max_age")) {
				char num[16];
				char *e;

				if (have_age || vn == 0 || vn > 10)
					return -1;
				memcpy(num, v, vn);
				num[vn] = '\0';
				p->max_age = strtoul(num, &e, 10);
				if (*e != '\0' || p->max_age > 31557600)
					return -1;
				have_age = 1;
			} else if (is(k, kn, "mx")) {
				if (p->nmx >= SP_OB_STS_MX_MAX || vn == 0 ||
				    vn > 253 || memchr(v, 0, vn))
					return -1;
				memcpy(p->mx[p->nmx], v, vn);
				p->mx[p->nmx++][vn] = '\0';
			}
			/* Unknown keys are ignored (3.2, extensibility). */
		} else {
			const char *t = s;
			size_t tn = ln;

			trim(&t, &tn);
			if (tn != 0)
				return -1;
		}
		s = eol ? eol + 1 : end;
	}
	if (!have_version || !have_mode || !have_age ||
	    (p->mode != SP_OB_STS_NONE && p->nmx == 0)) {
		memset(p, 0, sizeof(*p));
		return -1;
	}
	return 0;
}

int
sp_ob_mtasts_mx_match(const struct sp_ob_mtasts *p, const char *host)
{
	size_t hl = strlen(host);
	int i;

	if (hl > 0 && host[hl - 1] == '.')
		hl--;
	for (i = 0; i < p->nmx; i++) {
		const char *pat = p->mx[i];
		size_t pl = strlen(pat);

		if (pl > 2 && pat[0] == '*' && pat[1] == '.') {
			/* "*.example.net": exactly one more label. */
			const char *dot = memchr(host, '.', hl);

			if (dot != NULL && dot != host &&
			    (size_t)(host + hl - dot) == pl - 1 &&
			    strncasecmp(dot, pat + 1, pl - 1) == 0)
				return 1;
		} else if (pl == hl && strncasecmp(pat, host, hl) == 0)
			return 1;
	}
	return 0;
}

/* ---- fetching ------------------------------------------------------------ */

static int
connect_to(const char *hostport, const struct sp_gw_dns_conf *dns,
    const char *name)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	char host[64];
	const char *colon;
	int fd;

	if (hostport != NULL) {
		colon = strrchr(hostport, ':');
		if (colon == NULL || (size_t)(colon - hostport) >= sizeof(host))
			return -1;
		memcpy(host, hostport, (size_t)(colon - hostport));
		host[colon - hostport] = '\0';
		if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
			return -1;
		sa.sin_port = htons((uint16_t)atoi(colon + 1));
	} else {
		struct sp_gw_dns_answer a;

		if (sp_gw_dns_query(dns, name, ns_t_a, &a) != SP_GW_DNS_OK)
			return -1;
		if (a.n < 1 || a.rr[0].len != 4) {
			sp_gw_dns_answer_free(&a);
			return -1;
		}
		memcpy(&sa.sin_addr, a.rr[0].data, 4);
		sp_gw_dns_answer_free(&a);
		sa.sin_port = htons(443);
	}
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	/* SO_SNDTIMEO bounds connect() too on Linux. */
	{
		struct timeval tv = { TIMEOUT_MS / 1000, 0 };

		(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* GETs the policy; the body into buf (RESPONSE_MAX), its length, or -1. */
static int
https_get(const char *name, const char *ca_file, const char *override,
    const struct sp_gw_dns_conf *dns, char *buf, size_t *len_r)
{
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	char req[512];
	size_t got = 0;
	int fd = -1, rc = -1, n;

	if ((fd = connect_to(override, dns, name)) < 0)
		return -1;
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    (ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL) :
	    SSL_CTX_set_default_verify_paths(ctx)) != 1)
		goto out;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if ((ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1 ||
	    SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME,
	    TLSEXT_NAMETYPE_host_name, (void *)(uintptr_t)name) != 1 ||
	    SSL_set1_host(ssl, name) != 1 || SSL_connect(ssl) != 1)
		goto out;
	n = snprintf(req, sizeof(req), "GET /.well-known/mta-sts.txt "
	    "HTTP/1.1\r\nHost: %s\r\nUser-Agent: sealpost-gateway\r\n"
	    "Connection: close\r\n\r\n", name);
	if (SSL_write(ssl, req, n) != n)
		goto out;
	while (got < RESPONSE_MAX) {
		n = SSL_read(ssl, buf + got, (int)(RESPONSE_MAX - got));
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got >= RESPONSE_MAX)
		goto out;
	buf[got] = '\0';
	*len_r = got;
	rc = 0;
out:
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	return rc;
}

void
sp_ob_mtasts_get(const struct sp_gw_dns_conf *dns, const char *domain,
    const char *ca_file, const char *connect_override,
    struct sp_ob_mtasts *p)
{
	struct sp_gw_dns_answer a;
	char name[300], *buf;
	const char *body;
	size_t len;
	int i, found = 0;

	memset(p, 0, sizeof(*p));
	snprintf(name, sizeof(name), "_mta-sts.%s", domain);
	if (sp_gw_dns_query(dns, name, ns_t_txt, &a) != SP_GW_DNS_OK)
		return;
	for (i = 0; i < a.n; i++)
		if (a.rr[i].len >= 7 && strncmp((char *)a.rr[i].data,
		    "v=STSv1", 7) == 0)
			found++;
	sp_gw_dns_answer_free(&a);
	if (found != 1)          /* none, or several: no policy (3.1) */
		return;
	if ((buf = malloc(RESPONSE_MAX + 1)) == NULL)
		return;
	snprintf(name, sizeof(name), "mta-sts.%s", domain);
	if (https_get(name, ca_file, connect_override, dns, buf, &len) != 0)
		goto out;
	/* Only a 200 counts; redirects are not followed (3.3). */
	if (len < 12 || strncmp(buf, "HTTP/1.", 7) != 0 ||
	    strncmp(buf + 8, " 200", 4) != 0 ||
	    (body = strstr(buf, "\r\n\r\n")) == NULL)
		goto out;
	body += 4;
	(void)sp_ob_mtasts_parse(body, len - (size_t)(body - buf), p);
out:
	free(buf);
}
