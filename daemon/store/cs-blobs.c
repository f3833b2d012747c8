/*
 * cs-blobs.c — content-addressed files for material bytes (see cs-blobs.h).
 *
 * Invariants:
 *   - A file under its hash is complete and durable before anyone can name it: it is
 *     written and fsynced under a private temporary name, then link()ed into place (which
 *     never replaces an existing file) and its directory fsynced. The ledger row that
 *     refers to it commits after that, so a committed row never names a missing file; a
 *     crash in between leaves at most an unreferenced file.
 *   - Files are never rewritten or deleted here: a hash names one content forever.
 *   - Reading checks the bytes against their hash, so a file changed on disk is refused,
 *     not served.
 */
#define G_LOG_DOMAIN "certseald"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "certseal/plugin.h"
#include "cs-blobs.h"

#define CS_BLOBS_TMP "tmp"

struct _CsBlobs {
	char *dir;
};

struct _CsBlobWriter {
	CsBlobs *blobs; /* a copy of the store's: the writer may outlive it on its thread */
	GChecksum *sha256;
	char *tmp_path;
	int fd;
	gsize size;
	gboolean committed;
};

static gboolean
set_errno_error(GError **error, const char *path, const char *what, int saved_errno)
{
	g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s: cannot %s: %s", path, what,
		    g_strerror(saved_errno));
	return FALSE;
}

static gboolean
is_sha256_hex(const char *s)
{
	if (s == NULL || strlen(s) != 64)
		return FALSE;
	for (const char *p = s; *p != '\0'; p++) {
		if (!g_ascii_isdigit(*p) && !(*p >= 'a' && *p <= 'f'))
			return FALSE;
	}
	return TRUE;
}

static void
fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return;
	(void)fsync(fd);
	close(fd);
}

static void
remove_stale_temporaries(const char *tmp_dir)
{
	g_autoptr(GDir) dir = g_dir_open(tmp_dir, 0, NULL);
	const char *name;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		g_autofree char *path = g_build_filename(tmp_dir, name, NULL);

		if (g_unlink(path) == 0)
			g_debug("%s: removed an unfinished upload", path);
	}
}

gboolean
cs_blobs_is_hash(const char *name)
{
	return is_sha256_hex(name);
}

CsBlobs *
cs_blobs_open(const char *dir)
{
	CsBlobs *blobs = g_new0(CsBlobs, 1);
	g_autofree char *tmp = g_build_filename(dir, CS_BLOBS_TMP, NULL);

	blobs->dir = g_strdup(dir);
	remove_stale_temporaries(tmp);
	return blobs;
}

static CsBlobs *
cs_blobs_copy(CsBlobs *blobs)
{
	CsBlobs *copy = g_new0(CsBlobs, 1);

	copy->dir = g_strdup(blobs->dir);
	return copy;
}

void
cs_blobs_free(CsBlobs *blobs)
{
	if (blobs == NULL)
		return;
	g_free(blobs->dir);
	g_free(blobs);
}

char *
cs_blobs_path(CsBlobs *blobs, const char *sha256)
{
	char prefix[3];

	if (!is_sha256_hex(sha256))
		return NULL;
	memcpy(prefix, sha256, 2);
	prefix[2] = '\0';
	return g_build_filename(blobs->dir, prefix, sha256, NULL);
}

gboolean
cs_blobs_contains(CsBlobs *blobs, const char *sha256)
{
	g_autofree char *path = cs_blobs_path(blobs, sha256);

	return path != NULL && g_file_test(path, G_FILE_TEST_IS_REGULAR);
}

GBytes *
cs_blobs_load(CsBlobs *blobs, const char *sha256, GError **error)
{
	g_autofree char *path = cs_blobs_path(blobs, sha256);
	g_autoptr(GError) local = NULL;
	g_autofree char *actual = NULL;
	char *data = NULL;
	gsize len = 0;

	if (path == NULL) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "material %s: not a SHA-256",
			    sha256 != NULL ? sha256 : "(null)");
		return NULL;
	}
	if (!g_file_get_contents(path, &data, &len, &local)) {
		g_set_error(error, CS_ERROR,
			    g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT)
				? CS_ERROR_NOT_FOUND
				: CS_ERROR_INTERNAL,
			    "material %s: %s", sha256, local->message);
		return NULL;
	}
	actual = g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)data, len);
	if (strcmp(actual, sha256) != 0) {
		g_free(data);
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL,
			    "material %s: %s no longer holds the bytes of that hash", sha256, path);
		return NULL;
	}
	return g_bytes_new_take(data, len);
}

CsBlobWriter *
cs_blob_writer_new(CsBlobs *blobs, GError **error)
{
	g_autofree char *tmp_dir = g_build_filename(blobs->dir, CS_BLOBS_TMP, NULL);
	CsBlobWriter *writer;
	int fd;

	if (g_mkdir_with_parents(tmp_dir, 0700) != 0) {
		set_errno_error(error, tmp_dir, "create", errno);
		return NULL;
	}
	writer = g_new0(CsBlobWriter, 1);
	writer->fd = -1;
	writer->blobs = cs_blobs_copy(blobs);
	writer->tmp_path = g_build_filename(tmp_dir, "upload-XXXXXX", NULL);
	fd = g_mkstemp_full(writer->tmp_path, O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		set_errno_error(error, writer->tmp_path, "create", errno);
		g_clear_pointer(&writer->tmp_path, g_free);
		cs_blob_writer_free(writer);
		return NULL;
	}
	writer->fd = fd;
	writer->sha256 = g_checksum_new(G_CHECKSUM_SHA256);
	return writer;
}

gboolean
cs_blob_writer_write(CsBlobWriter *writer, const guint8 *data, gsize len, GError **error)
{
	gsize done = 0;

	g_checksum_update(writer->sha256, data, (gssize)len);
	while (done < len) {
		ssize_t n = write(writer->fd, data + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return set_errno_error(error, writer->tmp_path, "write",
					       n < 0 ? errno : ENOSPC);
		done += (gsize)n;
	}
	writer->size += len;
	return TRUE;
}

gsize
cs_blob_writer_get_size(CsBlobWriter *writer)
{
	return writer->size;
}

typedef struct {
	void *addr;
	gsize len;
} Mapping;

static void
mapping_free(gpointer data)
{
	Mapping *m = data;

	munmap(m->addr, m->len);
	g_free(m);
}

GBytes *
cs_blob_writer_map(CsBlobWriter *writer, GError **error)
{
	Mapping *m;
	void *addr;

	if (writer->size == 0)
		return g_bytes_new_static("", 0);
	addr = mmap(NULL, writer->size, PROT_READ, MAP_SHARED, writer->fd, 0);
	if (addr == MAP_FAILED) {
		set_errno_error(error, writer->tmp_path, "map", errno);
		return NULL;
	}
	m = g_new0(Mapping, 1);
	m->addr = addr;
	m->len = writer->size;
	return g_bytes_new_with_free_func(addr, writer->size, mapping_free, m);
}

gboolean
cs_blob_writer_commit(CsBlobWriter *writer, char **sha256_out, GError **error)
{
	g_autofree char *sha256 = g_strdup(g_checksum_get_string(writer->sha256));
	g_autofree char *path = cs_blobs_path(writer->blobs, sha256);
	g_autofree char *dir = g_path_get_dirname(path);

	if (fsync(writer->fd) != 0)
		return set_errno_error(error, writer->tmp_path, "sync", errno);
	if (g_mkdir_with_parents(dir, 0700) != 0)
		return set_errno_error(error, dir, "create", errno);
	/* link() never replaces: a file already under this hash holds these very bytes. */
	if (link(writer->tmp_path, path) != 0 && errno != EEXIST)
		return set_errno_error(error, path, "create", errno);
	fsync_dir(dir);
	writer->committed = TRUE;
	if (sha256_out != NULL)
		*sha256_out = g_steal_pointer(&sha256);
	return TRUE;
}

void
cs_blob_writer_free(CsBlobWriter *writer)
{
	if (writer == NULL)
		return;
	if (writer->fd >= 0)
		close(writer->fd);
	/* Committed or not, the temporary name goes; a committed file lives on under its
	 * hash (a second link). */
	if (writer->tmp_path != NULL)
		g_unlink(writer->tmp_path);
	if (writer->sha256 != NULL)
		g_checksum_free(writer->sha256);
	g_free(writer->tmp_path);
	cs_blobs_free(writer->blobs);
	g_free(writer);
}

gboolean
cs_blobs_put(CsBlobs *blobs, const guint8 *data, gsize len, char **sha256_out, GError **error)
{
	g_autoptr(CsBlobWriter) writer = cs_blob_writer_new(blobs, error);

	return writer != NULL && cs_blob_writer_write(writer, data, len, error) &&
	       cs_blob_writer_commit(writer, sha256_out, error);
}
