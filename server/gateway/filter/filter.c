/*
 * sp_gw_filter_run: clamd, then rspamd, strongest action wins.  See
 * gw_filter.h for the mapping and the failure policy.
 *
 * The two filters run one after the other rather than in parallel: each is
 * local and fast next to the SMTP round trips, the caller is already a
 * worker thread, and doing it sequentially lets a virus skip spam scoring.
 */
#include "server/gateway/filter/gw_filter.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/error.h"
#include "server/gateway/filter/filter_clamd.h"
#include "server/gateway/filter/filter_net.h"
#include "server/gateway/filter/filter_rspamd.h"

#define FILTER_DEFAULT_TIMEOUT_MS 30000

/* What rspamd's action asks for, before the operator's choice applies. */
enum rspamd_class { RS_HAM, RS_SUSPECT, RS_SPAM, RS_RETRY };

static const struct {
	const char *name;
	enum rspamd_class cls;
} rspamd_actions[] = {
	{ "no action", RS_HAM },
	{ "add header", RS_SUSPECT },
	{ "rewrite subject", RS_SUSPECT },
	{ "reject", RS_SPAM },
	{ "greylist", RS_RETRY },
	{ "soft reject", RS_RETRY },
};

static const char *const action_names[] = {
	[SP_GW_FILTER_PASS] = "pass",
	[SP_GW_FILTER_TAG] = "tag",
	[SP_GW_FILTER_JUNK] = "junk",
	[SP_GW_FILTER_REJECT] = "reject",
	[SP_GW_FILTER_TEMPFAIL] = "tempfail",
};

/* Strength for "strongest wins"; see gw_filter.h for the order. */
static const int action_rank[] = {
	[SP_GW_FILTER_PASS] = 0,
	[SP_GW_FILTER_TAG] = 1,
	[SP_GW_FILTER_JUNK] = 2,
	[SP_GW_FILTER_TEMPFAIL] = 3,
	[SP_GW_FILTER_REJECT] = 4,
};

const char *
sp_gw_filter_action_name(enum sp_gw_filter_action a)
{
	if ((unsigned)a >= sizeof(action_names) / sizeof(action_names[0]))
		return "?";
	return action_names[a];
}

static int
action_valid(enum sp_gw_filter_action a)
{
	return (unsigned)a <= SP_GW_FILTER_TEMPFAIL;
}

static void
result_merge(struct sp_gw_filter_result *r, enum sp_gw_filter_action a)
{
	if (action_rank[a] > action_rank[r->action])
		r->action = a;
}

/* Appends "; "-separated text to the verdict, cut at its size. */
__attribute__((format(printf, 2, 3))) static void
verdict_add(struct sp_gw_filter_result *r, const char *fmt, ...)
{
	size_t off = strlen(r->verdict);
	va_list ap;

	if (off > 0 && off + 2 < sizeof(r->verdict)) {
		memcpy(r->verdict + off, "; ", 3);
		off += 2;
	}
	va_start(ap, fmt);
	(void)vsnprintf(r->verdict + off, sizeof(r->verdict) - off, fmt, ap);
	va_end(ap);
}

/* A failed filter: fail open or closed, with the reason in the verdict. */
static void
filter_failed(const struct sp_gw_filter_opts *o,
    struct sp_gw_filter_result *r, const char *name, const char *why)
{
	verdict_add(r, "%s: unavailable (%s)", name, why);
	result_merge(r, o->fail_open ? SP_GW_FILTER_PASS :
	    SP_GW_FILTER_TEMPFAIL);
}

static const char *
reply_error(int err)
{
	switch (err) {
	case SP_EFORMAT:
		return "malformed reply";
	case SP_ETRUNC:
		return "reply cut short";
	case SP_ELIMIT:
		return "reply too large";
	case SP_ENOMEM:
		return "out of memory";
	default:
		return filter_net_strerror(err);
	}
}

static void
run_clamd(const struct sp_gw_filter_opts *o, const uint8_t *msg, size_t len,
    int64_t deadline, struct sp_gw_filter_result *r)
{
	struct filter_clamd_reply cr;
	int err;

	if ((err = filter_clamd_scan(o->clamd, msg, len, deadline, &cr)) != 0) {
		filter_failed(o, r, "clamd", reply_error(err));
		return;
	}
	switch (cr.kind) {
	case FILTER_CLAMD_CLEAN:
		verdict_add(r, "clamd: clean");
		break;
	case FILTER_CLAMD_FOUND:
		verdict_add(r, "clamd: %s FOUND", cr.text);
		result_merge(r, o->clamd_virus_action);
		break;
	case FILTER_CLAMD_LIMIT:
		verdict_add(r, "clamd: not scanned (size limit)");
		result_merge(r, o->clamd_limit_action);
		break;
	case FILTER_CLAMD_ERROR:
		filter_failed(o, r, "clamd", cr.text);
		break;
	}
}

static void
run_rspamd(const struct sp_gw_filter_opts *o,
    const struct sp_gw_filter_envelope *e, const uint8_t *msg, size_t len,
    int64_t deadline, struct sp_gw_filter_result *r)
{
	struct filter_rspamd_reply rr;
	enum sp_gw_filter_action a = SP_GW_FILTER_PASS;
	size_t i;
	int err;

	err = filter_rspamd_check(o->rspamd, e, msg, len, deadline, &rr);
	if (err != 0) {
		filter_failed(o, r, "rspamd", reply_error(err));
		return;
	}
	if (rr.status != 200) {
		char why[160];

		(void)snprintf(why, sizeof(why), "HTTP %d%s%s", rr.status,
		    rr.error[0] ? ": " : "", rr.error);
		filter_failed(o, r, "rspamd", why);
		return;
	}
	for (i = 0; i < sizeof(rspamd_actions) / sizeof(rspamd_actions[0]);
	    i++)
		if (strcmp(rr.action, rspamd_actions[i].name) == 0)
			break;
	if (i == sizeof(rspamd_actions) / sizeof(rspamd_actions[0])) {
		filter_failed(o, r, "rspamd", "unknown action");
		return;
	}
	switch (rspamd_actions[i].cls) {
	case RS_HAM:
		break;
	case RS_SUSPECT:
		a = o->rspamd_suspect_action != SP_GW_FILTER_PASS ?
		    o->rspamd_suspect_action : o->rspamd_spam_action;
		break;
	case RS_SPAM:
		a = o->rspamd_spam_action;
		break;
	case RS_RETRY:
		a = SP_GW_FILTER_TEMPFAIL;
		break;
	}
	verdict_add(r, "rspamd: %s score=%.2f/%.2f", rr.action, rr.score,
	    rr.required_score);
	result_merge(r, a);
}

int
sp_gw_filter_run(const struct sp_gw_filter_opts *o,
    const struct sp_gw_filter_envelope *e, const uint8_t *msg, size_t len,
    struct sp_gw_filter_result *r)
{
	static const struct sp_gw_filter_envelope none = { 0 };
	int64_t timeout;
	char *head;
	size_t hlen;
	int err;

	if (r != NULL)
		memset(r, 0, sizeof(*r));
	if (o == NULL || r == NULL || (msg == NULL && len > 0) ||
	    !action_valid(o->rspamd_spam_action) ||
	    !action_valid(o->clamd_virus_action) ||
	    !action_valid(o->rspamd_suspect_action) ||
	    !action_valid(o->clamd_limit_action) || o->timeout_ms < 0)
		return SP_EINVAL;
	if (e == NULL)
		e = &none;
	/* Refuse a bad envelope before anything is sent anywhere. */
	if (o->rspamd != NULL) {
		if ((err = filter_rspamd_head(e, len, &head, &hlen)) != 0)
			return err;
		explicit_bzero(head, hlen);
		free(head);
	}
	timeout = o->timeout_ms ? o->timeout_ms : FILTER_DEFAULT_TIMEOUT_MS;
	if (msg == NULL)
		msg = (const uint8_t *)"";
	if (o->clamd != NULL)
		run_clamd(o, msg, len, filter_net_now_ms() + timeout, r);
	if (o->rspamd != NULL && r->action != SP_GW_FILTER_REJECT)
		run_rspamd(o, e, msg, len, filter_net_now_ms() + timeout, r);
	return 0;
}
