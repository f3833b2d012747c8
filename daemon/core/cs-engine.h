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
#include "cs-order.h"
#include "cs-request.h"

G_BEGIN_DECLS

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

/* An order's attributes changed outside a step (StartPayment, key work's progress): read
 * them again and announce the change. @updated: the UpdatedAt the same transaction stored
 * with cs_ledger_update_order(), or 0 when it did not change. */
void cs_engine_order_attrs_changed(CsEngine *engine, CsOrder *order, gint64 updated);

/* The lower layers the flows' steps reach through the services (all borrowed, may be NULL
 * in unit tests: the steps needing one then fail with CS_ERROR_UNAVAILABLE). Set by the
 * daemon before serving. */
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

/* Orders in a transient state fall back to the stable state their plugin declares
 * (CsPlugin.recoveries), each with a "recovered" event. *n_recovered says how many
 * orders moved. */
gboolean cs_engine_recover(CsEngine *engine, guint *n_recovered, GError **error);

/* Manager.GetFlow: the flow @kind for @subject_type described from its plugin's tables
 * (cs_fields_describe_flow), as a floating a{sv}; InvalidInput for an unknown kind or
 * subject type. */
GVariant *cs_engine_describe_flow(CsEngine *engine,
				  const char *kind,
				  const char *subject_type,
				  GError **error);
/* Manager.ValidateFields: (field, reason) for each of @fields (a{sv}) CreateOrder would
 * refuse, with the same validators; when each value is good alone, the registry and the
 * plugin's rules across fields too. A floating a(ss), empty when all are good. */
GVariant *cs_engine_validate_fields(
    CsEngine *engine, const char *kind, const char *subject_type, GVariant *fields, GError **error);
/* What verified query codes opened to D-Bus connections (cs_engine_check_access consults
 * it; the query service adds to it; the D-Bus front drops a connection's grants when it
 * leaves). */
struct _CsGrants *cs_engine_get_grants(CsEngine *engine);
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

/* The step of the order's state carrying @flag (CS_TRANSITION_PAYMENT, …) whose guard
 * holds, or NULL. */
const CsTransition *cs_engine_find_step(CsEngine *engine, CsOrder *order, CsTransitionFlags flag);
/* The action of the order's flow that carries @flag (from whatever state), or NULL: how a
 * front names "the refund step" without knowing the flow. */
const char *cs_engine_step_action(CsOrder *order, CsTransitionFlags flag);
/* Is the order still under way (not in one of its flow's terminal states)? */
gboolean cs_engine_order_is_open(CsOrder *order);

/* An office service the loaded flows' transitions name, and the role that serves it. */
typedef struct {
	const char *name; /* owned by the plugin */
	guint role;	  /* one CsActor office bit */
} CsEngineService;
/* The office services of every loaded flow (CsEngineService, free with the array). */
GPtrArray *cs_engine_list_services(CsEngine *engine);

/* The engine behind an order being created (prepare_order), for the services it calls. */
CsEngine *cs_create_get_engine(CsCreate *create);
/* The engine behind a step, for the services a step calls. */
CsEngine *cs_step_get_engine(CsStep *step);
/* A service that writes in the step's transaction refuses to run outside it
 * (CS_ERROR_INTERNAL, logged as a programming error). */
gboolean cs_step_check_transaction(CsStep *step, const char *service, GError **error);
/* Work a service schedules for once the step's transaction committed (writing a file the
 * ledger now describes); dropped, with @destroy, when the step rolls back. */
typedef void (*CsStepCommitFunc)(CsEngine *engine, gpointer data);
void cs_step_on_commit(CsStep *step, CsStepCommitFunc func, gpointer data, GDestroyNotify destroy);
/* Inside a transaction: record an attribute of @order (@value NULL removes it). */
gboolean cs_engine_set_attr(
    CsEngine *engine, CsOrder *order, const char *name, const char *value, GError **error);

gboolean cs_engine_set_attr_int(
    CsEngine *engine, CsOrder *order, const char *name, gint64 value, GError **error);
/* CS_ERROR_UNAVAILABLE ("@what is not running") when @service is NULL: a service a step
 * needs is not running (unit tests run the engine without some). */
gboolean cs_engine_require(gconstpointer service, const char *what, GError **error);

/* Work done inside the transaction that records a transition (e.g. completing the office
 * task that asked for it), so both commit or neither does. Return FALSE with @error set to
 * roll the transition back. */
typedef gboolean (*CsEngineTxnFunc)(CsEngine *engine,
				    CsOrder *order,
				    gpointer user_data,
				    GError **error);
/* @func (NULL to unset) runs in the transaction of every transition the engine records,
 * after the step's own work, with the order in its new state: the office queue puts the
 * tasks that state waits for there, so a state and its tasks commit together, in one
 * durable commit. A FALSE return rolls the transition back. */
void cs_engine_set_step_func(CsEngine *engine, CsEngineTxnFunc func, gpointer user_data);
gpointer cs_engine_get_step_data(CsEngine *engine);
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

/* The outcome of a step for whoever asked for it: @error NULL when it was done. */
typedef void (*CsEngineReplyFunc)(const GError *error, gpointer user_data);
/*
 * A step that carries @secrets (name → value: an authorization code, a new PIN), which are
 * never recorded — not in the event, the order, a task or a log — and only the services
 * read (cs_step_get_secret). @reply is called once with the step's outcome: right after the
 * step when it was taken, or when the work its after hook started ends (the hook took it
 * with cs_step_steal_reply). When the step is refused (FALSE) @reply is not called.
 */
gboolean cs_engine_act_with_secrets(CsEngine *engine,
				    const CsRequest *request,
				    CsOrder *order,
				    const char *action,
				    GVariant *params,
				    GHashTable *secrets,
				    CsEngineReplyFunc reply,
				    gpointer reply_data,
				    GError **error);
/* A secret that came with the step, or NULL (for the services only). */
const char *cs_step_get_secret(CsStep *step, const char *name);
/* From an after hook: take over answering the step (called once the work ends). */
CsEngineReplyFunc cs_step_steal_reply(CsStep *step, gpointer *reply_data);

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

/* ---- materials (docs/architecture.md §1.1, §3.3)
 * --------------------------------------------------------- The front reads and checks the content
 * (cs_material_check) off the main loop; the engine decides whether @request may attach @kind to
 * @order now, and records it. */
/* May @request attach @kind to @order now? Access (owner), actor (the applicant), kind (one
 * the flow declares for the order's subject type: CS_ERROR_INVALID_INPUT naming "kind"),
 * state (the flow's material_states: CS_ERROR_WRONG_STATE). */
gboolean cs_engine_check_material(
    CsEngine *engine, const CsRequest *request, CsOrder *order, const char *kind, GError **error);
/* cs_engine_check_material(), then one transaction: the material row (replacing the kind's
 * earlier upload) and a "material" event holding {kind, sha256, size, mime}, never the
 * content. The content was checked and is already stored in the ledger's material store
 * (cs_ledger_get_blobs()) under @sha256, its lower-case hex digest, @size bytes long.
 * Announces a change. */
gboolean cs_engine_attach_material(CsEngine *engine,
				   const CsRequest *request,
				   CsOrder *order,
				   const char *kind,
				   const char *filename,
				   const char *mime,
				   const char *sha256,
				   gint64 size,
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
 * reviewer's note, why a step failed, the payment channel, or a result the flow's step
 * shows (CsResultSpec.shown) when the step recorded one ("reject: the licence scan is
 * unreadable"). @order may be NULL. */
char *cs_engine_event_note(CsOrder *order, const CsEventRow *event);

/* Record the order's subject in the registry in a transaction of its own. */
gboolean cs_engine_record_subject(CsEngine *engine, CsOrder *order, GError **error);

/* The embedded CAs (borrowed; must outlive the engine), set by the daemon. */
typedef struct _CsCaSet CsCaSet;
void cs_engine_set_cas(CsEngine *engine, CsCaSet *cas);
CsCaSet *cs_engine_get_cas(CsEngine *engine);

/* "confirm" → "Confirm", "start_payment" → "StartPayment". */
char *cs_action_to_method(const char *action);

G_END_DECLS
