/* A plugin built against plugin ABI 1 (1.2, before transitions carried their own hooks):
 * its table has another layout, so it must be refused before its entry runs. */
#include <gmodule.h>
#include <stdlib.h>

#include "certseal/plugin.h"

G_MODULE_EXPORT const int certseal_plugin_abi_major = 1;
G_MODULE_EXPORT const int certseal_plugin_abi_minor = 2;

G_MODULE_EXPORT const CsPlugin *certseal_plugin_get(void);
const CsPlugin *
certseal_plugin_get(void)
{
	abort(); /* the loader must never get here */
}
