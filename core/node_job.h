/* core/node_job.h - the files of a job sent to a node (plait builder; the
 * README's "Builders on other machines"): the build context (and each
 * --build-context directory) goes over the channel as a list of entries
 * with content digests, then the contents the node's store lacks, and the
 * node makes the directory again from them.
 *
 * Contract:
 *  - a list is what a build of the directory sees: every entry its
 *    .dockerignore does not exclude (plait_context_walk), the root left out,
 *    in walk order (parents before what is in them, names sorted). As JSON,
 *    each entry is an array [path, type, mode, uid, gid, size, mtime, data,
 *    rdev]: type "f" (data: the content digest "sha256:<hex>"), "d", "l"
 *    (data: the link target) or "p"; mode the permission bits (07777);
 *    mtime Unix seconds; rdev 0. Sockets and device nodes are not carried:
 *    collecting one is -PLAIT_E_USAGE naming it (COPY of a device from a
 *    context is for local builds);
 *  - plait_node_files_parse (the node's side) trusts nothing: a path must be
 *    relative, clean (no "", ".", ".." component, no '//' or trailing '/'),
 *    at most PATH_MAX bytes, listed once, after its parent, whose entry is a
 *    directory; a type, mode, size or digest out of range, or more than
 *    PLAIT_NODE_FILES_MAX entries, is -PLAIT_E_INVALID naming the entry (its
 *    index and path) and what is wrong;
 *  - plait_node_files_materialize makes the entries under dir (which must be
 *    an empty directory) one by one, each created with O_EXCL/O_NOFOLLOW in
 *    its parent opened component by component with O_NOFOLLOW|O_DIRECTORY,
 *    so nothing is written outside dir whatever the list says (a symlink in
 *    the list is created, never followed); file contents come from the store
 *    by digest (a missing one is -PLAIT_E_NOT_FOUND naming it); owners are
 *    set when running as root, else the files are the caller's; modes, then
 *    times (directories last, deepest first) as listed;
 *  - contents travel as a control frame {"type":"blob","digest","size"}, the
 *    bytes in content frames, then an end frame; plait_node_blob_receive
 *    stores them under that digest only when they match it (size and
 *    SHA-256): no partial or wrong blob is ever named. */
#ifndef PLAIT_NODE_JOB_H
#define PLAIT_NODE_JOB_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "build.h"
#include "context.h"
#include "digest.h"
#include "error.h"
#include "store.h"

#define PLAIT_NODE_FILES_MAX 1000000
/* The largest --secret a job carries (as a local build reads one). */
#define PLAIT_NODE_SECRET_MAX (1u << 20)
/* Where a job's forwarded ssh agents are on the node (the only sockets it removes). */
#define PLAIT_NODE_SSH_PREFIX "/tmp/plait-node-ssh-"
/* Whether path is named as a forwarded agent's socket: PLAIT_NODE_SSH_PREFIX,
 * a name without '/', ".sock". */
bool plait_node_ssh_socket_named(const char *path);

struct plait_node_file {
	char *path;
	char type; /* 'f', 'd', 'l', 'p' */
	mode_t mode; /* permission bits */
	uid_t uid;
	gid_t gid;
	int64_t size;
	int64_t mtime;
	char *data; /* 'f': "sha256:…"; 'l': the target; else NULL */
};

struct plait_node_files {
	struct plait_node_file *v;
	size_t n;
	int64_t bytes; /* sum of the files' sizes */
};

/* The list of what a build of ctx sees (see the contract), as JSON. */
int plait_node_files_collect(struct plait_context *ctx, json_t **out, struct plait_error **err);
/* Check and take in a list (the node's side). where names the list in messages. */
int plait_node_files_parse(const json_t *list, const char *where, struct plait_node_files *out,
			   struct plait_error **err);
void plait_node_files_release(struct plait_node_files *f);
/* The distinct content digests of the lists' files (and extra, if not NULL)
 * that s lacks, sorted. */
int plait_node_files_missing(const struct plait_node_files *const *lists, size_t n_lists, const char *extra,
			     struct plait_store *s, char ***out, struct plait_error **err);
/* Make f under the empty directory dir, contents from s. */
int plait_node_files_materialize(const struct plait_node_files *f, struct plait_store *s, const char *dir,
				 struct plait_error **err);

/* Send the blob digest (size bytes) read from fd as frames on out. */
int plait_node_blob_send(int out, const char *digest, int64_t size, int fd, struct plait_error **err);
/* Having read the control frame ctl ({"type":"blob",…}), read the content
 * and end frames from in into s; *n counts frames (core/frame.h). The
 * digest stored is ctl's, and only when the bytes match it; max bounds
 * the size a blob may announce. */
int plait_node_blob_receive(int in, const json_t *ctl, struct plait_store *s, int64_t max, size_t *n,
			    struct plait_error **err);

/* The build a job asks for: the settings of plait_build_opts that travel
 * (the node uses its own cache, runner and resolver), the Dockerfile as a
 * content like the files (its digest and size; its base name chooses the
 * ignore file), the context's list and each --build-context directory's. As
 * JSON: {"type":"job", "id", "platform", "build_platform", "target"|null,
 * "dockerfile":{"name","digest","size"}, "build_args":[], "labels":[],
 * "annotations":[], "insecure_registries":[], "no_cache", "docker_media_types",
 * "allow_insecure", "compression", "source_date_epoch"|null, "context":[list],
 * "named":[{"name","files":[list]}], "push":["host/repo", …],
 * "ssh":[{"id","socket"}]}. Each --ssh agent is forwarded by the ssh
 * client of the session (ssh -R) to a socket on the node, named
 * PLAIT_NODE_SSH_PREFIX<random>-<n>.sock: the node builds with it as a
 * local build with --ssh ID=SOCKET, and removes it when the job ends. With push
 * (a node whose hello lists the "push" feature), the node pushes the image
 * by digest to each repository itself (no tag: tags move from the local
 * side, after every job), with the credentials handed over for the job. */
struct plait_node_job {
	long id;
	char *platform, *build_platform, *target;
	char *dockerfile_name, *dockerfile_digest;
	int64_t dockerfile_size;
	char **build_args, **labels, **annotations, **insecure_registries; /* NULL-terminated, never NULL */
	bool no_cache, docker_media_types, allow_insecure, have_epoch;
	int64_t source_date_epoch;
	enum plait_layer_compression compression;
	struct plait_node_files context;
	char **push;			  /* repositories "host/repo", NULL-terminated, never NULL */
	struct plait_build_ssh *ssh;	  /* id and socket owned here */
	size_t n_ssh;
	char **named;			  /* names, NULL-terminated */
	struct plait_node_files *named_files; /* one per name */
	size_t n_named;
};

/* The job message for o (its context and named dirs listed already: context
 * and named are taken over; named is [{"name","files"}]); ssh_sockets: the
 * node's socket for each of o->ssh (NULL when o has none). */
json_t *plait_node_job_to_json(long id, const struct plait_build_opts *o, const char *const *insecure_registries,
			       const char *const *push, const char *const *ssh_sockets, const char *dockerfile_name,
			       const char *dockerfile_digest, int64_t dockerfile_size, json_t *context, json_t *named);
/* The node's side: every field checked (lists as plait_node_files_parse);
 * -PLAIT_E_INVALID naming the field. */
int plait_node_job_parse(const json_t *msg, struct plait_node_job *out, struct plait_error **err);
void plait_node_job_release(struct plait_node_job *j);

/* Registry credentials for one host, handed to the node for one job's push
 * (never a file there, never a log line): a control frame
 * {"type":"login","id","host","size"} then its payload in content frames,
 * "USERNAME\0PASSWORD\0IDENTITY_TOKEN\0" (an empty field: none; all
 * empty: anonymous), then an end frame. Both sides wipe what held it. */
struct plait_node_login {
	char *host; /* the registry's API host, as plait_ref_api_host names it */
	char *username, *password, *identity_token; /* NULL: none */
};
/* The payload for l, into out (initialised here, sized once; the caller
 * wipes and releases it). */
void plait_node_login_payload(const struct plait_node_login *l, struct plait_buf *out);
/* The node's side: host checked (a host[:port], nothing else), the payload
 * three NUL-terminated fields and nothing after them. */
int plait_node_login_parse(const char *host, const void *payload, size_t len, struct plait_node_login *out,
			   struct plait_error **err);
/* Wipes the password and token. */
void plait_node_login_release(struct plait_node_login *l);

#endif
