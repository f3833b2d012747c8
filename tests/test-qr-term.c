/*
 * test-qr-term.c — the terminal QR code decodes back to its payload: the half-block text
 * is turned back into modules, drawn as a PNG and read by a real decoder (zbarimg), for
 * dark and light terminals, ASCII and UTF-8 payloads.
 */
#include <cairo.h>
#include <glib/gstdio.h>
#include <string.h>

#include "cs-qr-term.h"

/* Modules from the text (TRUE = dark), undoing the half-block encoding. */
static GPtrArray *
modules_from_text(const char *text, gboolean light_background)
{
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	GPtrArray *rows = g_ptr_array_new_with_free_func((GDestroyNotify)g_array_unref);

	for (guint i = 0; lines[i] != NULL && lines[i][0] != '\0'; i++) {
		GArray *top = g_array_new(FALSE, FALSE, sizeof(gboolean));
		GArray *bottom = g_array_new(FALSE, FALSE, sizeof(gboolean));
		for (const char *p = lines[i]; *p != '\0'; p = g_utf8_next_char(p)) {
			gunichar c = g_utf8_get_char(p);
			gboolean ink_top = c == 0x2588 || c == 0x2580;
			gboolean ink_bottom = c == 0x2588 || c == 0x2584;
			/* ink is a light module on a dark terminal, a dark one on a light terminal
			 */
			gboolean t = ink_top == light_background;
			gboolean b = ink_bottom == light_background;
			g_assert_true(c == ' ' || c == 0x2588 || c == 0x2580 || c == 0x2584);
			g_array_append_val(top, t);
			g_array_append_val(bottom, b);
		}
		g_ptr_array_add(rows, top);
		g_ptr_array_add(rows, bottom);
	}
	return rows;
}

static char *
decode(const char *text, gboolean light_background)
{
	g_autoptr(GPtrArray) rows = modules_from_text(text, light_background);
	g_autofree char *dir = g_dir_make_tmp("cs-qr-XXXXXX", NULL);
	g_autofree char *png = g_build_filename(dir, "qr.png", NULL);
	GArray *first = g_ptr_array_index(rows, 0);
	const int scale = 6, border = 24;
	int w = (int)first->len * scale + 2 * border, h = (int)rows->len * scale + 2 * border;
	cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
	cairo_t *cr = cairo_create(s);
	const char *argv[] = {"zbarimg", "--raw", "-q", png, NULL};
	char *out = NULL;
	int status = 0;

	cairo_set_source_rgb(cr, 1, 1, 1);
	cairo_paint(cr);
	cairo_set_source_rgb(cr, 0, 0, 0);
	for (guint y = 0; y < rows->len; y++) {
		GArray *row = g_ptr_array_index(rows, y);
		for (guint x = 0; x < row->len; x++) {
			if (g_array_index(row, gboolean, x))
				cairo_rectangle(cr, border + x * scale, border + y * scale, scale,
						scale);
		}
	}
	cairo_fill(cr);
	cairo_destroy(cr);
	g_assert_cmpint(cairo_surface_write_to_png(s, png), ==, CAIRO_STATUS_SUCCESS);
	cairo_surface_destroy(s);
	g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out,
				   NULL, &status, NULL));
	g_unlink(png);
	g_rmdir(dir);
	g_strchomp(out);
	return out;
}

static void
round_trip(const char *payload)
{
	for (int light = 0; light <= 1; light++) {
		g_autoptr(GError) error = NULL;
		g_autofree char *text = cs_qr_term_render(payload, light, &error);
		g_autofree char *back = NULL;

		g_assert_no_error(error);
		back = decode(text, light);
		g_assert_cmpstr(back, ==, payload);
	}
}

static void
test_sandbox_payload(void)
{
	round_trip(
	    "certseal-sandbox://pay?order=CS20261124000042&amount_fen=30000&expires=1795536000");
}

static void
test_long_gateway_payload(void)
{
	round_trip(
	    "https://qr.alipay.com/bax08431xjkr2g2fhjlp0016?t=1795536000&order=CS20261124000042"
	    "&sign=MEUCIQDkq1jzL8fX0vQk4lJ2");
}

static void
test_utf8_payload(void)
{
	round_trip("订单 CS20261124000042 应付 ¥300.00");
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/cli/pay/qr-decodes-sandbox-payload", test_sandbox_payload);
	g_test_add_func("/cli/pay/qr-decodes-long-gateway-payload", test_long_gateway_payload);
	g_test_add_func("/cli/pay/qr-decodes-utf8-payload", test_utf8_payload);
	return g_test_run();
}
