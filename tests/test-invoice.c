/*
 * test-invoice.c — money in Chinese financial capitals at the tricky places (zeros inside
 * and between groups, no 角, no 元), amounts with separators, and an invoice PDF that
 * poppler reads back with the buyer's name, the total in words and net + tax = total.
 */
#include <glib/gstdio.h>
#include <string.h>

#include "certseal/plugin.h"
#include "cs-invoice.h"

static void
test_capitals(void)
{
	const struct {
		guint64 fen;
		const char *words;
	} v[] = {
	    {0, "零元整"},
	    {1, "壹分"},
	    {50, "伍角"},
	    {1000, "壹拾元整"},
	    {30000, "叁佰元整"},
	    {10050, "壹佰元伍角"},
	    {10005, "壹佰元零伍分"},
	    {10055, "壹佰元伍角伍分"},
	    {100000, "壹仟元整"},
	    {100100, "壹仟零壹元整"},
	    {101000, "壹仟零壹拾元整"},
	    {200001, "贰仟元零壹分"},
	    {1000100, "壹万零壹元整"},
	    {1234567, "壹万贰仟叁佰肆拾伍元陆角柒分"},
	    {10100000, "壹拾万壹仟元整"},
	    {100000000, "壹佰万元整"},
	    {100010000, "壹佰万零壹佰元整"},
	    {10000000000, "壹亿元整"},
	    {10000000100, "壹亿零壹元整"},
	    {10100000000, "壹亿零壹佰万元整"},
	    {10000100000, "壹亿零壹仟元整"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(v); i++) {
		g_autofree char *words = cs_amount_in_capitals(v[i].fen);
		if (g_strcmp0(words, v[i].words) != 0)
			g_error("%" G_GUINT64_FORMAT " fen: expected %s, got %s", v[i].fen,
				v[i].words, words);
	}
}

static void
test_format(void)
{
	g_autofree char *a = cs_amount_format(0);
	g_autofree char *b = cs_amount_format(30000);
	g_autofree char *c = cs_amount_format(123456789);

	g_assert_cmpstr(a, ==, "¥0.00");
	g_assert_cmpstr(b, ==, "¥300.00");
	g_assert_cmpstr(c, ==, "¥1,234,567.89");
}

static CsInvoice
sample(GDateTime *issued)
{
	CsInvoice inv = {
	    .number = "26350200000000000042",
	    .issued = issued,
	    .order_id = "CS20261124000042",
	    .buyer_name = "厦门示例科技有限公司",
	    .buyer_tax_id = "91350200776049653A",
	    .item = "数字证书及电子签章服务（新办）",
	    .amount_fen = 30000,
	    .tax_rate_permille = 60,
	    .seller_name = "福建示例数字认证有限公司",
	    .seller_tax_id = "913502000728319549",
	};
	return inv;
}

static void
test_invoice_pdf(void)
{
	g_autoptr(GDateTime) issued = g_date_time_new_local(2026, 11, 24, 10, 0, 0);
	CsInvoice inv = sample(issued);
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) pdf = cs_invoice_render(&inv, &error);
	g_autofree char *dir = g_dir_make_tmp("cs-invoice-XXXXXX", NULL);
	g_autofree char *path = g_build_filename(dir, "invoice.pdf", NULL);
	g_autofree char *text = NULL;
	const char *argv[] = {"pdftotext", "-layout", path, "-", NULL};
	const char *expected[] = {"电子发票（普通发票）", "厦门示例科技有限公司",
				  "91350200776049653A", "叁佰元整", "¥300.00",
				  /* 300 / 1.06 = 283.02, tax 16.98: they add up */
				  "¥283.02", "¥16.98", "6.0%", "CS20261124000042", NULL};
	int status = 0;

	g_assert_no_error(error);
	g_assert_true(memcmp(g_bytes_get_data(pdf, NULL), "%PDF-", 5) == 0);
	g_assert_true(
	    g_file_set_contents(path, g_bytes_get_data(pdf, NULL), g_bytes_get_size(pdf), NULL));
	g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
				   &text, NULL, &status, &error));
	g_assert_no_error(error);
	for (guint i = 0; expected[i] != NULL; i++) {
		if (strstr(text, expected[i]) == NULL)
			g_error("'%s' not in the invoice:\n%s", expected[i], text);
	}
	g_unlink(path);
	g_rmdir(dir);
}

static void
test_invoice_refuses_missing_parts(void)
{
	g_autoptr(GDateTime) issued = g_date_time_new_local(2026, 11, 24, 10, 0, 0);
	CsInvoice inv = sample(issued);
	g_autoptr(GError) error = NULL;

	inv.buyer_name = "";
	g_assert_null(cs_invoice_render(&inv, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_cmpstr(error->message, ==, "invoice buyer_name: missing or not printable");
	g_clear_error(&error);
	inv = sample(issued);
	inv.amount_fen = 0;
	g_assert_null(cs_invoice_render(&inv, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/new/invoice/amount-in-capitals", test_capitals);
	g_test_add_func("/new/invoice/amount-format", test_format);
	g_test_add_func("/new/invoice/pdf-reads-back", test_invoice_pdf);
	g_test_add_func("/new/invoice/missing-parts-refused", test_invoice_refuses_missing_parts);
	return g_test_run();
}
