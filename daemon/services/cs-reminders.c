/*
 * cs-reminders.c — expiry reminders (see cs-reminders.h).
 *
 * Invariant: a threshold of a certificate is recorded at most once (the check runs on the
 * main loop only, and the event and the SMS commit together), and an SMS is queued only
 * with its record.
 */
#define G_LOG_DOMAIN "certseald"

#include <json-glib/json-glib.h>

#include "cs-clock.h"
#include "cs-reminders.h"
#include "cs-tasks.h"
#include "cs-validity.h"

#define REMINDER_EVENT "expiry_reminder"

struct _CsReminders {
	CsEngine *engine;
	guint source;
};

typedef struct {
	char *name; /* "before_90", "after_30" */
	gint64 due;
} Threshold;

static char *
day_of(gint64 t)
{
	g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(t);
	return dt != NULL ? g_date_time_format(dt, "%Y-%m-%d") : g_strdup("?");
}

/* serial → set of thresholds recorded, for the certificates ending in [@from, @to]: one
 * query for the whole check. */
static GHashTable *
recorded_thresholds(CsEngine *engine, gint64 from, gint64 to, GError **error)
{
	g_autoptr(GHashTable) done = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
							   (GDestroyNotify)g_hash_table_unref);
	g_autoptr(GPtrArray) events = cs_ledger_certificate_order_events(
	    cs_engine_get_ledger(engine), REMINDER_EVENT, from, to, error);

	if (events == NULL)
		return NULL;
	for (guint i = 0; i < events->len; i++) {
		CsEventRow *e = g_ptr_array_index(events, i);
		g_autoptr(JsonParser) parser = json_parser_new();
		GHashTable *set;
		JsonObject *o;
		const char *serial;

		if (e->data == NULL || !json_parser_load_from_data(parser, e->data, -1, NULL) ||
		    !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser)))
			continue;
		o = json_node_get_object(json_parser_get_root(parser));
		serial = json_object_get_string_member_with_default(o, "serial", "");
		set = g_hash_table_lookup(done, serial);
		if (set == NULL) {
			set = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
			g_hash_table_insert(done, g_strdup(serial), set);
		}
		g_hash_table_add(
		    set, g_strdup(json_object_get_string_member_with_default(o, "threshold", "")));
	}
	return g_steal_pointer(&done);
}

static void
add_thresholds(GArray *out, GArray *days, const char *prefix, gint64 end, gint sign)
{
	for (guint i = 0; days != NULL && i < days->len; i++) {
		guint d = g_array_index(days, guint, i);
		Threshold t = {g_strdup_printf("%s_%u", prefix, d),
			       end + sign * (gint64)d * CS_VALIDITY_DAY_SECONDS};
		g_array_append_val(out, t);
	}
}

static void
threshold_clear(gpointer p)
{
	g_free(((Threshold *)p)->name);
}

/* The subject's contact phone, from the registry, or NULL. */
static char *
contact_phone(CsEngine *engine, CsCertRow *row)
{
	g_autoptr(GVariant) known = cs_ledger_lookup_subject(
	    cs_engine_get_ledger(engine), row->subject_type, row->id_number, NULL);
	const char *phone = NULL;

	if (known == NULL || !g_variant_lookup(known, "handler_phone", "&s", &phone))
		return NULL;
	return g_strdup(phone);
}

static GVariant *
event_data(CsCertRow *row, const char *threshold, gboolean sent)
{
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
	g_variant_builder_add(&b, "{sv}", "serial", g_variant_new_string(row->serial));
	g_variant_builder_add(&b, "{sv}", "threshold", g_variant_new_string(threshold));
	g_variant_builder_add(&b, "{sv}", "sms", g_variant_new_boolean(sent));
	return g_variant_builder_end(&b);
}

/* Record the due thresholds of @row not recorded yet, and queue one SMS for the latest;
 * TRUE with *sent when one went. */
static gboolean
remind_one(
    CsEngine *engine, CsCertRow *row, GHashTable *done, gint64 now, gboolean *sent, GError **error)
{
	CsConfig *config = cs_engine_get_config(engine);
	CsLedger *ledger = cs_engine_get_ledger(engine);
	CsTasks *tasks = cs_engine_get_tasks(engine);
	g_autoptr(GArray) all = g_array_new(FALSE, TRUE, sizeof(Threshold));
	g_autofree char *phone = NULL;
	g_autofree char *end = day_of(row->not_after);
	g_autofree char *from = day_of(cs_validity_renewable_from(row->not_after));
	g_autoptr(JsonObject) params = NULL;
	const Threshold *latest = NULL;
	gboolean ok = TRUE;

	*sent = FALSE;
	g_array_set_clear_func(all, threshold_clear);
	if (row->order_id == NULL || row->id_number == NULL || row->subject_type == NULL)
		return TRUE;
	add_thresholds(all, config->reminder_before_days, "before", row->not_after, -1);
	add_thresholds(all, config->reminder_after_days, "after", row->not_after, 1);
	for (guint i = 0; i < all->len; i++) {
		const Threshold *t = &g_array_index(all, Threshold, i);
		if (t->due <= now && (done == NULL || !g_hash_table_contains(done, t->name)) &&
		    (latest == NULL || t->due > latest->due))
			latest = t;
	}
	if (latest == NULL)
		return TRUE;
	phone = contact_phone(engine, row);
	if (!cs_ledger_begin(ledger, error))
		return FALSE;
	for (guint i = 0; ok && i < all->len; i++) {
		const Threshold *t = &g_array_index(all, Threshold, i);
		gboolean this_one = t == latest && phone != NULL && tasks != NULL;
		g_autoptr(GVariant) data = NULL;

		if (t->due > now || (done != NULL && g_hash_table_contains(done, t->name)))
			continue;
		data = g_variant_ref_sink(event_data(row, t->name, this_one));
		ok = cs_ledger_append_event(ledger, row->order_id, REMINDER_EVENT, NULL, NULL,
					    "system", data, g_get_real_time(), NULL, error);
	}
	if (ok && phone != NULL && tasks != NULL) {
		params = json_object_new();
		json_object_set_string_member(params, "order", row->order_id);
		json_object_set_string_member(params, "certificate_serial", row->serial);
		json_object_set_string_member(params, "not_after", end);
		json_object_set_string_member(params, "renewable_from", from);
		json_object_set_string_member(params, "threshold", latest->name);
		ok = cs_tasks_send_sms_in_txn(tasks, row->order_id, phone, "expiry_reminder",
					      params, NULL, FALSE, error);
		*sent = ok;
	}
	if (!ok || !cs_ledger_commit(ledger, error)) {
		cs_ledger_rollback(ledger);
		*sent = FALSE;
		return FALSE;
	}
	if (phone == NULL)
		g_message("certificate %s: reminder %s recorded; the subject has no contact phone",
			  row->serial, latest->name);
	else
		g_info("certificate %s: reminder %s (ends %s) sent", row->serial, latest->name,
		       end);
	return TRUE;
}

static guint
max_days(GArray *days)
{
	guint max = 0;

	for (guint i = 0; days != NULL && i < days->len; i++)
		max = MAX(max, g_array_index(days, guint, i));
	return max;
}

gint
cs_reminders_check(CsEngine *engine, GError **error)
{
	CsConfig *config = cs_engine_get_config(engine);
	gint64 now = cs_clock_now();
	/* Only certificates some threshold can be due for: ending from the last "after" day
	 * (at least the renewal window's 365 days) ago to the first "before" day ahead. */
	gint64 from =
	    now - (gint64)MAX(max_days(config->reminder_after_days), CS_VALIDITY_RENEW_AFTER_DAYS) *
		      CS_VALIDITY_DAY_SECONDS;
	gint64 to = now + (gint64)max_days(config->reminder_before_days) * CS_VALIDITY_DAY_SECONDS;
	g_autoptr(GPtrArray) rows = NULL;
	g_autoptr(GHashTable) done = NULL;
	gint n = 0;

	/* A certificate that ended before the window's start can no longer be renewed: no
	 * message is worth sending for it. */
	rows = cs_ledger_list_valid_subscribers(cs_engine_get_ledger(engine), from, to, error);
	if (rows == NULL)
		return -1;
	done = recorded_thresholds(engine, from, to, error);
	if (done == NULL)
		return -1;
	for (guint i = 0; i < rows->len; i++) {
		CsCertRow *row = g_ptr_array_index(rows, i);
		g_autoptr(GError) local = NULL;
		gboolean sent = FALSE;

		/* One certificate that cannot be reminded does not stop the others. */
		if (!remind_one(engine, row, g_hash_table_lookup(done, row->serial), now, &sent,
				&local))
			g_warning("certificate %s: reminder: %s", row->serial, local->message);
		n += sent ? 1 : 0;
	}
	return n;
}

static gboolean
on_tick(gpointer user_data)
{
	CsReminders *self = user_data;
	g_autoptr(GError) error = NULL;

	if (cs_reminders_check(self->engine, &error) < 0)
		g_warning("reminders: %s", error->message);
	return G_SOURCE_CONTINUE;
}

CsReminders *
cs_reminders_start(CsEngine *engine)
{
	CsReminders *self = g_new0(CsReminders, 1);

	self->engine = engine;
	on_tick(self);
	self->source = g_timeout_add_seconds(
	    cs_engine_get_config(engine)->reminder_check_interval_s, on_tick, self);
	return self;
}

void
cs_reminders_free(CsReminders *self)
{
	if (self == NULL)
		return;
	if (self->source != 0)
		g_source_remove(self->source);
	g_free(self);
}
