/* A driver with version integers but no entry symbol. */
#include "certseal/driver.h"

CS_DRIVER_DEFINE_ABI();
