/* core/sbom.c - package databases read from an image's layers, and the SPDX
 * 2.3 document made of them; see sbom.h. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <unistd.h>

#include "sbom.h"
#include "cleanup.h"
#include "oci.h"
#include "strv.h"
#include "timestamp.h"
#include "utf8.h"
#include "util.h"

#include "plait-config.h"
#include "banned.h"

#define SBOM_FILE_MAX (64u << 20)
#define SBOM_TOTAL_MAX (256u << 20) /* every database read, over all layers */
#define SBOM_FILES_MAX 100000u /* records kept (METADATA files, conda JSON...) */

struct sbom_file {
	char *path; /* relative, no leading "./" or "/" */
	struct plait_buf data;
	bool marker; /* kept for its presence only (an RPM database) */
};

static void file_release(struct sbom_file *f)
{
	free(f->path);
	plait_buf_release(&f->data);
}

void plait_sbom_release(struct plait_sbom *sb)
{
	if (!sb)
		return;
	for (size_t i = 0; i < sb->n; i++) {
		struct plait_sbom_package *p = &sb->pkgs[i];
		free(p->type);
		free(p->name);
		free(p->version);
		free(p->arch);
		free(p->license);
		free(p->source);
		free(p->extra);
		free(p->path);
	}
	free(sb->pkgs);
	for (size_t i = 0; i < sb->n_files; i++)
		file_release(&sb->files[i]);
	free(sb->files);
	free(sb->os_id);
	free(sb->os_version_id);
	free(sb->os_name);
	free(sb->rpm_db);
	memset(sb, 0, sizeof(*sb));
}

/* ------------------------------------------------------------ which files */

/* The last path component before the final one ("a/b.dist-info/METADATA" -> "b.dist-info"). */
static bool parent_endswith(const char *path, const char *leaf, const char *suffix)
{
	size_t n = strlen(path), l = strlen(leaf);
	if (n <= l + 1 || path[n - l - 1] != '/' || !streq(path + n - l, leaf))
		return false;
	_cleanup_free_ char *dir = xstrndup(path, n - l - 1);
	return endswith(dir, suffix);
}

static const char *const rpm_dbs[] = {
	"var/lib/rpm/Packages", "var/lib/rpm/rpmdb.sqlite", "var/lib/rpm/Packages.db",
	"usr/lib/sysimage/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/Packages", "usr/lib/sysimage/rpm/Packages.db",
};

static bool is_rpm_db(const char *p)
{
	for (size_t i = 0; i < ARRAY_SIZE(rpm_dbs); i++)
		if (streq(p, rpm_dbs[i]))
			return true;
	return false;
}

/* Whether the SBOM reads the file at p (a regular file). */
static bool wanted(const char *p)
{
	if (streq(p, "var/lib/dpkg/status") || streq(p, "lib/apk/db/installed") || streq(p, "etc/os-release") ||
	    streq(p, "usr/lib/os-release"))
		return true;
	if (startswith(p, "var/lib/dpkg/status.d/") && !strchr(p + strlen("var/lib/dpkg/status.d/"), '/') &&
	    !endswith(p, ".md5sums"))
		return true;
	if (parent_endswith(p, "METADATA", ".dist-info") || parent_endswith(p, "PKG-INFO", ".egg-info"))
		return true;
	if (endswith(p, ".egg-info"))
		return true; /* a distutils egg-info file (a directory's entry is not a regular file) */
	const char *slash = strrchr(p, '/');
	if (endswith(p, ".json") && slash && parent_endswith(p, slash + 1, "conda-meta"))
		return true;
	return false;
}

static char *normalise(const char *name)
{
	while (startswith(name, "./"))
		name += 2;
	while (*name == '/')
		name++;
	size_t n = strlen(name);
	while (n && name[n - 1] == '/')
		n--;
	return xstrndup(name, n);
}

/* Remove what the layer hides: path itself and (dir) everything below it. */
static void remove_under(struct plait_sbom *sb, const char *path, bool self, bool below)
{
	size_t n = strlen(path), k = 0;
	for (size_t i = 0; i < sb->n_files; i++) {
		const char *f = sb->files[i].path;
		bool hit = (self && streq(f, path)) ||
			   (below && (n == 0 || (strncmp(f, path, n) == 0 && f[n] == '/')));
		if (hit)
			file_release(&sb->files[i]);
		else
			sb->files[k++] = sb->files[i];
	}
	sb->n_files = k;
}

static struct sbom_file *find_file(struct sbom_file *v, size_t n, const char *path)
{
	for (size_t i = 0; i < n; i++)
		if (streq(v[i].path, path))
			return &v[i];
	return NULL;
}

/* The layer's own files, added to sb after all of its entries are read;
 * its whiteouts and replacements act on sb at once, which then holds only
 * what lower layers left (a whiteout hides lower layers only). */
struct layer_state {
	struct sbom_file *files;
	size_t n_files;
};

static void layer_release(struct layer_state *l)
{
	for (size_t i = 0; i < l->n_files; i++)
		file_release(&l->files[i]);
	free(l->files);
}

static int read_entry(struct archive *a, struct archive_entry *ae, const char *path, const char *what,
		      struct plait_buf *out, struct plait_error **err)
{
	int64_t size = archive_entry_size(ae);
	if (size > (int64_t)SBOM_FILE_MAX)
		return plait_error_set(err, PLAIT_E_INVALID,
				       "sbom: %s: /%s is %lld bytes, more than the %u MiB a package database may be",
				       what, path, (long long)size, SBOM_FILE_MAX >> 20);
	char chunk[65536];
	for (;;) {
		la_ssize_t n = archive_read_data(a, chunk, sizeof(chunk));
		if (n < 0)
			return plait_error_set(err, PLAIT_E_INVALID, "sbom: %s: read /%s: %s", what, path,
					       archive_error_string(a));
		if (n == 0)
			break;
		if (out->len + (size_t)n > SBOM_FILE_MAX)
			return plait_error_set(err, PLAIT_E_INVALID, "sbom: %s: /%s is larger than %u MiB", what,
					       path, SBOM_FILE_MAX >> 20);
		plait_buf_add(out, chunk, (size_t)n);
	}
	return 0;
}

int plait_sbom_add_layer(struct plait_sbom *sb, int fd, const char *what, struct plait_error **err)
{
	struct layer_state l = { 0 };
	_cleanup_(archive_read_freep) struct archive *a = archive_read_new();
	if (!a)
		plait_die_oom();
	archive_read_support_format_tar(a);
	archive_read_support_format_empty(a);
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_zstd(a);
	int r = 0;
	if (archive_read_open_fd(a, fd, 1 << 16) != ARCHIVE_OK) {
		r = plait_error_set(err, PLAIT_E_INVALID, "sbom: %s: %s", what, archive_error_string(a));
		goto out;
	}
	for (;;) {
		struct archive_entry *ae;
		int ar = archive_read_next_header(a, &ae);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar < ARCHIVE_WARN) {
			r = plait_error_set(err, PLAIT_E_INVALID, "sbom: %s: %s", what, archive_error_string(a));
			goto out;
		}
		const char *name = archive_entry_pathname(ae);
		if (!name)
			continue;
		_cleanup_free_ char *path = normalise(name);
		const char *base = strrchr(path, '/');
		base = base ? base + 1 : path;
		if (startswith(base, ".wh.")) {
			_cleanup_free_ char *dir = xstrndup(path, (size_t)(base - path) - (base > path));
			if (streq(base, ".wh..wh..opq")) {
				remove_under(sb, dir, false, true);
			} else {
				_cleanup_free_ char *target = plait_path_join(dir, base + 4);
				_cleanup_free_ char *t = normalise(target);
				remove_under(sb, t, true, true);
			}
			continue;
		}
		mode_t type = archive_entry_filetype(ae);
		const char *hl = archive_entry_hardlink(ae);
		if (type != AE_IFDIR) /* anything but a directory replaces what a lower layer had there */
			remove_under(sb, path, true, true);
		if (type == AE_IFDIR || !(type == AE_IFREG || hl))
			continue;
		bool rpm = is_rpm_db(path);
		if (!rpm && !wanted(path))
			continue;
		struct sbom_file f = { .path = xstrdup(path), .data = PLAIT_BUF_INIT, .marker = rpm };
		if (hl) { /* a hard link: the same bytes as an earlier entry of this layer */
			_cleanup_free_ char *t = normalise(hl);
			struct sbom_file *src = find_file(l.files, l.n_files, t);
			if (src)
				plait_buf_add(&f.data, src->data.buf, src->data.len);
		} else if (!rpm && (r = read_entry(a, ae, path, what, &f.data, err)) < 0) {
			file_release(&f);
			goto out;
		}
		/* each record costs its bytes and its bookkeeping: a layer of a
		 * million empty METADATA files is bounded too */
		sb->kept_bytes += f.data.len + strlen(path) + 256;
		if (sb->kept_bytes > SBOM_TOTAL_MAX || sb->n_files + l.n_files >= SBOM_FILES_MAX) {
			file_release(&f);
			r = plait_error_set(err, PLAIT_E_INVALID,
					    "sbom: %s: the package databases add up to more than %u MiB or %u records (at /%s)",
					    what, SBOM_TOTAL_MAX >> 20, SBOM_FILES_MAX, path);
			goto out;
		}
		struct sbom_file *old = find_file(l.files, l.n_files, path);
		if (old) {
			file_release(old);
			*old = f;
		} else {
			l.files = xrealloc(l.files, (l.n_files + 1) * sizeof(*l.files));
			l.files[l.n_files++] = f;
		}
	}
	for (size_t i = 0; i < l.n_files; i++) {
		sb->files = xrealloc(sb->files, (sb->n_files + 1) * sizeof(*sb->files));
		sb->files[sb->n_files++] = l.files[i];
	}
	l.n_files = 0;
out:
	layer_release(&l);
	return r;
}

/* ------------------------------------------------------------ parsers */

/* RFC 822-style fields of one stanza: "Key: value" with continuation lines. */
#define STANZA_FIELDS_MAX 256

struct stanza {
	char **keys, **values;
	size_t n, alloc_k, alloc_v;
};

static void stanza_release(struct stanza *s)
{
	plait_strv_free(s->keys);
	plait_strv_free(s->values);
	memset(s, 0, sizeof(*s));
}

static const char *stanza_get(const struct stanza *s, const char *key)
{
	for (size_t i = 0; s->keys && s->keys[i]; i++)
		if (strcasecmp(s->keys[i], key) == 0)
			return s->values[i];
	return NULL;
}

/* The next stanza of text from *pos (blank lines end one); false at the end.
 * Headers only (METADATA's body after the first blank line is the caller's to skip). */
static bool next_stanza(const char *text, size_t len, size_t *pos, struct stanza *out)
{
	stanza_release(out);
	while (*pos < len && (text[*pos] == '\n' || text[*pos] == '\r'))
		(*pos)++;
	if (*pos >= len)
		return false;
	while (*pos < len) {
		const char *l = text + *pos;
		const char *nl = memchr(l, '\n', len - *pos);
		size_t n = nl ? (size_t)(nl - l) : len - *pos;
		*pos += n + (nl ? 1 : 0);
		if (n && l[n - 1] == '\r')
			n--;
		if (n == 0)
			break;
		if (l[0] == ' ' || l[0] == '\t')
			continue; /* a continuation line: only the first line of a field is used */
		const char *colon = memchr(l, ':', n);
		if (!colon || out->n >= STANZA_FIELDS_MAX)
			continue; /* a stanza of a real database has a few dozen fields */
		const char *v = colon + 1;
		while (v < l + n && (*v == ' ' || *v == '\t'))
			v++;
		_cleanup_free_ char *k = xstrndup(l, (size_t)(colon - l));
		_cleanup_free_ char *val = xstrndup(v, (size_t)(l + n - v));
		plait_strv_add_take(&out->keys, &out->n, &out->alloc_k, TAKE_PTR(k));
		out->n--; /* one count for both lists */
		plait_strv_add_take(&out->values, &out->n, &out->alloc_v, TAKE_PTR(val));
	}
	return true;
}

static void add_pkg(struct plait_sbom *sb, const char *type, const char *name, const char *version, const char *arch,
		    const char *license, const char *source, const char *extra, const char *path)
{
	if (!name || !*name || !version || !*version)
		return;
	/* JSON holds UTF-8 only: a record that is not is left out, not garbled */
	const char *fields[] = { type, name, version, arch, license, source, extra, path };
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
		if (fields[i] && !plait_utf8_valid(fields[i], strlen(fields[i]), NULL))
			return;
	sb->pkgs = xrealloc(sb->pkgs, (sb->n + 1) * sizeof(*sb->pkgs));
	sb->pkgs[sb->n++] = (struct plait_sbom_package){
		.type = xstrdup(type),
		.name = xstrdup(name),
		.version = xstrdup(version),
		.arch = arch && *arch ? xstrdup(arch) : NULL,
		.license = license && *license && !streq(license, "UNKNOWN") ? xstrdup(license) : NULL,
		.source = source && *source ? xstrdup(source) : NULL,
		.extra = extra && *extra ? xstrdup(extra) : NULL,
		.path = xstrdup(path),
	};
}

/* dpkg's status: a package whose files are on disk (its state is neither
 * "not-installed" nor "config-files"). */
static void parse_dpkg(struct plait_sbom *sb, const struct sbom_file *f)
{
	struct stanza s = { 0 };
	size_t pos = 0;
	while (next_stanza(f->data.buf, f->data.len, &pos, &s)) {
		const char *status = stanza_get(&s, "Status");
		const char *state = status ? strrchr(status, ' ') : NULL;
		state = state ? state + 1 : status;
		if (!state || streq(state, "not-installed") || streq(state, "config-files"))
			continue;
		_cleanup_free_ char *src = NULL;
		const char *sv = stanza_get(&s, "Source");
		if (sv)
			src = xstrndup(sv, strcspn(sv, " ("));
		add_pkg(sb, "deb", stanza_get(&s, "Package"), stanza_get(&s, "Version"),
			stanza_get(&s, "Architecture"), NULL, src, NULL, f->path);
	}
	stanza_release(&s);
}

/* apk's installed database: "X:value" lines, a blank line between packages. */
static void parse_apk(struct plait_sbom *sb, const struct sbom_file *f)
{
	const char *t = f->data.buf;
	size_t len = f->data.len, pos = 0;
	_cleanup_free_ char *P = NULL, *V = NULL, *A = NULL, *L = NULL, *o = NULL;
	for (;;) {
		bool end = pos >= len;
		const char *l = t + pos;
		const char *nl = end ? NULL : memchr(l, '\n', len - pos);
		size_t n = end ? 0 : nl ? (size_t)(nl - l) : len - pos;
		pos += n + 1;
		if (n == 0) {
			if (P)
				add_pkg(sb, "apk", P, V, A, L, o, NULL, f->path);
			free(P), free(V), free(A), free(L), free(o);
			P = V = A = L = o = NULL;
			if (end)
				break;
			continue;
		}
		if (n < 2 || l[1] != ':')
			continue;
		char **slot = l[0] == 'P' ? &P : l[0] == 'V' ? &V : l[0] == 'A' ? &A : l[0] == 'L' ? &L : l[0] == 'o' ? &o : NULL;
		if (slot) {
			free(*slot);
			*slot = xstrndup(l + 2, n - 2);
		}
	}
}

/* Core metadata (PEP 241/566/643): the headers before the description. */
static void parse_python(struct plait_sbom *sb, const struct sbom_file *f)
{
	struct stanza s = { 0 };
	size_t pos = 0;
	if (next_stanza(f->data.buf, f->data.len, &pos, &s)) {
		/* License-Expression (PEP 639) is SPDX; the legacy License: is free text */
		const char *expr = stanza_get(&s, "License-Expression");
		size_t n = sb->n;
		add_pkg(sb, "pypi", stanza_get(&s, "Name"), stanza_get(&s, "Version"), NULL,
			expr ? expr : stanza_get(&s, "License"), NULL, NULL, f->path);
		if (sb->n > n && !expr)
			sb->pkgs[n].license_free_text = true;
	}
	stanza_release(&s);
}

static void parse_conda(struct plait_sbom *sb, const struct sbom_file *f)
{
	json_t *o = json_loadb(f->data.buf, f->data.len, 0, NULL);
	if (!json_is_object(o)) {
		json_decref(o);
		return;
	}
	add_pkg(sb, "conda", json_string_value(json_object_get(o, "name")),
		json_string_value(json_object_get(o, "version")), json_string_value(json_object_get(o, "subdir")),
		json_string_value(json_object_get(o, "license")), json_string_value(json_object_get(o, "channel")),
		json_string_value(json_object_get(o, "build")), f->path);
	json_decref(o);
}

static char *os_value(const char *text, size_t len, const char *key)
{
	size_t k = strlen(key), pos = 0;
	while (pos < len) {
		const char *l = text + pos;
		const char *nl = memchr(l, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - l) : len - pos;
		pos += n + 1;
		if (n > k && strncmp(l, key, k) == 0 && l[k] == '=') {
			const char *v = l + k + 1;
			size_t vn = n - k - 1;
			if (vn >= 2 && (v[0] == '"' || v[0] == '\'') && v[vn - 1] == v[0]) {
				v++;
				vn -= 2;
			}
			return xstrndup(v, vn);
		}
	}
	return NULL;
}

static int cmp_pkg(const void *a, const void *b)
{
	const struct plait_sbom_package *x = a, *y = b;
	int c = strcmp(x->type, y->type);
	if (!c)
		c = strcmp(x->name, y->name);
	if (!c)
		c = strcmp(x->version, y->version);
	if (!c)
		c = strcmp(x->arch ? x->arch : "", y->arch ? y->arch : "");
	if (!c)
		c = strcmp(x->path, y->path);
	return c;
}

int plait_sbom_finish(struct plait_sbom *sb, struct plait_error **err)
{
	(void)err;
	const struct sbom_file *osr = find_file(sb->files, sb->n_files, "etc/os-release");
	if (!osr)
		osr = find_file(sb->files, sb->n_files, "usr/lib/os-release");
	if (osr) {
		sb->os_id = os_value(osr->data.buf, osr->data.len, "ID");
		sb->os_version_id = os_value(osr->data.buf, osr->data.len, "VERSION_ID");
		sb->os_name = os_value(osr->data.buf, osr->data.len, "PRETTY_NAME");
	}
	for (size_t i = 0; i < sb->n_files; i++) {
		const struct sbom_file *f = &sb->files[i];
		if (f->marker) {
			if (!sb->rpm_db)
				sb->rpm_db = xstrdup(f->path);
		} else if (streq(f->path, "var/lib/dpkg/status") || startswith(f->path, "var/lib/dpkg/status.d/")) {
			parse_dpkg(sb, f);
		} else if (streq(f->path, "lib/apk/db/installed")) {
			parse_apk(sb, f);
		} else if (endswith(f->path, ".json")) {
			parse_conda(sb, f);
		} else if (!endswith(f->path, "os-release")) {
			parse_python(sb, f);
		}
	}
	if (sb->n)
		qsort(sb->pkgs, sb->n, sizeof(*sb->pkgs), cmp_pkg);
	return 0;
}

int plait_sbom_scan(struct plait_store *s, const char *manifest_digest, struct plait_sbom *out,
		    struct plait_error **err)
{
	memset(out, 0, sizeof(*out));
	struct plait_buf mb = PLAIT_BUF_INIT;
	struct plait_manifest m = { 0 };
	int r = plait_store_read_blob(s, manifest_digest, PLAIT_MANIFEST_MAX, &mb, err);
	if (r >= 0)
		r = plait_manifest_parse(mb.buf, mb.len, &m, err);
	for (size_t i = 0; r >= 0 && i < m.n_layers; i++) {
		_cleanup_close_ int fd = -1;
		r = plait_store_open_blob(s, m.layers[i].digest, &fd, err);
		if (r >= 0)
			r = plait_sbom_add_layer(out, fd, m.layers[i].digest, err);
	}
	if (r >= 0)
		r = plait_sbom_finish(out, err);
	plait_manifest_release(&m);
	plait_buf_release(&mb);
	return r;
}

/* ------------------------------------------------------------ SPDX */

void plait_purl_escape(struct plait_buf *b, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("-._~", *p))
			plait_buf_addf(b, "%c", *p);
		else
			plait_buf_addf(b, "%%%02X", *p);
	}
}

static char *pkg_purl(const struct plait_sbom *sb, const struct plait_sbom_package *p)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	if (streq(p->type, "deb") || streq(p->type, "apk")) {
		const char *ns = sb->os_id ? sb->os_id : streq(p->type, "deb") ? "debian" : "alpine";
		plait_buf_addf(&b, "pkg:%s/", p->type);
		plait_purl_escape(&b, ns);
		plait_buf_adds(&b, "/");
		plait_purl_escape(&b, p->name);
		plait_buf_adds(&b, "@");
		plait_purl_escape(&b, p->version);
		char sep = '?';
		if (p->arch) {
			plait_buf_addf(&b, "%carch=", sep);
			plait_purl_escape(&b, p->arch);
			sep = '&';
		}
		if (sb->os_id && sb->os_version_id) {
			plait_buf_addf(&b, "%cdistro=", sep);
			plait_purl_escape(&b, sb->os_id);
			plait_buf_adds(&b, "-");
			plait_purl_escape(&b, sb->os_version_id);
			sep = '&';
		}
		if (p->source && !streq(p->source, p->name)) {
			plait_buf_addf(&b, "%cupstream=", sep);
			plait_purl_escape(&b, p->source);
		}
	} else if (streq(p->type, "pypi")) {
		/* PEP 503 normalisation: lower case, runs of -_. as one - */
		_cleanup_free_ char *n = xstrdup(p->name);
		size_t k = 0;
		for (size_t i = 0; n[i]; i++) {
			char c = n[i];
			if (c == '_' || c == '.' || c == '-') {
				if (k && n[k - 1] == '-')
					continue;
				c = '-';
			}
			n[k++] = (char)((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c);
		}
		n[k] = '\0';
		plait_buf_adds(&b, "pkg:pypi/");
		plait_purl_escape(&b, n);
		plait_buf_adds(&b, "@");
		plait_purl_escape(&b, p->version);
	} else {
		plait_buf_addf(&b, "pkg:%s/", p->type);
		plait_purl_escape(&b, p->name);
		plait_buf_adds(&b, "@");
		plait_purl_escape(&b, p->version);
		char sep = '?';
		if (p->extra) {
			plait_buf_addf(&b, "%cbuild=", sep);
			plait_purl_escape(&b, p->extra);
			sep = '&';
		}
		if (p->source) {
			plait_buf_addf(&b, "%cchannel=", sep);
			plait_purl_escape(&b, p->source);
			sep = '&';
		}
		if (p->arch) {
			plait_buf_addf(&b, "%csubdir=", sep);
			plait_purl_escape(&b, p->arch);
		}
	}
	return b.buf;
}

/* SPDX identifiers: letters, digits, '.' and '-'. */
static char *spdx_id(const char *prefix, const char *name, size_t n)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "SPDXRef-%s-", prefix);
	for (const char *p = name; *p; p++)
		plait_buf_addf(&b, "%c",
			       ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
				*p == '.' || *p == '-')
				       ? *p
				       : '-');
	plait_buf_addf(&b, "-%zu", n);
	return b.buf;
}

/* A licence that is a plain SPDX expression (ids, AND, OR, WITH,
 * parentheses): licenseDeclared; anything else ("BSD", "GPL v2 or later")
 * is kept as the comment, and the declared licence is NOASSERTION. */
static bool spdx_expression(const char *s)
{
	if (!*s)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      strchr(".-+() :", *p)))
			return false;
	/* words separated by spaces must be ids or operators: "BSD License" is not */
	_cleanup_free_ char *c = xstrdup(s);
	bool want_id = true;
	for (char *save = NULL, *w = strtok_r(c, " ()", &save); w; w = strtok_r(NULL, " ()", &save)) {
		bool op = streq(w, "AND") || streq(w, "OR") || streq(w, "WITH");
		if (op == want_id)
			return false;
		want_id = op;
		if (!op && strchr(w, ':') && !startswith(w, "LicenseRef-") && !startswith(w, "DocumentRef-"))
			return false;
	}
	return !want_id;
}

static json_t *container_pkg(const char *id, const char *name, const char *digest, const char *platform)
{
	json_t *o = json_object();
	json_object_set_new(o, "SPDXID", json_string(id));
	json_object_set_new(o, "name", json_string(name));
	json_object_set_new(o, "downloadLocation", json_string("NOASSERTION"));
	json_object_set_new(o, "filesAnalyzed", json_false());
	json_object_set_new(o, "primaryPackagePurpose", json_string("CONTAINER"));
	json_object_set_new(o, "licenseConcluded", json_string("NOASSERTION"));
	json_object_set_new(o, "licenseDeclared", json_string("NOASSERTION"));
	json_object_set_new(o, "copyrightText", json_string("NOASSERTION"));
	if (digest && startswith(digest, "sha256:")) {
		json_t *c = json_object();
		json_object_set_new(c, "algorithm", json_string("SHA256"));
		json_object_set_new(c, "checksumValue", json_string(digest + strlen("sha256:")));
		json_object_set_new(o, "checksums", json_pack("[o]", c));
		/* pkg:oci/NAME@sha256%3AHEX?repository_url=HOST/REPO&platform=P */
		struct plait_buf b = PLAIT_BUF_INIT;
		const char *at = strchr(name, '@');
		_cleanup_free_ char *repo = xstrndup(name, at ? (size_t)(at - name) : strlen(name));
		char *colon = strrchr(repo, ':');
		if (colon && !strchr(colon, '/'))
			*colon = '\0';
		const char *last = strrchr(repo, '/');
		plait_buf_adds(&b, "pkg:oci/");
		plait_purl_escape(&b, last ? last + 1 : repo);
		plait_buf_adds(&b, "@");
		plait_purl_escape(&b, digest);
		if (last) {
			plait_buf_adds(&b, "?repository_url=");
			plait_purl_escape(&b, repo);
		}
		if (platform) {
			plait_buf_adds(&b, last ? "&platform=" : "?platform=");
			plait_purl_escape(&b, platform);
		}
		json_t *ref = json_object();
		json_object_set_new(ref, "referenceCategory", json_string("PACKAGE-MANAGER"));
		json_object_set_new(ref, "referenceType", json_string("purl"));
		json_object_set_new(ref, "referenceLocator", json_string(b.buf));
		json_object_set_new(o, "externalRefs", json_pack("[o]", ref));
		plait_buf_release(&b);
	}
	return o;
}

static json_t *relationship(const char *a, const char *type, const char *b)
{
	return json_pack("{s:s,s:s,s:s}", "spdxElementId", a, "relationshipType", type, "relatedSpdxElement", b);
}

int plait_sbom_spdx(const struct plait_sbom *sb, const struct plait_sbom_doc *d, struct plait_buf *out,
		    struct plait_error **err)
{
	json_t *doc = json_object(), *pkgs = json_array(), *rels = json_array();
	const char *name = d->name ? d->name : "image";
	struct plait_buf title = PLAIT_BUF_INIT, ns = PLAIT_BUF_INIT;
	plait_buf_addf(&title, "%s (%s)", name, d->platform);
	/* unique per image, and the same for the same image */
	plait_buf_addf(&ns, "urn:plait:sbom:%s:", d->digest);
	plait_purl_escape(&ns, d->platform);
	json_object_set_new(doc, "spdxVersion", json_string("SPDX-2.3"));
	json_object_set_new(doc, "dataLicense", json_string("CC0-1.0"));
	json_object_set_new(doc, "SPDXID", json_string("SPDXRef-DOCUMENT"));
	json_object_set_new(doc, "name", json_string(title.buf));
	json_object_set_new(doc, "documentNamespace", json_string(ns.buf));
	plait_buf_release(&title);
	plait_buf_release(&ns);
	char created[PLAIT_RFC3339_MAX];
	plait_rfc3339(d->have_epoch ? d->epoch : d->now, created);
	json_t *ci = json_object();
	json_object_set_new(ci, "created", json_string(created));
	json_object_set_new(ci, "creators", json_pack("[s]", "Tool: plait-" PLAIT_VERSION));
	if (sb->rpm_db) {
		struct plait_buf c = PLAIT_BUF_INIT;
		plait_buf_addf(&c, "/%s is an RPM database, which plait does not read: RPM packages are not listed",
			       sb->rpm_db);
		json_object_set_new(ci, "comment", json_string(c.buf));
		plait_buf_release(&c);
	}
	json_object_set_new(doc, "creationInfo", ci);

	json_array_append_new(pkgs, container_pkg("SPDXRef-Image", name, d->digest, d->platform));
	json_array_append_new(rels, relationship("SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Image"));
	if (d->base_ref) {
		json_array_append_new(pkgs, container_pkg("SPDXRef-BaseImage", d->base_ref, d->base_digest, d->platform));
		json_array_append_new(rels, relationship("SPDXRef-Image", "DESCENDANT_OF", "SPDXRef-BaseImage"));
	}
	if (sb->os_id) {
		json_t *o = json_object();
		json_object_set_new(o, "SPDXID", json_string("SPDXRef-OperatingSystem"));
		json_object_set_new(o, "name", json_string(sb->os_id));
		if (sb->os_version_id)
			json_object_set_new(o, "versionInfo", json_string(sb->os_version_id));
		if (sb->os_name)
			json_object_set_new(o, "description", json_string(sb->os_name));
		json_object_set_new(o, "downloadLocation", json_string("NOASSERTION"));
		json_object_set_new(o, "filesAnalyzed", json_false());
		json_object_set_new(o, "primaryPackagePurpose", json_string("OPERATING-SYSTEM"));
		json_array_append_new(pkgs, o);
		json_array_append_new(rels, relationship("SPDXRef-Image", "CONTAINS", "SPDXRef-OperatingSystem"));
	}
	for (size_t i = 0; i < sb->n; i++) {
		const struct plait_sbom_package *p = &sb->pkgs[i];
		_cleanup_free_ char *id = spdx_id(p->type, p->name, i + 1), *purl = pkg_purl(sb, p);
		json_t *o = json_object();
		json_object_set_new(o, "SPDXID", json_string(id));
		json_object_set_new(o, "name", json_string(p->name));
		json_object_set_new(o, "versionInfo", json_string(p->version));
		json_object_set_new(o, "downloadLocation", json_string("NOASSERTION"));
		json_object_set_new(o, "filesAnalyzed", json_false());
		json_object_set_new(o, "primaryPackagePurpose", json_string(streq(p->type, "pypi") || streq(p->type, "conda") ? "LIBRARY" : "APPLICATION"));
		json_object_set_new(o, "licenseConcluded", json_string("NOASSERTION"));
		if (p->license && !p->license_free_text && spdx_expression(p->license)) {
			json_object_set_new(o, "licenseDeclared", json_string(p->license));
		} else {
			json_object_set_new(o, "licenseDeclared", json_string("NOASSERTION"));
			if (p->license) {
				struct plait_buf c = PLAIT_BUF_INIT;
				plait_buf_addf(&c, "declared: %s", p->license);
				json_object_set_new(o, "licenseComments", json_string(c.buf));
				plait_buf_release(&c);
			}
		}
		json_object_set_new(o, "copyrightText", json_string("NOASSERTION"));
		struct plait_buf si = PLAIT_BUF_INIT;
		plait_buf_addf(&si, "%s package recorded in /%s", p->type, p->path);
		json_object_set_new(o, "sourceInfo", json_string(si.buf));
		plait_buf_release(&si);
		json_t *ref = json_object();
		json_object_set_new(ref, "referenceCategory", json_string("PACKAGE-MANAGER"));
		json_object_set_new(ref, "referenceType", json_string("purl"));
		json_object_set_new(ref, "referenceLocator", json_string(purl));
		json_object_set_new(o, "externalRefs", json_pack("[o]", ref));
		json_array_append_new(pkgs, o);
		json_array_append_new(rels, relationship("SPDXRef-Image", "CONTAINS", id));
	}
	json_object_set_new(doc, "packages", pkgs);
	json_object_set_new(doc, "relationships", rels);
	char *s = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(doc);
	if (!s)
		return plait_error_set(err, PLAIT_E_GENERIC, "sbom: cannot serialise the SPDX document");
	plait_buf_reset(out);
	plait_buf_adds(out, s);
	free(s);
	return 0;
}
