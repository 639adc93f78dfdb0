/* tests/unit/test_binfmt.c - the binfmt arch table, parsing handler files,
 * status classification and install, against a fake binfmt_misc directory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rm_tree.h"
#include "platforms/binfmt.h"
#include "core/platform.h"
#include "core/buf.h"

#include "core/banned.h"

/* What the kernel prints for a handler registered by 'plait qemu install arm64'
 * (flags FP; the kernel lists P before F). */
static const char arm64_f[] = "enabled\n"
			      "interpreter /usr/bin/qemu-aarch64-static\n"
			      "flags: PF\n"
			      "offset 0\n"
			      "magic 7f454c460201010000000000000000000200b700\n"
			      "mask ffffffffffffff00fffffffffffffffffeffffff\n";
/* Debian's arm handler without F, disabled. */
static const char arm_nof[] = "disabled\n"
			      "interpreter /usr/libexec/qemu-binfmt/arm-binfmt-P\n"
			      "flags: OC\n"
			      "offset 0\n"
			      "magic 7f454c4601010100000000000000000002002800\n"
			      "mask ffffffffffffff00fffffffffffffffffeffffff\n";
static const char jar[] = "enabled\n"
			  "interpreter /usr/bin/jexec\n"
			  "flags: \n"
			  "extension .jar\n";

struct fixture {
	char dir[64];	 /* fake binfmt_misc */
	char interp[64]; /* fake /usr/bin */
};

static void write_text(const char *dir, const char *name, const char *text)
{
	struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/%s", dir, name);
	int fd = open(p.buf, O_WRONLY | O_CREAT | O_TRUNC, 0755);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	plait_buf_release(&p);
}

static char *read_text(const char *dir, const char *name)
{
	struct plait_buf p = PLAIT_BUF_INIT, b = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/%s", dir, name);
	assert_int_equal(plait_buf_read_file(&b, p.buf, 1 << 20), 0);
	plait_buf_release(&p);
	return plait_buf_detach(&b, NULL);
}

static int setup(void **state)
{
	/* One test at a time: a static fixture is enough. */
	static struct fixture fix;
	struct fixture *f = &fix;
	snprintf(f->dir, sizeof(f->dir), "/tmp/plait-binfmt.XXXXXX");
	snprintf(f->interp, sizeof(f->interp), "/tmp/plait-qemubin.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_non_null(mkdtemp(f->interp));
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

/* A fake mounted binfmt_misc with the given handlers. */
static void fake_mounted(struct fixture *f)
{
	write_text(f->dir, "register", "");
	write_text(f->dir, "status", "enabled\n");
}

static void test_binfmt__table_follows_known_arches(void **state)
{
	(void)state;
	size_t n;
	const struct plait_binfmt_arch *t = plait_binfmt_arches(&n);
	const char *const *known = plait_platform_known_arches();
	size_t k = 0;
	for (; known[k]; k++) {
		assert_true(k < n);
		assert_string_equal(t[k].arch, known[k]);
	}
	assert_int_equal(k, n);
}

static void test_binfmt__magic_decodes_to_elf_machine(void **state)
{
	(void)state;
	static const struct {
		const char *arch;
		unsigned class, machine;
		bool be;
	} want[] = {
	    {"amd64", 2, 62, false},	{"arm64", 2, 183, false},  {"arm", 1, 40, false},
	    {"386", 1, 3, false},	{"ppc64le", 2, 21, false}, {"s390x", 2, 22, true},
	    {"riscv64", 2, 243, false}, {"mips64le", 2, 8, false}, {"loong64", 2, 258, false},
	};
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		const struct plait_binfmt_arch *a = plait_binfmt_arch_lookup(want[i].arch);
		assert_non_null(a);
		uint8_t m[PLAIT_BINFMT_MAX_MAGIC], k[PLAIT_BINFMT_MAX_MAGIC];
		size_t ml, kl;
		assert_int_equal(plait_binfmt_unescape(a->magic, m, sizeof(m), &ml, NULL), 0);
		assert_int_equal(plait_binfmt_unescape(a->mask, k, sizeof(k), &kl, NULL), 0);
		assert_int_equal(ml, 20);
		assert_int_equal(kl, 20);
		assert_memory_equal(m,
				    "\x7f"
				    "ELF",
				    4);
		assert_int_equal(m[4], want[i].class);
		assert_int_equal(m[5], want[i].be ? 2 : 1);
		unsigned type =
		    want[i].be ? (unsigned)(m[16] << 8 | m[17]) : (unsigned)(m[17] << 8 | m[16]);
		unsigned machine =
		    want[i].be ? (unsigned)(m[18] << 8 | m[19]) : (unsigned)(m[19] << 8 | m[18]);
		assert_int_equal(type, 2); /* ET_EXEC; the mask lets ET_DYN through */
		if (machine != want[i].machine)
			fail_msg("%s: e_machine %u, want %u", want[i].arch, machine,
				 want[i].machine);
		assert_int_equal(a->e_machine, want[i].machine);
		/* The mask must keep the magic number and e_machine's low byte
		 * (ppc64le's, as upstream's, ignores the high one). */
		assert_memory_equal(k, "\xff\xff\xff\xff", 4);
		assert_int_equal(k[want[i].be ? 19 : 18], 0xff);
	}
}

static void test_binfmt__lookup_accepts_aliases_and_rejects_unknown(void **state)
{
	(void)state;
	assert_string_equal(plait_binfmt_arch_lookup("aarch64")->qemu, "aarch64");
	assert_string_equal(plait_binfmt_arch_lookup("linux/arm64")->arch, "arm64");
	assert_string_equal(plait_binfmt_arch_lookup("arm/v6")->qemu, "arm");
	assert_string_equal(plait_binfmt_arch_lookup("mips64le")->qemu, "mips64el");
	assert_string_equal(plait_binfmt_arch_lookup("386")->qemu, "i386");
	assert_string_equal(plait_binfmt_arch_lookup("loong64")->qemu, "loongarch64");
	assert_null(plait_binfmt_arch_lookup("sparc"));
	assert_null(plait_binfmt_arch_lookup(""));
}

static void test_binfmt__unescape_rejects_bad_escapes(void **state)
{
	(void)state;
	uint8_t b[4];
	size_t n;
	struct plait_error *err = NULL;
	assert_int_equal(plait_binfmt_unescape("\\x7\\x00", b, sizeof(b), &n, &err),
			 -PLAIT_E_INVALID);
	assert_non_null(strstr(err->msg, "two hex digits"));
	plait_error_clear(&err);
	assert_int_equal(plait_binfmt_unescape("\\x00\\x01\\x02\\x03\\x04", b, sizeof(b), &n, &err),
			 -PLAIT_E_INVALID);
	assert_non_null(strstr(err->msg, "longer than 4 bytes"));
	plait_error_clear(&err);
	assert_int_equal(plait_binfmt_unescape("A\\\\\\xfF", b, sizeof(b), &n, NULL), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(b, "A\\\xff", 3);
}

static void test_binfmt__register_line_is_exact(void **state)
{
	(void)state;
	char *l = plait_binfmt_register_line(plait_binfmt_arch_lookup("arm64"),
					     "/usr/bin/qemu-aarch64-static");
	assert_string_equal(l, ":qemu-aarch64:M::"
			       "\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x0"
			       "0\\x02\\x00\\xb7\\x00:"
			       "\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\"
			       "xff\\xff\\xff\\xfe\\xff\\xff\\xff:"
			       "/usr/bin/qemu-aarch64-static:FP");
	free(l);
}

static void test_binfmt__entry_parse_reads_kernel_format(void **state)
{
	(void)state;
	struct plait_binfmt_entry e;
	assert_int_equal(plait_binfmt_entry_parse("qemu-aarch64", arm64_f, &e, NULL), 0);
	assert_true(e.enabled);
	assert_string_equal(e.interpreter, "/usr/bin/qemu-aarch64-static");
	assert_string_equal(e.flags, "PF");
	assert_true(plait_binfmt_entry_has_flag(&e, 'F'));
	assert_true(plait_binfmt_entry_has_flag(&e, 'P'));
	assert_false(plait_binfmt_entry_has_flag(&e, 'O'));
	assert_int_equal(e.offset, 0);
	assert_int_equal(e.magic_len, 20);
	assert_int_equal(e.magic[18], 0xb7);
	assert_int_equal(e.mask_len, 20);
	assert_int_equal(e.mask[16], 0xfe);
	plait_binfmt_entry_release(&e);

	assert_int_equal(plait_binfmt_entry_parse("qemu-arm", arm_nof, &e, NULL), 0);
	assert_false(e.enabled);
	assert_string_equal(e.flags, "OC");
	assert_false(plait_binfmt_entry_has_flag(&e, 'F'));
	plait_binfmt_entry_release(&e);

	assert_int_equal(plait_binfmt_entry_parse("jar", jar, &e, NULL), 0);
	assert_true(e.is_extension);
	assert_string_equal(e.flags, "");
	assert_int_equal(e.magic_len, 0);
	plait_binfmt_entry_release(&e);
}

static void test_binfmt__entry_parse_rejects_garbage(void **state)
{
	(void)state;
	struct plait_binfmt_entry e;
	struct plait_error *err = NULL;
	assert_int_equal(plait_binfmt_entry_parse("x", "interpreter /bin/true\n", &e, &err),
			 -PLAIT_E_INVALID);
	assert_string_equal(err->msg, "binfmt_misc handler 'x': no 'enabled' or 'disabled' line");
	plait_error_clear(&err);
	assert_int_equal(plait_binfmt_entry_parse("y", "enabled\nmagic 7f45zz\n", &e, &err),
			 -PLAIT_E_INVALID);
	assert_string_equal(err->msg, "binfmt_misc handler 'y': cannot parse line 'magic 7f45zz'");
	plait_error_clear(&err);
}

static void test_binfmt__entry_matches_by_name_or_magic_only(void **state)
{
	(void)state;
	struct plait_binfmt_entry e;
	const struct plait_binfmt_arch *arm64 = plait_binfmt_arch_lookup("arm64");
	const struct plait_binfmt_arch *arm = plait_binfmt_arch_lookup("arm");
	const struct plait_binfmt_arch *rv = plait_binfmt_arch_lookup("riscv64");
	assert_int_equal(plait_binfmt_entry_parse("other-name", arm64_f, &e, NULL), 0);
	assert_true(plait_binfmt_entry_matches(&e, arm64));
	assert_false(plait_binfmt_entry_matches(&e, arm));
	assert_false(plait_binfmt_entry_matches(&e, rv));
	plait_binfmt_entry_release(&e);
	/* Named like ours but with another magic: the name decides. */
	assert_int_equal(plait_binfmt_entry_parse("qemu-riscv64", arm64_f, &e, NULL), 0);
	assert_true(plait_binfmt_entry_matches(&e, rv));
	plait_binfmt_entry_release(&e);
	assert_int_equal(plait_binfmt_entry_parse("jar", jar, &e, NULL), 0);
	size_t n;
	const struct plait_binfmt_arch *t = plait_binfmt_arches(&n);
	for (size_t i = 0; i < n; i++)
		assert_false(plait_binfmt_entry_matches(&e, &t[i]));
	plait_binfmt_entry_release(&e);
}

static void test_binfmt__every_table_magic_matches_only_itself(void **state)
{
	(void)state;
	size_t n;
	const struct plait_binfmt_arch *t = plait_binfmt_arches(&n);
	for (size_t i = 0; i < n; i++) {
		struct plait_binfmt_entry e = {
		    .name = (char *)"x", .flags = (char *)"F", .enabled = true};
		assert_int_equal(
		    plait_binfmt_unescape(t[i].magic, e.magic, sizeof(e.magic), &e.magic_len, NULL),
		    0);
		assert_int_equal(
		    plait_binfmt_unescape(t[i].mask, e.mask, sizeof(e.mask), &e.mask_len, NULL), 0);
		for (size_t j = 0; j < n; j++)
			if (plait_binfmt_entry_matches(&e, &t[j]) != (i == j))
				fail_msg("handler for %s %s %s", t[i].arch,
					 i == j ? "does not match" : "matches", t[j].arch);
	}
}

static void test_binfmt__read_not_mounted_says_how_to_fix(void **state)
{
	struct fixture *f = *state;
	struct plait_binfmt_entry *v = NULL;
	size_t n = 9;
	struct plait_error *err = NULL;
	assert_false(plait_binfmt_mounted(f->dir));
	assert_int_equal(plait_binfmt_read(f->dir, &v, &n, &err), -PLAIT_E_NOT_FOUND);
	assert_null(v);
	assert_int_equal(n, 0);
	assert_non_null(strstr(err->msg, "binfmt_misc is not mounted at "));
	assert_non_null(strstr(err->msg, ": run 'plait qemu install' as root"));
	plait_error_clear(&err);
}

static void test_binfmt__read_lists_handlers_sorted(void **state)
{
	struct fixture *f = *state;
	fake_mounted(f);
	write_text(f->dir, "qemu-arm", arm_nof);
	write_text(f->dir, "jar", jar);
	write_text(f->dir, "qemu-aarch64", arm64_f);
	struct plait_binfmt_entry *v = NULL;
	size_t n = 0;
	assert_int_equal(plait_binfmt_read(f->dir, &v, &n, NULL), 0);
	assert_int_equal(n, 3);
	assert_string_equal(v[0].name, "jar");
	assert_string_equal(v[1].name, "qemu-aarch64");
	assert_string_equal(v[2].name, "qemu-arm");
	plait_binfmt_entries_free(v, n);
}

static void test_binfmt__find_prefers_enabled_with_f(void **state)
{
	(void)state;
	struct plait_binfmt_entry v[3];
	assert_int_equal(plait_binfmt_entry_parse("a-disabled", arm64_f, &v[0], NULL), 0);
	v[0].enabled = false;
	assert_int_equal(plait_binfmt_entry_parse("b-nof", arm64_f, &v[1], NULL), 0);
	v[1].flags[0] = '\0';
	assert_int_equal(plait_binfmt_entry_parse("c-good", arm64_f, &v[2], NULL), 0);
	assert_int_equal(plait_binfmt_find(v, 3, plait_binfmt_arch_lookup("arm64")), 2);
	assert_int_equal(plait_binfmt_find(v, 2, plait_binfmt_arch_lookup("arm64")), 1);
	assert_int_equal(plait_binfmt_find(v, 3, plait_binfmt_arch_lookup("s390x")), -1);
	for (int i = 0; i < 3; i++)
		plait_binfmt_entry_release(&v[i]);
}

static void test_binfmt__native_rules(void **state)
{
	(void)state;
	assert_true(plait_binfmt_native("amd64", false, "amd64"));
	assert_true(plait_binfmt_native("amd64", false, "386"));
	assert_false(plait_binfmt_native("amd64", false, "arm64"));
	assert_true(plait_binfmt_native("arm64", false, "arm64"));
	assert_false(plait_binfmt_native("arm64", false, "arm"));
	assert_true(plait_binfmt_native("arm64", true, "arm"));
	assert_false(plait_binfmt_native("arm64", true, "386"));
	assert_false(plait_binfmt_native("riscv64", true, "arm"));
}

static const struct plait_binfmt_status *status_of(const struct plait_binfmt_status *v, size_t n,
						   const char *arch)
{
	for (size_t i = 0; i < n; i++)
		if (streq(v[i].arch->arch, arch))
			return &v[i];
	fail_msg("no status for %s", arch);
	return NULL;
}

static void test_binfmt__status_classifies_each_arch(void **state)
{
	struct fixture *f = *state;
	fake_mounted(f);
	write_text(f->dir, "qemu-aarch64", arm64_f);
	write_text(f->dir, "qemu-arm", arm_nof);
	write_text(f->dir, "jar", jar);
	write_text(f->interp, "qemu-aarch64-static", "#!/bin/true\n");
	struct plait_binfmt_status *v = NULL;
	size_t n = 0;
	bool mounted = false;
	assert_int_equal(
	    plait_binfmt_status(f->dir, f->interp, "amd64", false, &v, &n, &mounted, NULL), 0);
	assert_true(mounted);
	const struct plait_binfmt_status *s = status_of(v, n, "arm64");
	assert_false(s->native);
	assert_true(s->registered && s->enabled && s->fix_binary);
	assert_string_equal(s->handler, "qemu-aarch64");
	assert_string_equal(s->interpreter, "/usr/bin/qemu-aarch64-static");
	assert_true(s->have_interpreter);
	s = status_of(v, n, "arm");
	assert_true(s->registered);
	assert_false(s->enabled);
	assert_false(s->fix_binary);
	assert_string_equal(s->interpreter, "/usr/libexec/qemu-binfmt/arm-binfmt-P");
	assert_false(s->have_interpreter);
	s = status_of(v, n, "386");
	assert_true(s->native);
	assert_false(s->registered);
	assert_null(s->handler);
	assert_true(status_of(v, n, "amd64")->native);
	assert_false(status_of(v, n, "s390x")->registered);
	plait_binfmt_status_free(v, n);
}

static void test_binfmt__status_not_mounted_is_not_an_error(void **state)
{
	struct fixture *f = *state;
	struct plait_binfmt_status *v = NULL;
	size_t n = 0;
	bool mounted = true;
	assert_int_equal(
	    plait_binfmt_status(f->dir, f->interp, "arm64", false, &v, &n, &mounted, NULL), 0);
	assert_false(mounted);
	for (size_t i = 0; i < n; i++)
		assert_false(v[i].registered);
	assert_true(status_of(v, n, "arm64")->native);
	assert_false(status_of(v, n, "amd64")->native);
	plait_binfmt_status_free(v, n);
}

static void test_binfmt__install_refuses_native_and_missing_interpreter(void **state)
{
	struct fixture *f = *state;
	fake_mounted(f);
	enum plait_binfmt_action act;
	struct plait_error *err = NULL;
	assert_int_equal(plait_binfmt_install(f->dir, f->interp, "amd64", false,
					      plait_binfmt_arch_lookup("386"), &act, &err),
			 -PLAIT_E_USAGE);
	assert_string_equal(err->msg,
			    "linux/386 runs natively on this amd64 host: it needs no QEMU handler");
	plait_error_clear(&err);
	assert_int_equal(plait_binfmt_install(f->dir, "/usr/nonexistent", "amd64", false,
					      plait_binfmt_arch_lookup("arm64"), &act, &err),
			 -PLAIT_E_NOT_FOUND);
	assert_string_equal(
	    err->msg, "no /usr/nonexistent/qemu-aarch64-static: apt-get install qemu-user-static");
	plait_error_clear(&err);
	char *reg = read_text(f->dir, "register");
	assert_string_equal(reg, "");
	free(reg);
}

static void test_binfmt__install_registers_with_f(void **state)
{
	struct fixture *f = *state;
	fake_mounted(f);
	write_text(f->interp, "qemu-riscv64-static", "");
	enum plait_binfmt_action act = PLAIT_BINFMT_UNCHANGED;
	const struct plait_binfmt_arch *a = plait_binfmt_arch_lookup("riscv64");
	assert_int_equal(plait_binfmt_install(f->dir, f->interp, "amd64", false, a, &act, NULL), 0);
	assert_int_equal(act, PLAIT_BINFMT_REGISTERED);
	struct plait_buf want = PLAIT_BUF_INIT;
	plait_buf_addf(&want, ":qemu-riscv64:M::%s:%s:%s/qemu-riscv64-static:FP", a->magic, a->mask,
		       f->interp);
	char *reg = read_text(f->dir, "register");
	assert_string_equal(reg, want.buf);
	free(reg);
	plait_buf_release(&want);
}

static void test_binfmt__install_replaces_handler_without_f(void **state)
{
	struct fixture *f = *state;
	fake_mounted(f);
	write_text(f->dir, "qemu-arm", arm_nof);
	write_text(f->interp, "qemu-arm-static", "");
	enum plait_binfmt_action act;
	assert_int_equal(plait_binfmt_install(f->dir, f->interp, "amd64", false,
					      plait_binfmt_arch_lookup("arm"), &act, NULL),
			 0);
	assert_int_equal(act, PLAIT_BINFMT_REREGISTERED);
	/* The fake file got the kernel's "remove" command instead of being removed. */
	char *old = read_text(f->dir, "qemu-arm");
	assert_true(startswith(old, "-1"));
	free(old);
	char *reg = read_text(f->dir, "register");
	assert_true(startswith(reg, ":qemu-arm:M::\\x7fELF\\x01"));
	assert_true(endswith(reg, "/qemu-arm-static:FP"));
	free(reg);
}

/* A handler with F but without P (busybox applets would fail under it) is
 * replaced by one with both. */
static void test_binfmt__install_replaces_handler_without_p(void **state)
{
	struct fixture *f = *state;
	fake_mounted(f);
	static const char arm64_f_only[] = "enabled\n"
					   "interpreter /usr/bin/qemu-aarch64-static\n"
					   "flags: F\n"
					   "offset 0\n"
					   "magic 7f454c460201010000000000000000000200b700\n"
					   "mask ffffffffffffff00fffffffffffffffffeffffff\n";
	write_text(f->dir, "qemu-aarch64", arm64_f_only);
	write_text(f->interp, "qemu-aarch64-static", "");
	enum plait_binfmt_action act;
	assert_int_equal(plait_binfmt_install(f->dir, f->interp, "amd64", false,
					      plait_binfmt_arch_lookup("arm64"), &act, NULL),
			 0);
	assert_int_equal(act, PLAIT_BINFMT_REREGISTERED);
	char *e = read_text(f->dir, "qemu-aarch64");
	assert_true(startswith(e, "-1")); /* the kernel's "remove" command */
	free(e);
	char *reg = read_text(f->dir, "register");
	assert_true(endswith(reg, "/qemu-aarch64-static:FP"));
	free(reg);
}

static void test_binfmt__install_is_idempotent(void **state)
{
	struct fixture *f = *state;
	fake_mounted(f);
	write_text(f->dir, "myarm", arm64_f); /* another tool's handler with F */
	write_text(f->interp, "qemu-aarch64-static", "");
	enum plait_binfmt_action act;
	assert_int_equal(plait_binfmt_install(f->dir, f->interp, "amd64", false,
					      plait_binfmt_arch_lookup("arm64"), &act, NULL),
			 0);
	assert_int_equal(act, PLAIT_BINFMT_UNCHANGED);
	char *reg = read_text(f->dir, "register");
	assert_string_equal(reg, "");
	free(reg);
	char *e = read_text(f->dir, "myarm");
	assert_string_equal(e, arm64_f);
	free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_binfmt__table_follows_known_arches),
	    cmocka_unit_test(test_binfmt__magic_decodes_to_elf_machine),
	    cmocka_unit_test(test_binfmt__lookup_accepts_aliases_and_rejects_unknown),
	    cmocka_unit_test(test_binfmt__unescape_rejects_bad_escapes),
	    cmocka_unit_test(test_binfmt__register_line_is_exact),
	    cmocka_unit_test_setup_teardown(test_binfmt__install_replaces_handler_without_p, setup, teardown),
	    cmocka_unit_test(test_binfmt__entry_parse_reads_kernel_format),
	    cmocka_unit_test(test_binfmt__entry_parse_rejects_garbage),
	    cmocka_unit_test(test_binfmt__entry_matches_by_name_or_magic_only),
	    cmocka_unit_test(test_binfmt__every_table_magic_matches_only_itself),
	    cmocka_unit_test(test_binfmt__find_prefers_enabled_with_f),
	    cmocka_unit_test(test_binfmt__native_rules),
	    cmocka_unit_test_setup_teardown(test_binfmt__read_not_mounted_says_how_to_fix, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_binfmt__read_lists_handlers_sorted, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_binfmt__status_classifies_each_arch, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_binfmt__status_not_mounted_is_not_an_error, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(
		test_binfmt__install_refuses_native_and_missing_interpreter, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_binfmt__install_registers_with_f, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_binfmt__install_replaces_handler_without_f, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_binfmt__install_is_idempotent, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
