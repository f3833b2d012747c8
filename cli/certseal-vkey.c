/*
 * certseal-vkey.c — creates, plugs, unplugs and breaks virtual UKeys (drivers/vkey).
 *
 *   certseal-vkey --state-dir DIR [--json] create --vendor ID [--serial S] [--pin P]
 *                 [--so-pin P] [--blank] [--unplugged] [--vendor-dir D]
 *   certseal-vkey --state-dir DIR plug SERIAL | unplug SERIAL
 *   certseal-vkey --state-dir DIR list [--json]
 *   certseal-vkey --state-dir DIR fault SERIAL FUNCTION --after N --mode fail|hang|unplug
 *                 [--timeout MS]
 *
 * DIR is certseald's state directory; the keys live in DIR/drivers/vkey (vkey-store.h).
 * A vendor's manufacturer, model, PIN tries (user and SO) and PIN length come from its
 * profile in the vendor directory (default: the build tree's generated demo profiles;
 * [pin] so_pin_max_tries, default 10). This is a development
 * tool for virtual keys only: it may take PINs in argv; the real tools never do.
 * Exit codes: 0 done, 1 failed, 2 usage.
 */
#define G_LOG_DOMAIN "certseal-vkey"

#include <dlfcn.h>
#include <errno.h>
#include <glib/gstdio.h>
#include <p11-kit/pkcs11.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs-json.h"
#include "vkey-store.h"

static char *root;
static gboolean json;

static int
usage(void)
{
	g_printerr(
	    "usage: certseal-vkey --state-dir DIR [--json] COMMAND …\n"
	    "  create --vendor ID [--serial S] [--pin P] [--so-pin P] [--blank] [--unplugged]\n"
	    "         [--vendor-dir DIR]\n"
	    "  plug SERIAL | unplug SERIAL | list [--json]\n"
	    "  fault SERIAL FUNCTION --after N --mode fail|hang|unplug [--timeout MS]\n");
	return 2;
}

static int
failed(const char *what, GError *error)
{
	g_printerr("certseal-vkey: %s: %s\n", what, error != NULL ? error->message : "failed");
	return 1;
}

static VkeyTokenConf *
find_key(const char *serial)
{
	g_autofree char *dir = g_build_filename(root, serial, NULL);

	if (strchr(serial, '/') != NULL || serial[0] == '.')
		return NULL;
	return vkey_token_conf_load(dir, NULL);
}

/* Initialise the token of a fresh SoftHSM2 copy with the SO and user PIN. */
static gboolean
init_softhsm(
    const char *dir, const char *label, const char *pin, const char *so_pin, GError **error)
{
	g_autofree char *lib = g_build_filename(dir, "libsofthsm2.so", NULL);
	g_autofree char *cfg = g_build_filename(dir, "softhsm2.conf", NULL);
	CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
	CK_FUNCTION_LIST_PTR f = NULL;
	CK_C_GetFunctionList get;
	CK_SLOT_ID slots[4];
	CK_ULONG n = G_N_ELEMENTS(slots);
	CK_SESSION_HANDLE s = 0;
	CK_UTF8CHAR lab[32];
	const char *step = "dlopen";
	CK_RV rv = CKR_GENERAL_ERROR;
	void *dl = dlopen(lib, RTLD_NOW | RTLD_LOCAL);

	if (dl == NULL) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "%s: %s", lib, dlerror());
		return FALSE;
	}
	memset(lab, ' ', sizeof(lab));
	memcpy(lab, label, MIN(strlen(label), sizeof(lab)));
	get = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList");
	setenv("SOFTHSM2_CONF", cfg, 1);
	if (get != NULL && (step = "C_GetFunctionList", rv = get(&f)) == CKR_OK &&
	    (step = "C_Initialize", rv = f->C_Initialize(&args)) == CKR_OK &&
	    (step = "C_GetSlotList", rv = f->C_GetSlotList(CK_TRUE, slots, &n)) == CKR_OK &&
	    (step = "C_InitToken", rv = f->C_InitToken(slots[0], (CK_UTF8CHAR_PTR)so_pin,
						       strlen(so_pin), lab)) == CKR_OK &&
	    (step = "C_OpenSession",
	     rv = f->C_OpenSession(slots[0], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
				   &s)) == CKR_OK &&
	    (step = "C_Login",
	     rv = f->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)so_pin, strlen(so_pin))) == CKR_OK &&
	    (step = "C_InitPIN", rv = f->C_InitPIN(s, (CK_UTF8CHAR_PTR)pin, strlen(pin))) ==
		CKR_OK) {
		f->C_Logout(s);
		f->C_CloseSession(s);
	}
	if (f != NULL)
		f->C_Finalize(NULL);
	dlclose(dl);
	if (rv != CKR_OK) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "SoftHSM2 %s: 0x%lx", step,
			    (unsigned long)rv);
		return FALSE;
	}
	return TRUE;
}

static void
read_profile(const char *vendor_dir, VkeyTokenConf *conf)
{
	g_autofree char *name = g_strconcat(conf->vendor, ".conf", NULL);
	g_autofree char *path = g_build_filename(vendor_dir, name, NULL);
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GError) error = NULL;

	if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &error)) {
		g_printerr("certseal-vkey: vendor %s: no profile (%s); using defaults\n",
			   conf->vendor, error->message);
		return;
	}
	g_free(conf->manufacturer);
	conf->manufacturer = g_key_file_get_string(kf, "token", "manufacturer", NULL);
	g_free(conf->model);
	conf->model = g_key_file_get_string(kf, "token", "model", NULL);
	if (g_key_file_has_key(kf, "pin", "max_tries", NULL))
		conf->max_tries = (guint)g_key_file_get_integer(kf, "pin", "max_tries", NULL);
	if (g_key_file_has_key(kf, "pin", "so_pin_max_tries", NULL))
		conf->so_max_tries =
		    (guint)g_key_file_get_integer(kf, "pin", "so_pin_max_tries", NULL);
	if (g_key_file_has_key(kf, "pin", "min_length", NULL))
		conf->min_pin_length = (guint)g_key_file_get_integer(kf, "pin", "min_length", NULL);
	if (g_key_file_has_key(kf, "pin", "max_length", NULL))
		conf->max_pin_length = (guint)g_key_file_get_integer(kf, "pin", "max_length", NULL);
}

static int
cmd_create(int argc, char **argv)
{
	g_autofree char *vendor = NULL, *serial = NULL, *pin = NULL, *so_pin = NULL;
	g_autofree char *vendor_dir = NULL;
	gboolean blank = FALSE, unplugged = FALSE;
	g_autoptr(GOptionContext) ctx = g_option_context_new("create");
	g_autoptr(GError) error = NULL;
	g_autoptr(VkeyTokenConf) conf = g_new0(VkeyTokenConf, 1);
	g_autoptr(GPtrArray) existing = NULL;
	g_autofree char *lib = NULL;
	g_autofree char *cfg = NULL;
	g_autofree char *cfg_text = NULL;
	g_autofree char *tokens = NULL;
	g_autofree char *data = NULL;
	gsize len = 0;
	GOptionEntry entries[] = {
	    {"vendor", 0, 0, G_OPTION_ARG_STRING, &vendor, "Vendor profile id", "ID"},
	    {"serial", 0, 0, G_OPTION_ARG_STRING, &serial, "Serial number", "S"},
	    {"pin", 0, 0, G_OPTION_ARG_STRING, &pin, "User PIN (default 123456)", "P"},
	    {"so-pin", 0, 0, G_OPTION_ARG_STRING, &so_pin, "SO PIN (default 12345678)", "P"},
	    {"blank", 0, 0, G_OPTION_ARG_NONE, &blank, "Leave the token uninitialised", NULL},
	    {"unplugged", 0, 0, G_OPTION_ARG_NONE, &unplugged, "Do not insert it", NULL},
	    {"vendor-dir", 0, 0, G_OPTION_ARG_FILENAME, &vendor_dir, "Vendor profiles", "DIR"},
	    {NULL},
	};

	g_option_context_add_main_entries(ctx, entries, NULL);
	if (!g_option_context_parse(ctx, &argc, &argv, &error) || vendor == NULL || argc != 1)
		return usage();
	if (serial == NULL)
		serial = g_strdup_printf("VK%08X", g_random_int());
	if (!g_regex_match_simple("^[A-Za-z0-9_-]{1,16}$", serial, 0, 0)) {
		g_printerr("certseal-vkey: --serial: 1–16 letters, digits, '-' or '_'\n");
		return 2;
	}
	conf->serial = g_strdup(serial);
	conf->vendor = g_strdup(vendor);
	conf->manufacturer = g_strdup("certseal vkey");
	conf->model = g_strdup("vkey");
	conf->max_tries = 6;
	conf->so_max_tries = 10;
	conf->min_pin_length = 6;
	conf->max_pin_length = 16;
	read_profile(vendor_dir != NULL ? vendor_dir : CS_VKEY_VENDOR_DIR, conf);
	conf->dir = g_build_filename(root, serial, NULL);
	if (g_file_test(conf->dir, G_FILE_TEST_EXISTS)) {
		g_printerr("certseal-vkey: a key with serial %s exists\n", serial);
		return 1;
	}
	existing = vkey_store_list(root);
	for (guint i = 0; i < existing->len; i++) {
		VkeyTokenConf *e = g_ptr_array_index(existing, i);
		conf->slot = MAX(conf->slot, e->slot + 1);
	}
	tokens = g_build_filename(conf->dir, "tokens", NULL);
	if (g_mkdir_with_parents(tokens, 0700) != 0) {
		g_printerr("certseal-vkey: %s: %s\n", tokens, g_strerror(errno));
		return 1;
	}
	/* A copy, not a link: the loader would treat a hard link as the same library. */
	lib = g_build_filename(conf->dir, "libsofthsm2.so", NULL);
	if (!g_file_get_contents(CS_SOFTHSM2_MODULE, &data, &len, &error) ||
	    !g_file_set_contents(lib, data, (gssize)len, &error))
		return failed("copying SoftHSM2", error);
	cfg = g_build_filename(conf->dir, "softhsm2.conf", NULL);
	cfg_text = g_strdup_printf("directories.tokendir = %s\nobjectstore.backend = file\n"
				   "log.level = ERROR\nslots.removable = false\n",
				   tokens);
	if (!g_file_set_contents(cfg, cfg_text, -1, &error))
		return failed(cfg, error);
	if (!blank && !init_softhsm(conf->dir, "certseal", pin != NULL ? pin : "123456",
				    so_pin != NULL ? so_pin : "12345678", &error))
		return failed("initialising the token", error);
	if (!vkey_token_conf_save(conf, &error))
		return failed("token.conf", error);
	if (!unplugged && !vkey_plug(conf->dir, &error))
		return failed("plug", error);
	if (json) {
		g_autoptr(GString) s = g_string_new("{\"serial\":");
		cs_json_append_string(s, serial);
		g_string_append_printf(s, ",\"slot\":%u}", conf->slot);
		g_print("%s\n", s->str);
	} else {
		g_print("%s\n", serial);
	}
	return 0;
}

static int
cmd_plug(int argc, char **argv, gboolean plug)
{
	g_autoptr(VkeyTokenConf) conf = NULL;
	g_autoptr(GError) error = NULL;

	if (argc != 2)
		return usage();
	conf = find_key(argv[1]);
	if (conf == NULL) {
		g_printerr("certseal-vkey: no key %s in %s\n", argv[1], root);
		return 1;
	}
	if (plug ? !vkey_plug(conf->dir, &error) : !vkey_unplug(conf->dir, &error))
		return failed(plug ? "plug" : "unplug", error);
	return 0;
}

/* The module's counter in @file ("pin" or "so_pin"), or @max before the first try. */
static guint
counter(VkeyTokenConf *conf, const char *file, guint max)
{
	g_autofree char *path = g_build_filename(conf->dir, file, NULL);
	g_autofree char *text = NULL;

	if (!g_file_get_contents(path, &text, NULL, NULL))
		return max;
	return (guint)g_ascii_strtoull(text, NULL, 10);
}

static guint
tries_left(VkeyTokenConf *conf)
{
	return counter(conf, "pin", conf->max_tries);
}

static int
cmd_list(int argc, char **argv)
{
	g_autoptr(GPtrArray) list = vkey_store_list(root);
	g_autoptr(GString) s = g_string_new("[");

	if (argc == 2 && g_strcmp0(argv[1], "--json") == 0)
		json = TRUE;
	else if (argc != 1)
		return usage();
	if (!json)
		g_print("%-18s %-10s %-22s %-8s %-5s %s\n", "SERIAL", "VENDOR", "MANUFACTURER",
			"PLUGGED", "SLOT", "TRIES");
	for (guint i = 0; i < list->len; i++) {
		VkeyTokenConf *c = g_ptr_array_index(list, i);
		gboolean plugged = vkey_is_plugged(c->dir);
		if (!json) {
			g_print("%-18s %-10s %-22s %-8s %-5u %u/%u\n", c->serial, c->vendor,
				c->manufacturer, plugged ? "yes" : "no", c->slot, tries_left(c),
				c->max_tries);
			continue;
		}
		if (i > 0)
			g_string_append_c(s, ',');
		g_string_append(s, "{\"serial\":");
		cs_json_append_string(s, c->serial);
		g_string_append(s, ",\"vendor\":");
		cs_json_append_string(s, c->vendor);
		g_string_append(s, ",\"manufacturer\":");
		cs_json_append_string(s, c->manufacturer);
		g_string_append(s, ",\"model\":");
		cs_json_append_string(s, c->model);
		g_string_append_printf(s,
				       ",\"slot\":%u,\"plugged\":%s,\"tries_left\":%u,"
				       "\"max_tries\":%u,\"so_tries_left\":%u,\"so_max_tries\":%u}",
				       c->slot, plugged ? "true" : "false", tries_left(c),
				       c->max_tries, counter(c, "so_pin", c->so_max_tries),
				       c->so_max_tries);
	}
	if (json) {
		g_string_append_c(s, ']');
		g_print("%s\n", s->str);
	}
	return 0;
}

static int
cmd_fault(int argc, char **argv)
{
	gint after = 0, timeout = 30000;
	g_autofree char *mode = NULL;
	g_autoptr(GOptionContext) ctx = g_option_context_new("fault SERIAL FUNCTION");
	g_autoptr(GError) error = NULL;
	g_autoptr(VkeyTokenConf) conf = NULL;
	g_autofree char *path = NULL;
	g_autofree char *text = NULL;
	GOptionEntry entries[] = {
	    {"after", 0, 0, G_OPTION_ARG_INT, &after, "The Nth call misbehaves", "N"},
	    {"mode", 0, 0, G_OPTION_ARG_STRING, &mode, "fail, hang or unplug", "MODE"},
	    {"timeout", 0, 0, G_OPTION_ARG_INT, &timeout, "A hang ends after MS", "MS"},
	    {NULL},
	};

	g_option_context_add_main_entries(ctx, entries, NULL);
	if (!g_option_context_parse(ctx, &argc, &argv, &error) || argc != 3 || after < 1 ||
	    timeout < 1 || mode == NULL ||
	    !(g_str_equal(mode, "fail") || g_str_equal(mode, "hang") ||
	      g_str_equal(mode, "unplug")) ||
	    !g_regex_match_simple("^C_[A-Za-z]+$", argv[2], 0, 0))
		return usage();
	conf = find_key(argv[1]);
	if (conf == NULL) {
		g_printerr("certseal-vkey: no key %s in %s\n", argv[1], root);
		return 1;
	}
	path = g_build_filename(conf->dir, "fault", NULL);
	text = g_strdup_printf("%s %d %s %d\n", argv[2], after, mode, timeout);
	if (!g_file_set_contents(path, text, -1, &error))
		return failed(path, error);
	return 0;
}

int
main(int argc, char **argv)
{
	g_autofree char *state_dir = NULL;
	int i = 1;
	int rc;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (g_str_equal(argv[i], "--state-dir") && i + 1 < argc)
			state_dir = g_strdup(argv[++i]);
		else if (g_str_equal(argv[i], "--json"))
			json = TRUE;
		else
			return usage();
	}
	if (state_dir == NULL || i >= argc)
		return usage();
	root = g_build_filename(state_dir, "drivers", "vkey", NULL);
	if (g_mkdir_with_parents(root, 0700) != 0) {
		g_printerr("certseal-vkey: %s: %s\n", root, g_strerror(errno));
		return 1;
	}
	if (g_str_equal(argv[i], "create"))
		rc = cmd_create(argc - i, argv + i);
	else if (g_str_equal(argv[i], "plug"))
		rc = cmd_plug(argc - i, argv + i, TRUE);
	else if (g_str_equal(argv[i], "unplug"))
		rc = cmd_plug(argc - i, argv + i, FALSE);
	else if (g_str_equal(argv[i], "list"))
		rc = cmd_list(argc - i, argv + i);
	else if (g_str_equal(argv[i], "fault"))
		rc = cmd_fault(argc - i, argv + i);
	else
		rc = usage();
	g_free(root);
	return rc;
}
