/* Unit tests for core/dockerfile_mount: the RUN --mount grammar, its
 * defaults, every option and alias, and each error with the exact message
 * the build has always given (the build adds "Dockerfile:N: "). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

#include "core/dockerfile_mount.h"
#include "core/error.h"
#include "core/util.h"

#include "core/banned.h"

/* Parse spec, which must succeed. */
static void parse_ok(const char *spec, struct plait_df_mount *m)
{
	_cleanup_error_ struct plait_error *err = NULL;
	int r = plait_df_mount_parse(spec, NULL, m, &err);
	if (r < 0)
		fail_msg("'%s': %s", spec, err ? err->msg : "?");
}

/* Parse spec (written: as in the Dockerfile), which must fail with want. */
static void parse_fails(const char *spec, const char *written, const char *want)
{
	_cleanup_error_ struct plait_error *err = NULL;
	struct plait_df_mount m;
	int r = plait_df_mount_parse(spec, written, &m, &err);
	if (r >= 0)
		fail_msg("'%s' parsed; want the error \"%s\"", spec, want);
	assert_int_equal(r, -PLAIT_E_USAGE);
	assert_non_null(err);
	if (!streq(err->msg, want))
		fail_msg("'%s': got \"%s\", want \"%s\"", spec, err->msg, want);
	assert_int_equal(err->code, PLAIT_E_USAGE);
}

static void str_is(const char *what, const char *got, const char *want)
{
	if (!streq_ptr(got, want))
		fail_msg("%s: got '%s', want '%s'", what, got ? got : "(null)", want ? want : "(null)");
}

static void test_dockerfile_mount__bind_defaults(void **state)
{
	(void)state;
	struct plait_df_mount m;
	parse_ok("target=/src", &m);
	assert_int_equal(m.type, PLAIT_DF_MOUNT_BIND);
	str_is("type name", m.type_name, "bind");
	str_is("target", m.target, "/src");
	str_is("source", m.source, NULL);
	str_is("from", m.from, NULL);
	str_is("id", m.id, NULL);
	assert_false(m.rw);
	assert_false(m.required);
	assert_int_equal(m.sharing, PLAIT_DF_MOUNT_SHARED);
	assert_int_equal(m.uid, -1);
	assert_int_equal(m.gid, -1);
	assert_int_equal(m.mode, -1);
	plait_df_mount_release(&m);
}

static void test_dockerfile_mount__bind_options_and_aliases(void **state)
{
	(void)state;
	struct plait_df_mount m;
	parse_ok("type=bind,from=builder,source=/out,target=/in,rw", &m);
	str_is("from", m.from, "builder");
	str_is("source", m.source, "/out");
	str_is("target", m.target, "/in");
	assert_true(m.rw);
	plait_df_mount_release(&m);

	parse_ok("src=a,dst=/b", &m);
	str_is("src", m.source, "a");
	str_is("dst", m.target, "/b");
	plait_df_mount_release(&m);

	parse_ok("destination=/c,readwrite=true", &m);
	str_is("destination", m.target, "/c");
	assert_true(m.rw);
	plait_df_mount_release(&m);

	static const struct {
		const char *spec;
		bool rw;
	} rw_cases[] = {
		{ "target=/x,rw=true", true },  { "target=/x,rw=false", false },
		{ "target=/x,rw=yes", false },  { "target=/x,ro", false },
		{ "target=/x,rw,ro", false },   { "target=/x,ro=false", true },
		{ "target=/x,readonly=true", false }, { "target=/x,readonly=false", true },
	};
	for (size_t i = 0; i < ARRAY_SIZE(rw_cases); i++) {
		parse_ok(rw_cases[i].spec, &m);
		if (m.rw != rw_cases[i].rw)
			fail_msg("'%s': rw %d, want %d", rw_cases[i].spec, m.rw, rw_cases[i].rw);
		plait_df_mount_release(&m);
	}
}

static void test_dockerfile_mount__last_field_wins(void **state)
{
	(void)state;
	struct plait_df_mount m;
	parse_ok("target=/a,target=/b,type=tmpfs,type=cache,id=x,id=y", &m);
	str_is("target", m.target, "/b");
	assert_int_equal(m.type, PLAIT_DF_MOUNT_CACHE);
	str_is("id", m.id, "y");
	plait_df_mount_release(&m);
}

static void test_dockerfile_mount__cache_options(void **state)
{
	(void)state;
	struct plait_df_mount m;
	parse_ok("type=cache,target=/root/.cache,id=pip,sharing=locked,uid=1000,gid=100,mode=0750", &m);
	assert_int_equal(m.type, PLAIT_DF_MOUNT_CACHE);
	str_is("id", m.id, "pip");
	assert_int_equal(m.sharing, PLAIT_DF_MOUNT_LOCKED);
	assert_int_equal(m.uid, 1000);
	assert_int_equal(m.gid, 100);
	assert_int_equal(m.mode, 0750);
	plait_df_mount_release(&m);

	parse_ok("type=cache,target=/c,sharing=private", &m);
	assert_int_equal(m.sharing, PLAIT_DF_MOUNT_PRIVATE);
	plait_df_mount_release(&m);
	parse_ok("type=cache,target=/c,sharing=shared", &m);
	assert_int_equal(m.sharing, PLAIT_DF_MOUNT_SHARED);
	plait_df_mount_release(&m);
	/* sharing= is only checked where it means something */
	parse_ok("type=tmpfs,target=/t,sharing=whatever", &m);
	plait_df_mount_release(&m);
}

static void test_dockerfile_mount__tmpfs_size(void **state)
{
	(void)state;
	struct plait_df_mount m;
	parse_ok("type=tmpfs,target=/tmp,size=64m", &m);
	assert_int_equal(m.type, PLAIT_DF_MOUNT_TMPFS);
	str_is("size", m.size, "64m");
	plait_df_mount_release(&m);
}

static void test_dockerfile_mount__secret_defaults(void **state)
{
	(void)state;
	struct plait_df_mount m;
	parse_ok("type=secret,id=hf_token", &m);
	assert_int_equal(m.type, PLAIT_DF_MOUNT_SECRET);
	str_is("default target", m.target, "/run/secrets/hf_token");
	str_is("id", plait_df_mount_secret_id(&m), "hf_token");
	assert_true(m.secret_file);
	assert_false(m.required);
	plait_df_mount_release(&m);

	/* no id: the target's last component */
	parse_ok("type=secret,target=/etc/npmrc,required,mode=0440,uid=1,gid=2", &m);
	str_is("id from target", plait_df_mount_secret_id(&m), "npmrc");
	assert_true(m.required);
	assert_int_equal(m.mode, 0440);
	assert_int_equal(m.uid, 1);
	assert_int_equal(m.gid, 2);
	plait_df_mount_release(&m);

	/* env= without target=: only an environment variable */
	parse_ok("type=secret,id=tok,env=TOKEN,required=false", &m);
	str_is("env", m.env, "TOKEN");
	assert_false(m.secret_file);
	assert_false(m.required);
	str_is("target", m.target, "/run/secrets/tok");
	plait_df_mount_release(&m);

	/* env= with target=: both */
	parse_ok("type=secret,id=tok,env=TOKEN,target=/tok", &m);
	assert_true(m.secret_file);
	plait_df_mount_release(&m);
}

static void test_dockerfile_mount__ssh_defaults(void **state)
{
	(void)state;
	struct plait_df_mount m;
	/* no id: "default"; no target: left for the executor to number */
	parse_ok("type=ssh", &m);
	assert_int_equal(m.type, PLAIT_DF_MOUNT_SSH);
	str_is("id", plait_df_mount_ssh_id(&m), "default");
	assert_null(m.target);
	assert_false(m.required);
	assert_int_equal(m.mode, -1);
	plait_df_mount_release(&m);
	parse_ok("type=ssh,id=gitlab,target=/agent.sock,required=true,mode=0666,uid=1000,gid=1000", &m);
	str_is("id", plait_df_mount_ssh_id(&m), "gitlab");
	str_is("target", m.target, "/agent.sock");
	assert_true(m.required);
	assert_int_equal(m.mode, 0666);
	assert_int_equal(m.uid, 1000);
	plait_df_mount_release(&m);
}

static void test_dockerfile_mount__errors_say_what_to_do(void **state)
{
	(void)state;
	parse_fails("target=/x,bogus=1", NULL, "--mount: unknown option 'bogus'");
	parse_fails("target=/x,bogus", NULL, "--mount: unknown option 'bogus'");
	parse_fails("type=cache,target=/x,uid=abc", NULL, "--mount: uid=abc: give a number");
	parse_fails("type=cache,target=/x,gid=", NULL, "--mount: gid=: give a number");
	parse_fails("type=cache,target=/x,uid=-1", NULL, "--mount: uid=-1: give a number");
	parse_fails("type=cache,target=/x,uid=2147483648", NULL, "--mount: uid=2147483648: give a number");
	parse_fails("type=cache,target=/x,mode=0999", NULL,
		    "--mount: mode=0999: give octal permissions, e.g. 0400");
	parse_fails("type=cache,target=/x,mode=", NULL, "--mount: mode=: give octal permissions, e.g. 0400");
	parse_fails("type=cache,target=/x,mode=10000", NULL,
		    "--mount: mode=10000: give octal permissions, e.g. 0400");
	parse_fails("type=volume,target=/x", NULL,
		    "--mount: unknown type 'volume'; use bind, cache, tmpfs, secret or ssh");
	parse_fails("type=bind,target=/x,uid=0", NULL,
		    "--mount: uid=, gid= and mode= are for type=cache, type=secret and type=ssh");
	parse_fails("type=tmpfs,target=/x,mode=0700", NULL,
		    "--mount: uid=, gid= and mode= are for type=cache, type=secret and type=ssh");
	parse_fails("type=cache,target=/x,env=X", NULL, "--mount: env= is for type=secret only");
	parse_fails("type=ssh,env=X", NULL, "--mount: env= is for type=secret only");
	parse_fails("type=cache", NULL, "--mount=type=cache: needs target=PATH (absolute, or relative to WORKDIR)");
	parse_fails("type=cache,target=/x,sharing=exclusive", NULL,
		    "--mount: sharing=exclusive: use shared, locked or private");
}

static void test_dockerfile_mount__errors_come_in_order(void **state)
{
	(void)state;
	/* the first bad field wins, whichever kind it is */
	parse_fails("type=cache,target=/x,uid=a,bogus", NULL, "--mount: uid=a: give a number");
	parse_fails("type=cache,target=/x,bogus,uid=a", NULL, "--mount: unknown option 'bogus'");
	/* fields before mode=, mode= before the type */
	parse_fails("type=volume,mode=9,bogus", NULL, "--mount: unknown option 'bogus'");
	parse_fails("type=volume,mode=9", NULL, "--mount: mode=9: give octal permissions, e.g. 0400");
	/* an unknown type is said before a missing target */
	parse_fails("type=volume", NULL, "--mount: unknown type 'volume'; use bind, cache, tmpfs, secret or ssh");
	/* uid= on the wrong type before env= on the wrong type, both before the target */
	parse_fails("type=bind,uid=1,env=X", NULL, "--mount: uid=, gid= and mode= are for type=cache, type=secret and type=ssh");
	parse_fails("type=bind,env=X", NULL, "--mount: env= is for type=secret only");
	/* the target before sharing= */
	parse_fails("type=cache,sharing=nope", NULL, "--mount=type=cache,sharing=nope: needs target=PATH (absolute, or relative to WORKDIR)");
}

static void test_dockerfile_mount__target_message_quotes_the_value_as_written(void **state)
{
	(void)state;
	parse_fails("type=cache,target=", "type=cache,target=${DIR}",
		    "--mount=type=cache,target=${DIR}: needs target=PATH (absolute, or relative to WORKDIR)");
}

static void test_dockerfile_mount__scan_reads_without_checking(void **state)
{
	(void)state;
	struct plait_df_mount m;
	/* what the linter sees: variables not expanded, options it does not know */
	plait_df_mount_scan("type=cache,target=/root/.cache/pip,uid=${UID},extra=1", &m);
	assert_int_equal(m.type, PLAIT_DF_MOUNT_CACHE);
	str_is("target", m.target, "/root/.cache/pip");
	str_is("first bad field", m.bad_name, "uid");
	plait_df_mount_release(&m);

	plait_df_mount_scan("type=${T},dst=/var/cache/apt", &m);
	assert_int_equal(m.type, PLAIT_DF_MOUNT_UNKNOWN);
	str_is("target", m.target, "/var/cache/apt");
	plait_df_mount_release(&m);

	plait_df_mount_scan("", &m);
	assert_int_equal(m.type, PLAIT_DF_MOUNT_BIND);
	str_is("target", m.target, NULL);
	plait_df_mount_release(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dockerfile_mount__bind_defaults),
		cmocka_unit_test(test_dockerfile_mount__bind_options_and_aliases),
		cmocka_unit_test(test_dockerfile_mount__last_field_wins),
		cmocka_unit_test(test_dockerfile_mount__cache_options),
		cmocka_unit_test(test_dockerfile_mount__tmpfs_size),
		cmocka_unit_test(test_dockerfile_mount__secret_defaults),
		cmocka_unit_test(test_dockerfile_mount__errors_say_what_to_do),
		cmocka_unit_test(test_dockerfile_mount__ssh_defaults),
		cmocka_unit_test(test_dockerfile_mount__errors_come_in_order),
		cmocka_unit_test(test_dockerfile_mount__target_message_quotes_the_value_as_written),
		cmocka_unit_test(test_dockerfile_mount__scan_reads_without_checking),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
