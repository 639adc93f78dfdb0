/* Unit tests for core/sbom.c and core/attest.c: package databases stacked
 * layer over layer (whiteouts, opaque directories, a file replacing a
 * directory, hard links), each database's parser, the SPDX document; the
 * provenance statement (redaction, clamped times, materials) and a context's
 * git source (loose and packed refs, linked work trees, no credentials). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "asserts.h"
#include "tmpdir.h"
#include "core/attest.h"
#include "core/fs.h"
#include "core/sbom.h"

/* A layer: entries "path", "content" (NULL: a directory; "->T": a hard link to T). */
struct ent {
	const char *path;
	const char *content;
};

static int tar_layer(const struct ent *e, size_t n, bool gzip)
{
	FILE *f = tmpfile();
	assert_non_null(f);
	int fd = dup(fileno(f));
	fclose(f);
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	if (gzip)
		archive_write_add_filter_gzip(a);
	assert_int_equal(archive_write_open_fd(a, fd), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *ae = archive_entry_new();
		archive_entry_set_pathname(ae, e[i].path);
		if (!e[i].content) {
			archive_entry_set_filetype(ae, AE_IFDIR);
			archive_entry_set_perm(ae, 0755);
		} else if (strncmp(e[i].content, "->", 2) == 0) {
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_perm(ae, 0644);
			archive_entry_set_hardlink(ae, e[i].content + 2);
		} else {
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_perm(ae, 0644);
			archive_entry_set_size(ae, (la_int64_t)strlen(e[i].content));
		}
		assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
		if (e[i].content && strncmp(e[i].content, "->", 2) != 0)
			archive_write_data(a, e[i].content, strlen(e[i].content));
		archive_entry_free(ae);
	}
	archive_write_close(a);
	archive_write_free(a);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

static void add_layer(struct plait_sbom *sb, const struct ent *e, size_t n, bool gzip)
{
	struct plait_error *err = NULL;
	int fd = tar_layer(e, n, gzip);
	int r = plait_sbom_add_layer(sb, fd, "layer", &err);
	if (r < 0)
		fail_msg("add layer: %s", err->msg);
	close(fd);
}

/* "type name version" of every package, one per line. */
static char *pkg_list(const struct plait_sbom *sb)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	for (size_t i = 0; i < sb->n; i++)
		plait_buf_addf(&b, "%s %s %s\n", sb->pkgs[i].type, sb->pkgs[i].name, sb->pkgs[i].version);
	return b.buf ? b.buf : xstrdup("");
}

#define DPKG_STATUS                                                                              \
	"Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.15-2+b2\n" \
	"Description: shell\n continued\n .\n more\n\n"                                            \
	"Package: gone\nStatus: deinstall ok config-files\nVersion: 1.0\n\n"                        \
	"Package: half\nStatus: install reinstreq half-installed\nVersion: 2.0\nArchitecture: all\n"

static void test_sbom__layers_stack_as_a_runtime_does(void **state)
{
	(void)state;
	struct plait_sbom sb = { 0 };
	struct plait_error *err = NULL;
	const struct ent l1[] = {
		{ "./var/lib/dpkg/", NULL },
		{ "./var/lib/dpkg/status", DPKG_STATUS },
		{ "./usr/lib/python3/site-packages/a-1.0.dist-info/METADATA", "Name: a\nVersion: 1.0\n" },
		{ "./usr/lib/python3/site-packages/b-2.0.dist-info/METADATA", "Name: b\nVersion: 2.0\n" },
		{ "./opt/x/c-3.0.dist-info/METADATA", "Name: c\nVersion: 3.0\n" },
		{ "./opt/y/d-4.0.dist-info/METADATA", "Name: d\nVersion: 4.0\n" },
		{ "./etc/os-release", "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME='Debian 12'\n" },
	};
	add_layer(&sb, l1, ARRAY_SIZE(l1), true);
	const struct ent l2[] = {
		/* a whiteout removes a lower package; an opaque dir hides what was under it */
		{ "usr/lib/python3/site-packages/.wh.a-1.0.dist-info", "" },
		{ "opt/x/.wh..wh..opq", "" },
		{ "opt/x/e-5.0.dist-info/METADATA", "Name: e\nVersion: 5.0\n" },
		/* a file where a directory was */
		{ "opt/y", "not a directory any more" },
		/* a hard link to a file of this layer */
		{ "srv/f-6.0.dist-info/METADATA", "Name: f\nVersion: 6.0\n" },
		{ "srv/g-6.0.dist-info/METADATA", "->srv/f-6.0.dist-info/METADATA" },
		/* not a package database */
		{ "home/app/METADATA", "Name: nope\nVersion: 0\n" },
	};
	add_layer(&sb, l2, ARRAY_SIZE(l2), false);
	assert_int_equal(plait_sbom_finish(&sb, &err), 0);
	_cleanup_free_ char *got = pkg_list(&sb);
	assert_string_equal(got, "deb bash 5.2.15-2+b2\n"
				 "deb half 2.0\n"
				 "pypi b 2.0\n"
				 "pypi e 5.0\n"
				 "pypi f 6.0\n"
				 "pypi f 6.0\n");
	assert_string_equal(sb.os_id, "debian");
	assert_string_equal(sb.os_version_id, "12");
	assert_string_equal(sb.os_name, "Debian 12");
	assert_string_equal(sb.pkgs[0].arch, "amd64");
	plait_sbom_release(&sb);
}

static void test_sbom__apk_conda_egg_info_rpm(void **state)
{
	(void)state;
	struct plait_sbom sb = { 0 };
	struct plait_error *err = NULL;
	const struct ent l[] = {
		{ "lib/apk/db/installed", "C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\nL:MIT\no:musl\n\n"
					  "P:busybox\nV:1.36.1-r5\nA:x86_64\nL:GPL-2.0-only\n" },
		{ "opt/conda/conda-meta/zlib-1.2.13-h5eee18b_0.json",
		  "{\"name\":\"zlib\",\"version\":\"1.2.13\",\"build\":\"h5eee18b_0\",\"license\":\"Zlib\"}" },
		{ "opt/conda/conda-meta/history", "not json" },
		{ "usr/lib/python3/dist-packages/six-1.16.0.egg-info", "Name: six\nVersion: 1.16.0\nLicense: MIT\n" },
		{ "usr/lib/python3/dist-packages/pkg-0.1.egg-info/PKG-INFO", "Name: pkg\nVersion: 0.1\n" },
		{ "var/lib/rpm/rpmdb.sqlite", "SQLite format 3" },
		/* not UTF-8: left out, not garbled into the JSON */
		{ "usr/lib/python3/dist-packages/bad-1.egg-info", "Name: b\xff" "d\nVersion: 1\n" },
		{ "usr/lib/os-release", "ID=alpine\nVERSION_ID=3.19.1\n" },
	};
	add_layer(&sb, l, ARRAY_SIZE(l), true);
	assert_int_equal(plait_sbom_finish(&sb, &err), 0);
	_cleanup_free_ char *got = pkg_list(&sb);
	assert_string_equal(got, "apk busybox 1.36.1-r5\n"
				 "apk musl 1.2.4-r2\n"
				 "conda zlib 1.2.13\n"
				 "pypi pkg 0.1\n"
				 "pypi six 1.16.0\n");
	assert_string_equal(sb.rpm_db, "var/lib/rpm/rpmdb.sqlite");
	assert_string_equal(sb.pkgs[1].license, "MIT");

	struct plait_buf out = PLAIT_BUF_INIT;
	struct plait_sbom_doc d = { .name = "reg.example/app:1", .platform = "linux/amd64",
				    .digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111",
				    .base_ref = "alpine:3.19",
				    .base_digest = "sha256:2222222222222222222222222222222222222222222222222222222222222222",
				    .have_epoch = true, .epoch = 1700000000, .now = 1800000000 };
	assert_int_equal(plait_sbom_spdx(&sb, &d, &out, &err), 0);
	json_t *j = json_loadb(out.buf, out.len, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "spdxVersion")), "SPDX-2.3");
	json_t *ci = json_object_get(j, "creationInfo");
	assert_string_equal(json_string_value(json_object_get(ci, "created")), "2023-11-14T22:13:20Z");
	assert_non_null(strstr(json_string_value(json_object_get(ci, "comment")), "RPM"));
	size_t i;
	json_t *p;
	bool seen_musl = false, seen_six = false;
	json_array_foreach(json_object_get(j, "packages"), i, p)
	{
		const char *name = json_string_value(json_object_get(p, "name"));
		json_t *ref = json_array_get(json_object_get(p, "externalRefs"), 0);
		const char *purl = json_string_value(json_object_get(ref, "referenceLocator"));
		if (streq(name, "musl")) {
			assert_string_equal(purl, "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.19.1");
			assert_string_equal(json_string_value(json_object_get(p, "licenseDeclared")), "MIT");
			seen_musl = true;
		}
		if (streq(name, "six")) { /* the legacy License: is free text */
			assert_string_equal(json_string_value(json_object_get(p, "licenseDeclared")), "NOASSERTION");
			assert_string_equal(json_string_value(json_object_get(p, "licenseComments")), "declared: MIT");
			assert_string_equal(purl, "pkg:pypi/six@1.16.0");
			seen_six = true;
		}
		if (streq(name, "alpine:3.19"))
			assert_string_equal(json_string_value(json_object_get(p, "SPDXID")), "SPDXRef-BaseImage");
	}
	assert_true(seen_musl && seen_six);
	/* the same input, the same bytes */
	struct plait_buf again = PLAIT_BUF_INIT;
	assert_int_equal(plait_sbom_spdx(&sb, &d, &again, &err), 0);
	assert_string_equal(out.buf, again.buf);
	json_decref(j);
	plait_buf_release(&out);
	plait_buf_release(&again);
	plait_sbom_release(&sb);
}

static void test_sbom__a_corrupt_layer_is_an_error(void **state)
{
	(void)state;
	struct plait_sbom sb = { 0 };
	struct plait_error *err = NULL;
	FILE *f = tmpfile();
	fwrite("\x1f\x8b\x08\x00garbage-not-gzip", 1, 20, f);
	fflush(f);
	int fd = dup(fileno(f));
	fclose(f);
	lseek(fd, 0, SEEK_SET);
	assert_true(plait_sbom_add_layer(&sb, fd, "sha256:abc", &err) < 0);
	assert_non_null(strstr(err->msg, "sha256:abc"));
	plait_error_free(err);
	close(fd);
	plait_sbom_release(&sb);
}

static void write_file(const char *dir, const char *name, const char *content)
{
	_cleanup_free_ char *p = plait_path_join(dir, name);
	_cleanup_free_ char *d = xstrdup(p);
	*strrchr(d, '/') = '\0';
	assert_int_equal(plait_mkdir_p(d, 0755, NULL), 0);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

#define C1 "0123456789abcdef0123456789abcdef01234567"
#define C2 "89abcdef0123456789abcdef0123456789abcdef"

static void test_git__head_refs_worktrees_and_credentials(void **state)
{
	(void)state;
	_cleanup_free_ char *dir = test_mkdtemp("git");
	struct plait_git_source g;
	/* not a work tree */
	assert_int_equal(plait_git_source(dir, &g), 0);
	/* a loose ref, a context below the top, a remote with a token */
	_cleanup_free_ char *top = plait_path_join(dir, "repo");
	write_file(top, ".git/HEAD", "ref: refs/heads/main\n");
	write_file(top, ".git/refs/heads/main", C1 "\n");
	write_file(top, ".git/config", "[core]\n\tbare = false\n[remote \"upstream\"]\n\turl = git@example.com:u/x.git\n"
				       "[remote \"origin\"]\n\turl = https://oauth2:ghp_SECRET@github.com/ml/app.git\n");
	write_file(top, "ml/Dockerfile", "FROM scratch\n");
	_cleanup_free_ char *sub = plait_path_join(top, "ml");
	assert_int_equal(plait_git_source(sub, &g), 1);
	assert_string_equal(g.commit, C1);
	assert_string_equal(g.remote, "https://github.com/ml/app.git");
	assert_string_equal(g.subdir, "ml");
	plait_git_source_release(&g);
	/* packed refs */
	_cleanup_free_ char *loose = plait_path_join(top, ".git/refs/heads/main");
	unlink(loose);
	write_file(top, ".git/packed-refs", "# pack-refs with: peeled\n" C2 " refs/heads/main\n^" C1 "\n");
	assert_int_equal(plait_git_source(top, &g), 1);
	assert_string_equal(g.commit, C2);
	assert_string_equal(g.subdir, "");
	plait_git_source_release(&g);
	/* a linked work tree: .git is a file, refs live in the common dir */
	_cleanup_free_ char *wt = plait_path_join(dir, "wt");
	write_file(wt, ".git", "gitdir: ../repo/.git/worktrees/wt\n");
	write_file(top, ".git/worktrees/wt/HEAD", "ref: refs/heads/main\n");
	write_file(top, ".git/worktrees/wt/commondir", "../..\n");
	assert_int_equal(plait_git_source(wt, &g), 1);
	assert_string_equal(g.commit, C2);
	assert_string_equal(g.remote, "https://github.com/ml/app.git");
	plait_git_source_release(&g);
	/* an unborn branch: nothing to name */
	write_file(top, ".git/HEAD", "ref: refs/heads/none\n");
	assert_int_equal(plait_git_source(top, &g), 0);
	plait_rm_rf(dir);
}

static void test_provenance__redacts_and_clamps(void **state)
{
	(void)state;
	struct plait_build_material mats[] = {
		{ .ref = "debian:12", .resolved = "docker.io/library/debian@sha256:aa", .platform = "linux/arm64",
		  .digest = "sha256:aaaa" },
		{ .ref = "https://example.com/model.bin", .digest = "sha256:bbbb" },
	};
	struct plait_build_step_record steps[] = { { .stage = "0", .text = "FROM debian:12" },
						   { .stage = "0", .text = "RUN make", .cached = true } };
	struct plait_build_result res = { .materials = mats, .n_materials = 2, .base_material = 1,
					  .step_records = steps, .n_step_records = 2,
					  .dockerfile_digest = "sha256:cccc" };
	const char *args[] = { "HF_TOKEN=hf_value", "PYTHON_VERSION=3.11", "DB_PASSWORD=pw", "TOKENIZERS_PARALLELISM=false",
			       "PYTHON_VERSION=3.12", NULL };
	const char *secrets[] = { "netrc", NULL };
	const char *tags[] = { "reg.example:5000/ml/train:1.0-cpu", NULL };
	struct plait_provenance p = { .subjects = tags, .subject_digest = "sha256:dddd", .max = true,
				      .platform = "linux/arm64", .variant = "cpu", .build_args = args,
				      .secret_ids = secrets, .dockerfile = NULL, .context_dir = ".",
				      .build_platform = "linux/amd64", .builder = "qemu", .have_epoch = true,
				      .epoch = 1700000000, .res = &res, .started = 1800000000, .finished = 1800000100 };
	struct plait_buf out = PLAIT_BUF_INIT;
	struct plait_error *err = NULL;
	assert_int_equal(plait_provenance_json(&p, &out, &err), 0);
	assert_null(strstr(out.buf, "hf_value"));
	assert_null(strstr(out.buf, "\"pw\""));
	json_t *j = json_loadb(out.buf, out.len, 0, NULL);
	assert_non_null(j);
	json_t *bd = json_object_get(json_object_get(j, "predicate"), "buildDefinition");
	json_t *req = json_object_get(json_object_get(bd, "externalParameters"), "request");
	json_t *a = json_object_get(req, "args");
	assert_string_equal(json_string_value(json_object_get(a, "PYTHON_VERSION")), "3.12"); /* the variant's wins */
	assert_string_equal(json_string_value(json_object_get(a, "TOKENIZERS_PARALLELISM")), "false");
	assert_int_equal(json_object_size(a), 2);
	char *red = json_dumps(json_object_get(req, "redactedArgs"), JSON_COMPACT);
	assert_string_equal(red, "[\"HF_TOKEN\",\"DB_PASSWORD\"]");
	free(red);
	json_t *deps = json_object_get(bd, "resolvedDependencies");
	assert_int_equal(json_array_size(deps), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(deps, 0), "uri")),
			    "pkg:docker/debian@12?platform=linux%2Farm64");
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(deps, 0), "digest"), "sha256")),
			    "aaaa");
	assert_string_equal(json_string_value(json_object_get(json_array_get(deps, 1), "uri")),
			    "https://example.com/model.bin");
	assert_int_equal(json_array_size(json_object_get(json_object_get(bd, "internalParameters"), "steps")), 2);
	json_t *md = json_object_get(json_object_get(json_object_get(j, "predicate"), "runDetails"), "metadata");
	assert_string_equal(json_string_value(json_object_get(md, "startedOn")), "2023-11-14T22:13:20Z");
	assert_string_equal(json_string_value(json_object_get(md, "finishedOn")), "2023-11-14T22:13:20Z");
	json_t *subj = json_array_get(json_object_get(j, "subject"), 0);
	assert_string_equal(json_string_value(json_object_get(subj, "name")),
			    "pkg:docker/reg.example:5000/ml/train@1.0-cpu?platform=linux%2Farm64");
	json_decref(j);
	/* mode=min: no steps */
	p.max = false;
	assert_int_equal(plait_provenance_json(&p, &out, &err), 0);
	assert_null(strstr(out.buf, "\"steps\""));
	plait_buf_release(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sbom__layers_stack_as_a_runtime_does),
		cmocka_unit_test(test_sbom__apk_conda_egg_info_rpm),
		cmocka_unit_test(test_sbom__a_corrupt_layer_is_an_error),
		cmocka_unit_test(test_git__head_refs_worktrees_and_credentials),
		cmocka_unit_test(test_provenance__redacts_and_clamps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
