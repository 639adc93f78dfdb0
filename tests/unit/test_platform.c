/* tests/unit/test_platform.c - platform strings (core/platform.h): parse,
 * normalise, format, match, uname names, select index entries. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>

#include "asserts.h"
#include "rm_tree.h"
#include "core/digest.h"
#include "core/endpoint.h"
#include "core/oci.h"
#include "core/platform.h"
#include "core/store.h"

#include "core/banned.h"

/* Parse s and return its canonical form; fails the test on error. */
static char *parse_format(const char *s)
{
	_cleanup_error_ struct plait_error *err = NULL;
	struct plait_platform p;
	int r = plait_platform_parse(s, &p, &err);
	if (r < 0)
		fail_msg("parse '%s' failed: %s", s, err ? err->msg : "(no message)");
	char *f = plait_platform_format(&p);
	plait_platform_release(&p);
	return f;
}

/* Parse s expecting failure; returns the message (caller frees). */
static char *parse_error(const char *s, int want_code)
{
	struct plait_error *err = NULL;
	struct plait_platform p;
	int r = plait_platform_parse(s, &p, &err);
	if (r >= 0) {
		char *f = plait_platform_format(&p);
		plait_platform_release(&p);
		fail_msg("parse '%s' succeeded as '%s', expected an error", s, f);
	}
	assert_int_equal(r, -want_code);
	assert_non_null(err);
	assert_int_equal(err->code, want_code);
	char *msg = xstrdup(err->msg);
	plait_error_free(err);
	return msg;
}

static void test_platform__parse_normalises_every_alias(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		const char *want;
	} cases[] = {
	    {"linux/amd64", "linux/amd64"},
	    {"amd64", "linux/amd64"},
	    {"x86_64", "linux/amd64"},
	    {"x86-64", "linux/amd64"},
	    {"linux/x86_64", "linux/amd64"},
	    {"linux/amd64/v1", "linux/amd64"},
	    {"linux/amd64/v2", "linux/amd64/v2"},
	    {"linux/amd64/v3", "linux/amd64/v3"},
	    {"linux/amd64/v4", "linux/amd64/v4"},
	    {"amd64/v3", "linux/amd64/v3"},
	    {"linux/arm64", "linux/arm64"},
	    {"linux/arm64/v8", "linux/arm64"},
	    {"arm64/v8", "linux/arm64"},
	    {"aarch64", "linux/arm64"},
	    {"linux/aarch64", "linux/arm64"},
	    {"armv8", "linux/arm64"},
	    {"arm64v8", "linux/arm64"},
	    {"linux/arm64/v8.2", "linux/arm64/v8.2"},
	    {"linux/arm", "linux/arm/v7"},
	    {"arm", "linux/arm/v7"},
	    {"linux/arm/v7", "linux/arm/v7"},
	    {"linux/arm/v6", "linux/arm/v6"},
	    {"linux/arm/v5", "linux/arm/v5"},
	    {"armhf", "linux/arm/v7"},
	    {"linux/armhf", "linux/arm/v7"},
	    {"armel", "linux/arm/v5"},
	    {"armv7", "linux/arm/v7"},
	    {"armv7l", "linux/arm/v7"},
	    {"armv7hl", "linux/arm/v7"},
	    {"arm32v7", "linux/arm/v7"},
	    {"armv8l", "linux/arm/v7"},
	    {"armv6", "linux/arm/v6"},
	    {"armv6l", "linux/arm/v6"},
	    {"arm32v6", "linux/arm/v6"},
	    {"armv5", "linux/arm/v5"},
	    {"armv5l", "linux/arm/v5"},
	    {"armv5tel", "linux/arm/v5"},
	    {"arm32v5", "linux/arm/v5"},
	    {"linux/armv6l/v6", "linux/arm/v6"},
	    {"386", "linux/386"},
	    {"i386", "linux/386"},
	    {"i486", "linux/386"},
	    {"i586", "linux/386"},
	    {"i686", "linux/386"},
	    {"x86", "linux/386"},
	    {"ppc64le", "linux/ppc64le"},
	    {"ppc64el", "linux/ppc64le"},
	    {"powerpc64le", "linux/ppc64le"},
	    {"s390x", "linux/s390x"},
	    {"riscv64", "linux/riscv64"},
	    {"mips64le", "linux/mips64le"},
	    {"mips64el", "linux/mips64le"},
	    {"loong64", "linux/loong64"},
	    {"loongarch64", "linux/loong64"},
	    {"Linux/AMD64", "linux/amd64"},
	    {"LINUX/ARM/V6", "linux/arm/v6"},
	    {"windows/amd64", "windows/amd64"},
	    {"darwin/arm64", "darwin/arm64"},
	    {"freebsd/amd64", "freebsd/amd64"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_free_ char *got = parse_format(cases[i].in);
		if (!streq(got, cases[i].want))
			fail_msg("parse '%s': got '%s', want '%s'", cases[i].in, got,
				 cases[i].want);
	}
}

static void test_platform__parse_fills_fields(void **state)
{
	(void)state;
	struct plait_platform p;
	assert_int_equal(plait_platform_parse("linux/arm/v6", &p, NULL), 0);
	assert_string_equal(p.os, "linux");
	assert_string_equal(p.architecture, "arm");
	assert_string_equal(p.variant, "v6");
	assert_null(p.os_version);
	assert_null(p.os_features);
	plait_platform_release(&p);

	assert_int_equal(plait_platform_parse("linux/arm64/v8", &p, NULL), 0);
	assert_null(p.variant);
	plait_platform_release(&p);
}

static void test_platform__parse_rejects_unknown_architecture(void **state)
{
	(void)state;
	_cleanup_free_ char *msg = parse_error("linux/foo", PLAIT_E_USAGE);
	assert_string_equal(msg, "unknown platform 'linux/foo': unknown architecture 'foo'; known: "
				 "amd64, arm64, arm/v7, arm/v6, arm/v5, 386, ppc64le, s390x, "
				 "riscv64, mips64le, loong64");
	free(msg);
	msg = parse_error("sparc64", PLAIT_E_USAGE);
	assert_contains(msg, "unknown architecture 'sparc64'");
}

static void test_platform__parse_rejects_unknown_os(void **state)
{
	(void)state;
	_cleanup_free_ char *msg = parse_error("plan9/amd64", PLAIT_E_USAGE);
	assert_string_equal(msg, "unknown platform 'plan9/amd64': unknown operating system "
				 "'plan9'; known: linux, windows, darwin, freebsd");
}

static void test_platform__parse_rejects_empty(void **state)
{
	(void)state;
	_cleanup_free_ char *msg = parse_error("", PLAIT_E_USAGE);
	assert_contains(msg, "invalid platform '': empty");
	struct plait_platform p;
	assert_int_equal(plait_platform_parse(NULL, &p, NULL), -PLAIT_E_USAGE);
}

static void test_platform__parse_rejects_bad_shape(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		const char *want;
	} cases[] = {
	    {"linux/arm/v7/extra", "too many '/'"},
	    {"linux//amd64", "empty component"},
	    {"linux/", "empty component"},
	    {"/amd64", "empty component"},
	    {"linux", "missing architecture"},
	    {"linux/arm/v9", "unknown variant 'v9' for arm; known: v5, v6, v7, v8"},
	    {"linux/amd64/v5", "unknown variant 'v5' for amd64"},
	    {"linux/s390x/v2", "unknown variant 'v2' for s390x; it takes none"},
	    {"linux/armhf/v6", "'armhf' means arm/v7, not variant 'v6'"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_free_ char *msg = parse_error(cases[i].in, PLAIT_E_USAGE);
		assert_contains(msg, cases[i].want);
		/* Every message quotes what the user typed. */
		_cleanup_free_ char *quoted = NULL;
		struct plait_buf b = PLAIT_BUF_INIT;
		plait_buf_addf(&b, "'%s'", cases[i].in);
		quoted = plait_buf_detach(&b, NULL);
		assert_contains(msg, quoted);
	}
}

static void test_platform__normalise_in_place(void **state)
{
	(void)state;
	static const struct {
		const char *os, *arch, *variant;
		const char *want;
	} cases[] = {
	    {"Linux", "AArch64", "V8", "linux/arm64"},
	    {"linux", "arm", NULL, "linux/arm/v7"},
	    {"linux", "armhf", NULL, "linux/arm/v7"},
	    {"linux", "amd64", "v1", "linux/amd64"},
	    {"linux", "x86_64", "V3", "linux/amd64/v3"},
	    /* Unknown values from an index are kept, lowercased, not refused. */
	    {"linux", "SPARC64", NULL, "linux/sparc64"},
	    {"unknown", "unknown", NULL, "unknown/unknown"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct plait_platform p = {
		    .os = xstrdup(cases[i].os),
		    .architecture = xstrdup(cases[i].arch),
		    .variant = xstrdup_or_null(cases[i].variant),
		};
		plait_platform_normalise(&p);
		_cleanup_free_ char *got = plait_platform_format(&p);
		if (!streq(got, cases[i].want))
			fail_msg("normalise %s/%s/%s: got '%s', want '%s'", cases[i].os,
				 cases[i].arch, cases[i].variant ? cases[i].variant : "(null)", got,
				 cases[i].want);
		plait_platform_release(&p);
	}
}

static void test_platform__format_omits_empty_variant(void **state)
{
	(void)state;
	struct plait_platform p = {.os = "linux", .architecture = "arm", .variant = "v6"};
	_cleanup_free_ char *a = plait_platform_format(&p);
	assert_string_equal(a, "linux/arm/v6");
	p.architecture = "amd64";
	p.variant = NULL;
	_cleanup_free_ char *b = plait_platform_format(&p);
	assert_string_equal(b, "linux/amd64");
	p.variant = "";
	_cleanup_free_ char *c = plait_platform_format(&p);
	assert_string_equal(c, "linux/amd64");
}

static void test_platform__equal_compares_normalised_forms(void **state)
{
	(void)state;
	struct plait_platform a = {.os = "linux", .architecture = "arm64"};
	struct plait_platform b = {.os = "linux", .architecture = "aarch64", .variant = "v8"};
	struct plait_platform c = {.os = "linux", .architecture = "arm"};
	struct plait_platform d = {.os = "linux", .architecture = "arm", .variant = "v7"};
	struct plait_platform e = {.os = "linux", .architecture = "arm", .variant = "v6"};
	struct plait_platform f = {.os = "windows", .architecture = "arm64"};
	assert_true(plait_platform_equal(&a, &b));
	assert_true(plait_platform_equal(&c, &d));
	assert_false(plait_platform_equal(&d, &e));
	assert_false(plait_platform_equal(&a, &f));
	assert_false(plait_platform_equal(&a, &c));
}

static int arm_variant_calls;

static const char *fake_cpu_says_v6(void)
{
	arm_variant_calls++;
	return "v6";
}

/* sysname and machine as uname(2) gives them -> canonical form. */
static char *from_uname(const char *sysname, const char *machine)
{
	struct plait_platform p;
	plait_platform_from_uname(sysname, machine, fake_cpu_says_v6, &p);
	char *f = plait_platform_format(&p);
	plait_platform_release(&p);
	return f;
}

static void test_platform__from_uname_maps_machine_names(void **state)
{
	(void)state;
	static const struct {
		const char *machine, *want;
		int cpu_asked;
	} cases[] = {
	    {"x86_64", "linux/amd64", 0},
	    {"aarch64", "linux/arm64", 0},
	    {"armv7l", "linux/arm/v7", 0},
	    {"armv6l", "linux/arm/v6", 0},
	    {"i686", "linux/386", 0},
	    {"ppc64le", "linux/ppc64le", 0},
	    {"s390x", "linux/s390x", 0},
	    {"riscv64", "linux/riscv64", 0},
	    {"loongarch64", "linux/loong64", 0},
	    /* names that do not say the arm level: the CPU decides */
	    {"armv8l", "linux/arm/v6", 1},
	    {"arm", "linux/arm/v6", 1},
	    /* unknown machines are kept, lowercased */
	    {"Mystery9", "linux/mystery9", 0},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		arm_variant_calls = 0;
		_cleanup_free_ char *f = from_uname("Linux", cases[i].machine);
		if (!streq(f, cases[i].want))
			fail_msg("uname machine '%s': got '%s', want '%s'", cases[i].machine, f,
				 cases[i].want);
		if (arm_variant_calls != cases[i].cpu_asked)
			fail_msg("uname machine '%s': the CPU was asked %d times, want %d",
				 cases[i].machine, arm_variant_calls, cases[i].cpu_asked);
	}
}

static void test_platform__arm_variant_from_cpuinfo(void **state)
{
	(void)state;
	assert_string_equal(plait_platform_arm_variant_from_cpuinfo(NULL), "v7");
	assert_string_equal(plait_platform_arm_variant_from_cpuinfo(""), "v7");
	assert_string_equal(plait_platform_arm_variant_from_cpuinfo(
				"processor\t: 0\nCPU architecture: 6\nCPU variant\t: 0x0\n"),
			    "v6");
	assert_string_equal(
	    plait_platform_arm_variant_from_cpuinfo("processor : 0\nCPU architecture: 5TEJ\n"),
	    "v5");
	assert_string_equal(plait_platform_arm_variant_from_cpuinfo("CPU architecture: 7\n"), "v7");
	/* a 32-bit process on an ARMv8 CPU runs arm/v7 images */
	assert_string_equal(plait_platform_arm_variant_from_cpuinfo("CPU architecture: 8"), "v7");
	/* a colon on a later line belongs to that line */
	assert_string_equal(plait_platform_arm_variant_from_cpuinfo(
				"CPU architecture\nfoo: 6\nCPU architecture: 5\n"),
			    "v5");
}

static void test_platform__known_arches_lists_goarch_names(void **state)
{
	(void)state;
	const char *const *a = plait_platform_known_arches();
	size_t n = 0;
	for (; a[n]; n++)
		assert_non_null(strchr("abcdefghijklmnopqrstuvwxyz0123456789", a[n][0]));
	assert_int_equal(n, 9);
	assert_string_equal(a[0], "amd64");
	assert_string_equal(a[2], "arm");
}

static int score(const char *want, const char *have)
{
	struct plait_platform w, h;
	if (plait_platform_parse(want, &w, NULL) < 0)
		fail_msg("bad test platform '%s'", want);
	if (plait_platform_parse(have, &h, NULL) < 0)
		fail_msg("bad test platform '%s'", have);
	int s = plait_platform_match_score(&w, &h);
	plait_platform_release(&w);
	plait_platform_release(&h);
	return s;
}

static void test_platform__match_scores(void **state)
{
	(void)state;
	static const struct {
		const char *want, *have;
		bool match;
	} cases[] = {
	    {"linux/amd64", "linux/amd64", true},	{"linux/amd64", "linux/arm64", false},
	    {"linux/amd64", "windows/amd64", false},	{"linux/arm64", "linux/arm64/v8", true},
	    {"linux/arm64/v8", "linux/arm64", true},	{"linux/arm64/v8.2", "linux/arm64", true},
	    {"linux/arm64", "linux/arm64/v8.2", false}, {"linux/arm/v7", "linux/arm/v7", true},
	    {"linux/arm/v7", "linux/arm/v6", true},	{"linux/arm/v7", "linux/arm/v5", true},
	    {"linux/arm/v6", "linux/arm/v5", true},	{"linux/arm/v6", "linux/arm/v7", false},
	    {"linux/arm/v5", "linux/arm/v6", false},	{"linux/arm/v7", "linux/arm64", false},
	    {"linux/amd64/v3", "linux/amd64", true},	{"linux/amd64/v3", "linux/amd64/v2", true},
	    {"linux/amd64/v3", "linux/amd64/v3", true}, {"linux/amd64/v2", "linux/amd64/v3", false},
	    {"linux/amd64", "linux/amd64/v2", false},	{"linux/386", "linux/amd64", false},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int s = score(cases[i].want, cases[i].have);
		if ((s >= 0) != cases[i].match)
			fail_msg("want %s, have %s: score %d, expected %s", cases[i].want,
				 cases[i].have, s, cases[i].match ? "a match" : "no match");
	}
}

static void test_platform__match_prefers_exact_then_newer(void **state)
{
	(void)state;
	assert_true(score("linux/arm/v7", "linux/arm/v7") > score("linux/arm/v7", "linux/arm/v6"));
	assert_true(score("linux/arm/v7", "linux/arm/v6") > score("linux/arm/v7", "linux/arm/v5"));
	assert_true(score("linux/amd64/v3", "linux/amd64/v3") >
		    score("linux/amd64/v3", "linux/amd64/v2"));
	assert_true(score("linux/amd64/v3", "linux/amd64/v2") >
		    score("linux/amd64/v3", "linux/amd64"));
	assert_int_equal(score("linux/arm64", "linux/arm64/v8"),
			 score("linux/s390x", "linux/s390x"));
}

static void test_platform__match_normalises_unparsed_input(void **state)
{
	(void)state;
	/* Platforms straight out of an index, not through parse. */
	struct plait_platform want = {.os = "linux", .architecture = "arm64"};
	struct plait_platform have = {.os = "Linux", .architecture = "aarch64", .variant = "v8"};
	assert_true(plait_platform_match_score(&want, &have) >= 0);
	struct plait_platform arm = {.os = "linux", .architecture = "arm"};
	struct plait_platform armv7 = {.os = "linux", .architecture = "arm", .variant = "v7"};
	assert_int_equal(plait_platform_match_score(&arm, &armv7),
			 plait_platform_match_score(&armv7, &armv7));
}

/* An index whose entries have the given platforms; NULL = no platform. */
struct fake_index {
	struct plait_index idx;
	struct plait_descriptor d[8];
	struct plait_platform p[8];
};

static void fake_index_init(struct fake_index *f, const char *const *platforms, size_t n)
{
	memset(f, 0, sizeof(*f));
	assert_true(n <= ARRAY_SIZE(f->d));
	for (size_t i = 0; i < n; i++) {
		if (platforms[i]) {
			/* Split "os/arch[/variant]" by hand: index entries are not parsed. */
			_cleanup_free_ char *copy = xstrdup(platforms[i]);
			char *arch = strchr(copy, '/');
			*arch++ = '\0';
			char *variant = strchr(arch, '/');
			if (variant)
				*variant++ = '\0';
			f->p[i].os = xstrdup(copy);
			f->p[i].architecture = xstrdup(arch);
			f->p[i].variant = xstrdup_or_null(variant);
			f->d[i].platform = &f->p[i];
		}
	}
	f->idx.manifests = f->d;
	f->idx.n_manifests = n;
}

static void fake_index_release(struct fake_index *f)
{
	for (size_t i = 0; i < ARRAY_SIZE(f->p); i++)
		plait_platform_release(&f->p[i]);
}

static size_t select_ok(const char *const *platforms, size_t n, const char *want)
{
	struct fake_index f;
	fake_index_init(&f, platforms, n);
	struct plait_platform w;
	assert_int_equal(plait_platform_parse(want, &w, NULL), 0);
	_cleanup_error_ struct plait_error *err = NULL;
	size_t pos = 999;
	int r = plait_platform_select(&f.idx, &w, &pos, &err);
	if (r < 0)
		fail_msg("select %s: %s", want, err->msg);
	plait_platform_release(&w);
	fake_index_release(&f);
	return pos;
}

static void test_platform__select_arm_v7_prefers_v7_over_v6(void **state)
{
	(void)state;
	const char *const p[] = {"linux/amd64", "linux/arm/v6", "linux/arm/v7", "linux/arm64"};
	assert_int_equal(select_ok(p, ARRAY_SIZE(p), "linux/arm/v7"), 2);
	assert_int_equal(select_ok(p, ARRAY_SIZE(p), "linux/arm"), 2);
	assert_int_equal(select_ok(p, ARRAY_SIZE(p), "linux/arm/v6"), 1);
}

static void test_platform__select_arm_v7_takes_v6_only_without_v7(void **state)
{
	(void)state;
	const char *const p[] = {"linux/amd64", "linux/arm/v5", "linux/arm/v6"};
	assert_int_equal(select_ok(p, ARRAY_SIZE(p), "linux/arm/v7"), 2);
	const char *const q[] = {"linux/amd64", "linux/arm/v5"};
	assert_int_equal(select_ok(q, ARRAY_SIZE(q), "linux/arm/v7"), 1);
}

static void test_platform__select_arm64_matches_v8_entries(void **state)
{
	(void)state;
	const char *const p[] = {"linux/amd64", "linux/arm64/v8"};
	assert_int_equal(select_ok(p, ARRAY_SIZE(p), "linux/arm64"), 1);
	assert_int_equal(select_ok(p, ARRAY_SIZE(p), "aarch64"), 1);
}

static void test_platform__select_skips_entries_without_platform(void **state)
{
	(void)state;
	const char *const p[] = {NULL, "linux/amd64", "linux/amd64"};
	/* Ties go to the first entry in index order. */
	assert_int_equal(select_ok(p, ARRAY_SIZE(p), "linux/amd64"), 1);
}

static void test_platform__select_missing_platform_lists_what_exists(void **state)
{
	(void)state;
	const char *const p[] = {"linux/amd64", "linux/arm64", NULL, "unknown/unknown",
				 "linux/arm64"};
	struct fake_index f;
	fake_index_init(&f, p, ARRAY_SIZE(p));
	struct plait_platform w;
	assert_int_equal(plait_platform_parse("linux/s390x", &w, NULL), 0);
	_cleanup_error_ struct plait_error *err = NULL;
	size_t pos = 999;
	assert_int_equal(plait_platform_select(&f.idx, &w, &pos, &err), -PLAIT_E_NOT_FOUND);
	assert_int_equal(pos, 999);
	assert_string_equal(
	    err->msg, "no image for linux/s390x in this index; it has linux/amd64, linux/arm64");
	plait_platform_release(&w);

	/* arm/v6 never takes a v7 image. */
	assert_int_equal(plait_platform_parse("linux/arm/v6", &w, NULL), 0);
	const char *const q[] = {"linux/arm/v7"};
	fake_index_release(&f);
	fake_index_init(&f, q, 1);
	assert_int_equal(plait_platform_select(&f.idx, &w, &pos, &err), -PLAIT_E_NOT_FOUND);
	assert_string_equal(err->msg,
			    "no image for linux/arm/v6 in this index; it has linux/arm/v7");
	plait_platform_release(&w);
	fake_index_release(&f);
}

static void assert_annotation(const struct plait_map *m, const char *key, const char *want)
{
	const char *v = plait_map_get(m, key);
	if (!v || !streq(v, want))
		fail_msg("annotation '%s': got '%s', want '%s'", key, v ? v : "(none)", want);
}

/* An index of amd64, arm/v7, arm64 entries; narrowing keeps the index's own fields. */
static void test_platform__index_select_platforms_in_the_order_asked(void **state)
{
	(void)state;
	const char *const p[] = {"linux/amd64", "linux/arm/v7", "unknown/unknown", "linux/arm64"};
	struct fake_index f;
	fake_index_init(&f, p, ARRAY_SIZE(p));
	for (size_t i = 0; i < ARRAY_SIZE(p); i++)
		snprintf(f.d[i].digest, sizeof(f.d[i].digest), "sha256:%064zu", i);
	f.idx.media_type = "application/vnd.oci.image.index.v1+json";
	plait_map_set(&f.idx.annotations, "org.example.k", "v");
	struct plait_platform want[2];
	assert_int_equal(plait_platform_parse("aarch64", &want[0], NULL), 0);
	assert_int_equal(plait_platform_parse("linux/amd64", &want[1], NULL), 0);

	struct plait_index out;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_index_select_platforms(&f.idx, want, 2, &out, &err), 0);
	assert_int_equal(out.schema_version, 2);
	assert_string_equal(out.media_type, "application/vnd.oci.image.index.v1+json");
	assert_annotation(&out.annotations, "org.example.k", "v");
	assert_int_equal(out.n_manifests, 2);
	/* as asked, not as the index lists them */
	assert_string_equal(out.manifests[0].digest, f.d[3].digest);
	assert_string_equal(out.manifests[1].digest, f.d[0].digest);
	assert_string_equal(out.manifests[0].platform->architecture, "arm64");
	plait_index_release(&out);

	plait_platform_release(&want[1]);
	assert_int_equal(plait_platform_parse("linux/s390x", &want[1], NULL), 0);
	assert_int_equal(plait_index_select_platforms(&f.idx, want, 2, &out, &err),
			 -PLAIT_E_NOT_FOUND);
	assert_string_equal(err->msg, "no image for linux/s390x in this index; it has "
				      "linux/amd64, linux/arm/v7, linux/arm64");
	assert_int_equal(out.n_manifests, 0);
	assert_null(out.manifests);

	plait_platform_release(&want[0]);
	plait_platform_release(&want[1]);
	f.idx.media_type = NULL;
	plait_map_release(&f.idx.annotations);
	fake_index_release(&f);
}

/* ---- narrowing what an endpoint holds (a real OCI layout) ---- */

struct layout {
	char dir[64];
	struct plait_endpoint *ep;
	/* one image per platform: amd64, arm64, arm/v7 */
	char manifest[3][PLAIT_DIGEST_MAX];
	struct plait_buf manifest_bytes[3];
	struct plait_buf index_bytes;
	char index[PLAIT_DIGEST_MAX];
};

static const char *const layout_platforms[3][3] = {
    {"linux", "amd64", NULL}, {"linux", "arm64", NULL}, {"linux", "arm", "v7"}};

static void put_blob(struct plait_store *s, const char *text, char digest[PLAIT_DIGEST_MAX])
{
	_cleanup_error_ struct plait_error *err = NULL;
	if (plait_store_put_bytes(s, text, strlen(text), digest, &err) < 0)
		fail_msg("put blob: %s", err->msg);
}

static void layout_init(struct layout *l)
{
	memset(l, 0, sizeof(*l));
	snprintf(l->dir, sizeof(l->dir), "/tmp/plait-test-platform-XXXXXX");
	assert_non_null(mkdtemp(l->dir));
	struct plait_store *s;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_store_open(l->dir, true, &s, &err), 0);
	struct plait_index idx = {.schema_version = 2,
				  .media_type = xstrdup("application/vnd.oci.image.index.v1+json")};
	plait_map_set(&idx.annotations, "org.example.k", "v");
	for (size_t i = 0; i < 3; i++) {
		const char *const *pl = layout_platforms[i];
		_cleanup_buf_ struct plait_buf cfg = PLAIT_BUF_INIT;
		plait_buf_addf(&cfg,
			       "{\"architecture\":\"%s\",\"os\":\"%s\"%s%s%s,\"rootfs\":{\"type\":"
			       "\"layers\",\"diff_ids\":[]}}",
			       pl[1], pl[0], pl[2] ? ",\"variant\":\"" : "", pl[2] ? pl[2] : "",
			       pl[2] ? "\"" : "");
		char cfg_digest[PLAIT_DIGEST_MAX];
		put_blob(s, cfg.buf, cfg_digest);
		struct plait_buf *m = &l->manifest_bytes[i];
		plait_buf_init(m, 0);
		plait_buf_addf(m,
			       "{\"schemaVersion\":2,\"mediaType\":\"application/"
			       "vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":"
			       "\"application/vnd.oci.image.config.v1+json\",\"digest\":\"%s\","
			       "\"size\":%zu},\"layers\":[]}",
			       cfg_digest, cfg.len);
		put_blob(s, m->buf, l->manifest[i]);
		struct plait_platform p = {
		    .os = (char *)pl[0], .architecture = (char *)pl[1], .variant = (char *)pl[2]};
		struct plait_descriptor d = {.media_type =
						 "application/vnd.oci.image.manifest.v1+json",
					     .size = (int64_t)m->len,
					     .platform = &p};
		snprintf(d.digest, sizeof(d.digest), "%s", l->manifest[i]);
		plait_index_add(&idx, &d);
	}
	/* written as another tool might (a leading newline): bytes plait would not
	 * make itself, so keeping the index as it is shows in its digest */
	plait_buf_init(&l->index_bytes, 0);
	plait_buf_adds(&l->index_bytes, "\n");
	assert_int_equal(plait_index_serialise(&idx, &l->index_bytes, &err), 0);
	put_blob(s, l->index_bytes.buf, l->index);
	plait_index_release(&idx);
	plait_store_free(s);
	_cleanup_buf_ struct plait_buf spec = PLAIT_BUF_INIT;
	plait_buf_addf(&spec, "oci:%s", l->dir);
	if (plait_endpoint_open_local(spec.buf, false, &l->ep, &err) < 0)
		fail_msg("open %s: %s", spec.buf, err->msg);
}

static void layout_release(struct layout *l)
{
	plait_endpoint_free(l->ep);
	for (size_t i = 0; i < 3; i++)
		plait_buf_release(&l->manifest_bytes[i]);
	plait_buf_release(&l->index_bytes);
	rm_tree(l->dir);
}

/* root + data as a caller holds them after resolving the layout's index (i < 0) or manifest i. */
static void layout_root(const struct layout *l, int i, struct plait_descriptor *root,
			struct plait_buf *data)
{
	memset(root, 0, sizeof(*root));
	const struct plait_buf *bytes = i < 0 ? &l->index_bytes : &l->manifest_bytes[i];
	root->media_type = xstrdup(i < 0 ? "application/vnd.oci.image.index.v1+json"
					 : "application/vnd.oci.image.manifest.v1+json");
	snprintf(root->digest, sizeof(root->digest), "%s", i < 0 ? l->index : l->manifest[i]);
	root->size = (int64_t)bytes->len;
	plait_buf_init(data, 0);
	plait_buf_add(data, bytes->buf, bytes->len);
}

static int narrow(struct layout *l, int root_i, const char *platforms,
		  struct plait_descriptor *root, struct plait_buf *data, struct plait_error **err)
{
	struct plait_platform *want;
	size_t n;
	assert_int_equal(plait_platform_parse_list(platforms, &want, &n, NULL), 0);
	layout_root(l, root_i, root, data);
	int r = plait_platform_narrow(l->ep, root, data, want, n, err);
	plait_platform_list_free(want, n);
	return r;
}

static void test_platform__narrow_to_one_platform_gives_its_manifest(void **state)
{
	(void)state;
	struct layout l;
	layout_init(&l);
	struct plait_descriptor root;
	struct plait_buf data;
	_cleanup_error_ struct plait_error *err = NULL;
	if (narrow(&l, -1, "linux/arm64", &root, &data, &err) < 0)
		fail_msg("narrow: %s", err->msg);
	assert_string_equal(root.digest, l.manifest[1]);
	assert_int_equal(root.size, (int64_t)l.manifest_bytes[1].len);
	assert_int_equal(plait_media_type_from_string(root.media_type), PLAIT_MT_OCI_MANIFEST);
	assert_int_equal(data.len, l.manifest_bytes[1].len);
	assert_memory_equal(data.buf, l.manifest_bytes[1].buf, data.len);
	plait_descriptor_release(&root);
	plait_buf_release(&data);
	layout_release(&l);
}

static void test_platform__narrow_to_several_makes_an_index_of_them(void **state)
{
	(void)state;
	struct layout l;
	layout_init(&l);
	struct plait_descriptor root;
	struct plait_buf data;
	_cleanup_error_ struct plait_error *err = NULL;
	if (narrow(&l, -1, "linux/arm/v7,linux/amd64", &root, &data, &err) < 0)
		fail_msg("narrow: %s", err->msg);
	/* a new index, of the same kind, whose digest is its bytes' */
	assert_int_equal(plait_media_type_from_string(root.media_type), PLAIT_MT_OCI_INDEX);
	char digest[PLAIT_DIGEST_MAX];
	plait_sha256_buf(data.buf, data.len, digest);
	assert_string_equal(root.digest, digest);
	assert_int_equal(root.size, (int64_t)data.len);
	struct plait_index idx;
	assert_int_equal(plait_index_parse(data.buf, data.len, &idx, &err), 0);
	assert_int_equal(idx.n_manifests, 2);
	assert_string_equal(idx.manifests[0].digest, l.manifest[2]);
	assert_string_equal(idx.manifests[1].digest, l.manifest[0]);
	assert_annotation(&idx.annotations, "org.example.k", "v");
	plait_index_release(&idx);
	plait_descriptor_release(&root);
	plait_buf_release(&data);

	/* every entry in the index's own order: the index as it is, digest unchanged */
	if (narrow(&l, -1, "linux/amd64,linux/arm64,linux/arm/v7", &root, &data, &err) < 0)
		fail_msg("narrow: %s", err->msg);
	assert_string_equal(root.digest, l.index);
	assert_int_equal(data.len, l.index_bytes.len);
	assert_memory_equal(data.buf, l.index_bytes.buf, data.len);
	plait_descriptor_release(&root);
	plait_buf_release(&data);

	/* a missing platform names the endpoint and what the index has */
	assert_int_equal(narrow(&l, -1, "linux/amd64,linux/s390x", &root, &data, &err),
			 -PLAIT_E_NOT_FOUND);
	assert_contains(err->msg, l.dir);
	assert_contains(err->msg, "no image for linux/s390x in this index; it has linux/amd64, "
				  "linux/arm64, linux/arm/v7");
	assert_string_equal(root.digest, l.index);
	plait_descriptor_release(&root);
	plait_buf_release(&data);
	layout_release(&l);
}

static void test_platform__narrow_single_manifest_checks_its_config(void **state)
{
	(void)state;
	struct layout l;
	layout_init(&l);
	struct plait_descriptor root;
	struct plait_buf data;
	_cleanup_error_ struct plait_error *err = NULL;
	/* arm/v7 image, asked for plain arm (= v7) among others: left alone */
	if (narrow(&l, 2, "linux/amd64,linux/arm", &root, &data, &err) < 0)
		fail_msg("narrow: %s", err->msg);
	assert_string_equal(root.digest, l.manifest[2]);
	assert_memory_equal(data.buf, l.manifest_bytes[2].buf, data.len);
	plait_descriptor_release(&root);
	plait_buf_release(&data);

	assert_int_equal(narrow(&l, 0, "linux/arm64", &root, &data, &err), -PLAIT_E_NOT_FOUND);
	_cleanup_buf_ struct plait_buf want = PLAIT_BUF_INIT;
	plait_buf_addf(
	    &want, "oci:%s is a single-platform image for linux/amd64, not for linux/arm64", l.dir);
	assert_string_equal(err->msg, want.buf);
	plait_descriptor_release(&root);
	plait_buf_release(&data);
	plait_error_free(TAKE_PTR(err));

	assert_int_equal(narrow(&l, 0, "linux/arm64,linux/s390x", &root, &data, &err),
			 -PLAIT_E_NOT_FOUND);
	assert_contains(err->msg, "not for linux/arm64 and the others asked for");
	plait_descriptor_release(&root);
	plait_buf_release(&data);
	layout_release(&l);
}

static void test_platform__parse_list_splits_and_trims(void **state)
{
	(void)state;
	struct plait_platform *list = NULL;
	size_t n = 0;
	_cleanup_error_ struct plait_error *err = NULL;
	int r = plait_platform_parse_list(" linux/amd64 , aarch64,linux/arm/v6 ", &list, &n, &err);
	if (r < 0)
		fail_msg("parse_list: %s", err->msg);
	assert_int_equal(n, 3);
	static const char *const want[] = {"linux/amd64", "linux/arm64", "linux/arm/v6"};
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *f = plait_platform_format(&list[i]);
		assert_string_equal(f, want[i]);
	}
	plait_platform_list_free(list, n);

	assert_int_equal(plait_platform_parse_list("linux/riscv64", &list, &n, NULL), 0);
	assert_int_equal(n, 1);
	plait_platform_list_free(list, n);
	plait_platform_list_free(NULL, 0);
}

static void test_platform__parse_list_rejects_duplicates(void **state)
{
	(void)state;
	struct plait_platform *list = (void *)1;
	size_t n = 42;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(
	    plait_platform_parse_list("linux/arm64,linux/amd64, linux/arm64/v8", &list, &n, &err),
	    -PLAIT_E_USAGE);
	assert_null(list);
	assert_int_equal(n, 0);
	assert_string_equal(err->msg,
			    "platform 'linux/arm64/v8' is listed twice (same as 'linux/arm64')");
	assert_int_equal(plait_platform_parse_list("linux/amd64,linux/amd64", &list, &n, &err),
			 -PLAIT_E_USAGE);
	assert_string_equal(err->msg, "platform 'linux/amd64' is listed twice");
}

static void test_platform__parse_list_rejects_bad_entries(void **state)
{
	(void)state;
	struct plait_platform *list = NULL;
	size_t n = 0;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_platform_parse_list("linux/amd64,,linux/arm64", &list, &n, &err),
			 -PLAIT_E_USAGE);
	assert_contains(err->msg, "empty entry");
	assert_int_equal(plait_platform_parse_list("linux/amd64,", &list, &n, &err),
			 -PLAIT_E_USAGE);
	assert_contains(err->msg, "empty entry");
	assert_int_equal(plait_platform_parse_list("", &list, &n, &err), -PLAIT_E_USAGE);
	assert_contains(err->msg, "empty");
	assert_int_equal(plait_platform_parse_list("linux/amd64,linux/foo", &list, &n, &err),
			 -PLAIT_E_USAGE);
	assert_contains(err->msg, "unknown architecture 'foo'");
	assert_null(list);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_platform__parse_normalises_every_alias),
	    cmocka_unit_test(test_platform__parse_fills_fields),
	    cmocka_unit_test(test_platform__parse_rejects_unknown_architecture),
	    cmocka_unit_test(test_platform__parse_rejects_unknown_os),
	    cmocka_unit_test(test_platform__parse_rejects_empty),
	    cmocka_unit_test(test_platform__parse_rejects_bad_shape),
	    cmocka_unit_test(test_platform__normalise_in_place),
	    cmocka_unit_test(test_platform__format_omits_empty_variant),
	    cmocka_unit_test(test_platform__equal_compares_normalised_forms),
	    cmocka_unit_test(test_platform__from_uname_maps_machine_names),
	    cmocka_unit_test(test_platform__arm_variant_from_cpuinfo),
	    cmocka_unit_test(test_platform__known_arches_lists_goarch_names),
	    cmocka_unit_test(test_platform__match_scores),
	    cmocka_unit_test(test_platform__match_prefers_exact_then_newer),
	    cmocka_unit_test(test_platform__match_normalises_unparsed_input),
	    cmocka_unit_test(test_platform__select_arm_v7_prefers_v7_over_v6),
	    cmocka_unit_test(test_platform__select_arm_v7_takes_v6_only_without_v7),
	    cmocka_unit_test(test_platform__select_arm64_matches_v8_entries),
	    cmocka_unit_test(test_platform__select_skips_entries_without_platform),
	    cmocka_unit_test(test_platform__select_missing_platform_lists_what_exists),
	    cmocka_unit_test(test_platform__index_select_platforms_in_the_order_asked),
	    cmocka_unit_test(test_platform__narrow_to_one_platform_gives_its_manifest),
	    cmocka_unit_test(test_platform__narrow_to_several_makes_an_index_of_them),
	    cmocka_unit_test(test_platform__narrow_single_manifest_checks_its_config),
	    cmocka_unit_test(test_platform__parse_list_splits_and_trims),
	    cmocka_unit_test(test_platform__parse_list_rejects_duplicates),
	    cmocka_unit_test(test_platform__parse_list_rejects_bad_entries),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
