/*
 * cs-ledger.h — the order ledger in SQLite (docs/architecture.md §3.5).
 *
 * One file, <state_dir>/ledger.db: WAL, synchronous=FULL, foreign keys on. The schema
 * moves forward through numbered migrations recorded in PRAGMA user_version; each step
 * and its version bump commit in one transaction, a sqlite3_backup copy is taken first,
 * a newer schema than this build knows is refused, and the file is never deleted or
 * silently repaired. PRAGMA application_id marks the file as a certseal ledger.
 *
 * Events are append-only (triggers refuse UPDATE and DELETE) and hash-chained:
 *   canonical = compact JSON, keys sorted, of
 *               {seq, time, order_id, kind, from, to, actor, data}
 *   hash      = SHA-256(previous hash ‖ canonical), the first previous hash 32 zero bytes.
 * "time" is microseconds since the Unix epoch; "kind" is the event's kind ("created",
 * "transition", "updated", "recovered", …); "order_id", "from", "to" are null when they do
 * not apply; "data" is an object (empty when there is nothing to add). Every
 * checkpoint_interval events a (seq, hash) checkpoint is stored in the same transaction;
 * opening verifies the chain from the last checkpoint, cs_ledger_verify() from the start.
 *
 * Schema 8 keys the chain with MACs derived from the vault key: the chain head (last seq
 * and hash) and every checkpoint, so a cut-off tail or a chain rewritten from an edited
 * event on is found; and each event about an order carries the keyed state of the order's
 * row after it (state_mac), so a row changed in the orders table is found. Opening checks
 * the checkpoint, the events after it, the head and the orders those events are about
 * (time grows with the events since the checkpoint, not with the ledger);
 * cs_ledger_verify_in_background() checks everything off the main loop. A ledger from
 * before schema 8 is verified whole and keyed by its migration. Replacing the whole file
 * by an older genuine copy (with its own, genuine head) is not detected.
 *
 * Secrets (PINs to deliver, SO PINs, codes inside outgoing messages) never enter events:
 * they are sealed with the vault into the separate `secrets` table, outside the chain,
 * and referred to by id.
 *
 * All writes happen between cs_ledger_begin() and cs_ledger_commit(); an event and the
 * state it changes are written in the same transaction.
 */
#pragma once

#include <gio/gio.h>

#include "cs-blobs.h"
#include "cs-vault.h"

G_BEGIN_DECLS

#define CS_LEDGER_SCHEMA_VERSION 10
#define CS_LEDGER_APPLICATION_ID 0x43534c47 /* "CSLG" */
/* docs/architecture.md §3.5; cs_ledger_open() uses it when given a checkpoint_interval of 0. */
#define CS_LEDGER_CHECKPOINT_INTERVAL_DEFAULT 1000

typedef struct _CsLedger CsLedger;

typedef struct {
	char *id;
	char *kind;
	char *subject_type;
	char *vendor; /* may be "" */
	char *state;
	guint32 owner_uid;
	GVariant *fields; /* a{sv}, never NULL */
	gint64 created;	  /* microseconds since the epoch */
	gint64 updated;
} CsOrderRow;

void cs_order_row_free(CsOrderRow *row);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsOrderRow, cs_order_row_free)

typedef struct {
	gint64 seq;
	gint64 time; /* microseconds */
	char *kind;
	char *from; /* may be NULL */
	char *to;   /* may be NULL */
	char *actor;
	char *data; /* canonical JSON object */
} CsEventRow;

void cs_event_row_free(CsEventRow *row);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsEventRow, cs_event_row_free)

/*
 * Open (creating or migrating) the ledger at @path. Refuses, with a message naming the
 * file: a file that is not an SQLite database, an SQLite database that is not a certseal
 * ledger, a schema newer than CS_LEDGER_SCHEMA_VERSION, and a chain that fails
 * verification from the last checkpoint (naming the first bad event).
 * @checkpoint_interval: events between checkpoints (docs/architecture.md: 1000).
 */
CsLedger *
cs_ledger_open(const char *path, CsVault *vault, guint checkpoint_interval, GError **error);
void cs_ledger_free(CsLedger *ledger);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsLedger, cs_ledger_free)

/* For tests and fixture generation: create or migrate a file only up to @version
 * (1 … CS_LEDGER_SCHEMA_VERSION), without the other checks of cs_ledger_open(). */
gboolean cs_ledger_migrate_file_to(const char *path, int version, GError **error);

int cs_ledger_get_schema_version(CsLedger *ledger);
/* The path of the backup taken before the last migration at open, or NULL. */
const char *cs_ledger_get_backup_path(CsLedger *ledger);

/*
 * An online sqlite3_backup copy of the open ledger into the new file @path (created 0600,
 * refused when it exists): one consistent state of the ledger while the daemon goes on
 * writing, copied a few pages per step, waiting and retrying while a writer holds it;
 * synced before TRUE is returned. The copy is in rollback-journal mode (a single file).
 */
gboolean cs_ledger_backup_file(CsLedger *ledger, const char *path, GError **error);
/* The same from the ledger file at @ledger_path, through a read-only connection of its own
 * (no vault needed; WAL lets it run beside the daemon's writes). Refuses a file that is
 * not a certseal ledger. */
gboolean cs_ledger_backup_path(const char *ledger_path, const char *path, GError **error);
/* The same copy into a file that has no name: made in @dir, opened, and unlinked before
 * anything is copied (a copy killed midway leaves nothing behind, at most an empty
 * ".ledger-copy-XXXXXX" when killed between the two). Returns its descriptor (read-write,
 * close-on-exec), or -1. */
int cs_ledger_backup_unnamed(const char *ledger_path, const char *dir, GError **error);

gboolean cs_ledger_begin(CsLedger *ledger, GError **error);
gboolean cs_ledger_commit(CsLedger *ledger, GError **error);
void cs_ledger_rollback(CsLedger *ledger);

/*
 * Append one event (inside a transaction). @order_id, @from, @to may be NULL; @data is an
 * a{sv} or NULL. Writes a checkpoint when due. Returns the event's seq in @seq_out.
 */
gboolean cs_ledger_append_event(CsLedger *ledger,
				const char *order_id,
				const char *kind,
				const char *from,
				const char *to,
				const char *actor,
				GVariant *data,
				gint64 time_us,
				gint64 *seq_out,
				GError **error);

/* The canonical bytes of one event as hashed (exposed for tests and auditors). */
char *cs_ledger_event_canonical(gint64 seq,
				gint64 time_us,
				const char *order_id,
				const char *kind,
				const char *from,
				const char *to,
				const char *actor,
				const char *data_json);

/*
 * Recompute the chain from @from_seq (1 = the first event; a checkpointed seq is trusted
 * as the starting hash when its keyed MAC holds) to the keyed chain head, and check the
 * orders named by the events from @from_seq (1: every order) against their keyed state.
 * On a mismatch, returns FALSE with CS_ERROR_INTERNAL, a message "ledger event N: …" and
 * *bad_seq = N. *n_checked counts events recomputed.
 */
gboolean cs_ledger_verify(
    CsLedger *ledger, gint64 from_seq, gint64 *bad_seq, gint64 *n_checked, GError **error);

/*
 * cs_ledger_verify() from the start, in a thread of its own with its own read-only
 * connection (the main loop and its writes go on); @func runs in the calling thread's
 * default main context with the verdict: @ok, or the event named (@bad_seq, 0 when the
 * ledger could not be read) and @error. Cancelling makes @error G_IO_ERROR_CANCELLED.
 */
typedef void (*CsLedgerVerifiedFunc)(
    gboolean ok, gint64 bad_seq, gint64 n_checked, const GError *error, gpointer user_data);
void cs_ledger_verify_in_background(CsLedger *ledger,
				    GCancellable *cancellable,
				    CsLedgerVerifiedFunc func,
				    gpointer user_data);
/* From now on every write transaction is refused with CS_ERROR_UNAVAILABLE "ledger failed
 * verification at event @bad_seq" (a verification failed: nothing more is recorded onto a
 * ledger that may have been tampered with). */
void cs_ledger_refuse_writes(CsLedger *ledger, gint64 bad_seq);
/* The event named by cs_ledger_refuse_writes(), 0 when writes are allowed. */
gint64 cs_ledger_get_failed_seq(CsLedger *ledger);
/* The seq of the last stored checkpoint, 0 when none. */
gint64 cs_ledger_last_checkpoint(CsLedger *ledger);
gint64 cs_ledger_last_seq(CsLedger *ledger);

/* Orders (inside a transaction for writes). The id is assigned here: "CS" + the local
 * date YYYYMMDD + a 6-digit ledger-wide sequence number, e.g. CS20261124000042. */
gboolean cs_ledger_insert_order(CsLedger *ledger,
				const char *kind,
				const char *subject_type,
				const char *vendor,
				const char *state,
				guint32 owner_uid,
				GVariant *fields,
				gint64 now_us,
				char **id_out,
				GError **error);
gboolean cs_ledger_update_order(CsLedger *ledger,
				const char *id,
				const char *state,
				GVariant *fields,
				gint64 now_us,
				GError **error);
/* NULL with CS_ERROR_NOT_FOUND when there is no such order. */
CsOrderRow *cs_ledger_load_order(CsLedger *ledger, const char *id, GError **error);
/* Ids of all orders, oldest first; @state may be NULL for all. */
GPtrArray *cs_ledger_list_orders(CsLedger *ledger, const char *state, GError **error);
/* Ids of the orders @owner_uid created, oldest first. */
GPtrArray *cs_ledger_list_orders_owned(CsLedger *ledger, guint32 owner_uid, GError **error);
/* The events of one order, oldest first (CsEventRow). */
GPtrArray *cs_ledger_order_events(CsLedger *ledger, const char *id, GError **error);

/* The subject registry (docs/architecture.md §1). lookup returns NULL without error when unknown;
 * otherwise an a{sv} of the identity fields plus "handler_phone". */
GVariant *cs_ledger_lookup_subject(CsLedger *ledger,
				   const char *subject_type,
				   const char *id_number,
				   GError **error);
/* Insert or replace (a change order replaces). Inside a transaction. */
gboolean cs_ledger_record_subject(CsLedger *ledger,
				  const char *subject_type,
				  const char *id_number,
				  GVariant *identity,
				  gint64 now_us,
				  GError **error);

/* Secrets, sealed with the vault (inside a transaction for writes). */
gboolean cs_ledger_seal_secret(CsLedger *ledger,
			       const char *purpose,
			       const char *order_id,
			       const guint8 *data,
			       gsize len,
			       gint64 now_us,
			       gint64 *id_out,
			       GError **error);
/* CS_ERROR_NOT_FOUND when unknown or already wiped. */
GBytes *cs_ledger_open_secret(CsLedger *ledger, gint64 id, GError **error);
/* The vault key opens the latest secret still sealed (TRUE when there is none); otherwise
 * CS_ERROR_INTERNAL naming the secret. */
gboolean cs_ledger_check_vault_key(CsLedger *ledger, GError **error);
/* Overwrite the sealed bytes with nothing and mark the row wiped. */
gboolean cs_ledger_wipe_secret(CsLedger *ledger, gint64 id, gint64 now_us, GError **error);

/*
 * Certificates (schema 4): every certificate the embedded CAs issued, its serial (never
 * reused) and its revocation. Public data only. Writes inside a transaction.
 */
typedef struct {
	char *serial; /* 32 upper-case hex digits */
	char *vendor;
	char *role;	    /* root | issuing | seal_maker | subscriber */
	char *subject;	    /* RFC 2253 text */
	char *subject_type; /* org | person; NULL for CA certificates */
	char *id_number;    /* USCC or resident ID; NULL for CA certificates */
	char *order_id;	    /* may be NULL */
	gint64 not_before;  /* seconds since the epoch */
	gint64 not_after;
	char *status;	   /* valid | revoked */
	gint64 revoked_at; /* seconds; 0 unless revoked */
	char *reason;	   /* CRL reason name; NULL unless revoked */
	GBytes *der;
	gint64 created; /* microseconds */
} CsCertRow;

void cs_cert_row_free(CsCertRow *row);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsCertRow, cs_cert_row_free)

/* Status, revocation columns and created are ignored (a new row is valid). A serial used
 * before is refused (CS_ERROR_INTERNAL "certificate serial …: already used"). */
gboolean cs_ledger_insert_certificate(CsLedger *ledger, const CsCertRow *row, GError **error);
gboolean
cs_ledger_serial_used(CsLedger *ledger, const char *serial, gboolean *used, GError **error);
/* CS_ERROR_NOT_FOUND when unknown. */
CsCertRow *cs_ledger_load_certificate(CsLedger *ledger, const char *serial, GError **error);
/* Subscriber certificates of one subject, oldest first; @vendor "" = all vendors. */
GPtrArray *cs_ledger_find_certificates(CsLedger *ledger,
				       const char *vendor,
				       const char *subject_type,
				       const char *id_number,
				       GError **error);
/* Revoked subscriber certificates of @vendor (CsCertRow), for its CRL. */
GPtrArray *cs_ledger_list_revoked(CsLedger *ledger, const char *vendor, GError **error);
/* Every subscriber certificate neither revoked nor superseded whose end is in
 * [@not_after_from, @not_after_to] (seconds), soonest end first. */
GPtrArray *cs_ledger_list_valid_subscribers(CsLedger *ledger,
					    gint64 not_after_from,
					    gint64 not_after_to,
					    GError **error);
/* The events of @kind (CsEventRow, oldest first) of the orders that issued those
 * certificates, in one query. */
GPtrArray *cs_ledger_certificate_order_events(
    CsLedger *ledger, const char *kind, gint64 not_after_from, gint64 not_after_to, GError **error);
/* valid → revoked; CS_ERROR_WRONG_STATE when unknown or already revoked. */
gboolean cs_ledger_revoke_certificate(
    CsLedger *ledger, const char *serial, const char *reason, gint64 revoked_at, GError **error);
/* The next CRL number of @vendor (1, 2, …), consumed in the open transaction. */
gboolean
cs_ledger_next_crl_number(CsLedger *ledger, const char *vendor, gint64 *number, GError **error);

/*
 * Materials (schema 6): uploaded scans and photos. A history: each upload is a new row,
 * rows are never updated or deleted (triggers), and the latest row of a (order_id, kind)
 * is the order's material. Writes inside a transaction, with the "material" event.
 * Since schema 9 the bytes are not in the database: a row names a content-addressed file
 * of cs_ledger_get_blobs() by its SHA-256, stored before the row is inserted.
 */
typedef struct {
	char *order_id;
	char *kind;
	char *filename;
	char *mime;
	gint64 size;
	char *sha256;	/* lower-case hex */
	GBytes *data;	/* the file's bytes, from cs_ledger_load_material() only */
	gint64 created; /* microseconds */
	char *actor;
} CsMaterialRow;
void cs_material_row_free(CsMaterialRow *row);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsMaterialRow, cs_material_row_free)
/* data is ignored: the content must already be in cs_ledger_get_blobs() under sha256
 * (CS_ERROR_INTERNAL otherwise); size, created and actor as given. */
gboolean cs_ledger_insert_material(CsLedger *ledger, const CsMaterialRow *row, GError **error);
/* The store of material bytes, <ledger's directory>/materials. */
CsBlobs *cs_ledger_get_blobs(CsLedger *ledger);
/* The latest material of each kind of @order_id, by kind, without their data. */
GPtrArray *cs_ledger_list_materials(CsLedger *ledger, const char *order_id, GError **error);
/* The latest @kind of @order_id with its data (read from its file and checked against its
 * hash: CS_ERROR_INTERNAL when the file is missing or changed); CS_ERROR_NOT_FOUND when
 * none. */
CsMaterialRow *
cs_ledger_load_material(CsLedger *ledger, const char *order_id, const char *kind, GError **error);

/*
 * Schema 7. Order attributes: what the flow's steps record beside the fields (review note,
 * tracking number, payment channel, ids of sealed secrets — never a secret). @value NULL
 * removes one. Writes inside a transaction.
 */
gboolean cs_ledger_set_attr(CsLedger *ledger,
			    const char *order_id,
			    const char *name,
			    const char *value,
			    gint64 now_us,
			    GError **error);
/* name → value (both strings). */
GHashTable *cs_ledger_load_attrs(CsLedger *ledger, const char *order_id, GError **error);

/* The latest value of attribute @name over all orders, and its order (either out may be
 * NULL); CS_ERROR_NOT_FOUND when no order has it. */
gboolean cs_ledger_find_attr(
    CsLedger *ledger, const char *name, char **order_id, char **value, GError **error);
/* How many events of kind @event_kind, at or after @since_us, belong to orders whose
 * attribute @attr is @value. */
gboolean cs_ledger_count_events_with_attr(CsLedger *ledger,
					  const char *event_kind,
					  const char *attr,
					  const char *value,
					  gint64 since_us,
					  guint *count,
					  GError **error);

/* One-time codes sent by SMS (docs/architecture.md §6): a keyed hash, never the code. */
typedef struct {
	gint64 id;
	char *code_hash;
	gint64 created;	    /* microseconds */
	gint64 expires;	    /* microseconds */
	gint64 tries;	    /* wrong tries so far */
	char *state;	    /* open | used | dead | replaced */
	char *phone;	    /* query codes: the phone it went to */
	guint32 caller_uid; /* query codes: who asked for it */
} CsCodeRow;
void cs_code_row_free(CsCodeRow *row);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsCodeRow, cs_code_row_free)
/* A new open code; the order's earlier open code of @purpose becomes replaced. */
gboolean cs_ledger_insert_code(CsLedger *ledger,
			       const char *order_id,
			       const char *purpose,
			       const char *code_hash,
			       gint64 created_us,
			       gint64 expires_us,
			       GError **error);
/* The latest code of @order_id and @purpose; CS_ERROR_NOT_FOUND when none. */
CsCodeRow *
cs_ledger_latest_code(CsLedger *ledger, const char *order_id, const char *purpose, GError **error);
gboolean
cs_ledger_update_code(CsLedger *ledger, gint64 id, gint64 tries, const char *state, GError **error);

/* Query codes (schema 8): codes for a subject (订单查询), inside a transaction for the
 * writes. The subject's earlier open code becomes replaced. */
gboolean cs_ledger_insert_query_code(CsLedger *ledger,
				     const char *subject_type,
				     const char *id_number,
				     const char *phone,
				     guint32 caller_uid,
				     const char *code_hash,
				     gint64 created_us,
				     gint64 expires_us,
				     GError **error);
/* The subject's latest query code (with phone and caller_uid); CS_ERROR_NOT_FOUND when
 * none. */
CsCodeRow *cs_ledger_latest_query_code(CsLedger *ledger,
				       const char *subject_type,
				       const char *id_number,
				       GError **error);
gboolean cs_ledger_update_query_code(
    CsLedger *ledger, gint64 id, gint64 tries, const char *state, GError **error);
/* How many query codes were sent since @since_us, and when the latest was: for the
 * subject when @subject_type is given, otherwise those @caller_uid asked for. */
gboolean cs_ledger_count_query_codes(CsLedger *ledger,
				     gint64 caller_uid,
				     const char *subject_type,
				     const char *id_number,
				     gint64 since_us,
				     gint64 *count,
				     gint64 *latest_us,
				     GError **error);

/* E-invoices: one per order, issued once. */
gboolean cs_ledger_insert_invoice(CsLedger *ledger,
				  const char *order_id,
				  const char *number,
				  guint64 amount_fen,
				  GBytes *pdf,
				  gint64 now_us,
				  GError **error);
/* The PDF; CS_ERROR_NOT_FOUND when none was issued. */
GBytes *
cs_ledger_load_invoice(CsLedger *ledger, const char *order_id, char **number_out, GError **error);
gboolean cs_ledger_count_invoices(CsLedger *ledger, gint64 *count, GError **error);
/* What the payments applied to @order_id add up to (fen). */
gboolean
cs_ledger_order_paid(CsLedger *ledger, const char *order_id, guint64 *paid_fen, GError **error);

/* Payments (schema 5): money a verified notification brought, keyed by the notification's
 * idempotency key (channel:platform trade id), append-only. */
typedef struct {
	char *notify_key;
	char *channel; /* alipay | wechat | sandbox */
	char *order_id;
	guint64 amount_fen;
	char *trade_no; /* the platform's transaction id */
	gint64 time;	/* microseconds */
} CsPaymentRow;
void cs_payment_row_free(CsPaymentRow *row);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsPaymentRow, cs_payment_row_free)
gboolean
cs_ledger_payment_known(CsLedger *ledger, const char *notify_key, gboolean *known, GError **error);
/* Inside a transaction. */
gboolean cs_ledger_insert_payment(CsLedger *ledger, const CsPaymentRow *row, GError **error);
/* The payments of @order_id (CsPaymentRow), oldest first. */
GPtrArray *cs_ledger_list_payments(CsLedger *ledger, const char *order_id, GError **error);

/* For benchmarks and tests: the raw handle. */
gpointer cs_ledger_get_db(CsLedger *ledger);

G_END_DECLS
