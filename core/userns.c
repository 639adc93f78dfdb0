/* core/userns.c - id maps and the process's user namespace (see userns.h). */
#include "userns.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"
#include "banned.h"

/* A decimal number of at most 10 digits below 2^32, ending at *end. */
static bool parse_u32(const char *s, const char *end, uint32_t *out)
{
	if (s == end || end - s > 10)
		return false;
	uint64_t v = 0;
	for (const char *p = s; p < end; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

static const char *find_colon(const char *p, const char *end)
{
	for (; p < end; p++)
		if (*p == ':')
			return p;
	return NULL;
}

size_t plait_subid_parse(const char *text, const char *name, uint32_t id,
			 struct plait_idmap_range *out, size_t max)
{
	char idstr[16];
	snprintf(idstr, sizeof(idstr), "%u", (unsigned)id);
	size_t found = 0;
	for (const char *line = text; line && *line;) {
		const char *eol = strchr(line, '\n');
		if (!eol)
			eol = line + strlen(line);
		const char *next = *eol ? eol + 1 : eol;
		while (line < eol && (*line == ' ' || *line == '\t'))
			line++;
		const char *end = eol;
		while (end > line && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
			end--;
		const char *c1 = find_colon(line, end);
		const char *c2 = c1 ? find_colon(c1 + 1, end) : NULL;
		uint32_t start, count;
		if (*line != '#' && c1 && c2 && !find_colon(c2 + 1, end) &&
		    parse_u32(c1 + 1, c2, &start) && parse_u32(c2 + 1, end, &count) && count > 0) {
			size_t flen = (size_t)(c1 - line);
			bool match = (name && flen == strlen(name) && !memcmp(line, name, flen)) ||
				     (flen == strlen(idstr) && !memcmp(line, idstr, flen));
			if (match) {
				if (found < max)
					out[found] = (struct plait_idmap_range){ 0, start, count };
				found++;
			}
		}
		line = next;
	}
	return found;
}

size_t plait_idmap_build(uint32_t self, const struct plait_idmap_range *sub, size_t n_sub,
			 struct plait_idmap_range *out, size_t max, uint64_t *total)
{
	size_t n = 0;
	uint64_t next = 1;
	*total = 0;
	if (max == 0)
		return 0;
	out[n++] = (struct plait_idmap_range){ 0, self, 1 };
	*total = 1;
	for (size_t i = 0; i < n_sub && n < max; i++) {
		uint64_t start = sub[i].outside, count = sub[i].count;
		if (start + count > (uint64_t)UINT32_MAX) /* ids up to 2^32-2: -1 is "no id" */
			count = start < UINT32_MAX ? UINT32_MAX - start : 0;
		/* The user's own id inside a range: the range stops short of it
		 * (it is mapped already, as 0). */
		if (self >= start && self < start + count)
			count = self - start;
		if (next + count > (uint64_t)UINT32_MAX)
			count = UINT32_MAX - next;
		if (count == 0)
			continue;
		out[n++] = (struct plait_idmap_range){ (uint32_t)next, (uint32_t)start, (uint32_t)count };
		next += count;
		*total += count;
	}
	return n;
}

int plait_idmap_parse_proc(const char *text, struct plait_idmap_range *out, size_t max)
{
	int n = 0;
	for (const char *p = text; *p;) {
		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		if (!*p)
			break;
		uint32_t v[3];
		for (int i = 0; i < 3; i++) {
			while (*p == ' ' || *p == '\t')
				p++;
			const char *s = p;
			while (*p >= '0' && *p <= '9')
				p++;
			if (!parse_u32(s, p, &v[i]))
				return -1;
		}
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p && *p != '\n')
			return -1;
		if ((size_t)n < max)
			out[n] = (struct plait_idmap_range){ v[0], v[1], v[2] };
		n++;
	}
	return n;
}

bool plait_idmap_is_initial(const struct plait_idmap_range *r, size_t n)
{
	return n == 1 && r[0].inside == 0 && r[0].outside == 0 && r[0].count == UINT32_MAX;
}

static struct plait_userns_info self_info;
static pthread_once_t self_once = PTHREAD_ONCE_INIT;

static bool read_map(const char *path, uint64_t *ids, bool *initial)
{
	char buf[8192];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	struct plait_idmap_range r[PLAIT_IDMAP_MAX];
	int lines = plait_idmap_parse_proc(buf, r, (size_t)ARRAY_SIZE(r));
	if (lines < 0)
		return false;
	size_t kept = (size_t)lines < ARRAY_SIZE(r) ? (size_t)lines : (size_t)ARRAY_SIZE(r);
	*ids = 0;
	for (size_t i = 0; i < kept; i++)
		*ids += r[i].count;
	*initial = plait_idmap_is_initial(r, kept);
	return true;
}

static void read_self(void)
{
	bool init_u = true, init_g = true;
	self_info.n_uids = self_info.n_gids = UINT32_MAX;
	if (!read_map("/proc/self/uid_map", &self_info.n_uids, &init_u))
		self_info.n_uids = UINT32_MAX;
	if (!read_map("/proc/self/gid_map", &self_info.n_gids, &init_g))
		self_info.n_gids = UINT32_MAX;
	self_info.nested = !init_u || !init_g;
}

const struct plait_userns_info *plait_userns_self(void)
{
	pthread_once(&self_once, read_self);
	return &self_info;
}

const char *plait_userns_overlay_xattr_prefix(void)
{
	return plait_userns_self()->nested ? "user.overlay." : "trusted.overlay.";
}

const char *plait_userns_opaque_xattr(void)
{
	return plait_userns_self()->nested ? "user.overlay.opaque" : "trusted.overlay.opaque";
}

static atomic_bool flatten;

void plait_userns_set_flatten(bool on)
{
	atomic_store(&flatten, on);
}

bool plait_userns_flatten(void)
{
	return atomic_load(&flatten);
}
