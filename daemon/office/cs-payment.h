/*
 * cs-payment.h — payment notifications verified by the daemon (DESIGN §3.4, §9).
 *
 * Whatever worker relays a notification, the daemon itself checks it with the platform
 * keys from the configuration: Alipay (RSA2 over the sorted form) and WeChat Pay v3
 * (RSA over "timestamp\nnonce\nbody\n", a timestamp within 5 minutes, the resource
 * decrypted with the APIv3 key). Then the order number, the amount and the merchant are
 * checked against the order and the configuration, and the payment is applied through
 * the engine (the plugin's "pay" step, actor "gateway") in the same transaction that
 * records the notification's key — so a duplicate is acknowledged and changes nothing.
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include "cs-engine.h"

G_BEGIN_DECLS

typedef struct _CsPaymentKeys CsPaymentKeys;

typedef struct {
	char *channel;	/* alipay | wechat | sandbox */
	char *order_id; /* out_trade_no */
	guint64 amount_fen;
	char *trade_no;	  /* the platform's transaction id */
	char *notify_key; /* channel:platform id — the idempotency key */
} CsPaymentNotice;

void cs_payment_notice_free(CsPaymentNotice *notice);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsPaymentNotice, cs_payment_notice_free)

/* Load the keys named by @config; a channel without its keys is refused later, not here.
 * Refuses unreadable or malformed key files. */
CsPaymentKeys *cs_payment_keys_load(CsConfig *config, GError **error);
void cs_payment_keys_free(CsPaymentKeys *keys);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsPaymentKeys, cs_payment_keys_free)

/* Verify an Alipay notification: @form is the raw x-www-form-urlencoded body. */
CsPaymentNotice *cs_payment_verify_alipay(CsPaymentKeys *keys, const char *form, GError **error);
/* Verify a WeChat Pay v3 notification; @headers maps header names (any case) to strings;
 * @now_s is the current Unix time in seconds. */
CsPaymentNotice *cs_payment_verify_wechat(
    CsPaymentKeys *keys, JsonObject *headers, const char *body, gint64 now_s, GError **error);

/* Check @notice against its order and apply it. *applied is FALSE for a duplicate, and
 * for money that arrived when the order no longer waited for it: then it is recorded and a
 * cashier refund queued, and *refunding (may be NULL) is TRUE. */
gboolean cs_payment_apply(CsEngine *engine,
			  CsPaymentNotice *notice,
			  gboolean *applied,
			  gboolean *refunding,
			  GError **error);

/* The payment.notify call: verify by channel, then apply. @params as in DESIGN §3.4. */
gboolean cs_payment_notify(CsEngine *engine,
			   CsPaymentKeys *keys,
			   JsonObject *params,
			   gboolean *applied,
			   gboolean *refunding,
			   char **order_id_out,
			   GError **error);

G_END_DECLS
