/*
 * The IMAP command parser (RFC 3501 section 9, RFC 7888 LITERAL+): hostile
 * bytes from a mail client in, one parsed command at a time out.
 *
 * Two layers:
 *
 * - Framing (imap_parser_feed) is incremental: it takes whatever bytes
 *   arrived, returns IMAP_PARSE_MORE until a whole command (its lines and
 *   the literals between them) is in, and says when a synchronizing
 *   literal {n} needs a continuation request ("+ ...") first.  Every limit
 *   (line length, literal size, total size) is checked as bytes arrive, so
 *   a client cannot make the parser buffer more than the limits allow.
 * - Tokenizing happens once the command is complete: tag, command name,
 *   and an argument tree of atoms, quoted strings, literals and
 *   parenthesised lists, with limits on nesting depth and argument count.
 *   Atoms may carry a bracketed part with spaces and parentheses
 *   (BODY[HEADER.FIELDS (From To)]<0.100>), as FETCH needs.
 *
 * On top of the tree: sequence sets and FETCH attributes (section specs,
 * partials).  SEARCH keys are read from the tree by imap_search.c.
 *
 * Memory: the parser owns everything it returns; a command and its
 * argument tree stay valid until the next call to imap_parser_feed() or
 * imap_parser_destroy().  Never logs, never exits.
 */
#ifndef SP_BRIDGE_IMAP_PARSE_H
#define SP_BRIDGE_IMAP_PARSE_H

#include <stddef.h>
#include <stdint.h>

typedef struct imap_parser imap_parser;

struct imap_parse_limits {
	size_t line_max;      /* bytes of one line (without literals) */
	size_t literal_max;   /* bytes of one literal (APPEND: message max) */
	size_t command_max;   /* bytes of a whole command, literals included */
	unsigned depth_max;   /* nesting of parenthesised lists */
	unsigned args_max;    /* arguments in the whole tree */
};

/* Defaults: 64 KiB lines, 64 MiB literals and commands, depth 16,
 * 100000 arguments. */
void imap_parse_limits_default(struct imap_parse_limits *l);

enum imap_arg_type {
	IMAP_ARG_ATOM = 1,    /* includes NIL and numbers: check with helpers */
	IMAP_ARG_QUOTED,
	IMAP_ARG_LITERAL,
	IMAP_ARG_LIST,
};

struct imap_arg {
	enum imap_arg_type type;
	const char *s;        /* atom/quoted/literal bytes, NUL-terminated
	                       * (a literal may also hold NULs: use len) */
	size_t len;
	struct imap_arg *list; /* IMAP_ARG_LIST: its n elements */
	size_t n;
	int literal8;          /* ~{n}: a literal8 (RFC 3516) */
};

struct imap_command {
	const char *tag;
	const char *name;     /* upper-cased */
	struct imap_arg *args;
	size_t nargs;
	const char *raw;      /* raw-line mode: the line without CRLF */
	size_t raw_len;
};

enum imap_parse_rc {
	IMAP_PARSE_DONE = 0,      /* *cmd_r holds a command */
	IMAP_PARSE_MORE = -2,     /* all input taken, need more */
	IMAP_PARSE_CONTINUE = -3, /* send "+ ..." now, then feed on */
	IMAP_PARSE_ERROR = -1,    /* BAD: *error_r, tag in *tag_r if known */
	IMAP_PARSE_FATAL = -4,    /* cannot resync (a non-synchronizing literal
	                           * over the limit): answer BAD and close */
};

int imap_parser_create(const struct imap_parse_limits *l, imap_parser **p_r);
void imap_parser_destroy(imap_parser *p);

/*
 * Feeds up to len bytes; *used_r receives how many were taken (the rest
 * belongs to the next call).  Returns:
 *   IMAP_PARSE_DONE      a command is in *cmd_r;
 *   IMAP_PARSE_MORE      every byte was taken, the command is incomplete;
 *   IMAP_PARSE_CONTINUE  the line announced a synchronizing literal that
 *                        fits the limits: send a continuation request and
 *                        call again with the rest;
 *   IMAP_PARSE_ERROR     the command is bad; *error_r says why (static or
 *                        valid until the next call), *tag_r the tag or NULL.
 *                        The bytes up to the end of the offending line are
 *                        consumed (for a refused synchronizing literal, the
 *                        client sends no literal: RFC 3501 7.5), so parsing
 *                        resumes with the next command;
 *   IMAP_PARSE_FATAL     as ERROR, but the connection cannot continue.
 * Cost: linear in the bytes fed, plus the tokenizing of a complete command.
 */
int imap_parser_feed(imap_parser *p, const uint8_t *buf, size_t len,
    size_t *used_r, struct imap_command **cmd_r, const char **tag_r,
    const char **error_r);

/* The next line (up to CRLF) comes back as cmd->raw with no tokenizing:
 * AUTHENTICATE responses and IDLE's DONE.  One line only. */
void imap_parser_raw_line(imap_parser *p);

/* ---- helpers on the argument tree ------------------------------------- */

/* A string argument (atom, quoted or literal). */
int imap_arg_is_string(const struct imap_arg *a);
/* An astring: atom, quoted or literal (same as is_string). */
#define imap_arg_is_astring imap_arg_is_string
/* The atom NIL (case-insensitive). */
int imap_arg_is_nil(const struct imap_arg *a);
/* An atom equal to word, case-insensitive. */
int imap_arg_atom_is(const struct imap_arg *a, const char *word);
/* A number (up to 63 bits) from an atom; 0 or -1. */
int imap_arg_number(const struct imap_arg *a, uint64_t *n_r);

/* ---- sequence sets ---------------------------------------------------- */

/* "*" stands for the largest number in use: IMAP_SEQ_STAR until resolved. */
#define IMAP_SEQ_STAR UINT32_MAX
#define IMAP_SEQSET_MAX 10000   /* ranges in one set */

struct imap_seq_range {
	uint32_t lo, hi;        /* lo <= hi after imap_seqset_resolve */
};

struct imap_seqset {
	struct imap_seq_range *r;
	size_t n;
	int saved;              /* "$" (RFC 5182): the saved result */
};

/* Parses "1,3:5,7:*" (malloc'd ranges; imap_seqset_finish).  0 or -1. */
int imap_seqset_parse(const char *s, struct imap_seqset *set);
void imap_seqset_finish(struct imap_seqset *set);
/* Replaces * by max and orders each range's ends. */
void imap_seqset_resolve(struct imap_seqset *set, uint32_t max);
int imap_seqset_contains(const struct imap_seqset *set, uint32_t v);

/* ---- FETCH attributes ------------------------------------------------- */

enum imap_fetch_item {
	IMAP_FI_UID = 1, IMAP_FI_FLAGS, IMAP_FI_INTERNALDATE, IMAP_FI_ENVELOPE,
	IMAP_FI_BODYSTRUCTURE, IMAP_FI_BODY /* the non-extensible form */,
	IMAP_FI_RFC822_SIZE, IMAP_FI_RFC822, IMAP_FI_RFC822_HEADER,
	IMAP_FI_RFC822_TEXT, IMAP_FI_MODSEQ, IMAP_FI_SECTION /* BODY[...] */,
	IMAP_FI_BINARY, IMAP_FI_BINARY_SIZE,
};

enum imap_section_text {
	IMAP_ST_ALL = 0,        /* BODY[] or BODY[1.2] */
	IMAP_ST_HEADER, IMAP_ST_HEADER_FIELDS, IMAP_ST_HEADER_FIELDS_NOT,
	IMAP_ST_TEXT, IMAP_ST_MIME,
};

#define IMAP_SECTION_DEPTH 32   /* part numbers in one section */
#define IMAP_SECTION_FIELDS 64  /* names in HEADER.FIELDS */

struct imap_fetch_att {
	enum imap_fetch_item item;
	int peek;               /* BODY.PEEK / BINARY.PEEK */
	uint32_t part[IMAP_SECTION_DEPTH];
	unsigned nparts;
	enum imap_section_text text;
	char **fields;          /* HEADER.FIELDS names */
	size_t nfields;
	int partial;            /* <start.count> given */
	uint64_t start, count;
	char *label;            /* the section as the reply names it, e.g.
	                         * "BODY[HEADER.FIELDS (FROM TO)]<0>" */
};

struct imap_fetch_atts {
	struct imap_fetch_att *a;
	size_t n;
	int has_body;           /* some item needs the message bytes */
	int sets_seen;          /* BODY[...] without PEEK, RFC822, RFC822.TEXT */
};

/*
 * Reads the FETCH attribute argument: one item or macro (ALL, FAST, FULL)
 * or a parenthesised list.  0 or -1 with *error_r.  imap_fetch_atts_finish
 * frees.
 */
int imap_fetch_atts_parse(const struct imap_arg *arg,
    struct imap_fetch_atts *f, const char **error_r);
void imap_fetch_atts_finish(struct imap_fetch_atts *f);

#endif
