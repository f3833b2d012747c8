/*
 * cs-pdf.h — one-page PDF documents drawn with cairo and laid out by pango in a CJK font
 * (the seal-sample forms, e-invoices), and the text helpers other drawings share.
 */
#pragma once

#include <cairo.h>
#include <glib.h>
#include <pango/pangocairo.h>

G_BEGIN_DECLS

typedef void (*CsPdfDrawFunc)(cairo_t *cr, gconstpointer data);

/* A one-page PDF of @width × @height points titled @title, drawn by @draw. */
GBytes *cs_pdf_render(double width,
		      double height,
		      const char *title,
		      CsPdfDrawFunc draw,
		      gconstpointer data,
		      GError **error);

/* A pango layout of @text in the CJK font, @size points (user-space units) high. */
PangoLayout *cs_pdf_layout_new(cairo_t *cr, const char *text, double size, gboolean bold);

/* A cairo_write_func_t appending to the GByteArray @closure: renders into memory. */
cairo_status_t cs_pdf_write_to_bytes(void *closure, const unsigned char *data, unsigned int length);

/* Lay out @text at (@x, @y) within @width, in the current source colour; returns the
 * height used, in points. */
double cs_pdf_text(cairo_t *cr,
		   const char *text,
		   double x,
		   double y,
		   double width,
		   double size,
		   gboolean bold,
		   PangoAlignment align);

G_END_DECLS
