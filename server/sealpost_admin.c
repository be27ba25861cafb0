/*
 * sealpost-admin: the operator's tool.  Works on the store directly (LMDB
 * allows it while the server runs), so it needs access to the data
 * directory and nothing else.
 *
 *   sealpost-admin [--data-dir DIR] init [--tls-cert F --tls-key F]
 *                                        [--hostname NAME]
 *   sealpost-admin [--data-dir DIR] invite [--days N]
 *   sealpost-admin [--data-dir DIR] status
 *   sealpost-admin [--data-dir DIR] user list
 *   sealpost-admin [--data-dir DIR] user disable|enable ADDRESS
 *   sealpost-admin [--data-dir DIR] user delete ADDRESS --yes
 *   sealpost-admin [--data-dir DIR] user quota ADDRESS MB
 *   sealpost-admin [--data-dir DIR] backup DEST
 *   sealpost-admin [--data-dir DIR] restore BACKUP [--force]
 *   sealpost-admin [--data-dir DIR] domain add NAME [--selector S]
 *                      [--mx HOST] [--rua ADDRESS] [--dmarc-policy P]
 *   sealpost-admin [--data-dir DIR] domain list
 *   sealpost-admin [--data-dir DIR] domain show NAME
 *
 * Commands are a table of check/proceed pairs: check looks only at the
 * arguments (a usage error exits 2 before anything is touched), proceed
 * does the work (a failure exits 1).  Every command but init and restore
 * needs an existing store and never creates one, so that a mistyped
 * --data-dir is an error rather than a new, empty store.
 *
 * restore is the one command that must not run beside a server: it
 * replaces the store's files under it.  It refuses while another process
 * has the store open (see store_user()); the server must be stopped.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>

#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "server/store/store.h"

#define MIB (1024ull * 1024)
#define QUOTA_MB_MAX (1ull << 30)       /* as the server's quota-mb */
#define PEM_MAX (1024 * 1024)           /* a certificate chain or key */
#define CERT_DAYS 730

struct ctx {
	const char *data_dir;
	char store_dir[PATH_MAX];
	sp_store *st;
};

/* What a command's check found in its arguments. */
struct args {
	const char *pos[2];
	int npos;
	const char *tls_cert, *tls_key, *hostname;
	const char *selector, *mx, *rua, *policy;   /* domain add */
	int yes, force;
	uint64_t n;             /* --days, or the quota in MB */
};

enum {
	OPT_DAYS = 1 << 0,
	OPT_YES = 1 << 1,
	OPT_FORCE = 1 << 2,
	OPT_TLS = 1 << 3,       /* --tls-cert, --tls-key, --hostname */
	OPT_DOMAIN = 1 << 4,    /* --selector, --mx, --rua, --dmarc-policy */
};

struct cmd {
	const char *name, *sub;
	const char *synopsis;
	const char *help;
	unsigned opts;          /* OPT_* it accepts */
	int npos;               /* positional arguments, exactly */
	int store;              /* proceeds with the existing store open */
	int (*check)(const struct cmd *c, struct args *a);
	int (*proceed)(struct ctx *c, const struct args *a);
};

static const struct cmd cmds[];

static void
usage(FILE *f)
{
	const struct cmd *c;

	fprintf(f, "usage: sealpost-admin [--data-dir DIR] COMMAND\n\n"
	    "DIR is the server's data directory (/var/lib/sealpost).\n\n"
	    "commands:\n");
	for (c = cmds; c->name; c++)
		fprintf(f, "  %s\n      %s\n", c->synopsis, c->help);
}

static int usage_error(const struct cmd *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prints the message and the command's synopsis; returns 2. */
static int
usage_error(const struct cmd *c, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "sealpost-admin: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (c)
		fprintf(stderr, "\nusage: sealpost-admin [--data-dir DIR] "
		    "%s\n", c->synopsis);
	else
		fprintf(stderr, "\n(sealpost-admin --help lists the "
		    "commands)\n");
	return 2;
}

static int
fail(const char *what, const char *msg)
{
	fprintf(stderr, "sealpost-admin: %s: %s\n", what, msg);
	return 1;
}

static int
fail_store(const char *what, int rc)
{
	return fail(what, sp_store_strerror(rc));
}

/* Last OpenSSL error as text (its queue is then cleared). */
static const char *
ssl_error(void)
{
	static char buf[256];
	unsigned long e = ERR_get_error();

	if (e == 0)
		return "unknown OpenSSL error";
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return buf;
}

/* ---- arguments ---------------------------------------------------------- */

/* Decimal without sign or suffix, at most max; 0 or -1. */
static int
parse_u64(const char *s, uint64_t max, uint64_t *n_r)
{
	uint64_t n = 0;

	if (*s == 0)
		return -1;
	for (; *s; s++) {
		uint64_t d = (uint64_t)(*s - '0');

		if (*s < '0' || *s > '9' || n > (max - d) / 10)
			return -1;
		n = n * 10 + d;
	}
	*n_r = n;
	return 0;
}

static int
opt_value(const struct cmd *c, int argc, char **argv, int *i,
    const char **v_r)
{
	if (*i + 1 >= argc)
		return usage_error(c, "%s needs a value", argv[*i]);
	*v_r = argv[++*i];
	return 0;
}

static int
parse_args(const struct cmd *c, int argc, char **argv, struct args *a)
{
	const char *s, *days = NULL;
	int i, rc = 0;

	memset(a, 0, sizeof(*a));
	for (i = 0; i < argc && rc == 0; i++) {
		s = argv[i];
		if (strncmp(s, "--", 2) != 0) {
			if (a->npos == 2)
				return usage_error(c, "unexpected '%s'", s);
			a->pos[a->npos++] = s;
		} else if ((c->opts & OPT_YES) && !strcmp(s, "--yes"))
			a->yes = 1;
		else if ((c->opts & OPT_FORCE) && !strcmp(s, "--force"))
			a->force = 1;
		else if ((c->opts & OPT_DAYS) && !strcmp(s, "--days"))
			rc = opt_value(c, argc, argv, &i, &days);
		else if ((c->opts & OPT_TLS) && !strcmp(s, "--tls-cert"))
			rc = opt_value(c, argc, argv, &i, &a->tls_cert);
		else if ((c->opts & OPT_TLS) && !strcmp(s, "--tls-key"))
			rc = opt_value(c, argc, argv, &i, &a->tls_key);
		else if ((c->opts & OPT_TLS) && !strcmp(s, "--hostname"))
			rc = opt_value(c, argc, argv, &i, &a->hostname);
		else if ((c->opts & OPT_DOMAIN) && !strcmp(s, "--selector"))
			rc = opt_value(c, argc, argv, &i, &a->selector);
		else if ((c->opts & OPT_DOMAIN) && !strcmp(s, "--mx"))
			rc = opt_value(c, argc, argv, &i, &a->mx);
		else if ((c->opts & OPT_DOMAIN) && !strcmp(s, "--rua"))
			rc = opt_value(c, argc, argv, &i, &a->rua);
		else if ((c->opts & OPT_DOMAIN) &&
		    !strcmp(s, "--dmarc-policy"))
			rc = opt_value(c, argc, argv, &i, &a->policy);
		else
			return usage_error(c, "unknown option '%s'", s);
	}
	if (rc != 0)
		return rc;
	if (a->npos != c->npos)
		return usage_error(c, "%s", a->npos < c->npos ?
		    "missing argument" : "too many arguments");
	a->n = 7;
	if (days && (parse_u64(days, 365, &a->n) != 0 || a->n < 1))
		return usage_error(c, "--days takes 1 to 365, not '%s'", days);
	return c->check ? c->check(c, a) : 0;
}

static int
address_ok(const char *s)
{
	const char *at = strrchr(s, '@');
	size_t i;

	if (at == NULL || at == s || at[1] == 0 ||
	    strlen(s) > SP_STORE_ADDR_MAX)
		return 0;
	for (i = 0; s[i]; i++)
		if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

static int
check_address(const struct cmd *c, struct args *a)
{
	if (!address_ok(a->pos[0]))
		return usage_error(c, "'%s' is not a mail address",
		    a->pos[0]);
	return 0;
}

static int
check_delete(const struct cmd *c, struct args *a)
{
	if (!a->yes)
		return usage_error(c, "user delete removes %s with all its "
		    "mail, keys and sessions, for good; add --yes to do it",
		    a->pos[0]);
	return check_address(c, a);
}

static int
check_quota(const struct cmd *c, struct args *a)
{
	if (parse_u64(a->pos[1], QUOTA_MB_MAX, &a->n) != 0)
		return usage_error(c, "quota: '%s' is not a number of MB "
		    "(0 = no quota)", a->pos[1]);
	return check_address(c, a);
}

/* A DNS name of letters, digits, '-' and '.', or an IP address. */
static int
hostname_ok(const char *s)
{
	uint8_t ip[16];
	size_t i, n = strlen(s);

	if (inet_pton(AF_INET, s, ip) == 1 || inet_pton(AF_INET6, s, ip) == 1)
		return 1;
	if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-')
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '.'))
			return 0;
	return 1;
}

static int
check_init(const struct cmd *c, struct args *a)
{
	if ((a->tls_cert == NULL) != (a->tls_key == NULL))
		return usage_error(c, "%s", "--tls-cert and --tls-key go "
		    "together");
	if (a->tls_cert && a->hostname)
		return usage_error(c, "%s", "--hostname is for the "
		    "self-signed certificate; not with --tls-cert");
	if (a->hostname && !hostname_ok(a->hostname))
		return usage_error(c, "--hostname: '%s' is not a host name "
		    "or IP address", a->hostname);
	return 0;
}

/* ---- files -------------------------------------------------------------- */

static int
path_join(char *buf, size_t cap, const char *dir, const char *name)
{
	if ((size_t)snprintf(buf, cap, "%s/%s", dir, name) >= cap) {
		fprintf(stderr, "sealpost-admin: %s/%s: path too long\n", dir,
		    name);
		return -1;
	}
	return 0;
}

static int
exists(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0;
}

/* Creates the missing parent directories of path (0700), like mkdir -p. */
static int
mkparents(const char *path)
{
	char buf[PATH_MAX], *p;

	if (strlen(path) >= sizeof(buf))
		return ENAMETOOLONG;
	memcpy(buf, path, strlen(path) + 1);
	for (p = buf + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = 0;
		if (mkdir(buf, 0700) != 0 && errno != EEXIST)
			return errno;
		*p = '/';
	}
	return 0;
}

static int
fsync_dir(const char *dir)
{
	int fd, rc = 0;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return errno;
	if (fsync(fd) != 0)
		rc = errno;
	(void)close(fd);
	return rc;
}

/* fsync of the directory that holds path. */
static int
fsync_parent(const char *path)
{
	char dir[PATH_MAX], *slash;

	if (strlen(path) >= sizeof(dir))
		return ENAMETOOLONG;
	memcpy(dir, path, strlen(path) + 1);
	if ((slash = strrchr(dir, '/')) == NULL)
		return fsync_dir(".");
	*slash = 0;
	return fsync_dir(slash == dir ? "/" : dir);
}

static int
write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, p, len)) < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Writes buf to the new file path with exactly mode, durably, and never
 * replaces anything: the bytes go to a temporary file beside it, which is
 * fsync'd and then linked to path (link fails with EEXIST where rename
 * would overwrite), so a crash leaves either no file or the whole one.
 * 0 or an errno.
 */
static int
file_create(const char *path, const void *buf, size_t len, mode_t mode)
{
	char tmp[PATH_MAX];
	int fd, rc;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", path,
	    (long)getpid()) >= sizeof(tmp))
		return ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
	    mode);
	if (fd < 0)
		return errno;
	rc = write_all(fd, buf, len);
	if (rc == 0 && fchmod(fd, mode) != 0)
		rc = errno;
	if (rc == 0 && fsync(fd) != 0)
		rc = errno;
	if (close(fd) != 0 && rc == 0)
		rc = errno;
	if (rc == 0 && link(tmp, path) != 0)
		rc = errno;
	(void)unlink(tmp);
	return rc == 0 ? fsync_parent(path) : rc;
}

/* Copies the file src to the new file dst (mode 0600), fsync'd. */
static int
file_copy(const char *src, const char *dst)
{
	static uint8_t buf[1 << 20];
	ssize_t n;
	int in, out, rc = 0;

	if ((in = open(src, O_RDONLY | O_CLOEXEC)) < 0)
		return errno;
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0) {
		rc = errno;
		(void)close(in);
		return rc;
	}
	while (rc == 0 && (n = read(in, buf, sizeof(buf))) != 0) {
		if (n < 0)
			rc = errno == EINTR ? 0 : errno;
		else
			rc = write_all(out, buf, (size_t)n);
	}
	if (rc == 0 && fsync(out) != 0)
		rc = errno;
	if (close(out) != 0 && rc == 0)
		rc = errno;
	(void)close(in);
	if (rc != 0)
		(void)unlink(dst);
	return rc;
}

/* Reads a whole small file (at most max bytes) into malloc'd memory. */
static int
slurp(const char *path, size_t max, uint8_t **buf_r, size_t *len_r)
{
	uint8_t *buf;
	size_t len = 0;
	ssize_t n;
	int fd, rc = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno;
	if ((buf = malloc(max + 1)) == NULL) {
		(void)close(fd);
		return ENOMEM;
	}
	while (len <= max && (n = read(fd, buf + len, max + 1 - len)) != 0) {
		if (n < 0 && errno != EINTR) {
			rc = errno;
			break;
		}
		if (n > 0)
			len += (size_t)n;
	}
	(void)close(fd);
	if (rc == 0 && len > max)
		rc = EFBIG;
	if (rc != 0) {
		sodium_memzero(buf, len <= max ? len : max + 1);
		free(buf);
		return rc;
	}
	*buf_r = buf;
	*len_r = len;
	return 0;
}

static void
slurp_free(uint8_t *buf, size_t len)
{
	if (buf) {
		sodium_memzero(buf, len);
		free(buf);
	}
}

/*
 * The pid of another process that has the LMDB environment in dir open,
 * 0 if none, -1 if that cannot be told.  LMDB holds a shared fcntl lock
 * on the first byte of lock.mdb for as long as an environment is open
 * (mdb_env_setup_locks), so a process that asks for the conflicting
 * exclusive lock learns who holds it.  Trap: closing any descriptor of
 * lock.mdb drops every fcntl lock this process holds on it, so this must
 * not be called while this process has that store open.
 */
static long
store_user(const char *dir)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
	    .l_start = 0, .l_len = 1 };
	char path[PATH_MAX];
	int fd, rc;

	if (path_join(path, sizeof(path), dir, "lock.mdb") != 0)
		return -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT ? 0 : -1;
	rc = fcntl(fd, F_GETLK, &fl);
	(void)close(fd);
	if (rc != 0)
		return -1;
	return fl.l_type == F_UNLCK ? 0 : (long)fl.l_pid;
}

/* ---- init --------------------------------------------------------------- */

static int
init_dir(const char *dir, int *changed)
{
	struct stat sb;
	int rc;

	if (stat(dir, &sb) == 0) {
		if (!S_ISDIR(sb.st_mode))
			return fail(dir, "exists and is not a directory");
		if (sb.st_mode & 077)
			fprintf(stderr, "sealpost-admin: warning: %s is open "
			    "to other users (mode %04o); chmod 700 it\n", dir,
			    (unsigned)(sb.st_mode & 07777));
		printf("kept     %s (exists)\n", dir);
		return 0;
	}
	if ((rc = mkparents(dir)) != 0)
		return fail(dir, strerror(rc));
	if (mkdir(dir, 0700) != 0)
		return fail(dir, strerror(errno));
	printf("created  %s (mode 0700)\n", dir);
	*changed = 1;
	return 0;
}

static int
init_store(struct ctx *c, int *changed)
{
	struct sp_store_opts o = { 0 };
	char path[PATH_MAX];
	int rc, had;

	if (path_join(path, sizeof(path), c->store_dir, "data.mdb") != 0)
		return 1;
	had = exists(path);
	if ((rc = sp_store_open(c->store_dir, &o, &c->st)) != 0)
		return fail_store(c->store_dir, rc);
	sp_store_close(c->st);
	c->st = NULL;
	printf("%s  %s%s\n", had ? "kept   " : "created", c->store_dir,
	    had ? " (exists)" : "");
	*changed |= !had;
	return 0;
}

/* DATA_DIR/server.key as the server makes it, if it is missing. */
static int
init_secret(struct ctx *c, int *changed)
{
	char path[PATH_MAX];
	uint8_t key[32];
	struct stat sb;
	int rc;

	if (path_join(path, sizeof(path), c->data_dir, "server.key") != 0)
		return 1;
	if (stat(path, &sb) == 0) {
		if (!S_ISREG(sb.st_mode) || sb.st_size != (off_t)sizeof(key))
			return fail(path, "exists but is not a 32-byte file; "
			    "the server will not start with it (init never "
			    "replaces it: move it away if it is not needed)");
		printf("kept     %s (exists)\n", path);
		return 0;
	}
	randombytes_buf(key, sizeof(key));
	rc = file_create(path, key, sizeof(key), 0600);
	sodium_memzero(key, sizeof(key));
	if (rc != 0)
		return fail(path, strerror(rc));
	printf("created  %s (32 random bytes, mode 0600)\n", path);
	*changed = 1;
	return 0;
}

/* Parses a PEM certificate and key and checks that they belong together;
 * 0, or 1 with a message. */
static int
tls_pair_check(const char *cert_file, const uint8_t *cert, size_t cert_len,
    const char *key_file, const uint8_t *key, size_t key_len)
{
	BIO *b;
	X509 *x = NULL;
	EVP_PKEY *pk = NULL;
	int rc = 1;

	if ((b = BIO_new_mem_buf(cert, (int)cert_len)) != NULL)
		x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	if (x == NULL)
		return fail(cert_file, "not a PEM certificate");
	if ((b = BIO_new_mem_buf(key, (int)key_len)) != NULL)
		pk = PEM_read_bio_PrivateKey(b, NULL, NULL,
		    (void *)(uintptr_t)"");  /* no prompt: "" as passphrase */
	BIO_free(b);
	if (pk == NULL)
		(void)fail(key_file, "not an unencrypted PEM private key");
	else if (X509_check_private_key(x, pk) != 1)
		(void)fail(key_file, "does not belong to the certificate");
	else
		rc = 0;
	if (rc == 0 && X509_cmp_current_time(X509_get0_notAfter(x)) < 0)
		fprintf(stderr, "sealpost-admin: warning: %s has expired\n",
		    cert_file);
	ERR_clear_error();
	EVP_PKEY_free(pk);
	X509_free(x);
	return rc;
}

/* 0 if path is missing (*have_r = 0) or holds exactly buf (*have_r = 1);
 * 1 with a message if it holds something else. */
static int
same_or_missing(const char *path, const uint8_t *buf, size_t len,
    int *have_r)
{
	uint8_t *old = NULL;
	size_t olen = 0;
	int rc, same;

	*have_r = 0;
	if ((rc = slurp(path, PEM_MAX, &old, &olen)) == ENOENT)
		return 0;
	if (rc != 0)
		return fail(path, strerror(rc));
	same = olen == len && sodium_memcmp(old, buf, len) == 0;
	slurp_free(old, olen);
	if (!same) {
		fprintf(stderr, "sealpost-admin: %s exists and differs; init "
		    "never replaces it (remove it first to install another)\n",
		    path);
		return 1;
	}
	*have_r = 1;
	return 0;
}

/* Copies the operator's certificate and key into DATA_DIR/tls. */
static int
init_tls_copy(const char *tls, const struct args *a, int *changed)
{
	char cpath[PATH_MAX], kpath[PATH_MAX];
	uint8_t *cert = NULL, *key = NULL;
	size_t clen = 0, klen = 0;
	int rc, have_c = 0, have_k = 0;

	if (path_join(cpath, sizeof(cpath), tls, "cert.pem") != 0 ||
	    path_join(kpath, sizeof(kpath), tls, "key.pem") != 0)
		return 1;
	if ((rc = slurp(a->tls_cert, PEM_MAX, &cert, &clen)) != 0) {
		rc = fail(a->tls_cert, strerror(rc));
		goto out;
	}
	if ((rc = slurp(a->tls_key, PEM_MAX, &key, &klen)) != 0) {
		rc = fail(a->tls_key, strerror(rc));
		goto out;
	}
	/* Everything is checked before anything is written. */
	if ((rc = tls_pair_check(a->tls_cert, cert, clen, a->tls_key, key,
	    klen)) != 0 ||
	    (rc = same_or_missing(cpath, cert, clen, &have_c)) != 0 ||
	    (rc = same_or_missing(kpath, key, klen, &have_k)) != 0)
		goto out;
	if (!have_k && (rc = file_create(kpath, key, klen, 0600)) != 0) {
		rc = fail(kpath, strerror(rc));
		goto out;
	}
	if (!have_c && (rc = file_create(cpath, cert, clen, 0644)) != 0) {
		rc = fail(cpath, strerror(rc));
		goto out;
	}
	printf("%s  %s and key.pem (from %s, %s)\n",
	    have_c && have_k ? "kept   " : "copied ", cpath, a->tls_cert,
	    a->tls_key);
	*changed |= !(have_c && have_k);
out:
	slurp_free(cert, clen);
	slurp_free(key, klen);
	return rc;
}

static int
add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
	X509_EXTENSION *e;
	int ok;

	if ((e = X509V3_EXT_conf_nid(NULL, v3, nid, value)) == NULL)
		return 0;
	ok = X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return ok;
}

/*
 * A self-signed certificate for local use: EC P-256, valid for two years,
 * subjectAltName the host (DNS, or IP if it is an address) and 127.0.0.1,
 * and not a CA (so that the key, should it leak, signs nothing else that
 * a client trusting this certificate would accept).  No keyUsage: with one
 * that lacks keyCertSign, OpenSSL does not count the certificate as its
 * own issuer and so would not accept it as a trust anchor.
 */
static X509 *
cert_make(EVP_PKEY *pk, const char *host)
{
	X509 *x;
	X509_NAME *name;
	X509V3_CTX v3;
	BIGNUM *bn;
	uint8_t serial[16], ip[16];
	char san[600];
	int ok, is_ip;

	is_ip = inet_pton(AF_INET, host, ip) == 1 ||
	    inet_pton(AF_INET6, host, ip) == 1;
	if (strcmp(host, "127.0.0.1") == 0)
		snprintf(san, sizeof(san), "IP:127.0.0.1");
	else
		snprintf(san, sizeof(san), "%s:%s,IP:127.0.0.1",
		    is_ip ? "IP" : "DNS", host);
	randombytes_buf(serial, sizeof(serial));
	serial[0] = (uint8_t)((serial[0] & 0x7f) | 0x40); /* positive, 16 B */
	if ((x = X509_new()) == NULL)
		return NULL;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	name = X509_get_subject_name(x);
	ok = bn && X509_set_version(x, X509_VERSION_3) &&
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) &&
	    X509_gmtime_adj(X509_getm_notBefore(x), -300) &&
	    X509_gmtime_adj(X509_getm_notAfter(x), CERT_DAYS * 86400L) &&
	    X509_set_pubkey(x, pk) &&
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)(strlen(host) <= 64 ? host : "sealpost"),
	    -1, -1, 0) &&
	    X509_set_issuer_name(x, name);
	BN_free(bn);
	if (ok) {
		X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
		ok = add_ext(x, &v3, NID_basic_constraints, "critical,CA:FALSE")
		    && add_ext(x, &v3, NID_subject_alt_name, san) &&
		    add_ext(x, &v3, NID_ext_key_usage, "serverAuth") &&
		    add_ext(x, &v3, NID_subject_key_identifier, "hash") &&
		    X509_sign(x, pk, EVP_sha256()) > 0;
	}
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* Writes what a PEM writer put into a memory BIO to the new file path. */
static int
bio_to_file(BIO *b, const char *path, mode_t mode)
{
	char *p;
	long n = BIO_get_mem_data(b, &p);

	if (n <= 0)
		return EIO;
	return file_create(path, p, (size_t)n, mode);
}

static int
tls_self_write(const char *cpath, const char *kpath, const char *host)
{
	EVP_PKEY *pk;
	X509 *x = NULL;
	BIO *kb = NULL, *cb = NULL;
	int rc = 1, e;

	if ((pk = EVP_EC_gen("P-256")) == NULL ||
	    (x = cert_make(pk, host)) == NULL ||
	    (kb = BIO_new(BIO_s_secmem())) == NULL ||
	    (cb = BIO_new(BIO_s_mem())) == NULL ||
	    !PEM_write_bio_PrivateKey(kb, pk, NULL, NULL, 0, NULL, NULL) ||
	    !PEM_write_bio_X509(cb, x)) {
		(void)fail("making a certificate", ssl_error());
		goto out;
	}
	/* The key first: a certificate without its key is useless. */
	if ((e = bio_to_file(kb, kpath, 0600)) != 0)
		(void)fail(kpath, strerror(e));
	else if ((e = bio_to_file(cb, cpath, 0644)) != 0)
		(void)fail(cpath, strerror(e));
	else
		rc = 0;
out:
	BIO_free(cb);
	BIO_free(kb);
	X509_free(x);
	EVP_PKEY_free(pk);
	return rc;
}

static int
init_tls_self(const char *tls, const struct args *a, int *changed)
{
	const char *host = a->hostname ? a->hostname : "localhost";
	char cpath[PATH_MAX], kpath[PATH_MAX];
	int hc, hk;

	if (path_join(cpath, sizeof(cpath), tls, "cert.pem") != 0 ||
	    path_join(kpath, sizeof(kpath), tls, "key.pem") != 0)
		return 1;
	hc = exists(cpath);
	hk = exists(kpath);
	if (hc && hk) {
		printf("kept     %s and key.pem (exist; init never replaces "
		    "them)\n", cpath);
		return 0;
	}
	if (hc || hk) {
		fprintf(stderr, "sealpost-admin: %s exists without %s; remove "
		    "it, or give --tls-cert and --tls-key\n",
		    hc ? cpath : kpath, hc ? kpath : cpath);
		return 1;
	}
	if (tls_self_write(cpath, kpath, host) != 0)
		return 1;
	printf("created  %s and key.pem (self-signed for %s and 127.0.0.1, "
	    "EC P-256, %d days, for local use: clients must be given this "
	    "file as their CA)\n", cpath, host, CERT_DAYS);
	*changed = 1;
	return 0;
}

static int
init_tls(struct ctx *c, const struct args *a, int *changed)
{
	char tls[PATH_MAX];

	if (path_join(tls, sizeof(tls), c->data_dir, "tls") != 0)
		return 1;
	if (mkdir(tls, 0700) != 0 && errno != EEXIST)
		return fail(tls, strerror(errno));
	return a->tls_cert ? init_tls_copy(tls, a, changed) :
	    init_tls_self(tls, a, changed);
}

static int
proceed_init(struct ctx *c, const struct args *a)
{
	char abs[PATH_MAX];
	int changed = 0;

	if (init_dir(c->data_dir, &changed) != 0 ||
	    init_store(c, &changed) != 0 ||
	    init_secret(c, &changed) != 0 ||
	    init_tls(c, a, &changed) != 0)
		return 1;
	if (realpath(c->data_dir, abs) == NULL)
		return fail(c->data_dir, strerror(errno));
	if (!changed)
		printf("nothing changed: %s was already initialised\n", abs);
	printf("\nstart the server with:\n"
	    "  sealpost-server --data-dir %s \\\n"
	    "      --tls-cert %s/tls/cert.pem --tls-key %s/tls/key.pem \\\n"
	    "      --domains YOUR.MAIL.DOMAIN\n", abs, abs, abs);
	return 0;
}

/* ---- invite, status, backup --------------------------------------------- */

static int
proceed_invite(struct ctx *c, const struct args *a)
{
	uint8_t raw[24], hash[32];
	char token[2 * sizeof(raw) + 1];
	int rc;

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(token, sizeof(token), raw, sizeof(raw));
	/* Only the hash is stored: a stolen database holds no usable invite. */
	crypto_generichash(hash, sizeof(hash), (const uint8_t *)token,
	    strlen(token), NULL, 0);
	rc = sp_store_invite_put(c->st, hash,
	    (uint64_t)time(NULL) + a->n * 86400);
	sodium_memzero(raw, sizeof(raw));
	if (rc == 0)
		printf("%s\n", token);
	sodium_memzero(token, sizeof(token));
	return rc ? fail_store("invite", rc) : 0;
}

static int
proceed_status(struct ctx *c, const struct args *a)
{
	struct sp_store_stat s;
	int rc;

	if ((rc = sp_store_stat(c->st, &s)) != 0)
		return fail_store("status", rc);
	printf("accounts     %llu\nrecords      %llu\nblobs        %llu\n"
	    "map bytes    %llu\nused bytes   %llu\n",
	    (unsigned long long)s.accounts, (unsigned long long)s.records,
	    (unsigned long long)s.blobs, (unsigned long long)s.map_size,
	    (unsigned long long)s.used_bytes);
	return 0;
}

static int
proceed_backup(struct ctx *c, const struct args *a)
{
	int rc;

	if ((rc = mkparents(a->pos[0])) != 0 ||
	    (rc = sp_store_backup(c->st, a->pos[0])) != 0)
		return fail_store("backup", rc);
	return 0;
}

/* ---- user --------------------------------------------------------------- */

static int
list_one(const struct sp_store_account *a, void *arg)
{
	char when[32], quota[24];
	time_t t = (time_t)a->created;
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(when, sizeof(when), "?");
	if (a->quota_bytes)
		snprintf(quota, sizeof(quota), "%llu",
		    (unsigned long long)a->quota_bytes);
	else
		snprintf(quota, sizeof(quota), "none");
	printf("%s\t%s\t%s\t%llu\t%s\n", a->address, when,
	    (a->flags & SP_STORE_ACCT_DISABLED) ? "disabled" : "active",
	    (unsigned long long)a->used_bytes, quota);
	return 0;
}

static int
proceed_user_list(struct ctx *c, const struct args *a)
{
	int rc;

	if ((rc = sp_store_account_list(c->st, list_one, NULL)) != 0)
		return fail_store("user list", rc);
	return 0;
}

static int
account_get(struct ctx *c, const char *address, struct sp_store_account *a)
{
	int rc = sp_store_account_get(c->st, address, a);

	if (rc == ENOENT)
		return fail(address, "no such account");
	return rc ? fail_store(address, rc) : 0;
}

struct hashes {
	uint8_t (*h)[32];
	size_t n, cap;
};

static int
session_collect(const struct sp_store_session *ss, void *arg)
{
	struct hashes *hs = arg;
	void *p;

	if (hs->n == hs->cap) {
		hs->cap = hs->cap ? 2 * hs->cap : 16;
		if ((p = realloc(hs->h, hs->cap * 32)) == NULL)
			return ENOMEM;
		hs->h = p;
	}
	memcpy(hs->h[hs->n++], ss->token_hash, 32);
	return 0;
}

/* Deletes every session of address (collected first: the walk is not
 * modified under itself).  A session gone meanwhile is not an error. */
static int
sessions_end(struct ctx *c, const char *address, size_t *n_r)
{
	struct hashes hs = { 0 };
	size_t i;
	int rc;

	*n_r = 0;
	rc = sp_store_session_list(c->st, address, session_collect, &hs);
	for (i = 0; rc == 0 && i < hs.n; i++) {
		rc = sp_store_session_delete(c->st, hs.h[i]);
		if (rc == 0)
			++*n_r;
		else if (rc == ENOENT)
			rc = 0;
	}
	free(hs.h);
	return rc;
}

static int
set_disabled(struct ctx *c, const char *address, int disable)
{
	struct sp_store_account a;
	size_t n = 0;
	int rc, was;

	if (account_get(c, address, &a) != 0)
		return 1;
	was = (a.flags & SP_STORE_ACCT_DISABLED) != 0;
	if (disable)
		a.flags |= SP_STORE_ACCT_DISABLED;
	else
		a.flags &= ~SP_STORE_ACCT_DISABLED;
	if (was != disable &&
	    (rc = sp_store_account_set_flags(c->st, a.address, a.flags)) != 0)
		return fail_store(a.address, rc);
	if (!disable) {
		printf("%s %s\n", was ? "enabled" : "already enabled:",
		    a.address);
		return 0;
	}
	if ((rc = sessions_end(c, a.address, &n)) != 0)
		return fail_store(a.address, rc);
	printf("%s %s: logins, resumed sessions and deliveries are refused; "
	    "%zu session(s) revoked\n(connections open now are not cut; "
	    "restarting the server cuts them)\n",
	    was ? "already disabled:" : "disabled", a.address, n);
	return 0;
}

static int
proceed_user_disable(struct ctx *c, const struct args *a)
{
	return set_disabled(c, a->pos[0], 1);
}

static int
proceed_user_enable(struct ctx *c, const struct args *a)
{
	return set_disabled(c, a->pos[0], 0);
}

static int
proceed_user_delete(struct ctx *c, const struct args *a)
{
	struct sp_store_account acct;
	int rc;

	if (account_get(c, a->pos[0], &acct) != 0)
		return 1;
	rc = sp_store_account_delete(c->st, acct.address);
	if (rc == ENOENT)
		return fail(acct.address, "no such account");
	if (rc != 0)
		return fail_store(acct.address, rc);
	printf("deleted %s (%llu bytes), with its keys, log, sessions and "
	    "blob references\n", acct.address,
	    (unsigned long long)acct.used_bytes);
	return 0;
}

static int
proceed_user_quota(struct ctx *c, const struct args *a)
{
	struct sp_store_account acct;
	int rc;

	if (account_get(c, a->pos[0], &acct) != 0)
		return 1;
	acct.quota_bytes = a->n * MIB;
	if ((rc = sp_store_account_set_quota(c->st, acct.address,
	    acct.quota_bytes)) != 0)
		return fail_store(acct.address, rc);
	if (a->n == 0)
		printf("%s: no quota (uses %llu bytes)\n", acct.address,
		    (unsigned long long)acct.used_bytes);
	else
		printf("%s: quota %llu MiB (%llu bytes), uses %llu bytes%s\n",
		    acct.address, (unsigned long long)a->n,
		    (unsigned long long)acct.quota_bytes,
		    (unsigned long long)acct.used_bytes,
		    acct.used_bytes > acct.quota_bytes ? "; over quota: new "
		    "records and deliveries are refused" : "");
	return 0;
}

/* ---- user policy (outbound) ---------------------------------------------- */

static int
check_policy(const struct cmd *c, struct args *a)
{
	if (strcmp(a->pos[1], "encrypted-only") != 0 &&
	    strcmp(a->pos[1], "any") != 0)
		return usage_error(c, "policy: '%s' is neither encrypted-only "
		    "nor any", a->pos[1]);
	return check_address(c, a);
}

static int
proceed_user_policy(struct ctx *c, const struct args *a)
{
	struct sp_store_account acct;
	int rc, enc = strcmp(a->pos[1], "encrypted-only") == 0;

	if (account_get(c, a->pos[0], &acct) != 0)
		return 1;
	if (enc)
		acct.flags |= SP_STORE_ACCT_ENCRYPTED_ONLY;
	else
		acct.flags &= ~SP_STORE_ACCT_ENCRYPTED_ONLY;
	if ((rc = sp_store_account_set_flags(c->st, acct.address,
	    acct.flags)) != 0)
		return fail_store(acct.address, rc);
	printf("%s: %s\n", acct.address, enc ? "encrypted-only: mail to "
	    "recipients without a key is refused (SUBMIT)" : "any: mail to "
	    "recipients without a key goes through the gateway");
	return 0;
}

/* ---- restore ------------------------------------------------------------ */

static int
queue_any(const uint8_t id[16], uint64_t due, const void *data, size_t len,
    void *arg)
{
	*(int *)arg = 1;
	return 1;
}

/* Counts of the store in dir (which must exist); *data_r = 1 if it holds
 * accounts, records, blobs or queued mail.  0, or 1 with a message. */
static int
store_probe(const char *dir, struct sp_store_stat *st_r, int *data_r)
{
	struct sp_store_opts o = { 0 };
	sp_store *st;
	int rc, queued = 0;

	if ((rc = sp_store_open(dir, &o, &st)) != 0)
		return fail_store(dir, rc);
	if ((rc = sp_store_stat(st, st_r)) == 0) {
		/* queue_any stops the walk at the first entry with 1. */
		rc = sp_store_queue_due(st, UINT64_MAX, 1, queue_any, &queued);
		if (rc == 1)
			rc = 0;
	}
	sp_store_close(st);
	if (rc != 0)
		return fail_store(dir, rc);
	*data_r = queued || st_r->accounts || st_r->records || st_r->blobs;
	return 0;
}

static int
refuse_if_used(const char *dir)
{
	long pid = store_user(dir);
	char msg[160];

	if (pid == 0)
		return 0;
	if (pid < 0)
		return fail(dir, "cannot tell whether a server uses this "
		    "store; stop the server first");
	snprintf(msg, sizeof(msg), "in use by process %ld (a running server?);"
	    " stop it before restoring", pid);
	return fail(dir, msg);
}

/* Moves the old store out of the way: aside if it holds data, else its
 * two LMDB files are removed (rmdir keeps anything unexpected). */
static int
old_store_away(const struct ctx *c, int has_data, char *aside,
    size_t cap)
{
	char f[PATH_MAX], stamp[32];
	time_t now = time(NULL);
	struct tm tm;

	aside[0] = 0;
	if (!has_data) {
		if (path_join(f, sizeof(f), c->store_dir, "data.mdb") == 0)
			(void)unlink(f);
		if (path_join(f, sizeof(f), c->store_dir, "lock.mdb") == 0)
			(void)unlink(f);
		if (rmdir(c->store_dir) == 0 || errno == ENOENT)
			return 0;
	}
	(void)gmtime_r(&now, &tm);
	(void)strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	if ((size_t)snprintf(aside, cap, "%s.before-restore-%s", c->store_dir,
	    stamp) >= cap)
		return fail(c->store_dir, "path too long");
	if (exists(aside))
		return fail(aside, "exists already; try again in a second");
	if (rename(c->store_dir, aside) != 0)
		return fail(c->store_dir, strerror(errno));
	return 0;
}

/* Run as root for a server that runs as another user, restore gives the
 * store the data directory's owner, or that server could not open it. */
static int
owner_like(const char *ref, const char *path)
{
	struct stat sb;

	if (geteuid() != 0)
		return 0;
	if (stat(ref, &sb) != 0)
		return errno;
	return lchown(path, sb.st_uid, sb.st_gid) != 0 ? errno : 0;
}

/* Copies the backup into a fresh directory beside the store and opens it
 * there: what is moved into place has been seen to open. */
static int
restore_stage(const struct ctx *c, const char *backup, char *tmp,
    size_t cap, struct sp_store_stat *st)
{
	char src[PATH_MAX], dst[PATH_MAX];
	int rc, data;

	if (path_join(src, sizeof(src), backup, "data.mdb") != 0)
		return 1;
	if ((size_t)snprintf(tmp, cap, "%s/.restore-XXXXXX", c->data_dir) >=
	    cap || mkdtemp(tmp) == NULL) {
		tmp[0] = 0;
		return fail(c->data_dir, "cannot make a temporary directory");
	}
	if (path_join(dst, sizeof(dst), tmp, "data.mdb") != 0)
		return 1;
	if ((rc = file_copy(src, dst)) != 0)
		return fail(src, strerror(rc));
	if ((rc = owner_like(c->data_dir, tmp)) != 0 ||
	    (rc = owner_like(c->data_dir, dst)) != 0)
		return fail(dst, strerror(rc));
	if (store_probe(tmp, st, &data) != 0)
		return fail(backup, "the backup does not open as a store");
	if (path_join(dst, sizeof(dst), tmp, "lock.mdb") == 0)
		(void)unlink(dst);
	if ((rc = fsync_dir(tmp)) != 0)
		return fail(tmp, strerror(rc));
	return 0;
}

static void
stage_remove(const char *tmp)
{
	char f[PATH_MAX];

	if (tmp[0] == 0)
		return;
	if (path_join(f, sizeof(f), tmp, "data.mdb") == 0)
		(void)unlink(f);
	if (path_join(f, sizeof(f), tmp, "lock.mdb") == 0)
		(void)unlink(f);
	(void)rmdir(tmp);
}

static int
proceed_restore(struct ctx *c, const struct args *a)
{
	struct sp_store_stat old, st;
	char tmp[PATH_MAX] = "", aside[PATH_MAX] = "", f[PATH_MAX];
	int rc = 1, e, has_old, data = 0;

	if (path_join(f, sizeof(f), a->pos[0], "data.mdb") != 0)
		return 1;
	if (!exists(f))
		return fail(a->pos[0], "not a backup made by sealpost-admin "
		    "backup (no data.mdb in it)");
	if ((e = mkparents(c->data_dir)) != 0)
		return fail(c->data_dir, strerror(e));
	if (mkdir(c->data_dir, 0700) != 0 && errno != EEXIST)
		return fail(c->data_dir, strerror(errno));
	if (refuse_if_used(c->store_dir) != 0 ||
	    path_join(f, sizeof(f), c->store_dir, "data.mdb") != 0)
		return 1;
	has_old = exists(c->store_dir);
	if (exists(f) && store_probe(c->store_dir, &old, &data) != 0)
		return 1;
	if (data && !a->force) {
		fprintf(stderr, "sealpost-admin: %s already holds data (%llu "
		    "accounts, %llu records, %llu blobs); --force moves it "
		    "aside first\n", c->store_dir,
		    (unsigned long long)old.accounts,
		    (unsigned long long)old.records,
		    (unsigned long long)old.blobs);
		return 1;
	}
	if (restore_stage(c, a->pos[0], tmp, sizeof(tmp), &st) != 0)
		goto out;
	/* Once more: a server may have started while the copy ran. */
	if (refuse_if_used(c->store_dir) != 0 ||
	    (has_old && old_store_away(c, data, aside, sizeof(aside)) != 0))
		goto out;
	if (rename(tmp, c->store_dir) != 0) {
		(void)fail(c->store_dir, strerror(errno));
		goto out;
	}
	tmp[0] = 0;
	if ((e = fsync_dir(c->data_dir)) != 0) {
		(void)fail(c->data_dir, strerror(e));
		goto out;
	}
	if (has_old && aside[0])
		printf("moved the old store to %s\n", aside);
	printf("restored %s into %s: %llu accounts, %llu records, %llu "
	    "blobs\nstart the server on %s\n", a->pos[0], c->store_dir,
	    (unsigned long long)st.accounts, (unsigned long long)st.records,
	    (unsigned long long)st.blobs, c->data_dir);
	rc = 0;
out:
	stage_remove(tmp);
	return rc;
}

/* ---- domain ------------------------------------------------------------- */

/*
 * A mail domain's outbound identity: its DKIM keys and the settings its DNS
 * records are printed from, in files under DATA_DIR/dkim/NAME/ (the layout
 * is in docs/operations.md, "DNS"; the gateway's DKIM signer reads it):
 *
 *   domain.conf          key = value lines (this tool rewrites it whole)
 *   SEL.rsa.key          RSA-2048, PKCS#8 PEM, 0600  (SEL: rsa-selector)
 *   SEL.ed25519.key      Ed25519, PKCS#8 PEM, 0600   (SEL: ed25519-selector)
 *
 * Files rather than the store: the keys are secrets that a backup of the
 * store should not carry, and a signer reads them with nothing but
 * OpenSSL.  Keys are never replaced; a new --selector makes a new pair
 * beside the old one (rotation: publish both until the old is unused).
 */
#define DOMAIN_CONF_MAX 4096
#define DOMAINS_MAX 4096        /* listed by domain list */
#define DKIM_RSA_BITS 2048
#define DNS_TTL 3600
#define STS_MAX_AGE 604800      /* a week, as RFC 8461's examples */

struct domain {
	char name[254];
	char mx[254];
	char sel_rsa[64], sel_ed[64];
	char policy[16];        /* none, quarantine, reject */
	char rua[280];          /* "" or mailto:ADDRESS */
	char sts_id[33];        /* the _mta-sts id: UTC YYYYMMDDHHMMSS */
	char created[32];
};

/* A DNS name of at least two labels of letters, digits and inner '-'; it
 * becomes a path component, so nothing else may pass.  Copied lower-case
 * into dst (254 bytes). */
static int
dns_name(const char *s, char *dst)
{
	size_t i, n = strlen(s), label = 0, dots = 0;

	if (n == 0 || n > 253)
		return -1;
	for (i = 0; i <= n; i++) {
		char ch = s[i];

		if (ch == '.' || ch == 0) {
			if (label == 0 || s[i - 1] == '-')
				return -1;
			dots += ch == '.';
			label = 0;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || (ch == '-' && label > 0)))
			return -1;
		if (++label > 63)
			return -1;
	}
	if (dots == 0)
		return -1;
	for (i = 0; i <= n; i++)
		dst[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i]);
	return 0;
}

/* A selector stem: 1 to 40 of a-z, 0-9 and inner '-' (a label, once the
 * tool appends 'r' or 'e'). */
static int
selector_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 40 || s[0] == '-')
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return 0;
	return 1;
}

/* A full selector as stored: a stem and one more letter. */
static int
selector_full_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 2 && n <= 41 && s[n - 1] != '-' && selector_ok(s);
}

/* mailto:ADDRESS with nothing that would end a DMARC or TLS-RPT tag
 * (';' ',' '!'), a TXT string ('"' '\') or a line. */
static int
rua_ok(const char *s)
{
	const char *addr = strncmp(s, "mailto:", 7) == 0 ? s + 7 : NULL;

	if (addr == NULL || strlen(s) >= sizeof(((struct domain *)0)->rua) ||
	    !address_ok(addr))
		return 0;
	return strpbrk(addr, ";,!\"\\") == NULL;
}

static int
policy_ok(const char *s)
{
	return !strcmp(s, "none") || !strcmp(s, "quarantine") ||
	    !strcmp(s, "reject");
}

static int
check_domain_name(const struct cmd *c, struct args *a)
{
	char name[254];

	if (dns_name(a->pos[0], name) != 0)
		return usage_error(c, "'%s' is not a domain name (labels of "
		    "letters, digits and '-', at least two)", a->pos[0]);
	return 0;
}

static int
check_domain_add(const struct cmd *c, struct args *a)
{
	char buf[280];

	if (a->selector && !selector_ok(a->selector))
		return usage_error(c, "--selector: '%s' is not 1 to 40 of "
		    "a-z, 0-9 and '-'", a->selector);
	if (a->mx && dns_name(a->mx, buf) != 0)
		return usage_error(c, "--mx: '%s' is not a host name", a->mx);
	if (!a->mx && strlen(a->pos[0]) > 248)
		return usage_error(c, "%s", "mail.NAME is too long for DNS; "
		    "give --mx");
	if (a->policy && !policy_ok(a->policy))
		return usage_error(c, "--dmarc-policy is none, quarantine or "
		    "reject, not '%s'", a->policy);
	if (a->rua) {
		snprintf(buf, sizeof(buf), "%s%s", strncmp(a->rua, "mailto:",
		    7) ? "mailto:" : "", a->rua);
		if (!rua_ok(buf))
			return usage_error(c, "--rua: '%s' is not a mail "
			    "address for reports", a->rua);
	}
	return check_domain_name(c, a);
}

static int
domain_dir(const struct ctx *c, const char *name, char *buf, size_t cap)
{
	char dkim[PATH_MAX];

	if (path_join(dkim, sizeof(dkim), c->data_dir, "dkim") != 0)
		return -1;
	return name ? path_join(buf, cap, dkim, name) :
	    path_join(buf, cap, c->data_dir, "dkim");
}

/* "KEY.rsa.key" or "KEY.ed25519.key" in the domain's directory. */
static int
key_path(const char *dir, const char *sel, const char *kind, char *buf,
    size_t cap)
{
	if ((size_t)snprintf(buf, cap, "%s/%s.%s.key", dir, sel, kind) >=
	    cap) {
		fprintf(stderr, "sealpost-admin: %s: path too long\n", dir);
		return -1;
	}
	return 0;
}

static int
conf_set(struct domain *d, const char *k, const char *v)
{
	struct { const char *key; char *dst; size_t cap; } f[] = {
		{ "domain", d->name, sizeof(d->name) },
		{ "mx", d->mx, sizeof(d->mx) },
		{ "rsa-selector", d->sel_rsa, sizeof(d->sel_rsa) },
		{ "ed25519-selector", d->sel_ed, sizeof(d->sel_ed) },
		{ "dmarc-policy", d->policy, sizeof(d->policy) },
		{ "rua", d->rua, sizeof(d->rua) },
		{ "mta-sts-id", d->sts_id, sizeof(d->sts_id) },
		{ "created", d->created, sizeof(d->created) },
	};
	size_t i;

	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		if (strcmp(k, f[i].key) != 0)
			continue;
		if (strlen(v) >= f[i].cap)
			return -1;
		memcpy(f[i].dst, v, strlen(v) + 1);
		return 0;
	}
	return 0;       /* a key of a later version: kept out, not fatal */
}

/* Checks what was read as strictly as what a command line gives: the
 * names become paths and DNS text. */
static int
conf_valid(const struct domain *d, const char *name)
{
	char buf[254];
	size_t i;

	if (strcmp(d->name, name) != 0 || dns_name(d->mx, buf) != 0 ||
	    !selector_full_ok(d->sel_rsa) || !selector_full_ok(d->sel_ed) ||
	    !strcmp(d->sel_rsa, d->sel_ed) || !policy_ok(d->policy) ||
	    (d->rua[0] && !rua_ok(d->rua)) || d->sts_id[0] == 0)
		return 0;
	for (i = 0; d->sts_id[i]; i++)
		if (!((d->sts_id[i] >= '0' && d->sts_id[i] <= '9') ||
		    (d->sts_id[i] >= 'a' && d->sts_id[i] <= 'z') ||
		    (d->sts_id[i] >= 'A' && d->sts_id[i] <= 'Z')))
			return 0;
	return 1;
}

/* Reads DIR/dkim/NAME/domain.conf.  0; ENOENT if the domain is not
 * recorded; 1 after a message. */
static int
conf_read(const struct ctx *c, const char *name, struct domain *d)
{
	char dir[PATH_MAX], path[PATH_MAX], *text, *line, *save = NULL;
	char *eq, *k, *v;
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc, n = 0;

	memset(d, 0, sizeof(*d));
	if (domain_dir(c, name, dir, sizeof(dir)) != 0 ||
	    path_join(path, sizeof(path), dir, "domain.conf") != 0)
		return 1;
	if ((rc = slurp(path, DOMAIN_CONF_MAX, &buf, &len)) == ENOENT)
		return ENOENT;
	if (rc != 0)
		return fail(path, strerror(rc));
	text = (char *)buf;
	text[len] = 0;  /* slurp leaves a byte beyond max */
	rc = 0;
	for (line = strtok_r(text, "\n", &save); line && rc == 0;
	    line = strtok_r(NULL, "\n", &save)) {
		n++;
		if (line[0] == '#' || line[0] == 0)
			continue;
		if ((eq = strstr(line, " = ")) == NULL) {
			rc = -1;
			break;
		}
		*eq = 0;
		k = line;
		v = eq + 3;
		rc = conf_set(d, k, v);
	}
	slurp_free(buf, len);
	if (rc != 0)
		return fail(path, "malformed line (key = value expected)");
	if (!conf_valid(d, name))
		return fail(path, "incomplete or invalid settings");
	return 0;
}

/* Writes the new domain.conf beside the old and renames it over: a crash
 * leaves one or the other, whole. */
static int
conf_write(const struct ctx *c, const char *dir, const struct domain *d)
{
	char path[PATH_MAX], tmp[PATH_MAX], text[DOMAIN_CONF_MAX];
	int n, rc;

	n = snprintf(text, sizeof(text),
	    "# written by sealpost-admin domain add; read by the gateway's "
	    "DKIM signer\n"
	    "domain = %s\nmx = %s\nrsa-selector = %s\ned25519-selector = %s\n"
	    "dmarc-policy = %s\n%s%s%smta-sts-id = %s\ncreated = %s\n",
	    d->name, d->mx, d->sel_rsa, d->sel_ed, d->policy,
	    d->rua[0] ? "rua = " : "", d->rua, d->rua[0] ? "\n" : "",
	    d->sts_id, d->created);
	if (n < 0 || (size_t)n >= sizeof(text))
		return fail(d->name, "settings too long");
	if (path_join(path, sizeof(path), dir, "domain.conf") != 0 ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s.new", path) >= sizeof(tmp))
		return 1;
	(void)unlink(tmp);
	if ((rc = file_create(tmp, text, (size_t)n, 0600)) != 0 ||
	    (rc = owner_like(c->data_dir, tmp)) != 0 ||
	    (rename(tmp, path) != 0 && (rc = errno) != 0) ||
	    (rc = fsync_parent(path)) != 0) {
		(void)unlink(tmp);
		return fail(path, strerror(rc));
	}
	return 0;
}

/* Reads a private key of the expected type (EVP_PKEY_RSA or _ED25519). */
static int
key_load(const char *path, int type, EVP_PKEY **pk_r)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	EVP_PKEY *pk = NULL;
	BIO *b;
	int rc;

	*pk_r = NULL;
	if ((rc = slurp(path, PEM_MAX, &buf, &len)) != 0)
		return rc == ENOENT ? ENOENT : fail(path, strerror(rc));
	if ((b = BIO_new_mem_buf(buf, (int)len)) != NULL)
		pk = PEM_read_bio_PrivateKey(b, NULL, NULL,
		    (void *)(uintptr_t)"");
	BIO_free(b);
	slurp_free(buf, len);
	ERR_clear_error();
	if (pk == NULL || EVP_PKEY_get_base_id(pk) != type ||
	    (type == EVP_PKEY_RSA && EVP_PKEY_get_bits(pk) < 1024)) {
		EVP_PKEY_free(pk);
		return fail(path, type == EVP_PKEY_RSA ? "not an RSA private "
		    "key (PEM) of 1024 bits or more" : "not an Ed25519 "
		    "private key (PEM)");
	}
	*pk_r = pk;
	return 0;
}

/* Makes a key of type into the new file path (0600, the data directory's
 * owner); 0 or 1 after a message. */
static int
key_make(const struct ctx *c, const char *path, int type, EVP_PKEY **pk_r)
{
	EVP_PKEY *pk;
	BIO *b = NULL;
	int rc = 1, e;

	pk = type == EVP_PKEY_RSA ? EVP_RSA_gen(DKIM_RSA_BITS) :
	    EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (pk == NULL || (b = BIO_new(BIO_s_secmem())) == NULL ||
	    !PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL)) {
		(void)fail("making a DKIM key", ssl_error());
		goto out;
	}
	if ((e = bio_to_file(b, path, 0600)) != 0 ||
	    (e = owner_like(c->data_dir, path)) != 0) {
		(void)fail(path, strerror(e));
		goto out;
	}
	*pk_r = pk;
	pk = NULL;
	rc = 0;
out:
	BIO_free(b);
	EVP_PKEY_free(pk);
	return rc;
}

/* The p= of a DKIM record: base64 of the SubjectPublicKeyInfo for RSA
 * (RFC 6376 3.6.1), of the raw 32-byte key for Ed25519 (RFC 8463). */
static int
key_p(EVP_PKEY *pk, char *out, size_t cap)
{
	unsigned char raw[32], *der = NULL;
	size_t rawlen = sizeof(raw);
	int n;

	if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_ED25519) {
		if (EVP_PKEY_get_raw_public_key(pk, raw, &rawlen) != 1 ||
		    rawlen != sizeof(raw) || cap <
		    sodium_base64_ENCODED_LEN(rawlen,
		    sodium_base64_VARIANT_ORIGINAL))
			return -1;
		sodium_bin2base64(out, cap, raw, rawlen,
		    sodium_base64_VARIANT_ORIGINAL);
		return 0;
	}
	if ((n = i2d_PUBKEY(pk, &der)) <= 0)
		return -1;
	if (cap < sodium_base64_ENCODED_LEN((size_t)n,
	    sodium_base64_VARIANT_ORIGINAL)) {
		OPENSSL_free(der);
		return -1;
	}
	sodium_bin2base64(out, cap, der, (size_t)n,
	    sodium_base64_VARIANT_ORIGINAL);
	OPENSSL_free(der);
	return 0;
}

/* The p= for the key of type in path, making the key if create and it is
 * missing; 0, ENOENT (missing, !create) or 1 after a message. */
static int
key_public(const struct ctx *c, const char *path, int type, int create,
    char *p, size_t cap)
{
	EVP_PKEY *pk = NULL;
	int rc;

	rc = key_load(path, type, &pk);
	if (rc == ENOENT && create) {
		if ((rc = key_make(c, path, type, &pk)) == 0)
			fprintf(stderr, "created  %s (%s, mode 0600)\n", path,
			    type == EVP_PKEY_RSA ? "RSA-2048" : "Ed25519");
	} else if (rc == 0 && create)
		fprintf(stderr, "kept     %s (exists)\n", path);
	if (rc == ENOENT)
		return fail(path, "missing (sealpost-admin domain add makes "
		    "it)");
	if (rc != 0)
		return rc;
	rc = key_p(pk, p, cap) == 0 ? 0 : fail(path, "cannot encode the "
	    "public key");
	EVP_PKEY_free(pk);
	return rc;
}

static void
rr(const char *owner, const char *type, const char *data)
{
	printf("%-36s %d IN %-5s %s\n", owner, DNS_TTL, type, data);
}

/* A TXT record; a value beyond 255 bytes (an RSA key) is split into
 * several strings, which a resolver joins (RFC 7208 3.3, RFC 6376 3.6.2.2). */
static void
rr_txt(const char *owner, const char *value)
{
	size_t n = strlen(value), at;

	printf("%-36s %d IN TXT   ", owner, DNS_TTL);
	for (at = 0; at < n; at += 255)
		printf("%s\"%.*s\"", at ? " " : "", (int)(n - at < 255 ?
		    n - at : 255), value + at);
	printf("\n");
}

/* Prints the zone text for d: only comments and records, so that stdout
 * can be pasted or appended to a zone file as it is. */
static void
domain_print(const struct domain *d, const char *p_rsa, const char *p_ed)
{
	char owner[400], v[1024], mx[300], tlsrpt[300];
	const char *n = d->name;

	snprintf(mx, sizeof(mx), "%s.", d->mx);
	printf("; sealpost: the DNS records of %s (sealpost-admin domain "
	    "show %s)\n; The mail host %s needs A/AAAA records of its own, "
	    "and a PTR naming it.\n\n", n, n, d->mx);
	printf("; Mail for the domain goes to the gateway (port 25) on the "
	    "mail host.\n");
	snprintf(owner, sizeof(owner), "%s.", n);
	snprintf(v, sizeof(v), "10 %s", mx);
	rr(owner, "MX", v);
	printf("; SPF: only the domain's MX hosts send its mail.\n");
	rr_txt(owner, "v=spf1 mx -all");
	printf("; DKIM: the gateway signs outbound mail with both keys "
	    "(RFC 6376, RFC 8463).\n");
	snprintf(owner, sizeof(owner), "%s._domainkey.%s.", d->sel_rsa, n);
	snprintf(v, sizeof(v), "v=DKIM1; k=rsa; p=%s", p_rsa);
	rr_txt(owner, v);
	snprintf(owner, sizeof(owner), "%s._domainkey.%s.", d->sel_ed, n);
	snprintf(v, sizeof(v), "v=DKIM1; k=ed25519; p=%s", p_ed);
	rr_txt(owner, v);
	printf("; DMARC: what receivers do with mail that fails SPF and "
	    "DKIM alignment.\n");
	snprintf(owner, sizeof(owner), "_dmarc.%s.", n);
	snprintf(v, sizeof(v), "v=DMARC1; p=%s%s%s", d->policy,
	    d->rua[0] ? "; rua=" : "", d->rua);
	rr_txt(owner, v);
	printf("; MTA-STS (RFC 8461): senders must reach the MX over "
	    "verified TLS.  The id\n; changes whenever the policy does; "
	    "mta-sts.%s serves the policy below.\n", n);
	snprintf(owner, sizeof(owner), "_mta-sts.%s.", n);
	snprintf(v, sizeof(v), "v=STSv1; id=%s", d->sts_id);
	rr_txt(owner, v);
	snprintf(owner, sizeof(owner), "mta-sts.%s.", n);
	rr(owner, "CNAME", mx);
	printf("; TLS-RPT (RFC 8460): where senders report failed TLS "
	    "to the MX.\n");
	snprintf(owner, sizeof(owner), "_smtp._tls.%s.", n);
	snprintf(tlsrpt, sizeof(tlsrpt), "mailto:postmaster@%s", n);
	snprintf(v, sizeof(v), "v=TLSRPTv1; rua=%s", d->rua[0] ? d->rua :
	    tlsrpt);
	rr_txt(owner, v);
	printf("; WKD: OpenPGP users outside find each account's public key "
	    "at\n; https://openpgpkey.%s/.well-known/openpgpkey/%s/hu/..., "
	    "served by\n; sealpost-server (port 443), whose certificate must "
	    "name openpgpkey.%s.\n", n, n, n);
	snprintf(owner, sizeof(owner), "openpgpkey.%s.", n);
	rr(owner, "CNAME", mx);
	printf("; Autoconfig: Thunderbird asks https://autoconfig.%s/mail/"
	    "config-v1.1.xml.\n", n);
	snprintf(owner, sizeof(owner), "autoconfig.%s.", n);
	rr(owner, "CNAME", mx);
	printf("\n; The MTA-STS policy: serve these lines (without \"; \") as "
	    "text/plain at\n; https://mta-sts.%s/.well-known/mta-sts.txt "
	    "with a certificate that names\n; mta-sts.%s.\n"
	    "; BEGIN mta-sts.txt\n; version: STSv1\n; mode: enforce\n"
	    "; mx: %s\n; max_age: %d\n; END mta-sts.txt\n", n, n, d->mx,
	    STS_MAX_AGE);
}

/* The public halves of d's keys, made if create and missing. */
static int
domain_keys(const struct ctx *c, const char *dir, const struct domain *d,
    int create, char *p_rsa, size_t rcap, char *p_ed, size_t ecap)
{
	char path[PATH_MAX];

	if (key_path(dir, d->sel_rsa, "rsa", path, sizeof(path)) != 0 ||
	    key_public(c, path, EVP_PKEY_RSA, create, p_rsa, rcap) != 0 ||
	    key_path(dir, d->sel_ed, "ed25519", path, sizeof(path)) != 0 ||
	    key_public(c, path, EVP_PKEY_ED25519, create, p_ed, ecap) != 0)
		return 1;
	return 0;
}

/* Now in UTC: 2026-01-31T12:00:00Z, or 20260131120000 if compact. */
static void
utc_stamp(int compact, char *buf, size_t cap)
{
	time_t now = time(NULL);
	struct tm tm;
	size_t n;

	if (gmtime_r(&now, &tm) == NULL)
		n = 0;
	else if (compact)
		n = strftime(buf, cap, "%Y%m%d%H%M%S", &tm);
	else
		n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (n == 0)
		snprintf(buf, cap, "0");
}

/* The settings domain add arrives at: the old ones (if any) with what the
 * command line changes; *changed_r if the file must be written. */
static void
domain_settle(const struct args *a, const char *name, int had,
    struct domain *d, int *changed_r)
{
	struct domain old = *d;
	char stem[48], year[8], mxbuf[300];

	if (!had) {
		memset(d, 0, sizeof(*d));
		memcpy(d->name, name, strlen(name) + 1);
		/* check_domain_add saw that mail.NAME is a name. */
		snprintf(mxbuf, sizeof(mxbuf), "mail.%s", name);
		memcpy(d->mx, mxbuf, strlen(mxbuf) + 1);
		snprintf(d->policy, sizeof(d->policy), "quarantine");
		utc_stamp(0, d->created, sizeof(d->created));
		memcpy(year, d->created, 4);
		year[4] = 0;
		snprintf(stem, sizeof(stem), "sp%s", year);
	}
	if (a->selector)
		snprintf(stem, sizeof(stem), "%s", a->selector);
	if (!had || a->selector) {
		snprintf(d->sel_rsa, sizeof(d->sel_rsa), "%sr", stem);
		snprintf(d->sel_ed, sizeof(d->sel_ed), "%se", stem);
	}
	if (a->mx)
		(void)dns_name(a->mx, d->mx);
	if (a->policy)
		snprintf(d->policy, sizeof(d->policy), "%s", a->policy);
	if (a->rua)
		snprintf(d->rua, sizeof(d->rua), "%s%s", strncmp(a->rua,
		    "mailto:", 7) ? "mailto:" : "", a->rua);
	/* The MTA-STS policy names the MX: a new one needs a new id.  The
	 * id is the time, to the second; two changes within one second
	 * (a script) still get different ids: the old one plus one. */
	if (!had || strcmp(old.mx, d->mx) != 0) {
		utc_stamp(1, d->sts_id, sizeof(d->sts_id));
		if (had && strlen(old.sts_id) == 14 &&
		    strspn(old.sts_id, "0123456789") == 14 &&
		    strcmp(d->sts_id, old.sts_id) <= 0)
			snprintf(d->sts_id, sizeof(d->sts_id), "%llu",
			    strtoull(old.sts_id, NULL, 10) + 1);
	}
	*changed_r = !had || memcmp(&old, d, sizeof(old)) != 0;
}

static int
proceed_domain_add(struct ctx *c, const struct args *a)
{
	char name[254], dkim[PATH_MAX], dir[PATH_MAX];
	char p_rsa[1024], p_ed[64];
	struct domain d;
	int rc, had, changed = 0;

	(void)dns_name(a->pos[0], name);
	if ((rc = conf_read(c, name, &d)) != 0 && rc != ENOENT)
		return 1;
	had = rc == 0;
	domain_settle(a, name, had, &d, &changed);
	if (domain_dir(c, NULL, dkim, sizeof(dkim)) != 0 ||
	    domain_dir(c, name, dir, sizeof(dir)) != 0)
		return 1;
	if ((mkdir(dkim, 0700) != 0 && errno != EEXIST) ||
	    (owner_like(c->data_dir, dkim)) != 0)
		return fail(dkim, strerror(errno));
	if ((mkdir(dir, 0700) != 0 && errno != EEXIST) ||
	    (owner_like(c->data_dir, dir)) != 0)
		return fail(dir, strerror(errno));
	/* The keys before the settings that name them. */
	if (domain_keys(c, dir, &d, 1, p_rsa, sizeof(p_rsa), p_ed,
	    sizeof(p_ed)) != 0)
		return 1;
	if (changed && conf_write(c, dir, &d) != 0)
		return 1;
	fprintf(stderr, "%s %s (%s/domain.conf); its DNS records follow on "
	    "stdout.\nAdd %s to the domains of sealpost-server and "
	    "sealpost-gateway.\n", !had ? "recorded" : changed ? "updated " :
	    "kept    ", name, dir, name);
	if (had && a->selector)
		fprintf(stderr, "Keep the records of the former selectors "
		    "published until mail signed with them\nhas been "
		    "delivered (a week), then remove them.\n");
	domain_print(&d, p_rsa, p_ed);
	return 0;
}

static int
proceed_domain_show(struct ctx *c, const struct args *a)
{
	char name[254], dir[PATH_MAX], p_rsa[1024], p_ed[64];
	struct domain d;
	int rc;

	(void)dns_name(a->pos[0], name);
	if ((rc = conf_read(c, name, &d)) == ENOENT)
		return fail(name, "no such domain (sealpost-admin domain add "
		    "records one)");
	if (rc != 0 || domain_dir(c, name, dir, sizeof(dir)) != 0 ||
	    domain_keys(c, dir, &d, 0, p_rsa, sizeof(p_rsa), p_ed,
	    sizeof(p_ed)) != 0)
		return 1;
	domain_print(&d, p_rsa, p_ed);
	return 0;
}

static int
name_cmp(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

static int
proceed_domain_list(struct ctx *c, const struct args *a)
{
	char dkim[PATH_MAX], *names[DOMAINS_MAX], buf[254];
	struct dirent *e;
	struct domain d;
	size_t n = 0, i;
	DIR *dp;
	int rc = 0;

	if (domain_dir(c, NULL, dkim, sizeof(dkim)) != 0)
		return 1;
	if ((dp = opendir(dkim)) == NULL)
		return errno == ENOENT ? 0 : fail(dkim, strerror(errno));
	while ((e = readdir(dp)) != NULL && n < DOMAINS_MAX) {
		/* Only names that are domains: no ".", "..", or stray files. */
		if (dns_name(e->d_name, buf) != 0 ||
		    strcmp(buf, e->d_name) != 0)
			continue;
		if ((names[n] = strdup(e->d_name)) == NULL) {
			rc = fail("domain list", strerror(ENOMEM));
			break;
		}
		n++;
	}
	(void)closedir(dp);
	qsort(names, n, sizeof(names[0]), name_cmp);
	for (i = 0; i < n; i++) {
		int r = rc == 0 ? conf_read(c, names[i], &d) : ENOENT;

		if (r == 0)
			printf("%s\t%s\t%s\t%s\t%s\n", d.name, d.mx, d.sel_rsa,
			    d.sel_ed, d.created);
		else if (r != ENOENT)
			rc = 1;
		free(names[i]);
	}
	return rc;
}

/* ---- the table and main ------------------------------------------------- */

static const struct cmd cmds[] = {
	{ "init", NULL, "init [--tls-cert FILE --tls-key FILE] [--hostname "
	    "NAME]", "creates DIR (0700), its store, server.key and "
	    "tls/cert.pem + key.pem\n      (copies of FILEs, or self-signed "
	    "for NAME (localhost) and 127.0.0.1);\n      never replaces "
	    "anything; prints the server's flags",
	    OPT_TLS, 0, 0, check_init, proceed_init },
	{ "invite", NULL, "invite [--days N]",
	    "prints a one-time registration token (valid N days, 7)",
	    OPT_DAYS, 0, 1, NULL, proceed_invite },
	{ "status", NULL, "status",
	    "accounts, records, blobs and store size",
	    0, 0, 1, NULL, proceed_status },
	{ "user", "list", "user list", "one line per account, tab-separated: "
	    "address, created (UTC),\n      active|disabled, used bytes, quota "
	    "bytes or none",
	    0, 0, 1, NULL, proceed_user_list },
	{ "user", "disable", "user disable ADDRESS",
	    "refuses its logins, sessions and deliveries; revokes its sessions",
	    0, 1, 1, check_address, proceed_user_disable },
	{ "user", "enable", "user enable ADDRESS", "undoes disable",
	    0, 1, 1, check_address, proceed_user_enable },
	{ "user", "delete", "user delete ADDRESS --yes",
	    "deletes the account and all its mail, keys and sessions",
	    OPT_YES, 1, 1, check_delete, proceed_user_delete },
	{ "user", "quota", "user quota ADDRESS MB",
	    "sets the account's quota in MiB (0 = none)",
	    0, 2, 1, check_quota, proceed_user_quota },
	{ "user", "policy", "user policy ADDRESS encrypted-only|any",
	    "encrypted-only refuses the account's mail to recipients without "
	    "a key",
	    0, 2, 1, check_policy, proceed_user_policy },
	{ "backup", NULL, "backup DEST",
	    "consistent copy of the store into the new or empty directory "
	    "DEST,\n      while the server runs",
	    0, 1, 1, NULL, proceed_backup },
	{ "restore", NULL, "restore BACKUP [--force]", "puts a backup in "
	    "place as DIR/store; the server must be stopped.\n      Refuses "
	    "if the store holds data, unless --force: then the old store\n"
	    "      is moved to DIR/store.before-restore-TIME, not deleted",
	    OPT_FORCE, 1, 0, NULL, proceed_restore },
	{ "domain", "add", "domain add NAME [--selector S] [--mx HOST] "
	    "[--rua ADDRESS]\n      [--dmarc-policy none|quarantine|reject]",
	    "makes the domain's DKIM keys (RSA-2048 as Sr, Ed25519 as Se; S "
	    "spYEAR)\n      in DIR/dkim/NAME/, records the domain and prints "
	    "its DNS records\n      (MX to HOST, mail.NAME; reports to "
	    "ADDRESS); never replaces a key",
	    OPT_DOMAIN, 1, 1, check_domain_add, proceed_domain_add },
	{ "domain", "list", "domain list", "one line per domain, "
	    "tab-separated: name, mail host, RSA and Ed25519\n      "
	    "selectors, created (UTC)",
	    0, 0, 1, NULL, proceed_domain_list },
	{ "domain", "show", "domain show NAME",
	    "prints the domain's DNS records again",
	    0, 1, 1, check_domain_name, proceed_domain_show },
	{ NULL, NULL, NULL, NULL, 0, 0, 0, NULL, NULL },
};

/* The command named by argv[0] (and argv[1] for user and domain);
 * *used_r words. */
static const struct cmd *
cmd_find(int argc, char **argv, int *used_r)
{
	const struct cmd *c;
	int group = 0;

	for (c = cmds; c->name; c++) {
		if (strcmp(c->name, argv[0]) != 0)
			continue;
		group = 1;
		if (c->sub == NULL || (argc > 1 && !strcmp(c->sub, argv[1]))) {
			*used_r = c->sub ? 2 : 1;
			return c;
		}
	}
	if (group && argc > 1)
		(void)usage_error(NULL, "unknown %s command '%s'", argv[0],
		    argv[1]);
	else if (group && !strcmp(argv[0], "domain"))
		(void)usage_error(NULL, "%s", "domain needs a command: add, "
		    "list or show");
	else if (group)
		(void)usage_error(NULL, "%s", "user needs a command: list, "
		    "disable, enable, delete, quota or policy");
	else
		(void)usage_error(NULL, "unknown command '%s'", argv[0]);
	return NULL;
}

static int
store_open_existing(struct ctx *c)
{
	struct sp_store_opts o = { 0 };
	char f[PATH_MAX];
	int rc;

	if (path_join(f, sizeof(f), c->store_dir, "data.mdb") != 0)
		return 1;
	if (!exists(f)) {
		fprintf(stderr, "sealpost-admin: no store in %s (make one with"
		    ": sealpost-admin --data-dir %s init)\n", c->data_dir,
		    c->data_dir);
		return 1;
	}
	if ((rc = sp_store_open(c->store_dir, &o, &c->st)) != 0)
		return fail_store(c->store_dir, rc);
	return 0;
}

int
main(int argc, char **argv)
{
	struct ctx c = { .data_dir = "/var/lib/sealpost" };
	const struct cmd *cmd;
	struct args a;
	int i = 1, used = 0, rc;

	if (sodium_init() < 0) {
		fprintf(stderr, "sealpost-admin: libsodium failed to start\n");
		return 1;
	}
	if (argc > 1 && strncmp(argv[1], "--data-dir=", 11) == 0) {
		c.data_dir = argv[1] + 11;
		i = 2;
	} else if (argc > 1 && strcmp(argv[1], "--data-dir") == 0) {
		if (argc < 3)
			return usage_error(NULL, "%s", "--data-dir needs a "
			    "directory");
		c.data_dir = argv[2];
		i = 3;
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h") ||
	    !strcmp(argv[i], "help")) {
		usage(stdout);
		return 0;
	}
	if (c.data_dir[0] == 0)
		return usage_error(NULL, "%s", "--data-dir is empty");
	if ((cmd = cmd_find(argc - i, argv + i, &used)) == NULL)
		return 2;
	i += used;
	if ((rc = parse_args(cmd, argc - i, argv + i, &a)) != 0)
		return rc;
	if (path_join(c.store_dir, sizeof(c.store_dir), c.data_dir,
	    "store") != 0)
		return 1;
	if (cmd->store && store_open_existing(&c) != 0)
		return 1;
	rc = cmd->proceed(&c, &a);
	sp_store_close(c.st);
	return rc;
}
