/*
 * cs-cli-query.h — `certseal query`: a subject's orders and certificates found with a code
 * sent to the phone on file (订单查询).
 */
#pragma once

#include "cs-cli.h"

G_BEGIN_DECLS

int cs_cli_query(CsCli *cli, int argc, char **argv);
/* `certseal reissue`: a query, then CreateOrder("reissue") on the same connection. */
int cs_cli_reissue(CsCli *cli, int argc, char **argv);

G_END_DECLS
