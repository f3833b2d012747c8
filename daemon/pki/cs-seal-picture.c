/*
 * cs-seal-picture.c — drawing a red official seal (see cs-seal-picture.h).
 *
 * Drawn with cairo on an alpha-only (A8) image surface in millimetres (the surface is
 * scaled by CS_SEAL_PICTURE_PX_PER_MM), text laid out by pango in the CJK font of the PDFs
 * (cs_pdf_layout_new), one character at a time so that each can be turned and sized on
 * its own. Pixels outside the strokes and glyphs stay fully transparent, so the seal can
 * be laid over a document. Rendering happens in memory and fails as a whole.
 *
 * The seal has one colour, so the PNG is indexed: 256 palette entries of seal red whose
 * transparency (tRNS) is the index, one byte a pixel holding the drawn alpha. Encoding
 * that takes a quarter of the bytes an RGBA PNG does, with no filters to choose per row,
 * and is most of a drawing's time otherwise (docs/architecture.md §8).
 */
#define G_LOG_DOMAIN "certseald"

#include <math.h>
#include <png.h>

#include "certseal/plugin.h"
#include "cs-ca.h"
#include "cs-pdf.h"
#include "cs-seal-picture.h"
#include "cs-validate.h"

/* Seal red (vermilion): R 0.86, G 0.05, B 0.08; the same in 8 bits for the palette. */
#define SEAL_RED 0.86, 0.05, 0.08
#define SEAL_RED_8 219, 13, 20

/* zlib's level for the PNG: the picture is mostly transparent; the fastest level makes
 * it about 15 % larger than the default level in a third of the time. */
#define PNG_LEVEL 1

/* Round seal geometry, mm. */
#define ORG_RING_WIDTH 1.2
#define ORG_STAR_RADIUS 7.0
#define ORG_TEXT_GAP 0.8		/* between the ring and the tops of the characters */
#define ORG_TEXT_SIZE 6.0		/* preferred character size */
#define ORG_TEXT_MIN_SIZE 3.5		/* long names get smaller characters, then narrower ones */
#define ORG_TEXT_X_SCALE 0.85		/* seal characters are narrower than they are tall */
#define ORG_TEXT_MAX_ARC (G_PI * 4 / 3) /* the name spans at most 240° */

/* Glyph outlines are stroked this wide as well as filled: seal characters are heavier than
 * the font's, and a synthetic bold face smears when turned. */
#define TEXT_STROKE 0.1

/* Square seal geometry, mm. */
#define PERSON_FRAME_WIDTH 1.0
#define PERSON_TEXT_GAP 0.5    /* between the frame and the characters' cells */
#define PERSON_TEXT_FILL 0.9   /* of a cell a character's ink fills */
#define PERSON_MAX_STRETCH 1.3 /* of a whole em, how far a small glyph may grow */
#define CELL_FONT_SIZE 10.0    /* the size laid out before the stretch */

/* @name cut into characters, each with the combining marks that follow it. */
static GPtrArray *
split_characters(const char *name)
{
	GPtrArray *chars = g_ptr_array_new_with_free_func(g_free);
	const char *start = name;

	while (*start != '\0') {
		const char *end = g_utf8_next_char(start);
		while (*end != '\0' && g_unichar_ismark(g_utf8_get_char(end)))
			end = g_utf8_next_char(end);
		g_ptr_array_add(chars, g_strndup(start, (gsize)(end - start)));
		start = end;
	}
	return chars;
}

/* A layout of one character for outlines that get turned and stretched: unhinted, since
 * outlines hinted to the pixel grid of an upright glyph come out mangled when turned. */
static PangoLayout *
character_layout(cairo_t *cr, const char *ch, double size)
{
	PangoLayout *layout = cs_pdf_layout_new(cr, ch, size, FALSE);
	cairo_font_options_t *options = cairo_font_options_create();

	cairo_font_options_set_hint_style(options, CAIRO_HINT_STYLE_NONE);
	cairo_font_options_set_hint_metrics(options, CAIRO_HINT_METRICS_OFF);
	pango_cairo_context_set_font_options(pango_layout_get_context(layout), options);
	cairo_font_options_destroy(options);
	pango_layout_context_changed(layout);
	return layout;
}

/* Fill the glyph outlines of the current path and stroke them @stroke wide. */
static void
paint_heavy(cairo_t *cr, double stroke)
{
	cairo_fill_preserve(cr);
	cairo_set_line_width(cr, stroke);
	cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
	cairo_stroke(cr);
}

/* --- the round seal of an organisation ----------------------------------------------- */

static void
draw_star(cairo_t *cr, double cx, double cy, double radius)
{
	double inner = radius * 0.382; /* the regular pentagram's inner radius */

	for (int i = 0; i < 10; i++) {
		double r = i % 2 == 0 ? radius : inner;
		double a = -G_PI / 2 + i * G_PI / 5;
		if (i == 0)
			cairo_move_to(cr, cx + r * cos(a), cy + r * sin(a));
		else
			cairo_line_to(cr, cx + r * cos(a), cy + r * sin(a));
	}
	cairo_close_path(cr);
	cairo_fill(cr);
}

/* One character centred on the angle @angle (0 = straight up, clockwise), its top
 * @top mm from the centre, @size high and @x_scale narrowed. */
static void
draw_arc_character(cairo_t *cr,
		   const char *ch,
		   double center,
		   double angle,
		   double top,
		   double size,
		   double x_scale)
{
	g_autoptr(PangoLayout) layout = NULL;
	PangoRectangle logical;

	cairo_save(cr);
	cairo_translate(cr, center, center);
	cairo_rotate(cr, angle);
	cairo_translate(cr, 0, -top);
	cairo_scale(cr, x_scale, 1);
	layout = character_layout(cr, ch, size);
	pango_layout_get_extents(layout, NULL, &logical);
	cairo_move_to(cr, -(double)logical.width / PANGO_SCALE / 2, 0);
	pango_cairo_layout_path(cr, layout);
	cairo_restore(cr); /* the path stays, in device space */
	paint_heavy(cr, TEXT_STROKE * size / ORG_TEXT_SIZE);
}

static void
draw_org(cairo_t *cr, GPtrArray *chars)
{
	double center = CS_SEAL_PICTURE_ORG_MM / 2.0;
	double ring = center - 0.3 - ORG_RING_WIDTH / 2; /* 0.3 mm for the antialiased edge */
	double top = ring - ORG_RING_WIDTH / 2 - ORG_TEXT_GAP;
	double size = ORG_TEXT_SIZE, x_scale = ORG_TEXT_X_SCALE;
	guint n = chars->len;
	double pitch, step;

	cairo_set_line_width(cr, ORG_RING_WIDTH);
	cairo_arc(cr, center, center, ring, 0, 2 * G_PI);
	cairo_stroke(cr);
	draw_star(cr, center, center, ORG_STAR_RADIUS);

	/* Each character takes a pitch of 1.1 × its width along the arc through its middle;
	 * a name too long for the arc gets smaller characters, then narrower ones. */
	pitch = size * x_scale * 1.1 / (top - size / 2);
	if (n * pitch > ORG_TEXT_MAX_ARC) {
		size = MAX(ORG_TEXT_MIN_SIZE, size * ORG_TEXT_MAX_ARC / (n * pitch));
		pitch = size * x_scale * 1.1 / (top - size / 2);
	}
	if (n * pitch > ORG_TEXT_MAX_ARC) {
		x_scale *= ORG_TEXT_MAX_ARC / (n * pitch);
		pitch = ORG_TEXT_MAX_ARC / n;
	}
	/* A short name is spread out, up to twice the pitch, as the stamp makers do. */
	step = MIN(ORG_TEXT_MAX_ARC / n, 2 * pitch);
	for (guint i = 0; i < n; i++)
		draw_arc_character(cr, g_ptr_array_index(chars, i), center,
				   -step * (n - 1) / 2 + step * i, top, size, x_scale);
}

/* --- the square seal of a person ----------------------------------------------------- */

/* One character stretched to fill the cell at (@x, @y) of @w × @h. */
static void
draw_cell_character(cairo_t *cr, const char *ch, double x, double y, double w, double h)
{
	g_autoptr(PangoLayout) layout = character_layout(cr, ch, CELL_FONT_SIZE);
	PangoRectangle ink;
	double iw, ih, sx, sy;

	pango_layout_get_extents(layout, &ink, NULL);
	iw = (double)ink.width / PANGO_SCALE;
	ih = (double)ink.height / PANGO_SCALE;
	if (iw <= 0 || ih <= 0)
		return; /* a space */
	/* The ink fills the cell, growing at most PERSON_MAX_STRETCH times what a whole em
	 * would: a "一" stays a line and a "·" a dot. */
	sx = MIN(w / iw, PERSON_MAX_STRETCH * w / CELL_FONT_SIZE) * PERSON_TEXT_FILL;
	sy = MIN(h / ih, PERSON_MAX_STRETCH * h / CELL_FONT_SIZE) * PERSON_TEXT_FILL;
	cairo_save(cr);
	cairo_translate(cr, x + w / 2, y + h / 2);
	cairo_scale(cr, sx, sy);
	cairo_translate(cr, -(double)ink.x / PANGO_SCALE - iw / 2,
			-(double)ink.y / PANGO_SCALE - ih / 2);
	cairo_move_to(cr, 0, 0);
	pango_cairo_update_layout(cr, layout);
	pango_cairo_layout_path(cr, layout);
	cairo_restore(cr); /* the path stays, in device space */
	paint_heavy(cr, TEXT_STROKE);
}

static void
draw_person(cairo_t *cr, GPtrArray *chars)
{
	double side = CS_SEAL_PICTURE_PERSON_MM;
	double frame = 0.1 + PERSON_FRAME_WIDTH / 2;
	double inner = frame + PERSON_FRAME_WIDTH / 2 + PERSON_TEXT_GAP;
	double cell_w = (side - 2 * inner) / 2;
	guint rows;
	double cell_h;

	/* The customary completions of a short name. */
	if (chars->len == 2)
		g_ptr_array_add(chars, g_strdup("之"));
	if (chars->len <= 3)
		g_ptr_array_add(chars, g_strdup("印"));
	rows = (chars->len + 1) / 2;
	cell_h = (side - 2 * inner) / rows;

	cairo_set_line_width(cr, PERSON_FRAME_WIDTH);
	cairo_rectangle(cr, frame, frame, side - 2 * frame, side - 2 * frame);
	cairo_stroke(cr);
	/* Right column first, each top to bottom. */
	for (guint i = 0; i < chars->len; i++) {
		guint column = i / rows, row = i % rows;
		draw_cell_character(cr, g_ptr_array_index(chars, i), inner + (1 - column) * cell_w,
				    inner + row * cell_h, cell_w, cell_h);
	}
}

/* --- rendering ------------------------------------------------------------------------ */

typedef struct {
	GByteArray *out;
	const char *failure; /* libpng's message, when it failed */
} PngWriter;

static void
png_write_bytes(png_structp png, png_bytep data, png_size_t length)
{
	PngWriter *w = png_get_io_ptr(png);

	g_byte_array_append(w->out, data, (guint)length);
}

static void
png_flush_nothing(png_structp png)
{
	(void)png;
}

static G_NORETURN void
png_failed(png_structp png, png_const_charp message)
{
	PngWriter *w = png_get_error_ptr(png);

	w->failure = message;
	png_longjmp(png, 1);
}

static void
png_warned(png_structp png, png_const_charp message)
{
	(void)png;
	(void)message;
}

/*
 * The A8 @surface as an indexed PNG appended to @out: palette entry i is seal red with
 * alpha i. FALSE with @failure set when libpng failed.
 */
static gboolean
encode_png(cairo_surface_t *surface, GByteArray *out, const char **failure)
{
	int width = cairo_image_surface_get_width(surface);
	int height = cairo_image_surface_get_height(surface);
	int stride = cairo_image_surface_get_stride(surface);
	unsigned char *data = cairo_image_surface_get_data(surface);
	PngWriter w = {out, NULL};
	png_color palette[256];
	png_byte alpha[256];
	png_structp png;
	png_infop info;

	for (guint i = 0; i < 256; i++) {
		palette[i] = (png_color){SEAL_RED_8};
		alpha[i] = (png_byte)i;
	}
	png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &w, png_failed, png_warned);
	info = png != NULL ? png_create_info_struct(png) : NULL;
	if (info == NULL) {
		png_destroy_write_struct(&png, NULL);
		*failure = "out of memory";
		return FALSE;
	}
	if (setjmp(png_jmpbuf(png))) {
		png_destroy_write_struct(&png, &info);
		*failure = w.failure != NULL ? w.failure : "libpng failed";
		return FALSE;
	}
	png_set_write_fn(png, &w, png_write_bytes, png_flush_nothing);
	png_set_compression_level(png, PNG_LEVEL);
	png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_NONE);
	png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_PALETTE,
		     PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_BASE, PNG_FILTER_TYPE_BASE);
	png_set_PLTE(png, info, palette, 256);
	png_set_tRNS(png, info, alpha, 256, NULL);
	png_write_info(png, info);
	for (int y = 0; y < height; y++)
		png_write_row(png, data + (gsize)y * (gsize)stride);
	png_write_end(png, info);
	png_destroy_write_struct(&png, &info);
	return TRUE;
}

GBytes *
cs_seal_picture_render(
    const char *name, gboolean org, guint *width_mm, guint *height_mm, GError **error)
{
	guint mm = org ? CS_SEAL_PICTURE_ORG_MM : CS_SEAL_PICTURE_PERSON_MM;
	int px = (int)(mm * CS_SEAL_PICTURE_PX_PER_MM);
	g_autoptr(GByteArray) png = g_byte_array_new();
	g_autoptr(GPtrArray) chars = NULL;
	cairo_surface_t *surface;
	cairo_t *cr;
	cairo_status_t status;
	const char *failure = NULL;

	if (name == NULL || !cs_validate_text(name, CS_SUBJECT_NAME_MAX, error)) {
		if (name == NULL)
			g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "missing");
		g_prefix_error(error, "name: ");
		return NULL;
	}
	chars = split_characters(name);
	/* A new image surface is cleared to transparent; on A8 only the ink's alpha counts. */
	surface = cairo_image_surface_create(CAIRO_FORMAT_A8, px, px);
	cr = cairo_create(surface);
	cairo_scale(cr, CS_SEAL_PICTURE_PX_PER_MM, CS_SEAL_PICTURE_PX_PER_MM);
	cairo_set_source_rgb(cr, SEAL_RED);
	if (org)
		draw_org(cr, chars);
	else
		draw_person(cr, chars);
	status = cairo_status(cr);
	cairo_destroy(cr);
	cairo_surface_flush(surface);
	if (status == CAIRO_STATUS_SUCCESS)
		status = cairo_surface_status(surface);
	if (status == CAIRO_STATUS_SUCCESS && !encode_png(surface, png, &failure)) {
		cairo_surface_destroy(surface);
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "encoding the seal: %s", failure);
		return NULL;
	}
	cairo_surface_destroy(surface);
	if (status != CAIRO_STATUS_SUCCESS) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "drawing the seal: %s",
			    cairo_status_to_string(status));
		return NULL;
	}
	if (width_mm != NULL)
		*width_mm = mm;
	if (height_mm != NULL)
		*height_mm = mm;
	return g_byte_array_free_to_bytes(g_steal_pointer(&png));
}
