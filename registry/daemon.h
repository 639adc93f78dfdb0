/* registry/daemon.h - the Docker Engine API, as far as plait talks to it:
 * `plait build --load` sends a docker archive (core/export.h) to a running
 * daemon's POST /images/load, over its unix socket.
 *
 * Contract:
 *  - the socket is DOCKER_HOST's when it is unix://PATH, else
 *    /var/run/docker.sock; another DOCKER_HOST scheme (tcp://, ssh://) is
 *    -PLAIT_E_USAGE naming it;
 *  - a daemon that does not answer is -PLAIT_E_NETWORK naming the socket and
 *    what to do; one that answers with an error (an HTTP status, or an
 *    "error" message in the load's JSON stream, which comes with status 200)
 *    is -PLAIT_E_GENERIC with the daemon's words;
 *  - one attempt, no retries; nothing here prints. */
#ifndef PLAIT_REGISTRY_DAEMON_H
#define PLAIT_REGISTRY_DAEMON_H

#include <stdint.h>

#include "core/error.h"

/* The daemon's socket path from docker_host (getenv("DOCKER_HOST"), may be
 * NULL or empty). *out is a new string. */
int plait_daemon_socket(const char *docker_host, char **out, struct plait_error **err);
/* GET /_ping: 0 when the daemon answers. */
int plait_daemon_ping(const char *socket, struct plait_error **err);
/* POST /images/load with the size bytes of fd (from offset 0) as the body. */
int plait_daemon_load(const char *socket, int fd, int64_t size, struct plait_error **err);

#endif
