/* A driver named "crashing" whose init crashes: the daemon must refuse its vendor (the
 * init is probed in a child first) and serve the others. */
#include <signal.h>

#include "certseal/driver.h"

CS_DRIVER_DEFINE_ABI();

static CsDriverStatus
crashing_init(const CsDriverConfig *config, CsDriverContext **ctx, CsDriverError *err)
{
	raise(SIGSEGV);
	return CS_DRIVER_ERR_FAILED;
}

static void
crashing_shutdown(CsDriverContext *ctx)
{
}

static const CsDriverOps ops = {
    .size = sizeof(CsDriverOps),
    .name = "crashing",
    .init = crashing_init,
    .shutdown = crashing_shutdown,
};

CS_DRIVER_EXPORT const CsDriverOps *certseal_driver_get_ops(void);
const CsDriverOps *
certseal_driver_get_ops(void)
{
	return &ops;
}
