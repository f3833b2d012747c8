/*
 * cs-cli-unlock.h — `certseal unlock`: a key's forgotten or locked PIN reset (解锁,
 * docs/architecture.md §1.3), walked through at a terminal or from a script.
 */
#pragma once

#include "cs-cli.h"

G_BEGIN_DECLS

int cs_cli_unlock(CsCli *cli, int argc, char **argv);

G_END_DECLS
