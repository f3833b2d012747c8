/*
 * cs-daemon.c — start-up, the main loop and shutdown of certseald.
 *
 * Start-up order: configuration → state directory → vault → ledger (migrated and verified
 * from the last checkpoint) → engine → flow plugins → drivers → recovery of transient
 * states → D-Bus objects → bus name → READY=1. Shutdown runs it backwards after the main
 * loop ends: the bus name is released first so no new call arrives while the ledger
 * closes. Refusals before the loop starts are fatal; a module that fails to load or
 * initialise is not: the daemon runs on without it.
 */
#define G_LOG_DOMAIN "certseald"

#include <errno.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <systemd/sd-daemon.h>

#include "cs-daemon.h"
#include "cs-build-config.h"
#include "cs-loader.h"
#include "cs-office.h"

typedef struct {
	const CsLoadedDriver *driver;
	const CsVendor *vendor;
	CsDriverContext *ctx;
} VendorDriver;

struct _CsDaemon {
	CsConfig *config;
	char *state_dir;
	CsBusType bus_type;
	CsVault *vault;
	CsLedger *ledger;
	CsEngine *engine;
	GPtrArray *plugins; /* CsLoadedPlugin */
	GPtrArray *drivers; /* CsLoadedDriver */
	GArray *vendor_drivers; /* VendorDriver */
	CsDbus *dbus;
	CsOffice *office; /* the office front (ZeroMQ), started with the engine */
	GMainLoop *loop;
};

static gboolean
ensure_state_dir(const char *dir, GError **error)
{
	if (g_mkdir_with_parents(dir, 0700) != 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "state directory %s: %s", dir,
			    g_strerror(errno));
		return FALSE;
	}
	return TRUE;
}

static void
add_plugins(CsDaemon *self)
{
	for (guint i = 0; i < self->plugins->len;) {
		CsLoadedPlugin *p = g_ptr_array_index(self->plugins, i);
		g_autoptr(GError) error = NULL;

		if (!cs_engine_add_plugin(self->engine, p->plugin, &error)) {
			g_warning("%s: refused: init failed: %s", p->path, error->message);
			g_ptr_array_remove_index(self->plugins, i);
			continue;
		}
		i++;
	}
}

static const CsLoadedDriver *
find_driver(CsDaemon *self, const char *name)
{
	for (guint i = 0; i < self->drivers->len; i++) {
		const CsLoadedDriver *d = g_ptr_array_index(self->drivers, i);
		if (g_strcmp0(d->ops->name, name) == 0)
			return d;
	}
	return NULL;
}

/* Each vendor profile initialises its driver once; a failure costs that vendor only. */
static void
init_vendor_drivers(CsDaemon *self)
{
	for (guint i = 0; i < self->config->vendors->len; i++) {
		const CsVendor *v = g_ptr_array_index(self->config->vendors, i);
		const CsLoadedDriver *d = find_driver(self, v->driver);
		g_autofree char *driver_state = NULL;
		g_autoptr(GError) error = NULL;
		VendorDriver vd = {d, v, NULL};
		CsDriverConfig cfg;

		if (d == NULL) {
			g_message("vendor %s: driver %s is not loaded; its keys will not be seen",
				  v->id, v->driver);
			continue;
		}
		driver_state = g_build_filename(self->state_dir, "drivers", v->id, NULL);
		if (g_mkdir_with_parents(driver_state, 0700) != 0) {
			g_warning("vendor %s: cannot create %s: %s", v->id, driver_state,
				  g_strerror(errno));
			continue;
		}
		cfg = (CsDriverConfig){
		    .vendor_id = v->id,
		    .module = v->module,
		    .manufacturer = v->manufacturer,
		    .model = v->model,
		    .key_algorithm = v->key_algorithm,
		    .pin_min_length = v->pin_min_length,
		    .pin_max_length = v->pin_max_length,
		    .pin_max_tries = v->pin_max_tries,
		    .state_dir = driver_state,
		};
		if (!cs_driver_run_init(d, &cfg, &vd.ctx, &error)) {
			g_warning("vendor %s: %s: refused: %s", v->id, d->path, error->message);
			continue;
		}
		g_array_append_val(self->vendor_drivers, vd);
	}
}

CsDaemon *
cs_daemon_new(const CsDaemonOptions *options, GError **error)
{
	g_autoptr(CsDaemon) self = g_new0(CsDaemon, 1);
	g_autofree char *ledger_path = NULL;
	guint recovered = 0;

	self->bus_type = options->bus_type;
	self->vendor_drivers = g_array_new(FALSE, TRUE, sizeof(VendorDriver));
	self->config = cs_config_load(options->config_path, error);
	if (self->config == NULL || !cs_config_load_vendors(self->config, error))
		return NULL;
	self->state_dir = g_strdup(options->state_dir != NULL ? options->state_dir
							      : self->config->state_dir);
	if (!ensure_state_dir(self->state_dir, error))
		return NULL;
	self->vault = cs_vault_open(self->state_dir, error);
	if (self->vault == NULL)
		return NULL;
	ledger_path = g_build_filename(self->state_dir, "ledger.db", NULL);
	self->ledger = cs_ledger_open(ledger_path, self->vault, self->config->checkpoint_interval,
				      error);
	if (self->ledger == NULL)
		return NULL;
	if (cs_ledger_get_backup_path(self->ledger) != NULL)
		g_message("ledger migrated to schema %d; the previous file is kept at %s",
			  cs_ledger_get_schema_version(self->ledger),
			  cs_ledger_get_backup_path(self->ledger));

	self->engine = cs_engine_new(self->config, self->ledger);
	self->plugins = cs_loader_load_plugins(self->config->plugin_dir, self->config->test_mode);
	add_plugins(self);
	self->drivers = cs_loader_load_drivers(self->config->driver_dir, self->config->test_mode);
	init_vendor_drivers(self);

	if (!cs_engine_recover(self->engine, &recovered, error))
		return NULL;
	if (recovered > 0)
		g_message("%u order(s) in a transient state went back to their last stable state",
			  recovered);
	self->office = cs_office_new(self->engine, self->vault, self->state_dir, error);
	if (self->office == NULL)
		return NULL;
	return g_steal_pointer(&self);
}

static gboolean
on_signal(gpointer user_data)
{
	CsDaemon *self = user_data;

	g_message("stopping");
	sd_notify(0, "STOPPING=1");
	g_main_loop_quit(self->loop);
	return G_SOURCE_CONTINUE;
}

gboolean
cs_daemon_run(CsDaemon *self, GError **error)
{
	g_autoptr(GPtrArray) names = g_ptr_array_new();
	guint sigterm, sigint;

	for (guint i = 0; i < self->drivers->len; i++) {
		const CsLoadedDriver *d = g_ptr_array_index(self->drivers, i);
		g_ptr_array_add(names, (gpointer)d->ops->name);
	}
	g_ptr_array_add(names, NULL);

	self->dbus = cs_dbus_new(self->engine, (const char *const *)names->pdata, self->bus_type,
				 error);
	if (self->dbus == NULL)
		return FALSE;
	self->loop = g_main_loop_new(NULL, FALSE);
	sigterm = g_unix_signal_add(SIGTERM, on_signal, self);
	sigint = g_unix_signal_add(SIGINT, on_signal, self);

	g_message("certseald %s ready on the %s bus as %s (state in %s)", CS_VERSION,
		  self->bus_type == CS_BUS_SESSION ? "session" : "system",
		  cs_dbus_get_unique_name(self->dbus), self->state_dir);
	sd_notify(0, "READY=1");
	g_main_loop_run(self->loop);

	g_source_remove(sigterm);
	g_source_remove(sigint);
	return TRUE;
}

CsEngine *
cs_daemon_get_engine(CsDaemon *self)
{
	return self->engine;
}

CsLedger *
cs_daemon_get_ledger(CsDaemon *self)
{
	return self->ledger;
}

void
cs_daemon_free(CsDaemon *self)
{
	if (self == NULL)
		return;
	g_clear_pointer(&self->dbus, cs_dbus_free);
	g_clear_pointer(&self->office, cs_office_free);
	for (guint i = 0; i < self->vendor_drivers->len; i++) {
		VendorDriver *vd = &g_array_index(self->vendor_drivers, VendorDriver, i);
		cs_driver_run_shutdown(vd->driver, vd->ctx);
	}
	g_array_unref(self->vendor_drivers);
	g_clear_pointer(&self->engine, cs_engine_free);
	g_clear_pointer(&self->plugins, g_ptr_array_unref);
	g_clear_pointer(&self->drivers, g_ptr_array_unref);
	g_clear_pointer(&self->ledger, cs_ledger_free);
	g_clear_pointer(&self->vault, cs_vault_free);
	g_clear_pointer(&self->config, cs_config_free);
	g_clear_pointer(&self->loop, g_main_loop_unref);
	g_free(self->state_dir);
	g_free(self);
}
