/*
 * change.c — the information change flow (信息变更, the manual's section 5: 变更说明, 用于单位
 * 名称变更重新申请对应的证书及电子印), kind "change", docs/architecture.md §1.5.
 *
 * The user has the key in the slot — only that one — and is logged in on it (the same
 * refusals as a renewal); its certificate is this platform's and valid (not expired, not
 * revoked). CreateOrder takes the key and pre-fills the order from the certificate and the
 * subject registry; what was on file is kept in the previous_* fields, fixed for the order.
 * `uscc` and `id_number` never change: a different number is a different subject, who
 * applies anew. Identity fields may change here and only here (may_change_identity).
 *
 * draft (Update; SendSmsCode/VerifySmsCode to the phone on file — the old one when the
 * phone itself changes: 短信校验) → Confirm →
 *   - contacts only (handler, phones other than the legal representative's, address,
 *     e-mail): the registry is updated and the order completed at once, no certificate;
 *   - what the certificate or seal carries (org name; a person's name) or the legal
 *     representative (it decides where unlock and password codes go): confirmed →
 *     AttachMaterial (org: a new business_license; person: id_front, id_back) → Submit
 *     (refused naming what is missing) → unpaid → pay → in_review, or in_review when free →
 *     approve (downloadable) or reject (fix, Submit again) → Download on the same key
 *     (downloading, Progress) → completed.
 *
 * Download is the renewal's key work with CsKeyWork.changes_subject: a new certificate with
 * the new subject (notBefore the issuance, notAfter the old certificate's end) and a new
 * e-seal whose picture carries the new name (or the uploaded seal_image), the old
 * certificate and key pair deleted and the old certificate revoked affiliationChanged; the
 * registry takes the new identity in the step that completes the order. The PIN does not
 * change. A pulled key, a driver failure or a restart returns the order to downloadable with
 * the reason in ReviewNote; Download again finishes.
 */
#include <gmodule.h>
#include <string.h>

#include "certseal/plugin.h"

CS_PLUGIN_DEFINE_ABI();

static const char *const states[] = {
    "draft",	   "confirmed", "unpaid",    "in_review", "rejected", "downloadable",
    "downloading", "completed", "cancelled", "refunding", "refunded", NULL,
};
static const char *const terminal_states[] = {"completed", "cancelled", "refunded", NULL};
/* A download cut short by a crash is taken up again from downloadable. */
static const CsRecovery recoveries[] = {{"downloading", "downloadable"}, {NULL}};
static const char *const editable_states[] = {"draft", "rejected", NULL};
static const char *const material_states[] = {"confirmed", "rejected", NULL};

#define ORG CS_SUBJECT_ORG
#define PERSON CS_SUBJECT_PERSON
#define ANY CS_SUBJECT_ANY

static const CsFieldSpec fields[] = {
    /* name, type, subject types, required, identity, choices, max length, labels, choice
     * labels, fixed */
    /* From the key, fixed for the order. */
    {"key", CS_FIELD_TEXT, ANY, TRUE, FALSE, NULL, 128, "UK", "the key inserted", NULL, NULL, TRUE},
    {"vendor", CS_FIELD_VENDOR, ANY, TRUE, FALSE, NULL, 32, "厂商", "the key's vendor", NULL, NULL,
     TRUE},
    {"certificate_serial", CS_FIELD_TEXT, ANY, TRUE, FALSE, NULL, 64, "证书序列号",
     "the certificate being changed", NULL, NULL, TRUE},
    /* Contacts. */
    {"email", CS_FIELD_EMAIL, ANY, FALSE, FALSE, NULL, 254, "电子邮箱", "e-mail"},
    {"address", CS_FIELD_TEXT, ANY, FALSE, FALSE, NULL, 200, "通讯地址", "mailing address"},
    {"postcode", CS_FIELD_POSTCODE, ANY, FALSE, FALSE, NULL, 6, "邮编", "postcode"},
    /* 单位 */
    {"org_name", CS_FIELD_NAME, ORG, TRUE, TRUE, NULL, 100, "单位名称",
     "the organisation's name (a new one needs a new business licence)"},
    {"uscc", CS_FIELD_USCC, ORG, TRUE, TRUE, NULL, 18, "统一社会信用代码",
     "never changes: a different code is a different organisation"},
    {"legal_rep_name", CS_FIELD_NAME, ORG, FALSE, TRUE, NULL, 50, "法定代表人姓名",
     "the legal representative (a new one needs a new business licence)"},
    {"legal_rep_id", CS_FIELD_RESIDENT_ID, ORG, FALSE, TRUE, NULL, 18, "法定代表人身份证号",
     "the legal representative's resident ID number"},
    {"legal_rep_phone", CS_FIELD_PHONE, ORG, FALSE, TRUE, NULL, 20, "法定代表人手机号",
     "the legal representative's mobile number"},
    {"handler_name", CS_FIELD_NAME, ORG, FALSE, FALSE, NULL, 50, "经办人姓名", "the handler"},
    {"handler_phone", CS_FIELD_PHONE, ORG, TRUE, FALSE, NULL, 20, "经办人手机号",
     "the handler's mobile number; the SMS code goes to the one on file"},
    /* 个人 */
    {"name", CS_FIELD_NAME, PERSON, TRUE, TRUE, NULL, 50, "姓名",
     "your name (a new one needs your ID card)"},
    {"id_number", CS_FIELD_RESIDENT_ID, PERSON, TRUE, TRUE, NULL, 18, "身份证号",
     "never changes: a different number is a different person"},
    {"phone", CS_FIELD_PHONE, PERSON, TRUE, FALSE, NULL, 20, "手机号",
     "your mobile number; the SMS code goes to the one on file"},
    /* What was on file when the order was created. */
    {"previous_org_name", CS_FIELD_NAME, ORG, FALSE, FALSE, NULL, 100, "原单位名称",
     "the name on file", NULL, NULL, TRUE},
    {"previous_legal_rep_name", CS_FIELD_NAME, ORG, FALSE, FALSE, NULL, 50, "原法定代表人姓名",
     "the legal representative on file", NULL, NULL, TRUE},
    {"previous_legal_rep_id", CS_FIELD_RESIDENT_ID, ORG, FALSE, FALSE, NULL, 18,
     "原法定代表人身份证号", "the legal representative's ID number on file", NULL, NULL, TRUE},
    {"previous_legal_rep_phone", CS_FIELD_PHONE, ORG, FALSE, FALSE, NULL, 20, "原法定代表人手机号",
     "the legal representative's mobile number on file", NULL, NULL, TRUE},
    {"previous_handler_phone", CS_FIELD_PHONE, ORG, FALSE, FALSE, NULL, 20, "原经办人手机号",
     "the handler's mobile number on file", NULL, NULL, TRUE},
    {"previous_name", CS_FIELD_NAME, PERSON, FALSE, FALSE, NULL, 50, "原姓名", "the name on file",
     NULL, NULL, TRUE},
    {"previous_phone", CS_FIELD_PHONE, PERSON, FALSE, FALSE, NULL, 20, "原手机号",
     "the mobile number on file", NULL, NULL, TRUE},
};

static gboolean
is_org(CsOrder *order)
{
	return cs_order_get_subject_type(order) == CS_SUBJECT_ORG;
}

/* Does field @name differ from what was on file (previous_@name)? */
static gboolean
differs(CsOrder *order, const char *name)
{
	g_autofree char *previous = g_strconcat("previous_", name, NULL);

	return g_strcmp0(cs_order_get_field(order, name), cs_order_get_field(order, previous)) != 0;
}

/* What the certificate or seal carries. */
static gboolean
name_changed(CsOrder *order)
{
	return differs(order, is_org(order) ? "org_name" : "name");
}

static gboolean
legal_rep_changed(CsOrder *order)
{
	return is_org(order) &&
	       (differs(order, "legal_rep_name") || differs(order, "legal_rep_id") ||
		differs(order, "legal_rep_phone"));
}

/* Evidence and review: a new name or a new legal representative. */
static gboolean
needs_review(CsOrder *order)
{
	return name_changed(order) || legal_rep_changed(order);
}

static gboolean
contacts_only(CsOrder *order)
{
	return !needs_review(order);
}

static gboolean
needs_person_id(CsOrder *order)
{
	return !is_org(order) && name_changed(order);
}

static const CsMaterialSpec materials[] = {
    {"business_license", ORG, FALSE, "营业执照",
     "the new business licence, for a new name or legal representative (PNG, JPEG or PDF)",
     needs_review},
    {"id_front", PERSON, FALSE, "身份证头像面", "your ID card, photo side, for a new name",
     needs_person_id},
    {"id_back", PERSON, FALSE, "身份证国徽面", "your ID card, emblem side, for a new name",
     needs_person_id},
    {"seal_image", ANY, FALSE, "印章图片",
     "a new seal picture; one is drawn with the new name otherwise"},
};

/* The SMS code goes to the phone on file while the order is being filled in (the old one
 * when the phone itself changes); afterwards notices go to the phone now on record. */
static const char *
change_contact_phone(CsOrder *order)
{
	const char *current = cs_order_get_field(order, is_org(order) ? "handler_phone" : "phone");
	const char *on_file =
	    cs_order_get_field(order, is_org(order) ? "previous_handler_phone" : "previous_phone");

	if (g_strcmp0(cs_order_get_state(order), "draft") == 0 && on_file != NULL)
		return on_file;
	return current;
}

static gboolean
check_certificate(const CsKeyCertificate *key, gint64 now, GError **error)
{
	if (!cs_key_certificate_check_ours(key, "changed", error))
		return FALSE;
	if (key->not_after <= now) {
		g_set_error(error, CS_ERROR, CS_ERROR_NOT_ELIGIBLE,
			    "certificate: %s has expired: renew it or apply for a new one",
			    key->certificate_serial);
		return FALSE;
	}
	return TRUE;
}

static void
keep_previous(CsCreate *create, const char *name)
{
	g_autofree char *previous = g_strconcat("previous_", name, NULL);
	const char *value = cs_create_get_field(create, name);

	if (value != NULL)
		cs_create_set_field(create, previous, value);
}

/* CreateOrder: the key inserted alone, logged in, with a valid certificate of this
 * platform; the order pre-filled from it and the registry, what is on file kept. */
static gboolean
change_prepare_order(CsCreate *create, GError **error)
{
	g_auto(CsKeyCertificate) key = {0};
	CsSubjectType type = cs_create_get_subject_type(create);
	const char *number_field = cs_subject_number_field(type);
	const char *asked = cs_create_get_field(create, "key");
	const char *vendor = cs_create_get_field(create, "vendor");
	const char *number = cs_create_get_field(create, number_field);
	const char *const org_kept[] = {"org_name",	   "legal_rep_name", "legal_rep_id",
					"legal_rep_phone", "handler_phone",  NULL};
	const char *const person_kept[] = {"name", "phone", NULL};
	const char *const *kept = type == CS_SUBJECT_ORG ? org_kept : person_kept;

	if (!cs_create_inspect_key(create, &key, error))
		return FALSE;
	if (asked != NULL && g_strcmp0(asked, key.key) != 0 && g_strcmp0(asked, key.serial) != 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "key: %s is not inserted; the key inserted is %s", asked, key.serial);
		return FALSE;
	}
	if (vendor != NULL && g_strcmp0(vendor, key.vendor) != 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "vendor: key %s is a %s key, not %s", key.serial, key.vendor, vendor);
		return FALSE;
	}
	if (!cs_key_certificate_check_login(&key, error) ||
	    !check_certificate(&key, cs_clock_now(), error))
		return FALSE;
	if (g_strcmp0(key.subject_type, cs_subject_type_to_string(type)) != 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "subject_type: the certificate on key %s is a%s %s certificate",
			    key.serial, g_strcmp0(key.subject_type, "org") == 0 ? "n" : "",
			    key.subject_type);
		return FALSE;
	}
	if (number != NULL && g_strcmp0(number, key.id_number) != 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "%s: never changes: the certificate on key %s is of %s; a different "
			    "number is a different subject: apply anew for it (a new order)",
			    number_field, key.serial, key.id_number);
		return FALSE;
	}
	cs_create_set_field(create, "key", key.key);
	cs_create_set_field(create, "vendor", key.vendor);
	cs_create_set_field(create, "certificate_serial", key.certificate_serial);
	cs_create_set_field(create, number_field, key.id_number);
	if (key.subject_name != NULL)
		cs_create_set_field(create, cs_subject_name_field(type), key.subject_name);
	if (!cs_create_prefill_from_registry(
		create, key.id_number, type == CS_SUBJECT_ORG ? "handler_phone" : "phone", error))
		return FALSE;
	for (guint i = 0; kept[i] != NULL; i++)
		keep_previous(create, kept[i]);
	return TRUE;
}

/* Confirm: the applicant proved to hold the phone on file (VerifySmsCode). */
static gboolean
check_confirm(CsStep *step, GError **error)
{
	CsOrder *order = cs_step_get_order(step);
	g_autofree char *masked = NULL;

	if (cs_order_get_attr(order, "phone_verified") != NULL)
		return TRUE;
	masked = cs_mask_phone(change_contact_phone(order));
	g_set_error(error, CS_ERROR, CS_ERROR_ACCESS_DENIED,
		    "code: verify the SMS code sent to the phone on file (%s) first "
		    "(SendSmsCode, VerifySmsCode)",
		    masked != NULL ? masked : "none");
	return FALSE;
}

static gboolean
on_verified(CsStep *step, GError **error)
{
	return cs_step_set_attr(step, "phone_verified", "1", error);
}

/* Contacts only: the registry takes them, and the order is done. */
static gboolean
on_contacts_changed(CsStep *step, GError **error)
{
	return cs_step_register_subject(step, error);
}

static gboolean
on_review(CsStep *step, GError **error)
{
	return cs_step_set_attr(step, "review_note", NULL, error) &&
	       cs_step_set_due_by(step, 0, error);
}

static gboolean
on_pay(CsStep *step, GError **error)
{
	CsOrder *order = cs_step_get_order(step);

	return cs_step_issue_invoice(step, cs_order_get_field(order, "email"), error) &&
	       on_review(step, error);
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

static gboolean
on_approve(CsStep *step, GError **error)
{
	const char *note = cs_step_get_param(step, "note");

	return cs_step_set_attr(step, "review_note", note, error) &&
	       cs_step_send_notice(step, change_contact_phone(cs_step_get_order(step)),
				   "review_approved", one_param("note", note), FALSE, error);
}

static gboolean
on_reject(CsStep *step, GError **error)
{
	const char *note = cs_step_get_param(step, "note");

	return cs_step_set_attr(step, "review_note", note, error) &&
	       cs_step_send_notice(step, change_contact_phone(cs_step_get_order(step)),
				   "review_rejected", one_param("note", note), FALSE, error);
}

/* Download: on the key this order changes, inserted alone and logged in; the first time,
 * before the key is touched, its certificate is still the one being changed and valid. */
static gboolean
check_download(CsStep *step, GError **error)
{
	CsOrder *order = cs_step_get_order(step);
	const char *expected = cs_order_get_field(order, "key");
	const char *asked = cs_step_get_param(step, "key");
	g_auto(CsKeyCertificate) key = {0};

	if (!cs_step_inspect_key(step, &key, error))
		return FALSE;
	if (g_strcmp0(key.key, expected) != 0) {
		const char *serial = strrchr(expected != NULL ? expected : "", '_');
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "key: insert key %s, the one this order changes (%s is inserted)",
			    serial != NULL ? serial + 1 : expected, key.serial);
		return FALSE;
	}
	if (asked != NULL && g_strcmp0(asked, key.key) != 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "key: %s is not inserted; download to key %s", asked, key.serial);
		return FALSE;
	}
	if (!cs_key_certificate_check_login(&key, error))
		return FALSE;
	if (cs_order_get_attr(order, "download_started") != NULL)
		return TRUE; /* a resumed download is not refused half-way */
	if (g_strcmp0(key.certificate_serial, cs_order_get_field(order, "certificate_serial")) !=
	    0) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "key: %s holds certificate %s, not %s which this order changes",
			    key.serial, key.certificate_serial ? key.certificate_serial : "(none)",
			    cs_order_get_field(order, "certificate_serial"));
		return FALSE;
	}
	return check_certificate(&key, cs_clock_now(), error);
}

static const CsKeyWork change_work = {
    .done_action = "downloaded",
    .failed_action = "download_failed",
    .follows_field = "certificate_serial",
    .changes_subject = TRUE,
};

static gboolean
on_download(CsStep *step, GError **error)
{
	CsOrder *order = cs_step_get_order(step);

	if (cs_order_get_attr(order, "download_started") == NULL &&
	    !cs_step_set_attr(step, "download_started", "1", error))
		return FALSE;
	return cs_step_prepare_key_work(step, &change_work, cs_order_get_field(order, "key"),
					error);
}

static void
after_download(CsStep *step)
{
	cs_step_start_key_work(step, &change_work);
}

/* The key holds the new certificate: the registry takes the new identity in this step. */
static gboolean
on_downloaded(CsStep *step, GError **error)
{
	return cs_step_register_subject(step, error);
}

static gboolean
on_cancel_paid(CsStep *step, GError **error)
{
	return cs_step_queue_refund(step, error);
}

/* The order ends without a new certificate; one an interrupted download issued is
 * revoked. */
static void
after_refunded(CsStep *step)
{
	cs_step_revoke_unused_certificates(step);
}

static const CsResultSpec review_results[] = {{"note", FALSE, TRUE}, {NULL}};

#define APPLICANT CS_ACTOR_DESKTOP
#define FIELDS CS_TRANSITION_NEEDS_FIELDS
#define SUBMIT (CS_TRANSITION_NEEDS_FIELDS | CS_TRANSITION_NEEDS_MATERIALS)
#define SETTLED CS_TRANSITION_IF_SETTLED
#define UNSETTLED CS_TRANSITION_UNLESS_SETTLED
#define PAID CS_TRANSITION_IF_PAID
#define UNPAID CS_TRANSITION_UNLESS_PAID

static const CsTransition transitions[] = {
    /* action, from, to, actors, flags, service, results, check, run, after, guard */
    {"verify_sms_code", "draft", "draft", APPLICANT, CS_TRANSITION_NEEDS_CODE, NULL, NULL, NULL,
     on_verified},
    {"confirm", "draft", "completed", APPLICANT, FIELDS, NULL, NULL, check_confirm,
     on_contacts_changed, NULL, contacts_only},
    {"confirm", "draft", "confirmed", APPLICANT, FIELDS, NULL, NULL, check_confirm, NULL, NULL,
     needs_review},
    {"submit", "confirmed", "in_review", APPLICANT, SUBMIT | SETTLED, NULL, NULL, NULL, on_review},
    {"submit", "confirmed", "unpaid", APPLICANT, SUBMIT | UNSETTLED},
    {"submit", "rejected", "in_review", APPLICANT, SUBMIT | SETTLED, NULL, NULL, NULL, on_review},
    {"submit", "rejected", "unpaid", APPLICANT, SUBMIT | UNSETTLED},
    {"pay", "unpaid", "in_review", CS_ACTOR_GATEWAY, CS_TRANSITION_PAYMENT, NULL, NULL, NULL,
     on_pay},
    {"approve", "in_review", "downloadable", CS_ACTOR_REVIEWER, 0, "review", review_results, NULL,
     on_approve},
    {"reject", "in_review", "rejected", CS_ACTOR_REVIEWER, 0, "review", review_results, NULL,
     on_reject},
    {"download", "downloadable", "downloading", APPLICANT, 0, NULL, NULL, check_download,
     on_download, after_download},
    {"downloaded", "downloading", "completed", CS_ACTOR_SYSTEM, 0, NULL, NULL, NULL, on_downloaded},
    {"download_failed", "downloading", "downloadable", CS_ACTOR_SYSTEM},
    {"cancel", "draft", "cancelled", APPLICANT},
    {"cancel", "confirmed", "cancelled", APPLICANT},
    {"cancel", "unpaid", "cancelled", APPLICANT, UNPAID},
    {"cancel", "unpaid", "refunding", APPLICANT, PAID, NULL, NULL, NULL, on_cancel_paid},
    {"cancel", "rejected", "cancelled", APPLICANT, UNPAID},
    {"cancel", "rejected", "refunding", APPLICANT, PAID, NULL, NULL, NULL, on_cancel_paid},
    {"cancel", "in_review", "cancelled", APPLICANT, UNPAID},
    {"cancel", "in_review", "refunding", APPLICANT, PAID, NULL, NULL, NULL, on_cancel_paid},
    {"cancel", "downloadable", "cancelled", APPLICANT, UNPAID, NULL, NULL, NULL, NULL,
     after_refunded},
    {"cancel", "downloadable", "refunding", APPLICANT, PAID, NULL, NULL, NULL, on_cancel_paid},
    {"refund", "refunding", "refunded", CS_ACTOR_CASHIER, CS_TRANSITION_REFUND, NULL, NULL, NULL,
     NULL, after_refunded},
};

/* ReviewNote: the review's note, or why a download failed or was cut short. */
static const CsAttrSpec attrs[] = {
    {"review_note", "ReviewNote"},
    {"key_work_error", "ReviewNote"},
    {"recovery_note", "ReviewNote"},
    {NULL},
};

static const CsPlugin plugin = {
    .kind = "change",
    .summary = "Information change: a new certificate and e-seal for a changed name (变更)",
    .title_zh = "变更",
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
    .may_change_identity = TRUE,
    .contact_phone = change_contact_phone,
    .prepare_order = change_prepare_order,
};

G_MODULE_EXPORT const CsPlugin *certseal_plugin_get(void);

const CsPlugin *
certseal_plugin_get(void)
{
	return &plugin;
}
