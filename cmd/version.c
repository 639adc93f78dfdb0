/* cmd/version.c - plait version [--format text|json] */
#include <stdio.h>
#include <sys/statvfs.h>

#include <archive.h>
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "common.h"
#include "plait-config.h"
#include "core/cache.h"
#include "core/fs.h"
#include "platforms/remote.h"
#include "core/banned.h"

static const char usage[] =
	"usage: plait version [--format text|json]\n"
	"\n"
	"Print plait's version and the versions of the libraries it uses. With\n"
	"--format json: {\"version\", \"protocol\" (of 'plait builder' nodes), \"cache\":\n"
	"{\"dir\", \"free_bytes\"}} (what 'plait builder create' records of a node).\n";

/* Free bytes on the file system that holds dir (or its nearest existing parent). */
static long long free_bytes(const char *dir)
{
	char *p = xstrdup(dir);
	struct statvfs st;
	while (statvfs(p, &st) < 0) {
		char *up = plait_path_dir(p);
		bool same = streq(up, p);
		free(p);
		p = up;
		if (same) {
			free(p);
			return -1;
		}
	}
	free(p);
	return (long long)st.f_bavail * (long long)st.f_frsize;
}

int cmd_version(int argc, char **argv)
{
	bool json = false;
	for (int i = 1; i < argc; i++) {
		if (streq(argv[i], "--help") || streq(argv[i], "-h")) {
			fputs(usage, stdout);
			return 0;
		}
		const char *f = NULL;
		if (streq(argv[i], "--format") && i + 1 < argc)
			f = argv[++i];
		else if (startswith(argv[i], "--format="))
			f = argv[i] + strlen("--format=");
		else
			return usage_error("version", "unexpected argument '%s'", argv[i]);
		if (streq(f, "json"))
			json = true;
		else if (!streq(f, "text"))
			return usage_error("version", "--format: unknown '%s'; use text or json", f);
	}
	if (json) {
		_cleanup_free_ char *cache = plait_cache_default_dir();
		json_auto_t *o = json_object(), *c = json_object();
		json_object_set_new(o, "version", json_string(PLAIT_VERSION));
		json_object_set_new(o, "protocol", json_integer(PLAIT_REMOTE_PROTOCOL));
		json_object_set_new(c, "dir", json_string(cache));
		json_object_set_new(c, "free_bytes", json_integer(free_bytes(cache)));
		json_object_set(o, "cache", c);
		json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
		return 0;
	}
	printf("plait %s\n", PLAIT_VERSION);
	printf("  libcurl %s, jansson %s, %s, %s\n", curl_version_info(CURLVERSION_NOW)->version,
	       jansson_version_str(), archive_version_string(), OpenSSL_version(OPENSSL_VERSION));
	return 0;
}
