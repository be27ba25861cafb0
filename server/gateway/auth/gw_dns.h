/*
 * A small blocking stub resolver for the sender checks: one query, one
 * answer, a timeout, a configurable server ("HOST:PORT", IPv4) so tests
 * can use their own DNS server.  Built on glibc's res_n* with a res_state
 * per call, so it is thread-safe and keeps no global state.
 *
 * Why not libspf2/libopendkim's resolvers: they hide the SERVFAIL /
 * NXDOMAIN / NODATA distinction the SPF void-lookup limit and temperror
 * need, and neither takes a server port.
 */
#ifndef SP_GW_DNS_H
#define SP_GW_DNS_H

#include <stddef.h>
#include <stdint.h>

enum sp_gw_dns_status {
	SP_GW_DNS_OK = 0,    /* at least one record of the type */
	SP_GW_DNS_NXDOMAIN,  /* the name does not exist */
	SP_GW_DNS_NODATA,    /* the name exists, no record of the type */
	SP_GW_DNS_TEMP,      /* SERVFAIL, timeout, unreachable, truncated */
};

/* Limits: hostile answers cannot make us allocate more than this. */
#define SP_GW_DNS_MAX_RR 64        /* records kept per answer */
#define SP_GW_DNS_MAX_TXT 4096     /* bytes of one TXT record, joined */

struct sp_gw_dns_conf {
	uint32_t addr;     /* server, network order; 0 = /etc/resolv.conf */
	uint16_t port;     /* network order */
	int timeout_ms;    /* per query, > 0 */
	int64_t deadline;  /* CLOCK_MONOTONIC ms after which every query is
	                    * a temporary error at once; 0 = none */
};

/* A hostile domain can make each of SPF's many lookups slow; a budget per
 * check phase bounds the time a worker spends (RFC 7208 4.6.4 suggests
 * about 20 s for SPF).  Sets c->deadline to now + SP_GW_DNS_BUDGET
 * timeouts. */
#define SP_GW_DNS_BUDGET 4
void sp_gw_dns_start_budget(struct sp_gw_dns_conf *c);

struct sp_gw_dns_rr {
	/* A: 4 bytes, AAAA: 16 bytes; TXT: the strings joined, NUL-ended
	 * (len excludes the NUL); MX, PTR: a presentation name without the
	 * trailing dot, NUL-ended. */
	uint16_t type;
	uint16_t pref;         /* MX only */
	size_t len;
	unsigned char *data;   /* owned by the answer */
};

struct sp_gw_dns_answer {
	int n;
	struct sp_gw_dns_rr rr[SP_GW_DNS_MAX_RR];
};

/* Parses "HOST:PORT" (IPv4 literal, port 1..65535) into c; timeout_ms 0
 * means 5000.  Returns 0 or EINVAL. */
int sp_gw_dns_conf_init(struct sp_gw_dns_conf *c, const char *hostport,
    int timeout_ms);

/* Queries name (no trailing dot needed, no search list) for type
 * (ns_t_a, ns_t_aaaa, ns_t_txt, ns_t_mx, ns_t_ptr).  Returns an
 * sp_gw_dns_status, or -ENOMEM; *a is filled (free it with
 * sp_gw_dns_answer_free, also after an error) when OK. */
int sp_gw_dns_query(const struct sp_gw_dns_conf *c, const char *name,
    int type, struct sp_gw_dns_answer *a);
void sp_gw_dns_answer_free(struct sp_gw_dns_answer *a);

/* Parses a DNS answer packet (from the wire) into a; the parser the
 * fuzz target drives.  Returns an sp_gw_dns_status or -ENOMEM. */
int sp_gw_dns_parse(const unsigned char *pkt, size_t len, int type,
    struct sp_gw_dns_answer *a);

#endif
