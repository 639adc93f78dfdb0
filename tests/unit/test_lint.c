/* Unit tests for core/lint.c: each rule fires on a Dockerfile that breaks it
 * and stays silent on one that follows it; findings are sorted; parse errors
 * are errors, not findings; the context checks honour .dockerignore. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "tmpdir.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include "core/buf.h"
#include "core/endpoint.h"
#include "core/lint.h"

static void write_file(const char *dir, const char *name, const char *content)
{
	struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/%s", dir, name);
	int fd = open(p.buf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		fail_msg("create '%s'", p.buf);
	assert_int_equal(plait_write_all(fd, content, strlen(content)), 0);
	close(fd);
	plait_buf_release(&p);
}

static void make_dir(const char *dir, const char *name)
{
	struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/%s", dir, name);
	assert_int_equal(mkdir(p.buf, 0755), 0);
	plait_buf_release(&p);
}

static void make_sized(const char *dir, const char *name, off_t size)
{
	struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/%s", dir, name);
	int fd = open(p.buf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, size), 0); /* sparse: no disk used */
	close(fd);
	plait_buf_release(&p);
}

static char *new_dir(void)
{
	char *dir = NULL;
	dir = test_mkdtemp("test-lint");
	return dir;
}

/* Lint a Dockerfile in dir (the context); fails the test on an error. */
static void lint_dir(const char *dir, uint64_t large, struct plait_lint_result *res)
{
	struct plait_lint_opts o = {.context_dir = dir, .large_file_bytes = large};
	struct plait_error *err = NULL;
	if (plait_lint_run(&o, res, &err) < 0)
		fail_msg("lint: %s", err->msg);
}

static void lint_text(const char *dockerfile, struct plait_lint_result *res)
{
	char *dir = new_dir();
	write_file(dir, "Dockerfile", dockerfile);
	lint_dir(dir, 0, res);
	plait_rm_rf(dir);
	free(dir);
}

static char *describe(const struct plait_lint_result *res)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	for (size_t i = 0; i < res->n; i++)
		plait_buf_addf(&b, "\n  %d %s %s", res->findings[i].line, res->findings[i].rule->id,
			       res->findings[i].message);
	if (!res->n)
		plait_buf_adds(&b, " (none)");
	return plait_buf_detach(&b, NULL);
}

static size_t count(const struct plait_lint_result *res, const char *id)
{
	size_t n = 0;
	for (size_t i = 0; i < res->n; i++)
		n += streq(res->findings[i].rule->id, id);
	return n;
}

static const struct plait_lint_finding *find(const struct plait_lint_result *res, const char *id)
{
	for (size_t i = 0; i < res->n; i++)
		if (streq(res->findings[i].rule->id, id))
			return &res->findings[i];
	return NULL;
}

/* Lint text and expect rule id exactly n times. */
static void expect(const char *dockerfile, const char *id, size_t n)
{
	struct plait_lint_result res;
	lint_text(dockerfile, &res);
	size_t got = count(&res, id);
	if (got != n) {
		char *d = describe(&res);
		fail_msg("%s: %zu findings, want %zu, for:\n%s\nfindings:%s", id, got, n,
			 dockerfile, d);
	}
	plait_lint_result_release(&res);
}

/* Lint text and expect rule id once, on line, with msg in its message. */
static void expect_at(const char *dockerfile, const char *id, int line, const char *msg)
{
	struct plait_lint_result res;
	lint_text(dockerfile, &res);
	const struct plait_lint_finding *f = find(&res, id);
	char *d = describe(&res);
	if (!f)
		fail_msg("%s not reported for:\n%s\nfindings:%s", id, dockerfile, d);
	assert_int_equal(f->line, line);
	if (msg && !strstr(f->message, msg))
		fail_msg("%s message '%s' does not contain '%s'", id, f->message, msg);
	free(d);
	plait_lint_result_release(&res);
}

#define CLEAN_TAIL "USER app\n"

/* ------------------------------------------------------------ # check= and plait-lint ignore= */

#define APT_TWICE "RUN apt-get install -y curl && rm -rf /var/lib/apt/lists/*\n" \
		  "RUN apt-get install -y wget && rm -rf /var/lib/apt/lists/*\n"

static void test_lint__check_skip_drops_rules_by_id_name_and_buildkit_name(void **state)
{
	(void)state;
	expect("FROM debian:12\nARG API_TOKEN\n" APT_TWICE CLEAN_TAIL, "PL018", 1);
	expect("# check=skip=SecretsUsedInArgOrEnv\nFROM debian:12\nARG API_TOKEN\n" CLEAN_TAIL, "PL018", 0);
	expect("# check=skip=PL003\nFROM debian:12\n" APT_TWICE CLEAN_TAIL, "PL003", 0);
	expect("# check=skip=apt-install-recommends,PL004\nFROM debian:12\n" APT_TWICE CLEAN_TAIL, "PL004", 0);
	expect("# check=skip=apt-install-recommends,PL004\nFROM debian:12\n" APT_TWICE CLEAN_TAIL, "PL003", 0);
	/* a BuildKit check plait has no counterpart for: accepted, nothing dropped */
	expect("# check=skip=StageNameCasing\nFROM debian:12\n" APT_TWICE CLEAN_TAIL, "PL003", 2);
	struct plait_lint_result res;
	lint_text("# check=skip=all\nFROM debian:12\nARG API_TOKEN\n" APT_TWICE, &res);
	assert_int_equal(res.n, 0);
	assert_false(res.error_on_warning);
	plait_lint_result_release(&res);
	lint_text("# check=error=true\nFROM debian:12\n" CLEAN_TAIL, &res);
	assert_true(res.error_on_warning);
	plait_lint_result_release(&res);
}

static void test_lint__inline_ignore_drops_one_instructions_finding(void **state)
{
	(void)state;
	const char *df = "FROM debian:12\n# plait-lint ignore=PL003\n\n# why: curl is small\n" APT_TWICE CLEAN_TAIL;
	expect(df, "PL003", 1);
	expect_at(df, "PL003", 6, "--no-install-recommends");
	expect(df, "PL004", 2); /* only the rule named */
	expect("FROM debian:12\n# plait-lint ignore=PL003,apt-install-unpinned\n" APT_TWICE CLEAN_TAIL, "PL004", 1);
}

static void lint_error(const char *dockerfile, const char *want)
{
	char *dir = new_dir();
	write_file(dir, "Dockerfile", dockerfile);
	struct plait_lint_opts o = {.context_dir = dir};
	struct plait_lint_result res = {0};
	struct plait_error *err = NULL;
	assert_true(plait_lint_run(&o, &res, &err) < 0);
	assert_int_equal(err->code, PLAIT_E_INVALID);
	if (!strstr(err->msg, want))
		fail_msg("error '%s' does not contain '%s'", err->msg, want);
	plait_error_free(err);
	plait_rm_rf(dir);
	free(dir);
}

static void test_lint__bad_check_and_ignore_are_errors_with_line(void **state)
{
	(void)state;
	lint_error("# check=skip=PL999\nFROM debian:12\n", "Dockerfile:1: # check=skip: unknown rule 'PL999'");
	lint_error("# check=bogus=1\nFROM debian:12\n", "Dockerfile:1: # check=: unknown key 'bogus'");
	lint_error("# check=error=maybe\nFROM debian:12\n", "error=maybe: use true or false");
	lint_error("FROM debian:12\n# plait-lint ignore=PL998\nRUN true\n", "Dockerfile:2: plait-lint ignore: unknown rule 'PL998'");
	lint_error("FROM debian:12\n# plait-lint skip\nRUN true\n", "Dockerfile:2: plait-lint comment");
	lint_error("FROM debian:12\nRUN true\n# plait-lint ignore=PL003\n", "Dockerfile:3: plait-lint ignore= with no instruction");
}

/* ------------------------------------------------------------ table */

static void test_lint__rules_have_ids_and_texts(void **state)
{
	(void)state;
	size_t n;
	const struct plait_lint_rule *r = plait_lint_rules(&n);
	assert_true(n >= 20);
	for (size_t i = 0; i < n; i++) {
		char want[32];
		snprintf(want, sizeof(want), "PL%03zu", i + 1);
		assert_string_equal(r[i].id, want);
		assert_non_null(r[i].name);
		assert_non_null(r[i].reason);
		assert_non_null(r[i].fix);
		assert_non_null(r[i].explain);
		assert_null(strchr(r[i].reason, '\n'));
		assert_null(strchr(r[i].fix, '\n'));
		assert_ptr_equal(plait_lint_rule_lookup(r[i].id), &r[i]);
		assert_ptr_equal(plait_lint_rule_lookup(r[i].name), &r[i]);
	}
	assert_ptr_equal(plait_lint_rule_lookup("pl001"), &r[0]);
	assert_null(plait_lint_rule_lookup("PL999"));
	assert_null(plait_lint_rule_lookup(NULL));
}

static void test_lint__severity_names_round_trip(void **state)
{
	(void)state;
	assert_int_equal(plait_lint_severity_parse("info"), PLAIT_LINT_INFO);
	assert_int_equal(plait_lint_severity_parse("warning"), PLAIT_LINT_WARNING);
	assert_int_equal(plait_lint_severity_parse("error"), PLAIT_LINT_ERROR);
	assert_int_equal(plait_lint_severity_parse("fatal"), -1);
	assert_int_equal(plait_lint_severity_parse(NULL), -1);
	assert_string_equal(plait_lint_severity_name(PLAIT_LINT_WARNING), "warning");
}

/* ------------------------------------------------------------ run as a whole */

static void test_lint__clean_dockerfile_has_no_findings(void **state)
{
	(void)state;
	static const char df[] =
	    "# syntax=docker/dockerfile:1\n"
	    "ARG "
	    "BASE=python:3.11-slim@sha256:"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
	    "FROM ${BASE} AS build\n"
	    "RUN apt-get update \\\n"
	    "    && apt-get install -y --no-install-recommends gcc=4:12.2.0-3 \\\n"
	    "    && rm -rf /var/lib/apt/lists/*\n"
	    "WORKDIR /src\n"
	    "COPY requirements.txt .\n"
	    "RUN pip wheel --no-cache-dir --wheel-dir /wheels -r requirements.txt\n"
	    "COPY . .\n"
	    "FROM ${BASE}\n"
	    "ENV TOKENIZERS_PARALLELISM=false PIP_DISABLE_PIP_VERSION_CHECK=1\n"
	    "COPY --from=build /wheels /wheels\n"
	    "RUN pip install --no-cache-dir /wheels/*.whl && useradd app\n"
	    "COPY app.tar.gz /srv/\n"
	    "USER app\n"
	    "ENTRYPOINT [\"python\", \"-m\", \"serve\"]\n";
	struct plait_lint_result res;
	lint_text(df, &res);
	if (res.n) {
		char *d = describe(&res);
		fail_msg("want no findings, got:%s", d);
	}
	plait_lint_result_release(&res);
}

static void test_lint__findings_sorted_by_line_then_id(void **state)
{
	(void)state;
	struct plait_lint_result res;
	lint_text("FROM ubuntu\n"
		  "RUN apt-get install -y curl\n"
		  "ENTRYPOINT python x.py\n",
		  &res);
	assert_true(res.n >= 5);
	for (size_t i = 1; i < res.n; i++) {
		const struct plait_lint_finding *a = &res.findings[i - 1], *b = &res.findings[i];
		assert_true(a->line < b->line ||
			    (a->line == b->line && strcmp(a->rule->id, b->rule->id) <= 0));
	}
	assert_int_equal(res.findings[0].line, 1);
	assert_string_equal(res.findings[0].rule->id, "PL001");
	assert_non_null(strstr(res.findings[0].file, "Dockerfile"));
	plait_lint_result_release(&res);
}

static void test_lint__parse_error_is_invalid_with_line(void **state)
{
	(void)state;
	char *dir = new_dir();
	write_file(dir, "Dockerfile", "FROM alpine:3.20\nBOGUS x\n");
	struct plait_lint_opts o = {.context_dir = dir};
	struct plait_lint_result res = {0};
	struct plait_error *err = NULL;
	assert_true(plait_lint_run(&o, &res, &err) < 0);
	assert_int_equal(err->code, PLAIT_E_INVALID);
	if (!strstr(err->msg, "Dockerfile:2"))
		fail_msg("error '%s' does not name Dockerfile:2", err->msg);
	assert_int_equal(res.n, 0);
	plait_error_free(err);
	plait_rm_rf(dir);
	free(dir);
}

static void test_lint__missing_dockerfile_is_not_found(void **state)
{
	(void)state;
	char *dir = new_dir();
	struct plait_lint_opts o = {.context_dir = dir};
	struct plait_lint_result res = {0};
	struct plait_error *err = NULL;
	assert_true(plait_lint_run(&o, &res, &err) < 0);
	assert_int_equal(err->code, PLAIT_E_NOT_FOUND);
	assert_non_null(strstr(err->msg, "read Dockerfile '"));
	plait_error_free(err);
	plait_rm_rf(dir);
	free(dir);
}

static void test_lint__dockerfile_option_overrides_context_path(void **state)
{
	(void)state;
	char *dir = new_dir();
	write_file(dir, "Dockerfile", "FROM ubuntu\n");
	write_file(dir, "other.Dockerfile", "FROM ubuntu:24.04@sha256:00\nUSER app\n");
	struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/other.Dockerfile", dir);
	struct plait_lint_opts o = {.context_dir = dir, .dockerfile = p.buf};
	struct plait_lint_result res;
	struct plait_error *err = NULL;
	assert_int_equal(plait_lint_run(&o, &res, &err), 0);
	char *d = describe(&res);
	if (res.n)
		fail_msg("other.Dockerfile is clean, got:%s", d);
	free(d);
	plait_lint_result_release(&res);
	plait_buf_release(&p);
	plait_rm_rf(dir);
	free(dir);
}

/* ------------------------------------------------------------ PL001/PL002 */

static void test_lint__base_image_unpinned_triggers(void **state)
{
	(void)state;
	expect_at("FROM ubuntu\n", "PL001", 1, "base image 'ubuntu' has no tag");
	expect_at("FROM python:latest\n", "PL001", 1, "'latest'");
	expect_at("FROM registry.local:5000/ml/base\n", "PL001", 1, "has no tag");
	expect_at("ARG BASE=pytorch/pytorch\nFROM $BASE\n", "PL001", 2,
		  "'$BASE' ('pytorch/pytorch')");
	expect_at("ARG TAG=latest\nFROM python:${TAG}\n", "PL001", 2, "'latest'");
	/* each stage is checked */
	expect("FROM golang:1.22 AS b\nFROM alpine\n", "PL001", 1);
}

static void test_lint__base_image_unpinned_clean(void **state)
{
	(void)state;
	expect("FROM python:3.11-slim\n", "PL001", 0);
	expect("FROM registry.local:5000/ml/base:1.2\n", "PL001", 0);
	expect("FROM ubuntu@sha256:abcd\n", "PL001", 0);
	expect("FROM scratch\n", "PL001", 0);
	expect("FROM alpine:3.20 AS base\nFROM base\nFROM BASE AS again\n", "PL001", 0);
	expect("ARG BASE=python:3.11\nFROM ${BASE}\n", "PL001", 0);
	/* an ARG without default cannot be judged */
	expect("ARG BASE\nFROM ${BASE}\n", "PL001", 0);
}

static void test_lint__base_image_no_digest_triggers(void **state)
{
	(void)state;
	expect_at("FROM python:3.11-slim\n", "PL002", 1, "not pinned by digest");
}

static void test_lint__base_image_no_digest_clean(void **state)
{
	(void)state;
	expect("FROM python:3.11-slim@sha256:abcd\n", "PL002", 0);
	expect("FROM ubuntu\n", "PL002", 0); /* PL001 covers it */
	expect("FROM scratch\n", "PL002", 0);
}

/* ------------------------------------------------------------ apt */

static void test_lint__apt_recommends_triggers(void **state)
{
	(void)state;
	expect_at("FROM debian:12\nRUN apt-get update && apt-get install -y curl\n", "PL003", 2,
		  "apt-get install without --no-install-recommends");
	expect("FROM debian:12\nRUN DEBIAN_FRONTEND=noninteractive sudo apt install -y curl\n",
	       "PL003", 1);
	expect("FROM debian:12\nRUN [\"apt-get\", \"install\", \"-y\", \"curl\"]\n", "PL003", 1);
	expect("FROM debian:12\nRUN <<EOF\nset -e\napt-get update\napt-get install -y curl\nEOF\n",
	       "PL003", 1);
	expect("FROM debian:12\nRUN bash <<EOF\napt-get install -y curl\nEOF\n", "PL003", 1);
	expect("FROM debian:12\nRUN [\"/bin/sh\", \"-c\", \"apt-get install -y curl\"]\n", "PL003",
	       1);
}

static void test_lint__apt_recommends_clean(void **state)
{
	(void)state;
	expect("FROM debian:12\nRUN apt-get install -y --no-install-recommends curl=1\n", "PL003",
	       0);
	expect("FROM debian:12\nRUN apt-get -o APT::Install-Recommends=false install -y curl\n",
	       "PL003", 0);
	expect("FROM debian:12\nRUN apt-get update && apt-get clean\n", "PL003", 0);
	/* heredoc bodies given to a program other than a shell are data */
	expect("FROM debian:12\nRUN python3 <<EOF\nprint('apt-get install -y curl')\nEOF\n",
	       "PL003", 0);
	/* mentions that are not the command */
	expect("FROM debian:12\nRUN echo 'apt-get install curl' > /notes\n", "PL003", 0);
}

static void test_lint__apt_unpinned_triggers(void **state)
{
	(void)state;
	expect_at(
	    "FROM debian:12\nRUN apt-get install -y --no-install-recommends curl git=1:2.39 wget\n",
	    "PL004", 2, "without version pins: curl, wget");
}

static void test_lint__apt_unpinned_clean(void **state)
{
	(void)state;
	expect("FROM debian:12\nRUN apt-get install -y --no-install-recommends a=1 \\\n"
	       "      b=2.0-1 ./local.deb $EXTRA_PKGS >/dev/null 2>&1\n",
	       "PL004", 0);
}

static void test_lint__apt_lists_triggers(void **state)
{
	(void)state;
	expect_at("FROM debian:12\nRUN apt-get update && apt-get install -y "
		  "--no-install-recommends a=1\n",
		  "PL005", 2, "without removing /var/lib/apt/lists");
	/* removing them in a later RUN is too late */
	expect(
	    "FROM debian:12\nRUN apt-get update && apt-get install -y --no-install-recommends a=1\n"
	    "RUN rm -rf /var/lib/apt/lists/*\n",
	    "PL005", 1);
	/* a cache mount elsewhere does not count */
	expect("FROM debian:12\nRUN --mount=type=cache,target=/root/.cache apt-get install -y "
	       "--no-install-recommends a=1\n",
	       "PL005", 1);
}

static void test_lint__apt_lists_clean(void **state)
{
	(void)state;
	/* the brief's own example: must be clean of every apt rule */
	static const char df[] =
	    "FROM debian:12\n"
	    "RUN apt-get install -y --no-install-recommends a=1 && rm -rf /var/lib/apt/lists/*\n";
	expect(df, "PL003", 0);
	expect(df, "PL004", 0);
	expect(df, "PL005", 0);
	expect("FROM debian:12\nRUN --mount=type=cache,target=/var/lib/apt,sharing=locked \\\n"
	       "    --mount=type=cache,target=/var/cache/apt \\\n"
	       "    apt-get update && apt-get install -y --no-install-recommends a=1\n",
	       "PL005", 0);
	expect("FROM debian:12\nRUN --mount=type=cache,dst=/var/cache/apt apt-get install -y "
	       "--no-install-recommends a=1\n",
	       "PL005", 0);
}

static void test_lint__apt_upgrade_triggers(void **state)
{
	(void)state;
	expect_at("FROM debian:12\nRUN apt-get update && apt-get -y upgrade\n", "PL006", 2,
		  "apt-get upgrade");
	expect_at("FROM debian:12\nRUN apt-get dist-upgrade -y\n", "PL006", 2, "dist-upgrade");
}

static void test_lint__apt_upgrade_clean(void **state)
{
	(void)state;
	expect(
	    "FROM debian:12\nRUN apt-get install -y --no-install-recommends --only-upgrade a=1\n",
	    "PL006", 0);
	expect("FROM debian:12\nRUN pip install --no-cache-dir --upgrade pip==24.0\n", "PL006", 0);
}

/* ------------------------------------------------------------ pip / conda */

static void test_lint__pip_unpinned_triggers(void **state)
{
	(void)state;
	expect_at("FROM python:3.11\nRUN pip install --no-cache-dir torch transformers==4.41.2 "
		  "'numpy>=1.26'\n",
		  "PL007", 2, "without pinned versions: torch, numpy>=1.26");
	expect_at(
	    "FROM python:3.11\nRUN python3 -m pip install --no-cache-dir -r req.txt gunicorn\n",
	    "PL007", 2, ": gunicorn");
	expect("FROM python:3.11\nRUN pip3 install --no-cache-dir --upgrade pip\n", "PL007", 1);
	expect("FROM python:3.11\nRUN uv pip install --no-cache fastapi\n", "PL007", 1);
	expect("FROM python:3.11\nRUN [\"pip\", \"install\", \"--no-cache-dir\", \"torch\"]\n",
	       "PL007", 1);
	expect(
	    "FROM python:3.11\nRUN for p in torch numpy; do pip install --no-cache-dir $p; done && "
	    "if true; then pip install --no-cache-dir fastapi; fi\n",
	    "PL007", 1);
}

static void test_lint__pip_unpinned_clean(void **state)
{
	(void)state;
	expect("FROM python:3.11\nRUN pip install --no-cache-dir -r requirements.txt\n", "PL007",
	       0);
	expect("FROM python:3.11\nRUN pip install --no-cache-dir -c constraints.txt torch numpy\n",
	       "PL007", 0);
	expect("FROM python:3.11\nRUN pip install --no-cache-dir -r requirements.lock . \n",
	       "PL007", 0);
	expect("FROM python:3.11\nRUN pip install --no-cache-dir --no-deps -e .\n", "PL007", 0);
	expect("FROM python:3.11\nRUN pip install --no-cache-dir --index-url "
	       "https://download.pytorch.org/whl/cu121 "
	       "torch==2.3.1+cu121 /wheels/x-1.0-py3-none-any.whl \"$EXTRA\"\n",
	       "PL007", 0);
	expect("FROM python:3.11\nRUN pip download torch && pip --version\n", "PL007", 0);
}

static void test_lint__pip_cache_triggers(void **state)
{
	(void)state;
	expect_at("FROM python:3.11\nRUN pip install -r requirements.txt\n", "PL008", 2,
		  "pip install without --no-cache-dir");
	expect(
	    "FROM python:3.11\nRUN --mount=type=cache,target=/var/cache/apt pip install -r r.txt\n",
	    "PL008", 1);
}

static void test_lint__pip_cache_clean(void **state)
{
	(void)state;
	expect("FROM python:3.11\nRUN pip install --no-cache-dir -r requirements.txt\n", "PL008",
	       0);
	expect("FROM python:3.11\nRUN --mount=type=cache,target=/root/.cache/pip pip install -r "
	       "r.txt\n",
	       "PL008", 0);
	expect("FROM python:3.11\nENV PIP_NO_CACHE_DIR=1\nRUN pip install -r r.txt\n", "PL008", 0);
	expect("FROM python:3.11 AS base\nENV PIP_NO_CACHE_DIR=1\nFROM base\nRUN pip install -r "
	       "r.txt\n",
	       "PL008", 0);
	expect("FROM python:3.11\nRUN pip install -r r.txt && rm -rf /root/.cache/pip\n", "PL008",
	       0);
	expect("FROM python:3.11\nRUN pip install -r r.txt && pip cache purge\n", "PL008", 0);
}

static void test_lint__conda_clean_triggers(void **state)
{
	(void)state;
	expect_at("FROM continuumio/miniconda3:24.1.2-0\nRUN conda install -y numpy=1.26.4\n",
		  "PL009", 2, "conda install without 'conda clean'");
	expect("FROM mambaorg/micromamba:1.5\nRUN micromamba install -y -n base python=3.11\n",
	       "PL009", 1);
}

static void test_lint__conda_clean_clean(void **state)
{
	(void)state;
	expect("FROM continuumio/miniconda3:24.1.2-0\nRUN conda install -y numpy=1.26.4 && conda "
	       "clean -afy\n",
	       "PL009", 0);
	expect(
	    "FROM continuumio/miniconda3:24.1.2-0\nRUN --mount=type=cache,target=/opt/conda/pkgs "
	    "conda install -y numpy=1.26.4\n",
	    "PL009", 0);
	expect("FROM continuumio/miniconda3:24.1.2-0\nRUN conda list\n", "PL009", 0);
}

/* ------------------------------------------------------------ COPY ordering */

static void test_lint__copy_context_early_triggers(void **state)
{
	(void)state;
	expect_at("FROM python:3.11\nWORKDIR /app\nCOPY . .\nRUN pip install --no-cache-dir -r "
		  "requirements.txt\n",
		  "PL010", 3, "('COPY . .') before the dependency install on line 4");
	expect_at("FROM node:20\nADD ./ /app\nRUN npm ci\n", "PL010", 2, NULL);
	expect("FROM python:3.11\nCOPY . /app\nRUN poetry install\nRUN conda install -y x=1\n",
	       "PL010", 1);
}

static void test_lint__copy_context_early_clean(void **state)
{
	(void)state;
	expect("FROM python:3.11\nCOPY requirements.txt .\nRUN pip install --no-cache-dir -r "
	       "requirements.txt\n"
	       "COPY . .\nRUN pip install --no-cache-dir --no-deps .\n",
	       "PL010", 0);
	/* another stage's install does not count */
	expect("FROM python:3.11 AS a\nCOPY . .\nFROM python:3.11\nRUN pip install --no-cache-dir "
	       "-r r.txt\n",
	       "PL010", 0);
	expect("FROM python:3.11 AS a\nFROM python:3.11\nCOPY --from=a . .\nRUN pip install "
	       "--no-cache-dir -r r.txt\n",
	       "PL010", 0);
	expect("FROM python:3.11\nCOPY . .\nRUN python -m compileall .\n", "PL010", 0);
	/* dependencies installed from the manifest first: installing the project after is fine */
	expect("FROM python:3.11\nCOPY requirements.lock .\nRUN pip install --no-cache-dir -r "
	       "requirements.lock\n"
	       "COPY . .\nRUN pip install --no-cache-dir .\n",
	       "PL010", 0);
	expect(
	    "FROM python:3.11 AS deps\nCOPY pyproject.toml poetry.lock ./\nRUN poetry install "
	    "--no-root\n"
	    "FROM deps\nCOPY . .\nRUN poetry install --only-root && pip install --no-cache-dir .\n",
	    "PL010", 0);
}

/* ------------------------------------------------------------ context */

static void test_lint__large_file_triggers(void **state)
{
	(void)state;
	char *dir = new_dir();
	write_file(dir, "Dockerfile", "FROM alpine:3.20\n");
	make_dir(dir, "models");
	make_sized(dir, "models/model.bin", 3 << 20);
	make_sized(dir, "small.txt", 100);
	struct plait_lint_result res;
	lint_dir(dir, 1 << 20, &res);
	assert_int_equal(count(&res, "PL011"), 1);
	const struct plait_lint_finding *f = find(&res, "PL011");
	assert_int_equal(f->line, 0);
	assert_non_null(strstr(f->message, "'models/model.bin' is 3.0 MiB"));
	assert_non_null(strstr(f->file, "models/model.bin"));
	plait_lint_result_release(&res);

	/* the default limit is 50 MiB */
	lint_dir(dir, 0, &res);
	assert_int_equal(count(&res, "PL011"), 0);
	plait_lint_result_release(&res);
	make_sized(dir, "models/model.bin", 60 << 20);
	lint_dir(dir, 0, &res);
	assert_int_equal(count(&res, "PL011"), 1);
	plait_lint_result_release(&res);
	plait_rm_rf(dir);
	free(dir);
}

static void test_lint__large_file_clean(void **state)
{
	(void)state;
	char *dir = new_dir();
	write_file(dir, "Dockerfile", "FROM alpine:3.20\n");
	write_file(dir, ".dockerignore", "models\n*.ckpt\n");
	make_dir(dir, "models");
	make_sized(dir, "models/model.bin", 3 << 20);
	make_sized(dir, "last.ckpt", 3 << 20);
	struct plait_lint_result res;
	lint_dir(dir, 1 << 20, &res);
	assert_int_equal(count(&res, "PL011"), 0);
	plait_lint_result_release(&res);

	/* Dockerfile-specific ignore files are honoured, as the build does */
	write_file(dir, ".dockerignore", "");
	write_file(dir, "Dockerfile.dockerignore", "models\nlast.ckpt\n");
	lint_dir(dir, 1 << 20, &res);
	char *d = describe(&res);
	if (count(&res, "PL011"))
		fail_msg("Dockerfile.dockerignore not honoured:%s", d);
	free(d);
	plait_lint_result_release(&res);
	plait_rm_rf(dir);
	free(dir);
}

static void test_lint__git_dir_triggers(void **state)
{
	(void)state;
	char *dir = new_dir();
	write_file(dir, "Dockerfile", "FROM alpine:3.20\n");
	make_dir(dir, ".git");
	write_file(dir, ".git/HEAD", "ref: refs/heads/main\n");
	make_dir(dir, ".git/refs");
	struct plait_lint_result res;
	lint_dir(dir, 0, &res);
	assert_int_equal(count(&res, "PL012"), 1);
	assert_non_null(strstr(find(&res, "PL012")->file, ".git"));
	plait_lint_result_release(&res);
	plait_rm_rf(dir);
	free(dir);
}

static void test_lint__git_dir_clean(void **state)
{
	(void)state;
	char *dir = new_dir();
	write_file(dir, "Dockerfile", "FROM alpine:3.20\n");
	write_file(dir, ".dockerignore", ".git\n");
	make_dir(dir, ".git");
	write_file(dir, ".git/HEAD", "ref: refs/heads/main\n");
	write_file(dir, ".gitignore", "x\n");
	struct plait_lint_result res;
	lint_dir(dir, 0, &res);
	assert_int_equal(count(&res, "PL012"), 0);
	plait_lint_result_release(&res);
	plait_rm_rf(dir);
	free(dir);
}

static void test_lint__bad_dockerignore_is_an_error(void **state)
{
	(void)state;
	char *dir = new_dir();
	write_file(dir, "Dockerfile", "FROM alpine:3.20\n");
	write_file(dir, ".dockerignore", "[bad\n");
	struct plait_lint_opts o = {.context_dir = dir};
	struct plait_lint_result res;
	struct plait_error *err = NULL;
	assert_true(plait_lint_run(&o, &res, &err) < 0);
	assert_int_equal(err->code, PLAIT_E_INVALID);
	assert_int_equal(res.n, 0);
	plait_error_free(err);
	plait_rm_rf(dir);
	free(dir);
}

/* ------------------------------------------------------------ build tools */

static void test_lint__build_tools_triggers(void **state)
{
	(void)state;
	expect_at("FROM python:3.11\nRUN echo hi\nRUN apt-get install -y --no-install-recommends "
		  "build-essential=12.9 "
		  "cmake && rm -rf /var/lib/apt/lists/*\nRUN apk add --no-cache gcc-12 make\n",
		  "PL013", 3, "single-stage build: build-essential, cmake, gcc-12, make");
	expect("FROM continuumio/miniconda3:24.1.2-0\nRUN conda install -y gxx=12 && conda clean "
	       "-afy\n",
	       "PL013", 1);
}

static void test_lint__build_tools_clean(void **state)
{
	(void)state;
	/* multi-stage: the compilers are in the builder */
	expect("FROM python:3.11 AS build\nRUN apt-get install -y gcc\nFROM python:3.11-slim\n"
	       "COPY --from=build /w /w\n",
	       "PL013", 0);
	expect("FROM python:3.11\nRUN apt-get install -y --no-install-recommends curl=1 makeself=2 "
	       "libgcc-s1=1\n",
	       "PL013", 0);
}

static void test_lint__cuda_devel_triggers(void **state)
{
	(void)state;
	expect_at("FROM nvidia/cuda:12.4.1-cudnn-devel-ubuntu22.04\n", "PL014", 1,
		  "CUDA devel base image");
	expect_at("ARG CUDA=12.1\nFROM pytorch/pytorch:2.3.1-cuda${CUDA}-cudnn8-devel\n", "PL014",
		  2, "pytorch/pytorch:2.3.1-cuda12.1-cudnn8-devel");
}

static void test_lint__cuda_devel_clean(void **state)
{
	(void)state;
	expect("FROM nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04\n", "PL014", 0);
	expect("FROM nvidia/cuda:12.4.1-devel-ubuntu22.04 AS build\n"
	       "FROM nvidia/cuda:12.4.1-runtime-ubuntu22.04\n",
	       "PL014", 0);
	expect("FROM gcc:13-devel\n", "PL014", 0);
}

/* ------------------------------------------------------------ ADD */

static void test_lint__add_local_triggers(void **state)
{
	(void)state;
	expect_at("FROM alpine:3.20\nCOPY a /a\nADD app.py config.zip /app/\n", "PL015", 3,
		  "'app.py'");
	expect("FROM alpine:3.20\nADD src/ /app/\nADD [\"a b.txt\", \"/x/\"]\n", "PL015", 2);
}

static void test_lint__add_local_clean(void **state)
{
	(void)state;
	expect("FROM alpine:3.20\nADD rootfs.tar.gz /\nADD a.tar a.tgz a.tar.xz a.tar.bz2 "
	       "a.TAR.ZST /x/\n",
	       "PL015", 0);
	expect("FROM alpine:3.20\nADD https://github.com/moby/buildkit.git#v0.14.0 /src\n", "PL015",
	       0);
	expect("FROM alpine:3.20\nCOPY app.py /app/\n", "PL015", 0);
}

static void test_lint__add_url_triggers(void **state)
{
	(void)state;
	expect_at("FROM alpine:3.20\nADD https://example.com/model.onnx /models/\n", "PL016", 2,
		  "'https://example.com/model.onnx' without --checksum");
}

static void test_lint__add_url_clean(void **state)
{
	(void)state;
	expect("FROM alpine:3.20\nADD "
	       "--checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d "
	       "https://example.com/model.onnx /models/\n",
	       "PL016", 0);
	expect("FROM alpine:3.20\nADD https://github.com/moby/buildkit.git#v0.14.0 /src\n", "PL016",
	       0);
}

/* ------------------------------------------------------------ USER */

static void test_lint__root_user_triggers(void **state)
{
	(void)state;
	expect_at("FROM alpine:3.20\nRUN true\n", "PL017", 1, "no USER in the final stage");
	expect_at("FROM alpine:3.20\nUSER app\nRUN true\nUSER root\n", "PL017", 4,
		  "runs as 'root'");
	expect_at("FROM alpine:3.20\nUSER 0:0\n", "PL017", 2, "'0:0'");
	/* a USER in a builder stage does not carry into another image */
	expect_at("FROM alpine:3.20 AS b\nUSER app\nFROM alpine:3.20\nCOPY --from=b /x /x\n",
		  "PL017", 3, NULL);
}

static void test_lint__root_user_clean(void **state)
{
	(void)state;
	expect("FROM alpine:3.20\nUSER 10001:10001\n", "PL017", 0);
	expect("FROM alpine:3.20\nUSER root\nRUN apk add x\nUSER app\n", "PL017", 0);
	/* inherited from the stage the final stage is built on */
	expect("FROM alpine:3.20 AS base\nUSER app\nFROM base\nRUN true\n", "PL017", 0);
}

/* ------------------------------------------------------------ secrets */

static void test_lint__secret_env_triggers(void **state)
{
	(void)state;
	expect_at("ARG HF_TOKEN\nFROM alpine:3.20\n", "PL018", 1,
		  "ARG 'HF_TOKEN' looks like a secret");
	expect_at("FROM alpine:3.20\nENV OPENAI_API_KEY=sk-123\n", "PL018", 2,
		  "ENV 'OPENAI_API_KEY'");
	expect("FROM alpine:3.20\nENV DB_PASSWORD=x DB_PASSWD=y AWS_SECRET_ACCESS_KEY=z\n", "PL018",
	       3);
	expect("FROM alpine:3.20\nARG github_token=\nARG GOOGLE_APPLICATION_CREDENTIALS_JSON\n"
	       "ENV SSH_KEY x\n",
	       "PL018", 3);
}

static void test_lint__secret_env_clean(void **state)
{
	(void)state;
	expect(
	    "FROM alpine:3.20\nENV TOKENIZERS_PARALLELISM=false MAX_TOKENS=512 GPG_KEY=A035C8C1\n"
	    "ENV PASSWORD_FILE=/run/secrets/pw HF_TOKEN=\"\" KEY=1 PUBLIC_KEY=x\n"
	    "RUN --mount=type=secret,id=hf_token cat /run/secrets/hf_token >/dev/null\n",
	    "PL018", 0);
}

/* ------------------------------------------------------------ cd / ENTRYPOINT */

static void test_lint__run_cd_triggers(void **state)
{
	(void)state;
	expect_at("FROM alpine:3.20\nRUN cd /src && make\n", "PL019", 2, "'cd /src' in RUN");
	expect("FROM alpine:3.20\nRUN cd /src; make\n", "PL019", 1);
	expect("FROM alpine:3.20\nRUN git clone x && cd x && make\n", "PL019", 1);
}

static void test_lint__run_cd_clean(void **state)
{
	(void)state;
	expect("FROM alpine:3.20\nWORKDIR /src\nRUN make\n", "PL019", 0);
	expect("FROM alpine:3.20\nRUN (cd /src && make) && echo done\n", "PL019", 0);
	expect("FROM alpine:3.20\nRUN echo cd /x && echo 'cd y &&'\n", "PL019", 0);
	expect("FROM alpine:3.20\nRUN make && cd -\n", "PL019", 0);
}

static void test_lint__entrypoint_shell_triggers(void **state)
{
	(void)state;
	expect_at("FROM alpine:3.20\nENTRYPOINT python serve.py --port 80\n", "PL020", 2,
		  "'python serve.py --port 80'");
}

static void test_lint__entrypoint_shell_clean(void **state)
{
	(void)state;
	expect("FROM alpine:3.20\nENTRYPOINT [\"python\", \"serve.py\"]\nCMD python x.py\n",
	       "PL020", 0);
}

/* ------------------------------------------------------------ train / serve */

static void test_lint__train_serve_triggers(void **state)
{
	(void)state;
	expect_at(
	    "FROM python:3.11 AS app\nRUN pip install --no-cache-dir -r requirements-train.txt\n"
	    "CMD [\"python\", \"serve.py\"]\n",
	    "PL021", 1, "stage 'app' holds both training and serving");
	/* serve built on top of train: the serve target holds both */
	expect_at("FROM python:3.11 AS train\nRUN python train.py\nFROM train AS serve\nCMD python "
		  "infer.py\n",
		  "PL021", 3, "with the stage it is built on");
}

static void test_lint__train_serve_clean(void **state)
{
	(void)state;
	expect("FROM python:3.11 AS base\nRUN pip install --no-cache-dir -r r.txt\n"
	       "FROM base AS train\nCMD [\"python\", \"train.py\"]\n"
	       "FROM base AS serve\nCMD [\"python\", \"serve.py\"]\n",
	       "PL021", 0);
	expect("FROM python:3.11\nCMD [\"python\", \"train.py\"]\n", "PL021", 0);
	expect("FROM python:3.11\nRUN pip install --no-cache-dir constrained-decoding==1.0\n"
	       "CMD [\"python\", \"serve.py\"]\n",
	       "PL021", 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lint__rules_have_ids_and_texts),
	    cmocka_unit_test(test_lint__severity_names_round_trip),
	    cmocka_unit_test(test_lint__clean_dockerfile_has_no_findings),
	    cmocka_unit_test(test_lint__findings_sorted_by_line_then_id),
	    cmocka_unit_test(test_lint__parse_error_is_invalid_with_line),
	    cmocka_unit_test(test_lint__check_skip_drops_rules_by_id_name_and_buildkit_name),
	    cmocka_unit_test(test_lint__inline_ignore_drops_one_instructions_finding),
	    cmocka_unit_test(test_lint__bad_check_and_ignore_are_errors_with_line),
	    cmocka_unit_test(test_lint__missing_dockerfile_is_not_found),
	    cmocka_unit_test(test_lint__dockerfile_option_overrides_context_path),
	    cmocka_unit_test(test_lint__base_image_unpinned_triggers),
	    cmocka_unit_test(test_lint__base_image_unpinned_clean),
	    cmocka_unit_test(test_lint__base_image_no_digest_triggers),
	    cmocka_unit_test(test_lint__base_image_no_digest_clean),
	    cmocka_unit_test(test_lint__apt_recommends_triggers),
	    cmocka_unit_test(test_lint__apt_recommends_clean),
	    cmocka_unit_test(test_lint__apt_unpinned_triggers),
	    cmocka_unit_test(test_lint__apt_unpinned_clean),
	    cmocka_unit_test(test_lint__apt_lists_triggers),
	    cmocka_unit_test(test_lint__apt_lists_clean),
	    cmocka_unit_test(test_lint__apt_upgrade_triggers),
	    cmocka_unit_test(test_lint__apt_upgrade_clean),
	    cmocka_unit_test(test_lint__pip_unpinned_triggers),
	    cmocka_unit_test(test_lint__pip_unpinned_clean),
	    cmocka_unit_test(test_lint__pip_cache_triggers),
	    cmocka_unit_test(test_lint__pip_cache_clean),
	    cmocka_unit_test(test_lint__conda_clean_triggers),
	    cmocka_unit_test(test_lint__conda_clean_clean),
	    cmocka_unit_test(test_lint__copy_context_early_triggers),
	    cmocka_unit_test(test_lint__copy_context_early_clean),
	    cmocka_unit_test(test_lint__large_file_triggers),
	    cmocka_unit_test(test_lint__large_file_clean),
	    cmocka_unit_test(test_lint__git_dir_triggers),
	    cmocka_unit_test(test_lint__git_dir_clean),
	    cmocka_unit_test(test_lint__bad_dockerignore_is_an_error),
	    cmocka_unit_test(test_lint__build_tools_triggers),
	    cmocka_unit_test(test_lint__build_tools_clean),
	    cmocka_unit_test(test_lint__cuda_devel_triggers),
	    cmocka_unit_test(test_lint__cuda_devel_clean),
	    cmocka_unit_test(test_lint__add_local_triggers),
	    cmocka_unit_test(test_lint__add_local_clean),
	    cmocka_unit_test(test_lint__add_url_triggers),
	    cmocka_unit_test(test_lint__add_url_clean),
	    cmocka_unit_test(test_lint__root_user_triggers),
	    cmocka_unit_test(test_lint__root_user_clean),
	    cmocka_unit_test(test_lint__secret_env_triggers),
	    cmocka_unit_test(test_lint__secret_env_clean),
	    cmocka_unit_test(test_lint__run_cd_triggers),
	    cmocka_unit_test(test_lint__run_cd_clean),
	    cmocka_unit_test(test_lint__entrypoint_shell_triggers),
	    cmocka_unit_test(test_lint__entrypoint_shell_clean),
	    cmocka_unit_test(test_lint__train_serve_triggers),
	    cmocka_unit_test(test_lint__train_serve_clean),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
