/*
 * cs-assistant-form.c — a flow's form, built from the daemon's description of the flow
 * (Manager.GetFlow: the fields, their labels, types, choices, required marks and lengths)
 * and checked as it is typed (Manager.ValidateFields: the daemon's reason shown under the
 * field it names). The application page and the pages of an order for a key share it.
 *
 * On an order that exists already, the form shows the order's Fields: a field the flow
 * fixes, or an identity field on file (unless the flow changes identities: a change
 * order), is shown greyed out and never sent back; the others
 * are sent by Update when they changed. Nothing here knows a field: the form is whatever
 * the flow declares.
 */
#include <string.h>

#include "cs-assistant.h"

typedef struct {
	char *name;
	char *label;	   /* as the flow names it */
	char *initial;	   /* the order's value when the form was filled, or NULL */
	gboolean readonly; /* fixed by the flow or on file: shown, never sent */
	GtkWidget *entry;  /* GtkEntry, or NULL for a choice */
	GPtrArray *radios; /* GtkCheckButton in a group for enum and vendor fields */
	GStrv values;	   /* the choices' values, as the radios */
	GStrv labels;	   /* the choices' labels */
	GtkWidget *error;
} Field;

struct _CsForm {
	CsAssistant *a;
	char *kind;
	char *subject;
	GtkWidget *box;
	GPtrArray *fields; /* Field */
	guint generation;  /* of the latest ValidateFields call: older replies are stale */
	gboolean filling;  /* setting the order's values: no check per change */
	CsFormStatus status;
	gpointer status_data;
};

static void
field_free(gpointer data)
{
	Field *f = data;

	g_free(f->name);
	g_free(f->label);
	g_free(f->initial);
	g_strfreev(f->values);
	g_strfreev(f->labels);
	if (f->radios != NULL)
		g_ptr_array_unref(f->radios);
	g_free(f);
}

const char *
cs_dict_string(GVariant *dict, const char *key)
{
	const char *s = NULL;

	if (dict == NULL || !g_variant_lookup(dict, key, "&s", &s))
		return "";
	return s;
}

static const char *
field_value(Field *f)
{
	if (f->entry != NULL)
		return gtk_editable_get_text(GTK_EDITABLE(f->entry));
	for (guint i = 0; i < f->radios->len; i++) {
		if (gtk_check_button_get_active(g_ptr_array_index(f->radios, i)))
			return f->values[i];
	}
	return "";
}

CsForm *
cs_form_new(CsAssistant *a, CsFormStatus status, gpointer status_data)
{
	CsForm *form = g_new0(CsForm, 1);

	form->a = a;
	form->box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 4);
	form->fields = g_ptr_array_new_with_free_func(field_free);
	form->status = status;
	form->status_data = status_data;
	return form;
}

GtkWidget *
cs_form_widget(CsForm *form)
{
	return form->box;
}

/* Every value the form holds, read-only ones too (the rules across fields need them). */
GVariant *
cs_form_values(CsForm *form)
{
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
	for (guint i = 0; i < form->fields->len; i++) {
		Field *f = g_ptr_array_index(form->fields, i);
		const char *v = field_value(f);
		if (*v != '\0')
			g_variant_builder_add(&b, "{sv}", f->name, g_variant_new_string(v));
	}
	return g_variant_builder_end(&b);
}

/* What the person changed since the order's values were shown ("" removes a field). */
GVariant *
cs_form_changes(CsForm *form)
{
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
	for (guint i = 0; i < form->fields->len; i++) {
		Field *f = g_ptr_array_index(form->fields, i);
		const char *v = field_value(f);
		if (f->readonly || g_strcmp0(v, f->initial != NULL ? f->initial : "") == 0)
			continue;
		g_variant_builder_add(&b, "{sv}", f->name, g_variant_new_string(v));
	}
	return g_variant_builder_end(&b);
}

static Field *
find_field(CsForm *form, const char *name)
{
	for (guint i = 0; i < form->fields->len; i++) {
		Field *f = g_ptr_array_index(form->fields, i);
		if (g_strcmp0(f->name, name) == 0)
			return f;
	}
	return NULL;
}

/* The label the flow gives field @name, or NULL when the form has no such field. */
const char *
cs_form_label(CsForm *form, const char *name)
{
	Field *f = find_field(form, name);

	return f != NULL ? f->label : NULL;
}

/* What the form shows for the value of field @name: a choice by its label. */
const char *
cs_form_shown_value(CsForm *form, const char *name, const char *value)
{
	Field *f = find_field(form, name);

	if (f == NULL || f->values == NULL)
		return value;
	for (guint i = 0; f->values[i] != NULL; i++) {
		if (g_strcmp0(f->values[i], value) == 0)
			return f->labels[i];
	}
	return value;
}

static void
set_problem(Field *f, const char *why)
{
	gtk_label_set_text(GTK_LABEL(f->error), why != NULL ? why : "");
	gtk_widget_set_visible(f->error, why != NULL && *why != '\0');
}

/* The daemon's InvalidInput ("field: why") shown under the field it names. TRUE when the
 * form has that field. */
gboolean
cs_form_show_error(CsForm *form, const GError *error)
{
	g_autofree char *text = NULL;
	g_autofree char *name = NULL;
	const char *colon;
	Field *f;

	if (g_strcmp0(cs_error_name(error), "InvalidInput") != 0)
		return FALSE;
	text = cs_error_text(error);
	colon = strstr(text, ": ");
	if (colon == NULL)
		return FALSE;
	name = g_strndup(text, (gsize)(colon - text));
	f = find_field(form, name);
	if (f == NULL)
		return FALSE;
	set_problem(f, colon + 2);
	return TRUE;
}

/* --- checking as typed ------------------------------------------------------------------ */

typedef struct {
	CsForm *form;
	guint generation;
} Check;

static void
on_validated(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Check *c = user_data;
	CsForm *form = c->form;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) problems = NULL;

	if (!cs_manager_call_validate_fields_finish(CS_MANAGER(source), &problems, result,
						    &error)) {
		g_autofree char *text = cs_error_text(error);
		if (c->generation == form->generation && form->status != NULL)
			form->status(form->status_data, text, TRUE);
		g_free(c);
		return;
	}
	if (c->generation != form->generation) {
		g_free(c);
		return;
	}
	for (guint i = 0; i < form->fields->len; i++) {
		Field *f = g_ptr_array_index(form->fields, i);
		GVariantIter iter;
		const char *name, *reason;
		GString *why = g_string_new(NULL);

		g_variant_iter_init(&iter, problems);
		while (g_variant_iter_next(&iter, "(&s&s)", &name, &reason)) {
			if (strcmp(name, f->name) == 0)
				g_string_append_printf(why, "%s%s", why->len ? "; " : "", reason);
		}
		set_problem(f, why->str);
		g_string_free(why, TRUE);
	}
	g_free(c);
}

void
cs_form_check(CsForm *form)
{
	Check *c;

	if (form->kind == NULL || form->a->manager == NULL)
		return;
	c = g_new0(Check, 1);
	c->form = form;
	c->generation = ++form->generation;
	cs_manager_call_validate_fields(form->a->manager, form->kind, form->subject,
					cs_form_values(form), NULL, on_validated, c);
}

static void
on_field_changed(GObject *widget, gpointer user_data)
{
	CsForm *form = user_data;

	if (!form->filling)
		cs_form_check(form);
}

/* --- the fields from GetFlow ------------------------------------------------------------ */

static void
add_choices(CsForm *form, Field *f, GVariant *spec, const char *type, GtkWidget *caption)
{
	GPtrArray *values = g_ptr_array_new();
	GPtrArray *labels = g_ptr_array_new();
	GtkWidget *group = gtk_box_new(GTK_ORIENTATION_VERTICAL, 2);
	g_autofree const char **choices = NULL;
	g_autofree const char **names = NULL;

	if (strcmp(type, "vendor") == 0) {
		GVariant *vendors = cs_manager_get_vendors(form->a->manager);
		GVariantIter iter;
		const char *id, *name, *driver;
		if (vendors != NULL) {
			g_variant_iter_init(&iter, vendors);
			while (g_variant_iter_next(&iter, "(&s&s&s)", &id, &name, &driver)) {
				g_ptr_array_add(values, g_strdup(id));
				g_ptr_array_add(labels, g_strdup(name));
			}
		}
	} else {
		gsize n = 0, m = 0;
		g_variant_lookup(spec, "choices", "^a&s", &choices);
		g_variant_lookup(spec, form->a->chinese ? "choice_labels_zh" : "choice_labels_en",
				 "^a&s", &names);
		if (choices != NULL)
			n = g_strv_length((char **)choices);
		if (names != NULL)
			m = g_strv_length((char **)names);
		for (gsize i = 0; i < n; i++) {
			g_ptr_array_add(values, g_strdup(choices[i]));
			g_ptr_array_add(labels, g_strdup(i < m ? names[i] : choices[i]));
		}
	}
	f->radios = g_ptr_array_new();
	for (guint i = 0; i < labels->len; i++) {
		GtkWidget *radio = gtk_check_button_new_with_label(labels->pdata[i]);
		if (f->radios->len > 0)
			gtk_check_button_set_group(GTK_CHECK_BUTTON(radio),
						   g_ptr_array_index(f->radios, 0));
		g_signal_connect(radio, "toggled", G_CALLBACK(on_field_changed), form);
		g_ptr_array_add(f->radios, radio);
		gtk_box_append(GTK_BOX(group), radio);
	}
	g_ptr_array_add(values, NULL);
	g_ptr_array_add(labels, NULL);
	f->values = (GStrv)g_ptr_array_free(values, FALSE);
	f->labels = (GStrv)g_ptr_array_free(labels, FALSE);
	gtk_accessible_update_relation(GTK_ACCESSIBLE(group), GTK_ACCESSIBLE_RELATION_LABELLED_BY,
				       caption, NULL, -1);
	gtk_box_append(GTK_BOX(form->box), group);
}

static void
set_value(Field *f, const char *value)
{
	if (f->entry != NULL) {
		gtk_editable_set_text(GTK_EDITABLE(f->entry), value);
		return;
	}
	for (guint i = 0; f->values[i] != NULL; i++) {
		if (g_strcmp0(f->values[i], value) == 0)
			gtk_check_button_set_active(g_ptr_array_index(f->radios, i), TRUE);
	}
}

static void
add_field(CsForm *form, GVariant *spec, GVariant *order_values, gboolean changes_identity)
{
	Field *f = g_new0(Field, 1);
	const char *type = cs_dict_string(spec, "type");
	const char *label = cs_dict_string(spec, form->a->chinese ? "label_zh" : "label_en");
	gboolean required = FALSE, identity = FALSE, fixed = FALSE;
	guint32 max_length = 0;
	g_autofree char *text = NULL;
	const char *value = NULL;
	GtkWidget *caption;

	g_variant_lookup(spec, "required", "b", &required);
	g_variant_lookup(spec, "identity", "b", &identity);
	g_variant_lookup(spec, "fixed", "b", &fixed);
	g_variant_lookup(spec, "max_length", "u", &max_length);
	f->name = g_strdup(cs_dict_string(spec, "name"));
	f->label = g_strdup(*label ? label : f->name);
	if (order_values != NULL && g_variant_lookup(order_values, f->name, "&s", &value)) {
		f->initial = g_strdup(value);
		f->readonly = fixed || (identity && !changes_identity);
	}
	text = g_strdup_printf("%s%s", f->label, required && !f->readonly ? " *" : "");
	caption = cs_label_new(text, required ? "heading" : NULL);
	gtk_box_append(GTK_BOX(form->box), caption);

	if (strcmp(type, "enum") == 0 || strcmp(type, "vendor") == 0) {
		add_choices(form, f, spec, type, caption);
	} else {
		f->entry = gtk_entry_new();
		if (max_length > 0)
			gtk_entry_set_max_length(GTK_ENTRY(f->entry), (int)max_length);
		gtk_accessible_update_relation(GTK_ACCESSIBLE(f->entry),
					       GTK_ACCESSIBLE_RELATION_LABELLED_BY, caption, NULL,
					       -1);
		g_signal_connect(f->entry, "changed", G_CALLBACK(on_field_changed), form);
		gtk_box_append(GTK_BOX(form->box), f->entry);
	}
	if (f->initial != NULL)
		set_value(f, f->initial);
	if (f->readonly) {
		/* The manual's grey, read-only fields: shown as they are on file. */
		if (f->entry != NULL)
			gtk_editable_set_editable(GTK_EDITABLE(f->entry), FALSE);
		for (guint i = 0; f->radios != NULL && i < f->radios->len; i++)
			gtk_widget_set_sensitive(g_ptr_array_index(f->radios, i), FALSE);
		gtk_widget_add_css_class(f->entry != NULL ? f->entry : caption, "dim-label");
	}
	f->error = cs_label_new("", "error");
	gtk_widget_set_visible(f->error, FALSE);
	if (f->entry != NULL)
		gtk_accessible_update_relation(GTK_ACCESSIBLE(f->entry),
					       GTK_ACCESSIBLE_RELATION_DESCRIBED_BY, f->error, NULL,
					       -1);
	gtk_box_append(GTK_BOX(form->box), f->error);
	g_ptr_array_add(form->fields, f);
}

/* The form of @flow (Manager.GetFlow's answer) for @kind and @subject; with @values (an
 * order's Fields), filled with them. */
void
cs_form_fill(CsForm *form, const char *kind, const char *subject, GVariant *flow, GVariant *values)
{
	g_autoptr(GVariant) fields = NULL;
	gboolean changes_identity = FALSE;
	GtkWidget *child;
	GVariantIter iter;
	GVariant *spec;

	g_variant_lookup(flow, "changes_identity", "b", &changes_identity);
	while ((child = gtk_widget_get_first_child(form->box)) != NULL)
		gtk_box_remove(GTK_BOX(form->box), child);
	g_ptr_array_set_size(form->fields, 0);
	g_free(form->kind);
	form->kind = g_strdup(kind);
	g_free(form->subject);
	form->subject = g_strdup(subject);
	form->generation++;
	form->filling = TRUE;
	fields = g_variant_lookup_value(flow, "fields", G_VARIANT_TYPE("aa{sv}"));
	if (fields != NULL) {
		g_variant_iter_init(&iter, fields);
		while ((spec = g_variant_iter_next_value(&iter)) != NULL) {
			add_field(form, spec, values, changes_identity);
			g_variant_unref(spec);
		}
	}
	form->filling = FALSE;
}

void
cs_form_free(CsForm *form)
{
	if (form == NULL)
		return;
	g_ptr_array_unref(form->fields);
	g_free(form->kind);
	g_free(form->subject);
	g_free(form);
}
