/*
 * test-material.c — uploads are typed by content and bounded: real PNG (made by cairo),
 * JPEG and PDF (made by the forms code) pass; renamed executables, HTML, GIF, truncated or
 * absurd images, empty and oversized files are refused naming the field.
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
	/* A JFIF header as every camera and scanner writes it. */
	const guint8 jpeg[] = {0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 'J',	 'F',  'I',  'F',  0x00,
			       0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0xff, 0xd9};
	g_autoptr(GError) error = NULL;
	CsMaterialType type = CS_MATERIAL_UNKNOWN;
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(pdf, &len);

	g_assert_true(
	    cs_material_check("seal_image", png->data, png->len, 10 << 20, &type, &error));
	g_assert_cmpint(type, ==, CS_MATERIAL_PNG);
	g_assert_cmpstr(cs_material_type_to_mime(type), ==, "image/png");
	g_assert_true(cs_material_check("id_front", jpeg, sizeof(jpeg), 10 << 20, &type, &error));
	g_assert_cmpint(type, ==, CS_MATERIAL_JPEG);
	g_assert_true(cs_material_check("seal_form", data, len, 10 << 20, &type, &error));
	g_assert_cmpint(type, ==, CS_MATERIAL_PDF);
	g_assert_no_error(error);
}

static void
test_pdf_with_leading_junk_accepted(void)
{
	const char *pdf = "\r\n%PDF-1.7\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n";

	g_assert_cmpint(cs_material_sniff((const guint8 *)pdf, strlen(pdf)), ==, CS_MATERIAL_PDF);
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
	g_test_add_func("/new/materials/pdf-with-leading-junk-accepted",
			test_pdf_with_leading_junk_accepted);
	g_test_add_func("/new/materials/wrong-type-refused-whatever-the-name",
			test_wrong_types_refused);
	g_test_add_func("/new/materials/broken-png-refused", test_broken_png_refused);
	g_test_add_func("/new/materials/empty-and-oversized-refused", test_size_bounds);
	return g_test_run();
}
