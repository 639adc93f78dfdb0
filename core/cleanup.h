/* core/cleanup.h - cleanup functions for the third-party library types core
 * uses, each declared once here (libc's are in util.h, curl's in registry/,
 * jansson has json_auto_t):
 *
 *   _cleanup_(archive_read_freep)  struct archive *   (libarchive reader)
 *   _cleanup_(archive_write_freep) struct archive *   (libarchive writer)
 *   _cleanup_(archive_entry_freep) struct archive_entry *
 *   _cleanup_(EVP_MD_CTX_freep)    EVP_MD_CTX *       (OpenSSL)
 *
 * Each accepts NULL. */
#ifndef PLAIT_CLEANUP_H
#define PLAIT_CLEANUP_H

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>

#include "util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct archive *, archive_read_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct archive *, archive_write_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct archive_entry *, archive_entry_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MD_CTX *, EVP_MD_CTX_free)

#endif
