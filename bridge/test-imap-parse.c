/*
 * The IMAP command parser: every syntax form, every limit, and need-more
 * at every byte boundary (each command is fed whole, split in two at every
 * offset, and one byte at a time, and must parse the same each way).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/imap_parse.h"
#include "tests/unit.h"

/* The argument tree as text: a:ATOM q:QUOTED l:LITERAL (list). */
static void
dump(const struct imap_arg *a, size_t n, char *out, size_t cap)
{
	size_t i, len;

	for (i = 0; i < n; i++) {
		len = strlen(out);
		if (i)
			snprintf(out + len, cap - len, " ");
		len = strlen(out);
		switch (a[i].type) {
		case IMAP_ARG_ATOM:
			snprintf(out + len, cap - len, "a:%s", a[i].s);
			break;
		case IMAP_ARG_QUOTED:
			snprintf(out + len, cap - len, "q:%s", a[i].s);
			break;
		case IMAP_ARG_LITERAL:
			snprintf(out + len, cap - len, "l%s:%.*s",
			    a[i].literal8 ? "8" : "", (int)a[i].len, a[i].s);
			break;
		case IMAP_ARG_LIST:
			snprintf(out + len, cap - len, "(");
			dump(a[i].list, a[i].n, out, cap);
			len = strlen(out);
			snprintf(out + len, cap - len, ")");
			break;
		}
	}
}

struct result {
	int rc;              /* last rc: DONE, ERROR, FATAL, or MORE */
	int continues;       /* CONTINUE answers seen */
	size_t used;         /* bytes taken until the result */
	char text[4096];     /* "TAG NAME args" or the error */
};

/* Feeds in chunks of `chunk` bytes (0: split once at `split`). */
static void
feed(imap_parser *p, const char *in, size_t len, size_t chunk, size_t split,
    struct result *r)
{
	size_t off = 0;

	memset(r, 0, sizeof(*r));
	r->rc = IMAP_PARSE_MORE;
	while (off < len) {
		size_t n = chunk ? chunk : (off < split ? split - off :
		    len - off), used = 0;
		struct imap_command *cmd;
		const char *tag, *err;
		int rc;

		if (n > len - off)
			n = len - off;
		rc = imap_parser_feed(p, (const uint8_t *)in + off, n, &used,
		    &cmd, &tag, &err);
		off += used;
		if (rc == IMAP_PARSE_CONTINUE) {
			r->continues++;
			continue;
		}
		if (rc == IMAP_PARSE_MORE) {
			if (used != n) {
				snprintf(r->text, sizeof(r->text),
				    "MORE took %zu of %zu", used, n);
				r->rc = IMAP_PARSE_ERROR;
				return;
			}
			continue;
		}
		r->rc = rc;
		r->used = off;
		if (rc == IMAP_PARSE_DONE) {
			if (cmd->raw)
				snprintf(r->text, sizeof(r->text), "RAW %s",
				    cmd->raw);
			else {
				snprintf(r->text, sizeof(r->text), "%s %s%s",
				    cmd->tag, cmd->name,
				    cmd->nargs ? " " : "");
				dump(cmd->args, cmd->nargs, r->text,
				    sizeof(r->text));
			}
		} else {
			snprintf(r->text, sizeof(r->text), "%s: %s",
			    tag ? tag : "*", err);
		}
		return;
	}
}

/* Parses in every way; all must agree with want (rc and text). */
static void
check_cmd(const char *in, int want_rc, int want_cont, const char *want)
{
	size_t len = strlen(in), i;
	struct result r;
	imap_parser *p;
	int ways = 0;

	for (i = 0; i <= len + 1; i++) {
		CHECK_RC(imap_parser_create(NULL, &p), 0);
		if (i == len + 1)
			feed(p, in, len, 1, 0, &r);        /* byte by byte */
		else
			feed(p, in, len, 0, i, &r);        /* split at i */
		if (r.rc != want_rc || strcmp(r.text, want) != 0 ||
		    r.continues != want_cont) {
			fprintf(stderr, "# %s: split %zu: rc %d cont %d '%s', "
			    "want rc %d cont %d '%s'\n", in, i, r.rc,
			    r.continues, r.text, want_rc, want_cont, want);
			unit_case_failed = 1;
			imap_parser_destroy(p);
			return;
		}
		ways++;
		imap_parser_destroy(p);
	}
	CHECK(ways == (int)len + 2);
}

static void
t_simple(void)
{
	check_cmd("a1 NOOP\r\n", IMAP_PARSE_DONE, 0, "a1 NOOP");
	check_cmd("a1 noop\n", IMAP_PARSE_DONE, 0, "a1 NOOP");
	check_cmd("x.1 LOGIN user \"pa ss\\\"w\\\\\"\r\n", IMAP_PARSE_DONE,
	    0, "x.1 LOGIN a:user q:pa ss\"w\\");
	check_cmd("t SELECT \"\"\r\n", IMAP_PARSE_DONE, 0, "t SELECT q:");
	check_cmd("t LIST \"\" *\r\n", IMAP_PARSE_DONE, 0, "t LIST q: a:*");
	check_cmd("t LIST \"\" %/x\r\n", IMAP_PARSE_DONE, 0,
	    "t LIST q: a:%/x");
	check_cmd("t STORE 1:* +FLAGS.SILENT (\\Seen $Label1)\r\n",
	    IMAP_PARSE_DONE, 0,
	    "t STORE a:1:* a:+FLAGS.SILENT (a:\\Seen a:$Label1)");
	check_cmd("t UID fetch 1:5 (UID FLAGS)\r\n", IMAP_PARSE_DONE, 0,
	    "t UID FETCH a:1:5 (a:UID a:FLAGS)");
	check_cmd("t FETCH 1 (BODY.PEEK[HEADER.FIELDS (From To)]<0.100> "
	    "BODY[1.2.MIME])\r\n", IMAP_PARSE_DONE, 0,
	    "t FETCH a:1 (a:BODY.PEEK[HEADER.FIELDS (From To)]<0.100> "
	    "a:BODY[1.2.MIME])");
	check_cmd("t X (() (a (b (c))) NIL)\r\n", IMAP_PARSE_DONE, 0,
	    "t X (() (a:a (a:b (a:c))) a:NIL)");
	/* Trailing space tolerated (some clients send one). */
	check_cmd("t NOOP \r\n", IMAP_PARSE_DONE, 0, "t NOOP");
	check_cmd("t SEARCH UTF8 \"h\xc3\xa9\"\r\n", IMAP_PARSE_DONE, 0,
	    "t SEARCH a:UTF8 q:h\xc3\xa9");
}

static void
t_literals(void)
{
	check_cmd("a LOGIN {4}\r\nuser {5}\r\npa\r\ns\r\n", IMAP_PARSE_DONE,
	    2, "a LOGIN l:user l:pa\r\ns");
	check_cmd("a LOGIN {4+}\r\nuser {5+}\r\npa\r\ns\r\n",
	    IMAP_PARSE_DONE, 0, "a LOGIN l:user l:pa\r\ns");
	check_cmd("a APPEND INBOX (\\Seen) {0}\r\n\r\n", IMAP_PARSE_DONE, 1,
	    "a APPEND a:INBOX (a:\\Seen) l:");
	check_cmd("a APPEND INBOX ~{3+}\r\nx\1y\r\n", IMAP_PARSE_DONE, 0,
	    "a APPEND a:INBOX l8:x\1y");
	check_cmd("a X ({2+}\r\nab {1+}\r\n))\r\n", IMAP_PARSE_DONE, 0,
	    "a X (l:ab l:))");
	/* A literal's bytes are never tokens: "{3}" inside stays data. */
	check_cmd("a X {5+}\r\n{3}\r\n\r\n", IMAP_PARSE_DONE, 0,
	    "a X l:{3}\r\n");
	/* A literal announcement must end the line. */
	check_cmd("a X \"{3}\"\r\n", IMAP_PARSE_DONE, 0, "a X q:{3}");
}

static void
t_errors(void)
{
	check_cmd("a X \"abc\r\n", IMAP_PARSE_ERROR, 0,
	    "a: unterminated quoted string");
	check_cmd("a X (b\r\n", IMAP_PARSE_ERROR, 0, "a: missing )");
	check_cmd("a X b)\r\n", IMAP_PARSE_ERROR, 0, "a: unexpected )");
	check_cmd("a X b  c\r\n", IMAP_PARSE_ERROR, 0, "a: empty argument");
	check_cmd("\r\n", IMAP_PARSE_ERROR, 0, "*: empty line");
	check_cmd("a\r\n", IMAP_PARSE_ERROR, 0, "*: bad tag");
	check_cmd("a+b NOOP\r\n", IMAP_PARSE_ERROR, 0, "*: bad tag");
	check_cmd("a X \"\\q\"\r\n", IMAP_PARSE_ERROR, 0,
	    "a: bad escape in quoted string");
	check_cmd("a X {2+}\r\nab c\r\n", IMAP_PARSE_DONE, 0, "a X l:ab a:c");
	check_cmd("a X {2+}\r\nabc\r\n", IMAP_PARSE_ERROR, 0,
	    "a: missing space between arguments");
	check_cmd("a UID\r\n", IMAP_PARSE_ERROR, 0, "a: UID needs a command");
	check_cmd("a X {99999999999999999999}\r\n", IMAP_PARSE_ERROR, 0,
	    "a: literal size too large");
}

static void
t_limits(void)
{
	struct imap_parse_limits l;
	struct imap_command *cmd;
	const char *tag, *err;
	imap_parser *p;
	size_t used;
	char big[300];
	int rc;

	imap_parse_limits_default(&l);
	l.line_max = 100;
	l.literal_max = 10;
	l.depth_max = 3;
	l.args_max = 5;
	CHECK_RC(imap_parser_create(&l, &p), 0);

	/* A refused synchronizing literal: BAD, and the client sends no
	 * literal, so the next line is the next command. */
	rc = imap_parser_feed(p, (const uint8_t *)"a APPEND x {11}\r\n"
	    "b NOOP\r\n", 25, &used, &cmd, &tag, &err);
	CHECK(rc == IMAP_PARSE_ERROR && tag && strcmp(tag, "a") == 0);
	CHECK(used == 17);
	rc = imap_parser_feed(p, (const uint8_t *)"b NOOP\r\n", 8, &used,
	    &cmd, &tag, &err);
	CHECK(rc == IMAP_PARSE_DONE && strcmp(cmd->tag, "b") == 0);

	/* A non-synchronizing one cannot be refused: fatal. */
	rc = imap_parser_feed(p, (const uint8_t *)"c APPEND x {11+}\r\n", 18,
	    &used, &cmd, &tag, &err);
	CHECK(rc == IMAP_PARSE_FATAL && tag && strcmp(tag, "c") == 0);

	/* Exactly at the literal limit is fine. */
	rc = imap_parser_feed(p, (const uint8_t *)"d X {10+}\r\n0123456789"
	    "\r\n", 23, &used, &cmd, &tag, &err);
	CHECK(rc == IMAP_PARSE_DONE && cmd->nargs == 1 &&
	    cmd->args[0].len == 10);

	/* Line too long, even before its end arrives. */
	memset(big, 'x', sizeof(big));
	memcpy(big, "e X ", 4);
	rc = imap_parser_feed(p, (const uint8_t *)big, sizeof(big), &used,
	    &cmd, &tag, &err);
	CHECK(rc == IMAP_PARSE_FATAL && strcmp(err, "line too long") == 0);
	CHECK(tag && strcmp(tag, "e") == 0);
	imap_parser_destroy(p);

	CHECK_RC(imap_parser_create(&l, &p), 0);
	rc = imap_parser_feed(p, (const uint8_t *)"f X (((a)))\r\n", 13,
	    &used, &cmd, &tag, &err);
	CHECK(rc == IMAP_PARSE_DONE);
	rc = imap_parser_feed(p, (const uint8_t *)"f X ((((a))))\r\n", 15,
	    &used, &cmd, &tag, &err);
	CHECK(rc == IMAP_PARSE_ERROR &&
	    strcmp(err, "lists nested too deeply") == 0);
	rc = imap_parser_feed(p, (const uint8_t *)"g X 1 2 3 4 5\r\n", 15,
	    &used, &cmd, &tag, &err);
	CHECK(rc == IMAP_PARSE_DONE && cmd->nargs == 5);
	rc = imap_parser_feed(p, (const uint8_t *)"g X 1 2 3 4 5 6\r\n", 17,
	    &used, &cmd, &tag, &err);
	CHECK(rc == IMAP_PARSE_ERROR && strcmp(err, "too many arguments") ==
	    0);
	/* The line limit counts each line, not the literals between. */
	rc = imap_parser_feed(p, (const uint8_t *)"h X {10+}\r\n0123456789 "
	    "{10+}\r\n0123456789\r\n", 44, &used, &cmd, &tag, &err);
	CHECK(rc == IMAP_PARSE_DONE && cmd->nargs == 2);
	imap_parser_destroy(p);
}

static void
t_raw_line(void)
{
	struct imap_command *cmd;
	const char *tag, *err;
	imap_parser *p;
	size_t used;
	int rc;

	CHECK_RC(imap_parser_create(NULL, &p), 0);
	imap_parser_raw_line(p);
	rc = imap_parser_feed(p, (const uint8_t *)"AGZvbwBiYXI= {5}\r\na NOOP"
	    "\r\n", 26, &used, &cmd, &tag, &err);
	CHECK(rc == IMAP_PARSE_DONE && cmd->raw &&
	    strcmp(cmd->raw, "AGZvbwBiYXI= {5}") == 0 && used == 18);
	rc = imap_parser_feed(p, (const uint8_t *)"a NOOP\r\n", 8, &used,
	    &cmd, &tag, &err);
	CHECK(rc == IMAP_PARSE_DONE && cmd->raw == NULL &&
	    strcmp(cmd->name, "NOOP") == 0);
	imap_parser_destroy(p);
}

static void
t_seqset(void)
{
	struct imap_seqset s;

	CHECK(imap_seqset_parse("1,3:5,7:*", &s) == 0);
	CHECK(s.n == 3 && s.r[2].hi == IMAP_SEQ_STAR);
	imap_seqset_resolve(&s, 10);
	CHECK(imap_seqset_contains(&s, 1) && !imap_seqset_contains(&s, 2) &&
	    imap_seqset_contains(&s, 4) && imap_seqset_contains(&s, 10) &&
	    !imap_seqset_contains(&s, 6));
	imap_seqset_finish(&s);
	CHECK(imap_seqset_parse("5:2", &s) == 0);
	imap_seqset_resolve(&s, 10);
	CHECK(s.r[0].lo == 2 && s.r[0].hi == 5);
	imap_seqset_finish(&s);
	CHECK(imap_seqset_parse("*:4", &s) == 0);
	imap_seqset_resolve(&s, 3);
	CHECK(s.r[0].lo == 3 && s.r[0].hi == 4);
	imap_seqset_finish(&s);
	CHECK(imap_seqset_parse("$", &s) == 0 && s.saved);
	CHECK(imap_seqset_parse("0", &s) == -1);
	CHECK(imap_seqset_parse("1,", &s) == -1);
	CHECK(imap_seqset_parse("", &s) == -1);
	CHECK(imap_seqset_parse("1:", &s) == -1);
	CHECK(imap_seqset_parse("4294967295", &s) == -1);
	CHECK(imap_seqset_parse("4294967294", &s) == 0);
	imap_seqset_finish(&s);
	CHECK(imap_seqset_parse("a", &s) == -1);
}

static int
fetch_parse(const char *cmdline, struct imap_fetch_atts *f)
{
	struct imap_command *cmd;
	const char *tag, *err = NULL;
	imap_parser *p;
	size_t used;
	int rc;

	if (imap_parser_create(NULL, &p) != 0)
		return -2;
	rc = imap_parser_feed(p, (const uint8_t *)cmdline, strlen(cmdline),
	    &used, &cmd, &tag, &err);
	if (rc != IMAP_PARSE_DONE || cmd->nargs != 2) {
		imap_parser_destroy(p);
		return -2;
	}
	rc = imap_fetch_atts_parse(&cmd->args[1], f, &err);
	imap_parser_destroy(p);
	return rc;
}

static void
t_fetch_atts(void)
{
	struct imap_fetch_atts f;

	CHECK(fetch_parse("a FETCH 1 ALL\r\n", &f) == 0);
	CHECK(f.n == 4 && f.a[3].item == IMAP_FI_ENVELOPE && !f.sets_seen);
	imap_fetch_atts_finish(&f);
	CHECK(fetch_parse("a FETCH 1 FULL\r\n", &f) == 0);
	CHECK(f.n == 5 && f.a[4].item == IMAP_FI_BODY);
	imap_fetch_atts_finish(&f);
	CHECK(fetch_parse("a FETCH 1 (uid body.peek[header.fields (from "
	    "to)]<5.10> BODY[1.2.MIME] BODY[] RFC822.SIZE MODSEQ "
	    "BINARY.PEEK[2] BINARY.SIZE[2])\r\n", &f) == 0);
	CHECK(f.n == 8);
	if (f.n == 8) {
		CHECK(f.a[1].peek && f.a[1].text == IMAP_ST_HEADER_FIELDS &&
		    f.a[1].nfields == 2 && f.a[1].partial &&
		    f.a[1].start == 5 && f.a[1].count == 10);
		CHECK(strcmp(f.a[1].label,
		    "BODY[HEADER.FIELDS (FROM TO)]<5>") == 0);
		CHECK(f.a[2].nparts == 2 && f.a[2].part[1] == 2 &&
		    f.a[2].text == IMAP_ST_MIME &&
		    strcmp(f.a[2].label, "BODY[1.2.MIME]") == 0);
		CHECK(strcmp(f.a[3].label, "BODY[]") == 0);
		CHECK(f.a[6].item == IMAP_FI_BINARY &&
		    strcmp(f.a[6].label, "BINARY[2]") == 0);
		CHECK(f.a[7].item == IMAP_FI_BINARY_SIZE);
	}
	CHECK(f.sets_seen && f.has_body);
	imap_fetch_atts_finish(&f);
	CHECK(fetch_parse("a FETCH 1 BODY[MIME]\r\n", &f) == -1);
	CHECK(fetch_parse("a FETCH 1 BODY[1.0]\r\n", &f) == -1);
	CHECK(fetch_parse("a FETCH 1 BODY[TEXTX]\r\n", &f) == -1);
	CHECK(fetch_parse("a FETCH 1 BODY[]<1>\r\n", &f) == -1);
	CHECK(fetch_parse("a FETCH 1 BODY[]<1.0>\r\n", &f) == -1);
	CHECK(fetch_parse("a FETCH 1 BODY[HEADER.FIELDS ()]\r\n", &f) == -1);
	CHECK(fetch_parse("a FETCH 1 BINARY[HEADER]\r\n", &f) == -1);
	CHECK(fetch_parse("a FETCH 1 FOO\r\n", &f) == -1);
	CHECK(fetch_parse("a FETCH 1 ()\r\n", &f) == -1);
	CHECK(fetch_parse("a FETCH 1 (\"UID\")\r\n", &f) == -1);
}

int
main(void)
{
	RUN(t_simple);
	RUN(t_literals);
	RUN(t_errors);
	RUN(t_limits);
	RUN(t_raw_line);
	RUN(t_seqset);
	RUN(t_fetch_atts);
	return unit_done();
}
