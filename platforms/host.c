/* platforms/host.c - the platform this process runs on; see host.h. */
#include "host.h"

#include "core/buf.h"

#include <sys/utsname.h>

#include "core/banned.h"

static const char *arm_variant_of_this_cpu(void)
{
	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	if (plait_buf_read_file(&b, "/proc/cpuinfo", 4u * 1024 * 1024) < 0)
		return plait_platform_arm_variant_from_cpuinfo(NULL);
	return plait_platform_arm_variant_from_cpuinfo(b.buf);
}

void plait_platform_host(struct plait_platform *out)
{
	struct utsname u;
	if (uname(&u) < 0) {
		/* Cannot happen on Linux; fall back to what we were built for. */
		memset(out, 0, sizeof(*out));
		out->os = xstrdup("linux");
		out->architecture = xstrdup("unknown");
		return;
	}
	plait_platform_from_uname(u.sysname, u.machine, arm_variant_of_this_cpu, out);
}
