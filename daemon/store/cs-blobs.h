/*
 * cs-blobs.h — content-addressed files in the state directory: the bytes of uploaded
 * materials, kept out of the ledger (docs/architecture.md §3.5). The ledger refers to each by its
 * SHA-256; the file is <dir>/<first 2 hex digits>/<64 hex digits>, 0600, never rewritten.
 *
 * A CsBlobWriter streams an upload into a private temporary file in <dir>/tmp while
 * hashing it, so no upload is ever held in memory whole; committing fsyncs it and links it
 * under its hash (content already there is kept: same hash, same bytes). A writer is used
 * by one thread at a time; the store itself is only a directory name, usable from any.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _CsBlobs CsBlobs;
typedef struct _CsBlobWriter CsBlobWriter;

/* @dir is created (0700) when the first blob is written. Temporary files a crash left in
 * <dir>/tmp are removed. */
CsBlobs *cs_blobs_open(const char *dir);
void cs_blobs_free(CsBlobs *blobs);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsBlobs, cs_blobs_free)

/* TRUE for a name a blob is stored under: 64 lower-case hex digits. */
gboolean cs_blobs_is_hash(const char *name);
/* The file a hash is stored in (whether or not it exists); NULL for a malformed hash. */
char *cs_blobs_path(CsBlobs *blobs, const char *sha256);
gboolean cs_blobs_contains(CsBlobs *blobs, const char *sha256);
/* The bytes stored under @sha256, checked against it: CS_ERROR_NOT_FOUND when absent,
 * CS_ERROR_INTERNAL (naming the hash) when the file no longer matches it. */
GBytes *cs_blobs_load(CsBlobs *blobs, const char *sha256, GError **error);
/* Store @data whole (migrations, tests); the lower-case hex SHA-256 in @sha256_out. */
gboolean
cs_blobs_put(CsBlobs *blobs, const guint8 *data, gsize len, char **sha256_out, GError **error);

CsBlobWriter *cs_blob_writer_new(CsBlobs *blobs, GError **error);
gboolean cs_blob_writer_write(CsBlobWriter *writer, const guint8 *data, gsize len, GError **error);
gsize cs_blob_writer_get_size(CsBlobWriter *writer);
/* The content written so far, mapped read-only from the file (not copied into memory):
 * for checks that need the whole of it. */
GBytes *cs_blob_writer_map(CsBlobWriter *writer, GError **error);
/* fsync, link under the hash, fsync the directory; the hash in @sha256_out. */
gboolean cs_blob_writer_commit(CsBlobWriter *writer, char **sha256_out, GError **error);
/* Removes the temporary file unless committed. */
void cs_blob_writer_free(CsBlobWriter *writer);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsBlobWriter, cs_blob_writer_free)

G_END_DECLS
