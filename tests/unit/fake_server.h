/* tests/unit/fake_server.h - the loopback HTTP server that test_http.c and
 * test_token.c run in a thread of the test process: a listening socket on
 * 127.0.0.1, an accept loop handing each connection to the test's serve(),
 * and the two helpers every serve() needs (send_all, header_value). What the
 * server answers stays in each test file. */
#ifndef PLAIT_TESTS_FAKE_SERVER_H
#define PLAIT_TESTS_FAKE_SERVER_H

#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/util.h"

struct fake_server {
	int lfd, port;
	pthread_t th;
	atomic_bool stop;
	void (*serve)(int fd); /* one connection: read the request, answer it */
};

static inline void send_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

/* Value of header name in a "\r\n"-separated block of header lines (the
 * request line left out), or NULL; caller frees. */
static inline char *header_value(const char *head, const char *name)
{
	size_t nlen = strlen(name);
	for (const char *l = head; l && *l;) {
		const char *eol = strstr(l, "\r\n");
		size_t len = eol ? (size_t)(eol - l) : strlen(l);
		if (len > nlen && l[nlen] == ':' && strncasecmp(l, name, nlen) == 0) {
			const char *v = l + nlen + 1;
			while (*v == ' ')
				v++;
			return xstrndup(v, len - (size_t)(v - l));
		}
		l = eol ? eol + 2 : NULL;
	}
	return NULL;
}

/* A socket bound to a free port of 127.0.0.1 (*port), not listening yet; -1 on failure. */
static inline int bound_socket(int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &alen) < 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

static inline void *fake_server_main(void *ud)
{
	struct fake_server *s = ud;
	while (!atomic_load(&s->stop)) {
		struct pollfd p = { .fd = s->lfd, .events = POLLIN };
		if (poll(&p, 1, 50) <= 0)
			continue;
		int fd = accept(s->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		struct timeval tv = { .tv_sec = 5 };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		s->serve(fd);
		shutdown(fd, SHUT_WR);
		close(fd);
	}
	return NULL;
}

/* Listen on a free loopback port (s->port) and serve each connection with
 * serve() in a thread until fake_server_stop(); -1 on failure. */
static inline int fake_server_start(struct fake_server *s, void (*serve)(int fd))
{
	*s = (struct fake_server){ .serve = serve };
	s->lfd = bound_socket(&s->port);
	if (s->lfd < 0 || listen(s->lfd, 16) < 0)
		return -1;
	return pthread_create(&s->th, NULL, fake_server_main, s) == 0 ? 0 : -1;
}

static inline void fake_server_stop(struct fake_server *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->th, NULL);
	close(s->lfd);
}

#endif
