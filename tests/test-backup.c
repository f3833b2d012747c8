/*
 * test-backup.c — backup and restore of a state directory (daemon/store/cs-backup.c).
 *
 * Each test builds a state directory in a fresh temporary folder with the real vault,
 * ledger and material store, plus CA and office files and the files a backup leaves out
 * (the lock, -wal, migration copies, hidden and temporary files, info.json, drivers/).
 * Archives that a backup never writes (bad names, bad modes, tampered bytes) are crafted
 * with the archive writer underneath cs_backup_create(); restoring them must write nothing.
 * The scrypt cost is the real one where it matters (the round trip) and the lowest the
 * reader accepts elsewhere, so the tests stay quick.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "certseal/plugin.h"
#include "cs-backup-private.h"
#include "cs-blobs.h"
#include "cs-fs.h"
#include "cs-ledger.h"
#include "cs-vault.h"

#define PASSPHRASE "correct horse battery staple"
#define T0 G_GINT64_CONSTANT(1732406400000000)
#define SECRET "31415926"
#define MATERIAL "%PDF-1.4 business licence of a test company"
#define CA_KEY "-----BEGIN PRIVATE KEY-----\nroot key of the test CA\n"

static const CsBackupKdf quick = {.log2_n = 10, .r = 8, .p = 1};

typedef struct {
	char *dir;
	char *state;   /* <dir>/state */
	char *archive; /* <dir>/backup.csb */
	char *target;  /* <dir>/restored, created empty */
	char *material;
	gint64 secret_id;
} Fixture;

static void
put_file(const char *dir, const char *rel, const char *content, int mode)
{
	g_autofree char *path = g_build_filename(dir, rel, NULL);
	g_autofree char *parent = g_path_get_dirname(path);
	g_autoptr(GError) error = NULL;

	g_assert_no_errno(g_mkdir_with_parents(parent, 0700));
	g_assert_true(
	    g_file_set_contents_full(path, content, -1, G_FILE_SET_CONTENTS_NONE, mode, &error));
	g_assert_no_error(error);
	g_assert_no_errno(chmod(path, mode));
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(CsVault) vault = NULL;
	g_autoptr(CsLedger) ledger = NULL;
	g_autofree char *ledger_path = NULL;

	f->dir = g_dir_make_tmp("cs-backup-XXXXXX", &error);
	g_assert_no_error(error);
	f->state = g_build_filename(f->dir, "state", NULL);
	f->archive = g_build_filename(f->dir, "backup.csb", NULL);
	f->target = g_build_filename(f->dir, "restored", NULL);
	g_assert_no_errno(g_mkdir(f->state, 0700));
	g_assert_no_errno(g_mkdir(f->target, 0700));

	vault = cs_vault_open(f->state, &error);
	g_assert_no_error(error);
	ledger_path = g_build_filename(f->state, "ledger.db", NULL);
	ledger = cs_ledger_open(ledger_path, vault, 1000, &error);
	g_assert_no_error(error);
	g_assert_true(cs_ledger_begin(ledger, &error));
	for (int i = 0; i < 5; i++)
		g_assert_true(cs_ledger_append_event(ledger, NULL, "test", NULL, NULL, "uid:0",
						     NULL, T0 + i, NULL, &error));
	g_assert_true(cs_ledger_seal_secret(ledger, "so_pin", NULL, (const guint8 *)SECRET,
					    strlen(SECRET), T0, &f->secret_id, &error));
	g_assert_true(cs_ledger_commit(ledger, &error));
	g_assert_no_error(error);
	g_assert_true(cs_blobs_put(cs_ledger_get_blobs(ledger), (const guint8 *)MATERIAL,
				   strlen(MATERIAL), &f->material, &error));
	g_assert_no_error(error);

	put_file(f->state, "ca/demo-a/root.key", CA_KEY, 0600);
	put_file(f->state, "ca/demo-a/root.crt", "root certificate", 0644);
	put_file(f->state, "ca/demo-a/issuing.crl", "crl", 0644);
	put_file(f->state, "office/admin.key", "admin key pair", 0600);
	put_file(f->state, "office/server.key", "server key pair", 0600);
	/* What a backup leaves out. */
	put_file(f->state, "lock", "", 0600);
	put_file(f->state, "ledger.db.v3.bak", "an old copy", 0600);
	put_file(f->state, "ledger.db-wal.old", "not the WAL", 0600);
	put_file(f->state, ".hidden", "hidden", 0600);
	put_file(f->state, "office/info.json", "{}", 0644);
	put_file(f->state, "office/admin.key.tmp", "half a key", 0600);
	put_file(f->state, "ca/demo-a/.root.key.new-X1", "half a key", 0600);
	put_file(f->state, "ca/demo-a/notes.txt", "notes", 0600);
	put_file(f->state, ".demo-b.new-XYZ/root.key", "a CA being made", 0600);
	put_file(f->state, "materials/tmp/upload-ABC", "an unfinished upload", 0600);
	put_file(f->state, "drivers/vkey/token/so_pin", "12345678", 0600);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	cs_remove_tree(f->dir);
	g_free(f->dir);
	g_free(f->state);
	g_free(f->archive);
	g_free(f->target);
	g_free(f->material);
}

/* Every file under @dir, as "name mode" lines in name order. */
static void
list_files(const char *root, const char *rel, GPtrArray *out)
{
	g_autofree char *path = rel != NULL ? g_build_filename(root, rel, NULL) : g_strdup(root);
	g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
	const char *name;

	g_assert_nonnull(dir);
	while ((name = g_dir_read_name(dir)) != NULL) {
		g_autofree char *child =
		    rel != NULL ? g_build_path("/", rel, name, NULL) : g_strdup(name);
		g_autofree char *child_path = g_build_filename(root, child, NULL);
		struct stat st;

		g_assert_no_errno(lstat(child_path, &st));
		if (S_ISDIR(st.st_mode)) {
			g_assert_cmpint(st.st_mode & 0777, ==, 0700);
			list_files(root, child, out);
		} else {
			g_ptr_array_add(out, g_strdup_printf("%s %04o", child, st.st_mode & 0777));
		}
	}
}

static int
compare_strings(gconstpointer a, gconstpointer b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *
files_of(const char *dir)
{
	g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);

	list_files(dir, NULL, files);
	g_ptr_array_sort(files, compare_strings);
	g_ptr_array_add(files, NULL);
	return g_strjoinv("\n", (char **)files->pdata);
}

static gboolean
dir_is_empty(const char *dir)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);

	g_assert_nonnull(d);
	return g_dir_read_name(d) == NULL;
}

static void
assert_same_file(const char *a_dir, const char *b_dir, const char *rel)
{
	g_autofree char *a = g_build_filename(a_dir, rel, NULL);
	g_autofree char *b = g_build_filename(b_dir, rel, NULL);
	g_autofree char *a_text = NULL, *b_text = NULL;
	gsize a_len = 0, b_len = 0;

	g_assert_true(g_file_get_contents(a, &a_text, &a_len, NULL));
	g_assert_true(g_file_get_contents(b, &b_text, &b_len, NULL));
	g_assert_cmpmem(a_text, a_len, b_text, b_len);
}

static gboolean
contains(const char *hay, gsize hay_len, const void *needle, gsize len)
{
	return memmem(hay, hay_len, needle, len) != NULL;
}

static void
create_backup(Fixture *f, const CsBackupKdf *kdf)
{
	g_autoptr(GError) error = NULL;
	CsBackupStats stats = {0};
	gboolean ok = cs_backup_create(f->state, f->archive, PASSPHRASE, kdf, &stats, &error);

	g_assert_no_error(error);
	g_assert_true(ok);
	/* ledger, vault key and check, 3 CA files, 2 office keys, 1 material */
	g_assert_cmpuint(stats.entries, ==, 9);
}

/* Everything a state directory cannot be rebuilt without, and nothing else, comes back
 * with its mode and bytes; the restored vault opens the restored ledger's sealed secret. */
static void
test_backup_round_trip(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(CsVault) vault = NULL;
	g_autoptr(CsLedger) ledger = NULL;
	g_autoptr(GBytes) secret = NULL;
	g_autofree char *ledger_path = g_build_filename(f->target, "ledger.db", NULL);
	g_autofree char *files = NULL;
	g_autofree char *expected = NULL;
	g_autofree char *archive_text = NULL;
	g_autofree char *key_text = NULL;
	g_autofree char *key_path = g_build_filename(f->state, "vault.key", NULL);
	g_autofree char *mat_rel = NULL;
	CsBackupStats stats = {0};
	gsize archive_len = 0, key_len = 0;
	gint64 bad = 0, checked = 0;
	struct stat st;

	create_backup(f, NULL);
	g_assert_no_errno(stat(f->archive, &st));
	g_assert_cmpint(st.st_mode & 0777, ==, 0600);
	/* Nothing left beside it: no ledger copy, no temporary folder. */
	files = files_of(f->dir);
	g_assert_null(strstr(files, "backup.csb."));
	g_clear_pointer(&files, g_free);

	/* No plaintext in the file: not the vault key, a CA key, a material or a secret. */
	g_assert_true(g_file_get_contents(f->archive, &archive_text, &archive_len, NULL));
	g_assert_true(g_file_get_contents(key_path, &key_text, &key_len, NULL));
	g_assert_cmpuint(key_len, ==, CS_VAULT_KEY_SIZE);
	g_assert_true(memcmp(archive_text, CS_BACKUP_MAGIC, 8) == 0);
	g_assert_false(contains(archive_text, archive_len, key_text, key_len));
	g_assert_false(contains(archive_text, archive_len, CA_KEY, strlen(CA_KEY)));
	g_assert_false(contains(archive_text, archive_len, MATERIAL, strlen(MATERIAL)));
	g_assert_false(contains(archive_text, archive_len, "SQLite format", 13));
	g_assert_false(contains(archive_text, archive_len, "vault.key", 9));

	g_assert_true(cs_backup_restore(f->archive, PASSPHRASE, f->target, &stats, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(stats.entries, ==, 9);
	mat_rel = g_strdup_printf("materials/%.2s/%s", f->material, f->material);
	expected = g_strdup_printf("ca/demo-a/issuing.crl 0644\n"
				   "ca/demo-a/root.crt 0644\n"
				   "ca/demo-a/root.key 0600\n"
				   "ledger.db 0600\n"
				   "%s 0600\n"
				   "office/admin.key 0600\n"
				   "office/server.key 0600\n"
				   "vault.check 0600\n"
				   "vault.key 0600",
				   mat_rel);
	files = files_of(f->target);
	g_assert_cmpstr(files, ==, expected);
	for (const char *const *rel =
		 (const char *const[]){"vault.key", "vault.check", "ca/demo-a/root.key",
				       "ca/demo-a/root.crt", "office/admin.key", NULL};
	     *rel != NULL; rel++)
		assert_same_file(f->state, f->target, *rel);
	assert_same_file(f->state, f->target, mat_rel);

	/* A single file: in rollback-journal mode (header bytes 18 and 19), no WAL needed. */
	{
		g_autofree char *db = NULL;
		gsize db_len = 0;

		g_assert_true(g_file_get_contents(ledger_path, &db, &db_len, NULL));
		g_assert_cmpuint(db_len, >, 100);
		g_assert_cmpint(db[18], ==, 1);
		g_assert_cmpint(db[19], ==, 1);
	}
	vault = cs_vault_open(f->target, &error);
	g_assert_no_error(error);
	ledger = cs_ledger_open(ledger_path, vault, 1000, &error);
	g_assert_no_error(error);
	g_assert_true(cs_ledger_verify(ledger, 1, &bad, &checked, &error));
	g_assert_no_error(error);
	g_assert_cmpint(checked, ==, 5);
	secret = cs_ledger_open_secret(ledger, f->secret_id, &error);
	g_assert_no_error(error);
	g_assert_cmpmem(g_bytes_get_data(secret, NULL), g_bytes_get_size(secret), SECRET,
			strlen(SECRET));
}

/* A backup never replaces a file, and a restore never replaces anything. */
static void
test_backup_never_replaces(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *text = NULL;
	g_autofree char *ledger = g_build_filename(f->target, "ledger.db", NULL);

	put_file(f->dir, "backup.csb", "precious", 0600);
	g_assert_false(cs_backup_create(f->state, f->archive, PASSPHRASE, &quick, NULL, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_nonnull(strstr(error->message, "exists"));
	g_clear_error(&error);
	g_assert_true(g_file_get_contents(f->archive, &text, NULL, NULL));
	g_assert_cmpstr(text, ==, "precious");
	g_assert_no_errno(g_unlink(f->archive));

	create_backup(f, &quick);
	put_file(f->target, "ledger.db", "another ledger", 0600);
	g_assert_false(cs_backup_restore(f->archive, PASSPHRASE, f->target, NULL, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_nonnull(strstr(error->message, ledger));
	g_clear_error(&error);
	g_clear_pointer(&text, g_free);
	g_assert_true(g_file_get_contents(ledger, &text, NULL, NULL));
	g_assert_cmpstr(text, ==, "another ledger");
	g_assert_no_errno(g_unlink(ledger));
	g_assert_true(dir_is_empty(f->target));
}

static void
test_backup_wrong_passphrase(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	create_backup(f, &quick);
	g_assert_false(cs_backup_restore(f->archive, "correct horse battery stapler", f->target,
					 NULL, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_ACCESS_DENIED);
	g_assert_nonnull(strstr(error->message, "wrong passphrase"));
	g_assert_null(strstr(error->message, "stapl"));
	g_assert_true(dir_is_empty(f->target));
}

/*
 * No plaintext ever has a name in the output's folder: the ledger's copy goes into a file
 * unlinked before a byte is written to it, the archive into an unnamed file linked into
 * place, so a backup killed at any point leaves no plaintext (and no folder) beside the
 * output. Every name created, written and removed there is watched.
 */
static void
test_backup_nothing_on_disk_but_the_archive(Fixture *f, gconstpointer data)
{
	guint8 events[16 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
	g_autoptr(GHashTable) copies = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	gboolean archive_created = FALSE;
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	ssize_t n;

	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(
	    inotify_add_watch(fd, f->dir, IN_CREATE | IN_MOVED_TO | IN_MODIFY | IN_DELETE), >=, 0);
	create_backup(f, &quick);
	while ((n = read(fd, events, sizeof(events))) > 0) {
		for (ssize_t at = 0; at < n;) {
			const struct inotify_event *ev = (const void *)(events + at);

			at += (ssize_t)sizeof(*ev) + ev->len;
			g_assert_false(ev->mask & IN_ISDIR);
			if (g_strcmp0(ev->name, "backup.csb") == 0) {
				archive_created |= (ev->mask & (IN_CREATE | IN_MOVED_TO)) != 0;
			} else if (g_str_has_prefix(ev->name, ".ledger-copy-")) {
				/* Created, then unlinked before anything is written under the
				 * name. */
				if (ev->mask & IN_CREATE)
					g_hash_table_add(copies, g_strdup(ev->name));
				else if (ev->mask & IN_DELETE)
					g_assert_true(g_hash_table_remove(copies, ev->name));
				else
					g_assert_false(g_hash_table_contains(copies, ev->name));
			} else if (ev->name[0] == '#') {
				/* The unnamed archive (ciphertext) being written: never given
				 * this name. */
				g_assert_cmpuint(ev->mask, ==, IN_MODIFY);
			} else {
				/* Where the file system has no unnamed files: the archive's
				 * hidden temporary (ciphertext). */
				g_assert_true(g_str_has_prefix(ev->name, ".backup.csb."));
			}
		}
	}
	g_assert_cmpint(errno, ==, EAGAIN);
	close(fd);
	g_assert_true(archive_created);
	g_assert_cmpuint(g_hash_table_size(copies), ==, 0);
}

/* A folder others may write into without the sticky bit is refused, naming it: they could
 * swap a name the backup opens for a file of theirs. With the sticky bit (/tmp) it is not. */
static void
test_backup_refuses_a_folder_others_write(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *open_dir = g_build_filename(f->dir, "open", NULL);
	g_autofree char *out = g_build_filename(open_dir, "backup.csb", NULL);

	g_assert_no_errno(g_mkdir(open_dir, 0700));
	g_assert_no_errno(chmod(open_dir, 0777));
	g_assert_false(cs_backup_create(f->state, out, PASSPHRASE, &quick, NULL, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_nonnull(strstr(error->message, open_dir));
	g_assert_nonnull(strstr(error->message, "others may write"));
	g_clear_error(&error);
	g_assert_true(dir_is_empty(open_dir));
	g_assert_no_errno(chmod(open_dir, 01777));
	g_assert_true(cs_backup_create(f->state, out, PASSPHRASE, &quick, NULL, &error));
	g_assert_no_error(error);
	g_assert_no_errno(g_unlink(out));
	g_assert_no_errno(chmod(open_dir, 0700));
}

/* The private folder a killed backup of an earlier version left beside the output, with
 * the ledger's plaintext copy in it, is removed by the next backup to that output; folders
 * that are not such a leftover are not touched. */
static void
test_backup_removes_a_killed_backups_folder(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *stale = g_build_filename(f->dir, ".backup.csb.Ab12Cd", NULL);
	g_autofree char *other = g_build_filename(f->dir, ".backup.csb.Keep01", NULL);
	g_autofree char *another = g_build_filename(f->dir, ".other.csb.Ab12Cd", NULL);
	g_autofree char *elsewhere = g_build_filename(f->dir, "elsewhere", NULL);
	g_autofree char *elsewhere_ledger = g_build_filename(elsewhere, "ledger.db", NULL);
	g_autofree char *link = g_build_filename(f->dir, ".backup.csb.Ln12Ab", NULL);
	CsBackupStats stats = {0};

	put_file(stale, "ledger.db", "SQLite format 3 a plaintext ledger", 0600);
	put_file(stale, "archive", "CSBACKUP half an archive", 0600);
	g_assert_no_errno(chmod(stale, 0700));
	put_file(other, "notes.txt", "someone's notes", 0600);
	put_file(another, "ledger.db", "the copy of another output's backup", 0600);
	/* A link in its place, to a folder that looks like one: neither followed nor removed. */
	put_file(f->dir, "elsewhere/ledger.db", "a ledger elsewhere", 0600);
	put_file(f->dir, "elsewhere/archive", "an archive elsewhere", 0600);
	g_assert_no_errno(chmod(elsewhere, 0700));
	g_assert_no_errno(symlink(elsewhere, link));
	g_assert_true(cs_backup_create(f->state, f->archive, PASSPHRASE, &quick, &stats, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(stats.stale_removed, ==, 1);
	g_assert_false(g_file_test(stale, G_FILE_TEST_EXISTS));
	g_assert_true(g_file_test(other, G_FILE_TEST_IS_DIR));
	g_assert_true(g_file_test(another, G_FILE_TEST_IS_DIR));
	g_assert_true(g_file_test(link, G_FILE_TEST_IS_SYMLINK));
	g_assert_true(g_file_test(elsewhere_ledger, G_FILE_TEST_IS_REGULAR));
	g_assert_no_errno(g_unlink(link));
}

/*
 * What a killed restore left in its target: its private folder alone (killed before it
 * moved anything) is removed and the target is ready; beside a name it was moving into
 * place, the refusal names both and nothing is removed; a folder that only looks like one
 * (not private) is anything else.
 */
static void
test_backup_interrupted_restore(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *staging = g_build_filename(f->target, ".restore-Ab12Cd", NULL);
	g_autofree char *lookalike = g_build_filename(f->target, ".restore-Zz99Zz", NULL);
	g_autofree char *ledger = g_build_filename(f->target, "ledger.db", NULL);
	g_autofree char *files = NULL;
	guint removed = 99;

	put_file(f->target, "lock", "", 0600);
	g_assert_true(cs_backup_check_target(f->target, &removed, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(removed, ==, 0);

	put_file(staging, "vault.key", "a plaintext vault key", 0600);
	put_file(staging, "ca/demo-a/root.key", CA_KEY, 0600);
	g_assert_no_errno(chmod(staging, 0700));
	put_file(f->target, "ledger.db", "a ledger moved into place", 0600);
	g_assert_false(cs_backup_check_target(f->target, &removed, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_nonnull(strstr(error->message, ".restore-Ab12Cd"));
	g_assert_nonnull(strstr(error->message, "interrupted restore"));
	g_assert_nonnull(strstr(error->message, "ledger.db"));
	g_clear_error(&error);
	g_assert_true(g_file_test(staging, G_FILE_TEST_IS_DIR));

	g_assert_no_errno(g_unlink(ledger));
	g_assert_true(cs_backup_check_target(f->target, &removed, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(removed, ==, 1);
	files = files_of(f->target);
	g_assert_cmpstr(files, ==, "lock 0600");

	put_file(lookalike, "notes.txt", "someone's", 0600);
	g_assert_no_errno(chmod(lookalike, 0755));
	g_assert_false(cs_backup_check_target(f->target, &removed, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_nonnull(strstr(error->message, "not empty (.restore-Zz99Zz)"));
	g_assert_no_errno(chmod(lookalike, 0700));
}

/* The parser underneath restoring, on a decrypted body: two entries and the end mark
 * pass; a byte more after the end, any byte fewer, or a size past the end refuse. */
static void
test_backup_payload_parser(Fixture *f, gconstpointer data)
{
	static const guint8 body[] = {
	    0, 9, 'l',	'e', 'd', 'g', 'e', 'r', '.', 'd', 'b', 0,   0,	  1,   0x80, 0,	  0,   0,
	    0, 0, 0,	0,   1,	  'L', 0,   9,	 'v', 'a', 'u', 'l', 't', '.', 'k',  'e', 'y', 0,
	    0, 1, 0x80, 0,   0,	  0,   0,   0,	 0,   0,   2,	'K', 'K', 0,   0,    'x'};
	g_autoptr(GError) error = NULL;
	guint8 *copy = g_memdup2(body, sizeof(body));
	CsBackupStats stats = {0};

	g_assert_true(cs_backup_check_payload(body, sizeof(body) - 1, &stats, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(stats.entries, ==, 2);
	g_assert_cmpuint(stats.bytes, ==, 3);
	g_assert_false(cs_backup_check_payload(body, sizeof(body), &stats, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_clear_error(&error);
	for (gsize len = 0; len < sizeof(body) - 1; len++) {
		g_assert_false(cs_backup_check_payload(body, len, NULL, &error));
		g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
		g_clear_error(&error);
	}
	copy[21] = 0xff; /* ledger.db's size: 255 bytes */
	g_assert_false(cs_backup_check_payload(copy, sizeof(body) - 1, NULL, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_free(copy);
}

/* Write @archive with one byte at @offset (from the end when negative) changed. */
static void
flip_byte(const char *archive, goffset offset)
{
	g_autofree char *text = NULL;
	g_autoptr(GError) error = NULL;
	gsize len = 0;

	g_assert_true(g_file_get_contents(archive, &text, &len, NULL));
	if (offset < 0)
		offset += (goffset)len;
	g_assert_cmpint(offset, <, (goffset)len);
	text[offset] ^= 0x01;
	g_assert_true(g_file_set_contents(archive, text, (gssize)len, &error));
	g_assert_no_error(error);
}

/* Any changed byte of the body or the tag, or a cut-off file, is refused before anything
 * is written; a changed header byte reads as a wrong passphrase. */
static void
test_backup_tampered_refused(Fixture *f, gconstpointer data)
{
	static const goffset body[] = {84, 100, 2000, -17, -1};
	g_autofree char *pristine = NULL;
	g_autoptr(GError) error = NULL;
	gsize len = 0;

	create_backup(f, &quick);
	g_assert_true(g_file_get_contents(f->archive, &pristine, &len, NULL));
	for (guint i = 0; i < G_N_ELEMENTS(body); i++) {
		g_assert_true(g_file_set_contents(f->archive, pristine, (gssize)len, NULL));
		flip_byte(f->archive, body[i]);
		g_assert_false(cs_backup_restore(f->archive, PASSPHRASE, f->target, NULL, &error));
		g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
		g_assert_nonnull(strstr(error->message, "damaged or altered"));
		g_clear_error(&error);
		g_assert_true(dir_is_empty(f->target));
	}
	/* The salt (in the header, the associated data): the key derived differs. */
	g_assert_true(g_file_set_contents(f->archive, pristine, (gssize)len, NULL));
	flip_byte(f->archive, 30);
	g_assert_false(cs_backup_restore(f->archive, PASSPHRASE, f->target, NULL, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_ACCESS_DENIED);
	g_clear_error(&error);
	/* The version. */
	g_assert_true(g_file_set_contents(f->archive, pristine, (gssize)len, NULL));
	flip_byte(f->archive, 11);
	g_assert_false(cs_backup_restore(f->archive, PASSPHRASE, f->target, NULL, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_nonnull(strstr(error->message, "version"));
	g_clear_error(&error);
	/* Cut off. */
	g_assert_true(g_file_set_contents(f->archive, pristine, (gssize)len - 40, NULL));
	g_assert_false(cs_backup_restore(f->archive, PASSPHRASE, f->target, NULL, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_clear_error(&error);
	g_assert_true(dir_is_empty(f->target));
	/* Not a backup at all. */
	g_assert_true(g_file_set_contents(f->archive, "SQLite format 3", -1, NULL));
	g_assert_false(cs_backup_restore(f->archive, PASSPHRASE, f->target, NULL, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_nonnull(strstr(error->message, "not a certseal backup"));
	g_assert_true(dir_is_empty(f->target));
}

typedef struct {
	const char *name;
	guint32 mode;
} Entry;

/* A well-formed, authentic archive of ledger.db, vault.key and then @extra. */
static void
craft_archive(Fixture *f, const Entry *extra, guint n_extra)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(CsBackupWriter) w = NULL;
	int fd;

	g_unlink(f->archive);
	fd = open(f->archive, O_WRONLY | O_CREAT | O_EXCL, 0600);
	g_assert_cmpint(fd, >=, 0);
	w = cs_backup_writer_new(fd, PASSPHRASE, &quick, &error);
	g_assert_no_error(error);
	g_assert_true(cs_backup_writer_add(w, "ledger.db", 0600, (const guint8 *)"db", 2, &error));
	g_assert_true(cs_backup_writer_add(w, "vault.key", 0600, (const guint8 *)"k", 1, &error));
	for (guint i = 0; i < n_extra; i++)
		g_assert_true(cs_backup_writer_add(w, extra[i].name, extra[i].mode,
						   (const guint8 *)"x", 1, &error));
	g_assert_true(cs_backup_writer_finish(w, &error));
	g_assert_no_error(error);
	close(fd);
}

/* An authentic archive with an entry a backup never holds is refused whole, naming it,
 * before anything is written. */
static void
test_backup_bad_entries_refused(Fixture *f, gconstpointer data)
{
	static const Entry bad[] = {
	    {"/etc/passwd", 0644},
	    {"../outside", 0600},
	    {"ca/../../outside", 0600},
	    {"ca/demo-a/../../vault.key", 0600},
	    {"ca/demo-a/../root.key", 0600},
	    {"./vault.check", 0600},
	    {"ca//root.key", 0600},
	    {"ca/demo-a/", 0600},
	    {".hidden", 0600},
	    {"ca/.demo-a/root.key", 0600},
	    {"lock", 0600},
	    {"ledger.db-wal", 0600},
	    {"ledger.db-shm", 0600},
	    {"ledger.db.v3.bak", 0600},
	    {"office/info.json", 0644},
	    {"office/../vault.key", 0600},
	    {"materials/tmp/upload-ABC", 0600},
	    {"materials/ab/abc", 0600},
	    {"materials/00/"
	     "ab11111111111111111111111111111111111111111111111111111111111111",
	     0600},
	    {"drivers/vkey/token/so_pin", 0600},
	    {"ca/demo-a/evil.so", 0600},
	    {"ca/Demo-A/root.key", 0600},
	    {"certseald.conf", 0644},
	};
	static const Entry bad_mode[] = {
	    {"vault.check", 0755},	   {"ca/demo-a/root.key", 0644}, {"office/admin.key", 0640},
	    {"ca/demo-a/root.crt", 04644}, {"ca/demo-a/root.crt", 0666},
	};
	g_autoptr(GError) error = NULL;

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		craft_archive(f, &bad[i], 1);
		g_assert_false(cs_backup_restore(f->archive, PASSPHRASE, f->target, NULL, &error));
		g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
		g_assert_nonnull(strstr(error->message, "not a file a backup holds"));
		g_assert_nonnull(strstr(error->message, bad[i].name));
		g_clear_error(&error);
		g_assert_true(dir_is_empty(f->target));
		g_assert_false(cs_backup_entry_ok(bad[i].name, 0600, NULL));
	}
	for (guint i = 0; i < G_N_ELEMENTS(bad_mode); i++) {
		craft_archive(f, &bad_mode[i], 1);
		g_assert_false(cs_backup_restore(f->archive, PASSPHRASE, f->target, NULL, &error));
		g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
		g_assert_nonnull(strstr(error->message, "mode"));
		g_assert_nonnull(strstr(error->message, bad_mode[i].name));
		g_clear_error(&error);
		g_assert_true(dir_is_empty(f->target));
	}
	/* A name twice. */
	craft_archive(f, (const Entry[]){{"vault.check", 0600}, {"vault.check", 0600}}, 2);
	g_assert_false(cs_backup_restore(f->archive, PASSPHRASE, f->target, NULL, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_nonnull(strstr(error->message, "twice"));
	g_clear_error(&error);
	g_assert_true(dir_is_empty(f->target));

	/* The crafted archive itself, with good names only, restores. */
	craft_archive(f, (const Entry[]){{"vault.check", 0644}, {"ca/demo-a/root.key", 0600}}, 2);
	g_assert_true(cs_backup_restore(f->archive, PASSPHRASE, f->target, NULL, &error));
	g_assert_no_error(error);
}

/* Restoring needs the ledger and the vault key. */
static void
test_backup_incomplete_refused(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(CsBackupWriter) w = NULL;
	int fd = open(f->archive, O_WRONLY | O_CREAT | O_EXCL, 0600);

	w = cs_backup_writer_new(fd, PASSPHRASE, &quick, &error);
	g_assert_true(cs_backup_writer_add(w, "ledger.db", 0600, (const guint8 *)"db", 2, &error));
	g_assert_true(cs_backup_writer_finish(w, &error));
	close(fd);
	g_assert_false(cs_backup_restore(f->archive, PASSPHRASE, f->target, NULL, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_nonnull(strstr(error->message, "holds no vault.key"));
	g_assert_true(dir_is_empty(f->target));
}

static void
test_backup_passphrase_rules(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *longest = g_strnfill(CS_BACKUP_PASSPHRASE_MAX, 'a');
	g_autofree char *too_long = g_strnfill(CS_BACKUP_PASSPHRASE_MAX + 1, 'a');

	g_assert_true(cs_backup_check_passphrase("twelve chars", NULL));
	g_assert_true(cs_backup_check_passphrase("十二个字的口令也一样可以用吗", NULL));
	g_assert_true(cs_backup_check_passphrase(longest, NULL));
	g_assert_false(cs_backup_check_passphrase(too_long, NULL));
	g_assert_false(cs_backup_check_passphrase("\xff\xfe not text at all", NULL));
	g_assert_false(cs_backup_check_passphrase("eleven char", &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_nonnull(strstr(error->message, "passphrase"));
	g_assert_null(strstr(error->message, "eleven"));
	g_clear_error(&error);

	g_assert_false(cs_backup_create(f->state, f->archive, "too short", &quick, NULL, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_false(g_file_test(f->archive, G_FILE_TEST_EXISTS));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);

#define ADD(path, func) g_test_add(path, Fixture, NULL, fixture_setup, func, fixture_teardown)
	ADD("/backup/round-trip", test_backup_round_trip);
	ADD("/backup/never-replaces", test_backup_never_replaces);
	ADD("/backup/nothing-on-disk-but-the-archive", test_backup_nothing_on_disk_but_the_archive);
	ADD("/backup/removes-a-killed-backups-folder", test_backup_removes_a_killed_backups_folder);
	ADD("/backup/refuses-a-folder-others-write", test_backup_refuses_a_folder_others_write);
	ADD("/backup/restore/wrong-passphrase-writes-nothing", test_backup_wrong_passphrase);
	ADD("/backup/restore/interrupted-restore", test_backup_interrupted_restore);
	ADD("/backup/restore/payload-parser", test_backup_payload_parser);
	ADD("/backup/restore/tampered-refused", test_backup_tampered_refused);
	ADD("/backup/restore/bad-entries-refused", test_backup_bad_entries_refused);
	ADD("/backup/restore/incomplete-refused", test_backup_incomplete_refused);
	ADD("/backup/passphrase-rules", test_backup_passphrase_rules);
	return g_test_run();
}
