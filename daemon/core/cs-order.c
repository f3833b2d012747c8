/*
 * cs-order.c — an order in memory: what the ledger row says, and its attributes read on
 * first use. The engine (cs-engine.c) is the only writer.
 */
#define G_LOG_DOMAIN "certseald"

#include "cs-order-private.h"

CsOrder *
cs_order_new_from_row(CsOrderRow *row, const CsPlugin *plugin, CsLedger *ledger)
{
	CsOrder *order = g_new0(CsOrder, 1);

	order->id = g_strdup(row->id);
	order->kind = g_strdup(row->kind);
	order->subject_type = cs_subject_type_from_string(row->subject_type);
	order->vendor = g_strdup(row->vendor != NULL ? row->vendor : "");
	order->state = g_strdup(row->state);
	order->owner_uid = row->owner_uid;
	order->fields = g_variant_ref_sink(row->fields);
	order->created = row->created;
	order->updated = row->updated;
	order->plugin = plugin;
	order->ledger = ledger;
	return order;
}

void
cs_order_free(CsOrder *order)
{
	if (order == NULL)
		return;
	g_free(order->id);
	g_free(order->kind);
	g_free(order->vendor);
	g_free(order->state);
	g_clear_pointer(&order->fields, g_variant_unref);
	g_clear_pointer(&order->attrs, g_hash_table_unref);
	g_free(order);
}

const char *
cs_order_get_id(CsOrder *order)
{
	return order->id;
}

const char *
cs_order_get_kind(CsOrder *order)
{
	return order->kind;
}

const char *
cs_order_get_state(CsOrder *order)
{
	return order->state;
}

const char *
cs_order_get_vendor(CsOrder *order)
{
	return order->vendor;
}

CsSubjectType
cs_order_get_subject_type(CsOrder *order)
{
	return order->subject_type;
}

guint32
cs_order_get_owner_uid(CsOrder *order)
{
	return order->owner_uid;
}

GVariant *
cs_order_get_fields(CsOrder *order)
{
	return order->fields;
}

gint64
cs_order_get_created(CsOrder *order)
{
	return order->created;
}

gint64
cs_order_get_updated(CsOrder *order)
{
	return order->updated;
}

const CsPlugin *
cs_order_get_plugin(CsOrder *order)
{
	return order->plugin;
}

const char *
cs_order_get_field(CsOrder *order, const char *name)
{
	const char *value = NULL;

	if (!g_variant_lookup(order->fields, name, "&s", &value))
		return NULL;
	return value;
}

const char *
cs_order_get_subject_name(CsOrder *order)
{
	return cs_order_get_field(order, cs_subject_name_field(order->subject_type));
}

const char *
cs_order_get_subject_number(CsOrder *order)
{
	return cs_order_get_field(order, cs_subject_number_field(order->subject_type));
}

const char *
cs_order_get_attr(CsOrder *order, const char *name)
{
	if (order->attrs == NULL) {
		g_autoptr(GError) error = NULL;
		order->attrs = cs_ledger_load_attrs(order->ledger, order->id, &error);
		if (order->attrs == NULL) {
			g_warning("order %s: cannot read its attributes: %s", order->id,
				  error->message);
			return NULL;
		}
	}
	return g_hash_table_lookup(order->attrs, name);
}

void
cs_order_cache_attr(CsOrder *order, const char *name, const char *value)
{
	if (order->attrs == NULL)
		return; /* read in full on next use */
	if (value != NULL)
		g_hash_table_insert(order->attrs, g_strdup(name), g_strdup(value));
	else
		g_hash_table_remove(order->attrs, name);
}

void
cs_order_forget_attrs(CsOrder *order)
{
	g_clear_pointer(&order->attrs, g_hash_table_unref);
}

gboolean
cs_order_require_plugin(CsOrder *order, GError **error)
{
	if (order->plugin != NULL)
		return TRUE;
	g_set_error(error, CS_ERROR, CS_ERROR_UNAVAILABLE, "order %s: the %s flow is not loaded",
		    order->id, order->kind);
	return FALSE;
}

gint64
cs_order_get_attr_int(CsOrder *order, const char *name)
{
	const char *v = cs_order_get_attr(order, name);
	return v != NULL ? g_ascii_strtoll(v, NULL, 10) : 0;
}
