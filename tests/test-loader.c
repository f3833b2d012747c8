/*
 * test-loader.c — loading flow plugins and drivers: the good ones load, each broken rule
 * is refused with a reason naming it, and the runners enforce the error contract.
 *
 * The modules under test are built into $CS_BUILD_DIR/tests/plugins by tests/plugins/.
 */
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cs-engine.h"
#include "cs-loader.h"

static GPtrArray *logged; /* "LEVEL message" lines the code under test logged */

static GLogWriterOutput
capture_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
	for (gsize i = 0; i < n_fields; i++) {
		if (g_strcmp0(fields[i].key, "MESSAGE") == 0) {
			g_ptr_array_add(
			    logged, g_strdup_printf(
					"%s %s", (level & G_LOG_LEVEL_WARNING) ? "WARNING" : "INFO",
					(const char *)fields[i].value));
		}
	}
	return G_LOG_WRITER_HANDLED;
}

static gboolean
logged_matching(const char *pattern)
{
	for (guint i = 0; i < logged->len; i++) {
		if (g_pattern_match_simple(pattern, g_ptr_array_index(logged, i)))
			return TRUE;
	}
	return FALSE;
}

static char *
module_path(const char *name)
{
	return g_build_filename(g_getenv("CS_BUILD_DIR"), "tests", "plugins", name, NULL);
}

static void
test_plugin_good_loads(void)
{
	g_autofree char *path = module_path("good-plugin.so");
	g_autoptr(GError) error = NULL;
	g_autoptr(CsLoadedPlugin) p = cs_loader_load_plugin(path, TRUE, &error);

	g_assert_no_error(error);
	g_assert_nonnull(p);
	g_assert_cmpstr(p->plugin->kind, ==, "good");
	g_assert_cmpint(p->abi_minor, ==, CS_PLUGIN_ABI_MINOR);
}

/* A plugin built against an older minor loads, without the hooks it could not know. */
static void
test_plugin_older_minor_loads(void)
{
	g_autofree char *path = module_path("old-minor-plugin.so");
	g_autoptr(GError) error = NULL;
	g_autoptr(CsLoadedPlugin) p = cs_loader_load_plugin(path, TRUE, &error);

	g_assert_no_error(error);
	g_assert_nonnull(p);
	g_assert_cmpstr(p->plugin->kind, ==, "oldminor");
	g_assert_cmpint(p->abi_minor, ==, 0);
	g_assert_null(p->plugin->prepare_order);
}

static void
test_plugin_older_major_refused(void)
{
	g_autofree char *path = module_path("old-major-plugin.so");
	g_autoptr(GError) error = NULL;
	g_autoptr(CsLoadedPlugin) p = cs_loader_load_plugin(path, TRUE, &error);

	g_assert_null(p);
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_nonnull(strstr(error->message, "ABI major version 1, certseald speaks 2"));
}

static void
test_plugin_wrong_abi_refused(void)
{
	g_autofree char *path = module_path("bad-abi-plugin.so");
	g_autoptr(GError) error = NULL;
	g_autoptr(CsLoadedPlugin) p = cs_loader_load_plugin(path, TRUE, &error);

	g_assert_null(p);
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_true(strstr(error->message, "ABI major version 3, certseald speaks 2") != NULL);
}

static void
test_plugin_missing_entry_refused(void)
{
	g_autofree char *path = module_path("no-entry-plugin.so");
	g_autoptr(GError) error = NULL;
	g_autoptr(CsLoadedPlugin) p = cs_loader_load_plugin(path, TRUE, &error);

	g_assert_null(p);
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_true(strstr(error->message, "missing symbol certseal_plugin_get") != NULL);
}

static void
test_plugin_missing_version_refused(void)
{
	/* A driver has no plugin version integers. */
	g_autofree char *path = module_path("good-driver.so");
	g_autoptr(GError) error = NULL;
	g_autoptr(CsLoadedPlugin) p = cs_loader_load_plugin(path, TRUE, &error);

	g_assert_null(p);
	g_assert_true(strstr(error->message, "missing symbol certseal_plugin_abi_major") != NULL);
}

static void
test_plugin_failing_init_refused(void)
{
	g_autofree char *path = module_path("failing-init-plugin.so");
	g_autoptr(GError) error = NULL;
	g_autoptr(CsLoadedPlugin) p = cs_loader_load_plugin(path, TRUE, &error);
	g_autoptr(CsConfig) config = cs_config_load(NULL, &error);
	g_autoptr(CsEngine) engine = NULL;

	g_assert_no_error(error);
	g_assert_nonnull(p);
	engine = cs_engine_new(config, NULL);
	g_assert_false(cs_engine_add_plugin(engine, p->plugin, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INTERNAL);
	g_assert_cmpstr(error->message, ==, "failing: backend unreachable");
	g_assert_null(cs_engine_find_plugin(engine, "failing"));
}

static void
test_plugin_dir_skips_refused(void)
{
	g_autofree char *dir = g_build_filename(g_getenv("CS_BUILD_DIR"), "tests", "plugins", NULL);
	g_autoptr(GPtrArray) plugins = NULL;
	g_autoptr(GPtrArray) kinds = g_ptr_array_new();

	g_ptr_array_set_size(logged, 0);
	plugins = cs_loader_load_plugins(dir, TRUE);
	for (guint i = 0; i < plugins->len; i++) {
		CsLoadedPlugin *p = g_ptr_array_index(plugins, i);
		g_ptr_array_add(kinds, (gpointer)p->plugin->kind);
	}
	/* failing-init loads (its init runs in the engine), the broken ones do not; an older
	 * minor does. */
	g_assert_cmpuint(kinds->len, ==, 3);
	g_assert_cmpstr(g_ptr_array_index(kinds, 0), ==, "failing");
	g_assert_cmpstr(g_ptr_array_index(kinds, 1), ==, "good");
	g_assert_cmpstr(g_ptr_array_index(kinds, 2), ==, "oldminor");
	g_assert_true(
	    logged_matching("WARNING */bad-abi-plugin.so: refused: ABI major version 3*"));
	g_assert_true(
	    logged_matching("WARNING */old-major-plugin.so: refused: ABI major version 1*"));
	g_assert_true(logged_matching(
	    "WARNING */no-entry-plugin.so: refused: missing symbol certseal_plugin_get"));
	g_assert_true(logged_matching(
	    "WARNING */good-driver.so: refused: missing symbol certseal_plugin_abi_major*"));
}

static void
test_plugin_missing_dir_loads_nothing(void)
{
	g_autoptr(GPtrArray) plugins = cs_loader_load_plugins("/nonexistent/certseal", TRUE);

	g_assert_cmpuint(plugins->len, ==, 0);
}

static void
test_driver_good_loads(void)
{
	g_autofree char *path = module_path("good-driver.so");
	g_autoptr(GError) error = NULL;
	g_autoptr(CsLoadedDriver) d = cs_loader_load_driver(path, TRUE, &error);
	CsDriverConfig cfg = {.vendor_id = "demo"};
	CsDriverContext *ctx = NULL;

	g_assert_no_error(error);
	g_assert_cmpstr(d->ops->name, ==, "good");
	g_assert_true(cs_driver_run_init(d, &cfg, &ctx, &error));
	g_assert_no_error(error);
	g_assert_nonnull(ctx);
	cs_driver_run_shutdown(d, ctx);
}

/* A driver built against minor 0 loads; delete_key (minor 1), which its table does not
 * hold, is "not supported" and never called. */
static void
test_driver_older_minor_loads(void)
{
	g_autofree char *path = module_path("old-minor-driver.so");
	g_autoptr(GError) error = NULL;
	g_autoptr(CsLoadedDriver) d = cs_loader_load_driver(path, TRUE, &error);
	CsDriverConfig cfg = {.vendor_id = "demo"};
	CsDriverContext *ctx = NULL;

	g_assert_no_error(error);
	g_assert_nonnull(d);
	g_assert_cmpstr(d->ops->name, ==, "oldminor");
	g_assert_false(cs_driver_has_op(d, delete_key));
	g_assert_true(cs_driver_run_init(d, &cfg, &ctx, &error));
	g_assert_false(cs_driver_run_delete_key(d, ctx, "S1", "certseal", &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_UNAVAILABLE);
	g_assert_nonnull(strstr(error->message, "delete_key"));
	cs_driver_run_shutdown(d, ctx);
}

static void
test_driver_newer_minor_refused(void)
{
	g_autofree char *path = module_path("bad-abi-driver.so");
	g_autoptr(GError) error = NULL;
	g_autoptr(CsLoadedDriver) d = cs_loader_load_driver(path, TRUE, &error);

	g_autofree char *expected = g_strdup_printf(
	    "ABI version %d.%d is newer than certseald's %d.%d", CS_DRIVER_ABI_MAJOR,
	    CS_DRIVER_ABI_MINOR + 1, CS_DRIVER_ABI_MAJOR, CS_DRIVER_ABI_MINOR);

	g_assert_null(d);
	g_assert_true(strstr(error->message, expected) != NULL);
}

static void
test_driver_missing_entry_refused(void)
{
	g_autofree char *path = module_path("no-entry-driver.so");
	g_autoptr(GError) error = NULL;
	g_autoptr(CsLoadedDriver) d = cs_loader_load_driver(path, TRUE, &error);

	g_assert_null(d);
	g_assert_true(strstr(error->message, "missing symbol certseal_driver_get_ops") != NULL);
}

static void
test_driver_failing_init_reports(void)
{
	g_autofree char *path = module_path("failing-init-driver.so");
	g_autoptr(GError) error = NULL;
	g_autoptr(CsLoadedDriver) d = cs_loader_load_driver(path, TRUE, &error);
	CsDriverConfig cfg = {.vendor_id = "demo", .module = "/usr/lib/vendor.so"};
	CsDriverContext *ctx = NULL;

	g_assert_no_error(error);
	g_assert_false(cs_driver_run_init(d, &cfg, &ctx, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INTERNAL);
	g_assert_cmpstr(error->message, ==, "failing: init: no module at /usr/lib/vendor.so");
}

static void
test_file_writable_by_others_refused(void)
{
	g_autofree char *src = module_path("good-plugin.so");
	g_autofree char *tmp = g_dir_make_tmp("cs-loader-XXXXXX", NULL);
	g_autofree char *dst = g_build_filename(tmp, "good-plugin.so", NULL);
	g_autofree char *contents = NULL;
	g_autoptr(GError) error = NULL;
	gsize len = 0;

	g_assert_true(g_file_get_contents(src, &contents, &len, NULL));
	g_assert_true(g_file_set_contents(dst, contents, len, NULL));

	g_assert_cmpint(chmod(dst, 0666), ==, 0);
	g_assert_null(cs_loader_load_plugin(dst, FALSE, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_ACCESS_DENIED);
	if (getuid() == 0)
		g_assert_true(strstr(error->message, "writable by group or others (mode 0666)") !=
			      NULL);
	g_clear_error(&error);

	/* test_mode is what lets a developer's build tree load. */
	{
		g_autoptr(CsLoadedPlugin) p = cs_loader_load_plugin(dst, TRUE, &error);
		g_assert_no_error(error);
		g_assert_nonnull(p);
	}

	g_assert_cmpint(chmod(dst, 0755), ==, 0);
	if (getuid() == 0) {
		g_autoptr(CsLoadedPlugin) p = cs_loader_load_plugin(dst, FALSE, &error);
		g_assert_no_error(error);
		g_assert_nonnull(p);
	} else {
		g_assert_null(cs_loader_load_plugin(dst, FALSE, &error));
		g_assert_true(strstr(error->message, "not root") != NULL);
		g_clear_error(&error);
	}
	g_unlink(dst);
	g_rmdir(tmp);
}

int
main(int argc, char **argv)
{
	int rc;

	logged = g_ptr_array_new_with_free_func(g_free);
	g_log_set_writer_func(capture_writer, NULL, NULL);
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/loader/plugin/good-loads", test_plugin_good_loads);
	g_test_add_func("/loader/plugin/older-major-refused", test_plugin_older_major_refused);
	g_test_add_func("/loader/plugin/older-minor-loads", test_plugin_older_minor_loads);
	g_test_add_func("/loader/plugin/wrong-abi-refused", test_plugin_wrong_abi_refused);
	g_test_add_func("/loader/plugin/missing-entry-refused", test_plugin_missing_entry_refused);
	g_test_add_func("/loader/plugin/missing-version-refused",
			test_plugin_missing_version_refused);
	g_test_add_func("/loader/plugin/failing-init-refused", test_plugin_failing_init_refused);
	g_test_add_func("/loader/plugin/directory-skips-refused", test_plugin_dir_skips_refused);
	g_test_add_func("/loader/plugin/missing-directory-loads-nothing",
			test_plugin_missing_dir_loads_nothing);
	g_test_add_func("/loader/driver/good-loads-and-inits", test_driver_good_loads);
	g_test_add_func("/loader/driver/newer-minor-refused", test_driver_newer_minor_refused);
	g_test_add_func("/loader/driver/older-minor-loads", test_driver_older_minor_loads);
	g_test_add_func("/loader/driver/missing-entry-refused", test_driver_missing_entry_refused);
	g_test_add_func("/loader/driver/failing-init-reports-reason",
			test_driver_failing_init_reports);
	g_test_add_func("/loader/file/writable-by-others-refused",
			test_file_writable_by_others_refused);
	rc = g_test_run();
	g_ptr_array_unref(logged);
	return rc;
}
