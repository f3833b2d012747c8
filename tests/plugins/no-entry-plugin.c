/* A plugin with version integers but no entry symbol. */
#include <gmodule.h>

#include "certseal/plugin.h"

CS_PLUGIN_DEFINE_ABI();
