/* core/timestamp.c - RFC 3339 and SOURCE_DATE_EPOCH; the contract is in timestamp.h. */
#include "timestamp.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "banned.h"

void plait_rfc3339(int64_t epoch, char out[PLAIT_RFC3339_MAX])
{
	time_t t = (time_t)epoch;
	struct tm tm;
	if (!gmtime_r(&t, &tm) || !strftime(out, PLAIT_RFC3339_MAX, "%Y-%m-%dT%H:%M:%SZ", &tm))
		out[0] = '\0';
}

void plait_rfc3339_now_or(bool have_epoch, int64_t epoch, char out[PLAIT_RFC3339_MAX])
{
	plait_rfc3339(have_epoch ? epoch : (int64_t)time(NULL), out);
}

int plait_epoch_parse(const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < 0)
		return -EINVAL;
	*out = v;
	return 0;
}
