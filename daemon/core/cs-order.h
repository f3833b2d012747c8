/*
 * cs-order.h — what the daemon reads of an order beyond certseal/plugin.h's accessors.
 */
#pragma once

#include "certseal/plugin.h"

G_BEGIN_DECLS

guint32 cs_order_get_owner_uid(CsOrder *order);
GVariant *cs_order_get_fields(CsOrder *order); /* a{sv} of strings, owned by the order */
gint64 cs_order_get_created(CsOrder *order);   /* microseconds since the epoch */
gint64 cs_order_get_updated(CsOrder *order);
const CsPlugin *cs_order_get_plugin(CsOrder *order); /* NULL when its flow is not loaded */
/* An attribute holding a number (0 when unset). */
gint64 cs_order_get_attr_int(CsOrder *order, const char *name);

/* After a transaction that may have set attributes (committed or not): read them again. */
void cs_order_forget_attrs(CsOrder *order);

G_END_DECLS
