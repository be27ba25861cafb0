/*
 * bench/sync: the sync server under load, figures side by side with
 * baselines measured in the same run.
 *
 *   1. Appended-and-pushed records per second on one account: W writer
 *      connections append 200-byte records (one record per APPEND, PIPELINE
 *      APPENDs in flight each) while S connections of the same account are
 *      subscribed; a record counts once every subscriber has received it.
 *      Server with --no-sync yes and with fsync (its default), with the
 *      store's commit count from GET /metrics.
 *   2. The same with ACCOUNTS accounts, one writer and one subscriber each.
 *   3. Push latency, p50/p99/max: append->push (the writer's send time,
 *      carried in the record, to the subscriber's receipt) and ack->push
 *      (the writer's receipt of APPENDED, i.e. of the commit, to the
 *      subscriber's receipt), paced and saturated.
 *   4. Server memory per idle, authenticated wss connection with
 *      IDLE_CONNS connections open (VmRSS, RssAnon, Private_Dirty).
 *
 * Baselines: for 1 and 2, the store alone (sp_store_log_append in this
 * process, the same records in the same one-record batches from as many
 * threads as there are writer connections, fsync off and on); network
 * figures are printed as a ratio of it.  For 4, the same connections
 * greeted (HELLO) but not logged in, and authenticated over plain ws://,
 * which together say what the login and what TLS cost.
 *
 * The client side is this one thread: one libwebsockets context holds
 * every connection of a run (event-driven; one sp_client per connection
 * would be a context each).  It shares the machine's cores with the
 * server, so each run also prints both processes' CPU use.  Everything
 * goes to 127.0.0.1; every wait has a deadline; the server started here
 * is killed on every exit path.
 *
 *   bench-sync [RECORDS]     (records per throughput run; default 20000)
 *
 * SP_SERVER_BIN and SP_ADMIN_BIN come from meson (benchmark 'sync').
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>
#include <sodium.h>

#include "server/store/store.h"
#include "tests/sync/harness.h"

#define REC_SIZE 200            /* bytes per record */
#define PIPELINE 32             /* APPENDs in flight per writer */
#define RECORDS_DEFAULT 20000   /* records per throughput run */
#define ACCOUNTS 100            /* accounts of run 2 */
#define W_ONE 4                 /* writers of the one-account runs */
#define S_ONE 4                 /* subscribers of the one-account runs */
#define PACED_RATE 500.0        /* records/s of the paced runs */
#define PACED_SECS 4
#define IDLE_CONNS 10000        /* connections of the memory runs */
#define OPEN_IN_FLIGHT 500      /* handshakes under way at once */
#define SETTLE_MS 3000          /* idle time before reading memory */
#define LAT_GOAL_MS 50.0
#define MEM_GOAL_KB 20.0

#define LOAD_OPEN_MS 60000      /* deadlines */
#define LOAD_RUN_MS 240000
#define IDLE_OPEN_MS 120000
#define HTTP_MS 10000

/* Request ids: fixed per connection, since each run has fresh ones. */
#define ID_HELLO 1
#define ID_RESUME 2
#define ID_SUBSCRIBE 3
#define ID_APPEND0 16

/* Record layout: send time, writer, index, run magic, then filler. */
#define REC_OFF_TIME 0
#define REC_OFF_WRITER 8
#define REC_OFF_INDEX 12
#define REC_OFF_MAGIC 16

static struct srv S;            /* the server; srv_cleanup() on every exit */
static char raw_dir[64];        /* the store-alone baseline's directory */
static volatile sig_atomic_t interrupted;

static void __attribute__((format(printf, 1, 2), noreturn))
die(const char *fmt, ...)
{
	va_list ap;
	char cmd[128];

	fflush(stdout);
	fprintf(stderr, "bench-sync: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	srv_cleanup(&S);
	if (raw_dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", raw_dir);
		(void)system(cmd);
	}
	exit(1);
}

/* SIGINT, SIGTERM (meson's timeout), SIGHUP: the server goes at once; the
 * loops notice the flag and leave through die(), which removes the rest. */
static void
on_signal(int sig)
{
	interrupted = sig;
	if (S.pid > 0)
		kill(S.pid, SIGKILL);
}

static void
catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

static void
check_interrupted(const char *what)
{
	if (interrupted)
		die("%s: interrupted by signal %d", what, (int)interrupted);
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t
now_ms(void)
{
	return now_ns() / 1000000u;
}

static double
cpu_self_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* User + system CPU seconds of process pid (all threads), or with loop_only
 * set, of its main thread only (the server's event loop). */
static double
cpu_proc_s(pid_t pid, int loop_only)
{
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, st = 0;
	FILE *f;
	size_t n;

	if (loop_only)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid,
		    (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	/* Fields after the command name: state is field 3, utime 14. */
	if ((p = strrchr(buf, ')')) == NULL || sscanf(p + 2,
	    "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
	    &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* ---- records ------------------------------------------------------------ */

static void
rec_stamp(uint8_t *rec, uint64_t t, uint32_t writer, uint32_t k,
    uint32_t magic)
{
	memcpy(rec + REC_OFF_TIME, &t, 8);
	memcpy(rec + REC_OFF_WRITER, &writer, 4);
	memcpy(rec + REC_OFF_INDEX, &k, 4);
	memcpy(rec + REC_OFF_MAGIC, &magic, 4);
}

/* ---- the store alone (baseline of 1 and 2) ----------------------------- */

struct raw_arg {
	sp_store *st;
	char addr[64];
	uint32_t n;
	pthread_barrier_t *bar;
	int rc;
};

static void *
raw_thread(void *p)
{
	struct raw_arg *a = p;
	uint8_t rec[REC_SIZE];
	struct sp_store_rec r = { rec, sizeof(rec) };
	uint64_t first, last;
	uint32_t k;

	randombytes_buf(rec, sizeof(rec));
	pthread_barrier_wait(a->bar);
	for (k = 0; k < a->n && a->rc == 0; k++) {
		rec_stamp(rec, now_ns(), 0, k, 0);
		a->rc = sp_store_log_append(a->st, a->addr, SP_STORE_ANY, &r, 1,
		    &first, &last);
	}
	return NULL;
}

struct raw_result {
	double recs_per_s;
	uint64_t records, commits;
	int threads;
};

static void
raw_accounts(sp_store *st, int nacct)
{
	struct sp_store_account a;
	uint8_t vault[100], pub[64];
	int i, rc;

	randombytes_buf(vault, sizeof(vault));
	randombytes_buf(pub, sizeof(pub));
	for (i = 0; i < nacct; i++) {
		memset(&a, 0, sizeof(a));
		snprintf(a.address, sizeof(a.address), "raw%d@example.org", i);
		a.created = (uint64_t)time(NULL);
		if ((rc = sp_store_account_create(st, &a, vault, sizeof(vault),
		    pub, sizeof(pub))) != 0)
			die("store alone: account: %s", sp_store_strerror(rc));
	}
}

/*
 * nacct accounts, tpa threads appending to each, per_thread one-record
 * appends each; the same durability as the server's store (no_sync as the
 * server's --no-sync).
 */
static void
raw_run(int nacct, int tpa, uint32_t per_thread, int no_sync,
    struct raw_result *res)
{
	struct sp_store_opts o = { .no_sync = no_sync };
	struct sp_store_stat st0, st1;
	pthread_barrier_t bar;
	struct raw_arg *a;
	pthread_t *th;
	sp_store *st;
	char path[128], cmd[128];
	int i, n = nacct * tpa, rc;
	uint64_t t0, t1;

	snprintf(raw_dir, sizeof(raw_dir), "/tmp/sp-bench-store-XXXXXX");
	if (mkdtemp(raw_dir) == NULL)
		die("mkdtemp: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/store", raw_dir);
	if ((rc = sp_store_open(path, &o, &st)) != 0)
		die("store alone: open: %s", sp_store_strerror(rc));
	raw_accounts(st, nacct);
	a = calloc((size_t)n, sizeof(*a));
	th = calloc((size_t)n, sizeof(*th));
	if (a == NULL || th == NULL)
		die("out of memory");
	pthread_barrier_init(&bar, NULL, (unsigned)n + 1);
	for (i = 0; i < n; i++) {
		a[i].st = st;
		snprintf(a[i].addr, sizeof(a[i].addr), "raw%d@example.org",
		    i / tpa);
		a[i].n = per_thread;
		a[i].bar = &bar;
		if (pthread_create(&th[i], NULL, raw_thread, &a[i]) != 0)
			die("pthread_create failed");
	}
	(void)sp_store_stat(st, &st0);
	pthread_barrier_wait(&bar);
	t0 = now_ns();
	for (i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	t1 = now_ns();
	(void)sp_store_stat(st, &st1);
	check_interrupted("store alone");
	for (i = 0; i < n; i++)
		if (a[i].rc != 0)
			die("store alone: append: %s", sp_store_strerror(a[i].rc));
	res->records = (uint64_t)n * per_thread;
	res->recs_per_s = (double)res->records / ((double)(t1 - t0) / 1e9);
	res->commits = st1.commits - st0.commits;
	res->threads = n;
	pthread_barrier_destroy(&bar);
	free(a);
	free(th);
	sp_store_close(st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", raw_dir);
	(void)system(cmd);
	raw_dir[0] = 0;
}

/* ---- many connections on one libwebsockets context ---------------------- */

struct out {
	struct out *next;
	uint8_t *buf;           /* LWS_PRE + len */
	size_t len;
};

enum role { ROLE_IDLE, ROLE_WRITER, ROLE_SUB };
enum cstate { CS_NEW, CS_CONNECTING, CS_HELLO, CS_RESUME, CS_SUBSCRIBE,
	CS_READY, CS_GONE };

struct load;
struct fleet;

struct fconn {
	struct fleet *fl;
	struct lws *wsi;
	enum role role;
	enum cstate state;
	size_t no;              /* index in the fleet, for messages */
	int widx, sidx, acct;   /* writer / subscriber number, account */
	const uint8_t *token;
	struct out *oh, **ot;
	uint8_t *rx;
	size_t rx_len, rx_cap;
	uint64_t last;          /* RESUME_OK.last */
	uint32_t sent, acked;   /* writer */
	uint64_t next_seq;      /* subscriber */
	uint32_t got;
	int close_code;         /* the server's WebSocket close status */
};

struct fleet {
	struct lws_context *ctx;
	int tls;
	int greet_only;         /* stop after WELCOME (memory baseline) */
	struct fconn *c;
	size_t n, next_open, opening, ready, max_opening;
	int closing;            /* closes from now on are ours */
	lws_sorted_usec_list_t tick;
	lws_usec_t tick_us;
	struct load *ld;        /* the load run, if any */
	char fail[320];
};

/* One throughput / latency run. */
struct load {
	int nacct, wpa, spa;    /* accounts; writers, subscribers per account */
	int nw, ns;
	uint32_t per_writer;    /* records each writer appends */
	uint32_t expected;      /* records each subscriber receives */
	double rate;            /* records/s over all writers; 0: saturate */
	uint32_t magic;
	uint8_t filler[REC_SIZE];
	uint64_t t0, t_done;
	uint64_t *ack_ns;       /* [writer * per_writer + k] */
	uint64_t *recv_ns;      /* [sub * expected + i] */
	int64_t *lat_app;       /* [sub * expected + i] */
	int writers_done, subs_done;
};

static void __attribute__((format(printf, 2, 3)))
fleet_fail(struct fleet *fl, const char *fmt, ...)
{
	va_list ap;

	if (fl->fail[0])
		return;
	va_start(ap, fmt);
	vsnprintf(fl->fail, sizeof(fl->fail), fmt, ap);
	va_end(ap);
}

static void
fconn_send(struct fconn *c, struct sp_frame *f)
{
	struct out *o = calloc(1, sizeof(*o));

	if (o == NULL || sp_frame_encode(f, LWS_PRE, &o->buf, &o->len) != 0) {
		free(o);
		fleet_fail(c->fl, "connection %zu: cannot encode %s", c->no,
		    sp_msg_name(f->type));
		return;
	}
	*c->ot = o;
	c->ot = &o->next;
	if (c->wsi)
		lws_callback_on_writable(c->wsi);
}

static void
fconn_ready(struct fconn *c)
{
	c->state = CS_READY;
	c->fl->opening--;
	c->fl->ready++;
}

static void
fconn_lost(struct fconn *c, const char *why)
{
	struct fleet *fl = c->fl;

	if (c->state == CS_GONE)
		return;
	if (!fl->closing)
		fleet_fail(fl, "connection %zu %s: %s (close status %d)%s",
		    c->no, c->state == CS_READY ? "lost" : "failed to open",
		    why, c->close_code, fl->greet_only && c->close_code == 4002 ?
		    ": the server's login timeout (30 s) passed before the "
		    "measurement; opening is too slow here" : "");
	if (c->state != CS_READY && c->state != CS_NEW)
		fl->opening--;
	else if (c->state == CS_READY)
		fl->ready--;
	c->state = CS_GONE;
	c->wsi = NULL;
}

static int
writer_may_send(const struct fconn *c, uint64_t t)
{
	const struct load *ld = c->fl->ld;
	uint64_t g;

	if (ld == NULL || ld->t0 == 0 || c->state != CS_READY ||
	    c->sent >= ld->per_writer || c->sent - c->acked >= PIPELINE)
		return 0;
	if (ld->rate <= 0)
		return 1;
	/* Writers take turns: record g of the whole run is due at g/rate. */
	g = (uint64_t)c->sent * (uint64_t)ld->nw + (uint64_t)c->widx;
	return t >= ld->t0 + (uint64_t)((double)g * 1e9 / ld->rate);
}

static int
writer_write(struct fconn *c)
{
	struct load *ld = c->fl->ld;
	uint8_t rec[REC_SIZE], *buf;
	struct sp_frame f;
	size_t len;
	uint64_t t;
	int n;

	memcpy(rec, ld->filler, sizeof(rec));
	sp_frame_init(&f, SP_MSG_APPEND, ID_APPEND0 + (uint64_t)c->sent);
	(void)sp_frame_add_item(&f, SP_F_RECORDS, rec, sizeof(rec), 0);
	t = now_ns();
	rec_stamp(rec, t, (uint32_t)c->widx, c->sent, ld->magic);
	if (sp_frame_encode(&f, LWS_PRE, &buf, &len) != 0) {
		fleet_fail(c->fl, "cannot encode APPEND");
		return -1;
	}
	n = lws_write(c->wsi, buf + LWS_PRE, len, LWS_WRITE_BINARY);
	free(buf);
	if (n < (int)len) {
		fleet_fail(c->fl, "connection %zu: write failed", c->no);
		return -1;
	}
	c->sent++;
	if (writer_may_send(c, now_ns()))
		lws_callback_on_writable(c->wsi);
	return 0;
}

static int
fconn_writeable(struct fconn *c)
{
	struct out *o = c->oh;
	int n;

	if (o == NULL)
		return writer_may_send(c, now_ns()) ? writer_write(c) : 0;
	if ((c->oh = o->next) == NULL)
		c->ot = &c->oh;
	n = lws_write(c->wsi, o->buf + LWS_PRE, o->len, LWS_WRITE_BINARY);
	free(o->buf);
	if (n < (int)o->len) {
		free(o);
		fleet_fail(c->fl, "connection %zu: write failed", c->no);
		return -1;
	}
	free(o);
	if (c->oh != NULL || writer_may_send(c, now_ns()))
		lws_callback_on_writable(c->wsi);
	return 0;
}

static void
writer_acked(struct fconn *c, const struct sp_frame *f)
{
	struct load *ld = c->fl->ld;

	if (ld == NULL || c->acked >= c->sent ||
	    f->id != ID_APPEND0 + (uint64_t)c->acked) {
		fleet_fail(c->fl, "writer %d: APPENDED id %" PRIu64
		    " out of order (acked %u of %u sent)", c->widx, f->id,
		    c->acked, c->sent);
		return;
	}
	if (f->f[SP_F_LAST].u != f->f[SP_F_SEQ].u) {
		fleet_fail(c->fl, "writer %d: APPENDED seq %" PRIu64 " last %"
		    PRIu64 " for one record", c->widx, f->f[SP_F_SEQ].u,
		    f->f[SP_F_LAST].u);
		return;
	}
	ld->ack_ns[(size_t)c->widx * ld->per_writer + c->acked] = now_ns();
	if (++c->acked == ld->per_writer)
		ld->writers_done++;
	if (writer_may_send(c, now_ns()))
		lws_callback_on_writable(c->wsi);
}

/* One record of a PUSH: checks it is ours, new, and notes its times. */
static void
sub_record(struct fconn *c, const struct sp_frame_item *it, uint64_t t)
{
	struct load *ld = c->fl->ld;
	uint32_t w, k, magic;
	uint64_t sent;
	size_t slot;

	if (it->len != REC_SIZE) {
		fleet_fail(c->fl, "subscriber %d: record of %zu bytes", c->sidx,
		    it->len);
		return;
	}
	memcpy(&sent, it->ptr + REC_OFF_TIME, 8);
	memcpy(&w, it->ptr + REC_OFF_WRITER, 4);
	memcpy(&k, it->ptr + REC_OFF_INDEX, 4);
	memcpy(&magic, it->ptr + REC_OFF_MAGIC, 4);
	if (magic != ld->magic || w >= (uint32_t)ld->nw ||
	    (int)w / ld->wpa != c->acct || k >= ld->per_writer) {
		fleet_fail(c->fl, "subscriber %d: a record not of this run "
		    "(writer %u, index %u)", c->sidx, w, k);
		return;
	}
	slot = (size_t)c->sidx * ld->expected +
	    (size_t)(w % (uint32_t)ld->wpa) * ld->per_writer + k;
	if (ld->recv_ns[slot] != 0) {
		fleet_fail(c->fl, "subscriber %d: record %u of writer %u "
		    "twice", c->sidx, k, w);
		return;
	}
	ld->recv_ns[slot] = t;
	ld->lat_app[slot] = (int64_t)(t - sent);
	if (++c->got == ld->expected && ++ld->subs_done == ld->ns)
		ld->t_done = t;
}

static void
sub_push(struct fconn *c, const struct sp_frame *f)
{
	const struct sp_frame_item *it;
	uint64_t t = now_ns();
	size_t n, i;

	it = sp_frame_array(f, SP_F_RECORDS, &n);
	if (c->fl->ld == NULL || n == 0 || f->f[SP_F_SEQ].u != c->next_seq) {
		fleet_fail(c->fl, "subscriber %d: PUSH seq %" PRIu64 " with %zu "
		    "records, expected seq %" PRIu64 " (gap or duplicate)",
		    c->sidx, f->f[SP_F_SEQ].u, n, c->next_seq);
		return;
	}
	for (i = 0; i < n && !c->fl->fail[0]; i++)
		sub_record(c, &it[i], t);
	c->next_seq += n;
}

static int
expect(struct fconn *c, const struct sp_frame *f, uint32_t type, uint64_t id)
{
	if (f->type == type && f->id == id)
		return 1;
	fleet_fail(c->fl, "connection %zu: got %s id %" PRIu64 ", expected %s "
	    "id %" PRIu64, c->no, sp_msg_name(f->type), f->id,
	    sp_msg_name(type), id);
	return 0;
}

static void
fconn_greeted(struct fconn *c, const struct sp_frame *f)
{
	struct sp_frame r;

	if (!expect(c, f, SP_MSG_WELCOME, ID_HELLO))
		return;
	if (f->f[SP_F_VERSION].u != SP_PROTO_VERSION) {
		fleet_fail(c->fl, "WELCOME with version %" PRIu64,
		    f->f[SP_F_VERSION].u);
		return;
	}
	if (c->fl->greet_only) {
		fconn_ready(c);
		return;
	}
	sp_frame_init(&r, SP_MSG_RESUME, ID_RESUME);
	sp_frame_set_bytes(&r, SP_F_TOKEN, c->token, 32);
	fconn_send(c, &r);
	c->state = CS_RESUME;
}

static void
fconn_resumed(struct fconn *c, const struct sp_frame *f)
{
	struct sp_frame r;

	if (!expect(c, f, SP_MSG_RESUME_OK, ID_RESUME))
		return;
	c->last = f->f[SP_F_LAST].u;
	if (c->role != ROLE_SUB) {
		fconn_ready(c);
		return;
	}
	sp_frame_init(&r, SP_MSG_SUBSCRIBE, ID_SUBSCRIBE);
	sp_frame_set_uint(&r, SP_F_SEQ, c->last + 1);
	fconn_send(c, &r);
	c->state = CS_SUBSCRIBE;
}

static void
fconn_frame(struct fconn *c, const struct sp_frame *f)
{
	if (f->type == SP_MSG_ERROR) {
		fleet_fail(c->fl, "connection %zu: ERROR %s to id %" PRIu64
		    ": %.*s", c->no, sp_proto_strerror((int)f->f[SP_F_CODE].u),
		    f->id, (int)f->f[SP_F_MESSAGE].len,
		    (const char *)f->f[SP_F_MESSAGE].ptr);
		return;
	}
	switch (c->state) {
	case CS_HELLO:
		fconn_greeted(c, f);
		break;
	case CS_RESUME:
		fconn_resumed(c, f);
		break;
	case CS_SUBSCRIBE:
		if (!expect(c, f, SP_MSG_SUBSCRIBED, ID_SUBSCRIBE))
			return;
		c->next_seq = c->last + 1;
		fconn_ready(c);
		break;
	case CS_READY:
		if (c->role == ROLE_WRITER && f->type == SP_MSG_APPENDED)
			writer_acked(c, f);
		else if (c->role == ROLE_SUB && f->type == SP_MSG_PUSH)
			sub_push(c, f);
		else
			fleet_fail(c->fl, "connection %zu: unexpected %s id %"
			    PRIu64, c->no, sp_msg_name(f->type), f->id);
		break;
	default:
		fleet_fail(c->fl, "connection %zu: %s before the handshake",
		    c->no, sp_msg_name(f->type));
		break;
	}
}

static int
fconn_receive(struct fconn *c, struct lws *wsi, const void *in, size_t len)
{
	struct sp_frame f;
	const char *why = NULL;
	uint8_t *n;
	size_t cap;
	int rc;

	if (c->rx_len + len > c->rx_cap) {
		cap = c->rx_cap ? c->rx_cap : 1024;
		while (cap < c->rx_len + len)
			cap *= 2;
		if (cap > SP_FRAME_MAX || (n = realloc(c->rx, cap)) == NULL) {
			fleet_fail(c->fl, "connection %zu: frame too large",
			    c->no);
			return -1;
		}
		c->rx = n;
		c->rx_cap = cap;
	}
	memcpy(c->rx + c->rx_len, in, len);
	c->rx_len += len;
	if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
		return 0;
	rc = sp_frame_decode(c->rx, c->rx_len, &f, &why);
	c->rx_len = 0;
	if (rc != 0) {
		fleet_fail(c->fl, "connection %zu: bad frame from the server: "
		    "%s", c->no, why);
		return -1;
	}
	fconn_frame(c, &f);
	return 0;
}

static int
ws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct fconn *c = wsi ? lws_get_opaque_user_data(wsi) : NULL;
	struct sp_frame h;

	if (c == NULL)
		return 0;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		c->state = CS_HELLO;
		sp_frame_init(&h, SP_MSG_HELLO, ID_HELLO);
		sp_frame_set_uint(&h, SP_F_VERSION, SP_PROTO_VERSION);
		sp_frame_set_text(&h, SP_F_DEVICE, "bench-sync");
		fconn_send(c, &h);
		return 0;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		fconn_lost(c, in ? (const char *)in : "connection error");
		return 0;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		return fconn_receive(c, wsi, in, len);
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		return c->state == CS_GONE ? -1 : fconn_writeable(c);
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if (len >= 2)
			c->close_code = ((const uint8_t *)in)[0] << 8 |
			    ((const uint8_t *)in)[1];
		return 0;
	case LWS_CALLBACK_CLIENT_CLOSED:
		fconn_lost(c, "closed by the server");
		return 0;
	default:
		return 0;
	}
}

/* GET over the same context type, for /metrics. */
struct http_get {
	char *body;
	size_t len, cap;
	int status, done;
	char why[128];
};

static int
http_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct http_get *h = wsi ? lws_get_opaque_user_data(wsi) : NULL;
	char buf[LWS_PRE + 4096], *p = buf + LWS_PRE, *nb;
	int n = (int)sizeof(buf) - LWS_PRE;

	if (h == NULL)
		return 0;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		snprintf(h->why, sizeof(h->why), "%s", in ? (const char *)in :
		    "connection error");
		h->done = 1;
		return 0;
	case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
		h->status = (int)lws_http_client_http_response(wsi);
		return 0;
	case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
		if (h->len + len + 1 > h->cap) {
			if ((nb = realloc(h->body, h->len + len + 65536)) ==
			    NULL)
				return -1;
			h->body = nb;
			h->cap = h->len + len + 65536;
		}
		memcpy(h->body + h->len, in, len);
		h->len += len;
		h->body[h->len] = 0;
		return 0;
	case LWS_CALLBACK_RECEIVE_CLIENT_HTTP:
		return lws_http_client_read(wsi, &p, &n) < 0 ? -1 : 0;
	case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
	case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
		h->done = 1;
		return 0;
	default:
		return 0;
	}
}

static const struct lws_protocols protocols[] = {
	{ "sealpost.v1", ws_cb, 0, 0, 0, NULL, 0 },
	{ "bench-http", http_cb, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static void
tick_cb(lws_sorted_usec_list_t *sul)
{
	struct fleet *fl = lws_container_of(sul, struct fleet, tick);
	uint64_t t = now_ns();
	size_t i;

	/* Paced writers wake here; saturated ones on their own acks. */
	if (fl->ld && fl->ld->t0 && fl->ld->rate > 0)
		for (i = 0; i < fl->n; i++)
			if (fl->c[i].role == ROLE_WRITER &&
			    writer_may_send(&fl->c[i], t))
				lws_callback_on_writable(fl->c[i].wsi);
	lws_sul_schedule(fl->ctx, 0, &fl->tick, tick_cb, fl->tick_us);
}

static struct lws_context *
context_create(int tls, void *user)
{
	struct lws_context_creation_info info;

	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.gid = -1;
	info.uid = -1;
	info.user = user;
	if (tls) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.client_ssl_ca_filepath = S.cert;
		info.ssl_client_options_set = SSL_OP_NO_SSLv2 |
		    SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1;
	}
	return lws_create_context(&info);
}

static struct fleet *
fleet_create(int tls, size_t n, lws_usec_t tick_us)
{
	struct fleet *fl = calloc(1, sizeof(*fl));
	size_t i;

	if (fl == NULL || (fl->c = calloc(n, sizeof(*fl->c))) == NULL)
		die("out of memory");
	fl->tls = tls;
	fl->n = n;
	fl->max_opening = OPEN_IN_FLIGHT;
	fl->tick_us = tick_us;
	for (i = 0; i < n; i++) {
		fl->c[i].fl = fl;
		fl->c[i].no = i;
		fl->c[i].ot = &fl->c[i].oh;
		fl->c[i].widx = fl->c[i].sidx = -1;
	}
	if ((fl->ctx = context_create(tls, fl)) == NULL)
		die("cannot create the client context");
	lws_sul_schedule(fl->ctx, 0, &fl->tick, tick_cb, tick_us);
	return fl;
}

static void
fleet_destroy(struct fleet *fl)
{
	struct out *o;
	size_t i;

	fl->closing = 1;
	lws_sul_cancel(&fl->tick);
	lws_context_destroy(fl->ctx);
	for (i = 0; i < fl->n; i++) {
		while ((o = fl->c[i].oh) != NULL) {
			fl->c[i].oh = o->next;
			free(o->buf);
			free(o);
		}
		free(fl->c[i].rx);
	}
	free(fl->c);
	free(fl);
}

static void
fconn_connect(struct fleet *fl, struct fconn *c)
{
	struct lws_client_connect_info ci;

	memset(&ci, 0, sizeof(ci));
	ci.context = fl->ctx;
	ci.address = "127.0.0.1";
	ci.port = S.port;
	ci.path = "/sync";
	ci.host = "127.0.0.1";
	ci.origin = "127.0.0.1";
	ci.protocol = "sealpost.v1";
	ci.ssl_connection = fl->tls ? LCCSCF_USE_SSL : 0;
	ci.opaque_user_data = c;
	ci.pwsi = &c->wsi;
	c->state = CS_CONNECTING;
	fl->opening++;
	if (lws_client_connect_via_info(&ci) == NULL)
		fconn_lost(c, "cannot start connecting");
}

/* Services until every connection is ready, opening max_opening at once. */
static void
fleet_open(struct fleet *fl, uint64_t deadline_ms, const char *what)
{
	while (fl->ready < fl->n) {
		while (fl->opening < fl->max_opening && fl->next_open < fl->n &&
		    !fl->fail[0])
			fconn_connect(fl, &fl->c[fl->next_open++]);
		check_interrupted(what);
		if (fl->fail[0])
			die("%s: %s", what, fl->fail);
		if (now_ms() > deadline_ms)
			die("%s: only %zu of %zu connections ready after the "
			    "deadline", what, fl->ready, fl->n);
		lws_service(fl->ctx, 0);
	}
}

/* Services for ms milliseconds; any failure or close aborts. */
static void
fleet_idle(struct fleet *fl, uint64_t ms, const char *what)
{
	uint64_t end = now_ms() + ms;

	while (now_ms() < end) {
		lws_service(fl->ctx, 0);
		check_interrupted(what);
		if (fl->fail[0])
			die("%s: %s", what, fl->fail);
	}
}

/* ---- /metrics ----------------------------------------------------------- */

struct metrics {
	double connections, commits, appended, pushed, frames_out;
	double lat_bucket[12], lat_count;
};

static const char *const lat_le[12] = { "1", "2", "5", "10", "20", "50",
	"100", "200", "500", "1000", "5000", "+Inf" };

static double
metric(const char *text, const char *name)
{
	size_t n = strlen(name);
	const char *p;

	for (p = text; (p = strstr(p, name)) != NULL; p += n)
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	die("/metrics has no %s", name);
	return 0;
}

static void
metrics_get(struct metrics *m)
{
	struct http_get h = { 0 };
	struct lws_client_connect_info ci;
	struct lws_context *ctx;
	uint64_t end = now_ms() + HTTP_MS;
	char name[96];
	int i;

	if ((ctx = context_create(S.tls, NULL)) == NULL)
		die("cannot create the HTTP client context");
	memset(&ci, 0, sizeof(ci));
	ci.context = ctx;
	ci.address = "127.0.0.1";
	ci.port = S.port;
	ci.path = "/metrics";
	ci.host = "127.0.0.1";
	ci.origin = "127.0.0.1";
	ci.method = "GET";
	ci.alpn = "http/1.1";
	ci.protocol = "bench-http";
	ci.local_protocol_name = "bench-http";
	ci.ssl_connection = S.tls ? LCCSCF_USE_SSL : 0;
	ci.opaque_user_data = &h;
	if (lws_client_connect_via_info(&ci) == NULL && !h.done)
		snprintf(h.why, sizeof(h.why), "cannot start connecting");
	while (!h.done && !h.why[0] && now_ms() < end && !interrupted)
		lws_service(ctx, 0);
	lws_context_destroy(ctx);
	if (h.status != 200 || h.body == NULL)
		die("GET /metrics: status %d %s", h.status, h.why);
	m->connections = metric(h.body, "sealpost_connections");
	m->commits = metric(h.body, "sealpost_store_commits_total");
	m->appended = metric(h.body, "sealpost_records_appended_total");
	m->pushed = metric(h.body, "sealpost_records_pushed_total");
	m->frames_out = metric(h.body, "sealpost_frames_out_total");
	for (i = 0; i < 12; i++) {
		snprintf(name, sizeof(name),
		    "sealpost_push_latency_ms_bucket{le=\"%s\"}", lat_le[i]);
		m->lat_bucket[i] = metric(h.body, name);
	}
	m->lat_count = metric(h.body, "sealpost_push_latency_ms_count");
	free(h.body);
}

/* The server's own commit->write p99, as a histogram bound ("<= X"). */
static const char *
server_p99(const struct metrics *a, const struct metrics *b)
{
	double total = b->lat_count - a->lat_count;
	int i;

	if (total <= 0)
		return "-";
	for (i = 0; i < 12; i++)
		if (b->lat_bucket[i] - a->lat_bucket[i] >= 0.99 * total)
			return lat_le[i];
	return "+Inf";
}

/* ---- load runs (1, 2, 3) ------------------------------------------------ */

struct lat {
	double p50, p99, max;   /* ms */
};

struct load_result {
	const char *name;
	double recs_per_s, secs;
	uint64_t records;
	double commits, srv_cpu, loop_cpu, cli_cpu;
	struct lat app, ack;
	size_t ack_before;      /* pushes that arrived before the ack */
	size_t nlat;
	const char *srv_p99;
};

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentiles of v (sorted here), in ms. */
static struct lat
lat_of(int64_t *v, size_t n)
{
	struct lat l = { 0, 0, 0 };
	size_t i99;

	if (n == 0)
		return l;
	qsort(v, n, sizeof(*v), cmp_i64);
	i99 = (size_t)((double)n * 0.99 + 0.999999);
	l.p50 = (double)v[(n + 1) / 2 - 1] / 1e6;
	l.p99 = (double)v[(i99 ? i99 : 1) - 1] / 1e6;
	l.max = (double)v[n - 1] / 1e6;
	return l;
}

static void
load_latencies(struct load *ld, struct load_result *res)
{
	size_t n = (size_t)ld->ns * ld->expected, s, i;
	int64_t *ack = malloc(n * sizeof(*ack));
	uint64_t a;
	int acct, w;

	if (ack == NULL)
		die("out of memory");
	for (s = 0; s < (size_t)ld->ns; s++) {
		acct = (int)s / ld->spa;
		for (i = 0; i < ld->expected; i++) {
			w = acct * ld->wpa + (int)(i / ld->per_writer);
			a = ld->ack_ns[(size_t)w * ld->per_writer +
			    i % ld->per_writer];
			ack[s * ld->expected + i] =
			    (int64_t)(ld->recv_ns[s * ld->expected + i] - a);
			if (ack[s * ld->expected + i] < 0)
				res->ack_before++;
		}
	}
	res->nlat = n;
	res->app = lat_of(ld->lat_app, n);
	res->ack = lat_of(ack, n);
	free(ack);
}

static void
load_alloc(struct load *ld)
{
	size_t nrec = (size_t)ld->nw * ld->per_writer;
	size_t nrecv = (size_t)ld->ns * ld->expected;

	ld->ack_ns = calloc(nrec, sizeof(*ld->ack_ns));
	ld->recv_ns = calloc(nrecv, sizeof(*ld->recv_ns));
	ld->lat_app = calloc(nrecv, sizeof(*ld->lat_app));
	if (!ld->ack_ns || !ld->recv_ns || !ld->lat_app)
		die("out of memory");
	randombytes_buf(ld->filler, sizeof(ld->filler));
	ld->magic = randombytes_random();
}

static void
load_roles(struct fleet *fl, struct load *ld, const struct acct *accts)
{
	int i;

	for (i = 0; i < ld->nw; i++) {
		fl->c[i].role = ROLE_WRITER;
		fl->c[i].widx = i;
		fl->c[i].acct = i / ld->wpa;
		fl->c[i].token = accts[fl->c[i].acct].token;
	}
	for (i = 0; i < ld->ns; i++) {
		struct fconn *c = &fl->c[ld->nw + i];

		c->role = ROLE_SUB;
		c->sidx = i;
		c->acct = i / ld->spa;
		c->token = accts[c->acct].token;
	}
}

/*
 * nacct accounts with wpa writers and spa subscribers each; every writer
 * appends per_writer records, paced at rate records/s overall (0: as fast
 * as PIPELINE allows).  Connections are opened, logged in (RESUME) and
 * subscribed before the clock starts.
 */
static void
load_run(struct load_result *res, const char *name, const struct acct *accts,
    int nacct, int wpa, int spa, uint32_t per_writer, double rate)
{
	struct load ld = { .nacct = nacct, .wpa = wpa, .spa = spa,
	    .nw = nacct * wpa, .ns = nacct * spa, .per_writer = per_writer,
	    .expected = (uint32_t)wpa * per_writer, .rate = rate };
	struct metrics m0, m1;
	struct fleet *fl;
	double c0, s0, l0;
	uint64_t end;
	int i;

	memset(res, 0, sizeof(*res));
	res->name = name;
	load_alloc(&ld);
	fl = fleet_create(S.tls, (size_t)(ld.nw + ld.ns), rate > 0 ? 500 :
	    50000);
	fl->ld = &ld;
	load_roles(fl, &ld, accts);
	fleet_open(fl, now_ms() + LOAD_OPEN_MS, name);
	/* After the RESUMEs, whose session writes are commits too. */
	metrics_get(&m0);
	c0 = cpu_self_s();
	s0 = cpu_proc_s(S.pid, 0);
	l0 = cpu_proc_s(S.pid, 1);
	ld.t0 = now_ns();
	for (i = 0; i < ld.nw; i++)
		lws_callback_on_writable(fl->c[i].wsi);
	end = now_ms() + LOAD_RUN_MS;
	while (ld.subs_done < ld.ns || ld.writers_done < ld.nw) {
		lws_service(fl->ctx, 0);
		check_interrupted(name);
		if (fl->fail[0])
			die("%s: %s", name, fl->fail);
		if (now_ms() > end)
			die("%s: not done by the deadline: %d of %d writers "
			    "acknowledged, %d of %d subscribers complete", name,
			    ld.writers_done, ld.nw, ld.subs_done, ld.ns);
	}
	res->secs = (double)(ld.t_done - ld.t0) / 1e9;
	res->cli_cpu = cpu_self_s() - c0;
	res->srv_cpu = cpu_proc_s(S.pid, 0) - s0;
	res->loop_cpu = cpu_proc_s(S.pid, 1) - l0;
	fleet_destroy(fl);
	metrics_get(&m1);
	res->records = (uint64_t)ld.nw * per_writer;
	res->recs_per_s = (double)res->records / res->secs;
	res->commits = m1.commits - m0.commits;
	res->srv_p99 = server_p99(&m0, &m1);
	if (m1.appended - m0.appended != (double)res->records)
		die("%s: server counted %.0f records appended, we sent %" PRIu64,
		    name, m1.appended - m0.appended, res->records);
	load_latencies(&ld, res);
	fprintf(stderr, "# %s: %.0f records/s, %.0f commits\n", name,
	    res->recs_per_s, res->commits);
	free(ld.ack_ns);
	free(ld.recv_ns);
	free(ld.lat_app);
}

/* ---- memory per idle connection (4) ------------------------------------ */

struct mem {
	long rss, anon, pdirty; /* KB; pdirty -1 if smaps_rollup is missing */
};

static long
proc_kb(const char *path, const char *key)
{
	char line[256];
	size_t n = strlen(key);
	long v = -1;
	FILE *f;

	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, n) == 0) {
			v = strtol(line + n, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static void
mem_read(struct mem *m)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/status", (int)S.pid);
	m->rss = proc_kb(path, "VmRSS:");
	m->anon = proc_kb(path, "RssAnon:");
	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)S.pid);
	m->pdirty = proc_kb(path, "Private_Dirty:");
	if (m->rss < 0)
		die("cannot read %s", path);
}

struct mem_result {
	const char *name;
	size_t n;
	double rss, anon, pdirty;       /* KB per connection */
	double open_secs, open_srv_cpu, open_cli_cpu;
	long rss_before;
};

static void
server_restart(int tls, const char *extra)
{
	int st;

	check_interrupted("restart");
	st = srv_stop(&S, SIGTERM);

	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		die("the server did not stop cleanly on SIGTERM (status %d)",
		    st);
	S.tls = tls;
	snprintf(S.extra, sizeof(S.extra), "%s", extra);
	if (srv_restart(&S) != 0)
		die("cannot restart the server");
	check_interrupted("restart");
}

/*
 * A fresh server; n connections that HELLO and RESUME (or only HELLO),
 * opened OPEN_IN_FLIGHT at a time; then SETTLE_MS idle; the growth of the
 * server's memory divided by n.
 */
static void
mem_run(struct mem_result *res, const char *name, int tls, int greet_only,
    size_t n, const struct acct *accts, int nacct)
{
	struct metrics m;
	struct mem before, after;
	struct fleet *fl;
	double c0, s0;
	uint64_t t0;
	size_t i;

	server_restart(tls, "--open-registration yes --no-sync yes");
	metrics_get(&m);                /* the first connection's setup */
	mem_read(&before);
	fl = fleet_create(tls, n, 100000);
	fl->greet_only = greet_only;
	for (i = 0; i < n; i++) {
		fl->c[i].role = ROLE_IDLE;
		fl->c[i].token = accts[i % (size_t)nacct].token;
	}
	t0 = now_ns();
	c0 = cpu_self_s();
	s0 = cpu_proc_s(S.pid, 0);
	fleet_open(fl, now_ms() + IDLE_OPEN_MS, name);
	res->open_secs = (double)(now_ns() - t0) / 1e9;
	res->open_cli_cpu = cpu_self_s() - c0;
	res->open_srv_cpu = cpu_proc_s(S.pid, 0) - s0;
	/* Greeted connections are closed 30 s after they opened (4002). */
	fleet_idle(fl, greet_only ? SETTLE_MS / 3 : SETTLE_MS, name);
	metrics_get(&m);
	if (m.connections != (double)n)
		die("%s: the server counts %.0f connections, not %zu", name,
		    m.connections, n);
	mem_read(&after);
	fleet_idle(fl, 10, name);
	fleet_destroy(fl);
	res->name = name;
	res->n = n;
	res->rss_before = before.rss;
	res->rss = (double)(after.rss - before.rss) / (double)n;
	res->anon = (double)(after.anon - before.anon) / (double)n;
	res->pdirty = before.pdirty < 0 ? -1 :
	    (double)(after.pdirty - before.pdirty) / (double)n;
	fprintf(stderr, "# %s: %zu connections in %.1f s (CPU s: server %.1f, "
	    "client %.1f), %.1f KB each (VmRSS)\n", name, n, res->open_secs,
	    res->open_srv_cpu, res->open_cli_cpu, res->rss);
}

/* ---- setup -------------------------------------------------------------- */

/* Soft RLIMIT_NOFILE up to the hard limit; returns the new soft limit. */
static rlim_t
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		die("getrlimit: %s", strerror(errno));
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		die("setrlimit: %s", strerror(errno));
	return rl.rlim_cur;
}

static void
make_accounts(struct acct *a, int n)
{
	char addr[64];
	sp_client *c;
	int i, rc, code = 0;

	for (i = 0; i < n; i++) {
		check_interrupted("accounts");
		snprintf(addr, sizeof(addr), "bench%d@example.org", i);
		/* One connection each: a login ends the connection's
		 * GREETED state, and LOGOUT would end the session. */
		if ((c = srv_connect(&S, "bench-setup")) == NULL)
			die("cannot connect to the server");
		if ((rc = acct_register(c, &a[i], addr, NULL, &code)) !=
		    SP_MSG_OK)
			die("REGISTER %s: reply %d, %s", addr, rc,
			    sp_proto_strerror(code));
		if ((rc = acct_login(c, &a[i])) != 0)
			die("LOGIN %s: %d", addr, rc);
		sp_client_close(c);
	}
}

/* ---- report ------------------------------------------------------------- */

static void
print_tput_head(void)
{
	printf("%-36s %9s %6s %8s %10s %7s %7s %7s\n", "case", "records/s",
	    "ratio", "commits", "rec/commit", "server", "s.loop", "client");
}

static void
print_raw(const char *name, const struct raw_result *r)
{
	printf("%-36s %9.0f %6s %8" PRIu64 " %10.1f %7s %7s %7s\n", name,
	    r->recs_per_s, "1.00", r->commits, r->commits ?
	    (double)r->records / (double)r->commits : 0.0, "-", "-", "-");
}

static void
print_load(const struct load_result *l, const struct raw_result *base)
{
	printf("%-36s %9.0f %6.2f %8.0f %10.1f %6.0f%% %6.0f%% %6.0f%%\n",
	    l->name, l->recs_per_s, l->recs_per_s / base->recs_per_s,
	    l->commits, l->commits > 0 ? (double)l->records / l->commits : 0.0,
	    100 * l->srv_cpu / l->secs, 100 * l->loop_cpu / l->secs,
	    100 * l->cli_cpu / l->secs);
}

static void
print_lat(const struct load_result *l)
{
	printf("%-34s %7.2f %7.2f %8.2f  %7.2f %7.2f %8.2f  %6.1f%%  <= %s\n",
	    l->name, l->app.p50, l->app.p99, l->app.max, l->ack.p50,
	    l->ack.p99, l->ack.max, 100.0 * (double)l->ack_before /
	    (double)(l->nlat ? l->nlat : 1), l->srv_p99);
}

static void
print_mem(const struct mem_result *m, const struct mem_result *base)
{
	printf("%-38s %6zu %7.2f %7.2f %8.2f %8.1f %9.2f", m->name, m->n,
	    m->rss, m->anon, m->pdirty, m->open_secs,
	    1e3 * m->open_srv_cpu / (double)m->n);
	if (base)
		printf("  %+6.2f", m->rss - base->rss);
	printf("\n");
}

static const char *
met(int ok)
{
	return ok ? "met" : "NOT met";
}

int
main(int argc, char **argv)
{
	uint32_t nrec = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) :
	    RECORDS_DEFAULT;
	static struct acct accts[ACCOUNTS];
	struct raw_result raw1[2], raw100[2];
	struct load_result one[2], many[2], paced[2];
	struct mem_result mem_auth, mem_greet, mem_ws;
	size_t nidle = IDLE_CONNS;
	rlim_t nofile;
	int sync, i;

	if (nrec < ACCOUNTS || nrec > 10000000)
		die("usage: bench-sync [RECORDS]  (%d .. 10000000)", ACCOUNTS);
	nrec -= nrec % (ACCOUNTS * W_ONE);
	catch_signals();
	if (sodium_init() < 0)
		die("libsodium failed to start");
	if (!getenv("SP_SERVER_BIN") || !getenv("SP_ADMIN_BIN"))
		die("SP_SERVER_BIN and SP_ADMIN_BIN must be set "
		    "(meson test -C build --benchmark sync)");
	/* Before the server starts, so that it inherits the limit. */
	nofile = raise_nofile();
	if (nofile < nidle + 200) {
		nidle = nofile > 1200 ? (size_t)nofile - 200 : 1000;
		fprintf(stderr, "# RLIMIT_NOFILE hard limit %llu: %zu idle "
		    "connections instead of %d\n", (unsigned long long)nofile,
		    nidle, IDLE_CONNS);
	}
	lws_set_log_level(LLL_ERR, NULL);

	/* Baselines without the network, before any server runs. */
	raw_run(1, W_ONE, nrec / W_ONE, 1, &raw1[0]);
	raw_run(1, W_ONE, nrec / W_ONE, 0, &raw1[1]);
	raw_run(ACCOUNTS, 1, nrec / ACCOUNTS, 1, &raw100[0]);
	raw_run(ACCOUNTS, 1, nrec / ACCOUNTS, 0, &raw100[1]);
	fprintf(stderr, "# store alone: %.0f / %.0f records/s (1 account), "
	    "%.0f / %.0f (100), no fsync / fsync\n", raw1[0].recs_per_s,
	    raw1[1].recs_per_s, raw100[0].recs_per_s, raw100[1].recs_per_s);

	if (srv_start(&S, 1, "--open-registration yes --no-sync yes") != 0)
		die("cannot start the server");
	check_interrupted("start");
	make_accounts(accts, ACCOUNTS);
	for (sync = 0; sync < 2; sync++) {
		if (sync)
			server_restart(1, "--open-registration yes");
		load_run(&one[sync], sync ? "server, fsync" :
		    "server, --no-sync yes", accts, 1, W_ONE, S_ONE,
		    nrec / W_ONE, 0);
		load_run(&many[sync], sync ? "server, fsync" :
		    "server, --no-sync yes", accts, ACCOUNTS, 1, 1,
		    nrec / ACCOUNTS, 0);
		load_run(&paced[sync], sync ? "paced 500/s, 1 acct, fsync" :
		    "paced 500/s, 1 acct, no fsync", accts, 1, W_ONE, S_ONE,
		    (uint32_t)(PACED_RATE * PACED_SECS / W_ONE), PACED_RATE);
	}
	mem_run(&mem_auth, "wss, authenticated (RESUME), idle", 1, 0, nidle,
	    accts, ACCOUNTS);
	mem_run(&mem_greet, "wss, greeted only (HELLO)  [baseline]", 1, 1,
	    nidle, accts, ACCOUNTS);
	mem_run(&mem_ws, "ws (no TLS), authenticated, idle", 0, 0, nidle,
	    accts, ACCOUNTS);
	srv_cleanup(&S);
	for (i = 0; i < ACCOUNTS; i++)
		acct_free(&accts[i]);

	printf("bench/sync: sealpost-server on 127.0.0.1 over wss (TLS), %ld "
	    "CPUs, server worker threads 32 (default)\n",
	    sysconf(_SC_NPROCESSORS_ONLN));
	printf("%d-byte records, 1 record per APPEND, %d APPENDs in flight per "
	    "writer; client: 1 thread, 1 lws context\n", REC_SIZE, PIPELINE);
	printf("baseline: the store alone (sp_store_log_append, same records "
	    "and batches, one thread per writer, no network)\n");
	printf("CPU: share of one core over the run; rec/commit from "
	    "sealpost_store_commits_total\n\n");

	printf("1. one account: %d writers, %d subscribers, %" PRIu64
	    " records (counted when all %d subscribers have it)\n", W_ONE,
	    S_ONE, one[0].records, S_ONE);
	print_tput_head();
	print_raw("store alone, no fsync, 4 threads", &raw1[0]);
	print_load(&one[0], &raw1[0]);
	print_raw("store alone, fsync, 4 threads", &raw1[1]);
	print_load(&one[1], &raw1[1]);

	printf("\n2. %d accounts: 1 writer + 1 subscriber each, %" PRIu64
	    " records in all\n", ACCOUNTS, many[0].records);
	print_tput_head();
	print_raw("store alone, no fsync, 100 threads", &raw100[0]);
	print_load(&many[0], &raw100[0]);
	print_raw("store alone, fsync, 100 threads", &raw100[1]);
	print_load(&many[1], &raw100[1]);
	printf("   (the server makes its store calls on a pool of 32 threads, "
	    "its worker-threads default:\n    at most that many APPENDs in "
	    "flight can share one commit)\n");

	printf("\n3. push latency, ms: append->push = writer's send to "
	    "subscriber's receipt; ack->push = writer's\n   receipt of APPENDED "
	    "(the commit) to subscriber's receipt (negative: push came first);"
	    "\n   server = its own commit->write histogram, p99 bucket\n");
	printf("%-34s %25s  %25s  %7s  %6s\n", "", "append->push", "ack->push",
	    "push", "server");
	printf("%-34s %7s %7s %8s  %7s %7s %8s  %7s  %6s\n", "case", "p50",
	    "p99", "max", "p50", "p99", "max", "1st", "p99");
	print_lat(&paced[0]);
	print_lat(&paced[1]);
	one[0].name = "saturated, 1 acct, no fsync";
	one[1].name = "saturated, 1 acct, fsync";
	many[0].name = "saturated, 100 accts, no fsync";
	many[1].name = "saturated, 100 accts, fsync";
	print_lat(&one[0]);
	print_lat(&one[1]);
	print_lat(&many[0]);
	print_lat(&many[1]);
	printf("   goal: p99 < %.0f ms at the paced load (fsync), ack->push: "
	    "%s; append->push: %s\n", LAT_GOAL_MS,
	    met(paced[1].ack.p99 < LAT_GOAL_MS),
	    met(paced[1].app.p99 < LAT_GOAL_MS));
	printf("   saturated, 1 acct, fsync, ack->push: %s (append->push "
	    "includes up to %d queued APPENDs)\n",
	    met(one[1].ack.p99 < LAT_GOAL_MS), PIPELINE);

	printf("\n4. server memory per connection, KB: the server process's "
	    "growth from before opening to after,\n   then %d s idle (greeted: "
	    "%d s, the login timeout closes them at 30 s); %d handshakes at "
	    "once;\n   open: seconds to open all; srv ms/conn: server CPU per "
	    "connection opened\n", SETTLE_MS / 1000, SETTLE_MS / 3000,
	    OPEN_IN_FLIGHT);
	printf("%-38s %6s %7s %7s %8s %8s %9s  %6s\n", "case", "conns",
	    "VmRSS", "RssAnon", "PrivDirty", "open s", "srv ms/c",
	    "vs base");
	print_mem(&mem_greet, NULL);
	print_mem(&mem_auth, &mem_greet);
	print_mem(&mem_ws, &mem_greet);
	printf("   goal: < %.0f KB per idle authenticated wss connection "
	    "(VmRSS): %s\n", MEM_GOAL_KB, met(mem_auth.rss < MEM_GOAL_KB));
	printf("   TLS share: %.2f KB of %.2f (wss - ws); authenticated - "
	    "greeted: %.2f\n", mem_auth.rss - mem_ws.rss,
	    mem_auth.rss, mem_auth.rss - mem_greet.rss);
	printf("   (the server's RSS before: %ld KB; connections resume %d "
	    "accounts' sessions, ~%zu per account)\n", mem_auth.rss_before,
	    ACCOUNTS, nidle / ACCOUNTS);
	return 0;
}
