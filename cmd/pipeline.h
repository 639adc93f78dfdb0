/* cmd/pipeline.h - what `plait build`, `plait plan` and `plait bake` share:
 * the options of a request (core/request.h), the wiring of the pipeline
 * (core/pipeline.h: registry endpoints, base images, builders) and its
 * rendering (cmd/progress.h). The engine is core's. */
#ifndef PLAIT_CMD_PIPELINE_H
#define PLAIT_CMD_PIPELINE_H

#include <pthread.h>

#include "common.h"
#include "progress.h"
#include "core/request.h"

/* A request (core/request.h) and the command line state around it. */
struct pipeline {
	struct plait_request req;
	struct registry_cli rc;
	enum progress_mode mode;
	char *builder; /* --builder NAME; NULL: the one 'plait builder use' chose */
	bool fallback_local; /* --fallback local */
	int retry_jobs; /* --retry-jobs N */
	struct plait_ssh_agent **agents; /* --ssh ID=KEYFILE: stopped by pipeline_release */
	size_t n_agents;
	struct remote_context *fetched; /* git and URL contexts (cmd/remote_context.h), removed by pipeline_release */
	size_t n_fetched;
};

void pipeline_release(struct pipeline *p);

/* A base image resolved once per run: every stage and job that names the
 * same reference for the same platform gets the same manifest (as BuildKit
 * resolves a FROM once per build), and a warm build asks the registry once. */
struct resolved {
	char *ref, *platform;
	struct plait_descriptor manifest;
	struct plait_buf bytes;
};

struct resolver_ctx {
	const struct plait_registry_opts *opts;
	const struct plait_named_context *named;
	size_t n_named;
	pthread_mutex_t lock;
	struct resolved *memo;
	size_t n_memo;
	struct remote_context *gits; /* ADD git-url checkouts, removed with the resolver */
	size_t n_gits;
};

/* The resolver of base images, ADD URLs and ADD git sources that builds
 * use (here and on a node, cmd/serve.c): registry options, --build-context
 * NAME=docker-image://… names. rc is r's context; release it after the builds. */
void pipeline_resolver_init(struct resolver_ctx *rc, struct plait_image_resolver *r,
			    const struct plait_registry_opts *opts, const struct plait_named_context *named,
			    size_t n_named);
void pipeline_resolver_release(struct resolver_ctx *rc);


/* Options build and bake share (getopt ids and help text). */
enum {
	OPT_P_CACHE_DIR = 0x1200,
	OPT_P_NO_CACHE,
	OPT_P_COMPRESSION,
	OPT_P_EPOCH,
	OPT_P_SECRET,
	OPT_P_BUILD_CONTEXT,
	OPT_P_METADATA,
	OPT_P_PROGRESS,
	OPT_P_PUSH,
	OPT_P_PUSH_BY_DIGEST,
	OPT_P_ALLOW_LATEST,
	OPT_P_JOBS,
	OPT_P_KEEP_GOING,
	OPT_P_INDEX_FORMAT,
	OPT_P_USERNS,
	OPT_P_NO_PROCESS_SANDBOX,
	OPT_P_BUILDER,
	OPT_P_FALLBACK,
	OPT_P_CACHE_FROM,
	OPT_P_CACHE_TO,
	OPT_P_ALLOW,
	OPT_P_LOAD,
	OPT_P_IIDFILE,
	OPT_P_PROVENANCE,
	OPT_P_SBOM,
	OPT_P_ATTEST,
	OPT_P_ATTEST_LAYOUT,
	OPT_P_SSH,
	OPT_P_RETRY_JOBS,
};
#define PIPELINE_OPTIONS                                                        \
	{ "cache-dir", required_argument, NULL, OPT_P_CACHE_DIR },             \
	{ "no-cache", no_argument, NULL, OPT_P_NO_CACHE },                     \
	{ "compression", required_argument, NULL, OPT_P_COMPRESSION },         \
	{ "source-date-epoch", required_argument, NULL, OPT_P_EPOCH },         \
	{ "secret", required_argument, NULL, OPT_P_SECRET },                   \
	{ "build-context", required_argument, NULL, OPT_P_BUILD_CONTEXT },     \
	{ "metadata-file", required_argument, NULL, OPT_P_METADATA },          \
	{ "progress", required_argument, NULL, OPT_P_PROGRESS },               \
	{ "push", no_argument, NULL, OPT_P_PUSH },                             \
	{ "push-by-digest", no_argument, NULL, OPT_P_PUSH_BY_DIGEST },         \
	{ "allow-latest", no_argument, NULL, OPT_P_ALLOW_LATEST },             \
	{ "jobs", required_argument, NULL, OPT_P_JOBS },                       \
	{ "keep-going", no_argument, NULL, OPT_P_KEEP_GOING },                 \
	{ "index-format", required_argument, NULL, OPT_P_INDEX_FORMAT },       \
	{ "userns", required_argument, NULL, OPT_P_USERNS },                   \
	{ "no-process-sandbox", no_argument, NULL, OPT_P_NO_PROCESS_SANDBOX }, \
	{ "builder", required_argument, NULL, OPT_P_BUILDER },                 \
	{ "fallback", required_argument, NULL, OPT_P_FALLBACK },                 \
	{ "retry-jobs", required_argument, NULL, OPT_P_RETRY_JOBS },           \
	{ "cache-from", required_argument, NULL, OPT_P_CACHE_FROM },           \
	{ "cache-to", required_argument, NULL, OPT_P_CACHE_TO },               \
	{ "allow", required_argument, NULL, OPT_P_ALLOW },                     \
	{ "load", no_argument, NULL, OPT_P_LOAD },                             \
	{ "iidfile", required_argument, NULL, OPT_P_IIDFILE },                 \
	{ "provenance", optional_argument, NULL, OPT_P_PROVENANCE },           \
	{ "sbom", optional_argument, NULL, OPT_P_SBOM },                       \
	{ "attest", required_argument, NULL, OPT_P_ATTEST },                   \
	{ "attest-layout", required_argument, NULL, OPT_P_ATTEST_LAYOUT },     \
	{ "ssh", required_argument, NULL, OPT_P_SSH }
#define PIPELINE_HELP                                                                               \
	"      --push                    push to every -t registry reference (tags move only after\n"   \
	"                                every job succeeded and everything is uploaded)\n"           \
	"      --push-by-digest          push to the -t repositories without tagging (for\n"          \
	"                                'plait index create --from-metadata' on a last CI job)\n"     \
	"      --load                    load the image into the docker daemon (DOCKER_HOST=unix://...\n" \
	"                                or /var/run/docker.sock), tagged as -t says; one platform\n" \
	"      --iidfile FILE            write the image ID there: the config digest of a\n"          \
	"                                one-platform image (docker's image ID), else the index's\n"  \
	"      --provenance[=mode=min|max|false]\n"                                                     \
	"                                a SLSA v1 provenance per pushed platform image, attached\n" \
	"                                as an OCI referrer (default with --push: mode=min; max\n"  \
	"                                adds every step; false: none)\n"                           \
	"      --sbom[=true|false]       an SPDX 2.3 SBOM per pushed platform image (dpkg, apk,\n"   \
	"                                Python and conda packages of its root file system)\n"     \
	"      --attest type=provenance[,mode=max] | type=sbom\n"                                     \
	"                                buildx's spelling of the two above\n"                        \
	"      --attest-layout referrers|buildx\n"                                                    \
	"                                OCI referrers (default), or buildx's unknown/unknown\n"    \
	"                                attestation manifests inside the index (OCI outputs too)\n" \
	"      --allow-latest            allow a -t tag named 'latest'\n"                              \
	"      --allow security.insecure let RUN --security=insecure run with every capability\n"      \
	"  -j, --jobs N                  build at most N jobs at once (default: one per job, up to\n"  \
	"                                the number of CPUs)\n"                                        \
	"      --keep-going              let the other jobs finish when one fails (nothing is\n"       \
	"                                published either way)\n"                                      \
	"      --index-format oci|docker an OCI image index (default) or a Docker manifest list\n"     \
	"                                (docker: Docker media types throughout; gzip layers only)\n"  \
	"      --userns auto|single      not root: auto (default) maps the /etc/subuid and\n"         \
	"                                /etc/subgid ranges through newuidmap; single maps only\n"   \
	"                                your own id and makes every file root's in the image\n"     \
	"      --no-process-sandbox      RUN shares plait's PID namespace and /proc (where new proc\n" \
	"                                mounts are refused, e.g. an unprivileged container)\n"    \
	"      --builder NAME|local      send each platform to a node of builder NAME that runs it\n"  \
	"                                natively (see 'plait builder'; default: the one chosen\n"  \
	"                                with 'plait builder use'); local: this host only\n"          \
	"      --fallback local          with a builder: a node that cannot be reached is left out\n" \
	"                                (its platforms go to this host) instead of failing the plan\n" \
	"      --retry-jobs N            a job whose node drops or cannot be reached is run again,\n" \
	"                                up to N times: on another node, else here (default 0)\n"   \
	"      --cache-dir DIR           the build cache (default $XDG_CACHE_HOME/plait)\n"            \
	"      --no-cache                run every step, ignoring cached results\n"                    \
	"      --cache-from type=registry,ref=REG/REPO:TAG | type=local,src=DIR\n"                     \
	"                                read a shared build cache first (repeatable, tried in\n"     \
	"                                order); one that cannot be read is a warning\n"              \
	"      --cache-to type=registry,ref=REG/REPO:TAG | type=local,dest=DIR\n"                      \
	"                                [,mode=min|max][,mounts=ID,...|all][,max-size=SIZE]\n"     \
	"                                [,ignore-error=true] after publishing, write the steps\n"   \
	"                                of the images (min) or of every stage (max), and the\n"     \
	"                                RUN --mount=type=cache dirs named, merged with what\n"      \
	"                                other runners wrote there (repeatable)\n"                   \
	"      --compression gzip|zstd   layer compression (default gzip)\n"                           \
	"      --source-date-epoch N     clamp file times and set created times to N (also\n"          \
	"                                $SOURCE_DATE_EPOCH): same inputs, same digest\n"              \
	"      --secret id=ID,src=FILE | id=ID,env=VAR\n"                                              \
	"                                a secret for RUN --mount=type=secret (never stored)\n"        \
	"      --ssh default|ID[=SOCKET|KEYFILE[,KEYFILE...]]\n"                                     \
	"                                an ssh agent for RUN --mount=type=ssh: $SSH_AUTH_SOCK's,\n" \
	"                                SOCKET, or one plait starts with the keys (repeatable)\n"  \
	"      --build-context NAME=REF  a named context: a directory (for COPY --from=NAME and\n"     \
	"                                RUN --mount from=NAME), or an image FROM NAME and\n"          \
	"                                COPY --from=NAME resolve to (oci:DIR[:TAG], docker-image://REF)\n" \
	"      --metadata-file FILE      write per image (variant) the digest, tags and per platform\n" \
	"                                the manifest digest, size and duration as JSON\n"            \
	"      --progress auto|plain|tty|json|quiet\n"                                                 \
	"                                how steps are shown: tty redraws a live line per running\n"   \
	"                                job (default on a terminal), plain prints a line per event\n" \
	"                                (default otherwise, e.g. in CI), json one object per event\n"

/* Handle one of the shared options: 1 handled, 0 not one of them, <0 a usage
 * error was printed (exit EXIT_USAGE). Registry options included. */
int pipeline_option(struct pipeline *p, const char *cmd, int c, const char *arg);
/* The last cases of build's and bake's option switch: '?' and an option that
 * is not one of the shared ones print the usage error, the shared ones go to
 * pipeline_option. 0 when taken, else the exit code. seen: argv[optind - 1]. */
int pipeline_other_option(struct pipeline *p, const char *cmd, int c, const char *arg,
			  const char *seen);
/* --format table|json of plan and bake --plan: *json says which. <0: usage error printed. */
int pipeline_format_option(const char *cmd, const char *arg, bool *json);
/* After option parsing: SOURCE_DATE_EPOCH, registry options. <0: usage error printed. */
int pipeline_finish_options(struct pipeline *p, const char *cmd);

/* Plan (and with plan_only print the plan as a table or JSON), else build,
 * export, push, write metadata and the summary. Returns the exit code. */
int pipeline_run(struct pipeline *p, bool plan_only, bool plan_json);

/* plait build (plan false) and plait plan (true): cmd/build.c. */
int build_or_plan(int argc, char **argv, bool plan);

#endif
