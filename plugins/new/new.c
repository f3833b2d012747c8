/*
 * new.c — the new-certificate flow (新办, the manual's section 1), kind "new".
 *
 * Its steps (fill, Confirm, materials, Submit + SMS, pay, review, password by the identity
 * method, make on a blank key, ship, deliver; cancel and refund) are in
 * ../common/new-steps.c, shared with the flows that run exactly as new.
 */
#include <gmodule.h>

#include "new-steps.h"

CS_PLUGIN_DEFINE_ABI();

static const CsFieldSpec fields[] = {NEW_STEPS_FIELDS};
static const CsMaterialSpec materials[] = {NEW_STEPS_MATERIALS};
static const CsTransition transitions[] = {
    NEW_STEPS_TRANSITIONS(new_on_review, NULL, new_on_make, new_after_make, new_on_made)};
static const CsAttrSpec attrs[] = {NEW_STEPS_ATTRS, {NULL}};
static const CsPlugin plugin = {
    .kind = "new",
    .summary = "New certificate and e-seal on a UKey (新办)",
    .title_zh = "新办",
    .initial_state = "draft",
    .states = new_states,
    .terminal_states = new_terminal_states,
    .editable_states = new_editable_states,
    .material_states = new_material_states,
    .recoveries = new_recoveries,
    .transitions = transitions,
    .n_transitions = G_N_ELEMENTS(transitions),
    .fields = fields,
    .n_fields = G_N_ELEMENTS(fields),
    .materials = materials,
    .n_materials = G_N_ELEMENTS(materials),
    .attrs = attrs,
    .contact_phone = new_contact_phone,
};

G_MODULE_EXPORT const CsPlugin *certseal_plugin_get(void);

const CsPlugin *
certseal_plugin_get(void)
{
	return &plugin;
}
