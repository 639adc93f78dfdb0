/* Unit tests for core/cache_remote: --cache-to/--cache-from specs, the step
 * records blob, the shared index merge, and export -> import through real
 * OCI layout endpoints (two writers at once lose nothing; the blobs come
 * only when fetched). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/cache.h"
#include "core/cache_remote.h"
#include "core/digest.h"
#include "core/fs.h"
#include "core/oci.h"
#include "core/store.h"
#include "core/strv.h"
#include "core/endpoint.h"
#include "tmpdir.h"

#include "core/banned.h"

static char *spec_err(const char *text, bool to)
{
	struct plait_cache_spec s;
	struct plait_error *err = NULL;
	int r = plait_cache_spec_parse(text, to, to ? "--cache-to" : "--cache-from", &s, &err);
	assert_int_equal(r, -PLAIT_E_USAGE);
	assert_int_equal(err->code, PLAIT_E_USAGE);
	char *m = xstrdup(err->msg);
	plait_error_free(err);
	return m;
}

static void test_cache_remote__specs_as_buildx_spells_them(void **state)
{
	(void)state;
	struct plait_cache_spec s;
	assert_int_equal(plait_cache_spec_parse("type=registry,ref=r.example/ml/cache:ci,mode=max,ignore-error=true",
						true, "--cache-to", &s, NULL),
			 0);
	assert_int_equal(s.type, PLAIT_CACHE_REGISTRY);
	assert_string_equal(s.endpoint, "r.example/ml/cache:ci");
	assert_string_equal(s.tag, "ci");
	assert_true(s.mode_max);
	assert_true(s.ignore_error);
	plait_cache_spec_release(&s);

	assert_int_equal(plait_cache_spec_parse("type=local,dest=/tmp/c", true, "--cache-to", &s, NULL), 0);
	assert_int_equal(s.type, PLAIT_CACHE_LOCAL);
	assert_string_equal(s.endpoint, "oci:/tmp/c:cache");
	assert_false(s.mode_max);
	plait_cache_spec_release(&s);

	assert_int_equal(plait_cache_spec_parse("type=local,src=/tmp/c,tag=main", false, "--cache-from", &s, NULL), 0);
	assert_string_equal(s.endpoint, "oci:/tmp/c:main");
	plait_cache_spec_release(&s);

	/* buildx's short form, and options buildx has that plait always does */
	assert_int_equal(plait_cache_spec_parse("localhost:5000/c:1", false, "--cache-from", &s, NULL), 0);
	assert_int_equal(s.type, PLAIT_CACHE_REGISTRY);
	assert_string_equal(s.endpoint, "localhost:5000/c:1");
	plait_cache_spec_release(&s);
	assert_int_equal(plait_cache_spec_parse("type=registry,ref=r/c:1,oci-mediatypes=true,image-manifest=true",
						true, "--cache-to", &s, NULL),
			 0);
	plait_cache_spec_release(&s);

	/* mounts=ID[,ID...]: the words after it up to the next KEY=VALUE */
	assert_int_equal(plait_cache_spec_parse("type=local,dest=/c,mounts=pip,apt,mode=max", true, "--cache-to", &s, NULL),
			 0);
	assert_true(s.mode_max);
	assert_false(s.mounts_all);
	assert_int_equal(plait_strv_length(s.mounts), 2);
	assert_string_equal(s.mounts[0], "pip");
	assert_string_equal(s.mounts[1], "apt");
	plait_cache_spec_release(&s);
	assert_int_equal(plait_cache_spec_parse("type=local,dest=/c,mounts=all", true, "--cache-to", &s, NULL), 0);
	assert_true(s.mounts_all);
	assert_null(s.mounts);
	plait_cache_spec_release(&s);
}

static void test_cache_remote__bad_specs_name_the_option_and_the_fix(void **state)
{
	(void)state;
	struct {
		const char *text;
		bool to;
		const char *want;
	} cases[] = {
		{ "type=gha", true, "--cache-to 'type=gha': unknown type 'gha' (plait has registry and local caches" },
		{ "type=registry", true, "type=registry needs ref=REGISTRY/REPO:TAG" },
		{ "type=registry,ref=r/c", true, "ref 'r/c' needs a tag" },
		{ "type=registry,ref=r/c@sha256:0000000000000000000000000000000000000000000000000000000000000000", false,
		  "needs a tag and no digest" },
		{ "type=local", true, "type=local needs dest=DIR" },
		{ "type=local", false, "type=local needs src=DIR" },
		{ "type=local,src=/x", true, "unknown key 'src' (only --cache-from has it)" },
		{ "type=local,dest=/x", false, "unknown key 'dest' (only --cache-to has it)" },
		{ "type=local,src=/x,mode=max", false, "unknown key 'mode' (only --cache-to has it)" },
		{ "type=registry,ref=r/c:1,mode=all", true, "mode must be min or max, not 'all'" },
		{ "type=registry,ref=r/c:1,ignore-error=yes", true, "ignore-error takes true or false, not 'yes'" },
		{ "type=registry,ref=r/c:1,bogus=1", true, "unknown key 'bogus'" },
		{ "type=registry,ref=r/c:1,nokv", true, "'nokv' is not KEY=VALUE" },
		{ "ref=r/c:1", true, "type= is missing" },
		{ "", false, "--cache-from '': empty" },
		{ "type=local,dest=/x,tag=a/b", true, "tag 'a/b' is not a tag" },
		{ "type=local,dest=/x,ref=r/c:1", true, "type=local takes dest=DIR, not ref=" },
		{ "type=local,src=/x,mounts=all", false, "unknown key 'mounts' (only --cache-to has it)" },
		{ "type=local,dest=/x,mounts=", true, "mounts= needs cache mount IDs or 'all'" },
		{ "type=local,dest=/x,max-size=big", true, "max-size takes a size such as 512M or 10G, not 'big'" },
		{ "type=local,src=/x,max-size=1G", false, "unknown key 'max-size' (only --cache-to has it)" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		_cleanup_free_ char *m = spec_err(cases[i].text, cases[i].to);
		if (!strstr(m, cases[i].want))
			fail_msg("spec '%s': message\n  %s\nlacks\n  %s", cases[i].text, m, cases[i].want);
		if (!strstr(m, "use type=registry,ref=REGISTRY/REPO:TAG"))
			fail_msg("spec '%s': message lacks the fix: %s", cases[i].text, m);
	}
}

static void fill_record(struct plait_cache_record *r, const char *key_seed, bool empty, const char *blob_seed)
{
	memset(r, 0, sizeof(*r));
	plait_sha256_buf(key_seed, strlen(key_seed), r->key);
	r->step.created = xstrdup("2023-11-14T22:13:20Z");
	r->step.empty = empty;
	if (!empty) {
		r->step.layer.media_type = xstrdup("application/vnd.oci.image.layer.v1.tar+gzip");
		plait_sha256_buf(blob_seed, strlen(blob_seed), r->step.layer.digest);
		r->step.layer.size = (int64_t)strlen(blob_seed);
		plait_sha256_buf(key_seed, 1, r->step.diff_id);
	}
}

static void test_cache_remote__records_round_trip_and_refuse_newer_formats(void **state)
{
	(void)state;
	struct plait_cache_record in[2];
	fill_record(&in[0], "a", false, "blob-a");
	fill_record(&in[1], "b", true, NULL);
	struct plait_buf b = PLAIT_BUF_INIT, b2 = PLAIT_BUF_INIT;
	plait_cache_records_serialise("t/v/linux/amd64", in, 2, &b);
	plait_cache_records_serialise("t/v/linux/amd64", in, 2, &b2);
	assert_int_equal(b.len, b2.len);
	assert_memory_equal(b.buf, b2.buf, b.len); /* deterministic */
	struct plait_cache_record *out = NULL;
	size_t n = 0;
	char *part = NULL;
	assert_int_equal(plait_cache_records_parse(b.buf, b.len, &part, &out, &n, NULL), 0);
	assert_string_equal(part, "t/v/linux/amd64");
	assert_int_equal(n, 2);
	assert_string_equal(out[0].key, in[0].key);
	assert_string_equal(out[0].step.layer.digest, in[0].step.layer.digest);
	assert_string_equal(out[0].step.diff_id, in[0].step.diff_id);
	assert_int_equal(out[0].step.layer.size, 6);
	assert_true(out[1].step.empty);
	plait_cache_records_free(out, n);
	free(part);

	/* a bad record is dropped, the others stay */
	const char *one_bad = "{\"format\":1,\"part\":\"p\",\"steps\":[{\"key\":\"sha256:zz\",\"created\":\"x\",\"empty\":true},"
			      "{\"key\":\"sha256:0000000000000000000000000000000000000000000000000000000000000000\","
			      "\"created\":\"x\",\"empty\":true}]}";
	assert_int_equal(plait_cache_records_parse(one_bad, strlen(one_bad), &part, &out, &n, NULL), 0);
	assert_int_equal(n, 1);
	plait_cache_records_free(out, n);
	free(part);

	struct plait_error *err = NULL;
	const char *newer = "{\"format\":2,\"steps\":[]}";
	assert_int_equal(plait_cache_records_parse(newer, strlen(newer), &part, &out, &n, &err), -PLAIT_E_USAGE);
	assert_non_null(strstr(err->msg, "format 2, newer than this plait reads (1)"));
	plait_error_free(err);
	err = NULL;
	assert_int_equal(plait_cache_records_parse("[]", 2, &part, &out, &n, &err), -PLAIT_E_INVALID);
	plait_error_free(err);
	plait_buf_release(&b);
	plait_buf_release(&b2);
	plait_cache_step_release(&in[0].step);
	plait_cache_step_release(&in[1].step);
}

static void part_desc(struct plait_descriptor *d, const char *part, const char *seed)
{
	memset(d, 0, sizeof(*d));
	d->media_type = xstrdup("application/vnd.oci.image.manifest.v1+json");
	plait_sha256_buf(seed, strlen(seed), d->digest);
	d->size = 100;
	d->artifact_type = xstrdup(PLAIT_CACHE_ARTIFACT_TYPE);
	plait_map_set(&d->annotations, PLAIT_CACHE_ANNOTATION_PART, part);
}

static void test_cache_remote__merge_keeps_other_parts_and_replaces_its_own(void **state)
{
	(void)state;
	struct plait_descriptor amd, arm, amd2;
	part_desc(&amd, "app/-/linux/amd64", "amd64-1");
	part_desc(&arm, "app/-/linux/arm64", "arm64-1");
	part_desc(&amd2, "app/-/linux/amd64", "amd64-2");
	struct plait_buf a = PLAIT_BUF_INIT, ab = PLAIT_BUF_INIT, ab2 = PLAIT_BUF_INIT;
	char *note = NULL;
	size_t dropped = 0;
	assert_int_equal(plait_cache_index_merge(NULL, 0, &amd, 1, 0, &a, &note, &dropped, NULL), 0);
	assert_null(note);
	assert_true(plait_cache_index_has(a.buf, a.len, &amd, 1));
	assert_false(plait_cache_index_has(a.buf, a.len, &arm, 1));
	/* runner B merges into what A wrote: both are there */
	assert_int_equal(plait_cache_index_merge(a.buf, a.len, &arm, 1, 0, &ab, &note, &dropped, NULL), 0);
	assert_true(plait_cache_index_has(ab.buf, ab.len, &amd, 1));
	assert_true(plait_cache_index_has(ab.buf, ab.len, &arm, 1));
	/* A again, with a new amd64 part: its old one goes, B's stays */
	assert_int_equal(plait_cache_index_merge(ab.buf, ab.len, &amd2, 1, 0, &ab2, &note, &dropped, NULL), 0);
	assert_true(plait_cache_index_has(ab2.buf, ab2.len, &amd2, 1));
	assert_true(plait_cache_index_has(ab2.buf, ab2.len, &arm, 1));
	assert_false(plait_cache_index_has(ab2.buf, ab2.len, &amd, 1));
	struct plait_index idx = { 0 };
	assert_int_equal(plait_index_parse(ab2.buf, ab2.len, &idx, NULL), 0);
	assert_int_equal(idx.n_manifests, 2);
	assert_string_equal(idx.artifact_type, PLAIT_CACHE_ARTIFACT_TYPE);
	assert_string_equal(plait_map_get(&idx.annotations, PLAIT_CACHE_ANNOTATION_FORMAT), "1");
	plait_index_release(&idx);

	/* a foreign index, or a newer plait's, is replaced and said so */
	const char *foreign = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[]}";
	struct plait_buf f = PLAIT_BUF_INIT;
	assert_int_equal(plait_cache_index_merge(foreign, strlen(foreign), &arm, 1, 0, &f, &note, &dropped, NULL), 0);
	assert_non_null(note);
	assert_non_null(strstr(note, "not a plait cache: replaced"));
	free(note);
	note = NULL;
	assert_false(plait_cache_index_has(foreign, strlen(foreign), &arm, 1));
	const char *newer = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
			    "\"artifactType\":\"application/vnd.plait.cache.v1+json\","
			    "\"annotations\":{\"dev.plait.cache.format\":\"9\"},\"manifests\":[]}";
	assert_int_equal(plait_cache_index_merge(newer, strlen(newer), &arm, 1, 0, &f, &note, &dropped, NULL), 0);
	assert_non_null(strstr(note, "newer format"));
	free(note);
	note = NULL;
	assert_int_equal(plait_cache_index_merge("not json", 8, &arm, 1, 0, &f, &note, &dropped, NULL), 0);
	assert_non_null(strstr(note, "not a plait cache"));
	free(note);
	plait_buf_release(&a);
	plait_buf_release(&ab);
	plait_buf_release(&ab2);
	plait_buf_release(&f);
	plait_descriptor_release(&amd);
	plait_descriptor_release(&arm);
	plait_descriptor_release(&amd2);
}

static void test_cache_remote__max_size_drops_the_least_recently_written_other_parts(void **state)
{
	(void)state;
	struct plait_descriptor p[4];
	const char *names[] = { "a", "b", "c", "mine" }, *when[] = { "2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z",
								   "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z" };
	for (int i = 0; i < 4; i++) {
		part_desc(&p[i], names[i], names[i]);
		plait_map_set(&p[i].annotations, PLAIT_CACHE_ANNOTATION_SIZE, "100");
		plait_map_set(&p[i].annotations, PLAIT_CACHE_ANNOTATION_WRITTEN, when[i]);
	}
	struct plait_buf idx = PLAIT_BUF_INIT, out = PLAIT_BUF_INIT;
	char *note = NULL;
	size_t dropped = 9;
	assert_int_equal(plait_cache_index_merge(NULL, 0, p, 3, 0, &idx, &note, &dropped, NULL), 0);
	assert_int_equal(dropped, 0);
	/* 4 x 100 bytes, at most 250: b (oldest), then a go; c and ours stay */
	assert_int_equal(plait_cache_index_merge(idx.buf, idx.len, &p[3], 1, 250, &out, &note, &dropped, NULL), 0);
	assert_int_equal(dropped, 2);
	assert_true(plait_cache_index_has(out.buf, out.len, &p[2], 1));
	assert_true(plait_cache_index_has(out.buf, out.len, &p[3], 1));
	assert_false(plait_cache_index_has(out.buf, out.len, &p[0], 1));
	assert_false(plait_cache_index_has(out.buf, out.len, &p[1], 1));
	/* our own parts are never dropped, even alone over the bound */
	assert_int_equal(plait_cache_index_merge(idx.buf, idx.len, &p[3], 1, 50, &out, &note, &dropped, NULL), 0);
	assert_int_equal(dropped, 3);
	assert_true(plait_cache_index_has(out.buf, out.len, &p[3], 1));
	for (int i = 0; i < 4; i++)
		plait_descriptor_release(&p[i]);
	plait_buf_release(&idx);
	plait_buf_release(&out);
}

/* ------------------------------------------------------------ export -> import */

struct writer {
	const char *cache_dir, *spec;
	struct plait_cache_part part;
	int r;
	char *msg;
	struct plait_cache_export_stats st;
	long settle_ms; /* 0: 30 */
};

static void *export_thread(void *arg)
{
	struct writer *w = arg;
	struct plait_store *s = NULL;
	struct plait_endpoint *dst = NULL;
	struct plait_error *err = NULL;
	_cleanup_free_ char *sp = plait_cache_store_dir(w->cache_dir);
	w->r = plait_store_open(sp, false, &s, &err);
	if (w->r >= 0)
		w->r = plait_endpoint_open_local(w->spec, true, &dst, &err);
	if (w->r >= 0)
		w->r = plait_cache_export(dst, "cache", w->cache_dir, s, &w->part, 1, NULL, 0, NULL, 0, w->settle_ms ? w->settle_ms : 30, &w->st, NULL,
					  NULL, &err);
	if (w->r < 0)
		w->msg = xstrdup(err->msg);
	plait_endpoint_free(dst);
	plait_store_free(s);
	plait_error_free(err);
	return NULL;
}

static void *export_thread_slow(void *arg)
{
	struct writer *w = arg;
	w->settle_ms = 500;
	return export_thread(arg);
}

static void collect(void *ctx, const char *msg)
{
	plait_strv_push((char ***)ctx, msg);
}

static void test_cache_remote__two_writers_at_once_lose_nothing_and_import_is_lazy(void **state)
{
	(void)state;
	_cleanup_free_ char *tmp = test_mkdtemp("cache-remote");
	_cleanup_free_ char *cdir = plait_path_join(tmp, "cache");
	_cleanup_free_ char *ldir = plait_path_join(tmp, "shared");
	_cleanup_free_ char *spec = plait_path_join("oci:", ldir);
	struct plait_buf sp = PLAIT_BUF_INIT;
	plait_buf_addf(&sp, "oci:%s:cache", ldir);
	struct plait_cache *c = NULL;
	assert_int_equal(plait_cache_open(cdir, &c, NULL), 0);
	/* two layer blobs and their steps, one per part, plus an empty step */
	struct plait_cache_record rec[3];
	const char *bytes[2] = { "layer bytes of amd64", "layer bytes of arm64" };
	for (int i = 0; i < 2; i++) {
		char seed[8];
		snprintf(seed, sizeof(seed), "k%d", i);
		fill_record(&rec[i], seed, false, bytes[i]);
		char d[PLAIT_SHA256_DIGEST_SIZE];
		assert_int_equal(plait_store_put_bytes(c->store, bytes[i], strlen(bytes[i]), d, NULL), 0);
		assert_string_equal(d, rec[i].step.layer.digest);
		assert_int_equal(plait_cache_step_write(c, rec[i].key, &rec[i].step), 0);
	}
	fill_record(&rec[2], "empty", true, NULL);
	assert_int_equal(plait_cache_step_write(c, rec[2].key, &rec[2].step), 0);
	const char *ka[] = { rec[0].key, rec[2].key }, *kb[] = { rec[1].key };
	struct writer w[2] = {
		{ .cache_dir = cdir, .spec = sp.buf, .part = { "app/-/linux/amd64", ka, 2 } },
		{ .cache_dir = cdir, .spec = sp.buf, .part = { "app/-/linux/arm64", kb, 1 } },
	};
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, export_thread, &w[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 2; i++)
		if (w[i].r < 0)
			fail_msg("writer %d failed: %s", i, w[i].msg);
	assert_int_equal(w[0].st.records, 2);
	assert_int_equal(w[1].st.records, 1);

	/* a fresh reader sees both parts; blobs are fetched only when asked */
	struct plait_cache_import *imp = plait_cache_import_new();
	struct plait_endpoint *ep = NULL;
	char **warnings = NULL;
	assert_int_equal(plait_endpoint_open_local(sp.buf, false, &ep, NULL), 0);
	plait_cache_import_add(imp, ep, "shared", collect, &warnings);
	assert_null(warnings);
	assert_int_equal(plait_cache_import_count(imp), 3);
	struct plait_cache_step got;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(plait_cache_import_lookup(imp, rec[i].key, &got), 1);
		assert_int_equal(got.empty, rec[i].step.empty);
		plait_cache_step_release(&got);
	}
	char other[PLAIT_SHA256_DIGEST_SIZE];
	plait_sha256_buf("nope", 4, other);
	assert_int_equal(plait_cache_import_lookup(imp, other, &got), 0);
	_cleanup_free_ char *fresh = plait_path_join(tmp, "fresh-store");
	struct plait_store *fs = NULL;
	assert_int_equal(plait_store_open(fresh, true, &fs, NULL), 0);
	assert_int_equal(plait_cache_import_fetched(imp), 0);
	assert_int_equal(plait_store_has(fs, rec[1].step.layer.digest, NULL, NULL), 0);
	assert_int_equal(plait_cache_import_fetch(imp, fs, &rec[1].step.layer, NULL), 1);
	assert_int_equal(plait_store_has(fs, rec[1].step.layer.digest, NULL, NULL), 1);
	assert_int_equal(plait_store_has(fs, rec[0].step.layer.digest, NULL, NULL), 0);
	assert_int_equal(plait_cache_import_fetch(imp, fs, &rec[1].step.layer, NULL), 0); /* there already */
	assert_int_equal(plait_cache_import_fetched(imp), 1);
	plait_cache_import_free(imp);

	/* a missing ref is a warning, never an error */
	imp = plait_cache_import_new();
	struct plait_buf missing = PLAIT_BUF_INIT;
	plait_buf_addf(&missing, "oci:%s:other", ldir);
	assert_int_equal(plait_endpoint_open_local(missing.buf, false, &ep, NULL), 0);
	plait_cache_import_add(imp, ep, "shared:other", collect, &warnings);
	assert_non_null(warnings);
	assert_non_null(strstr(warnings[0], "cache shared:other: nothing there yet"));
	assert_int_equal(plait_cache_import_count(imp), 0);
	plait_cache_import_free(imp);

	plait_strv_free(warnings);
	plait_buf_release(&missing);
	plait_store_free(fs);
	for (int i = 0; i < 3; i++)
		plait_cache_step_release(&rec[i].step);
	for (int i = 0; i < 2; i++)
		free(w[i].msg);
	plait_cache_free(c);
	plait_buf_release(&sp);
	plait_rm_rf(tmp);
}

/* The index at tag "cache" of the layout at dir, or an empty buffer. */
static void read_index(const char *dir, struct plait_buf *out)
{
	struct plait_store *st = NULL;
	struct plait_descriptor d = { 0 };
	plait_buf_reset(out);
	if (plait_store_open(dir, false, &st, NULL) == 0 && plait_store_resolve(st, "cache", &d, NULL) == 0)
		plait_store_read_blob(st, d.digest, PLAIT_MANIFEST_MAX, out, NULL);
	plait_descriptor_release(&d);
	plait_store_free(st);
}

/* The one race a registry leaves: another writer that read the index before
 * this one's tag moved writes an index without this one's part after it.
 * The writer's check after the settle time finds its part missing and
 * merges again: nothing is lost. */
static void test_cache_remote__a_part_lost_to_a_stale_writer_is_merged_again(void **state)
{
	(void)state;
	_cleanup_free_ char *tmp = test_mkdtemp("cache-race");
	_cleanup_free_ char *cdir = plait_path_join(tmp, "cache");
	_cleanup_free_ char *ldir = plait_path_join(tmp, "shared");
	struct plait_buf sp = PLAIT_BUF_INIT, cur = PLAIT_BUF_INIT, stale = PLAIT_BUF_INIT;
	plait_buf_addf(&sp, "oci:%s:cache", ldir);
	struct plait_cache *c = NULL;
	assert_int_equal(plait_cache_open(cdir, &c, NULL), 0);
	struct plait_cache_record rec;
	fill_record(&rec, "race", true, NULL);
	assert_int_equal(plait_cache_step_write(c, rec.key, &rec.step), 0);
	const char *keys[] = { rec.key };
	struct writer w = { .cache_dir = cdir, .spec = sp.buf, .part = { "app/-/linux/amd64", keys, 1 } };
	/* a long settle time (export_thread_slow), so the stale write lands inside it */
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, export_thread_slow, &w), 0);
	struct plait_descriptor theirs, mine = { 0 };
	part_desc(&theirs, "app/-/linux/arm64", "stale-writer");
	bool wrote = false;
	for (int i = 0; i < 2000 && !wrote; i++) {
		read_index(ldir, &cur);
		struct plait_index idx = { 0 };
		if (cur.len && plait_index_parse(cur.buf, cur.len, &idx, NULL) == 0 && idx.n_manifests == 1) {
			/* the writer's tag moved: now the stale writer's index, without it */
			plait_descriptor_copy(&mine, &idx.manifests[0]);
			char *note = NULL;
			size_t dropped;
			assert_int_equal(plait_cache_index_merge(NULL, 0, &theirs, 1, 0, &stale, &note, &dropped, NULL), 0);
			struct plait_store *st = NULL;
			struct plait_descriptor d = { .media_type = (char *)"application/vnd.oci.image.index.v1+json",
						      .size = (int64_t)stale.len };
			assert_int_equal(plait_store_open(ldir, false, &st, NULL), 0);
			assert_int_equal(plait_store_put_bytes(st, stale.buf, stale.len, d.digest, NULL), 0);
			assert_int_equal(plait_store_tag(st, &d, "cache", NULL), 0);
			plait_store_free(st);
			wrote = true;
		}
		plait_index_release(&idx);
		if (!wrote)
			usleep(2000);
	}
	pthread_join(t, NULL);
	assert_true(wrote);
	if (w.r < 0)
		fail_msg("writer failed: %s", w.msg);
	assert_int_equal(w.st.merges, 2); /* its check saw the part gone and merged again */
	read_index(ldir, &cur);
	assert_true(plait_cache_index_has(cur.buf, cur.len, &mine, 1));
	assert_true(plait_cache_index_has(cur.buf, cur.len, &theirs, 1));
	plait_descriptor_release(&theirs);
	plait_descriptor_release(&mine);
	plait_cache_step_release(&rec.step);
	free(w.msg);
	plait_cache_free(c);
	plait_buf_release(&sp);
	plait_buf_release(&cur);
	plait_buf_release(&stale);
	plait_rm_rf(tmp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cache_remote__specs_as_buildx_spells_them),
		cmocka_unit_test(test_cache_remote__bad_specs_name_the_option_and_the_fix),
		cmocka_unit_test(test_cache_remote__records_round_trip_and_refuse_newer_formats),
		cmocka_unit_test(test_cache_remote__merge_keeps_other_parts_and_replaces_its_own),
		cmocka_unit_test(test_cache_remote__max_size_drops_the_least_recently_written_other_parts),
		cmocka_unit_test(test_cache_remote__two_writers_at_once_lose_nothing_and_import_is_lazy),
		cmocka_unit_test(test_cache_remote__a_part_lost_to_a_stale_writer_is_merged_again),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
