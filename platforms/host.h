/* platforms/host.h - the platform this process runs on.
 *
 * Contract: plait_platform_host() asks uname(2) and, for 32-bit arm machine
 * names that do not say the level, /proc/cpuinfo; the result is normalised as
 * core/platform.h's parser would give it ("linux/arm64", "linux/arm/v7"). An
 * unknown machine name is kept (lowercased) as the architecture. */
#ifndef PLAIT_PLATFORMS_HOST_H
#define PLAIT_PLATFORMS_HOST_H

#include "core/platform.h"

void plait_platform_host(struct plait_platform *out);

#endif
