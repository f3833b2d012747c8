/*
 * cs-codes.h — one-time SMS codes, below the engine (the fronts call cs_engine_send_code
 * and the code-taking steps of cs_engine_act_with, which use these).
 */
#pragma once

#include "certseal/plugin.h"
#include "cs-config.h"
#include "cs-ledger.h"
#include "cs-tasks.h"
#include "cs-vault.h"

G_BEGIN_DECLS

/* What codes are kept in and sent with, borrowed from the engine. */
typedef struct {
	CsLedger *ledger;
	CsVault *vault;
	CsTasks *tasks; /* NULL: codes cannot be sent (Unavailable) */
	CsConfig *config;
} CsCodeServices;

/* Inside a transaction: a new code for @order, sent by SMS to the flow's contact phone
 * (cooldown and daily cap enforced); *masked_phone (may be NULL) names where it went. */
gboolean
cs_codes_send_in_txn(const CsCodeServices *s, CsOrder *order, char **masked_phone, GError **error);
/* Check @code against the order's open code. A wrong code counts a try in its own
 * transaction (so refusing the step keeps the count); *code_id is the code to mark used in
 * the step's transaction. */
gboolean cs_codes_check(
    const CsCodeServices *s, CsOrder *order, const char *code, gint64 *code_id, GError **error);

G_END_DECLS
