/*
 * cs-cli-query.c — `certseal query`: SendQueryCode, the code from the terminal (without
 * echo) or a line of stdin, then FindOrders and, with --certificates, FindCertificates.
 *
 * The grant a code opens belongs to this process's D-Bus connection: the orders it lists
 * can be continued from this command's connection only while it runs, so `query` prints
 * what it found and how to continue (certseal order show ID, run by its owner, or a new
 * query). `certseal reissue` runs the query and, on the same connection, creates the reissue
 * order (丢失补办) for one of the certificates it found.
 */
#define G_LOG_DOMAIN "certseal"

#include <string.h>

#include "cs-cli-query.h"

#define QUERY_USAGE                                                                                \
	"usage: certseal query --subject org|person --id NUMBER [--vendor ID] [--certificates]\n"  \
	"The code goes to the phone on file for the subject; type it when asked (or give it\n"     \
	"as a line of stdin). What it opens lasts while this command's connection does."

typedef struct {
	const char *subject;
	const char *id_number;
	const char *vendor;
	gboolean certificates;
} Query;

static gboolean
parse_args(Query *q, int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (g_strcmp0(a, "--certificates") == 0) {
			q->certificates = TRUE;
			continue;
		}
		if (v == NULL)
			return FALSE;
		if (g_strcmp0(a, "--subject") == 0)
			q->subject = v;
		else if (g_strcmp0(a, "--id") == 0)
			q->id_number = v;
		else if (g_strcmp0(a, "--vendor") == 0)
			q->vendor = v;
		else
			return FALSE;
		i++;
	}
	return q->subject != NULL && q->id_number != NULL &&
	       (g_strcmp0(q->subject, "org") == 0 || g_strcmp0(q->subject, "person") == 0);
}

/* An order row: {id, kind, state, next_action, updated}. */
static GVariant *
order_row(CsCli *cli, const char *path, GError **error)
{
	g_autoptr(GVariant) props = cs_cli_get_all(cli, path, CS_CLI_ORDER_IFACE, error);
	g_autofree const char **next = NULL;
	const char *id = "", *kind = "", *state = "";
	guint64 updated = 0;
	GVariantDict d;

	if (props == NULL)
		return NULL;
	g_variant_lookup(props, "Id", "&s", &id);
	g_variant_lookup(props, "Kind", "&s", &kind);
	g_variant_lookup(props, "State", "&s", &state);
	g_variant_lookup(props, "UpdatedAt", "t", &updated);
	g_variant_lookup(props, "NextActions", "^a&s", &next);
	g_variant_dict_init(&d, NULL);
	g_variant_dict_insert(&d, "id", "s", id);
	g_variant_dict_insert(&d, "kind", "s", kind);
	g_variant_dict_insert(&d, "state", "s", state);
	g_variant_dict_insert(&d, "next_action", "s",
			      next != NULL && next[0] != NULL ? next[0] : "");
	g_variant_dict_insert(&d, "updated", "t", updated);
	return g_variant_ref_sink(g_variant_dict_end(&d));
}

static void
print_orders(GPtrArray *rows)
{
	if (rows->len == 0) {
		g_print("No orders.\n");
		return;
	}
	g_print("%-18s %-8s %-14s %-16s %s\n", "ORDER", "KIND", "STATE", "NEXT", "UPDATED");
	for (guint i = 0; i < rows->len; i++) {
		GVariant *r = g_ptr_array_index(rows, i);
		const char *id, *kind, *state, *next;
		guint64 updated = 0;
		g_autofree char *when = NULL;

		g_variant_lookup(r, "id", "&s", &id);
		g_variant_lookup(r, "kind", "&s", &kind);
		g_variant_lookup(r, "state", "&s", &state);
		g_variant_lookup(r, "next_action", "&s", &next);
		g_variant_lookup(r, "updated", "t", &updated);
		const char *shown = *next != '\0' ? next : "—";
		/* Padded by characters, not bytes: the dash is three bytes wide. */
		int pad = 16 - (int)g_utf8_strlen(shown, -1);

		when = cs_cli_format_time(updated);
		g_print("%-18s %-8s %-14s %s%*s %s\n", id, kind, state, shown, MAX(pad, 0), "",
			when);
	}
}

static GVariant *
certificate_rows(GVariant *reply)
{
	g_autoptr(GVariant) list = g_variant_get_child_value(reply, 0);
	GVariantBuilder b;
	GVariantIter iter;
	const char *serial, *subject, *vendor, *status;
	guint64 nb, na;

	g_variant_builder_init(&b, G_VARIANT_TYPE("aa{sv}"));
	g_variant_iter_init(&iter, list);
	while (g_variant_iter_next(&iter, "(&s&s&s&stt)", &serial, &subject, &vendor, &status, &nb,
				   &na)) {
		GVariantDict d;
		g_variant_dict_init(&d, NULL);
		g_variant_dict_insert(&d, "serial", "s", serial);
		g_variant_dict_insert(&d, "subject", "s", subject);
		g_variant_dict_insert(&d, "vendor", "s", vendor);
		g_variant_dict_insert(&d, "status", "s", status);
		g_variant_dict_insert(&d, "not_before", "t", nb);
		g_variant_dict_insert(&d, "not_after", "t", na);
		g_variant_builder_add_value(&b, g_variant_dict_end(&d));
	}
	return g_variant_ref_sink(g_variant_builder_end(&b));
}

static void
print_certificates(GVariant *rows)
{
	GVariantIter iter;
	GVariant *r;

	if (g_variant_n_children(rows) == 0) {
		g_print("No certificates.\n");
		return;
	}
	g_print("%-32s %-8s %-11s %-10s %s\n", "CERTIFICATE", "VENDOR", "STATUS", "VALID TO",
		"SUBJECT");
	g_variant_iter_init(&iter, rows);
	while ((r = g_variant_iter_next_value(&iter)) != NULL) {
		g_autoptr(GVariant) owned = r;
		const char *serial, *subject, *vendor, *status;
		guint64 na = 0;
		g_autofree char *until = NULL;

		g_variant_lookup(r, "serial", "&s", &serial);
		g_variant_lookup(r, "subject", "&s", &subject);
		g_variant_lookup(r, "vendor", "&s", &vendor);
		g_variant_lookup(r, "status", "&s", &status);
		g_variant_lookup(r, "not_after", "t", &na);
		until = cs_cli_format_time(na);
		until[10] = '\0'; /* the day is enough */
		g_print("%-32s %-8s %-11s %-10s %s\n", serial, vendor, status, until, subject);
	}
}

int
cs_cli_query(CsCli *cli, int argc, char **argv)
{
	Query q = {.vendor = ""};
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) sent = NULL;
	g_autoptr(GVariant) found = NULL;
	g_autoptr(GVariant) certs = NULL;
	g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func((GDestroyNotify)g_variant_unref);
	const char *masked = NULL;
	char *code;
	GVariantIter *iter = NULL;
	const char *path;

	if (!parse_args(&q, argc, argv))
		return cs_cli_fail(cli, CS_EXIT_USAGE, "usage", QUERY_USAGE);
	sent = cs_cli_call(cli, CS_CLI_MANAGER_PATH, CS_CLI_MANAGER_IFACE, "SendQueryCode",
			   g_variant_new("(sss)", q.vendor, q.subject, q.id_number), "(s)", &error);
	if (sent == NULL)
		return cs_cli_fail_error(cli, error);
	g_variant_get(sent, "(&s)", &masked);
	g_printerr("A query code was sent to %s.\n", masked);
	code = cs_cli_read_secret(cli, "Query code (6 digits): ");
	if (code == NULL)
		return cs_cli_fail(cli, CS_EXIT_USAGE, "usage", "input ended before the code");
	found = cs_cli_call(cli, CS_CLI_MANAGER_PATH, CS_CLI_MANAGER_IFACE, "FindOrders",
			    g_variant_new("(ssss)", q.vendor, q.subject, q.id_number, code), "(ao)",
			    &error);
	cs_cli_free_secret(code);
	if (found == NULL)
		return cs_cli_fail_error(cli, error);
	g_variant_get(found, "(ao)", &iter);
	while (g_variant_iter_next(iter, "&o", &path)) {
		GVariant *row = order_row(cli, path, &error);
		if (row == NULL) {
			g_variant_iter_free(iter);
			return cs_cli_fail_error(cli, error);
		}
		g_ptr_array_add(rows, row);
	}
	g_variant_iter_free(iter);
	if (q.certificates) {
		g_autoptr(GVariant) reply =
		    cs_cli_call(cli, CS_CLI_MANAGER_PATH, CS_CLI_MANAGER_IFACE, "FindCertificates",
				g_variant_new("(ssss)", q.vendor, q.subject, q.id_number, ""),
				"(a(sssstt))", &error);
		if (reply == NULL)
			return cs_cli_fail_error(cli, error);
		certs = certificate_rows(reply);
	}
	if (cli->json) {
		GVariantBuilder b, list;
		g_autoptr(GVariant) doc = NULL;

		g_variant_builder_init(&list, G_VARIANT_TYPE("aa{sv}"));
		for (guint i = 0; i < rows->len; i++)
			g_variant_builder_add_value(&list, g_ptr_array_index(rows, i));
		g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
		g_variant_builder_add(&b, "{sv}", "orders", g_variant_builder_end(&list));
		if (certs != NULL)
			g_variant_builder_add(&b, "{sv}", "certificates", certs);
		doc = g_variant_ref_sink(g_variant_builder_end(&b));
		cs_cli_print_json(doc);
		return CS_EXIT_OK;
	}
	print_orders(rows);
	if (certs != NULL) {
		g_print("\n");
		print_certificates(certs);
	}
	return CS_EXIT_OK;
}

#define REISSUE_USAGE                                                                              \
	"usage: certseal reissue --subject org|person --id NUMBER --serial SERIAL\n"               \
	"                        --reason lost|damaged [--vendor ID]\n"                            \
	"Replace a lost or damaged key (补办). A reissue is allowed only for a certificate an\n" \
	"order query found on the same D-Bus connection, so this command queries first: the\n"     \
	"code goes to the phone on file (type it when asked, or give it as a line of stdin),\n"    \
	"then the order is created from the same process. The grant is per connection: a\n"        \
	"query run by another command does not count. For a lost key the old certificate is\n"     \
	"revoked as soon as the order's SMS code is verified; for a damaged one once the new\n"    \
	"key is made. Continue with certseal order confirm|attach|submit|verify|pay ID."

int
cs_cli_reissue(CsCli *cli, int argc, char **argv)
{
	Query q = {.vendor = ""};
	const char *serial = NULL, *reason = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) sent = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) created = NULL;
	g_autoptr(GVariant) certs = NULL;
	g_autoptr(GPtrArray) rest = g_ptr_array_new();
	g_autofree char *id = NULL;
	const char *masked = NULL, *path = NULL;
	GVariantBuilder fields;
	char *code;

	for (int i = 0; i < argc; i++) {
		if (i + 1 < argc && g_strcmp0(argv[i], "--serial") == 0)
			serial = argv[++i];
		else if (i + 1 < argc && g_strcmp0(argv[i], "--reason") == 0)
			reason = argv[++i];
		else
			g_ptr_array_add(rest, argv[i]);
	}
	if (!parse_args(&q, (int)rest->len, (char **)rest->pdata) || q.certificates ||
	    serial == NULL || (g_strcmp0(reason, "lost") != 0 && g_strcmp0(reason, "damaged") != 0))
		return cs_cli_fail(cli, CS_EXIT_USAGE, "usage", REISSUE_USAGE);
	sent = cs_cli_call(cli, CS_CLI_MANAGER_PATH, CS_CLI_MANAGER_IFACE, "SendQueryCode",
			   g_variant_new("(sss)", q.vendor, q.subject, q.id_number), "(s)", &error);
	if (sent == NULL)
		return cs_cli_fail_error(cli, error);
	g_variant_get(sent, "(&s)", &masked);
	g_printerr("A query code was sent to %s.\n", masked);
	code = cs_cli_read_secret(cli, "Query code (6 digits): ");
	if (code == NULL)
		return cs_cli_fail(cli, CS_EXIT_USAGE, "usage", "input ended before the code");
	reply = cs_cli_call(cli, CS_CLI_MANAGER_PATH, CS_CLI_MANAGER_IFACE, "FindCertificates",
			    g_variant_new("(ssss)", q.vendor, q.subject, q.id_number, code),
			    "(a(sssstt))", &error);
	cs_cli_free_secret(code);
	if (reply == NULL)
		return cs_cli_fail_error(cli, error);
	certs = certificate_rows(reply);
	g_variant_builder_init(&fields, G_VARIANT_TYPE("a{sv}"));
	g_variant_builder_add(&fields, "{sv}", "certificate_serial", g_variant_new_string(serial));
	g_variant_builder_add(&fields, "{sv}", "reason", g_variant_new_string(reason));
	created =
	    cs_cli_call(cli, CS_CLI_MANAGER_PATH, CS_CLI_MANAGER_IFACE, "CreateOrder",
			g_variant_new("(ssa{sv})", "reissue", q.subject, &fields), "(o)", &error);
	if (created == NULL) {
		if (!cli->json)
			print_certificates(certs);
		return cs_cli_fail_error(cli, error);
	}
	g_variant_get(created, "(&o)", &path);
	id = g_path_get_basename(path);
	if (cli->json) {
		GVariantBuilder b;
		g_autoptr(GVariant) doc = NULL;

		g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
		g_variant_builder_add(&b, "{sv}", "order", g_variant_new_string(id));
		g_variant_builder_add(&b, "{sv}", "path", g_variant_new_object_path(path));
		g_variant_builder_add(&b, "{sv}", "reason", g_variant_new_string(reason));
		g_variant_builder_add(&b, "{sv}", "certificates", certs);
		doc = g_variant_ref_sink(g_variant_builder_end(&b));
		cs_cli_print_json(doc);
		return CS_EXIT_OK;
	}
	g_print("Order %s created: reissue (%s) of certificate %s.\n", id, reason, serial);
	g_print("Continue with: certseal order show %s, then confirm, attach, submit, verify and "
		"pay.\n",
		id);
	return CS_EXIT_OK;
}
