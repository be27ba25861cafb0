/*
 * MTA-STS (RFC 8461) for outbound delivery: the _mta-sts TXT record, the
 * policy fetched over HTTPS from mta-sts.DOMAIN (certificate verified
 * against ca_file or the system store, no redirects), its parser, and MX
 * name matching.
 *
 * What is not done: policy caching (every delivery attempt fetches the
 * policy again; RFC 8461 5.1 asks senders to cache it for max_age, which
 * is what stops an attacker who blocks the fetch from downgrading a
 * domain that was seen before: without a cache, a blocked fetch means "no
 * policy", as 5 says for a sender with nothing cached), and TLSRPT.
 *
 * The policy parser gets hostile bytes: at most SP_OB_STS_BODY_MAX bytes,
 * SP_OB_STS_MX_MAX mx lines of at most 253 bytes.  Never logs.
 */
#ifndef SP_GW_OUTBOUND_MTASTS_H
#define SP_GW_OUTBOUND_MTASTS_H

#include <stddef.h>

#include "server/gateway/auth/gw_dns.h"

#define SP_OB_STS_BODY_MAX (64 * 1024)
#define SP_OB_STS_MX_MAX 16

enum sp_ob_sts_mode {
	SP_OB_STS_NONE = 0,      /* no policy, or mode none */
	SP_OB_STS_TESTING,       /* report only: deliver as without */
	SP_OB_STS_ENFORCE,       /* TLS with a valid certificate, MX listed */
	SP_OB_STS_TEMP,          /* reserved (a cache would need it) */
};

struct sp_ob_mtasts {
	enum sp_ob_sts_mode mode;
	unsigned long max_age;
	int nmx;
	char mx[SP_OB_STS_MX_MAX][254];
};

/* Parses a policy body (RFC 8461 3.2).  0, or -1 when it is not a valid
 * STSv1 policy (the caller then treats the domain as having none). */
int sp_ob_mtasts_parse(const char *body, size_t len, struct sp_ob_mtasts *p);

/* 1 if host (an MX name) matches one of p's mx patterns (4.1). */
int sp_ob_mtasts_mx_match(const struct sp_ob_mtasts *p, const char *host);

/*
 * The policy in force for domain: mode NONE when there is no TXT record
 * or the policy cannot be fetched or parsed.  connect_override
 * ("HOST:PORT", tests) replaces the address of mta-sts.DOMAIN:443; the
 * certificate is still checked for the name mta-sts.DOMAIN.
 */
void sp_ob_mtasts_get(const struct sp_gw_dns_conf *dns, const char *domain,
    const char *ca_file, const char *connect_override,
    struct sp_ob_mtasts *p);

#endif
