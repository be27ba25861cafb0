/*
 * Thunderbird autoconfig for the bridge's accounts: a small HTTP/1.1
 * listener on 127.0.0.1 that serves /mail/config-v1.1.xml (and the same
 * under /.well-known/autoconfig/) in Thunderbird's autoconfig format
 * (clientConfig version 1.1): the bridge's IMAP, POP3 and SMTP
 * host, port and socketType, username = the address.  ?emailaddress=A
 * picks the account (the first one without it); an unknown address is
 * 404.  One request per connection, GET and HEAD only, a request head of
 * at most 8 KiB, 10 s to send it.  No secret is ever served (the bridge
 * password is typed by the user).  See bridge/README.md for the steps.
 *
 * Runs on the loop thread.  The program logs one line per request.
 */
#ifndef SP_BRIDGE_AUTOCONFIG_H
#define SP_BRIDGE_AUTOCONFIG_H

#include <stddef.h>

#include <uv.h>

#include "bridge/bridge_account.h"

struct autoconfig_server;

struct autoconfig_opts {
	const char *host;        /* where to listen */
	int port;                /* 0 = any free one */
	const char *mail_host;   /* what the XML names; NULL = host */
	bridge_account **accounts; /* not owned */
	size_t naccounts;
	/* The bridge's listeners; -1 = not served. */
	int imap_port, imaps_port, smtp_port, smtps_port, pop3_port,
	    pop3s_port;
};

int autoconfig_create(uv_loop_t *loop, const struct autoconfig_opts *o,
    struct autoconfig_server **s_r, char *err, size_t errlen);
int autoconfig_port(const struct autoconfig_server *s);
void autoconfig_shutdown(struct autoconfig_server *s);   /* NULL ok */
void autoconfig_destroy(struct autoconfig_server *s);    /* NULL ok */

/*
 * The XML for address (NULL = the first account) into a malloc'd string
 * (*xml_r).  ENOENT when no account has that address.  For the listener
 * and the unit test.
 */
int autoconfig_xml(const struct autoconfig_opts *o, const char *address,
    char **xml_r);

/* The value of emailaddress in a request target's query, %-decoded into
 * out (cap bytes).  0 found, -1 none or malformed. */
int autoconfig_query_address(const char *target, char *out, size_t cap);

#endif
