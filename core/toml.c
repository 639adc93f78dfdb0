/* core/toml.c - the registries.conf subset of TOML (see toml.h).
 *
 * One pass over the text with a cursor that knows its line; every error is
 * raised where the cursor stands, so it names the line and column of the
 * byte that was not accepted. */
#include "toml.h"

#include <stdarg.h>
#include <stdio.h>

#include "buf.h"
#include "strv.h"
#include "utf8.h"

#include "banned.h"

struct cursor {
	const char *name;
	const char *p, *end;
	const char *line_start;
	unsigned line;
	struct plait_error **err;
};

static unsigned col_of(const struct cursor *c, const char *at)
{
	return (unsigned)(at - c->line_start) + 1;
}

_printf_(3, 4) static int fail_at(struct cursor *c, const char *at, const char *fmt, ...)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s:%u:%u: ", c->name, c->line, col_of(c, at));
	va_list ap;
	va_start(ap, fmt);
	plait_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	int rc = plait_error_set(c->err, PLAIT_E_INVALID, "%s", b.buf);
	plait_buf_release(&b);
	return rc;
}

/* What stands at the cursor, for messages: "'x'", "the end of the line", "the end of the file". */
static const char *found(const struct cursor *c, const char *at, char tmp[16])
{
	if (at >= c->end)
		return "the end of the file";
	if (*at == '\n' || (*at == '\r' && at + 1 < c->end && at[1] == '\n'))
		return "the end of the line";
	unsigned char ch = (unsigned char)*at;
	if (ch < 0x20 || ch >= 0x7f)
		snprintf(tmp, 16, "byte 0x%02x", ch);
	else
		snprintf(tmp, 16, "'%c'", ch);
	return tmp;
}

static bool at_eol(const struct cursor *c)
{
	return c->p >= c->end || *c->p == '\n' || (*c->p == '\r' && c->p + 1 < c->end && c->p[1] == '\n');
}

static void skip_ws(struct cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
		c->p++;
}

/* At a line end: step over it. */
static void next_line(struct cursor *c)
{
	if (c->p < c->end && *c->p == '\r')
		c->p++;
	if (c->p < c->end && *c->p == '\n')
		c->p++;
	c->line++;
	c->line_start = c->p;
}

/* A comment runs to the end of the line; control characters other than tab
 * are not allowed in it (TOML). */
static int skip_comment(struct cursor *c)
{
	if (c->p >= c->end || *c->p != '#')
		return 0;
	while (!at_eol(c)) {
		unsigned char ch = (unsigned char)*c->p;
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return fail_at(c, c->p, "control character 0x%02x in a comment", ch);
		c->p++;
	}
	return 0;
}

/* After a key/value or a header: blanks, a comment, then the line's end. */
static int end_of_line(struct cursor *c, const char *what)
{
	skip_ws(c);
	int r = skip_comment(c);
	if (r < 0)
		return r;
	if (!at_eol(c)) {
		char tmp[16];
		return fail_at(c, c->p, "expected the end of the line after %s, found %s", what,
			       found(c, c->p, tmp));
	}
	next_line(c);
	return 0;
}

/* ------------------------------------------------------------------ strings */

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static void add_utf8(struct plait_buf *b, uint32_t cp)
{
	if (cp < 0x80) {
		plait_buf_addch(b, (int)cp);
	} else if (cp < 0x800) {
		plait_buf_addch(b, (int)(0xc0 | (cp >> 6)));
		plait_buf_addch(b, (int)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		plait_buf_addch(b, (int)(0xe0 | (cp >> 12)));
		plait_buf_addch(b, (int)(0x80 | ((cp >> 6) & 0x3f)));
		plait_buf_addch(b, (int)(0x80 | (cp & 0x3f)));
	} else {
		plait_buf_addch(b, (int)(0xf0 | (cp >> 18)));
		plait_buf_addch(b, (int)(0x80 | ((cp >> 12) & 0x3f)));
		plait_buf_addch(b, (int)(0x80 | ((cp >> 6) & 0x3f)));
		plait_buf_addch(b, (int)(0x80 | (cp & 0x3f)));
	}
}

/* A "basic" or 'literal' string at the cursor (which stands on its quote). */
static int parse_string(struct cursor *c, char **out)
{
	const char *open = c->p;
	char q = *c->p;
	if (c->end - c->p >= 3 && c->p[1] == q && c->p[2] == q)
		return fail_at(c, open, "multi-line strings (%c%c%c) are not supported: write the value on one line",
			       q, q, q);
	c->p++;
	struct plait_buf b = PLAIT_BUF_INIT;
	int r = 0;
	for (;;) {
		if (c->p >= c->end || *c->p == '\n' || *c->p == '\r') {
			r = fail_at(c, open, "unterminated string: close it with %c on the same line", q);
			goto out;
		}
		unsigned char ch = (unsigned char)*c->p;
		if (ch == (unsigned char)q) {
			c->p++;
			break;
		}
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
			r = fail_at(c, c->p, "control character 0x%02x in a string: write it as an escape", ch);
			goto out;
		}
		if (ch != '\\' || q == '\'') {
			plait_buf_addch(&b, ch);
			c->p++;
			continue;
		}
		const char *esc = c->p++;
		char e = c->p < c->end ? *c->p : '\0';
		static const char simple[] = "b\bt\tn\nf\fr\r\"\"\\\\";
		const char *s = e ? strchr(simple, e) : NULL;
		if (s && (s - simple) % 2 == 0) {
			plait_buf_addch(&b, s[1]);
			c->p++;
			continue;
		}
		if (e == 'u' || e == 'U') {
			int n = e == 'u' ? 4 : 8;
			uint32_t cp = 0;
			c->p++;
			for (int i = 0; i < n; i++) {
				int h = c->p + i < c->end ? hexval(c->p[i]) : -1;
				if (h < 0) {
					r = fail_at(c, esc, "\\%c needs %d hexadecimal digits", e, n);
					goto out;
				}
				cp = cp << 4 | (uint32_t)h;
			}
			if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
				r = fail_at(c, esc, "\\%c%.*s is not allowed: %s", e, n, c->p,
					    cp == 0 ? "NUL cannot be in a value" : "not a Unicode scalar value");
				goto out;
			}
			add_utf8(&b, cp);
			c->p += n;
			continue;
		}
		bool printable = (unsigned char)e >= 0x20 && (unsigned char)e < 0x7f;
		r = fail_at(c, esc, "unknown escape '\\%.*s' (accepted: \\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX \\UXXXXXXXX)",
			    printable ? 1 : 0, &e);
		goto out;
	}
	*out = plait_buf_detach(&b, NULL);
out:
	plait_buf_release(&b);
	return r;
}

static bool bare_key_char(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' ||
	       ch == '-';
}

static int parse_key(struct cursor *c, char **out)
{
	if (c->p < c->end && (*c->p == '"' || *c->p == '\''))
		return parse_string(c, out);
	const char *s = c->p;
	while (c->p < c->end && bare_key_char(*c->p))
		c->p++;
	if (c->p == s) {
		char tmp[16];
		return fail_at(c, s, "expected a key (letters, digits, '_', '-', or a quoted string), found %s",
			       found(c, s, tmp));
	}
	*out = xstrndup(s, (size_t)(c->p - s));
	return 0;
}

/* ------------------------------------------------------------------ values */

static bool word_at(const struct cursor *c, const char *w)
{
	size_t n = strlen(w);
	return (size_t)(c->end - c->p) >= n && memcmp(c->p, w, n) == 0 &&
	       (c->p + n == c->end || !bare_key_char(c->p[n]));
}

/* Blanks, comments and line ends inside an array. */
static int skip_array_space(struct cursor *c)
{
	for (;;) {
		skip_ws(c);
		int r = skip_comment(c);
		if (r < 0)
			return r;
		if (c->p < c->end && at_eol(c)) {
			next_line(c);
			continue;
		}
		return 0;
	}
}

static int parse_array(struct cursor *c, char ***out)
{
	const char *open = c->p++, *open_line_start = c->line_start;
	unsigned open_line = c->line;
	_cleanup_strv_free_ char **v = NULL;
	size_t n = 0, alloc = 0;
	for (;;) {
		int r = skip_array_space(c);
		if (r < 0)
			return r;
		if (c->p >= c->end) {
			/* name the '[' that was never closed */
			c->line = open_line;
			c->line_start = open_line_start;
			return fail_at(c, open, "unterminated array: close it with ']'");
		}
		if (*c->p == ']') {
			c->p++;
			break;
		}
		if (*c->p != '"' && *c->p != '\'') {
			char tmp[16];
			return fail_at(c, c->p, "arrays may hold only strings here, found %s", found(c, c->p, tmp));
		}
		char *s = NULL;
		r = parse_string(c, &s);
		if (r < 0)
			return r;
		plait_strv_add_take(&v, &n, &alloc, s);
		r = skip_array_space(c);
		if (r < 0)
			return r;
		if (c->p < c->end && *c->p == ',') {
			c->p++;
			continue;
		}
		if (c->p < c->end && *c->p == ']') {
			c->p++;
			break;
		}
		if (c->p >= c->end) {
			c->line = open_line;
			c->line_start = open_line_start;
			return fail_at(c, open, "unterminated array: close it with ']'");
		}
		char tmp[16];
		return fail_at(c, c->p, "expected ',' or ']' in the array, found %s", found(c, c->p, tmp));
	}
	if (!v)
		v = xcalloc(1, sizeof(*v));
	*out = TAKE_PTR(v);
	return 0;
}

static int parse_value(struct cursor *c, struct plait_toml_value *v)
{
	v->line = c->line;
	v->col = col_of(c, c->p);
	char tmp[16];
	if (c->p >= c->end || at_eol(c) || *c->p == '#')
		return fail_at(c, c->p, "expected a value after '=', found %s",
			       c->p < c->end && *c->p == '#' ? "a comment" : found(c, c->p, tmp));
	switch (*c->p) {
	case '"':
	case '\'':
		v->type = PLAIT_TOML_STRING;
		return parse_string(c, &v->str);
	case '[':
		v->type = PLAIT_TOML_STRINGS;
		return parse_array(c, &v->strings);
	case '{':
		return fail_at(c, c->p, "inline tables are not supported: write a [table] instead");
	default:
		break;
	}
	if (word_at(c, "true") || word_at(c, "false")) {
		v->type = PLAIT_TOML_BOOL;
		v->boolean = *c->p == 't';
		c->p += v->boolean ? 4 : 5;
		return 0;
	}
	if ((*c->p >= '0' && *c->p <= '9') || *c->p == '+' || *c->p == '-' || word_at(c, "inf") ||
	    word_at(c, "nan"))
		return fail_at(c, c->p, "numbers and dates are not supported: registries.conf takes strings, "
					"true/false and arrays of strings");
	return fail_at(c, c->p, "expected a value (a quoted string, true, false or an array of strings), found %s",
		       found(c, c->p, tmp));
}

/* ------------------------------------------------------------------ tables */

static struct plait_toml_table *table_new(unsigned line, unsigned col, bool defined)
{
	struct plait_toml_table *t = xcalloc(1, sizeof(*t));
	t->line = line;
	t->col = col;
	t->defined = defined;
	return t;
}

static void value_release(struct plait_toml_value *v)
{
	free(v->str);
	plait_strv_free(v->strings);
	plait_toml_free(v->table);
	for (size_t i = 0; i < v->n_tables; i++)
		plait_toml_free(v->tables[i]);
	free(v->tables);
}

void plait_toml_free(struct plait_toml_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		free(t->entries[i].key);
		value_release(&t->entries[i].v);
	}
	free(t->entries);
	free(t);
}

static struct plait_toml_entry *table_find(const struct plait_toml_table *t, const char *key)
{
	for (size_t i = 0; i < t->n; i++)
		if (streq(t->entries[i].key, key))
			return &t->entries[i];
	return NULL;
}

const struct plait_toml_value *plait_toml_get(const struct plait_toml_table *t, const char *key)
{
	const struct plait_toml_entry *e = t ? table_find(t, key) : NULL;
	return e ? &e->v : NULL;
}

/* Appends an entry; key is taken. */
static struct plait_toml_value *table_add(struct plait_toml_table *t, char *key)
{
	PLAIT_ALLOC_GROW(t->entries, t->n + 1, t->alloc);
	struct plait_toml_entry *e = &t->entries[t->n++];
	memset(e, 0, sizeof(*e));
	e->key = key;
	return &e->v;
}

static void tables_append(struct plait_toml_value *v, struct plait_toml_table *t)
{
	PLAIT_ALLOC_GROW(v->tables, v->n_tables + 1, v->alloc_tables);
	v->tables[v->n_tables++] = t;
}

const char *plait_toml_type_name(enum plait_toml_type type)
{
	switch (type) {
	case PLAIT_TOML_STRING:
		return "string";
	case PLAIT_TOML_BOOL:
		return "boolean";
	case PLAIT_TOML_STRINGS:
		return "array of strings";
	case PLAIT_TOML_TABLE:
		return "table";
	case PLAIT_TOML_TABLES:
		return "array of tables";
	}
	return "value";
}

/* [a.b.c] or [[a.b.c]] at the cursor: makes *cur the table that keys go to. */
static int parse_header(struct cursor *c, struct plait_toml_table *root, struct plait_toml_table **cur)
{
	const char *open = c->p;
	unsigned line = c->line, col = col_of(c, open);
	bool array = c->end - c->p >= 2 && c->p[1] == '[';
	c->p += array ? 2 : 1;
	_cleanup_strv_free_ char **keys = NULL;
	size_t n = 0, alloc = 0;
	struct plait_buf name = PLAIT_BUF_INIT;
	int r = 0;
	for (;;) {
		skip_ws(c);
		char *k = NULL;
		r = parse_key(c, &k);
		if (r < 0)
			goto out;
		plait_buf_addf(&name, "%s%s", n ? "." : "", k);
		plait_strv_add_take(&keys, &n, &alloc, k);
		skip_ws(c);
		if (c->p < c->end && *c->p == '.') {
			c->p++;
			continue;
		}
		break;
	}
	if (array ? !(c->end - c->p >= 2 && c->p[0] == ']' && c->p[1] == ']')
		  : !(c->p < c->end && *c->p == ']')) {
		char tmp[16];
		r = fail_at(c, c->p, "expected '%s' to close the header, found %s", array ? "]]" : "]",
			    found(c, c->p, tmp));
		goto out;
	}
	c->p += array ? 2 : 1;

	struct plait_toml_table *t = root;
	for (size_t i = 0; i + 1 < n; i++) {
		struct plait_toml_entry *e = table_find(t, keys[i]);
		if (!e) {
			struct plait_toml_value *v = table_add(t, xstrdup(keys[i]));
			v->type = PLAIT_TOML_TABLE;
			v->line = line;
			v->col = col;
			v->table = table_new(line, col, false);
			t = v->table;
		} else if (e->v.type == PLAIT_TOML_TABLE) {
			t = e->v.table;
		} else if (e->v.type == PLAIT_TOML_TABLES) {
			t = e->v.tables[e->v.n_tables - 1];
		} else {
			r = fail_at(c, open, "[%s]: '%s' is already a %s (line %u), not a table", name.buf, keys[i],
				    plait_toml_type_name(e->v.type), e->v.line);
			goto out;
		}
	}
	const char *last = keys[n - 1];
	struct plait_toml_entry *e = table_find(t, last);
	if (array) {
		if (!e) {
			struct plait_toml_value *v = table_add(t, xstrdup(last));
			v->type = PLAIT_TOML_TABLES;
			v->line = line;
			v->col = col;
			tables_append(v, table_new(line, col, true));
			*cur = v->tables[0];
		} else if (e->v.type == PLAIT_TOML_TABLES) {
			tables_append(&e->v, table_new(line, col, true));
			*cur = e->v.tables[e->v.n_tables - 1];
		} else {
			r = fail_at(c, open, "[[%s]]: '%s' is already a %s (line %u), not an array of tables",
				    name.buf, last, plait_toml_type_name(e->v.type), e->v.line);
			goto out;
		}
	} else {
		if (!e) {
			struct plait_toml_value *v = table_add(t, xstrdup(last));
			v->type = PLAIT_TOML_TABLE;
			v->line = line;
			v->col = col;
			v->table = table_new(line, col, true);
			*cur = v->table;
		} else if (e->v.type == PLAIT_TOML_TABLE && !e->v.table->defined) {
			e->v.table->defined = true;
			e->v.table->line = line;
			e->v.table->col = col;
			*cur = e->v.table;
		} else if (e->v.type == PLAIT_TOML_TABLE) {
			r = fail_at(c, open, "table [%s] is defined twice (first at line %u)", name.buf,
				    e->v.table->line);
			goto out;
		} else if (e->v.type == PLAIT_TOML_TABLES) {
			r = fail_at(c, open, "[%s] is an array of tables (line %u): write [[%s]]", name.buf,
				    e->v.line, name.buf);
			goto out;
		} else {
			r = fail_at(c, open, "[%s]: '%s' is already a %s (line %u), not a table", name.buf, last,
				    plait_toml_type_name(e->v.type), e->v.line);
			goto out;
		}
	}
	r = end_of_line(c, array ? "the [[header]]" : "the [header]");
out:
	plait_buf_release(&name);
	return r;
}

static int parse_keyval(struct cursor *c, struct plait_toml_table *cur)
{
	unsigned kline = c->line, kcol = col_of(c, c->p);
	const char *kpos = c->p;
	_cleanup_free_ char *key = NULL;
	int r = parse_key(c, &key);
	if (r < 0)
		return r;
	skip_ws(c);
	if (c->p < c->end && *c->p == '.')
		return fail_at(c, c->p, "dotted keys are not supported: put '%s' under a [header]", key);
	if (c->p >= c->end || *c->p != '=') {
		char tmp[16];
		return fail_at(c, c->p, "expected '=' after the key '%s', found %s", key, found(c, c->p, tmp));
	}
	c->p++;
	skip_ws(c);
	struct plait_toml_entry *dup = table_find(cur, key);
	if (dup)
		return fail_at(c, kpos, "key '%s' is defined twice (first at line %u)", key, dup->v.line);
	struct plait_toml_value v = { 0 };
	r = parse_value(c, &v);
	if (r < 0) {
		value_release(&v);
		return r;
	}
	/* a value is named by its key's position */
	v.line = kline;
	v.col = kcol;
	*table_add(cur, TAKE_PTR(key)) = v;
	return end_of_line(c, "the value");
}

int plait_toml_parse(const char *name, const char *text, size_t len, struct plait_toml_table **out,
		     struct plait_error **err)
{
	struct cursor c = { .name = name, .p = text, .end = text + len, .line_start = text, .line = 1, .err = err };
	/* UTF-8 and NUL first, so that the rest can look at bytes */
	size_t bad;
	const char *nul = memchr(text, '\0', len);
	bool valid = plait_utf8_valid(text, nul ? (size_t)(nul - text) : len, &bad);
	if (!valid || nul) {
		const char *at = valid ? nul : text + bad;
		for (const char *q = text; q < at; q++)
			if (*q == '\n') {
				c.line++;
				c.line_start = q + 1;
			}
		if (!valid)
			return fail_at(&c, at, "byte 0x%02x is not valid UTF-8 (a TOML file is UTF-8 text)",
				       (unsigned char)*at);
		return fail_at(&c, at, "NUL byte in the file");
	}
	/* a UTF-8 byte order mark is allowed at the very start */
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		c.p += 3;

	struct plait_toml_table *root = table_new(1, 1, true);
	struct plait_toml_table *cur = root;
	int r = 0;
	while (c.p < c.end) {
		skip_ws(&c);
		if (c.p >= c.end)
			break;
		if (at_eol(&c)) {
			next_line(&c);
			continue;
		}
		if (*c.p == '#') {
			r = skip_comment(&c);
			if (r < 0)
				break;
			continue;
		}
		if (*c.p == '[')
			r = parse_header(&c, root, &cur);
		else
			r = parse_keyval(&c, cur);
		if (r < 0)
			break;
	}
	if (r < 0) {
		plait_toml_free(root);
		return r;
	}
	*out = root;
	return 0;
}
