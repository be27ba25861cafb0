/* DSN building (outbound_dsn.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "server/gateway/outbound_dsn.h"

#define HEADERS_MAX (64 * 1024)   /* quoted original header section */

struct tb {
	char *p;
	size_t len, cap;
	int err;
};

static void tb_printf(struct tb *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
tb_printf(struct tb *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->err)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->err = 1;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		{
			size_t cap = (b->cap + (size_t)n) * 2;
			char *np = malloc(cap);

			if (np == NULL) {
				b->err = 1;
				return;
			}
			memcpy(np, b->p, b->len);
			sodium_memzero(b->p, b->cap);
			free(b->p);
			b->p = np;
			b->cap = cap;
		}
	}
}

static void
tb_add(struct tb *b, const uint8_t *s, size_t n)
{
	size_t i;

	/* Quoted headers stay 7-bit and CRLF: anything else becomes '?'. */
	for (i = 0; i < n && !b->err; i++) {
		char c = (s[i] == '\r' || s[i] == '\n' || s[i] == '\t' ||
		    (s[i] >= ' ' && s[i] < 0x7f)) ? (char)s[i] : '?';

		tb_printf(b, "%c", c);
	}
}

static void
date822(time_t t, char *out, size_t cap)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, cap, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

/* "5.1.1" from a reply text that starts with an enhanced code, else the
 * class of the code. */
static void
status_of(int code, const char *text, int delayed, char out[16])
{
	int a, b, c, n = 0;

	if (!delayed && text && sscanf(text, "%1d.%3d.%3d%n", &a, &b, &c,
	    &n) == 3 && n > 0 && (a == 4 || a == 5) && a == code / 100) {
		snprintf(out, 16, "%d.%d.%d", a, b, c);
		return;
	}
	if (delayed)
		snprintf(out, 16, "4.4.7");
	else if (code == 0)
		snprintf(out, 16, "5.4.7");     /* delivery time expired */
	else
		snprintf(out, 16, "%d.0.0", code / 100 == 4 ? 4 : 5);
}

int
sp_ob_dsn_build(const char *reporting_mta, const char *mail_from,
    int delayed, const struct sp_ob_dsn_rcpt *r, size_t n,
    const uint8_t *orig, size_t orig_len, time_t arrival, time_t now,
    char **out_r, size_t *len_r)
{
	struct tb b = {0};
	char date[64], arr[64], boundary[40], mid[40];
	const char *dom = strchr(mail_from, '@');
	uint8_t rnd[12];
	size_t i, hlen = 0;

	*out_r = NULL;
	if ((b.p = malloc(4096)) == NULL)
		return ENOMEM;
	b.cap = 4096;
	b.p[0] = '\0';
	date822(now, date, sizeof(date));
	date822(arrival, arr, sizeof(arr));
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(boundary, sizeof(boundary), rnd, sizeof(rnd));
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(mid, sizeof(mid), rnd, sizeof(rnd));
	tb_printf(&b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n"
	    "To: <%s>\r\nSubject: %s\r\nDate: %s\r\n"
	    "Message-ID: <dsn.%s@%s>\r\nAuto-Submitted: auto-replied\r\n"
	    "MIME-Version: 1.0\r\nContent-Type: multipart/report; "
	    "report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n\r\n"
	    "This is a delivery status notification (RFC 3464).\r\n\r\n"
	    "--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n",
	    dom ? dom + 1 : reporting_mta, mail_from, delayed ?
	    "Delayed Mail (still being retried)" :
	    "Undelivered Mail Returned to Sender", date, mid, reporting_mta,
	    boundary, boundary);
	tb_printf(&b, delayed ?
	    "Your message could not be delivered yet to the recipients below.\r\n"
	    "Delivery is still being retried; you need not send it again.\r\n\r\n" :
	    "Your message could not be delivered to the recipients below.\r\n\r\n");
	for (i = 0; i < n; i++)
		tb_printf(&b, "  <%s>: %s%s%s\r\n", r[i].addr, r[i].code ?
		    "the remote server said: " : "", r[i].code ? "" :
		    "delivery time expired; last error: ", r[i].text &&
		    r[i].text[0] ? r[i].text : "(none)");
	tb_printf(&b, "\r\n--%s\r\nContent-Type: message/delivery-status\r\n"
	    "\r\nReporting-MTA: dns; %s\r\nArrival-Date: %s\r\n", boundary,
	    reporting_mta, arr);
	for (i = 0; i < n; i++) {
		char st[16];

		status_of(r[i].code, r[i].text, delayed, st);
		tb_printf(&b, "\r\nFinal-Recipient: rfc822; %s\r\nAction: %s\r\n"
		    "Status: %s\r\n", r[i].addr, delayed ? "delayed" :
		    "failed", st);
		if (r[i].code)
			tb_printf(&b, "Diagnostic-Code: smtp; %d %s\r\n",
			    r[i].code, r[i].text ? r[i].text : "");
	}
	if (orig != NULL) {
		for (hlen = 0; hlen + 3 < orig_len && hlen < HEADERS_MAX;
		    hlen++)
			if (memcmp(orig + hlen, "\r\n\r\n", 4) == 0)
				break;
		tb_printf(&b, "\r\n--%s\r\nContent-Type: text/rfc822-headers"
		    "\r\n\r\n", boundary);
		tb_add(&b, orig, hlen);
		tb_printf(&b, "\r\n");
	}
	tb_printf(&b, "\r\n--%s--\r\n", boundary);
	if (b.err) {
		if (b.p)
			sodium_memzero(b.p, b.cap);
		free(b.p);
		return ENOMEM;
	}
	*out_r = b.p;
	*len_r = b.len;
	return 0;
}
