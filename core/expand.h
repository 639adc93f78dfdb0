/* core/expand.h - Dockerfile variable expansion (BuildKit's shell.Lex).
 *
 * Contract:
 *  - $VAR ${VAR} ${VAR:-w} ${VAR-w} ${VAR:+w} ${VAR+w} ${VAR:?msg} ${VAR?msg}
 *    ${VAR#pat} ${VAR##pat} ${VAR%pat} ${VAR%%pat} ${VAR/pat/repl} ${VAR//pat/repl}
 *    behave as in BuildKit; the colon forms treat empty as unset; `w` is itself
 *    expanded (nested defaults work). Patterns use shell globs (* ? [..]).
 *  - outside quotes the escape character makes the next character literal and is
 *    removed; single quotes keep everything literal; double quotes expand $ and
 *    let the escape character escape only ", $ and itself. Quotes are removed.
 *  - plait_expand_word gives one string (BuildKit's ProcessWord: no splitting);
 *    plait_expand_words splits on blanks outside quotes, including blanks that
 *    come from a variable's value (ProcessWords, for EXPOSE and the like).
 *  - variables come from lookup(name, userdata): NULL means unset, "" is set
 *    and empty. lookup sees every name the text references (record them there to
 *    know which build args a step used).
 *  - errors (syntax, ${VAR:?}) are PLAIT_E_INVALID with "<file>:<line>: " in front
 *    when opts name them, and name the variable. */
#ifndef PLAIT_EXPAND_H
#define PLAIT_EXPAND_H

#include "dockerfile.h"

typedef const char *(*plait_expand_lookup_fn)(const char *name, void *userdata);

struct plait_expand_opts {
	char escape;      /* the Dockerfile's escape character; 0 means '\\' */
	bool raw_quotes;  /* keep quote characters in the result */
	bool raw_escapes; /* keep escape characters in the result */
	bool skip_unset;  /* leave references to unset variables as written */
	bool skip_quotes; /* quotes are ordinary characters (heredoc bodies) */
	const char *filename; /* for messages, may be NULL */
	int line;             /* for messages, 0 when unknown */
};

/* Expand text to one string. opts may be NULL (escape '\\', no context).
 * *out is a heap string. */
int plait_expand_word(const char *text, const struct plait_expand_opts *opts,
		      plait_expand_lookup_fn lookup, void *userdata, char **out,
		      struct plait_error **err);
/* Expand text and split it into words. *out is a NULL-terminated heap array
 * (free with plait_strv_free); n_out may be NULL. */
int plait_expand_words(const char *text, const struct plait_expand_opts *opts,
		       plait_expand_lookup_fn lookup, void *userdata, char ***out, size_t *n_out,
		       struct plait_error **err);

/* Expand a heredoc body whose delimiter was unquoted, as BuildKit does: escape
 * '\\', quotes untouched, references to unset variables left as written. */
int plait_expand_heredoc(const char *content, plait_expand_lookup_fn lookup, void *userdata,
			 char **out, struct plait_error **err);

/* Whether the builder expands variables in this instruction's arguments
 * (ADD COPY ENV EXPOSE FROM LABEL STOPSIGNAL USER VOLUME WORKDIR ARG; not RUN
 * CMD ENTRYPOINT SHELL HEALTHCHECK MAINTAINER, nor ONBUILD, whose trigger is
 * expanded when it runs). */
bool plait_expand_applies(enum plait_df_kind kind);

/* Options for expanding in's arguments: df's escape character, file and line. */
void plait_expand_opts_for(struct plait_expand_opts *opts, const struct plait_dockerfile *df,
			   const struct plait_df_instr *in);

/* A lookup over a NULL-terminated "NAME=value" array (userdata is the char **);
 * the last entry for a name wins, as in a Dockerfile where later ENV override. */
const char *plait_expand_lookup_envv(const char *name, void *userdata);

#endif
