/* core/push_stream.c - layers uploaded as they are written (see push_stream.h). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include "push_stream.h"
#include "endpoint.h"
#include "error.h"
#include "util.h"
#include "core/banned.h"

struct upload {
	struct plait_push_stream *s;
	struct plait_blob_source src;  /* the writer's */
	struct plait_blob_source view; /* the same, ended by a stop */
	pthread_t t;
	struct upload *next;
};

struct plait_push_stream {
	plait_open_fn open;
	void *ctx;
	char *ref;
	const atomic_int *cancel; /* the job's */
	atomic_bool abort;
	pthread_mutex_t lock;
	struct upload *ups; /* under lock */
};

struct plait_push_stream *plait_push_stream_new(plait_open_fn open, void *ctx, const char *ref,
						 const atomic_int *cancel)
{
	struct plait_push_stream *s = xcalloc(1, sizeof(*s));
	s->open = open;
	s->ctx = ctx;
	s->ref = xstrdup(ref);
	s->cancel = cancel;
	atomic_init(&s->abort, false);
	pthread_mutex_init(&s->lock, NULL);
	return s;
}

static bool stopped(const struct plait_push_stream *s)
{
	return atomic_load(&s->abort) || (s->cancel && atomic_load(s->cancel));
}

/* The writer's answers, or "never" once the job stops: the upload's
 * session is then cancelled and its transfer aborted at the next read. */
static int64_t view_wait(void *ud, int64_t end)
{
	struct upload *u = ud;
	int64_t have = stopped(u->s) ? -1 : u->src.wait(u->src.ud, end);
	return stopped(u->s) ? -1 : have;
}

static int64_t view_grown(void *ud, int64_t end, char digest[PLAIT_SHA256_DIGEST_SIZE])
{
	struct upload *u = ud;
	digest[0] = 0;
	int64_t have = stopped(u->s) ? -1 : u->src.grown(u->src.ud, end, digest);
	return stopped(u->s) ? -1 : have;
}

static void *upload_main(void *arg)
{
	struct upload *u = arg;
	struct plait_push_stream *s = u->s;
	struct plait_endpoint *ep = NULL;
	struct plait_error *e = NULL;
	char digest[PLAIT_SHA256_DIGEST_SIZE];
	int64_t size = 0;
	/* Not worth a session, nor an endpoint: a layer complete below the
	 * minimum, or one that failed. A failed upload is publishing's to
	 * meet again, and to report. */
	int64_t have = u->view.grown(u->view.ud, PLAIT_PUSH_STREAM_MIN, digest);
	bool worth = have >= 0 && !(digest[0] && have < PLAIT_PUSH_STREAM_MIN);
	if (worth && s->open(s->ctx, s->ref, true, &ep, &e) >= 0 && ep->ops->put_growing_blob)
		(void)ep->ops->put_growing_blob(ep, &u->view, digest, &size, &e);
	plait_error_free(e);
	plait_endpoint_free(ep);
	plait_blob_source_release(&u->src);
	return NULL;
}

void plait_push_stream_writer(void *ctx, struct plait_blob_writer *w)
{
	struct plait_push_stream *s = ctx;
	struct upload *u = xcalloc(1, sizeof(*u));
	u->s = s;
	u->src.fd = -1;
	if (stopped(s) || plait_blob_writer_source(w, &u->src, NULL) < 0) {
		free(u);
		return;
	}
	u->view = (struct plait_blob_source){ .fd = u->src.fd, .wait = view_wait, .grown = view_grown, .ud = u };
	pthread_mutex_lock(&s->lock);
	if (pthread_create(&u->t, NULL, upload_main, u) != 0) {
		pthread_mutex_unlock(&s->lock);
		plait_blob_source_release(&u->src);
		free(u);
		return;
	}
	u->next = s->ups;
	s->ups = u;
	pthread_mutex_unlock(&s->lock);
}

void plait_push_stream_abort(struct plait_push_stream *s)
{
	if (s)
		atomic_store(&s->abort, true);
}

void plait_push_stream_free(struct plait_push_stream *s)
{
	if (!s)
		return;
	/* Every upload ends once its blob is complete and sent, or given up. */
	for (;;) {
		pthread_mutex_lock(&s->lock);
		struct upload *u = s->ups;
		if (u)
			s->ups = u->next;
		pthread_mutex_unlock(&s->lock);
		if (!u)
			break;
		pthread_join(u->t, NULL);
		free(u);
	}
	pthread_mutex_destroy(&s->lock);
	free(s->ref);
	free(s);
}
