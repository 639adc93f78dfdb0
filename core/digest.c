#include "digest.h"

#include <openssl/evp.h>
#include <stdio.h>

#include "cleanup.h"
#include "banned.h"

static const char hexdigits[] = "0123456789abcdef";

int plait_sha256_init(struct plait_sha256 *h, struct plait_error **err)
{
	/* h is treated as uninitialised ("struct plait_sha256 h;" then init is
	 * the natural use), so a fresh context every time; final frees it. */
	h->ctx = NULL;
	h->bytes = 0;
	_cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx)
		return plait_error_set(err, PLAIT_E_GENERIC,
				       "sha256: cannot allocate an OpenSSL digest context");
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		return plait_error_set(err, PLAIT_E_GENERIC,
				       "sha256: OpenSSL refused to start a digest");
	h->ctx = TAKE_PTR(ctx);
	return 0;
}

void plait_sha256_update(struct plait_sha256 *h, const void *data, size_t len)
{
	if (!len)
		return;
	/* EVP_DigestUpdate only fails on a context that was never initialised,
	 * which is a programming error. */
	if (EVP_DigestUpdate(h->ctx, data, len) != 1)
		abort();
	h->bytes += len;
}

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hexdigits[in[i] >> 4];
		out[2 * i + 1] = hexdigits[in[i] & 0xf];
	}
	out[2 * n] = '\0';
}

void plait_sha256_final(struct plait_sha256 *h, char out[PLAIT_SHA256_DIGEST_SIZE])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	if (EVP_DigestFinal_ex(h->ctx, md, &n) != 1 || n != 32)
		abort();
	EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
	memcpy(out, "sha256:", 7);
	hex_encode(md, n, out + 7);
}

void plait_sha256_peek(const struct plait_sha256 *h, char out[PLAIT_SHA256_DIGEST_SIZE])
{
	EVP_MD_CTX *copy = EVP_MD_CTX_new();
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	if (!copy || EVP_MD_CTX_copy_ex(copy, h->ctx) != 1 || EVP_DigestFinal_ex(copy, md, &n) != 1 || n != 32)
		abort();
	EVP_MD_CTX_free(copy);
	memcpy(out, "sha256:", 7);
	hex_encode(md, n, out + 7);
}

void plait_sha256_release(struct plait_sha256 *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
	h->bytes = 0;
}

void plait_sha256_buf(const void *data, size_t len, char out[PLAIT_SHA256_DIGEST_SIZE])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32)
		abort();
	memcpy(out, "sha256:", 7);
	hex_encode(md, n, out + 7);
}

struct algorithm {
	const char *name;
	size_t hex_len;
};

static const struct algorithm algorithms[] = {
    {"sha256", 64},
    {"sha512", 128},
};

static bool is_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return true;
}

/* Why s is not a digest, or NULL when it is one. */
static const char *digest_problem(const char *s)
{
	if (!s || !*s)
		return "empty digest";
	const char *colon = strchr(s, ':');
	if (!colon)
		return "expected '<algorithm>:<hex>', e.g. 'sha256:' followed by 64 hex digits";
	size_t alg_len = (size_t)(colon - s);
	const char *hex = colon + 1;
	size_t hex_len = strlen(hex);
	for (size_t i = 0; i < ARRAY_SIZE(algorithms); i++) {
		const struct algorithm *a = &algorithms[i];
		if (strlen(a->name) != alg_len || memcmp(a->name, s, alg_len) != 0)
			continue;
		if (hex_len != a->hex_len)
			return a->hex_len == 64 ? "sha256 digests have 64 hex digits"
						: "sha512 digests have 128 hex digits";
		if (!is_lower_hex(hex, hex_len))
			return "the encoded part must be lowercase hex (0-9, a-f)";
		return NULL;
	}
	return "unsupported algorithm (use sha256 or sha512)";
}

int plait_digest_validate(const char *s, struct plait_error **err)
{
	const char *why = digest_problem(s);
	if (!why)
		return 0;
	/* Bound what we echo back: the string may be attacker-sized. */
	if (s && strlen(s) > 200)
		return plait_error_set(err, PLAIT_E_INVALID, "'%.200s…' is not a valid digest: %s",
				       s, why);
	return plait_error_set(err, PLAIT_E_INVALID, "'%s' is not a valid digest: %s", s ? s : "",
			       why);
}

const char *plait_digest_hex(const char *digest)
{
	if (digest_problem(digest))
		return NULL;
	return strchr(digest, ':') + 1;
}

bool plait_digest_is_sha256(const char *digest)
{
	return digest && startswith(digest, "sha256:") && !digest_problem(digest);
}

void plait_digest_short(const char *digest, char out[20])
{
	/* "sha256:" + 12 hex = 19 characters + NUL; invalid input is truncated as is. */
	if (!digest) {
		out[0] = '\0';
		return;
	}
	const char *colon = strchr(digest, ':');
	size_t n;
	if (colon && (size_t)(colon - digest) <= 6)
		n = (size_t)(colon - digest) + 1 + 12;
	else
		n = 19;
	size_t len = strnlen(digest, n);
	memcpy(out, digest, len);
	out[len] = '\0';
}
