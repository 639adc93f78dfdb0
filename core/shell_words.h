/* core/shell_words.h - split shell text into simple commands and their words.
 *
 * Contract:
 *  - enough shell to recognise what a RUN line runs, never to run it: quotes
 *    ('…', "…" with \" \\ \$ \` escapes), backslash escapes and line
 *    continuations, comments, the operators ; & && || | ( ) and newlines;
 *  - redirections (">x", "2>&1", "&>x", "<x") and their targets are dropped
 *    from the words; a $(…) or `…` substitution is kept verbatim inside its
 *    word, so callers can tell a word is not a plain literal;
 *  - not a POSIX parser: no case/if/for grammar (keywords are plain words),
 *    no expansion; any input splits without error;
 *  - pure: no I/O, nothing printed. */
#ifndef PLAIT_SHELL_WORDS_H
#define PLAIT_SHELL_WORDS_H

#include <stddef.h>

/* The operator before or after a simple command. */
enum plait_shell_op {
	PLAIT_SHELL_START,    /* none: before the first command; a command from _add() */
	PLAIT_SHELL_SEQ,      /* ";", "&", a newline or ")" */
	PLAIT_SHELL_AND,      /* "&&" */
	PLAIT_SHELL_OR,	      /* "||" */
	PLAIT_SHELL_PIPE,     /* "|" */
	PLAIT_SHELL_SUBSHELL, /* "(": only as before; the command that opens a subshell */
};

struct plait_shell_cmd {
	char **words; /* NULL-terminated */
	size_t n;
	enum plait_shell_op before; /* the operator in front of it */
	enum plait_shell_op after;  /* PLAIT_SHELL_SEQ when it is the last */
};

struct plait_shell_script {
	struct plait_shell_cmd *cmds;
	size_t n, alloc;
};

/* Append the simple commands of text to out (empty commands are skipped). */
void plait_shell_split(const char *text, struct plait_shell_script *out);
/* Append one command made of the n words (copied), as an exec-form RUN has. */
void plait_shell_script_add(struct plait_shell_script *s, const char *const *words, size_t n);
void plait_shell_script_release(struct plait_shell_script *s);

#endif
