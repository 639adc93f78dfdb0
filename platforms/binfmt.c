/* platforms/binfmt.c - QEMU handlers in binfmt_misc: the arch table, reading
 * the handler files, and registering handlers with the F flag. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "platforms/binfmt.h"
#include "core/platform.h"
#include "core/buf.h"
#include "core/banned.h"

/* Most masks ignore EI_OSABI/EI_ABIVERSION and accept ET_EXEC and ET_DYN
 * (e_type 2 and 3: mask 0xfe). The strings are those of qemu-binfmt-conf.sh
 * and Debian's qemu-user-static (/usr/lib/binfmt.d/qemu-*.conf). */
/* clang-format off */
#define ELF_MASK_COMMON \
	"\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff" \
	"\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff"
/* x86: EI_DATA/EI_VERSION bits relaxed as in qemu's i386 and x86_64 entries. */
#define ELF_MASK_X86 \
	"\\xff\\xff\\xff\\xff\\xff\\xfe\\xfe\\x00\\xff\\xff" \
	"\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff"
/* clang-format on */

static const struct plait_binfmt_arch table[] = {
    {"amd64", "x86_64", 2, false, 62,
     "\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\x3e\\x00",
     ELF_MASK_X86},
    {"arm64", "aarch64", 2, false, 183,
     "\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00",
     ELF_MASK_COMMON},
    {"arm", "arm", 1, false, 40,
     "\\x7fELF\\x01\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\x28\\x00",
     ELF_MASK_COMMON},
    {"386", "i386", 1, false, 3,
     "\\x7fELF\\x01\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\x03\\x00",
     ELF_MASK_X86},
    /* ppc64le: EI_ABIVERSION ignored too (ELFv2 binaries set it). */
    {"ppc64le", "ppc64le", 2, false, 21,
     "\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\x15\\x00",
     "\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfc\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\x"
     "ff\\x00"},
    /* s390x is big endian: e_type and e_machine bytes are swapped. */
    {"s390x", "s390x", 2, true, 22,
     "\\x7fELF\\x02\\x02\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\x16",
     "\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfc\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\x"
     "ff\\xff"},
    {"riscv64", "riscv64", 2, false, 243,
     "\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xf3\\x00",
     ELF_MASK_COMMON},
    {"mips64le", "mips64el", 2, false, 8,
     "\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\x08\\x00",
     "\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xfe\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\x"
     "ff\\xff"},
    {"loong64", "loongarch64", 2, false, 258,
     "\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\x02\\x01",
     "\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfc\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\x"
     "ff\\xff"},
};

const struct plait_binfmt_arch *plait_binfmt_arches(size_t *n)
{
	*n = ARRAY_SIZE(table);
	return table;
}

const struct plait_binfmt_arch *plait_binfmt_arch_lookup(const char *arch)
{
	if (!arch)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(table); i++)
		if (streq(table[i].arch, arch))
			return &table[i];
	/* Aliases and platform strings go through the one platform parser. */
	struct plait_platform p = {0};
	const struct plait_binfmt_arch *found = NULL;
	if (plait_platform_parse(arch, &p, NULL) >= 0) {
		for (size_t i = 0; i < ARRAY_SIZE(table); i++)
			if (streq_ptr(table[i].arch, p.architecture))
				found = &table[i];
	}
	plait_platform_release(&p);
	return found;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int plait_binfmt_unescape(const char *s, uint8_t *out, size_t max, size_t *len,
			  struct plait_error **err)
{
	size_t n = 0;
	for (const char *p = s; *p;) {
		int c = (unsigned char)*p++;
		if (c == '\\') {
			if (*p == '\\') {
				p++;
			} else if (*p == 'x') {
				int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);
				if (hi < 0 || lo < 0)
					return plait_error_set(err, PLAIT_E_INVALID,
							       "invalid escape in binfmt string "
							       "'%s': \\x needs two hex digits",
							       s);
				c = hi * 16 + lo;
				p += 3;
			}
		}
		if (n >= max)
			return plait_error_set(err, PLAIT_E_INVALID,
					       "binfmt string '%s' is longer than %zu bytes", s,
					       max);
		out[n++] = (uint8_t)c;
	}
	*len = n;
	return 0;
}

/* The kernel writes magic and mask as plain hex ("7f454c46…"). */
static int parse_hex(const char *s, uint8_t *out, size_t *len)
{
	size_t n = 0;
	while (s[0] && s[1]) {
		int hi = hexval(s[0]), lo = hexval(s[1]);
		if (hi < 0 || lo < 0 || n >= PLAIT_BINFMT_MAX_MAGIC)
			return -1;
		out[n++] = (uint8_t)(hi * 16 + lo);
		s += 2;
	}
	if (*s)
		return -1;
	*len = n;
	return 0;
}

int plait_binfmt_entry_parse(const char *name, const char *text, struct plait_binfmt_entry *out,
			     struct plait_error **err)
{
	memset(out, 0, sizeof(*out));
	out->name = xstrdup(name);
	out->flags = xstrdup("");
	bool saw_state = false;
	const char *line = text;
	while (*line) {
		const char *nl = strchr(line, '\n');
		size_t l = nl ? (size_t)(nl - line) : strlen(line);
		_cleanup_free_ char *s = xstrndup(line, l);
		line += l + (nl ? 1 : 0);
		if (streq(s, "enabled") || streq(s, "disabled")) {
			out->enabled = streq(s, "enabled");
			saw_state = true;
		} else if (startswith(s, "interpreter ")) {
			free(out->interpreter);
			out->interpreter = xstrdup(s + strlen("interpreter "));
		} else if (startswith(s, "flags:")) {
			const char *f = s + strlen("flags:");
			while (*f == ' ')
				f++;
			free(out->flags);
			out->flags = xstrdup(f);
		} else if (startswith(s, "offset ")) {
			char *end;
			errno = 0;
			unsigned long v = strtoul(s + strlen("offset "), &end, 10);
			if (errno || *end || v > 4096)
				goto bad;
			out->offset = v;
		} else if (startswith(s, "magic ")) {
			if (parse_hex(s + strlen("magic "), out->magic, &out->magic_len) < 0)
				goto bad;
		} else if (startswith(s, "mask ")) {
			if (parse_hex(s + strlen("mask "), out->mask, &out->mask_len) < 0)
				goto bad;
		} else if (startswith(s, "extension ")) {
			out->is_extension = true;
		}
		/* Anything else: newer kernels may add lines; ignore them. */
		continue;
	bad:
		plait_error_set(err, PLAIT_E_INVALID,
				"binfmt_misc handler '%s': cannot parse line '%s'", name, s);
		plait_binfmt_entry_release(out);
		return -PLAIT_E_INVALID;
	}
	if (!saw_state) {
		plait_binfmt_entry_release(out);
		return plait_error_set(err, PLAIT_E_INVALID,
				       "binfmt_misc handler '%s': no 'enabled' or 'disabled' line",
				       name);
	}
	return 0;
}

void plait_binfmt_entry_release(struct plait_binfmt_entry *e)
{
	if (!e)
		return;
	free(e->name);
	free(e->interpreter);
	free(e->flags);
	e->name = e->interpreter = e->flags = NULL;
}

bool plait_binfmt_entry_has_flag(const struct plait_binfmt_entry *e, char flag)
{
	return e->flags && strchr(e->flags, flag) != NULL;
}

bool plait_binfmt_entry_matches(const struct plait_binfmt_entry *e,
				const struct plait_binfmt_arch *a)
{
	if (startswith(e->name, "qemu-") && streq(e->name + strlen("qemu-"), a->qemu))
		return true;
	if (e->is_extension || e->offset != 0 || e->magic_len == 0)
		return false;
	uint8_t hdr[PLAIT_BINFMT_MAX_MAGIC];
	size_t hlen;
	if (plait_binfmt_unescape(a->magic, hdr, sizeof(hdr), &hlen, NULL) < 0)
		return false;
	/* The handler must look at the ELF header, and our canonical header of
	 * this arch must pass its mask the way the kernel checks it. */
	if (e->magic_len < 20 || e->magic_len > hlen)
		return false;
	for (size_t i = 0; i < e->magic_len; i++) {
		uint8_t m = i < e->mask_len ? e->mask[i] : 0xff;
		if ((hdr[i] ^ e->magic[i]) & m)
			return false;
	}
	return true;
}

bool plait_binfmt_mounted(const char *dir)
{
	_cleanup_free_ char *reg = NULL;
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s/register", dir);
	reg = plait_buf_detach(&b, NULL);
	return access(reg, F_OK) == 0;
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct plait_binfmt_entry *)a)->name,
		      ((const struct plait_binfmt_entry *)b)->name);
}

int plait_binfmt_read(const char *dir, struct plait_binfmt_entry **out, size_t *n,
		      struct plait_error **err)
{
	*out = NULL;
	*n = 0;
	if (!plait_binfmt_mounted(dir))
		return plait_error_set(
		    err, PLAIT_E_NOT_FOUND,
		    "binfmt_misc is not mounted at %s: run 'plait qemu install' as root", dir);
	DIR *d = opendir(dir);
	if (!d)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "open '%s'", dir);
	struct plait_binfmt_entry *v = NULL;
	size_t len = 0, alloc = 0;
	int r = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || streq(de->d_name, "register") ||
		    streq(de->d_name, "status"))
			continue;
		_cleanup_free_ char *path = plait_path_concat(dir, de->d_name);
		_cleanup_buf_ struct plait_buf text = PLAIT_BUF_INIT;
		r = plait_buf_read_file(&text, path, 64 * 1024);
		if (r == -ENOENT) {
			r = 0; /* removed while we read: not an error */
			continue;
		}
		if (r < 0) {
			r = plait_error_set_errno(err, PLAIT_E_IO, r, "read '%s'", path);
			break;
		}
		PLAIT_ALLOC_GROW(v, len + 1, alloc);
		r = plait_binfmt_entry_parse(de->d_name, text.buf, &v[len], err);
		if (r < 0)
			break;
		len++;
	}
	closedir(d);
	if (r < 0) {
		plait_binfmt_entries_free(v, len);
		return r;
	}
	if (len)
		qsort(v, len, sizeof(*v), cmp_entry);
	*out = v;
	*n = len;
	return 0;
}

void plait_binfmt_entries_free(struct plait_binfmt_entry *v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		plait_binfmt_entry_release(&v[i]);
	free(v);
}

bool plait_binfmt_native(const char *host_arch, bool aarch32, const char *arch)
{
	if (!host_arch || !arch)
		return false;
	if (streq(host_arch, arch))
		return true;
	/* x86-64 CPUs run i386 code; the Linux kernels distributions ship have IA32 emulation. */
	if (streq(host_arch, "amd64") && streq(arch, "386"))
		return true;
	if (streq(host_arch, "arm64") && streq(arch, "arm"))
		return aarch32;
	return false;
}

bool plait_binfmt_host_aarch32(void)
{
	/* Only asymmetric systems (some CPUs with AArch32, some without) say so in
	 * sysfs; elsewhere we cannot tell cheaply, and assuming no AArch32 is the
	 * safe side: a QEMU handler still runs arm code, only slower. Newer arm64
	 * CPUs (Neoverse V1+, Apple M) have no AArch32 at all. */
	struct plait_buf b = PLAIT_BUF_INIT;
	bool yes = plait_buf_read_file(&b, "/sys/devices/system/cpu/aarch32_el0", 4096) >= 0;
	if (yes) {
		plait_buf_rtrim(&b);
		yes = b.len > 0;
	}
	plait_buf_release(&b);
	return yes;
}

int plait_binfmt_find(const struct plait_binfmt_entry *v, size_t n,
		      const struct plait_binfmt_arch *a)
{
	int best = -1, best_score = -1;
	for (size_t i = 0; i < n; i++) {
		if (!plait_binfmt_entry_matches(&v[i], a))
			continue;
		int score =
		    (v[i].enabled ? 2 : 0) + (plait_binfmt_entry_has_flag(&v[i], 'F') ? 1 : 0);
		if (score > best_score) {
			best = (int)i;
			best_score = score;
		}
	}
	return best;
}

char *plait_binfmt_interpreter(const char *interp_dir, const struct plait_binfmt_arch *a)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s/qemu-%s-static", interp_dir, a->qemu);
	return plait_buf_detach(&b, NULL);
}

char *plait_binfmt_register_line(const struct plait_binfmt_arch *a, const char *interpreter)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, ":qemu-%s:M::%s:%s:%s:FP", a->qemu, a->magic, a->mask, interpreter);
	return plait_buf_detach(&b, NULL);
}

int plait_binfmt_status(const char *dir, const char *interp_dir, const char *host_arch,
			bool aarch32, struct plait_binfmt_status **out, size_t *n, bool *mounted,
			struct plait_error **err)
{
	struct plait_binfmt_entry *entries = NULL;
	size_t n_entries = 0;
	*out = NULL;
	*n = 0;
	*mounted = plait_binfmt_mounted(dir);
	if (*mounted) {
		int r = plait_binfmt_read(dir, &entries, &n_entries, err);
		if (r < 0)
			return r;
	}
	struct plait_binfmt_status *v = xcalloc(ARRAY_SIZE(table), sizeof(*v));
	for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
		struct plait_binfmt_status *s = &v[i];
		s->arch = &table[i];
		s->native = plait_binfmt_native(host_arch, aarch32, table[i].arch);
		_cleanup_free_ char *interp = plait_binfmt_interpreter(interp_dir, &table[i]);
		s->have_interpreter = access(interp, X_OK) == 0;
		int k = plait_binfmt_find(entries, n_entries, &table[i]);
		if (k < 0)
			continue;
		s->registered = true;
		s->enabled = entries[k].enabled;
		s->fix_binary = plait_binfmt_entry_has_flag(&entries[k], 'F');
		s->preserve_argv0 = plait_binfmt_entry_has_flag(&entries[k], 'P');
		s->handler = xstrdup(entries[k].name);
		s->interpreter = xstrdup_or_null(entries[k].interpreter);
	}
	plait_binfmt_entries_free(entries, n_entries);
	*out = v;
	*n = ARRAY_SIZE(table);
	return 0;
}

void plait_binfmt_status_free(struct plait_binfmt_status *v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++) {
		free(v[i].handler);
		free(v[i].interpreter);
	}
	free(v);
}

int plait_binfmt_mount(const char *dir, struct plait_error **err)
{
	if (plait_binfmt_mounted(dir))
		return 0;
	if (mount("binfmt_misc", dir, "binfmt_misc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "mount binfmt_misc at '%s'",
					     dir);
	return 0;
}

/* One write(), as the kernel parses each write to these files on its own. */
static int write_file(const char *path, const char *s, struct plait_error **err)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "open '%s'", path);
	ssize_t w = write(fd, s, strlen(s));
	if (w < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "write '%s' to '%s'", s, path);
	if ((size_t)w != strlen(s))
		return plait_error_set(err, PLAIT_E_IO, "write '%s' to '%s': short write", s, path);
	return 0;
}

int plait_binfmt_install(const char *dir, const char *interp_dir, const char *host_arch,
			 bool aarch32, const struct plait_binfmt_arch *a,
			 enum plait_binfmt_action *action, struct plait_error **err)
{
	if (plait_binfmt_native(host_arch, aarch32, a->arch))
		return plait_error_set(
		    err, PLAIT_E_USAGE,
		    "linux/%s runs natively on this %s host: it needs no QEMU handler", a->arch,
		    host_arch);
	_cleanup_free_ char *interp = plait_binfmt_interpreter(interp_dir, a);
	struct stat st;
	if (stat(interp, &st) < 0 || !S_ISREG(st.st_mode))
		return plait_error_set(err, PLAIT_E_NOT_FOUND,
				       "no %s: apt-get install qemu-user-static", interp);

	struct plait_binfmt_entry *v = NULL;
	size_t n = 0;
	int r = plait_binfmt_read(dir, &v, &n, err);
	if (r < 0)
		return r;
	int k = plait_binfmt_find(v, n, a);
	if (k >= 0 && plait_binfmt_entry_has_flag(&v[k], 'F') && plait_binfmt_entry_has_flag(&v[k], 'P')) {
		/* A handler with F and P (ours or the distribution's) already works in a chroot. */
		if (v[k].enabled) {
			*action = PLAIT_BINFMT_UNCHANGED;
		} else {
			_cleanup_free_ char *p = plait_path_join(dir, v[k].name);
			r = write_file(p, "1", err);
			*action = PLAIT_BINFMT_ENABLED;
		}
		plait_binfmt_entries_free(v, n);
		return r < 0 ? r : 0;
	}
	/* Handlers without F or P would shadow or confuse ours (and one named
	 * qemu-<name> blocks registering that name): remove them all. */
	bool removed = false;
	for (size_t i = 0; i < n && r >= 0; i++) {
		if (!plait_binfmt_entry_matches(&v[i], a))
			continue;
		_cleanup_free_ char *p = plait_path_join(dir, v[i].name);
		r = write_file(p, "-1", err);
		if (r < 0)
			plait_error_wrap(err,
					 "remove binfmt_misc handler '%s' (it lacks the F or P flag)",
					 v[i].name);
		removed = true;
	}
	plait_binfmt_entries_free(v, n);
	if (r < 0)
		return r;
	_cleanup_free_ char *line = plait_binfmt_register_line(a, interp);
	_cleanup_free_ char *reg = plait_path_join(dir, "register");
	r = write_file(reg, line, err);
	if (r < 0) {
		plait_error_wrap(err, "register QEMU handler for linux/%s", a->arch);
		return r;
	}
	*action = removed ? PLAIT_BINFMT_REREGISTERED : PLAIT_BINFMT_REGISTERED;
	return 0;
}

const char *plait_binfmt_dir(void)
{
	const char *d = getenv("PLAIT_BINFMT_DIR");
	return d && *d ? d : PLAIT_BINFMT_DIR;
}
