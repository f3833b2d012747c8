/*
 * cs-assistant-util.c — small helpers of the assistant: the daemon's errors, a key's
 * holder, vendor names, dates, labels, password entries, a page's frame and Back button,
 * file choosers.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "cs-assistant.h"

#define CS_ERROR_PREFIX "org.certseal.Error."

/* The short name of a certseald error ("PinIncorrect"), or NULL for another error. */
const char *
cs_error_name(const GError *error)
{
	g_autofree char *remote = NULL;

	if (error == NULL || !g_dbus_error_is_remote_error(error))
		return NULL;
	remote = g_dbus_error_get_remote_error(error);
	if (remote == NULL || !g_str_has_prefix(remote, CS_ERROR_PREFIX))
		return NULL;
	return g_intern_string(remote + strlen(CS_ERROR_PREFIX));
}

/* The error's message without the D-Bus error name GDBus puts in front of it. */
char *
cs_error_text(const GError *error)
{
	g_autoptr(GError) copy = g_error_copy(error);

	g_dbus_error_strip_remote_error(copy);
	return g_strdup(copy->message);
}

/* Whether the daemon refused because the key is out (removed during the call, or none). */
gboolean
cs_error_is_key_removed(const GError *error)
{
	const char *name = cs_error_name(error);

	return g_strcmp0(name, "KeyRemoved") == 0 || g_strcmp0(name, "NoKey") == 0;
}

/* "Not accepted: …" with the error's message: what a page says when the daemon refuses a
 * step. */
char *
cs_not_accepted_text(const GError *error)
{
	g_autofree char *text = cs_error_text(error);

	return g_strdup_printf(_("Not accepted: %s"), text);
}

/* A certificate subject's holder: its CN, else the whole subject; NULL for none. */
char *
cs_subject_holder(const char *subject)
{
	g_auto(GStrv) parts = NULL;

	if (subject == NULL || *subject == '\0')
		return NULL;
	parts = g_strsplit_set(subject, ",/", -1);
	for (guint i = 0; parts[i] != NULL; i++) {
		const char *p = g_strstrip(parts[i]);
		if (g_str_has_prefix(p, "CN="))
			return g_strdup(p + 3);
	}
	return g_strdup(subject);
}

/* The holder of the certificate on @key; NULL when the key holds none. */
char *
cs_key_holder(CsKey *key)
{
	return cs_subject_holder(cs_key_get_certificate_subject(key));
}

/* The certificate's subject type, "org" when its subject names an organisation (O=), as
 * CreateOrder takes it. */
const char *
cs_key_subject_type(CsKey *key)
{
	const char *subject = cs_key_get_certificate_subject(key);

	return subject != NULL && strstr(subject, "O=") != NULL ? "org" : "person";
}

/* The vendor profile's name (Manager.Vendors) for @vendor_id, else the id itself. */
const char *
cs_vendor_name(CsAssistant *a, const char *vendor_id)
{
	GVariant *vendors = a->manager != NULL ? cs_manager_get_vendors(a->manager) : NULL;
	GVariantIter iter;
	const char *id, *name, *driver;

	if (vendors == NULL || vendor_id == NULL)
		return vendor_id != NULL ? vendor_id : "";
	g_variant_iter_init(&iter, vendors);
	while (g_variant_iter_next(&iter, "(&s&s&s)", &id, &name, &driver)) {
		if (strcmp(id, vendor_id) == 0)
			return name;
	}
	return vendor_id;
}

/* YYYY-MM-DD in local time. */
char *
cs_format_date(guint64 seconds)
{
	g_autoptr(GDateTime) t = g_date_time_new_from_unix_local((gint64)seconds);

	return t != NULL ? g_date_time_format(t, "%Y-%m-%d") : g_strdup("?");
}

GtkWidget *
cs_label_new(const char *text, const char *css_class)
{
	GtkWidget *label = gtk_label_new(text);

	gtk_label_set_xalign(GTK_LABEL(label), 0);
	gtk_label_set_wrap(GTK_LABEL(label), TRUE);
	if (css_class != NULL)
		gtk_widget_add_css_class(label, css_class);
	return label;
}

/* The file a file chooser's dialog accepted, opened for reading: a list that holds its fd,
 * and its path in @path. NULL when the dialog was not accepted or chose no local file
 * (@error_text NULL then), or when the file cannot be opened (@error_text says why). */
GUnixFDList *
cs_open_chosen_file(GtkNativeDialog *dialog, int response, char **path, char **error_text)
{
	g_autoptr(GFile) file = NULL;
	g_autofree char *chosen = NULL;
	int fd;

	*path = NULL;
	*error_text = NULL;
	if (response != GTK_RESPONSE_ACCEPT)
		return NULL;
	file = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(dialog));
	chosen = file != NULL ? g_file_get_path(file) : NULL;
	if (chosen == NULL)
		return NULL;
	fd = open(chosen, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*error_text = g_strdup_printf(_("Cannot open %s: %s"), chosen, g_strerror(errno));
		return NULL;
	}
	*path = g_steal_pointer(&chosen);
	return g_unix_fd_list_new_from_array(&fd, 1); /* takes @fd */
}

/* A password entry under its label, both appended to @box, with the peek icon. */
GtkWidget *
cs_password_entry_new(GtkWidget *box, const char *label_text)
{
	GtkWidget *label = cs_label_new(label_text, NULL);
	GtkWidget *entry = gtk_password_entry_new();

	gtk_password_entry_set_show_peek_icon(GTK_PASSWORD_ENTRY(entry), TRUE);
	gtk_accessible_update_relation(GTK_ACCESSIBLE(entry), GTK_ACCESSIBLE_RELATION_LABELLED_BY,
				       label, NULL, -1);
	gtk_box_append(GTK_BOX(box), label);
	gtk_box_append(GTK_BOX(box), entry);
	return entry;
}

/* A page's scrolled window: @box, with @margin above and below it and 12 at its sides, in a
 * clamp at most @width wide. */
GtkWidget *
cs_page_scroller(GtkWidget *box, int margin, int width)
{
	GtkWidget *scroller = gtk_scrolled_window_new();
	GtkWidget *clamp = adw_clamp_new();

	gtk_widget_set_margin_top(box, margin);
	gtk_widget_set_margin_bottom(box, margin);
	gtk_widget_set_margin_start(box, 12);
	gtk_widget_set_margin_end(box, 12);
	adw_clamp_set_maximum_size(ADW_CLAMP(clamp), width);
	adw_clamp_set_child(ADW_CLAMP(clamp), box);
	gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(scroller), clamp);
	return scroller;
}

static void
on_back_home(GtkButton *button, gpointer user_data)
{
	cs_assistant_go_home(user_data);
}

/* A page's "Back" button: it goes to the home page. */
GtkWidget *
cs_back_button_new(CsAssistant *a)
{
	GtkWidget *back = gtk_button_new_with_label(_("Back"));

	g_signal_connect(back, "clicked", G_CALLBACK(on_back_home), a);
	return back;
}

/* Shows a file chooser, modal, its answer to @on_response. */
void
cs_chooser_show(GtkFileChooserNative *chooser, GCallback on_response, gpointer user_data)
{
	gtk_native_dialog_set_modal(GTK_NATIVE_DIALOG(chooser), TRUE);
	g_signal_connect(chooser, "response", on_response, user_data);
	gtk_native_dialog_show(GTK_NATIVE_DIALOG(chooser));
}
