/*
 * Stub resolver over glibc's res_n* (see gw_dns.h).  Each query gets its
 * own res_state on the stack: res_ninit reads /etc/resolv.conf, then the
 * configured server (with its port, which glibc honours) replaces the
 * list.  Timeouts are whole seconds in glibc, so timeout_ms is rounded up;
 * one try (retry = 1) makes it the bound for the query, plus TCP when the
 * UDP answer was truncated.
 */
#include "server/gateway/auth/gw_dns.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int
sp_gw_dns_conf_init(struct sp_gw_dns_conf *c, const char *hostport,
    int timeout_ms)
{
	char host[64];
	const char *colon;
	char *end;
	unsigned long port;
	struct in_addr in;
	size_t hl;

	memset(c, 0, sizeof(*c));
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
	if (hostport == NULL || *hostport == '\0')
		return 0;
	if ((colon = strrchr(hostport, ':')) == NULL)
		return EINVAL;
	hl = (size_t)(colon - hostport);
	if (hl == 0 || hl >= sizeof(host))
		return EINVAL;
	memcpy(host, hostport, hl);
	host[hl] = '\0';
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || colon[1] == '\0' || port == 0 ||
	    port > 65535)
		return EINVAL;
	if (inet_pton(AF_INET, host, &in) != 1)
		return EINVAL;
	c->addr = in.s_addr;
	c->port = htons((uint16_t)port);
	return 0;
}

void
sp_gw_dns_answer_free(struct sp_gw_dns_answer *a)
{
	int i;

	if (a == NULL)
		return;
	for (i = 0; i < a->n; i++)
		free(a->rr[i].data);
	a->n = 0;
}

/* Joins the character-strings of one TXT rdata; NULL on ENOMEM or on a
 * malformed rdata (then *bad is set). */
static unsigned char *
txt_join(const unsigned char *rd, size_t rdlen, size_t *len_r, int *bad)
{
	unsigned char *out;
	size_t i = 0, o = 0;

	if (rdlen > SP_GW_DNS_MAX_TXT) {
		*bad = 1;
		return NULL;
	}
	if ((out = malloc(rdlen + 1)) == NULL)
		return NULL;
	while (i < rdlen) {
		size_t l = rd[i++];
		if (l > rdlen - i) {
			free(out);
			*bad = 1;
			return NULL;
		}
		memcpy(out + o, rd + i, l);
		o += l;
		i += l;
	}
	out[o] = '\0';
	*len_r = o;
	return out;
}

static unsigned char *
name_expand(const ns_msg *m, const unsigned char *p, size_t *len_r,
    int *bad)
{
	char name[NS_MAXDNAME];
	size_t l;
	unsigned char *out;

	if (dn_expand(ns_msg_base(*m), ns_msg_end(*m), p, name,
	    sizeof(name)) < 0) {
		*bad = 1;
		return NULL;
	}
	l = strlen(name);
	if (l > 0 && name[l - 1] == '.')
		name[--l] = '\0';
	if ((out = malloc(l + 1)) == NULL)
		return NULL;
	memcpy(out, name, l + 1);
	*len_r = l;
	return out;
}

/* One answer record of the wanted type into a; 0, 1 (skipped: malformed
 * or over the limit) or -ENOMEM. */
static int
take_rr(const ns_msg *m, const ns_rr *rr, int type, struct sp_gw_dns_answer *a)
{
	const unsigned char *rd = ns_rr_rdata(*rr);
	size_t rdlen = ns_rr_rdlen(*rr), len = 0;
	unsigned char *data = NULL;
	uint16_t pref = 0;
	int bad = 0;

	if (a->n >= SP_GW_DNS_MAX_RR)
		return 1;
	switch (type) {
	case ns_t_a:
	case ns_t_aaaa:
		len = type == ns_t_a ? 4 : 16;
		if (rdlen != len)
			return 1;
		if ((data = malloc(len)) == NULL)
			return -ENOMEM;
		memcpy(data, rd, len);
		break;
	case ns_t_txt:
		data = txt_join(rd, rdlen, &len, &bad);
		break;
	case ns_t_mx:
		if (rdlen < 3)
			return 1;
		pref = (uint16_t)(rd[0] << 8 | rd[1]);
		data = name_expand(m, rd + 2, &len, &bad);
		break;
	case ns_t_ptr:
		data = name_expand(m, rd, &len, &bad);
		break;
	default:
		return 1;
	}
	if (data == NULL)
		return bad ? 1 : -ENOMEM;
	a->rr[a->n].type = (uint16_t)type;
	a->rr[a->n].pref = pref;
	a->rr[a->n].len = len;
	a->rr[a->n].data = data;
	a->n++;
	return 0;
}

int
sp_gw_dns_parse(const unsigned char *pkt, size_t len, int type,
    struct sp_gw_dns_answer *a)
{
	ns_msg m;
	ns_rr rr;
	int i, n, rc;

	a->n = 0;
	if (len > 65535 || ns_initparse(pkt, (int)len, &m) < 0)
		return SP_GW_DNS_TEMP;
	/* A truncated answer here means TCP failed too: not a verdict. */
	if (ns_msg_getflag(m, ns_f_tc))
		return SP_GW_DNS_TEMP;
	switch (ns_msg_getflag(m, ns_f_rcode)) {
	case ns_r_noerror:
		break;
	case ns_r_nxdomain:
		return SP_GW_DNS_NXDOMAIN;
	default:
		return SP_GW_DNS_TEMP;
	}
	n = ns_msg_count(m, ns_s_an);
	for (i = 0; i < n; i++) {
		if (ns_parserr(&m, ns_s_an, i, &rr) < 0)
			break;
		/* CNAMEs on the way are followed by the server; only the
		 * records of the asked type count. */
		if ((int)ns_rr_type(rr) != type || ns_rr_class(rr) != ns_c_in)
			continue;
		if ((rc = take_rr(&m, &rr, type, a)) < 0) {
			sp_gw_dns_answer_free(a);
			return rc;
		}
	}
	return a->n > 0 ? SP_GW_DNS_OK : SP_GW_DNS_NODATA;
}

static pthread_mutex_t init_mu = PTHREAD_MUTEX_INITIALIZER;

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
sp_gw_dns_start_budget(struct sp_gw_dns_conf *c)
{
	c->deadline = now_ms() + (int64_t)SP_GW_DNS_BUDGET * c->timeout_ms;
}

int
sp_gw_dns_query(const struct sp_gw_dns_conf *c, const char *name, int type,
    struct sp_gw_dns_answer *a)
{
	struct __res_state st;
	unsigned char q[NS_PACKETSZ], *ans = NULL;
	int ql, al, rc, timeout = c->timeout_ms;
	const int anmax = 65535;

	a->n = 0;
	if (c->deadline != 0) {
		int64_t left = c->deadline - now_ms();
		if (left <= 0)
			return SP_GW_DNS_TEMP;
		if (left < timeout)
			timeout = (int)left;
	}
	memset(&st, 0, sizeof(st));
	/* res_ninit reloads glibc's shared resolv.conf cache; glibc locks
	 * it, but with locks ThreadSanitizer cannot see.  One lock of ours
	 * around it costs microseconds and leaves no doubt. */
	pthread_mutex_lock(&init_mu);
	rc = res_ninit(&st);
	pthread_mutex_unlock(&init_mu);
	if (rc != 0)
		return SP_GW_DNS_TEMP;
	if (c->addr != 0) {
		st.nscount = 1;
		st.nsaddr_list[0].sin_family = AF_INET;
		st.nsaddr_list[0].sin_addr.s_addr = c->addr;
		st.nsaddr_list[0].sin_port = c->port;
	}
	st.retrans = (timeout + 999) / 1000;
	if (st.retrans < 1)
		st.retrans = 1;
	st.retry = 1;
	/* Names are always absolute: no search list.  A long DKIM key
	 * that does not fit 512 bytes comes back with TC set and res_nsend
	 * asks again over TCP. */
	st.options &= ~(unsigned long)(RES_DNSRCH | RES_DEFNAMES);
	ql = res_nmkquery(&st, ns_o_query, name, ns_c_in, type, NULL, 0, NULL,
	    q, sizeof(q));
	if (ql < 0) {
		/* Not a valid name (too long, empty label): it cannot exist. */
		rc = SP_GW_DNS_NXDOMAIN;
		goto out_close;
	}
	if ((ans = malloc((size_t)anmax)) == NULL) {
		rc = -ENOMEM;
		goto out_close;
	}
	al = res_nsend(&st, q, ql, ans, anmax);
	if (al < 0) {
		rc = SP_GW_DNS_TEMP;
		goto out_free;
	}
	rc = sp_gw_dns_parse(ans, (size_t)al, type, a);
out_free:
	free(ans);
out_close:
	res_nclose(&st);
	return rc;
}
