/*
 * cs-tasks.h — the office's durable task queue, in the ledger (dbus/office-protocol.md).
 *
 * Tasks live in the ledger's `tasks` table: queued → leased → done (or failed), and back
 * to queued when a lease is lost. A lease is a random id stored with the task; the office
 * front decides when a lease runs out (heartbeats, claim time) and releases it here, so a
 * DONE carrying a lease that is no longer the task's is refused: the effect of a task is
 * committed at most once, in the same transaction as the order transition it causes,
 * and only while the order is still in the state the task was made for.
 *
 * Order tasks are created from the flows' declarations, not by fronts: the order work
 * queue (services/cs-queue.h) queues a task of a transition's service whenever an order
 * enters the state it leaves, and completes it through the engine; it registers those
 * services here (cs_tasks_add_order_service). Gateway tasks (sms, mail, idv, bank,
 * cashier) are the platform's own, queued by services such as cs_tasks_send_sms(), which
 * also enforces the SMS limits. Task payloads never carry a secret: they carry
 * `secret_ref`, the id of a sealed secret.
 *
 * Every office CALL that reads or acts (not `info`) and every DONE is recorded as a ledger
 * event with the worker's user id (cs_tasks_record_call(), and the transition or
 * "task.done" event of a DONE); repeats of one read by one worker within a minute are
 * folded into one event with their count.
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include "certseal/plugin.h"
#include "cs-config.h"
#include "cs-ledger.h"
#include "cs-vault.h"

G_BEGIN_DECLS

typedef struct _CsTasks CsTasks;

typedef struct {
	gint64 id;
	char *service;
	char *order_id;	      /* may be NULL */
	char *expected_state; /* may be NULL */
	char *payload;	      /* JSON object */
	gint64 secret_ref;    /* 0 when none */
	char *state;	      /* queued | leased | done | failed */
	char *lease;	      /* may be NULL */
	char *lease_user;     /* may be NULL */
	gint64 attempts;
	char *result; /* JSON, may be NULL */
	gint64 created;
} CsTask;

void cs_task_free(CsTask *task);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsTask, cs_task_free)
/* The task as the JSON object of a TASK body: {task_id, lease, service, order_id, payload}. */
JsonObject *cs_task_to_json(const CsTask *task);

/* Called (on the main loop) whenever a task may be waiting: after queueing or release. */
typedef void (*CsTasksQueuedFunc)(CsTasks *tasks, const char *service, gpointer user_data);

/* Revokes the leases left from a previous run (their tasks go back to the queue) and ends
 * the payment requests nobody waits for any more. @config gives the SMS limits. */
CsTasks *cs_tasks_new(CsLedger *ledger, CsVault *vault, CsConfig *config, GError **error);
void cs_tasks_free(CsTasks *tasks);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsTasks, cs_tasks_free)
void cs_tasks_set_queued_func(CsTasks *tasks, CsTasksQueuedFunc func, gpointer user_data);
/* Called (on the main loop) after a gateway task (cashier, sms, …) was completed. */
typedef void (*CsTasksDoneFunc)(CsTasks *tasks,
				const CsTask *task,
				const char *result_json,
				gpointer user_data);
void cs_tasks_set_done_func(CsTasks *tasks, CsTasksDoneFunc func, gpointer user_data);

/* The services known and the role (CsActor bit) that serves each; 0 when unknown. */
guint cs_tasks_service_role(CsTasks *tasks, const char *service);
/* Does @request hold the role of @service (or admin, except for the gateway services,
 * whose tasks carry secrets: those need the gateway role itself)? */
gboolean cs_tasks_may_serve(CsTasks *tasks, const CsRequest *request, const char *service);
/* A flow's office service, served by @role; refused when another role serves it. */
gboolean
cs_tasks_add_order_service(CsTasks *tasks, const char *service, guint role, GError **error);
/* Every service known: the flows' order services, then the gateway services. */
GStrv cs_tasks_list_services(CsTasks *tasks);

/* Completes a leased task of an order service (the DONE of a review, a make, …): takes the
 * order's step and, in its transaction, cs_tasks_finish_in_txn(). */
typedef gboolean (*CsTasksOrderFunc)(CsTasks *tasks,
				     const CsRequest *request,
				     const CsTask *task,
				     JsonObject *result,
				     const char *result_text,
				     gpointer user_data,
				     GError **error);
void cs_tasks_set_order_func(CsTasks *tasks, CsTasksOrderFunc func, gpointer user_data);
gpointer cs_tasks_get_order_data(CsTasks *tasks);
/* Inside the transaction of the step a task's DONE causes: the one UPDATE that proves the
 * lease and ends the task (WrongState when the lease is no longer the task's). */
gboolean
cs_tasks_finish_in_txn(CsTasks *tasks, const CsTask *task, const char *result, GError **error);
/* Is a task of @service open (queued or leased) for @order_id? */
gboolean cs_tasks_has_open(
    CsTasks *tasks, const char *order_id, const char *service, gboolean *found, GError **error);
/* End the open tasks of @order_id made for a state other than @state: they can never
 * commit, and no worker should be handed one. */
gboolean
cs_tasks_end_obsolete(CsTasks *tasks, const char *order_id, const char *state, GError **error);

/* Queue a task. @payload: a JSON object or NULL for {}. */
gboolean cs_tasks_enqueue(CsTasks *tasks,
			  const char *service,
			  const char *order_id,
			  const char *expected_state,
			  JsonObject *payload,
			  gint64 secret_ref,
			  gint64 *id_out,
			  GError **error);

/* cs_tasks_enqueue() inside the caller's transaction; workers hear of it once the main loop
 * runs again. */
gboolean cs_tasks_enqueue_in_txn(CsTasks *tasks,
				 const char *service,
				 const char *order_id,
				 const char *expected_state,
				 JsonObject *payload,
				 gint64 secret_ref,
				 gint64 *id_out,
				 GError **error);

/* Lease the oldest queued task of @service to @user; NULL without error when none. */
CsTask *cs_tasks_lease_next(CsTasks *tasks, const char *service, const char *user, GError **error);
/* Lease the open task of @service for @order_id. A task already leased by @user is
 * returned with its lease; one leased by someone else is refused (WrongState). */
CsTask *cs_tasks_claim(
    CsTasks *tasks, const char *order_id, const char *service, const char *user, GError **error);
/* The leased task holding @lease, or NULL with WrongState ("lease … is no longer valid"). */
CsTask *cs_tasks_get_by_lease(CsTasks *tasks, const char *lease, GError **error);
/* Lose a lease: its task goes back to the queue. FALSE when the lease was not current. */
gboolean cs_tasks_release(CsTasks *tasks, const char *lease);

/* Commit the result of a leased task (DONE), exactly once. */
gboolean cs_tasks_complete(CsTasks *tasks,
			   const CsRequest *request,
			   const char *lease,
			   JsonObject *result,
			   GError **error);
/* FAIL: the task goes back to the queue, or to failed after 5 attempts. */
gboolean cs_tasks_fail(CsTasks *tasks,
		       const CsRequest *request,
		       const char *lease,
		       const char *reason,
		       GError **error);

/* Nobody waits for task @task_id any more (a StartPayment gave up): it ends as failed
 * with @reason, so no worker takes it and a late DONE is refused. */
gboolean cs_tasks_abandon(CsTasks *tasks, gint64 task_id, const char *reason, GError **error);

/* End the open cashier tasks of @kind ("precreate") of @order_id (NULL: of every order),
 * as cs_tasks_abandon() does. Inside or outside a transaction. */
gboolean cs_tasks_abandon_requests(
    CsTasks *tasks, const char *order_id, const char *kind, const char *reason, GError **error);

/* Tasks (CsTask), oldest first; @state and @service may be NULL for all. */
GPtrArray *cs_tasks_list(CsTasks *tasks, const char *state, const char *service, GError **error);

/* The plaintext of a leased task's secret, for the worker holding @lease only. */
GBytes *cs_tasks_open_secret(CsTasks *tasks, const char *lease, GError **error);

/* How long repeats of one read by one worker are folded into one event. */
#define CS_TASKS_CALL_FOLD_US (60 * G_USEC_PER_SEC)

/*
 * Record an office CALL (method and order, never parameters) as a ledger event
 * {"method"}. With @fold (calls that only read), a repeat of the same method on the same
 * order by the same worker within CS_TASKS_CALL_FOLD_US of the recorded one writes
 * nothing at once: the repeats are counted and written as one event {"method", "repeats"}
 * when the minute is over (cs_tasks_flush_calls()), or before the next recorded one.
 */
gboolean cs_tasks_record_call(CsTasks *tasks,
			      const CsRequest *request,
			      const char *method,
			      const char *order_id,
			      gboolean fold,
			      GError **error);

/* Write the counts of folded calls whose minute is over (all of them with @all, as the
 * daemon stops). */
void cs_tasks_flush_calls(CsTasks *tasks, gboolean all);

/*
 * Queue an SMS to @phone: enforces the resend cooldown and the per-phone daily cap
 * (RateLimited), seals @secret (may be NULL) and refers to it by id. @params: a JSON
 * object or NULL. One transaction.
 */
gboolean cs_tasks_send_sms(CsTasks *tasks,
			   const char *order_id,
			   const char *phone,
			   const char *template_name,
			   JsonObject *params,
			   const char *secret,
			   gint64 *task_id_out,
			   GError **error);

/* cs_tasks_send_sms() inside the caller's transaction; @enforce_limits FALSE for the
 * platform's own notices, which are neither limited nor counted. */
gboolean cs_tasks_send_sms_in_txn(CsTasks *tasks,
				  const char *order_id,
				  const char *phone,
				  const char *template_name,
				  JsonObject *params,
				  const char *secret,
				  gboolean enforce_limits,
				  GError **error);

/* The built-in sandbox gateway: handle one leased task of sms, mail, idv or bank. */
gboolean cs_tasks_run_sandbox(CsTasks *tasks, const char *lease, GError **error);
/* Is @service one the built-in sandbox can serve? */
gboolean cs_tasks_sandbox_serves(const char *service);
/* The sandbox outbox of @service: [{id, task_id, to, text, time}], newest last. */
JsonArray *cs_tasks_list_outbox(CsTasks *tasks, const char *service, GError **error);

G_END_DECLS
