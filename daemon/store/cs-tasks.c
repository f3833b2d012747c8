/*
 * cs-tasks.c — durable leased tasks in the ledger (see cs-tasks.h).
 *
 * Invariants:
 * - A task's lease column is the only proof of a lease: completing or failing checks it in
 *   the same UPDATE that changes the task (WHERE lease = ? AND state = 'leased'), inside the
 *   transaction that also records the effect, so a stale or duplicated DONE changes nothing.
 * - At most one open (queued or leased) task per order and service.
 * - Secrets are never copied into payloads, results, events or logs; a one-time secret is
 *   wiped in the transaction that completes the task delivering it.
 */
#define G_LOG_DOMAIN "certseald"

#include <sqlite3.h>
#include <string.h>

#include "cs-request.h"
#include "cs-json.h"
#include "cs-tasks.h"
#include "cs-vault.h"

#define CS_TASKS_MAX_ATTEMPTS 5
#define DAY_US (G_GINT64_CONSTANT(86400) * G_USEC_PER_SEC)

G_DEFINE_AUTOPTR_CLEANUP_FUNC(sqlite3_stmt, sqlite3_finalize)

struct _CsTasks {
	CsLedger *ledger;
	CsVault *vault;
	CsConfig *config;
	sqlite3 *db;
	GHashTable *order_services; /* name → role (CsActor bit), from the loaded flows */
	CsTasksOrderFunc order_func;
	gpointer order_data;
	CsTasksQueuedFunc queued_func;
	gpointer queued_data;
	CsTasksDoneFunc done_func;
	gpointer done_data;
	GPtrArray *deferred; /* services queued inside a transaction, told on idle */
	guint deferred_source;
	GHashTable *recent_calls; /* "actor\nmethod\norder" → RecentCall, folded reads */
};

typedef struct {
	char *actor;
	char *method;
	char *order_id; /* NULL for calls on no order */
	gint64 since;	/* real time of the recorded call */
	guint repeats;	/* folded since, not yet written */
} RecentCall;

static void
recent_call_free(RecentCall *c)
{
	g_free(c->actor);
	g_free(c->method);
	g_free(c->order_id);
	g_free(c);
}

/* The platform's gateway services and the role that serves each. The order services
 * (review, make, …) are the loaded flows' own: cs_tasks_add_order_service(). */
static const struct {
	const char *service;
	guint role;
} gateway_services[] = {
    {"cashier", CS_ACTOR_CASHIER}, {"sms", CS_ACTOR_GATEWAY},  {"mail", CS_ACTOR_GATEWAY},
    {"idv", CS_ACTOR_GATEWAY},	   {"bank", CS_ACTOR_GATEWAY},
};

static guint
gateway_role(const char *service)
{
	for (guint i = 0; i < G_N_ELEMENTS(gateway_services); i++) {
		if (g_strcmp0(gateway_services[i].service, service) == 0)
			return gateway_services[i].role;
	}
	return 0;
}

static gboolean
is_order_service(CsTasks *tasks, const char *service)
{
	return service != NULL && g_hash_table_contains(tasks->order_services, service);
}

guint
cs_tasks_service_role(CsTasks *tasks, const char *service)
{
	if (is_order_service(tasks, service))
		return GPOINTER_TO_UINT(g_hash_table_lookup(tasks->order_services, service));
	return gateway_role(service);
}

gboolean
cs_tasks_add_order_service(CsTasks *tasks, const char *service, guint role, GError **error)
{
	guint known = cs_tasks_service_role(tasks, service);

	/* A flow may serve a gateway service's tasks for its orders (an identity check), in
	 * the same role; never another role's. */
	if (known != 0 && known != role) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "service %s: already served by another role", service);
		return FALSE;
	}
	g_hash_table_insert(tasks->order_services, g_strdup(service), GUINT_TO_POINTER(role));
	return TRUE;
}

GStrv
cs_tasks_list_services(CsTasks *tasks)
{
	g_autoptr(GStrvBuilder) b = g_strv_builder_new();
	g_autofree const char **names = NULL;
	guint n = 0;

	names = (const char **)g_hash_table_get_keys_as_array(tasks->order_services, &n);
	for (guint i = 0; i < n; i++)
		g_strv_builder_add(b, names[i]);
	for (guint i = 0; i < G_N_ELEMENTS(gateway_services); i++)
		g_strv_builder_add(b, gateway_services[i].service);
	return g_strv_builder_end(b);
}

void
cs_tasks_set_order_func(CsTasks *tasks, CsTasksOrderFunc func, gpointer user_data)
{
	tasks->order_func = func;
	tasks->order_data = user_data;
}

gpointer
cs_tasks_get_order_data(CsTasks *tasks)
{
	return tasks->order_data;
}

gboolean
cs_tasks_may_serve(CsTasks *tasks, const CsRequest *request, const char *service)
{
	guint role = cs_tasks_service_role(tasks, service);

	/* Gateway tasks carry secrets to deliver (codes, the certificate password): only a
	 * gateway serves them, never a member of staff, whatever their roles. */
	if (role == CS_ACTOR_GATEWAY)
		return (request->roles & CS_ACTOR_GATEWAY) != 0;
	return role != 0 && (request->roles & (role | CS_ACTOR_ADMIN)) != 0;
}

gboolean
cs_tasks_sandbox_serves(const char *service)
{
	return g_strcmp0(service, "sms") == 0 || g_strcmp0(service, "mail") == 0 ||
	       g_strcmp0(service, "idv") == 0 || g_strcmp0(service, "bank") == 0;
}

void
cs_task_free(CsTask *task)
{
	if (task == NULL)
		return;
	g_free(task->service);
	g_free(task->order_id);
	g_free(task->expected_state);
	g_free(task->payload);
	g_free(task->state);
	g_free(task->lease);
	g_free(task->lease_user);
	g_free(task->result);
	g_free(task);
}

static JsonNode *
parse_json(const char *text)
{
	/* Results and parameters came from workers: read back as JSON from outside. */
	return text != NULL ? cs_json_parse_untrusted(text, -1, NULL) : NULL;
}

JsonObject *
cs_task_to_json(const CsTask *task)
{
	JsonObject *o = json_object_new();
	JsonNode *payload = parse_json(task->payload);

	json_object_set_int_member(o, "task_id", task->id);
	if (task->lease != NULL)
		json_object_set_string_member(o, "lease", task->lease);
	json_object_set_string_member(o, "service", task->service);
	if (task->order_id != NULL)
		json_object_set_string_member(o, "order_id", task->order_id);
	else
		json_object_set_null_member(o, "order_id");
	json_object_set_string_member(o, "state", task->state);
	if (task->lease_user != NULL)
		json_object_set_string_member(o, "lease_user", task->lease_user);
	json_object_set_int_member(o, "attempts", task->attempts);
	if (payload == NULL)
		payload = json_node_init_object(json_node_alloc(), NULL);
	json_object_set_member(o, "payload", payload);
	if (task->result != NULL) {
		JsonNode *r = parse_json(task->result);
		if (r != NULL)
			json_object_set_member(o, "result", r);
	}
	return o;
}

static gboolean
db_error(CsTasks *tasks, const char *what, GError **error)
{
	g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "ledger: %s: %s", what,
		    sqlite3_errmsg(tasks->db));
	return FALSE;
}

static sqlite3_stmt *
prepare(CsTasks *tasks, const char *sql, GError **error)
{
	sqlite3_stmt *stmt = NULL;

	if (sqlite3_prepare_v2(tasks->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
		db_error(tasks, "preparing a statement", error);
		return NULL;
	}
	return stmt;
}

static gboolean
exec_stmt(CsTasks *tasks, sqlite3_stmt *stmt, const char *what, GError **error)
{
	int rc = sqlite3_step(stmt);

	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return db_error(tasks, what, error);
	return TRUE;
}

static void
bind_str(sqlite3_stmt *stmt, int i, const char *s)
{
	if (s == NULL)
		sqlite3_bind_null(stmt, i);
	else
		sqlite3_bind_text(stmt, i, s, -1, SQLITE_TRANSIENT);
}

static char *
col_str(sqlite3_stmt *stmt, int i)
{
	const unsigned char *s = sqlite3_column_text(stmt, i);

	return s != NULL ? g_strdup((const char *)s) : NULL;
}

#define TASK_COLUMNS                                                                               \
	"id, service, order_id, expected_state, payload, secret_ref, state, lease, lease_user, "   \
	"attempts, result, created"

static CsTask *
task_from_row(sqlite3_stmt *stmt)
{
	CsTask *t = g_new0(CsTask, 1);

	t->id = sqlite3_column_int64(stmt, 0);
	t->service = col_str(stmt, 1);
	t->order_id = col_str(stmt, 2);
	t->expected_state = col_str(stmt, 3);
	t->payload = col_str(stmt, 4);
	t->secret_ref = sqlite3_column_int64(stmt, 5);
	t->state = col_str(stmt, 6);
	t->lease = col_str(stmt, 7);
	t->lease_user = col_str(stmt, 8);
	t->attempts = sqlite3_column_int64(stmt, 9);
	t->result = col_str(stmt, 10);
	t->created = sqlite3_column_int64(stmt, 11);
	return t;
}

/* The first task a query returns, or NULL (error set only on failure). */
static CsTask *
query_task(CsTasks *tasks, sqlite3_stmt *stmt, GError **error)
{
	int rc = sqlite3_step(stmt);

	if (rc == SQLITE_ROW)
		return task_from_row(stmt);
	if (rc != SQLITE_DONE)
		db_error(tasks, "reading tasks", error);
	return NULL;
}

static void
notify_queued(CsTasks *tasks, const char *service)
{
	if (tasks->queued_func != NULL)
		tasks->queued_func(tasks, service, tasks->queued_data);
}

void
cs_tasks_set_queued_func(CsTasks *tasks, CsTasksQueuedFunc func, gpointer user_data)
{
	tasks->queued_func = func;
	tasks->queued_data = user_data;
}

void
cs_tasks_set_done_func(CsTasks *tasks, CsTasksDoneFunc func, gpointer user_data)
{
	tasks->done_func = func;
	tasks->done_data = user_data;
}

/* A task queued inside someone else's transaction is announced once the main loop runs
 * again, after that transaction committed (or rolled back: a worker then finds nothing). */
static gboolean
flush_deferred(gpointer user_data)
{
	CsTasks *tasks = user_data;
	g_autoptr(GPtrArray) queued = g_steal_pointer(&tasks->deferred);

	tasks->deferred = g_ptr_array_new_with_free_func(g_free);
	tasks->deferred_source = 0;
	for (guint i = 0; i < queued->len; i++)
		notify_queued(tasks, g_ptr_array_index(queued, i));
	return G_SOURCE_REMOVE;
}

static void
notify_later(CsTasks *tasks, const char *service)
{
	if (!g_ptr_array_find_with_equal_func(tasks->deferred, service, g_str_equal, NULL))
		g_ptr_array_add(tasks->deferred, g_strdup(service));
	if (tasks->deferred_source == 0)
		tasks->deferred_source = g_idle_add(flush_deferred, tasks);
}

/* Inside a transaction. */
static gboolean
insert_task(CsTasks *tasks,
	    const char *service,
	    const char *order_id,
	    const char *expected_state,
	    JsonObject *payload,
	    gint64 secret_ref,
	    gint64 *id_out,
	    GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;
	g_autoptr(JsonNode) node = json_node_alloc();
	g_autoptr(JsonObject) empty = json_object_new();
	g_autofree char *text = NULL;
	gint64 now = g_get_real_time();

	json_node_init_object(node, payload != NULL ? payload : empty);
	text = json_to_string(node, FALSE);
	stmt = prepare(tasks,
		       "INSERT INTO tasks (service, order_id, expected_state, payload, secret_ref, "
		       "state, created, updated) VALUES (?1, ?2, ?3, ?4, ?5, 'queued', ?6, ?6)",
		       error);
	if (stmt == NULL)
		return FALSE;
	bind_str(stmt, 1, service);
	bind_str(stmt, 2, order_id);
	bind_str(stmt, 3, expected_state);
	bind_str(stmt, 4, text);
	if (secret_ref > 0)
		sqlite3_bind_int64(stmt, 5, secret_ref);
	else
		sqlite3_bind_null(stmt, 5);
	sqlite3_bind_int64(stmt, 6, now);
	if (!exec_stmt(tasks, stmt, "queueing a task", error))
		return FALSE;
	if (id_out != NULL)
		*id_out = sqlite3_last_insert_rowid(tasks->db);
	return TRUE;
}

gboolean
cs_tasks_enqueue_in_txn(CsTasks *tasks,
			const char *service,
			const char *order_id,
			const char *expected_state,
			JsonObject *payload,
			gint64 secret_ref,
			gint64 *id_out,
			GError **error)
{
	if (cs_tasks_service_role(tasks, service) == 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "service: unknown '%s'",
			    service);
		return FALSE;
	}
	if (!insert_task(tasks, service, order_id, expected_state, payload, secret_ref, id_out,
			 error))
		return FALSE;
	notify_later(tasks, service);
	return TRUE;
}

gboolean
cs_tasks_enqueue(CsTasks *tasks,
		 const char *service,
		 const char *order_id,
		 const char *expected_state,
		 JsonObject *payload,
		 gint64 secret_ref,
		 gint64 *id_out,
		 GError **error)
{
	if (!cs_ledger_begin(tasks->ledger, error))
		return FALSE;
	if (!cs_tasks_enqueue_in_txn(tasks, service, order_id, expected_state, payload, secret_ref,
				     id_out, error) ||
	    !cs_ledger_commit(tasks->ledger, error)) {
		cs_ledger_rollback(tasks->ledger);
		return FALSE;
	}
	return TRUE;
}

gboolean
cs_tasks_has_open(
    CsTasks *tasks, const char *order_id, const char *service, gboolean *found, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt =
	    prepare(tasks,
		    "SELECT count(*) FROM tasks WHERE order_id = ?1 AND service = ?2 "
		    "AND state IN ('queued', 'leased')",
		    error);

	if (stmt == NULL)
		return FALSE;
	bind_str(stmt, 1, order_id);
	bind_str(stmt, 2, service);
	if (sqlite3_step(stmt) != SQLITE_ROW)
		return db_error(tasks, "reading tasks", error);
	*found = sqlite3_column_int64(stmt, 0) > 0;
	return TRUE;
}

gboolean
cs_tasks_end_obsolete(CsTasks *tasks, const char *order_id, const char *state, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt =
	    prepare(tasks,
		    "UPDATE tasks SET state = 'failed', lease = NULL, updated = ?3, "
		    "result = '{\"error\":\"obsolete: the order moved on\"}' "
		    "WHERE order_id = ?1 AND state IN ('queued', 'leased') "
		    "AND expected_state IS NOT NULL AND expected_state != ?2",
		    error);

	if (stmt == NULL)
		return FALSE;
	bind_str(stmt, 1, order_id);
	bind_str(stmt, 2, state);
	sqlite3_bind_int64(stmt, 3, g_get_real_time());
	return exec_stmt(tasks, stmt, "ending obsolete tasks", error);
}

CsTasks *
cs_tasks_new(CsLedger *ledger, CsVault *vault, CsConfig *config, GError **error)
{
	g_autoptr(CsTasks) tasks = g_new0(CsTasks, 1);
	g_autoptr(sqlite3_stmt) stmt = NULL;
	int revoked;

	tasks->ledger = ledger;
	tasks->vault = vault;
	tasks->config = config;
	tasks->db = cs_ledger_get_db(tasks->ledger);
	tasks->order_services = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	tasks->deferred = g_ptr_array_new_with_free_func(g_free);
	/* Leases do not outlive the daemon that granted them: their holders cannot prove
	 * they are still alive, so the tasks are queued again (a late DONE is refused). */
	stmt = prepare(tasks,
		       "UPDATE tasks SET state = 'queued', lease = NULL, lease_user = NULL "
		       "WHERE state = 'leased'",
		       error);
	if (stmt == NULL || !exec_stmt(tasks, stmt, "revoking old leases", error))
		return NULL;
	revoked = sqlite3_changes(tasks->db);
	if (revoked > 0)
		g_message("office: %d lease(s) of the previous run revoked; their tasks are queued",
			  revoked);
	/* A payment being set up had a D-Bus caller waiting, who is gone with the previous
	 * run: nobody would show the QR code a cashier made now. */
	if (!cs_tasks_abandon_requests(tasks, NULL, "precreate",
				       "the daemon restarted before the payment was set up", error))
		return NULL;
	return g_steal_pointer(&tasks);
}

void
cs_tasks_free(CsTasks *tasks)
{
	if (tasks == NULL)
		return;
	if (tasks->recent_calls != NULL) {
		cs_tasks_flush_calls(tasks, TRUE);
		g_hash_table_unref(tasks->recent_calls);
	}
	if (tasks->deferred_source != 0)
		g_source_remove(tasks->deferred_source);
	g_clear_pointer(&tasks->deferred, g_ptr_array_unref);
	g_clear_pointer(&tasks->order_services, g_hash_table_unref);
	g_free(tasks);
}

static char *
new_lease(void)
{
	return g_uuid_string_random();
}

/*
 * Granting a lease is not an acknowledged change: every start revokes all leases, so a
 * lease lost in a power cut changes nothing. Its write therefore skips the fsync of
 * synchronous=FULL (in WAL mode, NORMAL stays consistent and is made durable by the next
 * FULL commit — the DONE that uses the lease). Only when no transaction is open.
 */
static gboolean
exec_volatile(CsTasks *tasks, sqlite3_stmt *stmt, const char *what, GError **error)
{
	gboolean own = sqlite3_get_autocommit(tasks->db) != 0;
	gboolean ok;

	if (own)
		sqlite3_exec(tasks->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
	ok = exec_stmt(tasks, stmt, what, error);
	sqlite3_reset(stmt); /* ends the statement's implicit transaction: commits now */
	if (own)
		sqlite3_exec(tasks->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL);
	return ok;
}

static gboolean
set_leased(CsTasks *tasks, CsTask *task, const char *user, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;
	g_autofree char *lease = new_lease();

	stmt = prepare(tasks,
		       "UPDATE tasks SET state = 'leased', lease = ?2, lease_user = ?3, "
		       "attempts = attempts + 1, updated = ?4 WHERE id = ?1 AND state = 'queued'",
		       error);
	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_int64(stmt, 1, task->id);
	bind_str(stmt, 2, lease);
	bind_str(stmt, 3, user);
	sqlite3_bind_int64(stmt, 4, g_get_real_time());
	if (!exec_volatile(tasks, stmt, "leasing a task", error))
		return FALSE;
	if (sqlite3_changes(tasks->db) != 1) {
		g_set_error(error, CS_ERROR, CS_ERROR_WRONG_STATE,
			    "task %" G_GINT64_FORMAT " is no longer queued", task->id);
		return FALSE;
	}
	g_free(task->state);
	task->state = g_strdup("leased");
	g_free(task->lease);
	task->lease = g_steal_pointer(&lease);
	g_free(task->lease_user);
	task->lease_user = g_strdup(user);
	task->attempts++;
	return TRUE;
}

CsTask *
cs_tasks_lease_next(CsTasks *tasks, const char *service, const char *user, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt =
	    prepare(tasks,
		    "SELECT " TASK_COLUMNS " FROM tasks WHERE service = ?1 AND state = 'queued' "
		    "ORDER BY id LIMIT 1",
		    error);
	g_autoptr(CsTask) task = NULL;

	if (stmt == NULL)
		return NULL;
	bind_str(stmt, 1, service);
	task = query_task(tasks, stmt, error);
	if (task == NULL)
		return NULL;
	g_clear_pointer(&stmt, sqlite3_finalize);
	if (!set_leased(tasks, task, user, error))
		return NULL;
	return g_steal_pointer(&task);
}

CsTask *
cs_tasks_claim(
    CsTasks *tasks, const char *order_id, const char *service, const char *user, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt =
	    prepare(tasks,
		    "SELECT " TASK_COLUMNS " FROM tasks WHERE order_id = ?1 AND service = ?2 "
		    "AND state IN ('queued', 'leased') ORDER BY id LIMIT 1",
		    error);
	g_autoptr(CsTask) task = NULL;
	g_autoptr(GError) local = NULL;

	if (stmt == NULL)
		return NULL;
	bind_str(stmt, 1, order_id);
	bind_str(stmt, 2, service);
	task = query_task(tasks, stmt, &local);
	if (task == NULL) {
		if (local != NULL) {
			g_propagate_error(error, g_steal_pointer(&local));
			return NULL;
		}
		g_set_error(error, CS_ERROR, CS_ERROR_NOT_FOUND, "order %s has no open %s task",
			    order_id, service);
		return NULL;
	}
	g_clear_pointer(&stmt, sqlite3_finalize);
	if (g_strcmp0(task->state, "leased") == 0) {
		if (g_strcmp0(task->lease_user, user) == 0)
			return g_steal_pointer(&task);
		g_set_error(error, CS_ERROR, CS_ERROR_WRONG_STATE,
			    "the %s task of order %s is held by %s", service, order_id,
			    task->lease_user);
		return NULL;
	}
	if (!set_leased(tasks, task, user, error))
		return NULL;
	return g_steal_pointer(&task);
}

CsTask *
cs_tasks_get_by_lease(CsTasks *tasks, const char *lease, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = prepare(
	    tasks, "SELECT " TASK_COLUMNS " FROM tasks WHERE lease = ?1 AND state = 'leased'",
	    error);
	g_autoptr(GError) local = NULL;
	CsTask *task;

	if (stmt == NULL)
		return NULL;
	bind_str(stmt, 1, lease);
	task = query_task(tasks, stmt, &local);
	if (task == NULL) {
		if (local != NULL)
			g_propagate_error(error, g_steal_pointer(&local));
		else
			g_set_error_literal(error, CS_ERROR, CS_ERROR_WRONG_STATE,
					    "lease: no longer valid (lost, or the task is done)");
	}
	return task;
}

gboolean
cs_tasks_release(CsTasks *tasks, const char *lease)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(sqlite3_stmt) stmt = prepare(
	    tasks,
	    "UPDATE tasks SET state = 'queued', lease = NULL, lease_user = NULL, updated = ?2 "
	    "WHERE lease = ?1 AND state = 'leased' RETURNING service",
	    &error);
	g_autofree char *service = NULL;

	if (stmt == NULL) {
		g_warning("%s", error->message);
		return FALSE;
	}
	bind_str(stmt, 1, lease);
	sqlite3_bind_int64(stmt, 2, g_get_real_time());
	if (sqlite3_step(stmt) != SQLITE_ROW)
		return FALSE;
	service = col_str(stmt, 0);
	g_clear_pointer(&stmt, sqlite3_finalize);
	notify_queued(tasks, service);
	return TRUE;
}

/* The one UPDATE that proves the lease and ends the task (inside the transaction). */
static gboolean
mark_done(CsTasks *tasks, const CsTask *task, const char *state, const char *result, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt =
	    prepare(tasks,
		    "UPDATE tasks SET state = ?3, result = ?4, lease = NULL, updated = ?5 "
		    "WHERE id = ?1 AND lease = ?2 AND state = 'leased'",
		    error);

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_int64(stmt, 1, task->id);
	bind_str(stmt, 2, task->lease);
	bind_str(stmt, 3, state);
	bind_str(stmt, 4, result);
	sqlite3_bind_int64(stmt, 5, g_get_real_time());
	if (!exec_stmt(tasks, stmt, "completing a task", error))
		return FALSE;
	if (sqlite3_changes(tasks->db) != 1) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_WRONG_STATE,
				    "lease: no longer valid (lost, or the task is done)");
		return FALSE;
	}
	if (task->secret_ref > 0 && g_strcmp0(state, "done") == 0 &&
	    !cs_ledger_wipe_secret(tasks->ledger, task->secret_ref, g_get_real_time(), error))
		return FALSE;
	return TRUE;
}

gboolean
cs_tasks_finish_in_txn(CsTasks *tasks, const CsTask *task, const char *result, GError **error)
{
	return mark_done(tasks, task, "done", result, error);
}

static char *
json_object_to_text(JsonObject *o)
{
	g_autoptr(JsonNode) node = json_node_alloc();
	g_autoptr(JsonObject) empty = json_object_new();

	json_node_init_object(node, o != NULL ? o : empty);
	return json_to_string(node, FALSE);
}

static gboolean
complete_gateway_task(
    CsTasks *tasks, const CsRequest *request, CsTask *task, const char *text, GError **error)
{
	g_autofree char *actor = cs_request_to_actor(request);
	GVariantDict data;
	g_autoptr(GVariant) v = NULL;

	g_variant_dict_init(&data, NULL);
	g_variant_dict_insert(&data, "task_id", "x", task->id);
	g_variant_dict_insert(&data, "service", "s", task->service);
	v = g_variant_ref_sink(g_variant_dict_end(&data));
	if (!cs_ledger_begin(tasks->ledger, error))
		return FALSE;
	if (!mark_done(tasks, task, "done", text, error) ||
	    !cs_ledger_append_event(tasks->ledger, task->order_id, "task.done", NULL, NULL, actor,
				    v, g_get_real_time(), NULL, error) ||
	    !cs_ledger_commit(tasks->ledger, error)) {
		cs_ledger_rollback(tasks->ledger);
		return FALSE;
	}
	if (tasks->done_func != NULL)
		tasks->done_func(tasks, task, text, tasks->done_data);
	return TRUE;
}

gboolean
cs_tasks_complete(
    CsTasks *tasks, const CsRequest *request, const char *lease, JsonObject *result, GError **error)
{
	g_autoptr(CsTask) task = cs_tasks_get_by_lease(tasks, lease, error);
	g_autofree char *text = NULL;

	if (task == NULL)
		return FALSE;
	if (!cs_tasks_may_serve(tasks, request, task->service)) {
		g_set_error(error, CS_ERROR, CS_ERROR_ACCESS_DENIED,
			    "the %s service needs another role", task->service);
		return FALSE;
	}
	text = json_object_to_text(result);
	if (is_order_service(tasks, task->service) && task->order_id != NULL) {
		if (tasks->order_func == NULL) {
			g_set_error(error, CS_ERROR, CS_ERROR_UNAVAILABLE,
				    "the %s service has no flow to complete it", task->service);
			return FALSE;
		}
		return tasks->order_func(tasks, request, task, result, text, tasks->order_data,
					 error);
	}
	return complete_gateway_task(tasks, request, task, text, error);
}

gboolean
cs_tasks_abandon(CsTasks *tasks, gint64 task_id, const char *reason, GError **error)
{
	g_autoptr(JsonObject) o = json_object_new();
	g_autofree char *text = NULL;
	g_autoptr(sqlite3_stmt) stmt = NULL;

	json_object_set_string_member(o, "error", reason);
	text = json_object_to_text(o);
	stmt = prepare(tasks,
		       "UPDATE tasks SET state = 'failed', lease = NULL, result = ?2, updated = ?3 "
		       "WHERE id = ?1 AND state IN ('queued', 'leased')",
		       error);
	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_int64(stmt, 1, task_id);
	bind_str(stmt, 2, text);
	sqlite3_bind_int64(stmt, 3, g_get_real_time());
	return exec_stmt(tasks, stmt, "abandoning a task", error);
}

gboolean
cs_tasks_abandon_requests(
    CsTasks *tasks, const char *order_id, const char *kind, const char *reason, GError **error)
{
	g_autoptr(JsonObject) o = json_object_new();
	g_autofree char *text = NULL;
	g_autoptr(sqlite3_stmt) stmt = NULL;

	json_object_set_string_member(o, "error", reason);
	text = json_object_to_text(o);
	stmt = prepare(tasks,
		       "UPDATE tasks SET state = 'failed', lease = NULL, result = ?3, updated = ?4 "
		       "WHERE service = 'cashier' AND state IN ('queued', 'leased') "
		       "AND json_extract(payload, '$.kind') = ?2 "
		       "AND (?1 IS NULL OR order_id = ?1)",
		       error);
	if (stmt == NULL)
		return FALSE;
	bind_str(stmt, 1, order_id);
	bind_str(stmt, 2, kind);
	bind_str(stmt, 3, text);
	sqlite3_bind_int64(stmt, 4, g_get_real_time());
	return exec_stmt(tasks, stmt, "abandoning cashier requests", error);
}

gboolean
cs_tasks_fail(
    CsTasks *tasks, const CsRequest *request, const char *lease, const char *reason, GError **error)
{
	g_autoptr(CsTask) task = cs_tasks_get_by_lease(tasks, lease, error);
	g_autoptr(JsonObject) o = json_object_new();
	g_autofree char *text = NULL;
	g_autoptr(sqlite3_stmt) stmt = NULL;
	gboolean final;

	if (task == NULL)
		return FALSE;
	if (!cs_tasks_may_serve(tasks, request, task->service)) {
		g_set_error(error, CS_ERROR, CS_ERROR_ACCESS_DENIED,
			    "the %s service needs another role", task->service);
		return FALSE;
	}
	final = task->attempts >= CS_TASKS_MAX_ATTEMPTS;
	json_object_set_string_member(o, "error", reason != NULL ? reason : "");
	text = json_object_to_text(o);
	stmt = prepare(tasks,
		       "UPDATE tasks SET state = ?3, result = ?4, lease = NULL, lease_user = NULL, "
		       "updated = ?5 WHERE id = ?1 AND lease = ?2 AND state = 'leased'",
		       error);
	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_int64(stmt, 1, task->id);
	bind_str(stmt, 2, lease);
	bind_str(stmt, 3, final ? "failed" : "queued");
	bind_str(stmt, 4, text);
	sqlite3_bind_int64(stmt, 5, g_get_real_time());
	if (!exec_stmt(tasks, stmt, "failing a task", error))
		return FALSE;
	g_clear_pointer(&stmt, sqlite3_finalize);
	if (!final)
		notify_queued(tasks, task->service);
	return TRUE;
}

GPtrArray *
cs_tasks_list(CsTasks *tasks, const char *state, const char *service, GError **error)
{
	g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func((GDestroyNotify)cs_task_free);
	g_autoptr(sqlite3_stmt) stmt =
	    prepare(tasks,
		    "SELECT " TASK_COLUMNS " FROM tasks WHERE (?1 IS NULL OR state = ?1) "
		    "AND (?2 IS NULL OR service = ?2) ORDER BY id",
		    error);
	int rc;

	if (stmt == NULL)
		return NULL;
	bind_str(stmt, 1, state);
	bind_str(stmt, 2, service);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		g_ptr_array_add(out, task_from_row(stmt));
	if (rc != SQLITE_DONE) {
		db_error(tasks, "listing tasks", error);
		return NULL;
	}
	return g_steal_pointer(&out);
}

GBytes *
cs_tasks_open_secret(CsTasks *tasks, const char *lease, GError **error)
{
	g_autoptr(CsTask) task = cs_tasks_get_by_lease(tasks, lease, error);

	if (task == NULL)
		return NULL;
	if (task->secret_ref <= 0) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_NOT_FOUND, "the task has no secret");
		return NULL;
	}
	return cs_ledger_open_secret(tasks->ledger, task->secret_ref, error);
}

static gboolean
append_call_event(CsTasks *tasks,
		  const char *actor,
		  const char *method,
		  const char *order_id,
		  guint repeats,
		  GError **error)
{
	g_autoptr(GVariant) data = NULL;
	g_autoptr(CsOrderRow) order = NULL;
	GVariantDict d;

	/* An event may only name an order that exists (foreign key). */
	if (order_id != NULL) {
		order = cs_ledger_load_order(tasks->ledger, order_id, NULL);
		if (order == NULL)
			order_id = NULL;
	}
	g_variant_dict_init(&d, NULL);
	g_variant_dict_insert(&d, "method", "s", method);
	if (repeats > 0)
		g_variant_dict_insert(&d, "repeats", "u", repeats);
	data = g_variant_ref_sink(g_variant_dict_end(&d));
	if (!cs_ledger_begin(tasks->ledger, error))
		return FALSE;
	if (!cs_ledger_append_event(tasks->ledger, order_id, "office.call", NULL, NULL, actor, data,
				    g_get_real_time(), NULL, error) ||
	    !cs_ledger_commit(tasks->ledger, error)) {
		cs_ledger_rollback(tasks->ledger);
		return FALSE;
	}
	return TRUE;
}

static void
write_repeats(CsTasks *tasks, RecentCall *c)
{
	g_autoptr(GError) error = NULL;

	if (c->repeats == 0)
		return;
	if (!append_call_event(tasks, c->actor, c->method, c->order_id, c->repeats, &error))
		g_warning("office: cannot record %u repeated %s call(s) by %s: %s", c->repeats,
			  c->method, c->actor, error->message);
	c->repeats = 0;
}

gboolean
cs_tasks_record_call(CsTasks *tasks,
		     const CsRequest *request,
		     const char *method,
		     const char *order_id,
		     gboolean fold,
		     GError **error)
{
	g_autofree char *actor = cs_request_to_actor(request);
	g_autofree char *key = NULL;
	gint64 now = g_get_real_time();
	RecentCall *c;

	if (!fold)
		return append_call_event(tasks, actor, method, order_id, 0, error);
	if (tasks->recent_calls == NULL)
		tasks->recent_calls = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
							    (GDestroyNotify)recent_call_free);
	key = g_strdup_printf("%s\n%s\n%s", actor, method, order_id != NULL ? order_id : "");
	c = g_hash_table_lookup(tasks->recent_calls, key);
	if (c != NULL && now - c->since < CS_TASKS_CALL_FOLD_US && now >= c->since) {
		c->repeats++;
		return TRUE;
	}
	if (c != NULL)
		write_repeats(tasks, c);
	if (!append_call_event(tasks, actor, method, order_id, 0, error))
		return FALSE;
	if (c == NULL) {
		c = g_new0(RecentCall, 1);
		c->actor = g_strdup(actor);
		c->method = g_strdup(method);
		c->order_id = g_strdup(order_id);
		g_hash_table_insert(tasks->recent_calls, g_steal_pointer(&key), c);
	}
	c->since = now;
	return TRUE;
}

void
cs_tasks_flush_calls(CsTasks *tasks, gboolean all)
{
	gint64 now = g_get_real_time();
	GHashTableIter iter;
	gpointer value;

	if (tasks->recent_calls == NULL)
		return;
	g_hash_table_iter_init(&iter, tasks->recent_calls);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		RecentCall *c = value;

		if (!all && now - c->since < CS_TASKS_CALL_FOLD_US && now >= c->since)
			continue;
		write_repeats(tasks, c);
		g_hash_table_iter_remove(&iter);
	}
}

/* ---- SMS limits (docs/architecture.md §6)
 * ------------------------------------------------------------
 */

static gboolean
check_sms_limits(CsTasks *tasks, const char *phone_hash, gint64 now, GError **error)
{
	CsConfig *config = tasks->config;
	g_autoptr(sqlite3_stmt) stmt = prepare(
	    tasks, "SELECT count(*), MAX(time) FROM sms_sends WHERE phone_hash = ?1 AND time > ?2",
	    error);
	gint64 count, last;

	if (stmt == NULL)
		return FALSE;
	bind_str(stmt, 1, phone_hash);
	sqlite3_bind_int64(stmt, 2, now - DAY_US);
	if (sqlite3_step(stmt) != SQLITE_ROW)
		return db_error(tasks, "counting SMS", error);
	count = sqlite3_column_int64(stmt, 0);
	last = sqlite3_column_int64(stmt, 1);
	if (count > 0 && now - last < (gint64)config->sms_resend_cooldown_s * G_USEC_PER_SEC) {
		g_set_error(error, CS_ERROR, CS_ERROR_RATE_LIMITED,
			    "phone: a message was sent less than %u s ago; try again later",
			    config->sms_resend_cooldown_s);
		return FALSE;
	}
	if (count >= config->sms_daily_cap) {
		g_set_error(error, CS_ERROR, CS_ERROR_RATE_LIMITED,
			    "phone: the daily limit of %u messages is reached",
			    config->sms_daily_cap);
		return FALSE;
	}
	return TRUE;
}

gboolean
cs_tasks_send_sms_in_txn(CsTasks *tasks,
			 const char *order_id,
			 const char *phone,
			 const char *template_name,
			 JsonObject *params,
			 const char *secret,
			 gboolean enforce_limits,
			 GError **error)
{
	g_autofree char *phone_hash = cs_vault_keyed_hash(tasks->vault, "sms-phone", phone);
	g_autoptr(JsonObject) payload = json_object_new();
	g_autoptr(sqlite3_stmt) stmt = NULL;
	gint64 now = g_get_real_time();
	gint64 secret_ref = 0;

	json_object_set_string_member(payload, "to", phone);
	json_object_set_string_member(payload, "template", template_name);
	json_object_set_object_member(payload, "params",
				      params != NULL ? json_object_ref(params) : json_object_new());
	/* Only codes the applicant asks for are limited and counted; the platform's notices
	 * (approval, shipping) always go out. */
	if (enforce_limits) {
		if (!check_sms_limits(tasks, phone_hash, now, error))
			return FALSE;
		stmt = prepare(tasks, "INSERT INTO sms_sends (phone_hash, time) VALUES (?1, ?2)",
			       error);
		if (stmt == NULL)
			return FALSE;
		bind_str(stmt, 1, phone_hash);
		sqlite3_bind_int64(stmt, 2, now);
		if (!exec_stmt(tasks, stmt, "counting SMS", error))
			return FALSE;
	}
	if (secret != NULL) {
		if (!cs_ledger_seal_secret(tasks->ledger, "sms", order_id, (const guint8 *)secret,
					   strlen(secret), now, &secret_ref, error))
			return FALSE;
		json_object_set_int_member(payload, "secret_ref", secret_ref);
	}
	if (!insert_task(tasks, "sms", order_id, NULL, payload, secret_ref, NULL, error))
		return FALSE;
	notify_later(tasks, "sms");
	return TRUE;
}

gboolean
cs_tasks_send_sms(CsTasks *tasks,
		  const char *order_id,
		  const char *phone,
		  const char *template_name,
		  JsonObject *params,
		  const char *secret,
		  gint64 *task_id_out,
		  GError **error)
{
	if (!cs_ledger_begin(tasks->ledger, error))
		return FALSE;
	if (!cs_tasks_send_sms_in_txn(tasks, order_id, phone, template_name, params, secret, TRUE,
				      error) ||
	    !cs_ledger_commit(tasks->ledger, error)) {
		cs_ledger_rollback(tasks->ledger);
		return FALSE;
	}
	if (task_id_out != NULL)
		*task_id_out = sqlite3_last_insert_rowid(tasks->db);
	return TRUE;
}

/* ---- the built-in sandbox gateway (docs/architecture.md §4)
 * -----------------------------------------
 */

/* The text a sandbox message "delivers": the template, its parameters and the secret. */
static char *
render_message(CsTask *task, JsonObject *payload, GBytes *secret)
{
	GString *s = g_string_new(NULL);
	const char *template_name =
	    json_object_get_string_member_with_default(payload, "template", NULL);
	const char *subject = json_object_get_string_member_with_default(payload, "subject", NULL);
	const char *body = json_object_get_string_member_with_default(payload, "body", NULL);

	if (template_name != NULL)
		g_string_append_printf(s, "[%s]", template_name);
	if (subject != NULL)
		g_string_append_printf(s, "%s%s", s->len > 0 ? " " : "", subject);
	if (body != NULL)
		g_string_append_printf(s, "%s%s", s->len > 0 ? "\n" : "", body);
	if (json_object_has_member(payload, "params")) {
		JsonNode *p = json_object_get_member(payload, "params");
		g_autofree char *text = json_to_string(p, FALSE);
		g_string_append_printf(s, " %s", text);
	}
	if (secret != NULL) {
		gsize len = 0;
		const char *data = g_bytes_get_data(secret, &len);
		g_string_append(s, " code: ");
		g_string_append_len(s, data, (gssize)len);
	}
	return g_string_free(s, FALSE);
}

static gboolean
store_outbox(CsTasks *tasks, CsTask *task, const char *recipient, const char *text, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;
	gint64 now = g_get_real_time();
	gint64 ref = 0;

	if (!cs_ledger_seal_secret(tasks->ledger, "outbox", task->order_id, (const guint8 *)text,
				   strlen(text), now, &ref, error))
		return FALSE;
	stmt = prepare(tasks,
		       "INSERT INTO outbox (service, task_id, recipient, secret_ref, created) "
		       "VALUES (?1, ?2, ?3, ?4, ?5)",
		       error);
	if (stmt == NULL)
		return FALSE;
	bind_str(stmt, 1, task->service);
	sqlite3_bind_int64(stmt, 2, task->id);
	bind_str(stmt, 3, recipient);
	sqlite3_bind_int64(stmt, 4, ref);
	sqlite3_bind_int64(stmt, 5, now);
	return exec_stmt(tasks, stmt, "writing the outbox", error);
}

gboolean
cs_tasks_run_sandbox(CsTasks *tasks, const char *lease, GError **error)
{
	g_autoptr(CsTask) task = cs_tasks_get_by_lease(tasks, lease, error);
	g_autoptr(JsonNode) node = NULL;
	g_autoptr(GBytes) secret = NULL;
	g_autoptr(JsonObject) result = json_object_new();
	g_autofree char *text = NULL;
	g_autofree char *result_text = NULL;
	JsonObject *payload;
	const char *to;
	CsRequest request = {
	    .actor = CS_ACTOR_GATEWAY, .user_id = "sandbox", .roles = CS_ACTOR_GATEWAY};

	if (task == NULL)
		return FALSE;
	node = parse_json(task->payload);
	if (node == NULL || !JSON_NODE_HOLDS_OBJECT(node)) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL,
			    "task %" G_GINT64_FORMAT ": payload is not an object", task->id);
		return FALSE;
	}
	payload = json_node_get_object(node);
	if (g_strcmp0(task->service, "idv") == 0) {
		json_object_set_string_member(result, "result", "pass");
		json_object_set_string_member(result, "reason", "sandbox");
		return cs_tasks_complete(tasks, &request, lease, result, error);
	}
	if (task->secret_ref > 0) {
		secret = cs_ledger_open_secret(tasks->ledger, task->secret_ref, error);
		if (secret == NULL)
			return FALSE;
	}
	to = json_object_get_string_member_with_default(payload, "to", NULL);
	if (to == NULL)
		to = json_object_get_string_member_with_default(payload, "account", "?");
	text = render_message(task, payload, secret);
	json_object_set_string_member(result, "delivered", "sandbox");
	result_text = json_object_to_text(result);
	if (!cs_ledger_begin(tasks->ledger, error))
		return FALSE;
	if (!store_outbox(tasks, task, to, text, error) ||
	    !mark_done(tasks, task, "done", result_text, error) ||
	    !cs_ledger_commit(tasks->ledger, error)) {
		cs_ledger_rollback(tasks->ledger);
		return FALSE;
	}
	return TRUE;
}

JsonArray *
cs_tasks_list_outbox(CsTasks *tasks, const char *service, GError **error)
{
	g_autoptr(JsonArray) out = json_array_new();
	g_autoptr(sqlite3_stmt) stmt =
	    prepare(tasks,
		    "SELECT id, task_id, recipient, secret_ref, created FROM outbox "
		    "WHERE service = ?1 ORDER BY id",
		    error);
	int rc;

	if (stmt == NULL)
		return NULL;
	bind_str(stmt, 1, service);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		JsonObject *o = json_object_new();
		g_autoptr(GBytes) text =
		    cs_ledger_open_secret(tasks->ledger, sqlite3_column_int64(stmt, 3), NULL);
		json_object_set_int_member(o, "id", sqlite3_column_int64(stmt, 0));
		json_object_set_int_member(o, "task_id", sqlite3_column_int64(stmt, 1));
		json_object_set_string_member(o, "to", (const char *)sqlite3_column_text(stmt, 2));
		if (text != NULL) {
			g_autofree char *s =
			    g_strndup(g_bytes_get_data(text, NULL), g_bytes_get_size(text));
			json_object_set_string_member(o, "text", s);
		}
		json_object_set_int_member(o, "time", sqlite3_column_int64(stmt, 4));
		json_array_add_object_element(out, o);
	}
	if (rc != SQLITE_DONE) {
		db_error(tasks, "reading the outbox", error);
		return NULL;
	}
	return g_steal_pointer(&out);
}
