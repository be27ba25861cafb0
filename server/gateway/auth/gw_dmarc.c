/*
 * DMARC (gw_dmarc.h).  The record uses DKIM's tag-list grammar, so the
 * DKIM tag parser reads it; only the DMARC tags are interpreted, unknown
 * ones are ignored (6.3).
 */
#include "server/gateway/auth/gw_dmarc.h"

#include <arpa/nameser.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

const char *
sp_gw_dmarc_str(enum sp_gw_dmarc_result r)
{
	static const char *const n[] = {"none", "pass", "fail", "temperror",
	    "permerror"};

	return (unsigned)r < 5 ? n[r] : "permerror";
}

const char *
sp_gw_dmarc_policy_str(enum sp_gw_dmarc_policy p)
{
	static const char *const n[] = {"none", "none", "quarantine",
	    "reject"};

	return (unsigned)p < 4 ? n[p] : "none";
}

static int
val_is(const struct sp_gw_dkim_tag *t, const char *v)
{
	return t->value_len == strlen(v) &&
	    strncasecmp(t->value, v, t->value_len) == 0;
}

static enum sp_gw_dmarc_policy
parse_policy(const struct sp_gw_dkim_tag *t)
{
	if (val_is(t, "none"))
		return SP_GW_DMARC_P_NONE;
	if (val_is(t, "quarantine"))
		return SP_GW_DMARC_P_QUARANTINE;
	if (val_is(t, "reject"))
		return SP_GW_DMARC_P_REJECT;
	return SP_GW_DMARC_P_UNSET;
}

/* At least one syntactically plausible URI ("scheme:rest") in rua=. */
static int
rua_valid(const struct sp_gw_dkim_tag *t)
{
	const char *c = memchr(t->value, ':', t->value_len);

	return c != NULL && c > t->value &&
	    (size_t)(c - t->value) + 1 < t->value_len;
}

int
sp_gw_dmarc_parse(const char *txt, size_t len, struct sp_gw_dmarc_record *r)
{
	struct sp_gw_dkim_tag tags[SP_GW_DKIM_MAX_TAGS];
	int n, bad = 0, rua = 0;

	memset(r, 0, sizeof(*r));
	r->pct = 100;
	if (memchr(txt, '\0', len) != NULL ||
	    sp_gw_dkim_tags_parse(txt, len, tags, SP_GW_DKIM_MAX_TAGS, &n) ||
	    n == 0)
		return -1;
	/* v=DMARC1 first, exactly (6.4). */
	if (tags[0].name_len != 1 || tags[0].name[0] != 'v' ||
	    tags[0].value_len != 6 || memcmp(tags[0].value, "DMARC1", 6))
		return -1;
	for (int i = 1; i < n; i++) {
		const struct sp_gw_dkim_tag *t = &tags[i];
		char name[8];

		if (t->name_len >= sizeof(name))
			continue;
		memcpy(name, t->name, t->name_len);
		name[t->name_len] = '\0';
		if (strcmp(name, "p") == 0) {
			if ((r->p = parse_policy(t)) == SP_GW_DMARC_P_UNSET)
				bad = 1;
		} else if (strcmp(name, "sp") == 0) {
			if ((r->sp = parse_policy(t)) == SP_GW_DMARC_P_UNSET)
				bad = 1;
		} else if (strcmp(name, "adkim") == 0) {
			r->adkim_strict = val_is(t, "s");
		} else if (strcmp(name, "aspf") == 0) {
			r->aspf_strict = val_is(t, "s");
		} else if (strcmp(name, "pct") == 0) {
			int v = 0;
			size_t k;
			for (k = 0; k < t->value_len && k < 3 &&
			    isdigit((unsigned char)t->value[k]); k++)
				v = v * 10 + (t->value[k] - '0');
			if (k == t->value_len && k > 0 && v <= 100)
				r->pct = v;
		} else if (strcmp(name, "rua") == 0) {
			rua = rua_valid(t);
		}
	}
	if (r->p == SP_GW_DMARC_P_UNSET)
		bad = 1;
	if (bad) {
		/* 6.6.3: a broken p=/sp= with a usable rua= acts as p=none. */
		if (!rua)
			return -1;
		r->p = SP_GW_DMARC_P_NONE;
		r->sp = SP_GW_DMARC_P_UNSET;
	}
	return 0;
}

/* ---- RFC5322.From ---- */

/*
 * Finds the addr-spec of a From value: skips quoted strings and comments,
 * counts top-level commas (more than one mailbox) and takes the content of
 * the angle brackets if any.  The address is copied without comments.
 */
static int
from_addr(const char *v, size_t len, char *addr, size_t alen, char *err,
    size_t errlen)
{
	size_t o = 0, depth = 0;
	int quoted = 0, angle = 0, had_angle = 0;
	char bare[512];
	size_t bo = 0;

	for (size_t i = 0; i < len; i++) {
		char c = v[i];
		if ((quoted || depth > 0) && c == '\\' && i + 1 < len) {
			i++;
			if (quoted && angle && o + 2 < alen) {
				addr[o++] = '\\';
				addr[o++] = v[i];
			}
			continue;
		}
		if (quoted) {
			if (c == '"')
				quoted = 0;
			if (angle && o + 1 < alen)
				addr[o++] = c;
			else if (!had_angle && bo + 1 < sizeof(bare))
				bare[bo++] = c;
			continue;
		}
		if (depth > 0) {
			if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
			continue;
		}
		if (c == '(') {
			if (depth++ > 32)
				goto bad;
			continue;
		}
		if (c == '"') {
			quoted = 1;
			if (angle && o + 1 < alen)
				addr[o++] = c;
			else if (!had_angle && bo + 1 < sizeof(bare))
				bare[bo++] = c;
			continue;
		}
		if (c == '<') {
			if (had_angle)
				goto multiple;
			angle = had_angle = 1;
			continue;
		}
		if (c == '>') {
			angle = 0;
			continue;
		}
		if (c == ',' && !angle)
			goto multiple;
		if (c == ';' || c == ':') {
			if (!angle) {
				snprintf(err, errlen, "From is a group");
				return -1;
			}
		}
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		if (angle) {
			if (o + 1 < alen)
				addr[o++] = c;
		} else if (!had_angle && bo + 1 < sizeof(bare)) {
			bare[bo++] = c;
		}
	}
	if (quoted || depth > 0 || angle)
		goto bad;
	if (!had_angle) {
		if (bo >= alen)
			goto bad;
		memcpy(addr, bare, bo);
		o = bo;
	}
	addr[o] = '\0';
	return 0;
multiple:
	snprintf(err, errlen, "more than one From address");
	return -1;
bad:
	snprintf(err, errlen, "unparsable From");
	return -1;
}

int
sp_gw_dmarc_from_domain(const struct sp_gw_msg *m, char *dom, size_t domlen,
    char *err, size_t errlen)
{
	char addr[512];
	const char *at;
	int i = sp_gw_msg_find(m, "From", 0);
	size_t l;

	dom[0] = '\0';
	if (i < 0) {
		snprintf(err, errlen, "no From field");
		return -1;
	}
	if (sp_gw_msg_find(m, "From", i + 1) >= 0) {
		snprintf(err, errlen, "more than one From field");
		return -1;
	}
	if (from_addr(m->h[i].value, m->h[i].value_len, addr, sizeof(addr),
	    err, errlen) != 0)
		return -1;
	if ((at = strrchr(addr, '@')) == NULL || at == addr) {
		snprintf(err, errlen, "From address without a domain");
		return -1;
	}
	at++;
	l = strlen(at);
	if (l > 0 && at[l - 1] == '.')
		l--;
	if (l == 0 || l >= domlen || l > 253 || memchr(at, '.', l) == NULL)
		goto bad;
	for (size_t k = 0; k < l; k++) {
		unsigned char c = (unsigned char)at[k];
		/* Letters, digits, hyphen, dot; UTF-8 for IDNs. */
		if (!isalnum(c) && c != '-' && c != '.' && c < 0x80)
			goto bad;
		if (c == '.' && (k == 0 || at[k - 1] == '.'))
			goto bad;
		dom[k] = (char)tolower(c);
	}
	dom[l] = '\0';
	return 0;
bad:
	snprintf(err, errlen, "From domain is not a domain name");
	dom[0] = '\0';
	return -1;
}

/* ---- policy discovery and alignment ---- */

/* 0 found (r filled), 1 none, -1 temperror. */
static int
fetch_record(const struct sp_gw_dns_conf *dns, const char *domain,
    struct sp_gw_dmarc_record *r)
{
	struct sp_gw_dns_answer a;
	struct sp_gw_dmarc_record tmp;
	char name[300];
	int st, found = 0;

	if (snprintf(name, sizeof(name), "_dmarc.%s", domain) >=
	    (int)sizeof(name))
		return 1;
	st = sp_gw_dns_query(dns, name, ns_t_txt, &a);
	if (st == SP_GW_DNS_TEMP || st < 0)
		return -1;
	if (st != SP_GW_DNS_OK)
		return 1;
	for (int i = 0; i < a.n; i++) {
		const char *t = (const char *)a.rr[i].data;
		if (a.rr[i].len < 8 || strncmp(t, "v=DMARC1", 8) != 0)
			continue;
		/* More than one record: no DMARC processing (6.6.3). */
		if (found++)
			break;
		if (sp_gw_dmarc_parse(t, a.rr[i].len, &tmp) == 0)
			*r = tmp;
		else
			found = 2;
	}
	sp_gw_dns_answer_free(&a);
	return found == 1 ? 0 : 1;
}

static const char *
org_domain(const psl_ctx_t *psl, const char *d)
{
	const char *o = psl != NULL ? psl_registrable_domain(psl, d) : NULL;

	return o != NULL ? o : d;
}

static int
aligned(const psl_ctx_t *psl, const char *a, const char *from, int strict)
{
	if (a == NULL || a[0] == '\0')
		return 0;
	if (strcasecmp(a, from) == 0)
		return 1;
	if (strict)
		return 0;
	return strcasecmp(org_domain(psl, a), org_domain(psl, from)) == 0;
}

static enum sp_gw_dmarc_policy
apply_pct(enum sp_gw_dmarc_policy p, int pct)
{
	if (p <= SP_GW_DMARC_P_NONE || pct >= 100 ||
	    (pct > 0 && randombytes_uniform(100) < (uint32_t)pct))
		return p;
	return p == SP_GW_DMARC_P_REJECT ? SP_GW_DMARC_P_QUARANTINE :
	    SP_GW_DMARC_P_NONE;
}

int
sp_gw_dmarc_check(const struct sp_gw_dns_conf *dns, const psl_ctx_t *psl,
    const struct sp_gw_msg *m, enum sp_gw_spf_result spf,
    const char *spf_domain, const struct sp_gw_dkim_out *dkim, int ndkim,
    struct sp_gw_dmarc_out *out)
{
	struct sp_gw_dmarc_record rec;
	char spfdom[256];
	const char *org;
	int rc, at_org = 0, temp = 0;

	memset(out, 0, sizeof(*out));
	if (sp_gw_dmarc_from_domain(m, out->from, sizeof(out->from),
	    out->reason, sizeof(out->reason)) != 0) {
		out->result = SP_GW_DMARC_PERMERROR;
		return 0;
	}
	rc = fetch_record(dns, out->from, &rec);
	org = org_domain(psl, out->from);
	if (rc == 1 && strcmp(org, out->from) != 0) {
		rc = fetch_record(dns, org, &rec);
		at_org = 1;
	}
	if (rc < 0) {
		out->result = SP_GW_DMARC_TEMPERROR;
		snprintf(out->reason, sizeof(out->reason),
		    "DMARC record lookup failed");
		return 0;
	}
	if (rc == 1) {
		out->result = SP_GW_DMARC_NONE;
		return 0;
	}
	out->policy = at_org && rec.sp != SP_GW_DMARC_P_UNSET ? rec.sp :
	    rec.p;
	snprintf(spfdom, sizeof(spfdom), "%s", spf_domain ? spf_domain : "");
	for (int i = 0; i < ndkim; i++) {
		if (!aligned(psl, dkim[i].d, out->from, rec.adkim_strict))
			continue;
		if (dkim[i].result == SP_GW_DKIM_PASS) {
			out->result = SP_GW_DMARC_PASS;
			return 0;
		}
		if (dkim[i].result == SP_GW_DKIM_TEMPERROR)
			temp = 1;
	}
	if (aligned(psl, spfdom, out->from, rec.aspf_strict)) {
		if (spf == SP_GW_SPF_PASS) {
			out->result = SP_GW_DMARC_PASS;
			return 0;
		}
		if (spf == SP_GW_SPF_TEMPERROR)
			temp = 1;
	}
	if (temp) {
		/* An aligned identifier might have passed: not a verdict. */
		out->result = SP_GW_DMARC_TEMPERROR;
		snprintf(out->reason, sizeof(out->reason),
		    "an aligned check had a DNS error");
		return 0;
	}
	out->result = SP_GW_DMARC_FAIL;
	out->disposition = apply_pct(out->policy, rec.pct);
	snprintf(out->reason, sizeof(out->reason), "no aligned pass");
	return 0;
}
