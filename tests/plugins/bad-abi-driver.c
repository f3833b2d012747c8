/* A driver built against a newer minor ABI than the daemon's: must be refused. */
#include <stdlib.h>

#include "certseal/driver.h"

CS_DRIVER_EXPORT const int certseal_driver_abi_major = CS_DRIVER_ABI_MAJOR;
CS_DRIVER_EXPORT const int certseal_driver_abi_minor = CS_DRIVER_ABI_MINOR + 1;

CS_DRIVER_EXPORT const CsDriverOps *certseal_driver_get_ops(void);
const CsDriverOps *
certseal_driver_get_ops(void)
{
	abort(); /* the loader must never get here */
}
