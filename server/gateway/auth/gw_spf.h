/*
 * SPF (RFC 7208): the record parser and check_host().
 *
 * The parser turns one "v=spf1 ..." TXT string into terms that point into
 * the caller's string (no copies, valid as long as it is).  check_host()
 * evaluates with the RFC's limits: 10 DNS-querying terms, 10 MX and PTR
 * names each, 2 void lookups.  The exp= modifier is parsed but its text is
 * never fetched: explanations are for SMTP replies we do not send.
 * Blocking (DNS), thread-safe, no global state.
 */
#ifndef SP_GW_SPF_H
#define SP_GW_SPF_H

#include <stddef.h>
#include <stdint.h>

#include "server/gateway/auth/gw_dns.h"

enum sp_gw_spf_result {
	SP_GW_SPF_NONE = 0,
	SP_GW_SPF_NEUTRAL,
	SP_GW_SPF_PASS,
	SP_GW_SPF_FAIL,
	SP_GW_SPF_SOFTFAIL,
	SP_GW_SPF_TEMPERROR,
	SP_GW_SPF_PERMERROR,
};

enum sp_gw_spf_mech {
	SP_GW_SPF_ALL = 1, SP_GW_SPF_INCLUDE, SP_GW_SPF_A, SP_GW_SPF_MX,
	SP_GW_SPF_PTR, SP_GW_SPF_IP4, SP_GW_SPF_IP6, SP_GW_SPF_EXISTS,
};

#define SP_GW_SPF_MAX_TERMS 128    /* a 4 KB record cannot hold more */
#define SP_GW_SPF_MAX_LOOKUPS 10   /* RFC 7208 4.6.4 */
#define SP_GW_SPF_MAX_VOID 2

struct sp_gw_spf_term {
	char qual;               /* '+', '-', '~', '?' */
	uint8_t mech;            /* enum sp_gw_spf_mech */
	uint8_t cidr4, cidr6;    /* prefix lengths (32 / 128 if absent) */
	uint8_t ip[16];          /* ip4 (4 bytes) / ip6 network */
	const char *spec;        /* domain-spec, NULL when absent */
	size_t spec_len;
};

struct sp_gw_spf_record {
	int n;
	struct sp_gw_spf_term t[SP_GW_SPF_MAX_TERMS];
	const char *redirect, *exp;    /* macro-strings or NULL */
	size_t redirect_len, exp_len;
};

/* Is txt (len bytes) an SPF version 1 record ("v=spf1" then SP or end)? */
int sp_gw_spf_is_record(const char *txt, size_t len);

/* Parses an SPF record.  Returns 0, or -1 for a syntax error (the
 * caller's permerror) with a reason in err (errlen bytes). */
int sp_gw_spf_parse(const char *txt, size_t len, struct sp_gw_spf_record *r,
    char *err, size_t errlen);

/* Checks a macro-string's syntax (RFC 7208 7.1); exp != 0 allows the
 * c, r, t macros of explanations.  0 or -1. */
int sp_gw_spf_macro_valid(const char *s, size_t len, int exp);

struct sp_gw_spf_out {
	enum sp_gw_spf_result result;
	char domain[256];        /* the identity's domain */
	char reason[160];        /* why, for the A-R comment */
	int lookups;             /* DNS-querying terms used */
};

/*
 * check_host() for the client ip (text, v4 or v6), the HELO name and the
 * MAIL FROM address sender ("" for the null sender: then
 * postmaster@helo is checked, RFC 7208 2.4).  Returns 0 and fills out,
 * or EINVAL (bad ip) or ENOMEM.
 */
int sp_gw_spf_check(const struct sp_gw_dns_conf *dns, const char *ip,
    const char *helo, const char *sender, struct sp_gw_spf_out *out);

/* The macro expander, exposed for tests: expands s for the given
 * identities (domain is the <domain> of check_host, ip text).  Returns 0
 * with a NUL-ended result in out, or -1 (syntax, overflow). */
int sp_gw_spf_expand_test(const char *s, const char *ip, const char *sender,
    const char *domain, const char *helo, int exp, char *out, size_t outlen);

const char *sp_gw_spf_str(enum sp_gw_spf_result r);

#endif
