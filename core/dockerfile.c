/* Dockerfile parser, after BuildKit's frontend/dockerfile/parser and
 * instructions packages: same line handling, same argument forms. */
#include "dockerfile.h"
#include "buf.h"
#include "expand.h"
#include "utf8.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <jansson.h>
#include <stdarg.h>
#include <strings.h>

#include "banned.h"

enum flag_type { FLAG_STRING, FLAG_STRINGS, FLAG_BOOL };

struct flag_spec {
	const char *name;
	enum flag_type type;
};

static const struct flag_spec from_flags[] = { { "platform", FLAG_STRING }, { NULL, 0 } };
static const struct flag_spec run_flags[] = {
	{ "mount", FLAG_STRINGS },
	{ "network", FLAG_STRING },
	{ "security", FLAG_STRING },
	{ NULL, 0 },
};
static const struct flag_spec copy_flags[] = {
	{ "from", FLAG_STRING },   { "chown", FLAG_STRING },	{ "chmod", FLAG_STRING },
	{ "link", FLAG_BOOL },	   { "exclude", FLAG_STRINGS }, { "parents", FLAG_BOOL },
	{ NULL, 0 },
};
static const struct flag_spec add_flags[] = {
	{ "chown", FLAG_STRING },     { "chmod", FLAG_STRING },	      { "link", FLAG_BOOL },
	{ "checksum", FLAG_STRING },  { "keep-git-dir", FLAG_BOOL }, { "exclude", FLAG_STRINGS },
	{ NULL, 0 },
};
static const struct flag_spec healthcheck_flags[] = {
	{ "interval", FLAG_STRING },	   { "timeout", FLAG_STRING }, { "start-period", FLAG_STRING },
	{ "start-interval", FLAG_STRING }, { "retries", FLAG_STRING }, { NULL, 0 },
};

static const struct kind_info {
	const char *name;
	const struct flag_spec *flags; /* NULL: takes no flags */
} kinds[PLAIT_DF_KIND_COUNT] = {
	[PLAIT_DF_INVALID] = { "", NULL },
	[PLAIT_DF_FROM] = { "FROM", from_flags },
	[PLAIT_DF_RUN] = { "RUN", run_flags },
	[PLAIT_DF_CMD] = { "CMD", NULL },
	[PLAIT_DF_LABEL] = { "LABEL", NULL },
	[PLAIT_DF_EXPOSE] = { "EXPOSE", NULL },
	[PLAIT_DF_ENV] = { "ENV", NULL },
	[PLAIT_DF_ADD] = { "ADD", add_flags },
	[PLAIT_DF_COPY] = { "COPY", copy_flags },
	[PLAIT_DF_ENTRYPOINT] = { "ENTRYPOINT", NULL },
	[PLAIT_DF_VOLUME] = { "VOLUME", NULL },
	[PLAIT_DF_USER] = { "USER", NULL },
	[PLAIT_DF_WORKDIR] = { "WORKDIR", NULL },
	[PLAIT_DF_ARG] = { "ARG", NULL },
	[PLAIT_DF_ONBUILD] = { "ONBUILD", NULL },
	[PLAIT_DF_STOPSIGNAL] = { "STOPSIGNAL", NULL },
	[PLAIT_DF_HEALTHCHECK] = { "HEALTHCHECK", healthcheck_flags },
	[PLAIT_DF_SHELL] = { "SHELL", NULL },
	[PLAIT_DF_MAINTAINER] = { "MAINTAINER", NULL },
};

const char *plait_df_kind_name(enum plait_df_kind kind)
{
	if ((int)kind <= 0 || kind >= PLAIT_DF_KIND_COUNT)
		return "";
	return kinds[kind].name;
}

enum plait_df_kind plait_df_kind_from_string(const char *keyword)
{
	for (int k = 1; k < PLAIT_DF_KIND_COUNT; k++)
		if (strcasecmp(kinds[k].name, keyword) == 0)
			return (enum plait_df_kind)k;
	return PLAIT_DF_INVALID;
}

/* Where an instruction is, for messages. */
struct loc {
	const char *file;
	int line, col;
	const char *original;
};

static int vloc_error(struct plait_error **err, const struct loc *l, const char *fmt, va_list ap)
{
	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s:%d:%d: ", l->file, l->line, l->col);
	plait_buf_vaddf(&b, fmt, ap);
	return plait_error_set(err, PLAIT_E_INVALID, "%s", b.buf);
}

/* The parser state the helpers share. */
struct parser {
	const char *file;
	char escape;
	struct plait_error **err;
	char **warnings;
	size_t n_warnings, alloc_warnings;
};

static int perr(struct parser *p, const struct loc *l, const char *fmt, ...) _printf_(3, 4);
static int perr(struct parser *p, const struct loc *l, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vloc_error(p->err, l, fmt, ap);
	va_end(ap);
	return r;
}

/* The standard frontend BuildKit would pull: [docker.io/]docker/dockerfile
 * (or -upstream), with any tag and digest. */
static bool standard_frontend(const char *v)
{
	if (startswith(v, "docker.io/"))
		v += strlen("docker.io/");
	const char *names[] = { "docker/dockerfile-upstream", "docker/dockerfile" };
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		size_t n = strlen(names[i]);
		if (strncmp(v, names[i], n) == 0 && (!v[n] || v[n] == ':' || v[n] == '@'))
			return true;
	}
	return false;
}

static void warn(struct parser *p, int line, const char *fmt, ...) _printf_(3, 4);
static void warn(struct parser *p, int line, const char *fmt, ...)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s:%d: ", p->file, line);
	va_list ap;
	va_start(ap, fmt);
	plait_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	PLAIT_ALLOC_GROW(p->warnings, p->n_warnings + 2, p->alloc_warnings);
	p->warnings[p->n_warnings++] = plait_buf_detach(&b, NULL);
	p->warnings[p->n_warnings] = NULL;
}

/* Go's unicode.IsSpace for ASCII; BuildKit trims with it. */
static bool is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* BuildKit's reWhitespace: [\t\v\f\r ]+ */
static bool is_ws(int c)
{
	return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r';
}

static char *trim_dup(const char *s, size_t n)
{
	while (n && is_space((unsigned char)*s))
		s++, n--;
	while (n && is_space((unsigned char)s[n - 1]))
		n--;
	return xstrndup(s, n);
}

/* Split on runs of blanks (BuildKit's parseStringsWhitespaceDelimited); s is trimmed. */
static void split_ws(const char *s, char ***args, size_t *n)
{
	size_t alloc = 0;
	*args = NULL;
	*n = 0;
	while (*s) {
		while (*s && is_ws((unsigned char)*s))
			s++;
		if (!*s)
			break;
		const char *e = s;
		while (*e && !is_ws((unsigned char)*e))
			e++;
		plait_strv_add_take(args, n, &alloc, xstrndup(s, e - s));
		s = e;
	}
}

/* BuildKit's parseWords: split on blanks outside quotes, keeping quotes and
 * escapes in the words (expansion removes them later). */
static void parse_words(const char *rest, char escape, char ***out, size_t *n_out)
{
	enum { IN_SPACES, IN_WORD, IN_QUOTE } phase = IN_SPACES;
	_cleanup_buf_ struct plait_buf word = PLAIT_BUF_INIT;
	char **words = NULL;
	size_t n = 0, alloc = 0, len = strlen(rest);
	char quote = 0;
	bool blank_ok = false;

	for (size_t pos = 0; pos <= len; pos++) {
		char ch = pos < len ? rest[pos] : 0;
		if (phase == IN_SPACES) {
			if (pos == len)
				break;
			if (is_space((unsigned char)ch))
				continue;
			phase = IN_WORD;
		}
		if (pos == len) {
			if (blank_ok || word.len)
				plait_strv_add_take(&words, &n, &alloc, plait_buf_detach(&word, NULL));
			break;
		}
		if (phase == IN_WORD) {
			if (is_space((unsigned char)ch)) {
				phase = IN_SPACES;
				if (blank_ok || word.len)
					plait_strv_add_take(&words, &n, &alloc, plait_buf_detach(&word, NULL));
				blank_ok = false;
				continue;
			}
			if (ch == '\'' || ch == '"') {
				quote = ch;
				blank_ok = true;
				phase = IN_QUOTE;
			}
			if (ch == escape) {
				if (pos + 1 == len)
					continue; /* an escape at the end is dropped */
				plait_buf_addch(&word, ch);
				ch = rest[++pos];
			}
			plait_buf_addch(&word, ch);
			continue;
		}
		/* IN_QUOTE */
		if (ch == quote)
			phase = IN_WORD;
		if (ch == escape && quote != '\'') {
			if (pos + 1 == len) {
				phase = IN_WORD;
				continue;
			}
			plait_buf_addch(&word, ch);
			ch = rest[++pos];
		}
		plait_buf_addch(&word, ch);
	}
	if (!words)
		words = xcalloc(1, sizeof(char *));
	*out = words;
	*n_out = n;
}

/* BuildKit's extractBuilderFlags: leading `--words`, quotes processed.
 * Returns the offset of the remaining text. */
static size_t extract_flags(const char *line, char ***out, size_t *n_out)
{
	enum { IN_SPACES, IN_WORD, IN_QUOTE } phase = IN_SPACES;
	_cleanup_buf_ struct plait_buf word = PLAIT_BUF_INIT;
	size_t len = strlen(line), alloc = 0;
	char quote = 0;
	bool blank_ok = false;
	*out = NULL;
	*n_out = 0;

	for (size_t pos = 0; pos <= len; pos++) {
		char ch = pos < len ? line[pos] : 0;
		if (phase == IN_SPACES) {
			if (pos == len)
				break;
			if (is_space((unsigned char)ch))
				continue;
			if (ch != '-' || pos + 1 == len || line[pos + 1] != '-')
				return pos;
			phase = IN_WORD;
		}
		if (pos == len) {
			if (!streq(word.buf, "--") && (blank_ok || word.len))
				plait_strv_add_take(out, n_out, &alloc, plait_buf_detach(&word, NULL));
			break;
		}
		if (phase == IN_WORD) {
			if (is_space((unsigned char)ch)) {
				phase = IN_SPACES;
				if (streq(word.buf, "--"))
					return pos;
				if (blank_ok || word.len)
					plait_strv_add_take(out, n_out, &alloc, plait_buf_detach(&word, NULL));
				plait_buf_reset(&word);
				blank_ok = false;
				continue;
			}
			if (ch == '\'' || ch == '"') {
				quote = ch;
				blank_ok = true;
				phase = IN_QUOTE;
				continue;
			}
			if (ch == '\\') {
				if (pos + 1 == len)
					continue;
				ch = line[++pos];
			}
			plait_buf_addch(&word, ch);
			continue;
		}
		if (ch == quote) {
			phase = IN_WORD;
			continue;
		}
		if (ch == '\\') {
			if (pos + 1 == len) {
				phase = IN_WORD;
				continue;
			}
			ch = line[++pos];
		}
		plait_buf_addch(&word, ch);
	}
	return len;
}

static void flag_list(const struct flag_spec *specs, struct plait_buf *b)
{
	for (size_t i = 0; specs[i].name; i++)
		plait_buf_addf(b, "%s--%s", i ? ", " : "", specs[i].name);
}

static int parse_flags(struct parser *p, const struct loc *l, enum plait_df_kind kind,
		       char **words, size_t n, struct plait_df_instr *in)
{
	const struct flag_spec *specs = kinds[kind].flags;
	const char *kname = kinds[kind].name;
	if (!n)
		return 0;
	in->flags = xcalloc(n, sizeof(*in->flags));
	for (size_t i = 0; i < n; i++) {
		const char *w = words[i] + 2; /* skip "--" */
		const char *eq = strchr(w, '=');
		_cleanup_free_ char *name = eq ? xstrndup(w, eq - w) : xstrdup(w);
		const struct flag_spec *spec = NULL;
		for (size_t k = 0; specs && specs[k].name; k++)
			if (streq(specs[k].name, name))
				spec = &specs[k];
		if (!spec) {
			if (!specs)
				return perr(p, l, "unknown flag '--%s' in '%s': %s takes no flags", name,
					    l->original, kname);
			_cleanup_buf_ struct plait_buf list = PLAIT_BUF_INIT;
			flag_list(specs, &list);
			return perr(p, l, "unknown flag '--%s' in '%s': %s accepts %s", name,
				    l->original, kname, list.buf);
		}
		if (spec->type != FLAG_STRINGS && plait_df_flag_get(in, name))
			return perr(p, l, "flag '--%s' is repeated in '%s': give it once", name,
				    l->original);
		char *value;
		if (spec->type == FLAG_BOOL) {
			if (eq && !eq[1])
				return perr(p, l, "flag '--%s' in '%s' needs a value: write --%s or --%s=false",
					    name, l->original, name, name);
			if (!eq || strcasecmp(eq + 1, "true") == 0)
				value = xstrdup("true");
			else if (strcasecmp(eq + 1, "false") == 0)
				value = xstrdup("false");
			else
				return perr(p, l, "flag '--%s' in '%s' must be true or false, not '%s'", name,
					    l->original, eq + 1);
		} else {
			if (!eq)
				return perr(p, l, "flag '--%s' in '%s' needs a value: write --%s=<value>",
					    name, l->original, name);
			value = xstrdup(eq + 1);
		}
		in->flags[in->n_flags].name = TAKE_PTR(name);
		in->flags[in->n_flags].value = value;
		in->n_flags++;
	}
	return 0;
}

/* JSON form: 1 when rest is a JSON array of strings (args filled), 0 when it is
 * not JSON (use shell form), <0 when it is a JSON array of something else. */
static int parse_json(struct parser *p, const struct loc *l, const char *rest,
		      struct plait_df_instr *in)
{
	if (rest[0] != '[')
		return 0;
	json_error_t jerr;
	json_auto_t *j = json_loads(rest, 0, &jerr);
	if (!j || !json_is_array(j))
		return 0;
	size_t n = json_array_size(j);
	for (size_t i = 0; i < n; i++)
		if (!json_is_string(json_array_get(j, i)))
			return perr(p, l, "JSON array in '%s' must contain only strings", l->original);
	in->args = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		in->args[i] = xstrdup(json_string_value(json_array_get(j, i)));
	in->n_args = n;
	in->json = true;
	return 1;
}

/* RUN CMD ENTRYPOINT HEALTHCHECK CMD: JSON when valid, else the text. */
static int parse_maybe_json(struct parser *p, const struct loc *l, const char *rest,
			    struct plait_df_instr *in)
{
	int r = parse_json(p, l, rest, in);
	if (r < 0)
		return r;
	if (r == 0 && *rest)
		in->shell = xstrdup(rest);
	return 0;
}

/* COPY ADD VOLUME: JSON when valid, else words split on blanks. */
static int parse_maybe_json_list(struct parser *p, const struct loc *l, const char *rest,
				 struct plait_df_instr *in)
{
	int r = parse_json(p, l, rest, in);
	if (r < 0)
		return r;
	if (r == 0)
		split_ws(rest, &in->args, &in->n_args);
	return 0;
}

static void kv_push(struct plait_df_instr *in, size_t *alloc, char *key, char *value)
{
	PLAIT_ALLOC_GROW(in->kvs, in->n_kvs + 1, *alloc);
	in->kvs[in->n_kvs].key = key;
	in->kvs[in->n_kvs].value = value;
	in->n_kvs++;
}

/* ENV and LABEL: `k=v k2="v 2"`, or the legacy `k rest of line`. */
static int parse_name_val(struct parser *p, const struct loc *l, const char *kname,
			  const char *rest, struct plait_df_instr *in)
{
	_cleanup_strv_free_ char **words = NULL;
	size_t n = 0, alloc = 0;
	parse_words(rest, p->escape, &words, &n);
	if (!n)
		return perr(p, l, "%s requires at least one argument: '%s'", kname, l->original);
	if (!strchr(words[0], '=')) {
		const char *s = rest;
		while (*s && !is_ws((unsigned char)*s))
			s++;
		const char *v = s;
		while (*v && is_ws((unsigned char)*v))
			v++;
		if (!*v)
			return perr(p, l, "%s requires a value in '%s': write %s %s=<value>", kname,
				    l->original, kname, words[0]);
		kv_push(in, &alloc, xstrndup(rest, s - rest), xstrdup(v));
		in->legacy_kv = true;
		warn(p, l->line, "'%s' uses the legacy '%s key value' form: write %s key=value",
		     l->original, kname, kname);
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(words[i], '=');
		if (!eq)
			return perr(p, l, "missing '=' in '%s' in '%s': write name=value", words[i],
				    l->original);
		if (eq == words[i])
			return perr(p, l, "%s name is empty in '%s'", kname, l->original);
		kv_push(in, &alloc, xstrndup(words[i], eq - words[i]), xstrdup(eq + 1));
	}
	return 0;
}

static int parse_arg(struct parser *p, const struct loc *l, const char *rest,
		     struct plait_df_instr *in)
{
	_cleanup_strv_free_ char **words = NULL;
	size_t n = 0, alloc = 0;
	parse_words(rest, p->escape, &words, &n);
	if (!n)
		return perr(p, l, "ARG requires at least one argument: '%s'", l->original);
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(words[i], '=');
		if (eq == words[i])
			return perr(p, l, "ARG name is empty in '%s'", l->original);
		if (eq)
			kv_push(in, &alloc, xstrndup(words[i], eq - words[i]), xstrdup(eq + 1));
		else
			kv_push(in, &alloc, xstrdup(words[i]), NULL);
	}
	return 0;
}

static bool valid_stage_name(const char *s)
{
	if (!(*s >= 'a' && *s <= 'z'))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' ||
		      *s == '_' || *s == '.'))
			return false;
	return true;
}

static int parse_from(struct parser *p, const struct loc *l, const char *rest,
		      struct plait_df_instr *in)
{
	split_ws(rest, &in->args, &in->n_args);
	if (in->n_args == 0)
		return perr(p, l, "FROM requires an image: '%s'", l->original);
	if (in->n_args == 2 || in->n_args > 3 ||
	    (in->n_args == 3 && strcasecmp(in->args[1], "as") != 0))
		return perr(p, l, "FROM takes an image and an optional 'AS name': '%s'", l->original);
	in->image = xstrdup(in->args[0]);
	if (in->n_args == 3) {
		char *name = xstrdup(in->args[2]);
		for (char *c = name; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		in->stage_name = name;
		if (!valid_stage_name(name))
			return perr(p, l,
				    "invalid stage name '%s' in '%s': it must start with a letter and "
				    "contain only letters, digits, '-', '_' and '.'",
				    in->args[2], l->original);
	}
	return 0;
}

/* Go's time.ParseDuration: "300ms", "1.5h", "2h45m", "0". */
static int parse_duration(const char *s, int64_t *out)
{
	static const struct {
		const char *unit;
		double ns;
	} units[] = {
		{ "ns", 1 },	       { "us", 1e3 },  { "\xc2\xb5s", 1e3 }, { "\xce\xbcs", 1e3 },
		{ "ms", 1e6 },	       { "s", 1e9 },   { "m", 60e9 },	   { "h", 3600e9 },
	};
	double total = 0;
	bool neg = false;
	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	if (streq(s, "0")) {
		*out = 0;
		return 0;
	}
	if (!*s)
		return -EINVAL;
	while (*s) {
		const char *start = s;
		double v = 0, frac = 0, scale = 1;
		while (*s >= '0' && *s <= '9')
			v = v * 10 + (*s++ - '0');
		bool digits = s > start;
		if (*s == '.') {
			s++;
			const char *fs = s;
			while (*s >= '0' && *s <= '9') {
				scale /= 10;
				frac += (*s++ - '0') * scale;
			}
			digits = digits || s > fs;
		}
		if (!digits)
			return -EINVAL;
		const char *us = s;
		while (*s && !(*s >= '0' && *s <= '9') && *s != '.')
			s++;
		size_t ulen = s - us;
		double mult = 0;
		for (size_t i = 0; i < ARRAY_SIZE(units); i++)
			if (strlen(units[i].unit) == ulen && strncmp(units[i].unit, us, ulen) == 0)
				mult = units[i].ns;
		if (mult == 0)
			return -EINVAL;
		total += (v + frac) * mult;
		if (total > 9.2e18)
			return -ERANGE;
	}
	*out = (int64_t)(neg ? -total : total);
	return 0;
}

static int health_duration(struct parser *p, const struct loc *l, struct plait_df_instr *in,
			   const char *name, int64_t *out)
{
	const char *v = plait_df_flag_get(in, name);
	if (!v)
		return 0;
	if (parse_duration(v, out) < 0)
		return perr(p, l, "invalid duration '%s' for --%s in '%s': write e.g. 30s or 1m30s", v,
			    name, l->original);
	if (*out < 0)
		return perr(p, l, "--%s cannot be negative in '%s'", name, l->original);
	if (*out > 0 && *out < 1000000)
		return perr(p, l, "--%s cannot be less than 1ms in '%s'", name, l->original);
	return 0;
}

static int parse_healthcheck(struct parser *p, const struct loc *l, const char *rest,
			     struct plait_df_instr *in)
{
	if (!*rest)
		return perr(p, l, "HEALTHCHECK requires at least one argument: '%s'", l->original);
	size_t sep = 0;
	while (rest[sep] && !is_space((unsigned char)rest[sep]))
		sep++;
	const char *cmd = rest + sep;
	while (*cmd && is_space((unsigned char)*cmd))
		cmd++;
	_cleanup_free_ char *typ = xstrndup(rest, sep);
	if (strcasecmp(typ, "NONE") == 0) {
		if (*cmd)
			return perr(p, l, "HEALTHCHECK NONE takes no arguments: '%s'", l->original);
		in->health_none = true;
		return 0;
	}
	if (strcasecmp(typ, "CMD") != 0)
		return perr(p, l, "unknown HEALTHCHECK type '%s' in '%s': use CMD or NONE", typ,
			    l->original);
	int r = parse_maybe_json(p, l, cmd, in);
	if (r < 0)
		return r;
	if (!in->shell && in->n_args == 0)
		return perr(p, l, "HEALTHCHECK CMD requires a command: '%s'", l->original);
	if ((r = health_duration(p, l, in, "interval", &in->health_interval_ns)) < 0 ||
	    (r = health_duration(p, l, in, "timeout", &in->health_timeout_ns)) < 0 ||
	    (r = health_duration(p, l, in, "start-period", &in->health_start_period_ns)) < 0 ||
	    (r = health_duration(p, l, in, "start-interval", &in->health_start_interval_ns)) < 0)
		return r;
	const char *retries = plait_df_flag_get(in, "retries");
	if (retries) {
		char *end = NULL;
		errno = 0;
		long v = strtol(retries, &end, 10);
		if (!*retries || *end || errno || v < 0 || v > INT32_MAX)
			return perr(p, l,
				    "invalid --retries '%s' in '%s': it must be a non-negative integer",
				    retries, l->original);
		in->health_retries = (int)v;
	}
	return 0;
}

/* Optimal string alignment distance, for "did you mean". */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 32 || lb > 32)
		return SIZE_MAX;
	size_t d[33][33];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = toupper((unsigned char)a[i - 1]) != toupper((unsigned char)b[j - 1]);
			size_t v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < v)
				v = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 &&
			    toupper((unsigned char)a[i - 1]) == toupper((unsigned char)b[j - 2]) &&
			    toupper((unsigned char)a[i - 2]) == toupper((unsigned char)b[j - 1]) &&
			    d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	}
	return d[la][lb];
}

static const char *suggest_keyword(const char *word)
{
	size_t best = SIZE_MAX, limit = strlen(word) >= 6 ? 2 : 1;
	const char *found = NULL;
	for (int k = 1; k < PLAIT_DF_KIND_COUNT; k++) {
		size_t d = edit_distance(word, kinds[k].name);
		if (d <= limit && d < best) {
			best = d;
			found = kinds[k].name;
		}
	}
	return found;
}

/* `N<<[-]WORD` as BuildKit's reHeredoc: ^(\d*)<<(-?)([^<]*)$ */
static bool heredoc_marker(const char *w, int *fd, bool *chomp, const char **rest)
{
	int v = 0;
	while (*w >= '0' && *w <= '9') {
		int d = *w++ - '0';
		v = v > (INT_MAX - d) / 10 ? INT_MAX : v * 10 + d; /* saturate: no signed overflow */
	}
	if (w[0] != '<' || w[1] != '<')
		return false;
	w += 2;
	*chomp = *w == '-';
	if (*chomp)
		w++;
	if (!*w || strchr(w, '<'))
		return false;
	*fd = v;
	*rest = w;
	return true;
}

/* BuildKit's ParseHeredoc: fills name/expand/chomp/fd; false when w is not one. */
static bool parse_heredoc_word(const char *w, struct plait_df_heredoc *h)
{
	int fd;
	bool chomp;
	const char *rest;
	if (!heredoc_marker(w, &fd, &chomp, &rest))
		return false;
	struct plait_expand_opts opts = { .escape = '\\', .skip_unset = true };
	_cleanup_strv_free_ char **words = NULL, **raw = NULL;
	size_t n = 0, n_raw = 0;
	if (plait_expand_words(rest, &opts, NULL, NULL, &words, &n, NULL) < 0 || n != 1)
		return false;
	opts.raw_quotes = true;
	if (plait_expand_words(rest, &opts, NULL, NULL, &raw, &n_raw, NULL) < 0 || n_raw != 1)
		return false;
	size_t q = 0, q_raw = 0;
	for (const char *c = words[0]; *c; c++)
		q += *c == '\'' || *c == '"';
	for (const char *c = raw[0]; *c; c++)
		q_raw += *c == '\'' || *c == '"';
	h->name = xstrdup(words[0]);
	h->expand = q == q_raw;
	h->chomp = chomp;
	h->fd = fd;
	return true;
}

static bool can_contain_heredoc(enum plait_df_kind k)
{
	return k == PLAIT_DF_RUN || k == PLAIT_DF_COPY || k == PLAIT_DF_ADD;
}

static int parse_instr(struct parser *p, const char *text, int line, int col,
		       struct plait_df_instr *in);

static int parse_onbuild(struct parser *p, const struct loc *l, const char *rest,
			 struct plait_df_instr *in)
{
	if (!*rest)
		return perr(p, l, "ONBUILD requires at least one argument: '%s'", l->original);
	size_t kw = 0;
	while (rest[kw] && !is_ws((unsigned char)rest[kw]))
		kw++;
	_cleanup_free_ char *keyword = xstrndup(rest, kw);
	enum plait_df_kind k = plait_df_kind_from_string(keyword);
	if (k == PLAIT_DF_ONBUILD)
		return perr(p, l, "ONBUILD ONBUILD is not allowed: '%s'", l->original);
	if (k == PLAIT_DF_FROM || k == PLAIT_DF_MAINTAINER)
		return perr(p, l, "%s is not allowed as an ONBUILD trigger: '%s'", kinds[k].name,
			    l->original);
	in->shell = xstrdup(rest);
	in->onbuild = xcalloc(1, sizeof(*in->onbuild));
	const char *at = strstr(l->original, rest);
	int col = l->col + (at ? (int)(at - l->original) : 0);
	return parse_instr(p, rest, l->line, col, in->onbuild);
}

static int require_args(struct parser *p, const struct loc *l, const char *kname,
			const struct plait_df_instr *in, size_t min)
{
	if (in->n_args >= min)
		return 0;
	if (min == 2)
		return perr(p, l,
			    "%s requires at least two arguments (sources and a destination): '%s'",
			    kname, l->original);
	return perr(p, l, "%s requires at least one argument: '%s'", kname, l->original);
}

/* One instruction from its joined text (leading blanks already skipped). */
static int parse_instr(struct parser *p, const char *text, int line, int col,
		       struct plait_df_instr *in)
{
	memset(in, 0, sizeof(*in));
	in->line = in->end_line = line;
	in->col = col;
	in->original = trim_dup(text, strlen(text));
	struct loc l = { .file = p->file, .line = line, .col = col, .original = in->original };

	const char *s = in->original;
	size_t kw = 0;
	while (s[kw] && !is_ws((unsigned char)s[kw]))
		kw++;
	_cleanup_free_ char *keyword = xstrndup(s, kw);
	in->kind = plait_df_kind_from_string(keyword);
	if (in->kind == PLAIT_DF_INVALID) {
		const char *hint = suggest_keyword(keyword);
		if (hint)
			return perr(p, &l, "unknown instruction '%s' (did you mean '%s'?)", keyword, hint);
		return perr(p, &l, "unknown instruction '%s'", keyword);
	}
	const char *kname = kinds[in->kind].name;

	const char *after = s + kw;
	while (*after && is_ws((unsigned char)*after))
		after++;
	_cleanup_strv_free_ char **flag_words = NULL;
	size_t n_flag_words = 0;
	size_t off = extract_flags(after, &flag_words, &n_flag_words);
	in->rest = trim_dup(after + off, strlen(after + off));
	int r = parse_flags(p, &l, in->kind, flag_words, n_flag_words, in);
	if (r < 0)
		return r;
	const char *rest = in->rest;

	switch (in->kind) {
	case PLAIT_DF_FROM:
		return parse_from(p, &l, rest, in);
	case PLAIT_DF_RUN:
	case PLAIT_DF_CMD:
	case PLAIT_DF_ENTRYPOINT:
		r = parse_maybe_json(p, &l, rest, in);
		if (r < 0)
			return r;
		/* CMD [] and ENTRYPOINT [] are valid: they reset the inherited value. */
		if (!in->shell && !in->json)
			return perr(p, &l, "%s requires at least one argument: '%s'", kname, l.original);
		if (in->kind == PLAIT_DF_RUN && in->json && !in->n_args)
			return perr(p, &l, "RUN requires at least one argument: '%s'", l.original);
		return 0;
	case PLAIT_DF_SHELL:
		r = parse_json(p, &l, rest, in);
		if (r < 0)
			return r;
		if (r == 0 || in->n_args == 0)
			return perr(p, &l,
				    "SHELL requires a JSON array of strings: '%s': write SHELL "
				    "[\"executable\", \"parameters\"]",
				    l.original);
		return 0;
	case PLAIT_DF_COPY:
	case PLAIT_DF_ADD:
		r = parse_maybe_json_list(p, &l, rest, in);
		if (r < 0)
			return r;
		if ((r = require_args(p, &l, kname, in, 2)) < 0)
			return r;
		{
			int fd;
			bool chomp;
			const char *hrest;
			if (heredoc_marker(in->args[in->n_args - 1], &fd, &chomp, &hrest))
				return perr(p, &l,
					    "%s does not support a heredoc as the destination: '%s'",
					    kname, l.original);
		}
		return 0;
	case PLAIT_DF_VOLUME:
		r = parse_maybe_json_list(p, &l, rest, in);
		return r < 0 ? r : require_args(p, &l, kname, in, 1);
	case PLAIT_DF_EXPOSE:
		split_ws(rest, &in->args, &in->n_args);
		return require_args(p, &l, kname, in, 1);
	case PLAIT_DF_ENV:
	case PLAIT_DF_LABEL:
		return parse_name_val(p, &l, kname, rest, in);
	case PLAIT_DF_ARG:
		return parse_arg(p, &l, rest, in);
	case PLAIT_DF_USER:
	case PLAIT_DF_WORKDIR:
	case PLAIT_DF_STOPSIGNAL:
	case PLAIT_DF_MAINTAINER:
		if (!*rest)
			return perr(p, &l, "%s requires exactly one argument: '%s'", kname, l.original);
		in->args = xcalloc(2, sizeof(char *));
		in->args[0] = xstrdup(rest);
		in->n_args = 1;
		if (in->kind == PLAIT_DF_MAINTAINER)
			warn(p, line, "MAINTAINER is deprecated: use LABEL org.opencontainers.image.authors=...");
		return 0;
	case PLAIT_DF_ONBUILD:
		return parse_onbuild(p, &l, rest, in);
	case PLAIT_DF_HEALTHCHECK:
		return parse_healthcheck(p, &l, rest, in);
	default:
		return perr(p, &l, "unknown instruction '%s'", keyword);
	}
}

void plait_df_instr_release(struct plait_df_instr *in)
{
	if (!in)
		return;
	free(in->original);
	for (size_t i = 0; i < in->n_flags; i++) {
		free(in->flags[i].name);
		free(in->flags[i].value);
	}
	free(in->flags);
	free(in->rest);
	plait_strv_free(in->args);
	free(in->shell);
	for (size_t i = 0; i < in->n_kvs; i++) {
		free(in->kvs[i].key);
		free(in->kvs[i].value);
	}
	free(in->kvs);
	for (size_t i = 0; i < in->n_heredocs; i++) {
		free(in->heredocs[i].name);
		free(in->heredocs[i].content);
	}
	free(in->heredocs);
	if (in->onbuild) {
		plait_df_instr_release(in->onbuild);
		free(in->onbuild);
	}
	free(in->image);
	free(in->stage_name);
	memset(in, 0, sizeof(*in));
}

int plait_df_parse_instruction(const char *text, char escape, const char *filename, int line,
			       struct plait_df_instr *out, struct plait_error **err)
{
	struct parser p = { .file = filename ? filename : "Dockerfile",
			    .escape = escape ? escape : '\\',
			    .err = err };
	int col = 1;
	while (*text && is_space((unsigned char)*text))
		text++, col++;
	int r = parse_instr(&p, text, line, col, out);
	plait_strv_free(p.warnings);
	if (r < 0)
		plait_df_instr_release(out);
	return r;
}

/* ---- the file: lines, directives, continuations, heredoc bodies ---- */

/* The first byte that is not UTF-8 in an instruction's lines. Every value of
 * the image config (labels, env, CMD, USER, history's created_by...) is a
 * piece or an expansion of that text, and JSON takes only UTF-8: refused
 * here, before anything is built, where the line is known. */
struct bad_byte {
	int line;     /* 0: none found */
	size_t col;   /* 1-based, in bytes */
	unsigned char byte;
};

static void check_utf8(struct bad_byte *bb, const char *s, size_t n, int line, size_t col0)
{
	size_t off;
	if (bb->line || plait_utf8_valid(s, n, &off))
		return;
	bb->line = line;
	bb->col = col0 + off;
	bb->byte = (unsigned char)s[off];
}

/* "LABEL", from the instruction's first word, or "instruction". */
static int utf8_error(struct parser *p, const struct bad_byte *bb, const char *text)
{
	size_t kl = 0;
	while (text[kl] && !is_space((unsigned char)text[kl]))
		kl++;
	_cleanup_free_ char *word = xstrndup(text, kl);
	enum plait_df_kind kind = plait_df_kind_from_string(word);
	return plait_error_set(p->err, PLAIT_E_INVALID,
			       "%s:%d: %s is not valid UTF-8 (byte 0x%02x at column %zu): image configs are "
			       "JSON; write the text in UTF-8",
			       p->file, bb->line, kind ? plait_df_kind_name(kind) : "the instruction", bb->byte,
			       bb->col);
}

struct reader {
	const char *data;
	size_t len, pos;
	int line; /* number of the line last read */
};

/* The next line: [*start, *start + *n) without its newline, *n_nl with it. */
static bool read_line(struct reader *rd, const char **start, size_t *n, size_t *n_nl)
{
	if (rd->pos >= rd->len)
		return false;
	const char *s = rd->data + rd->pos;
	const char *nl = memchr(s, '\n', rd->len - rd->pos);
	size_t with = nl ? (size_t)(nl - s) + 1 : rd->len - rd->pos;
	size_t without = with;
	/* BuildKit's trimNewline: bytes.TrimRight(line, "\r\n") */
	while (without && (s[without - 1] == '\n' || s[without - 1] == '\r'))
		without--;
	rd->pos += with;
	rd->line++;
	*start = s;
	*n = without;
	*n_nl = with;
	return true;
}

struct directives {
	bool done;
	bool seen_escape, seen_syntax, seen_check;
};

/* Match ^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$ ; key and value as offsets. */
static bool match_directive(const char *s, size_t n, size_t *ks, size_t *ke, size_t *vs,
			    size_t *ve)
{
	size_t i = 0;
	if (n == 0 || s[0] != '#')
		return false;
	i++;
	while (i < n && is_space((unsigned char)s[i]))
		i++;
	*ks = i;
	if (i >= n || !isalpha((unsigned char)s[i]))
		return false;
	while (i < n && isalnum((unsigned char)s[i]))
		i++;
	*ke = i;
	while (i < n && is_space((unsigned char)s[i]))
		i++;
	if (i >= n || s[i] != '=')
		return false;
	i++;
	while (i < n && is_space((unsigned char)s[i]))
		i++;
	*vs = i;
	*ve = n;
	while (*ve > i && is_space((unsigned char)s[*ve - 1]))
		(*ve)--;
	return *ve > i;
}

static int directive_line(struct parser *p, struct directives *d, struct plait_dockerfile *df,
			  const char *s, size_t n, int line)
{
	size_t ks, ke, vs, ve;
	if (d->done)
		return 0;
	if (!match_directive(s, n, &ks, &ke, &vs, &ve)) {
		d->done = true;
		return 0;
	}
	_cleanup_free_ char *key = xstrndup(s + ks, ke - ks);
	for (char *c = key; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	_cleanup_free_ char *value = xstrndup(s + vs, ve - vs);
	struct loc l = { .file = p->file, .line = line, .col = 1 };
	bool *seen;
	if (streq(key, "escape"))
		seen = &d->seen_escape;
	else if (streq(key, "syntax"))
		seen = &d->seen_syntax;
	else if (streq(key, "check"))
		seen = &d->seen_check;
	else {
		d->done = true; /* unknown: a comment, and the end of the directives */
		return 0;
	}
	if (*seen)
		return perr(p, &l, "only one '%s' parser directive is allowed", key);
	*seen = true;
	if (streq(key, "escape")) {
		if (!streq(value, "\\") && !streq(value, "`"))
			return perr(p, &l, "invalid escape directive '%s': use '\\' or '`'", value);
		p->escape = df->escape = value[0];
	} else if (streq(key, "syntax")) {
		if (!standard_frontend(value))
			warn(p, line,
			     "'# syntax=%s' names a frontend other than docker/dockerfile: plait builds "
			     "with its own Dockerfile frontend, not that image, so what that frontend "
			     "adds or changes is not applied",
			     value);
		df->syntax = TAKE_PTR(value);
	} else {
		df->check = TAKE_PTR(value);
	}
	return 0;
}

static bool is_comment(const char *s, size_t n)
{
	while (n && is_space((unsigned char)*s))
		s++, n--;
	return n && *s == '#';
}

/* Strip a trailing escape (plus blanks after it): BuildKit's \<esc>[ \t]*$ */
static bool trim_continuation(const char *s, size_t *n, char escape)
{
	size_t e = *n;
	while (e && (s[e - 1] == ' ' || s[e - 1] == '\t'))
		e--;
	if (e && s[e - 1] == escape) {
		*n = e - 1;
		return true;
	}
	return false;
}

static int read_heredocs(struct parser *p, struct reader *rd, const char *line_text,
			 struct plait_df_instr *top)
{
	struct plait_df_instr *in = top->kind == PLAIT_DF_ONBUILD ? top->onbuild : top;
	if (!in || !can_contain_heredoc(in->kind) || !strstr(line_text, "<<"))
		return 0;
	/* BuildKit's heredocsFromLine: words of the whole line, quotes and escapes kept. */
	struct plait_expand_opts opts = {
		.escape = '\\', .raw_quotes = true, .raw_escapes = true, .skip_unset = true
	};
	_cleanup_strv_free_ char **words = NULL;
	size_t n = 0;
	if (plait_expand_words(line_text, &opts, NULL, NULL, &words, &n, NULL) < 0)
		return 0;
	size_t alloc = 0;
	for (size_t i = 0; i < n; i++) {
		struct plait_df_heredoc h = { 0 };
		if (!parse_heredoc_word(words[i], &h))
			continue;
		_cleanup_buf_ struct plait_buf content = PLAIT_BUF_INIT;
		struct bad_byte bb = { 0 };
		bool terminated = false;
		const char *s;
		size_t len, len_nl;
		while (read_line(rd, &s, &len, &len_nl)) {
			const char *t = s;
			size_t tl = len;
			if (h.chomp)
				while (tl && *t == '\t')
					t++, tl--;
			if (tl == strlen(h.name) && memcmp(t, h.name, tl) == 0) {
				terminated = true;
				break;
			}
			if (in->kind == PLAIT_DF_RUN)
				check_utf8(&bb, s, len, rd->line, 1);
			plait_buf_add(&content, s, len_nl);
		}
		top->end_line = in->end_line = rd->line;
		if (!terminated) {
			struct loc l = { .file = p->file, .line = top->line, .col = top->col };
			int r = perr(p, &l, "unterminated heredoc '%s' in '%s': end it with a line '%s'",
				     h.name, top->original, h.name);
			free(h.name);
			return r;
		}
		/* a RUN body is the command (and so history's created_by), unless
		 * it is a "#!" script run from a file */
		if (bb.line && !startswith(content.buf, "#!")) {
			free(h.name);
			return utf8_error(p, &bb, "RUN");
		}
		bb.line = 0;
		h.content = plait_buf_detach(&content, NULL);
		PLAIT_ALLOC_GROW(in->heredocs, in->n_heredocs + 1, alloc);
		in->heredocs[in->n_heredocs++] = h;
	}
	return 0;
}

static int split_stages(struct parser *p, struct plait_dockerfile *df)
{
	size_t alloc = 0;
	if (!df->n_instrs)
		return plait_error_set(p->err, PLAIT_E_INVALID,
				       "%s: no instructions: a Dockerfile needs at least a FROM", p->file);
	for (size_t i = 0; i < df->n_instrs; i++) {
		const struct plait_df_instr *in = &df->instrs[i];
		if (in->kind == PLAIT_DF_FROM) {
			if (in->stage_name) {
				for (size_t s = 0; s < df->n_stages; s++) {
					if (df->stages[s].name && streq(df->stages[s].name, in->stage_name)) {
						struct loc l = { p->file, in->line, in->col, in->original };
						return perr(p, &l,
							    "duplicate stage name '%s' in '%s': already used at line %d",
							    in->stage_name, in->original,
							    df->stages[s].from->line);
					}
				}
			}
			PLAIT_ALLOC_GROW(df->stages, df->n_stages + 1, alloc);
			df->stages[df->n_stages] = (struct plait_df_stage){
				.index = df->n_stages,
				.name = in->stage_name,
				.image = in->image,
				.platform = plait_df_flag_get(in, "platform"),
				.from = in,
				.instrs = in + 1,
			};
			df->n_stages++;
		} else if (df->n_stages) {
			df->stages[df->n_stages - 1].n_instrs++;
		} else if (in->kind == PLAIT_DF_ARG) {
			df->n_global_args++;
		} else {
			struct loc l = { p->file, in->line, in->col, in->original };
			return perr(p, &l, "'%s' comes before the first FROM: only ARG may precede FROM",
				    in->original);
		}
	}
	if (!df->n_stages)
		return plait_error_set(p->err, PLAIT_E_INVALID,
				       "%s: no FROM instruction: a Dockerfile needs at least one stage",
				       p->file);
	df->global_args = df->n_global_args ? df->instrs : NULL;
	return 0;
}

static int parse_file(struct parser *p, const char *data, size_t len, struct plait_dockerfile *df)
{
	struct reader rd = { .data = data, .len = len };
	struct directives d = { 0 };
	size_t alloc = 0;
	const char *s;
	size_t n, n_nl;

	const char *nul = memchr(data, '\0', len);
	if (nul) {
		int line = 1;
		for (const char *c = data; c < nul; c++)
			line += *c == '\n';
		struct loc l = { .file = p->file, .line = line, .col = 1 };
		return perr(p, &l, "NUL byte in the file: a Dockerfile must be text");
	}

	while (read_line(&rd, &s, &n, &n_nl)) {
		int col = 1;
		if (rd.line == 1 && n >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
			s += 3, n -= 3; /* byte order mark */
		while (n && is_space((unsigned char)*s))
			s++, n--, col++;
		int r = directive_line(p, &d, df, s, n, rd.line);
		if (r < 0)
			return r;
		if (is_comment(s, n))
			n = 0;
		int start_line = rd.line;
		bool cont = trim_continuation(s, &n, p->escape);
		if (!cont && n == 0)
			continue;

		_cleanup_buf_ struct plait_buf joined = PLAIT_BUF_INIT;
		struct bad_byte bb = { 0 };
		check_utf8(&bb, s, n, start_line, (size_t)col);
		plait_buf_add(&joined, s, n);
		bool empty_cont = false;
		while (cont) {
			/* A continuation on the last line (even followed only by
			 * comments or blank lines) ends the instruction, as
			 * BuildKit's parser has it. */
			if (!read_line(&rd, &s, &n, &n_nl))
				break;
			if (is_comment(s, n))
				continue;
			size_t k = 0;
			while (k < n && is_space((unsigned char)s[k]))
				k++;
			if (k == n) {
				empty_cont = true;
				continue;
			}
			cont = trim_continuation(s, &n, p->escape);
			check_utf8(&bb, s, n, rd.line, 1);
			plait_buf_add(&joined, s, n);
		}
		if (bb.line)
			return utf8_error(p, &bb, joined.buf);

		PLAIT_ALLOC_GROW(df->instrs, df->n_instrs + 1, alloc);
		struct plait_df_instr *in = &df->instrs[df->n_instrs];
		r = parse_instr(p, joined.buf, start_line, col, in);
		if (r < 0) {
			plait_df_instr_release(in);
			return r;
		}
		df->n_instrs++;
		in->end_line = rd.line;
		if (in->onbuild)
			in->onbuild->end_line = rd.line;
		if (empty_cont)
			warn(p, start_line, "empty continuation line in '%s': remove it", in->original);
		r = read_heredocs(p, &rd, joined.buf, in);
		if (r < 0)
			return r;
	}
	return split_stages(p, df);
}

int plait_dockerfile_parse(const char *data, size_t len, const char *filename,
			   struct plait_dockerfile *out, struct plait_error **err)
{
	memset(out, 0, sizeof(*out));
	out->filename = xstrdup(filename ? filename : "Dockerfile");
	out->escape = '\\';
	struct parser p = { .file = out->filename, .escape = '\\', .err = err };
	int r = parse_file(&p, data ? data : "", data ? len : 0, out);
	out->warnings = p.warnings;
	out->n_warnings = p.n_warnings;
	if (r < 0)
		plait_dockerfile_release(out);
	return r;
}

void plait_dockerfile_release(struct plait_dockerfile *df)
{
	if (!df)
		return;
	for (size_t i = 0; i < df->n_instrs; i++)
		plait_df_instr_release(&df->instrs[i]);
	free(df->instrs);
	free(df->stages);
	free(df->filename);
	free(df->syntax);
	free(df->check);
	plait_strv_free(df->warnings);
	memset(df, 0, sizeof(*df));
}

const struct plait_df_stage *plait_dockerfile_find_stage(const struct plait_dockerfile *df,
							 const char *name)
{
	for (size_t i = 0; i < df->n_stages; i++)
		if (df->stages[i].name && strcasecmp(df->stages[i].name, name) == 0)
			return &df->stages[i];
	if (!*name)
		return NULL;
	for (const char *c = name; *c; c++)
		if (*c < '0' || *c > '9')
			return NULL;
	errno = 0;
	unsigned long idx = strtoul(name, NULL, 10);
	if (errno || idx >= df->n_stages)
		return NULL;
	return &df->stages[idx];
}

const char *plait_df_flag_get(const struct plait_df_instr *in, const char *name)
{
	const char *v = NULL;
	for (size_t i = 0; i < in->n_flags; i++)
		if (streq(in->flags[i].name, name))
			v = in->flags[i].value;
	return v;
}

bool plait_df_flag_bool(const struct plait_df_instr *in, const char *name)
{
	const char *v = plait_df_flag_get(in, name);
	return v && streq(v, "true");
}

const struct plait_df_heredoc *plait_df_heredoc_for_arg(const struct plait_df_instr *in,
							 const char *arg)
{
	struct plait_df_heredoc h = { 0 };
	if (!parse_heredoc_word(arg, &h))
		return NULL;
	const struct plait_df_heredoc *found = NULL;
	for (size_t i = 0; i < in->n_heredocs && !found; i++)
		if (streq(in->heredocs[i].name, h.name))
			found = &in->heredocs[i];
	free(h.name);
	return found;
}

char *plait_df_heredoc_data(const struct plait_df_heredoc *h)
{
	if (!h->chomp)
		return xstrdup(h->content);
	struct plait_buf b = PLAIT_BUF_INIT;
	bool bol = true;
	for (const char *c = h->content; *c; c++) {
		if (bol && *c == '\t')
			continue;
		bol = *c == '\n';
		plait_buf_addch(&b, *c);
	}
	return plait_buf_detach(&b, NULL);
}

enum plait_df_run_form plait_df_run_script(const struct plait_df_instr *in, char **script,
					   const char **file_name)
{
	*script = NULL;
	if (file_name)
		*file_name = NULL;
	if (in->json)
		return PLAIT_DF_RUN_EXEC;
	const char *cmd = in->shell ? in->shell : "";
	if (!in->n_heredocs) {
		*script = xstrdup(cmd);
		return PLAIT_DF_RUN_SHELL;
	}
	/* A command that is only `<<EOF` (BuildKit's MustParseHeredoc of the whole
	 * command) runs the body; anything else is handed to the shell whole. */
	struct plait_df_heredoc h = { 0 };
	bool lone = parse_heredoc_word(cmd, &h);
	free(h.name);
	if (lone) {
		const struct plait_df_heredoc *doc = &in->heredocs[0];
		*script = plait_df_heredoc_data(doc);
		if (startswith(doc->content, "#!")) {
			if (file_name)
				*file_name = doc->name;
			return PLAIT_DF_RUN_FILE;
		}
		return PLAIT_DF_RUN_SHELL;
	}
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_adds(&b, cmd);
	for (size_t i = 0; i < in->n_heredocs; i++)
		plait_buf_addf(&b, "\n%s%s", in->heredocs[i].content, in->heredocs[i].name);
	*script = plait_buf_detach(&b, NULL);
	return PLAIT_DF_RUN_SHELL;
}
