/* platforms/ssh_agent.h - an ssh-agent of plait's own for `--ssh ID=KEYFILE`:
 * started with the keys added, its socket handed to the build, stopped when
 * the command ends.
 *
 * Contract:
 *  - the agent (OpenSSH's ssh-agent -D) listens in a private temporary
 *    directory and dies with plait (PR_SET_PDEATHSIG), so a killed build
 *    leaves no agent behind; plait_ssh_agent_stop() ends it and removes the
 *    directory;
 *  - a key ssh-add cannot add (missing, passphrase-protected: there is no
 *    terminal to ask) fails the start with ssh-add's own message and the key
 *    named, and no agent is left running. */
#ifndef PLAIT_SSH_AGENT_H
#define PLAIT_SSH_AGENT_H

#include "core/error.h"

struct plait_ssh_agent;

int plait_ssh_agent_start(const char *id, const char *const *keys, struct plait_ssh_agent **out,
			  struct plait_error **err);
const char *plait_ssh_agent_socket(const struct plait_ssh_agent *a);
void plait_ssh_agent_stop(struct plait_ssh_agent *a);

#endif
