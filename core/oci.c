#include "oci.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>

#include "banned.h"

/* ---- media types ---- */

static const char *const media_type_names[_PLAIT_MT_MAX] = {
    [PLAIT_MT_OCI_MANIFEST] = "application/vnd.oci.image.manifest.v1+json",
    [PLAIT_MT_OCI_INDEX] = "application/vnd.oci.image.index.v1+json",
    [PLAIT_MT_OCI_CONFIG] = "application/vnd.oci.image.config.v1+json",
    [PLAIT_MT_OCI_LAYER] = "application/vnd.oci.image.layer.v1.tar",
    [PLAIT_MT_OCI_LAYER_GZIP] = "application/vnd.oci.image.layer.v1.tar+gzip",
    [PLAIT_MT_OCI_LAYER_ZSTD] = "application/vnd.oci.image.layer.v1.tar+zstd",
    [PLAIT_MT_OCI_LAYER_NONDIST_GZIP] =
	"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    [PLAIT_MT_OCI_EMPTY] = "application/vnd.oci.empty.v1+json",
    [PLAIT_MT_DOCKER_MANIFEST] = "application/vnd.docker.distribution.manifest.v2+json",
    [PLAIT_MT_DOCKER_LIST] = "application/vnd.docker.distribution.manifest.list.v2+json",
    [PLAIT_MT_DOCKER_CONFIG] = "application/vnd.docker.container.image.v1+json",
    [PLAIT_MT_DOCKER_LAYER_GZIP] = "application/vnd.docker.image.rootfs.diff.tar.gzip",
    [PLAIT_MT_DOCKER_LAYER_FOREIGN] = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
};

enum plait_media_type plait_media_type_from_string(const char *s)
{
	if (!s)
		return PLAIT_MT_UNKNOWN;
	/* A Content-Type header may carry parameters ("; charset=utf-8") and
	 * white space; media types compare case-insensitively (RFC 6838). */
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strcspn(s, "; \t");
	for (int t = PLAIT_MT_UNKNOWN + 1; t < _PLAIT_MT_MAX; t++) {
		const char *name = media_type_names[t];
		if (strlen(name) == n && strncasecmp(name, s, n) == 0)
			return (enum plait_media_type)t;
	}
	return PLAIT_MT_UNKNOWN;
}

const char *plait_media_type_to_string(enum plait_media_type t)
{
	if ((int)t <= PLAIT_MT_UNKNOWN || t >= _PLAIT_MT_MAX)
		return NULL;
	return media_type_names[t];
}

bool plait_media_type_is_index(enum plait_media_type t)
{
	return t == PLAIT_MT_OCI_INDEX || t == PLAIT_MT_DOCKER_LIST;
}

bool plait_media_type_is_manifest(enum plait_media_type t)
{
	return t == PLAIT_MT_OCI_MANIFEST || t == PLAIT_MT_DOCKER_MANIFEST;
}

bool plait_media_type_is_layer(enum plait_media_type t)
{
	switch (t) {
	case PLAIT_MT_OCI_LAYER:
	case PLAIT_MT_OCI_LAYER_GZIP:
	case PLAIT_MT_OCI_LAYER_ZSTD:
	case PLAIT_MT_OCI_LAYER_NONDIST_GZIP:
	case PLAIT_MT_DOCKER_LAYER_GZIP:
	case PLAIT_MT_DOCKER_LAYER_FOREIGN:
		return true;
	default:
		return false;
	}
}

bool plait_media_type_is_config(enum plait_media_type t)
{
	return t == PLAIT_MT_OCI_CONFIG || t == PLAIT_MT_DOCKER_CONFIG;
}

const char *plait_media_type_accept_manifests(void)
{
	return "application/vnd.oci.image.index.v1+json, "
	       "application/vnd.oci.image.manifest.v1+json, "
	       "application/vnd.docker.distribution.manifest.list.v2+json, "
	       "application/vnd.docker.distribution.manifest.v2+json";
}

/* ---- map ---- */

/* Index of key, or where it would go (with *found false). */
static size_t map_find(const struct plait_map *m, const char *key, bool *found)
{
	size_t lo = 0, hi = m->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(m->items[mid].key, key);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

void plait_map_set(struct plait_map *m, const char *key, const char *value)
{
	bool found;
	size_t i = map_find(m, key, &found);
	if (found) {
		char *v = xstrdup(value);
		free(m->items[i].value);
		m->items[i].value = v;
		return;
	}
	PLAIT_ALLOC_GROW(m->items, m->n + 1, m->alloc);
	memmove(&m->items[i + 1], &m->items[i], (m->n - i) * sizeof(m->items[0]));
	m->items[i].key = xstrdup(key);
	m->items[i].value = xstrdup(value);
	m->n++;
}

const char *plait_map_get(const struct plait_map *m, const char *key)
{
	bool found;
	size_t i = map_find(m, key, &found);
	return found ? m->items[i].value : NULL;
}

/* dst is treated as uninitialised: its old contents are not freed. */
void plait_map_copy(struct plait_map *dst, const struct plait_map *src)
{
	memset(dst, 0, sizeof(*dst));
	if (!src || !src->n)
		return;
	dst->items = xcalloc(src->n, sizeof(dst->items[0]));
	dst->alloc = src->n;
	for (size_t i = 0; i < src->n; i++) {
		dst->items[i].key = xstrdup(src->items[i].key);
		dst->items[i].value = xstrdup(src->items[i].value);
	}
	dst->n = src->n;
}

void plait_map_release(struct plait_map *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++) {
		free(m->items[i].key);
		free(m->items[i].value);
	}
	free(m->items);
	memset(m, 0, sizeof(*m));
}

/* ---- descriptor ---- */

void plait_descriptor_release(struct plait_descriptor *d)
{
	if (!d)
		return;
	free(d->media_type);
	plait_strv_free(d->urls);
	plait_map_release(&d->annotations);
	if (d->platform) {
		plait_platform_release(d->platform);
		free(d->platform);
	}
	free(d->artifact_type);
	free(d->data);
	memset(d, 0, sizeof(*d));
}

/* dst is treated as uninitialised: its old contents are not freed. */
void plait_descriptor_copy(struct plait_descriptor *dst, const struct plait_descriptor *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->media_type = xstrdup_or_null(src->media_type);
	memcpy(dst->digest, src->digest, sizeof(dst->digest));
	dst->digest[sizeof(dst->digest) - 1] = '\0';
	dst->size = src->size;
	dst->urls = plait_strv_copy(src->urls);
	plait_map_copy(&dst->annotations, &src->annotations);
	if (src->platform) {
		dst->platform = xcalloc(1, sizeof(*dst->platform));
		plait_platform_copy(dst->platform, src->platform);
	}
	dst->artifact_type = xstrdup_or_null(src->artifact_type);
	dst->data = xstrdup_or_null(src->data);
}

static void descriptors_free(struct plait_descriptor *d, size_t n)
{
	for (size_t i = 0; i < n; i++)
		plait_descriptor_release(&d[i]);
	free(d);
}

/* What a manifest and an index both have besides their descriptors. */
static void document_fields_release(char *media_type, char *artifact_type,
				    struct plait_descriptor *subject, struct plait_map *annotations)
{
	free(media_type);
	free(artifact_type);
	if (subject) {
		plait_descriptor_release(subject);
		free(subject);
	}
	plait_map_release(annotations);
}

void plait_manifest_release(struct plait_manifest *m)
{
	if (!m)
		return;
	plait_descriptor_release(&m->config);
	descriptors_free(m->layers, m->n_layers);
	document_fields_release(m->media_type, m->artifact_type, m->subject, &m->annotations);
	memset(m, 0, sizeof(*m));
}

void plait_index_release(struct plait_index *idx)
{
	if (!idx)
		return;
	descriptors_free(idx->manifests, idx->n_manifests);
	document_fields_release(idx->media_type, idx->artifact_type, idx->subject, &idx->annotations);
	memset(idx, 0, sizeof(*idx));
}

void plait_index_add(struct plait_index *idx, const struct plait_descriptor *d)
{
	/* manifests has no alloc field: grow to the exact size each time. */
	idx->manifests = xrealloc(idx->manifests, (idx->n_manifests + 1) * sizeof(*d));
	plait_descriptor_copy(&idx->manifests[idx->n_manifests], d);
	idx->n_manifests++;
}

static void container_config_release(struct plait_container_config *c)
{
	free(c->user);
	plait_strv_free(c->exposed_ports);
	plait_strv_free(c->env);
	plait_strv_free(c->entrypoint);
	plait_strv_free(c->cmd);
	plait_strv_free(c->volumes);
	free(c->working_dir);
	plait_map_release(&c->labels);
	free(c->stop_signal);
	plait_strv_free(c->shell);
	plait_strv_free(c->on_build);
	free(c->extra_json);
	memset(c, 0, sizeof(*c));
}

void plait_image_config_release(struct plait_image_config *c)
{
	if (!c)
		return;
	free(c->created);
	free(c->author);
	free(c->architecture);
	free(c->os);
	free(c->variant);
	free(c->os_version);
	container_config_release(&c->config);
	plait_strv_free(c->diff_ids);
	for (size_t i = 0; i < c->n_history; i++) {
		free(c->history[i].created);
		free(c->history[i].created_by);
		free(c->history[i].author);
		free(c->history[i].comment);
	}
	free(c->history);
	memset(c, 0, sizeof(*c));
}

/* ---- parsing ---- */

/* What is being parsed ("manifest", "index", "image config") and where
 * errors go. Every message reads "invalid <doc>: <path>: <problem>". */
struct pctx {
	const char *doc;
	struct plait_error **err;
};

/* "<prefix> <doc>: <path>.<key>: <message>", shared by parse and serialise errors. */
static int doc_fail(struct plait_error **err, const char *prefix, const char *doc, const char *path,
		    const char *key, const char *fmt, va_list ap)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s %s: ", prefix, doc);
	if (path && *path)
		plait_buf_adds(&b, path);
	if (key) {
		if (path && *path)
			plait_buf_addch(&b, '.');
		plait_buf_adds(&b, key);
	}
	if ((path && *path) || key)
		plait_buf_adds(&b, ": ");
	plait_buf_vaddf(&b, fmt, ap);
	int r = plait_error_set(err, PLAIT_E_INVALID, "%s", b.buf);
	plait_buf_release(&b);
	return r;
}

static int pfail(struct pctx *c, const char *path, const char *key, const char *fmt, ...)
    _printf_(4, 5);
static int pfail(struct pctx *c, const char *path, const char *key, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = doc_fail(c->err, "invalid", c->doc, path, key, fmt, ap);
	va_end(ap);
	return r;
}

static const char *json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number with a fraction";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	}
	return "something else";
}

/* Child path "parent.key" or "parent[i]". */
static void path_key(struct plait_buf *b, const char *parent, const char *key)
{
	plait_buf_reset(b);
	if (parent && *parent) {
		plait_buf_adds(b, parent);
		plait_buf_addch(b, '.');
	}
	plait_buf_adds(b, key);
}

static void path_index(struct plait_buf *b, const char *parent, const char *key, size_t i)
{
	plait_buf_reset(b);
	if (parent && *parent) {
		plait_buf_adds(b, parent);
		plait_buf_addch(b, '.');
	}
	plait_buf_addf(b, "%s[%zu]", key, i);
}

/* An optional member: JSON null counts as absent (Go writes null for nil). */
static json_t *member(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return v && !json_is_null(v) ? v : NULL;
}

static int get_str(struct pctx *c, json_t *obj, const char *path, const char *key, bool required,
		   char **out)
{
	json_t *v = member(obj, key);
	if (!v) {
		if (required)
			return pfail(c, path, key, "required field is missing");
		return 0;
	}
	if (!json_is_string(v))
		return pfail(c, path, key, "expected a string, got %s", json_type_name(v));
	*out = xstrndup(json_string_value(v), json_string_length(v));
	return 0;
}

static int get_bool(struct pctx *c, json_t *obj, const char *path, const char *key, bool *out)
{
	json_t *v = member(obj, key);
	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return pfail(c, path, key, "expected true or false, got %s", json_type_name(v));
	*out = json_is_true(v);
	return 0;
}

/* An array of strings; absent leaves *out NULL, [] gives an empty vector. */
static int get_strv(struct pctx *c, json_t *obj, const char *path, const char *key, char ***out)
{
	json_t *v = member(obj, key);
	if (!v)
		return 0;
	if (!json_is_array(v))
		return pfail(c, path, key, "expected an array of strings, got %s",
			     json_type_name(v));
	size_t n = json_array_size(v);
	char **r = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(v, i);
		if (!json_is_string(e)) {
			plait_strv_free(r);
			_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
			path_index(&p, path, key, i);
			return pfail(c, p.buf, NULL, "expected a string, got %s",
				     json_type_name(e));
		}
		r[i] = xstrndup(json_string_value(e), json_string_length(e));
	}
	*out = r;
	return 0;
}

/* The keys of an object such as ExposedPorts {"80/tcp":{}} (the values carry nothing). */
static int get_keys(struct pctx *c, json_t *obj, const char *path, const char *key, char ***out)
{
	json_t *v = member(obj, key);
	if (!v)
		return 0;
	if (!json_is_object(v))
		return pfail(c, path, key, "expected an object, got %s", json_type_name(v));
	/* Sorted, so that parse(serialise(x)) == x holds for documents in any order. */
	struct plait_map m = {0};
	const char *k;
	json_t *e;
	json_object_foreach(v, k, e)
	{
		plait_map_set(&m, k, "");
	}
	char **r = xcalloc(m.n + 1, sizeof(char *));
	for (size_t i = 0; i < m.n; i++)
		r[i] = TAKE_PTR(m.items[i].key);
	plait_map_release(&m);
	*out = r;
	return 0;
}

static int get_map(struct pctx *c, json_t *obj, const char *path, const char *key,
		   struct plait_map *out)
{
	json_t *v = member(obj, key);
	if (!v)
		return 0;
	if (!json_is_object(v))
		return pfail(c, path, key, "expected an object of strings, got %s",
			     json_type_name(v));
	const char *k;
	json_t *e;
	json_object_foreach(v, k, e)
	{
		if (!json_is_string(e)) {
			_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
			path_key(&p, path, key);
			return pfail(c, p.buf, NULL, "'%s': expected a string value, got %s", k,
				     json_type_name(e));
		}
		plait_map_set(out, k, json_string_value(e));
	}
	return 0;
}

static int check_digest(struct pctx *c, const char *path, const char *key, const char *digest)
{
	_cleanup_error_ struct plait_error *e = NULL;
	if (plait_digest_validate(digest, &e) < 0)
		return pfail(c, path, key, "%s", e->msg);
	return 0;
}

static int parse_platform(struct pctx *c, json_t *v, const char *path, struct plait_platform **out)
{
	if (!json_is_object(v))
		return pfail(c, path, NULL, "expected an object, got %s", json_type_name(v));
	struct plait_platform *p = xcalloc(1, sizeof(*p));
	int r;
	if ((r = get_str(c, v, path, "architecture", true, &p->architecture)) < 0 ||
	    (r = get_str(c, v, path, "os", true, &p->os)) < 0 ||
	    (r = get_str(c, v, path, "os.version", false, &p->os_version)) < 0 ||
	    (r = get_strv(c, v, path, "os.features", &p->os_features)) < 0 ||
	    (r = get_str(c, v, path, "variant", false, &p->variant)) < 0) {
		plait_platform_release(p);
		free(p);
		return r;
	}
	*out = p;
	return 0;
}

/* d must be zeroed; on failure it may hold partial data for the caller to release. */
static int parse_descriptor(struct pctx *c, json_t *v, const char *path, struct plait_descriptor *d)
{
	if (!json_is_object(v))
		return pfail(c, path, NULL, "expected a descriptor object, got %s",
			     json_type_name(v));
	int r;
	if ((r = get_str(c, v, path, "mediaType", true, &d->media_type)) < 0)
		return r;

	json_t *dg = member(v, "digest");
	if (!dg)
		return pfail(c, path, "digest", "required field is missing");
	if (!json_is_string(dg))
		return pfail(c, path, "digest", "expected a string, got %s", json_type_name(dg));
	if ((r = check_digest(c, path, "digest", json_string_value(dg))) < 0)
		return r;
	/* Validated digests are at most 135 characters, so this fits. */
	memcpy(d->digest, json_string_value(dg), strlen(json_string_value(dg)) + 1);

	json_t *sz = member(v, "size");
	if (!sz)
		return pfail(c, path, "size", "required field is missing");
	if (!json_is_integer(sz))
		return pfail(c, path, "size", "expected an integer, got %s", json_type_name(sz));
	if (json_integer_value(sz) < 0)
		return pfail(c, path, "size", "%lld is negative",
			     (long long)json_integer_value(sz));
	d->size = json_integer_value(sz);

	if ((r = get_strv(c, v, path, "urls", &d->urls)) < 0 ||
	    (r = get_map(c, v, path, "annotations", &d->annotations)) < 0 ||
	    (r = get_str(c, v, path, "data", false, &d->data)) < 0 ||
	    (r = get_str(c, v, path, "artifactType", false, &d->artifact_type)) < 0)
		return r;

	json_t *pl = member(v, "platform");
	if (pl) {
		_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
		path_key(&p, path, "platform");
		if ((r = parse_platform(c, pl, p.buf, &d->platform)) < 0)
			return r;
	}
	return 0;
}

static int parse_descriptor_array(struct pctx *c, json_t *obj, const char *key,
				  struct plait_descriptor **out, size_t *n_out)
{
	json_t *v = member(obj, key);
	if (!v)
		return pfail(c, NULL, key, "required field is missing");
	if (!json_is_array(v))
		return pfail(c, NULL, key, "expected an array, got %s", json_type_name(v));
	size_t n = json_array_size(v);
	struct plait_descriptor *d = xcalloc(n ? n : 1, sizeof(*d));
	_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
	for (size_t i = 0; i < n; i++) {
		path_index(&p, NULL, key, i);
		int r = parse_descriptor(c, json_array_get(v, i), p.buf, &d[i]);
		if (r < 0) {
			descriptors_free(d, i + 1);
			return r;
		}
	}
	*out = d;
	*n_out = n;
	return 0;
}

static int parse_subject(struct pctx *c, json_t *obj, struct plait_descriptor **out)
{
	json_t *v = member(obj, "subject");
	if (!v)
		return 0;
	struct plait_descriptor *d = xcalloc(1, sizeof(*d));
	int r = parse_descriptor(c, v, "subject", d);
	if (r < 0) {
		plait_descriptor_release(d);
		free(d);
		return r;
	}
	*out = d;
	return 0;
}

/* Size check, JSON syntax, top-level object. */
static int load_document(struct pctx *c, const char *data, size_t len, json_t **out)
{
	if (len > PLAIT_MANIFEST_MAX)
		return plait_error_set(c->err, PLAIT_E_INVALID,
				       "invalid %s: %s is %zu bytes, larger than the 4 MiB limit",
				       c->doc, c->doc, len);
	json_error_t jerr;
	/* Duplicate keys make a document mean different things to different
	 * parsers; refuse them rather than pick one. */
	json_t *root =
	    json_loadb(data ? data : "", len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!root)
		return plait_error_set(c->err, PLAIT_E_INVALID,
				       "invalid %s: not valid JSON at line %d column %d: %s",
				       c->doc, jerr.line, jerr.column, jerr.text);
	if (!json_is_object(root)) {
		int r =
		    pfail(c, NULL, NULL, "expected a JSON object, got %s", json_type_name(root));
		json_decref(root);
		return r;
	}
	*out = root;
	return 0;
}

static int check_schema_version(struct pctx *c, json_t *root, int *out)
{
	json_t *v = json_object_get(root, "schemaVersion");
	if (!v)
		return pfail(c, NULL, "schemaVersion", "required field is missing");
	if (!json_is_integer(v))
		return pfail(c, NULL, "schemaVersion", "expected the integer 2, got %s",
			     json_type_name(v));
	if (json_integer_value(v) != 2)
		return pfail(c, NULL, "schemaVersion", "%lld is not supported (expected 2)",
			     (long long)json_integer_value(v));
	*out = 2;
	return 0;
}

/* The members a manifest and an index both start with: the JSON object in
 * *root, schemaVersion, mediaType (refused when is_other says it names the
 * other kind of document: "'<type>' is <other>") and artifactType. */
static int parse_document_head(struct pctx *c, const char *data, size_t len, json_t **root,
			       int *schema_version, char **media_type, char **artifact_type,
			       bool (*is_other)(enum plait_media_type), const char *other)
{
	int r = load_document(c, data, len, root);
	if (r < 0)
		return r;
	if ((r = check_schema_version(c, *root, schema_version)) < 0 ||
	    (r = get_str(c, *root, NULL, "mediaType", false, media_type)) < 0)
		return r;
	if (*media_type && is_other(plait_media_type_from_string(*media_type)))
		return pfail(c, NULL, "mediaType", "'%s' is %s", *media_type, other);
	return get_str(c, *root, NULL, "artifactType", false, artifact_type);
}

int plait_manifest_parse(const char *data, size_t len, struct plait_manifest *out,
			 struct plait_error **err)
{
	struct pctx c = {.doc = "manifest", .err = err};
	memset(out, 0, sizeof(*out));
	json_auto_t *root = NULL;
	int r = parse_document_head(&c, data, len, &root, &out->schema_version, &out->media_type,
				    &out->artifact_type, plait_media_type_is_index,
				    "an image index, not a manifest");
	if (r < 0)
		goto fail;
	json_t *cfg = member(root, "config");
	if (!cfg) {
		r = pfail(&c, NULL, "config", "required field is missing");
		goto fail;
	}
	if ((r = parse_descriptor(&c, cfg, "config", &out->config)) < 0 ||
	    (r = parse_descriptor_array(&c, root, "layers", &out->layers, &out->n_layers)) < 0 ||
	    (r = parse_subject(&c, root, &out->subject)) < 0 ||
	    (r = get_map(&c, root, NULL, "annotations", &out->annotations)) < 0)
		goto fail;
	return 0;
fail:
	plait_manifest_release(out);
	return r;
}

int plait_index_parse(const char *data, size_t len, struct plait_index *out,
		      struct plait_error **err)
{
	struct pctx c = {.doc = "index", .err = err};
	memset(out, 0, sizeof(*out));
	json_auto_t *root = NULL;
	int r = parse_document_head(&c, data, len, &root, &out->schema_version, &out->media_type,
				    &out->artifact_type, plait_media_type_is_manifest,
				    "an image manifest, not an index");
	if (r < 0 ||
	    (r = parse_descriptor_array(&c, root, "manifests", &out->manifests,
					&out->n_manifests)) < 0 ||
	    (r = parse_subject(&c, root, &out->subject)) < 0 ||
	    (r = get_map(&c, root, NULL, "annotations", &out->annotations)) < 0)
		goto fail;
	return 0;
fail:
	plait_index_release(out);
	return r;
}

/* Members of the container config that plait models; the rest go to extra_json. */
static const char *const container_config_known[] = {
    "User",	  "ExposedPorts", "Env",	"Entrypoint", "Cmd",	 "Volumes",
    "WorkingDir", "Labels",	  "StopSignal", "Shell",      "OnBuild", "ArgsEscaped",
};

static bool is_known_container_key(const char *k)
{
	for (size_t i = 0; i < ARRAY_SIZE(container_config_known); i++)
		if (streq(container_config_known[i], k))
			return true;
	return false;
}

/* A deep copy of v whose objects have their members in key order, so that
 * what we dump does not depend on the order a document happened to use. */
static json_t *sorted_copy(json_t *v)
{
	if (json_is_object(v)) {
		size_t n = json_object_size(v), i = 0;
		_cleanup_free_ const char **keys = xcalloc(n ? n : 1, sizeof(char *));
		const char *k;
		json_t *e;
		json_object_foreach(v, k, e)
		{
			keys[i++] = k;
		}
		/* Insertion sort: these objects are small. */
		for (size_t a = 1; a < n; a++)
			for (size_t b = a; b > 0 && strcmp(keys[b - 1], keys[b]) > 0; b--) {
				const char *t = keys[b];
				keys[b] = keys[b - 1];
				keys[b - 1] = t;
			}
		json_t *o = json_object();
		if (!o)
			plait_die_oom();
		for (i = 0; i < n; i++) {
			json_t *cv = sorted_copy(json_object_get(v, keys[i]));
			if (json_object_set_new_nocheck(o, keys[i], cv) < 0)
				plait_die_oom();
		}
		return o;
	}
	if (json_is_array(v)) {
		json_t *a = json_array();
		if (!a)
			plait_die_oom();
		for (size_t i = 0; i < json_array_size(v); i++)
			if (json_array_append_new(a, sorted_copy(json_array_get(v, i))) < 0)
				plait_die_oom();
		return a;
	}
	json_t *r = json_deep_copy(v);
	if (!r)
		plait_die_oom();
	return r;
}

static int parse_container_config(struct pctx *c, json_t *v, struct plait_container_config *cc)
{
	const char *path = "config";
	if (!json_is_object(v))
		return pfail(c, path, NULL, "expected an object, got %s", json_type_name(v));
	int r;
	if ((r = get_str(c, v, path, "User", false, &cc->user)) < 0 ||
	    (r = get_keys(c, v, path, "ExposedPorts", &cc->exposed_ports)) < 0 ||
	    (r = get_strv(c, v, path, "Env", &cc->env)) < 0 ||
	    (r = get_strv(c, v, path, "Entrypoint", &cc->entrypoint)) < 0 ||
	    (r = get_strv(c, v, path, "Cmd", &cc->cmd)) < 0 ||
	    (r = get_keys(c, v, path, "Volumes", &cc->volumes)) < 0 ||
	    (r = get_str(c, v, path, "WorkingDir", false, &cc->working_dir)) < 0 ||
	    (r = get_map(c, v, path, "Labels", &cc->labels)) < 0 ||
	    (r = get_str(c, v, path, "StopSignal", false, &cc->stop_signal)) < 0 ||
	    (r = get_strv(c, v, path, "Shell", &cc->shell)) < 0 ||
	    (r = get_strv(c, v, path, "OnBuild", &cc->on_build)) < 0 ||
	    (r = get_bool(c, v, path, "ArgsEscaped", &cc->args_escaped)) < 0)
		return r;

	json_auto_t *extra = json_object();
	if (!extra)
		plait_die_oom();
	const char *k;
	json_t *e;
	json_object_foreach(v, k, e)
	{
		if (is_known_container_key(k))
			continue;
		if (json_object_set_new_nocheck(extra, k, json_incref(e)) < 0)
			plait_die_oom();
	}
	if (json_object_size(extra)) {
		json_auto_t *sorted = sorted_copy(extra);
		cc->extra_json = json_dumps(sorted, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (!cc->extra_json)
			plait_die_oom();
	}
	return 0;
}

static int parse_history(struct pctx *c, json_t *root, struct plait_image_config *out)
{
	json_t *v = member(root, "history");
	if (!v)
		return 0;
	if (!json_is_array(v))
		return pfail(c, NULL, "history", "expected an array, got %s", json_type_name(v));
	size_t n = json_array_size(v);
	out->history = xcalloc(n ? n : 1, sizeof(*out->history));
	out->n_history = n;
	_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(v, i);
		struct plait_history *h = &out->history[i];
		path_index(&p, NULL, "history", i);
		if (!json_is_object(e))
			return pfail(c, p.buf, NULL, "expected an object, got %s",
				     json_type_name(e));
		int r;
		if ((r = get_str(c, e, p.buf, "created", false, &h->created)) < 0 ||
		    (r = get_str(c, e, p.buf, "created_by", false, &h->created_by)) < 0 ||
		    (r = get_str(c, e, p.buf, "author", false, &h->author)) < 0 ||
		    (r = get_str(c, e, p.buf, "comment", false, &h->comment)) < 0 ||
		    (r = get_bool(c, e, p.buf, "empty_layer", &h->empty_layer)) < 0)
			return r;
	}
	return 0;
}

static int parse_rootfs(struct pctx *c, json_t *root, struct plait_image_config *out)
{
	json_t *rootfs = member(root, "rootfs");
	if (!rootfs)
		return pfail(c, NULL, "rootfs", "required field is missing");
	if (!json_is_object(rootfs))
		return pfail(c, NULL, "rootfs", "expected an object, got %s",
			     json_type_name(rootfs));
	_cleanup_free_ char *type = NULL;
	int r = get_str(c, rootfs, "rootfs", "type", true, &type);
	if (r < 0)
		return r;
	if (!streq(type, "layers"))
		return pfail(c, "rootfs", "type", "'%s' is not supported (expected 'layers')",
			     type);
	if ((r = get_strv(c, rootfs, "rootfs", "diff_ids", &out->diff_ids)) < 0)
		return r;
	if (!out->diff_ids)
		return pfail(c, "rootfs", "diff_ids", "required field is missing");
	_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
	for (size_t i = 0; out->diff_ids[i]; i++) {
		path_index(&p, "rootfs", "diff_ids", i);
		if ((r = check_digest(c, p.buf, NULL, out->diff_ids[i])) < 0)
			return r;
	}
	return 0;
}

int plait_image_config_parse(const char *data, size_t len, struct plait_image_config *out,
			     struct plait_error **err)
{
	struct pctx c = {.doc = "image config", .err = err};
	memset(out, 0, sizeof(*out));
	json_auto_t *root = NULL;
	int r = load_document(&c, data, len, &root);
	if (r < 0)
		return r;
	if ((r = get_str(&c, root, NULL, "created", false, &out->created)) < 0 ||
	    (r = get_str(&c, root, NULL, "author", false, &out->author)) < 0 ||
	    (r = get_str(&c, root, NULL, "architecture", true, &out->architecture)) < 0 ||
	    (r = get_str(&c, root, NULL, "os", true, &out->os)) < 0 ||
	    (r = get_str(&c, root, NULL, "os.version", false, &out->os_version)) < 0 ||
	    (r = get_str(&c, root, NULL, "variant", false, &out->variant)) < 0)
		goto fail;

	json_t *cfg = member(root, "config");
	if (cfg && (r = parse_container_config(&c, cfg, &out->config)) < 0)
		goto fail;

	if ((r = parse_rootfs(&c, root, out)) < 0)
		goto fail;
	if ((r = parse_history(&c, root, out)) < 0)
		goto fail;
	return 0;
fail:
	plait_image_config_release(out);
	return r;
}

enum plait_media_type plait_oci_sniff(const char *data, size_t len)
{
	if (!data || len > PLAIT_MANIFEST_MAX)
		return PLAIT_MT_UNKNOWN;
	json_auto_t *root = json_loadb(data, len, 0, NULL);
	if (!json_is_object(root))
		return PLAIT_MT_UNKNOWN;
	json_t *mt = json_object_get(root, "mediaType");
	if (json_is_string(mt)) {
		enum plait_media_type t = plait_media_type_from_string(json_string_value(mt));
		if (t != PLAIT_MT_UNKNOWN)
			return t;
	}
	if (json_is_array(json_object_get(root, "manifests")))
		return PLAIT_MT_OCI_INDEX;
	if (json_is_object(json_object_get(root, "config")) &&
	    json_is_array(json_object_get(root, "layers")))
		return PLAIT_MT_OCI_MANIFEST;
	return PLAIT_MT_UNKNOWN;
}

/* ---- serialising ---- */

/* Every message reads "cannot serialise <doc>: <path>: <problem>". */
struct sctx {
	const char *doc;
	struct plait_error **err;
};

static int sfail(struct sctx *c, const char *path, const char *key, const char *fmt, ...)
    _printf_(4, 5);
static int sfail(struct sctx *c, const char *path, const char *key, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = doc_fail(c->err, "cannot serialise", c->doc, path, key, fmt, ap);
	va_end(ap);
	return r;
}

static json_t *jobj(void)
{
	json_t *o = json_object();
	if (!o)
		plait_die_oom();
	return o;
}

static json_t *jarr(void)
{
	json_t *a = json_array();
	if (!a)
		plait_die_oom();
	return a;
}

/* Set obj[key] = v (stolen). v is NULL only when json_string() refused
 * invalid UTF-8; keys are ours or came from a map, so check them too. */
static int put(struct sctx *c, json_t *obj, const char *path, const char *key, json_t *v)
{
	if (!v)
		return sfail(c, path, key, "value is not valid UTF-8");
	if (json_object_set_new(obj, key, v) < 0)
		return sfail(c, path, key, "key is not valid UTF-8");
	return 0;
}

static int put_str(struct sctx *c, json_t *obj, const char *path, const char *key, const char *s)
{
	if (!s)
		return 0;
	return put(c, obj, path, key, json_string(s));
}

static int put_strv(struct sctx *c, json_t *obj, const char *path, const char *key, char *const *v)
{
	if (!v)
		return 0;
	json_t *a = jarr();
	for (size_t i = 0; v[i]; i++) {
		json_t *s = json_string(v[i]);
		if (!s) {
			json_decref(a);
			_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
			path_index(&p, path, key, i);
			return sfail(c, p.buf, NULL, "value is not valid UTF-8");
		}
		json_array_append_new(a, s);
	}
	return put(c, obj, path, key, a);
}

/* {"80/tcp":{}, ...}, keys sorted. */
static int put_keys(struct sctx *c, json_t *obj, const char *path, const char *key, char *const *v)
{
	if (!v)
		return 0;
	struct plait_map m = {0};
	for (size_t i = 0; v[i]; i++)
		plait_map_set(&m, v[i], "");
	json_t *o = jobj();
	int r = 0;
	for (size_t i = 0; i < m.n && r == 0; i++)
		r = put(c, o, path, m.items[i].key, jobj());
	plait_map_release(&m);
	if (r < 0) {
		json_decref(o);
		return r;
	}
	return put(c, obj, path, key, o);
}

static int put_map(struct sctx *c, json_t *obj, const char *path, const char *key,
		   const struct plait_map *m)
{
	if (!m->n)
		return 0;
	_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
	path_key(&p, path, key);
	json_t *o = jobj();
	for (size_t i = 0; i < m->n; i++) {
		int r = put(c, o, p.buf, m->items[i].key, json_string(m->items[i].value));
		if (r < 0) {
			json_decref(o);
			return r;
		}
	}
	return put(c, obj, path, key, o);
}

static int build_platform(struct sctx *c, const struct plait_platform *pl, const char *path,
			  json_t **out)
{
	if (!pl->architecture)
		return sfail(c, path, "architecture", "required field is missing");
	if (!pl->os)
		return sfail(c, path, "os", "required field is missing");
	json_auto_t *o = jobj();
	int r;
	if ((r = put_str(c, o, path, "architecture", pl->architecture)) < 0 ||
	    (r = put_str(c, o, path, "os", pl->os)) < 0 ||
	    (r = put_str(c, o, path, "os.version", pl->os_version)) < 0 ||
	    (r = put_strv(c, o, path, "os.features", pl->os_features)) < 0 ||
	    (r = put_str(c, o, path, "variant", pl->variant)) < 0)
		return r;
	*out = TAKE_PTR(o);
	return 0;
}

static int build_descriptor(struct sctx *c, const struct plait_descriptor *d, const char *path,
			    json_t **out)
{
	if (!d->media_type)
		return sfail(c, path, "mediaType", "required field is missing");
	_cleanup_error_ struct plait_error *e = NULL;
	if (plait_digest_validate(d->digest, &e) < 0)
		return sfail(c, path, "digest", "%s", e->msg);
	if (d->size < 0)
		return sfail(c, path, "size", "%lld is negative", (long long)d->size);

	json_auto_t *o = jobj();
	int r;
	if ((r = put_str(c, o, path, "mediaType", d->media_type)) < 0 ||
	    (r = put_str(c, o, path, "digest", d->digest)) < 0 ||
	    (r = put(c, o, path, "size", json_integer(d->size))) < 0 ||
	    (r = put_strv(c, o, path, "urls", d->urls)) < 0 ||
	    (r = put_map(c, o, path, "annotations", &d->annotations)) < 0 ||
	    (r = put_str(c, o, path, "data", d->data)) < 0)
		return r;
	if (d->platform) {
		_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
		path_key(&p, path, "platform");
		json_t *pl = NULL;
		if ((r = build_platform(c, d->platform, p.buf, &pl)) < 0 ||
		    (r = put(c, o, path, "platform", pl)) < 0)
			return r;
	}
	if ((r = put_str(c, o, path, "artifactType", d->artifact_type)) < 0)
		return r;
	*out = TAKE_PTR(o);
	return 0;
}

static int put_descriptors(struct sctx *c, json_t *obj, const char *key,
			   const struct plait_descriptor *d, size_t n)
{
	json_auto_t *a = jarr();
	_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
	for (size_t i = 0; i < n; i++) {
		path_index(&p, NULL, key, i);
		json_t *o = NULL;
		int r = build_descriptor(c, &d[i], p.buf, &o);
		if (r < 0)
			return r;
		json_array_append_new(a, o);
	}
	return put(c, obj, NULL, key, TAKE_PTR(a));
}

static int put_descriptor(struct sctx *c, json_t *obj, const char *key,
			  const struct plait_descriptor *d)
{
	json_t *o = NULL;
	int r = build_descriptor(c, d, key, &o);
	if (r < 0)
		return r;
	return put(c, obj, NULL, key, o);
}

static int dump_cb(const char *buffer, size_t size, void *data)
{
	plait_buf_add(data, buffer, size);
	return 0;
}

/* Compact, members in insertion order (which the builders above fix). */
static int check_schema(struct sctx *c, int v)
{
	if (v != 0 && v != 2)
		return sfail(c, NULL, "schemaVersion", "%d is not supported (expected 2)", v);
	return 0;
}

static void dump(json_t *root, struct plait_buf *out)
{
	if (json_dump_callback(root, dump_cb, out, JSON_COMPACT | JSON_PRESERVE_ORDER) < 0)
		plait_die_oom();
}

/* The members a manifest and an index both start with (schemaVersion, 0
 * meaning 2; mediaType; artifactType) into root. */
static int put_document_head(struct sctx *c, json_t *root, int schema_version,
			     const char *media_type, const char *artifact_type)
{
	int r;
	if ((r = put(c, root, NULL, "schemaVersion",
		     json_integer(schema_version ? schema_version : 2))) < 0 ||
	    (r = put_str(c, root, NULL, "mediaType", media_type)) < 0)
		return r;
	return put_str(c, root, NULL, "artifactType", artifact_type);
}

/* And the members both end with: subject (when there is one), annotations. */
static int put_document_tail(struct sctx *c, json_t *root, const struct plait_descriptor *subject,
			     const struct plait_map *annotations)
{
	int r;
	if (subject && (r = put_descriptor(c, root, "subject", subject)) < 0)
		return r;
	return put_map(c, root, NULL, "annotations", annotations);
}

int plait_manifest_serialise(const struct plait_manifest *m, struct plait_buf *out,
			     struct plait_error **err)
{
	struct sctx c = {.doc = "manifest", .err = err};
	int r = check_schema(&c, m->schema_version);
	if (r < 0)
		return r;
	json_auto_t *root = jobj();
	if ((r = put_document_head(&c, root, m->schema_version, m->media_type, m->artifact_type)) < 0 ||
	    (r = put_descriptor(&c, root, "config", &m->config)) < 0 ||
	    (r = put_descriptors(&c, root, "layers", m->layers, m->n_layers)) < 0 ||
	    (r = put_document_tail(&c, root, m->subject, &m->annotations)) < 0)
		return r;
	dump(root, out);
	return 0;
}

int plait_index_serialise(const struct plait_index *idx, struct plait_buf *out,
			  struct plait_error **err)
{
	struct sctx c = {.doc = "index", .err = err};
	int r = check_schema(&c, idx->schema_version);
	if (r < 0)
		return r;
	json_auto_t *root = jobj();
	if ((r = put_document_head(&c, root, idx->schema_version, idx->media_type,
				   idx->artifact_type)) < 0 ||
	    (r = put_descriptors(&c, root, "manifests", idx->manifests, idx->n_manifests)) < 0 ||
	    (r = put_document_tail(&c, root, idx->subject, &idx->annotations)) < 0)
		return r;
	dump(root, out);
	return 0;
}

static int build_container_config(struct sctx *c, const struct plait_container_config *cc,
				  json_t **out)
{
	const char *path = "config";
	json_auto_t *o = jobj();
	int r;
	if ((r = put_str(c, o, path, "User", cc->user)) < 0 ||
	    (r = put_keys(c, o, path, "ExposedPorts", cc->exposed_ports)) < 0 ||
	    (r = put_strv(c, o, path, "Env", cc->env)) < 0 ||
	    (r = put_strv(c, o, path, "Entrypoint", cc->entrypoint)) < 0 ||
	    (r = put_strv(c, o, path, "Cmd", cc->cmd)) < 0 ||
	    (r = put_keys(c, o, path, "Volumes", cc->volumes)) < 0 ||
	    (r = put_str(c, o, path, "WorkingDir", cc->working_dir)) < 0 ||
	    (r = put_map(c, o, path, "Labels", &cc->labels)) < 0 ||
	    (r = put_str(c, o, path, "StopSignal", cc->stop_signal)) < 0 ||
	    (r = put_strv(c, o, path, "Shell", cc->shell)) < 0 ||
	    (r = put_strv(c, o, path, "OnBuild", cc->on_build)) < 0)
		return r;
	if (cc->args_escaped && (r = put(c, o, path, "ArgsEscaped", json_true())) < 0)
		return r;
	if (cc->extra_json && *cc->extra_json) {
		json_error_t jerr;
		json_auto_t *extra = json_loads(cc->extra_json, JSON_REJECT_DUPLICATES, &jerr);
		if (!extra)
			return sfail(c, path, NULL, "extra_json is not valid JSON: %s", jerr.text);
		if (!json_is_object(extra))
			return sfail(c, path, NULL, "extra_json is %s, not an object",
				     json_type_name(extra));
		json_auto_t *sorted = sorted_copy(extra);
		const char *k;
		json_t *e;
		json_object_foreach(sorted, k, e)
		{
			/* The modelled fields win: extra_json must not smuggle in a second Cmd. */
			if (is_known_container_key(k))
				continue;
			if ((r = put(c, o, path, k, json_incref(e))) < 0)
				return r;
		}
	}
	*out = TAKE_PTR(o);
	return 0;
}

int plait_image_config_serialise(const struct plait_image_config *cfg, struct plait_buf *out,
				 struct plait_error **err)
{
	struct sctx c = {.doc = "image config", .err = err};
	if (!cfg->architecture)
		return sfail(&c, NULL, "architecture", "required field is missing");
	if (!cfg->os)
		return sfail(&c, NULL, "os", "required field is missing");
	json_auto_t *root = jobj();
	int r;
	if ((r = put_str(&c, root, NULL, "created", cfg->created)) < 0 ||
	    (r = put_str(&c, root, NULL, "author", cfg->author)) < 0 ||
	    (r = put_str(&c, root, NULL, "architecture", cfg->architecture)) < 0 ||
	    (r = put_str(&c, root, NULL, "os", cfg->os)) < 0 ||
	    (r = put_str(&c, root, NULL, "os.version", cfg->os_version)) < 0 ||
	    (r = put_str(&c, root, NULL, "variant", cfg->variant)) < 0)
		return r;

	json_t *cc = NULL;
	if ((r = build_container_config(&c, &cfg->config, &cc)) < 0 ||
	    (r = put(&c, root, NULL, "config", cc)) < 0)
		return r;

	json_t *rootfs = jobj();
	if ((r = put(&c, root, NULL, "rootfs", rootfs)) < 0 ||
	    (r = put_str(&c, rootfs, "rootfs", "type", "layers")) < 0)
		return r;
	json_t *ids = jarr();
	if ((r = put(&c, rootfs, "rootfs", "diff_ids", ids)) < 0)
		return r;
	_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
	for (size_t i = 0; cfg->diff_ids && cfg->diff_ids[i]; i++) {
		_cleanup_error_ struct plait_error *e = NULL;
		if (plait_digest_validate(cfg->diff_ids[i], &e) < 0) {
			path_index(&p, "rootfs", "diff_ids", i);
			return sfail(&c, p.buf, NULL, "%s", e->msg);
		}
		json_array_append_new(ids, json_string(cfg->diff_ids[i]));
	}

	if (cfg->n_history) {
		json_t *hist = jarr();
		if ((r = put(&c, root, NULL, "history", hist)) < 0)
			return r;
		for (size_t i = 0; i < cfg->n_history; i++) {
			const struct plait_history *h = &cfg->history[i];
			path_index(&p, NULL, "history", i);
			json_t *o = jobj();
			json_array_append_new(hist, o);
			if ((r = put_str(&c, o, p.buf, "created", h->created)) < 0 ||
			    (r = put_str(&c, o, p.buf, "created_by", h->created_by)) < 0 ||
			    (r = put_str(&c, o, p.buf, "author", h->author)) < 0 ||
			    (r = put_str(&c, o, p.buf, "comment", h->comment)) < 0)
				return r;
			if (h->empty_layer &&
			    (r = put(&c, o, p.buf, "empty_layer", json_true())) < 0)
				return r;
		}
	}
	dump(root, out);
	return 0;
}
