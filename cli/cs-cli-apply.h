/*
 * cs-cli-apply.h — `certseal apply`: a new-certificate application (新办, DESIGN §1.1)
 * walked through step by step, at a terminal or from a script.
 */
#pragma once

#include "cs-cli.h"

G_BEGIN_DECLS

int cs_cli_apply(CsCli *cli, int argc, char **argv);

G_END_DECLS
