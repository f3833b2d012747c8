/*
 * test-forms.c — the blank seal-sample forms are real PDFs that poppler reads back with
 * their Chinese text and an embedded CJK font; unknown names are refused.
 */
#include <glib/gstdio.h>
#include <string.h>

#include "certseal/plugin.h"
#include "cs-forms.h"

/* Run a poppler tool on @pdf and return its stdout. */
static char *
poppler(const char *tool, GBytes *pdf)
{
	g_autofree char *dir = g_dir_make_tmp("cs-forms-XXXXXX", NULL);
	g_autofree char *path = g_build_filename(dir, "form.pdf", NULL);
	g_autoptr(GError) error = NULL;
	char *out = NULL;
	int status = 0;
	const char *argv_text[] = {tool, "-layout", path, "-", NULL};
	const char *argv_fonts[] = {tool, path, NULL};

	g_assert_true(
	    g_file_set_contents(path, g_bytes_get_data(pdf, NULL), g_bytes_get_size(pdf), &error));
	g_assert_true(g_spawn_sync(
	    NULL, (char **)(g_strcmp0(tool, "pdftotext") == 0 ? argv_text : argv_fonts), NULL,
	    G_SPAWN_SEARCH_PATH, NULL, NULL, &out, NULL, &status, &error));
	g_assert_no_error(error);
	g_assert_true(g_spawn_check_wait_status(status, NULL));
	g_unlink(path);
	g_rmdir(dir);
	return out;
}

static void
check_form(const char *name, const char *const *expected)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) pdf = cs_forms_render(name, &error);
	g_autoptr(GBytes) again = NULL;
	g_autofree char *text = NULL;
	g_autofree char *fonts = NULL;
	gsize len = 0;
	const char *data;

	g_assert_no_error(error);
	data = g_bytes_get_data(pdf, &len);
	g_assert_cmpuint(len, >, 1000);
	g_assert_cmpuint(len, <, 1024 * 1024);
	g_assert_true(memcmp(data, "%PDF-", 5) == 0);

	text = poppler("pdftotext", pdf);
	for (guint i = 0; expected[i] != NULL; i++) {
		if (strstr(text, expected[i]) == NULL)
			g_error("%s: '%s' not found in:\n%s", name, expected[i], text);
	}
	fonts = poppler("pdffonts", pdf);
	g_assert_nonnull(strstr(fonts, "WenQuanYi"));
	g_assert_nonnull(strstr(fonts, " yes ")); /* embedded */

	/* Rendered once: the same bytes come back. */
	again = cs_forms_render(name, &error);
	g_assert_true(g_bytes_equal(pdf, again));
}

static void
test_org_form(void)
{
	const char *expected[] = {"电子印章采样表（单位）", "统一社会信用代码", "单位公章",
				  "法定代表人名章",	    "300 dpi",		NULL};
	check_form("seal_form_org", expected);
}

static void
test_person_form(void)
{
	const char *expected[] = {"个人签章采样表",   "公民身份号码", "手写签名 1",
				  "个人印章（如有）", "加盖公章",     NULL};
	check_form("seal_form_person", expected);
}

static void
test_unknown_refused(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) pdf = cs_forms_render("seal_form_alien", &error);

	g_assert_null(pdf);
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_cmpstr(
	    error->message, ==,
	    "name: no form 'seal_form_alien' (available: seal_form_org, seal_form_person)");
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/new/forms/seal-form-org-is-a-printable-pdf", test_org_form);
	g_test_add_func("/new/forms/seal-form-person-is-a-printable-pdf", test_person_form);
	g_test_add_func("/new/forms/unknown-form-refused", test_unknown_refused);
	return g_test_run();
}
