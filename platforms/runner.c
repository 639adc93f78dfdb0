/* platforms/runner.c - the native runner: the build executor's RUN steps in
 * the local sandbox. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <time.h>

#include "runner.h"
#include "sandbox.h"
#include "core/banned.h"

struct relay {
	const struct plait_run_request *req;
};

static void relay_output(void *opaque, enum plait_sandbox_stream stream, const char *line, size_t len)
{
	const struct relay *rl = opaque;
	if (rl->req->on_output)
		rl->req->on_output(rl->req->opaque, stream == PLAIT_SANDBOX_STDERR ? 2 : 1, line, len);
}

/* The sandbox stops a command when its cancel fd turns readable; the build's
 * cancel flag (set by a signal handler) is polled into such a pipe, every
 * 100 ms, until the command ends: the end wakes the watcher at once (a sleep
 * would hold every RUN up to 100 ms longer). */
struct watcher {
	const atomic_int *cancel;
	int fd;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool done;
};

static void *watch_cancel(void *arg)
{
	struct watcher *w = arg;
	pthread_mutex_lock(&w->mu);
	while (!w->done) {
		if (*w->cancel) {
			(void)!write(w->fd, "x", 1);
			break;
		}
		plait_cond_wait_ms(&w->cond, &w->mu, 100);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static int native_run(void *ctx, const struct plait_run_request *req, int *exit_code, int *signal,
		      struct plait_error **err)
{
	(void)ctx;
	int cancel_pipe[2] = { -1, -1 };
	struct watcher w = { .cancel = req->cancel, .fd = -1, .mu = PTHREAD_MUTEX_INITIALIZER };
	plait_cond_init_monotonic(&w.cond);
	pthread_t t;
	bool watching = false;
	if (req->cancel && pipe2(cancel_pipe, O_CLOEXEC) == 0) {
		w.fd = cancel_pipe[1];
		watching = pthread_create(&t, NULL, watch_cancel, &w) == 0;
	}
	struct plait_sandbox_mount *mounts = xcalloc(req->n_mounts + 1, sizeof(*mounts));
	for (size_t i = 0; i < req->n_mounts; i++) {
		const struct plait_run_mount *m = &req->mounts[i];
		mounts[i] = (struct plait_sandbox_mount){
			.type = m->type == PLAIT_RUN_MOUNT_TMPFS  ? PLAIT_SANDBOX_TMPFS
				: m->type == PLAIT_RUN_MOUNT_FILE ? PLAIT_SANDBOX_FILE
								  : PLAIT_SANDBOX_BIND,
			.source = m->source,
			.target = m->target,
			.readonly = m->readonly,
			.options = m->options,
			.data = m->data,
			.data_len = m->data_len,
			.uid = m->uid,
			.gid = m->gid,
			.mode = m->mode,
		};
	}
	struct plait_sandbox_spec spec = {
		.rootfs = req->rootfs,
		.argv = req->argv,
		.env = req->env,
		.workdir = req->workdir,
		.user = req->user,
		.network_none = req->network_none,
		.insecure = req->insecure,
		.mounts = mounts,
		.n_mounts = req->n_mounts,
		.on_output = relay_output,
		.opaque = &(struct relay){ req },
		.cancel_fd = watching ? cancel_pipe[0] : -1,
	};
	struct plait_sandbox_result res = { 0 };
	int r = plait_sandbox_run(&spec, &res, err);
	if (watching) {
		pthread_mutex_lock(&w.mu);
		w.done = true;
		pthread_cond_signal(&w.cond);
		pthread_mutex_unlock(&w.mu);
		pthread_join(t, NULL);
	}
	pthread_cond_destroy(&w.cond);
	if (cancel_pipe[0] >= 0) {
		close(cancel_pipe[0]);
		close(cancel_pipe[1]);
	}
	if (r >= 0 && res.cancelled)
		r = plait_error_set(err, PLAIT_E_CANCELLED, "interrupted");
	*exit_code = res.exit_code;
	*signal = res.signal;
	plait_sandbox_result_release(&res);
	free(mounts);
	return r;
}

static int native_resolve_user(void *ctx, const char *rootfs, const char *user, uid_t *uid, gid_t *gid,
			       struct plait_error **err)
{
	(void)ctx;
	struct plait_sandbox_user u = { 0 };
	int r = plait_sandbox_resolve_user(rootfs, user, &u, err);
	if (r >= 0) {
		*uid = u.uid;
		*gid = u.gid;
	}
	plait_sandbox_user_release(&u);
	return r;
}

void plait_native_runner(struct plait_runner *out)
{
	*out = (struct plait_runner){ .run = native_run, .resolve_user = native_resolve_user };
}
