/*
 * cs-qr-term.h — a QR code drawn with Unicode half blocks, for payment codes in the
 * terminal (docs/architecture.md §3.6).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * Render @payload as lines of "█▀▄ " characters, two QR rows per text line, with a
 * four-module quiet zone. Light modules are drawn as blocks (a light foreground on a
 * dark terminal); @light_background swaps that for terminals with dark text on light.
 */
char *cs_qr_term_render(const char *payload, gboolean light_background, GError **error);

G_END_DECLS
