/*
 * cs-cli-change.c — `certseal change`: the information change (信息变更, docs/architecture.md
 * §1.5, the manual's section 5) from the desktop, with the key in the slot.
 *
 *   certseal [--json] change [--key SERIAL] [--subject org|person] [--fields FILE]
 *                            [--material KIND=FILE]… [--yes]
 *
 * The key (the only one inserted, or --key), the login with the certificate password (from
 * the terminal without echo, or a line of stdin), the order created and pre-filled by the
 * daemon from the key and the registry (its current values shown), the new values (from
 * --fields FILE: a JSON object or key = value lines; or asked at a terminal), the SMS code
 * sent to the phone on file and read from the terminal or stdin, Confirm: a change of
 * contacts only is done there. Otherwise the evidence (--material) is attached and the
 * order submitted for review; once approved, `certseal order download ORDER_ID --key
 * SERIAL` writes the new certificate and seal. Every rule is the daemon's: its refusals are
 * printed as they are.
 */
#define G_LOG_DOMAIN "certseal"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cs-cli-apply.h"
#include "cs-cli-change.h"
#include "cs-cli-order.h"
#include "cs-cli-renew.h"

#define RESEND_WAIT_S 5
#define RESEND_MAX_WAIT_S 120
#define CHANGE_USAGE                                                                               \
	"usage: certseal change [--key SERIAL] [--subject org|person] [--fields FILE] "            \
	"[--material KIND=FILE]… [--yes]  (PIN and SMS code from the terminal or stdin)"

static void
step(CsCli *cli, const char *what, const char *state)
{
	if (cli->json) {
		g_printerr("%s → %s\n", what, state);
	} else {
		g_print("%s → %s\n", what, state);
		fflush(stdout);
	}
}

static char *
state_of(CsCli *cli, const char *path)
{
	g_autoptr(GError) error = NULL;
	char *state = cs_cli_order_state(cli, path, &error);

	return state != NULL ? state : g_strdup("");
}

/* The new values: name = value lines at a terminal, ended by an empty line. */
static void
ask_changes(GHashTable *values)
{
	char buf[512];

	g_printerr("新的信息 New values, one `field = value` a line (an empty line ends):\n");
	while (fgets(buf, sizeof(buf), stdin) != NULL) {
		char *eq = strchr(buf, '=');
		g_strstrip(buf);
		if (*buf == '\0')
			break;
		if (eq == NULL) {
			g_printerr("  (field = value)\n");
			continue;
		}
		*eq = '\0';
		g_hash_table_replace(values, g_strdup(g_strstrip(buf)),
				     g_strdup(g_strstrip(eq + 1)));
	}
}

static GVariant *
values_variant(GHashTable *values)
{
	GVariantBuilder b;
	GHashTableIter iter;
	gpointer k, v;

	g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
	g_hash_table_iter_init(&iter, values);
	while (g_hash_table_iter_next(&iter, &k, &v))
		g_variant_builder_add(&b, "{sv}", (const char *)k, g_variant_new_string(v));
	return g_variant_builder_end(&b);
}

/* 短信校验: the code sent to the phone on file, typed back. */
static int
verify_phone(CsCli *cli, const char *path)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) verified = NULL;
	const char *masked;
	char *code;

	/* A message to that phone moments ago (a notice, another order's code): the resend
	 * interval is waited out, saying so. */
	for (guint waited = 0;; waited += RESEND_WAIT_S) {
		g_autofree char *name = NULL;
		reply =
		    cs_cli_call(cli, path, CS_CLI_ORDER_IFACE, "SendSmsCode", NULL, "(s)", &error);
		if (reply != NULL)
			break;
		name = cs_cli_error_name(error);
		if (g_strcmp0(name, "org.certseal.Error.RateLimited") != 0 ||
		    waited >= RESEND_MAX_WAIT_S)
			return cs_cli_fail_error(cli, error);
		if (waited == 0)
			g_printerr("the phone on file had a message moments ago; waiting to send "
				   "the code…\n");
		g_clear_error(&error);
		g_usleep(RESEND_WAIT_S * G_USEC_PER_SEC);
	}
	g_variant_get(reply, "(&s)", &masked);
	g_printerr("验证码已发送至 A code was sent by SMS to %s\n", masked);
	step(cli, "send-code", masked);
	code = cs_cli_read_secret(cli, "SMS code");
	if (code != NULL)
		g_strstrip(code);
	if (code == NULL || *code == '\0') {
		cs_cli_free_secret(code);
		return cs_cli_fail(cli, CS_EXIT_USAGE, "usage",
				   "no SMS code given (it is read from the terminal or stdin)");
	}
	verified = cs_cli_call(cli, path, CS_CLI_ORDER_IFACE, "VerifySmsCode",
			       g_variant_new("(s)", code), NULL, &error);
	cs_cli_free_secret(code);
	return verified != NULL ? CS_EXIT_OK : cs_cli_fail_error(cli, error);
}

int
cs_cli_change(CsCli *cli, int argc, char **argv)
{
	g_autoptr(GHashTable) values =
	    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	g_autoptr(GPtrArray) materials = g_ptr_array_new();
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autofree char *key = NULL;
	g_autofree char *subject = NULL;
	g_autofree char *state = NULL;
	g_autofree char *path = NULL;
	g_autofree char *id = NULL;
	const char *serial = NULL, *subject_opt = NULL, *fields_file = NULL;
	gboolean yes = FALSE, human;
	GVariantBuilder create;
	int rc = CS_EXIT_OK;

	for (int i = 0; i < argc; i++) {
		if (g_strcmp0(argv[i], "--key") == 0 && i + 1 < argc)
			serial = argv[++i];
		else if (g_strcmp0(argv[i], "--subject") == 0 && i + 1 < argc)
			subject_opt = argv[++i];
		else if (g_strcmp0(argv[i], "--fields") == 0 && i + 1 < argc)
			fields_file = argv[++i];
		else if (g_strcmp0(argv[i], "--material") == 0 && i + 1 < argc &&
			 strchr(argv[i + 1], '=') != NULL && argv[i + 1][0] != '=')
			g_ptr_array_add(materials, argv[++i]);
		else if (g_strcmp0(argv[i], "--yes") == 0)
			yes = TRUE;
		else
			return cs_cli_fail(cli, CS_EXIT_USAGE, "usage", CHANGE_USAGE);
	}
	human = !yes && !cli->json && isatty(STDIN_FILENO);
	if (fields_file != NULL && !cs_cli_load_fields(fields_file, values, &error))
		return cs_cli_fail(cli, CS_EXIT_USAGE, "usage", error->message);
	/* 插入 UKey, 输入证书密码登录 */
	key = cs_cli_find_key(cli, serial, &rc);
	if (key == NULL)
		return rc;
	rc = cs_cli_key_login(cli, key);
	if (rc != CS_EXIT_OK)
		return rc;
	subject = subject_opt != NULL ? g_strdup(subject_opt) : cs_cli_key_subject(cli, key);
	/* The order pre-filled from the key and the registry; the current values shown. */
	g_variant_builder_init(&create, G_VARIANT_TYPE("a{sv}"));
	g_variant_builder_add(&create, "{sv}", "key", g_variant_new_object_path(key));
	reply = cs_cli_call(cli, CS_CLI_MANAGER_PATH, CS_CLI_MANAGER_IFACE, "CreateOrder",
			    g_variant_new("(ssa{sv})", "change", subject, &create), "(o)", &error);
	if (reply == NULL)
		return cs_cli_fail_error(cli, error);
	g_variant_get(reply, "(o)", &path);
	id = g_path_get_basename(path);
	step(cli, "create", id);
	if (human) {
		cs_cli_order_show(cli, path);
		ask_changes(values);
	}
	/* 变更信息 */
	if (g_hash_table_size(values) > 0) {
		g_clear_pointer(&reply, g_variant_unref);
		reply =
		    cs_cli_call(cli, path, CS_CLI_ORDER_IFACE, "Update",
				g_variant_new("(@a{sv})", values_variant(values)), NULL, &error);
		if (reply == NULL)
			return cs_cli_fail_error(cli, error);
	}
	rc = verify_phone(cli, path);
	if (rc != CS_EXIT_OK)
		return rc;
	g_clear_pointer(&reply, g_variant_unref);
	reply = cs_cli_call(cli, path, CS_CLI_ORDER_IFACE, "Confirm", NULL, NULL, &error);
	if (reply == NULL)
		return cs_cli_fail_error(cli, error);
	state = state_of(cli, path);
	step(cli, "confirm", state);
	if (g_strcmp0(state, "confirmed") == 0) {
		/* 上传证明材料, 提交审核 */
		for (guint i = 0; i < materials->len; i++) {
			g_autofree char *kind = g_strdup(g_ptr_array_index(materials, i));
			char *file = strchr(kind, '=');
			*file++ = '\0';
			if (!cs_cli_order_attach(cli, path, kind, file, &error)) {
				if (error->domain == G_FILE_ERROR)
					return cs_cli_fail(cli, CS_EXIT_USAGE, "file",
							   error->message);
				return cs_cli_fail_error(cli, error);
			}
			step(cli, "attach", kind);
		}
		g_clear_pointer(&reply, g_variant_unref);
		reply = cs_cli_call(cli, path, CS_CLI_ORDER_IFACE, "Submit", NULL, NULL, &error);
		if (reply == NULL)
			return cs_cli_fail_error(cli, error);
		g_free(state);
		state = state_of(cli, path);
		step(cli, "submit", state);
		if (!cli->json)
			g_print("once approved: certseal order download %s --key SERIAL\n", id);
	} else if (!cli->json && g_strcmp0(state, "completed") == 0) {
		g_print("变更完成 The registry holds the new contacts; the certificate is "
			"unchanged.\n");
	}
	return cs_cli_order_show(cli, path);
}
