/*
 * cs-assistant-apply.c — an application form (证书申请 and the other flows' forms), built
 * from the daemon's description of the flow (Manager.GetFlow: the fields, their labels,
 * types, choices, required marks and lengths) and checked as it is typed
 * (Manager.ValidateFields: the daemon's reason shown under the field it names). 下一步
 * creates the order (CreateOrder); what the order needs next comes from its NextActions
 * and Missing.
 *
 * Nothing here knows a field: the form (cs-assistant-form.c) is whatever the flow declares;
 * the payment step is cs-assistant-pay.c's.
 *
 * An order that exists already (cs_assistant_apply_open_order: found by an order query, or
 * made by another page) opens on the same page without the form: its state, next steps and
 * what is still missing in words, the steps it offers, its materials named as its flow
 * names them.
 */
#include <string.h>

#include "cs-assistant.h"

typedef struct {
	CsAssistant *a;
	char *kind;
	const char *subject; /* "org" or "person" */
	GtkWidget *page;
	GtkWidget *title;
	CsForm *form;
	GtkWidget *subjects;
	GtkWidget *status;
	GtkWidget *next;
	GVariant *flow; /* Manager.GetFlow's answer */
	CsOrder *proxy; /* the order, once created */
	/* the order's part of the page */
	GtkWidget *order_box, *order_status, *order_next, *order_missing, *materials, *sms,
	    *sms_code, *payment;
	GtkWidget *confirm, *submit, *cancel;
	gboolean order_only; /* an existing order: no form */
} Apply;

static void on_choose_material(GtkButton *button, gpointer user_data);
static void show_order(Apply *p);

static void
set_status(Apply *p, const char *text, gboolean error)
{
	gtk_label_set_text(GTK_LABEL(p->status), text != NULL ? text : "");
	if (error)
		gtk_widget_add_css_class(p->status, "error");
	else
		gtk_widget_remove_css_class(p->status, "error");
}

static void
form_status(gpointer user_data, const char *text, gboolean error)
{
	set_status(user_data, text, error);
}

/* --- the form from GetFlow ---------------------------------------------------------------- */

static void
on_flow(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Apply *p = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) flow = NULL;

	if (!cs_manager_call_get_flow_finish(CS_MANAGER(source), &flow, result, &error)) {
		g_autofree char *text = cs_error_text(error);
		set_status(p, text, TRUE);
		return;
	}
	g_clear_pointer(&p->flow, g_variant_unref);
	p->flow = g_variant_ref(flow);
	if (p->a->chinese && *cs_dict_string(flow, "title_zh") != '\0')
		gtk_label_set_text(GTK_LABEL(p->title), cs_dict_string(flow, "title_zh"));
	cs_form_fill(p->form, p->kind, p->subject, flow, NULL);
	if (p->order_only) {
		if (p->proxy != NULL)
			show_order(p); /* what it misses, named as the flow names it */
		return;
	}
	gtk_widget_set_sensitive(p->next, TRUE);
	set_status(p, _("Fields marked * are required."), FALSE);
}

static void
load_flow(Apply *p, const char *subject)
{
	p->subject = subject;
	gtk_widget_set_sensitive(p->next, FALSE);
	cs_manager_call_get_flow(p->a->manager, p->kind, subject, NULL, on_flow, p);
}

static void
on_subject(GtkToggleButton *button, gpointer user_data)
{
	Apply *p = user_data;

	if (gtk_toggle_button_get_active(button))
		load_flow(p, g_object_get_data(G_OBJECT(button), "cs-subject"));
}

/* --- the order ------------------------------------------------------------------------- */

static gboolean
can(Apply *p, const char *action)
{
	const char *const *next = p->proxy != NULL ? cs_order_get_next_actions(p->proxy) : NULL;

	return next != NULL && g_strv_contains(next, action);
}

/* The order's materials as the flow names them: attached or still needed. */
static void
show_materials(Apply *p)
{
	const char *const *attached = cs_order_get_materials(p->proxy);
	g_autoptr(GVariant) materials = NULL;
	GtkWidget *child;
	GVariantIter iter;
	GVariant *spec;

	while ((child = gtk_widget_get_first_child(p->materials)) != NULL)
		gtk_box_remove(GTK_BOX(p->materials), child);
	if (p->flow == NULL || !can(p, "AttachMaterial"))
		return;
	materials = g_variant_lookup_value(p->flow, "materials", G_VARIANT_TYPE("aa{sv}"));
	if (materials == NULL)
		return;
	gtk_box_append(GTK_BOX(p->materials), cs_label_new(_("Materials"), "title-4"));
	g_variant_iter_init(&iter, materials);
	while ((spec = g_variant_iter_next_value(&iter)) != NULL) {
		const char *kind = cs_dict_string(spec, "kind");
		const char *label = cs_dict_string(spec, p->a->chinese ? "label_zh" : "label_en");
		gboolean required = FALSE, done;
		GtkWidget *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
		GtkWidget *button;
		g_autofree char *text = NULL;
		g_autofree char *button_name = NULL;

		g_variant_lookup(spec, "required", "b", &required);
		done = attached != NULL && g_strv_contains(attached, kind);
		text = g_strdup_printf("%s%s — %s", *label ? label : kind, required ? " *" : "",
				       done ? _("attached") : _("not attached yet"));
		child = cs_label_new(text, NULL);
		gtk_widget_set_hexpand(child, TRUE);
		gtk_box_append(GTK_BOX(row), child);
		button = gtk_button_new_with_label(done ? _("Replace…") : _("Choose a file…"));
		button_name = g_strdup_printf(done ? _("Replace the file for %s")
						   : _("Choose the file for %s"),
					      *label ? label : kind);
		gtk_accessible_update_property(GTK_ACCESSIBLE(button),
					       GTK_ACCESSIBLE_PROPERTY_LABEL, button_name, -1);
		g_object_set_data_full(G_OBJECT(button), "cs-material", g_strdup(kind), g_free);
		g_signal_connect(button, "clicked", G_CALLBACK(on_choose_material), p);
		gtk_box_append(GTK_BOX(row), button);
		gtk_box_append(GTK_BOX(p->materials), row);
		g_variant_unref(spec);
	}
}

/* A field's or material's label as the flow gives it, else its name. */
static const char *
flow_label(Apply *p, const char *name)
{
	static const char *const lists[] = {"fields", "materials"};
	static const char *const keys[] = {"name", "kind"};

	for (guint l = 0; p->flow != NULL && l < G_N_ELEMENTS(lists); l++) {
		g_autoptr(GVariant) specs =
		    g_variant_lookup_value(p->flow, lists[l], G_VARIANT_TYPE("aa{sv}"));
		GVariantIter iter;
		GVariant *spec;

		if (specs == NULL)
			continue;
		g_variant_iter_init(&iter, specs);
		while ((spec = g_variant_iter_next_value(&iter)) != NULL) {
			const char *label =
			    cs_dict_string(spec, p->a->chinese ? "label_zh" : "label_en");
			gboolean match = strcmp(cs_dict_string(spec, keys[l]), name) == 0 && *label;

			g_variant_unref(spec); /* the flow holds the string */
			if (match)
				return label;
		}
	}
	return name;
}

/* A step on the key itself (Download, Unlock): the pages of an order for a key take the
 * order over (cs-assistant-renew.c). TRUE when they did. */
static gboolean
hand_to_key_pages(Apply *p)
{
	g_autofree char *path = NULL;
	g_autofree char *kind = NULL;

	if (!can(p, "Download") && !can(p, "Unlock"))
		return FALSE;
	path = g_strdup(g_dbus_proxy_get_object_path(G_DBUS_PROXY(p->proxy)));
	kind = g_strdup(cs_order_get_kind(p->proxy));
	g_signal_handlers_disconnect_by_data(p->proxy, p);
	g_clear_object(&p->proxy);
	cs_payment_set_order(p->payment, NULL);
	cs_assistant_key_flow_open(p->a, kind, path);
	return TRUE;
}

static void
show_order(Apply *p)
{
	CsOrder *order = p->proxy;
	const char *const *missing = cs_order_get_missing(order);
	g_autofree char *next = cs_actions_text(cs_order_get_next_actions(order));
	GString *needed_list = g_string_new(NULL);
	g_autofree char *needed_text = NULL;
	g_autofree char *state = NULL;
	g_autofree char *then = NULL;
	g_autofree char *needed = NULL;

	if (hand_to_key_pages(p)) {
		g_string_free(needed_list, TRUE);
		return;
	}
	for (guint i = 0; missing != NULL && missing[i] != NULL; i++) {
		if (needed_list->len > 0)
			g_string_append(needed_list, _(", "));
		g_string_append(needed_list, flow_label(p, missing[i]));
	}
	needed_text = g_string_free(needed_list, FALSE);
	/* Three short lines: GTK 4.8 cuts a long accessible name inside a character. */
	state = g_strdup_printf(_("Order %s: %s"), cs_order_get_id(order),
				cs_state_text(cs_order_get_state(order)));
	then = g_strdup_printf(_("Next: %s"), next);
	needed = g_strdup_printf(_("Still needed: %s"), *needed_text ? needed_text : "—");

	gtk_label_set_text(GTK_LABEL(p->order_status), state);
	gtk_label_set_text(GTK_LABEL(p->order_next), then);
	gtk_label_set_text(GTK_LABEL(p->order_missing), needed);
	gtk_widget_set_visible(p->confirm, can(p, "Confirm"));
	gtk_widget_set_visible(p->submit, can(p, "Submit"));
	gtk_widget_set_visible(p->cancel, can(p, "Cancel"));
	gtk_widget_set_visible(p->sms, can(p, "VerifySmsCode"));
	gtk_widget_set_visible(p->payment, can(p, "StartPayment"));
	cs_payment_set_order(p->payment, order);
	show_materials(p);
}

static void
on_order_changed(GDBusProxy *proxy, GVariant *changed, GStrv invalidated, gpointer user_data)
{
	show_order(user_data);
}

static void
on_order_proxy(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Apply *p = user_data;
	g_autoptr(GError) error = NULL;
	CsOrder *order = cs_order_proxy_new_finish(result, &error);

	if (order == NULL) {
		set_status(p, error->message, TRUE);
		return;
	}
	g_clear_object(&p->proxy);
	p->proxy = order;
	/* After the proxy's own handler, which drops the values the getters cached. */
	g_signal_connect_after(order, "g-properties-changed", G_CALLBACK(on_order_changed), p);
	gtk_widget_set_visible(p->order_box, TRUE);
	if (p->order_only) {
		/* The flow it follows, for its materials' names. */
		g_free(p->kind);
		p->kind = g_strdup(cs_order_get_kind(order));
		p->subject =
		    g_strcmp0(cs_order_get_subject_type(order), "person") == 0 ? "person" : "org";
		gtk_label_set_text(GTK_LABEL(p->title), cs_kind_text(p->kind));
		cs_manager_call_get_flow(p->a->manager, p->kind, p->subject, NULL, on_flow, p);
	}
	show_order(p);
}

/* The end of an Order call: the daemon's refusal shown, the order shown as it is now. */
static void
on_order_call(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Apply *p = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = g_dbus_proxy_call_finish(G_DBUS_PROXY(source), result, &error);

	if (reply == NULL) {
		g_autofree char *line = cs_not_accepted_text(error);
		set_status(p, line, TRUE);
		return;
	}
	set_status(p, NULL, FALSE);
	if (p->proxy != NULL)
		show_order(p);
}

static void
order_call(Apply *p, const char *method, GVariant *args)
{
	if (p->proxy == NULL)
		return;
	g_dbus_proxy_call(G_DBUS_PROXY(p->proxy), method, args, G_DBUS_CALL_FLAGS_NONE, -1, NULL,
			  on_order_call, p);
}

static void
on_created(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Apply *p = user_data;
	g_autoptr(GError) error = NULL;
	g_autofree char *path = NULL;

	gtk_widget_set_sensitive(p->next, TRUE);
	if (!cs_manager_call_create_order_finish(CS_MANAGER(source), &path, result, &error)) {
		g_autofree char *line = cs_not_accepted_text(error);
		set_status(p, line, TRUE);
		cs_form_check(p->form);
		return;
	}
	set_status(p, NULL, FALSE);
	/* The order from here on: its steps, not the form, fill the page. */
	gtk_widget_set_visible(p->next, FALSE);
	gtk_widget_set_visible(cs_form_widget(p->form), FALSE);
	gtk_widget_set_visible(p->subjects, FALSE);
	cs_order_proxy_new_for_bus(p->a->bus_type, G_DBUS_PROXY_FLAGS_NONE, CS_BUS_NAME, path, NULL,
				   on_order_proxy, p);
}

static void
on_next(GtkButton *button, gpointer user_data)
{
	Apply *p = user_data;

	gtk_widget_set_sensitive(p->next, FALSE);
	cs_manager_call_create_order(p->a->manager, p->kind, p->subject, cs_form_values(p->form),
				     NULL, on_created, p);
}

static void
on_confirm(GtkButton *button, gpointer user_data)
{
	order_call(user_data, "Confirm", NULL);
}

static void
on_submit(GtkButton *button, gpointer user_data)
{
	order_call(user_data, "Submit", NULL);
}

static void
on_cancel(GtkButton *button, gpointer user_data)
{
	order_call(user_data, "Cancel", NULL);
}

static void
on_verify(GtkButton *button, gpointer user_data)
{
	Apply *p = user_data;

	order_call(p, "VerifySmsCode",
		   g_variant_new("(s)", gtk_editable_get_text(GTK_EDITABLE(p->sms_code))));
	gtk_editable_set_text(GTK_EDITABLE(p->sms_code), "");
}

static void
on_resent(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Apply *p = user_data;
	g_autoptr(GError) error = NULL;
	g_autofree char *to = NULL;
	g_autofree char *text = NULL;

	if (!cs_order_call_send_sms_code_finish(CS_ORDER(source), &to, result, &error)) {
		text = cs_not_accepted_text(error);
		set_status(p, text, TRUE);
		return;
	}
	text = g_strdup_printf(_("A new code was sent to %s."), to);
	set_status(p, text, FALSE);
}

static void
on_resend(GtkButton *button, gpointer user_data)
{
	Apply *p = user_data;

	cs_order_call_send_sms_code(p->proxy, NULL, on_resent, p);
}

/* --- materials: a file chooser, the file sent as an fd -------------------------------- */

static void
on_material_chosen(GtkNativeDialog *dialog, int response, gpointer user_data)
{
	Apply *p = user_data;
	const char *kind = g_object_get_data(G_OBJECT(dialog), "cs-material");
	g_autofree char *path = NULL;
	g_autofree char *base = NULL;
	g_autofree char *why = NULL;
	g_autoptr(GUnixFDList) fds = cs_open_chosen_file(dialog, response, &path, &why);

	if (why != NULL)
		set_status(p, why, TRUE);
	if (fds == NULL)
		goto out;
	base = g_path_get_basename(path);
	g_dbus_proxy_call_with_unix_fd_list(
	    G_DBUS_PROXY(p->proxy), "AttachMaterial", g_variant_new("(ssh)", kind, base, 0),
	    G_DBUS_CALL_FLAGS_NONE, -1, fds, NULL, on_order_call, p);
out:
	gtk_native_dialog_destroy(dialog);
	g_object_unref(dialog);
}

static void
on_choose_material(GtkButton *button, gpointer user_data)
{
	Apply *p = user_data;
	GtkFileChooserNative *chooser =
	    gtk_file_chooser_native_new(_("Choose a scan or photo"), p->a->window,
					GTK_FILE_CHOOSER_ACTION_OPEN, _("_Attach"), _("_Cancel"));
	GtkFileFilter *filter = gtk_file_filter_new();

	gtk_file_filter_set_name(filter, _("Scans and photos (PDF, PNG, JPEG)"));
	gtk_file_filter_add_mime_type(filter, "application/pdf");
	gtk_file_filter_add_mime_type(filter, "image/png");
	gtk_file_filter_add_mime_type(filter, "image/jpeg");
	gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(chooser), filter);
	g_object_unref(filter);
	g_object_set_data_full(G_OBJECT(chooser), "cs-material",
			       g_strdup(g_object_get_data(G_OBJECT(button), "cs-material")),
			       g_free);
	cs_chooser_show(chooser, G_CALLBACK(on_material_chosen), p);
}

/* The order's part of the page: materials, the SMS code, the payment, the actions. */
static GtkWidget *
order_box(Apply *p)
{
	GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 12);
	GtkWidget *row, *label, *ok, *resend;

	p->order_status = cs_label_new("", "heading");
	gtk_box_append(GTK_BOX(box), p->order_status);
	p->order_next = cs_label_new("", NULL);
	gtk_box_append(GTK_BOX(box), p->order_next);
	p->order_missing = cs_label_new("", NULL);
	gtk_box_append(GTK_BOX(box), p->order_missing);
	p->materials = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
	gtk_box_append(GTK_BOX(box), p->materials);

	p->sms = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
	label = cs_label_new(_("SMS code"), "title-4");
	gtk_box_append(GTK_BOX(p->sms), label);
	gtk_box_append(GTK_BOX(p->sms),
		       cs_label_new(_("Type the code the handler's phone received."), NULL));
	row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
	p->sms_code = gtk_password_entry_new();
	gtk_widget_set_hexpand(p->sms_code, TRUE);
	gtk_accessible_update_relation(GTK_ACCESSIBLE(p->sms_code),
				       GTK_ACCESSIBLE_RELATION_LABELLED_BY, label, NULL, -1);
	ok = gtk_button_new_with_label(_("OK"));
	resend = gtk_button_new_with_label(_("Send a new code"));
	g_signal_connect(ok, "clicked", G_CALLBACK(on_verify), p);
	g_signal_connect(resend, "clicked", G_CALLBACK(on_resend), p);
	gtk_box_append(GTK_BOX(row), p->sms_code);
	gtk_box_append(GTK_BOX(row), ok);
	gtk_box_append(GTK_BOX(row), resend);
	gtk_box_append(GTK_BOX(p->sms), row);
	gtk_box_append(GTK_BOX(box), p->sms);

	p->payment = cs_payment_new(p->a);
	gtk_box_append(GTK_BOX(box), p->payment);

	row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
	gtk_widget_set_halign(row, GTK_ALIGN_END);
	p->cancel = gtk_button_new_with_label(_("Cancel the order"));
	gtk_widget_add_css_class(p->cancel, "destructive-action");
	p->confirm = gtk_button_new_with_label(_("Confirm the order"));
	gtk_widget_add_css_class(p->confirm, "suggested-action");
	p->submit = gtk_button_new_with_label(_("Confirm the application"));
	gtk_widget_add_css_class(p->submit, "suggested-action");
	g_signal_connect(p->cancel, "clicked", G_CALLBACK(on_cancel), p);
	g_signal_connect(p->confirm, "clicked", G_CALLBACK(on_confirm), p);
	g_signal_connect(p->submit, "clicked", G_CALLBACK(on_submit), p);
	gtk_box_append(GTK_BOX(row), p->cancel);
	gtk_box_append(GTK_BOX(row), p->confirm);
	gtk_box_append(GTK_BOX(row), p->submit);
	gtk_box_append(GTK_BOX(box), row);
	gtk_widget_set_visible(box, FALSE);
	return box;
}

/* --- the page ------------------------------------------------------------------------- */

static Apply *
apply_page(CsAssistant *a)
{
	Apply *p = g_new0(Apply, 1);
	GtkWidget *scroller;
	GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 12);
	GtkWidget *subjects = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 0);
	GtkWidget *org = gtk_toggle_button_new_with_label(_("An organisation"));
	GtkWidget *person = gtk_toggle_button_new_with_label(_("An individual"));
	GtkWidget *buttons = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
	GtkWidget *back = cs_back_button_new(a);

	p->a = a;
	p->form = cs_form_new(a, form_status, p);
	p->title = cs_label_new("", "title-2");
	gtk_box_append(GTK_BOX(box), p->title);
	gtk_widget_add_css_class(subjects, "linked");
	g_object_set_data(G_OBJECT(org), "cs-subject", (gpointer) "org");
	g_object_set_data(G_OBJECT(person), "cs-subject", (gpointer) "person");
	gtk_toggle_button_set_group(GTK_TOGGLE_BUTTON(person), GTK_TOGGLE_BUTTON(org));
	g_signal_connect(org, "toggled", G_CALLBACK(on_subject), p);
	g_signal_connect(person, "toggled", G_CALLBACK(on_subject), p);
	gtk_box_append(GTK_BOX(subjects), org);
	gtk_box_append(GTK_BOX(subjects), person);
	gtk_box_append(GTK_BOX(box), subjects);
	p->subjects = subjects;
	gtk_box_append(GTK_BOX(box), cs_form_widget(p->form));
	p->status = cs_label_new("", NULL);
	gtk_box_append(GTK_BOX(box), p->status);

	p->next = gtk_button_new_with_label(_("Next"));
	gtk_widget_add_css_class(p->next, "suggested-action");
	g_signal_connect(p->next, "clicked", G_CALLBACK(on_next), p);
	gtk_widget_set_halign(buttons, GTK_ALIGN_END);
	gtk_box_append(GTK_BOX(buttons), back);
	gtk_box_append(GTK_BOX(buttons), p->next);
	gtk_box_append(GTK_BOX(box), buttons);
	p->order_box = order_box(p);
	gtk_box_append(GTK_BOX(box), p->order_box);

	scroller = cs_page_scroller(box, 18, 640);
	p->page = scroller;
	g_object_set_data(G_OBJECT(org), "cs-apply-person", person);
	g_object_set_data(G_OBJECT(scroller), "cs-apply-org", org);
	gtk_stack_add_named(a->stack, scroller, "apply");
	return p;
}

/* The page, cleared of any earlier order, for an order of @kind (NULL: not known yet). */
static Apply *
apply_reset(CsAssistant *a, const char *kind)
{
	Apply *p = a->apply;

	if (p == NULL)
		a->apply = p = apply_page(a);
	g_free(p->kind);
	p->kind = g_strdup(kind);
	if (p->proxy != NULL)
		g_signal_handlers_disconnect_by_data(p->proxy, p);
	g_clear_object(&p->proxy);
	cs_payment_set_order(p->payment, NULL);
	p->order_only = FALSE;
	gtk_label_set_text(GTK_LABEL(p->title), kind != NULL ? kind : "");
	gtk_widget_set_visible(p->order_box, FALSE);
	set_status(p, NULL, FALSE);
	return p;
}

void
cs_assistant_apply_start(CsAssistant *a, const char *kind)
{
	Apply *p = apply_reset(a, kind);
	GtkWidget *org;

	gtk_widget_set_visible(p->next, TRUE);
	gtk_widget_set_visible(cs_form_widget(p->form), TRUE);
	gtk_widget_set_visible(p->subjects, TRUE);
	gtk_stack_set_visible_child_name(a->stack, "apply");
	org = g_object_get_data(G_OBJECT(p->page), "cs-apply-org");
	if (gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(org)))
		load_flow(p, "org");
	else
		gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(org), TRUE);
}

/* An order that exists already, at @order_path (found by an order query, or made by
 * another page): the order page without the form, carrying on from the order's State,
 * NextActions and Missing. */
void
cs_assistant_apply_open_order(CsAssistant *a, const char *order_path)
{
	Apply *p = apply_reset(a, NULL);

	p->order_only = TRUE;
	gtk_widget_set_visible(p->next, FALSE);
	gtk_widget_set_visible(cs_form_widget(p->form), FALSE);
	gtk_widget_set_visible(p->subjects, FALSE);
	g_clear_pointer(&p->flow, g_variant_unref);
	gtk_stack_set_visible_child_name(a->stack, "apply");
	cs_order_proxy_new_for_bus(a->bus_type, G_DBUS_PROXY_FLAGS_NONE, CS_BUS_NAME, order_path,
				   NULL, on_order_proxy, p);
}

/* --- an order for the key in the slot ---------------------------------------------------- */

static void
on_created_for_key(GObject *source, GAsyncResult *result, gpointer user_data)
{
	GTask *task = user_data;
	char *path = NULL;
	GError *error = NULL;

	if (cs_manager_call_create_order_finish(CS_MANAGER(source), &path, result, &error))
		g_task_return_pointer(task, path, g_free);
	else
		g_task_return_error(task, error);
	g_object_unref(task);
}

/* CreateOrder(@kind) for @key, the key in the slot: the daemon pre-fills the order from
 * the key's certificate and the subject registry, or refuses (NotEligible, MultipleKeys,
 * NoKey, a login missing). The subject type is the certificate's. */
void
cs_assistant_apply_start_for_key(
    CsAssistant *a, const char *kind, CsKey *key, GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task = g_task_new(NULL, NULL, callback, user_data);
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
	/* As an object path: the daemon takes it for the key's id. */
	g_variant_builder_add(
	    &b, "{sv}", "key",
	    g_variant_new_object_path(g_dbus_proxy_get_object_path(G_DBUS_PROXY(key))));
	g_variant_builder_add(&b, "{sv}", "vendor", g_variant_new_string(cs_key_get_vendor(key)));
	cs_manager_call_create_order(a->manager, kind, cs_key_subject_type(key),
				     g_variant_builder_end(&b), NULL, on_created_for_key, task);
}

/* The new order's object path, or NULL with the daemon's refusal. */
char *
cs_assistant_apply_start_for_key_finish(CsAssistant *a, GAsyncResult *result, GError **error)
{
	return g_task_propagate_pointer(G_TASK(result), error);
}
