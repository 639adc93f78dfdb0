/* platforms/platform.h - compatibility header: platform strings and matching
 * are core data now (core/platform.h); the host's platform is
 * platforms/host.h's. New code includes those two directly. */
#ifndef PLAIT_PLATFORM_H
#define PLAIT_PLATFORM_H

#include "core/platform.h"
#include "platforms/host.h"

#endif
