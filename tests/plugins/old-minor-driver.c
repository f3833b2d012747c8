/* A driver built against minor 0 of the driver ABI (its table ends with delete_object): it
 * must keep loading, and the operations later minors added must read as "not supported". */
#include <stddef.h>
#include <stdlib.h>

#include "certseal/driver.h"

CS_DRIVER_EXPORT const int certseal_driver_abi_major = CS_DRIVER_ABI_MAJOR;
CS_DRIVER_EXPORT const int certseal_driver_abi_minor = 0;

struct CsDriverContext {
	int unused;
};

static CsDriverStatus
old_init(const CsDriverConfig *config, CsDriverContext **ctx, CsDriverError *err)
{
	*ctx = calloc(1, sizeof(**ctx));
	return *ctx != NULL ? CS_DRIVER_OK : CS_DRIVER_ERR_FAILED;
}

static void
old_shutdown(CsDriverContext *ctx)
{
	free(ctx);
}

/* What a minor-0 build's table held: everything up to delete_object. Past its size the
 * memory is this padding, set to a value the daemon would crash on if it read it. */
static const struct {
	CsDriverOps ops;
} table = {
    .ops =
	{
	    .size = offsetof(CsDriverOps, delete_key),
	    .name = "oldminor",
	    .init = old_init,
	    .shutdown = old_shutdown,
	    .delete_key = (void *)1,
	},
};

CS_DRIVER_EXPORT const CsDriverOps *certseal_driver_get_ops(void);
const CsDriverOps *
certseal_driver_get_ops(void)
{
	return &table.ops;
}
