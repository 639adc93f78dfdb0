/* platforms/runner.c - the native runner: the build executor's RUN steps in
 * the local sandbox. */
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

static int native_run(void *ctx, const struct plait_run_request *req, int *exit_code, int *signal,
		      struct plait_error **err)
{
	(void)ctx;
	struct plait_sandbox_mount *mounts = xcalloc(req->n_mounts + 1, sizeof(*mounts));
	for (size_t i = 0; i < req->n_mounts; i++) {
		const struct plait_run_mount *m = &req->mounts[i];
		mounts[i] = (struct plait_sandbox_mount){
			.type = m->type == PLAIT_RUN_MOUNT_TMPFS ? PLAIT_SANDBOX_TMPFS : PLAIT_SANDBOX_BIND,
			.source = m->source,
			.target = m->target,
			.readonly = m->readonly,
			.options = m->options,
		};
	}
	struct plait_sandbox_spec spec = {
		.rootfs = req->rootfs,
		.argv = req->argv,
		.env = req->env,
		.workdir = req->workdir,
		.user = req->user,
		.network_none = req->network_none,
		.mounts = mounts,
		.n_mounts = req->n_mounts,
		.on_output = relay_output,
		.opaque = &(struct relay){ req },
	};
	struct plait_sandbox_result res = { 0 };
	int r = plait_sandbox_run(&spec, &res, err);
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
