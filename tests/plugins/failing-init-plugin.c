/* A plugin whose init fails with an error; the daemon must run on without it. */
#include <gmodule.h>

#include "certseal/plugin.h"

CS_PLUGIN_DEFINE_ABI();

static const char *const states[] = {"draft", NULL};

static gboolean
failing_init(GError **error)
{
	g_set_error_literal(error, CS_ERROR, CS_ERROR_INTERNAL, "backend unreachable");
	return FALSE;
}

static const CsPlugin plugin = {
    .kind = "failing",
    .initial_state = "draft",
    .states = states,
    .init = failing_init,
};

G_MODULE_EXPORT const CsPlugin *certseal_plugin_get(void);
const CsPlugin *
certseal_plugin_get(void)
{
	return &plugin;
}
