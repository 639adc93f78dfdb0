/* docker-bake files (the JSON form) resolved into build targets; see bake.h.
 *
 * The file is kept as jansson values throughout resolution: an object keeps
 * its keys in insertion order and json_object_set() on an existing key keeps
 * its position, which is exactly buildx's "inherited args first, then the
 * target's own" order. Only the final step turns objects into the structs. */
#include "bake.h"
#include "utf8.h"

#include <errno.h>
#include <fnmatch.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>

#include "banned.h"

/* Large enough for any hand-written bake file, small enough to refuse a mistake. */
#define BAKE_MAX_SIZE (8u << 20)

enum { ST_NEW, ST_BUSY, ST_DONE };

struct var {
	const char *name;
	json_t *def; /* the variable's object in the file */
	char *value;
	int state;
};

/* One target as built: a plain target, or one combination of a matrix. */
struct inst {
	char *name;
	const char *base; /* its key under "target" */
	json_t *def;	  /* borrowed */
	json_t *bind;	  /* matrix key -> value (string or object), owned; NULL without matrix */
	json_t *res;	  /* the fields after inherits, owned */
	int state;
};

struct ctx {
	const char *file;
	plait_bake_getenv_fn getenv;
	void *getenv_ud;
	json_t *targets, *groups; /* borrowed, may be NULL */
	struct var *vars;
	size_t n_vars;
	struct inst *insts;
	size_t n_insts, alloc_insts;
	/* what is being resolved, for naming cycles */
	const char **stack;
	size_t n_stack, alloc_stack;
	struct plait_error **err;
};

/* Where a value came from, for messages: `target "app": tags`. */
struct where {
	const char *kind; /* "target", "group", "variable" */
	const char *name;
	const char *field; /* or NULL */
};

static int fail(struct ctx *c, const struct where *w, const char *fmt, ...) _printf_(3, 4);
static int fail(struct ctx *c, const struct where *w, const char *fmt, ...)
{
	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s: ", c->file);
	if (w && w->kind)
		plait_buf_addf(&b, "%s \"%s\": ", w->kind, w->name);
	if (w && w->field)
		plait_buf_addf(&b, "%s: ", w->field);
	va_list ap;
	va_start(ap, fmt);
	plait_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	return plait_error_set(c->err, PLAIT_E_USAGE, "%s", b.buf);
}

static void push_stack(struct ctx *c, const char *name)
{
	PLAIT_ALLOC_GROW(c->stack, c->n_stack + 1, c->alloc_stack);
	c->stack[c->n_stack++] = name;
}

/* "a -> b -> a" from the point where name entered the stack. */
static void cycle_text(struct ctx *c, const char *name, struct plait_buf *b)
{
	size_t i = c->n_stack;
	while (i > 0 && !streq(c->stack[i - 1], name))
		i--;
	for (i = i ? i - 1 : 0; i < c->n_stack; i++)
		plait_buf_addf(b, "%s -> ", c->stack[i]);
	plait_buf_adds(b, name);
}

/* Scalars as HCL turns them into strings; NULL for lists and objects. */
static char *scalar_string(json_t *v)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	switch (json_typeof(v)) {
	case JSON_STRING:
		return xstrdup(json_string_value(v));
	case JSON_INTEGER:
		plait_buf_addf(&b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return plait_buf_detach(&b, NULL);
	case JSON_REAL:
		plait_buf_addf(&b, "%.17g", json_real_value(v));
		return plait_buf_detach(&b, NULL);
	case JSON_TRUE:
		return xstrdup("true");
	case JSON_FALSE:
		return xstrdup("false");
	case JSON_NULL:
		return xstrdup("");
	default:
		return NULL;
	}
}

static bool is_name_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '_' || ch == '-';
}

/* buildx accepts target and group names of [a-zA-Z0-9_-]+ only. */
static bool valid_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!is_name_char(*s))
			return false;
	return true;
}

static int interpolate(struct ctx *c, const char *s, json_t *bind, const struct where *w,
		       char **out);

static struct var *find_var(struct ctx *c, const char *name)
{
	for (size_t i = 0; i < c->n_vars; i++)
		if (streq(c->vars[i].name, name))
			return &c->vars[i];
	return NULL;
}

static int resolve_var(struct ctx *c, struct var *v, const char **value)
{
	struct where w = {"variable", v->name, "default"};
	if (v->state == ST_DONE) {
		*value = v->value;
		return 0;
	}
	if (v->state == ST_BUSY) {
		_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
		cycle_text(c, v->name, &b);
		return fail(c, &w, "variables refer to each other: %s", b.buf);
	}
	const char *env = c->getenv ? c->getenv(v->name, c->getenv_ud) : getenv(v->name);
	size_t bad;
	if (env && !plait_utf8_valid(env, strlen(env), &bad)) {
		struct where from_env = {"variable", v->name, NULL};
		return fail(c, &from_env,
			    "$%s in the environment is not valid UTF-8 (byte 0x%02x at column %zu): bake "
			    "values end up in JSON; set it to UTF-8 text",
			    v->name, (unsigned char)env[bad], bad + 1);
	}
	if (env) {
		v->value = xstrdup(env);
	} else {
		json_t *d = json_object_get(v->def, "default");
		_cleanup_free_ char *raw = d ? scalar_string(d) : xstrdup("");
		if (!raw)
			return fail(c, &w, "expected a string, number or boolean");
		v->state = ST_BUSY;
		push_stack(c, v->name);
		int r = interpolate(c, raw, NULL, &w, &v->value);
		c->n_stack--;
		if (r < 0)
			return r;
	}
	v->state = ST_DONE;
	*value = v->value;
	return 0;
}

/* The value of "${name}": a matrix value first, then a variable. */
static int interpolate(struct ctx *c, const char *s, json_t *bind, const struct where *w,
		       char **out);

/* A matrix value may use variables itself ({"base": "${CPU_BASE}"}), as in buildx. */
static int matrix_value(struct ctx *c, json_t *v, const struct where *w, char **out)
{
	_cleanup_free_ char *raw = scalar_string(v);
	return interpolate(c, raw, NULL, w, out);
}

static int lookup(struct ctx *c, const char *name, json_t *bind, const struct where *w, char **out)
{
	if (bind) {
		const char *dot = strchr(name, '.');
		_cleanup_free_ char *key = dot ? xstrndup(name, dot - name) : xstrdup(name);
		json_t *v = json_object_get(bind, key);
		if (v && dot) {
			json_t *f = json_is_object(v) ? json_object_get(v, dot + 1) : NULL;
			if (f)
				return matrix_value(c, f, w, out);
		} else if (v) {
			if (json_is_object(v))
				return fail(
				    c, w,
				    "matrix value \"${%s}\" is an object: use \"${%s.FIELD}\"",
				    name, name);
			return matrix_value(c, v, w, out);
		}
	}
	struct var *var = find_var(c, name);
	if (!var)
		return fail(c, w, "unknown variable \"${%s}\"", name);
	const char *value = NULL;
	int r = resolve_var(c, var, &value);
	if (r < 0)
		return r;
	*out = xstrdup(value);
	return 0;
}

/* "${NAME}" and "${key.field}" replaced, "$$" made "$"; other '$' are literal. */
static int interpolate(struct ctx *c, const char *s, json_t *bind, const struct where *w,
		       char **out)
{
	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	for (const char *p = s; *p;) {
		if (p[0] != '$' || (p[1] != '$' && p[1] != '{')) {
			plait_buf_addch(&b, *p++);
			continue;
		}
		if (p[1] == '$') {
			plait_buf_addch(&b, '$');
			p += 2;
			continue;
		}
		const char *end = strchr(p + 2, '}');
		if (!end)
			return fail(
			    c, w, "unterminated \"${\" in '%s': close it with '}' or write \"$${\"",
			    s);
		const char *a = p + 2, *z = end;
		while (a < z && (*a == ' ' || *a == '\t'))
			a++;
		while (z > a && (z[-1] == ' ' || z[-1] == '\t'))
			z--;
		_cleanup_free_ char *name = xstrndup(a, z - a);
		bool ok = *name != '\0';
		for (const char *q = name; *q; q++)
			if (!is_name_char(*q) && *q != '.')
				ok = false;
		if (!ok)
			return fail(
			    c, w,
			    "unsupported expression \"${%s}\": only variable names are supported",
			    name);
		_cleanup_free_ char *value = NULL;
		int r = lookup(c, name, bind, w, &value);
		if (r < 0)
			return r;
		plait_buf_adds(&b, value);
		p = end + 1;
	}
	*out = plait_buf_detach(&b, NULL);
	return 0;
}

/* A string value interpolated into a new JSON string. */
static int interp_json(struct ctx *c, json_t *v, json_t *bind, const struct where *w, json_t **out)
{
	_cleanup_free_ char *raw = scalar_string(v);
	if (!raw || json_is_null(v))
		return fail(c, w, "expected a string");
	_cleanup_free_ char *s = NULL;
	int r = interpolate(c, raw, bind, w, &s);
	if (r < 0)
		return r;
	*out = json_string(s);
	return 0;
}

/* Fields of a target, with how they are written and merged. */
enum ftype { F_STRING, F_LIST, F_MAP, F_BOOL };
static const struct field {
	const char *name;
	enum ftype type;
} fields[] = {
    {"context", F_STRING}, {"dockerfile", F_STRING}, {"target", F_STRING}, {"platforms", F_LIST},
    {"tags", F_LIST},	   {"annotations", F_LIST},  {"output", F_LIST},   {"args", F_MAP},
    {"labels", F_MAP},	   {"no-cache", F_BOOL},     {"cache-from", F_LIST}, {"cache-to", F_LIST},
    {"attest", F_LIST},
};

/* buildx fields that plait does not implement: refused rather than silently dropped. */
static const char *const unsupported_fields[] = {
    "call",
    "contexts",	    "dockerfile-inline",
    "entitlements", "extra-hosts",
    "network",	    "no-cache-filter",
    "pull",	    "secret",
    "shm-size",	    "ssh",
    "ulimits",
};

static const struct field *find_field(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
		if (streq(fields[i].name, name))
			return &fields[i];
	return NULL;
}

static bool in_list(const char *const *list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (streq(list[i], s))
			return true;
	return false;
}

static int parse_bool(const char *s, bool *out)
{
	if (streq(s, "true") || streq(s, "1")) {
		*out = true;
		return 0;
	}
	if (streq(s, "false") || streq(s, "0") || streq(s, "")) {
		*out = false;
		return 0;
	}
	return -1;
}

/* One field of a target definition, interpolated and normalised. */
static int eval_field(struct ctx *c, const struct field *f, json_t *v, json_t *bind,
		      const struct where *w, json_t **out)
{
	json_auto_t *res = NULL;
	size_t i;
	const char *k;
	json_t *e;
	int r;

	switch (f->type) {
	case F_STRING:
		return interp_json(c, v, bind, w, out);
	case F_LIST:
		if (!json_is_array(v))
			return fail(c, w, "expected a list of strings");
		res = json_array();
		json_array_foreach(v, i, e)
		{
			json_t *s;
			if (!json_is_string(e))
				return fail(c, w, "expected a list of strings");
			r = interp_json(c, e, bind, w, &s);
			if (r < 0)
				return r;
			json_array_append_new(res, s);
		}
		break;
	case F_MAP:
		if (!json_is_object(v))
			return fail(c, w, "expected an object of names to strings");
		res = json_object();
		json_object_foreach(v, k, e)
		{
			_cleanup_buf_ struct plait_buf fw = PLAIT_BUF_INIT;
			plait_buf_addf(&fw, "%s.%s", f->name, k);
			struct where w2 = {w->kind, w->name, fw.buf};
			json_t *s;
			if (json_is_null(e)) {
				/* null unsets an inherited value */
				json_object_set_new(res, k, json_null());
				continue;
			}
			if (json_is_array(e) || json_is_object(e))
				return fail(c, &w2, "expected a string");
			r = interp_json(c, e, bind, &w2, &s);
			if (r < 0)
				return r;
			json_object_set_new(res, k, s);
		}
		break;
	case F_BOOL:
		if (json_is_boolean(v)) {
			res = json_incref(v);
		} else if (json_is_string(v)) {
			_cleanup_free_ char *s = NULL;
			bool b;
			r = interpolate(c, json_string_value(v), bind, w, &s);
			if (r < 0)
				return r;
			if (parse_bool(s, &b) < 0)
				return fail(c, w, "expected true or false, not '%s'", s);
			res = json_boolean(b);
		} else {
			return fail(c, w, "expected true or false");
		}
		break;
	}
	*out = TAKE_PTR(res);
	return 0;
}

/* Put field value v (owned) into res: maps merge key by key, the rest replace. */
static void merge_field(json_t *res, const char *name, json_t *v)
{
	const struct field *f = find_field(name);
	json_t *old = json_object_get(res, name);
	if (f && f->type == F_MAP && json_is_object(old)) {
		const char *k;
		json_t *e;
		json_object_foreach(v, k, e)
		{
			if (json_is_null(e))
				json_object_del(old, k);
			else
				json_object_set(old, k, e);
		}
		json_decref(v);
		return;
	}
	if (f && f->type == F_MAP) {
		/* a fresh map: nulls have nothing to unset */
		const char *k;
		json_t *e;
		void *tmp;
		json_object_foreach_safe(v, tmp, k, e) if (json_is_null(e)) json_object_del(v, k);
	}
	json_object_set_new(res, name, v);
}

static struct inst *find_inst(struct ctx *c, const char *name)
{
	for (size_t i = 0; i < c->n_insts; i++)
		if (streq(c->insts[i].name, name))
			return &c->insts[i];
	return NULL;
}

static size_t count_base(struct ctx *c, const char *base)
{
	size_t n = 0;
	for (size_t i = 0; i < c->n_insts; i++)
		if (streq(c->insts[i].base, base))
			n++;
	return n;
}

static int resolve_inst(struct ctx *c, struct inst *in)
{
	struct where w = {"target", in->base, NULL};
	json_t *inh, *v;
	const char *k;
	size_t i;
	int r;

	if (in->state == ST_DONE)
		return 0;
	if (in->state == ST_BUSY) {
		_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
		cycle_text(c, in->name, &b);
		w.field = "inherits";
		return fail(c, &w, "targets inherit from each other: %s", b.buf);
	}
	in->state = ST_BUSY;
	push_stack(c, in->name);
	in->res = json_object();

	inh = json_object_get(in->def, "inherits");
	if (inh) {
		w.field = "inherits";
		if (!json_is_array(inh))
			return fail(c, &w, "expected a list of target names");
		json_array_foreach(inh, i, v)
		{
			_cleanup_free_ char *pname = NULL;
			if (!json_is_string(v))
				return fail(c, &w, "expected a list of target names");
			r = interpolate(c, json_string_value(v), in->bind, &w, &pname);
			if (r < 0)
				return r;
			struct inst *p = find_inst(c, pname);
			if (!p && count_base(c, pname) > 0)
				return fail(c, &w,
					    "'%s' is a matrix target: inherit from one of the "
					    "names it makes",
					    pname);
			if (!p)
				return fail(c, &w, "unknown target '%s'", pname);
			if (p->state == ST_BUSY) {
				/* named here, where the reference that closes the cycle is written
				 */
				_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
				cycle_text(c, p->name, &b);
				return fail(c, &w, "targets inherit from each other: %s", b.buf);
			}
			r = resolve_inst(c, p);
			if (r < 0)
				return r;
			json_object_foreach(p->res, k, v)
			    merge_field(in->res, k, json_deep_copy(v));
		}
	}

	json_object_foreach(in->def, k, v)
	{
		const struct field *f = find_field(k);
		json_t *val;
		w.field = k;
		if (streq(k, "inherits") || streq(k, "matrix") || streq(k, "name") ||
		    streq(k, "description"))
			continue;
		if (!f && in_list(unsupported_fields, ARRAY_SIZE(unsupported_fields), k))
			return fail(c, &w, "not supported by plait: remove it");
		if (!f)
			return fail(c, &w, "unknown field");
		r = eval_field(c, f, v, in->bind, &w, &val);
		if (r < 0)
			return r;
		merge_field(in->res, k, val);
	}
	c->n_stack--;
	in->state = ST_DONE;
	return 0;
}

static void add_inst(struct ctx *c, char *name, const char *base, json_t *def, json_t *bind)
{
	PLAIT_ALLOC_GROW(c->insts, c->n_insts + 1, c->alloc_insts);
	c->insts[c->n_insts++] =
	    (struct inst){.name = name, .base = base, .def = def, .bind = bind};
}

/* One target per combination of the matrix, first key varying slowest. */
static int expand_matrix(struct ctx *c, const char *base, json_t *def, json_t *matrix)
{
	struct where w = {"target", base, "matrix"};
	json_t *name_tpl = json_object_get(def, "name");
	size_t nkeys = json_object_size(matrix), i;
	const char *k;
	json_t *v;
	int r;

	if (!json_is_object(matrix))
		return fail(c, &w, "expected an object of names to lists of values");
	if (!name_tpl) {
		w.field = NULL;
		return fail(c, &w,
			    "a matrix needs \"name\" to tell its targets apart (e.g. \"%s-${%s}\")",
			    base, nkeys ? json_object_iter_key(json_object_iter(matrix)) : "KEY");
	}
	if (!json_is_string(name_tpl)) {
		w.field = "name";
		return fail(c, &w, "expected a string");
	}
	const char **keys = xcalloc(nkeys + 1, sizeof(*keys));
	json_t **vals = xcalloc(nkeys + 1, sizeof(*vals));
	size_t *idx = xcalloc(nkeys + 1, sizeof(*idx));
	i = 0;
	r = 0;
	json_object_foreach(matrix, k, v)
	{
		size_t j;
		json_t *e;
		if (!json_is_array(v) || json_array_size(v) == 0) {
			r = fail(c, &w, "'%s': expected a non-empty list of values", k);
			goto out;
		}
		json_array_foreach(v, j, e)
		{
			const char *fk;
			json_t *fv;
			if (json_is_object(e)) {
				json_object_foreach(e, fk,
						    fv) if (json_is_array(fv) || json_is_object(fv))
				{
					r = fail(c, &w, "'%s.%s': expected a string", k, fk);
					goto out;
				}
			} else if (json_is_array(e) || json_is_null(e)) {
				r = fail(c, &w, "'%s': expected strings or objects of strings", k);
				goto out;
			}
		}
		keys[i] = k;
		vals[i] = v;
		i++;
	}
	size_t first = c->n_insts;
	for (;;) {
		json_t *bind = json_object();
		for (i = 0; i < nkeys; i++)
			json_object_set(bind, keys[i], json_array_get(vals[i], idx[i]));
		struct where wn = {"target", base, "name"};
		char *name = NULL;
		r = interpolate(c, json_string_value(name_tpl), bind, &wn, &name);
		if (r < 0) {
			json_decref(bind);
			goto out;
		}
		add_inst(c, name, base, def, bind);
		if (!valid_name(name)) {
			r = fail(
			    c, &wn,
			    "'%s' is not a valid target name: use letters, digits, '_' and '-'",
			    name);
			goto out;
		}
		for (size_t j = first; j + 1 < c->n_insts; j++)
			if (streq(c->insts[j].name, name)) {
				r = fail(
				    c, &wn,
				    "the matrix makes '%s' twice: use every matrix key in \"name\"",
				    name);
				goto out;
			}
		/* odometer: the last key turns fastest */
		for (i = nkeys; i > 0; i--) {
			if (++idx[i - 1] < json_array_size(vals[i - 1]))
				break;
			idx[i - 1] = 0;
		}
		if (i == 0)
			break;
	}
out:
	free(keys);
	free(vals);
	free(idx);
	return r;
}

static int load_targets(struct ctx *c)
{
	const char *k;
	json_t *def;
	int r;

	if (!c->targets)
		return 0;
	if (!json_is_object(c->targets))
		return fail(c, NULL, "\"target\": expected an object of target names");
	json_object_foreach(c->targets, k, def)
	{
		struct where w = {"target", k, NULL};
		if (!valid_name(k))
			return fail(c, &w,
				    "not a valid target name: use letters, digits, '_' and '-'");
		if (!json_is_object(def))
			return fail(c, &w, "expected an object");
		json_t *m = json_object_get(def, "matrix");
		if (m) {
			r = expand_matrix(c, k, def, m);
			if (r < 0)
				return r;
			continue;
		}
		if (json_object_get(def, "name")) {
			w.field = "name";
			return fail(c, &w, "only valid with \"matrix\": remove it or add a matrix");
		}
		add_inst(c, xstrdup(k), k, def, NULL);
	}
	/* a matrix name must not take another target's name */
	for (size_t i = 0; i < c->n_insts; i++)
		for (size_t j = i + 1; j < c->n_insts; j++)
			if (streq(c->insts[i].name, c->insts[j].name)) {
				struct where w = {"target", c->insts[j].base, "name"};
				return fail(c, &w, "'%s' is already the name of a target in \"%s\"",
					    c->insts[j].name, c->insts[i].base);
			}
	return 0;
}

static int load_vars(struct ctx *c, json_t *vars)
{
	static const char *const known[] = {"default", "description"};
	static const char *const unsupported[] = {"type", "validation"};
	const char *k, *fk;
	json_t *v, *fv;

	if (!vars)
		return 0;
	if (!json_is_object(vars))
		return fail(c, NULL, "\"variable\": expected an object of variable names");
	c->vars = xcalloc(json_object_size(vars) + 1, sizeof(*c->vars));
	json_object_foreach(vars, k, v)
	{
		struct where w = {"variable", k, NULL};
		if (!json_is_object(v))
			return fail(c, &w, "expected an object such as {\"default\": \"value\"}");
		json_object_foreach(v, fk, fv)
		{
			w.field = fk;
			if (in_list(unsupported, ARRAY_SIZE(unsupported), fk))
				return fail(c, &w, "not supported by plait: remove it");
			if (!in_list(known, ARRAY_SIZE(known), fk))
				return fail(c, &w, "unknown field");
		}
		c->vars[c->n_vars++] = (struct var){.name = k, .def = v};
	}
	return 0;
}

struct names {
	struct inst **v;
	size_t n, alloc;
};

static void add_selected(struct names *sel, struct inst *in)
{
	for (size_t i = 0; i < sel->n; i++)
		if (sel->v[i] == in)
			return;
	PLAIT_ALLOC_GROW(sel->v, sel->n + 1, sel->alloc);
	sel->v[sel->n++] = in;
}

static int unknown_name(struct ctx *c, const char *name, const struct where *w)
{
	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	const char *k;
	json_t *v;
	size_t n = 0;
	json_object_foreach(c->targets, k, v)
	{
		plait_buf_addf(&b, "%s%s", n++ ? ", " : "", k);
	}
	if (!n)
		plait_buf_adds(&b, "none");
	plait_buf_adds(&b, "; groups: ");
	n = 0;
	json_object_foreach(c->groups, k, v)
	{
		plait_buf_addf(&b, "%s%s", n++ ? ", " : "", k);
	}
	if (!n)
		plait_buf_adds(&b, "none");
	return fail(c, w, "unknown target or group '%s': the file has targets: %s", name, b.buf);
}

static int select_name(struct ctx *c, const char *name, struct names *sel,
		       const struct where *from);

static int select_group(struct ctx *c, const char *name, json_t *g, struct names *sel)
{
	struct where w = {"group", name, NULL};
	json_t *targets, *e;
	size_t i;
	int r;

	if (!json_is_object(g))
		return fail(c, &w, "expected an object such as {\"targets\": [\"app\"]}");
	const char *fk;
	json_object_foreach(g, fk, e)
	{
		w.field = fk;
		if (!streq(fk, "targets") && !streq(fk, "description"))
			return fail(c, &w, "unknown field");
	}
	w.field = "targets";
	targets = json_object_get(g, "targets");
	if (!targets)
		return 0;
	if (!json_is_array(targets))
		return fail(c, &w, "expected a list of target names");
	push_stack(c, name);
	json_array_foreach(targets, i, e)
	{
		_cleanup_free_ char *t = NULL;
		if (!json_is_string(e))
			return fail(c, &w, "expected a list of target names");
		r = interpolate(c, json_string_value(e), NULL, &w, &t);
		if (r < 0)
			return r;
		r = select_name(c, t, sel, &w);
		if (r < 0)
			return r;
	}
	c->n_stack--;
	return 0;
}

/* A group (recursively), a target or a matrix target's base name (all of it). */
static int select_name(struct ctx *c, const char *name, struct names *sel, const struct where *from)
{
	json_t *g = json_object_get(c->groups, name);
	bool found = false;

	/* group "app" listing target "app" means the target, as in buildx */
	if (g && (find_inst(c, name) || count_base(c, name))) {
		for (size_t i = 0; i < c->n_stack; i++)
			if (streq(c->stack[i], name))
				g = NULL;
	}
	for (size_t i = 0; g && i < c->n_stack; i++)
		if (streq(c->stack[i], name)) {
			_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
			cycle_text(c, name, &b);
			return fail(c, from, "groups contain each other: %s", b.buf);
		}
	if (g)
		return select_group(c, name, g, sel);
	for (size_t i = 0; i < c->n_insts; i++)
		if (streq(c->insts[i].name, name)) {
			add_selected(sel, &c->insts[i]);
			return 0;
		}
	for (size_t i = 0; i < c->n_insts; i++)
		if (streq(c->insts[i].base, name)) {
			add_selected(sel, &c->insts[i]);
			found = true;
		}
	return found ? 0 : unknown_name(c, name, from);
}

static int select_default(struct ctx *c, struct names *sel)
{
	if (json_object_get(c->groups, "default") || find_inst(c, "default") ||
	    count_base(c, "default"))
		return select_name(c, "default", sel, NULL);
	if (json_object_size(c->targets) == 1)
		return select_name(c, json_object_iter_key(json_object_iter(c->targets)), sel,
				   NULL);
	if (json_object_size(c->targets) == 0)
		return fail(c, NULL, "no targets defined");
	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	const char *k;
	json_t *v;
	json_object_foreach(c->targets, k, v)
	{
		plait_buf_addf(&b, "%s%s", b.len ? ", " : "", k);
	}
	return fail(c, NULL, "no target named and no \"default\" group: name one of: %s", b.buf);
}

/* tags and platforms split on ','; an output or annotation is one value that may hold
 * commas ("type=oci,dest=out"), as in buildx's `--set '*.output=type=docker'`. */
static const char *const set_list_keys[] = {"tags", "platform", "platforms", "output",
					    "annotations", "cache-from", "cache-to", "attest"};
static const char *const set_split_keys[] = {"tags", "platforms"};
static const char *const set_string_keys[] = {"context", "dockerfile", "target"};

static json_t *split_list(const char *s)
{
	json_t *a = json_array();
	while (true) {
		const char *comma = strchr(s, ',');
		size_t n = comma ? (size_t)(comma - s) : strlen(s);
		if (n)
			json_array_append_new(a, json_stringn(s, n));
		if (!comma)
			break;
		s = comma + 1;
	}
	return a;
}

/* Apply one "--set PATTERN.KEY=VALUE" to the selected targets it matches. */
static int apply_set(struct ctx *c, const char *set, struct names *sel)
{
	const char *eq = strchr(set, '=');
	const char *dot = strchr(set, '.');
	size_t bad;
	if (!plait_utf8_valid(set, strlen(set), &bad))
		return fail(c, NULL,
			    "--set '%.*s...' is not valid UTF-8 (byte 0x%02x at column %zu): bake values "
			    "end up in JSON; pass the text in UTF-8",
			    (int)bad, set, (unsigned char)set[bad], bad + 1);
	if (!eq || !dot || dot > eq || dot == set)
		return fail(c, NULL,
			    "invalid --set '%s': expected TARGET.KEY=VALUE (e.g. '*.tags=r/app:1')",
			    set);
	_cleanup_free_ char *pat = xstrndup(set, dot - set);
	_cleanup_free_ char *key = xstrndup(dot + 1, eq - dot - 1);
	const char *value = eq + 1;
	const char *sub = NULL; /* NAME of args.NAME / labels.NAME */
	const char *field = key;

	if (startswith(key, "args.") || startswith(key, "labels.")) {
		char *d = strchr(key, '.');
		*d = '\0';
		sub = d + 1;
		if (!*sub)
			return fail(c, NULL,
				    "invalid --set '%s': name the %s, e.g. '%s.%s.NAME=VALUE'", set,
				    key, pat, key);
	} else if (in_list(set_list_keys, ARRAY_SIZE(set_list_keys), key)) {
		if (streq(key, "platform"))
			field = "platforms";
	} else if (streq(key, "no-cache")) {
		bool b;
		if (parse_bool(value, &b) < 0)
			return fail(c, NULL, "invalid --set '%s': no-cache takes true or false",
				    set);
	} else if (!in_list(set_string_keys, ARRAY_SIZE(set_string_keys), key)) {
		return fail(c, NULL,
			    "invalid --set '%s': unknown key '%s': use context, dockerfile, "
			    "target, args.NAME, "
			    "labels.NAME, tags, platform, output, annotations, cache-from, cache-to or no-cache",
			    set, key);
	}

	bool matched = false;
	for (size_t i = 0; i < c->n_insts; i++)
		if (!fnmatch(pat, c->insts[i].name, 0) || !fnmatch(pat, c->insts[i].base, 0))
			matched = true;
	if (!matched)
		return fail(c, NULL, "invalid --set '%s': no target matches '%s'", set, pat);

	for (size_t i = 0; i < sel->n; i++) {
		struct inst *in = sel->v[i];
		if (fnmatch(pat, in->name, 0) && fnmatch(pat, in->base, 0))
			continue;
		if (sub) {
			json_t *m = json_object_get(in->res, field);
			if (!json_is_object(m)) {
				m = json_object();
				json_object_set_new(in->res, field, m);
			}
			json_object_set_new(m, sub, json_string(value));
		} else if (streq(field, "no-cache")) {
			bool b = false;
			parse_bool(value, &b);
			json_object_set_new(in->res, field, json_boolean(b));
		} else if (in_list(set_split_keys, ARRAY_SIZE(set_split_keys), field)) {
			json_object_set_new(in->res, field, split_list(value));
		} else if (in_list(set_list_keys, ARRAY_SIZE(set_list_keys), field)) {
			json_object_set_new(in->res, field, json_pack("[s]", value));
		} else {
			json_object_set_new(in->res, field, json_string(value));
		}
	}
	return 0;
}

static char **list_to_strv(json_t *a)
{
	char **v;
	size_t i;
	json_t *e;
	if (!json_is_array(a))
		return NULL;
	v = xcalloc(json_array_size(a) + 1, sizeof(*v));
	json_array_foreach(a, i, e) v[i] = xstrdup(json_string_value(e));
	return v;
}

static char **map_to_strv(json_t *m)
{
	char **v;
	size_t i = 0;
	const char *k;
	json_t *e;
	if (!json_is_object(m))
		return NULL;
	v = xcalloc(json_object_size(m) + 1, sizeof(*v));
	json_object_foreach(m, k, e)
	{
		struct plait_buf b = PLAIT_BUF_INIT;
		plait_buf_addf(&b, "%s=%s", k, json_string_value(e));
		v[i++] = plait_buf_detach(&b, NULL);
	}
	return v;
}

static bool is_remote_context(const char *ctx)
{
	return strstr(ctx, "://") || startswith(ctx, "git@") || startswith(ctx, "target:");
}

/* buildx reads a relative dockerfile from the context: make it a path from here. */
static char *join_dockerfile(const char *context, const char *dockerfile)
{
	if (!dockerfile)
		dockerfile = "Dockerfile";
	if (dockerfile[0] == '/' || is_remote_context(context))
		return xstrdup(dockerfile);
	while (startswith(dockerfile, "./"))
		dockerfile += 2;
	if (!*context || streq(context, ".") || streq(context, "./")) /* "" is the current directory too */
		return xstrdup(dockerfile);
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_adds(&b, context);
	while (b.len > 1 && b.buf[b.len - 1] == '/')
		plait_buf_setlen(&b, b.len - 1);
	if (b.buf[b.len - 1] != '/')
		plait_buf_addch(&b, '/');
	plait_buf_adds(&b, dockerfile);
	return plait_buf_detach(&b, NULL);
}

static void fill_target(struct plait_bake_target *t, struct inst *in)
{
	json_t *r = in->res;
	const char *ctx = json_string_value(json_object_get(r, "context"));
	t->name = xstrdup(in->name);
	t->context = xstrdup(ctx ? ctx : ".");
	t->dockerfile =
	    join_dockerfile(t->context, json_string_value(json_object_get(r, "dockerfile")));
	t->target = xstrdup_or_null(json_string_value(json_object_get(r, "target")));
	t->platforms = list_to_strv(json_object_get(r, "platforms"));
	t->tags = list_to_strv(json_object_get(r, "tags"));
	t->annotations = list_to_strv(json_object_get(r, "annotations"));
	t->outputs = list_to_strv(json_object_get(r, "output"));
	t->cache_from = list_to_strv(json_object_get(r, "cache-from"));
	t->cache_to = list_to_strv(json_object_get(r, "cache-to"));
	t->attest = list_to_strv(json_object_get(r, "attest"));
	t->args = map_to_strv(json_object_get(r, "args"));
	t->labels = map_to_strv(json_object_get(r, "labels"));
	t->no_cache = json_is_true(json_object_get(r, "no-cache"));
}

static void ctx_release(struct ctx *c)
{
	for (size_t i = 0; i < c->n_vars; i++)
		free(c->vars[i].value);
	free(c->vars);
	for (size_t i = 0; i < c->n_insts; i++) {
		free(c->insts[i].name);
		json_decref(c->insts[i].bind);
		json_decref(c->insts[i].res);
	}
	free(c->insts);
	free(c->stack);
}

static int resolve(struct ctx *c, json_t *root, const struct plait_bake_opts *o,
		   struct plait_bake *out)
{
	static const char *const top_keys[] = {"variable", "group", "target"};
	struct names sel = {0};
	const char *k;
	json_t *v;
	int r;

	if (!json_is_object(root))
		return fail(c, NULL,
			    "expected a JSON object with \"target\", \"group\" and \"variable\"");
	json_object_foreach(root, k, v)
	{
		if (streq(k, "function"))
			return fail(c, NULL, "\"function\": not supported by plait: remove it");
		if (!in_list(top_keys, ARRAY_SIZE(top_keys), k))
			return fail(
			    c, NULL,
			    "unknown top-level key '%s': use \"target\", \"group\" or \"variable\"",
			    k);
	}
	c->targets = json_object_get(root, "target");
	c->groups = json_object_get(root, "group");
	if (c->groups && !json_is_object(c->groups))
		return fail(c, NULL, "\"group\": expected an object of group names");
	r = load_vars(c, json_object_get(root, "variable"));
	if (r >= 0)
		r = load_targets(c);
	if (r < 0)
		return r;

	if (o && o->names && o->names[0]) {
		for (size_t i = 0; o->names[i] && r >= 0; i++)
			r = select_name(c, o->names[i], &sel, NULL);
	} else {
		r = select_default(c, &sel);
	}
	/* every target is resolved so that errors do not depend on what was asked */
	for (size_t i = 0; i < c->n_insts && r >= 0; i++)
		r = resolve_inst(c, &c->insts[i]);
	for (size_t i = 0; o && o->sets && o->sets[i] && r >= 0; i++)
		r = apply_set(c, o->sets[i], &sel);
	if (r >= 0) {
		out->targets = xcalloc(sel.n + 1, sizeof(*out->targets));
		out->n_targets = sel.n;
		for (size_t i = 0; i < sel.n; i++)
			fill_target(&out->targets[i], sel.v[i]);
	}
	free(sel.v);
	return r;
}

int plait_bake_parse(const char *text, size_t len, const char *file_name,
		     const struct plait_bake_opts *o, struct plait_bake *out,
		     struct plait_error **err)
{
	struct ctx c = {
	    .file = file_name ? file_name : "docker-bake.json",
	    .getenv = o ? o->getenv : NULL,
	    .getenv_ud = o ? o->getenv_ud : NULL,
	    .err = err,
	};
	json_error_t jerr;
	int r;

	*out = (struct plait_bake){0};
	json_auto_t *root = json_loadb(text ? text : "", len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		bool hcl = endswith(c.file, ".hcl");
		return plait_error_set(err, PLAIT_E_USAGE, "%s:%d:%d: invalid JSON: %s%s", c.file,
				       jerr.line, jerr.column, jerr.text,
				       hcl ? " (plait reads the JSON form of bake files only)"
					   : "");
	}
	r = resolve(&c, root, o, out);
	ctx_release(&c);
	if (r < 0)
		plait_bake_release(out);
	return r;
}

/* Merge bake file src into dst, as buildx merges several -f files: a later
 * file wins per field; a target's object fields (args, labels, ...) are
 * merged per key, a group's targets are joined (each once), a variable's
 * fields replaced. */
static void merge_root(json_t *dst, json_t *src)
{
	const char *sect;
	json_t *sv;
	json_object_foreach(src, sect, sv)
	{
		json_t *dv = json_object_get(dst, sect);
		if (!json_is_object(sv) || !json_is_object(dv)) {
			json_object_set(dst, sect, sv); /* the resolver reports a bad shape */
			continue;
		}
		const char *name;
		json_t *item;
		json_object_foreach(sv, name, item)
		{
			json_t *old = json_object_get(dv, name);
			if (!json_is_object(item) || !json_is_object(old)) {
				json_object_set(dv, name, item);
				continue;
			}
			const char *f;
			json_t *fv;
			json_object_foreach(item, f, fv)
			{
				json_t *ov = json_object_get(old, f);
				if (streq(sect, "target") && json_is_object(fv) && json_is_object(ov)) {
					json_object_update(ov, fv);
				} else if (streq(sect, "group") && streq(f, "targets") && json_is_array(fv) &&
					   json_is_array(ov)) {
					size_t i, k;
					json_t *e, *e2;
					json_array_foreach(fv, i, e)
					{
						bool have = false;
						json_array_foreach(ov, k, e2) have = have || json_equal(e, e2);
						if (!have)
							json_array_append(ov, e);
					}
				} else {
					json_object_set(old, f, fv);
				}
			}
		}
	}
}

int plait_bake_load_files(const char *const *paths, const struct plait_bake_opts *o,
			  struct plait_bake *out, struct plait_error **err)
{
	*out = (struct plait_bake){0};
	if (!paths || !paths[0])
		return plait_error_set(err, PLAIT_E_USAGE, "no bake file given");
	if (!paths[1])
		return plait_bake_load(paths[0], o, out, err);
	json_auto_t *root = NULL;
	struct plait_buf names = PLAIT_BUF_INIT;
	int r = 0;
	for (size_t i = 0; paths[i] && r >= 0; i++) {
		_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
		r = plait_buf_read_file(&b, paths[i], BAKE_MAX_SIZE);
		if (r < 0) {
			r = plait_error_set_errno(err, PLAIT_E_USAGE, r, "read bake file '%s'", paths[i]);
			break;
		}
		json_error_t jerr;
		json_t *one = json_loadb(b.buf, b.len, JSON_REJECT_DUPLICATES, &jerr);
		if (!one) {
			r = plait_error_set(err, PLAIT_E_USAGE, "%s:%d:%d: invalid JSON: %s%s", paths[i],
					    jerr.line, jerr.column, jerr.text,
					    endswith(paths[i], ".hcl")
						? " (plait reads the JSON form of bake files only)"
						: "");
			break;
		}
		if (!json_is_object(one)) {
			json_decref(one);
			r = plait_error_set(err, PLAIT_E_USAGE,
					    "%s: expected a JSON object with \"target\", \"group\" and \"variable\"",
					    paths[i]);
			break;
		}
		plait_buf_addf(&names, "%s%s", i ? "+" : "", paths[i]);
		if (!root)
			root = one;
		else {
			merge_root(root, one);
			json_decref(one);
		}
	}
	if (r >= 0) {
		struct ctx c = {
		    .file = names.buf,
		    .getenv = o ? o->getenv : NULL,
		    .getenv_ud = o ? o->getenv_ud : NULL,
		    .err = err,
		};
		r = resolve(&c, root, o, out);
		ctx_release(&c);
		if (r < 0)
			plait_bake_release(out);
	}
	plait_buf_release(&names);
	return r;
}

int plait_bake_load(const char *path, const struct plait_bake_opts *o, struct plait_bake *out,
		    struct plait_error **err)
{
	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	*out = (struct plait_bake){0};
	int r = plait_buf_read_file(&b, path, BAKE_MAX_SIZE);
	if (r == -EFBIG)
		return plait_error_set(err, PLAIT_E_USAGE,
				       "read bake file '%s': larger than %u MiB", path,
				       BAKE_MAX_SIZE >> 20);
	if (r < 0)
		return plait_error_set_errno(err, PLAIT_E_USAGE, r, "read bake file '%s'", path);
	return plait_bake_parse(b.buf, b.len, path, o, out, err);
}

static json_t *strv_json(char **v)
{
	json_t *a = json_array();
	for (; v && *v; v++)
		json_array_append_new(a, json_string(*v));
	return a;
}

static json_t *kv_json(char **v)
{
	json_t *m = json_object();
	for (; v && *v; v++) {
		const char *eq = strchr(*v, '=');
		_cleanup_free_ char *k = eq ? xstrndup(*v, eq - *v) : xstrdup(*v);
		json_object_set_new(m, k, json_string(eq ? eq + 1 : ""));
	}
	return m;
}

void plait_bake_print(const struct plait_bake *b, struct plait_buf *out)
{
	json_auto_t *root = json_object();
	json_t *names = json_array(), *targets = json_object(), *group = json_object();

	json_object_set_new(group, "targets", names);
	json_object_set_new(root, "group", json_pack("{s:o}", "default", group));
	json_object_set_new(root, "target", targets);
	for (size_t i = 0; i < b->n_targets; i++) {
		const struct plait_bake_target *t = &b->targets[i];
		json_t *o = json_object();
		json_array_append_new(names, json_string(t->name));
		json_object_set_new(o, "context", json_string(t->context));
		json_object_set_new(o, "dockerfile", json_string(t->dockerfile));
		if (t->target)
			json_object_set_new(o, "target", json_string(t->target));
		if (t->args)
			json_object_set_new(o, "args", kv_json(t->args));
		if (t->labels)
			json_object_set_new(o, "labels", kv_json(t->labels));
		if (t->platforms)
			json_object_set_new(o, "platforms", strv_json(t->platforms));
		if (t->tags)
			json_object_set_new(o, "tags", strv_json(t->tags));
		if (t->annotations)
			json_object_set_new(o, "annotations", strv_json(t->annotations));
		if (t->outputs)
			json_object_set_new(o, "output", strv_json(t->outputs));
		if (t->cache_from)
			json_object_set_new(o, "cache-from", strv_json(t->cache_from));
		if (t->cache_to)
			json_object_set_new(o, "cache-to", strv_json(t->cache_to));
		if (t->attest)
			json_object_set_new(o, "attest", strv_json(t->attest));
		if (t->no_cache)
			json_object_set_new(o, "no-cache", json_true());
		json_object_set_new(targets, t->name, o);
	}
	char *s = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (s)
		plait_buf_adds(out, s);
	plait_buf_addch(out, '\n');
	free(s);
}

void plait_bake_release(struct plait_bake *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n_targets; i++) {
		struct plait_bake_target *t = &b->targets[i];
		free(t->name);
		free(t->context);
		free(t->dockerfile);
		free(t->target);
		plait_strv_free(t->platforms);
		plait_strv_free(t->tags);
		plait_strv_free(t->args);
		plait_strv_free(t->labels);
		plait_strv_free(t->annotations);
		plait_strv_free(t->outputs);
		plait_strv_free(t->cache_from);
		plait_strv_free(t->attest);
		plait_strv_free(t->cache_to);
	}
	free(b->targets);
	*b = (struct plait_bake){0};
}
