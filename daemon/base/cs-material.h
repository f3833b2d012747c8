/*
 * cs-material.h — uploaded materials (docs/architecture.md §3.5, §6): the type is sniffed from the
 * content, never taken from the file name, and the size is bounded.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
	CS_MATERIAL_UNKNOWN,
	CS_MATERIAL_PNG,
	CS_MATERIAL_JPEG,
	CS_MATERIAL_PDF,
} CsMaterialType;

const char *cs_material_type_to_mime(CsMaterialType type);

/* The type @data really is, or CS_MATERIAL_UNKNOWN when its whole structure does not hold
 * (cs-material.c says what is checked). One pass over the chunks or segments, no pixel
 * decoded; never trusts lengths inside the data beyond @len. */
CsMaterialType cs_material_sniff(const guint8 *data, gsize len);

/*
 * Check an upload of @len bytes: not empty, at most @max_size, and a PNG, a JPEG or a PDF
 * whose structure holds (cs_material_sniff()). Errors are CS_ERROR_INVALID_INPUT naming @field:
 * "business_license: 52428800 bytes is larger than the 10 MiB limit".
 */
gboolean cs_material_check(const char *field,
			   const guint8 *data,
			   gsize len,
			   gsize max_size,
			   CsMaterialType *type_out,
			   GError **error);

/* The size limit as the errors show it: "10 MiB" when a whole number of MiB, else the
 * rounded IEC size ("1.5 MiB", "512 bytes"). */
char *cs_material_format_limit(gsize max_size);

G_END_DECLS
