/*
 * cs-loader.h — loading flow plugins and vendor drivers (docs/architecture.md §3.1, §3.2).
 *
 * A module is refused, with one log line naming the file and the reason, when: its file
 * is not owned by root or is writable by group or others (unless test_mode), it cannot be
 * opened, an ABI version integer or the entry symbol is missing, the major differs from
 * the daemon's, the minor is newer than the daemon's, or its declarations are malformed.
 * The daemon carries on without it.
 *
 * Every call into a module goes through one runner per operation (cs_plugin_run_*,
 * cs_driver_run_*): it logs the call, enforces "return FALSE ⇔ error set" (a module that
 * fails without an error gets one made for it) and prefixes errors with the module's name.
 */
#pragma once

#include <gmodule.h>

#include "certseal/driver.h"
#include "certseal/plugin.h"

G_BEGIN_DECLS

typedef struct {
	char *path;
	GModule *module;
	const CsPlugin *plugin; /* the plugin's own table, or upgraded */
	CsPlugin *upgraded;	/* a zero-extended copy for a plugin of an older minor */
	int abi_minor;
} CsLoadedPlugin;

typedef struct {
	char *path;
	GModule *module;
	const CsDriverOps *ops;
	int abi_minor;
} CsLoadedDriver;

void cs_loaded_plugin_free(CsLoadedPlugin *plugin);
void cs_loaded_driver_free(CsLoadedDriver *driver);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsLoadedPlugin, cs_loaded_plugin_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsLoadedDriver, cs_loaded_driver_free)

/* The file rule: owned by root and not writable by group or others, unless @test_mode. */
gboolean cs_loader_check_file(const char *path, gboolean test_mode, GError **error);

CsLoadedPlugin *cs_loader_load_plugin(const char *path, gboolean test_mode, GError **error);
CsLoadedDriver *cs_loader_load_driver(const char *path, gboolean test_mode, GError **error);

/* Every "*.so" of @dir, sorted by name; refusals are logged and skipped, as are a second
 * plugin of an already loaded kind or a second driver of the same name. A missing
 * directory loads nothing. */
GPtrArray *cs_loader_load_plugins(const char *dir, gboolean test_mode);
GPtrArray *cs_loader_load_drivers(const char *dir, gboolean test_mode);

/* Runners around every plugin hook. */
gboolean cs_plugin_run_init(const CsPlugin *plugin, GError **error);
gboolean cs_plugin_run_check_fields(const CsPlugin *plugin,
				    CsSubjectType subject_type,
				    GVariant *fields,
				    GError **error);
/* A transition's check or run hook (@hook names it in logs and errors); TRUE when NULL. */
gboolean cs_plugin_run_prepare_order(const CsPlugin *plugin, CsCreate *create, GError **error);
gboolean cs_plugin_run_step(
    const CsPlugin *plugin, const char *hook, CsStepFunc func, CsStep *step, GError **error);
void cs_plugin_run_after(const CsPlugin *plugin, CsStepAfterFunc func, CsStep *step);

/* Runners around driver operations. */
gboolean cs_driver_run_init(const CsLoadedDriver *driver,
			    const CsDriverConfig *config,
			    CsDriverContext **ctx,
			    GError **error);
void cs_driver_run_shutdown(const CsLoadedDriver *driver, CsDriverContext *ctx);
/*
 * Try @driver's init (and shutdown) in a forked child first, before any driver runs in
 * the daemon: FALSE when it crashed or did not return within @timeout_ms — the vendor is
 * then refused without its code ever running in the daemon. A driver whose init merely
 * refuses passes the probe (its refusal is harmless and gets logged by the real init).
 */
gboolean cs_driver_probe_init(const CsLoadedDriver *driver,
			      const CsDriverConfig *config,
			      guint timeout_ms,
			      GError **error);

/* Does @driver's table have @op (built against a minor that has it, and not NULL)? */
#define cs_driver_has_op(driver, op)                                                               \
	((driver)->ops->size >= G_STRUCT_OFFSET(CsDriverOps, op) + sizeof(gpointer) &&             \
	 (driver)->ops->op != NULL)

/* Runners around the token operations (docs/architecture.md §3.1). Each refuses an operation the
 * driver does not have (CS_ERROR_UNAVAILABLE "not supported"), maps the driver's status
 * to CS_ERROR_* (PIN_INCORRECT with the tries left in the message, PIN_LOCKED,
 * KEY_REMOVED, NO_KEY …) and prefixes messages with the driver's name. Object reads map
 * "not found" to CS_ERROR_NOT_FOUND. PINs are never logged. */
gboolean cs_driver_run_enumerate(const CsLoadedDriver *driver,
				 CsDriverContext *ctx,
				 GArray *tokens,
				 GError **error);
/* FALSE with CS_ERROR_UNAVAILABLE on timeout; *supported = FALSE when the driver has no
 * wait_for_event. */
gboolean cs_driver_run_wait_for_event(const CsLoadedDriver *driver,
				      CsDriverContext *ctx,
				      int timeout_ms,
				      gboolean *supported,
				      GError **error);
gboolean cs_driver_run_pin_status(const CsLoadedDriver *driver,
				  CsDriverContext *ctx,
				  const char *serial,
				  CsDriverPinStatus *status,
				  GError **error);
gboolean cs_driver_run_login(const CsLoadedDriver *driver,
			     CsDriverContext *ctx,
			     const char *serial,
			     const char *pin,
			     GError **error);
gboolean cs_driver_run_logout(const CsLoadedDriver *driver,
			      CsDriverContext *ctx,
			      const char *serial,
			      GError **error);
gboolean cs_driver_run_change_pin(const CsLoadedDriver *driver,
				  CsDriverContext *ctx,
				  const char *serial,
				  const char *old_pin,
				  const char *new_pin,
				  GError **error);
gboolean cs_driver_run_unblock(const CsLoadedDriver *driver,
			       CsDriverContext *ctx,
			       const char *serial,
			       const char *so_pin,
			       const char *new_pin,
			       GError **error);
gboolean cs_driver_run_init_token(const CsLoadedDriver *driver,
				  CsDriverContext *ctx,
				  const char *serial,
				  const char *label,
				  const char *user_pin,
				  const char *so_pin,
				  GError **error);
GBytes *cs_driver_run_generate_key(const CsLoadedDriver *driver,
				   CsDriverContext *ctx,
				   const char *serial,
				   const char *key_id,
				   const char *algorithm,
				   GError **error);
GBytes *cs_driver_run_get_public_key(const CsLoadedDriver *driver,
				     CsDriverContext *ctx,
				     const char *serial,
				     const char *key_id,
				     GError **error);
GBytes *cs_driver_run_sign(const CsLoadedDriver *driver,
			   CsDriverContext *ctx,
			   const char *serial,
			   const char *key_id,
			   const char *digest,
			   GBytes *tbs,
			   GError **error);
gboolean cs_driver_run_put_object(const CsLoadedDriver *driver,
				  CsDriverContext *ctx,
				  const char *serial,
				  gboolean is_certificate,
				  const char *label,
				  GBytes *data,
				  GError **error);
GBytes *cs_driver_run_get_object(const CsLoadedDriver *driver,
				 CsDriverContext *ctx,
				 const char *serial,
				 gboolean is_certificate,
				 const char *label,
				 GError **error);
gboolean cs_driver_run_delete_object(const CsLoadedDriver *driver,
				     CsDriverContext *ctx,
				     const char *serial,
				     gboolean is_certificate,
				     const char *label,
				     GError **error);
/* Minor 1: a driver of minor 0 lacks it (CS_ERROR_UNAVAILABLE "not supported"). */
gboolean cs_driver_run_delete_key(const CsLoadedDriver *driver,
				  CsDriverContext *ctx,
				  const char *serial,
				  const char *key_id,
				  GError **error);

G_END_DECLS
