/*
 * cs-cli-order.h — `certseal order …` and `certseal form …`: one order followed and acted
 * on (docs/architecture.md §1.1, §1.6, §3.6), and the pieces `certseal apply` reuses.
 */
#pragma once

#include "cs-cli.h"

G_BEGIN_DECLS

/* certseal order VERB ORDER_ID …; returns the exit code. */
int cs_cli_order(CsCli *cli, int argc, char **argv);
/* certseal form NAME --output FILE [--force]: a blank form from DownloadForm. */
int cs_cli_form(CsCli *cli, int argc, char **argv);

/* Print the order at @path (human or JSON); returns the exit code. */
int cs_cli_order_show(CsCli *cli, const char *path);

/* AttachMaterial with @file opened here (the daemon reads what the caller may read, and
 * only that). A file that cannot be opened is a G_FILE_ERROR; the daemon's refusals are
 * D-Bus errors. */
gboolean cs_cli_order_attach(
    CsCli *cli, const char *path, const char *kind, const char *file, GError **error);

/* The order's State (a new string), or NULL with @error set. */
char *cs_cli_order_state(CsCli *cli, const char *path, GError **error);

/* The payment QR code drawn in the terminal, its payload and its expiry. */
void cs_cli_print_payment(const char *channel,
			  const char *payload,
			  guint64 expires,
			  guint64 amount_fen,
			  gboolean light_background);

/* cs_cli_write_output(), then say what was saved ("<what> saved to …", or {output, size}
 * with --json); the exit code. */
int cs_cli_save_output(CsCli *cli,
		       const char *what,
		       const char *output,
		       gconstpointer data,
		       gsize len,
		       gboolean force);
/* Write @data to @output, refusing an existing file unless @force. */
gboolean cs_cli_write_output(
    const char *output, gconstpointer data, gsize len, gboolean force, GError **error);

G_END_DECLS
