/*
 * cs-cli-apply.c — `certseal apply`: a new-certificate application (新办) from the first
 * field to the payment QR code, in the manual's order (docs/architecture.md §1.1, manual
 * section 1):
 * fill in (draft) → 确认订单 Confirm (confirmed) → materials → 确认申请 Submit
 * (sms_pending) → the SMS code (unpaid) → pay (the QR code; in_review once paid).
 *
 * At a terminal it asks for the subject type, the vendor (Manager.Vendors), the identity
 * method and each field the flow requires, as the daemon describes them
 * (Manager.GetFlow: labels, choices), and checks each answer as it is typed
 * (Manager.ValidateFields); what the daemon still refuses is asked again, the field named
 * by its InvalidInput. For scripts (--yes) nothing is asked: the
 * fields come from a file, the materials from --material, the SMS code from stdin with
 * --code-from-stdin, and apply stops at the first step that needs a person. Every step
 * prints the state the order reached (on stderr with --json, whose stdout is one
 * document: {order, state, next_actions[, payment]}).
 *
 * The daemon holds the rules: which fields there are and which are required, what each
 * must look like, which step comes next (NextActions). Nothing here names a field.
 */
#define G_LOG_DOMAIN "certseal"

#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cs-cli-apply.h"
#include "cs-cli-order.h"
#include "cs-json.h"

#define APPLY_USAGE                                                                                 \
	"usage: certseal apply   (at a terminal: every step is asked)\n"                            \
	"       certseal apply --subject org|person --fields FILE [--vendor ID]\n"                  \
	"              [--material KIND=PATH]… [--channel sandbox|alipay|wechat] [--no-submit]\n" \
	"              [--code-from-stdin] --yes\n"                                                 \
	"FILE: a JSON object or key=value lines of the order's fields."

#define MAX_RETRIES 20
#define PAYMENT_POLL_US (G_USEC_PER_SEC)

typedef struct {
	const char *value;
	const char *label;
} Choice;

static const Choice subject_choices[] = {
    {"org", "单位 an organisation (unified social credit code)"},
    {"person", "个人 an individual (resident ID)"},
    {NULL, NULL},
};

static const Choice channel_choices[] = {
    {"alipay", "支付宝 Alipay"},
    {"wechat", "微信支付 WeChat Pay"},
    {"sandbox", "the sandbox cashier (test installations)"},
    {NULL, NULL},
};

typedef struct {
	CsCli *cli;
	gboolean human; /* a person at a terminal: questions may be asked */
	gboolean yes, no_submit, code_from_stdin;
	const char *subject;
	const char *fields_file;
	const char *channel;
	GPtrArray *names;     /* field names in the order given */
	GHashTable *values;   /* name → value */
	GPtrArray *materials; /* "KIND=PATH" */
	char *path;	      /* the order, once created */
	char *id;
	char *payload; /* the payment QR payload, once payment started */
	guint64 expires;
	GVariant *flow;	  /* Manager.GetFlow of the subject type, at a terminal */
	GPtrArray *texts; /* strings the choices below point into */
} Apply;

static void
apply_clear(Apply *a)
{
	g_clear_pointer(&a->names, g_ptr_array_unref);
	g_clear_pointer(&a->values, g_hash_table_unref);
	g_clear_pointer(&a->materials, g_ptr_array_unref);
	g_clear_pointer(&a->path, g_free);
	g_clear_pointer(&a->id, g_free);
	g_clear_pointer(&a->payload, g_free);
	g_clear_pointer(&a->flow, g_variant_unref);
	g_clear_pointer(&a->texts, g_ptr_array_unref);
}

static void
set_value(Apply *a, const char *name, const char *value)
{
	if (!g_hash_table_contains(a->values, name))
		g_ptr_array_add(a->names, g_strdup(name));
	g_hash_table_replace(a->values, g_strdup(name), g_strdup(value));
}

static void
unset_value(Apply *a, const char *name)
{
	for (guint i = 0; i < a->names->len; i++) {
		if (g_strcmp0(g_ptr_array_index(a->names, i), name) == 0) {
			g_ptr_array_remove_index(a->names, i);
			break;
		}
	}
	g_hash_table_remove(a->values, name);
}

/* --- output ------------------------------------------------------------------------------- */

/* "step → state (note)": on stdout, or stderr when stdout is --json's. */
static void
print_step(Apply *a, const char *step, const char *state, const char *note)
{
	g_autofree char *line =
	    g_strdup_printf("%-8s → %s%s%s%s\n", step, state, note != NULL ? "  (" : "",
			    note != NULL ? note : "", note != NULL ? ")" : "");

	if (a->cli->json) {
		g_printerr("%s", line);
	} else {
		g_print("%s", line);
		fflush(stdout);
	}
}

static void
say(Apply *a, const char *text)
{
	if (a->cli->json) {
		g_printerr("%s\n", text);
	} else {
		g_print("%s\n", text);
		fflush(stdout);
	}
}

/* An error after the order exists: the message, and where the order stays. */
static int
fail_at(Apply *a, int code, GError *error)
{
	g_autofree char *state = NULL;
	int rc;

	if (error->domain == G_FILE_ERROR)
		rc = cs_cli_fail(a->cli, code, "file", error->message);
	else
		rc = cs_cli_fail_error(a->cli, error);
	if (a->path != NULL && rc != CS_EXIT_UNREACHABLE) {
		state = cs_cli_order_state(a->cli, a->path, NULL);
		g_printerr("certseal: order %s stays %s (certseal order show %s)\n", a->id,
			   state != NULL ? state : "?", a->id);
	}
	return rc;
}

/* --- asking ------------------------------------------------------------------------------- */

/* A line from the terminal (the prompt on stderr); NULL at end of input. */
static char *
ask_line(const char *prompt)
{
	char buf[1024];

	g_printerr("%s", prompt);
	if (fgets(buf, sizeof(buf), stdin) == NULL)
		return NULL;
	buf[strcspn(buf, "\r\n")] = '\0';
	return g_strstrip(g_strdup(buf));
}

/* One of @choices, by number or by value; NULL at end of input. */
static const char *
ask_choice(const char *title, const Choice *choices)
{
	guint n = 0;

	g_printerr("%s\n", title);
	for (; choices[n].value != NULL; n++)
		g_printerr("  %u) %-22s %s\n", n + 1, choices[n].value, choices[n].label);
	for (;;) {
		g_autofree char *prompt = g_strdup_printf("Choose 1-%u: ", n);
		g_autofree char *line = ask_line(prompt);
		guint64 number = 0;

		if (line == NULL)
			return NULL;
		if (g_ascii_string_to_unsigned(line, 10, 1, n, &number, NULL))
			return choices[number - 1].value;
		for (guint i = 0; i < n; i++) {
			if (g_strcmp0(line, choices[i].value) == 0)
				return choices[i].value;
		}
		g_printerr("Please answer with a number from 1 to %u.\n", n);
	}
}

/* The flow's description of field @name (an a{sv}), or NULL when the flow has none. */
static GVariant *
flow_field(Apply *a, const char *name)
{
	g_autoptr(GVariant) fields = NULL;
	GVariantIter iter;
	GVariant *f;

	if (a->flow == NULL ||
	    (fields = g_variant_lookup_value(a->flow, "fields", G_VARIANT_TYPE("aa{sv}"))) == NULL)
		return NULL;
	g_variant_iter_init(&iter, fields);
	while ((f = g_variant_iter_next_value(&iter)) != NULL) {
		const char *n = NULL;
		if (g_variant_lookup(f, "name", "&s", &n) && g_strcmp0(n, name) == 0)
			return f;
		g_variant_unref(f);
	}
	return NULL;
}

/* "label_zh: label_en" of a field or material description, or NULL without labels. */
static char *
labels_of(GVariant *desc)
{
	const char *zh = "", *en = "";

	if (desc == NULL)
		return NULL;
	g_variant_lookup(desc, "label_zh", "&s", &zh);
	g_variant_lookup(desc, "label_en", "&s", &en);
	if (*zh == '\0' && *en == '\0')
		return NULL;
	return g_strdup_printf("%s%s%s", zh, *zh != '\0' && *en != '\0' ? ": " : "", en);
}

/* The choices of an enum field, labelled as the flow labels them. */
static Choice *
field_choices(Apply *a, GVariant *field)
{
	g_autofree const char **values = NULL;
	g_autofree const char **zh = NULL;
	g_autofree const char **en = NULL;
	gsize n = 0, n_zh = 0, n_en = 0;
	g_autoptr(GVariant) v = g_variant_lookup_value(field, "choices", G_VARIANT_TYPE("as"));
	g_autoptr(GVariant) vz =
	    g_variant_lookup_value(field, "choice_labels_zh", G_VARIANT_TYPE("as"));
	g_autoptr(GVariant) ve =
	    g_variant_lookup_value(field, "choice_labels_en", G_VARIANT_TYPE("as"));
	Choice *choices;

	if (v == NULL)
		return NULL;
	values = g_variant_get_strv(v, &n);
	if (vz != NULL)
		zh = g_variant_get_strv(vz, &n_zh);
	if (ve != NULL)
		en = g_variant_get_strv(ve, &n_en);
	choices = g_new0(Choice, n + 1);
	for (gsize i = 0; i < n; i++) {
		char *label =
		    g_strdup_printf("%s%s%s", i < n_zh ? zh[i] : "",
				    i < n_zh && i < n_en ? ": " : "", i < n_en ? en[i] : "");
		char *value = g_strdup(values[i]);
		g_ptr_array_add(a->texts, label);
		g_ptr_array_add(a->texts, value);
		choices[i].value = value;
		choices[i].label = label;
	}
	return choices;
}

/* The vendors the daemon offers (Manager.Vendors) as choices; @names keeps the strings. */
static Choice *
vendor_choices(Apply *a, GPtrArray *names, GError **error)
{
	g_autoptr(GVariant) vendors = cs_cli_get_property(a->cli, CS_CLI_MANAGER_PATH,
							  CS_CLI_MANAGER_IFACE, "Vendors", error);
	GArray *choices;
	GVariantIter iter;
	const char *id, *name, *driver;
	Choice end = {NULL, NULL};

	if (vendors == NULL)
		return NULL;
	choices = g_array_new(FALSE, TRUE, sizeof(Choice));
	g_variant_iter_init(&iter, vendors);
	while (g_variant_iter_next(&iter, "(&s&s&s)", &id, &name, &driver)) {
		Choice c = {g_strdup(id), g_strdup(name)};
		g_ptr_array_add(names, (char *)c.value);
		g_ptr_array_add(names, (char *)c.label);
		g_array_append_val(choices, c);
	}
	g_array_append_val(choices, end);
	return (Choice *)g_array_free(choices, FALSE);
}

/* The daemon's objection to @value for field @name (Manager.ValidateFields), or NULL. */
static char *
objection(Apply *a, const char *name, const char *value)
{
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GError) error = NULL;
	GVariantBuilder b;
	const char *field, *message;
	GVariantIter *iter = NULL;
	char *found = NULL;

	g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
	g_variant_builder_add(&b, "{sv}", name, g_variant_new_string(value));
	reply = cs_cli_call(a->cli, CS_CLI_MANAGER_PATH, CS_CLI_MANAGER_IFACE, "ValidateFields",
			    g_variant_new("(ssa{sv})", "new", a->subject, &b), "(a(ss))", &error);
	if (reply == NULL)
		return NULL; /* the step that sends it will say what is wrong */
	g_variant_get(reply, "(a(ss))", &iter);
	while (found == NULL && g_variant_iter_next(iter, "(&s&s)", &field, &message)) {
		if (g_strcmp0(field, name) == 0)
			found = g_strdup(message);
	}
	g_variant_iter_free(iter);
	return found;
}

/* Ask for the field @name, showing what is expected and asking again what the daemon
 * would refuse; FALSE at end of input. */
static gboolean
ask_field(Apply *a, const char *name)
{
	g_autoptr(GVariant) field = flow_field(a, name);
	g_autofree char *labels = labels_of(field);
	g_autofree char *title = g_strdup_printf("%s%s%s", name, labels != NULL ? " — " : "",
						 labels != NULL ? labels : "");
	g_autofree char *prompt = g_strdup_printf("  %s: ", name);
	const char *type = "text";
	const char *value;

	if (field != NULL)
		g_variant_lookup(field, "type", "&s", &type);
	if (g_strcmp0(type, "vendor") == 0) {
		g_autoptr(GPtrArray) strings = g_ptr_array_new_with_free_func(g_free);
		g_autoptr(GError) error = NULL;
		g_autofree Choice *choices = vendor_choices(a, strings, &error);
		if (choices == NULL) {
			g_printerr("certseal: %s\n", error->message);
			return FALSE;
		}
		value = ask_choice(title, choices);
		if (value != NULL)
			set_value(a, name, value);
		return value != NULL;
	}
	if (g_strcmp0(type, "enum") == 0) {
		g_autofree Choice *choices = field_choices(a, field);
		value = choices != NULL ? ask_choice(title, choices) : NULL;
		if (value != NULL)
			set_value(a, name, value);
		return value != NULL;
	}
	g_printerr("%s\n", title);
	for (guint tries = 0; tries < MAX_RETRIES; tries++) {
		g_autofree char *line = ask_line(prompt);
		g_autofree char *why = NULL;

		if (line == NULL)
			return FALSE;
		if (*line == '\0') {
			unset_value(a, name); /* left out: the daemon says if it is required */
			return TRUE;
		}
		why = objection(a, name, line);
		if (why == NULL) {
			set_value(a, name, line);
			return TRUE;
		}
		g_printerr("certseal: %s: %s\n", name, why);
	}
	return FALSE;
}

/*
 * The fields an InvalidInput names: "uscc: bad check character" → [uscc];
 * "fields: still missing email, postcode" → [email, postcode]. NULL when the message
 * names no field.
 */
static GStrv
fields_named(const char *message)
{
	const char *colon = message != NULL ? strchr(message, ':') : NULL;
	g_autofree char *name = NULL;

	if (colon == NULL || colon == message)
		return NULL;
	name = g_strndup(message, (gsize)(colon - message));
	for (const char *p = name; *p != '\0'; p++) {
		if (!g_ascii_islower(*p) && !g_ascii_isdigit(*p) && *p != '_')
			return NULL;
	}
	if (g_strcmp0(name, "fields") == 0 && g_str_has_prefix(colon, ": still missing ")) {
		GStrv list = g_strsplit(colon + strlen(": still missing "), ", ", -1);
		for (guint i = 0; list[i] != NULL; i++)
			g_strstrip(list[i]);
		return list;
	}
	if (g_strcmp0(name, "fields") == 0 || g_strcmp0(name, "materials") == 0 ||
	    g_strcmp0(name, "kind") == 0 || g_strcmp0(name, "subject_type") == 0)
		return NULL;
	{
		GStrv one = g_new0(char *, 2);
		one[0] = g_steal_pointer(&name);
		return one;
	}
}

/* The message without the "GDBus.Error:NAME: " prefix; @error keeps it (and its name). */
static char *
plain_message(const GError *error)
{
	g_autoptr(GError) copy = g_error_copy(error);

	g_dbus_error_strip_remote_error(copy);
	return g_strdup(copy->message);
}

static gboolean
is_invalid_input(GError *error)
{
	g_autofree char *name = cs_cli_error_name(error);
	return g_strcmp0(name, "org.certseal.Error.InvalidInput") == 0;
}

/*
 * After an InvalidInput naming fields, a person is shown the message and asked those
 * fields again; TRUE when they were (the caller retries). A script gets FALSE.
 */
static gboolean
ask_again(Apply *a, GError *error, GStrv *asked)
{
	g_auto(GStrv) names = NULL;
	g_autofree char *message = NULL;

	if (!a->human || !is_invalid_input(error))
		return FALSE;
	message = plain_message(error);
	names = fields_named(message);
	if (names == NULL)
		return FALSE;
	g_printerr("certseal: %s\n", message);
	for (guint i = 0; names[i] != NULL; i++) {
		if (!ask_field(a, names[i]))
			return FALSE;
	}
	if (asked != NULL)
		*asked = g_steal_pointer(&names);
	return TRUE;
}

/* --- the fields ---------------------------------------------------------------------------- */

typedef void (*FieldFunc)(gpointer user_data, const char *name, const char *value);

static gboolean
load_json_fields(FieldFunc func, gpointer user_data, const char *text, GError **error)
{
	g_autoptr(JsonNode) root = cs_json_parse_untrusted(text, -1, error);
	JsonObjectIter iter;
	const char *name;
	JsonNode *value;

	if (root == NULL)
		return FALSE;
	if (!JSON_NODE_HOLDS_OBJECT(root)) {
		g_set_error_literal(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
				    "not a JSON object of fields");
		return FALSE;
	}
	json_object_iter_init(&iter, json_node_get_object(root));
	while (json_object_iter_next(&iter, &name, &value)) {
		if (!JSON_NODE_HOLDS_VALUE(value) ||
		    json_node_get_value_type(value) != G_TYPE_STRING) {
			g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s: must be a string",
				    name);
			return FALSE;
		}
		func(user_data, name, json_node_get_string(value));
	}
	return TRUE;
}

static gboolean
load_line_fields(FieldFunc func, gpointer user_data, const char *text, GError **error)
{
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);

	for (guint i = 0; lines[i] != NULL; i++) {
		char *line = g_strstrip(lines[i]);
		char *eq;

		if (*line == '\0' || *line == '#')
			continue;
		eq = strchr(line, '=');
		if (eq == NULL || eq == line) {
			g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
				    "line %u: expected key=value", i + 1);
			return FALSE;
		}
		*eq = '\0';
		func(user_data, g_strstrip(line), g_strstrip(eq + 1));
	}
	return TRUE;
}

/* A JSON object, or key=value lines ('#' starts a comment line). */
static gboolean
load_fields_file(const char *file, FieldFunc func, gpointer user_data, GError **error)
{
	g_autofree char *text = NULL;
	const char *start;
	gboolean ok;

	if (!g_file_get_contents(file, &text, NULL, error))
		return FALSE;
	if (!g_utf8_validate(text, -1, NULL)) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s: not UTF-8 text", file);
		return FALSE;
	}
	for (start = text; g_ascii_isspace(*start); start++)
		;
	ok = *start == '{' ? load_json_fields(func, user_data, start, error)
			   : load_line_fields(func, user_data, text, error);
	if (!ok)
		g_prefix_error(error, "%s: ", file);
	return ok;
}

static void
apply_set_value(gpointer user_data, const char *name, const char *value)
{
	set_value(user_data, name, value);
}

static void
table_set_value(gpointer user_data, const char *name, const char *value)
{
	g_hash_table_replace(user_data, g_strdup(name), g_strdup(value));
}

gboolean
cs_cli_load_fields(const char *file, GHashTable *values, GError **error)
{
	return load_fields_file(file, table_set_value, values, error);
}

static gboolean
load_fields(Apply *a, GError **error)
{
	return load_fields_file(a->fields_file, apply_set_value, a, error);
}

/* Ask what the fields file did not say: each required field in the flow's order (the
 * vendor and the identity method first); the others only when the daemon asks for them. */
static gboolean
ask_fields(Apply *a)
{
	g_autoptr(GVariant) fields =
	    a->flow != NULL ? g_variant_lookup_value(a->flow, "fields", G_VARIANT_TYPE("aa{sv}"))
			    : NULL;
	GVariantIter iter;
	GVariant *f;

	if (fields == NULL)
		return TRUE;
	g_variant_iter_init(&iter, fields);
	while ((f = g_variant_iter_next_value(&iter)) != NULL) {
		g_autoptr(GVariant) owned = f;
		const char *name = NULL;
		gboolean required = FALSE;

		g_variant_lookup(f, "name", "&s", &name);
		g_variant_lookup(f, "required", "b", &required);
		if (!required || g_hash_table_contains(a->values, name))
			continue;
		if (!ask_field(a, name))
			return FALSE;
	}
	return TRUE;
}

static GVariant *
fields_variant(Apply *a, const char *const *only)
{
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
	for (guint i = 0; i < a->names->len; i++) {
		const char *name = g_ptr_array_index(a->names, i);
		if (only != NULL && !g_strv_contains(only, name))
			continue;
		g_variant_builder_add(&b, "{sv}", name,
				      g_variant_new_string(g_hash_table_lookup(a->values, name)));
	}
	return g_variant_builder_end(&b);
}

/* --- the steps ------------------------------------------------------------------------------ */

static char *
current_state(Apply *a)
{
	char *state = cs_cli_order_state(a->cli, a->path, NULL);
	return state != NULL ? state : g_strdup("?");
}

static gboolean
has_action(Apply *a, const char *action)
{
	g_autoptr(GVariant) v =
	    cs_cli_get_property(a->cli, a->path, CS_CLI_ORDER_IFACE, "NextActions", NULL);
	g_autofree const char **actions = NULL;

	if (v == NULL)
		return FALSE;
	actions = g_variant_get_strv(v, NULL);
	return g_strv_contains(actions, action);
}

static GStrv
order_strv(Apply *a, const char *property)
{
	g_autoptr(GVariant) v =
	    cs_cli_get_property(a->cli, a->path, CS_CLI_ORDER_IFACE, property, NULL);

	return v != NULL ? g_variant_dup_strv(v, NULL) : g_new0(char *, 1);
}

static int
step_create(Apply *a)
{
	for (guint tries = 0;; tries++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) reply = cs_cli_call(
		    a->cli, CS_CLI_MANAGER_PATH, CS_CLI_MANAGER_IFACE, "CreateOrder",
		    g_variant_new("(ss@a{sv})", "new", a->subject, fields_variant(a, NULL)), "(o)",
		    &error);
		const char *path;

		if (reply != NULL) {
			g_autofree char *state = NULL;
			g_variant_get(reply, "(&o)", &path);
			a->path = g_strdup(path);
			a->id = g_path_get_basename(path);
			state = current_state(a);
			{
				g_autofree char *note = g_strdup_printf("order %s", a->id);
				print_step(a, "create", state, note);
			}
			return CS_EXIT_OK;
		}
		if (tries >= MAX_RETRIES || !ask_again(a, error, NULL))
			return cs_cli_fail_error(a->cli, error);
	}
}

/* Send the fields just asked again to the draft. */
static gboolean
update_fields(Apply *a, const char *const *names, GError **error)
{
	g_autoptr(GVariant) reply =
	    cs_cli_call(a->cli, a->path, CS_CLI_ORDER_IFACE, "Update",
			g_variant_new("(@a{sv})", fields_variant(a, names)), NULL, error);
	return reply != NULL;
}

/* 返回修改: a person changes a field before confirming. */
static gboolean
edit_a_field(Apply *a)
{
	g_autofree char *name = ask_line("Field to change (as shown under Fields): ");
	const char *one[2] = {NULL, NULL};
	g_autoptr(GVariant) field = NULL;

	if (name == NULL)
		return FALSE;
	if (*name == '\0')
		return TRUE;
	field = flow_field(a, name);
	if (!g_hash_table_contains(a->values, name) && field == NULL) {
		g_printerr("certseal: %s: not a field of this application\n", name);
		return TRUE;
	}
	if (!ask_field(a, name))
		return FALSE;
	one[0] = name;
	for (guint tries = 0;; tries++) {
		g_autoptr(GError) error = NULL;
		g_auto(GStrv) asked = NULL;
		if (update_fields(a, one, &error))
			return TRUE;
		if (tries >= MAX_RETRIES || !ask_again(a, error, &asked)) {
			g_dbus_error_strip_remote_error(error);
			g_printerr("certseal: %s\n", error->message);
			return TRUE;
		}
		if (asked != NULL && asked[0] != NULL) {
			g_free(name);
			name = g_strdup(asked[0]);
		}
		one[0] = name;
	}
}

/* At a terminal: show the order and ask; 'e' edits a field, 'c' cancels. */
static int
ask_confirmation(Apply *a, gboolean *go_on)
{
	for (;;) {
		g_autofree char *answer = NULL;
		int rc = cs_cli_order_show(a->cli, a->path);

		if (rc != CS_EXIT_OK)
			return rc;
		answer = ask_line("确认订单 Confirm the order? [y]es, [e]dit a field (返回修改), "
				  "[c]ancel it: ");
		if (answer == NULL)
			break;
		if (g_ascii_strcasecmp(answer, "y") == 0 ||
		    g_ascii_strcasecmp(answer, "yes") == 0) {
			*go_on = TRUE;
			return CS_EXIT_OK;
		}
		if (g_ascii_strcasecmp(answer, "c") == 0) {
			g_autoptr(GError) error = NULL;
			g_autoptr(GVariant) reply = cs_cli_call(a->cli, a->path, CS_CLI_ORDER_IFACE,
								"Cancel", NULL, NULL, &error);
			g_autofree char *state = NULL;
			if (reply == NULL)
				return fail_at(a, CS_EXIT_REFUSED, error);
			state = current_state(a);
			print_step(a, "cancel", state, NULL);
			*go_on = FALSE;
			return CS_EXIT_OK;
		}
		if (g_ascii_strcasecmp(answer, "e") == 0 && !edit_a_field(a))
			break;
	}
	*go_on = FALSE;
	return cs_cli_fail(a->cli, CS_EXIT_USAGE, "usage",
			   "input ended before the order was confirmed");
}

static int
step_confirm(Apply *a, gboolean *go_on)
{
	if (a->human && !a->yes) {
		int rc = ask_confirmation(a, go_on);
		if (rc != CS_EXIT_OK || !*go_on)
			return rc;
	}
	for (guint tries = 0;; tries++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) reply =
		    cs_cli_call(a->cli, a->path, CS_CLI_ORDER_IFACE, "Confirm", NULL, NULL, &error);
		g_auto(GStrv) asked = NULL;

		if (reply != NULL) {
			g_autofree char *state = current_state(a);
			print_step(a, "confirm", state, NULL);
			*go_on = TRUE;
			return CS_EXIT_OK;
		}
		if (tries >= MAX_RETRIES || !ask_again(a, error, &asked))
			return fail_at(a, CS_EXIT_REFUSED, error);
		/* The draft takes the fields asked again before the next try. */
		for (guint u = 0;; u++) {
			g_autoptr(GError) update_error = NULL;
			g_auto(GStrv) again = NULL;
			if (update_fields(a, (const char *const *)asked, &update_error))
				break;
			if (u >= MAX_RETRIES || !ask_again(a, update_error, &again))
				return fail_at(a, CS_EXIT_REFUSED, update_error);
		}
	}
}

/* What the flow says of material @kind, for the prompt. */
static char *
material_hint(Apply *a, const char *kind)
{
	g_autoptr(GVariant) materials =
	    a->flow != NULL ? g_variant_lookup_value(a->flow, "materials", G_VARIANT_TYPE("aa{sv}"))
			    : NULL;
	GVariantIter iter;
	GVariant *m;

	if (materials != NULL) {
		g_variant_iter_init(&iter, materials);
		while ((m = g_variant_iter_next_value(&iter)) != NULL) {
			g_autoptr(GVariant) owned = m;
			const char *k = NULL;
			if (g_variant_lookup(m, "kind", "&s", &k) && g_strcmp0(k, kind) == 0) {
				char *labels = labels_of(m);
				if (labels != NULL)
					return labels;
			}
		}
	}
	return g_strdup("a scan or photo (PNG, JPEG or PDF)");
}

/* The optional materials of the flow, which Missing never lists. */
static void
add_optional_materials(Apply *a, GPtrArray *kinds, const char *const *attached)
{
	g_autoptr(GVariant) materials =
	    a->flow != NULL ? g_variant_lookup_value(a->flow, "materials", G_VARIANT_TYPE("aa{sv}"))
			    : NULL;
	GVariantIter iter;
	GVariant *m;

	if (materials == NULL)
		return;
	g_variant_iter_init(&iter, materials);
	while ((m = g_variant_iter_next_value(&iter)) != NULL) {
		g_autoptr(GVariant) owned = m;
		const char *k = NULL;
		gboolean required = TRUE;
		g_variant_lookup(m, "kind", "&s", &k);
		g_variant_lookup(m, "required", "b", &required);
		if (!required && !g_strv_contains(attached, k)) {
			g_ptr_array_add(a->texts, g_strdup(k));
			g_ptr_array_add(kinds, g_ptr_array_index(a->texts, a->texts->len - 1));
		}
	}
}

static int
attach_one(Apply *a, const char *kind, const char *file, GError **error)
{
	g_autofree char *state = NULL;
	g_autofree char *base = NULL;
	g_autofree char *note = NULL;

	if (!cs_cli_order_attach(a->cli, a->path, kind, file, error))
		return (*error)->domain == G_FILE_ERROR ? CS_EXIT_USAGE : CS_EXIT_REFUSED;
	state = current_state(a);
	base = g_path_get_basename(file);
	note = g_strdup_printf("%s: %s", kind, base);
	print_step(a, "attach", state, note);
	return CS_EXIT_OK;
}

/* At a terminal, the blank seal form (DownloadForm) may be saved first. */
static void
offer_blank_form(Apply *a)
{
	g_autofree char *form = g_strdup_printf("seal_form_%s", a->subject);
	g_autofree char *prompt =
	    g_strdup_printf("The blank form can be downloaded (certseal form %s --output FILE).\n"
			    "  Save it now to (Enter to skip): ",
			    form);
	g_autofree char *file = ask_line(prompt);
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) bytes = NULL;
	const guint8 *data;
	gsize len = 0;

	if (file == NULL || *file == '\0')
		return;
	reply = cs_cli_call(a->cli, CS_CLI_MANAGER_PATH, CS_CLI_MANAGER_IFACE, "DownloadForm",
			    g_variant_new("(s)", form), "(ay)", &error);
	if (reply != NULL) {
		bytes = g_variant_get_child_value(reply, 0);
		data = g_variant_get_fixed_array(bytes, &len, 1);
	}
	if (reply == NULL || !cs_cli_write_output(file, data, len, FALSE, &error)) {
		g_dbus_error_strip_remote_error(error);
		g_printerr("certseal: %s\n", error->message);
		return;
	}
	g_printerr("Saved %s: print it, fill it in, sign or stamp it, scan it.\n", file);
}

/* At a terminal: each missing material, then the optional seal picture. */
static int
ask_materials(Apply *a)
{
	g_auto(GStrv) missing = order_strv(a, "Missing");
	g_auto(GStrv) attached = order_strv(a, "Materials");
	g_autoptr(GPtrArray) kinds = g_ptr_array_new();

	for (guint i = 0; missing[i] != NULL; i++)
		g_ptr_array_add(kinds, missing[i]);
	add_optional_materials(a, kinds, (const char *const *)attached);
	for (guint i = 0; i < kinds->len; i++) {
		const char *kind = g_ptr_array_index(kinds, i);
		g_autofree char *hint = material_hint(a, kind);

		if (g_strcmp0(kind, "seal_form") == 0)
			offer_blank_form(a);
		g_printerr("%s — %s\n", kind, hint);
		for (guint tries = 0; tries < MAX_RETRIES; tries++) {
			g_autofree char *file = ask_line("  file (Enter to skip): ");
			g_autoptr(GError) error = NULL;

			if (file == NULL)
				return cs_cli_fail(a->cli, CS_EXIT_USAGE, "usage",
						   "input ended while attaching the materials");
			if (*file == '\0' || attach_one(a, kind, file, &error) == CS_EXIT_OK)
				break;
			g_dbus_error_strip_remote_error(error);
			g_printerr("certseal: %s\n", error->message);
		}
	}
	return CS_EXIT_OK;
}

static int
step_materials(Apply *a, gboolean *go_on)
{
	g_auto(GStrv) missing = NULL;

	for (guint i = 0; i < a->materials->len; i++) {
		const char *spec = g_ptr_array_index(a->materials, i);
		const char *eq = strchr(spec, '=');
		g_autofree char *kind = g_strndup(spec, (gsize)(eq - spec));
		g_autoptr(GError) error = NULL;
		int rc = attach_one(a, kind, eq + 1, &error);

		if (rc != CS_EXIT_OK)
			return fail_at(a, rc, error);
	}
	if (a->human) {
		int rc = ask_materials(a);
		if (rc != CS_EXIT_OK)
			return rc;
	}
	missing = order_strv(a, "Missing");
	*go_on = missing[0] == NULL;
	if (!*go_on) {
		g_autofree char *list = g_strjoinv(", ", missing);
		g_autofree char *text = g_strdup_printf(
		    "Still missing: %s. Attach them with certseal order attach %s KIND FILE, then "
		    "certseal order submit %s.",
		    list, a->id, a->id);
		say(a, text);
	}
	return CS_EXIT_OK;
}

static int
step_submit(Apply *a)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply =
	    cs_cli_call(a->cli, a->path, CS_CLI_ORDER_IFACE, "Submit", NULL, NULL, &error);
	g_autofree char *state = NULL;

	if (reply == NULL)
		return fail_at(a, CS_EXIT_REFUSED, error);
	state = current_state(a);
	print_step(a, "submit", state,
		   g_strcmp0(state, "sms_pending") == 0 ? "a 6-digit code was sent by SMS" : NULL);
	return CS_EXIT_OK;
}

static gboolean
error_is(GError *error, const char *name)
{
	g_autofree char *remote = cs_cli_error_name(error);
	return g_strcmp0(remote, name) == 0;
}

/* At a terminal: Enter asks for a new code. */
static void
send_new_code(Apply *a)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply =
	    cs_cli_call(a->cli, a->path, CS_CLI_ORDER_IFACE, "SendSmsCode", NULL, "(s)", &error);
	const char *masked;

	if (reply == NULL) {
		g_dbus_error_strip_remote_error(error);
		g_printerr("certseal: %s\n", error->message);
		return;
	}
	g_variant_get(reply, "(&s)", &masked);
	g_printerr("A new code was sent by SMS to %s.\n", masked);
}

static int
step_verify(Apply *a, gboolean *go_on)
{
	*go_on = FALSE;
	if (!a->human && !a->code_from_stdin) {
		g_autofree char *text = g_strdup_printf(
		    "The SMS code is needed next: certseal order verify %s (it reads the code from "
		    "the terminal or stdin).",
		    a->id);
		say(a, text);
		return CS_EXIT_OK;
	}
	for (guint tries = 0; tries < MAX_RETRIES; tries++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) reply = NULL;
		g_autofree char *state = NULL;
		g_autofree char *message = NULL;
		char *code = cs_cli_read_secret(
		    a->cli, a->human ? "SMS code (6 digits; Enter sends a new one)" : "SMS code");

		if (code != NULL)
			g_strstrip(code);
		if (code == NULL || (!a->human && *code == '\0')) {
			cs_cli_free_secret(code);
			return cs_cli_fail(a->cli, CS_EXIT_USAGE, "usage",
					   "no SMS code given (it is read from stdin)");
		}
		if (*code == '\0') {
			cs_cli_free_secret(code);
			send_new_code(a);
			continue;
		}
		reply = cs_cli_call(a->cli, a->path, CS_CLI_ORDER_IFACE, "VerifySmsCode",
				    g_variant_new("(s)", code), NULL, &error);
		cs_cli_free_secret(code);
		if (reply != NULL) {
			state = current_state(a);
			print_step(a, "verify", state, NULL);
			*go_on = TRUE;
			return CS_EXIT_OK;
		}
		if (!a->human || (!error_is(error, "org.certseal.Error.CodeInvalid") &&
				  !error_is(error, "org.certseal.Error.CodeExpired") &&
				  !error_is(error, "org.certseal.Error.TooManyAttempts")))
			return fail_at(a, CS_EXIT_REFUSED, error);
		message = plain_message(error);
		g_printerr("certseal: %s%s\n", message,
			   error_is(error, "org.certseal.Error.CodeInvalid")
			       ? ""
			       : " — press Enter for a new code");
	}
	return cs_cli_fail(a->cli, CS_EXIT_USAGE, "usage", "too many tries");
}

/* At a terminal, after the QR code: wait until the payment is confirmed or expires. */
static void
wait_for_payment(Apply *a)
{
	g_autofree char *state = NULL;

	say(a, "Waiting for the payment (Ctrl-C stops waiting; the order keeps its state)…");
	for (;;) {
		g_free(state);
		state = current_state(a);
		if (g_strcmp0(state, "unpaid") != 0)
			break;
		if ((guint64)(g_get_real_time() / G_USEC_PER_SEC) > a->expires) {
			say(a, "The QR code expired: certseal order pay ID --channel C draws a new "
			       "one.");
			return;
		}
		g_usleep(PAYMENT_POLL_US);
	}
	print_step(a, "paid", state, NULL);
}

static int
step_pay(Apply *a)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) amount = NULL;
	g_autofree char *state = NULL;
	g_autofree char *note = NULL;
	const char *payload;

	if (a->channel == NULL && a->human)
		a->channel = ask_choice("支付 Pay with:", channel_choices);
	if (a->channel == NULL) {
		g_autofree char *text = g_strdup_printf(
		    "Payment is next: certseal order pay %s --channel sandbox|alipay|wechat.",
		    a->id);
		say(a, text);
		return CS_EXIT_OK;
	}
	reply = cs_cli_call(a->cli, a->path, CS_CLI_ORDER_IFACE, "StartPayment",
			    g_variant_new("(s)", a->channel), "(st)", &error);
	if (reply == NULL)
		return fail_at(a, CS_EXIT_REFUSED, error);
	g_variant_get(reply, "(&st)", &payload, &a->expires);
	a->payload = g_strdup(payload);
	if (!a->cli->json) {
		amount =
		    cs_cli_get_property(a->cli, a->path, CS_CLI_ORDER_IFACE, "AmountFen", NULL);
		cs_cli_print_payment(a->channel, a->payload, a->expires,
				     amount != NULL ? g_variant_get_uint64(amount) : 0, FALSE);
	}
	state = current_state(a);
	note = g_strdup_printf("payment started: %s", a->channel);
	print_step(a, "pay", state, note);
	if (a->human)
		wait_for_payment(a);
	return CS_EXIT_OK;
}

/* The last word: {order, state, next_actions[, payment]} or a line for people. */
static int
print_result(Apply *a)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) props = cs_cli_get_all(a->cli, a->path, CS_CLI_ORDER_IFACE, &error);
	g_autofree const char **next = NULL;
	const char *state = "?";

	if (props == NULL)
		return cs_cli_fail_error(a->cli, error);
	g_variant_lookup(props, "State", "&s", &state);
	if (!g_variant_lookup(props, "NextActions", "^a&s", &next))
		next = g_new0(const char *, 1);
	if (a->cli->json) {
		GVariantDict d;
		g_autoptr(GVariant) out = NULL;
		g_variant_dict_init(&d, NULL);
		g_variant_dict_insert(&d, "order", "s", a->id);
		g_variant_dict_insert(&d, "state", "s", state);
		g_variant_dict_insert_value(&d, "next_actions", g_variant_new_strv(next, -1));
		if (a->payload != NULL) {
			GVariantDict p;
			g_variant_dict_init(&p, NULL);
			g_variant_dict_insert(&p, "qr_payload", "s", a->payload);
			g_variant_dict_insert(&p, "expires", "t", a->expires);
			g_variant_dict_insert_value(&d, "payment", g_variant_dict_end(&p));
		}
		out = g_variant_ref_sink(g_variant_dict_end(&d));
		cs_cli_print_json(out);
	} else {
		g_autofree char *list =
		    next[0] != NULL ? g_strjoinv(", ", (char **)next) : g_strdup("—");
		g_print("Order %s is %s. Next: %s\n", a->id, state, list);
	}
	return CS_EXIT_OK;
}

/* --- the command ------------------------------------------------------------------------------ */

static int
parse_args(Apply *a, int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];
		const char *value = i + 1 < argc ? argv[i + 1] : NULL;

		if (g_strcmp0(arg, "--yes") == 0) {
			a->yes = TRUE;
			continue;
		}
		if (g_strcmp0(arg, "--no-submit") == 0) {
			a->no_submit = TRUE;
			continue;
		}
		if (g_strcmp0(arg, "--code-from-stdin") == 0) {
			a->code_from_stdin = TRUE;
			continue;
		}
		if (value == NULL)
			return CS_EXIT_USAGE;
		i++;
		if (g_strcmp0(arg, "--subject") == 0 &&
		    (g_strcmp0(value, "org") == 0 || g_strcmp0(value, "person") == 0))
			a->subject = value;
		else if (g_strcmp0(arg, "--fields") == 0)
			a->fields_file = value;
		else if (g_strcmp0(arg, "--vendor") == 0)
			set_value(a, "vendor", value);
		else if (g_strcmp0(arg, "--channel") == 0)
			a->channel = value;
		else if (g_strcmp0(arg, "--material") == 0 && strchr(value, '=') != NULL &&
			 value[0] != '=')
			g_ptr_array_add(a->materials, g_strdup(value));
		else
			return CS_EXIT_USAGE;
	}
	return CS_EXIT_OK;
}

/* Each step in turn, stopping where a person is needed or the daemon refuses. */
static int
run_steps(Apply *a)
{
	gboolean go_on = TRUE;
	int rc = step_create(a);

	if (rc == CS_EXIT_OK)
		rc = step_confirm(a, &go_on);
	if (rc == CS_EXIT_OK && go_on)
		rc = step_materials(a, &go_on);
	if (rc != CS_EXIT_OK || !go_on || a->no_submit)
		return rc != CS_EXIT_OK ? rc : print_result(a);
	rc = step_submit(a);
	if (rc == CS_EXIT_OK && has_action(a, "VerifySmsCode"))
		rc = step_verify(a, &go_on);
	if (rc == CS_EXIT_OK && go_on && has_action(a, "StartPayment"))
		rc = step_pay(a);
	return rc != CS_EXIT_OK ? rc : print_result(a);
}

int
cs_cli_apply(CsCli *cli, int argc, char **argv)
{
	Apply a = {.cli = cli};
	g_autoptr(GError) error = NULL;
	int rc;

	a.names = g_ptr_array_new_with_free_func(g_free);
	a.values = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	a.materials = g_ptr_array_new_with_free_func(g_free);
	a.texts = g_ptr_array_new_with_free_func(g_free);
	if (parse_args(&a, argc, argv) != CS_EXIT_OK) {
		apply_clear(&a);
		return cs_cli_fail(cli, CS_EXIT_USAGE, "usage", APPLY_USAGE);
	}
	a.human = !a.yes && !cli->json && isatty(STDIN_FILENO);
	if (!a.human && (!a.yes || a.subject == NULL || a.fields_file == NULL)) {
		apply_clear(&a);
		return cs_cli_fail(
		    cli, CS_EXIT_USAGE, "usage",
		    "apply asks its questions at a terminal; scripts give --subject, "
		    "--fields and --yes\n" APPLY_USAGE);
	}
	if (a.fields_file != NULL && !load_fields(&a, &error)) {
		apply_clear(&a);
		return cs_cli_fail(cli, CS_EXIT_USAGE, "file", error->message);
	}
	if (a.human) {
		g_printerr("新办 A new certificate and e-seal on a USB key. Ctrl-C stops at any "
			   "step; the order keeps its state.\n");
		if (a.subject == NULL)
			a.subject = ask_choice("Who applies?", subject_choices);
		if (a.subject != NULL) {
			g_autoptr(GVariant) reply =
			    cs_cli_call(cli, CS_CLI_MANAGER_PATH, CS_CLI_MANAGER_IFACE, "GetFlow",
					g_variant_new("(ss)", "new", a.subject), "(a{sv})", &error);
			if (reply == NULL) {
				apply_clear(&a);
				return cs_cli_fail_error(cli, error);
			}
			g_variant_get(reply, "(@a{sv})", &a.flow);
		}
		if (a.subject == NULL || !ask_fields(&a)) {
			apply_clear(&a);
			return cs_cli_fail(cli, CS_EXIT_USAGE, "usage", "input ended");
		}
	}
	rc = run_steps(&a);
	apply_clear(&a);
	return rc;
}
