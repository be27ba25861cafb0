/*
 * `sealpost send`: an RFC 5322 message on stdin, or one built here from
 * flags with GMime (MIME structure, RFC 2047 subject, Date, Message-ID),
 * then sent with client-core/outbox.h: end to end to sealpost accounts,
 * PGP/MIME or as written through the gateway to outside addresses.
 *
 *   sealpost send [--rcpt A[,B]] < message
 *   sealpost send --to A[,B] [--cc ...] [--bcc ...] [--subject S]
 *                 [--body TEXT | --body-file F] [--attach FILE]...
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>
#include <sodium.h>

#include "client-core/cli.h"
#include "client-core/keys.h"
#include "client-core/outbox.h"

#define MSG_MAX ((size_t)48 << 20)   /* below the 64 MiB blob limit once
                                      * sealed and padded */
#define ATTACH_MAX 32

struct flags {
	const char *to, *cc, *bcc, *subject, *body, *body_file, *rcpt;
	const char *attach[ATTACH_MAX];
	int nattach;
};

/* Reads all of f (at most MSG_MAX bytes) into a malloc'd buffer. */
static uint8_t *
read_all(FILE *f, size_t *len_r)
{
	size_t cap = 65536, n = 0, got;
	uint8_t *b = malloc(cap), *nb;

	while (b != NULL && (got = fread(b + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n > MSG_MAX) {
			free(b);
			errno = EFBIG;
			return NULL;
		}
		if (n == cap) {
			if ((nb = realloc(b, cap * 2)) == NULL) {
				sodium_memzero(b, n);
				free(b);
				return NULL;
			}
			b = nb;
			cap *= 2;
		}
	}
	if (b != NULL && ferror(f)) {
		sodium_memzero(b, n);
		free(b);
		return NULL;
	}
	*len_r = n;
	return b;
}

static uint8_t *
read_file(const char *path, size_t *len_r)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	uint8_t *b;

	if (f == NULL)
		return NULL;
	b = read_all(f, len_r);
	if (f != stdin)
		fclose(f);
	return b;
}

/* Adds the addresses of list text s (may be NULL) to header type t. */
static int
add_addresses(GMimeMessage *m, GMimeAddressType t, const char *s)
{
	InternetAddressList *l;

	if (s == NULL)
		return 0;
	if ((l = internet_address_list_parse(NULL, s)) == NULL ||
	    internet_address_list_length(l) == 0) {
		fprintf(stderr, "sealpost: not an address list: %s\n", s);
		if (l)
			g_object_unref(l);
		return -1;
	}
	internet_address_list_append(g_mime_message_get_addresses(m, t), l);
	g_object_unref(l);
	return 0;
}

/* A part for FILE: base64, named by its last path component. */
static GMimeObject *
attachment(const char *path)
{
	const char *name = strrchr(path, '/');
	GMimeStream *st;
	GMimeDataWrapper *dw;
	GMimePart *p;
	uint8_t *data;
	size_t len = 0;

	if ((data = read_file(path, &len)) == NULL) {
		fprintf(stderr, "sealpost: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	p = g_mime_part_new_with_type("application", "octet-stream");
	st = g_mime_stream_mem_new_with_buffer((const char *)data, len);
	sodium_memzero(data, len);
	free(data);
	dw = g_mime_data_wrapper_new_with_stream(st,
	    GMIME_CONTENT_ENCODING_DEFAULT);
	g_mime_part_set_content(p, dw);
	g_object_unref(dw);
	g_object_unref(st);
	g_mime_part_set_content_encoding(p, GMIME_CONTENT_ENCODING_BASE64);
	g_mime_part_set_filename(p, name ? name + 1 : path);
	return GMIME_OBJECT(p);
}

/* A Message-ID that names nothing about this machine: random @ domain. */
static void
set_message_id(GMimeMessage *m, const char *address)
{
	const char *at = strrchr(address, '@');
	uint8_t r[16];
	char hex[33], id[320];

	randombytes_buf(r, sizeof(r));
	sodium_bin2hex(hex, sizeof(hex), r, sizeof(r));
	snprintf(id, sizeof(id), "%s@%s", hex, at ? at + 1 : "sealpost");
	g_mime_message_set_message_id(m, id);
}

/* Builds the message from the flags; *msg_r malloc'd, CRLF line ends. */
static int
build(const struct flags *fl, const char *address, uint8_t **msg_r,
    size_t *len_r)
{
	GMimeMessage *m = g_mime_message_new(TRUE);
	GMimeTextPart *text;
	GMimeObject *top;
	GMimeFormatOptions *fo = NULL;
	GMimeStream *out = NULL;
	GByteArray *ba;
	GDateTime *now;
	uint8_t *body = NULL;
	size_t blen = 0;
	int i, rc = -1;

	g_mime_message_add_mailbox(m, GMIME_ADDRESS_TYPE_FROM, NULL, address);
	if (add_addresses(m, GMIME_ADDRESS_TYPE_TO, fl->to) != 0 ||
	    add_addresses(m, GMIME_ADDRESS_TYPE_CC, fl->cc) != 0 ||
	    add_addresses(m, GMIME_ADDRESS_TYPE_BCC, fl->bcc) != 0)
		goto out;
	/* GMime writes non-ASCII subjects as RFC 2047 encoded words. */
	g_mime_message_set_subject(m, fl->subject ? fl->subject : "",
	    "utf-8");
	now = g_date_time_new_now_local();
	g_mime_message_set_date(m, now);
	g_date_time_unref(now);
	set_message_id(m, address);

	if (fl->body_file) {
		if ((body = read_file(fl->body_file, &blen)) == NULL) {
			fprintf(stderr, "sealpost: %s: %s\n", fl->body_file,
			    strerror(errno));
			goto out;
		}
	}
	text = g_mime_text_part_new_with_subtype("plain");
	if (body) {
		char *s = malloc(blen + 1);

		if (s == NULL) {
			g_object_unref(text);
			goto out;
		}
		memcpy(s, body, blen);
		s[blen] = 0;
		g_mime_text_part_set_text(text, s);
		sodium_memzero(s, blen);
		free(s);
	} else {
		g_mime_text_part_set_text(text, fl->body ? fl->body : "");
	}
	top = GMIME_OBJECT(text);
	if (fl->nattach > 0) {
		GMimeMultipart *mp = g_mime_multipart_new_with_subtype("mixed");

		g_mime_multipart_add(mp, top);
		g_object_unref(top);
		top = GMIME_OBJECT(mp);
		for (i = 0; i < fl->nattach; i++) {
			GMimeObject *a = attachment(fl->attach[i]);

			if (a == NULL) {
				g_object_unref(top);
				goto out;
			}
			g_mime_multipart_add(mp, a);
			g_object_unref(a);
		}
	}
	g_mime_message_set_mime_part(m, top);
	g_object_unref(top);

	fo = g_mime_format_options_clone(NULL);
	g_mime_format_options_set_newline_format(fo, GMIME_NEWLINE_FORMAT_DOS);
	out = g_mime_stream_mem_new();
	if (g_mime_object_write_to_stream(GMIME_OBJECT(m), fo, out) < 0)
		goto out;
	ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(out));
	if ((*msg_r = malloc(ba->len ? ba->len : 1)) == NULL)
		goto out;
	memcpy(*msg_r, ba->data, ba->len);
	*len_r = ba->len;
	sodium_memzero(ba->data, ba->len);
	rc = 0;
out:
	if (body) {
		sodium_memzero(body, blen);
		free(body);
	}
	if (out)
		g_object_unref(out);
	if (fo)
		g_mime_format_options_free(fo);
	g_object_unref(m);
	return rc;
}

/* Splits "a,b" (a copy the caller frees) into up to max pointers. */
static size_t
split(char *s, const char **v, size_t max)
{
	size_t n = 0;
	char *save = NULL, *t;

	for (t = strtok_r(s, ",", &save); t && n < max;
	    t = strtok_r(NULL, ",", &save)) {
		while (*t == ' ')
			t++;
		if (*t)
			v[n++] = t;
	}
	return n;
}

int
cmd_send(int argc, char **argv)
{
	struct flags fl;
	const struct cli_opt opts[] = {
		{ "to", &fl.to, NULL }, { "cc", &fl.cc, NULL },
		{ "bcc", &fl.bcc, NULL }, { "subject", &fl.subject, NULL },
		{ "body", &fl.body, NULL }, { "body-file", &fl.body_file, NULL },
		{ "rcpt", &fl.rcpt, NULL }, { NULL, NULL, NULL },
	};
	struct sp_outbox_args sa;
	struct sp_outbox_report rep;
	struct cli o;
	sp_session *s = NULL;
	char **rest = NULL, *rcpts = NULL, err[2048] = "";
	const char *rv[SP_OUTBOX_RCPT_MAX];
	uint8_t *msg = NULL;
	size_t len = 0, nr = 0;
	int i, n = 0, built, rc = 1;

	memset(&fl, 0, sizeof(fl));
	/* --attach may repeat; cli_parse keeps one value per option. */
	if ((rest = calloc((size_t)argc + 1, sizeof(*rest))) == NULL)
		return 1;
	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--attach") == 0 && i + 1 < argc) {
			if (fl.nattach == ATTACH_MAX) {
				fprintf(stderr, "sealpost: at most %d "
				    "attachments\n", ATTACH_MAX);
				free(rest);
				return 2;
			}
			fl.attach[fl.nattach++] = argv[++i];
		} else {
			rest[n++] = argv[i];
		}
	}
	if (cli_parse(&o, n, rest, opts) != 0 || o.nargs > 0) {
		if (o.nargs > 0)
			fprintf(stderr, "usage: sealpost send [--rcpt A,B] < "
			    "MESSAGE, or sealpost send --to A[,B] [--cc ..] "
			    "[--bcc ..] [--subject S] [--body TEXT | "
			    "--body-file F] [--attach FILE]...\n");
		free(rest);
		return 2;
	}
	free(rest);
	built = fl.to || fl.cc || fl.bcc || fl.subject || fl.body ||
	    fl.body_file || fl.nattach;
	if (fl.body && fl.body_file) {
		fprintf(stderr, "sealpost: --body or --body-file, not both\n");
		return 2;
	}
	if (!built && (msg = read_all(stdin, &len)) == NULL) {
		fprintf(stderr, "sealpost: reading the message from stdin: "
		    "%s\n", strerror(errno));
		return 1;
	}
	if (!built && len == 0) {
		fprintf(stderr, "sealpost: no message on stdin (or give "
		    "--to ...)\n");
		goto out;
	}
	if ((s = cli_session(&o, 1)) == NULL)
		goto out;
	if (built) {
		g_mime_init();
		if (build(&fl, sp_session_address(s), &msg, &len) != 0)
			goto out;
	}
	if (fl.rcpt) {
		if ((rcpts = strdup(fl.rcpt)) == NULL)
			goto out;
		nr = split(rcpts, rv, SP_OUTBOX_RCPT_MAX);
	}
	memset(&sa, 0, sizeof(sa));
	sa.cache = sp_session_cache(s);
	sa.c = sp_session_client(s);
	sa.mb = sp_session_mbox(s);
	sa.ks = sp_session_keys(s);
	sa.address = sp_session_address(s);
	sa.rcpts = rv;
	sa.nrcpts = nr;
	sa.from_headers = 1;
	if (sp_outbox_send(&sa, msg, len, &rep, err, sizeof(err)) != 0) {
		fprintf(stderr, "sealpost: send: %s\n", err);
		if (rep.ndelivered + rep.nqueued > 0)
			fprintf(stderr, "sealpost: sent to %zu of %zu "
			    "recipients\n", rep.ndelivered + rep.nqueued,
			    rep.nrcpts);
		goto out;
	}
	printf("sent to %zu recipient%s (%zu Bcc): %zu end to end, %zu to "
	    "the outbound queue (%zu PGP/MIME); Sent copy %llu\n",
	    rep.nrcpts, rep.nrcpts == 1 ? "" : "s", rep.nbcc, rep.ndelivered,
	    rep.nqueued, rep.npgp, (unsigned long long)rep.sent_id);
	rc = 0;
out:
	if (msg) {
		sodium_memzero(msg, len);
		free(msg);
	}
	free(rcpts);
	sp_session_close(s);
	return rc;
}
