/* tests/unit/test_registries_conf.c - registries.conf and --registry-mirror
 * (registry/registries_conf.h): the keys read, prefix matching, the order a
 * pull tries its sources in, blocked and insecure entries, which files are
 * read and how drop-ins override. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "asserts.h"
#include "tmpdir.h"
#include "core/buf.h"
#include "core/fs.h"
#include "core/strv.h"
#include "registry/registries_conf.h"

#include "core/banned.h"

#define D64 "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static struct plait_registries_conf *conf_of(const char *text)
{
	struct plait_registries_conf *c = plait_registries_conf_new();
	struct plait_error *err = NULL;
	if (plait_registries_conf_load_text(c, "r.conf", text, strlen(text), &err) < 0)
		fail_msg("refused: %s\n--- input:\n%s", err->msg, text);
	return c;
}

static void assert_conf_refused(const char *text, const char *want)
{
	struct plait_registries_conf *c = plait_registries_conf_new();
	struct plait_error *err = NULL;
	if (plait_registries_conf_load_text(c, "r.conf", text, strlen(text), &err) >= 0)
		fail_msg("accepted, want '%s'\n--- input:\n%s", want, text);
	if (!strstr(err->msg, want))
		fail_msg("message '%s'\n does not contain '%s'\n--- input:\n%s", err->msg, want, text);
	plait_error_free(err);
	plait_registries_conf_free(c);
}

/* The sources of a pull of reference, as "ref[ (mirror WHERE)]" joined by " | ". */
static char *sources(const struct plait_registries_conf *c, const char *reference)
{
	struct plait_ref ref = { 0 };
	assert_int_equal(plait_ref_parse(reference, &ref, NULL), 0);
	struct plait_pull_source *s = NULL;
	size_t n = 0;
	struct plait_error *err = NULL;
	if (plait_registries_conf_pull_sources(c, &ref, &s, &n, &err) < 0)
		fail_msg("%s: %s", reference, err->msg);
	struct plait_buf b = PLAIT_BUF_INIT;
	for (size_t i = 0; i < n; i++) {
		char *f = plait_ref_format(&s[i].ref);
		plait_buf_addf(&b, "%s%s", i ? " | " : "", f);
		if (s[i].mirror)
			plait_buf_addf(&b, " (mirror %s)", s[i].where);
		free(f);
	}
	assert_false(s[n - 1].mirror); /* the location always comes last */
	plait_pull_sources_free(s, n);
	plait_ref_release(&ref);
	return plait_buf_detach(&b, NULL);
}

#define ASSERT_SOURCES(c, reference, want)                                                   \
	do {                                                                                  \
		char *got_ = sources(c, reference);                                           \
		if (strcmp(got_, want) != 0)                                                  \
			fail_msg("pull of %s:\n got  %s\n want %s", reference, got_, want);   \
		free(got_);                                                                   \
	} while (0)

/* The man page's example, word for word in meaning. */
static const char man_example[] = "unqualified-search-registries = [\"example.com\"]\n"
				  "\n"
				  "[[registry]]\n"
				  "prefix = \"example.com/foo\"\n"
				  "insecure = false\n"
				  "blocked = false\n"
				  "location = \"internal-registry-for-example.com/bar\"\n"
				  "\n"
				  "[[registry.mirror]]\n"
				  "location = \"example-mirror-0.local/mirror-for-foo\"\n"
				  "\n"
				  "[[registry.mirror]]\n"
				  "location = \"example-mirror-1.local/mirrors/foo\"\n"
				  "insecure = true\n"
				  "\n"
				  "[[registry]]\n"
				  "location = \"registry.com\"\n"
				  "\n"
				  "[[registry.mirror]]\n"
				  "location = \"mirror.registry.com\"\n";

static void test_registries_conf__reads_the_man_page_example(void **state)
{
	(void)state;
	struct plait_registries_conf *c = conf_of(man_example);
	assert_strv(c->search, "example.com", NULL);
	assert_int_equal(c->n_regs, 2);
	const struct plait_conf_registry *r = &c->regs[0];
	assert_string_equal(r->prefix, "example.com/foo");
	assert_string_equal(r->location, "internal-registry-for-example.com/bar");
	assert_false(r->insecure);
	assert_false(r->blocked);
	assert_string_equal(r->where, "r.conf:3");
	assert_int_equal(r->n_mirrors, 2);
	assert_string_equal(r->mirrors[0].location, "example-mirror-0.local/mirror-for-foo");
	assert_false(r->mirrors[0].insecure);
	assert_string_equal(r->mirrors[0].where, "r.conf:9");
	assert_true(r->mirrors[1].insecure);
	/* a prefix defaults to the location */
	assert_string_equal(c->regs[1].prefix, "registry.com");
	assert_strv(c->files, "r.conf", NULL);

	ASSERT_SOURCES(c, "example.com/foo/image:latest",
		       "example-mirror-0.local/mirror-for-foo/image:latest (mirror r.conf:9) | "
		       "example-mirror-1.local/mirrors/foo/image:latest (mirror r.conf:12) | "
		       "internal-registry-for-example.com/bar/image:latest");
	/* a mirror belongs to its own [[registry]] only */
	ASSERT_SOURCES(c, "registry.com/image:latest",
		       "mirror.registry.com/image:latest (mirror r.conf:19) | registry.com/image:latest");
	ASSERT_SOURCES(c, "example.com/other/image:1", "example.com/other/image:1");
	plait_registries_conf_free(c);
}

static void test_registries_conf__longest_prefix_on_component_boundaries(void **state)
{
	(void)state;
	struct plait_registries_conf *c = conf_of("[[registry]]\n"
						  "location = \"example.com\"\n"
						  "[[registry]]\n"
						  "prefix = \"example.com/foo\"\n"
						  "location = \"a.local/foo\"\n"
						  "[[registry]]\n"
						  "prefix = \"example.com/foo/bar:v1\"\n"
						  "location = \"b.local/pinned:v9\"\n"
						  "[[registry]]\n"
						  "prefix = \"*.example.org\"\n"
						  "insecure = true\n"
						  "[[registry]]\n"
						  "prefix = \"index.docker.io/library\"\n"
						  "location = \"hub.local/lib\"\n");
	static const struct {
		const char *ref, *prefix;
	} cases[] = {
	    {"example.com/x", "example.com"},
	    {"example.com/foo", "example.com/foo"},
	    {"example.com/foo:1", "example.com/foo"},
	    {"example.com/foo@" D64, "example.com/foo"},
	    {"example.com/foo/bar", "example.com/foo"},
	    {"example.com/foobar", "example.com"},  /* not "example.com/foo": a component boundary */
	    {"example.com/foo/bar:v1", "example.com/foo/bar:v1"},
	    {"example.com/foo/bar:v10", "example.com/foo"},
	    {"example.com:5000/x", NULL},           /* another port is another registry */
	    {"a.example.org/x", "*.example.org"},
	    {"a.b.example.org:443/x", "*.example.org"},
	    {"example.org/x", NULL},                /* the wildcard needs a subdomain */
	    {"busybox", "docker.io/library"},      /* Docker Hub's aliases are normalised */
	    {"docker.io/user/app", NULL},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct plait_ref ref = { 0 };
		assert_int_equal(plait_ref_parse(cases[i].ref, &ref, NULL), 0);
		char *s = plait_ref_format(&ref);
		const struct plait_conf_registry *e = plait_registries_conf_find(c, s);
		const char *got = e ? e->prefix : NULL;
		if (!streq_ptr(got, cases[i].prefix))
			fail_msg("%s: matched '%s', want '%s'", s, got ? got : "(none)",
				 cases[i].prefix ? cases[i].prefix : "(none)");
		free(s);
		plait_ref_release(&ref);
	}
	/* the location replaces exactly the prefix */
	ASSERT_SOURCES(c, "example.com/foo/sub/img:2", "a.local/foo/sub/img:2");
	ASSERT_SOURCES(c, "example.com/foo/bar:v1", "b.local/pinned:v9");
	ASSERT_SOURCES(c, "busybox:1.36", "hub.local/lib/busybox:1.36");
	/* a wildcard entry keeps the reference */
	ASSERT_SOURCES(c, "x.example.org/a/b:c", "x.example.org/a/b:c");
	assert_true(plait_registries_conf_host_insecure(c, "x.example.org"));
	assert_true(plait_registries_conf_host_insecure(c, "x.example.org:5000"));
	assert_false(plait_registries_conf_host_insecure(c, "example.org"));
	plait_registries_conf_free(c);
}

static void test_registries_conf__registry_mirror_flag_is_for_docker_hub(void **state)
{
	(void)state;
	struct plait_registries_conf *c = conf_of("[[registry]]\n"
						  "prefix = \"docker.io\"\n"
						  "location = \"docker.io\"\n"
						  "[[registry.mirror]]\n"
						  "location = \"conf-mirror.local:5000\"\n"
						  "insecure = true\n");
	struct plait_error *err = NULL;
	assert_int_equal(plait_registries_conf_add_docker_mirror(c, "127.0.0.1:5001", &err), 0);
	assert_int_equal(plait_registries_conf_add_docker_mirror(c, "http://m2.local:5002/", &err), 0);
	/* the command line comes first, in order, then registries.conf, then Docker Hub */
	ASSERT_SOURCES(c, "busybox:1.36",
		       "127.0.0.1:5001/library/busybox:1.36 (mirror --registry-mirror) | "
		       "m2.local:5002/library/busybox:1.36 (mirror --registry-mirror) | "
		       "conf-mirror.local:5000/library/busybox:1.36 (mirror r.conf:4) | "
		       "docker.io/library/busybox:1.36");
	ASSERT_SOURCES(c, "user/app@" D64,
		       "127.0.0.1:5001/user/app@" D64 " (mirror --registry-mirror) | "
		       "m2.local:5002/user/app@" D64 " (mirror --registry-mirror) | "
		       "conf-mirror.local:5000/user/app@" D64 " (mirror r.conf:4) | docker.io/user/app@" D64);
	/* other registries never see docker.io's mirrors */
	ASSERT_SOURCES(c, "quay.io/x/y:1", "quay.io/x/y:1");
	/* http:// and insecure = true allow plain HTTP for that host only */
	assert_true(plait_registries_conf_host_insecure(c, "m2.local:5002"));
	assert_true(plait_registries_conf_host_insecure(c, "conf-mirror.local:5000"));
	assert_false(plait_registries_conf_host_insecure(c, "127.0.0.1:5001"));
	assert_false(plait_registries_conf_host_insecure(c, "registry-1.docker.io"));

	static const char *const bad[] = { "", "https://", "host/path", "a b", "u@host", "http://h/x" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (plait_registries_conf_add_docker_mirror(c, bad[i], &err) != -PLAIT_E_USAGE)
			fail_msg("--registry-mirror '%s' accepted", bad[i]);
		assert_contains(err->msg, "give a registry host[:port]");
		plait_error_clear(&err);
	}
	plait_registries_conf_free(c);

	/* without any registries.conf entry */
	c = plait_registries_conf_new();
	assert_int_equal(plait_registries_conf_add_docker_mirror(c, "https://m.local", &err), 0);
	ASSERT_SOURCES(c, "busybox", "m.local/library/busybox (mirror --registry-mirror) | docker.io/library/busybox");
	plait_registries_conf_free(c);
	/* and with no configuration at all: the reference alone */
	ASSERT_SOURCES(NULL, "busybox:1", "docker.io/library/busybox:1");
}

static void test_registries_conf__digest_only_and_tag_only_mirrors(void **state)
{
	(void)state;
	struct plait_registries_conf *c = conf_of("[[registry]]\n"
						  "location = \"r.io\"\n"
						  "[[registry.mirror]]\n"
						  "location = \"digests.local\"\n"
						  "pull-from-mirror = \"digest-only\"\n"
						  "[[registry.mirror]]\n"
						  "location = \"tags.local\"\n"
						  "pull-from-mirror = \"tag-only\"\n"
						  "[[registry.mirror]]\n"
						  "location = \"all.local\"\n"
						  "pull-from-mirror = \"all\"\n"
						  "[[registry]]\n"
						  "location = \"d.io\"\n"
						  "mirror-by-digest-only = true\n"
						  "[[registry.mirror]]\n"
						  "location = \"dm.local\"\n");
	ASSERT_SOURCES(c, "r.io/a:1", "tags.local/a:1 (mirror r.conf:6) | all.local/a:1 (mirror r.conf:9) | r.io/a:1");
	ASSERT_SOURCES(c, "r.io/a@" D64,
		       "digests.local/a@" D64 " (mirror r.conf:3) | all.local/a@" D64 " (mirror r.conf:9) | r.io/a@" D64);
	ASSERT_SOURCES(c, "d.io/a:1", "d.io/a:1");
	ASSERT_SOURCES(c, "d.io/a@" D64, "dm.local/a@" D64 " (mirror r.conf:15) | d.io/a@" D64);
	plait_registries_conf_free(c);
}

static void test_registries_conf__blocked_refuses_pull_and_push(void **state)
{
	(void)state;
	struct plait_registries_conf *c = conf_of("# blocked\n"
						  "[[registry]]\n"
						  "prefix = \"docker.io\"\n"
						  "location = \"docker.io\"\n"
						  "blocked = true\n"
						  "[[registry]]\n"
						  "prefix = \"docker.io/library/busybox\"\n"
						  "location = \"docker.io/library/busybox\"\n");
	struct plait_ref ref = { 0 };
	struct plait_error *err = NULL;
	struct plait_pull_source *s = NULL;
	size_t n = 0;
	assert_int_equal(plait_ref_parse("alpine:3", &ref, NULL), 0);
	assert_int_equal(plait_registries_conf_pull_sources(c, &ref, &s, &n, &err), -PLAIT_E_GENERIC);
	assert_string_equal(err->msg, "pull of docker.io/library/alpine:3 is blocked by r.conf:2 ([[registry]] "
				      "prefix 'docker.io' has blocked = true): use another registry, or remove that "
				      "entry");
	plait_error_clear(&err);
	assert_int_equal(plait_registries_conf_check_push(c, &ref, &err), -PLAIT_E_GENERIC);
	assert_contains(err->msg, "push to docker.io/library/alpine:3 is blocked by r.conf:2");
	plait_error_clear(&err);
	plait_ref_release(&ref);
	/* a longer prefix that is not blocked wins */
	ASSERT_SOURCES(c, "busybox:1", "docker.io/library/busybox:1");
	assert_int_equal(plait_ref_parse("busybox:1", &ref, NULL), 0);
	assert_int_equal(plait_registries_conf_check_push(c, &ref, &err), 0);
	assert_int_equal(plait_registries_conf_check_push(NULL, &ref, &err), 0);
	plait_ref_release(&ref);
	plait_registries_conf_free(c);
}

static void test_registries_conf__refuses_bad_entries_with_their_position(void **state)
{
	(void)state;
	assert_conf_refused("[[registry]]\nlocation = \"a\"\nmirrors = []\n",
			    "r.conf:3:1: unknown key 'mirrors' in [[registry]] (known: prefix, location, insecure, blocked, "
			    "mirror-by-digest-only, [[registry.mirror]])");
	assert_conf_refused("[[registry]]\nlocation = \"a\"\n[[registry.mirror]]\nlocation = \"m\"\n  insecur = true\n",
			    "r.conf:5:3: unknown key 'insecur' in [[registry.mirror]]");
	assert_conf_refused("[[registry]]\nlocation = \"a\"\ninsecure = \"yes\"\n",
			    "r.conf:3:1: 'insecure' must be a boolean, not a string");
	assert_conf_refused("[[registry]]\nlocation = [\"a\"]\n", "r.conf:2:1: 'location' must be a string, not a array");
	assert_conf_refused("\n[[registry]]\ninsecure = true\n", "r.conf:2:1: [[registry]] needs a location or a prefix");
	assert_conf_refused("[[registry]]\nlocation = \"a\"\n[[registry.mirror]]\ninsecure = true\n",
			    "r.conf:3:1: [[registry.mirror]] needs a location");
	assert_conf_refused("[[registry]]\nlocation = \"https://a.io\"\n",
			    "r.conf:2:1: location 'https://a.io': it must not have a scheme");
	assert_conf_refused("[[registry]]\nprefix = \"*.a.io\"\nlocation = \"b.io\"\n",
			    "r.conf:1:1: [[registry]] with the wildcard prefix '*.a.io' cannot have a location");
	assert_conf_refused("[[registry]]\nprefix = \"*.a.io/x\"\n", "r.conf:2:1: prefix '*.a.io/x': a wildcard prefix is");
	assert_conf_refused("[[registry]]\nprefix = \"a.*.io\"\n", "r.conf:2:1: prefix 'a.*.io': '*' is allowed only");
	assert_conf_refused("[[registry]]\nlocation = \"a\"\n[[registry.mirror]]\nlocation = \"m\"\n"
			    "pull-from-mirror = \"sometimes\"\n",
			    "r.conf:5:1: pull-from-mirror 'sometimes': use 'all', 'digest-only' or 'tag-only'");
	assert_conf_refused("[[registry]]\nlocation = \"a\"\nmirror-by-digest-only = true\n[[registry.mirror]]\n"
			    "location = \"m\"\npull-from-mirror = \"tag-only\"\n",
			    "r.conf:4:1: pull-from-mirror is not allowed when the [[registry]] sets mirror-by-digest-only");
	assert_conf_refused("[[registry]]\nlocation = \"a.io\"\n\n[[registry]]\nprefix = \"a.io\"\nlocation = \"b.io\"\n",
			    "r.conf:4:1: prefix 'a.io' is defined twice (first at r.conf:1)");
	assert_conf_refused("[registry]\nlocation = \"a\"\n", "r.conf:1:1: [registry] must be an array of tables");
	assert_conf_refused("unqualified-search-registries = \"a\"\n",
			    "r.conf:1:1: 'unqualified-search-registries' must be a array of strings, not a string");
	assert_conf_refused("x = true\n", "r.conf:1:1: unknown key 'x' (plait reads unqualified-search-registries");
	assert_conf_refused("[registries.search]\nregistries = [\"a\"]\n[[registry]]\nlocation = \"b\"\n",
			    "r.conf:1:1: the version 1 [registries.*] tables cannot be mixed with [[registry]] (line 3)");
	/* TOML errors come through unchanged */
	assert_conf_refused("[[registry]]\nlocation = 5000\n", "r.conf:2:12: numbers and dates are not supported");
	/* the keys other tools read are accepted */
	struct plait_registries_conf *c = conf_of("credential-helpers = [\"containers-auth.json\"]\n"
						  "short-name-mode = \"enforcing\"\n"
						  "[aliases]\n"
						  "  \"fedora\" = \"registry.fedoraproject.org/fedora\"\n");
	assert_int_equal(c->n_regs, 0);
	plait_registries_conf_free(c);
}

static void test_registries_conf__version_1_format(void **state)
{
	(void)state;
	struct plait_registries_conf *c = conf_of("[registries.search]\n"
						  "registries = ['registry1.com', 'registry2.com']\n"
						  "[registries.insecure]\n"
						  "registries = ['registry3.com', 'both.io']\n"
						  "[registries.block]\n"
						  "registries = ['registry.untrusted.com', 'both.io']\n");
	assert_strv(c->search, "registry1.com", "registry2.com", NULL);
	assert_true(plait_registries_conf_host_insecure(c, "registry3.com"));
	assert_true(plait_registries_conf_host_insecure(c, "both.io"));
	assert_false(plait_registries_conf_host_insecure(c, "registry1.com"));
	struct plait_ref ref = { 0 };
	struct plait_error *err = NULL;
	assert_int_equal(plait_ref_parse("registry.untrusted.com/x:1", &ref, NULL), 0);
	assert_int_equal(plait_registries_conf_check_push(c, &ref, &err), -PLAIT_E_GENERIC);
	assert_contains(err->msg, "is blocked by r.conf:6");
	plait_error_clear(&err);
	plait_ref_release(&ref);
	ASSERT_SOURCES(c, "registry3.com/x:1", "registry3.com/x:1");
	plait_registries_conf_free(c);
}

static void write_file(const char *dir, const char *name, const char *text)
{
	struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/%s", dir, name);
	char *parent = xstrdup(p.buf);
	*strrchr(parent, '/') = '\0';
	assert_int_equal(plait_mkdir_p(parent, 0755, NULL), 0);
	free(parent);
	FILE *f = fopen(p.buf, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	plait_buf_release(&p);
}

static void test_registries_conf__files_and_drop_ins(void **state)
{
	(void)state;
	char *root = test_mkdtemp("regconf");
	struct plait_buf sys = PLAIT_BUF_INIT, home = PLAIT_BUF_INIT;
	plait_buf_addf(&sys, "%s/etc", root);
	plait_buf_addf(&home, "%s/home", root);
	write_file(sys.buf, "registries.conf",
		   "unqualified-search-registries = ['sys.io']\n"
		   "[[registry]]\nlocation = 'a.io'\n[[registry.mirror]]\nlocation = 'sys-mirror.local'\n"
		   "[[registry]]\nlocation = 'b.io'\nblocked = true\n");
	/* byte order: 10 before 20; the later one replaces a.io's entry whole */
	write_file(sys.buf, "registries.conf.d/20-late.conf", "[[registry]]\nlocation = 'a.io'\n"
							      "[[registry.mirror]]\nlocation = 'late.local'\n");
	write_file(sys.buf, "registries.conf.d/10-early.conf", "unqualified-search-registries = ['early.io']\n"
							       "[[registry]]\nlocation = 'a.io'\n"
							       "[[registry.mirror]]\nlocation = 'early.local'\n");
	write_file(sys.buf, "registries.conf.d/ignored.txt", "this is not TOML\n");
	write_file(home.buf, ".config/containers/registries.conf.d/50-user.conf",
		   "[[registry]]\nlocation = 'c.io'\ninsecure = true\n");

	struct plait_registries_conf *c = plait_registries_conf_new();
	struct plait_error *err = NULL;
	if (plait_registries_conf_load_default(c, sys.buf, home.buf, &err) < 0)
		fail_msg("%s", err->msg);
	assert_int_equal(plait_strv_length((const char *const *)c->files), 4);
	assert_contains(c->files[1], "10-early.conf");
	assert_contains(c->files[2], "20-late.conf");
	assert_contains(c->files[3], "50-user.conf");
	assert_strv(c->search, "early.io", NULL);
	char *got = sources(c, "a.io/x:1");
	assert_contains(got, "late.local/x:1 (mirror ");
	assert_contains(got, "20-late.conf:3) | a.io/x:1");
	free(got);
	assert_true(plait_registries_conf_host_insecure(c, "c.io"));
	assert_non_null(plait_registries_conf_find(c, "b.io/x"));
	assert_true(plait_registries_conf_find(c, "b.io/x")->blocked);
	plait_registries_conf_free(c);

	/* the user's own file replaces the system's, and the system's drop-ins with it */
	write_file(home.buf, ".config/containers/registries.conf", "[[registry]]\nlocation = 'u.io'\n");
	c = plait_registries_conf_new();
	assert_int_equal(plait_registries_conf_load_default(c, sys.buf, home.buf, &err), 0);
	assert_int_equal(plait_strv_length((const char *const *)c->files), 2);
	assert_null(plait_registries_conf_find(c, "a.io/x"));
	assert_null(plait_registries_conf_find(c, "b.io/x"));
	assert_non_null(plait_registries_conf_find(c, "u.io/x"));
	assert_non_null(plait_registries_conf_find(c, "c.io/x"));
	plait_registries_conf_free(c);

	/* nothing there at all: no error, no entries */
	struct plait_buf none = PLAIT_BUF_INIT;
	plait_buf_addf(&none, "%s/nothing", root);
	c = plait_registries_conf_new();
	assert_int_equal(plait_registries_conf_load_default(c, none.buf, NULL, &err), 0);
	assert_int_equal(c->n_regs, 0);
	/* an explicit file must exist */
	assert_int_equal(plait_registries_conf_load_file(c, none.buf, true, &err), -PLAIT_E_IO);
	assert_contains(err->msg, "read registries configuration ");
	assert_contains(err->msg, "nothing: No such file or directory");
	plait_error_clear(&err);
	plait_registries_conf_free(c);

	/* an error in a drop-in names it */
	write_file(sys.buf, "registries.conf.d/30-bad.conf", "[[registry]]\nlocation = 'x'\nblocked = 1\n");
	struct plait_buf uf = PLAIT_BUF_INIT;
	plait_buf_addf(&uf, "%s/.config/containers/registries.conf", home.buf);
	unlink(uf.buf);
	c = plait_registries_conf_new();
	assert_true(plait_registries_conf_load_default(c, sys.buf, home.buf, &err) < 0);
	assert_contains(err->msg, "registries.conf.d/30-bad.conf:3:11: numbers and dates are not supported");
	plait_error_clear(&err);
	plait_registries_conf_free(c);

	plait_buf_release(&uf);
	plait_buf_release(&none);
	plait_rm_rf(root);
	free(root);
	plait_buf_release(&sys);
	plait_buf_release(&home);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_registries_conf__reads_the_man_page_example),
	    cmocka_unit_test(test_registries_conf__longest_prefix_on_component_boundaries),
	    cmocka_unit_test(test_registries_conf__registry_mirror_flag_is_for_docker_hub),
	    cmocka_unit_test(test_registries_conf__digest_only_and_tag_only_mirrors),
	    cmocka_unit_test(test_registries_conf__blocked_refuses_pull_and_push),
	    cmocka_unit_test(test_registries_conf__refuses_bad_entries_with_their_position),
	    cmocka_unit_test(test_registries_conf__version_1_format),
	    cmocka_unit_test(test_registries_conf__files_and_drop_ins),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
