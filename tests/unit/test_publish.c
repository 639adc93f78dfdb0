/* Unit tests for core/publish.c: fake destinations record every call, so
 * the protocol's promises are checked as an order of calls: blobs before
 * the manifests naming them, manifests before the index, every image of
 * every destination before any tag; no call at all when a job failed (the
 * pipeline's guard, plait_pipeline_publish); an
 * interrupt between two tags stops before the second. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "tmpdir.h"

#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/stat.h>
#include <string.h>
#include <errno.h>

#include "core/pipeline.h"
#include "core/publish.h"

/* ---- a source layout: an index of two single-layer images ---- */

struct fixture {
	char *dir;
	struct plait_endpoint *src;
	struct plait_buf index_bytes, man_bytes[2];
	struct plait_descriptor index, man[2];
	char blob[2][2][PLAIT_SHA256_DIGEST_SIZE]; /* each image's layer and config */
};

static void put(struct plait_store *s, const char *data, size_t len, char digest[PLAIT_SHA256_DIGEST_SIZE])
{
	struct plait_error *err = NULL;
	if (plait_store_put_bytes(s, data, len, digest, &err) < 0)
		fail_msg("put_bytes: %s", err->msg);
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	struct plait_error *err = NULL;
	f->dir = test_mkdtemp("test-publish");
	struct plait_store *s = NULL;
	assert_int_equal(plait_store_open(f->dir, true, &s, &err), 0);
	static const char *const arches[2] = { "amd64", "arm64" };
	struct plait_index idx = { .schema_version = 2 };
	idx.media_type = xstrdup("application/vnd.oci.image.index.v1+json");
	for (int i = 0; i < 2; i++) {
		struct plait_buf layer = PLAIT_BUF_INIT, cfg = PLAIT_BUF_INIT;
		char *layer_digest = f->blob[i][0], *cfg_digest = f->blob[i][1];
		plait_buf_addf(&layer, "layer %s", arches[i]);
		put(s, layer.buf, layer.len, layer_digest);
		plait_buf_addf(&cfg, "{\"architecture\":\"%s\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
				     "\"diff_ids\":[\"%s\"]}}",
			       arches[i], layer_digest);
		put(s, cfg.buf, cfg.len, cfg_digest);
		plait_buf_init(&f->man_bytes[i], 0);
		plait_buf_addf(&f->man_bytes[i],
			       "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
			       "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"%s\","
			       "\"size\":%zu},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\","
			       "\"digest\":\"%s\",\"size\":%zu}]}",
			       cfg_digest, cfg.len, layer_digest, layer.len);
		put(s, f->man_bytes[i].buf, f->man_bytes[i].len, f->man[i].digest);
		f->man[i].media_type = xstrdup("application/vnd.oci.image.manifest.v1+json");
		f->man[i].size = (int64_t)f->man_bytes[i].len;
		struct plait_platform p = { .os = (char *)"linux", .architecture = (char *)arches[i] };
		struct plait_descriptor d = f->man[i];
		d.platform = &p;
		plait_index_add(&idx, &d);
		plait_buf_release(&layer);
		plait_buf_release(&cfg);
	}
	plait_buf_init(&f->index_bytes, 0);
	assert_int_equal(plait_index_serialise(&idx, &f->index_bytes, &err), 0);
	put(s, f->index_bytes.buf, f->index_bytes.len, f->index.digest);
	f->index.media_type = xstrdup(idx.media_type);
	f->index.size = (int64_t)f->index_bytes.len;
	plait_index_release(&idx);
	f->src = plait_layout_endpoint_new(s, f->dir, f->dir, NULL);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	plait_endpoint_free(f->src);
	plait_rm_rf(f->dir);
	free(f->dir);
	plait_buf_release(&f->index_bytes);
	plait_descriptor_release(&f->index);
	for (int i = 0; i < 2; i++) {
		plait_buf_release(&f->man_bytes[i]);
		plait_descriptor_release(&f->man[i]);
	}
	free(f);
	return 0;
}

/* ---- fake destinations: every call goes into one shared log ---- */

struct call {
	char what[16]; /* "blob", "manifest", "index", "tag", "commit" */
	char dst[16];
	char arg[PLAIT_DIGEST_MAX];
};

static struct {
	pthread_mutex_t lock;
	struct call v[128];
	size_t n;
	atomic_int interrupt;
	int interrupt_after_tags; /* raise the interrupt after this many tags (0: never) */
	size_t tags;
} rec = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void record(struct plait_endpoint *ep, const char *what, const char *arg)
{
	pthread_mutex_lock(&rec.lock);
	assert_true(rec.n < ARRAY_SIZE(rec.v));
	struct call *c = &rec.v[rec.n++];
	snprintf(c->what, sizeof(c->what), "%s", what);
	snprintf(c->dst, sizeof(c->dst), "%s", ep->name);
	snprintf(c->arg, sizeof(c->arg), "%s", arg ? arg : "");
	pthread_mutex_unlock(&rec.lock);
}

static int fake_has_blob(struct plait_endpoint *ep, const struct plait_descriptor *d, struct plait_error **err)
{
	(void)ep, (void)d, (void)err;
	return 0;
}

static int fake_put_blob(struct plait_endpoint *ep, const struct plait_descriptor *d,
			 const struct plait_blob_source *src, struct plait_error **err)
{
	(void)src, (void)err;
	record(ep, "blob", d->digest);
	return 0;
}

static int fake_put_manifest(struct plait_endpoint *ep, const char *media_type, const void *data, size_t len,
			     const char *digest, struct plait_error **err)
{
	(void)data, (void)len, (void)err;
	record(ep, plait_media_type_is_index(plait_media_type_from_string(media_type)) ? "index" : "manifest",
	       digest);
	return 0;
}

static int fake_tag(struct plait_endpoint *ep, const char *tag, const struct plait_descriptor *d, const void *data,
		    size_t len, struct plait_error **err)
{
	(void)d, (void)data, (void)len, (void)err;
	record(ep, "tag", tag);
	if (rec.interrupt_after_tags && ++rec.tags == (size_t)rec.interrupt_after_tags)
		rec.interrupt = 1; /* as SIGINT would, while the tags move */
	return 0;
}

static int fake_commit(struct plait_endpoint *ep, struct plait_error **err)
{
	(void)err;
	record(ep, "commit", NULL);
	return 0;
}

static void fake_free(struct plait_endpoint *ep)
{
	(void)ep;
}

static const struct plait_endpoint_ops fake_ops = {
	.kind = "fake",
	.has_blob = fake_has_blob,
	.put_blob = fake_put_blob,
	.put_manifest = fake_put_manifest,
	.tag = fake_tag,
	.commit = fake_commit,
	.free = fake_free,
};

static struct plait_endpoint *fake_new(const char *name)
{
	return plait_endpoint_alloc(&fake_ops, name, name, NULL);
}

static void rec_reset(void)
{
	rec.n = 0;
	rec.interrupt = 0;
	rec.interrupt_after_tags = 0;
	rec.tags = 0;
}

/* The log, one call a line, for failure messages. */
static const char *log_text(void)
{
	static char text[8192];
	size_t at = 0;
	text[0] = '\0';
	for (size_t i = 0; i < rec.n && at < sizeof(text); i++)
		at += (size_t)snprintf(text + at, sizeof(text) - at, "  %zu: %s %s %.19s\n", i, rec.v[i].what,
				       rec.v[i].dst, rec.v[i].arg);
	return text;
}

/* Index of the first (last) call of kind what at dst (NULL: any); -1 when none. */
static ssize_t find_call(const char *what, const char *dst, bool last)
{
	ssize_t at = -1;
	for (size_t i = 0; i < rec.n; i++)
		if (streq(rec.v[i].what, what) && (!dst || streq(rec.v[i].dst, dst))) {
			at = (ssize_t)i;
			if (!last)
				break;
		}
	return at;
}

static size_t count_calls(const char *what)
{
	size_t n = 0;
	for (size_t i = 0; i < rec.n; i++)
		n += streq(rec.v[i].what, what);
	return n;
}

/* The call of kind what with arg; fails when there is none. */
static size_t call_at(const char *what, const char *arg)
{
	for (size_t i = 0; i < rec.n; i++)
		if (streq(rec.v[i].what, what) && streq(rec.v[i].arg, arg))
			return i;
	fail_msg("no call '%s %s' in:\n%s", what, arg, log_text());
	return 0;
}

static void assert_call_before(const char *a, const char *arg_a, const char *b, const char *arg_b)
{
	size_t x = call_at(a, arg_a), y = call_at(b, arg_b);
	if (x > y)
		fail_msg("'%s %.19s' (call %zu) came after '%s %.19s' (call %zu):\n%s", a, arg_a, x, b, arg_b, y,
			 log_text());
}

/* Every call of kind a (at dst) comes before every call of kind b (at dst). */
static void assert_all_before(const char *a, const char *b, const char *dst)
{
	ssize_t last_a = find_call(a, dst, true), first_b = find_call(b, dst, false);
	if (last_a < 0 || first_b < 0)
		fail_msg("want calls '%s' and '%s' at %s, got:\n%s", a, b, dst ? dst : "any", log_text());
	if (last_a > first_b)
		fail_msg("a '%s' (call %zd) came after a '%s' (call %zd) at %s:\n%s", a, last_a, b, first_b,
			 dst ? dst : "any destination", log_text());
}

static const struct plait_copy_opts one_at_a_time = { .parallel = 1 };

/* Build's items: each -t gets the whole index, copied by digest, and its tag. */
static void build_items(struct fixture *f, struct plait_endpoint **dsts, size_t n, struct plait_publish_copy *copy,
			struct plait_publish_item *items)
{
	*copy = (struct plait_publish_copy){ f->src, &f->index, f->index_bytes.buf, f->index_bytes.len };
	static const char *const tags[] = { "1.0", "1.0-a", "1.0-b" };
	for (size_t k = 0; k < n; k++)
		items[k] = (struct plait_publish_item){ .dst = dsts[k], .name = dsts[k]->name, .copies = copy,
							.n_copies = 1, .root = &f->index, .data = f->index_bytes.buf,
							.len = f->index_bytes.len, .tag = tags[k] };
}

/* The set-up most push tests share: n destinations "one", "two", ... each
 * given the whole index by build_items, and a clean record. */
struct push_case {
	struct plait_endpoint *dst[3];
	size_t n;
	struct plait_publish_copy copy;
	struct plait_publish_item items[3];
	struct plait_publish_status st;
	struct plait_error *err;
};

static void push_case_init(struct fixture *f, struct push_case *c, size_t n)
{
	static const char *const names[] = { "one", "two", "three" };
	assert_true(n <= ARRAY_SIZE(c->dst));
	*c = (struct push_case){ .n = n };
	for (size_t i = 0; i < n; i++)
		c->dst[i] = fake_new(names[i]);
	build_items(f, c->dst, n, &c->copy, c->items);
	rec_reset();
}

static void push_case_release(struct push_case *c)
{
	plait_error_free(c->err);
	for (size_t i = 0; i < c->n; i++)
		plait_endpoint_free(c->dst[i]);
}

/* ---- tests ---- */

static void test_publish__blobs_then_manifests_then_index_then_tags(void **state)
{
	struct fixture *f = *state;
	struct push_case c;
	push_case_init(f, &c, 2);
	struct plait_publish_opts o = { .copy = &one_at_a_time, .interrupt = &rec.interrupt };
	int r = plait_publish_push(c.items, 2, false, &o, &c.st, &c.err);
	if (r < 0)
		fail_msg("publish: %s", c.err->msg);
	for (size_t d = 0; d < 2; d++) {
		assert_all_before("blob", "manifest", c.dst[d]->name);
		assert_all_before("manifest", "index", c.dst[d]->name);
	}
	/* every image of every destination before the first tag anywhere */
	assert_all_before("index", "tag", NULL);
	assert_all_before("blob", "tag", NULL);
	assert_all_before("tag", "commit", NULL);
	assert_int_equal(count_calls("blob"), 8); /* 2 configs + 2 layers, per destination */
	assert_int_equal(count_calls("manifest"), 4);
	assert_int_equal(count_calls("index"), 2);
	assert_int_equal(count_calls("tag"), 2);
	assert_int_equal(count_calls("commit"), 2);
	assert_string_equal(rec.v[find_call("tag", NULL, false)].arg, "1.0");
	assert_int_equal(c.st.tagged, 2);
	push_case_release(&c);
}

/* index create's items: the images first, then the new index put by digest. */
static void test_publish__put_root_after_its_images(void **state)
{
	struct fixture *f = *state;
	struct plait_endpoint *dst = fake_new("repo");
	struct plait_publish_copy copies[2];
	for (int i = 0; i < 2; i++)
		copies[i] = (struct plait_publish_copy){ f->src, &f->man[i], f->man_bytes[i].buf, f->man_bytes[i].len };
	struct plait_publish_item it = { .dst = dst, .name = "repo:1.0", .copies = copies, .n_copies = 2,
					 .root = &f->index, .data = f->index_bytes.buf, .len = f->index_bytes.len,
					 .put_root = true, .tag = "1.0" };
	struct plait_publish_status st;
	struct plait_error *err = NULL;
	rec_reset();
	struct plait_publish_opts o = { .copy = &one_at_a_time, .interrupt = &rec.interrupt };
	if (plait_publish_push(&it, 1, false, &o, &st, &err) < 0)
		fail_msg("publish: %s", err->msg);
	for (int i = 0; i < 2; i++) {
		assert_call_before("blob", f->blob[i][0], "manifest", f->man[i].digest);
		assert_call_before("blob", f->blob[i][1], "manifest", f->man[i].digest);
	}
	assert_all_before("manifest", "index", NULL);
	assert_all_before("index", "tag", NULL);
	assert_string_equal(rec.v[find_call("index", NULL, false)].arg, f->index.digest);
	plait_endpoint_free(dst);
}

/* The pipeline publishes only when every job was built: with one job failed
 * (or cancelled, or never run), no output is opened, no -t destination is
 * opened, nothing is copied and no tag moves. */
static size_t n_opens;
static int count_open(void *ctx, const char *spec, bool for_write, struct plait_endpoint **out,
		      struct plait_error **err)
{
	(void)ctx, (void)for_write;
	n_opens++;
	*out = fake_new(spec);
	(void)err;
	return 0;
}

static void check_pipeline_publishes_nothing(struct fixture *f, const enum plait_job_state *state, size_t n_jobs,
					     const char *want)
{
	static char *outputs[] = { (char *)"oci:out", NULL };
	static char *tags[] = { (char *)"r.example/app:1.0", NULL };
	/* a cache whose store holds the built image, so that only the guard
	 * stands between a failed build and the destinations */
	_cleanup_free_ char *cache = plait_path_concat(f->dir, "cache");
	_cleanup_free_ char *store = plait_path_concat(cache, "store");
	if (mkdir(cache, 0700) < 0 && errno != EEXIST)
		fail_msg("mkdir %s: %s", cache, strerror(errno));
	if (symlink(f->dir, store) < 0 && errno != EEXIST)
		fail_msg("symlink %s: %s", store, strerror(errno));
	struct plait_target t = { .outputs = outputs, .tags = tags };
	struct plait_request req = { .targets = &t, .n_targets = 1, .push = true, .cache_dir = cache };
	struct plait_build_result results[2] = { { .lock_fd = -1 }, { .lock_fd = -1 } };
	for (size_t j = 0; j < n_jobs; j++)
		plait_descriptor_copy(&results[j].manifest, &f->man[0]);
	struct plait_pipeline_ops ops = { .open = count_open };
	struct plait_pipeline_opts po = { .ops = &ops, .interrupt = &rec.interrupt };
	struct plait_plan_image im = { .req = &t, .tags = tags, .single = true };
	size_t jobs[1] = { 0 };
	im.jobs = jobs;
	im.n_jobs = 1;
	struct plait_pipeline p = { .req = &req, .o = &po };
	p.plan.n_jobs = n_jobs;
	p.plan.images = &im;
	p.plan.n_images = 1;
	p.job_state = (enum plait_job_state *)state;
	p.results = results;
	struct plait_error *err = NULL;
	n_opens = 0;
	rec_reset();
	int r = plait_pipeline_publish(&p, &err);
	if (r >= 0)
		fail_msg("%s: published (exit %d), want a refusal", want, r);
	if (n_opens || rec.n)
		fail_msg("%s: %zu destinations opened, calls:\n%s", want, n_opens, log_text());
	if (!strstr(err->msg, want))
		fail_msg("error '%s', want it to say '%s'", err->msg, want);
	plait_error_free(err);
	free(p.images); /* nothing else was made */
	for (size_t j = 0; j < n_jobs; j++)
		plait_descriptor_release(&results[j].manifest);
}

static void test_publish__pipeline_with_a_failed_job_opens_nothing(void **state)
{
	struct fixture *f = *state;
	static const enum plait_job_state one_failed[2] = { PLAIT_JOB_BUILT, PLAIT_JOB_FAILED };
	static const enum plait_job_state both_cancelled[2] = { PLAIT_JOB_CANCELLED, PLAIT_JOB_CANCELLED };
	check_pipeline_publishes_nothing(f, one_failed, 2, "1 job not built: nothing was published, no tag moved");
	check_pipeline_publishes_nothing(f, both_cancelled, 2, "2 jobs not built");
	/* a pipeline whose build never ran has no job state */
	check_pipeline_publishes_nothing(f, NULL, 1, "1 job not built");
}

static void test_publish__interrupt_between_tags_stops_before_the_next(void **state)
{
	struct fixture *f = *state;
	struct push_case c;
	push_case_init(f, &c, 3);
	rec.interrupt_after_tags = 1;
	struct plait_publish_opts o = { .copy = &one_at_a_time, .interrupt = &rec.interrupt };
	int r = plait_publish_push(c.items, 3, false, &o, &c.st, &c.err);
	assert_int_equal(r, -PLAIT_E_CANCELLED);
	if (count_calls("tag") != 1)
		fail_msg("interrupted after the first tag, but %zu tags moved:\n%s", count_calls("tag"), log_text());
	assert_int_equal(count_calls("index"), 3); /* everything was in place by digest */
	assert_int_equal(count_calls("commit"), 0);
	assert_int_equal(c.st.phase, PLAIT_PUBLISH_PHASE_TAG);
	assert_int_equal(c.st.tagged, 1);
	assert_int_equal(c.st.item, 1);
	push_case_release(&c);
}

static void test_publish__interrupt_before_tags_moves_none(void **state)
{
	struct fixture *f = *state;
	struct push_case c;
	push_case_init(f, &c, 1);
	rec.interrupt = 1;
	struct plait_publish_opts o = { .interrupt = &rec.interrupt };
	assert_true(plait_publish_push(c.items, 1, false, &o, &c.st, &c.err) < 0);
	if (find_call("tag", NULL, false) >= 0)
		fail_msg("interrupted, but a tag moved:\n%s", log_text());
	push_case_release(&c);
}

static void test_publish__by_digest_moves_no_tag(void **state)
{
	struct fixture *f = *state;
	struct push_case c;
	push_case_init(f, &c, 2);
	struct plait_publish_opts o = { .copy = &one_at_a_time, .interrupt = &rec.interrupt };
	if (plait_publish_push(c.items, 2, true, &o, &c.st, &c.err) < 0)
		fail_msg("publish: %s", c.err->msg);
	assert_int_equal(count_calls("index"), 2);
	if (count_calls("tag"))
		fail_msg("--push-by-digest, but a tag moved:\n%s", log_text());
	push_case_release(&c);
}

/* One endpoint shared by two items is committed once, after the tags. */
static void test_publish__shared_destination_committed_once_after_tags(void **state)
{
	struct fixture *f = *state;
	struct plait_endpoint *one = fake_new("one");
	struct plait_endpoint *dst[2] = { one, one };
	struct plait_publish_copy copy;
	struct plait_publish_item items[2];
	struct plait_publish_status st;
	struct plait_error *err = NULL;
	build_items(f, dst, 2, &copy, items);
	rec_reset();
	struct plait_publish_opts o = { .copy = &one_at_a_time, .interrupt = &rec.interrupt };
	if (plait_publish_push(items, 2, false, &o, &st, &err) < 0)
		fail_msg("publish: %s", err->msg);
	assert_int_equal(count_calls("commit"), 1);
	assert_all_before("tag", "commit", NULL);
	plait_endpoint_free(one);
}

/* An output is written whole: its images and their tags, then committed. */
static void test_publish__output_copies_tags_then_commits(void **state)
{
	struct fixture *f = *state;
	struct plait_endpoint *dst = fake_new("oci:out");
	struct plait_publish_copy copy = { f->src, &f->index, f->index_bytes.buf, f->index_bytes.len };
	struct plait_publish_item items[2] = {
		{ .dst = dst, .name = "oci:out", .copies = &copy, .n_copies = 1, .root = &f->index,
		  .data = f->index_bytes.buf, .len = f->index_bytes.len, .tag = "1.0" },
		{ .dst = dst, .name = "oci:out", .root = &f->index, .data = f->index_bytes.buf,
		  .len = f->index_bytes.len, .tag = "stable" },
	};
	struct plait_error *err = NULL;
	rec_reset();
	struct plait_publish_opts o = { .copy = &one_at_a_time };
	if (plait_publish_output(items, 2, &o, &err) < 0)
		fail_msg("output: %s", err->msg);
	assert_all_before("index", "tag", NULL);
	assert_all_before("tag", "commit", NULL);
	assert_int_equal(count_calls("index"), 1);
	assert_int_equal(count_calls("tag"), 2);
	assert_int_equal(count_calls("commit"), 1);
	plait_endpoint_free(dst);
}

static int open_local(void *ctx, const char *spec, bool for_write, struct plait_endpoint **out,
		      struct plait_error **err)
{
	(*(int *)ctx)++;
	return plait_endpoint_open_local(spec, for_write, out, err);
}

/* Several names for one layout share one endpoint (an archive's writer
 * holds a lock: a second open would wait); each keeps its own tag. */
static void test_publish__pool_opens_each_place_once(void **state)
{
	struct fixture *f = *state;
	struct plait_publish_pool pool = { 0 };
	struct plait_endpoint *a = NULL, *b = NULL, *c = NULL;
	char *ra = NULL, *rb = NULL, *rc = NULL;
	struct plait_error *err = NULL;
	int opens = 0;
	char spec[3][300];
	snprintf(spec[0], sizeof(spec[0]), "oci:%s/out:1.0", f->dir);
	snprintf(spec[1], sizeof(spec[1]), "oci:%s/out:stable", f->dir);
	snprintf(spec[2], sizeof(spec[2]), "oci:%s/other:1.0", f->dir);
	if (plait_publish_pool_open(&pool, spec[0], open_local, &opens, &a, &ra, &err) < 0 ||
	    plait_publish_pool_open(&pool, spec[1], open_local, &opens, &b, &rb, &err) < 0 ||
	    plait_publish_pool_open(&pool, spec[2], open_local, &opens, &c, &rc, &err) < 0)
		fail_msg("open: %s", err->msg);
	if (a != b)
		fail_msg("'%s' and '%s' got two endpoints for one layout", spec[0], spec[1]);
	assert_ptr_not_equal(a, c);
	if (opens != 2)
		fail_msg("three names of two layouts: %d opens, want 2", opens);
	assert_int_equal(pool.n, 2);
	assert_string_equal(ra, "1.0");
	assert_string_equal(rb, "stable");
	assert_string_equal(rc, "1.0");
	free(ra);
	free(rb);
	free(rc);
	plait_publish_pool_release(&pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_publish__blobs_then_manifests_then_index_then_tags),
		cmocka_unit_test(test_publish__put_root_after_its_images),
		cmocka_unit_test(test_publish__pipeline_with_a_failed_job_opens_nothing),
		cmocka_unit_test(test_publish__interrupt_between_tags_stops_before_the_next),
		cmocka_unit_test(test_publish__interrupt_before_tags_moves_none),
		cmocka_unit_test(test_publish__by_digest_moves_no_tag),
		cmocka_unit_test(test_publish__shared_destination_committed_once_after_tags),
		cmocka_unit_test(test_publish__output_copies_tags_then_commits),
		cmocka_unit_test(test_publish__pool_opens_each_place_once),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
