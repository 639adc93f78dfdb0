/* core/fs.h - file-system helpers: paths, mkdir -p, the one recursive delete,
 * temporary directories, atomic file replacement.
 *
 * Contract: functions return 0 (or a new string) on success and -errno on
 * failure unless they take a struct plait_error; they never print. Strings
 * they return are the caller's to free.
 *
 * The recursive delete (plait_rm_rf, plait_rm_rf_at) is what every module
 * uses to remove a tree: it works through directory file descriptors, never
 * follows a symbolic link (a link is removed, not its target) and never
 * enters another mount (a mount point below the tree, a bind mount of the
 * same file system included, is left in place and the delete fails with
 * -ENOTEMPTY; a tree that is itself a mount point fails with -EBUSY, nothing
 * removed). The unpacker relies on this for layers it does not trust. */
#ifndef PLAIT_FS_H
#define PLAIT_FS_H

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct plait_buf;
struct plait_error;

/* dir + "/" + name, with no second '/' when dir already ends in one; a NULL,
 * "" or "." dir gives name alone. */
char *plait_path_join(const char *dir, const char *name);
/* dir + "/" + name to the letter: "." + "x" is "./x", "d/" + "x" is "d//x".
 * For a path built on a directory as the user spelled it (--cache-dir, the
 * build context) that messages show as it was given. */
char *plait_path_concat(const char *dir, const char *name);
/* out = rel + "/" + name, or name alone when rel is "": the path of an entry
 * below a tree walk's root, rel being its directory's ("" for the root). */
void plait_path_child(struct plait_buf *out, const char *rel, const char *name);
/* The directory that holds path, as a new string: "a/b" -> "a", "/b" -> "/",
 * "b" -> ".". (No dirname(3): it may change its argument.) */
char *plait_path_dir(const char *path);

/* The names in the open directory d (read to its end; the caller closes
 * it), sorted by strcmp so that results do not depend on readdir order,
 * without "." and "..", and without every name that starts with '.' when
 * skip_hidden. A new NULL-terminated vector (plait_strv_free); *n (when not
 * NULL) gets its length. */
char **plait_dir_names(DIR *d, bool skip_hidden, size_t *n);

/* mkdir -p: create path and the directories above it that are missing, each
 * new one with mode (less the umask, as mkdir(2)); existing ones keep theirs.
 * Whatever already exists at path is success, directory or not: the caller
 * opens it next and says what is wrong in its own words ("'x' is not an OCI
 * layout (not a directory)"); a non-directory above path fails (-ENOTDIR).
 * On failure *failed_len (when not NULL) gets the length of the prefix of
 * path that could not be made, for messages: "create '%.*s'". */
int plait_mkdir_p(const char *path, mode_t mode, size_t *failed_len);

/* Temporary files and directories that a killed plait (kill -9, OOM, a
 * power cut of the CI runner) must not leave behind for good. Each is made
 * under its final parent with a fixed prefix and held with flock(LOCK_EX) on
 * an open descriptor for as long as it exists: the kernel drops the lock when
 * its owner dies, however it dies. Whoever makes the next one with the same
 * prefix in the same parent first sweeps the stale ones: an entry whose lock
 * it can take and that is older than a few seconds (so one just made, not yet
 * locked, is left alone) is unmounted below (mounts a crashed owner left) and
 * removed. Children that inherit the descriptor keep it locked: a RUN helper
 * still alive is still an owner. */
struct plait_tmpdir {
	char *path;
	int lock_fd; /* -1: none */
};
#define PLAIT_TMPDIR_INIT { .path = NULL, .lock_fd = -1 }
/* Sweep parent of stale "<prefix>*" entries, then create and lock a fresh
 * 0700 directory "<parent>/<prefix>XXXXXX". */
int plait_tmpdir_make(const char *parent, const char *prefix, struct plait_tmpdir *out,
		      struct plait_error **err);
/* rm -rf the directory, then unlock and free; a no-op on an empty one. */
void plait_tmpdir_remove(struct plait_tmpdir *t);
/* Create and lock a fresh file "<path>.tmp-XXXXXX" (mode 0600), sweeping
 * stale siblings "<basename>.tmp-*" first; out->path is its name. The
 * caller writes lock_fd, renames the file over path or unlinks it, then
 * closes lock_fd (plait_tmpdir_remove unlinks a file too). */
int plait_tmpfile_make(const char *path, struct plait_tmpdir *out, struct plait_error **err);
/* Remove the stale "<prefix>*" entries of parent (see above); returns how
 * many were removed. */
int plait_sweep_stale(const char *parent, const char *prefix);
/* Detach (MNT_DETACH) every mount of this mount namespace at or below path,
 * deepest first. 0, or -errno when /proc/self/mountinfo cannot be read. */
int plait_umount_below(const char *path);

/* syncfs(2) of the file system that holds path: what it wrote is on disk,
 * or the writeback error is reported (Linux >= 5.8 returns it). */
int plait_syncfs(const char *path, struct plait_error **err);

/* The process's umask, read without changing it (umask(2) cannot be
 * read atomically by a threaded program); 022 when /proc says nothing. */
mode_t plait_umask(void);

/* plait_tmpdir_make() under $TMPDIR (unset or empty: /tmp) with the prefix
 * "plait-<what>-". An OCI layout must not be its top: the layout's writers
 * flock their own directory (core/store.c); put it in a subdirectory. */
int plait_mkdtemp(const char *what, struct plait_tmpdir *out, struct plait_error **err);

/* The directory rel inside rootfd, opened one component at a time with
 * O_NOFOLLOW (an O_PATH descriptor in *out): no symlink is followed, not
 * even one inside; empty components are skipped, "" is rootfd itself. rel
 * must hold no ".." (the callers have cleaned it). -errno (-ELOOP, -ENOTDIR, ...). */
int plait_open_dir_nofollow(int rootfd, const char *rel, int *out);
/* rm -rf path (see the contract above). A missing path is success; a path
 * that is not a directory is unlinked (a symlink itself, never its target).
 * The components above the last one are resolved as the caller gave them. */
int plait_rm_rf(const char *path);
/* rm -rf of the single component name inside dirfd: no path resolution
 * beyond dirfd, so a symlink swapped in above cannot redirect it. name with a
 * '/' or naming "." or ".." is -EINVAL. A missing name is success. */
int plait_rm_rf_at(int dirfd, const char *name);
enum plait_replace_flags {
	/* fsync the data before the rename and the directory after it: the new
	 * content survives a crash (config, metadata); without it, a cache. */
	PLAIT_REPLACE_SYNC = 1 << 0,
	/* give the file exactly mode (fchmod), not mode less the umask */
	PLAIT_REPLACE_EXACT_MODE = 1 << 1,
	/* when path is a symlink, replace the file it points to (docker's
	 * config.json), not the link */
	PLAIT_REPLACE_FOLLOW = 1 << 2,
};
/* Replace path with data atomically: written to a new temporary file
 * "<path>.tmp-<n>" in the same directory and renamed over path, so readers
 * see the old or the new content, never a part. On failure path is untouched
 * and no temporary file is left. flags: enum plait_replace_flags. */
int plait_replace_file_full(const char *path, const void *data, size_t len, mode_t mode,
			    unsigned flags);
/* plait_replace_file_full(path, data, len, 0644, 0): not fsync'd, for caches. */
int plait_replace_file(const char *path, const void *data, size_t len);

/* The step of plait_copy_fd() that failed, for messages. */
enum plait_copy_step {
	PLAIT_COPY_RANGE, /* copy_file_range(2) */
	PLAIT_COPY_READ,
	PLAIT_COPY_WRITE,
};
/* Copy what is left of in to out: copy_file_range(2) (in the kernel, reflinks
 * where the file system has them), then read/write when the kernel cannot
 * (EXDEV, EINVAL, ENOSYS, EOPNOTSUPP: another file system, an old kernel).
 * *no_range (NULL when every call should try) remembers, for all threads,
 * that it could not once, so later calls go straight to read/write. 0, or
 * -errno with *failed (when not NULL) set to the step that failed. */
int plait_copy_fd(int in, int out, int *no_range, enum plait_copy_step *failed);

/* path's extended attributes but overlayfs' own (trusted./user.overlay.*),
 * as sorted "name=value" lines joined by newlines ("" for none or a file
 * system without xattrs): equal strings, equal xattrs. NULL when they cannot
 * be read. Caller frees. */
char *plait_xattrs_signature(const char *path);

#endif
