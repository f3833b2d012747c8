/*
 * new-steps.c — the steps of the new-certificate flow (新办, the manual's section 1), shared
 * by new.c and every flow that runs exactly as new (reissue.c); see new-steps.h.
 *
 * fill (draft; Update = 返回修改) → Confirm → attach materials → Submit (SMS code to the
 * handler) → VerifySmsCode → pay (unpaid → in_review; e-invoice mailed, review due in 5
 * working days for an organisation, 3 for a person) → approve (certificate password
 * generated, sealed and delivered only by the chosen identity method) or reject (fix and
 * submit again, without paying twice) → make the key (making → made) → ship → deliver.
 * Cancel before payment → cancelled; after it → refunding → the cashier refunds.
 *
 * The identity fields of a known subject are kept read-only by the engine's registry
 * (they are marked `identity`). How the certificate password will be delivered depends on
 * the identity method (认证方式); each method needs its own details before the application
 * is confirmed, so that check runs at Confirm, not while filling in. Every secret (the SMS
 * code, the password, the key's SO PIN) is generated, sealed and delivered by the engine:
 * these steps only say when and to whom.
 */
#include <string.h>

#include "new-steps.h"

const char *const new_states[] = {
    "draft", "confirmed", "sms_pending", "unpaid",    "in_review", "approved", "rejected", "making",
    "made",  "shipped",	  "completed",	 "cancelled", "refunding", "refunded", NULL,
};
const char *const new_terminal_states[] = {"completed", "cancelled", "refunded", NULL};
/* A making cut short by a crash starts over from approved (the key work is crash-safe). */
const CsRecovery new_recoveries[] = {{"making", "approved"}, {NULL}};
/* 返回修改 before Confirm, and again after a rejection. */
const char *const new_editable_states[] = {"draft", "rejected", NULL};

/* The manual's 认证方式: how the certificate password is delivered. */
const char *const new_org_auth_methods[] = {"legal_rep_phone", "corporate_account",
					    "legal_rep_bank_card", NULL};
const char *const new_org_auth_zh[] = {"法定代表人手机实名认证", "企业对公账户认证",
				       "法定代表人银行卡信息认证", NULL};
const char *const new_org_auth_en[] = {
    "the password by SMS to the legal representative",
    "the password in the memo of a 0.01 CNY transfer to the corporate account",
    "the password by SMS to the legal representative", NULL};
const char *const new_person_auth_methods[] = {"phone", "bank_card", "bank_account_transfer", NULL};
const char *const new_person_auth_zh[] = {"手机实名认证", "银行卡信息认证", "银行账户打款认证",
					  NULL};
const char *const new_person_auth_en[] = {
    "the password by SMS to your phone", "the password by SMS to your phone",
    "the password in the memo of a 0.01 CNY transfer to your account", NULL};
const char *const new_handler_auth_methods[] = {"handler_phone", "handler_bank_card", NULL};
const char *const new_handler_auth_zh[] = {"经办人手机实名认证", "经办人银行卡认证", NULL};
const char *const new_handler_auth_en[] = {"the handler's phone", "the handler's bank card", NULL};
const char *const new_key_algorithms[] = {"rsa-2048", "ec-p256", "sm2", NULL};

/* seal_image is optional (the seal form's scan is used otherwise). */

/* Where AttachMaterial is allowed. */
const char *const new_material_states[] = {"confirmed", "rejected", NULL};

/* The details each identity method needs: a transfer needs the account it goes to, a
 * bank-card check needs the card. */
static gboolean
require(
    CsOrder *order, const char *field, const char *method_field, const char *method, GError **error)
{
	if (cs_order_get_field(order, field) != NULL)
		return TRUE;
	g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "%s: required when %s is %s", field,
		    method_field, method);
	return FALSE;
}

static gboolean
by_transfer(const char *method)
{
	return g_strcmp0(method, "corporate_account") == 0 ||
	       g_strcmp0(method, "bank_account_transfer") == 0;
}

gboolean
new_check_auth_details(CsStep *step, GError **error)
{
	CsOrder *order = cs_step_get_order(step);
	const char *method = cs_order_get_field(order, "auth_method");
	const char *handler = cs_order_get_field(order, "handler_auth_method");

	if (by_transfer(method)) {
		if (!require(order, "bank_name", "auth_method", method, error) ||
		    !require(order, "bank_account", "auth_method", method, error))
			return FALSE;
	}
	if (g_strcmp0(method, "legal_rep_bank_card") == 0 || g_strcmp0(method, "bank_card") == 0) {
		if (!require(order, "bank_card", "auth_method", method, error))
			return FALSE;
	}
	if (g_strcmp0(handler, "handler_bank_card") == 0 &&
	    !require(order, "handler_bank_card", "handler_auth_method", handler, error))
		return FALSE;
	return TRUE;
}

static gboolean
is_org(CsOrder *order)
{
	return cs_order_get_subject_type(order) == CS_SUBJECT_ORG;
}

/* The handler (经办人): an organisation's handler, or the person. */
const char *
new_contact_phone(CsOrder *order)
{
	return cs_order_get_field(order, is_org(order) ? "handler_phone" : "phone");
}

/* The phone the certificate password goes to when it goes by SMS: the legal
 * representative's for an organisation, the person's own. */
static const char *
password_phone(CsOrder *order)
{
	return cs_order_get_field(order, is_org(order) ? "legal_rep_phone" : "phone");
}

static char *
mask_tail(const char *s, guint keep)
{
	gsize len = strlen(s);
	return g_strdup_printf("****%s", len > keep ? s + len - keep : s);
}

/* PasswordDelivery: "sms:138****8000" or "transfer:****6789" (masked). */
static char *
password_delivery(CsOrder *order)
{
	const char *method = cs_order_get_field(order, "auth_method");
	const char *account = cs_order_get_field(order, "bank_account");
	const char *phone = password_phone(order);
	g_autofree char *masked = NULL;

	if (by_transfer(method)) {
		masked = mask_tail(account != NULL ? account : "", 4);
		return g_strdup_printf("transfer:%s", masked);
	}
	masked = cs_mask_phone(phone);
	return g_strdup_printf("sms:%s", masked);
}

static GVariant *
one_param(const char *name, const char *value)
{
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
	if (value != NULL)
		g_variant_builder_add(&b, "{sv}", name, g_variant_new_string(value));
	return g_variant_builder_end(&b);
}

/* Confirmed: how the password will be delivered is known now, and shown. */
gboolean
new_on_confirm(CsStep *step, GError **error)
{
	g_autofree char *delivery = password_delivery(cs_step_get_order(step));
	return cs_step_set_attr(step, "password_delivery", delivery, error);
}

/* In review (back from a rejection, or free): the review is due in the subject type's
 * working days. */
gboolean
new_on_review(CsStep *step, GError **error)
{
	return cs_step_set_due_by(step, 0, error);
}

/* Paid: the e-invoice goes out, and the review is due. */
gboolean
new_on_pay(CsStep *step, GError **error)
{
	return cs_step_issue_invoice(step, cs_order_get_field(cs_step_get_order(step), "email"),
				     error) &&
	       cs_step_set_due_by(step, 0, error);
}

/* Approved: the password is generated now and goes only the chosen way; the handler is
 * told by SMS, and when the password goes to the handler's own phone it rides along. */
gboolean
new_on_approve(CsStep *step, GError **error)
{
	CsOrder *order = cs_step_get_order(step);
	const char *note = cs_step_get_param(step, "note");
	const char *method = cs_order_get_field(order, "auth_method");
	const char *handler = new_contact_phone(order);
	const char *pin_phone = password_phone(order);
	gboolean same_phone = !by_transfer(method) && g_strcmp0(handler, pin_phone) == 0;
	g_autofree char *delivery = password_delivery(order);

	if (!cs_step_issue_password(step, error) || !cs_step_register_subject(step, error) ||
	    !cs_step_set_attr(step, "review_note", note, error) ||
	    !cs_step_set_attr(step, "password_delivery", delivery, error) ||
	    !cs_step_send_notice(step, handler, "review_approved", one_param("note", note),
				 same_phone, error))
		return FALSE;
	if (by_transfer(method))
		return cs_step_send_password_transfer(
		    step, cs_order_get_subject_name(order), cs_order_get_field(order, "bank_name"),
		    cs_order_get_field(order, "bank_account"), error);
	if (!same_phone)
		return cs_step_send_notice(step, pin_phone, "password", NULL, TRUE, error);
	return TRUE;
}

gboolean
new_on_reject(CsStep *step, GError **error)
{
	const char *note = cs_step_get_param(step, "note");

	return cs_step_set_attr(step, "review_note", note, error) &&
	       cs_step_send_notice(step, new_contact_phone(cs_step_get_order(step)),
				   "review_rejected", one_param("note", note), FALSE, error);
}

/* Making (制证): a blank key initialised with a new SO PIN and the certificate password,
 * then the key pair, the certificate and the e-seal; made or back to approved. */
const CsKeyWork new_making = {
    .done_action = "made",
    .failed_action = "make_failed",
    .provision = TRUE,
};

gboolean
new_on_make(CsStep *step, GError **error)
{
	return cs_step_prepare_key_work(step, &new_making, cs_step_get_param(step, "key_serial"),
					error);
}

void
new_after_make(CsStep *step)
{
	cs_step_start_key_work(step, &new_making);
}

/* The key holds the password now: the sealed copy is no longer needed. */
gboolean
new_on_made(CsStep *step, GError **error)
{
	return cs_step_forget_password(step, error);
}

gboolean
new_on_ship(CsStep *step, GError **error)
{
	const char *tracking = cs_step_get_param(step, "tracking");

	return cs_step_set_attr(step, "tracking_number", tracking, error) &&
	       cs_step_send_notice(step, new_contact_phone(cs_step_get_order(step)), "shipped",
				   one_param("tracking", tracking), FALSE, error);
}

gboolean
new_on_cancel_paid(CsStep *step, GError **error)
{
	return cs_step_queue_refund(step, error);
}

/* Refunded: the order ends without a key. */
gboolean
new_on_refunded(CsStep *step, GError **error)
{
	return cs_step_forget_password(step, error);
}

void
new_after_refunded(CsStep *step)
{
	cs_step_revoke_unused_certificates(step);
}

const CsResultSpec new_review_results[] = {{"note", FALSE, TRUE}, {NULL}};
const CsResultSpec new_make_results[] = {{"key_serial", TRUE, FALSE}, {NULL}};
const CsResultSpec new_ship_results[] = {{"tracking", TRUE, TRUE}, {NULL}};
