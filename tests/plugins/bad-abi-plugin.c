/* A plugin built against a future major ABI: must be refused before its entry runs. */
#include <gmodule.h>
#include <stdlib.h>

#include "certseal/plugin.h"

G_MODULE_EXPORT const int certseal_plugin_abi_major = CS_PLUGIN_ABI_MAJOR + 1;
G_MODULE_EXPORT const int certseal_plugin_abi_minor = 0;

G_MODULE_EXPORT const CsPlugin *certseal_plugin_get(void);
const CsPlugin *
certseal_plugin_get(void)
{
	abort(); /* the loader must never get here */
}
