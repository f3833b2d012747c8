/*
 * fuzz-material.c — libFuzzer target for the sniffing of uploaded materials (docs/architecture.md
 * §6): PNG chunks and CRCs, JPEG segments and scans, the PDF trailer. Whatever the bytes, the
 * answer is a type or a refusal, with no read outside the input (ASan) and no overflow
 * in the length arithmetic (UBSan).
 */
#define G_LOG_DOMAIN "fuzz-material"

#include <glib.h>

#include "cs-material.h"

int LLVMFuzzerTestOneInput(const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput(const guint8 *data, size_t size)
{
	/* An exact copy, so that reading one byte past the end is caught. */
	guint8 *copy = g_memdup2(data, size);
	GError *error = NULL;
	CsMaterialType type = CS_MATERIAL_UNKNOWN;
	gboolean ok = cs_material_check("material", copy, size, 10 << 20, &type, &error);

	g_assert(ok == (error == NULL));
	g_assert(!ok || type == cs_material_sniff(copy, size));
	g_clear_error(&error);
	g_free(copy);
	return 0;
}
