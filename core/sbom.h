/* core/sbom.h - a software bill of materials of an image, made by plait from
 * its final root file system: SPDX 2.3 JSON.
 *
 * What it reads: the image's layers in order, as a runtime would stack them
 * (whiteouts and opaque directories hide what lower layers had), keeping only
 * the package databases, never writing a file:
 *  - dpkg (Debian, Ubuntu): /var/lib/dpkg/status and distroless' status.d/;
 *    packages whose files are there (not "config-files" or "not-installed");
 *  - apk (Alpine): /lib/apk/db/installed;
 *  - Python: every *.dist-info/METADATA, *.egg-info/PKG-INFO and *.egg-info
 *    file; conda: every JSON record in a conda-meta directory;
 *  - the distribution from /etc/os-release (else /usr/lib/os-release).
 * RPM databases are not read (Berkeley DB or SQLite): the document says so
 * in its creation comment when one is there.
 *
 * Contract: the document is a pure function of the layers and the
 * description (packages sorted; with have_epoch the creation time is the
 * epoch), so a reproducible image has a reproducible SBOM. A database larger
 * than 64 MiB, or databases adding up to more than 256 MiB over all layers,
 * are an error naming them, never a silent truncation. */
#ifndef PLAIT_SBOM_H
#define PLAIT_SBOM_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "error.h"
#include "store.h"

struct plait_sbom_package {
	char *type;    /* purl type: "deb", "apk", "pypi", "conda" */
	char *name;
	char *version;
	char *arch;    /* or NULL */
	char *license; /* as the database records it, or NULL */
	bool license_free_text; /* a description ("BSD", Python's legacy License:), not an SPDX expression */
	char *source;  /* deb: the source package, apk: origin; or NULL */
	char *extra;   /* conda: build string; or NULL */
	char *path;    /* the record it came from ("var/lib/dpkg/status") */
};

struct plait_sbom {
	struct plait_sbom_package *pkgs;
	size_t n;
	char *os_id, *os_version_id, *os_name; /* os-release's ID, VERSION_ID, PRETTY_NAME (or NULL) */
	char *rpm_db; /* the path of an RPM database found (not read), or NULL */
	/* internal: the files kept while the layers are read */
	struct sbom_file *files;
	size_t n_files;
	size_t kept_bytes;
};
void plait_sbom_release(struct plait_sbom *sb);

/* The root file system of the image manifest at digest (its layers in s). */
int plait_sbom_scan(struct plait_store *s, const char *manifest_digest, struct plait_sbom *out,
		    struct plait_error **err);
/* A tar stream's files applied on top of what sb holds (one layer; fd is
 * read to its end, gzip or zstd compressed or not); what names it in errors. */
int plait_sbom_add_layer(struct plait_sbom *sb, int fd, const char *what, struct plait_error **err);
/* The packages of the files kept (after the last layer). */
int plait_sbom_finish(struct plait_sbom *sb, struct plait_error **err);

struct plait_sbom_doc {
	const char *name;     /* the image ("registry/repo:tag"), or NULL */
	const char *platform; /* "linux/amd64" */
	const char *digest;   /* the platform manifest's */
	const char *base_ref, *base_digest; /* what it starts FROM, or NULL (scratch) */
	bool have_epoch;
	int64_t epoch, now; /* Unix seconds: the creation time is epoch with have_epoch, else now */
};
/* Package URL percent-encoding of a name, version or qualifier value: all
 * but ASCII letters, digits and "-._~" ("1:2.0+b1" -> "1%3A2.0%2Bb1"). */
void plait_purl_escape(struct plait_buf *b, const char *s);

int plait_sbom_spdx(const struct plait_sbom *sb, const struct plait_sbom_doc *d, struct plait_buf *out,
		    struct plait_error **err);

#endif
