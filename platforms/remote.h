/* platforms/remote.h - builders on other machines: the nodes of a named
 * builder, reached with the system ssh client, stored in builders.json, and
 * the chooser that assigns each job to a node or to this host.
 *
 * Contract:
 *  - builders.json ($XDG_CONFIG_HOME/plait/builders.json, else
 *    ~/.config/plait/builders.json) holds {"version":1, "current":NAME|null,
 *    "builders":[{name, identity, remote_plait, nodes:[{url, native, qemu,
 *    plait_version, protocol, cache_dir, cache_free_bytes}]}]}; a missing
 *    file is an empty list; a corrupt one is -PLAIT_E_INVALID naming the file
 *    and what is wrong; it is written atomically (a temporary file in the same
 *    directory, fsync, rename) with mode 0600;
 *  - a node is ssh://[USER@]HOST[:PORT]; it is probed with the ssh client of
 *    $PLAIT_SSH_COMMAND (split into words; default "ssh", which honours
 *    ~/.ssh/config, agents and known_hosts) with BatchMode=yes, running
 *    'PLAIT version --format json' and 'PLAIT qemu status --format json' on
 *    it; a failure names the node and quotes ssh's message; a node whose
 *    protocol is not PLAIT_REMOTE_PROTOCOL is refused with the fix;
 *  - the chooser gives each platform: a node that runs it natively, else
 *    this host's native or QEMU builder, else a node whose QEMU serves it;
 *    the builder's node and reason say which and why; a node that could not
 *    be probed makes every choice fail with its error (a planning problem),
 *    unless fallback_local: then it is left out and the reasons name it. */
#ifndef PLAIT_REMOTE_H
#define PLAIT_REMOTE_H

#include <jansson.h>

#include "core/plan.h"

/* The version of the protocol spoken with nodes (plait version --format json). */
#define PLAIT_REMOTE_PROTOCOL 1

struct plait_node {
	char *url; /* as given: ssh://[USER@]HOST[:PORT] */
	char **native; /* "linux/amd64", ... (NULL-terminated) */
	char **qemu;   /* served by the node's own QEMU handlers */
	char *plait_version;
	long protocol;
	char *cache_dir;
	int64_t cache_free_bytes; /* -1 unknown */
	char *error; /* set when the last probe failed (never stored) */
};

struct plait_remote_builder {
	char *name;
	char *identity;	    /* ssh -i FILE; NULL: ssh's own choice */
	char *remote_plait; /* the plait on the nodes; NULL: "plait" */
	struct plait_node *nodes;
	size_t n_nodes;
};

struct plait_builders_conf {
	char *current; /* plait builder use; NULL: none */
	struct plait_remote_builder *builders;
	size_t n_builders;
};

/* ssh://[USER@]HOST[:PORT] -> parts (user NULL when absent, port 0 when absent). */
int plait_node_url_parse(const char *url, char **user, char **host, int *port, struct plait_error **err);

/* $XDG_CONFIG_HOME/plait/builders.json, else $HOME/.config/plait/builders.json. */
char *plait_builders_default_path(void);
int plait_builders_parse(const char *text, const char *path, struct plait_builders_conf *out,
			 struct plait_error **err);
int plait_builders_load(const char *path, struct plait_builders_conf *out, struct plait_error **err);
json_t *plait_builders_to_json(const struct plait_builders_conf *c);
int plait_builders_save(const char *path, const struct plait_builders_conf *c, struct plait_error **err);
void plait_builders_conf_release(struct plait_builders_conf *c);
struct plait_remote_builder *plait_builders_find(struct plait_builders_conf *c, const char *name);
void plait_remote_builder_release(struct plait_remote_builder *b);
void plait_node_release(struct plait_node *n);
json_t *plait_node_to_json(const struct plait_node *n);

/* Fill n's facts from the two JSON documents a node printed ('version' and
 * 'qemu status'); 'where' names the node in errors. */
int plait_node_facts(struct plait_node *n, const char *version_json, const char *qemu_json,
		     struct plait_error **err);
/* Connect to node n of b and record what it runs. On failure n->error gets the message too. */
int plait_node_probe(const struct plait_remote_builder *b, struct plait_node *n, struct plait_error **err);

/* The ssh command line that runs 'PLAIT args' (args already shell words) on
 * node n of b; NULL with err set when n's URL is not ssh://. */
char **plait_node_ssh_argv(const struct plait_remote_builder *b, const struct plait_node *n, const char *args,
			   struct plait_error **err);
/* The hello this side opens a node session with (protocol, version). */
json_t *plait_node_hello(void);
/* ssh's stderr as one line (its non-empty lines joined, host-key notices left out). */
char *plait_node_ssh_message(const char *stderr_text);

/* Probe every node of b at once (a thread each); each node's error, if any,
 * stays in it (plait_node.error). */
void plait_nodes_probe_all(struct plait_remote_builder *b);
/* The first reachable node of b that runs arch (natively, or through its
 * QEMU), leaving out the nodes whose URLs are in skip (NULL-terminated, may
 * be NULL); NULL when none. */
const struct plait_node *plait_remote_node_serving(const struct plait_remote_builder *b, const char *arch, bool native,
						   const char *const *skip);

/* The chooser over b's nodes (probed already) and a local chooser. */
struct plait_remote_chooser {
	const struct plait_remote_builder *b;
	const struct plait_builder_chooser *local;
	/* --fallback local: an unreachable node is left out (its platforms go
	 * to this host, and the reason says so) instead of failing the plan. */
	bool fallback_local;
};
void plait_remote_builders(struct plait_remote_chooser *ctx, struct plait_builder_chooser *out);

#endif
