/*
 * Unit tests of the sender-check parsers, without DNS: SPF records and
 * macro expansion (RFC 7208 7.4's own examples), DKIM tag lists,
 * signatures, keys and body canonicalization (RFC 6376 3.4.5's example),
 * DMARC records and the From domain, the DNS answer parser on packets
 * built here, the header splitter.  The DNS-backed checks are in
 * test_auth.py against a real server.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "server/gateway/auth/gw_dkim.h"
#include "server/gateway/auth/gw_dmarc.h"
#include "server/gateway/auth/gw_dns.h"
#include "server/gateway/auth/gw_msg.h"
#include "server/gateway/auth/gw_spf.h"
#include "tests/unit.h"

static int
spf_ok(const char *rec)
{
	static struct sp_gw_spf_record r;
	char err[96];

	return sp_gw_spf_parse(rec, strlen(rec), &r, err, sizeof(err)) == 0;
}

static void
t_spf_parse(void)
{
	static const char *const good[] = {
		"v=spf1", "v=spf1 -all", "V=SPF1 +all", "v=spf1 ip4:192.0.2.0/24",
		"v=spf1 ip6:2001:db8::/32 ~all", "v=spf1 a mx ptr ?all",
		"v=spf1 a:example.com/24//64 mx:ex.org//128 -all",
		"v=spf1 include:_spf.example.com redirect=_spf.example.net",
		"v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all",
		"v=spf1 exp=explain._spf.%{d} -all",
		"v=spf1 unknown-mod=%{d} -all",    /* ignored modifier */
		"v=spf1  ip4:1.2.3.4   -all ",     /* extra spaces */
		"v=spf1 a:foo.example.",           /* trailing dot */
	};
	static const char *const bad[] = {
		"v=spf10", "spf1 -all", "v=spf1 ip4:1.2.3.4/33",
		"v=spf1 ip4:1.2.3.4/024", "v=spf1 ip6:::1/129",
		"v=spf1 ip4:300.1.1.1", "v=spf1 ip4", "v=spf1 include",
		"v=spf1 include:", "v=spf1 all:foo.com", "v=spf1 foo",
		"v=spf1 a:%{x}.com", "v=spf1 a:%{d0}", "v=spf1 a:%",
		"v=spf1 a:%{c}.example.com", "v=spf1 a:example.123",
		"v=spf1 a:example", "v=spf1 redirect=a.com redirect=b.com",
		"v=spf1 exp=a.com exp=b.com", "v=spf1 mx/", "v=spf1 mx//",
		"v=spf1 a/24/64", "v=spf1 -", "v=spf1 =foo",
		"v=spf1 a:exa\x01mple.com",
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!spf_ok(good[i])) {
			fprintf(stderr, "# refused: %s\n", good[i]);
			CHECK(0);
		}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (spf_ok(bad[i])) {
			fprintf(stderr, "# accepted: %s\n", bad[i]);
			CHECK(0);
		}
}

static void
t_spf_terms(void)
{
	static struct sp_gw_spf_record r;
	static const char rec[] =
	    "v=spf1 -ip4:192.0.2.0/24 ~a:x.example.com/16//48 mx -all";
	char err[96];

	CHECK(sp_gw_spf_parse(rec, strlen(rec), &r, err, sizeof(err)) == 0);
	CHECK(r.n == 4);
	CHECK(r.t[0].qual == '-' && r.t[0].mech == SP_GW_SPF_IP4 &&
	    r.t[0].cidr4 == 24 && r.t[0].ip[0] == 192 && r.t[0].ip[3] == 0);
	CHECK(r.t[1].qual == '~' && r.t[1].mech == SP_GW_SPF_A &&
	    r.t[1].cidr4 == 16 && r.t[1].cidr6 == 48 &&
	    r.t[1].spec_len == 13 && memcmp(r.t[1].spec, "x.example.com",
	    13) == 0);
	CHECK(r.t[2].qual == '+' && r.t[2].mech == SP_GW_SPF_MX &&
	    r.t[2].spec == NULL && r.t[2].cidr4 == 32 && r.t[2].cidr6 == 128);
	CHECK(r.t[3].mech == SP_GW_SPF_ALL);
}

/* RFC 7208 7.4, every example. */
static void
t_spf_macros(void)
{
	static const struct { const char *in, *ip, *want; } ex[] = {
		{"%{s}", "192.0.2.3", "strong-bad@email.example.com"},
		{"%{o}", "192.0.2.3", "email.example.com"},
		{"%{d}", "192.0.2.3", "email.example.com"},
		{"%{d4}", "192.0.2.3", "email.example.com"},
		{"%{d3}", "192.0.2.3", "email.example.com"},
		{"%{d2}", "192.0.2.3", "example.com"},
		{"%{d1}", "192.0.2.3", "com"},
		{"%{dr}", "192.0.2.3", "com.example.email"},
		{"%{d2r}", "192.0.2.3", "example.email"},
		{"%{l}", "192.0.2.3", "strong-bad"},
		{"%{l-}", "192.0.2.3", "strong.bad"},
		{"%{lr}", "192.0.2.3", "strong-bad"},
		{"%{lr-}", "192.0.2.3", "bad.strong"},
		{"%{l1r-}", "192.0.2.3", "strong"},
		{"%{ir}.%{v}._spf.%{d2}", "192.0.2.3",
		    "3.2.0.192.in-addr._spf.example.com"},
		{"%{lr-}.lp._spf.%{d2}", "192.0.2.3",
		    "bad.strong.lp._spf.example.com"},
		{"%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "192.0.2.3",
		    "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"},
		{"%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "192.0.2.3",
		    "3.2.0.192.in-addr.strong.lp._spf.example.com"},
		{"%{d2}.trusted-domains.example.net", "192.0.2.3",
		    "example.com.trusted-domains.example.net"},
		{"%{ir}.%{v}._spf.%{d2}", "2001:db8::cb01",
		    "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1."
		    "0.0.2.ip6._spf.example.com"},
		{"%%%_%-", "192.0.2.3", "% %20"},
		{"%{S}", "192.0.2.3", "strong-bad%40email.example.com"},
		{"%{h}", "192.0.2.3", "mx.example.org"},
		{"%{i}", "::ffff:192.0.2.3", "192.0.2.3"},
	};
	char out[1024];

	for (size_t i = 0; i < sizeof(ex) / sizeof(ex[0]); i++) {
		int rc = sp_gw_spf_expand_test(ex[i].in, ex[i].ip,
		    "strong-bad@email.example.com", "email.example.com",
		    "mx.example.org", 0, out, sizeof(out));
		if (rc != 0 || strcmp(out, ex[i].want) != 0) {
			fprintf(stderr, "# %s -> %s (want %s)\n", ex[i].in,
			    rc == 0 ? out : "error", ex[i].want);
			CHECK(0);
		}
	}
	/* c, r, t only in explanations */
	CHECK(sp_gw_spf_expand_test("%{c}", "192.0.2.3", "a@b.c", "b.c", "h",
	    0, out, sizeof(out)) == -1);
	CHECK(sp_gw_spf_expand_test("%{c}", "192.0.2.3", "a@b.c", "b.c", "h",
	    1, out, sizeof(out)) == 0 && strcmp(out, "192.0.2.3") == 0);
	/* overflow is an error, not a truncation */
	CHECK(sp_gw_spf_expand_test("%{s}%{s}%{s}", "192.0.2.3",
	    "a@b.example", "b.example", "h", 0, out, 16) == -1);
	/* null sender: postmaster@helo */
	CHECK(sp_gw_spf_expand_test("%{l}|%{o}", "192.0.2.3", "", "x.y",
	    "helo.example", 0, out, sizeof(out)) == 0 &&
	    strcmp(out, "postmaster|helo.example") == 0);
}

static void
t_dkim_tags(void)
{
	struct sp_gw_dkim_tag t[8];
	int n;
	static const char s[] = " v = 1 ;a=rsa-sha256;\r\n\tb= ab\r\n cd ;";

	CHECK(sp_gw_dkim_tags_parse(s, strlen(s), t, 8, &n) == 0 && n == 3);
	CHECK(t[0].name_len == 1 && t[0].value_len == 1 && t[0].value[0] ==
	    '1');
	CHECK(t[2].value_len == 7 && memcmp(t[2].value, "ab\r\n cd", 7) == 0);
	CHECK(sp_gw_dkim_tags_parse("a=1; a=2", 8, t, 8, &n) == -1);
	CHECK(sp_gw_dkim_tags_parse("1a=1", 4, t, 8, &n) == -1);
	CHECK(sp_gw_dkim_tags_parse("a", 1, t, 8, &n) == -1);
	CHECK(sp_gw_dkim_tags_parse("a=\x01", 3, t, 8, &n) == -1);
	CHECK(sp_gw_dkim_tags_parse("a=1;b=2;c=3", 11, t, 2, &n) == -1);
	CHECK(sp_gw_dkim_tags_parse("", 0, t, 8, &n) == 0 && n == 0);
}

#define SIG_TAIL "bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; b=AAAA"

static int
sig_ok(const char *v, struct sp_gw_dkim_sig *s)
{
	char err[96];

	return sp_gw_dkim_sig_parse(v, strlen(v), s, err, sizeof(err)) == 0;
}

static void
t_dkim_sig(void)
{
	static struct sp_gw_dkim_sig s;

	CHECK(sig_ok("v=1; a=rsa-sha256; d=Example.com; s=sel; "
	    "c=relaxed; h=From : To; l=10; t=5; x=6; " SIG_TAIL, &s));
	CHECK(s.alg == SP_GW_DKIM_RSA_SHA256 && s.c_head_relaxed &&
	    !s.c_body_relaxed && s.nh == 2 && strcmp(s.h[0], "from") == 0 &&
	    strcmp(s.h[1], "to") == 0 && s.have_l && s.l == 10 &&
	    strcmp(s.i, "@Example.com") == 0 && strcmp(s.b8, "AAAA") == 0);
	CHECK(sig_ok("v=1; a=ed25519-sha256; d=e.com; s=s; h=from; "
	    "i=x@sub.e.com; c=simple/relaxed; " SIG_TAIL, &s));
	CHECK(s.alg == SP_GW_DKIM_ED25519_SHA256 && !s.c_head_relaxed &&
	    s.c_body_relaxed);
	CHECK(sig_ok("v=1; a=rsa-sha1; d=e.com; s=s; h=from; " SIG_TAIL, &s));
	CHECK(s.alg == SP_GW_DKIM_RSA_SHA1);
	/* refusals */
	CHECK(!sig_ok("v=2; a=rsa-sha256; d=e.com; s=s; h=from; " SIG_TAIL,
	    &s));
	CHECK(!sig_ok("v=1; a=rsa-md5; d=e.com; s=s; h=from; " SIG_TAIL, &s));
	CHECK(!sig_ok("v=1; a=rsa-sha256; d=e.com; s=s; h=to; " SIG_TAIL, &s));
	CHECK(!sig_ok("v=1; a=rsa-sha256; d=e.com; s=s; h=from; "
	    "i=x@other.com; " SIG_TAIL, &s));
	CHECK(!sig_ok("v=1; a=rsa-sha256; d=e.com; s=s; h=from; "
	    "i=x@xe.com; " SIG_TAIL, &s));
	CHECK(!sig_ok("v=1; a=rsa-sha256; d=e.com; s=s; h=from; t=10; x=9; "
	    SIG_TAIL, &s));
	CHECK(!sig_ok("v=1; a=rsa-sha256; d=e.com; s=s; h=from; l=-1; "
	    SIG_TAIL, &s));
	CHECK(!sig_ok("v=1; a=rsa-sha256; d=e.com; s=s; h=from; c=fancy; "
	    SIG_TAIL, &s));
	CHECK(!sig_ok("v=1; a=rsa-sha256; d=e.com; s=s; h=from; q=http; "
	    SIG_TAIL, &s));
	CHECK(!sig_ok("v=1; a=rsa-sha256; d=e.com; s=s/x; h=from; " SIG_TAIL,
	    &s));
	CHECK(!sig_ok("v=1; a=rsa-sha256; d=e.com; s=s; h=from; "
	    "bh=AAAA; b=AAAA", &s));    /* bh= not 32 bytes */
	CHECK(!sig_ok("v=1; a=rsa-sha256; d=e.com; s=s; h=from::to; "
	    SIG_TAIL, &s));
	CHECK(!sig_ok("v=1; a=rsa-sha256; s=s; h=from; " SIG_TAIL, &s));
}

static int
key_ok(const char *v, struct sp_gw_dkim_key *k)
{
	char err[96];

	return sp_gw_dkim_key_parse(v, strlen(v), k, err, sizeof(err)) == 0;
}

static void
t_dkim_key(void)
{
	static struct sp_gw_dkim_key k;

	CHECK(key_ok("v=DKIM1; k=ed25519; p="
	    "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", &k));
	CHECK(k.ed25519 && k.p_len == 32 && k.sha256_ok && k.email_ok &&
	    !k.testing);
	CHECK(key_ok("p=; t=y:s; h=sha1:sha256; s=email", &k));
	CHECK(k.p_len == 0 && k.testing && k.strict && k.sha256_ok &&
	    k.email_ok && !k.ed25519);
	CHECK(key_ok("h=sha1; s=other; p=AAAA", &k));
	CHECK(!k.sha256_ok && !k.email_ok);
	CHECK(!key_ok("k=rsa; v=DKIM1; p=AAAA", &k));    /* v= not first */
	CHECK(!key_ok("v=DKIM2; p=AAAA", &k));
	CHECK(!key_ok("k=dsa; p=AAAA", &k));
	CHECK(!key_ok("k=rsa", &k));
	CHECK(!key_ok("p=!!!!", &k));
}

static int
canon_is(const char *in, int relaxed, const char *want)
{
	char *out;
	size_t len;
	int ok;

	if (sp_gw_dkim_canon_body(in, strlen(in), relaxed, &out, &len) != 0)
		return 0;
	ok = len == strlen(want) && memcmp(out, want, len) == 0;
	if (!ok)
		fprintf(stderr, "# canon(%d) got [%.*s]\n", relaxed, (int)len,
		    out);
	free(out);
	return ok;
}

static void
t_dkim_canon(void)
{
	/* RFC 6376 3.4.5 */
	CHECK(canon_is(" C \r\nD \t E\r\n\r\n\r\n", 1, " C\r\nD E\r\n"));
	CHECK(canon_is(" C \r\nD \t E\r\n\r\n\r\n", 0, " C \r\nD \t E\r\n"));
	/* empty bodies differ (3.4.3, 3.4.4 with errata 1384) */
	CHECK(canon_is("", 0, "\r\n"));
	CHECK(canon_is("", 1, ""));
	CHECK(canon_is("\r\n\r\n", 0, "\r\n"));
	CHECK(canon_is("\r\n\r\n", 1, ""));
	CHECK(canon_is(" \t \r\n", 1, ""));
	/* a missing final CRLF is added */
	CHECK(canon_is("a", 0, "a\r\n"));
	CHECK(canon_is("a  b ", 1, "a b\r\n"));
	/* inner empty lines stay */
	CHECK(canon_is("a\r\n\r\nb\r\n", 1, "a\r\n\r\nb\r\n"));
	/* a bare LF is content, not a line end */
	CHECK(canon_is("a\nb\r\n", 0, "a\nb\r\n"));
}

static void
t_dmarc_record(void)
{
	struct sp_gw_dmarc_record r;
	const char *s;

	s = "v=DMARC1; p=reject; sp=quarantine; adkim=s; pct=50; rua=x";
	CHECK(sp_gw_dmarc_parse(s, strlen(s), &r) == 0);
	CHECK(r.p == SP_GW_DMARC_P_REJECT && r.sp == SP_GW_DMARC_P_QUARANTINE
	    && r.adkim_strict && !r.aspf_strict && r.pct == 50);
	s = "v=DMARC1;p=none";
	CHECK(sp_gw_dmarc_parse(s, strlen(s), &r) == 0 &&
	    r.p == SP_GW_DMARC_P_NONE && r.sp == SP_GW_DMARC_P_UNSET &&
	    r.pct == 100);
	s = "v=DMARC1; p=reject; pct=101";    /* bad pct: default */
	CHECK(sp_gw_dmarc_parse(s, strlen(s), &r) == 0 && r.pct == 100);
	s = "v=DMARC1; p=bogus; rua=mailto:a@b.c";    /* 6.6.3 */
	CHECK(sp_gw_dmarc_parse(s, strlen(s), &r) == 0 &&
	    r.p == SP_GW_DMARC_P_NONE);
	s = "v=DMARC1; p=bogus";
	CHECK(sp_gw_dmarc_parse(s, strlen(s), &r) == -1);
	s = "v=DMARC1; rua=mailto:a@b.c";    /* no p=, but rua= */
	CHECK(sp_gw_dmarc_parse(s, strlen(s), &r) == 0 &&
	    r.p == SP_GW_DMARC_P_NONE);
	s = "v=DMARC1";
	CHECK(sp_gw_dmarc_parse(s, strlen(s), &r) == -1);
	s = "p=reject; v=DMARC1";
	CHECK(sp_gw_dmarc_parse(s, strlen(s), &r) == -1);
	s = "v=dmarc1; p=reject";
	CHECK(sp_gw_dmarc_parse(s, strlen(s), &r) == -1);
}

static int
from_is(const char *hdr, const char *want)
{
	static struct sp_gw_msg m;
	char dom[256], err[128];
	int rc;

	CHECK(sp_gw_msg_parse((const uint8_t *)hdr, strlen(hdr), &m) == 0);
	rc = sp_gw_dmarc_from_domain(&m, dom, sizeof(dom), err, sizeof(err));
	if (want == NULL)
		return rc == -1;
	if (rc != 0 || strcmp(dom, want) != 0) {
		fprintf(stderr, "# %s -> %s\n", hdr, rc ? err : dom);
		return 0;
	}
	return 1;
}

static void
t_dmarc_from(void)
{
	CHECK(from_is("From: joe@Example.COM\r\n\r\n", "example.com"));
	CHECK(from_is("From: Joe <joe@example.com>\r\n\r\n", "example.com"));
	CHECK(from_is("From: \"Doe, Joe\" <joe@example.com>\r\n\r\n",
	    "example.com"));
	CHECK(from_is("From: joe@example.com (Joe <x@evil.test>)\r\n\r\n",
	    "example.com"));
	CHECK(from_is("From: \"a@evil.test\" <joe@example.com>\r\n\r\n",
	    "example.com"));
	CHECK(from_is("From: Joe\r\n <joe@example.com.>\r\n\r\n",
	    "example.com"));
	CHECK(from_is("FROM : joe@example.com\r\n\r\n", "example.com"));
	CHECK(from_is("From: a@example.com, b@example.org\r\n\r\n", NULL));
	CHECK(from_is("From: <a@example.com> <b@example.org>\r\n\r\n", NULL));
	CHECK(from_is("From: a@example.com\r\nFrom: b@example.com\r\n\r\n",
	    NULL));
	CHECK(from_is("To: a@example.com\r\n\r\n", NULL));
	CHECK(from_is("From: undisclosed:;\r\n\r\n", NULL));
	CHECK(from_is("From: joe\r\n\r\n", NULL));
	CHECK(from_is("From: joe@localhost\r\n\r\n", NULL));
	CHECK(from_is("From: joe@exa_mple.com\r\n\r\n", NULL));
	CHECK(from_is("From: joe@example..com\r\n\r\n", NULL));
	CHECK(from_is("From: \"unterminated <a@b.com>\r\n\r\n", NULL));
}

static void
t_msg(void)
{
	static struct sp_gw_msg m;
	static const char msg[] =
	    "From: a@b.c\r\nSubject: one\r\n two\r\nX : y\r\n\r\nbody\r\n";

	CHECK(sp_gw_msg_parse((const uint8_t *)msg, strlen(msg), &m) == 0);
	CHECK(m.n == 3);
	CHECK(m.h[1].raw_len == strlen("Subject: one\r\n two\r\n"));
	CHECK(m.h[1].value_len == strlen(" one\r\n two"));
	CHECK(m.h[2].name_len == 1 && m.h[2].name[0] == 'X');
	CHECK(m.body_len == 6 && memcmp(m.body, "body\r\n", 6) == 0);
	CHECK(sp_gw_msg_find(&m, "subject", 0) == 1);
	CHECK(sp_gw_msg_find(&m, "from", 1) == -1);
	/* headers only, no empty line: no body */
	CHECK(sp_gw_msg_parse((const uint8_t *)"A: b\r\n", 6, &m) == 0 &&
	    m.n == 1 && m.body == NULL);
	/* a line that is no field */
	CHECK(sp_gw_msg_parse((const uint8_t *)"A: b\r\nnonsense\r\n\r\n", 18,
	    &m) == EINVAL && m.n == 1);
	CHECK(sp_gw_msg_parse((const uint8_t *)": b\r\n", 5, &m) == EINVAL);
}

/* Builds a response packet to a TXT question with the given answers. */
static size_t
build_answer(uint8_t *p, int rcode, const uint8_t *rdata, size_t rdlen,
    int count, int tc)
{
	static const uint8_t qname[] = "\x03" "foo" "\x04" "test";
	size_t o = 0;

	memset(p, 0, 12);
	p[2] = 0x80 | (tc ? 0x02 : 0);
	p[3] = (uint8_t)rcode;
	p[5] = 1;
	p[7] = (uint8_t)count;
	o = 12;
	memcpy(p + o, qname, sizeof(qname));
	o += sizeof(qname);
	p[o++] = 0; p[o++] = ns_t_txt; p[o++] = 0; p[o++] = 1;
	for (int i = 0; i < count; i++) {
		p[o++] = 0xc0; p[o++] = 12;    /* the question's name */
		p[o++] = 0; p[o++] = ns_t_txt; p[o++] = 0; p[o++] = 1;
		p[o++] = 0; p[o++] = 0; p[o++] = 0; p[o++] = 60;
		p[o++] = (uint8_t)(rdlen >> 8); p[o++] = (uint8_t)rdlen;
		memcpy(p + o, rdata, rdlen);
		o += rdlen;
	}
	return o;
}

static void
t_dns_parse(void)
{
	uint8_t pkt[1024];
	struct sp_gw_dns_answer a;
	static const uint8_t two[] = "\x07v=spf1 \x04-all";
	static const uint8_t bad[] = "\x09v=spf1";
	size_t n;

	n = build_answer(pkt, 0, two, sizeof(two) - 1, 2, 0);
	CHECK(sp_gw_dns_parse(pkt, n, ns_t_txt, &a) == SP_GW_DNS_OK);
	CHECK(a.n == 2 && a.rr[0].len == 11 &&
	    strcmp((char *)a.rr[0].data, "v=spf1 -all") == 0);
	sp_gw_dns_answer_free(&a);
	/* the same packet asked as MX: the name exists, no MX */
	CHECK(sp_gw_dns_parse(pkt, n, ns_t_mx, &a) == SP_GW_DNS_NODATA);
	/* a string longer than its rdata: skipped, not read past */
	n = build_answer(pkt, 0, bad, sizeof(bad) - 1, 1, 0);
	CHECK(sp_gw_dns_parse(pkt, n, ns_t_txt, &a) == SP_GW_DNS_NODATA);
	n = build_answer(pkt, ns_r_nxdomain, NULL, 0, 0, 0);
	CHECK(sp_gw_dns_parse(pkt, n, ns_t_txt, &a) == SP_GW_DNS_NXDOMAIN);
	n = build_answer(pkt, ns_r_servfail, NULL, 0, 0, 0);
	CHECK(sp_gw_dns_parse(pkt, n, ns_t_txt, &a) == SP_GW_DNS_TEMP);
	n = build_answer(pkt, 0, two, sizeof(two) - 1, 1, 1);
	CHECK(sp_gw_dns_parse(pkt, n, ns_t_txt, &a) == SP_GW_DNS_TEMP);
	/* cut short */
	n = build_answer(pkt, 0, two, sizeof(two) - 1, 1, 0);
	CHECK(sp_gw_dns_parse(pkt, n - 3, ns_t_txt, &a) != SP_GW_DNS_OK ||
	    a.n == 0);
	sp_gw_dns_answer_free(&a);
	CHECK(sp_gw_dns_parse(pkt, 5, ns_t_txt, &a) == SP_GW_DNS_TEMP);
}

static void
t_dns_conf(void)
{
	struct sp_gw_dns_conf c;

	CHECK(sp_gw_dns_conf_init(&c, "127.0.0.1:5353", 0) == 0 &&
	    c.port == htons(5353) && c.timeout_ms == 5000);
	CHECK(sp_gw_dns_conf_init(&c, NULL, 250) == 0 && c.addr == 0 &&
	    c.timeout_ms == 250);
	CHECK(sp_gw_dns_conf_init(&c, "127.0.0.1", 0) == EINVAL);
	CHECK(sp_gw_dns_conf_init(&c, "127.0.0.1:0", 0) == EINVAL);
	CHECK(sp_gw_dns_conf_init(&c, "127.0.0.1:65536", 0) == EINVAL);
	CHECK(sp_gw_dns_conf_init(&c, "localhost:53", 0) == EINVAL);
	CHECK(sp_gw_dns_conf_init(&c, ":53", 0) == EINVAL);
	CHECK(sp_gw_dns_conf_init(&c, "1.2.3.4:5x", 0) == EINVAL);
}

/* A spent budget sends nothing: the query fails at once, and the server
 * (our own socket) never sees a packet. */
static void
t_dns_deadline(void)
{
	struct sp_gw_dns_conf c;
	struct sp_gw_dns_answer a;
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sin);
	char hp[64], buf[512];
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &sl) == 0);
	snprintf(hp, sizeof(hp), "127.0.0.1:%u", ntohs(sin.sin_port));
	CHECK(sp_gw_dns_conf_init(&c, hp, 1000) == 0);
	sp_gw_dns_start_budget(&c);
	CHECK(c.deadline > 0);
	c.deadline = 1;    /* long past */
	CHECK(sp_gw_dns_query(&c, "example.com", ns_t_txt, &a) ==
	    SP_GW_DNS_TEMP);
	CHECK(recv(fd, buf, sizeof(buf), MSG_DONTWAIT) < 0);
	/* the control: without a deadline the query does reach it */
	c.deadline = 0;
	c.timeout_ms = 1000;
	CHECK(sp_gw_dns_query(&c, "example.com", ns_t_txt, &a) ==
	    SP_GW_DNS_TEMP);
	CHECK(recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0);
	close(fd);
}

int
main(void)
{
	RUN(t_spf_parse);
	RUN(t_spf_terms);
	RUN(t_spf_macros);
	RUN(t_dkim_tags);
	RUN(t_dkim_sig);
	RUN(t_dkim_key);
	RUN(t_dkim_canon);
	RUN(t_dmarc_record);
	RUN(t_dmarc_from);
	RUN(t_msg);
	RUN(t_dns_parse);
	RUN(t_dns_conf);
	RUN(t_dns_deadline);
	return unit_done();
}
