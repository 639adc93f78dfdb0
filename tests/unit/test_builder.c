/* tests/unit/test_builder.c - choosing a job's builder (platforms/builder.h)
 * against a fake binfmt_misc directory and a fake interpreter directory, on
 * a pretend amd64 host. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rm_tree.h"
#include "asserts.h"
#include "platforms/binfmt.h"
#include "platforms/builder.h"
#include "core/platform.h"
#include "platforms/host.h"
#include "core/buf.h"

#include "core/banned.h"

struct fixture {
	char dir[64];	 /* fake binfmt_misc */
	char interp[64]; /* fake /usr/bin */
	struct plait_host_env env;
};

static void write_file(const char *dir, const char *name, const char *text, mode_t mode)
{
	struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/%s", dir, name);
	int fd = open(p.buf, O_WRONLY | O_CREAT | O_TRUNC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	plait_buf_release(&p);
}

/* A handler file as the kernel prints it, for arm64. */
static void write_arm64_handler(struct fixture *f, const char *name, bool enabled,
				const char *flags)
{
	struct plait_buf t = PLAIT_BUF_INIT;
	plait_buf_addf(&t,
		       "%s\n"
		       "interpreter %s/qemu-aarch64-static\n"
		       "flags: %s\n"
		       "offset 0\n"
		       "magic 7f454c460201010000000000000000000200b700\n"
		       "mask ffffffffffffff00fffffffffffffffffeffffff\n",
		       enabled ? "enabled" : "disabled", f->interp, flags);
	write_file(f->dir, name, t.buf, 0644);
	plait_buf_release(&t);
}

static void fake_mounted(struct fixture *f)
{
	write_file(f->dir, "register", "", 0200);
	write_file(f->dir, "status", "enabled\n", 0644);
}

static void fake_interpreter(struct fixture *f)
{
	write_file(f->interp, "qemu-aarch64-static", "#!/bin/true\n", 0755);
}

static int setup(void **state)
{
	/* One test at a time: a static fixture is enough. */
	static struct fixture fix;
	struct fixture *f = &fix;
	memset(f, 0, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/plait-ut-binfmt.XXXXXX");
	snprintf(f->interp, sizeof(f->interp), "/tmp/plait-ut-qemubin.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_non_null(mkdtemp(f->interp));
	f->env = (struct plait_host_env){
	    .binfmt_dir = f->dir, .interp_dir = f->interp, .host_arch = "amd64", .aarch32 = false};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	rm_tree(f->dir);
	rm_tree(f->interp);
	return 0;
}

static void platform(struct plait_platform *p, const char *os, const char *arch,
		     const char *variant)
{
	memset(p, 0, sizeof(*p));
	p->os = xstrdup(os);
	p->architecture = xstrdup(arch);
	p->variant = xstrdup_or_null(variant);
}

/* Choose for os/arch; returns the result, the builder and error left to the caller. */
static int choose(struct fixture *f, const char *os, const char *arch, const char *variant,
		  struct plait_builder *b, struct plait_error **err)
{
	struct plait_platform p;
	platform(&p, os, arch, variant);
	int r = plait_builder_choose_in(&f->env, &p, b, err);
	plait_platform_release(&p);
	return r;
}

static void assert_native(struct fixture *f, const char *arch, const char *variant)
{
	struct plait_builder b;
	struct plait_error *err = NULL;
	int r = choose(f, "linux", arch, variant, &b, &err);
	if (r < 0)
		fail_msg("linux/%s: %s", arch, err ? err->msg : "(no message)");
	assert_null(err);
	assert_string_equal(b.name, "native");
	assert_false(b.emulated);
	assert_non_null(b.runner.run);
	plait_builder_release(&b);
}

/* A handler that would serve arm64 must not turn the host's own arch into QEMU. */
static void test_builder__native_for_host_arch(void **state)
{
	struct fixture *f = *state;
	fake_mounted(f);
	fake_interpreter(f);
	write_arm64_handler(f, "qemu-aarch64", true, "PF");
	assert_native(f, "amd64", NULL);
}

/* host_arch NULL: this host's own architecture is native. */
static void test_builder__native_for_real_host_by_default(void **state)
{
	struct fixture *f = *state;
	struct plait_platform host = {0};
	plait_platform_host(&host);
	f->env.host_arch = NULL;
	assert_native(f, host.architecture, NULL);
	plait_platform_release(&host);
}

static void test_builder__native_for_386_on_amd64(void **state)
{
	struct fixture *f = *state;
	/* Not even binfmt_misc is needed for it. */
	assert_native(f, "386", NULL);
}

static void test_builder__native_needs_nothing_mounted(void **state)
{
	struct fixture *f = *state;
	assert_native(f, "amd64", NULL);
}

static void test_builder__arm_on_arm64_native_only_with_aarch32(void **state)
{
	struct fixture *f = *state;
	f->env.host_arch = "arm64";
	f->env.aarch32 = true;
	assert_native(f, "arm", "v7");

	/* Without AArch32 the arm64 host needs a handler, and there is none. */
	f->env.aarch32 = false;
	struct plait_builder b;
	struct plait_error *err = NULL;
	assert_true(choose(f, "linux", "arm", "v7", &b, &err) < 0);
	assert_non_null(err);
	assert_int_equal(err->code, PLAIT_E_NOT_FOUND);
	plait_error_free(err);
	plait_builder_release(&b);
}

static void test_builder__emulated_with_f_and_p_handler(void **state)
{
	struct fixture *f = *state;
	fake_mounted(f);
	fake_interpreter(f);
	write_arm64_handler(f, "qemu-aarch64", true, "PF");
	struct plait_builder b;
	struct plait_error *err = NULL;
	int r = choose(f, "linux", "arm64", NULL, &b, &err);
	if (r < 0)
		fail_msg("linux/arm64: %s", err ? err->msg : "(no message)");
	assert_null(err);
	assert_string_equal(b.name, "qemu");
	assert_true(b.emulated);
	assert_non_null(b.runner.run);
	struct plait_buf want = PLAIT_BUF_INIT;
	plait_buf_addf(&want, "%s/qemu-aarch64-static", f->interp);
	assert_string_equal(b.detail, want.buf);
	plait_buf_release(&want);
	plait_builder_release(&b);
}

/* A broken handler beside a good one does not hide the good one. */
static void test_builder__emulated_picks_the_good_handler(void **state)
{
	struct fixture *f = *state;
	fake_mounted(f);
	fake_interpreter(f);
	write_arm64_handler(f, "aarch64-old", false, "OC");
	write_arm64_handler(f, "qemu-aarch64", true, "FP");
	struct plait_builder b;
	struct plait_error *err = NULL;
	int r = choose(f, "linux", "arm64", NULL, &b, &err);
	if (r < 0)
		fail_msg("linux/arm64: %s", err ? err->msg : "(no message)");
	assert_string_equal(b.name, "qemu");
	assert_true(b.emulated);
	plait_builder_release(&b);
}

/* Every refusal: NOT_FOUND, the platform named, no builder left behind. */
static struct plait_error *assert_refused(struct fixture *f, const char *arch)
{
	struct plait_builder b;
	struct plait_error *err = NULL;
	int r = choose(f, "linux", arch, NULL, &b, &err);
	assert_int_equal(r, -PLAIT_E_NOT_FOUND);
	assert_non_null(err);
	assert_int_equal(err->code, PLAIT_E_NOT_FOUND);
	struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "linux/%s", arch);
	assert_contains(err->msg, p.buf);
	plait_buf_release(&p);
	assert_null(b.name);
	assert_false(b.emulated);
	plait_builder_release(&b);
	return err;
}

static void test_builder__not_mounted_says_how_to_fix(void **state)
{
	struct fixture *f = *state;
	fake_interpreter(f);
	/* A handler file but no 'register': binfmt_misc is not mounted there. */
	write_arm64_handler(f, "qemu-aarch64", true, "PF");
	struct plait_error *err = assert_refused(f, "arm64");
	assert_contains(err->msg, "binfmt_misc");
	assert_contains(err->msg, "plait qemu install arm64");
	plait_error_free(err);
}

static void test_builder__no_handler_says_how_to_fix(void **state)
{
	struct fixture *f = *state;
	fake_mounted(f);
	fake_interpreter(f);
	struct plait_error *err = assert_refused(f, "arm64");
	assert_contains(err->msg, "plait qemu install arm64");
	plait_error_free(err);
}

static void test_builder__disabled_handler_says_how_to_fix(void **state)
{
	struct fixture *f = *state;
	fake_mounted(f);
	fake_interpreter(f);
	write_arm64_handler(f, "qemu-aarch64", false, "PF");
	struct plait_error *err = assert_refused(f, "arm64");
	assert_contains(err->msg, "disabled");
	assert_contains(err->msg, "qemu-aarch64");
	assert_contains(err->msg, "plait qemu install arm64");
	plait_error_free(err);
}

/* binfmt_misc switched off as a whole: no handler runs, whatever its flags. */
static void test_builder__binfmt_disabled_globally_says_how_to_fix(void **state)
{
	struct fixture *f = *state;
	fake_mounted(f);
	fake_interpreter(f);
	write_file(f->dir, "status", "disabled\n", 0644);
	write_arm64_handler(f, "qemu-aarch64", true, "PF");
	struct plait_error *err = assert_refused(f, "arm64");
	assert_contains(err->msg, "binfmt_misc is disabled");
	assert_contains(err->msg, "echo 1 >");
	plait_error_free(err);
}

static void test_builder__handler_without_f_says_how_to_fix(void **state)
{
	struct fixture *f = *state;
	fake_mounted(f);
	fake_interpreter(f);
	write_arm64_handler(f, "qemu-aarch64", true, "P");
	struct plait_error *err = assert_refused(f, "arm64");
	assert_contains(err->msg, "F flag");
	assert_contains(err->msg, "plait qemu install arm64");
	plait_error_free(err);
}

static void test_builder__handler_without_p_says_how_to_fix(void **state)
{
	struct fixture *f = *state;
	fake_mounted(f);
	fake_interpreter(f);
	write_arm64_handler(f, "qemu-aarch64", true, "F");
	struct plait_error *err = assert_refused(f, "arm64");
	assert_contains(err->msg, "P flag");
	assert_contains(err->msg, "plait qemu install arm64");
	plait_error_free(err);
}

static void test_builder__missing_interpreter_names_qemu_user_static(void **state)
{
	struct fixture *f = *state;
	fake_mounted(f);
	/* Nothing in the interpreter directory, no handler. */
	struct plait_error *err = assert_refused(f, "arm64");
	assert_contains(err->msg, "qemu-user-static");
	assert_contains(err->msg, "plait qemu install arm64");
	plait_error_free(err);
}

static void test_builder__not_mounted_without_interpreter_names_qemu_user_static(void **state)
{
	struct fixture *f = *state;
	struct plait_error *err = assert_refused(f, "arm64");
	assert_contains(err->msg, "qemu-user-static");
	assert_contains(err->msg, "plait qemu install arm64");
	plait_error_free(err);
}

static void test_builder__non_linux_os_refused(void **state)
{
	struct fixture *f = *state;
	fake_mounted(f);
	fake_interpreter(f);
	/* Even the host's own architecture: RUN needs a Linux kernel. */
	static const char *const oses[] = {"windows", "darwin", "freebsd"};
	for (size_t i = 0; i < ARRAY_SIZE(oses); i++) {
		struct plait_builder b;
		struct plait_error *err = NULL;
		assert_true(choose(f, oses[i], "amd64", NULL, &b, &err) < 0);
		assert_non_null(err);
		struct plait_buf p = PLAIT_BUF_INIT;
		plait_buf_addf(&p, "%s/amd64", oses[i]);
		assert_contains(err->msg, p.buf);
		plait_buf_release(&p);
		assert_contains(err->msg, "linux");
		assert_null(b.name);
		plait_error_free(err);
		plait_builder_release(&b);
	}
}

static void test_builder__local_chooser_is_set(void **state)
{
	(void)state;
	struct plait_builder_chooser c = {0};
	plait_local_builders(&c);
	assert_non_null(c.choose);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_builder__native_for_host_arch),
	    T(test_builder__native_for_real_host_by_default),
	    T(test_builder__native_for_386_on_amd64),
	    T(test_builder__native_needs_nothing_mounted),
	    T(test_builder__arm_on_arm64_native_only_with_aarch32),
	    T(test_builder__emulated_with_f_and_p_handler),
	    T(test_builder__emulated_picks_the_good_handler),
	    T(test_builder__not_mounted_says_how_to_fix),
	    T(test_builder__no_handler_says_how_to_fix),
	    T(test_builder__disabled_handler_says_how_to_fix),
	    T(test_builder__binfmt_disabled_globally_says_how_to_fix),
	    T(test_builder__handler_without_f_says_how_to_fix),
	    T(test_builder__handler_without_p_says_how_to_fix),
	    T(test_builder__missing_interpreter_names_qemu_user_static),
	    T(test_builder__not_mounted_without_interpreter_names_qemu_user_static),
	    T(test_builder__non_linux_os_refused),
	    cmocka_unit_test(test_builder__local_chooser_is_set),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
