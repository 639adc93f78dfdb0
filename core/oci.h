/* core/oci.h - the OCI data model: media types, descriptors, image
 * manifests, image indexes and image configs, with parse and serialise (jansson).
 * Platforms (the struct and its strings) are core/platform.h's.
 *
 * Contract:
 *  - parse functions validate structure (types of fields, digests, sizes >= 0,
 *    schemaVersion 2) and refuse documents larger than PLAIT_MANIFEST_MAX with
 *    -PLAIT_E_INVALID and a message naming the field that was wrong;
 *  - serialise is deterministic: the same struct gives the same bytes (fields in
 *    a fixed order, annotation/label maps sorted by key, compact JSON);
 *  - media types are kept as the strings found (unknown ones pass through);
 *    plait_media_type_from_string() classifies them through one table;
 *  - copying an image never re-serialises: raw bytes are moved so digests hold.
 *  - every struct here is "embedded": _release() frees what it points to, not
 *    the struct; releasing a zeroed struct is fine. */
#ifndef PLAIT_OCI_H
#define PLAIT_OCI_H

#include "buf.h"
#include "digest.h"
#include "error.h"
#include "platform.h" /* struct plait_platform, a descriptor's platform */

#define PLAIT_MANIFEST_MAX (4u * 1024 * 1024)

enum plait_media_type {
	PLAIT_MT_UNKNOWN = 0,
	PLAIT_MT_OCI_MANIFEST,    /* application/vnd.oci.image.manifest.v1+json */
	PLAIT_MT_OCI_INDEX,       /* application/vnd.oci.image.index.v1+json */
	PLAIT_MT_OCI_CONFIG,      /* application/vnd.oci.image.config.v1+json */
	PLAIT_MT_OCI_LAYER,       /* application/vnd.oci.image.layer.v1.tar */
	PLAIT_MT_OCI_LAYER_GZIP,  /* application/vnd.oci.image.layer.v1.tar+gzip */
	PLAIT_MT_OCI_LAYER_ZSTD,  /* application/vnd.oci.image.layer.v1.tar+zstd */
	PLAIT_MT_OCI_LAYER_NONDIST_GZIP, /* ...nondistributable.v1.tar+gzip */
	PLAIT_MT_OCI_EMPTY,       /* application/vnd.oci.empty.v1+json */
	PLAIT_MT_DOCKER_MANIFEST, /* application/vnd.docker.distribution.manifest.v2+json */
	PLAIT_MT_DOCKER_LIST,     /* application/vnd.docker.distribution.manifest.list.v2+json */
	PLAIT_MT_DOCKER_CONFIG,   /* application/vnd.docker.container.image.v1+json */
	PLAIT_MT_DOCKER_LAYER_GZIP,    /* application/vnd.docker.image.rootfs.diff.tar.gzip */
	PLAIT_MT_DOCKER_LAYER_FOREIGN, /* application/vnd.docker.image.rootfs.foreign.diff.tar.gzip */
	_PLAIT_MT_MAX,
};

enum plait_media_type plait_media_type_from_string(const char *s);
/* The canonical string, or NULL for PLAIT_MT_UNKNOWN. */
const char *plait_media_type_to_string(enum plait_media_type t);
bool plait_media_type_is_index(enum plait_media_type t);
bool plait_media_type_is_manifest(enum plait_media_type t);
bool plait_media_type_is_layer(enum plait_media_type t);
bool plait_media_type_is_config(enum plait_media_type t);
/* The value for an HTTP Accept header listing every manifest and index type. */
const char *plait_media_type_accept_manifests(void);

/* A string -> string map kept sorted by key (annotations, labels). */
struct plait_kv {
	char *key;
	char *value;
};
struct plait_map {
	struct plait_kv *items;
	size_t n, alloc;
};
/* Set key to value (copies both), replacing an existing value. */
void plait_map_set(struct plait_map *m, const char *key, const char *value);
const char *plait_map_get(const struct plait_map *m, const char *key);
void plait_map_copy(struct plait_map *dst, const struct plait_map *src);
void plait_map_release(struct plait_map *m);

struct plait_descriptor {
	char *media_type;
	char digest[PLAIT_DIGEST_MAX];
	int64_t size;
	char **urls; /* NULL-terminated, or NULL */
	struct plait_map annotations;
	struct plait_platform *platform; /* or NULL */
	char *artifact_type;             /* or NULL */
	char *data;                      /* base64 "data" field, or NULL */
};
void plait_descriptor_release(struct plait_descriptor *d);
void plait_descriptor_copy(struct plait_descriptor *dst, const struct plait_descriptor *src);

struct plait_manifest {
	int schema_version;
	char *media_type; /* may be NULL for OCI manifests that omit it */
	char *artifact_type;
	struct plait_descriptor config;
	struct plait_descriptor *layers;
	size_t n_layers;
	struct plait_descriptor *subject; /* or NULL */
	struct plait_map annotations;
};
void plait_manifest_release(struct plait_manifest *m);
int plait_manifest_parse(const char *data, size_t len, struct plait_manifest *out,
			 struct plait_error **err);
int plait_manifest_serialise(const struct plait_manifest *m, struct plait_buf *out,
			     struct plait_error **err);

struct plait_index {
	int schema_version;
	char *media_type;
	char *artifact_type;
	struct plait_descriptor *manifests;
	size_t n_manifests;
	struct plait_descriptor *subject;
	struct plait_map annotations;
};
void plait_index_release(struct plait_index *idx);
int plait_index_parse(const char *data, size_t len, struct plait_index *out,
		      struct plait_error **err);
int plait_index_serialise(const struct plait_index *idx, struct plait_buf *out,
			  struct plait_error **err);
/* Append a copy of d to idx->manifests. */
void plait_index_add(struct plait_index *idx, const struct plait_descriptor *d);

struct plait_history {
	char *created;
	char *created_by;
	char *author;
	char *comment;
	bool empty_layer;
};

/* The "config" object of an image config: what a container runs with. */
struct plait_container_config {
	char *user;
	char **exposed_ports; /* NULL-terminated, "80/tcp" */
	char **env;           /* NULL-terminated, "K=V" */
	char **entrypoint;    /* NULL-terminated; NULL = unset */
	char **cmd;           /* NULL-terminated; NULL = unset */
	char **volumes;       /* NULL-terminated */
	char *working_dir;
	struct plait_map labels;
	char *stop_signal;
	char **shell; /* NULL-terminated; NULL = unset */
	char **on_build;
	bool args_escaped;
	/* Healthcheck and other fields plait does not model are kept verbatim
	 * as a JSON text of the members not listed above ("{}" or NULL). */
	char *extra_json;
};

struct plait_image_config {
	char *created; /* RFC 3339, or NULL */
	char *author;
	char *architecture;
	char *os;
	char *variant;
	char *os_version;
	struct plait_container_config config;
	char **diff_ids; /* rootfs.diff_ids, NULL-terminated */
	struct plait_history *history;
	size_t n_history;
};
void plait_image_config_release(struct plait_image_config *c);
int plait_image_config_parse(const char *data, size_t len, struct plait_image_config *out,
			     struct plait_error **err);
int plait_image_config_serialise(const struct plait_image_config *c, struct plait_buf *out,
				 struct plait_error **err);

/* What a JSON document is, from its mediaType or, when absent, its shape
 * ("manifests" -> index, "config"+"layers" -> manifest). PLAIT_MT_UNKNOWN when
 * it is neither or cannot be parsed. */
enum plait_media_type plait_oci_sniff(const char *data, size_t len);

#endif
