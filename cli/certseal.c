/*
 * certseal.c — the desktop user's command line, a client of org.certseal.CertSeal1.
 *
 * Rules every command keeps: with --json, stdout carries exactly one JSON document and
 * nothing ever prompts; errors go to stderr, in --json mode as
 * {"error": {"code": "<D-Bus error name>", "message": "…"}} on stdout. Colours never.
 *
 * Exit codes (scripts rely on them):
 *   0  done
 *   1  the daemon refused (the error's name and message are printed)
 *   2  usage error
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
#include <termios.h>
#include <unistd.h>

#include "cs-cli-seal.h"
#include "cs-json.h"

#define BUS_NAME "org.certseal.CertSeal1"
#define MANAGER_PATH "/org/certseal/CertSeal1"
#define ORDERS_PATH MANAGER_PATH "/orders"
#define MANAGER_IFACE "org.certseal.CertSeal1.Manager"
#define ORDER_IFACE "org.certseal.CertSeal1.Order"
#define KEY_IFACE "org.certseal.CertSeal1.Key"

enum {
	EXIT_OK = 0,
	EXIT_REFUSED = 1,
	EXIT_USAGE = 2,
	EXIT_UNREACHABLE = 3,
	EXIT_NOT_FOUND = 4,
};

typedef struct {
	GDBusConnection *bus;
	gboolean json;
	gboolean session;
} Cli;

static int
fail(Cli *cli, int code, const char *name, const char *message)
{
	if (cli->json) {
		g_autoptr(GString) s = g_string_new("{\"error\":{\"code\":");
		cs_json_append_string(s, name);
		g_string_append(s, ",\"message\":");
		cs_json_append_string(s, message);
		g_string_append(s, "}}");
		g_print("%s\n", s->str);
	} else {
		g_printerr("certseal: %s\n", message);
	}
	return code;
}

/* Map a D-Bus call error to an exit code and print it. */
static int
fail_error(Cli *cli, GError *error)
{
	g_autofree char *remote = g_dbus_error_get_remote_error(error);
	int code = EXIT_REFUSED;

	g_dbus_error_strip_remote_error(error);
	if (remote == NULL)
		remote = g_strdup("org.certseal.Error.Internal");
	if (g_strcmp0(remote, "org.freedesktop.DBus.Error.ServiceUnknown") == 0 ||
	    g_strcmp0(remote, "org.freedesktop.DBus.Error.NameHasNoOwner") == 0 ||
	    g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT) ||
	    g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CLOSED)) {
		code = EXIT_UNREACHABLE;
		g_autofree char *msg =
		    g_strdup_printf("certseald is not running on the %s bus (%s)",
				    cli->session ? "session" : "system", error->message);
		return fail(cli, code, remote, msg);
	}
	if (g_strcmp0(remote, "org.freedesktop.DBus.Error.UnknownObject") == 0 ||
	    g_strcmp0(remote, "org.freedesktop.DBus.Error.UnknownMethod") == 0 ||
	    g_strcmp0(remote, "org.certseal.Error.NotFound") == 0)
		code = EXIT_NOT_FOUND;
	return fail(cli, code, remote, error->message);
}

static GVariant *
call(Cli *cli,
     const char *path,
     const char *iface,
     const char *method,
     GVariant *args,
     const char *reply_type,
     GError **error)
{
	return g_dbus_connection_call_sync(cli->bus, BUS_NAME, path, iface, method, args,
					   reply_type != NULL ? G_VARIANT_TYPE(reply_type) : NULL,
					   G_DBUS_CALL_FLAGS_NONE, 30000, NULL, error);
}

/* All properties of @iface at @path as an a{sv}. */
static GVariant *
get_all(Cli *cli, const char *path, const char *iface, GError **error)
{
	g_autoptr(GVariant) reply = call(cli, path, "org.freedesktop.DBus.Properties", "GetAll",
					 g_variant_new("(s)", iface), "(a{sv})", error);
	if (reply == NULL)
		return NULL;
	return g_variant_get_child_value(reply, 0);
}

static GVariant *
get_property(Cli *cli, const char *path, const char *iface, const char *name, GError **error)
{
	g_autoptr(GVariant) reply = call(cli, path, "org.freedesktop.DBus.Properties", "Get",
					 g_variant_new("(ss)", iface, name), "(v)", error);
	GVariant *value = NULL;

	if (reply == NULL)
		return NULL;
	g_variant_get(reply, "(v)", &value);
	return value;
}

static void
print_json(GVariant *value)
{
	g_autofree char *s = cs_json_from_variant(value);
	g_print("%s\n", s);
}

static char *
join_strv(GVariant *dict, const char *key)
{
	g_autofree const char **strv = NULL;

	if (!g_variant_lookup(dict, key, "^a&s", &strv) || strv[0] == NULL)
		return g_strdup("—");
	return g_strjoinv(", ", (char **)strv);
}

static char *
format_time(guint64 seconds)
{
	g_autoptr(GDateTime) dt = g_date_time_new_from_unix_local((gint64)seconds);
	return dt != NULL ? g_date_time_format(dt, "%Y-%m-%d %H:%M:%S") : g_strdup("?");
}

/* --- commands ----------------------------------------------------------------------- */

static int
cmd_status(Cli *cli, int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) props = get_all(cli, MANAGER_PATH, MANAGER_IFACE, &error);
	g_autoptr(GVariant) vendors = NULL;
	g_autofree char *plugins = NULL;
	g_autofree char *drivers = NULL;
	const char *version = "?";
	GVariantIter iter;
	const char *id, *name, *driver;

	if (argc != 0)
		return fail(cli, EXIT_USAGE, "usage", "status takes no arguments");
	if (props == NULL)
		return fail_error(cli, error);
	if (cli->json) {
		print_json(props);
		return EXIT_OK;
	}
	g_variant_lookup(props, "Version", "&s", &version);
	plugins = join_strv(props, "Plugins");
	drivers = join_strv(props, "Drivers");
	g_print("certseald %s on the %s bus\n", version, cli->session ? "session" : "system");
	g_print("  Flows:    %s\n", plugins);
	g_print("  Drivers:  %s\n", drivers);
	vendors = g_variant_lookup_value(props, "Vendors", G_VARIANT_TYPE("a(sss)"));
	if (vendors == NULL || g_variant_n_children(vendors) == 0) {
		g_print("  Vendors:  —\n");
		return EXIT_OK;
	}
	g_print("  Vendors:\n");
	g_variant_iter_init(&iter, vendors);
	while (g_variant_iter_next(&iter, "(&s&s&s)", &id, &name, &driver))
		g_print("    %-12s %s  [driver %s]\n", id, name, driver);
	return EXIT_OK;
}

static int
cmd_orders(Cli *cli, int argc, char **argv)
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
		return fail(cli, EXIT_USAGE, "usage", "usage: certseal orders [--state STATE]");
	reply = call(cli, MANAGER_PATH, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects",
		     NULL, "(a{oa{sa{sv}}})", &error);
	if (reply == NULL)
		return fail_error(cli, error);
	objects = g_variant_get_child_value(reply, 0);
	g_variant_iter_init(&iter, objects);
	while (g_variant_iter_next(&iter, "{&o@a{sa{sv}}}", &path, &ifaces)) {
		g_autoptr(GVariant) owned = ifaces;
		g_autoptr(GVariant) props =
		    g_variant_lookup_value(ifaces, ORDER_IFACE, G_VARIANT_TYPE("a{sv}"));
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
		print_json(list);
		return EXIT_OK;
	}
	if (rows->len == 0) {
		g_print("No orders.\n");
		return EXIT_OK;
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
		when = format_time(updated);
		g_print("%-18s %-8s %-7s %-14s %s\n", id, kind, subject, state, when);
	}
	return EXIT_OK;
}

static gboolean
valid_order_id(const char *id)
{
	if (id == NULL || *id == '\0' || strlen(id) > 64)
		return FALSE;
	for (const char *p = id; *p != '\0'; p++) {
		if (!g_ascii_isalnum(*p))
			return FALSE;
	}
	return TRUE;
}

static int
order_show(Cli *cli, const char *path)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) props = get_all(cli, path, ORDER_IFACE, &error);
	g_autoptr(GVariant) fields = NULL;
	g_autoptr(GVariant) history = NULL;
	g_autofree char *next = NULL, *missing = NULL, *warnings = NULL, *materials = NULL;
	const char *id = "?", *kind = "?", *subject = "?", *state = "?", *vendor = "";
	guint64 amount = 0;
	GVariantIter iter;

	if (props == NULL)
		return fail_error(cli, error);
	fields = get_property(cli, path, ORDER_IFACE, "Fields", &error);
	if (fields == NULL)
		return fail_error(cli, error);
	if (cli->json) {
		g_autoptr(GVariantDict) d = g_variant_dict_new(props);
		g_variant_dict_insert_value(d, "Fields", fields);
		g_autoptr(GVariant) all = g_variant_ref_sink(g_variant_dict_end(d));
		print_json(all);
		return EXIT_OK;
	}
	g_variant_lookup(props, "Id", "&s", &id);
	g_variant_lookup(props, "Kind", "&s", &kind);
	g_variant_lookup(props, "SubjectType", "&s", &subject);
	g_variant_lookup(props, "State", "&s", &state);
	g_variant_lookup(props, "Vendor", "&s", &vendor);
	g_variant_lookup(props, "AmountFen", "t", &amount);
	next = join_strv(props, "NextActions");
	missing = join_strv(props, "Missing");
	materials = join_strv(props, "Materials");
	warnings = join_strv(props, "Warnings");

	g_print("Order %s (%s, %s)\n", id, kind, subject);
	g_print("  State:     %s\n", state);
	g_print("  Vendor:    %s\n", *vendor != '\0' ? vendor : "—");
	g_print("  Amount:    ¥%" G_GUINT64_FORMAT ".%02u\n", amount / 100, (guint)(amount % 100));
	g_print("  Next:      %s\n", next);
	g_print("  Missing:   %s\n", missing);
	g_print("  Materials: %s\n", materials);
	g_print("  Warnings:  %s\n", warnings);
	g_print("  Fields:\n");
	{
		const char *k;
		GVariant *v;
		g_variant_iter_init(&iter, fields);
		while (g_variant_iter_next(&iter, "{&sv}", &k, &v)) {
			g_autoptr(GVariant) owned = v;
			g_autofree char *text = g_variant_is_of_type(v, G_VARIANT_TYPE_STRING)
						    ? g_variant_dup_string(v, NULL)
						    : g_variant_print(v, FALSE);
			g_print("    %-20s %s\n", k, text);
		}
	}
	history = g_variant_lookup_value(props, "History", G_VARIANT_TYPE("a(tss)"));
	g_print("  History:\n");
	if (history != NULL) {
		guint64 t;
		const char *st, *note;
		g_variant_iter_init(&iter, history);
		while (g_variant_iter_next(&iter, "(t&s&s)", &t, &st, &note)) {
			g_autofree char *when = format_time(t);
			g_print("    %s  %-14s %s\n", when, st, note);
		}
	}
	return EXIT_OK;
}

/* certseal order attach ID KIND FILE: the file is opened here and its fd passed, so the
 * daemon reads what the caller may read, and only that. */
static int
order_attach(Cli *cli, const char *path, const char *kind, const char *file)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GUnixFDList) fds = g_unix_fd_list_new();
	g_autoptr(GVariant) reply = NULL;
	g_autofree char *base = g_path_get_basename(file);
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	int index;

	if (fd < 0) {
		g_autofree char *msg = g_strdup_printf("%s: %s", file, g_strerror(errno));
		return fail(cli, EXIT_USAGE, "file", msg);
	}
	index = g_unix_fd_list_append(fds, fd, &error);
	close(fd);
	if (index < 0)
		return fail_error(cli, error);
	reply = g_dbus_connection_call_with_unix_fd_list_sync(
	    cli->bus, BUS_NAME, path, ORDER_IFACE, "AttachMaterial",
	    g_variant_new("(ssh)", kind, base, index), NULL, G_DBUS_CALL_FLAGS_NONE, 120000, fds,
	    NULL, NULL, &error);
	if (reply == NULL)
		return fail_error(cli, error);
	return order_show(cli, path);
}

static int
cmd_order(Cli *cli, int argc, char **argv)
{
	g_autofree char *path = NULL;
	const char *verb;
	const char *method = NULL;

	if (argc == 4 && g_strcmp0(argv[0], "attach") == 0) {
		if (!valid_order_id(argv[1]))
			return fail(cli, EXIT_USAGE, "usage",
				    "ORDER_ID: letters and digits only, e.g. CS20261124000001");
		path = g_strdup_printf("%s/%s", ORDERS_PATH, argv[1]);
		return order_attach(cli, path, argv[2], argv[3]);
	}
	if (argc != 2)
		return fail(cli, EXIT_USAGE, "usage",
			    "usage: certseal order show|confirm|cancel ORDER_ID");
	verb = argv[0];
	if (!valid_order_id(argv[1]))
		return fail(cli, EXIT_USAGE, "usage",
			    "ORDER_ID: letters and digits only, e.g. CS20261124000001");
	path = g_strdup_printf("%s/%s", ORDERS_PATH, argv[1]);
	if (g_strcmp0(verb, "show") == 0)
		return order_show(cli, path);
	if (g_strcmp0(verb, "confirm") == 0)
		method = "Confirm";
	else if (g_strcmp0(verb, "cancel") == 0)
		method = "Cancel";
	else
		return fail(cli, EXIT_USAGE, "usage",
			    "usage: certseal order show|confirm|cancel ORDER_ID");
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) reply =
		    call(cli, path, ORDER_IFACE, method, NULL, NULL, &error);
		if (reply == NULL)
			return fail_error(cli, error);
	}
	return order_show(cli, path);
}

/* --- keys --------------------------------------------------------------------------- */

/* The Key objects: (path, properties) pairs, sorted by path. */
static GPtrArray *
list_keys(Cli *cli, GError **error)
{
	g_autoptr(GVariant) reply = call(cli, MANAGER_PATH, "org.freedesktop.DBus.ObjectManager",
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
		    g_variant_lookup_value(ifaces, KEY_IFACE, G_VARIANT_TYPE("a{sv}"));
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
cmd_keys(Cli *cli, int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) keys = NULL;

	if (argc == 1 && g_strcmp0(argv[0], "--json") == 0)
		cli->json = TRUE;
	else if (argc != 0)
		return fail(cli, EXIT_USAGE, "usage", "usage: certseal keys [--json]");
	keys = list_keys(cli, &error);
	if (keys == NULL)
		return fail_error(cli, error);
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
		print_json(list);
		return EXIT_OK;
	}
	if (keys->len == 0) {
		g_print("No USB key is inserted.\n");
		return EXIT_OK;
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
	return EXIT_OK;
}

/* The path of the key named by serial, or of the only key when @serial is NULL. */
static char *
find_key(Cli *cli, const char *serial, int *rc)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) keys = list_keys(cli, &error);
	char *found = NULL;

	if (keys == NULL) {
		*rc = fail_error(cli, error);
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
		*rc = fail(cli, EXIT_REFUSED, "org.certseal.Error.MultipleKeys",
			   "several USB keys are inserted: name one by its serial (certseal keys)");
	else
		*rc = fail(cli, EXIT_NOT_FOUND, "org.certseal.Error.NoKey",
			   serial != NULL ? "no inserted USB key has that serial"
					  : "no USB key is inserted");
	return NULL;
}

/* A PIN from the terminal without echo, or a line of stdin for scripts; never argv. */
static char *
read_pin(Cli *cli, const char *prompt)
{
	struct termios old, quiet;
	gboolean tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
	char buf[256];
	char *line;

	if (tty && !cli->json) {
		g_printerr("%s: ", prompt);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	line = fgets(buf, sizeof(buf), stdin);
	if (tty && !cli->json) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		g_printerr("\n");
	}
	if (line == NULL)
		return NULL;
	buf[strcspn(buf, "\r\n")] = '\0';
	line = g_strdup(buf);
	explicit_bzero(buf, sizeof(buf));
	return line;
}

static void
free_pin(char *pin)
{
	if (pin != NULL)
		explicit_bzero(pin, strlen(pin));
	g_free(pin);
}

static int
cmd_login(Cli *cli, int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autofree char *path = NULL;
	char *pin;
	int rc = EXIT_OK;

	if (argc > 1)
		return fail(cli, EXIT_USAGE, "usage",
			    "usage: certseal login [SERIAL]  (PIN from the terminal or stdin)");
	path = find_key(cli, argc == 1 ? argv[0] : NULL, &rc);
	if (path == NULL)
		return rc;
	pin = read_pin(cli, "PIN");
	if (pin == NULL)
		return fail(cli, EXIT_USAGE, "usage", "no PIN given");
	reply = call(cli, path, KEY_IFACE, "Login", g_variant_new("(s)", pin), NULL, &error);
	free_pin(pin);
	if (reply == NULL)
		return fail_error(cli, error);
	if (cli->json)
		g_print("{\"logged_in\":true}\n");
	else
		g_print("Logged in.\n");
	return EXIT_OK;
}

static int
cmd_change_pin(Cli *cli, int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autofree char *path = NULL;
	char *old_pin, *new_pin, *again;
	int rc = EXIT_OK;

	if (argc > 1)
		return fail(
		    cli, EXIT_USAGE, "usage",
		    "usage: certseal change-pin [SERIAL]  (PINs from the terminal or stdin)");
	path = find_key(cli, argc == 1 ? argv[0] : NULL, &rc);
	if (path == NULL)
		return rc;
	old_pin = read_pin(cli, "Current PIN");
	new_pin = read_pin(cli, "New PIN");
	again = read_pin(cli, "New PIN again");
	if (old_pin == NULL || new_pin == NULL || again == NULL || strcmp(new_pin, again) != 0) {
		free_pin(old_pin);
		free_pin(new_pin);
		free_pin(again);
		return fail(cli, EXIT_USAGE, "usage", "the new PIN was not given twice the same");
	}
	reply = call(cli, path, KEY_IFACE, "ChangePin", g_variant_new("(ss)", old_pin, new_pin),
		     NULL, &error);
	free_pin(old_pin);
	free_pin(new_pin);
	free_pin(again);
	if (reply == NULL)
		return fail_error(cli, error);
	if (cli->json)
		g_print("{\"changed\":true}\n");
	else
		g_print("PIN changed.\n");
	return EXIT_OK;
}

typedef struct {
	const char *name;
	int (*run)(Cli *cli, int argc, char **argv);
	const char *summary;
} Command;

#define SEAL_SIGN_USAGE "usage: certseal seal sign DOC [--key SERIAL] [--output FILE]"

/*
 * `certseal seal sign DOC --key SERIAL [--output FILE]` (DESIGN §3.6): the key's
 * SealDocument, the document passed as an fd (the daemon reads it; the name sent is its
 * basename). --key may be left out when exactly one key is inserted. Writes the DER
 * SES_Signature to FILE, by default DOC.ses.
 */
static int
cmd_seal_sign(Cli *cli, int argc, char **argv)
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
			return fail(cli, EXIT_USAGE, "usage", SEAL_SIGN_USAGE);
	}
	if (doc == NULL)
		return fail(cli, EXIT_USAGE, "usage", SEAL_SIGN_USAGE);
	keys = list_keys(cli, &error);
	if (keys == NULL)
		return fail_error(cli, error);
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
		return fail(cli, serial == NULL && keys->len > 1 ? EXIT_REFUSED : EXIT_NOT_FOUND,
			    serial == NULL && keys->len > 1 ? "org.certseal.Error.MultipleKeys"
							    : "org.certseal.Error.NoKey",
			    msg);
	}
	fd = open(doc, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		g_autofree char *msg = g_strdup_printf("%s: %s", doc, g_strerror(errno));
		return fail(cli, EXIT_REFUSED, "org.certseal.Error.InvalidInput", msg);
	}
	fds = g_unix_fd_list_new_from_array(&fd, 1); /* takes @fd */
	basename = g_path_get_basename(doc);
	reply = g_dbus_connection_call_with_unix_fd_list_sync(
	    cli->bus, BUS_NAME, path, KEY_IFACE, "SealDocument", g_variant_new("(sh)", basename, 0),
	    G_VARIANT_TYPE("(ay)"), G_DBUS_CALL_FLAGS_NONE, 120000, fds, NULL, NULL, &error);
	if (reply == NULL)
		return fail_error(cli, error);
	sig = g_variant_get_child_value(reply, 0);
	data = g_variant_get_fixed_array(sig, &len, 1);
	output = output_arg != NULL ? g_strdup(output_arg) : g_strconcat(doc, ".ses", NULL);
	if (!g_file_set_contents(output, (const char *)data, (gssize)len, &error))
		return fail(cli, EXIT_REFUSED, "org.certseal.Error.Internal", error->message);
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
	return EXIT_OK;
}

static const Command commands[] = {
    {"status", cmd_status, "the daemon's version, flows, drivers and vendors"},
    {"orders", cmd_orders, "your orders [--state STATE]"},
    {"order", cmd_order, "show|confirm|cancel ORDER_ID | attach ORDER_ID KIND FILE"},
    {"keys", cmd_keys, "the USB keys inserted [--json]"},
    {"login", cmd_login, "log in to a key [SERIAL] (PIN from the terminal or stdin)"},
    {"change-pin", cmd_change_pin, "change a key's PIN [SERIAL] (old, new, new again)"},
};

static void
usage(void)
{
	g_printerr("usage: certseal [--session] [--json] COMMAND …\n\ncommands:\n");
	for (guint i = 0; i < G_N_ELEMENTS(commands); i++)
		g_printerr("  %-10s %s\n", commands[i].name, commands[i].summary);
	g_printerr("  %-10s %s\n", "seal", "show|verify FILE [--document DOC] [--ca PEM] (local)");
	g_printerr("  %-10s %s\n", "seal",
		   "sign DOC --key SERIAL [--output FILE] (default DOC.ses)");
	g_printerr("\nexit codes: 0 done, 1 refused by the daemon, 2 usage, 3 daemon unreachable, "
		   "4 no such order\n");
}

int
main(int argc, char **argv)
{
	Cli cli = {0};
	g_autoptr(GError) error = NULL;
	int i = 1;
	int rc;

	setlocale(LC_ALL, "");
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (g_strcmp0(argv[i], "--json") == 0)
			cli.json = TRUE;
		else if (g_strcmp0(argv[i], "--session") == 0)
			cli.session = TRUE;
		else if (g_strcmp0(argv[i], "--help") == 0 || g_strcmp0(argv[i], "-h") == 0) {
			usage();
			return EXIT_OK;
		} else {
			usage();
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		usage();
		return EXIT_USAGE;
	}
	/* Seals are read and verified here, with the daemon's own code: no bus needed.
	 * Signing needs the key, through the daemon. */
	if (g_strcmp0(argv[i], "seal") == 0 && i + 1 < argc &&
	    g_strcmp0(argv[i + 1], "sign") == 0) {
		cli.bus = g_bus_get_sync(cli.session ? G_BUS_TYPE_SESSION : G_BUS_TYPE_SYSTEM, NULL,
					 &error);
		if (cli.bus == NULL) {
			g_autofree char *msg =
			    g_strdup_printf("cannot connect to the %s bus: %s",
					    cli.session ? "session" : "system", error->message);
			return fail(&cli, EXIT_UNREACHABLE, "org.freedesktop.DBus.Error.NoServer",
				    msg);
		}
		rc = cmd_seal_sign(&cli, argc - i - 2, argv + i + 2);
		g_object_unref(cli.bus);
		return rc;
	}
	if (g_strcmp0(argv[i], "seal") == 0)
		return cs_cli_seal(cli.json, argc - i - 1, argv + i + 1);
	for (guint c = 0; c < G_N_ELEMENTS(commands); c++) {
		if (g_strcmp0(commands[c].name, argv[i]) != 0)
			continue;
		cli.bus = g_bus_get_sync(cli.session ? G_BUS_TYPE_SESSION : G_BUS_TYPE_SYSTEM, NULL,
					 &error);
		if (cli.bus == NULL) {
			g_autofree char *msg =
			    g_strdup_printf("cannot connect to the %s bus: %s",
					    cli.session ? "session" : "system", error->message);
			return fail(&cli, EXIT_UNREACHABLE, "org.freedesktop.DBus.Error.NoServer",
				    msg);
		}
		rc = commands[c].run(&cli, argc - i - 1, argv + i + 1);
		g_object_unref(cli.bus);
		return rc;
	}
	usage();
	return EXIT_USAGE;
}
