/*
 * cs-backup.c — backup and restore of a state directory (see cs-backup.h for the format and
 * what is in it).
 *
 * Invariants:
 *   - Which files a backup holds is decided in one place, cs_backup_entry_ok(): the backup
 *     takes exactly the files it accepts, and restoring refuses any other name.
 *   - Plaintext never has a name outside the state directory: the ledger's online copy
 *     goes into a file beside the output that is unlinked before a page is copied. The
 *     archive is written into an unnamed file in the output's folder (a hidden 0600 one
 *     where there are no unnamed files) and linked into place, never over a file.
 *   - Restoring writes nothing until every entry has been checked and the whole file
 *     authenticated; then it writes into a private folder inside the target and renames
 *     into place, never replacing anything; on failure what it wrote is removed.
 *   - Key material (the derived key) lives in this file's structures only and is wiped
 *     when they are freed.
 */
#define G_LOG_DOMAIN "certseald"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "certseal/plugin.h"
#include "cs-backup-private.h"
#include "cs-blobs.h"
#include "cs-config.h"
#include "cs-crypto.h"
#include "cs-fs.h"
#include "cs-ledger.h"
#include "cs-tty.h"

#define SALT_SIZE 16
#define NONCE_SIZE 12
#define CHECK_SIZE 32
#define TAG_SIZE 16
#define KEY_SIZE 32
#define MAGIC_SIZE 8
#define HEADER_SIZE (MAGIC_SIZE + 4 * 4 + SALT_SIZE + NONCE_SIZE + CHECK_SIZE)
#define CHECK_LABEL "certseal backup check v1"
#define NAME_MAX_LEN 255
#define CHUNK (64 * 1024)
/* Bounds on what a header may ask of scrypt: at most 256 MiB and 16 lanes. */
#define KDF_LOG2_N_MIN 10
#define KDF_LOG2_N_MAX 20
#define KDF_MEMORY_MAX (256u * 1024 * 1024)
#define KDF_P_MAX 16
/* The names restoring moves into place, in this order: ledger.db first and vault.key
 * last, so that a restore killed between two renames leaves a ledger without its vault
 * key, which certseald refuses to start on, never CAs or office keys it would start a new
 * ledger and vault beside. */
static const char *const top_names[] = {"ledger.db", "ca",	    "office",
					"materials", "vault.check", "vault.key"};
#define STAGING_PREFIX ".restore-"
static const char *const ca_files[] = {"root.crt",	 "root.key",	"issuing.crt",
				       "issuing.key",	 "issuing.crl", "seal-maker.crt",
				       "seal-maker.key", NULL};

const CsBackupKdf cs_backup_kdf_default = {.log2_n = 17, .r = 8, .p = 1};

G_DEFINE_AUTOPTR_CLEANUP_FUNC(EVP_CIPHER_CTX, EVP_CIPHER_CTX_free)

static gboolean
set_errno(GError **error, const char *path, const char *what, int saved_errno)
{
	g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s: cannot %s: %s", path, what,
		    g_strerror(saved_errno));
	return FALSE;
}

static void
put_u32(guint8 *p, guint32 v)
{
	p[0] = (guint8)(v >> 24);
	p[1] = (guint8)(v >> 16);
	p[2] = (guint8)(v >> 8);
	p[3] = (guint8)v;
}

static guint32
get_u32(const guint8 *p)
{
	return (guint32)p[0] << 24 | (guint32)p[1] << 16 | (guint32)p[2] << 8 | p[3];
}

/* ---- which files ----------------------------------------------------------------------- */

typedef enum {
	NAME_NONE,
	NAME_PUBLIC, /* 0600 or 0644 */
	NAME_SECRET, /* 0600 only */
} NameKind;

static NameKind
name_kind(const char *name)
{
	g_auto(GStrv) parts = NULL;
	guint n;

	if (name == NULL || *name == '\0' || strlen(name) > NAME_MAX_LEN)
		return NAME_NONE;
	if (g_strcmp0(name, "ledger.db") == 0 || g_strcmp0(name, "vault.key") == 0)
		return NAME_SECRET;
	if (g_strcmp0(name, "vault.check") == 0)
		return NAME_PUBLIC;
	parts = g_strsplit(name, "/", -1);
	n = g_strv_length(parts);
	if (n == 3 && g_strcmp0(parts[0], "ca") == 0 && cs_config_vendor_id_ok(parts[1]) &&
	    g_strv_contains(ca_files, parts[2]))
		return g_str_has_suffix(parts[2], ".key") ? NAME_SECRET : NAME_PUBLIC;
	if (n == 2 && g_strcmp0(parts[0], "office") == 0 && g_str_has_suffix(parts[1], ".key")) {
		g_autofree char *base = g_strndup(parts[1], strlen(parts[1]) - strlen(".key"));

		return cs_config_vendor_id_ok(base) ? NAME_SECRET : NAME_NONE;
	}
	if (n == 3 && g_strcmp0(parts[0], "materials") == 0 && cs_blobs_is_hash(parts[2]) &&
	    strlen(parts[1]) == 2 && strncmp(parts[1], parts[2], 2) == 0)
		return NAME_SECRET;
	return NAME_NONE;
}

/* A folder a backup looks into: ca, ca/<vendor>, office, materials, materials/<2 hex>. */
static gboolean
dir_ok(const char *rel)
{
	g_auto(GStrv) parts = g_strsplit(rel, "/", -1);
	guint n = g_strv_length(parts);
	g_autofree char *probe = NULL;

	if (n == 1)
		return g_strcmp0(rel, "ca") == 0 || g_strcmp0(rel, "office") == 0 ||
		       g_strcmp0(rel, "materials") == 0;
	if (n == 2 && g_strcmp0(parts[0], "ca") == 0)
		return cs_config_vendor_id_ok(parts[1]);
	if (n == 2 && g_strcmp0(parts[0], "materials") == 0 && strlen(parts[1]) == 2) {
		/* The first two digits of a hash: a hash with them is one. */
		probe = g_strnfill(64, '0');
		memcpy(probe, parts[1], 2);
		return cs_blobs_is_hash(probe);
	}
	return FALSE;
}

gboolean
cs_backup_entry_ok(const char *name, guint32 mode, GError **error)
{
	NameKind kind = name_kind(name);
	g_autofree char *shown = NULL;

	if (kind == NAME_NONE) {
		shown = g_strescape(name != NULL ? name : "", NULL);
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "entry \"%.80s\": not a file a backup holds", shown);
		return FALSE;
	}
	if (mode != 0600 && (kind == NAME_SECRET || mode != 0644)) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "entry %s: mode %04o (%s)",
			    name, mode,
			    kind == NAME_SECRET ? "it must be 0600" : "0600 or 0644 only");
		return FALSE;
	}
	return TRUE;
}

/* ---- the passphrase -------------------------------------------------------------------- */

gboolean
cs_backup_check_passphrase(const char *passphrase, GError **error)
{
	glong chars;

	if (passphrase == NULL || !g_utf8_validate(passphrase, -1, NULL)) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "passphrase: not UTF-8 text");
		return FALSE;
	}
	chars = g_utf8_strlen(passphrase, -1);
	if (chars < CS_BACKUP_PASSPHRASE_MIN || chars > CS_BACKUP_PASSPHRASE_MAX) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "passphrase: %ld characters; %d to %d are needed", chars,
			    CS_BACKUP_PASSPHRASE_MIN, CS_BACKUP_PASSPHRASE_MAX);
		return FALSE;
	}
	return TRUE;
}

static char *
read_one(const char *prompt, GError **error)
{
	gboolean too_long = FALSE;
	/* UTF-8: up to 4 bytes a character. */
	char *line = cs_tty_read_secret_max(prompt, 4 * CS_BACKUP_PASSPHRASE_MAX, &too_long);

	if (line == NULL)
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    too_long ? "passphrase: longer than %d characters"
				     : "passphrase: none given (end of input)",
			    CS_BACKUP_PASSPHRASE_MAX);
	return line;
}

char *
cs_backup_read_passphrase(gboolean new_passphrase, GError **error)
{
	char *first = read_one("Backup passphrase", error);
	char *again;
	gboolean same;

	if (first == NULL)
		return NULL;
	if (!new_passphrase)
		return first;
	if (!cs_backup_check_passphrase(first, error)) {
		cs_tty_free_secret(first);
		return NULL;
	}
	if (!cs_tty_is_terminal())
		return first;
	again = read_one("The same passphrase again", error);
	same = again != NULL && strcmp(first, again) == 0;
	if (again != NULL && !same)
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "passphrase: the two entries differ");
	cs_tty_free_secret(again);
	if (!same) {
		cs_tty_free_secret(first);
		return NULL;
	}
	return first;
}

/* ---- the key --------------------------------------------------------------------------- */

static gboolean
kdf_ok(guint log2_n, guint r, guint p)
{
	return log2_n >= KDF_LOG2_N_MIN && log2_n <= KDF_LOG2_N_MAX && r >= 1 && p >= 1 &&
	       p <= KDF_P_MAX && (guint64)128 * r * ((guint64)1 << log2_n) <= KDF_MEMORY_MAX;
}

/* The AES key and the check value from @header's salt and cost. */
static gboolean
derive(const char *passphrase,
       const guint8 *salt,
       guint log2_n,
       guint r,
       guint p,
       guint8 key[KEY_SIZE],
       guint8 check[CHECK_SIZE],
       GError **error)
{
	guint8 out[2 * KEY_SIZE];
	g_autoptr(EVP_MD_CTX) md = EVP_MD_CTX_new();
	guint64 n = (guint64)1 << log2_n;
	guint64 maxmem = 128 * (guint64)r * (n + 2) + 128 * (guint64)r * p + 1024 * 1024;
	gboolean ok;

	ok = EVP_PBE_scrypt(passphrase, strlen(passphrase), salt, SALT_SIZE, n, r, p, maxmem, out,
			    sizeof(out)) == 1 &&
	     md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
	     EVP_DigestUpdate(md, CHECK_LABEL, strlen(CHECK_LABEL)) == 1 &&
	     EVP_DigestUpdate(md, out + KEY_SIZE, KEY_SIZE) == 1 &&
	     EVP_DigestFinal_ex(md, check, NULL) == 1;
	memcpy(key, out, KEY_SIZE);
	OPENSSL_cleanse(out, sizeof(out));
	if (!ok)
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INTERNAL,
				    "backup: the key derivation (scrypt) failed");
	return ok;
}

static gboolean
write_all(int fd, const guint8 *data, gsize len, const char *what, GError **error)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return set_errno(error, what, "write", errno);
		data += n;
		len -= (gsize)n;
	}
	return TRUE;
}

/* Exactly @len bytes, or FALSE (a short read sets *@eof). */
static gboolean
read_exact(int fd, guint8 *data, gsize len, const char *what, gboolean *eof, GError **error)
{
	*eof = FALSE;
	while (len > 0) {
		ssize_t n = read(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return set_errno(error, what, "read", errno);
		if (n == 0) {
			*eof = TRUE;
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "%s: cut short", what);
			return FALSE;
		}
		data += n;
		len -= (gsize)n;
	}
	return TRUE;
}

/* ---- writing --------------------------------------------------------------------------- */

struct _CsBackupWriter {
	int fd;
	EVP_CIPHER_CTX *ctx;
	guint8 out[CHUNK + 32];
	guint entries;
	guint64 bytes;
};

void
cs_backup_writer_free(CsBackupWriter *writer)
{
	if (writer == NULL)
		return;
	EVP_CIPHER_CTX_free(writer->ctx);
	OPENSSL_cleanse(writer->out, sizeof(writer->out));
	g_free(writer);
}

CsBackupWriter *
cs_backup_writer_new(int fd, const char *passphrase, const CsBackupKdf *kdf, GError **error)
{
	g_autoptr(CsBackupWriter) w = g_new0(CsBackupWriter, 1);
	guint8 header[HEADER_SIZE], key[KEY_SIZE];
	guint8 *salt = header + MAGIC_SIZE + 16, *nonce = salt + SALT_SIZE;
	gboolean ok;

	if (kdf == NULL)
		kdf = &cs_backup_kdf_default;
	g_return_val_if_fail(kdf_ok(kdf->log2_n, kdf->r, kdf->p), NULL);
	w->fd = fd;
	memcpy(header, CS_BACKUP_MAGIC, MAGIC_SIZE);
	put_u32(header + MAGIC_SIZE, CS_BACKUP_VERSION);
	put_u32(header + MAGIC_SIZE + 4, kdf->log2_n);
	put_u32(header + MAGIC_SIZE + 8, kdf->r);
	put_u32(header + MAGIC_SIZE + 12, kdf->p);
	if (RAND_bytes(salt, SALT_SIZE + NONCE_SIZE) != 1) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INTERNAL,
				    "backup: no random bytes for the salt and nonce");
		return NULL;
	}
	if (!derive(passphrase, salt, kdf->log2_n, kdf->r, kdf->p, key, nonce + NONCE_SIZE, error))
		return NULL;
	w->ctx = EVP_CIPHER_CTX_new();
	ok = w->ctx != NULL &&
	     EVP_EncryptInit_ex(w->ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
	     EVP_CIPHER_CTX_ctrl(w->ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_SIZE, NULL) == 1 &&
	     EVP_EncryptInit_ex(w->ctx, NULL, NULL, key, nonce) == 1;
	OPENSSL_cleanse(key, sizeof(key));
	{
		int len = 0;

		ok = ok && EVP_EncryptUpdate(w->ctx, NULL, &len, header, HEADER_SIZE) == 1;
	}
	if (!ok) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INTERNAL,
				    "backup: cannot start AES-256-GCM");
		return NULL;
	}
	if (!write_all(fd, header, HEADER_SIZE, "backup", error))
		return NULL;
	return g_steal_pointer(&w);
}

static gboolean
writer_put(CsBackupWriter *w, const guint8 *data, gsize len, GError **error)
{
	while (len > 0) {
		int in = (int)MIN(len, (gsize)CHUNK), out = 0;

		if (EVP_EncryptUpdate(w->ctx, w->out, &out, data, in) != 1) {
			g_set_error_literal(error, CS_ERROR, CS_ERROR_INTERNAL,
					    "backup: encryption failed");
			return FALSE;
		}
		if (!write_all(w->fd, w->out, (gsize)out, "backup", error))
			return FALSE;
		data += in;
		len -= (gsize)in;
	}
	return TRUE;
}

static gboolean
writer_begin_entry(CsBackupWriter *w, const char *name, guint32 mode, guint64 size, GError **error)
{
	gsize name_len = strlen(name);
	guint8 head[2 + NAME_MAX_LEN + 4 + 8];
	gsize at = 0;

	g_return_val_if_fail(name_len > 0 && name_len <= NAME_MAX_LEN, FALSE);
	head[at++] = (guint8)(name_len >> 8);
	head[at++] = (guint8)name_len;
	memcpy(head + at, name, name_len);
	at += name_len;
	put_u32(head + at, mode);
	put_u32(head + at + 4, (guint32)(size >> 32));
	put_u32(head + at + 8, (guint32)size);
	at += 12;
	w->entries++;
	w->bytes += size;
	return writer_put(w, head, at, error);
}

gboolean
cs_backup_writer_add(CsBackupWriter *writer,
		     const char *name,
		     guint32 mode,
		     const guint8 *data,
		     gsize len,
		     GError **error)
{
	return writer_begin_entry(writer, name, mode, len, error) &&
	       writer_put(writer, data, len, error);
}

/* The file open at @fd, read from its start, as the entry @name, its mode 0600 for
 * secrets and otherwise 0644 when others may read it, 0600 when not. */
static gboolean
writer_add_fd(CsBackupWriter *w, const char *name, int fd, const char *path, GError **error)
{
	guint8 buf[CHUNK];
	struct stat st;
	guint64 left;
	guint32 mode;
	gboolean eof = FALSE, ok = TRUE;

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s: not a regular file", path);
		return FALSE;
	}
	if (lseek(fd, 0, SEEK_SET) != 0)
		return set_errno(error, path, "seek in", errno);
	mode = name_kind(name) == NAME_SECRET || (st.st_mode & 0044) == 0 ? 0600 : 0644;
	ok = writer_begin_entry(w, name, mode, (guint64)st.st_size, error);
	for (left = (guint64)st.st_size; ok && left > 0;) {
		gsize n = (gsize)MIN(left, (guint64)sizeof(buf));

		ok = read_exact(fd, buf, n, path, &eof, error) && writer_put(w, buf, n, error);
		left -= n;
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	if (!ok && eof)
		g_prefix_error(error, "%s shrank while it was read: ", name);
	return ok;
}

static gboolean
writer_add_file(CsBackupWriter *w, const char *name, const char *path, GError **error)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	gboolean ok;

	if (fd < 0)
		return set_errno(error, path, "open", errno);
	ok = writer_add_fd(w, name, fd, path, error);
	close(fd);
	return ok;
}

gboolean
cs_backup_writer_finish(CsBackupWriter *writer, GError **error)
{
	static const guint8 end[2] = {0, 0};
	guint8 tag[TAG_SIZE];
	int out = 0;

	if (!writer_put(writer, end, sizeof(end), error))
		return FALSE;
	if (EVP_EncryptFinal_ex(writer->ctx, writer->out, &out) != 1 ||
	    EVP_CIPHER_CTX_ctrl(writer->ctx, EVP_CTRL_GCM_GET_TAG, TAG_SIZE, tag) != 1) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INTERNAL,
				    "backup: encryption failed");
		return FALSE;
	}
	if (!write_all(writer->fd, writer->out, (gsize)out, "backup", error) ||
	    !write_all(writer->fd, tag, TAG_SIZE, "backup", error))
		return FALSE;
	if (fsync(writer->fd) != 0)
		return set_errno(error, "backup", "sync", errno);
	return TRUE;
}

static int
compare_names(gconstpointer a, gconstpointer b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every file of the folder @rel (relative to @state_dir) that a backup holds, in name
 * order, and the folders it looks into. */
static gboolean
add_tree(CsBackupWriter *w, const char *state_dir, const char *rel, GError **error)
{
	g_autofree char *dir_path = g_build_filename(state_dir, rel, NULL);
	g_autoptr(GDir) dir = NULL;
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GError) local = NULL;
	const char *name;

	dir = g_dir_open(dir_path, 0, &local);
	if (dir == NULL) {
		if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			return TRUE;
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s", local->message);
		return FALSE;
	}
	while ((name = g_dir_read_name(dir)) != NULL)
		g_ptr_array_add(names, g_strdup(name));
	g_ptr_array_sort(names, compare_names);
	for (guint i = 0; i < names->len; i++) {
		g_autofree char *child = g_build_path("/", rel, names->pdata[i], NULL);
		g_autofree char *path = g_build_filename(state_dir, child, NULL);
		struct stat st;

		if (lstat(path, &st) != 0)
			continue; /* gone meanwhile (a temporary file) */
		if (S_ISDIR(st.st_mode) && dir_ok(child)) {
			if (!add_tree(w, state_dir, child, error))
				return FALSE;
		} else if (S_ISREG(st.st_mode) && name_kind(child) != NAME_NONE) {
			if (!writer_add_file(w, child, path, error))
				return FALSE;
		}
	}
	return TRUE;
}

static void
fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/*
 * The entries in an order that keeps them consistent: the vault, the CAs and the office
 * keys first (a CRL copied before the ledger is never newer than the CRL numbers the
 * ledger holds), then the ledger's online copy (into a file without a name), then the
 * materials (each one a row of that copy names was written before the row committed).
 */
static gboolean
write_archive(const char *state_dir,
	      const char *out_dir,
	      int fd,
	      const char *passphrase,
	      const CsBackupKdf *kdf,
	      CsBackupStats *stats,
	      GError **error)
{
	g_autoptr(CsBackupWriter) w = cs_backup_writer_new(fd, passphrase, kdf, error);
	g_autofree char *key = g_build_filename(state_dir, "vault.key", NULL);
	g_autofree char *check = g_build_filename(state_dir, "vault.check", NULL);
	g_autofree char *ledger = g_build_filename(state_dir, "ledger.db", NULL);
	gboolean ok;
	int copy_fd;

	if (w == NULL || !writer_add_file(w, "vault.key", key, error))
		return FALSE;
	if (g_file_test(check, G_FILE_TEST_EXISTS) &&
	    !writer_add_file(w, "vault.check", check, error))
		return FALSE;
	if (!add_tree(w, state_dir, "ca", error) || !add_tree(w, state_dir, "office", error))
		return FALSE;
	/* The ledger's copy: a file without a name, beside the output. */
	copy_fd = cs_ledger_backup_unnamed(ledger, out_dir, error);
	if (copy_fd < 0)
		return FALSE;
	ok = writer_add_fd(w, "ledger.db", copy_fd, "the ledger's copy", error);
	close(copy_fd);
	if (!ok || !add_tree(w, state_dir, "materials", error) ||
	    !cs_backup_writer_finish(w, error))
		return FALSE;
	if (stats != NULL) {
		stats->entries = w->entries;
		stats->bytes = w->bytes;
	}
	return TRUE;
}

/* ".<base>.XXXXXX": the name of a temporary beside the output @base. */
static gboolean
is_temporary_of(const char *name, const char *base)
{
	gsize base_len = strlen(base);

	return strlen(name) == base_len + 8 && name[0] == '.' &&
	       strncmp(name + 1, base, base_len) == 0 && name[base_len + 1] == '.';
}

/*
 * Remove what a killed backup of an earlier version left beside the output: a private
 * folder ".<base>.XXXXXX" of ours holding only the archive being written and the ledger's
 * plaintext copy. The number removed goes to *@removed.
 */
static void
remove_stale(const char *out_dir, const char *base, guint *removed)
{
	int out_fd = open(out_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	g_autoptr(GPtrArray) stale = g_ptr_array_new_with_free_func(g_free);
	struct dirent *entry;
	DIR *dir;

	if (out_fd < 0)
		return;
	dir = fdopendir(dup(out_fd));
	while (dir != NULL && (entry = readdir(dir)) != NULL) {
		struct dirent *child;
		gboolean ours = TRUE;
		struct stat st;
		DIR *inner;
		int fd;

		if (!is_temporary_of(entry->d_name, base))
			continue;
		/* Checked through the folder itself, never a link to one. */
		fd = openat(out_fd, entry->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (fstat(fd, &st) != 0 || st.st_uid != geteuid() || (st.st_mode & 0077) != 0) {
			close(fd);
			continue;
		}
		inner = fdopendir(fd);
		if (inner == NULL) {
			close(fd);
			continue;
		}
		while (ours && (child = readdir(inner)) != NULL) {
			if (strcmp(child->d_name, ".") == 0 || strcmp(child->d_name, "..") == 0)
				continue;
			ours = (strcmp(child->d_name, "archive") == 0 ||
				g_str_has_prefix(child->d_name, "ledger.db")) &&
			       fstatat(fd, child->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			       S_ISREG(st.st_mode);
		}
		closedir(inner);
		if (ours)
			g_ptr_array_add(stale, g_strdup(entry->d_name));
	}
	if (dir != NULL)
		closedir(dir);
	for (guint i = 0; i < stale->len; i++) {
		cs_remove_tree_at(out_fd, stale->pdata[i]);
		(*removed)++;
	}
	close(out_fd);
}

/*
 * The archive's file: unnamed (O_TMPFILE) in @out_dir, so that a killed backup leaves
 * nothing, and linked by /proc/self/fd; where the file system has no unnamed files, a
 * hidden ".<base>.XXXXXX" (0600) beside the output, *@tmp_path set.
 */
static int
open_output(const char *out_dir, const char *base, char **tmp_path, GError **error)
{
	g_autofree char *tmpl = NULL;
	int fd = -1;

	*tmp_path = NULL;
	if (g_file_test("/proc/self/fd", G_FILE_TEST_IS_DIR)) {
		fd = open(out_dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
		if (fd >= 0)
			return fd;
		/* Anything but "no unnamed files here" is the folder's own fault. */
		if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
			set_errno(error, out_dir, "create a file in", errno);
			return -1;
		}
	}
	tmpl = g_strdup_printf("%s/.%s.XXXXXX", out_dir, base);
	fd = g_mkstemp_full(tmpl, O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0) {
		set_errno(error, out_dir, "create a file in", errno);
		return -1;
	}
	*tmp_path = g_steal_pointer(&tmpl);
	return fd;
}

/* Give the archive open at @fd the name @output; link() fails rather than replace a file
 * made meanwhile. */
static gboolean
link_output(int fd, const char *tmp_path, const char *output, GError **error)
{
	int rc;

	if (tmp_path != NULL) {
		rc = link(tmp_path, output);
	} else {
		g_autofree char *proc = g_strdup_printf("/proc/self/fd/%d", fd);

		rc = linkat(AT_FDCWD, proc, AT_FDCWD, output, AT_SYMLINK_FOLLOW);
	}
	if (rc == 0)
		return TRUE;
	if (errno == EEXIST)
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "%s: exists; a backup never replaces a file", output);
	else
		set_errno(error, output, "create", errno);
	return FALSE;
}

gboolean
cs_backup_check_source(const char *state_dir, const char *output, GError **error)
{
	g_autofree char *ledger = g_build_filename(state_dir, "ledger.db", NULL);
	g_autofree char *key = g_build_filename(state_dir, "vault.key", NULL);
	g_autofree char *out_dir = g_path_get_dirname(output);
	struct stat st;

	if (lstat(output, &st) == 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "%s: exists; a backup never replaces a file", output);
		return FALSE;
	}
	if (!g_file_test(ledger, G_FILE_TEST_IS_REGULAR) ||
	    !g_file_test(key, G_FILE_TEST_IS_REGULAR)) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "%s: not a state directory (no ledger.db and vault.key)", state_dir);
		return FALSE;
	}
	/* Others who may rename what is in the folder could swap a name the backup opens
	 * (the ledger's copy) for a file of theirs: the sticky bit keeps them to their own. */
	if (stat(out_dir, &st) != 0)
		return set_errno(error, out_dir, "read", errno);
	if ((st.st_mode & 0022) != 0 && (st.st_mode & S_ISVTX) == 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "%s: others may write into this folder (mode %04o, no sticky bit); "
			    "write the backup into a private folder",
			    out_dir, (guint)(st.st_mode & 07777));
		return FALSE;
	}
	return TRUE;
}

gboolean
cs_backup_create(const char *state_dir,
		 const char *output,
		 const char *passphrase,
		 const CsBackupKdf *kdf,
		 CsBackupStats *stats,
		 GError **error)
{
	g_autofree char *out_dir = g_path_get_dirname(output);
	g_autofree char *out_base = g_path_get_basename(output);
	g_autofree char *tmp_path = NULL;
	guint removed = 0;
	gboolean ok;
	int fd;

	if (!cs_backup_check_passphrase(passphrase, error))
		return FALSE;
	if (!cs_backup_check_source(state_dir, output, error))
		return FALSE;
	remove_stale(out_dir, out_base, &removed);
	fd = open_output(out_dir, out_base, &tmp_path, error);
	if (fd < 0)
		return FALSE;
	ok = write_archive(state_dir, out_dir, fd, passphrase, kdf, stats, error) &&
	     link_output(fd, tmp_path, output, error);
	close(fd);
	if (tmp_path != NULL)
		g_unlink(tmp_path);
	if (ok)
		fsync_dir(out_dir);
	if (stats != NULL)
		stats->stale_removed = removed;
	return ok;
}

/* ---- reading --------------------------------------------------------------------------- */

typedef struct {
	const char *path;
	int fd;
	guint8 key[KEY_SIZE];
	guint8 header[HEADER_SIZE];
	EVP_CIPHER_CTX *ctx;
	guint64 body_size; /* ciphertext bytes */
	guint64 body_left;
	guint8 in[CHUNK];
	guint8 plain[CHUNK + 32];
	gsize plain_at, plain_len;
	gboolean authenticated; /* the tag was checked after the last entry */
	/* A decrypted body in memory instead (cs_backup_check_payload()): no file, no tag. */
	const guint8 *mem;
	gsize mem_len, mem_at;
} Reader;

/* Plaintext bytes left to read. */
static guint64
reader_left(const Reader *r)
{
	if (r->mem != NULL)
		return r->mem_len - r->mem_at;
	return r->body_left + (r->plain_len - r->plain_at);
}

static void
reader_clear(Reader *r)
{
	EVP_CIPHER_CTX_free(r->ctx);
	r->ctx = NULL;
	OPENSSL_cleanse(r->key, sizeof(r->key));
	OPENSSL_cleanse(r->plain, sizeof(r->plain));
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
}

/* Back to the first byte of the body, ready to decrypt it (again). */
static gboolean
reader_rewind(Reader *r, GError **error)
{
	const guint8 *nonce = r->header + MAGIC_SIZE + 16 + SALT_SIZE;
	int len = 0;

	EVP_CIPHER_CTX_free(r->ctx);
	r->ctx = EVP_CIPHER_CTX_new();
	r->plain_at = r->plain_len = 0;
	r->body_left = r->body_size;
	r->authenticated = FALSE;
	if (lseek(r->fd, HEADER_SIZE, SEEK_SET) != HEADER_SIZE)
		return set_errno(error, r->path, "seek in", errno);
	if (r->ctx == NULL ||
	    EVP_DecryptInit_ex(r->ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(r->ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_SIZE, NULL) != 1 ||
	    EVP_DecryptInit_ex(r->ctx, NULL, NULL, r->key, nonce) != 1 ||
	    EVP_DecryptUpdate(r->ctx, NULL, &len, r->header, HEADER_SIZE) != 1) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INTERNAL,
				    "backup: cannot start AES-256-GCM");
		return FALSE;
	}
	return TRUE;
}

static gboolean
reader_open(Reader *r, const char *path, const char *passphrase, GError **error)
{
	guint8 check[CHECK_SIZE];
	guint32 version, log2_n, kdf_r, kdf_p;
	struct stat st;
	gboolean eof;

	r->path = path;
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0)
		return set_errno(error, path, "open", errno);
	if (fstat(r->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "%s: not a regular file",
			    path);
		return FALSE;
	}
	if (st.st_size < HEADER_SIZE + TAG_SIZE ||
	    !read_exact(r->fd, r->header, HEADER_SIZE, path, &eof, error) ||
	    memcmp(r->header, CS_BACKUP_MAGIC, MAGIC_SIZE) != 0) {
		g_clear_error(error);
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "%s: not a certseal backup",
			    path);
		return FALSE;
	}
	version = get_u32(r->header + MAGIC_SIZE);
	log2_n = get_u32(r->header + MAGIC_SIZE + 4);
	kdf_r = get_u32(r->header + MAGIC_SIZE + 8);
	kdf_p = get_u32(r->header + MAGIC_SIZE + 12);
	if (version != CS_BACKUP_VERSION) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "%s: backup format version %u; this build reads version %d", path,
			    version, CS_BACKUP_VERSION);
		return FALSE;
	}
	if (!kdf_ok(log2_n, kdf_r, kdf_p)) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "%s: scrypt parameters out of bounds (log2 N %u, r %u, p %u)", path,
			    log2_n, kdf_r, kdf_p);
		return FALSE;
	}
	if (!derive(passphrase, r->header + MAGIC_SIZE + 16, log2_n, kdf_r, kdf_p, r->key, check,
		    error))
		return FALSE;
	if (CRYPTO_memcmp(check, r->header + HEADER_SIZE - CHECK_SIZE, CHECK_SIZE) != 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_ACCESS_DENIED,
			    "%s: wrong passphrase (or a damaged header)", path);
		return FALSE;
	}
	r->body_size = (guint64)st.st_size - HEADER_SIZE - TAG_SIZE;
	return reader_rewind(r, error);
}

static gboolean
fail_damaged(Reader *r, GError **error)
{
	g_clear_error(error);
	g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
		    "%s: damaged or altered (its authentication fails)", r->path);
	return FALSE;
}

/* Exactly @len bytes of plaintext. Not authenticated until reader_finish(). */
static gboolean
reader_read(Reader *r, guint8 *data, gsize len, GError **error)
{
	gboolean eof;

	if (r->mem != NULL) {
		if (len > r->mem_len - r->mem_at)
			return fail_damaged(r, error);
		memcpy(data, r->mem + r->mem_at, len);
		r->mem_at += len;
		return TRUE;
	}
	while (len > 0) {
		gsize n;

		if (r->plain_at == r->plain_len) {
			gsize in = (gsize)MIN(r->body_left, (guint64)CHUNK);
			int out = 0;

			if (in == 0 || !read_exact(r->fd, r->in, in, r->path, &eof, error) ||
			    EVP_DecryptUpdate(r->ctx, r->plain, &out, r->in, (int)in) != 1)
				return fail_damaged(r, error);
			r->body_left -= in;
			r->plain_at = 0;
			r->plain_len = (gsize)out;
			continue;
		}
		n = MIN(len, r->plain_len - r->plain_at);
		memcpy(data, r->plain + r->plain_at, n);
		r->plain_at += n;
		data += n;
		len -= n;
	}
	return TRUE;
}

/* After the end of the entries: nothing more, and the tag matches. */
static gboolean
reader_finish(Reader *r, GError **error)
{
	guint8 tag[TAG_SIZE], rest[32];
	gboolean eof;
	int out = 0;

	if (r->mem != NULL) {
		if (r->mem_at != r->mem_len)
			return fail_damaged(r, error);
		r->authenticated = TRUE;
		return TRUE;
	}
	if (r->plain_at != r->plain_len || r->body_left != 0 ||
	    !read_exact(r->fd, tag, TAG_SIZE, r->path, &eof, error) ||
	    EVP_CIPHER_CTX_ctrl(r->ctx, EVP_CTRL_GCM_SET_TAG, TAG_SIZE, tag) != 1 ||
	    EVP_DecryptFinal_ex(r->ctx, rest, &out) != 1)
		return fail_damaged(r, error);
	r->authenticated = TRUE;
	return TRUE;
}

/* Whether the rest of the file, from where reading stopped, authenticates. */
static gboolean
reader_authentic(Reader *r)
{
	guint8 tag[TAG_SIZE], rest[32];
	gboolean eof;
	int out = 0;

	if (r->authenticated)
		return TRUE;
	while (r->body_left > 0) {
		gsize in = (gsize)MIN(r->body_left, (guint64)CHUNK);

		if (!read_exact(r->fd, r->in, in, r->path, &eof, NULL) ||
		    EVP_DecryptUpdate(r->ctx, r->plain, &out, r->in, (int)in) != 1)
			return FALSE;
		r->body_left -= in;
	}
	r->plain_at = r->plain_len = 0;
	OPENSSL_cleanse(r->plain, sizeof(r->plain));
	return read_exact(r->fd, tag, TAG_SIZE, r->path, &eof, NULL) &&
	       EVP_CIPHER_CTX_ctrl(r->ctx, EVP_CTRL_GCM_SET_TAG, TAG_SIZE, tag) == 1 &&
	       EVP_DecryptFinal_ex(r->ctx, rest, &out) == 1;
}

typedef gboolean (*EntryFunc)(
    Reader *r, const char *name, guint32 mode, guint64 size, gpointer user_data, GError **error);

/* Every entry in turn, checked: a name and mode a backup holds, no name twice, the size
 * within the file. @func reads the entry's bytes. */
static gboolean
read_entries(Reader *r, EntryFunc func, gpointer user_data, CsBackupStats *stats, GError **error)
{
	g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	CsBackupStats counted = {0};

	for (;;) {
		guint8 head[12], len_bytes[2];
		char name[NAME_MAX_LEN + 1];
		gsize name_len;
		guint32 mode;
		guint64 size;

		if (!reader_read(r, len_bytes, 2, error))
			return FALSE;
		name_len = (gsize)len_bytes[0] << 8 | len_bytes[1];
		if (name_len == 0)
			break;
		if (name_len > NAME_MAX_LEN) {
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "%s: an entry's name is %zu bytes long", r->path, name_len);
			return FALSE;
		}
		if (!reader_read(r, (guint8 *)name, name_len, error) ||
		    !reader_read(r, head, sizeof(head), error))
			return FALSE;
		name[name_len] = '\0';
		mode = get_u32(head);
		size = (guint64)get_u32(head + 4) << 32 | get_u32(head + 8);
		if (strlen(name) != name_len || !g_utf8_validate(name, -1, NULL)) {
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "%s: an entry's name is not text", r->path);
			return FALSE;
		}
		if (!cs_backup_entry_ok(name, mode, error)) {
			g_prefix_error(error, "%s: ", r->path);
			return FALSE;
		}
		if (g_hash_table_contains(seen, name)) {
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "%s: entry %s: twice",
				    r->path, name);
			return FALSE;
		}
		if (size > reader_left(r))
			return fail_damaged(r, error);
		g_hash_table_add(seen, g_strdup(name));
		if (!func(r, name, mode, size, user_data, error))
			return FALSE;
		counted.entries++;
		counted.bytes += size;
	}
	if (!reader_finish(r, error))
		return FALSE;
	/* What a state directory cannot be without. */
	for (const char *const *need = (const char *const[]){"ledger.db", "vault.key", NULL};
	     *need != NULL; need++) {
		if (!g_hash_table_contains(seen, *need)) {
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "%s: holds no %s",
				    r->path, *need);
			return FALSE;
		}
	}
	if (stats != NULL)
		*stats = counted;
	return TRUE;
}

static gboolean
skip_entry(
    Reader *r, const char *name, guint32 mode, guint64 size, gpointer user_data, GError **error)
{
	guint8 buf[4096];
	gboolean ok = TRUE;

	(void)name;
	(void)mode;
	(void)user_data;
	while (ok && size > 0) {
		gsize n = (gsize)MIN(size, (guint64)sizeof(buf));

		ok = reader_read(r, buf, n, error);
		size -= n;
	}
	/* Wiped on every way out: what it held may be a key. */
	OPENSSL_cleanse(buf, sizeof(buf));
	return ok;
}

gboolean
cs_backup_check_payload(const guint8 *data, gsize len, CsBackupStats *stats, GError **error)
{
	Reader r = {.path = "backup payload", .fd = -1, .mem = data, .mem_len = len};

	return read_entries(&r, skip_entry, NULL, stats, error);
}

/* Write the entry into the staging folder @user_data, its folders made 0700. */
static gboolean
write_entry(
    Reader *r, const char *name, guint32 mode, guint64 size, gpointer user_data, GError **error)
{
	const char *staging = user_data;
	g_autofree char *path = g_build_filename(staging, name, NULL);
	g_autofree char *parent = g_path_get_dirname(path);
	guint8 buf[CHUNK];
	gboolean ok = TRUE;
	int fd;

	if (g_mkdir_with_parents(parent, 0700) != 0)
		return set_errno(error, parent, "create", errno);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return set_errno(error, path, "create", errno);
	while (ok && size > 0) {
		gsize n = (gsize)MIN(size, (guint64)sizeof(buf));

		ok = reader_read(r, buf, n, error) && write_all(fd, buf, n, path, error);
		size -= n;
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	if (ok && fchmod(fd, mode) != 0)
		ok = set_errno(error, path, "set the mode of", errno);
	if (ok && fsync(fd) != 0)
		ok = set_errno(error, path, "sync", errno);
	close(fd);
	return ok;
}

static void
fsync_tree(const char *path)
{
	g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
	const char *name;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		g_autofree char *child = g_build_filename(path, name, NULL);

		if (g_file_test(child, G_FILE_TEST_IS_DIR))
			fsync_tree(child);
	}
	fsync_dir(path);
}

/* Move the staged names into @target, none replacing anything; on failure move back
 * what was moved. */
static gboolean
move_into_place(const char *staging, const char *target, GError **error)
{
	guint moved = 0;

	for (; moved < G_N_ELEMENTS(top_names); moved++) {
		g_autofree char *from = g_build_filename(staging, top_names[moved], NULL);
		g_autofree char *to = g_build_filename(target, top_names[moved], NULL);
		struct stat st;

		if (lstat(from, &st) != 0)
			continue;
		if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) != 0) {
			set_errno(error, to, "create", errno);
			break;
		}
	}
	if (moved == G_N_ELEMENTS(top_names))
		return TRUE;
	while (moved-- > 0) {
		g_autofree char *from = g_build_filename(staging, top_names[moved], NULL);
		g_autofree char *to = g_build_filename(target, top_names[moved], NULL);

		renameat2(AT_FDCWD, to, AT_FDCWD, from, RENAME_NOREPLACE);
	}
	return FALSE;
}

/* A private folder ".restore-XXXXXX" of ours that a restore writes into. */
static gboolean
is_staging(const char *dir, const char *name)
{
	g_autofree char *path = NULL;
	struct stat st;

	if (!g_str_has_prefix(name, STAGING_PREFIX) || strlen(name) != strlen(STAGING_PREFIX) + 6)
		return FALSE;
	path = g_build_filename(dir, name, NULL);
	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
	       (st.st_mode & 0077) == 0;
}

gboolean
cs_backup_check_target(const char *dir, guint *removed, GError **error)
{
	g_autoptr(GDir) d = NULL;
	g_autoptr(GPtrArray) staging = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GError) local = NULL;
	g_autofree char *other = NULL;
	const char *name;

	*removed = 0;
	d = g_dir_open(dir, 0, &local);
	if (d == NULL) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "%s", local->message);
		return FALSE;
	}
	while ((name = g_dir_read_name(d)) != NULL) {
		if (is_staging(dir, name))
			g_ptr_array_add(staging, g_strdup(name));
		else if (g_strcmp0(name, "lock") != 0 && other == NULL)
			other = g_strdup(name);
	}
	if (other != NULL && staging->len > 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "%s: not empty: %s is what an interrupted restore left, and %s may be "
			    "part of a state directory it was moving into place; empty the "
			    "directory and restore again",
			    dir, (const char *)staging->pdata[0], other);
		return FALSE;
	}
	if (other != NULL) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "%s: not empty (%s); restore into a new or empty state directory", dir,
			    other);
		return FALSE;
	}
	for (guint i = 0; i < staging->len; i++) {
		g_autofree char *path = g_build_filename(dir, staging->pdata[i], NULL);

		cs_remove_tree(path);
		if (g_file_test(path, G_FILE_TEST_EXISTS)) {
			g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL,
				    "%s: cannot remove what an interrupted restore left", path);
			return FALSE;
		}
		(*removed)++;
	}
	if (*removed > 0)
		fsync_dir(dir);
	return TRUE;
}

gboolean
cs_backup_restore(const char *archive,
		  const char *passphrase,
		  const char *target_dir,
		  CsBackupStats *stats,
		  GError **error)
{
	Reader r = {.fd = -1};
	g_autofree char *staging = g_build_filename(target_dir, STAGING_PREFIX "XXXXXX", NULL);
	gboolean ok;

	if (passphrase == NULL || *passphrase == '\0') {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "passphrase: none given");
		return FALSE;
	}
	/* First everything is checked and authenticated; nothing is written. An entry that
	 * does not pass is reported as such only when the whole file is authentic. */
	ok = reader_open(&r, archive, passphrase, error);
	if (ok && !read_entries(&r, skip_entry, NULL, stats, error)) {
		if (!reader_authentic(&r))
			fail_damaged(&r, error);
		ok = FALSE;
	}
	for (guint i = 0; ok && i < G_N_ELEMENTS(top_names); i++) {
		g_autofree char *path = g_build_filename(target_dir, top_names[i], NULL);
		struct stat st;

		if (lstat(path, &st) == 0) {
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "%s: exists; a restore never replaces anything", path);
			ok = FALSE;
		}
	}
	if (ok && g_mkdtemp_full(staging, 0700) == NULL) {
		ok = set_errno(error, target_dir, "create a temporary folder in", errno);
		g_clear_pointer(&staging, g_free);
	}
	if (!ok) {
		reader_clear(&r);
		return FALSE;
	}
	/* Then it is written aside, authenticated again, and moved into place. */
	ok = reader_rewind(&r, error) && read_entries(&r, write_entry, staging, NULL, error);
	reader_clear(&r);
	if (ok) {
		fsync_tree(staging);
		ok = move_into_place(staging, target_dir, error);
	}
	cs_remove_tree(staging);
	fsync_dir(target_dir);
	return ok;
}
