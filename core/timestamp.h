/* core/timestamp.h - timestamps as plait writes them: RFC 3339 in UTC, and
 * SOURCE_DATE_EPOCH (reproducible builds: a Unix time that replaces "now").
 *
 * (Not core/time.h: core/ is on the include path, where that name would stand
 * in for the C library's <time.h>.)
 *
 * Contract: pure functions of their arguments, except plait_timestamp_now()
 * which reads the clock when no epoch is given. Nothing here reads the
 * environment: cmd/ reads $SOURCE_DATE_EPOCH and hands the string over. */
#ifndef PLAIT_TIMESTAMP_H
#define PLAIT_TIMESTAMP_H

#include <stdbool.h>
#include <stdint.h>

/* Room for any RFC 3339 time plait writes, with its NUL. */
#define PLAIT_RFC3339_MAX 32

/* "2023-11-14T22:13:20Z" for a Unix time (seconds, UTC). */
void plait_rfc3339(int64_t epoch, char out[PLAIT_RFC3339_MAX]);
/* The image "created" time: epoch when have_epoch (SOURCE_DATE_EPOCH or
 * --source-date-epoch), else now; as plait_rfc3339. */
void plait_rfc3339_now_or(bool have_epoch, int64_t epoch, char out[PLAIT_RFC3339_MAX]);
/* Parse a Unix time as SOURCE_DATE_EPOCH and --source-date-epoch take it: the
 * whole string one base-10 number as strtoll(3) reads it (so leading blanks
 * and a '+' pass), not negative, in range. 0, or -EINVAL (out untouched). */
int plait_epoch_parse(const char *s, int64_t *out);

#endif
