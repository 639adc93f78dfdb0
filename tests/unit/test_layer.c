/* Unit tests for core/layer: deterministic OCI layers from a tree, an
 * overlayfs upper directory and a list of changes (run as root: they chown,
 * mknod and set trusted.* and security.capability xattrs). */
#include <stdatomic.h>
#include <dirent.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "rm_tree.h"
#include "core/buf.h"
#include "core/layer.h"
#include "core/unpack.h"

#include "core/banned.h"

struct fixture {
	char dir[64];
	struct plait_store *s;
	struct plait_buf p[4]; /* scratch for path(): a ring, so two may be alive */
	unsigned next;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/plait-test-layer-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(f->p); i++)
		f->p[i] = (struct plait_buf)PLAIT_BUF_INIT;
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s/store", f->dir);
	_cleanup_error_ struct plait_error *err = NULL;
	int r = plait_store_open(b.buf, true, &f->s, &err);
	plait_buf_release(&b);
	if (r < 0) {
		fprintf(stderr, "setup: %s\n", err->msg);
		return -1;
	}
	plait_store_set_durable(f->s, false);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	plait_store_free(f->s);
	rm_tree(f->dir);
	for (size_t i = 0; i < ARRAY_SIZE(f->p); i++)
		plait_buf_release(&f->p[i]);
	free(f);
	return 0;
}

/* f->dir + "/" + rel (valid for the next three calls). */
static const char *path(struct fixture *f, const char *rel)
{
	struct plait_buf *b = &f->p[f->next++ % ARRAY_SIZE(f->p)];
	plait_buf_reset(b);
	plait_buf_addf(b, "%s/%s", f->dir, rel);
	return b->buf;
}

static void mkdir_at(struct fixture *f, const char *rel, mode_t mode, int64_t mtime)
{
	assert_int_equal(mkdir(path(f, rel), mode), 0);
	assert_int_equal(chmod(path(f, rel), mode), 0);
	struct timespec ts[2] = {{mtime, 0}, {mtime, 0}};
	if (mtime)
		assert_int_equal(utimensat(AT_FDCWD, path(f, rel), ts, AT_SYMLINK_NOFOLLOW), 0);
}

static void write_at(struct fixture *f, const char *rel, const char *data, mode_t mode,
		     int64_t mtime)
{
	int fd = open(path(f, rel), O_WRONLY | O_CREAT | O_TRUNC, mode);
	assert_true(fd >= 0);
	assert_int_equal(plait_write_all(fd, data, strlen(data)), 0);
	assert_int_equal(fchmod(fd, mode), 0);
	struct timespec ts[2] = {{mtime, 0}, {mtime, 0}};
	assert_int_equal(futimens(fd, ts), 0);
	close(fd);
}

static void set_mtime(struct fixture *f, const char *rel, int64_t mtime)
{
	struct timespec ts[2] = {{mtime, 0}, {mtime, 0}};
	assert_int_equal(utimensat(AT_FDCWD, path(f, rel), ts, AT_SYMLINK_NOFOLLOW), 0);
}

/* One line per entry under dir, sorted: everything the layer must carry. */
struct mline {
	char *path;
	ino_t ino;
	nlink_t nlink;
	char *text;
};
static struct mline *g_lines;
static size_t g_n, g_alloc;
static const char *g_root;

static int collect_line(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)flag;
	if (ftw->level == 0)
		return 0;
	struct plait_buf t = PLAIT_BUF_INIT;
	plait_buf_addf(&t, "%s type=%o mode=%04o uid=%u gid=%u mtime=%lld", p + strlen(g_root) + 1,
		       st->st_mode & S_IFMT, st->st_mode & 07777, st->st_uid, st->st_gid,
		       (long long)st->st_mtim.tv_sec);
	if (S_ISREG(st->st_mode)) {
		struct plait_buf data = PLAIT_BUF_INIT;
		assert_int_equal(plait_buf_read_file(&data, p, 1 << 20), 0);
		plait_buf_addf(&t, " data='%s'", data.buf);
		plait_buf_release(&data);
	} else if (S_ISLNK(st->st_mode)) {
		char l[256];
		ssize_t n = readlink(p, l, sizeof(l) - 1);
		assert_true(n >= 0);
		l[n] = '\0';
		plait_buf_addf(&t, " -> '%s'", l);
	} else if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
		plait_buf_addf(&t, " rdev=%u:%u", major(st->st_rdev), minor(st->st_rdev));
	}
	char names[1024];
	ssize_t n = llistxattr(p, names, sizeof(names));
	assert_true(n >= 0);
	/* xattr names in sorted order so the line does not depend on the fs */
	const char *sorted[16];
	size_t count = 0;
	for (char *x = names; x < names + n; x += strlen(x) + 1)
		if (count < ARRAY_SIZE(sorted))
			sorted[count++] = x;
	for (size_t i = 1; i < count; i++)
		for (size_t j = i; j > 0 && strcmp(sorted[j - 1], sorted[j]) > 0; j--) {
			const char *tmp = sorted[j];
			sorted[j] = sorted[j - 1];
			sorted[j - 1] = tmp;
		}
	for (size_t i = 0; i < count; i++) {
		unsigned char v[256];
		ssize_t vn = lgetxattr(p, sorted[i], v, sizeof(v));
		assert_true(vn >= 0);
		plait_buf_addf(&t, " %s=", sorted[i]);
		for (ssize_t k = 0; k < vn; k++)
			plait_buf_addf(&t, "%02x", v[k]);
	}
	PLAIT_ALLOC_GROW(g_lines, g_n + 1, g_alloc);
	g_lines[g_n++] = (struct mline){xstrdup(p + strlen(g_root) + 1), st->st_ino, st->st_nlink,
					plait_buf_detach(&t, NULL)};
	return 0;
}

static int mline_cmp(const void *a, const void *b)
{
	return strcmp(((const struct mline *)a)->path, ((const struct mline *)b)->path);
}

static char *manifest(const char *dir)
{
	g_root = dir;
	g_n = 0;
	assert_int_equal(nftw(dir, collect_line, 16, FTW_PHYS), 0);
	qsort(g_lines, g_n, sizeof(*g_lines), mline_cmp);
	struct plait_buf out = PLAIT_BUF_INIT;
	for (size_t i = 0; i < g_n; i++) {
		plait_buf_adds(&out, g_lines[i].text);
		if (g_lines[i].nlink > 1) {
			for (size_t j = 0; j < g_n; j++)
				if (g_lines[j].ino == g_lines[i].ino) {
					plait_buf_addf(&out, " link-of=%s", g_lines[j].path);
					break;
				}
		}
		plait_buf_addch(&out, '\n');
	}
	for (size_t i = 0; i < g_n; i++) {
		free(g_lines[i].path);
		free(g_lines[i].text);
	}
	free(g_lines);
	g_lines = NULL;
	g_alloc = g_n = 0;
	return plait_buf_detach(&out, NULL);
}

/* cap_net_raw+ep as a VFS_CAP_REVISION_2 security.capability value. */
static const unsigned char cap_net_raw[20] = {0x01, 0x00, 0x00, 0x02, 0x00, 0x20};

/* A tree with every kind of entry and metadata the layer must carry. */
static void make_tree(struct fixture *f, const char *root)
{
	struct plait_buf r = PLAIT_BUF_INIT;
	plait_buf_adds(&r, root);
	mkdir_at(f, root, 0755, 0);
#define P(rel) (plait_buf_setlen(&r, strlen(root)), plait_buf_adds(&r, "/" rel), r.buf)
	mkdir_at(f, P("etc"), 0750, 0);
	assert_int_equal(chown(path(f, P("etc")), 1000, 1001), 0);
	write_at(f, P("etc/passwd"), "root:x:0:0::/root:/bin/sh\n", 0644, 1500000000);
	write_at(f, P("ping"), "ELF", 04755, 1600000000);
	assert_int_equal(chown(path(f, P("ping")), 1234, 5678), 0);
	assert_int_equal(chmod(path(f, P("ping")), 04755), 0); /* chown cleared set-uid */
	assert_int_equal(setxattr(path(f, P("ping")), "security.capability", cap_net_raw,
				  sizeof(cap_net_raw), 0),
			 0);
	assert_int_equal(setxattr(path(f, P("ping")), "user.note", "hello", 5, 0), 0);
	assert_int_equal(setxattr(path(f, P("ping")), "trusted.overlay.origin", "x", 1, 0), 0);
	write_at(f, P("etc/a-hard"), "shared", 0600, 1400000000);
	assert_int_equal(link(path(f, P("etc/a-hard")), path(f, P("z-hard"))), 0);
	assert_int_equal(symlink("/etc/passwd", path(f, P("passwd-link"))), 0);
	assert_int_equal(mknod(path(f, P("null")), S_IFCHR | 0666, makedev(1, 3)), 0);
	assert_int_equal(mknod(path(f, P("sda")), S_IFBLK | 0660, makedev(8, 0)), 0);
	assert_int_equal(mkfifo(path(f, P("fifo")), 0620), 0);
	mkdir_at(f, P("empty"), 01777, 0);
	write_at(f, P("caf\xc3\xa9"), "utf-8 name", 0644, 1300000000);
	/* last: the times of the directories and the symlink */
	set_mtime(f, P("passwd-link"), 1200000000);
	set_mtime(f, P("empty"), 1100000000);
	set_mtime(f, P("etc"), 1000000000);
#undef P
	plait_buf_release(&r);
}

static void layer_from_tree(struct fixture *f, const char *rel, const struct plait_layer_options *o,
			    struct plait_layer *out)
{
	_cleanup_error_ struct plait_error *err = NULL;
	_cleanup_free_ char *dir = xstrdup(path(f, rel));
	int r = plait_layer_from_tree(f->s, dir, o, out, &err);
	if (r < 0)
		fail_msg("layer from '%s': %s", dir, err->msg);
}

static void unpack_into(struct fixture *f, const struct plait_layer *l, const char *rel,
			enum plait_unpack_mode mode)
{
	_cleanup_error_ struct plait_error *err = NULL;
	_cleanup_free_ char *dir = xstrdup(path(f, rel));
	if (mkdir(dir, 0755) < 0)
		assert_int_equal(errno, EEXIST);
	struct plait_unpack_options o = {.mode = mode, .diff_id = l->diff_id};
	char diff_id[PLAIT_SHA256_DIGEST_SIZE];
	int r = plait_unpack_blob(f->s, l->digest, dir, &o, diff_id, &err);
	if (r < 0)
		fail_msg("unpack: %s", err->msg);
	assert_string_equal(diff_id, l->diff_id);
}

/* The entries of a stored layer as "name[ -> link] mode uid:gid mtime" lines. */
static char *list_layer(struct fixture *f, const struct plait_layer *l)
{
	struct plait_buf blob = PLAIT_BUF_INIT, out = PLAIT_BUF_INIT;
	plait_store_blob_path(f->s, l->digest, &blob);
	struct archive *a = archive_read_new();
	archive_read_support_format_tar(a);
	archive_read_support_filter_all(a);
	assert_int_equal(archive_read_open_filename(a, blob.buf, 1 << 16), ARCHIVE_OK);
	struct archive_entry *e;
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		plait_buf_adds(&out, archive_entry_pathname(e));
		if (archive_entry_hardlink(e))
			plait_buf_addf(&out, " => %s", archive_entry_hardlink(e));
		plait_buf_addf(&out, " %04o %lld:%lld %lld", (unsigned)archive_entry_perm(e),
			       (long long)archive_entry_uid(e), (long long)archive_entry_gid(e),
			       (long long)archive_entry_mtime(e));
		archive_entry_xattr_reset(e);
		const char *name;
		const void *v;
		size_t n;
		while (archive_entry_xattr_next(e, &name, &v, &n) == ARCHIVE_OK)
			plait_buf_addf(&out, " %s", name);
		/* determinism: nothing host specific in the headers */
		assert_false(archive_entry_atime_is_set(e));
		assert_false(archive_entry_ctime_is_set(e));
		const char *un = archive_entry_uname(e), *gn = archive_entry_gname(e);
		assert_string_equal(un ? un : "", "");
		assert_string_equal(gn ? gn : "", "");
		plait_buf_addch(&out, '\n');
	}
	archive_read_free(a);
	plait_buf_release(&blob);
	return plait_buf_detach(&out, NULL);
}

static void round_trip(struct fixture *f, enum plait_layer_compression c, const char *media_type)
{
	make_tree(f, "src");
	struct plait_layer_options o = {.compression = c};
	struct plait_layer l;
	layer_from_tree(f, "src", &o, &l);
	assert_string_equal(l.media_type, media_type);
	assert_true(plait_digest_is_sha256(l.diff_id));
	assert_true(plait_digest_is_sha256(l.digest));
	int64_t size = -1;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_store_has(f->s, l.digest, &size, &err), 1);
	assert_int_equal(size, l.size);
	unpack_into(f, &l, "dst", PLAIT_UNPACK_APPLY);
	_cleanup_free_ char *want = manifest(path(f, "src"));
	_cleanup_free_ char *got = manifest(path(f, "dst"));
	/* the manifest does see what the round trip must keep */
	assert_non_null(
	    strstr(want, "ping type=100000 mode=4755 uid=1234 gid=5678 mtime=1600000000 data='ELF' "
			 "security.capability=0100000200200000"));
	assert_non_null(strstr(want, "z-hard type=100000 mode=0600 uid=0 gid=0 mtime=1400000000 "
				     "data='shared' link-of=etc/a-hard"));
	assert_non_null(strstr(want, " rdev=1:3\n"));
	assert_non_null(
	    strstr(want, "etc type=40000 mode=0750 uid=1000 gid=1001 mtime=1000000000"));
	/* the overlay bookkeeping xattr is dropped on purpose */
	struct plait_buf w = PLAIT_BUF_INIT;
	plait_buf_adds(&w, want);
	char *x = strstr(w.buf, " trusted.overlay.origin=78");
	assert_non_null(x);
	memmove(x, x + strlen(" trusted.overlay.origin=78"),
		strlen(x + strlen(" trusted.overlay.origin=78")) + 1);
	assert_string_equal(got, w.buf);
	plait_buf_release(&w);
}

static void test_layer__gzip_round_trip_keeps_owners_modes_xattrs_links_devices(void **state)
{
	round_trip(*state, PLAIT_LAYER_GZIP, "application/vnd.oci.image.layer.v1.tar+gzip");
}

static void test_layer__zstd_round_trip_keeps_everything(void **state)
{
	round_trip(*state, PLAIT_LAYER_ZSTD, "application/vnd.oci.image.layer.v1.tar+zstd");
}

static void test_layer__uncompressed_digest_is_diff_id(void **state)
{
	struct fixture *f = *state;
	make_tree(f, "src");
	struct plait_layer_options o = {.compression = PLAIT_LAYER_UNCOMPRESSED};
	struct plait_layer l;
	layer_from_tree(f, "src", &o, &l);
	assert_string_equal(l.media_type, "application/vnd.oci.image.layer.v1.tar");
	assert_string_equal(l.digest, l.diff_id);
	struct plait_layer g;
	layer_from_tree(f, "src", NULL, &g);
	assert_string_equal(g.diff_id, l.diff_id);
}

static void test_layer__gzip_header_has_no_name_time_or_os(void **state)
{
	struct fixture *f = *state;
	make_tree(f, "src");
	struct plait_layer l;
	layer_from_tree(f, "src", NULL, &l);
	struct plait_buf blob = PLAIT_BUF_INIT;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_store_read_blob(f->s, l.digest, 1 << 24, &blob, &err), 0);
	const unsigned char *h = (const unsigned char *)blob.buf;
	assert_int_equal(h[0], 0x1f);
	assert_int_equal(h[1], 0x8b);
	assert_int_equal(h[3], 0);			/* FLG: no name, comment, extra */
	assert_int_equal(h[4] | h[5] | h[6] | h[7], 0); /* MTIME 0 */
	assert_int_equal(h[9], 255);			/* OS unknown */
	plait_buf_release(&blob);
}

static void test_layer__same_tree_gives_same_digest_after_atime_change_and_elsewhere(void **state)
{
	struct fixture *f = *state;
	make_tree(f, "src");
	struct plait_layer a, b, c;
	layer_from_tree(f, "src", NULL, &a);
	/* reading the files changed nothing; now change every atime explicitly */
	struct timespec ts[2] = {{42, 0}, {0, UTIME_OMIT}};
	assert_int_equal(utimensat(AT_FDCWD, path(f, "src/etc/passwd"), ts, 0), 0);
	assert_int_equal(utimensat(AT_FDCWD, path(f, "src/ping"), ts, 0), 0);
	assert_int_equal(utimensat(AT_FDCWD, path(f, "src/etc"), ts, 0), 0);
	layer_from_tree(f, "src", NULL, &b);
	assert_string_equal(b.digest, a.digest);
	assert_string_equal(b.diff_id, a.diff_id);
	/* the same tree in another directory (other inodes, other creation order) */
	unpack_into(f, &a, "copy", PLAIT_UNPACK_APPLY);
	layer_from_tree(f, "copy", NULL, &c);
	assert_string_equal(c.diff_id, a.diff_id);
	assert_string_equal(c.digest, a.digest);
	assert_int_equal(c.size, a.size);
}

static void test_layer__changing_a_mode_changes_the_digest(void **state)
{
	struct fixture *f = *state;
	make_tree(f, "src");
	struct plait_layer a, b;
	layer_from_tree(f, "src", NULL, &a);
	assert_int_equal(chmod(path(f, "src/etc/passwd"), 0600), 0);
	layer_from_tree(f, "src", NULL, &b);
	assert_string_not_equal(b.diff_id, a.diff_id);
	assert_string_not_equal(b.digest, a.digest);
}

static void test_layer__source_date_epoch_clamps_newer_mtimes_only(void **state)
{
	struct fixture *f = *state;
	mkdir_at(f, "src", 0755, 0);
	write_at(f, "src/old", "o", 0644, 1000);
	write_at(f, "src/new", "n", 0644, 5000);
	struct plait_layer_options o = {.clamp_mtime = true, .source_date_epoch = 3000};
	struct plait_layer l;
	layer_from_tree(f, "src", &o, &l);
	_cleanup_free_ char *got = list_layer(f, &l);
	assert_string_equal(got, "new 0644 0:0 3000\n"
				 "old 0644 0:0 1000\n");
	/* without the epoch the real time is kept */
	layer_from_tree(f, "src", NULL, &l);
	_cleanup_free_ char *plain = list_layer(f, &l);
	assert_string_equal(plain, "new 0644 0:0 5000\n"
				   "old 0644 0:0 1000\n");
}

static void
test_layer__entries_sorted_as_a_walk_with_dir_slash_and_first_path_hardlinked(void **state)
{
	struct fixture *f = *state;
	mkdir_at(f, "src", 0755, 0);
	/* created out of order; '-' sorts before '/' bytewise but a walk visits a/ first */
	write_at(f, "src/b", "b", 0644, 7);
	write_at(f, "src/a-c", "x", 0644, 7);
	mkdir_at(f, "src/a", 0700, 0);
	write_at(f, "src/a/z", "z", 0640, 7);
	assert_int_equal(link(path(f, "src/b"), path(f, "src/a/y")), 0);
	set_mtime(f, "src/a", 9);
	struct plait_layer l;
	layer_from_tree(f, "src", NULL, &l);
	assert_int_equal(l.n_entries, 5);
	_cleanup_free_ char *got = list_layer(f, &l);
	assert_string_equal(got, "a/ 0700 0:0 9\n"
				 "a/y 0644 0:0 7\n"
				 "a/z 0640 0:0 7\n"
				 "a-c 0644 0:0 7\n"
				 "b => a/y 0644 0:0 7\n");
}

/* An overlayfs upper directory as the kernel leaves it after a RUN step. */
static void test_layer__overlay_upper_whiteouts_become_oci_whiteouts(void **state)
{
	struct fixture *f = *state;
	mkdir_at(f, "upper", 0755, 0);
	mkdir_at(f, "upper/etc", 0755, 0);
	assert_int_equal(mknod(path(f, "upper/etc/removed"), S_IFCHR | 0, makedev(0, 0)), 0);
	write_at(f, "upper/etc/added", "new", 0644, 100);
	mkdir_at(f, "upper/opq", 0755, 0);
	assert_int_equal(setxattr(path(f, "upper/opq"), "trusted.overlay.opaque", "y", 1, 0), 0);
	write_at(f, "upper/opq/-first", "f", 0644, 100);
	mkdir_at(f, "upper/uopq", 0755, 0);
	assert_int_equal(setxattr(path(f, "upper/uopq"), "user.overlay.opaque", "y", 1, 0), 0);
	/* "x" marks a directory holding whiteouts, not an opaque one */
	mkdir_at(f, "upper/notopq", 0755, 0);
	assert_int_equal(setxattr(path(f, "upper/notopq"), "trusted.overlay.opaque", "x", 1, 0), 0);
	write_at(f, "upper/gone-dir-marker", "", 0644, 100);
	assert_int_equal(
	    setxattr(path(f, "upper/gone-dir-marker"), "trusted.overlay.whiteout", "", 0, 0), 0);
	assert_int_equal(setxattr(path(f, "upper/etc/added"), "trusted.overlay.origin", "o", 1, 0),
			 0);
	set_mtime(f, "upper/etc", 200);
	set_mtime(f, "upper/opq", 200);
	set_mtime(f, "upper/uopq", 200);
	set_mtime(f, "upper/notopq", 200);

	struct plait_layer l;
	_cleanup_error_ struct plait_error *err = NULL;
	_cleanup_free_ char *dir = xstrdup(path(f, "upper"));
	struct plait_layer_options o = {.compression = PLAIT_LAYER_ZSTD};
	if (plait_layer_from_overlay(f->s, dir, &o, &l, &err) < 0)
		fail_msg("%s", err->msg);
	_cleanup_free_ char *got = list_layer(f, &l);
	assert_string_equal(got, ".wh.gone-dir-marker 0000 0:0 0\n"
				 "etc/ 0755 0:0 200\n"
				 "etc/.wh.removed 0000 0:0 0\n"
				 "etc/added 0644 0:0 100\n"
				 "notopq/ 0755 0:0 200\n"
				 "opq/ 0755 0:0 200\n"
				 "opq/.wh..wh..opq 0000 0:0 0\n"
				 "opq/-first 0644 0:0 100\n"
				 "uopq/ 0755 0:0 200\n"
				 "uopq/.wh..wh..opq 0000 0:0 0\n");

	/* and back: an overlay lower dir with the kernel's whiteout forms */
	unpack_into(f, &l, "lower", PLAIT_UNPACK_OVERLAY);
	struct stat st;
	assert_int_equal(lstat(path(f, "lower/etc/removed"), &st), 0);
	assert_true(S_ISCHR(st.st_mode));
	assert_int_equal(st.st_rdev, makedev(0, 0));
	char v[4];
	assert_int_equal(getxattr(path(f, "lower/opq"), "trusted.overlay.opaque", v, sizeof(v)), 1);
	assert_int_equal(v[0], 'y');
	assert_int_equal(getxattr(path(f, "lower/uopq"), "trusted.overlay.opaque", v, sizeof(v)),
			 1);
	assert_int_equal(getxattr(path(f, "lower/notopq"), "trusted.overlay.opaque", v, sizeof(v)),
			 -1);
	assert_int_equal(lstat(path(f, "lower/opq/.wh..wh..opq"), &st), -1);
	assert_int_equal(
	    getxattr(path(f, "lower/etc/added"), "trusted.overlay.origin", v, sizeof(v)), -1);
}

/* Given its lowers, a directory the upper holds only as overlayfs' copy-up
 * (nothing below it changed, the lower's mode, owner, time and xattrs) is
 * no change; one whose mode or time differs, or that no lower has, or that
 * holds a change, is. */
static void test_layer__overlay_copied_up_directory_is_no_change(void **state)
{
	struct fixture *f = *state;
	mkdir_at(f, "l1", 0755, 0);
	mkdir_at(f, "l1/etc", 0755, 100);
	mkdir_at(f, "l1/var", 0755, 100);
	mkdir_at(f, "l1/opt", 0755, 100);
	mkdir_at(f, "l2", 0755, 0);
	mkdir_at(f, "l2/opt", 0700, 150); /* the top lower's opt is what the upper's copies */
	mkdir_at(f, "upper", 0755, 0);
	mkdir_at(f, "upper/etc", 0755, 100); /* copied up, unchanged */
	mkdir_at(f, "upper/var", 0750, 100); /* chmod'ed */
	mkdir_at(f, "upper/opt", 0700, 150); /* copied up from l2, unchanged */
	mkdir_at(f, "upper/new", 0755, 100); /* in no lower */
	mkdir_at(f, "upper/tmp", 0755, 100);
	write_at(f, "upper/tmp/x", "x", 0644, 100);
	set_mtime(f, "upper/tmp", 100);
	struct plait_layer l;
	_cleanup_error_ struct plait_error *err = NULL;
	_cleanup_free_ char *dir = xstrdup(path(f, "upper"));
	_cleanup_free_ char *l1 = xstrdup(path(f, "l1")), *l2 = xstrdup(path(f, "l2"));
	const char *lowers[] = { l1, l2 };
	struct plait_layer_options o = {.compression = PLAIT_LAYER_ZSTD};
	if (plait_layer_from_overlay_over(f->s, dir, lowers, 2, &o, &l, &err) < 0)
		fail_msg("%s", err->msg);
	_cleanup_free_ char *got = list_layer(f, &l);
	assert_string_equal(got, "new/ 0755 0:0 100\n"
				 "tmp/ 0755 0:0 100\n"
				 "tmp/x 0644 0:0 100\n"
				 "var/ 0750 0:0 100\n");
	/* without lowers every directory of the upper is kept */
	if (plait_layer_from_overlay(f->s, dir, &o, &l, &err) < 0)
		fail_msg("%s", err->msg);
	free(got);
	got = list_layer(f, &l);
	assert_non_null(strstr(got, "etc/ 0755 0:0 100\n"));
	assert_non_null(strstr(got, "opt/ 0700 0:0 150\n"));
}

static void test_layer__overlay_metacopy_upper_is_refused(void **state)
{
	struct fixture *f = *state;
	mkdir_at(f, "upper", 0755, 0);
	write_at(f, "upper/meta", "", 0644, 1);
	assert_int_equal(setxattr(path(f, "upper/meta"), "trusted.overlay.metacopy", "", 0, 0), 0);
	struct plait_layer l;
	_cleanup_error_ struct plait_error *err = NULL;
	_cleanup_free_ char *dir = xstrdup(path(f, "upper"));
	assert_int_equal(plait_layer_from_overlay(f->s, dir, NULL, &l, &err), -PLAIT_E_INVALID);
	assert_non_null(strstr(err->msg, "metacopy=off"));
	assert_non_null(strstr(err->msg, "upper/meta'"));
}

static void test_layer__changes_list_adds_parents_and_whiteouts(void **state)
{
	struct fixture *f = *state;
	mkdir_at(f, "root", 0755, 0);
	mkdir_at(f, "root/a", 0711, 0);
	mkdir_at(f, "root/a/b", 0755, 0);
	write_at(f, "root/a/b/file", "data", 0600, 300);
	write_at(f, "root/unchanged", "u", 0644, 300);
	mkdir_at(f, "root/t", 0755, 0);
	write_at(f, "root/t/x", "x", 0644, 300);
	mkdir_at(f, "root/o", 0755, 0);
	set_mtime(f, "root/a/b", 300);
	set_mtime(f, "root/a", 300);
	set_mtime(f, "root/t", 300);
	set_mtime(f, "root/o", 300);
	const struct plait_layer_change ch[] = {
	    {PLAIT_LAYER_CHANGE_ADD, "/a/b/file"}, {PLAIT_LAYER_CHANGE_DELETE, "a/gone"},
	    {PLAIT_LAYER_CHANGE_ADD_TREE, "./t"},  {PLAIT_LAYER_CHANGE_OPAQUE, "o"},
	    {PLAIT_LAYER_CHANGE_ADD, "a/b/file"}, /* twice: written once */
	    {PLAIT_LAYER_CHANGE_DELETE, "t/x"},	  /* deleted and added: added */
	};
	struct plait_layer l;
	_cleanup_error_ struct plait_error *err = NULL;
	_cleanup_free_ char *dir = xstrdup(path(f, "root"));
	if (plait_layer_from_changes(f->s, dir, ch, ARRAY_SIZE(ch), NULL, &l, &err) < 0)
		fail_msg("%s", err->msg);
	_cleanup_free_ char *got = list_layer(f, &l);
	assert_string_equal(got, "a/ 0711 0:0 300\n"
				 "a/.wh.gone 0000 0:0 0\n"
				 "a/b/ 0755 0:0 300\n"
				 "a/b/file 0600 0:0 300\n"
				 "o/ 0755 0:0 300\n"
				 "o/.wh..wh..opq 0000 0:0 0\n"
				 "t/ 0755 0:0 300\n"
				 "t/x 0644 0:0 300\n");
}

static void test_layer__changes_with_dotdot_are_refused(void **state)
{
	struct fixture *f = *state;
	mkdir_at(f, "root", 0755, 0);
	const struct plait_layer_change ch[] = {{PLAIT_LAYER_CHANGE_ADD, "a/../../etc/passwd"}};
	struct plait_layer l;
	_cleanup_error_ struct plait_error *err = NULL;
	_cleanup_free_ char *dir = xstrdup(path(f, "root"));
	assert_int_equal(plait_layer_from_changes(f->s, dir, ch, 1, NULL, &l, &err),
			 -PLAIT_E_INVALID);
	assert_string_equal(err->msg, "layer: change path 'a/../../etc/passwd' contains '..'");
}

static void test_layer__missing_source_directory_fails(void **state)
{
	struct fixture *f = *state;
	struct plait_layer l;
	_cleanup_error_ struct plait_error *err = NULL;
	_cleanup_free_ char *dir = xstrdup(path(f, "nope"));
	assert_int_equal(plait_layer_from_tree(f->s, dir, NULL, &l, &err), -PLAIT_E_NOT_FOUND);
	assert_non_null(strstr(err->msg, "nope'"));
}

static void test_layer__empty_change_is_an_empty_tar(void **state)
{
	struct fixture *f = *state;
	mkdir_at(f, "upper", 0755, 0);
	struct plait_layer l;
	_cleanup_error_ struct plait_error *err = NULL;
	_cleanup_free_ char *dir = xstrdup(path(f, "upper"));
	struct plait_layer_options o = {.compression = PLAIT_LAYER_UNCOMPRESSED};
	assert_int_equal(plait_layer_from_overlay(f->s, dir, &o, &l, &err), 0);
	assert_int_equal(l.n_entries, 0);
	/* two zero blocks: the well-known empty layer diff_id */
	assert_string_equal(
	    l.diff_id, "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef");
}

/* A set cancel flag stops the write: -PLAIT_E_CANCELLED, no blob named, and
 * the on_writer hook saw the writer (its source ends < 0). */
static void note_writer(void *ud, struct plait_blob_writer *w)
{
	*(struct plait_blob_writer **)ud = w;
}

static void test_layer__cancel_stops_the_write_and_stores_nothing(void **state)
{
	struct fixture *f = *state;
	mkdir_at(f, "big", 0755, 0);
	_cleanup_free_ char *data = xmalloc(1 << 20);
	memset(data, 'x', 1 << 20);
	struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/file", path(f, "big"));
	int fd = open(p.buf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	for (int i = 0; i < 8; i++)
		assert_int_equal(write(fd, data, 1 << 20), 1 << 20);
	close(fd);
	plait_buf_release(&p);
	atomic_int cancel = 1;
	struct plait_blob_writer *seen = NULL;
	struct plait_layer_options o = { .compression = PLAIT_LAYER_GZIP, .cancel = &cancel,
					 .on_writer = note_writer, .on_writer_ud = &seen };
	struct plait_layer l;
	_cleanup_error_ struct plait_error *err = NULL;
	_cleanup_free_ char *dir = xstrdup(path(f, "big"));
	assert_int_equal(plait_layer_from_tree(f->s, dir, &o, &l, &err), -PLAIT_E_CANCELLED);
	assert_non_null(strstr(err->msg, "interrupted"));
	assert_non_null(seen);
	/* nothing named under blobs/sha256 but the layout's own files */
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s/blobs/sha256", plait_store_path(f->s));
	DIR *d = opendir(b.buf);
	int n = 0;
	for (struct dirent *e; d && (e = readdir(d));)
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	plait_buf_release(&b);
	assert_int_equal(n, 0);
	/* not cancelled: the same tree writes */
	cancel = 0;
	plait_error_clear(&err);
	assert_int_equal(plait_layer_from_tree(f->s, dir, &o, &l, &err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	    T(test_layer__gzip_round_trip_keeps_owners_modes_xattrs_links_devices),
	    T(test_layer__zstd_round_trip_keeps_everything),
	    T(test_layer__uncompressed_digest_is_diff_id),
	    T(test_layer__gzip_header_has_no_name_time_or_os),
	    T(test_layer__same_tree_gives_same_digest_after_atime_change_and_elsewhere),
	    T(test_layer__changing_a_mode_changes_the_digest),
	    T(test_layer__source_date_epoch_clamps_newer_mtimes_only),
	    T(test_layer__entries_sorted_as_a_walk_with_dir_slash_and_first_path_hardlinked),
	    T(test_layer__overlay_upper_whiteouts_become_oci_whiteouts),
	    T(test_layer__overlay_metacopy_upper_is_refused),
	    T(test_layer__overlay_copied_up_directory_is_no_change),
	    T(test_layer__changes_list_adds_parents_and_whiteouts),
	    T(test_layer__changes_with_dotdot_are_refused),
	    T(test_layer__missing_source_directory_fails),
	    T(test_layer__empty_change_is_an_empty_tar),
	    T(test_layer__cancel_stops_the_write_and_stores_nothing),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
