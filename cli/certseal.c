/*
 * certseal.c — the desktop user's command line, a client of org.certseal.CertSeal1. It
 * mirrors the manual's menus (docs/architecture.md §3.6): status, keys, login, change-pin, unlock,
 * apply, orders, order …, form, seal ….
 *
 * Rules every command keeps (cs-cli.h): with --json, stdout carries exactly one JSON
 * document and nothing ever prompts; errors go to stderr, in --json mode as
 * {"error": {"code": "<D-Bus error name>", "message": "…"}} on stdout. Colours never.
 *
 * Exit codes (scripts rely on them):
 *   0  done
 *   1  the daemon refused (the error's name and message are printed)
 *   2  usage error (or a local file that cannot be read or would be overwritten)
 *   3  the daemon cannot be reached
 *   4  no such order (or not yours)
 */
#define G_LOG_DOMAIN "certseal"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <gio/gunixfdlist.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "cs-cli-apply.h"
#include "cs-cli-query.h"
#include "cs-cli-order.h"
#include "cs-cli-renew.h"
#include "cs-cli-change.h"
#include "cs-cli-seal.h"
#include "cs-cli-unlock.h"
#include "cs-cli.h"
#include "cs-json.h"

/* --- commands ----------------------------------------------------------------------- */

static int
cmd_status(CsCli *cli, int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) props =
	    cs_cli_get_all(cli, CS_CLI_MANAGER_PATH, CS_CLI_MANAGER_IFACE, &error);
	g_autoptr(GVariant) vendors = NULL;
	g_autofree char *plugins = NULL;
	g_autofree char *drivers = NULL;
	const char *version = "?";
	GVariantIter iter;
	const char *id, *name, *driver;

	if (argc != 0)
		return cs_cli_fail(cli, CS_EXIT_USAGE, "usage", "status takes no arguments");
	if (props == NULL)
		return cs_cli_fail_error(cli, error);
	if (cli->json) {
		cs_cli_print_json(props);
		return CS_EXIT_OK;
	}
	g_variant_lookup(props, "Version", "&s", &version);
	plugins = cs_cli_join_strv(props, "Plugins");
	drivers = cs_cli_join_strv(props, "Drivers");
	g_print("certseald %s on the %s bus\n", version, cli->session ? "session" : "system");
	g_print("  Flows:    %s\n", plugins);
	g_print("  Drivers:  %s\n", drivers);
	vendors = g_variant_lookup_value(props, "Vendors", G_VARIANT_TYPE("a(sss)"));
	if (vendors == NULL || g_variant_n_children(vendors) == 0) {
		g_print("  Vendors:  —\n");
		return CS_EXIT_OK;
	}
	g_print("  Vendors:\n");
	g_variant_iter_init(&iter, vendors);
	while (g_variant_iter_next(&iter, "(&s&s&s)", &id, &name, &driver))
		g_print("    %-12s %s  [driver %s]\n", id, name, driver);
	return CS_EXIT_OK;
}

static int
cmd_orders(CsCli *cli, int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) objects = NULL;
	g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func((GDestroyNotify)g_variant_unref);
	const char *state_filter = NULL;
	GVariantIter iter;
	const char *path;
	GVariant *ifaces;

	if (argc == 2 && g_strcmp0(argv[0], "--state") == 0)
		state_filter = argv[1];
	else if (argc != 0)
		return cs_cli_fail(cli, CS_EXIT_USAGE, "usage",
				   "usage: certseal orders [--state STATE]");
	reply = cs_cli_call(cli, CS_CLI_MANAGER_PATH, "org.freedesktop.DBus.ObjectManager",
			    "GetManagedObjects", NULL, "(a{oa{sa{sv}}})", &error);
	if (reply == NULL)
		return cs_cli_fail_error(cli, error);
	objects = g_variant_get_child_value(reply, 0);
	g_variant_iter_init(&iter, objects);
	while (g_variant_iter_next(&iter, "{&o@a{sa{sv}}}", &path, &ifaces)) {
		g_autoptr(GVariant) owned = ifaces;
		g_autoptr(GVariant) props =
		    g_variant_lookup_value(ifaces, CS_CLI_ORDER_IFACE, G_VARIANT_TYPE("a{sv}"));
		const char *state = NULL;

		if (props == NULL)
			continue;
		g_variant_lookup(props, "State", "&s", &state);
		if (state_filter != NULL && g_strcmp0(state, state_filter) != 0)
			continue;
		g_ptr_array_add(rows, g_steal_pointer(&props));
	}
	if (cli->json) {
		GVariantBuilder b;
		g_variant_builder_init(&b, G_VARIANT_TYPE("aa{sv}"));
		for (guint i = 0; i < rows->len; i++)
			g_variant_builder_add_value(&b, g_ptr_array_index(rows, i));
		g_autoptr(GVariant) list = g_variant_ref_sink(g_variant_builder_end(&b));
		cs_cli_print_json(list);
		return CS_EXIT_OK;
	}
	if (rows->len == 0) {
		g_print("No orders.\n");
		return CS_EXIT_OK;
	}
	g_print("%-18s %-8s %-7s %-14s %s\n", "ORDER", "KIND", "SUBJECT", "STATE", "UPDATED");
	for (guint i = 0; i < rows->len; i++) {
		GVariant *p = g_ptr_array_index(rows, i);
		const char *id = "?", *kind = "?", *subject = "?", *state = "?";
		guint64 updated = 0;
		g_autofree char *when = NULL;

		g_variant_lookup(p, "Id", "&s", &id);
		g_variant_lookup(p, "Kind", "&s", &kind);
		g_variant_lookup(p, "SubjectType", "&s", &subject);
		g_variant_lookup(p, "State", "&s", &state);
		g_variant_lookup(p, "UpdatedAt", "t", &updated);
		when = cs_cli_format_time(updated);
		g_print("%-18s %-8s %-7s %-14s %s\n", id, kind, subject, state, when);
	}
	return CS_EXIT_OK;
}

/* --- keys --------------------------------------------------------------------------- */

/* The Key objects: (path, properties) pairs, sorted by path. */
static GPtrArray *
list_keys(CsCli *cli, GError **error)
{
	g_autoptr(GVariant) reply =
	    cs_cli_call(cli, CS_CLI_MANAGER_PATH, "org.freedesktop.DBus.ObjectManager",
			"GetManagedObjects", NULL, "(a{oa{sa{sv}}})", error);
	g_autoptr(GVariant) objects = NULL;
	GPtrArray *keys;
	GVariantIter iter;
	const char *path;
	GVariant *ifaces;

	if (reply == NULL)
		return NULL;
	keys = g_ptr_array_new_with_free_func((GDestroyNotify)g_variant_unref);
	objects = g_variant_get_child_value(reply, 0);
	g_variant_iter_init(&iter, objects);
	while (g_variant_iter_next(&iter, "{&o@a{sa{sv}}}", &path, &ifaces)) {
		g_autoptr(GVariant) owned = ifaces;
		g_autoptr(GVariant) props =
		    g_variant_lookup_value(ifaces, CS_CLI_KEY_IFACE, G_VARIANT_TYPE("a{sv}"));
		if (props == NULL)
			continue;
		g_ptr_array_add(keys, g_variant_ref_sink(g_variant_new("(o@a{sv})", path, props)));
	}
	return keys;
}

static char *
certificate_state(GVariant *props)
{
	const char *subject = "";
	guint64 not_after = 0;
	g_autoptr(GDateTime) until = NULL;

	g_variant_lookup(props, "CertificateSubject", "&s", &subject);
	g_variant_lookup(props, "NotAfter", "t", &not_after);
	if (*subject == '\0')
		return g_strdup("none");
	until = g_date_time_new_from_unix_local((gint64)not_after);
	if (until == NULL)
		return g_strdup("present");
	{
		g_autofree char *day = g_date_time_format(until, "%Y-%m-%d");
		return g_strdup_printf(
		    "%s until %s",
		    (gint64)not_after < g_get_real_time() / G_USEC_PER_SEC ? "expired" : "valid",
		    day);
	}
}

static char *
pin_state(GVariant *props)
{
	gint32 tries = -1;
	gboolean locked = FALSE, logged_in = FALSE;

	g_variant_lookup(props, "PinTriesLeft", "i", &tries);
	g_variant_lookup(props, "PinLocked", "b", &locked);
	g_variant_lookup(props, "LoggedIn", "b", &logged_in);
	if (locked)
		return g_strdup("locked");
	if (tries < 0)
		return g_strdup_printf("? tries left%s", logged_in ? ", logged in" : "");
	return g_strdup_printf("%d tries left%s", tries, logged_in ? ", logged in" : "");
}

static int
cmd_keys(CsCli *cli, int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) keys = NULL;

	if (argc == 1 && g_strcmp0(argv[0], "--json") == 0)
		cli->json = TRUE;
	else if (argc != 0)
		return cs_cli_fail(cli, CS_EXIT_USAGE, "usage", "usage: certseal keys [--json]");
	keys = list_keys(cli, &error);
	if (keys == NULL)
		return cs_cli_fail_error(cli, error);
	if (cli->json) {
		GVariantBuilder b;
		g_variant_builder_init(&b, G_VARIANT_TYPE("aa{sv}"));
		for (guint i = 0; i < keys->len; i++) {
			const char *path;
			g_autoptr(GVariant) props = NULL;
			g_variant_get(g_ptr_array_index(keys, i), "(&o@a{sv})", &path, &props);
			g_autoptr(GVariantDict) d = g_variant_dict_new(props);
			g_variant_dict_insert(d, "Path", "s", path);
			g_variant_builder_add_value(&b, g_variant_dict_end(d));
		}
		g_autoptr(GVariant) list = g_variant_ref_sink(g_variant_builder_end(&b));
		cs_cli_print_json(list);
		return CS_EXIT_OK;
	}
	if (keys->len == 0) {
		g_print("No USB key is inserted.\n");
		return CS_EXIT_OK;
	}
	g_print("%-10s %-14s %-20s %-28s %s\n", "VENDOR", "SERIAL", "MANUFACTURER", "CERTIFICATE",
		"PIN");
	for (guint i = 0; i < keys->len; i++) {
		const char *path, *vendor = "?", *serial = "?", *manufacturer = "?";
		g_autoptr(GVariant) props = NULL;
		g_autofree char *cert = NULL, *pin = NULL;

		g_variant_get(g_ptr_array_index(keys, i), "(&o@a{sv})", &path, &props);
		g_variant_lookup(props, "Vendor", "&s", &vendor);
		g_variant_lookup(props, "Serial", "&s", &serial);
		g_variant_lookup(props, "Manufacturer", "&s", &manufacturer);
		cert = certificate_state(props);
		pin = pin_state(props);
		g_print("%-10s %-14s %-20s %-28s %s\n", vendor, serial, manufacturer, cert, pin);
	}
	return CS_EXIT_OK;
}

/* The path of the key named by serial, or of the only key when @serial is NULL. */
char *
cs_cli_find_key(CsCli *cli, const char *serial, int *rc)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) keys = list_keys(cli, &error);
	char *found = NULL;

	if (keys == NULL) {
		*rc = cs_cli_fail_error(cli, error);
		return NULL;
	}
	for (guint i = 0; i < keys->len; i++) {
		const char *path, *s = "";
		g_autoptr(GVariant) props = NULL;
		g_variant_get(g_ptr_array_index(keys, i), "(&o@a{sv})", &path, &props);
		g_variant_lookup(props, "Serial", "&s", &s);
		if (serial == NULL && keys->len == 1)
			found = g_strdup(path);
		else if (serial != NULL && g_strcmp0(serial, s) == 0)
			found = g_strdup(path);
	}
	if (found != NULL)
		return found;
	if (serial == NULL && keys->len > 1)
		*rc = cs_cli_fail(
		    cli, CS_EXIT_REFUSED, "org.certseal.Error.MultipleKeys",
		    "several USB keys are inserted: name one by its serial (certseal keys)");
	else
		*rc = cs_cli_fail(cli, CS_EXIT_NOT_FOUND, "org.certseal.Error.NoKey",
				  serial != NULL ? "no inserted USB key has that serial"
						 : "no USB key is inserted");
	return NULL;
}

static int
cmd_login(CsCli *cli, int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autofree char *path = NULL;
	char *pin;
	int rc = CS_EXIT_OK;

	if (argc > 1)
		return cs_cli_fail(
		    cli, CS_EXIT_USAGE, "usage",
		    "usage: certseal login [SERIAL]  (PIN from the terminal or stdin)");
	path = cs_cli_find_key(cli, argc == 1 ? argv[0] : NULL, &rc);
	if (path == NULL)
		return rc;
	pin = cs_cli_read_secret(cli, "PIN");
	if (pin == NULL)
		return cs_cli_fail(cli, CS_EXIT_USAGE, "usage", "no PIN given");
	reply = cs_cli_call(cli, path, CS_CLI_KEY_IFACE, "Login", g_variant_new("(s)", pin), NULL,
			    &error);
	cs_cli_free_secret(pin);
	if (reply == NULL)
		return cs_cli_fail_error(cli, error);
	if (cli->json)
		g_print("{\"logged_in\":true}\n");
	else
		g_print("Logged in.\n");
	return CS_EXIT_OK;
}

static int
cmd_change_pin(CsCli *cli, int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autofree char *path = NULL;
	char *old_pin, *new_pin, *again;
	int rc = CS_EXIT_OK;

	if (argc > 1)
		return cs_cli_fail(
		    cli, CS_EXIT_USAGE, "usage",
		    "usage: certseal change-pin [SERIAL]  (PINs from the terminal or stdin)");
	path = cs_cli_find_key(cli, argc == 1 ? argv[0] : NULL, &rc);
	if (path == NULL)
		return rc;
	old_pin = cs_cli_read_secret(cli, "Current PIN");
	new_pin = cs_cli_read_secret(cli, "New PIN");
	again = cs_cli_read_secret(cli, "New PIN again");
	if (old_pin == NULL || new_pin == NULL || again == NULL || strcmp(new_pin, again) != 0) {
		cs_cli_free_secret(old_pin);
		cs_cli_free_secret(new_pin);
		cs_cli_free_secret(again);
		return cs_cli_fail(cli, CS_EXIT_USAGE, "usage",
				   "the new PIN was not given twice the same");
	}
	reply = cs_cli_call(cli, path, CS_CLI_KEY_IFACE, "ChangePin",
			    g_variant_new("(ss)", old_pin, new_pin), NULL, &error);
	cs_cli_free_secret(old_pin);
	cs_cli_free_secret(new_pin);
	cs_cli_free_secret(again);
	if (reply == NULL)
		return cs_cli_fail_error(cli, error);
	if (cli->json)
		g_print("{\"changed\":true}\n");
	else
		g_print("PIN changed.\n");
	return CS_EXIT_OK;
}

typedef struct {
	const char *name;
	int (*run)(CsCli *cli, int argc, char **argv);
	const char *summary;
} Command;

#define SEAL_SIGN_USAGE "usage: certseal seal sign DOC [--key SERIAL] [--output FILE]"

/*
 * `certseal seal sign DOC --key SERIAL [--output FILE]` (docs/architecture.md §3.6): the key's
 * SealDocument, the document passed as an fd (the daemon reads it; the name sent is its
 * basename). --key may be left out when exactly one key is inserted. Writes the DER
 * SES_Signature to FILE, by default DOC.ses.
 */
static int
cmd_seal_sign(CsCli *cli, int argc, char **argv)
{
	const char *doc = NULL, *serial = NULL, *output_arg = NULL;
	g_autofree char *output = NULL, *basename = NULL, *path = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) keys = NULL;
	g_autoptr(GUnixFDList) fds = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) sig = NULL;
	const guint8 *data;
	gsize len = 0;
	int fd;

	for (int i = 0; i < argc; i++) {
		if (g_strcmp0(argv[i], "--key") == 0 && i + 1 < argc)
			serial = argv[++i];
		else if (g_strcmp0(argv[i], "--output") == 0 && i + 1 < argc)
			output_arg = argv[++i];
		else if (argv[i][0] != '-' && doc == NULL)
			doc = argv[i];
		else
			return cs_cli_fail(cli, CS_EXIT_USAGE, "usage", SEAL_SIGN_USAGE);
	}
	if (doc == NULL)
		return cs_cli_fail(cli, CS_EXIT_USAGE, "usage", SEAL_SIGN_USAGE);
	keys = list_keys(cli, &error);
	if (keys == NULL)
		return cs_cli_fail_error(cli, error);
	for (guint i = 0; i < keys->len; i++) {
		const char *p, *s = "";
		g_autoptr(GVariant) props = NULL;
		g_variant_get(g_ptr_array_index(keys, i), "(&o@a{sv})", &p, &props);
		g_variant_lookup(props, "Serial", "&s", &s);
		if ((serial == NULL && keys->len == 1) || g_strcmp0(serial, s) == 0)
			path = g_strdup(p);
	}
	if (path == NULL) {
		g_autofree char *msg = NULL;
		if (serial != NULL)
			msg = g_strdup_printf(
			    "no inserted USB key has the serial %s (certseal keys)", serial);
		else if (keys->len > 1)
			msg = g_strdup("several USB keys are inserted: name one with --key SERIAL "
				       "(certseal keys)");
		else
			msg = g_strdup("no USB key is inserted");
		return cs_cli_fail(
		    cli, serial == NULL && keys->len > 1 ? CS_EXIT_REFUSED : CS_EXIT_NOT_FOUND,
		    serial == NULL && keys->len > 1 ? "org.certseal.Error.MultipleKeys"
						    : "org.certseal.Error.NoKey",
		    msg);
	}
	fd = open(doc, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		g_autofree char *msg = g_strdup_printf("%s: %s", doc, g_strerror(errno));
		return cs_cli_fail(cli, CS_EXIT_REFUSED, "org.certseal.Error.InvalidInput", msg);
	}
	fds = g_unix_fd_list_new_from_array(&fd, 1); /* takes @fd */
	basename = g_path_get_basename(doc);
	reply = g_dbus_connection_call_with_unix_fd_list_sync(
	    cli->bus, CS_CLI_BUS_NAME, path, CS_CLI_KEY_IFACE, "SealDocument",
	    g_variant_new("(sh)", basename, 0), G_VARIANT_TYPE("(ay)"), G_DBUS_CALL_FLAGS_NONE,
	    120000, fds, NULL, NULL, &error);
	if (reply == NULL)
		return cs_cli_fail_error(cli, error);
	sig = g_variant_get_child_value(reply, 0);
	data = g_variant_get_fixed_array(sig, &len, 1);
	output = output_arg != NULL ? g_strdup(output_arg) : g_strconcat(doc, ".ses", NULL);
	if (!g_file_set_contents(output, (const char *)data, (gssize)len, &error))
		return cs_cli_fail(cli, CS_EXIT_REFUSED, "org.certseal.Error.Internal",
				   error->message);
	if (cli->json) {
		g_autoptr(GString) s = g_string_new("{\"document\":");
		cs_json_append_string(s, doc);
		g_string_append(s, ",\"serial\":");
		cs_json_append_string(s, serial != NULL ? serial : "");
		g_string_append(s, ",\"output\":");
		cs_json_append_string(s, output);
		g_string_append_printf(s, ",\"size\":%" G_GSIZE_FORMAT "}", len);
		g_print("%s\n", s->str);
	} else {
		g_print("Sealed %s: %s (%" G_GSIZE_FORMAT " bytes)\n", doc, output, len);
	}
	return CS_EXIT_OK;
}

#define SEAL_READ_USAGE "usage: certseal seal read [--key SERIAL] --output FILE [--force]"

/*
 * `certseal seal read [--key SERIAL] --output FILE [--force]`: the key's e-seal (DER
 * SESeal, Key.ReadSeal) written to FILE, for `certseal seal show|verify FILE`. --key may
 * be left out when exactly one key is inserted.
 */
static int
cmd_seal_read(CsCli *cli, int argc, char **argv)
{
	const char *serial = NULL, *output = NULL;
	gboolean force = FALSE;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) seal = NULL;
	g_autofree char *path = NULL;
	const guint8 *data;
	gsize len = 0;
	int rc = CS_EXIT_OK;

	for (int i = 0; i < argc; i++) {
		if (g_strcmp0(argv[i], "--key") == 0 && i + 1 < argc)
			serial = argv[++i];
		else if (g_strcmp0(argv[i], "--output") == 0 && i + 1 < argc)
			output = argv[++i];
		else if (g_strcmp0(argv[i], "--force") == 0)
			force = TRUE;
		else
			return cs_cli_fail(cli, CS_EXIT_USAGE, "usage", SEAL_READ_USAGE);
	}
	if (output == NULL)
		return cs_cli_fail(cli, CS_EXIT_USAGE, "usage", SEAL_READ_USAGE);
	path = cs_cli_find_key(cli, serial, &rc);
	if (path == NULL)
		return rc;
	reply = cs_cli_call(cli, path, CS_CLI_KEY_IFACE, "ReadSeal", NULL, "(ay)", &error);
	if (reply == NULL)
		return cs_cli_fail_error(cli, error);
	seal = g_variant_get_child_value(reply, 0);
	data = g_variant_get_fixed_array(seal, &len, 1);
	return cs_cli_save_output(cli, "The key's seal", output, data, len, force);
}

/* Connect to the bus, run @run, disconnect. */
static int
with_bus(CsCli *cli, int (*run)(CsCli *cli, int argc, char **argv), int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	int rc;

	cli->bus =
	    g_bus_get_sync(cli->session ? G_BUS_TYPE_SESSION : G_BUS_TYPE_SYSTEM, NULL, &error);
	if (cli->bus == NULL) {
		g_autofree char *msg =
		    g_strdup_printf("cannot connect to the %s bus: %s",
				    cli->session ? "session" : "system", error->message);
		return cs_cli_fail(cli, CS_EXIT_UNREACHABLE, "org.freedesktop.DBus.Error.NoServer",
				   msg);
	}
	rc = run(cli, argc, argv);
	g_clear_object(&cli->bus);
	return rc;
}

static const Command commands[] = {
    {"status", cmd_status, "the daemon's version, flows, drivers and vendors"},
    {"apply", cs_cli_apply, "apply for a new certificate (新办), step by step"},
    {"renew", cs_cli_renew, "renew the certificate on the key inserted (更新) [--key SERIAL]"},
    {"change", cs_cli_change,
     "change the name or contacts on the key's certificate (变更) [--key SERIAL]"},
    {"orders", cmd_orders, "your orders [--state STATE]"},
    {"query", cs_cli_query,
     "订单查询: a subject's orders by a code to its phone --subject org|person --id NUMBER "
     "[--vendor ID] [--certificates]"},
    {"reissue", cs_cli_reissue,
     "补办: replace a lost or damaged key --subject org|person --id NUMBER --serial S "
     "--reason lost|damaged (queries first: the grant is per connection)"},
    {"order", cs_cli_order, "show|confirm|cancel|submit|send-code|verify ORDER_ID"},
    {"form", cs_cli_form, "a blank form: seal_form_org|seal_form_person --output FILE"},
    {"keys", cmd_keys, "the USB keys inserted [--json]"},
    {"login", cmd_login, "log in to a key [SERIAL] (PIN from the terminal or stdin)"},
    {"change-pin", cmd_change_pin, "change a key's PIN [SERIAL] (old, new, new again)"},
    {"unlock", cs_cli_unlock, "reset a forgotten or locked PIN (解锁) [--key SERIAL]"},
};

static void
usage(void)
{
	g_printerr("usage: certseal [--session] [--json] COMMAND …\n\ncommands:\n");
	for (guint i = 0; i < G_N_ELEMENTS(commands); i++)
		g_printerr("  %-10s %s\n", commands[i].name, commands[i].summary);
	g_printerr("  %-10s %s\n", "order", "attach ORDER_ID KIND FILE");
	g_printerr("  %-10s %s\n", "order", "pay ORDER_ID --channel sandbox|alipay|wechat");
	g_printerr("  %-10s %s\n", "order", "invoice ORDER_ID --output FILE [--force]");
	g_printerr("  %-10s %s\n", "order", "download ORDER_ID --key SERIAL (resume a renewal)");
	g_printerr("  %-10s %s\n", "order",
		   "continue ORDER_ID (the order's next step: confirm, "
		   "submit, verify, pay, download)");
	g_printerr("  %-10s %s\n", "renew",
		   "[--key SERIAL] [--subject org|person] [--fields FILE] [--channel C] [--yes]");
	g_printerr("  %-10s %s\n", "change",
		   "[--key SERIAL] [--subject org|person] [--fields FILE] [--material KIND=PATH]… "
		   "[--yes]");
	g_printerr("  %-10s %s\n", "apply",
		   "--subject org|person --fields FILE [--material KIND=PATH]… [--channel C] "
		   "[--no-submit] [--code-from-stdin] --yes");
	g_printerr("  %-10s %s\n", "seal", "show|verify FILE [--document DOC] [--ca PEM] (local)");
	g_printerr("  %-10s %s\n", "seal",
		   "sign DOC --key SERIAL [--output FILE] (default DOC.ses)");
	g_printerr("  %-10s %s\n", "seal", "read [--key SERIAL] --output FILE (the key's e-seal)");
	g_printerr("\nSMS codes and PINs are read from the terminal or stdin, never from the "
		   "command line.\n");
	g_printerr("exit codes: 0 done, 1 refused by the daemon, 2 usage, 3 daemon unreachable, "
		   "4 no such order\n");
}

int
main(int argc, char **argv)
{
	CsCli cli = {0};
	int i = 1;

	setlocale(LC_ALL, "");
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (g_strcmp0(argv[i], "--json") == 0)
			cli.json = TRUE;
		else if (g_strcmp0(argv[i], "--session") == 0)
			cli.session = TRUE;
		else if (g_strcmp0(argv[i], "--help") == 0 || g_strcmp0(argv[i], "-h") == 0) {
			usage();
			return CS_EXIT_OK;
		} else {
			usage();
			return CS_EXIT_USAGE;
		}
	}
	if (i >= argc) {
		usage();
		return CS_EXIT_USAGE;
	}
	/* Seals are read and verified here, with the daemon's own code: no bus needed.
	 * Signing and reading a key's seal need the key, through the daemon. */
	if (g_strcmp0(argv[i], "seal") == 0 && i + 1 < argc && g_strcmp0(argv[i + 1], "sign") == 0)
		return with_bus(&cli, cmd_seal_sign, argc - i - 2, argv + i + 2);
	if (g_strcmp0(argv[i], "seal") == 0 && i + 1 < argc && g_strcmp0(argv[i + 1], "read") == 0)
		return with_bus(&cli, cmd_seal_read, argc - i - 2, argv + i + 2);
	if (g_strcmp0(argv[i], "seal") == 0)
		return cs_cli_seal(cli.json, argc - i - 1, argv + i + 1);
	for (guint c = 0; c < G_N_ELEMENTS(commands); c++) {
		if (g_strcmp0(commands[c].name, argv[i]) == 0)
			return with_bus(&cli, commands[c].run, argc - i - 1, argv + i + 1);
	}
	usage();
	return CS_EXIT_USAGE;
}
