/*
 * cs-assistant-query.c — 订单查询, as the manual has it: choose the vendor, 单位 or 个人
 * and the ID number, 发送验证码 (Manager.SendQueryCode: the code goes to the phone on file),
 * type the code (FindOrders), then the subject's orders, newest first: state and next
 * steps in words, how the certificate password is delivered (masked by the daemon, shown
 * on request), the invoice saved as a PDF (GetInvoice), the order's history, and
 * 继续办理, which opens the order on the order page (cs_assistant_apply_open_order).
 *
 * The same page finds the certificates to replace (丢失补办: FindCertificates with the
 * code): 补办 on one creates the reissue order, for the reason chosen among the flow's, and
 * opens it on the order's step pages (cs-assistant-renew.c).
 *
 * The grant a code opens belongs to this process's bus connection, the one every proxy
 * of the assistant shares: the orders found can be continued from here while it runs.
 * What an order offers comes from its NextActions; nothing here decides it. The code
 * stays in its password entry and the call's arguments, never in a log or a label.
 */
#include <stdio.h>
#include <string.h>

#include "cs-assistant.h"

typedef struct {
	CsAssistant *a;
	GtkWidget *page;
	GPtrArray *vendor_radios; /* GtkCheckButton; the first is "all vendors" */
	GPtrArray *vendor_ids;	  /* as the radios; "" for all */
	GtkWidget *org;		  /* toggle: 单位数字证书 (else 个人数字证书) */
	GtkWidget *number, *number_error;
	GtkWidget *send, *sent;
	GtkWidget *code, *code_error, *find;
	GtkWidget *orders_heading, *orders;
	GtkWidget *status;
	guint generation;      /* of the latest FindOrders: rows of older ones are dropped */
	gboolean certificates; /* 丢失补办: the certificates, not the orders */
	GtkWidget *title, *intro;
	GVariant *reasons; /* the reissue flow's "reason" field (GetFlow) */
} Query;

/* A string property as the proxy has it, "" when it has none. */
static const char *
text_or_empty(const char *s)
{
	return s != NULL ? s : "";
}

static void
set_error(GtkWidget *label, const char *text)
{
	gtk_label_set_text(GTK_LABEL(label), text != NULL ? text : "");
	gtk_widget_set_visible(label, text != NULL && *text != '\0');
}

static const char *
subject_type(Query *q)
{
	return gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(q->org)) ? "org" : "person";
}

static const char *
vendor_id(Query *q)
{
	for (guint i = 0; i < q->vendor_radios->len; i++) {
		if (gtk_check_button_get_active(g_ptr_array_index(q->vendor_radios, i)))
			return g_ptr_array_index(q->vendor_ids, i);
	}
	return "";
}

static const char *
number_text(Query *q)
{
	return gtk_editable_get_text(GTK_EDITABLE(q->number));
}

/* The daemon's reason without the field it names in front ("code: wrong, …"). */
static const char *
reason_of(const char *message, const char *field)
{
	gsize n = strlen(field);

	if (strncmp(message, field, n) == 0 && message[n] == ':' && message[n + 1] == ' ')
		return message + n + 2;
	return message;
}

/* --- the code ------------------------------------------------------------------------ */

static void
on_code_sent(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Query *q = user_data;
	g_autoptr(GError) error = NULL;
	g_autofree char *masked = NULL;
	g_autofree char *text = NULL;

	gtk_widget_set_sensitive(q->send, TRUE);
	if (!cs_manager_call_send_query_code_finish(CS_MANAGER(source), &masked, result, &error)) {
		const char *name = cs_error_name(error);
		g_autofree char *message = cs_error_text(error);

		if (g_strcmp0(name, "NotFound") == 0)
			text = g_strdup_printf(_("No certificate business is on file for %s."),
					       number_text(q));
		else if (g_strcmp0(name, "InvalidInput") == 0)
			text = g_strdup_printf(_("Not a valid number: %s"),
					       reason_of(message, "id_number"));
		else if (g_strcmp0(name, "RateLimited") == 0)
			text = g_strdup_printf(_("No code can be sent now: %s"), message);
		else
			text = g_strdup_printf(_("The certificate service refused: %s"), message);
		set_error(q->number_error, text);
		return;
	}
	set_error(q->number_error, NULL);
	text = g_strdup_printf(_("A code was sent to %s. Type it below."), masked);
	gtk_label_set_text(GTK_LABEL(q->sent), text);
	gtk_widget_set_sensitive(q->find, TRUE);
	gtk_widget_grab_focus(q->code);
}

static void
on_send(GtkButton *button, gpointer user_data)
{
	Query *q = user_data;

	set_error(q->number_error, NULL);
	if (*number_text(q) == '\0') {
		set_error(q->number_error, _("Type the ID number."));
		return;
	}
	gtk_widget_set_sensitive(q->send, FALSE);
	gtk_label_set_text(GTK_LABEL(q->sent), "");
	cs_manager_call_send_query_code(q->a->manager, vendor_id(q), subject_type(q),
					number_text(q), NULL, on_code_sent, q);
}

/* --- an order's row ------------------------------------------------------------------ */

typedef struct {
	Query *q;
	GtkWidget *row;
	guint generation;
} RowLoad;

static void
on_continue(GtkButton *button, gpointer user_data)
{
	Query *q = user_data;

	cs_assistant_apply_open_order(q->a, g_object_get_data(G_OBJECT(button), "cs-order"));
}

typedef struct {
	Query *q;
	GFile *file;
} InvoiceSave;

/* The invoice, saved where the person chose. */
static void
on_invoice(GObject *source, GAsyncResult *result, gpointer user_data)
{
	InvoiceSave *save = user_data;
	Query *q = save->q;
	GFile *file = save->file;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = g_dbus_proxy_call_finish(G_DBUS_PROXY(source), result, &error);
	g_autoptr(GVariant) pdf = NULL;
	g_autofree char *path = g_file_get_path(file);
	g_autofree char *text = NULL;
	const guint8 *data;
	gsize len = 0;

	if (reply == NULL) {
		g_autofree char *message = cs_error_text(error);
		text = g_strdup_printf(_("No invoice: %s"), message);
	} else {
		pdf = g_variant_get_child_value(reply, 0);
		data = g_variant_get_fixed_array(pdf, &len, 1);
		if (!g_file_replace_contents(file, (const char *)data, len, NULL, FALSE,
					     G_FILE_CREATE_REPLACE_DESTINATION, NULL, NULL, &error))
			text = g_strdup_printf(_("Cannot save the invoice: %s"), error->message);
		else
			text = g_strdup_printf(_("The invoice was saved as %s."), path);
	}
	gtk_label_set_text(GTK_LABEL(q->status), text);
	cs_assistant_toast(q->a, text);
	g_object_unref(file);
	g_free(save);
}

static void
on_invoice_chosen(GtkNativeDialog *dialog, int response, gpointer user_data)
{
	Query *q = user_data;
	CsOrder *order = g_object_get_data(G_OBJECT(dialog), "cs-order");

	if (response == GTK_RESPONSE_ACCEPT) {
		InvoiceSave *save = g_new0(InvoiceSave, 1);
		save->q = q;
		save->file = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(dialog));
		if (save->file != NULL)
			/* Not the generated call: it keeps no length for an "ay". */
			g_dbus_proxy_call(G_DBUS_PROXY(order), "GetInvoice", NULL,
					  G_DBUS_CALL_FLAGS_NONE, -1, NULL, on_invoice, save);
		else
			g_free(save);
	}
	gtk_native_dialog_destroy(dialog);
	g_object_unref(dialog);
}

static void
on_save_invoice(GtkButton *button, gpointer user_data)
{
	Query *q = user_data;
	CsOrder *order = g_object_get_data(G_OBJECT(button), "cs-order");
	GtkFileChooserNative *chooser =
	    gtk_file_chooser_native_new(_("Save the invoice"), q->a->window,
					GTK_FILE_CHOOSER_ACTION_SAVE, _("_Save"), _("_Cancel"));
	GtkFileFilter *filter = gtk_file_filter_new();
	g_autofree char *name = g_strdup_printf("invoice-%s.pdf", cs_order_get_id(order));

	gtk_file_filter_set_name(filter, _("PDF documents"));
	gtk_file_filter_add_mime_type(filter, "application/pdf");
	gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(chooser), filter);
	g_object_unref(filter);
	gtk_file_chooser_set_current_name(GTK_FILE_CHOOSER(chooser), name);
	g_object_set_data_full(G_OBJECT(chooser), "cs-order", g_object_ref(order), g_object_unref);
	cs_chooser_show(chooser, G_CALLBACK(on_invoice_chosen), q);
}

static void
on_reveal(GtkToggleButton *button, gpointer user_data)
{
	GtkWidget *label = user_data;
	const char *shown = g_object_get_data(G_OBJECT(label), "cs-text");
	gboolean on = gtk_toggle_button_get_active(button);
	g_autofree char *text = g_strdup_printf(_("Password delivery: %s"), on ? shown : "••••••");

	gtk_label_set_text(GTK_LABEL(label), text);
	gtk_button_set_label(GTK_BUTTON(button), on ? _("Hide") : _("Show"));
}

static GtkWidget *
history_expander(CsOrder *order)
{
	GtkWidget *expander = gtk_expander_new(_("Order details"));
	GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 2);
	GVariant *history = cs_order_get_history(order);
	GVariantIter iter;
	const char *state, *what;
	guint64 when;

	if (history != NULL) {
		g_variant_iter_init(&iter, history);
		while (g_variant_iter_next(&iter, "(t&s&s)", &when, &state, &what)) {
			g_autoptr(GDateTime) t = g_date_time_new_from_unix_local((gint64)when);
			g_autofree char *at =
			    t != NULL ? g_date_time_format(t, "%Y-%m-%d %H:%M") : g_strdup("?");
			g_autofree char *line =
			    g_strdup_printf("%s  %s  %s", at, cs_state_text(state), what);
			gtk_box_append(GTK_BOX(box), cs_label_new(line, "dim-label"));
		}
	}
	gtk_expander_set_child(GTK_EXPANDER(expander), box);
	return expander;
}

static void
fill_row(Query *q, GtkWidget *row, CsOrder *order, const char *path)
{
	GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 4);
	GtkWidget *buttons = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
	const char *id = text_or_empty(cs_order_get_id(order));
	const char *const *next = cs_order_get_next_actions(order);
	const char *delivery = text_or_empty(cs_order_get_password_delivery(order));
	const char *order_vendor = text_or_empty(cs_order_get_vendor(order));
	const char *note = text_or_empty(cs_order_get_review_note(order));
	const char *tracking = text_or_empty(cs_order_get_tracking_number(order));
	g_autofree char *title =
	    g_strdup_printf(_("Order %s: %s"), id, cs_kind_text(cs_order_get_kind(order)));
	g_autofree char *state =
	    g_strdup_printf(_("State: %s"), cs_state_text(cs_order_get_state(order)));
	g_autofree char *steps = cs_actions_text(next);
	g_autofree char *then = g_strdup_printf(_("Next: %s"), steps);
	g_autofree char *vendor = g_strdup_printf(
	    _("Vendor: %s"), *order_vendor ? cs_vendor_name(q->a, order_vendor) : "—");
	g_autofree char *date = cs_format_date(cs_order_get_created_at(order));
	g_autofree char *created = g_strdup_printf(_("Created: %s"), date);
	g_autofree char *name = g_strdup_printf(_("Order %s"), id);
	GtkWidget *line;

	gtk_box_append(GTK_BOX(box), cs_label_new(title, "heading"));
	line = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 18);
	gtk_box_append(GTK_BOX(line), cs_label_new(state, NULL));
	gtk_box_append(GTK_BOX(line), cs_label_new(vendor, NULL));
	gtk_box_append(GTK_BOX(line), cs_label_new(created, NULL));
	gtk_box_append(GTK_BOX(box), line);
	gtk_box_append(GTK_BOX(box), cs_label_new(then, NULL));
	if (*note != '\0') {
		g_autofree char *text = g_strdup_printf(_("Reviewer's note: %s"), note);
		gtk_box_append(GTK_BOX(box), cs_label_new(text, NULL));
	}
	if (*tracking != '\0') {
		g_autofree char *text = g_strdup_printf(_("Tracking number: %s"), tracking);
		gtk_box_append(GTK_BOX(box), cs_label_new(text, NULL));
	}
	if (*delivery != '\0') {
		GtkWidget *shown = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
		GtkWidget *label = cs_label_new("", NULL);
		GtkWidget *reveal = gtk_toggle_button_new_with_label(_("Show"));
		g_autofree char *reveal_name =
		    g_strdup_printf(_("Show the password delivery of %s"), id);

		g_object_set_data_full(G_OBJECT(label), "cs-text", cs_delivery_text(delivery),
				       g_free);
		gtk_widget_set_hexpand(label, TRUE);
		gtk_widget_set_valign(reveal, GTK_ALIGN_CENTER);
		g_signal_connect(reveal, "toggled", G_CALLBACK(on_reveal), label);
		on_reveal(GTK_TOGGLE_BUTTON(reveal), label);
		gtk_accessible_update_property(GTK_ACCESSIBLE(reveal),
					       GTK_ACCESSIBLE_PROPERTY_LABEL, reveal_name, -1);
		gtk_box_append(GTK_BOX(shown), label);
		gtk_box_append(GTK_BOX(shown), reveal);
		gtk_box_append(GTK_BOX(box), shown);
	}
	gtk_box_append(GTK_BOX(box), history_expander(order));

	if (next != NULL && next[0] != NULL) {
		GtkWidget *go = gtk_button_new_with_label(_("Continue"));
		g_autofree char *go_name = g_strdup_printf(_("Continue order %s"), id);

		gtk_widget_add_css_class(go, "suggested-action");
		gtk_accessible_update_property(GTK_ACCESSIBLE(go), GTK_ACCESSIBLE_PROPERTY_LABEL,
					       go_name, -1);
		g_object_set_data_full(G_OBJECT(go), "cs-order", g_strdup(path), g_free);
		g_signal_connect(go, "clicked", G_CALLBACK(on_continue), q);
		gtk_box_append(GTK_BOX(buttons), go);
	}
	if (cs_order_get_invoice_available(order)) {
		GtkWidget *invoice = gtk_button_new_with_label(_("Save the invoice…"));
		g_autofree char *invoice_name = g_strdup_printf(_("Save the invoice of %s"), id);

		gtk_accessible_update_property(GTK_ACCESSIBLE(invoice),
					       GTK_ACCESSIBLE_PROPERTY_LABEL, invoice_name, -1);
		g_object_set_data_full(G_OBJECT(invoice), "cs-order", g_object_ref(order),
				       g_object_unref);
		g_signal_connect(invoice, "clicked", G_CALLBACK(on_save_invoice), q);
		gtk_box_append(GTK_BOX(buttons), invoice);
	}
	gtk_box_append(GTK_BOX(box), buttons);
	gtk_widget_set_margin_top(box, 10);
	gtk_widget_set_margin_bottom(box, 10);
	gtk_widget_set_margin_start(box, 12);
	gtk_widget_set_margin_end(box, 12);
	gtk_list_box_row_set_child(GTK_LIST_BOX_ROW(row), box);
	gtk_list_box_row_set_activatable(GTK_LIST_BOX_ROW(row), FALSE);
	gtk_accessible_update_property(GTK_ACCESSIBLE(row), GTK_ACCESSIBLE_PROPERTY_LABEL, name,
				       -1);
}

static void
on_order_proxy(GObject *source, GAsyncResult *result, gpointer user_data)
{
	RowLoad *r = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(CsOrder) order = cs_order_proxy_new_finish(result, &error);

	if (r->generation == r->q->generation) {
		if (order != NULL) {
			fill_row(r->q, r->row, order,
				 g_dbus_proxy_get_object_path(G_DBUS_PROXY(order)));
		} else {
			g_autofree char *text =
			    g_strdup_printf(_("Cannot read the order: %s"), error->message);
			gtk_list_box_row_set_child(GTK_LIST_BOX_ROW(r->row),
						   cs_label_new(text, "error"));
		}
	}
	g_object_unref(r->row);
	g_free(r);
}

/* --- the orders ---------------------------------------------------------------------- */

static void
clear_orders(Query *q)
{
	GtkWidget *child;

	q->generation++;
	while ((child = gtk_widget_get_first_child(q->orders)) != NULL)
		gtk_list_box_remove(GTK_LIST_BOX(q->orders), child);
	gtk_widget_set_visible(q->orders_heading, FALSE);
	gtk_widget_set_visible(q->orders, FALSE);
}

/* FindOrders' or FindCertificates' refusal of the code, in words. */
static void
show_code_error(Query *q, const GError *error)
{
	const char *name = cs_error_name(error);
	g_autofree char *message = cs_error_text(error);
	g_autofree char *text = NULL;
	int left = -1;
	/* The tries left as CodeInvalid gives them ("code: wrong, 4 tries left"). */
	if (g_strcmp0(name, "CodeInvalid") == 0 &&
	    sscanf(reason_of(message, "code"), "wrong, %d tries left", &left) == 1)
		text = g_strdup_printf(
		    g_dngettext(GETTEXT_PACKAGE,
				"The code is not right: %d try left for this code.",
				"The code is not right: %d tries left for this code.",
				(gulong)MAX(left, 0)),
		    left);
	else if (g_strcmp0(name, "CodeInvalid") == 0)
		text = g_strdup_printf(_("The code is not right: %s"), reason_of(message, "code"));
	else if (g_strcmp0(name, "CodeExpired") == 0)
		text = g_strdup(_("The code has expired: send a new one."));
	else if (g_strcmp0(name, "TooManyAttempts") == 0)
		text = g_strdup(_("Too many wrong codes: send a new one."));
	else
		text = g_strdup_printf(_("The certificate service refused: %s"), message);
	set_error(q->code_error, text);
}

static void
on_found(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Query *q = user_data;
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) paths = NULL;
	g_autofree char *heading = NULL;
	guint n;

	gtk_widget_set_sensitive(q->find, TRUE);
	if (!cs_manager_call_find_orders_finish(CS_MANAGER(source), &paths, result, &error)) {
		show_code_error(q, error);
		return;
	}
	set_error(q->code_error, NULL);
	n = g_strv_length(paths);
	heading = g_strdup_printf(g_dngettext(GETTEXT_PACKAGE, "%u order", "%u orders", n), n);
	gtk_label_set_text(GTK_LABEL(q->orders_heading), heading);
	gtk_widget_set_visible(q->orders_heading, TRUE);
	gtk_widget_set_visible(q->orders, TRUE);
	for (guint i = 0; i < n; i++) {
		RowLoad *r = g_new0(RowLoad, 1);

		r->q = q;
		r->generation = q->generation;
		r->row = g_object_ref(gtk_list_box_row_new());
		gtk_list_box_append(GTK_LIST_BOX(q->orders), r->row);
		cs_order_proxy_new_for_bus(q->a->bus_type, G_DBUS_PROXY_FLAGS_NONE, CS_BUS_NAME,
					   paths[i], NULL, on_order_proxy, r);
	}
}

/* --- 丢失补办: the certificates found, 补办 on one ------------------------------------ */

static void
on_reissue_created(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Query *q = user_data;
	g_autoptr(GError) error = NULL;
	g_autofree char *path = NULL;

	if (!cs_manager_call_create_order_finish(CS_MANAGER(source), &path, result, &error)) {
		g_autofree char *text = cs_not_accepted_text(error);
		gtk_label_set_text(GTK_LABEL(q->status), text);
		return;
	}
	gtk_label_set_text(GTK_LABEL(q->status), "");
	cs_assistant_key_flow_open(q->a, "reissue", path);
}

static void
on_reissue(GtkButton *button, gpointer user_data)
{
	Query *q = user_data;
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
	g_variant_builder_add(
	    &b, "{sv}", "certificate_serial",
	    g_variant_new_string(g_object_get_data(G_OBJECT(button), "cs-serial")));
	g_variant_builder_add(
	    &b, "{sv}", "reason",
	    g_variant_new_string(g_object_get_data(G_OBJECT(button), "cs-reason")));
	cs_manager_call_create_order(q->a->manager, "reissue", subject_type(q),
				     g_variant_builder_end(&b), NULL, on_reissue_created, q);
}

/* A certificate's row: what it is, and 补办 for each reason the flow offers. */
static GtkWidget *
certificate_row(Query *q,
		const char *serial,
		const char *subject,
		const char *vendor,
		const char *status,
		guint64 not_after)
{
	GtkWidget *row = gtk_list_box_row_new();
	GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 4);
	GtkWidget *buttons = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
	g_autofree char *until = cs_format_date(not_after);
	g_autofree char *line = g_strdup_printf(_("Certificate %s"), serial);
	g_autofree char *holder = cs_subject_holder(subject);
	g_autofree char *what =
	    g_strdup_printf(_("%s — %s, valid until %s"), holder != NULL ? holder : "",
			    cs_vendor_name(q->a, vendor), until);
	g_autofree const char **values = NULL;
	g_autofree const char **labels = NULL;

	gtk_box_append(GTK_BOX(box), cs_label_new(line, "heading"));
	gtk_box_append(GTK_BOX(box), cs_label_new(what, NULL));
	gtk_box_append(GTK_BOX(box), cs_label_new(cs_certificate_status_text(status), "dim-label"));
	if (q->reasons != NULL) {
		g_variant_lookup(q->reasons, "choices", "^a&s", &values);
		g_variant_lookup(q->reasons,
				 q->a->chinese ? "choice_labels_zh" : "choice_labels_en", "^a&s",
				 &labels);
	}
	for (guint i = 0; values != NULL && values[i] != NULL; i++) {
		g_autofree char *label = g_strdup_printf(
		    _("Replace (%s)"),
		    labels != NULL && i < g_strv_length((char **)labels) ? labels[i] : values[i]);
		GtkWidget *button = gtk_button_new_with_label(label);

		g_object_set_data_full(G_OBJECT(button), "cs-serial", g_strdup(serial), g_free);
		g_object_set_data_full(G_OBJECT(button), "cs-reason", g_strdup(values[i]), g_free);
		g_signal_connect(button, "clicked", G_CALLBACK(on_reissue), q);
		gtk_box_append(GTK_BOX(buttons), button);
	}
	gtk_box_append(GTK_BOX(box), buttons);
	gtk_widget_set_margin_top(box, 8);
	gtk_widget_set_margin_bottom(box, 8);
	gtk_widget_set_margin_start(box, 12);
	gtk_widget_set_margin_end(box, 12);
	gtk_list_box_row_set_child(GTK_LIST_BOX_ROW(row), box);
	gtk_accessible_update_property(GTK_ACCESSIBLE(row), GTK_ACCESSIBLE_PROPERTY_LABEL, line,
				       -1);
	return row;
}

static void
on_certificates(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Query *q = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) found = NULL;
	g_autofree char *heading = NULL;
	const char *serial, *subject, *vendor, *status;
	guint64 not_before, not_after;
	GVariantIter iter;
	guint n;

	gtk_widget_set_sensitive(q->find, TRUE);
	if (!cs_manager_call_find_certificates_finish(CS_MANAGER(source), &found, result, &error)) {
		show_code_error(q, error);
		return;
	}
	set_error(q->code_error, NULL);
	n = (guint)g_variant_n_children(found);
	heading = g_strdup_printf(
	    g_dngettext(GETTEXT_PACKAGE, "%u certificate", "%u certificates", n), n);
	gtk_label_set_text(GTK_LABEL(q->orders_heading), heading);
	gtk_widget_set_visible(q->orders_heading, TRUE);
	gtk_widget_set_visible(q->orders, TRUE);
	g_variant_iter_init(&iter, found);
	while (g_variant_iter_next(&iter, "(&s&s&s&stt)", &serial, &subject, &vendor, &status,
				   &not_before, &not_after))
		gtk_list_box_append(GTK_LIST_BOX(q->orders),
				    certificate_row(q, serial, subject, vendor, status, not_after));
}

static void
on_reissue_flow(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Query *q = user_data;
	g_autoptr(GVariant) flow = NULL;
	g_autoptr(GVariant) fields = NULL;
	GVariantIter iter;
	GVariant *spec;

	if (!cs_manager_call_get_flow_finish(CS_MANAGER(source), &flow, result, NULL))
		return;
	fields = g_variant_lookup_value(flow, "fields", G_VARIANT_TYPE("aa{sv}"));
	if (fields == NULL)
		return;
	g_variant_iter_init(&iter, fields);
	while ((spec = g_variant_iter_next_value(&iter)) != NULL) {
		if (g_strcmp0(cs_dict_string(spec, "name"), "reason") == 0) {
			g_clear_pointer(&q->reasons, g_variant_unref);
			q->reasons = g_variant_ref(spec);
		}
		g_variant_unref(spec);
	}
}

static void
on_find(GtkButton *button, gpointer user_data)
{
	Query *q = user_data;
	const char *code = gtk_editable_get_text(GTK_EDITABLE(q->code));

	set_error(q->code_error, NULL);
	if (*code == '\0') {
		set_error(q->code_error, _("Type the code from the SMS."));
		return;
	}
	clear_orders(q);
	gtk_widget_set_sensitive(q->find, FALSE);
	if (q->certificates)
		cs_manager_call_find_certificates(q->a->manager, vendor_id(q), subject_type(q),
						  number_text(q), code, NULL, on_certificates, q);
	else
		cs_manager_call_find_orders(q->a->manager, vendor_id(q), subject_type(q),
					    number_text(q), code, NULL, on_found, q);
	gtk_editable_set_text(GTK_EDITABLE(q->code), "");
}

/* --- the page ------------------------------------------------------------------------ */

static GtkWidget *
vendor_choice(Query *q)
{
	GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 2);
	GtkWidget *caption = cs_label_new(_("Vendor"), "heading");
	GVariant *vendors = q->a->manager != NULL ? cs_manager_get_vendors(q->a->manager) : NULL;
	GtkWidget *all = gtk_check_button_new_with_label(_("All vendors"));
	GVariantIter iter;
	const char *id, *name, *driver;

	q->vendor_radios = g_ptr_array_new();
	q->vendor_ids = g_ptr_array_new_with_free_func(g_free);
	gtk_box_append(GTK_BOX(box), caption);
	gtk_check_button_set_active(GTK_CHECK_BUTTON(all), TRUE);
	g_ptr_array_add(q->vendor_radios, all);
	g_ptr_array_add(q->vendor_ids, g_strdup(""));
	gtk_box_append(GTK_BOX(box), all);
	if (vendors != NULL) {
		g_variant_iter_init(&iter, vendors);
		while (g_variant_iter_next(&iter, "(&s&s&s)", &id, &name, &driver)) {
			GtkWidget *radio = gtk_check_button_new_with_label(name);
			gtk_check_button_set_group(GTK_CHECK_BUTTON(radio), GTK_CHECK_BUTTON(all));
			g_ptr_array_add(q->vendor_radios, radio);
			g_ptr_array_add(q->vendor_ids, g_strdup(id));
			gtk_box_append(GTK_BOX(box), radio);
		}
	}
	return box;
}

static Query *
query_page(CsAssistant *a)
{
	Query *q = g_new0(Query, 1);
	GtkWidget *scroller;
	GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 12);
	GtkWidget *subjects = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 0);
	GtkWidget *person = gtk_toggle_button_new_with_label(_("Personal certificate"));
	GtkWidget *row, *label, *back;

	q->a = a;
	q->title = cs_label_new(_("Look up orders"), "title-2");
	gtk_box_append(GTK_BOX(box), q->title);
	q->intro = cs_label_new("", NULL);
	gtk_box_append(GTK_BOX(box), q->intro);
	gtk_box_append(GTK_BOX(box), vendor_choice(q));

	q->org = gtk_toggle_button_new_with_label(_("Organisation certificate"));
	gtk_toggle_button_set_group(GTK_TOGGLE_BUTTON(person), GTK_TOGGLE_BUTTON(q->org));
	gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(q->org), TRUE);
	gtk_widget_add_css_class(subjects, "linked");
	gtk_box_append(GTK_BOX(subjects), q->org);
	gtk_box_append(GTK_BOX(subjects), person);
	gtk_box_append(GTK_BOX(box), subjects);

	label = cs_label_new(_("ID number (unified social credit code or resident ID)"), "heading");
	gtk_box_append(GTK_BOX(box), label);
	row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
	q->number = gtk_entry_new();
	gtk_entry_set_max_length(GTK_ENTRY(q->number), 18);
	gtk_widget_set_hexpand(q->number, TRUE);
	gtk_accessible_update_relation(GTK_ACCESSIBLE(q->number),
				       GTK_ACCESSIBLE_RELATION_LABELLED_BY, label, NULL, -1);
	q->send = gtk_button_new_with_label(_("Send the code"));
	g_signal_connect(q->send, "clicked", G_CALLBACK(on_send), q);
	gtk_box_append(GTK_BOX(row), q->number);
	gtk_box_append(GTK_BOX(row), q->send);
	gtk_box_append(GTK_BOX(box), row);
	q->number_error = cs_label_new("", "error");
	gtk_widget_set_visible(q->number_error, FALSE);
	gtk_accessible_update_relation(GTK_ACCESSIBLE(q->number),
				       GTK_ACCESSIBLE_RELATION_DESCRIBED_BY, q->number_error, NULL,
				       -1);
	gtk_box_append(GTK_BOX(box), q->number_error);
	q->sent = cs_label_new("", NULL);
	gtk_box_append(GTK_BOX(box), q->sent);

	label = cs_label_new(_("The code in the SMS"), "heading");
	gtk_box_append(GTK_BOX(box), label);
	row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
	q->code = gtk_password_entry_new();
	gtk_password_entry_set_show_peek_icon(GTK_PASSWORD_ENTRY(q->code), TRUE);
	gtk_widget_set_hexpand(q->code, TRUE);
	gtk_accessible_update_relation(GTK_ACCESSIBLE(q->code), GTK_ACCESSIBLE_RELATION_LABELLED_BY,
				       label, NULL, -1);
	q->find = gtk_button_new_with_label(_("Show the orders"));
	gtk_widget_add_css_class(q->find, "suggested-action");
	gtk_widget_set_sensitive(q->find, FALSE);
	g_signal_connect(q->find, "clicked", G_CALLBACK(on_find), q);
	g_signal_connect_swapped(q->code, "activate", G_CALLBACK(gtk_widget_activate), q->find);
	gtk_box_append(GTK_BOX(row), q->code);
	gtk_box_append(GTK_BOX(row), q->find);
	gtk_box_append(GTK_BOX(box), row);
	q->code_error = cs_label_new("", "error");
	gtk_widget_set_visible(q->code_error, FALSE);
	gtk_accessible_update_relation(
	    GTK_ACCESSIBLE(q->code), GTK_ACCESSIBLE_RELATION_DESCRIBED_BY, q->code_error, NULL, -1);
	gtk_box_append(GTK_BOX(box), q->code_error);

	q->orders_heading = cs_label_new("", "title-4");
	gtk_widget_set_visible(q->orders_heading, FALSE);
	gtk_box_append(GTK_BOX(box), q->orders_heading);
	q->orders = gtk_list_box_new();
	gtk_widget_add_css_class(q->orders, "boxed-list");
	gtk_list_box_set_selection_mode(GTK_LIST_BOX(q->orders), GTK_SELECTION_NONE);
	gtk_accessible_update_property(GTK_ACCESSIBLE(q->orders), GTK_ACCESSIBLE_PROPERTY_LABEL,
				       _("Orders found"), -1);
	gtk_list_box_set_placeholder(GTK_LIST_BOX(q->orders),
				     cs_label_new(_("No orders for this number."), "dim-label"));
	gtk_widget_set_visible(q->orders, FALSE);
	gtk_box_append(GTK_BOX(box), q->orders);
	q->status = cs_label_new("", NULL);
	gtk_box_append(GTK_BOX(box), q->status);

	back = cs_back_button_new(a);
	gtk_widget_set_halign(back, GTK_ALIGN_END);
	gtk_box_append(GTK_BOX(box), back);

	scroller = cs_page_scroller(box, 18, 680);
	q->page = scroller;
	gtk_stack_add_named(a->stack, scroller, "query");
	return q;
}

/* The page as it was left (a grant lasts while the assistant's connection does), shown for
 * the orders (订单查询) or for the certificates to replace (丢失补办). */
static void
query_show(CsAssistant *a, gboolean certificates)
{
	Query *q = g_object_get_data(G_OBJECT(a->stack), "cs-query");

	if (q == NULL) {
		q = query_page(a);
		g_object_set_data(G_OBJECT(a->stack), "cs-query", q);
	}
	if (q->certificates != certificates)
		clear_orders(q);
	q->certificates = certificates;
	gtk_label_set_text(GTK_LABEL(q->title),
			   certificates ? _("Replace a lost key") : _("Look up orders"));
	gtk_label_set_text(
	    GTK_LABEL(q->intro),
	    certificates
		? _("Find the certificate of the lost or damaged key with a code sent to the "
		    "handler's phone, then choose Replace on it.")
		: _("Find the orders of an organisation or a person with a code sent to the "
		    "handler's phone: see how far they are, carry on with an unfinished one, save "
		    "the invoice."));
	gtk_button_set_label(GTK_BUTTON(q->find),
			     certificates ? _("Show the certificates") : _("Show the orders"));
	if (certificates && q->reasons == NULL && a->manager != NULL)
		cs_manager_call_get_flow(a->manager, "reissue", "org", NULL, on_reissue_flow, q);
	gtk_stack_set_visible_child_name(a->stack, "query");
	gtk_widget_grab_focus(q->number);
}

/* 订单查询 from the home page. */
void
cs_assistant_query_start(CsAssistant *a)
{
	query_show(a, FALSE);
}

/* 丢失补办 from the home page: the certificate found first, then its reissue order. */
void
cs_assistant_reissue_start(CsAssistant *a)
{
	query_show(a, TRUE);
}
