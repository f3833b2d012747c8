/*
 * cs-qr-term.c — QR codes in the terminal.
 *
 * Each character cell shows two modules stacked (upper and lower half block), so the code
 * keeps its square shape in a terminal whose cells are about twice as high as wide. Error
 * correction level M: a phone still reads it when a few cells render badly.
 */
#include <gio/gio.h>
#include <qrencode.h>
#include <string.h>

#include "cs-qr-term.h"

#define QUIET 4

static gboolean
dark_at(const QRcode *qr, int x, int y)
{
	if (x < 0 || y < 0 || x >= qr->width || y >= qr->width)
		return FALSE;
	return (qr->data[y * qr->width + x] & 1) != 0;
}

char *
cs_qr_term_render(const char *payload, gboolean light_background, GError **error)
{
	QRcode *qr = QRcode_encodeString8bit(payload, 0, QR_ECLEVEL_M);
	GString *out;
	int size;

	if (qr == NULL) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
			    "cannot encode %zu bytes as a QR code", strlen(payload));
		return NULL;
	}
	out = g_string_new(NULL);
	size = qr->width + 2 * QUIET;
	for (int y = -QUIET; y < size - QUIET; y += 2) {
		for (int x = -QUIET; x < size - QUIET; x++) {
			/* "ink" is what the terminal draws in its foreground colour. */
			gboolean top = dark_at(qr, x, y) == light_background;
			gboolean bottom = y + 1 < size - QUIET
					      ? dark_at(qr, x, y + 1) == light_background
					      : !light_background;
			g_string_append(out, top ? (bottom ? "█" : "▀") : (bottom ? "▄" : " "));
		}
		g_string_append_c(out, '\n');
	}
	QRcode_free(qr);
	return g_string_free(out, FALSE);
}
