/* cmd/pipeline.c - the options build and bake share, and the wiring of the
 * pipeline (core/pipeline.h); see pipeline.h. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>

#include "pipeline.h"
#include "remote_context.h"
#include "core/pipeline.h"
#include "platforms/builder.h"
#include "core/platform.h"
#include "platforms/host.h"
#include "platforms/remote.h"
#include "platforms/remote_job.h"
#include "platforms/rootless.h"
#include "platforms/ssh_agent.h"
#include "registry/daemon.h"
#include "registry/endpoint.h"
#include "registry/fetch.h"
#include "core/ref.h"
#include "core/banned.h"

void pipeline_release(struct pipeline *p)
{
	for (size_t i = 0; i < p->n_agents; i++)
		plait_ssh_agent_stop(p->agents[i]);
	free(p->agents);
	p->agents = NULL;
	p->n_agents = 0;
	for (size_t i = 0; i < p->n_fetched; i++)
		remote_context_release(&p->fetched[i]);
	free(p->fetched);
	p->fetched = NULL;
	p->n_fetched = 0;
	plait_request_release(&p->req);
	registry_cli_release(&p->rc);
	free(p->builder);
}

static int add_secret(struct plait_request *p, const char *cmd, const char *arg)
{
	_cleanup_free_ char *copy = xstrdup(arg);
	const char *id = NULL, *srcf = NULL, *env = NULL;
	for (char *save = NULL, *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
		if (startswith(f, "id="))
			id = f + 3;
		else if (startswith(f, "src=") || startswith(f, "source="))
			srcf = strchr(f, '=') + 1;
		else if (startswith(f, "env="))
			env = f + 4;
	}
	if (!id || (!srcf && !env))
		return usage_error(cmd, "--secret '%s': use id=ID,src=FILE or id=ID,env=VAR", arg), -1;
	_cleanup_free_ char *path = NULL;
	if (env) {
		/* The value goes to a private file that the sandbox binds read-only. */
		const char *v = getenv(env);
		if (!v)
			return usage_error(cmd, "--secret id=%s: $%s is not set", id, env), -1;
		path = xstrdup("/tmp/plait-secret-XXXXXX");
		int fd = mkostemp(path, O_CLOEXEC);
		if (fd < 0 || plait_write_all(fd, v, strlen(v)) < 0) {
			if (fd >= 0)
				close(fd);
			return usage_error(cmd, "--secret id=%s: cannot write a temporary file", id), -1;
		}
		close(fd);
		plait_strv_push(&p->secret_files, path);
	} else {
		path = realpath(srcf, NULL);
		if (!path)
			return usage_error(cmd, "--secret id=%s: cannot read '%s': %s", id, srcf, strerror(errno)), -1;
		struct stat sst;
		if (stat(path, &sst) < 0 || !S_ISREG(sst.st_mode))
			return usage_error(cmd, "--secret id=%s: '%s' is not a file", id, srcf), -1;
	}
	p->secrets = xrealloc(p->secrets, (p->n_secrets + 1) * sizeof(*p->secrets));
	p->secrets[p->n_secrets].id = xstrdup(id);
	p->secrets[p->n_secrets].src = TAKE_PTR(path);
	p->n_secrets++;
	return 0;
}

/* --ssh default | ID | ID=SOCKET | ID=KEYFILE[,KEYFILE...] (buildx's forms). */
static int add_ssh(struct pipeline *pl, const char *cmd, const char *arg)
{
	struct plait_request *p = &pl->req;
	const char *eq = strchr(arg, '=');
	_cleanup_free_ char *id = eq ? xstrndup(arg, (size_t)(eq - arg)) : xstrdup(arg);
	if (!*id)
		return usage_error(cmd, "--ssh '%s': give default, ID, ID=SOCKET or ID=KEYFILE", arg), -1;
	for (size_t i = 0; i < p->n_ssh; i++)
		if (streq(p->ssh[i].id, id))
			return usage_error(cmd, "--ssh %s: given twice", id), -1;
	char *sock = NULL;
	if (!eq || !eq[1]) {
		const char *env = getenv("SSH_AUTH_SOCK");
		if (!env || !*env)
			return usage_error(cmd, "--ssh %s: $SSH_AUTH_SOCK is not set: start ssh-agent (eval $(ssh-agent)) "
						"and ssh-add your key, or give --ssh %s=SOCKET or --ssh %s=KEYFILE",
					   id, id, id),
			       -1;
		sock = xstrdup(env);
	} else {
		_cleanup_strv_free_ char **paths = NULL;
		_cleanup_free_ char *copy = xstrdup(eq + 1);
		for (char *save = NULL, *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save))
			plait_strv_push(&paths, f);
		struct stat st;
		size_t n = 0;
		while (paths && paths[n])
			n++;
		for (size_t i = 0; i < n; i++) {
			if (stat(paths[i], &st) < 0)
				return usage_error(cmd, "--ssh %s: cannot read '%s': %s", id, paths[i], strerror(errno)), -1;
			if (S_ISSOCK(st.st_mode) && n > 1)
				return usage_error(cmd, "--ssh %s: '%s' is a socket: give one agent socket, or key files",
						   id, paths[i]),
				       -1;
			if (!S_ISSOCK(st.st_mode) && !S_ISREG(st.st_mode))
				return usage_error(cmd, "--ssh %s: '%s' is neither an agent socket nor a key file", id,
						   paths[i]),
				       -1;
		}
		if (n == 1 && stat(paths[0], &st) == 0 && S_ISSOCK(st.st_mode)) {
			sock = realpath(paths[0], NULL);
		} else {
			struct plait_ssh_agent *a = NULL;
			struct plait_error *err = NULL;
			if (plait_ssh_agent_start(id, (const char *const *)paths, &a, &err) < 0) {
				usage_error(cmd, "%s", err->msg);
				plait_error_free(err);
				return -1;
			}
			pl->agents = xrealloc(pl->agents, (pl->n_agents + 1) * sizeof(*pl->agents));
			pl->agents[pl->n_agents++] = a;
			sock = xstrdup(plait_ssh_agent_socket(a));
		}
	}
	p->ssh = xrealloc(p->ssh, (p->n_ssh + 1) * sizeof(*p->ssh));
	p->ssh[p->n_ssh++] = (struct plait_build_ssh){ .id = TAKE_PTR(id), .socket = sock };
	return 0;
}

int pipeline_option(struct pipeline *pl, const char *cmd, int c, const char *arg)
{
	struct plait_request *p = &pl->req;
	switch (c) {
	case OPT_P_CACHE_DIR:
		free(p->cache_dir);
		p->cache_dir = xstrdup(arg);
		return 1;
	case OPT_P_NO_CACHE:
		p->no_cache = true;
		return 1;
	case OPT_P_CACHE_FROM:
	case OPT_P_CACHE_TO: {
		struct plait_error *err = NULL;
		bool to = c == OPT_P_CACHE_TO;
		if (plait_request_add_cache(p, arg, to, to ? "--cache-to" : "--cache-from", &err) < 0) {
			usage_error(cmd, "%s", err->msg);
			plait_error_free(err);
			return -1;
		}
		return 1;
	}
	case OPT_P_COMPRESSION:
		if (streq(arg, "gzip"))
			p->compression = PLAIT_LAYER_GZIP;
		else if (streq(arg, "zstd"))
			p->compression = PLAIT_LAYER_ZSTD;
		else
			return usage_error(cmd, "--compression: unknown '%s'; use gzip or zstd", arg), -1;
		return 1;
	case OPT_P_EPOCH:
		if (parse_epoch(cmd, "--source-date-epoch", arg, &p->source_date_epoch) < 0)
			return -1;
		p->have_epoch = true;
		return 1;
	case OPT_P_SECRET:
		return add_secret(p, cmd, arg) < 0 ? -1 : 1;
	case OPT_P_BUILD_CONTEXT: {
		const char *eq = strchr(arg, '=');
		if (!eq || eq == arg)
			return usage_error(cmd, "--build-context '%s': use NAME=DIR, NAME=oci:DIR[:TAG] or "
						"NAME=docker-image://REF",
					   arg),
			       -1;
		p->named = xrealloc(p->named, (p->n_named + 1) * sizeof(*p->named));
		p->named[p->n_named].name = xstrndup(arg, (size_t)(eq - arg));
		p->named[p->n_named].ref = xstrdup(eq + 1);
		p->n_named++;
		return 1;
	}
	case OPT_P_METADATA:
		free(p->metadata);
		p->metadata = xstrdup(arg);
		return 1;
	case OPT_P_PROGRESS: {
		int m = progress_mode_parse(arg);
		if (m < 0)
			return usage_error(cmd, "--progress: unknown '%s'; use auto, plain, tty, json or quiet", arg), -1;
		pl->mode = (enum progress_mode)m;
		return 1;
	}
	case OPT_P_PUSH:
		p->push = true;
		return 1;
	case OPT_P_PUSH_BY_DIGEST:
		p->push = p->by_digest = true;
		return 1;
	case OPT_P_LOAD:
		p->load = true;
		return 1;
	case OPT_P_IIDFILE:
		if (!*arg)
			return usage_error(cmd, "--iidfile: empty file name"), -1;
		free(p->iidfile);
		p->iidfile = xstrdup(arg);
		return 1;
	case OPT_P_PROVENANCE:
	case OPT_P_SBOM:
	case OPT_P_ATTEST: {
		struct plait_error *err = NULL;
		int r = c == OPT_P_ATTEST	? plait_request_add_attest(p, arg, &err)
			: c == OPT_P_SBOM ? plait_parse_sbom(arg ? arg : "", &p->sbom, &err)
					  : plait_parse_provenance(arg ? arg : "", &p->provenance, &err);
		if (c == OPT_P_SBOM)
			p->sbom_given = true;
		if (r < 0) {
			usage_error(cmd, "%s", err->msg);
			plait_error_free(err);
			return -1;
		}
		return 1;
	}
	case OPT_P_SSH:
		return add_ssh(pl, cmd, arg) < 0 ? -1 : 1;
	case OPT_P_ATTEST_LAYOUT:
		if (streq(arg, "buildx"))
			p->attest_in_index = true;
		else if (streq(arg, "referrers"))
			p->attest_in_index = false;
		else
			return usage_error(cmd, "--attest-layout: unknown '%s'; use referrers or buildx", arg), -1;
		return 1;
	case OPT_P_ALLOW_LATEST:
		p->allow_latest = true;
		return 1;
	case OPT_P_ALLOW:
		/* buildx's entitlements; RUN --network=host needs none here (RUN
		 * shares the host's network unless --network=none) */
		if (streq(arg, "security.insecure"))
			p->allow_insecure = true;
		else if (!streq(arg, "network.host"))
			return usage_error(cmd, "--allow: unknown entitlement '%s'; use security.insecure or "
						"network.host", arg),
			       -1;
		return 1;
	case 'j':
	case OPT_P_JOBS: {
		long n;
		if (parse_number_option(cmd, "--jobs", arg, 256, &n) < 0)
			return -1;
		p->max_jobs = (size_t)n;
		return 1;
	}
	case OPT_P_KEEP_GOING:
		p->keep_going = true;
		return 1;
	case OPT_P_USERNS: {
		/* Acted on by main before anything else ran (cmd/main.c). */
		enum plait_userns_mode m;
		if (plait_userns_mode_from_string(arg, &m) < 0)
			return usage_error(cmd, "--userns: unknown '%s'; use auto or single", arg), -1;
		return 1;
	}
	case OPT_P_NO_PROCESS_SANDBOX:
		return 1;
	case OPT_P_BUILDER:
		free(pl->builder);
		pl->builder = xstrdup(arg);
		return 1;
	case OPT_P_RETRY_JOBS: {
		long n;
		if (streq(arg, "0"))
			n = 0;
		else if (parse_number_option(cmd, "--retry-jobs", arg, 16, &n) < 0)
			return -1;
		pl->retry_jobs = (int)n;
		return 1;
	}
	case OPT_P_FALLBACK:
		if (!streq(arg, "local"))
			return usage_error(cmd, "--fallback: unknown '%s'; use local", arg), -1;
		pl->fallback_local = true;
		return 1; /* main set it: plait_sandbox_set_process_sandbox() */
	case OPT_P_INDEX_FORMAT:
		if (streq(arg, "docker"))
			p->docker_format = true;
		else if (streq(arg, "oci"))
			p->docker_format = false;
		else
			return usage_error(cmd, "--index-format: unknown '%s'; use oci or docker", arg), -1;
		return 1;
	}
	int r = registry_cli_option(&pl->rc, cmd, c, arg);
	return r < 0 ? -1 : r;
}

int pipeline_other_option(struct pipeline *p, const char *cmd, int c, const char *arg,
			  const char *seen)
{
	if (c == '?')
		return usage_error(cmd, "unknown or incomplete option '%s'", seen);
	int r = pipeline_option(p, cmd, c, arg);
	if (r < 0)
		return EXIT_USAGE;
	return r == 0 ? usage_error(cmd, "unknown option '%s'", seen) : 0;
}

int pipeline_format_option(const char *cmd, const char *arg, bool *json)
{
	if (!streq(arg, "json") && !streq(arg, "table"))
		return usage_error(cmd, "--format: unknown '%s'; use table or json", arg), -1;
	*json = streq(arg, "json");
	return 0;
}

int pipeline_finish_options(struct pipeline *pl, const char *cmd)
{
	struct plait_request *p = &pl->req;
	if (source_date_epoch(cmd, &p->have_epoch, &p->source_date_epoch) < 0)
		return -1;
	if (p->docker_format && p->compression == PLAIT_LAYER_ZSTD)
		return usage_error(cmd, "--index-format docker: Docker media types have no zstd layers; use "
					"--compression gzip or the OCI format"),
		       -1;
	for (size_t i = 0; i < p->n_targets; i++)
		if (p->push && !p->targets[i].tags)
			return usage_error(cmd, "--push needs at least one -t REF to push to%s%s",
					   p->targets[i].name ? " (target " : "",
					   p->targets[i].name ? p->targets[i].name : ""),
			       -1;
	if (registry_cli_finish_pull(&pl->rc, cmd) < 0)
		return -1;
	return 0;
}

/* ------------------------------------------------------------ wiring */

void pipeline_resolver_release(struct resolver_ctx *rc)
{
	for (size_t i = 0; i < rc->n_memo; i++) {
		free(rc->memo[i].ref);
		free(rc->memo[i].platform);
		plait_descriptor_release(&rc->memo[i].manifest);
		plait_buf_release(&rc->memo[i].bytes);
	}
	free(rc->memo);
	for (size_t i = 0; i < rc->n_gits; i++)
		remote_context_release(&rc->gits[i]);
	free(rc->gits);
	pthread_mutex_destroy(&rc->lock);
}

/* Copies the memo's answer for (ref, platform) out: true when it had one. */
static bool memo_get(struct resolver_ctx *rc, const char *ref, const char *platform,
		     struct plait_descriptor *manifest, struct plait_buf *bytes)
{
	bool found = false;
	pthread_mutex_lock(&rc->lock);
	for (size_t i = 0; i < rc->n_memo && !found; i++) {
		const struct resolved *m = &rc->memo[i];
		if (!streq(m->ref, ref) || !streq(m->platform, platform))
			continue;
		plait_descriptor_copy(manifest, &m->manifest);
		plait_buf_reset(bytes);
		plait_buf_add(bytes, m->bytes.buf, m->bytes.len);
		found = true;
	}
	pthread_mutex_unlock(&rc->lock);
	return found;
}

static void memo_put(struct resolver_ctx *rc, const char *ref, const char *platform,
		     const struct plait_descriptor *manifest, const struct plait_buf *bytes)
{
	pthread_mutex_lock(&rc->lock);
	bool known = false;
	for (size_t i = 0; i < rc->n_memo && !known; i++)
		known = streq(rc->memo[i].ref, ref) && streq(rc->memo[i].platform, platform);
	if (!known) {
		rc->memo = xrealloc(rc->memo, (rc->n_memo + 1) * sizeof(*rc->memo));
		struct resolved *m = &rc->memo[rc->n_memo++];
		*m = (struct resolved){ .ref = xstrdup(ref), .platform = xstrdup(platform), .bytes = PLAIT_BUF_INIT };
		plait_descriptor_copy(&m->manifest, manifest);
		plait_buf_add(&m->bytes, bytes->buf, bytes->len);
	}
	pthread_mutex_unlock(&rc->lock);
}

static int resolve_image(void *ctx, const char *ref, const char *platform, struct plait_endpoint **ep,
			 struct plait_descriptor *manifest, struct plait_buf *bytes, struct plait_error **err)
{
	struct resolver_ctx *rc = ctx;
	for (size_t i = 0; i < rc->n_named; i++)
		if (streq(rc->named[i].name, ref))
			ref = rc->named[i].ref;
	if (startswith(ref, "docker-image://"))
		ref += strlen("docker-image://");
	struct plait_platform want = { 0 };
	*ep = NULL;
	int r = plait_platform_parse(platform, &want, err);
	if (r >= 0)
		r = plait_endpoint_open(ref, false, rc->opts, ep, err);
	if (r >= 0 && memo_get(rc, ref, platform, manifest, bytes)) {
		plait_platform_release(&want);
		return 0;
	}
	if (r >= 0)
		r = plait_endpoint_resolve(*ep, NULL, manifest, bytes, err);
	if (r >= 0) /* an index narrows to the platform; a manifest's config must match it */
		r = plait_platform_narrow(*ep, manifest, bytes, &want, 1, err);
	if (r >= 0)
		memo_put(rc, ref, platform, manifest, bytes);
	plait_platform_release(&want);
	return r;
}

static int fetch_url(void *ctx, const char *url, struct plait_blob_writer *w, int64_t *mtime,
		     struct plait_error **err)
{
	struct resolver_ctx *rc = ctx;
	return plait_fetch_url(url, rc->opts, w, mtime, err);
}

/* What the pipeline's ops reach: the registry options and the progress view. */
struct wiring {
	const struct plait_registry_opts *ropts;
	const char *const *insecure; /* --insecure-registry, for the nodes too */
	struct progress progress;
	char *docker_socket; /* --load: the daemon's */
	const struct plait_remote_builder *rb; /* --builder's, or NULL */
	const struct plait_builder_chooser *local; /* this host's builders (--retry-jobs) */
	int retry_jobs;
};

static int fetch_git(void *ctx, const char *url, bool keep_git_dir, char **dir, char **commit,
		     struct plait_error **err)
{
	struct resolver_ctx *rc = ctx;
	struct remote_context c;
	int r = remote_context_fetch(url, rc->opts, keep_git_dir, &c, err);
	if (r < 0)
		return r;
	*dir = xstrdup(c.dir);
	*commit = xstrdup_or_null(c.commit);
	pthread_mutex_lock(&rc->lock);
	rc->gits = xrealloc(rc->gits, (rc->n_gits + 1) * sizeof(*rc->gits));
	rc->gits[rc->n_gits++] = c;
	pthread_mutex_unlock(&rc->lock);
	return 0;
}

void pipeline_resolver_init(struct resolver_ctx *rc, struct plait_image_resolver *r,
			    const struct plait_registry_opts *opts, const struct plait_named_context *named,
			    size_t n_named)
{
	*rc = (struct resolver_ctx){ .opts = opts, .named = named, .n_named = n_named };
	pthread_mutex_init(&rc->lock, NULL);
	*r = (struct plait_image_resolver){ .ctx = rc, .resolve = resolve_image, .fetch_url = fetch_url,
					    .fetch_git = fetch_git };
}

static int load_image(void *ctx, int fd, int64_t size, struct plait_error **err)
{
	struct wiring *w = ctx;
	return plait_daemon_load(w->docker_socket, fd, size, err);
}

static int open_endpoint(void *ctx, const char *spec, bool for_write, struct plait_endpoint **out,
			 struct plait_error **err)
{
	struct wiring *w = ctx;
	return plait_endpoint_open(spec, for_write, w->ropts, out, err);
}

/* A job assigned to a node: built there, its image fetched into the local
 * cache's store, where publishing finds it as it finds a local build's. With
 * --retry-jobs N, a job whose node dropped or could not be reached
 * (PLAIT_E_NETWORK: a failing build is not retried) runs again, up to N
 * times: on another node that runs the platform natively, else here (native
 * or QEMU), else on another node's QEMU. */
/* --push from a node: the repositories of the image's -t references, and
 * the credentials this side would push to their registries with (none
 * stored: anonymous, so the node's own never stand in for the user's). */
static int push_logins(const struct wiring *w, const char *const *push_to, struct plait_remote_push *out,
		       struct plait_error **err)
{
	char **repos = NULL;
	struct plait_node_login *logins = NULL;
	size_t n = 0;
	int r = 0;
	for (const char *const *t = push_to; r >= 0 && t && *t; t++) {
		struct plait_ref ref = { 0 };
		r = plait_ref_parse(*t, &ref, err);
		_cleanup_free_ char *name = r >= 0 ? plait_ref_name(&ref) : NULL;
		const char *host = r >= 0 ? plait_ref_api_host(&ref) : NULL;
		if (name && !plait_strv_contains(repos, name))
			plait_strv_push(&repos, name);
		bool known = false;
		for (size_t k = 0; host && k < n && !known; k++)
			known = streq(logins[k].host, host);
		struct plait_credentials c = { 0 };
		if (host && !known &&
		    (r = plait_auth_lookup_api_host(w->ropts->docker_config_dir, w->ropts->logins, w->ropts->n_logins,
						    host, &c, err)) < 0)
			plait_error_wrap(err, "--push %s: the credentials for the node's push", *t);
		else if (host && !known) {
			logins = xrealloc(logins, (n + 1) * sizeof(*logins));
			logins[n++] = (struct plait_node_login){ xstrdup(host), TAKE_PTR(c.username), TAKE_PTR(c.password),
								 TAKE_PTR(c.identity_token) };
		}
		plait_credentials_release(&c);
		plait_ref_release(&ref);
	}
	*out = (struct plait_remote_push){ (const char *const *)repos, logins, n };
	return r;
}

static void push_logins_release(struct plait_remote_push *p)
{
	for (size_t i = 0; i < p->n_logins; i++)
		plait_node_login_release((struct plait_node_login *)&p->logins[i]);
	free((void *)p->logins);
	plait_strv_free((char **)p->repositories);
	*p = (struct plait_remote_push){ 0 };
}

static int remote_build(void *ctx, size_t job, const char *node, const struct plait_build_opts *o,
			const char *const *push_to, struct plait_build_result *res, struct plait_error **err)
{
	(void)job;
	struct wiring *w = ctx;
	const struct plait_node *n = NULL;
	for (size_t i = 0; w->rb && i < w->rb->n_nodes && !n; i++)
		if (streq(w->rb->nodes[i].url, node))
			n = &w->rb->nodes[i];
	if (!n)
		return plait_error_set(err, PLAIT_E_USAGE, "node %s is not in the builder", node);
	_cleanup_free_ char *path = plait_build_cache_store(o->cache_dir);
	struct plait_store *store = NULL;
	struct plait_remote_push push = { 0 };
	int r = plait_store_open(path, true, &store, err);
	if (r >= 0)
		r = push_logins(w, push_to, &push, err);
	_cleanup_strv_free_ char **tried = NULL;
	for (int attempt = 0; r >= 0; attempt++) {
		struct plait_remote_job_stats st = { 0 };
		r = plait_remote_job_run(w->rb, n, o, w->insecure, &push, store, res, &st, err);
		if (r >= 0) {
			res->built_on = xstrdup(n->url);
			struct plait_buf pushed = PLAIT_BUF_INIT;
			if (st.pushed)
				plait_buf_addf(&pushed, ", pushed %lld bytes from the node to %s%s",
					       (long long)st.bytes_pushed, push.repositories[0],
					       push.repositories[1] ? " and the other repositories" : "");
			progress_note(&w->progress,
				      "%s built on %s: sent %zu file%s (%lld bytes) the node lacked%s, fetched %lld bytes",
				      o->platform_str, n->url, st.files_sent, st.files_sent == 1 ? "" : "s",
				      (long long)st.bytes_sent, pushed.buf ? pushed.buf : "", (long long)st.bytes_fetched);
			plait_buf_release(&pushed);
			break;
		}
		if (plait_error_code(err) != PLAIT_E_NETWORK || attempt >= w->retry_jobs)
			break;
		plait_strv_push(&tried, n->url);
		const char *arch = o->platform.architecture;
		const struct plait_node *next = plait_remote_node_serving(w->rb, arch, true, (const char *const *)tried);
		struct plait_builder local = { 0 };
		struct plait_error *lerr = NULL;
		bool here = !next && w->local->choose(w->local->ctx, &o->platform, &local, &lerr) >= 0;
		if (!next && !here)
			next = plait_remote_node_serving(w->rb, arch, false, (const char *const *)tried);
		if (!next && !here) {
			plait_error_wrap(err, "no other node or builder here runs %s (%s)", o->platform_str,
					 lerr ? lerr->msg : "none");
			plait_error_free(lerr);
			break;
		}
		plait_error_free(lerr);
		progress_note(&w->progress, "%s: %s; running it again %s (retry %d of %d)", o->platform_str,
			      (*err)->msg, next ? next->url : here && local.emulated ? "here, under QEMU" : "here",
			      attempt + 1, w->retry_jobs);
		plait_error_clear(err);
		if (next) {
			n = next;
			plait_builder_release(&local);
			r = 0;
			continue;
		}
		struct plait_build_opts lo = *o;
		lo.runner = &local.runner;
		r = plait_build(&lo, res, err);
		plait_builder_release(&local);
		break;
	}
	push_logins_release(&push);
	plait_store_free(store);
	return r;
}

static void job_event(void *ctx, size_t job, const struct plait_build_event *ev)
{
	struct wiring *w = ctx;
	progress_event(ev, &w->progress.jobs[job]);
}

static void note(void *ctx, enum plait_pipeline_note kind, const char *name, const char *digest)
{
	struct progress *pr = &((struct wiring *)ctx)->progress;
	if (kind == PLAIT_PIPELINE_EXPORTED)
		progress_note(pr, "exported %s", name);
	else if (kind == PLAIT_PIPELINE_LOADED)
		progress_note(pr, "loaded into the docker daemon%s%s", *name ? ": " : "", name);
	else if (kind == PLAIT_PIPELINE_IIDFILE)
		progress_note(pr, "image ID %s written to %s", digest, name);
	else if (kind == PLAIT_PIPELINE_CACHE_IMPORTED)
		progress_note(pr, "cache %s: %s", name, digest);
	else if (kind == PLAIT_PIPELINE_CACHE_EXPORTED)
		progress_note(pr, "exported cache %s (%s)", name, digest);
	else if (kind == PLAIT_PIPELINE_PUSHED)
		progress_note(pr, "pushed %s by digest %s", name, digest);
	else if (kind == PLAIT_PIPELINE_CURRENT)
		progress_note(pr, "%s is already %s: nothing to push", name, digest);
	else
		progress_note(pr, "pushed %s", name);
}

/* The builder of --builder, else the one 'plait builder use' chose: its nodes
 * probed (an unreachable one is a planning problem, said by the chooser).
 * *b stays empty for this host alone. */
static int remote_builder(const struct pipeline *pl, struct plait_builders_conf *conf, struct plait_remote_builder **b,
			  struct plait_error **err)
{
	*b = NULL;
	if (pl->builder && streq(pl->builder, "local"))
		return 0;
	_cleanup_free_ char *path = plait_builders_default_path();
	int r = plait_builders_load(path, conf, err);
	if (r < 0)
		return r;
	const char *name = pl->builder ? pl->builder : conf->current;
	if (!name)
		return 0;
	*b = plait_builders_find(conf, name);
	if (!*b)
		return plait_error_set(err, PLAIT_E_USAGE,
				       "--builder %s: no builder of that name in %s: see 'plait builder ls', or make it "
				       "with 'plait builder create %s --node ssh://HOST'",
				       name, path, name);
	plait_nodes_probe_all(*b); /* each node's error stays in it */
	return 0;
}

static void warning(void *ctx, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "plait: warning: %s\n", msg);
}

/* Git and URL contexts (the CONTEXT argument, a bake target's context,
 * --build-context NAME=…) fetched into temporary directories that take
 * their place; a relative -f of such a context is inside it (BuildKit). */
static int fetch_remote_contexts(struct pipeline *pl, struct plait_error **err)
{
	struct plait_request *p = &pl->req;
	size_t n = p->n_targets + p->n_named;
	for (size_t i = 0; i < n; i++) {
		char **slot = i < p->n_targets ? &p->targets[i].context_dir : &p->named[i - p->n_targets].ref;
		if (!*slot || !remote_context_is(*slot))
			continue;
		pl->fetched = xrealloc(pl->fetched, (pl->n_fetched + 1) * sizeof(*pl->fetched));
		struct remote_context *c = &pl->fetched[pl->n_fetched];
		if (remote_context_fetch(*slot, &pl->rc.opts, false, c, err) < 0) {
			if (i >= p->n_targets)
				plait_error_wrap(err, "--build-context %s", p->named[i - p->n_targets].name);
			return -1;
		}
		pl->n_fetched++;
		char *spec = *slot;
		*slot = xstrdup(c->dir);
		if (i >= p->n_targets) {
			free(spec);
			continue;
		}
		struct plait_target *t = &p->targets[i];
		if (c->commit) {
			t->context_git_url = spec;
			t->context_git_commit = xstrdup(c->commit);
		} else {
			free(spec);
		}
		if (c->dockerfile) { /* the URL was the Dockerfile: the context is empty */
			free(t->dockerfile);
			t->dockerfile = xstrdup(c->dockerfile);
		} else if (t->dockerfile && t->dockerfile[0] != '/') {
			char *df = plait_path_join(c->dir, t->dockerfile);
			free(t->dockerfile);
			t->dockerfile = df;
		}
	}
	return 0;
}

int pipeline_run(struct pipeline *pl, bool plan_only, bool plan_json)
{
	struct plait_request *p = &pl->req;
	struct plait_error *err = NULL;
	struct plait_pipeline run = { 0 };
	struct plait_platform host = { 0 };
	struct plait_builder_chooser chooser;
	struct resolver_ctx rctx;
	struct plait_image_resolver resolver;
	pipeline_resolver_init(&rctx, &resolver, &pl->rc.opts, p->named, p->n_named);
	struct wiring w = { .ropts = &pl->rc.opts, .insecure = (const char *const *)pl->rc.insecure };
	struct progress *progress = &w.progress;
	_cleanup_free_ char *host_str = NULL;
	int ret = 0;

	plait_platform_host(&host);
	host_str = plait_platform_format(&host);
	plait_local_builders(&chooser);
	struct plait_builder_chooser local = chooser;
	struct plait_builders_conf conf = { 0 };
	struct plait_remote_builder *rb = NULL;
	struct plait_remote_chooser rctx_b = { 0 };
	if (fetch_remote_contexts(pl, &err) < 0 || remote_builder(pl, &conf, &rb, &err) < 0)
		goto fail;
	w.rb = rb;
	w.local = &local;
	w.retry_jobs = pl->retry_jobs;
	if (rb) {
		rctx_b = (struct plait_remote_chooser){ .b = rb, .local = &local, .fallback_local = pl->fallback_local };
		plait_remote_builders(&rctx_b, &chooser);
	}
	struct plait_plan_opts po = {
		.build_platform = &host,
		.build_platform_str = host_str,
		.builders = &chooser,
		.resolver = &resolver,
		.allow_latest = p->allow_latest,
		.untagged_ok = p->by_digest,
	};
	struct plait_pipeline_ops ops = { .ctx = &w, .open = open_endpoint, .job_event = job_event, .note = note,
					  .warning = warning, .load = load_image, .remote_build = remote_build };
	struct plait_pipeline_opts o = { .plan = &po, .ops = &ops, .interrupt = &plait_interrupted };
	if (plait_pipeline_plan(&run, p, &o, &err) < 0)
		goto fail;
	if (plan_only) {
		print_plan(&run.plan, plan_json);
		goto done;
	}
	/* --load: a daemon that is not there is said before anything is built */
	if (p->load && (plait_daemon_socket(getenv("DOCKER_HOST"), &w.docker_socket, &err) < 0 ||
			plait_daemon_ping(w.docker_socket, &err) < 0))
		goto fail;
	progress_init(progress, pl->mode, run.plan.n_jobs);
	for (size_t i = 0; i < run.plan.n_jobs; i++) {
		progress->jobs[i].label = run.plan.n_jobs > 1 ? run.plan.jobs[i].label : NULL;
		progress->jobs[i].platform = run.plan.jobs[i].platform_str;
		progress->jobs[i].variant = run.plan.images[run.plan.jobs[i].image].variant;
	}
	if (plait_pipeline_build(&run, &err) < 0) {
		print_failures(&run);
		goto fail;
	}
	if (plait_pipeline_publish(&run, &err) < 0)
		goto fail;
	print_summary(&run, pl->mode);
	print_digests(&run);
	goto done;
fail:
	ret = report_error(err);
done:
	plait_pipeline_release(&run);
	pipeline_resolver_release(&rctx);
	progress_release(progress);
	plait_platform_release(&host);
	plait_builders_conf_release(&conf);
	free(w.docker_socket);
	plait_error_free(err);
	return ret;
}
