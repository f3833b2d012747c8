/*
 * cs-engine.c — the order engine: fields, registry, transitions, ledger records.
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
 *   the materials table, written in the same transaction.
 */
#define G_LOG_DOMAIN "certseald"

#include <string.h>

#include <json-glib/json-glib.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "cs-engine-flow.h"
#include "cs-engine.h"
#include "cs-keys.h"
#include "cs-loader.h"
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
	GHashTable *payment_waiters; /* gint64 task id → StartPayment waiting for a cashier */
	gint *stopping;		     /* g_atomic_rc_box, shared with work on other threads */
};

static void announce(CsEngine *engine, CsOrder *order, CsOrderChange change);

/* Transient states and where they fall back to after a restart (DESIGN §3.3). */
static const struct {
	const char *transient;
	const char *stable;
} transient_states[] = {
    {"making", "approved"},
    {"downloading", "downloadable"},
};

/* The field that identifies a subject in the registry (DESIGN §1). */
static const char *
subject_key_field(CsSubjectType type)
{
	return type == CS_SUBJECT_ORG ? "uscc" : "id_number";
}

static void
order_free(CsOrder *order)
{
	if (order == NULL)
		return;
	g_free(order->id);
	g_free(order->kind);
	g_free(order->vendor);
	g_free(order->state);
	g_clear_pointer(&order->fields, g_variant_unref);
	g_clear_pointer(&order->attrs, g_hash_table_unref);
	g_free(order);
}

const char *
cs_order_get_id(CsOrder *order)
{
	return order->id;
}

const char *
cs_order_get_kind(CsOrder *order)
{
	return order->kind;
}

const char *
cs_order_get_state(CsOrder *order)
{
	return order->state;
}

CsSubjectType
cs_order_get_subject_type(CsOrder *order)
{
	return order->subject_type;
}

const char *
cs_order_get_attr(CsOrder *order, const char *name)
{
	if (order->attrs == NULL) {
		g_autoptr(GError) error = NULL;
		order->attrs = cs_ledger_load_attrs(order->ledger, order->id, &error);
		if (order->attrs == NULL) {
			g_warning("order %s: cannot read its attributes: %s", order->id,
				  error->message);
			return NULL;
		}
	}
	return g_hash_table_lookup(order->attrs, name);
}

void
cs_order_forget_attrs(CsOrder *order)
{
	g_clear_pointer(&order->attrs, g_hash_table_unref);
}

const char *
cs_order_get_field(CsOrder *order, const char *name)
{
	const char *value = NULL;

	if (!g_variant_lookup(order->fields, name, "&s", &value))
		return NULL;
	return value;
}

CsEngine *
cs_engine_new(CsConfig *config, CsLedger *ledger)
{
	CsEngine *engine = g_new0(CsEngine, 1);

	engine->config = config;
	engine->ledger = ledger;
	engine->plugins = g_hash_table_new(g_str_hash, g_str_equal);
	engine->orders =
	    g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)order_free);
	engine->listeners = g_array_new(FALSE, TRUE, sizeof(Listener));
	engine->payment_waiters =
	    g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, cs_payment_waiter_free);
	engine->stopping = g_atomic_rc_box_new0(gint);
	return engine;
}

void
cs_engine_free(CsEngine *engine)
{
	if (engine == NULL)
		return;
	g_atomic_int_set(engine->stopping, 1);
	g_atomic_rc_box_release(engine->stopping);
	g_hash_table_unref(engine->payment_waiters);
	g_hash_table_unref(engine->orders);
	g_hash_table_unref(engine->plugins);
	g_array_unref(engine->listeners);
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
	if (!cs_plugin_run_init(plugin, engine, error))
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

static void
on_gateway_task_done(CsTasks *tasks, const CsTask *task, const char *result, gpointer user_data)
{
	if (g_strcmp0(task->service, "cashier") == 0)
		cs_engine_payment_task_done(user_data, task->id, result);
}

void
cs_engine_set_services(CsEngine *engine, CsVault *vault, CsTasks *tasks, CsKeys *keys)
{
	engine->vault = vault;
	engine->tasks = tasks;
	engine->keys = keys;
	if (tasks != NULL)
		cs_tasks_set_done_func(tasks, on_gateway_task_done, engine);
}

void
cs_engine_stop(CsEngine *engine)
{
	g_atomic_int_set(engine->stopping, 1);
	g_hash_table_remove_all(engine->payment_waiters);
	cs_engine_set_services(engine, NULL, NULL, NULL);
}

gint *
cs_engine_ref_stopping(CsEngine *engine)
{
	return g_atomic_rc_box_acquire(engine->stopping);
}

GHashTable *
cs_engine_get_payment_waiters(CsEngine *engine)
{
	return engine->payment_waiters;
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
cs_request_to_actor(const CsRequest *request)
{
	switch (request->actor) {
	case CS_ACTOR_DESKTOP:
		return g_strdup_printf("uid:%u", request->uid);
	case CS_ACTOR_GATEWAY:
		return g_strdup("gateway");
	case CS_ACTOR_SYSTEM:
		return g_strdup("system");
	default:
		return g_strdup_printf("office:%s",
				       request->user_id != NULL ? request->user_id : "?");
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

static CsOrder *
order_from_row(CsEngine *engine, CsOrderRow *row)
{
	CsOrder *order = g_new0(CsOrder, 1);

	order->id = g_strdup(row->id);
	order->kind = g_strdup(row->kind);
	order->subject_type = cs_subject_type_from_string(row->subject_type);
	order->vendor = g_strdup(row->vendor != NULL ? row->vendor : "");
	order->state = g_strdup(row->state);
	order->owner_uid = row->owner_uid;
	order->fields = g_variant_ref_sink(row->fields);
	order->created = row->created;
	order->updated = row->updated;
	order->plugin = cs_engine_find_plugin(engine, row->kind);
	order->ledger = engine->ledger;
	return order;
}

CsOrder *
cs_engine_get_order(CsEngine *engine, const char *id, GError **error)
{
	CsOrder *order = g_hash_table_lookup(engine->orders, id);
	g_autoptr(CsOrderRow) row = NULL;

	if (order != NULL)
		return order;
	row = cs_ledger_load_order(engine->ledger, id, error);
	if (row == NULL)
		return NULL;
	order = order_from_row(engine, row);
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
	if (request->actor == CS_ACTOR_DESKTOP && request->uid != 0)
		return cs_ledger_list_orders_owned(engine->ledger, request->uid, error);
	return cs_ledger_list_orders(engine->ledger, NULL, error);
}

gboolean
cs_engine_check_access(CsEngine *engine, const CsRequest *request, CsOrder *order, GError **error)
{
	if (request->actor != CS_ACTOR_DESKTOP)
		return TRUE;
	if (request->uid == 0 || request->uid == order->owner_uid)
		return TRUE;
	g_set_error(error, CS_ERROR, CS_ERROR_ACCESS_DENIED, "order %s belongs to another user",
		    order->id);
	return FALSE;
}

static const CsFieldSpec *
find_field_spec(const CsPlugin *plugin, CsSubjectType subject_type, const char *name)
{
	for (guint i = 0; i < plugin->n_fields; i++) {
		const CsFieldSpec *f = &plugin->fields[i];
		if ((f->subject_types & subject_type) != 0 && g_strcmp0(f->name, name) == 0)
			return f;
	}
	return NULL;
}

/* Validate one value; *normalized is the string to store (NULL: remove the field). */
static gboolean
validate_value(
    CsEngine *engine, const CsFieldSpec *spec, const char *value, char **normalized, GError **error)
{
	g_autofree char *v = g_strdup(value);
	gboolean ok = TRUE;

	*normalized = NULL;
	if (*value == '\0')
		return TRUE; /* "" removes the field */

	switch (spec->type) {
	case CS_FIELD_TEXT:
	case CS_FIELD_NAME:
		ok = cs_validate_text(v, spec->max_length, error);
		break;
	case CS_FIELD_USCC: {
		g_autofree char *up = g_ascii_strup(v, -1);
		ok = cs_validate_uscc(up, (const char *const *)engine->config->legacy_uscc, error);
		g_free(g_steal_pointer(&v));
		v = g_steal_pointer(&up);
		break;
	}
	case CS_FIELD_RESIDENT_ID: {
		g_autofree char *up = g_ascii_strup(v, -1);
		ok = cs_validate_resident_id(up, NULL, error);
		g_free(g_steal_pointer(&v));
		v = g_steal_pointer(&up);
		break;
	}
	case CS_FIELD_PHONE: {
		g_autofree char *norm = NULL;
		ok = cs_validate_phone(v, &norm, error);
		if (ok) {
			g_free(v);
			v = g_steal_pointer(&norm);
		}
		break;
	}
	case CS_FIELD_EMAIL:
		ok = cs_validate_email(v, error);
		break;
	case CS_FIELD_POSTCODE:
		ok = cs_validate_postcode(v, error);
		break;
	case CS_FIELD_BANK_CARD:
		ok = cs_validate_bank_card(v, error);
		break;
	case CS_FIELD_BANK_ACCOUNT:
		ok = cs_validate_bank_account(v, error);
		break;
	case CS_FIELD_ENUM:
		if (!g_strv_contains(spec->choices, v)) {
			g_autofree char *choices = g_strjoinv(", ", (char **)spec->choices);
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "must be one of %s",
				    choices);
			ok = FALSE;
		}
		break;
	case CS_FIELD_VENDOR:
		if (cs_config_find_vendor(engine->config, v) == NULL) {
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "no vendor profile named '%s'", v);
			ok = FALSE;
		}
		break;
	}
	if (!ok)
		return FALSE;
	*normalized = g_steal_pointer(&v);
	return TRUE;
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
		const CsFieldSpec *spec = find_field_spec(plugin, subject_type, name);
		g_autofree char *normalized = NULL;
		const char *old;

		if (spec == NULL) {
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "%s: not a field of a %s %s order", name, plugin->kind,
				    cs_subject_type_to_string(subject_type));
			return NULL;
		}
		if (!g_variant_is_of_type(value, G_VARIANT_TYPE_STRING)) {
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "%s: must be a string, not '%s'", name,
				    g_variant_get_type_string(value));
			return NULL;
		}
		if (!validate_value(engine, spec, g_variant_get_string(value, NULL), &normalized,
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
	const char *key = subject_key_field(subject_type);
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
		    g_strcmp0(cs_order_get_field(o, subject_key_field(subject_type)), id_number) ==
			0)
			return TRUE;
	}
	return FALSE;
}

/*
 * The registry pre-fills a known subject's identity fields (DESIGN §1) that the caller left
 * out — for a caller who applied for that subject before. Anyone else gets nothing copied
 * (knowing a USCC or a resident ID is no proof of being that subject) but is still held to
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
	    !g_variant_lookup(fields, subject_key_field(subject_type), "&s", &id_number))
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

CsOrder *
cs_engine_create_order(CsEngine *engine,
		       const CsRequest *request,
		       const char *kind,
		       const char *subject_type_str,
		       GVariant *fields,
		       GError **error)
{
	const CsPlugin *plugin = cs_engine_find_plugin(engine, kind);
	CsSubjectType subject_type = cs_subject_type_from_string(subject_type_str);
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GVariant) m = NULL;
	g_autoptr(GVariant) merged = NULL;
	g_autoptr(GVariant) data = NULL;
	g_autofree char *actor = cs_request_to_actor(request);
	g_autofree char *id = NULL;
	const char *vendor = NULL;
	gint64 now = g_get_real_time();
	CsOrder *order;

	if (plugin == NULL) {
		g_auto(GStrv) kinds = cs_engine_get_kinds(engine);
		g_autofree char *known = g_strjoinv(", ", kinds);
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "kind: no flow '%s' (available: %s)", kind, known);
		return NULL;
	}
	if (subject_type == 0) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "subject_type: must be 'org' or 'person'");
		return NULL;
	}
	if (request->actor != CS_ACTOR_DESKTOP && request->actor != CS_ACTOR_SYSTEM) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_ACCESS_DENIED,
				    "orders are created by their applicants");
		return NULL;
	}
	m = merge_fields(engine, plugin, subject_type, NULL, fields, names, error);
	if (m == NULL)
		return NULL;
	m = g_variant_ref_sink(m);
	merged = prefill_from_registry(engine, request, plugin, subject_type, m, names, error);
	if (merged == NULL)
		return NULL;
	if (!check_registry(engine, plugin, subject_type, merged, error) ||
	    !cs_plugin_run_check_fields(plugin, engine, subject_type, merged, error))
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

static gboolean
require_plugin(CsOrder *order, GError **error)
{
	if (order->plugin != NULL)
		return TRUE;
	g_set_error(error, CS_ERROR, CS_ERROR_UNAVAILABLE, "order %s: the %s flow is not loaded",
		    order->id, order->kind);
	return FALSE;
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

	if (!require_plugin(order, error) || !cs_engine_check_access(engine, request, order, error))
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
	if (!check_registry(engine, plugin, order->subject_type, merged, error) ||
	    !cs_plugin_run_check_fields(plugin, engine, order->subject_type, merged, error))
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

/* ---- one-time codes (DESIGN §6) -------------------------------------------------------- */

static char *
code_hash(CsEngine *engine, CsOrder *order, const char *code)
{
	g_autofree char *data = g_strdup_printf("%s:%s", order->id, code);
	return cs_vault_keyed_hash(engine->vault, "sms-code", data);
}

static gboolean
require_services(CsEngine *engine, GError **error)
{
	if (engine->vault != NULL && engine->tasks != NULL)
		return TRUE;
	g_set_error_literal(error, CS_ERROR, CS_ERROR_UNAVAILABLE,
			    "the office services are not running");
	return FALSE;
}

/* Inside a transaction: a new code for @order, sent by SMS to the flow's contact phone
 * (cooldown and daily cap enforced). Nothing of the code stays but its keyed hash and
 * the sealed copy the SMS task delivers. */
static gboolean
send_code_in_txn(CsEngine *engine, CsOrder *order, char **masked_phone, GError **error)
{
	const char *phone =
	    order->plugin->contact_phone != NULL ? order->plugin->contact_phone(order) : NULL;
	g_autofree char *hash = NULL;
	g_autoptr(JsonObject) params = json_object_new();
	char code[8];
	guint32 r = 0;
	gint64 now = g_get_real_time();
	gboolean ok;

	if (!require_services(engine, error))
		return FALSE;
	if (phone == NULL) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "phone: the order has no phone to send a code to");
		return FALSE;
	}
	do {
		if (RAND_bytes((unsigned char *)&r, sizeof r) != 1) {
			g_set_error_literal(error, CS_ERROR, CS_ERROR_INTERNAL,
					    "no random numbers for a code");
			return FALSE;
		}
	} while (r >= 4294000000u); /* 4294000000 = 4294 × 10^6: no modulo bias */
	g_snprintf(code, sizeof code, "%06u", r % 1000000u);
	hash = code_hash(engine, order, code);
	json_object_set_string_member(params, "order", order->id);
	ok = cs_ledger_insert_code(
		 engine->ledger, order->id, "sms", hash, now,
		 now + (gint64)engine->config->sms_code_lifetime_s * G_USEC_PER_SEC, error) &&
	     cs_tasks_send_sms_in_txn(engine->tasks, order->id, phone, "sms_code", params, code,
				      TRUE, error);
	OPENSSL_cleanse(code, sizeof code);
	OPENSSL_cleanse(&r, sizeof r);
	if (ok && masked_phone != NULL)
		*masked_phone = cs_mask_phone(phone);
	return ok;
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
	gboolean ok;

	if (!require_plugin(order, error) || !cs_engine_check_access(engine, request, order, error))
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
	ok = send_code_in_txn(engine, order, masked_phone, error) &&
	     cs_ledger_append_event(engine->ledger, order->id, "code_sent", order->state,
				    order->state, actor, NULL, g_get_real_time(), NULL, error) &&
	     cs_ledger_commit(engine->ledger, error);
	if (!ok)
		cs_ledger_rollback(engine->ledger);
	return ok;
}

/* Check @code against the order's open code. A wrong code counts a try in its own
 * transaction (so refusing the step keeps the count); *code_id is the code to mark used
 * in the step's transaction. */
static gboolean
check_code(CsEngine *engine, CsOrder *order, const char *code, gint64 *code_id, GError **error)
{
	g_autoptr(CsCodeRow) row = NULL;
	g_autoptr(GError) local = NULL;
	g_autofree char *hash = NULL;
	guint max_tries = engine->config->sms_code_max_tries;
	const char *state = NULL;
	gint64 tries;
	gboolean ok;

	if (!require_services(engine, error))
		return FALSE;
	if (code == NULL || *code == '\0') {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "code: required (the SMS code)");
		return FALSE;
	}
	row = cs_ledger_latest_code(engine->ledger, order->id, "sms", &local);
	if (row == NULL) {
		if (!g_error_matches(local, CS_ERROR, CS_ERROR_NOT_FOUND)) {
			g_propagate_error(error, g_steal_pointer(&local));
			return FALSE;
		}
		g_set_error_literal(error, CS_ERROR, CS_ERROR_CODE_INVALID,
				    "code: none was sent; ask for one with SendSmsCode");
		return FALSE;
	}
	if (g_strcmp0(row->state, "dead") == 0 || row->tries >= max_tries) {
		g_set_error_literal(
		    error, CS_ERROR, CS_ERROR_TOO_MANY_ATTEMPTS,
		    "code: too many wrong tries; ask for a new one with SendSmsCode");
		return FALSE;
	}
	if (g_strcmp0(row->state, "open") != 0) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_CODE_INVALID,
				    "code: already used; ask for a new one with SendSmsCode");
		return FALSE;
	}
	if (g_get_real_time() >= row->expires) {
		state = "dead";
		tries = row->tries;
	} else {
		hash = code_hash(engine, order, code);
		if (strlen(hash) == strlen(row->code_hash) &&
		    CRYPTO_memcmp(hash, row->code_hash, strlen(hash)) == 0) {
			*code_id = row->id;
			return TRUE;
		}
		tries = row->tries + 1;
		state = tries >= max_tries ? "dead" : "open";
	}
	if (!cs_ledger_begin(engine->ledger, error))
		return FALSE;
	ok = cs_ledger_update_code(engine->ledger, row->id, tries, state, error) &&
	     cs_ledger_commit(engine->ledger, error);
	if (!ok) {
		cs_ledger_rollback(engine->ledger);
		return FALSE;
	}
	if (g_get_real_time() >= row->expires && tries == row->tries)
		g_set_error_literal(error, CS_ERROR, CS_ERROR_CODE_EXPIRED,
				    "code: expired; ask for a new one with SendSmsCode");
	else if (tries >= max_tries)
		g_set_error_literal(
		    error, CS_ERROR, CS_ERROR_TOO_MANY_ATTEMPTS,
		    "code: too many wrong tries; ask for a new one with SendSmsCode");
	else
		g_set_error(error, CS_ERROR, CS_ERROR_CODE_INVALID,
			    "code: wrong, %" G_GINT64_FORMAT " tries left", max_tries - tries);
	return FALSE;
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

typedef struct {
	const CsTransition *transition; /* NULL: a recovery or system step without one */
	const CsRequest *request;
	GVariant *params; /* a{sv}, never NULL */
	gint64 code_id;	  /* the code to mark used, or 0 */
	CsEngineTxnFunc in_txn;
	gpointer in_txn_data;
} Step;

static GVariant *
empty_params(void)
{
	return g_variant_ref_sink(g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0));
}

static gboolean
record_step(CsEngine *engine,
	    CsOrder *order,
	    const char *event_kind,
	    const char *to,
	    const char *actor,
	    Step *step,
	    GError **error)
{
	gint64 now = g_get_real_time();
	const char *from = order->state;
	const CsTransition *t = step->transition;
	GVariant *data =
	    step->params != NULL && g_variant_n_children(step->params) > 0 ? step->params : NULL;
	gboolean ok;

	if (!cs_ledger_begin(engine->ledger, error))
		return FALSE;
	/* The plugin's step sees the order in its new state. */
	order->state = (char *)to;
	ok = cs_ledger_update_order(engine->ledger, order->id, to, order->fields, now, error) &&
	     cs_ledger_append_event(engine->ledger, order->id, event_kind, from, to, actor, data,
				    now, NULL, error) &&
	     (step->in_txn == NULL || step->in_txn(engine, order, step->in_txn_data, error)) &&
	     (step->code_id == 0 ||
	      cs_ledger_update_code(engine->ledger, step->code_id, 0, "used", error)) &&
	     (t == NULL || !(t->flags & CS_TRANSITION_SENDS_CODE) ||
	      send_code_in_txn(engine, order, NULL, error)) &&
	     (t == NULL || cs_plugin_run_in_transition(order->plugin, engine, order, t,
						       step->request, step->params, error)) &&
	     cs_ledger_commit(engine->ledger, error);
	order->state = (char *)from;
	cs_order_forget_attrs(order);
	if (!ok) {
		cs_ledger_rollback(engine->ledger);
		return FALSE;
	}
	g_info("order %s: %s → %s (%s by %s)", order->id, order->state, to, event_kind, actor);
	g_free(order->state);
	order->state = g_strdup(to);
	order->updated = now;
	announce(engine, order, CS_ORDER_CHANGED);
	if (t != NULL)
		cs_plugin_run_after_transition(order->plugin, engine, order, t, step->request);
	return TRUE;
}

static gboolean
record_transition(CsEngine *engine,
		  CsOrder *order,
		  const char *event_kind,
		  const char *to,
		  const char *actor,
		  GError **error)
{
	g_autoptr(GVariant) params = empty_params();
	Step step = {.params = params};

	return record_step(engine, order, event_kind, to, actor, &step, error);
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
		if (!g_variant_is_of_type(value, G_VARIANT_TYPE_STRING)) {
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "%s: must be a string",
				    name);
			return FALSE;
		}
		if (!cs_validate_text(g_variant_get_string(value, NULL), 500, &local)) {
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "%s: %s", name,
				    local->message);
			return FALSE;
		}
	}
	return TRUE;
}

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
	const CsPlugin *plugin = order->plugin;
	const CsTransition *found = NULL;
	g_autoptr(GPtrArray) possible_in = g_ptr_array_new();
	g_autofree char *actor = cs_request_to_actor(request);
	g_autoptr(GVariant) owned_params = NULL;
	Step step = {.request = request, .in_txn = in_txn, .in_txn_data = in_txn_data};
	gboolean from_here = FALSE;
	gboolean allowed_here = FALSE;

	owned_params = params != NULL ? g_variant_ref_sink(params) : empty_params();
	if (!require_plugin(order, error) || !cs_engine_check_access(engine, request, order, error))
		return FALSE;
	if (!check_params(owned_params, error))
		return FALSE;
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
		if (guard_holds(engine, order, t)) {
			found = t;
			break;
		}
	}
	if (found == NULL) {
		if (possible_in->len == 0) {
			g_set_error(error, CS_ERROR, CS_ERROR_WRONG_STATE,
				    "a %s order has no step '%s'", plugin->kind, action);
		} else if (allowed_here) {
			g_set_error(error, CS_ERROR, CS_ERROR_WRONG_STATE,
				    "order %s is %s: '%s' does not apply to it as paid so far",
				    order->id, order->state, action);
		} else if (from_here) {
			g_set_error(error, CS_ERROR, CS_ERROR_ACCESS_DENIED,
				    "%s may not %s order %s", actor, action, order->id);
		} else {
			g_ptr_array_add(possible_in, NULL);
			g_autofree char *states = g_strjoinv(", ", (char **)possible_in->pdata);
			g_set_error(error, CS_ERROR, CS_ERROR_WRONG_STATE,
				    "order %s is %s: '%s' is possible only when %s", order->id,
				    order->state, action, states);
		}
		return FALSE;
	}
	if (found->flags & CS_TRANSITION_NEEDS_FIELDS) {
		g_auto(GStrv) missing = cs_engine_missing_fields(engine, order);
		if (missing[0] != NULL) {
			g_autofree char *list = g_strjoinv(", ", missing);
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "fields: still missing %s", list);
			return FALSE;
		}
	}
	if (found->flags & CS_TRANSITION_NEEDS_MATERIALS) {
		g_auto(GStrv) missing = cs_engine_missing(engine, order);
		if (missing[0] != NULL) {
			g_autofree char *list = g_strjoinv(", ", missing);
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "materials: still missing %s", list);
			return FALSE;
		}
	}
	if (!cs_plugin_run_before_transition(plugin, engine, order, found, request, error))
		return FALSE;
	if ((found->flags & CS_TRANSITION_NEEDS_CODE) &&
	    !check_code(engine, order, code, &step.code_id, error))
		return FALSE;
	step.transition = found;
	step.params = owned_params;
	return record_step(engine, order, found->action, found->to, actor, &step, error);
}

gboolean
cs_engine_recover(CsEngine *engine, guint *n_recovered, GError **error)
{
	guint n = 0;

	for (guint i = 0; i < G_N_ELEMENTS(transient_states); i++) {
		g_autoptr(GPtrArray) ids =
		    cs_ledger_list_orders(engine->ledger, transient_states[i].transient, error);
		if (ids == NULL)
			return FALSE;
		for (guint j = 0; j < ids->len; j++) {
			CsOrder *order =
			    cs_engine_get_order(engine, g_ptr_array_index(ids, j), error);
			if (order == NULL)
				return FALSE;
			if (!record_transition(engine, order, "recovered",
					       transient_states[i].stable, "system", error))
				return FALSE;
			n++;
		}
	}
	if (n_recovered != NULL)
		*n_recovered = n;
	return TRUE;
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
		else if ((t->actors & CS_ACTOR_GATEWAY) && g_strcmp0(t->action, "pay") == 0)
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
		if (!m->required || !(m->subject_types & order->subject_type))
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

	if (!require_plugin(order, error) || !cs_engine_check_access(engine, request, order, error))
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
		for (guint i = 0; i < plugin->n_materials; i++) {
			if (plugin->materials[i].subject_types & order->subject_type)
				g_strv_builder_add(b, plugin->materials[i].kind);
		}
		kinds = g_strv_builder_end(b);
		list = g_strjoinv(", ", kinds);
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "kind: a %s %s order has no material '%s' (it takes: %s)", plugin->kind,
			    cs_subject_type_to_string(order->subject_type), kind,
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
			  GBytes *data,
			  const char *sha256,
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
	    .data = data,
	    .created = now,
	    .actor = actor,
	};

	if (!cs_engine_check_material(engine, request, order, kind, error))
		return FALSE;
	g_variant_dict_init(&dict, NULL);
	g_variant_dict_insert(&dict, "kind", "s", kind);
	g_variant_dict_insert(&dict, "sha256", "s", sha256);
	g_variant_dict_insert(&dict, "size", "x", (gint64)g_bytes_get_size(data));
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
	g_info("order %s: material %s attached (%s, %" G_GSIZE_FORMAT " bytes) by %s", order->id,
	       kind, mime, g_bytes_get_size(data), actor);
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

char *
cs_engine_event_note(const CsEventRow *e)
{
	static const char *const keys[] = {"note", "tracking", "reason", "channel"};
	g_autoptr(JsonParser) parser = json_parser_new();
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
	return g_strdup(e->kind);
}

gboolean
cs_engine_register_subject(CsEngine *engine, CsOrder *order, GError **error)
{
	const CsPlugin *plugin = order->plugin;
	const char *id_number = cs_order_get_field(order, subject_key_field(order->subject_type));
	g_autoptr(GVariant) identity = NULL;
	GVariantDict dict;

	if (!require_plugin(order, error))
		return FALSE;
	if (id_number == NULL) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "%s: required",
			    subject_key_field(order->subject_type));
		return FALSE;
	}
	g_variant_dict_init(&dict, NULL);
	for (guint i = 0; i < plugin->n_fields; i++) {
		const CsFieldSpec *f = &plugin->fields[i];
		const char *v = cs_order_get_field(order, f->name);
		gboolean handler_phone =
		    g_strcmp0(f->name, "handler_phone") == 0 ||
		    (order->subject_type == CS_SUBJECT_PERSON && g_strcmp0(f->name, "phone") == 0);
		if (v != NULL && (f->subject_types & order->subject_type) &&
		    (f->identity || handler_phone))
			g_variant_dict_insert(&dict, f->name, "s", v);
	}
	identity = g_variant_ref_sink(g_variant_dict_end(&dict));
	return cs_ledger_record_subject(engine->ledger,
					cs_subject_type_to_string(order->subject_type), id_number,
					identity, g_get_real_time(), error);
}

gboolean
cs_engine_record_subject(CsEngine *engine, CsOrder *order, GError **error)
{
	if (!cs_ledger_begin(engine->ledger, error))
		return FALSE;
	if (!cs_engine_register_subject(engine, order, error) ||
	    !cs_ledger_commit(engine->ledger, error)) {
		cs_ledger_rollback(engine->ledger);
		return FALSE;
	}
	return TRUE;
}
