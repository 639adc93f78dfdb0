/* Dockerfile variable expansion: a port of BuildKit's shell lexer
 * (frontend/dockerfile/shell/lex.go), byte-oriented. */
#include "expand.h"
#include "buf.h"

#include <fnmatch.h>
#include <stdarg.h>

#include "banned.h"

#define EOF_CH (-1)

struct words {
	struct plait_buf word;
	bool in_word;
	char **v;
	size_t n, alloc;
};

struct lexer {
	const char *s;
	size_t len, pos;
	int esc;
	bool raw_quotes, raw_escapes, skip_unset, skip_quotes;
	plait_expand_lookup_fn lookup;
	void *userdata;
	const char *filename;
	int line;
	struct plait_error **err;
};

static bool is_blank(int ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\v' || ch == '\f' || ch == '\r';
}

static bool is_name_char(int ch)
{
	/* Bytes of multibyte UTF-8 count as letters, as Go's unicode.IsLetter
	 * does for (nearly) all of them. */
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '_' || ch >= 0x80;
}

static bool is_special_param(int ch)
{
	return ch == '@' || ch == '*' || ch == '#' || ch == '?' || ch == '-' || ch == '$' ||
	       ch == '!' || ch == '0';
}

static int peek(const struct lexer *lx)
{
	return lx->pos < lx->len ? (unsigned char)lx->s[lx->pos] : EOF_CH;
}

static int next(struct lexer *lx)
{
	return lx->pos < lx->len ? (unsigned char)lx->s[lx->pos++] : EOF_CH;
}

static int fail(struct lexer *lx, const char *fmt, ...) _printf_(2, 3);
static int fail(struct lexer *lx, const char *fmt, ...)
{
	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	if (lx->filename && lx->line > 0)
		plait_buf_addf(&b, "%s:%d: ", lx->filename, lx->line);
	else if (lx->filename)
		plait_buf_addf(&b, "%s: ", lx->filename);
	else if (lx->line > 0)
		plait_buf_addf(&b, "line %d: ", lx->line);
	plait_buf_addf(&b, "failed to expand '%.*s': ", (int)lx->len, lx->s);
	va_list ap;
	va_start(ap, fmt);
	plait_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	return plait_error_set(lx->err, PLAIT_E_INVALID, "%s", b.buf);
}

static void words_push(struct words *w)
{
	PLAIT_ALLOC_GROW(w->v, w->n + 2, w->alloc);
	w->v[w->n++] = plait_buf_detach(&w->word, NULL);
	w->v[w->n] = NULL;
	w->in_word = false;
}

static void words_add_raw_char(struct words *w, int ch)
{
	plait_buf_addch(&w->word, ch);
	w->in_word = true;
}

static void words_add_char(struct words *w, int ch)
{
	if (is_blank(ch)) {
		if (w->in_word && w->word.len)
			words_push(w);
	} else {
		words_add_raw_char(w, ch);
	}
}

static void words_add_string(struct words *w, const char *s)
{
	for (; *s; s++)
		words_add_char(w, (unsigned char)*s);
}

static void words_add_raw_string(struct words *w, const char *s)
{
	plait_buf_adds(&w->word, s);
	w->in_word = true;
}

static void words_release(struct words *w)
{
	plait_buf_release(&w->word);
	for (size_t i = 0; i < w->n; i++)
		free(w->v[i]);
	free(w->v);
	w->v = NULL;
	w->n = w->alloc = 0;
}

static int process_stop_on(struct lexer *lx, int stop, bool raw_escapes, struct plait_buf *result,
			   struct words *w);

static const char *lookup(struct lexer *lx, const char *name)
{
	return lx->lookup ? lx->lookup(name, lx->userdata) : NULL;
}

static void process_name(struct lexer *lx, struct plait_buf *name)
{
	int ch = peek(lx);
	if (ch >= '0' && ch <= '9') {
		while ((ch = peek(lx)) >= '0' && ch <= '9')
			plait_buf_addch(name, next(lx));
		return;
	}
	if (ch != EOF_CH && is_special_param(ch)) {
		plait_buf_addch(name, next(lx));
		return;
	}
	while ((ch = peek(lx)) != EOF_CH && is_name_char(ch))
		plait_buf_addch(name, next(lx));
}

static bool glob_match(const char *pattern, const char *s, size_t n)
{
	_cleanup_free_ char *sub = xstrndup(s, n);
	return fnmatch(pattern, sub, 0) == 0;
}

/* ${v#pat} ${v##pat}: remove the shortest (longest) matching prefix. */
static void trim_prefix(const char *pattern, const char *value, bool greedy, struct plait_buf *out)
{
	size_t len = strlen(value);
	for (size_t k = 0; k <= len; k++) {
		size_t i = greedy ? len - k : k;
		if (glob_match(pattern, value, i)) {
			plait_buf_adds(out, value + i);
			return;
		}
	}
	plait_buf_adds(out, value);
}

/* ${v%pat} ${v%%pat}: remove the shortest (longest) matching suffix. */
static void trim_suffix(const char *pattern, const char *value, bool greedy, struct plait_buf *out)
{
	size_t len = strlen(value);
	for (size_t k = 0; k <= len; k++) {
		size_t i = greedy ? k : len - k;
		if (fnmatch(pattern, value + i, 0) == 0) {
			plait_buf_add(out, value, i);
			return;
		}
	}
	plait_buf_adds(out, value);
}

/* ${v/pat/repl} ${v//pat/repl}: leftmost, longest match, as Go's greedy regexp. */
static void replace(const char *pattern, const char *repl, const char *value, bool all,
		    struct plait_buf *out)
{
	size_t len = strlen(value), i = 0;
	bool done = false;
	while (i <= len) {
		size_t end = 0;
		bool found = false;
		if (!done) {
			for (size_t e = len + 1; e-- > i;) {
				if (glob_match(pattern, value + i, e - i)) {
					end = e;
					found = true;
					break;
				}
			}
		}
		if (found) {
			plait_buf_adds(out, repl);
			if (!all)
				done = true;
			if (end > i) {
				i = end;
				continue;
			}
		}
		if (i < len)
			plait_buf_addch(out, value[i]);
		i++;
	}
}

/* A part of ${...} up to stop ('/' after a pattern, '}' at the end): 0, or
 * the syntax error when the text ends first. */
static int process_inside_braces(struct lexer *lx, int stop, bool raw_escapes, struct plait_buf *out)
{
	int r = process_stop_on(lx, stop, raw_escapes, out, NULL);
	if (r <= 0)
		return r;
	return stop == '/' ? fail(lx, "syntax error: missing '/' in ${}")
			   : fail(lx, "syntax error: missing '}'");
}

/* $name or ${name} (braces) with nothing after the name: its value; an unset
 * one is nothing, or kept as written when the lexer skips unset names. */
static void add_value(struct lexer *lx, const char *name, bool braces, struct plait_buf *out)
{
	const char *v = lookup(lx, name);
	if (v)
		plait_buf_adds(out, v);
	else if (lx->skip_unset)
		plait_buf_addf(out, braces ? "${%s}" : "$%s", name);
}

static int process_dollar(struct lexer *lx, struct plait_buf *out)
{
	_cleanup_buf_ struct plait_buf name = PLAIT_BUF_INIT;
	next(lx); /* '$' */

	if (peek(lx) != '{') {
		process_name(lx, &name);
		if (!name.len) {
			plait_buf_addch(out, '$');
			return 0;
		}
		add_value(lx, name.buf, false, out);
		return 0;
	}

	next(lx); /* '{' */
	switch (peek(lx)) {
	case EOF_CH:
		return fail(lx, "syntax error: missing '}'");
	case '{':
	case '}':
	case ':':
		return fail(lx, "syntax error: bad substitution");
	}
	process_name(lx, &name);
	int ch = next(lx);
	char chs[3] = { 0 };
	bool null_is_unset = false;

	if (ch == EOF_CH)
		return fail(lx, "syntax error: missing '}'");
	chs[0] = (char)ch;

	if (ch == '}') {
		add_value(lx, name.buf, true, out);
		return 0;
	}

	if (ch == ':') {
		null_is_unset = true;
		ch = next(lx);
		if (ch == EOF_CH)
			return fail(lx, "syntax error: missing '}'");
		chs[1] = (char)ch;
	}

	if (ch == '/' && !null_is_unset) {
		bool all = peek(lx) == '/';
		if (all)
			next(lx);
		_cleanup_buf_ struct plait_buf pattern = PLAIT_BUF_INIT;
		_cleanup_buf_ struct plait_buf repl = PLAIT_BUF_INIT;
		int r = process_inside_braces(lx, '/', true, &pattern);
		if (r < 0 || (r = process_inside_braces(lx, '}', true, &repl)) < 0)
			return r;
		const char *v = lookup(lx, name.buf);
		replace(pattern.buf, repl.buf, v ? v : "", all, out);
		return 0;
	}

	if (!null_is_unset && ch != '+' && ch != '-' && ch != '?' && ch != '#' && ch != '%')
		return fail(lx, "unsupported modifier '%s' in substitution", chs);

	bool raw_escapes = ch == '#' || ch == '%';
	if (null_is_unset && raw_escapes)
		return fail(lx, "unsupported modifier '%s' in substitution", chs);

	_cleanup_buf_ struct plait_buf word = PLAIT_BUF_INIT;
	int r = process_inside_braces(lx, '}', raw_escapes, &word);
	if (r < 0)
		return r;

	const char *v = lookup(lx, name.buf);
	bool set = v != NULL;
	if (!set && lx->skip_unset) {
		plait_buf_addf(out, "${%s%s%s}", name.buf, chs, word.buf);
		return 0;
	}
	bool empty = !set || (null_is_unset && !*v);

	switch (ch) {
	case '-':
		plait_buf_adds(out, empty ? word.buf : v);
		return 0;
	case '+':
		if (!empty)
			plait_buf_adds(out, word.buf);
		return 0;
	case '?':
		if (!set)
			return word.len ? fail(lx, "variable '%s': %s", name.buf, word.buf)
					: fail(lx, "variable '%s' is not allowed to be unset", name.buf);
		if (empty)
			return word.len ? fail(lx, "variable '%s': %s", name.buf, word.buf)
					: fail(lx, "variable '%s' is not allowed to be empty", name.buf);
		plait_buf_adds(out, v);
		return 0;
	case '#':
	case '%': {
		const char *pat = word.buf;
		bool greedy = false;
		if (*pat == ch) {
			greedy = true;
			pat++;
		}
		if (ch == '#')
			trim_prefix(pat, v ? v : "", greedy, out);
		else
			trim_suffix(pat, v ? v : "", greedy, out);
		return 0;
	}
	default:
		return fail(lx, "unsupported modifier '%s' in substitution", chs);
	}
}

static int process_single_quote(struct lexer *lx, struct plait_buf *out)
{
	int ch = next(lx);
	if (lx->raw_quotes)
		plait_buf_addch(out, ch);
	for (;;) {
		ch = next(lx);
		if (ch == EOF_CH)
			return fail(lx, "missing closing single quote");
		if (ch == '\'') {
			if (lx->raw_quotes)
				plait_buf_addch(out, ch);
			return 0;
		}
		plait_buf_addch(out, ch);
	}
}

static int process_double_quote(struct lexer *lx, struct plait_buf *out)
{
	int ch = next(lx);
	if (lx->raw_quotes)
		plait_buf_addch(out, ch);
	for (;;) {
		int p = peek(lx);
		if (p == EOF_CH)
			return fail(lx, "missing closing double quote");
		if (p == '"') {
			ch = next(lx);
			if (lx->raw_quotes)
				plait_buf_addch(out, ch);
			return 0;
		}
		if (p == '$') {
			int r = process_dollar(lx, out);
			if (r < 0)
				return r;
			continue;
		}
		ch = next(lx);
		if (ch == lx->esc) {
			p = peek(lx);
			if (p == EOF_CH)
				continue; /* a lone escape at the end is dropped */
			if (p == '"' || p == '$' || p == lx->esc) {
				if (lx->raw_escapes)
					plait_buf_addch(out, ch);
				ch = next(lx);
			}
		}
		plait_buf_addch(out, ch);
	}
}

/* Returns 0 at stop (or the end when stop is EOF_CH), 1 when the text ended
 * before stop, <0 on error. */
static int process_stop_on(struct lexer *lx, int stop, bool raw_escapes, struct plait_buf *result,
			   struct words *w)
{
	bool saved = lx->raw_escapes;
	int r = 0;
	lx->raw_escapes = raw_escapes;

	while (peek(lx) != EOF_CH) {
		int ch = peek(lx);
		if (stop != EOF_CH && ch == stop) {
			next(lx);
			goto out;
		}
		if (ch == '$' || (!lx->skip_quotes && (ch == '\'' || ch == '"'))) {
			_cleanup_buf_ struct plait_buf tmp = PLAIT_BUF_INIT;
			r = ch == '$'	 ? process_dollar(lx, &tmp)
			    : ch == '\'' ? process_single_quote(lx, &tmp)
					 : process_double_quote(lx, &tmp);
			if (r < 0)
				goto out;
			plait_buf_add(result, tmp.buf, tmp.len);
			if (w) {
				if (ch == '$')
					words_add_string(w, tmp.buf);
				else
					words_add_raw_string(w, tmp.buf);
			}
			continue;
		}
		ch = next(lx);
		if (ch == lx->esc) {
			if (lx->raw_escapes) {
				if (w)
					words_add_raw_char(w, ch);
				plait_buf_addch(result, ch);
			}
			ch = next(lx);
			if (ch == EOF_CH)
				break;
			if (w)
				words_add_raw_char(w, ch);
		} else if (w) {
			words_add_char(w, ch);
		}
		plait_buf_addch(result, ch);
	}
	r = stop != EOF_CH ? 1 : 0;
out:
	lx->raw_escapes = saved;
	return r;
}

static void lexer_init(struct lexer *lx, const char *text, const struct plait_expand_opts *opts,
		       plait_expand_lookup_fn fn, void *userdata, struct plait_error **err)
{
	*lx = (struct lexer){
		.s = text,
		.len = strlen(text),
		.esc = '\\',
		.lookup = fn,
		.userdata = userdata,
		.err = err,
	};
	if (opts) {
		if (opts->escape)
			lx->esc = (unsigned char)opts->escape;
		lx->raw_quotes = opts->raw_quotes;
		lx->raw_escapes = opts->raw_escapes;
		lx->skip_unset = opts->skip_unset;
		lx->skip_quotes = opts->skip_quotes;
		lx->filename = opts->filename;
		lx->line = opts->line;
	}
}

int plait_expand_word(const char *text, const struct plait_expand_opts *opts,
		      plait_expand_lookup_fn fn, void *userdata, char **out,
		      struct plait_error **err)
{
	struct lexer lx;
	_cleanup_buf_ struct plait_buf result = PLAIT_BUF_INIT;
	lexer_init(&lx, text, opts, fn, userdata, err);
	int r = process_stop_on(&lx, EOF_CH, lx.raw_escapes, &result, NULL);
	if (r < 0)
		return r;
	*out = plait_buf_detach(&result, NULL);
	return 0;
}

int plait_expand_words(const char *text, const struct plait_expand_opts *opts,
		       plait_expand_lookup_fn fn, void *userdata, char ***out, size_t *n_out,
		       struct plait_error **err)
{
	struct lexer lx;
	_cleanup_buf_ struct plait_buf result = PLAIT_BUF_INIT;
	struct words w = { .word = PLAIT_BUF_INIT };
	lexer_init(&lx, text, opts, fn, userdata, err);
	int r = process_stop_on(&lx, EOF_CH, lx.raw_escapes, &result, &w);
	if (r < 0) {
		words_release(&w);
		return r;
	}
	if (w.word.len)
		words_push(&w);
	plait_buf_release(&w.word);
	if (!w.v)
		w.v = xcalloc(1, sizeof(char *));
	*out = w.v;
	if (n_out)
		*n_out = w.n;
	return 0;
}

int plait_expand_heredoc(const char *content, plait_expand_lookup_fn fn, void *userdata,
			 char **out, struct plait_error **err)
{
	const struct plait_expand_opts opts = {
		.escape = '\\',
		.skip_quotes = true,
		.skip_unset = true,
	};
	return plait_expand_word(content, &opts, fn, userdata, out, err);
}

bool plait_expand_applies(enum plait_df_kind kind)
{
	static const bool table[PLAIT_DF_KIND_COUNT] = {
		[PLAIT_DF_ADD] = true,	  [PLAIT_DF_COPY] = true,    [PLAIT_DF_ENV] = true,
		[PLAIT_DF_EXPOSE] = true, [PLAIT_DF_FROM] = true,    [PLAIT_DF_LABEL] = true,
		[PLAIT_DF_STOPSIGNAL] = true, [PLAIT_DF_USER] = true, [PLAIT_DF_VOLUME] = true,
		[PLAIT_DF_WORKDIR] = true, [PLAIT_DF_ARG] = true,
	};
	if ((int)kind < 0 || kind >= PLAIT_DF_KIND_COUNT)
		return false;
	return table[kind];
}

void plait_expand_opts_for(struct plait_expand_opts *opts, const struct plait_dockerfile *df,
			   const struct plait_df_instr *in)
{
	*opts = (struct plait_expand_opts){
		.escape = df && df->escape ? df->escape : '\\',
		.filename = df ? df->filename : NULL,
		.line = in ? in->line : 0,
	};
}

const char *plait_expand_lookup_envv(const char *name, void *userdata)
{
	char **envv = userdata;
	const char *found = NULL;
	size_t n = strlen(name);
	for (; envv && *envv; envv++)
		if (strncmp(*envv, name, n) == 0 && (*envv)[n] == '=')
			found = *envv + n + 1;
	return found;
}
