/* core/dockerfile_mount.c - the RUN --mount grammar (see dockerfile_mount.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "dockerfile_mount.h"
#include "util.h"
#include "banned.h"

static const char *const type_names[] = { "bind", "cache", "tmpfs", "secret", "ssh" };
static const char *const sharing_names[] = { "shared", "locked", "private" };

const char *plait_df_mount_type_name(enum plait_df_mount_type t)
{
	return (unsigned)t < ARRAY_SIZE(type_names) ? type_names[t] : "unknown";
}

static void set(char **field, const char *v)
{
	free(*field);
	*field = xstrdup(v);
}

/* The first bad field is the one reported. */
static void bad(struct plait_df_mount *m, const char *name, const char *v, bool number)
{
	if (m->bad_name)
		return;
	m->bad_name = xstrdup(name);
	m->bad_value = xstrdup(v);
	m->bad_number = number;
}

void plait_df_mount_scan(const char *spec, struct plait_df_mount *m)
{
	memset(m, 0, sizeof(*m));
	m->type_name = xstrdup("bind");
	m->uid = m->gid = m->mode = -1;
	_cleanup_free_ char *copy = xstrdup(spec);
	for (char *save = NULL, *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(f, '=');
		const char *v = eq ? eq + 1 : "";
		if (eq)
			*eq = '\0';
		if (streq(f, "type"))
			set(&m->type_name, v);
		else if (streq(f, "target") || streq(f, "dst") || streq(f, "destination"))
			set(&m->target, v);
		else if (streq(f, "id"))
			set(&m->id, v);
		else if (streq(f, "source") || streq(f, "src"))
			set(&m->source, v);
		else if (streq(f, "from"))
			set(&m->from, v);
		else if (streq(f, "rw") || streq(f, "readwrite"))
			m->rw = !eq || streq(v, "true");
		else if (streq(f, "ro") || streq(f, "readonly"))
			m->rw = eq && streq(v, "false");
		else if (streq(f, "required"))
			m->required = !eq || streq(v, "true");
		else if (streq(f, "mode"))
			set(&m->mode_name, v);
		else if (streq(f, "size"))
			set(&m->size, v);
		else if (streq(f, "env"))
			set(&m->env, v);
		else if (streq(f, "sharing"))
			set(&m->sharing_name, v);
		else if (streq(f, "uid") || streq(f, "gid")) {
			char *end = NULL;
			errno = 0;
			unsigned long n = strtoul(v, &end, 10);
			if (!*v || *end || errno || n > 0x7fffffffUL)
				bad(m, f, v, true);
			else if (streq(f, "uid"))
				m->uid = (long)n;
			else
				m->gid = (long)n;
		} else {
			bad(m, f, v, false);
		}
	}
	m->type = PLAIT_DF_MOUNT_UNKNOWN;
	for (size_t i = 0; i < ARRAY_SIZE(type_names); i++)
		if (streq(m->type_name, type_names[i]))
			m->type = (enum plait_df_mount_type)i;
	m->sharing = m->sharing_name ? PLAIT_DF_MOUNT_SHARING_UNKNOWN : PLAIT_DF_MOUNT_SHARED;
	for (size_t i = 0; m->sharing_name && i < ARRAY_SIZE(sharing_names); i++)
		if (streq(m->sharing_name, sharing_names[i]))
			m->sharing = (enum plait_df_mount_sharing)i;
	if (m->mode_name) {
		char *end = NULL;
		errno = 0;
		long perm = strtol(m->mode_name, &end, 8);
		if (*m->mode_name && !*end && !errno && perm >= 0 && perm <= 07777)
			m->mode = perm;
	}
	m->secret_file = !m->env || m->target;
}

static int check(struct plait_df_mount *m, const char *written, struct plait_error **err)
{
	if (m->bad_name && m->bad_number)
		return plait_error_set(err, PLAIT_E_USAGE, "--mount: %s=%s: give a number", m->bad_name,
				       m->bad_value);
	if (m->bad_name)
		return plait_error_set(err, PLAIT_E_USAGE, "--mount: unknown option '%s'", m->bad_name);
	if (m->mode_name && m->mode < 0)
		return plait_error_set(err, PLAIT_E_USAGE,
				       "--mount: mode=%s: give octal permissions, e.g. 0400", m->mode_name);
	if (m->type == PLAIT_DF_MOUNT_UNKNOWN)
		return plait_error_set(err, PLAIT_E_USAGE,
				       "--mount: unknown type '%s'; use bind, cache, tmpfs, secret or ssh", m->type_name);
	if ((m->uid >= 0 || m->gid >= 0 || m->mode >= 0) && m->type != PLAIT_DF_MOUNT_CACHE &&
	    m->type != PLAIT_DF_MOUNT_SECRET && m->type != PLAIT_DF_MOUNT_SSH)
		return plait_error_set(err, PLAIT_E_USAGE,
				       "--mount: uid=, gid= and mode= are for type=cache, type=secret and type=ssh");
	if (m->env && m->type != PLAIT_DF_MOUNT_SECRET)
		return plait_error_set(err, PLAIT_E_USAGE, "--mount: env= is for type=secret only");
	if (m->type == PLAIT_DF_MOUNT_SECRET && !m->target) {
		struct plait_buf t = PLAIT_BUF_INIT;
		plait_buf_addf(&t, "/run/secrets/%s", m->id ? m->id : "");
		m->target = plait_buf_detach(&t, NULL);
	}
	/* An ssh agent socket without target= goes to
	 * /run/buildkit/ssh_agent.N, N counting the RUN's ssh mounts: the
	 * executor numbers them. */
	if (m->type == PLAIT_DF_MOUNT_SSH && !m->target)
		return 0;
	/* A relative target is below the working directory (the builder
	 * resolves it), as in BuildKit. */
	if (!m->target || !*m->target)
		return plait_error_set(err, PLAIT_E_USAGE,
				       "--mount=%s: needs target=PATH (absolute, or relative to WORKDIR)", written);
	if (m->type == PLAIT_DF_MOUNT_CACHE && m->sharing == PLAIT_DF_MOUNT_SHARING_UNKNOWN)
		return plait_error_set(err, PLAIT_E_USAGE, "--mount: sharing=%s: use shared, locked or private",
				       m->sharing_name);
	return 0;
}

int plait_df_mount_parse(const char *spec, const char *written, struct plait_df_mount *m,
			 struct plait_error **err)
{
	plait_df_mount_scan(spec, m);
	int r = check(m, written ? written : spec, err);
	if (r < 0)
		plait_df_mount_release(m);
	return r;
}

const char *plait_df_mount_ssh_id(const struct plait_df_mount *m)
{
	return m->id && *m->id ? m->id : "default";
}

const char *plait_df_mount_secret_id(const struct plait_df_mount *m)
{
	if (m->id)
		return m->id;
	const char *slash = m->target ? strrchr(m->target, '/') : NULL;
	return slash ? slash + 1 : "";
}

void plait_df_mount_release(struct plait_df_mount *m)
{
	if (!m)
		return;
	free(m->type_name);
	free(m->target);
	free(m->source);
	free(m->from);
	free(m->id);
	free(m->size);
	free(m->env);
	free(m->sharing_name);
	free(m->mode_name);
	free(m->bad_name);
	free(m->bad_value);
	memset(m, 0, sizeof(*m));
}
