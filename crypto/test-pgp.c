/*
 * Tests for the OpenPGP edge, against the real gpg command line: each gpg
 * home here is a directory of our own temporary root, and the library's
 * homes go to <root>/lib through $TMPDIR so we can prove none is left.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto/pgp.h"
#include "tests/unit.h"

extern char **environ;

static char root[PATH_MAX];	  /* everything this test creates */
static char libtmp[PATH_MAX + 8]; /* $TMPDIR for the library */
static char *cli_homes[16];	  /* gpg homes to kill agents for at the end */
static size_t ncli_homes;
static const char *run_stdout;	  /* where run() sends stdout, or /dev/null */
static const char *cli_pass = ""; /* the passphrase gpg() hands to gpg */

static const char msg[] = "Hello Bob,\nthis stays between us.\n";

/* ---- files and processes ---- */

static char *
path_in(const char *dir, const char *name)
{
	static char buf[4][PATH_MAX];
	static int i;

	i = (i + 1) % 4;
	if ((size_t)snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name) >=
	    sizeof(buf[i]))
		abort();
	return buf[i];
}

static unsigned char *
slurp(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	size_t cap = 0, n;

	*len_r = 0;
	if (f == NULL)
		return NULL;
	for (;;) {
		if (*len_r + 4096 + 1 > cap) {
			unsigned char *nb = realloc(buf, cap = cap * 2 + 8192);

			if (nb == NULL)
				break;
			buf = nb;
		}
		if ((n = fread(buf + *len_r, 1, 4096, f)) == 0)
			break;
		*len_r += n;
	}
	fclose(f);
	if (buf != NULL)
		buf[*len_r] = 0;
	return buf;
}

static int
spit(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");
	int ok;

	if (f == NULL)
		return -1;
	ok = fwrite(buf, 1, len, f) == len;
	return fclose(f) == 0 && ok ? 0 : -1;
}

/* Runs argv (a PATH lookup, no shell); stderr goes to <root>/cli.log. */
static int
run(char *const argv[])
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int status;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1,
	    run_stdout ? run_stdout : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC,
	    0600);
	posix_spawn_file_actions_addopen(&fa, 2, path_in(root, "cli.log"),
	    O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return -1;
	}
	posix_spawn_file_actions_destroy(&fa);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/*
 * gpg in home, non-interactive, no passphrases, status lines to
 * <home>/status; extra arguments end with NULL.
 */
static int
gpg(const char *home, ...)
{
	char *argv[40];
	int n = 0;
	va_list ap;
	const char *a;

	argv[n++] = strdup("gpg");
	argv[n++] = strdup("--homedir");
	argv[n++] = strdup(home);
	argv[n++] = strdup("--batch");
	argv[n++] = strdup("--yes");
	argv[n++] = strdup("--no-tty");
	argv[n++] = strdup("--pinentry-mode");
	argv[n++] = strdup("loopback");
	argv[n++] = strdup("--passphrase");
	argv[n++] = strdup(cli_pass);
	argv[n++] = strdup("--trust-model");
	argv[n++] = strdup("always");
	argv[n++] = strdup("--status-file");
	argv[n++] = strdup(path_in(home, "status"));
	va_start(ap, home);
	while ((a = va_arg(ap, const char *)) != NULL && n < 39)
		argv[n++] = strdup(a);
	va_end(ap);
	argv[n] = NULL;
	n = run(argv);
	for (int i = 0; argv[i] != NULL; i++)
		free(argv[i]);
	return n;
}

/* The status lines of the last gpg run in home, as one string. */
static char *
gpg_status(const char *home)
{
	size_t len;

	return (char *)slurp(path_in(home, "status"), &len);
}

static char *
cli_home(const char *name)
{
	char *home = strdup(path_in(root, name));

	/* Cheap passphrase hashing (the default calibrates to ~100 ms a go,
	 * seconds per test), and a pinentry that can only fail. */
	static const char conf[] =
	    "s2k-count 65536\n"
	    "pinentry-program /bin/false\nallow-loopback-pinentry\n";

	if (mkdir(home, 0700) != 0 ||
	    spit(path_in(home, "gpg-agent.conf"), conf, strlen(conf)) != 0)
		return NULL;
	cli_homes[ncli_homes++] = home;
	return home;
}

/*
 * Generates a key in home with the gpg command line; returns its
 * fingerprint (static) or NULL.  faked is a --faked-system-time or NULL.
 */
static const char *
cli_keygen(const char *home, const char *uid, const char *algo,
    const char *usage, const char *expire, const char *faked)
{
	static char fpr[SP_PGP_FPR_SIZE];
	char *st, *p;
	int rc;

	if (faked != NULL)
		rc = gpg(home, "--faked-system-time", faked, "--quick-gen-key",
		    uid, algo, usage, expire, NULL);
	else
		rc = gpg(
		    home, "--quick-gen-key", uid, algo, usage, expire, NULL);
	if (rc != 0 || (st = gpg_status(home)) == NULL)
		return NULL;
	p = strstr(st, "KEY_CREATED ");
	if (p == NULL || sscanf(p, "KEY_CREATED %*s %64s", fpr) != 1)
		fpr[0] = 0;
	free(st);
	return fpr[0] ? fpr : NULL;
}

/* Exports fpr from home (armored), public or secret; malloc'd bytes. */
static unsigned char *
cli_export(const char *home, const char *fpr, bool secret, size_t *len_r)
{
	const char *out = path_in(home, "export.asc");

	*len_r = 0;
	if (gpg(home, "--armor", "--output", out,
		secret ? "--export-secret-keys" : "--export", fpr, NULL) != 0)
		return NULL;
	return slurp(out, len_r);
}

static int
cli_import(const char *home, const void *key, size_t len)
{
	const char *in = path_in(home, "import.key");

	if (spit(in, key, len) != 0)
		return -1;
	return gpg(home, "--import", in, NULL);
}

/* The primary fingerprint from VALIDSIG in a status text, or NULL. */
static char *
validsig_primary(const char *status, char buf[SP_PGP_FPR_SIZE])
{
	const char *p = strstr(status, "[GNUPG:] VALIDSIG ");
	const char *eol, *last;

	if (p == NULL)
		return NULL;
	if ((eol = strchr(p, '\n')) == NULL)
		eol = p + strlen(p);
	for (last = eol; last > p && last[-1] != ' '; last--)
		;
	if (eol - last <= 0 || eol - last >= SP_PGP_FPR_SIZE)
		return NULL;
	memcpy(buf, last, (size_t)(eol - last));
	buf[eol - last] = 0;
	return buf;
}

static unsigned char *
find_bytes(unsigned char *hay, size_t n, const char *needle)
{
	return memmem(hay, n, needle, strlen(needle));
}

/* ---- library helpers ---- */

/* A fresh library key: secret (sodium) and public (malloc) bytes. */
static int
lib_key(sp_pgp *pgp, const char *uid, unsigned char **sec, size_t *seclen,
    unsigned char **pub, size_t *publen, char fpr[SP_PGP_FPR_SIZE])
{
	struct sp_pgp_keyinfo *info;
	int rc;

	if ((rc = sp_pgp_key_generate(pgp, uid, 0, 0, sec, seclen)) != 0)
		return rc;
	if ((rc = sp_pgp_key_import(
		 pgp, *sec, *seclen, 0, pub, publen, NULL, NULL)) != 0)
		return rc;
	if ((rc = sp_pgp_key_info(pgp, *pub, *publen, &info)) != 0)
		return rc;
	memcpy(fpr, info->fpr, SP_PGP_FPR_SIZE);
	sp_pgp_keyinfo_free(info);
	return 0;
}

/* gpg-agent processes whose command line names our root, zombies aside. */
static int
count_agents(const char *under)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		char p[300], buf[4096], state = 0;
		FILE *f;
		size_t len, i;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(p, sizeof(p), "/proc/%s/cmdline", de->d_name);
		if ((f = fopen(p, "rb")) == NULL)
			continue;
		len = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		for (i = 0; i < len; i++)
			if (buf[i] == 0)
				buf[i] = ' ';
		buf[len] = 0;
		if (strstr(buf, "gpg-agent") == NULL ||
		    strstr(buf, under) == NULL)
			continue;
		snprintf(p, sizeof(p), "/proc/%s/stat", de->d_name);
		if ((f = fopen(p, "r")) != NULL) {
			if (fscanf(f, "%*d (%*[^)]) %c", &state) != 1)
				state = 0;
			fclose(f);
		}
		if (state != 'Z')
			n++;
	}
	closedir(d);
	return n;
}

static int
count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* ---- tests ---- */

/* 1. generate, then export and import public and secret keys. */
static void
t_generate_roundtrip(void)
{
	sp_pgp *pgp = NULL;
	unsigned char *sec = NULL, *sec2 = NULL, *sec3 = NULL, *asec = NULL;
	unsigned char *pub = NULL, *pub2 = NULL, *apub = NULL, *junk = NULL;
	size_t seclen, sec2len, sec3len, aseclen, publen, pub2len, apublen;
	size_t junklen;
	struct sp_pgp_keyinfo *info = NULL, *info2 = NULL;

	CHECK_RC(sp_pgp_create(&pgp), 0);
	CHECK_RC(sp_pgp_key_generate(
		     pgp, "Alice <alice@example.org>", 0, 0, &sec, &seclen),
	    0);
	CHECK(sec != NULL && seclen > 100);
	/* Binary OpenPGP: a secret key packet (tag 5) comes first. */
	CHECK(sec != NULL && (sec[0] & 0x80) &&
	    ((sec[0] & 0x40 ? sec[0] & 0x3f : (sec[0] >> 2) & 0x0f) == 5));

	/* Public from secret; facts from both. */
	CHECK_RC(sp_pgp_key_import(
		     pgp, sec, seclen, 0, &pub, &publen, &sec2, &sec2len),
	    0);
	CHECK_RC(sp_pgp_key_info(pgp, pub, publen, &info), 0);
	CHECK_RC(sp_pgp_key_info(pgp, sec, seclen, &info2), 0);
	if (info != NULL && info2 != NULL) {
		CHECK(strlen(info->fpr) == 40);
		CHECK(strcmp(info->fpr, info2->fpr) == 0);
		CHECK(info->nuids == 1);
		CHECK(info->nuids == 1 &&
		    strcmp(info->uids[0].uid, "Alice <alice@example.org>") ==
			0);
		CHECK(info->nuids == 1 &&
		    strcmp(info->uids[0].email, "alice@example.org") == 0);
		CHECK(info->nuids == 1 &&
		    strcmp(info->uids[0].name, "Alice") == 0);
		CHECK(!info->revoked && !info->expired && !info->secret);
		CHECK(info->can_encrypt && info->can_sign);
		CHECK(info->expires == 0);
		CHECK(info->created > time(NULL) - 600 &&
		    info->created <= time(NULL) + 1);
		CHECK(info2->secret);
	}

	/* Public import is stable byte for byte; public has no secret. */
	CHECK_RC(
	    sp_pgp_key_import(pgp, pub, publen, 0, &pub2, &pub2len, NULL, NULL),
	    0);
	CHECK(pub2 != NULL && pub2len == publen &&
	    memcmp(pub, pub2, publen) == 0);
	CHECK_RC(
	    sp_pgp_key_import(pgp, pub, publen, 0, NULL, NULL, &junk, &junklen),
	    SP_ENOKEY);
	CHECK(junk == NULL && junklen == 0);

	/* Secret: re-imported key is the same key, and still works. */
	CHECK_RC(sp_pgp_key_import(
		     pgp, sec2, sec2len, 0, NULL, NULL, &sec3, &sec3len),
	    0);
	CHECK(sec3 != NULL && sec3len == sec2len &&
	    memcmp(sec2, sec3, sec2len) == 0);

	/* Armored forms, and armored input back to binary. */
	CHECK_RC(sp_pgp_key_import(pgp, sec, seclen, SP_PGP_ARMOR, &apub,
		     &apublen, &asec, &aseclen),
	    0);
	CHECK(apub != NULL &&
	    strncmp((char *)apub, "-----BEGIN PGP PUBLIC KEY BLOCK-----", 36) ==
		0);
	CHECK(asec != NULL &&
	    strncmp((char *)asec, "-----BEGIN PGP PRIVATE KEY BLOCK-----",
		37) == 0);
	free(pub2);
	pub2 = NULL;
	CHECK_RC(sp_pgp_key_import(
		     pgp, apub, apublen, 0, &pub2, &pub2len, NULL, NULL),
	    0);
	CHECK(pub2 != NULL && pub2len == publen &&
	    memcmp(pub, pub2, publen) == 0);

	sp_pgp_keyinfo_free(info);
	sp_pgp_keyinfo_free(info2);
	free(pub);
	free(pub2);
	free(apub);
	sodium_free(sec);
	sodium_free(sec2);
	sodium_free(sec3);
	sodium_free(asec);
	CHECK_RC(sp_pgp_destroy(pgp), 0);
}

/* 2. we encrypt and sign, the gpg command line decrypts and verifies. */
static void
t_lib_to_cli(void)
{
	sp_pgp *pgp = NULL;
	const char *home = cli_home("gpg-bob"), *bob;
	char bobfpr[SP_PGP_FPR_SIZE], afpr[SP_PGP_FPR_SIZE],
	    vbuf[SP_PGP_FPR_SIZE];
	unsigned char *asec = NULL, *apub = NULL, *bpub = NULL, *ct = NULL;
	unsigned char *pt = NULL;
	size_t aseclen, apublen, bpublen, ctlen, ptlen;
	struct sp_pgp_buf rcpt;
	char *st = NULL, *colons = NULL;
	unsigned flags;

	CHECK(home != NULL);
	bob = cli_keygen(home, "Bob <bob@example.org>", "future-default",
	    "default", "never", NULL);
	CHECK(bob != NULL);
	if (home == NULL || bob == NULL)
		return;
	snprintf(bobfpr, sizeof(bobfpr), "%s", bob);
	bpub = cli_export(home, bobfpr, false, &bpublen);
	CHECK(bpub != NULL);

	CHECK_RC(sp_pgp_create(&pgp), 0);
	CHECK_RC(lib_key(pgp, "Alice <alice@example.org>", &asec, &aseclen,
		     &apub, &apublen, afpr),
	    0);
	CHECK(cli_import(home, apub, apublen) == 0);

	/* Our key is Ed25519 (algo 22) with a Curve25519 subkey (18). */
	run_stdout = path_in(home, "colons");
	CHECK(gpg(home, "--with-colons", "--list-keys", afpr, NULL) == 0);
	run_stdout = NULL;
	colons = (char *)slurp(path_in(home, "colons"), &ptlen);
	CHECK(colons != NULL && strstr(colons, "\npub:") != NULL);
	if (colons != NULL) {
		char *p = strstr(colons, "pub:"), *s = strstr(colons, "\nsub:");

		CHECK(p != NULL &&
		    strncmp(strchr(p + 4, ':') + 1, "255:22:", 7) == 0);
		CHECK(s != NULL &&
		    strncmp(strchr(s + 5, ':') + 1, "255:18:", 7) == 0);
		CHECK(s != NULL && strstr(s, ":e:") != NULL);
	}

	rcpt.data = bpub;
	rcpt.len = bpublen;
	for (flags = 0; flags <= SP_PGP_ARMOR; flags++) {
		CHECK_RC(sp_pgp_encrypt(pgp, &rcpt, 1, asec, aseclen, msg,
			     strlen(msg), flags, &ct, &ctlen),
		    0);
		CHECK(ct != NULL && ctlen > 0);
		if (ct == NULL)
			break;
		CHECK((flags & SP_PGP_ARMOR) ==
		    (strncmp((char *)ct, "-----BEGIN PGP MESSAGE-----", 27) == 0
			    ? SP_PGP_ARMOR
			    : 0));
		CHECK(spit(path_in(home, "ct"), ct, ctlen) == 0);
		CHECK(gpg(home, "--output", path_in(home, "pt"), "--decrypt",
			  path_in(home, "ct"), NULL) == 0);
		pt = slurp(path_in(home, "pt"), &ptlen);
		CHECK(pt != NULL && ptlen == strlen(msg) &&
		    memcmp(pt, msg, ptlen) == 0);
		st = gpg_status(home);
		CHECK(st != NULL && strstr(st, "[GNUPG:] DECRYPTION_OKAY") &&
		    strstr(st, "[GNUPG:] GOODSIG "));
		CHECK(st != NULL && validsig_primary(st, vbuf) != NULL &&
		    strcmp(vbuf, afpr) == 0);
		free(st);
		free(pt);
		free(ct);
		st = NULL;
		pt = ct = NULL;
	}

	free(colons);
	free(bpub);
	free(apub);
	sodium_free(asec);
	CHECK_RC(sp_pgp_destroy(pgp), 0);
}

/* 3. the gpg command line (RSA keys) encrypts and signs, we decrypt. */
static void
t_cli_to_lib(void)
{
	sp_pgp *pgp = NULL;
	const char *home = cli_home("gpg-carol"), *carol;
	char cfpr[SP_PGP_FPR_SIZE], afpr[SP_PGP_FPR_SIZE];
	unsigned char *asec = NULL, *apub = NULL, *cpub = NULL, *csec = NULL;
	unsigned char *ct = NULL, *pt = NULL, *csec2 = NULL;
	size_t aseclen, apublen, cpublen, cseclen, ctlen, ptlen, csec2len;
	struct sp_pgp_buf signer;
	struct sp_pgp_keyinfo *info = NULL;
	struct sp_pgp_sig sig;

	CHECK(home != NULL);
	carol = cli_keygen(home, "Carol <carol@example.org>", "rsa2048",
	    "sign,cert", "never", NULL);
	CHECK(carol != NULL);
	if (home == NULL || carol == NULL)
		return;
	snprintf(cfpr, sizeof(cfpr), "%s", carol);
	CHECK(gpg(home, "--quick-add-key", cfpr, "rsa2048", "encr", "never",
		  NULL) == 0);
	cpub = cli_export(home, cfpr, false, &cpublen);
	csec = cli_export(home, cfpr, true, &cseclen);
	CHECK(cpub != NULL && csec != NULL);

	CHECK_RC(sp_pgp_create(&pgp), 0);
	CHECK_RC(lib_key(pgp, "Alice <alice@example.org>", &asec, &aseclen,
		     &apub, &apublen, afpr),
	    0);
	CHECK(cli_import(home, apub, apublen) == 0);
	CHECK(spit(path_in(home, "msg"), msg, strlen(msg)) == 0);
	CHECK(gpg(home, "--armor", "--output", path_in(home, "ct"),
		  "--local-user", cfpr, "--recipient", afpr, "--encrypt",
		  "--sign", path_in(home, "msg"), NULL) == 0);
	ct = slurp(path_in(home, "ct"), &ctlen);
	CHECK(ct != NULL);
	if (ct == NULL)
		goto out;

	signer.data = cpub;
	signer.len = cpublen;
	CHECK_RC(sp_pgp_decrypt(pgp, asec, aseclen, &signer, 1, ct, ctlen, &pt,
		     &ptlen, &sig),
	    0);
	CHECK(
	    pt != NULL && ptlen == strlen(msg) && memcmp(pt, msg, ptlen) == 0);
	CHECK(sig.status == SP_PGP_SIG_GOOD && sig.nsigs == 1);
	CHECK(strcmp(sig.primary_fpr, cfpr) == 0);
	CHECK(strcmp(sig.fpr, cfpr) == 0);
	CHECK(sig.created > time(NULL) - 600);
	free(pt);
	pt = NULL;

	/* The same message, without Carol's key: unknown, still readable. */
	CHECK_RC(sp_pgp_decrypt(
		     pgp, asec, aseclen, NULL, 0, ct, ctlen, &pt, &ptlen, &sig),
	    0);
	CHECK(pt != NULL && ptlen == strlen(msg));
	CHECK(sig.status == SP_PGP_SIG_UNKNOWN_KEY);
	CHECK(strlen(sig.fpr) >= 16 &&
	    strcmp(cfpr + strlen(cfpr) - strlen(sig.fpr), sig.fpr) == 0);
	CHECK(sig.primary_fpr[0] == 0);
	free(pt);
	pt = NULL;
	free(ct);

	/* Encrypted, not signed. */
	CHECK(gpg(home, "--output", path_in(home, "ct"), "--recipient", afpr,
		  "--encrypt", path_in(home, "msg"), NULL) == 0);
	ct = slurp(path_in(home, "ct"), &ctlen);
	CHECK_RC(sp_pgp_decrypt(pgp, asec, aseclen, &signer, 1, ct, ctlen, &pt,
		     &ptlen, &sig),
	    0);
	CHECK(sig.status == SP_PGP_SIG_NONE && sig.nsigs == 0);
	CHECK(pt != NULL && ptlen == strlen(msg));

	/* gpg's armored secret key comes in as our binary secret key. */
	CHECK_RC(sp_pgp_key_import(
		     pgp, csec, cseclen, 0, NULL, NULL, &csec2, &csec2len),
	    0);
	CHECK_RC(sp_pgp_key_info(pgp, csec2, csec2len, &info), 0);
	CHECK(info != NULL && info->secret && strcmp(info->fpr, cfpr) == 0);
	sp_pgp_keyinfo_free(info);

	/* No integrity protection (gpg streams such plaintext out before it
	 * fails): nothing may come back. */
	free(ct);
	free(pt);
	pt = NULL;
	CHECK(gpg(home, "--rfc2440", "--output", path_in(home, "ct"),
		  "--recipient", cfpr, "--encrypt", path_in(home, "msg"),
		  NULL) == 0);
	ct = slurp(path_in(home, "ct"), &ctlen);
	CHECK(ct != NULL);
	if (ct != NULL)
		CHECK_RC(sp_pgp_decrypt(pgp, csec2, csec2len, NULL, 0, ct,
			     ctlen, &pt, &ptlen, &sig),
		    SP_EAUTH);
	CHECK(pt == NULL);
out:
	free(pt);
	free(ct);
	free(cpub);
	free(csec);
	free(apub);
	sodium_free(asec);
	sodium_free(csec2);
	CHECK_RC(sp_pgp_destroy(pgp), 0);
}

/* Flips the first byte of needle inside buf; true if found. */
static bool
tamper(unsigned char *buf, size_t len, const char *needle)
{
	unsigned char *p = find_bytes(buf, len, needle);

	if (p == NULL)
		return false;
	*p ^= 0x01;
	return true;
}

/* 4. tampered signatures are bad, signatures by strangers unknown. */
static void
t_bad_and_unknown_sig(void)
{
	sp_pgp *pgp = NULL;
	const char *home = cli_home("gpg-dave"), *dave;
	char dfpr[SP_PGP_FPR_SIZE];
	unsigned char *dpub = NULL, *cs = NULL, *in = NULL, *det = NULL;
	unsigned char *dsec = NULL;
	unsigned char *pt = NULL, *data = NULL;
	size_t dpublen, dseclen, cslen, inlen, detlen, ptlen;
	struct sp_pgp_buf signer;
	struct sp_pgp_sig sig;

	CHECK(home != NULL);
	dave = cli_keygen(home, "Dave <dave@example.org>", "future-default",
	    "default", "never", NULL);
	CHECK(dave != NULL);
	if (home == NULL || dave == NULL)
		return;
	snprintf(dfpr, sizeof(dfpr), "%s", dave);
	dpub = cli_export(home, dfpr, false, &dpublen);
	dsec = cli_export(home, dfpr, true, &dseclen);
	signer.data = dpub;
	signer.len = dpublen;
	CHECK(spit(path_in(home, "msg"), msg, strlen(msg)) == 0);
	CHECK(gpg(home, "--output", path_in(home, "cs"), "--clearsign",
		  path_in(home, "msg"), NULL) == 0);
	CHECK(gpg(home, "--output", path_in(home, "in"), "--compress-algo",
		  "none", "--sign", path_in(home, "msg"), NULL) == 0);
	CHECK(gpg(home, "--output", path_in(home, "det"), "--detach-sign",
		  path_in(home, "msg"), NULL) == 0);
	cs = slurp(path_in(home, "cs"), &cslen);
	in = slurp(path_in(home, "in"), &inlen);
	det = slurp(path_in(home, "det"), &detlen);
	CHECK(cs && in && det && dpub && dsec);
	if (!cs || !in || !det || !dpub || !dsec)
		goto out;
	CHECK_RC(sp_pgp_create(&pgp), 0);

	/* Untouched: good, from Dave. */
	CHECK_RC(sp_pgp_verify(
		     pgp, &signer, 1, cs, cslen, NULL, 0, &pt, &ptlen, &sig),
	    0);
	CHECK(sig.status == SP_PGP_SIG_GOOD &&
	    strcmp(sig.primary_fpr, dfpr) == 0);
	CHECK(
	    pt != NULL && ptlen == strlen(msg) && memcmp(pt, msg, ptlen) == 0);
	free(pt);
	CHECK_RC(sp_pgp_verify(
		     pgp, &signer, 1, in, inlen, NULL, 0, &pt, &ptlen, &sig),
	    0);
	CHECK(sig.status == SP_PGP_SIG_GOOD);
	free(pt);
	CHECK_RC(sp_pgp_verify(pgp, &signer, 1, det, detlen, msg, strlen(msg),
		     NULL, NULL, &sig),
	    0);
	CHECK(sig.status == SP_PGP_SIG_GOOD &&
	    strcmp(sig.primary_fpr, dfpr) == 0);

	/* Signed is not encrypted: decrypt must not pass it off as such. */
	CHECK_RC(sp_pgp_decrypt(
		     pgp, dsec, dseclen, NULL, 0, in, inlen, &pt, &ptlen, &sig),
	    SP_EFORMAT);
	CHECK_RC(sp_pgp_decrypt(
		     pgp, dsec, dseclen, NULL, 0, cs, cslen, &pt, &ptlen, &sig),
	    SP_EFORMAT);
	CHECK(pt == NULL);

	/* Signed by Dave, but we were not given Dave's key. */
	CHECK_RC(
	    sp_pgp_verify(pgp, NULL, 0, cs, cslen, NULL, 0, &pt, &ptlen, &sig),
	    0);
	CHECK(sig.status == SP_PGP_SIG_UNKNOWN_KEY && sig.nsigs == 1);
	CHECK(strlen(sig.fpr) >= 16 &&
	    strcmp(dfpr + strlen(dfpr) - strlen(sig.fpr), sig.fpr) == 0);
	free(pt);

	/* One bit changed in the signed text: bad, no text back. */
	CHECK(tamper(cs, cslen, "stays"));
	CHECK_RC(sp_pgp_verify(
		     pgp, &signer, 1, cs, cslen, NULL, 0, &pt, &ptlen, &sig),
	    SP_ESIG);
	CHECK(sig.status == SP_PGP_SIG_BAD && pt == NULL && ptlen == 0);
	CHECK(strcmp(sig.primary_fpr, dfpr) == 0);
	CHECK(tamper(in, inlen, "stays"));
	CHECK_RC(sp_pgp_verify(
		     pgp, &signer, 1, in, inlen, NULL, 0, &pt, &ptlen, &sig),
	    SP_ESIG);
	CHECK(sig.status == SP_PGP_SIG_BAD && pt == NULL);
	data = (unsigned char *)strdup(msg);
	CHECK(tamper(data, strlen(msg), "stays"));
	CHECK_RC(sp_pgp_verify(pgp, &signer, 1, det, detlen, data, strlen(msg),
		     NULL, NULL, &sig),
	    SP_ESIG);
	CHECK(sig.status == SP_PGP_SIG_BAD);
	CHECK_RC(sp_pgp_destroy(pgp), 0);
out:
	free(data);
	free(dpub);
	free(dsec);
	free(cs);
	free(in);
	free(det);
}

/* 5. a message for Alice does not open with Mallory's key. */
static void
t_wrong_key(void)
{
	sp_pgp *pgp = NULL;
	unsigned char *asec = NULL, *apub = NULL, *msec = NULL, *mpub = NULL;
	unsigned char *ct = NULL, *pt = NULL, *ct2 = NULL;
	size_t aseclen, apublen, mseclen, mpublen, ctlen, ptlen, ct2len;
	char afpr[SP_PGP_FPR_SIZE], mfpr[SP_PGP_FPR_SIZE];
	struct sp_pgp_buf rcpt;
	struct sp_pgp_sig sig;

	CHECK_RC(sp_pgp_create(&pgp), 0);
	CHECK_RC(lib_key(pgp, "Alice <alice@example.org>", &asec, &aseclen,
		     &apub, &apublen, afpr),
	    0);
	CHECK_RC(lib_key(pgp, "Mallory <mallory@example.org>", &msec, &mseclen,
		     &mpub, &mpublen, mfpr),
	    0);
	CHECK(strcmp(afpr, mfpr) != 0);
	rcpt.data = apub;
	rcpt.len = apublen;
	CHECK_RC(sp_pgp_encrypt(
		     pgp, &rcpt, 1, NULL, 0, msg, strlen(msg), 0, &ct, &ctlen),
	    0);

	CHECK_RC(sp_pgp_decrypt(
		     pgp, msec, mseclen, NULL, 0, ct, ctlen, &pt, &ptlen, &sig),
	    SP_ENOKEY);
	CHECK(pt == NULL && ptlen == 0);
	/* A public key cannot decrypt either. */
	CHECK_RC(sp_pgp_decrypt(
		     pgp, apub, apublen, NULL, 0, ct, ctlen, &pt, &ptlen, &sig),
	    SP_ENOKEY);
	/* Alice's key still opens it: nothing stuck from the failures. */
	CHECK_RC(sp_pgp_decrypt(
		     pgp, asec, aseclen, NULL, 0, ct, ctlen, &pt, &ptlen, &sig),
	    0);
	CHECK(pt != NULL && ptlen == strlen(msg) &&
	    memcmp(pt, msg, ptlen) == 0 && sig.status == SP_PGP_SIG_NONE);
	free(pt);
	pt = NULL;
	/* And Mallory's still does not: Alice's key left with that call. */
	CHECK_RC(sp_pgp_decrypt(
		     pgp, msec, mseclen, NULL, 0, ct, ctlen, &pt, &ptlen, &sig),
	    SP_ENOKEY);

	/* The empty message round-trips, as a non-NULL empty buffer. */
	CHECK_RC(sp_pgp_encrypt(
		     pgp, &rcpt, 1, asec, aseclen, "", 0, 0, &ct2, &ct2len),
	    0);
	CHECK_RC(sp_pgp_decrypt(pgp, asec, aseclen, &rcpt, 1, ct2, ct2len, &pt,
		     &ptlen, &sig),
	    0);
	CHECK(pt != NULL && ptlen == 0 && sig.status == SP_PGP_SIG_GOOD);
	free(pt);
	free(ct2);
	pt = NULL;

	/* A flipped ciphertext byte fails. */
	ct[ctlen - 20] ^= 0x40;
	CHECK(sp_pgp_decrypt(pgp, asec, aseclen, NULL, 0, ct, ctlen, &pt,
		  &ptlen, &sig) != 0);
	CHECK(pt == NULL);

	free(ct);
	free(apub);
	free(mpub);
	sodium_free(asec);
	sodium_free(msec);
	CHECK_RC(sp_pgp_destroy(pgp), 0);
}

/* 6. revoked and expired keys are refused, loudly. */
static void
t_revoked_expired(void)
{
	sp_pgp *pgp = NULL;
	const char *home = cli_home("gpg-eve"), *k;
	char efpr[SP_PGP_FPR_SIZE], ffpr[SP_PGP_FPR_SIZE];
	char revpath[PATH_MAX];
	unsigned char *epub = NULL, *fpub = NULL, *rev = NULL, *ct = NULL;
	unsigned char *esig = NULL, *fsig = NULL, *gsec = NULL, *gpub = NULL;
	unsigned char *pt = NULL, *p;
	size_t epublen, fpublen, revlen, ctlen, esiglen, fsiglen, gseclen;
	size_t gpublen, ptlen;
	char gfpr[SP_PGP_FPR_SIZE];
	struct sp_pgp_buf rcpts[2];
	struct sp_pgp_keyinfo *info = NULL;
	struct sp_pgp_sig sig;

	CHECK(home != NULL);
	if (home == NULL)
		return;
	k = cli_keygen(home, "Eve <eve@example.org>", "future-default",
	    "default", "never", NULL);
	CHECK(k != NULL);
	snprintf(efpr, sizeof(efpr), "%s", k ? k : "");
	/* Born 2020-01-01, dead a day later. */
	k = cli_keygen(home, "Frank <frank@example.org>", "future-default",
	    "default", "1d", "20200101T000000");
	CHECK(k != NULL);
	snprintf(ffpr, sizeof(ffpr), "%s", k ? k : "");
	CHECK(spit(path_in(home, "msg"), msg, strlen(msg)) == 0);
	CHECK(gpg(home, "--output", path_in(home, "fsig"),
		  "--faked-system-time", "20200101T120000", "--local-user",
		  ffpr, "--sign", path_in(home, "msg"), NULL) == 0);
	CHECK(gpg(home, "--output", path_in(home, "esig"), "--local-user", efpr,
		  "--sign", path_in(home, "msg"), NULL) == 0);

	/* gpg wrote Eve's revocation at birth, defused by a leading ':'. */
	if ((size_t)snprintf(revpath, sizeof(revpath),
		"%s/openpgp-revocs.d/%s.rev", home, efpr) >= sizeof(revpath))
		abort();
	rev = slurp(revpath, &revlen);
	CHECK(rev != NULL &&
	    (p = find_bytes(rev, revlen,
		 ":-----BEGIN PGP PUBLIC KEY BLOCK-----")) != NULL);
	if (rev == NULL || p == NULL)
		goto out;
	memmove(p, p + 1, revlen - (size_t)(p - rev));
	revlen--;
	CHECK(cli_import(home, rev, revlen) == 0);
	epub = cli_export(home, efpr, false, &epublen);
	fpub = cli_export(home, ffpr, false, &fpublen);
	esig = slurp(path_in(home, "esig"), &esiglen);
	fsig = slurp(path_in(home, "fsig"), &fsiglen);
	CHECK(epub != NULL && fpub != NULL && esig != NULL && fsig != NULL);
	if (epub == NULL || fpub == NULL || esig == NULL || fsig == NULL)
		goto out;

	CHECK_RC(sp_pgp_create(&pgp), 0);
	CHECK_RC(sp_pgp_key_info(pgp, epub, epublen, &info), 0);
	CHECK(info != NULL && info->revoked && !info->can_encrypt &&
	    strcmp(info->fpr, efpr) == 0);
	sp_pgp_keyinfo_free(info);
	info = NULL;
	CHECK_RC(sp_pgp_key_info(pgp, fpub, fpublen, &info), 0);
	CHECK(info != NULL && info->expired && !info->revoked &&
	    !info->can_encrypt);
	/* 2020-01-01T00:00:00Z = 1577836800, plus one day. */
	CHECK(info != NULL && info->created == 1577836800 &&
	    info->expires == 1577836800 + 86400);
	sp_pgp_keyinfo_free(info);

	rcpts[0].data = epub;
	rcpts[0].len = epublen;
	CHECK_RC(sp_pgp_encrypt(
		     pgp, rcpts, 1, NULL, 0, msg, strlen(msg), 0, &ct, &ctlen),
	    SP_EKEYREVOKED);
	CHECK(ct == NULL && ctlen == 0);
	rcpts[0].data = fpub;
	rcpts[0].len = fpublen;
	CHECK_RC(sp_pgp_encrypt(
		     pgp, rcpts, 1, NULL, 0, msg, strlen(msg), 0, &ct, &ctlen),
	    SP_EKEYEXPIRED);
	CHECK(ct == NULL);

	/* One bad recipient among good ones fails the whole message. */
	CHECK_RC(lib_key(pgp, "Grace <grace@example.org>", &gsec, &gseclen,
		     &gpub, &gpublen, gfpr),
	    0);
	rcpts[0].data = gpub;
	rcpts[0].len = gpublen;
	rcpts[1].data = fpub;
	rcpts[1].len = fpublen;
	CHECK_RC(sp_pgp_encrypt(
		     pgp, rcpts, 2, NULL, 0, msg, strlen(msg), 0, &ct, &ctlen),
	    SP_EKEYEXPIRED);
	rcpts[1].data = epub;
	rcpts[1].len = epublen;
	CHECK_RC(sp_pgp_encrypt(pgp, rcpts, 2, gsec, gseclen, msg, strlen(msg),
		     0, &ct, &ctlen),
	    SP_EKEYREVOKED);
	CHECK(ct == NULL);
	/* ... and the good one alone works. */
	CHECK_RC(sp_pgp_encrypt(pgp, rcpts, 1, gsec, gseclen, msg, strlen(msg),
		     0, &ct, &ctlen),
	    0);
	free(ct);

	/* Old signatures by these keys verify, with the key's fate told. */
	rcpts[0].data = epub;
	rcpts[0].len = epublen;
	CHECK_RC(sp_pgp_verify(
		     pgp, rcpts, 1, esig, esiglen, NULL, 0, &pt, &ptlen, &sig),
	    0);
	CHECK(sig.status == SP_PGP_SIG_KEY_REVOKED &&
	    strcmp(sig.primary_fpr, efpr) == 0);
	free(pt);
	rcpts[0].data = fpub;
	rcpts[0].len = fpublen;
	CHECK_RC(sp_pgp_verify(
		     pgp, rcpts, 1, fsig, fsiglen, NULL, 0, &pt, &ptlen, &sig),
	    0);
	CHECK(sig.status == SP_PGP_SIG_EXPIRED &&
	    strcmp(sig.primary_fpr, ffpr) == 0);
	/* gpg's faked clock runs on from the time given, so a slow machine
	 * sees a second or two more. */
	CHECK(sig.created >= 1577836800 + 12 * 3600 &&
	    sig.created <= 1577836800 + 12 * 3600 + 30);
	free(pt);
out:
	CHECK_RC(sp_pgp_destroy(pgp), 0);
	free(rev);
	free(epub);
	free(fpub);
	free(esig);
	free(fsig);
	free(gpub);
	sodium_free(gsec);
}

/* A passphrase-protected key is refused at once, and nobody is asked. */
static void
t_protected_key(void)
{
	sp_pgp *pgp = NULL;
	const char *home = cli_home("gpg-heidi"), *k;
	char hfpr[SP_PGP_FPR_SIZE];
	unsigned char *hsec = NULL, *hpub = NULL, *ct = NULL, *out = NULL;
	size_t hseclen, hpublen, ctlen, outlen;
	struct sp_pgp_buf rcpt;
	struct sp_pgp_keyinfo *info = NULL;
	struct sp_pgp_sig sig;

	CHECK(home != NULL);
	if (home == NULL)
		return;
	cli_pass = "correct horse";
	k = cli_keygen(home, "Heidi <heidi@example.org>", "future-default",
	    "default", "never", NULL);
	CHECK(k != NULL);
	snprintf(hfpr, sizeof(hfpr), "%s", k ? k : "");
	hsec = cli_export(home, hfpr, true, &hseclen);
	hpub = cli_export(home, hfpr, false, &hpublen);
	cli_pass = "";
	CHECK(hsec != NULL && hpub != NULL);
	if (hsec == NULL || hpub == NULL)
		goto out;

	CHECK_RC(sp_pgp_create(&pgp), 0);
	/* Facts need no passphrase. */
	CHECK_RC(sp_pgp_key_info(pgp, hsec, hseclen, &info), 0);
	CHECK(info != NULL && info->secret && strcmp(info->fpr, hfpr) == 0);
	sp_pgp_keyinfo_free(info);
	/* Using or exporting the secret key would need one: refused. */
	CHECK_RC(
	    sp_pgp_key_import(pgp, hsec, hseclen, 0, NULL, NULL, &out, &outlen),
	    SP_EPGP);
	CHECK(out == NULL);
	rcpt.data = hpub;
	rcpt.len = hpublen;
	CHECK_RC(sp_pgp_encrypt(
		     pgp, &rcpt, 1, NULL, 0, msg, strlen(msg), 0, &ct, &ctlen),
	    0);
	CHECK(sp_pgp_decrypt(pgp, hsec, hseclen, NULL, 0, ct, ctlen, &out,
		  &outlen, &sig) != 0 &&
	    out == NULL);
	CHECK(sp_pgp_encrypt(pgp, &rcpt, 1, hsec, hseclen, msg, strlen(msg), 0,
		  &out, &outlen) != 0 &&
	    out == NULL);
	free(ct);

	/* A message for a passphrase, not a key: refused, nobody asked. */
	CHECK(spit(path_in(home, "msg"), msg, strlen(msg)) == 0);
	cli_pass = "correct horse";
	CHECK(gpg(home, "--output", path_in(home, "sym"), "--symmetric",
		  path_in(home, "msg"), NULL) == 0);
	cli_pass = "";
	ct = slurp(path_in(home, "sym"), &ctlen);
	CHECK(ct != NULL);
	if (ct != NULL)
		CHECK_RC(sp_pgp_decrypt(pgp, hsec, hseclen, NULL, 0, ct, ctlen,
			     &out, &outlen, &sig),
		    SP_EPGP);
	free(ct);
	CHECK_RC(sp_pgp_destroy(pgp), 0);
out:
	free(hsec);
	free(hpub);
}

/* 8. garbage in, an error code out, nothing else. */
static void
t_garbage(void)
{
	static const char armored[] =
	    "-----BEGIN PGP MESSAGE-----\n\n"
	    "bm90IGEgbWVzc2FnZQo=\n=AAAA\n-----END PGP MESSAGE-----\n";
	sp_pgp *pgp = NULL;
	unsigned char *sec = NULL, *pub = NULL, *two = NULL, *out = NULL;
	unsigned char *out2 = NULL, rnd[3000];
	size_t seclen, publen, outlen, out2len, i;
	char fpr[SP_PGP_FPR_SIZE];
	struct sp_pgp_keyinfo *info = NULL;
	struct sp_pgp_sig sig;
	struct sp_pgp_buf rcpt;
	struct {
		const void *p;
		size_t n;
	} in[] = {
	    {rnd, 1},
	    {rnd, 17},
	    {rnd, sizeof(rnd)},
	    {armored, sizeof(armored) - 1},
	    {"\x99\x00\x01", 3}, /* a public key packet, truncated */
	    {"\x85\xff\xff", 3},
	};

	randombytes_buf(rnd, sizeof(rnd));
	rnd[0] = 0x84; /* an old-format packet header, so gpg looks inside */
	CHECK_RC(sp_pgp_create(&pgp), 0);
	CHECK_RC(lib_key(pgp, "Alice <alice@example.org>", &sec, &seclen, &pub,
		     &publen, fpr),
	    0);

	for (i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		rcpt.data = in[i].p;
		rcpt.len = in[i].n;
		CHECK(sp_pgp_key_import(pgp, in[i].p, in[i].n, 0, &out, &outlen,
			  NULL, NULL) != 0 &&
		    out == NULL);
		CHECK(sp_pgp_key_info(pgp, in[i].p, in[i].n, &info) != 0 &&
		    info == NULL);
		CHECK(sp_pgp_decrypt(pgp, sec, seclen, NULL, 0, in[i].p,
			  in[i].n, &out, &outlen, &sig) != 0 &&
		    out == NULL);
		CHECK(sp_pgp_verify(pgp, NULL, 0, in[i].p, in[i].n, NULL, 0,
			  &out, &outlen, &sig) != 0 &&
		    out == NULL);
		CHECK(sp_pgp_verify(pgp, NULL, 0, in[i].p, in[i].n, msg,
			  strlen(msg), NULL, NULL, &sig) != 0);
		CHECK(sp_pgp_encrypt(pgp, &rcpt, 1, NULL, 0, msg, strlen(msg),
			  0, &out, &outlen) != 0 &&
		    out == NULL);
		CHECK(sp_pgp_encrypt(pgp, &rcpt, 1, NULL, 0, msg, strlen(msg),
			  0, &out, &outlen) != 0 &&
		    out == NULL);
		/* Garbage as the key to decrypt or sign with. */
		rcpt.data = pub;
		rcpt.len = publen;
		CHECK(sp_pgp_encrypt(pgp, &rcpt, 1, in[i].p, in[i].n, msg,
			  strlen(msg), 0, &out, &outlen) != 0 &&
		    out == NULL);
	}
	/* The garbage did not poison the handle. */
	rcpt.data = pub;
	rcpt.len = publen;
	CHECK_RC(sp_pgp_encrypt(pgp, &rcpt, 1, sec, seclen, msg, strlen(msg), 0,
		     &out, &outlen),
	    0);
	free(out);
	out = NULL;

	/* Two certificates in one block are refused, not half-used. */
	CHECK_RC(sp_pgp_key_generate(
		     pgp, "Bob <bob@example.org>", 0, 0, &out2, &out2len),
	    0);
	CHECK_RC(
	    sp_pgp_key_import(pgp, out2, out2len, 0, &out, &outlen, NULL, NULL),
	    0);
	two = malloc(publen + outlen);
	memcpy(two, pub, publen);
	memcpy(two + publen, out, outlen);
	rcpt.data = two;
	rcpt.len = publen + outlen;
	free(out);
	out = NULL;
	CHECK_RC(sp_pgp_key_info(pgp, two, publen + outlen, &info), SP_EFORMAT);
	CHECK_RC(sp_pgp_encrypt(pgp, &rcpt, 1, NULL, 0, msg, strlen(msg), 0,
		     &out, &outlen),
	    SP_EFORMAT);

	/* Bad arguments. */
	CHECK_RC(sp_pgp_create(NULL), SP_EINVAL);
	CHECK_RC(sp_pgp_key_generate(pgp, "", 0, 0, &out, &outlen), SP_EINVAL);
	CHECK_RC(
	    sp_pgp_key_generate(pgp, "A\nB", 0, 0, &out, &outlen), SP_EINVAL);
	CHECK_RC(
	    sp_pgp_key_generate(NULL, "A", 0, 0, &out, &outlen), SP_EINVAL);
	CHECK_RC(sp_pgp_key_info(pgp, pub, 0, &info), SP_EINVAL);
	CHECK_RC(
	    sp_pgp_encrypt(pgp, NULL, 0, NULL, 0, msg, 1, 0, &out, &outlen),
	    SP_EINVAL);
	CHECK_RC(sp_pgp_verify(
		     pgp, NULL, 0, pub, publen, msg, 1, &out, &outlen, &sig),
	    SP_EINVAL);
	CHECK_RC(sp_pgp_destroy(NULL), 0);

	free(two);
	free(pub);
	sodium_free(sec);
	sodium_free(out2);
	CHECK_RC(sp_pgp_destroy(pgp), 0);
}

/* 7. nothing of ours is left: no home, no agent. */
static void
t_no_leftovers(void)
{
	sp_pgp *pgp = NULL;
	unsigned char *sec = NULL, *pub = NULL;
	size_t seclen, len;
	char home[PATH_MAX + 300] = "", *listing;
	DIR *d;
	struct dirent *de;
	int i, n;

	/* A handle that never worked goes away quietly too. */
	CHECK_RC(sp_pgp_create(&pgp), 0);
	CHECK_RC(sp_pgp_destroy(pgp), 0);

	/* The agent exists while the handle does, so we can see it go. */
	CHECK_RC(sp_pgp_create(&pgp), 0);
	CHECK(count_entries(libtmp) == 1);
	CHECK_RC(sp_pgp_key_generate(
		     pgp, "Alice <alice@example.org>", 0, 0, &sec, &seclen),
	    0);
	CHECK(count_agents(libtmp) == 1);

	/* Between calls the home holds no key, public or secret. */
	if ((d = opendir(libtmp)) != NULL) {
		while ((de = readdir(d)) != NULL)
			if (strncmp(de->d_name, "sp-pgp-", 7) == 0)
				if ((size_t)snprintf(home, sizeof(home),
					"%s/%s", libtmp,
					de->d_name) >= sizeof(home))
					abort();
		closedir(d);
	}
	CHECK(home[0] != 0);
	CHECK(count_entries(path_in(home, "private-keys-v1.d")) == 0);
	run_stdout = path_in(root, "listing");
	CHECK(gpg(home, "--with-colons", "--list-keys", NULL) != -1);
	listing = (char *)slurp(run_stdout, &len);
	CHECK(listing != NULL && strstr(listing, "pub:") == NULL);
	free(listing);
	CHECK(gpg(home, "--with-colons", "--list-secret-keys", NULL) != -1);
	listing = (char *)slurp(run_stdout, &len);
	CHECK(listing != NULL && strstr(listing, "sec:") == NULL);
	free(listing);
	run_stdout = NULL;
	/* The key we got back still works: it was exported before deletion. */
	CHECK_RC(
	    sp_pgp_key_import(pgp, sec, seclen, 0, &pub, &len, NULL, NULL), 0);
	free(pub);
	sodium_free(sec);
	CHECK_RC(sp_pgp_destroy(pgp), 0);

	/* Every test above destroyed its handles: all of it must be gone. */
	CHECK(count_entries(libtmp) == 0);
	for (i = 0; i < 100 && (n = count_agents(libtmp)) != 0; i++)
		usleep(10 * 1000);
	CHECK(n == 0);
	if (i > 0)
		fprintf(stderr, "# waited %d ms for agents\n", i * 10);
}

static double
since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) +
	    (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* RUN, with the case's wall time as a TAP comment. */
#define TIMED(fn)                                                              \
	do {                                                                   \
		clock_gettime(CLOCK_MONOTONIC, &tc);                           \
		RUN(fn);                                                       \
		printf("#   %.2f s\n", since(&tc));                            \
	} while (0)

static void
rm_rf(const char *path)
{
	char *const argv[] = {strdup("rm"), strdup("-rf"), strdup(path), NULL};

	(void)run(argv);
	for (int i = 0; argv[i] != NULL; i++)
		free(argv[i]);
}

int
main(void)
{
	const char *base = getenv("TMPDIR");
	struct timespec t0, tc;
	size_t i;
	int rc;

	if (sodium_init() < 0)
		return 1;
	if ((size_t)snprintf(root, sizeof(root), "%s/sp-test-pgp-XXXXXX",
		base != NULL && base[0] == '/' ? base : "/tmp") >=
		sizeof(root) ||
	    mkdtemp(root) == NULL)
		return 1;
	if ((size_t)snprintf(libtmp, sizeof(libtmp), "%s/lib", root) >=
	    sizeof(libtmp))
		return 1;
	if (mkdir(libtmp, 0700) != 0 || setenv("TMPDIR", libtmp, 1) != 0)
		return 1;
	printf("# gpgme %s\n", sp_pgp_version());

	clock_gettime(CLOCK_MONOTONIC, &t0);
	TIMED(t_generate_roundtrip);
	TIMED(t_lib_to_cli);
	TIMED(t_cli_to_lib);
	TIMED(t_bad_and_unknown_sig);
	TIMED(t_wrong_key);
	TIMED(t_revoked_expired);
	TIMED(t_protected_key);
	TIMED(t_garbage);
	TIMED(t_no_leftovers);
	printf("# total %.2f s\n", since(&t0));

	for (i = 0; i < ncli_homes; i++) {
		char *const argv[] = {strdup("gpgconf"), strdup("--homedir"),
		    cli_homes[i], strdup("--kill"), strdup("all"), NULL};

		(void)run(argv);
		free(argv[0]);
		free(argv[1]);
		free(argv[3]);
		free(argv[4]);
		free(cli_homes[i]);
	}
	rc = unit_done();
	if (rc == 0 || getenv("SP_KEEP_TMP") == NULL)
		rm_rf(root);
	else
		fprintf(stderr, "# kept %s\n", root);
	return rc;
}
