/* Unit tests for core/shell_words.c: how RUN text splits into simple commands
 * (words, quoting, escapes, operators, redirections, comments, substitutions).
 * Each script is rendered as "<before>{word|word}<after> …" so a failure
 * shows the whole split that differed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

#include "core/buf.h"
#include "core/shell_words.h"
#include "core/util.h"

static const char *op_name(enum plait_shell_op op)
{
	switch (op) {
	case PLAIT_SHELL_START:
		return "";
	case PLAIT_SHELL_SEQ:
		return ";";
	case PLAIT_SHELL_AND:
		return "&&";
	case PLAIT_SHELL_OR:
		return "||";
	case PLAIT_SHELL_PIPE:
		return "|";
	case PLAIT_SHELL_SUBSHELL:
		return "(";
	}
	return "?";
}

static void render(const struct plait_shell_script *s, struct plait_buf *out)
{
	for (size_t i = 0; i < s->n; i++) {
		const struct plait_shell_cmd *c = &s->cmds[i];
		plait_buf_addf(out, "%s%s{", i ? " " : "", op_name(c->before));
		for (size_t w = 0; w < c->n; w++)
			plait_buf_addf(out, "%s%s", w ? "|" : "", c->words[w]);
		assert_null(c->words[c->n]); /* NULL-terminated */
		plait_buf_addf(out, "}%s", op_name(c->after));
	}
}

static void check_split(const char *text, const char *want)
{
	struct plait_shell_script s = {0};
	plait_shell_split(text, &s);
	struct plait_buf got = PLAIT_BUF_INIT;
	render(&s, &got);
	if (!streq(got.buf, want))
		fail_msg("split of '%s':\n  got  %s\n  want %s", text, got.buf, want);
	plait_buf_release(&got);
	plait_shell_script_release(&s);
}

static void test_shell_words__splits_words_on_blanks(void **state)
{
	(void)state;
	check_split("apt-get  install\t-y curl", "{apt-get|install|-y|curl};");
	check_split("", "");
	check_split("   \n\n ;; ", "");
}

static void test_shell_words__quotes_join_and_keep_contents(void **state)
{
	(void)state;
	check_split("echo 'a b' \"c \\\"d\\\" \\\\ $x\" e\\ f", "{echo|a b|c \"d\" \\ $x|e f};");
	check_split("pip install 'torch==2.3'x\"y\"", "{pip|install|torch==2.3xy};");
	/* an unterminated quote runs to the end, never fails */
	check_split("echo 'open", "{echo|open};");
	check_split("echo \"open", "{echo|open};");
	/* inside double quotes only \" \\ \$ \` and a newline are escapes */
	check_split("echo \"a\\nb\"", "{echo|a\\nb};");
}

static void test_shell_words__backslash_newline_continues_the_line(void **state)
{
	(void)state;
	check_split("apt-get install \\\n    -y \\\n    curl", "{apt-get|install|-y|curl};");
	check_split("echo \"a\\\nb\"", "{echo|ab};");
	check_split("echo a\\;b", "{echo|a;b};");
}

static void test_shell_words__operators_mark_both_sides(void **state)
{
	(void)state;
	check_split("a && b || c | d; e & f\ng",
		    "{a}&& &&{b}|| ||{c}| |{d}; ;{e}; ;{f}; ;{g};");
	/* "&&" at the end of a line carries over blank lines */
	check_split("a &&\n\n  b", "{a}&& &&{b};");
}

static void test_shell_words__subshell_marks_its_first_command(void **state)
{
	(void)state;
	/* ")" ends a command like ";": what follows the subshell starts afresh */
	check_split("(cd x && make) && y", "({cd|x}&& &&{make}; ;{y};");
	check_split("a && (cd x)", "{a}&& ({cd|x};");
	/* "(" never shows as the operator after a command */
	check_split("a (b)", "{a}; ({b};");
}

static void test_shell_words__comments_run_to_the_end_of_the_line(void **state)
{
	(void)state;
	check_split("a # b && c\nd", "{a}; ;{d};");
	/* '#' inside a word is a plain character */
	check_split("echo a#b", "{echo|a#b};");
}

static void test_shell_words__redirections_are_dropped_with_their_targets(void **state)
{
	(void)state;
	check_split("a >/dev/null 2>&1 b < in c &>log d", "{a|b|c|d};");
	check_split("curl -o x url 2> err", "{curl|-o|x|url};");
	/* a heredoc's delimiter is a redirection target too */
	check_split("cat <<-EOF >> file", "{cat};");
	/* a number that is not glued to the operator stays a word */
	check_split("echo 2 > x", "{echo|2};");
}

static void test_shell_words__substitutions_stay_inside_their_word(void **state)
{
	(void)state;
	check_split("echo $(uname -m) `date +%s` x$(a (b) c)y",
		    "{echo|$(uname -m)|`date +%s`|x$(a (b) c)y};");
	check_split("echo \"v=$(cat f; echo)\"", "{echo|v=$(cat f; echo)};");
}

static void test_shell_words__split_appends_and_add_copies_words(void **state)
{
	(void)state;
	struct plait_shell_script s = {0};
	const char *argv[] = {"python", "-c", "print(1) && x"};
	plait_shell_script_add(&s, argv, 3);
	plait_shell_split("a | b", &s);
	struct plait_buf got = PLAIT_BUF_INIT;
	render(&s, &got);
	assert_string_equal(got.buf, "{python|-c|print(1) && x} {a}| |{b};");
	assert_ptr_not_equal(s.cmds[0].words[0], argv[0]);
	plait_buf_release(&got);
	plait_shell_script_release(&s);
	assert_int_equal(s.n, 0);
	assert_null(s.cmds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_shell_words__splits_words_on_blanks),
	    cmocka_unit_test(test_shell_words__quotes_join_and_keep_contents),
	    cmocka_unit_test(test_shell_words__backslash_newline_continues_the_line),
	    cmocka_unit_test(test_shell_words__operators_mark_both_sides),
	    cmocka_unit_test(test_shell_words__subshell_marks_its_first_command),
	    cmocka_unit_test(test_shell_words__comments_run_to_the_end_of_the_line),
	    cmocka_unit_test(test_shell_words__redirections_are_dropped_with_their_targets),
	    cmocka_unit_test(test_shell_words__substitutions_stay_inside_their_word),
	    cmocka_unit_test(test_shell_words__split_appends_and_add_copies_words),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
