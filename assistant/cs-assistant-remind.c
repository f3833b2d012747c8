/*
 * cs-assistant-remind.c — the renewal reminder: when an inserted key's certificate is
 * Renewable (the daemon's property: the renewal window is open), a toast on the home page
 * with 立即更新, and a desktop notification (GNotification), once a key and run.
 */
#include "cs-assistant.h"

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
