/* Unit tests for core/oci: media types, maps, parse and serialise of
 * manifests, indexes and image configs (OCI and Docker schema2). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

#include "core/buf.h"
#include "core/oci.h"

#include "core/banned.h"

#define DA "sha256:6d0b8a7a4ffc5d8d7e5f09a7a0b2c4e4c2a8d4d3f0b6b4e1f2c3d4e5f6a7b8c9"
#define DB "sha256:2db29710123e3e53a794f2694094b9b4338aa9ee5c40b930cb8063a1be392c54"
#define DC "sha256:feb5d9fea6a5e9606aa995e879d862b825965ba48de054caab5ef356dc6b3412"
#define DD "sha256:e07ee1baac5fae6a26f30cabfe54a36d3402f96afda318fe0a96cec4ca393359"
#define DE "sha256:9c7a54a9a43cca047013b82af109fe963fde787f63f9e016fdc3384500c2823d"
#define DF "sha256:0a3b1f0f5c4d8e2c6b9a7f1e3d5c7b9a1f3e5d7c9b1a3f5e7d9c1b3a5f7e9d1c"

/* An OCI manifest as BuildKit writes it (pretty-printed, one layer annotated). */
static const char oci_manifest[] =
    "{\n"
    "  \"schemaVersion\": 2,\n"
    "  \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\",\n"
    "  \"config\": {\n"
    "    \"mediaType\": \"application/vnd.oci.image.config.v1+json\",\n"
    "    \"digest\": \"" DA "\",\n"
    "    \"size\": 7023\n"
    "  },\n"
    "  \"layers\": [\n"
    "    {\n"
    "      \"mediaType\": \"application/vnd.oci.image.layer.v1.tar+gzip\",\n"
    "      \"digest\": \"" DB "\",\n"
    "      \"size\": 32654\n"
    "    },\n"
    "    {\n"
    "      \"mediaType\": \"application/vnd.oci.image.layer.v1.tar+zstd\",\n"
    "      \"digest\": \"" DC "\",\n"
    "      \"size\": 16724,\n"
    "      \"annotations\": {\"com.example.b\": \"2\", \"com.example.a\": \"1\"}\n"
    "    },\n"
    "    {\n"
    "      \"mediaType\": \"application/vnd.oci.image.layer.v1.tar+gzip\",\n"
    "      \"digest\": \"" DD "\",\n"
    "      \"size\": 73109\n"
    "    }\n"
    "  ],\n"
    "  \"annotations\": {\n"
    "    \"org.opencontainers.image.created\": \"2024-05-01T10:00:00Z\",\n"
    "    \"org.opencontainers.image.base.name\": \"docker.io/library/alpine:3.19\"\n"
    "  }\n"
    "}\n";

/* A Docker registry v2 schema2 manifest (hello-world), size before digest. */
static const char docker_manifest[] =
    "{\n"
    "   \"schemaVersion\": 2,\n"
    "   \"mediaType\": \"application/vnd.docker.distribution.manifest.v2+json\",\n"
    "   \"config\": {\n"
    "      \"mediaType\": \"application/vnd.docker.container.image.v1+json\",\n"
    "      \"size\": 1469,\n"
    "      \"digest\": \"" DC "\"\n"
    "   },\n"
    "   \"layers\": [\n"
    "      {\n"
    "         \"mediaType\": \"application/vnd.docker.image.rootfs.diff.tar.gzip\",\n"
    "         \"size\": 2479,\n"
    "         \"digest\": \"" DB "\"\n"
    "      }\n"
    "   ]\n"
    "}";

/* An OCI index as docker buildx writes it: two platforms plus an attestation. */
static const char oci_index[] =
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
    "\"manifests\":["
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" DA "\","
    "\"size\":1234,\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" DB "\","
    "\"size\":1235,\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}},"
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" DE "\","
    "\"size\":566,\"annotations\":{\"vnd.docker.reference.digest\":\"" DA "\","
    "\"vnd.docker.reference.type\":\"attestation-manifest\"},"
    "\"platform\":{\"architecture\":\"unknown\",\"os\":\"unknown\"}}"
    "]}";

/* A Docker manifest list with a Windows entry (os.version, os.features). */
static const char docker_list[] =
    "{\n"
    "  \"schemaVersion\": 2,\n"
    "  \"mediaType\": \"application/vnd.docker.distribution.manifest.list.v2+json\",\n"
    "  \"manifests\": [\n"
    "    {\n"
    "      \"mediaType\": \"application/vnd.docker.distribution.manifest.v2+json\",\n"
    "      \"size\": 525,\n"
    "      \"digest\": \"" DD "\",\n"
    "      \"platform\": {\"architecture\": \"arm\", \"os\": \"linux\", \"variant\": \"v7\"}\n"
    "    },\n"
    "    {\n"
    "      \"mediaType\": \"application/vnd.docker.distribution.manifest.v2+json\",\n"
    "      \"size\": 1125,\n"
    "      \"digest\": \"" DE "\",\n"
    "      \"platform\": {\"architecture\": \"amd64\", \"os\": \"windows\",\n"
    "                   \"os.version\": \"10.0.17763.5329\", \"os.features\": [\"win32k\"]}\n"
    "    }\n"
    "  ]\n"
    "}\n";

/* A Docker image config (hello-world): nulls, unmodelled members, top-level extras. */
static const char docker_config[] =
    "{\"architecture\":\"amd64\",\"config\":{\"Hostname\":\"\",\"Domainname\":\"\",\"User\":\"\","
    "\"AttachStdin\":false,\"AttachStdout\":false,\"AttachStderr\":false,\"Tty\":false,"
    "\"OpenStdin\":false,\"StdinOnce\":false,"
    "\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"],"
    "\"Cmd\":[\"/hello\"],\"Image\":\"" DE "\",\"Volumes\":null,\"WorkingDir\":\"\","
    "\"Entrypoint\":null,\"OnBuild\":null,\"Labels\":null},"
    "\"container\":\"8746661ca3c2f215da94e6d3f7dfdcafaff5ec0b21c9aff6af3dc379a82fbc72\","
    "\"created\":\"2021-09-23T23:47:57.442225064Z\",\"docker_version\":\"20.10.7\","
    "\"history\":[{\"created\":\"2021-09-23T23:47:57.098990892Z\","
    "\"created_by\":\"/bin/sh -c #(nop) COPY "
    "file:50563a97010fd7ce1ceebd1fa4f4891ac3decdf428333fb2683696f4358af6c2 in / \"},"
    "{\"created\":\"2021-09-23T23:47:57.442225064Z\","
    "\"created_by\":\"/bin/sh -c #(nop)  CMD [\\\"/hello\\\"]\",\"empty_layer\":true}],"
    "\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" DD "\"]}}";

/* An OCI image config as BuildKit writes it, with a HEALTHCHECK. */
static const char oci_config[] =
    "{\"architecture\":\"arm64\",\"variant\":\"v8\",\"os\":\"linux\","
    "\"created\":\"2024-05-01T10:00:00Z\","
    "\"config\":{\"User\":\"app\",\"ExposedPorts\":{\"8080/tcp\":{},\"443/tcp\":{}},"
    "\"Env\":[\"PATH=/usr/bin:/bin\",\"MODEL=resnet\"],\"Entrypoint\":[\"/usr/bin/serve\"],"
    "\"Cmd\":[\"--port\",\"8080\"],\"Volumes\":{\"/data\":{}},\"WorkingDir\":\"/app\","
    "\"Labels\":{\"org.opencontainers.image.title\":\"serve\",\"maintainer\":\"ml@example.com\"},"
    "\"StopSignal\":\"SIGTERM\","
    "\"Healthcheck\":{\"Test\":[\"CMD\",\"curl\",\"-f\",\"http://localhost:8080/\"],"
    "\"Interval\":30000000000,\"Retries\":3},"
    "\"ArgsEscaped\":true,\"OnBuild\":null},"
    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" DD "\",\"" DE "\"]},"
    "\"history\":[{\"created\":\"2024-05-01T09:00:00Z\",\"created_by\":\"ADD rootfs.tar.gz / # "
    "buildkit\","
    "\"comment\":\"buildkit.dockerfile.v0\"},"
    "{\"created\":\"2024-05-01T10:00:00Z\",\"created_by\":\"ENV MODEL=resnet\","
    "\"comment\":\"buildkit.dockerfile.v0\",\"empty_layer\":true}]}";

/* ---- helpers ---- */

static char *manifest_bytes(const struct plait_manifest *m)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	_cleanup_error_ struct plait_error *err = NULL;
	if (plait_manifest_serialise(m, &b, &err) < 0)
		fail_msg("serialise manifest: %s", err->msg);
	return plait_buf_detach(&b, NULL);
}

static char *index_bytes(const struct plait_index *idx)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	_cleanup_error_ struct plait_error *err = NULL;
	if (plait_index_serialise(idx, &b, &err) < 0)
		fail_msg("serialise index: %s", err->msg);
	return plait_buf_detach(&b, NULL);
}

static char *config_bytes(const struct plait_image_config *c)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	_cleanup_error_ struct plait_error *err = NULL;
	if (plait_image_config_serialise(c, &b, &err) < 0)
		fail_msg("serialise image config: %s", err->msg);
	return plait_buf_detach(&b, NULL);
}

static void parse_manifest_ok(const char *doc, struct plait_manifest *m)
{
	_cleanup_error_ struct plait_error *err = NULL;
	if (plait_manifest_parse(doc, strlen(doc), m, &err) < 0)
		fail_msg("parse manifest: %s", err->msg);
}

static void parse_index_ok(const char *doc, struct plait_index *idx)
{
	_cleanup_error_ struct plait_error *err = NULL;
	if (plait_index_parse(doc, strlen(doc), idx, &err) < 0)
		fail_msg("parse index: %s", err->msg);
}

static void parse_config_ok(const char *doc, struct plait_image_config *c)
{
	_cleanup_error_ struct plait_error *err = NULL;
	if (plait_image_config_parse(doc, strlen(doc), c, &err) < 0)
		fail_msg("parse image config: %s", err->msg);
}

/* Parse doc expecting failure; the message must start with want. */
static void manifest_rejected(const char *doc, size_t len, const char *want)
{
	struct plait_manifest m;
	_cleanup_error_ struct plait_error *err = NULL;
	int r = plait_manifest_parse(doc, len, &m, &err);
	if (r != -PLAIT_E_INVALID)
		fail_msg("expected -PLAIT_E_INVALID for %.80s, got %d", doc, r);
	assert_non_null(err);
	if (!startswith(err->msg, want))
		fail_msg("message\n  '%s'\ndoes not start with\n  '%s'", err->msg, want);
	/* out is released on failure: releasing again must be harmless. */
	plait_manifest_release(&m);
}

static void index_rejected(const char *doc, const char *want)
{
	struct plait_index idx;
	_cleanup_error_ struct plait_error *err = NULL;
	int r = plait_index_parse(doc, strlen(doc), &idx, &err);
	if (r != -PLAIT_E_INVALID)
		fail_msg("expected -PLAIT_E_INVALID for %.80s, got %d", doc, r);
	if (!startswith(err->msg, want))
		fail_msg("message\n  '%s'\ndoes not start with\n  '%s'", err->msg, want);
	plait_index_release(&idx);
}

static void config_rejected(const char *doc, const char *want)
{
	struct plait_image_config c;
	_cleanup_error_ struct plait_error *err = NULL;
	int r = plait_image_config_parse(doc, strlen(doc), &c, &err);
	if (r != -PLAIT_E_INVALID)
		fail_msg("expected -PLAIT_E_INVALID for %.80s, got %d", doc, r);
	if (!startswith(err->msg, want))
		fail_msg("message\n  '%s'\ndoes not start with\n  '%s'", err->msg, want);
	plait_image_config_release(&c);
}

/* A minimal valid manifest with one replaced fragment, for negative cases. */
static char *manifest_with_layers(const char *layers_json)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(
	    &b,
	    "{\"schemaVersion\":2,\"config\":{\"mediaType\":"
	    "\"application/vnd.oci.image.config.v1+json\",\"digest\":\"%s\",\"size\":10},"
	    "\"layers\":%s}",
	    DA, layers_json);
	return plait_buf_detach(&b, NULL);
}

#define LAYER(d, sz)                                                                               \
	"{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"" d           \
	"\",\"size\":" sz "}"

/* ---- media types ---- */

static void test_oci__media_type_table_round_trips(void **state)
{
	(void)state;
	for (int t = PLAIT_MT_UNKNOWN + 1; t < _PLAIT_MT_MAX; t++) {
		const char *s = plait_media_type_to_string((enum plait_media_type)t);
		assert_non_null(s);
		assert_int_equal(plait_media_type_from_string(s), t);
	}
	assert_null(plait_media_type_to_string(PLAIT_MT_UNKNOWN));
	assert_null(plait_media_type_to_string(_PLAIT_MT_MAX));
	assert_string_equal(plait_media_type_to_string(PLAIT_MT_DOCKER_LIST),
			    "application/vnd.docker.distribution.manifest.list.v2+json");
	assert_string_equal(plait_media_type_to_string(PLAIT_MT_OCI_LAYER_NONDIST_GZIP),
			    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip");
}

static void test_oci__media_type_unknown_and_parameters(void **state)
{
	(void)state;
	assert_int_equal(plait_media_type_from_string("application/json"), PLAIT_MT_UNKNOWN);
	assert_int_equal(plait_media_type_from_string(""), PLAIT_MT_UNKNOWN);
	assert_int_equal(plait_media_type_from_string(NULL), PLAIT_MT_UNKNOWN);
	/* A prefix of a known type is not that type. */
	assert_int_equal(plait_media_type_from_string("application/vnd.oci.image.layer.v1"),
			 PLAIT_MT_UNKNOWN);
	/* Content-Type headers carry parameters. */
	assert_int_equal(
	    plait_media_type_from_string("application/vnd.oci.image.index.v1+json; charset=utf-8"),
	    PLAIT_MT_OCI_INDEX);
}

static void test_oci__media_type_classifiers(void **state)
{
	(void)state;
	assert_true(plait_media_type_is_index(PLAIT_MT_OCI_INDEX));
	assert_true(plait_media_type_is_index(PLAIT_MT_DOCKER_LIST));
	assert_false(plait_media_type_is_index(PLAIT_MT_OCI_MANIFEST));
	assert_true(plait_media_type_is_manifest(PLAIT_MT_OCI_MANIFEST));
	assert_true(plait_media_type_is_manifest(PLAIT_MT_DOCKER_MANIFEST));
	assert_false(plait_media_type_is_manifest(PLAIT_MT_DOCKER_LIST));
	assert_true(plait_media_type_is_config(PLAIT_MT_OCI_CONFIG));
	assert_true(plait_media_type_is_config(PLAIT_MT_DOCKER_CONFIG));
	assert_false(plait_media_type_is_config(PLAIT_MT_OCI_LAYER));
	static const enum plait_media_type layers[] = {
	    PLAIT_MT_OCI_LAYER,		PLAIT_MT_OCI_LAYER_GZIP,
	    PLAIT_MT_OCI_LAYER_ZSTD,	PLAIT_MT_OCI_LAYER_NONDIST_GZIP,
	    PLAIT_MT_DOCKER_LAYER_GZIP, PLAIT_MT_DOCKER_LAYER_FOREIGN,
	};
	for (size_t i = 0; i < ARRAY_SIZE(layers); i++)
		assert_true(plait_media_type_is_layer(layers[i]));
	assert_false(plait_media_type_is_layer(PLAIT_MT_OCI_CONFIG));
	assert_false(plait_media_type_is_layer(PLAIT_MT_UNKNOWN));
}

static void test_oci__accept_header_lists_manifest_and_index_types(void **state)
{
	(void)state;
	const char *a = plait_media_type_accept_manifests();
	assert_string_equal(a, "application/vnd.oci.image.index.v1+json, "
			       "application/vnd.oci.image.manifest.v1+json, "
			       "application/vnd.docker.distribution.manifest.list.v2+json, "
			       "application/vnd.docker.distribution.manifest.v2+json");
}

/* ---- map ---- */

static void test_oci__map_keeps_keys_sorted_and_replaces(void **state)
{
	(void)state;
	struct plait_map m = {0};
	plait_map_set(&m, "b", "2");
	plait_map_set(&m, "a", "1");
	plait_map_set(&m, "c", "3");
	plait_map_set(&m, "b", "two");
	assert_int_equal(m.n, 3);
	assert_string_equal(m.items[0].key, "a");
	assert_string_equal(m.items[1].key, "b");
	assert_string_equal(m.items[2].key, "c");
	assert_string_equal(plait_map_get(&m, "b"), "two");
	assert_null(plait_map_get(&m, "zz"));

	struct plait_map copy;
	plait_map_copy(&copy, &m);
	plait_map_set(&m, "a", "changed");
	assert_string_equal(plait_map_get(&copy, "a"), "1");
	plait_map_release(&copy);
	plait_map_release(&m);
	plait_map_release(&m);
	assert_int_equal(m.n, 0);
}

static void test_oci__map_insert_order_does_not_change_bytes(void **state)
{
	(void)state;
	static const char *const keys[] = {"org.opencontainers.image.source",
					   "org.opencontainers.image.created", "a", "zeta",
					   "org.opencontainers.image.revision"};
	struct plait_manifest m1 = {.schema_version = 2}, m2 = {.schema_version = 2};
	for (struct plait_manifest *m = &m1; m; m = m == &m1 ? &m2 : NULL) {
		m->config.media_type = xstrdup("application/vnd.oci.image.config.v1+json");
		memcpy(m->config.digest, DA, sizeof(DA));
		m->config.size = 2;
		m->layers = xcalloc(1, sizeof(*m->layers));
		m->n_layers = 1;
		m->layers[0].media_type = xstrdup("application/vnd.oci.image.layer.v1.tar+gzip");
		memcpy(m->layers[0].digest, DB, sizeof(DB));
		m->layers[0].size = 3;
	}
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		plait_map_set(&m1.annotations, keys[i], "v");
		plait_map_set(&m1.layers[0].annotations, keys[i], "w");
	}
	for (size_t i = ARRAY_SIZE(keys); i-- > 0;) {
		plait_map_set(&m2.annotations, keys[i], "v");
		plait_map_set(&m2.layers[0].annotations, keys[i], "w");
	}
	_cleanup_free_ char *b1 = manifest_bytes(&m1);
	_cleanup_free_ char *b2 = manifest_bytes(&m2);
	assert_string_equal(b1, b2);
	assert_non_null(strstr(b1, "{\"a\":\"v\",\"org.opencontainers.image.created\":\"v\","));
	plait_manifest_release(&m1);
	plait_manifest_release(&m2);
}

/* ---- parse: real-world documents ---- */

static void test_oci__parse_oci_manifest(void **state)
{
	(void)state;
	struct plait_manifest m;
	parse_manifest_ok(oci_manifest, &m);
	assert_int_equal(m.schema_version, 2);
	assert_string_equal(m.media_type, "application/vnd.oci.image.manifest.v1+json");
	assert_null(m.artifact_type);
	assert_string_equal(m.config.media_type, "application/vnd.oci.image.config.v1+json");
	assert_string_equal(m.config.digest, DA);
	assert_int_equal(m.config.size, 7023);
	assert_int_equal(m.n_layers, 3);
	assert_string_equal(m.layers[1].media_type, "application/vnd.oci.image.layer.v1.tar+zstd");
	assert_string_equal(m.layers[1].digest, DC);
	assert_int_equal(m.layers[1].size, 16724);
	assert_string_equal(plait_map_get(&m.layers[1].annotations, "com.example.a"), "1");
	assert_int_equal(m.layers[0].annotations.n, 0);
	assert_null(m.layers[0].platform);
	assert_null(m.subject);
	assert_string_equal(plait_map_get(&m.annotations, "org.opencontainers.image.base.name"),
			    "docker.io/library/alpine:3.19");
	plait_manifest_release(&m);
}

static void test_oci__parse_docker_schema2_manifest(void **state)
{
	(void)state;
	struct plait_manifest m;
	parse_manifest_ok(docker_manifest, &m);
	assert_string_equal(m.media_type, "application/vnd.docker.distribution.manifest.v2+json");
	assert_int_equal(plait_media_type_from_string(m.config.media_type), PLAIT_MT_DOCKER_CONFIG);
	assert_int_equal(m.config.size, 1469);
	assert_int_equal(m.n_layers, 1);
	assert_int_equal(plait_media_type_from_string(m.layers[0].media_type),
			 PLAIT_MT_DOCKER_LAYER_GZIP);
	assert_string_equal(m.layers[0].digest, DB);
	/* Serialised in the conventional order, not the document's. */
	_cleanup_free_ char *b = manifest_bytes(&m);
	assert_string_equal(
	    b, "{\"schemaVersion\":2,"
	       "\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
	       "\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\","
	       "\"digest\":\"" DC "\",\"size\":1469},"
	       "\"layers\":[{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\","
	       "\"digest\":\"" DB "\",\"size\":2479}]}");
	plait_manifest_release(&m);
}

static void test_oci__parse_manifest_with_subject_and_artifact_type(void **state)
{
	(void)state;
	static const char doc[] =
	    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
	    "\"artifactType\":\"application/vnd.example.sbom.v1\","
	    "\"config\":{\"mediaType\":\"application/vnd.oci.empty.v1+json\",\"digest\":"
	    "\"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\","
	    "\"size\":2,\"data\":\"e30=\"},"
	    "\"layers\":[" LAYER(
		DB, "12") "],"
			  "\"subject\":{\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
			  "\"digest\":\"" DE "\",\"size\":900}}";
	struct plait_manifest m;
	parse_manifest_ok(doc, &m);
	assert_string_equal(m.artifact_type, "application/vnd.example.sbom.v1");
	assert_string_equal(m.config.data, "e30=");
	assert_non_null(m.subject);
	assert_string_equal(m.subject->digest, DE);
	assert_int_equal(m.subject->size, 900);
	_cleanup_free_ char *b = manifest_bytes(&m);
	assert_non_null(strstr(b, "\"size\":2,\"data\":\"e30=\"}"));
	assert_non_null(strstr(b, "],\"subject\":{"));
	plait_manifest_release(&m);
}

static void test_oci__parse_index_with_platforms(void **state)
{
	(void)state;
	struct plait_index idx;
	parse_index_ok(oci_index, &idx);
	assert_int_equal(idx.schema_version, 2);
	assert_string_equal(idx.media_type, "application/vnd.oci.image.index.v1+json");
	assert_int_equal(idx.n_manifests, 3);
	assert_string_equal(idx.manifests[0].platform->architecture, "amd64");
	assert_string_equal(idx.manifests[0].platform->os, "linux");
	assert_null(idx.manifests[0].platform->variant);
	assert_string_equal(idx.manifests[1].platform->variant, "v8");
	assert_string_equal(
	    plait_map_get(&idx.manifests[2].annotations, "vnd.docker.reference.type"),
	    "attestation-manifest");
	/* Compact input in the conventional order comes back byte for byte. */
	_cleanup_free_ char *b = index_bytes(&idx);
	assert_string_equal(b, oci_index);
	plait_index_release(&idx);
}

static void test_oci__parse_docker_manifest_list(void **state)
{
	(void)state;
	struct plait_index idx;
	parse_index_ok(docker_list, &idx);
	assert_int_equal(plait_media_type_from_string(idx.media_type), PLAIT_MT_DOCKER_LIST);
	assert_int_equal(idx.n_manifests, 2);
	const struct plait_platform *w = idx.manifests[1].platform;
	assert_string_equal(w->os, "windows");
	assert_string_equal(w->os_version, "10.0.17763.5329");
	assert_non_null(w->os_features);
	assert_string_equal(w->os_features[0], "win32k");
	assert_null(w->os_features[1]);
	_cleanup_free_ char *b = index_bytes(&idx);
	assert_non_null(strstr(b,
			       "\"platform\":{\"architecture\":\"amd64\",\"os\":\"windows\","
			       "\"os.version\":\"10.0.17763.5329\",\"os.features\":[\"win32k\"]}"));
	assert_non_null(strstr(b, "\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\","
				  "\"variant\":\"v7\"}"));
	plait_index_release(&idx);
}

static void test_oci__parse_docker_image_config(void **state)
{
	(void)state;
	struct plait_image_config c;
	parse_config_ok(docker_config, &c);
	assert_string_equal(c.architecture, "amd64");
	assert_string_equal(c.os, "linux");
	assert_string_equal(c.created, "2021-09-23T23:47:57.442225064Z");
	assert_string_equal(c.config.user, "");
	assert_string_equal(c.config.env[0],
			    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	assert_null(c.config.env[1]);
	assert_string_equal(c.config.cmd[0], "/hello");
	/* null means unset */
	assert_null(c.config.entrypoint);
	assert_null(c.config.volumes);
	assert_null(c.config.on_build);
	assert_int_equal(c.config.labels.n, 0);
	assert_string_equal(c.diff_ids[0], DD);
	assert_null(c.diff_ids[1]);
	assert_int_equal(c.n_history, 2);
	assert_false(c.history[0].empty_layer);
	assert_true(c.history[1].empty_layer);
	assert_string_equal(c.history[1].created_by, "/bin/sh -c #(nop)  CMD [\"/hello\"]");
	/* Members plait does not model stay, sorted by key. */
	assert_non_null(c.config.extra_json);
	assert_string_equal(c.config.extra_json,
			    "{\"AttachStderr\":false,\"AttachStdin\":false,\"AttachStdout\":false,"
			    "\"Domainname\":\"\",\"Hostname\":\"\",\"Image\":\"" DE "\","
			    "\"OpenStdin\":false,\"StdinOnce\":false,\"Tty\":false}");
	plait_image_config_release(&c);
}

static void test_oci__parse_oci_image_config(void **state)
{
	(void)state;
	struct plait_image_config c;
	parse_config_ok(oci_config, &c);
	assert_string_equal(c.architecture, "arm64");
	assert_string_equal(c.variant, "v8");
	assert_string_equal(c.config.user, "app");
	/* object keys come back sorted */
	assert_string_equal(c.config.exposed_ports[0], "443/tcp");
	assert_string_equal(c.config.exposed_ports[1], "8080/tcp");
	assert_null(c.config.exposed_ports[2]);
	assert_string_equal(c.config.volumes[0], "/data");
	assert_string_equal(c.config.entrypoint[0], "/usr/bin/serve");
	assert_string_equal(c.config.cmd[1], "8080");
	assert_string_equal(c.config.working_dir, "/app");
	assert_string_equal(plait_map_get(&c.config.labels, "maintainer"), "ml@example.com");
	assert_string_equal(c.config.stop_signal, "SIGTERM");
	assert_true(c.config.args_escaped);
	assert_string_equal(c.history[0].comment, "buildkit.dockerfile.v0");
	assert_string_equal(c.config.extra_json,
			    "{\"Healthcheck\":{\"Interval\":30000000000,\"Retries\":3,"
			    "\"Test\":[\"CMD\",\"curl\",\"-f\",\"http://localhost:8080/\"]}}");
	plait_image_config_release(&c);
}

/* ---- serialise: exact bytes ---- */

static void test_oci__serialise_manifest_exact_bytes(void **state)
{
	(void)state;
	struct plait_manifest m;
	parse_manifest_ok(oci_manifest, &m);
	_cleanup_free_ char *b = manifest_bytes(&m);
	assert_string_equal(
	    b,
	    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
	    "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
	    "\"digest\":\"" DA "\",\"size\":7023},"
	    "\"layers\":["
	    "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"" DB
	    "\",\"size\":32654},"
	    "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+zstd\",\"digest\":\"" DC
	    "\",\"size\":16724,\"annotations\":{\"com.example.a\":\"1\",\"com.example.b\":\"2\"}},"
	    "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"" DD
	    "\",\"size\":73109}],"
	    "\"annotations\":{\"org.opencontainers.image.base.name\":\"docker.io/library/"
	    "alpine:3.19\","
	    "\"org.opencontainers.image.created\":\"2024-05-01T10:00:00Z\"}}");
	plait_manifest_release(&m);
}

static void test_oci__serialise_built_manifest_omits_absent_fields(void **state)
{
	(void)state;
	struct plait_manifest m = {0}; /* schema_version 0 serialises as 2 */
	m.config.media_type = xstrdup("application/vnd.oci.image.config.v1+json");
	memcpy(m.config.digest, DA, sizeof(DA));
	m.config.size = 0;
	_cleanup_free_ char *b = manifest_bytes(&m);
	assert_string_equal(b, "{\"schemaVersion\":2,\"config\":{\"mediaType\":"
			       "\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" DA
			       "\",\"size\":0},\"layers\":[]}");
	plait_manifest_release(&m);
}

static void test_oci__serialise_image_config_exact_bytes(void **state)
{
	(void)state;
	struct plait_image_config c;
	parse_config_ok(oci_config, &c);
	_cleanup_free_ char *b = config_bytes(&c);
	assert_string_equal(
	    b,
	    "{\"created\":\"2024-05-01T10:00:00Z\",\"architecture\":\"arm64\",\"os\":\"linux\","
	    "\"variant\":\"v8\",\"config\":{\"User\":\"app\","
	    "\"ExposedPorts\":{\"443/tcp\":{},\"8080/tcp\":{}},"
	    "\"Env\":[\"PATH=/usr/bin:/bin\",\"MODEL=resnet\"],\"Entrypoint\":[\"/usr/bin/serve\"],"
	    "\"Cmd\":[\"--port\",\"8080\"],\"Volumes\":{\"/data\":{}},\"WorkingDir\":\"/app\","
	    "\"Labels\":{\"maintainer\":\"ml@example.com\",\"org.opencontainers.image.title\":"
	    "\"serve\"},"
	    "\"StopSignal\":\"SIGTERM\",\"ArgsEscaped\":true,"
	    "\"Healthcheck\":{\"Interval\":30000000000,\"Retries\":3,"
	    "\"Test\":[\"CMD\",\"curl\",\"-f\",\"http://localhost:8080/\"]}},"
	    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" DD "\",\"" DE "\"]},"
	    "\"history\":[{\"created\":\"2024-05-01T09:00:00Z\",\"created_by\":\"ADD rootfs.tar.gz "
	    "/ # buildkit\","
	    "\"comment\":\"buildkit.dockerfile.v0\"},"
	    "{\"created\":\"2024-05-01T10:00:00Z\",\"created_by\":\"ENV MODEL=resnet\","
	    "\"comment\":\"buildkit.dockerfile.v0\",\"empty_layer\":true}]}");
	plait_image_config_release(&c);
}

static void test_oci__serialise_config_extra_json_cannot_override_modelled_fields(void **state)
{
	(void)state;
	struct plait_image_config c = {0};
	c.architecture = xstrdup("amd64");
	c.os = xstrdup("linux");
	c.config.cmd = xcalloc(2, sizeof(char *));
	c.config.cmd[0] = xstrdup("real");
	c.config.extra_json =
	    xstrdup("{\"Cmd\":[\"smuggled\"],\"Zeta\":1,\"Alpha\":{\"b\":1,\"a\":2}}");
	_cleanup_free_ char *b = config_bytes(&c);
	assert_string_equal(b, "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{"
			       "\"Cmd\":[\"real\"],\"Alpha\":{\"a\":2,\"b\":1},\"Zeta\":1},"
			       "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}");
	plait_image_config_release(&c);
}

/* ---- round trips ---- */

static void test_oci__manifest_round_trip_is_stable(void **state)
{
	(void)state;
	const char *docs[] = {oci_manifest, docker_manifest};
	for (size_t i = 0; i < ARRAY_SIZE(docs); i++) {
		struct plait_manifest a, b;
		parse_manifest_ok(docs[i], &a);
		_cleanup_free_ char *s1 = manifest_bytes(&a);
		parse_manifest_ok(s1, &b);
		_cleanup_free_ char *s2 = manifest_bytes(&b);
		assert_string_equal(s1, s2);
		/* parse(serialise(x)) == x, field by field for what matters. */
		assert_int_equal(a.n_layers, b.n_layers);
		for (size_t l = 0; l < a.n_layers; l++) {
			assert_string_equal(a.layers[l].digest, b.layers[l].digest);
			assert_int_equal(a.layers[l].size, b.layers[l].size);
			assert_string_equal(a.layers[l].media_type, b.layers[l].media_type);
			assert_int_equal(a.layers[l].annotations.n, b.layers[l].annotations.n);
		}
		assert_string_equal(a.config.digest, b.config.digest);
		assert_int_equal(a.annotations.n, b.annotations.n);
		plait_manifest_release(&a);
		plait_manifest_release(&b);
	}
}

static void test_oci__index_round_trip_is_stable(void **state)
{
	(void)state;
	const char *docs[] = {oci_index, docker_list};
	for (size_t i = 0; i < ARRAY_SIZE(docs); i++) {
		struct plait_index a, b;
		parse_index_ok(docs[i], &a);
		_cleanup_free_ char *s1 = index_bytes(&a);
		parse_index_ok(s1, &b);
		_cleanup_free_ char *s2 = index_bytes(&b);
		assert_string_equal(s1, s2);
		assert_int_equal(a.n_manifests, b.n_manifests);
		for (size_t m = 0; m < a.n_manifests; m++) {
			assert_string_equal(a.manifests[m].digest, b.manifests[m].digest);
			assert_string_equal(a.manifests[m].platform->architecture,
					    b.manifests[m].platform->architecture);
			assert_true(streq_ptr(a.manifests[m].platform->variant,
					      b.manifests[m].platform->variant));
		}
		plait_index_release(&a);
		plait_index_release(&b);
	}
}

static void test_oci__image_config_round_trip_is_stable(void **state)
{
	(void)state;
	const char *docs[] = {oci_config, docker_config};
	for (size_t i = 0; i < ARRAY_SIZE(docs); i++) {
		struct plait_image_config a, b;
		parse_config_ok(docs[i], &a);
		_cleanup_free_ char *s1 = config_bytes(&a);
		parse_config_ok(s1, &b);
		_cleanup_free_ char *s2 = config_bytes(&b);
		assert_string_equal(s1, s2);
		assert_true(streq_ptr(a.config.extra_json, b.config.extra_json));
		assert_int_equal(a.n_history, b.n_history);
		assert_true((a.config.entrypoint == NULL) == (b.config.entrypoint == NULL));
		assert_int_equal(a.config.args_escaped, b.config.args_escaped);
		plait_image_config_release(&a);
		plait_image_config_release(&b);
	}
}

static void test_oci__image_config_empty_entrypoint_differs_from_unset(void **state)
{
	(void)state;
	static const char doc[] = "{\"architecture\":\"amd64\",\"os\":\"linux\","
				  "\"config\":{\"Entrypoint\":[]},"
				  "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}";
	struct plait_image_config c;
	parse_config_ok(doc, &c);
	assert_non_null(c.config.entrypoint);
	assert_null(c.config.entrypoint[0]);
	assert_null(c.config.cmd);
	_cleanup_free_ char *b = config_bytes(&c);
	assert_string_equal(b, doc);
	plait_image_config_release(&c);
}

/* ---- descriptors ---- */

static void test_oci__descriptor_copy_is_deep(void **state)
{
	(void)state;
	struct plait_index idx;
	parse_index_ok(docker_list, &idx);
	struct plait_descriptor d;
	plait_descriptor_copy(&d, &idx.manifests[1]);
	struct plait_index idx2 = {.schema_version = 2};
	plait_index_add(&idx2, &d);
	plait_index_add(&idx2, &idx.manifests[0]);
	plait_index_release(&idx);
	/* The copies own their memory: the source is gone now. */
	assert_string_equal(d.platform->os_features[0], "win32k");
	assert_string_equal(d.digest, DE);
	assert_int_equal(idx2.n_manifests, 2);
	assert_string_equal(idx2.manifests[0].platform->os_version, "10.0.17763.5329");
	assert_string_equal(idx2.manifests[1].platform->variant, "v7");
	plait_descriptor_release(&d);
	plait_descriptor_release(&d);
	plait_index_release(&idx2);
	plait_descriptor_release(NULL);
	plait_platform_release(NULL);
	plait_manifest_release(NULL);
	plait_index_release(NULL);
	plait_image_config_release(NULL);
}

/* ---- negative cases ---- */

static void test_oci__reject_bad_layer_digest_names_the_field(void **state)
{
	(void)state;
	_cleanup_free_ char *doc = manifest_with_layers(
	    "[" LAYER(DB, "1") "," LAYER(DC, "2") "," LAYER("sha256:zz", "3") "]");
	manifest_rejected(doc, strlen(doc),
			  "invalid manifest: layers[2].digest: 'sha256:zz' is not a valid digest");
}

static void test_oci__reject_uppercase_config_digest(void **state)
{
	(void)state;
	static const char doc[] =
	    "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":"
	    "\"sha256:E07EE1BAAC5FAE6A26F30CABFE54A36D3402F96AFDA318FE0A96CEC4CA393359\",\"size\":"
	    "1},"
	    "\"layers\":[]}";
	manifest_rejected(doc, strlen(doc), "invalid manifest: config.digest: 'sha256:E07EE");
}

static void test_oci__reject_negative_size(void **state)
{
	(void)state;
	_cleanup_free_ char *doc = manifest_with_layers("[" LAYER(DB, "-1") "]");
	manifest_rejected(doc, strlen(doc), "invalid manifest: layers[0].size: -1 is negative");
}

static void test_oci__reject_non_integer_size(void **state)
{
	(void)state;
	_cleanup_free_ char *doc = manifest_with_layers("[" LAYER(DB, "\"12\"") "]");
	manifest_rejected(doc, strlen(doc),
			  "invalid manifest: layers[0].size: expected an integer, got a string");
	_cleanup_free_ char *doc2 = manifest_with_layers("[" LAYER(DB, "1.5") "]");
	manifest_rejected(doc2, strlen(doc2),
			  "invalid manifest: layers[0].size: expected an integer");
}

static void test_oci__reject_wrong_schema_version(void **state)
{
	(void)state;
	static const char v1[] = "{\"schemaVersion\":1,\"name\":\"x\",\"fsLayers\":[]}";
	manifest_rejected(v1, strlen(v1), "invalid manifest: schemaVersion: 1 is not supported");
	static const char none[] = "{\"config\":{},\"layers\":[]}";
	manifest_rejected(none, strlen(none),
			  "invalid manifest: schemaVersion: required field is missing");
	static const char str[] = "{\"schemaVersion\":\"2\",\"manifests\":[]}";
	index_rejected(str, "invalid index: schemaVersion: expected the integer 2, got a string");
}

static void test_oci__reject_not_an_object(void **state)
{
	(void)state;
	manifest_rejected("[1,2]", 5, "invalid manifest: expected a JSON object, got an array");
	manifest_rejected("\"x\"", 3, "invalid manifest: expected a JSON object, got a string");
	manifest_rejected("{\"schemaVersion\":2,", 19,
			  "invalid manifest: not valid JSON at line 1");
	manifest_rejected("", 0, "invalid manifest: not valid JSON");
	config_rejected("null", "invalid image config: expected a JSON object, got null");
}

static void test_oci__reject_missing_config(void **state)
{
	(void)state;
	static const char doc[] = "{\"schemaVersion\":2,\"layers\":[]}";
	manifest_rejected(doc, strlen(doc), "invalid manifest: config: required field is missing");
}

static void test_oci__reject_missing_layers_and_manifests(void **state)
{
	(void)state;
	static const char doc[] =
	    "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"" DA
	    "\",\"size\":1}}";
	manifest_rejected(doc, strlen(doc), "invalid manifest: layers: required field is missing");
	index_rejected("{\"schemaVersion\":2}",
		       "invalid index: manifests: required field is missing");
	index_rejected("{\"schemaVersion\":2,\"manifests\":{}}",
		       "invalid index: manifests: expected an array, got an object");
}

static void test_oci__reject_descriptor_without_media_type(void **state)
{
	(void)state;
	_cleanup_free_ char *doc = manifest_with_layers("[{\"digest\":\"" DB "\",\"size\":1}]");
	manifest_rejected(doc, strlen(doc),
			  "invalid manifest: layers[0].mediaType: required field is missing");
	_cleanup_free_ char *doc2 =
	    manifest_with_layers("[{\"mediaType\":7,\"digest\":\"" DB "\",\"size\":1}]");
	manifest_rejected(
	    doc2, strlen(doc2),
	    "invalid manifest: layers[0].mediaType: expected a string, got an integer");
}

static void test_oci__reject_oversized_document(void **state)
{
	(void)state;
	size_t len = PLAIT_MANIFEST_MAX + 1;
	char *doc = xmalloc(len);
	memset(doc, ' ', len);
	doc[0] = '{';
	doc[len - 1] = '}';
	manifest_rejected(
	    doc, len, "invalid manifest: manifest is 4194305 bytes, larger than the 4 MiB limit");
	struct plait_index idx;
	assert_int_equal(plait_index_parse(doc, len, &idx, NULL), -PLAIT_E_INVALID);
	struct plait_image_config c;
	assert_int_equal(plait_image_config_parse(doc, len, &c, NULL), -PLAIT_E_INVALID);
	assert_int_equal(plait_oci_sniff(doc, len), PLAIT_MT_UNKNOWN);
	free(doc);
}

static void test_oci__reject_platform_missing_os(void **state)
{
	(void)state;
	index_rejected("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
		       "\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" DA "\","
		       "\"size\":1,\"platform\":{\"architecture\":\"arm64\"}}]}",
		       "invalid index: manifests[0].platform.os: required field is missing");
	index_rejected("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
		       "\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" DA "\","
		       "\"size\":1,\"platform\":{\"architecture\":\"arm64\",\"os\":[\"linux\"]}}]}",
		       "invalid index: manifests[0].platform.os: expected a string, got an array");
}

static void test_oci__reject_non_string_annotation(void **state)
{
	(void)state;
	static const char doc[] =
	    "{\"schemaVersion\":2,\"manifests\":[],\"annotations\":{\"a\":\"ok\",\"b\":3}}";
	index_rejected(doc,
		       "invalid index: annotations: 'b': expected a string value, got an integer");
	static const char doc2[] = "{\"schemaVersion\":2,\"manifests\":[],\"annotations\":[]}";
	index_rejected(doc2,
		       "invalid index: annotations: expected an object of strings, got an array");
}

static void test_oci__reject_index_media_type_in_manifest(void **state)
{
	(void)state;
	static const char doc[] =
	    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
	    "\"manifests\":[]}";
	manifest_rejected(
	    doc, strlen(doc),
	    "invalid manifest: mediaType: 'application/vnd.oci.image.index.v1+json' is "
	    "an image index, not a manifest");
	index_rejected(docker_manifest, "invalid index: mediaType: "
					"'application/vnd.docker.distribution.manifest.v2+json' is "
					"an image manifest, not an index");
}

static void test_oci__reject_duplicate_keys(void **state)
{
	(void)state;
	static const char doc[] = "{\"schemaVersion\":2,\"schemaVersion\":2,\"manifests\":[]}";
	index_rejected(doc, "invalid index: not valid JSON");
}

static void test_oci__reject_bad_image_config(void **state)
{
	(void)state;
	config_rejected("{\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
			"invalid image config: architecture: required field is missing");
	config_rejected("{\"architecture\":\"amd64\",\"os\":\"linux\"}",
			"invalid image config: rootfs: required field is missing");
	config_rejected(
	    "{\"architecture\":\"amd64\",\"os\":\"linux\","
	    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" DA "\",\"sha256:12\"]}}",
	    "invalid image config: rootfs.diff_ids[1]: 'sha256:12' is not a valid digest");
	config_rejected("{\"architecture\":\"amd64\",\"os\":\"linux\","
			"\"rootfs\":{\"type\":\"squash\",\"diff_ids\":[]}}",
			"invalid image config: rootfs.type: 'squash' is not supported");
	config_rejected(
	    "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Env\":\"A=1\"},"
	    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
	    "invalid image config: config.Env: expected an array of strings, got a string");
	config_rejected(
	    "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Cmd\":[\"a\",1]},"
	    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
	    "invalid image config: config.Cmd[1]: expected a string, got an integer");
	config_rejected(
	    "{\"architecture\":\"amd64\",\"os\":\"linux\","
	    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]},\"history\":[{\"empty_layer\":1}]}",
	    "invalid image config: history[0].empty_layer: expected true or false");
}

static void test_oci__serialise_refuses_invalid_struct(void **state)
{
	(void)state;
	struct plait_manifest m = {.schema_version = 2};
	m.config.media_type = xstrdup("application/vnd.oci.image.config.v1+json");
	memcpy(m.config.digest, "sha256:zz", 10);
	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_manifest_serialise(&m, &b, &err), -PLAIT_E_INVALID);
	assert_true(startswith(err->msg, "cannot serialise manifest: config.digest: 'sha256:zz'"));
	assert_int_equal(b.len, 0);

	memcpy(m.config.digest, DA, sizeof(DA));
	m.config.size = -5;
	assert_int_equal(plait_manifest_serialise(&m, &b, &err), -PLAIT_E_INVALID);
	assert_string_equal(err->msg, "cannot serialise manifest: config.size: -5 is negative");

	m.config.size = 5;
	plait_map_set(&m.annotations, "bad", "\xff\xfe");
	assert_int_equal(plait_manifest_serialise(&m, &b, &err), -PLAIT_E_INVALID);
	assert_string_equal(err->msg,
			    "cannot serialise manifest: annotations.bad: value is not valid UTF-8");
	plait_manifest_release(&m);
}

/* ---- sniff ---- */

static void test_oci__sniff(void **state)
{
	(void)state;
	assert_int_equal(plait_oci_sniff(oci_manifest, strlen(oci_manifest)),
			 PLAIT_MT_OCI_MANIFEST);
	assert_int_equal(plait_oci_sniff(docker_manifest, strlen(docker_manifest)),
			 PLAIT_MT_DOCKER_MANIFEST);
	assert_int_equal(plait_oci_sniff(oci_index, strlen(oci_index)), PLAIT_MT_OCI_INDEX);
	assert_int_equal(plait_oci_sniff(docker_list, strlen(docker_list)), PLAIT_MT_DOCKER_LIST);
	/* No mediaType: the shape decides. */
	static const char idx[] = "{\"schemaVersion\":2,\"manifests\":[]}";
	assert_int_equal(plait_oci_sniff(idx, strlen(idx)), PLAIT_MT_OCI_INDEX);
	static const char man[] = "{\"schemaVersion\":2,\"config\":{},\"layers\":[]}";
	assert_int_equal(plait_oci_sniff(man, strlen(man)), PLAIT_MT_OCI_MANIFEST);
	assert_int_equal(plait_oci_sniff(docker_config, strlen(docker_config)), PLAIT_MT_UNKNOWN);
	assert_int_equal(plait_oci_sniff("not json", 8), PLAIT_MT_UNKNOWN);
	assert_int_equal(plait_oci_sniff("[]", 2), PLAIT_MT_UNKNOWN);
	assert_int_equal(plait_oci_sniff(NULL, 0), PLAIT_MT_UNKNOWN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_oci__media_type_table_round_trips),
	    cmocka_unit_test(test_oci__media_type_unknown_and_parameters),
	    cmocka_unit_test(test_oci__media_type_classifiers),
	    cmocka_unit_test(test_oci__accept_header_lists_manifest_and_index_types),
	    cmocka_unit_test(test_oci__map_keeps_keys_sorted_and_replaces),
	    cmocka_unit_test(test_oci__map_insert_order_does_not_change_bytes),
	    cmocka_unit_test(test_oci__parse_oci_manifest),
	    cmocka_unit_test(test_oci__parse_docker_schema2_manifest),
	    cmocka_unit_test(test_oci__parse_manifest_with_subject_and_artifact_type),
	    cmocka_unit_test(test_oci__parse_index_with_platforms),
	    cmocka_unit_test(test_oci__parse_docker_manifest_list),
	    cmocka_unit_test(test_oci__parse_docker_image_config),
	    cmocka_unit_test(test_oci__parse_oci_image_config),
	    cmocka_unit_test(test_oci__serialise_manifest_exact_bytes),
	    cmocka_unit_test(test_oci__serialise_built_manifest_omits_absent_fields),
	    cmocka_unit_test(test_oci__serialise_image_config_exact_bytes),
	    cmocka_unit_test(test_oci__serialise_config_extra_json_cannot_override_modelled_fields),
	    cmocka_unit_test(test_oci__manifest_round_trip_is_stable),
	    cmocka_unit_test(test_oci__index_round_trip_is_stable),
	    cmocka_unit_test(test_oci__image_config_round_trip_is_stable),
	    cmocka_unit_test(test_oci__image_config_empty_entrypoint_differs_from_unset),
	    cmocka_unit_test(test_oci__descriptor_copy_is_deep),
	    cmocka_unit_test(test_oci__reject_bad_layer_digest_names_the_field),
	    cmocka_unit_test(test_oci__reject_uppercase_config_digest),
	    cmocka_unit_test(test_oci__reject_negative_size),
	    cmocka_unit_test(test_oci__reject_non_integer_size),
	    cmocka_unit_test(test_oci__reject_wrong_schema_version),
	    cmocka_unit_test(test_oci__reject_not_an_object),
	    cmocka_unit_test(test_oci__reject_missing_config),
	    cmocka_unit_test(test_oci__reject_missing_layers_and_manifests),
	    cmocka_unit_test(test_oci__reject_descriptor_without_media_type),
	    cmocka_unit_test(test_oci__reject_oversized_document),
	    cmocka_unit_test(test_oci__reject_platform_missing_os),
	    cmocka_unit_test(test_oci__reject_non_string_annotation),
	    cmocka_unit_test(test_oci__reject_index_media_type_in_manifest),
	    cmocka_unit_test(test_oci__reject_duplicate_keys),
	    cmocka_unit_test(test_oci__reject_bad_image_config),
	    cmocka_unit_test(test_oci__serialise_refuses_invalid_struct),
	    cmocka_unit_test(test_oci__sniff),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
