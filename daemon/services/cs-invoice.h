/*
 * cs-invoice.h — the e-invoice (电子发票) of a paid order, as PDF.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
	const char *number; /* the invoice number, unique per seller */
	GDateTime *issued;  /* local time */
	const char *order_id;
	const char *buyer_name;	  /* the organisation's or the person's name (not editable) */
	const char *buyer_tax_id; /* the USCC for an organisation, NULL for a person */
	const char *item;	  /* e.g. "数字证书及电子签章服务（新办）" */
	guint64 amount_fen;	  /* tax included */
	guint tax_rate_permille;  /* e.g. 60 for 6 % */
	const char *seller_name;
	const char *seller_tax_id;
} CsInvoice;

/* "叁佰元整", "壹佰元零伍分", "壹万零壹元整": the amount in Chinese financial capitals. */
char *cs_amount_in_capitals(guint64 fen);

/* "¥1,234.50" */
char *cs_amount_format(guint64 fen);

/* Render the invoice as PDF; CS_ERROR_INVALID_INPUT when a required part is missing. The
 * drawing module's (cs-invoice-draw.c): the daemon calls it through cs_draw_invoice. */
GBytes *cs_invoice_render(const CsInvoice *invoice, GError **error);

G_END_DECLS
