/* A flow plugin built against minor 0 of flow-plugin ABI 2 (its table ends with
 * contact_phone): it must keep loading, and the hooks later minors added must read as
 * absent. */
#include <gmodule.h>
#include <stddef.h>

#include "certseal/plugin.h"

G_MODULE_EXPORT const int certseal_plugin_abi_major = CS_PLUGIN_ABI_MAJOR;
G_MODULE_EXPORT const int certseal_plugin_abi_minor = 0;

static const char *const states[] = {"draft", "done", NULL};
static const CsTransition transitions[] = {
    {"finish", "draft", "done", CS_ACTOR_DESKTOP},
};

static gboolean
never_called(CsCreate *create, GError **error)
{
	g_error("a minor-0 plugin's table ends before prepare_order");
	return FALSE;
}

/* Past what a minor-0 build had, this table holds a hook the daemon must never call. */
static const CsPlugin plugin = {
    .kind = "oldminor",
    .summary = "a flow of flow-plugin ABI 2.0",
    .initial_state = "draft",
    .states = states,
    .transitions = transitions,
    .n_transitions = G_N_ELEMENTS(transitions),
    .prepare_order = never_called,
};

G_MODULE_EXPORT const CsPlugin *certseal_plugin_get(void);
const CsPlugin *
certseal_plugin_get(void)
{
	return &plugin;
}
