/*
 * SPF (RFC 7208): record parser, macro expansion and check_host().
 * See gw_spf.h for the contract.  Every record is hostile input: the
 * parser bounds terms and lengths, the evaluator bounds DNS work with the
 * RFC's lookup limits, which also bound recursion (each include costs a
 * lookup).
 */
#include "server/gateway/auth/gw_spf.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DOMAIN_MAX 253
#define EXPAND_MAX 2048

static const char *const result_names[] = {
	[SP_GW_SPF_NONE] = "none", [SP_GW_SPF_NEUTRAL] = "neutral",
	[SP_GW_SPF_PASS] = "pass", [SP_GW_SPF_FAIL] = "fail",
	[SP_GW_SPF_SOFTFAIL] = "softfail", [SP_GW_SPF_TEMPERROR] = "temperror",
	[SP_GW_SPF_PERMERROR] = "permerror",
};

const char *
sp_gw_spf_str(enum sp_gw_spf_result r)
{
	if ((unsigned)r >= sizeof(result_names) / sizeof(result_names[0]))
		return "permerror";
	return result_names[r];
}

/* ---- parsing ---- */

int
sp_gw_spf_is_record(const char *txt, size_t len)
{
	return len >= 6 && strncasecmp(txt, "v=spf1", 6) == 0 &&
	    (len == 6 || txt[6] == ' ');
}

static int
is_macro_letter(int c, int exp)
{
	c = tolower(c);
	if (strchr("slodiphv", c) != NULL)
		return 1;
	return exp && strchr("crt", c) != NULL;
}

int
sp_gw_spf_macro_valid(const char *s, size_t len, int exp)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x21 || c > 0x7e)
			return -1;
		if (c != '%') {
			i++;
			continue;
		}
		if (++i >= len)
			return -1;
		if (s[i] == '%' || s[i] == '_' || s[i] == '-') {
			i++;
			continue;
		}
		if (s[i] != '{' || ++i >= len || !is_macro_letter(s[i], exp))
			return -1;
		i++;
		if (i < len && s[i] == '0')
			return -1;    /* DIGIT must be nonzero (7.3) */
		while (i < len && isdigit((unsigned char)s[i]))
			i++;
		if (i < len && (s[i] == 'r' || s[i] == 'R'))
			i++;
		while (i < len && strchr(".-+,/_=", s[i]) != NULL)
			i++;
		if (i >= len || s[i] != '}')
			return -1;
		i++;
	}
	return 0;
}

/* domain-spec = macro-string domain-end; domain-end is a macro or
 * "." toplabel ["."] (RFC 7208 7.1). */
static int
domain_spec_valid(const char *s, size_t len)
{
	size_t end = len, start;
	int alpha = 0;

	if (len == 0 || sp_gw_spf_macro_valid(s, len, 0) != 0)
		return -1;
	if (s[len - 1] == '}')
		return 0;
	if (s[end - 1] == '.')
		end--;
	start = end;
	while (start > 0 && s[start - 1] != '.')
		start--;
	if (start == 0 || start == end)
		return -1;    /* no "." toplabel */
	if (s[start] == '-' || s[end - 1] == '-')
		return -1;
	for (size_t i = start; i < end; i++) {
		unsigned char c = (unsigned char)s[i];
		if (isalpha(c))
			alpha = 1;
		else if (!isdigit(c) && c != '-')
			return -1;
	}
	return alpha ? 0 : -1;
}

/* "/" 1-3 digits without a leading zero, up to max. */
static int
parse_prefix(const char *s, size_t len, int max, uint8_t *out)
{
	int v = 0;

	if (len == 0 || len > 3 || (s[0] == '0' && len > 1))
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = (uint8_t)v;
	return 0;
}

/* dual-cidr-length = [ ip4-cidr-length ] [ "/" ip6-cidr-length ], the
 * text starting at the first '/'. */
static int
parse_dual_cidr(const char *s, size_t len, struct sp_gw_spf_term *t)
{
	const char *six;
	size_t l4;

	if (len == 0)
		return 0;
	if (s[0] != '/')
		return -1;
	if (len >= 2 && s[1] == '/')
		return parse_prefix(s + 2, len - 2, 128, &t->cidr6);
	six = memchr(s + 1, '/', len - 1);
	l4 = six ? (size_t)(six - s) - 1 : len - 1;
	if (parse_prefix(s + 1, l4, 32, &t->cidr4) != 0)
		return -1;
	if (six == NULL)
		return 0;
	/* "/24//64": the IPv6 length follows a double slash. */
	len -= (size_t)(six - s);
	if (len < 2 || six[1] != '/')
		return -1;
	return parse_prefix(six + 2, len - 2, 128, &t->cidr6);
}

static int
parse_ip(const char *s, size_t len, int fam, struct sp_gw_spf_term *t)
{
	char buf[64];
	const char *slash = memchr(s, '/', len);
	size_t al = slash ? (size_t)(slash - s) : len;
	int max = fam == AF_INET ? 32 : 128;
	uint8_t *pfx = fam == AF_INET ? &t->cidr4 : &t->cidr6;

	if (al == 0 || al >= sizeof(buf))
		return -1;
	memcpy(buf, s, al);
	buf[al] = '\0';
	if (inet_pton(fam, buf, t->ip) != 1)
		return -1;
	if (slash != NULL && parse_prefix(slash + 1, len - al - 1, max, pfx))
		return -1;
	return 0;
}

struct mech_def {
	const char *name;
	uint8_t mech;
	uint8_t arg;    /* 0 none, 1 optional domain-spec, 2 required */
	uint8_t cidr;   /* dual-cidr allowed after the domain-spec */
};

/* The mechanism table (RFC 7208 5): what each accepts. */
static const struct mech_def mechs[] = {
	{"all", SP_GW_SPF_ALL, 0, 0},
	{"include", SP_GW_SPF_INCLUDE, 2, 0},
	{"a", SP_GW_SPF_A, 1, 1},
	{"mx", SP_GW_SPF_MX, 1, 1},
	{"ptr", SP_GW_SPF_PTR, 1, 0},
	{"ip4", SP_GW_SPF_IP4, 2, 0},
	{"ip6", SP_GW_SPF_IP6, 2, 0},
	{"exists", SP_GW_SPF_EXISTS, 2, 0},
};

static int
parse_mechanism(const char *s, size_t len, struct sp_gw_spf_term *t,
    char *err, size_t errlen)
{
	const struct mech_def *d = NULL;
	size_t nl = 0, i;
	const char *arg;
	size_t alen;

	t->qual = '+';
	if (len > 0 && strchr("+-~?", s[0]) != NULL) {
		t->qual = s[0];
		s++;
		len--;
	}
	while (nl < len && (isalnum((unsigned char)s[nl])))
		nl++;
	for (i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++)
		if (strlen(mechs[i].name) == nl &&
		    strncasecmp(mechs[i].name, s, nl) == 0)
			d = &mechs[i];
	if (d == NULL) {
		snprintf(err, errlen, "unknown mechanism %.*s", (int)nl, s);
		return -1;
	}
	t->mech = d->mech;
	t->cidr4 = 32;
	t->cidr6 = 128;
	arg = s + nl;
	alen = len - nl;
	if (d->mech == SP_GW_SPF_IP4 || d->mech == SP_GW_SPF_IP6) {
		if (alen < 2 || arg[0] != ':' ||
		    parse_ip(arg + 1, alen - 1,
		    d->mech == SP_GW_SPF_IP4 ? AF_INET : AF_INET6, t) != 0)
			goto bad;
		return 0;
	}
	if (alen > 0 && arg[0] == ':') {
		const char *slash;
		size_t dl;
		if (d->arg == 0)
			goto bad;
		arg++;
		alen--;
		slash = d->cidr ? memchr(arg, '/', alen) : NULL;
		dl = slash ? (size_t)(slash - arg) : alen;
		if (domain_spec_valid(arg, dl) != 0)
			goto bad;
		t->spec = arg;
		t->spec_len = dl;
		arg += dl;
		alen -= dl;
	} else if (d->arg == 2) {
		goto bad;
	}
	if (alen > 0 && (!d->cidr || parse_dual_cidr(arg, alen, t) != 0))
		goto bad;
	return 0;
bad:
	snprintf(err, errlen, "bad %s term", d->name);
	return -1;
}

int
sp_gw_spf_parse(const char *txt, size_t len, struct sp_gw_spf_record *r,
    char *err, size_t errlen)
{
	size_t i = 6;

	memset(r, 0, sizeof(*r));
	if (!sp_gw_spf_is_record(txt, len)) {
		snprintf(err, errlen, "not an SPF record");
		return -1;
	}
	if (memchr(txt, '\0', len) != NULL) {
		snprintf(err, errlen, "NUL in record");
		return -1;
	}
	while (i < len) {
		size_t s, e, nl = 0;
		const char *term;

		while (i < len && txt[i] == ' ')
			i++;
		if (i >= len)
			break;
		s = i;
		while (i < len && txt[i] != ' ')
			i++;
		e = i;
		term = txt + s;
		/* name "=" macro-string is a modifier; a mechanism name is
		 * never followed by "=". */
		if (isalpha((unsigned char)term[0])) {
			nl = 1;
			while (s + nl < e && (isalnum((unsigned char)term[nl]) ||
			    strchr("-_.", term[nl]) != NULL))
				nl++;
		}
		if (nl > 0 && s + nl < e && term[nl] == '=') {
			const char *v = term + nl + 1;
			size_t vl = e - s - nl - 1;
			int is_redirect = nl == 8 &&
			    strncasecmp(term, "redirect", 8) == 0;
			int is_exp = nl == 3 && strncasecmp(term, "exp", 3) == 0;

			if (is_redirect || is_exp) {
				if ((is_redirect ? r->redirect : r->exp) != NULL) {
					snprintf(err, errlen, "duplicate %.*s=",
					    (int)nl, term);
					return -1;
				}
				if (domain_spec_valid(v, vl) != 0) {
					snprintf(err, errlen, "bad %.*s=",
					    (int)nl, term);
					return -1;
				}
				if (is_redirect) {
					r->redirect = v;
					r->redirect_len = vl;
				} else {
					r->exp = v;
					r->exp_len = vl;
				}
			} else if (sp_gw_spf_macro_valid(v, vl, 0) != 0) {
				/* Unknown modifiers are ignored, but their
				 * syntax is still checked (6). */
				snprintf(err, errlen, "bad modifier %.*s",
				    (int)nl, term);
				return -1;
			}
			continue;
		}
		if (r->n >= SP_GW_SPF_MAX_TERMS) {
			snprintf(err, errlen, "too many terms");
			return -1;
		}
		if (parse_mechanism(term, e - s, &r->t[r->n], err, errlen))
			return -1;
		r->n++;
	}
	return 0;
}

/* ---- evaluation ---- */

struct spf_ctx {
	const struct sp_gw_dns_conf *dns;
	int fam;                 /* AF_INET or AF_INET6 */
	uint8_t ip[16];
	char ipstr[INET6_ADDRSTRLEN];
	char sender[512];        /* local@domain, after the null-sender rule */
	char local[256];
	const char *sdomain;     /* into sender */
	const char *helo;
	int lookups, voids;
	char pval[256];          /* the p macro, computed once */
	int have_p;
	char reason[160];
};

/* The first reason wins: it is the cause, the rest are consequences.
 * Names are cut to 100 bytes so the reason stays readable. */
static void __attribute__((format(printf, 2, 3)))
set_reason(struct spf_ctx *c, const char *fmt, ...)
{
	va_list ap;

	if (c->reason[0] != '\0')
		return;
	va_start(ap, fmt);
	(void)vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
	va_end(ap);
}

/* Fills the ctx's address from text; IPv4-mapped IPv6 becomes IPv4,
 * since that is the client's real family. */
static int
ctx_set_ip(struct spf_ctx *c, const char *ip)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff};

	if (inet_pton(AF_INET, ip, c->ip) == 1) {
		c->fam = AF_INET;
	} else if (inet_pton(AF_INET6, ip, c->ip) == 1) {
		c->fam = AF_INET6;
		if (memcmp(c->ip, mapped, 12) == 0) {
			memmove(c->ip, c->ip + 12, 4);
			c->fam = AF_INET;
		}
	} else {
		return EINVAL;
	}
	inet_ntop(c->fam, c->ip, c->ipstr, sizeof(c->ipstr));
	return 0;
}

static int
ip_match(const uint8_t *a, const uint8_t *b, int bits)
{
	int bytes = bits / 8, rest = bits % 8;

	if (memcmp(a, b, (size_t)bytes) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((a[bytes] ^ b[bytes]) & (0xff << (8 - rest))) == 0;
}

/* RFC 1035 shape: labels 1..63, total 1..253, at least two labels. */
static int
domain_ok(const char *d)
{
	size_t len = strlen(d), lab = 0;
	int dots = 0;

	if (len == 0 || len > DOMAIN_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (d[i] == '.') {
			if (lab == 0 && i + 1 != len)
				return 0;
			lab = 0;
			dots++;
		} else if (++lab > 63) {
			return 0;
		}
	}
	return dots > 0 && d[0] != '.';
}

static int
append(char *out, size_t outlen, size_t *o, const char *s, size_t n)
{
	if (*o + n >= outlen)
		return -1;
	memcpy(out + *o, s, n);
	*o += n;
	out[*o] = '\0';
	return 0;
}

/* URL-escape for uppercase macros (7.3): unreserved characters stay. */
static int
append_escaped(char *out, size_t outlen, size_t *o, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		char hex[4];
		if (isalnum(ch) || strchr("-._~", ch) != NULL) {
			if (append(out, outlen, o, s + i, 1) != 0)
				return -1;
			continue;
		}
		snprintf(hex, sizeof(hex), "%%%02X", ch);
		if (append(out, outlen, o, hex, 3) != 0)
			return -1;
	}
	return 0;
}

static void compute_p(struct spf_ctx *c);

static int
macro_value(struct spf_ctx *c, int letter, const char *domain, char *v,
    size_t vl)
{
	switch (tolower(letter)) {
	case 's':
		snprintf(v, vl, "%s", c->sender);
		break;
	case 'l':
		snprintf(v, vl, "%s", c->local);
		break;
	case 'o':
		snprintf(v, vl, "%s", c->sdomain);
		break;
	case 'd':
		snprintf(v, vl, "%s", domain);
		break;
	case 'h':
		snprintf(v, vl, "%s", c->helo);
		break;
	case 'v':
		snprintf(v, vl, "%s", c->fam == AF_INET ? "in-addr" : "ip6");
		break;
	case 'c':
		snprintf(v, vl, "%s", c->ipstr);
		break;
	case 'r':
		snprintf(v, vl, "unknown");
		break;
	case 't':
		snprintf(v, vl, "%lld", (long long)time(NULL));
		break;
	case 'p':
		compute_p(c);
		snprintf(v, vl, "%s", c->pval);
		break;
	case 'i':
		if (c->fam == AF_INET) {
			snprintf(v, vl, "%s", c->ipstr);
		} else {
			size_t o = 0;
			static const char hx[] = "0123456789abcdef";
			for (int k = 0; k < 16 && o + 4 < vl; k++) {
				v[o++] = hx[c->ip[k] >> 4];
				v[o++] = '.';
				v[o++] = hx[c->ip[k] & 15];
				v[o++] = k == 15 ? '\0' : '.';
			}
		}
		break;
	default:
		return -1;
	}
	return 0;
}

/* One %{...} macro at s[*i] (after "%{"): transformers and delimiters. */
static int
expand_one(struct spf_ctx *c, const char *s, size_t len, size_t *i,
    const char *domain, char *out, size_t outlen, size_t *o)
{
	char val[1100], *parts[256];
	char delims[8] = "";
	int letter = s[(*i)++], digits = 0, rev = 0, np = 0, first;
	size_t dl = 0;

	while (*i < len && isdigit((unsigned char)s[*i])) {
		digits = digits * 10 + (s[*i] - '0');
		if (digits > 255)
			digits = 255;
		(*i)++;
	}
	if (*i < len && (s[*i] == 'r' || s[*i] == 'R')) {
		rev = 1;
		(*i)++;
	}
	while (*i < len && s[*i] != '}') {
		if (dl + 1 < sizeof(delims) && strchr(delims, s[*i]) == NULL)
			delims[dl++] = s[*i];
		(*i)++;
	}
	if (*i >= len)
		return -1;
	(*i)++;    /* '}' */
	if (dl == 0)
		delims[0] = '.';
	if (macro_value(c, letter, domain, val, sizeof(val)) != 0)
		return -1;
	/* Split on any delimiter; empty parts are kept, as the RFC's
	 * examples require. */
	parts[np++] = val;
	for (char *p = val; *p != '\0'; p++) {
		if (strchr(delims, *p) != NULL) {
			*p = '\0';
			if (np >= (int)(sizeof(parts) / sizeof(parts[0])))
				return -1;
			parts[np++] = p + 1;
		}
	}
	if (rev)
		for (int a = 0, b = np - 1; a < b; a++, b--) {
			char *t = parts[a];
			parts[a] = parts[b];
			parts[b] = t;
		}
	first = digits > 0 && digits < np ? np - digits : 0;
	for (int k = first; k < np; k++) {
		size_t pl = strlen(parts[k]);
		if (k > first && append(out, outlen, o, ".", 1) != 0)
			return -1;
		if (isupper(letter) ?
		    append_escaped(out, outlen, o, parts[k], pl) :
		    append(out, outlen, o, parts[k], pl))
			return -1;
	}
	return 0;
}

static int
expand(struct spf_ctx *c, const char *s, size_t len, const char *domain,
    int exp, char *out, size_t outlen)
{
	size_t i = 0, o = 0;

	out[0] = '\0';
	if (sp_gw_spf_macro_valid(s, len, exp) != 0)
		return -1;
	while (i < len) {
		if (s[i] != '%') {
			if (append(out, outlen, &o, s + i, 1) != 0)
				return -1;
			i++;
			continue;
		}
		i++;
		switch (s[i]) {
		case '%':
			i++;
			if (append(out, outlen, &o, "%", 1) != 0)
				return -1;
			break;
		case '_':
			i++;
			if (append(out, outlen, &o, " ", 1) != 0)
				return -1;
			break;
		case '-':
			i++;
			if (append(out, outlen, &o, "%20", 3) != 0)
				return -1;
			break;
		default:    /* '{', checked by macro_valid */
			i++;
			if (expand_one(c, s, len, &i, domain, out, outlen,
			    &o) != 0)
				return -1;
		}
	}
	return 0;
}

/* Expands a domain-spec into a name to query: trailing dot dropped, and
 * left labels cut while it is longer than 253 (7.3). */
static int
expand_domain(struct spf_ctx *c, const char *spec, size_t len,
    const char *domain, char *out, size_t outlen)
{
	char buf[EXPAND_MAX];
	const char *p;
	size_t l;

	if (spec == NULL) {
		snprintf(out, outlen, "%s", domain);
		return 0;
	}
	if (expand(c, spec, len, domain, 0, buf, sizeof(buf)) != 0)
		return -1;
	l = strlen(buf);
	if (l > 0 && buf[l - 1] == '.')
		buf[--l] = '\0';
	p = buf;
	while (l > DOMAIN_MAX) {
		const char *dot = strchr(p, '.');
		if (dot == NULL)
			return -1;
		l -= (size_t)(dot + 1 - p);
		p = dot + 1;
	}
	if (l + 1 > outlen)
		return -1;
	memcpy(out, p, l + 1);
	return 0;
}

/* A DNS lookup for a term: counts void answers against the limit.
 * Returns the status, with too many voids as -2. */
static int
term_query(struct spf_ctx *c, const char *name, int type,
    struct sp_gw_dns_answer *a)
{
	int st = sp_gw_dns_query(c->dns, name, type, a);

	if (st == SP_GW_DNS_NXDOMAIN || st == SP_GW_DNS_NODATA) {
		if (++c->voids > SP_GW_SPF_MAX_VOID)
			return -2;
	}
	return st;
}

static int
addr_type(const struct spf_ctx *c)
{
	return c->fam == AF_INET ? ns_t_a : ns_t_aaaa;
}

static int
addr_in_answer(const struct spf_ctx *c, const struct sp_gw_dns_answer *a,
    int bits)
{
	for (int i = 0; i < a->n; i++)
		if (ip_match(a->rr[i].data, c->ip, bits))
			return 1;
	return 0;
}

/* Verdicts of a term: no match, match, or an error result. */
enum { T_NOMATCH = 0, T_MATCH = 1, T_TEMP = -1, T_PERM = -2 };

static int
map_status(struct spf_ctx *c, int st, const char *name)
{
	if (st == -2) {
		set_reason(c, "more than 2 void lookups, the last %.100s", name);
		return T_PERM;
	}
	if (st == SP_GW_DNS_TEMP) {
		set_reason(c, "DNS error looking up %.100s", name);
		return T_TEMP;
	}
	if (st < 0)
		return T_TEMP;    /* ENOMEM: not a verdict about the sender */
	return T_NOMATCH;
}

static int
eval_a(struct spf_ctx *c, const char *name, int bits)
{
	struct sp_gw_dns_answer a;
	int st = term_query(c, name, addr_type(c), &a), v;

	if (st != SP_GW_DNS_OK)
		return map_status(c, st, name);
	v = addr_in_answer(c, &a, bits) ? T_MATCH : T_NOMATCH;
	sp_gw_dns_answer_free(&a);
	return v;
}

static int
eval_mx(struct spf_ctx *c, const char *name, int bits)
{
	struct sp_gw_dns_answer mx, a;
	int st = term_query(c, name, ns_t_mx, &mx), v = T_NOMATCH;

	if (st != SP_GW_DNS_OK)
		return map_status(c, st, name);
	if (mx.n > 10) {
		set_reason(c, "more than 10 MX names for %.100s", name);
		v = T_PERM;
		goto out;
	}
	for (int i = 0; i < mx.n && v == T_NOMATCH; i++) {
		const char *host = (const char *)mx.rr[i].data;
		st = sp_gw_dns_query(c->dns, host, addr_type(c), &a);
		if (st == SP_GW_DNS_TEMP) {
			set_reason(c, "DNS error looking up %.100s", host);
			v = T_TEMP;
		} else if (st == SP_GW_DNS_OK) {
			v = addr_in_answer(c, &a, bits) ? T_MATCH : T_NOMATCH;
			sp_gw_dns_answer_free(&a);
		} else if (st < 0) {
			v = T_TEMP;
		}
	}
out:
	sp_gw_dns_answer_free(&mx);
	return v;
}

static void
reverse_name(const struct spf_ctx *c, char *out, size_t outlen)
{
	if (c->fam == AF_INET) {
		snprintf(out, outlen, "%u.%u.%u.%u.in-addr.arpa", c->ip[3],
		    c->ip[2], c->ip[1], c->ip[0]);
	} else {
		static const char hx[] = "0123456789abcdef";
		size_t o = 0;
		for (int k = 15; k >= 0; k--) {
			out[o++] = hx[c->ip[k] & 15];
			out[o++] = '.';
			out[o++] = hx[c->ip[k] >> 4];
			out[o++] = '.';
		}
		snprintf(out + o, outlen - o, "ip6.arpa");
	}
}

static int
is_sub_or_same(const char *name, const char *domain)
{
	size_t nl = strlen(name), dl = strlen(domain);

	if (nl == dl)
		return strcasecmp(name, domain) == 0;
	return nl > dl && name[nl - dl - 1] == '.' &&
	    strcasecmp(name + nl - dl, domain) == 0;
}

/* Validated names (5.5): PTR names whose A/AAAA include the client.  Calls
 * want(name) on each until it says stop; at most 10 names.  DNS errors
 * only mean "not validated". */
static int
ptr_validated(struct spf_ctx *c, const char *target, char *found,
    size_t foundlen)
{
	struct sp_gw_dns_answer ptr, a;
	char rname[80];
	int hit = 0;

	reverse_name(c, rname, sizeof(rname));
	if (sp_gw_dns_query(c->dns, rname, ns_t_ptr, &ptr) != SP_GW_DNS_OK)
		return 0;
	for (int i = 0; i < ptr.n && i < 10 && !hit; i++) {
		const char *n = (const char *)ptr.rr[i].data;
		if (target != NULL && !is_sub_or_same(n, target))
			continue;
		if (sp_gw_dns_query(c->dns, n, addr_type(c), &a) !=
		    SP_GW_DNS_OK)
			continue;
		if (addr_in_answer(c, &a, c->fam == AF_INET ? 32 : 128)) {
			hit = 1;
			if (found != NULL)
				snprintf(found, foundlen, "%s", n);
		}
		sp_gw_dns_answer_free(&a);
	}
	sp_gw_dns_answer_free(&ptr);
	return hit;
}

static void
compute_p(struct spf_ctx *c)
{
	if (c->have_p)
		return;
	c->have_p = 1;
	if (!ptr_validated(c, NULL, c->pval, sizeof(c->pval)))
		snprintf(c->pval, sizeof(c->pval), "unknown");
}

static enum sp_gw_spf_result check_host(struct spf_ctx *c,
    const char *domain);

static int
eval_term(struct spf_ctx *c, const struct sp_gw_spf_term *t,
    const char *domain)
{
	char target[DOMAIN_MAX + 1];
	int bits = c->fam == AF_INET ? t->cidr4 : t->cidr6;
	enum sp_gw_spf_result r;

	switch (t->mech) {
	case SP_GW_SPF_ALL:
		return T_MATCH;
	case SP_GW_SPF_IP4:
		return c->fam == AF_INET && ip_match(t->ip, c->ip, t->cidr4);
	case SP_GW_SPF_IP6:
		return c->fam == AF_INET6 && ip_match(t->ip, c->ip, t->cidr6);
	default:
		break;
	}
	/* Everything else costs one of the ten lookups (4.6.4). */
	if (++c->lookups > SP_GW_SPF_MAX_LOOKUPS) {
		set_reason(c, "more than 10 DNS lookups");
		return T_PERM;
	}
	if (expand_domain(c, t->spec, t->spec_len, domain, target,
	    sizeof(target)) != 0) {
		set_reason(c, "bad macro expansion in %.100s", domain);
		return T_PERM;
	}
	switch (t->mech) {
	case SP_GW_SPF_A:
		return domain_ok(target) ? eval_a(c, target, bits) : T_NOMATCH;
	case SP_GW_SPF_MX:
		return domain_ok(target) ? eval_mx(c, target, bits) :
		    T_NOMATCH;
	case SP_GW_SPF_PTR:
		return ptr_validated(c, target, NULL, 0) ? T_MATCH : T_NOMATCH;
	case SP_GW_SPF_EXISTS: {
		struct sp_gw_dns_answer a;
		int st;
		if (!domain_ok(target))
			return T_NOMATCH;
		/* Always an A query, whatever the client's family (5.7). */
		if ((st = term_query(c, target, ns_t_a, &a)) != SP_GW_DNS_OK)
			return map_status(c, st, target);
		sp_gw_dns_answer_free(&a);
		return T_MATCH;
	}
	case SP_GW_SPF_INCLUDE:
		r = check_host(c, target);
		switch (r) {
		case SP_GW_SPF_PASS:
			return T_MATCH;
		case SP_GW_SPF_FAIL:
		case SP_GW_SPF_SOFTFAIL:
		case SP_GW_SPF_NEUTRAL:
			return T_NOMATCH;
		case SP_GW_SPF_TEMPERROR:
			return T_TEMP;
		default:    /* none and permerror (5.2) */
			set_reason(c, "include:%.100s has no valid record", target);
			return T_PERM;
		}
	default:
		return T_PERM;
	}
}

static enum sp_gw_spf_result
qual_result(char q)
{
	switch (q) {
	case '-':
		return SP_GW_SPF_FAIL;
	case '~':
		return SP_GW_SPF_SOFTFAIL;
	case '?':
		return SP_GW_SPF_NEUTRAL;
	default:
		return SP_GW_SPF_PASS;
	}
}

/* Finds the one SPF record of domain (4.4, 4.5). */
static enum sp_gw_spf_result
fetch_record(struct spf_ctx *c, const char *domain,
    struct sp_gw_dns_answer *a, const char **txt, size_t *len)
{
	int st = sp_gw_dns_query(c->dns, domain, ns_t_txt, a), found = 0;

	if (st == SP_GW_DNS_TEMP || st < 0) {
		set_reason(c, "DNS error looking up %.100s", domain);
		return SP_GW_SPF_TEMPERROR;
	}
	if (st != SP_GW_DNS_OK)
		return SP_GW_SPF_NONE;
	for (int i = 0; i < a->n; i++) {
		const char *t = (const char *)a->rr[i].data;
		if (!sp_gw_spf_is_record(t, a->rr[i].len))
			continue;
		if (found++) {
			set_reason(c, "more than one SPF record at %.100s", domain);
			return SP_GW_SPF_PERMERROR;
		}
		*txt = t;
		*len = a->rr[i].len;
	}
	return found ? SP_GW_SPF_PASS : SP_GW_SPF_NONE;    /* PASS: "found" */
}

static enum sp_gw_spf_result
check_host(struct spf_ctx *c, const char *domain)
{
	struct sp_gw_dns_answer a;
	struct sp_gw_spf_record *rec = NULL;
	enum sp_gw_spf_result r;
	const char *txt = NULL;
	size_t len = 0;
	char err[96], target[DOMAIN_MAX + 1];

	if (!domain_ok(domain))
		return SP_GW_SPF_NONE;
	r = fetch_record(c, domain, &a, &txt, &len);
	if (r != SP_GW_SPF_PASS)
		goto out;
	if ((rec = malloc(sizeof(*rec))) == NULL) {
		r = SP_GW_SPF_TEMPERROR;
		goto out;
	}
	if (sp_gw_spf_parse(txt, len, rec, err, sizeof(err)) != 0) {
		char why[160];
		snprintf(why, sizeof(why), "%s in the record of %s", err,
		    domain);
		set_reason(c, "%s", why);
		r = SP_GW_SPF_PERMERROR;
		goto out;
	}
	for (int i = 0; i < rec->n; i++) {
		int v = eval_term(c, &rec->t[i], domain);
		if (v == T_MATCH) {
			r = qual_result(rec->t[i].qual);
			goto out;
		}
		if (v == T_TEMP || v == T_PERM) {
			r = v == T_TEMP ? SP_GW_SPF_TEMPERROR :
			    SP_GW_SPF_PERMERROR;
			goto out;
		}
	}
	/* redirect= applies only when no mechanism matched and there is no
	 * "all" (an all always matches, so we never get here with one). */
	if (rec->redirect != NULL) {
		if (++c->lookups > SP_GW_SPF_MAX_LOOKUPS) {
			set_reason(c, "more than 10 DNS lookups");
			r = SP_GW_SPF_PERMERROR;
			goto out;
		}
		if (expand_domain(c, rec->redirect, rec->redirect_len, domain,
		    target, sizeof(target)) != 0) {
			r = SP_GW_SPF_PERMERROR;
			goto out;
		}
		r = check_host(c, target);
		if (r == SP_GW_SPF_NONE) {
			set_reason(c, "redirect=%.100s has no record", target);
			r = SP_GW_SPF_PERMERROR;
		}
		goto out;
	}
	r = SP_GW_SPF_NEUTRAL;
out:
	free(rec);
	sp_gw_dns_answer_free(&a);
	return r;
}

static int
ctx_init(struct spf_ctx *c, const struct sp_gw_dns_conf *dns,
    const char *ip, const char *helo, const char *sender)
{
	const char *at;

	memset(c, 0, sizeof(*c));
	c->dns = dns;
	c->helo = helo != NULL ? helo : "";
	if (ctx_set_ip(c, ip) != 0)
		return EINVAL;
	if (sender == NULL || *sender == '\0')
		snprintf(c->sender, sizeof(c->sender), "postmaster@%s",
		    c->helo);
	else if ((at = strrchr(sender, '@')) == NULL)
		snprintf(c->sender, sizeof(c->sender), "postmaster@%s",
		    sender);
	else if (at == sender)
		snprintf(c->sender, sizeof(c->sender), "postmaster%s", sender);
	else
		snprintf(c->sender, sizeof(c->sender), "%s", sender);
	at = strrchr(c->sender, '@');
	snprintf(c->local, sizeof(c->local), "%.*s", (int)(at - c->sender),
	    c->sender);
	c->sdomain = at + 1;
	return 0;
}

int
sp_gw_spf_check(const struct sp_gw_dns_conf *dns, const char *ip,
    const char *helo, const char *sender, struct sp_gw_spf_out *out)
{
	struct spf_ctx *c;

	memset(out, 0, sizeof(*out));
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return ENOMEM;
	if (ctx_init(c, dns, ip, helo, sender) != 0) {
		free(c);
		return EINVAL;
	}
	snprintf(out->domain, sizeof(out->domain), "%s", c->sdomain);
	/* Case does not matter in DNS; one lowercase form for the A-R. */
	for (char *p = out->domain; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	out->result = check_host(c, out->domain);
	out->lookups = c->lookups;
	if (out->result == SP_GW_SPF_NONE && c->reason[0] == '\0')
		snprintf(c->reason, sizeof(c->reason), "no SPF record");
	snprintf(out->reason, sizeof(out->reason), "%s", c->reason);
	free(c);
	return 0;
}

int
sp_gw_spf_expand_test(const char *s, const char *ip, const char *sender,
    const char *domain, const char *helo, int exp, char *out, size_t outlen)
{
	struct spf_ctx c;
	struct sp_gw_dns_conf dns;

	(void)sp_gw_dns_conf_init(&dns, NULL, 1000);
	if (ctx_init(&c, &dns, ip, helo, sender) != 0)
		return -1;
	/* Tests give no DNS: p would need one. */
	c.have_p = 1;
	snprintf(c.pval, sizeof(c.pval), "unknown");
	return expand(&c, s, strlen(s), domain, exp, out, outlen);
}
