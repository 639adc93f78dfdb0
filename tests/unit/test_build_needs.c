/* Unit tests for core/build_needs.c: which stages a build needs is decided
 * before anything runs, with --from and mount from= values expanded as the
 * Dockerfile's ARG and ENV lines set them; plait_build_needs() reports the
 * base images of exactly those stages. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "core/build.h"
#include "core/buf.h"
#include "core/snapshot.h"

#include "core/banned.h"

struct fixture {
	char dir[64];
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/plait-test-needs-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	plait_rm_rf(f->dir);
	free(f);
	return 0;
}

/* The bases (ref@platform, one per line) building target of dockerfile needs. */
static void needs(struct fixture *f, const char *dockerfile, const char *target, const char *const *build_args,
		  struct plait_buf *out, bool *runs_on_target)
{
	struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/Dockerfile", f->dir);
	int fd = open(p.buf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(plait_write_all(fd, dockerfile, strlen(dockerfile)), 0);
	close(fd);
	plait_buf_release(&p);
	struct plait_build_opts o = {
		.context_dir = f->dir,
		.target = target,
		.platform = { .os = (char *)"linux", .architecture = (char *)"arm64" },
		.platform_str = "linux/arm64",
		.build_platform = { .os = (char *)"linux", .architecture = (char *)"amd64" },
		.build_platform_str = "linux/amd64",
		.build_args = build_args,
	};
	struct plait_build_needs n;
	_cleanup_error_ struct plait_error *err = NULL;
	if (plait_build_needs(&o, &n, &err) < 0)
		fail_msg("needs: %s", err->msg);
	for (size_t i = 0; i < n.n_bases; i++)
		plait_buf_addf(out, "%s@%s\n", n.bases[i].ref, n.bases[i].platform);
	if (runs_on_target)
		*runs_on_target = n.runs_on_target;
	plait_build_needs_release(&n);
}

static void bases_are(struct fixture *f, const char *dockerfile, const char *target,
		      const char *const *build_args, const char *want)
{
	struct plait_buf got = PLAIT_BUF_INIT;
	needs(f, dockerfile, target, build_args, &got, NULL);
	if (!streq(got.buf, want))
		fail_msg("bases:\n%s\nwant:\n%s", got.buf, want);
	plait_buf_release(&got);
}

static const char many_stages[] =
	"ARG TOOLS=tools\n"
	"FROM alpine:3 AS tools\n"
	"FROM debian:12 AS unused\n"
	"FROM busybox:1 AS viaenv\n"
	"FROM fedora:40 AS viamount\n"
	"FROM ubuntu:24.04 AS base\n"
	"FROM base\n"
	"ARG TOOLS\n"
	"ARG M=viamount\n"
	"ENV SRC=viaenv\n"
	"COPY --from=${TOOLS} /a /a\n"
	"COPY --from=$SRC /b /b\n"
	"RUN --mount=type=bind,from=${M},target=/m true\n";

static void test_build_needs__from_values_are_expanded_before_the_build(void **state)
{
	struct fixture *f = *state;
	bases_are(f, many_stages, NULL, NULL,
		  "alpine:3@linux/arm64\nbusybox:1@linux/arm64\nfedora:40@linux/arm64\nubuntu:24.04@linux/arm64\n");
}

static void test_build_needs__build_args_choose_the_stage(void **state)
{
	struct fixture *f = *state;
	/* --build-arg TOOLS=unused: the stage the ARG names now is the one needed */
	const char *const args[] = { "TOOLS=unused", "M=none", NULL };
	bases_are(f, many_stages, NULL, args, "debian:12@linux/arm64\nbusybox:1@linux/arm64\nubuntu:24.04@linux/arm64\n");
}

static void test_build_needs__env_later_in_the_stage_does_not_count_earlier(void **state)
{
	struct fixture *f = *state;
	/* the COPY runs before the ENV that would name the stage */
	bases_are(f,
		  "FROM alpine:3 AS a\n"
		  "FROM busybox:1\n"
		  "COPY --from=$S /x /x\n"
		  "ENV S=a\n",
		  NULL, NULL, "busybox:1@linux/arm64\n");
	/* ENV passes on to a stage that starts FROM this one */
	bases_are(f,
		  "FROM alpine:3 AS a\n"
		  "FROM busybox:1 AS env\n"
		  "ENV S=a\n"
		  "FROM env\n"
		  "COPY --from=$S /x /x\n",
		  NULL, NULL, "alpine:3@linux/arm64\nbusybox:1@linux/arm64\n");
}

static void test_build_needs__transitive_and_target(void **state)
{
	struct fixture *f = *state;
	const char df[] = "FROM alpine:3 AS a\n"
			  "FROM --platform=$BUILDPLATFORM busybox:1 AS b\n"
			  "COPY --from=a / /\n"
			  "RUN make\n"
			  "FROM scratch AS c\n"
			  "COPY --from=b /out /\n"
			  "FROM debian:12 AS d\n";
	bases_are(f, df, "c", NULL, "alpine:3@linux/arm64\nbusybox:1@linux/amd64\n");
	bool runs = true;
	struct plait_buf got = PLAIT_BUF_INIT;
	needs(f, df, "c", NULL, &got, &runs);
	plait_buf_release(&got);
	assert_false(runs); /* its only RUN runs on the build platform */
	bases_are(f, df, NULL, NULL, "debian:12@linux/arm64\n");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_build_needs__from_values_are_expanded_before_the_build),
		T(test_build_needs__build_args_choose_the_stage),
		T(test_build_needs__env_later_in_the_stage_does_not_count_earlier),
		T(test_build_needs__transitive_and_target),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
