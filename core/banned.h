/* core/banned.h - functions plait must not use (after git's banned.h).
 * Unbounded string copies and formatting are compile errors; use struct
 * plait_buf instead. Included last by every .c file through the build flags. */
#ifndef PLAIT_BANNED_H
#define PLAIT_BANNED_H

#define BANNED(func) sorry_##func##_is_a_banned_function

#undef strcpy
#define strcpy(x, y) BANNED(strcpy)
#undef strcat
#define strcat(x, y) BANNED(strcat)
#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef gets
#define gets(x) BANNED(gets)

#endif
