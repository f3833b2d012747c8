/*
 * cs-draw.h — the drawing module: everything certseald draws with pango and cairo (the
 * seal pictures, the blank forms, the e-invoices) is built into certseal-draw.so, which
 * the daemon opens the first time it draws and keeps. An idle daemon that has drawn
 * nothing maps no pango, cairo, fontconfig, freetype or harfbuzz (docs/architecture.md,
 * "Drawing").
 *
 * The module is found at [daemon] draw_module (default CS_DRAW_MODULE) and is checked
 * like a plugin (cs_loader_check_file). A program that links the drawing code itself
 * (the unit tests) draws without opening anything.
 */
#pragma once

#include <glib.h>

#include "cs-invoice.h"

G_BEGIN_DECLS

/* What the module exports, as certseal_draw_ops(); CS_DRAW_VERSION changes with it. */
#define CS_DRAW_VERSION 1

typedef struct {
	int version;
	GBytes *(*seal_picture)(
	    const char *name, gboolean org, guint *width_mm, guint *height_mm, GError **error);
	GBytes *(*form)(const char *name, GError **error);
	GBytes *(*invoice)(const CsInvoice *invoice, GError **error);
} CsDrawOps;

const CsDrawOps *certseal_draw_ops(void);

/* Where the module is and whether its file's owner and mode go unchecked; once, at start. */
void cs_draw_set_module(const char *path, gboolean test_mode);

/* cs_seal_picture_render, cs_forms_draw and cs_invoice_render through the module; a module
 * that cannot be opened is CS_ERROR_INTERNAL naming the file. Thread-safe. */
GBytes *cs_draw_seal_picture(
    const char *name, gboolean org, guint *width_mm, guint *height_mm, GError **error);
GBytes *cs_draw_form(const char *name, GError **error);
GBytes *cs_draw_invoice(const CsInvoice *invoice, GError **error);

G_END_DECLS
