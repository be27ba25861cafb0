/*
 * The message summary from RFC 5322 bytes, through GMime (see summary.h).
 * GMime decodes RFC 2047 words and charsets; what it hands back is then
 * forced into the metadata record's rules (strict UTF-8, no NUL, bounded),
 * because a hostile sender controls every header byte.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include "proto/summary.h"

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;

static void
gmime_start(void)
{
	g_mime_init();
}

/* A copy of s that is valid UTF-8 without NUL, at most SP_SUMMARY_TEXT_MAX
 * bytes, cut at a character boundary; NULL only when out of memory. */
static char *
clean_text(const char *s)
{
	gchar *valid = g_utf8_make_valid(s, -1);
	char *out;
	size_t n;

	if (valid == NULL)
		return NULL;
	n = strlen(valid);
	if (n > SP_SUMMARY_TEXT_MAX) {
		n = SP_SUMMARY_TEXT_MAX;
		/* back up to the start of a character */
		while (n > 0 && ((unsigned char)valid[n] & 0xc0) == 0x80)
			n--;
	}
	if ((out = malloc(n + 1)) != NULL) {
		memcpy(out, valid, n);
		out[n] = 0;
	}
	g_free(valid);
	return out;
}

/* Sets *field to the cleaned text of s (absent when s is NULL or empty). */
static int
set_text(char **field, const char *s)
{
	if (s == NULL || *s == 0)
		return 0;
	if ((*field = clean_text(s)) == NULL)
		return SP_ENOMEM;
	return 0;
}

static int
set_addresses(char **field, InternetAddressList *l)
{
	char *s;
	int rc;

	if (l == NULL || internet_address_list_length(l) == 0)
		return 0;
	/* encode = FALSE: decoded display names, for people to read */
	s = internet_address_list_to_string(l, NULL, FALSE);
	rc = set_text(field, s);
	g_free(s);
	return rc;
}

/* Length of the header block with the line that ends it, or len. */
static size_t
header_len(const uint8_t *msg, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len; i++) {
		if (msg[i] != '\n')
			continue;
		if (msg[i + 1] == '\n')
			return i + 2;
		if (msg[i + 1] == '\r' && i + 2 < len && msg[i + 2] == '\n')
			return i + 3;
	}
	return len;
}

int
sp_summary_from_message(const uint8_t *msg, size_t len, struct sp_meta *m)
{
	GMimeStream *stream = NULL;
	GMimeParser *parser = NULL;
	GMimeMessage *gm = NULL;
	GDateTime *date;
	int rc = SP_EFORMAT;

	memset(m, 0, sizeof(*m));
	pthread_once(&gmime_once, gmime_start);
	/* The summary comes from the header block alone: parse only up to
	 * the blank line that ends it, not a 50 MB attachment (GMime would
	 * build the whole MIME tree).  The stream borrows msg. */
	stream = g_mime_stream_mem_new_with_buffer((const char *)msg,
	    header_len(msg, len));
	if (stream == NULL)
		return SP_ENOMEM;
	parser = g_mime_parser_new_with_stream(stream);
	if (parser == NULL) {
		rc = SP_ENOMEM;
		goto out;
	}
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	if ((gm = g_mime_parser_construct_message(parser, NULL)) == NULL)
		goto out;
	if ((rc = set_addresses(&m->from, g_mime_message_get_from(gm))) ||
	    (rc = set_addresses(&m->to, g_mime_message_get_to(gm))) ||
	    (rc = set_addresses(&m->cc, g_mime_message_get_cc(gm))) ||
	    (rc = set_addresses(&m->bcc, g_mime_message_get_bcc(gm))) ||
	    (rc = set_text(&m->subject, g_mime_message_get_subject(gm))) ||
	    (rc = set_text(&m->message_id,
	    g_mime_message_get_message_id(gm))))
		goto out;
	if ((date = g_mime_message_get_date(gm)) != NULL) {
		gint64 t = g_date_time_to_unix(date);

		if (t >= 0) {
			m->date = (uint64_t)t;
			m->has_date = 1;
		}
	}
	m->size = len;
	m->has_size = 1;
	rc = 0;
out:
	if (rc != 0)
		sp_meta_finish(m);
	if (gm)
		g_object_unref(gm);
	if (parser)
		g_object_unref(parser);
	g_object_unref(stream);
	return rc;
}
