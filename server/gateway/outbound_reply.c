/* SMTP reply parser (outbound_reply.h). */
#include <string.h>
#include <strings.h>

#include "server/gateway/outbound_reply.h"

void
sp_ob_reply_init(struct sp_ob_reply *r)
{
	r->code = 0;
	r->text[0] = '\0';
	r->ext = 0;
	r->line_len = 0;
	r->text_len = 0;
	r->lines = 0;
}

static void
keep_text(struct sp_ob_reply *r, const char *s, size_t n)
{
	size_t room = SP_OB_REPLY_TEXT - r->text_len;
	size_t i;

	if (r->text_len > 0 && room > 0) {
		r->text[r->text_len++] = ' ';
		room--;
	}
	if (n > room)
		n = room;
	/* Only printable ASCII reaches logs and DSNs. */
	for (i = 0; i < n; i++)
		r->text[r->text_len++] = (s[i] >= ' ' && s[i] < 0x7f) ?
		    s[i] : '?';
	r->text[r->text_len] = '\0';
}

static void
note_ext(struct sp_ob_reply *r, const char *kw, size_t n)
{
	static const struct { const char *name; unsigned bit; } exts[] = {
		{ "STARTTLS", SP_OB_EXT_STARTTLS },
		{ "8BITMIME", SP_OB_EXT_8BITMIME },
		{ "SMTPUTF8", SP_OB_EXT_SMTPUTF8 },
		{ "SIZE", SP_OB_EXT_SIZE },
	};
	size_t i, kl;

	for (i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		kl = strlen(exts[i].name);
		if (n >= kl && strncasecmp(kw, exts[i].name, kl) == 0 &&
		    (n == kl || kw[kl] == ' '))
			r->ext |= exts[i].bit;
	}
}

/* One complete line (without CRLF): 1 last line, 0 more lines, -1 bad. */
static int
line_done(struct sp_ob_reply *r)
{
	const char *l = r->line;
	size_t n = r->line_len;
	int code;

	if (n > 0 && l[n - 1] == '\r')
		n--;
	if (n < 3 || l[0] < '2' || l[0] > '5' || l[1] < '0' || l[1] > '9' ||
	    l[2] < '0' || l[2] > '9' || (n > 3 && l[3] != ' ' && l[3] != '-'))
		return -1;
	code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
	if (r->lines > 0 && code != r->code)
		return -1;
	r->code = code;
	if (++r->lines > SP_OB_LINES_MAX)
		return -1;
	if (n > 4) {
		keep_text(r, l + 4, n - 4);
		if (r->lines > 1)
			note_ext(r, l + 4, n - 4);
	}
	return n > 3 && l[3] == '-' ? 0 : 1;
}

int
sp_ob_reply_feed(struct sp_ob_reply *r, const uint8_t *buf, size_t len,
    size_t *used_r)
{
	size_t i;
	int rc;

	for (i = 0; i < len; i++) {
		if (buf[i] != '\n') {
			if (r->line_len >= SP_OB_LINE_MAX) {
				*used_r = i;
				return -1;
			}
			r->line[r->line_len++] = (char)buf[i];
			continue;
		}
		rc = line_done(r);
		r->line_len = 0;
		if (rc != 0) {
			*used_r = i + 1;
			return rc;
		}
	}
	*used_r = len;
	return 0;
}
