/* core/toml.h - a reader for the subset of TOML that containers-registries.conf(5)
 * files use, and nothing more (Debian has no C TOML library).
 *
 * Accepted:
 *  - comments (# to the end of the line), blank lines, LF or CRLF line ends;
 *  - key = value, where a key is bare ([A-Za-z0-9_-]+) or a quoted string
 *    ("basic" or 'literal'); no dotted keys on the left of '=';
 *  - values: basic strings with TOML's escapes (\b \t \n \f \r \" \\ \uXXXX
 *    \UXXXXXXXX), literal strings, true and false, and arrays of strings
 *    (over several lines, with comments and a trailing comma);
 *  - [table] and [[array of tables]] headers with dotted names ([a.b],
 *    [[registry.mirror]]), TOML's rules for them: a name under an array of
 *    tables goes to its last element; a table is defined once; a key once
 *    per table.
 * Anything else (numbers, dates, inline tables, multi-line strings, arrays of
 * anything but strings, dotted keys, NUL, text that is not UTF-8) is refused
 * with "NAME:LINE:COL: what was found: what is accepted" (-PLAIT_E_INVALID),
 * NAME being what the caller passes (a file's path). Lines and columns count
 * from 1; a column counts bytes.
 *
 * Pure: no files, no global state. Every value and table remembers the line
 * and column it was defined at, so callers can name them in their own errors. */
#ifndef PLAIT_TOML_H
#define PLAIT_TOML_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

enum plait_toml_type {
	PLAIT_TOML_STRING,
	PLAIT_TOML_BOOL,
	PLAIT_TOML_STRINGS, /* an array of strings */
	PLAIT_TOML_TABLE,
	PLAIT_TOML_TABLES,  /* an array of tables */
};

struct plait_toml_table;

struct plait_toml_value {
	enum plait_toml_type type;
	unsigned line, col;
	char *str;                        /* STRING */
	bool boolean;                     /* BOOL */
	char **strings;                   /* STRINGS: NULL-terminated (see core/strv.h) */
	struct plait_toml_table *table;   /* TABLE */
	struct plait_toml_table **tables; /* TABLES */
	size_t n_tables, alloc_tables;
};

struct plait_toml_entry {
	char *key;
	struct plait_toml_value v;
};

struct plait_toml_table {
	struct plait_toml_entry *entries; /* in the order they were defined */
	size_t n, alloc;
	unsigned line, col; /* its header, or where a dotted name first made it */
	bool defined;       /* by its own [header] (or as the root, or as an element of [[…]]) */
};

/* Parse text (len bytes; need not be NUL-terminated) into *out (the root
 * table; caller frees with plait_toml_free). */
int plait_toml_parse(const char *name, const char *text, size_t len, struct plait_toml_table **out,
		     struct plait_error **err);
void plait_toml_free(struct plait_toml_table *t);

/* The value of key in t, or NULL. */
const struct plait_toml_value *plait_toml_get(const struct plait_toml_table *t, const char *key);
/* "string", "boolean", "array of strings", "table", "array of tables". */
const char *plait_toml_type_name(enum plait_toml_type type);

#endif
