#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto/pubkeys.h"
#include "crypto/vault.h"
#include "tests/sync/harness.h"

extern char **environ;

int
srv_free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static int
run(const char *cmd)
{
	int rc = system(cmd);

	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int
spawn_server(struct srv *s)
{
	const char *bin = getenv("SP_SERVER_BIN");
	char port[16], *argv[40], extra[512], *tok, *save = NULL;
	int n = 0;

	if (bin == NULL) {
		fprintf(stderr, "# SP_SERVER_BIN is not set\n");
		return -1;
	}
	snprintf(port, sizeof(port), "%d", s->port);
	argv[n++] = (char *)(uintptr_t)bin;
	argv[n++] = (char *)(uintptr_t)"--port";
	argv[n++] = port;
	argv[n++] = (char *)(uintptr_t)"--data-dir";
	argv[n++] = s->data;
	argv[n++] = (char *)(uintptr_t)"--domains";
	argv[n++] = (char *)(uintptr_t)"example.org,example.net";
	if (s->tls) {
		argv[n++] = (char *)(uintptr_t)"--tls-cert";
		argv[n++] = s->cert;
		argv[n++] = (char *)(uintptr_t)"--tls-key";
		argv[n++] = s->key;
	}
	/* Tests make many accounts from one address with the cheapest
	 * Argon2id cost; a test that checks these policies sets its own. */
	if (strstr(s->extra, "--kdf-min") == NULL) {
		argv[n++] = (char *)(uintptr_t)"--kdf-min-ops=1";
		argv[n++] = (char *)(uintptr_t)"--kdf-min-mem-kib=8";
	}
	if (strstr(s->extra, "--register-per-hour") == NULL)
		argv[n++] = (char *)(uintptr_t)"--register-per-hour=1000";
	if (strstr(s->extra, "--prelogin-per-minute") == NULL)
		argv[n++] = (char *)(uintptr_t)"--prelogin-per-minute=1000";
	/* Tests count records in logs; tests/factors turns events on. */
	if (strstr(s->extra, "--security-events") == NULL)
		argv[n++] = (char *)(uintptr_t)"--security-events=no";
	snprintf(extra, sizeof(extra), "%s", s->extra);
	for (tok = strtok_r(extra, " ", &save); tok && n < 38;
	    tok = strtok_r(NULL, " ", &save))
		argv[n++] = tok;
	argv[n] = NULL;
	if (posix_spawn(&s->pid, bin, NULL, NULL, argv, environ) != 0) {
		perror("posix_spawn");
		return -1;
	}
	return 0;
}

static int
wait_up(struct srv *s)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	int i, status;

	for (i = 0; i < 500; i++) {
		struct sockaddr_in a = { .sin_family = AF_INET };
		int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a.sin_port = htons((uint16_t)s->port);
		ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(fd);
		if (ok)
			return 0;
		if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
			fprintf(stderr, "# server exited during start\n");
			s->pid = 0;
			return -1;
		}
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "# server did not start listening\n");
	return -1;
}

int
srv_start(struct srv *s, int tls, const char *extra_flags)
{
	char cmd[2048];

	memset(s, 0, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "/tmp/sp-test-XXXXXX");
	if (mkdtemp(s->dir) == NULL)
		return -1;
	snprintf(s->data, sizeof(s->data), "%s/data", s->dir);
	snprintf(s->cert, sizeof(s->cert), "%s/cert.pem", s->dir);
	snprintf(s->key, sizeof(s->key), "%s/key.pem", s->dir);
	snprintf(s->extra, sizeof(s->extra), "%s", extra_flags ? extra_flags :
	    "");
	s->tls = tls;
	if (tls) {
		snprintf(cmd, sizeof(cmd), "openssl req -x509 -newkey ec "
		    "-pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s "
		    "-out %s -days 2 -subj /CN=127.0.0.1 "
		    "-addext subjectAltName=IP:127.0.0.1 2>/dev/null",
		    s->key, s->cert);
		if (run(cmd) != 0) {
			fprintf(stderr, "# openssl req failed\n");
			return -1;
		}
	}
	if ((s->port = srv_free_port()) < 0 || spawn_server(s) != 0)
		return -1;
	return wait_up(s);
}

int
srv_restart(struct srv *s)
{
	if (spawn_server(s) != 0)
		return -1;
	return wait_up(s);
}

int
srv_stop(struct srv *s, int sig)
{
	int status = -1;

	if (s->pid <= 0)
		return -1;
	kill(s->pid, sig);
	while (waitpid(s->pid, &status, 0) < 0 && errno == EINTR)
		;
	s->pid = 0;
	return status;
}

void
srv_cleanup(struct srv *s)
{
	char cmd[512];

	if (s->pid > 0)
		srv_stop(s, SIGKILL);
	if (s->dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
		(void)run(cmd);
	}
}

int
srv_admin(struct srv *s, const char *args, char *out, size_t outlen)
{
	const char *bin = getenv("SP_ADMIN_BIN");
	char cmd[1024];
	FILE *p;
	size_t n;
	int rc;

	if (bin == NULL)
		return -1;
	snprintf(cmd, sizeof(cmd), "%s --data-dir %s %s", bin, s->data, args);
	if ((p = popen(cmd, "r")) == NULL)
		return -1;
	n = fread(out, 1, outlen - 1, p);
	out[n] = 0;
	while (n > 0 && (out[n - 1] == '\n'))
		out[--n] = 0;
	rc = pclose(p);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

sp_client *
srv_connect(struct srv *s, const char *device)
{
	struct sp_client_opts o = { .host = "127.0.0.1", .port = s->port,
	    .tls = s->tls, .ca_file = s->tls ? s->cert : NULL,
	    .device = device };
	sp_client *c;
	char err[256];
	int rc;

	if ((rc = sp_client_connect(&o, &c, err, sizeof(err))) != 0) {
		fprintf(stderr, "# connect: %s (%s)\n", err, strerror(rc));
		return NULL;
	}
	return c;
}

struct sp_client_msg *
call(sp_client *c, struct sp_frame *f)
{
	struct sp_client_msg *m;

	if (sp_client_call(c, f, &m) != 0)
		return NULL;
	return m;
}

int
reply_code(const struct sp_client_msg *m)
{
	if (m == NULL)
		return -1;
	return m->f.type == SP_MSG_ERROR ? (int)m->f.f[SP_F_CODE].u : 0;
}

int
acct_register(sp_client *c, struct acct *a, const char *address,
    const char *invite, int *code_r)
{
	return acct_register_pgp(c, a, address, invite, NULL, 0, code_r);
}

int
acct_register_pgp(sp_client *c, struct acct *a, const char *address,
    const char *invite, const uint8_t *pgp, size_t pgp_len, int *code_r)
{
	struct sp_login_keys *lk = NULL;
	uint8_t params[25], *vault = NULL, *pub = NULL;
	size_t vlen, plen;
	char lower[128];
	size_t i;
	struct sp_frame f;
	struct sp_client_msg *m;
	int type = -1;

	memset(a, 0, sizeof(*a));
	snprintf(a->address, sizeof(a->address), "%s", address);
	snprintf(a->password, sizeof(a->password), "pw-%s", address);
	/* The cheapest accepted Argon2id cost keeps tests fast. */
	if (sp_keyset_generate(&a->ks) || sp_kdf_params_new(&a->params, 1, 8) ||
	    sp_kdf_derive(a->password, strlen(a->password), &a->params, &lk) ||
	    sp_vault_seal(a->ks, lk->vault_key, &a->params, NULL, &vault,
	    &vlen))
		goto out;
	sp_kdf_params_encode(&a->params, params);
	/* Sign for the address as the server will store it (lower case);
	 * an address the signer rejects is still sent, signed for a
	 * placeholder, so that the server's own check is what answers. */
	for (i = 0; address[i] && i < sizeof(lower) - 1; i++)
		lower[i] = (char)(address[i] >= 'A' && address[i] <= 'Z' ?
		    address[i] + 32 : address[i]);
	lower[i] = 0;
	if (sp_pubkeys_sign(a->ks, lower, 1764460800, pgp, pgp_len, &pub,
	    &plen) != 0 && sp_pubkeys_sign(a->ks, "invalid@invalid", 0, NULL,
	    0, &pub, &plen) != 0)
		goto out;
	sp_frame_init(&f, SP_MSG_REGISTER, 0);
	sp_frame_set_text(&f, SP_F_ADDRESS, address);
	sp_frame_set_bytes(&f, SP_F_AUTH_PK, lk->auth_pk, 32);
	sp_frame_set_bytes(&f, SP_F_KDF_PARAMS, params, 25);
	sp_frame_set_bytes(&f, SP_F_VAULT, vault, vlen);
	sp_frame_set_bytes(&f, SP_F_PUBKEYS, pub, plen);
	if (invite)
		sp_frame_set_text(&f, SP_F_INVITE, invite);
	if ((m = call(c, &f)) == NULL)
		goto out;
	type = (int)m->f.type;
	if (code_r)
		*code_r = reply_code(m);
	sp_client_msg_free(m);
out:
	free(pub);
	free(vault);
	sp_login_keys_free(lk);
	return type;
}

int
acct_login(sp_client *c, struct acct *a)
{
	struct sp_login_keys *lk = NULL;
	struct sp_kdf_params p;
	struct sp_frame f;
	struct sp_client_msg *m = NULL;
	uint8_t chal[32], sig[64];
	int rc = -1;

	sp_frame_init(&f, SP_MSG_PRELOGIN, 0);
	sp_frame_set_text(&f, SP_F_ADDRESS, a->address);
	if ((m = call(c, &f)) == NULL || (rc = reply_code(m)) != 0)
		goto out;
	memcpy(chal, m->f.f[SP_F_CHALLENGE].ptr, 32);
	rc = -1;
	if (sp_kdf_params_decode(m->f.f[SP_F_KDF_PARAMS].ptr, &p) != 0 ||
	    sp_kdf_derive(a->password, strlen(a->password), &p, &lk) != 0 ||
	    sp_kdf_sign_challenge(lk, chal, 32, sig) != 0)
		goto out;
	sp_client_msg_free(m);
	sp_frame_init(&f, SP_MSG_LOGIN, 0);
	sp_frame_set_text(&f, SP_F_ADDRESS, a->address);
	sp_frame_set_bytes(&f, SP_F_CHALLENGE, chal, 32);
	sp_frame_set_bytes(&f, SP_F_SIGNATURE, sig, 64);
	sp_frame_set_text(&f, SP_F_DEVICE, "test");
	if ((m = call(c, &f)) == NULL || (rc = reply_code(m)) != 0)
		goto out;
	memcpy(a->token, m->f.f[SP_F_TOKEN].ptr, 32);
	memcpy(a->session_id, m->f.f[SP_F_SESSION_ID].ptr, 16);
	{
		sp_keyset *ks;

		/* The vault we get back must open with our password. */
		if (sp_vault_open(m->f.f[SP_F_VAULT].ptr,
		    m->f.f[SP_F_VAULT].len, SP_VAULT_SLOT_PASSWORD,
		    lk->vault_key, &ks) != 0)
			rc = -2;
		else
			sp_keyset_destroy(ks);
	}
out:
	sp_client_msg_free(m);
	sp_login_keys_free(lk);
	return rc;
}

void
acct_free(struct acct *a)
{
	sp_keyset_destroy(a->ks);
	a->ks = NULL;
}
