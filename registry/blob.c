/* registry/blob.c - blobs on a registry: HEAD, download (resumed with Range
 * after a dropped connection), cross-repository mount, and upload: one
 * POST+PUT up to MONOLITHIC_MAX (or the chunk size), else PATCHes that resume
 * from the registry's Range (see registry.h).
 *
 * An upload whose session was lost (404) or whose PATCH failed in a way the
 * registry cannot resume is started again from a new POST; whole new
 * sessions are bounded by max_tries too. */
#include "client.h"

#include <limits.h>
#include <stdio.h>

#include "core/digest.h"

#include "core/banned.h"

enum { UP_DONE = 0, UP_RESTART = 1 };
/* A growing blob goes in PATCHes of about this much, as it is written. */
#define STREAM_CHUNK ((int64_t)32 << 20)

static int upload_status(struct plait_registry *r, const char *repo, char **loc, int64_t *next,
			 struct plait_http_resp *resp, struct plait_error **e);

static int blob_path(const char *repo, const char *digest, struct plait_buf *out,
		     struct plait_error **err)
{
	if (!repo || !*repo)
		return plait_error_set(err, PLAIT_E_USAGE, "missing repository");
	int rc = plait_digest_validate(digest, err);
	if (rc < 0)
		return rc;
	plait_buf_addf(out, "/v2/%s/blobs/%s", repo, digest);
	return 0;
}

int plait_registry_has_blob(struct plait_registry *r, const char *repo, const char *digest,
			    int64_t *size, struct plait_error **err)
{
	struct plait_buf path = PLAIT_BUF_INIT;
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	int rc = blob_path(repo, digest, &path, err);
	if (rc < 0)
		goto out;
	struct rq q = { .method = "HEAD", .url = path.buf, .repo = repo, .access = ACCESS_PULL,
			.follow = true };
	rc = registry_request(r, &q, &resp, err);
	if (rc < 0)
		goto out;
	if (resp.status == 200) {
		if (size)
			*size = resp.content_length;
		rc = 1;
	} else if (resp.status == 404) {
		rc = 0;
	} else {
		rc = registry_unexpected(err, "HEAD", path.buf, &resp);
		plait_error_wrap(err, "check blob %s in %s/%s", digest, r->host, repo);
	}
out:
	plait_http_resp_release(&resp);
	plait_buf_release(&path);
	return rc;
}

int64_t registry_content_range_start(const char *content_range)
{
	long long from = -1;
	if (!content_range || sscanf(content_range, "bytes %lld-", &from) != 1 || from < 0)
		return -1;
	return from;
}

struct blob_sink {
	struct plait_blob_writer *w;
	int64_t size;
	int64_t start; /* offset asked for in this try */
	bool first;    /* no byte of this try seen yet */
	char range[64];
	const char *digest;
	const char *host;
	struct plait_error *err;
};

static const char *blob_range_header(void *ud)
{
	struct blob_sink *s = ud;
	s->start = plait_blob_writer_offset(s->w);
	s->first = true;
	if (s->start <= 0)
		return NULL;
	snprintf(s->range, sizeof(s->range), "Range: bytes=%lld-", (long long)s->start);
	return s->range;
}

static int blob_sink_write(void *ud, const struct plait_http_resp *resp, const void *data,
			   size_t len)
{
	struct blob_sink *s = ud;
	if (s->first) {
		s->first = false;
		if (s->start > 0 && resp->status == 200) {
			/* The server ignored Range: take the whole body again. */
			if (plait_blob_writer_restart(s->w, &s->err) < 0)
				return -1;
		} else if (s->start > 0 && resp->status == 206) {
			const char *cr = resp->content_range;
			if (registry_content_range_start(cr) != s->start) {
				plait_error_set(&s->err, PLAIT_E_INVALID,
						"registry %s answered range '%s' for blob %s when asked "
						"from byte %lld",
						s->host, cr ? cr : "", s->digest, (long long)s->start);
				return -1;
			}
		}
	}
	int64_t off = plait_blob_writer_offset(s->w);
	if (s->size >= 0 && off + (int64_t)len > s->size) {
		plait_error_set(&s->err, PLAIT_E_INVALID,
				"registry %s sent more than %lld bytes for blob %s", s->host,
				(long long)s->size, s->digest);
		return -1;
	}
	return plait_blob_writer_write(s->w, data, len, &s->err) < 0 ? -1 : 0;
}

int plait_registry_get_blob(struct plait_registry *r, const char *repo, const char *digest,
			    int64_t size, struct plait_blob_writer *w, struct plait_error **err)
{
	struct plait_buf path = PLAIT_BUF_INIT;
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	struct blob_sink s = { .w = w, .size = size, .digest = digest, .host = r->host };
	int rc = blob_path(repo, digest, &path, err);
	if (rc < 0)
		goto out;
	for (int round = 0;; round++) {
		int64_t off = plait_blob_writer_offset(w);
		if (size >= 0 && off > size) {
			rc = plait_blob_writer_restart(w, err);
			if (rc < 0)
				goto out;
			off = 0;
		}
		if (size >= 0 && off == size && off > 0) {
			rc = 0; /* already complete; commit verifies it */
			goto out;
		}
		struct rq q = { .method = "GET", .url = path.buf, .repo = repo, .access = ACCESS_PULL,
				.follow = true, .sink = blob_sink_write, .sink_ud = &s,
				.dyn_header = blob_range_header, .dyn_ud = &s };
		plait_error_clear(&s.err);
		rc = registry_request(r, &q, &resp, err);
		if (rc < 0 && resp.aborted && s.err) {
			/* the writer's own error says more than "transfer stopped" */
			rc = plait_error_set(err, s.err->code, "download blob %s from %s/%s: %s", digest,
					     r->host, repo, s.err->msg);
			goto out;
		}
		if (rc < 0) {
			plait_error_wrap(err, "download blob %s from %s/%s", digest, r->host, repo);
			goto out;
		}
		if (resp.status == 416 && off > 0 && round == 0) {
			/* our partial file does not fit what the registry has: start over */
			rc = plait_blob_writer_restart(w, err);
			if (rc < 0)
				goto out;
			continue;
		}
		if (resp.status == 404) {
			rc = plait_error_set(err, PLAIT_E_NOT_FOUND, "blob %s not found in %s/%s", digest,
					     r->host, repo);
			goto out;
		}
		if (resp.status != 200 && resp.status != 206) {
			rc = registry_unexpected(err, "GET", path.buf, &resp);
			plait_error_wrap(err, "download blob %s from %s/%s", digest, r->host, repo);
			goto out;
		}
		int64_t got = plait_blob_writer_offset(w);
		if (size >= 0 && got != size) {
			rc = plait_error_set(err, PLAIT_E_INVALID,
					     "download blob %s from %s/%s: got %lld of %lld bytes", digest,
					     r->host, repo, (long long)got, (long long)size);
			goto out;
		}
		rc = 0;
		goto out;
	}
out:
	plait_error_free(s.err);
	plait_http_resp_release(&resp);
	plait_buf_release(&path);
	return rc;
}

/* Resolve a Location header against the URL of the request that returned
 * it (a path under the registry's base, or absolute). */
static char *upload_url(struct plait_registry *r, const char *request_url, const char *location)
{
	if (!location || !*location)
		return NULL;
	if (request_url[0] != '/')
		return plait_http_resolve_url(request_url, location);
	pthread_mutex_lock(&r->lock);
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s%s", r->base ? r->base : "https://invalid", request_url);
	pthread_mutex_unlock(&r->lock);
	char *ret = plait_http_resolve_url(b.buf, location);
	plait_buf_release(&b);
	return ret;
}

/* Cancel an upload session; failures do not matter (sessions expire). */
static void cancel_upload(struct plait_registry *r, const char *repo, const char *from,
			  const char *url)
{
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	/* the mount's scope, so that its token is reused */
	struct rq q = { .method = "DELETE", .url = url, .repo = repo, .access = ACCESS_PUSH,
			.mount_from = from, .tries = 1 };
	registry_request(r, &q, &resp, NULL);
	plait_http_resp_release(&resp);
}

int plait_registry_mount_blob(struct plait_registry *r, const char *repo, const char *digest,
			      const char *from_repo, struct plait_error **err)
{
	struct plait_buf path = PLAIT_BUF_INIT;
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	int rc = plait_digest_validate(digest, err);
	if (rc < 0)
		goto out;
	if (!repo || !*repo || !from_repo || !*from_repo) {
		rc = plait_error_set(err, PLAIT_E_USAGE, "mount blob %s: missing repository", digest);
		goto out;
	}
	plait_buf_addf(&path, "/v2/%s/blobs/uploads/?mount=", repo);
	plait_http_add_escaped(&path, digest);
	plait_buf_adds(&path, "&from=");
	plait_http_add_escaped(&path, from_repo);
	struct rq q = { .method = "POST", .url = path.buf, .repo = repo, .access = ACCESS_PUSH,
			.mount_from = from_repo };
	rc = registry_request(r, &q, &resp, err);
	if (rc < 0) {
		plait_error_wrap(err, "mount blob %s from %s to %s/%s", digest, from_repo, r->host,
				 repo);
		goto out;
	}
	if (resp.status == 201) {
		rc = 1;
	} else if (resp.status == 202) {
		/* The registry opened an upload session instead: close it. */
		_cleanup_free_ char *url = upload_url(r, path.buf, resp.location);
		if (url)
			cancel_upload(r, repo, from_repo, url);
		rc = 0;
	} else {
		rc = registry_unexpected(err, "POST", path.buf, &resp);
		plait_error_wrap(err, "mount blob %s from %s to %s/%s", digest, from_repo, r->host,
				 repo);
	}
out:
	plait_http_resp_release(&resp);
	plait_buf_release(&path);
	return rc;
}

/* "0-N" -> N+1; -1 when absent or malformed. distribution reports an empty
 * upload as "0-0" too, so "0-0" reads as 0 (a wrong guess costs a restart). */
int64_t registry_range_next(const char *range)
{
	if (!range)
		return -1;
	if (startswith(range, "bytes="))
		range += strlen("bytes=");
	long long a, b;
	/* b == LLONG_MAX: out of range (sscanf saturates) and N+1 would overflow */
	if (sscanf(range, "%lld-%lld", &a, &b) != 2 || a != 0 || b < 0 || b == LLONG_MAX)
		return -1;
	return b == 0 ? 0 : b + 1;
}

static char *with_query(const char *url, const char *key, const char *value)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s%c%s=", url, strchr(url, '?') ? '&' : '?', key);
	plait_http_add_escaped(&b, value);
	return plait_buf_detach(&b, NULL);
}

/* The registry may have the blob after all (a final PUT whose answer was lost). */
static bool blob_arrived(struct plait_registry *r, const char *repo, const char *digest,
			 int64_t size)
{
	int64_t have = -1;
	int rc = plait_registry_has_blob(r, repo, digest, &have, NULL);
	return rc == 1 && (have < 0 || have == size);
}

/* The final PUT ?digest= (with the whole body for a monolithic upload).
 * UP_DONE, UP_RESTART (e says why), or <0. */
static int finish_upload(struct plait_registry *r, const char *repo, const char *digest,
			 int64_t size, const struct plait_blob_source *src, bool with_body,
			 const char *loc, bool resumed, struct plait_http_resp *resp,
			 struct plait_error **e)
{
	_cleanup_free_ char *session = xstrdup(loc);
	for (int tries = 1;; tries++) {
		_cleanup_free_ char *url = with_query(session, "digest", digest);
		/* Without a body the PUT only closes the session: registry_request() retries
		 * it in place. With a body a blind retry could append to the session. */
		struct rq q = { .method = "PUT", .url = url, .repo = repo, .access = ACCESS_PUSH,
				.hdrs = { "Content-Type: application/octet-stream" },
				.tries = with_body ? 1 : 0 };
		if (with_body) {
			q.body_from_fd = true;
			q.src = src;
			q.body_len = size;
		}
		int rc = registry_request(r, &q, resp, e);
		if (rc < 0) {
			if (!q.retryable_failure)
				return rc;
			/* No answer: the blob may have arrived and only the answer was lost. */
			if (resp->status == 0)
				return blob_arrived(r, repo, digest, size) ? UP_DONE : UP_RESTART;
			/* The registry answered 5xx/429: when the session still holds
			 * nothing, the same PUT can go again; otherwise start afresh. */
			int64_t held = -1;
			_cleanup_error_ struct plait_error *se = NULL;
			_cleanup_free_ char *retry_after = xstrdup_or_null(resp->retry_after);
			if (tries >= r->max_tries ||
			    upload_status(r, repo, &session, &held, resp, &se) != 0 || held != 0)
				return UP_RESTART;
			registry_backoff(r, tries, retry_after);
			resumed = true; /* "0-0" may also mean one byte: a 400 then restarts */
			continue;
		}
		if (resp->status == 201 || resp->status == 204) {
			if (resp->docker_digest && plait_digest_validate(resp->docker_digest, NULL) == 0 &&
			    !streq(resp->docker_digest, digest))
				return plait_error_set(e, PLAIT_E_INVALID, "registry stored it as %s",
						       resp->docker_digest);
			return UP_DONE;
		}
		if (resp->status == 404) {
			/* the session is gone: maybe because it completed */
			if (blob_arrived(r, repo, digest, size))
				return UP_DONE;
			registry_unexpected(e, "PUT", url, resp);
			return UP_RESTART;
		}
		if (resp->status == 400 && resumed) {
			/* a resumed upload that ended up wrong: a clean start fixes it */
			registry_unexpected(e, "PUT", url, resp);
			return UP_RESTART;
		}
		return registry_unexpected(e, "PUT", url, resp);
	}
}

/* Ask the registry how much of the upload it holds: 0 with *next (and maybe
 * a new *loc), UP_RESTART when the session is gone, or <0. */
static int upload_status(struct plait_registry *r, const char *repo, char **loc, int64_t *next,
			 struct plait_http_resp *resp, struct plait_error **e)
{
	struct rq q = { .method = "GET", .url = *loc, .repo = repo, .access = ACCESS_PUSH };
	int rc = registry_request(r, &q, resp, e);
	if (rc < 0)
		return rc;
	if (resp->status == 404 || resp->status == 400) {
		registry_unexpected(e, "GET", *loc, resp);
		return UP_RESTART;
	}
	if (resp->status != 204 && resp->status != 200)
		return registry_unexpected(e, "GET", *loc, resp);
	int64_t n = registry_range_next(resp->range);
	*next = n < 0 ? 0 : n;
	char *nl = upload_url(r, *loc, resp->location);
	if (nl) {
		free(*loc);
		*loc = nl;
	}
	return 0;
}

/* One upload session: POST, then PUT with the body, or PATCHes and a PUT.
 * UP_DONE, UP_RESTART (e says why), or <0 (*failed >= max_tries when out
 * of tries). */
static int upload_once(struct plait_registry *r, const char *repo, char *digest, int64_t *sizep,
		       const struct plait_blob_source *src, int *failed, struct plait_http_resp *resp,
		       struct plait_error **e)
{
	/* *sizep < 0: a blob still being written (src->grown), sent in chunks
	 * as it grows; its digest and size are filled in once it is complete. */
	int64_t size = *sizep;
	bool growing = size < 0;
	struct plait_buf path = PLAIT_BUF_INIT;
	plait_buf_addf(&path, "/v2/%s/blobs/uploads/", repo);
	struct rq q = { .method = "POST", .url = path.buf, .repo = repo, .access = ACCESS_PUSH };
	int rc = registry_request(r, &q, resp, e);
	if (rc == 0 && resp->status != 202 && resp->status != 201)
		rc = registry_unexpected(e, "POST", path.buf, resp);
	_cleanup_free_ char *loc = rc == 0 ? upload_url(r, path.buf, resp->location) : NULL;
	plait_buf_release(&path);
	if (rc < 0)
		return rc;
	if (resp->status == 201 && size >= 0) /* the registry took it without a body: it has it */
		return UP_DONE;
	if (!loc || resp->status == 201)
		return plait_error_set(e, PLAIT_E_GENERIC,
				       "registry started an upload without a valid Location");

	if (size >= 0 && size <= r->monolithic_max)
		return finish_upload(r, repo, digest, size, src, true, loc, false, resp, e);

	int64_t off = 0;
	bool resumed = false;
	while (size < 0 || off < size) {
		int64_t end = size; /* what can be sent: the blob, or what exists of it */
		if (size < 0) {
			char done[PLAIT_SHA256_DIGEST_SIZE];
			int64_t want = r->chunk_size < STREAM_CHUNK ? r->chunk_size : STREAM_CHUNK;
			end = src->grown(src->ud, off + want, done);
			if (end < 0) {
				rc = plait_error_set(e, PLAIT_E_CANCELLED, "the blob being sent was not completed");
				goto out;
			}
			if (done[0]) {
				memcpy(digest, done, PLAIT_SHA256_DIGEST_SIZE);
				*sizep = size = end;
				continue;
			}
		}
		int64_t n = end - off < r->chunk_size ? end - off : r->chunk_size;
		char crange[96];
		snprintf(crange, sizeof(crange), "Content-Range: %lld-%lld", (long long)off,
			 (long long)(off + n - 1));
		struct rq pq = { .method = "PATCH", .url = loc, .repo = repo, .access = ACCESS_PUSH,
				 .hdrs = { "Content-Type: application/octet-stream", crange },
				 .body_from_fd = true, .src = src, .off = off, .body_len = n,
				 .tries = 1 };
		rc = registry_request(r, &pq, resp, e);
		if (rc == 0 && resp->status == 202) {
			int64_t next = registry_range_next(resp->range);
			off = next > off ? next : off + n;
			char *nl = upload_url(r, loc, resp->location);
			if (nl) {
				free(loc);
				loc = nl;
			}
			*failed = 0;
			continue;
		}
		if (rc == 0 && resp->status == 404) {
			registry_unexpected(e, "PATCH", loc, resp);
			rc = UP_RESTART;
			goto out;
		}
		if (rc < 0 && !pq.retryable_failure)
			goto out;
		if (rc == 0 && resp->status != 416) {
			rc = registry_unexpected(e, "PATCH", loc, resp);
			goto out;
		}
		/* dropped connection, 5xx, or a range the registry disagrees with:
		 * ask what it holds and go on from there */
		if (rc == 0)
			rc = registry_unexpected(e, "PATCH", loc, resp);
		if (++*failed >= r->max_tries)
			goto out;
		registry_backoff(r, *failed, resp->retry_after);
		int64_t next = 0;
		rc = upload_status(r, repo, &loc, &next, resp, e);
		if (rc != 0)
			goto out;
		off = next;
		resumed = true;
	}
	rc = finish_upload(r, repo, digest, size, src, false, loc, resumed, resp, e);
out:
	/* A growing blob's session that did not complete is closed (the
	 * blob's size is known only once it is) rather than left to expire. */
	if (growing && rc != UP_DONE)
		cancel_upload(r, repo, NULL, loc);
	return rc;
}

/* put_blob, or with *size < 0 the growing upload: digest (PLAIT_DIGEST_MAX)
 * and *size are then filled in as the blob completes. */
static int put_blob(struct plait_registry *r, const char *repo, char *digest, int64_t *size,
		    const struct plait_blob_source *src, struct plait_error **err)
{
	int failed = 0, restarts = 0, rc;
	for (;;) {
		_cleanup_error_ struct plait_error *e = NULL;
		struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
		/* A restarted growing upload starts again from byte 0, of a blob
		 * that may be complete by now. */
		rc = upload_once(r, repo, digest, size, src, &failed, &resp, &e);
		_cleanup_free_ char *retry_after = xstrdup_or_null(resp.retry_after);
		plait_http_resp_release(&resp);
		if (rc == UP_DONE)
			return 0;
		/* failed resets whenever a chunk gets through, so whole new sessions
		 * are bounded on their own: a fault that recurs in every session
		 * must end in an error, not a loop. */
		if (rc == UP_RESTART && ++restarts >= r->max_tries)
			failed = r->max_tries;
		if (rc == UP_RESTART && ++failed < r->max_tries) {
			registry_backoff(r, failed, retry_after);
			continue;
		}
		const char *why = e ? e->msg : "failed";
		int code = e ? e->code : PLAIT_E_GENERIC;
		if (rc == UP_RESTART && code != PLAIT_E_NETWORK)
			code = PLAIT_E_RETRYABLE;
		const char *what = digest[0] ? digest : "being written";
		if (failed >= r->max_tries)
			return plait_error_set(err, code, "upload blob %s to %s/%s: %s after %d tries",
					       what, r->host, repo, why, failed);
		return plait_error_set(err, code, "upload blob %s to %s/%s: %s", what, r->host,
				       repo, why);
	}
}

int plait_registry_put_blob(struct plait_registry *r, const char *repo, const char *digest,
			    int64_t size, const struct plait_blob_source *src, struct plait_error **err)
{
	int rc = plait_digest_validate(digest, err);
	if (rc < 0)
		return rc;
	if (!repo || !*repo || size < 0)
		return plait_error_set(err, PLAIT_E_USAGE, "upload blob %s: missing repository or size",
				       digest);
	char d[PLAIT_DIGEST_MAX];
	snprintf(d, sizeof(d), "%s", digest);
	return put_blob(r, repo, d, &size, src, err);
}

int plait_registry_put_growing_blob(struct plait_registry *r, const char *repo,
				    const struct plait_blob_source *src, char digest[PLAIT_SHA256_DIGEST_SIZE],
				    int64_t *size, struct plait_error **err)
{
	if (!repo || !*repo || !src->grown)
		return plait_error_set(err, PLAIT_E_USAGE, "upload a growing blob: missing repository or source");
	char d[PLAIT_DIGEST_MAX] = "";
	int64_t n = -1;
	int rc = put_blob(r, repo, d, &n, src, err);
	if (rc < 0)
		return rc;
	memcpy(digest, d, PLAIT_SHA256_DIGEST_SIZE);
	*size = n;
	return 0;
}
