/* fuzz_oci - OCI JSON (core/oci.h): the input as a manifest, an index and an
 * image config; what parses is serialised, and the serialisation must parse
 * again. Run: make fuzz (see the README, Fuzzing). */
#include "fuzz.h"

#include "core/buf.h"
#include "core/error.h"
#include "core/oci.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 256 * 1024)
		return 0;
	const char *s = (const char *)data;
	struct plait_error *err = NULL;
	(void)plait_oci_sniff(s, size);

	struct plait_manifest m = { 0 };
	if (plait_manifest_parse(s, size, &m, &err) == 0) {
		struct plait_buf b = PLAIT_BUF_INIT;
		if (plait_manifest_serialise(&m, &b, &err) == 0) {
			struct plait_manifest m2 = { 0 };
			if (plait_manifest_parse(b.buf, b.len, &m2, &err) != 0)
				abort(); /* a serialised manifest does not parse */
			plait_manifest_release(&m2);
		}
		plait_buf_release(&b);
	}
	plait_manifest_release(&m);
	plait_error_free(err);
	err = NULL;

	struct plait_index idx = { 0 };
	if (plait_index_parse(s, size, &idx, &err) == 0) {
		struct plait_buf b = PLAIT_BUF_INIT;
		if (plait_index_serialise(&idx, &b, &err) == 0) {
			struct plait_index i2 = { 0 };
			if (plait_index_parse(b.buf, b.len, &i2, &err) != 0)
				abort(); /* a serialised index does not parse */
			plait_index_release(&i2);
		}
		plait_buf_release(&b);
	}
	plait_index_release(&idx);
	plait_error_free(err);
	err = NULL;

	struct plait_image_config c = { 0 };
	if (plait_image_config_parse(s, size, &c, &err) == 0) {
		struct plait_buf b = PLAIT_BUF_INIT;
		if (plait_image_config_serialise(&c, &b, &err) == 0) {
			struct plait_image_config c2 = { 0 };
			if (plait_image_config_parse(b.buf, b.len, &c2, &err) != 0)
				abort(); /* a serialised config does not parse */
			plait_image_config_release(&c2);
		}
		plait_buf_release(&b);
	}
	plait_image_config_release(&c);
	plait_error_free(err);
	return 0;
}
