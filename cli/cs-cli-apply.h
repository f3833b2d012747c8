/*
 * cs-cli-apply.h — `certseal apply`: a new-certificate application (新办, docs/architecture.md
 * §1.1) walked through step by step, at a terminal or from a script.
 */
#pragma once

#include "cs-cli.h"

G_BEGIN_DECLS

int cs_cli_apply(CsCli *cli, int argc, char **argv);

/* A fields file (a JSON object of strings, or key=value lines) into @values (name → value,
 * both owned by the table). */
gboolean cs_cli_load_fields(const char *file, GHashTable *values, GError **error);

G_END_DECLS
