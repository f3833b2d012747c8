/*
 * cs-engine.h — the order engine.
 *
 * The engine is where the manual's rules live (with the flow plugins): it validates
 * fields, keeps the subject registry's identity fields read-only, checks every
 * transition against the plugin's declarations and the actor, and records each change
 * with one ledger transaction (event + new state). Fronts (D-Bus, office) only translate
 * requests into these calls and publish the changes the engine announces.
 */
#pragma once

#include <glib.h>

#include "certseal/plugin.h"
#include "cs-config.h"
#include "cs-ledger.h"

G_BEGIN_DECLS

struct _CsOrder {
	char *id;
	char *kind;
	CsSubjectType subject_type;
	char *vendor; /* "" until chosen */
	char *state;
	guint32 owner_uid;
	GVariant *fields; /* a{sv}: field name → string */
	gint64 created;	  /* microseconds since the epoch */
	gint64 updated;
	const CsPlugin *plugin;
	CsLedger *ledger;  /* borrowed: where the attributes are */
	GHashTable *attrs; /* name → value; NULL until read (cs_order_get_attr) */
};

typedef enum {
	CS_ORDER_CREATED,
	CS_ORDER_CHANGED,
} CsOrderChange;

typedef void (*CsEngineOrderFunc)(CsEngine *engine,
				  CsOrder *order,
				  CsOrderChange change,
				  gpointer user_data);

/* @config and @ledger are borrowed and must outlive the engine. */
CsEngine *cs_engine_new(CsConfig *config, CsLedger *ledger);
void cs_engine_free(CsEngine *engine);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsEngine, cs_engine_free)

/* Run the plugin's init and make its kind available; a failing init is refused. */
gboolean cs_engine_add_plugin(CsEngine *engine, const CsPlugin *plugin, GError **error);
const CsPlugin *cs_engine_find_plugin(CsEngine *engine, const char *kind);
/* The kinds of the plugins added, sorted. */
GStrv cs_engine_get_kinds(CsEngine *engine);
CsConfig *cs_engine_get_config(CsEngine *engine);
CsLedger *cs_engine_get_ledger(CsEngine *engine);

/* After a transaction that may have set attributes (committed or not): read them again. */
void cs_order_forget_attrs(CsOrder *order);

/* The services the flows' steps use (all borrowed, may be NULL in unit tests: the steps
 * needing one then fail with CS_ERROR_UNAVAILABLE). Set by the daemon before serving. */
struct _CsVault;
struct _CsTasks;
struct _CsKeys;
void cs_engine_set_services(CsEngine *engine,
			    struct _CsVault *vault,
			    struct _CsTasks *tasks,
			    struct _CsKeys *keys);
/* The daemon is stopping: work the engine started on other threads (making a key) must not
 * touch the engine, which may be gone when it finishes. Drops the services too. */
void cs_engine_stop(CsEngine *engine);
/* A new reference (g_atomic_rc_box_release) to a flag that becomes non-zero at
 * cs_engine_stop(), readable with g_atomic_int_get after the engine is freed. */
gint *cs_engine_ref_stopping(CsEngine *engine);
struct _CsVault *cs_engine_get_vault(CsEngine *engine);
struct _CsTasks *cs_engine_get_tasks(CsEngine *engine);
struct _CsKeys *cs_engine_get_keys(CsEngine *engine);

void cs_engine_add_listener(CsEngine *engine, CsEngineOrderFunc func, gpointer user_data);
void cs_engine_remove_listener(CsEngine *engine, CsEngineOrderFunc func, gpointer user_data);

/* Transient states fall back to their last stable state after a restart
 * (making → approved, downloading → downloadable), each with a "recovered" event.
 * *n_recovered says how many orders moved. */
gboolean cs_engine_recover(CsEngine *engine, guint *n_recovered, GError **error);

/* "uid:1000", "office:alice", "gateway", "system". */
char *cs_request_to_actor(const CsRequest *request);

CsOrder *cs_engine_create_order(CsEngine *engine,
				const CsRequest *request,
				const char *kind,
				const char *subject_type,
				GVariant *fields,
				GError **error);
/* The order, loaded from the ledger on first use. CS_ERROR_NOT_FOUND when unknown. */
CsOrder *cs_engine_get_order(CsEngine *engine, const char *id, GError **error);
/* Ids of every order, oldest first. */
GPtrArray *cs_engine_list_order_ids(CsEngine *engine, GError **error);
/* Ids of the orders @request may see, oldest first, without loading them. */
GPtrArray *
cs_engine_list_visible_order_ids(CsEngine *engine, const CsRequest *request, GError **error);

/* May @request see and act on @order at all? (owner uid or root for desktop callers). */
gboolean
cs_engine_check_access(CsEngine *engine, const CsRequest *request, CsOrder *order, GError **error);
/* Change fields (an a{sv} of strings; "" removes a field) where the plugin allows it. */
gboolean cs_engine_update_order(
    CsEngine *engine, const CsRequest *request, CsOrder *order, GVariant *fields, GError **error);
/* Perform the transition named @action from the order's state. */
gboolean cs_engine_act(
    CsEngine *engine, const CsRequest *request, CsOrder *order, const char *action, GError **error);

/* Work done inside the transaction that records a transition (e.g. completing the office
 * task that asked for it), so both commit or neither does. Return FALSE with @error set to
 * roll the transition back. */
typedef gboolean (*CsEngineTxnFunc)(CsEngine *engine,
				    CsOrder *order,
				    gpointer user_data,
				    GError **error);
/* cs_engine_act() with @in_txn (may be NULL) run in the transition's transaction. */
gboolean cs_engine_act_full(CsEngine *engine,
			    const CsRequest *request,
			    CsOrder *order,
			    const char *action,
			    CsEngineTxnFunc in_txn,
			    gpointer in_txn_data,
			    GError **error);

/*
 * The general form: @params (a{sv} of strings or NULL) come with the step (a review's note,
 * a tracking number, a make's key serial) and are recorded in its event and handed to the
 * plugin's in_transition; @code is the one-time code of a CS_TRANSITION_NEEDS_CODE step
 * (a wrong one counts a try, in its own transaction, and refuses the step).
 */
gboolean cs_engine_act_with(CsEngine *engine,
			    const CsRequest *request,
			    CsOrder *order,
			    const char *action,
			    GVariant *params,
			    const char *code,
			    CsEngineTxnFunc in_txn,
			    gpointer in_txn_data,
			    GError **error);

/* SendSmsCode: a new one-time code to the flow's contact phone, where a step needs one.
 * *masked_phone: e.g. "138****8000". RateLimited inside the cooldown. */
gboolean cs_engine_send_code(CsEngine *engine,
			     const CsRequest *request,
			     CsOrder *order,
			     char **masked_phone,
			     GError **error);
/* Paid: money was received for the order. Settled: paid in full, or nothing to pay. */
gboolean cs_engine_order_paid(CsEngine *engine, CsOrder *order);
gboolean cs_engine_order_settled(CsEngine *engine, CsOrder *order);

/* What the order's owner can do next, as D-Bus method names ("Update", "Confirm", …). */
GStrv cs_engine_next_actions(CsEngine *engine, CsOrder *order);
/* Required fields still missing (what a CS_TRANSITION_NEEDS_FIELDS step checks). */
GStrv cs_engine_missing_fields(CsEngine *engine, CsOrder *order);
/* What the order still needs: the missing required fields, then the required materials
 * (of the order's subject type) not attached yet. What Submit will check. */
GStrv cs_engine_missing(CsEngine *engine, CsOrder *order);

/* ---- materials (DESIGN §1.1, §3.3) ---------------------------------------------------------
 * The front reads and checks the content (cs_material_check) off the main loop; the engine
 * decides whether @request may attach @kind to @order now, and records it. */
/* May @request attach @kind to @order now? Access (owner), actor (the applicant), kind (one
 * the flow declares for the order's subject type: CS_ERROR_INVALID_INPUT naming "kind"),
 * state (the flow's material_states: CS_ERROR_WRONG_STATE). */
gboolean cs_engine_check_material(
    CsEngine *engine, const CsRequest *request, CsOrder *order, const char *kind, GError **error);
/* cs_engine_check_material(), then one transaction: the material row (replacing the kind's
 * earlier upload) and a "material" event holding {kind, sha256, size, mime}, never the
 * content. @data was checked; @sha256 is its lower-case hex digest. Announces a change. */
gboolean cs_engine_attach_material(CsEngine *engine,
				   const CsRequest *request,
				   CsOrder *order,
				   const char *kind,
				   const char *filename,
				   const char *mime,
				   GBytes *data,
				   const char *sha256,
				   GError **error);
/* The order's current materials (CsMaterialRow without data), by kind. */
GPtrArray *cs_engine_list_materials(CsEngine *engine, CsOrder *order, GError **error);
/* Soft problems for the reviewer (a bank card failing Luhn, …). */
GStrv cs_engine_warnings(CsEngine *engine, CsOrder *order);
/* The price of the order from its vendor's table, 0 without a vendor. */
guint64 cs_engine_amount_fen(CsEngine *engine, CsOrder *order);
/* The order's events, oldest first (CsEventRow). */
GPtrArray *cs_engine_history(CsEngine *engine, CsOrder *order, GError **error);
/* What an event says in an order's history, the same for every front: its kind, with the
 * reviewer's note, the tracking number, why a making failed or the payment channel when
 * the step recorded one ("reject: the licence scan is unreadable"). */
char *cs_engine_event_note(const CsEventRow *event);

/* Record the order's subject in the registry (on approval; a change order replaces). */
gboolean cs_engine_record_subject(CsEngine *engine, CsOrder *order, GError **error);

/* ---- certificates (cs-engine-certs.c) ----------------------------------------------------
 * The engine-level C API where CSRs enter (DESIGN §4, §8): the embedded CAs are set by
 * the daemon; every issuance and revocation is recorded in the ledger with the actor. */
typedef struct _CsCaSet CsCaSet;
/* Borrowed; must outlive the engine. */
void cs_engine_set_cas(CsEngine *engine, CsCaSet *cas);
CsCaSet *cs_engine_get_cas(CsEngine *engine);
/* Issue the certificate of @order from a DER CSR: the subject from the order's fields
 * (DESIGN §9), the vendor's CA, the profile's period — or for a renew order, the period
 * that follows the order's certificate_serial (DESIGN §1.2). The CSR is parsed and its
 * proof of possession verified here, once. Returns the DER certificate. */
GBytes *cs_engine_issue_certificate(CsEngine *engine,
				    const CsRequest *request,
				    CsOrder *order,
				    const guint8 *csr_der,
				    gsize csr_len,
				    GError **error);
/* The e-seal (GB/T 38540 SESeal, DER) for @order's certificate @cert_der: the order's
 * name and subject type, the certificate's validity, the picture (PNG or JPEG, e.g. the
 * order's seal_image) with its size in mm, signed by the vendor's seal maker. The esID is
 * the certificate's serial. */
GBytes *cs_engine_make_seal(CsEngine *engine,
			    const CsRequest *request,
			    CsOrder *order,
			    GBytes *cert_der,
			    const guint8 *picture,
			    gsize picture_len,
			    guint width_mm,
			    guint height_mm,
			    GError **error);
/* Revoke with a reason (keyCompromise, superseded, affiliationChanged,
 * cessationOfOperation); @order may be NULL. The vendor's CRL is regenerated. */
gboolean cs_engine_revoke_certificate(CsEngine *engine,
				      const CsRequest *request,
				      const char *serial,
				      const char *reason,
				      CsOrder *order,
				      GError **error);
/* A subject's certificates with their status (CsCertRow: valid, revoked, expired): what
 * FindCertificates answers once its SMS query code exists. */
GPtrArray *cs_engine_find_certificates(CsEngine *engine,
				       const char *vendor,
				       const char *subject_type,
				       const char *id_number,
				       GError **error);

/* "confirm" → "Confirm", "start_payment" → "StartPayment". */
char *cs_action_to_method(const char *action);

G_END_DECLS
