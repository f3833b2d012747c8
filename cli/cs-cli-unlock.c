/*
 * cs-cli-unlock.c — `certseal unlock`: a forgotten or locked PIN reset (解锁 / 找回密码,
 * docs/architecture.md §1.3), at a terminal or from a script.
 *
 *   certseal unlock [--key SERIAL] [--subject org|person] [--method METHOD]
 *                   [--fields FILE] [--vendor ID]
 *
 * The one key inserted (or --key), an unlock order with the identity method and its
 * details (FILE: a JSON object or key=value lines; what is missing is asked at a
 * terminal), Confirm and Submit; then the identity check runs and the authorization code
 * (授权码) arrives by the verified channel; the code and the new PIN (twice) are read from
 * the terminal without echo, or as three lines of stdin — never from argv. The daemon
 * holds every rule: this only walks its steps and shows its answers.
 */
#define G_LOG_DOMAIN "certseal"

#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cs-cli-order.h"
#include "cs-cli-unlock.h"

#define USAGE                                                                                      \
	"usage: certseal unlock [--key SERIAL] [--subject org|person] [--method METHOD]\n"         \
	"                       [--fields FILE] [--vendor ID]\n"                                   \
	"  the code and the new PIN (twice) from the terminal, or as three lines of stdin"
#define MAX_ASKS 8
#define AUTHORIZED_WAIT_S 120

typedef struct {
	CsCli *cli;
	GHashTable *fields; /* name → value */
	char *path;	    /* the order */
	char *id;
} Unlock;

static gboolean
load_fields(GHashTable *fields, const char *file, GError **error)
{
	g_autofree char *text = NULL;
	const char *start;

	if (!g_file_get_contents(file, &text, NULL, error))
		return FALSE;
	for (start = text; g_ascii_isspace(*start); start++)
		;
	if (*start == '{') {
		g_autoptr(JsonParser) parser = json_parser_new();
		JsonObjectIter iter;
		const char *name;
		JsonNode *value;
		if (!json_parser_load_from_data(parser, start, -1, error))
			return FALSE;
		if (!JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
			g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
				    "%s: not a JSON object of fields", file);
			return FALSE;
		}
		json_object_iter_init(&iter, json_node_get_object(json_parser_get_root(parser)));
		while (json_object_iter_next(&iter, &name, &value)) {
			if (JSON_NODE_HOLDS_VALUE(value) &&
			    json_node_get_value_type(value) == G_TYPE_STRING)
				g_hash_table_insert(fields, g_strdup(name),
						    g_strdup(json_node_get_string(value)));
		}
		return TRUE;
	}
	{
		g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
		for (guint i = 0; lines[i] != NULL; i++) {
			char *line = g_strstrip(lines[i]);
			char *eq = strchr(line, '=');
			if (*line == '\0' || *line == '#')
				continue;
			if (eq == NULL || eq == line) {
				g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
					    "%s: line %u: expected key=value", file, i + 1);
				return FALSE;
			}
			*eq = '\0';
			g_hash_table_insert(fields, g_strdup(g_strstrip(line)),
					    g_strdup(g_strstrip(eq + 1)));
		}
	}
	return TRUE;
}

static GVariant *
fields_variant(GHashTable *fields)
{
	GVariantBuilder b;
	GHashTableIter iter;
	gpointer k, v;

	g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
	g_hash_table_iter_init(&iter, fields);
	while (g_hash_table_iter_next(&iter, &k, &v))
		g_variant_builder_add(&b, "{sv}", (const char *)k, g_variant_new_string(v));
	return g_variant_builder_end(&b);
}

/* The field an InvalidInput names ("legal_rep_phone: required when …"), if any. */
static char *
named_field(const GError *error)
{
	g_autofree char *name = cs_cli_error_name(error);
	g_autoptr(GError) copy = g_error_copy(error);
	const char *colon, *space;

	if (g_strcmp0(name, "org.certseal.Error.InvalidInput") != 0)
		return NULL;
	g_dbus_error_strip_remote_error(copy);
	colon = strchr(copy->message, ':');
	space = strchr(copy->message, ' ');
	if (colon == NULL || colon == copy->message || (space != NULL && space < colon))
		return NULL;
	return g_strndup(copy->message, (gsize)(colon - copy->message));
}

/* At a terminal, ask a field the daemon wants; FALSE in scripts or at end of input. */
static gboolean
ask_field(Unlock *u, const GError *error)
{
	g_autofree char *field = named_field(error);
	char line[512];

	if (field == NULL || u->cli->json || !isatty(STDIN_FILENO))
		return FALSE;
	g_printerr("%s\n%s: ", error->message, field);
	if (fgets(line, sizeof line, stdin) == NULL)
		return FALSE;
	g_hash_table_insert(u->fields, g_steal_pointer(&field), g_strdup(g_strstrip(line)));
	return TRUE;
}

static void
say(Unlock *u, const char *text)
{
	if (!u->cli->json)
		g_print("%s\n", text);
}

/* A step of the order, asking what it needs until it is taken or refused for good. */
static int
take_step(Unlock *u, const char *method)
{
	for (guint i = 0;; i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) reply =
		    cs_cli_call(u->cli, u->path, CS_CLI_ORDER_IFACE, method, NULL, NULL, &error);
		g_autoptr(GVariant) update = NULL;
		if (reply != NULL)
			return CS_EXIT_OK;
		if (i >= MAX_ASKS || !ask_field(u, error))
			return cs_cli_fail_error(u->cli, error);
		update =
		    cs_cli_call(u->cli, u->path, CS_CLI_ORDER_IFACE, "Update",
				g_variant_new("(@a{sv})", fields_variant(u->fields)), NULL, &error);
		if (update == NULL)
			return cs_cli_fail_error(u->cli, error);
	}
}

/* The identity check runs in the office: wait until the code is on its way. */
static int
wait_authorized(Unlock *u)
{
	for (guint i = 0; i < AUTHORIZED_WAIT_S * 10; i++) {
		g_autoptr(GError) error = NULL;
		g_autofree char *state = cs_cli_order_state(u->cli, u->path, &error);
		if (state == NULL)
			return cs_cli_fail_error(u->cli, error);
		if (g_str_equal(state, "authorized"))
			return CS_EXIT_OK;
		if (g_str_equal(state, "draft")) {
			g_autoptr(GVariant) note = cs_cli_get_property(
			    u->cli, u->path, CS_CLI_ORDER_IFACE, "ReviewNote", NULL);
			return cs_cli_fail(u->cli, CS_EXIT_REFUSED,
					   "org.certseal.Error.NotEligible",
					   note != NULL ? g_variant_get_string(note, NULL)
							: "the identity check failed");
		}
		g_usleep(100000);
	}
	return cs_cli_fail(u->cli, CS_EXIT_REFUSED, "org.certseal.Error.Unavailable",
			   "the identity check did not answer; try `certseal order show` later");
}

static int
reset(Unlock *u, const char *key_path)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) delivery =
	    cs_cli_get_property(u->cli, u->path, CS_CLI_ORDER_IFACE, "PasswordDelivery", NULL);
	g_autofree char *where = NULL;
	char *code, *pin, *again;

	where = g_strdup_printf("The authorization code was sent to %s.",
				delivery != NULL ? g_variant_get_string(delivery, NULL) : "you");
	say(u, where);
	code = cs_cli_read_secret(u->cli, "Authorization code");
	pin = cs_cli_read_secret(u->cli, "New PIN");
	again = cs_cli_read_secret(u->cli, "New PIN again");
	if (code == NULL || pin == NULL || again == NULL || strcmp(pin, again) != 0) {
		cs_cli_free_secret(code);
		cs_cli_free_secret(pin);
		cs_cli_free_secret(again);
		return cs_cli_fail(u->cli, CS_EXIT_USAGE, "usage",
				   "the code and the new PIN twice the same are needed");
	}
	/* The call waits for the PIN reset on the key. */
	reply = cs_cli_call(u->cli, u->path, CS_CLI_ORDER_IFACE, "Unlock",
			    g_variant_new("(oss)", key_path, g_strstrip(code), pin), NULL, &error);
	cs_cli_free_secret(code);
	cs_cli_free_secret(pin);
	cs_cli_free_secret(again);
	if (reply == NULL)
		return cs_cli_fail_error(u->cli, error);
	if (u->cli->json)
		g_print("{\"order\":\"%s\",\"state\":\"completed\",\"unlocked\":true}\n", u->id);
	else
		g_print("Unlocked: the key's PIN is the new one (order %s).\n", u->id);
	return CS_EXIT_OK;
}

int
cs_cli_unlock(CsCli *cli, int argc, char **argv)
{
	g_autofree char *serial = NULL, *subject = NULL, *method = NULL, *file = NULL;
	g_autofree char *vendor = NULL, *key_path = NULL;
	g_autoptr(GOptionContext) ctx = g_option_context_new(NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) key_vendor = NULL;
	g_autoptr(GHashTable) fields =
	    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	g_autofree char *order_path = NULL, *order_id = NULL;
	Unlock u = {.cli = cli, .fields = fields};
	const char *path;
	int rc = CS_EXIT_OK;
	GOptionEntry entries[] = {
	    {"key", 0, 0, G_OPTION_ARG_STRING, &serial, "The key's serial", "SERIAL"},
	    {"subject", 0, 0, G_OPTION_ARG_STRING, &subject, "org or person", "TYPE"},
	    {"method", 0, 0, G_OPTION_ARG_STRING, &method, "The identity method", "METHOD"},
	    {"fields", 0, 0, G_OPTION_ARG_FILENAME, &file, "The order's fields", "FILE"},
	    {"vendor", 0, 0, G_OPTION_ARG_STRING, &vendor, "The key's vendor", "ID"},
	    {NULL},
	};
	g_autofree char **args = g_new0(char *, argc + 2);

	args[0] = (char *)"unlock";
	for (int i = 0; i < argc; i++)
		args[i + 1] = argv[i];
	argc++;
	g_option_context_add_main_entries(ctx, entries, NULL);
	g_option_context_set_help_enabled(ctx, FALSE);
	if (!g_option_context_parse(ctx, &argc, &args, &error) || argc != 1)
		return cs_cli_fail(cli, CS_EXIT_USAGE, "usage", USAGE);
	if (file != NULL && !load_fields(fields, file, &error))
		return cs_cli_fail(cli, CS_EXIT_USAGE, "usage", error->message);
	if (subject == NULL)
		subject = g_strdup(g_hash_table_lookup(fields, "subject_type"));
	g_hash_table_remove(fields, "subject_type");
	if (g_strcmp0(subject, "org") != 0 && g_strcmp0(subject, "person") != 0)
		return cs_cli_fail(cli, CS_EXIT_USAGE, "usage",
				   "--subject: org or person (or subject_type in the fields file)");
	key_path = cs_cli_find_key(cli, serial, &rc);
	if (key_path == NULL)
		return rc;
	g_hash_table_insert(fields, g_strdup("key"), g_strdup(key_path));
	if (method != NULL)
		g_hash_table_insert(fields, g_strdup("auth_method"), g_strdup(method));
	key_vendor = cs_cli_get_property(cli, key_path, CS_CLI_KEY_IFACE, "Vendor", NULL);
	if (vendor == NULL && key_vendor != NULL)
		vendor = g_variant_dup_string(key_vendor, NULL);
	if (vendor != NULL)
		g_hash_table_insert(fields, g_strdup("vendor"), g_strdup(vendor));
	reply = cs_cli_call(cli, CS_CLI_MANAGER_PATH, CS_CLI_MANAGER_IFACE, "CreateOrder",
			    g_variant_new("(ss@a{sv})", "unlock", subject, fields_variant(fields)),
			    "(o)", &error);
	if (reply == NULL)
		return cs_cli_fail_error(cli, error);
	g_variant_get(reply, "(&o)", &path);
	u.path = order_path = g_strdup(path);
	u.id = order_id = g_path_get_basename(path);
	if ((rc = take_step(&u, "Confirm")) != CS_EXIT_OK ||
	    (rc = take_step(&u, "Submit")) != CS_EXIT_OK)
		return rc;
	say(&u, "Submitted: the identity check runs.");
	if ((rc = wait_authorized(&u)) != CS_EXIT_OK)
		return rc;
	return reset(&u, key_path);
}
