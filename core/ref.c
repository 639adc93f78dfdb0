/* core/ref.c - image references, with the grammar of distribution/reference,
 * and Docker Hub's names; see ref.h.
 *
 * Parsing goes right to left: "@digest" first, then ":tag" after the last '/',
 * then the domain is the first component when it looks like a host. Each part
 * is checked by its own small grammar function so errors can name the part. */
#include "ref.h"

#include "buf.h"
#include "digest.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <strings.h>

#include "banned.h"

#define NAME_MAX_LEN 255
#define TAG_MAX_LEN 128

#define DOCKER_HUB "docker.io"
#define DOCKER_HUB_API "registry-1.docker.io"
#define DOCKER_HUB_INDEX "index.docker.io"
/* What docker writes in config.json "auths" and sends credential helpers. */
#define DOCKER_HUB_CREDENTIALS_KEY "https://" DOCKER_HUB_INDEX "/v1/"

/* Hosts people write for Docker Hub; all mean "docker.io". */
static const char *const docker_hub_aliases[] = {
    DOCKER_HUB,
    DOCKER_HUB_INDEX,
    DOCKER_HUB_API,
};

const char *plait_docker_hub_domain(void)
{
	return DOCKER_HUB;
}

const char *plait_docker_hub_api_host(void)
{
	return DOCKER_HUB_API;
}

const char *plait_docker_hub_index_host(void)
{
	return DOCKER_HUB_INDEX;
}

const char *plait_docker_hub_credentials_key(void)
{
	return DOCKER_HUB_CREDENTIALS_KEY;
}

bool plait_docker_hub_is_alias_n(const char *host, size_t len)
{
	if (!host)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(docker_hub_aliases); i++)
		if (strlen(docker_hub_aliases[i]) == len &&
		    strncasecmp(docker_hub_aliases[i], host, len) == 0)
			return true;
	return false;
}

bool plait_docker_hub_is_alias(const char *host)
{
	return host && plait_docker_hub_is_alias_n(host, strlen(host));
}

static bool is_word(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool plait_tag_is_valid(const char *tag)
{
	if (!tag || !is_word(tag[0]))
		return false;
	size_t i = 1;
	for (; tag[i]; i++) {
		if (i >= TAG_MAX_LEN)
			return false;
		if (!is_word(tag[i]) && tag[i] != '.' && tag[i] != '-')
			return false;
	}
	return true;
}

/* [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)* over s[0..len). */
static bool path_component_is_valid(const char *s, size_t len)
{
	size_t i = 0;
	for (;;) {
		size_t start = i;
		while (i < len && is_lower_alnum(s[i]))
			i++;
		if (i == start)
			return false;
		if (i == len)
			return true;
		if (s[i] == '.') {
			i++;
		} else if (s[i] == '_') {
			i++;
			if (i < len && s[i] == '_')
				i++;
		} else if (s[i] == '-') {
			while (i < len && s[i] == '-')
				i++;
		} else {
			return false;
		}
	}
}

/* [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9] */
static bool domain_component_is_valid(const char *s, size_t len)
{
	if (len == 0 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[len - 1]))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-')
			return false;
	return true;
}

static bool all_digits(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* host [':' port], host = domain-name | '[' IPv6 ']'. */
static bool domain_is_valid(const char *s, size_t len)
{
	size_t host_end;
	if (len > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', len);
		if (!close || close == s + 1)
			return false;
		for (const char *p = s + 1; p < close; p++)
			if (!isxdigit((unsigned char)*p) && *p != ':')
				return false;
		host_end = (size_t)(close - s) + 1;
	} else {
		const char *colon = memchr(s, ':', len);
		host_end = colon ? (size_t)(colon - s) : len;
		for (size_t start = 0;;) {
			const char *dot = memchr(s + start, '.', host_end - start);
			size_t end = dot ? (size_t)(dot - s) : host_end;
			if (!domain_component_is_valid(s + start, end - start))
				return false;
			if (!dot)
				break;
			start = end + 1;
		}
	}
	if (host_end == len)
		return true;
	return s[host_end] == ':' && all_digits(s + host_end + 1, len - host_end - 1);
}

static bool is_image_id(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (!isxdigit((unsigned char)s[n]) || isupper((unsigned char)s[n]))
			return false;
	return n == 64;
}

/* Why path is not a repository path, or NULL; *bad gets the offending component. */
static const char *path_problem(const char *path, size_t len, const char **bad, size_t *bad_len)
{
	*bad = NULL;
	*bad_len = 0;
	if (len > 0 && path[len - 1] == '/')
		return "repository name must not end with '/'";
	if (len > 0 && path[0] == '/')
		return "repository name must not start with '/'";
	for (size_t i = 0; i < len; i++)
		if (isupper((unsigned char)path[i]))
			return "repository name must be lowercase";
	for (size_t start = 0;;) {
		const char *slash = memchr(path + start, '/', len - start);
		size_t end = slash ? (size_t)(slash - path) : len;
		if (end == start)
			return "empty path component ('//')";
		if (!path_component_is_valid(path + start, end - start)) {
			*bad = path + start;
			*bad_len = end - start;
			return "invalid path component";
		}
		if (!slash)
			return NULL;
		start = end + 1;
	}
}

int plait_ref_parse(const char *s, struct plait_ref *out, struct plait_error **err)
{
	memset(out, 0, sizeof(*out));
	if (!s || !*s)
		return plait_error_set(err, PLAIT_E_USAGE,
				       "invalid reference '': empty; expected "
				       "[registry/]repository[:tag][@digest]");
	if (is_image_id(s))
		return plait_error_set(err, PLAIT_E_USAGE,
				       "invalid reference '%s': a 64-character hex string is an "
				       "image ID, not a repository name",
				       s);

	size_t name_len = strlen(s);
	_cleanup_free_ char *digest = NULL;
	_cleanup_free_ char *tag = NULL;

	const char *at = strchr(s, '@');
	if (at) {
		name_len = (size_t)(at - s);
		if (!at[1])
			return plait_error_set(err, PLAIT_E_USAGE,
					       "invalid reference '%s': missing digest after '@'",
					       s);
		_cleanup_error_ struct plait_error *derr = NULL;
		if (plait_digest_validate(at + 1, &derr) < 0)
			return plait_error_set(err, PLAIT_E_USAGE, "invalid reference '%s': %s", s,
					       derr ? derr->msg : "invalid digest");
		digest = xstrdup(at + 1);
	}

	/* A ':' after the last '/' starts the tag ("localhost:5000/a" has none). */
	const char *colon = NULL;
	for (size_t i = 0; i < name_len; i++) {
		if (s[i] == '/')
			colon = NULL;
		else if (s[i] == ':')
			colon = s + i;
	}
	if (colon) {
		size_t tag_len = name_len - (size_t)(colon - s) - 1;
		tag = xstrndup(colon + 1, tag_len);
		name_len = (size_t)(colon - s);
		if (!*tag)
			return plait_error_set(err, PLAIT_E_USAGE,
					       "invalid reference '%s': missing tag after ':'", s);
		if (!plait_tag_is_valid(tag))
			return plait_error_set(
			    err, PLAIT_E_USAGE,
			    "invalid reference '%s': invalid tag '%s': use letters, digits, "
			    "'_', '.' and '-' (not first), at most %d characters",
			    s, tag, TAG_MAX_LEN);
	}
	if (name_len == 0)
		return plait_error_set(err, PLAIT_E_USAGE,
				       "invalid reference '%s': missing repository name", s);

	/* Domain: the first component when it looks like a host. */
	const char *path = s;
	size_t path_len = name_len;
	const char *dom = DOCKER_HUB;
	size_t dom_len = strlen(DOCKER_HUB);
	const char *slash = memchr(s, '/', name_len);
	if (slash) {
		size_t first_len = (size_t)(slash - s);
		bool host_like = memchr(s, '.', first_len) || memchr(s, ':', first_len) ||
				 (first_len == 9 && memcmp(s, "localhost", 9) == 0);
		/* Like the regular expression of distribution/reference, a first
		 * component that is no valid host but a valid path component
		 * ("a.b-c_d__e/f") makes the whole name a path. */
		if (host_like && !domain_is_valid(s, first_len) &&
		    path_component_is_valid(s, first_len))
			host_like = false;
		if (host_like) {
			if (!domain_is_valid(s, first_len))
				return plait_error_set(err, PLAIT_E_USAGE,
						       "invalid reference '%s': invalid registry "
						       "host '%.*s'",
						       s, (int)first_len, s);
			dom = s;
			dom_len = first_len;
			path = slash + 1;
			path_len = name_len - first_len - 1;
		}
	}
	if (path_len == 0)
		return plait_error_set(err, PLAIT_E_USAGE,
				       "invalid reference '%s': missing repository name after the "
				       "registry host",
				       s);

	const char *bad;
	size_t bad_len;
	const char *why = path_problem(path, path_len, &bad, &bad_len);
	if (why && bad)
		return plait_error_set(err, PLAIT_E_USAGE,
				       "invalid reference '%s': %s '%.*s': use lowercase letters "
				       "and digits joined by '.', '_', '__' or '-'",
				       s, why, (int)bad_len, bad);
	if (why)
		return plait_error_set(err, PLAIT_E_USAGE, "invalid reference '%s': %s", s, why);

	struct plait_buf b = PLAIT_BUF_INIT;
	bool hub = plait_docker_hub_is_alias_n(dom, dom_len);
	if (hub) {
		out->domain = xstrdup(DOCKER_HUB);
		/* Official images live under "library/" (docker.io only). */
		if (!memchr(path, '/', path_len))
			plait_buf_adds(&b, "library/");
	} else {
		out->domain = xstrndup(dom, dom_len);
	}
	plait_buf_add(&b, path, path_len);
	out->path = plait_buf_detach(&b, NULL);

	if (strlen(out->domain) + 1 + strlen(out->path) > NAME_MAX_LEN) {
		plait_ref_release(out);
		return plait_error_set(err, PLAIT_E_USAGE,
				       "invalid reference '%s': repository name is longer than %d "
				       "characters",
				       s, NAME_MAX_LEN);
	}
	out->tag = TAKE_PTR(tag);
	out->digest = TAKE_PTR(digest);
	return 0;
}

void plait_ref_release(struct plait_ref *r)
{
	if (!r)
		return;
	free(r->domain);
	free(r->path);
	free(r->tag);
	free(r->digest);
	memset(r, 0, sizeof(*r));
}

void plait_ref_copy(struct plait_ref *dst, const struct plait_ref *src)
{
	dst->domain = xstrdup_or_null(src->domain);
	dst->path = xstrdup_or_null(src->path);
	dst->tag = xstrdup_or_null(src->tag);
	dst->digest = xstrdup_or_null(src->digest);
}

char *plait_ref_format(const struct plait_ref *r)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s/%s", r->domain ? r->domain : "", r->path ? r->path : "");
	if (r->tag)
		plait_buf_addf(&b, ":%s", r->tag);
	if (r->digest)
		plait_buf_addf(&b, "@%s", r->digest);
	return plait_buf_detach(&b, NULL);
}

char *plait_ref_name(const struct plait_ref *r)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s/%s", r->domain ? r->domain : "", r->path ? r->path : "");
	return plait_buf_detach(&b, NULL);
}

const char *plait_ref_api_host(const struct plait_ref *r)
{
	if (!r->domain || streq(r->domain, DOCKER_HUB))
		return DOCKER_HUB_API;
	return r->domain;
}

static bool port_is_valid(const char *p)
{
	size_t n = strlen(p);
	return n > 0 && n <= 5 && all_digits(p, n);
}

bool plait_host_is_loopback(const char *host)
{
	if (!host || !*host)
		return false;
	char tmp[64];
	size_t len = strlen(host);
	if (len >= sizeof(tmp))
		return false;

	const char *name = host;
	size_t name_len = len;
	if (host[0] == '[') {
		/* "[::1]" or "[::1]:5000" */
		const char *close = strchr(host, ']');
		if (!close)
			return false;
		if (close[1] && (close[1] != ':' || !port_is_valid(close + 2)))
			return false;
		name = host + 1;
		name_len = (size_t)(close - name);
	} else if (strchr(host, ':') != strrchr(host, ':')) {
		/* Two or more ':' without brackets: a bare IPv6 address ("::1"). */
	} else {
		const char *colon = strchr(host, ':');
		if (colon) {
			if (!port_is_valid(colon + 1))
				return false;
			name_len = (size_t)(colon - host);
		}
	}
	memcpy(tmp, name, name_len);
	tmp[name_len] = '\0';

	if (strcasecmp(tmp, "localhost") == 0)
		return true;
	struct in_addr a4;
	if (inet_pton(AF_INET, tmp, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	struct in6_addr a6;
	if (inet_pton(AF_INET6, tmp, &a6) == 1)
		return memcmp(&a6, &in6addr_loopback, sizeof(a6)) == 0;
	return false;
}
