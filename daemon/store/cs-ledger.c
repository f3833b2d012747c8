/*
 * cs-ledger.c — the order ledger in SQLite (docs/architecture.md §3.5).
 *
 * What this file keeps true:
 *   - The file is only ever moved forward. Opening refuses, without writing a byte, a file
 *     that is not SQLite, an SQLite file of another application, a schema newer than this
 *     build, and a chain that fails verification from the last checkpoint. It never deletes,
 *     recreates or "repairs" the file: an operator decides what happens to a ledger we do
 *     not understand (fwupd's history database taught what the opposite costs).
 *   - Every migration step and its PRAGMA user_version bump commit in one transaction, so
 *     the version always describes the schema; before migrating an existing file a
 *     sqlite3_backup copy is written next to it and never overwritten.
 *   - events (and checkpoints) are append-only: triggers refuse UPDATE and DELETE, and
 *     every event carries SHA-256(previous hash ‖ canonical bytes), so an edit made behind
 *     the triggers' back is found and named by seq.
 *   - Tamper evidence as a whole (schema 8), with keys derived from the vault: the chain
 *     head (last seq and hash, table chain_head) and every checkpoint (checkpoint_macs)
 *     carry a keyed MAC, so a cut-off tail or a chain rewritten and rehashed is found; every
 *     event about an order carries state_mac, a keyed MAC of the order's row (kind, subject,
 *     vendor, owner, state, fields) after the step, bound to the event's seq, so the orders
 *     table can be checked against its events: the row must match the MAC of its order's
 *     last event (or, for an order whose last event predates schema 8, order_macs, written
 *     when the ledger was migrated). An order row changed after its last event in a
 *     transaction would break that, so such a commit is refused. Replacing the whole file
 *     by an older genuine copy is not detected (docs/development.md).
 *   - The head of the chain (last seq and hash) is cached here and is exact whenever a
 *     write transaction is open: it is reloaded after a rollback, and at cs_ledger_begin()
 *     when PRAGMA data_version says another connection wrote meanwhile.
 *   - Secrets reach SQLite only sealed by the vault, bound to their row by the associated
 *     data "secret:<id>:<purpose>", and secure_delete zeroes what a wipe frees.
 *   - Every statement is prepared with numbered ?N parameters; no SQL text is built from
 *     data. Cached statements are reset when their user's scope ends, so none keeps a read
 *     transaction (and thus a WAL checkpoint) pinned.
 *   - Material bytes are not in the file (schema 9): they are content-addressed files in
 *     <ledger's directory>/materials (cs-blobs.c), written and synced before the row that
 *     names them by SHA-256 commits; reading one checks it against that hash.
 *   - A CsLedger is one SQLite connection, used from one thread (the main loop's). The
 *     background verification opens its own read-only connection in its own thread and
 *     shares nothing with it but a copy of the vault key.
 */
#define G_LOG_DOMAIN "certseald"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "certseal/plugin.h"
#include "cs-blobs.h"
#include "cs-json.h"
#include "cs-ledger.h"

#define CS_LEDGER_HASH_SIZE 32
#define CS_LEDGER_BUSY_TIMEOUT_MS 5000
#define CS_LEDGER_BACKUP_MAX_SUFFIX 1000
/* An online backup (cs_ledger_backup_file): pages copied per step, and how often and how
 * long it waits when a writer holds the database (about 30 s in all). */
#define CS_LEDGER_BACKUP_PAGES_PER_STEP 64
#define CS_LEDGER_BACKUP_MAX_RETRIES 3000
#define CS_LEDGER_BACKUP_RETRY_MS 10
/* The first schema whose chain is keyed (chain_head, checkpoint_macs, state_mac). */
#define CS_LEDGER_KEYED_SCHEMA 8
/* Labels of the keys derived from the vault for the MACs. */
#define CS_LEDGER_MAC_HEAD "ledger chain head"
#define CS_LEDGER_MAC_CHECKPOINT "ledger checkpoint"
#define CS_LEDGER_MAC_ORDER "ledger order state"

/* The MAC keys, derived from the vault once per connection. */
typedef enum { MAC_HEAD, MAC_CHECKPOINT, MAC_ORDER, MAC_LAST } CsLedgerMac;
typedef struct {
	guint8 key[MAC_LAST][CS_VAULT_KEY_SIZE];
} MacKeys;

static MacKeys *
mac_keys_new(CsVault *vault)
{
	MacKeys *keys;

	if (vault == NULL)
		return NULL;
	keys = g_new0(MacKeys, 1);
	cs_vault_derive_key(vault, CS_LEDGER_MAC_HEAD, keys->key[MAC_HEAD]);
	cs_vault_derive_key(vault, CS_LEDGER_MAC_CHECKPOINT, keys->key[MAC_CHECKPOINT]);
	cs_vault_derive_key(vault, CS_LEDGER_MAC_ORDER, keys->key[MAC_ORDER]);
	return keys;
}

static void
mac_keys_free(MacKeys *keys)
{
	if (keys == NULL)
		return;
	OPENSSL_cleanse(keys, sizeof(*keys));
	g_free(keys);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MacKeys, mac_keys_free)

G_DEFINE_AUTOPTR_CLEANUP_FUNC(sqlite3_stmt, sqlite3_finalize)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EVP_MD_CTX, EVP_MD_CTX_free)

/* A cached statement lent out for one use: reset and unbound when the borrowing scope
 * ends, so it holds no read transaction and no dangling bound pointer between uses. */
typedef sqlite3_stmt CsLedgerStmtUse;

static void
stmt_use_end(CsLedgerStmtUse *stmt)
{
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsLedgerStmtUse, stmt_use_end)

/* The statements worth keeping prepared: those of every transaction and every transition,
 * and the reads behind every order signal (History, Missing, NextActions). */
typedef enum {
	STMT_BEGIN,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_DATA_VERSION,
	STMT_HEAD,
	STMT_APPEND_EVENT,
	STMT_INSERT_CHECKPOINT,
	STMT_NEXT_ORDER_NUM,
	STMT_INSERT_ORDER,
	STMT_UPDATE_ORDER,
	STMT_LOAD_ORDER,
	STMT_INSERT_CERTIFICATE,
	STMT_SET_HEAD,
	STMT_INSERT_CHECKPOINT_MAC,
	STMT_LOAD_ORDER_KEYED,
	STMT_ORDER_EVENTS,
	STMT_LIST_MATERIALS,
	STMT_LOAD_MATERIAL,
	STMT_ORDER_PAID,
	STMT_LAST
} CsLedgerStmt;

static const char *const stmt_sql[STMT_LAST] = {
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    [STMT_DATA_VERSION] = "PRAGMA data_version",
    [STMT_HEAD] = "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1",
    [STMT_APPEND_EVENT] = "INSERT INTO events (seq, time, order_id, kind, from_state, to_state, "
			  "actor, data, hash, state_mac) "
			  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [STMT_INSERT_CHECKPOINT] = "INSERT INTO checkpoints (seq, hash) VALUES (?1, ?2)",
    /* AUTOINCREMENT's high-water mark, so a number is never handed out twice. */
    [STMT_NEXT_ORDER_NUM] = "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence "
			    "WHERE name = 'orders'), 0), "
			    "COALESCE((SELECT MAX(num) FROM orders), 0)) + 1",
    [STMT_INSERT_ORDER] = "INSERT INTO orders (num, id, kind, subject_type, vendor, state, "
			  "owner_uid, fields, created, updated) "
			  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
    [STMT_UPDATE_ORDER] = "UPDATE orders SET state = COALESCE(?2, state), "
			  "fields = COALESCE(?3, fields), updated = ?4 WHERE id = ?1",
    [STMT_LOAD_ORDER] = "SELECT id, kind, subject_type, vendor, state, owner_uid, fields, "
			"created, updated FROM orders WHERE id = ?1",
    [STMT_INSERT_CERTIFICATE] = "INSERT INTO certificates (serial, vendor, role, subject, "
				"subject_type, id_number, order_id, not_before, not_after, "
				"status, revoked_at, reason, der, created) VALUES (?1, ?2, ?3, "
				"?4, ?5, ?6, ?7, ?8, ?9, 'valid', NULL, NULL, ?10, ?11)",
    [STMT_SET_HEAD] = "INSERT OR REPLACE INTO chain_head (id, seq, hash, mac) "
		      "VALUES (1, ?1, ?2, ?3)",
    [STMT_INSERT_CHECKPOINT_MAC] = "INSERT INTO checkpoint_macs (seq, mac) VALUES (?1, ?2)",
    /* The columns order_state_mac() keys. */
    [STMT_LOAD_ORDER_KEYED] = "SELECT id, kind, subject_type, vendor, owner_uid, state, fields "
			      "FROM orders WHERE id = ?1",
    [STMT_ORDER_EVENTS] = "SELECT seq, time, kind, from_state, to_state, actor, data "
			  "FROM events WHERE order_id = ?1 ORDER BY seq",
    /* The latest row of each kind; the content is not read. */
    [STMT_LIST_MATERIALS] = "SELECT order_id, kind, filename, mime, size, sha256, created, actor "
			    "FROM materials WHERE id IN (SELECT MAX(id) FROM materials "
			    "WHERE order_id = ?1 GROUP BY kind) ORDER BY kind",
    [STMT_LOAD_MATERIAL] = "SELECT order_id, kind, filename, mime, size, sha256, created, actor "
			   "FROM materials WHERE order_id = ?1 AND kind = ?2 "
			   "ORDER BY id DESC LIMIT 1",
    [STMT_ORDER_PAID] = "SELECT coalesce(sum(amount_fen), 0) FROM payments WHERE order_id = ?1",
};

/*
 * The migrations: migration_sql[N] takes the schema from version N-1 to N. Append only —
 * a released step is never edited, because files that ran it exist.
 */
static const char *const migration_sql[] = {
    [0] = NULL,
    [1] = "CREATE TABLE orders ("
	  "  num INTEGER PRIMARY KEY AUTOINCREMENT,"
	  "  id TEXT UNIQUE NOT NULL,"
	  "  kind TEXT NOT NULL,"
	  "  subject_type TEXT NOT NULL,"
	  "  vendor TEXT NOT NULL DEFAULT '',"
	  "  state TEXT NOT NULL,"
	  "  owner_uid INTEGER NOT NULL,"
	  "  fields TEXT NOT NULL," /* GVariant text format of an a{sv} */
	  "  created INTEGER NOT NULL,"
	  "  updated INTEGER NOT NULL);"
	  "CREATE TABLE events ("
	  "  seq INTEGER PRIMARY KEY,"
	  "  time INTEGER NOT NULL,"
	  "  order_id TEXT NULL REFERENCES orders(id),"
	  "  kind TEXT NOT NULL,"
	  "  from_state TEXT NULL,"
	  "  to_state TEXT NULL,"
	  "  actor TEXT NOT NULL,"
	  "  data TEXT NOT NULL," /* canonical JSON object, hashed as stored */
	  "  hash BLOB NOT NULL);"
	  "CREATE TRIGGER events_no_update BEFORE UPDATE ON events"
	  "  BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;"
	  "CREATE TRIGGER events_no_delete BEFORE DELETE ON events"
	  "  BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;",
    [2] = "CREATE TABLE checkpoints ("
	  "  seq INTEGER PRIMARY KEY REFERENCES events(seq),"
	  "  hash BLOB NOT NULL);"
	  "CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints"
	  "  BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;"
	  "CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints"
	  "  BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;"
	  "CREATE TABLE secrets ("
	  "  id INTEGER PRIMARY KEY,"
	  "  purpose TEXT NOT NULL,"
	  "  order_id TEXT NULL,"
	  "  sealed BLOB NULL," /* nonce ‖ ciphertext ‖ tag; NULL once wiped */
	  "  created INTEGER NOT NULL,"
	  "  wiped INTEGER NULL);"
	  /* A wiped row stays: its id is bound into the sealing AAD and must never be
	   * reused by a later secret. */
	  "CREATE TRIGGER secrets_no_delete BEFORE DELETE ON secrets"
	  "  BEGIN SELECT RAISE(ABORT, 'secrets are wiped, not deleted'); END;",
    [3] = "CREATE TABLE subjects ("
	  "  subject_type TEXT NOT NULL,"
	  "  id_number TEXT NOT NULL,"
	  "  identity TEXT NOT NULL," /* GVariant text format of an a{sv} */
	  "  created INTEGER NOT NULL,"
	  "  updated INTEGER NOT NULL,"
	  "  PRIMARY KEY (subject_type, id_number));"
	  "CREATE INDEX events_order_id ON events(order_id);"
	  "CREATE INDEX orders_state ON orders(state);",
    /* Issued certificates (docs/architecture.md §1.4, §4): public data only — the DER certificate,
     * never a private key. A serial is the primary key, so none is ever used twice; rows are never
     * deleted, and once written only the revocation columns may change, and only from valid to
     * revoked. crl_numbers keeps each vendor's CRL number increasing. */
    [4] = "CREATE TABLE certificates ("
	  "  serial TEXT PRIMARY KEY," /* 32 upper-case hex digits */
	  "  vendor TEXT NOT NULL,"
	  "  role TEXT NOT NULL,"    /* root | issuing | seal_maker | subscriber */
	  "  subject TEXT NOT NULL," /* RFC 2253 text */
	  "  subject_type TEXT NULL,"
	  "  id_number TEXT NULL,"
	  "  order_id TEXT NULL,"
	  "  not_before INTEGER NOT NULL,"
	  "  not_after INTEGER NOT NULL,"
	  "  status TEXT NOT NULL," /* valid | revoked */
	  "  revoked_at INTEGER NULL,"
	  "  reason TEXT NULL,"
	  "  der BLOB NOT NULL,"
	  "  created INTEGER NOT NULL);"
	  "CREATE INDEX certificates_subject ON certificates(vendor, subject_type, id_number);"
	  "CREATE INDEX certificates_revoked ON certificates(vendor, status);"
	  "CREATE TRIGGER certificates_no_delete BEFORE DELETE ON certificates"
	  "  BEGIN SELECT RAISE(ABORT, 'certificates are revoked, not deleted'); END;"
	  "CREATE TRIGGER certificates_only_revoke BEFORE UPDATE ON certificates"
	  "  WHEN OLD.status != 'valid' OR NEW.status != 'revoked'"
	  "    OR NEW.serial IS NOT OLD.serial OR NEW.vendor IS NOT OLD.vendor"
	  "    OR NEW.role IS NOT OLD.role OR NEW.subject IS NOT OLD.subject"
	  "    OR NEW.subject_type IS NOT OLD.subject_type OR NEW.id_number IS NOT OLD.id_number"
	  "    OR NEW.order_id IS NOT OLD.order_id OR NEW.not_before IS NOT OLD.not_before"
	  "    OR NEW.not_after IS NOT OLD.not_after OR NEW.der IS NOT OLD.der"
	  "    OR NEW.created IS NOT OLD.created"
	  "  BEGIN SELECT RAISE(ABORT, 'a certificate can only be revoked, once'); END;"
	  "CREATE TABLE crl_numbers ("
	  "  vendor TEXT PRIMARY KEY,"
	  "  number INTEGER NOT NULL);",
    /* The office (docs/architecture.md §3.4): durable leased tasks, the sandbox gateways' outbox,
     * the SMS sends counted for the rate limits of §6, and the payment notifications already
     * applied (their key makes a duplicate idempotent). Task payloads and outbox rows hold
     * no secret in clear: secrets are referred to by their id in `secrets`. */
    [5] = "CREATE TABLE tasks ("
	  "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	  "  service TEXT NOT NULL,"
	  "  order_id TEXT NULL REFERENCES orders(id),"
	  "  expected_state TEXT NULL," /* the order's state the task was made for */
	  "  payload TEXT NOT NULL,"	/* JSON object */
	  "  secret_ref INTEGER NULL REFERENCES secrets(id),"
	  "  state TEXT NOT NULL," /* queued | leased | done | failed */
	  "  lease TEXT NULL,"
	  "  lease_user TEXT NULL,"
	  "  attempts INTEGER NOT NULL DEFAULT 0,"
	  "  result TEXT NULL," /* JSON, once done or failed */
	  "  created INTEGER NOT NULL,"
	  "  updated INTEGER NOT NULL);"
	  "CREATE INDEX tasks_state ON tasks(state, service);"
	  "CREATE TABLE outbox ("
	  "  id INTEGER PRIMARY KEY,"
	  "  service TEXT NOT NULL,"
	  "  task_id INTEGER NOT NULL REFERENCES tasks(id),"
	  "  recipient TEXT NOT NULL,"
	  "  secret_ref INTEGER NOT NULL REFERENCES secrets(id)," /* the sealed message */
	  "  created INTEGER NOT NULL);"
	  "CREATE TABLE sms_sends ("
	  "  phone_hash TEXT NOT NULL,"
	  "  time INTEGER NOT NULL);"
	  "CREATE INDEX sms_sends_phone ON sms_sends(phone_hash, time);"
	  "CREATE TABLE payments ("
	  "  notify_key TEXT PRIMARY KEY,"
	  "  channel TEXT NOT NULL,"
	  "  order_id TEXT NOT NULL REFERENCES orders(id),"
	  "  amount_fen INTEGER NOT NULL,"
	  "  trade_no TEXT NOT NULL,"
	  "  time INTEGER NOT NULL);"
	  "CREATE TRIGGER payments_no_delete BEFORE DELETE ON payments"
	  "  BEGIN SELECT RAISE(ABORT, 'payments are append-only'); END;",
    /* Materials (docs/architecture.md §1.1, §3.5): a history, never edited. Re-uploading a kind
     * inserts a new row and the latest (highest id) per (order_id, kind) is the order's material;
     * older rows stay for the auditor. The content lives here only: the event recorded in
     * the same transaction holds {kind, sha256, size, mime}. */
    [6] = "CREATE TABLE materials ("
	  "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	  "  order_id TEXT NOT NULL REFERENCES orders(id),"
	  "  kind TEXT NOT NULL,"
	  "  filename TEXT NOT NULL,"
	  "  mime TEXT NOT NULL,"
	  "  size INTEGER NOT NULL,"
	  "  sha256 TEXT NOT NULL," /* 64 lower-case hex digits of data */
	  "  data BLOB NOT NULL,"
	  "  created INTEGER NOT NULL,"
	  "  actor TEXT NOT NULL);"
	  "CREATE INDEX materials_order ON materials(order_id, kind, id);"
	  "CREATE TRIGGER materials_no_update BEFORE UPDATE ON materials"
	  "  BEGIN SELECT RAISE(ABORT, 'materials are replaced by a new upload, not edited'); END;"
	  "CREATE TRIGGER materials_no_delete BEFORE DELETE ON materials"
	  "  BEGIN SELECT RAISE(ABORT, 'materials are append-only'); END;",
    /* The new-certificate flow (docs/architecture.md §1.1, §6): per-order attributes the steps set
     * (review note, tracking number, references to sealed secrets — never a secret),
     * one-time SMS codes kept as keyed hashes with their lifetime and tries, and the
     * e-invoices issued (one per order; the number is unique). */
    [7] = "CREATE TABLE order_attrs ("
	  "  order_id TEXT NOT NULL REFERENCES orders(id),"
	  "  name TEXT NOT NULL,"
	  "  value TEXT NOT NULL,"
	  "  updated INTEGER NOT NULL,"
	  "  PRIMARY KEY (order_id, name));"
	  "CREATE TABLE codes ("
	  "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	  "  order_id TEXT NOT NULL REFERENCES orders(id),"
	  "  purpose TEXT NOT NULL,"
	  "  code_hash TEXT NOT NULL," /* keyed hash (vault), never the code */
	  "  created INTEGER NOT NULL,"
	  "  expires INTEGER NOT NULL,"
	  "  tries INTEGER NOT NULL DEFAULT 0,"
	  "  state TEXT NOT NULL);" /* open | used | dead | replaced */
	  "CREATE INDEX codes_order ON codes(order_id, purpose, id);"
	  "CREATE TABLE invoices ("
	  "  order_id TEXT PRIMARY KEY REFERENCES orders(id),"
	  "  number TEXT UNIQUE NOT NULL,"
	  "  amount_fen INTEGER NOT NULL,"
	  "  pdf BLOB NOT NULL,"
	  "  created INTEGER NOT NULL);"
	  "CREATE TRIGGER invoices_no_update BEFORE UPDATE ON invoices"
	  "  BEGIN SELECT RAISE(ABORT, 'invoices are issued once'); END;"
	  "CREATE TRIGGER invoices_no_delete BEFORE DELETE ON invoices"
	  "  BEGIN SELECT RAISE(ABORT, 'invoices are issued once'); END;",
    /* Tamper evidence as a whole (see the top of this file): the keyed chain head, a keyed
     * MAC for every checkpoint, the keyed state of an order after each event about it, and
     * the keyed state of the orders whose last event came before this schema (filled in
     * the same transaction by key_existing_ledger()). */
    [8] = "ALTER TABLE events ADD COLUMN state_mac TEXT NULL;"
	  "CREATE TABLE chain_head ("
	  "  id INTEGER PRIMARY KEY CHECK (id = 1),"
	  "  seq INTEGER NOT NULL,"
	  "  hash BLOB NOT NULL,"
	  "  mac TEXT NOT NULL);"
	  "CREATE TABLE checkpoint_macs ("
	  "  seq INTEGER PRIMARY KEY REFERENCES checkpoints(seq),"
	  "  mac TEXT NOT NULL);"
	  "CREATE TRIGGER checkpoint_macs_no_update BEFORE UPDATE ON checkpoint_macs"
	  "  BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;"
	  "CREATE TRIGGER checkpoint_macs_no_delete BEFORE DELETE ON checkpoint_macs"
	  "  BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;"
	  "CREATE TABLE order_macs ("
	  "  order_id TEXT PRIMARY KEY REFERENCES orders(id),"
	  "  seq INTEGER NOT NULL," /* the order's last event when the ledger was keyed */
	  "  mac TEXT NOT NULL);"
	  "CREATE TRIGGER order_macs_no_update BEFORE UPDATE ON order_macs"
	  "  BEGIN SELECT RAISE(ABORT, 'order_macs are written once, when keying'); END;",
    /* Material bytes leave the database: each upload is a content-addressed file in the
     * state directory, named here by its SHA-256 (move_material_blobs() writes the files
     * of the existing rows first, in the same transaction). The history stays as it was. */
    [9] = "CREATE TABLE materials_v9 ("
	  "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	  "  order_id TEXT NOT NULL REFERENCES orders(id),"
	  "  kind TEXT NOT NULL,"
	  "  filename TEXT NOT NULL,"
	  "  mime TEXT NOT NULL,"
	  "  size INTEGER NOT NULL,"
	  "  sha256 TEXT NOT NULL," /* the file <state>/materials/<2 hex>/<sha256> */
	  "  created INTEGER NOT NULL,"
	  "  actor TEXT NOT NULL);"
	  "INSERT INTO materials_v9 (id, order_id, kind, filename, mime, size, sha256, created, "
	  "  actor) SELECT id, order_id, kind, filename, mime, size, sha256, created, actor "
	  "  FROM materials ORDER BY id;"
	  "DROP TABLE materials;"
	  "ALTER TABLE materials_v9 RENAME TO materials;"
	  "CREATE INDEX materials_order ON materials(order_id, kind, id);"
	  "CREATE TRIGGER materials_no_update BEFORE UPDATE ON materials"
	  "  BEGIN SELECT RAISE(ABORT, 'materials are replaced by a new upload, not edited'); END;"
	  "CREATE TRIGGER materials_no_delete BEFORE DELETE ON materials"
	  "  BEGIN SELECT RAISE(ABORT, 'materials are append-only'); END;",
    /* Query codes (订单查询): one-time codes for a subject, not an order — to the phone on
     * file, asked for by a caller uid (the rate limits count both). A keyed hash, never
     * the code. */
    [10] = "CREATE TABLE query_codes ("
	   "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	   "  subject_type TEXT NOT NULL,"
	   "  id_number TEXT NOT NULL,"
	   "  phone TEXT NOT NULL," /* where it went: the grant covers that phone's orders */
	   "  caller_uid INTEGER NOT NULL,"
	   "  code_hash TEXT NOT NULL,"
	   "  created INTEGER NOT NULL,"
	   "  expires INTEGER NOT NULL,"
	   "  tries INTEGER NOT NULL DEFAULT 0,"
	   "  state TEXT NOT NULL);" /* open | used | dead | replaced */
	   "CREATE INDEX query_codes_subject ON query_codes(subject_type, id_number, id);"
	   "CREATE INDEX query_codes_uid ON query_codes(caller_uid, created);",
};

G_STATIC_ASSERT(G_N_ELEMENTS(migration_sql) == CS_LEDGER_SCHEMA_VERSION + 1);

struct _CsLedger {
	sqlite3 *db;
	char *path;
	CsVault *vault; /* borrowed; may be NULL, then secrets are unavailable */
	guint checkpoint_interval;
	int schema_version;
	char *backup_path;
	gboolean opened; /* fully opened: only then may closing write (checkpoint the WAL) */
	gint64 data_version;
	gint64 last_seq;
	guint8 last_hash[CS_LEDGER_HASH_SIZE];
	sqlite3_stmt *stmts[STMT_LAST];
	/* Orders inserted or updated in the open transaction and not yet followed by an
	 * event about them (their state would go unkeyed). */
	GHashTable *unkeyed_orders;
	CsBlobs *blobs; /* the material files */
	MacKeys *keys;	/* NULL exactly when vault is */
	/* > 0 once a verification failed: every write is refused from then on. */
	gint64 failed_seq;
};

/* ---- SQLite plumbing ------------------------------------------------------------------ */

/* The one place an SQLite failure becomes a GError. */
static gboolean
set_sqlite_error(sqlite3 *db, const char *what, GError **error)
{
	g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "ledger: %s: %s (%d)", what,
		    sqlite3_errmsg(db), sqlite3_extended_errcode(db));
	return FALSE;
}

static sqlite3_stmt *
stmt_prepare(sqlite3 *db, const char *sql, GError **error)
{
	sqlite3_stmt *stmt = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK) {
		set_sqlite_error(db, "preparing a statement", error);
		return NULL;
	}
	return stmt;
}

static CsLedgerStmtUse *
stmt_cached(CsLedger *ledger, CsLedgerStmt id, GError **error)
{
	if (ledger->stmts[id] == NULL &&
	    sqlite3_prepare_v3(ledger->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
			       &ledger->stmts[id], NULL) != SQLITE_OK) {
		set_sqlite_error(ledger->db, "preparing a statement", error);
		return NULL;
	}
	return ledger->stmts[id];
}

/* Step a statement once, for its effect (a row it may return, e.g. from a PRAGMA, is not
 * needed). */
static gboolean
stmt_exec(sqlite3 *db, sqlite3_stmt *stmt, const char *what, GError **error)
{
	int rc = sqlite3_step(stmt);

	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return set_sqlite_error(db, what, error);
	return TRUE;
}

/* Step a statement that must return one row; FALSE with @error also when it returns none. */
static gboolean
stmt_step_row(sqlite3 *db, sqlite3_stmt *stmt, const char *what, GError **error)
{
	int rc = sqlite3_step(stmt);

	if (rc == SQLITE_ROW)
		return TRUE;
	if (rc == SQLITE_DONE) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "ledger: %s: no result", what);
		return FALSE;
	}
	return set_sqlite_error(db, what, error);
}

/* For the fixed DDL of migrations and the PRAGMAs, which carry no data. */
static gboolean
db_exec(sqlite3 *db, const char *sql, const char *what, GError **error)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return set_sqlite_error(db, what, error);
	return TRUE;
}

static gboolean
db_query_int(sqlite3 *db, const char *sql, gint64 *out, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = stmt_prepare(db, sql, error);

	if (stmt == NULL || !stmt_step_row(db, stmt, sql, error))
		return FALSE;
	*out = sqlite3_column_int64(stmt, 0);
	return TRUE;
}

static void
bind_text(sqlite3_stmt *stmt, int index, const char *s)
{
	/* NULL binds SQL NULL. */
	sqlite3_bind_text(stmt, index, s, -1, SQLITE_TRANSIENT);
}

static char *
column_dup(sqlite3_stmt *stmt, int column)
{
	return g_strdup((const char *)sqlite3_column_text(stmt, column));
}

static gboolean
require_transaction(CsLedger *ledger, const char *what, GError **error)
{
	if (!sqlite3_get_autocommit(ledger->db))
		return TRUE;
	g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL,
		    "ledger: %s outside a transaction (call cs_ledger_begin() first)", what);
	return FALSE;
}

static char *
vardict_to_text(GVariant *dict)
{
	g_autoptr(GVariant) empty = NULL;

	if (dict == NULL) {
		empty = g_variant_ref_sink(g_variant_new("a{sv}", NULL));
		dict = empty;
	}
	return g_variant_print(dict, TRUE);
}

static GVariant *
vardict_from_text(const char *text, const char *what, GError **error)
{
	g_autoptr(GError) parse_error = NULL;
	GVariant *v;

	v = g_variant_parse(G_VARIANT_TYPE_VARDICT, text != NULL ? text : "", NULL, NULL,
			    &parse_error);
	if (v == NULL) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "ledger: %s: unreadable: %s", what,
			    parse_error->message);
		return NULL;
	}
	return v; /* g_variant_parse() returns a full, non-floating reference */
}

static gboolean
check_vardict(GVariant *v, const char *what, GError **error)
{
	if (v == NULL || g_variant_is_of_type(v, G_VARIANT_TYPE_VARDICT))
		return TRUE;
	g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "ledger: %s must be a{sv}, not %s",
		    what, g_variant_get_type_string(v));
	return FALSE;
}

/* ---- the chain ----------------------------------------------------------------------- */

char *
cs_ledger_event_canonical(gint64 seq,
			  gint64 time_us,
			  const char *order_id,
			  const char *kind,
			  const char *from,
			  const char *to,
			  const char *actor,
			  const char *data_json)
{
	/* Keys in byte order: actor data from kind order_id seq time to. */
	GString *s = g_string_new("{\"actor\":");

	cs_json_append_string(s, actor);
	g_string_append(s, ",\"data\":");
	g_string_append(s, data_json != NULL ? data_json : "{}");
	g_string_append(s, ",\"from\":");
	cs_json_append_string(s, from);
	g_string_append(s, ",\"kind\":");
	cs_json_append_string(s, kind);
	g_string_append(s, ",\"order_id\":");
	cs_json_append_string(s, order_id);
	g_string_append_printf(s, ",\"seq\":%" G_GINT64_FORMAT ",\"time\":%" G_GINT64_FORMAT, seq,
			       time_us);
	g_string_append(s, ",\"to\":");
	cs_json_append_string(s, to);
	g_string_append_c(s, '}');
	return g_string_free(s, FALSE);
}

static gboolean
chain_hash(const guint8 prev[CS_LEDGER_HASH_SIZE],
	   const char *canonical,
	   guint8 out[CS_LEDGER_HASH_SIZE],
	   GError **error)
{
	g_autoptr(EVP_MD_CTX) ctx = EVP_MD_CTX_new();
	unsigned int len = 0;

	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, prev, CS_LEDGER_HASH_SIZE) != 1 ||
	    EVP_DigestUpdate(ctx, canonical, strlen(canonical)) != 1 ||
	    EVP_DigestFinal_ex(ctx, out, &len) != 1 || len != CS_LEDGER_HASH_SIZE) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INTERNAL, "ledger: SHA-256 failed");
		return FALSE;
	}
	return TRUE;
}

/* Lowercase hex of a hash. */
static char *
hash_hex(const guint8 hash[CS_LEDGER_HASH_SIZE])
{
	GString *s = g_string_sized_new(CS_LEDGER_HASH_SIZE * 2);

	for (guint i = 0; i < CS_LEDGER_HASH_SIZE; i++)
		g_string_append_printf(s, "%02x", hash[i]);
	return g_string_free(s, FALSE);
}

/* The keyed MAC of a (seq, hash) pair: the chain head or a checkpoint. */
static char *
position_mac(const MacKeys *keys,
	     CsLedgerMac which,
	     gint64 seq,
	     const guint8 hash[CS_LEDGER_HASH_SIZE])
{
	g_autofree char *hex = hash_hex(hash);
	g_autofree char *data = g_strdup_printf("%" G_GINT64_FORMAT ":%s", seq, hex);

	return cs_vault_hmac_hex(keys->key[which], data);
}

static void
append_part(GString *s, const char *part)
{
	/* Length-prefixed, so no two rows can give the same bytes. */
	g_string_append_printf(s, "%zu:%s;", part != NULL ? strlen(part) : 0,
			       part != NULL ? part : "");
}

/*
 * The keyed MAC of an order's row as of event @seq. @stmt's columns from @col: id, kind,
 * subject_type, vendor, owner_uid, state, fields — hashed as stored.
 */
static char *
order_state_mac(const MacKeys *keys, gint64 seq, sqlite3_stmt *stmt, int col)
{
	g_autoptr(GString) s = g_string_new(NULL);
	g_autofree char *owner =
	    g_strdup_printf("%" G_GINT64_FORMAT, (gint64)sqlite3_column_int64(stmt, col + 4));
	g_autofree char *seq_text = g_strdup_printf("%" G_GINT64_FORMAT, seq);

	append_part(s, seq_text);
	for (int i = 0; i < 4; i++)
		append_part(s, (const char *)sqlite3_column_text(stmt, col + i));
	append_part(s, owner);
	append_part(s, (const char *)sqlite3_column_text(stmt, col + 5));
	append_part(s, (const char *)sqlite3_column_text(stmt, col + 6));
	return cs_vault_hmac_hex(keys->key[MAC_ORDER], s->str);
}

/* Equal MACs, compared in constant time. */
static gboolean
mac_equal(const char *a, const char *b)
{
	gsize len;

	if (a == NULL || b == NULL)
		return FALSE;
	len = strlen(a);
	return len == strlen(b) && CRYPTO_memcmp(a, b, len) == 0;
}

/* Reload the cached head of the chain from the file. */
static gboolean
load_head(CsLedger *ledger, GError **error)
{
	g_autoptr(CsLedgerStmtUse) stmt = stmt_cached(ledger, STMT_HEAD, error);
	int rc;

	if (stmt == NULL)
		return FALSE;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE) {
		ledger->last_seq = 0;
		memset(ledger->last_hash, 0, sizeof(ledger->last_hash));
		return TRUE;
	}
	if (rc != SQLITE_ROW)
		return set_sqlite_error(ledger->db, "reading the last event", error);
	if (sqlite3_column_bytes(stmt, 1) != CS_LEDGER_HASH_SIZE) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "ledger event %lld: malformed hash",
			    (long long)sqlite3_column_int64(stmt, 0));
		return FALSE;
	}
	ledger->last_seq = sqlite3_column_int64(stmt, 0);
	memcpy(ledger->last_hash, sqlite3_column_blob(stmt, 1), CS_LEDGER_HASH_SIZE);
	return TRUE;
}

static gboolean
read_data_version(CsLedger *ledger, gint64 *out, GError **error)
{
	g_autoptr(CsLedgerStmtUse) stmt = stmt_cached(ledger, STMT_DATA_VERSION, error);

	if (stmt == NULL || !stmt_step_row(ledger->db, stmt, "reading data_version", error))
		return FALSE;
	*out = sqlite3_column_int64(stmt, 0);
	return TRUE;
}

static gboolean
fail_at(gint64 seq, gint64 *bad_seq, GError **error, const char *problem)
{
	if (bad_seq != NULL)
		*bad_seq = seq;
	g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "ledger event %" G_GINT64_FORMAT ": %s",
		    seq, problem);
	return FALSE;
}

/* A row's columns have the types the schema promises (a value stored with another type
 * would be hashed through a conversion and could hide an edit). */
static gboolean
event_row_well_formed(sqlite3_stmt *stmt)
{
	static const int required[] = {SQLITE_INTEGER, SQLITE_INTEGER, 0, SQLITE_TEXT, 0, 0,
				       SQLITE_TEXT,    SQLITE_TEXT};

	for (int i = 0; i < (int)G_N_ELEMENTS(required); i++) {
		int type = sqlite3_column_type(stmt, i);

		if (required[i] != 0 && type != required[i])
			return FALSE;
		if (required[i] == 0 && type != SQLITE_TEXT && type != SQLITE_NULL)
			return FALSE;
	}
	return sqlite3_column_type(stmt, 8) == SQLITE_BLOB &&
	       sqlite3_column_bytes(stmt, 8) == CS_LEDGER_HASH_SIZE;
}

/* The checkpoints at or after @from_seq, as (seq, hash) pairs in seq order. */
typedef struct {
	gint64 seq;
	guint8 hash[CS_LEDGER_HASH_SIZE];
	gboolean well_formed;
} CsCheckpoint;

static GArray *
load_checkpoints(CsLedger *ledger, gint64 from_seq, GError **error)
{
	g_autoptr(GArray) out = g_array_new(FALSE, TRUE, sizeof(CsCheckpoint));
	g_autoptr(sqlite3_stmt) stmt = NULL;
	int rc;

	stmt = stmt_prepare(ledger->db,
			    "SELECT seq, hash FROM checkpoints WHERE seq >= ?1 "
			    "ORDER BY seq",
			    error);
	if (stmt == NULL)
		return NULL;
	sqlite3_bind_int64(stmt, 1, from_seq);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		CsCheckpoint c = {.seq = sqlite3_column_int64(stmt, 0)};

		c.well_formed = sqlite3_column_type(stmt, 1) == SQLITE_BLOB &&
				sqlite3_column_bytes(stmt, 1) == CS_LEDGER_HASH_SIZE;
		if (c.well_formed)
			memcpy(c.hash, sqlite3_column_blob(stmt, 1), CS_LEDGER_HASH_SIZE);
		g_array_append_val(out, c);
	}
	if (rc != SQLITE_DONE) {
		set_sqlite_error(ledger->db, "reading checkpoints", error);
		return NULL;
	}
	return g_steal_pointer(&out);
}

/* The checkpoint at @seq carries the keyed MAC of @hash. Not checked before schema 8 or
 * without a vault (nothing to check with). */
static gboolean
check_checkpoint_mac(CsLedger *ledger,
		     gint64 seq,
		     const guint8 hash[CS_LEDGER_HASH_SIZE],
		     gint64 *bad_seq,
		     GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;
	g_autofree char *expected = NULL;
	int rc;

	if (ledger->schema_version < CS_LEDGER_KEYED_SCHEMA || ledger->vault == NULL)
		return TRUE;
	stmt = stmt_prepare(ledger->db, "SELECT mac FROM checkpoint_macs WHERE seq = ?1", error);
	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_int64(stmt, 1, seq);
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return set_sqlite_error(ledger->db, "reading a checkpoint", error);
	expected = position_mac(ledger->keys, MAC_CHECKPOINT, seq, hash);
	if (rc == SQLITE_ROW && mac_equal((const char *)sqlite3_column_text(stmt, 0), expected))
		return TRUE;
	return fail_at(seq, bad_seq, error, "its checkpoint fails its keyed MAC");
}

/* The chain ends where its keyed head says: after @last_seq with @last_hash. */
static gboolean
check_head(CsLedger *ledger,
	   gint64 last_seq,
	   const guint8 last_hash[CS_LEDGER_HASH_SIZE],
	   gint64 *bad_seq,
	   GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;
	g_autofree char *expected = NULL;
	gint64 head_seq;
	int rc;

	if (ledger->schema_version < CS_LEDGER_KEYED_SCHEMA)
		return TRUE;
	stmt =
	    stmt_prepare(ledger->db, "SELECT seq, hash, mac FROM chain_head WHERE id = 1", error);
	if (stmt == NULL)
		return FALSE;
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return set_sqlite_error(ledger->db, "reading the chain head", error);
	if (rc == SQLITE_DONE) {
		if (last_seq == 0)
			return TRUE;
		return fail_at(last_seq, bad_seq, error, "the keyed chain head is missing");
	}
	head_seq = sqlite3_column_int64(stmt, 0);
	if (head_seq > last_seq) {
		g_autofree char *msg = g_strdup_printf(
		    "missing (the keyed chain head ends at %" G_GINT64_FORMAT ")", head_seq);
		return fail_at(last_seq + 1, bad_seq, error, msg);
	}
	if (head_seq < last_seq)
		return fail_at(head_seq + 1, bad_seq, error,
			       "after the end of the keyed chain head");
	if (sqlite3_column_bytes(stmt, 1) != CS_LEDGER_HASH_SIZE ||
	    memcmp(sqlite3_column_blob(stmt, 1), last_hash, CS_LEDGER_HASH_SIZE) != 0)
		return fail_at(last_seq, bad_seq, error, "does not match the keyed chain head");
	if (ledger->vault == NULL)
		return TRUE;
	expected = position_mac(ledger->keys, MAC_HEAD, head_seq, last_hash);
	if (!mac_equal((const char *)sqlite3_column_text(stmt, 2), expected))
		return fail_at(last_seq, bad_seq, error, "the chain head fails its keyed MAC");
	return TRUE;
}

/*
 * Where verification from @from_seq may start: after a checkpoint at @from_seq - 1 whose
 * event still carries the checkpointed hash, or else at the beginning.
 */
static gboolean
find_start(CsLedger *ledger,
	   gint64 from_seq,
	   gint64 *start,
	   guint8 prev[CS_LEDGER_HASH_SIZE],
	   gint64 *bad_seq,
	   GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;
	int rc;

	*start = 1;
	memset(prev, 0, CS_LEDGER_HASH_SIZE);
	if (from_seq <= 1 || ledger->schema_version < 2)
		return TRUE;
	stmt = stmt_prepare(ledger->db,
			    "SELECT c.hash, e.hash FROM checkpoints c "
			    "LEFT JOIN events e ON e.seq = c.seq WHERE c.seq = ?1",
			    error);
	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_int64(stmt, 1, from_seq - 1);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE)
		return TRUE; /* no checkpoint there: recompute everything */
	if (rc != SQLITE_ROW)
		return set_sqlite_error(ledger->db, "reading a checkpoint", error);
	if (sqlite3_column_bytes(stmt, 0) != CS_LEDGER_HASH_SIZE ||
	    sqlite3_column_bytes(stmt, 1) != CS_LEDGER_HASH_SIZE ||
	    memcmp(sqlite3_column_blob(stmt, 0), sqlite3_column_blob(stmt, 1),
		   CS_LEDGER_HASH_SIZE) != 0)
		return fail_at(from_seq - 1, bad_seq, error, "does not match its checkpoint");
	memcpy(prev, sqlite3_column_blob(stmt, 0), CS_LEDGER_HASH_SIZE);
	if (!check_checkpoint_mac(ledger, from_seq - 1, prev, bad_seq, error))
		return FALSE;
	*start = from_seq;
	return TRUE;
}

static gboolean
verify_chain(CsLedger *ledger,
	     gint64 from_seq,
	     gint64 *bad_seq,
	     gint64 *n_checked,
	     GCancellable *cancellable,
	     GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;
	g_autoptr(GArray) checkpoints = NULL;
	guint8 prev[CS_LEDGER_HASH_SIZE];
	guint next_checkpoint = 0;
	gint64 expected;
	int rc;

	if (!find_start(ledger, from_seq, &expected, prev, bad_seq, error))
		return FALSE;
	if (ledger->schema_version >= 2) {
		checkpoints = load_checkpoints(ledger, expected, error);
		if (checkpoints == NULL)
			return FALSE;
	}
	stmt = stmt_prepare(ledger->db,
			    "SELECT seq, time, order_id, kind, from_state, to_state, "
			    "actor, data, hash FROM events WHERE seq >= ?1 ORDER BY seq",
			    error);
	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_int64(stmt, 1, expected);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		gint64 seq = sqlite3_column_int64(stmt, 0);
		g_autofree char *canonical = NULL;
		guint8 hash[CS_LEDGER_HASH_SIZE];

		if (seq != expected) {
			g_autofree char *msg = g_strdup_printf(
			    "sequence gap (the next stored event is %" G_GINT64_FORMAT ")", seq);
			return fail_at(expected, bad_seq, error, msg);
		}
		if (!event_row_well_formed(stmt))
			return fail_at(seq, bad_seq, error, "malformed row");
		canonical = cs_ledger_event_canonical(seq, sqlite3_column_int64(stmt, 1),
						      (const char *)sqlite3_column_text(stmt, 2),
						      (const char *)sqlite3_column_text(stmt, 3),
						      (const char *)sqlite3_column_text(stmt, 4),
						      (const char *)sqlite3_column_text(stmt, 5),
						      (const char *)sqlite3_column_text(stmt, 6),
						      (const char *)sqlite3_column_text(stmt, 7));
		if (!chain_hash(prev, canonical, hash, error))
			return FALSE;
		if (memcmp(hash, sqlite3_column_blob(stmt, 8), CS_LEDGER_HASH_SIZE) != 0)
			return fail_at(seq, bad_seq, error, "hash mismatch");
		if (checkpoints != NULL && next_checkpoint < checkpoints->len) {
			CsCheckpoint *c =
			    &g_array_index(checkpoints, CsCheckpoint, next_checkpoint);

			if (c->seq == seq) {
				if (!c->well_formed || memcmp(c->hash, hash, sizeof(hash)) != 0)
					return fail_at(seq, bad_seq, error,
						       "does not match its checkpoint");
				if (!check_checkpoint_mac(ledger, seq, hash, bad_seq, error))
					return FALSE;
				next_checkpoint++;
			}
		}
		memcpy(prev, hash, sizeof(prev));
		expected++;
		if (n_checked != NULL)
			(*n_checked)++;
		if (cancellable != NULL && expected % 1024 == 0 &&
		    g_cancellable_set_error_if_cancelled(cancellable, error))
			return FALSE;
	}
	if (rc != SQLITE_DONE)
		return set_sqlite_error(ledger->db, "reading events", error);
	if (checkpoints != NULL && next_checkpoint < checkpoints->len) {
		/* A checkpoint for an event that is not there: the tail was cut off. */
		return fail_at(g_array_index(checkpoints, CsCheckpoint, next_checkpoint).seq,
			       bad_seq, error, "checkpointed but missing");
	}
	return check_head(ledger, expected - 1, prev, bad_seq, error);
}

/* Orders whose row does not match the keyed state of their last event. @since_seq: only
 * orders with an event at or after it (1: every order, and every order an event names). */
static gboolean
verify_orders(CsLedger *ledger, gint64 since_seq, gint64 *bad_seq, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;
	int rc;

	if (ledger->schema_version < CS_LEDGER_KEYED_SCHEMA || ledger->vault == NULL)
		return TRUE;
	if (since_seq <= 1) {
		g_autoptr(sqlite3_stmt) orphans =
		    stmt_prepare(ledger->db,
				 "SELECT MIN(seq) FROM events WHERE order_id IS NOT NULL AND "
				 "order_id NOT IN (SELECT id FROM orders)",
				 error);

		if (orphans == NULL || !stmt_step_row(ledger->db, orphans, "reading events", error))
			return FALSE;
		if (sqlite3_column_type(orphans, 0) != SQLITE_NULL)
			return fail_at(sqlite3_column_int64(orphans, 0), bad_seq, error,
				       "its order is missing from the orders table");
	}
	/* From the events since @since_seq (or every order), each order's last event through
	 * the events_order_id index: opening costs the events since the checkpoint, not the
	 * ledger. */
	stmt = stmt_prepare(
	    ledger->db,
	    since_seq <= 1
		? "SELECT o.id, o.kind, o.subject_type, o.vendor, o.owner_uid, o.state, o.fields, "
		  "  COALESCE((SELECT MAX(seq) FROM events e WHERE e.order_id = o.id), 0) AS last, "
		  "  (SELECT state_mac FROM events WHERE seq = "
		  "    (SELECT MAX(seq) FROM events e WHERE e.order_id = o.id)), m.seq, m.mac "
		  "FROM orders o LEFT JOIN order_macs m ON m.order_id = o.id ORDER BY o.num"
		: "SELECT o.id, o.kind, o.subject_type, o.vendor, o.owner_uid, o.state, o.fields, "
		  "  COALESCE((SELECT MAX(seq) FROM events e WHERE e.order_id = o.id), 0) AS last, "
		  "  (SELECT state_mac FROM events WHERE seq = "
		  "    (SELECT MAX(seq) FROM events e WHERE e.order_id = o.id)), m.seq, m.mac "
		  "FROM (SELECT DISTINCT order_id FROM events WHERE seq >= ?1 "
		  "      AND order_id IS NOT NULL) x "
		  "JOIN orders o ON o.id = x.order_id "
		  "LEFT JOIN order_macs m ON m.order_id = o.id ORDER BY o.num",
	    error);
	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_int64(stmt, 1, since_seq);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(stmt, 0);
		gint64 last = sqlite3_column_int64(stmt, 7); /* 0 when no event names it */
		const char *expected = (const char *)sqlite3_column_text(stmt, 8);
		g_autofree char *actual = order_state_mac(ledger->keys, last, stmt, 0);
		g_autofree char *msg = NULL;

		/* Before schema 8 the last event carries no MAC: the one keyed at migration. */
		if (expected == NULL && sqlite3_column_type(stmt, 9) != SQLITE_NULL &&
		    sqlite3_column_int64(stmt, 9) == last)
			expected = (const char *)sqlite3_column_text(stmt, 10);
		if (mac_equal(actual, expected))
			continue;
		msg = g_strdup_printf("order %s does not match its keyed state (its state or "
				      "fields were changed outside the ledger)",
				      id);
		return fail_at(last > 0 ? last : ledger->last_seq, bad_seq, error, msg);
	}
	if (rc != SQLITE_DONE)
		return set_sqlite_error(ledger->db, "reading orders", error);
	return TRUE;
}

gboolean
cs_ledger_verify(
    CsLedger *ledger, gint64 from_seq, gint64 *bad_seq, gint64 *n_checked, GError **error)
{
	gboolean own_transaction;
	gboolean ok;

	g_return_val_if_fail(ledger != NULL, FALSE);

	if (bad_seq != NULL)
		*bad_seq = 0;
	if (n_checked != NULL)
		*n_checked = 0;
	/* One read snapshot for checkpoints and events alike. */
	own_transaction = sqlite3_get_autocommit(ledger->db);
	if (own_transaction && !db_exec(ledger->db, "BEGIN", "starting to verify", error))
		return FALSE;
	ok = verify_chain(ledger, from_seq, bad_seq, n_checked, NULL, error) &&
	     verify_orders(ledger, from_seq, bad_seq, error);
	if (own_transaction)
		(void)sqlite3_exec(ledger->db, "COMMIT", NULL, NULL, NULL);
	return ok;
}

static gboolean
query_last_checkpoint(CsLedger *ledger, gint64 *seq, GError **error)
{
	*seq = 0;
	if (ledger->schema_version < 2)
		return TRUE;
	return db_query_int(ledger->db, "SELECT COALESCE(MAX(seq), 0) FROM checkpoints", seq,
			    error);
}

gint64
cs_ledger_last_checkpoint(CsLedger *ledger)
{
	g_autoptr(GError) error = NULL;
	gint64 seq = 0;

	g_return_val_if_fail(ledger != NULL, 0);

	if (!query_last_checkpoint(ledger, &seq, &error))
		g_warning("%s: %s", ledger->path, error->message);
	return seq;
}

gint64
cs_ledger_last_seq(CsLedger *ledger)
{
	g_return_val_if_fail(ledger != NULL, 0);
	return ledger->last_seq;
}

/* ---- verification in the background --------------------------------------------------- */

typedef struct {
	char *path;
	CsVault *vault; /* a copy: the thread may outlive the daemon's */
	int schema_version;
	GCancellable *cancellable;
	GMainContext *context; /* where @func runs */
	CsLedgerVerifiedFunc func;
	gpointer user_data;
	/* the outcome */
	gint64 bad_seq;
	gint64 n_checked;
	GError *error; /* NULL when the ledger verified */
} VerifyJob;

static void
verify_job_free(gpointer data)
{
	VerifyJob *job = data;

	cs_vault_free(job->vault);
	g_free(job->path);
	g_clear_object(&job->cancellable);
	g_main_context_unref(job->context);
	g_clear_error(&job->error);
	g_free(job);
}

/* Back in the caller's main context: the verdict, or CANCELLED when it was cancelled. */
static gboolean
verify_done(gpointer data)
{
	VerifyJob *job = data;
	g_autoptr(GError) cancelled = NULL;

	if (g_cancellable_set_error_if_cancelled(job->cancellable, &cancelled))
		job->func(FALSE, 0, job->n_checked, cancelled, job->user_data);
	else
		job->func(job->error == NULL, job->bad_seq, job->n_checked, job->error,
			  job->user_data);
	return G_SOURCE_REMOVE;
}

/* In a thread of its own (not GTask's pool, whose set-up starts GLib's worker thread): the
 * whole chain and every order, through a read-only connection of its own, in one read
 * snapshot (the main loop's writes go on beside it). */
static gpointer
verify_thread(gpointer data)
{
	VerifyJob *job = data;
	g_autoptr(MacKeys) keys = mac_keys_new(job->vault);
	CsLedger shadow = {.path = job->path,
			   .vault = job->vault,
			   .keys = keys,
			   .schema_version = job->schema_version};
	GSource *done;

	if (sqlite3_open_v2(job->path, &shadow.db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		g_set_error(&job->error, CS_ERROR, CS_ERROR_INTERNAL, "%s: cannot open: %s",
			    job->path,
			    shadow.db != NULL ? sqlite3_errmsg(shadow.db) : "out of memory");
	} else {
		sqlite3_busy_timeout(shadow.db, CS_LEDGER_BUSY_TIMEOUT_MS);
		if (db_exec(shadow.db, "BEGIN", "starting to verify", &job->error) &&
		    db_query_int(shadow.db, "SELECT COALESCE(MAX(seq), 0) FROM events",
				 &shadow.last_seq, &job->error) &&
		    verify_chain(&shadow, 1, &job->bad_seq, &job->n_checked, job->cancellable,
				 &job->error))
			verify_orders(&shadow, 1, &job->bad_seq, &job->error);
	}
	sqlite3_close(shadow.db);
	/* An idle source, not g_main_context_invoke(): that would run the callback here when
	 * nobody iterates the context at this moment. */
	done = g_idle_source_new();
	g_source_set_callback(done, verify_done, job, verify_job_free);
	g_source_attach(done, job->context);
	g_source_unref(done);
	return NULL;
}

void
cs_ledger_verify_in_background(CsLedger *ledger,
			       GCancellable *cancellable,
			       CsLedgerVerifiedFunc func,
			       gpointer user_data)
{
	VerifyJob *job;

	g_return_if_fail(ledger != NULL);
	g_return_if_fail(func != NULL);

	job = g_new0(VerifyJob, 1);
	job->path = g_strdup(ledger->path);
	job->vault = ledger->vault != NULL ? cs_vault_copy(ledger->vault) : NULL;
	job->schema_version = ledger->schema_version;
	job->cancellable = cancellable != NULL ? g_object_ref(cancellable) : NULL;
	job->context = g_main_context_ref_thread_default();
	job->func = func;
	job->user_data = user_data;
	g_thread_unref(g_thread_new("ledger-verify", verify_thread, job));
}

void
cs_ledger_refuse_writes(CsLedger *ledger, gint64 bad_seq)
{
	g_return_if_fail(ledger != NULL);
	ledger->failed_seq = MAX(bad_seq, 1);
}

gint64
cs_ledger_get_failed_seq(CsLedger *ledger)
{
	g_return_val_if_fail(ledger != NULL, 0);
	return ledger->failed_seq;
}

/* ---- opening, migrating, closing ------------------------------------------------------ */

/* Create a missing ledger file ourselves, 0600: it holds personal data, and SQLite would
 * create it (and its -wal and -shm, which copy its mode) with the umask's permissions. */
static gboolean
create_private_file(const char *path, GError **error)
{
	int saved_errno;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd >= 0) {
		close(fd);
		return TRUE;
	}
	if (errno == EEXIST)
		return TRUE;
	saved_errno = errno;
	g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s: cannot create: %s", path,
		    g_strerror(saved_errno));
	return FALSE;
}

static gboolean
db_open(const char *path, sqlite3 **db_out, GError **error)
{
	sqlite3 *db = NULL;

	if (!create_private_file(path, error))
		return FALSE;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
	    SQLITE_OK) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s: cannot open: %s", path,
			    db != NULL ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return FALSE;
	}
	sqlite3_extended_result_codes(db, 1);
	sqlite3_busy_timeout(db, CS_LEDGER_BUSY_TIMEOUT_MS);
	*db_out = db;
	return TRUE;
}

/*
 * Decide, reading only, whether @db is a certseal ledger this build can use, and at which
 * schema version. A brand-new empty file is version 0.
 */
static gboolean
check_header(sqlite3 *db, const char *path, int *version_out, GError **error)
{
	g_autoptr(GError) local_error = NULL;
	gint64 application_id = 0;
	gint64 version = 0;
	gint64 n_tables = 0;

	if (!db_query_int(db, "PRAGMA application_id", &application_id, &local_error) ||
	    !db_query_int(db, "PRAGMA user_version", &version, &local_error) ||
	    !db_query_int(db,
			  "SELECT count(*) FROM sqlite_schema "
			  "WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
			  &n_tables, &local_error)) {
		if ((sqlite3_errcode(db) & 0xff) == SQLITE_NOTADB) {
			g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL,
				    "%s is not a certseal ledger: file is not a database", path);
			return FALSE;
		}
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s: %s", path,
			    local_error->message);
		return FALSE;
	}
	if (application_id == 0 && version == 0 && n_tables == 0) {
		*version_out = 0;
		return TRUE;
	}
	if (application_id != CS_LEDGER_APPLICATION_ID) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL,
			    "%s is not a certseal ledger (application_id 0x%08x, %" G_GINT64_FORMAT
			    " tables)",
			    path, (guint32)application_id, n_tables);
		return FALSE;
	}
	if (version <= 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL,
			    "%s is not a certseal ledger: marked as one but without a schema "
			    "version",
			    path);
		return FALSE;
	}
	if (version > CS_LEDGER_SCHEMA_VERSION) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL,
			    "%s: schema version %" G_GINT64_FORMAT
			    " is newer than this certseald knows (%d)",
			    path, version, CS_LEDGER_SCHEMA_VERSION);
		return FALSE;
	}
	*version_out = (int)version;
	return TRUE;
}

/*
 * Key a ledger from before schema 8, in the migration's transaction (after its whole
 * chain verified at open): a MAC for every checkpoint, the keyed chain head, and the keyed
 * state of every order as of its last event.
 */
static gboolean
key_existing_ledger(sqlite3 *db, CsVault *vault, GError **error)
{
	g_autoptr(MacKeys) keys = mac_keys_new(vault);
	g_autoptr(sqlite3_stmt) checkpoints = NULL;
	g_autoptr(sqlite3_stmt) head = NULL;
	g_autoptr(sqlite3_stmt) orders = NULL;
	g_autoptr(sqlite3_stmt) insert = NULL;
	int rc;

	checkpoints = stmt_prepare(db, "SELECT seq, hash FROM checkpoints ORDER BY seq", error);
	insert = stmt_prepare(db, "INSERT INTO checkpoint_macs (seq, mac) VALUES (?1, ?2)", error);
	if (checkpoints == NULL || insert == NULL)
		return FALSE;
	while ((rc = sqlite3_step(checkpoints)) == SQLITE_ROW) {
		g_autofree char *mac = NULL;

		if (sqlite3_column_bytes(checkpoints, 1) != CS_LEDGER_HASH_SIZE)
			continue; /* verification already refused such a file */
		mac = position_mac(keys, MAC_CHECKPOINT, sqlite3_column_int64(checkpoints, 0),
				   sqlite3_column_blob(checkpoints, 1));
		sqlite3_bind_int64(insert, 1, sqlite3_column_int64(checkpoints, 0));
		bind_text(insert, 2, mac);
		if (!stmt_exec(db, insert, "keying a checkpoint", error))
			return FALSE;
		sqlite3_reset(insert);
	}
	if (rc != SQLITE_DONE)
		return set_sqlite_error(db, "reading checkpoints", error);
	g_clear_pointer(&insert, sqlite3_finalize);

	head = stmt_prepare(db, "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1", error);
	if (head == NULL)
		return FALSE;
	rc = sqlite3_step(head);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(head, 1) == CS_LEDGER_HASH_SIZE) {
		g_autofree char *mac = position_mac(keys, MAC_HEAD, sqlite3_column_int64(head, 0),
						    sqlite3_column_blob(head, 1));

		insert = stmt_prepare(
		    db, "INSERT INTO chain_head (id, seq, hash, mac) VALUES (1, ?1, ?2, ?3)",
		    error);
		if (insert == NULL)
			return FALSE;
		sqlite3_bind_int64(insert, 1, sqlite3_column_int64(head, 0));
		sqlite3_bind_blob(insert, 2, sqlite3_column_blob(head, 1), CS_LEDGER_HASH_SIZE,
				  SQLITE_TRANSIENT);
		bind_text(insert, 3, mac);
		if (!stmt_exec(db, insert, "keying the chain head", error))
			return FALSE;
		g_clear_pointer(&insert, sqlite3_finalize);
	} else if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		return set_sqlite_error(db, "reading the last event", error);
	}

	orders =
	    stmt_prepare(db,
			 "SELECT id, kind, subject_type, vendor, owner_uid, state, fields, "
			 "COALESCE((SELECT MAX(seq) FROM events WHERE order_id = orders.id), 0) "
			 "FROM orders",
			 error);
	insert = stmt_prepare(db, "INSERT INTO order_macs (order_id, seq, mac) VALUES (?1, ?2, ?3)",
			      error);
	if (orders == NULL || insert == NULL)
		return FALSE;
	while ((rc = sqlite3_step(orders)) == SQLITE_ROW) {
		gint64 seq = sqlite3_column_int64(orders, 7);
		g_autofree char *mac = order_state_mac(keys, seq, orders, 0);

		bind_text(insert, 1, (const char *)sqlite3_column_text(orders, 0));
		sqlite3_bind_int64(insert, 2, seq);
		bind_text(insert, 3, mac);
		if (!stmt_exec(db, insert, "keying an order", error))
			return FALSE;
		sqlite3_reset(insert);
	}
	if (rc != SQLITE_DONE)
		return set_sqlite_error(db, "reading orders", error);
	return TRUE;
}

/* Before schema 9 drops the data column: every row's bytes into the content-addressed
 * store, checked against the hash the row already holds. */
static gboolean
move_material_blobs(sqlite3 *db, CsBlobs *blobs, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt =
	    stmt_prepare(db, "SELECT id, sha256, data FROM materials ORDER BY id", error);
	guint moved = 0;
	int rc;

	if (stmt == NULL)
		return FALSE;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *expected = (const char *)sqlite3_column_text(stmt, 1);
		const guint8 *data = sqlite3_column_blob(stmt, 2);
		gsize len = (gsize)sqlite3_column_bytes(stmt, 2);
		g_autofree char *sha256 = NULL;

		if (!cs_blobs_put(blobs, data != NULL ? data : (const guint8 *)"", len, &sha256,
				  error))
			return FALSE;
		if (g_strcmp0(sha256, expected) != 0) {
			g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL,
				    "materials row %" G_GINT64_FORMAT
				    ": its bytes do not match its sha256 %s",
				    (gint64)sqlite3_column_int64(stmt, 0), expected);
			return FALSE;
		}
		moved++;
	}
	if (rc != SQLITE_DONE)
		return set_sqlite_error(db, "reading materials", error);
	if (moved > 0)
		g_message("moved %u material(s) out of the ledger into files", moved);
	return TRUE;
}

/* One step: its DDL and the version bump commit together or not at all. @vault: keys the
 * existing chain when the step introduces keying (NULL: only for fixtures); @blobs takes
 * the material bytes out. */
static gboolean
migrate_step(sqlite3 *db, int version, CsVault *vault, CsBlobs *blobs, GError **error)
{
	g_autofree char *set_version = g_strdup_printf("PRAGMA user_version = %d", version);
	g_autofree char *set_app_id =
	    g_strdup_printf("PRAGMA application_id = %d", (int)CS_LEDGER_APPLICATION_ID);

	if (!db_exec(db, "BEGIN IMMEDIATE", "starting the migration", error))
		return FALSE;
	if ((version == 9 && !move_material_blobs(db, blobs, error)) ||
	    !db_exec(db, migration_sql[version], "migration", error) ||
	    (version == 1 && !db_exec(db, set_app_id, "setting application_id", error)) ||
	    (version == CS_LEDGER_KEYED_SCHEMA && vault != NULL &&
	     !key_existing_ledger(db, vault, error)) ||
	    !db_exec(db, set_version, "setting user_version", error) ||
	    !db_exec(db, "COMMIT", "committing the migration", error)) {
		if (!sqlite3_get_autocommit(db))
			(void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return FALSE;
	}
	return TRUE;
}

static gboolean
migrate(
    sqlite3 *db, const char *path, int from, int to, CsVault *vault, CsBlobs *blobs, GError **error)
{
	for (int version = from + 1; version <= to; version++) {
		if (!migrate_step(db, version, vault, blobs, error)) {
			g_prefix_error(error, "%s: migrating to schema version %d: ", path,
				       version);
			return FALSE;
		}
		g_info("%s: migrated to schema version %d", path, version);
	}
	return TRUE;
}

/* Create the first free backup name with O_EXCL, so an older backup is never replaced. */
static char *
create_backup_file(const char *path, int version, GError **error)
{
	for (guint i = 0; i < CS_LEDGER_BACKUP_MAX_SUFFIX; i++) {
		g_autofree char *candidate =
		    i == 0 ? g_strdup_printf("%s.v%d.bak", path, version)
			   : g_strdup_printf("%s.v%d.bak.%u", path, version, i);
		int fd =
		    open(candidate, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		int saved_errno = errno;

		if (fd >= 0) {
			close(fd);
			return g_steal_pointer(&candidate);
		}
		if (saved_errno != EEXIST) {
			g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s: cannot create: %s",
				    candidate, g_strerror(saved_errno));
			return NULL;
		}
	}
	g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s: too many old backups", path);
	return NULL;
}

static gboolean copy_database(sqlite3 *src, const char *src_path, const char *path, GError **error);

static gboolean
backup_before_migrating(CsLedger *ledger, int version, GError **error)
{
	g_autofree char *backup_path = create_backup_file(ledger->path, version, error);

	if (backup_path == NULL)
		return FALSE;
	if (!copy_database(ledger->db, ledger->path, backup_path, error)) {
		g_prefix_error(error, "before migrating: ");
		return FALSE;
	}
	g_info("%s: backed up schema version %d to %s", ledger->path, version, backup_path);
	ledger->backup_path = g_steal_pointer(&backup_path);
	return TRUE;
}

static gboolean
set_pragmas(CsLedger *ledger, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = stmt_prepare(ledger->db, "PRAGMA journal_mode = WAL", error);
	const char *mode;

	if (stmt == NULL || !stmt_step_row(ledger->db, stmt, "setting journal_mode", error))
		return FALSE;
	mode = (const char *)sqlite3_column_text(stmt, 0);
	if (g_strcmp0(mode, "wal") != 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL,
			    "%s: cannot use write-ahead logging (journal_mode is %s)", ledger->path,
			    mode != NULL ? mode : "unknown");
		return FALSE;
	}
	/* FULL: a commit we acknowledged survives power loss (docs/architecture.md §3.5).
	 * secure_delete: bytes freed by a wipe are zeroed, not left in a free page. */
	return db_exec(ledger->db, "PRAGMA synchronous = FULL", "setting synchronous", error) &&
	       db_exec(ledger->db, "PRAGMA foreign_keys = ON", "setting foreign_keys", error) &&
	       db_exec(ledger->db, "PRAGMA secure_delete = ON", "setting secure_delete", error);
}

/* Verify the chain from the last checkpoint (its keyed MAC, every event after it, the
 * keyed head, the orders those events are about), before anything may write to the file;
 * the whole chain when @whole (a ledger about to be keyed by its migration). */
static gboolean
verify_at_open(CsLedger *ledger, gboolean whole, GError **error)
{
	gint64 from_seq = 0;
	gint64 n_checked = 0;

	if (!whole && !query_last_checkpoint(ledger, &from_seq, error)) {
		g_prefix_error(error, "%s: ", ledger->path);
		return FALSE;
	}
	from_seq++;
	if (!cs_ledger_verify(ledger, from_seq, NULL, &n_checked, error)) {
		g_prefix_error(error, "%s: chain verification failed: ", ledger->path);
		return FALSE;
	}
	g_debug("%s: verified %" G_GINT64_FORMAT " events from seq %" G_GINT64_FORMAT, ledger->path,
		n_checked, from_seq);
	return TRUE;
}

/* After schema 9 moved the material bytes out, their pages are free but the file keeps
 * its size: give the space back once (best effort; VACUUM is itself transactional). */
static void
reclaim_material_pages(CsLedger *ledger)
{
	gint64 free_pages = 0, page_size = 0;

	if (!db_query_int(ledger->db, "PRAGMA freelist_count", &free_pages, NULL) ||
	    !db_query_int(ledger->db, "PRAGMA page_size", &page_size, NULL) || free_pages == 0)
		return;
	if (sqlite3_exec(ledger->db, "VACUUM", NULL, NULL, NULL) != SQLITE_OK) {
		g_warning("%s: cannot reclaim the space the materials left: %s", ledger->path,
			  sqlite3_errmsg(ledger->db));
		return;
	}
	g_message("%s: reclaimed %" G_GINT64_FORMAT " KiB the materials left in the file",
		  ledger->path, free_pages * page_size / 1024);
}

static CsBlobs *
open_blobs_beside(const char *path)
{
	g_autofree char *dir = g_path_get_dirname(path);
	g_autofree char *materials = g_build_filename(dir, "materials", NULL);

	return cs_blobs_open(materials);
}

CsLedger *
cs_ledger_open(const char *path, CsVault *vault, guint checkpoint_interval, GError **error)
{
	g_autoptr(CsLedger) ledger = g_new0(CsLedger, 1);
	int version = 0;

	g_return_val_if_fail(path != NULL, NULL);

	ledger->path = g_strdup(path);
	ledger->vault = vault;
	ledger->keys = mac_keys_new(vault);
	ledger->unkeyed_orders = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	ledger->blobs = open_blobs_beside(path);
	ledger->checkpoint_interval =
	    checkpoint_interval > 0 ? checkpoint_interval : CS_LEDGER_CHECKPOINT_INTERVAL_DEFAULT;
	if (!db_open(path, &ledger->db, error))
		return NULL;
	/* Everything up to the backup only reads: a refused file stays byte for byte. */
	if (!check_header(ledger->db, path, &version, error))
		return NULL;
	ledger->schema_version = version;
	if (version >= 1 && version < CS_LEDGER_KEYED_SCHEMA && vault == NULL) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL,
			    "%s: migrating to schema version %d needs the vault key", path,
			    CS_LEDGER_KEYED_SCHEMA);
		return NULL;
	}
	/* A vault key check value written just now for an older state directory proves
	 * nothing yet: the key must open what was sealed with it, before the chain is checked
	 * or keyed with it. Refused, the check value goes again, for the right key to be restored.
	 */
	if (version >= 2 && vault != NULL && cs_vault_check_value_is_new(vault) &&
	    !cs_ledger_check_vault_key(ledger, error)) {
		cs_vault_forget_check_value(vault);
		return NULL;
	}
	if (version >= 1 && !verify_at_open(ledger, version < CS_LEDGER_KEYED_SCHEMA, error))
		return NULL;
	if (version >= 1 && version < CS_LEDGER_SCHEMA_VERSION &&
	    !backup_before_migrating(ledger, version, error))
		return NULL;
	if (!set_pragmas(ledger, error))
		return NULL;
	if (!migrate(ledger->db, path, version, CS_LEDGER_SCHEMA_VERSION, vault, ledger->blobs,
		     error))
		return NULL;
	ledger->schema_version = CS_LEDGER_SCHEMA_VERSION;
	if (version >= 6 && version < 9)
		reclaim_material_pages(ledger);
	if (!load_head(ledger, error) || !read_data_version(ledger, &ledger->data_version, error))
		return NULL;
	ledger->opened = TRUE;
	return g_steal_pointer(&ledger);
}

gboolean
cs_ledger_migrate_file_to(const char *path, int version, GError **error)
{
	g_autoptr(CsBlobs) blobs = open_blobs_beside(path);
	sqlite3 *db = NULL;
	int current = 0;
	gboolean ok;

	g_return_val_if_fail(path != NULL, FALSE);

	if (version < 1 || version > CS_LEDGER_SCHEMA_VERSION) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "ledger: no schema version %d (1 … %d)", version,
			    CS_LEDGER_SCHEMA_VERSION);
		return FALSE;
	}
	if (!db_open(path, &db, error))
		return FALSE;
	ok = check_header(db, path, &current, error);
	if (ok && current > version) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "%s: already at schema version %d", path, current);
		ok = FALSE;
	}
	/* Journal mode left as it is, so a fixture stays one self-contained file. */
	ok = ok && db_exec(db, "PRAGMA foreign_keys = ON", "setting foreign_keys", error) &&
	     migrate(db, path, current, version, NULL, blobs, error);
	sqlite3_close(db);
	return ok;
}

void
cs_ledger_free(CsLedger *ledger)
{
	if (ledger == NULL)
		return;
	for (guint i = 0; i < STMT_LAST; i++)
		sqlite3_finalize(ledger->stmts[i]);
	if (ledger->db != NULL) {
		if (!sqlite3_get_autocommit(ledger->db))
			(void)sqlite3_exec(ledger->db, "ROLLBACK", NULL, NULL, NULL);
		/* Best effort: fold the WAL back so the file stands alone; a reader elsewhere
		 * may hold it, and the next open replays the WAL anyway. */
		if (ledger->opened &&
		    sqlite3_wal_checkpoint_v2(ledger->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL,
					      NULL) != SQLITE_OK)
			g_debug("%s: WAL checkpoint at close: %s", ledger->path,
				sqlite3_errmsg(ledger->db));
		if (sqlite3_close(ledger->db) != SQLITE_OK) {
			g_warning("%s: closing: %s", ledger->path, sqlite3_errmsg(ledger->db));
			sqlite3_close_v2(ledger->db);
		}
	}
	OPENSSL_cleanse(ledger->last_hash, sizeof(ledger->last_hash));
	g_clear_pointer(&ledger->unkeyed_orders, g_hash_table_unref);
	g_clear_pointer(&ledger->blobs, cs_blobs_free);
	g_clear_pointer(&ledger->keys, mac_keys_free);
	g_free(ledger->path);
	g_free(ledger->backup_path);
	g_free(ledger);
}

int
cs_ledger_get_schema_version(CsLedger *ledger)
{
	g_return_val_if_fail(ledger != NULL, 0);
	return ledger->schema_version;
}

const char *
cs_ledger_get_backup_path(CsLedger *ledger)
{
	g_return_val_if_fail(ledger != NULL, NULL);
	return ledger->backup_path;
}

/* The steps of an online copy of @src into @dest (see copy_database()): SQLITE_OK or the
 * code that stopped it. */
static int
backup_steps(sqlite3 *dest, sqlite3 *src)
{
	sqlite3_backup *backup = sqlite3_backup_init(dest, "main", src, "main");
	guint retries = 0;
	int rc, finish_rc;

	if (backup == NULL)
		return sqlite3_errcode(dest);
	do {
		rc = sqlite3_backup_step(backup, CS_LEDGER_BACKUP_PAGES_PER_STEP);
		if ((rc == SQLITE_BUSY || rc == SQLITE_LOCKED) &&
		    retries++ < CS_LEDGER_BACKUP_MAX_RETRIES)
			sqlite3_sleep(CS_LEDGER_BACKUP_RETRY_MS);
		else if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
			break;
	} while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
	finish_rc = sqlite3_backup_finish(backup);
	return rc == SQLITE_DONE ? finish_rc : rc;
}

/*
 * An online copy of @src into the empty file @path (removed again on failure): a few
 * pages per step, so a writer on
 * another connection is held up for one step at a time, not the whole copy; BUSY and
 * LOCKED (a writer holds the database) wait and retry. sqlite3_backup restarts by itself
 * when another connection changes the source between steps, so what is written is one
 * consistent state of the ledger. The copy is synced before it is reported written.
 */
static gboolean
copy_database(sqlite3 *src, const char *src_path, const char *path, GError **error)
{
	sqlite3 *dest = NULL;
	int fd, rc;

	rc = sqlite3_open_v2(path, &dest, SQLITE_OPEN_READWRITE, NULL);
	if (rc == SQLITE_OK)
		rc = backup_steps(dest, src);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(dest, "PRAGMA journal_mode = DELETE", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s: cannot back up to %s: %s",
			    src_path, path,
			    dest != NULL ? sqlite3_errmsg(dest) : sqlite3_errstr(rc));
		sqlite3_close(dest);
		unlink(path);
		return FALSE;
	}
	sqlite3_close(dest);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s: cannot sync: %s", path,
			    g_strerror(errno));
		if (fd >= 0)
			close(fd);
		unlink(path);
		return FALSE;
	}
	close(fd);
	return TRUE;
}

/* A new file @path (refused when it exists), then the copy into it. */
static gboolean
backup_to_file(sqlite3 *src, const char *src_path, const char *path, GError **error)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s: cannot create: %s", path,
			    g_strerror(errno));
		return FALSE;
	}
	close(fd);
	return copy_database(src, src_path, path, error);
}

gboolean
cs_ledger_backup_file(CsLedger *ledger, const char *path, GError **error)
{
	g_return_val_if_fail(ledger != NULL, FALSE);
	return backup_to_file(ledger->db, ledger->path, path, error);
}

/* A read-only connection of its own to the certseal ledger at @ledger_path, or NULL. */
static sqlite3 *
open_backup_source(const char *ledger_path, GError **error)
{
	sqlite3 *src = NULL;
	gint64 app_id = 0;

	if (sqlite3_open_v2(ledger_path, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s: cannot open: %s", ledger_path,
			    src != NULL ? sqlite3_errmsg(src) : "out of memory");
		sqlite3_close(src);
		return NULL;
	}
	sqlite3_busy_timeout(src, CS_LEDGER_BUSY_TIMEOUT_MS);
	if (!db_query_int(src, "PRAGMA application_id", &app_id, error)) {
		sqlite3_close(src);
		return NULL;
	}
	if (app_id != CS_LEDGER_APPLICATION_ID) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s: not a certseal ledger",
			    ledger_path);
		sqlite3_close(src);
		return NULL;
	}
	return src;
}

gboolean
cs_ledger_backup_path(const char *ledger_path, const char *path, GError **error)
{
	sqlite3 *src = open_backup_source(ledger_path, error);
	gboolean ok;

	if (src == NULL)
		return FALSE;
	ok = backup_to_file(src, ledger_path, path, error);
	sqlite3_close(src);
	return ok;
}

int
cs_ledger_backup_unnamed(const char *ledger_path, const char *dir, GError **error)
{
	static const guint8 rollback[2] = {1, 1};
	g_autofree char *path = g_build_filename(dir, ".ledger-copy-XXXXXX", NULL);
	sqlite3 *src = open_backup_source(ledger_path, error);
	sqlite3 *dest = NULL;
	int fd, rc;

	if (src == NULL)
		return -1;
	fd = g_mkstemp_full(path, O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s: cannot create a file in: %s",
			    dir, g_strerror(errno));
		sqlite3_close(src);
		return -1;
	}
	/* Opened, then unnamed before a page is copied: the copy never has a name. No
	 * journal is needed beside it (a copy that fails is thrown away whole). */
	rc = sqlite3_open_v2(path, &dest, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(dest, "PRAGMA journal_mode = OFF", NULL, NULL, NULL);
	unlink(path);
	if (rc == SQLITE_OK)
		rc = backup_steps(dest, src);
	if (rc != SQLITE_OK)
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s: cannot back up: %s",
			    ledger_path, dest != NULL ? sqlite3_errmsg(dest) : sqlite3_errstr(rc));
	sqlite3_close(dest);
	sqlite3_close(src);
	/* Header bytes 18 and 19: a rollback-journal file (a single file), as
	 * cs_ledger_backup_path() writes it. */
	if (rc == SQLITE_OK && pwrite(fd, rollback, sizeof(rollback), 18) != sizeof(rollback)) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s: cannot back up: %s",
			    ledger_path, g_strerror(errno));
		rc = SQLITE_IOERR;
	}
	if (rc != SQLITE_OK) {
		close(fd);
		return -1;
	}
	return fd;
}

CsBlobs *
cs_ledger_get_blobs(CsLedger *ledger)
{
	g_return_val_if_fail(ledger != NULL, NULL);
	return ledger->blobs;
}

gpointer
cs_ledger_get_db(CsLedger *ledger)
{
	g_return_val_if_fail(ledger != NULL, NULL);
	return ledger->db;
}

/* ---- transactions --------------------------------------------------------------------- */

gboolean
cs_ledger_begin(CsLedger *ledger, GError **error)
{
	g_autoptr(CsLedgerStmtUse) stmt = NULL;
	gint64 data_version = 0;

	g_return_val_if_fail(ledger != NULL, FALSE);

	if (!sqlite3_get_autocommit(ledger->db)) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INTERNAL,
				    "ledger: a transaction is already open");
		return FALSE;
	}
	if (ledger->failed_seq > 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_UNAVAILABLE,
			    "ledger failed verification at event %" G_GINT64_FORMAT
			    "; nothing can be recorded until it is examined",
			    ledger->failed_seq);
		return FALSE;
	}
	g_hash_table_remove_all(ledger->unkeyed_orders);
	stmt = stmt_cached(ledger, STMT_BEGIN, error);
	if (stmt == NULL || !stmt_exec(ledger->db, stmt, "beginning a transaction", error))
		return FALSE;
	/* Holding the write lock now: if another connection wrote since we last looked, the
	 * cached head may be stale, and chaining onto it would break the chain. */
	if (!read_data_version(ledger, &data_version, error) ||
	    (data_version != ledger->data_version && !load_head(ledger, error))) {
		cs_ledger_rollback(ledger);
		return FALSE;
	}
	ledger->data_version = data_version;
	return TRUE;
}

gboolean
cs_ledger_commit(CsLedger *ledger, GError **error)
{
	g_autoptr(CsLedgerStmtUse) stmt = NULL;

	g_return_val_if_fail(ledger != NULL, FALSE);

	if (g_hash_table_size(ledger->unkeyed_orders) > 0) {
		GHashTableIter iter;
		gpointer id = NULL;

		g_hash_table_iter_init(&iter, ledger->unkeyed_orders);
		g_hash_table_iter_next(&iter, &id, NULL);
		/* A bug in the caller: the row would not match its events at the next check. */
		g_critical("order %s: changed without an event after the change; not committed",
			   (const char *)id);
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL,
			    "ledger: order %s changed without an event", (const char *)id);
		return FALSE;
	}
	stmt = stmt_cached(ledger, STMT_COMMIT, error);
	if (stmt != NULL && stmt_exec(ledger->db, stmt, "committing", error))
		return TRUE;
	/* Some failures (I/O, full disk) roll back by themselves: the head is stale then. */
	if (sqlite3_get_autocommit(ledger->db) && !load_head(ledger, NULL))
		g_warning("%s: cannot reload the chain head after a failed commit", ledger->path);
	return FALSE;
}

void
cs_ledger_rollback(CsLedger *ledger)
{
	g_autoptr(GError) error = NULL;

	g_return_if_fail(ledger != NULL);

	if (!sqlite3_get_autocommit(ledger->db)) {
		g_autoptr(CsLedgerStmtUse) stmt = stmt_cached(ledger, STMT_ROLLBACK, &error);

		if (stmt == NULL || !stmt_exec(ledger->db, stmt, "rolling back", &error)) {
			g_warning("%s", error->message);
			g_clear_error(&error);
		}
	}
	g_hash_table_remove_all(ledger->unkeyed_orders);
	/* Events appended in the rolled-back transaction moved the cached head. */
	if (!load_head(ledger, &error))
		g_warning("%s: %s", ledger->path, error->message);
}

/* ---- events --------------------------------------------------------------------------- */

static gboolean
insert_checkpoint(CsLedger *ledger, gint64 seq, const guint8 *hash, GError **error)
{
	g_autoptr(CsLedgerStmtUse) stmt = stmt_cached(ledger, STMT_INSERT_CHECKPOINT, error);
	g_autoptr(CsLedgerStmtUse) mac_stmt = NULL;
	g_autofree char *mac = NULL;

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_int64(stmt, 1, seq);
	sqlite3_bind_blob(stmt, 2, hash, CS_LEDGER_HASH_SIZE, SQLITE_TRANSIENT);
	if (!stmt_exec(ledger->db, stmt, "writing a checkpoint", error))
		return FALSE;
	mac_stmt = stmt_cached(ledger, STMT_INSERT_CHECKPOINT_MAC, error);
	if (mac_stmt == NULL)
		return FALSE;
	mac = position_mac(ledger->keys, MAC_CHECKPOINT, seq, hash);
	sqlite3_bind_int64(mac_stmt, 1, seq);
	bind_text(mac_stmt, 2, mac);
	return stmt_exec(ledger->db, mac_stmt, "writing a checkpoint", error);
}

/* The keyed chain head moves with every event, in the same transaction. */
static gboolean
set_head(CsLedger *ledger, gint64 seq, const guint8 *hash, GError **error)
{
	g_autoptr(CsLedgerStmtUse) stmt = stmt_cached(ledger, STMT_SET_HEAD, error);
	g_autofree char *mac = NULL;

	if (stmt == NULL)
		return FALSE;
	mac = position_mac(ledger->keys, MAC_HEAD, seq, hash);
	sqlite3_bind_int64(stmt, 1, seq);
	sqlite3_bind_blob(stmt, 2, hash, CS_LEDGER_HASH_SIZE, SQLITE_TRANSIENT);
	bind_text(stmt, 3, mac);
	return stmt_exec(ledger->db, stmt, "moving the chain head", error);
}

/* The keyed state of @order_id's row as of event @seq; NULL in @mac_out when there is no
 * such order (the event's foreign key then refuses it). */
static gboolean
event_state_mac(CsLedger *ledger, const char *order_id, gint64 seq, char **mac_out, GError **error)
{
	g_autoptr(CsLedgerStmtUse) stmt = stmt_cached(ledger, STMT_LOAD_ORDER_KEYED, error);
	int rc;

	*mac_out = NULL;
	if (stmt == NULL)
		return FALSE;
	bind_text(stmt, 1, order_id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		*mac_out = order_state_mac(ledger->keys, seq, stmt, 0);
	else if (rc != SQLITE_DONE)
		return set_sqlite_error(ledger->db, "keying an event", error);
	return TRUE;
}

gboolean
cs_ledger_append_event(CsLedger *ledger,
		       const char *order_id,
		       const char *kind,
		       const char *from,
		       const char *to,
		       const char *actor,
		       GVariant *data,
		       gint64 time_us,
		       gint64 *seq_out,
		       GError **error)
{
	g_autoptr(CsLedgerStmtUse) stmt = NULL;
	g_autofree char *data_json = NULL;
	g_autofree char *canonical = NULL;
	g_autofree char *state_mac = NULL;
	guint8 hash[CS_LEDGER_HASH_SIZE];
	gint64 seq;

	g_return_val_if_fail(ledger != NULL, FALSE);
	g_return_val_if_fail(kind != NULL, FALSE);
	g_return_val_if_fail(actor != NULL, FALSE);

	if (!require_transaction(ledger, "appending an event", error) ||
	    !check_vardict(data, "event data", error))
		return FALSE;
	if (ledger->vault == NULL) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_UNAVAILABLE,
				    "ledger: no vault key to key the chain with");
		return FALSE;
	}
	seq = ledger->last_seq + 1;
	data_json = data != NULL ? cs_json_from_variant(data) : g_strdup("{}");
	canonical =
	    cs_ledger_event_canonical(seq, time_us, order_id, kind, from, to, actor, data_json);
	if (!chain_hash(ledger->last_hash, canonical, hash, error))
		return FALSE;
	if (order_id != NULL && !event_state_mac(ledger, order_id, seq, &state_mac, error))
		return FALSE;

	stmt = stmt_cached(ledger, STMT_APPEND_EVENT, error);
	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_int64(stmt, 1, seq);
	sqlite3_bind_int64(stmt, 2, time_us);
	bind_text(stmt, 3, order_id);
	bind_text(stmt, 4, kind);
	bind_text(stmt, 5, from);
	bind_text(stmt, 6, to);
	bind_text(stmt, 7, actor);
	bind_text(stmt, 8, data_json);
	sqlite3_bind_blob(stmt, 9, hash, sizeof(hash), SQLITE_TRANSIENT);
	bind_text(stmt, 10, state_mac);
	if (!stmt_exec(ledger->db, stmt, "appending an event", error))
		return FALSE;
	if (seq % ledger->checkpoint_interval == 0 && !insert_checkpoint(ledger, seq, hash, error))
		return FALSE;
	if (!set_head(ledger, seq, hash, error))
		return FALSE;
	if (order_id != NULL)
		g_hash_table_remove(ledger->unkeyed_orders, order_id);

	ledger->last_seq = seq;
	memcpy(ledger->last_hash, hash, sizeof(hash));
	if (seq_out != NULL)
		*seq_out = seq;
	return TRUE;
}

void
cs_event_row_free(CsEventRow *row)
{
	if (row == NULL)
		return;
	g_free(row->kind);
	g_free(row->from);
	g_free(row->to);
	g_free(row->actor);
	g_free(row->data);
	g_free(row);
}

GPtrArray *
cs_ledger_order_events(CsLedger *ledger, const char *id, GError **error)
{
	g_autoptr(GPtrArray) rows =
	    g_ptr_array_new_with_free_func((GDestroyNotify)cs_event_row_free);
	g_autoptr(CsLedgerStmtUse) stmt = NULL;
	int rc;

	g_return_val_if_fail(ledger != NULL, NULL);
	g_return_val_if_fail(id != NULL, NULL);

	stmt = stmt_cached(ledger, STMT_ORDER_EVENTS, error);
	if (stmt == NULL)
		return NULL;
	bind_text(stmt, 1, id);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		CsEventRow *row = g_new0(CsEventRow, 1);

		row->seq = sqlite3_column_int64(stmt, 0);
		row->time = sqlite3_column_int64(stmt, 1);
		row->kind = column_dup(stmt, 2);
		row->from = column_dup(stmt, 3);
		row->to = column_dup(stmt, 4);
		row->actor = column_dup(stmt, 5);
		row->data = column_dup(stmt, 6);
		g_ptr_array_add(rows, row);
	}
	if (rc != SQLITE_DONE) {
		set_sqlite_error(ledger->db, "reading events", error);
		return NULL;
	}
	return g_steal_pointer(&rows);
}

/* ---- orders --------------------------------------------------------------------------- */

void
cs_order_row_free(CsOrderRow *row)
{
	if (row == NULL)
		return;
	g_free(row->id);
	g_free(row->kind);
	g_free(row->subject_type);
	g_free(row->vendor);
	g_free(row->state);
	g_clear_pointer(&row->fields, g_variant_unref);
	g_free(row);
}

static gboolean
next_order_num(CsLedger *ledger, gint64 *num, GError **error)
{
	g_autoptr(CsLedgerStmtUse) stmt = stmt_cached(ledger, STMT_NEXT_ORDER_NUM, error);

	if (stmt == NULL || !stmt_step_row(ledger->db, stmt, "numbering an order", error))
		return FALSE;
	*num = sqlite3_column_int64(stmt, 0);
	return TRUE;
}

gboolean
cs_ledger_insert_order(CsLedger *ledger,
		       const char *kind,
		       const char *subject_type,
		       const char *vendor,
		       const char *state,
		       guint32 owner_uid,
		       GVariant *fields,
		       gint64 now_us,
		       char **id_out,
		       GError **error)
{
	g_autoptr(CsLedgerStmtUse) stmt = NULL;
	g_autoptr(GDateTime) date = NULL;
	g_autofree char *day = NULL;
	g_autofree char *id = NULL;
	g_autofree char *fields_text = NULL;
	gint64 num = 0;

	g_return_val_if_fail(ledger != NULL, FALSE);
	g_return_val_if_fail(kind != NULL && subject_type != NULL && state != NULL, FALSE);

	if (!require_transaction(ledger, "inserting an order", error) ||
	    !check_vardict(fields, "order fields", error))
		return FALSE;
	/* Numbered before inserting, inside the write lock, so the id is final at insert. */
	if (!next_order_num(ledger, &num, error))
		return FALSE;
	date = g_date_time_new_from_unix_local(now_us / G_USEC_PER_SEC);
	if (date == NULL) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "ledger: time out of range");
		return FALSE;
	}
	day = g_date_time_format(date, "%Y%m%d");
	id = g_strdup_printf("CS%s%06" G_GINT64_FORMAT, day, num);
	fields_text = vardict_to_text(fields);

	stmt = stmt_cached(ledger, STMT_INSERT_ORDER, error);
	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_int64(stmt, 1, num);
	bind_text(stmt, 2, id);
	bind_text(stmt, 3, kind);
	bind_text(stmt, 4, subject_type);
	bind_text(stmt, 5, vendor != NULL ? vendor : "");
	bind_text(stmt, 6, state);
	sqlite3_bind_int64(stmt, 7, owner_uid);
	bind_text(stmt, 8, fields_text);
	sqlite3_bind_int64(stmt, 9, now_us);
	if (!stmt_exec(ledger->db, stmt, "inserting an order", error))
		return FALSE;
	g_hash_table_add(ledger->unkeyed_orders, g_strdup(id));
	if (id_out != NULL)
		*id_out = g_steal_pointer(&id);
	return TRUE;
}

gboolean
cs_ledger_update_order(CsLedger *ledger,
		       const char *id,
		       const char *state,
		       GVariant *fields,
		       gint64 now_us,
		       GError **error)
{
	g_autoptr(CsLedgerStmtUse) stmt = NULL;
	g_autofree char *fields_text = NULL;

	g_return_val_if_fail(ledger != NULL, FALSE);
	g_return_val_if_fail(id != NULL, FALSE);

	if (!require_transaction(ledger, "updating an order", error) ||
	    !check_vardict(fields, "order fields", error))
		return FALSE;
	/* NULL state or fields keep what is stored (COALESCE in the statement). */
	if (fields != NULL)
		fields_text = vardict_to_text(fields);
	stmt = stmt_cached(ledger, STMT_UPDATE_ORDER, error);
	if (stmt == NULL)
		return FALSE;
	bind_text(stmt, 1, id);
	bind_text(stmt, 2, state);
	bind_text(stmt, 3, fields_text);
	sqlite3_bind_int64(stmt, 4, now_us);
	if (!stmt_exec(ledger->db, stmt, "updating an order", error))
		return FALSE;
	if (sqlite3_changes(ledger->db) == 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_NOT_FOUND, "order %s: not found", id);
		return FALSE;
	}
	/* Only the timestamp: the keyed state is unchanged. */
	if (state != NULL || fields != NULL)
		g_hash_table_add(ledger->unkeyed_orders, g_strdup(id));
	return TRUE;
}

CsOrderRow *
cs_ledger_load_order(CsLedger *ledger, const char *id, GError **error)
{
	g_autoptr(CsLedgerStmtUse) stmt = NULL;
	g_autoptr(CsOrderRow) row = NULL;
	int rc;

	g_return_val_if_fail(ledger != NULL, NULL);
	g_return_val_if_fail(id != NULL, NULL);

	stmt = stmt_cached(ledger, STMT_LOAD_ORDER, error);
	if (stmt == NULL)
		return NULL;
	bind_text(stmt, 1, id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE) {
		g_set_error(error, CS_ERROR, CS_ERROR_NOT_FOUND, "order %s: not found", id);
		return NULL;
	}
	if (rc != SQLITE_ROW) {
		set_sqlite_error(ledger->db, "loading an order", error);
		return NULL;
	}
	row = g_new0(CsOrderRow, 1);
	row->id = column_dup(stmt, 0);
	row->kind = column_dup(stmt, 1);
	row->subject_type = column_dup(stmt, 2);
	row->vendor = column_dup(stmt, 3);
	if (row->vendor == NULL)
		row->vendor = g_strdup("");
	row->state = column_dup(stmt, 4);
	row->owner_uid = (guint32)sqlite3_column_int64(stmt, 5);
	row->created = sqlite3_column_int64(stmt, 7);
	row->updated = sqlite3_column_int64(stmt, 8);
	row->fields = vardict_from_text((const char *)sqlite3_column_text(stmt, 6), id, error);
	if (row->fields == NULL)
		return NULL;
	return g_steal_pointer(&row);
}

/* The first column of every row @stmt yields, as strings. */
static GPtrArray *
collect_ids(CsLedger *ledger, sqlite3_stmt *stmt, GError **error)
{
	g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func(g_free);
	int rc;

	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		g_ptr_array_add(ids, column_dup(stmt, 0));
	if (rc != SQLITE_DONE) {
		set_sqlite_error(ledger->db, "listing orders", error);
		return NULL;
	}
	return g_steal_pointer(&ids);
}

GPtrArray *
cs_ledger_list_orders(CsLedger *ledger, const char *state, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;

	g_return_val_if_fail(ledger != NULL, NULL);

	/* Two statements rather than "?1 IS NULL OR state = ?1", which cannot use the
	 * index on state that restart recovery relies on. */
	stmt = stmt_prepare(ledger->db,
			    state == NULL ? "SELECT id FROM orders ORDER BY num"
					  : "SELECT id FROM orders WHERE state = ?1 ORDER BY num",
			    error);
	if (stmt == NULL)
		return NULL;
	if (state != NULL)
		bind_text(stmt, 1, state);
	return collect_ids(ledger, stmt, error);
}

GPtrArray *
cs_ledger_list_orders_owned(CsLedger *ledger, guint32 owner_uid, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;

	g_return_val_if_fail(ledger != NULL, NULL);

	stmt = stmt_prepare(ledger->db, "SELECT id FROM orders WHERE owner_uid = ?1 ORDER BY num",
			    error);
	if (stmt == NULL)
		return NULL;
	sqlite3_bind_int64(stmt, 1, owner_uid);
	return collect_ids(ledger, stmt, error);
}

/* ---- subjects ------------------------------------------------------------------------- */

GVariant *
cs_ledger_lookup_subject(CsLedger *ledger,
			 const char *subject_type,
			 const char *id_number,
			 GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;
	g_autofree char *what = NULL;
	int rc;

	g_return_val_if_fail(ledger != NULL, NULL);
	g_return_val_if_fail(subject_type != NULL && id_number != NULL, NULL);

	stmt = stmt_prepare(ledger->db,
			    "SELECT identity FROM subjects "
			    "WHERE subject_type = ?1 AND id_number = ?2",
			    error);
	if (stmt == NULL)
		return NULL;
	bind_text(stmt, 1, subject_type);
	bind_text(stmt, 2, id_number);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE)
		return NULL;
	if (rc != SQLITE_ROW) {
		set_sqlite_error(ledger->db, "looking up a subject", error);
		return NULL;
	}
	/* The message names the type only: an ID number is personal data. */
	what = g_strdup_printf("a registered %s subject", subject_type);
	return vardict_from_text((const char *)sqlite3_column_text(stmt, 0), what, error);
}

gboolean
cs_ledger_record_subject(CsLedger *ledger,
			 const char *subject_type,
			 const char *id_number,
			 GVariant *identity,
			 gint64 now_us,
			 GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;
	g_autofree char *identity_text = NULL;

	g_return_val_if_fail(ledger != NULL, FALSE);
	g_return_val_if_fail(subject_type != NULL && id_number != NULL, FALSE);

	if (!require_transaction(ledger, "recording a subject", error) ||
	    !check_vardict(identity, "subject identity", error))
		return FALSE;
	identity_text = vardict_to_text(identity);
	/* An upsert rather than INSERT OR REPLACE: a replacement keeps the first "created". */
	stmt = stmt_prepare(ledger->db,
			    "INSERT INTO subjects (subject_type, id_number, identity, created, "
			    "updated) VALUES (?1, ?2, ?3, ?4, ?4) "
			    "ON CONFLICT (subject_type, id_number) DO UPDATE SET "
			    "identity = excluded.identity, updated = excluded.updated",
			    error);
	if (stmt == NULL)
		return FALSE;
	bind_text(stmt, 1, subject_type);
	bind_text(stmt, 2, id_number);
	bind_text(stmt, 3, identity_text);
	sqlite3_bind_int64(stmt, 4, now_us);
	return stmt_exec(ledger->db, stmt, "recording a subject", error);
}

/* ---- secrets -------------------------------------------------------------------------- */

static char *
secret_aad(gint64 id, const char *purpose)
{
	return g_strdup_printf("secret:%" G_GINT64_FORMAT ":%s", id, purpose);
}

static gboolean
require_vault(CsLedger *ledger, GError **error)
{
	if (ledger->vault != NULL)
		return TRUE;
	g_set_error_literal(error, CS_ERROR, CS_ERROR_UNAVAILABLE,
			    "ledger: opened without a vault; secrets are unavailable");
	return FALSE;
}

gboolean
cs_ledger_seal_secret(CsLedger *ledger,
		      const char *purpose,
		      const char *order_id,
		      const guint8 *data,
		      gsize len,
		      gint64 now_us,
		      gint64 *id_out,
		      GError **error)
{
	g_autoptr(sqlite3_stmt) insert = NULL;
	g_autoptr(sqlite3_stmt) update = NULL;
	g_autoptr(GBytes) sealed = NULL;
	g_autofree char *aad = NULL;
	gint64 id;

	g_return_val_if_fail(ledger != NULL, FALSE);
	g_return_val_if_fail(purpose != NULL, FALSE);

	if (!require_transaction(ledger, "sealing a secret", error) ||
	    !require_vault(ledger, error))
		return FALSE;
	/* The row first: its id goes into the associated data that binds the seal to it. */
	insert = stmt_prepare(ledger->db,
			      "INSERT INTO secrets (purpose, order_id, sealed, created) "
			      "VALUES (?1, ?2, NULL, ?3)",
			      error);
	if (insert == NULL)
		return FALSE;
	bind_text(insert, 1, purpose);
	bind_text(insert, 2, order_id);
	sqlite3_bind_int64(insert, 3, now_us);
	if (!stmt_exec(ledger->db, insert, "storing a secret", error))
		return FALSE;
	id = sqlite3_last_insert_rowid(ledger->db);

	aad = secret_aad(id, purpose);
	sealed = cs_vault_seal(ledger->vault, aad, data, len, error);
	if (sealed == NULL)
		return FALSE;
	update = stmt_prepare(ledger->db, "UPDATE secrets SET sealed = ?2 WHERE id = ?1", error);
	if (update == NULL)
		return FALSE;
	sqlite3_bind_int64(update, 1, id);
	sqlite3_bind_blob(update, 2, g_bytes_get_data(sealed, NULL), (int)g_bytes_get_size(sealed),
			  SQLITE_TRANSIENT);
	if (!stmt_exec(ledger->db, update, "storing a secret", error))
		return FALSE;
	if (id_out != NULL)
		*id_out = id;
	return TRUE;
}

GBytes *
cs_ledger_open_secret(CsLedger *ledger, gint64 id, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;
	g_autoptr(GBytes) sealed = NULL;
	g_autofree char *aad = NULL;
	int rc;

	g_return_val_if_fail(ledger != NULL, NULL);

	if (!require_vault(ledger, error))
		return NULL;
	stmt = stmt_prepare(ledger->db, "SELECT purpose, sealed, wiped FROM secrets WHERE id = ?1",
			    error);
	if (stmt == NULL)
		return NULL;
	sqlite3_bind_int64(stmt, 1, id);
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		set_sqlite_error(ledger->db, "reading a secret", error);
		return NULL;
	}
	if (rc == SQLITE_DONE || sqlite3_column_type(stmt, 2) != SQLITE_NULL ||
	    sqlite3_column_type(stmt, 1) != SQLITE_BLOB) {
		g_set_error(error, CS_ERROR, CS_ERROR_NOT_FOUND, "secret %" G_GINT64_FORMAT ": %s",
			    id, rc == SQLITE_DONE ? "not found" : "wiped");
		return NULL;
	}
	aad = secret_aad(id, (const char *)sqlite3_column_text(stmt, 0));
	sealed = g_bytes_new(sqlite3_column_blob(stmt, 1), (gsize)sqlite3_column_bytes(stmt, 1));
	return cs_vault_unseal(ledger->vault, aad, sealed, error);
}

gboolean
cs_ledger_check_vault_key(CsLedger *ledger, GError **error)
{
	g_autoptr(GError) local = NULL;
	g_autoptr(GBytes) plain = NULL;
	gint64 id = 0;

	g_return_val_if_fail(ledger != NULL, FALSE);

	if (!db_query_int(ledger->db,
			  "SELECT COALESCE(MAX(id), 0) FROM secrets "
			  "WHERE wiped IS NULL AND sealed IS NOT NULL",
			  &id, error))
		return FALSE;
	if (id == 0)
		return TRUE;
	plain = cs_ledger_open_secret(ledger, id, &local);
	if (plain != NULL)
		return TRUE;
	g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL,
		    "%s: not the key this state directory's secrets were sealed with (secret "
		    "%" G_GINT64_FORMAT " of %s does not open with it: %s); restore the right key "
		    "from a backup",
		    cs_vault_get_key_path(ledger->vault), id, ledger->path, local->message);
	return FALSE;
}

gboolean
cs_ledger_wipe_secret(CsLedger *ledger, gint64 id, gint64 now_us, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;
	g_autoptr(sqlite3_stmt) check = NULL;

	g_return_val_if_fail(ledger != NULL, FALSE);

	if (!require_transaction(ledger, "wiping a secret", error))
		return FALSE;
	stmt = stmt_prepare(ledger->db,
			    "UPDATE secrets SET sealed = NULL, wiped = ?2 "
			    "WHERE id = ?1 AND wiped IS NULL",
			    error);
	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_int64(stmt, 2, now_us);
	if (!stmt_exec(ledger->db, stmt, "wiping a secret", error))
		return FALSE;
	if (sqlite3_changes(ledger->db) > 0)
		return TRUE;
	/* Wiping twice is harmless; wiping what never existed is a caller's mistake. */
	check = stmt_prepare(ledger->db, "SELECT count(*) FROM secrets WHERE id = ?1", error);
	if (check == NULL)
		return FALSE;
	sqlite3_bind_int64(check, 1, id);
	if (!stmt_step_row(ledger->db, check, "wiping a secret", error))
		return FALSE;
	if (sqlite3_column_int64(check, 0) == 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_NOT_FOUND,
			    "secret %" G_GINT64_FORMAT ": not found", id);
		return FALSE;
	}
	return TRUE;
}

/* ---- certificates (schema 4) ----------------------------------------------------------- */

void
cs_cert_row_free(CsCertRow *row)
{
	if (row == NULL)
		return;
	g_free(row->serial);
	g_free(row->vendor);
	g_free(row->role);
	g_free(row->subject);
	g_free(row->subject_type);
	g_free(row->id_number);
	g_free(row->order_id);
	g_free(row->status);
	g_free(row->reason);
	g_clear_pointer(&row->der, g_bytes_unref);
	g_free(row);
}

#define CERT_COLUMNS                                                                               \
	"serial, vendor, role, subject, subject_type, id_number, order_id, not_before, "           \
	"not_after, status, revoked_at, reason, der, created"

static CsCertRow *
cert_row_from_stmt(sqlite3_stmt *stmt)
{
	CsCertRow *row = g_new0(CsCertRow, 1);

	row->serial = column_dup(stmt, 0);
	row->vendor = column_dup(stmt, 1);
	row->role = column_dup(stmt, 2);
	row->subject = column_dup(stmt, 3);
	row->subject_type = column_dup(stmt, 4);
	row->id_number = column_dup(stmt, 5);
	row->order_id = column_dup(stmt, 6);
	row->not_before = sqlite3_column_int64(stmt, 7);
	row->not_after = sqlite3_column_int64(stmt, 8);
	row->status = column_dup(stmt, 9);
	row->revoked_at = sqlite3_column_int64(stmt, 10);
	row->reason = column_dup(stmt, 11);
	row->der =
	    g_bytes_new(sqlite3_column_blob(stmt, 12), (gsize)sqlite3_column_bytes(stmt, 12));
	row->created = sqlite3_column_int64(stmt, 13);
	return row;
}

gboolean
cs_ledger_insert_certificate(CsLedger *ledger, const CsCertRow *row, GError **error)
{
	g_autoptr(CsLedgerStmtUse) stmt = NULL;
	gsize len = 0;
	gconstpointer der;

	g_return_val_if_fail(ledger != NULL && row != NULL, FALSE);
	g_return_val_if_fail(row->serial != NULL && row->vendor != NULL && row->der != NULL, FALSE);

	if (!require_transaction(ledger, "recording a certificate", error))
		return FALSE;
	stmt = stmt_cached(ledger, STMT_INSERT_CERTIFICATE, error);
	if (stmt == NULL)
		return FALSE;
	der = g_bytes_get_data(row->der, &len);
	bind_text(stmt, 1, row->serial);
	bind_text(stmt, 2, row->vendor);
	bind_text(stmt, 3, row->role);
	bind_text(stmt, 4, row->subject);
	bind_text(stmt, 5, row->subject_type);
	bind_text(stmt, 6, row->id_number);
	bind_text(stmt, 7, row->order_id);
	sqlite3_bind_int64(stmt, 8, row->not_before);
	sqlite3_bind_int64(stmt, 9, row->not_after);
	sqlite3_bind_blob(stmt, 10, der, (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 11, row->created);
	if (sqlite3_step(stmt) == SQLITE_DONE)
		return TRUE;
	if (sqlite3_extended_errcode(ledger->db) == SQLITE_CONSTRAINT_PRIMARYKEY) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL,
			    "certificate serial %s: already used", row->serial);
		return FALSE;
	}
	return set_sqlite_error(ledger->db, "recording a certificate", error);
}

gboolean
cs_ledger_serial_used(CsLedger *ledger, const char *serial, gboolean *used, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;

	g_return_val_if_fail(ledger != NULL && serial != NULL, FALSE);

	stmt =
	    stmt_prepare(ledger->db, "SELECT count(*) FROM certificates WHERE serial = ?1", error);
	if (stmt == NULL)
		return FALSE;
	bind_text(stmt, 1, serial);
	if (!stmt_step_row(ledger->db, stmt, "looking up a serial", error))
		return FALSE;
	*used = sqlite3_column_int64(stmt, 0) > 0;
	return TRUE;
}

CsCertRow *
cs_ledger_load_certificate(CsLedger *ledger, const char *serial, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;
	int rc;

	g_return_val_if_fail(ledger != NULL && serial != NULL, NULL);

	stmt = stmt_prepare(ledger->db,
			    "SELECT " CERT_COLUMNS " FROM certificates WHERE serial = ?1", error);
	if (stmt == NULL)
		return NULL;
	bind_text(stmt, 1, serial);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		return cert_row_from_stmt(stmt);
	if (rc == SQLITE_DONE)
		g_set_error(error, CS_ERROR, CS_ERROR_NOT_FOUND, "certificate %s: not found",
			    serial);
	else
		set_sqlite_error(ledger->db, "loading a certificate", error);
	return NULL;
}

static GPtrArray *
cert_rows(CsLedger *ledger, sqlite3_stmt *stmt, GError **error)
{
	g_autoptr(GPtrArray) rows =
	    g_ptr_array_new_with_free_func((GDestroyNotify)cs_cert_row_free);
	int rc;

	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		g_ptr_array_add(rows, cert_row_from_stmt(stmt));
	if (rc != SQLITE_DONE) {
		set_sqlite_error(ledger->db, "reading certificates", error);
		return NULL;
	}
	return g_steal_pointer(&rows);
}

GPtrArray *
cs_ledger_find_certificates(CsLedger *ledger,
			    const char *vendor,
			    const char *subject_type,
			    const char *id_number,
			    GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;

	g_return_val_if_fail(ledger != NULL && subject_type != NULL && id_number != NULL, NULL);

	/* vendor "" = every vendor (docs/architecture.md §1.6). */
	stmt = stmt_prepare(ledger->db,
			    "SELECT " CERT_COLUMNS " FROM certificates WHERE role = 'subscriber' "
			    "AND (?1 = '' OR vendor = ?1) AND subject_type = ?2 AND id_number = ?3 "
			    "ORDER BY created, serial",
			    error);
	if (stmt == NULL)
		return NULL;
	bind_text(stmt, 1, vendor != NULL ? vendor : "");
	bind_text(stmt, 2, subject_type);
	bind_text(stmt, 3, id_number);
	return cert_rows(ledger, stmt, error);
}

GPtrArray *
cs_ledger_list_valid_subscribers(CsLedger *ledger,
				 gint64 not_after_from,
				 gint64 not_after_to,
				 GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;

	g_return_val_if_fail(ledger != NULL, NULL);

	stmt = stmt_prepare(ledger->db,
			    "SELECT " CERT_COLUMNS " FROM certificates WHERE role = 'subscriber' "
			    "AND status = 'valid' AND not_after BETWEEN ?1 AND ?2 "
			    "ORDER BY not_after, serial",
			    error);
	if (stmt == NULL)
		return NULL;
	sqlite3_bind_int64(stmt, 1, not_after_from);
	sqlite3_bind_int64(stmt, 2, not_after_to);
	return cert_rows(ledger, stmt, error);
}

GPtrArray *
cs_ledger_certificate_order_events(
    CsLedger *ledger, const char *kind, gint64 not_after_from, gint64 not_after_to, GError **error)
{
	g_autoptr(GPtrArray) rows =
	    g_ptr_array_new_with_free_func((GDestroyNotify)cs_event_row_free);
	g_autoptr(sqlite3_stmt) stmt = NULL;
	int rc;

	g_return_val_if_fail(ledger != NULL && kind != NULL, NULL);

	/* Through events_order_id: only the events of the orders of those certificates. */
	stmt = stmt_prepare(
	    ledger->db,
	    "SELECT DISTINCT e.seq, e.time, e.kind, e.from_state, e.to_state, e.actor, e.data "
	    "FROM certificates c JOIN events e ON e.order_id = c.order_id "
	    "WHERE c.role = 'subscriber' AND c.status = 'valid' AND c.not_after BETWEEN ?2 AND ?3 "
	    "AND e.kind = ?1 ORDER BY e.seq",
	    error);
	if (stmt == NULL)
		return NULL;
	bind_text(stmt, 1, kind);
	sqlite3_bind_int64(stmt, 2, not_after_from);
	sqlite3_bind_int64(stmt, 3, not_after_to);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		CsEventRow *row = g_new0(CsEventRow, 1);

		row->seq = sqlite3_column_int64(stmt, 0);
		row->time = sqlite3_column_int64(stmt, 1);
		row->kind = column_dup(stmt, 2);
		row->from = column_dup(stmt, 3);
		row->to = column_dup(stmt, 4);
		row->actor = column_dup(stmt, 5);
		row->data = column_dup(stmt, 6);
		g_ptr_array_add(rows, row);
	}
	if (rc != SQLITE_DONE) {
		set_sqlite_error(ledger->db, "reading events", error);
		return NULL;
	}
	return g_steal_pointer(&rows);
}

GPtrArray *
cs_ledger_list_revoked(CsLedger *ledger, const char *vendor, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;

	g_return_val_if_fail(ledger != NULL && vendor != NULL, NULL);

	stmt = stmt_prepare(
	    ledger->db,
	    "SELECT " CERT_COLUMNS " FROM certificates WHERE vendor = ?1 "
	    "AND status = 'revoked' AND role = 'subscriber' ORDER BY revoked_at, serial",
	    error);
	if (stmt == NULL)
		return NULL;
	bind_text(stmt, 1, vendor);
	return cert_rows(ledger, stmt, error);
}

gboolean
cs_ledger_revoke_certificate(
    CsLedger *ledger, const char *serial, const char *reason, gint64 revoked_at, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;

	g_return_val_if_fail(ledger != NULL && serial != NULL && reason != NULL, FALSE);

	if (!require_transaction(ledger, "revoking a certificate", error))
		return FALSE;
	stmt = stmt_prepare(ledger->db,
			    "UPDATE certificates SET status = 'revoked', revoked_at = ?2, "
			    "reason = ?3 WHERE serial = ?1 AND status = 'valid'",
			    error);
	if (stmt == NULL)
		return FALSE;
	bind_text(stmt, 1, serial);
	sqlite3_bind_int64(stmt, 2, revoked_at);
	bind_text(stmt, 3, reason);
	if (!stmt_exec(ledger->db, stmt, "revoking a certificate", error))
		return FALSE;
	if (sqlite3_changes(ledger->db) == 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_WRONG_STATE,
			    "certificate %s: not found or already revoked", serial);
		return FALSE;
	}
	return TRUE;
}

gboolean
cs_ledger_next_crl_number(CsLedger *ledger, const char *vendor, gint64 *number, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;

	g_return_val_if_fail(ledger != NULL && vendor != NULL, FALSE);

	if (!require_transaction(ledger, "numbering a CRL", error))
		return FALSE;
	stmt = stmt_prepare(ledger->db,
			    "INSERT INTO crl_numbers (vendor, number) VALUES (?1, 1) "
			    "ON CONFLICT (vendor) DO UPDATE SET number = number + 1 "
			    "RETURNING number",
			    error);
	if (stmt == NULL)
		return FALSE;
	bind_text(stmt, 1, vendor);
	if (!stmt_step_row(ledger->db, stmt, "numbering a CRL", error))
		return FALSE;
	*number = sqlite3_column_int64(stmt, 0);
	/* RETURNING: the statement must run to completion before the transaction commits. */
	while (sqlite3_step(stmt) == SQLITE_ROW)
		;
	return TRUE;
}

/* ---- materials (schema 6) ---------------------------------------------------------------- */

void
cs_material_row_free(CsMaterialRow *row)
{
	if (row == NULL)
		return;
	g_free(row->order_id);
	g_free(row->kind);
	g_free(row->filename);
	g_free(row->mime);
	g_free(row->sha256);
	g_free(row->actor);
	g_clear_pointer(&row->data, g_bytes_unref);
	g_free(row);
}

gboolean
cs_ledger_insert_material(CsLedger *ledger, const CsMaterialRow *row, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;

	g_return_val_if_fail(ledger != NULL && row != NULL, FALSE);
	g_return_val_if_fail(row->order_id != NULL && row->kind != NULL && row->sha256 != NULL,
			     FALSE);

	if (!require_transaction(ledger, "recording a material", error))
		return FALSE;
	/* The bytes are stored (and synced) first: a row never names a missing file. */
	if (!cs_blobs_contains(ledger->blobs, row->sha256)) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL,
			    "material %s: not in the material store", row->sha256);
		return FALSE;
	}
	stmt = stmt_prepare(ledger->db,
			    "INSERT INTO materials (order_id, kind, filename, mime, size, sha256, "
			    "created, actor) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
			    error);
	if (stmt == NULL)
		return FALSE;
	bind_text(stmt, 1, row->order_id);
	bind_text(stmt, 2, row->kind);
	bind_text(stmt, 3, row->filename);
	bind_text(stmt, 4, row->mime);
	sqlite3_bind_int64(stmt, 5, row->size);
	bind_text(stmt, 6, row->sha256);
	sqlite3_bind_int64(stmt, 7, row->created);
	bind_text(stmt, 8, row->actor);
	return stmt_exec(ledger->db, stmt, "recording a material", error);
}

static CsMaterialRow *
material_row_from_stmt(sqlite3_stmt *stmt)
{
	CsMaterialRow *row = g_new0(CsMaterialRow, 1);

	row->order_id = column_dup(stmt, 0);
	row->kind = column_dup(stmt, 1);
	row->filename = column_dup(stmt, 2);
	row->mime = column_dup(stmt, 3);
	row->size = sqlite3_column_int64(stmt, 4);
	row->sha256 = column_dup(stmt, 5);
	row->created = sqlite3_column_int64(stmt, 6);
	row->actor = column_dup(stmt, 7);
	return row;
}

GPtrArray *
cs_ledger_list_materials(CsLedger *ledger, const char *order_id, GError **error)
{
	g_autoptr(GPtrArray) rows =
	    g_ptr_array_new_with_free_func((GDestroyNotify)cs_material_row_free);
	g_autoptr(CsLedgerStmtUse) stmt = NULL;
	int rc;

	g_return_val_if_fail(ledger != NULL && order_id != NULL, NULL);

	stmt = stmt_cached(ledger, STMT_LIST_MATERIALS, error);
	if (stmt == NULL)
		return NULL;
	bind_text(stmt, 1, order_id);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		g_ptr_array_add(rows, material_row_from_stmt(stmt));
	if (rc != SQLITE_DONE) {
		set_sqlite_error(ledger->db, "listing materials", error);
		return NULL;
	}
	return g_steal_pointer(&rows);
}

CsMaterialRow *
cs_ledger_load_material(CsLedger *ledger, const char *order_id, const char *kind, GError **error)
{
	g_autoptr(CsLedgerStmtUse) stmt = NULL;
	int rc;

	g_return_val_if_fail(ledger != NULL && order_id != NULL && kind != NULL, NULL);

	stmt = stmt_cached(ledger, STMT_LOAD_MATERIAL, error);
	if (stmt == NULL)
		return NULL;
	bind_text(stmt, 1, order_id);
	bind_text(stmt, 2, kind);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		g_autoptr(CsMaterialRow) row = material_row_from_stmt(stmt);
		g_autoptr(GError) local = NULL;

		row->data = cs_blobs_load(ledger->blobs, row->sha256, &local);
		if (row->data == NULL) {
			/* Named by the row it belongs to; a missing file is damage, not absence. */
			g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s of order %s: %s", kind,
				    order_id, local->message);
			return NULL;
		}
		return g_steal_pointer(&row);
	}
	if (rc == SQLITE_DONE)
		g_set_error(error, CS_ERROR, CS_ERROR_NOT_FOUND,
			    "%s: order %s has no such material", kind, order_id);
	else
		set_sqlite_error(ledger->db, "loading a material", error);
	return NULL;
}

/* ---- order attributes, codes, invoices (schema 7) --------------------------------------- */

gboolean
cs_ledger_set_attr(CsLedger *ledger,
		   const char *order_id,
		   const char *name,
		   const char *value,
		   gint64 now_us,
		   GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;

	g_return_val_if_fail(ledger != NULL && order_id != NULL && name != NULL, FALSE);

	if (!require_transaction(ledger, "setting an order attribute", error))
		return FALSE;
	if (value == NULL) {
		stmt = stmt_prepare(
		    ledger->db, "DELETE FROM order_attrs WHERE order_id = ?1 AND name = ?2", error);
	} else {
		stmt =
		    stmt_prepare(ledger->db,
				 "INSERT INTO order_attrs (order_id, name, value, updated) "
				 "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (order_id, name) "
				 "DO UPDATE SET value = excluded.value, updated = excluded.updated",
				 error);
	}
	if (stmt == NULL)
		return FALSE;
	bind_text(stmt, 1, order_id);
	bind_text(stmt, 2, name);
	if (value != NULL) {
		bind_text(stmt, 3, value);
		sqlite3_bind_int64(stmt, 4, now_us);
	}
	return stmt_exec(ledger->db, stmt, "setting an order attribute", error);
}

GHashTable *
cs_ledger_load_attrs(CsLedger *ledger, const char *order_id, GError **error)
{
	g_autoptr(GHashTable) attrs =
	    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	g_autoptr(sqlite3_stmt) stmt = NULL;
	int rc;

	g_return_val_if_fail(ledger != NULL && order_id != NULL, NULL);

	stmt = stmt_prepare(ledger->db, "SELECT name, value FROM order_attrs WHERE order_id = ?1",
			    error);
	if (stmt == NULL)
		return NULL;
	bind_text(stmt, 1, order_id);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		g_hash_table_insert(attrs, column_dup(stmt, 0), column_dup(stmt, 1));
	if (rc != SQLITE_DONE) {
		set_sqlite_error(ledger->db, "loading order attributes", error);
		return NULL;
	}
	return g_steal_pointer(&attrs);
}

gboolean
cs_ledger_find_attr(
    CsLedger *ledger, const char *name, char **order_id, char **value, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;
	int rc;

	g_return_val_if_fail(ledger != NULL && name != NULL, FALSE);

	stmt = stmt_prepare(ledger->db,
			    "SELECT order_id, value FROM order_attrs WHERE name = ?1 "
			    "ORDER BY updated DESC, rowid DESC LIMIT 1",
			    error);
	if (stmt == NULL)
		return FALSE;
	bind_text(stmt, 1, name);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		if (order_id != NULL)
			*order_id = column_dup(stmt, 0);
		if (value != NULL)
			*value = column_dup(stmt, 1);
		return TRUE;
	}
	if (rc != SQLITE_DONE)
		return set_sqlite_error(ledger->db, "finding an order attribute", error);
	g_set_error(error, CS_ERROR, CS_ERROR_NOT_FOUND, "no order has the attribute %s", name);
	return FALSE;
}

gboolean
cs_ledger_count_events_with_attr(CsLedger *ledger,
				 const char *event_kind,
				 const char *attr,
				 const char *value,
				 gint64 since_us,
				 guint *count,
				 GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;
	int rc;

	g_return_val_if_fail(ledger != NULL && event_kind != NULL && attr != NULL, FALSE);

	stmt = stmt_prepare(ledger->db,
			    "SELECT count(*) FROM events e JOIN order_attrs a "
			    "ON a.order_id = e.order_id AND a.name = ?2 AND a.value = ?3 "
			    "WHERE e.kind = ?1 AND e.time >= ?4",
			    error);
	if (stmt == NULL)
		return FALSE;
	bind_text(stmt, 1, event_kind);
	bind_text(stmt, 2, attr);
	bind_text(stmt, 3, value);
	sqlite3_bind_int64(stmt, 4, since_us);
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW)
		return set_sqlite_error(ledger->db, "counting events", error);
	*count = (guint)sqlite3_column_int64(stmt, 0);
	return TRUE;
}

void
cs_code_row_free(CsCodeRow *row)
{
	if (row == NULL)
		return;
	g_free(row->code_hash);
	g_free(row->state);
	g_free(row->phone);
	g_free(row);
}

gboolean
cs_ledger_insert_code(CsLedger *ledger,
		      const char *order_id,
		      const char *purpose,
		      const char *code_hash,
		      gint64 created_us,
		      gint64 expires_us,
		      GError **error)
{
	g_autoptr(sqlite3_stmt) replace = NULL;
	g_autoptr(sqlite3_stmt) stmt = NULL;

	g_return_val_if_fail(ledger != NULL && order_id != NULL && purpose != NULL, FALSE);

	if (!require_transaction(ledger, "recording a code", error))
		return FALSE;
	/* A new code replaces the order's open one: only the latest code works. */
	replace = stmt_prepare(ledger->db,
			       "UPDATE codes SET state = 'replaced' WHERE order_id = ?1 "
			       "AND purpose = ?2 AND state = 'open'",
			       error);
	if (replace == NULL)
		return FALSE;
	bind_text(replace, 1, order_id);
	bind_text(replace, 2, purpose);
	if (!stmt_exec(ledger->db, replace, "replacing a code", error))
		return FALSE;
	stmt = stmt_prepare(ledger->db,
			    "INSERT INTO codes (order_id, purpose, code_hash, created, expires, "
			    "tries, state) VALUES (?1, ?2, ?3, ?4, ?5, 0, 'open')",
			    error);
	if (stmt == NULL)
		return FALSE;
	bind_text(stmt, 1, order_id);
	bind_text(stmt, 2, purpose);
	bind_text(stmt, 3, code_hash);
	sqlite3_bind_int64(stmt, 4, created_us);
	sqlite3_bind_int64(stmt, 5, expires_us);
	return stmt_exec(ledger->db, stmt, "recording a code", error);
}

CsCodeRow *
cs_ledger_latest_code(CsLedger *ledger, const char *order_id, const char *purpose, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;
	CsCodeRow *row;
	int rc;

	g_return_val_if_fail(ledger != NULL && order_id != NULL && purpose != NULL, NULL);

	stmt = stmt_prepare(ledger->db,
			    "SELECT id, code_hash, created, expires, tries, state FROM codes "
			    "WHERE order_id = ?1 AND purpose = ?2 ORDER BY id DESC LIMIT 1",
			    error);
	if (stmt == NULL)
		return NULL;
	bind_text(stmt, 1, order_id);
	bind_text(stmt, 2, purpose);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE) {
		g_set_error(error, CS_ERROR, CS_ERROR_NOT_FOUND, "order %s has no %s code",
			    order_id, purpose);
		return NULL;
	}
	if (rc != SQLITE_ROW) {
		set_sqlite_error(ledger->db, "reading a code", error);
		return NULL;
	}
	row = g_new0(CsCodeRow, 1);
	row->id = sqlite3_column_int64(stmt, 0);
	row->code_hash = column_dup(stmt, 1);
	row->created = sqlite3_column_int64(stmt, 2);
	row->expires = sqlite3_column_int64(stmt, 3);
	row->tries = sqlite3_column_int64(stmt, 4);
	row->state = column_dup(stmt, 5);
	return row;
}

gboolean
cs_ledger_update_code(CsLedger *ledger, gint64 id, gint64 tries, const char *state, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;

	g_return_val_if_fail(ledger != NULL && state != NULL, FALSE);

	if (!require_transaction(ledger, "updating a code", error))
		return FALSE;
	stmt = stmt_prepare(ledger->db, "UPDATE codes SET tries = ?2, state = ?3 WHERE id = ?1",
			    error);
	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_int64(stmt, 2, tries);
	bind_text(stmt, 3, state);
	return stmt_exec(ledger->db, stmt, "updating a code", error);
}

gboolean
cs_ledger_insert_invoice(CsLedger *ledger,
			 const char *order_id,
			 const char *number,
			 guint64 amount_fen,
			 GBytes *pdf,
			 gint64 now_us,
			 GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;
	gsize len = 0;
	gconstpointer data;

	g_return_val_if_fail(ledger != NULL && order_id != NULL && number != NULL && pdf != NULL,
			     FALSE);

	if (!require_transaction(ledger, "recording an invoice", error))
		return FALSE;
	stmt = stmt_prepare(ledger->db,
			    "INSERT INTO invoices (order_id, number, amount_fen, pdf, created) "
			    "VALUES (?1, ?2, ?3, ?4, ?5)",
			    error);
	if (stmt == NULL)
		return FALSE;
	data = g_bytes_get_data(pdf, &len);
	bind_text(stmt, 1, order_id);
	bind_text(stmt, 2, number);
	sqlite3_bind_int64(stmt, 3, (sqlite3_int64)amount_fen);
	sqlite3_bind_blob64(stmt, 4, len > 0 ? data : "", len, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 5, now_us);
	return stmt_exec(ledger->db, stmt, "recording an invoice", error);
}

GBytes *
cs_ledger_load_invoice(CsLedger *ledger, const char *order_id, char **number_out, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;
	int rc;

	g_return_val_if_fail(ledger != NULL && order_id != NULL, NULL);

	stmt =
	    stmt_prepare(ledger->db, "SELECT number, pdf FROM invoices WHERE order_id = ?1", error);
	if (stmt == NULL)
		return NULL;
	bind_text(stmt, 1, order_id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		if (number_out != NULL)
			*number_out = column_dup(stmt, 0);
		return g_bytes_new(sqlite3_column_blob(stmt, 1),
				   (gsize)sqlite3_column_bytes(stmt, 1));
	}
	if (rc == SQLITE_DONE)
		g_set_error(error, CS_ERROR, CS_ERROR_NOT_FOUND, "order %s has no invoice yet",
			    order_id);
	else
		set_sqlite_error(ledger->db, "loading an invoice", error);
	return NULL;
}

gboolean
cs_ledger_count_invoices(CsLedger *ledger, gint64 *count, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt =
	    stmt_prepare(ledger->db, "SELECT count(*) FROM invoices", error);

	if (stmt == NULL)
		return FALSE;
	if (sqlite3_step(stmt) != SQLITE_ROW) {
		set_sqlite_error(ledger->db, "counting invoices", error);
		return FALSE;
	}
	*count = sqlite3_column_int64(stmt, 0);
	return TRUE;
}

gboolean
cs_ledger_order_paid(CsLedger *ledger, const char *order_id, guint64 *paid_fen, GError **error)
{
	g_autoptr(CsLedgerStmtUse) stmt = stmt_cached(ledger, STMT_ORDER_PAID, error);

	if (stmt == NULL)
		return FALSE;
	bind_text(stmt, 1, order_id);
	if (sqlite3_step(stmt) != SQLITE_ROW) {
		set_sqlite_error(ledger->db, "reading payments", error);
		return FALSE;
	}
	*paid_fen = (guint64)sqlite3_column_int64(stmt, 0);
	return TRUE;
}

gboolean
cs_ledger_payment_known(CsLedger *ledger, const char *notify_key, gboolean *known, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt =
	    stmt_prepare(ledger->db, "SELECT count(*) FROM payments WHERE notify_key = ?1", error);

	if (stmt == NULL)
		return FALSE;
	bind_text(stmt, 1, notify_key);
	if (sqlite3_step(stmt) != SQLITE_ROW) {
		set_sqlite_error(ledger->db, "reading payments", error);
		return FALSE;
	}
	*known = sqlite3_column_int64(stmt, 0) > 0;
	return TRUE;
}

gboolean
cs_ledger_insert_payment(CsLedger *ledger, const CsPaymentRow *row, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;

	if (!require_transaction(ledger, "recording a payment", error))
		return FALSE;
	stmt = stmt_prepare(ledger->db,
			    "INSERT INTO payments (notify_key, channel, order_id, amount_fen, "
			    "trade_no, time) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
			    error);
	if (stmt == NULL)
		return FALSE;
	bind_text(stmt, 1, row->notify_key);
	bind_text(stmt, 2, row->channel);
	bind_text(stmt, 3, row->order_id);
	sqlite3_bind_int64(stmt, 4, (gint64)row->amount_fen);
	bind_text(stmt, 5, row->trade_no);
	sqlite3_bind_int64(stmt, 6, row->time);
	return stmt_exec(ledger->db, stmt, "recording a payment", error);
}

void
cs_payment_row_free(CsPaymentRow *row)
{
	if (row == NULL)
		return;
	g_free(row->notify_key);
	g_free(row->channel);
	g_free(row->order_id);
	g_free(row->trade_no);
	g_free(row);
}

GPtrArray *
cs_ledger_list_payments(CsLedger *ledger, const char *order_id, GError **error)
{
	g_autoptr(GPtrArray) rows =
	    g_ptr_array_new_with_free_func((GDestroyNotify)cs_payment_row_free);
	g_autoptr(sqlite3_stmt) stmt =
	    stmt_prepare(ledger->db,
			 "SELECT notify_key, channel, trade_no, amount_fen, time FROM payments "
			 "WHERE order_id = ?1 ORDER BY time, rowid",
			 error);
	int rc;

	if (stmt == NULL)
		return NULL;
	bind_text(stmt, 1, order_id);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		CsPaymentRow *row = g_new0(CsPaymentRow, 1);
		row->notify_key = g_strdup((const char *)sqlite3_column_text(stmt, 0));
		row->channel = g_strdup((const char *)sqlite3_column_text(stmt, 1));
		row->order_id = g_strdup(order_id);
		row->trade_no = g_strdup((const char *)sqlite3_column_text(stmt, 2));
		row->amount_fen = (guint64)sqlite3_column_int64(stmt, 3);
		row->time = sqlite3_column_int64(stmt, 4);
		g_ptr_array_add(rows, row);
	}
	if (rc != SQLITE_DONE) {
		set_sqlite_error(ledger->db, "listing payments", error);
		return NULL;
	}
	return g_steal_pointer(&rows);
}

/* ---- query codes (schema 8) --------------------------------------------------------------- */

gboolean
cs_ledger_insert_query_code(CsLedger *ledger,
			    const char *subject_type,
			    const char *id_number,
			    const char *phone,
			    guint32 caller_uid,
			    const char *code_hash,
			    gint64 created_us,
			    gint64 expires_us,
			    GError **error)
{
	g_autoptr(sqlite3_stmt) replace = NULL;
	g_autoptr(sqlite3_stmt) stmt = NULL;

	if (!require_transaction(ledger, "recording a query code", error))
		return FALSE;
	/* Only the subject's latest code works. */
	replace = stmt_prepare(ledger->db,
			       "UPDATE query_codes SET state = 'replaced' WHERE subject_type = ?1 "
			       "AND id_number = ?2 AND state = 'open'",
			       error);
	if (replace == NULL)
		return FALSE;
	bind_text(replace, 1, subject_type);
	bind_text(replace, 2, id_number);
	if (!stmt_exec(ledger->db, replace, "replacing a query code", error))
		return FALSE;
	stmt = stmt_prepare(ledger->db,
			    "INSERT INTO query_codes (subject_type, id_number, phone, caller_uid, "
			    "code_hash, created, expires, tries, state) "
			    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, 'open')",
			    error);
	if (stmt == NULL)
		return FALSE;
	bind_text(stmt, 1, subject_type);
	bind_text(stmt, 2, id_number);
	bind_text(stmt, 3, phone);
	sqlite3_bind_int64(stmt, 4, caller_uid);
	bind_text(stmt, 5, code_hash);
	sqlite3_bind_int64(stmt, 6, created_us);
	sqlite3_bind_int64(stmt, 7, expires_us);
	return stmt_exec(ledger->db, stmt, "recording a query code", error);
}

CsCodeRow *
cs_ledger_latest_query_code(CsLedger *ledger,
			    const char *subject_type,
			    const char *id_number,
			    GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;
	CsCodeRow *row;
	int rc;

	stmt =
	    stmt_prepare(ledger->db,
			 "SELECT id, code_hash, created, expires, tries, state, phone, caller_uid "
			 "FROM query_codes WHERE subject_type = ?1 AND id_number = ?2 "
			 "ORDER BY id DESC LIMIT 1",
			 error);
	if (stmt == NULL)
		return NULL;
	bind_text(stmt, 1, subject_type);
	bind_text(stmt, 2, id_number);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_NOT_FOUND,
				    "no query code was sent for this subject");
		return NULL;
	}
	if (rc != SQLITE_ROW) {
		set_sqlite_error(ledger->db, "reading a query code", error);
		return NULL;
	}
	row = g_new0(CsCodeRow, 1);
	row->id = sqlite3_column_int64(stmt, 0);
	row->code_hash = column_dup(stmt, 1);
	row->created = sqlite3_column_int64(stmt, 2);
	row->expires = sqlite3_column_int64(stmt, 3);
	row->tries = sqlite3_column_int64(stmt, 4);
	row->state = column_dup(stmt, 5);
	row->phone = column_dup(stmt, 6);
	row->caller_uid = (guint32)sqlite3_column_int64(stmt, 7);
	return row;
}

gboolean
cs_ledger_update_query_code(
    CsLedger *ledger, gint64 id, gint64 tries, const char *state, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;

	if (!require_transaction(ledger, "updating a query code", error))
		return FALSE;
	stmt = stmt_prepare(ledger->db,
			    "UPDATE query_codes SET tries = ?2, state = ?3 WHERE id = ?1", error);
	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_int64(stmt, 2, tries);
	bind_text(stmt, 3, state);
	return stmt_exec(ledger->db, stmt, "updating a query code", error);
}

gboolean
cs_ledger_count_query_codes(CsLedger *ledger,
			    gint64 caller_uid,
			    const char *subject_type,
			    const char *id_number,
			    gint64 since_us,
			    gint64 *count,
			    gint64 *latest_us,
			    GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;
	int rc;

	if (subject_type != NULL) {
		stmt = stmt_prepare(ledger->db,
				    "SELECT count(*), COALESCE(MAX(created), 0) FROM query_codes "
				    "WHERE subject_type = ?1 AND id_number = ?2 AND created > ?3",
				    error);
		if (stmt == NULL)
			return FALSE;
		bind_text(stmt, 1, subject_type);
		bind_text(stmt, 2, id_number);
	} else {
		stmt = stmt_prepare(ledger->db,
				    "SELECT count(*), COALESCE(MAX(created), 0) FROM query_codes "
				    "WHERE caller_uid = ?1 AND created > ?3",
				    error);
		if (stmt == NULL)
			return FALSE;
		sqlite3_bind_int64(stmt, 1, caller_uid);
	}
	sqlite3_bind_int64(stmt, 3, since_us);
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		set_sqlite_error(ledger->db, "counting query codes", error);
		return FALSE;
	}
	*count = sqlite3_column_int64(stmt, 0);
	if (latest_us != NULL)
		*latest_us = sqlite3_column_int64(stmt, 1);
	return TRUE;
}
