/* tests/unit/test_remote.c - builders.json (parse, save, corrupt files),
 * node URLs, a node's facts from its JSON, and the assignment of platforms
 * to nodes and this host (platforms/remote.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "asserts.h"
#include "rm_tree.h"
#include "platforms/remote.h"
#include "core/platform.h"
#include "core/strv.h"
#include "core/buf.h"

#include "core/banned.h"

static void test_url(void **state)
{
	(void)state;
	char *u, *h;
	int p;
	struct plait_error *e = NULL;
	assert_int_equal(0, plait_node_url_parse("ssh://bob@arm1.example:2222", &u, &h, &p, &e));
	assert_string_equal("bob", u);
	assert_string_equal("arm1.example", h);
	assert_int_equal(2222, p);
	free(u);
	free(h);
	assert_int_equal(0, plait_node_url_parse("ssh://10.0.0.5", &u, &h, &p, &e));
	assert_null(u);
	assert_string_equal("10.0.0.5", h);
	assert_int_equal(0, p);
	free(h);
	const char *bad[] = { "http://x", "ssh://", "ssh://@x", "ssh://x:0", "ssh://x:70000", "ssh://x:22a",
			      "ssh://x/path", "ssh://-oProxyCommand=x", "ssh://-l@x", "ssh://a b" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		assert_true(plait_node_url_parse(bad[i], &u, &h, &p, &e) < 0);
		assert_null(u);
		assert_null(h);
		assert_non_null(strstr(e->msg, bad[i]));
		plait_error_free(e);
		e = NULL;
	}
}

static const char good[] = "{\"version\": 1, \"current\": \"farm\", \"builders\": [{\"name\": \"farm\", "
			   "\"identity\": \"/k\", \"remote_plait\": null, \"nodes\": [{\"url\": \"ssh://a\", "
			   "\"native\": [\"linux/amd64\"], \"qemu\": [], \"plait_version\": \"0.1.0\", "
			   "\"protocol\": 1, \"cache_dir\": \"/c\", \"cache_free_bytes\": 42}]}]}";

static void test_parse_and_save(void **state)
{
	(void)state;
	struct plait_builders_conf c;
	struct plait_error *e = NULL;
	assert_int_equal(0, plait_builders_parse(good, "b.json", &c, &e));
	assert_string_equal("farm", c.current);
	assert_int_equal(1, c.n_builders);
	struct plait_remote_builder *b = plait_builders_find(&c, "farm");
	assert_non_null(b);
	assert_string_equal("/k", b->identity);
	assert_null(b->remote_plait);
	assert_int_equal(1, b->n_nodes);
	assert_string_equal("linux/amd64", b->nodes[0].native[0]);
	assert_int_equal(42, b->nodes[0].cache_free_bytes);

	char dir[] = "/tmp/plait-remote-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct plait_buf path = PLAIT_BUF_INIT;
	plait_buf_addf(&path, "%s/sub/builders.json", dir);
	assert_int_equal(0, plait_builders_save(path.buf, &c, &e));
	struct stat st;
	assert_int_equal(0, stat(path.buf, &st));
	assert_int_equal(0600, st.st_mode & 0777);
	struct plait_builders_conf c2;
	assert_int_equal(0, plait_builders_load(path.buf, &c2, &e));
	json_auto_t *j1 = plait_builders_to_json(&c), *j2 = plait_builders_to_json(&c2);
	assert_true(json_equal(j1, j2));
	plait_builders_conf_release(&c2);
	/* missing: an empty list */
	struct plait_buf missing = PLAIT_BUF_INIT;
	plait_buf_addf(&missing, "%s/none.json", dir);
	assert_int_equal(0, plait_builders_load(missing.buf, &c2, &e));
	assert_int_equal(0, c2.n_builders);
	assert_null(c2.current);
	plait_buf_release(&missing);
	rm_tree(dir);
	plait_buf_release(&path);
	plait_builders_conf_release(&c);
}

static void test_corrupt(void **state)
{
	(void)state;
	struct {
		const char *text, *want;
	} cases[] = {
		{ "{\"builders\": [", "b.json:1: not valid JSON" },
		{ "[]", "b.json: not a JSON object" },
		{ "{\"version\": 2}", "b.json: \"version\" is not 1" },
		{ "{\"builders\": {}}", "b.json: \"builders\" is not a list" },
		{ "{\"builders\": [{\"nodes\": []}]}", "b.json: builders[0] has no \"name\"" },
		{ "{\"builders\": [{\"name\": \"x\"}]}", "b.json: builders[0].nodes is not a list" },
		{ "{\"builders\": [{\"name\": \"x\", \"nodes\": [{}]}]}", "b.json: builders[0].nodes[0] has no \"url\"" },
		{ "{\"builders\": [{\"name\": \"x\", \"nodes\": [{\"url\": \"ssh://a\", \"native\": [1]}]}]}",
		  "builders[0].nodes[0].native[0] is not a string" },
		{ "{\"builders\": [{\"name\": \"x\", \"nodes\": []}, {\"name\": \"x\", \"nodes\": []}]}",
		  "builder 'x' is there twice" },
		{ "{\"current\": \"y\", \"builders\": []}", "\"current\" names builder 'y', which is not in the file" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct plait_builders_conf c;
		struct plait_error *e = NULL;
		assert_true(plait_builders_parse(cases[i].text, "b.json", &c, &e) < 0);
		if (!strstr(e->msg, cases[i].want))
			fail_msg("case %zu: '%s' lacks '%s'", i, e->msg, cases[i].want);
		assert_int_equal(0, c.n_builders);
		plait_error_free(e);
	}
}

static const char qemu_json[] =
	"{\"host\": \"amd64\", \"arches\": ["
	"{\"arch\": \"amd64\", \"native\": true, \"registered\": false, \"enabled\": false, \"fix_binary\": false, "
	"\"preserve_argv0\": false},"
	"{\"arch\": \"386\", \"native\": true, \"registered\": false},"
	"{\"arch\": \"arm64\", \"native\": false, \"registered\": true, \"enabled\": true, \"fix_binary\": true, "
	"\"preserve_argv0\": true},"
	"{\"arch\": \"arm\", \"native\": false, \"registered\": true, \"enabled\": true, \"fix_binary\": true, "
	"\"preserve_argv0\": false},"
	"{\"arch\": \"s390x\", \"native\": false, \"registered\": true, \"enabled\": false, \"fix_binary\": true, "
	"\"preserve_argv0\": true}]}";

static void test_facts(void **state)
{
	(void)state;
	struct plait_node n = { .url = xstrdup("ssh://a") };
	struct plait_error *e = NULL;
	assert_int_equal(0, plait_node_facts(&n, "{\"version\": \"0.1.0\", \"protocol\": 1, \"cache\": {\"dir\": \"/c\", "
						   "\"free_bytes\": 7}}",
					   qemu_json, &e));
	_cleanup_free_ char *nat = plait_strv_join(n.native, ",");
	_cleanup_free_ char *q = plait_strv_join(n.qemu, ",");
	assert_string_equal("linux/amd64,linux/386", nat);
	assert_string_equal("linux/arm64", q); /* arm lacks P, s390x is disabled */
	assert_string_equal("/c", n.cache_dir);
	assert_int_equal(7, n.cache_free_bytes);
	assert_true(plait_node_facts(&n, "{\"version\": \"9.0\", \"protocol\": 2}", qemu_json, &e) < 0);
	assert_non_null(strstr(e->msg, "node ssh://a runs plait 9.0, which speaks protocol 2"));
	assert_non_null(strstr(e->msg, "--remote-plait"));
	plait_error_free(e);
	e = NULL;
	assert_true(plait_node_facts(&n, "plait 0.0.1", qemu_json, &e) < 0);
	assert_non_null(strstr(e->msg, "printed no version and protocol"));
	plait_error_free(e);
	plait_node_release(&n);
}

/* A fake local chooser: native amd64, QEMU for the arches in ctx. */
static int fake_local(void *ctx, const struct plait_platform *p, struct plait_builder *out, struct plait_error **err)
{
	const char *const *qemu = ctx;
	memset(out, 0, sizeof(*out));
	if (streq(p->architecture, "amd64")) {
		out->name = xstrdup("native");
		return 0;
	}
	if (plait_strv_contains(qemu, p->architecture)) {
		out->name = xstrdup("qemu");
		out->emulated = true;
		return 0;
	}
	return plait_error_set(err, PLAIT_E_NOT_FOUND, "no builder for linux/%s here", p->architecture);
}

static int choose(const struct plait_builder_chooser *c, const char *platform, struct plait_builder *b,
		  struct plait_error **e)
{
	struct plait_platform p = { 0 };
	assert_int_equal(0, plait_platform_parse(platform, &p, NULL));
	int r = c->choose(c->ctx, &p, b, e);
	plait_platform_release(&p);
	return r;
}

static void test_assign(void **state)
{
	(void)state;
	struct plait_node *nodes = xcalloc(2, sizeof(*nodes));
	nodes[0].url = xstrdup("ssh://x86");
	nodes[1].url = xstrdup("ssh://arm");
	plait_strv_push(&nodes[0].native, "linux/amd64");
	plait_strv_push(&nodes[0].qemu, "linux/riscv64");
	plait_strv_push(&nodes[1].native, "linux/arm64");
	plait_strv_push(&nodes[1].native, "linux/arm");
	plait_strv_push(&nodes[1].qemu, "linux/s390x");
	struct plait_remote_builder b = { .name = xstrdup("farm"), .nodes = nodes, .n_nodes = 2 };
	const char *local_qemu[] = { "s390x", "arm64", NULL };
	struct plait_builder_chooser local = { .ctx = local_qemu, .choose = fake_local }, c;
	struct plait_remote_chooser rc = { .b = &b, .local = &local };
	plait_remote_builders(&rc, &c);
	struct plait_builder out;
	struct plait_error *e = NULL;

	/* native on a node first, even over this host's native or QEMU */
	assert_int_equal(0, choose(&c, "linux/amd64", &out, &e));
	assert_string_equal("ssh://x86", out.node);
	assert_false(out.emulated);
	plait_builder_release(&out);
	assert_int_equal(0, choose(&c, "linux/arm64", &out, &e));
	assert_string_equal("ssh://arm", out.node);
	assert_string_equal("node", out.name);
	plait_builder_release(&out);
	assert_int_equal(0, choose(&c, "linux/arm/v7", &out, &e));
	assert_string_equal("ssh://arm", out.node);
	plait_builder_release(&out);
	/* then this host's QEMU, before a node's QEMU */
	assert_int_equal(0, choose(&c, "linux/s390x", &out, &e));
	assert_null(out.node);
	assert_string_equal("qemu", out.name);
	assert_non_null(strstr(out.reason, "this host's QEMU"));
	plait_builder_release(&out);
	/* then a node's QEMU */
	assert_int_equal(0, choose(&c, "linux/riscv64", &out, &e));
	assert_string_equal("ssh://x86", out.node);
	assert_string_equal("node-qemu", out.name);
	assert_true(out.emulated);
	plait_builder_release(&out);
	/* nobody */
	assert_true(choose(&c, "linux/ppc64le", &out, &e) < 0);
	assert_non_null(strstr(e->msg, "no builder for linux/ppc64le here"));
	assert_non_null(strstr(e->msg, "no node of builder 'farm' runs ppc64le"));
	plait_error_free(e);
	e = NULL;
	/* an unreachable node fails every choice with its error */
	nodes[1].error = xstrdup("node ssh://arm: ssh could not connect: Connection refused");
	assert_true(choose(&c, "linux/amd64", &out, &e) < 0);
	assert_non_null(strstr(e->msg, "builder 'farm': node ssh://arm: ssh could not connect: Connection refused"));
	assert_int_equal(PLAIT_E_NETWORK, e->code);
	assert_non_null(strstr(e->msg, "--fallback local"));
	plait_error_free(e);
	e = NULL;
	/* --fallback local: it is left out, and the reason says so */
	rc.fallback_local = true;
	assert_int_equal(0, choose(&c, "linux/amd64", &out, &e));
	assert_string_equal("ssh://x86", out.node);
	plait_builder_release(&out);
	assert_int_equal(0, choose(&c, "linux/arm64", &out, &e)); /* this host's QEMU now */
	assert_null(out.node);
	assert_string_equal("qemu", out.name);
	assert_non_null(strstr(out.reason, "(--fallback local: ssh://arm unreachable)"));
	plait_builder_release(&out);
	assert_true(choose(&c, "linux/arm/v7", &out, &e) < 0); /* only the unreachable node ran it */
	plait_error_free(e);
	plait_remote_builder_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url),
		cmocka_unit_test(test_parse_and_save),
		cmocka_unit_test(test_corrupt),
		cmocka_unit_test(test_facts),
		cmocka_unit_test(test_assign),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
