/*
 * unlock.c — the unlock flow (解锁 / 找回密码, the manual's section 3), kind "unlock".
 *
 * For a forgotten PIN or a key locked by too many wrong PINs. The one key inserted (no
 * login: the certificate on it names the subject) must be one this platform made, whose
 * SO PIN the vault holds:
 *
 *   draft (Update) → Confirm → (a price: unpaid → pay) → Submit
 *     → first unlock of the key: verifying — an identity check (idv) by the chosen method;
 *       a pass sends the authorization code (授权码) by the verified channel → authorized;
 *       a fail goes back to draft with the gateway's reason (ReviewNote); three failed
 *       checks of one key in a day → RateLimited
 *     → a later unlock of the same key ("第一次做解锁业务" implies the shorter path): no
 *       identity check; the code goes at once by the channel verified the first time
 *   → Unlock(key, code, new_pin): the user PIN reset with the SO PIN (unlocking, on driver
 *     threads) → completed; a reset that fails goes back to authorized, code unused.
 *
 * Secrets never pass through this plugin: the code and the new PIN travel as the step's
 * secrets to the services (cs_step_check_auth_code, cs_step_check_new_pin,
 * cs_step_start_pin_reset), which generate, check and wipe them.
 */
#include <gmodule.h>
#include <string.h>

#include "certseal/plugin.h"

CS_PLUGIN_DEFINE_ABI();

/* The order attribute naming the key ("<driver>_<serial>"), recorded at Confirm. */
#define KEY_ATTR "unlock_key"
/* At most this many failed identity checks of one key in a day. */
#define MAX_FAILED_CHECKS_PER_DAY 3

static const char *const states[] = {
    "draft",	 "confirmed", "unpaid",	   "verifying", "authorized", "unlocking",
    "completed", "cancelled", "refunding", "refunded",	NULL,
};
static const char *const terminal_states[] = {"completed", "cancelled", "refunded", NULL};
/* A reset cut short by a crash: the key's PIN is either still the old one or the new one
 * the applicant chose; the code is still open, so Unlock can be called again. */
static const CsRecovery recoveries[] = {{"unlocking", "authorized"}, {NULL}};
static const char *const editable_states[] = {"draft", NULL};

static const char *const org_auth_methods[] = {"legal_rep_phone", "corporate_account",
					       "legal_rep_bank_card", NULL};
static const char *const org_auth_zh[] = {"法定代表人手机实名认证", "企业对公账户认证",
					  "法定代表人银行卡信息认证", NULL};
static const char *const org_auth_en[] = {
    "the code by SMS to the legal representative",
    "the code in the memo of a 0.01 CNY transfer to the corporate account",
    "the code by SMS to the legal representative, after a check of the bank card", NULL};
static const char *const person_auth_methods[] = {"phone", "bank_card", "bank_account_transfer",
						  NULL};
static const char *const person_auth_zh[] = {"手机实名认证", "银行卡信息认证", "银行账户打款认证",
					     NULL};
static const char *const person_auth_en[] = {
    "the code by SMS to your phone", "the code by SMS to your phone, after a check of the card",
    "the code in the memo of a 0.01 CNY transfer to your account", NULL};

#define ORG CS_SUBJECT_ORG
#define PERSON CS_SUBJECT_PERSON
#define ANY CS_SUBJECT_ANY

static const CsFieldSpec fields[] = {
    /* name, type, subject types, required, identity, choices, max length, labels, choice
     * labels */
    {"vendor", CS_FIELD_VENDOR, ANY, TRUE, FALSE, NULL, 32, "选择 ukey 所属厂商",
     "the key's vendor"},
    /* The Key's object path; when left out, the one key inserted. */
    {"key", CS_FIELD_TEXT, ANY, FALSE, FALSE, NULL, 255, "UK", "the key inserted", NULL, NULL,
     TRUE},
    {"auth_method", CS_FIELD_ENUM, ORG, TRUE, FALSE, org_auth_methods, 0, "验证身份方式",
     "how your identity is checked and the code delivered", org_auth_zh, org_auth_en},
    {"auth_method", CS_FIELD_ENUM, PERSON, TRUE, FALSE, person_auth_methods, 0, "验证身份方式",
     "how your identity is checked and the code delivered", person_auth_zh, person_auth_en},
    {"bank_name", CS_FIELD_TEXT, ANY, FALSE, FALSE, NULL, 100, "开户银行",
     "the bank of the account (transfer methods)"},
    {"bank_account", CS_FIELD_BANK_ACCOUNT, ANY, FALSE, FALSE, NULL, 40, "银行账号",
     "the account the 0.01 CNY transfer goes to"},
    {"bank_card", CS_FIELD_BANK_CARD, ANY, FALSE, FALSE, NULL, 19, "银行卡号",
     "the bank card's number (bank card methods)"},
    /* 单位 */
    {"org_name", CS_FIELD_NAME, ORG, TRUE, TRUE, NULL, 100, "单位名称", "the registered name"},
    {"uscc", CS_FIELD_USCC, ORG, TRUE, TRUE, NULL, 18, "统一社会信用代码",
     "18 characters, digits and capitals"},
    {"legal_rep_name", CS_FIELD_NAME, ORG, FALSE, TRUE, NULL, 50, "法定代表人姓名",
     "the legal representative's name"},
    {"legal_rep_id", CS_FIELD_RESIDENT_ID, ORG, FALSE, TRUE, NULL, 18, "法定代表人身份证号",
     "18-character resident ID"},
    {"legal_rep_phone", CS_FIELD_PHONE, ORG, FALSE, FALSE, NULL, 20, "法定代表人手机",
     "11-digit mobile number; the code goes there"},
    /* 个人 */
    {"name", CS_FIELD_NAME, PERSON, TRUE, TRUE, NULL, 50, "姓名", "your name"},
    {"id_number", CS_FIELD_RESIDENT_ID, PERSON, TRUE, TRUE, NULL, 18, "身份证号",
     "18-character resident ID"},
    {"phone", CS_FIELD_PHONE, PERSON, FALSE, FALSE, NULL, 20, "手机",
     "11-digit mobile number; the code goes there"},
};

#define APPLICANT CS_ACTOR_DESKTOP
#define SETTLED CS_TRANSITION_IF_SETTLED
#define UNSETTLED CS_TRANSITION_UNLESS_SETTLED
#define PAID CS_TRANSITION_IF_PAID
#define UNPAID CS_TRANSITION_UNLESS_PAID

static gboolean
is_org(CsOrder *order)
{
	return cs_order_get_subject_type(order) == CS_SUBJECT_ORG;
}

static gboolean
by_transfer(const char *method)
{
	return g_strcmp0(method, "corporate_account") == 0 ||
	       g_strcmp0(method, "bank_account_transfer") == 0;
}

/* The phone the code goes to by SMS: the legal representative's, or the person's own. */
static const char *
code_phone(CsOrder *order)
{
	return cs_order_get_field(order, is_org(order) ? "legal_rep_phone" : "phone");
}

static const char *
unlock_contact_phone(CsOrder *order)
{
	return code_phone(order);
}

/* What each identity method checks, so it must be there before the order is confirmed. */
static gboolean
require(CsOrder *order, const char *field, const char *method, GError **error)
{
	if (cs_order_get_field(order, field) != NULL)
		return TRUE;
	g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "%s: required when auth_method is %s",
		    field, method);
	return FALSE;
}

static gboolean
check_method_details(CsOrder *order, GError **error)
{
	const char *method = cs_order_get_field(order, "auth_method");
	static const char *const needs[][5] = {
	    {"legal_rep_phone", "legal_rep_name", "legal_rep_id", "legal_rep_phone", NULL},
	    {"legal_rep_bank_card", "legal_rep_name", "legal_rep_id", "legal_rep_phone",
	     "bank_card"},
	    {"corporate_account", "bank_name", "bank_account", NULL, NULL},
	    {"phone", "phone", NULL, NULL, NULL},
	    {"bank_card", "bank_card", "phone", NULL, NULL},
	    {"bank_account_transfer", "bank_name", "bank_account", NULL, NULL},
	};

	for (guint i = 0; i < G_N_ELEMENTS(needs); i++) {
		if (g_strcmp0(needs[i][0], method) != 0)
			continue;
		for (guint j = 1; j < 5 && needs[i][j] != NULL; j++) {
			if (!require(order, needs[i][j], method, error))
				return FALSE;
		}
	}
	return TRUE;
}

static gboolean
check_confirm(CsStep *step, GError **error)
{
	return check_method_details(cs_step_get_order(step), error) &&
	       cs_step_check_key_made_here(step, error);
}

/* The record a passed identity check leaves about a key: the channel it verified. */
static char *
verified_record_name(CsOrder *order)
{
	return g_strdup_printf("verified.%s", cs_order_get_attr(order, KEY_ATTR));
}

static char *
mask_tail(const char *s, guint keep)
{
	gsize len = s != NULL ? strlen(s) : 0;
	return g_strdup_printf("****%s", len > keep ? s + len - keep : (s != NULL ? s : ""));
}

/* Confirmed: the key is named for good, and an earlier unlock's verified channel (if any)
 * is what Submit will use. */
static gboolean
on_confirm(CsStep *step, GError **error)
{
	CsOrder *order = cs_step_get_order(step);
	g_autofree char *name = NULL;
	g_autofree char *channel = NULL;
	g_autoptr(GError) local = NULL;

	if (!cs_step_record_key(step, KEY_ATTR, error))
		return FALSE;
	name = verified_record_name(order);
	channel = cs_step_find_record(step, name, &local);
	if (local != NULL) {
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	return cs_step_set_attr(step, "verified_channel", channel, error);
}

static gboolean
verified_before(CsOrder *order)
{
	return cs_order_get_attr(order, "verified_channel") != NULL;
}

static gboolean
not_verified_before(CsOrder *order)
{
	return !verified_before(order);
}

/* Three failed identity checks of this key in the last day: no fourth. */
static gboolean
check_rate(CsStep *step, GError **error)
{
	CsOrder *order = cs_step_get_order(step);
	guint failed = 0;

	if (!cs_step_check_key_made_here(step, error) ||
	    !cs_step_count_steps(step, "fail", KEY_ATTR, cs_order_get_attr(order, KEY_ATTR),
				 g_get_real_time() - G_TIME_SPAN_DAY, &failed, error))
		return FALSE;
	if (failed >= MAX_FAILED_CHECKS_PER_DAY) {
		g_set_error(error, CS_ERROR, CS_ERROR_RATE_LIMITED,
			    "key: %u identity checks of this key failed in the last 24 hours; "
			    "try again tomorrow",
			    failed);
		return FALSE;
	}
	return TRUE;
}

/* The channel the identity check verified: "sms:<phone>" or
 * "transfer:<bank name>\t<account>". */
static char *
channel_of(CsOrder *order)
{
	const char *method = cs_order_get_field(order, "auth_method");

	if (by_transfer(method))
		return g_strdup_printf("transfer:%s\t%s", cs_order_get_field(order, "bank_name"),
				       cs_order_get_field(order, "bank_account"));
	return g_strdup_printf("sms:%s", code_phone(order));
}

/* Send the authorization code by @channel and show where it went (masked). */
static gboolean
send_code(CsStep *step, const char *channel, GError **error)
{
	CsOrder *order = cs_step_get_order(step);
	g_autofree char *masked = NULL;
	g_autofree char *delivery = NULL;

	if (g_str_has_prefix(channel, "sms:")) {
		masked = cs_mask_phone(channel + 4);
		delivery = g_strdup_printf("sms:%s", masked);
		return cs_step_send_auth_code(step, KEY_ATTR, channel + 4, NULL, NULL, NULL,
					      error) &&
		       cs_step_set_attr(step, "code_delivery", delivery, error);
	}
	if (g_str_has_prefix(channel, "transfer:")) {
		g_auto(GStrv) parts = g_strsplit(channel + 9, "\t", 2);
		if (g_strv_length(parts) == 2) {
			masked = mask_tail(parts[1], 4);
			delivery = g_strdup_printf("transfer:%s", masked);
			return cs_step_send_auth_code(step, KEY_ATTR, NULL,
						      cs_order_get_subject_name(order), parts[0],
						      parts[1], error) &&
			       cs_step_set_attr(step, "code_delivery", delivery, error);
		}
	}
	g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "order %s: no channel for the code",
		    cs_order_get_id(order));
	return FALSE;
}

/* A later unlock of the key: the code goes the way the first one's check verified. */
static gboolean
on_authorize_again(CsStep *step, GError **error)
{
	return cs_step_set_attr(step, "review_note", NULL, error) &&
	       send_code(step, cs_order_get_attr(cs_step_get_order(step), "verified_channel"),
			 error);
}

static gboolean
on_verify(CsStep *step, GError **error)
{
	return cs_step_set_attr(step, "review_note", NULL, error);
}

/* The identity check passed: the channel is verified for this key from now on, and the
 * code goes by it. */
static gboolean
on_pass(CsStep *step, GError **error)
{
	CsOrder *order = cs_step_get_order(step);
	g_autofree char *channel = channel_of(order);
	g_autofree char *name = verified_record_name(order);

	return cs_step_set_attr(step, name, channel, error) &&
	       cs_step_set_attr(step, "verified_channel", channel, error) &&
	       send_code(step, channel, error);
}

static gboolean
on_fail(CsStep *step, GError **error)
{
	const char *reason = cs_step_get_param(step, "reason");
	g_autofree char *note = g_strdup_printf("identity check failed: %s",
						reason != NULL ? reason : "no reason given");

	return cs_step_set_attr(step, "review_note", note, error);
}

/* Unlock: the new PIN follows the vendor's policy and the code is this order's and this
 * key's; the code is used up only once the key's PIN is reset. */
static gboolean
check_unlock(CsStep *step, GError **error)
{
	return cs_step_check_new_pin(step, error) && cs_step_check_auth_code(step, KEY_ATTR, error);
}

static gboolean
on_unlock(CsStep *step, GError **error)
{
	return cs_step_set_attr(step, "key_work_error", NULL, error);
}

static const CsPinReset pin_reset = {
    .done_action = "unlocked",
    .failed_action = "unlock_failed",
};

static void
after_unlock(CsStep *step)
{
	cs_step_start_pin_reset(step, KEY_ATTR, &pin_reset);
}

static gboolean
on_unlocked(CsStep *step, GError **error)
{
	return cs_step_use_auth_code(step, error);
}

static gboolean
on_cancel_paid(CsStep *step, GError **error)
{
	return cs_step_queue_refund(step, error);
}

/* A paid unlock's e-invoice. */
static gboolean
on_pay(CsStep *step, GError **error)
{
	return cs_step_issue_invoice(step, NULL, error);
}

static gboolean
on_pay_again(CsStep *step, GError **error)
{
	return on_pay(step, error) && on_authorize_again(step, error);
}

static const CsResultSpec idv_results[] = {{"reason", FALSE, TRUE}, {NULL}};

static const CsTransition transitions[] = {
    /* action, from, to, actors, flags, service, results, check, run, after, guard */
    {"confirm", "draft", "confirmed", APPLICANT, CS_TRANSITION_NEEDS_FIELDS, NULL, NULL,
     check_confirm, on_confirm},
    /* Priced: pay first. */
    {"submit", "confirmed", "unpaid", APPLICANT, UNSETTLED, NULL, NULL, check_rate},
    /* A later unlock of the key: the code at once, by the channel verified before. */
    {"submit", "confirmed", "authorized", APPLICANT, SETTLED, NULL, NULL, check_rate,
     on_authorize_again, NULL, verified_before},
    {"submit", "confirmed", "verifying", APPLICANT, SETTLED, NULL, NULL, check_rate, on_verify,
     NULL, not_verified_before},
    {"pay", "unpaid", "authorized", CS_ACTOR_GATEWAY, CS_TRANSITION_PAYMENT, NULL, NULL, NULL,
     on_pay_again, NULL, verified_before},
    {"pay", "unpaid", "verifying", CS_ACTOR_GATEWAY, CS_TRANSITION_PAYMENT, NULL, NULL, NULL,
     on_pay, NULL, not_verified_before},
    /* The identity check (idv): a gateway's pass or fail. */
    {"pass", "verifying", "authorized", CS_ACTOR_GATEWAY, 0, "idv", idv_results, NULL, on_pass},
    {"fail", "verifying", "draft", CS_ACTOR_GATEWAY, 0, "idv", idv_results, NULL, on_fail},
    {"unlock", "authorized", "unlocking", APPLICANT, 0, NULL, NULL, check_unlock, on_unlock,
     after_unlock},
    {"unlocked", "unlocking", "completed", CS_ACTOR_SYSTEM, 0, NULL, NULL, NULL, on_unlocked},
    {"unlock_failed", "unlocking", "authorized", CS_ACTOR_SYSTEM},
    {"cancel", "draft", "cancelled", APPLICANT, UNPAID},
    {"cancel", "draft", "refunding", APPLICANT, PAID, NULL, NULL, NULL, on_cancel_paid},
    {"cancel", "confirmed", "cancelled", APPLICANT, UNPAID},
    {"cancel", "confirmed", "refunding", APPLICANT, PAID, NULL, NULL, NULL, on_cancel_paid},
    {"cancel", "unpaid", "cancelled", APPLICANT, UNPAID},
    {"cancel", "unpaid", "refunding", APPLICANT, PAID, NULL, NULL, NULL, on_cancel_paid},
    {"cancel", "verifying", "cancelled", APPLICANT, UNPAID},
    {"cancel", "verifying", "refunding", APPLICANT, PAID, NULL, NULL, NULL, on_cancel_paid},
    {"cancel", "authorized", "cancelled", APPLICANT, UNPAID},
    {"cancel", "authorized", "refunding", APPLICANT, PAID, NULL, NULL, NULL, on_cancel_paid},
    {"refund", "refunding", "refunded", CS_ACTOR_CASHIER, CS_TRANSITION_REFUND},
};

/* ReviewNote: why the identity check failed, or why a reset failed. PasswordDelivery: where
 * the authorization code went (masked). */
static const CsAttrSpec attrs[] = {
    {"review_note", "ReviewNote"},
    {"key_work_error", "ReviewNote"},
    {"code_delivery", "PasswordDelivery"},
    {NULL},
};

static const CsPlugin plugin = {
    .kind = "unlock",
    .summary = "Unlock a UKey: identity check, authorization code, PIN reset (解锁)",
    .title_zh = "解锁",
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
    .contact_phone = unlock_contact_phone,
};

G_MODULE_EXPORT const CsPlugin *certseal_plugin_get(void);

const CsPlugin *
certseal_plugin_get(void)
{
	return &plugin;
}
