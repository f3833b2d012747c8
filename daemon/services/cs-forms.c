/*
 * cs-forms.c — the blank seal-sample forms as PDF, drawn by cs-forms-draw.c in the drawing
 * module (cs-draw.h) on first download and kept.
 *
 * The applicant prints the form, stamps or signs inside the boxes, has it sealed and
 * uploads the scan as the `seal_form` material (docs/architecture.md §1.1). The forms are A4, drawn
 * in points; seal boxes are 45 mm square because an official seal is at most 42 mm across.
 *
 * Invariants: a form's bytes never change while the daemon runs (rendered once under a
 * lock, then shared read-only); text is laid out by pango so Chinese and Latin mix with
 * one font description and fontconfig fallback.
 */
#define G_LOG_DOMAIN "certseald"

#include "certseal/plugin.h"
#include "cs-draw.h"
#include "cs-forms.h"

static const char *const form_names[] = {"seal_form_org", "seal_form_person", NULL};

G_LOCK_DEFINE_STATIC(cache);
static GHashTable *cache; /* name → GBytes */

const char *const *
cs_forms_names(void)
{
	return form_names;
}

GBytes *
cs_forms_render(const char *name, GError **error)
{
	const char *form = NULL;
	GBytes *bytes;

	for (guint i = 0; form_names[i] != NULL; i++) {
		if (g_strcmp0(form_names[i], name) == 0)
			form = form_names[i];
	}
	if (form == NULL) {
		g_autofree char *known = g_strjoinv(", ", (char **)form_names);
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "name: no form '%s' (available: %s)", name, known);
		return NULL;
	}
	G_LOCK(cache);
	if (cache == NULL)
		cache = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
					      (GDestroyNotify)g_bytes_unref);
	bytes = g_hash_table_lookup(cache, form);
	if (bytes == NULL) {
		bytes = cs_draw_form(form, error);
		if (bytes != NULL)
			g_hash_table_insert(cache, (gpointer)form, bytes);
	}
	if (bytes != NULL)
		g_bytes_ref(bytes);
	G_UNLOCK(cache);
	return bytes;
}
