/* Unit tests for core/dockerfile: directives, continuations, every instruction's
 * argument form, heredocs, stages, and every error message. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>

#include "core/buf.h"
#include "core/dockerfile.h"
#include "core/error.h"

#include "core/banned.h"

/* A one-line summary of an instruction, so tables can state what they expect. */
static void describe(const struct plait_df_instr *in, struct plait_buf *b)
{
	plait_buf_addf(b, "%s@%d:%d-%d", plait_df_kind_name(in->kind), in->line, in->col,
		       in->end_line);
	for (size_t i = 0; i < in->n_flags; i++)
		plait_buf_addf(b, " --%s=%s", in->flags[i].name, in->flags[i].value);
	if (in->json || in->n_args) {
		plait_buf_adds(b, in->json ? " json[" : " args[");
		for (size_t i = 0; i < in->n_args; i++)
			plait_buf_addf(b, "%s%s", i ? "|" : "", in->args[i]);
		plait_buf_adds(b, "]");
	}
	if (in->shell)
		plait_buf_addf(b, " shell{%s}", in->shell);
	if (in->n_kvs) {
		plait_buf_adds(b, " kv{");
		for (size_t i = 0; i < in->n_kvs; i++) {
			plait_buf_addf(b, "%s%s", i ? "|" : "", in->kvs[i].key);
			if (in->kvs[i].value)
				plait_buf_addf(b, "=%s", in->kvs[i].value);
		}
		plait_buf_adds(b, in->legacy_kv ? "}(legacy)" : "}");
	}
	if (in->image)
		plait_buf_addf(b, " image=%s", in->image);
	if (in->stage_name)
		plait_buf_addf(b, " as=%s", in->stage_name);
	if (in->health_none)
		plait_buf_adds(b, " health{none}");
	if (in->health_interval_ns || in->health_timeout_ns || in->health_start_period_ns ||
	    in->health_start_interval_ns || in->health_retries)
		plait_buf_addf(b, " health{i=%" PRId64 " t=%" PRId64 " sp=%" PRId64 " si=%" PRId64 " r=%d}",
			       in->health_interval_ns, in->health_timeout_ns,
			       in->health_start_period_ns, in->health_start_interval_ns,
			       in->health_retries);
	for (size_t i = 0; i < in->n_heredocs; i++)
		plait_buf_addf(b, " <<%s%s%s{%s}", in->heredocs[i].name,
			       in->heredocs[i].expand ? "" : "(noexpand)",
			       in->heredocs[i].chomp ? "(chomp)" : "", in->heredocs[i].content);
	if (in->onbuild) {
		plait_buf_adds(b, " onbuild(");
		describe(in->onbuild, b);
		plait_buf_adds(b, ")");
	}
}

static void parse_ok(const char *src, struct plait_dockerfile *df)
{
	_cleanup_error_ struct plait_error *err = NULL;
	if (plait_dockerfile_parse(src, strlen(src), "Dockerfile", df, &err) < 0)
		fail_msg("parse failed: %s\n--- source:\n%s", err ? err->msg : "?", src);
}

static void assert_instr(const struct plait_df_instr *in, const char *want)
{
	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	describe(in, &b);
	if (!streq(b.buf, want))
		fail_msg("instruction '%s':\n  got  %s\n  want %s", in->original, b.buf, want);
}

static void assert_parse_error(const char *src, const char *want)
{
	struct plait_dockerfile df;
	_cleanup_error_ struct plait_error *err = NULL;
	int r = plait_dockerfile_parse(src, strlen(src), "Dockerfile", &df, &err);
	if (r >= 0) {
		plait_dockerfile_release(&df);
		fail_msg("parsing succeeded, want error '%s'\n--- source:\n%s", want, src);
	}
	assert_int_equal(r, -PLAIT_E_INVALID);
	if (!streq(err->msg, want))
		fail_msg("wrong error\n  got  %s\n  want %s\n--- source:\n%s", err->msg, want, src);
	assert_int_equal(df.n_instrs, 0);
	assert_null(df.instrs);
}

struct instr_case {
	const char *line;
	const char *want;
};

static void check_instrs(const struct instr_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct plait_df_instr in;
		_cleanup_error_ struct plait_error *err = NULL;
		if (plait_df_parse_instruction(cases[i].line, '\\', "Dockerfile", 1, &in, &err) < 0)
			fail_msg("'%s' failed: %s", cases[i].line, err ? err->msg : "?");
		assert_instr(&in, cases[i].want);
		plait_df_instr_release(&in);
	}
}

static void test_dockerfile__kind_table_round_trips(void **state)
{
	(void)state;
	for (int k = 1; k < PLAIT_DF_KIND_COUNT; k++) {
		const char *name = plait_df_kind_name((enum plait_df_kind)k);
		assert_true(strlen(name) > 0);
		assert_int_equal(plait_df_kind_from_string(name), k);
	}
	assert_int_equal(plait_df_kind_from_string("healthCheck"), PLAIT_DF_HEALTHCHECK);
	assert_int_equal(plait_df_kind_from_string("RUNN"), PLAIT_DF_INVALID);
	assert_string_equal(plait_df_kind_name(PLAIT_DF_INVALID), "");
	assert_string_equal(plait_df_kind_name(PLAIT_DF_KIND_COUNT), "");
}

static void test_dockerfile__from_forms(void **state)
{
	(void)state;
	static const struct instr_case cases[] = {
		{ "FROM alpine", "FROM@1:1-1 args[alpine] image=alpine" },
		{ "from --platform=$BUILDPLATFORM golang:1.22 As Build",
		  "FROM@1:1-1 --platform=$BUILDPLATFORM args[golang:1.22|As|Build] image=golang:1.22 "
		  "as=build" },
		{ "FROM ${BASE}:${TAG} AS a.b_c-1", "FROM@1:1-1 args[${BASE}:${TAG}|AS|a.b_c-1] "
						      "image=${BASE}:${TAG} as=a.b_c-1" },
		{ "   FROM scratch", "FROM@1:4-1 args[scratch] image=scratch" },
	};
	check_instrs(cases, ARRAY_SIZE(cases));
}

static void test_dockerfile__exec_and_shell_forms(void **state)
{
	(void)state;
	static const struct instr_case cases[] = {
		{ "RUN echo hi && ls", "RUN@1:1-1 shell{echo hi && ls}" },
		{ "RUN [\"echo\", \"hi there\"]", "RUN@1:1-1 json[echo|hi there]" },
		{ "run [ \"a\\\"b\" , \"\\u00e9\" ]  ", "RUN@1:1-1 json[a\"b|\xc3\xa9]" },
		/* invalid JSON falls back to the shell form, as the reference says */
		{ "RUN [\"echo\", 'single']", "RUN@1:1-1 shell{[\"echo\", 'single']}" },
		{ "CMD [\"a\"", "CMD@1:1-1 shell{[\"a\"}" },
		{ "CMD [\"a\"] trailing", "CMD@1:1-1 shell{[\"a\"] trailing}" },
		{ "CMD []", "CMD@1:1-1 json[]" },
		{ "CMD echo $HOME", "CMD@1:1-1 shell{echo $HOME}" },
		{ "ENTRYPOINT [\"/bin/sh\", \"-c\"]", "ENTRYPOINT@1:1-1 json[/bin/sh|-c]" },
		{ "ENTRYPOINT []", "ENTRYPOINT@1:1-1 json[]" },
		{ "ENTRYPOINT exec top -b", "ENTRYPOINT@1:1-1 shell{exec top -b}" },
		{ "SHELL [\"powershell\", \"-Command\"]", "SHELL@1:1-1 json[powershell|-Command]" },
		{ "RUN --mount=type=cache,target=/root/.cache --mount=type=secret,id=x --network=none "
		  "pip install .",
		  "RUN@1:1-1 --mount=type=cache,target=/root/.cache --mount=type=secret,id=x "
		  "--network=none shell{pip install .}" },
		{ "RUN --security=insecure [\"id\"]", "RUN@1:1-1 --security=insecure json[id]" },
		{ "RUN --mount=\"type=bind,source=a b\" ls", "RUN@1:1-1 --mount=type=bind,source=a b shell{ls}" },
		/* `--` ends the flags */
		{ "RUN -- --help", "RUN@1:1-1 shell{--help}" },
	};
	check_instrs(cases, ARRAY_SIZE(cases));
}

static void test_dockerfile__copy_add_volume_expose_lists(void **state)
{
	(void)state;
	static const struct instr_case cases[] = {
		{ "COPY --from=build --chown=1000:1000 --chmod=755 --link /src /dst/",
		  "COPY@1:1-1 --from=build --chown=1000:1000 --chmod=755 --link=true args[/src|/dst/]" },
		{ "COPY [\"a b\", \"/c d/\"]", "COPY@1:1-1 json[a b|/c d/]" },
		/* BuildKit splits the shell form on blanks; expansion removes the quotes */
		{ "COPY \"a b\" c", "COPY@1:1-1 args[\"a|b\"|c]" },
		{ "COPY --exclude=*.md --exclude=*.txt --parents a/ b/ /d",
		  "COPY@1:1-1 --exclude=*.md --exclude=*.txt --parents=true args[a/|b/|/d]" },
		{ "ADD --checksum=sha256:abc --keep-git-dir https://x/y.git /src",
		  "ADD@1:1-1 --checksum=sha256:abc --keep-git-dir=true args[https://x/y.git|/src]" },
		{ "ADD --link=FALSE a b", "ADD@1:1-1 --link=false args[a|b]" },
		{ "VOLUME /data /logs", "VOLUME@1:1-1 args[/data|/logs]" },
		{ "VOLUME [\"/data\"]", "VOLUME@1:1-1 json[/data]" },
		{ "EXPOSE 80/tcp 443\t 8080/udp", "EXPOSE@1:1-1 args[80/tcp|443|8080/udp]" },
	};
	check_instrs(cases, ARRAY_SIZE(cases));
}

static void test_dockerfile__env_label_arg_pairs(void **state)
{
	(void)state;
	static const struct instr_case cases[] = {
		{ "ENV A=1 B=\"two words\" C=three\\ words D='x y' E=",
		  "ENV@1:1-1 kv{A=1|B=\"two words\"|C=three\\ words|D='x y'|E=}" },
		{ "ENV LEGACY some value  here", "ENV@1:1-1 kv{LEGACY=some value  here}(legacy)" },
		{ "ENV PATH=/a:$PATH", "ENV@1:1-1 kv{PATH=/a:$PATH}" },
		{ "ENV Q=\"a \\\"q\\\" b\"", "ENV@1:1-1 kv{Q=\"a \\\"q\\\" b\"}" },
		{ "LABEL \"com.example.vendor\"=\"ACME Inc\" version=1.0",
		  "LABEL@1:1-1 kv{\"com.example.vendor\"=\"ACME Inc\"|version=1.0}" },
		{ "LABEL description This text", "LABEL@1:1-1 kv{description=This text}(legacy)" },
		{ "ARG A B=2 C=\"x y\" D=", "ARG@1:1-1 kv{A|B=2|C=\"x y\"|D=}" },
		{ "ARG VERSION=${BASE:-1.0}", "ARG@1:1-1 kv{VERSION=${BASE:-1.0}}" },
	};
	check_instrs(cases, ARRAY_SIZE(cases));
}

static void test_dockerfile__single_argument_instructions(void **state)
{
	(void)state;
	static const struct instr_case cases[] = {
		{ "USER app:app", "USER@1:1-1 args[app:app]" },
		{ "WORKDIR /my app", "WORKDIR@1:1-1 args[/my app]" },
		{ "STOPSIGNAL SIGTERM", "STOPSIGNAL@1:1-1 args[SIGTERM]" },
		{ "MAINTAINER Jane Doe <jane@example.com>",
		  "MAINTAINER@1:1-1 args[Jane Doe <jane@example.com>]" },
	};
	check_instrs(cases, ARRAY_SIZE(cases));
}

static void test_dockerfile__onbuild_and_healthcheck(void **state)
{
	(void)state;
	static const struct instr_case cases[] = {
		{ "ONBUILD RUN echo hi", "ONBUILD@1:1-1 shell{RUN echo hi} onbuild(RUN@1:9-1 shell{echo hi})" },
		{ "onbuild  COPY --chown=1 . /app",
		  "ONBUILD@1:1-1 shell{COPY --chown=1 . /app} onbuild(COPY@1:10-1 --chown=1 args[.|/app])" },
		{ "HEALTHCHECK NONE", "HEALTHCHECK@1:1-1 health{none}" },
		{ "HEALTHCHECK --interval=30s --timeout=1m30s --start-period=5s --start-interval=500ms "
		  "--retries=3 CMD curl -f http://localhost/ || exit 1",
		  "HEALTHCHECK@1:1-1 --interval=30s --timeout=1m30s --start-period=5s "
		  "--start-interval=500ms --retries=3 shell{curl -f http://localhost/ || exit 1} "
		  "health{i=30000000000 t=90000000000 sp=5000000000 si=500000000 r=3}" },
		{ "HEALTHCHECK cmd [\"curl\", \"-f\"]", "HEALTHCHECK@1:1-1 json[curl|-f]" },
		{ "HEALTHCHECK --interval=1.5h --timeout=0 CMD x",
		  "HEALTHCHECK@1:1-1 --interval=1.5h --timeout=0 shell{x} "
		  "health{i=5400000000000 t=0 sp=0 si=0 r=0}" },
	};
	check_instrs(cases, ARRAY_SIZE(cases));
}

static void test_dockerfile__flag_helpers(void **state)
{
	(void)state;
	struct plait_df_instr in;
	assert_int_equal(plait_df_parse_instruction("COPY --link --from=a --exclude=x --exclude=y s d",
						    0, NULL, 3, &in, NULL),
			 0);
	assert_string_equal(plait_df_flag_get(&in, "from"), "a");
	assert_string_equal(plait_df_flag_get(&in, "exclude"), "y"); /* the last one */
	assert_null(plait_df_flag_get(&in, "chown"));
	assert_true(plait_df_flag_bool(&in, "link"));
	assert_false(plait_df_flag_bool(&in, "parents"));
	assert_int_equal(in.line, 3);
	assert_string_equal(in.rest, "s d");
	plait_df_instr_release(&in);
	plait_df_instr_release(&in); /* released twice is fine */
	plait_df_instr_release(NULL);
}

static void test_dockerfile__instruction_errors(void **state)
{
	(void)state;
	static const struct instr_case cases[] = {
		{ "RUNN echo", "Dockerfile:7:1: unknown instruction 'RUNN' (did you mean 'RUN'?)" },
		{ "FORM alpine", "Dockerfile:7:1: unknown instruction 'FORM' (did you mean 'FROM'?)" },
		{ "ENTRYPIONT x", "Dockerfile:7:1: unknown instruction 'ENTRYPIONT' (did you mean 'ENTRYPOINT'?)" },
		{ "FOO bar", "Dockerfile:7:1: unknown instruction 'FOO'" },
		{ "  copyy a b", "Dockerfile:7:3: unknown instruction 'copyy' (did you mean 'COPY'?)" },
		{ "COPY --form=a b c", "Dockerfile:7:1: unknown flag '--form' in 'COPY --form=a b c': COPY "
				       "accepts --from, --chown, --chmod, --link, --exclude, --parents" },
		{ "ADD --from=x a b", "Dockerfile:7:1: unknown flag '--from' in 'ADD --from=x a b': ADD "
				      "accepts --chown, --chmod, --link, --checksum, --keep-git-dir, --exclude" },
		{ "RUN --mounts=x y", "Dockerfile:7:1: unknown flag '--mounts' in 'RUN --mounts=x y': RUN "
				      "accepts --mount, --network, --security" },
		{ "FROM --plat=x y", "Dockerfile:7:1: unknown flag '--plat' in 'FROM --plat=x y': FROM accepts --platform" },
		{ "HEALTHCHECK --every=1s CMD x",
		  "Dockerfile:7:1: unknown flag '--every' in 'HEALTHCHECK --every=1s CMD x': HEALTHCHECK "
		  "accepts --interval, --timeout, --start-period, --start-interval, --retries" },
		{ "ENV --x=1 a=b", "Dockerfile:7:1: unknown flag '--x' in 'ENV --x=1 a=b': ENV takes no flags" },
		{ "CMD --help", "Dockerfile:7:1: unknown flag '--help' in 'CMD --help': CMD takes no flags" },
		{ "RUN --mount", "Dockerfile:7:1: flag '--mount' in 'RUN --mount' needs a value: write --mount=<value>" },
		{ "COPY --link= a b", "Dockerfile:7:1: flag '--link' in 'COPY --link= a b' needs a value: "
				      "write --link or --link=false" },
		{ "COPY --link=yes a b", "Dockerfile:7:1: flag '--link' in 'COPY --link=yes a b' must be true or false, not 'yes'" },
		{ "COPY --from=a --from=b x y", "Dockerfile:7:1: flag '--from' is repeated in 'COPY --from=a --from=b x y': give it once" },
		{ "RUN", "Dockerfile:7:1: RUN requires at least one argument: 'RUN'" },
		{ "RUN []", "Dockerfile:7:1: RUN requires at least one argument: 'RUN []'" },
		{ "CMD", "Dockerfile:7:1: CMD requires at least one argument: 'CMD'" },
		{ "ENTRYPOINT  ", "Dockerfile:7:1: ENTRYPOINT requires at least one argument: 'ENTRYPOINT'" },
		{ "COPY onlyone", "Dockerfile:7:1: COPY requires at least two arguments (sources and a destination): 'COPY onlyone'" },
		{ "ADD [\"a\"]", "Dockerfile:7:1: ADD requires at least two arguments (sources and a destination): 'ADD [\"a\"]'" },
		{ "COPY a <<EOF", "Dockerfile:7:1: COPY does not support a heredoc as the destination: 'COPY a <<EOF'" },
		{ "VOLUME", "Dockerfile:7:1: VOLUME requires at least one argument: 'VOLUME'" },
		{ "EXPOSE", "Dockerfile:7:1: EXPOSE requires at least one argument: 'EXPOSE'" },
		{ "FROM", "Dockerfile:7:1: FROM requires an image: 'FROM'" },
		{ "FROM --platform=linux/amd64", "Dockerfile:7:1: FROM requires an image: 'FROM --platform=linux/amd64'" },
		{ "FROM a b", "Dockerfile:7:1: FROM takes an image and an optional 'AS name': 'FROM a b'" },
		{ "FROM a IS b", "Dockerfile:7:1: FROM takes an image and an optional 'AS name': 'FROM a IS b'" },
		{ "FROM a AS b c", "Dockerfile:7:1: FROM takes an image and an optional 'AS name': 'FROM a AS b c'" },
		{ "FROM a AS 1st", "Dockerfile:7:1: invalid stage name '1st' in 'FROM a AS 1st': it must start "
				   "with a letter and contain only letters, digits, '-', '_' and '.'" },
		{ "FROM a AS my@stage", "Dockerfile:7:1: invalid stage name 'my@stage' in 'FROM a AS my@stage': "
					"it must start with a letter and contain only letters, digits, '-', '_' and '.'" },
		{ "ENV", "Dockerfile:7:1: ENV requires at least one argument: 'ENV'" },
		{ "ENV foo", "Dockerfile:7:1: ENV requires a value in 'ENV foo': write ENV foo=<value>" },
		{ "LABEL foo", "Dockerfile:7:1: LABEL requires a value in 'LABEL foo': write LABEL foo=<value>" },
		{ "ENV a=1 b", "Dockerfile:7:1: missing '=' in 'b' in 'ENV a=1 b': write name=value" },
		{ "ENV =x", "Dockerfile:7:1: ENV name is empty in 'ENV =x'" },
		{ "LABEL", "Dockerfile:7:1: LABEL requires at least one argument: 'LABEL'" },
		{ "ARG", "Dockerfile:7:1: ARG requires at least one argument: 'ARG'" },
		{ "ARG a =x", "Dockerfile:7:1: ARG name is empty in 'ARG a =x'" },
		{ "CMD [\"a\", 1]", "Dockerfile:7:1: JSON array in 'CMD [\"a\", 1]' must contain only strings" },
		{ "COPY [\"a\", null]", "Dockerfile:7:1: JSON array in 'COPY [\"a\", null]' must contain only strings" },
		{ "SHELL /bin/bash -c", "Dockerfile:7:1: SHELL requires a JSON array of strings: 'SHELL /bin/bash -c': "
					"write SHELL [\"executable\", \"parameters\"]" },
		{ "SHELL []", "Dockerfile:7:1: SHELL requires a JSON array of strings: 'SHELL []': "
			      "write SHELL [\"executable\", \"parameters\"]" },
		{ "ONBUILD", "Dockerfile:7:1: ONBUILD requires at least one argument: 'ONBUILD'" },
		{ "ONBUILD ONBUILD RUN x", "Dockerfile:7:1: ONBUILD ONBUILD is not allowed: 'ONBUILD ONBUILD RUN x'" },
		{ "ONBUILD FROM x", "Dockerfile:7:1: FROM is not allowed as an ONBUILD trigger: 'ONBUILD FROM x'" },
		{ "onbuild maintainer x", "Dockerfile:7:1: MAINTAINER is not allowed as an ONBUILD trigger: 'onbuild maintainer x'" },
		{ "ONBUILD RUNN x", "Dockerfile:7:9: unknown instruction 'RUNN' (did you mean 'RUN'?)" },
		{ "ONBUILD COPY x", "Dockerfile:7:9: COPY requires at least two arguments (sources and a destination): 'COPY x'" },
		{ "HEALTHCHECK", "Dockerfile:7:1: HEALTHCHECK requires at least one argument: 'HEALTHCHECK'" },
		{ "HEALTHCHECK NONE x", "Dockerfile:7:1: HEALTHCHECK NONE takes no arguments: 'HEALTHCHECK NONE x'" },
		{ "HEALTHCHECK CMD", "Dockerfile:7:1: HEALTHCHECK CMD requires a command: 'HEALTHCHECK CMD'" },
		{ "HEALTHCHECK CMD []", "Dockerfile:7:1: HEALTHCHECK CMD requires a command: 'HEALTHCHECK CMD []'" },
		{ "HEALTHCHECK RUN x", "Dockerfile:7:1: unknown HEALTHCHECK type 'RUN' in 'HEALTHCHECK RUN x': use CMD or NONE" },
		{ "HEALTHCHECK --interval=5x CMD x", "Dockerfile:7:1: invalid duration '5x' for --interval in "
						     "'HEALTHCHECK --interval=5x CMD x': write e.g. 30s or 1m30s" },
		{ "HEALTHCHECK --interval=s CMD x", "Dockerfile:7:1: invalid duration 's' for --interval in "
						    "'HEALTHCHECK --interval=s CMD x': write e.g. 30s or 1m30s" },
		{ "HEALTHCHECK --timeout=-1s CMD x", "Dockerfile:7:1: --timeout cannot be negative in 'HEALTHCHECK --timeout=-1s CMD x'" },
		{ "HEALTHCHECK --start-period=10us CMD x",
		  "Dockerfile:7:1: --start-period cannot be less than 1ms in 'HEALTHCHECK --start-period=10us CMD x'" },
		{ "HEALTHCHECK --retries=-1 CMD x", "Dockerfile:7:1: invalid --retries '-1' in 'HEALTHCHECK "
						    "--retries=-1 CMD x': it must be a non-negative integer" },
		{ "HEALTHCHECK --retries=3x CMD x", "Dockerfile:7:1: invalid --retries '3x' in 'HEALTHCHECK "
						    "--retries=3x CMD x': it must be a non-negative integer" },
		{ "USER", "Dockerfile:7:1: USER requires exactly one argument: 'USER'" },
		{ "WORKDIR", "Dockerfile:7:1: WORKDIR requires exactly one argument: 'WORKDIR'" },
		{ "STOPSIGNAL", "Dockerfile:7:1: STOPSIGNAL requires exactly one argument: 'STOPSIGNAL'" },
		{ "MAINTAINER", "Dockerfile:7:1: MAINTAINER requires exactly one argument: 'MAINTAINER'" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct plait_df_instr in;
		_cleanup_error_ struct plait_error *err = NULL;
		int r = plait_df_parse_instruction(cases[i].line, '\\', "Dockerfile", 7, &in, &err);
		if (r >= 0) {
			_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
			describe(&in, &b);
			plait_df_instr_release(&in);
			fail_msg("'%s' parsed as %s, want error '%s'", cases[i].line, b.buf, cases[i].want);
		}
		assert_int_equal(r, -PLAIT_E_INVALID);
		if (!streq(err->msg, cases[i].want))
			fail_msg("'%s':\n  got  %s\n  want %s", cases[i].line, err->msg, cases[i].want);
	}
}

static void test_dockerfile__directives_are_read_at_the_top(void **state)
{
	(void)state;
	struct plait_dockerfile df;
	parse_ok("# syntax=docker/dockerfile:1.7\n#  ESCAPE = `  \n#check=skip=all;error=true\n"
		 "FROM x\n",
		 &df);
	assert_string_equal(df.syntax, "docker/dockerfile:1.7");
	assert_string_equal(df.check, "skip=all;error=true");
	assert_int_equal(df.escape, '`');
	assert_int_equal(df.n_instrs, 1);
	assert_int_equal(df.instrs[0].line, 4);
	plait_dockerfile_release(&df);

	/* After a comment, an empty line, an unknown directive or an instruction,
	 * directives are comments. */
	static const char *const late[] = {
		"# a comment\n# escape=`\nFROM x\n",
		"\n# escape=`\nFROM x\n",
		"# unknown=1\n# escape=`\nFROM x\n",
		"FROM x\n# escape=`\n",
	};
	for (size_t i = 0; i < ARRAY_SIZE(late); i++) {
		parse_ok(late[i], &df);
		if (df.escape != '\\')
			fail_msg("escape directive honoured in:\n%s", late[i]);
		assert_int_equal(df.n_instrs, 1);
		assert_null(df.syntax);
		plait_dockerfile_release(&df);
	}
}

static void test_dockerfile__directive_errors(void **state)
{
	(void)state;
	assert_parse_error("# escape=`\n# escape=\\\nFROM x\n",
			   "Dockerfile:2:1: only one 'escape' parser directive is allowed");
	assert_parse_error("# Syntax=a\n# SYNTAX=b\nFROM x\n",
			   "Dockerfile:2:1: only one 'syntax' parser directive is allowed");
	assert_parse_error("# escape=x\nFROM x\n",
			   "Dockerfile:1:1: invalid escape directive 'x': use '\\' or '`'");
}

static void test_dockerfile__backtick_escape_for_windows_paths(void **state)
{
	(void)state;
	struct plait_dockerfile df;
	parse_ok("# escape=`\n"
		 "FROM mcr.microsoft.com/windows/servercore\n"
		 "COPY testfile.txt c:\\\n"
		 "RUN dir c:\\\n"
		 "RUN powershell `\n"
		 "    -Command Write-Host hi\n"
		 "ENV P=C:\\tools `\n"
		 "    Q=`\"x`\"\n",
		 &df);
	assert_int_equal(df.n_instrs, 5);
	assert_instr(&df.instrs[1], "COPY@3:1-3 args[testfile.txt|c:\\]");
	assert_instr(&df.instrs[2], "RUN@4:1-4 shell{dir c:\\}");
	assert_instr(&df.instrs[3], "RUN@5:1-6 shell{powershell     -Command Write-Host hi}");
	assert_instr(&df.instrs[4], "ENV@7:1-8 kv{P=C:\\tools|Q=`\"x`\"}");
	plait_dockerfile_release(&df);
}

static void test_dockerfile__continuations_drop_comments_and_empty_lines(void **state)
{
	(void)state;
	struct plait_dockerfile df;
	parse_ok("FROM x\n"
		 "RUN echo a \\\n"
		 "  # a comment inside\n"
		 "\n"
		 "    && echo b \\  \t\n"
		 "    && echo c\n"
		 "CMD x\n",
		 &df);
	assert_int_equal(df.n_instrs, 3);
	assert_instr(&df.instrs[1], "RUN@2:1-6 shell{echo a     && echo b     && echo c}");
	assert_string_equal(df.instrs[1].original, "RUN echo a     && echo b     && echo c");
	assert_instr(&df.instrs[2], "CMD@7:1-7 shell{x}");
	assert_int_equal(df.n_warnings, 1);
	assert_string_equal(df.warnings[0], "Dockerfile:2: empty continuation line in "
					    "'RUN echo a     && echo b     && echo c': remove it");
	plait_dockerfile_release(&df);
}

static void test_dockerfile__crlf_and_bom(void **state)
{
	(void)state;
	struct plait_dockerfile df;
	parse_ok("\xef\xbb\xbf# escape=`\r\nFROM x\r\nRUN a `\r\n b\r\n", &df);
	assert_int_equal(df.escape, '`');
	assert_instr(&df.instrs[1], "RUN@3:1-4 shell{a  b}");
	plait_dockerfile_release(&df);
}

static void test_dockerfile__lines_and_columns(void **state)
{
	(void)state;
	struct plait_dockerfile df;
	parse_ok("# comment\nFROM x\n\n   RUN a\n\tcmd b\n  # indented comment\nLABEL a=b \\\n c=d\n", &df);
	assert_int_equal(df.n_instrs, 4);
	assert_instr(&df.instrs[0], "FROM@2:1-2 args[x] image=x");
	assert_instr(&df.instrs[1], "RUN@4:4-4 shell{a}");
	assert_instr(&df.instrs[2], "CMD@5:2-5 shell{b}");
	assert_instr(&df.instrs[3], "LABEL@7:1-8 kv{a=b|c=d}");
	plait_dockerfile_release(&df);
}

static void test_dockerfile__file_errors_carry_the_line(void **state)
{
	(void)state;
	assert_parse_error("FROM x\n\nRUNN y\n",
			   "Dockerfile:3:1: unknown instruction 'RUNN' (did you mean 'RUN'?)");
	assert_parse_error("FROM x\n  COPY \\\n  a\n",
			   "Dockerfile:2:3: COPY requires at least two arguments (sources and a "
			   "destination): 'COPY   a'");
}

/* '# syntax=' naming another frontend is warned about: plait does not run
 * it. The standard frontend, with any tag or digest, is not. */
static void test_dockerfile__other_syntax_frontend_is_warned_about(void **state)
{
	(void)state;
	static const char *standard[] = { "docker/dockerfile", "docker/dockerfile:1.7-labs",
					  "docker.io/docker/dockerfile:1@sha256:abc",
					  "docker/dockerfile-upstream:master" };
	for (size_t i = 0; i < sizeof(standard) / sizeof(standard[0]); i++) {
		char src[200];
		snprintf(src, sizeof(src), "# syntax=%s\nFROM x\n", standard[i]);
		struct plait_dockerfile df;
		parse_ok(src, &df);
		assert_int_equal(df.n_warnings, 0);
		plait_dockerfile_release(&df);
	}
	struct plait_dockerfile df;
	parse_ok("# syntax=example.com/my/frontend:2\nFROM x\n", &df);
	assert_int_equal(df.n_warnings, 1);
	assert_non_null(strstr(df.warnings[0], "Dockerfile:1: '# syntax=example.com/my/frontend:2' names a "
					       "frontend other than docker/dockerfile: plait builds with its own"));
	plait_dockerfile_release(&df);
}

/* BuildKit ends the instruction at the end of the file when its last line
 * (with or without a final newline, perhaps followed by comments and blank
 * lines) continues. */
static void test_dockerfile__continuation_on_the_last_line_ends_it(void **state)
{
	(void)state;
	static const char *srcs[] = {
		"FROM x\nRUN echo a && \\\n  echo b \\",
		"FROM x\nRUN echo a && \\\n  echo b \\\n",
		"FROM x\nRUN echo a && \\\n  echo b \\\n# only a comment follows\n\n",
	};
	for (size_t i = 0; i < sizeof(srcs) / sizeof(srcs[0]); i++) {
		struct plait_dockerfile df;
		parse_ok(srcs[i], &df);
		assert_int_equal(df.n_instrs, 2);
		assert_int_equal(df.instrs[1].kind, PLAIT_DF_RUN);
		assert_non_null(strstr(df.instrs[1].original, "echo b"));
		plait_dockerfile_release(&df);
	}
}

static void test_dockerfile__file_with_nul_is_refused_even_mid_file(void **state)
{
	(void)state;
	static const char src[] = "FROM x\nRUN a\0b\n";
	struct plait_dockerfile df;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_dockerfile_parse(src, sizeof(src) - 1, "Dockerfile", &df, &err),
			 -PLAIT_E_INVALID);
	assert_string_equal(err->msg, "Dockerfile:2:1: NUL byte in the file: a Dockerfile must be text");
}

static void test_dockerfile__heredoc_run_script(void **state)
{
	(void)state;
	struct plait_dockerfile df;
	parse_ok("FROM x\nRUN <<EOF\necho hi\n  echo there\nEOF\nCMD y\n", &df);
	assert_int_equal(df.n_instrs, 3);
	assert_instr(&df.instrs[1], "RUN@2:1-5 shell{<<EOF} <<EOF{echo hi\n  echo there\n}");
	assert_instr(&df.instrs[2], "CMD@6:1-6 shell{y}");
	char *script = NULL;
	const char *file = "unset";
	assert_int_equal(plait_df_run_script(&df.instrs[1], &script, &file), PLAIT_DF_RUN_SHELL);
	assert_string_equal(script, "echo hi\n  echo there\n");
	assert_null(file);
	free(script);
	plait_dockerfile_release(&df);
}

static void test_dockerfile__heredoc_with_shebang_runs_as_file(void **state)
{
	(void)state;
	struct plait_dockerfile df;
	parse_ok("FROM x\nRUN <<-PY\n\t#!/usr/bin/env python3\n\tprint(1)\n\tPY\n", &df);
	assert_instr(&df.instrs[1], "RUN@2:1-5 shell{<<-PY} <<PY(chomp){\t#!/usr/bin/env python3\n\tprint(1)\n}");
	char *script = NULL;
	const char *file = NULL;
	/* BuildKit tests the raw data for "#!", so a tab-indented shebang is not one. */
	assert_int_equal(plait_df_run_script(&df.instrs[1], &script, &file), PLAIT_DF_RUN_SHELL);
	assert_string_equal(script, "#!/usr/bin/env python3\nprint(1)\n");
	free(script);
	plait_dockerfile_release(&df);

	parse_ok("FROM x\nRUN <<PY\n#!/usr/bin/env python3\nprint(1)\nPY\n", &df);
	assert_int_equal(plait_df_run_script(&df.instrs[1], &script, &file), PLAIT_DF_RUN_FILE);
	assert_string_equal(script, "#!/usr/bin/env python3\nprint(1)\n");
	assert_string_equal(file, "PY");
	free(script);
	plait_dockerfile_release(&df);
}

static void test_dockerfile__several_heredocs_chomp_and_quoting(void **state)
{
	(void)state;
	struct plait_dockerfile df;
	parse_ok("FROM x\n"
		 "RUN cat <<A >a.txt && cat <<-\"B\" >b.txt\n"
		 "first $X\n"
		 "A\n"
		 "\tsecond\n"
		 "\t\tB\n"
		 "RUN echo done\n",
		 &df);
	const struct plait_df_instr *in = &df.instrs[1];
	assert_instr(in, "RUN@2:1-6 shell{cat <<A >a.txt && cat <<-\"B\" >b.txt} <<A{first $X\n} "
			 "<<B(noexpand)(chomp){\tsecond\n}");
	assert_instr(&df.instrs[2], "RUN@7:1-7 shell{echo done}");
	_cleanup_free_ char *data = plait_df_heredoc_data(&in->heredocs[1]);
	assert_string_equal(data, "second\n");
	char *script = NULL;
	assert_int_equal(plait_df_run_script(in, &script, NULL), PLAIT_DF_RUN_SHELL);
	/* the shell reads the bodies itself */
	assert_string_equal(script, "cat <<A >a.txt && cat <<-\"B\" >b.txt\nfirst $X\nA\n\tsecond\nB");
	free(script);
	plait_dockerfile_release(&df);

	/* single quotes and partial quoting also turn expansion off */
	parse_ok("FROM x\nRUN <<'E1' <<E\"2\" <<E3\na\nE1\nb\nE2\nc\nE3\n", &df);
	assert_instr(&df.instrs[1], "RUN@2:1-8 shell{<<'E1' <<E\"2\" <<E3} <<E1(noexpand){a\n} "
				    "<<E2(noexpand){b\n} <<E3{c\n}");
	plait_dockerfile_release(&df);
}

static void test_dockerfile__heredoc_in_copy_creates_files(void **state)
{
	(void)state;
	struct plait_dockerfile df;
	parse_ok("FROM x\n"
		 "COPY <<one.txt <<'two.txt' /dest/\n"
		 "1 $A\n"
		 "one.txt\n"
		 "2 $A\n"
		 "two.txt\n"
		 "COPY --chmod=644 <<EOF /etc/conf\n"
		 "EOF\n",
		 &df);
	const struct plait_df_instr *in = &df.instrs[1];
	assert_instr(in, "COPY@2:1-6 args[<<one.txt|<<'two.txt'|/dest/] <<one.txt{1 $A\n} "
			 "<<two.txt(noexpand){2 $A\n}");
	assert_ptr_equal(plait_df_heredoc_for_arg(in, in->args[0]), &in->heredocs[0]);
	assert_ptr_equal(plait_df_heredoc_for_arg(in, in->args[1]), &in->heredocs[1]);
	assert_null(plait_df_heredoc_for_arg(in, in->args[2]));
	assert_null(plait_df_heredoc_for_arg(in, "<<three"));
	/* an empty body */
	assert_instr(&df.instrs[2], "COPY@7:1-8 --chmod=644 args[<<EOF|/etc/conf] <<EOF{}");
	plait_dockerfile_release(&df);
}

static void test_dockerfile__heredoc_look_alikes_are_not_heredocs(void **state)
{
	(void)state;
	struct plait_dockerfile df;
	parse_ok("FROM x\n"
		 "RUN echo \"<<EOF\"\n"
		 "RUN echo $((1<<2)) a<<b\n"
		 "CMD cat <<EOF\n"
		 "RUN [\"cat\", \"<<EOF\"]\n",
		 &df);
	assert_int_equal(df.n_instrs, 5);
	for (size_t i = 1; i < 5; i++)
		assert_int_equal(df.instrs[i].n_heredocs, 0);
	assert_int_equal(df.instrs[4].end_line, 5);
	char *script = NULL;
	assert_int_equal(plait_df_run_script(&df.instrs[4], &script, NULL), PLAIT_DF_RUN_EXEC);
	assert_null(script);
	plait_dockerfile_release(&df);
}

static void test_dockerfile__heredoc_in_onbuild_and_errors(void **state)
{
	(void)state;
	struct plait_dockerfile df;
	parse_ok("FROM x\nONBUILD RUN <<EOF\necho hi\nEOF\n", &df);
	assert_instr(&df.instrs[1], "ONBUILD@2:1-4 shell{RUN <<EOF} onbuild(RUN@2:9-4 shell{<<EOF} <<EOF{echo hi\n})");
	plait_dockerfile_release(&df);

	assert_parse_error("FROM x\nRUN <<EOF\necho\n",
			   "Dockerfile:2:1: unterminated heredoc 'EOF' in 'RUN <<EOF': end it with a line 'EOF'");
	assert_parse_error("FROM x\nRUN <<A <<B\na\nA\nb\n",
			   "Dockerfile:2:1: unterminated heredoc 'B' in 'RUN <<A <<B': end it with a line 'B'");
	/* without <<- a tab-indented delimiter does not end the body */
	assert_parse_error("FROM x\nRUN <<EOF\necho\n\tEOF\n",
			   "Dockerfile:2:1: unterminated heredoc 'EOF' in 'RUN <<EOF': end it with a line 'EOF'");
}

static void test_dockerfile__stages_and_global_args(void **state)
{
	(void)state;
	struct plait_dockerfile df;
	parse_ok("ARG BASE=alpine\n"
		 "ARG V\n"
		 "FROM --platform=$BUILDPLATFORM $BASE AS build\n"
		 "RUN a\n"
		 "RUN b\n"
		 "FROM build\n"
		 "COPY --from=build /a /b\n"
		 "FROM scratch AS Final\n",
		 &df);
	assert_int_equal(df.n_global_args, 2);
	assert_ptr_equal(df.global_args, &df.instrs[0]);
	assert_int_equal(df.n_stages, 3);

	const struct plait_df_stage *s = &df.stages[0];
	assert_int_equal(s->index, 0);
	assert_string_equal(s->name, "build");
	assert_string_equal(s->image, "$BASE");
	assert_string_equal(s->platform, "$BUILDPLATFORM");
	assert_ptr_equal(s->from, &df.instrs[2]);
	assert_int_equal(s->n_instrs, 2);
	assert_instr(&s->instrs[1], "RUN@5:1-5 shell{b}");

	s = &df.stages[1];
	assert_null(s->name);
	assert_null(s->platform);
	assert_string_equal(s->image, "build");
	assert_int_equal(s->n_instrs, 1);
	assert_int_equal(s->instrs[0].kind, PLAIT_DF_COPY);

	s = &df.stages[2];
	assert_string_equal(s->name, "final");
	assert_int_equal(s->n_instrs, 0);

	assert_ptr_equal(plait_dockerfile_find_stage(&df, "BUILD"), &df.stages[0]);
	assert_ptr_equal(plait_dockerfile_find_stage(&df, "final"), &df.stages[2]);
	assert_ptr_equal(plait_dockerfile_find_stage(&df, "1"), &df.stages[1]);
	assert_null(plait_dockerfile_find_stage(&df, "3"));
	assert_null(plait_dockerfile_find_stage(&df, "nope"));
	assert_null(plait_dockerfile_find_stage(&df, ""));
	assert_null(plait_dockerfile_find_stage(&df, "-1"));
	plait_dockerfile_release(&df);
	plait_dockerfile_release(&df);
	plait_dockerfile_release(NULL);
}

static void test_dockerfile__stage_errors(void **state)
{
	(void)state;
	assert_parse_error("ARG A\nRUN x\nFROM y\n",
			   "Dockerfile:2:1: 'RUN x' comes before the first FROM: only ARG may precede FROM");
	assert_parse_error("ARG A\n", "Dockerfile: no FROM instruction: a Dockerfile needs at least one stage");
	assert_parse_error("", "Dockerfile: no instructions: a Dockerfile needs at least a FROM");
	assert_parse_error("# syntax=x\n\n# just comments\n   \n",
			   "Dockerfile: no instructions: a Dockerfile needs at least a FROM");
	assert_parse_error("FROM a AS x\nFROM b AS X\n",
			   "Dockerfile:2:1: duplicate stage name 'x' in 'FROM b AS X': already used at line 1");
}

static void test_dockerfile__warnings(void **state)
{
	(void)state;
	struct plait_dockerfile df;
	parse_ok("FROM x\nENV A 1\nMAINTAINER me\n", &df);
	assert_int_equal(df.n_warnings, 2);
	assert_string_equal(df.warnings[0], "Dockerfile:2: 'ENV A 1' uses the legacy 'ENV key value' "
					    "form: write ENV key=value");
	assert_string_equal(df.warnings[1], "Dockerfile:3: MAINTAINER is deprecated: use LABEL "
					    "org.opencontainers.image.authors=...");
	assert_null(df.warnings[2]);
	plait_dockerfile_release(&df);
}

static void test_dockerfile__realistic_multistage_file(void **state)
{
	(void)state;
	static const char src[] =
		"# syntax=docker/dockerfile:1\n"
		"ARG PYTHON=3.12\n"
		"FROM python:${PYTHON}-slim AS deps\n"
		"WORKDIR /src\n"
		"COPY requirements.txt .\n"
		"RUN --mount=type=cache,target=/root/.cache/pip \\\n"
		"    pip install --prefix=/install -r requirements.txt\n"
		"\n"
		"FROM deps AS test\n"
		"COPY . .\n"
		"RUN python -m pytest -q\n"
		"\n"
		"FROM python:${PYTHON}-slim AS runtime\n"
		"LABEL org.opencontainers.image.title=\"train\" \\\n"
		"      org.opencontainers.image.licenses=Apache-2.0\n"
		"ENV PYTHONUNBUFFERED=1 \\\n"
		"    PATH=/opt/venv/bin:$PATH\n"
		"COPY --from=deps /install /usr/local\n"
		"COPY --chown=app:app src/ /app/\n"
		"USER app\n"
		"EXPOSE 8080\n"
		"HEALTHCHECK --interval=30s CMD [\"python\", \"-c\", \"import app\"]\n"
		"ENTRYPOINT [\"python\", \"-m\", \"app\"]\n"
		"CMD [\"--serve\"]\n";
	struct plait_dockerfile df;
	parse_ok(src, &df);
	assert_string_equal(df.syntax, "docker/dockerfile:1");
	assert_int_equal(df.n_global_args, 1);
	assert_int_equal(df.n_stages, 3);
	assert_string_equal(df.stages[0].name, "deps");
	assert_string_equal(df.stages[1].image, "deps");
	const struct plait_df_stage *rt = plait_dockerfile_find_stage(&df, "runtime");
	assert_non_null(rt);
	assert_int_equal(rt->n_instrs, 9);
	assert_instr(&rt->instrs[0], "LABEL@14:1-15 kv{org.opencontainers.image.title=\"train\"|"
				     "org.opencontainers.image.licenses=Apache-2.0}");
	assert_instr(&rt->instrs[1], "ENV@16:1-17 kv{PYTHONUNBUFFERED=1|PATH=/opt/venv/bin:$PATH}");
	assert_instr(&rt->instrs[8], "CMD@24:1-24 json[--serve]");
	assert_instr(&df.stages[0].instrs[2], "RUN@6:1-7 --mount=type=cache,target=/root/.cache/pip "
					      "shell{pip install --prefix=/install -r requirements.txt}");
	assert_int_equal(df.n_warnings, 0);
	plait_dockerfile_release(&df);
}

#define UTF8_WHY "image configs are JSON; write the text in UTF-8"

/* Every instruction's text is checked as the file is read: each value of the
 * image config is a piece of it. The message names the line and the byte. */
static void test_dockerfile__invalid_utf8_is_refused_with_its_line(void **state)
{
	(void)state;
	assert_parse_error("FROM x\nLABEL a=b c=\xff\n",
			   "Dockerfile:2: LABEL is not valid UTF-8 (byte 0xff at column 13): " UTF8_WHY);
	/* the column counts the line's own indentation; a valid é before is fine */
	assert_parse_error("FROM x\n  ENV caf\xc3\xa9=\xed\xa0\x80\n",
			   "Dockerfile:2: ENV is not valid UTF-8 (byte 0xed at column 13): " UTF8_WHY);
	/* on a continuation line: that line, its column */
	assert_parse_error("FROM x\nRUN echo a \\\n  # caf\xe9 in a comment is fine\n  b\xc0\x80\n",
			   "Dockerfile:4: RUN is not valid UTF-8 (byte 0xc0 at column 4): " UTF8_WHY);
	/* a key, not only a value */
	assert_parse_error("FROM x\nLABEL \xfe=1\n",
			   "Dockerfile:2: LABEL is not valid UTF-8 (byte 0xfe at column 7): " UTF8_WHY);
	static const struct {
		const char *kw, *rest;
	} each[] = {
		{ "CMD", "[\"a\xff\"]" }, { "ENTRYPOINT", "a\xff" },  { "SHELL", "[\"/bin/\xff\"]" },
		{ "HEALTHCHECK", "CMD a\xff" }, { "USER", "\xff" },   { "WORKDIR", "/\xff" },
		{ "EXPOSE", "80\xff" },	     { "VOLUME", "/\xff" },    { "STOPSIGNAL", "\xff" },
		{ "MAINTAINER", "\xff" },     { "ONBUILD", "RUN \xff" }, { "ARG", "A=\xff" },
		{ "COPY", "a\xff /b" },	     { "ADD", "a \xff" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(each); i++) {
		_cleanup_buf_ struct plait_buf src = PLAIT_BUF_INIT, want = PLAIT_BUF_INIT;
		plait_buf_addf(&src, "FROM x\n%s %s\n", each[i].kw, each[i].rest);
		plait_buf_addf(&want, "Dockerfile:2: %s is not valid UTF-8 (byte 0x%02x at column %zu): " UTF8_WHY,
			       each[i].kw, (unsigned char)strpbrk(each[i].rest, "\xff\xfe")[0],
			       strlen(each[i].kw) + 2 + (size_t)(strpbrk(each[i].rest, "\xff") - each[i].rest));
		assert_parse_error(src.buf, want.buf);
	}
	/* an ARG before the first FROM, and an unknown keyword */
	assert_parse_error("ARG V=\xff\nFROM x\n",
			   "Dockerfile:1: ARG is not valid UTF-8 (byte 0xff at column 7): " UTF8_WHY);
	assert_parse_error("FROM x\nLAB\xff a=b\n",
			   "Dockerfile:2: the instruction is not valid UTF-8 (byte 0xff at column 4): " UTF8_WHY);
	/* a RUN heredoc body is the command (history's created_by) */
	assert_parse_error("FROM x\nRUN <<EOF\necho ok\necho \xe2\x82\nEOF\n",
			   "Dockerfile:4: RUN is not valid UTF-8 (byte 0xe2 at column 6): " UTF8_WHY);
}

/* What does not reach JSON is not checked: comments, COPY heredoc bodies
 * (file contents), "#!" RUN scripts (run from a file). */
static void test_dockerfile__bytes_outside_json_values_are_kept(void **state)
{
	(void)state;
	struct plait_dockerfile df;
	parse_ok("# caf\xe9\nFROM x\n# \xff\nCOPY <<EOF /latin1.txt\ncaf\xe9\nEOF\n"
		 "RUN <<EOF\n#!/bin/sh\necho caf\xe9\nEOF\nLABEL t=caf\xc3\xa9\n",
		 &df);
	assert_int_equal(df.n_instrs, 4);
	assert_string_equal(df.instrs[1].heredocs[0].content, "caf\xe9\n");
	assert_string_equal(df.instrs[2].heredocs[0].content, "#!/bin/sh\necho caf\xe9\n");
	assert_string_equal(df.instrs[3].kvs[0].value, "caf\xc3\xa9");
	plait_dockerfile_release(&df);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dockerfile__kind_table_round_trips),
		cmocka_unit_test(test_dockerfile__from_forms),
		cmocka_unit_test(test_dockerfile__exec_and_shell_forms),
		cmocka_unit_test(test_dockerfile__copy_add_volume_expose_lists),
		cmocka_unit_test(test_dockerfile__env_label_arg_pairs),
		cmocka_unit_test(test_dockerfile__single_argument_instructions),
		cmocka_unit_test(test_dockerfile__onbuild_and_healthcheck),
		cmocka_unit_test(test_dockerfile__flag_helpers),
		cmocka_unit_test(test_dockerfile__instruction_errors),
		cmocka_unit_test(test_dockerfile__directives_are_read_at_the_top),
		cmocka_unit_test(test_dockerfile__directive_errors),
		cmocka_unit_test(test_dockerfile__backtick_escape_for_windows_paths),
		cmocka_unit_test(test_dockerfile__continuations_drop_comments_and_empty_lines),
		cmocka_unit_test(test_dockerfile__crlf_and_bom),
		cmocka_unit_test(test_dockerfile__lines_and_columns),
		cmocka_unit_test(test_dockerfile__file_errors_carry_the_line),
		cmocka_unit_test(test_dockerfile__continuation_on_the_last_line_ends_it),
		cmocka_unit_test(test_dockerfile__other_syntax_frontend_is_warned_about),
		cmocka_unit_test(test_dockerfile__file_with_nul_is_refused_even_mid_file),
		cmocka_unit_test(test_dockerfile__heredoc_run_script),
		cmocka_unit_test(test_dockerfile__heredoc_with_shebang_runs_as_file),
		cmocka_unit_test(test_dockerfile__several_heredocs_chomp_and_quoting),
		cmocka_unit_test(test_dockerfile__heredoc_in_copy_creates_files),
		cmocka_unit_test(test_dockerfile__heredoc_look_alikes_are_not_heredocs),
		cmocka_unit_test(test_dockerfile__heredoc_in_onbuild_and_errors),
		cmocka_unit_test(test_dockerfile__stages_and_global_args),
		cmocka_unit_test(test_dockerfile__stage_errors),
		cmocka_unit_test(test_dockerfile__warnings),
		cmocka_unit_test(test_dockerfile__realistic_multistage_file),
		cmocka_unit_test(test_dockerfile__invalid_utf8_is_refused_with_its_line),
		cmocka_unit_test(test_dockerfile__bytes_outside_json_values_are_kept),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
