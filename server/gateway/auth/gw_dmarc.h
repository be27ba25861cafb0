/*
 * DMARC (RFC 7489): the record parser, the RFC5322.From domain, policy
 * discovery (the From domain, then its organisational domain from the
 * Public Suffix List) and identifier alignment.
 *
 * pct=: a failing message gets the policy with probability pct/100
 * (randombytes_uniform) and otherwise the next weaker one (reject ->
 * quarantine -> none), as RFC 7489 6.6.4 says.  pct=0 and pct=100 are
 * therefore deterministic; tests use only those.
 *
 * A message without exactly one From field holding exactly one address
 * with a domain gets permerror (6.6.1); gw_auth turns that into a
 * rejection unless it only records.
 */
#ifndef SP_GW_DMARC_H
#define SP_GW_DMARC_H

#include <stddef.h>

#include <libpsl.h>

#include "server/gateway/auth/gw_dkim.h"
#include "server/gateway/auth/gw_dns.h"
#include "server/gateway/auth/gw_msg.h"
#include "server/gateway/auth/gw_spf.h"

enum sp_gw_dmarc_policy { SP_GW_DMARC_P_UNSET = 0, SP_GW_DMARC_P_NONE,
    SP_GW_DMARC_P_QUARANTINE, SP_GW_DMARC_P_REJECT };

enum sp_gw_dmarc_result { SP_GW_DMARC_NONE = 0, SP_GW_DMARC_PASS,
    SP_GW_DMARC_FAIL, SP_GW_DMARC_TEMPERROR, SP_GW_DMARC_PERMERROR };

struct sp_gw_dmarc_record {
	enum sp_gw_dmarc_policy p, sp;    /* sp UNSET: p applies */
	int adkim_strict, aspf_strict;
	int pct;                          /* 0..100 */
};

/* Parses a DMARC record.  0, or -1 when it is not one or unusable (no
 * valid p= and no valid rua= to fall back on p=none with, 6.6.3). */
int sp_gw_dmarc_parse(const char *txt, size_t len,
    struct sp_gw_dmarc_record *r);

/* The domain of the one RFC5322.From address, lowercased into dom.
 * 0, or -1 with a reason in err. */
int sp_gw_dmarc_from_domain(const struct sp_gw_msg *m, char *dom,
    size_t domlen, char *err, size_t errlen);

struct sp_gw_dmarc_out {
	enum sp_gw_dmarc_result result;
	enum sp_gw_dmarc_policy policy;       /* the one that applies */
	enum sp_gw_dmarc_policy disposition;  /* after pct= */
	char from[254];                       /* header.from */
	char reason[128];
};

/*
 * Evaluates DMARC for m given the SPF outcome (result and the domain it
 * was about) and the DKIM outcomes.  psl is the loaded suffix list.
 * Returns 0 or ENOMEM.
 */
int sp_gw_dmarc_check(const struct sp_gw_dns_conf *dns, const psl_ctx_t *psl,
    const struct sp_gw_msg *m, enum sp_gw_spf_result spf,
    const char *spf_domain, const struct sp_gw_dkim_out *dkim, int ndkim,
    struct sp_gw_dmarc_out *out);

const char *sp_gw_dmarc_str(enum sp_gw_dmarc_result r);
const char *sp_gw_dmarc_policy_str(enum sp_gw_dmarc_policy p);

#endif
