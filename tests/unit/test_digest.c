/* Unit tests for core/digest: SHA-256 vectors, streaming, digest strings. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

#include "core/buf.h"
#include "core/digest.h"

#include "core/banned.h"

#define EMPTY_SHA256 "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define ABC_SHA256 "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
/* FIPS 180-2 two-block message. */
#define TWO_BLOCK_MSG "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
#define TWO_BLOCK_SHA256 "sha256:248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
#define MILLION_A_SHA256 "sha256:cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"

static void test_digest__empty_input_known_vector(void **state)
{
	(void)state;
	char out[PLAIT_SHA256_DIGEST_SIZE];
	plait_sha256_buf("", 0, out);
	assert_string_equal(out, EMPTY_SHA256);

	struct plait_sha256 h = {0};
	assert_int_equal(plait_sha256_init(&h, NULL), 0);
	plait_sha256_final(&h, out);
	assert_string_equal(out, EMPTY_SHA256);
	plait_sha256_release(&h);
}

static void test_digest__abc_known_vectors(void **state)
{
	(void)state;
	char out[PLAIT_SHA256_DIGEST_SIZE];
	plait_sha256_buf("abc", 3, out);
	assert_string_equal(out, ABC_SHA256);
	plait_sha256_buf(TWO_BLOCK_MSG, strlen(TWO_BLOCK_MSG), out);
	assert_string_equal(out, TWO_BLOCK_SHA256);
}

static void test_digest__million_a_streamed(void **state)
{
	(void)state;
	char chunk[1000];
	memset(chunk, 'a', sizeof(chunk));
	struct plait_sha256 h = {0};
	assert_int_equal(plait_sha256_init(&h, NULL), 0);
	for (int i = 0; i < 1000; i++)
		plait_sha256_update(&h, chunk, sizeof(chunk));
	assert_int_equal(h.bytes, 1000000);
	char out[PLAIT_SHA256_DIGEST_SIZE];
	plait_sha256_final(&h, out);
	assert_string_equal(out, MILLION_A_SHA256);
	plait_sha256_release(&h);
}

static void test_digest__odd_chunks_equal_one_shot(void **state)
{
	(void)state;
	size_t len = 100003;
	unsigned char *data = xmalloc(len);
	uint32_t x = 2463534242u;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		data[i] = (unsigned char)x;
	}
	char one[PLAIT_SHA256_DIGEST_SIZE];
	plait_sha256_buf(data, len, one);

	static const size_t chunk_sizes[] = {1, 3, 7, 63, 64, 65, 4095, 65537};
	for (size_t c = 0; c < ARRAY_SIZE(chunk_sizes); c++) {
		struct plait_sha256 h = {0};
		assert_int_equal(plait_sha256_init(&h, NULL), 0);
		for (size_t off = 0; off < len; off += chunk_sizes[c]) {
			size_t n = len - off < chunk_sizes[c] ? len - off : chunk_sizes[c];
			plait_sha256_update(&h, data + off, n);
		}
		char streamed[PLAIT_SHA256_DIGEST_SIZE];
		plait_sha256_final(&h, streamed);
		plait_sha256_release(&h);
		assert_string_equal(streamed, one);
	}
	free(data);
}

static void test_digest__hash_can_be_reinitialised_after_final(void **state)
{
	(void)state;
	struct plait_sha256 h = {0};
	char out[PLAIT_SHA256_DIGEST_SIZE];
	assert_int_equal(plait_sha256_init(&h, NULL), 0);
	plait_sha256_update(&h, "xyz", 3);
	plait_sha256_final(&h, out);
	assert_int_equal(plait_sha256_init(&h, NULL), 0);
	assert_int_equal(h.bytes, 0);
	plait_sha256_update(&h, "abc", 3);
	plait_sha256_final(&h, out);
	assert_string_equal(out, ABC_SHA256);
	plait_sha256_release(&h);
	plait_sha256_release(&h); /* twice is harmless */
}

struct validate_case {
	const char *digest;
	bool valid;
};

static const struct validate_case validate_cases[] = {
    {EMPTY_SHA256, true},
    {ABC_SHA256, true},
    {"sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff"
     "8318d2877eec2f63b931bd47417a81a538327af927da3e",
     true},
    /* uppercase hex */
    {"sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", false},
    /* uppercase algorithm */
    {"SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", false},
    /* one hex digit short / long */
    {"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85", false},
    {"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555", false},
    /* sha512 length with sha256 algorithm */
    {"sha256:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff"
     "8318d2877eec2f63b931bd47417a81a538327af927da3e",
     false},
    /* unknown algorithm */
    {"md5:d41d8cd98f00b204e9800998ecf8427e", false},
    {"sha384:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", false},
    /* missing colon */
    {"sha256e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", false},
    {"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", false},
    /* non-hex, path traversal, empty parts */
    {"sha256:g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", false},
    {"sha256:../../../../../../../../../../../../../../../../../../../../etc/pa", false},
    {"sha256:", false},
    {":e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", false},
    {"", false},
    {"sha256:zz", false},
};

static void test_digest__validate_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(validate_cases); i++) {
		const struct validate_case *c = &validate_cases[i];
		_cleanup_error_ struct plait_error *err = NULL;
		int r = plait_digest_validate(c->digest, &err);
		if (c->valid) {
			if (r != 0)
				fail_msg("'%s' should be valid, got: %s", c->digest,
					 err ? err->msg : "(no message)");
			assert_null(err);
		} else {
			if (r != -PLAIT_E_INVALID)
				fail_msg("'%s' should be rejected with -PLAIT_E_INVALID, got %d",
					 c->digest, r);
			assert_non_null(err);
			assert_int_equal(err->code, PLAIT_E_INVALID);
		}
	}
}

static void test_digest__validate_message_quotes_input(void **state)
{
	(void)state;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_digest_validate("sha256:zz", &err), -PLAIT_E_INVALID);
	assert_non_null(strstr(err->msg, "'sha256:zz' is not a valid digest"));
	assert_non_null(strstr(err->msg, "64 hex digits"));

	plait_error_clear(&err);
	assert_int_equal(plait_digest_validate("md5:00", &err), -PLAIT_E_INVALID);
	assert_non_null(strstr(err->msg, "unsupported algorithm"));
}

static void test_digest__validate_null_is_invalid(void **state)
{
	(void)state;
	assert_int_equal(plait_digest_validate(NULL, NULL), -PLAIT_E_INVALID);
	assert_null(plait_digest_hex(NULL));
	assert_false(plait_digest_is_sha256(NULL));
}

static void test_digest__hex_returns_encoded_part(void **state)
{
	(void)state;
	assert_string_equal(plait_digest_hex(ABC_SHA256), ABC_SHA256 + 7);
	assert_null(plait_digest_hex("sha256:zz"));
	assert_null(plait_digest_hex("nocolon"));
}

static void test_digest__is_sha256(void **state)
{
	(void)state;
	assert_true(plait_digest_is_sha256(EMPTY_SHA256));
	assert_false(plait_digest_is_sha256(
	    "sha512:"
	    "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff"
	    "8318d2877eec2f63b931bd47417a81a538327af927da3e"));
	assert_false(plait_digest_is_sha256("sha256:E3B0"));
}

static void test_digest__short_form(void **state)
{
	(void)state;
	char out[20];
	plait_digest_short(ABC_SHA256, out);
	assert_string_equal(out, "sha256:ba7816bf8f01");
	plait_digest_short("sha256:ab", out);
	assert_string_equal(out, "sha256:ab");
	plait_digest_short("a-very-long-string-without-colon", out);
	assert_int_equal(strlen(out), 19);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_digest__empty_input_known_vector),
	    cmocka_unit_test(test_digest__abc_known_vectors),
	    cmocka_unit_test(test_digest__million_a_streamed),
	    cmocka_unit_test(test_digest__odd_chunks_equal_one_shot),
	    cmocka_unit_test(test_digest__hash_can_be_reinitialised_after_final),
	    cmocka_unit_test(test_digest__validate_table),
	    cmocka_unit_test(test_digest__validate_message_quotes_input),
	    cmocka_unit_test(test_digest__validate_null_is_invalid),
	    cmocka_unit_test(test_digest__hex_returns_encoded_part),
	    cmocka_unit_test(test_digest__is_sha256),
	    cmocka_unit_test(test_digest__short_form),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
