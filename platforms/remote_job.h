/* platforms/remote_job.h - running one build job on a node of a builder:
 * the local side of 'plait serve' (cmd/serve.c), over the system ssh client.
 *
 * Contract:
 *  - the node is reached as plait_node_probe reaches it (ssh_argv:
 *    BatchMode, the builder's identity, $PLAIT_SSH_COMMAND), running
 *    'PLAIT serve --protocol N'; a hello is exchanged first;
 *  - the job goes as core/node_job.h says: the file lists of the context and
 *    of each --build-context directory, the Dockerfile as a content; only the
 *    contents the node asks for ("need") are sent (bytes_sent counts them);
 *  - the node's progress events go to o->progress as they come; an
 *    interrupt (o->cancel) sends "cancel" and the job ends
 *    -PLAIT_E_CANCELLED;
 *  - the result's blobs the local store lacks are fetched into it (each
 *    checked against its digest), and res describes the image as
 *    plait_build would (manifest, config, size, steps; no materials or
 *    cache keys yet);
 *  - every failure names the node: a job the node refused or whose build
 *    failed gives the node's message; a connection that ends before the
 *    result is -PLAIT_E_NETWORK with the last event seen and ssh's message;
 *  - each --secret goes after the contents as {"type":"secret","name","size"}
 *    and its bytes (read here, wiped after); the node keeps it in memory;
 *  - with push (its repositories not empty) and a node whose hello lists
 *    the "push" feature, the node pushes the image by digest to each
 *    repository itself, after its build, logging in with push->logins (one
 *    per registry host; sent as core/node_job.h says, after the secrets,
 *    for this job only); only the manifest and config come back, and
 *    res->remote_blobs names where each layer is ("DIGEST REPO@MANIFEST",
 *    as a lazy base's are), so outputs and SBOMs fetch them from there and
 *    the publication finds them in place. A node without the feature sends
 *    every blob back (stats->pushed stays false);
 *  - each --ssh agent (o->ssh: a socket here) is forwarded by the session's
 *    ssh client (-R) to a socket of its own on the node, named in the job;
 *    the node's build uses it as a local build uses --ssh ID=SOCKET. */
#ifndef PLAIT_REMOTE_JOB_H
#define PLAIT_REMOTE_JOB_H

#include "core/build.h"
#include "core/node_job.h"
#include "core/store.h"
#include "remote.h"

struct plait_remote_job_stats {
	int64_t bytes_sent; /* contents sent (the files the node lacked) */
	size_t files_sent;
	int64_t bytes_fetched; /* result blobs this side lacked */
	bool pushed;	       /* the node pushed the image itself */
	int64_t bytes_pushed;  /* what it uploaded (blobs the registries lacked) */
};

struct plait_remote_push {
	const char *const *repositories; /* "host/repo", NULL-terminated; NULL: no push */
	const struct plait_node_login *logins;
	size_t n_logins;
};

int plait_remote_job_run(const struct plait_remote_builder *b, const struct plait_node *n,
			 const struct plait_build_opts *o, const char *const *insecure_registries,
			 const struct plait_remote_push *push, struct plait_store *local, struct plait_build_result *res,
			 struct plait_remote_job_stats *stats, struct plait_error **err);

#endif
