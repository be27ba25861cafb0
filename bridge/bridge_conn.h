/*
 * What the bridge's IMAP, SMTP submission and POP3 servers share around
 * bridge_tls.h: the listener with its accounts (the protocol's server
 * struct starts with struct bridge_server), the account lookup by
 * address, and SASL PLAIN.
 *
 * Everything runs on the loop thread.
 */
#ifndef SP_BRIDGE_BRIDGE_CONN_H
#define SP_BRIDGE_BRIDGE_CONN_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "bridge/bridge_account.h"
#include "bridge/bridge_tls.h"

struct bridge_server_opts {
	const char *host;
	int port;                /* plain (+STARTTLS/STLS); -1 none, 0 any */
	int tls_port;            /* implicit TLS; -1 = none, 0 = any */
	const char *cert_file, *key_file;
	bridge_account **accounts; /* not owned */
	size_t naccounts;
};

struct bridge_server {
	struct btls_server *b;
	bridge_account **accounts;
	size_t naccounts;
};

/* Allocates size bytes (zeroed; a struct that starts with struct
 * bridge_server), which proto->open gets as its arg, and starts the
 * listeners.  On failure *s_r may still be set, as btls_server_create
 * says: run the loop, then bridge_server_destroy(). */
int bridge_server_create(uv_loop_t *loop, size_t size,
    const struct bridge_server_opts *o, const struct btls_proto *proto,
    unsigned timeout_ms, struct bridge_server **s_r, char *err,
    size_t errlen);
int bridge_server_port(const struct bridge_server *s);
int bridge_server_tls_port(const struct bridge_server *s);
void bridge_server_shutdown(struct bridge_server *s);   /* NULL ok */
void bridge_server_destroy(struct bridge_server *s);    /* NULL ok */

/* The account with this address (any case), or NULL.  Not owned. */
bridge_account *bridge_server_find_account(const struct bridge_server *s,
    const char *address);

/* SASL PLAIN (RFC 4616): "authzid NUL authcid NUL password" in base64,
 * decoded into buf (cap bytes; the caller wipes it).  0 with *user_r and
 * *pw_r (pwlen_r bytes) pointing into buf; BRIDGE_PLAIN_BASE64 for bad
 * base64; BRIDGE_PLAIN_BAD when the fields are not there or the authzid
 * names someone else. */
#define BRIDGE_PLAIN_BASE64 (-1)
#define BRIDGE_PLAIN_BAD (-2)
int bridge_sasl_plain(const char *b64, uint8_t *buf, size_t cap,
    const char **user_r, const char **pw_r, size_t *pwlen_r);

#endif
