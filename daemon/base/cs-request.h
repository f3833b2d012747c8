/*
 * cs-request.h — who asked for something, as the ledger records it.
 */
#pragma once

#include "certseal/plugin.h"

G_BEGIN_DECLS

/* "uid:1000", "office:alice", "gateway", "system". */
char *cs_request_to_actor(const CsRequest *request);

G_END_DECLS
