/*
 * cs-payments.h — money: applying verified payments, refunds, and StartPayment.
 *
 * The office front verifies a notification's signature (office/cs-payment.h) and hands the
 * notice here; the order, the amount and the idempotency key are checked against the
 * ledger and the payment is applied through the order's payment step.
 */
#pragma once

#include <glib.h>

#include "cs-engine.h"
#include "cs-tasks.h"

G_BEGIN_DECLS

/* A payment a verified notification announces. */
typedef struct {
	char *channel;	/* alipay | wechat | sandbox */
	char *order_id; /* out_trade_no */
	guint64 amount_fen;
	char *trade_no;	  /* the platform's transaction id */
	char *notify_key; /* channel:platform id — the idempotency key */
} CsPaymentNotice;

void cs_payment_notice_free(CsPaymentNotice *notice);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsPaymentNotice, cs_payment_notice_free)

/* Check @notice against its order and apply it. *applied is FALSE for a duplicate, and
 * for money that arrived when the order no longer waited for it: then it is recorded and a
 * cashier refund queued, and *refunding (may be NULL) is TRUE. */
gboolean cs_payment_apply(CsEngine *engine,
			  CsPaymentNotice *notice,
			  gboolean *applied,
			  gboolean *refunding,
			  GError **error);
/* Does the order wait for a payment now (its state has a payment step)? */
gboolean cs_payments_awaited(CsEngine *engine, CsOrder *order);

/* The StartPayment calls waiting for a cashier worker's QR code. */
typedef struct _CsPayments CsPayments;
/* Takes the done callback of @tasks' gateway tasks (a cashier's precreate answers). */
CsPayments *cs_payments_new(CsEngine *engine, CsTasks *tasks);
/* Drops the waiting calls without answering them (the daemon stops). */
void cs_payments_free(CsPayments *payments);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsPayments, cs_payments_free)

/* @func runs once, on the main loop: with the QR payload and its expiry (Unix seconds), or
 * an error; then @destroy(@user_data). */
typedef void (*CsPaymentStartedFunc)(const char *qr_payload,
				     guint64 expires,
				     const GError *error,
				     gpointer user_data);
/* StartPayment: the sandbox answers at once (test_mode); alipay and wechat queue a cashier
 * precreate task and answer when a worker returns the QR payload, or Unavailable after
 * 10 s. */
void cs_payments_start(CsPayments *payments,
		       const CsRequest *request,
		       CsOrder *order,
		       const char *channel,
		       CsPaymentStartedFunc func,
		       gpointer user_data,
		       GDestroyNotify destroy);

G_END_DECLS
