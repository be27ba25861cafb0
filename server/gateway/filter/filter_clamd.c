/*
 * clamd client: see filter_clamd.h.
 *
 * Protocol (clamd(8)): "zINSTREAM\0", then chunks each prefixed by its
 * length as 4 bytes big-endian, then a zero length.  clamd answers one line
 * ended by NUL: "stream: OK", "stream: NAME FOUND", or "TEXT ERROR".  When
 * the stream passes StreamMaxLength clamd answers "INSTREAM size limit
 * exceeded. ERROR" at once and closes, possibly while we are still sending:
 * so the sender watches for an early answer, and a reset during the send is
 * not yet a failure if the answer arrived before it.
 */
#include "server/gateway/filter/filter_clamd.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "server/gateway/filter/filter_net.h"

static const char CLAMD_CMD[] = "zINSTREAM"; /* sent with its NUL */

/* Copies src[0..n) as printable ASCII ('?' for anything else), cut. */
static void
clamd_copy_text(char *dst, size_t cap, const uint8_t *src, size_t n)
{
	size_t i;

	if (n >= cap)
		n = cap - 1;
	for (i = 0; i < n; i++)
		dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? (char)src[i] : '?';
	dst[n] = '\0';
}

static int
ends_with(const uint8_t *s, size_t n, const char *suf)
{
	size_t k = strlen(suf);

	return n >= k && memcmp(s + n - k, suf, k) == 0;
}

/* Classifies one complete reply line (terminator removed). */
static int
clamd_classify(const uint8_t *s, size_t n, struct filter_clamd_reply *r)
{
	static const char stream[] = "stream: ";
	static const char limit[] = "INSTREAM size limit exceeded. ERROR";
	const size_t sl = sizeof(stream) - 1;
	size_t i;

	if (n == sl + 2 && memcmp(s, stream, sl) == 0 &&
	    memcmp(s + sl, "OK", 2) == 0) {
		r->kind = FILTER_CLAMD_CLEAN;
		return 0;
	}
	if (n > sl + 6 && memcmp(s, stream, sl) == 0 &&
	    ends_with(s, n, " FOUND")) {
		/* A signature name is one printable word. */
		for (i = sl; i < n - 6; i++)
			if (s[i] <= 0x20 || s[i] >= 0x7f)
				return SP_EFORMAT;
		r->kind = FILTER_CLAMD_FOUND;
		clamd_copy_text(r->text, sizeof(r->text), s + sl, n - 6 - sl);
		return 0;
	}
	if (n == sizeof(limit) - 1 && memcmp(s, limit, n) == 0) {
		r->kind = FILTER_CLAMD_LIMIT;
		clamd_copy_text(r->text, sizeof(r->text), s, n);
		return 0;
	}
	if (n > 6 && ends_with(s, n, " ERROR")) {
		r->kind = FILTER_CLAMD_ERROR;
		clamd_copy_text(r->text, sizeof(r->text), s, n - 6);
		return 0;
	}
	return SP_EFORMAT;
}

int
filter_clamd_parse(const uint8_t *buf, size_t len, int eof,
    struct filter_clamd_reply *r)
{
	size_t n;

	memset(r, 0, sizeof(*r));
	for (n = 0; n < len && n <= FILTER_CLAMD_REPLY_MAX; n++)
		if (buf[n] == '\0' || buf[n] == '\n')
			return clamd_classify(buf, n, r);
	if (n > FILTER_CLAMD_REPLY_MAX)
		return SP_ELIMIT;
	return eof ? SP_ETRUNC : EAGAIN;
}

/* Streams msg as INSTREAM chunks; *answered_r = 1 if clamd spoke early. */
static int
clamd_send(int fd, const uint8_t *msg, size_t len, int64_t deadline,
    int *answered_r)
{
	uint8_t hdr[4];
	struct iovec iov[2];
	size_t off = 0, n;
	int err;

	iov[0].iov_base = (void *)(uintptr_t)CLAMD_CMD;
	iov[0].iov_len = sizeof(CLAMD_CMD);
	if ((err = filter_net_sendv(fd, iov, 1, deadline, answered_r)) != 0 ||
	    *answered_r)
		return err;
	do {
		n = len - off > FILTER_CLAMD_CHUNK ? FILTER_CLAMD_CHUNK :
		    len - off;
		hdr[0] = (uint8_t)(n >> 24);
		hdr[1] = (uint8_t)(n >> 16);
		hdr[2] = (uint8_t)(n >> 8);
		hdr[3] = (uint8_t)n;
		iov[0].iov_base = hdr;
		iov[0].iov_len = sizeof(hdr);
		/* The message is only read: the cast drops const for iovec. */
		iov[1].iov_base = (void *)(uintptr_t)(msg + off);
		iov[1].iov_len = n;
		err = filter_net_sendv(fd, iov, n ? 2 : 1, deadline,
		    answered_r);
		if (err != 0 || *answered_r)
			return err;
		off += n;
	} while (n != 0);
	return 0;
}

/* Reads until the reply is complete, the peer closes or time runs out. */
static int
clamd_read(int fd, int64_t deadline, struct filter_clamd_reply *r)
{
	uint8_t buf[FILTER_CLAMD_REPLY_MAX + 1];
	size_t len = 0, n;
	int err;

	for (;;) {
		err = filter_net_recv(fd, buf + len, sizeof(buf) - len,
		    deadline, &n);
		if (err != 0)
			return err;
		len += n;
		err = filter_clamd_parse(buf, len, n == 0, r);
		if (err != EAGAIN)
			return err;
	}
}

int
filter_clamd_scan(const char *addr, const uint8_t *msg, size_t len,
    int64_t deadline, struct filter_clamd_reply *r)
{
	int fd, err, answered = 0, rerr;

	memset(r, 0, sizeof(*r));
	if ((err = filter_net_connect(addr, deadline, &fd)) != 0)
		return err;
	err = clamd_send(fd, msg, len, deadline, &answered);
	/* A reset while sending may follow clamd's early answer: read it,
	 * and if bytes came (rerr <= 0: parsed, well or not), they tell
	 * more than the reset. */
	if (err == 0 || err == EPIPE || err == ECONNRESET) {
		rerr = clamd_read(fd, deadline, r);
		if (err == 0 || rerr <= 0)
			err = rerr;
	}
	(void)close(fd);
	return err;
}
