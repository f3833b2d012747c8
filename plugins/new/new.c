/*
 * new.c — the new-certificate flow (新办, the manual's section 1), kind "new".
 *
 * fill (draft; Update = 返回修改) → Confirm → attach materials → Submit (SMS code to the
 * handler) → VerifySmsCode → pay (unpaid → in_review; e-invoice mailed, review due in 5
 * working days for an organisation, 3 for a person) → approve (certificate password
 * generated, sealed and delivered only by the chosen identity method) or reject (fix and
 * submit again, without paying twice) → make the key (making → made) → ship → deliver.
 * Cancel before payment → cancelled; after it → refunding → the cashier refunds.
 *
 * The identity fields of a known subject are kept read-only by the engine's registry
 * (they are marked `identity` here). How the certificate password will be delivered
 * depends on the identity method (认证方式); each method needs its own details before
 * the application is confirmed, so that check runs at Confirm, not while filling in.
 * Every secret (the SMS code, the password, the key's SO PIN) is generated, sealed and
 * delivered by the engine: this plugin only says when and to whom.
 */
#include <gmodule.h>
#include <string.h>

#include "certseal/plugin.h"

CS_PLUGIN_DEFINE_ABI();

static const char *const states[] = {
    "draft", "confirmed", "sms_pending", "unpaid",    "in_review", "approved", "rejected", "making",
    "made",  "shipped",	  "completed",	 "cancelled", "refunding", "refunded", NULL,
};
static const char *const terminal_states[] = {"completed", "cancelled", "refunded", NULL};
/* A making cut short by a crash starts over from approved (the key work is crash-safe). */
static const CsRecovery recoveries[] = {{"making", "approved"}, {NULL}};
/* 返回修改 before Confirm, and again after a rejection. */
static const char *const editable_states[] = {"draft", "rejected", NULL};

/* The manual's 认证方式: how the certificate password is delivered. */
static const char *const org_auth_methods[] = {"legal_rep_phone", "corporate_account",
					       "legal_rep_bank_card", NULL};
static const char *const org_auth_zh[] = {"法定代表人手机实名认证", "企业对公账户认证",
					  "法定代表人银行卡信息认证", NULL};
static const char *const org_auth_en[] = {
    "the password by SMS to the legal representative",
    "the password in the memo of a 0.01 CNY transfer to the corporate account",
    "the password by SMS to the legal representative", NULL};
static const char *const person_auth_methods[] = {"phone", "bank_card", "bank_account_transfer",
						  NULL};
static const char *const person_auth_zh[] = {"手机实名认证", "银行卡信息认证", "银行账户打款认证",
					     NULL};
static const char *const person_auth_en[] = {
    "the password by SMS to your phone", "the password by SMS to your phone",
    "the password in the memo of a 0.01 CNY transfer to your account", NULL};
static const char *const handler_auth_methods[] = {"handler_phone", "handler_bank_card", NULL};
static const char *const handler_auth_zh[] = {"经办人手机实名认证", "经办人银行卡认证", NULL};
static const char *const handler_auth_en[] = {"the handler's phone", "the handler's bank card",
					      NULL};
static const char *const key_algorithms[] = {"rsa-2048", "ec-p256", "sm2", NULL};

#define ORG CS_SUBJECT_ORG
#define PERSON CS_SUBJECT_PERSON
#define ANY CS_SUBJECT_ANY

static const CsFieldSpec fields[] = {
    /* name, type, subject types, required, identity, choices, max length, labels */
    {"vendor", CS_FIELD_VENDOR, ANY, TRUE, FALSE, NULL, 32, "选择 ukey 所属厂商",
     "the key's vendor"},
    {"auth_method", CS_FIELD_ENUM, ORG, TRUE, FALSE, org_auth_methods, 0, "认证方式",
     "how the certificate password is delivered", org_auth_zh, org_auth_en},
    {"auth_method", CS_FIELD_ENUM, PERSON, TRUE, FALSE, person_auth_methods, 0, "认证方式",
     "how the certificate password is delivered", person_auth_zh, person_auth_en},
    {"bank_name", CS_FIELD_TEXT, ANY, FALSE, FALSE, NULL, 100, "开户银行",
     "the bank of the account"},
    {"bank_account", CS_FIELD_BANK_ACCOUNT, ANY, FALSE, FALSE, NULL, 40, "银行账号",
     "the account the 0.01 CNY transfer goes to"},
    {"bank_card", CS_FIELD_BANK_CARD, ANY, FALSE, FALSE, NULL, 19, "银行卡号",
     "the bank card's number"},
    /* 单位 */
    {"org_name", CS_FIELD_NAME, ORG, TRUE, TRUE, NULL, 100, "单位名称",
     "the registered name (also the invoice title)"},
    {"uscc", CS_FIELD_USCC, ORG, TRUE, TRUE, NULL, 18, "统一社会信用代码",
     "18 characters, digits and capitals"},
    {"legal_rep_name", CS_FIELD_NAME, ORG, TRUE, TRUE, NULL, 50, "法定代表人姓名",
     "the legal representative's name"},
    {"legal_rep_id", CS_FIELD_RESIDENT_ID, ORG, TRUE, TRUE, NULL, 18, "法定代表人身份证号",
     "18-character resident ID"},
    {"legal_rep_phone", CS_FIELD_PHONE, ORG, TRUE, FALSE, NULL, 20, "法定代表人手机",
     "11-digit mobile number"},
    {"handler_name", CS_FIELD_NAME, ORG, TRUE, FALSE, NULL, 50, "经办人姓名",
     "who handles this application"},
    {"handler_id", CS_FIELD_RESIDENT_ID, ORG, TRUE, FALSE, NULL, 18, "经办人身份证号",
     "18-character resident ID"},
    {"handler_phone", CS_FIELD_PHONE, ORG, TRUE, FALSE, NULL, 20, "经办人手机",
     "11-digit mobile number; the SMS codes and the review result go there"},
    {"handler_auth_method", CS_FIELD_ENUM, ORG, TRUE, FALSE, handler_auth_methods, 0,
     "经办人认证方式", "how the handler is verified", handler_auth_zh, handler_auth_en},
    {"handler_bank_card", CS_FIELD_BANK_CARD, ORG, FALSE, FALSE, NULL, 19, "经办人银行卡号",
     "the handler's bank card"},
    /* 个人 */
    {"name", CS_FIELD_NAME, PERSON, TRUE, TRUE, NULL, 50, "姓名", "your name"},
    {"id_number", CS_FIELD_RESIDENT_ID, PERSON, TRUE, TRUE, NULL, 18, "身份证号",
     "18-character resident ID"},
    {"phone", CS_FIELD_PHONE, PERSON, TRUE, FALSE, NULL, 20, "手机",
     "11-digit mobile number; the SMS codes and the review result go there"},
    /* both: the invoice and the shipping */
    {"email", CS_FIELD_EMAIL, ANY, TRUE, FALSE, NULL, 254, "电子邮箱",
     "the e-invoice is mailed there"},
    {"address", CS_FIELD_TEXT, ANY, TRUE, FALSE, NULL, 200, "通讯地址",
     "a mailing address that receives express mail (the key is shipped there)"},
    {"postcode", CS_FIELD_POSTCODE, ANY, TRUE, FALSE, NULL, 6, "邮政编码", "6 digits"},
    {"key_algorithm", CS_FIELD_ENUM, ANY, FALSE, FALSE, key_algorithms, 0, "密钥算法",
     "rsa-2048, ec-p256 or sm2"},
};

/* seal_image is optional (the seal form's scan is used otherwise). */
static const CsMaterialSpec materials[] = {
    {"business_license", ORG, TRUE, "营业执照",
     "the business licence (scan or photo; PNG, JPEG or PDF)"},
    {"handler_id_front", ORG, TRUE, "经办人身份证头像面", "the handler's ID card, photo side"},
    {"handler_id_back", ORG, TRUE, "经办人身份证国徽面", "the handler's ID card, emblem side"},
    {"id_front", PERSON, TRUE, "身份证头像面", "your ID card, photo side"},
    {"id_back", PERSON, TRUE, "身份证国徽面", "your ID card, emblem side"},
    {"seal_form", ANY, TRUE, "印章采样表",
     "the seal sample form, filled in, signed/stamped and scanned"},
    {"seal_image", ANY, FALSE, "印章图片",
     "the seal picture for the e-seal; the seal form's scan is used otherwise"},
};
/* Where AttachMaterial is allowed. */
static const char *const material_states[] = {"confirmed", "rejected", NULL};

#define APPLICANT CS_ACTOR_DESKTOP
#define SUBMIT                                                                                     \
	(CS_TRANSITION_NEEDS_FIELDS | CS_TRANSITION_NEEDS_MATERIALS | CS_TRANSITION_SENDS_CODE)
#define PAID CS_TRANSITION_IF_PAID
#define UNPAID CS_TRANSITION_UNLESS_PAID

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

static gboolean
check_auth_details(CsStep *step, GError **error)
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
static const char *
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
static gboolean
on_confirm(CsStep *step, GError **error)
{
	g_autofree char *delivery = password_delivery(cs_step_get_order(step));
	return cs_step_set_attr(step, "password_delivery", delivery, error);
}

/* In review (back from a rejection, or free): the review is due in the subject type's
 * working days. */
static gboolean
on_review(CsStep *step, GError **error)
{
	return cs_step_set_due_by(step, 0, error);
}

/* Paid: the e-invoice goes out, and the review is due. */
static gboolean
on_pay(CsStep *step, GError **error)
{
	return cs_step_issue_invoice(step, cs_order_get_field(cs_step_get_order(step), "email"),
				     error) &&
	       cs_step_set_due_by(step, 0, error);
}

/* Approved: the password is generated now and goes only the chosen way; the handler is
 * told by SMS, and when the password goes to the handler's own phone it rides along. */
static gboolean
on_approve(CsStep *step, GError **error)
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

static gboolean
on_reject(CsStep *step, GError **error)
{
	const char *note = cs_step_get_param(step, "note");

	return cs_step_set_attr(step, "review_note", note, error) &&
	       cs_step_send_notice(step, new_contact_phone(cs_step_get_order(step)),
				   "review_rejected", one_param("note", note), FALSE, error);
}

/* Making (制证): a blank key initialised with a new SO PIN and the certificate password,
 * then the key pair, the certificate and the e-seal; made or back to approved. */
static const CsKeyWork making = {
    .done_action = "made",
    .failed_action = "make_failed",
    .provision = TRUE,
};

static gboolean
on_make(CsStep *step, GError **error)
{
	return cs_step_prepare_key_work(step, &making, cs_step_get_param(step, "key_serial"),
					error);
}

static void
after_make(CsStep *step)
{
	cs_step_start_key_work(step, &making);
}

/* The key holds the password now: the sealed copy is no longer needed. */
static gboolean
on_made(CsStep *step, GError **error)
{
	return cs_step_forget_password(step, error);
}

static gboolean
on_ship(CsStep *step, GError **error)
{
	const char *tracking = cs_step_get_param(step, "tracking");

	return cs_step_set_attr(step, "tracking_number", tracking, error) &&
	       cs_step_send_notice(step, new_contact_phone(cs_step_get_order(step)), "shipped",
				   one_param("tracking", tracking), FALSE, error);
}

static gboolean
on_cancel_paid(CsStep *step, GError **error)
{
	return cs_step_queue_refund(step, error);
}

/* Refunded: the order ends without a key. */
static gboolean
on_refunded(CsStep *step, GError **error)
{
	return cs_step_forget_password(step, error);
}

static void
after_refunded(CsStep *step)
{
	cs_step_revoke_unused_certificates(step);
}

static const CsResultSpec review_results[] = {{"note", FALSE, TRUE}, {NULL}};
static const CsResultSpec make_results[] = {{"key_serial", TRUE, FALSE}, {NULL}};
static const CsResultSpec ship_results[] = {{"tracking", TRUE, TRUE}, {NULL}};

static const CsTransition transitions[] = {
    /* action, from, to, actors, flags, service, results, check, run, after */
    {"confirm", "draft", "confirmed", APPLICANT, CS_TRANSITION_NEEDS_FIELDS, NULL, NULL,
     check_auth_details, on_confirm},
    {"submit", "confirmed", "sms_pending", APPLICANT, SUBMIT, NULL, NULL, check_auth_details},
    {"submit", "rejected", "sms_pending", APPLICANT, SUBMIT, NULL, NULL, check_auth_details},
    /* Already paid (a resubmission) or free: straight to review. */
    {"verify_sms_code", "sms_pending", "in_review", APPLICANT,
     CS_TRANSITION_NEEDS_CODE | CS_TRANSITION_IF_SETTLED, NULL, NULL, NULL, on_review},
    {"verify_sms_code", "sms_pending", "unpaid", APPLICANT,
     CS_TRANSITION_NEEDS_CODE | CS_TRANSITION_UNLESS_SETTLED},
    {"pay", "unpaid", "in_review", CS_ACTOR_GATEWAY, CS_TRANSITION_PAYMENT, NULL, NULL, NULL,
     on_pay},
    {"approve", "in_review", "approved", CS_ACTOR_REVIEWER, 0, "review", review_results, NULL,
     on_approve},
    {"reject", "in_review", "rejected", CS_ACTOR_REVIEWER, 0, "review", review_results, NULL,
     on_reject},
    {"make", "approved", "making", CS_ACTOR_MAKER, 0, "make", make_results, NULL, on_make,
     after_make},
    {"made", "making", "made", CS_ACTOR_SYSTEM, 0, NULL, NULL, NULL, on_made},
    {"make_failed", "making", "approved", CS_ACTOR_SYSTEM},
    {"ship", "made", "shipped", CS_ACTOR_SHIPPER, 0, "ship", ship_results, NULL, on_ship},
    {"deliver", "shipped", "completed", CS_ACTOR_SHIPPER, 0, "deliver"},
    {"cancel", "draft", "cancelled", APPLICANT},
    {"cancel", "confirmed", "cancelled", APPLICANT},
    {"cancel", "sms_pending", "refunding", APPLICANT, PAID, NULL, NULL, NULL, on_cancel_paid},
    {"cancel", "sms_pending", "cancelled", APPLICANT, UNPAID},
    {"cancel", "unpaid", "cancelled", APPLICANT, UNPAID},
    /* Paid in part. */
    {"cancel", "unpaid", "refunding", APPLICANT, PAID, NULL, NULL, NULL, on_cancel_paid},
    {"cancel", "rejected", "refunding", APPLICANT, PAID, NULL, NULL, NULL, on_cancel_paid},
    {"cancel", "rejected", "cancelled", APPLICANT, UNPAID},
    {"cancel", "in_review", "refunding", APPLICANT, PAID, NULL, NULL, NULL, on_cancel_paid},
    {"cancel", "approved", "refunding", APPLICANT, PAID, NULL, NULL, NULL, on_cancel_paid},
    {"refund", "refunding", "refunded", CS_ACTOR_CASHIER, CS_TRANSITION_REFUND, NULL, NULL, NULL,
     on_refunded, after_refunded},
    {"refund", "in_review", "refunded", CS_ACTOR_CASHIER, CS_TRANSITION_REFUND | PAID, NULL, NULL,
     NULL, on_refunded, after_refunded},
    {"refund", "rejected", "refunded", CS_ACTOR_CASHIER, CS_TRANSITION_REFUND | PAID, NULL, NULL,
     NULL, on_refunded, after_refunded},
    {"refund", "approved", "refunded", CS_ACTOR_CASHIER, CS_TRANSITION_REFUND | PAID, NULL, NULL,
     NULL, on_refunded, after_refunded},
};

/* ReviewNote also says why a making failed, until the next attempt. */
static const CsAttrSpec attrs[] = {
    {"review_note", "ReviewNote"},
    {"key_work_error", "ReviewNote"},
    {"tracking_number", "TrackingNumber"},
    {"password_delivery", "PasswordDelivery"},
    {NULL},
};

static const CsPlugin plugin = {
    .kind = "new",
    .summary = "New certificate and e-seal on a UKey (新办)",
    .title_zh = "新办",
    .initial_state = "draft",
    .states = states,
    .terminal_states = terminal_states,
    .editable_states = editable_states,
    .material_states = material_states,
    .recoveries = recoveries,
    .transitions = transitions,
    .n_transitions = G_N_ELEMENTS(transitions),
    .fields = fields,
    .n_fields = G_N_ELEMENTS(fields),
    .materials = materials,
    .n_materials = G_N_ELEMENTS(materials),
    .attrs = attrs,
    .contact_phone = new_contact_phone,
};

G_MODULE_EXPORT const CsPlugin *certseal_plugin_get(void);

const CsPlugin *
certseal_plugin_get(void)
{
	return &plugin;
}
