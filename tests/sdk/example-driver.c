/*
 * example-driver.c — a vendor driver built out of tree against the installed SDK only
 * (`pkg-config --cflags certseal-driver`), as a vendor would ship one. It reports one
 * fixed token so that a Key object appears for it. Used by tests/integration/test_sdk.py.
 */
#include <certseal/driver.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

CS_DRIVER_DEFINE_ABI();

struct CsDriverContext {
	int unused;
};

static CsDriverStatus
example_init(const CsDriverConfig *config, CsDriverContext **ctx, CsDriverError *err)
{
	*ctx = calloc(1, sizeof(**ctx));
	return *ctx != NULL ? CS_DRIVER_OK : CS_DRIVER_ERR_FAILED;
}

static void
example_shutdown(CsDriverContext *ctx)
{
	free(ctx);
}

static CsDriverStatus
example_enumerate(CsDriverContext *ctx,
		  CsDriverTokenInfo *tokens,
		  size_t max,
		  size_t *n_found,
		  CsDriverError *err)
{
	*n_found = 0;
	if (max < 1)
		return CS_DRIVER_OK;
	memset(&tokens[0], 0, sizeof(tokens[0]));
	snprintf(tokens[0].serial, sizeof(tokens[0].serial), "EX0001");
	snprintf(tokens[0].label, sizeof(tokens[0].label), "example");
	snprintf(tokens[0].manufacturer, sizeof(tokens[0].manufacturer), "Example Vendor");
	snprintf(tokens[0].model, sizeof(tokens[0].model), "EX-1");
	*n_found = 1;
	return CS_DRIVER_OK;
}

static CsDriverStatus
example_pin_status(CsDriverContext *ctx,
		   const char *serial,
		   CsDriverPinStatus *status,
		   CsDriverError *err)
{
	status->tries_left = 3;
	status->initialized = 1;
	return CS_DRIVER_OK;
}

static const CsDriverOps ops = {
    .size = sizeof(CsDriverOps),
    .name = "example",
    .init = example_init,
    .shutdown = example_shutdown,
    .enumerate = example_enumerate,
    .pin_status = example_pin_status,
};

CS_DRIVER_EXPORT const CsDriverOps *certseal_driver_get_ops(void);
const CsDriverOps *
certseal_driver_get_ops(void)
{
	return &ops;
}
