/*
 * cs-cli.c — the helpers the `certseal` commands share (cs-cli.h): errors and exit codes,
 * synchronous calls on certseald, and secrets read from the terminal or stdin.
 */
#define G_LOG_DOMAIN "certseal"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cs-cli.h"
#include "cs-json.h"
#include "cs-tty.h"

int
cs_cli_fail(CsCli *cli, int code, const char *name, const char *message)
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

char *
cs_cli_error_name(const GError *error)
{
	return error != NULL ? g_dbus_error_get_remote_error(error) : NULL;
}

int
cs_cli_fail_error(CsCli *cli, GError *error)
{
	g_autofree char *remote = g_dbus_error_get_remote_error(error);
	int code = CS_EXIT_REFUSED;

	g_dbus_error_strip_remote_error(error);
	if (remote == NULL)
		remote = g_strdup("org.certseal.Error.Internal");
	if (g_strcmp0(remote, "org.freedesktop.DBus.Error.ServiceUnknown") == 0 ||
	    g_strcmp0(remote, "org.freedesktop.DBus.Error.NameHasNoOwner") == 0 ||
	    g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT) ||
	    g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CLOSED)) {
		code = CS_EXIT_UNREACHABLE;
		g_autofree char *msg =
		    g_strdup_printf("certseald is not running on the %s bus (%s)",
				    cli->session ? "session" : "system", error->message);
		return cs_cli_fail(cli, code, remote, msg);
	}
	if (g_strcmp0(remote, "org.freedesktop.DBus.Error.UnknownObject") == 0 &&
	    strstr(error->message, CS_CLI_ORDERS_PATH "/") != NULL) {
		/* An order this caller may not see is not told apart from one that does not
		 * exist; say so in the words of an order rather than of an object path. */
		g_autofree char *id = g_strdup(strstr(error->message, CS_CLI_ORDERS_PATH "/") +
					       strlen(CS_CLI_ORDERS_PATH "/"));
		g_autofree char *msg = NULL;

		id[strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")] =
		    '\0';
		msg = g_strdup_printf("order %s: no such order, or not yours (an order found by "
				      "certseal query is open to that command only)",
				      id);
		return cs_cli_fail(cli, CS_EXIT_NOT_FOUND, remote, msg);
	}
	if (g_strcmp0(remote, "org.freedesktop.DBus.Error.UnknownObject") == 0 ||
	    g_strcmp0(remote, "org.freedesktop.DBus.Error.UnknownMethod") == 0 ||
	    g_strcmp0(remote, "org.certseal.Error.NotFound") == 0)
		code = CS_EXIT_NOT_FOUND;
	return cs_cli_fail(cli, code, remote, error->message);
}

GVariant *
cs_cli_call(CsCli *cli,
	    const char *path,
	    const char *iface,
	    const char *method,
	    GVariant *args,
	    const char *reply_type,
	    GError **error)
{
	return g_dbus_connection_call_sync(cli->bus, CS_CLI_BUS_NAME, path, iface, method, args,
					   reply_type != NULL ? G_VARIANT_TYPE(reply_type) : NULL,
					   G_DBUS_CALL_FLAGS_NONE, 30000, NULL, error);
}

GVariant *
cs_cli_get_all(CsCli *cli, const char *path, const char *iface, GError **error)
{
	g_autoptr(GVariant) reply =
	    cs_cli_call(cli, path, "org.freedesktop.DBus.Properties", "GetAll",
			g_variant_new("(s)", iface), "(a{sv})", error);
	if (reply == NULL)
		return NULL;
	return g_variant_get_child_value(reply, 0);
}

GVariant *
cs_cli_get_property(
    CsCli *cli, const char *path, const char *iface, const char *name, GError **error)
{
	g_autoptr(GVariant) reply = cs_cli_call(cli, path, "org.freedesktop.DBus.Properties", "Get",
						g_variant_new("(ss)", iface, name), "(v)", error);
	GVariant *value = NULL;

	if (reply == NULL)
		return NULL;
	g_variant_get(reply, "(v)", &value);
	return value;
}

void
cs_cli_print_json(GVariant *value)
{
	g_autofree char *s = cs_json_from_variant(value);
	g_print("%s\n", s);
}

char *
cs_cli_join_strv(GVariant *dict, const char *key)
{
	g_autofree const char **strv = NULL;

	if (!g_variant_lookup(dict, key, "^a&s", &strv) || strv[0] == NULL)
		return g_strdup("—");
	return g_strjoinv(", ", (char **)strv);
}

char *
cs_cli_format_time(guint64 seconds)
{
	g_autoptr(GDateTime) dt = g_date_time_new_from_unix_local((gint64)seconds);
	return dt != NULL ? g_date_time_format(dt, "%Y-%m-%d %H:%M:%S") : g_strdup("?");
}

gboolean
cs_cli_valid_order_id(const char *id)
{
	if (id == NULL || *id == '\0' || strlen(id) > 64)
		return FALSE;
	for (const char *p = id; *p != '\0'; p++) {
		if (!g_ascii_isalnum(*p))
			return FALSE;
	}
	return TRUE;
}

char *
cs_cli_order_path(CsCli *cli, const char *id, int *rc)
{
	if (!cs_cli_valid_order_id(id)) {
		*rc = cs_cli_fail(cli, CS_EXIT_USAGE, "usage",
				  "ORDER_ID: letters and digits only, e.g. CS20261124000001");
		return NULL;
	}
	return g_strdup_printf("%s/%s", CS_CLI_ORDERS_PATH, id);
}

char *
cs_cli_read_secret(CsCli *cli, const char *prompt)
{
	(void)cli;
	return cs_tty_read_secret(prompt);
}

void
cs_cli_free_secret(char *secret)
{
	cs_tty_free_secret(secret);
}
