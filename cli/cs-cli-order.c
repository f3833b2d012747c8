/*
 * cs-cli-order.c — `certseal order show|confirm|cancel|attach|submit|send-code|verify|pay|
 * invoice` and `certseal form`: the applicant's side of an order (docs/architecture.md §1.1, §3.3,
 * §3.6).
 *
 * Each verb is one method of org.certseal.CertSeal1.Order; the daemon decides whether it
 * is allowed now and says why not. The SMS code is a secret: `order verify` reads it from
 * the terminal without echo, or a line of stdin, never from argv. Files written here (the
 * invoice, a blank form) never replace an existing file unless --force is given.
 */
#define G_LOG_DOMAIN "certseal"

#include <errno.h>
#include <fcntl.h>
#include <gio/gunixfdlist.h>
#include <string.h>
#include <unistd.h>

#include "cs-cli-order.h"
#include "cs-cli-renew.h"
#include "cs-json.h"
#include "cs-qr-term.h"

#define ORDER_USAGE                                                                                \
	"usage: certseal order show|confirm|cancel|submit|send-code|verify ORDER_ID\n"             \
	"       certseal order attach ORDER_ID KIND FILE\n"                                        \
	"       certseal order pay ORDER_ID --channel sandbox|alipay|wechat "                      \
	"[--light-background]\n"                                                                   \
	"       certseal order invoice ORDER_ID --output FILE [--force]\n"                         \
	"       certseal order download ORDER_ID --key SERIAL\n"                                   \
	"       certseal order continue ORDER_ID [the next step's options]"
#define FORM_USAGE "usage: certseal form seal_form_org|seal_form_person --output FILE [--force]"

/* --- show ----------------------------------------------------------------------------- */

static const char *
lookup_str(GVariant *props, const char *key)
{
	const char *value = NULL;

	if (!g_variant_lookup(props, key, "&s", &value) || *value == '\0')
		return "—";
	return value;
}

static void
print_row(const char *label, const char *value)
{
	g_autofree char *with_colon = g_strconcat(label, ":", NULL);
	g_print("  %-10s %s\n", with_colon, value);
}

static char *
format_date(guint64 seconds)
{
	g_autoptr(GDateTime) dt = NULL;

	if (seconds == 0)
		return g_strdup("—");
	dt = g_date_time_new_from_unix_local((gint64)seconds);
	return dt != NULL ? g_date_time_format(dt, "%Y-%m-%d") : g_strdup("?");
}

static void
print_fields(GVariant *fields)
{
	GVariantIter iter;
	const char *k;
	GVariant *v;

	g_print("  Fields:\n");
	g_variant_iter_init(&iter, fields);
	while (g_variant_iter_next(&iter, "{&sv}", &k, &v)) {
		g_autoptr(GVariant) owned = v;
		g_autofree char *text = g_variant_is_of_type(v, G_VARIANT_TYPE_STRING)
					    ? g_variant_dup_string(v, NULL)
					    : g_variant_print(v, FALSE);
		g_print("    %-20s %s\n", k, text);
	}
}

static void
print_history(GVariant *props)
{
	g_autoptr(GVariant) history =
	    g_variant_lookup_value(props, "History", G_VARIANT_TYPE("a(tss)"));
	GVariantIter iter;
	guint64 t;
	const char *st, *note;

	g_print("  History:\n");
	if (history == NULL)
		return;
	g_variant_iter_init(&iter, history);
	while (g_variant_iter_next(&iter, "(t&s&s)", &t, &st, &note)) {
		g_autofree char *when = cs_cli_format_time(t);
		g_print("    %s  %-14s %s\n", when, st, note);
	}
}

int
cs_cli_order_show(CsCli *cli, const char *path)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) props = cs_cli_get_all(cli, path, CS_CLI_ORDER_IFACE, &error);
	g_autoptr(GVariant) fields = NULL;
	g_autofree char *next = NULL, *missing = NULL, *warnings = NULL, *materials = NULL;
	g_autofree char *amount_text = NULL, *due = NULL, *header = NULL;
	const char *id = "?", *kind = "?", *subject = "?", *state = "?";
	guint64 amount = 0, due_by = 0;
	gboolean invoice = FALSE;

	if (props == NULL)
		return cs_cli_fail_error(cli, error);
	fields = cs_cli_get_property(cli, path, CS_CLI_ORDER_IFACE, "Fields", &error);
	if (fields == NULL)
		return cs_cli_fail_error(cli, error);
	if (cli->json) {
		g_autoptr(GVariantDict) d = g_variant_dict_new(props);
		g_variant_dict_insert_value(d, "Fields", fields);
		g_autoptr(GVariant) all = g_variant_ref_sink(g_variant_dict_end(d));
		cs_cli_print_json(all);
		return CS_EXIT_OK;
	}
	g_variant_lookup(props, "Id", "&s", &id);
	g_variant_lookup(props, "Kind", "&s", &kind);
	g_variant_lookup(props, "SubjectType", "&s", &subject);
	g_variant_lookup(props, "State", "&s", &state);
	g_variant_lookup(props, "AmountFen", "t", &amount);
	g_variant_lookup(props, "DueBy", "t", &due_by);
	g_variant_lookup(props, "InvoiceAvailable", "b", &invoice);
	next = cs_cli_join_strv(props, "NextActions");
	missing = cs_cli_join_strv(props, "Missing");
	materials = cs_cli_join_strv(props, "Materials");
	warnings = cs_cli_join_strv(props, "Warnings");
	amount_text =
	    g_strdup_printf("¥%" G_GUINT64_FORMAT ".%02u", amount / 100, (guint)(amount % 100));
	due = format_date(due_by);
	header = g_strdup_printf("Order %s (%s, %s)", id, kind, subject);

	g_print("%s\n", header);
	print_row("State", state);
	print_row("Vendor", lookup_str(props, "Vendor"));
	print_row("Amount", amount_text);
	print_row("Auth", lookup_str(props, "AuthMethod"));
	print_row("Password", lookup_str(props, "PasswordDelivery"));
	print_row("Payment", lookup_str(props, "PaymentChannel"));
	print_row("Invoice", invoice ? "available (certseal order invoice ID --output FILE)" : "—");
	print_row("Due by", due);
	print_row("Review", lookup_str(props, "ReviewNote"));
	print_row("Tracking", lookup_str(props, "TrackingNumber"));
	print_row("Next", next);
	print_row("Missing", missing);
	print_row("Materials", materials);
	print_row("Warnings", warnings);
	print_fields(fields);
	print_history(props);
	return CS_EXIT_OK;
}

char *
cs_cli_order_state(CsCli *cli, const char *path, GError **error)
{
	g_autoptr(GVariant) v = cs_cli_get_property(cli, path, CS_CLI_ORDER_IFACE, "State", error);

	if (v == NULL)
		return NULL;
	return g_variant_dup_string(v, NULL);
}

/* --- attach ----------------------------------------------------------------------------- */

gboolean
cs_cli_order_attach(
    CsCli *cli, const char *path, const char *kind, const char *file, GError **error)
{
	g_autoptr(GUnixFDList) fds = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autofree char *base = g_path_get_basename(file);
	int fd = open(file, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		int saved = errno;
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved), "%s: %s", file,
			    g_strerror(saved));
		return FALSE;
	}
	fds = g_unix_fd_list_new_from_array(&fd, 1); /* takes @fd */
	reply = g_dbus_connection_call_with_unix_fd_list_sync(
	    cli->bus, CS_CLI_BUS_NAME, path, CS_CLI_ORDER_IFACE, "AttachMaterial",
	    g_variant_new("(ssh)", kind, base, 0), NULL, G_DBUS_CALL_FLAGS_NONE, 120000, fds, NULL,
	    NULL, error);
	return reply != NULL;
}

static int
order_attach(CsCli *cli, const char *path, const char *kind, const char *file)
{
	g_autoptr(GError) error = NULL;

	if (!cs_cli_order_attach(cli, path, kind, file, &error)) {
		if (error->domain == G_FILE_ERROR)
			return cs_cli_fail(cli, CS_EXIT_USAGE, "file", error->message);
		return cs_cli_fail_error(cli, error);
	}
	return cs_cli_order_show(cli, path);
}

/* --- the SMS code ---------------------------------------------------------------------- */

static int
order_send_code(CsCli *cli, const char *path)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply =
	    cs_cli_call(cli, path, CS_CLI_ORDER_IFACE, "SendSmsCode", NULL, "(s)", &error);
	const char *masked;

	if (reply == NULL)
		return cs_cli_fail_error(cli, error);
	g_variant_get(reply, "(&s)", &masked);
	if (cli->json) {
		g_autoptr(GString) s = g_string_new("{\"masked_phone\":");
		cs_json_append_string(s, masked);
		g_string_append(s, "}");
		g_print("%s\n", s->str);
	} else {
		g_print("A new code was sent by SMS to %s.\n", masked);
	}
	return CS_EXIT_OK;
}

static int
order_verify(CsCli *cli, const char *path)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	char *code = cs_cli_read_secret(cli, "SMS code");

	if (code != NULL)
		g_strstrip(code);
	if (code == NULL || *code == '\0') {
		cs_cli_free_secret(code);
		return cs_cli_fail(cli, CS_EXIT_USAGE, "usage",
				   "no code given (it is read from the terminal or stdin)");
	}
	reply = cs_cli_call(cli, path, CS_CLI_ORDER_IFACE, "VerifySmsCode",
			    g_variant_new("(s)", code), NULL, &error);
	cs_cli_free_secret(code);
	if (reply == NULL)
		return cs_cli_fail_error(cli, error);
	return cs_cli_order_show(cli, path);
}

/* --- payment and invoice --------------------------------------------------------------- */

void
cs_cli_print_payment(const char *channel,
		     const char *payload,
		     guint64 expires,
		     guint64 amount_fen,
		     gboolean light_background)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *qr = cs_qr_term_render(payload, light_background, &error);
	g_autofree char *until = cs_cli_format_time(expires);

	if (qr != NULL)
		g_print("%s", qr);
	else
		g_printerr("certseal: the QR code cannot be drawn: %s\n", error->message);
	g_print("Scan to pay ¥%" G_GUINT64_FORMAT ".%02u (%s).\n", amount_fen / 100,
		(guint)(amount_fen % 100), channel);
	g_print("Payload: %s\n", payload);
	g_print("Expires: %s\n", until);
}

static int
order_pay(CsCli *cli, const char *path, const char *channel, gboolean light_background)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) amount = NULL;
	const char *payload;
	guint64 expires;

	reply = cs_cli_call(cli, path, CS_CLI_ORDER_IFACE, "StartPayment",
			    g_variant_new("(s)", channel), "(st)", &error);
	if (reply == NULL)
		return cs_cli_fail_error(cli, error);
	g_variant_get(reply, "(&st)", &payload, &expires);
	if (cli->json) {
		g_autoptr(GString) s = g_string_new("{\"qr_payload\":");
		cs_json_append_string(s, payload);
		g_string_append_printf(s, ",\"expires\":%" G_GUINT64_FORMAT "}", expires);
		g_print("%s\n", s->str);
		return CS_EXIT_OK;
	}
	amount = cs_cli_get_property(cli, path, CS_CLI_ORDER_IFACE, "AmountFen", NULL);
	cs_cli_print_payment(channel, payload, expires,
			     amount != NULL ? g_variant_get_uint64(amount) : 0, light_background);
	return CS_EXIT_OK;
}

int
cs_cli_save_output(
    CsCli *cli, const char *what, const char *output, gconstpointer data, gsize len, gboolean force)
{
	g_autoptr(GError) error = NULL;

	if (!cs_cli_write_output(output, data, len, force, &error))
		return cs_cli_fail(cli, CS_EXIT_USAGE, "file", error->message);
	if (cli->json) {
		g_autoptr(GString) s = g_string_new("{\"output\":");
		cs_json_append_string(s, output);
		g_string_append_printf(s, ",\"size\":%" G_GSIZE_FORMAT "}", len);
		g_print("%s\n", s->str);
	} else {
		g_print("%s saved to %s (%" G_GSIZE_FORMAT " bytes).\n", what, output, len);
	}
	return CS_EXIT_OK;
}

gboolean
cs_cli_write_output(
    const char *output, gconstpointer data, gsize len, gboolean force, GError **error)
{
	const guint8 *p = data;
	int fd;

	if (force)
		return g_file_set_contents(output, data, (gssize)len, error);
	fd = open(output, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		int saved = errno;
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved), "%s: %s%s", output,
			    g_strerror(saved), saved == EEXIST ? " (--force replaces it)" : "");
		return FALSE;
	}
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int saved = errno;
			g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved), "%s: %s",
				    output, g_strerror(saved));
			close(fd);
			unlink(output);
			return FALSE;
		}
		p += n;
		len -= (gsize)n;
	}
	if (close(fd) != 0) {
		int saved = errno;
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved), "%s: %s", output,
			    g_strerror(saved));
		unlink(output);
		return FALSE;
	}
	return TRUE;
}

/* A PDF the daemon returns as "(ay)", written to @output. */
static int
save_pdf(CsCli *cli,
	 const char *path,
	 const char *iface,
	 const char *method,
	 GVariant *args,
	 const char *output,
	 gboolean force,
	 const char *what)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) bytes = NULL;
	const guint8 *data;
	gsize len = 0;

	if (!force && g_file_test(output, G_FILE_TEST_EXISTS)) {
		g_autoptr(GVariant) sink = args != NULL ? g_variant_ref_sink(args) : NULL;
		g_autofree char *msg =
		    g_strdup_printf("%s: already exists (--force replaces it)", output);
		return cs_cli_fail(cli, CS_EXIT_USAGE, "file", msg);
	}
	reply = cs_cli_call(cli, path, iface, method, args, "(ay)", &error);
	if (reply == NULL) {
		g_autofree char *name = cs_cli_error_name(error);
		/* The order exists (an unknown one is UnknownObject): what is not found is the
		 * document, a refusal rather than exit 4's "no such order". */
		if (g_strcmp0(name, "org.certseal.Error.NotFound") == 0) {
			g_dbus_error_strip_remote_error(error);
			return cs_cli_fail(cli, CS_EXIT_REFUSED, name, error->message);
		}
		return cs_cli_fail_error(cli, error);
	}
	bytes = g_variant_get_child_value(reply, 0);
	data = g_variant_get_fixed_array(bytes, &len, 1);
	return cs_cli_save_output(cli, what, output, data, len, force);
}

int
cs_cli_form(CsCli *cli, int argc, char **argv)
{
	const char *name = NULL, *output = NULL;
	gboolean force = FALSE;

	for (int i = 0; i < argc; i++) {
		if (g_strcmp0(argv[i], "--output") == 0 && i + 1 < argc)
			output = argv[++i];
		else if (g_strcmp0(argv[i], "--force") == 0)
			force = TRUE;
		else if (argv[i][0] != '-' && name == NULL)
			name = argv[i];
		else
			return cs_cli_fail(cli, CS_EXIT_USAGE, "usage", FORM_USAGE);
	}
	if (name == NULL || output == NULL)
		return cs_cli_fail(cli, CS_EXIT_USAGE, "usage", FORM_USAGE);
	return save_pdf(cli, CS_CLI_MANAGER_PATH, CS_CLI_MANAGER_IFACE, "DownloadForm",
			g_variant_new("(s)", name), output, force, "The blank form");
}

/* --- the verbs -------------------------------------------------------------------------- */

/* "--name value" and "--flag" options after ORDER_ID; FALSE on anything else. */
static gboolean
parse_options(int argc,
	      char **argv,
	      const char *const *with_value,
	      const char **values,
	      const char *const *flags,
	      gboolean *set)
{
	for (int i = 0; i < argc; i++) {
		gboolean known = FALSE;
		for (guint k = 0; with_value != NULL && with_value[k] != NULL; k++) {
			if (g_strcmp0(argv[i], with_value[k]) == 0 && i + 1 < argc) {
				values[k] = argv[++i];
				known = TRUE;
				break;
			}
		}
		for (guint k = 0; !known && flags != NULL && flags[k] != NULL; k++) {
			if (g_strcmp0(argv[i], flags[k]) == 0) {
				set[k] = TRUE;
				known = TRUE;
			}
		}
		if (!known)
			return FALSE;
	}
	return TRUE;
}

/* A method without arguments, then the order shown. */
static int
order_act(CsCli *cli, const char *path, const char *method)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply =
	    cs_cli_call(cli, path, CS_CLI_ORDER_IFACE, method, NULL, NULL, &error);

	if (reply == NULL)
		return cs_cli_fail_error(cli, error);
	return cs_cli_order_show(cli, path);
}

/* `order continue`: the verb of the order's next desktop step (NextActions), or NULL when
 * the order waits for someone else (@why then says for what). */
static const char *
next_verb(CsCli *cli, const char *path, char **why, GError **error)
{
	static const struct {
		const char *method;
		const char *verb;
	} steps[] = {
	    {"Confirm", "confirm"},	 {"AttachMaterial", "attach"}, {"Submit", "submit"},
	    {"VerifySmsCode", "verify"}, {"StartPayment", "pay"},      {"Download", "download"},
	};
	g_autoptr(GVariant) props = cs_cli_get_all(cli, path, CS_CLI_ORDER_IFACE, error);
	g_autofree const char **next = NULL;
	g_autofree const char **missing = NULL;
	const char *state = "";

	if (props == NULL)
		return NULL;
	g_variant_lookup(props, "State", "&s", &state);
	g_variant_lookup(props, "NextActions", "^a&s", &next);
	g_variant_lookup(props, "Missing", "^a&s", &missing);
	for (guint i = 0; i < G_N_ELEMENTS(steps); i++) {
		if (next == NULL || !g_strv_contains(next, steps[i].method))
			continue;
		/* Materials first while some are missing; otherwise on to the next step. */
		if (g_strcmp0(steps[i].method, "AttachMaterial") == 0) {
			g_autofree char *list = NULL;
			if (missing == NULL || missing[0] == NULL)
				continue;
			list = g_strjoinv(", ", (char **)missing);
			*why =
			    g_strdup_printf("missing: %s; attach each with certseal order attach "
					    "ID KIND FILE",
					    list);
			return NULL;
		}
		return steps[i].verb;
	}
	*why = g_strdup_printf("nothing for you to do now: the order is %s and waits for the "
			       "office or the payment",
			       state);
	return NULL;
}

int
cs_cli_order(CsCli *cli, int argc, char **argv)
{
	static const struct {
		const char *verb;
		const char *method;
	} simple[] = {
	    {"confirm", "Confirm"},
	    {"cancel", "Cancel"},
	    {"submit", "Submit"},
	};
	g_autofree char *path = NULL;
	const char *verb;
	int rc = CS_EXIT_OK;

	if (argc < 2)
		return cs_cli_fail(cli, CS_EXIT_USAGE, "usage", ORDER_USAGE);
	verb = argv[0];
	path = cs_cli_order_path(cli, argv[1], &rc);
	if (path == NULL)
		return rc;
	argc -= 2;
	argv += 2;
	if (g_strcmp0(verb, "continue") == 0) {
		g_autoptr(GError) error = NULL;
		g_autofree char *why = NULL;
		g_autofree char **args = g_new0(char *, argc + 3);

		verb = next_verb(cli, path, &why, &error);
		if (error != NULL)
			return cs_cli_fail_error(cli, error);
		if (verb == NULL)
			return cs_cli_fail(cli, CS_EXIT_REFUSED, "org.certseal.Error.WrongState",
					   why);
		if (!cli->json)
			g_printerr("Next step: %s.\n", verb);
		args[0] = (char *)verb;
		args[1] = argv[-1];
		for (int i = 0; i < argc; i++)
			args[i + 2] = argv[i];
		return cs_cli_order(cli, argc + 2, args);
	}
	if (g_strcmp0(verb, "attach") == 0) {
		if (argc != 2)
			return cs_cli_fail(cli, CS_EXIT_USAGE, "usage", ORDER_USAGE);
		return order_attach(cli, path, argv[0], argv[1]);
	}
	if (g_strcmp0(verb, "verify") == 0) {
		if (argc != 0)
			return cs_cli_fail(cli, CS_EXIT_USAGE, "usage",
					   "usage: certseal order verify ORDER_ID  (the SMS code "
					   "is read from the terminal or stdin, never from the "
					   "command line)");
		return order_verify(cli, path);
	}
	if (g_strcmp0(verb, "pay") == 0) {
		static const char *const with_value[] = {"--channel", NULL};
		static const char *const flags[] = {"--light-background", NULL};
		const char *values[1] = {NULL};
		gboolean set[1] = {FALSE};
		if (!parse_options(argc, argv, with_value, values, flags, set) || values[0] == NULL)
			return cs_cli_fail(cli, CS_EXIT_USAGE, "usage", ORDER_USAGE);
		return order_pay(cli, path, values[0], set[0]);
	}
	if (g_strcmp0(verb, "download") == 0)
		return cs_cli_order_download(cli, path, argc, argv);
	if (g_strcmp0(verb, "invoice") == 0) {
		static const char *const with_value[] = {"--output", NULL};
		static const char *const flags[] = {"--force", NULL};
		const char *values[1] = {NULL};
		gboolean set[1] = {FALSE};
		if (!parse_options(argc, argv, with_value, values, flags, set) || values[0] == NULL)
			return cs_cli_fail(cli, CS_EXIT_USAGE, "usage", ORDER_USAGE);
		return save_pdf(cli, path, CS_CLI_ORDER_IFACE, "GetInvoice", NULL, values[0],
				set[0], "The invoice");
	}
	if (argc != 0)
		return cs_cli_fail(cli, CS_EXIT_USAGE, "usage", ORDER_USAGE);
	if (g_strcmp0(verb, "show") == 0)
		return cs_cli_order_show(cli, path);
	if (g_strcmp0(verb, "send-code") == 0)
		return order_send_code(cli, path);
	for (guint i = 0; i < G_N_ELEMENTS(simple); i++) {
		if (g_strcmp0(verb, simple[i].verb) == 0)
			return order_act(cli, path, simple[i].method);
	}
	return cs_cli_fail(cli, CS_EXIT_USAGE, "usage", ORDER_USAGE);
}
