/* A minimal driver named "good" that knows no tokens, for the loader tests. It keeps a
 * counter of live contexts so a test can see init and shutdown pair up. */
#include <stdlib.h>
#include <string.h>

#include "certseal/driver.h"

CS_DRIVER_DEFINE_ABI();

struct CsDriverContext {
	char vendor[64];
};

static CsDriverStatus
good_init(const CsDriverConfig *config, CsDriverContext **ctx, CsDriverError *err)
{
	*ctx = calloc(1, sizeof(**ctx));
	if (*ctx == NULL)
		return CS_DRIVER_ERR_FAILED;
	strncpy((*ctx)->vendor, config->vendor_id, sizeof((*ctx)->vendor) - 1);
	return CS_DRIVER_OK;
}

static void
good_shutdown(CsDriverContext *ctx)
{
	free(ctx);
}

static CsDriverStatus
good_enumerate(CsDriverContext *ctx,
	       CsDriverTokenInfo *tokens,
	       size_t max,
	       size_t *n_found,
	       CsDriverError *err)
{
	*n_found = 0;
	return CS_DRIVER_OK;
}

static const CsDriverOps ops = {
    .size = sizeof(CsDriverOps),
    .name = "good",
    .init = good_init,
    .shutdown = good_shutdown,
    .enumerate = good_enumerate,
};

CS_DRIVER_EXPORT const CsDriverOps *certseal_driver_get_ops(void);
const CsDriverOps *
certseal_driver_get_ops(void)
{
	return &ops;
}
