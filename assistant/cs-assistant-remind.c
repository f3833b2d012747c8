/*
 * cs-assistant-remind.c — the renewal reminder: when an inserted key's certificate is
 * Renewable (the daemon's property: the renewal window is open), a toast on the home page
 * with 立即更新, and a desktop notification (GNotification), once a key and run.
 *
 * Renewable follows the daemon's clock and is not announced: it is read as a key appears,
 * and read again every hour for the keys still inserted.
 */
#include "cs-assistant.h"

#define RECHECK_S 3600

static void
on_renewable(GObject *source, GAsyncResult *result, gpointer user_data)
{
	CsAssistant *a = user_data;
	g_autoptr(GVariant) reply = g_dbus_proxy_call_finish(G_DBUS_PROXY(source), result, NULL);
	g_autoptr(GVariant) value = NULL;
	g_autoptr(GVariant) changed = NULL;
	GVariantBuilder b;
	static const char *const none[] = {NULL};

	if (reply == NULL)
		return; /* pulled meanwhile */
	g_variant_get(reply, "(v)", &value);
	if (!g_variant_is_of_type(value, G_VARIANT_TYPE_BOOLEAN) ||
	    g_variant_get_boolean(value) == cs_key_get_renewable(CS_KEY(source)))
		return;
	g_dbus_proxy_set_cached_property(G_DBUS_PROXY(source), "Renewable", value);
	/* As if announced: the home page's row follows. */
	g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
	g_variant_builder_add(&b, "{sv}", "Renewable", value);
	changed = g_variant_ref_sink(g_variant_builder_end(&b));
	g_signal_emit_by_name(source, "g-properties-changed", changed, none);
	cs_assistant_remind_renewal(a, CS_KEY(source));
}

static gboolean
recheck(gpointer user_data)
{
	CsAssistant *a = user_data;
	GHashTableIter iter;
	gpointer row;

	g_hash_table_iter_init(&iter, a->rows);
	while (g_hash_table_iter_next(&iter, NULL, &row)) {
		CsKey *key = g_object_get_data(G_OBJECT(row), "cs-key");
		if (key != NULL)
			g_dbus_proxy_call(
			    G_DBUS_PROXY(key), "org.freedesktop.DBus.Properties.Get",
			    g_variant_new("(ss)", "org.certseal.CertSeal1.Key", "Renewable"),
			    G_DBUS_CALL_FLAGS_NONE, -1, NULL, on_renewable, a);
	}
	return G_SOURCE_CONTINUE;
}

static void
on_renew(AdwToast *toast, gpointer user_data)
{
	cs_assistant_key_flow_start(user_data, "renew"); /* the 证书更新 pages */
}

void
cs_assistant_remind_renewal(CsAssistant *a, CsKey *key)
{
	GHashTable *reminded = g_object_get_data(G_OBJECT(a->stack), "cs-reminded");
	const char *serial = cs_key_get_serial(key);
	g_autofree char *date = NULL;
	g_autofree char *text = NULL;
	g_autofree char *id = NULL;
	g_autoptr(GNotification) note = NULL;
	AdwToast *toast;

	if (g_object_get_data(G_OBJECT(a->stack), "cs-recheck") == NULL)
		g_object_set_data(G_OBJECT(a->stack), "cs-recheck",
				  GUINT_TO_POINTER(g_timeout_add_seconds(RECHECK_S, recheck, a)));
	if (!cs_key_get_renewable(key) || serial == NULL)
		return;
	if (reminded == NULL) {
		reminded = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
		g_object_set_data_full(G_OBJECT(a->stack), "cs-reminded", reminded,
				       (GDestroyNotify)g_hash_table_unref);
	}
	if (!g_hash_table_add(reminded, g_strdup(serial)))
		return;
	date = cs_format_date(cs_key_get_not_after(key));
	text = g_strdup_printf(_("The certificate on key %s can be renewed now (valid until %s)."),
			       serial, date);
	toast = adw_toast_new(text);
	adw_toast_set_timeout(toast, 0); /* until dismissed */
	adw_toast_set_button_label(toast, _("Renew now"));
	g_signal_connect(toast, "button-clicked", G_CALLBACK(on_renew), a);
	adw_toast_overlay_add_toast(a->toasts, toast);

	note = g_notification_new(_("Renew the certificate"));
	g_notification_set_body(note, text);
	id = g_strdup_printf("renew-%s", serial);
	g_application_send_notification(G_APPLICATION(a->app), id, note);
}
