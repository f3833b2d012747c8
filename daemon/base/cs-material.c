/*
 * cs-material.c — sniffing and bounding uploaded materials.
 *
 * Accepted: PNG (signature and a well-formed IHDR first chunk with non-zero dimensions up
 * to 30000 px), JPEG (SOI followed by a marker), PDF ("%PDF-1." or "%PDF-2." within the
 * first 1024 bytes, as readers allow a little leading junk, and "%%EOF" in the last
 * 1024). Anything else — an executable renamed .pdf, an HTML page, a GIF — is refused. The
 * content is otherwise stored as sent: a reviewer opens it with a viewer of their own.
 */
#include <string.h>

#include "certseal/plugin.h"
#include "cs-material.h"

#define PNG_MAX_SIDE 30000

const char *
cs_material_type_to_mime(CsMaterialType type)
{
	switch (type) {
	case CS_MATERIAL_PNG:
		return "image/png";
	case CS_MATERIAL_JPEG:
		return "image/jpeg";
	case CS_MATERIAL_PDF:
		return "application/pdf";
	default:
		return "application/octet-stream";
	}
}

static guint32
be32(const guint8 *p)
{
	return ((guint32)p[0] << 24) | ((guint32)p[1] << 16) | ((guint32)p[2] << 8) | p[3];
}

static gboolean
is_png(const guint8 *d, gsize len)
{
	static const guint8 sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
	guint32 w, h;

	/* signature, IHDR length 13, "IHDR", width, height, depth, colour type, … */
	if (len < 8 + 8 + 13 + 4 || memcmp(d, sig, 8) != 0)
		return FALSE;
	if (be32(d + 8) != 13 || memcmp(d + 12, "IHDR", 4) != 0)
		return FALSE;
	w = be32(d + 16);
	h = be32(d + 20);
	return w > 0 && h > 0 && w <= PNG_MAX_SIDE && h <= PNG_MAX_SIDE;
}

static gboolean
is_jpeg(const guint8 *d, gsize len)
{
	return len >= 4 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff && d[3] >= 0xc0 &&
	       d[3] != 0xff;
}

static const guint8 *
find(const guint8 *hay, gsize hay_len, const char *needle)
{
	gsize n = strlen(needle);

	for (gsize i = 0; hay_len >= n && i <= hay_len - n; i++) {
		if (memcmp(hay + i, needle, n) == 0)
			return hay + i;
	}
	return NULL;
}

static gboolean
is_pdf(const guint8 *d, gsize len)
{
	gsize head = MIN(len, 1024);
	gsize tail = MIN(len, 1024);

	if (find(d, head, "%PDF-1.") == NULL && find(d, head, "%PDF-2.") == NULL)
		return FALSE;
	return find(d + len - tail, tail, "%%EOF") != NULL;
}

char *
cs_material_format_limit(gsize max_size)
{
	if (max_size > 0 && max_size % (1024 * 1024) == 0)
		return g_strdup_printf("%" G_GSIZE_FORMAT " MiB", max_size / (1024 * 1024));
	return g_format_size_full(max_size, G_FORMAT_SIZE_IEC_UNITS);
}

CsMaterialType
cs_material_sniff(const guint8 *data, gsize len)
{
	if (data == NULL || len == 0)
		return CS_MATERIAL_UNKNOWN;
	if (is_png(data, len))
		return CS_MATERIAL_PNG;
	if (is_jpeg(data, len))
		return CS_MATERIAL_JPEG;
	if (is_pdf(data, len))
		return CS_MATERIAL_PDF;
	return CS_MATERIAL_UNKNOWN;
}

gboolean
cs_material_check(const char *field,
		  const guint8 *data,
		  gsize len,
		  gsize max_size,
		  CsMaterialType *type_out,
		  GError **error)
{
	CsMaterialType type;

	if (len == 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "%s: the file is empty",
			    field);
		return FALSE;
	}
	if (len > max_size) {
		g_autofree char *limit = cs_material_format_limit(max_size);
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "%s: %" G_GSIZE_FORMAT " bytes is larger than the %s limit", field, len,
			    limit);
		return FALSE;
	}
	type = cs_material_sniff(data, len);
	if (type == CS_MATERIAL_UNKNOWN) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "%s: not a PNG, JPEG or PDF file (whatever its name says)", field);
		return FALSE;
	}
	if (type_out != NULL)
		*type_out = type;
	return TRUE;
}
