/*
 * cs-fields.c — a flow's fields, from its plugin's tables.
 */
#define G_LOG_DOMAIN "certseald"

#include "cs-fields.h"
#include "cs-validate.h"

const CsFieldSpec *
cs_fields_find(const CsPlugin *plugin, CsSubjectType subject_type, const char *name)
{
	for (guint i = 0; i < plugin->n_fields; i++) {
		const CsFieldSpec *f = &plugin->fields[i];
		if ((f->subject_types & subject_type) != 0 && g_strcmp0(f->name, name) == 0)
			return f;
	}
	return NULL;
}

gboolean
cs_fields_validate_value(const CsConfig *config,
			 const CsFieldSpec *spec,
			 const char *value,
			 char **normalized,
			 GError **error)
{
	g_autofree char *v = g_strdup(value);
	gboolean ok = TRUE;

	*normalized = NULL;
	if (*value == '\0')
		return TRUE; /* "" removes the field */

	switch (spec->type) {
	case CS_FIELD_TEXT:
	case CS_FIELD_NAME:
		ok = cs_validate_text(v, spec->max_length, error);
		break;
	case CS_FIELD_USCC: {
		g_autofree char *up = g_ascii_strup(v, -1);
		ok = cs_validate_uscc(up, (const char *const *)config->legacy_uscc, error);
		g_free(g_steal_pointer(&v));
		v = g_steal_pointer(&up);
		break;
	}
	case CS_FIELD_RESIDENT_ID: {
		g_autofree char *up = g_ascii_strup(v, -1);
		ok = cs_validate_resident_id(up, NULL, error);
		g_free(g_steal_pointer(&v));
		v = g_steal_pointer(&up);
		break;
	}
	case CS_FIELD_PHONE: {
		g_autofree char *norm = NULL;
		ok = cs_validate_phone(v, &norm, error);
		if (ok) {
			g_free(v);
			v = g_steal_pointer(&norm);
		}
		break;
	}
	case CS_FIELD_EMAIL:
		ok = cs_validate_email(v, error);
		break;
	case CS_FIELD_POSTCODE:
		ok = cs_validate_postcode(v, error);
		break;
	case CS_FIELD_BANK_CARD:
		ok = cs_validate_bank_card(v, error);
		break;
	case CS_FIELD_BANK_ACCOUNT:
		ok = cs_validate_bank_account(v, error);
		break;
	case CS_FIELD_ENUM:
		if (!g_strv_contains(spec->choices, v)) {
			g_autofree char *choices = g_strjoinv(", ", (char **)spec->choices);
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "must be one of %s",
				    choices);
			ok = FALSE;
		}
		break;
	case CS_FIELD_VENDOR:
		if (cs_config_find_vendor((CsConfig *)config, v) == NULL) {
			g_autofree char *quoted = cs_quote_value(v);
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "no vendor profile named '%s'", quoted);
			ok = FALSE;
		}
		break;
	}
	if (!ok)
		return FALSE;
	*normalized = g_steal_pointer(&v);
	return TRUE;
}

const char *
cs_field_type_to_string(CsFieldType type)
{
	switch (type) {
	case CS_FIELD_TEXT:
		return "text";
	case CS_FIELD_NAME:
		return "name";
	case CS_FIELD_USCC:
		return "uscc";
	case CS_FIELD_RESIDENT_ID:
		return "resident_id";
	case CS_FIELD_PHONE:
		return "phone";
	case CS_FIELD_EMAIL:
		return "email";
	case CS_FIELD_POSTCODE:
		return "postcode";
	case CS_FIELD_BANK_CARD:
		return "bank_card";
	case CS_FIELD_BANK_ACCOUNT:
		return "bank_account";
	case CS_FIELD_ENUM:
		return "enum";
	case CS_FIELD_VENDOR:
		return "vendor";
	}
	return "text";
}

static GVariant *
strv_or_empty(const char *const *strv)
{
	static const char *const none[] = {NULL};
	return g_variant_new_strv(strv != NULL ? strv : none, -1);
}

static GVariant *
describe_field(const CsFieldSpec *f)
{
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
	g_variant_builder_add(&b, "{sv}", "name", g_variant_new_string(f->name));
	g_variant_builder_add(&b, "{sv}", "type",
			      g_variant_new_string(cs_field_type_to_string(f->type)));
	g_variant_builder_add(&b, "{sv}", "required", g_variant_new_boolean(f->required));
	g_variant_builder_add(&b, "{sv}", "identity", g_variant_new_boolean(f->identity));
	g_variant_builder_add(&b, "{sv}", "fixed", g_variant_new_boolean(f->fixed));
	g_variant_builder_add(&b, "{sv}", "choices", strv_or_empty(f->choices));
	g_variant_builder_add(&b, "{sv}", "choice_labels_zh", strv_or_empty(f->choice_labels_zh));
	g_variant_builder_add(&b, "{sv}", "choice_labels_en", strv_or_empty(f->choice_labels_en));
	g_variant_builder_add(
	    &b, "{sv}", "max_length",
	    g_variant_new_uint32(f->max_length != 0 ? f->max_length : CS_TEXT_DEFAULT_MAX_CHARS));
	g_variant_builder_add(&b, "{sv}", "label_zh",
			      g_variant_new_string(f->label_zh != NULL ? f->label_zh : ""));
	g_variant_builder_add(&b, "{sv}", "label_en",
			      g_variant_new_string(f->label_en != NULL ? f->label_en : ""));
	return g_variant_builder_end(&b);
}

static GVariant *
describe_material(const CsMaterialSpec *m)
{
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
	g_variant_builder_add(&b, "{sv}", "kind", g_variant_new_string(m->kind));
	g_variant_builder_add(&b, "{sv}", "required", g_variant_new_boolean(m->required));
	g_variant_builder_add(&b, "{sv}", "label_zh",
			      g_variant_new_string(m->label_zh != NULL ? m->label_zh : ""));
	g_variant_builder_add(&b, "{sv}", "label_en",
			      g_variant_new_string(m->label_en != NULL ? m->label_en : ""));
	return g_variant_builder_end(&b);
}

GVariant *
cs_fields_describe_flow(const CsPlugin *plugin, CsSubjectType subject_type)
{
	g_autoptr(GPtrArray) steps = g_ptr_array_new();
	GVariantBuilder fields, materials, b;

	g_variant_builder_init(&fields, G_VARIANT_TYPE("aa{sv}"));
	for (guint i = 0; i < plugin->n_fields; i++) {
		if ((plugin->fields[i].subject_types & subject_type) != 0)
			g_variant_builder_add_value(&fields, describe_field(&plugin->fields[i]));
	}
	g_variant_builder_init(&materials, G_VARIANT_TYPE("aa{sv}"));
	for (guint i = 0; i < plugin->n_materials; i++) {
		if ((plugin->materials[i].subject_types & subject_type) != 0)
			g_variant_builder_add_value(&materials,
						    describe_material(&plugin->materials[i]));
	}
	for (guint i = 0; i < plugin->n_transitions; i++) {
		const CsTransition *t = &plugin->transitions[i];
		gboolean seen = FALSE;

		if ((t->actors & CS_ACTOR_DESKTOP) == 0)
			continue;
		for (guint j = 0; j < steps->len && !seen; j++)
			seen = g_strcmp0(g_ptr_array_index(steps, j), t->action) == 0;
		if (!seen)
			g_ptr_array_add(steps, (gpointer)t->action);
	}
	g_ptr_array_add(steps, NULL);

	g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
	g_variant_builder_add(&b, "{sv}", "kind", g_variant_new_string(plugin->kind));
	g_variant_builder_add(&b, "{sv}", "subject_type",
			      g_variant_new_string(cs_subject_type_to_string(subject_type)));
	g_variant_builder_add(
	    &b, "{sv}", "title_zh",
	    g_variant_new_string(plugin->title_zh != NULL ? plugin->title_zh : ""));
	g_variant_builder_add(&b, "{sv}", "summary",
			      g_variant_new_string(plugin->summary != NULL ? plugin->summary : ""));
	g_variant_builder_add(&b, "{sv}", "changes_identity",
			      g_variant_new_boolean(plugin->may_change_identity));
	g_variant_builder_add(&b, "{sv}", "fields", g_variant_builder_end(&fields));
	g_variant_builder_add(&b, "{sv}", "materials", g_variant_builder_end(&materials));
	g_variant_builder_add(&b, "{sv}", "steps",
			      g_variant_new_strv((const char *const *)steps->pdata, -1));
	g_variant_builder_add(&b, "{sv}", "states", strv_or_empty(plugin->states));
	return g_variant_builder_end(&b);
}
