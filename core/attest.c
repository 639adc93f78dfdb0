/* core/attest.c - SLSA provenance statements, the git source of a context,
 * and referrer artifact manifests; see attest.h. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attest.h"
#include "digest.h"
#include "fs.h"
#include "lint.h"
#include "oci.h"
#include "sbom.h"
#include "ref.h"
#include "strv.h"
#include "timestamp.h"
#include "util.h"

#include "plait-config.h"
#include "banned.h"

/* ------------------------------------------------------------ git */

void plait_git_source_release(struct plait_git_source *g)
{
	if (!g)
		return;
	free(g->commit);
	free(g->remote);
	free(g->subdir);
	memset(g, 0, sizeof(*g));
}

static char *read_small(const char *dir, const char *name)
{
	_cleanup_free_ char *p = plait_path_join(dir, name);
	struct plait_buf b = PLAIT_BUF_INIT;
	if (plait_buf_read_file(&b, p, 1u << 20) < 0) {
		plait_buf_release(&b);
		return NULL;
	}
	return b.buf;
}

static void trim(char *s)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
}

static bool is_hex_id(const char *s)
{
	size_t n = strlen(s);
	if (n != 40 && n != 64)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

/* The commit a ref names: its loose file, else packed-refs; a symbolic ref
 * is followed a few times at most. */
static char *resolve_ref(const char *gitdir, const char *common, const char *ref, int depth)
{
	if (depth > 4 || strstr(ref, "..") || ref[0] == '/')
		return NULL;
	char *v = read_small(common, ref);
	if (!v)
		v = read_small(gitdir, ref);
	if (v) {
		trim(v);
		char *r = is_hex_id(v) ? xstrdup(v)
			  : startswith(v, "ref: ") ? resolve_ref(gitdir, common, v + 5, depth + 1)
						  : NULL;
		free(v);
		return r;
	}
	_cleanup_free_ char *packed = read_small(common, "packed-refs");
	for (char *save = NULL, *l = packed ? strtok_r(packed, "\n", &save) : NULL; l;
	     l = strtok_r(NULL, "\n", &save)) {
		char *sp = strchr(l, ' ');
		if (!sp || l[0] == '#' || l[0] == '^')
			continue;
		*sp = '\0';
		trim(sp + 1);
		if (streq(sp + 1, ref) && is_hex_id(l))
			return xstrdup(l);
	}
	return NULL;
}

char *plait_url_strip_credentials(const char *url)
{
	const char *scheme = strstr(url, "://");
	if (!scheme)
		return xstrdup(url); /* scp-like git@host:path: the user is no secret */
	const char *host = scheme + 3;
	const char *end = host + strcspn(host, "/");
	const char *at = NULL;
	for (const char *p = host; p < end; p++)
		if (*p == '@')
			at = p;
	if (!at)
		return xstrdup(url);
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%.*s%s", (int)(host - url), url, at + 1);
	return b.buf;
}

/* The url of [remote "origin"] in config, else of the first remote. */
static char *remote_url(const char *common)
{
	_cleanup_free_ char *cfg = read_small(common, "config");
	_cleanup_free_ char *first = NULL, *origin = NULL;
	bool in_remote = false, is_origin = false;
	for (char *save = NULL, *l = cfg ? strtok_r(cfg, "\n", &save) : NULL; l; l = strtok_r(NULL, "\n", &save)) {
		while (*l == ' ' || *l == '\t')
			l++;
		trim(l);
		if (*l == '[') {
			in_remote = startswith(l, "[remote \"");
			is_origin = startswith(l, "[remote \"origin\"]");
			continue;
		}
		if (!in_remote || !startswith(l, "url"))
			continue;
		char *v = l + 3;
		while (*v == ' ' || *v == '\t')
			v++;
		if (*v != '=')
			continue;
		v++;
		while (*v == ' ' || *v == '\t')
			v++;
		size_t n = strlen(v);
		if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
			v[n - 1] = '\0';
			v++;
		}
		if (is_origin && !origin)
			origin = xstrdup(v);
		else if (!first)
			first = xstrdup(v);
	}
	const char *u = origin ? origin : first;
	return u ? plait_url_strip_credentials(u) : NULL;
}

int plait_git_source(const char *dir, struct plait_git_source *out)
{
	memset(out, 0, sizeof(*out));
	_cleanup_free_ char *abs = realpath(dir, NULL);
	if (!abs)
		return 0;
	/* the work tree's top: the nearest directory up with a .git */
	_cleanup_free_ char *top = xstrdup(abs);
	_cleanup_free_ char *gitdir = NULL;
	for (;;) {
		_cleanup_free_ char *dotgit = plait_path_join(top, ".git");
		struct stat st;
		if (lstat(dotgit, &st) == 0 && S_ISDIR(st.st_mode)) {
			gitdir = TAKE_PTR(dotgit);
			break;
		}
		if (lstat(dotgit, &st) == 0 && S_ISREG(st.st_mode)) {
			/* a linked work tree or submodule: "gitdir: PATH" */
			_cleanup_free_ char *v = read_small(top, ".git");
			if (!v || !startswith(v, "gitdir: "))
				return 0;
			trim(v);
			const char *p = v + strlen("gitdir: ");
			gitdir = p[0] == '/' ? xstrdup(p) : plait_path_join(top, p);
			break;
		}
		char *slash = strrchr(top, '/');
		if (!slash || slash == top)
			return 0;
		*slash = '\0';
	}
	/* a linked work tree keeps its refs and config in the common dir */
	_cleanup_free_ char *common = NULL;
	{
		_cleanup_free_ char *c = read_small(gitdir, "commondir");
		if (c) {
			trim(c);
			common = c[0] == '/' ? xstrdup(c) : plait_path_join(gitdir, c);
		} else {
			common = xstrdup(gitdir);
		}
	}
	_cleanup_free_ char *head = read_small(gitdir, "HEAD");
	if (!head)
		return 0;
	trim(head);
	char *commit = is_hex_id(head)		    ? xstrdup(head)
		       : startswith(head, "ref: ") ? resolve_ref(gitdir, common, head + 5, 0)
						    : NULL;
	if (!commit)
		return 0; /* an unborn branch: nothing committed yet */
	out->commit = commit;
	out->remote = remote_url(common);
	size_t tl = strlen(top);
	out->subdir = xstrdup(abs[tl] == '/' ? abs + tl + 1 : "");
	return 1;
}

/* ------------------------------------------------------------ provenance */

static json_t *digest_set(const char *digest)
{
	const char *colon = strchr(digest, ':');
	if (!colon)
		return json_object();
	json_t *o = json_object();
	_cleanup_free_ char *alg = xstrndup(digest, (size_t)(colon - digest));
	json_object_set_new(o, alg, json_string(colon + 1));
	return o;
}

/* pkg:docker/NAME@VERSION?platform=P, as BuildKit names its base images
 * (NAME without docker.io/library/; VERSION the tag, else the digest). */
static char *image_purl(const char *ref, const char *platform)
{
	struct plait_ref r = { 0 };
	struct plait_buf b = PLAIT_BUF_INIT;
	if (plait_ref_parse(ref, &r, NULL) < 0) {
		plait_buf_addf(&b, "pkg:docker/%s", ref);
	} else {
		plait_buf_adds(&b, "pkg:docker/");
		if (!streq(r.domain, "docker.io"))
			plait_buf_addf(&b, "%s/", r.domain);
		plait_buf_adds(&b, startswith(r.path, "library/") && streq(r.domain, "docker.io")
					   ? r.path + strlen("library/")
					   : r.path);
		if (r.tag || r.digest) {
			plait_buf_adds(&b, "@");
			plait_purl_escape(&b, r.tag ? r.tag : r.digest);
		}
	}
	if (platform) {
		plait_buf_adds(&b, "?platform=");
		plait_purl_escape(&b, platform);
	}
	plait_ref_release(&r);
	return b.buf;
}

/* in-toto subjects: one per name, all with the image's digest ("_" when unnamed). */
static json_t *subject_list(const char *const *names, const char *platform, const char *digest)
{
	json_t *subjects = json_array();
	for (const char *const *s = names; s && *s; s++) {
		json_t *o = json_object();
		_cleanup_free_ char *purl = image_purl(*s, platform);
		json_object_set_new(o, "name", json_string(purl));
		json_object_set_new(o, "digest", digest_set(digest));
		json_array_append_new(subjects, o);
	}
	if (!json_array_size(subjects)) {
		json_t *o = json_object();
		json_object_set_new(o, "name", json_string("_"));
		json_object_set_new(o, "digest", digest_set(digest));
		json_array_append_new(subjects, o);
	}
	return subjects;
}

static int dump(json_t *o, const char *what, struct plait_buf *out, struct plait_error **err)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	if (!s)
		return plait_error_set(err, PLAIT_E_GENERIC, "%s: cannot serialise it", what);
	plait_buf_reset(out);
	plait_buf_adds(out, s);
	free(s);
	return 0;
}

int plait_intoto_statement(const char *const *subjects, const char *platform, const char *digest,
			   const char *predicate_type, const char *predicate_json, struct plait_buf *out,
			   struct plait_error **err)
{
	json_t *pred = json_loads(predicate_json, 0, NULL);
	if (!json_is_object(pred)) {
		json_decref(pred);
		return plait_error_set(err, PLAIT_E_INVALID, "in-toto statement: the %s predicate is not a JSON object",
				       predicate_type);
	}
	json_t *st = json_object();
	json_object_set_new(st, "_type", json_string(PLAIT_INTOTO_STATEMENT));
	json_object_set_new(st, "predicateType", json_string(predicate_type));
	json_object_set_new(st, "subject", subject_list(subjects, platform, digest));
	json_object_set_new(st, "predicate", pred);
	return dump(st, "in-toto statement", out, err);
}

static char *rfc3339(int64_t t, const struct plait_provenance *p)
{
	char s[PLAIT_RFC3339_MAX];
	plait_rfc3339(p->have_epoch && t > p->epoch ? p->epoch : t, s);
	return xstrdup(s);
}

/* The Dockerfile as a path inside the context ("Dockerfile",
 * "docker/Dockerfile.cuda"), else its file name: never a host path. */
static char *dockerfile_path(const struct plait_provenance *p)
{
	if (!p->dockerfile)
		return xstrdup("Dockerfile");
	_cleanup_free_ char *ctx = realpath(p->context_dir, NULL), *df = realpath(p->dockerfile, NULL);
	size_t n = ctx ? strlen(ctx) : 0;
	if (ctx && df && strncmp(df, ctx, n) == 0 && df[n] == '/')
		return xstrdup(df + n + 1);
	const char *slash = strrchr(p->dockerfile, '/');
	return xstrdup(slash ? slash + 1 : p->dockerfile);
}

int plait_provenance_json(const struct plait_provenance *p, struct plait_buf *out, struct plait_error **err)
{
	const struct plait_build_result *res = p->res;
	json_t *st = json_object();
	json_object_set_new(st, "_type", json_string(PLAIT_INTOTO_STATEMENT));
	json_object_set_new(st, "predicateType", json_string(PLAIT_PROVENANCE_PREDICATE));
	json_object_set_new(st, "subject", subject_list(p->subjects, p->platform, p->subject_digest));

	/* buildDefinition.externalParameters: what the user asked for */
	json_t *ext = json_object(), *req = json_object(), *args = json_object(), *redacted = json_array();
	json_t *cfg = json_object();
	_cleanup_free_ char *dfpath = dockerfile_path(p);
	if (p->git) {
		struct plait_buf u = PLAIT_BUF_INIT;
		plait_buf_addf(&u, "%s%s@%s", p->git->remote ? "git+" : "", p->git->remote ? p->git->remote : "git",
			       p->git->commit);
		if (p->git->subdir && *p->git->subdir)
			plait_buf_addf(&u, "#%s", p->git->subdir);
		json_object_set_new(cfg, "uri", json_string(u.buf));
		plait_buf_release(&u);
	} else {
		json_object_set_new(cfg, "uri", json_string("local"));
	}
	json_object_set_new(cfg, "path", json_string(dfpath));
	json_object_set_new(cfg, "digest", digest_set(res->dockerfile_digest));
	json_object_set_new(ext, "configSource", cfg);
	if (p->target_name)
		json_object_set_new(req, "bakeTarget", json_string(p->target_name));
	if (p->stage)
		json_object_set_new(req, "target", json_string(p->stage));
	json_object_set_new(req, "platform", json_string(p->platform));
	if (p->variant)
		json_object_set_new(req, "variant", json_string(p->variant));
	for (const char *const *a = p->build_args; a && *a; a++) {
		const char *eq = strchr(*a, '=');
		_cleanup_free_ char *k = eq ? xstrndup(*a, (size_t)(eq - *a)) : xstrdup(*a);
		if (plait_lint_secret_name(k))
			json_array_append_new(redacted, json_string(k));
		else
			json_object_set_new(args, k, json_string(eq ? eq + 1 : ""));
	}
	json_object_set_new(req, "args", args);
	if (json_array_size(redacted))
		json_object_set_new(req, "redactedArgs", redacted);
	else
		json_decref(redacted);
	if (p->secret_ids && *p->secret_ids) {
		json_t *sec = json_array();
		for (const char *const *s = p->secret_ids; *s; s++)
			json_array_append_new(sec, json_string(*s));
		json_object_set_new(req, "secrets", sec);
	}
	json_object_set_new(ext, "request", req);

	json_t *intl = json_object();
	json_object_set_new(intl, "buildPlatform", json_string(p->build_platform));
	if (p->builder)
		json_object_set_new(intl, "builder", json_string(p->builder));
	if (p->have_epoch)
		json_object_set_new(intl, "sourceDateEpoch", json_integer(p->epoch));
	if (p->max) {
		json_t *steps = json_array();
		for (size_t i = 0; i < res->n_step_records; i++) {
			const struct plait_build_step_record *s = &res->step_records[i];
			json_t *o = json_object();
			json_object_set_new(o, "stage", json_string(s->stage));
			json_object_set_new(o, "instruction", json_string(s->text));
			json_object_set_new(o, "cached", json_boolean(s->cached));
			json_array_append_new(steps, o);
		}
		json_object_set_new(intl, "steps", steps);
	}

	/* resolved dependencies: the commit, every image, every URL */
	json_t *deps = json_array();
	if (p->git) {
		json_t *o = json_object(), *d = json_object();
		struct plait_buf u = PLAIT_BUF_INIT;
		plait_buf_addf(&u, "%s%s@%s", p->git->remote ? "git+" : "", p->git->remote ? p->git->remote : "git",
			       p->git->commit);
		json_object_set_new(o, "uri", json_string(u.buf));
		json_object_set_new(d, "gitCommit", json_string(p->git->commit));
		json_object_set_new(o, "digest", d);
		json_object_set_new(o, "name", json_string("context"));
		json_array_append_new(deps, o);
		plait_buf_release(&u);
	}
	for (size_t i = 0; i < res->n_materials; i++) {
		const struct plait_build_material *m = &res->materials[i];
		json_t *o = json_object();
		if (m->platform) {
			_cleanup_free_ char *purl = image_purl(m->ref, m->platform);
			json_object_set_new(o, "uri", json_string(purl));
			json_object_set_new(o, "name", json_string(m->ref));
			json_t *ann = json_object();
			json_object_set_new(ann, "platform", json_string(m->platform));
			if (m->resolved)
				json_object_set_new(ann, "resolved", json_string(m->resolved));
			if (res->base_material == i + 1)
				json_object_set_new(ann, "base", json_string("true"));
			json_object_set_new(o, "annotations", ann);
		} else {
			json_object_set_new(o, "uri", json_string(m->ref));
		}
		json_object_set_new(o, "digest", digest_set(m->digest));
		json_array_append_new(deps, o);
	}

	json_t *bdef = json_object();
	json_object_set_new(bdef, "buildType", json_string(PLAIT_PROVENANCE_BUILD_TYPE));
	json_object_set_new(bdef, "externalParameters", ext);
	json_object_set_new(bdef, "internalParameters", intl);
	json_object_set_new(bdef, "resolvedDependencies", deps);

	json_t *run = json_object(), *builder = json_object(), *ver = json_object(), *meta = json_object();
	struct plait_buf id = PLAIT_BUF_INIT;
	plait_buf_addf(&id, "urn:plait:builder:%s", p->builder ? p->builder : "local");
	json_object_set_new(builder, "id", json_string(id.buf));
	plait_buf_release(&id);
	json_object_set_new(ver, "plait", json_string(PLAIT_VERSION));
	json_object_set_new(builder, "version", ver);
	json_object_set_new(run, "builder", builder);
	_cleanup_free_ char *t0 = rfc3339(p->started, p), *t1 = rfc3339(p->finished, p);
	json_object_set_new(meta, "startedOn", json_string(t0));
	json_object_set_new(meta, "finishedOn", json_string(t1));
	json_object_set_new(run, "metadata", meta);

	json_t *pred = json_object();
	json_object_set_new(pred, "buildDefinition", bdef);
	json_object_set_new(pred, "runDetails", run);
	json_object_set_new(st, "predicate", pred);

	return dump(st, "provenance", out, err);
}

/* ------------------------------------------------------------ referrers */

int plait_attest_put(struct plait_store *s, const struct plait_descriptor *subject, const char *artifact_type,
		     const char *layer_media_type, const struct plait_map *layer_annotations,
		     const struct plait_map *annotations, const void *doc, size_t len, struct plait_descriptor *desc,
		     struct plait_buf *bytes, struct plait_error **err)
{
	static const char empty[] = "{}";
	char ed[PLAIT_SHA256_DIGEST_SIZE], dd[PLAIT_SHA256_DIGEST_SIZE], md[PLAIT_SHA256_DIGEST_SIZE];
	int r = plait_store_put_bytes(s, empty, 2, ed, err);
	if (r >= 0)
		r = plait_store_put_bytes(s, doc, len, dd, err);
	if (r < 0)
		return r;
	struct plait_descriptor layer = { .media_type = (char *)layer_media_type, .size = (int64_t)len };
	memcpy(layer.digest, dd, sizeof(dd));
	if (layer_annotations)
		layer.annotations = *layer_annotations;
	struct plait_descriptor subj = { .media_type = subject->media_type, .size = subject->size };
	memcpy(subj.digest, subject->digest, sizeof(subj.digest));
	struct plait_manifest m = {
		.schema_version = 2,
		.media_type = (char *)plait_media_type_to_string(PLAIT_MT_OCI_MANIFEST),
		.artifact_type = (char *)artifact_type,
		.config = { .media_type = (char *)plait_media_type_to_string(PLAIT_MT_OCI_EMPTY), .size = 2 },
		.layers = &layer,
		.n_layers = 1,
		.subject = &subj,
	};
	memcpy(m.config.digest, ed, sizeof(ed));
	if (annotations)
		m.annotations = *annotations;
	plait_buf_reset(bytes);
	r = plait_manifest_serialise(&m, bytes, err);
	if (r >= 0)
		r = plait_store_put_bytes(s, bytes->buf, bytes->len, md, err);
	if (r < 0)
		return r;
	plait_descriptor_release(desc);
	desc->media_type = xstrdup(m.media_type);
	memcpy(desc->digest, md, sizeof(md));
	desc->size = (int64_t)bytes->len;
	desc->artifact_type = xstrdup(artifact_type);
	return 0;
}

int plait_attest_put_buildx(struct plait_store *s, const struct plait_buf *statements,
			    const char *const *predicate_types, size_t n, struct plait_descriptor *desc,
			    struct plait_buf *bytes, struct plait_error **err)
{
	struct plait_descriptor *layers = xcalloc(n + 1, sizeof(*layers));
	json_t *diff_ids = json_array();
	int r = 0;
	for (size_t i = 0; r >= 0 && i < n; i++) {
		r = plait_store_put_bytes(s, statements[i].buf, statements[i].len, layers[i].digest, err);
		layers[i].media_type = xstrdup(PLAIT_MT_INTOTO);
		layers[i].size = (int64_t)statements[i].len;
		plait_map_set(&layers[i].annotations, "in-toto.io/predicate-type", predicate_types[i]);
		json_array_append_new(diff_ids, json_string(layers[i].digest));
	}
	json_t *cfg = json_object(), *rootfs = json_object();
	json_object_set_new(cfg, "architecture", json_string("unknown"));
	json_object_set_new(cfg, "os", json_string("unknown"));
	json_object_set_new(cfg, "config", json_object());
	json_object_set_new(rootfs, "type", json_string("layers"));
	json_object_set_new(rootfs, "diff_ids", diff_ids);
	json_object_set_new(cfg, "rootfs", rootfs);
	struct plait_buf cb = PLAIT_BUF_INIT;
	struct plait_manifest m = {
		.schema_version = 2,
		.media_type = (char *)plait_media_type_to_string(PLAIT_MT_OCI_MANIFEST),
		.config = { .media_type = (char *)plait_media_type_to_string(PLAIT_MT_OCI_CONFIG) },
		.layers = layers,
		.n_layers = n,
	};
	char md[PLAIT_SHA256_DIGEST_SIZE];
	if (r >= 0)
		r = dump(cfg, "attestation config", &cb, err);
	else
		json_decref(cfg);
	if (r >= 0)
		r = plait_store_put_bytes(s, cb.buf, cb.len, m.config.digest, err);
	m.config.size = (int64_t)cb.len;
	if (r >= 0) {
		plait_buf_reset(bytes);
		r = plait_manifest_serialise(&m, bytes, err);
	}
	if (r >= 0)
		r = plait_store_put_bytes(s, bytes->buf, bytes->len, md, err);
	if (r >= 0) {
		plait_descriptor_release(desc);
		desc->media_type = xstrdup(m.media_type);
		memcpy(desc->digest, md, sizeof(md));
		desc->size = (int64_t)bytes->len;
	}
	for (size_t i = 0; i < n; i++)
		plait_descriptor_release(&layers[i]);
	free(layers);
	plait_buf_release(&cb);
	return r;
}
