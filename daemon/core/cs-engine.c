/*
 * cs-engine.c — the order engine: fields, registry, transitions, ledger records.
 *
 * Everything a flow is made of comes from its plugin's declarations (certseal/plugin.h):
 * the engine knows no state, action or office service by name. It checks a step against
 * the declarations and the actor, runs the transition's own hooks, and records the step.
 *
 * Invariants:
 * - An order in memory always equals its ledger row: the cached order is changed only
 *   after the ledger transaction that records the change (event + state) committed.
 * - Every change is one transaction holding exactly one event, so a crash leaves either
 *   the old or the new state, never a state without its event.
 * - Field values are validated one by one (type, then the field type's validator, then
 *   the registry) before the plugin's cross-field check; errors name the field.
 * - Events carry the names of changed fields, never their values: personal data stays in
 *   the orders table, where it can be corrected, not in the append-only chain.
 * - Likewise a "material" event carries {kind, sha256, size, mime}; the content is only in
 *   the ledger's material store (a file named by its SHA-256, synced before the row that
 *   names it is written in the same transaction as the event).
 */
#define G_LOG_DOMAIN "certseald"

#include <string.h>

#include <json-glib/json-glib.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "cs-codes.h"
#include "cs-engine.h"
#include "cs-fields.h"
#include "cs-grants.h"
#include "cs-keys.h"
#include "cs-loader.h"
#include "cs-order-private.h"
#include "cs-tasks.h"
#include "cs-validate.h"
#include "cs-vault.h"

typedef struct {
	CsEngineOrderFunc func;
	gpointer user_data;
} Listener;

struct _CsEngine {
	CsConfig *config;
	CsLedger *ledger;
	GHashTable *plugins; /* kind → const CsPlugin* */
	GHashTable *orders;  /* id → CsOrder* */
	GArray *listeners;   /* Listener */
	CsCaSet *cas;	     /* borrowed; NULL until the daemon sets it */
	CsVault *vault;	     /* borrowed services, NULL until set */
	CsTasks *tasks;
	CsKeys *keys;
	gint *stopping;		   /* g_atomic_rc_box, shared with work on other threads */
	CsEngineTxnFunc step_func; /* in every transition's transaction (the office queue) */
	gpointer step_data;
	CsGrants *grants; /* what verified query codes opened, per connection */
};

static void announce(CsEngine *engine, CsOrder *order, CsOrderChange change);

CsEngine *
cs_engine_new(CsConfig *config, CsLedger *ledger)
{
	CsEngine *engine = g_new0(CsEngine, 1);

	engine->config = config;
	engine->ledger = ledger;
	engine->plugins = g_hash_table_new(g_str_hash, g_str_equal);
	engine->orders =
	    g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)cs_order_free);
	engine->listeners = g_array_new(FALSE, TRUE, sizeof(Listener));
	engine->stopping = g_atomic_rc_box_new0(gint);
	engine->grants = cs_grants_new();
	return engine;
}

void
cs_engine_free(CsEngine *engine)
{
	if (engine == NULL)
		return;
	g_atomic_int_set(engine->stopping, 1);
	g_atomic_rc_box_release(engine->stopping);
	g_hash_table_unref(engine->orders);
	g_hash_table_unref(engine->plugins);
	g_array_unref(engine->listeners);
	cs_grants_free(engine->grants);
	g_free(engine);
}

gboolean
cs_engine_add_plugin(CsEngine *engine, const CsPlugin *plugin, GError **error)
{
	if (g_hash_table_contains(engine->plugins, plugin->kind)) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "kind %s is already provided",
			    plugin->kind);
		return FALSE;
	}
	if (!cs_plugin_run_init(plugin, error))
		return FALSE;
	g_hash_table_insert(engine->plugins, (gpointer)plugin->kind, (gpointer)plugin);
	return TRUE;
}

const CsPlugin *
cs_engine_find_plugin(CsEngine *engine, const char *kind)
{
	return kind != NULL ? g_hash_table_lookup(engine->plugins, kind) : NULL;
}

static int
compare_strings(gconstpointer a, gconstpointer b)
{
	return g_strcmp0(*(const char *const *)a, *(const char *const *)b);
}

GStrv
cs_engine_get_kinds(CsEngine *engine)
{
	guint n = 0;
	g_autofree const char **keys =
	    (const char **)g_hash_table_get_keys_as_array(engine->plugins, &n);

	qsort(keys, n, sizeof(char *), compare_strings);
	return g_strdupv((char **)keys);
}

void
cs_engine_set_cas(CsEngine *engine, CsCaSet *cas)
{
	engine->cas = cas;
}

CsCaSet *
cs_engine_get_cas(CsEngine *engine)
{
	return engine->cas;
}

void
cs_engine_set_services(CsEngine *engine, CsVault *vault, CsTasks *tasks, CsKeys *keys)
{
	engine->vault = vault;
	engine->tasks = tasks;
	engine->keys = keys;
}

void
cs_engine_stop(CsEngine *engine)
{
	g_atomic_int_set(engine->stopping, 1);
	cs_engine_set_services(engine, NULL, NULL, NULL);
}

gint *
cs_engine_ref_stopping(CsEngine *engine)
{
	return g_atomic_rc_box_acquire(engine->stopping);
}

void
cs_engine_order_attrs_changed(CsEngine *engine, CsOrder *order, gint64 updated)
{
	cs_order_forget_attrs(order);
	if (updated > 0)
		order->updated = updated;
	announce(engine, order, CS_ORDER_CHANGED);
}

CsVault *
cs_engine_get_vault(CsEngine *engine)
{
	return engine->vault;
}

CsTasks *
cs_engine_get_tasks(CsEngine *engine)
{
	return engine->tasks;
}

CsKeys *
cs_engine_get_keys(CsEngine *engine)
{
	return engine->keys;
}

CsConfig *
cs_engine_get_config(CsEngine *engine)
{
	return engine->config;
}

CsLedger *
cs_engine_get_ledger(CsEngine *engine)
{
	return engine->ledger;
}

void
cs_engine_add_listener(CsEngine *engine, CsEngineOrderFunc func, gpointer user_data)
{
	Listener l = {func, user_data};
	g_array_append_val(engine->listeners, l);
}

void
cs_engine_set_step_func(CsEngine *engine, CsEngineTxnFunc func, gpointer user_data)
{
	engine->step_func = func;
	engine->step_data = user_data;
}

gpointer
cs_engine_get_step_data(CsEngine *engine)
{
	return engine->step_data;
}

void
cs_engine_remove_listener(CsEngine *engine, CsEngineOrderFunc func, gpointer user_data)
{
	for (guint i = 0; i < engine->listeners->len; i++) {
		Listener *l = &g_array_index(engine->listeners, Listener, i);
		if (l->func == func && l->user_data == user_data) {
			g_array_remove_index(engine->listeners, i);
			return;
		}
	}
}

static void
announce(CsEngine *engine, CsOrder *order, CsOrderChange change)
{
	for (guint i = 0; i < engine->listeners->len; i++) {
		Listener *l = &g_array_index(engine->listeners, Listener, i);
		l->func(engine, order, change, l->user_data);
	}
}

char *
cs_action_to_method(const char *action)
{
	GString *s = g_string_new(NULL);
	gboolean upper = TRUE;

	for (const char *p = action; *p != '\0'; p++) {
		if (*p == '_') {
			upper = TRUE;
			continue;
		}
		g_string_append_c(s, upper ? g_ascii_toupper(*p) : *p);
		upper = FALSE;
	}
	return g_string_free(s, FALSE);
}

CsOrder *
cs_engine_get_order(CsEngine *engine, const char *id, GError **error)
{
	CsOrder *order = g_hash_table_lookup(engine->orders, id);
	g_autoptr(CsOrderRow) row = NULL;
	g_autoptr(GError) local = NULL;

	if (order != NULL)
		return order;
	row = cs_ledger_load_order(engine->ledger, id, &local);
	if (row == NULL) {
		g_autofree char *quoted = cs_quote_value(id);

		/* The id came from outside: the error quotes it short and escaped. */
		if (g_error_matches(local, CS_ERROR, CS_ERROR_NOT_FOUND))
			g_set_error(error, CS_ERROR, CS_ERROR_NOT_FOUND, "order %s: not found",
				    quoted);
		else
			g_propagate_error(error, g_steal_pointer(&local));
		return NULL;
	}
	order =
	    cs_order_new_from_row(row, cs_engine_find_plugin(engine, row->kind), engine->ledger);
	g_hash_table_insert(engine->orders, order->id, order);
	return order;
}

GPtrArray *
cs_engine_list_order_ids(CsEngine *engine, GError **error)
{
	return cs_ledger_list_orders(engine->ledger, NULL, error);
}

GPtrArray *
cs_engine_list_visible_order_ids(CsEngine *engine, const CsRequest *request, GError **error)
{
	g_autoptr(GPtrArray) all = NULL;
	GPtrArray *visible;

	if (request->actor != CS_ACTOR_DESKTOP || request->uid == 0)
		return cs_ledger_list_orders(engine->ledger, NULL, error);
	if (!cs_grants_any(engine->grants, request->sender))
		return cs_ledger_list_orders_owned(engine->ledger, request->uid, error);
	/* The caller's own orders and those a query code opened to its connection. */
	all = cs_ledger_list_orders(engine->ledger, NULL, error);
	if (all == NULL)
		return NULL;
	visible = g_ptr_array_new_with_free_func(g_free);
	for (guint i = 0; i < all->len; i++) {
		CsOrder *o = cs_engine_get_order(engine, g_ptr_array_index(all, i), NULL);
		if (o != NULL && cs_engine_check_access(engine, request, o, NULL))
			g_ptr_array_add(visible, g_strdup(o->id));
	}
	return visible;
}

CsGrants *
cs_engine_get_grants(CsEngine *engine)
{
	return engine->grants;
}

gboolean
cs_engine_check_access(CsEngine *engine, const CsRequest *request, CsOrder *order, GError **error)
{
	if (request->actor != CS_ACTOR_DESKTOP)
		return TRUE;
	if (request->uid == 0 || request->uid == order->owner_uid)
		return TRUE;
	if (request->sender != NULL &&
	    cs_grants_allow(
		engine->grants, request->sender, order->subject_type,
		cs_order_get_subject_number(order),
		order->plugin->contact_phone != NULL ? order->plugin->contact_phone(order) : NULL))
		return TRUE;
	g_set_error(error, CS_ERROR, CS_ERROR_ACCESS_DENIED, "order %s belongs to another user",
		    order->id);
	return FALSE;
}

/*
 * Merge @changes (a{sv}, strings) into @base (a{sv} or NULL) after validating each
 * change. Returns the merged a{sv} (floating) and the names that changed.
 */
static GVariant *
merge_fields(CsEngine *engine,
	     const CsPlugin *plugin,
	     CsSubjectType subject_type,
	     GVariant *base,
	     GVariant *changes,
	     GPtrArray *changed_names,
	     GError **error)
{
	g_autoptr(GHashTable) merged =
	    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	g_autoptr(GPtrArray) keys = NULL;
	GVariantBuilder builder;
	GHashTableIter hiter;
	gpointer hkey;
	GVariantIter iter;
	const char *name;
	GVariant *value;

	if (changes == NULL || !g_variant_is_of_type(changes, G_VARIANT_TYPE("a{sv}"))) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "fields: must be a dictionary of strings (a{sv})");
		return NULL;
	}
	if (base != NULL) {
		g_variant_iter_init(&iter, base);
		while (g_variant_iter_next(&iter, "{&sv}", &name, &value)) {
			if (g_variant_is_of_type(value, G_VARIANT_TYPE_STRING))
				g_hash_table_insert(merged, g_strdup(name),
						    g_variant_dup_string(value, NULL));
			g_variant_unref(value);
		}
	}
	g_variant_iter_init(&iter, changes);
	while (g_variant_iter_next(&iter, "{&sv}", &name, &value)) {
		g_autoptr(GVariant) owned = value;
		const CsFieldSpec *spec = cs_fields_find(plugin, subject_type, name);
		g_autofree char *normalized = NULL;
		g_autofree char *quoted = cs_quote_value(name);
		const char *old;

		if (spec == NULL) {
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "%s: not a field of a %s %s order", quoted, plugin->kind,
				    cs_subject_type_to_string(subject_type));
			return NULL;
		}
		if (!g_variant_is_of_type(value, G_VARIANT_TYPE_STRING)) {
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "%s: must be a string, not '%s'", quoted,
				    g_variant_get_type_string(value));
			return NULL;
		}
		if (!cs_fields_validate_value(engine->config, spec,
					      g_variant_get_string(value, NULL), &normalized,
					      error)) {
			g_prefix_error(error, "%s: ", name);
			return NULL;
		}
		old = g_hash_table_lookup(merged, name);
		if (g_strcmp0(old, normalized) == 0)
			continue;
		if (changed_names != NULL)
			g_ptr_array_add(changed_names, g_strdup(name));
		if (normalized == NULL)
			g_hash_table_remove(merged, name);
		else
			g_hash_table_insert(merged, g_strdup(name), g_steal_pointer(&normalized));
	}

	keys = g_ptr_array_new();
	g_hash_table_iter_init(&hiter, merged);
	while (g_hash_table_iter_next(&hiter, &hkey, NULL))
		g_ptr_array_add(keys, hkey);
	g_ptr_array_sort(keys, compare_strings);
	g_variant_builder_init(&builder, G_VARIANT_TYPE("a{sv}"));
	for (guint i = 0; i < keys->len; i++) {
		const char *k = g_ptr_array_index(keys, i);
		g_variant_builder_add(&builder, "{sv}", k,
				      g_variant_new_string(g_hash_table_lookup(merged, k)));
	}
	return g_variant_builder_end(&builder);
}

/*
 * The subject registry: for a known subject, identity fields must equal the recorded ones
 * unless the plugin may change them (only a change order alters a registered identity).
 *
 * Pre-filling (prefill_from_registry) serves only a caller who applied for the subject
 * before: knowing a USCC or a resident ID is no proof of being that subject, so a stranger
 * is never handed the registered names and ID numbers — only held to them.
 */
static gboolean
check_registry(CsEngine *engine,
	       const CsPlugin *plugin,
	       CsSubjectType subject_type,
	       GVariant *fields,
	       GError **error)
{
	const char *key = cs_subject_number_field(subject_type);
	const char *id_number = NULL;
	g_autoptr(GVariant) known = NULL;
	g_autoptr(GError) local = NULL;

	if (plugin->may_change_identity || !g_variant_lookup(fields, key, "&s", &id_number))
		return TRUE;
	known = cs_ledger_lookup_subject(engine->ledger, cs_subject_type_to_string(subject_type),
					 id_number, &local);
	if (local != NULL) {
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	if (known == NULL)
		return TRUE;
	for (guint i = 0; i < plugin->n_fields; i++) {
		const CsFieldSpec *f = &plugin->fields[i];
		const char *given = NULL;
		const char *recorded = NULL;

		if (!f->identity || (f->subject_types & subject_type) == 0)
			continue;
		if (!g_variant_lookup(known, f->name, "&s", &recorded) ||
		    !g_variant_lookup(fields, f->name, "&s", &given))
			continue;
		if (g_strcmp0(given, recorded) != 0) {
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "%s: differs from the registered subject; "
				    "change it through a change order",
				    f->name);
			return FALSE;
		}
	}
	return TRUE;
}

/* Update never changes a field the flow fixes at CreateOrder; and where an order may change
 * a subject's identity, its number still names the same subject. */
static gboolean
check_fixed_fields(const CsPlugin *plugin, CsOrder *order, GPtrArray *names, GError **error)
{
	const char *number = cs_subject_number_field(order->subject_type);

	for (guint i = 0; i < names->len; i++) {
		const char *name = g_ptr_array_index(names, i);
		for (guint j = 0; j < plugin->n_fields; j++) {
			const CsFieldSpec *f = &plugin->fields[j];
			if (g_strcmp0(f->name, name) != 0 ||
			    (f->subject_types & order->subject_type) == 0)
				continue;
			if (plugin->may_change_identity && g_strcmp0(name, number) == 0) {
				g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
					    "%s: never changes: a different number is a different "
					    "subject; apply anew for it (a new order)",
					    name);
				return FALSE;
			}
			if (f->fixed) {
				g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
					    "%s: set when the order was created; it cannot be "
					    "changed",
					    name);
				return FALSE;
			}
		}
	}
	return TRUE;
}

/* Has @request's uid applied for this subject before (an order of theirs names it)? */
static gboolean
applied_before(CsEngine *engine,
	       const CsRequest *request,
	       CsSubjectType subject_type,
	       const char *id_number,
	       GError **error)
{
	g_autoptr(GPtrArray) ids = NULL;

	if (request->actor != CS_ACTOR_DESKTOP)
		return FALSE;
	ids = cs_ledger_list_orders_owned(engine->ledger, request->uid, error);
	if (ids == NULL)
		return FALSE;
	for (guint i = 0; i < ids->len; i++) {
		CsOrder *o = cs_engine_get_order(engine, g_ptr_array_index(ids, i), error);
		if (o == NULL)
			return FALSE;
		if (o->subject_type == subject_type &&
		    g_strcmp0(cs_order_get_field(o, cs_subject_number_field(subject_type)),
			      id_number) == 0)
			return TRUE;
	}
	return FALSE;
}

/*
 * The registry pre-fills a known subject's identity fields (docs/architecture.md §1) that the
 * caller left out — for a caller who applied for that subject before. Anyone else gets nothing
 * copied (knowing a USCC or a resident ID is no proof of being that subject) but is still held to
 * the registered values by check_registry(). Returns the fields to use (a new reference).
 */
static GVariant *
prefill_from_registry(CsEngine *engine,
		      const CsRequest *request,
		      const CsPlugin *plugin,
		      CsSubjectType subject_type,
		      GVariant *fields,
		      GPtrArray *names,
		      GError **error)
{
	const char *id_number = NULL;
	g_autoptr(GVariant) known = NULL;
	g_autoptr(GVariant) changes = NULL;
	g_autoptr(GError) local = NULL;
	GVariantBuilder missing;
	gboolean any = FALSE;
	GVariant *merged;

	if (plugin->may_change_identity ||
	    !g_variant_lookup(fields, cs_subject_number_field(subject_type), "&s", &id_number))
		return g_variant_ref(fields);
	known = cs_ledger_lookup_subject(engine->ledger, cs_subject_type_to_string(subject_type),
					 id_number, &local);
	if (local == NULL && known != NULL &&
	    applied_before(engine, request, subject_type, id_number, &local)) {
		g_variant_builder_init(&missing, G_VARIANT_TYPE("a{sv}"));
		for (guint i = 0; i < plugin->n_fields; i++) {
			const CsFieldSpec *f = &plugin->fields[i];
			const char *v = NULL;
			if (!f->identity || (f->subject_types & subject_type) == 0 ||
			    g_variant_lookup(fields, f->name, "&s", NULL) ||
			    !g_variant_lookup(known, f->name, "&s", &v))
				continue;
			g_variant_builder_add(&missing, "{sv}", f->name, g_variant_new_string(v));
			any = TRUE;
		}
		if (!any) {
			g_variant_builder_clear(&missing);
			return g_variant_ref(fields);
		}
		changes = g_variant_ref_sink(g_variant_builder_end(&missing));
		merged = merge_fields(engine, plugin, subject_type, fields, changes, names, error);
		return merged != NULL ? g_variant_ref_sink(merged) : NULL;
	}
	if (local != NULL) {
		g_propagate_error(error, g_steal_pointer(&local));
		return NULL;
	}
	return g_variant_ref(fields);
}

static GVariant *
names_data(GPtrArray *names)
{
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
	if (names != NULL)
		g_variant_builder_add(
		    &b, "{sv}", "fields",
		    g_variant_new_strv((const char *const *)names->pdata, names->len));
	return g_variant_builder_end(&b);
}

/* The plugin of @kind and the subject type named @subject_type_str, or an InvalidInput
 * naming kind or subject_type. */
static const CsPlugin *
find_flow(CsEngine *engine,
	  const char *kind,
	  const char *subject_type_str,
	  CsSubjectType *subject_type,
	  GError **error)
{
	const CsPlugin *plugin = cs_engine_find_plugin(engine, kind);

	*subject_type = cs_subject_type_from_string(subject_type_str);
	if (plugin == NULL) {
		g_auto(GStrv) kinds = cs_engine_get_kinds(engine);
		g_autofree char *known = g_strjoinv(", ", kinds);
		g_autofree char *quoted = cs_quote_value(kind);
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "kind: no flow '%s' (available: %s)", quoted, known);
		return NULL;
	}
	if (*subject_type == 0) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "subject_type: must be 'org' or 'person'");
		return NULL;
	}
	return plugin;
}

GVariant *
cs_engine_describe_flow(CsEngine *engine,
			const char *kind,
			const char *subject_type_str,
			GError **error)
{
	CsSubjectType subject_type;
	const CsPlugin *plugin = find_flow(engine, kind, subject_type_str, &subject_type, error);

	return plugin != NULL ? cs_fields_describe_flow(plugin, subject_type) : NULL;
}

/* Add (field, message) for @error, whose message starts with "field: " when it names one. */
static void
add_problem(GVariantBuilder *problems, const char *field, const GError *error)
{
	const char *msg = error->message;
	const char *colon = strstr(msg, ": ");
	g_autofree char *named = NULL;

	if (field == NULL && colon != NULL && colon != msg &&
	    strspn(msg, "abcdefghijklmnopqrstuvwxyz0123456789_") == (size_t)(colon - msg)) {
		named = g_strndup(msg, colon - msg);
		field = named;
		msg = colon + 2;
	}
	g_variant_builder_add(problems, "(ss)", field != NULL ? field : "fields", msg);
}

GVariant *
cs_engine_validate_fields(CsEngine *engine,
			  const char *kind,
			  const char *subject_type_str,
			  GVariant *fields,
			  GError **error)
{
	CsSubjectType subject_type;
	const CsPlugin *plugin = find_flow(engine, kind, subject_type_str, &subject_type, error);
	GVariantBuilder problems;
	gboolean any = FALSE;
	GVariantIter iter;
	const char *name;
	GVariant *value;

	if (plugin == NULL)
		return NULL;
	g_variant_builder_init(&problems, G_VARIANT_TYPE("a(ss)"));
	g_variant_iter_init(&iter, fields);
	while (g_variant_iter_next(&iter, "{&sv}", &name, &value)) {
		g_autoptr(GVariant) owned = value;
		const CsFieldSpec *spec = cs_fields_find(plugin, subject_type, name);
		g_autofree char *normalized = NULL;
		g_autoptr(GError) local = NULL;

		if (spec == NULL) {
			g_set_error(&local, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "not a field of a %s %s order", plugin->kind,
				    cs_subject_type_to_string(subject_type));
		} else if (!g_variant_is_of_type(value, G_VARIANT_TYPE_STRING)) {
			g_set_error(&local, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "must be a string, not '%s'", g_variant_get_type_string(value));
		} else {
			cs_fields_validate_value(engine->config, spec,
						 g_variant_get_string(value, NULL), &normalized,
						 &local);
		}
		if (local != NULL) {
			add_problem(&problems, name, local);
			any = TRUE;
		}
	}
	if (!any) {
		/* Every value is good alone: the rules across fields and the registry, as
		 * CreateOrder applies them. */
		g_autoptr(GVariant) merged = NULL;
		g_autoptr(GError) local = NULL;

		merged = merge_fields(engine, plugin, subject_type, NULL, fields, NULL, &local);
		if (merged != NULL) {
			g_variant_ref_sink(merged);
			if (check_registry(engine, plugin, subject_type, merged, &local))
				cs_plugin_run_check_fields(plugin, subject_type, merged, &local);
		}
		if (local != NULL && local->code != CS_ERROR_INVALID_INPUT) {
			g_variant_builder_clear(&problems);
			g_propagate_error(error, g_steal_pointer(&local));
			return NULL;
		}
		if (local != NULL)
			add_problem(&problems, NULL, local);
	}
	return g_variant_builder_end(&problems);
}

/* An order being created (certseal/plugin.h, prepare_order). */
struct _CsCreate {
	CsEngine *engine;
	const CsRequest *request;
	const CsPlugin *plugin;
	CsSubjectType subject_type;
	GHashTable *fields; /* name → string value */
};

CsEngine *
cs_create_get_engine(CsCreate *create)
{
	return create->engine;
}

const CsRequest *
cs_create_get_request(CsCreate *create)
{
	return create->request;
}

CsSubjectType
cs_create_get_subject_type(CsCreate *create)
{
	return create->subject_type;
}

const char *
cs_create_get_field(CsCreate *create, const char *name)
{
	return g_hash_table_lookup(create->fields, name);
}

void
cs_create_set_field(CsCreate *create, const char *name, const char *value)
{
	if (value == NULL)
		g_hash_table_remove(create->fields, name);
	else
		g_hash_table_insert(create->fields, g_strdup(name), g_strdup(value));
}

gboolean
cs_create_prefill_from_registry(CsCreate *create,
				const char *id_number,
				const char *contact_field,
				GError **error)
{
	g_autoptr(GVariant) known = NULL;
	g_autoptr(GError) local = NULL;
	const CsPlugin *plugin = create->plugin;

	known = cs_ledger_lookup_subject(create->engine->ledger,
					 cs_subject_type_to_string(create->subject_type), id_number,
					 &local);
	if (local != NULL) {
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	if (known == NULL)
		return TRUE;
	for (guint i = 0; i < plugin->n_fields; i++) {
		const CsFieldSpec *f = &plugin->fields[i];
		const char *v = NULL;
		if ((f->subject_types & create->subject_type) == 0 ||
		    g_hash_table_contains(create->fields, f->name) ||
		    !g_variant_lookup(known, f->name, "&s", &v))
			continue;
		cs_create_set_field(create, f->name, v);
	}
	/* The registry keeps the contact phone as handler_phone, whatever the flow calls it. */
	if (contact_field != NULL && !g_hash_table_contains(create->fields, contact_field)) {
		const char *phone = NULL;
		if (g_variant_lookup(known, "handler_phone", "&s", &phone))
			cs_create_set_field(create, contact_field, phone);
	}
	return TRUE;
}

/* The flow's fields @order has, where not set yet; TRUE when none is left unset. */
static gboolean
prefill_from(CsCreate *create, CsOrder *order)
{
	const CsPlugin *plugin = create->plugin;
	gboolean complete = TRUE;

	for (guint i = 0; i < plugin->n_fields; i++) {
		const CsFieldSpec *f = &plugin->fields[i];
		const char *v = NULL;
		if ((f->subject_types & create->subject_type) == 0 ||
		    g_hash_table_contains(create->fields, f->name))
			continue;
		if (g_variant_lookup(order->fields, f->name, "&s", &v))
			cs_create_set_field(create, f->name, v);
		else
			complete = FALSE;
	}
	return complete;
}

gboolean
cs_create_prefill_from_order(CsCreate *create, const char *order_id, GError **error)
{
	CsOrder *order = cs_engine_get_order(create->engine, order_id, error);
	g_autoptr(GPtrArray) certs = NULL;
	const char *number;

	if (order == NULL)
		return FALSE;
	if (prefill_from(create, order))
		return TRUE;
	/* A renewal's or a change's order carries only what it asked for: the rest comes from
	 * the orders of the subject's earlier certificates, newest first, back to the
	 * application. */
	number = cs_order_get_field(order, cs_subject_number_field(order->subject_type));
	if (number == NULL)
		return TRUE;
	certs = cs_ledger_find_certificates(create->engine->ledger, order->vendor,
					    cs_subject_type_to_string(order->subject_type), number,
					    error);
	if (certs == NULL)
		return FALSE;
	for (guint i = certs->len; i-- > 0;) {
		CsCertRow *c = g_ptr_array_index(certs, i);
		CsOrder *earlier;

		if (c->order_id == NULL || g_strcmp0(c->order_id, order_id) == 0)
			continue;
		earlier = cs_engine_get_order(create->engine, c->order_id, error);
		if (earlier == NULL)
			return FALSE;
		if (prefill_from(create, earlier))
			break;
	}
	return TRUE;
}

gboolean
cs_create_check_no_open_order(CsCreate *create,
			      const char *field,
			      const char *value,
			      GError **error)
{
	g_autoptr(GPtrArray) ids = cs_ledger_list_orders(create->engine->ledger, NULL, error);

	if (ids == NULL)
		return FALSE;
	for (guint i = 0; i < ids->len; i++) {
		CsOrder *o = cs_engine_get_order(create->engine, g_ptr_array_index(ids, i), error);
		if (o == NULL)
			return FALSE;
		if (g_strcmp0(o->kind, create->plugin->kind) != 0 || !cs_engine_order_is_open(o) ||
		    g_strcmp0(cs_order_get_field(o, field), value) != 0)
			continue;
		g_set_error(error, CS_ERROR, CS_ERROR_NOT_ELIGIBLE,
			    "%s: order %s (%s) for %s is still open; continue or cancel it", field,
			    o->id, o->kind, value);
		return FALSE;
	}
	return TRUE;
}

/* The flow's preconditions and pre-filled fields (prepare_order): @fields as the flow
 * leaves them (a new reference), or NULL refused. */
static GVariant *
prepare_order(CsEngine *engine,
	      const CsRequest *request,
	      const CsPlugin *plugin,
	      CsSubjectType subject_type,
	      GVariant *fields,
	      GError **error)
{
	CsCreate create = {engine, request, plugin, subject_type, NULL};
	g_autoptr(GHashTable) values =
	    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	GVariantBuilder b;
	GHashTableIter hiter;
	gpointer k, v;
	GVariantIter iter;
	const char *name;
	GVariant *value;

	if (plugin->prepare_order == NULL)
		return g_variant_ref(fields);
	if (fields == NULL || !g_variant_is_of_type(fields, G_VARIANT_TYPE("a{sv}"))) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "fields: must be a dictionary of strings (a{sv})");
		return NULL;
	}
	g_variant_iter_init(&iter, fields);
	while (g_variant_iter_next(&iter, "{&sv}", &name, &value)) {
		if (g_variant_is_of_type(value, G_VARIANT_TYPE_STRING))
			g_hash_table_insert(values, g_strdup(name),
					    g_variant_dup_string(value, NULL));
		g_variant_unref(value);
	}
	create.fields = values;
	if (!cs_plugin_run_prepare_order(plugin, &create, error))
		return NULL;
	/* What the flow set replaces what came; values of other types stay for merge_fields
	 * to refuse by name. */
	g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
	g_variant_iter_init(&iter, fields);
	while (g_variant_iter_next(&iter, "{&sv}", &name, &value)) {
		if (!g_variant_is_of_type(value, G_VARIANT_TYPE_STRING))
			g_variant_builder_add(&b, "{sv}", name, value);
		g_variant_unref(value);
	}
	g_hash_table_iter_init(&hiter, values);
	while (g_hash_table_iter_next(&hiter, &k, &v))
		g_variant_builder_add(&b, "{sv}", (const char *)k, g_variant_new_string(v));
	return g_variant_ref_sink(g_variant_builder_end(&b));
}

CsOrder *
cs_engine_create_order(CsEngine *engine,
		       const CsRequest *request,
		       const char *kind,
		       const char *subject_type_str,
		       GVariant *fields,
		       GError **error)
{
	CsSubjectType subject_type;
	const CsPlugin *plugin = find_flow(engine, kind, subject_type_str, &subject_type, error);
	/* A floating @fields is taken here, whichever way the call ends. */
	g_autoptr(GVariant) owned = fields != NULL ? g_variant_ref_sink(fields) : NULL;
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GVariant) m = NULL;
	g_autoptr(GVariant) merged = NULL;
	g_autoptr(GVariant) data = NULL;
	g_autoptr(GVariant) prepared = NULL;
	g_autofree char *actor = cs_request_to_actor(request);
	g_autofree char *id = NULL;
	const char *vendor = NULL;
	gint64 now = g_get_real_time();
	CsOrder *order;

	if (plugin == NULL)
		return NULL;
	if (request->actor != CS_ACTOR_DESKTOP && request->actor != CS_ACTOR_SYSTEM) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_ACCESS_DENIED,
				    "orders are created by their applicants");
		return NULL;
	}
	prepared = prepare_order(engine, request, plugin, subject_type, fields, error);
	if (prepared == NULL)
		return NULL;
	m = merge_fields(engine, plugin, subject_type, NULL, prepared, names, error);
	if (m == NULL)
		return NULL;
	m = g_variant_ref_sink(m);
	merged = prefill_from_registry(engine, request, plugin, subject_type, m, names, error);
	if (merged == NULL)
		return NULL;
	if (!check_registry(engine, plugin, subject_type, merged, error) ||
	    !cs_plugin_run_check_fields(plugin, subject_type, merged, error))
		return NULL;
	g_variant_lookup(merged, "vendor", "&s", &vendor);
	data = g_variant_ref_sink(names_data(names));

	if (!cs_ledger_begin(engine->ledger, error))
		return NULL;
	if (!cs_ledger_insert_order(engine->ledger, kind, subject_type_str,
				    vendor != NULL ? vendor : "", plugin->initial_state,
				    request->uid, merged, now, &id, error) ||
	    !cs_ledger_append_event(engine->ledger, id, "created", NULL, plugin->initial_state,
				    actor, data, now, NULL, error) ||
	    !cs_ledger_commit(engine->ledger, error)) {
		cs_ledger_rollback(engine->ledger);
		return NULL;
	}

	order = g_new0(CsOrder, 1);
	order->id = g_steal_pointer(&id);
	order->kind = g_strdup(kind);
	order->subject_type = subject_type;
	order->vendor = g_strdup(vendor != NULL ? vendor : "");
	order->state = g_strdup(plugin->initial_state);
	order->owner_uid = request->uid;
	order->fields = g_steal_pointer(&merged);
	order->created = now;
	order->updated = now;
	order->plugin = plugin;
	order->ledger = engine->ledger;
	g_hash_table_insert(engine->orders, order->id, order);
	g_info("order %s: created (%s %s) by %s", order->id, kind, subject_type_str, actor);
	announce(engine, order, CS_ORDER_CREATED);
	return order;
}

gboolean
cs_engine_update_order(
    CsEngine *engine, const CsRequest *request, CsOrder *order, GVariant *fields, GError **error)
{
	const CsPlugin *plugin = order->plugin;
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GVariant) m = NULL;
	g_autoptr(GVariant) merged = NULL;
	g_autoptr(GVariant) data = NULL;
	g_autofree char *actor = cs_request_to_actor(request);
	const char *vendor = NULL;
	gint64 now = g_get_real_time();

	if (!cs_order_require_plugin(order, error) ||
	    !cs_engine_check_access(engine, request, order, error))
		return FALSE;
	if (request->actor != CS_ACTOR_DESKTOP && request->actor != CS_ACTOR_SYSTEM) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_ACCESS_DENIED,
				    "only the applicant changes an order's fields");
		return FALSE;
	}
	if (plugin->editable_states == NULL ||
	    !g_strv_contains(plugin->editable_states, order->state)) {
		g_set_error(error, CS_ERROR, CS_ERROR_WRONG_STATE,
			    "order %s is %s: its fields can no longer be changed", order->id,
			    order->state);
		return FALSE;
	}
	m = merge_fields(engine, plugin, order->subject_type, order->fields, fields, names, error);
	if (m == NULL)
		return FALSE;
	merged = g_variant_ref_sink(g_steal_pointer(&m));
	if (names->len == 0)
		return TRUE; /* nothing changed: nothing to record */
	/* The price follows the vendor: once money was received for this one, it stays. */
	if (g_ptr_array_find_with_equal_func(names, "vendor", g_str_equal, NULL) &&
	    cs_engine_order_paid(engine, order)) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "vendor: cannot change once the order is paid; cancel it for a "
				    "refund instead");
		return FALSE;
	}
	if (!check_fixed_fields(plugin, order, names, error) ||
	    !check_registry(engine, plugin, order->subject_type, merged, error) ||
	    !cs_plugin_run_check_fields(plugin, order->subject_type, merged, error))
		return FALSE;
	g_variant_lookup(merged, "vendor", "&s", &vendor);
	data = g_variant_ref_sink(names_data(names));

	if (!cs_ledger_begin(engine->ledger, error))
		return FALSE;
	if (!cs_ledger_update_order(engine->ledger, order->id, order->state, merged, now, error) ||
	    !cs_ledger_append_event(engine->ledger, order->id, "updated", order->state,
				    order->state, actor, data, now, NULL, error) ||
	    !cs_ledger_commit(engine->ledger, error)) {
		cs_ledger_rollback(engine->ledger);
		return FALSE;
	}
	g_variant_unref(order->fields);
	order->fields = g_steal_pointer(&merged);
	g_free(order->vendor);
	order->vendor = g_strdup(vendor != NULL ? vendor : "");
	order->updated = now;
	announce(engine, order, CS_ORDER_CHANGED);
	return TRUE;
}

static gboolean
actor_allowed(const CsTransition *t, const CsRequest *request)
{
	if ((t->actors & request->actor) == 0)
		return FALSE;
	/* Office actors also need the role: an admin may do what any office role may. */
	if (request->actor & (CS_ACTOR_REVIEWER | CS_ACTOR_MAKER | CS_ACTOR_SHIPPER |
			      CS_ACTOR_CASHIER | CS_ACTOR_AUDITOR | CS_ACTOR_ADMIN))
		return (request->roles & (t->actors | CS_ACTOR_ADMIN)) != 0;
	return TRUE;
}

/* ---- one-time codes ------------------------------------------------------------------ */

static CsCodeServices
code_services(CsEngine *engine)
{
	return (CsCodeServices){
	    .ledger = engine->ledger,
	    .vault = engine->vault,
	    .tasks = engine->tasks,
	    .config = engine->config,
	};
}

static gboolean
code_step_from(const CsPlugin *plugin, const char *state)
{
	for (guint i = 0; plugin != NULL && i < plugin->n_transitions; i++) {
		const CsTransition *t = &plugin->transitions[i];
		if ((t->flags & CS_TRANSITION_NEEDS_CODE) && (t->actors & CS_ACTOR_DESKTOP) &&
		    g_strcmp0(t->from, state) == 0)
			return TRUE;
	}
	return FALSE;
}

gboolean
cs_engine_send_code(
    CsEngine *engine, const CsRequest *request, CsOrder *order, char **masked_phone, GError **error)
{
	g_autofree char *actor = cs_request_to_actor(request);
	CsCodeServices codes = code_services(engine);
	gboolean ok;

	if (!cs_order_require_plugin(order, error) ||
	    !cs_engine_check_access(engine, request, order, error))
		return FALSE;
	if (request->actor != CS_ACTOR_DESKTOP) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_ACCESS_DENIED,
				    "codes are sent to the applicant");
		return FALSE;
	}
	if (!code_step_from(order->plugin, order->state)) {
		g_set_error(error, CS_ERROR, CS_ERROR_WRONG_STATE,
			    "order %s is %s: no step waits for an SMS code", order->id,
			    order->state);
		return FALSE;
	}
	if (!cs_ledger_begin(engine->ledger, error))
		return FALSE;
	ok = cs_codes_send_in_txn(&codes, order, masked_phone, error) &&
	     cs_ledger_append_event(engine->ledger, order->id, "code_sent", order->state,
				    order->state, actor, NULL, g_get_real_time(), NULL, error) &&
	     cs_ledger_commit(engine->ledger, error);
	if (!ok)
		cs_ledger_rollback(engine->ledger);
	return ok;
}

/* ---- transitions --------------------------------------------------------------------- */

/* What was paid for @order; FALSE (logged) when the ledger cannot say. */
static gboolean
paid_fen(CsEngine *engine, CsOrder *order, guint64 *paid)
{
	g_autoptr(GError) error = NULL;

	*paid = 0;
	if (cs_ledger_order_paid(engine->ledger, order->id, paid, &error))
		return TRUE;
	g_warning("order %s: %s", order->id, error->message);
	return FALSE;
}

gboolean
cs_engine_order_paid(CsEngine *engine, CsOrder *order)
{
	guint64 paid = 0;

	paid_fen(engine, order, &paid);
	return paid > 0;
}

gboolean
cs_engine_order_settled(CsEngine *engine, CsOrder *order)
{
	guint64 due = cs_engine_amount_fen(engine, order);
	guint64 paid = 0;

	if (due == 0)
		return TRUE;
	paid_fen(engine, order, &paid);
	return paid >= due;
}

/* A guard that cannot be read does not hold: no step is taken on a guess about money. */
static gboolean
guard_holds(CsEngine *engine, CsOrder *order, const CsTransition *t)
{
	guint64 due, paid = 0;

	if (t->guard != NULL && !t->guard(order))
		return FALSE;
	if ((t->flags & (CS_TRANSITION_IF_SETTLED | CS_TRANSITION_UNLESS_SETTLED |
			 CS_TRANSITION_IF_PAID | CS_TRANSITION_UNLESS_PAID)) == 0)
		return TRUE;
	if (!paid_fen(engine, order, &paid))
		return FALSE;
	due = cs_engine_amount_fen(engine, order);
	if ((t->flags & CS_TRANSITION_IF_SETTLED) && paid < due)
		return FALSE;
	if ((t->flags & CS_TRANSITION_UNLESS_SETTLED) && paid >= due)
		return FALSE;
	if ((t->flags & CS_TRANSITION_IF_PAID) && paid == 0)
		return FALSE;
	if ((t->flags & CS_TRANSITION_UNLESS_PAID) && paid > 0)
		return FALSE;
	return TRUE;
}

const CsTransition *
cs_engine_find_step(CsEngine *engine, CsOrder *order, CsTransitionFlags flag)
{
	const CsPlugin *plugin = order->plugin;

	for (guint i = 0; plugin != NULL && i < plugin->n_transitions; i++) {
		const CsTransition *t = &plugin->transitions[i];
		if ((t->flags & flag) == flag && g_strcmp0(t->from, order->state) == 0 &&
		    guard_holds(engine, order, t))
			return t;
	}
	return NULL;
}

const char *
cs_engine_step_action(CsOrder *order, CsTransitionFlags flag)
{
	const CsPlugin *plugin = order->plugin;

	for (guint i = 0; plugin != NULL && i < plugin->n_transitions; i++) {
		if ((plugin->transitions[i].flags & flag) == flag)
			return plugin->transitions[i].action;
	}
	return NULL;
}

gboolean
cs_engine_order_is_open(CsOrder *order)
{
	const CsPlugin *plugin = order->plugin;

	return plugin == NULL || plugin->terminal_states == NULL ||
	       !g_strv_contains(plugin->terminal_states, order->state);
}

struct _CsStep {
	CsEngine *engine;
	CsOrder *order;
	const CsTransition *transition; /* NULL: a recovery, which has no hooks */
	const CsRequest *request;
	GVariant *params; /* a{sv}, never NULL */
	gint64 code_id;	  /* the code to mark used, or 0 */
	CsEngineTxnFunc in_txn;
	gpointer in_txn_data;
	gboolean in_transaction; /* the step's transaction is open: services may write */
	GHashTable *secrets;	 /* name → value, never recorded; may be NULL */
	CsEngineReplyFunc reply; /* who waits for the step's outcome, or NULL */
	gpointer reply_data;
	GPtrArray *on_commit; /* OnCommit: work for once the step committed, or NULL */
};

typedef struct {
	CsStepCommitFunc func;
	gpointer data;
	GDestroyNotify destroy;
} OnCommit;

static void
on_commit_free(OnCommit *c)
{
	if (c->destroy != NULL)
		c->destroy(c->data);
	g_free(c);
}

void
cs_step_on_commit(CsStep *step, CsStepCommitFunc func, gpointer data, GDestroyNotify destroy)
{
	OnCommit *c = g_new0(OnCommit, 1);

	c->func = func;
	c->data = data;
	c->destroy = destroy;
	if (step->on_commit == NULL)
		step->on_commit = g_ptr_array_new_with_free_func((GDestroyNotify)on_commit_free);
	g_ptr_array_add(step->on_commit, c);
}

/* The work registered for once the step committed: run when @committed, dropped either way. */
static void
run_on_commit(CsEngine *engine, CsStep *step, gboolean committed)
{
	g_autoptr(GPtrArray) list = g_steal_pointer(&step->on_commit);

	for (guint i = 0; committed && list != NULL && i < list->len; i++) {
		OnCommit *c = g_ptr_array_index(list, i);
		c->func(engine, c->data);
	}
}

const char *
cs_step_get_secret(CsStep *step, const char *name)
{
	return step->secrets != NULL ? g_hash_table_lookup(step->secrets, name) : NULL;
}

CsEngineReplyFunc
cs_step_steal_reply(CsStep *step, gpointer *reply_data)
{
	CsEngineReplyFunc reply = step->reply;

	*reply_data = step->reply_data;
	step->reply = NULL;
	step->reply_data = NULL;
	return reply;
}

CsOrder *
cs_step_get_order(CsStep *step)
{
	return step->order;
}

const CsTransition *
cs_step_get_transition(CsStep *step)
{
	return step->transition;
}

const CsRequest *
cs_step_get_request(CsStep *step)
{
	return step->request;
}

const char *
cs_step_get_param(CsStep *step, const char *name)
{
	const char *v = NULL;

	if (!g_variant_lookup(step->params, name, "&s", &v))
		return NULL;
	return v;
}

CsEngine *
cs_step_get_engine(CsStep *step)
{
	return step->engine;
}

gboolean
cs_step_check_transaction(CsStep *step, const char *service, GError **error)
{
	if (step->in_transaction)
		return TRUE;
	g_critical("%s: called outside a step's run hook (order %s)", service, step->order->id);
	g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s: only inside a step", service);
	return FALSE;
}

gboolean
cs_engine_set_attr(
    CsEngine *engine, CsOrder *order, const char *name, const char *value, GError **error)
{
	if (!cs_ledger_set_attr(engine->ledger, order->id, name, value, g_get_real_time(), error))
		return FALSE;
	/* The rest of the transaction sees it; the cache is forgotten when the transaction
	 * ends, committed or not. */
	cs_order_cache_attr(order, name, value);
	return TRUE;
}

gboolean
cs_engine_set_attr_int(
    CsEngine *engine, CsOrder *order, const char *name, gint64 value, GError **error)
{
	g_autofree char *text = g_strdup_printf("%" G_GINT64_FORMAT, value);
	return cs_engine_set_attr(engine, order, name, text, error);
}

gboolean
cs_engine_require(gconstpointer service, const char *what, GError **error)
{
	if (service != NULL)
		return TRUE;
	g_set_error(error, CS_ERROR, CS_ERROR_UNAVAILABLE, "%s is not running", what);
	return FALSE;
}

gboolean
cs_step_set_attr(CsStep *step, const char *name, const char *value, GError **error)
{
	return cs_step_check_transaction(step, "cs_step_set_attr", error) &&
	       cs_engine_set_attr(step->engine, step->order, name, value, error);
}

static GVariant *
empty_params(void)
{
	return g_variant_ref_sink(g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0));
}

/* One transaction: the order's new state, its event, the caller's own work, the code used,
 * a code sent, and the transition's run hook — all or nothing. Then the change is
 * announced and the after hook runs. */
static gboolean
record_step(CsEngine *engine,
	    CsStep *step,
	    const char *event_kind,
	    const char *to,
	    const char *actor,
	    GError **error)
{
	CsOrder *order = step->order;
	gint64 now = g_get_real_time();
	const char *from = order->state;
	const CsTransition *t = step->transition;
	GVariant *data = g_variant_n_children(step->params) > 0 ? step->params : NULL;
	CsCodeServices codes = code_services(engine);
	gboolean ok;

	if (!cs_ledger_begin(engine->ledger, error))
		return FALSE;
	/* The step's work sees the order in its new state. */
	order->state = (char *)to;
	step->in_transaction = TRUE;
	ok = cs_ledger_update_order(engine->ledger, order->id, to, order->fields, now, error) &&
	     cs_ledger_append_event(engine->ledger, order->id, event_kind, from, to, actor, data,
				    now, NULL, error) &&
	     (step->in_txn == NULL || step->in_txn(engine, order, step->in_txn_data, error)) &&
	     (step->code_id == 0 ||
	      cs_ledger_update_code(engine->ledger, step->code_id, 0, "used", error)) &&
	     (t == NULL || !(t->flags & CS_TRANSITION_SENDS_CODE) ||
	      cs_codes_send_in_txn(&codes, order, NULL, error)) &&
	     (t == NULL || cs_plugin_run_step(order->plugin, "run", t->run, step, error)) &&
	     (engine->step_func == NULL ||
	      engine->step_func(engine, order, engine->step_data, error)) &&
	     cs_ledger_commit(engine->ledger, error);
	step->in_transaction = FALSE;
	order->state = (char *)from;
	cs_order_forget_attrs(order);
	if (!ok) {
		cs_ledger_rollback(engine->ledger);
		run_on_commit(engine, step, FALSE);
		return FALSE;
	}
	run_on_commit(engine, step, TRUE);
	g_info("order %s: %s → %s (%s by %s)", order->id, order->state, to, event_kind, actor);
	g_free(order->state);
	order->state = g_strdup(to);
	order->updated = now;
	announce(engine, order, CS_ORDER_CHANGED);
	if (t != NULL)
		cs_plugin_run_after(order->plugin, t->after, step);
	/* Work the after hook started answers when it ends (it took the reply); else now. */
	if (step->reply != NULL)
		step->reply(NULL, step->reply_data);
	step->reply = NULL;
	return TRUE;
}

gboolean
cs_engine_act(
    CsEngine *engine, const CsRequest *request, CsOrder *order, const char *action, GError **error)
{
	return cs_engine_act_with(engine, request, order, action, NULL, NULL, NULL, NULL, error);
}

gboolean
cs_engine_act_full(CsEngine *engine,
		   const CsRequest *request,
		   CsOrder *order,
		   const char *action,
		   CsEngineTxnFunc in_txn,
		   gpointer in_txn_data,
		   GError **error)
{
	return cs_engine_act_with(engine, request, order, action, NULL, NULL, in_txn, in_txn_data,
				  error);
}

static gboolean
check_params(GVariant *params, GError **error)
{
	GVariantIter iter;
	const char *name;
	GVariant *value;

	if (!g_variant_is_of_type(params, G_VARIANT_TYPE("a{sv}"))) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "params: must be a dictionary of strings");
		return FALSE;
	}
	g_variant_iter_init(&iter, params);
	while (g_variant_iter_next(&iter, "{&sv}", &name, &value)) {
		g_autoptr(GVariant) owned = value;
		g_autoptr(GError) local = NULL;
		g_autofree char *quoted = cs_quote_value(name);
		if (!g_variant_is_of_type(value, G_VARIANT_TYPE_STRING)) {
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "%s: must be a string",
				    quoted);
			return FALSE;
		}
		if (!cs_validate_text(g_variant_get_string(value, NULL), 500, &local)) {
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "%s: %s", quoted,
				    local->message);
			return FALSE;
		}
	}
	return TRUE;
}

/* The transition @action takes from the order's state for @request, or NULL with the
 * error that says why none does. */
static const CsTransition *
find_transition(
    CsEngine *engine, const CsRequest *request, CsOrder *order, const char *action, GError **error)
{
	const CsPlugin *plugin = order->plugin;
	g_autoptr(GPtrArray) possible_in = g_ptr_array_new();
	g_autofree char *actor = NULL;
	gboolean from_here = FALSE;
	gboolean allowed_here = FALSE;

	for (guint i = 0; i < plugin->n_transitions; i++) {
		const CsTransition *t = &plugin->transitions[i];
		if (g_strcmp0(t->action, action) != 0)
			continue;
		if (!g_ptr_array_find_with_equal_func(possible_in, t->from, g_str_equal, NULL))
			g_ptr_array_add(possible_in, (gpointer)t->from);
		if (g_strcmp0(t->from, order->state) != 0)
			continue;
		from_here = TRUE;
		if (!actor_allowed(t, request))
			continue;
		allowed_here = TRUE;
		if (guard_holds(engine, order, t))
			return t;
	}
	if (possible_in->len == 0) {
		g_autofree char *quoted = cs_quote_value(action);
		g_set_error(error, CS_ERROR, CS_ERROR_WRONG_STATE, "a %s order has no step '%s'",
			    plugin->kind, quoted);
	} else if (allowed_here) {
		g_set_error(error, CS_ERROR, CS_ERROR_WRONG_STATE,
			    "order %s is %s: '%s' does not apply to it as paid so far", order->id,
			    order->state, action);
	} else if (from_here) {
		actor = cs_request_to_actor(request);
		g_set_error(error, CS_ERROR, CS_ERROR_ACCESS_DENIED, "%s may not %s order %s",
			    actor, action, order->id);
	} else {
		g_autofree char *states = NULL;
		g_ptr_array_add(possible_in, NULL);
		states = g_strjoinv(", ", (char **)possible_in->pdata);
		g_set_error(error, CS_ERROR, CS_ERROR_WRONG_STATE,
			    "order %s is %s: '%s' is possible only when %s", order->id,
			    order->state, action, states);
	}
	return NULL;
}

/* What the engine checks before any step: the fields and materials it needs. */
static gboolean
check_needs(CsEngine *engine, CsOrder *order, const CsTransition *t, GError **error)
{
	if (t->flags & CS_TRANSITION_NEEDS_FIELDS) {
		g_auto(GStrv) missing = cs_engine_missing_fields(engine, order);
		if (missing[0] != NULL) {
			g_autofree char *list = g_strjoinv(", ", missing);
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "fields: still missing %s", list);
			return FALSE;
		}
	}
	if (t->flags & CS_TRANSITION_NEEDS_MATERIALS) {
		g_auto(GStrv) missing = cs_engine_missing(engine, order);
		if (missing[0] != NULL) {
			g_autofree char *list = g_strjoinv(", ", missing);
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "materials: still missing %s", list);
			return FALSE;
		}
	}
	return TRUE;
}

static gboolean act_step(CsEngine *engine,
			 CsStep *step,
			 const char *action,
			 GVariant *params,
			 const char *code,
			 GError **error);

gboolean
cs_engine_act_with(CsEngine *engine,
		   const CsRequest *request,
		   CsOrder *order,
		   const char *action,
		   GVariant *params,
		   const char *code,
		   CsEngineTxnFunc in_txn,
		   gpointer in_txn_data,
		   GError **error)
{
	CsStep step = {
	    .engine = engine,
	    .order = order,
	    .request = request,
	    .in_txn = in_txn,
	    .in_txn_data = in_txn_data,
	};

	return act_step(engine, &step, action, params, code, error);
}

gboolean
cs_engine_act_with_secrets(CsEngine *engine,
			   const CsRequest *request,
			   CsOrder *order,
			   const char *action,
			   GVariant *params,
			   GHashTable *secrets,
			   CsEngineReplyFunc reply,
			   gpointer reply_data,
			   GError **error)
{
	CsStep step = {
	    .engine = engine,
	    .order = order,
	    .request = request,
	    .secrets = secrets,
	    .reply = reply,
	    .reply_data = reply_data,
	};
	/* Refused: nobody was answered (the caller answers with @error). */
	return act_step(engine, &step, action, params, NULL, error);
}

static gboolean
act_step(CsEngine *engine,
	 CsStep *step,
	 const char *action,
	 GVariant *params,
	 const char *code,
	 GError **error)
{
	CsOrder *order = step->order;
	const CsRequest *request = step->request;
	g_autofree char *actor = cs_request_to_actor(request);
	g_autoptr(GVariant) owned_params = NULL;
	CsCodeServices codes = code_services(engine);
	owned_params = params != NULL ? g_variant_ref_sink(params) : empty_params();
	step->params = owned_params;
	if (!cs_order_require_plugin(order, error) ||
	    !cs_engine_check_access(engine, request, order, error))
		return FALSE;
	if (!check_params(owned_params, error))
		return FALSE;
	step->transition = find_transition(engine, request, order, action, error);
	if (step->transition == NULL || !check_needs(engine, order, step->transition, error))
		return FALSE;
	if (!cs_plugin_run_step(order->plugin, "check", step->transition->check, step, error))
		return FALSE;
	if ((step->transition->flags & CS_TRANSITION_NEEDS_CODE) &&
	    !cs_codes_check(&codes, order, code, &step->code_id, error))
		return FALSE;
	return record_step(engine, step, step->transition->action, step->transition->to, actor,
			   error);
}

/* Orders of @plugin's kind in @state. */
static GPtrArray *
orders_in_state(CsEngine *engine, const CsPlugin *plugin, const char *state, GError **error)
{
	g_autoptr(GPtrArray) ids = cs_ledger_list_orders(engine->ledger, state, error);
	g_autoptr(GPtrArray) out = g_ptr_array_new();

	if (ids == NULL)
		return NULL;
	for (guint i = 0; i < ids->len; i++) {
		CsOrder *order = cs_engine_get_order(engine, g_ptr_array_index(ids, i), error);
		if (order == NULL)
			return NULL;
		if (order->plugin == plugin)
			g_ptr_array_add(out, order);
	}
	return g_steal_pointer(&out);
}

/* In the recovery's transaction: why the order is back (a flow may show "recovery_note",
 * e.g. as ReviewNote; the next attempt of its work clears it). */
static gboolean
note_recovery(CsEngine *engine, CsOrder *order, gpointer user_data, GError **error)
{
	g_autofree char *note = g_strdup_printf(
	    "interrupted: the daemon stopped while the order was %s; take the step again",
	    (const char *)user_data);

	return cs_engine_set_attr(engine, order, "recovery_note", note, error);
}

gboolean
cs_engine_recover(CsEngine *engine, guint *n_recovered, GError **error)
{
	GHashTableIter iter;
	gpointer value;
	guint n = 0;

	g_hash_table_iter_init(&iter, engine->plugins);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		const CsPlugin *plugin = value;
		for (guint i = 0;
		     plugin->recoveries != NULL && plugin->recoveries[i].transient != NULL; i++) {
			const CsRecovery *r = &plugin->recoveries[i];
			g_autoptr(GPtrArray) orders =
			    orders_in_state(engine, plugin, r->transient, error);
			if (orders == NULL)
				return FALSE;
			for (guint j = 0; j < orders->len; j++) {
				g_autoptr(GVariant) params = empty_params();
				CsStep step = {.engine = engine,
					       .order = g_ptr_array_index(orders, j),
					       .params = params,
					       .in_txn = note_recovery,
					       .in_txn_data = (gpointer)r->transient};
				if (!record_step(engine, &step, "recovered", r->stable, "system",
						 error))
					return FALSE;
				n++;
			}
		}
	}
	if (n_recovered != NULL)
		*n_recovered = n;
	return TRUE;
}

GPtrArray *
cs_engine_list_services(CsEngine *engine)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, engine->plugins);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		const CsPlugin *plugin = value;
		for (guint i = 0; i < plugin->n_transitions; i++) {
			const CsTransition *t = &plugin->transitions[i];
			CsEngineService *s;
			gboolean known = FALSE;
			if (t->service == NULL)
				continue;
			for (guint j = 0; j < out->len && !known; j++)
				known =
				    g_strcmp0(((CsEngineService *)g_ptr_array_index(out, j))->name,
					      t->service) == 0;
			if (known)
				continue;
			s = g_new0(CsEngineService, 1);
			s->name = t->service;
			s->role = t->actors & ~(CS_ACTOR_DESKTOP | CS_ACTOR_GATEWAY |
						CS_ACTOR_SYSTEM | CS_ACTOR_ADMIN);
			/* A step only a gateway takes (an identity check): a gateway service. */
			if (s->role == 0 && (t->actors & CS_ACTOR_GATEWAY))
				s->role = CS_ACTOR_GATEWAY;
			g_ptr_array_add(out, s);
		}
	}
	return out;
}

/* g_strv_builder_take() arrived after the GLib we build against. */
static void
strv_builder_take(GStrvBuilder *b, char *s)
{
	g_strv_builder_add(b, s);
	g_free(s);
}

GStrv
cs_engine_next_actions(CsEngine *engine, CsOrder *order)
{
	g_autoptr(GStrvBuilder) b = g_strv_builder_new();
	g_autoptr(GPtrArray) seen = g_ptr_array_new_with_free_func(g_free);
	const CsPlugin *plugin = order->plugin;

	if (plugin == NULL)
		return g_strv_builder_end(b);
	if (plugin->editable_states != NULL &&
	    g_strv_contains(plugin->editable_states, order->state))
		strv_builder_take(b, g_strdup("Update"));
	if (plugin->n_materials > 0 && plugin->material_states != NULL &&
	    g_strv_contains(plugin->material_states, order->state))
		strv_builder_take(b, g_strdup("AttachMaterial"));
	for (guint i = 0; i < plugin->n_transitions; i++) {
		const CsTransition *t = &plugin->transitions[i];
		g_autofree char *method = NULL;
		if (g_strcmp0(t->from, order->state) != 0 || !guard_holds(engine, order, t))
			continue;
		if (t->actors & CS_ACTOR_DESKTOP)
			method = cs_action_to_method(t->action);
		else if (t->flags & CS_TRANSITION_PAYMENT)
			method = g_strdup("StartPayment");
		if (method == NULL ||
		    g_ptr_array_find_with_equal_func(seen, method, g_str_equal, NULL))
			continue;
		if (t->flags & CS_TRANSITION_NEEDS_CODE)
			g_ptr_array_add(seen, g_strdup("SendSmsCode"));
		g_ptr_array_add(seen, g_steal_pointer(&method));
	}
	for (guint i = 0; i < seen->len; i++)
		g_strv_builder_add(b, g_ptr_array_index(seen, i));
	if (cs_order_get_attr(order, "invoice_number") != NULL)
		g_strv_builder_add(b, "GetInvoice");
	return g_strv_builder_end(b);
}

static void
add_missing_fields(GStrvBuilder *b, CsOrder *order)
{
	const CsPlugin *plugin = order->plugin;

	for (guint i = 0; plugin != NULL && i < plugin->n_fields; i++) {
		const CsFieldSpec *f = &plugin->fields[i];
		if (f->required && (f->subject_types & order->subject_type) &&
		    !g_variant_lookup(order->fields, f->name, "&s", NULL))
			g_strv_builder_add(b, f->name);
	}
}

GStrv
cs_engine_missing_fields(CsEngine *engine, CsOrder *order)
{
	g_autoptr(GStrvBuilder) b = g_strv_builder_new();

	add_missing_fields(b, order);
	return g_strv_builder_end(b);
}

GStrv
cs_engine_missing(CsEngine *engine, CsOrder *order)
{
	g_autoptr(GStrvBuilder) b = g_strv_builder_new();
	const CsPlugin *plugin = order->plugin;
	g_autoptr(GPtrArray) attached = NULL;
	g_autoptr(GError) error = NULL;

	add_missing_fields(b, order);
	if (plugin == NULL || plugin->n_materials == 0)
		return g_strv_builder_end(b);
	attached = cs_engine_list_materials(engine, order, &error);
	if (attached == NULL)
		g_warning("order %s: cannot list its materials: %s", order->id, error->message);
	for (guint i = 0; i < plugin->n_materials; i++) {
		const CsMaterialSpec *m = &plugin->materials[i];
		gboolean have = FALSE;
		if (!(m->subject_types & order->subject_type) ||
		    !(m->required || (m->needed != NULL && m->needed(order))))
			continue;
		for (guint j = 0; attached != NULL && j < attached->len; j++)
			have |= g_strcmp0(((CsMaterialRow *)g_ptr_array_index(attached, j))->kind,
					  m->kind) == 0;
		if (!have)
			g_strv_builder_add(b, m->kind);
	}
	return g_strv_builder_end(b);
}

static const CsMaterialSpec *
find_material_spec(const CsPlugin *plugin, CsSubjectType subject_type, const char *kind)
{
	for (guint i = 0; i < plugin->n_materials; i++) {
		const CsMaterialSpec *m = &plugin->materials[i];
		if ((m->subject_types & subject_type) && g_strcmp0(m->kind, kind) == 0)
			return m;
	}
	return NULL;
}

gboolean
cs_engine_check_material(
    CsEngine *engine, const CsRequest *request, CsOrder *order, const char *kind, GError **error)
{
	const CsPlugin *plugin = order->plugin;

	if (!cs_order_require_plugin(order, error) ||
	    !cs_engine_check_access(engine, request, order, error))
		return FALSE;
	if (request->actor != CS_ACTOR_DESKTOP && request->actor != CS_ACTOR_SYSTEM) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_ACCESS_DENIED,
				    "only the applicant attaches materials");
		return FALSE;
	}
	if (find_material_spec(plugin, order->subject_type, kind) == NULL) {
		g_autoptr(GStrvBuilder) b = g_strv_builder_new();
		g_auto(GStrv) kinds = NULL;
		g_autofree char *list = NULL;
		g_autofree char *quoted = NULL;
		for (guint i = 0; i < plugin->n_materials; i++) {
			if (plugin->materials[i].subject_types & order->subject_type)
				g_strv_builder_add(b, plugin->materials[i].kind);
		}
		kinds = g_strv_builder_end(b);
		list = g_strjoinv(", ", kinds);
		quoted = cs_quote_value(kind);
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "kind: a %s %s order has no material '%s' (it takes: %s)", plugin->kind,
			    cs_subject_type_to_string(order->subject_type), quoted,
			    list[0] != '\0' ? list : "none");
		return FALSE;
	}
	if (plugin->material_states == NULL ||
	    !g_strv_contains(plugin->material_states, order->state)) {
		g_set_error(error, CS_ERROR, CS_ERROR_WRONG_STATE,
			    "order %s is %s: materials cannot be attached now", order->id,
			    order->state);
		return FALSE;
	}
	return TRUE;
}

gboolean
cs_engine_attach_material(CsEngine *engine,
			  const CsRequest *request,
			  CsOrder *order,
			  const char *kind,
			  const char *filename,
			  const char *mime,
			  const char *sha256,
			  gint64 size,
			  GError **error)
{
	g_autofree char *actor = cs_request_to_actor(request);
	g_autoptr(GVariant) event_data = NULL;
	GVariantDict dict;
	gint64 now = g_get_real_time();
	CsMaterialRow row = {
	    .order_id = order->id,
	    .kind = (char *)kind,
	    .filename = (char *)filename,
	    .mime = (char *)mime,
	    .sha256 = (char *)sha256,
	    .size = size,
	    .created = now,
	    .actor = actor,
	};

	if (!cs_engine_check_material(engine, request, order, kind, error))
		return FALSE;
	g_variant_dict_init(&dict, NULL);
	g_variant_dict_insert(&dict, "kind", "s", kind);
	g_variant_dict_insert(&dict, "sha256", "s", sha256);
	g_variant_dict_insert(&dict, "size", "x", size);
	g_variant_dict_insert(&dict, "mime", "s", mime);
	event_data = g_variant_ref_sink(g_variant_dict_end(&dict));

	if (!cs_ledger_begin(engine->ledger, error))
		return FALSE;
	if (!cs_ledger_insert_material(engine->ledger, &row, error) ||
	    !cs_ledger_update_order(engine->ledger, order->id, NULL, NULL, now, error) ||
	    !cs_ledger_append_event(engine->ledger, order->id, "material", order->state,
				    order->state, actor, event_data, now, NULL, error) ||
	    !cs_ledger_commit(engine->ledger, error)) {
		cs_ledger_rollback(engine->ledger);
		return FALSE;
	}
	g_info("order %s: material %s attached (%s, %" G_GINT64_FORMAT " bytes) by %s", order->id,
	       kind, mime, size, actor);
	order->updated = now;
	announce(engine, order, CS_ORDER_CHANGED);
	return TRUE;
}

GPtrArray *
cs_engine_list_materials(CsEngine *engine, CsOrder *order, GError **error)
{
	return cs_ledger_list_materials(engine->ledger, order->id, error);
}

GStrv
cs_engine_warnings(CsEngine *engine, CsOrder *order)
{
	g_autoptr(GStrvBuilder) b = g_strv_builder_new();
	const CsPlugin *plugin = order->plugin;

	for (guint i = 0; plugin != NULL && i < plugin->n_fields; i++) {
		const CsFieldSpec *f = &plugin->fields[i];
		const char *v = NULL;
		if (f->type != CS_FIELD_BANK_CARD || !(f->subject_types & order->subject_type))
			continue;
		if (g_variant_lookup(order->fields, f->name, "&s", &v) && !cs_luhn_ok(v))
			strv_builder_take(b,
					  g_strdup_printf("%s: fails the Luhn check; the reviewer "
							  "will compare it with the card",
							  f->name));
	}
	return g_strv_builder_end(b);
}

guint64
cs_engine_amount_fen(CsEngine *engine, CsOrder *order)
{
	const CsVendor *vendor = cs_config_find_vendor(engine->config, order->vendor);

	if (vendor == NULL)
		return 0;
	return cs_vendor_get_price(vendor, order->kind,
				   cs_subject_type_to_string(order->subject_type));
}

GPtrArray *
cs_engine_history(CsEngine *engine, CsOrder *order, GError **error)
{
	return cs_ledger_order_events(engine->ledger, order->id, error);
}

/* Does the step recorded as @kind show its parameter @name in the History? */
static gboolean
result_shown(const CsPlugin *plugin, const char *kind, const char *name)
{
	for (guint i = 0; plugin != NULL && i < plugin->n_transitions; i++) {
		const CsTransition *t = &plugin->transitions[i];
		if (g_strcmp0(t->action, kind) != 0)
			continue;
		for (guint j = 0; t->results != NULL && t->results[j].name != NULL; j++) {
			if (t->results[j].shown && g_strcmp0(t->results[j].name, name) == 0)
				return TRUE;
		}
	}
	return FALSE;
}

char *
cs_engine_event_note(CsOrder *order, const CsEventRow *e)
{
	/* What every step may say (a note, the reason a step failed, the payment channel),
	 * then what the flow's own steps show. */
	static const char *const keys[] = {"note", "reason", "channel"};
	g_autoptr(JsonParser) parser = json_parser_new();
	g_autoptr(GList) members = NULL;
	JsonObject *o;

	if (e->data == NULL || !json_parser_load_from_data(parser, e->data, -1, NULL) ||
	    !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser)))
		return g_strdup(e->kind);
	o = json_node_get_object(json_parser_get_root(parser));
	for (guint i = 0; i < G_N_ELEMENTS(keys); i++) {
		const char *v = json_object_has_member(o, keys[i])
				    ? json_object_get_string_member_with_default(o, keys[i], NULL)
				    : NULL;
		if (v != NULL && *v != '\0')
			return g_strdup_printf("%s: %s", e->kind, v);
	}
	members = json_object_get_members(o);
	for (GList *l = members; l != NULL && order != NULL; l = l->next) {
		JsonNode *n = json_object_get_member(o, l->data);
		const char *v =
		    JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING
			? json_node_get_string(n)
			: NULL;
		if (v != NULL && *v != '\0' && result_shown(order->plugin, e->kind, l->data))
			return g_strdup_printf("%s: %s", e->kind, v);
	}
	return g_strdup(e->kind);
}

/* Inside a transaction: the subject's identity fields and contact phone (the registry
 * keeps it as handler_phone: the handler's, or the person's own). */
static gboolean
register_subject(CsEngine *engine, CsOrder *order, GError **error)
{
	const CsPlugin *plugin = order->plugin;
	const char *id_number = cs_order_get_subject_number(order);
	const char *phone = NULL;
	g_autoptr(GVariant) identity = NULL;
	GVariantDict dict;

	if (!cs_order_require_plugin(order, error))
		return FALSE;
	if (id_number == NULL) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "%s: required",
			    cs_subject_number_field(order->subject_type));
		return FALSE;
	}
	g_variant_dict_init(&dict, NULL);
	for (guint i = 0; i < plugin->n_fields; i++) {
		const CsFieldSpec *f = &plugin->fields[i];
		const char *v = cs_order_get_field(order, f->name);
		if (v != NULL && (f->subject_types & order->subject_type) && f->identity)
			g_variant_dict_insert(&dict, f->name, "s", v);
	}
	if (plugin->contact_phone != NULL)
		phone = plugin->contact_phone(order);
	if (phone != NULL)
		g_variant_dict_insert(&dict, "handler_phone", "s", phone);
	identity = g_variant_ref_sink(g_variant_dict_end(&dict));
	return cs_ledger_record_subject(engine->ledger,
					cs_subject_type_to_string(order->subject_type), id_number,
					identity, g_get_real_time(), error);
}

gboolean
cs_step_register_subject(CsStep *step, GError **error)
{
	return cs_step_check_transaction(step, "cs_step_register_subject", error) &&
	       register_subject(step->engine, step->order, error);
}

gboolean
cs_engine_record_subject(CsEngine *engine, CsOrder *order, GError **error)
{
	if (!cs_ledger_begin(engine->ledger, error))
		return FALSE;
	if (!register_subject(engine, order, error) || !cs_ledger_commit(engine->ledger, error)) {
		cs_ledger_rollback(engine->ledger);
		return FALSE;
	}
	return TRUE;
}
