/* tests/unit/rm_tree.h - remove a test's scratch directory and all below it
 * (nftw, depth first, not following links), without the library's own
 * plait_rm_rf, which some of these tests exercise. */
#ifndef PLAIT_TESTS_RM_TREE_H
#define PLAIT_TESTS_RM_TREE_H

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

static inline int rm_tree_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static inline void rm_tree(const char *dir)
{
	nftw(dir, rm_tree_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
