/*
 * sp_gw_auth_check (gw_auth.h): SPF on the envelope, DKIM on the
 * message, DMARC on both, then the Authentication-Results value (RFC
 * 8601) and the action.
 *
 * The action follows DMARC alone: SPF or DKIM failing without a DMARC
 * policy decides nothing.  A temporary DNS error decides only when the
 * outcome depends on it: the DMARC record could not be fetched, or an
 * aligned identifier whose check hit the error might have passed under a
 * quarantine or reject policy.
 */
#include "server/gateway/auth/gw_auth.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpsl.h>
#include <sodium.h>

#include "server/gateway/auth/gw_dkim.h"
#include "server/gateway/auth/gw_dmarc.h"
#include "server/gateway/auth/gw_dns.h"
#include "server/gateway/auth/gw_msg.h"
#include "server/gateway/auth/gw_spf.h"

/*
 * Loaded suffix lists, kept for the process's life: parsing the list
 * costs milliseconds, and a psl_ctx_t is read-only (thread-safe) once
 * loaded.  A few distinct paths are cached; beyond that a list is loaded
 * for the one call and freed.
 */
#define PSL_CACHE 4
static pthread_mutex_t psl_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char path[PATH_MAX];    /* "" = libpsl's built-in/system list */
	const psl_ctx_t *ctx;
} psl_cache[PSL_CACHE];

/* The named file, or the newer of the built-in list and the system's
 * file, or the built-in list alone (static, never freed). */
static const psl_ctx_t *
psl_load(const char *path, psl_ctx_t **owned_r)
{
	psl_ctx_t *p;

	p = path != NULL ? psl_load_file(path) : psl_latest(NULL);
	*owned_r = p;
	if (p == NULL && path == NULL)
		return psl_builtin();
	return p;
}

/* Returns the list for path, or NULL.  *owned_r is set to what the
 * caller must psl_free when the cache is full, else NULL. */
static const psl_ctx_t *
psl_get(const char *path, psl_ctx_t **owned_r)
{
	const char *key = path != NULL ? path : "";
	const psl_ctx_t *p = NULL;
	psl_ctx_t *owned = NULL;
	int i;

	*owned_r = NULL;
	if (strlen(key) >= PATH_MAX)
		return NULL;
	pthread_mutex_lock(&psl_mu);
	for (i = 0; i < PSL_CACHE && psl_cache[i].ctx != NULL; i++)
		if (strcmp(psl_cache[i].path, key) == 0) {
			p = psl_cache[i].ctx;
			goto out;
		}
	if ((p = psl_load(path, &owned)) == NULL)
		goto out;
	if (i < PSL_CACHE) {
		snprintf(psl_cache[i].path, sizeof(psl_cache[i].path), "%s",
		    key);
		psl_cache[i].ctx = p;
	} else {
		*owned_r = owned;
	}
out:
	pthread_mutex_unlock(&psl_mu);
	return p;
}

/* ---- Authentication-Results ---- */

struct ar {
	char *p;
	size_t len, cap;
	int oom;
};

static void
ar_add(struct ar *a, const char *s, size_t n)
{
	if (a->oom)
		return;
	if (a->len + n + 1 > a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 512;
		char *np;
		while (cap < a->len + n + 1)
			cap *= 2;
		if ((np = realloc(a->p, cap)) == NULL) {
			a->oom = 1;
			return;
		}
		a->p = np;
		a->cap = cap;
	}
	memcpy(a->p + a->len, s, n);
	a->len += n;
	a->p[a->len] = '\0';
}

static void
ar_str(struct ar *a, const char *s)
{
	ar_add(a, s, strlen(s));
}

/* A comment: ( ) and \ escaped (RFC 5322 ccontent), controls dropped. */
static void
ar_comment(struct ar *a, const char *s)
{
	if (s == NULL || *s == '\0')
		return;
	ar_str(a, " (");
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c == 0x7f)
			continue;
		if (c == '(' || c == ')' || c == '\\')
			ar_add(a, "\\", 1);
		ar_add(a, s, 1);
	}
	ar_str(a, ")");
}

/* A property value: as is when it is a dot-atom (with @), else a
 * quoted-string. */
static void
ar_pvalue(struct ar *a, const char *prop, const char *v)
{
	int plain = *v != '\0';

	for (const char *p = v; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) &&
		    strchr("!#$%&'*+-/=?^_`{|}~.@", *p) == NULL &&
		    (unsigned char)*p < 0x80)
			plain = 0;
	ar_str(a, " ");
	ar_str(a, prop);
	ar_str(a, "=");
	if (plain) {
		ar_str(a, v);
		return;
	}
	ar_str(a, "\"");
	for (const char *p = v; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			continue;
		if (*p == '"' || *p == '\\')
			ar_add(a, "\\", 1);
		ar_add(a, p, 1);
	}
	ar_str(a, "\"");
}

/* The summary of all DKIM results: the most useful one wins. */
static enum sp_gw_dkim_result
dkim_best(const struct sp_gw_dkim_out *d, int n)
{
	static const enum sp_gw_dkim_result rank[] = {SP_GW_DKIM_PASS,
	    SP_GW_DKIM_POLICY, SP_GW_DKIM_TEMPERROR, SP_GW_DKIM_FAIL,
	    SP_GW_DKIM_PERMERROR};

	for (size_t k = 0; k < sizeof(rank) / sizeof(rank[0]); k++)
		for (int i = 0; i < n; i++)
			if (d[i].result == rank[k])
				return rank[k];
	return SP_GW_DKIM_NONE;
}

static void
build_ar(struct ar *a, const struct sp_gw_auth_opts *o, const char *helo,
    const char *mail_from, const struct sp_gw_spf_out *spf,
    const struct sp_gw_dkim_out *dk, int ndk,
    const struct sp_gw_dmarc_out *dm)
{
	char c[96];

	ar_str(a, o->authserv_id && *o->authserv_id ? o->authserv_id :
	    "localhost");
	ar_str(a, "; spf=");
	ar_str(a, sp_gw_spf_str(spf->result));
	if (spf->result != SP_GW_SPF_PASS)
		ar_comment(a, spf->reason);
	if (mail_from != NULL && *mail_from != '\0')
		ar_pvalue(a, "smtp.mailfrom", mail_from);
	else
		ar_pvalue(a, "smtp.helo", helo != NULL ? helo : "");
	if (ndk == 0)
		ar_str(a, "; dkim=none");
	for (int i = 0; i < ndk; i++) {
		ar_str(a, "; dkim=");
		ar_str(a, sp_gw_dkim_str(dk[i].result));
		snprintf(c, sizeof(c), "%s%s%s", dk[i].reason,
		    dk[i].testing && dk[i].reason[0] ? "; " : "",
		    dk[i].testing ? "key in testing mode" : "");
		ar_comment(a, c);
		if (dk[i].d[0] != '\0')
			ar_pvalue(a, "header.d", dk[i].d);
		if (dk[i].s[0] != '\0')
			ar_pvalue(a, "header.s", dk[i].s);
		if (dk[i].a[0] != '\0')
			ar_pvalue(a, "header.a", dk[i].a);
		if (dk[i].b8[0] != '\0')
			ar_pvalue(a, "header.b", dk[i].b8);
	}
	ar_str(a, "; dmarc=");
	ar_str(a, sp_gw_dmarc_str(dm->result));
	if (dm->result == SP_GW_DMARC_FAIL) {
		snprintf(c, sizeof(c), "p=%s dis=%s",
		    sp_gw_dmarc_policy_str(dm->policy),
		    sp_gw_dmarc_policy_str(dm->disposition));
		ar_comment(a, c);
	} else if (dm->result != SP_GW_DMARC_PASS) {
		ar_comment(a, dm->reason);
	}
	if (dm->from[0] != '\0')
		ar_pvalue(a, "header.from", dm->from);
}

static void
decide(const struct sp_gw_auth_opts *o, const struct sp_gw_dmarc_out *dm,
    struct sp_gw_auth_result *r)
{
	const char *pol = sp_gw_dmarc_policy_str(dm->policy);

	r->action = SP_GW_ACCEPT;
	switch (dm->result) {
	case SP_GW_DMARC_PERMERROR:
		r->action = SP_GW_REJECT;
		snprintf(r->reason, sizeof(r->reason),
		    "DMARC: %s (RFC 7489 6.6.1)", dm->reason);
		break;
	case SP_GW_DMARC_TEMPERROR:
		/* Unknown policy (lookup failed) or a policy with teeth. */
		if (dm->policy == SP_GW_DMARC_P_UNSET ||
		    dm->policy >= SP_GW_DMARC_P_QUARANTINE) {
			r->action = SP_GW_TEMPFAIL;
			snprintf(r->reason, sizeof(r->reason),
			    "DMARC for %.100s: temporary DNS error", dm->from);
		}
		break;
	case SP_GW_DMARC_FAIL:
		if (dm->disposition == SP_GW_DMARC_P_REJECT)
			r->action = SP_GW_REJECT;
		else if (dm->disposition == SP_GW_DMARC_P_QUARANTINE)
			r->action = SP_GW_QUARANTINE;
		snprintf(r->reason, sizeof(r->reason),
		    "DMARC policy of %.100s (p=%s): no aligned SPF or DKIM pass",
		    dm->from, pol);
		break;
	default:
		break;
	}
	if (o->record_only && r->action != SP_GW_ACCEPT) {
		r->action = SP_GW_ACCEPT;
		snprintf(r->reason + strlen(r->reason),
		    sizeof(r->reason) - strlen(r->reason), "; recorded only");
	}
}

int
sp_gw_auth_check(const struct sp_gw_auth_opts *o, const char *ip,
    const char *helo, const char *mail_from, const uint8_t *msg, size_t len,
    struct sp_gw_auth_result *r)
{
	struct sp_gw_dns_conf dns;
	struct sp_gw_spf_out spf;
	struct sp_gw_dkim_out dk[SP_GW_DKIM_MAX_SIGS];
	struct sp_gw_dmarc_out dm;
	struct sp_gw_msg *m = NULL;
	struct ar a = {0};
	const psl_ctx_t *psl = NULL;
	psl_ctx_t *own_psl = NULL;
	int ndk = 0, rc;

	memset(r, 0, sizeof(*r));
	if (o == NULL || ip == NULL || (msg == NULL && len > 0))
		return EINVAL;
	if (sodium_init() < 0)
		return ENOMEM;
	if ((rc = sp_gw_dns_conf_init(&dns, o->dns, o->timeout_ms)) != 0)
		return rc;
	/* Each phase gets its own DNS time budget (gw_dns.h). */
	sp_gw_dns_start_budget(&dns);
	if ((rc = sp_gw_spf_check(&dns, ip, helo, mail_from, &spf)) != 0)
		return rc;
	if ((m = malloc(sizeof(*m))) == NULL)
		return ENOMEM;
	/* A malformed header section keeps the fields before the fault:
	 * DKIM and DMARC judge what there is. */
	(void)sp_gw_msg_parse(msg ? msg : (const uint8_t *)"", len, m);
	sp_gw_dns_start_budget(&dns);
	if ((rc = sp_gw_dkim_verify(&dns, m, time(NULL), dk, &ndk)) != 0)
		goto out;
	if ((psl = psl_get(o->psl_file, &own_psl)) == NULL && o->psl_file) {
		rc = EINVAL;    /* a named list that does not load */
		goto out;
	}
	sp_gw_dns_start_budget(&dns);
	if ((rc = sp_gw_dmarc_check(&dns, psl, m, spf.result, spf.domain, dk,
	    ndk, &dm)) != 0)
		goto out;
	build_ar(&a, o, helo, mail_from, &spf, dk, ndk, &dm);
	if (a.oom) {
		rc = ENOMEM;
		goto out;
	}
	r->auth_results = a.p;
	a.p = NULL;
	snprintf(r->spf, sizeof(r->spf), "%s", sp_gw_spf_str(spf.result));
	snprintf(r->dkim, sizeof(r->dkim), "%s",
	    sp_gw_dkim_str(dkim_best(dk, ndk)));
	snprintf(r->dmarc, sizeof(r->dmarc), "%s", sp_gw_dmarc_str(dm.result));
	decide(o, &dm, r);
out:
	free(a.p);
	free(m);
	psl_free(own_psl);
	return rc;
}

void
sp_gw_auth_result_free(struct sp_gw_auth_result *r)
{
	if (r == NULL)
		return;
	free(r->auth_results);
	r->auth_results = NULL;
}
