/* A well-formed flow plugin of kind "good": draft → done, for the loader tests. */
#include <gmodule.h>

#include "certseal/plugin.h"

CS_PLUGIN_DEFINE_ABI();

static const char *const states[] = {"draft", "done", NULL};
static const char *const editable[] = {"draft", NULL};
static const CsFieldSpec fields[] = {
    {"note", CS_FIELD_TEXT, CS_SUBJECT_ANY, TRUE, FALSE, NULL, 40},
};
static const CsTransition transitions[] = {
    {"finish", "draft", "done", CS_ACTOR_DESKTOP | CS_ACTOR_REVIEWER, CS_TRANSITION_NEEDS_FIELDS},
};
static const CsPlugin plugin = {
    .kind = "good",
    .summary = "test flow",
    .initial_state = "draft",
    .states = states,
    .editable_states = editable,
    .transitions = transitions,
    .n_transitions = G_N_ELEMENTS(transitions),
    .fields = fields,
    .n_fields = G_N_ELEMENTS(fields),
};

G_MODULE_EXPORT const CsPlugin *certseal_plugin_get(void);
const CsPlugin *
certseal_plugin_get(void)
{
	return &plugin;
}
