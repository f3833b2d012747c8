/*
 * test-polkit.c — unit tests of the polkit action of each D-Bus method
 * (daemon/dbus/cs-polkit.c) against the interface XML and the polkit policy file.
 *
 * Every method of dbus/org.certseal.CertSeal1.xml must have the action of the table below
 * (the table of docs/development.md), and every action named must be declared in
 * dbus/org.certseal.CertSeal1.policy.
 */
#include <string.h>

#include "cs-polkit.h"

typedef struct {
	const char *interface;
	const char *member;
	const char *action;
} Expected;

static const Expected expected[] = {
    {"org.certseal.CertSeal1.Manager", "CreateOrder", "org.certseal.order-create"},
    {"org.certseal.CertSeal1.Manager", "GetFlow", NULL},
    {"org.certseal.CertSeal1.Manager", "ValidateFields", NULL},
    {"org.certseal.CertSeal1.Manager", "DownloadForm", NULL},
    {"org.certseal.CertSeal1.Manager", "SendQueryCode", "org.certseal.order-act"},
    {"org.certseal.CertSeal1.Manager", "FindOrders", "org.certseal.order-act"},
    {"org.certseal.CertSeal1.Manager", "FindCertificates", "org.certseal.order-act"},
    {"org.certseal.CertSeal1.Order", "Update", "org.certseal.order-act"},
    {"org.certseal.CertSeal1.Order", "Confirm", "org.certseal.order-act"},
    {"org.certseal.CertSeal1.Order", "AttachMaterial", "org.certseal.order-act"},
    {"org.certseal.CertSeal1.Order", "Submit", "org.certseal.order-act"},
    {"org.certseal.CertSeal1.Order", "SendSmsCode", "org.certseal.order-act"},
    {"org.certseal.CertSeal1.Order", "VerifySmsCode", "org.certseal.order-act"},
    {"org.certseal.CertSeal1.Order", "StartPayment", "org.certseal.order-act"},
    {"org.certseal.CertSeal1.Order", "GetInvoice", "org.certseal.order-act"},
    {"org.certseal.CertSeal1.Order", "Cancel", "org.certseal.order-act"},
    {"org.certseal.CertSeal1.Order", "Unlock", "org.certseal.key-manage"},
    {"org.certseal.CertSeal1.Order", "Download", "org.certseal.key-manage"},
    {"org.certseal.CertSeal1.Key", "Login", "org.certseal.key-login"},
    {"org.certseal.CertSeal1.Key", "Logout", "org.certseal.key-login"},
    {"org.certseal.CertSeal1.Key", "ChangePin", "org.certseal.key-login"},
    {"org.certseal.CertSeal1.Key", "ReadSeal", "org.certseal.key-login"},
    {"org.certseal.CertSeal1.Key", "SealDocument", "org.certseal.key-login"},
};

static const Expected *
expected_for(const char *interface, const char *member)
{
	for (gsize i = 0; i < G_N_ELEMENTS(expected); i++)
		if (strcmp(expected[i].interface, interface) == 0 &&
		    strcmp(expected[i].member, member) == 0)
			return &expected[i];
	return NULL;
}

typedef struct {
	char *interface;
	GPtrArray *methods; /* "interface.member" */
	GPtrArray *actions; /* action ids of the policy file */
} Collected;

static void
on_start(GMarkupParseContext *context,
	 const char *element,
	 const char **names,
	 const char **values,
	 gpointer user_data,
	 GError **error)
{
	Collected *c = user_data;

	for (guint i = 0; names[i] != NULL; i++) {
		if (strcmp(element, "interface") == 0 && strcmp(names[i], "name") == 0) {
			g_free(c->interface);
			c->interface = g_strdup(values[i]);
		} else if (strcmp(element, "method") == 0 && strcmp(names[i], "name") == 0) {
			g_ptr_array_add(c->methods,
					g_strdup_printf("%s %s", c->interface, values[i]));
		} else if (strcmp(element, "action") == 0 && strcmp(names[i], "id") == 0) {
			g_ptr_array_add(c->actions, g_strdup(values[i]));
		}
	}
}

static void
parse(const char *name, Collected *c)
{
	static const GMarkupParser parser = {.start_element = on_start};
	g_autofree char *path = g_build_filename(g_getenv("CS_SOURCE_DIR"), "dbus", name, NULL);
	g_autofree char *text = NULL;
	g_autoptr(GError) error = NULL;
	gsize len = 0;
	g_autoptr(GMarkupParseContext) ctx = NULL;
	char *doctype;

	g_assert_true(g_file_get_contents(path, &text, &len, &error));
	g_assert_no_error(error);
	/* GMarkup knows no DOCTYPE: blank it out. */
	doctype = strstr(text, "<!DOCTYPE");
	if (doctype != NULL) {
		char *end = strchr(doctype, '>');
		g_assert_nonnull(end);
		memset(doctype, ' ', (gsize)(end - doctype) + 1);
	}
	ctx = g_markup_parse_context_new(&parser, 0, c, NULL);
	g_assert_true(g_markup_parse_context_parse(ctx, text, (gssize)len, &error));
	g_assert_no_error(error);
	g_assert_true(g_markup_parse_context_end_parse(ctx, &error));
	g_assert_no_error(error);
}

static void
test_every_method_mapped(void)
{
	Collected c = {.methods = g_ptr_array_new_with_free_func(g_free),
		       .actions = g_ptr_array_new_with_free_func(g_free)};

	parse("org.certseal.CertSeal1.xml", &c);
	parse("org.certseal.CertSeal1.policy", &c);
	g_assert_cmpuint(c.methods->len, ==, G_N_ELEMENTS(expected));
	g_assert_cmpuint(c.actions->len, ==, 4);
	for (guint i = 0; i < c.methods->len; i++) {
		g_auto(GStrv) parts = g_strsplit(g_ptr_array_index(c.methods, i), " ", 2);
		const Expected *e = expected_for(parts[0], parts[1]);
		const char *got = cs_polkit_action_for(parts[0], parts[1]);

		g_test_message("%s.%s → %s", parts[0], parts[1], got != NULL ? got : "(none)");
		g_assert_nonnull(e);
		g_assert_cmpstr(got, ==, e->action);
		if (got != NULL) {
			gboolean declared = FALSE;
			for (guint j = 0; j < c.actions->len; j++)
				declared =
				    declared || strcmp(g_ptr_array_index(c.actions, j), got) == 0;
			g_assert_true(declared);
		}
	}
	g_ptr_array_unref(c.methods);
	g_ptr_array_unref(c.actions);
	g_free(c.interface);
}

/* A method added to an interface later is guarded by default, never open by oversight;
 * the standard interfaces (Properties, ObjectManager, …) are not ours to guard. */
static void
test_unknown_methods(void)
{
	g_assert_cmpstr(cs_polkit_action_for("org.certseal.CertSeal1.Key", "Wipe"), ==,
			CS_POLKIT_KEY_MANAGE);
	g_assert_cmpstr(cs_polkit_action_for("org.certseal.CertSeal1.Order", "Refund"), ==,
			CS_POLKIT_ORDER_ACT);
	g_assert_cmpstr(cs_polkit_action_for("org.certseal.CertSeal1.Manager", "Anything"), ==,
			CS_POLKIT_ORDER_CREATE);
	g_assert_null(cs_polkit_action_for("org.freedesktop.DBus.Properties", "Get"));
	/* A call that leaves out its interface is guarded by its member. */
	g_assert_cmpstr(cs_polkit_action_for(NULL, "Login"), ==, CS_POLKIT_KEY_LOGIN);
	g_assert_cmpstr(cs_polkit_action_for(NULL, "Download"), ==, CS_POLKIT_KEY_MANAGE);
	g_assert_null(cs_polkit_action_for(NULL, "GetFlow"));
	g_assert_null(cs_polkit_action_for("org.certseal.CertSeal1.Key", NULL));
}

/* On the session bus (no CsPolkit) nothing is asked: the check passes at once. */
static void
test_session_bus_passes(void)
{
	sd_bus_error err = SD_BUS_ERROR_NULL;

	g_assert_cmpint(cs_polkit_check(NULL, NULL, &err), ==, 1);
	g_assert_false(sd_bus_error_is_set(&err));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/polkit/every-method-mapped", test_every_method_mapped);
	g_test_add_func("/polkit/unknown-methods-guarded", test_unknown_methods);
	g_test_add_func("/polkit/session-bus-passes", test_session_bus_passes);
	return g_test_run();
}
