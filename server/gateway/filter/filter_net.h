/*
 * Deadline-bound socket I/O for the filter clients (internal).
 *
 * Every call takes an absolute deadline on CLOCK_MONOTONIC (milliseconds,
 * from filter_net_now_ms()) rather than a per-call timeout, so one filter's
 * whole exchange (connect, send, receive) is bounded by one budget however
 * the peer trickles its bytes.  Sockets are non-blocking and close-on-exec;
 * sends use MSG_NOSIGNAL so a peer that hangs up never raises SIGPIPE in the
 * gateway.  Returns 0 or a positive errno value (ETIMEDOUT when the
 * deadline passes).  Never logs.
 */
#ifndef SP_GATEWAY_FILTER_NET_H
#define SP_GATEWAY_FILTER_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

int64_t filter_net_now_ms(void);

/*
 * Connects to addr: a unix socket path (starting with '/'), "HOST:PORT" or
 * "[V6ADDR]:PORT".  HOST may be a name (resolved with getaddrinfo, which is
 * not bounded by the deadline; use addresses in production).  Each resolved
 * address is tried in turn until one connects or the deadline passes.  On
 * success *fd_r is the caller's to close.
 */
int filter_net_connect(const char *addr, int64_t deadline, int *fd_r);

/*
 * Sends every byte of iov[0..iovcnt) (the array is modified).  Stops early
 * and sets *peer_spoke_r = 1 when the peer has something to say (data or a
 * hang-up) before everything is sent: clamd answers a too-large stream
 * before reading it all, and the answer matters more than the rest.
 */
int filter_net_sendv(int fd, struct iovec *iov, int iovcnt, int64_t deadline,
    int *peer_spoke_r);

/* Reads at most cap bytes into buf once data is there; *n_r = 0 at EOF. */
int filter_net_recv(int fd, void *buf, size_t cap, int64_t deadline,
    size_t *n_r);

/* A short static description of an errno value from these calls. */
const char *filter_net_strerror(int err);

#endif
