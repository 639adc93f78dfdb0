/* platforms/ssh_agent.c - ssh-agent for --ssh ID=KEYFILE; see ssh_agent.h. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ssh_agent.h"
#include "core/buf.h"
#include "core/fs.h"
#include "core/strv.h"
#include "core/util.h"

#include "core/banned.h"

struct plait_ssh_agent {
	struct plait_tmpdir dir;
	char *sock;
	pid_t pid;
};

/* The watcher between plait and the agent: Debian's ssh-agent is setgid,
 * and exec'ing a setgid program clears the parent-death signal, so this
 * process (a fork of plait, no exec) holds it instead: when plait ends, or
 * plait_ssh_agent_stop() sends SIGTERM, it stops the agent and exits. Only
 * async-signal-safe calls. */
static _Noreturn void watch_over(char *const *argv, char *const *envp, pid_t parent)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(1);
	pid_t agent = fork();
	if (agent < 0)
		_exit(127);
	if (agent == 0) {
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		execve(argv[0], argv, envp);
		_exit(127);
	}
	for (;;) {
		int sig = sigwaitinfo(&set, NULL);
		if (sig == SIGCHLD && waitpid(agent, NULL, WNOHANG) == agent)
			_exit(0);
		if (sig == SIGTERM) {
			kill(agent, SIGTERM);
			while (waitpid(agent, NULL, 0) < 0 && errno == EINTR)
				;
			_exit(0);
		}
	}
}

/* Run argv (stdin /dev/null, stdout dropped, stderr into *msg) and wait:
 * its exit status, or -1 when it could not start. Without wait_it, argv runs
 * under watch_over() and *pid_out is the watcher's: not waited for here. */
static int spawn(char *const *argv, char *const *envp, bool wait_it, pid_t *pid_out, struct plait_buf *msg)
{
	int ep[2];
	if (pipe2(ep, O_CLOEXEC) < 0)
		return -1;
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		close(ep[0]);
		close(ep[1]);
		return -1;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(ep[1], 2) < 0)
			_exit(127);
		if (!wait_it)
			watch_over(argv, envp, parent); /* does not return */
		execve(argv[0], argv, envp);
		static const char failed[] = "cannot run the program (execve failed)";
		(void)!write(2, failed, sizeof(failed) - 1);
		_exit(127);
	}
	close(ep[1]);
	if (!wait_it) {
		close(ep[0]);
		*pid_out = pid;
		return 0;
	}
	char buf[4096];
	ssize_t n;
	while ((n = read(ep[0], buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
		if (n > 0 && msg->len < 16384)
			plait_buf_add(msg, buf, (size_t)n);
	close(ep[0]);
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static const char *find_program(const char *name, char *buf, size_t len)
{
	const char *path = getenv("PATH");
	_cleanup_free_ char *copy = xstrdup(path && *path ? path : "/usr/bin:/bin");
	for (char *save = NULL, *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		snprintf(buf, len, "%s/%s", d, name);
		if (access(buf, X_OK) == 0)
			return buf;
	}
	return NULL;
}

int plait_ssh_agent_start(const char *id, const char *const *keys, struct plait_ssh_agent **out,
			  struct plait_error **err)
{
	*out = NULL;
	char agent_bin[4096], add_bin[4096];
	if (!find_program("ssh-agent", agent_bin, sizeof(agent_bin)) ||
	    !find_program("ssh-add", add_bin, sizeof(add_bin)))
		return plait_error_set(err, PLAIT_E_NOT_FOUND,
				       "--ssh %s=KEYFILE needs OpenSSH's ssh-agent and ssh-add on PATH "
				       "(apt-get install openssh-client)",
				       id);
	struct plait_ssh_agent *a = xcalloc(1, sizeof(*a));
	a->pid = -1;
	a->dir = (struct plait_tmpdir)PLAIT_TMPDIR_INIT;
	int r = plait_mkdtemp("agent", &a->dir, err);
	if (r < 0)
		goto fail;
	a->sock = plait_path_join(a->dir.path, "agent.sock");
	char *agent_argv[] = { agent_bin, (char *)"-D", (char *)"-a", a->sock, NULL };
	extern char **environ;
	if (spawn(agent_argv, environ, false, &a->pid, NULL) < 0) {
		r = plait_error_set_errno(err, PLAIT_E_IO, errno, "--ssh %s: cannot start %s", id, agent_bin);
		goto fail;
	}
	/* its socket, within a few seconds */
	struct stat st;
	for (int i = 0; i < 250 && stat(a->sock, &st) < 0; i++) {
		if (waitpid(a->pid, NULL, WNOHANG) == a->pid) {
			a->pid = -1;
			break;
		}
		nanosleep(&(struct timespec){ 0, 20 * 1000 * 1000 }, NULL);
	}
	if (stat(a->sock, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		r = plait_error_set(err, PLAIT_E_IO, "--ssh %s: %s did not create its socket '%s'", id, agent_bin,
				    a->sock);
		goto fail;
	}
	char **envp = NULL;
	for (char **e = environ; e && *e; e++)
		if (!startswith(*e, "SSH_AUTH_SOCK=") && !startswith(*e, "SSH_ASKPASS") && !startswith(*e, "DISPLAY="))
			plait_strv_push(&envp, *e);
	struct plait_buf env_sock = PLAIT_BUF_INIT;
	plait_buf_addf(&env_sock, "SSH_AUTH_SOCK=%s", a->sock);
	plait_strv_push(&envp, env_sock.buf);
	plait_buf_release(&env_sock);
	for (const char *const *k = keys; r >= 0 && k && *k; k++) {
		char *add_argv[] = { add_bin, (char *)"-q", (char *)*k, NULL };
		struct plait_buf msg = PLAIT_BUF_INIT;
		int st2 = spawn(add_argv, envp, true, NULL, &msg);
		if (st2 != 0) {
			while (msg.len && (msg.buf[msg.len - 1] == '\n' || msg.buf[msg.len - 1] == '\r'))
				msg.buf[--msg.len] = '\0';
			r = plait_error_set(err, PLAIT_E_USAGE,
					    "--ssh %s: ssh-add could not add the key '%s'%s%s (a key with a passphrase "
					    "must be in an agent already: give --ssh %s=$SSH_AUTH_SOCK)",
					    id, *k, msg.len ? ": " : "", msg.len ? msg.buf : "", id);
		}
		plait_buf_release(&msg);
	}
	plait_strv_free(envp);
	if (r < 0)
		goto fail;
	*out = a;
	return 0;
fail:
	plait_ssh_agent_stop(a);
	return r;
}

const char *plait_ssh_agent_socket(const struct plait_ssh_agent *a)
{
	return a->sock;
}

void plait_ssh_agent_stop(struct plait_ssh_agent *a)
{
	if (!a)
		return;
	if (a->pid > 0) {
		kill(a->pid, SIGTERM);
		while (waitpid(a->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	plait_tmpdir_remove(&a->dir);
	free(a->sock);
	free(a);
}
