/*
 * DKIM verification (RFC 6376) with rsa-sha256 and ed25519-sha256
 * (RFC 8463).  rsa-sha1 and RSA keys under 1024 bits are refused
 * (permerror), as RFC 8301 requires.
 *
 * l= (body length): a signature that verifies but leaves body bytes after
 * l unsigned gets "policy" (RFC 8601 2.7.1), never "pass": content
 * appended after the signed part would otherwise ride on the signer's
 * reputation and its DMARC alignment.
 *
 * x= in the past gives "fail".  A key with t=y (testing) gives its real
 * result, with "testing" noted in the A-R comment.
 *
 * Blocking (DNS), thread-safe.
 */
#ifndef SP_GW_DKIM_H
#define SP_GW_DKIM_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "server/gateway/auth/gw_dns.h"
#include "server/gateway/auth/gw_msg.h"

enum sp_gw_dkim_result {
	SP_GW_DKIM_NONE = 0,
	SP_GW_DKIM_PASS,
	SP_GW_DKIM_FAIL,
	SP_GW_DKIM_POLICY,
	SP_GW_DKIM_TEMPERROR,
	SP_GW_DKIM_PERMERROR,
};

#define SP_GW_DKIM_MAX_SIGS 8      /* signatures verified per message */
#define SP_GW_DKIM_MAX_TAGS 32     /* tags in one tag list */
#define SP_GW_DKIM_MAX_H 64        /* names in h= */
#define SP_GW_DKIM_MAX_B 1024      /* signature bytes (RSA 8192) */
#define SP_GW_DKIM_MAX_KEY 2048    /* public key bytes (DER) */

/* One tag=value of a tag list (3.2); pointers into the parsed text. */
struct sp_gw_dkim_tag {
	const char *name, *value;
	size_t name_len, value_len;
};

/* Parses a tag list: at most max tags, a duplicate tag name is an error.
 * Values are trimmed of surrounding whitespace.  0 or -1. */
int sp_gw_dkim_tags_parse(const char *s, size_t len,
    struct sp_gw_dkim_tag *tags, int max, int *n_r);

enum sp_gw_dkim_alg { SP_GW_DKIM_RSA_SHA256 = 1, SP_GW_DKIM_ED25519_SHA256,
    SP_GW_DKIM_RSA_SHA1 };

struct sp_gw_dkim_sig {
	int alg;
	int c_head_relaxed, c_body_relaxed;
	char d[254], s[64], i[320];
	char a[24];                 /* a= as written, for the A-R */
	char b8[12];                /* first 8 characters of b= */
	uint8_t b[SP_GW_DKIM_MAX_B], bh[64];
	size_t b_len, bh_len;
	char h[SP_GW_DKIM_MAX_H][64];
	int nh;
	int have_l;
	uint64_t l;
	int have_t, have_x;
	int64_t t, x;
	const char *bval;           /* b= value inside the header value */
	size_t bval_len;
};

/* Parses the value of one DKIM-Signature field (after the colon).
 * 0, or -1 with a reason in err. */
int sp_gw_dkim_sig_parse(const char *v, size_t len, struct sp_gw_dkim_sig *s,
    char *err, size_t errlen);

struct sp_gw_dkim_key {
	int ed25519;                /* k=ed25519, else rsa */
	int testing;                /* t=y */
	int strict;                 /* t=s: i= domain must equal d= */
	int sha256_ok;              /* h= absent or lists sha256 */
	int email_ok;               /* s= absent, "*" or "email" */
	uint8_t p[SP_GW_DKIM_MAX_KEY];
	size_t p_len;               /* 0: revoked */
};

/* Parses a key record (3.6.1).  0, or -1 with a reason. */
int sp_gw_dkim_key_parse(const char *txt, size_t len,
    struct sp_gw_dkim_key *k, char *err, size_t errlen);

struct sp_gw_dkim_out {
	enum sp_gw_dkim_result result;
	char d[254], s[64], a[24], b8[12];
	int testing;
	char reason[96];
};

/* Canonicalizes a body (3.4.3, 3.4.4) into a malloc'd buffer.  0 or
 * ENOMEM. */
int sp_gw_dkim_canon_body(const char *body, size_t len, int relaxed,
    char **out, size_t *out_len);

/*
 * Verifies every DKIM-Signature of m (up to SP_GW_DKIM_MAX_SIGS, in
 * order), one out[] each; *n_r = 0 means unsigned.  now is the time x= is
 * checked against.  Returns 0 or ENOMEM.
 */
int sp_gw_dkim_verify(const struct sp_gw_dns_conf *dns,
    const struct sp_gw_msg *m, time_t now, struct sp_gw_dkim_out *out,
    int *n_r);

const char *sp_gw_dkim_str(enum sp_gw_dkim_result r);

#endif
