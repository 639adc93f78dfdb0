/* core/push_stream.c - layers uploaded as they are written (see push_stream.h). */
#include <pthread.h>
#include <stdlib.h>
#include "push_stream.h"
#include "endpoint.h"
#include "error.h"
#include "util.h"
#include "core/banned.h"

struct upload {
	struct plait_push_stream *s;
	struct plait_blob_source src;
	pthread_t t;
	struct upload *next;
};

struct plait_push_stream {
	plait_open_fn open;
	void *ctx;
	char *ref;
	pthread_mutex_t lock;
	struct upload *ups; /* under lock */
	size_t arrived;	    /* under lock */
};

struct plait_push_stream *plait_push_stream_new(plait_open_fn open, void *ctx, const char *ref)
{
	struct plait_push_stream *s = xcalloc(1, sizeof(*s));
	s->open = open;
	s->ctx = ctx;
	s->ref = xstrdup(ref);
	pthread_mutex_init(&s->lock, NULL);
	return s;
}

static void *upload_main(void *arg)
{
	struct upload *u = arg;
	struct plait_push_stream *s = u->s;
	struct plait_endpoint *ep = NULL;
	struct plait_error *e = NULL;
	char digest[PLAIT_SHA256_DIGEST_SIZE];
	int64_t size = 0;
	/* A small or failed layer opens nothing. */
	int64_t have = u->src.grown(u->src.ud, PLAIT_PUSH_STREAM_MIN, digest);
	int r = have < 0 || (digest[0] && have < PLAIT_PUSH_STREAM_MIN) ? -1 : 0;
	if (r >= 0)
		r = s->open(s->ctx, s->ref, true, &ep, &e);
	if (r >= 0 && ep->ops->put_growing_blob)
		r = ep->ops->put_growing_blob(ep, &u->src, PLAIT_PUSH_STREAM_MIN, digest, &size, &e);
	else
		r = 0;
	/* A failure is publishing's to meet again, and to report. */
	plait_error_free(e);
	plait_endpoint_free(ep);
	plait_blob_source_release(&u->src);
	if (r > 0) {
		pthread_mutex_lock(&s->lock);
		s->arrived++;
		pthread_mutex_unlock(&s->lock);
	}
	return NULL;
}

void plait_push_stream_writer(void *ctx, struct plait_blob_writer *w)
{
	struct plait_push_stream *s = ctx;
	struct upload *u = xcalloc(1, sizeof(*u));
	u->s = s;
	u->src.fd = -1;
	if (plait_blob_writer_source(w, &u->src, NULL) < 0) {
		free(u);
		return;
	}
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

size_t plait_push_stream_finish(struct plait_push_stream *s)
{
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
	pthread_mutex_lock(&s->lock);
	size_t n = s->arrived;
	pthread_mutex_unlock(&s->lock);
	return n;
}

void plait_push_stream_free(struct plait_push_stream *s)
{
	if (!s)
		return;
	plait_push_stream_finish(s);
	pthread_mutex_destroy(&s->lock);
	free(s->ref);
	free(s);
}
