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
/* Log in on the key of object path @key unless it already is (the PIN from the terminal
 * without echo, or a line of stdin). */
int cs_cli_key_login(CsCli *cli, const char *key);
/* "org" or "person": the subject type of the certificate on @key (an organisation's names an
 * O=). */
char *cs_cli_key_subject(CsCli *cli, const char *key);

G_END_DECLS
