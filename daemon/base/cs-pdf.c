/*
 * cs-pdf.c — the drawing and rendering shared by every PDF the daemon makes (and by the
 * pictures it draws, such as generated seals).
 *
 * Text goes through pango with one font description naming the Debian CJK font first, so
 * Chinese and Latin mix on a line; the PDF embeds the subset it uses. Rendering writes
 * into memory: nothing touches the disk, and a failed render returns an error, never a
 * truncated document.
 */
#define G_LOG_DOMAIN "certseald"

#include <cairo-pdf.h>

#include "certseal/plugin.h"
#include "cs-pdf.h"

#define FONT "WenQuanYi Micro Hei, Noto Sans CJK SC, sans-serif"

PangoLayout *
cs_pdf_layout_new(cairo_t *cr, const char *text, double size, gboolean bold)
{
	PangoLayout *layout = pango_cairo_create_layout(cr);
	PangoFontDescription *font = pango_font_description_from_string(FONT);

	pango_font_description_set_absolute_size(font, size * PANGO_SCALE);
	if (bold)
		pango_font_description_set_weight(font, PANGO_WEIGHT_BOLD);
	pango_layout_set_font_description(layout, font);
	pango_font_description_free(font);
	pango_layout_set_text(layout, text, -1);
	return layout;
}

double
cs_pdf_text(cairo_t *cr,
	    const char *text,
	    double x,
	    double y,
	    double width,
	    double size,
	    gboolean bold,
	    PangoAlignment align)
{
	g_autoptr(PangoLayout) layout = cs_pdf_layout_new(cr, text, size, bold);
	int w, h;

	pango_layout_set_width(layout, (int)(width * PANGO_SCALE));
	pango_layout_set_wrap(layout, PANGO_WRAP_WORD_CHAR);
	pango_layout_set_alignment(layout, align);
	cairo_move_to(cr, x, y);
	pango_cairo_show_layout(cr, layout);
	pango_layout_get_size(layout, &w, &h);
	return (double)h / PANGO_SCALE;
}

cairo_status_t
cs_pdf_write_to_bytes(void *closure, const unsigned char *data, unsigned int length)
{
	g_byte_array_append(closure, data, length);
	return CAIRO_STATUS_SUCCESS;
}

GBytes *
cs_pdf_render(double width,
	      double height,
	      const char *title,
	      CsPdfDrawFunc draw,
	      gconstpointer data,
	      GError **error)
{
	g_autoptr(GByteArray) pdf = g_byte_array_new();
	cairo_surface_t *surface =
	    cairo_pdf_surface_create_for_stream(cs_pdf_write_to_bytes, pdf, width, height);
	cairo_t *cr = cairo_create(surface);
	cairo_status_t status;

	cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_TITLE, title);
	cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_CREATOR, "certseal");
	cairo_set_source_rgb(cr, 0, 0, 0);
	draw(cr, data);
	cairo_show_page(cr);
	status = cairo_status(cr);
	cairo_destroy(cr);
	cairo_surface_finish(surface);
	if (status == CAIRO_STATUS_SUCCESS)
		status = cairo_surface_status(surface);
	cairo_surface_destroy(surface);
	if (status != CAIRO_STATUS_SUCCESS) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "rendering %s: %s", title,
			    cairo_status_to_string(status));
		return NULL;
	}
	return g_byte_array_free_to_bytes(g_steal_pointer(&pdf));
}
