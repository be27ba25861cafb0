/*
 * One IMAP connection, shared between the server (imap_server.c; sockets,
 * TLS and timers in bridge_tls.c) and the command handlers (imap_cmd.c, imap_search.c).
 * Everything here runs on the libuv loop thread, except a command that
 * changes the account (imap_cmd.c's worker commands): it runs on a libuv
 * worker thread with the account lock, and while it does (job != NULL)
 * the worker alone touches out, view and the parser's command; the loop
 * reads no input for the connection and frees nothing of it.
 */
#ifndef SP_BRIDGE_IMAP_CONN_H
#define SP_BRIDGE_IMAP_CONN_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "bridge/bridge_account.h"
#include "bridge/imap_out.h"
#include "bridge/imap_parse.h"

enum imap_state {
	IMAP_S_NOTAUTH = 1,
	IMAP_S_AUTH = 2,
	IMAP_S_SELECTED = 4,
	IMAP_S_LOGOUT = 8,
};

/* A message as this connection last told its client about it. */
struct imap_view_msg {
	uint32_t uid;
	uint64_t id;
	uint32_t flags;
	uint64_t modseq;
	int recent;
};

struct imap_server;
struct btls_conn;

struct imap_conn {
	struct imap_server *srv;
	struct imap_conn *next, *prev;
	/* Socket, TLS and timer (bridge_tls.h); NULL once bridge_tls has
	 * freed them (the connection closed while a worker ran). */
	struct btls_conn *bc;
	uv_loop_t *loop;
	imap_parser *parser;
	struct imap_out out;     /* response text not yet written */
	enum imap_state state;
	bridge_account *acct;
	/* SELECTED */
	uint32_t folder;         /* UIDVALIDITY too */
	int readonly;
	struct imap_view_msg *view;
	size_t nview, view_cap;
	uint32_t view_uidnext;
	uint64_t view_modseq;
	uint32_t *search_saved;  /* SEARCHRES $ (not offered yet) */
	/* ENABLEd */
	int condstore, qresync, utf8, rev2;
	int idling;
	char idle_tag[128];
	int auth_pending;        /* AUTHENTICATE PLAIN waits for its line */
	char auth_tag[128];
	int starttls_now;        /* switch to TLS after this reply */
	int allow_expunge;       /* untagged EXPUNGE may be sent now */
	uint64_t id;             /* for log lines */
	/* Waiting: a command of this connection runs on a worker (job), or
	 * waits for another connection's worker on the same account
	 * (parked: the command to run again).  Input that arrives
	 * meanwhile waits in pending, in order. */
	void *job;
	struct imap_command *parked;
	struct imap_conn *park_next;
	int free_pending;        /* closed while job ran: free after it */
	uint8_t *pending;
	size_t npending, pending_cap;
};

/* Server side, used by handlers. */
/* 1 once the connection is closing or closed: write nothing more. */
int imap_conn_closing(const struct imap_conn *c);
int imap_server_tls_available(const struct imap_conn *c);
bridge_account *imap_server_find_account(struct imap_server *s,
    const char *user);
void imap_conn_flush(struct imap_conn *c);
/* The command that made imap_cmd_run() return IMAP_CMD_WAIT finished (or
 * a parked one may run now): run what waits, read input again. */
void imap_conn_resume(struct imap_conn *c);
/* Frees a connection whose handles closed while its job ran. */
void imap_conn_free(struct imap_conn *c);
void imap_conn_log(const struct imap_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Handlers (imap_cmd.c). */
void imap_cmd_greeting(struct imap_conn *c);
/* Runs one parsed command (or a raw continuation line).  0 when it is
 * done; IMAP_CMD_WAIT when it went to a worker or waits for one (cmd
 * must stay valid: feed the parser nothing until imap_conn_resume()). */
#define IMAP_CMD_WAIT 1
int imap_cmd_run(struct imap_conn *c, struct imap_command *cmd);
/* The model changed: IDLE clients get their untagged updates now. */
void imap_cmd_changed(struct imap_conn *c);
void imap_cmd_conn_finish(struct imap_conn *c);

/* The parsed message id of the selected account (from a small shared
 * cache; valid until the next call).  NULL with err.  Lock held. */
struct imap_msg *imap_cmd_body(struct imap_conn *c, uint64_t id, char *err,
    size_t errlen);

/* The account's search index (imap_index.h), opened on first use; NULL
 * when it cannot be opened (SEARCH then scans).  Lock held, loop. */
struct imap_index *imap_cmd_index(struct imap_conn *c);

/* SEARCH (imap_search.c): matches msgs (the view order) against the
 * criteria in args; results[i] = 1 for a match.  0, or -1 with *error_r
 * (BAD).  Lock held. */
int imap_search_run(struct imap_conn *c, const struct imap_arg *args,
    size_t nargs, uint8_t *results, const char **error_r);

#endif
