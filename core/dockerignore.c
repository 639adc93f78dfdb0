/* core/dockerignore.c - see dockerignore.h. The matcher interprets the cleaned
 * pattern directly with the semantics of the regexp moby compiles it to: a
 * star is any run of non-'/' bytes, '?' one non-'/' character, a double star
 * and its '/' any run that is empty or ends in '/', a trailing double star
 * anything. That needs no regexp engine and no compiled state. */
#include "dockerignore.h"

#include <errno.h>

#include "banned.h"

#define IGNORE_FILE_MAX (16u << 20)

/* ---- path cleaning (Go's path.Clean) ---- */

void plait_path_clean(const char *path, struct plait_buf *out)
{
	size_t n = strlen(path), base = out->len;
	bool rooted = n > 0 && path[0] == '/';
	size_t r = 0, dotdot;

	if (rooted) {
		plait_buf_addch(out, '/');
		r = 1;
	}
	/* dotdot: where ".." can no longer backtrack (after the root or leading ".."s) */
	dotdot = out->len;
	while (r < n) {
		if (path[r] == '/') {
			r++;
		} else if (path[r] == '.' && (r + 1 == n || path[r + 1] == '/')) {
			r++;
		} else if (path[r] == '.' && path[r + 1] == '.' && (r + 2 == n || path[r + 2] == '/')) {
			r += 2;
			if (out->len > dotdot) {
				size_t w = out->len - 1;
				while (w > dotdot && out->buf[w] != '/')
					w--;
				plait_buf_setlen(out, w);
			} else if (!rooted) {
				if (out->len > base)
					plait_buf_addch(out, '/');
				plait_buf_adds(out, "..");
				dotdot = out->len;
			}
		} else {
			if ((rooted && out->len != base + 1) || (!rooted && out->len != base))
				plait_buf_addch(out, '/');
			while (r < n && path[r] != '/')
				plait_buf_addch(out, path[r++]);
		}
	}
	if (out->len == base)
		plait_buf_addch(out, '.');
}

/* ---- glob syntax and matching ---- */

/* Decode one UTF-8 character; invalid bytes count as one character each. */
static uint32_t decode_rune(const char *s, size_t *len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n = 1;
	uint32_t c = u[0];

	if (c >= 0xc0 && c < 0xe0)
		n = 2, c &= 0x1f;
	else if (c >= 0xe0 && c < 0xf0)
		n = 3, c &= 0x0f;
	else if (c >= 0xf0 && c < 0xf8)
		n = 4, c &= 0x07;
	for (size_t i = 1; i < n; i++) {
		if ((u[i] & 0xc0) != 0x80) {
			*len = 1;
			return u[0];
		}
		c = (c << 6) | (u[i] & 0x3f);
	}
	*len = n;
	return c;
}

/* One class member, Go's getEsc. *p is inside a validated class. */
static uint32_t class_char(const char **p)
{
	size_t n;
	if (**p == '\\')
		(*p)++;
	uint32_t c = decode_rune(*p, &n);
	*p += n;
	return c;
}

/* One class member for validation (Go's getEsc): no bare '-' or ']', and
 * the class must go on after it. */
static int get_esc(const char **p, uint32_t *c, int nrange, const char **why)
{
	if (**p == '-' || **p == ']') {
		*why = nrange == 0 && **p == ']' ? "empty character class"
						 : "'-' and ']' must be escaped in a character class";
		return -1;
	}
	if (**p == '\\')
		(*p)++;
	if (**p == '\0') {
		*why = "missing ']'";
		return -1;
	}
	size_t n;
	*c = decode_rune(*p, &n);
	*p += n;
	if (**p == '\0') {
		*why = "missing ']'";
		return -1;
	}
	return 0;
}

/* Validate the class at *p (just after '['), leaving *p after its ']'. */
static int validate_class(const char **pp, const char **why)
{
	const char *p = *pp;
	int nrange = 0;

	if (*p == '^')
		p++;
	for (;;) {
		if (*p == ']' && nrange > 0) {
			*pp = p + 1;
			return 0;
		}
		uint32_t lo, hi;
		if (get_esc(&p, &lo, nrange, why) < 0)
			return -1;
		hi = lo;
		if (*p == '-') {
			p++;
			if (get_esc(&p, &hi, 1, why) < 0)
				return -1;
		}
		if (lo > hi) {
			*why = "character range out of order";
			return -1;
		}
		nrange++;
	}
}

int plait_glob_validate(const char *pattern, const char **why)
{
	const char *p = pattern;
	while (*p) {
		if (*p == '\\') {
			if (p[1] == '\0') {
				*why = "trailing '\\' escapes nothing";
				return -1;
			}
			p += 2;
		} else if (*p == '[') {
			p++;
			if (validate_class(&p, why) < 0)
				return -1;
		} else {
			p++;
		}
	}
	return 0;
}

static bool class_match(const char **pp, uint32_t r)
{
	const char *p = *pp + 1;
	bool neg = false, m = false;
	int n = 0;

	if (*p == '^') {
		neg = true;
		p++;
	}
	for (;;) {
		if (*p == ']' && n > 0) {
			p++;
			break;
		}
		uint32_t lo = class_char(&p), hi = lo;
		if (*p == '-') {
			p++;
			hi = class_char(&p);
		}
		if (lo <= r && r <= hi)
			m = true;
		n++;
	}
	*pp = p;
	return m != neg;
}

/* Backtracking match of a validated pattern; dstar enables moby's "**".
 * Each star tries every position after it, so patterns like "*a*a*a*b"
 * would take exponential time: the (pattern, name) positions already known
 * not to match are remembered (one bit each, allocated at the first star). */
struct match {
	const char *pattern, *name;
	size_t plen, slen;
	bool dstar;
	unsigned char *failed;
};

static bool match_here(struct match *m, const char *p, const char *s);

static bool match_try(struct match *m, const char *p, const char *s)
{
	if (!m->failed)
		m->failed = xcalloc((m->plen + 1) * (m->slen + 1) / 8 + 1, 1);
	size_t bit = (size_t)(p - m->pattern) * (m->slen + 1) + (size_t)(s - m->name);
	if (m->failed[bit / 8] & (1u << (bit % 8)))
		return false;
	if (match_here(m, p, s))
		return true;
	m->failed[bit / 8] |= (unsigned char)(1u << (bit % 8));
	return false;
}

static bool match_here(struct match *m, const char *p, const char *s)
{
	size_t n;
	bool dstar = m->dstar;

	for (;;) {
		switch (*p) {
		case '\0':
			return *s == '\0';
		case '*':
			if (dstar && p[1] == '*') {
				p += 2;
				if (*p == '/')
					p++;
				if (*p == '\0')
					return true;
				if (match_try(m, p, s))
					return true;
				for (const char *q = s; *q; q++)
					if (*q == '/' && match_try(m, p, q + 1))
						return true;
				return false;
			}
			p++;
			for (const char *q = s;; q++) {
				if (match_try(m, p, q))
					return true;
				if (*q == '\0' || *q == '/')
					return false;
			}
		case '?':
			if (*s == '\0' || *s == '/')
				return false;
			decode_rune(s, &n);
			s += n;
			p++;
			break;
		case '[': {
			if (*s == '\0')
				return false;
			uint32_t r = decode_rune(s, &n);
			if (!class_match(&p, r))
				return false;
			s += n;
			break;
		}
		case '\\':
			p++;
			/* fallthrough */
		default:
			if (*p != *s)
				return false;
			p++;
			s++;
		}
	}
}

static bool match_pattern(const char *pattern, const char *name, bool dstar)
{
	struct match m = { .pattern = pattern, .name = name, .plen = strlen(pattern),
			   .slen = strlen(name), .dstar = dstar };
	bool r = match_here(&m, pattern, name);
	free(m.failed);
	return r;
}

int plait_glob_match(const char *pattern, const char *name)
{
	const char *why;
	if (plait_glob_validate(pattern, &why) < 0)
		return -1;
	return match_pattern(pattern, name, false) ? 1 : 0;
}

bool plait_glob_has_wildcards(const char *s)
{
	for (; *s; s++) {
		if (*s == '\\') {
			if (!*++s)
				break;
		} else if (*s == '*' || *s == '?' || *s == '[') {
			return true;
		}
	}
	return false;
}

/* ---- parsing ---- */

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static void trim(const char **b, const char **e)
{
	while (*b < *e && is_space(**b))
		(*b)++;
	while (*e > *b && is_space((*e)[-1]))
		(*e)--;
}

void plait_ignore_free(struct plait_ignore *ig)
{
	if (!ig)
		return;
	for (size_t i = 0; i < ig->n_rules; i++)
		free(ig->rules[i].pattern);
	free(ig->rules);
	free(ig->source);
	free(ig);
}

/* moby matches "**" followed by literal text with HasSuffix, not the regexp. */
static bool is_suffix_pattern(const char *p)
{
	if (!startswith(p, "**"))
		return false;
	return !p[strcspn(p + 2, "*?[]\\") + 2];
}

int plait_ignore_parse(const char *data, size_t len, const char *source, struct plait_ignore **out,
		       struct plait_error **err)
{
	_cleanup_ignore_ struct plait_ignore *ig = xcalloc(1, sizeof(*ig));
	const char *p = data, *end = data + len;
	unsigned lineno = 0;

	ig->source = xstrdup(source ? source : ".dockerignore");
	if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
		p += 3;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *b = p, *e = nl ? nl : end;
		p = nl ? nl + 1 : end;
		lineno++;
		if (memchr(b, '\0', (size_t)(e - b)))
			return plait_error_set(err, PLAIT_E_INVALID, "%s:%u: invalid pattern: contains a NUL byte",
					       ig->source, lineno);
		if (b < e && *b == '#')
			continue;
		trim(&b, &e);
		if (b == e)
			continue;
		bool exception = *b == '!';
		if (exception) {
			b++;
			trim(&b, &e);
			if (b == e)
				return plait_error_set(err, PLAIT_E_INVALID,
						       "%s:%u: invalid pattern '!': an exception needs a pattern after '!'",
						       ig->source, lineno);
		}
		_cleanup_free_ char *raw = xstrndup(b, (size_t)(e - b));
		_cleanup_buf_ struct plait_buf clean = PLAIT_BUF_INIT;
		plait_path_clean(raw, &clean);
		const char *pat = clean.buf;
		if (clean.len > 1 && pat[0] == '/')
			pat++;
		const char *why;
		if (plait_glob_validate(pat, &why) < 0)
			return plait_error_set(err, PLAIT_E_INVALID, "%s:%u: invalid pattern '%s%s': %s", ig->source,
					       lineno, exception ? "!" : "", raw, why);

		PLAIT_ALLOC_GROW(ig->rules, ig->n_rules + 1, ig->alloc_rules);
		struct plait_ignore_rule *r = &ig->rules[ig->n_rules++];
		*r = (struct plait_ignore_rule){
			.pattern = xstrdup(pat),
			.line = lineno,
			.exception = exception,
			.suffix_match = is_suffix_pattern(pat),
		};
		if (exception) {
			ig->has_exceptions = true;
			if (plait_glob_has_wildcards(pat))
				ig->exception_wildcards = true;
		}
	}
	*out = TAKE_PTR(ig);
	return 0;
}

int plait_ignore_load(const char *context_dir, const char *dockerfile, struct plait_ignore **out,
		      struct plait_error **err)
{
	_cleanup_buf_ struct plait_buf path = PLAIT_BUF_INIT;
	_cleanup_buf_ struct plait_buf data = PLAIT_BUF_INIT;
	int r;

	if (dockerfile && *dockerfile && !streq(dockerfile, "-")) {
		plait_buf_addf(&path, "%s.dockerignore", dockerfile);
		r = plait_buf_read_file(&data, path.buf, IGNORE_FILE_MAX);
		if (r == 0)
			return plait_ignore_parse(data.buf, data.len, path.buf, out, err);
		if (r != -ENOENT && r != -ENOTDIR)
			return plait_error_set_errno(err, PLAIT_E_IO, r, "read '%s'", path.buf);
	}
	plait_buf_reset(&path);
	plait_buf_addf(&path, "%s/.dockerignore", context_dir);
	r = plait_buf_read_file(&data, path.buf, IGNORE_FILE_MAX);
	if (r == 0)
		return plait_ignore_parse(data.buf, data.len, path.buf, out, err);
	if (r != -ENOENT)
		return plait_error_set_errno(err, PLAIT_E_IO, r, "read '%s'", path.buf);
	return plait_ignore_parse("", 0, ".dockerignore", out, err);
}

/* ---- matching ---- */

static bool rule_matches(const struct plait_ignore_rule *r, const char *path)
{
	if (r->suffix_match) {
		const char *suffix = r->pattern + 2;
		return endswith(path, suffix) || (suffix[0] == '/' && streq(path, suffix + 1));
	}
	return match_pattern(r->pattern, path, true);
}

const struct plait_ignore_rule *plait_ignore_match_rule(const struct plait_ignore *ig,
							const char *relpath)
{
	if (!ig || ig->n_rules == 0)
		return NULL;
	_cleanup_free_ char *parent = xstrdup(relpath);
	const struct plait_ignore_rule *by = NULL;
	bool matched = false;

	for (size_t i = 0; i < ig->n_rules; i++) {
		const struct plait_ignore_rule *r = &ig->rules[i];
		/* exclusions only matter while included, exceptions while excluded */
		if (r->exception != matched)
			continue;
		bool m = rule_matches(r, relpath);
		/* then each parent directory, shortest first */
		for (char *s = parent; !m && (s = strchr(s, '/')); s++) {
			*s = '\0';
			m = rule_matches(r, parent);
			*s = '/';
		}
		if (m) {
			matched = !r->exception;
			by = matched ? r : NULL;
		}
	}
	return by;
}

bool plait_ignore_match(const struct plait_ignore *ig, const char *relpath)
{
	return plait_ignore_match_rule(ig, relpath) != NULL;
}

bool plait_ignore_may_include_below(const struct plait_ignore *ig, const char *reldir)
{
	if (!ig || !ig->has_exceptions)
		return false;
	if (ig->exception_wildcards)
		return true;
	size_t n = strlen(reldir);
	for (size_t i = 0; i < ig->n_rules; i++) {
		const struct plait_ignore_rule *r = &ig->rules[i];
		/* "<pattern>/" starts with "<reldir>/" */
		if (r->exception && strncmp(r->pattern, reldir, n) == 0 &&
		    (r->pattern[n] == '/' || r->pattern[n] == '\0'))
			return true;
	}
	return false;
}
