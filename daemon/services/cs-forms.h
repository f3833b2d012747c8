/*
 * cs-forms.h — the printable blank forms the applicant downloads (docs/architecture.md §1.1):
 * 印章采样表 for organisations ("seal_form_org") and 个人签章采样表 for individuals
 * ("seal_form_person"), as PDF.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The names DownloadForm accepts, NULL-terminated. */
const char *const *cs_forms_names(void);

/* Render (once; later calls return the cached bytes) the PDF of form @name. Thread-safe;
 * takes tens of milliseconds the first time, so call it off the main loop.
 * CS_ERROR_INVALID_INPUT for an unknown name. */
GBytes *cs_forms_render(const char *name, GError **error);

/* Draw the PDF of form @name, every time (the drawing module's; cs_forms_render draws
 * through it). CS_ERROR_INVALID_INPUT for an unknown name. */
GBytes *cs_forms_draw(const char *name, GError **error);

G_END_DECLS
