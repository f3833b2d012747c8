/*
 * cs-cli-change.h — `certseal change`: an information change (信息变更,
 * docs/architecture.md §1.5) on the key inserted.
 */
#pragma once

#include "cs-cli.h"

G_BEGIN_DECLS

int cs_cli_change(CsCli *cli, int argc, char **argv);

G_END_DECLS
