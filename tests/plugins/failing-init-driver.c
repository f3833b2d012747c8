/* A driver named "failing" whose init refuses; its vendor is skipped, nothing else. */
#include <stdio.h>

#include "certseal/driver.h"

CS_DRIVER_DEFINE_ABI();

static CsDriverStatus
failing_init(const CsDriverConfig *config, CsDriverContext **ctx, CsDriverError *err)
{
	snprintf(err->message, sizeof(err->message), "no module at %s",
		 config->module != NULL ? config->module : "(none)");
	return CS_DRIVER_ERR_FAILED;
}

static void
failing_shutdown(CsDriverContext *ctx)
{
}

static const CsDriverOps ops = {
    .size = sizeof(CsDriverOps),
    .name = "failing",
    .init = failing_init,
    .shutdown = failing_shutdown,
};

CS_DRIVER_EXPORT const CsDriverOps *certseal_driver_get_ops(void);
const CsDriverOps *
certseal_driver_get_ops(void)
{
	return &ops;
}
