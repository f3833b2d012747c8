/*
 * new-steps.h — the steps of the new-certificate flow (新办, docs/architecture.md §1.1),
 * shared by every flow that runs "exactly as new" (reissue, §1.4): its states, fields,
 * materials, transitions and hooks live once, in new-steps.c, compiled into each of those
 * plugins.
 *
 * A flow takes the tables by the macros below (rows of its own arrays, so it may add rows
 * of its own) and names, in NEW_STEPS_TRANSITIONS, the run hooks of the moments where it
 * differs from new: the SMS code verified (towards review, towards payment), the key's
 * making started and ended.
 */
#pragma once

#include "certseal/plugin.h"

G_BEGIN_DECLS

extern const char *const new_states[];
extern const char *const new_terminal_states[];
extern const CsRecovery new_recoveries[];
extern const char *const new_editable_states[];
extern const char *const new_material_states[];

/* The manual's 认证方式: how the certificate password is delivered. */
extern const char *const new_org_auth_methods[];
extern const char *const new_org_auth_zh[];
extern const char *const new_org_auth_en[];
extern const char *const new_person_auth_methods[];
extern const char *const new_person_auth_zh[];
extern const char *const new_person_auth_en[];
extern const char *const new_handler_auth_methods[];
extern const char *const new_handler_auth_zh[];
extern const char *const new_handler_auth_en[];
extern const char *const new_key_algorithms[];

extern const CsResultSpec new_review_results[];
extern const CsResultSpec new_make_results[];
extern const CsResultSpec new_ship_results[];
/* The making of new: a blank key provisioned, a certificate of the profile's period. */
extern const CsKeyWork new_making;

/* The handler (经办人): an organisation's handler, or the person. */
const char *new_contact_phone(CsOrder *order);
gboolean new_check_auth_details(CsStep *step, GError **error);
gboolean new_on_confirm(CsStep *step, GError **error);
gboolean new_on_review(CsStep *step, GError **error);
gboolean new_on_pay(CsStep *step, GError **error);
gboolean new_on_approve(CsStep *step, GError **error);
gboolean new_on_reject(CsStep *step, GError **error);
gboolean new_on_make(CsStep *step, GError **error);
void new_after_make(CsStep *step);
gboolean new_on_made(CsStep *step, GError **error);
gboolean new_on_ship(CsStep *step, GError **error);
gboolean new_on_cancel_paid(CsStep *step, GError **error);
gboolean new_on_refunded(CsStep *step, GError **error);
void new_after_refunded(CsStep *step);

#define ORG CS_SUBJECT_ORG
#define PERSON CS_SUBJECT_PERSON
#define ANY CS_SUBJECT_ANY
#define APPLICANT CS_ACTOR_DESKTOP
#define SUBMIT                                                                                     \
	(CS_TRANSITION_NEEDS_FIELDS | CS_TRANSITION_NEEDS_MATERIALS | CS_TRANSITION_SENDS_CODE)
#define PAID CS_TRANSITION_IF_PAID
#define UNPAID CS_TRANSITION_UNLESS_PAID

/* Rows of a CsFieldSpec array: name, type, subject types, required, identity, choices, max
 * length, labels. */
#define NEW_STEPS_FIELDS                                                                           \
	{"vendor",	    CS_FIELD_VENDOR, ANY, TRUE, FALSE, NULL, 32, "选择 ukey 所属厂商",     \
	 "the key's vendor"},                                                                      \
	    {"auth_method",                                                                        \
	     CS_FIELD_ENUM,                                                                        \
	     ORG,                                                                                  \
	     TRUE,                                                                                 \
	     FALSE,                                                                                \
	     new_org_auth_methods,                                                                 \
	     0,                                                                                    \
	     "认证方式",                                                                           \
	     "how the certificate password is delivered",                                          \
	     new_org_auth_zh,                                                                      \
	     new_org_auth_en},                                                                     \
	    {"auth_method",                                                                        \
	     CS_FIELD_ENUM,                                                                        \
	     PERSON,                                                                               \
	     TRUE,                                                                                 \
	     FALSE,                                                                                \
	     new_person_auth_methods,                                                              \
	     0,                                                                                    \
	     "认证方式",                                                                           \
	     "how the certificate password is delivered",                                          \
	     new_person_auth_zh,                                                                   \
	     new_person_auth_en},                                                                  \
	    {"bank_name", CS_FIELD_TEXT, ANY,                                                      \
	     FALSE,	  FALSE,	 NULL,                                                     \
	     100,	  "开户银行",	 "the bank of the account"},                               \
	    {"bank_account",                                                                       \
	     CS_FIELD_BANK_ACCOUNT,                                                                \
	     ANY,                                                                                  \
	     FALSE,                                                                                \
	     FALSE,                                                                                \
	     NULL,                                                                                 \
	     40,                                                                                   \
	     "银行账号",                                                                           \
	     "the account the 0.01 CNY transfer goes to"},                                         \
	    {"bank_card", CS_FIELD_BANK_CARD,	   ANY, FALSE, FALSE, NULL, 19,                    \
	     "银行卡号",  "the bank card's number"}, /* 单位 */                                  \
	    {"org_name", CS_FIELD_NAME, ORG,                                                       \
	     TRUE,	 TRUE,		NULL,                                                      \
	     100,	 "单位名称",	"the registered name (also the invoice title)"},           \
	    {"uscc",                                                                               \
	     CS_FIELD_USCC,                                                                        \
	     ORG,                                                                                  \
	     TRUE,                                                                                 \
	     TRUE,                                                                                 \
	     NULL,                                                                                 \
	     18,                                                                                   \
	     "统一社会信用代码",                                                                   \
	     "18 characters, digits and capitals"},                                                \
	    {"legal_rep_name",                                                                     \
	     CS_FIELD_NAME,                                                                        \
	     ORG,                                                                                  \
	     TRUE,                                                                                 \
	     TRUE,                                                                                 \
	     NULL,                                                                                 \
	     50,                                                                                   \
	     "法定代表人姓名",                                                                     \
	     "the legal representative's name"},                                                   \
	    {"legal_rep_id",	   CS_FIELD_RESIDENT_ID,      ORG, TRUE, TRUE, NULL, 18,           \
	     "法定代表人身份证号", "18-character resident ID"},                                    \
	    {"legal_rep_phone", CS_FIELD_PHONE,		 ORG, TRUE, FALSE, NULL, 20,               \
	     "法定代表人手机",	"11-digit mobile number"},                                         \
	    {"handler_name",                                                                       \
	     CS_FIELD_NAME,                                                                        \
	     ORG,                                                                                  \
	     TRUE,                                                                                 \
	     FALSE,                                                                                \
	     NULL,                                                                                 \
	     50,                                                                                   \
	     "经办人姓名",                                                                         \
	     "who handles this application"},                                                      \
	    {"handler_id",     CS_FIELD_RESIDENT_ID,	  ORG, TRUE, FALSE, NULL, 18,              \
	     "经办人身份证号", "18-character resident ID"},                                        \
	    {"handler_phone",                                                                      \
	     CS_FIELD_PHONE,                                                                       \
	     ORG,                                                                                  \
	     TRUE,                                                                                 \
	     FALSE,                                                                                \
	     NULL,                                                                                 \
	     20,                                                                                   \
	     "经办人手机",                                                                         \
	     "11-digit mobile number; the SMS codes and the review result go there"},              \
	    {"handler_auth_method",                                                                \
	     CS_FIELD_ENUM,                                                                        \
	     ORG,                                                                                  \
	     TRUE,                                                                                 \
	     FALSE,                                                                                \
	     new_handler_auth_methods,                                                             \
	     0,                                                                                    \
	     "经办人认证方式",                                                                     \
	     "how the handler is verified",                                                        \
	     new_handler_auth_zh,                                                                  \
	     new_handler_auth_en},                                                                 \
	    {"handler_bank_card", CS_FIELD_BANK_CARD,	    ORG, FALSE, FALSE, NULL, 19,           \
	     "经办人银行卡号",	  "the handler's bank card"}, /* 个人 */                         \
	    {"name", CS_FIELD_NAME, PERSON, TRUE, TRUE, NULL, 50, "姓名", "your name"},            \
	    {"id_number", CS_FIELD_RESIDENT_ID,	     PERSON, TRUE, TRUE, NULL, 18,                 \
	     "身份证号",  "18-character resident ID"},                                             \
	    {"phone",                                                                              \
	     CS_FIELD_PHONE,                                                                       \
	     PERSON,                                                                               \
	     TRUE,                                                                                 \
	     FALSE,                                                                                \
	     NULL,                                                                                 \
	     20,                                                                                   \
	     "手机",                                                                               \
	     "11-digit mobile number; the SMS codes and the review result go there"}, /* both: the \
											 invoice   \
											 and the   \
											 shipping  \
										       */          \
	    {"email", CS_FIELD_EMAIL, ANY,                                                         \
	     TRUE,    FALSE,	      NULL,                                                        \
	     254,     "电子邮箱",     "the e-invoice is mailed there"},                            \
	    {"address",                                                                            \
	     CS_FIELD_TEXT,                                                                        \
	     ANY,                                                                                  \
	     TRUE,                                                                                 \
	     FALSE,                                                                                \
	     NULL,                                                                                 \
	     200,                                                                                  \
	     "通讯地址",                                                                           \
	     "a mailing address that receives express mail (the key is shipped there)"},           \
	    {"postcode", CS_FIELD_POSTCODE, ANY, TRUE, FALSE, NULL, 6, "邮政编码", "6 digits"},    \
	    {"key_algorithm",                                                                      \
	     CS_FIELD_ENUM,                                                                        \
	     ANY,                                                                                  \
	     FALSE,                                                                                \
	     FALSE,                                                                                \
	     new_key_algorithms,                                                                   \
	     0,                                                                                    \
	     "密钥算法",                                                                           \
	     "rsa-2048, ec-p256 or sm2"},

/* Rows of a CsMaterialSpec array; seal_image is optional (the seal form's scan is used
 * otherwise). */
#define NEW_STEPS_MATERIALS                                                                        \
	{"business_license", ORG, TRUE, "营业执照",                                                \
	 "the business licence (scan or photo; PNG, JPEG or PDF)"},                                \
	    {"handler_id_front", ORG, TRUE, "经办人身份证头像面",                                  \
	     "the handler's ID card, photo side"},                                                 \
	    {"handler_id_back", ORG, TRUE, "经办人身份证国徽面",                                   \
	     "the handler's ID card, emblem side"},                                                \
	    {"id_front", PERSON, TRUE, "身份证头像面", "your ID card, photo side"},                \
	    {"id_back", PERSON, TRUE, "身份证国徽面", "your ID card, emblem side"},                \
	    {"seal_form", ANY, TRUE, "印章采样表",                                                 \
	     "the seal sample form, filled in, signed/stamped and scanned"},                       \
	    {"seal_image", ANY, FALSE, "印章图片",                                                 \
	     "the seal picture for the e-seal; the seal form's scan is used otherwise"},

/* Rows of a CsTransition array, with the flow's run hooks of the SMS code verified
 * (VERIFIED_REVIEW towards review when settled, VERIFIED_UNPAID towards payment; may be
 * NULL), of the making (ON_MAKE, AFTER_MAKE) and of the key made (ON_MADE). */
#define NEW_STEPS_TRANSITIONS(VERIFIED_REVIEW, VERIFIED_UNPAID, ON_MAKE, AFTER_MAKE, ON_MADE)      \
	{"confirm",                                                                                \
	 "draft",                                                                                  \
	 "confirmed",                                                                              \
	 APPLICANT,                                                                                \
	 CS_TRANSITION_NEEDS_FIELDS,                                                               \
	 NULL,                                                                                     \
	 NULL,                                                                                     \
	 new_check_auth_details,                                                                   \
	 new_on_confirm},                                                                          \
	    {"submit", "confirmed", "sms_pending", APPLICANT,                                      \
	     SUBMIT,   NULL,	    NULL,	   new_check_auth_details},                        \
	    {"submit", "rejected", "sms_pending",	  APPLICANT, SUBMIT,                       \
	     NULL,     NULL,	   new_check_auth_details}, /* Already paid (a resubmission) or    \
							       free: straight to review. */        \
	    {"verify_sms_code",                                                                    \
	     "sms_pending",                                                                        \
	     "in_review",                                                                          \
	     APPLICANT,                                                                            \
	     CS_TRANSITION_NEEDS_CODE | CS_TRANSITION_IF_SETTLED,                                  \
	     NULL,                                                                                 \
	     NULL,                                                                                 \
	     NULL,                                                                                 \
	     VERIFIED_REVIEW},                                                                     \
	    {"verify_sms_code",                                                                    \
	     "sms_pending",                                                                        \
	     "unpaid",                                                                             \
	     APPLICANT,                                                                            \
	     CS_TRANSITION_NEEDS_CODE | CS_TRANSITION_UNLESS_SETTLED,                              \
	     NULL,                                                                                 \
	     NULL,                                                                                 \
	     NULL,                                                                                 \
	     VERIFIED_UNPAID},                                                                     \
	    {"pay", "unpaid", "in_review", CS_ACTOR_GATEWAY, CS_TRANSITION_PAYMENT,                \
	     NULL,  NULL,     NULL,	   new_on_pay},                                            \
	    {"approve", "in_review",	    "approved", CS_ACTOR_REVIEWER, 0,                      \
	     "review",	new_review_results, NULL,	new_on_approve},                           \
	    {"reject", "in_review",	   "rejected", CS_ACTOR_REVIEWER, 0,                       \
	     "review", new_review_results, NULL,       new_on_reject},                             \
	    {"make", "approved",       "making", CS_ACTOR_MAKER, 0,                                \
	     "make", new_make_results, NULL,	 ON_MAKE,	 AFTER_MAKE},                      \
	    {"made", "making", "made", CS_ACTOR_SYSTEM, 0, NULL, NULL, NULL, ON_MADE},             \
	    {"make_failed", "making", "approved", CS_ACTOR_SYSTEM},                                \
	    {"ship", "made",	       "shipped", CS_ACTOR_SHIPPER, 0,                             \
	     "ship", new_ship_results, NULL,	  new_on_ship},                                    \
	    {"deliver", "shipped", "completed", CS_ACTOR_SHIPPER, 0, "deliver"},                   \
	    {"cancel", "draft", "cancelled", APPLICANT},                                           \
	    {"cancel", "confirmed", "cancelled", APPLICANT},                                       \
	    {"cancel", "sms_pending", "refunding", APPLICANT,	      PAID,                        \
	     NULL,     NULL,	      NULL,	   new_on_cancel_paid},                            \
	    {"cancel", "sms_pending", "cancelled", APPLICANT, UNPAID},                             \
	    {"cancel", "unpaid", "cancelled", APPLICANT, UNPAID}, /* Paid in part. */              \
	    {"cancel", "unpaid", "refunding", APPLICANT,	 PAID,                             \
	     NULL,     NULL,	 NULL,	      new_on_cancel_paid},                                 \
	    {"cancel", "rejected", "refunding", APPLICANT,	   PAID,                           \
	     NULL,     NULL,	   NULL,	new_on_cancel_paid},                               \
	    {"cancel", "rejected", "cancelled", APPLICANT, UNPAID},                                \
	    {"cancel", "in_review", "refunding", APPLICANT,	    PAID,                          \
	     NULL,     NULL,	    NULL,	 new_on_cancel_paid},                              \
	    {"cancel", "approved", "refunding", APPLICANT,	   PAID,                           \
	     NULL,     NULL,	   NULL,	new_on_cancel_paid},                               \
	    {"refund", "refunding", "refunded", CS_ACTOR_CASHIER, CS_TRANSITION_REFUND,            \
	     NULL,     NULL,	    NULL,	new_on_refunded,  new_after_refunded},             \
	    {"refund", "in_review", "refunded", CS_ACTOR_CASHIER, CS_TRANSITION_REFUND | PAID,     \
	     NULL,     NULL,	    NULL,	new_on_refunded,  new_after_refunded},             \
	    {"refund", "rejected", "refunded", CS_ACTOR_CASHIER, CS_TRANSITION_REFUND | PAID,      \
	     NULL,     NULL,	   NULL,       new_on_refunded,	 new_after_refunded},              \
	    {"refund", "approved", "refunded", CS_ACTOR_CASHIER, CS_TRANSITION_REFUND | PAID,      \
	     NULL,     NULL,	   NULL,       new_on_refunded,	 new_after_refunded},

/* ReviewNote also says why a making failed, until the next attempt. */
#define NEW_STEPS_ATTRS                                                                            \
	{"review_note", "ReviewNote"}, {"key_work_error", "ReviewNote"},                           \
	    {"tracking_number", "TrackingNumber"},                                                 \
	{                                                                                          \
		"password_delivery", "PasswordDelivery"                                            \
	}

G_END_DECLS
