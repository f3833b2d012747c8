/*
 * cs-cli-seal.h — the `certseal seal` command, which runs locally (no bus).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* argv[0] is "show" or "verify"; returns the exit code. */
int cs_cli_seal(gboolean json, int argc, char **argv);

G_END_DECLS
