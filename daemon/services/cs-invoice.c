/*
 * cs-invoice.c — e-invoices as PDF, and money in words.
 *
 * The invoice title is the buyer's registered name, never free text (docs/architecture.md §1.1:
 * "发票抬头 默认为证书使用单位名称，不支持修改"). Amounts are integers in fen throughout; the tax
 * share is computed from the tax-included amount and rounded half up to the fen, so the
 * net and tax lines always add up to the total printed.
 *
 * Money in words follows the usual rules for financial capitals: digits 零壹贰叁肆伍陆柒捌玖,
 * units 拾佰仟 within groups of four and 万/亿 between groups; a run of zeros inside the
 * number is read as one 零 — an all-zero group or a group's leading zeros, but not the
 * trailing zeros before 万 or 亿 — and trailing zeros are not read; "整" closes an amount without
 * 角 and 分; "零" stands between 元 and 分 when there are no 角.
 */
#define G_LOG_DOMAIN "certseald"

#include <string.h>

#include "certseal/plugin.h"
#include "cs-invoice.h"
#include "cs-pdf.h"
#include "cs-validate.h"

static const char *const digit_words[] = {"零", "壹", "贰", "叁", "肆",
					  "伍", "陆", "柒", "捌", "玖"};
static const char *const small_units[] = {"", "拾", "佰", "仟"};
static const char *const group_units[] = {"", "万", "亿", "万亿", "亿亿"};

/* 1 … 9999 in words; *pending_zero carries a 零 owed from the left. */
static void
append_group(GString *s, guint group, gboolean *pending_zero)
{
	for (int pos = 3; pos >= 0; pos--) {
		guint div = 1;
		guint d;
		for (int i = 0; i < pos; i++)
			div *= 10;
		d = (group / div) % 10;
		if (d == 0) {
			if (s->len > 0)
				*pending_zero = TRUE;
			continue;
		}
		if (*pending_zero)
			g_string_append(s, "零");
		*pending_zero = FALSE;
		g_string_append(s, digit_words[d]);
		g_string_append(s, small_units[pos]);
	}
}

char *
cs_amount_in_capitals(guint64 fen)
{
	GString *s = g_string_new(NULL);
	guint64 yuan = fen / 100;
	guint jiao = (guint)(fen / 10 % 10);
	guint f = (guint)(fen % 10);

	if (yuan > 0) {
		guint groups[5] = {0};
		int n = 0;
		gboolean pending_zero = FALSE;

		for (guint64 y = yuan; y > 0 && n < 5; y /= 10000)
			groups[n++] = (guint)(y % 10000);
		for (int i = n - 1; i >= 0; i--) {
			if (groups[i] == 0) {
				pending_zero = TRUE;
				continue;
			}
			append_group(s, groups[i], &pending_zero);
			g_string_append(s, group_units[i]);
			/* A group's own trailing zeros are not read (壹拾万壹仟); a zero group or
			 * the next group's leading zeros are (壹亿零壹, 壹万零壹). */
			pending_zero = FALSE;
		}
		g_string_append(s, "元");
	}
	if (jiao == 0 && f == 0) {
		if (yuan == 0)
			g_string_append(s, "零元");
		g_string_append(s, "整");
		return g_string_free(s, FALSE);
	}
	if (jiao > 0) {
		g_string_append(s, digit_words[jiao]);
		g_string_append(s, "角");
	} else if (yuan > 0) {
		g_string_append(s, "零");
	}
	if (f > 0) {
		g_string_append(s, digit_words[f]);
		g_string_append(s, "分");
	}
	return g_string_free(s, FALSE);
}

char *
cs_amount_format(guint64 fen)
{
	g_autofree char *digits = g_strdup_printf("%" G_GUINT64_FORMAT, fen / 100);
	GString *s = g_string_new("¥");
	gsize len = strlen(digits);

	for (gsize i = 0; i < len; i++) {
		if (i > 0 && (len - i) % 3 == 0)
			g_string_append_c(s, ',');
		g_string_append_c(s, digits[i]);
	}
	g_string_append_printf(s, ".%02u", (guint)(fen % 100));
	return g_string_free(s, FALSE);
}

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
