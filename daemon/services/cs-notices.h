/*
 * cs-notices.h — secrets and notices (the step services of certseal/plugin.h:
 * cs_step_send_notice, cs_step_issue_password, cs_step_forget_password,
 * cs_step_send_password_transfer), and what the other services share of them.
 */
#pragma once

#include "cs-engine.h"

G_BEGIN_DECLS

/* The plaintext of the sealed secret the order's attribute @name refers to (free with
 * cs_secret_free). CS_ERROR_NOT_FOUND when it has none. */
char *
cs_engine_open_order_secret(CsEngine *engine, CsOrder *order, const char *name, GError **error);

G_END_DECLS
