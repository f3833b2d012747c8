/*
 * cs-payment.h — payment notifications verified by the daemon (dbus/office-protocol.md,
 * payment.notify).
 *
 * Whatever worker relays a notification, the daemon itself checks it with the platform
 * keys from the configuration: Alipay (RSA2 over the sorted form) and WeChat Pay v3
 * (RSA over "timestamp\nnonce\nbody\n", a timestamp within 5 minutes, the resource
 * decrypted with the APIv3 key). The verified notice then goes to the money service
 * (services/cs-payments.h), which applies it through the order's payment step in the same
 * transaction that records the notification's key — so a duplicate changes nothing.
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include "cs-payments.h"

G_BEGIN_DECLS

typedef struct _CsPaymentKeys CsPaymentKeys;

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

/* The payment.notify call: verify by channel, then apply. @params as in docs/architecture.md §3.4.
 */
gboolean cs_payment_notify(CsEngine *engine,
			   CsPaymentKeys *keys,
			   JsonObject *params,
			   gboolean *applied,
			   gboolean *refunding,
			   char **order_id_out,
			   GError **error);

G_END_DECLS
