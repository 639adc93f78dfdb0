/* platforms/runner.h - runners for the build executor (core/build.h).
 *
 * The native runner runs RUN steps in the host's sandbox (platforms/sandbox.h)
 * and resolves users in the image. It serves the host's architecture and any
 * architecture the kernel can run through binfmt_misc (QEMU handlers with the
 * F flag); choosing between runners is the planner's job (issue 4). */
#ifndef PLAIT_RUNNER_H
#define PLAIT_RUNNER_H

#include "core/build.h"

void plait_native_runner(struct plait_runner *out);

#endif
