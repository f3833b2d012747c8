/*
 * cs-office.c — the office front over ZeroMQ (see cs-office.h, docs/architecture.md §3.4).
 *
 * Invariants:
 * - The ZAP handler is bound before any CURVE socket, so no handshake ever completes
 *   unauthenticated; a key not on the allow-list is refused at the handshake (status 400)
 *   and never reaches the protocol code.
 * - All sockets live on the main thread and are read through cs-zmq-source.
 * - A message that fails to parse gets an ERROR when it carried a routing identity and is
 *   otherwise dropped; nothing a peer sends can stop the loop.
 * - The front holds no business rules: it checks roles against the §3.4 table, builds a
 *   CsRequest (office actor, user id, roles) and lets cs-tasks / cs-payment / the engine
 *   decide and record. Leases are granted and revoked here only as the protocol's timing
 *   says (heartbeats, claim time); their effect is checked by cs-tasks in the ledger.
 * - No secret is logged or published: events carry order ids and states only.
 */
#define G_LOG_DOMAIN "certseald"

#include <errno.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>
#include <zmq.h>

#include "cs-ca.h"
#include "cs-clock.h"
#include "cs-office.h"
#include "cs-office-keys.h"
#include "cs-office-msg.h"
#include "cs-payment.h"
#include "cs-signal.h"
#include "cs-tasks.h"
#include "cs-validate.h"
#include "cs-zmq-source.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_DOMAIN "certseal"
#define OFFICE_READ_ROLES                                                                          \
	(CS_ACTOR_REVIEWER | CS_ACTOR_MAKER | CS_ACTOR_SHIPPER | CS_ACTOR_CASHIER |                \
	 CS_ACTOR_AUDITOR)
#define ANY_ROLE 0xffffu
#define SANDBOX_BATCH 100

typedef struct {
	char *user;
	guint roles;
	char *path; /* the office_dir file that allows it; NULL for the admin key */
} Worker;

typedef struct {
	char *key; /* hex of the routing id */
	GBytes *identity;
	char *public_key; /* the CURVE key it authenticated with (Z85); NULL without CURVE */
	char *user;
	guint roles;
	char *service; /* READY for this service, or NULL */
	char *lease;   /* the task pushed to it, or NULL */
	gint64 last_seen;
	gint64 idle_since;
	gboolean spoke;	 /* sent something other than HEARTBEAT */
	gboolean timed;	 /* was sent the first HEARTBEAT, the one with the timing */
	gboolean hinted; /* was told to send READY */
} Peer;

typedef struct {
	char *user;
	char *peer_key; /* pushed to this peer; NULL for a person's claim */
	gint64 expires; /* claims only */
} Lease;

struct _CsOffice {
	CsEngine *engine;
	CsConfig *config;
	CsTasks *tasks;
	CsPaymentKeys *payment_keys;
	char *endpoint;
	char *events_endpoint;
	char server_public[41];
	char admin_public[41];
	gboolean curve;
	void *ctx;
	void *zap;
	void *router;
	void *pub;
	GSource *zap_source;
	GSource *router_source;
	guint tick_id;
	guint dispatch_id;
	guint sighup_id;
	guint reload_id;
	/* office_dir watched with inotify on the main loop (no GIO monitor, no worker thread);
	 * while it is missing, or its watch is gone, it is looked for every few seconds. */
	int inotify_fd;
	int inotify_wd;
	guint inotify_id;
	guint rewatch_id;
	GHashTable *workers; /* public key (Z85) → Worker */
	GHashTable *peers;   /* key → Peer */
	GHashTable *leases;  /* lease → Lease */
	/* The built-in sandbox gateways serve (test_mode and [office] sandbox_gateways)… */
	gboolean sandbox;
	/* …but never a service a worker has been READY for since the daemon started. */
	GHashTable *worked_services;
	/* Refused handshakes: the first of an interval is logged, the rest counted. */
	gint64 refused_since; /* monotonic µs; 0 = none in this interval */
	guint refused_more;
	GCancellable *verifying; /* ledger.verify calls running in the background */
};

/* Handshakes anyone can attempt must not fill the log: one line per interval, then a count. */
#define REFUSAL_LOG_INTERVAL_US (60 * G_USEC_PER_SEC)

static const struct {
	const char *name;
	guint bit;
} role_names[] = {
    {"reviewer", CS_ACTOR_REVIEWER}, {"maker", CS_ACTOR_MAKER},	    {"shipper", CS_ACTOR_SHIPPER},
    {"cashier", CS_ACTOR_CASHIER},   {"auditor", CS_ACTOR_AUDITOR}, {"admin", CS_ACTOR_ADMIN},
    {"gateway", CS_ACTOR_GATEWAY},
};

static void
worker_free(Worker *w)
{
	g_free(w->user);
	g_free(w->path);
	g_free(w);
}

static void
peer_free(Peer *p)
{
	g_bytes_unref(p->identity);
	g_free(p->key);
	g_free(p->public_key);
	g_free(p->user);
	g_free(p->service);
	g_free(p->lease);
	g_free(p);
}

static void
lease_free(Lease *l)
{
	g_free(l->user);
	g_free(l->peer_key);
	g_free(l);
}

static JsonArray *
roles_to_json(guint roles)
{
	JsonArray *a = json_array_new();

	for (guint i = 0; i < G_N_ELEMENTS(role_names); i++) {
		if (roles & role_names[i].bit)
			json_array_add_string_element(a, role_names[i].name);
	}
	return a;
}

/* {heartbeat_ms, liveness}: what a worker needs to know to keep its leases. */
static void
set_timing(CsOffice *self, JsonObject *o)
{
	json_object_set_int_member(o, "heartbeat_ms", self->config->office_heartbeat_ms);
	json_object_set_int_member(o, "liveness", self->config->office_liveness);
}

/* ---- keys and the allow-list ----------------------------------------------------------- */

static gboolean
ensure_key(const char *dir, const char *name, char pub[41], char sec[41], GError **error)
{
	g_autofree char *path = g_build_filename(dir, name, NULL);
	g_autoptr(GError) local = NULL;

	if (g_file_test(path, G_FILE_TEST_EXISTS)) {
		if (!cs_office_key_file_read(path, pub, sec, error)) {
			g_prefix_error(error, "office: ");
			return FALSE;
		}
		return TRUE;
	}
	if (!cs_office_keys_generate(pub, sec, error) ||
	    !cs_office_key_file_write(path, pub, sec, error))
		return FALSE;
	g_message("office: created the key pair %s", path);
	return TRUE;
}

static gboolean
parse_roles(const char *where, const char *value, guint *roles, GError **error)
{
	g_auto(GStrv) list = g_strsplit_set(value, ";, \t", -1);

	*roles = 0;
	for (guint i = 0; list[i] != NULL; i++) {
		const char *r = list[i];
		gboolean known = FALSE;

		if (*r == '\0')
			continue;
		for (guint j = 0; j < G_N_ELEMENTS(role_names); j++) {
			if (g_strcmp0(role_names[j].name, r) == 0) {
				*roles |= role_names[j].bit;
				known = TRUE;
			}
		}
		if (!known) {
			g_autofree char *quoted = cs_quote_value(r);

			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "%s: [worker] roles: unknown role '%s' (known: reviewer maker "
				    "shipper cashier auditor admin gateway, separated by ';')",
				    where, quoted);
			return FALSE;
		}
	}
	return TRUE;
}

/* A value without its trailing comment: `#` after white space starts one (a Z85 key holds
 * `#` but no white space). */
static char *
strip_value(const char *raw)
{
	char *v = g_strdup(raw);

	for (char *p = v; *p != '\0'; p++) {
		if (*p == '#' && p > v && g_ascii_isspace(p[-1])) {
			*p = '\0';
			break;
		}
	}
	return g_strstrip(v);
}

#define WORKER_FILE_MAX (64 * 1024)

/*
 * One worker file of office_dir:
 *   [worker]
 *   key = <Z85 public key>
 *   user = <ledger user id>
 *   roles = reviewer;maker
 * `#` starts a comment on its own line or after a value. Every refusal names the file and
 * the line. Returns the public key in @key_out.
 */
static Worker *
parse_worker_file(const char *path, char **key_out, GError **error)
{
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;
	g_autofree char *key = NULL;
	g_autofree char *user = NULL;
	gboolean in_worker = FALSE, seen_group = FALSE, seen_roles = FALSE;
	guint roles = 0;
	gsize len = 0;
	Worker *w;

	if (!g_file_get_contents(path, &text, &len, error)) {
		g_prefix_error(error, "%s: ", path);
		return NULL;
	}
	if (len > WORKER_FILE_MAX || memchr(text, '\0', len) != NULL ||
	    !g_utf8_validate(text, (gssize)len, NULL)) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "%s: not a worker file (UTF-8 text of at most %d bytes)", path,
			    WORKER_FILE_MAX);
		return NULL;
	}
	lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		g_autofree char *where = g_strdup_printf("%s:%u", path, i + 1);
		g_autofree char *name = NULL;
		g_autofree char *value = NULL;
		char *line = g_strstrip(lines[i]);
		char *eq;

		if (*line == '\0' || *line == '#')
			continue;
		if (*line == '[') {
			if (g_strcmp0(line, "[worker]") != 0 || seen_group) {
				g_autofree char *quoted = cs_quote_value(line);

				g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
					    "%s: '%s': a worker file holds exactly one group, "
					    "[worker]",
					    where, quoted);
				return NULL;
			}
			in_worker = seen_group = TRUE;
			continue;
		}
		eq = strchr(line, '=');
		if (eq == NULL || !in_worker) {
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "%s: %s", where,
				    eq == NULL ? "not `name = value` or a `# comment`"
					       : "a setting before the [worker] line");
			return NULL;
		}
		name = g_strstrip(g_strndup(line, (gsize)(eq - line)));
		value = strip_value(eq + 1);
		if (g_strcmp0(name, "key") == 0) {
			if (key != NULL || !cs_office_key_is_valid(value)) {
				g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
					    "%s: [worker] key: %s", where,
					    key != NULL ? "given twice"
							: "not a CURVE public key (40 characters "
							  "of Z85, as keygen prints it)");
				return NULL;
			}
			key = g_steal_pointer(&value);
		} else if (g_strcmp0(name, "user") == 0) {
			if (user != NULL || *value == '\0' || g_utf8_strlen(value, -1) > 64) {
				g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
					    "%s: [worker] user: %s", where,
					    user != NULL ? "given twice"
							 : "required, 1 to 64 characters");
				return NULL;
			}
			user = g_steal_pointer(&value);
		} else if (g_strcmp0(name, "roles") == 0) {
			if (seen_roles) {
				g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
					    "%s: [worker] roles: given twice", where);
				return NULL;
			}
			if (!parse_roles(where, value, &roles, error))
				return NULL;
			seen_roles = TRUE;
		} else {
			g_autofree char *quoted = cs_quote_value(name);

			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "%s: [worker] '%s': unknown setting (key, user, roles)", where,
				    quoted);
			return NULL;
		}
	}
	if (key == NULL || user == NULL) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "%s: [worker] %s: missing",
			    path, key == NULL ? "key" : "user");
		return NULL;
	}
	w = g_new0(Worker, 1);
	w->user = g_steal_pointer(&user);
	w->roles = roles;
	w->path = g_strdup(path);
	*key_out = g_steal_pointer(&key);
	return w;
}

static int
compare_names(gconstpointer a, gconstpointer b)
{
	return g_strcmp0(*(const char *const *)a, *(const char *const *)b);
}

/*
 * The allow-list from office_dir plus the admin key. A broken file is refused — logged with
 * its file, line and reason — and the others are loaded: one typo must not lock every
 * worker out (at start-up or on a re-read). Only files ending in .conf are read.
 */
static GHashTable *
load_workers(CsOffice *self, guint *refused)
{
	GHashTable *workers =
	    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)worker_free);
	const char *dir_path = self->config->office_dir;
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GDir) dir = NULL;
	g_autoptr(GError) error = NULL;
	const char *name;
	Worker *admin;

	*refused = 0;
	if (dir_path != NULL && g_file_test(dir_path, G_FILE_TEST_IS_DIR)) {
		dir = g_dir_open(dir_path, 0, &error);
		if (dir == NULL) {
			g_warning("office: office_dir %s: %s; no worker key from it is allowed",
				  dir_path, error->message);
			(*refused)++;
		}
	}
	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		if (g_str_has_suffix(name, ".conf")) {
			g_ptr_array_add(names, g_build_filename(dir_path, name, NULL));
		} else if (name[0] != '.' && !g_str_has_suffix(name, "~")) {
			g_autofree char *path = g_build_filename(dir_path, name, NULL);
			g_message("office: %s: ignored: worker files in office_dir must end in "
				  ".conf",
				  path);
		}
	}
	g_ptr_array_sort(names, compare_names);
	for (guint i = 0; i < names->len; i++) {
		g_autoptr(GError) local = NULL;
		g_autofree char *key = NULL;
		const char *path = g_ptr_array_index(names, i);
		Worker *w = parse_worker_file(path, &key, &local);
		const Worker *other = w != NULL ? g_hash_table_lookup(workers, key) : NULL;

		if (other != NULL) {
			g_set_error(&local, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "%s: [worker] key: already allowed by %s", path, other->path);
			g_clear_pointer(&w, worker_free);
		}
		if (w == NULL) {
			g_warning("office: %s; this worker key is refused until the file is fixed",
				  local->message);
			(*refused)++;
			continue;
		}
		g_hash_table_replace(workers, g_steal_pointer(&key), w);
	}
	admin = g_new0(Worker, 1);
	admin->user = g_strdup("admin");
	admin->roles = CS_ACTOR_ADMIN;
	g_hash_table_replace(workers, g_strdup(self->admin_public), admin);
	return workers;
}

/* ---- sending --------------------------------------------------------------------------- */

static void
send_to(CsOffice *self, GBytes *identity, CsOfficeVerb verb, JsonObject *body)
{
	g_autofree char *text = cs_office_body_to_string(body);
	const char *v = cs_office_verb_to_string(verb);
	gsize id_len = 0;
	const void *id = g_bytes_get_data(identity, &id_len);

	if (zmq_send(self->router, id, id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
	    zmq_send(self->router, CS_OFFICE_PROTOCOL, 4, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
	    zmq_send(self->router, v, strlen(v), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
	    zmq_send(self->router, text, strlen(text), ZMQ_DONTWAIT) < 0)
		g_debug("office: dropped a %s to a peer: %s", v, zmq_strerror(zmq_errno()));
}

/* A HEARTBEAT to a READY worker; the first one to a connection carries {heartbeat_ms,
 * liveness}, the others no body. */
static void
send_heartbeat(CsOffice *self, Peer *peer)
{
	g_autoptr(JsonObject) timing = NULL;

	if (!peer->timed) {
		timing = json_object_new();
		set_timing(self, timing);
		peer->timed = TRUE;
	}
	send_to(self, peer->identity, CS_OFFICE_HEARTBEAT, timing);
}

static const char *
error_code_name(const GError *error)
{
	const char *name;

	if (error->domain != CS_ERROR)
		return "Internal";
	name = cs_error_code_to_dbus_name((CsErrorCode)error->code);
	return strrchr(name, '.') != NULL ? strrchr(name, '.') + 1 : name;
}

/* ERROR {<key>: <ref>, code, message}; @ref NULL sends null. */
static void
send_error(CsOffice *self, GBytes *identity, const char *key, JsonNode *ref, const GError *error)
{
	g_autoptr(JsonObject) body = json_object_new();
	g_autofree char *message = cs_sanitize_message(error->message, 0);

	json_object_set_member(body, key,
			       ref != NULL ? json_node_copy(ref) : json_node_new(JSON_NODE_NULL));
	json_object_set_string_member(body, "code", error_code_name(error));
	json_object_set_string_member(body, "message", message);
	send_to(self, identity, CS_OFFICE_ERROR, body);
}

/* ---- events ---------------------------------------------------------------------------- */

static void
on_order(CsEngine *engine, CsOrder *order, CsOrderChange change, gpointer user_data)
{
	CsOffice *self = user_data;
	g_autofree char *topic = g_strdup_printf("order.%s", cs_order_get_state(order));
	g_autoptr(JsonObject) body = json_object_new();
	g_autofree char *text = NULL;

	json_object_set_string_member(body, "order_id", cs_order_get_id(order));
	json_object_set_string_member(body, "kind", cs_order_get_kind(order));
	json_object_set_string_member(body, "state", cs_order_get_state(order));
	json_object_set_int_member(body, "time", cs_order_get_updated(order));
	text = cs_office_body_to_string(body);
	if (zmq_send(self->pub, topic, strlen(topic), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
	    zmq_send(self->pub, text, strlen(text), ZMQ_DONTWAIT) < 0)
		g_debug("office: event %s not published: %s", topic, zmq_strerror(zmq_errno()));
}

/* ---- leases and dispatch --------------------------------------------------------------- */

static void
drop_lease(CsOffice *self, const char *lease, gboolean requeue)
{
	if (requeue && cs_tasks_release(self->tasks, lease))
		g_info("office: lease %s lost; its task is queued again", lease);
	g_hash_table_remove(self->leases, lease);
}

static void
peer_set_idle(Peer *peer)
{
	g_clear_pointer(&peer->lease, g_free);
	peer->idle_since = g_get_monotonic_time();
}

static Peer *
pick_idle_peer(CsOffice *self, const char *service, gboolean *any_ready)
{
	GHashTableIter iter;
	gpointer value;
	Peer *best = NULL;

	g_hash_table_iter_init(&iter, self->peers);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		Peer *p = value;
		if (g_strcmp0(p->service, service) != 0)
			continue;
		*any_ready = TRUE;
		if (p->lease == NULL && (best == NULL || p->idle_since < best->idle_since))
			best = p;
	}
	return best;
}

static void
dispatch_sandbox(CsOffice *self, const char *service)
{
	for (guint i = 0; i < SANDBOX_BATCH; i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(CsTask) task =
		    cs_tasks_lease_next(self->tasks, service, "sandbox", &error);

		if (task == NULL) {
			if (error != NULL)
				g_warning("office: sandbox %s: %s", service, error->message);
			return;
		}
		if (!cs_tasks_run_sandbox(self->tasks, task->lease, &error)) {
			g_warning("office: sandbox %s: task %" G_GINT64_FORMAT ": %s", service,
				  task->id, error->message);
			cs_tasks_release(self->tasks, task->lease);
			return;
		}
	}
}

static void
dispatch_service(CsOffice *self, const char *service)
{
	gboolean any_ready = FALSE;
	Peer *peer;

	while ((peer = pick_idle_peer(self, service, &any_ready)) != NULL) {
		g_autoptr(GError) error = NULL;
		g_autoptr(CsTask) task =
		    cs_tasks_lease_next(self->tasks, service, peer->user, &error);
		g_autoptr(JsonObject) body = NULL;
		Lease *l;

		if (task == NULL) {
			if (error != NULL)
				g_warning("office: %s: %s", service, error->message);
			break;
		}
		l = g_new0(Lease, 1);
		l->user = g_strdup(peer->user);
		l->peer_key = g_strdup(peer->key);
		g_hash_table_replace(self->leases, g_strdup(task->lease), l);
		peer->lease = g_strdup(task->lease);
		body = cs_task_to_json(task);
		send_to(self, peer->identity, CS_OFFICE_TASK, body);
	}
	/* External workers take precedence: the sandbox serves only while none is READY, and
	 * never again once one has been — a worker restarting, or losing its lease by
	 * silence, must not make the sandbox send the same message a second time. */
	if (!any_ready && self->sandbox && cs_tasks_sandbox_serves(service) &&
	    !g_hash_table_contains(self->worked_services, service))
		dispatch_sandbox(self, service);
}

static gboolean
dispatch_all(gpointer user_data)
{
	CsOffice *self = user_data;
	g_auto(GStrv) all = cs_tasks_list_services(self->tasks);

	self->dispatch_id = 0;
	for (guint i = 0; all[i] != NULL; i++)
		dispatch_service(self, all[i]);
	return G_SOURCE_REMOVE;
}

static void
schedule_dispatch(CsOffice *self)
{
	/* At the default priority, not idle: under load the D-Bus and ZeroMQ sources are
	 * always ready, and an idle dispatch would leave queued tasks unpushed (and READY
	 * workers waiting) until the rush is over. */
	if (self->dispatch_id == 0)
		self->dispatch_id = g_idle_add_full(G_PRIORITY_DEFAULT, dispatch_all, self, NULL);
}

static void
on_task_queued(CsTasks *tasks, const char *service, gpointer user_data)
{
	schedule_dispatch(user_data);
}

/* Heartbeats out, silent workers and expired claims lose their leases. */
/* ---- refused handshakes, logged at a bounded rate ----------------------------------------- */

static void
flush_refused(CsOffice *self)
{
	if (self->refused_more > 0)
		g_message("office: refused %u more unknown worker key(s) at the handshake in the "
			  "last %d s",
			  self->refused_more, (int)(REFUSAL_LOG_INTERVAL_US / G_USEC_PER_SEC));
	self->refused_more = 0;
	self->refused_since = 0;
}

static void
note_refused_key(CsOffice *self)
{
	gint64 now = g_get_monotonic_time();

	if (self->refused_since != 0 && now - self->refused_since < REFUSAL_LOG_INTERVAL_US) {
		self->refused_more++;
		return;
	}
	flush_refused(self);
	self->refused_since = now;
	g_message("office: refused an unknown worker key at the handshake (more within %d s "
		  "are counted, not logged one by one)",
		  (int)(REFUSAL_LOG_INTERVAL_US / G_USEC_PER_SEC));
}

static gboolean
on_tick(gpointer user_data)
{
	CsOffice *self = user_data;
	gint64 now = g_get_monotonic_time();
	gint64 silence =
	    (gint64)self->config->office_heartbeat_ms * self->config->office_liveness * 1000;
	g_autoptr(GPtrArray) dead = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) expired = g_ptr_array_new_with_free_func(g_free);
	GHashTableIter iter;
	gpointer key, value;

	g_hash_table_iter_init(&iter, self->peers);
	while (g_hash_table_iter_next(&iter, &key, &value)) {
		Peer *p = value;
		if (now - p->last_seen > silence)
			g_ptr_array_add(dead, g_strdup(key));
		else if (p->service != NULL)
			send_heartbeat(self, p);
	}
	for (guint i = 0; i < dead->len; i++) {
		Peer *p = g_hash_table_lookup(self->peers, g_ptr_array_index(dead, i));
		if (p->lease != NULL) {
			g_message("office: worker %s went silent; its lease is lost", p->user);
			drop_lease(self, p->lease, TRUE);
		}
		g_hash_table_remove(self->peers, g_ptr_array_index(dead, i));
	}
	g_hash_table_iter_init(&iter, self->leases);
	while (g_hash_table_iter_next(&iter, &key, &value)) {
		Lease *l = value;
		if (l->peer_key == NULL && now > l->expires)
			g_ptr_array_add(expired, g_strdup(key));
	}
	for (guint i = 0; i < expired->len; i++)
		drop_lease(self, g_ptr_array_index(expired, i), TRUE);
	if (self->refused_since != 0 && now - self->refused_since >= REFUSAL_LOG_INTERVAL_US)
		flush_refused(self);
	if (self->tasks != NULL)
		cs_tasks_flush_calls(self->tasks, FALSE);
	return G_SOURCE_CONTINUE;
}

/* ---- re-reading office_dir (SIGHUP, or its files changed) -------------------------------- */

/* Let an editor or an installer finish writing before the files are read. */
#define RELOAD_DELAY_MS 200

/* The new allow-list applies to the next handshake at once; a connection whose key is gone
 * (or now names another user) is forgotten and its lease lost, a person's claims end when no
 * key names that person any more, and the roles of the others follow their files. */
static void
reload_workers(CsOffice *self, const char *why)
{
	guint refused = 0;
	GHashTable *workers = load_workers(self, &refused);
	g_autoptr(GHashTable) users = g_hash_table_new(g_str_hash, g_str_equal);
	g_autoptr(GPtrArray) gone = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) ended = g_ptr_array_new_with_free_func(g_free);
	GHashTableIter iter;
	gpointer key, value;

	g_hash_table_unref(self->workers);
	self->workers = workers;
	g_hash_table_iter_init(&iter, workers);
	while (g_hash_table_iter_next(&iter, NULL, &value))
		g_hash_table_add(users, ((Worker *)value)->user);
	g_hash_table_iter_init(&iter, self->peers);
	while (g_hash_table_iter_next(&iter, &key, &value)) {
		Peer *p = value;
		const Worker *w;

		if (p->public_key == NULL)
			continue;
		w = g_hash_table_lookup(workers, p->public_key);
		if (w == NULL || g_strcmp0(w->user, p->user) != 0)
			g_ptr_array_add(gone, g_strdup(key));
		else
			p->roles = w->roles;
	}
	for (guint i = 0; i < gone->len; i++) {
		Peer *p = g_hash_table_lookup(self->peers, g_ptr_array_index(gone, i));

		g_message("office: the key of worker %s is no longer allowed by office_dir; its "
			  "connection is forgotten%s",
			  p->user, p->lease != NULL ? " and its lease lost" : "");
		if (p->lease != NULL)
			drop_lease(self, p->lease, TRUE);
		g_hash_table_remove(self->peers, g_ptr_array_index(gone, i));
	}
	g_hash_table_iter_init(&iter, self->leases);
	while (g_hash_table_iter_next(&iter, &key, &value)) {
		Lease *l = value;
		if (l->peer_key == NULL && !g_hash_table_contains(users, l->user))
			g_ptr_array_add(ended, g_strdup(key));
	}
	for (guint i = 0; i < ended->len; i++)
		drop_lease(self, g_ptr_array_index(ended, i), TRUE);
	g_message("office: office_dir %s re-read (%s): %u worker key(s) allowed, %u file(s) "
		  "refused",
		  self->config->office_dir != NULL ? self->config->office_dir : "(none)", why,
		  g_hash_table_size(workers), refused);
	schedule_dispatch(self);
}

static gboolean
on_reload_timeout(gpointer user_data)
{
	CsOffice *self = user_data;

	self->reload_id = 0;
	reload_workers(self, "its files changed");
	return G_SOURCE_REMOVE;
}

/* Any change in office_dir (a file written, created, removed, renamed in or out, its mode
 * changed) re-reads it once the changes settle. */
static void
schedule_reload(CsOffice *self)
{
	if (self->reload_id == 0)
		self->reload_id = g_timeout_add(RELOAD_DELAY_MS, on_reload_timeout, self);
}

#define OFFICE_DIR_EVENTS                                                                          \
	(IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE |        \
	 IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
#define OFFICE_DIR_REWATCH_S 4

static int add_dir_watch(CsOffice *self);

static gboolean
on_rewatch(gpointer user_data)
{
	CsOffice *self = user_data;

	if (add_dir_watch(self) != 0)
		return G_SOURCE_CONTINUE;
	self->rewatch_id = 0;
	/* Files may have come with the folder: read what is there now. */
	schedule_reload(self);
	return G_SOURCE_REMOVE;
}

static gboolean
on_inotify(gint fd, GIOCondition condition, gpointer user_data)
{
	CsOffice *self = user_data;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	gboolean changed = FALSE, lost = FALSE;
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (char *at = buf; at < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)at;
			if (ev->wd == self->inotify_wd && (ev->mask & IN_IGNORED))
				lost = TRUE;
			else if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF))
				lost = TRUE;
			changed = TRUE;
			at += sizeof(struct inotify_event) + ev->len;
		}
	}
	if (lost && self->inotify_wd >= 0) {
		/* The folder itself went away (or was moved): look for it again. */
		inotify_rm_watch(self->inotify_fd, self->inotify_wd);
		self->inotify_wd = -1;
		if (self->rewatch_id == 0)
			self->rewatch_id =
			    g_timeout_add_seconds(OFFICE_DIR_REWATCH_S, on_rewatch, self);
	}
	if (changed)
		schedule_reload(self);
	return G_SOURCE_CONTINUE;
}

/* 0, or the errno of inotify_add_watch. */
static int
add_dir_watch(CsOffice *self)
{
	int wd = inotify_add_watch(self->inotify_fd, self->config->office_dir, OFFICE_DIR_EVENTS);

	if (wd < 0)
		return errno;
	self->inotify_wd = wd;
	return 0;
}

static gboolean
on_sighup(gpointer user_data)
{
	reload_workers(user_data, "SIGHUP");
	return G_SOURCE_CONTINUE;
}

static void
watch_office_dir(CsOffice *self)
{
	int e;

	self->sighup_id = cs_signal_add(SIGHUP, on_sighup, self);
	if (self->config->office_dir == NULL)
		return;
	self->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (self->inotify_fd < 0) {
		g_warning("office: office_dir %s: cannot watch it (%s); send SIGHUP after a change",
			  self->config->office_dir, g_strerror(errno));
		return;
	}
	self->inotify_id = g_unix_fd_add(self->inotify_fd, G_IO_IN, on_inotify, self);
	e = add_dir_watch(self);
	if (e == ENOENT)
		/* Not there yet: watched once it is made. */
		self->rewatch_id = g_timeout_add_seconds(OFFICE_DIR_REWATCH_S, on_rewatch, self);
	else if (e != 0)
		g_warning("office: office_dir %s: cannot watch it (%s); send SIGHUP after a change",
			  self->config->office_dir, g_strerror(e));
}

/* ---- the verbs ------------------------------------------------------------------------- */

/* The worker as the engine sees it: an office actor with its user id and roles. The actor
 * bit is replaced by the role a step is taken in (cs-tasks takes a task's transition in the
 * service's role, a refund is taken as cashier); the roles decide what is allowed. */
static CsRequest
peer_request(Peer *peer)
{
	CsRequest r = {0};

	r.actor = CS_ACTOR_ADMIN;
	r.user_id = peer->user;
	r.roles = peer->roles;
	return r;
}

/* A lease this peer's user may finish; NULL with WrongState otherwise. */
static Lease *
lookup_lease(CsOffice *self, Peer *peer, const char *lease, GError **error)
{
	Lease *l = g_hash_table_lookup(self->leases, lease);

	if (l == NULL || g_strcmp0(l->user, peer->user) != 0 ||
	    (l->peer_key == NULL && g_get_monotonic_time() > l->expires)) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_WRONG_STATE,
				    "lease: no longer valid (lost, or the task is done)");
		return NULL;
	}
	return l;
}

static void
lease_finished(CsOffice *self, const char *lease)
{
	Lease *l = g_hash_table_lookup(self->leases, lease);
	Peer *p =
	    l != NULL && l->peer_key != NULL ? g_hash_table_lookup(self->peers, l->peer_key) : NULL;

	if (p != NULL && g_strcmp0(p->lease, lease) == 0)
		peer_set_idle(p);
	g_hash_table_remove(self->leases, lease);
	schedule_dispatch(self);
}

static gboolean
finish_lease(CsOffice *self,
	     Peer *peer,
	     const char *lease,
	     JsonObject *result,
	     const char *reason,
	     gboolean done,
	     GError **error)
{
	CsRequest request = peer_request(peer);
	gboolean ok;

	if (lookup_lease(self, peer, lease, error) == NULL)
		return FALSE;
	ok = done ? cs_tasks_complete(self->tasks, &request, lease, result, error)
		  : cs_tasks_fail(self->tasks, &request, lease, reason, error);
	if (ok || !(g_error_matches(*error, CS_ERROR, CS_ERROR_INVALID_INPUT) ||
		    g_error_matches(*error, CS_ERROR, CS_ERROR_ACCESS_DENIED))) {
		/* Done, failed, or refused for good (the order moved on, the lease is stale):
		 * either way this lease is over. A fixable result keeps it. */
		if (!ok)
			cs_tasks_release(self->tasks, lease);
		lease_finished(self, lease);
	}
	return ok;
}

static JsonObject *
member_object(JsonObject *o, const char *name)
{
	JsonNode *n = o != NULL ? json_object_get_member(o, name) : NULL;

	return n != NULL && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

static void
handle_done(CsOffice *self, Peer *peer, CsOfficeMsg *msg, gboolean done)
{
	const char *lease = cs_office_body_get_string(msg->body, "lease");
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) reply = json_object_new();
	g_autoptr(JsonObject) result = json_object_new();

	if (!finish_lease(self, peer, lease, member_object(msg->body, "result"),
			  cs_office_body_get_string(msg->body, "error"), done, &error)) {
		send_error(self, peer->identity, "lease",
			   json_object_get_member(msg->body, "lease"), error);
		return;
	}
	json_object_set_string_member(reply, "lease", lease);
	json_object_set_boolean_member(result, "committed", TRUE);
	json_object_set_object_member(reply, "result", g_steal_pointer(&result));
	send_to(self, peer->identity, CS_OFFICE_RESULT, reply);
}

static void
handle_ready(CsOffice *self, Peer *peer, CsOfficeMsg *msg)
{
	const char *service = cs_office_body_get_string(msg->body, "service");
	CsRequest request = peer_request(peer);

	if (!cs_tasks_may_serve(self->tasks, &request, service)) {
		g_autofree char *quoted = cs_quote_value(service);
		g_autoptr(GError) error = g_error_new(CS_ERROR, CS_ERROR_ACCESS_DENIED,
						      "%s may not serve '%s'", peer->user, quoted);
		send_error(self, peer->identity, "service",
			   json_object_get_member(msg->body, "service"), error);
		return;
	}
	g_free(peer->service);
	peer->service = g_strdup(service);
	if (!g_hash_table_contains(self->worked_services, service)) {
		g_hash_table_add(self->worked_services, g_strdup(service));
		if (self->sandbox && cs_tasks_sandbox_serves(service))
			g_message("office: %s is READY for %s: the sandbox gateway no longer takes "
				  "%s tasks until the daemon restarts",
				  peer->user, service, service);
	}
	if (peer->lease == NULL)
		peer->idle_since = g_get_monotonic_time();
	/* The timing at once, before any TASK: a worker learns how often to beat. */
	if (!peer->timed)
		send_heartbeat(self, peer);
	schedule_dispatch(self);
}

static void
handle_heartbeat(CsOffice *self, Peer *peer)
{
	GHashTableIter iter;
	gpointer value;
	gint64 until = g_get_monotonic_time() + (gint64)self->config->office_claim_ms * 1000;

	/* Only heartbeats on this connection, no READY: a worker reconnected (after a daemon
	 * restart, or a refused handshake) that thinks it is still READY. Told once. */
	if (!peer->spoke && !peer->hinted) {
		g_autoptr(GError) e = g_error_new_literal(
		    CS_ERROR, CS_ERROR_WRONG_STATE,
		    "READY: this connection never sent READY, so it is given no tasks; send "
		    "READY {\"service\": S} (again after every reconnect)");
		peer->hinted = TRUE;
		send_error(self, peer->identity, "service", NULL, e);
	}

	/* A person's claims are renewed by the heartbeats of that person's connections. */
	g_hash_table_iter_init(&iter, self->leases);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		Lease *l = value;
		if (l->peer_key == NULL && g_strcmp0(l->user, peer->user) == 0 &&
		    l->expires > g_get_monotonic_time())
			l->expires = until;
	}
}

/* ---- CALL methods ---------------------------------------------------------------------- */

typedef JsonNode *(*MethodFunc)(CsOffice *self, Peer *peer, JsonObject *params, GError **error);

static JsonNode *
object_node(JsonObject *o)
{
	JsonNode *n = json_node_init_object(json_node_alloc(), o);

	json_object_unref(o);
	return n;
}

static JsonNode *
m_info(CsOffice *self, Peer *peer, JsonObject *params, GError **error)
{
	JsonObject *o = json_object_new();

	json_object_set_string_member(o, "endpoint", self->endpoint);
	json_object_set_string_member(o, "events_endpoint", self->events_endpoint);
	json_object_set_string_member(o, "server_public_key", self->server_public);
	json_object_set_string_member(o, "user", peer->user);
	json_object_set_array_member(o, "roles", roles_to_json(peer->roles));
	json_object_set_boolean_member(o, "sandbox", self->sandbox);
	set_timing(self, o);
	return object_node(o);
}

static JsonObject *
order_summary(CsEngine *engine, CsOrder *order)
{
	JsonObject *o = json_object_new();

	json_object_set_string_member(o, "id", cs_order_get_id(order));
	json_object_set_string_member(o, "kind", cs_order_get_kind(order));
	json_object_set_string_member(o, "subject_type",
				      cs_subject_type_to_string(cs_order_get_subject_type(order)));
	json_object_set_string_member(o, "vendor", cs_order_get_vendor(order));
	json_object_set_string_member(o, "state", cs_order_get_state(order));
	json_object_set_int_member(o, "amount_fen", (gint64)cs_engine_amount_fen(engine, order));
	json_object_set_int_member(o, "created", cs_order_get_created(order));
	json_object_set_int_member(o, "updated", cs_order_get_updated(order));
	return o;
}

static JsonNode *
m_orders_list(CsOffice *self, Peer *peer, JsonObject *params, GError **error)
{
	const char *state = cs_office_body_get_string(params, "state");
	const char *kind = cs_office_body_get_string(params, "kind");
	/* One subject's orders, as the applicant's order query finds them: its USCC or
	 * resident ID (either subject type). */
	const char *subject = cs_office_body_get_string(params, "subject");
	g_autoptr(GPtrArray) ids =
	    cs_ledger_list_orders(cs_engine_get_ledger(self->engine), state, error);
	JsonArray *a;
	JsonNode *n;

	if (ids == NULL)
		return NULL;
	a = json_array_new();
	for (guint i = 0; i < ids->len; i++) {
		CsOrder *order = cs_engine_get_order(self->engine, g_ptr_array_index(ids, i), NULL);
		if (order == NULL ||
		    (kind != NULL && g_strcmp0(kind, cs_order_get_kind(order)) != 0) ||
		    (subject != NULL &&
		     g_ascii_strcasecmp(subject, cs_order_get_subject_number(order) != NULL
						     ? cs_order_get_subject_number(order)
						     : "") != 0))
			continue;
		json_array_add_object_element(a, order_summary(self->engine, order));
	}
	n = json_node_init_array(json_node_alloc(), a);
	json_array_unref(a);
	return n;
}

/* {kind, filename, mime, size, sha256, created, actor}: a material without its content. */
static JsonObject *
material_to_json(const CsMaterialRow *m)
{
	JsonObject *o = json_object_new();

	json_object_set_string_member(o, "kind", m->kind);
	json_object_set_string_member(o, "filename", m->filename);
	json_object_set_string_member(o, "mime", m->mime);
	json_object_set_int_member(o, "size", m->size);
	json_object_set_string_member(o, "sha256", m->sha256);
	json_object_set_int_member(o, "created", m->created);
	json_object_set_string_member(o, "actor", m->actor);
	return o;
}

static JsonNode *
m_orders_get(CsOffice *self, Peer *peer, JsonObject *params, GError **error)
{
	const char *id = cs_office_body_get_string(params, "id");
	CsOrder *order;
	JsonObject *o, *fields;
	JsonArray *history, *tasks_json, *materials_json;
	g_autoptr(GPtrArray) events = NULL;
	g_autoptr(GPtrArray) materials = NULL;
	g_autoptr(GPtrArray) tasks = NULL;
	GVariantIter iter;
	const char *name;
	GVariant *value;

	if (id == NULL) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "id: required");
		return NULL;
	}
	order = cs_engine_get_order(self->engine, id, error);
	if (order == NULL)
		return NULL;
	events = cs_engine_history(self->engine, order, error);
	if (events == NULL)
		return NULL;
	o = order_summary(self->engine, order);
	fields = json_object_new();
	g_variant_iter_init(&iter, cs_order_get_fields(order));
	while (g_variant_iter_next(&iter, "{&sv}", &name, &value)) {
		if (g_variant_is_of_type(value, G_VARIANT_TYPE_STRING))
			json_object_set_string_member(fields, name,
						      g_variant_get_string(value, NULL));
		g_variant_unref(value);
	}
	json_object_set_object_member(o, "fields", fields);
	history = json_array_new();
	for (guint i = 0; i < events->len; i++) {
		CsEventRow *e = g_ptr_array_index(events, i);
		JsonObject *h = json_object_new();
		g_autofree char *note = cs_engine_event_note(order, e);
		json_object_set_int_member(h, "seq", e->seq);
		json_object_set_int_member(h, "time", e->time);
		json_object_set_string_member(h, "kind", e->kind);
		json_object_set_string_member(h, "from", e->from);
		json_object_set_string_member(h, "to", e->to);
		json_object_set_string_member(h, "actor", e->actor);
		json_object_set_string_member(h, "note", note);
		json_array_add_object_element(history, h);
	}
	json_object_set_array_member(o, "history", history);
	/* The materials' descriptions; their content comes from materials.get. */
	materials = cs_engine_list_materials(self->engine, order, error);
	if (materials == NULL) {
		json_object_unref(o);
		return NULL;
	}
	materials_json = json_array_new();
	for (guint i = 0; i < materials->len; i++)
		json_array_add_object_element(materials_json,
					      material_to_json(g_ptr_array_index(materials, i)));
	json_object_set_array_member(o, "materials", materials_json);
	tasks = cs_tasks_list(self->tasks, NULL, NULL, error);
	if (tasks == NULL) {
		json_object_unref(o);
		return NULL;
	}
	tasks_json = json_array_new();
	for (guint i = 0; i < tasks->len; i++) {
		CsTask *t = g_ptr_array_index(tasks, i);
		JsonObject *tj;
		if (g_strcmp0(t->order_id, cs_order_get_id(order)) != 0)
			continue;
		tj = cs_task_to_json(t);
		json_object_remove_member(tj, "lease");
		json_array_add_object_element(tasks_json, tj);
	}
	json_object_set_array_member(o, "tasks", tasks_json);
	return object_node(o);
}

/* The latest material of a kind with its content (base64), for the reviewer's viewer. */
static JsonNode *
m_materials_get(CsOffice *self, Peer *peer, JsonObject *params, GError **error)
{
	const char *order_id = cs_office_body_get_string(params, "order_id");
	const char *kind = cs_office_body_get_string(params, "kind");
	g_autoptr(CsMaterialRow) m = NULL;
	g_autofree char *b64 = NULL;
	CsOrder *order;
	JsonObject *o;
	gsize len = 0;
	const guint8 *data;

	if (order_id == NULL || kind == NULL) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "%s: required",
			    order_id == NULL ? "order_id" : "kind");
		return NULL;
	}
	order = cs_engine_get_order(self->engine, order_id, error);
	if (order == NULL)
		return NULL;
	m = cs_ledger_load_material(cs_engine_get_ledger(self->engine), cs_order_get_id(order),
				    kind, error);
	if (m == NULL)
		return NULL;
	data = g_bytes_get_data(m->data, &len);
	b64 = g_base64_encode(data, len);
	o = material_to_json(m);
	json_object_set_string_member(o, "data", b64);
	return object_node(o);
}

static gboolean
require_service_role(CsOffice *self, Peer *peer, const char *service, GError **error)
{
	CsRequest request = peer_request(peer);

	if (service == NULL || cs_tasks_service_role(self->tasks, service) == 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "service: unknown '%s'",
			    service != NULL ? service : "");
		return FALSE;
	}
	if (!cs_tasks_may_serve(self->tasks, &request, service)) {
		g_set_error(error, CS_ERROR, CS_ERROR_ACCESS_DENIED, "%s may not serve '%s'",
			    peer->user, service);
		return FALSE;
	}
	return TRUE;
}

static JsonNode *
claim_reply(CsOffice *self, CsTask *task)
{
	Lease *l = g_hash_table_lookup(self->leases, task->lease);

	if (l == NULL) {
		l = g_new0(Lease, 1);
		l->user = g_strdup(task->lease_user);
		g_hash_table_replace(self->leases, g_strdup(task->lease), l);
	}
	l->expires = g_get_monotonic_time() + (gint64)self->config->office_claim_ms * 1000;
	return object_node(cs_task_to_json(task));
}

static JsonNode *
m_task_next(CsOffice *self, Peer *peer, JsonObject *params, GError **error)
{
	const char *service = cs_office_body_get_string(params, "service");
	g_autoptr(CsTask) task = NULL;
	g_autoptr(GError) local = NULL;

	if (!require_service_role(self, peer, service, error))
		return NULL;
	task = cs_tasks_lease_next(self->tasks, service, peer->user, &local);
	if (task == NULL) {
		if (local != NULL) {
			g_propagate_error(error, g_steal_pointer(&local));
			return NULL;
		}
		return json_node_new(JSON_NODE_NULL);
	}
	return claim_reply(self, task);
}

static JsonNode *
m_task_claim(CsOffice *self, Peer *peer, JsonObject *params, GError **error)
{
	const char *service = cs_office_body_get_string(params, "service");
	const char *order_id = cs_office_body_get_string(params, "order_id");
	g_autoptr(CsTask) task = NULL;

	if (!require_service_role(self, peer, service, error))
		return NULL;
	if (order_id == NULL) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "order_id: required");
		return NULL;
	}
	if (cs_engine_get_order(self->engine, order_id, error) == NULL)
		return NULL;
	task = cs_tasks_claim(self->tasks, order_id, service, peer->user, error);
	if (task == NULL)
		return NULL;
	return claim_reply(self, task);
}

static JsonNode *
m_task_finish(CsOffice *self, Peer *peer, JsonObject *params, gboolean done, GError **error)
{
	const char *lease = cs_office_body_get_string(params, "lease");
	JsonObject *o;

	if (lease == NULL) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "lease: required");
		return NULL;
	}
	if (!finish_lease(self, peer, lease, member_object(params, "result"),
			  cs_office_body_get_string(params, "error"), done, error))
		return NULL;
	o = json_object_new();
	json_object_set_boolean_member(o, "committed", TRUE);
	return object_node(o);
}

static JsonNode *
m_task_done(CsOffice *self, Peer *peer, JsonObject *params, GError **error)
{
	return m_task_finish(self, peer, params, TRUE, error);
}

static JsonNode *
m_task_fail(CsOffice *self, Peer *peer, JsonObject *params, GError **error)
{
	return m_task_finish(self, peer, params, FALSE, error);
}

static JsonNode *
m_task_secret(CsOffice *self, Peer *peer, JsonObject *params, GError **error)
{
	const char *lease = cs_office_body_get_string(params, "lease");
	g_autoptr(GBytes) secret = NULL;
	g_autofree char *text = NULL;
	JsonObject *o;

	/* The admin may call everything else, but not this: staff never see a secret. */
	if ((peer->roles & CS_ACTOR_GATEWAY) == 0) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_ACCESS_DENIED,
				    "task.secret: only a gateway worker reads a secret");
		return NULL;
	}
	if (lease == NULL || lookup_lease(self, peer, lease, error) == NULL) {
		if (lease == NULL)
			g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
					    "lease: required");
		return NULL;
	}
	secret = cs_tasks_open_secret(self->tasks, lease, error);
	if (secret == NULL)
		return NULL;
	text = g_strndup(g_bytes_get_data(secret, NULL), g_bytes_get_size(secret));
	o = json_object_new();
	json_object_set_string_member(o, "secret", text);
	memset(text, 0, strlen(text));
	return object_node(o);
}

static JsonNode *
m_tasks_list(CsOffice *self, Peer *peer, JsonObject *params, GError **error)
{
	g_autoptr(GPtrArray) tasks =
	    cs_tasks_list(self->tasks, cs_office_body_get_string(params, "state"),
			  cs_office_body_get_string(params, "service"), error);
	JsonArray *a;
	JsonNode *n;

	if (tasks == NULL)
		return NULL;
	a = json_array_new();
	for (guint i = 0; i < tasks->len; i++) {
		JsonObject *tj = cs_task_to_json(g_ptr_array_index(tasks, i));
		json_object_remove_member(tj, "lease");
		json_array_add_object_element(a, tj);
	}
	n = json_node_init_array(json_node_alloc(), a);
	json_array_unref(a);
	return n;
}

static JsonNode *
m_payment_notify(CsOffice *self, Peer *peer, JsonObject *params, GError **error)
{
	gboolean applied = FALSE;
	gboolean refunding = FALSE;
	g_autofree char *order_id = NULL;
	JsonObject *o;

	if (!cs_payment_notify(self->engine, self->payment_keys, params, &applied, &refunding,
			       &order_id, error))
		return NULL;
	o = json_object_new();
	json_object_set_string_member(o, "order_id", order_id);
	json_object_set_boolean_member(o, "applied", applied);
	json_object_set_boolean_member(o, "duplicate", !applied && !refunding);
	/* Money for an order that no longer waited for it: kept on record, to refund. */
	json_object_set_boolean_member(o, "refunding", refunding);
	/* What a relaying worker answers the platform: both want "success" once verified. */
	json_object_set_string_member(o, "reply", "success");
	return object_node(o);
}

static JsonNode *
m_payment_refund(CsOffice *self, Peer *peer, JsonObject *params, GError **error)
{
	const char *id = cs_office_body_get_string(params, "order_id");
	CsRequest request = peer_request(peer);
	const char *refund;
	CsOrder *order;

	request.actor = CS_ACTOR_CASHIER;
	if (id == NULL) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "order_id: required");
		return NULL;
	}
	order = cs_engine_get_order(self->engine, id, error);
	if (order == NULL)
		return NULL;
	refund = cs_engine_step_action(order, CS_TRANSITION_REFUND);
	if (refund == NULL) {
		g_set_error(error, CS_ERROR, CS_ERROR_WRONG_STATE, "a %s order has no refund step",
			    cs_order_get_kind(order));
		return NULL;
	}
	if (!cs_engine_act(self->engine, &request, order, refund, error))
		return NULL;
	return object_node(order_summary(self->engine, order));
}

/*
 * ledger.verify: the whole ledger (chain, checkpoints, keyed head, every order) is
 * verified in a worker thread with its own read-only connection, so the office and the
 * bus go on meanwhile; the RESULT follows when it is done. A failure makes the daemon
 * read-only, as the verification after start does.
 */
typedef struct {
	CsOffice *self;
	GBytes *identity;
	JsonNode *id;
} VerifyCall;

static void
verify_call_free(VerifyCall *vc)
{
	g_bytes_unref(vc->identity);
	if (vc->id != NULL)
		json_node_unref(vc->id);
	g_free(vc);
}

static void
on_ledger_verified(gboolean ok, gint64 bad, gint64 checked, const GError *error, gpointer user_data)
{
	VerifyCall *vc = user_data;
	g_autoptr(JsonObject) reply = NULL;
	JsonObject *o;

	/* Cancelled: the office is going away. */
	if (!ok && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
		verify_call_free(vc);
		return;
	}
	o = json_object_new();
	json_object_set_boolean_member(o, "ok", ok);
	if (!ok) {
		json_object_set_int_member(o, "bad_seq", bad);
		json_object_set_string_member(o, "message", error->message);
		if (bad > 0) {
			cs_ledger_refuse_writes(cs_engine_get_ledger(vc->self->engine), bad);
			g_critical("ledger failed verification at event %" G_GINT64_FORMAT
				   ": %s; certseald is read-only from now on",
				   bad, error->message);
		}
	}
	json_object_set_int_member(o, "checked", checked);
	reply = json_object_new();
	json_object_set_member(
	    reply, "id", vc->id != NULL ? json_node_copy(vc->id) : json_node_new(JSON_NODE_NULL));
	json_object_set_object_member(reply, "result", o);
	send_to(vc->self, vc->identity, CS_OFFICE_RESULT, reply);
	verify_call_free(vc);
}

static void
start_ledger_verify(CsOffice *self, Peer *peer, JsonNode *id)
{
	VerifyCall *vc = g_new0(VerifyCall, 1);

	vc->self = self;
	vc->identity = g_bytes_ref(peer->identity);
	vc->id = id != NULL ? json_node_copy(id) : NULL;
	cs_ledger_verify_in_background(cs_engine_get_ledger(self->engine), self->verifying,
				       on_ledger_verified, vc);
}

/* Only its place in the method table (roles); start_ledger_verify() does the work. */
static JsonNode *
m_ledger_verify(CsOffice *self, Peer *peer, JsonObject *params, GError **error)
{
	g_set_error_literal(error, CS_ERROR, CS_ERROR_INTERNAL, "ledger.verify: not dispatched");
	return NULL;
}

/* DER → PEM text with @label ("X509 CRL"), 64 columns as RFC 7468 wants. */
static char *
pem_armor(GBytes *der, const char *label)
{
	g_autofree char *b64 = g_base64_encode(g_bytes_get_data(der, NULL), g_bytes_get_size(der));
	GString *pem = g_string_new(NULL);
	gsize len = strlen(b64);

	g_string_append_printf(pem, "-----BEGIN %s-----\n", label);
	for (gsize i = 0; i < len; i += 64)
		g_string_append_printf(pem, "%.*s\n", (int)MIN(64, len - i), b64 + i);
	g_string_append_printf(pem, "-----END %s-----\n", label);
	return g_string_free(pem, FALSE);
}

/* The vendors a ca.* call is about: the one named, or all of them. */
static GPtrArray *
ca_vendors(CsOffice *self, JsonObject *params, GError **error)
{
	const char *vendor = params != NULL ? cs_office_body_get_string(params, "vendor") : NULL;
	GPtrArray *ids = g_ptr_array_new();

	if (cs_engine_get_cas(self->engine) == NULL) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_UNAVAILABLE, "the CA is not running");
		g_ptr_array_unref(ids);
		return NULL;
	}
	if (vendor != NULL) {
		if (cs_config_find_vendor(self->config, vendor) == NULL) {
			g_autofree char *quoted = cs_quote_value(vendor);

			g_set_error(error, CS_ERROR, CS_ERROR_NOT_FOUND,
				    "vendor: no vendor profile named '%s'", quoted);
			g_ptr_array_unref(ids);
			return NULL;
		}
		g_ptr_array_add(ids, (gpointer)vendor);
		return ids;
	}
	for (guint i = 0; i < self->config->vendors->len; i++) {
		CsVendor *v = g_ptr_array_index(self->config->vendors, i);
		g_ptr_array_add(ids, v->id);
	}
	return ids;
}

/* One vendor's PEM for a ca.* call; NULL with @error set on failure. */
typedef char *(*CaPemFunc)(CsOffice *self, const char *vendor, GError **error);

/* root, issuing and seal-maker certificates */
static char *
ca_certificates_pem(CsOffice *self, const char *vendor, GError **error)
{
	CsCa *ca = cs_ca_set_get(cs_engine_get_cas(self->engine), vendor, error);

	return ca != NULL ? cs_ca_export_pem(ca) : NULL;
}

/* the issuing CA's CRL, regenerated now (a new CRL number) */
static char *
ca_crl_pem(CsOffice *self, const char *vendor, GError **error)
{
	g_autoptr(GBytes) der = cs_ca_set_regenerate_crl(cs_engine_get_cas(self->engine), vendor,
							 cs_clock_now(), error);

	return der != NULL ? pem_armor(der, "X509 CRL") : NULL;
}

/* [{vendor, pem}] for the vendor named in @params, or every vendor. */
static JsonNode *
ca_pem_list(CsOffice *self, JsonObject *params, CaPemFunc pem_of, GError **error)
{
	g_autoptr(GPtrArray) ids = ca_vendors(self, params, error);
	JsonArray *a;

	if (ids == NULL)
		return NULL;
	a = json_array_new();
	for (guint i = 0; i < ids->len; i++) {
		const char *vendor = g_ptr_array_index(ids, i);
		g_autofree char *pem = pem_of(self, vendor, error);
		JsonObject *o;

		if (pem == NULL) {
			json_array_unref(a);
			return NULL;
		}
		o = json_object_new();
		json_object_set_string_member(o, "vendor", vendor);
		json_object_set_string_member(o, "pem", pem);
		json_array_add_object_element(a, o);
	}
	return json_node_init_array(json_node_alloc(), a);
}

static JsonNode *
m_ca_export(CsOffice *self, Peer *peer, JsonObject *params, GError **error)
{
	return ca_pem_list(self, params, ca_certificates_pem, error);
}

static JsonNode *
m_ca_crl(CsOffice *self, Peer *peer, JsonObject *params, GError **error)
{
	return ca_pem_list(self, params, ca_crl_pem, error);
}

static JsonNode *
m_outbox_list(CsOffice *self, Peer *peer, JsonObject *params, GError **error)
{
	const char *service = cs_office_body_get_string(params, "service");
	JsonArray *a;
	JsonNode *n;

	if (!self->config->test_mode) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_UNAVAILABLE,
				    "outbox.list: the sandbox gateways run only in test_mode");
		return NULL;
	}
	if (!cs_tasks_sandbox_serves(service)) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "service: must be sms, mail, idv or bank");
		return NULL;
	}
	a = cs_tasks_list_outbox(self->tasks, service, error);
	if (a == NULL)
		return NULL;
	n = json_node_init_array(json_node_alloc(), a);
	json_array_unref(a);
	return n;
}

/* What a call leaves in the ledger: `info` nothing; a read of applicants' data one event,
 * repeats within a minute folded into it (cs_tasks_record_call()); anything else one event
 * a call. The reads are the audit of staff reading personal data. */
typedef enum {
	AUDIT_NONE,
	AUDIT_FOLDED,
	AUDIT_EACH,
} CallAudit;

/* docs/architecture.md §3.4's table; task.* are checked against the service's role inside. */
static const struct {
	const char *method;
	guint roles;
	MethodFunc func;
	CallAudit audit;
} methods[] = {
    {"info", ANY_ROLE, m_info, AUDIT_NONE},
    {"orders.list", OFFICE_READ_ROLES, m_orders_list, AUDIT_FOLDED},
    {"orders.get", OFFICE_READ_ROLES, m_orders_get, AUDIT_FOLDED},
    {"materials.get", OFFICE_READ_ROLES, m_materials_get, AUDIT_FOLDED},
    {"task.next", ANY_ROLE, m_task_next, AUDIT_EACH},
    {"task.claim", ANY_ROLE, m_task_claim, AUDIT_EACH},
    {"task.done", ANY_ROLE, m_task_done, AUDIT_EACH},
    {"task.fail", ANY_ROLE, m_task_fail, AUDIT_EACH},
    {"task.secret", CS_ACTOR_GATEWAY, m_task_secret, AUDIT_EACH},
    {"tasks.list", CS_ACTOR_AUDITOR, m_tasks_list, AUDIT_EACH},
    {"payment.notify", CS_ACTOR_CASHIER, m_payment_notify, AUDIT_EACH},
    {"payment.refund", CS_ACTOR_CASHIER, m_payment_refund, AUDIT_EACH},
    {"ledger.verify", CS_ACTOR_AUDITOR, m_ledger_verify, AUDIT_EACH},
    {"ca.export", CS_ACTOR_AUDITOR, m_ca_export, AUDIT_EACH},
    {"ca.crl", CS_ACTOR_AUDITOR, m_ca_crl, AUDIT_EACH},
    {"outbox.list", CS_ACTOR_ADMIN, m_outbox_list, AUDIT_EACH},
};

static void
handle_call(CsOffice *self, Peer *peer, CsOfficeMsg *msg)
{
	const char *method = cs_office_body_get_string(msg->body, "method");
	JsonNode *id = json_object_get_member(msg->body, "id");
	JsonObject *params = member_object(msg->body, "params");
	g_autoptr(JsonObject) empty = json_object_new();
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) result = NULL;
	const char *order_id;
	CsRequest request = peer_request(peer);
	int found = -1;

	if (params == NULL)
		params = empty;
	for (guint i = 0; i < G_N_ELEMENTS(methods); i++) {
		if (g_strcmp0(methods[i].method, method) == 0)
			found = (int)i;
	}
	if (found < 0) {
		g_autofree char *quoted = cs_quote_value(method);

		error =
		    g_error_new(CS_ERROR, CS_ERROR_INVALID_INPUT, "method: unknown '%s'", quoted);
	} else if (methods[found].roles != ANY_ROLE &&
		   (peer->roles & (methods[found].roles | CS_ACTOR_ADMIN)) == 0) {
		error = g_error_new(CS_ERROR, CS_ERROR_ACCESS_DENIED, "%s: %s lacks the role",
				    method, peer->user);
		g_message("office: %s refused to %s", method, peer->user);
	} else {
		order_id = cs_office_body_get_string(params, "order_id");
		if (order_id == NULL)
			order_id = cs_office_body_get_string(params, "id");
		gboolean recorded =
		    methods[found].audit == AUDIT_NONE ||
		    cs_tasks_record_call(self->tasks, &request, method, order_id,
					 methods[found].audit == AUDIT_FOLDED, &error);

		/* A ledger that failed verification records nothing more; the auditor may
		 * still verify it. */
		if (!recorded && methods[found].func == m_ledger_verify &&
		    cs_ledger_get_failed_seq(cs_engine_get_ledger(self->engine)) > 0) {
			g_clear_error(&error);
			recorded = TRUE;
		}
		if (recorded) {
			if (methods[found].func == m_ledger_verify) {
				start_ledger_verify(self, peer, id);
				return; /* replied when done */
			}
			result = methods[found].func(self, peer, params, &error);
		}
	}
	if (result == NULL) {
		send_error(self, peer->identity, "id", id, error);
	} else {
		g_autoptr(JsonObject) reply = json_object_new();
		json_object_set_member(
		    reply, "id", id != NULL ? json_node_copy(id) : json_node_new(JSON_NODE_NULL));
		json_object_set_member(reply, "result", g_steal_pointer(&result));
		send_to(self, peer->identity, CS_OFFICE_RESULT, reply);
	}
}

/* ---- the ROUTER ------------------------------------------------------------------------ */

static Peer *
find_peer(CsOffice *self, GBytes *identity, const char *user_id)
{
	g_autofree char *key = NULL;
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(identity, &len);
	GString *hex = g_string_new(NULL);
	Peer *peer;
	const Worker *w = NULL;

	for (gsize i = 0; i < len; i++)
		g_string_append_printf(hex, "%02x", data[i]);
	key = g_string_free(hex, FALSE);
	peer = g_hash_table_lookup(self->peers, key);
	if (peer != NULL)
		return peer;
	if (self->curve) {
		w = user_id != NULL ? g_hash_table_lookup(self->workers, user_id) : NULL;
		if (w == NULL)
			return NULL; /* the handshake let it through, the allow-list changed */
	}
	peer = g_new0(Peer, 1);
	peer->key = g_strdup(key);
	peer->identity = g_bytes_ref(identity);
	peer->public_key = self->curve ? g_strdup(user_id) : NULL;
	peer->user = g_strdup(w != NULL ? w->user : "local");
	peer->roles = w != NULL ? w->roles : CS_ACTOR_ADMIN;
	g_hash_table_replace(self->peers, g_steal_pointer(&key), peer);
	return peer;
}

static void
on_router(void *socket, GPtrArray *frames, guint n_frames, const char *user_id, gpointer user_data)
{
	CsOffice *self = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(CsOfficeMsg) msg = NULL;
	Peer *peer;

	if (frames->len < 1)
		return;
	peer = find_peer(self, g_ptr_array_index(frames, 0), user_id);
	if (peer == NULL) {
		g_autoptr(GError) e = g_error_new_literal(
		    CS_ERROR, CS_ERROR_ACCESS_DENIED,
		    "key: no longer allowed (removed from the daemon's office_dir)");
		send_error(self, g_ptr_array_index(frames, 0), "id", NULL, e);
		return;
	}
	peer->last_seen = g_get_monotonic_time();
	/* The message's own count: only the first frames were kept, and only 3 are read. */
	msg = cs_office_msg_parse((GBytes *const *)frames->pdata + 1, n_frames - 1, &error);
	if (msg == NULL) {
		g_debug("office: malformed message from %s: %s", peer->user, error->message);
		send_error(self, peer->identity, "id", NULL, error);
		return;
	}
	if (msg->verb != CS_OFFICE_HEARTBEAT)
		peer->spoke = TRUE;
	switch (msg->verb) {
	case CS_OFFICE_READY:
		handle_ready(self, peer, msg);
		break;
	case CS_OFFICE_DONE:
		handle_done(self, peer, msg, TRUE);
		break;
	case CS_OFFICE_FAIL:
		handle_done(self, peer, msg, FALSE);
		break;
	case CS_OFFICE_HEARTBEAT:
		handle_heartbeat(self, peer);
		break;
	case CS_OFFICE_CALL:
		handle_call(self, peer, msg);
		break;
	default: {
		g_autoptr(GError) e = g_error_new(CS_ERROR, CS_ERROR_INVALID_INPUT,
						  "verb: %s is sent by the daemon, not to it",
						  cs_office_verb_to_string(msg->verb));
		send_error(self, peer->identity, "id", NULL, e);
		break;
	}
	}
}

/* ---- ZAP (ZeroMQ RFC 27) --------------------------------------------------------------- */

static void
zap_reply(void *zap, GBytes *request_id, const char *status, const char *text, const char *user)
{
	gsize len = 0;
	const void *rid = g_bytes_get_data(request_id, &len);

	zmq_send(zap, "1.0", 3, ZMQ_SNDMORE);
	zmq_send(zap, rid, len, ZMQ_SNDMORE);
	zmq_send(zap, status, strlen(status), ZMQ_SNDMORE);
	zmq_send(zap, text, strlen(text), ZMQ_SNDMORE);
	zmq_send(zap, user, strlen(user), ZMQ_SNDMORE);
	zmq_send(zap, "", 0, 0);
}

static void
on_zap(void *socket, GPtrArray *frames, guint n_frames, const char *user_id, gpointer user_data)
{
	CsOffice *self = user_data;
	GBytes *mechanism, *credentials;
	char z85[41];
	gsize len = 0;
	const void *key;

	if (frames->len < 6) {
		g_warning("office: malformed ZAP request");
		return; /* a REP socket must still answer: libzmq only sends well-formed ones */
	}
	mechanism = g_ptr_array_index(frames, 5);
	if (g_bytes_get_size(mechanism) == 5 &&
	    memcmp(g_bytes_get_data(mechanism, NULL), "CURVE", 5) == 0 && frames->len >= 7) {
		credentials = g_ptr_array_index(frames, 6);
		key = g_bytes_get_data(credentials, &len);
		if (len == 32 && zmq_z85_encode(z85, key, 32) != NULL &&
		    g_hash_table_contains(self->workers, z85)) {
			zap_reply(socket, g_ptr_array_index(frames, 1), "200", "OK", z85);
			return;
		}
		note_refused_key(self);
		zap_reply(socket, g_ptr_array_index(frames, 1), "400", "unknown key", "");
		return;
	}
	if (!self->curve) {
		zap_reply(socket, g_ptr_array_index(frames, 1), "200", "OK", "local");
		return;
	}
	zap_reply(socket, g_ptr_array_index(frames, 1), "400", "CURVE required", "");
}

/* ---- set-up ---------------------------------------------------------------------------- */

static gboolean
zmq_failed(GError **error, const char *what, const char *endpoint)
{
	g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "office: %s %s: %s", what,
		    endpoint != NULL ? endpoint : "", zmq_strerror(zmq_errno()));
	return FALSE;
}

static gboolean
setup_server_socket(CsOffice *self, void *socket, const char *server_secret, GError **error)
{
	int one = 1, zero = 0;
	gint64 maxmsg = CS_OFFICE_MAX_BODY + 4096;

	zmq_setsockopt(socket, ZMQ_LINGER, &zero, sizeof(zero));
	if (zmq_setsockopt(socket, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN, strlen(ZAP_DOMAIN)) != 0)
		return zmq_failed(error, "setting the ZAP domain of", NULL);
	if (self->curve && (zmq_setsockopt(socket, ZMQ_CURVE_SERVER, &one, sizeof(one)) != 0 ||
			    zmq_setsockopt(socket, ZMQ_CURVE_SECRETKEY, server_secret, 40) != 0))
		return zmq_failed(error, "enabling CURVE on", NULL);
	/* A bigger message disconnects its sender before it is read whole. */
	if (zmq_setsockopt(socket, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) != 0)
		return zmq_failed(error, "limiting message size on", NULL);
	return TRUE;
}

static gboolean
write_info(CsOffice *self, const char *dir, GError **error)
{
	g_autoptr(JsonObject) o = json_object_new();
	g_autofree char *text = NULL;
	g_autofree char *path = g_build_filename(dir, "info.json", NULL);

	json_object_set_string_member(o, "endpoint", self->endpoint);
	json_object_set_string_member(o, "events_endpoint", self->events_endpoint);
	json_object_set_string_member(o, "server_public_key", self->server_public);
	json_object_set_boolean_member(o, "curve", self->curve);
	if (self->config->office_dir != NULL) {
		g_autofree char *office_dir =
		    g_canonicalize_filename(self->config->office_dir, NULL);

		/* Where `certseal-office keygen --install` puts a new worker's file. */
		json_object_set_string_member(o, "office_dir", office_dir);
	}
	text = cs_office_body_to_string(o);
	return g_file_set_contents_full(path, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0644,
					error);
}

static gboolean
check_endpoints(CsOffice *self, GError **error)
{
	if (self->events_endpoint == NULL) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "office: [office] events_endpoint: cannot be derived from %s; set it",
			    self->endpoint);
		return FALSE;
	}
	if (self->curve)
		return TRUE;
	if (cs_office_endpoint_is_public(self->endpoint) ||
	    cs_office_endpoint_is_public(self->events_endpoint)) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "office: [office] curve = false on the non-loopback endpoint %s: "
			    "CURVE is required off this machine",
			    cs_office_endpoint_is_public(self->endpoint) ? self->endpoint
									 : self->events_endpoint);
		return FALSE;
	}
	if (!self->config->test_mode) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "office: [office] curve = false is allowed only in test_mode");
		return FALSE;
	}
	return TRUE;
}

CsOffice *
cs_office_new(
    CsEngine *engine, CsTasks *tasks, CsVault *vault, const char *state_dir, GError **error)
{
	g_autoptr(CsOffice) self = g_new0(CsOffice, 1);
	g_autofree char *dir = g_build_filename(state_dir, "office", NULL);
	char server_secret[41], admin_secret[41];
	guint refused = 0;

	self->inotify_fd = -1;
	self->inotify_wd = -1;
	self->engine = engine;
	self->config = cs_engine_get_config(engine);
	self->curve = self->config->office_curve;
	self->verifying = g_cancellable_new();
	self->peers =
	    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)peer_free);
	self->leases =
	    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)lease_free);
	self->worked_services = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	self->sandbox = self->config->test_mode && self->config->office_sandbox_gateways;
	if (self->config->office_sandbox_gateways && !self->config->test_mode)
		g_warning("office: [office] sandbox_gateways = true is ignored outside test_mode: "
			  "sms, mail, idv and bank wait for real gateway workers");
	self->endpoint =
	    self->config->office_endpoint != NULL && *self->config->office_endpoint != '\0'
		? g_strdup(self->config->office_endpoint)
		: cs_office_default_endpoint(state_dir);
	self->events_endpoint = self->config->office_events_endpoint != NULL &&
					*self->config->office_events_endpoint != '\0'
				    ? g_strdup(self->config->office_events_endpoint)
				    : cs_office_default_events_endpoint(self->endpoint);
	if (!check_endpoints(self, error))
		return NULL;
	if (g_mkdir_with_parents(dir, 0700) != 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "office: %s: %s", dir,
			    g_strerror(errno));
		return NULL;
	}
	if (!ensure_key(dir, "server.key", self->server_public, server_secret, error) ||
	    !ensure_key(dir, "admin.key", self->admin_public, admin_secret, error))
		return NULL;
	memset(admin_secret, 0, sizeof(admin_secret));
	self->workers = load_workers(self, &refused);

	self->payment_keys = cs_payment_keys_load(self->config, error);
	if (self->payment_keys == NULL)
		return NULL;
	self->tasks = tasks;
	cs_tasks_set_queued_func(self->tasks, on_task_queued, self);

	self->ctx = zmq_ctx_new();
	/* The ZAP handler first: a CURVE socket bound before it would accept handshakes
	 * nobody checks. */
	self->zap = zmq_socket(self->ctx, ZMQ_REP);
	zmq_setsockopt(self->zap, ZMQ_LINGER, &(int){0}, sizeof(int));
	if (zmq_bind(self->zap, ZAP_ENDPOINT) != 0) {
		zmq_failed(error, "binding the ZAP handler at", ZAP_ENDPOINT);
		return NULL;
	}
	self->zap_source = cs_zmq_source_new(self->zap, on_zap, self);
	g_source_attach(self->zap_source, NULL);

	self->router = zmq_socket(self->ctx, ZMQ_ROUTER);
	self->pub = zmq_socket(self->ctx, ZMQ_PUB);
	if (!setup_server_socket(self, self->router, server_secret, error) ||
	    !setup_server_socket(self, self->pub, server_secret, error))
		return NULL;
	memset(server_secret, 0, sizeof(server_secret));
	if (zmq_bind(self->router, self->endpoint) != 0) {
		zmq_failed(error, "binding", self->endpoint);
		return NULL;
	}
	if (zmq_bind(self->pub, self->events_endpoint) != 0) {
		zmq_failed(error, "binding", self->events_endpoint);
		return NULL;
	}
	self->router_source = cs_zmq_source_new(self->router, on_router, self);
	g_source_attach(self->router_source, NULL);
	self->tick_id = g_timeout_add(self->config->office_heartbeat_ms, on_tick, self);
	cs_engine_add_listener(engine, on_order, self);
	if (!write_info(self, dir, error))
		return NULL;
	watch_office_dir(self);
	g_message("office: workers connect to %s (events on %s, CURVE %s, %u allowed key(s), "
		  "%u file(s) of office_dir refused)",
		  self->endpoint, self->events_endpoint, self->curve ? "on" : "off",
		  g_hash_table_size(self->workers), refused);
	schedule_dispatch(self);
	return g_steal_pointer(&self);
}

const char *
cs_office_get_endpoint(CsOffice *self)
{
	return self->endpoint;
}

CsTasks *
cs_office_get_tasks(CsOffice *self)
{
	return self->tasks;
}

const char *
cs_office_get_events_endpoint(CsOffice *self)
{
	return self->events_endpoint;
}

void
cs_office_free(CsOffice *self)
{
	if (self == NULL)
		return;
	flush_refused(self);
	if (self->verifying != NULL) {
		g_cancellable_cancel(self->verifying);
		g_clear_object(&self->verifying);
	}
	if (self->tasks != NULL)
		cs_engine_remove_listener(self->engine, on_order, self);
	if (self->tick_id != 0)
		g_source_remove(self->tick_id);
	if (self->sighup_id != 0)
		g_source_remove(self->sighup_id);
	if (self->reload_id != 0)
		g_source_remove(self->reload_id);
	if (self->rewatch_id != 0)
		g_source_remove(self->rewatch_id);
	if (self->inotify_id != 0)
		g_source_remove(self->inotify_id);
	if (self->inotify_fd >= 0)
		close(self->inotify_fd);
	if (self->dispatch_id != 0)
		g_source_remove(self->dispatch_id);
	if (self->router_source != NULL) {
		g_source_destroy(self->router_source);
		g_source_unref(self->router_source);
	}
	if (self->zap_source != NULL) {
		g_source_destroy(self->zap_source);
		g_source_unref(self->zap_source);
	}
	if (self->router != NULL)
		zmq_close(self->router);
	if (self->pub != NULL)
		zmq_close(self->pub);
	if (self->zap != NULL)
		zmq_close(self->zap);
	if (self->ctx != NULL)
		zmq_ctx_term(self->ctx);
	if (self->tasks != NULL)
		cs_tasks_set_queued_func(self->tasks, NULL, NULL);
	g_clear_pointer(&self->payment_keys, cs_payment_keys_free);
	if (self->workers != NULL)
		g_hash_table_unref(self->workers);
	g_hash_table_unref(self->peers);
	g_hash_table_unref(self->leases);
	g_hash_table_unref(self->worked_services);
	g_free(self->endpoint);
	g_free(self->events_endpoint);
	g_free(self);
}
