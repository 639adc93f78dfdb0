/* core/lint_internal.h - what the linter's files share (not installed):
 * the index of each rule in the catalogue (core/lint_rules.c). */
#ifndef PLAIT_LINT_INTERNAL_H
#define PLAIT_LINT_INTERNAL_H

#include "lint.h"

enum rule_idx {
	R_BASE_UNPINNED,
	R_BASE_NO_DIGEST,
	R_APT_RECOMMENDS,
	R_APT_UNPINNED,
	R_APT_LISTS,
	R_APT_UPGRADE,
	R_PIP_UNPINNED,
	R_PIP_CACHE,
	R_CONDA_CLEAN,
	R_COPY_CONTEXT_EARLY,
	R_LARGE_FILE,
	R_GIT_DIR,
	R_BUILD_TOOLS,
	R_CUDA_DEVEL,
	R_ADD_LOCAL,
	R_ADD_URL,
	R_ROOT_USER,
	R_SECRET_ENV,
	R_RUN_CD,
	R_ENTRYPOINT_SHELL,
	R_TRAIN_SERVE,
	R_COUNT
};

#endif
