/*
 * `sealpost keys [list|show ADDRESS|accept ADDRESS]` and
 * `sealpost fingerprint [ADDRESS]`: the pins of client-core/keys.h, for
 * people.  A changed key is an event the user must see and decide on, so
 * every path that meets one says so and exits 1.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "client-core/cli.h"
#include "client-core/keys.h"
#include "client-core/pgpkeys.h"
#include "proto/summary.h"

static void
print_date(const char *label, uint64_t t)
{
	char buf[64] = "?";
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) != NULL)
		strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &tm);
	printf("  %-14s %s\n", label, buf);
}

static void
print_hex(const char *label, const uint8_t *b, size_t n)
{
	size_t i;

	printf("  %-14s ", label);
	for (i = 0; i < n; i++)
		printf("%02x", b[i]);
	printf("\n");
}

static void
fpr_of(const struct sp_keys_info *k, char out[SP_KEYS_FPR_BYTES])
{
	sp_keys_fingerprint(k->pk.identity_pk, k->pk.encryption_pk, out);
}

static int
keys_list(sp_session *s)
{
	sp_cache *cache = sp_session_cache(s);
	char *list = NULL, *a, fpr[SP_KEYS_FPR_BYTES];
	size_t n = 0, i;
	int rc;

	if ((rc = sp_keys_list(cache, &list, &n)) != 0) {
		fprintf(stderr, "sealpost: the pinned keys: %s\n",
		    sp_strerror(rc));
		return 1;
	}
	if (n == 0)
		printf("no pinned keys yet\n");
	for (i = 0, a = list; i < n; i++, a += strlen(a) + 1) {
		struct sp_keys_info k;

		if ((rc = sp_keys_pinned(cache, a, &k)) != 0) {
			printf("%-32s (unreadable: %s)\n", a, sp_strerror(rc));
			continue;
		}
		fpr_of(&k, fpr);
		printf("%-32s %s\n", a, fpr);
		sp_keys_info_finish(&k);
	}
	free(list);
	return 0;
}

/* ---- contacts' OpenPGP keys (pgpkeys.h) ------------------------------- */

/* `keys show` for an outside correspondent's OpenPGP pin: 0 usable, 1 not
 * (revoked, expired, a change waiting: said why), -1 no such pin. */
static int
keys_show_pgp(sp_session *s, const char *address)
{
	struct sp_pgpkeys_pin pin;
	char err[1024] = "";
	sp_pgp *pgp = NULL;
	int rc, status = 0;

	if (sp_pgpkeys_get(sp_session_cache(s), address, &pin) != 0)
		return -1;
	printf("%s\n", pin.address);
	printf("  %-14s %s\n", "OpenPGP key", pin.fpr);
	printf("  %-14s %s\n", "from", sp_pgpkeys_source_name(pin.source));
	print_date("pinned", pin.first_seen);
	if (pin.pending_len) {
		printf("  %-14s %s (from %s), NOT accepted: compare it, then "
		    "`sealpost keys accept %s`\n", "changed to",
		    pin.pending_fpr, sp_pgpkeys_source_name(
		    pin.pending_source), pin.address);
		status = 1;
	}
	if ((rc = sp_pgp_create(&pgp)) != 0 ||
	    (rc = sp_pgpkeys_usable(sp_session_cache(s), pgp, address, err,
	    sizeof(err))) != 0) {
		printf("  %-14s no: %s\n", "usable", err[0] ? err :
		    sp_strerror(rc));
		fprintf(stderr, "sealpost: %s\n", err[0] ? err :
		    sp_strerror(rc));
		status = 1;
	} else {
		printf("  %-14s yes\n", "usable");
	}
	(void)sp_pgp_destroy(pgp);
	sp_pgpkeys_pin_finish(&pin);
	return status;
}

static int
keys_show(sp_session *s, const char *address)
{
	struct sp_keys_info pin, served;
	char fpr[SP_KEYS_FPR_BYTES], err[512] = "";
	int rc, status = 0;

	if ((rc = sp_keys_pinned(sp_session_cache(s), address, &pin)) ==
	    ENOENT && (status = keys_show_pgp(s, address)) >= 0)
		return status;
	status = 0;
	if (rc != 0) {
		fprintf(stderr, "sealpost: %s: %s\n", address, rc == ENOENT ?
		    "no pinned key (it is pinned when you first write to or "
		    "read from it, or with `sealpost fingerprint ADDRESS`)" :
		    sp_strerror(rc));
		return 1;
	}
	fpr_of(&pin, fpr);
	printf("%s\n", pin.pk.address);
	printf("  %-14s %s\n", "fingerprint", fpr);
	print_hex("identity", pin.pk.identity_pk, 32);
	print_hex("encryption", pin.pk.encryption_pk, 32);
	print_date("created", pin.pk.created);
	print_date("pinned", pin.first_seen);
	printf("  %-14s %s\n", "OpenPGP key", pin.pk.pgp_len ? "yes" : "no");
	rc = sp_keys_fetch(sp_session_client(s), address, &served, err,
	    sizeof(err));
	if (rc == 0) {
		if (served.raw_len == pin.raw_len &&
		    memcmp(served.raw, pin.raw, pin.raw_len) == 0) {
			printf("  %-14s serves the pinned key\n", "directory");
		} else {
			fpr_of(&served, fpr);
			printf("  %-14s serves ANOTHER key: %s\n", "directory",
			    fpr);
			status = 1;
		}
		sp_keys_info_finish(&served);
	} else {
		printf("  %-14s %s\n", "directory", err);
		status = 1;
	}
	sp_keys_info_finish(&pin);
	return status;
}

static int
keys_accept(sp_session *s, const char *address, const char *expect)
{
	struct sp_keys_info old, k;
	char fpr[SP_KEYS_FPR_BYTES], ofpr[SP_KEYS_FPR_BYTES], err[512] = "";
	int rc, had;

	had = sp_keys_pinned(sp_session_cache(s), address, &old) == 0;
	if (had)
		fpr_of(&old, ofpr);
	sp_keys_info_finish(&old);
	if ((rc = sp_keys_accept(sp_session_cache(s), sp_session_client(s),
	    address, expect, &k, err, sizeof(err))) != 0) {
		fprintf(stderr, "sealpost: %s\n", err);
		return 1;
	}
	fpr_of(&k, fpr);
	printf("pinned the key of %s: %s\n", k.pk.address, fpr);
	if (had && strcmp(ofpr, fpr) != 0)
		printf("(it replaces %s)\n", ofpr);
	sp_keys_info_finish(&k);
	return 0;
}


static void
import_report(void *arg, const char *address, int rc, const char *fpr,
    const char *err)
{
	(void)arg;
	if (rc == 0)
		printf("pinned the OpenPGP key of %s: %s\n", address, fpr);
	else
		fprintf(stderr, "sealpost: %s\n", err);
}

static int
read_file(const char *path, uint8_t **buf_r, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	uint8_t *b;
	size_t n;

	if (f == NULL)
		return errno;
	if ((b = malloc(SP_PGPKEYS_KEY_MAX + 1)) == NULL) {
		fclose(f);
		return ENOMEM;
	}
	n = fread(b, 1, SP_PGPKEYS_KEY_MAX + 1, f);
	fclose(f);
	if (n > SP_PGPKEYS_KEY_MAX) {
		free(b);
		return SP_ELIMIT;
	}
	*buf_r = b;
	*len_r = n;
	return 0;
}

/* `keys import FILE` and `keys wkd ADDRESS`: exit 1 for a changed key
 * (kept waiting for `keys accept`) as for any failure. */
static int
keys_pgp(sp_session *s, const char *sub, const char *arg,
    const char *wkd_base, const char *wkd_ca)
{
	char err[1024] = "", fpr[SP_PGP_FPR_SIZE];
	uint8_t *key = NULL;
	size_t len = 0;
	sp_pgp *pgp = NULL;
	int rc;

	if ((rc = sp_pgp_create(&pgp)) != 0) {
		fprintf(stderr, "sealpost: gpg: %s\n", sp_strerror(rc));
		return 1;
	}
	if (strcmp(sub, "import") == 0) {
		if ((rc = read_file(arg, &key, &len)) != 0)
			fprintf(stderr, "sealpost: %s: %s\n", arg,
			    sp_strerror(rc));
		else if ((rc = sp_pgpkeys_import(sp_session_cache(s), pgp, key,
		    len, import_report, NULL, err, sizeof(err))) != 0 &&
		    err[0])
			fprintf(stderr, "sealpost: %s: %s\n", arg, err);
	} else {
		rc = sp_pgpkeys_wkd(sp_session_cache(s), pgp, arg, wkd_base,
		    wkd_ca, fpr, err, sizeof(err));
		if (rc == 0)
			printf("pinned the OpenPGP key of %s (from WKD): %s\n",
			    arg, fpr);
		else
			fprintf(stderr, "sealpost: %s\n", err);
	}
	free(key);
	(void)sp_pgp_destroy(pgp);
	return rc == 0 ? 0 : 1;
}

/* `keys accept ADDRESS` for an OpenPGP key waiting: 0 accepted, 1 failed,
 * -1 none waits (the sealpost key directory's turn). */
static int
keys_accept_pgp(sp_session *s, const char *address, const char *expect)
{
	struct sp_pgpkeys_pin pin;
	char err[1024] = "", fpr[SP_PGP_FPR_SIZE];
	int rc, waiting;

	if (sp_pgpkeys_get(sp_session_cache(s), address, &pin) != 0)
		return -1;
	waiting = pin.pending_len > 0;
	sp_pgpkeys_pin_finish(&pin);
	if (!waiting)
		return -1;
	if ((rc = sp_pgpkeys_accept(sp_session_cache(s), address, expect,
	    fpr, err, sizeof(err))) != 0) {
		fprintf(stderr, "sealpost: %s\n", err);
		return 1;
	}
	printf("pinned the OpenPGP key of %s: %s\n", address, fpr);
	return 0;
}

int
cmd_keys(int argc, char **argv)
{
	const char *expect = NULL, *wkd_base = NULL, *wkd_ca = NULL;
	const struct cli_opt opts[] = {
		{ "fingerprint", &expect, NULL },
		{ "wkd-base", &wkd_base, NULL }, { "wkd-ca", &wkd_ca, NULL },
		{ NULL, NULL, NULL },
	};
	struct cli o;
	sp_session *s;
	const char *sub;
	int rc = 2;

	if (cli_parse(&o, argc, argv, opts) != 0)
		return 2;
	sub = o.nargs > 0 ? o.args[0] : "list";
	if (!((strcmp(sub, "list") == 0 && o.nargs <= 1) ||
	    ((strcmp(sub, "show") == 0 || strcmp(sub, "accept") == 0 ||
	    strcmp(sub, "import") == 0 || strcmp(sub, "wkd") == 0) &&
	    o.nargs == 2))) {
		fprintf(stderr, "usage: sealpost keys [list | show ADDRESS | "
		    "accept ADDRESS [--fingerprint FPR] | import FILE |\n"
		    "    wkd ADDRESS [--wkd-base URL] [--wkd-ca FILE]] "
		    "[--cache DIR]\n");
		return 2;
	}
	if ((s = cli_session(&o, 1)) == NULL)
		return 1;
	if (strcmp(sub, "list") == 0)
		rc = keys_list(s);
	else if (strcmp(sub, "show") == 0)
		rc = keys_show(s, o.args[1]);
	else if (strcmp(sub, "import") == 0 || strcmp(sub, "wkd") == 0)
		rc = keys_pgp(s, sub, o.args[1], wkd_base, wkd_ca);
	else if ((rc = keys_accept_pgp(s, o.args[1], expect)) < 0)
		rc = keys_accept(s, o.args[1], expect);
	sp_session_close(s);
	return rc;
}

int
cmd_fingerprint(int argc, char **argv)
{
	struct sp_keys_info k, served;
	struct cli o;
	sp_session *s;
	char fpr[SP_KEYS_FPR_BYTES], err[1024] = "";
	int rc, status = 1;

	if (cli_parse(&o, argc, argv, NULL) != 0)
		return 2;
	if (o.nargs > 1) {
		fprintf(stderr, "usage: sealpost fingerprint [ADDRESS] "
		    "[--cache DIR]\n");
		return 2;
	}
	if ((s = cli_session(&o, 1)) == NULL)
		return 1;
	if (o.nargs == 0) {
		sp_keys_own_fingerprint(sp_session_keys(s), fpr);
		printf("%s %s\n", sp_session_address(s), fpr);
		status = 0;
		goto out;
	}
	rc = sp_keys_get(sp_session_cache(s), sp_session_client(s), o.args[0],
	    &k, &served, err, sizeof(err));
	if (rc == 0) {
		fpr_of(&k, fpr);
		printf("%s %s%s\n", k.pk.address, fpr, k.pinned_now ?
		    " (first seen: pinned now)" : "");
		sp_keys_info_finish(&k);
		status = 0;
	} else if (rc == SP_EKEYCHANGED) {
		fpr_of(&k, fpr);
		printf("%s %s (pinned)\n", k.pk.address, fpr);
		fpr_of(&served, fpr);
		printf("%s %s (the directory's, NOT accepted)\n",
		    served.pk.address, fpr);
		fprintf(stderr, "sealpost: %s\n", err);
		sp_keys_info_finish(&k);
		sp_keys_info_finish(&served);
	} else {
		fprintf(stderr, "sealpost: %s\n", err);
	}
out:
	sp_session_close(s);
	return status;
}

int
cli_check_signer(sp_session *s, const uint8_t *body, size_t len,
    const uint8_t signer_pk[32])
{
	struct sp_keys_info k;
	struct sp_meta m;
	char err[1024] = "", fpr[SP_KEYS_FPR_BYTES];
	int rc;

	if (sodium_memcmp(signer_pk, sp_keyset_identity_pk(sp_session_keys(s)),
	    32) == 0) {
		sp_keys_own_fingerprint(sp_session_keys(s), fpr);
		fprintf(stderr, "signature: valid, by you (%s)\n", fpr);
		return 0;
	}
	/* The From: of the signed body, not of the metadata record: the
	 * signature covers the body's bytes. */
	if ((rc = sp_summary_from_message(body, len, &m)) != 0) {
		fprintf(stderr, "signature: valid, but the message has no "
		    "readable From: to check the signer against\n");
		return 1;
	}
	rc = sp_keys_check_signer(sp_session_cache(s), sp_session_client(s),
	    m.from, signer_pk, err, sizeof(err));
	if (rc == 0 && sp_keys_pinned(sp_session_cache(s), m.from, &k) == 0) {
		fpr_of(&k, fpr);
		fprintf(stderr, "signature: valid, by the pinned key of %s "
		    "(%s)\n", k.pk.address, fpr);
		sp_keys_info_finish(&k);
	} else {
		fprintf(stderr, "signature: valid, but NOT by the pinned key "
		    "of the sender: %s\n", err);
		rc = rc ? rc : SP_ESIG;
	}
	sp_meta_finish(&m);
	return rc == 0 ? 0 : 1;
}
