/*
 * test-material.c — uploads are typed by content and bounded: real PNG (made by cairo),
 * JPEG and PDF (made by the forms code) pass; renamed executables, HTML, GIF, truncated or
 * absurd images, files whose structure does not hold (chunks, CRCs, frame headers, the PDF
 * trailer), polyglots (anything after the end marker), empty and oversized files are refused
 * naming the field.
 */
#include <cairo.h>
#include <string.h>

#include "certseal/plugin.h"
#include "cs-forms.h"
#include "cs-material.h"

static cairo_status_t
append(void *closure, const unsigned char *data, unsigned int len)
{
	g_byte_array_append(closure, data, len);
	return CAIRO_STATUS_SUCCESS;
}

static GByteArray *
make_png(int w, int h)
{
	GByteArray *png = g_byte_array_new();
	cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);

	g_assert_cmpint(cairo_surface_write_to_png_stream(s, append, png), ==,
			CAIRO_STATUS_SUCCESS);
	cairo_surface_destroy(s);
	return png;
}

/* A real 1x1 baseline JPEG: JFIF, a quantisation table, a frame header (SOF0), DC and AC
 * Huffman tables, one scan, EOI (gdk-pixbuf and libjpeg decode it). */
static GBytes *
real_jpeg(void)
{
	static const char b64[] = "/9j/4AAQSkZJRgABAQAAAQABAAD/"
				  "2wBDAAEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB"
				  "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQH/wAALCAABAAEBAREA/"
				  "8QAFAABAAAAAAAAAAAAAAAAAAAAAP/EABQQAQAA"
				  "AAAAAAAAAAAAAAAAAAD/2gAIAQEAAD8AP//Z";
	gsize len = 0;
	guchar *data = g_base64_decode(b64, &len);

	return g_bytes_new_take(data, len);
}

static void
assert_refused(const guint8 *data, gsize len, gsize max, const char *message)
{
	g_autoptr(GError) error = NULL;

	g_assert_false(cs_material_check("seal_image", data, len, max, NULL, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_cmpstr(error->message, ==, message);
}

static void
test_real_files_accepted(void)
{
	g_autoptr(GByteArray) png = make_png(120, 80);
	g_autoptr(GBytes) pdf = cs_forms_render("seal_form_org", NULL);
	g_autoptr(GBytes) jpeg_bytes = real_jpeg();
	const guint8 *jpeg = g_bytes_get_data(jpeg_bytes, NULL);
	g_autoptr(GError) error = NULL;
	CsMaterialType type = CS_MATERIAL_UNKNOWN;
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(pdf, &len);

	g_assert_true(
	    cs_material_check("seal_image", png->data, png->len, 10 << 20, &type, &error));
	g_assert_cmpint(type, ==, CS_MATERIAL_PNG);
	g_assert_cmpstr(cs_material_type_to_mime(type), ==, "image/png");
	g_assert_true(cs_material_check("id_front", jpeg, g_bytes_get_size(jpeg_bytes), 10 << 20,
					&type, &error));
	g_assert_cmpint(type, ==, CS_MATERIAL_JPEG);
	g_assert_true(cs_material_check("seal_form", data, len, 10 << 20, &type, &error));
	g_assert_cmpint(type, ==, CS_MATERIAL_PDF);
	g_assert_no_error(error);
}

/* A PDF's header is at offset 0: whatever comes first (HTML, an executable) is what a
 * browser or a loader sees. */
static void
test_pdf_header_not_at_start_refused(void)
{
	static const char body[] =
	    "%PDF-1.7\n1 0 obj << >> endobj\nxref\n0 1\n0000000000 65535 f \n"
	    "trailer << /Size 1 >>\nstartxref\n30\n%%EOF\n";
	g_autofree char *junk = g_strconcat("\r\n", body, NULL);

	g_assert_cmpint(cs_material_sniff((const guint8 *)body, strlen(body)), ==, CS_MATERIAL_PDF);
	g_assert_cmpint(cs_material_sniff((const guint8 *)junk, strlen(junk)), ==,
			CS_MATERIAL_UNKNOWN);
}

static GByteArray *
bytes_of(const void *a, gsize a_len, const void *b, gsize b_len)
{
	GByteArray *out = g_byte_array_new();

	g_byte_array_append(out, a, (guint)a_len);
	if (b != NULL)
		g_byte_array_append(out, b, (guint)b_len);
	return out;
}

/* What the hostile probe sent, each accepted before. */
static void
test_structure_checked(void)
{
	g_autoptr(GByteArray) png = make_png(16, 16);
	g_autoptr(GBytes) jpeg_bytes = real_jpeg();
	g_autoptr(GBytes) pdf_bytes = cs_forms_render("seal_form_org", NULL);
	gsize jpeg_len = 0, pdf_len = 0;
	const guint8 *jpeg = g_bytes_get_data(jpeg_bytes, &jpeg_len);
	const guint8 *pdf = g_bytes_get_data(pdf_bytes, &pdf_len);
	static const char zip[] =
	    "PK\x03\x04\x14\x00\x00\x00\x00\x00payload.sh#!/bin/sh\nrm -rf ~\n"
	    "PK\x05\x06\x00\x00\x00\x00\x01\x00\x01\x00";
	static const char html[] = "<html><script>alert(1)</script></html>";
	guint8 random[600];
	g_autoptr(GByteArray) elf = g_byte_array_new();
	g_autoptr(GByteArray) png_random = NULL;
	g_autoptr(GByteArray) png_zip = bytes_of(png->data, png->len, zip, sizeof(zip) - 1);
	g_autoptr(GByteArray) pdf_html = bytes_of(pdf, pdf_len, html, sizeof(html) - 1);
	g_autoptr(GByteArray) jpeg_tail = bytes_of(jpeg, jpeg_len, zip, sizeof(zip) - 1);
	g_autoptr(GByteArray) png_slack = bytes_of(png->data, png->len, "\0\0\0\0", 4);
	g_autoptr(GByteArray) bad_crc = bytes_of(png->data, png->len, NULL, 0);
	g_autoptr(GByteArray) no_sof = g_byte_array_new();
	const char *tiny_pdf = "%PDF-1.7\n%%EOF";

	for (guint i = 0; i < sizeof(random); i++)
		random[i] = (guint8)g_test_rand_int();
	/* PNG signature and IHDR, then random bytes. */
	png_random = bytes_of(png->data, 33, random, sizeof(random));
	g_assert_cmpint(cs_material_sniff(png_random->data, png_random->len), ==,
			CS_MATERIAL_UNKNOWN);
	/* One flipped bit in the image data: the chunk's CRC no longer holds. */
	bad_crc->data[bad_crc->len - 20] ^= 1;
	g_assert_cmpint(cs_material_sniff(bad_crc->data, bad_crc->len), ==, CS_MATERIAL_UNKNOWN);
	/* Polyglots: a ZIP after IEND, HTML after %%EOF, a ZIP after EOI. */
	g_assert_cmpint(cs_material_sniff(png_zip->data, png_zip->len), ==, CS_MATERIAL_UNKNOWN);
	g_assert_cmpint(cs_material_sniff(pdf_html->data, pdf_html->len), ==, CS_MATERIAL_UNKNOWN);
	g_assert_cmpint(cs_material_sniff(jpeg_tail->data, jpeg_tail->len), ==,
			CS_MATERIAL_UNKNOWN);
	/* A little slack after the end marker is what some writers leave. */
	g_assert_cmpint(cs_material_sniff(png_slack->data, png_slack->len), ==, CS_MATERIAL_PNG);
	/* A 4-byte JPEG; a JPEG without a frame header; the start of a real one. */
	g_assert_cmpint(cs_material_sniff(jpeg, 4), ==, CS_MATERIAL_UNKNOWN);
	g_assert_cmpint(cs_material_sniff(jpeg, jpeg_len - 2), ==, CS_MATERIAL_UNKNOWN);
	g_byte_array_append(no_sof,
			    (const guint8 *)"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00"
					    "\x00\x01\x00\x01\x00\x00\xff\xd9",
			    22);
	g_assert_cmpint(cs_material_sniff(no_sof->data, no_sof->len), ==, CS_MATERIAL_UNKNOWN);
	/* 14 bytes of "%PDF-1.7\n%%EOF": no xref, no startxref. */
	g_assert_cmpint(cs_material_sniff((const guint8 *)tiny_pdf, strlen(tiny_pdf)), ==,
			CS_MATERIAL_UNKNOWN);
	/* An ELF with a PDF header at offset 900 and a PDF's tail. */
	g_byte_array_append(elf,
			    (const guint8 *)"\x7f"
					    "ELF\x02\x01\x01",
			    7);
	g_byte_array_set_size(elf, 900);
	memset(elf->data + 7, 0, 893);
	g_byte_array_append(elf, pdf, (guint)pdf_len);
	g_assert_cmpint(cs_material_sniff(elf->data, elf->len), ==, CS_MATERIAL_UNKNOWN);
	/* The real ones still pass. */
	g_assert_cmpint(cs_material_sniff(png->data, png->len), ==, CS_MATERIAL_PNG);
	g_assert_cmpint(cs_material_sniff(jpeg, jpeg_len), ==, CS_MATERIAL_JPEG);
	g_assert_cmpint(cs_material_sniff(pdf, pdf_len), ==, CS_MATERIAL_PDF);
}

static void
test_wrong_types_refused(void)
{
	const char *elf = "\x7f"
			  "ELF\x02\x01\x01\x00 renamed to licence.pdf";
	const char *html = "<!DOCTYPE html><html><body>%PDF-1.4</body></html>";
	const char *gif = "GIF89a\x01\x00\x01\x00";
	const char *unterminated = "%PDF-1.4\n1 0 obj << >> endobj\n";
	const char *expected = "seal_image: not a PNG, JPEG or PDF file (whatever its name says)";

	assert_refused((const guint8 *)elf, strlen(elf), 1024, expected);
	assert_refused((const guint8 *)html, strlen(html), 1024, expected);
	assert_refused((const guint8 *)gif, strlen(gif), 1024, expected);
	assert_refused((const guint8 *)unterminated, strlen(unterminated), 1024, expected);
}

static void
test_broken_png_refused(void)
{
	g_autoptr(GByteArray) png = make_png(16, 16);
	const char *expected = "seal_image: not a PNG, JPEG or PDF file (whatever its name says)";
	guint8 *copy = g_memdup2(png->data, png->len);

	/* Just the signature. */
	assert_refused(png->data, 8, 1 << 20, expected);
	/* Width 0, then width 40000. */
	copy[16] = copy[17] = copy[18] = copy[19] = 0;
	assert_refused(copy, png->len, 1 << 20, expected);
	copy[18] = 0x9c;
	copy[19] = 0x40;
	assert_refused(copy, png->len, 1 << 20, expected);
	g_free(copy);
}

static void
test_size_bounds(void)
{
	g_autoptr(GByteArray) png = make_png(300, 300);
	g_autofree char *too_big =
	    g_strdup_printf("seal_image: %u bytes is larger than the 100 bytes limit", png->len);
	const guint8 nothing[1] = {0};

	assert_refused(nothing, 0, 1024, "seal_image: the file is empty");
	assert_refused(png->data, png->len, 100, too_big);
	{
		g_autofree char *mib = cs_material_format_limit(10 * 1024 * 1024);
		g_autofree char *odd = cs_material_format_limit(1536 * 1024);
		g_assert_cmpstr(mib, ==, "10 MiB");
		g_assert_true(g_str_has_prefix(odd, "1.5") && g_str_has_suffix(odd, "MiB"));
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/new/materials/png-jpeg-pdf-accepted", test_real_files_accepted);
	g_test_add_func("/new/materials/pdf-header-not-at-start-refused",
			test_pdf_header_not_at_start_refused);
	g_test_add_func("/new/materials/structure-checked-polyglots-refused",
			test_structure_checked);
	g_test_add_func("/new/materials/wrong-type-refused-whatever-the-name",
			test_wrong_types_refused);
	g_test_add_func("/new/materials/broken-png-refused", test_broken_png_refused);
	g_test_add_func("/new/materials/empty-and-oversized-refused", test_size_bounds);
	return g_test_run();
}
