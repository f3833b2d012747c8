/*
 * cs-assistant-pin.c — the password dialogs: 修改密码 (Key.ChangePin) and 登录 (Key.Login).
 *
 * What a refusal means comes from the daemon: PinIncorrect (the tries left read back from
 * the key's PinTriesLeft), PinLocked (then only an unlock order helps), InvalidInput (the
 * vendor's rule for a new password, in the daemon's words), KeyRemoved. PINs stay in the
 * entries and the call's arguments; they are never logged.
 */
#include <string.h>

#include "cs-assistant.h"

typedef enum { DIALOG_CHANGE_PIN, DIALOG_LOGIN } DialogKind;

typedef struct {
	CsAssistant *a;
	DialogKind kind;
	CsKey *key;
	GtkWindow *window;
	GtkWidget *old_pin, *new_pin, *repeat;
	GtkWidget *error;
	GtkWidget *ok;
	GtkWidget *unlock; /* 找回密码: shown once the key is locked */
	GCallback done;	   /* login: void (*)(CsAssistant *, CsKey *, gpointer) */
	gpointer done_data;
} PinDialog;

typedef void (*LoginDone)(CsAssistant *a, CsKey *key, gpointer user_data);

static void
pin_dialog_free(PinDialog *d)
{
	g_clear_object(&d->key);
	g_free(d);
}

static void
show_error(PinDialog *d, const char *text)
{
	gtk_label_set_text(GTK_LABEL(d->error), text);
	gtk_widget_set_visible(d->error, text != NULL && *text != '\0');
}

static const char *
entry_text(GtkWidget *entry)
{
	return gtk_editable_get_text(GTK_EDITABLE(entry));
}

/* After a PinIncorrect: the tries left as the key reports them now. */
static void
on_tries_read(GObject *source, GAsyncResult *result, gpointer user_data)
{
	PinDialog *d = user_data;
	g_autoptr(GVariant) reply = g_dbus_proxy_call_finish(G_DBUS_PROXY(source), result, NULL);
	g_autoptr(GVariant) value = NULL;
	g_autofree char *text = NULL;
	int left = cs_key_get_pin_tries_left(d->key);

	if (reply != NULL) {
		g_variant_get(reply, "(v)", &value);
		if (g_variant_is_of_type(value, G_VARIANT_TYPE_INT32))
			left = g_variant_get_int32(value);
	}
	if (left == 0)
		/* That was the last try: the key is locked now. */
		text =
		    g_strdup(_("The key is locked after too many wrong passwords. Unlock it with "
			       "“Recover the password / unlock” on the home page."));
	else if (left > 0)
		text = g_strdup_printf(
		    g_dngettext(
			GETTEXT_PACKAGE, "Wrong password: %d try left before the key locks.",
			"Wrong password: %d tries left before the key locks.", (gulong)left),
		    left);
	else
		text = g_strdup(_("Wrong password."));
	gtk_widget_set_visible(d->unlock, left == 0);
	show_error(d, text);
	gtk_widget_set_sensitive(d->ok, TRUE);
	g_object_unref(d->window);
}

static void
explain(PinDialog *d, const GError *error)
{
	const char *name = cs_error_name(error);
	g_autofree char *message = cs_error_text(error);
	g_autofree char *text = NULL;

	if (g_strcmp0(name, "PinIncorrect") == 0) {
		g_object_ref(d->window);
		gtk_widget_set_sensitive(d->ok, FALSE);
		g_dbus_proxy_call(
		    G_DBUS_PROXY(d->key), "org.freedesktop.DBus.Properties.Get",
		    g_variant_new("(ss)", "org.certseal.CertSeal1.Key", "PinTriesLeft"),
		    G_DBUS_CALL_FLAGS_NONE, -1, NULL, on_tries_read, d);
		return;
	}
	gtk_widget_set_visible(d->unlock, g_strcmp0(name, "PinLocked") == 0);
	if (g_strcmp0(name, "PinLocked") == 0)
		text =
		    g_strdup(_("The key is locked after too many wrong passwords. Unlock it with "
			       "“Recover the password / unlock” on the home page."));
	else if (cs_error_is_key_removed(error))
		text = g_strdup(_("The key was removed. Insert it again and try again."));
	else if (g_strcmp0(name, "InvalidInput") == 0)
		text = cs_not_accepted_text(error);
	else
		text = g_strdup_printf(_("The certificate service refused: %s"), message);
	show_error(d, text);
}

static void
on_changed_pin(GObject *source, GAsyncResult *result, gpointer user_data)
{
	PinDialog *d = user_data;
	g_autoptr(GError) error = NULL;

	gtk_widget_set_sensitive(d->ok, TRUE);
	if (!cs_key_call_change_pin_finish(CS_KEY(source), result, &error)) {
		explain(d, error);
		g_object_unref(d->window);
		return;
	}
	cs_assistant_toast(d->a, _("The password was changed."));
	gtk_window_destroy(d->window);
	g_object_unref(d->window);
}

static void
on_logged_in(GObject *source, GAsyncResult *result, gpointer user_data)
{
	PinDialog *d = user_data;
	g_autoptr(GError) error = NULL;

	gtk_widget_set_sensitive(d->ok, TRUE);
	if (!cs_key_call_login_finish(CS_KEY(source), result, &error)) {
		explain(d, error);
		g_object_unref(d->window);
		return;
	}
	if (d->done != NULL)
		((LoginDone)d->done)(d->a, d->key, d->done_data);
	gtk_window_destroy(d->window);
	g_object_unref(d->window);
}

static void
on_ok(GtkButton *button, gpointer user_data)
{
	PinDialog *d = user_data;

	show_error(d, NULL);
	if (*entry_text(d->old_pin) == '\0') {
		show_error(d, _("Enter the key's password."));
		return;
	}
	if (d->kind == DIALOG_LOGIN) {
		gtk_widget_set_sensitive(d->ok, FALSE);
		g_object_ref(d->window);
		cs_key_call_login(d->key, entry_text(d->old_pin), NULL, on_logged_in, d);
		return;
	}
	if (strcmp(entry_text(d->new_pin), entry_text(d->repeat)) != 0) {
		show_error(d, _("The two new passwords differ."));
		return;
	}
	gtk_widget_set_sensitive(d->ok, FALSE);
	g_object_ref(d->window);
	cs_key_call_change_pin(d->key, entry_text(d->old_pin), entry_text(d->new_pin), NULL,
			       on_changed_pin, d);
}

static void
on_unlock(GtkButton *button, gpointer user_data)
{
	PinDialog *d = user_data;
	CsAssistant *a = d->a;

	gtk_window_destroy(d->window);
	cs_assistant_key_flow_start(a, "unlock");
}

static void
open_dialog(PinDialog *d)
{
	GtkWidget *window = adw_window_new();
	GtkWidget *outer = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
	GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
	GtkWidget *buttons = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
	GtkWidget *cancel = gtk_button_new_with_label(_("Cancel"));
	const char *title = d->kind == DIALOG_LOGIN ? _("Log in") : _("Change the password");
	g_autofree char *holder = cs_key_holder(d->key);
	g_autofree char *which = g_strdup_printf(
	    _("Key %s (%s)"), cs_key_get_serial(d->key),
	    holder != NULL ? holder : cs_vendor_name(d->a, cs_key_get_vendor(d->key)));

	d->window = GTK_WINDOW(window);
	gtk_window_set_title(d->window, title);
	gtk_window_set_modal(d->window, TRUE);
	gtk_window_set_transient_for(d->window, d->a->window);
	gtk_window_set_default_size(d->window, 420, -1);
	gtk_box_append(GTK_BOX(outer), adw_header_bar_new());
	gtk_box_append(GTK_BOX(box), cs_label_new(which, "heading"));
	d->old_pin = cs_password_entry_new(box, d->kind == DIALOG_LOGIN ? _("Certificate password")
									: _("Current password"));
	if (d->kind == DIALOG_CHANGE_PIN) {
		d->new_pin = cs_password_entry_new(box, _("New password"));
		d->repeat = cs_password_entry_new(box, _("New password again"));
	}
	d->error = cs_label_new("", "error");
	gtk_widget_set_visible(d->error, FALSE);
	gtk_box_append(GTK_BOX(box), d->error);

	d->ok = gtk_button_new_with_label(d->kind == DIALOG_LOGIN ? _("Log in") : _("Change"));
	gtk_widget_add_css_class(d->ok, "suggested-action");
	g_signal_connect(d->ok, "clicked", G_CALLBACK(on_ok), d);
	g_signal_connect_swapped(cancel, "clicked", G_CALLBACK(gtk_window_destroy), window);
	d->unlock = gtk_button_new_with_label(_("Recover the password / unlock"));
	gtk_widget_set_visible(d->unlock, FALSE);
	g_signal_connect(d->unlock, "clicked", G_CALLBACK(on_unlock), d);
	gtk_widget_set_halign(buttons, GTK_ALIGN_END);
	gtk_widget_set_margin_top(buttons, 12);
	gtk_box_append(GTK_BOX(buttons), cancel);
	gtk_box_append(GTK_BOX(buttons), d->unlock);
	gtk_box_append(GTK_BOX(buttons), d->ok);
	gtk_box_append(GTK_BOX(box), buttons);
	gtk_widget_set_margin_top(box, 12);
	gtk_widget_set_margin_bottom(box, 18);
	gtk_widget_set_margin_start(box, 18);
	gtk_widget_set_margin_end(box, 18);
	gtk_box_append(GTK_BOX(outer), box);
	adw_window_set_content(ADW_WINDOW(window), outer);
	gtk_window_set_default_widget(d->window, d->ok);
	g_object_set_data_full(G_OBJECT(window), "cs-pin-dialog", d,
			       (GDestroyNotify)pin_dialog_free);
	gtk_window_present(d->window);
}

void
cs_assistant_change_pin(CsAssistant *a, CsKey *key)
{
	PinDialog *d = g_new0(PinDialog, 1);

	d->a = a;
	d->kind = DIALOG_CHANGE_PIN;
	d->key = g_object_ref(key);
	open_dialog(d);
}

void
cs_assistant_login(CsAssistant *a, CsKey *key, GCallback done, gpointer user_data)
{
	PinDialog *d = g_new0(PinDialog, 1);

	d->a = a;
	d->kind = DIALOG_LOGIN;
	d->key = g_object_ref(key);
	d->done = done;
	d->done_data = user_data;
	open_dialog(d);
}
