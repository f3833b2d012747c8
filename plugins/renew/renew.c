/*
 * renew.c — the renewal flow (证书更新, the manual's section 2: 2.1 单位更新, 2.2 个人更新),
 * kind "renew", docs/architecture.md §1.2.
 *
 * The user is at home with the key in the slot — only that one, of any vendor (电脑只插一枚
 * 待更新的 UK) — and logged in on it with the certificate password. CreateOrder takes the
 * key, refuses what cannot be renewed (no key, several keys, not logged in, a certificate
 * another CA issued or a revoked one, outside the window: fewer than 90 days left or expired
 * at most 365 days) and pre-fills the order from the certificate and the subject registry;
 * the user fills what the manual marks * (contact, invoice e-mail, mailing address).
 * draft (Update = 返回修改) → Confirm (确认订单) → unpaid (the vendor's renew price; the
 * e-invoice on payment) or straight to downloadable when free → Download on the same key
 * (downloading, Progress) → completed. No materials, no review, no SMS code.
 *
 * Download is key work (CsKeyWork.follows_field): a new key pair beside the old one, the
 * certificate issued following the old one (its end carried on: 顺延), a new e-seal with the
 * old seal's picture, and only then the old certificate and key pair deleted and the old
 * certificate revoked as superseded. The PIN does not change. A pulled key, a driver
 * failure or a restart returns the order to downloadable with the reason in ReviewNote;
 * Download again finishes. The window is checked again at the first Download, before the
 * key is touched, and never in the middle of a resumed one.
 * Cancel before payment → cancelled; once paid → refunding → the cashier refunds.
 */
#include <gmodule.h>
#include <string.h>

#include "certseal/plugin.h"

CS_PLUGIN_DEFINE_ABI();

static const char *const states[] = {
    "draft",	 "unpaid",    "downloadable", "downloading", "completed",
    "cancelled", "refunding", "refunded",     NULL,
};
static const char *const terminal_states[] = {"completed", "cancelled", "refunded", NULL};
/* A download cut short by a crash is taken up again from downloadable. */
static const CsRecovery recoveries[] = {{"downloading", "downloadable"}, {NULL}};
static const char *const editable_states[] = {"draft", NULL};

#define ORG CS_SUBJECT_ORG
#define PERSON CS_SUBJECT_PERSON
#define ANY CS_SUBJECT_ANY

static const CsFieldSpec fields[] = {
    /* name, type, subject types, required, identity, choices, max length, labels, choice
     * labels, fixed */
    /* From the key (pre-filled again from the key on CreateOrder, never changed by Update). */
    {"key", CS_FIELD_TEXT, ANY, TRUE, FALSE, NULL, 128, "UK", "the key inserted", NULL, NULL, TRUE},
    {"vendor", CS_FIELD_VENDOR, ANY, TRUE, FALSE, NULL, 32, "厂商", "the key's vendor", NULL, NULL,
     TRUE},
    {"certificate_serial", CS_FIELD_TEXT, ANY, TRUE, FALSE, NULL, 64, "证书序列号",
     "the certificate being renewed", NULL, NULL, TRUE},
    /* What the manual marks *: the invoice e-mail, the mailing address, the contact. */
    {"email", CS_FIELD_EMAIL, ANY, TRUE, FALSE, NULL, 254, "电子邮箱",
     "the e-invoice is mailed there"},
    {"address", CS_FIELD_TEXT, ANY, TRUE, FALSE, NULL, 200, "通讯地址", "mailing address"},
    {"postcode", CS_FIELD_POSTCODE, ANY, FALSE, FALSE, NULL, 6, "邮政编码", "6 digits"},
    /* 单位: identity from the certificate and the registry. */
    {"org_name", CS_FIELD_NAME, ORG, TRUE, TRUE, NULL, 100, "单位名称",
     "the registered name (also the invoice title)"},
    {"uscc", CS_FIELD_USCC, ORG, TRUE, TRUE, NULL, 18, "统一社会信用代码",
     "18 characters, digits and capitals"},
    {"legal_rep_name", CS_FIELD_NAME, ORG, FALSE, TRUE, NULL, 50, "法定代表人姓名",
     "the legal representative's name"},
    {"legal_rep_id", CS_FIELD_RESIDENT_ID, ORG, FALSE, TRUE, NULL, 18, "法定代表人身份证号",
     "18-character resident ID"},
    {"handler_name", CS_FIELD_NAME, ORG, TRUE, FALSE, NULL, 50, "联系人", "the contact's name"},
    {"handler_phone", CS_FIELD_PHONE, ORG, TRUE, FALSE, NULL, 20, "联系电话",
     "11-digit mobile number"},
    /* 个人 */
    {"name", CS_FIELD_NAME, PERSON, TRUE, TRUE, NULL, 50, "姓名", "your name"},
    {"id_number", CS_FIELD_RESIDENT_ID, PERSON, TRUE, TRUE, NULL, 18, "身份证号",
     "18-character resident ID"},
    {"phone", CS_FIELD_PHONE, PERSON, TRUE, FALSE, NULL, 20, "手机号码", "11-digit mobile number"},
};

static gboolean
is_org(CsOrder *order)
{
	return cs_order_get_subject_type(order) == CS_SUBJECT_ORG;
}

static const char *
renew_contact_phone(CsOrder *order)
{
	return cs_order_get_field(order, is_org(order) ? "handler_phone" : "phone");
}

static gboolean
check_certificate(const CsKeyCertificate *key, gint64 now, GError **error)
{
	return cs_key_certificate_check_ours(key, "renewed", error) &&
	       cs_validity_renewal_eligible(key->not_after, now, error);
}

/* CreateOrder: the key inserted alone, logged in, with a certificate that may be renewed;
 * the order pre-filled from it. */
static gboolean
renew_prepare_order(CsCreate *create, GError **error)
{
	g_auto(CsKeyCertificate) key = {0};
	CsSubjectType type = cs_create_get_subject_type(create);
	const char *asked = cs_create_get_field(create, "key");
	const char *vendor = cs_create_get_field(create, "vendor");

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
	cs_create_set_field(create, "key", key.key);
	cs_create_set_field(create, "vendor", key.vendor);
	cs_create_set_field(create, "certificate_serial", key.certificate_serial);
	cs_create_set_field(create, cs_subject_number_field(type), key.id_number);
	if (key.subject_name != NULL)
		cs_create_set_field(create, cs_subject_name_field(type), key.subject_name);
	return cs_create_prefill_from_registry(
	    create, key.id_number, type == CS_SUBJECT_ORG ? "handler_phone" : "phone", error);
}

/* Download: on the key this order renews, inserted alone and logged in. The first time,
 * before the key is touched, the certificate is checked again (a window can close while an
 * order waits); a resumed download is not refused half-way. */
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
			    "key: insert key %s, the one this order renews (%s is inserted)",
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
	if (cs_order_get_attr(order, "eligible_at") != NULL)
		return TRUE;
	if (g_strcmp0(key.certificate_serial, cs_order_get_field(order, "certificate_serial")) !=
	    0) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "key: %s holds certificate %s, not %s which this order renews",
			    key.serial, key.certificate_serial ? key.certificate_serial : "(none)",
			    cs_order_get_field(order, "certificate_serial"));
		return FALSE;
	}
	return check_certificate(&key, cs_clock_now(), error);
}

static const CsKeyWork renewal = {
    .done_action = "downloaded",
    .failed_action = "download_failed",
    .follows_field = "certificate_serial",
};

/* The window was checked now: the certificate is issued as of this instant, however long
 * the download takes to finish. */
static gboolean
on_download(CsStep *step, GError **error)
{
	CsOrder *order = cs_step_get_order(step);

	if (cs_order_get_attr(order, "eligible_at") == NULL) {
		g_autofree char *now = g_strdup_printf("%" G_GINT64_FORMAT, cs_clock_now());
		if (!cs_step_set_attr(step, "eligible_at", now, error))
			return FALSE;
	}
	return cs_step_prepare_key_work(step, &renewal, cs_order_get_field(order, "key"), error);
}

static void
after_download(CsStep *step)
{
	cs_step_start_key_work(step, &renewal);
}

static gboolean
on_pay(CsStep *step, GError **error)
{
	return cs_step_issue_invoice(step, cs_order_get_field(cs_step_get_order(step), "email"),
				     error);
}

static gboolean
on_cancel_paid(CsStep *step, GError **error)
{
	return cs_step_queue_refund(step, error);
}

/* Refunded: the order ends without a new certificate; one an interrupted download issued
 * is revoked. */
static void
after_refunded(CsStep *step)
{
	cs_step_revoke_unused_certificates(step);
}

#define APPLICANT CS_ACTOR_DESKTOP
#define PAID CS_TRANSITION_IF_PAID
#define UNPAID CS_TRANSITION_UNLESS_PAID
#define FIELDS CS_TRANSITION_NEEDS_FIELDS

static const CsTransition transitions[] = {
    /* action, from, to, actors, flags, service, results, check, run, after */
    {"confirm", "draft", "downloadable", APPLICANT, FIELDS | CS_TRANSITION_IF_SETTLED},
    {"confirm", "draft", "unpaid", APPLICANT, FIELDS | CS_TRANSITION_UNLESS_SETTLED},
    {"pay", "unpaid", "downloadable", CS_ACTOR_GATEWAY, CS_TRANSITION_PAYMENT, NULL, NULL, NULL,
     on_pay},
    {"download", "downloadable", "downloading", APPLICANT, 0, NULL, NULL, check_download,
     on_download, after_download},
    {"downloaded", "downloading", "completed", CS_ACTOR_SYSTEM},
    {"download_failed", "downloading", "downloadable", CS_ACTOR_SYSTEM},
    {"cancel", "draft", "cancelled", APPLICANT},
    {"cancel", "unpaid", "cancelled", APPLICANT, UNPAID},
    {"cancel", "unpaid", "refunding", APPLICANT, PAID, NULL, NULL, NULL, on_cancel_paid},
    {"cancel", "downloadable", "refunding", APPLICANT, PAID, NULL, NULL, NULL, on_cancel_paid},
    {"cancel", "downloadable", "cancelled", APPLICANT, UNPAID, NULL, NULL, NULL, NULL,
     after_refunded},
    {"refund", "refunding", "refunded", CS_ACTOR_CASHIER, CS_TRANSITION_REFUND, NULL, NULL, NULL,
     NULL, after_refunded},
    {"refund", "downloadable", "refunded", CS_ACTOR_CASHIER, CS_TRANSITION_REFUND | PAID, NULL,
     NULL, NULL, NULL, after_refunded},
};

/* ReviewNote says why a download failed or was cut short by a restart, until the next
 * attempt. */
static const CsAttrSpec attrs[] = {
    {"key_work_error", "ReviewNote"},
    {"recovery_note", "ReviewNote"},
    {NULL},
};

static const CsPlugin plugin = {
    .kind = "renew",
    .summary = "Renewal of a certificate and e-seal on the applicant's UKey (更新)",
    .title_zh = "更新",
    .initial_state = "draft",
    .states = states,
    .terminal_states = terminal_states,
    .editable_states = editable_states,
    .recoveries = recoveries,
    .transitions = transitions,
    .n_transitions = G_N_ELEMENTS(transitions),
    .fields = fields,
    .n_fields = G_N_ELEMENTS(fields),
    .attrs = attrs,
    .contact_phone = renew_contact_phone,
    .prepare_order = renew_prepare_order,
};

G_MODULE_EXPORT const CsPlugin *certseal_plugin_get(void);

const CsPlugin *
certseal_plugin_get(void)
{
	return &plugin;
}
