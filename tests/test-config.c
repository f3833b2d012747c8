/*
 * test-config.c — unit tests of certseald.conf and vendor profile loading
 * (daemon/base/cs-config.c).
 *
 * Each test writes its files into a fresh temporary directory. Refusals are checked to
 * name the file and the line ("<path>:<line>: ") and the problem; the shipped files
 * (daemon/certseald.conf, the demo vendors and the generated development configuration)
 * are found through CS_SOURCE_DIR and CS_BUILD_DIR, which meson sets.
 */
#include <glib/gstdio.h>
#include <string.h>

#include "certseal/plugin.h"
#include "cs-build-config.h"
#include "cs-config.h"

/* A profile with only the required keys. */
#define MINIMAL_VENDOR                                                                             \
	"[vendor]\n"                                                                               \
	"name = Test Vendor\n"                                                                     \
	"driver = pkcs11\n"                                                                        \
	"[ca]\n"                                                                                   \
	"crl_url = https://crl.test.example/issuing.crl\n"

typedef struct {
	char *dir;
} Fixture;

static void
remove_tree(const char *path)
{
	g_autoptr(GDir) dir = NULL;
	const char *name;

	if (!g_file_test(path, G_FILE_TEST_IS_DIR) || g_file_test(path, G_FILE_TEST_IS_SYMLINK)) {
		g_unlink(path);
		return;
	}
	dir = g_dir_open(path, 0, NULL);
	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		g_autofree char *child = g_build_filename(path, name, NULL);

		remove_tree(child);
	}
	g_rmdir(path);
}

static void
fixture_set_up(Fixture *f, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;

	f->dir = g_dir_make_tmp("certseal-test-config-XXXXXX", &error);
	g_assert_no_error(error);
}

static void
fixture_tear_down(Fixture *f, gconstpointer user_data)
{
	remove_tree(f->dir);
	g_free(f->dir);
}

/* Writes @contents to @name (which may contain one subdirectory) in the fixture's directory. */
static char *
write_file(Fixture *f, const char *name, const char *contents)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *path = g_build_filename(f->dir, name, NULL);
	g_autofree char *parent = g_path_get_dirname(path);

	g_assert_cmpint(g_mkdir_with_parents(parent, 0700), ==, 0);
	g_file_set_contents(path, contents, -1, &error);
	g_assert_no_error(error);
	return g_steal_pointer(&path);
}

/* Asserts that @error is an InvalidInput refusal starting with "<path>:<line>: " (or
 * "<path>: " when @line is 0) and containing @problem. */
static void
assert_refused_at(const GError *error, const char *path, guint line, const char *problem)
{
	g_autofree char *where =
	    line > 0 ? g_strdup_printf("%s:%u: ", path, line) : g_strdup_printf("%s: ", path);

	g_assert_nonnull(error);
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	if (!g_str_has_prefix(error->message, where) || strstr(error->message, problem) == NULL)
		g_error("expected \"%s…%s…\", got \"%s\"", where, problem, error->message);
}

static const char *
source_dir(void)
{
	const char *dir = g_getenv("CS_SOURCE_DIR");

	/* Set by meson (tests/meson.build); without it the shipped files cannot be found. */
	g_assert_nonnull(dir);
	return dir;
}

static CsConfig *
load_config_text(Fixture *f, const char *text, char **path_out, GError **error)
{
	g_autofree char *path = write_file(f, "certseald.conf", text);
	CsConfig *config = cs_config_load(path, error);

	if (path_out != NULL) {
		g_free(*path_out);
		*path_out = g_steal_pointer(&path);
	}
	return config;
}

static CsVendor *
load_vendor_text(Fixture *f, const char *text, char **path_out, GError **error)
{
	g_autofree char *path = write_file(f, "test-vendor.conf", text);
	CsVendor *vendor = cs_vendor_load(path, error);

	if (path_out != NULL) {
		g_free(*path_out);
		*path_out = g_steal_pointer(&path);
	}
	return vendor;
}

static void
assert_defaults(const CsConfig *config)
{
	g_assert_cmpstr(config->state_dir, ==, CS_STATE_DIR);
	g_assert_cmpstr(config->plugin_dir, ==, CS_PLUGIN_DIR);
	g_assert_cmpstr(config->driver_dir, ==, CS_DRIVER_DIR);
	g_assert_cmpstr(config->draw_module, ==, CS_DRAW_MODULE);
	g_assert_cmpstr(config->vendor_dir, ==, CS_VENDOR_DIR);
	g_assert_false(config->test_mode);
	g_assert_false(config->office_sandbox_gateways);
	g_assert_cmpuint(config->shutdown_timeout_ms, ==, 5000);
	g_assert_cmpuint(config->checkpoint_interval, ==, 1000);
	g_assert_nonnull(config->legacy_uscc);
	g_assert_cmpuint(g_strv_length(config->legacy_uscc), ==, 0);
	g_assert_nonnull(config->vendors);
	g_assert_cmpuint(config->vendors->len, ==, 0);
}

static void
test_config_defaults(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(CsConfig) config = cs_config_load(NULL, &error);

	g_assert_no_error(error);
	g_assert_nonnull(config);
	g_assert_null(config->path);
	assert_defaults(config);
}

/* The documented example changes nothing: every key in it is commented out. */
static void
test_config_example_file_loads(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *path = g_build_filename(source_dir(), "daemon", "certseald.conf", NULL);
	g_autoptr(CsConfig) config = cs_config_load(path, &error);

	g_assert_no_error(error);
	g_assert_nonnull(config);
	g_assert_cmpstr(config->path, ==, path);
	assert_defaults(config);
}

/* Uncommenting every key of the example gives a valid file with the default values. */
static void
test_config_example_uncommented_loads(Fixture *f, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *example = g_build_filename(source_dir(), "daemon", "certseald.conf", NULL);
	g_autofree char *text = NULL;
	g_autoptr(GString) uncommented = g_string_new(NULL);
	g_auto(GStrv) lines = NULL;
	g_autoptr(CsConfig) config = NULL;
	guint n_keys = 0;

	g_file_get_contents(example, &text, NULL, &error);
	g_assert_no_error(error);
	lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		/* "#key = value" is a key; "# prose" is not. */
		if (lines[i][0] == '#' && g_ascii_isalpha(lines[i][1]) &&
		    strchr(lines[i], '=') != NULL) {
			g_string_append_printf(uncommented, "%s\n", lines[i] + 1);
			n_keys++;
		} else {
			g_string_append_printf(uncommented, "%s\n", lines[i]);
		}
	}
	/* 9 of the foundation, 18 of the office, 3 materials, 9 of the new flow, 3 of the
	 * order query, 2 of the authorization code */
	g_assert_cmpuint(n_keys, ==, 44);
	config = load_config_text(f, uncommented->str, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(config->sms_code_lifetime_s, ==, 300);
	g_assert_cmpuint(config->sms_code_max_tries, ==, 5);
	g_assert_cmpuint(config->query_grant_s, ==, 1800);
	g_assert_cmpuint(config->query_codes_per_uid_hour, ==, 10);
	g_assert_cmpuint(config->query_codes_per_subject_day, ==, 5);
	g_assert_cmpuint(config->auth_code_lifetime_s, ==, 600);
	g_assert_cmpuint(config->auth_code_max_tries, ==, 5);
	g_assert_cmpuint(g_strv_length(config->review_holidays), ==, 3);
	g_assert_cmpstr(config->review_holidays[0], ==, "2026-10-01");
	g_assert_cmpstr(config->review_extra_workdays[1], ==, "2026-10-10");
	g_assert_cmpuint(config->review_org_days, ==, 5);
	g_assert_cmpuint(config->review_person_days, ==, 3);
	g_assert_cmpuint(config->invoice_tax_rate_permille, ==, 60);
	g_clear_pointer(&config, cs_config_free);
	/* A holiday that does not exist is refused, naming the key and the entry. */
	config = load_config_text(f, "[review]\nholidays = 2026-10-01;2026-02-30\n", NULL, &error);
	g_assert_null(config);
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_nonnull(strstr(error->message, "holidays"));
	g_assert_nonnull(strstr(error->message, "entry 2"));
	g_clear_error(&error);
	config = load_config_text(f, uncommented->str, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(config->state_dir, ==, CS_STATE_DIR);
	g_assert_cmpuint(config->shutdown_timeout_ms, ==, 5000);
	g_assert_cmpuint(config->checkpoint_interval, ==, 1000);
	g_assert_cmpuint(config->material_max_size, ==, 10 * 1024 * 1024);
	g_assert_cmpuint(g_strv_length(config->legacy_uscc), ==, 1);
}

static void
test_config_dev_file_loads(void)
{
	g_autoptr(GError) error = NULL;
	const char *build_dir = g_getenv("CS_BUILD_DIR");
	g_autofree char *path = NULL;
	g_autofree char *plugin_dir = NULL;
	g_autofree char *driver_dir = NULL;
	g_autofree char *draw_module = NULL;
	g_autofree char *vendor_dir = NULL;
	g_autoptr(CsConfig) config = NULL;

	g_assert_nonnull(build_dir);
	path = g_build_filename(build_dir, "certseal-dev.conf", NULL);
	config = cs_config_load(path, &error);
	g_assert_no_error(error);
	plugin_dir = g_canonicalize_filename("plugins", build_dir);
	driver_dir = g_canonicalize_filename("drivers", build_dir);
	draw_module = g_canonicalize_filename("daemon/certseal-draw.so", build_dir);
	/* The demo profiles generated into the build tree, backed by the virtual UKey. */
	vendor_dir = g_canonicalize_filename("daemon/vendors.d", build_dir);
	g_assert_true(config->test_mode);
	g_assert_cmpstr(config->plugin_dir, ==, plugin_dir);
	g_assert_cmpstr(config->driver_dir, ==, driver_dir);
	g_assert_cmpstr(config->draw_module, ==, draw_module);
	g_assert_true(g_file_test(config->draw_module, G_FILE_TEST_EXISTS));
	g_assert_cmpstr(config->vendor_dir, ==, vendor_dir);
	g_assert_cmpstr(config->state_dir, ==, CS_STATE_DIR);
	g_assert_cmpuint(g_strv_length(config->legacy_uscc), ==, 1);
	g_assert_cmpstr(config->legacy_uscc[0], ==, "91350100M0001TGQXM");

	g_assert_true(cs_config_load_vendors(config, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(config->vendors->len, ==, 2);
	for (guint i = 0; i < config->vendors->len; i++) {
		const CsVendor *v = g_ptr_array_index(config->vendors, i);
		g_assert_true(g_str_has_suffix(v->module, "/drivers/vkey/certseal-vkey-pkcs11.so"));
		g_assert_true(g_file_test(v->module, G_FILE_TEST_EXISTS));
		g_assert_cmpstr(v->init_args, ==, "dir=${state_dir}/../vkey");
	}
	g_assert_cmpstr(((CsVendor *)g_ptr_array_index(config->vendors, 0))->manufacturer, !=,
			((CsVendor *)g_ptr_array_index(config->vendors, 1))->manufacturer);
}

static void
test_config_values_read(Fixture *f, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *state_dir = g_build_filename(f->dir, "state", NULL);
	g_autofree char *vendor_dir = g_build_filename(f->dir, "vendors.d", NULL);
	g_autoptr(CsConfig) config = NULL;

	config = load_config_text(f,
				  "# all keys\n"
				  "[daemon]\n"
				  "state_dir = state\n"
				  "plugin_dir = /opt/certseal/./plugins/\n"
				  "driver_dir=/opt/certseal/drivers\n"
				  "draw_module = /opt/certseal/draw.so\n"
				  "vendor_dir = ./sub/../vendors.d\n"
				  "  test_mode = true  \n"
				  "shutdown_timeout_ms = 0\n"
				  "[ledger]\n"
				  "checkpoint_interval = 1\n"
				  "[validation]\n"
				  "legacy_uscc = 91350100M0001TGQXM; 91440101MA5CJQ4N50;\n",
				  NULL, &error);
	g_assert_no_error(error);
	/* Relative paths are taken from the configuration file's directory. */
	g_assert_cmpstr(config->state_dir, ==, state_dir);
	g_assert_cmpstr(config->vendor_dir, ==, vendor_dir);
	g_assert_cmpstr(config->plugin_dir, ==, "/opt/certseal/plugins");
	g_assert_cmpstr(config->driver_dir, ==, "/opt/certseal/drivers");
	g_assert_cmpstr(config->draw_module, ==, "/opt/certseal/draw.so");
	g_assert_true(config->test_mode);
	g_assert_cmpuint(config->shutdown_timeout_ms, ==, 0);
	g_assert_cmpuint(config->checkpoint_interval, ==, 1);
	g_assert_cmpuint(g_strv_length(config->legacy_uscc), ==, 2);
	g_assert_cmpstr(config->legacy_uscc[0], ==, "91350100M0001TGQXM");
	g_assert_cmpstr(config->legacy_uscc[1], ==, "91440101MA5CJQ4N50");
}

static void
test_config_missing_file_refused(Fixture *f, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *path = g_build_filename(f->dir, "absent.conf", NULL);
	g_autoptr(CsConfig) config = cs_config_load(path, &error);

	g_assert_null(config);
	g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
	g_assert_nonnull(strstr(error->message, path));
}

static void
test_config_malformed_syntax_names_line(Fixture *f, gconstpointer user_data)
{
	const struct {
		const char *text;
		guint line;
		const char *problem;
	} cases[] = {
	    {"[daemon]\ntest_mode = true\nthis is not a key\n", 3, "not a [group]"},
	    {"# comment\n\ntest_mode = true\n[daemon]\n", 3, "before the first [group]"},
	    {"[daemon]\n[ledger\n", 2, "malformed group header"},
	    {"[daemon]\n[]\n", 2, "malformed group header"},
	    {"[daemon]\ntest mode = true\n", 2, "malformed key name"},
	    {"[daemon]\n = true\n", 2, "malformed key name"},
	    {"[daemon]\n\n\n\nstate_dir = /a\xff\n", 5, "not valid UTF-8"},
	    {"[daemon]\r\ntest_mode = true\r\ntest_mode = false\r\n", 3,
	     "[daemon] test_mode: set twice (first on line 2)"},
	    {"[daemon]\n[ledger]\n[daemon]\n", 3, "[daemon]: group repeated (first on line 1)"},
	    {"[daemon]\nstate_dir = /a\\qb\n", 2, "[daemon] state_dir: bad escape sequence"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree char *path = NULL;
		g_autoptr(CsConfig) config = load_config_text(f, cases[i].text, &path, &error);

		g_assert_null(config);
		assert_refused_at(error, path, cases[i].line, cases[i].problem);
	}
}

static void
test_config_unknown_key_names_line(Fixture *f, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *path = NULL;
	g_autoptr(CsConfig) config = NULL;

	config = load_config_text(f,
				  "[daemon]\n"
				  "state_dir = /tmp\n"
				  "\n"
				  "# a typo\n"
				  "tset_mode = true\n",
				  &path, &error);
	g_assert_null(config);
	assert_refused_at(error, path, 5, "[daemon] tset_mode: unknown key");

	/* A key of another group is unknown here too. */
	g_clear_error(&error);
	config = load_config_text(f, "[ledger]\nstate_dir = /tmp\n", &path, &error);
	g_assert_null(config);
	assert_refused_at(error, path, 2, "[ledger] state_dir: unknown key");

	/* Localised keys are not part of this format. */
	g_clear_error(&error);
	config = load_config_text(f, "[daemon]\n\nstate_dir[zh_CN] = /tmp\n", &path, &error);
	g_assert_null(config);
	assert_refused_at(error, path, 3, "[daemon] state_dir[zh_CN]: unknown key");
}

static void
test_config_unknown_group_names_line(Fixture *f, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *path = NULL;
	g_autoptr(CsConfig) config = NULL;

	config = load_config_text(f, "[daemon]\ntest_mode = false\n\n[deamon]\n", &path, &error);
	g_assert_null(config);
	assert_refused_at(error, path, 4, "[deamon]: unknown group");
}

static void
test_config_bad_boolean_names_line(Fixture *f, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *path = NULL;
	g_autofree char *expected = NULL;
	g_autoptr(CsConfig) config = NULL;

	config = load_config_text(f,
				  "# line 1\n"
				  "[daemon]\n"
				  "state_dir = /tmp\n"
				  "\n"
				  "# line 5\n"
				  "\n"
				  "test_mode = yes please\n",
				  &path, &error);
	g_assert_null(config);
	expected = g_strdup_printf("%s:7: [daemon] test_mode: not a boolean ('yes please')", path);
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_cmpstr(error->message, ==, expected);
}

static void
test_config_bad_number_names_line(Fixture *f, gconstpointer user_data)
{
	const struct {
		const char *text;
		guint line;
		const char *problem;
	} cases[] = {
	    {"[daemon]\nshutdown_timeout_ms = soon\n", 2,
	     "[daemon] shutdown_timeout_ms: not a non-negative whole number ('soon')"},
	    {"[daemon]\nshutdown_timeout_ms = -1\n", 2, "not a non-negative whole number ('-1')"},
	    {"[daemon]\nshutdown_timeout_ms = 600001\n", 2, "600001 is not between 0 and 600000"},
	    {"[ledger]\n\ncheckpoint_interval = 0\n", 3,
	     "[ledger] checkpoint_interval: 0 is not between 1 and"},
	    {"[ledger]\ncheckpoint_interval = 99999999999999999999999\n", 2,
	     "not a non-negative whole number"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree char *path = NULL;
		g_autoptr(CsConfig) config = load_config_text(f, cases[i].text, &path, &error);

		g_assert_null(config);
		assert_refused_at(error, path, cases[i].line, cases[i].problem);
	}
}

static void
test_config_bad_legacy_uscc_names_line(Fixture *f, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *path = NULL;
	g_autoptr(CsConfig) config = NULL;

	config = load_config_text(f,
				  "[validation]\n"
				  "legacy_uscc = 91350100M0001TGQXM;91350100M0001TGQX\n",
				  &path, &error);
	g_assert_null(config);
	assert_refused_at(error, path, 2,
			  "[validation] legacy_uscc: entry 2: must be 18 characters");

	g_clear_error(&error);
	config =
	    load_config_text(f, "[validation]\nlegacy_uscc = 91350100m0001tgqxm\n", &path, &error);
	g_assert_null(config);
	assert_refused_at(error, path, 2, "entry 1: must be 18 characters");
}

static void
test_config_empty_path_refused(Fixture *f, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *path = NULL;
	g_autoptr(CsConfig) config = NULL;

	config = load_config_text(f, "[daemon]\nstate_dir =\n", &path, &error);
	g_assert_null(config);
	assert_refused_at(error, path, 2, "[daemon] state_dir: must not be empty");
}

static void
test_vendor_demo_profiles_load(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(CsConfig) config = cs_config_load(NULL, &error);
	const char *ids[] = {"demo-a", "demo-b"};
	const char *letters[] = {"A", "B"};

	g_assert_no_error(error);
	g_free(config->vendor_dir);
	config->vendor_dir = g_build_filename(source_dir(), "daemon", "vendors.d", NULL);
	g_assert_true(cs_config_load_vendors(config, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(config->vendors->len, ==, 2);

	for (guint i = 0; i < 2; i++) {
		const CsVendor *vendor = g_ptr_array_index(config->vendors, i);
		g_autofree char *name_en = g_strdup_printf("(Demo Vendor %s)", letters[i]);
		g_autofree char *manufacturer = g_strdup_printf("certseal demo %s", letters[i]);
		g_autofree char *crl =
		    g_strdup_printf("http://crl.%s.certseal.test/issuing.crl", ids[i]);

		g_assert_cmpstr(vendor->id, ==, ids[i]);
		g_assert_true(cs_config_find_vendor(config, ids[i]) == vendor);
		g_assert_true(g_str_has_prefix(vendor->name, "演示厂商"));
		g_assert_true(g_str_has_suffix(vendor->name, name_en));
		g_assert_cmpstr(vendor->driver, ==, "pkcs11");
		/* The source files are templates: the build fills in the vkey module. */
		g_assert_cmpstr(vendor->module, ==, "@VKEY_MODULE@");
		g_assert_cmpstr(vendor->init_args, ==, "dir=${state_dir}/../vkey");
		g_assert_cmpstr(vendor->manufacturer, ==, manufacturer);
		g_assert_cmpstr(vendor->model, ==, "vkey");
		g_assert_cmpuint(vendor->pin_min_length, ==, 6);
		g_assert_cmpuint(vendor->pin_max_length, ==, 16);
		g_assert_cmpuint(vendor->pin_max_tries, ==, 6);
		g_assert_cmpstr(vendor->key_algorithm, ==, "ec-p256");
		g_assert_cmpstr(vendor->ca_algorithm, ==, "ec-p256");
		g_assert_cmpuint(vendor->validity_days, ==, 365);
		g_assert_cmpstr(vendor->crl_url, ==, crl);

		g_assert_cmpuint(cs_vendor_get_price(vendor, "new", "org"), ==, 30000);
		g_assert_cmpuint(cs_vendor_get_price(vendor, "new", "person"), ==, 10000);
		g_assert_cmpuint(cs_vendor_get_price(vendor, "renew", "org"), ==, 20000);
		g_assert_cmpuint(cs_vendor_get_price(vendor, "renew", "person"), ==, 8000);
		g_assert_cmpuint(cs_vendor_get_price(vendor, "unlock", "org"), ==, 0);
		g_assert_cmpuint(cs_vendor_get_price(vendor, "unlock", "person"), ==, 0);
		g_assert_cmpuint(cs_vendor_get_price(vendor, "reissue", "org"), ==, 30000);
		g_assert_cmpuint(cs_vendor_get_price(vendor, "reissue", "person"), ==, 10000);
		g_assert_cmpuint(cs_vendor_get_price(vendor, "change", "org"), ==, 0);
		g_assert_cmpuint(cs_vendor_get_price(vendor, "change", "person"), ==, 0);
		g_assert_cmpuint(g_hash_table_size(vendor->prices), ==, 10);
	}
	g_assert_null(cs_config_find_vendor(config, "demo-c"));
}

static void
test_vendor_defaults(Fixture *f, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *path = NULL;
	g_autoptr(CsVendor) vendor = load_vendor_text(f, MINIMAL_VENDOR, &path, &error);

	g_assert_no_error(error);
	g_assert_cmpstr(vendor->id, ==, "test-vendor");
	g_assert_cmpstr(vendor->path, ==, path);
	g_assert_cmpstr(vendor->name, ==, "Test Vendor");
	g_assert_null(vendor->module);
	g_assert_null(vendor->manufacturer);
	g_assert_null(vendor->model);
	g_assert_cmpuint(vendor->pin_min_length, ==, 6);
	g_assert_cmpuint(vendor->pin_max_length, ==, 16);
	g_assert_cmpuint(vendor->pin_max_tries, ==, 6);
	g_assert_cmpstr(vendor->key_algorithm, ==, "ec-p256");
	g_assert_cmpstr(vendor->ca_algorithm, ==, "ec-p256");
	g_assert_cmpuint(vendor->validity_days, ==, 365);
	g_assert_cmpuint(cs_vendor_get_price(vendor, "new", "org"), ==, 0);
}

static void
test_vendor_values_read(Fixture *f, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(CsVendor) vendor = NULL;

	vendor = load_vendor_text(f,
				  MINIMAL_VENDOR "validity_days = 3650\n"
						 "[token]\n"
						 "module = /usr/lib/softhsm/libsofthsm2.so\n"
						 "[pin]\n"
						 "min_length = 4\n"
						 "max_length = 4\n"
						 "max_tries = 15\n"
						 "[key]\n"
						 "algorithm = sm2\n"
						 "[prices]\n"
						 "new.org = 9223372036854775807\n",
				  NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(vendor->module, ==, "/usr/lib/softhsm/libsofthsm2.so");
	g_assert_cmpuint(vendor->pin_min_length, ==, 4);
	g_assert_cmpuint(vendor->pin_max_length, ==, 4);
	g_assert_cmpuint(vendor->pin_max_tries, ==, 15);
	g_assert_cmpuint(vendor->validity_days, ==, 3650);
	g_assert_cmpstr(vendor->key_algorithm, ==, "sm2");
	/* The CA follows the key's algorithm unless told otherwise. */
	g_assert_cmpstr(vendor->ca_algorithm, ==, "sm2");
	g_assert_cmpuint(cs_vendor_get_price(vendor, "new", "org"), ==, G_MAXINT64);
	g_assert_cmpuint(cs_vendor_get_price(vendor, "new", "person"), ==, 0);
}

static void
test_vendor_missing_name_refused(Fixture *f, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *path = NULL;
	g_autofree char *expected = NULL;
	g_autoptr(CsVendor) vendor = NULL;

	vendor = load_vendor_text(
	    f, "[vendor]\ndriver = pkcs11\n[ca]\ncrl_url = http://x.test/a.crl\n", &path, &error);
	g_assert_null(vendor);
	expected = g_strdup_printf("%s: [vendor] name: required", path);
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_cmpstr(error->message, ==, expected);
}

static void
test_vendor_missing_driver_or_crl_refused(Fixture *f, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *path = NULL;
	g_autoptr(CsVendor) vendor = NULL;

	vendor = load_vendor_text(f, "[vendor]\nname = X\n[ca]\ncrl_url = http://x.test/a.crl\n",
				  &path, &error);
	g_assert_null(vendor);
	assert_refused_at(error, path, 0, "[vendor] driver: required");

	g_clear_error(&error);
	vendor = load_vendor_text(f, "[vendor]\nname = X\ndriver = pkcs11\n", &path, &error);
	g_assert_null(vendor);
	assert_refused_at(error, path, 0, "[ca] crl_url: required");

	g_clear_error(&error);
	vendor = load_vendor_text(f, "", &path, &error);
	g_assert_null(vendor);
	assert_refused_at(error, path, 0, "[vendor] name: required");
}

/* Loads MINIMAL_VENDOR followed by @extra and expects a refusal on @line about @problem. */
static void
assert_vendor_refused(Fixture *f, const char *extra, guint line, const char *problem)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *path = NULL;
	g_autofree char *text = g_strconcat(MINIMAL_VENDOR, extra, NULL);
	g_autoptr(CsVendor) vendor = load_vendor_text(f, text, &path, &error);

	g_assert_null(vendor);
	assert_refused_at(error, path, line, problem);
}

static void
test_vendor_bad_algorithm_names_line(Fixture *f, gconstpointer user_data)
{
	/* MINIMAL_VENDOR is 5 lines. */
	assert_vendor_refused(f, "[key]\n\nalgorithm = rsa-4096\n", 8,
			      "[key] algorithm: 'rsa-4096' is not one of rsa-2048, ec-p256, sm2");
	assert_vendor_refused(f, "algorithm = EC-P256\n", 6,
			      "[ca] algorithm: 'EC-P256' is not one");
}

static void
test_vendor_bad_price_names_line(Fixture *f, gconstpointer user_data)
{
	assert_vendor_refused(f, "[prices]\nnew.org = 100\nnew.person = -5\n", 8,
			      "[prices] new.person: not a non-negative whole number ('-5')");
	assert_vendor_refused(f, "[prices]\nnew.org = 12.50\n", 7,
			      "[prices] new.org: not a non-negative whole number ('12.50')");
	assert_vendor_refused(f, "[prices]\nnew.org = 9223372036854775808\n", 7,
			      "is not between 0 and 9223372036854775807");
	assert_vendor_refused(f, "[prices]\nnew.company = 100\n", 7,
			      "[prices] new.company: unknown key");
	assert_vendor_refused(f, "[prices]\nnew = 100\n", 7, "[prices] new: unknown key");
	assert_vendor_refused(f, "[prices]\nNew.org = 100\n", 7, "[prices] New.org: unknown key");
}

static void
test_vendor_bad_pin_policy_names_line(Fixture *f, gconstpointer user_data)
{
	assert_vendor_refused(f, "[pin]\nmin_length = 3\n", 7,
			      "[pin] min_length: 3 is not between 4 and 64");
	assert_vendor_refused(f, "[pin]\nmax_length = 65\n", 7,
			      "[pin] max_length: 65 is not between 4 and 64");
	assert_vendor_refused(f, "[pin]\nmax_tries = 0\n", 7,
			      "[pin] max_tries: 0 is not between 1 and 15");
	assert_vendor_refused(f, "[pin]\nmax_tries = 16\n", 7, "16 is not between 1 and 15");
	assert_vendor_refused(f, "[pin]\nmin_length = 8\nmax_length = 6\n", 7,
			      "[pin] min_length: min_length (8) is greater than max_length (6)");
	/* Only max_length is written: the refusal points at it. */
	assert_vendor_refused(f, "[pin]\nmax_tries = 3\nmax_length = 5\n", 8,
			      "[pin] max_length: min_length (6) is greater than max_length (5)");
}

static void
test_vendor_bad_ca_names_line(Fixture *f, gconstpointer user_data)
{
	const char *urls[] = {
	    "ftp://crl.test/a.crl",    "crl.test/a.crl",	   "http://",
	    "http://crl.test/a b.crl", "http://crl.test/证书.crl", "HTTP://crl.test/a.crl"};

	for (guint i = 0; i < G_N_ELEMENTS(urls); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree char *path = NULL;
		g_autofree char *text = g_strdup_printf("[vendor]\nname = X\ndriver = pkcs11\n"
							"[ca]\ncrl_url = %s\n",
							urls[i]);
		g_autoptr(CsVendor) vendor = load_vendor_text(f, text, &path, &error);

		g_assert_null(vendor);
		assert_refused_at(error, path, 5, "[ca] crl_url: not an http:// or https:// URL");
	}
	assert_vendor_refused(f, "validity_days = 0\n", 6,
			      "[ca] validity_days: 0 is not between 1 and 3650");
	assert_vendor_refused(f, "validity_days = 3651\n", 6, "3651 is not between 1 and 3650");
}

static void
test_vendor_bad_text_names_line(Fixture *f, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *path = NULL;
	g_autoptr(CsVendor) vendor = NULL;

	vendor = load_vendor_text(f, "[vendor]\nname = A\\nB\n", &path, &error);
	g_assert_null(vendor);
	assert_refused_at(error, path, 2, "[vendor] name: must not contain control characters");

	g_clear_error(&error);
	vendor = load_vendor_text(f, "[vendor]\nname = X\ndriver = PKCS11\n", &path, &error);
	g_assert_null(vendor);
	assert_refused_at(error, path, 3, "[vendor] driver: 'PKCS11' is not a driver name");

	g_clear_error(&error);
	vendor = load_vendor_text(f, "[vendor]\nname =\n", &path, &error);
	g_assert_null(vendor);
	assert_refused_at(error, path, 2, "[vendor] name: must not be empty");
}

static void
test_vendor_unknown_key_names_line(Fixture *f, gconstpointer user_data)
{
	assert_vendor_refused(f, "[token]\nserial = 1234\n", 7, "[token] serial: unknown key");
	assert_vendor_refused(f, "\n[seal]\n", 7, "[seal]: unknown group");
	assert_vendor_refused(f, "[vendor]\n", 6, "[vendor]: group repeated (first on line 1)");
}

static void
test_vendor_bad_file_name_refused(Fixture *f, gconstpointer user_data)
{
	const char *names[] = {"Demo.conf", "demo a.conf", "demo.b.conf",
			       "a23456789012345678901234567890123.conf", "demo.ini"};

	for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree char *path = write_file(f, names[i], MINIMAL_VENDOR);
		g_autoptr(CsVendor) vendor = cs_vendor_load(path, &error);

		g_assert_null(vendor);
		assert_refused_at(error, path, 0, "the file name must be <id>.conf");
		g_unlink(path);
	}

	/* Through the directory, too: the file is named and nothing is loaded. */
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(CsConfig) config = cs_config_load(NULL, &error);
		g_autofree char *good = write_file(f, "vendors.d/good.conf", MINIMAL_VENDOR);
		g_autofree char *bad = write_file(f, "vendors.d/Bad.conf", MINIMAL_VENDOR);

		g_free(config->vendor_dir);
		config->vendor_dir = g_build_filename(f->dir, "vendors.d", NULL);
		g_assert_false(cs_config_load_vendors(config, &error));
		assert_refused_at(error, bad, 0, "the file name must be <id>.conf");
		g_assert_cmpuint(config->vendors->len, ==, 0);
	}
	{
		g_autofree char *longest =
		    write_file(f, "a2345678901234567890123456789012.conf", MINIMAL_VENDOR);
		g_autoptr(GError) error = NULL;
		g_autoptr(CsVendor) vendor = cs_vendor_load(longest, &error);

		g_assert_no_error(error);
		g_assert_cmpstr(vendor->id, ==, "a2345678901234567890123456789012");
	}
}

static void
test_vendor_directory_rules(Fixture *f, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(CsConfig) config = cs_config_load(NULL, &error);
	g_autofree char *a_path = NULL;

	/* A missing directory means no vendors. */
	g_free(config->vendor_dir);
	config->vendor_dir = g_build_filename(f->dir, "vendors.d", NULL);
	g_assert_true(cs_config_load_vendors(config, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(config->vendors->len, ==, 0);

	/* Only regular *.conf files that are not hidden; sorted by id, not by file name
	 * ("a-b.conf" sorts before "a.conf", but "a" before "a-b"). */
	g_free(write_file(f, "vendors.d/b.conf", MINIMAL_VENDOR));
	g_free(write_file(f, "vendors.d/a-b.conf", MINIMAL_VENDOR));
	a_path = write_file(f, "vendors.d/a.conf", MINIMAL_VENDOR);
	g_free(write_file(f, "vendors.d/c.conf.bak", "not a profile"));
	g_free(write_file(f, "vendors.d/.d.conf", "not a profile"));
	g_free(write_file(f, "vendors.d/README", "not a profile"));
	g_free(write_file(f, "vendors.d/e.conf/x", "a directory named like a profile"));
	g_assert_true(cs_config_load_vendors(config, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(config->vendors->len, ==, 3);
	g_assert_cmpstr(((CsVendor *)g_ptr_array_index(config->vendors, 0))->id, ==, "a");
	g_assert_cmpstr(((CsVendor *)g_ptr_array_index(config->vendors, 1))->id, ==, "a-b");
	g_assert_cmpstr(((CsVendor *)g_ptr_array_index(config->vendors, 2))->id, ==, "b");

	/* A bad profile refuses the whole directory and keeps the list loaded before. */
	g_free(write_file(f, "vendors.d/a.conf", "[vendor]\nname = X\n"));
	g_assert_false(cs_config_load_vendors(config, &error));
	assert_refused_at(error, a_path, 0, "[vendor] driver: required");
	g_assert_cmpuint(config->vendors->len, ==, 3);
}

static void
add_fixture_test(const char *path, void (*func)(Fixture *, gconstpointer))
{
	g_test_add(path, Fixture, NULL, fixture_set_up, func, fixture_tear_down);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);

	g_test_add_func("/config/defaults", test_config_defaults);
	g_test_add_func("/config/example-file-loads", test_config_example_file_loads);
	add_fixture_test("/config/example-uncommented-loads",
			 test_config_example_uncommented_loads);
	g_test_add_func("/config/dev-file-loads", test_config_dev_file_loads);
	add_fixture_test("/config/values-read", test_config_values_read);
	add_fixture_test("/config/missing-file-refused", test_config_missing_file_refused);
	add_fixture_test("/config/malformed-syntax-names-line",
			 test_config_malformed_syntax_names_line);
	add_fixture_test("/config/unknown-key-names-line", test_config_unknown_key_names_line);
	add_fixture_test("/config/unknown-group-names-line", test_config_unknown_group_names_line);
	add_fixture_test("/config/bad-boolean-names-line", test_config_bad_boolean_names_line);
	add_fixture_test("/config/bad-number-names-line", test_config_bad_number_names_line);
	add_fixture_test("/config/bad-legacy-uscc-names-line",
			 test_config_bad_legacy_uscc_names_line);
	add_fixture_test("/config/empty-path-refused", test_config_empty_path_refused);
	g_test_add_func("/vendor/demo-profiles-load", test_vendor_demo_profiles_load);
	add_fixture_test("/vendor/defaults", test_vendor_defaults);
	add_fixture_test("/vendor/values-read", test_vendor_values_read);
	add_fixture_test("/vendor/missing-name-refused", test_vendor_missing_name_refused);
	add_fixture_test("/vendor/missing-driver-or-crl-refused",
			 test_vendor_missing_driver_or_crl_refused);
	add_fixture_test("/vendor/bad-algorithm-names-line", test_vendor_bad_algorithm_names_line);
	add_fixture_test("/vendor/bad-price-names-line", test_vendor_bad_price_names_line);
	add_fixture_test("/vendor/bad-pin-policy-names-line",
			 test_vendor_bad_pin_policy_names_line);
	add_fixture_test("/vendor/bad-ca-names-line", test_vendor_bad_ca_names_line);
	add_fixture_test("/vendor/bad-text-names-line", test_vendor_bad_text_names_line);
	add_fixture_test("/vendor/unknown-key-names-line", test_vendor_unknown_key_names_line);
	add_fixture_test("/vendor/bad-file-name-refused", test_vendor_bad_file_name_refused);
	add_fixture_test("/vendor/directory-rules", test_vendor_directory_rules);
	return g_test_run();
}
