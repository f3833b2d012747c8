/*
 * cs-cli.h — what the `certseal` commands share: the connection, the error and exit-code
 * rules, calls and property reads on org.certseal.CertSeal1, reading secrets.
 *
 * Rules every command keeps: with --json, stdout carries exactly one JSON document and
 * nothing ever prompts; errors go to stderr as "certseal: <message>", in --json mode as
 * {"error": {"code": "<D-Bus error name>", "message": "…"}} on stdout. Colours never.
 * Secrets (PINs, SMS codes) come from the terminal without echo or from stdin, never
 * from argv.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define CS_CLI_BUS_NAME "org.certseal.CertSeal1"
#define CS_CLI_MANAGER_PATH "/org/certseal/CertSeal1"
#define CS_CLI_ORDERS_PATH CS_CLI_MANAGER_PATH "/orders"
#define CS_CLI_MANAGER_IFACE "org.certseal.CertSeal1.Manager"
#define CS_CLI_ORDER_IFACE "org.certseal.CertSeal1.Order"
#define CS_CLI_KEY_IFACE "org.certseal.CertSeal1.Key"

/* Exit codes (scripts rely on them). */
enum {
	CS_EXIT_OK = 0,
	CS_EXIT_REFUSED = 1,	 /* the daemon refused (the error's name and message printed) */
	CS_EXIT_USAGE = 2,	 /* usage error, or a local file that cannot be used */
	CS_EXIT_UNREACHABLE = 3, /* the daemon cannot be reached */
	CS_EXIT_NOT_FOUND = 4,	 /* no such order (or not yours) */
};

typedef struct {
	GDBusConnection *bus;
	gboolean json;
	gboolean session;
} CsCli;

/* Print an error as the rules above say; returns @code. */
int cs_cli_fail(CsCli *cli, int code, const char *name, const char *message);
/* Print a D-Bus call error and return its exit code. */
int cs_cli_fail_error(CsCli *cli, GError *error);
/* The D-Bus error name of @error ("org.certseal.Error.CodeInvalid"), or NULL. */
char *cs_cli_error_name(const GError *error);

GVariant *cs_cli_call(CsCli *cli,
		      const char *path,
		      const char *iface,
		      const char *method,
		      GVariant *args,
		      const char *reply_type,
		      GError **error);
/* All properties of @iface at @path as an a{sv}. */
GVariant *cs_cli_get_all(CsCli *cli, const char *path, const char *iface, GError **error);
GVariant *cs_cli_get_property(
    CsCli *cli, const char *path, const char *iface, const char *name, GError **error);

void cs_cli_print_json(GVariant *value);
/* The strings of @key in @dict joined with ", ", or "—" when empty or absent. */
char *cs_cli_join_strv(GVariant *dict, const char *key);
/* Local "YYYY-MM-DD HH:MM:SS". */
char *cs_cli_format_time(guint64 seconds);
gboolean cs_cli_valid_order_id(const char *id);
/* An order's object path; NULL (after printing a usage error into *rc) for a bad id. */
char *cs_cli_order_path(CsCli *cli, const char *id, int *rc);

/* The object path of the inserted key with @serial, or of the only key when @serial is
 * NULL; NULL (after printing NoKey / MultipleKeys into *rc) otherwise. */
char *cs_cli_find_key(CsCli *cli, const char *serial, int *rc);

/* A secret from the terminal without echo (the prompt on stderr), or a line of stdin for
 * scripts; NULL at end of input. Free with cs_cli_free_secret(). */
char *cs_cli_read_secret(CsCli *cli, const char *prompt);
void cs_cli_free_secret(char *secret);

G_END_DECLS
