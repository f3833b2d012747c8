/*
 * certseal-office.c — the back-office tool: a CSO1 client of certseald's office bus
 * (docs/architecture.md §3.4, §3.6; dbus/office-protocol.md).
 *
 * Every command is a CALL (or, for `work`, the READY/TASK/DONE loop of an automated
 * worker) over a CURVE-authenticated DEALER. By default it uses the admin key the daemon
 * created in --state-dir; --key FILE uses another worker's key file (certseal-office
 * keygen). The tool holds no business rules: the daemon decides and records.
 *
 * Rules: --json means stdout carries only JSON (errors as {"error": {"code", "message"}});
 * nothing prompts; exit codes: 0 success, 1 refused by the daemon or failed, 2 usage.
 * Secrets never come from argv; `keygen` writes the secret key only to a 0600 file;
 * `backup` (local work, no office bus) reads its passphrase from the terminal without
 * echo or a line of stdin (cs-backup.h).
 */
#define G_LOG_DOMAIN "certseal-office"

#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "certseal/plugin.h"
#include "cs-backup.h"
#include "cs-build-config.h"
#include "cs-config.h"
#include "cs-office-keys.h"
#include "cs-tty.h"

#define EXIT_REFUSED 1
#define EXIT_USAGE 2

typedef struct {
	char *state_dir;
	char *key_file;
	char *endpoint;
	char *server_key;
	gboolean json;
	int timeout_ms;
	void *ctx;
	void *sock;
	int next_id;
} Office;

static const char usage_text[] =
    "usage: certseal-office [--state-dir DIR] [--key FILE] [--json] COMMAND …\n"
    "commands:\n"
    "  info                         endpoints and the daemon's public key\n"
    "  keygen --output FILE [--user U --roles R]   a worker key pair (secret 0600)\n"
    "  keygen --output FILE --user U --roles R --install [--office-dir DIR]\n"
    "                               and allow it: writes DIR/U.conf (default: the office_dir\n"
    "                               the running daemon reads, from its info.json)\n"
    "  orders [--state S] [--kind K]\n"
    "  order show ID                (with its materials listed)\n"
    "  order material ID KIND --output FILE   download a material, its SHA-256 checked\n"
    "  review next | review approve ID [--note T] | review reject ID --note T\n"
    "  make ID --key SERIAL [--timeout S]   waits until the key is made (default 120 s)\n"
    "  make ID --key SERIAL --no-wait       returns once the making has started\n"
    "  ship ID --tracking NO | deliver ID\n"
    "  pay-notify ID --channel sandbox | --channel alipay --form FILE\n"
    "             | --channel wechat --headers FILE --body FILE\n"
    "  refund ID\n"
    "  tasks [--state S] [--service S]\n"
    "  ledger verify\n"
    "  ca export|crl [--vendor ID]\n"
    "  sms outbox | mail outbox | bank outbox   (sandbox gateways)\n"
    "  work SERVICE [--result JSON] [--max N]   serve a service in a loop\n"
    "  backup --output FILE [--config FILE]   the state directory in one encrypted file\n"
    "                               (the passphrase twice from the terminal, or a line of\n"
    "                               stdin); restore with certseald --restore FILE\n";

static int
usage(void)
{
	fputs(usage_text, stderr);
	return EXIT_USAGE;
}

static int
fail(Office *o, const char *code, const char *message)
{
	if (o->json) {
		g_autoptr(JsonBuilder) b = json_builder_new();
		g_autoptr(JsonNode) root = NULL;
		g_autofree char *text = NULL;

		json_builder_begin_object(b);
		json_builder_set_member_name(b, "error");
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "code");
		json_builder_add_string_value(b, code);
		json_builder_set_member_name(b, "message");
		json_builder_add_string_value(b, message);
		json_builder_end_object(b);
		json_builder_end_object(b);
		root = json_builder_get_root(b);
		text = json_to_string(root, FALSE);
		printf("%s\n", text);
	} else {
		fprintf(stderr, "certseal-office: %s: %s\n", code, message);
	}
	return EXIT_REFUSED;
}

static void
print_node(Office *o, JsonNode *node)
{
	g_autofree char *text = json_to_string(node, !o->json);

	printf("%s\n", text);
}

/* ---- connecting ------------------------------------------------------------------------ */

static gboolean
read_info(Office *o, GError **error)
{
	g_autofree char *path = NULL;
	g_autoptr(JsonParser) parser = json_parser_new();
	JsonObject *info;

	if (o->endpoint != NULL && o->server_key != NULL)
		return TRUE;
	if (o->state_dir == NULL) {
		g_set_error_literal(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
				    "--state-dir (or --endpoint and --server-key) is required");
		return FALSE;
	}
	path = g_build_filename(o->state_dir, "office", "info.json", NULL);
	if (!json_parser_load_from_file(parser, path, error)) {
		g_prefix_error(error,
			       "%s (is certseald running with this state directory?): ", path);
		return FALSE;
	}
	info = json_node_get_object(json_parser_get_root(parser));
	if (o->endpoint == NULL)
		o->endpoint =
		    g_strdup(json_object_get_string_member_with_default(info, "endpoint", ""));
	if (o->server_key == NULL)
		o->server_key = g_strdup(
		    json_object_get_string_member_with_default(info, "server_public_key", ""));
	return TRUE;
}

static gboolean
connect_office(Office *o, GError **error)
{
	char pub[41], sec[41];
	g_autofree char *key_file = NULL;
	int zero = 0;

	if (!read_info(o, error))
		return FALSE;
	key_file = o->key_file != NULL
		       ? g_strdup(o->key_file)
		       : g_build_filename(o->state_dir, "office", "admin.key", NULL);
	if (!cs_office_key_file_read(key_file, pub, sec, error))
		return FALSE;
	o->ctx = zmq_ctx_new();
	o->sock = zmq_socket(o->ctx, ZMQ_DEALER);
	zmq_setsockopt(o->sock, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(o->sock, ZMQ_CURVE_SERVERKEY, o->server_key, strlen(o->server_key));
	zmq_setsockopt(o->sock, ZMQ_CURVE_PUBLICKEY, pub, 40);
	zmq_setsockopt(o->sock, ZMQ_CURVE_SECRETKEY, sec, 40);
	memset(sec, 0, sizeof(sec));
	if (zmq_connect(o->sock, o->endpoint) != 0) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "%s: %s", o->endpoint,
			    zmq_strerror(zmq_errno()));
		return FALSE;
	}
	return TRUE;
}

static gboolean
send_frames(Office *o, const char *verb, JsonNode *body)
{
	g_autofree char *text = json_to_string(body, FALSE);

	return zmq_send(o->sock, "CSO1", 4, ZMQ_SNDMORE) >= 0 &&
	       zmq_send(o->sock, verb, strlen(verb), ZMQ_SNDMORE) >= 0 &&
	       zmq_send(o->sock, text, strlen(text), 0) >= 0;
}

/* One message: verb and parsed body; FALSE on timeout. */
static gboolean
receive(Office *o, int timeout_ms, char **verb, JsonNode **body)
{
	zmq_pollitem_t item = {o->sock, 0, ZMQ_POLLIN, 0};
	GPtrArray *frames;
	g_autoptr(JsonParser) parser = json_parser_new();
	int more = 1;

	if (zmq_poll(&item, 1, timeout_ms) <= 0)
		return FALSE;
	frames = g_ptr_array_new_with_free_func(g_free);
	while (more) {
		zmq_msg_t msg;
		size_t len = sizeof(more);
		zmq_msg_init(&msg);
		if (zmq_msg_recv(&msg, o->sock, 0) < 0) {
			zmq_msg_close(&msg);
			break;
		}
		g_ptr_array_add(frames, g_strndup(zmq_msg_data(&msg), zmq_msg_size(&msg)));
		zmq_msg_close(&msg);
		zmq_getsockopt(o->sock, ZMQ_RCVMORE, &more, &len);
	}
	*verb = g_strdup(frames->len > 1 ? g_ptr_array_index(frames, 1) : "");
	*body = NULL;
	if (frames->len > 2 &&
	    json_parser_load_from_data(parser, g_ptr_array_index(frames, 2), -1, NULL))
		*body = json_node_ref(json_parser_get_root(parser));
	g_ptr_array_unref(frames);
	return TRUE;
}

/* CALL @method; returns the result node, or NULL after printing the error. */
static JsonNode *
call(Office *o, const char *method, JsonObject *params, int *exit_code)
{
	g_autoptr(JsonObject) body = json_object_new();
	g_autoptr(JsonNode) node = json_node_alloc();
	gint64 deadline = g_get_monotonic_time() + (gint64)o->timeout_ms * 1000;
	int id = ++o->next_id;

	json_object_set_int_member(body, "id", id);
	json_object_set_string_member(body, "method", method);
	json_object_set_object_member(body, "params",
				      params != NULL ? json_object_ref(params) : json_object_new());
	json_node_init_object(node, body);
	if (!send_frames(o, "CALL", node)) {
		*exit_code = fail(o, "Unavailable", "cannot send to the daemon");
		return NULL;
	}
	for (;;) {
		g_autofree char *verb = NULL;
		g_autoptr(JsonNode) reply = NULL;
		JsonObject *r;
		int left = (int)((deadline - g_get_monotonic_time()) / 1000);

		if (left <= 0 || !receive(o, left, &verb, &reply)) {
			*exit_code =
			    fail(o, "Unavailable",
				 "no answer from the daemon (not running, or this key is not "
				 "on its allow-list)");
			return NULL;
		}
		if (reply == NULL || !JSON_NODE_HOLDS_OBJECT(reply))
			continue;
		r = json_node_get_object(reply);
		if (json_object_get_int_member_with_default(r, "id", -1) != id)
			continue; /* a HEARTBEAT or a late answer */
		if (g_strcmp0(verb, "ERROR") == 0) {
			*exit_code = fail(
			    o, json_object_get_string_member_with_default(r, "code", "Internal"),
			    json_object_get_string_member_with_default(r, "message", ""));
			return NULL;
		}
		if (!json_object_has_member(r, "result")) {
			*exit_code = fail(o, "Internal", "a RESULT without a result");
			return NULL;
		}
		return json_node_copy(json_object_get_member(r, "result"));
	}
}

/* Call and print; the exit code. */
static int
call_print(Office *o, const char *method, JsonObject *params)
{
	int code = 0;
	g_autoptr(JsonNode) result = call(o, method, params, &code);

	if (result == NULL)
		return code;
	print_node(o, result);
	return 0;
}

/* ---- option parsing for sub-commands ---------------------------------------------------- */

/* "--name value" pairs after the positional arguments; NULL when absent. */
static const char *
opt(int argc, char **argv, const char *name)
{
	for (int i = 0; i + 1 < argc; i++) {
		if (g_strcmp0(argv[i], name) == 0)
			return argv[i + 1];
	}
	return NULL;
}

/* Claim the task of @service for @order_id and finish it with @result: task.done's
 * result, or NULL after printing the error into *code. */
static JsonNode *
claim_and_done(Office *o, const char *order_id, const char *service, JsonObject *result, int *code)
{
	g_autoptr(JsonObject) claim = json_object_new();
	g_autoptr(JsonObject) done = json_object_new();
	g_autoptr(JsonNode) task = NULL;
	const char *lease;

	json_object_set_string_member(claim, "order_id", order_id);
	json_object_set_string_member(claim, "service", service);
	task = call(o, "task.claim", claim, code);
	if (task == NULL)
		return NULL;
	lease =
	    json_object_get_string_member_with_default(json_node_get_object(task), "lease", NULL);
	if (lease == NULL) {
		*code = fail(o, "Internal", "task.claim returned no lease");
		return NULL;
	}
	json_object_set_string_member(done, "lease", lease);
	json_object_set_object_member(done, "result", json_object_ref(result));
	return call(o, "task.done", done, code);
}

static int
claim_and_finish(Office *o, const char *order_id, const char *service, JsonObject *result)
{
	int code = 0;
	g_autoptr(JsonNode) done = claim_and_done(o, order_id, service, result, &code);

	if (done == NULL)
		return code;
	print_node(o, done);
	return 0;
}

static char *
read_file_arg(Office *o, const char *path, int *code)
{
	g_autoptr(GError) error = NULL;
	char *text = NULL;

	if (path == NULL) {
		*code = usage();
		return NULL;
	}
	if (!g_file_get_contents(path, &text, NULL, &error)) {
		*code = fail(o, "InvalidInput", error->message);
		return NULL;
	}
	return text;
}

static int
cmd_pay_notify(Office *o, int argc, char **argv)
{
	g_autoptr(JsonObject) p = json_object_new();
	const char *channel = opt(argc, argv, "--channel");
	int code = 0;

	if (argc < 1 || channel == NULL)
		return usage();
	json_object_set_string_member(p, "channel", channel);
	if (g_strcmp0(channel, "sandbox") == 0) {
		json_object_set_string_member(p, "order_id", argv[0]);
	} else if (g_strcmp0(channel, "alipay") == 0) {
		g_autofree char *form = read_file_arg(o, opt(argc, argv, "--form"), &code);
		if (form == NULL)
			return code;
		json_object_set_string_member(p, "form", g_strstrip(form));
	} else if (g_strcmp0(channel, "wechat") == 0) {
		g_autofree char *headers = read_file_arg(o, opt(argc, argv, "--headers"), &code);
		g_autofree char *body =
		    headers != NULL ? read_file_arg(o, opt(argc, argv, "--body"), &code) : NULL;
		g_autoptr(JsonParser) parser = json_parser_new();
		JsonNode *root;

		if (body == NULL)
			return code;
		if (!json_parser_load_from_data(parser, headers, -1, NULL) ||
		    (root = json_parser_get_root(parser)) == NULL || !JSON_NODE_HOLDS_OBJECT(root))
			return fail(o, "InvalidInput", "--headers: not a JSON object");
		json_object_set_object_member(p, "headers",
					      json_object_ref(json_node_get_object(root)));
		json_object_set_string_member(p, "body", body);
	} else {
		return usage();
	}
	return call_print(o, "payment.notify", p);
}

/* A flag among the arguments after the positional ones. */
static gboolean
flag(int argc, char **argv, const char *name)
{
	for (int i = 0; i < argc; i++) {
		if (g_strcmp0(argv[i], name) == 0)
			return TRUE;
	}
	return FALSE;
}

/* The office_dir the daemon of --state-dir reads (its info.json says). */
static char *
daemon_office_dir(Office *o, GError **error)
{
	g_autofree char *path = NULL;
	g_autoptr(JsonParser) parser = json_parser_new();
	JsonNode *root;
	const char *dir;

	if (o->state_dir == NULL) {
		g_set_error_literal(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
				    "--install: --state-dir (or --office-dir) is required");
		return NULL;
	}
	path = g_build_filename(o->state_dir, "office", "info.json", NULL);
	if (!json_parser_load_from_file(parser, path, error)) {
		g_prefix_error(error,
			       "%s (is certseald running with this state directory?): ", path);
		return NULL;
	}
	root = json_parser_get_root(parser);
	dir = root != NULL && JSON_NODE_HOLDS_OBJECT(root)
		  ? json_object_get_string_member_with_default(json_node_get_object(root),
							       "office_dir", NULL)
		  : NULL;
	if (dir == NULL) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
			    "%s: names no office_dir (a daemon older than --install); give "
			    "--office-dir",
			    path);
		return NULL;
	}
	return g_strdup(dir);
}

static gboolean
user_is_file_name(const char *user)
{
	if (user == NULL || *user == '\0' || *user == '.' || strlen(user) > 64)
		return FALSE;
	for (const char *p = user; *p != '\0'; p++) {
		if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_' && *p != '.')
			return FALSE;
	}
	return TRUE;
}

/* Write DIR/<user>.conf (0644, atomically: a hidden temporary the daemon ignores, then a
 * rename, so the daemon never reads half a file). Refuses to replace an existing one. */
static gboolean
install_worker(const char *dir,
	       const char *user,
	       const char *roles,
	       const char *pub,
	       char **installed,
	       GError **error)
{
	g_autofree char *name = g_strdup_printf("%s.conf", user);
	g_autofree char *tmp_name = g_strdup_printf(".%s.conf.tmp", user);
	g_autofree char *path = g_build_filename(dir, name, NULL);
	g_autofree char *tmp = g_build_filename(dir, tmp_name, NULL);
	g_autofree char *text = g_strdup_printf(
	    "# Written by certseal-office keygen --install.\n[worker]\nkey = %s\nuser = %s\n"
	    "roles = %s\n",
	    pub, user, roles);

	if (g_file_test(path, G_FILE_TEST_EXISTS)) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST,
			    "%s: exists; remove it first to replace the worker's key", path);
		return FALSE;
	}
	if (!g_file_set_contents_full(tmp, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0644, error))
		return FALSE;
	if (g_rename(tmp, path) != 0) {
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s", path,
			    g_strerror(errno));
		(void)g_unlink(tmp);
		return FALSE;
	}
	*installed = g_steal_pointer(&path);
	return TRUE;
}

static int
cmd_keygen(Office *o, int argc, char **argv)
{
	const char *output = opt(argc, argv, "--output");
	const char *user = opt(argc, argv, "--user");
	const char *roles = opt(argc, argv, "--roles");
	const char *office_dir_opt = opt(argc, argv, "--office-dir");
	gboolean install = flag(argc, argv, "--install");
	g_autofree char *office_dir = NULL;
	g_autofree char *installed = NULL;
	char pub[41], sec[41];
	g_autoptr(GError) error = NULL;

	if (output == NULL)
		return usage();
	if (install) {
		if (!user_is_file_name(user) || roles == NULL)
			return fail(o, "InvalidInput",
				    "--install: --user (letters, digits, '-', '_', '.'; it names "
				    "the file USER.conf) and --roles are required");
		office_dir = office_dir_opt != NULL ? g_strdup(office_dir_opt)
						    : daemon_office_dir(o, &error);
		if (office_dir == NULL)
			return fail(o, "InvalidInput", error->message);
	}
	if (!cs_office_keys_generate(pub, sec, &error) ||
	    !cs_office_key_file_write(output, pub, sec, &error)) {
		memset(sec, 0, sizeof(sec));
		return fail(o, "Internal", error->message);
	}
	memset(sec, 0, sizeof(sec));
	if (install && !install_worker(office_dir, user, roles, pub, &installed, &error))
		return fail(o, "Internal", error->message);
	if (o->json) {
		g_autoptr(JsonBuilder) b = json_builder_new();
		g_autoptr(JsonGenerator) gen = json_generator_new();
		g_autoptr(JsonNode) root = NULL;
		g_autofree char *text = NULL;

		json_builder_begin_object(b);
		json_builder_set_member_name(b, "public_key");
		json_builder_add_string_value(b, pub);
		json_builder_set_member_name(b, "key_file");
		json_builder_add_string_value(b, output);
		if (installed != NULL) {
			json_builder_set_member_name(b, "installed");
			json_builder_add_string_value(b, installed);
		}
		json_builder_end_object(b);
		root = json_builder_get_root(b);
		json_generator_set_root(gen, root);
		text = json_generator_to_data(gen, NULL);
		printf("%s\n", text);
	} else if (installed != NULL) {
		printf("# Key pair written to %s (keep it secret); allowed by %s (the daemon "
		       "reads it at once).\n",
		       output, installed);
	} else {
		printf("# Key pair written to %s (keep it secret). Allow it with "
		       "office_dir/<name>.conf (the name must end in .conf; the daemon re-reads "
		       "office_dir when it changes):\n",
		       output);
		printf("[worker]\nkey = %s\nuser = %s\nroles = %s\n", pub,
		       user != NULL ? user : "NAME", roles != NULL ? roles : "reviewer");
	}
	return 0;
}

/* ---- backup: the state directory in one encrypted file ---------------------------------- */

/* The short name of a certseal error ("InvalidInput"), for fail(). */
static const char *
error_code(const GError *error)
{
	const char *name =
	    error->domain == CS_ERROR ? cs_error_code_to_dbus_name((CsErrorCode)error->code) : NULL;
	const char *dot = name != NULL ? strrchr(name, '.') : NULL;

	return dot != NULL ? dot + 1 : "Internal";
}

/* Local work on --state-dir (or the configuration's state_dir): no office bus involved,
 * so it runs whether or not the daemon does. */
static int
cmd_backup(Office *o, int argc, char **argv)
{
	const char *output = opt(argc, argv, "--output");
	const char *config_path = opt(argc, argv, "--config");
	g_autoptr(GError) error = NULL;
	g_autoptr(CsConfig) config = NULL;
	const char *state_dir = o->state_dir;
	CsBackupStats stats = {0};
	g_autofree char *output_base = NULL;
	char *passphrase;
	gboolean ok;

	/* Only these two options, each with its value: a passphrase is never an argument. */
	for (int i = 0; i < argc; i += 2) {
		if ((g_strcmp0(argv[i], "--output") != 0 && g_strcmp0(argv[i], "--config") != 0) ||
		    i + 1 >= argc)
			return usage();
	}
	if (output == NULL)
		return fail(o, "InvalidInput",
			    "--output: missing; name the file the backup goes to");
	output_base = g_path_get_basename(output);
	if (state_dir == NULL) {
		if (config_path == NULL && g_file_test(CS_CONFIG_FILE, G_FILE_TEST_EXISTS))
			config_path = CS_CONFIG_FILE;
		config = cs_config_load(config_path, &error);
		if (config == NULL)
			return fail(o, "InvalidInput", error->message);
		state_dir = config->state_dir;
	}
	/* Everything that can be told before the passphrase is asked for is told first. */
	if (!cs_backup_check_source(state_dir, output, &error))
		return fail(o, error_code(error), error->message);
	cs_tty_unbuffer_stdin();
	passphrase = cs_backup_read_passphrase(TRUE, &error);
	if (passphrase == NULL)
		return fail(o, error_code(error), error->message);
	ok = cs_backup_create(state_dir, output, passphrase, NULL, &stats, &error);
	cs_tty_free_secret(passphrase);
	if (stats.stale_removed > 0)
		g_printerr("certseal-office: removed %u temporary folder(s) .%s.XXXXXX that an "
			   "interrupted backup left beside %s (they held a plaintext copy of the "
			   "ledger)\n",
			   stats.stale_removed, output_base, output);
	if (!ok)
		return fail(o, error_code(error), error->message);
	if (o->json) {
		g_autoptr(JsonObject) out = json_object_new();
		g_autoptr(JsonNode) n = json_node_alloc();

		json_object_set_string_member(out, "output", output);
		json_object_set_string_member(out, "state_dir", state_dir);
		json_object_set_int_member(out, "files", stats.entries);
		json_object_set_int_member(out, "bytes", (gint64)stats.bytes);
		json_object_set_int_member(out, "stale_removed", stats.stale_removed);
		json_node_init_object(n, out);
		print_node(o, n);
	} else {
		printf("%s: %u files of %s (%" G_GUINT64_FORMAT
		       " bytes), encrypted with the passphrase. Keep the file and the passphrase "
		       "apart; restore with certseald --restore %s --state-dir NEW_DIR\n",
		       output, stats.entries, state_dir, stats.bytes, output);
	}
	return 0;
}

/* ---- work: an automated worker -------------------------------------------------------- */

static int
cmd_work(Office *o, int argc, char **argv)
{
	const char *service = argc > 0 ? argv[0] : NULL;
	const char *result_text = opt(argc, argv, "--result");
	const char *max_text = opt(argc, argv, "--max");
	const char *hb_text = opt(argc, argv, "--heartbeat-ms");
	g_autoptr(JsonParser) parser = json_parser_new();
	g_autoptr(JsonObject) ready = json_object_new();
	g_autoptr(JsonNode) ready_node = json_node_alloc();
	guint64 max = 0, hb = 2500, served = 0;
	gint64 next_beat;

	if (service == NULL)
		return usage();
	if (max_text != NULL &&
	    !g_ascii_string_to_unsigned(max_text, 10, 1, G_MAXUINT32, &max, NULL))
		return usage();
	if (hb_text != NULL && !g_ascii_string_to_unsigned(hb_text, 10, 10, 600000, &hb, NULL))
		return usage();
	if (result_text != NULL && (!json_parser_load_from_data(parser, result_text, -1, NULL) ||
				    !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))))
		return fail(o, "InvalidInput", "--result: not a JSON object");
	json_object_set_string_member(ready, "service", service);
	json_node_init_object(ready_node, ready);
	send_frames(o, "READY", ready_node);
	next_beat = g_get_monotonic_time() + (gint64)hb * 1000;
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (max == 0 || served < max) {
		g_autofree char *verb = NULL;
		g_autoptr(JsonNode) body = NULL;
		int wait = (int)MAX(0, (next_beat - g_get_monotonic_time()) / 1000);

		if (g_get_monotonic_time() >= next_beat) {
			zmq_send(o->sock, "CSO1", 4, ZMQ_SNDMORE);
			zmq_send(o->sock, "HEARTBEAT", 9, 0);
			next_beat = g_get_monotonic_time() + (gint64)hb * 1000;
			continue;
		}
		if (!receive(o, wait, &verb, &body) || body == NULL ||
		    !JSON_NODE_HOLDS_OBJECT(body))
			continue;
		if (g_strcmp0(verb, "TASK") == 0) {
			JsonObject *task = json_node_get_object(body);
			g_autoptr(JsonObject) done = json_object_new();
			g_autoptr(JsonNode) done_node = json_node_alloc();
			JsonObject *result = result_text != NULL
						 ? json_object_ref(json_node_get_object(
						       json_parser_get_root(parser)))
						 : json_object_new();

			print_node(o, body);
			json_object_set_string_member(
			    done, "lease",
			    json_object_get_string_member_with_default(task, "lease", ""));
			json_object_set_object_member(done, "result", result);
			json_node_init_object(done_node, done);
			send_frames(o, "DONE", done_node);
			served++;
		} else if (g_strcmp0(verb, "ERROR") == 0) {
			print_node(o, body);
			if (g_strcmp0(json_object_get_string_member_with_default(
					  json_node_get_object(body), "code", ""),
				      "AccessDenied") == 0)
				return EXIT_REFUSED;
		}
	}
	/* Let the last DONE's acknowledgement arrive before closing. */
	for (int i = 0; i < 20; i++) {
		g_autofree char *verb = NULL;
		g_autoptr(JsonNode) body = NULL;
		if (!receive(o, 250, &verb, &body))
			break;
		if (g_strcmp0(verb, "RESULT") == 0 || g_strcmp0(verb, "ERROR") == 0)
			break;
	}
	return 0;
}

/* ---- commands ------------------------------------------------------------------------- */

static JsonObject *
params1(const char *name, const char *value)
{
	JsonObject *p = json_object_new();

	if (value != NULL)
		json_object_set_string_member(p, name, value);
	return p;
}

/* materials.get, then the content checked against the SHA-256 and size the daemon
 * recorded before a byte is written to @output. */
static int
cmd_order_material(Office *o, const char *order_id, const char *kind, const char *output)
{
	g_autoptr(JsonObject) p = json_object_new();
	g_autoptr(JsonNode) r = NULL;
	g_autoptr(JsonObject) out = json_object_new();
	g_autoptr(JsonNode) n = json_node_alloc();
	g_autoptr(GError) error = NULL;
	g_autofree guint8 *data = NULL;
	g_autofree char *digest = NULL;
	JsonObject *m;
	const char *b64, *sha256;
	gsize len = 0;
	int code = 0;

	json_object_set_string_member(p, "order_id", order_id);
	json_object_set_string_member(p, "kind", kind);
	r = call(o, "materials.get", p, &code);
	if (r == NULL)
		return code;
	if (!JSON_NODE_HOLDS_OBJECT(r))
		return fail(o, "Internal", "materials.get: not an object");
	m = json_node_get_object(r);
	b64 = json_object_get_string_member_with_default(m, "data", NULL);
	sha256 = json_object_get_string_member_with_default(m, "sha256", NULL);
	if (b64 == NULL || sha256 == NULL)
		return fail(o, "Internal", "materials.get: no data or sha256");
	data = g_base64_decode(b64, &len);
	digest = g_compute_checksum_for_data(G_CHECKSUM_SHA256, data, len);
	if (g_strcmp0(digest, sha256) != 0 ||
	    (gint64)len != json_object_get_int_member_with_default(m, "size", -1))
		return fail(o, "Internal",
			    "the material received does not match its SHA-256 and size");
	if (!g_file_set_contents(output, (const char *)data, (gssize)len, &error))
		return fail(o, "InvalidInput", error->message);
	for (guint i = 0; i < 4; i++) {
		static const char *const keys[] = {"kind", "filename", "mime", "sha256"};
		json_object_set_string_member(
		    out, keys[i], json_object_get_string_member_with_default(m, keys[i], ""));
	}
	json_object_set_int_member(out, "size", (gint64)len);
	json_object_set_string_member(out, "output", output);
	json_node_init_object(n, out);
	print_node(o, n);
	return 0;
}

/* ---- make: the token work is the daemon's; wait for its outcome ------------------------ */

#define MAKE_POLL_MS 200
#define MAKE_DEFAULT_TIMEOUT_S 120

/* Why the order is in @state: the note (else the kind) of the last event that took it
 * there — office calls are in the history too, so the very last event may be one. */
static char *
last_history_note(JsonObject *order, const char *state)
{
	JsonArray *history = json_object_has_member(order, "history")
				 ? json_object_get_array_member(order, "history")
				 : NULL;
	guint n = history != NULL ? json_array_get_length(history) : 0;

	for (guint i = n; i > 0; i--) {
		JsonObject *e = json_array_get_object_element(history, i - 1);
		JsonNode *to = json_object_get_member(e, "to");
		const char *note;

		if (to == NULL || !JSON_NODE_HOLDS_VALUE(to) ||
		    g_strcmp0(json_node_get_string(to), state) != 0)
			continue;
		note = json_object_get_string_member_with_default(e, "note", "");
		if (*note == '\0')
			note = json_object_get_string_member_with_default(e, "kind", "?");
		return g_strdup(note);
	}
	return g_strdup("no history");
}

static int
print_made(Office *o, const char *id, const char *serial)
{
	g_autoptr(JsonObject) out = NULL;
	g_autoptr(JsonNode) n = NULL;

	if (!o->json) {
		printf("%s: made (key %s)\n", id, serial);
		return 0;
	}
	out = params1("id", id);
	json_object_set_string_member(out, "state", "made");
	json_object_set_string_member(out, "key", serial);
	n = json_node_init_object(json_node_alloc(), out);
	print_node(o, n);
	return 0;
}

/*
 * `make ID --key SERIAL [--timeout S | --no-wait]`: hand the make task its key, then follow the
 * order (orders.get every 200 ms) until it leaves `making`: "made", or the failure — the order went
 * back to `approved`, and its last history note says why — with a non-zero exit.
 */
static int
cmd_make(Office *o, int argc, char **argv)
{
	const char *id = argv[1];
	const char *serial = opt(argc, argv, "--key");
	const char *timeout_text = opt(argc, argv, "--timeout");
	guint64 timeout_s = MAKE_DEFAULT_TIMEOUT_S;
	g_autoptr(JsonObject) p = NULL;
	g_autoptr(JsonNode) done = NULL;
	gint64 deadline;
	gboolean said_making = FALSE;
	int code = 0;

	if (timeout_text != NULL &&
	    !g_ascii_string_to_unsigned(timeout_text, 10, 1, 86400, &timeout_s, NULL))
		return usage();
	p = params1("key_serial", serial);
	done = claim_and_done(o, id, "make", p, &code);
	if (done == NULL)
		return code;
	if (flag(argc, argv, "--no-wait")) {
		if (o->json)
			print_node(o, done);
		else
			printf("%s: making on key %s started\n", id, serial);
		return 0;
	}
	deadline = g_get_monotonic_time() + (gint64)timeout_s * G_USEC_PER_SEC;
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (;;) {
		g_autoptr(JsonObject) get = params1("id", id);
		g_autoptr(JsonNode) r = call(o, "orders.get", get, &code);
		JsonObject *order;
		const char *state;

		if (r == NULL)
			return code;
		if (!JSON_NODE_HOLDS_OBJECT(r))
			return fail(o, "Internal", "orders.get: not an object");
		order = json_node_get_object(r);
		state = json_object_get_string_member_with_default(order, "state", "?");
		if (g_strcmp0(state, "making") != 0) {
			g_autofree char *note = NULL;
			g_autofree char *msg = NULL;
			if (g_strcmp0(state, "made") == 0)
				return print_made(o, id, serial);
			note = last_history_note(order, state);
			msg = g_strdup_printf("%s: the order is %s again; its history says: %s", id,
					      state, note);
			return fail(o, "MakeFailed", msg);
		}
		if (!said_making && !o->json) {
			printf("%s: making on key %s…\n", id, serial);
			said_making = TRUE;
		}
		if (g_get_monotonic_time() >= deadline) {
			g_autofree char *msg = g_strdup_printf(
			    "%s is still making after %" G_GUINT64_FORMAT " s", id, timeout_s);
			return fail(o, "Timeout", msg);
		}
		g_usleep(MAKE_POLL_MS * 1000);
	}
}

static int
run_command(Office *o, int argc, char **argv)
{
	const char *cmd = argv[0];
	const char *sub = argc > 1 ? argv[1] : NULL;
	g_autoptr(JsonObject) p = NULL;

	if (g_strcmp0(cmd, "info") == 0) {
		int code = 0;
		g_autoptr(JsonNode) r = call(o, "info", NULL, &code);
		JsonObject *ro;
		g_autoptr(JsonObject) out = json_object_new();
		g_autoptr(JsonNode) n = json_node_alloc();

		if (r == NULL)
			return code;
		ro = json_node_get_object(r);
		for (guint i = 0; i < 3; i++) {
			static const char *const keys[] = {"endpoint", "events_endpoint",
							   "server_public_key"};
			json_object_set_string_member(
			    out, keys[i],
			    json_object_get_string_member_with_default(ro, keys[i], ""));
		}
		json_node_init_object(n, out);
		print_node(o, n);
		return 0;
	}
	if (g_strcmp0(cmd, "orders") == 0) {
		p = params1("state", opt(argc, argv, "--state"));
		if (opt(argc, argv, "--kind") != NULL)
			json_object_set_string_member(p, "kind", opt(argc, argv, "--kind"));
		return call_print(o, "orders.list", p);
	}
	if (g_strcmp0(cmd, "order") == 0 && g_strcmp0(sub, "show") == 0 && argc > 2) {
		p = params1("id", argv[2]);
		return call_print(o, "orders.get", p);
	}
	if (g_strcmp0(cmd, "order") == 0 && g_strcmp0(sub, "material") == 0 && argc > 3 &&
	    opt(argc, argv, "--output") != NULL)
		return cmd_order_material(o, argv[2], argv[3], opt(argc, argv, "--output"));
	if (g_strcmp0(cmd, "review") == 0 && g_strcmp0(sub, "next") == 0) {
		p = params1("service", "review");
		return call_print(o, "task.next", p);
	}
	if (g_strcmp0(cmd, "review") == 0 &&
	    (g_strcmp0(sub, "approve") == 0 || g_strcmp0(sub, "reject") == 0) && argc > 2) {
		const char *note = opt(argc, argv, "--note");
		if (g_strcmp0(sub, "reject") == 0 && note == NULL)
			return usage();
		p = params1("decision", sub);
		if (note != NULL)
			json_object_set_string_member(p, "note", note);
		return claim_and_finish(o, argv[2], "review", p);
	}
	if (g_strcmp0(cmd, "make") == 0 && argc > 1 && opt(argc, argv, "--key") != NULL)
		return cmd_make(o, argc, argv);
	if (g_strcmp0(cmd, "ship") == 0 && argc > 1 && opt(argc, argv, "--tracking") != NULL) {
		p = params1("tracking", opt(argc, argv, "--tracking"));
		return claim_and_finish(o, argv[1], "ship", p);
	}
	if (g_strcmp0(cmd, "deliver") == 0 && argc > 1) {
		p = json_object_new();
		return claim_and_finish(o, argv[1], "deliver", p);
	}
	if (g_strcmp0(cmd, "pay-notify") == 0)
		return cmd_pay_notify(o, argc - 1, argv + 1);
	if (g_strcmp0(cmd, "refund") == 0 && argc > 1) {
		p = params1("order_id", argv[1]);
		return call_print(o, "payment.refund", p);
	}
	if (g_strcmp0(cmd, "tasks") == 0) {
		p = params1("state", opt(argc, argv, "--state"));
		if (opt(argc, argv, "--service") != NULL)
			json_object_set_string_member(p, "service", opt(argc, argv, "--service"));
		return call_print(o, "tasks.list", p);
	}
	if (g_strcmp0(cmd, "ledger") == 0 && g_strcmp0(sub, "verify") == 0) {
		int code = 0;
		g_autoptr(JsonNode) r = call(o, "ledger.verify", NULL, &code);
		if (r == NULL)
			return code;
		print_node(o, r);
		return json_object_get_boolean_member_with_default(json_node_get_object(r), "ok",
								   FALSE)
			   ? 0
			   : EXIT_REFUSED;
	}
	if (g_strcmp0(cmd, "ca") == 0 &&
	    (g_strcmp0(sub, "export") == 0 || g_strcmp0(sub, "crl") == 0)) {
		g_autofree char *method = g_strdup_printf("ca.%s", sub);
		int code = 0;
		g_autoptr(JsonNode) r = NULL;
		JsonArray *a;

		p = params1("vendor", opt(argc, argv, "--vendor"));
		r = call(o, method, p, &code);
		if (r == NULL)
			return code;
		if (o->json || !JSON_NODE_HOLDS_ARRAY(r)) {
			print_node(o, r);
			return 0;
		}
		/* PEM as openssl reads it: one block after another, each vendor's in turn. */
		a = json_node_get_array(r);
		for (guint i = 0; i < json_array_get_length(a); i++) {
			JsonObject *v = json_array_get_object_element(a, i);
			fputs(json_object_get_string_member_with_default(v, "pem", ""), stdout);
		}
		return 0;
	}
	if ((g_strcmp0(cmd, "sms") == 0 || g_strcmp0(cmd, "mail") == 0 ||
	     g_strcmp0(cmd, "bank") == 0) &&
	    g_strcmp0(sub, "outbox") == 0) {
		p = params1("service", cmd);
		return call_print(o, "outbox.list", p);
	}
	if (g_strcmp0(cmd, "work") == 0)
		return cmd_work(o, argc - 1, argv + 1);
	return usage();
}

int
main(int argc, char **argv)
{
	Office o = {.timeout_ms = 10000};
	g_autoptr(GError) error = NULL;
	int i = 1, code;

	for (; i < argc && g_str_has_prefix(argv[i], "--"); i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (g_strcmp0(a, "--json") == 0) {
			o.json = TRUE;
			continue;
		}
		if (g_strcmp0(a, "--help") == 0) {
			fputs(usage_text, stdout);
			return 0;
		}
		if (v == NULL)
			return usage();
		if (g_strcmp0(a, "--state-dir") == 0)
			o.state_dir = g_strdup(v);
		else if (g_strcmp0(a, "--key") == 0)
			o.key_file = g_strdup(v);
		else if (g_strcmp0(a, "--endpoint") == 0)
			o.endpoint = g_strdup(v);
		else if (g_strcmp0(a, "--server-key") == 0)
			o.server_key = g_strdup(v);
		else if (g_strcmp0(a, "--timeout-ms") == 0)
			o.timeout_ms = atoi(v) > 0 ? atoi(v) : 10000;
		else
			return usage();
		i++;
	}
	if (i >= argc)
		return usage();
	if (g_strcmp0(argv[i], "keygen") == 0) {
		code = cmd_keygen(&o, argc - i - 1, argv + i + 1);
	} else if (g_strcmp0(argv[i], "backup") == 0) {
		code = cmd_backup(&o, argc - i - 1, argv + i + 1);
	} else if (!connect_office(&o, &error)) {
		code = fail(&o, "Unavailable", error->message);
	} else {
		code = run_command(&o, argc - i, argv + i);
	}
	if (o.sock != NULL)
		zmq_close(o.sock);
	if (o.ctx != NULL)
		zmq_ctx_term(o.ctx);
	g_free(o.state_dir);
	g_free(o.key_file);
	g_free(o.endpoint);
	g_free(o.server_key);
	return code;
}
