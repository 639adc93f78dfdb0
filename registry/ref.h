/* registry/ref.h - compatibility header: image references and Docker Hub's
 * names are core data now (core/ref.h); new code includes that directly. */
#ifndef PLAIT_REF_H
#define PLAIT_REF_H

#include "core/ref.h"

#endif
