/* cmd/version.c - plait version */
#include <stdio.h>

#include <archive.h>
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "common.h"
#include "plait-config.h"
#include "core/banned.h"

int cmd_version(int argc, char **argv)
{
	if (argc > 1 && (streq(argv[1], "--help") || streq(argv[1], "-h"))) {
		printf("usage: plait version\n\nPrint plait's version and the versions of the libraries it uses.\n");
		return 0;
	}
	if (argc > 1)
		return usage_error("version", "unexpected argument '%s'", argv[1]);
	printf("plait %s\n", PLAIT_VERSION);
	printf("  libcurl %s, jansson %s, %s, %s\n", curl_version_info(CURLVERSION_NOW)->version,
	       jansson_version_str(), archive_version_string(), OpenSSL_version(OPENSSL_VERSION));
	return 0;
}
