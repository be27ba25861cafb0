/*
 * `sealpost sync|ls|folders|folder|read|mv|rm|flag|export|import`: the
 * mailbox from the command line.  Every command opens the account's
 * session (log in, pull and apply the log), does its work through the
 * mailbox model, and says what it did.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "client-core/cli.h"
#include "client-core/mailbox.h"
#include "client-core/pgpmail.h"

#define MSG_MAX ((size_t)64 << 20)    /* largest message we import */

static const struct {
	const char *name;
	uint32_t bit;
	char maildir;
} flag_names[] = {
	{ "seen", SP_META_F_SEEN, 'S' },
	{ "answered", SP_META_F_ANSWERED, 'R' },
	{ "flagged", SP_META_F_FLAGGED, 'F' },
	{ "draft", SP_META_F_DRAFT, 'D' },
	{ "deleted", SP_MBOX_F_DELETED, 'T' },
	{ "junk", SP_META_F_JUNK, 0 },
};
#define NFLAGS (sizeof(flag_names) / sizeof(flag_names[0]))

static const struct sp_mbox_folder *
folder_arg(sp_mbox *mb, const char *name)
{
	const struct sp_mbox_folder *f = sp_mbox_folder_by_name(mb, name);

	if (f == NULL)
		fprintf(stderr, "sealpost: no folder named %s (see "
		    "`sealpost folders`)\n", name);
	return f;
}

static int
ids_arg(const struct cli *o, int from, int to, uint64_t **ids_r,
    size_t *n_r)
{
	uint64_t *ids;
	int i;

	if (to <= from) {
		fprintf(stderr, "sealpost: which messages? give their IDs "
		    "(see `sealpost ls`)\n");
		return -1;
	}
	if ((ids = calloc((size_t)(to - from), sizeof(*ids))) == NULL)
		return -1;
	for (i = from; i < to; i++) {
		char *end;

		errno = 0;
		ids[i - from] = strtoull(o->args[i], &end, 10);
		if (errno || *end || end == o->args[i]) {
			fprintf(stderr, "sealpost: not a message ID: %s\n",
			    o->args[i]);
			free(ids);
			return -1;
		}
	}
	*ids_r = ids;
	*n_r = (size_t)(to - from);
	return 0;
}

static void
flags_text(uint32_t flags, char *buf, size_t cap)
{
	size_t i, n = 0;

	buf[0] = 0;
	for (i = 0; i < NFLAGS; i++)
		if (flags & flag_names[i].bit)
			n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0,
			    "%s%s", n ? "," : "", flag_names[i].name);
	if (n == 0)
		snprintf(buf, cap, "-");
}

int
cmd_sync(int argc, char **argv)
{
	struct cli o;
	sp_session *s;
	size_t n, i, msgs = 0, failed = 0;
	const struct sp_mbox_folder *f;
	char err[512] = "";
	int bodies = 0;
	const struct cli_opt opts[] = { { "bodies", NULL, &bodies },
	    { NULL, NULL, NULL } };

	if (cli_parse(&o, argc, argv, opts) != 0)
		return 2;
	if ((s = cli_session(&o, 0)) == NULL)
		return 1;
	if (bodies && sp_session_fetch_bodies(s, 4, cli_progress,
	    (void *)(uintptr_t)"bodies", &failed, err, sizeof(err)) != 0) {
		fprintf(stderr, "sealpost: sync: %s\n", err);
		sp_session_close(s);
		return 1;
	}
	f = sp_mbox_folders(sp_session_mbox(s), &n);
	for (i = 0; i < n; i++)
		msgs += f[i].exists;
	printf("synced %s: %zu messages in %zu folders\n",
	    sp_session_address(s), msgs, n);
	if (failed)
		fprintf(stderr, "sealpost: %zu bodies could not be opened "
		    "(`sealpost read ID` says why)\n", failed);
	sp_session_close(s);
	return failed ? 1 : 0;
}

int
cmd_ls(int argc, char **argv)
{
	const struct sp_mbox_msg *const *v;
	const struct sp_mbox_folder *f;
	struct cli o;
	sp_session *s;
	size_t n, i;
	int rc = 1;

	if (cli_parse(&o, argc, argv, NULL) != 0)
		return 2;
	if ((s = cli_session_mail(&o)) == NULL)
		return 1;
	if ((f = folder_arg(sp_session_mbox(s), o.nargs ? o.args[0] :
	    "INBOX")) == NULL)
		goto out;
	sp_mbox_list(sp_session_mbox(s), f->id, &v, &n);
	for (i = 0; i < n; i++) {
		char date[32] = "-", flags[64 + SP_MBOX_KEYWORDS_MAX *
		    (SP_MBOX_KEYWORD_MAX + 1)];
		time_t t = (time_t)(v[i]->meta.has_date ? v[i]->meta.date :
		    v[i]->received);
		struct tm tm;

		if (t && gmtime_r(&t, &tm))
			strftime(date, sizeof(date), "%Y-%m-%d %H:%M", &tm);
		flags_text(v[i]->flags, flags, sizeof(flags));
		for (size_t k = 0; k < v[i]->nkeywords; k++) {
			size_t l = strlen(flags);

			snprintf(flags + l, sizeof(flags) - l, "%s%s",
			    strcmp(flags, "-") == 0 ? "" : ",",
			    v[i]->keywords[k]);
			if (strncmp(flags, "-", 1) == 0 && flags[1] != 0)
				memmove(flags, flags + 1, strlen(flags));
		}
		printf("%llu\t%u\t%s\t%s\t%s\t%s\n",
		    (unsigned long long)v[i]->id, v[i]->uid, flags, date,
		    v[i]->meta.from ? v[i]->meta.from : "",
		    v[i]->meta.subject ? v[i]->meta.subject : "");
	}
	rc = 0;
out:
	sp_session_close(s);
	return rc;
}

static int
folder_list(sp_session *s)
{
	const struct sp_mbox_folder *f;
	size_t n, i;

	f = sp_mbox_folders(sp_session_mbox(s), &n);
	for (i = 0; i < n; i++)
		printf("%s\t%u messages\t%u unseen\n", f[i].name, f[i].exists,
		    f[i].unseen);
	return 0;
}

int
cmd_folder(int argc, char **argv)
{
	struct cli o;
	sp_session *s;
	const struct sp_mbox_folder *f;
	char err[512] = "";
	const char *what;
	int rc = 1;

	if (cli_parse(&o, argc, argv, NULL) != 0)
		return 2;
	what = o.nargs ? o.args[0] : "list";
	if (strcmp(what, "list") != 0 && strcmp(what, "create") != 0 &&
	    strcmp(what, "rename") != 0 && strcmp(what, "delete") != 0) {
		fprintf(stderr, "usage: sealpost folder list|create NAME|"
		    "rename NAME NEW|delete NAME\n");
		return 2;
	}
	if (strcmp(what, "list") != 0 &&
	    o.nargs != (strcmp(what, "rename") == 0 ? 3 : 2)) {
		fprintf(stderr, "sealpost: folder %s: wrong number of "
		    "names\n", what);
		return 2;
	}
	if ((s = cli_session_mail(&o)) == NULL)
		return 1;
	if (strcmp(what, "list") == 0) {
		rc = folder_list(s);
		goto out;
	}
	if (strcmp(what, "create") == 0) {
		if (sp_mbox_folder_create(sp_session_mbox(s),
		    sp_session_client(s), o.args[1], NULL, err,
		    sizeof(err)) == 0)
			rc = 0;
	} else if ((f = folder_arg(sp_session_mbox(s), o.args[1])) == NULL) {
		goto out;
	} else if (strcmp(what, "rename") == 0) {
		if (sp_mbox_folder_rename(sp_session_mbox(s),
		    sp_session_client(s), f->id, o.args[2], err,
		    sizeof(err)) == 0)
			rc = 0;
	} else if (sp_mbox_folder_delete(sp_session_mbox(s),
	    sp_session_client(s), f->id, err, sizeof(err)) == 0) {
		rc = 0;
	}
	if (rc != 0)
		fprintf(stderr, "sealpost: folder %s: %s\n", what, err);
out:
	sp_session_close(s);
	return rc;
}

int
cmd_read(int argc, char **argv)
{
	struct cli o;
	sp_session *s;
	enum sp_mbox_sig sig;
	struct sp_pgpmail_result pgp;
	uint8_t *body = NULL, pk[32], *shown = NULL;
	size_t len = 0, shown_len = 0;
	uint64_t *ids = NULL;
	size_t n;
	char err[512] = "";
	int rc = 1, peek = 0;
	const struct cli_opt opts[] = { { "peek", NULL, &peek }, { NULL, NULL, NULL } };
	const struct sp_mbox_msg *m;

	if (cli_parse(&o, argc, argv, opts) != 0)
		return 2;
	if (ids_arg(&o, 0, o.nargs, &ids, &n) != 0 || n != 1) {
		free(ids);
		if (o.nargs > 1)
			fprintf(stderr, "sealpost: read one message at a "
			    "time\n");
		return 2;
	}
	if ((s = cli_session_mail(&o)) == NULL)
		goto out_free;
	if ((m = sp_mbox_msg(sp_session_mbox(s), ids[0])) == NULL) {
		fprintf(stderr, "sealpost: no message %llu\n",
		    (unsigned long long)ids[0]);
		goto out;
	}
	if (sp_mbox_body(sp_session_mbox(s), sp_session_client(s), ids[0],
	    &body, &len, &sig, pk, err, sizeof(err)) != 0) {
		fprintf(stderr, "sealpost: %s\n", err);
		goto out;
	}
	/* Received OpenPGP mail is shown decrypted, as the bridge serves it
	 * (pgpmail.h); the native signature below covers the stored bytes. */
	if (m->own || sp_pgpmail_served(sp_session_cache(s),
	    sp_session_keys(s), ids[0], body, len, &shown, &shown_len,
	    &pgp) != 0)
		shown = NULL;
	if (fwrite(shown ? shown : body, 1, shown ? shown_len : len,
	    stdout) != (shown ? shown_len : len) || fflush(stdout) != 0) {
		fprintf(stderr, "sealpost: writing the message: %s\n",
		    strerror(errno));
		goto out;
	}
	if (shown && pgp.field[0])
		fprintf(stderr, "openpgp: %s\n", pgp.field);
	if (sig == SP_MBOX_SIG_VALID) {
		if (cli_check_signer(s, body, len, pk) != 0)
			goto out;
	} else {
		fprintf(stderr, "signature: none (%s)\n", m->own ?
		    "stored by this account" : "not signed by the sender");
	}
	if (!peek && !(m->flags & SP_META_F_SEEN) &&
	    sp_mbox_set_flags(sp_session_mbox(s), sp_session_client(s), ids,
	    1, SP_META_F_SEEN, 0, NULL, 0, NULL, 0, err, sizeof(err)) != 0) {
		fprintf(stderr, "sealpost: marking it read: %s\n", err);
		goto out;
	}
	rc = 0;
out:
	if (body) {
		sodium_memzero(body, len);
		free(body);
	}
	if (shown) {
		sodium_memzero(shown, shown_len);
		free(shown);
	}
	sp_session_close(s);
out_free:
	free(ids);
	return rc;
}

/*
 * mv, rm and flag share one shape: message IDs from the arguments, the
 * session, one change through the mailbox model, a line saying what was
 * done.  op does the change; arg is the command's own.
 */
typedef int (*ids_op)(sp_session *s, const uint64_t *ids, size_t n,
    const void *arg, char *out, size_t outlen, char *err, size_t errlen);

static int
run_on_ids(const struct cli *o, int from, int to, const char *what,
    ids_op op, const void *arg)
{
	sp_session *s;
	uint64_t *ids = NULL;
	size_t n;
	char err[512] = "", out[512] = "";
	int rc = 1;

	if (ids_arg(o, from, to, &ids, &n) != 0)
		return 2;
	if ((s = cli_session_mail(o)) == NULL)
		goto out;
	if (op(s, ids, n, arg, out, sizeof(out), err, sizeof(err)) != 0) {
		fprintf(stderr, "sealpost: %s: %s\n", what, err);
	} else {
		if (out[0])
			printf("%s\n", out);
		rc = 0;
	}
	sp_session_close(s);
out:
	free(ids);
	return rc;
}

static int
op_move(sp_session *s, const uint64_t *ids, size_t n, const void *arg,
    char *out, size_t outlen, char *err, size_t errlen)
{
	const char *name = arg;
	const struct sp_mbox_folder *f = sp_mbox_folder_by_name(
	    sp_session_mbox(s), name);

	if (f == NULL) {
		snprintf(err, errlen, "no folder named %s (see `sealpost "
		    "folders`)", name);
		return ENOENT;
	}
	if (sp_mbox_move(sp_session_mbox(s), sp_session_client(s), ids, n,
	    f->id, err, errlen) != 0)
		return 1;
	snprintf(out, outlen, "moved %zu message%s to %s", n,
	    n == 1 ? "" : "s", name);
	return 0;
}

static int
op_delete(sp_session *s, const uint64_t *ids, size_t n, const void *arg,
    char *out, size_t outlen, char *err, size_t errlen)
{
	(void)arg;
	if (sp_mbox_delete(sp_session_mbox(s), sp_session_client(s), ids, n,
	    err, errlen) != 0)
		return 1;
	snprintf(out, outlen, "deleted %zu message%s", n, n == 1 ? "" : "s");
	return 0;
}

struct flag_change {
	int add;
	uint32_t bit;            /* 0: name is a keyword */
	const char *name;
};

static int
op_flag(sp_session *s, const uint64_t *ids, size_t n, const void *arg,
    char *out, size_t outlen, char *err, size_t errlen)
{
	const struct flag_change *fc = arg;
	const char *kw = fc->name;
	int is_kw = fc->bit == 0;

	(void)out;
	(void)outlen;
	return sp_mbox_set_flags(sp_session_mbox(s), sp_session_client(s),
	    ids, n, fc->add ? fc->bit : 0, fc->add ? 0 : fc->bit,
	    is_kw && fc->add ? &kw : NULL, is_kw && fc->add ? 1 : 0,
	    is_kw && !fc->add ? &kw : NULL, is_kw && !fc->add ? 1 : 0, err,
	    errlen) != 0;
}

int
cmd_mv(int argc, char **argv)
{
	struct cli o;

	if (cli_parse(&o, argc, argv, NULL) != 0)
		return 2;
	if (o.nargs < 2) {
		fprintf(stderr, "usage: sealpost mv ID... FOLDER\n");
		return 2;
	}
	return run_on_ids(&o, 0, o.nargs - 1, "mv", op_move,
	    o.args[o.nargs - 1]);
}

int
cmd_rm(int argc, char **argv)
{
	struct cli o;

	if (cli_parse(&o, argc, argv, NULL) != 0)
		return 2;
	return run_on_ids(&o, 0, o.nargs, "rm", op_delete, NULL);
}

int
cmd_flag(int argc, char **argv)
{
	struct flag_change fc = { 0 };
	struct cli o;
	size_t i;

	if (cli_parse(&o, argc, argv, NULL) != 0)
		return 2;
	if (o.nargs < 2 || (o.args[0][0] != '+' && o.args[0][0] != '-')) {
		fprintf(stderr, "usage: sealpost flag +FLAG|-FLAG ID...\n"
		    "flags: seen answered flagged draft deleted junk, or a "
		    "keyword\n");
		return 2;
	}
	fc.add = o.args[0][0] == '+';
	fc.name = o.args[0] + 1;
	for (i = 0; i < NFLAGS; i++)
		if (strcasecmp(fc.name, flag_names[i].name) == 0)
			fc.bit = flag_names[i].bit;
	return run_on_ids(&o, 1, o.nargs, "flag", op_flag, &fc);
}

int
cmd_compact(int argc, char **argv)
{
	struct cli o;
	sp_session *s;
	char err[512] = "";
	int rc = 0;

	if (cli_parse(&o, argc, argv, NULL) != 0)
		return 2;
	if ((s = cli_session(&o, 0)) == NULL)
		return 1;
	if (sp_mbox_compact(sp_session_mbox(s), sp_session_client(s), err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "sealpost: compact: %s\n", err);
		rc = 1;
	} else {
		printf("compacted: %s\n", err[0] ? err :
		    "the log now starts with a snapshot");
	}
	sp_session_close(s);
	return rc;
}

/* ---- export ----------------------------------------------------------- */

static int
mkdir_p(const char *path)
{
	char buf[4096], *p;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return ENAMETOOLONG;
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0700) != 0 && errno != EEXIST)
			return errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) != 0 && errno != EEXIST)
		return errno;
	return 0;
}

static int
write_file(const char *path, const uint8_t *d, size_t n)
{
	FILE *f = fopen(path, "wx");
	int rc = 0;

	if (f == NULL)
		return errno;
	if (fwrite(d, 1, n, f) != n || fflush(f) != 0 || fsync(fileno(f)))
		rc = errno ? errno : EIO;
	if (fclose(f) != 0 && rc == 0)
		rc = errno;
	return rc;
}

/* mboxrd: "From " lines (after any number of '>') get one more '>'. */
static int
mbox_write(FILE *out, const struct sp_mbox_msg *m, const uint8_t *b,
    size_t n)
{
	time_t t = (time_t)(m->received ? m->received : m->meta.date);
	struct tm tm;
	char date[64] = "Thu Jan  1 00:00:00 1970";
	size_t i = 0;

	if (gmtime_r(&t, &tm))
		strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", &tm);
	fprintf(out, "From sealpost@localhost %s\n", date);
	while (i < n) {
		const uint8_t *nl = memchr(b + i, '\n', n - i);
		size_t end = nl ? (size_t)(nl - b) + 1 : n, j = i;

		while (j < end && b[j] == '>')
			j++;
		if (end - j >= 5 && memcmp(b + j, "From ", 5) == 0)
			fputc('>', out);
		fwrite(b + i, 1, end - i, out);
		i = end;
	}
	if (n == 0 || b[n - 1] != '\n')
		fputc('\n', out);
	fputc('\n', out);
	return ferror(out) ? EIO : 0;
}

int
cmd_export(int argc, char **argv)
{
	const char *maildir = NULL, *mbox = NULL, *only = NULL;
	const struct cli_opt opts[] = { { "maildir", &maildir, NULL },
	    { "mbox", &mbox, NULL }, { "folder", &only, NULL }, { NULL, NULL, NULL } };
	const struct sp_mbox_folder *fv;
	struct cli o;
	sp_session *s;
	FILE *out = NULL;
	size_t nf, i, j, total = 0, done = 0;
	char err[512] = "";
	int rc = 1;

	if (cli_parse(&o, argc, argv, opts) != 0)
		return 2;
	if ((maildir == NULL) == (mbox == NULL)) {
		fprintf(stderr, "usage: sealpost export --maildir DIR | --mbox "
		    "FILE [--folder NAME]\n");
		return 2;
	}
	if ((s = cli_session_mail(&o)) == NULL)
		return 1;
	if (only && folder_arg(sp_session_mbox(s), only) == NULL)
		goto out;
	if (mbox && (out = fopen(mbox, "wx")) == NULL) {
		fprintf(stderr, "sealpost: %s: %s\n", mbox, strerror(errno));
		goto out;
	}
	fv = sp_mbox_folders(sp_session_mbox(s), &nf);
	for (i = 0; i < nf; i++)
		if (!only || strcmp(fv[i].name, only) == 0)
			total += fv[i].exists;
	for (i = 0; i < nf; i++) {
		const struct sp_mbox_msg *const *v;
		size_t n;
		char dir[4096];

		if (only && strcmp(fv[i].name, only) != 0)
			continue;
		sp_mbox_list(sp_session_mbox(s), fv[i].id, &v, &n);
		if (maildir) {
			snprintf(dir, sizeof(dir), "%s/%s", maildir,
			    fv[i].name);
			if (mkdir_p(dir) != 0)
				goto io;
			snprintf(dir, sizeof(dir), "%s/%s/cur", maildir,
			    fv[i].name);
			if (mkdir_p(dir) != 0)
				goto io;
			snprintf(dir, sizeof(dir), "%s/%s/new", maildir,
			    fv[i].name);
			if (mkdir_p(dir) != 0)
				goto io;
			snprintf(dir, sizeof(dir), "%s/%s/tmp", maildir,
			    fv[i].name);
			if (mkdir_p(dir) != 0)
				goto io;
		}
		for (j = 0; j < n; j++) {
			enum sp_mbox_sig sig;
			uint8_t *body = NULL;
			size_t len = 0, k, fl = 0;
			char path[4200], flags[8];
			int wrc;

			if (sp_mbox_body(sp_session_mbox(s),
			    sp_session_client(s), v[j]->id, &body, &len, &sig,
			    NULL, err, sizeof(err)) != 0) {
				fprintf(stderr, "sealpost: export: %s\n", err);
				goto out;
			}
			if (maildir) {
				/* maildir wants the letters in ASCII order */
				for (k = 0; k < 5; k++) {
					size_t q;

					for (q = 0; q < NFLAGS; q++)
						if (flag_names[q].maildir ==
						    "DFRST"[k] && (v[j]->flags &
						    flag_names[q].bit))
							flags[fl++] = "DFRST"[k];
				}
				flags[fl] = 0;
				snprintf(path, sizeof(path),
				    "%s/%s/cur/%llu.%llu.sealpost:2,%s",
				    maildir, fv[i].name,
				    (unsigned long long)v[j]->received,
				    (unsigned long long)v[j]->id, flags);
				wrc = write_file(path, body, len);
			} else {
				wrc = mbox_write(out, v[j], body, len);
			}
			sodium_memzero(body, len);
			free(body);
			if (wrc != 0) {
				fprintf(stderr, "sealpost: export: %s\n",
				    strerror(wrc));
				goto out;
			}
			cli_progress((void *)(uintptr_t)"exporting", ++done, total);
		}
	}
	if (out && (fflush(out) != 0 || fsync(fileno(out)) != 0))
		goto io;
	printf("exported %zu messages\n", done);
	rc = 0;
	goto out;
io:
	fprintf(stderr, "sealpost: export: %s\n", strerror(errno));
out:
	if (out)
		fclose(out);
	sp_session_close(s);
	return rc;
}

/* ---- import ----------------------------------------------------------- */

/* Messages wait here and go to the server 128 at a time. */
#define IMPORT_BATCH 128

struct importer {
	sp_session *s;
	uint32_t folder;
	uint8_t *msgs[IMPORT_BATCH];
	size_t lens[IMPORT_BATCH];
	struct sp_mbox_add adds[IMPORT_BATCH];
	size_t n, done, total;
};

static int
import_flush(struct importer *im)
{
	char err[512] = "";
	size_t i, done = 0;
	int rc;

	if (im->n == 0)
		return 0;
	rc = sp_mbox_add_many(sp_session_mbox(im->s),
	    sp_session_client(im->s), im->adds,
	    (const uint8_t *const *)im->msgs, im->lens, im->n, &done, err,
	    sizeof(err));
	for (i = 0; i < im->n; i++) {
		sodium_memzero(im->msgs[i], im->lens[i]);
		free(im->msgs[i]);
	}
	im->n = 0;
	im->done += done;
	cli_progress((void *)(uintptr_t)"importing", im->done, im->total);
	if (rc != 0) {
		fprintf(stderr, "\nsealpost: import: %s (%zu messages were "
		    "imported before this)\n", err, im->done);
		return -1;
	}
	return 0;
}

/* Takes a copy of msg into the batch. */
static int
import_one(struct importer *im, uint32_t flags, const uint8_t *msg,
    size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);

	if (copy == NULL) {
		fprintf(stderr, "sealpost: import: out of memory\n");
		return -1;
	}
	memcpy(copy, msg, len);
	im->msgs[im->n] = copy;
	im->lens[im->n] = len;
	memset(&im->adds[im->n], 0, sizeof(im->adds[im->n]));
	im->adds[im->n].folder = im->folder;
	im->adds[im->n].flags = flags;
	im->n++;
	return im->n == IMPORT_BATCH ? import_flush(im) : 0;
}

static uint8_t *
slurp(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "r");
	uint8_t *b = NULL;
	size_t n = 0, cap = 0, r;

	if (f == NULL)
		return NULL;
	for (;;) {
		if (n == cap) {
			uint8_t *q;

			cap = cap ? cap * 2 : 65536;
			if (cap > MSG_MAX + 65536 ||
			    (q = realloc(b, cap)) == NULL) {
				free(b);
				fclose(f);
				errno = EFBIG;
				return NULL;
			}
			b = q;
		}
		if ((r = fread(b + n, 1, cap - n, f)) == 0)
			break;
		n += r;
	}
	if (ferror(f)) {
		free(b);
		fclose(f);
		return NULL;
	}
	fclose(f);
	*len_r = n;
	return b ? b : calloc(1, 1);
}

/* Splits an mbox (mboxrd/mboxo: un-quotes ">From ") into messages. */
static int
import_mbox(struct importer *im, const char *path)
{
	uint8_t *b, *msg = NULL;
	size_t len = 0, i, start, count = 0, done = 0;
	int pass, rc = 0;

	if ((b = slurp(path, &len)) == NULL) {
		fprintf(stderr, "sealpost: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (len < 5 || memcmp(b, "From ", 5) != 0) {
		fprintf(stderr, "sealpost: %s: not an mbox file (no \"From \" "
		    "line at the start)\n", path);
		free(b);
		return -1;
	}
	if ((msg = malloc(len)) == NULL) {
		free(b);
		return -1;
	}
	/* pass 0 counts (for progress), pass 1 imports */
	for (pass = 0; pass < 2 && rc == 0; pass++) {
		i = 0;
		while (i < len && rc == 0) {
			size_t m = 0, end;
			const uint8_t *nl = memchr(b + i, '\n', len - i);

			/* skip the From_ line */
			i = nl ? (size_t)(nl - b) + 1 : len;
			start = i;
			/* the message runs to the next "\n\nFrom " or end */
			end = start;
			while (end < len) {
				nl = memchr(b + end, '\n', len - end);
				if (nl == NULL) {
					end = len;
					break;
				}
				end = (size_t)(nl - b) + 1;
				if (end + 5 <= len &&
				    memcmp(b + end, "From ", 5) == 0 &&
				    end >= start + 1 && end >= 2 &&
				    b[end - 2] == '\n')
					break;
			}
			if (pass == 0) {
				count++;
				i = end;
				im->total = count;
				continue;
			}
			/* copy lines, un-quoting >From, dropping the blank
			 * line the mbox format adds before the next From_ */
			{
				size_t j = start, stop = end;

				/* the blank line that ends every message in
				 * an mbox, the last one's included */
				if (stop >= start + 2 && b[stop - 1] == '\n' &&
				    b[stop - 2] == '\n')
					stop--;
				while (j < stop) {
					const uint8_t *e = memchr(b + j, '\n',
					    stop - j);
					size_t le = e ? (size_t)(e - b) + 1 :
					    stop, q = j;

					while (q < le && b[q] == '>')
						q++;
					if (q > j && le - q >= 5 &&
					    memcmp(b + q, "From ", 5) == 0)
						j++;
					memcpy(msg + m, b + j, le - j);
					m += le - j;
					j = le;
				}
			}
			rc = import_one(im, 0, msg, m);
			done++;
			i = end;
		}
	}
	if (rc == 0)
		rc = import_flush(im);
	sodium_memzero(msg, len);
	free(msg);
	free(b);
	if (rc == 0)
		printf("imported %zu messages\n", done);
	return rc;
}

static uint32_t
maildir_flags(const char *name)
{
	const char *info = strstr(name, ":2,");
	uint32_t f = 0;
	size_t k;

	if (info == NULL)
		return 0;
	for (info += 3; *info; info++)
		for (k = 0; k < NFLAGS; k++)
			if (flag_names[k].maildir == *info)
				f |= flag_names[k].bit;
	return f;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
import_maildir(struct importer *im, const char *dir)
{
	static const char *const subs[] = { "cur", "new" };
	char **names = NULL, path[4200];
	size_t n = 0, cap = 0, i, k;
	int rc = 0;

	for (k = 0; k < 2; k++) {
		DIR *d;
		struct dirent *e;

		snprintf(path, sizeof(path), "%s/%s", dir, subs[k]);
		if ((d = opendir(path)) == NULL)
			continue;
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			if (n == cap) {
				char **q;

				cap = cap ? cap * 2 : 256;
				if ((q = realloc(names, cap *
				    sizeof(*q))) == NULL) {
					closedir(d);
					rc = -1;
					goto out;
				}
				names = q;
			}
			snprintf(path, sizeof(path), "%s/%s/%s", dir, subs[k],
			    e->d_name);
			if ((names[n] = strdup(path)) == NULL) {
				closedir(d);
				rc = -1;
				goto out;
			}
			n++;
		}
		closedir(d);
	}
	if (n == 0) {
		fprintf(stderr, "sealpost: %s: no messages (a maildir has cur/ "
		    "and new/)\n", dir);
		rc = -1;
		goto out;
	}
	qsort(names, n, sizeof(*names), name_cmp);
	im->total = n;
	for (i = 0; i < n && rc == 0; i++) {
		size_t len = 0;
		uint8_t *b = slurp(names[i], &len);

		if (b == NULL) {
			fprintf(stderr, "sealpost: %s: %s\n", names[i],
			    strerror(errno));
			rc = -1;
			break;
		}
		rc = import_one(im, maildir_flags(names[i]), b, len);
		sodium_memzero(b, len);
		free(b);
	}
	if (rc == 0)
		rc = import_flush(im);
	if (rc == 0)
		printf("imported %zu messages\n", n);
out:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

int
cmd_import(int argc, char **argv)
{
	const char *maildir = NULL, *mbox = NULL, *into = "INBOX";
	const struct cli_opt opts[] = { { "maildir", &maildir, NULL },
	    { "mbox", &mbox, NULL }, { "folder", &into, NULL }, { NULL, NULL, NULL } };
	const struct sp_mbox_folder *f;
	struct cli o;
	sp_session *s;
	int rc = 1;

	if (cli_parse(&o, argc, argv, opts) != 0)
		return 2;
	if ((maildir == NULL) == (mbox == NULL)) {
		fprintf(stderr, "usage: sealpost import --maildir DIR | --mbox "
		    "FILE [--folder NAME]\n");
		return 2;
	}
	if ((s = cli_session_mail(&o)) == NULL)
		return 1;
	if ((f = folder_arg(sp_session_mbox(s), into)) != NULL) {
		struct importer *im = calloc(1, sizeof(*im));

		if (im) {
			im->s = s;
			im->folder = f->id;
			rc = (mbox ? import_mbox(im, mbox) :
			    import_maildir(im, maildir)) == 0 ? 0 : 1;
			while (im->n > 0)
				free(im->msgs[--im->n]);
			free(im);
		}
	}
	sp_session_close(s);
	return rc;
}
