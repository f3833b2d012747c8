/*
 * new.c — the new-certificate flow (新办, DESIGN §1.1), kind "new".
 *
 * This release covers filling the application: draft (Update allowed: 返回修改) →
 * Confirm → confirmed, attaching the materials once confirmed (AttachMaterial), and
 * Cancel before payment → cancelled. The fields and their
 * validation are the manual's; identity fields of a known subject are kept read-only by
 * the engine's registry (they are marked `identity` here).
 *
 * How the certificate password will be delivered depends on the identity method
 * (认证方式); each method needs its own details before the application is confirmed, so
 * that check runs at Confirm, not while the form is still being filled in.
 */
#include <gmodule.h>

#include "certseal/plugin.h"

CS_PLUGIN_DEFINE_ABI();

static const char *const states[] = {"draft", "confirmed", "cancelled", NULL};
static const char *const editable_states[] = {"draft", NULL};

static const char *const org_auth_methods[] = {"legal_rep_phone", "corporate_account",
					       "legal_rep_bank_card", NULL};
static const char *const person_auth_methods[] = {"phone", "bank_card", "bank_account_transfer",
						  NULL};
static const char *const handler_auth_methods[] = {"handler_phone", "handler_bank_card", NULL};
static const char *const key_algorithms[] = {"rsa-2048", "ec-p256", "sm2", NULL};

#define ORG CS_SUBJECT_ORG
#define PERSON CS_SUBJECT_PERSON
#define ANY CS_SUBJECT_ANY

static const CsFieldSpec fields[] = {
    /* name, type, subject types, required, identity, choices, max length */
    {"vendor", CS_FIELD_VENDOR, ANY, TRUE, FALSE, NULL, 32},
    {"auth_method", CS_FIELD_ENUM, ORG, TRUE, FALSE, org_auth_methods, 0},
    {"auth_method", CS_FIELD_ENUM, PERSON, TRUE, FALSE, person_auth_methods, 0},
    {"email", CS_FIELD_EMAIL, ANY, TRUE, FALSE, NULL, 254},
    {"address", CS_FIELD_TEXT, ANY, TRUE, FALSE, NULL, 200},
    {"postcode", CS_FIELD_POSTCODE, ANY, TRUE, FALSE, NULL, 6},
    {"key_algorithm", CS_FIELD_ENUM, ANY, FALSE, FALSE, key_algorithms, 0},
    {"bank_name", CS_FIELD_TEXT, ANY, FALSE, FALSE, NULL, 100},
    {"bank_account", CS_FIELD_BANK_ACCOUNT, ANY, FALSE, FALSE, NULL, 40},
    {"bank_card", CS_FIELD_BANK_CARD, ANY, FALSE, FALSE, NULL, 19},
    /* 单位 */
    {"org_name", CS_FIELD_NAME, ORG, TRUE, TRUE, NULL, 100},
    {"uscc", CS_FIELD_USCC, ORG, TRUE, TRUE, NULL, 18},
    {"legal_rep_name", CS_FIELD_NAME, ORG, TRUE, TRUE, NULL, 50},
    {"legal_rep_id", CS_FIELD_RESIDENT_ID, ORG, TRUE, TRUE, NULL, 18},
    {"legal_rep_phone", CS_FIELD_PHONE, ORG, TRUE, FALSE, NULL, 20},
    {"handler_name", CS_FIELD_NAME, ORG, TRUE, FALSE, NULL, 50},
    {"handler_id", CS_FIELD_RESIDENT_ID, ORG, TRUE, FALSE, NULL, 18},
    {"handler_phone", CS_FIELD_PHONE, ORG, TRUE, FALSE, NULL, 20},
    {"handler_auth_method", CS_FIELD_ENUM, ORG, TRUE, FALSE, handler_auth_methods, 0},
    {"handler_bank_card", CS_FIELD_BANK_CARD, ORG, FALSE, FALSE, NULL, 19},
    /* 个人 */
    {"name", CS_FIELD_NAME, PERSON, TRUE, TRUE, NULL, 50},
    {"id_number", CS_FIELD_RESIDENT_ID, PERSON, TRUE, TRUE, NULL, 18},
    {"phone", CS_FIELD_PHONE, PERSON, TRUE, FALSE, NULL, 20},
};

/* DESIGN §1.1; seal_image is optional (the seal form's scan is used otherwise). */
static const CsMaterialSpec materials[] = {
    {"business_license", ORG, TRUE}, {"handler_id_front", ORG, TRUE},
    {"handler_id_back", ORG, TRUE},  {"id_front", PERSON, TRUE},
    {"id_back", PERSON, TRUE},	     {"seal_form", ANY, TRUE},
    {"seal_image", ANY, FALSE},
};
/* Where AttachMaterial is allowed (rejected joins once review exists). */
static const char *const material_states[] = {"confirmed", NULL};

static const CsTransition transitions[] = {
    {"confirm", "draft", "confirmed", CS_ACTOR_DESKTOP, CS_TRANSITION_NEEDS_FIELDS},
    {"cancel", "draft", "cancelled", CS_ACTOR_DESKTOP, 0},
    {"cancel", "confirmed", "cancelled", CS_ACTOR_DESKTOP, 0},
};

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
check_auth_details(CsOrder *order, GError **error)
{
	const char *method = cs_order_get_field(order, "auth_method");
	const char *handler = cs_order_get_field(order, "handler_auth_method");

	if (g_strcmp0(method, "corporate_account") == 0 ||
	    g_strcmp0(method, "bank_account_transfer") == 0) {
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
new_before_transition(CsEngine *engine,
		      CsOrder *order,
		      const CsTransition *transition,
		      const CsRequest *request,
		      GError **error)
{
	if (g_strcmp0(transition->action, "confirm") == 0)
		return check_auth_details(order, error);
	return TRUE;
}

static const CsPlugin plugin = {
    .kind = "new",
    .summary = "New certificate and e-seal on a UKey (新办)",
    .initial_state = "draft",
    .states = states,
    .editable_states = editable_states,
    .transitions = transitions,
    .n_transitions = G_N_ELEMENTS(transitions),
    .fields = fields,
    .n_fields = G_N_ELEMENTS(fields),
    .before_transition = new_before_transition,
    .materials = materials,
    .n_materials = G_N_ELEMENTS(materials),
    .material_states = material_states,
};

G_MODULE_EXPORT const CsPlugin *certseal_plugin_get(void);

const CsPlugin *
certseal_plugin_get(void)
{
	return &plugin;
}
