/* bench/gzip-bench.c - the layer compressors on their own, for bench/gzip.sh
 * (not installed, not a test).
 *
 *   plait-gzip-bench zlib  [-l LEVEL]             < IN > OUT
 *   plait-gzip-bench plait [-l LEVEL] [-t THREADS] < IN > OUT
 *   plait-gzip-bench layer [-l LEVEL] [-t THREADS] DIR STORE
 *   plait-gzip-bench zinflate                     < IN.gz
 *   plait-gzip-bench unpack LAYER DIR
 *
 * zlib is the compressor layers had before core/gzip (one deflate stream,
 * windowBits 15+16, memLevel 8, the same fixed header); plait is core/gzip;
 * layer is the whole layer write of DIR into the OCI layout STORE (tar,
 * diff_id, gzip, digest, file) and prints the digest; zinflate is zlib's
 * streaming gunzip to nowhere (the pull side before ISA-L); unpack is the
 * pull side now, core/unpack of the gzip'd tar LAYER into the new DIR
 * (inflate, both digests, tar reading, the files). Each prints to stderr
 * one line: mode, bytes in, bytes out, seconds, MB/s (of input). */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "core/gzip.h"
#include "core/layer.h"
#include "core/unpack.h"
#include "core/util.h"

#define CHUNK (128 * 1024)

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int out_sink(void *ud, const void *data, size_t len, struct plait_error **err)
{
	uint64_t *n = ud;
	*n += len;
	if (plait_write_all(STDOUT_FILENO, data, len) < 0)
		return plait_error_set(err, PLAIT_E_IO, "write stdout");
	return 0;
}

static int run_zlib(int level, uint64_t *in_n, uint64_t *out_n)
{
	z_stream z = {0};
	static gz_header hdr = {.os = 255};
	if (deflateInit2(&z, level ? level : 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
		Z_OK ||
	    deflateSetHeader(&z, &hdr) != Z_OK)
		return -1;
	unsigned char *in = xmalloc(CHUNK), *out = xmalloc(CHUNK);
	for (bool end = false; !end;) {
		ssize_t n = read(STDIN_FILENO, in, CHUNK);
		if (n < 0)
			return -1;
		end = n == 0;
		*in_n += (uint64_t)n;
		z.next_in = in;
		z.avail_in = (uInt)n;
		int zr;
		do {
			z.next_out = out;
			z.avail_out = CHUNK;
			zr = deflate(&z, end ? Z_FINISH : Z_NO_FLUSH);
			if (zr == Z_STREAM_ERROR)
				return -1;
			*out_n += CHUNK - z.avail_out;
			if (plait_write_all(STDOUT_FILENO, out, CHUNK - z.avail_out) < 0)
				return -1;
		} while (z.avail_out == 0);
	}
	deflateEnd(&z);
	free(in);
	free(out);
	return 0;
}

static int run_plait(int level, unsigned threads, uint64_t *in_n, uint64_t *out_n)
{
	struct plait_gzip *g = NULL;
	struct plait_error *err = NULL;
	if (plait_gzip_new(level, threads, out_sink, out_n, &g, &err) < 0)
		goto fail;
	unsigned char *in = xmalloc(CHUNK);
	for (;;) {
		ssize_t n = read(STDIN_FILENO, in, CHUNK);
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		*in_n += (uint64_t)n;
		if (plait_gzip_write(g, in, (size_t)n, &err) < 0)
			goto fail;
	}
	if (plait_gzip_finish(g, &err) < 0)
		goto fail;
	plait_gzip_free(g);
	free(in);
	return 0;
fail:
	fprintf(stderr, "plait-gzip-bench: %s\n", err ? err->msg : "?");
	return -1;
}

static int run_layer(int level, unsigned threads, const char *dir, const char *store,
		     uint64_t *in_n, uint64_t *out_n)
{
	struct plait_store *s = NULL;
	struct plait_error *err = NULL;
	struct plait_layer l;
	struct plait_layer_options o = {
	    .compression = PLAIT_LAYER_GZIP, .level = level, .threads = threads};
	if (plait_store_open(store, true, &s, &err) < 0 ||
	    plait_layer_from_tree(s, dir, &o, &l, &err) < 0) {
		fprintf(stderr, "plait-gzip-bench: %s\n", err->msg);
		return -1;
	}
	printf("%s %s\n", l.digest, l.diff_id);
	*out_n = (uint64_t)l.size;
	*in_n = 0; /* the tar size is not reported; the script uses the file size */
	plait_store_free(s);
	return 0;
}

static int run_zinflate(uint64_t *in_n, uint64_t *out_n)
{
	z_stream z = {0};
	if (inflateInit2(&z, 15 + 32) != Z_OK)
		return -1;
	unsigned char *in = xmalloc(CHUNK), *out = xmalloc(CHUNK);
	int zr = Z_OK;
	for (;;) {
		ssize_t n = read(STDIN_FILENO, in, CHUNK);
		if (n <= 0)
			break;
		*out_n += (uint64_t)n; /* "out" is the compressed size here, as for the compressors */
		z.next_in = in;
		z.avail_in = (uInt)n;
		while (z.avail_in) {
			z.next_out = out;
			z.avail_out = CHUNK;
			zr = inflate(&z, Z_NO_FLUSH);
			if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
				return -1;
			*in_n += CHUNK - z.avail_out;
			if (zr == Z_STREAM_END && inflateReset(&z) != Z_OK)
				return -1;
		}
	}
	inflateEnd(&z);
	free(in);
	free(out);
	return 0;
}

static int run_unpack(const char *layer, const char *dir, uint64_t *in_n, uint64_t *out_n)
{
	struct plait_error *err = NULL;
	struct plait_unpack_options o = {0};
	int fd = open(layer, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || mkdir(dir, 0755) < 0) {
		perror(layer);
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || plait_unpack_fd(fd, dir, &o, NULL, &err) < 0) {
		fprintf(stderr, "plait-gzip-bench: %s\n", err ? err->msg : "fstat");
		return -1;
	}
	close(fd);
	*out_n = (uint64_t)st.st_size;
	*in_n = 0; /* the tar size: the script knows it */
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: plait-gzip-bench zlib|plait|layer [-l LEVEL] [-t THREADS] "
				"[DIR STORE]\n");
		return 2;
	}
	const char *mode = argv[1];
	int level = 0, c;
	unsigned threads = 0;
	optind = 2;
	while ((c = getopt(argc, argv, "l:t:")) != -1) {
		if (c == 'l')
			level = atoi(optarg);
		else if (c == 't')
			threads = (unsigned)atoi(optarg);
		else
			return 2;
	}
	uint64_t in_n = 0, out_n = 0;
	double t = now();
	int r;
	if (streq(mode, "zlib"))
		r = run_zlib(level, &in_n, &out_n);
	else if (streq(mode, "plait"))
		r = run_plait(level, threads, &in_n, &out_n);
	else if (streq(mode, "zinflate"))
		r = run_zinflate(&in_n, &out_n);
	else if (streq(mode, "unpack") && argc - optind == 2)
		r = run_unpack(argv[optind], argv[optind + 1], &in_n, &out_n);
	else if (streq(mode, "layer") && argc - optind == 2)
		r = run_layer(level, threads, argv[optind], argv[optind + 1], &in_n, &out_n);
	else
		return 2;
	t = now() - t;
	if (r < 0)
		return 1;
	fprintf(stderr, "%s %llu %llu %.3f %.1f\n", mode, (unsigned long long)in_n,
		(unsigned long long)out_n, t, t > 0 ? (double)in_n / t / 1e6 : 0.0);
	return 0;
}
