/* core/digest.h - content digests: streaming SHA-256 through OpenSSL's EVP
 * interface and digest strings ("sha256:<64 lowercase hex>").
 *
 * Contract: a digest string handed between modules is always validated and
 * lowercase; PLAIT_DIGEST_MAX bytes hold any digest plait produces or accepts
 * (sha256 and sha512). Only sha256 is produced. */
#ifndef PLAIT_DIGEST_H
#define PLAIT_DIGEST_H

#include "error.h"

/* "sha512:" + 128 hex + NUL */
#define PLAIT_DIGEST_MAX 136
/* "sha256:" + 64 hex + NUL */
#define PLAIT_SHA256_DIGEST_SIZE 72

struct plait_sha256 {
	void *ctx; /* EVP_MD_CTX *, kept opaque so callers need not include OpenSSL */
	uint64_t bytes;
};

/* Start a hash. Returns 0 or -PLAIT_E_GENERIC when OpenSSL fails. */
int plait_sha256_init(struct plait_sha256 *h, struct plait_error **err);
void plait_sha256_update(struct plait_sha256 *h, const void *data, size_t len);
/* Finish into out ("sha256:…", NUL-terminated). The hash may be re-initialised after. */
void plait_sha256_final(struct plait_sha256 *h, char out[PLAIT_SHA256_DIGEST_SIZE]);
/* The digest of what h has seen so far; h goes on as before. */
void plait_sha256_peek(const struct plait_sha256 *h, char out[PLAIT_SHA256_DIGEST_SIZE]);
void plait_sha256_release(struct plait_sha256 *h);
/* One-shot digest of a buffer. */
void plait_sha256_buf(const void *data, size_t len, char out[PLAIT_SHA256_DIGEST_SIZE]);

/* Check that s is "<alg>:<hex>" with alg sha256 (64 hex) or sha512 (128 hex),
 * lowercase. Returns 0 or -PLAIT_E_INVALID with a message quoting s. */
int plait_digest_validate(const char *s, struct plait_error **err);
/* The encoded part after "alg:", or NULL for an invalid digest. */
const char *plait_digest_hex(const char *digest);
/* true when digest is a valid "sha256:…" string. */
bool plait_digest_is_sha256(const char *digest);
/* "sha256:abcdef012345" - the first 12 hex characters, for messages and tables. */
void plait_digest_short(const char *digest, char out[20]);

#endif
