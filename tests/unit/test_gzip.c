/* Unit tests for core/gzip: one valid gzip member that zlib and gzip(1) read
 * back, and the same bytes whatever the thread count, the write sizes and the
 * block boundaries. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <libdeflate.h>
#include <zlib.h>

#include "core/buf.h"
#include "core/digest.h"
#include "core/gzip.h"

#include "core/banned.h"

#define BLOCK PLAIT_GZIP_BLOCK

/* ---- inputs: deterministic, so every host tests the same bytes */

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64* */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t s = seed | 1;
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(rng_next(&s) >> 56);
}

/* Words from a skewed vocabulary, in lines: compresses like source code. */
static void fill_text(uint8_t *p, size_t n, uint64_t seed)
{
	static const char *const words[] = {
	    "import", "torch", "self",	"return", "def",  "layer",  "weight", "bias",
	    "for",    "in",    "range", "if",	  "else", "tensor", "shape",  "numpy",
	    "x",      "y",     "=",	"(",	  ")",	  ":",	    "model",  "config",
	    "batch",  "None",  "True",	"False",  "0",	  "1",	    "lambda", "class"};
	uint64_t s = seed | 1;
	size_t i = 0;
	while (i < n) {
		uint64_t r = rng_next(&s);
		const char *w = words[(r >> 40) % 8 + (r >> 50) % 24];
		if ((r & 15) == 0) {
			char num[24];
			int k = snprintf(num, sizeof(num), "%u", (unsigned)(r >> 20) % 100000);
			for (int j = 0; j < k && i < n; j++)
				p[i++] = (uint8_t)num[j];
		}
		for (; *w && i < n; w++)
			p[i++] = (uint8_t)*w;
		if (i < n)
			p[i++] = (r & 0x70) == 0 ? '\n' : ' ';
	}
}

/* pieces of text, random data and zeros, at odd sizes */
static uint8_t *mixed_input(size_t n)
{
	uint8_t *p = xmalloc(n ? n : 1);
	size_t off = 0;
	for (unsigned k = 0; off < n; k++) {
		size_t m = (size_t)(300000 + 170001 * (k % 7));
		if (m > n - off)
			m = n - off;
		if (k % 3 == 0)
			fill_text(p + off, m, k + 1);
		else if (k % 3 == 1)
			fill_random(p + off, m, k + 1);
		else
			memset(p + off, 0, m);
		off += m;
	}
	return p;
}

/* ---- compressing and reading back */

struct collect {
	struct plait_buf out;
	size_t calls;
	size_t fail_at; /* fail the call with this number (1-based); 0: never */
};

static int sink(void *ud, const void *data, size_t len, struct plait_error **err)
{
	struct collect *c = ud;
	if (++c->calls == c->fail_at)
		return plait_error_set(err, PLAIT_E_IO, "test sink: disk full");
	plait_buf_add(&c->out, data, len);
	return 0;
}

/* gzip in, written in pieces of step bytes (0: one write). */
static void gz_compress(const uint8_t *in, size_t n, int level, unsigned threads, size_t step,
			struct plait_buf *out)
{
	struct collect c = {.out = PLAIT_BUF_INIT};
	struct plait_gzip *g = NULL;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_gzip_new(level, threads, sink, &c, &g, &err), 0);
	for (size_t off = 0; off < n;) {
		size_t m = step && step < n - off ? step : n - off;
		if (plait_gzip_write(g, in + off, m, &err) < 0)
			fail_msg("gzip write at %zu: %s", off, err->msg);
		off += m;
	}
	if (plait_gzip_finish(g, &err) < 0)
		fail_msg("gzip finish: %s", err->msg);
	plait_gzip_free(g);
	*out = c.out;
}

/* zlib must read exactly one gzip member spanning all of gz, and give in back. */
static void assert_gunzips_to(const struct plait_buf *gz, const uint8_t *in, size_t n)
{
	z_stream z = {0};
	assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
	uint8_t *out = xmalloc(n + 1);
	z.next_in = (Bytef *)gz->buf;
	z.avail_in = (uInt)gz->len;
	z.next_out = out;
	z.avail_out = (uInt)(n + 1);
	int r = inflate(&z, Z_FINISH);
	if (r != Z_STREAM_END)
		fail_msg("zlib inflate: %d (%s) after %lu of %zu bytes in, %lu out", r,
			 z.msg ? z.msg : "-", z.total_in, gz->len, z.total_out);
	if (z.avail_in != 0)
		fail_msg("zlib stopped %u bytes before the end: more than one member", z.avail_in);
	if (z.total_out != n)
		fail_msg("zlib gave %lu bytes, want %zu", z.total_out, n);
	if (n && memcmp(out, in, n) != 0)
		fail_msg("zlib gave other bytes than went in");
	inflateEnd(&z);
	free(out);
}

static void digest_of(const struct plait_buf *b, char out[PLAIT_SHA256_DIGEST_SIZE])
{
	plait_sha256_buf(b->buf, b->len, out);
}

/* ---- tests */

static void test_gzip__empty_input_is_header_empty_final_block_and_trailer(void **state)
{
	(void)state;
	struct plait_buf gz;
	gz_compress(NULL, 0, 0, 2, 0, &gz);
	static const uint8_t want[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255,
				       3,    0,	   0, 0, 0, 0, 0, 0, 0, 0};
	assert_int_equal(gz.len, sizeof(want));
	assert_memory_equal(gz.buf, want, sizeof(want));
	assert_gunzips_to(&gz, NULL, 0);
	plait_buf_release(&gz);
}

static void test_gzip__header_has_no_name_time_or_os_and_fixed_xfl(void **state)
{
	(void)state;
	uint8_t *in = mixed_input(3 * BLOCK);
	for (int level = 1; level <= 9; level += 4) {
		struct plait_buf gz;
		gz_compress(in, 3 * BLOCK, level, 2, 0, &gz);
		const uint8_t *h = (const uint8_t *)gz.buf;
		assert_int_equal(h[0], 0x1f);
		assert_int_equal(h[1], 0x8b);
		assert_int_equal(h[2], 8);
		assert_int_equal(h[3], 0);
		assert_int_equal(h[4] | h[5] | h[6] | h[7], 0);
		assert_int_equal(h[8], 0);
		assert_int_equal(h[9], 255);
		plait_buf_release(&gz);
	}
	free(in);
}

/* Sizes around the block boundary: just below, exactly one, just above, two. */
static void test_gzip__round_trip_at_block_boundaries(void **state)
{
	(void)state;
	const size_t sizes[] = {1, 100, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK, 2 * BLOCK + 7};
	uint8_t *in = mixed_input(2 * BLOCK + 7);
	uint8_t *text = xmalloc(2 * BLOCK + 7);
	fill_text(text, 2 * BLOCK + 7, 99);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(*sizes); i++) {
		for (unsigned threads = 1; threads <= 2; threads++) {
			struct plait_buf gz;
			gz_compress(in, sizes[i], 0, threads, 0, &gz);
			assert_gunzips_to(&gz, in, sizes[i]);
			plait_buf_release(&gz);
			gz_compress(text, sizes[i], 0, threads, 0, &gz);
			assert_gunzips_to(&gz, text, sizes[i]);
			plait_buf_release(&gz);
		}
	}
	free(in);
	free(text);
}

/* The property digests rest on: threads and write sizes change nothing. */
static void test_gzip__same_bytes_for_1_2_4_8_threads_and_any_write_size(void **state)
{
	(void)state;
	const size_t n = 9 * BLOCK + 12345;
	uint8_t *in = mixed_input(n);
	char want[PLAIT_SHA256_DIGEST_SIZE], got[PLAIT_SHA256_DIGEST_SIZE];
	struct plait_buf gz;
	gz_compress(in, n, 0, 1, 0, &gz);
	digest_of(&gz, want);
	assert_gunzips_to(&gz, in, n);
	plait_buf_release(&gz);
	const struct {
		unsigned threads;
		size_t step;
	} runs[] = {{2, 0}, {4, 0}, {8, 0}, {2, 4096}, {4, 65536 + 3}, {3, BLOCK - 1}, {1, 777}};
	for (size_t i = 0; i < sizeof(runs) / sizeof(*runs); i++) {
		gz_compress(in, n, 0, runs[i].threads, runs[i].step, &gz);
		digest_of(&gz, got);
		if (strcmp(got, want) != 0)
			fail_msg("%u threads, writes of %zu: %s, but 1 thread gave %s",
				 runs[i].threads, runs[i].step, got, want);
		plait_buf_release(&gz);
	}
	free(in);
}

/* Many text blocks end their deflate data at every bit position of a byte:
 * each join (cleared BFINAL, realigning stored block) must parse. gzip(1)
 * checks the file independently of zlib's in-memory reading. */
static void test_gzip__many_text_blocks_join_into_one_stream_gzip_t_accepts(void **state)
{
	(void)state;
	const size_t n = 24 * BLOCK + 999;
	uint8_t *in = xmalloc(n);
	for (size_t off = 0, k = 0; off < n; off += 65536, k++)
		fill_text(in + off, n - off < 65536 ? n - off : 65536, k + 7);
	struct plait_buf gz;
	gz_compress(in, n, 6, 4, 0, &gz);
	assert_gunzips_to(&gz, in, n);
	assert_true(gz.len < n / 2);
	char path[] = "/tmp/plait-test-gzip-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, gz.buf, gz.len), (ssize_t)gz.len);
	close(fd);
	struct plait_buf cmd = PLAIT_BUF_INIT;
	plait_buf_addf(&cmd, "gzip -t < %s", path);
	int r = system(cmd.buf);
	unlink(path);
	plait_buf_release(&cmd);
	if (r != 0)
		fail_msg("gzip -t rejected the stream (status %d)", r);
	plait_buf_release(&gz);
	free(in);
}

/* Random bytes are stored, not compressed: 5 bytes per 65535 of overhead. */
static void test_gzip__incompressible_block_is_stored(void **state)
{
	(void)state;
	const size_t n = 2 * BLOCK;
	uint8_t *in = xmalloc(n);
	fill_random(in, n, 5);
	struct plait_buf gz;
	gz_compress(in, n, 9, 2, 0, &gz);
	size_t per_block = BLOCK + 5 * ((BLOCK + 65534) / 65535);
	assert_int_equal(gz.len, 10 + 2 * per_block + 2 + 8);
	assert_gunzips_to(&gz, in, n);
	plait_buf_release(&gz);
	free(in);
}

static void test_gzip__large_input_streams_through_bounded_memory(void **state)
{
	(void)state;
	/* 64 MiB in pieces, without holding the input: the same piece again and again */
	const size_t piece = 4 * BLOCK + 4321, reps = 15;
	uint8_t *in = mixed_input(piece);
	struct plait_buf gz;
	struct collect c = {.out = PLAIT_BUF_INIT};
	struct plait_gzip *g = NULL;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_gzip_new(1, 4, sink, &c, &g, &err), 0);
	for (size_t i = 0; i < reps; i++)
		assert_int_equal(plait_gzip_write(g, in, piece, &err), 0);
	assert_int_equal(plait_gzip_finish(g, &err), 0);
	plait_gzip_free(g);
	gz = c.out;
	/* inflate in a loop with a small window of output */
	z_stream z = {0};
	assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = (Bytef *)gz.buf;
	z.avail_in = (uInt)gz.len;
	uint8_t *out = xmalloc(piece);
	size_t got = 0;
	int r;
	do {
		z.next_out = out;
		z.avail_out = (uInt)piece;
		r = inflate(&z, Z_NO_FLUSH);
		if (r != Z_OK && r != Z_STREAM_END)
			fail_msg("inflate: %d at output %zu", r, got);
		size_t m = piece - z.avail_out;
		for (size_t i = 0; i < m; i++)
			if (out[i] != in[(got + i) % piece])
				fail_msg("byte %zu differs", got + i);
		got += m;
	} while (r != Z_STREAM_END);
	assert_int_equal(got, piece * reps);
	assert_int_equal(z.avail_in, 0);
	inflateEnd(&z);
	free(out);
	free(in);
	plait_buf_release(&gz);
}

static void test_gzip__levels_1_to_9_round_trip_and_others_are_refused(void **state)
{
	(void)state;
	const size_t n = 2 * BLOCK + 100;
	uint8_t *in = xmalloc(n);
	fill_text(in, n, 3);
	size_t size1 = 0, size9 = 0;
	for (int level = 1; level <= 9; level++) {
		struct plait_buf gz;
		gz_compress(in, n, level, 2, 0, &gz);
		assert_gunzips_to(&gz, in, n);
		if (level == 1)
			size1 = gz.len;
		if (level == 9)
			size9 = gz.len;
		plait_buf_release(&gz);
	}
	assert_true(size9 < size1);
	struct plait_gzip *g = NULL;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_gzip_new(10, 1, sink, NULL, &g, &err), -PLAIT_E_INVALID);
	assert_non_null(strstr(err->msg, "level 10"));
	assert_null(g);
	free(in);
}

/* Small single-block streams at every level: the walk must find the final
 * block of whatever libdeflate chose (stored, fixed or dynamic Huffman). */
static void test_gzip__every_level_and_small_size_joins(void **state)
{
	(void)state;
	const size_t sizes[] = {1, 2, 3, 5, 17, 100, 258, 1000, 4097, 65535, 65536, 70000, 300001};
	const size_t max = 300001;
	uint8_t *text = xmalloc(max), *mix = mixed_input(max), *runs = xmalloc(max);
	fill_text(text, max, 11);
	for (size_t i = 0; i < max; i++)
		runs[i] = (uint8_t)(i / 300 % 3); /* long runs: matches of length 258 */
	const uint8_t *inputs[] = {text, mix, runs};
	for (int level = 1; level <= 9; level++)
		for (size_t k = 0; k < 3; k++)
			for (size_t i = 0; i < sizeof(sizes) / sizeof(*sizes); i++) {
				struct plait_buf gz;
				gz_compress(inputs[k], sizes[i], level, 1, 0, &gz);
				assert_gunzips_to(&gz, inputs[k], sizes[i]);
				plait_buf_release(&gz);
			}
	free(text);
	free(mix);
	free(runs);
}

/* A failing sink stops the stream; freeing it with busy workers returns. */
static void test_gzip__sink_failure_is_returned_and_stream_is_dead(void **state)
{
	(void)state;
	const size_t n = 12 * BLOCK;
	uint8_t *in = mixed_input(n);
	struct collect c = {.out = PLAIT_BUF_INIT, .fail_at = 3};
	struct plait_gzip *g = NULL;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_gzip_new(0, 4, sink, &c, &g, &err), 0);
	int r = plait_gzip_write(g, in, n, &err);
	assert_int_equal(r, -PLAIT_E_IO);
	assert_non_null(strstr(err->msg, "disk full"));
	plait_error_free(err);
	err = NULL;
	assert_true(plait_gzip_write(g, in, 10, &err) < 0);
	assert_non_null(strstr(err->msg, "after a failure"));
	plait_gzip_free(g);
	plait_buf_release(&c.out);
	free(in);
}

/* The bytes for a fixed input are pinned: a change here changes every gzip
 * layer digest plait produces (another block size, framing or libdeflate
 * compressor), which must be a deliberate, documented change. */
static void test_gzip__output_for_a_fixed_input_is_pinned(void **state)
{
	(void)state;
	const size_t n = 3 * BLOCK + 1000;
	uint8_t *in = mixed_input(n);
	struct plait_buf gz;
	gz_compress(in, n, 0, 2, 0, &gz);
	char got[PLAIT_SHA256_DIGEST_SIZE];
	digest_of(&gz, got);
	const char *want =
	    "sha256:e359e356dfe5c8499b5b329816e686608a15e9b7f21ba171d45974c44e41b6e6";
	if (strcmp(got, want) != 0)
		fail_msg("gzip of the fixed input is %s (%zu bytes), pinned %s: the layer byte "
			 "format changed (libdeflate %s)",
			 got, gz.len, want, LIBDEFLATE_VERSION_STRING);
	plait_buf_release(&gz);
	free(in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_gzip__empty_input_is_header_empty_final_block_and_trailer),
	    cmocka_unit_test(test_gzip__header_has_no_name_time_or_os_and_fixed_xfl),
	    cmocka_unit_test(test_gzip__round_trip_at_block_boundaries),
	    cmocka_unit_test(test_gzip__same_bytes_for_1_2_4_8_threads_and_any_write_size),
	    cmocka_unit_test(test_gzip__many_text_blocks_join_into_one_stream_gzip_t_accepts),
	    cmocka_unit_test(test_gzip__incompressible_block_is_stored),
	    cmocka_unit_test(test_gzip__large_input_streams_through_bounded_memory),
	    cmocka_unit_test(test_gzip__levels_1_to_9_round_trip_and_others_are_refused),
	    cmocka_unit_test(test_gzip__every_level_and_small_size_joins),
	    cmocka_unit_test(test_gzip__sink_failure_is_returned_and_stream_is_dead),
	    cmocka_unit_test(test_gzip__output_for_a_fixed_input_is_pinned),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
