/*
 * Deadline-bound socket I/O for the filter clients: see filter_net.h.
 */
#include "server/gateway/filter/filter_net.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define NET_HOST_MAX 255

int64_t
filter_net_now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until the deadline; *revents_r gets what came. */
static int
net_wait(int fd, short events, int64_t deadline, short *revents_r)
{
	struct pollfd p = { .fd = fd, .events = events };
	int64_t left;
	int n;

	for (;;) {
		left = deadline - filter_net_now_ms();
		if (left <= 0)
			return ETIMEDOUT;
		n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
		if (n > 0) {
			*revents_r = p.revents;
			return 0;
		}
		if (n < 0 && errno != EINTR)
			return errno;
	}
}

/* One non-blocking connect, finished (or not) by the deadline. */
static int
net_connect_one(int family, const struct sockaddr *sa, socklen_t salen,
    int64_t deadline, int *fd_r)
{
	int fd, err = 0;
	socklen_t elen = sizeof(err);
	short rev;

	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	if (connect(fd, sa, salen) == 0)
		goto out_ok;
	if (errno != EINPROGRESS && errno != EAGAIN) {
		err = errno;
		goto out_close;
	}
	if ((err = net_wait(fd, POLLOUT, deadline, &rev)) != 0)
		goto out_close;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
		err = errno;
	if (err != 0)
		goto out_close;
out_ok:
	*fd_r = fd;
	return 0;
out_close:
	(void)close(fd);
	return err;
}

static int
net_connect_unix(const char *path, int64_t deadline, int *fd_r)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t len = strlen(path);

	if (len >= sizeof(sun.sun_path))
		return ENAMETOOLONG;
	memcpy(sun.sun_path, path, len + 1);
	return net_connect_one(AF_UNIX, (const struct sockaddr *)&sun,
	    (socklen_t)sizeof(sun), deadline, fd_r);
}

/* Splits "HOST:PORT" or "[V6]:PORT" into host and port. */
static int
net_split(const char *addr, char *host, size_t hostcap, const char **port_r)
{
	const char *colon, *h = addr;
	size_t hlen;

	if (addr[0] == '[') {
		const char *close = strchr(addr, ']');

		if (close == NULL || close[1] != ':')
			return EINVAL;
		h = addr + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		if ((colon = strrchr(addr, ':')) == NULL)
			return EINVAL;
		hlen = (size_t)(colon - addr);
	}
	if (hlen == 0 || hlen >= hostcap || colon[1] == '\0')
		return EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port_r = colon + 1;
	return 0;
}

int
filter_net_connect(const char *addr, int64_t deadline, int *fd_r)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICSERV };
	struct addrinfo *res = NULL, *ai;
	char host[NET_HOST_MAX + 1];
	const char *port;
	int err;

	if (addr == NULL || addr[0] == '\0')
		return EINVAL;
	if (addr[0] == '/')
		return net_connect_unix(addr, deadline, fd_r);
	if ((err = net_split(addr, host, sizeof(host), &port)) != 0)
		return err;
	if ((err = getaddrinfo(host, port, &hints, &res)) != 0)
		return err == EAI_SYSTEM ? errno : EHOSTUNREACH;
	err = EHOSTUNREACH;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		err = net_connect_one(ai->ai_family, ai->ai_addr,
		    ai->ai_addrlen, deadline, fd_r);
		if (err == 0 || err == ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	return err;
}

/* Drops n sent bytes from the front of the iovec array. */
static void
net_advance(struct iovec **iov, int *iovcnt, size_t n)
{
	while (*iovcnt > 0 && n >= (*iov)->iov_len) {
		n -= (*iov)->iov_len;
		(*iov)++;
		(*iovcnt)--;
	}
	if (*iovcnt > 0) {
		(*iov)->iov_base = (char *)(*iov)->iov_base + n;
		(*iov)->iov_len -= n;
	}
}

int
filter_net_sendv(int fd, struct iovec *iov, int iovcnt, int64_t deadline,
    int *peer_spoke_r)
{
	struct msghdr mh;
	ssize_t n;
	short rev;
	int err;

	*peer_spoke_r = 0;
	net_advance(&iov, &iovcnt, 0); /* skips empty entries */
	while (iovcnt > 0) {
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = iov;
		mh.msg_iovlen = (size_t)iovcnt;
		n = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n >= 0) {
			net_advance(&iov, &iovcnt, (size_t)n);
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return errno;
		if ((err = net_wait(fd, POLLOUT | POLLIN, deadline, &rev)) != 0)
			return err;
		if (rev & (POLLIN | POLLHUP | POLLERR)) {
			*peer_spoke_r = 1;
			return 0;
		}
	}
	return 0;
}

int
filter_net_recv(int fd, void *buf, size_t cap, int64_t deadline, size_t *n_r)
{
	ssize_t n;
	short rev;
	int err;

	for (;;) {
		n = recv(fd, buf, cap, MSG_DONTWAIT);
		if (n >= 0) {
			*n_r = (size_t)n;
			return 0;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return errno;
		if ((err = net_wait(fd, POLLIN, deadline, &rev)) != 0)
			return err;
	}
}

const char *
filter_net_strerror(int err)
{
	switch (err) {
	case 0:
		return "ok";
	case ETIMEDOUT:
		return "timed out";
	case ECONNREFUSED:
		return "connection refused";
	case ENOENT:
		return "no such socket";
	case ECONNRESET:
	case EPIPE:
		return "connection reset";
	case EHOSTUNREACH:
	case ENETUNREACH:
		return "unreachable";
	case EINVAL:
		return "bad address";
	case ENAMETOOLONG:
		return "socket path too long";
	case EACCES:
	case EPERM:
		return "permission denied";
	case ENOMEM:
		return "out of memory";
	default:
		return "socket error";
	}
}
