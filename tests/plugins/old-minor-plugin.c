/* A plugin built against plugin ABI 1.0, before materials were declared: whatever lies
 * after its table must never be read. Here that place holds garbage on purpose. */
#include <gmodule.h>

#include "certseal/plugin.h"

G_MODULE_EXPORT const int certseal_plugin_abi_major = CS_PLUGIN_ABI_MAJOR;
G_MODULE_EXPORT const int certseal_plugin_abi_minor = 0;

static const char *const states[] = {"draft", "done", NULL};
static const CsTransition transitions[] = {
    {"finish", "draft", "done", CS_ACTOR_DESKTOP, 0},
};
static const CsPlugin plugin = {
    .kind = "oldminor",
    .initial_state = "draft",
    .states = states,
    .transitions = transitions,
    .n_transitions = G_N_ELEMENTS(transitions),
    /* Past the end of a 1.0 table: a real old plugin has other data here. */
    .materials = (const CsMaterialSpec *)0x1,
    .n_materials = 99,
    .material_states = (const char *const *)0x1,
};

G_MODULE_EXPORT const CsPlugin *certseal_plugin_get(void);
const CsPlugin *
certseal_plugin_get(void)
{
	return &plugin;
}
