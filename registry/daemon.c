/* registry/daemon.c - docker daemon: ping and image load; see daemon.h. */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <unistd.h>

#include "plait-config.h"
#include "daemon.h"
#include "core/buf.h"
#include "core/util.h"
#include "core/banned.h"

#define DEFAULT_SOCKET "/var/run/docker.sock"
#define BODY_MAX (1 << 20)

int plait_daemon_socket(const char *docker_host, char **out, struct plait_error **err)
{
	*out = NULL;
	if (!docker_host || !*docker_host) {
		*out = xstrdup(DEFAULT_SOCKET);
		return 0;
	}
	if (!startswith(docker_host, "unix://") || !docker_host[strlen("unix://")])
		return plait_error_set(err, PLAIT_E_USAGE,
				       "--load: DOCKER_HOST '%s': plait talks to the docker daemon through its unix "
				       "socket only: set DOCKER_HOST=unix:///PATH/docker.sock, or unset it for "
				       DEFAULT_SOCKET,
				       docker_host);
	*out = xstrdup(docker_host + strlen("unix://"));
	return 0;
}

static size_t collect(char *data, size_t size, size_t n, void *ud)
{
	struct plait_buf *b = ud;
	size_t len = size * n;
	if (b->len + len > BODY_MAX)
		return 0;
	plait_buf_add(b, data, len);
	return len;
}

struct body {
	int fd;
	int err;
};

static size_t send_body(char *buf, size_t size, size_t n, void *ud)
{
	struct body *b = ud;
	for (;;) {
		ssize_t k = read(b->fd, buf, size * n);
		if (k >= 0)
			return (size_t)k;
		if (errno != EINTR) {
			b->err = errno;
			return CURL_READFUNC_ABORT;
		}
	}
}

/* The first "error" of the daemon's JSON answer (a stream of objects, or one). */
static char *daemon_error(const struct plait_buf *b)
{
	const char *p = b->buf, *end = b->buf + b->len;
	while (p < end) {
		json_error_t je;
		size_t used = 0;
		json_t *o = json_loadb(p, (size_t)(end - p), JSON_DISABLE_EOF_CHECK, &je);
		if (!o)
			return NULL;
		used = je.position;
		const char *e = json_string_value(json_object_get(o, "error"));
		if (!e)
			e = json_string_value(json_object_get(o, "message"));
		char *out = e ? xstrdup(e) : NULL;
		json_decref(o);
		if (out)
			return out;
		if (!used)
			break;
		p += used;
		while (p < end && (*p == '\n' || *p == '\r' || *p == ' '))
			p++;
	}
	return NULL;
}

static int request(const char *socket, const char *method, const char *path, int fd, int64_t size,
		   struct plait_error **err)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	struct plait_buf resp = PLAIT_BUF_INIT, url = PLAIT_BUF_INIT;
	struct body body = { .fd = fd };
	char errbuf[CURL_ERROR_SIZE] = "";
	int r = 0;
	if (!c)
		return plait_error_set(err, PLAIT_E_GENERIC, "--load: cannot start libcurl");
	plait_buf_addf(&url, "http://docker%s", path);
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, socket);
	curl_easy_setopt(c, CURLOPT_URL, url.buf);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "plait/" PLAIT_VERSION);
	if (fd >= 0) {
		h = curl_slist_append(h, "Content-Type: application/x-tar");
		h = curl_slist_append(h, "Expect:");
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, send_body);
		curl_easy_setopt(c, CURLOPT_READDATA, &body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)size);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	} else {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	}
	CURLcode cc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (cc == CURLE_COULDNT_CONNECT || (cc != CURLE_OK && status == 0 && !body.err)) {
		r = plait_error_set(err, PLAIT_E_NETWORK,
				    "--load: no docker daemon answers on '%s' (%s): start dockerd, or point "
				    "DOCKER_HOST=unix://PATH at its socket",
				    socket, *errbuf ? errbuf : curl_easy_strerror(cc));
	} else if (body.err) {
		r = plait_error_set_errno(err, PLAIT_E_IO, body.err, "--load: read the image archive");
	} else if (cc != CURLE_OK) {
		r = plait_error_set(err, PLAIT_E_NETWORK, "--load: %s %s on '%s': %s", method, path, socket,
				    *errbuf ? errbuf : curl_easy_strerror(cc));
	} else {
		_cleanup_free_ char *msg = daemon_error(&resp);
		if (status / 100 != 2 || (msg && fd >= 0))
			r = plait_error_set(err, PLAIT_E_GENERIC, "--load: the docker daemon on '%s' refused the image "
								  "(HTTP %ld): %s",
					    socket, status, msg ? msg : "no message");
	}
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	plait_buf_release(&resp);
	plait_buf_release(&url);
	return r;
}

int plait_daemon_ping(const char *socket, struct plait_error **err)
{
	return request(socket, "GET", "/_ping", -1, 0, err);
}

int plait_daemon_load(const char *socket, int fd, int64_t size, struct plait_error **err)
{
	return request(socket, "POST", "/images/load?quiet=1", fd, size, err);
}
