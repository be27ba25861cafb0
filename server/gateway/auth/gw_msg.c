/*
 * Header splitting (gw_msg.h).  A field is "name:" up to the CRLF not
 * followed by WSP; the name is printable US-ASCII without ':' (RFC 5322
 * 2.2).  Bare LF is taken as a line end too, so a file with LF endings
 * still splits; the SMTP side has already refused bare LF on the wire.
 */
#include "server/gateway/auth/gw_msg.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

/* End of the line starting at i: index after its LF, or len. */
static size_t
line_end(const char *s, size_t len, size_t i)
{
	const char *lf = memchr(s + i, '\n', len - i);

	return lf ? (size_t)(lf - s) + 1 : len;
}

int
sp_gw_msg_parse(const uint8_t *msg, size_t len, struct sp_gw_msg *m)
{
	const char *s = (const char *)msg;
	size_t i = 0;

	m->n = 0;
	m->body = NULL;
	m->body_len = 0;
	while (i < len) {
		size_t e, k, colon, nend;
		struct sp_gw_hdr *h;

		if (s[i] == '\n' || (s[i] == '\r' && i + 1 < len &&
		    s[i + 1] == '\n')) {
			i += s[i] == '\n' ? 1 : 2;
			m->body = s + i;
			m->body_len = len - i;
			return 0;
		}
		colon = i;
		while (colon < len && s[colon] != ':' &&
		    s[colon] > 0x20 && s[colon] < 0x7f)
			colon++;
		nend = colon;
		/* obs-optional: WSP between the name and the colon. */
		while (colon < len && (s[colon] == ' ' || s[colon] == '\t'))
			colon++;
		if (nend == i || colon >= len || s[colon] != ':')
			return EINVAL;
		if (m->n >= SP_GW_MSG_MAX_FIELDS)
			return EINVAL;
		e = line_end(s, len, i);
		while (e < len && (s[e] == ' ' || s[e] == '\t'))
			e = line_end(s, len, e);
		h = &m->h[m->n++];
		h->name = s + i;
		h->name_len = nend - i;
		h->raw = s + i;
		h->raw_len = e - i;
		h->value = s + colon + 1;
		k = e;
		if (k > colon + 1 && s[k - 1] == '\n')
			k--;
		if (k > colon + 1 && s[k - 1] == '\r')
			k--;
		h->value_len = k - colon - 1;
		i = e;
	}
	return 0;
}

int
sp_gw_msg_find(const struct sp_gw_msg *m, const char *name, int from)
{
	size_t nl = strlen(name);

	for (int i = from < 0 ? 0 : from; i < m->n; i++)
		if (m->h[i].name_len == nl &&
		    strncasecmp(m->h[i].name, name, nl) == 0)
			return i;
	return -1;
}
