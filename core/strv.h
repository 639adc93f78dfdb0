/* core/strv.h - string vectors: NULL-terminated arrays of heap strings (char **).
 *
 * Contract: a NULL vector is the empty vector everywhere (length 0, contains
 * nothing, copies to NULL, frees as a no-op). Every element is owned by the
 * vector; plait_strv_free() frees the elements and the array. Functions that
 * add copy their argument unless their name ends in _take. Allocation failure
 * aborts (see util.h), so none of these can fail. */
#ifndef PLAIT_STRV_H
#define PLAIT_STRV_H

#include <stdbool.h>
#include <stddef.h>

struct json_t;

/* Frees a NULL-terminated array of strings; NULL is fine. */
void plait_strv_free(char **v);
static inline void plait_strv_freep(char ***v)
{
	plait_strv_free(*v);
}
#define _cleanup_strv_free_ __attribute__((cleanup(plait_strv_freep)))

/* Number of elements before the terminating NULL; 0 for NULL. */
size_t plait_strv_length(const char *const *v);
/* Append a copy of s to *v (which may be NULL). */
void plait_strv_push(char ***v, const char *s);
/* Append s itself: *v owns it afterwards. */
void plait_strv_push_take(char ***v, char *s);
/* Append with a known length *n (kept up to date) and capacity *alloc (both
 * 0 for an empty vector): for loops that add many elements. The copy form
 * and the taking form. */
void plait_strv_add(char ***v, size_t *n, size_t *alloc, const char *s);
void plait_strv_add_take(char ***v, size_t *n, size_t *alloc, char *s);
/* A deep copy; NULL for NULL. */
char **plait_strv_copy(const char *const *v);
/* A deep copy that is never NULL: NULL becomes an empty vector. */
char **plait_strv_copy_nonnull(const char *const *v);
/* Sort the elements in place, in byte order (strcmp): for listings that
 * must come out the same on every machine. */
void plait_strv_sort(char **v);
/* Whether some element equals s. */
bool plait_strv_contains(const char *const *v, const char *s);
/* The elements joined with sep, as a new string ("" for an empty vector). */
char *plait_strv_join(const char *const *v, const char *sep);
/* A new JSON array of the elements (empty for NULL); the caller owns the
 * reference. The json_t of jansson. */
struct json_t *plait_strv_to_json(const char *const *v);

/* The read-only functions take any of char **, char *const *, const char **
 * and const char *const * (a registry option is the last, a parsed list the
 * first) without casts at the call, and nothing else. */
#define PLAIT_STRV_IN(v)                                   \
	_Generic((v),                                      \
		char **: (const char *const *)(v),         \
		char *const *: (const char *const *)(v),   \
		const char **: (const char *const *)(v),   \
		const char *const *: (v),                  \
		void *: (const char *const *)(v))
#define plait_strv_length(v) plait_strv_length(PLAIT_STRV_IN(v))
#define plait_strv_copy(v) plait_strv_copy(PLAIT_STRV_IN(v))
#define plait_strv_copy_nonnull(v) plait_strv_copy_nonnull(PLAIT_STRV_IN(v))
#define plait_strv_contains(v, s) plait_strv_contains(PLAIT_STRV_IN(v), s)
#define plait_strv_join(v, sep) plait_strv_join(PLAIT_STRV_IN(v), sep)
#define plait_strv_to_json(v) plait_strv_to_json(PLAIT_STRV_IN(v))

#endif
