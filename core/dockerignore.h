/* core/dockerignore.h - .dockerignore files: parsing, the file lookup rule and
 * matching, as moby/patternmatcher (ignorefile.ReadAll + MatchesOrParentMatches)
 * and BuildKit's context transfer do it.
 *
 * Contract:
 *  - parsing: an optional UTF-8 BOM is dropped; a line whose FIRST character
 *    is '#' is a comment (after trimming it is a pattern: "  #x" means "#x");
 *    lines are trimmed of white space; blank lines are skipped; a leading '!'
 *    marks an exception (white space after it is trimmed too); the pattern is
 *    cleaned like Go's filepath.Clean and one leading '/' is dropped (patterns
 *    are relative to the context root). A lone '!' and a pattern that is not
 *    valid Go filepath.Match syntax are errors naming "<source>:<line>".
 *  - pattern syntax: '*' any run of non-'/' bytes, '?' one non-'/' character,
 *    '[...]' a class ('^' negates, ranges a-z, '\' escapes), '\x' a literal x,
 *    '**' any number of directories ("**" + '/' matches zero or more whole
 *    directories, a trailing "**" matches everything below). A pattern that is
 *    '**' followed only by literal text matches any path ending in that text,
 *    as moby's suffix fast path does ("**.go" matches "a/b.go").
 *  - matching (plait_ignore_match): rules are applied in file order and the
 *    last rule that matches decides; a rule matches a path when it matches the
 *    path itself or any of its parent directories, so "docs" excludes
 *    "docs/a/b", and "!docs/README.md" after it re-includes that one file.
 *    Exclusion rules are only tried while the path is included and exceptions
 *    only while it is excluded (moby's MatchesOrParentMatches).
 *  - paths handed in are relative to the context root, '/'-separated, cleaned,
 *    without a leading "./" or '/'.
 *  - lookup (plait_ignore_load): "<Dockerfile>.dockerignore" next to the
 *    Dockerfile wins over "<context>/.dockerignore"; neither is no rules. */
#ifndef PLAIT_DOCKERIGNORE_H
#define PLAIT_DOCKERIGNORE_H

#include "buf.h"
#include "error.h"

struct plait_ignore_rule {
	char *pattern;     /* cleaned, without the '!' */
	unsigned line;     /* 1-based line in the source file */
	bool exception;    /* the line started with '!' */
	bool suffix_match; /* "**" + literal suffix: moby's HasSuffix fast path */
};

struct plait_ignore {
	char *source; /* the file the rules came from, for messages (".dockerignore") */
	struct plait_ignore_rule *rules;
	size_t n_rules, alloc_rules;
	bool has_exceptions;      /* some rule starts with '!' */
	bool exception_wildcards; /* some exception contains '*', '?' or '[' */
};

/* Parse .dockerignore content. source names the file in messages (NULL:
 * ".dockerignore"). Errors are -PLAIT_E_INVALID: "<source>:<line>: invalid
 * pattern '<p>': <why>". *out is set only on success. */
int plait_ignore_parse(const char *data, size_t len, const char *source, struct plait_ignore **out,
		       struct plait_error **err);
/* Find and parse the ignore file for a build: "<dockerfile>.dockerignore" when
 * it exists (dockerfile is the Dockerfile's path as the user gave it; NULL or
 * "-" skips this step), else "<context_dir>/.dockerignore", else an empty rule
 * set (source ".dockerignore"). *out is always set on success. */
int plait_ignore_load(const char *context_dir, const char *dockerfile, struct plait_ignore **out,
		      struct plait_error **err);
void plait_ignore_free(struct plait_ignore *ig);
static inline void plait_ignore_freep(struct plait_ignore **ig)
{
	plait_ignore_free(*ig);
}
#define _cleanup_ignore_ _cleanup_(plait_ignore_freep)

/* true when relpath is excluded from the context. ig may be NULL (no rules). */
bool plait_ignore_match(const struct plait_ignore *ig, const char *relpath);
/* The exclusion rule that decides that relpath is excluded, or NULL when it is
 * included (for messages naming the rule's line and pattern). */
const struct plait_ignore_rule *plait_ignore_match_rule(const struct plait_ignore *ig,
							const char *relpath);
/* For an excluded directory: whether an exception could re-include something
 * below it, so a walk must enter it (BuildKit's rule: always when an exception
 * has wildcards, else when an exception starts with "<reldir>/"). */
bool plait_ignore_may_include_below(const struct plait_ignore *ig, const char *reldir);

/* Go's filepath.Match on '/'-separated names ('**' is not special).
 * 1 match, 0 no match, -1 malformed pattern. */
int plait_glob_match(const char *pattern, const char *name);
/* Check pattern is valid filepath.Match syntax; 0, or -1 with *why set to a
 * static string. */
int plait_glob_validate(const char *pattern, const char **why);
/* true when s has an unescaped '*', '?' or '[' (what makes COPY expand it). */
bool plait_glob_has_wildcards(const char *s);

/* Go's path.Clean: one '/' between elements, no "." elements, ".." resolved
 * lexically (and dropped at the root of an absolute path), "" becomes ".".
 * Appends to out. */
void plait_path_clean(const char *path, struct plait_buf *out);

#endif
