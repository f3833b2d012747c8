/*
 * cs-loader.h — loading flow plugins and vendor drivers (DESIGN §3.1, §3.2).
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
	const CsPlugin *plugin;
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
gboolean cs_plugin_run_init(const CsPlugin *plugin, CsEngine *engine, GError **error);
gboolean cs_plugin_run_check_fields(const CsPlugin *plugin,
				    CsEngine *engine,
				    CsSubjectType subject_type,
				    GVariant *fields,
				    GError **error);
gboolean cs_plugin_run_before_transition(const CsPlugin *plugin,
					 CsEngine *engine,
					 CsOrder *order,
					 const CsTransition *transition,
					 const CsRequest *request,
					 GError **error);

/* Runners around driver operations. */
gboolean cs_driver_run_init(const CsLoadedDriver *driver,
			    const CsDriverConfig *config,
			    CsDriverContext **ctx,
			    GError **error);
void cs_driver_run_shutdown(const CsLoadedDriver *driver, CsDriverContext *ctx);

G_END_DECLS
