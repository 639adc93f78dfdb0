/* fuzz_unpack - the layer unpacker (core/unpack.h): the input is a layer blob
 * (tar, maybe compressed) unpacked into a scratch root made for each input,
 * in the modes APPLY, OVERLAY and PLAIN by turn (length % 3), ownership kept
 * as the fuzzing user's. The scratch root sits alone in a fresh directory;
 * anything that appears next to it (an escape) aborts the run; then both are
 * removed. Run: make fuzz (see the README, Fuzzing). */
#include "fuzz.h"

#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "core/digest.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/unpack.h"

struct mem {
	const uint8_t *data;
	size_t len, off;
};

static ssize_t mem_read(void *ud, void *buf, size_t len)
{
	struct mem *m = ud;
	size_t n = m->len - m->off < len ? m->len - m->off : len;
	memcpy(buf, m->data + m->off, n);
	m->off += n;
	return (ssize_t)n;
}

/* The only entry of parent must be "root". */
static void check_alone(const char *parent)
{
	DIR *d = opendir(parent);
	if (!d)
		abort();
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "root")) {
			fprintf(stderr, "fuzz_unpack: '%s' written outside the root\n", e->d_name);
			abort();
		}
	}
	closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1024 * 1024)
		return 0;
	const char *tmp = getenv("TMPDIR");
	char parent[4096];
	snprintf(parent, sizeof(parent), "%s/plait-fuzz-unpack-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(parent))
		abort();
	char root[4200];
	snprintf(root, sizeof(root), "%s/root", parent);
	if (mkdir(root, 0755) < 0)
		abort();

	static const enum plait_unpack_mode modes[] = { PLAIT_UNPACK_APPLY, PLAIT_UNPACK_OVERLAY,
							PLAIT_UNPACK_PLAIN };
	struct plait_unpack_options o = { .mode = modes[size % 3], .media_type = "fuzz",
					  .no_chown = true };
	struct mem m = { .data = data, .len = size };
	char diff_id[PLAIT_SHA256_DIGEST_SIZE];
	struct plait_error *err = NULL;
	(void)plait_unpack_stream(mem_read, &m, root, &o, diff_id, &err);
	plait_error_free(err);

	check_alone(parent);
	if (plait_rm_rf(parent) < 0) {
		fprintf(stderr, "fuzz_unpack: cannot remove %s\n", parent);
		abort();
	}
	return 0;
}
