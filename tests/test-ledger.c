/*
 * test-ledger.c — the ledger (daemon/store/cs-ledger.c) and the vault (daemon/store/cs-vault.c).
 *
 * Real SQLite files in a fresh temporary directory per test, removed afterwards. Tamper
 * tests go behind the ledger's back with a raw sqlite3 connection (drop the append-only
 * trigger, edit a row) and check that the right event is named; refusal tests check that
 * the refused file is left byte for byte as it was. Migration tests open copies of the
 * checked-in older ledgers in $CS_TEST_DATA (written by tests/make-ledger-fixture.c).
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <sqlite3.h>

#include "certseal/plugin.h"
#include "cs-json.h"
#include "cs-ledger.h"

#define CS_LEDGER_SCHEMA_VERSION_NEXT 11 /* CS_LEDGER_SCHEMA_VERSION + 1, as a literal */
G_STATIC_ASSERT(CS_LEDGER_SCHEMA_VERSION_NEXT == CS_LEDGER_SCHEMA_VERSION + 1);
#include "cs-vault.h"

#define T0 G_GINT64_CONSTANT(1732406400000000) /* 2024-11-24T00:00:00Z */

typedef struct {
	char *dir;
	char *path; /* <dir>/ledger.db */
	CsVault *vault;
} Fixture;

/* ---- helpers -------------------------------------------------------------------------- */

static void
rm_rf(const char *path)
{
	GDir *dir = g_dir_open(path, 0, NULL);

	if (dir != NULL) {
		const char *name;

		while ((name = g_dir_read_name(dir)) != NULL) {
			g_autofree char *child = g_build_filename(path, name, NULL);

			rm_rf(child);
		}
		g_dir_close(dir);
		g_assert_no_errno(g_rmdir(path));
		return;
	}
	g_assert_no_errno(g_unlink(path));
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	f->dir = g_dir_make_tmp("cs-ledger-XXXXXX", &error);
	g_assert_no_error(error);
	f->path = g_build_filename(f->dir, "ledger.db", NULL);
	f->vault = cs_vault_open(f->dir, &error);
	g_assert_no_error(error);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	cs_vault_free(f->vault);
	rm_rf(f->dir);
	g_free(f->dir);
	g_free(f->path);
}

static CsLedger *
open_ledger(Fixture *f, guint checkpoint_interval)
{
	g_autoptr(GError) error = NULL;
	CsLedger *ledger = cs_ledger_open(f->path, f->vault, checkpoint_interval, &error);

	g_assert_no_error(error);
	g_assert_nonnull(ledger);
	return ledger;
}

static char *
insert_order(CsLedger *ledger, const char *state, GVariant *fields, gint64 now)
{
	g_autoptr(GError) error = NULL;
	char *id = NULL;

	g_assert_true(cs_ledger_insert_order(ledger, "new", "org", "demo-a", state, 1000, fields,
					     now, &id, &error));
	g_assert_no_error(error);
	return id;
}

/* An event about @id after it changed: the ledger keys the order's new state with it (a
 * change without one is not committed). */
static void
record_change(CsLedger *ledger, const char *id)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(cs_ledger_append_event(ledger, id, "updated", NULL, NULL, "uid:1000", NULL,
					     T0, NULL, &error));
	g_assert_no_error(error);
}

/* One order and @n events on it (a "created" and transitions), committed together. */
static char *
append_events(CsLedger *ledger, guint n)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *id = NULL;

	g_assert_true(cs_ledger_begin(ledger, &error));
	id = insert_order(ledger, "draft", NULL, T0);
	for (guint i = 0; i < n; i++) {
		g_autoptr(GVariant) data = g_variant_ref_sink(
		    g_variant_new_parsed("{'step': <%u>, 'note': <'第%u步'>}", i, i));
		gint64 seq = 0;

		g_assert_true(cs_ledger_append_event(ledger, id, i == 0 ? "created" : "transition",
						     i == 0 ? NULL : "draft", "draft", "uid:1000",
						     data, T0 + i, &seq, &error));
		g_assert_no_error(error);
		g_assert_cmpint(seq, ==, cs_ledger_last_seq(ledger));
	}
	g_assert_true(cs_ledger_commit(ledger, &error));
	g_assert_no_error(error);
	return g_steal_pointer(&id);
}

static sqlite3 *
raw_open(const char *path)
{
	sqlite3 *db = NULL;

	g_assert_cmpint(
	    sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL), ==,
	    SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

static void
raw_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK)
		g_error("%s: %s", sql, msg);
}

/* Run @sql (one or more statements) on @path through a separate, raw connection. */
static void
raw_exec_file(const char *path, const char *sql)
{
	sqlite3 *db = raw_open(path);

	raw_exec(db, sql);
	g_assert_cmpint(sqlite3_close(db), ==, SQLITE_OK);
}

static gint64
raw_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *stmt = NULL;
	gint64 v;

	g_assert_cmpint(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_step(stmt), ==, SQLITE_ROW);
	v = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	return v;
}

static gint64
raw_int_file(const char *path, const char *sql)
{
	sqlite3 *db = raw_open(path);
	gint64 v = raw_int(db, sql);

	sqlite3_close(db);
	return v;
}

/* The first column of the first row, as a new string. */
static char *
raw_text(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *stmt = NULL;
	char *text;

	g_assert_cmpint(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_step(stmt), ==, SQLITE_ROW);
	text = g_strdup((const char *)sqlite3_column_text(stmt, 0));
	sqlite3_finalize(stmt);
	return text;
}

static GBytes *
raw_blob(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *stmt = NULL;
	GBytes *b;

	g_assert_cmpint(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_step(stmt), ==, SQLITE_ROW);
	b = g_bytes_new(sqlite3_column_blob(stmt, 0), sqlite3_column_bytes(stmt, 0));
	sqlite3_finalize(stmt);
	return b;
}

static gboolean
file_contains(const char *path, const void *needle, gsize len)
{
	g_autofree char *contents = NULL;
	gsize size = 0;

	if (!g_file_get_contents(path, &contents, &size, NULL))
		return FALSE;
	return memmem(contents, size, needle, len) != NULL;
}

/* What a refusal must not change: the bytes and the modification time. */
typedef struct {
	GBytes *contents;
	gint64 mtime_ns;
	guint n_files;
} FileSnapshot;

static guint
count_dir_entries(const char *dir_path)
{
	g_autoptr(GDir) dir = g_dir_open(dir_path, 0, NULL);
	guint n = 0;

	g_assert_nonnull(dir);
	while (g_dir_read_name(dir) != NULL)
		n++;
	return n;
}

static void
snapshot_take(FileSnapshot *s, const char *path)
{
	g_autofree char *contents = NULL;
	g_autofree char *dir = g_path_get_dirname(path);
	gsize size = 0;
	struct stat st;

	g_assert_true(g_file_get_contents(path, &contents, &size, NULL));
	g_assert_no_errno(stat(path, &st));
	s->contents = g_bytes_new_take(g_steal_pointer(&contents), size);
	s->mtime_ns = (gint64)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	s->n_files = count_dir_entries(dir);
}

static void
snapshot_assert_unchanged(FileSnapshot *s, const char *path)
{
	FileSnapshot now = {0};

	snapshot_take(&now, path);
	g_assert_true(g_bytes_equal(s->contents, now.contents));
	g_assert_cmpint(s->mtime_ns, ==, now.mtime_ns);
	/* Nothing created beside it either: no backup, no -wal or -shm left behind. */
	g_assert_cmpuint(s->n_files, ==, now.n_files);
	g_bytes_unref(now.contents);
	g_bytes_unref(s->contents);
	s->contents = NULL;
}

static void
copy_fixture(const char *name, const char *dest)
{
	const char *data_dir = g_getenv("CS_TEST_DATA");
	g_autofree char *src = NULL;
	g_autoptr(GFile) from = NULL;
	g_autoptr(GFile) to = NULL;
	g_autoptr(GError) error = NULL;

	g_assert_nonnull(data_dir);
	src = g_build_filename(data_dir, name, NULL);
	from = g_file_new_for_path(src);
	to = g_file_new_for_path(dest);
	g_assert_true(g_file_copy(from, to, G_FILE_COPY_NONE, NULL, NULL, NULL, &error));
	g_assert_no_error(error);
}

/* SHA-256(prev ‖ canonical), computed here independently of the ledger's code. */
static void
chain_step(const guint8 prev[32], const char *canonical, guint8 out[32])
{
	g_autoptr(GByteArray) buf = g_byte_array_new();

	g_byte_array_append(buf, prev, 32);
	g_byte_array_append(buf, (const guint8 *)canonical, strlen(canonical));
	SHA256(buf->data, buf->len, out);
}

/* Recompute and rewrite the hashes of events @from_seq… the way a forger would, so that
 * the chain itself is consistent again (triggers must already be dropped). */
static void
rechain_from(sqlite3 *db, gint64 from_seq)
{
	sqlite3_stmt *select = NULL;
	sqlite3_stmt *update = NULL;
	guint8 prev[32] = {0};

	if (from_seq > 1) {
		sqlite3_stmt *head = NULL;

		g_assert_cmpint(sqlite3_prepare_v2(db, "SELECT hash FROM events WHERE seq = ?1", -1,
						   &head, NULL),
				==, SQLITE_OK);
		sqlite3_bind_int64(head, 1, from_seq - 1);
		g_assert_cmpint(sqlite3_step(head), ==, SQLITE_ROW);
		memcpy(prev, sqlite3_column_blob(head, 0), 32);
		sqlite3_finalize(head);
	}
	g_assert_cmpint(sqlite3_prepare_v2(db,
					   "SELECT seq, time, order_id, kind, from_state, "
					   "to_state, actor, data FROM events WHERE seq >= ?1 "
					   "ORDER BY seq",
					   -1, &select, NULL),
			==, SQLITE_OK);
	g_assert_cmpint(
	    sqlite3_prepare_v2(db, "UPDATE events SET hash = ?2 WHERE seq = ?1", -1, &update, NULL),
	    ==, SQLITE_OK);
	sqlite3_bind_int64(select, 1, from_seq);
	while (sqlite3_step(select) == SQLITE_ROW) {
		g_autofree char *canonical = cs_ledger_event_canonical(
		    sqlite3_column_int64(select, 0), sqlite3_column_int64(select, 1),
		    (const char *)sqlite3_column_text(select, 2),
		    (const char *)sqlite3_column_text(select, 3),
		    (const char *)sqlite3_column_text(select, 4),
		    (const char *)sqlite3_column_text(select, 5),
		    (const char *)sqlite3_column_text(select, 6),
		    (const char *)sqlite3_column_text(select, 7));
		guint8 hash[32];

		chain_step(prev, canonical, hash);
		sqlite3_bind_int64(update, 1, sqlite3_column_int64(select, 0));
		sqlite3_bind_blob(update, 2, hash, 32, SQLITE_TRANSIENT);
		g_assert_cmpint(sqlite3_step(update), ==, SQLITE_DONE);
		sqlite3_reset(update);
		memcpy(prev, hash, 32);
	}
	sqlite3_finalize(select);
	sqlite3_finalize(update);
}

static void
assert_verifies(CsLedger *ledger, gint64 expected_n)
{
	g_autoptr(GError) error = NULL;
	gint64 bad = -1;
	gint64 n = -1;

	g_assert_true(cs_ledger_verify(ledger, 1, &bad, &n, &error));
	g_assert_no_error(error);
	g_assert_cmpint(bad, ==, 0);
	g_assert_cmpint(n, ==, expected_n);
}

static void
assert_verify_names(CsLedger *ledger, gint64 from_seq, gint64 seq, const char *problem)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *expected =
	    g_strdup_printf("ledger event %" G_GINT64_FORMAT ": %s", seq, problem);
	gint64 bad = 0;

	g_assert_false(cs_ledger_verify(ledger, from_seq, &bad, NULL, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INTERNAL);
	g_assert_cmpint(bad, ==, seq);
	g_assert_true(g_str_has_prefix(error->message, expected));
}

/* ---- vault ---------------------------------------------------------------------------- */

static void
test_vault_seal_roundtrip(Fixture *f, gconstpointer data)
{
	const char *pin = "483920";
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) sealed = NULL;
	g_autoptr(GBytes) sealed2 = NULL;
	g_autoptr(GBytes) plain = NULL;
	g_autoptr(GBytes) empty_sealed = NULL;
	g_autoptr(GBytes) empty_plain = NULL;

	sealed =
	    cs_vault_seal(f->vault, "secret:1:so_pin", (const guint8 *)pin, strlen(pin), &error);
	g_assert_no_error(error);
	g_assert_cmpuint(g_bytes_get_size(sealed), ==,
			 CS_VAULT_NONCE_SIZE + strlen(pin) + CS_VAULT_TAG_SIZE);
	g_assert_null(
	    memmem(g_bytes_get_data(sealed, NULL), g_bytes_get_size(sealed), pin, strlen(pin)));
	plain = cs_vault_unseal(f->vault, "secret:1:so_pin", sealed, &error);
	g_assert_no_error(error);
	g_assert_cmpmem(g_bytes_get_data(plain, NULL), g_bytes_get_size(plain), pin, strlen(pin));

	/* A fresh nonce every time: the same secret never seals to the same bytes. */
	sealed2 =
	    cs_vault_seal(f->vault, "secret:1:so_pin", (const guint8 *)pin, strlen(pin), &error);
	g_assert_no_error(error);
	g_assert_false(g_bytes_equal(sealed, sealed2));

	empty_sealed = cs_vault_seal(f->vault, "x", NULL, 0, &error);
	g_assert_no_error(error);
	empty_plain = cs_vault_unseal(f->vault, "x", empty_sealed, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(g_bytes_get_size(empty_plain), ==, 0);
}

static void
test_vault_seal_tamper_detected(Fixture *f, gconstpointer data)
{
	const char *secret = "so-pin-12345678";
	g_autoptr(GBytes) sealed = NULL;
	g_autoptr(GError) error = NULL;
	gsize size;
	/* A byte of the nonce, of the ciphertext and of the tag. */
	const gsize positions[] = {0, CS_VAULT_NONCE_SIZE + 3,
				   CS_VAULT_NONCE_SIZE + strlen(secret) + 5};

	sealed = cs_vault_seal(f->vault, "aad", (const guint8 *)secret, strlen(secret), &error);
	g_assert_no_error(error);
	size = g_bytes_get_size(sealed);
	for (guint i = 0; i < G_N_ELEMENTS(positions); i++) {
		g_autofree guint8 *copy = g_memdup2(g_bytes_get_data(sealed, NULL), size);
		g_autoptr(GBytes) altered = NULL;
		g_autoptr(GBytes) plain = NULL;
		g_autoptr(GError) local_error = NULL;

		copy[positions[i]] ^= 0x01;
		altered = g_bytes_new(copy, size);
		plain = cs_vault_unseal(f->vault, "aad", altered, &local_error);
		g_assert_null(plain);
		g_assert_error(local_error, CS_ERROR, CS_ERROR_INTERNAL);
		g_assert_cmpstr(local_error->message, ==, "sealed secret failed authentication");
	}
	/* Truncated below nonce + tag. */
	{
		g_autoptr(GBytes) cut = g_bytes_new_from_bytes(sealed, 0, 20);
		g_autoptr(GBytes) plain = cs_vault_unseal(f->vault, "aad", cut, &error);

		g_assert_null(plain);
		g_assert_error(error, CS_ERROR, CS_ERROR_INTERNAL);
	}
}

static void
test_vault_seal_wrong_aad_refused(Fixture *f, gconstpointer data)
{
	g_autoptr(GBytes) sealed = NULL;
	g_autoptr(GBytes) plain = NULL;
	g_autoptr(GError) error = NULL;

	sealed = cs_vault_seal(f->vault, "secret:1:so_pin", (const guint8 *)"1234", 4, &error);
	g_assert_no_error(error);
	plain = cs_vault_unseal(f->vault, "secret:2:so_pin", sealed, &error);
	g_assert_null(plain);
	g_assert_error(error, CS_ERROR, CS_ERROR_INTERNAL);
	g_clear_error(&error);
	plain = cs_vault_unseal(f->vault, NULL, sealed, &error);
	g_assert_null(plain);
	g_assert_error(error, CS_ERROR, CS_ERROR_INTERNAL);
}

static void
test_vault_key_created_private(Fixture *f, gconstpointer data)
{
	g_autofree char *key_path = g_build_filename(f->dir, "vault.key", NULL);
	g_autoptr(CsVault) again = NULL;
	g_autoptr(GBytes) sealed = NULL;
	g_autoptr(GBytes) plain = NULL;
	g_autoptr(GError) error = NULL;
	struct stat st;

	g_assert_no_errno(stat(key_path, &st));
	g_assert_true(S_ISREG(st.st_mode));
	g_assert_cmpint(st.st_mode & 07777, ==, 0600);
	g_assert_cmpint(st.st_size, ==, CS_VAULT_KEY_SIZE);
	/* Only the key and its check value: the temporary files are gone. */
	g_assert_cmpuint(count_dir_entries(f->dir), ==, 2);

	/* The same key next time: what one instance sealed, the next one opens. */
	sealed = cs_vault_seal(f->vault, "a", (const guint8 *)"persist", 7, &error);
	g_assert_no_error(error);
	again = cs_vault_open(f->dir, &error);
	g_assert_no_error(error);
	plain = cs_vault_unseal(again, "a", sealed, &error);
	g_assert_no_error(error);
	g_assert_cmpmem(g_bytes_get_data(plain, NULL), g_bytes_get_size(plain), "persist", 7);
}

/* 32 other bytes in vault.key are refused, naming the file, and nothing is rewritten. */
static void
test_vault_key_replaced_refused(Fixture *f, gconstpointer data)
{
	g_autofree char *key_path = g_build_filename(f->dir, "vault.key", NULL);
	g_autofree char *check_path = g_build_filename(f->dir, "vault.check", NULL);
	g_autofree char *check_before = NULL;
	g_autofree char *check_after = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(CsVault) vault = NULL;
	guint8 other[CS_VAULT_KEY_SIZE];

	g_assert_true(g_file_get_contents(check_path, &check_before, NULL, NULL));
	for (guint i = 0; i < sizeof(other); i++)
		other[i] = (guint8)(i * 7 + 1);
	g_assert_no_errno(g_unlink(key_path));
	g_assert_true(g_file_set_contents_full(key_path, (const char *)other, sizeof(other),
					       G_FILE_SET_CONTENTS_NONE, 0600, NULL));
	vault = cs_vault_open(f->dir, &error);
	g_assert_null(vault);
	g_assert_error(error, CS_ERROR, CS_ERROR_INTERNAL);
	g_assert_nonnull(strstr(error->message, key_path));
	g_assert_nonnull(strstr(error->message, "not the key"));
	g_assert_true(g_file_get_contents(check_path, &check_after, NULL, NULL));
	g_assert_cmpstr(check_before, ==, check_after);
}

/* A state directory from before check values: the first open writes one, and from then on
 * a replaced key is refused. */
static void
test_vault_check_value_migrated(Fixture *f, gconstpointer data)
{
	g_autofree char *key_path = g_build_filename(f->dir, "vault.key", NULL);
	g_autofree char *check_path = g_build_filename(f->dir, "vault.check", NULL);
	g_autoptr(GBytes) sealed = NULL;
	g_autoptr(GBytes) plain = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(CsVault) again = NULL;
	g_autoptr(CsVault) refused = NULL;
	guint8 other[CS_VAULT_KEY_SIZE] = {0x42};
	struct stat st;

	sealed = cs_vault_seal(f->vault, "a", (const guint8 *)"kept", 4, &error);
	g_assert_no_error(error);
	g_assert_no_errno(g_unlink(check_path));
	again = cs_vault_open(f->dir, &error);
	g_assert_no_error(error);
	g_assert_no_errno(stat(check_path, &st));
	g_assert_cmpint(st.st_mode & 07777, ==, 0600);
	plain = cs_vault_unseal(again, "a", sealed, &error);
	g_assert_no_error(error);
	g_assert_cmpmem(g_bytes_get_data(plain, NULL), g_bytes_get_size(plain), "kept", 4);

	g_assert_no_errno(g_unlink(key_path));
	g_assert_true(g_file_set_contents_full(key_path, (const char *)other, sizeof(other),
					       G_FILE_SET_CONTENTS_NONE, 0600, NULL));
	refused = cs_vault_open(f->dir, &error);
	g_assert_null(refused);
	g_assert_error(error, CS_ERROR, CS_ERROR_INTERNAL);
	g_assert_nonnull(strstr(error->message, key_path));
}

/* A state directory from before check values whose key was replaced: the check value
 * written for it is proven by a sealed secret before anything else, and removed again when
 * the key does not open it; the right key restored is checked and accepted. */
static void
test_vault_check_value_proven_by_a_secret(Fixture *f, gconstpointer data)
{
	g_autofree char *key_path = g_build_filename(f->dir, "vault.key", NULL);
	g_autofree char *check_path = g_build_filename(f->dir, "vault.check", NULL);
	g_autofree char *good = NULL;
	g_autoptr(CsLedger) ledger = open_ledger(f, 1000);
	g_autoptr(CsVault) other = NULL;
	g_autoptr(CsVault) right = NULL;
	g_autoptr(GError) error = NULL;
	guint8 other_key[CS_VAULT_KEY_SIZE] = {0x42, 0x17};
	gsize len = 0;
	gint64 id = 0;

	g_assert_true(cs_ledger_begin(ledger, &error));
	g_assert_true(cs_ledger_seal_secret(ledger, "so_pin", NULL, (const guint8 *)"1234", 4, T0,
					    &id, &error));
	g_assert_true(cs_ledger_commit(ledger, &error));
	g_clear_pointer(&ledger, cs_ledger_free);
	g_assert_true(g_file_get_contents(key_path, &good, &len, NULL));

	/* As before check values existed, with the key replaced. */
	g_assert_no_errno(g_unlink(check_path));
	g_assert_no_errno(g_unlink(key_path));
	g_assert_true(g_file_set_contents_full(key_path, (const char *)other_key, sizeof(other_key),
					       G_FILE_SET_CONTENTS_NONE, 0600, NULL));
	other = cs_vault_open(f->dir, &error);
	g_assert_no_error(error);
	g_assert_true(cs_vault_check_value_is_new(other));
	ledger = cs_ledger_open(f->path, other, 1000, &error);
	g_assert_null(ledger);
	g_assert_error(error, CS_ERROR, CS_ERROR_INTERNAL);
	g_assert_true(g_str_has_prefix(error->message, key_path));
	g_assert_nonnull(strstr(error->message, "not the key"));
	g_assert_false(g_file_test(check_path, G_FILE_TEST_EXISTS));
	g_clear_error(&error);

	/* The right key back: proven, kept. */
	g_assert_no_errno(g_unlink(key_path));
	g_assert_true(g_file_set_contents_full(key_path, good, (gssize)len,
					       G_FILE_SET_CONTENTS_NONE, 0600, NULL));
	right = cs_vault_open(f->dir, &error);
	g_assert_no_error(error);
	ledger = cs_ledger_open(f->path, right, 1000, &error);
	g_assert_no_error(error);
	g_assert_nonnull(ledger);
	g_assert_true(g_file_test(check_path, G_FILE_TEST_IS_REGULAR));
}

static void
test_vault_key_perms_refused(Fixture *f, gconstpointer data)
{
	g_autofree char *key_path = g_build_filename(f->dir, "vault.key", NULL);
	const int modes[] = {0640, 0604, 0660, 0601};
	FileSnapshot snap = {0};

	for (guint i = 0; i < G_N_ELEMENTS(modes); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(CsVault) vault = NULL;
		g_autofree char *mode = g_strdup_printf("%04o", modes[i]);

		g_assert_no_errno(chmod(key_path, modes[i]));
		snapshot_take(&snap, key_path);
		vault = cs_vault_open(f->dir, &error);
		g_assert_null(vault);
		g_assert_error(error, CS_ERROR, CS_ERROR_INTERNAL);
		g_assert_nonnull(strstr(error->message, key_path));
		g_assert_nonnull(strstr(error->message, mode));
		snapshot_assert_unchanged(&snap, key_path);
	}
	g_assert_no_errno(chmod(key_path, 0600));
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(CsVault) vault = cs_vault_open(f->dir, &error);

		g_assert_no_error(error);
		g_assert_nonnull(vault);
	}
}

static void
test_vault_key_wrong_size_refused(Fixture *f, gconstpointer data)
{
	g_autofree char *key_path = g_build_filename(f->dir, "vault.key", NULL);
	const gsize sizes[] = {0, 31, 33};
	FileSnapshot snap = {0};

	for (guint i = 0; i < G_N_ELEMENTS(sizes); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(CsVault) vault = NULL;
		g_autofree char *content = g_strnfill(sizes[i], 'k');

		/* Unlinked first: GLib 2.74 does not truncate an existing file to length 0. */
		g_assert_no_errno(g_unlink(key_path));
		g_assert_true(g_file_set_contents_full(key_path, content, sizes[i],
						       G_FILE_SET_CONTENTS_NONE, 0600, NULL));
		g_assert_true(g_file_test(key_path, G_FILE_TEST_EXISTS));
		snapshot_take(&snap, key_path);
		g_assert_cmpuint(g_bytes_get_size(snap.contents), ==, sizes[i]);
		vault = cs_vault_open(f->dir, &error);
		g_assert_null(vault);
		g_assert_error(error, CS_ERROR, CS_ERROR_INTERNAL);
		g_assert_nonnull(strstr(error->message, "wrong size"));
		snapshot_assert_unchanged(&snap, key_path);
	}
}

static void
test_vault_keyed_hash(Fixture *f, gconstpointer data)
{
	guint8 k1[CS_VAULT_KEY_SIZE];
	guint8 k2[CS_VAULT_KEY_SIZE];
	guint8 k3[CS_VAULT_KEY_SIZE];
	guint8 mac[32];
	unsigned int mac_len = 0;
	g_autofree char *expected = NULL;
	g_autofree char *hash = NULL;
	g_autofree char *other_label = NULL;
	g_autofree char *other_dir = NULL;
	g_autofree char *other_vault_hash = NULL;
	g_autoptr(CsVault) other = NULL;
	g_autoptr(GError) error = NULL;

	cs_vault_derive_key(f->vault, "sms-code", k1);
	cs_vault_derive_key(f->vault, "sms-code", k2);
	cs_vault_derive_key(f->vault, "auth-code", k3);
	g_assert_cmpmem(k1, sizeof(k1), k2, sizeof(k2));
	g_assert_true(memcmp(k1, k3, sizeof(k1)) != 0);

	/* HMAC-SHA256 under the derived key, lowercase hex — computed independently here. */
	HMAC(EVP_sha256(), k1, sizeof(k1), (const guint8 *)"13800000000:482913", 18, mac, &mac_len);
	g_assert_cmpuint(mac_len, ==, 32);
	{
		GString *hex = g_string_new(NULL);

		for (guint i = 0; i < mac_len; i++)
			g_string_append_printf(hex, "%02x", mac[i]);
		expected = g_string_free(hex, FALSE);
	}
	hash = cs_vault_keyed_hash(f->vault, "sms-code", "13800000000:482913");
	g_assert_cmpstr(hash, ==, expected);
	other_label = cs_vault_keyed_hash(f->vault, "auth-code", "13800000000:482913");
	g_assert_cmpstr(other_label, !=, hash);

	/* Another vault key, another hash. */
	other_dir = g_build_filename(f->dir, "other", NULL);
	g_assert_no_errno(g_mkdir(other_dir, 0700));
	other = cs_vault_open(other_dir, &error);
	g_assert_no_error(error);
	other_vault_hash = cs_vault_keyed_hash(other, "sms-code", "13800000000:482913");
	g_assert_cmpstr(other_vault_hash, !=, hash);
}

/* ---- chain ---------------------------------------------------------------------------- */

static void
test_chain_canonical_bytes(Fixture *f, gconstpointer data)
{
	g_autofree char *c1 = NULL;
	g_autofree char *c2 = NULL;

	/* Byte for byte what Python's json.dumps(sort_keys, (",", ":"), ensure_ascii=False)
	 * gives for the same event. */
	c1 = cs_ledger_event_canonical(7, 1700000000000000, "CS20231114000001", "transition",
				       "draft", NULL, "uid:1000", "{\"note\":\"中文 \\\"q\\\"\"}");
	g_assert_cmpstr(c1, ==,
			"{\"actor\":\"uid:1000\",\"data\":{\"note\":\"中文 \\\"q\\\"\"},"
			"\"from\":\"draft\",\"kind\":\"transition\","
			"\"order_id\":\"CS20231114000001\",\"seq\":7,\"time\":1700000000000000,"
			"\"to\":null}");
	c2 = cs_ledger_event_canonical(1, 0, NULL, "recovered", NULL, NULL, "system", NULL);
	g_assert_cmpstr(c2, ==,
			"{\"actor\":\"system\",\"data\":{},\"from\":null,\"kind\":\"recovered\","
			"\"order_id\":null,\"seq\":1,\"time\":0,\"to\":null}");
}

static void
test_chain_verifies(Fixture *f, gconstpointer data)
{
	g_autoptr(CsLedger) ledger = open_ledger(f, 1000);
	g_autofree char *id = NULL;
	g_autoptr(GPtrArray) events = NULL;
	g_autoptr(GError) error = NULL;
	guint8 prev[32] = {0};
	sqlite3 *db;

	g_assert_cmpint(cs_ledger_last_seq(ledger), ==, 0);
	assert_verifies(ledger, 0);
	id = append_events(ledger, 5);
	assert_verifies(ledger, 5);

	/* Each stored hash is SHA-256(previous ‖ canonical), recomputed here from the rows. */
	db = cs_ledger_get_db(ledger);
	events = cs_ledger_order_events(ledger, id, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(events->len, ==, 5);
	for (guint i = 0; i < events->len; i++) {
		CsEventRow *e = g_ptr_array_index(events, i);
		g_autofree char *canonical = cs_ledger_event_canonical(
		    e->seq, e->time, id, e->kind, e->from, e->to, e->actor, e->data);
		g_autofree char *sql = g_strdup_printf(
		    "SELECT hash FROM events WHERE seq = %" G_GINT64_FORMAT, e->seq);
		g_autoptr(GBytes) stored = raw_blob(db, sql);
		guint8 hash[32];

		g_assert_cmpint(e->seq, ==, i + 1);
		chain_step(prev, canonical, hash);
		g_assert_cmpmem(g_bytes_get_data(stored, NULL), g_bytes_get_size(stored), hash, 32);
		memcpy(prev, hash, 32);
	}

	/* After closing and reopening, the chain continues where it was. */
	g_clear_pointer(&ledger, cs_ledger_free);
	ledger = open_ledger(f, 1000);
	g_assert_cmpint(cs_ledger_last_seq(ledger), ==, 5);
	g_free(append_events(ledger, 2));
	g_assert_cmpint(cs_ledger_last_seq(ledger), ==, 7);
	assert_verifies(ledger, 7);
}

static void
test_chain_data_stored_canonical(Fixture *f, gconstpointer data)
{
	g_autoptr(CsLedger) ledger = open_ledger(f, 1000);
	g_autoptr(GVariant) event_data = NULL;
	g_autoptr(GPtrArray) events = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *id = NULL;
	CsEventRow *e;

	event_data = g_variant_ref_sink(g_variant_new_parsed(
	    "{'b': <'x'>, 'a': <int32 1>, '名': <{'z': <true>, 'y': <@as []>}>}"));
	g_assert_true(cs_ledger_begin(ledger, &error));
	id = insert_order(ledger, "draft", NULL, T0);
	g_assert_true(cs_ledger_append_event(ledger, id, "created", NULL, "draft", "uid:1000",
					     event_data, T0, NULL, &error));
	g_assert_true(cs_ledger_append_event(ledger, id, "updated", "draft", "draft", "uid:1000",
					     NULL, T0, NULL, &error));
	g_assert_true(cs_ledger_commit(ledger, &error));
	g_assert_no_error(error);

	events = cs_ledger_order_events(ledger, id, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(events->len, ==, 2);
	e = g_ptr_array_index(events, 0);
	g_assert_cmpstr(e->data, ==, "{\"a\":1,\"b\":\"x\",\"名\":{\"y\":[],\"z\":true}}");
	g_assert_null(e->from);
	g_assert_cmpstr(e->to, ==, "draft");
	g_assert_cmpstr(e->kind, ==, "created");
	g_assert_cmpstr(e->actor, ==, "uid:1000");
	g_assert_cmpint(e->time, ==, T0);
	e = g_ptr_array_index(events, 1);
	g_assert_cmpstr(e->data, ==, "{}");
	g_assert_cmpstr(e->from, ==, "draft");

	/* Event data is an object or nothing. */
	g_assert_true(cs_ledger_begin(ledger, &error));
	{
		g_autoptr(GVariant) not_a_dict = g_variant_ref_sink(g_variant_new_string("x"));

		g_assert_false(cs_ledger_append_event(ledger, id, "updated", NULL, NULL, "uid:1000",
						      not_a_dict, T0, NULL, &error));
		g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	}
	cs_ledger_rollback(ledger);
}

static void
test_chain_python_auditor_agrees(Fixture *f, gconstpointer data)
{
	const char *python = "/usr/bin/python3";
	/* An auditor's recomputation, written only from docs/architecture.md §3.5. */
	const char *script =
	    "import json, sqlite3, hashlib, sys\n"
	    "db = sqlite3.connect(sys.argv[1])\n"
	    "prev = bytes(32)\n"
	    "n = 0\n"
	    "for seq, time, oid, kind, f, t, actor, data, h in db.execute(\n"
	    "        'SELECT seq, time, order_id, kind, from_state, to_state, actor, data, hash'\n"
	    "        ' FROM events ORDER BY seq'):\n"
	    "    obj = {'seq': seq, 'time': time, 'order_id': oid, 'kind': kind, 'from': f,\n"
	    "           'to': t, 'actor': actor, 'data': json.loads(data)}\n"
	    "    c = json.dumps(obj, sort_keys=True, separators=(',', ':'),\n"
	    "                   ensure_ascii=False).encode('utf-8')\n"
	    "    prev = hashlib.sha256(prev + c).digest()\n"
	    "    if prev != h:\n"
	    "        print('bad', seq); sys.exit(1)\n"
	    "    n += 1\n"
	    "print('ok', n)\n";
	g_autoptr(CsLedger) ledger = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *out = NULL;
	g_autofree char *id = NULL;
	g_autoptr(GVariant) awkward = NULL;
	int status = 0;

	if (!g_file_test(python, G_FILE_TEST_IS_EXECUTABLE)) {
		g_test_skip("no /usr/bin/python3");
		return;
	}
	ledger = open_ledger(f, 1000);
	id = append_events(ledger, 3);
	awkward = g_variant_ref_sink(g_variant_new_parsed(
	    "{'名称': <'示例 \"公司\"\\n'>, 'n': <int64 -9007199254740993>, 'ok': <false>,"
	    " 'list': <[<'a'>, <@a{sv} {}>]>, 'ctl': <'\\u0001\\u001f'>}"));
	g_assert_true(cs_ledger_begin(ledger, &error));
	g_assert_true(cs_ledger_append_event(ledger, id, "updated", "draft", "draft",
					     "office:审核员", awkward, T0 + 99, NULL, &error));
	g_assert_true(cs_ledger_append_event(ledger, NULL, "recovered", NULL, NULL, "system", NULL,
					     T0 + 100, NULL, &error));
	g_assert_true(cs_ledger_commit(ledger, &error));
	g_assert_no_error(error);
	g_clear_pointer(&ledger, cs_ledger_free);

	{
		const char *argv[] = {python, "-c", script, f->path, NULL};

		g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
					   &out, NULL, &status, &error));
		g_assert_no_error(error);
	}
	g_assert_cmpstr(out, ==, "ok 5\n");
	g_assert_true(g_spawn_check_wait_status(status, NULL));
}

static void
test_chain_rollback_restores_head(Fixture *f, gconstpointer data)
{
	g_autoptr(CsLedger) ledger = open_ledger(f, 2);
	g_autoptr(GError) error = NULL;
	g_autofree char *id = append_events(ledger, 3);
	gint64 seq = 0;

	g_assert_true(cs_ledger_begin(ledger, &error));
	g_assert_true(cs_ledger_append_event(ledger, id, "transition", "draft", "review",
					     "uid:1000", NULL, T0, &seq, &error));
	g_assert_cmpint(seq, ==, 4);
	g_assert_true(cs_ledger_append_event(ledger, id, "transition", "review", "draft",
					     "uid:1000", NULL, T0, &seq, &error));
	g_assert_cmpint(seq, ==, 5);
	cs_ledger_rollback(ledger);
	g_assert_cmpint(cs_ledger_last_seq(ledger), ==, 3);
	g_assert_cmpint(cs_ledger_last_checkpoint(ledger), ==, 2);

	g_assert_true(cs_ledger_begin(ledger, &error));
	g_assert_true(cs_ledger_append_event(ledger, id, "transition", "draft", "review",
					     "uid:1000", NULL, T0, &seq, &error));
	g_assert_true(cs_ledger_commit(ledger, &error));
	g_assert_no_error(error);
	g_assert_cmpint(seq, ==, 4);
	assert_verifies(ledger, 4);
	g_assert_cmpint(cs_ledger_last_checkpoint(ledger), ==, 4);
}

static void
test_chain_other_writer_noticed(Fixture *f, gconstpointer data)
{
	g_autoptr(CsLedger) a = open_ledger(f, 1000);
	g_autoptr(CsLedger) b = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *id_a = append_events(a, 1);
	g_autofree char *id_b = NULL;
	g_autofree char *id_a2 = NULL;

	/* A second connection appends; the first must chain onto that, not its stale head. */
	b = open_ledger(f, 1000);
	id_b = append_events(b, 2);
	g_assert_cmpint(cs_ledger_last_seq(b), ==, 3);
	id_a2 = append_events(a, 1);
	g_assert_cmpint(cs_ledger_last_seq(a), ==, 4);
	assert_verifies(a, 4);
	assert_verifies(b, 4);
}

/* ---- tampering ------------------------------------------------------------------------ */

static void
test_tamper_data_changed(Fixture *f, gconstpointer data)
{
	g_autoptr(CsLedger) ledger = open_ledger(f, 1000);
	g_autofree char *id = append_events(ledger, 5);

	assert_verifies(ledger, 5);
	raw_exec_file(f->path, "DROP TRIGGER events_no_update;"
			       "UPDATE events SET data = '{\"step\":99}' WHERE seq = 3;");
	assert_verify_names(ledger, 1, 3, "hash mismatch");
}

static void
test_tamper_field_changed(Fixture *f, gconstpointer data)
{
	const char *edits[] = {
	    "UPDATE events SET actor = 'uid:0' WHERE seq = 2",
	    "UPDATE events SET time = time + 1 WHERE seq = 2",
	    "UPDATE events SET to_state = 'done' WHERE seq = 2",
	    "UPDATE events SET from_state = NULL WHERE seq = 2",
	    /* Same bytes, stored as a blob: only the type check sees it. */
	    "UPDATE events SET data = CAST(data AS BLOB) WHERE seq = 2",
	    "UPDATE events SET hash = zeroblob(32) WHERE seq = 2",
	};

	for (guint i = 0; i < G_N_ELEMENTS(edits); i++) {
		g_autoptr(CsLedger) ledger = NULL;
		g_autofree char *id = NULL;
		g_autofree char *sql = NULL;

		g_unlink(f->path);
		ledger = open_ledger(f, 1000);
		id = append_events(ledger, 4);
		sql = g_strdup_printf("DROP TRIGGER events_no_update; %s;", edits[i]);
		raw_exec_file(f->path, sql);
		g_test_message("edit: %s", edits[i]);
		{
			g_autoptr(GError) error = NULL;
			gint64 bad = 0;

			g_assert_false(cs_ledger_verify(ledger, 1, &bad, NULL, &error));
			g_assert_cmpint(bad, ==, 2);
			g_assert_true(g_str_has_prefix(error->message, "ledger event 2: "));
		}
	}
}

static void
test_tamper_event_deleted(Fixture *f, gconstpointer data)
{
	g_autoptr(CsLedger) ledger = open_ledger(f, 1000);
	g_autofree char *id = append_events(ledger, 5);

	raw_exec_file(f->path, "DROP TRIGGER events_no_delete; DELETE FROM events WHERE seq = 3;");
	assert_verify_names(ledger, 1, 3, "sequence gap");
}

static void
test_tamper_rechained_caught_by_checkpoint(Fixture *f, gconstpointer data)
{
	g_autoptr(CsLedger) ledger = open_ledger(f, 2);
	g_autofree char *id = append_events(ledger, 6);
	sqlite3 *db;

	/* A forger edits event 3 and recomputes every later hash: the chain alone is
	 * consistent again, but checkpoint 4 still holds the original hash. */
	db = raw_open(f->path);
	raw_exec(db, "DROP TRIGGER events_no_update;"
		     "UPDATE events SET data = '{\"step\":42}' WHERE seq = 3;");
	rechain_from(db, 3);
	sqlite3_close(db);
	assert_verify_names(ledger, 1, 4, "does not match its checkpoint");
}

/* ---- append-only ---------------------------------------------------------------------- */

static void
assert_refused(sqlite3 *db, const char *sql, const char *message)
{
	/* & 0xff: the ledger's connection reports extended codes (SQLITE_CONSTRAINT_TRIGGER). */
	g_assert_cmpint(sqlite3_exec(db, sql, NULL, NULL, NULL) & 0xff, ==, SQLITE_CONSTRAINT);
	g_assert_cmpstr(sqlite3_errmsg(db), ==, message);
}

static void
test_append_only_update_refused(Fixture *f, gconstpointer data)
{
	g_autoptr(CsLedger) ledger = open_ledger(f, 2);
	g_autofree char *id = append_events(ledger, 3);
	sqlite3 *db = cs_ledger_get_db(ledger);

	assert_refused(db, "UPDATE events SET kind = 'forged' WHERE seq = 1",
		       "events are append-only");
	assert_refused(db, "UPDATE events SET hash = zeroblob(32)", "events are append-only");
	assert_refused(db, "UPDATE checkpoints SET hash = zeroblob(32)",
		       "checkpoints are append-only");
	g_assert_cmpint(raw_int(db, "SELECT count(*) FROM events WHERE kind = 'forged'"), ==, 0);
	assert_verifies(ledger, 3);
}

static void
test_append_only_delete_refused(Fixture *f, gconstpointer data)
{
	g_autoptr(CsLedger) ledger = open_ledger(f, 2);
	g_autofree char *id = append_events(ledger, 3);
	g_autoptr(GError) error = NULL;
	sqlite3 *db = cs_ledger_get_db(ledger);

	g_assert_true(cs_ledger_begin(ledger, &error));
	g_assert_true(
	    cs_ledger_seal_secret(ledger, "so_pin", id, (const guint8 *)"1", 1, T0, NULL, &error));
	g_assert_true(cs_ledger_commit(ledger, &error));
	g_assert_no_error(error);

	assert_refused(db, "DELETE FROM events WHERE seq = 3", "events are append-only");
	assert_refused(db, "DELETE FROM checkpoints", "checkpoints are append-only");
	assert_refused(db, "DELETE FROM secrets", "secrets are wiped, not deleted");
	g_assert_cmpint(raw_int(db, "SELECT count(*) FROM events"), ==, 3);
	g_assert_cmpint(raw_int(db, "SELECT count(*) FROM checkpoints"), ==, 1);
}

/* ---- migrations ----------------------------------------------------------------------- */

static gboolean
has_table(sqlite3 *db, const char *name)
{
	sqlite3_stmt *stmt = NULL;
	gboolean found;

	g_assert_cmpint(
	    sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_schema WHERE name = ?1", -1, &stmt, NULL),
	    ==, SQLITE_OK);
	sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
	found = sqlite3_step(stmt) == SQLITE_ROW;
	sqlite3_finalize(stmt);
	return found;
}

static void
test_migrate_from_empty(Fixture *f, gconstpointer data)
{
	g_autoptr(CsLedger) ledger = open_ledger(f, 1000);
	const char *tables[] = {"orders",
				"events",
				"checkpoints",
				"secrets",
				"subjects",
				"certificates",
				"crl_numbers",
				"certificates_no_delete",
				"certificates_only_revoke",
				"events_no_update",
				"events_no_delete",
				"checkpoints_no_update",
				"checkpoints_no_delete",
				"events_order_id"};
	sqlite3 *db = cs_ledger_get_db(ledger);
	struct stat st;

	g_assert_cmpint(cs_ledger_get_schema_version(ledger), ==, CS_LEDGER_SCHEMA_VERSION);
	g_assert_null(cs_ledger_get_backup_path(ledger)); /* nothing to back up */
	g_assert_cmpint(raw_int(db, "PRAGMA user_version"), ==, CS_LEDGER_SCHEMA_VERSION);
	g_assert_cmpint(raw_int(db, "PRAGMA application_id"), ==, CS_LEDGER_APPLICATION_ID);
	g_assert_cmpint(raw_int(db, "PRAGMA foreign_keys"), ==, 1);
	g_assert_cmpint(raw_int(db, "PRAGMA synchronous"), ==, 2); /* FULL */
	for (guint i = 0; i < G_N_ELEMENTS(tables); i++)
		g_assert_true(has_table(db, tables[i]));
	{
		sqlite3_stmt *stmt = NULL;

		g_assert_cmpint(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, NULL), ==,
				SQLITE_OK);
		g_assert_cmpint(sqlite3_step(stmt), ==, SQLITE_ROW);
		g_assert_cmpstr((const char *)sqlite3_column_text(stmt, 0), ==, "wal");
		sqlite3_finalize(stmt);
	}
	/* The ledger holds personal data: private like the vault key. */
	g_assert_no_errno(stat(f->path, &st));
	g_assert_cmpint(st.st_mode & 07777, ==, 0600);
	/* Closing folds the WAL back: one file (and the vault key and its check value) remain. */
	g_clear_pointer(&ledger, cs_ledger_free);
	g_assert_cmpuint(count_dir_entries(f->dir), ==, 3);
	ledger = open_ledger(f, 1000);
	g_assert_null(cs_ledger_get_backup_path(ledger)); /* current already: no backup */
}

static void
test_migrate_file_to_version(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	sqlite3 *db;

	g_assert_true(cs_ledger_migrate_file_to(f->path, 1, &error));
	g_assert_no_error(error);
	db = raw_open(f->path);
	g_assert_cmpint(raw_int(db, "PRAGMA user_version"), ==, 1);
	g_assert_cmpint(raw_int(db, "PRAGMA application_id"), ==, CS_LEDGER_APPLICATION_ID);
	g_assert_true(has_table(db, "events"));
	g_assert_false(has_table(db, "checkpoints"));
	sqlite3_close(db);

	g_assert_true(cs_ledger_migrate_file_to(f->path, 2, &error));
	g_assert_no_error(error);
	g_assert_cmpint(raw_int_file(f->path, "PRAGMA user_version"), ==, 2);
	g_assert_false(cs_ledger_migrate_file_to(f->path, 1, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_clear_error(&error);
	g_assert_false(cs_ledger_migrate_file_to(f->path, CS_LEDGER_SCHEMA_VERSION + 1, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
}

static void
check_migrated_fixture(Fixture *f, int old_version)
{
	g_autoptr(CsLedger) ledger = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(CsOrderRow) order = NULL;
	g_autoptr(GPtrArray) ids = NULL;
	g_autoptr(GPtrArray) events = NULL;
	g_autoptr(GVariant) identity = NULL;
	g_autoptr(GVariant) found = NULL;
	g_autoptr(GBytes) secret = NULL;
	g_autofree char *expected_backup = g_strdup_printf("%s.v%d.bak", f->path, old_version);
	g_autofree char *new_id = NULL;
	g_autofree char *integrity = NULL;
	const char *name = NULL;
	gint64 secret_id = 0;
	gint64 seq = 0;
	sqlite3 *backup;

	ledger = open_ledger(f, 1000);
	g_assert_cmpint(cs_ledger_get_schema_version(ledger), ==, CS_LEDGER_SCHEMA_VERSION);

	/* The backup is the old file, as it was. */
	g_assert_cmpstr(cs_ledger_get_backup_path(ledger), ==, expected_backup);
	g_assert_true(g_file_test(expected_backup, G_FILE_TEST_IS_REGULAR));
	backup = raw_open(expected_backup);
	g_assert_cmpint(raw_int(backup, "PRAGMA user_version"), ==, old_version);
	g_assert_cmpint(raw_int(backup, "SELECT count(*) FROM events"), ==, 6);
	g_assert_cmpint(has_table(backup, "subjects"), ==, old_version >= 3);
	g_assert_cmpint(has_table(backup, "certificates"), ==, old_version >= 4);
	g_assert_cmpint(has_table(backup, "tasks"), ==, old_version >= 5);
	g_assert_cmpint(has_table(backup, "materials"), ==, old_version >= 6);
	g_assert_cmpint(has_table(backup, "order_attrs"), ==, old_version >= 7);
	g_assert_false(has_table(backup, "query_codes"));
	integrity = raw_text(backup, "PRAGMA integrity_check");
	g_assert_cmpstr(integrity, ==, "ok");
	sqlite3_close(backup);

	/* Orders and events kept, the chain intact. */
	ids = cs_ledger_list_orders(ledger, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(ids->len, ==, 3);
	g_assert_cmpstr(g_ptr_array_index(ids, 0), ==, "CS20240301000001");
	g_assert_cmpstr(g_ptr_array_index(ids, 2), ==, "CS20240302000003");
	order = cs_ledger_load_order(ledger, "CS20240301000001", &error);
	g_assert_no_error(error);
	g_assert_cmpstr(order->state, ==, "review");
	g_assert_cmpstr(order->vendor, ==, "demo-a");
	g_assert_cmpuint(order->owner_uid, ==, 1000);
	g_assert_true(g_variant_lookup(order->fields, "org_name", "&s", &name));
	g_assert_cmpstr(name, ==, "示例科技有限公司");
	events = cs_ledger_order_events(ledger, "CS20240301000002", &error);
	g_assert_no_error(error);
	g_assert_cmpuint(events->len, ==, 2);
	g_assert_cmpstr(((CsEventRow *)g_ptr_array_index(events, 1))->data, ==,
			"{\"amount\":30000,\"channel\":\"sandbox\"}");
	g_assert_cmpint(cs_ledger_last_seq(ledger), ==, 6);
	g_assert_cmpint(cs_ledger_last_checkpoint(ledger), ==, old_version >= 2 ? 4 : 0);
	assert_verifies(ledger, 6);

	/* The new tables work, and the chain and the order numbers carry on. */
	identity = g_variant_ref_sink(g_variant_new_parsed("{'org_name': <'示例'>}"));
	g_assert_true(cs_ledger_begin(ledger, &error));
	new_id = insert_order(ledger, "draft", NULL, T0);
	g_assert_true(g_str_has_suffix(new_id, "000004"));
	g_assert_true(cs_ledger_append_event(ledger, new_id, "created", NULL, "draft", "uid:1",
					     NULL, T0, &seq, &error));
	g_assert_cmpint(seq, ==, 7);
	g_assert_true(
	    cs_ledger_record_subject(ledger, "org", "91350100M000100Y43", identity, T0, &error));
	g_assert_true(cs_ledger_seal_secret(ledger, "so_pin", new_id, (const guint8 *)"12345678", 8,
					    T0, &secret_id, &error));
	g_assert_true(cs_ledger_commit(ledger, &error));
	g_assert_no_error(error);
	found = cs_ledger_lookup_subject(ledger, "org", "91350100M000100Y43", &error);
	g_assert_no_error(error);
	g_assert_true(g_variant_equal(found, identity));
	secret = cs_ledger_open_secret(ledger, secret_id, &error);
	g_assert_no_error(error);
	g_assert_cmpmem(g_bytes_get_data(secret, NULL), g_bytes_get_size(secret), "12345678", 8);
	assert_verifies(ledger, 7);

	/* Opening again: already current, no second backup. */
	g_clear_pointer(&ledger, cs_ledger_free);
	ledger = open_ledger(f, 1000);
	g_assert_null(cs_ledger_get_backup_path(ledger));
	g_clear_pointer(&ledger, cs_ledger_free);
	/* key, check, ledger, backup; and the material files moved out of a v6 or v7 ledger */
	g_assert_cmpuint(count_dir_entries(f->dir), ==, old_version >= 6 ? 5 : 4);
}

static void
test_migrate_from_v1(Fixture *f, gconstpointer data)
{
	copy_fixture("ledger-v1.db", f->path);
	g_assert_cmpint(raw_int_file(f->path, "PRAGMA user_version"), ==, 1);
	check_migrated_fixture(f, 1);
}

static void
test_migrate_from_v2(Fixture *f, gconstpointer data)
{
	copy_fixture("ledger-v2.db", f->path);
	g_assert_cmpint(raw_int_file(f->path, "PRAGMA user_version"), ==, 2);
	check_migrated_fixture(f, 2);
}

static void
test_migrate_from_v3(Fixture *f, gconstpointer data)
{
	g_autoptr(CsLedger) ledger = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) subject = NULL;
	g_autoptr(GBytes) der = g_bytes_new_static("\x30\x03\x02\x01\x01", 5);
	g_autoptr(CsCertRow) loaded = NULL;
	CsCertRow row = {.serial = (char *)"0123456789ABCDEF0123456789ABCDEF",
			 .vendor = (char *)"demo-a",
			 .role = (char *)"subscriber",
			 .subject = (char *)"CN=x",
			 .subject_type = (char *)"org",
			 .id_number = (char *)"91350100M000100Y43",
			 .order_id = (char *)"CS20240301000001",
			 .not_before = 1,
			 .not_after = 2,
			 .der = der};
	sqlite3 *db;

	copy_fixture("ledger-v3.db", f->path);
	g_assert_cmpint(raw_int_file(f->path, "PRAGMA user_version"), ==, 3);
	check_migrated_fixture(f, 3);

	/* The v3 subject registry survived; the certificates table (schema 4) works and
	 * keeps its rules: a serial once, rows never deleted, only valid → revoked. */
	ledger = open_ledger(f, 1000);
	subject = cs_ledger_lookup_subject(ledger, "org", "91350100M000100Y43", &error);
	g_assert_no_error(error);
	g_assert_nonnull(subject);
	g_assert_true(cs_ledger_begin(ledger, &error));
	g_assert_true(cs_ledger_insert_certificate(ledger, &row, &error));
	g_assert_no_error(error);
	g_assert_false(cs_ledger_insert_certificate(ledger, &row, &error));
	g_assert_nonnull(strstr(error->message, "already used"));
	g_clear_error(&error);
	g_assert_true(cs_ledger_commit(ledger, &error));
	g_assert_true(cs_ledger_begin(ledger, &error));
	g_assert_true(cs_ledger_revoke_certificate(ledger, row.serial, "superseded", 3, &error));
	g_assert_false(cs_ledger_revoke_certificate(ledger, row.serial, "superseded", 4, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_WRONG_STATE);
	g_clear_error(&error);
	g_assert_true(cs_ledger_commit(ledger, &error));
	loaded = cs_ledger_load_certificate(ledger, row.serial, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(loaded->status, ==, "revoked");
	g_assert_cmpint(loaded->revoked_at, ==, 3);
	g_assert_cmpstr(loaded->reason, ==, "superseded");
	g_assert_cmpmem(g_bytes_get_data(loaded->der, NULL), g_bytes_get_size(loaded->der),
			"\x30\x03\x02\x01\x01", 5);
	db = cs_ledger_get_db(ledger);
	g_assert_cmpint(0xff & sqlite3_exec(db, "DELETE FROM certificates", NULL, NULL, NULL), ==,
			SQLITE_CONSTRAINT);
	g_assert_cmpint(
	    0xff & sqlite3_exec(db, "UPDATE certificates SET status = 'valid'", NULL, NULL, NULL),
	    ==, SQLITE_CONSTRAINT);
	g_assert_cmpint(
	    0xff & sqlite3_exec(db, "UPDATE certificates SET der = x'00'", NULL, NULL, NULL), ==,
	    SQLITE_CONSTRAINT);
	g_assert_cmpint(raw_int(db, "SELECT count(*) FROM certificates"), ==, 1);
}

static void
test_migrate_from_v4(Fixture *f, gconstpointer data)
{
	g_autoptr(CsLedger) ledger = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) subject = NULL;
	sqlite3 *db;

	copy_fixture("ledger-v4.db", f->path);
	g_assert_cmpint(raw_int_file(f->path, "PRAGMA user_version"), ==, 4);
	g_assert_cmpint(raw_int_file(f->path, "SELECT count(*) FROM sqlite_schema "
					      "WHERE name = 'certificates'"),
			==, 1);
	check_migrated_fixture(f, 4);

	/* What v4 had is still there; the office's tables (schema 5) arrived and work. */
	ledger = open_ledger(f, 1000);
	subject = cs_ledger_lookup_subject(ledger, "org", "91350100M000100Y43", &error);
	g_assert_no_error(error);
	g_assert_nonnull(subject);
	db = cs_ledger_get_db(ledger);
	for (guint i = 0; i < 4; i++) {
		const char *tables[] = {"tasks", "outbox", "sms_sends", "payments"};
		g_autofree char *q = g_strdup_printf(
		    "SELECT count(*) FROM sqlite_schema WHERE name = '%s'", tables[i]);
		g_assert_cmpint(raw_int(db, q), ==, 1);
	}
	g_assert_cmpint(0xff & sqlite3_exec(db,
					    "INSERT INTO tasks (service, payload, state, created, "
					    "updated) VALUES ('review', '{}', 'queued', 1, 1)",
					    NULL, NULL, NULL),
			==, SQLITE_OK);
	g_assert_cmpint(raw_int(db, "SELECT count(*) FROM certificates"), ==, 0);
}

static void
test_migrate_from_v5(Fixture *f, gconstpointer data)
{
	g_autoptr(CsLedger) ledger = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) list = NULL;
	g_autoptr(CsMaterialRow) loaded = NULL;
	g_autofree char *sha1 = NULL;
	g_autofree char *sha2 = NULL;
	CsMaterialRow row = {.order_id = (char *)"CS20240301000001",
			     .kind = (char *)"business_license",
			     .filename = (char *)"license.png",
			     .mime = (char *)"image/png",
			     .size = 5,
			     .created = 1,
			     .actor = (char *)"uid:1000"};
	sqlite3 *db;

	copy_fixture("ledger-v5.db", f->path);
	g_assert_cmpint(raw_int_file(f->path, "PRAGMA user_version"), ==, 5);
	g_assert_cmpint(raw_int_file(f->path, "SELECT count(*) FROM tasks"), ==, 1);
	check_migrated_fixture(f, 5);

	/* The office's v5 task survived; the materials table (schema 6) works: a re-upload
	 * adds a row and wins, and rows are neither edited nor deleted. */
	ledger = open_ledger(f, 1000);
	db = cs_ledger_get_db(ledger);
	g_assert_cmpint(raw_int(db, "SELECT count(*) FROM tasks WHERE service = 'review'"), ==, 1);
	list = cs_ledger_list_materials(ledger, row.order_id, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(list->len, ==, 0);
	g_clear_pointer(&list, g_ptr_array_unref);
	/* The bytes go to the material store first; the row names them by hash. */
	g_assert_true(
	    cs_blobs_put(cs_ledger_get_blobs(ledger), (const guint8 *)"first", 5, &sha1, &error));
	g_assert_true(cs_blobs_put(cs_ledger_get_blobs(ledger), (const guint8 *)"second upload", 13,
				   &sha2, &error));
	row.sha256 = (char *)"0000000000000000000000000000000000000000000000000000000000000000";
	g_assert_true(cs_ledger_begin(ledger, &error));
	g_assert_false(cs_ledger_insert_material(ledger, &row, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INTERNAL);
	g_assert_nonnull(strstr(error->message, "not in the material store"));
	g_clear_error(&error);
	row.sha256 = sha1;
	g_assert_true(cs_ledger_insert_material(ledger, &row, &error));
	row.sha256 = sha2;
	row.size = 13;
	row.filename = (char *)"license2.png";
	g_assert_true(cs_ledger_insert_material(ledger, &row, &error));
	g_assert_true(cs_ledger_commit(ledger, &error));
	g_assert_no_error(error);
	list = cs_ledger_list_materials(ledger, row.order_id, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(list->len, ==, 1);
	g_assert_cmpstr(((CsMaterialRow *)g_ptr_array_index(list, 0))->sha256, ==, sha2);
	g_assert_cmpint(((CsMaterialRow *)g_ptr_array_index(list, 0))->size, ==, 13);
	g_assert_null(((CsMaterialRow *)g_ptr_array_index(list, 0))->data);
	loaded = cs_ledger_load_material(ledger, row.order_id, "business_license", &error);
	g_assert_no_error(error);
	g_assert_cmpstr(loaded->filename, ==, "license2.png");
	g_assert_cmpmem(g_bytes_get_data(loaded->data, NULL), g_bytes_get_size(loaded->data),
			"second upload", 13);
	g_assert_null(cs_ledger_load_material(ledger, row.order_id, "seal_form", &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_assert_cmpint(raw_int(db, "SELECT count(*) FROM materials"), ==, 2);
	g_assert_cmpint(0xff & sqlite3_exec(db, "DELETE FROM materials", NULL, NULL, NULL), ==,
			SQLITE_CONSTRAINT);
	g_assert_cmpint(0xff & sqlite3_exec(db, "UPDATE materials SET size = 0", NULL, NULL, NULL),
			==, SQLITE_CONSTRAINT);
	/* Outside a transaction a write is refused. */
	g_assert_false(cs_ledger_insert_material(ledger, &row, &error));
	g_assert_nonnull(error);
}

/* Schema 7: order attributes (set, replaced, removed), one-time codes (a new one replaces
 * the open one), invoices (one per order, never edited), and what an order was paid. */
static void
test_migrate_from_v6(Fixture *f, gconstpointer data)
{
	g_autoptr(CsLedger) ledger = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GHashTable) attrs = NULL;
	g_autoptr(CsCodeRow) code = NULL;
	g_autoptr(GBytes) pdf = g_bytes_new_static("%PDF-1.4 invoice", 16);
	g_autoptr(GBytes) loaded = NULL;
	g_autofree char *number = NULL;
	const char *order = "CS20240301000001";
	guint64 paid = 1;
	gint64 count = -1;
	sqlite3 *db;

	copy_fixture("ledger-v6.db", f->path);
	g_assert_cmpint(raw_int_file(f->path, "PRAGMA user_version"), ==, 6);
	g_assert_cmpint(raw_int_file(f->path, "SELECT count(*) FROM materials"), ==, 1);
	check_migrated_fixture(f, 6);

	ledger = open_ledger(f, 1000);
	db = cs_ledger_get_db(ledger);
	g_assert_cmpint(raw_int(db, "SELECT count(*) FROM materials"), ==, 1);
	g_assert_true(cs_ledger_begin(ledger, &error));
	g_assert_true(cs_ledger_set_attr(ledger, order, "review_note", "first", 1, &error));
	g_assert_true(cs_ledger_set_attr(ledger, order, "review_note", "second", 2, &error));
	g_assert_true(cs_ledger_set_attr(ledger, order, "tracking_number", "SF1", 2, &error));
	g_assert_true(cs_ledger_set_attr(ledger, order, "tracking_number", NULL, 3, &error));
	g_assert_true(cs_ledger_insert_code(ledger, order, "sms", "h1", 10, 20, &error));
	g_assert_true(cs_ledger_insert_code(ledger, order, "sms", "h2", 11, 21, &error));
	g_assert_true(cs_ledger_insert_invoice(ledger, order, "CS0001", 30000, pdf, 5, &error));
	g_assert_true(cs_ledger_commit(ledger, &error));
	g_assert_no_error(error);

	attrs = cs_ledger_load_attrs(ledger, order, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(g_hash_table_size(attrs), ==, 1);
	g_assert_cmpstr(g_hash_table_lookup(attrs, "review_note"), ==, "second");
	code = cs_ledger_latest_code(ledger, order, "sms", &error);
	g_assert_no_error(error);
	g_assert_cmpstr(code->code_hash, ==, "h2");
	g_assert_cmpstr(code->state, ==, "open");
	g_assert_cmpint(code->expires, ==, 21);
	g_assert_cmpint(raw_int(db, "SELECT count(*) FROM codes WHERE state = 'replaced'"), ==, 1);
	g_assert_null(cs_ledger_latest_code(ledger, order, "other", &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_NOT_FOUND);
	g_clear_error(&error);

	loaded = cs_ledger_load_invoice(ledger, order, &number, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(number, ==, "CS0001");
	g_assert_true(g_bytes_equal(loaded, pdf));
	g_assert_true(cs_ledger_count_invoices(ledger, &count, &error));
	g_assert_cmpint(count, ==, 1);
	g_assert_null(cs_ledger_load_invoice(ledger, "CS20240301000002", NULL, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_assert_cmpint(
	    0xff & sqlite3_exec(db, "UPDATE invoices SET amount_fen = 1", NULL, NULL, NULL), ==,
	    SQLITE_CONSTRAINT);
	g_assert_cmpint(0xff & sqlite3_exec(db, "DELETE FROM invoices", NULL, NULL, NULL), ==,
			SQLITE_CONSTRAINT);
	/* A second invoice for the order is refused. */
	g_assert_true(cs_ledger_begin(ledger, &error));
	g_assert_false(cs_ledger_insert_invoice(ledger, order, "CS0002", 1, pdf, 6, &error));
	g_assert_nonnull(error);
	g_clear_error(&error);
	cs_ledger_rollback(ledger);
	g_assert_true(cs_ledger_order_paid(ledger, order, &paid, &error));
	g_assert_cmpuint(paid, ==, 0);
	/* Outside a transaction a write is refused. */
	g_assert_false(cs_ledger_set_attr(ledger, order, "x", "y", 1, &error));
	g_assert_nonnull(error);
}

/* Query codes (schema 10), for a subject rather than an order: the latest replaces the
 * open one, the counts behind the rate limits, writes only inside a transaction. */
static void
test_query_codes(Fixture *f, gconstpointer data)
{
	g_autoptr(CsLedger) ledger = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(CsCodeRow) query = NULL;
	gint64 count = -1, latest = -1;
	sqlite3 *db;

	ledger = open_ledger(f, 1000);
	db = cs_ledger_get_db(ledger);
	g_assert_null(cs_ledger_latest_query_code(ledger, "org", "91350100M000100Y43", &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_assert_true(cs_ledger_begin(ledger, &error));
	g_assert_true(cs_ledger_insert_query_code(ledger, "org", "91350100M000100Y43",
						  "13800138000", 1000, "q1", 10, 20, &error));
	g_assert_true(cs_ledger_insert_query_code(ledger, "org", "91350100M000100Y43",
						  "13800138000", 1001, "q2", 30, 40, &error));
	g_assert_true(cs_ledger_insert_query_code(ledger, "person", "11010519491231002X",
						  "13900139000", 1000, "q3", 50, 60, &error));
	g_assert_true(cs_ledger_commit(ledger, &error));
	g_assert_no_error(error);
	query = cs_ledger_latest_query_code(ledger, "org", "91350100M000100Y43", &error);
	g_assert_no_error(error);
	g_assert_cmpstr(query->code_hash, ==, "q2");
	g_assert_cmpstr(query->phone, ==, "13800138000");
	g_assert_cmpuint(query->caller_uid, ==, 1001);
	g_assert_cmpstr(query->state, ==, "open");
	g_assert_cmpint(raw_int(db, "SELECT count(*) FROM query_codes WHERE state = 'replaced'"),
			==, 1);
	g_assert_true(
	    cs_ledger_count_query_codes(ledger, 1000, NULL, NULL, 0, &count, &latest, &error));
	g_assert_cmpint(count, ==, 2);
	g_assert_cmpint(latest, ==, 50);
	g_assert_true(cs_ledger_count_query_codes(ledger, -1, "org", "91350100M000100Y43", 10,
						  &count, NULL, &error));
	g_assert_cmpint(count, ==, 1); /* created after 10 */
	g_assert_true(cs_ledger_begin(ledger, &error));
	g_assert_true(cs_ledger_update_query_code(ledger, query->id, 1, "used", &error));
	g_assert_true(cs_ledger_commit(ledger, &error));
	g_clear_pointer(&query, cs_code_row_free);
	query = cs_ledger_latest_query_code(ledger, "org", "91350100M000100Y43", &error);
	g_assert_cmpstr(query->state, ==, "used");
	g_assert_cmpint(query->tries, ==, 1);
	/* Outside a transaction a write is refused. */
	g_assert_false(cs_ledger_update_query_code(ledger, query->id, 2, "dead", &error));
	g_assert_nonnull(error);
}

static void
test_migrate_v4_failed_step_rolls_back(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(CsLedger) ledger = NULL;
	g_autofree char *expected = NULL;

	copy_fixture("ledger-v3.db", f->path);
	raw_exec_file(f->path, "CREATE TABLE crl_numbers (x)");
	ledger = cs_ledger_open(f->path, f->vault, 1000, &error);
	g_assert_null(ledger);
	expected = g_strdup_printf("%s: migrating to schema version 4: ", f->path);
	g_assert_true(g_str_has_prefix(error->message, expected));
	g_assert_cmpint(raw_int_file(f->path, "PRAGMA user_version"), ==, 3);
	g_assert_cmpint(raw_int_file(f->path, "SELECT count(*) FROM sqlite_schema "
					      "WHERE name = 'certificates'"),
			==, 0);
}

static void
test_migrate_backup_never_overwritten(Fixture *f, gconstpointer data)
{
	g_autofree char *first = g_strdup_printf("%s.v1.bak", f->path);
	g_autofree char *second = g_strdup_printf("%s.v1.bak.1", f->path);
	g_autofree char *contents = NULL;
	g_autoptr(CsLedger) ledger = NULL;

	copy_fixture("ledger-v1.db", f->path);
	g_assert_true(g_file_set_contents(first, "an older backup", -1, NULL));
	ledger = open_ledger(f, 1000);
	g_assert_cmpstr(cs_ledger_get_backup_path(ledger), ==, second);
	g_assert_cmpint(raw_int_file(second, "PRAGMA user_version"), ==, 1);
	g_assert_true(g_file_get_contents(first, &contents, NULL, NULL));
	g_assert_cmpstr(contents, ==, "an older backup");
}

static void
test_migrate_failed_step_rolls_back(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(CsLedger) ledger = NULL;
	g_autofree char *expected = NULL;

	/* Something in the v2 file already uses the name step 3 needs: step 3 fails, and
	 * must leave neither half a schema nor a version that claims it. */
	copy_fixture("ledger-v2.db", f->path);
	raw_exec_file(f->path, "CREATE TABLE subjects (x)");
	ledger = cs_ledger_open(f->path, f->vault, 1000, &error);
	g_assert_null(ledger);
	g_assert_error(error, CS_ERROR, CS_ERROR_INTERNAL);
	expected = g_strdup_printf("%s: migrating to schema version 3: ", f->path);
	g_assert_true(g_str_has_prefix(error->message, expected));

	g_assert_true(g_file_test(f->path, G_FILE_TEST_IS_REGULAR));
	g_assert_cmpint(raw_int_file(f->path, "PRAGMA user_version"), ==, 2);
	g_assert_cmpint(raw_int_file(f->path, "SELECT count(*) FROM sqlite_schema "
					      "WHERE name IN ('events_order_id', 'orders_state')"),
			==, 0);
	g_assert_cmpint(raw_int_file(f->path, "SELECT count(*) FROM events"), ==, 6);
}

static void
test_migrate_newer_refused(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(CsLedger) ledger = NULL;
	g_autofree char *expected = NULL;
	FileSnapshot snap = {0};

	g_assert_true(cs_ledger_migrate_file_to(f->path, CS_LEDGER_SCHEMA_VERSION, &error));
	raw_exec_file(f->path, "PRAGMA user_version = " G_STRINGIFY(CS_LEDGER_SCHEMA_VERSION_NEXT));
	snapshot_take(&snap, f->path);
	ledger = cs_ledger_open(f->path, f->vault, 1000, &error);
	g_assert_null(ledger);
	g_assert_error(error, CS_ERROR, CS_ERROR_INTERNAL);
	expected = g_strdup_printf("%s: schema version %d is newer than this certseald knows (%d)",
				   f->path, CS_LEDGER_SCHEMA_VERSION + 1, CS_LEDGER_SCHEMA_VERSION);
	g_assert_cmpstr(error->message, ==, expected);
	snapshot_assert_unchanged(&snap, f->path);
}

/* ---- refusals at open ----------------------------------------------------------------- */

static void
test_open_not_sqlite_refused(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(CsLedger) ledger = NULL;
	g_autofree char *expected = NULL;
	g_autofree char *junk = g_strnfill(8192, 'j');
	FileSnapshot snap = {0};

	g_assert_true(g_file_set_contents(f->path, junk, -1, NULL));
	snapshot_take(&snap, f->path);
	ledger = cs_ledger_open(f->path, f->vault, 1000, &error);
	g_assert_null(ledger);
	g_assert_error(error, CS_ERROR, CS_ERROR_INTERNAL);
	expected = g_strdup_printf("%s is not a certseal ledger: file is not a database", f->path);
	g_assert_cmpstr(error->message, ==, expected);
	snapshot_assert_unchanged(&snap, f->path);
}

static void
test_open_foreign_sqlite_refused(Fixture *f, gconstpointer data)
{
	const char *setups[] = {
	    "CREATE TABLE moz_places (id INTEGER PRIMARY KEY)",
	    "PRAGMA application_id = 1234",
	    "PRAGMA user_version = 2; CREATE TABLE t (x)",
	};

	for (guint i = 0; i < G_N_ELEMENTS(setups); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(CsLedger) ledger = NULL;
		g_autofree char *expected = NULL;
		FileSnapshot snap = {0};

		g_unlink(f->path);
		raw_exec_file(f->path, setups[i]);
		snapshot_take(&snap, f->path);
		ledger = cs_ledger_open(f->path, f->vault, 1000, &error);
		g_assert_null(ledger);
		g_assert_error(error, CS_ERROR, CS_ERROR_INTERNAL);
		expected = g_strdup_printf("%s is not a certseal ledger", f->path);
		g_assert_true(g_str_has_prefix(error->message, expected));
		snapshot_assert_unchanged(&snap, f->path);
	}
}

static void
test_open_tampered_chain_refused(Fixture *f, gconstpointer data)
{
	g_autoptr(CsLedger) ledger = open_ledger(f, 1000);
	g_autoptr(GError) error = NULL;
	g_autofree char *id = append_events(ledger, 5);
	g_autofree char *expected = NULL;
	FileSnapshot snap = {0};

	g_clear_pointer(&ledger, cs_ledger_free);
	raw_exec_file(f->path, "DROP TRIGGER events_no_update;"
			       "UPDATE events SET kind = 'forged' WHERE seq = 4;");
	snapshot_take(&snap, f->path);
	/* Past the file system's timestamp granularity, so a write would show in the mtime. */
	g_usleep(20 * 1000);
	ledger = cs_ledger_open(f->path, f->vault, 1000, &error);
	g_assert_null(ledger);
	g_assert_error(error, CS_ERROR, CS_ERROR_INTERNAL);
	expected = g_strdup_printf("%s: chain verification failed: ledger event 4: hash mismatch",
				   f->path);
	g_assert_cmpstr(error->message, ==, expected);
	snapshot_assert_unchanged(&snap, f->path);
}

static void
test_open_verifies_from_last_checkpoint(Fixture *f, gconstpointer data)
{
	g_autoptr(CsLedger) ledger = open_ledger(f, 3);
	g_autoptr(GError) error = NULL;
	g_autofree char *id = append_events(ledger, 7); /* checkpoints at 3 and 6 */
	gint64 n = 0;

	g_clear_pointer(&ledger, cs_ledger_free);
	/* Behind the last checkpoint: not looked at when opening (that is the point of
	 * checkpoints), found by a full verification. */
	raw_exec_file(f->path, "DROP TRIGGER events_no_update;"
			       "UPDATE events SET actor = 'forged' WHERE seq = 2;");
	ledger = open_ledger(f, 3);
	assert_verify_names(ledger, 1, 2, "hash mismatch");
	g_assert_true(cs_ledger_verify(ledger, 4, NULL, &n, &error));
	g_assert_no_error(error);
	g_assert_cmpint(n, ==, 4); /* 4…7, starting from checkpoint 3 */
	g_assert_true(cs_ledger_verify(ledger, 7, NULL, &n, &error));
	g_assert_cmpint(n, ==, 1);
	/* No checkpoint at 4: from 5 means from the start, which finds event 2. */
	assert_verify_names(ledger, 5, 2, "hash mismatch");

	/* After the last checkpoint: refused at open. */
	g_clear_pointer(&ledger, cs_ledger_free);
	raw_exec_file(f->path, "UPDATE events SET actor = 'forged' WHERE seq = 7;");
	ledger = cs_ledger_open(f->path, f->vault, 3, &error);
	g_assert_null(ledger);
	g_assert_nonnull(strstr(error->message, "ledger event 7: hash mismatch"));
}

/* Schema 9: material bytes leave the database. The checked-in schema-7 ledger's two blob
 * rows become content-addressed files <dir>/materials/<2 hex>/<sha256>, read back
 * identical; the table keeps only the reference, and a new upload is stored the same way. */
static void
test_migrate_v7_materials_moved_out(Fixture *f, gconstpointer data)
{
	const char *pdf_sha = "e16fa5d9b51928755db85b917f0297babaf22c7a47e97d9212adab56e61ba04e";
	const char *png_sha = "02a3e298f1533f62558c58e4c70edcab9af5a50d62d925fd5390942020fb0fb8";
	g_autofree char *pdf_path = g_build_filename(f->dir, "materials", "e1", pdf_sha, NULL);
	g_autofree char *png_path = g_build_filename(f->dir, "materials", "02", png_sha, NULL);
	g_autoptr(CsLedger) ledger = NULL;
	g_autoptr(CsMaterialRow) pdf = NULL;
	g_autoptr(CsMaterialRow) png = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *content = NULL;
	gsize len = 0;
	sqlite3 *db;

	copy_fixture("ledger-v7.db", f->path);
	g_assert_cmpint(raw_int_file(f->path, "SELECT count(*) FROM materials"), ==, 2);
	ledger = open_ledger(f, 1000);
	db = cs_ledger_get_db(ledger);
	g_assert_cmpint(raw_int(db, "SELECT count(*) FROM pragma_table_info('materials') "
				    "WHERE name = 'data'"),
			==, 0);
	g_assert_cmpint(raw_int(db, "SELECT count(*) FROM materials"), ==, 2);
	/* The space the bytes took is given back, not only freed. */
	g_assert_cmpint(raw_int(db, "PRAGMA freelist_count"), ==, 0);
	g_assert_true(g_file_get_contents(pdf_path, &content, &len, NULL));
	g_assert_cmpmem(content, len, "%PDF-1.4", 8);
	g_assert_true(g_file_test(png_path, G_FILE_TEST_IS_REGULAR));

	pdf = cs_ledger_load_material(ledger, "CS20240301000001", "seal_form", &error);
	g_assert_no_error(error);
	g_assert_cmpstr(pdf->sha256, ==, pdf_sha);
	g_assert_cmpint(pdf->size, ==, 8);
	g_assert_cmpmem(g_bytes_get_data(pdf->data, NULL), g_bytes_get_size(pdf->data), "%PDF-1.4",
			8);
	png = cs_ledger_load_material(ledger, "CS20240301000001", "business_license", &error);
	g_assert_no_error(error);
	g_assert_cmpmem(g_bytes_get_data(png->data, NULL), g_bytes_get_size(png->data),
			"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR", 16);
	/* Still append-only, and the chain (with its material events) still verifies. */
	g_assert_cmpint(0xff & sqlite3_exec(db, "DELETE FROM materials", NULL, NULL, NULL), ==,
			SQLITE_CONSTRAINT);
	g_assert_cmpint(0xff & sqlite3_exec(db, "UPDATE materials SET size = 1", NULL, NULL, NULL),
			==, SQLITE_CONSTRAINT);
	assert_verifies(ledger, 6);

	/* A stored file whose bytes were changed is not served. */
	g_clear_pointer(&pdf, cs_material_row_free);
	g_assert_no_errno(g_chmod(pdf_path, 0600));
	g_assert_true(g_file_set_contents(pdf_path, "%PDF-1.5", 8, NULL));
	pdf = cs_ledger_load_material(ledger, "CS20240301000001", "seal_form", &error);
	g_assert_null(pdf);
	g_assert_error(error, CS_ERROR, CS_ERROR_INTERNAL);
	g_assert_nonnull(strstr(error->message, pdf_sha));
}

/* ---- keyed tamper evidence (schema 8) ---------------------------------------------------- */

/* The open refusal of @f's ledger, which must name @seq and @problem. */
static void
assert_open_refused(Fixture *f, guint checkpoint_interval, gint64 seq, const char *problem)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(CsLedger) ledger = cs_ledger_open(f->path, f->vault, checkpoint_interval, &error);
	g_autofree char *at = g_strdup_printf("ledger event %" G_GINT64_FORMAT ": ", seq);

	g_assert_null(ledger);
	g_assert_error(error, CS_ERROR, CS_ERROR_INTERNAL);
	if (strstr(error->message, at) == NULL || strstr(error->message, problem) == NULL)
		g_error("expected \"%s…%s\" in \"%s\"", at, problem, error->message);
}

typedef struct {
	gboolean done;
	gboolean ok;
	gint64 bad_seq;
	gint64 n_checked;
	GError *error;
} Verdict;

static void
on_verified(gboolean ok, gint64 bad_seq, gint64 n_checked, const GError *error, gpointer data)
{
	Verdict *v = data;

	v->done = TRUE;
	v->ok = ok;
	v->bad_seq = bad_seq;
	v->n_checked = n_checked;
	v->error = error != NULL ? g_error_copy(error) : NULL;
}

/* The background verification's verdict: TRUE, or FALSE with the event it names. */
static gboolean
verify_in_background(CsLedger *ledger, gint64 *bad_seq, gint64 *n_checked, GError **error)
{
	Verdict v = {0};

	cs_ledger_verify_in_background(ledger, NULL, on_verified, &v);
	while (!v.done)
		g_main_context_iteration(NULL, TRUE);
	if (bad_seq != NULL)
		*bad_seq = v.bad_seq;
	if (n_checked != NULL)
		*n_checked = v.n_checked;
	if (v.error != NULL)
		g_propagate_error(error, v.error);
	return v.ok;
}

static void
test_keyed_good_ledger_verifies(Fixture *f, gconstpointer data)
{
	g_autoptr(CsLedger) ledger = open_ledger(f, 3);
	g_autofree char *id = append_events(ledger, 7);
	g_autoptr(GError) error = NULL;
	gint64 bad = -1, n = 0;

	g_assert_cmpint(raw_int(cs_ledger_get_db(ledger), "SELECT count(*) FROM checkpoint_macs"),
			==, 2);
	g_assert_cmpint(raw_int(cs_ledger_get_db(ledger), "SELECT seq FROM chain_head"), ==, 7);
	g_assert_cmpint(raw_int(cs_ledger_get_db(ledger),
				"SELECT count(*) FROM events WHERE state_mac IS NULL"),
			==, 0);
	assert_verifies(ledger, 7);
	g_assert_true(verify_in_background(ledger, &bad, &n, &error));
	g_assert_no_error(error);
	g_assert_cmpint(n, ==, 7);
	g_clear_pointer(&ledger, cs_ledger_free);
	ledger = open_ledger(f, 3);
	assert_verifies(ledger, 7);
}

/* The last events deleted: the keyed head still says where the chain ended. */
static void
test_keyed_truncated_tail_caught(Fixture *f, gconstpointer data)
{
	g_autoptr(CsLedger) ledger = open_ledger(f, 1000);
	g_autofree char *id = append_events(ledger, 5);

	g_clear_pointer(&ledger, cs_ledger_free);
	raw_exec_file(f->path, "DROP TRIGGER events_no_delete; DELETE FROM events WHERE seq >= 4;");
	assert_open_refused(f, 1000, 4, "missing (the keyed chain head ends at 5)");
	/* Moving the head back by hand does not help: its MAC is keyed. */
	raw_exec_file(f->path, "UPDATE chain_head SET seq = 3, "
			       "hash = (SELECT hash FROM events WHERE seq = 3)");
	assert_open_refused(f, 1000, 3, "the chain head fails its keyed MAC");
	/* Nor does deleting it. */
	raw_exec_file(f->path, "DELETE FROM chain_head");
	assert_open_refused(f, 1000, 3, "the keyed chain head is missing");
}

/* An edited event with every later hash recomputed: the chain is consistent again, but the
 * keyed head (and checkpoints) hold the original. */
static void
test_keyed_rechained_caught(Fixture *f, gconstpointer data)
{
	g_autoptr(CsLedger) ledger = open_ledger(f, 1000);
	g_autofree char *id = append_events(ledger, 6);
	sqlite3 *db;

	g_clear_pointer(&ledger, cs_ledger_free);
	db = raw_open(f->path);
	raw_exec(db, "DROP TRIGGER events_no_update;"
		     "UPDATE events SET data = '{\"step\":42}' WHERE seq = 3;");
	rechain_from(db, 3);
	sqlite3_close(db);
	assert_open_refused(f, 1000, 6, "does not match the keyed chain head");
	/* The head made to match without the key: its MAC fails. */
	raw_exec_file(f->path,
		      "UPDATE chain_head SET hash = (SELECT hash FROM events WHERE seq = 6)");
	assert_open_refused(f, 1000, 6, "the chain head fails its keyed MAC");
}

/* A checkpoint rewritten with the rechained hash is refused by its keyed MAC. */
static void
test_keyed_checkpoint_forged_caught(Fixture *f, gconstpointer data)
{
	g_autoptr(CsLedger) ledger = open_ledger(f, 2);
	g_autofree char *id = append_events(ledger, 5);
	g_autoptr(GError) error = NULL;
	gint64 bad = 0;
	sqlite3 *db;

	g_clear_pointer(&ledger, cs_ledger_free);
	db = raw_open(f->path);
	raw_exec(db, "DROP TRIGGER events_no_update;"
		     "UPDATE events SET data = '{\"step\":42}' WHERE seq = 1;");
	rechain_from(db, 1);
	raw_exec(db, "DROP TRIGGER checkpoints_no_update; "
		     "UPDATE checkpoints SET hash = (SELECT hash FROM events e "
		     "WHERE e.seq = checkpoints.seq);"
		     "UPDATE chain_head SET hash = (SELECT hash FROM events WHERE seq = 5)");
	sqlite3_close(db);
	/* The last checkpoint (4) is where opening starts: its MAC is checked first. */
	assert_open_refused(f, 2, 4, "its checkpoint fails its keyed MAC");
	(void)bad;
	(void)error;
}

/* An event changed before the last checkpoint: opening (which starts at the checkpoint)
 * does not see it, the background verification does. */
static void
test_keyed_old_event_caught_in_background(Fixture *f, gconstpointer data)
{
	g_autoptr(CsLedger) ledger = open_ledger(f, 3);
	g_autofree char *id = append_events(ledger, 7);
	g_autoptr(GError) error = NULL;
	gint64 bad = 0, n = 0;

	g_clear_pointer(&ledger, cs_ledger_free);
	raw_exec_file(f->path, "DROP TRIGGER events_no_update;"
			       "UPDATE events SET actor = 'forged' WHERE seq = 2;");
	ledger = open_ledger(f, 3);
	g_assert_false(verify_in_background(ledger, &bad, &n, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INTERNAL);
	g_assert_cmpint(bad, ==, 2);
	g_assert_true(g_str_has_prefix(error->message, "ledger event 2: hash mismatch"));
}

/* The orders table changed directly: the row no longer matches its last event's keyed
 * state. After the last checkpoint: refused at open; before it: found by a full
 * verification and in the background. */
static void
test_keyed_order_row_changed_caught(Fixture *f, gconstpointer data)
{
	g_autoptr(CsLedger) ledger = open_ledger(f, 3);
	g_autofree char *id = append_events(ledger, 5); /* checkpoint at 3; events 1…5 */
	g_autofree char *sql = NULL;
	g_autoptr(GError) error = NULL;
	gint64 bad = 0;

	g_clear_pointer(&ledger, cs_ledger_free);
	sql = g_strdup_printf("UPDATE orders SET state = 'approved' WHERE id = '%s'", id);
	raw_exec_file(f->path, sql);
	assert_open_refused(f, 3, 5, "does not match its keyed state");
	g_free(sql);
	sql = g_strdup_printf("UPDATE orders SET state = 'draft', fields = "
			      "'{''org_name'': <''forged''>}' WHERE id = '%s'",
			      id);
	raw_exec_file(f->path, sql);
	assert_open_refused(f, 3, 5, "does not match its keyed state");

	/* Behind the checkpoint: a second order, untouched since, changed. */
	g_unlink(f->path);
	{
		g_autofree char *first = NULL;
		g_autofree char *second = NULL;

		ledger = open_ledger(f, 3);
		first = append_events(ledger, 3); /* events 1…3, checkpoint at 3 */
		second = append_events(ledger, 2);
		g_clear_pointer(&ledger, cs_ledger_free);
		g_free(sql);
		sql = g_strdup_printf("UPDATE orders SET owner_uid = 0 WHERE id = '%s'", first);
		raw_exec_file(f->path, sql);
		ledger = open_ledger(f, 3);
		assert_verify_names(ledger, 1, 3, "order");
		g_assert_false(verify_in_background(ledger, &bad, NULL, &error));
		g_assert_cmpint(bad, ==, 3);
		g_assert_nonnull(strstr(error->message, first));
	}
}

/* After a failed verification every write is refused, naming the event. */
static void
test_keyed_failed_ledger_refuses_writes(Fixture *f, gconstpointer data)
{
	g_autoptr(CsLedger) ledger = open_ledger(f, 1000);
	g_autofree char *id = append_events(ledger, 2);
	g_autoptr(GError) error = NULL;
	g_autoptr(CsOrderRow) order = NULL;

	cs_ledger_refuse_writes(ledger, 2);
	g_assert_cmpint(cs_ledger_get_failed_seq(ledger), ==, 2);
	g_assert_false(cs_ledger_begin(ledger, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_UNAVAILABLE);
	g_assert_true(g_str_has_prefix(error->message, "ledger failed verification at event 2"));
	/* Reading goes on. */
	order = cs_ledger_load_order(ledger, id, NULL);
	g_assert_nonnull(order);
}

/* A ledger from before keying (schema 7, checked in) is keyed by its migration, not
 * refused; from then on a changed order row is found. */
static void
test_migrate_from_v7_keyed(Fixture *f, gconstpointer data)
{
	g_autoptr(CsLedger) ledger = NULL;
	g_autoptr(GError) error = NULL;
	gint64 bad = 0, n = 0;
	sqlite3 *db;

	copy_fixture("ledger-v7.db", f->path);
	g_assert_cmpint(raw_int_file(f->path, "PRAGMA user_version"), ==, 7);
	ledger = open_ledger(f, 1000);
	db = cs_ledger_get_db(ledger);
	g_assert_cmpint(raw_int(db, "PRAGMA user_version"), ==, CS_LEDGER_SCHEMA_VERSION);
	g_assert_cmpint(raw_int(db, "SELECT seq FROM chain_head"), ==, 6);
	g_assert_cmpint(raw_int(db, "SELECT count(*) FROM checkpoint_macs"), ==, 1);
	g_assert_cmpint(raw_int(db, "SELECT count(*) FROM order_macs"), ==, 3);
	assert_verifies(ledger, 6);
	g_assert_true(verify_in_background(ledger, &bad, &n, &error));
	g_assert_cmpint(n, ==, 6);

	/* New events are keyed as they come. */
	{
		g_autofree char *id = append_events(ledger, 2);

		assert_verifies(ledger, 8);
	}
	g_clear_pointer(&ledger, cs_ledger_free);
	ledger = open_ledger(f, 1000);
	assert_verifies(ledger, 8);
	raw_exec(cs_ledger_get_db(ledger),
		 "UPDATE orders SET state = 'made' WHERE id = 'CS20240301000002'");
	assert_verify_names(ledger, 1, 4, "order CS20240301000002 does not match its keyed state");
}

/* ---- checkpoints ---------------------------------------------------------------------- */

static void
test_checkpoint_written_every_n(Fixture *f, gconstpointer data)
{
	g_autoptr(CsLedger) ledger = open_ledger(f, 3);
	g_autoptr(GError) error = NULL;
	g_autofree char *id1 = append_events(ledger, 4);
	g_autofree char *id2 = append_events(ledger, 6);
	sqlite3 *db = cs_ledger_get_db(ledger);

	g_assert_cmpint(cs_ledger_last_seq(ledger), ==, 10);
	g_assert_cmpint(raw_int(db, "SELECT count(*) FROM checkpoints"), ==, 3);
	g_assert_cmpint(raw_int(db, "SELECT group_concat(seq) = '3,6,9' FROM "
				    "(SELECT seq FROM checkpoints ORDER BY seq)"),
			==, 1);
	/* Each checkpoint holds its event's hash. */
	g_assert_cmpint(raw_int(db, "SELECT count(*) FROM checkpoints c JOIN events e "
				    "ON e.seq = c.seq AND e.hash = c.hash"),
			==, 3);
	g_assert_cmpint(cs_ledger_last_checkpoint(ledger), ==, 9);

	/* Written in the event's transaction: a rollback takes the checkpoint with it. */
	g_assert_true(cs_ledger_begin(ledger, &error));
	g_assert_true(cs_ledger_append_event(ledger, id1, "transition", NULL, NULL, "uid:1", NULL,
					     T0, NULL, &error));
	g_assert_true(cs_ledger_append_event(ledger, id1, "transition", NULL, NULL, "uid:1", NULL,
					     T0, NULL, &error));
	g_assert_no_error(error);
	g_assert_cmpint(cs_ledger_last_checkpoint(ledger), ==, 12);
	cs_ledger_rollback(ledger);
	g_assert_cmpint(cs_ledger_last_checkpoint(ledger), ==, 9);
	g_assert_cmpint(cs_ledger_last_seq(ledger), ==, 10);
	assert_verifies(ledger, 10);
}

/* ---- orders and transactions ---------------------------------------------------------- */

static void
test_orders_insert_load_update(Fixture *f, gconstpointer data)
{
	g_autoptr(CsLedger) ledger = open_ledger(f, 1000);
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) fields = NULL;
	g_autoptr(GVariant) fields2 = NULL;
	g_autoptr(GDateTime) local = NULL;
	g_autoptr(CsOrderRow) row = NULL;
	g_autoptr(CsOrderRow) missing = NULL;
	g_autoptr(GPtrArray) all = NULL;
	g_autoptr(GPtrArray) in_review = NULL;
	g_autofree char *day = NULL;
	g_autofree char *expected_id = NULL;
	g_autofree char *id1 = NULL;
	g_autofree char *id2 = NULL;

	fields = g_variant_ref_sink(g_variant_new_parsed(
	    "{'org_name': <'示例科技有限公司 \"引号\"'>, 'phone': <'13800000000'>,"
	    " 'note': <'line\\nbreak \\'quote\\' \\\\'>}"));
	g_assert_true(cs_ledger_begin(ledger, &error));
	id1 = insert_order(ledger, "draft", fields, T0);
	g_assert_true(cs_ledger_insert_order(ledger, "renew", "person", NULL, "draft", 1001, NULL,
					     T0 + 1, &id2, &error));
	record_change(ledger, id1);
	record_change(ledger, id2);
	g_assert_true(cs_ledger_commit(ledger, &error));
	g_assert_no_error(error);

	local = g_date_time_new_from_unix_local(T0 / G_USEC_PER_SEC);
	day = g_date_time_format(local, "%Y%m%d");
	expected_id = g_strdup_printf("CS%s000001", day);
	g_assert_cmpstr(id1, ==, expected_id);
	g_assert_cmpuint(strlen(id2), ==, 16);
	g_assert_true(g_str_has_suffix(id2, "000002"));

	row = cs_ledger_load_order(ledger, id1, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(row->id, ==, id1);
	g_assert_cmpstr(row->kind, ==, "new");
	g_assert_cmpstr(row->subject_type, ==, "org");
	g_assert_cmpstr(row->vendor, ==, "demo-a");
	g_assert_cmpstr(row->state, ==, "draft");
	g_assert_cmpuint(row->owner_uid, ==, 1000);
	g_assert_cmpint(row->created, ==, T0);
	g_assert_cmpint(row->updated, ==, T0);
	g_assert_true(g_variant_equal(row->fields, fields));
	g_clear_pointer(&row, cs_order_row_free);

	row = cs_ledger_load_order(ledger, id2, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(row->vendor, ==, "");
	g_assert_true(g_variant_is_of_type(row->fields, G_VARIANT_TYPE_VARDICT));
	g_assert_cmpuint(g_variant_n_children(row->fields), ==, 0);
	g_clear_pointer(&row, cs_order_row_free);

	/* Update: state and fields; NULL fields keeps them. */
	fields2 = g_variant_ref_sink(g_variant_new_parsed("{'org_name': <'新名称'>}"));
	g_assert_true(cs_ledger_begin(ledger, &error));
	g_assert_true(cs_ledger_update_order(ledger, id1, "review", NULL, T0 + 10, &error));
	record_change(ledger, id1);
	g_assert_true(cs_ledger_commit(ledger, &error));
	row = cs_ledger_load_order(ledger, id1, &error);
	g_assert_cmpstr(row->state, ==, "review");
	g_assert_cmpint(row->updated, ==, T0 + 10);
	g_assert_cmpint(row->created, ==, T0);
	g_assert_true(g_variant_equal(row->fields, fields));
	g_clear_pointer(&row, cs_order_row_free);
	g_assert_true(cs_ledger_begin(ledger, &error));
	g_assert_true(cs_ledger_update_order(ledger, id1, "review", fields2, T0 + 11, &error));
	record_change(ledger, id1);
	g_assert_true(cs_ledger_commit(ledger, &error));
	row = cs_ledger_load_order(ledger, id1, &error);
	g_assert_true(g_variant_equal(row->fields, fields2));

	/* Unknown orders. */
	missing = cs_ledger_load_order(ledger, "CS20000101999999", &error);
	g_assert_null(missing);
	g_assert_error(error, CS_ERROR, CS_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_assert_true(cs_ledger_begin(ledger, &error));
	g_assert_false(cs_ledger_update_order(ledger, "CS20000101999999", "x", NULL, T0, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_NOT_FOUND);
	g_clear_error(&error);
	cs_ledger_rollback(ledger);

	all = cs_ledger_list_orders(ledger, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(all->len, ==, 2);
	g_assert_cmpstr(g_ptr_array_index(all, 0), ==, id1);
	g_assert_cmpstr(g_ptr_array_index(all, 1), ==, id2);
	in_review = cs_ledger_list_orders(ledger, "review", &error);
	g_assert_no_error(error);
	g_assert_cmpuint(in_review->len, ==, 1);
	g_assert_cmpstr(g_ptr_array_index(in_review, 0), ==, id1);
}

static void
test_orders_numbers_sequential(Fixture *f, gconstpointer data)
{
	g_autoptr(CsLedger) ledger = open_ledger(f, 1000);
	g_autoptr(GError) error = NULL;
	g_autofree char *id1 = NULL;
	g_autofree char *rolled_back = NULL;
	g_autofree char *id2 = NULL;

	g_assert_true(cs_ledger_begin(ledger, &error));
	id1 = insert_order(ledger, "draft", NULL, T0);
	record_change(ledger, id1);
	g_assert_true(cs_ledger_commit(ledger, &error));
	g_assert_true(cs_ledger_begin(ledger, &error));
	rolled_back = insert_order(ledger, "draft", NULL, T0);
	cs_ledger_rollback(ledger);
	g_assert_true(cs_ledger_begin(ledger, &error));
	id2 = insert_order(ledger, "draft", NULL, T0);
	record_change(ledger, id2);
	g_assert_true(cs_ledger_commit(ledger, &error));
	g_assert_no_error(error);
	g_assert_true(g_str_has_suffix(id1, "000001"));
	/* A rolled-back order never existed: its number is free again. */
	g_assert_cmpstr(rolled_back, ==, id2);
	g_assert_true(g_str_has_suffix(id2, "000002"));
}

static void
test_orders_event_needs_known_order(Fixture *f, gconstpointer data)
{
	g_autoptr(CsLedger) ledger = open_ledger(f, 1000);
	g_autoptr(GError) error = NULL;

	g_assert_true(cs_ledger_begin(ledger, &error));
	g_assert_false(cs_ledger_append_event(ledger, "CS20000101000009", "created", NULL, "draft",
					      "uid:1", NULL, T0, NULL, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INTERNAL);
	g_assert_nonnull(strstr(error->message, "FOREIGN KEY"));
	cs_ledger_rollback(ledger);
	g_assert_cmpint(cs_ledger_last_seq(ledger), ==, 0);
}

static void
test_txn_writes_outside_refused(Fixture *f, gconstpointer data)
{
	g_autoptr(CsLedger) ledger = open_ledger(f, 1000);
	g_autoptr(GError) error = NULL;
	char *id = NULL;

	g_assert_false(cs_ledger_append_event(ledger, NULL, "recovered", NULL, NULL, "system", NULL,
					      T0, NULL, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INTERNAL);
	g_assert_nonnull(strstr(error->message, "outside a transaction"));
	g_clear_error(&error);
	g_assert_false(
	    cs_ledger_insert_order(ledger, "new", "org", "", "draft", 1, NULL, T0, &id, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INTERNAL);
	g_assert_null(id);
	g_clear_error(&error);

	g_assert_true(cs_ledger_begin(ledger, &error));
	g_assert_false(cs_ledger_begin(ledger, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INTERNAL);
	cs_ledger_rollback(ledger);
	g_assert_cmpint(cs_ledger_last_seq(ledger), ==, 0);
}

/* ---- secrets -------------------------------------------------------------------------- */

static void
test_secrets_sealed_not_in_clear(Fixture *f, gconstpointer data)
{
	const char *plaintext = "PIN-738291-密";
	const char *marker = "MARKER-IN-CLEAR-4711";
	g_autoptr(CsLedger) ledger = open_ledger(f, 1000);
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) fields = NULL;
	g_autoptr(GBytes) opened = NULL;
	g_autofree char *id = NULL;
	g_autofree char *wal = g_strdup_printf("%s-wal", f->path);
	gint64 secret_id = 0;

	fields = g_variant_ref_sink(g_variant_new_parsed("{'note': <%s>}", marker));
	g_assert_true(cs_ledger_begin(ledger, &error));
	id = insert_order(ledger, "draft", fields, T0);
	record_change(ledger, id);
	g_assert_true(cs_ledger_seal_secret(ledger, "user_pin", id, (const guint8 *)plaintext,
					    strlen(plaintext), T0, &secret_id, &error));
	g_assert_true(cs_ledger_commit(ledger, &error));
	g_assert_no_error(error);
	g_assert_cmpint(secret_id, >, 0);

	/* While open (data in the WAL) and after closing (folded into the file). */
	g_assert_true(file_contains(wal, marker, strlen(marker)) ||
		      file_contains(f->path, marker, strlen(marker)));
	g_assert_false(file_contains(wal, plaintext, strlen(plaintext)));
	g_assert_false(file_contains(f->path, plaintext, strlen(plaintext)));
	g_clear_pointer(&ledger, cs_ledger_free);
	/* The search works (the marker, stored in clear, is found) … */
	g_assert_true(file_contains(f->path, marker, strlen(marker)));
	/* … and the secret is not there. */
	g_assert_false(file_contains(f->path, plaintext, strlen(plaintext)));

	ledger = open_ledger(f, 1000);
	opened = cs_ledger_open_secret(ledger, secret_id, &error);
	g_assert_no_error(error);
	g_assert_cmpmem(g_bytes_get_data(opened, NULL), g_bytes_get_size(opened), plaintext,
			strlen(plaintext));
}

static void
test_secrets_wipe(Fixture *f, gconstpointer data)
{
	g_autoptr(CsLedger) ledger = open_ledger(f, 1000);
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) opened = NULL;
	g_autoptr(GBytes) sealed = NULL;
	gint64 secret_id = 0;
	gint64 other_id = 0;
	sqlite3 *db = cs_ledger_get_db(ledger);
	/* Long, so that a freed copy of its sealed bytes would stay in the page. */
	g_autofree char *message = g_strnfill(300, 'm');

	g_assert_true(cs_ledger_begin(ledger, &error));
	g_assert_true(cs_ledger_seal_secret(ledger, "outgoing_message", NULL,
					    (const guint8 *)message, strlen(message), T0,
					    &secret_id, &error));
	g_assert_true(cs_ledger_seal_secret(ledger, "so_pin", NULL, (const guint8 *)"87654321", 8,
					    T0, &other_id, &error));
	g_assert_true(cs_ledger_commit(ledger, &error));
	g_assert_no_error(error);
	{
		g_autofree char *sql = g_strdup_printf(
		    "SELECT sealed FROM secrets WHERE id = %" G_GINT64_FORMAT, secret_id);

		sealed = raw_blob(db, sql);
	}

	g_assert_true(cs_ledger_begin(ledger, &error));
	g_assert_true(cs_ledger_wipe_secret(ledger, secret_id, T0 + 5, &error));
	g_assert_true(cs_ledger_commit(ledger, &error));
	g_assert_no_error(error);

	opened = cs_ledger_open_secret(ledger, secret_id, &error);
	g_assert_null(opened);
	g_assert_error(error, CS_ERROR, CS_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_assert_cmpint(raw_int(db, "SELECT count(*) FROM secrets WHERE sealed IS NULL AND "
				    "wiped IS NOT NULL"),
			==, 1);
	{
		g_autofree char *sql = g_strdup_printf(
		    "SELECT wiped FROM secrets WHERE id = %" G_GINT64_FORMAT, secret_id);

		g_assert_cmpint(raw_int(db, sql), ==, T0 + 5);
	}
	/* The other secret is untouched. */
	opened = cs_ledger_open_secret(ledger, other_id, &error);
	g_assert_no_error(error);
	g_assert_cmpmem(g_bytes_get_data(opened, NULL), g_bytes_get_size(opened), "87654321", 8);

	/* Wiping again is harmless; wiping what never existed is an error. */
	g_assert_true(cs_ledger_begin(ledger, &error));
	g_assert_true(cs_ledger_wipe_secret(ledger, secret_id, T0 + 6, &error));
	g_assert_false(cs_ledger_wipe_secret(ledger, 9999, T0 + 6, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_NOT_FOUND);
	cs_ledger_rollback(ledger);
	g_clear_error(&error);
	g_assert_null(cs_ledger_open_secret(ledger, 9999, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_NOT_FOUND);

	/* Even the sealed bytes are gone from the file (secure_delete; Debian's SQLite also
	 * builds it in as the default). */
	g_clear_pointer(&ledger, cs_ledger_free);
	g_assert_false(
	    file_contains(f->path, g_bytes_get_data(sealed, NULL), g_bytes_get_size(sealed)));
}

static void
test_secrets_bound_to_row(Fixture *f, gconstpointer data)
{
	g_autoptr(CsLedger) ledger = open_ledger(f, 1000);
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) opened = NULL;
	gint64 a = 0;
	gint64 b = 0;

	g_assert_true(cs_ledger_begin(ledger, &error));
	g_assert_true(cs_ledger_seal_secret(ledger, "so_pin", NULL, (const guint8 *)"1111", 4, T0,
					    &a, &error));
	g_assert_true(cs_ledger_seal_secret(ledger, "so_pin", NULL, (const guint8 *)"2222", 4, T0,
					    &b, &error));
	g_assert_true(cs_ledger_commit(ledger, &error));
	g_assert_no_error(error);

	/* Moving a sealed blob to another row (or purpose) does not move the secret. */
	raw_exec_file(f->path, "UPDATE secrets SET sealed = (SELECT sealed FROM secrets WHERE "
			       "id = 1) WHERE id = 2;"
			       "UPDATE secrets SET purpose = 'user_pin' WHERE id = 1;");
	opened = cs_ledger_open_secret(ledger, b, &error);
	g_assert_null(opened);
	g_assert_error(error, CS_ERROR, CS_ERROR_INTERNAL);
	g_assert_cmpstr(error->message, ==, "sealed secret failed authentication");
	g_clear_error(&error);
	opened = cs_ledger_open_secret(ledger, a, &error);
	g_assert_null(opened);
	g_assert_error(error, CS_ERROR, CS_ERROR_INTERNAL);
}

static void
test_secrets_need_vault(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(CsLedger) ledger = cs_ledger_open(f->path, NULL, 1000, &error);

	g_assert_no_error(error);
	g_assert_true(cs_ledger_begin(ledger, &error));
	g_assert_false(cs_ledger_seal_secret(ledger, "so_pin", NULL, (const guint8 *)"1", 1, T0,
					     NULL, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_UNAVAILABLE);
	cs_ledger_rollback(ledger);
}

/* ---- subjects ------------------------------------------------------------------------- */

static void
test_subjects_record_lookup(Fixture *f, gconstpointer data)
{
	g_autoptr(CsLedger) ledger = open_ledger(f, 1000);
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) unknown = NULL;
	g_autoptr(GVariant) identity = NULL;
	g_autoptr(GVariant) changed = NULL;
	g_autoptr(GVariant) found = NULL;
	g_autoptr(GVariant) person = NULL;
	sqlite3 *db = cs_ledger_get_db(ledger);

	unknown = cs_ledger_lookup_subject(ledger, "org", "91350100M000100Y43", &error);
	g_assert_no_error(error);
	g_assert_null(unknown);

	identity = g_variant_ref_sink(g_variant_new_parsed(
	    "{'org_name': <'示例科技有限公司'>, 'uscc': <'91350100M000100Y43'>,"
	    " 'handler_phone': <'13800000001'>}"));
	changed = g_variant_ref_sink(g_variant_new_parsed(
	    "{'org_name': <'示例科技（福建）有限公司'>, 'uscc': <'91350100M000100Y43'>,"
	    " 'handler_phone': <'13800000002'>}"));
	g_assert_true(cs_ledger_begin(ledger, &error));
	g_assert_true(
	    cs_ledger_record_subject(ledger, "org", "91350100M000100Y43", identity, T0, &error));
	g_assert_true(cs_ledger_commit(ledger, &error));
	g_assert_no_error(error);
	found = cs_ledger_lookup_subject(ledger, "org", "91350100M000100Y43", &error);
	g_assert_no_error(error);
	g_assert_true(g_variant_equal(found, identity));
	g_clear_pointer(&found, g_variant_unref);

	/* The same number as another subject type is another subject. */
	person = cs_ledger_lookup_subject(ledger, "person", "91350100M000100Y43", &error);
	g_assert_no_error(error);
	g_assert_null(person);

	/* A change order replaces the identity and keeps when it was first recorded. */
	g_assert_true(cs_ledger_begin(ledger, &error));
	g_assert_true(cs_ledger_record_subject(ledger, "org", "91350100M000100Y43", changed,
					       T0 + 100, &error));
	g_assert_true(cs_ledger_commit(ledger, &error));
	g_assert_no_error(error);
	found = cs_ledger_lookup_subject(ledger, "org", "91350100M000100Y43", &error);
	g_assert_no_error(error);
	g_assert_true(g_variant_equal(found, changed));
	g_assert_cmpint(raw_int(db, "SELECT count(*) FROM subjects"), ==, 1);
	g_assert_cmpint(raw_int(db, "SELECT created FROM subjects"), ==, T0);
	g_assert_cmpint(raw_int(db, "SELECT updated FROM subjects"), ==, T0 + 100);
}

/* An online copy: one consistent ledger in a single file, never over an existing file, and
 * the same through a read-only connection of its own. */
static void
test_ledger_online_backup(Fixture *f, gconstpointer data)
{
	g_autoptr(CsLedger) ledger = open_ledger(f, 1000);
	g_autoptr(GError) error = NULL;
	g_autofree char *copy = g_build_filename(f->dir, "copy.db", NULL);
	g_autofree char *again = g_build_filename(f->dir, "again.db", NULL);
	g_autofree char *junk = g_build_filename(f->dir, "junk.db", NULL);
	g_autofree char *junk_copy = g_build_filename(f->dir, "junk-copy.db", NULL);
	g_autofree char *integrity = NULL;
	g_autofree char *mode = NULL;
	gint64 id = 0;
	sqlite3 *db;

	g_assert_true(cs_ledger_begin(ledger, &error));
	g_assert_true(cs_ledger_seal_secret(ledger, "so_pin", NULL, (const guint8 *)"1234", 4, T0,
					    &id, &error));
	g_assert_true(cs_ledger_commit(ledger, &error));

	g_assert_true(cs_ledger_backup_file(ledger, copy, &error));
	g_assert_no_error(error);
	db = raw_open(copy);
	integrity = raw_text(db, "PRAGMA integrity_check");
	g_assert_cmpstr(integrity, ==, "ok");
	mode = raw_text(db, "PRAGMA journal_mode");
	g_assert_cmpstr(mode, ==, "delete");
	g_assert_cmpint(raw_int(db, "SELECT count(*) FROM secrets"), ==, 1);
	sqlite3_close(db);

	/* An existing file is never replaced. */
	g_assert_false(cs_ledger_backup_file(ledger, copy, &error));
	g_assert_nonnull(strstr(error->message, "cannot create"));
	g_clear_error(&error);
	g_assert_cmpint(raw_int_file(copy, "SELECT count(*) FROM secrets"), ==, 1);

	g_assert_true(cs_ledger_backup_path(f->path, again, &error));
	g_assert_no_error(error);
	g_assert_cmpint(raw_int_file(again, "SELECT count(*) FROM secrets"), ==, 1);

	/* A database that is no ledger is refused, and nothing is written. */
	db = raw_open(junk);
	g_assert_cmpint(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL), ==, SQLITE_OK);
	sqlite3_close(db);
	g_assert_false(cs_ledger_backup_path(junk, junk_copy, &error));
	g_assert_nonnull(strstr(error->message, "not a certseal ledger"));
	g_clear_error(&error);
	g_assert_false(g_file_test(junk_copy, G_FILE_TEST_EXISTS));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);

#define ADD(path, func) g_test_add(path, Fixture, NULL, fixture_setup, func, fixture_teardown)
	ADD("/vault/seal/roundtrip", test_vault_seal_roundtrip);
	ADD("/vault/seal/tamper-detected", test_vault_seal_tamper_detected);
	ADD("/vault/seal/wrong-aad-refused", test_vault_seal_wrong_aad_refused);
	ADD("/vault/key/created-private", test_vault_key_created_private);
	ADD("/vault/key/perms-refused", test_vault_key_perms_refused);
	ADD("/vault/key/wrong-size-refused", test_vault_key_wrong_size_refused);
	ADD("/vault/key/replaced-refused", test_vault_key_replaced_refused);
	ADD("/vault/key/check-value-migrated", test_vault_check_value_migrated);
	ADD("/vault/key/check-value-proven-by-a-secret", test_vault_check_value_proven_by_a_secret);
	ADD("/vault/keyed-hash/derived-per-label", test_vault_keyed_hash);

	ADD("/ledger/chain/canonical-bytes", test_chain_canonical_bytes);
	ADD("/ledger/chain/verifies", test_chain_verifies);
	ADD("/ledger/chain/data-stored-canonical", test_chain_data_stored_canonical);
	ADD("/ledger/chain/python-auditor-agrees", test_chain_python_auditor_agrees);
	ADD("/ledger/chain/rollback-restores-head", test_chain_rollback_restores_head);
	ADD("/ledger/chain/other-writer-noticed", test_chain_other_writer_noticed);
	ADD("/ledger/tamper/data-changed-names-event", test_tamper_data_changed);
	ADD("/ledger/tamper/field-changed-names-event", test_tamper_field_changed);
	ADD("/ledger/tamper/event-deleted-names-gap", test_tamper_event_deleted);
	ADD("/ledger/tamper/rechained-caught-by-checkpoint",
	    test_tamper_rechained_caught_by_checkpoint);
	ADD("/ledger/append-only/update-refused", test_append_only_update_refused);
	ADD("/ledger/append-only/delete-refused", test_append_only_delete_refused);
	ADD("/ledger/backup/online", test_ledger_online_backup);
	ADD("/ledger/migrate/from-empty", test_migrate_from_empty);
	ADD("/ledger/migrate/file-to-version", test_migrate_file_to_version);
	ADD("/ledger/migrate/from-v1", test_migrate_from_v1);
	ADD("/ledger/migrate/from-v2", test_migrate_from_v2);
	ADD("/ledger/migrate/from-v3", test_migrate_from_v3);
	ADD("/ledger/migrate/from-v4", test_migrate_from_v4);
	ADD("/ledger/migrate/from-v5", test_migrate_from_v5);
	ADD("/ledger/migrate/from-v6", test_migrate_from_v6);
	ADD("/ledger/migrate/from-v7-keyed", test_migrate_from_v7_keyed);
	ADD("/ledger/migrate/v7-materials-moved-out", test_migrate_v7_materials_moved_out);
	ADD("/ledger/keyed/good-ledger-verifies", test_keyed_good_ledger_verifies);
	ADD("/ledger/keyed/truncated-tail-caught", test_keyed_truncated_tail_caught);
	ADD("/ledger/keyed/rechained-caught", test_keyed_rechained_caught);
	ADD("/ledger/keyed/checkpoint-forged-caught", test_keyed_checkpoint_forged_caught);
	ADD("/ledger/keyed/old-event-caught-in-background",
	    test_keyed_old_event_caught_in_background);
	ADD("/ledger/keyed/order-row-changed-caught", test_keyed_order_row_changed_caught);
	ADD("/ledger/keyed/failed-ledger-refuses-writes", test_keyed_failed_ledger_refuses_writes);
	ADD("/ledger/query-codes", test_query_codes);
	ADD("/ledger/migrate/v4-failed-step-rolls-back", test_migrate_v4_failed_step_rolls_back);
	ADD("/ledger/migrate/backup-never-overwritten", test_migrate_backup_never_overwritten);
	ADD("/ledger/migrate/failed-step-rolls-back", test_migrate_failed_step_rolls_back);
	ADD("/ledger/migrate/newer-refused", test_migrate_newer_refused);
	ADD("/ledger/open/not-sqlite-refused", test_open_not_sqlite_refused);
	ADD("/ledger/open/foreign-sqlite-refused", test_open_foreign_sqlite_refused);
	ADD("/ledger/open/tampered-chain-refused", test_open_tampered_chain_refused);
	ADD("/ledger/open/verifies-from-last-checkpoint", test_open_verifies_from_last_checkpoint);
	ADD("/ledger/checkpoint/written-every-n", test_checkpoint_written_every_n);
	ADD("/ledger/orders/insert-load-update", test_orders_insert_load_update);
	ADD("/ledger/orders/numbers-sequential", test_orders_numbers_sequential);
	ADD("/ledger/orders/event-needs-known-order", test_orders_event_needs_known_order);
	ADD("/ledger/txn/writes-outside-refused", test_txn_writes_outside_refused);
	ADD("/ledger/secrets/sealed-not-in-clear", test_secrets_sealed_not_in_clear);
	ADD("/ledger/secrets/wipe", test_secrets_wipe);
	ADD("/ledger/secrets/bound-to-row", test_secrets_bound_to_row);
	ADD("/ledger/secrets/need-vault", test_secrets_need_vault);
	ADD("/ledger/subjects/record-lookup", test_subjects_record_lookup);
#undef ADD
	return g_test_run();
}
