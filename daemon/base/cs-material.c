/*
 * cs-material.c — sniffing and bounding uploaded materials.
 *
 * A reviewer opens what an applicant sent, so only a file whose whole structure holds is
 * accepted, checked cheaply in one pass without decoding any pixels:
 *   - PNG: the signature, then chunk after chunk (length within the file, a type of four
 *     letters, the CRC right) from an IHDR with sane dimensions, through at least one IDAT,
 *     to IEND;
 *   - JPEG: SOI, then marker segments (lengths within the file) with a frame header (SOFn:
 *     a size and 1…4 components) before the first scan, the entropy-coded data skipped to
 *     the next marker, up to EOI;
 *   - PDF: "%PDF-1." or "%PDF-2." at offset 0 (whatever comes first is what a browser or a
 *     loader sees), and a trailer: "startxref", an offset that points at "xref" or an
 *     "N G obj" (a cross-reference stream), "%%EOF".
 * Nothing may follow the end marker (IEND, EOI, the last %%EOF) but CS_MATERIAL_SLACK bytes
 * (the padding some writers leave): a ZIP, HTML or an executable appended would make a
 * polyglot. Anything else — an executable renamed .pdf, an HTML page, a GIF — is refused.
 * Every length read from the data is checked against @len before it is used.
 */
#include <string.h>

#include "certseal/plugin.h"
#include "cs-material.h"

#define PNG_MAX_SIDE 30000
/* Bytes allowed after a file's end marker. */
#define CS_MATERIAL_SLACK 16

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

/* What may follow an end marker: a few bytes of padding (NULs, spaces, line ends). */
static gboolean
slack_ok(const guint8 *p, gsize n)
{
	if (n > CS_MATERIAL_SLACK)
		return FALSE;
	for (gsize i = 0; i < n; i++) {
		if (p[i] != 0 && !g_ascii_isspace(p[i]))
			return FALSE;
	}
	return TRUE;
}

static guint32
be32(const guint8 *p)
{
	return ((guint32)p[0] << 24) | ((guint32)p[1] << 16) | ((guint32)p[2] << 8) | p[3];
}

static guint
be16(const guint8 *p)
{
	return ((guint)p[0] << 8) | p[1];
}

/* CRC-32 as PNG (and zlib) compute it. */
static guint32
crc32_update(guint32 crc, const guint8 *p, gsize len)
{
	static guint32 table[256];
	static gsize table_ready = 0;

	if (g_once_init_enter(&table_ready)) {
		for (guint32 n = 0; n < 256; n++) {
			guint32 c = n;
			for (int k = 0; k < 8; k++)
				c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
			table[n] = c;
		}
		g_once_init_leave(&table_ready, 1);
	}
	for (gsize i = 0; i < len; i++)
		crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	return crc;
}

static gboolean
png_ihdr_ok(const guint8 *ihdr)
{
	guint32 w = be32(ihdr), h = be32(ihdr + 4);
	guint depth = ihdr[8], colour = ihdr[9];

	if (w == 0 || h == 0 || w > PNG_MAX_SIDE || h > PNG_MAX_SIDE)
		return FALSE;
	/* compression 0, filter 0, interlace 0 or 1 */
	if (ihdr[10] != 0 || ihdr[11] != 0 || ihdr[12] > 1)
		return FALSE;
	switch (colour) {
	case 0:
		return depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16;
	case 3:
		return depth == 1 || depth == 2 || depth == 4 || depth == 8;
	case 2:
	case 4:
	case 6:
		return depth == 8 || depth == 16;
	default:
		return FALSE;
	}
}

static gboolean
is_png(const guint8 *d, gsize len)
{
	static const guint8 sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
	gsize pos = 8;
	gboolean idat = FALSE;

	if (len < 8 || memcmp(d, sig, 8) != 0)
		return FALSE;
	for (guint n = 0;; n++) {
		guint32 chunk_len, crc;
		const guint8 *type;

		if (len - pos < 12)
			return FALSE;
		chunk_len = be32(d + pos);
		type = d + pos + 4;
		if (chunk_len > 0x7fffffffu || chunk_len > len - pos - 12)
			return FALSE;
		for (int i = 0; i < 4; i++) {
			if (!g_ascii_isalpha(type[i]))
				return FALSE;
		}
		crc = crc32_update(0xffffffffu, type, 4 + (gsize)chunk_len) ^ 0xffffffffu;
		if (crc != be32(type + 4 + chunk_len))
			return FALSE;
		if (n == 0 &&
		    (memcmp(type, "IHDR", 4) != 0 || chunk_len != 13 || !png_ihdr_ok(type + 4)))
			return FALSE;
		if (memcmp(type, "IDAT", 4) == 0)
			idat = TRUE;
		pos += 12 + (gsize)chunk_len;
		if (memcmp(type, "IEND", 4) == 0)
			return idat && chunk_len == 0 && slack_ok(d + pos, len - pos);
	}
}

static gboolean
is_sof(guint8 m)
{
	/* SOF0…SOF15 but DHT (C4), JPG (C8) and DAC (CC). */
	return m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc;
}

static gboolean
jpeg_frame_ok(const guint8 *seg, guint seg_len)
{
	guint n_components;

	/* length(2) precision(1) height(2) width(2) components(1) then 3 bytes each */
	if (seg_len < 8)
		return FALSE;
	n_components = seg[7];
	return be16(seg + 3) > 0 && be16(seg + 5) > 0 && n_components >= 1 && n_components <= 4 &&
	       seg_len == 8 + 3 * n_components;
}

static gboolean
is_jpeg(const guint8 *d, gsize len)
{
	gsize pos = 2;
	gboolean frame = FALSE, scan = FALSE;

	if (len < 4 || d[0] != 0xff || d[1] != 0xd8)
		return FALSE;
	for (;;) {
		guint8 m;
		guint seg_len;

		if (pos >= len || d[pos] != 0xff)
			return FALSE;
		while (pos < len && d[pos] == 0xff) /* fill bytes */
			pos++;
		if (pos >= len)
			return FALSE;
		m = d[pos++];
		if (m == 0xd9) /* EOI */
			return frame && scan && slack_ok(d + pos, len - pos);
		if (m == 0x00 || m == 0xd8 || (m >= 0xd0 && m <= 0xd7) || m == 0x01)
			return FALSE; /* no stuffing, SOI or RSTn between segments */
		if (len - pos < 2)
			return FALSE;
		seg_len = be16(d + pos);
		if (seg_len < 2 || seg_len > len - pos)
			return FALSE;
		if (is_sof(m)) {
			if (frame || !jpeg_frame_ok(d + pos, seg_len))
				return FALSE;
			frame = TRUE;
		}
		pos += seg_len;
		if (m != 0xda) /* SOS: entropy-coded data follows */
			continue;
		if (!frame)
			return FALSE;
		scan = TRUE;
		/* Skip to the next marker: 0xff followed by neither 0 (stuffing) nor RSTn. */
		while (pos + 1 < len && !(d[pos] == 0xff && d[pos + 1] != 0x00 &&
					  (d[pos + 1] < 0xd0 || d[pos + 1] > 0xd7)))
			pos++;
		if (pos + 1 >= len)
			return FALSE;
	}
}

static const guint8 *
find_last(const guint8 *hay, gsize hay_len, const char *needle)
{
	gsize n = strlen(needle);

	for (gsize i = hay_len >= n ? hay_len - n + 1 : 0; i > 0; i--) {
		if (memcmp(hay + i - 1, needle, n) == 0)
			return hay + i - 1;
	}
	return NULL;
}

static gboolean
is_pdf_space(guint8 c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\0';
}

/* What startxref points at: "xref", or "N G obj" (a cross-reference stream). */
static gboolean
pdf_xref_at(const guint8 *d, gsize len, guint64 offset)
{
	gsize pos = (gsize)offset;
	guint numbers = 0;

	if (offset >= len)
		return FALSE;
	if (len - pos >= 4 && memcmp(d + pos, "xref", 4) == 0)
		return TRUE;
	while (numbers < 2) {
		gsize start = pos;
		while (pos < len && g_ascii_isdigit(d[pos]))
			pos++;
		if (pos == start || pos >= len || !is_pdf_space(d[pos]))
			return FALSE;
		while (pos < len && is_pdf_space(d[pos]))
			pos++;
		numbers++;
	}
	return len - pos >= 3 && memcmp(d + pos, "obj", 3) == 0;
}

static gboolean
is_pdf(const guint8 *d, gsize len)
{
	gsize tail = MIN(len, 1024);
	const guint8 *end = d + len - tail;
	const guint8 *eof, *sx, *p;
	guint64 offset = 0;

	if (len < 8 || (memcmp(d, "%PDF-1.", 7) != 0 && memcmp(d, "%PDF-2.", 7) != 0))
		return FALSE;
	eof = find_last(end, tail, "%%EOF");
	if (eof == NULL)
		return FALSE;
	if (!slack_ok(eof + 5, (gsize)(d + len - (eof + 5))))
		return FALSE;
	sx = find_last(end, (gsize)(eof - end), "startxref");
	if (sx == NULL)
		return FALSE;
	p = sx + 9;
	while (p < eof && is_pdf_space(*p))
		p++;
	if (p == eof || !g_ascii_isdigit(*p))
		return FALSE;
	for (; p < eof && g_ascii_isdigit(*p); p++) {
		if (offset > G_MAXUINT32)
			return FALSE;
		offset = offset * 10 + (guint64)(*p - '0');
	}
	while (p < eof && is_pdf_space(*p))
		p++;
	return p == eof && pdf_xref_at(d, len, offset);
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
