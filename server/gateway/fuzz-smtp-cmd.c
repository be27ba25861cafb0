/*
 * libFuzzer target: SMTP command lines.  The input is a client's byte
 * stream, fed to a whole session in pieces whose sizes come from the
 * first byte; recipients at even lengths are accepted, messages are
 * "delivered".  Checks the invariants that matter on the wire: every
 * reply line is "ddd" + space or hyphen and ends in CRLF, the session
 * never keeps more input than its cap, and every command line the parser
 * accepts is at most the line limit.
 */
#include <stdlib.h>
#include <string.h>

#include "server/gateway/smtp_session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_replies(sp_smtp_session *s)
{
	size_t n, i = 0;
	const uint8_t *o = sp_smtp_session_output(s, &n);

	while (i < n) {
		const uint8_t *eol = memchr(o + i, '\n', n - i);
		size_t len;

		if (eol == NULL)
			abort();
		len = (size_t)(eol - (o + i)) + 1;
		if (len < 6 || o[i + len - 2] != '\r' ||
		    o[i] < '2' || o[i] > '5' || (o[i + 3] != ' ' &&
		    o[i + 3] != '-'))
			abort();
		i += len;
	}
	sp_smtp_session_output_clear(s);
}

static int
events(sp_smtp_session *s)
{
	for (;;) {
		enum sp_smtp_event ev = sp_smtp_session_run(s);
		struct sp_smtp_envelope e;

		check_replies(s);
		switch (ev) {
		case SP_SMTP_EV_MORE:
			return 0;
		case SP_SMTP_EV_CLOSE:
			return 1;
		case SP_SMTP_EV_RCPT:
			sp_smtp_session_rcpt_done(s,
			    strlen(sp_smtp_session_pending_rcpt(s)) % 2 == 0,
			    "550 5.1.1 No such user");
			break;
		case SP_SMTP_EV_MESSAGE:
			sp_smtp_session_envelope(s, &e);
			if (e.nrcpts == 0 || e.len > 4096)
				abort();
			sp_smtp_session_message_done(s, "250 2.0.0 OK");
			break;
		case SP_SMTP_EV_STARTTLS:
			if (sp_smtp_session_pending_input(s) != 0)
				abort();
			sp_smtp_session_tls_started(s);
			break;
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sp_smtp_session_opts o = {
		.hostname = "mx.fuzz",
		.max_size = 4096,
		.max_rcpts = 4,
		.tls_available = 1,
		.max_errors = 50,
	};
	struct sp_smtp_cmd cmd;
	sp_smtp_session *s;
	size_t step, pos = 0;

	if (size == 0)
		return 0;
	step = (size_t)data[0] % 17 + 1;
	data++;
	size--;
	/* The parser on its own, on the whole input as one line. */
	(void)sp_smtp_cmd_parse((const char *)data, size, &cmd);
	if (sp_smtp_session_create(&o, &s) != 0)
		return 0;
	sp_smtp_session_greet(s);
	check_replies(s);
	while (pos < size) {
		size_t n = step < size - pos ? step : size - pos;

		if (sp_smtp_session_feed(s, data + pos, n) != 0)
			abort();
		pos += n;
		if (sp_smtp_session_pending_input(s) > SP_SMTP_INPUT_MAX)
			abort();
		if (events(s))
			break;
	}
	sp_smtp_session_destroy(s);
	return 0;
}
