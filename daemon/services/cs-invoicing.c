/*
 * cs-invoicing.c — the e-invoice of what was paid, and the review deadline (DueBy).
 *
 * An invoice is issued once per order, inside the step that brings the money (or, when the
 * renderer failed then, when GetInvoice first asks for it), and mailed to the order's
 * e-mail address with its SHA-256 in the mail task. Its title is the subject's name.
 */
#define G_LOG_DOMAIN "certseald"

#include <json-glib/json-glib.h>
#include <openssl/evp.h>

#include "cs-clock.h"
#include "cs-draw.h"
#include "cs-invoice.h"
#include "cs-invoicing.h"
#include "cs-tasks.h"
#include "cs-workdays.h"

static char *
sha256_hex(GBytes *bytes)
{
	guint8 md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	gsize size = 0;
	const guint8 *data = g_bytes_get_data(bytes, &size);
	GString *s = g_string_new(NULL);

	EVP_Digest(data, size, md, &len, EVP_sha256(), NULL);
	for (unsigned int i = 0; i < len; i++)
		g_string_append_printf(s, "%02x", md[i]);
	return g_string_free(s, FALSE);
}

/* The flow's name as the invoice's item says it (新办, 更新, …). */
static const char *
kind_title(CsOrder *order)
{
	const CsPlugin *plugin = cs_order_get_plugin(order);

	return plugin != NULL && plugin->title_zh != NULL ? plugin->title_zh
							  : cs_order_get_kind(order);
}

gboolean
cs_invoicing_issue_in_txn(CsEngine *engine, CsOrder *order, const char *email, GError **error)
{
	CsLedger *ledger = cs_engine_get_ledger(engine);
	CsConfig *config = cs_engine_get_config(engine);
	CsTasks *tasks = cs_engine_get_tasks(engine);
	g_autoptr(GDateTime) now = cs_clock_now_local();
	g_autofree char *day = g_date_time_format(now, "%Y%m%d");
	g_autofree char *number = NULL;
	g_autofree char *item = NULL;
	g_autofree char *digest = NULL;
	g_autofree char *amount = NULL;
	g_autofree char *body = NULL;
	g_autofree char *subject = NULL;
	g_autofree char *name = NULL;
	g_autoptr(GBytes) pdf = NULL;
	g_autoptr(JsonObject) payload = json_object_new();
	JsonArray *attachments;
	JsonObject *a;
	g_autoptr(GError) render_error = NULL;
	guint64 paid = 0;
	gint64 count = 0;
	gboolean org = cs_order_get_subject_type(order) == CS_SUBJECT_ORG;
	CsInvoice invoice = {0};

	if (!cs_engine_require(tasks, "the office", error))
		return FALSE;
	if (cs_order_get_attr(order, "invoice_number") != NULL)
		return TRUE; /* issued once */
	if (!cs_ledger_order_paid(ledger, cs_order_get_id(order), &paid, error) ||
	    !cs_ledger_count_invoices(ledger, &count, error))
		return FALSE;
	if (paid == 0)
		return TRUE; /* nothing paid, nothing to invoice */
	number = g_strdup_printf("CS%s%08" G_GINT64_FORMAT, day, count + 1);
	item = g_strdup_printf("数字证书及电子签章服务（%s）", kind_title(order));
	invoice.number = number;
	invoice.issued = now;
	invoice.order_id = cs_order_get_id(order);
	/* The invoice title is the organisation's (or the person's) name; an organisation's
	 * tax id is its USCC. */
	invoice.buyer_name = cs_order_get_subject_name(order);
	invoice.buyer_tax_id = org ? cs_order_get_subject_number(order) : NULL;
	invoice.item = item;
	invoice.amount_fen = paid;
	invoice.tax_rate_permille = config->invoice_tax_rate_permille;
	invoice.seller_name = config->invoice_seller_name;
	invoice.seller_tax_id = config->invoice_seller_tax_id;
	pdf = cs_draw_invoice(&invoice, &render_error);
	if (pdf == NULL) {
		/* The payment is real whatever the renderer says: record it; GetInvoice issues
		 * the invoice when it is first asked for. */
		g_warning("order %s: the e-invoice could not be rendered: %s",
			  cs_order_get_id(order), render_error->message);
		return TRUE;
	}
	if (!cs_ledger_insert_invoice(ledger, cs_order_get_id(order), number, paid, pdf,
				      g_get_real_time(), error) ||
	    !cs_engine_set_attr(engine, order, "invoice_number", number, error))
		return FALSE;
	if (email == NULL)
		return TRUE;
	digest = sha256_hex(pdf);
	amount = cs_amount_format(paid);
	subject = g_strdup_printf("电子发票 %s", number);
	body = g_strdup_printf("订单 %s 的电子发票 %s，金额 %s。", cs_order_get_id(order), number,
			       amount);
	name = g_strdup_printf("invoice-%s.pdf", number);
	json_object_set_string_member(payload, "to", email);
	json_object_set_string_member(payload, "subject", subject);
	json_object_set_string_member(payload, "body", body);
	attachments = json_array_new();
	a = json_object_new();
	json_object_set_string_member(a, "name", name);
	json_object_set_string_member(a, "mime", "application/pdf");
	json_object_set_string_member(a, "sha256", digest);
	json_array_add_object_element(attachments, a);
	json_object_set_array_member(payload, "attachments", attachments);
	return cs_tasks_enqueue_in_txn(tasks, "mail", cs_order_get_id(order), NULL, payload, 0,
				       NULL, error);
}

GBytes *
cs_invoicing_get(CsEngine *engine, const CsRequest *request, CsOrder *order, GError **error)
{
	CsLedger *ledger = cs_engine_get_ledger(engine);
	g_autoptr(GError) local = NULL;
	GBytes *pdf;

	if (!cs_engine_check_access(engine, request, order, error))
		return NULL;
	pdf = cs_ledger_load_invoice(ledger, cs_order_get_id(order), NULL, &local);
	if (pdf != NULL || !g_error_matches(local, CS_ERROR, CS_ERROR_NOT_FOUND) ||
	    !cs_engine_order_paid(engine, order)) {
		if (pdf == NULL)
			g_propagate_error(error, g_steal_pointer(&local));
		return pdf;
	}
	/* Paid, but the invoice could not be rendered when the payment arrived: issue it now. */
	if (!cs_ledger_begin(ledger, error))
		return NULL;
	if (!cs_invoicing_issue_in_txn(engine, order, cs_order_get_field(order, "email"), error) ||
	    !cs_ledger_commit(ledger, error)) {
		cs_ledger_rollback(ledger);
		cs_order_forget_attrs(order);
		return NULL;
	}
	cs_engine_order_attrs_changed(engine, order, 0);
	return cs_ledger_load_invoice(ledger, cs_order_get_id(order), NULL, error);
}

gboolean
cs_step_set_due_by(CsStep *step, guint working_days, GError **error)
{
	CsEngine *engine = cs_step_get_engine(step);
	CsOrder *order = cs_step_get_order(step);
	CsConfig *config = cs_engine_get_config(engine);
	CsCalendar calendar = {
	    .holidays = (const char *const *)config->review_holidays,
	    .extra_workdays = (const char *const *)config->review_extra_workdays,
	};
	g_autoptr(GDateTime) now = cs_clock_now_local();
	g_autoptr(GDateTime) due = cs_calendar_due_by(
	    &calendar, now,
	    working_days > 0 ? working_days : cs_invoicing_review_days(engine, order));

	return cs_step_check_transaction(step, "cs_step_set_due_by", error) &&
	       cs_engine_set_attr_int(engine, order, "due_by", g_date_time_to_unix(due), error);
}

guint
cs_invoicing_review_days(CsEngine *engine, CsOrder *order)
{
	CsConfig *config = cs_engine_get_config(engine);
	return cs_order_get_subject_type(order) == CS_SUBJECT_ORG ? config->review_org_days
								  : config->review_person_days;
}

gboolean
cs_step_issue_invoice(CsStep *step, const char *email, GError **error)
{
	return cs_step_check_transaction(step, "cs_step_issue_invoice", error) &&
	       cs_invoicing_issue_in_txn(cs_step_get_engine(step), cs_step_get_order(step), email,
					 error);
}
