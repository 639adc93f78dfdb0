/* Unit tests for core/context.c: walking a context with .dockerignore,
 * resolving COPY sources (wildcards, symlinks kept inside the root, errors)
 * and the content digest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "tmpdir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "core/context.h"
#include "core/endpoint.h"

static void write_at(const char *dir, const char *name, const char *content)
{
	struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/%s", dir, name);
	int fd = open(p.buf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		fail_msg("create '%s': %s", p.buf, strerror(errno));
	assert_int_equal(plait_write_all(fd, content, strlen(content)), 0);
	close(fd);
	plait_buf_release(&p);
}

static void mkdir_at(const char *dir, const char *name)
{
	struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/%s", dir, name);
	assert_int_equal(mkdir(p.buf, 0755), 0);
	plait_buf_release(&p);
}

static void symlink_at(const char *dir, const char *name, const char *target)
{
	struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/%s", dir, name);
	assert_int_equal(symlink(target, p.buf), 0);
	plait_buf_release(&p);
}

/* The fixture tree; "outside" is a sibling of the context with a secret. */
struct fixture {
	char *tmp;
	struct plait_buf ctx;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	f->tmp = test_mkdtemp("test-context");
	mkdir_at(f->tmp, "outside");
	write_at(f->tmp, "outside/secret", "host secret");
	plait_buf_init(&f->ctx, 0);
	plait_buf_addf(&f->ctx, "%s/ctx", f->tmp);
	const char *c = f->ctx.buf;
	assert_int_equal(mkdir(c, 0755), 0);
	write_at(c, ".dockerignore", "*.log\nbuild\ndocs\n!docs/README.md\nsrc/*.py\n!src/keep.py\nhidden-link\n");
	write_at(c, "a.txt", "a");
	write_at(c, "b.log", "log");
	mkdir_at(c, "build");
	write_at(c, "build/out.o", "obj");
	mkdir_at(c, "docs");
	write_at(c, "docs/README.md", "readme");
	write_at(c, "docs/other.md", "other");
	mkdir_at(c, "src");
	write_at(c, "src/app.py", "app");
	write_at(c, "src/keep.py", "keep");
	mkdir_at(c, "src/lib");
	write_at(c, "src/lib/x.c", "int x;");
	mkdir_at(c, "etc");
	write_at(c, "etc/passwd", "in-context");
	symlink_at(c, "link-out", "/etc");
	symlink_at(c, "link-in", "src/lib");
	symlink_at(c, "escape", "../../../../../outside/secret");
	symlink_at(c, "up", "../outside");
	symlink_at(c, "hidden-link", "a.txt");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	plait_rm_rf(f->tmp);
	free(f->tmp);
	plait_buf_release(&f->ctx);
	free(f);
	return 0;
}

static struct plait_context *open_ctx(const char *dir)
{
	struct plait_error *err = NULL;
	struct plait_context *ctx = NULL;
	if (plait_context_open(dir, NULL, &ctx, &err) < 0)
		fail_msg("open context: %s", err->msg);
	return ctx;
}

/* "path|path|..." of a list's entries, for one comparison that shows all. */
static char *paths(const struct plait_context_list *l, bool rel)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	for (size_t i = 0; i < l->n_entries; i++)
		plait_buf_addf(&b, "%s%s", i ? "|" : "", rel ? l->entries[i].rel : l->entries[i].path);
	return plait_buf_detach(&b, NULL);
}

static void test_context__walk_is_sorted_and_filtered(void **state)
{
	struct fixture *f = *state;
	struct plait_context *ctx = open_ctx(f->ctx.buf);
	struct plait_context_list l = PLAIT_CONTEXT_LIST_INIT;
	struct plait_error *err = NULL;
	if (plait_context_walk(ctx, &l, &err) < 0)
		fail_msg("walk: %s", err->msg);
	char *got = paths(&l, false);
	assert_string_equal(got, "|.dockerignore|a.txt|docs|docs/README.md|escape|etc|etc/passwd|link-in|link-out|"
				 "src|src/keep.py|src/lib|src/lib/x.c|up");
	free(got);
	assert_int_equal(l.n_sources, 1);
	assert_string_equal(l.sources[0].name, ".");
	assert_int_equal(l.sources[0].count, l.n_entries);
	/* symlinks are listed as symlinks, not followed */
	for (size_t i = 0; i < l.n_entries; i++) {
		const struct plait_context_entry *e = &l.entries[i];
		if (streq(e->path, "link-out")) {
			assert_true(S_ISLNK(e->mode));
			assert_string_equal(e->link_target, "/etc");
		}
		if (streq(e->path, "up")) {
			assert_true(S_ISLNK(e->mode));
			assert_string_equal(e->link_target, "../outside");
		}
		if (streq(e->path, "docs"))
			assert_true(S_ISDIR(e->mode));
	}
	plait_context_list_release(&l);
	plait_context_free(ctx);
}

static void expect_resolve_error(struct plait_context *ctx, const char *src, int code, const char *want)
{
	struct plait_context_list l = PLAIT_CONTEXT_LIST_INIT;
	struct plait_error *err = NULL;
	int r = plait_context_resolve(ctx, src, NULL, &l, &err);
	if (r >= 0)
		fail_msg("resolve '%s' succeeded, want '%s'", src, want);
	assert_int_equal(r, -code);
	assert_string_equal(err->msg, want);
	assert_int_equal(l.n_entries, 0);
	plait_error_free(err);
	plait_context_list_release(&l);
}

static void test_context__resolve_errors_name_the_source(void **state)
{
	struct fixture *f = *state;
	struct plait_context *ctx = open_ctx(f->ctx.buf);
	expect_resolve_error(ctx, "src/nope.py", PLAIT_E_NOT_FOUND,
			     "COPY source 'src/nope.py' not found in the build context");
	expect_resolve_error(ctx, "src/app.py", PLAIT_E_NOT_FOUND,
			     "COPY source 'src/app.py' is excluded by .dockerignore (line 5: 'src/*.py')");
	expect_resolve_error(ctx, "build/out.o", PLAIT_E_NOT_FOUND,
			     "COPY source 'build/out.o' is excluded by .dockerignore (line 2: 'build')");
	expect_resolve_error(ctx, "docs/other.md", PLAIT_E_NOT_FOUND,
			     "COPY source 'docs/other.md' is excluded by .dockerignore (line 3: 'docs')");
	/* a followed symlink that was not transferred */
	expect_resolve_error(ctx, "hidden-link", PLAIT_E_NOT_FOUND,
			     "COPY source 'hidden-link' is excluded by .dockerignore (line 7: 'hidden-link')");
	expect_resolve_error(ctx, "../x", PLAIT_E_USAGE,
			     "COPY source '../x' is outside the build context: sources are relative to the context root, "
			     "move the file into the context or pass a larger context");
	expect_resolve_error(ctx, "a/../../x", PLAIT_E_USAGE,
			     "COPY source 'a/../../x' is outside the build context: sources are relative to the context root, "
			     "move the file into the context or pass a larger context");
	expect_resolve_error(ctx, "a.txt/x", PLAIT_E_NOT_FOUND, "COPY source 'a.txt/x' not found in the build context");
	expect_resolve_error(ctx, "src/[", PLAIT_E_USAGE, "COPY source 'src/[': invalid pattern: missing ']'");
	plait_context_free(ctx);
}

/* Symlinks resolve as if the context were '/': nothing outside is reached. */
static void test_context__symlinks_never_leave_the_root(void **state)
{
	struct fixture *f = *state;
	struct plait_context *ctx = open_ctx(f->ctx.buf);
	struct plait_error *err = NULL;

	/* escape -> ../../../../../outside/secret: clamped to <ctx>/outside/secret, absent */
	expect_resolve_error(ctx, "escape", PLAIT_E_NOT_FOUND, "COPY source 'escape' not found in the build context");
	expect_resolve_error(ctx, "up/secret", PLAIT_E_NOT_FOUND, "COPY source 'up/secret' not found in the build context");
	/* link-out -> /etc means <ctx>/etc */
	struct plait_context_list l = PLAIT_CONTEXT_LIST_INIT;
	if (plait_context_resolve(ctx, "link-out/passwd", NULL, &l, &err) < 0)
		fail_msg("resolve: %s", err->msg);
	assert_int_equal(l.n_sources, 1);
	assert_string_equal(l.sources[0].name, "link-out/passwd");
	assert_string_equal(l.entries[0].path, "etc/passwd");
	plait_context_list_release(&l);

	for (int follow = 0; follow < 2; follow++) {
		int fd = -1;
		if (!follow) {
			assert_int_equal(plait_context_openat(ctx, "link-out/passwd", O_RDONLY, false, &fd, &err), -PLAIT_E_IO);
			plait_error_clear(&err);
			continue;
		}
		if (plait_context_openat(ctx, "link-out/passwd", O_RDONLY, true, &fd, &err) < 0)
			fail_msg("openat: %s", err->msg);
		char buf[64] = "";
		assert_int_equal(read(fd, buf, sizeof(buf) - 1), 10);
		assert_string_equal(buf, "in-context");
		close(fd);
	}
	assert_int_equal(plait_context_openat(ctx, "escape", O_RDONLY, true, &(int){ -1 }, &err), -PLAIT_E_NOT_FOUND);
	plait_error_clear(&err);
	assert_int_equal(plait_context_openat(ctx, "../outside/secret", O_RDONLY, true, &(int){ -1 }, &err),
			 -PLAIT_E_USAGE);
	plait_error_clear(&err);
	plait_context_free(ctx);
}

static void test_context__resolve_dirs_links_and_wildcards(void **state)
{
	struct fixture *f = *state;
	struct plait_context *ctx = open_ctx(f->ctx.buf);
	struct plait_context_list l = PLAIT_CONTEXT_LIST_INIT;
	struct plait_error *err = NULL;

	/* an excluded directory holding a re-included file: only that file */
	if (plait_context_resolve(ctx, "/docs/", NULL, &l, &err) < 0)
		fail_msg("resolve docs: %s", err->msg);
	char *got = paths(&l, true);
	assert_string_equal(got, "|README.md");
	free(got);
	assert_string_equal(l.sources[0].name, "docs");
	plait_context_list_release(&l);

	/* a symlink source is followed; its entries live at the target */
	if (plait_context_resolve(ctx, "link-in", NULL, &l, &err) < 0)
		fail_msg("resolve link-in: %s", err->msg);
	got = paths(&l, false);
	assert_string_equal(got, "src/lib|src/lib/x.c");
	free(got);
	assert_string_equal(l.entries[1].rel, "x.c");
	assert_string_equal(l.sources[0].name, "link-in");
	assert_true(S_ISDIR(l.entries[0].mode));
	plait_context_list_release(&l);

	/* wildcards: sorted, excluded matches skipped */
	if (plait_context_resolve(ctx, "src/*", NULL, &l, &err) < 0)
		fail_msg("resolve src/*: %s", err->msg);
	assert_int_equal(l.n_sources, 2);
	assert_string_equal(l.sources[0].name, "src/keep.py");
	assert_string_equal(l.sources[1].name, "src/lib");
	got = paths(&l, false);
	assert_string_equal(got, "src/keep.py|src/lib|src/lib/x.c");
	free(got);
	plait_context_list_release(&l);

	if (plait_context_resolve(ctx, "*/lib/?.[a-c]", NULL, &l, &err) < 0)
		fail_msg("resolve */lib/?.[a-c]: %s", err->msg);
	assert_int_equal(l.n_sources, 1); /* "link-in/lib" would be src/lib/lib: absent */
	assert_string_equal(l.sources[0].name, "src/lib/x.c");
	plait_context_list_release(&l);

	/* a wildcard that matches nothing is not an error */
	assert_int_equal(plait_context_resolve(ctx, "*.nomatch", NULL, &l, &err), 0);
	assert_int_equal(l.n_sources, 0);
	assert_int_equal(plait_context_resolve(ctx, "nodir/*.c", NULL, &l, &err), 0);
	assert_int_equal(l.n_sources, 0);
	plait_context_list_release(&l);
	plait_context_free(ctx);
}

/* Same tree in two places (different mtimes) -> same digest; one change -> another. */
static void make_tree(const char *dir)
{
	assert_int_equal(mkdir(dir, 0755), 0);
	write_at(dir, "f.txt", "content");
	mkdir_at(dir, "sub");
	write_at(dir, "sub/g.bin", "binary\001\002");
	symlink_at(dir, "l", "f.txt");
	struct plait_buf a = PLAIT_BUF_INIT, b = PLAIT_BUF_INIT;
	plait_buf_addf(&a, "%s/f.txt", dir);
	plait_buf_addf(&b, "%s/hard", dir);
	assert_int_equal(link(a.buf, b.buf), 0);
	plait_buf_release(&a);
	plait_buf_release(&b);
}

static void digest_of(const char *dir, char out[PLAIT_SHA256_DIGEST_SIZE])
{
	struct plait_context *ctx = open_ctx(dir);
	struct plait_context_list l = PLAIT_CONTEXT_LIST_INIT;
	struct plait_error *err = NULL;
	if (plait_context_walk(ctx, &l, &err) < 0 || plait_context_digest(ctx, &l, out, &err) < 0)
		fail_msg("digest '%s': %s", dir, err->msg);
	plait_context_list_release(&l);
	plait_context_free(ctx);
}

/* digest_of with a memo file; *learnt gets the memo file's line count after. */
static void memo_digest_of(const char *dir, const char *memo, char out[PLAIT_SHA256_DIGEST_SIZE])
{
	struct plait_context *ctx = open_ctx(dir);
	struct plait_context_list l = PLAIT_CONTEXT_LIST_INIT;
	struct plait_error *err = NULL;
	plait_context_set_memo(ctx, memo);
	if (plait_context_walk(ctx, &l, &err) < 0 || plait_context_digest(ctx, &l, out, &err) < 0)
		fail_msg("digest '%s': %s", dir, err->msg);
	plait_context_save_memo(ctx);
	plait_context_list_release(&l);
	plait_context_free(ctx);
}

static size_t lines_of(const char *file)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	size_t n = 0;
	if (plait_buf_read_file(&b, file, 1 << 20) >= 0)
		for (size_t i = 0; i < b.len; i++)
			n += b.buf[i] == '\n';
	plait_buf_release(&b);
	return n;
}

/* The memo skips reading unchanged files, and never hides a change: a file
 * rewritten with the same size and its old mtime put back still counts. */
static void test_context__digest_memo_is_never_stale(void **state)
{
	struct fixture *f = *state;
	struct plait_buf d = PLAIT_BUF_INIT, memo = PLAIT_BUF_INIT, p = PLAIT_BUF_INIT;
	plait_buf_addf(&d, "%s/m", f->tmp);
	plait_buf_addf(&memo, "%s/memo", f->tmp);
	plait_buf_addf(&p, "%s/f.txt", d.buf);
	make_tree(d.buf);
	char plain[PLAIT_SHA256_DIGEST_SIZE], a[PLAIT_SHA256_DIGEST_SIZE], b[PLAIT_SHA256_DIGEST_SIZE];
	digest_of(d.buf, plain);

	/* Files changed within the last second are not remembered (racy). */
	memo_digest_of(d.buf, memo.buf, a);
	assert_string_equal(a, plain);
	assert_int_equal(lines_of(memo.buf), 0);

	sleep(2);
	memo_digest_of(d.buf, memo.buf, a);
	assert_string_equal(a, plain);
	size_t n = lines_of(memo.buf);
	assert_true(n > 0);
	memo_digest_of(d.buf, memo.buf, b); /* from the memo: same answer */
	assert_string_equal(b, plain);
	{
		/* ... really from the memo: forged digests in it change the answer */
		struct plait_buf m = PLAIT_BUF_INIT, forged = PLAIT_BUF_INIT;
		assert_int_equal(plait_buf_read_file(&m, memo.buf, 1 << 20), 0);
		for (char *save = NULL, *line = strtok_r(m.buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
			plait_buf_addf(&forged, "sha256:%064d%s\n", 0, line + PLAIT_SHA256_DIGEST_SIZE - 1);
		write_at(f->tmp, "memo", forged.buf);
		memo_digest_of(d.buf, memo.buf, b);
		assert_string_not_equal(b, plain);
		write_at(f->tmp, "memo", "");
		plait_buf_release(&m);
		plait_buf_release(&forged);
		memo_digest_of(d.buf, memo.buf, b); /* relearnt */
		assert_string_equal(b, plain);
	}

	/* Same size, old mtime restored: ctime still moves, so it is read again. */
	struct stat st;
	assert_int_equal(stat(p.buf, &st), 0);
	char *old = NULL;
	struct plait_buf content = PLAIT_BUF_INIT;
	assert_int_equal(plait_buf_read_file(&content, p.buf, 1 << 20), 0);
	old = xstrdup(content.buf);
	old[0] = old[0] == 'x' ? 'y' : 'x';
	write_at(d.buf, "f.txt", old);
	struct timespec ts[2] = { st.st_atim, st.st_mtim };
	assert_int_equal(utimensat(AT_FDCWD, p.buf, ts, 0), 0);
	memo_digest_of(d.buf, memo.buf, b);
	assert_string_not_equal(b, plain);
	digest_of(d.buf, a); /* and it is what reading everything says */
	assert_string_equal(a, b);

	/* A damaged memo file is only a cache. */
	write_at(f->tmp, "memo", "garbage\n");
	memo_digest_of(d.buf, memo.buf, b);
	assert_string_equal(a, b);
	free(old);
	plait_buf_release(&content);
	plait_buf_release(&d);
	plait_buf_release(&memo);
	plait_buf_release(&p);
}

static void test_context__digest_is_stable_and_sensitive(void **state)
{
	struct fixture *f = *state;
	struct plait_buf d1 = PLAIT_BUF_INIT, d2 = PLAIT_BUF_INIT, p = PLAIT_BUF_INIT;
	plait_buf_addf(&d1, "%s/t1", f->tmp);
	plait_buf_addf(&d2, "%s/t2", f->tmp);
	make_tree(d1.buf);
	make_tree(d2.buf);
	plait_buf_addf(&p, "%s/f.txt", d2.buf);
	struct timeval tv[2] = { { 1000, 0 }, { 1000, 0 } };
	assert_int_equal(utimes(p.buf, tv), 0);

	char a[PLAIT_SHA256_DIGEST_SIZE], b[PLAIT_SHA256_DIGEST_SIZE], c[PLAIT_SHA256_DIGEST_SIZE];
	digest_of(d1.buf, a);
	digest_of(d1.buf, b);
	assert_string_equal(a, b);
	digest_of(d2.buf, b);
	assert_string_equal(a, b); /* location and mtime are not in it */
	assert_true(plait_digest_is_sha256(a));

	assert_int_equal(chmod(p.buf, 0755), 0); /* mode */
	digest_of(d2.buf, c);
	assert_string_not_equal(a, c);
	assert_int_equal(chmod(p.buf, 0644), 0);
	digest_of(d2.buf, c);
	assert_string_equal(a, c);

	write_at(d2.buf, "sub/g.bin", "binary\001\003"); /* content, same size */
	digest_of(d2.buf, c);
	assert_string_not_equal(a, c);
	write_at(d2.buf, "sub/g.bin", "binary\001\002");
	digest_of(d2.buf, c);
	assert_string_equal(a, c);

	struct plait_buf q = PLAIT_BUF_INIT;
	plait_buf_addf(&q, "%s/sub/h.bin", d2.buf);
	plait_buf_reset(&p);
	plait_buf_addf(&p, "%s/sub/g.bin", d2.buf);
	assert_int_equal(rename(p.buf, q.buf), 0); /* name */
	digest_of(d2.buf, c);
	assert_string_not_equal(a, c);
	assert_int_equal(rename(q.buf, p.buf), 0);

	plait_buf_reset(&p);
	plait_buf_addf(&p, "%s/l", d2.buf);
	assert_int_equal(unlink(p.buf), 0);
	assert_int_equal(symlink("sub", p.buf), 0); /* symlink target */
	digest_of(d2.buf, c);
	assert_string_not_equal(a, c);

	plait_buf_release(&d1);
	plait_buf_release(&d2);
	plait_buf_release(&p);
	plait_buf_release(&q);
}

static void test_context__open_missing_dir_fails(void **state)
{
	struct fixture *f = *state;
	struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/nope", f->tmp);
	struct plait_context *ctx = NULL;
	struct plait_error *err = NULL;
	assert_int_equal(plait_context_open(p.buf, NULL, &ctx, &err), -PLAIT_E_NOT_FOUND);
	assert_null(ctx);
	assert_non_null(strstr(err->msg, "not found"));
	plait_error_free(err);
	plait_buf_release(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_context__walk_is_sorted_and_filtered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_context__digest_memo_is_never_stale, setup, teardown),
		cmocka_unit_test_setup_teardown(test_context__resolve_errors_name_the_source, setup, teardown),
		cmocka_unit_test_setup_teardown(test_context__symlinks_never_leave_the_root, setup, teardown),
		cmocka_unit_test_setup_teardown(test_context__resolve_dirs_links_and_wildcards, setup, teardown),
		cmocka_unit_test_setup_teardown(test_context__digest_is_stable_and_sensitive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_context__open_missing_dir_fails, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
