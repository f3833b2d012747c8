/*
 * cs-cli-renew.h — `certseal renew` and `certseal order download` (docs/architecture.md §1.2,
 * §3.6).
 */
#pragma once

#include "cs-cli.h"

G_BEGIN_DECLS

int cs_cli_renew(CsCli *cli, int argc, char **argv);
/* certseal order download ORDER_ID --key SERIAL (@argc/@argv after ORDER_ID). */
int cs_cli_order_download(CsCli *cli, const char *path, int argc, char **argv);

G_END_DECLS
