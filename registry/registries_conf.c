/* registry/registries_conf.c - registries.conf and --registry-mirror (see
 * registries_conf.h). The TOML is read by core/toml.c; this file gives the
 * keys their meaning and decides, in one place, where a pull goes. */
#include "registries_conf.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

#include "core/buf.h"
#include "core/strv.h"
#include "core/toml.h"

#include "core/banned.h"

struct plait_registries_conf *plait_registries_conf_new(void)
{
	return xcalloc(1, sizeof(struct plait_registries_conf));
}

static void mirror_release(struct plait_conf_mirror *m)
{
	free(m->location);
	free(m->where);
}

static void registry_release(struct plait_conf_registry *r)
{
	free(r->prefix);
	free(r->location);
	free(r->where);
	for (size_t i = 0; i < r->n_mirrors; i++)
		mirror_release(&r->mirrors[i]);
	free(r->mirrors);
	memset(r, 0, sizeof(*r));
}

void plait_registries_conf_free(struct plait_registries_conf *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_regs; i++)
		registry_release(&c->regs[i]);
	free(c->regs);
	plait_strv_free(c->search);
	plait_strv_free(c->files);
	plait_strv_free(c->cli_mirrors);
	plait_strv_free(c->cli_insecure);
	free(c);
}

/* ------------------------------------------------------------------ names */

/* Length of the host part of "host[:port][/path…]". */
static size_t host_len(const char *s)
{
	return strcspn(s, "/");
}

/* Docker Hub's other names become "docker.io" in a prefix or location, so
 * that they match the references plait normalises. Caller frees. */
static char *normalise_name(const char *s)
{
	size_t n = host_len(s);
	if (!plait_docker_hub_is_alias_n(s, n))
		return xstrdup(s);
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s%s", plait_docker_hub_domain(), s + n);
	return plait_buf_detach(&b, NULL);
}

/* A prefix or location as the man page allows it: no scheme, no blanks, a host. */
static const char *name_problem(const char *s, bool wildcard_ok)
{
	if (!*s)
		return "it is empty";
	if (strstr(s, "://"))
		return "it must not have a scheme (write 'host[:port][/path]'; insecure = true allows plain HTTP)";
	if (strpbrk(s, " \t\r\n"))
		return "it must not contain blanks";
	if (host_len(s) == 0)
		return "it must start with a host";
	if (startswith(s, "*.")) {
		if (!wildcard_ok)
			return "a wildcard ('*.') is allowed only in a prefix";
		if (strpbrk(s, "/:@") || !s[2])
			return "a wildcard prefix is '*.domain' alone, without port or path";
	} else if (strchr(s, '*')) {
		return "'*' is allowed only as a leading '*.' of a prefix";
	}
	return NULL;
}

/* How many bytes of reference prefix matches, or -1. */
static long match_len(const char *prefix, const char *reference)
{
	if (startswith(prefix, "*.")) {
		size_t hn = strcspn(reference, "/:");
		size_t sn = strlen(prefix + 1); /* ".example.com" */
		if (hn <= sn || strncasecmp(reference + hn - sn, prefix + 1, sn) != 0)
			return -1;
		return (long)strlen(prefix);
	}
	size_t n = strlen(prefix);
	if (strncmp(prefix, reference, n) != 0)
		return -1;
	char next = reference[n];
	if (next == '\0' || next == '/')
		return (long)n;
	/* a tag or digest may follow a repository, never a bare host (there ':' is a port) */
	if ((next == ':' || next == '@') && strchr(prefix, '/'))
		return (long)n;
	return -1;
}

static const struct plait_conf_registry *find(const struct plait_registries_conf *c, const char *reference,
					      long *len)
{
	const struct plait_conf_registry *best = NULL;
	long best_len = -1;
	for (size_t i = 0; c && i < c->n_regs; i++) {
		long l = match_len(c->regs[i].prefix, reference);
		if (l > best_len) {
			best_len = l;
			best = &c->regs[i];
		}
	}
	if (len)
		*len = best_len;
	return best;
}

const struct plait_conf_registry *plait_registries_conf_find(const struct plait_registries_conf *c,
							     const char *reference)
{
	return find(c, reference, NULL);
}

/* ------------------------------------------------------------------ reading */

struct file_ctx {
	const char *name;
	struct plait_error **err;
};

_printf_(3, 4) static int bad(const struct file_ctx *f, const struct plait_toml_value *v, const char *fmt, ...)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s:%u:%u: ", f->name, v->line, v->col);
	va_list ap;
	va_start(ap, fmt);
	plait_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	int rc = plait_error_set(f->err, PLAIT_E_INVALID, "%s", b.buf);
	plait_buf_release(&b);
	return rc;
}

static char *where(const struct file_ctx *f, unsigned line)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s:%u", f->name, line);
	return plait_buf_detach(&b, NULL);
}

static int want(const struct file_ctx *f, const struct plait_toml_entry *e, enum plait_toml_type type)
{
	if (e->v.type == type)
		return 0;
	return bad(f, &e->v, "'%s' must be a %s, not a %s", e->key, plait_toml_type_name(type),
		   plait_toml_type_name(e->v.type));
}

static int read_mirror(const struct file_ctx *f, const struct plait_toml_table *t, bool wildcard,
		       struct plait_conf_mirror *m)
{
	const struct plait_toml_value hdr = { .line = t->line, .col = t->col };
	if (wildcard)
		return bad(f, &hdr, "[[registry.mirror]] under a wildcard prefix: mirrors need a prefix without '*.' (the "
				    "reference is not rewritten there)");
	int r;
	for (size_t i = 0; i < t->n; i++) {
		const struct plait_toml_entry *e = &t->entries[i];
		if (streq(e->key, "location")) {
			if ((r = want(f, e, PLAIT_TOML_STRING)) < 0)
				return r;
			const char *p = name_problem(e->v.str, false);
			if (p)
				return bad(f, &e->v, "mirror location '%s': %s", e->v.str, p);
			free(m->location);
			m->location = normalise_name(e->v.str);
		} else if (streq(e->key, "insecure")) {
			if ((r = want(f, e, PLAIT_TOML_BOOL)) < 0)
				return r;
			m->insecure = e->v.boolean;
		} else if (streq(e->key, "pull-from-mirror")) {
			if ((r = want(f, e, PLAIT_TOML_STRING)) < 0)
				return r;
			if (streq(e->v.str, "all") || !*e->v.str)
				m->pull_from = PLAIT_PULL_FROM_ALL;
			else if (streq(e->v.str, "digest-only"))
				m->pull_from = PLAIT_PULL_FROM_DIGEST_ONLY;
			else if (streq(e->v.str, "tag-only"))
				m->pull_from = PLAIT_PULL_FROM_TAG_ONLY;
			else
				return bad(f, &e->v, "pull-from-mirror '%s': use 'all', 'digest-only' or 'tag-only'",
					   e->v.str);
		} else {
			return bad(f, &e->v, "unknown key '%s' in [[registry.mirror]] (known: location, insecure, "
					     "pull-from-mirror)",
				   e->key);
		}
	}
	if (!m->location)
		return bad(f, &hdr, "[[registry.mirror]] needs a location");
	m->where = where(f, t->line);
	return 0;
}

static int read_registry(const struct file_ctx *f, const struct plait_toml_table *t,
			 struct plait_conf_registry *reg)
{
	const struct plait_toml_value hdr = { .line = t->line, .col = t->col };
	const struct plait_toml_value *mirrors = NULL;
	int r;
	for (size_t i = 0; i < t->n; i++) {
		const struct plait_toml_entry *e = &t->entries[i];
		if (streq(e->key, "prefix") || streq(e->key, "location")) {
			if ((r = want(f, e, PLAIT_TOML_STRING)) < 0)
				return r;
			bool is_prefix = e->key[0] == 'p';
			/* an empty location is allowed with a wildcard prefix: it means "as written" */
			if (!is_prefix && !*e->v.str)
				continue;
			const char *p = name_problem(e->v.str, is_prefix);
			if (p)
				return bad(f, &e->v, "%s '%s': %s", e->key, e->v.str, p);
			char **slot = is_prefix ? &reg->prefix : &reg->location;
			free(*slot);
			*slot = normalise_name(e->v.str);
		} else if (streq(e->key, "insecure") || streq(e->key, "blocked") ||
			   streq(e->key, "mirror-by-digest-only")) {
			if ((r = want(f, e, PLAIT_TOML_BOOL)) < 0)
				return r;
			bool *slot = e->key[0] == 'i' ? &reg->insecure : e->key[0] == 'b' ? &reg->blocked
											  : &reg->mirror_by_digest_only;
			*slot = e->v.boolean;
		} else if (streq(e->key, "mirror")) {
			if ((r = want(f, e, PLAIT_TOML_TABLES)) < 0)
				return r;
			mirrors = &e->v;
		} else {
			return bad(f, &e->v, "unknown key '%s' in [[registry]] (known: prefix, location, insecure, "
					     "blocked, mirror-by-digest-only, [[registry.mirror]])",
				   e->key);
		}
	}
	if (!reg->prefix && !reg->location)
		return bad(f, &hdr, "[[registry]] needs a location or a prefix");
	if (!reg->prefix)
		reg->prefix = xstrdup(reg->location);
	bool wildcard = startswith(reg->prefix, "*.");
	if (wildcard && reg->location)
		return bad(f, &hdr, "[[registry]] with the wildcard prefix '%s' cannot have a location: the reference "
				    "is used as written",
			   reg->prefix);
	if (mirrors) {
		reg->mirrors = xcalloc(mirrors->n_tables, sizeof(*reg->mirrors));
		for (size_t i = 0; i < mirrors->n_tables; i++) {
			reg->n_mirrors++;
			r = read_mirror(f, mirrors->tables[i], wildcard, &reg->mirrors[i]);
			if (r < 0)
				return r;
			if (reg->mirror_by_digest_only && reg->mirrors[i].pull_from != PLAIT_PULL_FROM_ALL) {
				const struct plait_toml_value mh = { .line = mirrors->tables[i]->line,
								     .col = mirrors->tables[i]->col };
				return bad(f, &mh, "pull-from-mirror is not allowed when the [[registry]] sets "
						   "mirror-by-digest-only");
			}
		}
	}
	reg->where = where(f, t->line);
	return 0;
}

/* Add reg to c, replacing the entry with the same prefix (a drop-in overrides). */
static void put_registry(struct plait_registries_conf *c, struct plait_conf_registry *reg)
{
	for (size_t i = 0; i < c->n_regs; i++)
		if (streq(c->regs[i].prefix, reg->prefix)) {
			registry_release(&c->regs[i]);
			c->regs[i] = *reg;
			memset(reg, 0, sizeof(*reg));
			return;
		}
	c->regs = xrealloc(c->regs, (c->n_regs + 1) * sizeof(*c->regs));
	c->regs[c->n_regs++] = *reg;
	memset(reg, 0, sizeof(*reg));
}

/* The version 1 format: [registries.search|insecure|block] registries = [...]. */
static int read_v1(const struct file_ctx *f, const struct plait_toml_entry *top, struct plait_registries_conf *c,
		   struct plait_conf_registry **regs, size_t *n)
{
	int r = want(f, top, PLAIT_TOML_TABLE);
	if (r < 0)
		return r;
	const struct plait_toml_table *t = top->v.table;
	for (size_t i = 0; i < t->n; i++) {
		const struct plait_toml_entry *e = &t->entries[i];
		bool search = streq(e->key, "search"), insecure = streq(e->key, "insecure"),
		     block = streq(e->key, "block");
		if (!search && !insecure && !block)
			return bad(f, &e->v, "unknown table [registries.%s] (version 1 has search, insecure, block)",
				   e->key);
		if ((r = want(f, e, PLAIT_TOML_TABLE)) < 0)
			return r;
		for (size_t j = 0; j < e->v.table->n; j++) {
			const struct plait_toml_entry *k = &e->v.table->entries[j];
			if (!streq(k->key, "registries"))
				return bad(f, &k->v, "unknown key '%s' in [registries.%s] (known: registries)", k->key,
					   e->key);
			if ((r = want(f, k, PLAIT_TOML_STRINGS)) < 0)
				return r;
			if (search) {
				plait_strv_free(c->search);
				c->search = plait_strv_copy_nonnull((const char *const *)k->v.strings);
				continue;
			}
			for (char **h = k->v.strings; *h; h++) {
				const char *p = name_problem(*h, false);
				if (p)
					return bad(f, &k->v, "registry '%s': %s", *h, p);
				_cleanup_free_ char *name = normalise_name(*h);
				struct plait_conf_registry *reg = NULL;
				for (size_t m = 0; m < *n; m++)
					if (streq((*regs)[m].prefix, name))
						reg = &(*regs)[m];
				if (!reg) {
					*regs = xrealloc(*regs, (*n + 1) * sizeof(**regs));
					reg = &(*regs)[(*n)++];
					memset(reg, 0, sizeof(*reg));
					reg->prefix = xstrdup(name);
					reg->location = xstrdup(name);
					reg->where = where(f, k->v.line);
				}
				if (insecure)
					reg->insecure = true;
				else
					reg->blocked = true;
			}
		}
	}
	return 0;
}

int plait_registries_conf_load_text(struct plait_registries_conf *c, const char *name, const char *text,
				    size_t len, struct plait_error **err)
{
	struct plait_toml_table *root = NULL;
	int r = plait_toml_parse(name, text, len, &root, err);
	if (r < 0)
		return r;
	struct file_ctx f = { .name = name, .err = err };
	struct plait_conf_registry *regs = NULL;
	size_t n = 0;
	const struct plait_toml_entry *v1 = NULL, *v2 = NULL;
	_cleanup_strv_free_ char **search = NULL;
	bool have_search = false;
	for (size_t i = 0; i < root->n && r >= 0; i++) {
		const struct plait_toml_entry *e = &root->entries[i];
		if (streq(e->key, "unqualified-search-registries")) {
			if ((r = want(&f, e, PLAIT_TOML_STRINGS)) < 0)
				break;
			search = plait_strv_copy_nonnull((const char *const *)e->v.strings);
			have_search = true;
		} else if (streq(e->key, "registry")) {
			v2 = e;
			if (e->v.type == PLAIT_TOML_TABLE) {
				r = bad(&f, &e->v, "[registry] must be an array of tables: write [[registry]]");
				break;
			}
			if ((r = want(&f, e, PLAIT_TOML_TABLES)) < 0)
				break;
			for (size_t j = 0; j < e->v.n_tables; j++) {
				struct plait_conf_registry reg = { 0 };
				r = read_registry(&f, e->v.tables[j], &reg);
				if (r < 0) {
					registry_release(&reg);
					break;
				}
				for (size_t m = 0; m < n; m++)
					if (streq(regs[m].prefix, reg.prefix)) {
						const struct plait_toml_value hv = { .line = e->v.tables[j]->line,
										     .col = e->v.tables[j]->col };
						r = bad(&f, &hv, "prefix '%s' is defined twice (first at %s)", reg.prefix,
							regs[m].where);
						break;
					}
				if (r < 0) {
					registry_release(&reg);
					break;
				}
				regs = xrealloc(regs, (n + 1) * sizeof(*regs));
				regs[n++] = reg;
			}
		} else if (streq(e->key, "registries")) {
			v1 = e;
			r = read_v1(&f, e, c, &regs, &n);
		} else if (streq(e->key, "credential-helpers") || streq(e->key, "short-name-mode") ||
			   streq(e->key, "aliases")) {
			/* read by other tools (credentials: docker's config.json; short names: docker.io) */
		} else {
			r = bad(&f, &e->v, "unknown key '%s' (plait reads unqualified-search-registries, [[registry]] "
					   "and [[registry.mirror]]; it ignores credential-helpers, short-name-mode and "
					   "[aliases])",
				e->key);
		}
	}
	if (r >= 0 && v1 && v2)
		r = bad(&f, &v1->v, "the version 1 [registries.*] tables cannot be mixed with [[registry]] (line %u): "
				    "use [[registry]] only",
			v2->v.line);
	if (r >= 0) {
		for (size_t i = 0; i < n; i++)
			put_registry(c, &regs[i]);
		if (have_search) {
			plait_strv_free(c->search);
			c->search = TAKE_PTR(search);
		}
		plait_strv_push(&c->files, name);
	}
	for (size_t i = 0; i < n; i++)
		registry_release(&regs[i]);
	free(regs);
	plait_toml_free(root);
	return r < 0 ? r : 0;
}

/* Registries files are small; this bounds what a mistaken path can cost. */
#define CONF_MAX (4 * 1024 * 1024)

int plait_registries_conf_load_file(struct plait_registries_conf *c, const char *path, bool must_exist,
				    struct plait_error **err)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	int r = plait_buf_read_file(&b, path, CONF_MAX);
	if (r == -ENOENT && !must_exist) {
		plait_buf_release(&b);
		return 0;
	}
	if (r < 0) {
		plait_buf_release(&b);
		return plait_error_set_errno(err, PLAIT_E_IO, r, "read registries configuration %s", path);
	}
	r = plait_registries_conf_load_text(c, path, b.buf, b.len, err);
	plait_buf_release(&b);
	return r;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.conf files of dir, in byte order; a missing dir is no error. */
static int load_dir(struct plait_registries_conf *c, const char *dir, struct plait_error **err)
{
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT || errno == ENOTDIR
			       ? 0
			       : plait_error_set_errno(err, PLAIT_E_IO, errno, "read registries drop-in directory %s", dir);
	_cleanup_strv_free_ char **names = NULL;
	size_t n = 0, alloc = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (endswith(de->d_name, ".conf") && de->d_name[0] != '.')
			plait_strv_add(&names, &n, &alloc, de->d_name);
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n; i++) {
		struct plait_buf p = PLAIT_BUF_INIT;
		plait_buf_addf(&p, "%s/%s", dir, names[i]);
		struct stat st;
		int r = 0;
		if (stat(p.buf, &st) == 0 && S_ISREG(st.st_mode))
			r = plait_registries_conf_load_file(c, p.buf, false, err);
		plait_buf_release(&p);
		if (r < 0)
			return r;
	}
	return 0;
}

int plait_registries_conf_load_default(struct plait_registries_conf *c, const char *sys_dir,
				       const char *home, struct plait_error **err)
{
	struct plait_buf user = PLAIT_BUF_INIT, user_dir = PLAIT_BUF_INIT, sys = PLAIT_BUF_INIT,
			 sys_d = PLAIT_BUF_INIT;
	int r = 0;
	bool have_home = home && *home;
	if (have_home) {
		plait_buf_addf(&user, "%s/.config/containers/registries.conf", home);
		plait_buf_addf(&user_dir, "%s/.config/containers/registries.conf.d", home);
	}
	plait_buf_addf(&sys, "%s/registries.conf", sys_dir);
	plait_buf_addf(&sys_d, "%s/registries.conf.d", sys_dir);
	struct stat st;
	if (have_home && stat(user.buf, &st) == 0) {
		r = plait_registries_conf_load_file(c, user.buf, true, err);
	} else {
		r = plait_registries_conf_load_file(c, sys.buf, false, err);
		if (r >= 0)
			r = load_dir(c, sys_d.buf, err);
	}
	if (r >= 0 && have_home)
		r = load_dir(c, user_dir.buf, err);
	plait_buf_release(&user);
	plait_buf_release(&user_dir);
	plait_buf_release(&sys);
	plait_buf_release(&sys_d);
	return r;
}

int plait_registries_conf_add_docker_mirror(struct plait_registries_conf *c, const char *arg,
					    struct plait_error **err)
{
	const char *h = arg;
	bool plain = false;
	if (startswith(h, "https://")) {
		h += strlen("https://");
	} else if (startswith(h, "http://")) {
		h += strlen("http://");
		plain = true;
	}
	size_t n = strcspn(h, "/");
	const char *rest = h + n + strspn(h + n, "/");
	_cleanup_free_ char *host = xstrndup(h, n);
	if (!n || *rest || strpbrk(host, " \t\r\n@?#*"))
		return plait_error_set(err, PLAIT_E_USAGE,
				       "--registry-mirror '%s': give a registry host[:port] (or http://host[:port] "
				       "for plain HTTP), e.g. 'mirror.local:5000'; a path is not supported",
				       arg);
	plait_strv_push(&c->cli_mirrors, host);
	if (plain)
		plait_strv_push(&c->cli_insecure, host);
	return 0;
}

/* ------------------------------------------------------------------ decisions */

static int blocked_error(const struct plait_conf_registry *e, const char *what, const char *reference,
			 struct plait_error **err)
{
	return plait_error_set(err, PLAIT_E_GENERIC,
			       "%s %s is blocked by %s ([[registry]] prefix '%s' has blocked = true): use "
			       "another registry, or remove that entry",
			       what, reference, e->where, e->prefix);
}

/* plait_ref_parse of location + the rest of the reference after the prefix. */
static int rewrite(const char *location, const char *reference, long matched, const char *where,
		   struct plait_ref *out, struct plait_error **err)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s%s", location, reference + matched);
	int r = plait_ref_parse(b.buf, out, err);
	if (r < 0)
		plait_error_wrap(err, "%s: location '%s' for %s", where, location, reference);
	plait_buf_release(&b);
	return r;
}

static void add_source(struct plait_pull_source **v, size_t *n, struct plait_ref *ref, bool mirror,
		       const char *where)
{
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	struct plait_pull_source *s = &(*v)[(*n)++];
	s->ref = *ref;
	memset(ref, 0, sizeof(*ref));
	s->mirror = mirror;
	s->where = xstrdup_or_null(where);
}

void plait_pull_sources_free(struct plait_pull_source *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		plait_ref_release(&s[i].ref);
		free(s[i].where);
	}
	free(s);
}

int plait_registries_conf_pull_sources(const struct plait_registries_conf *c, const struct plait_ref *ref,
				       struct plait_pull_source **out, size_t *n_out, struct plait_error **err)
{
	_cleanup_free_ char *reference = plait_ref_format(ref);
	long matched = -1;
	const struct plait_conf_registry *e = find(c, reference, &matched);
	if (e && e->blocked)
		return blocked_error(e, "pull of", reference, err);
	struct plait_pull_source *v = NULL;
	size_t n = 0;
	int r = 0;
	bool by_digest = ref->digest != NULL;
	struct plait_ref tmp = { 0 };

	if (c && streq(ref->domain, plait_docker_hub_domain()))
		for (char **m = c->cli_mirrors; m && *m; m++) {
			r = rewrite(*m, reference, (long)strlen(plait_docker_hub_domain()), "--registry-mirror", &tmp,
				    err);
			if (r < 0)
				goto fail;
			add_source(&v, &n, &tmp, true, "--registry-mirror");
		}
	for (size_t i = 0; e && i < e->n_mirrors; i++) {
		const struct plait_conf_mirror *m = &e->mirrors[i];
		enum plait_pull_from pf = e->mirror_by_digest_only ? PLAIT_PULL_FROM_DIGEST_ONLY : m->pull_from;
		if ((pf == PLAIT_PULL_FROM_DIGEST_ONLY && !by_digest) || (pf == PLAIT_PULL_FROM_TAG_ONLY && by_digest))
			continue;
		r = rewrite(m->location, reference, matched, m->where, &tmp, err);
		if (r < 0)
			goto fail;
		add_source(&v, &n, &tmp, true, m->where);
	}
	if (e && e->location) {
		r = rewrite(e->location, reference, matched, e->where, &tmp, err);
		if (r < 0)
			goto fail;
	} else {
		plait_ref_copy(&tmp, ref);
	}
	add_source(&v, &n, &tmp, false, NULL);
	*out = v;
	*n_out = n;
	return 0;
fail:
	plait_pull_sources_free(v, n);
	return r;
}

int plait_registries_conf_check_push(const struct plait_registries_conf *c, const struct plait_ref *ref,
				     struct plait_error **err)
{
	_cleanup_free_ char *reference = plait_ref_format(ref);
	const struct plait_conf_registry *e = find(c, reference, NULL);
	if (e && e->blocked)
		return blocked_error(e, "push to", reference, err);
	return 0;
}

/* Is the host of name ("host[:port][/path]") the API host host? */
static bool name_on_host(const char *name, const char *host)
{
	size_t n = host_len(name);
	if (plait_docker_hub_is_alias_n(name, n))
		return streq(host, plait_docker_hub_api_host()) || plait_docker_hub_is_alias(host);
	return strlen(host) == n && strncasecmp(name, host, n) == 0;
}

bool plait_registries_conf_host_insecure(const struct plait_registries_conf *c, const char *host)
{
	if (!c)
		return false;
	for (char **m = c->cli_insecure; m && *m; m++)
		if (streq(*m, host))
			return true;
	for (size_t i = 0; i < c->n_regs; i++) {
		const struct plait_conf_registry *e = &c->regs[i];
		if (e->insecure) {
			if (startswith(e->prefix, "*.")) {
				if (match_len(e->prefix, host) >= 0)
					return true;
			} else if (name_on_host(e->location ? e->location : e->prefix, host)) {
				return true;
			}
		}
		for (size_t j = 0; j < e->n_mirrors; j++)
			if (e->mirrors[j].insecure && name_on_host(e->mirrors[j].location, host))
				return true;
	}
	return false;
}
