/*
 * The Sent registry: an APPEND of a just-submitted Message-ID is
 * recognised once, for the same account only, within the window; other
 * bytes around the same Message-ID (a Bcc header) still match.
 */
#include <string.h>
#include <time.h>

#include "bridge/smtp_sent.h"
#include "tests/unit.h"

static const char msg[] = "From: a@x\r\nTo: b@x\r\nMessage-ID: <m1@x>\r\n"
    "Subject: s\r\n\r\nbody\r\n";
static const char other[] = "From: a@x\r\nMessage-ID: <m2@x>\r\n\r\nb\r\n";
static const char bcc[] = "Bcc: c@x\r\nFrom: a@x\r\nTo: b@x\r\n"
    "Message-ID: <m1@x>\r\nSubject: s\r\n\r\nbody\r\n";

static void
t_once(void)
{
	const bridge_account *a = (const bridge_account *)0x1000;
	const bridge_account *b = (const bridge_account *)0x2000;
	uint64_t id = 0, now = (uint64_t)time(NULL);

	smtp_sent_note(a, "m1@x", 42);
	CHECK(smtp_sent_take(b, (const uint8_t *)msg, strlen(msg), now,
	    &id) == 0);
	CHECK(smtp_sent_take(a, (const uint8_t *)other, strlen(other), now,
	    &id) == 0);
	CHECK(smtp_sent_take(a, (const uint8_t *)bcc, strlen(bcc), now,
	    &id) == 1);
	CHECK(id == 42);
	CHECK(smtp_sent_take(a, (const uint8_t *)msg, strlen(msg), now,
	    &id) == 0);
}

static void
t_window(void)
{
	const bridge_account *a = (const bridge_account *)0x1000;
	uint64_t id = 0, now = (uint64_t)time(NULL);

	smtp_sent_note(a, "m1@x", 7);
	CHECK(smtp_sent_take(a, (const uint8_t *)msg, strlen(msg),
	    now + SMTP_SENT_WINDOW + 5, &id) == 0);
	smtp_sent_forget(a);
	CHECK(smtp_sent_take(a, (const uint8_t *)msg, strlen(msg), now,
	    &id) == 0);
}

int
main(void)
{
	RUN(t_once);
	RUN(t_window);
	return unit_done();
}
