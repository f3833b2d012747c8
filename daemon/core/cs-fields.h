/*
 * cs-fields.h — a flow's fields: finding a field's declaration, validating one value, and
 * describing a flow to clients (Manager.GetFlow), all from the plugin's tables.
 */
#pragma once

#include <glib.h>

#include "certseal/plugin.h"
#include "cs-config.h"

G_BEGIN_DECLS

/* The declaration of field @name for @subject_type, or NULL when the flow has none. */
const CsFieldSpec *
cs_fields_find(const CsPlugin *plugin, CsSubjectType subject_type, const char *name);

/* Validate one value of @spec's type; *normalized is the string to store (upper-cased
 * codes, an 11-digit phone), or NULL for "" (which removes the field). The error does not
 * name the field: the caller prefixes it. */
gboolean cs_fields_validate_value(const CsConfig *config,
				  const CsFieldSpec *spec,
				  const char *value,
				  char **normalized,
				  GError **error);

/* The name of a field type as GetFlow shows it ("text", "uscc", "phone", …). */
const char *cs_field_type_to_string(CsFieldType type);

/* The a{sv} of Manager.GetFlow (a floating reference): kind, title_zh, summary, fields
 * (aa{sv}), materials (aa{sv}), steps (as: the actions a desktop caller takes, in the
 * order of the flow's table) and states (as). */
GVariant *cs_fields_describe_flow(const CsPlugin *plugin, CsSubjectType subject_type);

G_END_DECLS
