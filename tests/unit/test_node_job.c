/* tests/unit/test_node_job.c - the files of a node job (core/node_job.h): a
 * real context directory listed (with .dockerignore), its contents sent as
 * frames through a pipe into a store, the directory made again and compared
 * entry by entry; hostile lists refused with the entry named; a blob whose
 * bytes do not match its digest never stored. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/frame.h"
#include "core/node_job.h"
#include "core/util.h"
#include "rm_tree.h"
#include "tmpdir.h"

#include "core/banned.h"

struct fix {
	char *dir;
	char ctx[512], layout[512], out[512];
	struct plait_store *s;
};

static void put(const char *dir, const char *rel, const char *text, mode_t mode)
{
	char p[1024];
	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(0, plait_write_all(fd, text, strlen(text)));
	close(fd);
	assert_int_equal(0, chmod(p, mode));
}

static void mk(const char *dir, const char *rel, mode_t mode)
{
	char p[1024];
	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	assert_int_equal(0, mkdir(p, mode));
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	f->dir = test_mkdtemp("node-job");
	snprintf(f->ctx, sizeof(f->ctx), "%s/ctx", f->dir);
	snprintf(f->layout, sizeof(f->layout), "%s/store", f->dir);
	snprintf(f->out, sizeof(f->out), "%s/out", f->dir);
	mk(f->dir, "ctx", 0755);
	mk(f->dir, "out", 0700);
	put(f->ctx, "Dockerfile", "FROM scratch\nCOPY . /\n", 0644);
	put(f->ctx, ".dockerignore", "secret.txt\nbuild/\n", 0644);
	put(f->ctx, "secret.txt", "do not send", 0600);
	mk(f->ctx, "build", 0755);
	put(f->ctx, "build/out.o", "object", 0644);
	mk(f->ctx, "src", 0750);
	put(f->ctx, "src/main.c", "int main(void) { return 0; }\n", 0644);
	put(f->ctx, "src/run.sh", "#!/bin/sh\necho hi\n", 0755);
	put(f->ctx, "src/same.txt", "int main(void) { return 0; }\n", 0600); /* the same content twice */
	mk(f->ctx, "src/empty", 0700);
	char p[1024];
	snprintf(p, sizeof(p), "%s/src/link", f->ctx);
	assert_int_equal(0, symlink("../Dockerfile", p));
	snprintf(p, sizeof(p), "%s/src/fifo", f->ctx);
	assert_int_equal(0, mkfifo(p, 0640));
	/* fixed times, to compare */
	const char *all[] = { "Dockerfile", ".dockerignore", "src/main.c", "src/run.sh", "src/same.txt", "src/empty",
			      "src/fifo", "src", NULL };
	for (const char **a = all; *a; a++) {
		snprintf(p, sizeof(p), "%s/%s", f->ctx, *a);
		struct timespec ts[2] = { { .tv_sec = 1600000000 }, { .tv_sec = 1600000000 + (a - all) } };
		assert_int_equal(0, utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW));
	}
	struct plait_error *err = NULL;
	assert_int_equal(0, plait_store_open(f->layout, true, &f->s, &err));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	plait_store_free(f->s);
	rm_tree(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static json_t *collect(struct fix *f)
{
	struct plait_context *ctx = NULL;
	struct plait_error *err = NULL;
	assert_int_equal(0, plait_context_open(f->ctx, NULL, &ctx, &err));
	json_t *list = NULL;
	int r = plait_node_files_collect(ctx, &list, &err);
	if (r < 0)
		fail_msg("collect: %s", err->msg);
	plait_context_free(ctx);
	return list;
}

/* Send every missing content of files (read from the context) through a pipe
 * and receive it into the store, as the two sides of a job do. */
static void send_missing(struct fix *f, const struct plait_node_files *files, size_t *sent)
{
	char **need = NULL;
	struct plait_error *err = NULL;
	const struct plait_node_files *lists[] = { files };
	assert_int_equal(0, plait_node_files_missing(lists, 1, NULL, f->s, &need, &err));
	*sent = 0;
	for (char **d = need; d && *d; d++, (*sent)++) {
		const struct plait_node_file *nf = NULL;
		for (size_t i = 0; i < files->n && !nf; i++)
			if (files->v[i].type == 'f' && streq(files->v[i].data, *d))
				nf = &files->v[i];
		assert_non_null(nf);
		char p[1024];
		snprintf(p, sizeof(p), "%s/%s", f->ctx, nf->path);
		int in = open(p, O_RDONLY);
		assert_true(in >= 0);
		int pp[2];
		assert_int_equal(0, pipe(pp));
		assert_int_equal(0, plait_node_blob_send(pp[1], *d, nf->size, in, &err));
		close(pp[1]);
		close(in);
		struct plait_frame fr;
		size_t n = 0;
		assert_int_equal(1, plait_frame_read(pp[0], &fr, &n, &err));
		assert_int_equal(0, plait_node_blob_receive(pp[0], fr.control, f->s, 1 << 20, &n, &err));
		plait_frame_release(&fr);
		close(pp[0]);
	}
	plait_strv_free(need);
}

static void same_entry(const char *a, const char *b, bool owners)
{
	struct stat x, y;
	assert_int_equal(0, lstat(a, &x));
	if (lstat(b, &y) < 0)
		fail_msg("'%s' was not made (as '%s')", b, a);
	if ((x.st_mode & S_IFMT) != (y.st_mode & S_IFMT))
		fail_msg("'%s': type %o, made %o", a, x.st_mode & S_IFMT, y.st_mode & S_IFMT);
	if (!S_ISLNK(x.st_mode) && (x.st_mode & 07777) != (y.st_mode & 07777))
		fail_msg("'%s': mode %o, made %o", a, x.st_mode & 07777, y.st_mode & 07777);
	if (x.st_mtim.tv_sec != y.st_mtim.tv_sec)
		fail_msg("'%s': mtime %lld, made %lld", a, (long long)x.st_mtim.tv_sec, (long long)y.st_mtim.tv_sec);
	if (owners && (x.st_uid != y.st_uid || x.st_gid != y.st_gid))
		fail_msg("'%s': owner %u:%u, made %u:%u", a, x.st_uid, x.st_gid, y.st_uid, y.st_gid);
	if (S_ISREG(x.st_mode)) {
		char ca[256] = "", cb[256] = "";
		int fa = open(a, O_RDONLY), fb = open(b, O_RDONLY);
		assert_true(fa >= 0 && fb >= 0);
		ssize_t na = read(fa, ca, sizeof(ca) - 1), nb = read(fb, cb, sizeof(cb) - 1);
		close(fa);
		close(fb);
		assert_true(na >= 0 && nb >= 0);
		if (na != nb || memcmp(ca, cb, (size_t)na))
			fail_msg("'%s': content '%s', made '%s'", a, ca, cb);
	}
	if (S_ISLNK(x.st_mode)) {
		char la[256] = "", lb[256] = "";
		assert_true(readlink(a, la, sizeof(la) - 1) > 0);
		assert_true(readlink(b, lb, sizeof(lb) - 1) > 0);
		assert_string_equal(la, lb);
	}
}

static void test_round_trip(void **state)
{
	struct fix *f = *state;
	if (chown(f->ctx, 0, 0) < 0) {
		/* not root: owners stay the caller's, still compared for the rest */
	}
	json_t *list = collect(f);
	char *text = json_dumps(list, JSON_COMPACT);
	assert_null(strstr(text, "secret.txt"));
	assert_null(strstr(text, "build"));
	assert_non_null(strstr(text, "\"src/link\",\"l\""));
	assert_non_null(strstr(text, "\"src/fifo\",\"p\""));
	free(text);
	struct plait_node_files files;
	struct plait_error *err = NULL;
	if (plait_node_files_parse(list, "job 1", &files, &err) < 0)
		fail_msg("parse: %s", err->msg);
	/* the same content twice is sent once */
	size_t sent = 0;
	send_missing(f, &files, &sent);
	assert_int_equal(4, sent); /* Dockerfile, .dockerignore, main.c (= same.txt), run.sh */
	send_missing(f, &files, &sent);
	assert_int_equal(0, sent); /* the store has them all now */
	if (plait_node_files_materialize(&files, f->s, f->out, &err) < 0)
		fail_msg("materialize: %s", err->msg);
	const char *all[] = { "Dockerfile", ".dockerignore", "src", "src/main.c", "src/run.sh", "src/same.txt",
			      "src/empty", "src/link", "src/fifo", NULL };
	for (const char **a = all; *a; a++) {
		char x[1024], y[1024];
		snprintf(x, sizeof(x), "%s/%s", f->ctx, *a);
		snprintf(y, sizeof(y), "%s/%s", f->out, *a);
		same_entry(x, y, geteuid() == 0);
	}
	char y[1024];
	snprintf(y, sizeof(y), "%s/secret.txt", f->out);
	assert_int_equal(-1, access(y, F_OK));
	plait_node_files_release(&files);
	json_decref(list);
}

/* parse `json` (a list) and expect a refusal mentioning want */
static void refused(const char *json, const char *want)
{
	json_error_t je;
	json_t *l = json_loads(json, JSON_ALLOW_NUL, &je); /* a NUL too: the check must not rely on the reader */
	if (!l)
		fail_msg("test list does not parse: %s", je.text);
	struct plait_node_files files;
	struct plait_error *err = NULL;
	int r = plait_node_files_parse(l, "job 7", &files, &err);
	if (r >= 0)
		fail_msg("%s was accepted", json);
	assert_int_equal(-PLAIT_E_INVALID, r);
	if (!strstr(err->msg, want) || !strstr(err->msg, "job 7"))
		fail_msg("%s: message '%s' does not say '%s'", json, err->msg, want);
	plait_error_free(err);
	json_decref(l);
}

#define D_HEX "0000000000000000000000000000000000000000000000000000000000000000"
#define D "\"sha256:" D_HEX "\""

static void test_hostile_lists(void **state)
{
	(void)state;
	refused("[[\"../etc/passwd\",\"f\",420,0,0,1,0," D ",0]]", "('../etc/passwd'): the path must be relative");
	refused("[[\"/etc/passwd\",\"f\",420,0,0,1,0," D ",0]]", "the path must be relative");
	refused("[[\"a//b\",\"f\",420,0,0,1,0," D ",0]]", "the path must be relative");
	refused("[[\"a/./b\",\"f\",420,0,0,1,0," D ",0]]", "the path must be relative");
	refused("[[\"a/\",\"d\",493,0,0,0,0,null,0]]", "the path must be relative");
	refused("[[\"x\",\"f\",420,0,0,1,0," D ",0],[\"x\",\"f\",420,0,0,1,0," D ",0]]", "entry 1 ('x'): listed twice");
	refused("[[\"a/b\",\"f\",420,0,0,1,0," D ",0],[\"a\",\"d\",493,0,0,0,0,null,0]]",
		"('a/b'): its directory is not listed before it");
	refused("[[\"a\",\"l\",511,0,0,0,0,\"/etc\",0],[\"a/passwd\",\"f\",420,0,0,1,0," D ",0]]",
		"('a/passwd'): its parent is not a directory");
	refused("[[\"dev\",\"c\",420,0,0,0,0,null,0]]", "the type must be f, d, l or p");
	refused("[[\"x\",\"f\",4096,0,0,1,0," D ",0]]", "out of range");
	refused("[[\"x\",\"f\",420,-1,0,1,0," D ",0]]", "out of range");
	refused("[[\"x\",\"d\",420,0,0,5,0,null,0]]", "out of range");
	refused("[[\"x\",\"f\",420,0,0,1,0,\"sha256:abc\",0]]", "its digest");
	refused("[[\"x\",\"f\",420,0,0,1,0,null,0]]", "its digest");
	refused("[[\"x\",\"l\",511,0,0,0,0,\"\",0]]", "its target");
	refused("[[\"x\",\"d\",493,0,0,0,0,\"data\",0]]", "only files and symlinks have data");
	refused("[[\"x\",\"f\",420,0,0,1,0," D "]]", "not [path, type");
	refused("[\"x\"]", "not [path, type");
	refused("[[\"x\\u0000y\",\"f\",420,0,0,1,0," D ",0]]", "the path must be relative");
}

/* The job's push list: what to_json writes parses back; a repository with a
 * tag or digest, or not host/path, is refused naming it. */
static void push_parse(const char *const *push, const char *want_error)
{
	struct plait_build_opts o = { .platform_str = "linux/amd64", .build_platform_str = "linux/amd64" };
	json_t *m = plait_node_job_to_json(3, &o, NULL, push, NULL, "Dockerfile", "sha256:" D_HEX, 10, NULL, NULL);
	struct plait_node_job job;
	struct plait_error *err = NULL;
	int r = plait_node_job_parse(m, &job, &err);
	if (want_error) {
		if (r >= 0)
			fail_msg("push '%s' was accepted", push[0]);
		if (!strstr(err->msg, want_error))
			fail_msg("push '%s': message '%s' does not say '%s'", push[0], err->msg, want_error);
		plait_error_free(err);
	} else {
		if (r < 0)
			fail_msg("push '%s' refused: %s", push[0], err->msg);
		size_t n = 0;
		for (; push[n]; n++)
			assert_string_equal(push[n], job.push[n]);
		assert_null(job.push[n]);
		plait_node_job_release(&job);
	}
	json_decref(m);
}

static void test_job_push(void **state)
{
	(void)state;
	const char *ok[] = { "127.0.0.1:5000/team/app", "registry.example.com/ml/train", NULL };
	push_parse(ok, NULL);
	const char *none[] = { NULL };
	push_parse(none, NULL);
	const char *tagged[] = { "127.0.0.1:5000/app:1.0", NULL };
	push_parse(tagged, "push '127.0.0.1:5000/app:1.0' is not a repository");
	const char *digest[] = { "127.0.0.1:5000/app@sha256:" D_HEX, NULL };
	push_parse(digest, "is not a repository");
	const char *bare[] = { "busybox", NULL };
	push_parse(bare, "push 'busybox' is not a repository");
	const char *upper[] = { "127.0.0.1:5000/App", NULL };
	push_parse(upper, "must be lowercase");
	/* a sender without the push feature: no "push" at all is none */
	struct plait_build_opts o = { .platform_str = "linux/amd64", .build_platform_str = "linux/amd64" };
	json_t *m = plait_node_job_to_json(3, &o, NULL, NULL, NULL, "Dockerfile", "sha256:" D_HEX, 10, NULL, NULL);
	json_object_del(m, "push");
	struct plait_node_job job;
	struct plait_error *err = NULL;
	assert_int_equal(0, plait_node_job_parse(m, &job, &err));
	assert_null(job.push[0]);
	plait_node_job_release(&job);
	json_decref(m);
}

/* The job's --ssh agents: each socket is one the node forwards (and will
 * remove), listed once; anything else is refused naming it. */
static void ssh_parse(const char *sock0, const char *sock1, const char *want_error)
{
	struct plait_build_ssh ssh[2] = { { "default", "/here/agent.sock" }, { "deploy", "/here/own.sock" } };
	struct plait_build_opts o = {
		.platform_str = "linux/amd64", .build_platform_str = "linux/amd64", .ssh = ssh, .n_ssh = 2
	};
	const char *socks[] = { sock0, sock1, NULL };
	json_t *m = plait_node_job_to_json(3, &o, NULL, NULL, socks, "Dockerfile", "sha256:" D_HEX, 10, NULL, NULL);
	struct plait_node_job job;
	struct plait_error *err = NULL;
	int r = plait_node_job_parse(m, &job, &err);
	if (want_error) {
		if (r >= 0)
			fail_msg("ssh sockets '%s' '%s' were accepted", sock0, sock1);
		if (!strstr(err->msg, want_error))
			fail_msg("ssh '%s' '%s': message '%s' does not say '%s'", sock0, sock1, err->msg, want_error);
		plait_error_free(err);
	} else {
		if (r < 0)
			fail_msg("ssh refused: %s", err->msg);
		assert_int_equal(2, job.n_ssh);
		assert_string_equal("default", job.ssh[0].id);
		assert_string_equal(sock0, job.ssh[0].socket);
		assert_string_equal("deploy", job.ssh[1].id);
		assert_string_equal(sock1, job.ssh[1].socket);
		plait_node_job_release(&job);
	}
	json_decref(m);
}

static void test_job_ssh(void **state)
{
	(void)state;
	ssh_parse(PLAIT_NODE_SSH_PREFIX "0011-0.sock", PLAIT_NODE_SSH_PREFIX "0011-1.sock", NULL);
	ssh_parse("/etc/passwd", PLAIT_NODE_SSH_PREFIX "0011-1.sock", "ssh 0 ('default' at '/etc/passwd') is not an agent");
	ssh_parse(PLAIT_NODE_SSH_PREFIX "x/../../etc/shadow.sock", PLAIT_NODE_SSH_PREFIX "0011-1.sock", "is not an agent");
	ssh_parse(PLAIT_NODE_SSH_PREFIX "0011-0", PLAIT_NODE_SSH_PREFIX "0011-1.sock", "is not an agent");
	ssh_parse(PLAIT_NODE_SSH_PREFIX "0011-0.sock", PLAIT_NODE_SSH_PREFIX "0011-0.sock", "ssh 1 ('deploy') is listed twice");
}

/* A login's payload: three NUL-terminated fields, empty ones none; the
 * node refuses anything else, and a host that is not one. */
static void test_login_payload(void **state)
{
	(void)state;
	struct plait_node_login in = { "127.0.0.1:5000", "alice", "p-\x01secret", NULL }, out;
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_node_login_payload(&in, &b);
	assert_int_equal(strlen("alice") + strlen("p-\x01secret") + 3, b.len);
	struct plait_error *err = NULL;
	assert_int_equal(0, plait_node_login_parse(in.host, b.buf, b.len, &out, &err));
	assert_string_equal("127.0.0.1:5000", out.host);
	assert_string_equal("alice", out.username);
	assert_string_equal("p-\x01secret", out.password);
	assert_null(out.identity_token);
	plait_node_login_release(&out);
	assert_int_equal(0, plait_node_login_parse("registry-1.docker.io", "\0\0tok\0", 6, &out, &err));
	assert_null(out.username);
	assert_null(out.password);
	assert_string_equal("tok", out.identity_token);
	plait_node_login_release(&out);
	static const struct {
		const char *host, *payload;
		size_t len;
		const char *want;
	} bad[] = {
		{ "h", "a\0b\0", 4, "not three fields" },
		{ "h", "a\0b\0c\0d", 7, "bytes after its fields" },
		{ "h", "", 0, "not three fields" },
		{ "a/b", "\0\0\0", 3, "'a/b' is not a registry host" },
		{ "h ost", "\0\0\0", 3, "is not a registry host" },
		{ "", "\0\0\0", 3, "is not a registry host" },
		{ NULL, "\0\0\0", 3, "is not a registry host" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = plait_node_login_parse(bad[i].host, bad[i].payload, bad[i].len, &out, &err);
		if (r >= 0)
			fail_msg("bad login %zu accepted", i);
		if (!strstr(err->msg, bad[i].want))
			fail_msg("bad login %zu: '%s' does not say '%s'", i, err->msg, bad[i].want);
		plait_error_free(err);
		err = NULL;
	}
	plait_buf_release(&b);
}

/* A listed symlink is made, never followed: a later entry cannot go through
 * it even when the parse is bypassed (the list made by hand). */
static void test_materialize_never_follows(void **state)
{
	struct fix *f = *state;
	char target[1024];
	snprintf(target, sizeof(target), "%s/outside", f->dir);
	mk(f->dir, "outside", 0755);
	struct plait_node_file v[2] = {
		{ .path = (char *)"a", .type = 'l', .mode = 0777, .data = target },
		{ .path = (char *)"a/planted", .type = 'd', .mode = 0755 },
	};
	struct plait_node_files files = { .v = v, .n = 2 };
	struct plait_error *err = NULL;
	assert_true(plait_node_files_materialize(&files, f->s, f->out, &err) < 0);
	assert_non_null(strstr(err->msg, "a/planted"));
	plait_error_free(err);
	char p[1100];
	snprintf(p, sizeof(p), "%s/planted", target);
	assert_int_equal(-1, access(p, F_OK));
}

static void test_missing_content_named(void **state)
{
	struct fix *f = *state;
	struct plait_node_file v[1] = { { .path = (char *)"x", .type = 'f', .mode = 0644, .size = 3,
					  .data = (char *)"sha256:1111111111111111111111111111111111111111111111111111111111111111" } };
	struct plait_node_files files = { .v = v, .n = 1 };
	struct plait_error *err = NULL;
	assert_true(plait_node_files_materialize(&files, f->s, f->out, &err) < 0);
	assert_non_null(strstr(err->msg, "the content of 'x' (sha256:1111"));
	plait_error_free(err);
}

static void test_wrong_bytes_not_stored(void **state)
{
	struct fix *f = *state;
	char d[PLAIT_SHA256_DIGEST_SIZE];
	plait_sha256_buf("right", 5, d);
	int src[2], pp[2];
	assert_int_equal(0, pipe(src));
	assert_int_equal(0, plait_write_all(src[1], "wrong", 5));
	close(src[1]);
	assert_int_equal(0, pipe(pp));
	struct plait_error *err = NULL;
	assert_int_equal(0, plait_node_blob_send(pp[1], d, 5, src[0], &err));
	close(pp[1]);
	close(src[0]);
	struct plait_frame fr;
	size_t n = 0;
	assert_int_equal(1, plait_frame_read(pp[0], &fr, &n, &err));
	int r = plait_node_blob_receive(pp[0], fr.control, f->s, 1 << 20, &n, &err);
	assert_int_equal(-PLAIT_E_INVALID, r);
	assert_non_null(strstr(err->msg, "digest mismatch"));
	plait_error_free(err);
	err = NULL;
	plait_frame_release(&fr);
	close(pp[0]);
	assert_int_equal(0, plait_store_has(f->s, d, NULL, &err));

	/* more bytes than announced, and an announced size over the limit */
	assert_int_equal(0, pipe(pp));
	json_t *ctl = json_pack("{s:s, s:s, s:i}", "type", "blob", "digest", d, "size", 2);
	assert_int_equal(0, plait_frame_write(pp[1], PLAIT_FRAME_CONTENT, "right", 5, &err));
	close(pp[1]);
	n = 0;
	r = plait_node_blob_receive(pp[0], ctl, f->s, 1 << 20, &n, &err);
	assert_int_equal(-PLAIT_E_INVALID, r);
	assert_non_null(strstr(err->msg, "more bytes than announced"));
	plait_error_free(err);
	err = NULL;
	close(pp[0]);
	json_object_set_new(ctl, "size", json_integer(1 << 21));
	r = plait_node_blob_receive(-1, ctl, f->s, 1 << 20, &n, &err);
	assert_int_equal(-PLAIT_E_INVALID, r);
	plait_error_free(err);
	json_decref(ctl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test(test_hostile_lists),
		cmocka_unit_test(test_job_push),
		cmocka_unit_test(test_job_ssh),
		cmocka_unit_test(test_login_payload),
		cmocka_unit_test_setup_teardown(test_materialize_never_follows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_content_named, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_bytes_not_stored, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
