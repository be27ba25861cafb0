/*
 * SMTP command-line framing, command parsing and the DATA/BDAT reader
 * (see smtp_parse.h for the contracts).
 *
 * The grammar follows RFC 5321 4.1.2 with the SMTPUTF8 extension of
 * RFC 6531 3.3 (UTF-8 allowed in atoms, quoted strings and domain labels).
 * What is accepted is deliberately narrow: the gateway is an MX, and every
 * leniency is something a downstream parser may read differently.
 */
#include <string.h>
#include <strings.h>

#include "crypto/text.h"
#include "server/gateway/smtp_parse.h"

static const char *const verb_names[SP_SMTP_NVERBS] = {
	[SP_SMTP_HELO] = "HELO",
	[SP_SMTP_EHLO] = "EHLO",
	[SP_SMTP_MAIL] = "MAIL",
	[SP_SMTP_RCPT] = "RCPT",
	[SP_SMTP_DATA] = "DATA",
	[SP_SMTP_BDAT] = "BDAT",
	[SP_SMTP_RSET] = "RSET",
	[SP_SMTP_NOOP] = "NOOP",
	[SP_SMTP_QUIT] = "QUIT",
	[SP_SMTP_VRFY] = "VRFY",
	[SP_SMTP_EXPN] = "EXPN",
	[SP_SMTP_HELP] = "HELP",
	[SP_SMTP_STARTTLS] = "STARTTLS",
	[SP_SMTP_UNKNOWN] = "unknown",
};

const char *
sp_smtp_verb_name(enum sp_smtp_verb v)
{
	if ((unsigned)v >= SP_SMTP_NVERBS)
		return "unknown";
	return verb_names[v];
}

/* ---- command-line framing ---- */

void
sp_smtp_lines_init(struct sp_smtp_lines *l, size_t margin)
{
	l->max = SP_SMTP_LINE_MAX + margin;
	l->skipping = 0;
}

int
sp_smtp_lines_next(struct sp_smtp_lines *l, const uint8_t *buf, size_t len,
    size_t *used_r, size_t *linelen_r)
{
	size_t i, lim;

	*used_r = 0;
	*linelen_r = 0;
	if (l->skipping) {
		/* The rest of a rejected line: drop through its LF (a lone
		 * LF counts, so LF-only clients get back in step). */
		const uint8_t *lf = memchr(buf, '\n', len);

		*used_r = lf ? (size_t)(lf - buf) + 1 : len;
		l->skipping = lf == NULL;
		return SP_SMTP_MORE;
	}
	lim = len < l->max ? len : l->max;
	for (i = 0; i < lim; i++) {
		if (buf[i] == '\n') {
			*used_r = i + 1;
			return SP_SMTP_EBARELF;
		}
		if (buf[i] != '\r')
			continue;
		if (i + 2 > l->max) {
			*used_r = i;
			l->skipping = 1;
			return SP_SMTP_ELONG;
		}
		if (i + 1 == len)
			return SP_SMTP_MORE;
		if (buf[i + 1] == '\n') {
			*used_r = i + 2;
			*linelen_r = i;
			return 0;
		}
		*used_r = i + 1;
		l->skipping = 1;
		return SP_SMTP_EBARECR;
	}
	if (len >= l->max) {
		*used_r = lim;
		l->skipping = 1;
		return SP_SMTP_ELONG;
	}
	return SP_SMTP_MORE;
}

/* ---- command parsing ---- */

struct cursor {
	const char *p, *end;
};

static int
at_end(const struct cursor *c)
{
	return c->p >= c->end;
}

/* Case-insensitive match of a literal prefix; advances on success. */
static int
eat(struct cursor *c, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(c->end - c->p) < n || strncasecmp(c->p, lit, n) != 0)
		return 0;
	c->p += n;
	return 1;
}

static int
is_alnum(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9');
}

/* RFC 5322 atext, plus any UTF-8 byte (RFC 6531 extends atext). */
static int
is_atext(unsigned char ch)
{
	return is_alnum(ch) || ch >= 0x80 ||
	    (ch != 0 && strchr("!#$%&'*+-/=?^_`{|}~", ch) != NULL);
}

/* Domain label character: letter, digit, hyphen, or UTF-8 (U-label). */
static int
is_ldh(unsigned char ch)
{
	return is_alnum(ch) || ch == '-' || ch >= 0x80;
}

/* RFC 5321 dcontent of an address literal. */
static int
is_dcontent(unsigned char ch)
{
	return (ch >= 33 && ch <= 90) || (ch >= 94 && ch <= 126);
}

/* Domain = sub-domain *("." sub-domain), or an address literal.  Stops at
 * the first character that cannot continue it. */
static int
parse_domain(struct cursor *c)
{
	const char *start = c->p;

	if (!at_end(c) && *c->p == '[') {
		c->p++;
		while (!at_end(c) && is_dcontent((unsigned char)*c->p))
			c->p++;
		if (at_end(c) || *c->p != ']' || c->p == start + 1)
			return SP_SMTP_EPATH;
		c->p++;
	} else {
		for (;;) {
			const char *label = c->p;

			while (!at_end(c) && is_ldh((unsigned char)*c->p))
				c->p++;
			if (c->p == label || *label == '-' || c->p[-1] == '-')
				return SP_SMTP_EPATH;
			if (at_end(c) || *c->p != '.')
				break;
			c->p++;
		}
	}
	if ((size_t)(c->p - start) > SP_SMTP_DOMAIN_MAX)
		return SP_SMTP_EPATH;
	return 0;
}

/* Local-part = Dot-string / Quoted-string. */
static int
parse_local(struct cursor *c)
{
	const char *start = c->p;

	if (!at_end(c) && *c->p == '"') {
		c->p++;
		for (;;) {
			unsigned char ch;

			if (at_end(c))
				return SP_SMTP_EPATH;
			ch = (unsigned char)*c->p;
			if (ch == '"')
				break;
			if (ch == '\\') {
				/* quoted-pairSMTP: %d92 %d32-126 */
				c->p++;
				if (at_end(c) || (unsigned char)*c->p < 32 ||
				    (unsigned char)*c->p > 126)
					return SP_SMTP_EPATH;
			} else if (ch < 32 || ch == 127) {
				return SP_SMTP_EPATH;
			}
			c->p++;
		}
		c->p++;
	} else {
		for (;;) {
			const char *atom = c->p;

			while (!at_end(c) && is_atext((unsigned char)*c->p))
				c->p++;
			if (c->p == atom)
				return SP_SMTP_EPATH;
			if (at_end(c) || *c->p != '.')
				break;
			c->p++;
		}
	}
	if ((size_t)(c->p - start) > SP_SMTP_LOCAL_MAX)
		return SP_SMTP_EPATH;
	return 0;
}

/*
 * Path = "<" [ A-d-l ":" ] Mailbox ">", or "<>" when allow_null.  The
 * mailbox (without route and brackets) is copied to out.  RCPT may name
 * "<Postmaster>" without a domain (RFC 5321 4.1.1.3).
 */
static int
parse_path(struct cursor *c, int allow_null, int allow_postmaster,
    char *out, int *utf8_r)
{
	const char *open = c->p, *mbox;
	size_t n, i;
	int rc;

	*utf8_r = 0;
	if (at_end(c) || *c->p != '<')
		return SP_SMTP_EPATH;
	c->p++;
	if (!at_end(c) && *c->p == '>') {
		if (!allow_null)
			return SP_SMTP_EPATH;
		c->p++;
		out[0] = '\0';
		return 0;
	}
	if (!at_end(c) && *c->p == '@') {
		/* A source route: RFC 5321 says accept and ignore it. */
		for (;;) {
			c->p++;
			if ((rc = parse_domain(c)) != 0)
				return rc;
			if (at_end(c))
				return SP_SMTP_EPATH;
			if (*c->p == ':') {
				c->p++;
				break;
			}
			if (*c->p != ',' || c->p + 1 >= c->end ||
			    c->p[1] != '@')
				return SP_SMTP_EPATH;
			c->p++;
		}
	}
	mbox = c->p;
	if ((rc = parse_local(c)) != 0)
		return rc;
	if (!at_end(c) && *c->p == '@') {
		c->p++;
		if ((rc = parse_domain(c)) != 0)
			return rc;
	} else if (!allow_postmaster || (size_t)(c->p - mbox) != 10 ||
	    strncasecmp(mbox, "postmaster", 10) != 0) {
		return SP_SMTP_EPATH;
	}
	if (at_end(c) || *c->p != '>')
		return SP_SMTP_EPATH;
	n = (size_t)(c->p - mbox);
	c->p++;
	if ((size_t)(c->p - open) > SP_SMTP_PATH_MAX)
		return SP_SMTP_EPATH;
	for (i = 0; i < n; i++)
		if ((unsigned char)mbox[i] >= 0x80)
			*utf8_r = 1;
	if (*utf8_r && !sp_utf8_valid((const uint8_t *)mbox, n))
		return SP_SMTP_EUTF8;
	memcpy(out, mbox, n);
	out[n] = '\0';
	return 0;
}

/* Digits only, at most 20 of them, no overflow. */
static int
parse_number(const char *s, size_t n, uint64_t *v_r)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0 || n > 20)
		return SP_SMTP_ESYNTAX;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return SP_SMTP_ESYNTAX;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return SP_SMTP_ESYNTAX;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*v_r = v;
	return 0;
}

/* One esmtp-param of MAIL: SIZE, BODY or SMTPUTF8, each at most once. */
static int
mail_param(struct sp_smtp_cmd *cmd, const char *kw, size_t kwlen,
    const char *val, size_t vallen, int has_val)
{
	if (kwlen == 4 && strncasecmp(kw, "SIZE", 4) == 0) {
		if (cmd->has_size || !has_val ||
		    parse_number(val, vallen, &cmd->size) != 0)
			return SP_SMTP_EPARAM;
		cmd->has_size = 1;
		return 0;
	}
	if (kwlen == 4 && strncasecmp(kw, "BODY", 4) == 0) {
		if (cmd->body != SP_SMTP_BODY_NONE || !has_val)
			return SP_SMTP_EPARAM;
		if (vallen == 4 && strncasecmp(val, "7BIT", 4) == 0)
			cmd->body = SP_SMTP_BODY_7BIT;
		else if (vallen == 8 && strncasecmp(val, "8BITMIME", 8) == 0)
			cmd->body = SP_SMTP_BODY_8BITMIME;
		else
			return SP_SMTP_EPARAM;
		return 0;
	}
	if (kwlen == 8 && strncasecmp(kw, "SMTPUTF8", 8) == 0) {
		if (cmd->smtputf8 || has_val)
			return SP_SMTP_EPARAM;
		cmd->smtputf8 = 1;
		return 0;
	}
	return SP_SMTP_EPARAM;
}

/* *( SP esmtp-param ) up to the end of the line; RCPT takes none. */
static int
parse_params(struct cursor *c, struct sp_smtp_cmd *cmd)
{
	while (!at_end(c)) {
		const char *kw, *val = NULL;
		size_t kwlen, vallen = 0;
		int has_val = 0, rc;

		if (*c->p != ' ')
			return SP_SMTP_ESYNTAX;
		while (!at_end(c) && *c->p == ' ')
			c->p++;
		if (at_end(c))
			break;
		kw = c->p;
		if (!is_alnum((unsigned char)*c->p))
			return SP_SMTP_EPARAM;
		while (!at_end(c) && (is_alnum((unsigned char)*c->p) ||
		    *c->p == '-'))
			c->p++;
		kwlen = (size_t)(c->p - kw);
		if (!at_end(c) && *c->p == '=') {
			c->p++;
			val = c->p;
			while (!at_end(c) && (unsigned char)*c->p >= 33 &&
			    (unsigned char)*c->p <= 126 && *c->p != '=')
				c->p++;
			vallen = (size_t)(c->p - val);
			if (vallen == 0)
				return SP_SMTP_EPARAM;
			has_val = 1;
		}
		if (!at_end(c) && *c->p != ' ')
			return SP_SMTP_EPARAM;
		if (cmd->verb != SP_SMTP_MAIL)
			return SP_SMTP_EPARAM;
		if ((rc = mail_param(cmd, kw, kwlen, val, vallen, has_val)) != 0)
			return rc;
	}
	return 0;
}

/* MAIL FROM:<path> params / RCPT TO:<path> params.  One space after the
 * colon is tolerated: common clients send it and it is unambiguous. */
static int
parse_mail_rcpt(struct cursor *c, struct sp_smtp_cmd *cmd)
{
	int rc;
	int mail = cmd->verb == SP_SMTP_MAIL;

	if (!eat(c, " ") || !eat(c, mail ? "FROM:" : "TO:"))
		return SP_SMTP_ESYNTAX;
	(void)eat(c, " ");
	if ((rc = parse_path(c, mail, !mail, cmd->path, &cmd->path_utf8)) != 0)
		return rc;
	return parse_params(c, cmd);
}

static int
parse_helo(struct cursor *c, struct sp_smtp_cmd *cmd)
{
	const char *start;
	size_t n;

	if (!eat(c, " "))
		return SP_SMTP_ESYNTAX;
	start = c->p;
	/* A name is printable ASCII; anything after it is ignored, as
	 * clients put comments there. */
	while (!at_end(c) && (unsigned char)*c->p > 32 &&
	    (unsigned char)*c->p < 127)
		c->p++;
	n = (size_t)(c->p - start);
	if (n == 0 || n > SP_SMTP_DOMAIN_MAX)
		return SP_SMTP_ESYNTAX;
	if (!at_end(c) && *c->p != ' ')
		return SP_SMTP_ESYNTAX;
	memcpy(cmd->helo, start, n);
	cmd->helo[n] = '\0';
	return 0;
}

static int
parse_bdat(struct cursor *c, struct sp_smtp_cmd *cmd)
{
	const char *start;

	if (!eat(c, " "))
		return SP_SMTP_ESYNTAX;
	start = c->p;
	while (!at_end(c) && *c->p != ' ')
		c->p++;
	if (parse_number(start, (size_t)(c->p - start), &cmd->chunk) != 0)
		return SP_SMTP_ESYNTAX;
	if (at_end(c))
		return 0;
	if (!eat(c, " LAST") || !at_end(c))
		return SP_SMTP_ESYNTAX;
	cmd->last = 1;
	return 0;
}

int
sp_smtp_cmd_parse(const char *line, size_t len, struct sp_smtp_cmd *cmd)
{
	struct cursor c = { line, line + len };
	size_t vlen, i;

	memset(cmd, 0, sizeof(*cmd));
	cmd->verb = SP_SMTP_UNKNOWN;
	if (memchr(line, '\0', len) != NULL)
		return SP_SMTP_ESYNTAX;
	for (vlen = 0; vlen < len && line[vlen] != ' '; vlen++)
		;
	for (i = 0; i < SP_SMTP_UNKNOWN; i++) {
		if (strlen(verb_names[i]) == vlen &&
		    strncasecmp(line, verb_names[i], vlen) == 0) {
			cmd->verb = (enum sp_smtp_verb)i;
			break;
		}
	}
	c.p += vlen;
	switch (cmd->verb) {
	case SP_SMTP_HELO:
	case SP_SMTP_EHLO:
		return parse_helo(&c, cmd);
	case SP_SMTP_MAIL:
	case SP_SMTP_RCPT:
		return parse_mail_rcpt(&c, cmd);
	case SP_SMTP_BDAT:
		return parse_bdat(&c, cmd);
	case SP_SMTP_DATA:
	case SP_SMTP_RSET:
	case SP_SMTP_QUIT:
	case SP_SMTP_STARTTLS:
		return at_end(&c) ? 0 : SP_SMTP_ESYNTAX;
	case SP_SMTP_VRFY:
	case SP_SMTP_EXPN:
		return (eat(&c, " ") && !at_end(&c)) ? 0 : SP_SMTP_ESYNTAX;
	case SP_SMTP_NOOP:
	case SP_SMTP_HELP:
	case SP_SMTP_UNKNOWN:
	case SP_SMTP_NVERBS:
		break;
	}
	return 0;
}

/* ---- the message data reader ---- */

enum {
	ST_BOL,     /* at the start of a line */
	ST_MID,     /* inside a line */
	ST_CR,      /* after a CR (written) */
	ST_DOT,     /* after a leading dot (not written) */
	ST_DOTCR,   /* after ".\r" at the start of a line */
	ST_END,     /* saw CRLF.CRLF */
	ST_DEAD,    /* framing broken */
};

void
sp_smtp_data_init(struct sp_smtp_data *d, enum sp_smtp_data_mode mode,
    uint64_t max)
{
	d->mode = mode;
	d->state = ST_BOL;
	d->max = max;
	d->size = 0;
	d->error = 0;
}

int
sp_smtp_data_feed(struct sp_smtp_data *d, const uint8_t *in, size_t len,
    uint8_t *out, size_t *used_r, size_t *outlen_r)
{
	size_t i, o = 0;
	int rc = SP_SMTP_MORE;

	if (d->state == ST_END || d->state == ST_DEAD) {
		*used_r = 0;
		*outlen_r = 0;
		return d->state == ST_END ? 0 : SP_SMTP_EBARELF;
	}
	for (i = 0; i < len && rc == SP_SMTP_MORE; i++) {
		uint8_t ch;
		int emit = 1;

		if (d->state == ST_MID) {
			/* The bulk of a message: the rest of the line up to
			 * its CR or LF is copied at once (measured: byte by
			 * byte, this was the gateway's hottest function). */
			const uint8_t *cr = memchr(in + i, '\r', len - i);
			const uint8_t *end = cr ? cr : in + len;
			const uint8_t *lf = memchr(in + i, '\n',
			    (size_t)(end - (in + i)));
			size_t run = (size_t)((lf ? lf : end) - (in + i));
			size_t room = d->size < d->max ? d->max - d->size : 0;
			size_t c = run < room ? run : room;

			memcpy(out + o, in + i, c);
			o += c;
			if (c < run)
				d->error = SP_SMTP_ESIZE;
			d->size += run;
			i += run;
			if (i == len)
				break;
		}
		ch = in[i];
		if (d->state == ST_BOL) {
			if (ch == '.' && d->mode == SP_SMTP_DATA_DOT) {
				d->state = ST_DOT;
				continue;
			}
			d->state = ST_MID;
		}
		switch (d->state) {
		case ST_MID:
		case ST_DOT:
			/* After a leading dot, the dot is dropped and the line
			 * goes on (RFC 5321 4.5.2). */
			if (ch == '\n') {
				rc = SP_SMTP_EBARELF;
				emit = 0;
			} else if (ch == '\r') {
				d->state = d->state == ST_DOT ? ST_DOTCR : ST_CR;
				emit = d->state == ST_CR;
			} else {
				d->state = ST_MID;
			}
			break;
		case ST_CR:
			if (ch != '\n') {
				rc = SP_SMTP_EBARECR;
				emit = 0;
			} else {
				d->state = ST_BOL;
			}
			break;
		case ST_DOTCR:
			emit = 0;
			rc = ch == '\n' ? 0 : SP_SMTP_EBARECR;
			break;
		default:
			emit = 0;
			break;
		}
		if (!emit)
			continue;
		if (d->size < d->max)
			out[o++] = ch;
		else
			d->error = SP_SMTP_ESIZE;
		d->size++;
	}
	if (rc == 0)
		d->state = ST_END;
	else if (rc != SP_SMTP_MORE)
		d->state = ST_DEAD;
	*used_r = i;
	*outlen_r = o;
	return rc;
}

int
sp_smtp_data_finish(struct sp_smtp_data *d)
{
	if (d->state == ST_CR || d->state == ST_DEAD)
		return SP_SMTP_EBARECR;
	return 0;
}
