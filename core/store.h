/* core/store.h - the content store: an OCI image layout directory
 * (oci-layout, index.json, blobs/<alg>/<hex>).
 *
 * Contract:
 *  - a blob is written to an unnamed temporary file in blobs/sha256/ (O_TMPFILE,
 *    or a dot-file when the file system lacks it), hashed while written,
 *    fsync'd, checked against the expected digest and size, and only then given
 *    its digest name (linkat/rename). A blob whose name is not its digest never
 *    appears, even after a crash; a mismatch leaves nothing behind.
 *  - concurrent writers of the same blob (threads or processes) are safe: the
 *    first to finish names it, the others see it exists and succeed.
 *  - index.json updates are atomic (write temp + rename) under an exclusive
 *    lock (flock on a lock file), so concurrent taggers do not lose entries.
 *  - tags are index.json entries with annotation org.opencontainers.image.ref.name. */
#ifndef PLAIT_STORE_H
#define PLAIT_STORE_H

#include "oci.h"

#define PLAIT_ANNOTATION_REF_NAME "org.opencontainers.image.ref.name"

struct plait_store;
struct plait_blob_writer;

/* Open the layout at path. With create, make it (and parents) if missing;
 * without, a missing or non-layout directory is -PLAIT_E_NOT_FOUND. */
int plait_store_open(const char *path, bool create, struct plait_store **out,
		     struct plait_error **err);
void plait_store_free(struct plait_store *s);
const char *plait_store_path(const struct plait_store *s);

/* 1 when the blob exists (its size in *size if not NULL), 0 when not, <0 on error. */
int plait_store_has(struct plait_store *s, const char *digest, int64_t *size,
		    struct plait_error **err);
/* The blob's file name (for messages and for handing to other tools). */
void plait_store_blob_path(const struct plait_store *s, const char *digest, struct plait_buf *out);
/* Open a blob for reading; -PLAIT_E_NOT_FOUND when absent. */
int plait_store_open_blob(struct plait_store *s, const char *digest, int *fd_out,
			  struct plait_error **err);
/* Read a whole blob into out, refusing blobs larger than max (-PLAIT_E_INVALID). */
int plait_store_read_blob(struct plait_store *s, const char *digest, size_t max,
			  struct plait_buf *out, struct plait_error **err);
/* Write data as a blob; its digest goes to digest_out. */
int plait_store_put_bytes(struct plait_store *s, const void *data, size_t len,
			  char digest_out[PLAIT_SHA256_DIGEST_SIZE], struct plait_error **err);
/* Remove a blob (no error when absent). */
int plait_store_remove_blob(struct plait_store *s, const char *digest, struct plait_error **err);

/* Streaming writer. expected_digest may be NULL (the digest is whatever was
 * written); expected_size may be -1 (unknown). */
int plait_blob_writer_new(struct plait_store *s, const char *expected_digest,
			  int64_t expected_size, struct plait_blob_writer **out,
			  struct plait_error **err);
int plait_blob_writer_write(struct plait_blob_writer *w, const void *data, size_t len,
			    struct plait_error **err);
/* Bytes written so far (a download resumes from here with Range). */
int64_t plait_blob_writer_offset(const struct plait_blob_writer *w);
/* Discard what was written and start again (a server that ignored Range). */
int plait_blob_writer_restart(struct plait_blob_writer *w, struct plait_error **err);
/* Has w been restarted? A reader of plait_blob_writer_source may then have
 * seen bytes that are gone (see core/copy.c's relay). Any thread. */
bool plait_blob_writer_restarted(const struct plait_blob_writer *w);
/* Compare what was written so far with the expected size and digest, without
 * committing (a source that may be wrong, such as a mirror, is checked before
 * the next one is asked): 0 when they match or nothing was expected, else
 * -PLAIT_E_INVALID as commit would say it. w goes on as before. */
int plait_blob_writer_check(const struct plait_blob_writer *w, struct plait_error **err);
/* Verify, fsync and name the blob. On digest or size mismatch: -PLAIT_E_INVALID
 * ("digest mismatch: expected sha256:…, got sha256:…"), nothing is stored.
 * digest_out may be NULL. The writer is spent either way; free it after. */
int plait_blob_writer_commit(struct plait_blob_writer *w, char digest_out[PLAIT_SHA256_DIGEST_SIZE],
			     struct plait_error **err);
/* Abandons an uncommitted writer (its temporary file disappears). NULL is fine. */
void plait_blob_writer_free(struct plait_blob_writer *w);

/* A readable view of blob bytes for uploads: fd read with pread (never its
 * offset). For a blob still being written, wait blocks until its first end
 * bytes exist and returns how many exist (>= end), or < 0 when they never will
 * (the writer was abandoned or came up short). wait is NULL for a complete file. */
struct plait_blob_source {
	int fd;
	int64_t (*wait)(void *ud, int64_t end);
	/* For a blob whose size is not known yet (a layer being compressed):
	 * blocks until at least end bytes exist or the writer is done, and
	 * returns how many exist; once the blob is complete (the count is then
	 * its size) it fills digest, else leaves digest[0] 0; < 0 when it never
	 * will be (abandoned, failed). NULL for a source that cannot tell. */
	int64_t (*grown)(void *ud, int64_t end, char digest[PLAIT_SHA256_DIGEST_SIZE]);
	void *ud;
};
/* A source over what w has written and will write, so a blob can be uploaded
 * while it is downloaded or written. It holds w: free and release may come
 * in either order, from different threads. */
int plait_blob_writer_source(struct plait_blob_writer *w, struct plait_blob_source *out,
			     struct plait_error **err);
/* Close a writer source's duplicate fd and let go of its writer. */
void plait_blob_source_release(struct plait_blob_source *src);
/* Give up on w: sources waiting on it fail. Commit and free do this as needed. */
void plait_blob_writer_abandon(struct plait_blob_writer *w);

/* A store for temporary copies (staging) need not survive a crash: skip the
 * fsyncs. Stores are durable unless told otherwise. */
void plait_store_set_durable(struct plait_store *s, bool durable);
/* How messages name the store ("oci:<path>" unless set): an archive's
 * temporary layout is named after the archive. */
void plait_store_set_display(struct plait_store *s, const char *display);

/* index.json */
int plait_store_read_index(struct plait_store *s, struct plait_index *out, struct plait_error **err);
/* Add desc to index.json. With ref_name, it is set as the ref.name annotation
 * and replaces any entry that had the same ref.name (moving the tag). */
int plait_store_tag(struct plait_store *s, const struct plait_descriptor *desc,
		    const char *ref_name, struct plait_error **err);
/* Find an image: ref NULL -> the only entry (error if there are several),
 * a digest -> that entry or any blob with that digest that is a manifest/index,
 * otherwise the entry whose ref.name is ref. -PLAIT_E_NOT_FOUND lists the tags there are. */
int plait_store_resolve(struct plait_store *s, const char *ref, struct plait_descriptor *out,
			struct plait_error **err);

#endif
