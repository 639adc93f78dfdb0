/* core/platform.h - platforms as data: the struct, its strings, matching, and
 * choosing the entries of an image index for some platforms.
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
 *    accept lower levels.
 *  - architectures and their aliases are one table each (core/platform.c);
 *    nothing else in plait spells them out.
 *  - everything here is pure (no files, no uname) except plait_platform_narrow(),
 *    which reads through the endpoint it is given; the host's own platform is
 *    platforms/host.h's. */
#ifndef PLAIT_CORE_PLATFORM_H
#define PLAIT_CORE_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

struct plait_platform {
	char *os;	    /* "linux" */
	char *architecture; /* GOARCH: "amd64", "arm64", "arm", … */
	char *variant;	    /* "v7", or NULL */
	char *os_version;   /* or NULL */
	char **os_features; /* NULL-terminated, or NULL */
};
/* Embedded: frees what p points to; a zeroed struct is fine. */
void plait_platform_release(struct plait_platform *p);
/* dst is treated as uninitialised. */
void plait_platform_copy(struct plait_platform *dst, const struct plait_platform *src);

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
/* How well have fits want: < 0 no match, otherwise higher is better (exact = best). */
int plait_platform_match_score(const struct plait_platform *want,
			       const struct plait_platform *have);
/* The list of known architectures (GOARCH names), NULL-terminated, for help texts. */
const char *const *plait_platform_known_arches(void);

/* The platform uname(2)'s sysname and machine name, normalised. A 32-bit arm
 * machine whose name does not say its level ("arm", "armv8l") takes its
 * variant from arm_variant(), called only then (the host reads /proc/cpuinfo).
 * An unknown machine name is kept lowercased as the architecture. */
void plait_platform_from_uname(const char *sysname, const char *machine,
			       const char *(*arm_variant)(void), struct plait_platform *out);
/* The arm variant a /proc/cpuinfo text's "CPU architecture: N" line means
 * ("v5", "v6", else "v7": 8 is a 32-bit process on an ARMv8 CPU); NULL text = "v7". */
const char *plait_platform_arm_variant_from_cpuinfo(const char *cpuinfo);

/* ---- choosing index entries ---- */

struct plait_index;
struct plait_descriptor;
struct plait_buf;
struct plait_endpoint;

/* Pick the index entry for want. Entries without platform are skipped.
 * -PLAIT_E_NOT_FOUND: "no image for linux/s390x in this index; it has linux/amd64, linux/arm64". */
int plait_platform_select(const struct plait_index *idx, const struct plait_platform *want,
			  size_t *pos, struct plait_error **err);
/* A new index (*out, initialised here) with, for each wanted platform in the
 * order asked, its best entry (plait_platform_select()); mediaType,
 * artifactType and annotations are the index's. A platform with no entry is
 * -PLAIT_E_NOT_FOUND naming it and listing what the index has. */
int plait_index_select_platforms(const struct plait_index *idx, const struct plait_platform *want,
				 size_t n, struct plait_index *out, struct plait_error **err);
/* Narrow the image read from ep (bytes in *data, described by *root) to the
 * platforms in want: one platform replaces root and data with that platform's
 * manifest, several with a new index of just those entries (the index as it is
 * when it already lists exactly those, so its digest holds). A manifest is left
 * alone when it matches (read from its config) and refused when it does not.
 * Errors name ep->display. */
int plait_platform_narrow(struct plait_endpoint *ep, struct plait_descriptor *root,
			  struct plait_buf *data, const struct plait_platform *want, size_t n,
			  struct plait_error **err);

#endif
