/* platforms/platform.h - platform strings and matching.
 *
 * Contract:
 *  - parse accepts "os/arch[/variant]" and plain architectures or aliases
 *    ("x86_64", "aarch64", "armhf", "i386", …, which imply os linux) and always
 *    returns the normalised form: arch in GOARCH spelling, arm64 variant "v8"
 *    dropped, arm without variant = "v7", "linux" lowercase. Unknown os or arch
 *    is -PLAIT_E_USAGE with a message that quotes the text and lists the known ones.
 *  - format gives the canonical string ("linux/arm/v7", "linux/arm64").
 *  - matching is one pure function with the usual rules (containerd's and
 *    BuildKit's): same os and arch; variants: arm64 v8 = no variant; arm v7
 *    accepts v6 and v5 images only when nothing better exists; amd64 v1..v4
 *    accept lower levels. */
#ifndef PLAIT_PLATFORM_H
#define PLAIT_PLATFORM_H

#include "core/oci.h"

int plait_platform_parse(const char *s, struct plait_platform *out, struct plait_error **err);
/* Parse a comma separated list ("linux/amd64,linux/arm64"); duplicates after
 * normalisation are an error. *out is a new array of *n platforms. */
int plait_platform_parse_list(const char *s, struct plait_platform **out, size_t *n,
			      struct plait_error **err);
void plait_platform_list_free(struct plait_platform *list, size_t n);
/* Normalise in place (used on platforms read from configs and indexes). */
void plait_platform_normalise(struct plait_platform *p);
/* "linux/arm/v7"; caller frees. */
char *plait_platform_format(const struct plait_platform *p);
bool plait_platform_equal(const struct plait_platform *a, const struct plait_platform *b);
/* The platform this process runs on (uname + /proc/cpuinfo for arm variants). */
void plait_platform_host(struct plait_platform *out);
/* How well have fits want: < 0 no match, otherwise higher is better (exact = best). */
int plait_platform_match_score(const struct plait_platform *want, const struct plait_platform *have);
/* Pick the index entry for want. Entries without platform are skipped.
 * -PLAIT_E_NOT_FOUND: "no image for linux/s390x in this index; it has linux/amd64, linux/arm64". */
int plait_platform_select(const struct plait_index *idx, const struct plait_platform *want,
			  size_t *pos, struct plait_error **err);
/* The list of known architectures (GOARCH names), NULL-terminated, for help texts. */
const char *const *plait_platform_known_arches(void);

#endif
