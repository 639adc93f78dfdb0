/* core/strv.c - string vectors; the contract is in strv.h. */
#include "strv.h"

#include <jansson.h>

#include "buf.h"
#include "util.h"
#include "banned.h"

void plait_strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

size_t (plait_strv_length)(const char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

void plait_strv_push_take(char ***v, char *s)
{
	size_t n = plait_strv_length(*v);
	*v = xrealloc(*v, (n + 2) * sizeof(char *));
	(*v)[n] = s;
	(*v)[n + 1] = NULL;
}

void plait_strv_push(char ***v, const char *s)
{
	plait_strv_push_take(v, xstrdup(s));
}

void plait_strv_add_take(char ***v, size_t *n, size_t *alloc, char *s)
{
	PLAIT_ALLOC_GROW(*v, *n + 2, *alloc);
	(*v)[(*n)++] = s;
	(*v)[*n] = NULL;
}

void plait_strv_add(char ***v, size_t *n, size_t *alloc, const char *s)
{
	plait_strv_add_take(v, n, alloc, xstrdup(s));
}

char **(plait_strv_copy_nonnull)(const char *const *v)
{
	size_t n = plait_strv_length(v);
	char **r = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		r[i] = xstrdup(v[i]);
	return r;
}

char **(plait_strv_copy)(const char *const *v)
{
	return v ? plait_strv_copy_nonnull(v) : NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void plait_strv_sort(char **v)
{
	size_t n = plait_strv_length(v);
	if (n > 1)
		qsort(v, n, sizeof(char *), cmp_str);
}

bool (plait_strv_contains)(const char *const *v, const char *s)
{
	for (; v && *v; v++)
		if (streq(*v, s))
			return true;
	return false;
}

char *(plait_strv_join)(const char *const *v, const char *sep)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	for (size_t i = 0; v && v[i]; i++) {
		if (i)
			plait_buf_adds(&b, sep);
		plait_buf_adds(&b, v[i]);
	}
	return plait_buf_detach(&b, NULL);
}

json_t *(plait_strv_to_json)(const char *const *v)
{
	json_t *a = json_array();
	if (!a)
		plait_die_oom();
	for (; v && *v; v++)
		json_array_append_new(a, json_string(*v));
	return a;
}
