/*
 * cs-invoicing.h — e-invoices and review deadlines (the step services cs_step_issue_invoice
 * and cs_step_set_due_by of certseal/plugin.h, and GetInvoice for the fronts).
 */
#pragma once

#include "cs-engine.h"

G_BEGIN_DECLS

/* Inside a transaction: issue the invoice for what was paid and mail it to @email (none
 * when NULL). Once per order; nothing when nothing was paid. */
gboolean
cs_invoicing_issue_in_txn(CsEngine *engine, CsOrder *order, const char *email, GError **error);
/* GetInvoice: the order's e-invoice PDF; NotFound before one was issued. */
GBytes *
cs_invoicing_get(CsEngine *engine, const CsRequest *request, CsOrder *order, GError **error);
/* The working days a review of @order may take (config [review]). */
guint cs_invoicing_review_days(CsEngine *engine, CsOrder *order);

G_END_DECLS
