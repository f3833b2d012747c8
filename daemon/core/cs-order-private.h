/*
 * cs-order-private.h — the order as the engine keeps it in memory; only core/ sees inside.
 *
 * Everyone else reads an order through the accessors of certseal/plugin.h and cs-engine.h,
 * so that an order in memory can only change the way the engine changes it: after the
 * ledger transaction that records the change committed.
 */
#pragma once

#include "certseal/plugin.h"
#include "cs-ledger.h"
#include "cs-order.h"

G_BEGIN_DECLS

struct _CsOrder {
	char *id;
	char *kind;
	CsSubjectType subject_type;
	char *vendor; /* "" until chosen */
	char *state;
	guint32 owner_uid;
	GVariant *fields; /* a{sv}: field name → string */
	gint64 created;	  /* microseconds since the epoch */
	gint64 updated;
	const CsPlugin *plugin;
	CsLedger *ledger;  /* borrowed: where the attributes are */
	GHashTable *attrs; /* name → value; NULL until read (cs_order_get_attr) */
};

CsOrder *cs_order_new_from_row(CsOrderRow *row, const CsPlugin *plugin, CsLedger *ledger);
void cs_order_free(CsOrder *order);
/* CS_ERROR_UNAVAILABLE when the order's flow plugin is not loaded. */
gboolean cs_order_require_plugin(CsOrder *order, GError **error);
/* Inside a step's transaction: keep the cache in step with an attribute just written. */
void cs_order_cache_attr(CsOrder *order, const char *name, const char *value);

G_END_DECLS
