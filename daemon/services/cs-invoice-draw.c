/*
 * cs-invoice-draw.c — an e-invoice as a one-page PDF (see cs-invoice.h; the rules of its
 * title and amounts are at the top of cs-invoice.c). Built into the drawing module
 * (cs-draw.h): certseald maps pango and cairo only once it draws.
 */
#define G_LOG_DOMAIN "certseald"

#include "certseal/plugin.h"
#include "cs-invoice.h"
#include "cs-pdf.h"
#include "cs-validate.h"

#define PAGE_W 595.28
#define PAGE_H 420.94 /* A5 landscape, the usual size of a printed e-invoice */
#define MARGIN 36.0

static void
box(cairo_t *cr, double x, double y, double w, double h)
{
	cairo_set_line_width(cr, 0.8);
	cairo_rectangle(cr, x, y, w, h);
	cairo_stroke(cr);
}

static void
draw_party(cairo_t *cr,
	   double x,
	   double y,
	   double w,
	   const char *role,
	   const char *name,
	   const char *tax_id)
{
	g_autofree char *line1 = g_strdup_printf("名称：%s", name);
	g_autofree char *line2 = g_strdup_printf("纳税人识别号：%s", tax_id != NULL ? tax_id : "—");

	box(cr, x, y, w, 58);
	cs_pdf_text(cr, role, x + 6, y + 6, w - 12, 9, TRUE, PANGO_ALIGN_LEFT);
	cs_pdf_text(cr, line1, x + 6, y + 22, w - 12, 9, FALSE, PANGO_ALIGN_LEFT);
	cs_pdf_text(cr, line2, x + 6, y + 38, w - 12, 9, FALSE, PANGO_ALIGN_LEFT);
}

static void
draw_invoice(cairo_t *cr, const CsInvoice *inv)
{
	const double width = PAGE_W - 2 * MARGIN, half = width / 2;
	guint64 tax =
	    (inv->amount_fen * inv->tax_rate_permille * 2 + (1000 + inv->tax_rate_permille)) /
	    (2 * (1000 + inv->tax_rate_permille));
	guint64 net = inv->amount_fen - tax;
	g_autofree char *issued = g_date_time_format(inv->issued, "%Y年%m月%d日");
	g_autofree char *head = g_strdup_printf("发票号码：%s    开票日期：%s    订单号：%s",
						inv->number, issued, inv->order_id);
	g_autofree char *net_s = cs_amount_format(net);
	g_autofree char *tax_s = cs_amount_format(tax);
	g_autofree char *total_s = cs_amount_format(inv->amount_fen);
	g_autofree char *words = cs_amount_in_capitals(inv->amount_fen);
	g_autofree char *rate =
	    g_strdup_printf("%u.%u%%", inv->tax_rate_permille / 10, inv->tax_rate_permille % 10);
	g_autofree char *total_line =
	    g_strdup_printf("价税合计（大写）%s        （小写）%s", words, total_s);
	double y = MARGIN;

	cairo_set_source_rgb(cr, 0.55, 0.1, 0.1);
	cs_pdf_text(cr, "电子发票（普通发票）", MARGIN, y, width, 18, TRUE, PANGO_ALIGN_CENTER);
	y += 30;
	cairo_set_source_rgb(cr, 0, 0, 0);
	cs_pdf_text(cr, head, MARGIN, y, width, 8.5, FALSE, PANGO_ALIGN_CENTER);
	y += 22;
	draw_party(cr, MARGIN, y, half, "购买方信息", inv->buyer_name, inv->buyer_tax_id);
	draw_party(cr, MARGIN + half, y, half, "销售方信息", inv->seller_name, inv->seller_tax_id);
	y += 66;

	box(cr, MARGIN, y, width, 20);
	cs_pdf_text(cr, "项目名称", MARGIN + 6, y + 5, 200, 9, TRUE, PANGO_ALIGN_LEFT);
	cs_pdf_text(cr, "金额", MARGIN + 250, y + 5, 80, 9, TRUE, PANGO_ALIGN_RIGHT);
	cs_pdf_text(cr, "税率", MARGIN + 340, y + 5, 60, 9, TRUE, PANGO_ALIGN_RIGHT);
	cs_pdf_text(cr, "税额", MARGIN + 410, y + 5, 100, 9, TRUE, PANGO_ALIGN_RIGHT);
	y += 20;
	box(cr, MARGIN, y, width, 60);
	cs_pdf_text(cr, inv->item, MARGIN + 6, y + 6, 240, 9, FALSE, PANGO_ALIGN_LEFT);
	cs_pdf_text(cr, net_s, MARGIN + 250, y + 6, 80, 9, FALSE, PANGO_ALIGN_RIGHT);
	cs_pdf_text(cr, rate, MARGIN + 340, y + 6, 60, 9, FALSE, PANGO_ALIGN_RIGHT);
	cs_pdf_text(cr, tax_s, MARGIN + 410, y + 6, 100, 9, FALSE, PANGO_ALIGN_RIGHT);
	y += 60;
	box(cr, MARGIN, y, width, 24);
	cs_pdf_text(cr, total_line, MARGIN + 6, y + 6, width - 12, 10, TRUE, PANGO_ALIGN_LEFT);
	y += 34;
	cs_pdf_text(cr, "本发票由 CA 证书与电子签章共享平台开具，与纸质发票具有同等效力。", MARGIN,
		    y, width, 7.5, FALSE, PANGO_ALIGN_CENTER);
}

static void
draw_invoice_cb(cairo_t *cr, gconstpointer data)
{
	draw_invoice(cr, data);
}

static gboolean
require(const char *value, const char *what, GError **error)
{
	if (value != NULL && *value != '\0' && cs_validate_text(value, 200, NULL))
		return TRUE;
	g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "invoice %s: missing or not printable",
		    what);
	return FALSE;
}

GBytes *
cs_invoice_render(const CsInvoice *inv, GError **error)
{
	g_autofree char *title = NULL;

	if (!require(inv->number, "number", error) || !require(inv->order_id, "order_id", error) ||
	    !require(inv->buyer_name, "buyer_name", error) || !require(inv->item, "item", error) ||
	    !require(inv->seller_name, "seller_name", error) ||
	    !require(inv->seller_tax_id, "seller_tax_id", error))
		return NULL;
	if (inv->issued == NULL || inv->amount_fen == 0 || inv->tax_rate_permille > 1000) {
		g_set_error_literal(
		    error, CS_ERROR, CS_ERROR_INVALID_INPUT,
		    "invoice: needs an issue date, a non-zero amount and a tax rate ≤ 100 %");
		return NULL;
	}
	title = g_strdup_printf("电子发票 %s", inv->number);
	return cs_pdf_render(PAGE_W, PAGE_H, title, draw_invoice_cb, inv, error);
}
