/* core/ssh_forward.h - an ssh agent socket for one RUN --mount=type=ssh: a
 * fresh unix socket in a private temporary directory, with the mount's owner
 * and mode, whose connections are relayed byte for byte to the agent --ssh
 * named. The RUN never sees the agent's own path, its owner and mode stay
 * what they are, and nothing of it outlives the step.
 *
 * Contract:
 *  - plait_ssh_forward_start() fails (naming the agent) when the agent's
 *    socket cannot be connected to, so a RUN never starts with a dead agent;
 *  - one thread relays every connection (several at once: git opens more
 *    than one); plait_ssh_forward_stop() closes them all, joins the thread
 *    and removes the socket and its directory;
 *  - the owner (uid, gid) is set when the process may (root); otherwise the
 *    socket stays the caller's, which is root in a rootless build's user
 *    namespace. */
#ifndef PLAIT_SSH_FORWARD_H
#define PLAIT_SSH_FORWARD_H

#include <sys/types.h>

#include "error.h"

struct plait_ssh_forward;

int plait_ssh_forward_start(const char *agent, const char *id, uid_t uid, gid_t gid, mode_t mode,
			    struct plait_ssh_forward **out, struct plait_error **err);
/* The socket's path on the host, to bind into the RUN. */
const char *plait_ssh_forward_path(const struct plait_ssh_forward *f);
void plait_ssh_forward_stop(struct plait_ssh_forward *f);

#endif
