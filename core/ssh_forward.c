/* core/ssh_forward.c - a relay from a private unix socket to an ssh agent;
 * see ssh_forward.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ssh_forward.h"
#include "buf.h"
#include "fs.h"
#include "util.h"

#include "banned.h"

struct conn {
	int client, agent;
};

struct plait_ssh_forward {
	struct plait_tmpdir dir;
	char *path, *agent;
	int listen_fd;
	int stop[2];
	pthread_t thread;
	bool running;
};

static int connect_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* At most this many connections at once (two descriptors each): a RUN
 * cannot take plait's descriptors away. */
#define MAX_CONNS 64
/* A side that takes no bytes for this long loses its connection: one stuck
 * client cannot stall the others or the stop. */
#define WRITE_TIMEOUT_MS 10000

/* Write all of buf to the non-blocking to, waiting for it at most
 * WRITE_TIMEOUT_MS in all, and not past a stop request. */
static bool write_out(int to, const char *buf, size_t len, int stop)
{
	int waited = 0;
	while (len) {
		ssize_t w = write(to, buf, len);
		if (w > 0) {
			buf += w;
			len -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno != EAGAIN)
			return false;
		struct pollfd p[2] = { { .fd = to, .events = POLLOUT }, { .fd = stop, .events = POLLIN } };
		if (waited >= WRITE_TIMEOUT_MS || poll(p, 2, 100) < 0 || p[1].revents)
			return false;
		waited += 100;
	}
	return true;
}

/* Move what one side has to the other: false when the connection is over. */
static bool pass_on(int from, int to, int stop)
{
	char buf[65536];
	ssize_t n = read(from, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n <= 0)
		return false;
	return write_out(to, buf, (size_t)n, stop);
}

static void *relay(void *arg)
{
	struct plait_ssh_forward *f = arg;
	struct conn *c = NULL;
	size_t n = 0;
	bool pause = false; /* accept failed (no descriptors): not the listener for a moment */
	for (;;) {
		struct pollfd *p = xcalloc(2 + 2 * n, sizeof(*p));
		p[0] = (struct pollfd){ .fd = f->stop[0], .events = POLLIN };
		p[1] = (struct pollfd){ .fd = pause || n >= MAX_CONNS ? -1 : f->listen_fd, .events = POLLIN };
		for (size_t i = 0; i < n; i++) {
			p[2 + 2 * i] = (struct pollfd){ .fd = c[i].client, .events = POLLIN };
			p[3 + 2 * i] = (struct pollfd){ .fd = c[i].agent, .events = POLLIN };
		}
		int pr = poll(p, 2 + 2 * n, pause ? 100 : -1);
		pause = false;
		if (pr < 0 && errno != EINTR) {
			free(p);
			break;
		}
		if (pr < 0) {
			free(p);
			continue;
		}
		if (p[0].revents) {
			free(p);
			break;
		}
		/* existing connections first: the new one is appended after */
		size_t k = 0;
		for (size_t i = 0; i < n; i++) {
			bool alive = true;
			if (p[2 + 2 * i].revents)
				alive = pass_on(c[i].client, c[i].agent, f->stop[0]);
			if (alive && p[3 + 2 * i].revents)
				alive = pass_on(c[i].agent, c[i].client, f->stop[0]);
			if (alive) {
				c[k++] = c[i];
			} else {
				close(c[i].client);
				close(c[i].agent);
			}
		}
		n = k;
		if (p[1].revents & POLLIN) {
			int cfd = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
			int afd = cfd >= 0 ? connect_unix(f->agent) : -1;
			if (afd >= 0)
				(void)fcntl(afd, F_SETFL, fcntl(afd, F_GETFL) | O_NONBLOCK);
			if (cfd < 0 && errno != EINTR && errno != EAGAIN)
				pause = true;
			if (cfd >= 0 && afd < 0) {
				close(cfd); /* the agent went away: this client sees EOF */
			} else if (cfd >= 0) {
				c = xrealloc(c, (n + 1) * sizeof(*c));
				c[n++] = (struct conn){ cfd, afd };
			}
		}
		free(p);
	}
	for (size_t i = 0; i < n; i++) {
		close(c[i].client);
		close(c[i].agent);
	}
	free(c);
	return NULL;
}

int plait_ssh_forward_start(const char *agent, const char *id, uid_t uid, gid_t gid, mode_t mode,
			    struct plait_ssh_forward **out, struct plait_error **err)
{
	*out = NULL;
	int probe = connect_unix(agent);
	if (probe < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno,
					     "ssh agent '%s' (--ssh %s): cannot connect to '%s'", id, id, agent);
	close(probe);
	struct plait_ssh_forward *f = xcalloc(1, sizeof(*f));
	f->listen_fd = f->stop[0] = f->stop[1] = -1;
	f->dir = (struct plait_tmpdir)PLAIT_TMPDIR_INIT;
	f->agent = xstrdup(agent);
	int r = plait_mkdtemp("ssh", &f->dir, err);
	if (r < 0)
		goto fail;
	f->path = plait_path_join(f->dir.path, "agent.sock");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(f->path) >= sizeof(sa.sun_path)) {
		r = plait_error_set(err, PLAIT_E_USAGE, "ssh agent '%s': the socket path '%s' is too long for a unix "
				    "socket: set TMPDIR to a shorter directory", id, f->path);
		goto fail;
	}
	memcpy(sa.sun_path, f->path, strlen(f->path) + 1);
	f->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (f->listen_fd < 0 || bind(f->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(f->listen_fd, 16) < 0) {
		r = plait_error_set_errno(err, PLAIT_E_IO, errno, "ssh agent '%s': cannot listen on '%s'", id, f->path);
		goto fail;
	}
	if (chmod(f->path, mode & 07777) < 0 || (geteuid() == 0 && lchown(f->path, uid, gid) < 0)) {
		r = plait_error_set_errno(err, PLAIT_E_IO, errno, "ssh agent '%s': cannot set the owner and mode of '%s'",
					  id, f->path);
		goto fail;
	}
	if (pipe2(f->stop, O_CLOEXEC) < 0) {
		r = plait_error_set_errno(err, PLAIT_E_IO, errno, "ssh agent '%s': cannot start the relay", id);
		goto fail;
	}
	int pe = pthread_create(&f->thread, NULL, relay, f);
	if (pe != 0) {
		r = plait_error_set_errno(err, PLAIT_E_IO, pe, "ssh agent '%s': cannot start the relay", id);
		goto fail;
	}
	f->running = true;
	*out = f;
	return 0;
fail:
	plait_ssh_forward_stop(f);
	return r;
}

const char *plait_ssh_forward_path(const struct plait_ssh_forward *f)
{
	return f->path;
}

void plait_ssh_forward_stop(struct plait_ssh_forward *f)
{
	if (!f)
		return;
	if (f->running) {
		(void)!write(f->stop[1], "x", 1);
		pthread_join(f->thread, NULL);
	}
	if (f->listen_fd >= 0)
		close(f->listen_fd);
	for (int i = 0; i < 2; i++)
		if (f->stop[i] >= 0)
			close(f->stop[i]);
	plait_tmpdir_remove(&f->dir);
	free(f->path);
	free(f->agent);
	free(f);
}
