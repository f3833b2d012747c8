/*
 * cs-invoice.c — money in words and figures for the e-invoices (cs-invoice-draw.c draws
 * them as PDF, in the drawing module: docs/architecture.md, "Drawing").
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
