/* Unit tests for core/bake: docker-bake.json resolved into build targets. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "asserts.h"
#include "core/bake.h"
#include "core/buf.h"
#include "core/error.h"

#include "core/banned.h"

/* The environment the tests see: "NAME=VALUE" entries. */
static const char *const test_env[] = {"REG=env.example", "EMPTY=", "NC=true", NULL};

static const char *test_getenv(const char *name, void *ud)
{
	const char *const *env = ud ? ud : test_env;
	size_t n = strlen(name);
	for (size_t i = 0; env[i]; i++)
		if (!strncmp(env[i], name, n) && env[i][n] == '=')
			return env[i] + n + 1;
	return NULL;
}

/* JSON written with ' for " so the cases stay readable. */
static char *dq(const char *s)
{
	char *r = xstrdup(s);
	for (char *p = r; *p; p++)
		if (*p == '\'')
			*p = '"';
	return r;
}

static int parse(const char *json, const char *const *names, const char *const *sets,
		 const char *const *env, struct plait_bake *b, struct plait_error **err)
{
	_cleanup_free_ char *text = dq(json);
	struct plait_bake_opts o = {
	    .names = names,
	    .sets = sets,
	    .getenv = test_getenv,
	    .getenv_ud = (void *)env,
	};
	return plait_bake_parse(text, strlen(text), "docker-bake.json", &o, b, err);
}

static struct plait_bake parse_ok(const char *json, const char *const *names,
				  const char *const *sets)
{
	struct plait_bake b;
	_cleanup_error_ struct plait_error *err = NULL;
	if (parse(json, names, sets, NULL, &b, &err) < 0)
		fail_msg("parse failed: %s", err ? err->msg : "?");
	return b;
}

/* The message of the error the file must give (caller frees). */
static char *parse_err(const char *json, const char *const *names, const char *const *sets)
{
	struct plait_bake b;
	struct plait_error *err = NULL;
	int r = parse(json, names, sets, NULL, &b, &err);
	if (r >= 0)
		fail_msg("parse succeeded with %zu targets, want an error", b.n_targets);
	assert_int_equal(r, -PLAIT_E_USAGE);
	assert_non_null(err);
	assert_int_equal(b.n_targets, 0);
	assert_null(b.targets);
	char *msg = xstrdup(err->msg);
	plait_error_free(err);
	return msg;
}

static const struct plait_bake_target *find(const struct plait_bake *b, const char *name)
{
	for (size_t i = 0; i < b->n_targets; i++)
		if (streq(b->targets[i].name, name))
			return &b->targets[i];
	fail_msg("no target '%s' among %zu", name, b->n_targets);
	return NULL;
}

static void join(struct plait_buf *out, char *const *v)
{
	if (!v) {
		plait_buf_adds(out, "(null)");
		return;
	}
	plait_buf_addch(out, '[');
	for (size_t i = 0; v[i]; i++)
		plait_buf_addf(out, "%s%s", i ? "|" : "", v[i]);
	plait_buf_addch(out, ']');
}

/* v must equal want, given as "[a|b]" or "(null)". */
static void assert_joined(char *const *v, const char *want, const char *what)
{
	_cleanup_buf_ struct plait_buf got = PLAIT_BUF_INIT;
	join(&got, v);
	if (!streq(got.buf, want))
		fail_msg("%s: got %s, want %s", what, got.buf, want);
}

static void assert_names(const struct plait_bake *b, const char *want)
{
	_cleanup_buf_ struct plait_buf got = PLAIT_BUF_INIT;
	plait_buf_addch(&got, '[');
	for (size_t i = 0; i < b->n_targets; i++)
		plait_buf_addf(&got, "%s%s", i ? "|" : "", b->targets[i].name);
	plait_buf_addch(&got, ']');
	if (!streq(got.buf, want))
		fail_msg("targets: got %s, want %s", got.buf, want);
}

static void test_bake__variables_default_and_env_override(void **state)
{
	(void)state;
	struct plait_bake b =
	    parse_ok("{'variable': {'REG': {'default': 'docker.io'}, 'TAG': {'default': '1.0'},"
		     "  'EMPTY': {'default': 'not used'}, 'NODEF': {}, 'NUM': {'default': 3}},"
		     " 'target': {'app': {'tags': ['${REG}/app:${TAG}', 'x${EMPTY}y${NODEF}z', "
		     "'n${NUM}']}}}",
		     NULL, NULL);
	assert_int_equal(b.n_targets, 1);
	/* REG and EMPTY come from the environment (EMPTY set to ""), TAG from its default */
	assert_joined(b.targets[0].tags, "[env.example/app:1.0|xyz|n3]", "tags");
	plait_bake_release(&b);
}

static void test_bake__variable_defaults_refer_to_variables(void **state)
{
	(void)state;
	static const char *const env[] = {"BASE=v2", NULL};
	_cleanup_error_ struct plait_error *err = NULL;
	struct plait_bake b;
	const char *json = "{'variable': {'FULL': {'default': '${BASE}-${SUFFIX}'},"
			   "  'BASE': {'default': 'v1'}, 'SUFFIX': {'default': '${BASE}x'}},"
			   " 'target': {'app': {'tags': ['r/app:${FULL}']}}}";
	assert_int_equal(parse(json, NULL, NULL, (const char *const[]){NULL}, &b, &err), 0);
	assert_joined(b.targets[0].tags, "[r/app:v1-v1x]", "tags from defaults");
	plait_bake_release(&b);
	/* the environment's BASE reaches the variables built from it */
	assert_int_equal(parse(json, NULL, NULL, env, &b, &err), 0);
	assert_joined(b.targets[0].tags, "[r/app:v2-v2x]", "tags with BASE from the environment");
	plait_bake_release(&b);
}

static void test_bake__variable_cycle_is_an_error(void **state)
{
	(void)state;
	_cleanup_free_ char *msg =
	    parse_err("{'variable': {'A': {'default': '${B}'}, 'B': {'default': 'x${A}'}},"
		      " 'target': {'app': {'tags': ['${A}']}}}",
		      NULL, NULL);
	assert_string_equal(msg, "docker-bake.json: variable \"A\": default: "
				 "variables refer to each other: A -> B -> A");
}

static void test_bake__interpolation_in_every_field(void **state)
{
	(void)state;
	struct plait_bake b = parse_ok(
	    "{'variable': {'V': {'default': 'v'}, 'NC': {}},"
	    " 'group': {'default': {'targets': ['app-${V}']}},"
	    " 'target': {"
	    "  'base-v': {'labels': {'from': 'base-${V}'}},"
	    "  'app-v': {'inherits': ['base-${V}'], 'context': 'ctx-${V}', 'dockerfile': 'df-${V}',"
	    "   'target': 'stage-${V}', 'platforms': ['linux/${V}'], 'tags': ['r/${V}'],"
	    "   'args': {'A': 'a-${V}'}, 'labels': {'L': 'l-${V}'}, 'annotations': "
	    "['index:k=${V}'],"
	    "   'output': ['type=oci,dest=out-${V}'], 'no-cache': '${NC}'}}}",
	    NULL, NULL);
	assert_names(&b, "[app-v]");
	const struct plait_bake_target *t = &b.targets[0];
	assert_string_equal(t->context, "ctx-v");
	assert_string_equal(t->dockerfile, "ctx-v/df-v");
	assert_string_equal(t->target, "stage-v");
	assert_joined(t->platforms, "[linux/v]", "platforms");
	assert_joined(t->tags, "[r/v]", "tags");
	assert_joined(t->args, "[A=a-v]", "args");
	assert_joined(t->labels, "[from=base-v|L=l-v]", "labels");
	assert_joined(t->annotations, "[index:k=v]", "annotations");
	assert_joined(t->outputs, "[type=oci,dest=out-v]", "outputs");
	assert_true(t->no_cache); /* NC=true in the environment */
	plait_bake_release(&b);
}

static void test_bake__dollar_dollar_is_a_literal_dollar(void **state)
{
	(void)state;
	struct plait_bake b = parse_ok(
	    "{'variable': {'X': {'default': 'x'}},"
	    " 'target': {'app': {'args': {'A': '$${X}', 'B': 'a$$b', 'C': '$X $ ${X}$'}}}}",
	    NULL, NULL);
	assert_joined(b.targets[0].args, "[A=${X}|B=a$b|C=$X $ x$]", "args");
	plait_bake_release(&b);
}

static void test_bake__unknown_variable_names_file_target_field(void **state)
{
	(void)state;
	_cleanup_free_ char *msg = parse_err(
	    "{'variable': {'TAG': {'default': '1'}}, 'target': {'app': {'tags': ['r/app:${TG}']}}}",
	    NULL, NULL);
	assert_string_equal(msg,
			    "docker-bake.json: target \"app\": tags: unknown variable \"${TG}\"");

	_cleanup_free_ char *msg2 =
	    parse_err("{'target': {'app': {'args': {'K': '${HOME}'}}}}", NULL, NULL);
	assert_string_equal(
	    msg2, "docker-bake.json: target \"app\": args.K: unknown variable \"${HOME}\"");

	_cleanup_free_ char *msg3 = parse_err(
	    "{'variable': {'A': {'default': '${NOPE}'}}, 'target': {'app': {'target': '${A}'}}}",
	    NULL, NULL);
	assert_string_equal(
	    msg3, "docker-bake.json: variable \"A\": default: unknown variable \"${NOPE}\"");
}

static void test_bake__unterminated_or_complex_expression_is_an_error(void **state)
{
	(void)state;
	_cleanup_free_ char *msg =
	    parse_err("{'target': {'app': {'context': 'a${X'}}}", NULL, NULL);
	assert_contains(msg, "target \"app\": context: unterminated \"${\"");
	_cleanup_free_ char *msg2 =
	    parse_err("{'target': {'app': {'context': '${upper(X)}'}}}", NULL, NULL);
	assert_contains(msg2, "unsupported expression \"${upper(X)}\"");
}

static void test_bake__groups_nest_in_order_each_target_once(void **state)
{
	(void)state;
	struct plait_bake b = parse_ok(
	    "{'group': {'all': {'targets': ['g1', 'c', 'g2']}, 'g1': {'targets': ['b', 'a']},"
	    "  'g2': {'targets': ['a', 'g1', 'd']}},"
	    " 'target': {'a': {}, 'b': {}, 'c': {}, 'd': {}}}",
	    (const char *const[]){"all", "c", NULL}, NULL);
	assert_names(&b, "[b|a|c|d]");
	plait_bake_release(&b);
}

static void test_bake__group_may_list_a_target_of_its_own_name(void **state)
{
	(void)state;
	struct plait_bake b = parse_ok("{'group': {'app': {'targets': ['app', 'b']}},"
				       " 'target': {'app': {}, 'b': {}}}",
				       (const char *const[]){"app", NULL}, NULL);
	assert_names(&b, "[app|b]");
	plait_bake_release(&b);
}

static void test_bake__group_cycle_is_an_error(void **state)
{
	(void)state;
	_cleanup_free_ char *msg =
	    parse_err("{'group': {'g1': {'targets': ['a', 'g2']}, 'g2': {'targets': ['g1']}},"
		      " 'target': {'a': {}}}",
		      (const char *const[]){"g1", NULL}, NULL);
	assert_string_equal(msg, "docker-bake.json: group \"g2\": targets: "
				 "groups contain each other: g1 -> g2 -> g1");
}

static void test_bake__no_name_builds_the_default_group(void **state)
{
	(void)state;
	struct plait_bake b = parse_ok("{'group': {'default': {'targets': ['b', 'c']}},"
				       " 'target': {'a': {}, 'b': {}, 'c': {}}}",
				       NULL, NULL);
	assert_names(&b, "[b|c]");
	plait_bake_release(&b);
	/* an empty names list means the same */
	b = parse_ok("{'group': {'default': {'targets': ['c']}}, 'target': {'a': {}, 'c': {}}}",
		     (const char *const[]){NULL}, NULL);
	assert_names(&b, "[c]");
	plait_bake_release(&b);
}

static void test_bake__no_name_and_one_target_builds_it(void **state)
{
	(void)state;
	struct plait_bake b = parse_ok("{'target': {'only': {'tags': ['r/only']}}}", NULL, NULL);
	assert_names(&b, "[only]");
	plait_bake_release(&b);

	_cleanup_free_ char *msg = parse_err("{'target': {'a': {}, 'b': {}}}", NULL, NULL);
	assert_string_equal(msg, "docker-bake.json: no target named and no \"default\" group: "
				 "name one of: a, b");
}

static void test_bake__unknown_name_lists_targets_and_groups(void **state)
{
	(void)state;
	_cleanup_free_ char *msg =
	    parse_err("{'group': {'all': {'targets': ['a']}}, 'target': {'a': {}, 'b': {}}}",
		      (const char *const[]){"nope", NULL}, NULL);
	assert_string_equal(msg, "docker-bake.json: unknown target or group 'nope': "
				 "the file has targets: a, b; groups: all");
	_cleanup_free_ char *msg2 =
	    parse_err("{'group': {'all': {'targets': ['a', 'x']}}, 'target': {'a': {}}}",
		      (const char *const[]){"all", NULL}, NULL);
	assert_contains(msg2, "group \"all\": targets: unknown target or group 'x'");
}

static void test_bake__inherits_merge_maps_and_replace_lists(void **state)
{
	(void)state;
	struct plait_bake b =
	    parse_ok("{'target': {"
		     " 'base': {'context': 'src', 'args': {'A': '1', 'B': '2'}, 'tags': ['r/base'],"
		     "   'platforms': ['linux/amd64', 'linux/arm64'], 'labels': {'x': 'base'}},"
		     " 'extra': {'args': {'C': 'extra', 'A': 'extra'}, 'target': 'prod', 'labels': "
		     "{'y': '1'}},"
		     " 'app': {'inherits': ['base', 'extra'], 'args': {'B': 'own', 'D': '4'},"
		     "   'tags': ['r/app'], 'target': 'dev'}}}",
		     (const char *const[]){"app", NULL}, NULL);
	const struct plait_bake_target *t = find(&b, "app");
	/* keys keep the position where they first appeared */
	assert_joined(t->args, "[A=extra|B=own|C=extra|D=4]", "args");
	assert_joined(t->labels, "[x=base|y=1]", "labels");
	assert_joined(t->tags, "[r/app]", "tags");
	assert_joined(t->platforms, "[linux/amd64|linux/arm64]", "platforms");
	assert_string_equal(t->context, "src");
	assert_string_equal(t->target, "dev");
	plait_bake_release(&b);
}

static void test_bake__inherits_null_arg_unsets_and_empty_list_replaces(void **state)
{
	(void)state;
	struct plait_bake b = parse_ok(
	    "{'target': {'base': {'args': {'A': '1', 'B': '2'}, 'platforms': ['linux/amd64']},"
	    " 'app': {'inherits': ['base'], 'args': {'A': null, 'N': null}, 'platforms': []}}}",
	    (const char *const[]){"app", NULL}, NULL);
	assert_joined(b.targets[0].args, "[B=2]", "args");
	assert_joined(b.targets[0].platforms, "[]", "platforms");
	assert_joined(b.targets[0].tags, "(null)", "tags");
	plait_bake_release(&b);
}

static void test_bake__inherits_cycle_is_an_error(void **state)
{
	(void)state;
	_cleanup_free_ char *msg = parse_err("{'target': {'a': {'inherits': ['b']}, 'b': "
					     "{'inherits': ['c']}, 'c': {'inherits': ['a']}}}",
					     (const char *const[]){"a", NULL}, NULL);
	assert_string_equal(msg, "docker-bake.json: target \"c\": inherits: "
				 "targets inherit from each other: a -> b -> c -> a");
	_cleanup_free_ char *msg2 =
	    parse_err("{'target': {'a': {'inherits': ['ghost']}}}", NULL, NULL);
	assert_string_equal(msg2,
			    "docker-bake.json: target \"a\": inherits: unknown target 'ghost'");
}

static const char matrix_json[] =
    "{'variable': {'TAG': {'default': '1.0'}},"
    " 'target': {'ml': {'matrix': {'variant': ['cpu', 'cuda'], 'tgt': ['train', 'infer']},"
    "   'name': '${tgt}-${variant}', 'target': '${tgt}', 'args': {'VARIANT': '${variant}'},"
    "   'tags': ['r/${tgt}:${TAG}-${variant}']},"
    "  'other': {}}}";

static void test_bake__matrix_makes_the_product_in_key_order(void **state)
{
	(void)state;
	struct plait_bake b = parse_ok(matrix_json, (const char *const[]){"ml", NULL}, NULL);
	/* requesting the matrix target's own name gives all its combinations */
	assert_names(&b, "[train-cpu|infer-cpu|train-cuda|infer-cuda]");
	const struct plait_bake_target *t = find(&b, "infer-cuda");
	assert_string_equal(t->target, "infer");
	assert_joined(t->args, "[VARIANT=cuda]", "args");
	assert_joined(t->tags, "[r/infer:1.0-cuda]", "tags");
	plait_bake_release(&b);
}

static void test_bake__matrix_name_selects_one_combination(void **state)
{
	(void)state;
	struct plait_bake b =
	    parse_ok(matrix_json, (const char *const[]){"train-cuda", "other", NULL}, NULL);
	assert_names(&b, "[train-cuda|other]");
	assert_joined(b.targets[0].args, "[VARIANT=cuda]", "args");
	plait_bake_release(&b);
}

static void test_bake__matrix_object_values_give_fields(void **state)
{
	(void)state;
	struct plait_bake b =
	    parse_ok("{'target': {'app': {'matrix': {'item': [{'name': 'a', 'ver': '1'},"
		     "  {'name': 'b', 'ver': 2}]}, 'name': 'app-${item.name}',"
		     "  'args': {'VER': '${item.ver}'}}}}",
		     NULL, NULL);
	assert_names(&b, "[app-a|app-b]");
	assert_joined(find(&b, "app-b")->args, "[VER=2]", "args of app-b");
	plait_bake_release(&b);

	/* matrix values use variables too (strings and object fields) */
	b = parse_ok("{'variable': {'CPU_BASE': {'default': 'debian:12'}, 'GPU': {'default': 'cuda'}},"
		     " 'target': {'app': {'matrix': {'v': [{'id': 'cpu', 'base': '${CPU_BASE}'}],"
		     "  'k': ['${GPU}-x']}, 'name': 'app-${v.id}-${k}',"
		     "  'args': {'BASE': '${v.base}', 'K': '${k}'}}}}",
		     NULL, NULL);
	assert_names(&b, "[app-cpu-cuda-x]");
	assert_joined(find(&b, "app-cpu-cuda-x")->args, "[BASE=debian:12|K=cuda-x]", "matrix values with variables");
	plait_bake_release(&b);

	_cleanup_free_ char *msg = parse_err(
	    "{'target': {'app': {'matrix': {'item': [{'n': 'a'}]}, 'name': 'app-${item}'}}}", NULL,
	    NULL);
	assert_contains(msg, "target \"app\": name: matrix value \"${item}\" is an object");
	_cleanup_free_ char *msg2 = parse_err(
	    "{'target': {'app': {'matrix': {'item': [{'n': 'a'}]}, 'name': 'app-${item.x}'}}}",
	    NULL, NULL);
	assert_contains(msg2, "unknown variable \"${item.x}\"");
}

static void test_bake__matrix_duplicate_names_are_an_error(void **state)
{
	(void)state;
	_cleanup_free_ char *msg =
	    parse_err("{'target': {'app': {'matrix': {'v': ['cpu', 'cuda'], 'os': ['a', 'b']},"
		      " 'name': 'app-${v}'}}}",
		      NULL, NULL);
	assert_string_equal(msg, "docker-bake.json: target \"app\": name: the matrix makes "
				 "'app-cpu' twice: use every matrix key in \"name\"");
	_cleanup_free_ char *msg2 = parse_err(
	    "{'target': {'app-cpu': {}, 'app': {'matrix': {'v': ['cpu']}, 'name': 'app-${v}'}}}",
	    NULL, NULL);
	assert_contains(msg2, "'app-cpu' is already the name of a target");
}

static void test_bake__matrix_needs_a_valid_name(void **state)
{
	(void)state;
	_cleanup_free_ char *msg =
	    parse_err("{'target': {'app': {'matrix': {'v': ['cpu']}}}}", NULL, NULL);
	assert_contains(msg, "target \"app\": a matrix needs \"name\"");
	_cleanup_free_ char *msg2 = parse_err(
	    "{'target': {'app': {'matrix': {'v': ['a/b']}, 'name': 'app-${v}'}}}", NULL, NULL);
	assert_contains(msg2, "'app-a/b' is not a valid target name");
	_cleanup_free_ char *msg3 =
	    parse_err("{'target': {'app': {'matrix': {'v': []}, 'name': 'x${v}'}}}", NULL, NULL);
	assert_contains(msg3, "matrix: 'v': expected a non-empty list of values");
}

static void test_bake__set_changes_one_target(void **state)
{
	(void)state;
	struct plait_bake b = parse_ok(
	    "{'target': {'a': {'tags': ['r/a'], 'args': {'X': '1'}}, 'b': {'tags': ['r/b']}}}",
	    (const char *const[]){"a", "b", NULL},
	    (const char *const[]){
		"a.tags=r/a:1,r/a:latest", "a.args.X=2", "a.args.Y=3", "a.context=sub",
		"a.dockerfile=D", "a.target=t", "a.platform=linux/arm64", "a.labels.L=v",
		"a.output=type=oci,dest=o", "a.annotations=index:k=v", "a.no-cache=true", NULL});
	const struct plait_bake_target *a = find(&b, "a"), *bt = find(&b, "b");
	assert_joined(a->tags, "[r/a:1|r/a:latest]", "tags of a");
	assert_joined(a->args, "[X=2|Y=3]", "args of a");
	assert_joined(a->labels, "[L=v]", "labels of a");
	assert_joined(a->platforms, "[linux/arm64]", "platforms of a");
	/* an output holds commas of its own: it stays one entry */
	assert_joined(a->outputs, "[type=oci,dest=o]", "outputs of a");
	assert_joined(a->annotations, "[index:k=v]", "annotations of a");
	assert_string_equal(a->context, "sub");
	assert_string_equal(a->dockerfile, "sub/D");
	assert_string_equal(a->target, "t");
	assert_true(a->no_cache);
	assert_joined(bt->tags, "[r/b]", "tags of b");
	assert_null(bt->args);
	assert_false(bt->no_cache);
	plait_bake_release(&b);
}

static void test_bake__set_star_changes_every_target(void **state)
{
	(void)state;
	struct plait_bake b = parse_ok(
	    matrix_json, (const char *const[]){"ml", "other", NULL},
	    (const char *const[]){"*.platforms=linux/amd64,linux/arm64", "ml.args.EXTRA=1", NULL});
	for (size_t i = 0; i < b.n_targets; i++)
		assert_joined(b.targets[i].platforms, "[linux/amd64|linux/arm64]", b.targets[i].name);
	/* a matrix target's own name reaches all of its combinations */
	assert_joined(find(&b, "train-cpu")->args, "[VARIANT=cpu|EXTRA=1]", "args of train-cpu");
	assert_null(find(&b, "other")->args);
	plait_bake_release(&b);
}

static void test_bake__cache_from_and_cache_to_are_read_inherited_and_set(void **state)
{
	(void)state;
	struct plait_bake b = parse_ok("{'target': {'base': {'cache-from': ['type=local,src=/c'], "
				       "'cache-to': ['type=local,dest=/c,mode=max']}, "
				       "'a': {'inherits': ['base']}}}",
				       (const char *const[]){"a", NULL}, NULL);
	assert_joined(find(&b, "a")->cache_from, "[type=local,src=/c]", "cache-from inherited");
	assert_joined(find(&b, "a")->cache_to, "[type=local,dest=/c,mode=max]", "cache-to inherited");
	plait_bake_release(&b);
	b = parse_ok("{'target': {'a': {}}}", NULL, (const char *const[]){"a.cache-to=type=registry,ref=r/c:1", NULL});
	assert_joined(find(&b, "a")->cache_to, "[type=registry,ref=r/c:1]", "cache-to from --set");
	plait_bake_release(&b);
}

static void test_bake__set_errors(void **state)
{
	(void)state;
	const char *json = "{'target': {'a': {}}}";
	_cleanup_free_ char *msg =
	    parse_err(json, NULL, (const char *const[]){"a.ssh=x", NULL});
	assert_contains(msg,
			"docker-bake.json: invalid --set 'a.ssh=x': unknown key 'ssh'");
	_cleanup_free_ char *msg2 = parse_err(json, NULL, (const char *const[]){"a.tags", NULL});
	assert_contains(msg2, "invalid --set 'a.tags': expected TARGET.KEY=VALUE");
	_cleanup_free_ char *msg3 = parse_err(json, NULL, (const char *const[]){"b.tags=x", NULL});
	assert_contains(msg3, "invalid --set 'b.tags=x': no target matches 'b'");
	_cleanup_free_ char *msg4 = parse_err(json, NULL, (const char *const[]){"a.args.=1", NULL});
	assert_contains(msg4, "name the args");
	_cleanup_free_ char *msg5 =
	    parse_err(json, NULL, (const char *const[]){"a.no-cache=maybe", NULL});
	assert_contains(msg5, "no-cache takes true or false");
}

static void test_bake__dockerfile_is_joined_to_context(void **state)
{
	(void)state;
	struct plait_bake b = parse_ok(
	    "{'target': {'dflt': {}, 'ctx': {'context': 'app/'}, 'rel': {'context': 'app',"
	    " 'dockerfile': 'docker/Dockerfile.prod'}, 'abs': {'context': 'app', 'dockerfile':"
	    " '/srv/Dockerfile'}, 'dot': {'context': '.', 'dockerfile': './x/Dockerfile'},"
	    " 'url': {'context': 'https://github.com/o/r.git', 'dockerfile': 'Dockerfile'},"
	    " 'empty': {'context': '', 'dockerfile': 'x/Dockerfile'}}}",
	    (const char *const[]){"dflt", "ctx", "rel", "abs", "dot", "url", "empty", NULL}, NULL);
	/* an empty context is the current directory (read before its first byte, found by fuzz_bake) */
	assert_string_equal(find(&b, "empty")->dockerfile, "x/Dockerfile");
	assert_string_equal(find(&b, "dflt")->context, ".");
	assert_string_equal(find(&b, "dflt")->dockerfile, "Dockerfile");
	assert_string_equal(find(&b, "ctx")->dockerfile, "app/Dockerfile");
	assert_string_equal(find(&b, "rel")->dockerfile, "app/docker/Dockerfile.prod");
	assert_string_equal(find(&b, "abs")->dockerfile, "/srv/Dockerfile");
	assert_string_equal(find(&b, "dot")->dockerfile, "x/Dockerfile");
	assert_string_equal(find(&b, "url")->dockerfile, "Dockerfile");
	assert_null(find(&b, "dflt")->platforms);
	assert_null(find(&b, "dflt")->target);
	plait_bake_release(&b);
}

static void test_bake__print_parses_back(void **state)
{
	(void)state;
	struct plait_bake b = parse_ok(matrix_json, (const char *const[]){"other", "ml", NULL},
				       (const char *const[]){"other.no-cache=true", NULL});
	_cleanup_buf_ struct plait_buf out = PLAIT_BUF_INIT;
	plait_bake_print(&b, &out);
	plait_bake_release(&b);

	json_error_t jerr;
	json_auto_t *j = json_loads(out.buf, 0, &jerr);
	if (!j)
		fail_msg("print gave invalid JSON (%s) at %d: %s", jerr.text, jerr.line, out.buf);
	_cleanup_free_ char *names = json_dumps(
	    json_object_get(json_object_get(json_object_get(j, "group"), "default"), "targets"),
	    JSON_COMPACT);
	assert_string_equal(
	    names, "[\"other\",\"train-cpu\",\"infer-cpu\",\"train-cuda\",\"infer-cuda\"]");
	json_t *t = json_object_get(json_object_get(j, "target"), "infer-cuda");
	_cleanup_free_ char *ts = json_dumps(t, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(ts, "{\"args\":{\"VARIANT\":\"cuda\"},\"context\":\".\","
				"\"dockerfile\":\"Dockerfile\",\"tags\":[\"r/infer:1.0-cuda\"],"
				"\"target\":\"infer\"}");
	json_t *o = json_object_get(json_object_get(j, "target"), "other");
	assert_true(json_is_true(json_object_get(o, "no-cache")));
	/* keys sorted and indented, as buildx bake --print */
	assert_true(startswith(out.buf, "{\n  \"group\": {"));
	assert_true(endswith(out.buf, "}\n"));
}

static void test_bake__malformed_json_names_file_and_line(void **state)
{
	(void)state;
	_cleanup_free_ char *msg = parse_err("{\n 'target': {\n  'a': {,}\n }\n}", NULL, NULL);
	assert_contains(msg, "docker-bake.json:3:");
	assert_contains(msg, "invalid JSON");
	_cleanup_free_ char *msg2 = parse_err("{'target': {'a': {},\n 'a': {}}}", NULL, NULL);
	assert_contains(msg2, "docker-bake.json:2:");
	assert_contains(msg2, "duplicate object key");
}

static void test_bake__unknown_and_unsupported_fields_are_errors(void **state)
{
	(void)state;
	_cleanup_free_ char *msg = parse_err("{'target': {'a': {'tag': ['x']}}}", NULL, NULL);
	assert_string_equal(msg, "docker-bake.json: target \"a\": tag: unknown field");
	_cleanup_free_ char *msg2 =
	    parse_err("{'target': {'a': {'ssh': ['default']}}}", NULL, NULL);
	assert_string_equal(
	    msg2, "docker-bake.json: target \"a\": ssh: not supported by plait: remove it");
	_cleanup_free_ char *msg3 = parse_err("{'targets': {}}", NULL, NULL);
	assert_contains(msg3, "unknown top-level key 'targets'");
	_cleanup_free_ char *msg4 = parse_err("{'target': {'a': {'tags': 'x'}}}", NULL, NULL);
	assert_string_equal(msg4,
			    "docker-bake.json: target \"a\": tags: expected a list of strings");
	_cleanup_free_ char *msg5 = parse_err("{'target': {'a b': {}}}", NULL, NULL);
	assert_contains(msg5, "not a valid target name");
}

/* The fixture in tests/data/bake, found from the source tree wherever the test runs. */
static char *fixture_path(void)
{
	const char *src = getenv("PLAIT_SRCDIR");
	struct plait_buf b = PLAIT_BUF_INIT;
	if (src) {
		plait_buf_addf(&b, "%s/tests/data/bake/docker-bake.json", src);
		if (!access(b.buf, R_OK))
			return plait_buf_detach(&b, NULL);
		plait_buf_reset(&b);
	}
	/* __FILE__ is relative to the build directory under meson */
	const char *slash = strrchr(__FILE__, '/');
	plait_buf_add(&b, __FILE__, slash ? (size_t)(slash - __FILE__) : 0);
	plait_buf_adds(&b,
		       slash ? "/../data/bake/docker-bake.json" : "../data/bake/docker-bake.json");
	if (!access(b.buf, R_OK))
		return plait_buf_detach(&b, NULL);
	plait_buf_release(&b);
	return xstrdup("tests/data/bake/docker-bake.json");
}

static void test_bake__example_file_loads(void **state)
{
	(void)state;
	_cleanup_free_ char *path = fixture_path();
	_cleanup_error_ struct plait_error *err = NULL;
	struct plait_bake b;
	struct plait_bake_opts o = {.getenv = test_getenv,
				    .getenv_ud = (void *)(const char *const[]){"TAG=1.2", NULL}};
	if (plait_bake_load(path, &o, &b, &err) < 0)
		fail_msg("load '%s': %s", path, err->msg);
	assert_names(&b, "[train-cpu|inference-cpu|train-cuda|inference-cuda]");
	const struct plait_bake_target *t = find(&b, "inference-cuda");
	assert_string_equal(t->target, "inference");
	assert_string_equal(t->dockerfile, "Dockerfile");
	assert_joined(t->args, "[VARIANT=cuda]", "args");
	assert_joined(t->tags, "[localhost:5000/ml/inference:1.2-cuda]", "tags");
	assert_joined(t->platforms, "[linux/amd64|linux/arm64]", "platforms");
	assert_joined(t->labels, "[org.opencontainers.image.title=plait-bake-example]", "labels");
	plait_bake_release(&b);
}

static void test_bake__load_missing_file_is_an_error(void **state)
{
	(void)state;
	_cleanup_error_ struct plait_error *err = NULL;
	struct plait_bake b;
	assert_int_equal(plait_bake_load("/nonexistent/docker-bake.json", NULL, &b, &err),
			 -PLAIT_E_USAGE);
	assert_string_equal(err->msg, "read bake file '/nonexistent/docker-bake.json': "
				      "No such file or directory");
	assert_int_equal(b.n_targets, 0);
	plait_bake_release(NULL);
}

/* Values from outside the (JSON, so UTF-8) file are checked as they are read:
 * an environment variable, a --set; the file's own bytes by the JSON reader. */
static void test_bake__values_not_utf8_name_their_source(void **state)
{
	(void)state;
	const char *json = "{'variable': {'TAG': {'default': '1'}},"
			   " 'target': {'a': {'tags': ['r/a:${TAG}']}}}";
	struct plait_bake b;
	_cleanup_error_ struct plait_error *err = NULL;
	int r = parse(json, NULL, NULL, (const char *const[]){"TAG=v\xff", NULL}, &b, &err);
	assert_int_equal(r, -PLAIT_E_USAGE);
	assert_string_equal(err->msg, "docker-bake.json: variable \"TAG\": $TAG in the environment is not valid "
				      "UTF-8 (byte 0xff at column 2): bake values end up in JSON; set it to UTF-8 "
				      "text");
	_cleanup_free_ char *msg = parse_err(json, NULL, (const char *const[]){"a.labels.t=caf\xe9", NULL});
	assert_string_equal(msg, "docker-bake.json: --set 'a.labels.t=caf...' is not valid UTF-8 (byte 0xe9 at "
				 "column 15): bake values end up in JSON; pass the text in UTF-8");
	_cleanup_free_ char *msg2 = parse_err("{'target': {'a': {'labels': {'t': '\xff'}}}}", NULL, NULL);
	assert_contains(msg2, "docker-bake.json:1:");
	/* valid text passes, from all three */
	struct plait_bake ok;
	_cleanup_error_ struct plait_error *e2 = NULL;
	assert_int_equal(parse("{'variable': {'TAG': {}}, 'target': {'a': {'labels': {'x': 'caf\xc3\xa9 ${TAG}'}}}}",
			       NULL, (const char *const[]){"a.labels.y=\xf0\x9f\x98\x80", NULL},
			       (const char *const[]){"TAG=\xc3\xa9", NULL}, &ok, &e2),
			 0);
	assert_joined(ok.targets[0].labels, "[x=caf\xc3\xa9 \xc3\xa9|y=\xf0\x9f\x98\x80]", "labels");
	plait_bake_release(&ok);
}

static void write_text(const char *path, const char *json)
{
	_cleanup_free_ char *text = dq(json);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* -f a.json -f b.json: merged in order, a later file winning per field (a
 * target's args per key, a group's targets joined), as buildx merges. */
static void test_bake__several_files_merge_in_order(void **state)
{
	(void)state;
	char dir[] = "/tmp/plait-bake-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char a[64], b[64];
	snprintf(a, sizeof(a), "%s/a.json", dir);
	snprintf(b, sizeof(b), "%s/b.json", dir);
	write_text(a, "{'variable':{'TAG':{'default':'1'}},'group':{'default':{'targets':['app']}},"
		      "'target':{'app':{'context':'.','tags':['r/app:${TAG}'],'args':{'A':'a','B':'b'},"
		      "'platforms':['linux/amd64']}}}");
	write_text(b, "{'variable':{'TAG':{'default':'2'}},'group':{'default':{'targets':['web','app']}},"
		      "'target':{'app':{'args':{'B':'B2','C':'c'},'platforms':['linux/arm64']},"
		      "'web':{'context':'web'}}}");
	const char *files[] = { a, b, NULL };
	struct plait_bake_opts o = { .getenv = test_getenv };
	struct plait_bake bk;
	_cleanup_error_ struct plait_error *err = NULL;
	int r = plait_bake_load_files(files, &o, &bk, &err);
	if (r < 0)
		fail_msg("load failed: %s", err ? err->msg : "?");
	assert_int_equal(bk.n_targets, 2);
	assert_string_equal(bk.targets[0].name, "app");
	assert_string_equal(bk.targets[0].context, ".");
	assert_string_equal(bk.targets[0].tags[0], "r/app:2");
	assert_string_equal(bk.targets[0].platforms[0], "linux/arm64");
	assert_null(bk.targets[0].platforms[1]);
	assert_string_equal(bk.targets[0].args[0], "A=a");
	assert_string_equal(bk.targets[0].args[1], "B=B2");
	assert_string_equal(bk.targets[0].args[2], "C=c");
	assert_string_equal(bk.targets[1].name, "web");
	plait_bake_release(&bk);
	/* one file alone is read as before; a bad second file is named */
	write_text(b, "{'target':");
	_cleanup_error_ struct plait_error *err2 = NULL;
	assert_true(plait_bake_load_files(files, &o, &bk, &err2) < 0);
	assert_non_null(strstr(err2->msg, "b.json:1:"));
	unlink(a);
	unlink(b);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bake__variables_default_and_env_override),
	    cmocka_unit_test(test_bake__several_files_merge_in_order),
	    cmocka_unit_test(test_bake__variable_defaults_refer_to_variables),
	    cmocka_unit_test(test_bake__variable_cycle_is_an_error),
	    cmocka_unit_test(test_bake__interpolation_in_every_field),
	    cmocka_unit_test(test_bake__dollar_dollar_is_a_literal_dollar),
	    cmocka_unit_test(test_bake__unknown_variable_names_file_target_field),
	    cmocka_unit_test(test_bake__unterminated_or_complex_expression_is_an_error),
	    cmocka_unit_test(test_bake__groups_nest_in_order_each_target_once),
	    cmocka_unit_test(test_bake__group_may_list_a_target_of_its_own_name),
	    cmocka_unit_test(test_bake__group_cycle_is_an_error),
	    cmocka_unit_test(test_bake__no_name_builds_the_default_group),
	    cmocka_unit_test(test_bake__no_name_and_one_target_builds_it),
	    cmocka_unit_test(test_bake__unknown_name_lists_targets_and_groups),
	    cmocka_unit_test(test_bake__inherits_merge_maps_and_replace_lists),
	    cmocka_unit_test(test_bake__inherits_null_arg_unsets_and_empty_list_replaces),
	    cmocka_unit_test(test_bake__inherits_cycle_is_an_error),
	    cmocka_unit_test(test_bake__matrix_makes_the_product_in_key_order),
	    cmocka_unit_test(test_bake__matrix_name_selects_one_combination),
	    cmocka_unit_test(test_bake__matrix_object_values_give_fields),
	    cmocka_unit_test(test_bake__cache_from_and_cache_to_are_read_inherited_and_set),
	    cmocka_unit_test(test_bake__matrix_duplicate_names_are_an_error),
	    cmocka_unit_test(test_bake__matrix_needs_a_valid_name),
	    cmocka_unit_test(test_bake__set_changes_one_target),
	    cmocka_unit_test(test_bake__set_star_changes_every_target),
	    cmocka_unit_test(test_bake__set_errors),
	    cmocka_unit_test(test_bake__values_not_utf8_name_their_source),
	    cmocka_unit_test(test_bake__dockerfile_is_joined_to_context),
	    cmocka_unit_test(test_bake__print_parses_back),
	    cmocka_unit_test(test_bake__malformed_json_names_file_and_line),
	    cmocka_unit_test(test_bake__unknown_and_unsupported_fields_are_errors),
	    cmocka_unit_test(test_bake__example_file_loads),
	    cmocka_unit_test(test_bake__load_missing_file_is_an_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
