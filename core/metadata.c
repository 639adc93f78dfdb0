/* core/metadata.c - the --metadata-file format; see metadata.h. */
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "metadata.h"
#include "buf.h"
#include "digest.h"
#include "util.h"
#include "core/ref.h"
#include "core/banned.h"

json_t *plait_metadata_image_json(const struct plait_metadata_image *im)
{
	json_t *o = json_object(), *pl = json_array(), *tags = json_array();
	for (char *const *t = im->tags; t && *t; t++)
		json_array_append_new(tags, json_string(*t));
	if (im->target)
		json_object_set_new(o, "target", json_string(im->target));
	if (im->variant)
		json_object_set_new(o, "variant", json_string(im->variant));
	json_object_set_new(o, "digest", json_string(im->digest));
	json_object_set_new(o, "mediaType", json_string(im->media_type));
	json_object_set_new(o, "tags", tags);
	for (size_t k = 0; k < im->n_platforms; k++) {
		const struct plait_metadata_platform *p = &im->platforms[k];
		json_t *e = json_object();
		json_object_set_new(e, "platform", json_string(p->platform));
		json_object_set_new(e, "digest", json_string(p->digest));
		json_object_set_new(e, "config.digest", json_string(p->config_digest));
		json_object_set_new(e, "size", json_integer(p->size));
		json_object_set_new(e, "duration_s", json_real(p->duration_s));
		json_object_set_new(e, "steps", json_integer(p->steps));
		json_object_set_new(e, "cached", json_integer(p->cached));
		json_object_set_new(e, "builder", json_string(p->builder));
		if (p->node)
			json_object_set_new(e, "node", json_string(p->node));
		json_array_append_new(pl, e);
	}
	json_object_set_new(o, "platforms", pl);
	return o;
}

int plait_metadata_write(const char *path, const struct plait_metadata_image *images, size_t n,
			 double duration_s, bool tagged, struct plait_error **err)
{
	json_auto_t *m = json_object();
	json_t *list = json_array(), *variants = json_object();
	for (size_t i = 0; i < n; i++) {
		json_t *o = plait_metadata_image_json(&images[i]);
		if (images[i].variant && !images[i].target)
			json_object_set(variants, images[i].variant, o); /* the same object, listed twice */
		json_array_append_new(list, o);
	}
	/* One image: the keys buildx writes, which 'plait index create
	 * --from-metadata' reads. */
	if (n == 1) {
		const struct plait_metadata_image *im = &images[0];
		struct plait_buf names = PLAIT_BUF_INIT;
		int64_t size = 0;
		int steps = 0, cached = 0;
		for (char *const *t = im->tags; t && *t; t++)
			plait_buf_addf(&names, "%s%s", names.len ? "," : "", *t);
		for (size_t k = 0; k < im->n_platforms; k++) {
			size += im->platforms[k].size;
			steps += im->platforms[k].steps;
			cached += im->platforms[k].cached;
		}
		json_object_set_new(m, "containerimage.digest", json_string(im->digest));
		json_object_set_new(m, "containerimage.mediaType", json_string(im->media_type));
		if (im->single)
			json_object_set_new(m, "containerimage.config.digest",
					    json_string(im->platforms[0].config_digest));
		json_object_set_new(m, "image.name", json_string(names.len ? names.buf : ""));
		json_object_set_new(m, "size", json_integer(size));
		json_object_set_new(m, "steps", json_integer(steps));
		json_object_set_new(m, "cached", json_integer(cached));
		json_object_set_new(m, "platforms", json_incref(json_object_get(json_array_get(list, 0), "platforms")));
		plait_buf_release(&names);
	}
	json_object_set_new(m, "duration_s", json_real(duration_s));
	json_object_set_new(m, "images", list);
	if (json_object_size(variants))
		json_object_set_new(m, "variants", variants);
	else
		json_decref(variants);
	_cleanup_free_ char *text = json_dumps(m, JSON_INDENT(2));
	size_t len = text ? strlen(text) : 0;
	if (text)
		text[len++] = '\n'; /* json_dumps' NUL: the file ends with a newline */
	int r = text ? plait_replace_file(path, text, len) : -ENOMEM;
	if (r < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, -r,
					     "the images are published%s, but --metadata-file '%s' cannot be written",
					     tagged ? " and tagged" : "", path);
	return 0;
}

int plait_metadata_check_path(const char *path, struct plait_error **err)
{
	struct stat st;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return plait_error_set(err, PLAIT_E_USAGE, "--metadata-file '%s' is a directory: name a file",
				       path);
	_cleanup_free_ char *dir = plait_path_dir(path);
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return plait_error_set(err, PLAIT_E_USAGE,
				       "--metadata-file '%s': directory '%s' does not exist (create it first)", path,
				       dir);
	if (access(dir, W_OK) < 0)
		return plait_error_set_errno(err, PLAIT_E_USAGE, errno, "--metadata-file '%s': cannot write in '%s'",
					     path, dir);
	return 0;
}

void plait_metadata_sources_free(struct plait_metadata_source *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].variant);
		free(v[i].name);
	}
	free(v);
}

static int meta_name(const char *file, const char *names, const char *digest, char **out,
		     struct plait_error **err)
{
	_cleanup_free_ char *first = xstrndup(names, strcspn(names, ","));
	struct plait_ref ref = { 0 };
	int r = plait_ref_parse(first, &ref, err);
	if (r < 0)
		return plait_error_wrap(err, "--from-metadata '%s'", file), r;
	_cleanup_free_ char *name = plait_ref_name(&ref);
	plait_ref_release(&ref);
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s@%s", name, digest);
	*out = plait_buf_detach(&b, NULL);
	return 0;
}

static struct plait_metadata_source *meta_add(struct plait_metadata_source **v, size_t *n, const char *file, const char *variant)
{
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	struct plait_metadata_source *x = &(*v)[(*n)++];
	memset(x, 0, sizeof(*x));
	x->file = file;
	x->variant = xstrdup_or_null(variant);
	return x;
}

/* The images of a --metadata-file of `plait build --push-by-digest`: one, or
 * one per variant ("images", each with its "variant"). */
int plait_metadata_read(const char *file, struct plait_metadata_source **v, size_t *n, struct plait_error **err)
{
	json_error_t jerr;
	json_auto_t *m = json_load_file(file, 0, &jerr);
	if (!m)
		return jerr.line > 0 ? plait_error_set(err, PLAIT_E_USAGE, "--from-metadata '%s': %s (line %d)", file,
						       jerr.text, jerr.line)
				     : plait_error_set(err, PLAIT_E_USAGE, "--from-metadata '%s': %s", file, jerr.text);
	json_t *images = json_object_get(m, "images");
	size_t count = json_array_size(images), first = *n, k;
	const char *target0 = json_string_value(json_object_get(json_array_get(images, 0), "target"));
	json_t *im;
	json_array_foreach(images, k, im) {
		const char *digest = json_string_value(json_object_get(im, "digest"));
		const char *variant = json_string_value(json_object_get(im, "variant"));
		const char *name = json_string_value(json_array_get(json_object_get(im, "tags"), 0));
		if (!streq_ptr(json_string_value(json_object_get(im, "target")), target0))
			return plait_error_set(err, PLAIT_E_USAGE,
					       "--from-metadata '%s': it holds the images of several bake targets; "
					       "merge one target at a time (one metadata file per target)",
					       file);
		if (!digest || plait_digest_validate(digest, NULL) < 0 || !name || !*name)
			return plait_error_set(err, PLAIT_E_USAGE,
					       "--from-metadata '%s': image %zu has no digest or no -t name (write "
					       "it with 'plait build --push-by-digest -t REPO --metadata-file FILE')",
					       file, k + 1);
		if (count > 1 && !variant)
			return plait_error_set(err, PLAIT_E_USAGE, "--from-metadata '%s': image %zu of %zu has no variant",
					       file, k + 1, count);
		for (size_t i = first; variant && i < *n; i++)
			if (streq_ptr((*v)[i].variant, variant))
				return plait_error_set(err, PLAIT_E_USAGE,
						       "--from-metadata '%s': variant '%s' is there twice", file,
						       variant);
		struct plait_metadata_source *x = meta_add(v, n, file, variant);
		int r = meta_name(file, name, digest, &x->name, err);
		if (r < 0)
			return r;
	}
	if (count)
		return 0;
	/* no "images": the buildx keys alone */
	const char *digest = json_string_value(json_object_get(m, "containerimage.digest"));
	const char *names = json_string_value(json_object_get(m, "image.name"));
	if (!digest || plait_digest_validate(digest, NULL) < 0 || !names || !*names)
		return plait_error_set(err, PLAIT_E_USAGE,
				       "--from-metadata '%s': no images, and no containerimage.digest and "
				       "image.name in it (write it with 'plait build --metadata-file')", file);
	struct plait_metadata_source *x = meta_add(v, n, file, NULL);
	return meta_name(file, names, digest, &x->name, err);
}

