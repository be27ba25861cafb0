/*
 * Shared parts of the `sealpost` command: option parsing, the password,
 * connecting, opening a session, progress.  Each command group lives in
 * its own cli_*.c file and is listed in sealpost.c's command table.
 * These functions print their own errors to stderr (this is a program,
 * not the library).
 */
#ifndef SP_CLIENT_CLI_H
#define SP_CLIENT_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "client-core/factors.h"
#include "client-core/session.h"
#include "client-core/sync_client.h"

#define CLI_ARGS_MAX 64

/* A command's own option: --name VALUE (value != NULL) or --name (flag). */
struct cli_opt {
	const char *name;        /* without "--" */
	const char **value;      /* set to the value, or NULL for a flag */
	int *flag;               /* set to 1 for a flag */
};

struct cli {
	char host[256];
	int port;                /* 0 = not given */
	const char *ca_file, *address, *invite, *password_file, *cache_dir;
	int plain;
	int no_pull;             /* --no-pull: act on the local state */
	uint32_t kdf_ops, kdf_mem_kib;
	/* Second factor for a login: --fido2-device PATH, --totp CODE (or
	 * $SEALPOST_TOTP), --recovery-code CODE, else a prompt when stdin
	 * is a terminal; sf is what cli_parse made of them. */
	const char *totp, *recovery_code, *fido2_device;
	struct sp_second_factor sf;
	const char *args[CLI_ARGS_MAX];  /* positional arguments */
	int nargs;
};

/*
 * Parses the common options (--server HOST:PORT, --ca, --plain,
 * --address, --invite, --password-file, --cache DIR (default
 * $SEALPOST_CACHE), --no-pull (act on the model as it is locally,
 * without pulling first; the change still syncs), --kdf-ops, --kdf-mem-mib,
 * --totp, --recovery-code, --fido2-device), the command's own options
 * (opts, terminated by a {NULL} entry; may be NULL) and positional
 * arguments.  Returns 0, or -1 after printing why.
 */
int cli_parse(struct cli *o, int argc, char **argv,
    const struct cli_opt *opts);

/* The password in sodium_malloc memory (sodium_free it): from
 * --password-file, $SEALPOST_PASSWORD, or a prompt on the terminal. */
char *cli_password(const struct cli *o, size_t *len_r);

/* Connects to --server (TLS unless --plain). */
sp_client *cli_connect(const struct cli *o);

/* Opens the account whose cache is --cache (password as above), pulling
 * the log first unless no_sync; a progress bar on a terminal. */
sp_session *cli_session(const struct cli *o, int no_sync);
/* The same, pulling first unless --no-pull was given. */
#define cli_session_mail(o) cli_session((o), (o)->no_pull)

/* The progress bar (stderr, when it is a terminal). */
void cli_progress(void *arg, uint64_t done, uint64_t total);

/* Command groups: argc/argv start after the command word.  Exit status:
 * 0 ok, 1 failure, 2 usage. */
int cmd_account(int argc, char **argv);   /* cli_account.c */
int cmd_2fa(int argc, char **argv);       /* cli_factors.c */
int cmd_events(int argc, char **argv);
int cmd_sync(int argc, char **argv);      /* cli_mail.c */
int cmd_ls(int argc, char **argv);
int cmd_read(int argc, char **argv);
int cmd_mv(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_flag(int argc, char **argv);
int cmd_folder(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_compact(int argc, char **argv);
int cmd_send(int argc, char **argv);      /* cli_send.c */
int cmd_keys(int argc, char **argv);      /* cli_keys.c */
int cmd_fingerprint(int argc, char **argv);

/* After sp_mbox_body() said SP_MBOX_SIG_VALID: is the signer the pinned
 * key of the body's From: (pinning it on first use)?  Prints the verdict
 * on stderr; 0 when it is, 1 when not (cli_keys.c). */
int cli_check_signer(sp_session *s, const uint8_t *body, size_t len,
    const uint8_t signer_pk[32]);

#endif
