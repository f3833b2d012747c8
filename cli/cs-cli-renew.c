/*
 * cs-cli-renew.c — `certseal renew` and `certseal order download`: the renewal (证书更新,
 * docs/architecture.md §1.2, the manual's 2.1/2.2) from the desktop, with the key in the slot.
 *
 *   certseal [--json] renew [--key SERIAL] [--subject org|person] [--fields FILE]
 *                           [--channel sandbox|alipay|wechat] [--yes]
 *   certseal [--json] order download ORDER_ID --key SERIAL
 *
 * renew walks the manual's steps: the key (the only one inserted, or --key), the login with
 * the certificate password (from the terminal without echo, or a line of stdin), the order
 * created (pre-filled by the daemon from the key), the fields the manual marks * asked at a
 * terminal (or from --fields FILE: a JSON object or key = value lines), Confirm, the
 * payment QR, then Download with a progress bar. `order download` resumes an interrupted
 * download. Every rule is the daemon's: its refusals are printed as they are.
 */
#define G_LOG_DOMAIN "certseal"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cs-cli-apply.h"
#include "cs-cli-order.h"
#include "cs-cli-renew.h"

#define RENEW_USAGE                                                                                \
	"usage: certseal renew [--key SERIAL] [--subject org|person] [--fields FILE] "             \
	"[--channel sandbox|alipay|wechat] [--yes]  (PIN from the terminal or stdin)"
#define POLL_US (G_USEC_PER_SEC / 5)

static char *
order_string(CsCli *cli, const char *path, const char *name)
{
	g_autoptr(GVariant) v = cs_cli_get_property(cli, path, CS_CLI_ORDER_IFACE, name, NULL);
	return v != NULL ? g_variant_dup_string(v, NULL) : g_strdup("");
}

static guint
order_progress(CsCli *cli, const char *path)
{
	g_autoptr(GVariant) v =
	    cs_cli_get_property(cli, path, CS_CLI_ORDER_IFACE, "Progress", NULL);
	return v != NULL ? g_variant_get_uint32(v) : 0;
}

static void
draw_progress(guint percent)
{
	char bar[31];
	guint filled = MIN(percent, 100) * 30 / 100;

	memset(bar, '#', filled);
	memset(bar + filled, ' ', 30 - filled);
	bar[30] = '\0';
	g_printerr("\r下载 Downloading [%s] %3u%%", bar, MIN(percent, 100));
}

/* Follow a download to its end: completed (0), or back to downloadable with why (1). */
static int
follow_download(CsCli *cli, const char *path)
{
	gboolean bar = !cli->json && isatty(STDERR_FILENO);
	g_autofree char *state = NULL;
	g_autofree char *note = NULL;
	guint shown = G_MAXUINT;

	for (;;) {
		guint percent;

		g_free(state);
		state = order_string(cli, path, "State");
		if (g_strcmp0(state, "downloading") != 0)
			break;
		percent = order_progress(cli, path);
		if (bar && percent != shown)
			draw_progress(percent);
		shown = percent;
		g_usleep(POLL_US);
	}
	if (bar) {
		if (g_strcmp0(state, "completed") == 0)
			draw_progress(100);
		g_printerr("\n");
	}
	if (g_strcmp0(state, "completed") == 0) {
		if (!cli->json)
			g_print("证书更新完成 The certificate and seal are on the key; the PIN is "
				"unchanged.\n");
		return cs_cli_order_show(cli, path);
	}
	note = order_string(cli, path, "ReviewNote");
	{
		g_autofree char *msg =
		    g_strdup_printf("the download stopped (%s): %s; insert the key, log in and run "
				    "certseal order download again",
				    state, *note != '\0' ? note : "no reason given");
		return cs_cli_fail(cli, CS_EXIT_REFUSED, "org.certseal.Error.KeyRemoved", msg);
	}
}

static int
download(CsCli *cli, const char *path, const char *key_path)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = cs_cli_call(cli, path, CS_CLI_ORDER_IFACE, "Download",
						g_variant_new("(o)", key_path), NULL, &error);

	if (reply == NULL)
		return cs_cli_fail_error(cli, error);
	return follow_download(cli, path);
}

int
cs_cli_order_download(CsCli *cli, const char *path, int argc, char **argv)
{
	g_autofree char *key = NULL;
	const char *serial = NULL;
	int rc = CS_EXIT_OK;

	for (int i = 0; i < argc; i++) {
		if (g_strcmp0(argv[i], "--key") == 0 && i + 1 < argc)
			serial = argv[++i];
		else
			return cs_cli_fail(cli, CS_EXIT_USAGE, "usage",
					   "usage: certseal order download ORDER_ID --key SERIAL");
	}
	key = cs_cli_find_key(cli, serial, &rc);
	if (key == NULL)
		return rc;
	return download(cli, path, key);
}

int
cs_cli_key_login(CsCli *cli, const char *key)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) logged =
	    cs_cli_get_property(cli, key, CS_CLI_KEY_IFACE, "LoggedIn", &error);
	g_autoptr(GVariant) reply = NULL;
	char *pin;

	if (logged == NULL)
		return cs_cli_fail_error(cli, error);
	if (g_variant_get_boolean(logged))
		return CS_EXIT_OK;
	pin = cs_cli_read_secret(cli, "证书密码 PIN");
	if (pin == NULL)
		return cs_cli_fail(cli, CS_EXIT_USAGE, "usage", "no PIN given");
	reply = cs_cli_call(cli, key, CS_CLI_KEY_IFACE, "Login", g_variant_new("(s)", pin), NULL,
			    &error);
	cs_cli_free_secret(pin);
	return reply != NULL ? CS_EXIT_OK : cs_cli_fail_error(cli, error);
}

char *
cs_cli_key_subject(CsCli *cli, const char *key)
{
	g_autoptr(GVariant) v =
	    cs_cli_get_property(cli, key, CS_CLI_KEY_IFACE, "CertificateSubject", NULL);
	const char *subject = v != NULL ? g_variant_get_string(v, NULL) : "";

	return g_strdup(strstr(subject, "O=") != NULL ? "org" : "person");
}

static void
ask(GHashTable *values, const char *name, const char *label)
{
	char buf[512];

	if (g_hash_table_contains(values, name))
		return;
	g_printerr("%s: ", label);
	if (fgets(buf, sizeof(buf), stdin) == NULL)
		return;
	g_strstrip(buf);
	if (*buf != '\0')
		g_hash_table_replace(values, g_strdup(name), g_strdup(buf));
}

/* What the manual marks *: the invoice e-mail, the mailing address, the contact. */
static void
ask_fields(GHashTable *values, const char *subject)
{
	ask(values, "email", "*电子邮箱 Invoice e-mail");
	ask(values, "address", "*邮寄地址 Mailing address");
	ask(values, "postcode", "邮编 Postcode (optional)");
	if (g_strcmp0(subject, "org") == 0) {
		ask(values, "handler_name", "*联系人 Contact name");
		ask(values, "handler_phone", "*联系电话 Contact phone");
	} else {
		ask(values, "phone", "*手机号码 Phone");
	}
}

static GVariant *
fields_variant(GHashTable *values, const char *key)
{
	GVariantBuilder b;
	GHashTableIter iter;
	gpointer k, v;

	g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
	g_variant_builder_add(&b, "{sv}", "key", g_variant_new_object_path(key));
	g_hash_table_iter_init(&iter, values);
	while (g_hash_table_iter_next(&iter, &k, &v))
		g_variant_builder_add(&b, "{sv}", (const char *)k, g_variant_new_string(v));
	return g_variant_builder_end(&b);
}

static void
step(CsCli *cli, const char *what, const char *state)
{
	if (cli->json)
		g_printerr("%s → %s\n", what, state);
	else
		g_print("%s → %s\n", what, state);
}

/* unpaid: the QR code; at a terminal, wait until it is paid. */
static int
pay(CsCli *cli, const char *path, const char *channel, gboolean wait, char **state)
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
	if (!cli->json) {
		amount = cs_cli_get_property(cli, path, CS_CLI_ORDER_IFACE, "AmountFen", NULL);
		cs_cli_print_payment(channel, payload, expires,
				     amount != NULL ? g_variant_get_uint64(amount) : 0, FALSE);
	}
	while (wait) {
		g_free(*state);
		*state = order_string(cli, path, "State");
		if (g_strcmp0(*state, "unpaid") != 0)
			break;
		g_usleep(G_USEC_PER_SEC);
	}
	return CS_EXIT_OK;
}

int
cs_cli_renew(CsCli *cli, int argc, char **argv)
{
	g_autoptr(GHashTable) values =
	    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autofree char *key = NULL;
	g_autofree char *subject = NULL;
	g_autofree char *state = NULL;
	g_autofree char *id = NULL;
	g_autofree char *path = NULL;
	const char *serial = NULL, *subject_opt = NULL, *fields_file = NULL, *channel = NULL;
	gboolean yes = FALSE, human;
	int rc = CS_EXIT_OK;

	for (int i = 0; i < argc; i++) {
		if (g_strcmp0(argv[i], "--key") == 0 && i + 1 < argc)
			serial = argv[++i];
		else if (g_strcmp0(argv[i], "--subject") == 0 && i + 1 < argc)
			subject_opt = argv[++i];
		else if (g_strcmp0(argv[i], "--fields") == 0 && i + 1 < argc)
			fields_file = argv[++i];
		else if (g_strcmp0(argv[i], "--channel") == 0 && i + 1 < argc)
			channel = argv[++i];
		else if (g_strcmp0(argv[i], "--yes") == 0)
			yes = TRUE;
		else
			return cs_cli_fail(cli, CS_EXIT_USAGE, "usage", RENEW_USAGE);
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
	subject = g_strdup(subject_opt != NULL ? subject_opt : "");
	if (*subject == '\0') {
		g_free(subject);
		subject = cs_cli_key_subject(cli, key);
	}
	/* 录入信息 */
	if (human)
		ask_fields(values, subject);
	reply =
	    cs_cli_call(cli, CS_CLI_MANAGER_PATH, CS_CLI_MANAGER_IFACE, "CreateOrder",
			g_variant_new("(ss@a{sv})", "renew", subject, fields_variant(values, key)),
			"(o)", &error);
	if (reply == NULL)
		return cs_cli_fail_error(cli, error);
	g_variant_get(reply, "(o)", &path);
	id = g_path_get_basename(path);
	step(cli, "create", "draft");
	/* 确认订单 */
	if (human) {
		cs_cli_order_show(cli, path);
		g_printerr("确认订单 Confirm the order? [y/N] ");
		{
			char buf[16];
			if (fgets(buf, sizeof(buf), stdin) == NULL ||
			    (buf[0] != 'y' && buf[0] != 'Y'))
				return cs_cli_fail(cli, CS_EXIT_OK, "usage",
						   "not confirmed: the order stays a draft");
		}
	}
	g_clear_pointer(&reply, g_variant_unref);
	reply = cs_cli_call(cli, path, CS_CLI_ORDER_IFACE, "Confirm", NULL, NULL, &error);
	if (reply == NULL)
		return cs_cli_fail_error(cli, error);
	state = order_string(cli, path, "State");
	step(cli, "confirm", state);
	/* 付款 */
	if (g_strcmp0(state, "unpaid") == 0) {
		if (channel == NULL && !human) {
			g_autofree char *msg = g_strdup_printf(
			    "order %s waits for payment: certseal order pay %s --channel C, then "
			    "certseal order download %s --key SERIAL",
			    id, id, id);
			if (cli->json)
				g_print("{\"order\":\"%s\",\"state\":\"unpaid\"}\n", id);
			else
				g_print("%s\n", msg);
			return CS_EXIT_OK;
		}
		rc = pay(cli, path, channel != NULL ? channel : "alipay", human, &state);
		if (rc != CS_EXIT_OK)
			return rc;
		if (g_strcmp0(state, "unpaid") == 0) {
			if (cli->json)
				g_print("{\"order\":\"%s\",\"state\":\"unpaid\"}\n", id);
			return CS_EXIT_OK;
		}
		step(cli, "pay", state);
	}
	/* 下载证书及印章 */
	return download(cli, path, key);
}
