/*
 * cs-assistant-apply.c — an application form (证书申请 and the other flows' forms), built
 * from the daemon's description of the flow (Manager.GetFlow: the fields, their labels,
 * types, choices, required marks and lengths) and checked as it is typed
 * (Manager.ValidateFields: the daemon's reason shown under the field it names). 下一步
 * creates the order (CreateOrder); what the order needs next comes from its NextActions
 * and Missing.
 *
 * Nothing here knows a field: the form is whatever the flow declares.
 */
#include <string.h>

#include "cs-assistant.h"

typedef struct {
	char *name;
	GtkWidget *entry;    /* GtkEntry, or NULL for a choice */
	GtkWidget *dropdown; /* GtkDropDown for enum and vendor fields */
	GStrv values;	     /* the choices' values, index 0 is "not chosen" */
	GtkWidget *error;
} Field;

typedef struct {
	CsAssistant *a;
	char *kind;
	const char *subject; /* "org" or "person" */
	GtkWidget *page;
	GtkWidget *title;
	GtkWidget *form; /* the fields' box */
	GtkWidget *status;
	GtkWidget *next;
	GtkWidget *confirm;
	GPtrArray *fields; /* Field */
	guint generation;  /* of the latest ValidateFields call: older replies are stale */
	char *order;	   /* the order's object path, once created */
} Apply;

static void
field_free(gpointer data)
{
	Field *f = data;

	g_free(f->name);
	g_strfreev(f->values);
	g_free(f);
}

static const char *
field_value(Field *f)
{
	guint i;

	if (f->entry != NULL)
		return gtk_editable_get_text(GTK_EDITABLE(f->entry));
	i = gtk_drop_down_get_selected(GTK_DROP_DOWN(f->dropdown));
	return i != GTK_INVALID_LIST_POSITION && f->values[i] != NULL ? f->values[i] : "";
}

static GVariant *
form_values(Apply *p)
{
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
	for (guint i = 0; i < p->fields->len; i++) {
		Field *f = g_ptr_array_index(p->fields, i);
		const char *v = field_value(f);
		if (*v != '\0')
			g_variant_builder_add(&b, "{sv}", f->name, g_variant_new_string(v));
	}
	return g_variant_builder_end(&b);
}

static void
set_status(Apply *p, const char *text, gboolean error)
{
	gtk_label_set_text(GTK_LABEL(p->status), text != NULL ? text : "");
	if (error)
		gtk_widget_add_css_class(p->status, "error");
	else
		gtk_widget_remove_css_class(p->status, "error");
}

/* --- checking as typed ------------------------------------------------------------------ */

typedef struct {
	Apply *p;
	guint generation;
} Check;

static void
on_validated(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Check *c = user_data;
	Apply *p = c->p;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) problems = NULL;

	if (!cs_manager_call_validate_fields_finish(CS_MANAGER(source), &problems, result,
						    &error)) {
		g_autofree char *text = cs_error_text(error);
		if (c->generation == p->generation)
			set_status(p, text, TRUE);
		g_free(c);
		return;
	}
	if (c->generation != p->generation) {
		g_free(c);
		return;
	}
	for (guint i = 0; i < p->fields->len; i++) {
		Field *f = g_ptr_array_index(p->fields, i);
		GVariantIter iter;
		const char *name, *reason;
		GString *why = g_string_new(NULL);

		g_variant_iter_init(&iter, problems);
		while (g_variant_iter_next(&iter, "(&s&s)", &name, &reason)) {
			if (strcmp(name, f->name) == 0)
				g_string_append_printf(why, "%s%s", why->len ? "; " : "", reason);
		}
		gtk_label_set_text(GTK_LABEL(f->error), why->str);
		gtk_widget_set_visible(f->error, why->len > 0);
		g_string_free(why, TRUE);
	}
	g_free(c);
}

static void
check_form(Apply *p)
{
	Check *c = g_new0(Check, 1);

	c->p = p;
	c->generation = ++p->generation;
	cs_manager_call_validate_fields(p->a->manager, p->kind, p->subject, form_values(p), NULL,
					on_validated, c);
}

static void
on_field_changed(GObject *widget, gpointer user_data)
{
	check_form(user_data);
}

/* --- the form from GetFlow ---------------------------------------------------------------- */

static const char *
dict_string(GVariant *dict, const char *key)
{
	const char *s = NULL;

	if (!g_variant_lookup(dict, key, "&s", &s))
		return "";
	return s;
}

static void
add_field(Apply *p, GVariant *spec)
{
	Field *f = g_new0(Field, 1);
	const char *type = dict_string(spec, "type");
	const char *label = dict_string(spec, p->a->chinese ? "label_zh" : "label_en");
	gboolean required = FALSE;
	guint32 max_length = 0;
	g_autofree char *text = NULL;
	GtkWidget *caption;

	g_variant_lookup(spec, "required", "b", &required);
	g_variant_lookup(spec, "max_length", "u", &max_length);
	f->name = g_strdup(dict_string(spec, "name"));
	text = g_strdup_printf("%s%s", *label ? label : f->name, required ? " *" : "");
	caption = cs_label_new(text, required ? "heading" : NULL);
	gtk_box_append(GTK_BOX(p->form), caption);

	if (strcmp(type, "enum") == 0 || strcmp(type, "vendor") == 0) {
		GPtrArray *values = g_ptr_array_new();
		GtkStringList *labels = gtk_string_list_new(NULL);
		g_autofree const char **choices = NULL;
		g_autofree const char **names = NULL;

		g_ptr_array_add(values, g_strdup(""));
		gtk_string_list_append(labels, _("— choose —"));
		if (strcmp(type, "vendor") == 0) {
			GVariant *vendors = cs_manager_get_vendors(p->a->manager);
			GVariantIter iter;
			const char *id, *name, *driver;
			if (vendors != NULL) {
				g_variant_iter_init(&iter, vendors);
				while (
				    g_variant_iter_next(&iter, "(&s&s&s)", &id, &name, &driver)) {
					g_ptr_array_add(values, g_strdup(id));
					gtk_string_list_append(labels, name);
				}
			}
		} else {
			gsize n = 0, m = 0;
			g_variant_lookup(spec, "choices", "^a&s", &choices);
			g_variant_lookup(spec,
					 p->a->chinese ? "choice_labels_zh" : "choice_labels_en",
					 "^a&s", &names);
			if (choices != NULL)
				n = g_strv_length((char **)choices);
			if (names != NULL)
				m = g_strv_length((char **)names);
			for (gsize i = 0; i < n; i++) {
				g_ptr_array_add(values, g_strdup(choices[i]));
				gtk_string_list_append(labels, i < m ? names[i] : choices[i]);
			}
		}
		g_ptr_array_add(values, NULL);
		f->values = (GStrv)g_ptr_array_free(values, FALSE);
		f->dropdown = gtk_drop_down_new(G_LIST_MODEL(labels), NULL);
		gtk_accessible_update_relation(GTK_ACCESSIBLE(f->dropdown),
					       GTK_ACCESSIBLE_RELATION_LABELLED_BY, caption, NULL,
					       -1);
		g_signal_connect(f->dropdown, "notify::selected", G_CALLBACK(on_field_changed), p);
		gtk_box_append(GTK_BOX(p->form), f->dropdown);
	} else {
		f->entry = gtk_entry_new();
		if (max_length > 0)
			gtk_entry_set_max_length(GTK_ENTRY(f->entry), (int)max_length);
		gtk_accessible_update_relation(GTK_ACCESSIBLE(f->entry),
					       GTK_ACCESSIBLE_RELATION_LABELLED_BY, caption, NULL,
					       -1);
		g_signal_connect(f->entry, "changed", G_CALLBACK(on_field_changed), p);
		gtk_box_append(GTK_BOX(p->form), f->entry);
	}
	f->error = cs_label_new("", "error");
	gtk_widget_set_visible(f->error, FALSE);
	if (f->entry != NULL)
		gtk_accessible_update_relation(GTK_ACCESSIBLE(f->entry),
					       GTK_ACCESSIBLE_RELATION_DESCRIBED_BY, f->error, NULL,
					       -1);
	gtk_box_append(GTK_BOX(p->form), f->error);
	g_ptr_array_add(p->fields, f);
}

static void
on_flow(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Apply *p = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) flow = NULL;
	g_autoptr(GVariant) fields = NULL;
	GtkWidget *child;
	GVariantIter iter;
	GVariant *spec;

	if (!cs_manager_call_get_flow_finish(CS_MANAGER(source), &flow, result, &error)) {
		g_autofree char *text = cs_error_text(error);
		set_status(p, text, TRUE);
		return;
	}
	while ((child = gtk_widget_get_first_child(p->form)) != NULL)
		gtk_box_remove(GTK_BOX(p->form), child);
	g_ptr_array_set_size(p->fields, 0);
	if (p->a->chinese && *dict_string(flow, "title_zh") != '\0')
		gtk_label_set_text(GTK_LABEL(p->title), dict_string(flow, "title_zh"));
	fields = g_variant_lookup_value(flow, "fields", G_VARIANT_TYPE("aa{sv}"));
	if (fields != NULL) {
		g_variant_iter_init(&iter, fields);
		while ((spec = g_variant_iter_next_value(&iter)) != NULL) {
			add_field(p, spec);
			g_variant_unref(spec);
		}
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

static void
show_order(Apply *p, CsOrder *order)
{
	g_autofree char *next = g_strjoinv(", ", (char **)cs_order_get_next_actions(order));
	g_autofree char *missing = g_strjoinv(", ", (char **)cs_order_get_missing(order));
	g_autofree char *text = g_strdup_printf(_("Order %s: %s. Next: %s. Still needed: %s."),
						cs_order_get_id(order), cs_order_get_state(order),
						*next ? next : "—", *missing ? missing : "—");

	set_status(p, text, FALSE);
	gtk_widget_set_visible(p->confirm,
			       g_strv_contains(cs_order_get_next_actions(order), "Confirm"));
}

static void
on_order_proxy(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Apply *p = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(CsOrder) order = cs_order_proxy_new_finish(result, &error);

	if (order == NULL) {
		set_status(p, error->message, TRUE);
		return;
	}
	show_order(p, order);
}

static void
refresh_order(Apply *p)
{
	cs_order_proxy_new_for_bus(p->a->bus_type, G_DBUS_PROXY_FLAGS_NONE, CS_BUS_NAME, p->order,
				   NULL, on_order_proxy, p);
}

static void
on_created(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Apply *p = user_data;
	g_autoptr(GError) error = NULL;
	g_autofree char *path = NULL;

	gtk_widget_set_sensitive(p->next, TRUE);
	if (!cs_manager_call_create_order_finish(CS_MANAGER(source), &path, result, &error)) {
		g_autofree char *text = cs_error_text(error);
		g_autofree char *line = g_strdup_printf(_("Not accepted: %s"), text);
		set_status(p, line, TRUE);
		check_form(p);
		return;
	}
	g_free(p->order);
	p->order = g_steal_pointer(&path);
	gtk_widget_set_visible(p->next, FALSE);
	refresh_order(p);
}

static void
on_next(GtkButton *button, gpointer user_data)
{
	Apply *p = user_data;

	gtk_widget_set_sensitive(p->next, FALSE);
	cs_manager_call_create_order(p->a->manager, p->kind, p->subject, form_values(p), NULL,
				     on_created, p);
}

static void
on_confirmed(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Apply *p = user_data;
	g_autoptr(GError) error = NULL;

	if (!cs_order_call_confirm_finish(CS_ORDER(source), result, &error)) {
		g_autofree char *text = cs_error_text(error);
		set_status(p, text, TRUE);
		return;
	}
	refresh_order(p);
}

static void
on_order_for_confirm(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Apply *p = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(CsOrder) order = cs_order_proxy_new_finish(result, &error);

	if (order == NULL) {
		set_status(p, error->message, TRUE);
		return;
	}
	cs_order_call_confirm(order, NULL, on_confirmed, p);
}

static void
on_confirm(GtkButton *button, gpointer user_data)
{
	Apply *p = user_data;

	cs_order_proxy_new_for_bus(p->a->bus_type, G_DBUS_PROXY_FLAGS_NONE, CS_BUS_NAME, p->order,
				   NULL, on_order_for_confirm, p);
}

static void
on_back(GtkButton *button, gpointer user_data)
{
	Apply *p = user_data;

	cs_assistant_go_home(p->a);
}

/* --- the page ------------------------------------------------------------------------- */

static Apply *
apply_page(CsAssistant *a)
{
	Apply *p = g_new0(Apply, 1);
	GtkWidget *scroller = gtk_scrolled_window_new();
	GtkWidget *clamp = adw_clamp_new();
	GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 12);
	GtkWidget *subjects = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 0);
	GtkWidget *org = gtk_toggle_button_new_with_label(_("An organisation"));
	GtkWidget *person = gtk_toggle_button_new_with_label(_("An individual"));
	GtkWidget *buttons = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
	GtkWidget *back = gtk_button_new_with_label(_("Back"));

	p->a = a;
	p->fields = g_ptr_array_new_with_free_func(field_free);
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
	p->form = gtk_box_new(GTK_ORIENTATION_VERTICAL, 4);
	gtk_box_append(GTK_BOX(box), p->form);
	p->status = cs_label_new("", NULL);
	gtk_box_append(GTK_BOX(box), p->status);

	p->next = gtk_button_new_with_label(_("Next"));
	gtk_widget_add_css_class(p->next, "suggested-action");
	p->confirm = gtk_button_new_with_label(_("Confirm the order"));
	gtk_widget_add_css_class(p->confirm, "suggested-action");
	gtk_widget_set_visible(p->confirm, FALSE);
	g_signal_connect(p->next, "clicked", G_CALLBACK(on_next), p);
	g_signal_connect(p->confirm, "clicked", G_CALLBACK(on_confirm), p);
	g_signal_connect(back, "clicked", G_CALLBACK(on_back), p);
	gtk_widget_set_halign(buttons, GTK_ALIGN_END);
	gtk_box_append(GTK_BOX(buttons), back);
	gtk_box_append(GTK_BOX(buttons), p->next);
	gtk_box_append(GTK_BOX(buttons), p->confirm);
	gtk_box_append(GTK_BOX(box), buttons);

	gtk_widget_set_margin_top(box, 18);
	gtk_widget_set_margin_bottom(box, 18);
	gtk_widget_set_margin_start(box, 12);
	gtk_widget_set_margin_end(box, 12);
	adw_clamp_set_maximum_size(ADW_CLAMP(clamp), 640);
	adw_clamp_set_child(ADW_CLAMP(clamp), box);
	gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(scroller), clamp);
	p->page = scroller;
	g_object_set_data(G_OBJECT(org), "cs-apply-person", person);
	g_object_set_data(G_OBJECT(scroller), "cs-apply-org", org);
	gtk_stack_add_named(a->stack, scroller, "apply");
	return p;
}

void
cs_assistant_apply_start(CsAssistant *a, const char *kind)
{
	Apply *p = a->apply;
	GtkWidget *org;

	if (p == NULL)
		a->apply = p = apply_page(a);
	g_free(p->kind);
	p->kind = g_strdup(kind);
	g_clear_pointer(&p->order, g_free);
	gtk_label_set_text(GTK_LABEL(p->title), kind);
	gtk_widget_set_visible(p->next, TRUE);
	gtk_widget_set_visible(p->confirm, FALSE);
	gtk_stack_set_visible_child_name(a->stack, "apply");
	org = g_object_get_data(G_OBJECT(p->page), "cs-apply-org");
	if (gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(org)))
		load_flow(p, "org");
	else
		gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(org), TRUE);
}
