/* core/dockerfile.h - the Dockerfile parser: bytes -> instructions -> stages.
 *
 * Contract (the Dockerfile reference and BuildKit's parser are the spec):
 *  - parser directives (`# syntax=`, `# escape=`, `# check=`; keys case-insensitive)
 *    are read only from the top of the file; the first line that is not a known
 *    directive (an empty line, a comment, an unknown directive, an instruction)
 *    ends them. A repeated directive and an escape other than '\' or '`' are errors.
 *  - a line ending in the escape character (trailing blanks allowed) continues on
 *    the next; comment lines and empty lines inside a continuation are dropped
 *    (empty ones add a warning, as BuildKit does). A continuation that runs into
 *    the end of the file is an error here (BuildKit silently accepts it).
 *  - instruction keywords are case-insensitive; flags (`--name=value`, `--name`)
 *    are validated per instruction and stored in order, bool flags normalised to
 *    "true"/"false"; `--mount` and `--exclude` may repeat, other flags may not.
 *  - arguments are NOT expanded and quotes are kept: the executor runs
 *    core/expand on what plait_expand_applies() says, as BuildKit does.
 *  - every error is "<file>:<line>:<col>: <message>" with code PLAIT_E_INVALID;
 *    the message quotes the offending text and says how to fix it when it can.
 *  - the parsed struct owns all its strings; nothing points into the input bytes.
 *
 * Per-kind meaning of struct plait_df_instr's fields (unused ones are NULL/0):
 *   FROM        args = words (image [AS name]); image, stage_name (lowercase or NULL)
 *   RUN CMD ENTRYPOINT SHELL
 *               json ? args = the JSON strings : shell = the command text
 *   COPY ADD VOLUME
 *               args = the JSON strings, or the text split on blanks (BuildKit does
 *               not honour quotes here; expansion removes them per word);
 *               COPY/ADD: last arg is the destination; `<<NAME` args are heredocs
 *   EXPOSE      args = the text split on blanks
 *   ENV LABEL   kvs (key and value as written, quotes kept); legacy_kv for `ENV k v`
 *   ARG         kvs (value NULL when no default)
 *   USER WORKDIR STOPSIGNAL MAINTAINER
 *               args[0] = the whole argument text
 *   ONBUILD     onbuild = the trigger instruction; shell = its text
 *   HEALTHCHECK health_none, or json/args/shell as CMD, plus the health_* values
 */
#ifndef PLAIT_DOCKERFILE_H
#define PLAIT_DOCKERFILE_H

#include "error.h"

enum plait_df_kind {
	PLAIT_DF_INVALID = 0,
	PLAIT_DF_FROM,
	PLAIT_DF_RUN,
	PLAIT_DF_CMD,
	PLAIT_DF_LABEL,
	PLAIT_DF_EXPOSE,
	PLAIT_DF_ENV,
	PLAIT_DF_ADD,
	PLAIT_DF_COPY,
	PLAIT_DF_ENTRYPOINT,
	PLAIT_DF_VOLUME,
	PLAIT_DF_USER,
	PLAIT_DF_WORKDIR,
	PLAIT_DF_ARG,
	PLAIT_DF_ONBUILD,
	PLAIT_DF_STOPSIGNAL,
	PLAIT_DF_HEALTHCHECK,
	PLAIT_DF_SHELL,
	PLAIT_DF_MAINTAINER,
	PLAIT_DF_KIND_COUNT
};

/* "RUN" for PLAIT_DF_RUN; "" for INVALID or out of range. */
const char *plait_df_kind_name(enum plait_df_kind kind);
/* Case-insensitive keyword lookup; PLAIT_DF_INVALID when unknown. */
enum plait_df_kind plait_df_kind_from_string(const char *keyword);

struct plait_df_flag {
	char *name;  /* without the leading "--" */
	char *value; /* never NULL; bool flags are "true" or "false" */
};

struct plait_df_kv {
	char *key;
	char *value; /* as written (quotes kept); NULL for an ARG without default */
};

struct plait_df_heredoc {
	char *name;    /* the delimiter, quotes removed */
	char *content; /* the lines between marker and delimiter, newlines kept, tabs NOT stripped */
	bool expand;   /* false when the delimiter was quoted (<<"EOF", <<'EOF') */
	bool chomp;    /* <<-: strip leading tabs (plait_df_heredoc_data does) */
	int fd;        /* N in N<<EOF, 0 when not given */
};

struct plait_df_instr {
	enum plait_df_kind kind;
	int line;     /* 1-based line of the keyword */
	int col;      /* 1-based column of the keyword */
	int end_line; /* last line it took, heredoc delimiters included */
	char *original; /* the instruction with continuations joined ("RUN a && b") */
	struct plait_df_flag *flags;
	size_t n_flags;
	char *rest; /* the text after keyword and flags, trimmed */
	bool json;  /* exec (JSON array) form */
	char **args; /* NULL-terminated; see the table above */
	size_t n_args;
	char *shell; /* shell-form command text (RUN CMD ENTRYPOINT HEALTHCHECK), ONBUILD trigger */
	struct plait_df_kv *kvs;
	size_t n_kvs;
	bool legacy_kv; /* ENV/LABEL written as `key value` */
	struct plait_df_heredoc *heredocs;
	size_t n_heredocs;
	struct plait_df_instr *onbuild; /* ONBUILD's trigger */
	/* FROM */
	char *image;      /* unexpanded */
	char *stage_name; /* lowercase, or NULL */
	/* HEALTHCHECK: durations in nanoseconds, 0 = not given (use the default) */
	bool health_none;
	int64_t health_interval_ns, health_timeout_ns, health_start_period_ns,
		health_start_interval_ns;
	int health_retries; /* 0 = not given */
};

struct plait_df_stage {
	size_t index;
	const char *name;     /* lowercase AS name, or NULL */
	const char *image;    /* as written, unexpanded (may name an earlier stage) */
	const char *platform; /* --platform value, unexpanded, or NULL */
	const struct plait_df_instr *from;
	const struct plait_df_instr *instrs; /* the instructions after FROM */
	size_t n_instrs;
};

struct plait_dockerfile {
	char *filename;
	char escape;  /* '\\' or '`' */
	char *syntax; /* directive values, NULL when absent */
	char *check;
	struct plait_df_instr *instrs;
	size_t n_instrs;
	struct plait_df_stage *stages; /* each FROM starts one */
	size_t n_stages;
	const struct plait_df_instr *global_args; /* the ARGs before the first FROM */
	size_t n_global_args;
	char **warnings; /* NULL-terminated, "<file>:<line>: ..." */
	size_t n_warnings;
};

/* Parse a whole Dockerfile. filename is used in messages only. On success out
 * holds at least one stage; release it with plait_dockerfile_release(). On error
 * out is left released (safe to release again). */
int plait_dockerfile_parse(const char *data, size_t len, const char *filename,
			   struct plait_dockerfile *out, struct plait_error **err);
void plait_dockerfile_release(struct plait_dockerfile *df);

/* Parse one instruction line (no continuations, no heredoc bodies), e.g. an
 * ONBUILD trigger taken from a base image's config. line is used in messages. */
int plait_df_parse_instruction(const char *text, char escape, const char *filename, int line,
			       struct plait_df_instr *out, struct plait_error **err);
void plait_df_instr_release(struct plait_df_instr *in);

/* The stage called name (case-insensitive), or the stage with that decimal
 * index (as `COPY --from=0`); NULL when none. */
const struct plait_df_stage *plait_dockerfile_find_stage(const struct plait_dockerfile *df,
							 const char *name);

/* The last value of flag name ("from", not "--from"), or NULL when absent. */
const char *plait_df_flag_get(const struct plait_df_instr *in, const char *name);
/* A bool flag's value (false when absent). */
bool plait_df_flag_bool(const struct plait_df_instr *in, const char *name);

/* The heredoc an argument such as "<<EOF" or "<<-EOF" stands for, or NULL. */
const struct plait_df_heredoc *plait_df_heredoc_for_arg(const struct plait_df_instr *in,
							 const char *arg);
/* The heredoc's data as BuildKit uses it: leading tabs stripped from every line
 * when chomp is set. Heap string. */
char *plait_df_heredoc_data(const struct plait_df_heredoc *h);

/* What a RUN executes (BuildKit's dispatchRun):
 *  EXEC:  JSON form: run in->args as is; *script = NULL.
 *  SHELL: run SHELL + [*script]. Shell form; a lone `<<EOF` gives its data as the
 *         script; a command with heredocs (`python <<EOF`, several heredocs) gives
 *         the command followed by each body and delimiter, for the shell to read.
 *  FILE:  a lone heredoc whose data starts with "#!": write *script to
 *         /dev/pipes/<*file_name> with mode 0755 and run SHELL + [that path].
 * *script is a heap string (or NULL); *file_name points into in. */
enum plait_df_run_form {
	PLAIT_DF_RUN_EXEC,
	PLAIT_DF_RUN_SHELL,
	PLAIT_DF_RUN_FILE,
};
enum plait_df_run_form plait_df_run_script(const struct plait_df_instr *in, char **script,
					   const char **file_name);

#endif
