/* core/gzip.c - block-parallel, reproducible gzip; see gzip.h for the contract.
 *
 * libdeflate compresses a whole buffer and always ends its deflate stream
 * with a final block. To concatenate blocks into one stream, each block's
 * output is walked (block headers and Huffman symbols, no output written) to
 * find where its final block starts and where it ends; the BFINAL bit is
 * cleared and an empty stored block realigns to a byte when needed. The walk
 * is also a check: a block libdeflate wrote that does not parse is an error,
 * never a corrupt layer.
 *
 * Threads: the caller fills a ring of jobs (sequence numbers; slot = seq %
 * n_slots) and emits finished jobs in order; workers take queued jobs in
 * sequence order. One mutex, two condition variables. */
#include "gzip.h"

#include <endian.h>
#include <libdeflate.h>
#include <pthread.h>
#include <unistd.h>
#include <zlib.h>

#include "util.h"
#include "banned.h"

#define DEFAULT_LEVEL 6
#define STORED_MAX 65535

/* ---- walking a deflate stream ---- */

struct bitreader {
	const uint8_t *p;
	size_t n, pos; /* pos: bytes loaded into buf, zeros past n included */
	uint64_t buf;
	unsigned cnt;
};

static inline void br_refill(struct bitreader *b)
{
	if (b->cnt >= 48)
		return;
	if (b->pos + 8 <= b->n) {
		uint64_t v;
		memcpy(&v, b->p + b->pos, 8);
		b->buf |= le64toh(v) << b->cnt;
		b->pos += (63 - b->cnt) >> 3;
		b->cnt |= 56;
		return;
	}
	while (b->cnt <= 56) {
		uint64_t v = b->pos < b->n ? b->p[b->pos] : 0;
		b->buf |= v << b->cnt;
		b->pos++;
		b->cnt += 8;
	}
}

static inline uint64_t br_bitpos(const struct bitreader *b)
{
	return (uint64_t)b->pos * 8 - b->cnt;
}

/* n <= 32 bits; br_refill first. */
static inline uint32_t br_take(struct bitreader *b, unsigned n)
{
	uint32_t v = (uint32_t)(b->buf & ((1ULL << n) - 1));
	b->buf >>= n;
	b->cnt -= n;
	return v;
}

static uint32_t br_bits(struct bitreader *b, unsigned n)
{
	br_refill(b);
	return br_take(b, n);
}

#define FAST_BITS 10
#define MAX_CODE_BITS 15

struct huff {
	uint16_t count[MAX_CODE_BITS + 1];
	uint16_t symbol[320];
	uint16_t fast[1 << FAST_BITS]; /* (length << 9) | symbol; 0: decode slowly */
};

/* Canonical code from lengths. Incomplete codes are allowed (a stream with
 * one distance code has one); over-subscribed ones are not. */
static int huff_build(struct huff *h, const uint8_t *len, unsigned n)
{
	uint16_t offs[MAX_CODE_BITS + 2];
	memset(h->count, 0, sizeof(h->count));
	memset(h->fast, 0, sizeof(h->fast));
	for (unsigned s = 0; s < n; s++)
		h->count[len[s]]++;
	int left = 1;
	for (unsigned l = 1; l <= MAX_CODE_BITS; l++) {
		left = (left << 1) - h->count[l];
		if (left < 0)
			return -1;
	}
	offs[1] = 0;
	for (unsigned l = 1; l <= MAX_CODE_BITS; l++)
		offs[l + 1] = (uint16_t)(offs[l] + h->count[l]);
	unsigned next[MAX_CODE_BITS + 1], code = 0;
	h->count[0] = 0;
	for (unsigned l = 1; l <= MAX_CODE_BITS; l++) {
		code = (code + h->count[l - 1]) << 1;
		next[l] = code;
	}
	for (unsigned s = 0; s < n; s++) {
		unsigned l = len[s];
		if (!l)
			continue;
		h->symbol[offs[l]++] = (uint16_t)s;
		unsigned c = next[l]++;
		if (l > FAST_BITS)
			continue;
		unsigned rev = 0;
		for (unsigned i = 0; i < l; i++)
			rev |= ((c >> i) & 1) << (l - 1 - i);
		for (unsigned i = rev; i < (1u << FAST_BITS); i += 1u << l)
			h->fast[i] = (uint16_t)(l << 9 | s);
	}
	return 0;
}

/* The next symbol, or -1 for a code that is not in h. */
static inline int huff_decode(struct bitreader *b, const struct huff *h)
{
	br_refill(b);
	uint16_t e = h->fast[b->buf & ((1u << FAST_BITS) - 1)];
	if (e) {
		br_take(b, e >> 9);
		return e & 511;
	}
	unsigned code = 0, first = 0, index = 0;
	for (unsigned l = 1; l <= MAX_CODE_BITS; l++) {
		code |= (unsigned)(b->buf >> (l - 1)) & 1;
		unsigned count = h->count[l];
		if (code < first + count) {
			br_take(b, l);
			return h->symbol[index + (code - first)];
		}
		index += count;
		first = (first + count) << 1;
		code <<= 1;
	}
	return -1;
}

static int read_dynamic(struct bitreader *b, struct huff *lit, struct huff *dist)
{
	static const uint8_t order[19] = {16, 17, 18, 0, 8,  7, 9,  6, 10, 5,
					  11, 4,  12, 3, 13, 2, 14, 1, 15};
	unsigned nlit = br_bits(b, 5) + 257, ndist = br_bits(b, 5) + 1, ncl = br_bits(b, 4) + 4;
	if (nlit > 286 || ndist > 30)
		return -1;
	uint8_t cl[19] = {0}, lens[316] = {0};
	for (unsigned i = 0; i < ncl; i++)
		cl[order[i]] = (uint8_t)br_bits(b, 3);
	struct huff clh;
	if (huff_build(&clh, cl, 19) < 0)
		return -1;
	for (unsigned i = 0; i < nlit + ndist;) {
		int sym = huff_decode(b, &clh);
		unsigned rep, val = 0;
		if (sym < 0)
			return -1;
		if (sym < 16) {
			lens[i++] = (uint8_t)sym;
			continue;
		}
		if (sym == 16) {
			if (i == 0)
				return -1;
			val = lens[i - 1];
			rep = 3 + br_bits(b, 2);
		} else if (sym == 17) {
			rep = 3 + br_bits(b, 3);
		} else {
			rep = 11 + br_bits(b, 7);
		}
		if (i + rep > nlit + ndist)
			return -1;
		while (rep--)
			lens[i++] = (uint8_t)val;
	}
	if (!lens[256])
		return -1;
	if (huff_build(lit, lens, nlit) < 0 || huff_build(dist, lens + nlit, ndist) < 0)
		return -1;
	return 0;
}

static void fixed_codes(struct huff *lit, struct huff *dist)
{
	uint8_t l[288];
	for (unsigned i = 0; i < 288; i++)
		l[i] = i < 144 ? 8 : i < 256 ? 9 : i < 280 ? 7 : 8;
	huff_build(lit, l, 288);
	for (unsigned i = 0; i < 30; i++)
		l[i] = 5;
	huff_build(dist, l, 30);
}

/* Walk the compressed symbols of one block up to its end-of-block code. */
static int skip_symbols(struct bitreader *b, const struct huff *lit, const struct huff *dist)
{
	for (;;) {
		if (b->pos > b->n + 16) /* ran past the end on zeros */
			return -1;
		int sym = huff_decode(b, lit);
		if (sym < 0 || sym > 285)
			return -1;
		if (sym < 256)
			continue;
		if (sym == 256)
			return 0;
		unsigned s = (unsigned)sym - 257;
		unsigned extra = s < 8 || s == 28 ? 0 : s / 4 - 1;
		if (extra)
			br_bits(b, extra);
		int d = huff_decode(b, dist);
		if (d < 0 || d > 29)
			return -1;
		if (d >= 4)
			br_bits(b, (unsigned)d / 2 - 1);
	}
}

struct walk_scratch {
	struct huff lit, dist;
};

/* Find the bit where the final block's header starts and the bit after its
 * end. Returns 0, or -1 when p[0..n) is not one complete deflate stream. */
static int walk_stream(const uint8_t *p, size_t n, struct walk_scratch *ws, uint64_t *final_bit,
		       uint64_t *end_bit)
{
	struct bitreader b = {.p = p, .n = n};
	for (;;) {
		uint64_t start = br_bitpos(&b);
		unsigned hdr = br_bits(&b, 3);
		bool last = hdr & 1;
		switch (hdr >> 1) {
		case 0: { /* stored: to the byte boundary, LEN, NLEN, LEN bytes */
			br_take(&b, b.cnt % 8);
			uint32_t len = br_bits(&b, 16), nlen = br_bits(&b, 16);
			if ((len ^ 0xffff) != nlen)
				return -1;
			uint64_t at = br_bitpos(&b) / 8 + len;
			if (at > n)
				return -1;
			b.pos = (size_t)at;
			b.buf = 0;
			b.cnt = 0;
			break;
		}
		case 1:
			fixed_codes(&ws->lit, &ws->dist);
			if (skip_symbols(&b, &ws->lit, &ws->dist) < 0)
				return -1;
			break;
		case 2:
			if (read_dynamic(&b, &ws->lit, &ws->dist) < 0 ||
			    skip_symbols(&b, &ws->lit, &ws->dist) < 0)
				return -1;
			break;
		default:
			return -1;
		}
		if (br_bitpos(&b) > (uint64_t)n * 8)
			return -1;
		if (last) {
			*final_bit = start;
			*end_bit = br_bitpos(&b);
			return (*end_bit + 7) / 8 == n ? 0 : -1;
		}
	}
}

/* ---- one block ---- */

/* Nearly uniform bytes: 256 * sum(count^2) <= n^2 * (1 + 1/32). Integers only,
 * so the choice is the same on every host. */
static bool looks_incompressible(const uint8_t *p, size_t n)
{
	uint32_t c[4][256] = {{0}};
	size_t i = 0;
	for (; i + 4 <= n; i += 4) {
		c[0][p[i]]++;
		c[1][p[i + 1]]++;
		c[2][p[i + 2]]++;
		c[3][p[i + 3]]++;
	}
	for (; i < n; i++)
		c[0][p[i]]++;
	uint64_t sq = 0;
	for (unsigned v = 0; v < 256; v++) {
		uint64_t k = (uint64_t)c[0][v] + c[1][v] + c[2][v] + c[3][v];
		sq += k * k;
	}
	uint64_t nn = (uint64_t)n * n;
	return 256 * sq <= nn + nn / 32;
}

static size_t stored_bound(size_t n)
{
	return n + 5 * (n / STORED_MAX + 1);
}

static size_t store_blocks(const uint8_t *in, size_t n, uint8_t *out)
{
	size_t o = 0;
	while (n) {
		size_t m = n < STORED_MAX ? n : STORED_MAX;
		out[o++] = 0; /* BFINAL 0, BTYPE 00, padding: the stream is byte-aligned here */
		out[o++] = (uint8_t)m;
		out[o++] = (uint8_t)(m >> 8);
		out[o++] = (uint8_t)~m;
		out[o++] = (uint8_t)(~m >> 8);
		memcpy(out + o, in, m);
		o += m;
		in += m;
		n -= m;
	}
	return o;
}

struct job {
	uint8_t *in, *out;
	size_t in_len, out_len, out_cap;
	uint32_t crc;
	bool failed;
};

struct worker_ctx {
	struct libdeflate_compressor *c;
	struct walk_scratch ws;
};

/* Compress job->in into job->out as a non-final, byte-aligned deflate piece. */
static void compress_job(struct job *j, struct worker_ctx *w)
{
	j->crc = (uint32_t)libdeflate_crc32(0, j->in, j->in_len);
	j->failed = false;
	if (looks_incompressible(j->in, j->in_len)) {
		j->out_len = store_blocks(j->in, j->in_len, j->out);
		return;
	}
	size_t n = libdeflate_deflate_compress(w->c, j->in, j->in_len, j->out, j->out_cap - 5);
	uint64_t final_bit, end_bit;
	if (!n || walk_stream(j->out, n, &w->ws, &final_bit, &end_bit) < 0) {
		j->failed = true;
		return;
	}
	j->out[final_bit / 8] &= (uint8_t) ~(1u << (final_bit % 8));
	unsigned r = (unsigned)(end_bit % 8);
	if (r) {
		j->out[n - 1] &= (uint8_t)((1u << r) - 1);
		/* An empty stored block: 3 header bits (zeros) after the end, then
		 * to the byte boundary, LEN 0, NLEN ffff. */
		if (r > 5)
			j->out[n++] = 0;
		j->out[n++] = 0;
		j->out[n++] = 0;
		j->out[n++] = 0xff;
		j->out[n++] = 0xff;
	}
	j->out_len = n;
}

/* ---- the stream ---- */

struct plait_gzip {
	int level;
	unsigned threads;
	plait_gzip_sink_fn sink;
	void *ud;
	bool started, dead;
	uint32_t crc;
	uint64_t total;

	struct job *slots;
	size_t n_slots;
	uint64_t n_sub, n_taken, n_emit; /* blocks submitted, taken by a worker, emitted */
	bool *done;
	size_t fill; /* bytes in the slot of sequence n_sub */
	struct worker_ctx inline_ctx;

	pthread_mutex_t lock;
	pthread_cond_t work, finished;
	pthread_t *tids;
	unsigned n_tids;
	bool stop;
};

unsigned plait_gzip_default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		return 1;
	return n > PLAIT_GZIP_MAX_THREADS ? PLAIT_GZIP_MAX_THREADS : (unsigned)n;
}

static int ctx_init(struct worker_ctx *w, int level)
{
	w->c = libdeflate_alloc_compressor(level);
	return w->c ? 0 : -1;
}

static void *worker_main(void *arg)
{
	struct plait_gzip *g = arg;
	struct worker_ctx *w = xcalloc(1, sizeof(*w));
	if (ctx_init(w, g->level) < 0)
		plait_die_oom();
	pthread_mutex_lock(&g->lock);
	for (;;) {
		while (g->n_taken == g->n_sub && !g->stop)
			pthread_cond_wait(&g->work, &g->lock);
		if (g->n_taken == g->n_sub)
			break;
		size_t slot = (size_t)(g->n_taken++ % g->n_slots);
		pthread_mutex_unlock(&g->lock);
		compress_job(&g->slots[slot], w);
		pthread_mutex_lock(&g->lock);
		g->done[slot] = true;
		pthread_cond_broadcast(&g->finished);
	}
	pthread_mutex_unlock(&g->lock);
	libdeflate_free_compressor(w->c);
	free(w);
	return NULL;
}

int plait_gzip_new(int level, unsigned threads, plait_gzip_sink_fn sink, void *ud,
		   struct plait_gzip **out, struct plait_error **err)
{
	*out = NULL;
	if (!level)
		level = DEFAULT_LEVEL;
	if (level < 1 || level > 9)
		return plait_error_set(err, PLAIT_E_INVALID, "gzip: level %d is not valid (1-9)",
				       level);
	if (!threads)
		threads = plait_gzip_default_threads();
	if (threads > PLAIT_GZIP_MAX_THREADS)
		threads = PLAIT_GZIP_MAX_THREADS;
	struct plait_gzip *g = xcalloc(1, sizeof(*g));
	g->level = level;
	g->threads = threads;
	g->sink = sink;
	g->ud = ud;
	g->n_slots = threads == 1 ? 1 : threads + 2;
	g->slots = xcalloc(g->n_slots, sizeof(*g->slots));
	g->done = xcalloc(g->n_slots, sizeof(*g->done));
	if (ctx_init(&g->inline_ctx, level) < 0)
		plait_die_oom();
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->work, NULL);
	pthread_cond_init(&g->finished, NULL);
	*out = g;
	return 0;
}

static int emit(struct plait_gzip *g, const void *data, size_t len, struct plait_error **err)
{
	int r = g->sink(g->ud, data, len, err);
	if (r < 0)
		g->dead = true;
	return r;
}

static int start(struct plait_gzip *g, struct plait_error **err)
{
	static const uint8_t header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255};
	if (g->started)
		return 0;
	g->started = true;
	return emit(g, header, sizeof(header), err);
}

/* Hand the oldest job to the sink (waiting for it), freeing its slot. */
static int emit_oldest(struct plait_gzip *g, struct plait_error **err)
{
	size_t slot = (size_t)(g->n_emit % g->n_slots);
	pthread_mutex_lock(&g->lock);
	while (!g->done[slot])
		pthread_cond_wait(&g->finished, &g->lock);
	g->done[slot] = false;
	pthread_mutex_unlock(&g->lock);
	g->n_emit++;
	struct job *j = &g->slots[slot];
	if (j->failed) {
		g->dead = true;
		return plait_error_set(err, PLAIT_E_GENERIC,
				       "gzip: libdeflate's output for block %llu (%zu bytes at "
				       "offset %llu) does not parse as deflate: a bug, report it",
				       (unsigned long long)(g->n_emit - 1), j->in_len,
				       (unsigned long long)((g->n_emit - 1) * PLAIT_GZIP_BLOCK));
	}
	g->crc = (uint32_t)crc32_combine(g->crc, j->crc, (z_off_t)j->in_len);
	g->total += j->in_len;
	int r = start(g, err);
	return r < 0 ? r : emit(g, j->out, j->out_len, err);
}

/* Start the workers; fewer than asked is fine. Returns the last error. */
static int start_workers(struct plait_gzip *g)
{
	int e = 0;
	g->tids = xcalloc(g->threads, sizeof(*g->tids));
	for (unsigned i = 0; i < g->threads; i++) {
		if ((e = pthread_create(&g->tids[g->n_tids], NULL, worker_main, g)) == 0)
			g->n_tids++;
	}
	return e;
}

/* Submit the block being filled (fill > 0). */
static int submit(struct plait_gzip *g, struct plait_error **err)
{
	size_t slot = (size_t)(g->n_sub % g->n_slots);
	g->slots[slot].in_len = g->fill;
	g->fill = 0;
	if (g->threads == 1) {
		compress_job(&g->slots[slot], &g->inline_ctx);
		g->n_sub++;
		g->n_taken++;
		g->done[slot] = true;
		return emit_oldest(g, err);
	}
	if (!g->n_tids && g->n_sub == 0) {
		/* The first block waits: if it is the only one, no thread starts. */
		g->n_sub++;
		return 0;
	}
	if (!g->n_tids) {
		int e = start_workers(g);
		if (!g->n_tids) {
			g->dead = true;
			return plait_error_set_errno(err, PLAIT_E_GENERIC, e,
						     "gzip: cannot start a compression thread");
		}
	}
	pthread_mutex_lock(&g->lock);
	g->n_sub++;
	pthread_cond_broadcast(&g->work);
	pthread_mutex_unlock(&g->lock);
	return 0;
}

/* The slot for sequence n_sub, emptied and with buffers. */
static int claim_slot(struct plait_gzip *g, struct plait_error **err)
{
	while (g->n_sub - g->n_emit >= g->n_slots) {
		int r = emit_oldest(g, err);
		if (r < 0)
			return r;
	}
	struct job *j = &g->slots[g->n_sub % g->n_slots];
	if (!j->in) {
		j->in = xmalloc(PLAIT_GZIP_BLOCK);
		size_t b = libdeflate_deflate_compress_bound(g->inline_ctx.c, PLAIT_GZIP_BLOCK);
		size_t s = stored_bound(PLAIT_GZIP_BLOCK);
		j->out_cap = (b > s ? b : s) + 5;
		j->out = xmalloc(j->out_cap);
	}
	return 0;
}

int plait_gzip_write(struct plait_gzip *g, const void *data, size_t len, struct plait_error **err)
{
	if (g->dead)
		return plait_error_set(err, PLAIT_E_GENERIC, "gzip: write after a failure");
	const uint8_t *p = data;
	while (len) {
		int r;
		if (g->fill == 0 && (r = claim_slot(g, err)) < 0)
			return r;
		struct job *j = &g->slots[g->n_sub % g->n_slots];
		size_t m = PLAIT_GZIP_BLOCK - g->fill;
		if (m > len)
			m = len;
		memcpy(j->in + g->fill, p, m);
		g->fill += m;
		p += m;
		len -= m;
		if (g->fill == PLAIT_GZIP_BLOCK && (r = submit(g, err)) < 0)
			return r;
	}
	return 0;
}

int plait_gzip_finish(struct plait_gzip *g, struct plait_error **err)
{
	if (g->dead)
		return plait_error_set(err, PLAIT_E_GENERIC, "gzip: finish after a failure");
	int r;
	if (g->fill && (r = submit(g, err)) < 0)
		return r;
	/* A single block that waited for a second one: compress it here. */
	if (g->n_sub == 1 && g->n_taken == 0 && !g->n_tids) {
		size_t slot = 0;
		compress_job(&g->slots[slot], &g->inline_ctx);
		g->n_taken = 1;
		g->done[slot] = true;
	}
	while (g->n_emit < g->n_sub)
		if ((r = emit_oldest(g, err)) < 0)
			return r;
	if ((r = start(g, err)) < 0)
		return r;
	uint8_t tail[10] = {0x03, 0x00}; /* empty final fixed block */
	for (unsigned i = 0; i < 4; i++) {
		tail[2 + i] = (uint8_t)(g->crc >> (8 * i));
		tail[6 + i] = (uint8_t)(g->total >> (8 * i));
	}
	g->dead = true;
	return emit(g, tail, sizeof(tail), err);
}

void plait_gzip_free(struct plait_gzip *g)
{
	if (!g)
		return;
	if (g->n_tids) {
		pthread_mutex_lock(&g->lock);
		g->stop = true;
		/* Queued jobs nobody will emit are dropped, not compressed. */
		g->n_sub = g->n_taken;
		pthread_cond_broadcast(&g->work);
		pthread_mutex_unlock(&g->lock);
		for (unsigned i = 0; i < g->n_tids; i++)
			pthread_join(g->tids[i], NULL);
	}
	free(g->tids);
	for (size_t i = 0; i < g->n_slots; i++) {
		free(g->slots[i].in);
		free(g->slots[i].out);
	}
	free(g->slots);
	free(g->done);
	libdeflate_free_compressor(g->inline_ctx.c);
	pthread_mutex_destroy(&g->lock);
	pthread_cond_destroy(&g->work);
	pthread_cond_destroy(&g->finished);
	free(g);
}
