/*
 * The listener and account glue of the IMAP, SMTP and POP3 servers; see
 * bridge_conn.h.
 */
#include "bridge/bridge_conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bridge/smtp_parse.h"

int
bridge_server_create(uv_loop_t *loop, size_t size,
    const struct bridge_server_opts *o, const struct btls_proto *proto,
    unsigned timeout_ms, struct bridge_server **s_r, char *err,
    size_t errlen)
{
	struct bridge_server *s = calloc(1, size);
	struct btls_opts bo;
	int rc;

	*s_r = NULL;
	if (s == NULL)
		return ENOMEM;
	s->accounts = o->accounts;
	s->naccounts = o->naccounts;
	memset(&bo, 0, sizeof(bo));
	bo.host = o->host;
	bo.port = o->port;
	bo.tls_port = o->tls_port;
	bo.cert_file = o->cert_file;
	bo.key_file = o->key_file;
	bo.proto = proto;
	bo.arg = s;
	bo.timeout_ms = timeout_ms;
	rc = btls_server_create(loop, &bo, &s->b, err, errlen);
	if (rc != 0 && s->b == NULL) {
		free(s);
		return rc;
	}
	*s_r = s;
	return rc;
}

int
bridge_server_port(const struct bridge_server *s)
{
	return btls_server_port(s->b);
}

int
bridge_server_tls_port(const struct bridge_server *s)
{
	return btls_server_tls_port(s->b);
}

void
bridge_server_shutdown(struct bridge_server *s)
{
	if (s)
		btls_server_shutdown(s->b);
}

void
bridge_server_destroy(struct bridge_server *s)
{
	if (s == NULL)
		return;
	btls_server_destroy(s->b);
	free(s);
}

bridge_account *
bridge_server_find_account(const struct bridge_server *s,
    const char *address)
{
	size_t i;

	for (i = 0; i < s->naccounts; i++)
		if (strcasecmp(bridge_account_address(s->accounts[i]),
		    address) == 0)
			return s->accounts[i];
	return NULL;
}

int
bridge_sasl_plain(const char *b64, uint8_t *buf, size_t cap,
    const char **user_r, const char **pw_r, size_t *pwlen_r)
{
	const char *authz, *user;
	size_t az, ul;
	long n = smtp_base64_decode(b64, buf, cap - 1);

	if (n < 0)
		return BRIDGE_PLAIN_BASE64;
	buf[n] = 0;
	authz = (const char *)buf;
	az = strnlen(authz, (size_t)n);
	if (az + 1 >= (size_t)n)
		return BRIDGE_PLAIN_BAD;
	user = authz + az + 1;
	ul = strnlen(user, (size_t)n - az - 1);
	if (az + 1 + ul + 1 > (size_t)n)
		return BRIDGE_PLAIN_BAD;
	if (az > 0 && strcasecmp(authz, user) != 0)
		return BRIDGE_PLAIN_BAD;
	*user_r = user;
	*pw_r = user + ul + 1;
	*pwlen_r = (size_t)n - az - ul - 2;
	return 0;
}
