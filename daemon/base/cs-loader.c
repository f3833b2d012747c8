/*
 * cs-loader.c — loading flow plugins and vendor drivers, and the runners around them.
 *
 * Invariants: a module reaches the engine only after its file, its ABI version integers,
 * every undefined symbol (bound at open, not lazily, so a module needing a daemon function
 * that does not exist is refused here instead of failing at its first call),
 * its entry symbol and its declarations were checked; every refusal is exactly one log
 * line of the form "<file>: refused: <reason>" and never stops the daemon; modules are
 * opened with G_MODULE_BIND_LOCAL so two modules' private symbols never collide.
 */
#define G_LOG_DOMAIN "certseald"

#include <errno.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cs-loader.h"

void
cs_loaded_plugin_free(CsLoadedPlugin *plugin)
{
	if (plugin == NULL)
		return;
	if (plugin->module != NULL)
		g_module_close(plugin->module);
	g_free(plugin->upgraded);
	g_free(plugin->path);
	g_free(plugin);
}

void
cs_loaded_driver_free(CsLoadedDriver *driver)
{
	if (driver == NULL)
		return;
	if (driver->module != NULL)
		g_module_close(driver->module);
	g_free(driver->path);
	g_free(driver);
}

gboolean
cs_loader_check_file(const char *path, gboolean test_mode, GError **error)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_NOT_FOUND, "cannot stat: %s",
			    g_strerror(errno));
		return FALSE;
	}
	if (!S_ISREG(st.st_mode)) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_ACCESS_DENIED, "not a regular file");
		return FALSE;
	}
	if (test_mode)
		return TRUE;
	if (st.st_uid != 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_ACCESS_DENIED, "owned by uid %u, not root",
			    (guint)st.st_uid);
		return FALSE;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_ACCESS_DENIED,
			    "writable by group or others (mode %04o)", (guint)(st.st_mode & 07777));
		return FALSE;
	}
	return TRUE;
}

/* Open @path and check its two ABI integers against @major/@max_minor. */
static GModule *
open_module(const char *path,
	    gboolean test_mode,
	    const char *major_symbol,
	    const char *minor_symbol,
	    int major,
	    int max_minor,
	    int *minor_out,
	    GError **error)
{
	GModule *module = NULL;
	gpointer major_ptr = NULL;
	gpointer minor_ptr = NULL;
	int their_major;
	int their_minor;

	if (!cs_loader_check_file(path, test_mode, error))
		return NULL;
	module = g_module_open(path, G_MODULE_BIND_LOCAL);
	if (module == NULL) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "cannot open: %s",
			    g_module_error());
		return NULL;
	}
	if (!g_module_symbol(module, major_symbol, &major_ptr) || major_ptr == NULL ||
	    !g_module_symbol(module, minor_symbol, &minor_ptr) || minor_ptr == NULL) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "missing symbol %s or %s",
			    major_symbol, minor_symbol);
		g_module_close(module);
		return NULL;
	}
	their_major = *(const int *)major_ptr;
	their_minor = *(const int *)minor_ptr;
	if (their_major != major) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "ABI major version %d, certseald speaks %d", their_major, major);
		g_module_close(module);
		return NULL;
	}
	if (their_minor < 0 || their_minor > max_minor) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "ABI version %d.%d is newer than certseald's %d.%d", their_major,
			    their_minor, major, max_minor);
		g_module_close(module);
		return NULL;
	}
	*minor_out = their_minor;
	return module;
}

static gboolean
strv_contains_nonnull(const char *const *strv, const char *s)
{
	return strv != NULL && s != NULL && g_strv_contains(strv, s);
}

#define OFFICE_ROLES                                                                               \
	(CS_ACTOR_REVIEWER | CS_ACTOR_MAKER | CS_ACTOR_SHIPPER | CS_ACTOR_CASHIER |                \
	 CS_ACTOR_AUDITOR)

/* A transition names known states and an actor; a service step is taken by exactly one
 * office role, the payment step by the gateway, the refund step by the cashier. */
static gboolean
check_transition(const CsPlugin *p, guint i, GError **error)
{
	const CsTransition *t = &p->transitions[i];
	const char *action = t->action != NULL ? t->action : "?";
	/* A step only a gateway takes (an identity check) is served by the gateway role. */
	guint roles = (t->actors & OFFICE_ROLES) != 0 ? t->actors & OFFICE_ROLES
						      : t->actors & CS_ACTOR_GATEWAY;

	if (t->action == NULL || !strv_contains_nonnull(p->states, t->from) ||
	    !strv_contains_nonnull(p->states, t->to) || t->actors == 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "transition %u (%s) names an unknown state or no actor", i, action);
		return FALSE;
	}
	if (t->service != NULL &&
	    (!g_regex_match_simple("^[a-z][a-z0-9_]{0,31}$", t->service, 0, 0) || roles == 0 ||
	     (roles & (roles - 1)) != 0)) {
		g_set_error(
		    error, CS_ERROR, CS_ERROR_INVALID_INPUT,
		    "transition %u (%s): service %s needs a name and exactly one office role "
		    "(or the gateway)",
		    i, action, t->service);
		return FALSE;
	}
	if (((t->flags & CS_TRANSITION_PAYMENT) && !(t->actors & CS_ACTOR_GATEWAY)) ||
	    ((t->flags & CS_TRANSITION_REFUND) && !(t->actors & CS_ACTOR_CASHIER))) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "transition %u (%s): a payment step is the gateway's, a refund the "
			    "cashier's",
			    i, action);
		return FALSE;
	}
	for (guint j = 0; t->results != NULL && t->results[j].name != NULL; j++) {
		if (!g_regex_match_simple("^[a-z][a-z0-9_]{0,31}$", t->results[j].name, 0, 0)) {
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "transition %u (%s): result %u is malformed", i, action, j);
			return FALSE;
		}
	}
	return TRUE;
}

/* A plugin's declarations must be self-consistent before the engine relies on them. */
static gboolean
check_plugin_declarations(const CsPlugin *p, GError **error)
{
	if (p->kind == NULL || !g_regex_match_simple("^[a-z][a-z0-9_]{0,31}$", p->kind, 0, 0)) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "kind missing or not [a-z][a-z0-9_]*");
		return FALSE;
	}
	if (p->states == NULL || !strv_contains_nonnull(p->states, p->initial_state)) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "initial state %s is not among its states", p->initial_state);
		return FALSE;
	}
	for (guint i = 0; i < p->n_transitions; i++) {
		if (!check_transition(p, i, error))
			return FALSE;
	}
	for (guint i = 0; p->terminal_states != NULL && p->terminal_states[i] != NULL; i++) {
		const char *state = p->terminal_states[i];
		if (!g_strv_contains(p->states, state)) {
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "terminal state %s is not among its states", state);
			return FALSE;
		}
		for (guint j = 0; j < p->n_transitions; j++) {
			if (g_strcmp0(p->transitions[j].from, state) == 0) {
				g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
					    "terminal state %s is left by '%s'", state,
					    p->transitions[j].action);
				return FALSE;
			}
		}
	}
	for (guint i = 0; p->recoveries != NULL && p->recoveries[i].transient != NULL; i++) {
		const CsRecovery *r = &p->recoveries[i];
		if (!g_strv_contains(p->states, r->transient) ||
		    !strv_contains_nonnull(p->states, r->stable)) {
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "recovery %s → %s names an unknown state", r->transient,
				    r->stable != NULL ? r->stable : "?");
			return FALSE;
		}
	}
	for (guint i = 0; p->attrs != NULL && p->attrs[i].name != NULL; i++) {
		if (p->attrs[i].property == NULL ||
		    !g_regex_match_simple("^[A-Z][A-Za-z]{0,63}$", p->attrs[i].property, 0, 0)) {
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "attribute %s: no D-Bus property name", p->attrs[i].name);
			return FALSE;
		}
	}
	for (guint i = 0; p->editable_states != NULL && p->editable_states[i] != NULL; i++) {
		if (!g_strv_contains(p->states, p->editable_states[i])) {
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "editable state %s is not among its states",
				    p->editable_states[i]);
			return FALSE;
		}
	}
	for (guint i = 0; i < p->n_fields; i++) {
		const CsFieldSpec *f = &p->fields[i];
		if (f->name == NULL || f->subject_types == 0 ||
		    (f->type == CS_FIELD_ENUM && f->choices == NULL)) {
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "field %u is malformed", i);
			return FALSE;
		}
	}
	for (guint i = 0; i < p->n_materials; i++) {
		const CsMaterialSpec *m = &p->materials[i];
		if (m->kind == NULL || m->subject_types == 0 ||
		    !g_regex_match_simple("^[a-z][a-z0-9_]{0,31}$", m->kind, 0, 0)) {
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "material %u is malformed", i);
			return FALSE;
		}
	}
	for (guint i = 0; p->material_states != NULL && p->material_states[i] != NULL; i++) {
		if (!g_strv_contains(p->states, p->material_states[i])) {
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "material state %s is not among its states",
				    p->material_states[i]);
			return FALSE;
		}
	}
	return TRUE;
}

CsLoadedPlugin *
cs_loader_load_plugin(const char *path, gboolean test_mode, GError **error)
{
	g_autoptr(CsLoadedPlugin) loaded = g_new0(CsLoadedPlugin, 1);
	gpointer entry = NULL;

	loaded->path = g_strdup(path);
	loaded->module =
	    open_module(path, test_mode, CS_PLUGIN_ABI_MAJOR_SYMBOL, CS_PLUGIN_ABI_MINOR_SYMBOL,
			CS_PLUGIN_ABI_MAJOR, CS_PLUGIN_ABI_MINOR, &loaded->abi_minor, error);
	if (loaded->module == NULL)
		return NULL;
	if (!g_module_symbol(loaded->module, CS_PLUGIN_ENTRY_SYMBOL, &entry) || entry == NULL) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "missing symbol %s",
			    CS_PLUGIN_ENTRY_SYMBOL);
		return NULL;
	}
	loaded->plugin = ((CsPluginGetFunc)entry)();
	if (loaded->plugin == NULL) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "%s returned nothing",
			    CS_PLUGIN_ENTRY_SYMBOL);
		return NULL;
	}
	/* Minors only append members: copy what an older plugin's table has into a
	 * zero-filled current one, never reading past its end. */
	if (loaded->abi_minor < CS_PLUGIN_ABI_MINOR) {
		/* The size of the table at each older minor of this major. */
		static const gsize size_of_minor[] = {G_STRUCT_OFFSET(CsPlugin, prepare_order),
						      sizeof(CsPlugin)};
		loaded->upgraded = g_new0(CsPlugin, 1);
		memcpy(loaded->upgraded, loaded->plugin, size_of_minor[loaded->abi_minor]);
		loaded->plugin = loaded->upgraded;
	}
	if (!check_plugin_declarations(loaded->plugin, error))
		return NULL;
	return g_steal_pointer(&loaded);
}

CsLoadedDriver *
cs_loader_load_driver(const char *path, gboolean test_mode, GError **error)
{
	g_autoptr(CsLoadedDriver) loaded = g_new0(CsLoadedDriver, 1);
	gpointer entry = NULL;

	loaded->path = g_strdup(path);
	loaded->module =
	    open_module(path, test_mode, CS_DRIVER_ABI_MAJOR_SYMBOL, CS_DRIVER_ABI_MINOR_SYMBOL,
			CS_DRIVER_ABI_MAJOR, CS_DRIVER_ABI_MINOR, &loaded->abi_minor, error);
	if (loaded->module == NULL)
		return NULL;
	if (!g_module_symbol(loaded->module, CS_DRIVER_ENTRY_SYMBOL, &entry) || entry == NULL) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "missing symbol %s",
			    CS_DRIVER_ENTRY_SYMBOL);
		return NULL;
	}
	loaded->ops = ((CsDriverGetOpsFunc)entry)();
	/* Minor 0's table ends with delete_object; a shorter table is not a driver. */
	if (loaded->ops == NULL ||
	    loaded->ops->size < G_STRUCT_OFFSET(CsDriverOps, delete_object) + sizeof(gpointer)) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "operations table missing or too short");
		return NULL;
	}
	if (loaded->ops->name == NULL ||
	    !g_regex_match_simple("^[a-z0-9_-]{1,32}$", loaded->ops->name, 0, 0)) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "driver name missing or not [a-z0-9_-]");
		return NULL;
	}
	if (loaded->ops->init == NULL || loaded->ops->shutdown == NULL) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "init and shutdown are required operations");
		return NULL;
	}
	return g_steal_pointer(&loaded);
}

static gint
compare_paths(gconstpointer a, gconstpointer b)
{
	return g_strcmp0(*(const char *const *)a, *(const char *const *)b);
}

static GPtrArray *
list_modules(const char *dir)
{
	g_autoptr(GDir) d = NULL;
	g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);
	const char *name;

	d = g_dir_open(dir, 0, NULL);
	if (d == NULL)
		return g_steal_pointer(&paths);
	while ((name = g_dir_read_name(d)) != NULL) {
		if (g_str_has_suffix(name, ".so"))
			g_ptr_array_add(paths, g_build_filename(dir, name, NULL));
	}
	g_ptr_array_sort(paths, compare_paths);
	return g_steal_pointer(&paths);
}

GPtrArray *
cs_loader_load_plugins(const char *dir, gboolean test_mode)
{
	g_autoptr(GPtrArray) paths = list_modules(dir);
	GPtrArray *loaded = g_ptr_array_new_with_free_func((GDestroyNotify)cs_loaded_plugin_free);

	for (guint i = 0; i < paths->len; i++) {
		const char *path = g_ptr_array_index(paths, i);
		g_autoptr(GError) error = NULL;
		g_autoptr(CsLoadedPlugin) p = cs_loader_load_plugin(path, test_mode, &error);
		gboolean duplicate = FALSE;

		if (p == NULL) {
			g_warning("%s: refused: %s", path, error->message);
			continue;
		}
		for (guint j = 0; j < loaded->len; j++) {
			CsLoadedPlugin *other = g_ptr_array_index(loaded, j);
			if (g_strcmp0(other->plugin->kind, p->plugin->kind) == 0)
				duplicate = TRUE;
		}
		if (duplicate) {
			g_warning("%s: refused: kind %s is already provided", path,
				  p->plugin->kind);
			continue;
		}
		g_info("%s: loaded flow plugin %s (ABI %d.%d)", path, p->plugin->kind,
		       CS_PLUGIN_ABI_MAJOR, p->abi_minor);
		g_ptr_array_add(loaded, g_steal_pointer(&p));
	}
	return loaded;
}

GPtrArray *
cs_loader_load_drivers(const char *dir, gboolean test_mode)
{
	g_autoptr(GPtrArray) paths = list_modules(dir);
	GPtrArray *loaded = g_ptr_array_new_with_free_func((GDestroyNotify)cs_loaded_driver_free);

	for (guint i = 0; i < paths->len; i++) {
		const char *path = g_ptr_array_index(paths, i);
		g_autoptr(GError) error = NULL;
		g_autoptr(CsLoadedDriver) d = cs_loader_load_driver(path, test_mode, &error);
		gboolean duplicate = FALSE;

		if (d == NULL) {
			g_warning("%s: refused: %s", path, error->message);
			continue;
		}
		for (guint j = 0; j < loaded->len; j++) {
			CsLoadedDriver *other = g_ptr_array_index(loaded, j);
			if (g_strcmp0(other->ops->name, d->ops->name) == 0)
				duplicate = TRUE;
		}
		if (duplicate) {
			g_warning("%s: refused: driver %s is already loaded", path, d->ops->name);
			continue;
		}
		g_info("%s: loaded driver %s (ABI %d.%d)", path, d->ops->name, CS_DRIVER_ABI_MAJOR,
		       d->abi_minor);
		g_ptr_array_add(loaded, g_steal_pointer(&d));
	}
	return loaded;
}

/* The contract every hook obeys, enforced in one place. */
static gboolean
plugin_result(const CsPlugin *plugin, const char *hook, gboolean ok, GError *local, GError **error)
{
	if (ok && local != NULL) {
		g_warning("plugin %s: %s succeeded but set an error (%s); ignoring it",
			  plugin->kind, hook, local->message);
		g_error_free(local);
		return TRUE;
	}
	if (ok)
		return TRUE;
	if (local == NULL) {
		g_warning("plugin %s: %s failed without an error", plugin->kind, hook);
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s: %s failed", plugin->kind,
			    hook);
		return FALSE;
	}
	/* Input errors are the user's to read: they already name the field. Others get the
	 * plugin's name so a log line says who failed. */
	if (local->domain != CS_ERROR || local->code == CS_ERROR_INTERNAL)
		g_prefix_error(&local, "%s: ", plugin->kind);
	g_propagate_error(error, local);
	return FALSE;
}

gboolean
cs_plugin_run_init(const CsPlugin *plugin, GError **error)
{
	GError *local = NULL;
	gboolean ok;

	if (plugin->init == NULL)
		return TRUE;
	g_debug("plugin %s: init", plugin->kind);
	ok = plugin->init(&local);
	return plugin_result(plugin, "init", ok, local, error);
}

gboolean
cs_plugin_run_check_fields(const CsPlugin *plugin,
			   CsSubjectType subject_type,
			   GVariant *fields,
			   GError **error)
{
	GError *local = NULL;
	gboolean ok;

	if (plugin->check_fields == NULL)
		return TRUE;
	g_debug("plugin %s: check_fields", plugin->kind);
	ok = plugin->check_fields(subject_type, fields, &local);
	return plugin_result(plugin, "check_fields", ok, local, error);
}

gboolean
cs_plugin_run_prepare_order(const CsPlugin *plugin, CsCreate *create, GError **error)
{
	GError *local = NULL;
	gboolean ok;

	if (plugin->prepare_order == NULL)
		return TRUE;
	g_debug("plugin %s: prepare_order", plugin->kind);
	ok = plugin->prepare_order(create, &local);
	return plugin_result(plugin, "prepare_order", ok, local, error);
}

gboolean
cs_plugin_run_step(
    const CsPlugin *plugin, const char *hook, CsStepFunc func, CsStep *step, GError **error)
{
	GError *local = NULL;
	g_autofree char *name = NULL;
	gboolean ok;

	if (func == NULL)
		return TRUE;
	name = g_strdup_printf("%s %s", hook, cs_step_get_transition(step)->action);
	g_debug("plugin %s: %s", plugin->kind, name);
	ok = func(step, &local);
	return plugin_result(plugin, name, ok, local, error);
}

void
cs_plugin_run_after(const CsPlugin *plugin, CsStepAfterFunc func, CsStep *step)
{
	if (func == NULL)
		return;
	g_debug("plugin %s: after %s", plugin->kind, cs_step_get_transition(step)->action);
	func(step);
}

static CsErrorCode
driver_status_to_code(CsDriverStatus status)
{
	switch (status) {
	case CS_DRIVER_ERR_PIN_INCORRECT:
		return CS_ERROR_PIN_INCORRECT;
	case CS_DRIVER_ERR_PIN_LOCKED:
		return CS_ERROR_PIN_LOCKED;
	case CS_DRIVER_ERR_TOKEN_REMOVED:
		return CS_ERROR_KEY_REMOVED;
	case CS_DRIVER_ERR_NOT_FOUND:
		return CS_ERROR_NO_KEY;
	case CS_DRIVER_ERR_BAD_ARGUMENT:
		return CS_ERROR_INVALID_INPUT;
	case CS_DRIVER_ERR_TIMEOUT:
		return CS_ERROR_UNAVAILABLE;
	default:
		return CS_ERROR_INTERNAL;
	}
}

/* Turn a driver's status and error record into our GError, or say it broke the contract. */
static gboolean
driver_result(const CsLoadedDriver *driver,
	      const char *op,
	      CsDriverStatus status,
	      CsDriverError *err,
	      GError **error)
{
	if (status == CS_DRIVER_OK)
		return TRUE;
	err->message[sizeof(err->message) - 1] = '\0';
	if (err->message[0] == '\0') {
		g_warning("driver %s: %s failed (status %d) without a message", driver->ops->name,
			  op, (int)status);
		g_strlcpy(err->message, "failed", sizeof(err->message));
	}
	if (status == CS_DRIVER_ERR_PIN_INCORRECT && err->tries_left >= 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_PIN_INCORRECT, "%s: %s: %s (%d tries left)",
			    driver->ops->name, op, err->message, err->tries_left);
		return FALSE;
	}
	g_set_error(error, CS_ERROR, driver_status_to_code(status), "%s: %s: %s", driver->ops->name,
		    op, err->message);
	return FALSE;
}

gboolean
cs_driver_run_init(const CsLoadedDriver *driver,
		   const CsDriverConfig *config,
		   CsDriverContext **ctx,
		   GError **error)
{
	CsDriverError err = {.status = CS_DRIVER_OK, .tries_left = -1};
	CsDriverStatus status;

	g_debug("driver %s: init for vendor %s", driver->ops->name, config->vendor_id);
	*ctx = NULL;
	status = driver->ops->init(config, ctx, &err);
	return driver_result(driver, "init", status, &err, error);
}

void
cs_driver_run_shutdown(const CsLoadedDriver *driver, CsDriverContext *ctx)
{
	g_debug("driver %s: shutdown", driver->ops->name);
	driver->ops->shutdown(ctx);
}

/* --- token operations --------------------------------------------------------------- */

#define DRIVER_ERR_INIT                                                                            \
	{                                                                                          \
		.status = CS_DRIVER_OK, .tries_left = -1                                           \
	}

static gboolean
not_supported(const CsLoadedDriver *driver, const char *op, GError **error)
{
	g_set_error(error, CS_ERROR, CS_ERROR_UNAVAILABLE, "%s: %s: not supported by this driver",
		    driver->ops->name, op);
	return FALSE;
}

gboolean
cs_driver_run_enumerate(const CsLoadedDriver *driver,
			CsDriverContext *ctx,
			GArray *tokens,
			GError **error)
{
	CsDriverError err = DRIVER_ERR_INIT;
	g_autofree CsDriverTokenInfo *found = NULL;
	size_t room = 64, n = 0;
	CsDriverStatus status;

	if (!cs_driver_has_op(driver, enumerate))
		return not_supported(driver, "enumerate", error);
	/* A maker's desk may hold hundreds of keys: as much room as the driver says it
	 * needs (asked again a few times while keys keep arriving, then what fits). */
	for (int attempt = 0;; attempt++) {
		found = g_renew(CsDriverTokenInfo, found, room);
		memset(found, 0, room * sizeof(*found));
		n = 0;
		status = driver->ops->enumerate(ctx, found, room, &n, &err);
		if (!driver_result(driver, "enumerate", status, &err, error))
			return FALSE;
		if (n <= room || attempt == 3)
			break;
		room = n + 16;
	}
	n = MIN(n, room);
	for (size_t i = 0; i < n; i++) {
		CsDriverTokenInfo *t = &found[i];
		t->serial[sizeof(t->serial) - 1] = t->label[sizeof(t->label) - 1] = '\0';
		t->manufacturer[sizeof(t->manufacturer) - 1] = t->model[sizeof(t->model) - 1] =
		    '\0';
		g_array_append_val(tokens, *t);
	}
	return TRUE;
}

gboolean
cs_driver_run_wait_for_event(const CsLoadedDriver *driver,
			     CsDriverContext *ctx,
			     int timeout_ms,
			     gboolean *supported,
			     GError **error)
{
	CsDriverError err = DRIVER_ERR_INIT;

	*supported = cs_driver_has_op(driver, wait_for_event);
	if (!*supported)
		return not_supported(driver, "wait_for_event", error);
	return driver_result(driver, "wait_for_event",
			     driver->ops->wait_for_event(ctx, timeout_ms, &err), &err, error);
}

gboolean
cs_driver_run_pin_status(const CsLoadedDriver *driver,
			 CsDriverContext *ctx,
			 const char *serial,
			 CsDriverPinStatus *status,
			 GError **error)
{
	CsDriverError err = DRIVER_ERR_INIT;

	memset(status, 0, sizeof(*status));
	status->tries_left = -1;
	status->initialized = 1;
	if (!cs_driver_has_op(driver, pin_status))
		return not_supported(driver, "pin_status", error);
	return driver_result(driver, "pin_status",
			     driver->ops->pin_status(ctx, serial, status, &err), &err, error);
}

gboolean
cs_driver_run_login(const CsLoadedDriver *driver,
		    CsDriverContext *ctx,
		    const char *serial,
		    const char *pin,
		    GError **error)
{
	CsDriverError err = DRIVER_ERR_INIT;

	g_debug("driver %s: login on %s", driver->ops->name, serial);
	if (!cs_driver_has_op(driver, login))
		return not_supported(driver, "login", error);
	return driver_result(driver, "login", driver->ops->login(ctx, serial, pin, &err), &err,
			     error);
}

gboolean
cs_driver_run_logout(const CsLoadedDriver *driver,
		     CsDriverContext *ctx,
		     const char *serial,
		     GError **error)
{
	CsDriverError err = DRIVER_ERR_INIT;

	g_debug("driver %s: logout on %s", driver->ops->name, serial);
	if (!cs_driver_has_op(driver, logout))
		return not_supported(driver, "logout", error);
	return driver_result(driver, "logout", driver->ops->logout(ctx, serial, &err), &err, error);
}

gboolean
cs_driver_run_change_pin(const CsLoadedDriver *driver,
			 CsDriverContext *ctx,
			 const char *serial,
			 const char *old_pin,
			 const char *new_pin,
			 GError **error)
{
	CsDriverError err = DRIVER_ERR_INIT;

	g_debug("driver %s: change_pin on %s", driver->ops->name, serial);
	if (!cs_driver_has_op(driver, change_pin))
		return not_supported(driver, "change_pin", error);
	return driver_result(driver, "change_pin",
			     driver->ops->change_pin(ctx, serial, old_pin, new_pin, &err), &err,
			     error);
}

gboolean
cs_driver_run_unblock(const CsLoadedDriver *driver,
		      CsDriverContext *ctx,
		      const char *serial,
		      const char *so_pin,
		      const char *new_pin,
		      GError **error)
{
	CsDriverError err = DRIVER_ERR_INIT;

	g_debug("driver %s: unblock on %s", driver->ops->name, serial);
	if (!cs_driver_has_op(driver, unblock))
		return not_supported(driver, "unblock", error);
	return driver_result(driver, "unblock",
			     driver->ops->unblock(ctx, serial, so_pin, new_pin, &err), &err, error);
}

gboolean
cs_driver_run_init_token(const CsLoadedDriver *driver,
			 CsDriverContext *ctx,
			 const char *serial,
			 const char *label,
			 const char *user_pin,
			 const char *so_pin,
			 GError **error)
{
	CsDriverError err = DRIVER_ERR_INIT;

	g_debug("driver %s: init_token on %s", driver->ops->name, serial);
	if (!cs_driver_has_op(driver, init_token))
		return not_supported(driver, "init_token", error);
	return driver_result(driver, "init_token",
			     driver->ops->init_token(ctx, serial, label, user_pin, so_pin, &err),
			     &err, error);
}

GBytes *
cs_driver_run_generate_key(const CsLoadedDriver *driver,
			   CsDriverContext *ctx,
			   const char *serial,
			   const char *key_id,
			   const char *algorithm,
			   GError **error)
{
	CsDriverError err = DRIVER_ERR_INIT;
	unsigned char spki[4096];
	size_t len = sizeof(spki);

	g_debug("driver %s: generate_key %s on %s", driver->ops->name, algorithm, serial);
	if (!cs_driver_has_op(driver, generate_key)) {
		not_supported(driver, "generate_key", error);
		return NULL;
	}
	if (!driver_result(
		driver, "generate_key",
		driver->ops->generate_key(ctx, serial, key_id, algorithm, spki, &len, &err), &err,
		error))
		return NULL;
	return g_bytes_new(spki, MIN(len, sizeof(spki)));
}

GBytes *
cs_driver_run_get_public_key(const CsLoadedDriver *driver,
			     CsDriverContext *ctx,
			     const char *serial,
			     const char *key_id,
			     GError **error)
{
	CsDriverError err = DRIVER_ERR_INIT;
	unsigned char spki[4096];
	size_t len = sizeof(spki);

	if (!cs_driver_has_op(driver, get_public_key)) {
		not_supported(driver, "get_public_key", error);
		return NULL;
	}
	if (!driver_result(driver, "get_public_key",
			   driver->ops->get_public_key(ctx, serial, key_id, spki, &len, &err), &err,
			   error))
		return NULL;
	return g_bytes_new(spki, MIN(len, sizeof(spki)));
}

GBytes *
cs_driver_run_sign(const CsLoadedDriver *driver,
		   CsDriverContext *ctx,
		   const char *serial,
		   const char *key_id,
		   const char *digest,
		   GBytes *tbs,
		   GError **error)
{
	CsDriverError err = DRIVER_ERR_INIT;
	unsigned char sig[1024];
	size_t len = sizeof(sig);
	gsize tbs_len = 0;
	const unsigned char *data = g_bytes_get_data(tbs, &tbs_len);

	if (!cs_driver_has_op(driver, sign)) {
		not_supported(driver, "sign", error);
		return NULL;
	}
	if (!driver_result(
		driver, "sign",
		driver->ops->sign(ctx, serial, key_id, digest, data, tbs_len, sig, &len, &err),
		&err, error))
		return NULL;
	return g_bytes_new(sig, MIN(len, sizeof(sig)));
}

gboolean
cs_driver_run_put_object(const CsLoadedDriver *driver,
			 CsDriverContext *ctx,
			 const char *serial,
			 gboolean is_certificate,
			 const char *label,
			 GBytes *data,
			 GError **error)
{
	CsDriverError err = DRIVER_ERR_INIT;
	gsize len = 0;
	const unsigned char *p = g_bytes_get_data(data, &len);

	g_debug("driver %s: put_object %s on %s", driver->ops->name, label, serial);
	if (!cs_driver_has_op(driver, put_object))
		return not_supported(driver, "put_object", error);
	return driver_result(
	    driver, "put_object",
	    driver->ops->put_object(ctx, serial, is_certificate, label, p, len, &err), &err, error);
}

GBytes *
cs_driver_run_get_object(const CsLoadedDriver *driver,
			 CsDriverContext *ctx,
			 const char *serial,
			 gboolean is_certificate,
			 const char *label,
			 GError **error)
{
	CsDriverError err = DRIVER_ERR_INIT;
	g_autofree unsigned char *buf = g_malloc(16384);
	size_t len = 16384;
	CsDriverStatus status;

	if (!cs_driver_has_op(driver, get_object)) {
		not_supported(driver, "get_object", error);
		return NULL;
	}
	status = driver->ops->get_object(ctx, serial, is_certificate, label, buf, &len, &err);
	if (status == CS_DRIVER_ERR_BAD_ARGUMENT && len > 16384 && len <= 16 * 1024 * 1024) {
		g_free(buf);
		buf = g_malloc(len);
		err = (CsDriverError)DRIVER_ERR_INIT;
		status =
		    driver->ops->get_object(ctx, serial, is_certificate, label, buf, &len, &err);
	}
	if (status == CS_DRIVER_ERR_NOT_FOUND) {
		g_set_error(error, CS_ERROR, CS_ERROR_NOT_FOUND, "%s: %s", driver->ops->name,
			    err.message[0] != '\0' ? err.message : "no such object");
		return NULL;
	}
	if (!driver_result(driver, "get_object", status, &err, error))
		return NULL;
	return g_bytes_new_take(g_steal_pointer(&buf), len);
}

gboolean
cs_driver_run_delete_object(const CsLoadedDriver *driver,
			    CsDriverContext *ctx,
			    const char *serial,
			    gboolean is_certificate,
			    const char *label,
			    GError **error)
{
	CsDriverError err = DRIVER_ERR_INIT;

	if (!cs_driver_has_op(driver, delete_object))
		return not_supported(driver, "delete_object", error);
	return driver_result(driver, "delete_object",
			     driver->ops->delete_object(ctx, serial, is_certificate, label, &err),
			     &err, error);
}

gboolean
cs_driver_run_delete_key(const CsLoadedDriver *driver,
			 CsDriverContext *ctx,
			 const char *serial,
			 const char *key_id,
			 GError **error)
{
	CsDriverError err = DRIVER_ERR_INIT;

	if (!cs_driver_has_op(driver, delete_key))
		return not_supported(driver, "delete_key", error);
	return driver_result(driver, "delete_key",
			     driver->ops->delete_key(ctx, serial, key_id, &err), &err, error);
}

gboolean
cs_driver_probe_init(const CsLoadedDriver *driver,
		     const CsDriverConfig *config,
		     guint timeout_ms,
		     GError **error)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
	int status = 0;
	pid_t pid = fork();

	if (pid < 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "cannot fork: %s",
			    g_strerror(errno));
		return FALSE;
	}
	if (pid == 0) {
		CsDriverError err = {.status = CS_DRIVER_OK, .tries_left = -1};
		CsDriverContext *ctx = NULL;
		CsDriverStatus st = driver->ops->init(config, &ctx, &err);
		if (st == CS_DRIVER_OK)
			driver->ops->shutdown(ctx);
		_exit(st == CS_DRIVER_OK ? 0 : 3);
	}
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (g_get_monotonic_time() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			g_set_error(error, CS_ERROR, CS_ERROR_UNAVAILABLE,
				    "%s: init did not return within %u ms", driver->ops->name,
				    timeout_ms);
			return FALSE;
		}
		g_usleep(10000);
	}
	if (WIFEXITED(status) && (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 3))
		return TRUE;
	if (WIFSIGNALED(status))
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s: init crashed (signal %d)",
			    driver->ops->name, WTERMSIG(status));
	else
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s: init crashed (exit status %d)",
			    driver->ops->name, WEXITSTATUS(status));
	return FALSE;
}
