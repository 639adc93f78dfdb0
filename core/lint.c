/* core/lint.c - placeholder */
#include "lint.h"
#include "core/banned.h"
