/*
 * cs-queue.c — the order work queue (see cs-queue.h).
 *
 * Invariants:
 * - Which service an order waits for, which role serves it and what its result must say
 *   all come from the flow's transitions (CsTransition.service, .results): nothing here
 *   names a service or an action.
 * - A task's effect commits in the transaction of the step it causes, or not at all; the
 *   tasks a state waits for commit in the transaction that records the state.
 */
#define G_LOG_DOMAIN "certseald"

#include "cs-queue.h"

struct _CsQueue {
	CsEngine *engine;
	CsTasks *tasks;
};

/* The office services an order in its state waits for, from its plugin's transitions. */
static GPtrArray *
services_waiting(CsOrder *order)
{
	GPtrArray *out = g_ptr_array_new();
	const CsPlugin *plugin = cs_order_get_plugin(order);

	for (guint i = 0; plugin != NULL && i < plugin->n_transitions; i++) {
		const CsTransition *t = &plugin->transitions[i];
		if (t->service == NULL || g_strcmp0(t->from, cs_order_get_state(order)) != 0)
			continue;
		if (!g_ptr_array_find_with_equal_func(out, t->service, g_str_equal, NULL))
			g_ptr_array_add(out, (gpointer)t->service);
	}
	return out;
}

static JsonObject *
order_fields(CsOrder *order)
{
	JsonObject *o = json_object_new();
	GVariantIter iter;
	const char *name;
	GVariant *value;

	g_variant_iter_init(&iter, cs_order_get_fields(order));
	while (g_variant_iter_next(&iter, "{&sv}", &name, &value)) {
		if (g_variant_is_of_type(value, G_VARIANT_TYPE_STRING))
			json_object_set_string_member(o, name, g_variant_get_string(value, NULL));
		g_variant_unref(value);
	}
	return o;
}

static JsonObject *
order_payload(CsOrder *order)
{
	const char *auth_method = cs_order_get_field(order, "auth_method");
	JsonObject *payload = json_object_new();
	JsonObject *o = json_object_new();

	json_object_set_string_member(o, "id", cs_order_get_id(order));
	json_object_set_string_member(o, "kind", cs_order_get_kind(order));
	json_object_set_string_member(o, "subject_type",
				      cs_subject_type_to_string(cs_order_get_subject_type(order)));
	json_object_set_string_member(o, "vendor", cs_order_get_vendor(order));
	json_object_set_string_member(o, "state", cs_order_get_state(order));
	json_object_set_object_member(payload, "order", o);
	/* What a gateway needs to check (an identity check's method and details). */
	if (auth_method != NULL)
		json_object_set_string_member(payload, "method", auth_method);
	json_object_set_object_member(payload, "fields", order_fields(order));
	return payload;
}

/* The tasks @order's state waits for, queued unless open already; @in_txn: inside the
 * transaction that records the state (else each in a transaction of its own). */
static void
queue_order_tasks(CsQueue *queue, CsOrder *order, gboolean in_txn)
{
	g_autoptr(GPtrArray) wanted = services_waiting(order);
	g_autoptr(GError) error = NULL;
	const char *id = cs_order_get_id(order);

	/* Open tasks made for a state the order has left can never commit: end them, so that
	 * no worker is handed a task whose DONE must be refused. Their leases become stale. */
	if (!cs_tasks_end_obsolete(queue->tasks, id, cs_order_get_state(order), &error)) {
		g_warning("order %s: %s", id, error->message);
		g_clear_error(&error);
	}
	for (guint i = 0; i < wanted->len; i++) {
		const char *service = g_ptr_array_index(wanted, i);
		g_autoptr(JsonObject) payload = NULL;
		gboolean found = FALSE;

		if (!cs_tasks_has_open(queue->tasks, id, service, &found, &error)) {
			g_warning("order %s: %s", id, error->message);
			g_clear_error(&error);
			continue;
		}
		if (found)
			continue;
		payload = order_payload(order);
		if (!(in_txn
			  ? cs_tasks_enqueue_in_txn(queue->tasks, service, id,
						    cs_order_get_state(order), payload, 0, NULL,
						    &error)
			  : cs_tasks_enqueue(queue->tasks, service, id, cs_order_get_state(order),
					     payload, 0, NULL, &error))) {
			g_warning("order %s: cannot queue its %s task: %s", id, service,
				  error->message);
			g_clear_error(&error);
		}
	}
}

/* A transition's tasks commit with it; a failure to queue one is logged, and the order
 * is looked at again after the commit (and at the next start, reconcile()). */
static gboolean
queue_in_step(CsEngine *engine, CsOrder *order, gpointer user_data, GError **error)
{
	queue_order_tasks(user_data, order, TRUE);
	return TRUE;
}

/* Any other change (and a task that could not be queued in its step's transaction). */
static void
on_order_changed(CsEngine *engine, CsOrder *order, CsOrderChange change, gpointer user_data)
{
	queue_order_tasks(user_data, order, FALSE);
}

/* Orders that entered an office state just before a crash have no task yet. */
static gboolean
reconcile(CsQueue *queue, GError **error)
{
	g_autoptr(GPtrArray) ids = cs_engine_list_order_ids(queue->engine, error);

	if (ids == NULL)
		return FALSE;
	for (guint i = 0; i < ids->len; i++) {
		CsOrder *order =
		    cs_engine_get_order(queue->engine, g_ptr_array_index(ids, i), error);
		if (order == NULL)
			return FALSE;
		queue_order_tasks(queue, order, FALSE);
	}
	return TRUE;
}

static const char *
result_string(JsonObject *result, const char *name)
{
	if (result == NULL || !json_object_has_member(result, name))
		return NULL;
	return json_object_get_string_member_with_default(result, name, NULL);
}

/* The transition a DONE of @service asks for from the order's state: the only one, or the
 * one the result's "decision" names. */
static const CsTransition *
result_transition(CsOrder *order, const char *service, JsonObject *result, GError **error)
{
	const CsPlugin *plugin = cs_order_get_plugin(order);
	/* A gateway's result says "result" (an identity check's pass or fail). */
	const char *decision = result_string(result, "decision") != NULL
				   ? result_string(result, "decision")
				   : result_string(result, "result");
	g_autoptr(GPtrArray) actions = g_ptr_array_new();
	const CsTransition *only = NULL;

	for (guint i = 0; plugin != NULL && i < plugin->n_transitions; i++) {
		const CsTransition *t = &plugin->transitions[i];
		if (g_strcmp0(t->service, service) != 0 ||
		    g_strcmp0(t->from, cs_order_get_state(order)) != 0)
			continue;
		if (g_ptr_array_find_with_equal_func(actions, t->action, g_str_equal, NULL))
			continue; /* one action, several guarded rows: the engine picks */
		g_ptr_array_add(actions, (gpointer)t->action);
		if (decision != NULL && g_strcmp0(decision, t->action) == 0)
			return t;
		only = t;
	}
	if (actions->len == 1 && decision == NULL)
		return only;
	if (actions->len == 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_WRONG_STATE,
			    "order %s is %s: no %s step leaves it", cs_order_get_id(order),
			    cs_order_get_state(order), service);
	} else {
		g_autofree char *list = NULL;
		g_ptr_array_add(actions, NULL);
		list = g_strjoinv("\" or \"", (char **)actions->pdata);
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "result.decision: must be \"%s\"", list);
	}
	return NULL;
}

/* The result keys @t takes, as the step's parameters (all strings); a required one
 * missing is refused, naming it. */
static GVariant *
result_params(const CsTransition *t, JsonObject *result, GError **error)
{
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
	for (guint i = 0; t->results != NULL && t->results[i].name != NULL; i++) {
		const CsResultSpec *r = &t->results[i];
		const char *v = result_string(result, r->name);
		if (v != NULL && *v != '\0') {
			g_variant_builder_add(&b, "{sv}", r->name, g_variant_new_string(v));
		} else if (r->required) {
			g_variant_builder_clear(&b);
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "result.%s: required",
				    r->name);
			return NULL;
		}
	}
	return g_variant_builder_end(&b);
}

typedef struct {
	CsTasks *tasks;
	const CsTask *task;
	const char *result;
} DoneTxn;

static gboolean
done_in_txn(CsEngine *engine, CsOrder *order, gpointer user_data, GError **error)
{
	DoneTxn *d = user_data;

	return cs_tasks_finish_in_txn(d->tasks, d->task, d->result, error);
}

static gboolean
complete_order_task(CsTasks *tasks,
		    const CsRequest *request,
		    const CsTask *task,
		    JsonObject *result,
		    const char *result_text,
		    gpointer user_data,
		    GError **error)
{
	CsQueue *queue = user_data;
	CsOrder *order = cs_engine_get_order(queue->engine, task->order_id, error);
	const CsTransition *t;
	GVariant *params;
	DoneTxn d = {tasks, task, result_text};
	CsRequest as_role = *request;

	if (order == NULL)
		return FALSE;
	if (g_strcmp0(cs_order_get_state(order), task->expected_state) != 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_WRONG_STATE,
			    "order %s is %s, no longer %s: the task is obsolete", task->order_id,
			    cs_order_get_state(order), task->expected_state);
		return FALSE;
	}
	t = result_transition(order, task->service, result, error);
	if (t == NULL)
		return FALSE;
	params = result_params(t, result, error);
	if (params == NULL)
		return FALSE;
	/* The step is taken in the role of the service (an admin acts as that role). */
	as_role.actor = cs_tasks_service_role(tasks, task->service);
	return cs_engine_act_with(queue->engine, &as_role, order, t->action, params, NULL,
				  done_in_txn, &d, error);
}

CsQueue *
cs_queue_new(CsEngine *engine, CsTasks *tasks, GError **error)
{
	g_autoptr(CsQueue) queue = g_new0(CsQueue, 1);
	g_autoptr(GPtrArray) services = cs_engine_list_services(engine);

	queue->engine = engine;
	queue->tasks = tasks;
	for (guint i = 0; i < services->len; i++) {
		CsEngineService *s = g_ptr_array_index(services, i);
		if (!cs_tasks_add_order_service(tasks, s->name, s->role, error))
			return NULL;
	}
	cs_tasks_set_order_func(tasks, complete_order_task, queue);
	if (!reconcile(queue, error))
		return NULL;
	cs_engine_add_listener(engine, on_order_changed, queue);
	cs_engine_set_step_func(engine, queue_in_step, queue);
	return g_steal_pointer(&queue);
}

void
cs_queue_free(CsQueue *queue)
{
	if (queue == NULL)
		return;
	cs_engine_remove_listener(queue->engine, on_order_changed, queue);
	if (cs_engine_get_step_data(queue->engine) == queue)
		cs_engine_set_step_func(queue->engine, NULL, NULL);
	if (cs_tasks_get_order_data(queue->tasks) == queue)
		cs_tasks_set_order_func(queue->tasks, NULL, NULL);
	g_free(queue);
}
