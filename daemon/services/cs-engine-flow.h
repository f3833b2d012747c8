/*
 * cs-engine-flow.h — the engine services behind the flows' steps that the daemon's fronts
 * also use (the plugin-facing ones are declared in certseal/plugin.h).
 */
#pragma once

#include <glib.h>

#include "cs-engine.h"

G_BEGIN_DECLS

/* @len random decimal digits (free with cs_secret_free). */
char *cs_random_digits(guint len, GError **error);
/* Wipe and free a secret string; NULL is fine. */
void cs_secret_free(char *secret);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(char, cs_secret_free)

/* The plaintext of the sealed secret the order's attribute @name refers to. */
char *
cs_engine_open_order_secret(CsEngine *engine, CsOrder *order, const char *name, GError **error);

/* GetInvoice: the order's e-invoice PDF; NotFound before one was issued. */
GBytes *
cs_engine_get_invoice(CsEngine *engine, const CsRequest *request, CsOrder *order, GError **error);
/* The working days a review of @order may take (config [review]). */
guint cs_engine_review_days(CsEngine *engine, CsOrder *order);

/* StartPayment. @func runs once, on the main loop: with the QR payload and its expiry
 * (Unix seconds), or an error; then @destroy(@user_data). */
typedef void (*CsPaymentStartedFunc)(const char *qr_payload,
				     guint64 expires,
				     const GError *error,
				     gpointer user_data);
void cs_engine_start_payment(CsEngine *engine,
			     const CsRequest *request,
			     CsOrder *order,
			     const char *channel,
			     CsPaymentStartedFunc func,
			     gpointer user_data,
			     GDestroyNotify destroy);
/* Does the order wait for a payment now (a gateway "pay" step from its state)? */
gboolean cs_engine_awaits_payment(CsEngine *engine, CsOrder *order);
/* A cashier task was done: answers the StartPayment waiting for it, if any. */
void cs_engine_payment_task_done(CsEngine *engine, gint64 task_id, const char *result_json);
/* Internal: the StartPayment calls waiting for a cashier (task id → waiter). */
GHashTable *cs_engine_get_payment_waiters(CsEngine *engine);
void cs_payment_waiter_free(gpointer waiter);
/* An order's attributes changed outside a step (StartPayment, making progress): read them
 * again and announce the change. @updated: the UpdatedAt the same transaction stored with
 * cs_ledger_update_order(), or 0 when it did not change. */
void cs_engine_order_attrs_changed(CsEngine *engine, CsOrder *order, gint64 updated);

G_END_DECLS
