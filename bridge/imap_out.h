/*
 * Response text for IMAP: a growing byte buffer with the IMAP string forms
 * (atom, quoted, literal, NIL) chosen for each value, so no handler writes
 * a quoted string that a CR, a quote or an 8-bit byte would break.
 *
 * Errors stick: after an allocation fails every append is a no-op and
 * imap_out_failed() says so; the caller checks once at the end.
 */
#ifndef SP_BRIDGE_IMAP_OUT_H
#define SP_BRIDGE_IMAP_OUT_H

#include <stddef.h>
#include <stdint.h>

struct imap_out {
	char *p;
	size_t len, cap;
	int failed;
};

void imap_out_init(struct imap_out *o);
/* Wipes (responses carry mail) and frees. */
void imap_out_finish(struct imap_out *o);
int imap_out_failed(const struct imap_out *o);
void imap_out_reset(struct imap_out *o);

void imap_out_add(struct imap_out *o, const void *s, size_t n);
void imap_out_str(struct imap_out *o, const char *s);
void imap_out_printf(struct imap_out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A string: quoted when it is short printable ASCII, else a literal. */
void imap_out_string(struct imap_out *o, const void *s, size_t n);
/* NIL for NULL, else imap_out_string. */
void imap_out_nstring(struct imap_out *o, const char *s);
/* Always a literal (bodies): "{n}\r\n" and the bytes. */
void imap_out_literal(struct imap_out *o, const void *s, size_t n);
/* A mailbox name: UTF-8 as given (quoted or literal). */
void imap_out_astring(struct imap_out *o, const char *s);

#endif
