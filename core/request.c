/* core/request.c - the request and its parsers; see request.h. */
#include <ctype.h>
#include <stdarg.h>
#include <unistd.h>

#include "request.h"
#include "util.h"
#include "core/platform.h"
#include "core/ref.h"
#include "core/utf8.h"
#include "core/banned.h"

void plait_variant_release(struct plait_variant *v)
{
	if (!v)
		return;
	free(v->name);
	plait_strv_free(v->args);
	plait_strv_free(v->platforms);
	memset(v, 0, sizeof(*v));
}

void plait_annotation_release(struct plait_annotation *a)
{
	if (!a)
		return;
	free(a->kv);
	plait_strv_free(a->platforms);
	memset(a, 0, sizeof(*a));
}

void plait_target_release(struct plait_target *t)
{
	if (!t)
		return;
	free(t->name);
	free(t->context_dir);
	free(t->context_git_url);
	free(t->context_git_commit);
	free(t->dockerfile);
	free(t->stage);
	plait_platform_list_free(t->platforms, t->n_platforms);
	for (size_t i = 0; i < t->n_variants; i++)
		plait_variant_release(&t->variants[i]);
	free(t->variants);
	for (size_t i = 0; i < t->n_annotations; i++)
		plait_annotation_release(&t->annotations[i]);
	free(t->annotations);
	plait_strv_free(t->tags);
	plait_strv_free(t->build_args);
	plait_strv_free(t->labels);
	plait_strv_free(t->outputs);
	plait_strv_free(t->problems);
	plait_strv_free(t->platform_texts);
	memset(t, 0, sizeof(*t));
}

struct plait_target *plait_request_add_target(struct plait_request *r)
{
	r->targets = xrealloc(r->targets, (r->n_targets + 1) * sizeof(*r->targets));
	struct plait_target *t = &r->targets[r->n_targets++];
	memset(t, 0, sizeof(*t));
	return t;
}

void plait_request_release(struct plait_request *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_targets; i++)
		plait_target_release(&r->targets[i]);
	free(r->targets);
	for (char **f = r->secret_files; f && *f; f++)
		unlink(*f);
	plait_strv_free(r->secret_files);
	for (size_t i = 0; i < r->n_secrets; i++) {
		free((char *)r->secrets[i].id);
		free((char *)r->secrets[i].src);
	}
	free(r->secrets);
	for (size_t i = 0; i < r->n_ssh; i++) {
		free((char *)r->ssh[i].id);
		free((char *)r->ssh[i].socket);
	}
	free(r->ssh);
	for (size_t i = 0; i < r->n_named; i++) {
		free(r->named[i].name);
		free(r->named[i].ref);
	}
	free(r->named);
	free(r->cache_dir);
	free(r->metadata);
	free(r->iidfile);
	for (size_t i = 0; i < r->n_cache_from; i++)
		plait_cache_spec_release(&r->cache_from[i]);
	free(r->cache_from);
	for (size_t i = 0; i < r->n_cache_to; i++)
		plait_cache_spec_release(&r->cache_to[i]);
	free(r->cache_to);
	memset(r, 0, sizeof(*r));
}

int plait_request_add_cache(struct plait_request *r, const char *spec, bool to, const char *what,
			    struct plait_error **err)
{
	struct plait_cache_spec s;
	int ret = plait_cache_spec_parse(spec, to, what, &s, err);
	if (ret < 0)
		return ret;
	struct plait_cache_spec **v = to ? &r->cache_to : &r->cache_from;
	size_t *n = to ? &r->n_cache_to : &r->n_cache_from;
	for (size_t i = 0; i < *n; i++)
		if (streq((*v)[i].text, s.text)) {
			plait_cache_spec_release(&s);
			return 0;
		}
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = s;
	return 0;
}

int plait_parse_variant(const char *spec, struct plait_variant *out, char ***problems, struct plait_error **err)
{
	memset(out, 0, sizeof(*out));
	const char *colon = strchr(spec, ':');
	out->name = colon ? xstrndup(spec, (size_t)(colon - spec)) : xstrdup(spec);
	_cleanup_free_ char *copy = NULL;
	int r = 0;
	if (!plait_tag_is_valid(out->name)) {
		r = plait_error_set(err, PLAIT_E_USAGE,
				    "--variant '%s': the name '%s' must start with a letter, digit or '_' and go on "
				    "with letters, digits, '_', '.' or '-', 128 at most (it goes into tags), e.g. "
				    "--variant cuda:BASE=nvidia/cuda:12.4.1-runtime-ubuntu22.04",
				    spec, out->name);
		goto fail;
	}
	if (!colon)
		return 0;
	copy = xstrdup(colon + 1);
	for (char *save = NULL, *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(f, '=');
		if (!eq || eq == f) {
			r = plait_error_set(err, PLAIT_E_USAGE,
					    "--variant '%s': '%s' is not ARG=VALUE (or platforms=P[+P...])", spec, f);
			goto fail;
		}
		if (!startswith(f, "platforms=") && !startswith(f, "platform=")) {
			plait_strv_push(&out->args, f);
			continue;
		}
		if (!eq[1]) {
			/* an unset shell variable, most likely: not "every platform" */
			struct plait_buf m = PLAIT_BUF_INIT;
			plait_buf_addf(&m, "--variant '%s': platforms= is empty; list them as P+P, or leave "
					   "platforms= out to build every --platform",
				       spec);
			plait_strv_push(problems, m.buf);
			plait_buf_release(&m);
			continue;
		}
		for (char *s2 = NULL, *q = strtok_r(eq + 1, "+", &s2); q; q = strtok_r(NULL, "+", &s2)) {
			struct plait_platform pl = { 0 };
			_cleanup_error_ struct plait_error *pe = NULL;
			if (plait_platform_parse(q, &pl, &pe) < 0) {
				struct plait_buf m = PLAIT_BUF_INIT;
				plait_buf_addf(&m, "--variant '%s': %s", spec, pe->msg);
				plait_strv_push(problems, m.buf);
				plait_buf_release(&m);
				continue;
			}
			char *ps = plait_platform_format(&pl);
			plait_strv_push(&out->platforms, ps);
			free(ps);
			plait_platform_release(&pl);
		}
	}
	return 0;
fail:
	plait_variant_release(out);
	return r;
}

int plait_parse_annotation(const char *spec, struct plait_annotation *out, struct plait_error **err)
{
	memset(out, 0, sizeof(*out));
	const char *kv = spec, *colon = strchr(spec, ':'), *eq = strchr(spec, '=');
	int r = 0;
	if (colon && (!eq || colon < eq)) {
		_cleanup_free_ char *type = xstrndup(spec, (size_t)(colon - spec));
		char *br = strchr(type, '[');
		kv = colon + 1;
		if (br) {
			char *end = strchr(br, ']');
			if (!end || end[1])
				return plait_error_set(err, PLAIT_E_USAGE, "--annotation '%s': unclosed '[' in the type",
						       spec);
			*end = '\0';
			*br++ = '\0';
			for (char *s = NULL, *q = strtok_r(br, ",", &s); q; q = strtok_r(NULL, ",", &s)) {
				struct plait_platform want = { 0 };
				if ((r = plait_platform_parse(q, &want, err)) < 0) {
					plait_annotation_release(out);
					return plait_error_wrap(err, "--annotation '%s'", spec), r;
				}
				char *ps = plait_platform_format(&want);
				plait_strv_push(&out->platforms, ps);
				free(ps);
				plait_platform_release(&want);
			}
		}
		if (streq(type, "index") && !br)
			out->index = true;
		else if (!streq(type, "manifest")) {
			plait_annotation_release(out);
			return plait_error_set(err, PLAIT_E_USAGE,
					       "--annotation '%s': unknown type '%s%s'; use index:K=V, manifest:K=V or "
					       "manifest[PLATFORM]:K=V",
					       spec, type, br ? "[...]" : "");
		}
	}
	eq = strchr(kv, '=');
	if (!eq || eq == kv) {
		plait_annotation_release(out);
		return plait_error_set(err, PLAIT_E_USAGE, "--annotation '%s': expected KEY=VALUE", spec);
	}
	out->kv = xstrdup(kv);
	return 0;
}

/* The --output types: what each writes and its dest's kind, for messages. */
static const struct {
	const char *type, *dest;
} output_types[] = {
	{ "oci", "DIR" },   { "oci-archive", "FILE" }, { "docker", "FILE" },
	{ "tar", "FILE" },  { "local", "DIR" },
};

/* "type=oci,dest=DIR" -> "oci:DIR"; a value without '=' is a directory
 * (type=local, as buildx's -o DIR). */
int plait_parse_output(const char *arg, char **spec, struct plait_error **err)
{
	_cleanup_free_ char *copy = xstrdup(arg);
	const char *type = NULL, *dest = NULL;
	if (streq(arg, "-"))
		return plait_error_set(err, PLAIT_E_USAGE,
				       "--output '-': plait does not write images to stdout; use type=tar,dest=FILE "
				       "or type=docker,dest=FILE");
	if (*arg && !strchr(arg, '=')) {
		type = "local";
		dest = copy;
		goto found;
	}
	for (char *save = NULL, *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
		if (startswith(f, "type="))
			type = f + 5;
		else if (startswith(f, "dest="))
			dest = f + 5;
		else
			return plait_error_set(err, PLAIT_E_USAGE, "--output '%s': unknown field '%s'", arg, f);
	}
	if (!type)
		return plait_error_set(err, PLAIT_E_USAGE,
				       "--output '%s': no type=; use type=oci|local,dest=DIR or "
				       "type=oci-archive|docker|tar,dest=FILE",
				       arg);
	size_t i = 0;
	while (i < ARRAY_SIZE(output_types) && !streq(output_types[i].type, type))
		i++;
	if (i == ARRAY_SIZE(output_types))
		return plait_error_set(err, PLAIT_E_USAGE,
				       "--output '%s': unknown type '%s'; use type=oci|local,dest=DIR or "
				       "type=oci-archive|docker|tar,dest=FILE",
				       arg, type);
	if (!dest || !*dest)
		return plait_error_set(err, PLAIT_E_USAGE, "--output '%s': type=%s needs dest=%s", arg, type,
				       output_types[i].dest);
found:;
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s:%s", type, dest);
	*spec = plait_buf_detach(&b, NULL);
	return 0;
}

/* Say what is wrong with --platform's value: the planner reports it. */
_printf_(2, 3) static void platform_problem(struct plait_target *t, const char *fmt, ...)
{
	struct plait_buf m = PLAIT_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	plait_buf_vaddf(&m, fmt, ap);
	va_end(ap);
	plait_strv_push(&t->problems, m.buf);
	plait_buf_release(&m);
}

static char *trimmed(const char *b, const char *end)
{
	while (b < end && isspace((unsigned char)*b))
		b++;
	while (end > b && isspace((unsigned char)end[-1]))
		end--;
	return xstrndup(b, (size_t)(end - b));
}

void plait_target_add_platforms(struct plait_target *t, const char *what, const char *list)
{
	t->platforms_given = true;
	/* One entry at a time, so that every bad one is named. */
	for (const char *p = list;;) {
		const char *comma = strchr(p, ',');
		_cleanup_free_ char *item = trimmed(p, comma ? comma : p + strlen(p));
		struct plait_platform one = { 0 };
		_cleanup_error_ struct plait_error *e = NULL;
		if (!*item && (comma || p != list)) {
			platform_problem(t, "%s '%s': empty entry; separate platforms with a single ',', "
					    "e.g. 'linux/amd64,linux/arm64'", what, list);
		} else if (plait_platform_parse(item, &one, &e) < 0) {
			platform_problem(t, "%s: %s", what, e->msg);
		} else {
			size_t j = 0;
			while (j < t->n_platforms && !plait_platform_equal(&one, &t->platforms[j]))
				j++;
			if (j < t->n_platforms) {
				_cleanup_free_ char *ps = plait_platform_format(&one);
				if (streq(item, t->platform_texts[j]))
					platform_problem(t, "%s: %s is listed twice", what, item);
				else
					platform_problem(t, "%s: '%s' and '%s' are both %s: list it once", what,
							 t->platform_texts[j], item, ps);
				plait_platform_release(&one);
			} else {
				t->platforms = xrealloc(t->platforms, (t->n_platforms + 1) * sizeof(*t->platforms));
				t->platforms[t->n_platforms++] = one;
				plait_strv_push(&t->platform_texts, item);
			}
		}
		if (!comma)
			break;
		p = comma + 1;
	}
}

int plait_target_add_variant(struct plait_target *t, const char *spec, struct plait_error **err)
{
	t->variants = xrealloc(t->variants, (t->n_variants + 1) * sizeof(*t->variants));
	int r = plait_parse_variant(spec, &t->variants[t->n_variants], &t->problems, err);
	if (r >= 0)
		t->n_variants++;
	return r;
}

int plait_target_add_annotation(struct plait_target *t, const char *spec, struct plait_error **err)
{
	t->annotations = xrealloc(t->annotations, (t->n_annotations + 1) * sizeof(*t->annotations));
	int r = plait_parse_annotation(spec, &t->annotations[t->n_annotations], err);
	if (r >= 0)
		t->n_annotations++;
	return r;
}

int plait_target_add_output(struct plait_target *t, const char *spec, struct plait_error **err)
{
	char *out = NULL;
	int r = plait_parse_output(spec, &out, err);
	if (r >= 0)
		plait_strv_push(&t->outputs, out);
	free(out);
	return r;
}

/* One value: "what[ NAME]: the name|value|tag is not valid UTF-8 (...)". A
 * K=V value names K when K itself is valid. */
static size_t check_value(char ***problems, const char *what, const char *s, bool kv)
{
	size_t bad;
	if (plait_utf8_valid(s, strlen(s), &bad))
		return 0;
	size_t kl = kv ? strcspn(s, "=") : 0;
	struct plait_buf m = PLAIT_BUF_INIT;
	plait_buf_adds(&m, what);
	if (kv && bad > kl)
		plait_buf_addf(&m, " %.*s: the value", (int)kl, s);
	else
		plait_buf_adds(&m, kv ? ": the name" : ": the tag");
	plait_buf_addf(&m, " is not valid UTF-8 (byte 0x%02x at column %zu of the argument): image configs are "
			   "JSON; pass the text in UTF-8",
		       (unsigned char)s[bad], bad + 1);
	plait_strv_push(problems, m.buf);
	plait_buf_release(&m);
	return 1;
}

size_t plait_target_check_utf8(const struct plait_target *t, char ***problems)
{
	bool bake = t->name != NULL; /* the names of bake's fields, else the flags */
	size_t n = 0;
	for (char **s = t->tags; s && *s; s++)
		n += check_value(problems, bake ? "tags" : "-t", *s, false);
	for (char **s = t->build_args; s && *s; s++)
		n += check_value(problems, bake ? "args" : "--build-arg", *s, true);
	for (char **s = t->labels; s && *s; s++)
		n += check_value(problems, bake ? "labels" : "--label", *s, true);
	for (size_t i = 0; i < t->n_annotations; i++)
		n += check_value(problems, bake ? "annotations" : "--annotation", t->annotations[i].kv, true);
	for (size_t i = 0; i < t->n_variants; i++) {
		_cleanup_buf_ struct plait_buf what = PLAIT_BUF_INIT;
		plait_buf_addf(&what, "--variant %s", t->variants[i].name);
		for (char **s = t->variants[i].args; s && *s; s++)
			n += check_value(problems, what.buf, *s, true);
	}
	return n;
}

int plait_parse_provenance(const char *spec, enum plait_provenance_mode *out, struct plait_error **err)
{
	bool b;
	if (!*spec || plait_parse_bool(spec, &b) == 0) {
		*out = !*spec || b ? PLAIT_PROVENANCE_MIN : PLAIT_PROVENANCE_OFF;
		return 0;
	}
	_cleanup_free_ char *copy = xstrdup(spec);
	enum plait_provenance_mode m = PLAIT_PROVENANCE_MIN;
	bool disabled = false;
	for (char *save = NULL, *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
		if (streq(f, "mode=min"))
			m = PLAIT_PROVENANCE_MIN;
		else if (streq(f, "mode=max"))
			m = PLAIT_PROVENANCE_MAX;
		else if (startswith(f, "mode="))
			return plait_error_set(err, PLAIT_E_USAGE, "--provenance '%s': unknown mode '%s'; use mode=min or mode=max",
					       spec, f + 5);
		else if (startswith(f, "disabled=") && plait_parse_bool(f + 9, &disabled) == 0)
			;
		else if (streq(f, "version=v1"))
			;
		else if (startswith(f, "version="))
			return plait_error_set(err, PLAIT_E_USAGE,
					       "--provenance '%s': plait writes SLSA provenance v1 only (version=v1)", spec);
		else
			return plait_error_set(err, PLAIT_E_USAGE,
					       "--provenance '%s': unknown field '%s'; use true, false, mode=min or mode=max",
					       spec, f);
	}
	*out = disabled ? PLAIT_PROVENANCE_OFF : m;
	return 0;
}

int plait_parse_sbom(const char *spec, bool *out, struct plait_error **err)
{
	bool b;
	if (!*spec || plait_parse_bool(spec, &b) == 0) {
		*out = !*spec || b;
		return 0;
	}
	_cleanup_free_ char *copy = xstrdup(spec);
	bool disabled = false;
	for (char *save = NULL, *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
		if (startswith(f, "disabled=") && plait_parse_bool(f + 9, &disabled) == 0)
			continue;
		if (startswith(f, "generator="))
			return plait_error_set(err, PLAIT_E_USAGE,
					       "--sbom '%s': plait makes SBOMs itself from the image's package databases; "
					       "generator= images are not run",
					       spec);
		return plait_error_set(err, PLAIT_E_USAGE, "--sbom '%s': unknown field '%s'; use true or false", spec, f);
	}
	*out = !disabled;
	return 0;
}

int plait_request_add_attest(struct plait_request *r, const char *spec, struct plait_error **err)
{
	const char *rest = NULL;
	if (startswith(spec, "type=provenance"))
		rest = spec + strlen("type=provenance");
	else if (startswith(spec, "type=sbom"))
		rest = spec + strlen("type=sbom");
	if (!rest || (*rest && *rest != ','))
		return plait_error_set(err, PLAIT_E_USAGE,
				       "--attest '%s': give type=provenance[,mode=min|max] or type=sbom first", spec);
	if (*rest == ',')
		rest++;
	if (startswith(spec, "type=provenance"))
		return plait_parse_provenance(*rest ? rest : "true", &r->provenance, err);
	r->sbom_given = true;
	return plait_parse_sbom(*rest ? rest : "true", &r->sbom, err);
}
