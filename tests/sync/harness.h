/*
 * Test and benchmark harness: starts the real sealpost-server on 127.0.0.1
 * in a fresh data directory, with a fresh self-signed TLS certificate, and
 * creates accounts through the real protocol.
 *
 * Binaries come from the environment (set by meson): SP_SERVER_BIN and
 * SP_ADMIN_BIN.
 */
#ifndef SP_TESTS_HARNESS_H
#define SP_TESTS_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "client-core/sync_client.h"
#include "crypto/kdf.h"
#include "crypto/keyset.h"

struct srv {
	pid_t pid;
	int port;
	int tls;
	char dir[256];          /* temporary root */
	char data[300];         /* data-dir */
	char cert[300], key[300];
	char extra[512];        /* extra flags, space separated */
};

/* Creates the directory and certificate, picks a port, starts the server
 * and waits until it answers.  0 or -1 (with a message on stderr). */
int srv_start(struct srv *s, int tls, const char *extra_flags);
/* A port free on 127.0.0.1 right now. */
int srv_free_port(void);
/* Starts it again on the same directory and port. */
int srv_restart(struct srv *s);
/* Sends sig and waits; returns the exit status as waitpid reports it. */
int srv_stop(struct srv *s, int sig);
/* Stops (if running) and removes the directory. */
void srv_cleanup(struct srv *s);
/* Runs sealpost-admin on the server's data dir; output in out. */
int srv_admin(struct srv *s, const char *args, char *out, size_t outlen);

sp_client *srv_connect(struct srv *s, const char *device);

/* An account as a client knows it. */
struct acct {
	char address[128];
	char password[64];
	sp_keyset *ks;
	struct sp_kdf_params params;
	uint8_t token[32];
	uint8_t session_id[16];
};

/* Registers address (open registration, or with invite if not NULL);
 * returns the reply type (SP_MSG_OK or SP_MSG_ERROR with *code_r). */
int acct_register(sp_client *c, struct acct *a, const char *address,
    const char *invite, int *code_r);
/* The same with an OpenPGP public key in the signed key set. */
int acct_register_pgp(sp_client *c, struct acct *a, const char *address,
    const char *invite, const uint8_t *pgp, size_t pgp_len, int *code_r);
/* PRELOGIN + LOGIN; returns 0 or the protocol error code. */
int acct_login(sp_client *c, struct acct *a);
void acct_free(struct acct *a);

/* One request with an empty or prepared frame; returns the reply or NULL. */
struct sp_client_msg *call(sp_client *c, struct sp_frame *f);
/* Error code of a reply, 0 if it is not an ERROR. */
int reply_code(const struct sp_client_msg *m);

#endif
