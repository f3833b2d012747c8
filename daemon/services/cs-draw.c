/*
 * cs-draw.c — opening the drawing module on first use (see cs-draw.h).
 *
 * Invariants: the module is opened at most once, under a lock, and never closed (pango and
 * fontconfig keep per-thread and global state); a failure to open it is remembered as its
 * message, so every later drawing fails the same way without touching the disk again.
 */
#define G_LOG_DOMAIN "certseald"

#include <gmodule.h>

#include "certseal/plugin.h"
#include "cs-build-config.h"
#include "cs-draw.h"
#include "cs-loader.h"

/* Linked in by programs that carry the drawing code themselves. */
extern const CsDrawOps *certseal_draw_ops(void) __attribute__((weak));

G_LOCK_DEFINE_STATIC(module);
static char *module_path;
static gboolean module_test_mode;
static const CsDrawOps *ops;
static char *failure;

void
cs_draw_set_module(const char *path, gboolean test_mode)
{
	G_LOCK(module);
	g_free(module_path);
	module_path = g_strdup(path);
	module_test_mode = test_mode;
	G_UNLOCK(module);
}

static const CsDrawOps *
open_module(const char *path, gboolean test_mode, GError **error)
{
	const CsDrawOps *(*get)(void) = NULL;
	const CsDrawOps *found;
	GModule *module;

	if (!cs_loader_check_file(path, test_mode, error))
		return NULL;
	module = g_module_open(path, G_MODULE_BIND_LOCAL);
	if (module == NULL) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "cannot open: %s",
			    g_module_error());
		return NULL;
	}
	if (!g_module_symbol(module, "certseal_draw_ops", (gpointer *)&get) || get == NULL ||
	    (found = get()) == NULL || found->version != CS_DRAW_VERSION) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL,
			    "not a drawing module of this certseald (version %d)", CS_DRAW_VERSION);
		g_module_close(module);
		return NULL;
	}
	g_module_make_resident(module);
	g_info("drawing module %s: loaded", path);
	return found;
}

static const CsDrawOps *
get_ops(GError **error)
{
	const CsDrawOps *result;

	if (certseal_draw_ops != NULL)
		return certseal_draw_ops();
	G_LOCK(module);
	if (ops == NULL && failure == NULL) {
		g_autoptr(GError) local = NULL;
		const char *path = module_path != NULL ? module_path : CS_DRAW_MODULE;

		ops = open_module(path, module_test_mode, &local);
		if (ops == NULL) {
			failure = g_strdup_printf("drawing module %s: %s", path, local->message);
			g_warning("%s", failure);
		}
	}
	result = ops;
	if (result == NULL)
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INTERNAL, failure);
	G_UNLOCK(module);
	return result;
}

GBytes *
cs_draw_seal_picture(
    const char *name, gboolean org, guint *width_mm, guint *height_mm, GError **error)
{
	const CsDrawOps *d = get_ops(error);

	return d != NULL ? d->seal_picture(name, org, width_mm, height_mm, error) : NULL;
}

GBytes *
cs_draw_form(const char *name, GError **error)
{
	const CsDrawOps *d = get_ops(error);

	return d != NULL ? d->form(name, error) : NULL;
}

GBytes *
cs_draw_invoice(const CsInvoice *invoice, GError **error)
{
	const CsDrawOps *d = get_ops(error);

	return d != NULL ? d->invoice(invoice, error) : NULL;
}
