/* platforms/builder.h - choosing the builder that runs a job's RUN steps.
 *
 * Contract:
 *  - native when the host runs the platform's architecture itself (its own;
 *    386 on amd64; arm on arm64 with AArch32), through the local sandbox;
 *  - emulated ("qemu") when a binfmt_misc handler serves the architecture,
 *    enabled, with the F flag (the interpreter must work inside the chroot)
 *    and the P flag (multi-call programs such as busybox need their argv[0]);
 *    the same sandbox runs it, the kernel starts QEMU;
 *  - otherwise -PLAIT_E_NOT_FOUND naming the platform and the fix: install
 *    qemu-user-static and run 'plait qemu install ARCH', or re-register
 *    the handler with the F and P flags, or enable it;
 *  - the OS must be linux (RUN needs a Linux kernel).
 * The chooser is the planner's interface (core/plan.h): remote builders can
 * be added here without the planner knowing. */
#ifndef PLAIT_BUILDER_H
#define PLAIT_BUILDER_H

#include "core/plan.h"

struct plait_host_env {
	const char *binfmt_dir; /* PLAIT_BINFMT_DIR */
	const char *interp_dir; /* PLAIT_BINFMT_INTERP_DIR */
	const char *host_arch;  /* GOARCH; NULL = this host's */
	bool aarch32;
};

int plait_builder_choose_in(const struct plait_host_env *h, const struct plait_platform *p,
			    struct plait_builder *out, struct plait_error **err);

/* A chooser for this host (a static context: no release needed). */
void plait_local_builders(struct plait_builder_chooser *out);

#endif
