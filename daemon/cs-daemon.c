/*
 * cs-daemon.c — start-up, the main loop and shutdown of certseald.
 *
 * Start-up order: configuration → state directory and its lock → vault → ledger (migrated
 * and verified from the last checkpoint) → each vendor's CA (created on first start) →
 * engine → flow plugins → drivers → recovery of transient states → D-Bus objects → bus
 * name → READY=1 → the whole ledger verified in the background (a failure makes the daemon
 * read-only: every write is refused as Unavailable). Shutdown runs it backwards after the main loop
 * ends: the bus name is released first so no new call arrives while the ledger closes, under a
 * deadline (shutdown_timeout_ms) so a hung module never blocks exit. Refusals before the loop
 * starts are fatal; a module that fails to load or initialise is not: the daemon runs on without
 * it.
 *
 * One daemon per state directory: an exclusive lock on <state_dir>/lock, taken before the
 * vault or the ledger is touched, because two daemons would each cache orders and could
 * record transitions the other one already made impossible.
 */
#define G_LOG_DOMAIN "certseald"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <systemd/sd-daemon.h>

#include "cs-daemon.h"
#include "cs-build-config.h"
#include "cs-ca.h"
#include "cs-clock.h"
#include "cs-dbus-keys.h"
#include "cs-draw.h"
#include "cs-keys.h"
#include "cs-loader.h"
#include "cs-office.h"
#include "cs-payments.h"
#include "cs-queue.h"
#include "cs-reminders.h"
#include "cs-signal.h"
#include "cs-tasks.h"

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
	CsCaSet *cas; /* the embedded CA of every vendor (docs/architecture.md §4) */
	CsEngine *engine;
	GPtrArray *plugins;	/* CsLoadedPlugin */
	GPtrArray *drivers;	/* CsLoadedDriver */
	GArray *vendor_drivers; /* VendorDriver */
	CsDbus *dbus;
	CsKeys *keys; /* the inserted USB keys, watched through the drivers */
	CsDbusKeys *dbus_keys;
	CsTasks *tasks;		/* the durable task queue, in the ledger */
	CsQueue *queue;		/* the office tasks the flows' states wait for */
	CsPayments *payments;	/* StartPayment calls waiting for a cashier */
	CsReminders *reminders; /* expiry reminders, checked on the main loop */
	guint crl_refresh;	/* the timer re-issuing the CRLs before their nextUpdate */
	CsOffice *office;	/* the office front (ZeroMQ), started with the engine */
	GMainLoop *loop;
	GCancellable *verifying; /* the background verification of the whole ledger */
	int lock_fd;
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

static gboolean
lock_state_dir(CsDaemon *self, GError **error)
{
	g_autofree char *path = g_build_filename(self->state_dir, "lock", NULL);

	self->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (self->lock_fd < 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s: %s", path, g_strerror(errno));
		return FALSE;
	}
	if (flock(self->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		int saved = errno;
		g_set_error(error, CS_ERROR, CS_ERROR_UNAVAILABLE,
			    "state directory %s is in use by another certseald (%s)",
			    self->state_dir,
			    saved == EWOULDBLOCK ? "its lock is held" : g_strerror(saved));
		return FALSE;
	}
	return TRUE;
}

/* A ledger without its vault key has secrets nobody can open: never paper over that by
 * creating a new key. */
static gboolean
check_vault_key(CsDaemon *self, GError **error)
{
	g_autofree char *ledger = g_build_filename(self->state_dir, "ledger.db", NULL);
	g_autofree char *key = g_build_filename(self->state_dir, "vault.key", NULL);

	if (!g_file_test(ledger, G_FILE_TEST_EXISTS) || g_file_test(key, G_FILE_TEST_EXISTS))
		return TRUE;
	g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL,
		    "%s is missing while %s exists: the secrets sealed in the ledger need it; "
		    "restore it from a backup (a new key is not created for an existing ledger)",
		    key, ledger);
	return FALSE;
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

/* A price for a kind no loaded flow provides is kept, but said: a typo in a vendor profile
 * should not go unnoticed. */
static void
warn_unknown_prices(CsDaemon *self)
{
	for (guint i = 0; i < self->config->vendors->len; i++) {
		const CsVendor *v = g_ptr_array_index(self->config->vendors, i);
		g_auto(GStrv) kinds = cs_vendor_get_price_kinds(v);
		for (guint j = 0; kinds[j] != NULL; j++) {
			if (cs_engine_find_plugin(self->engine, kinds[j]) == NULL)
				g_message(
				    "vendor %s: a price for '%s', which no loaded flow provides",
				    v->id, kinds[j]);
		}
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

static CsDriverConfig
vendor_driver_config(const CsVendor *v, const char *driver_state)
{
	return (CsDriverConfig){
	    .vendor_id = v->id,
	    .module = v->module,
	    .manufacturer = v->manufacturer,
	    .model = v->model,
	    .key_algorithm = v->key_algorithm,
	    .pin_min_length = v->pin_min_length,
	    .pin_max_length = v->pin_max_length,
	    .pin_max_tries = v->pin_max_tries,
	    .state_dir = driver_state,
	    .init_args = v->init_args,
	};
}

/* Every vendor's driver init runs once in a child before any runs here: a driver that
 * crashes (or hangs) in init costs its vendor only, not the daemon. */
static GArray *
probe_vendor_drivers(CsDaemon *self)
{
	GArray *ok = g_array_new(FALSE, TRUE, sizeof(gboolean));

	for (guint i = 0; i < self->config->vendors->len; i++) {
		const CsVendor *v = g_ptr_array_index(self->config->vendors, i);
		const CsLoadedDriver *d = find_driver(self, v->driver);
		g_autofree char *driver_state =
		    g_build_filename(self->state_dir, "drivers", v->id, NULL);
		g_autoptr(GError) error = NULL;
		CsDriverConfig cfg = vendor_driver_config(v, driver_state);
		gboolean good = d != NULL && g_mkdir_with_parents(driver_state, 0700) == 0 &&
				cs_driver_probe_init(d, &cfg, 10000, &error);

		if (error != NULL)
			g_warning("vendor %s: %s: refused: %s", v->id, d->path, error->message);
		g_array_append_val(ok, good);
	}
	return ok;
}

/* Each vendor profile initialises its driver once; a failure costs that vendor only. */
static void
init_vendor_drivers(CsDaemon *self)
{
	g_autoptr(GArray) probed = probe_vendor_drivers(self);

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
		cfg = vendor_driver_config(v, driver_state);
		if (!g_array_index(probed, gboolean, i))
			continue;
		if (!cs_driver_run_init(d, &cfg, &vd.ctx, &error)) {
			g_warning("vendor %s: %s: refused: %s", v->id, d->path, error->message);
			continue;
		}
		g_array_append_val(self->vendor_drivers, vd);
	}
}

/* Every CRL re-issued well before its nextUpdate, revocations or not. */
static gboolean
refresh_crls(gpointer data)
{
	CsDaemon *self = data;

	cs_ca_set_refresh_crls(self->cas, cs_clock_now());
	return G_SOURCE_CONTINUE;
}

CsDaemon *
cs_daemon_new(const CsDaemonOptions *options, GError **error)
{
	g_autoptr(CsDaemon) self = g_new0(CsDaemon, 1);
	g_autofree char *ledger_path = NULL;
	guint recovered = 0;

	self->bus_type = options->bus_type;
	self->lock_fd = -1;
	self->vendor_drivers = g_array_new(FALSE, TRUE, sizeof(VendorDriver));
	self->config = cs_config_load(options->config_path, error);
	if (self->config == NULL || !cs_config_load_vendors(self->config, error))
		return NULL;
	/* Business dates (a test may move them; never timeouts): before anything dates. */
	if (!cs_clock_init(self->config->test_mode, g_getenv(CS_CLOCK_ENV), error))
		return NULL;
	self->state_dir =
	    g_strdup(options->state_dir != NULL ? options->state_dir : self->config->state_dir);
	if (!ensure_state_dir(self->state_dir, error) || !lock_state_dir(self, error) ||
	    !check_vault_key(self, error))
		return NULL;
	self->vault = cs_vault_open(self->state_dir, error);
	if (self->vault == NULL)
		return NULL;
	ledger_path = g_build_filename(self->state_dir, "ledger.db", NULL);
	self->ledger =
	    cs_ledger_open(ledger_path, self->vault, self->config->checkpoint_interval, error);
	if (self->ledger == NULL) {
		/* A check value written by this start was never proven: not kept for a key
		 * that may be the wrong one. */
		if (cs_vault_check_value_is_new(self->vault)) {
			cs_vault_forget_check_value(self->vault);
			if (error != NULL && *error != NULL &&
			    strstr((*error)->message, "vault.key") == NULL) {
				char *msg = g_strdup_printf("%s (%s/vault.key had no check value "
							    "yet: is it the right key?)",
							    (*error)->message, self->state_dir);
				g_free((*error)->message);
				(*error)->message = msg;
			}
		}
		return NULL;
	}
	if (cs_ledger_get_backup_path(self->ledger) != NULL)
		g_message("ledger migrated to schema %d; the previous file is kept at %s",
			  cs_ledger_get_schema_version(self->ledger),
			  cs_ledger_get_backup_path(self->ledger));

	/* Each vendor's CA, created on first start in <state_dir>/ca/<vendor>. */
	self->cas = cs_ca_set_new(self->config, self->state_dir, self->ledger, error);
	if (self->cas == NULL)
		return NULL;

	self->engine = cs_engine_new(self->config, self->ledger);
	cs_engine_set_cas(self->engine, self->cas);
	cs_draw_set_module(self->config->draw_module, self->config->test_mode);
	self->plugins = cs_loader_load_plugins(self->config->plugin_dir, self->config->test_mode);
	add_plugins(self);
	self->drivers = cs_loader_load_drivers(self->config->driver_dir, self->config->test_mode);
	init_vendor_drivers(self);
	self->keys = cs_keys_new();
	cs_keys_set_login_idle(self->keys, self->config->key_login_idle_s);
	for (guint i = 0; i < self->vendor_drivers->len; i++) {
		VendorDriver *vd = &g_array_index(self->vendor_drivers, VendorDriver, i);
		cs_keys_add_vendor(self->keys, vd->vendor, vd->driver, vd->ctx);
	}

	if (!cs_engine_recover(self->engine, &recovered, error))
		return NULL;
	if (recovered > 0)
		g_message("%u order(s) in a transient state went back to their last stable state",
			  recovered);
	warn_unknown_prices(self);
	self->tasks = cs_tasks_new(self->ledger, self->vault, self->config, error);
	if (self->tasks == NULL)
		return NULL;
	self->queue = cs_queue_new(self->engine, self->tasks, error);
	if (self->queue == NULL)
		return NULL;
	self->payments = cs_payments_new(self->engine, self->tasks);
	self->office =
	    cs_office_new(self->engine, self->tasks, self->vault, self->state_dir, error);
	if (self->office == NULL)
		return NULL;
	cs_engine_set_services(self->engine, self->vault, self->tasks, self->keys);
	self->reminders = cs_reminders_start(self->engine);
	self->crl_refresh = g_timeout_add_seconds(CS_CA_CRL_REFRESH_S, refresh_crls, self);
	return g_steal_pointer(&self);
}

/* Runs only if teardown outlives its deadline: a hung module must not keep the daemon
 * (and its bus name) alive forever. Everything acknowledged is already committed. */
static gpointer
shutdown_watchdog(gpointer data)
{
	guint timeout_ms = GPOINTER_TO_UINT(data);

	g_usleep((gulong)timeout_ms * 1000);
	g_warning("shutdown did not finish within %u ms; exiting anyway", timeout_ms);
	_exit(1);
	return NULL;
}

static void
on_ledger_verified(
    gboolean ok, gint64 bad_seq, gint64 n_checked, const GError *error, gpointer user_data)
{
	CsDaemon *self;

	if (ok) {
		g_message("ledger verified in the background: %" G_GINT64_FORMAT " events",
			  n_checked);
		return;
	}
	/* Cancelled: the daemon is going away (and user_data with it). */
	if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		return;
	self = user_data;
	if (bad_seq <= 0) {
		/* Not a verdict on the ledger (it could not be read): said, but not read-only. */
		g_warning("the background verification of the ledger did not finish: %s",
			  error->message);
		return;
	}
	cs_ledger_refuse_writes(self->ledger, bad_seq);
	g_critical("ledger failed verification at event %" G_GINT64_FORMAT
		   ": %s; certseald is read-only from now on (every writing call is refused)",
		   bad_seq, error->message);
}

static gboolean
on_signal(gpointer user_data)
{
	CsDaemon *self = user_data;

	g_message("stopping");
	if (self->config->shutdown_timeout_ms > 0) {
		GThread *t = g_thread_new("shutdown-watchdog", shutdown_watchdog,
					  GUINT_TO_POINTER(self->config->shutdown_timeout_ms));
		g_thread_unref(t);
	}
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

	/* Signals first: once the name is owned a client may stop us at once, and a SIGTERM
	 * before the handler exists would kill the daemon without its shutdown. */
	self->loop = g_main_loop_new(NULL, FALSE);
	sigterm = cs_signal_add(SIGTERM, on_signal, self);
	sigint = cs_signal_add(SIGINT, on_signal, self);
	self->dbus = cs_dbus_new(self->engine, self->payments, (const char *const *)names->pdata,
				 self->bus_type, error);
	if (self->dbus == NULL) {
		g_source_remove(sigterm);
		g_source_remove(sigint);
		return FALSE;
	}
	self->dbus_keys = cs_dbus_keys_new(cs_dbus_get_bus(self->dbus),
					   cs_dbus_get_polkit(self->dbus), self->keys, error);
	if (self->dbus_keys == NULL) {
		g_source_remove(sigterm);
		g_source_remove(sigint);
		return FALSE;
	}
	cs_keys_start(self->keys);

	g_message("certseald %s ready on the %s bus as %s (state in %s)", CS_VERSION,
		  self->bus_type == CS_BUS_SESSION ? "session" : "system",
		  cs_dbus_get_unique_name(self->dbus), self->state_dir);
	sd_notify(0, "READY=1");
	/* Start-up checked the chain from its last checkpoint; now everything, off the loop. */
	self->verifying = g_cancellable_new();
	cs_ledger_verify_in_background(self->ledger, self->verifying, on_ledger_verified, self);
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

/* Drivers and contexts left behind at exit because a token call still runs in one of
 * them: global (not static) so the compiler keeps the stores and leak checkers see them
 * as reachable, which they are. */
gpointer cs_daemon_busy[2];

void
cs_daemon_free(CsDaemon *self)
{
	gboolean drivers_idle = TRUE;

	if (self == NULL)
		return;
	if (self->verifying != NULL) {
		g_cancellable_cancel(self->verifying);
		g_clear_object(&self->verifying);
	}
	/* From now on, token work still running hands nothing back to the engine. */
	if (self->engine != NULL)
		cs_engine_stop(self->engine);
	/* StartPayment calls still waiting hold D-Bus messages: drop them before the bus. */
	g_clear_pointer(&self->reminders, cs_reminders_free);
	g_clear_handle_id(&self->crl_refresh, g_source_remove);
	g_clear_pointer(&self->payments, cs_payments_free);
	g_clear_pointer(&self->dbus_keys, cs_dbus_keys_free);
	g_clear_pointer(&self->dbus, cs_dbus_free);
	g_clear_pointer(&self->office, cs_office_free);
	g_clear_pointer(&self->queue, cs_queue_free);
	g_clear_pointer(&self->tasks, cs_tasks_free);
	/* A token call that hangs past half the shutdown deadline keeps its driver loaded:
	 * shutting the driver down under it would crash, and the process is exiting anyway.
	 * Half, so the rest of the teardown still ends before the watchdog. */
	if (self->keys != NULL)
		drivers_idle = cs_keys_stop(self->keys, self->config->shutdown_timeout_ms / 2);
	g_clear_pointer(&self->keys, cs_keys_free);
	for (guint i = 0; drivers_idle && i < self->vendor_drivers->len; i++) {
		VendorDriver *vd = &g_array_index(self->vendor_drivers, VendorDriver, i);
		cs_driver_run_shutdown(vd->driver, vd->ctx);
	}
	if (drivers_idle) {
		g_array_unref(self->vendor_drivers);
	} else {
		/* Their contexts stay alive (and reachable) for the call still running. */
		cs_daemon_busy[0] = g_steal_pointer(&self->vendor_drivers);
	}
	g_clear_pointer(&self->engine, cs_engine_free);
	g_clear_pointer(&self->cas, cs_ca_set_free);
	g_clear_pointer(&self->plugins, g_ptr_array_unref);
	if (drivers_idle) {
		g_clear_pointer(&self->drivers, g_ptr_array_unref);
	} else {
		/* Kept loaded (and reachable) for the call still running in one of them. */
		cs_daemon_busy[1] = g_steal_pointer(&self->drivers);
	}
	g_clear_pointer(&self->ledger, cs_ledger_free);
	g_clear_pointer(&self->vault, cs_vault_free);
	g_clear_pointer(&self->config, cs_config_free);
	g_clear_pointer(&self->loop, g_main_loop_unref);
	if (self->lock_fd >= 0)
		close(self->lock_fd);
	g_free(self->state_dir);
	g_free(self);
}
