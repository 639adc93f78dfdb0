/* core/platform.c - platforms as data: parse, normalise, format, match, and
 * choosing index entries for some platforms; see platform.h.
 *
 * Everything goes through two tables: architectures (GOARCH name, the variants
 * it knows in ascending order) and the aliases people and uname(2) use for them.
 * Normalisation works on a fixed-size "view" so matching stays allocation-free. */
#include "platform.h"

#include "buf.h"
#include "digest.h"
#include "endpoint.h"
#include "oci.h"

#include <ctype.h>
#include <strings.h>

#include "banned.h"

enum arch_id {
	ARCH_AMD64,
	ARCH_ARM64,
	ARCH_ARM,
	ARCH_386,
	ARCH_PPC64LE,
	ARCH_S390X,
	ARCH_RISCV64,
	ARCH_MIPS64LE,
	ARCH_LOONG64,
	_ARCH_MAX,
	ARCH_UNKNOWN = -1,
};

static const char *const amd64_variants[] = {"v1", "v2", "v3", "v4", NULL};
static const char *const arm64_variants[] = {
    "v8",   "v8.1", "v8.2", "v8.3", "v8.4", "v8.5", "v8.6", "v8.7", "v8.8",
    "v8.9", "v9",   "v9.1", "v9.2", "v9.3", "v9.4", "v9.5", NULL,
};
static const char *const arm_variants[] = {"v5", "v6", "v7", "v8", NULL};

static const struct arch_info {
	const char *goarch;
	/* Known variants, oldest first: an image built for one runs on the later ones. */
	const char *const *variants;
	/* The variant that means the same as none, dropped when normalising. */
	const char *none_is;
	/* The variant assumed when none is given (arm: v7, as containerd does). */
	const char *default_variant;
	/* How the architecture is listed in help and error texts. */
	const char *help;
} arches[_ARCH_MAX] = {
    [ARCH_AMD64] = {"amd64", amd64_variants, "v1", NULL, "amd64"},
    [ARCH_ARM64] = {"arm64", arm64_variants, "v8", NULL, "arm64"},
    [ARCH_ARM] = {"arm", arm_variants, NULL, "v7", "arm/v7, arm/v6, arm/v5"},
    [ARCH_386] = {"386", NULL, NULL, NULL, "386"},
    [ARCH_PPC64LE] = {"ppc64le", NULL, NULL, NULL, "ppc64le"},
    [ARCH_S390X] = {"s390x", NULL, NULL, NULL, "s390x"},
    [ARCH_RISCV64] = {"riscv64", NULL, NULL, NULL, "riscv64"},
    [ARCH_MIPS64LE] = {"mips64le", NULL, NULL, NULL, "mips64le"},
    [ARCH_LOONG64] = {"loong64", NULL, NULL, NULL, "loong64"},
};

/* Names seen in uname -m, Debian/RPM architectures and Docker Hub namespaces. */
static const struct arch_alias {
	const char *name;
	enum arch_id arch;
	const char *variant; /* implied by the name, or NULL */
	/* uname(2) says this on CPUs of several levels: the host asks the CPU. */
	bool cpu_says_variant;
} aliases[] = {
    {"amd64", ARCH_AMD64, NULL},
    {"x86_64", ARCH_AMD64, NULL},
    {"x86-64", ARCH_AMD64, NULL},
    {"arm64", ARCH_ARM64, NULL},
    {"aarch64", ARCH_ARM64, NULL},
    {"armv8", ARCH_ARM64, NULL},
    {"arm64v8", ARCH_ARM64, NULL},
    {"arm", ARCH_ARM, NULL, true},
    {"armhf", ARCH_ARM, "v7"},
    {"armel", ARCH_ARM, "v5"},
    {"armv7", ARCH_ARM, "v7"},
    {"armv7l", ARCH_ARM, "v7"},
    {"armv7hl", ARCH_ARM, "v7"},
    {"arm32v7", ARCH_ARM, "v7"},
    /* A 32-bit process on an ARMv8 CPU runs arm/v7 images. */
    {"armv8l", ARCH_ARM, "v7", true},
    {"armv6", ARCH_ARM, "v6"},
    {"armv6l", ARCH_ARM, "v6"},
    {"arm32v6", ARCH_ARM, "v6"},
    {"armv5", ARCH_ARM, "v5"},
    {"armv5l", ARCH_ARM, "v5"},
    {"armv5tel", ARCH_ARM, "v5"},
    {"arm32v5", ARCH_ARM, "v5"},
    {"386", ARCH_386, NULL},
    {"i386", ARCH_386, NULL},
    {"i486", ARCH_386, NULL},
    {"i586", ARCH_386, NULL},
    {"i686", ARCH_386, NULL},
    {"x86", ARCH_386, NULL},
    {"ppc64le", ARCH_PPC64LE, NULL},
    {"ppc64el", ARCH_PPC64LE, NULL},
    {"powerpc64le", ARCH_PPC64LE, NULL},
    {"s390x", ARCH_S390X, NULL},
    {"riscv64", ARCH_RISCV64, NULL},
    {"mips64le", ARCH_MIPS64LE, NULL},
    {"mips64el", ARCH_MIPS64LE, NULL},
    {"loong64", ARCH_LOONG64, NULL},
    {"loongarch64", ARCH_LOONG64, NULL},
};

static const char *const known_os[] = {"linux", "windows", "darwin", "freebsd"};

static const char *const known_arches[_ARCH_MAX + 1] = {
    "amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64", "mips64le", "loong64", NULL,
};

const char *const *plait_platform_known_arches(void)
{
	return known_arches;
}

void plait_platform_release(struct plait_platform *p)
{
	if (!p)
		return;
	free(p->os);
	free(p->architecture);
	free(p->variant);
	free(p->os_version);
	plait_strv_free(p->os_features);
	memset(p, 0, sizeof(*p));
}

void plait_platform_copy(struct plait_platform *dst, const struct plait_platform *src)
{
	dst->os = xstrdup_or_null(src->os);
	dst->architecture = xstrdup_or_null(src->architecture);
	dst->variant = xstrdup_or_null(src->variant);
	dst->os_version = xstrdup_or_null(src->os_version);
	dst->os_features = plait_strv_copy(src->os_features);
}

#define VIEW_FIELD 64

/* A normalised platform in fixed buffers; "" means absent. */
struct view {
	char os[VIEW_FIELD];
	char arch[VIEW_FIELD];
	char variant[VIEW_FIELD];
	enum arch_id id;
	const char *implied; /* variant implied by the arch alias, or NULL */
	bool overlong;	     /* some field did not fit: never equal to anything */
};

static bool lower_into(char dst[VIEW_FIELD], const char *s)
{
	size_t i = 0;
	if (!s)
		s = "";
	for (; s[i]; i++) {
		if (i + 1 >= VIEW_FIELD) {
			dst[i] = '\0';
			return false;
		}
		dst[i] = (char)tolower((unsigned char)s[i]);
	}
	dst[i] = '\0';
	return true;
}

static const struct arch_alias *alias_lookup(const char *lower_name)
{
	for (size_t i = 0; i < ARRAY_SIZE(aliases); i++)
		if (streq(aliases[i].name, lower_name))
			return &aliases[i];
	return NULL;
}

static bool os_is_known(const char *lower_name)
{
	for (size_t i = 0; i < ARRAY_SIZE(known_os); i++)
		if (streq(known_os[i], lower_name))
			return true;
	return false;
}

/* Position of variant in the arch's list (0 = oldest), or -1 when unknown. */
static int variant_level(enum arch_id id, const char *variant)
{
	if (id == ARCH_UNKNOWN || !arches[id].variants)
		return -1;
	if (!*variant)
		variant = arches[id].none_is ? arches[id].none_is : "";
	for (int i = 0; arches[id].variants[i]; i++)
		if (streq(arches[id].variants[i], variant))
			return i;
	return -1;
}

static void view_init(struct view *v, const char *os, const char *arch, const char *variant)
{
	char raw_arch[VIEW_FIELD];
	bool fits = lower_into(v->os, os);
	fits &= lower_into(raw_arch, arch);
	fits &= lower_into(v->variant, variant);
	v->overlong = !fits;
	const struct arch_alias *a = alias_lookup(raw_arch);
	v->id = a ? a->arch : ARCH_UNKNOWN;
	v->implied = a ? a->variant : NULL;
	lower_into(v->arch, a ? arches[a->arch].goarch : raw_arch);
	if (v->id == ARCH_UNKNOWN)
		return;
	const struct arch_info *info = &arches[v->id];
	if (!v->variant[0] && v->implied)
		lower_into(v->variant, v->implied);
	if (!v->variant[0] && info->default_variant)
		lower_into(v->variant, info->default_variant);
	if (info->none_is && streq(v->variant, info->none_is))
		v->variant[0] = '\0';
}

static void view_from_platform(struct view *v, const struct plait_platform *p)
{
	view_init(v, p->os, p->architecture, p->variant);
}

static void replace(char **field, const char *value)
{
	char *old = *field;
	*field = *value ? xstrdup(value) : NULL;
	free(old);
}

void plait_platform_normalise(struct plait_platform *p)
{
	if (!p)
		return;
	struct view v;
	view_from_platform(&v, p);
	if (v.overlong)
		return;
	if (p->os)
		replace(&p->os, v.os);
	replace(&p->architecture, v.arch);
	replace(&p->variant, v.variant);
}

static void add_known_arches(struct plait_buf *b)
{
	for (size_t i = 0; i < _ARCH_MAX; i++)
		plait_buf_addf(b, "%s%s", i ? ", " : "", arches[i].help);
}

static void add_known_os(struct plait_buf *b)
{
	for (size_t i = 0; i < ARRAY_SIZE(known_os); i++)
		plait_buf_addf(b, "%s%s", i ? ", " : "", known_os[i]);
}

static void add_known_variants(struct plait_buf *b, enum arch_id id)
{
	const struct arch_info *info = &arches[id];
	if (!info->variants) {
		plait_buf_adds(b, "it takes none");
		return;
	}
	plait_buf_adds(b, "known: ");
	for (size_t i = 0; info->variants[i]; i++)
		plait_buf_addf(b, "%s%s", i ? ", " : "", info->variants[i]);
}

/* Set *err to "<what> platform '<s>': <why>..." and return -PLAIT_E_USAGE. */
static int usage_error(struct plait_error **err, struct plait_buf *msg)
{
	return plait_error_set(err, PLAIT_E_USAGE, "%s", msg->buf);
}

int plait_platform_parse(const char *s, struct plait_platform *out, struct plait_error **err)
{
	_cleanup_buf_ struct plait_buf msg = PLAIT_BUF_INIT;
	memset(out, 0, sizeof(*out));
	if (!s || !*s)
		return plait_error_set(err, PLAIT_E_USAGE,
				       "invalid platform '': empty; use os/arch[/variant], "
				       "e.g. 'linux/amd64'");

	/* Split into at most three non-empty parts. */
	const char *parts[3] = {NULL, NULL, NULL};
	size_t lens[3] = {0, 0, 0};
	size_t n = 0;
	for (const char *p = s;;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 3)
			return plait_error_set(err, PLAIT_E_USAGE,
					       "invalid platform '%s': too many '/'; use "
					       "os/arch[/variant], e.g. 'linux/arm/v7'",
					       s);
		if (len == 0)
			return plait_error_set(err, PLAIT_E_USAGE,
					       "invalid platform '%s': empty component; use "
					       "os/arch[/variant], e.g. 'linux/arm64'",
					       s);
		parts[n] = p;
		lens[n++] = len;
		if (!slash)
			break;
		p = slash + 1;
	}

	_cleanup_free_ char *os = NULL;
	_cleanup_free_ char *arch = NULL;
	_cleanup_free_ char *variant = NULL;
	char first[VIEW_FIELD];
	_cleanup_free_ char *first_raw = xstrndup(parts[0], lens[0]);
	bool first_fits = lower_into(first, first_raw);
	bool first_is_os = first_fits && os_is_known(first);
	if (n == 1) {
		if (first_is_os)
			return plait_error_set(err, PLAIT_E_USAGE,
					       "invalid platform '%s': missing architecture; use "
					       "e.g. '%s/amd64'",
					       s, first);
		/* A bare architecture ("aarch64") means linux. */
		os = xstrdup("linux");
		arch = TAKE_PTR(first_raw);
	} else if (n == 2 && !first_is_os && first_fits && alias_lookup(first)) {
		os = xstrdup("linux");
		arch = TAKE_PTR(first_raw);
		variant = xstrndup(parts[1], lens[1]);
	} else {
		os = TAKE_PTR(first_raw);
		arch = xstrndup(parts[1], lens[1]);
		if (n == 3)
			variant = xstrndup(parts[2], lens[2]);
	}

	struct view v;
	view_init(&v, os, arch, variant);
	if (v.overlong || !os_is_known(v.os)) {
		plait_buf_addf(
		    &msg, "unknown platform '%s': unknown operating system '%s'; known: ", s, os);
		add_known_os(&msg);
		return usage_error(err, &msg);
	}
	if (v.id == ARCH_UNKNOWN) {
		plait_buf_addf(&msg, "unknown platform '%s': unknown architecture '%s'; known: ", s,
			       arch);
		add_known_arches(&msg);
		return usage_error(err, &msg);
	}
	if (variant && v.implied) {
		char given[VIEW_FIELD];
		lower_into(given, variant);
		if (!streq(given, v.implied))
			return plait_error_set(
			    err, PLAIT_E_USAGE,
			    "invalid platform '%s': '%s' means %s/%s, not variant "
			    "'%s'; use 'linux/%s/%s'",
			    s, arch, arches[v.id].goarch, v.implied, variant, arches[v.id].goarch,
			    given);
	}
	if (v.variant[0] && variant_level(v.id, v.variant) < 0) {
		plait_buf_addf(&msg, "unknown platform '%s': unknown variant '%s' for %s; ", s,
			       variant, arches[v.id].goarch);
		add_known_variants(&msg, v.id);
		return usage_error(err, &msg);
	}

	out->os = xstrdup(v.os);
	out->architecture = xstrdup(v.arch);
	out->variant = v.variant[0] ? xstrdup(v.variant) : NULL;
	return 0;
}

void plait_platform_list_free(struct plait_platform *list, size_t n)
{
	if (!list)
		return;
	for (size_t i = 0; i < n; i++)
		plait_platform_release(&list[i]);
	free(list);
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int plait_platform_parse_list(const char *s, struct plait_platform **out, size_t *n,
			      struct plait_error **err)
{
	struct plait_platform *list = NULL;
	char **texts = NULL; /* each item as written, for the duplicate message */
	size_t count = 0, alloc = 0, texts_alloc = 0;
	int r = 0;

	*out = NULL;
	*n = 0;
	if (!s)
		s = "";
	for (const char *p = s;;) {
		const char *comma = strchr(p, ',');
		const char *end = comma ? comma : p + strlen(p);
		const char *b = p;
		while (b < end && is_space(*b))
			b++;
		while (end > b && is_space(end[-1]))
			end--;
		_cleanup_free_ char *item = xstrndup(b, (size_t)(end - b));
		if (!*item && (comma || count > 0)) {
			r = plait_error_set(
			    err, PLAIT_E_USAGE,
			    "invalid platform list '%s': empty entry; separate "
			    "platforms with a single ',', e.g. 'linux/amd64,linux/arm64'",
			    s);
			goto out;
		}
		PLAIT_ALLOC_GROW(list, count + 1, alloc);
		r = plait_platform_parse(item, &list[count], err);
		if (r < 0)
			goto out;
		for (size_t i = 0; i < count; i++) {
			if (!plait_platform_equal(&list[i], &list[count]))
				continue;
			plait_platform_release(&list[count]);
			if (streq(texts[i], item))
				r = plait_error_set(err, PLAIT_E_USAGE,
						    "platform '%s' is listed twice", item);
			else
				r = plait_error_set(err, PLAIT_E_USAGE,
						    "platform '%s' is listed twice (same as '%s')",
						    item, texts[i]);
			goto out;
		}
		PLAIT_ALLOC_GROW(texts, count + 1, texts_alloc);
		texts[count++] = TAKE_PTR(item);
		if (!comma)
			break;
		p = comma + 1;
	}
	*out = TAKE_PTR(list);
	*n = count;
out:
	for (size_t i = 0; i < count; i++)
		free(texts[i]);
	free(texts);
	if (r < 0)
		plait_platform_list_free(list, count);
	return r;
}

char *plait_platform_format(const struct plait_platform *p)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s/%s", p->os ? p->os : "", p->architecture ? p->architecture : "");
	if (p->variant && *p->variant)
		plait_buf_addf(&b, "/%s", p->variant);
	return plait_buf_detach(&b, NULL);
}

bool plait_platform_equal(const struct plait_platform *a, const struct plait_platform *b)
{
	struct view va, vb;
	view_from_platform(&va, a);
	view_from_platform(&vb, b);
	if (va.overlong || vb.overlong)
		return false;
	return streq(va.os, vb.os) && streq(va.arch, vb.arch) && streq(va.variant, vb.variant);
}

const char *plait_platform_arm_variant_from_cpuinfo(const char *cpuinfo)
{
	for (const char *line = cpuinfo; line && *line;) {
		const char *nl = strchr(line, '\n');
		if (startswith(line, "CPU architecture")) {
			const char *colon = strchr(line, ':');
			if (colon && (!nl || colon < nl)) {
				long level = strtol(colon + 1, NULL, 10);
				if (level == 5)
					return "v5";
				if (level == 6)
					return "v6";
				/* 7, and 8 for a 32-bit process on an ARMv8 CPU. */
				return "v7";
			}
		}
		line = nl ? nl + 1 : NULL;
	}
	return "v7";
}

void plait_platform_from_uname(const char *sysname, const char *machine,
			       const char *(*arm_variant)(void), struct plait_platform *out)
{
	char os[VIEW_FIELD], m[VIEW_FIELD];
	memset(out, 0, sizeof(*out));
	lower_into(os, sysname);
	lower_into(m, machine);
	out->os = xstrdup(os);
	const struct arch_alias *a = alias_lookup(m);
	if (!a) {
		out->architecture = xstrdup(m);
		return;
	}
	out->architecture = xstrdup(arches[a->arch].goarch);
	out->variant = xstrdup_or_null(a->cpu_says_variant ? arm_variant() : a->variant);
	plait_platform_normalise(out);
}

/* Exact match scores this; each level further away costs one point. */
#define SCORE_EXACT 100

int plait_platform_match_score(const struct plait_platform *want, const struct plait_platform *have)
{
	if (!want || !have)
		return -1;
	struct view w, h;
	view_from_platform(&w, want);
	view_from_platform(&h, have);
	if (w.overlong || h.overlong)
		return -1;
	if (!streq(w.os, h.os) || !streq(w.arch, h.arch))
		return -1;
	if (streq(w.variant, h.variant))
		return SCORE_EXACT;
	int wl = variant_level(w.id, w.variant);
	int hl = variant_level(h.id, h.variant);
	if (wl >= 0 && hl >= 0) {
		/* Older variants run on newer CPUs, never the other way round. */
		if (hl > wl)
			return -1;
		return SCORE_EXACT - (wl - hl);
	}
	/* Architectures without a variant table: an image with no variant is
	 * generic and runs anywhere, but less well than an exact one. */
	if (w.variant[0] && !h.variant[0])
		return SCORE_EXACT / 2;
	return -1;
}

/* attestation manifests carry "unknown/unknown"; they are not images. */
static bool is_image_platform(const struct plait_platform *p)
{
	return p && p->os && p->architecture && !streq(p->os, "unknown") &&
	       !streq(p->architecture, "unknown");
}

int plait_platform_select(const struct plait_index *idx, const struct plait_platform *want,
			  size_t *pos, struct plait_error **err)
{
	int best = -1;
	size_t best_pos = 0;
	for (size_t i = 0; i < idx->n_manifests; i++) {
		const struct plait_platform *p = idx->manifests[i].platform;
		if (!p)
			continue;
		int score = plait_platform_match_score(want, p);
		if (score > best) {
			best = score;
			best_pos = i;
		}
	}
	if (best >= 0) {
		*pos = best_pos;
		return 0;
	}

	_cleanup_free_ char *w = plait_platform_format(want);
	_cleanup_buf_ struct plait_buf have = PLAIT_BUF_INIT;
	_cleanup_strv_free_ char **seen = xcalloc(idx->n_manifests + 1, sizeof(char *));
	size_t n_seen = 0;
	for (size_t i = 0; i < idx->n_manifests; i++) {
		const struct plait_platform *p = idx->manifests[i].platform;
		if (!is_image_platform(p))
			continue;
		char *f = plait_platform_format(p);
		bool dup = false;
		for (size_t j = 0; j < n_seen && !dup; j++)
			dup = streq(seen[j], f);
		if (dup) {
			free(f);
			continue;
		}
		plait_buf_addf(&have, "%s%s", n_seen ? ", " : "", f);
		seen[n_seen++] = f;
	}
	if (!n_seen)
		return plait_error_set(err, PLAIT_E_NOT_FOUND,
				       "no image for %s in this index; it lists no platforms", w);
	return plait_error_set(err, PLAIT_E_NOT_FOUND, "no image for %s in this index; it has %s",
			       w, have.buf);
}

int plait_index_select_platforms(const struct plait_index *idx, const struct plait_platform *want,
				 size_t n, struct plait_index *out, struct plait_error **err)
{
	memset(out, 0, sizeof(*out));
	out->schema_version = idx->schema_version ? idx->schema_version : 2;
	out->media_type = xstrdup_or_null(idx->media_type);
	out->artifact_type = xstrdup_or_null(idx->artifact_type);
	plait_map_copy(&out->annotations, &idx->annotations);
	for (size_t i = 0; i < n; i++) {
		size_t pos;
		int r = plait_platform_select(idx, &want[i], &pos, err);
		if (r < 0) {
			plait_index_release(out);
			return r;
		}
		plait_index_add(out, &idx->manifests[pos]);
	}
	return 0;
}

/* A single image: it must be one of the platforms asked for (its config says which). */
static int check_manifest_platform(struct plait_endpoint *ep, const struct plait_buf *data,
				   const struct plait_platform *want, size_t n,
				   struct plait_error **err)
{
	struct plait_manifest m = {0};
	struct plait_image_config cfg = {0};
	int r = plait_manifest_parse(data->buf, data->len, &m, err);
	if (r < 0)
		plait_error_wrap(err, "%s", ep->display);
	else
		r = plait_endpoint_image_config(ep, &m, &cfg, err);
	if (r >= 0) {
		struct plait_platform have = {
		    .os = cfg.os, .architecture = cfg.architecture, .variant = cfg.variant};
		bool ok = false;
		for (size_t i = 0; i < n && !ok; i++)
			ok = plait_platform_match_score(&want[i], &have) >= 0;
		if (!ok) {
			_cleanup_free_ char *h = plait_platform_format(&have);
			_cleanup_free_ char *w = plait_platform_format(&want[0]);
			r = plait_error_set(err, PLAIT_E_NOT_FOUND,
					    "%s is a single-platform image for %s, not for %s%s",
					    ep->display, h, w,
					    n > 1 ? " and the others asked for" : "");
		}
	}
	plait_image_config_release(&cfg);
	plait_manifest_release(&m);
	return r;
}

int plait_platform_narrow(struct plait_endpoint *ep, struct plait_descriptor *root,
			  struct plait_buf *data, const struct plait_platform *want, size_t n,
			  struct plait_error **err)
{
	enum plait_media_type t = plait_media_type_from_string(root->media_type);
	if (plait_media_type_is_manifest(t))
		return check_manifest_platform(ep, data, want, n, err);

	struct plait_index idx = {0}, narrowed = {0};
	int r = plait_index_parse(data->buf, data->len, &idx, err);
	if (r < 0) {
		plait_error_wrap(err, "%s", ep->display);
		return r;
	}
	r = plait_index_select_platforms(&idx, want, n, &narrowed, err);
	if (r < 0) {
		plait_error_wrap(err, "%s", ep->display);
		goto out;
	}
	if (n == 1) {
		r = plait_endpoint_resolve(ep, narrowed.manifests[0].digest, root, data, err);
		goto out;
	}
	/* Every entry, in the same order: the index as it is keeps its digest. */
	bool same = narrowed.n_manifests == idx.n_manifests;
	for (size_t i = 0; same && i < idx.n_manifests; i++)
		same = streq(narrowed.manifests[i].digest, idx.manifests[i].digest);
	if (same)
		goto out;
	plait_buf_reset(data);
	r = plait_index_serialise(&narrowed, data, err);
	if (r < 0)
		goto out;
	/* root keeps its media type: the new index is of the same kind. */
	plait_sha256_buf(data->buf, data->len, root->digest);
	root->size = (int64_t)data->len;
out:
	plait_index_release(&narrowed);
	plait_index_release(&idx);
	return r;
}
