/*
 * OpenPGP through GPGME: one private GNUPGHOME per handle, keys imported
 * for the length of one call and deleted again.  See pgp.h for the model.
 *
 * Rejected alternatives:
 * - a fresh home per call: just as many gpg processes (the agent starts
 *   and is killed every time), and no cheaper to get right;
 * - deleting pubring.kbx and private-keys-v1.d/ by hand between calls: ties
 *   us to one GnuPG storage layout (2.4 may use keyboxd instead);
 * - calling gpg directly: GPGME already speaks its status protocol.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gpgme.h>
#include <sodium.h>

#include "crypto/pgp.h"

extern char **environ;

/*
 * One GPGME context for the handle's life: setting a home on a new context
 * runs `gpg --version` again, a process per call saved.
 */
struct sp_pgp {
	char *home;	 /* our GNUPGHOME, made by mkdtemp() */
	gpgme_ctx_t ctx; /* engine home set to home */
	bool broken;	 /* a key could not be deleted: refuse further work */
};

/* A key one call brought in; key is a reference when we have one. */
struct pgp_in {
	char *fpr;
	gpgme_key_t key;
};

/* One call: the handle's context and the keys it brought in. */
struct pgp_op {
	sp_pgp *pgp;
	gpgme_ctx_t ctx;
	struct pgp_in *in; /* deleted again by op_end() */
	size_t nin;
	size_t capin;
};

/* Collects what gpg writes, in memory we can wipe (GPGME's own cannot). */
struct pgp_sink {
	unsigned char *buf;
	size_t len;
	size_t cap;
	bool secure; /* sodium_malloc(), for secret keys */
};

/* Written into the home before gpg first runs. */
static const char gpg_conf[] = "trust-model always\n"
			       "disable-dirmngr\n"
			       "auto-key-locate local\n"
			       "no-auto-key-retrieve\n"
			       "no-symkey-cache\n"
			       "no-greeting\n";

/*
 * No pinentry can ever appear: the agent's pinentry is /bin/false, and
 * loopback (our callback, which always refuses) is how GPGME asks instead.
 * Loopback must also be allowed for DELETE_KEY --force to skip its
 * confirmation.
 */
static const char agent_conf[] = "pinentry-program /bin/false\n"
				 "allow-loopback-pinentry\n"
				 "no-allow-external-cache\n"
				 "disable-scdaemon\n";

/* Longest socket name gpg-agent creates in its home. */
#define PGP_SOCKET_NAME "/S.gpg-agent.browser"

static pthread_once_t pgp_once = PTHREAD_ONCE_INIT;
static int pgp_init_rc = SP_EPGP;

static void
pgp_init_once(void)
{
	/* sodium_malloc() aborts before sodium_init(); callers may forget. */
	if (sodium_init() < 0) {
		pgp_init_rc = SP_ECRYPTO;
		return;
	}
	/* Also sets SIGPIPE to SIG_IGN, as documented in pgp.h. */
	if (gpgme_check_version(GPGME_VERSION) == NULL) {
		pgp_init_rc = SP_EVERSION;
		return;
	}
	if (gpgme_engine_check_version(GPGME_PROTOCOL_OpenPGP) != 0) {
		pgp_init_rc = SP_EVERSION;
		return;
	}
	pgp_init_rc = 0;
}

static int
pgp_init(void)
{
	if (pthread_once(&pgp_once, pgp_init_once) != 0)
		return SP_EPGP;
	return pgp_init_rc;
}

const char *
sp_pgp_version(void)
{
	(void)pgp_init();
	return gpgme_check_version(NULL);
}

/*
 * GPGME's error to ours.  The same gpg error means different things in
 * different places (NO_SECKEY: wrong key to decrypt, or no secret key to
 * sign), so callers override where they know better.
 */
static int
pgp_err(gpgme_error_t err)
{
	gpgme_err_code_t code = gpgme_err_code(err);

	if (code == GPG_ERR_NO_ERROR)
		return 0;
	if (code & GPG_ERR_SYSTEM_ERROR) {
		int e = gpgme_err_code_to_errno(code);

		return e == ENOMEM ? SP_ENOMEM : e > 0 ? e : SP_EPGP;
	}
	switch (code) {
	case GPG_ERR_NO_DATA:
	case GPG_ERR_INV_DATA:
	case GPG_ERR_BAD_DATA:
	case GPG_ERR_INV_PACKET:
	case GPG_ERR_INV_ARMOR:
	case GPG_ERR_UNKNOWN_PACKET:
		return SP_EFORMAT;
	case GPG_ERR_UNSUPPORTED_ALGORITHM:
	case GPG_ERR_PUBKEY_ALGO:
	case GPG_ERR_CIPHER_ALGO:
	case GPG_ERR_DIGEST_ALGO:
		return SP_EVERSION;
	case GPG_ERR_NO_SECKEY:
		return SP_ENOKEY;
	case GPG_ERR_DECRYPT_FAILED:
	case GPG_ERR_BAD_MPI:
		return SP_EAUTH;
	case GPG_ERR_BAD_SIGNATURE:
		return SP_ESIG;
	case GPG_ERR_CERT_REVOKED:
		return SP_EKEYREVOKED;
	case GPG_ERR_KEY_EXPIRED:
	case GPG_ERR_CERT_EXPIRED:
		return SP_EKEYEXPIRED;
	default:
		return SP_EPGP;
	}
}

/* ---- the GPGME context ---- */

static gpgme_error_t
refuse_passphrase(void *hook, const char *uid_hint, const char *info,
    int prev_was_bad, int fd)
{
	(void)hook;
	(void)uid_hint;
	(void)info;
	(void)prev_was_bad;
	(void)fd;
	return gpg_error(GPG_ERR_CANCELED);
}

static int
ctx_create(const char *home, gpgme_ctx_t *ctx_r)
{
	gpgme_ctx_t ctx;
	gpgme_error_t err;

	if ((err = gpgme_new(&ctx)) != 0)
		return pgp_err(err);
	if ((err = gpgme_set_protocol(ctx, GPGME_PROTOCOL_OpenPGP)) ||
	    (err = gpgme_ctx_set_engine_info(
		 ctx, GPGME_PROTOCOL_OpenPGP, NULL, home)) ||
	    (err = gpgme_set_pinentry_mode(
		 ctx, GPGME_PINENTRY_MODE_LOOPBACK)) ||
	    (err = gpgme_set_keylist_mode(ctx, GPGME_KEYLIST_MODE_LOCAL))) {
		gpgme_release(ctx);
		return pgp_err(err);
	}
	gpgme_set_passphrase_cb(ctx, refuse_passphrase, NULL);
	gpgme_set_offline(ctx, 1);
	*ctx_r = ctx;
	return 0;
}

/* ---- the home directory ---- */

/* Deletes name (relative to dfd) and everything below it, no symlinks. */
static int
rm_tree_at(int dfd, const char *name)
{
	DIR *d;
	struct dirent *de;
	int fd, rc = 0, r;
	size_t removed;

	if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return errno;
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno;
	if ((d = fdopendir(fd)) == NULL) {
		rc = errno;
		close(fd);
		return rc;
	}
	/* Entries removed while reading may hide others: pass until empty. */
	do {
		removed = 0;
		rewinddir(d);
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			if ((r = rm_tree_at(dirfd(d), de->d_name)) != 0)
				rc = rc ? rc : r;
			else
				removed++;
		}
	} while (removed > 0 && rc == 0);
	closedir(d);
	if (unlinkat(dfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
		rc = rc ? rc : errno;
	return rc;
}

static int
write_file_at(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX];
	size_t len = strlen(text), off = 0;
	ssize_t n;
	int fd, rc = 0;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    sizeof(path))
		return ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno;
	while (off < len) {
		if ((n = write(fd, text + off, len - off)) < 0) {
			if (errno == EINTR)
				continue;
			rc = errno;
			break;
		}
		off += (size_t)n;
	}
	if (close(fd) != 0 && rc == 0)
		rc = errno;
	return rc;
}

int
sp_pgp_create(sp_pgp **pgp_r)
{
	const char *base = getenv("TMPDIR");
	struct sockaddr_un sun;
	sp_pgp *pgp;
	size_t len;
	int rc;

	if (pgp_r == NULL)
		return SP_EINVAL;
	*pgp_r = NULL;
	if ((rc = pgp_init()) != 0)
		return rc;
	if (base == NULL || base[0] != '/')
		base = "/tmp";
	/* The agent's sockets live in the home: their paths must fit. */
	len = strlen(base) + strlen("/sp-pgp-XXXXXX");
	if (len + strlen(PGP_SOCKET_NAME) >= sizeof(sun.sun_path))
		return ENAMETOOLONG;

	if ((pgp = calloc(1, sizeof(*pgp))) == NULL)
		return SP_ENOMEM;
	if ((pgp->home = malloc(len + 1)) == NULL) {
		rc = SP_ENOMEM;
		goto out_free_pgp;
	}
	(void)snprintf(pgp->home, len + 1, "%s/sp-pgp-XXXXXX", base);
	if (mkdtemp(pgp->home) == NULL) {
		rc = errno;
		goto out_free_home;
	}
	if ((rc = write_file_at(pgp->home, "gpg.conf", gpg_conf)) != 0 ||
	    (rc = write_file_at(pgp->home, "gpg-agent.conf", agent_conf)) != 0)
		goto out_rm_home;
	if ((rc = ctx_create(pgp->home, &pgp->ctx)) != 0)
		goto out_rm_home;
	*pgp_r = pgp;
	return 0;

out_rm_home:
	(void)rm_tree_at(AT_FDCWD, pgp->home);
out_free_home:
	free(pgp->home);
out_free_pgp:
	free(pgp);
	return rc;
}

/* Runs `gpgconf --homedir HOME --kill all` with no shell and no output. */
static int
kill_agent(char *home)
{
	const char *gpgconf = gpgme_get_dirinfo("gpgconf-name");
	/* posix_spawn() wants char *const[]: give it writable strings. */
	char a0[] = "gpgconf", a1[] = "--homedir", a3[] = "--kill",
	     a4[] = "all";
	char *const argv[] = {a0, a1, home, a3, a4, NULL};
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int rc, status;

	if (gpgconf == NULL)
		return ENOENT;
	if ((rc = posix_spawn_file_actions_init(&fa)) != 0)
		return rc;
	if ((rc = posix_spawn_file_actions_addopen(
		 &fa, 0, "/dev/null", O_RDONLY, 0)) != 0 ||
	    (rc = posix_spawn_file_actions_addopen(
		 &fa, 1, "/dev/null", O_WRONLY, 0)) != 0 ||
	    (rc = posix_spawn_file_actions_adddup2(&fa, 1, 2)) != 0)
		goto out_fa;
	if ((rc = posix_spawn(&pid, gpgconf, &fa, NULL, argv, environ)) != 0)
		goto out_fa;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			rc = errno;
			goto out_fa;
		}
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		rc = ECHILD;
out_fa:
	posix_spawn_file_actions_destroy(&fa);
	return rc;
}

/*
 * The agent removes its socket as it exits, after gpgconf has returned:
 * wait up to a second for that, so no agent outlives sp_pgp_destroy().
 */
static void
wait_agent_gone(const char *home)
{
	char path[PATH_MAX];
	struct timespec ts = {0, 5 * 1000 * 1000};
	int i;

	if ((size_t)snprintf(path, sizeof(path), "%s/S.gpg-agent", home) >=
	    sizeof(path))
		return;
	for (i = 0; i < 200 && access(path, F_OK) == 0; i++)
		(void)nanosleep(&ts, NULL);
}

int
sp_pgp_destroy(sp_pgp *pgp)
{
	int rc, r;

	if (pgp == NULL)
		return 0;
	gpgme_release(pgp->ctx);
	rc = kill_agent(pgp->home);
	wait_agent_gone(pgp->home);
	if ((r = rm_tree_at(AT_FDCWD, pgp->home)) != 0)
		rc = r;
	free(pgp->home);
	free(pgp);
	return rc;
}

/* ---- GPGME data ---- */

static ssize_t
sink_write(void *handle, const void *buf, size_t n)
{
	struct pgp_sink *s = handle;
	unsigned char *nbuf;
	size_t ncap;

	if (n > SIZE_MAX - s->len) {
		errno = ENOMEM;
		return -1;
	}
	if (s->len + n > s->cap) {
		ncap = s->cap < 4096 ? 4096 : s->cap;
		while (ncap < s->len + n)
			ncap = ncap > SIZE_MAX / 2 ? s->len + n : ncap * 2;
		/* Never realloc(): it would leave an unwiped copy behind. */
		nbuf = s->secure ? sodium_malloc(ncap) : malloc(ncap);
		if (nbuf == NULL) {
			errno = ENOMEM;
			return -1;
		}
		if (s->len > 0)
			memcpy(nbuf, s->buf, s->len);
		if (s->secure) {
			sodium_free(s->buf);
		} else if (s->buf != NULL) {
			sodium_memzero(s->buf, s->cap);
			free(s->buf);
		}
		s->buf = nbuf;
		s->cap = ncap;
	}
	memcpy(s->buf + s->len, buf, n);
	s->len += n;
	return (ssize_t)n;
}

static off_t
sink_seek(void *handle, off_t off, int whence)
{
	(void)handle;
	(void)off;
	(void)whence;
	errno = ESPIPE;
	return -1;
}

/* Not const: GPGME's prototype takes a plain pointer. */
static struct gpgme_data_cbs sink_cbs = {
    .read = NULL,
    .write = sink_write,
    .seek = sink_seek,
    .release = NULL,
};

static void
sink_wipe(struct pgp_sink *s)
{
	if (s->secure) {
		sodium_free(s->buf);
	} else if (s->buf != NULL) {
		sodium_memzero(s->buf, s->cap);
		free(s->buf);
	}
	s->buf = NULL;
	s->len = s->cap = 0;
}

/*
 * Hands the collected bytes to the caller.  Secret bytes move into an
 * exact-size sodium_malloc() block so its guard page sits right behind
 * them; an empty result is still a non-NULL allocation.
 */
static int
sink_take(struct pgp_sink *s, unsigned char **out_r, size_t *len_r)
{
	unsigned char *out;

	if (s->secure || s->buf == NULL) {
		out =
		    s->secure ? sodium_malloc(s->len ? s->len : 1) : malloc(1);
		if (out == NULL)
			return SP_ENOMEM;
		if (s->len > 0)
			memcpy(out, s->buf, s->len);
		*len_r = s->len;
		sink_wipe(s);
		*out_r = out;
		return 0;
	}
	if (s->cap > s->len)
		sodium_memzero(s->buf + s->len, s->cap - s->len);
	*out_r = s->buf;
	*len_r = s->len;
	s->buf = NULL;
	s->len = s->cap = 0;
	return 0;
}

static int
data_in(gpgme_data_t *d_r, const void *buf, size_t len)
{
	/* copy = 0: GPGME reads the caller's bytes in place. */
	return pgp_err(gpgme_data_new_from_mem(d_r, buf, len, 0));
}

static int
data_out(gpgme_data_t *d_r, struct pgp_sink *s)
{
	return pgp_err(gpgme_data_new_from_cbs(d_r, &sink_cbs, s));
}

/* ---- one operation ---- */

/*
 * The one key matching pattern (a fingerprint or key id), like
 * gpgme_get_key() but on our context: gpgme_get_key() clones the context,
 * which costs a `gpg --version`.  pattern must not point into a GPGME
 * result of ctx: starting the listing frees those.
 */
static int
get_key(gpgme_ctx_t ctx, const char *pattern, bool secret, gpgme_key_t *key_r)
{
	gpgme_key_t key = NULL, extra = NULL;
	gpgme_error_t err;
	int rc = 0;

	*key_r = NULL;
	if ((err = gpgme_op_keylist_start(ctx, pattern, secret)) != 0)
		return pgp_err(err);
	if ((err = gpgme_op_keylist_next(ctx, &key)) != 0)
		rc =
		    gpgme_err_code(err) == GPG_ERR_EOF ? SP_EPGP : pgp_err(err);
	else if (gpgme_op_keylist_next(ctx, &extra) == 0)
		rc = SP_EPGP; /* ambiguous */
	(void)gpgme_op_keylist_end(ctx);
	gpgme_key_unref(extra);
	if (rc != 0) {
		gpgme_key_unref(key);
		return rc;
	}
	*key_r = key;
	return 0;
}

static int
op_begin(sp_pgp *pgp, struct pgp_op *op)
{
	memset(op, 0, sizeof(*op));
	if (pgp == NULL)
		return SP_EINVAL;
	if (pgp->broken)
		return SP_EPGP;
	op->pgp = pgp;
	op->ctx = pgp->ctx;
	gpgme_signers_clear(op->ctx);
	gpgme_set_armor(op->ctx, 0);
	return 0;
}

/* Remembers fpr (and a reference to key, if given) for op_end(). */
static int
op_track(struct pgp_op *op, const char *fpr, gpgme_key_t key)
{
	struct pgp_in *nin;
	size_t i;

	for (i = 0; i < op->nin; i++)
		if (strcmp(op->in[i].fpr, fpr) == 0)
			break;
	if (i == op->nin) {
		if (op->nin == op->capin) {
			nin = reallocarray(op->in,
			    op->capin ? op->capin * 2 : 4, sizeof(*nin));
			if (nin == NULL)
				return SP_ENOMEM;
			op->in = nin;
			op->capin = op->capin ? op->capin * 2 : 4;
		}
		if ((op->in[i].fpr = strdup(fpr)) == NULL)
			return SP_ENOMEM;
		op->in[i].key = NULL;
		op->nin++;
	}
	if (key != NULL && op->in[i].key == NULL) {
		gpgme_key_ref(key);
		op->in[i].key = key;
	}
	return 0;
}

/*
 * Deletes every key the call brought in.  The call's own result stands
 * either way; a key left behind only poisons the handle for later calls.
 */
static void
op_end(struct pgp_op *op)
{
	const unsigned del = GPGME_DELETE_ALLOW_SECRET | GPGME_DELETE_FORCE;
	struct pgp_in *in;
	size_t i;

	for (i = 0; i < op->nin; i++) {
		in = &op->in[i];
		if (in->key == NULL &&
		    get_key(op->ctx, in->fpr, false, &in->key) != 0)
			op->pgp->broken = true;
		else if (gpgme_op_delete_ext(op->ctx, in->key, del) != 0)
			op->pgp->broken = true;
		gpgme_key_unref(in->key);
		free(in->fpr);
	}
	free(op->in);
	memset(op, 0, sizeof(*op));
}

/*
 * Imports one key block, which must hold exactly one certificate, and
 * returns that certificate (*key_r, the caller unrefs it) with its secret
 * part if the block had one.
 */
static int
op_import(struct pgp_op *op, const void *buf, size_t len, gpgme_key_t *key_r)
{
	gpgme_data_t d;
	gpgme_import_result_t res;
	gpgme_import_status_t st;
	const char *fpr = NULL;
	char pattern[SP_PGP_FPR_SIZE];
	bool secret = false;
	int rc;

	*key_r = NULL;
	if (buf == NULL || len == 0)
		return SP_EINVAL;
	if ((rc = data_in(&d, buf, len)) != 0)
		return rc;
	rc = pgp_err(gpgme_op_import(op->ctx, d));
	gpgme_data_release(d);
	if (rc != 0)
		return rc == SP_EPGP ? SP_EFORMAT : rc;
	if ((res = gpgme_op_import_result(op->ctx)) == NULL)
		return SP_EPGP;
	/* Track everything first: what got in must come out again. */
	for (st = res->imports; st != NULL; st = st->next)
		if (st->result == 0 && st->fpr != NULL &&
		    (rc = op_track(op, st->fpr, NULL)) != 0)
			return rc;
	for (st = res->imports; st != NULL; st = st->next) {
		if (st->result != 0 || st->fpr == NULL)
			continue;
		if (fpr != NULL && strcmp(fpr, st->fpr) != 0)
			return SP_EFORMAT;
		fpr = st->fpr;
		if (st->status & GPGME_IMPORT_SECRET)
			secret = true;
	}
	if (fpr == NULL || res->not_imported > 0 ||
	    strlen(fpr) >= sizeof(pattern))
		return SP_EFORMAT;
	memcpy(pattern, fpr, strlen(fpr) + 1);
	if ((rc = get_key(op->ctx, pattern, secret, key_r)) != 0)
		return rc == SP_EPGP ? SP_EFORMAT : rc;
	if ((rc = op_track(op, pattern, *key_r)) != 0) {
		gpgme_key_unref(*key_r);
		*key_r = NULL;
	}
	return rc;
}

/* Whether key can take part in encryption now, and if not, why not. */
static int
check_encrypt_key(gpgme_key_t key)
{
	gpgme_subkey_t sk;
	bool revoked = false, expired = false;

	if (key->revoked)
		return SP_EKEYREVOKED;
	if (key->expired)
		return SP_EKEYEXPIRED;
	if (key->disabled || key->invalid)
		return SP_EPGP;
	if (key->can_encrypt)
		return 0;
	for (sk = key->subkeys; sk != NULL; sk = sk->next) {
		if (!sk->can_encrypt)
			continue;
		revoked |= sk->revoked;
		expired |= sk->expired;
	}
	return revoked ? SP_EKEYREVOKED : expired ? SP_EKEYEXPIRED : SP_EPGP;
}

static int
check_sign_key(gpgme_key_t key)
{
	if (!key->secret)
		return SP_ENOKEY;
	if (key->revoked)
		return SP_EKEYREVOKED;
	if (key->expired)
		return SP_EKEYEXPIRED;
	if (key->disabled || key->invalid || !key->can_sign)
		return SP_EPGP;
	return 0;
}

static int
export_key(struct pgp_op *op, gpgme_key_t key, bool secret, unsigned flags,
    unsigned char **out_r, size_t *len_r)
{
	struct pgp_sink s = {.secure = secret};
	gpgme_key_t keys[2] = {key, NULL};
	gpgme_data_t d;
	int rc;

	if ((rc = data_out(&d, &s)) != 0)
		return rc;
	gpgme_set_armor(op->ctx, (flags & SP_PGP_ARMOR) != 0);
	rc = pgp_err(gpgme_op_export_keys(
	    op->ctx, keys, secret ? GPGME_EXPORT_MODE_SECRET : 0, d));
	gpgme_data_release(d);
	/* gpg exports nothing, successfully, when it cannot. */
	if (rc == 0 && s.len == 0)
		rc = SP_EPGP;
	if (rc == 0)
		rc = sink_take(&s, out_r, len_r);
	sink_wipe(&s);
	return rc;
}

/* ---- keys ---- */

static bool
valid_userid(const char *userid)
{
	const unsigned char *p = (const unsigned char *)userid;

	if (*p == '\0' || strlen(userid) > 1024)
		return false;
	for (; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

int
sp_pgp_key_generate(sp_pgp *pgp, const char *userid, uint64_t expires_s,
    unsigned flags, unsigned char **seckey_r, size_t *seckey_len_r)
{
	struct pgp_op op;
	gpgme_genkey_result_t res;
	gpgme_key_t key = NULL;
	char fpr[SP_PGP_FPR_SIZE];
	unsigned cflags = GPGME_CREATE_NOPASSWD;
	int rc;

	if (seckey_r == NULL || seckey_len_r == NULL)
		return SP_EINVAL;
	*seckey_r = NULL;
	*seckey_len_r = 0;
	if (userid == NULL || !valid_userid(userid) ||
	    (unsigned long)expires_s != expires_s ||
	    (flags & ~SP_PGP_ARMOR) != 0)
		return SP_EINVAL;
	if (expires_s == 0)
		cflags |= GPGME_CREATE_NOEXPIRE;
	if ((rc = op_begin(pgp, &op)) != 0)
		return rc;

	rc = pgp_err(gpgme_op_createkey(op.ctx, userid, "ed25519", 0,
	    (unsigned long)expires_s, NULL,
	    cflags | GPGME_CREATE_SIGN | GPGME_CREATE_CERT));
	if (rc != 0)
		goto out;
	res = gpgme_op_genkey_result(op.ctx);
	if (res == NULL || res->fpr == NULL ||
	    strlen(res->fpr) >= sizeof(fpr)) {
		rc = SP_EPGP;
		goto out;
	}
	memcpy(fpr, res->fpr, strlen(res->fpr) + 1);
	if ((rc = op_track(&op, fpr, NULL)) != 0 ||
	    (rc = get_key(op.ctx, fpr, true, &key)) != 0 ||
	    (rc = op_track(&op, fpr, key)) != 0)
		goto out;
	rc = pgp_err(gpgme_op_createsubkey(op.ctx, key, "cv25519", 0,
	    (unsigned long)expires_s, cflags | GPGME_CREATE_ENCR));
	if (rc != 0)
		goto out;
	rc = export_key(&op, key, true, flags, seckey_r, seckey_len_r);
out:
	gpgme_key_unref(key);
	op_end(&op);
	return rc;
}

int
sp_pgp_key_import(sp_pgp *pgp, const void *keyblock, size_t keyblock_len,
    unsigned flags, unsigned char **pubkey_r, size_t *pubkey_len_r,
    unsigned char **seckey_r, size_t *seckey_len_r)
{
	struct pgp_op op;
	gpgme_key_t key;
	int rc;

	if ((pubkey_r == NULL) != (pubkey_len_r == NULL) ||
	    (seckey_r == NULL) != (seckey_len_r == NULL))
		return SP_EINVAL;
	if (pubkey_r != NULL) {
		*pubkey_r = NULL;
		*pubkey_len_r = 0;
	}
	if (seckey_r != NULL) {
		*seckey_r = NULL;
		*seckey_len_r = 0;
	}
	if ((flags & ~SP_PGP_ARMOR) != 0)
		return SP_EINVAL;
	if ((rc = op_begin(pgp, &op)) != 0)
		return rc;
	if ((rc = op_import(&op, keyblock, keyblock_len, &key)) != 0)
		goto out;
	if (seckey_r != NULL && !key->secret)
		rc = SP_ENOKEY;
	if (rc == 0 && pubkey_r != NULL)
		rc = export_key(&op, key, false, flags, pubkey_r, pubkey_len_r);
	if (rc == 0 && seckey_r != NULL)
		rc = export_key(&op, key, true, flags, seckey_r, seckey_len_r);
	if (rc != 0 && pubkey_r != NULL) {
		free(*pubkey_r);
		*pubkey_r = NULL;
		*pubkey_len_r = 0;
	}
	gpgme_key_unref(key);
out:
	op_end(&op);
	return rc;
}

/* GPGME times are long (maybe 32 bits); negative means "unknown". */
static int64_t
key_time(long t)
{
	return t > 0 ? (int64_t)t : 0;
}

static char *
dup_or_empty(const char *s)
{
	return strdup(s != NULL ? s : "");
}

void
sp_pgp_keyinfo_free(struct sp_pgp_keyinfo *info)
{
	size_t i;

	if (info == NULL)
		return;
	for (i = 0; i < info->nuids; i++) {
		free(info->uids[i].uid);
		free(info->uids[i].name);
		free(info->uids[i].email);
	}
	free(info->uids);
	free(info);
}

static int
fill_keyinfo(gpgme_key_t key, struct sp_pgp_keyinfo *info)
{
	gpgme_user_id_t u;
	size_t n = 0;

	if (key->fpr == NULL || strlen(key->fpr) >= sizeof(info->fpr))
		return SP_EFORMAT;
	memcpy(info->fpr, key->fpr, strlen(key->fpr) + 1);
	if (key->subkeys != NULL) {
		info->created = key_time(key->subkeys->timestamp);
		info->expires = key_time(key->subkeys->expires);
	}
	info->revoked = key->revoked;
	info->expired = key->expired;
	info->secret = key->secret;
	info->can_encrypt = key->can_encrypt && !key->revoked && !key->expired;
	info->can_sign = key->can_sign && !key->revoked && !key->expired;
	for (u = key->uids; u != NULL; u = u->next)
		n++;
	if (n > 0 && (info->uids = calloc(n, sizeof(*info->uids))) == NULL)
		return SP_ENOMEM;
	for (u = key->uids; u != NULL; u = u->next) {
		struct sp_pgp_uid *o = &info->uids[info->nuids++];

		o->revoked = u->revoked;
		if ((o->uid = dup_or_empty(u->uid)) == NULL ||
		    (o->name = dup_or_empty(u->name)) == NULL ||
		    (o->email = dup_or_empty(u->email)) == NULL)
			return SP_ENOMEM;
	}
	return 0;
}

int
sp_pgp_key_info(sp_pgp *pgp, const void *keyblock, size_t keyblock_len,
    struct sp_pgp_keyinfo **info_r)
{
	struct sp_pgp_keyinfo *info;
	struct pgp_op op;
	gpgme_key_t key;
	int rc;

	if (info_r == NULL)
		return SP_EINVAL;
	*info_r = NULL;
	if ((info = calloc(1, sizeof(*info))) == NULL)
		return SP_ENOMEM;
	if ((rc = op_begin(pgp, &op)) != 0)
		goto out_free;
	if ((rc = op_import(&op, keyblock, keyblock_len, &key)) == 0) {
		rc = fill_keyinfo(key, info);
		gpgme_key_unref(key);
	}
	op_end(&op);
	if (rc != 0)
		goto out_free;
	*info_r = info;
	return 0;

out_free:
	sp_pgp_keyinfo_free(info);
	return rc;
}

/* ---- messages ---- */

/* Imports a list of certificates into keys[] (NULL-terminated). */
static int
op_import_list(struct pgp_op *op, const struct sp_pgp_buf *bufs, size_t n,
    gpgme_key_t *keys)
{
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		rc = op_import(op, bufs[i].data, bufs[i].len, &keys[i]);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static void
unref_list(gpgme_key_t *keys, size_t n)
{
	size_t i;

	if (keys == NULL)
		return;
	for (i = 0; i < n; i++)
		gpgme_key_unref(keys[i]);
	free(keys);
}

/* What gpg says about recipients or signers it would not use. */
static int
invalid_key_err(gpgme_invalid_key_t inv)
{
	int rc;

	if (inv == NULL)
		return 0;
	rc = pgp_err(inv->reason);
	return rc != 0 ? rc : SP_EPGP;
}

int
sp_pgp_encrypt(sp_pgp *pgp, const struct sp_pgp_buf *rcpts, size_t nrcpts,
    const void *signer_seckey, size_t signer_seckey_len, const void *msg,
    size_t msg_len, unsigned flags, unsigned char **out_r, size_t *out_len_r)
{
	struct pgp_sink s = {.secure = false};
	struct pgp_op op;
	gpgme_key_t *keys = NULL, signer = NULL;
	gpgme_data_t din = NULL, dout = NULL;
	gpgme_encrypt_result_t eres;
	gpgme_sign_result_t sres;
	gpgme_encrypt_flags_t eflags =
	    GPGME_ENCRYPT_ALWAYS_TRUST | GPGME_ENCRYPT_NO_ENCRYPT_TO;
	size_t i;
	int rc;

	if (out_r == NULL || out_len_r == NULL)
		return SP_EINVAL;
	*out_r = NULL;
	*out_len_r = 0;
	if (rcpts == NULL || nrcpts == 0 || nrcpts > 1024 ||
	    (msg == NULL && msg_len > 0) || (flags & ~SP_PGP_ARMOR) != 0)
		return SP_EINVAL;
	if ((rc = op_begin(pgp, &op)) != 0)
		return rc;
	if ((keys = calloc(nrcpts + 1, sizeof(*keys))) == NULL) {
		rc = SP_ENOMEM;
		goto out;
	}
	if ((rc = op_import_list(&op, rcpts, nrcpts, keys)) != 0)
		goto out;
	for (i = 0; i < nrcpts; i++)
		if ((rc = check_encrypt_key(keys[i])) != 0)
			goto out;
	if (signer_seckey != NULL) {
		if ((rc = op_import(&op, signer_seckey, signer_seckey_len,
			 &signer)) != 0 ||
		    (rc = check_sign_key(signer)) != 0 ||
		    (rc = pgp_err(gpgme_signers_add(op.ctx, signer))) != 0)
			goto out;
	}

	if ((rc = data_in(&din, msg_len ? msg : "", msg_len)) != 0 ||
	    (rc = data_out(&dout, &s)) != 0)
		goto out;
	gpgme_set_armor(op.ctx, (flags & SP_PGP_ARMOR) != 0);
	if (signer != NULL)
		rc = pgp_err(
		    gpgme_op_encrypt_sign(op.ctx, keys, eflags, din, dout));
	else
		rc = pgp_err(gpgme_op_encrypt(op.ctx, keys, eflags, din, dout));
	/* The per-key reasons say more than the overall error. */
	eres = gpgme_op_encrypt_result(op.ctx);
	if (eres != NULL && eres->invalid_recipients != NULL)
		rc = invalid_key_err(eres->invalid_recipients);
	sres = signer != NULL ? gpgme_op_sign_result(op.ctx) : NULL;
	if (rc == 0 && sres != NULL && sres->invalid_signers != NULL)
		rc = invalid_key_err(sres->invalid_signers);
	if (rc == 0 && signer != NULL &&
	    (sres == NULL || sres->signatures == NULL))
		rc = SP_EPGP;
	if (rc == 0)
		rc = sink_take(&s, out_r, out_len_r);
out:
	gpgme_data_release(din);
	gpgme_data_release(dout);
	sink_wipe(&s);
	gpgme_key_unref(signer);
	unref_list(keys, nrcpts);
	op_end(&op);
	return rc;
}

static void
copy_fpr(char dst[SP_PGP_FPR_SIZE], const char *src)
{
	size_t n = src != NULL ? strlen(src) : 0;

	if (n >= SP_PGP_FPR_SIZE)
		n = 0;
	memcpy(dst, src != NULL ? src : "", n);
	dst[n] = '\0';
}

static int
sig_status(gpgme_signature_t sig)
{
	switch (gpgme_err_code(sig->status)) {
	case GPG_ERR_NO_ERROR:
		return SP_PGP_SIG_GOOD;
	case GPG_ERR_NO_PUBKEY:
		return SP_PGP_SIG_UNKNOWN_KEY;
	case GPG_ERR_KEY_EXPIRED:
	case GPG_ERR_SIG_EXPIRED:
		return SP_PGP_SIG_EXPIRED;
	case GPG_ERR_CERT_REVOKED:
		return SP_PGP_SIG_KEY_REVOKED;
	default:
		/* BAD_SIGNATURE, or an error checking it: not good. */
		return SP_PGP_SIG_BAD;
	}
}

/*
 * Picks the verdict over all signatures.  The enum is ordered so that a
 * larger value wins: BAD over GOOD over KEY_REVOKED over EXPIRED over
 * UNKNOWN_KEY over NONE; the first signature wins a tie.
 */
static int
fill_sig(struct pgp_op *op, gpgme_verify_result_t vres, struct sp_pgp_sig *out)
{
	gpgme_signature_t sig, best = NULL;
	gpgme_key_t key;
	unsigned i = 0;
	int st, best_st = SP_PGP_SIG_NONE;

	memset(out, 0, sizeof(*out));
	for (sig = vres != NULL ? vres->signatures : NULL; sig != NULL;
	     sig = sig->next, i++) {
		st = sig_status(sig);
		if (best == NULL || st > best_st) {
			best = sig;
			best_st = st;
			out->index = i;
		}
	}
	out->nsigs = i;
	out->status = best_st;
	if (best == NULL)
		return 0;
	out->created = key_time(best->timestamp);
	copy_fpr(out->fpr, best->fpr);
	/* The listing below frees vres: only out->fpr from here on. */
	if (best_st == SP_PGP_SIG_UNKNOWN_KEY || out->fpr[0] == '\0')
		return 0;
	/* BADSIG names only a key id; the keyring knows the rest. */
	if (get_key(op->ctx, out->fpr, false, &key) == 0) {
		gpgme_subkey_t sk;
		char *want = out->fpr;

		copy_fpr(out->primary_fpr, key->fpr);
		for (sk = key->subkeys; sk != NULL; sk = sk->next)
			if (sk->fpr != NULL && sk->keyid != NULL &&
			    (strcasecmp(sk->fpr, want) == 0 ||
				strcasecmp(sk->keyid, want) == 0)) {
				copy_fpr(out->fpr, sk->fpr);
				break;
			}
		gpgme_key_unref(key);
	}
	return 0;
}

static int
check_signers(const struct sp_pgp_buf *signers, size_t nsigners)
{
	if ((signers == NULL && nsigners > 0) || nsigners > 1024)
		return SP_EINVAL;
	return 0;
}

int
sp_pgp_decrypt(sp_pgp *pgp, const void *seckey, size_t seckey_len,
    const struct sp_pgp_buf *signers, size_t nsigners, const void *in,
    size_t in_len, unsigned char **plain_r, size_t *plain_len_r,
    struct sp_pgp_sig *sig_r)
{
	struct pgp_sink s = {.secure = false};
	struct pgp_op op;
	gpgme_key_t *keys = NULL, key = NULL;
	gpgme_data_t din = NULL, dout = NULL;
	gpgme_decrypt_result_t dres;
	int rc;

	if (plain_r == NULL || plain_len_r == NULL || sig_r == NULL)
		return SP_EINVAL;
	*plain_r = NULL;
	*plain_len_r = 0;
	memset(sig_r, 0, sizeof(*sig_r));
	if (seckey == NULL || in == NULL || in_len == 0 ||
	    (rc = check_signers(signers, nsigners)) != 0)
		return SP_EINVAL;
	if ((rc = op_begin(pgp, &op)) != 0)
		return rc;
	if ((keys = calloc(nsigners + 1, sizeof(*keys))) == NULL) {
		rc = SP_ENOMEM;
		goto out;
	}
	if ((rc = op_import(&op, seckey, seckey_len, &key)) != 0 ||
	    (rc = op_import_list(&op, signers, nsigners, keys)) != 0)
		goto out;
	if (!key->secret) {
		rc = SP_ENOKEY;
		goto out;
	}

	if ((rc = data_in(&din, in, in_len)) != 0 ||
	    (rc = data_out(&dout, &s)) != 0)
		goto out;
	rc = pgp_err(gpgme_op_decrypt_verify(op.ctx, din, dout));
	dres = gpgme_op_decrypt_result(op.ctx);
	/* Without a MDC the ciphertext is malleable: not authentic. */
	if (rc == 0 && (dres == NULL || dres->legacy_cipher_nomdc))
		rc = SP_EAUTH;
	if (rc == 0 && dres->unsupported_algorithm != NULL)
		rc = SP_EVERSION;
	if (rc != 0)
		goto out;
	(void)fill_sig(&op, gpgme_op_verify_result(op.ctx), sig_r);
	if (sig_r->status == SP_PGP_SIG_BAD)
		rc = SP_ESIG;
	else
		rc = sink_take(&s, plain_r, plain_len_r);
out:
	gpgme_data_release(din);
	gpgme_data_release(dout);
	sink_wipe(&s);
	gpgme_key_unref(key);
	unref_list(keys, nsigners);
	op_end(&op);
	return rc;
}

int
sp_pgp_verify(sp_pgp *pgp, const struct sp_pgp_buf *signers, size_t nsigners,
    const void *in, size_t in_len, const void *data, size_t data_len,
    unsigned char **plain_r, size_t *plain_len_r, struct sp_pgp_sig *sig_r)
{
	struct pgp_sink s = {.secure = false};
	struct pgp_op op;
	gpgme_key_t *keys = NULL;
	gpgme_data_t din = NULL, dtext = NULL, dout = NULL;
	bool detached = data != NULL;
	int rc;

	if (sig_r == NULL || (plain_r == NULL) != (plain_len_r == NULL))
		return SP_EINVAL;
	memset(sig_r, 0, sizeof(*sig_r));
	if (plain_r != NULL) {
		*plain_r = NULL;
		*plain_len_r = 0;
	}
	if (in == NULL || in_len == 0 || detached != (plain_r == NULL) ||
	    (rc = check_signers(signers, nsigners)) != 0)
		return SP_EINVAL;
	if ((rc = op_begin(pgp, &op)) != 0)
		return rc;
	if ((keys = calloc(nsigners + 1, sizeof(*keys))) == NULL) {
		rc = SP_ENOMEM;
		goto out;
	}
	if ((rc = op_import_list(&op, signers, nsigners, keys)) != 0)
		goto out;

	if ((rc = data_in(&din, in, in_len)) != 0)
		goto out;
	if (detached)
		rc = data_in(&dtext, data_len ? data : "", data_len);
	else
		rc = data_out(&dout, &s);
	if (rc != 0)
		goto out;
	if ((rc = pgp_err(gpgme_op_verify(op.ctx, din, dtext, dout))) != 0)
		goto out;
	(void)fill_sig(&op, gpgme_op_verify_result(op.ctx), sig_r);
	if (sig_r->status == SP_PGP_SIG_BAD)
		rc = SP_ESIG;
	else if (sig_r->status == SP_PGP_SIG_NONE)
		rc = SP_EFORMAT;
	else if (!detached)
		rc = sink_take(&s, plain_r, plain_len_r);
out:
	gpgme_data_release(din);
	gpgme_data_release(dtext);
	gpgme_data_release(dout);
	sink_wipe(&s);
	unref_list(keys, nsigners);
	op_end(&op);
	return rc;
}
