/*
 * cs-notices.c — secrets and notices: the certificate password, SMS notices and the
 * password's 0.01 CNY transfer.
 *
 * Invariants:
 * - These services write only inside the step's transaction: a step and its effects (a
 *   notice queued, a password sealed) commit together.
 * - Secrets are generated here, sealed at once, and leave only as a sealed copy that a
 *   gateway task refers to by id; the plaintext is wiped from memory after use.
 */
#define G_LOG_DOMAIN "certseald"

#include <json-glib/json-glib.h>
#include <string.h>

#include "cs-crypto.h"
#include "cs-notices.h"
#include "cs-pin-policy.h"
#include "cs-tasks.h"

/* The plaintext of a sealed secret the order refers to by attribute @name. */
char *
cs_engine_open_order_secret(CsEngine *engine, CsOrder *order, const char *name, GError **error)
{
	gint64 ref = cs_order_get_attr_int(order, name);
	g_autoptr(GBytes) bytes = NULL;
	gsize len = 0;
	const char *data;

	if (ref <= 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_NOT_FOUND, "order %s has no %s",
			    cs_order_get_id(order), name);
		return NULL;
	}
	bytes = cs_ledger_open_secret(cs_engine_get_ledger(engine), ref, error);
	if (bytes == NULL)
		return NULL;
	data = g_bytes_get_data(bytes, &len);
	return g_strndup(data, len);
}

static JsonObject *
params_to_json(GVariant *params)
{
	JsonObject *o = json_object_new();
	GVariantIter iter;
	const char *name;
	GVariant *value;

	if (params == NULL)
		return o;
	g_variant_iter_init(&iter, params);
	while (g_variant_iter_next(&iter, "{&sv}", &name, &value)) {
		if (g_variant_is_of_type(value, G_VARIANT_TYPE_STRING))
			json_object_set_string_member(o, name, g_variant_get_string(value, NULL));
		g_variant_unref(value);
	}
	return o;
}

gboolean
cs_step_send_notice(CsStep *step,
		    const char *phone,
		    const char *template_name,
		    GVariant *params,
		    gboolean with_password,
		    GError **error)
{
	CsEngine *engine = cs_step_get_engine(step);
	CsOrder *order = cs_step_get_order(step);
	CsTasks *tasks = cs_engine_get_tasks(engine);
	g_autoptr(GVariant) owned = params != NULL ? g_variant_ref_sink(params) : NULL;
	g_autoptr(JsonObject) json = NULL;
	char *secret = NULL;
	gboolean ok;

	if (!cs_step_check_transaction(step, "cs_step_send_notice", error) ||
	    !cs_engine_require(tasks, "the office", error))
		return FALSE;
	if (phone == NULL) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "phone: order %s has no phone for the %s notice",
			    cs_order_get_id(order), template_name);
		return FALSE;
	}
	json = params_to_json(owned);
	json_object_set_string_member(json, "order", cs_order_get_id(order));
	if (with_password) {
		secret = cs_engine_open_order_secret(engine, order, "user_pin_ref", error);
		if (secret == NULL)
			return FALSE;
	}
	ok = cs_tasks_send_sms_in_txn(tasks, cs_order_get_id(order), phone, template_name, json,
				      secret, FALSE, error);
	cs_secret_free(secret);
	return ok;
}

gboolean
cs_step_issue_password(CsStep *step, GError **error)
{
	CsEngine *engine = cs_step_get_engine(step);
	CsOrder *order = cs_step_get_order(step);
	const CsVendor *vendor =
	    cs_config_find_vendor(cs_engine_get_config(engine), cs_order_get_vendor(order));
	guint len = 8;
	CsPinPolicy policy;
	char *pin;
	gint64 ref = 0;
	gboolean ok;

	if (!cs_step_check_transaction(step, "cs_step_issue_password", error))
		return FALSE;
	if (cs_order_get_attr(order, "user_pin_ref") != NULL)
		return TRUE; /* once per order: making again uses the same password */
	if (vendor == NULL) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "vendor: unknown '%s'",
			    cs_order_get_vendor(order));
		return FALSE;
	}
	policy = cs_pin_policy_for_vendor(vendor);
	pin = cs_pin_policy_generate(&policy, len, error);
	if (pin == NULL)
		return FALSE;
	ok = cs_ledger_seal_secret(cs_engine_get_ledger(engine), "user_pin", cs_order_get_id(order),
				   (const guint8 *)pin, strlen(pin), g_get_real_time(), &ref,
				   error) &&
	     cs_engine_set_attr_int(engine, order, "user_pin_ref", ref, error);
	cs_secret_free(pin);
	return ok;
}

gboolean
cs_step_forget_password(CsStep *step, GError **error)
{
	CsEngine *engine = cs_step_get_engine(step);
	CsOrder *order = cs_step_get_order(step);
	gint64 ref = cs_order_get_attr_int(order, "user_pin_ref");

	if (!cs_step_check_transaction(step, "cs_step_forget_password", error))
		return FALSE;
	if (ref <= 0)
		return TRUE;
	return cs_ledger_wipe_secret(cs_engine_get_ledger(engine), ref, g_get_real_time(), error) &&
	       cs_engine_set_attr(engine, order, "user_pin_ref", NULL, error);
}

gboolean
cs_step_send_password_transfer(CsStep *step,
			       const char *account_name,
			       const char *bank_name,
			       const char *account,
			       GError **error)
{
	CsEngine *engine = cs_step_get_engine(step);
	CsOrder *order = cs_step_get_order(step);
	CsTasks *tasks = cs_engine_get_tasks(engine);
	g_autoptr(JsonObject) payload = json_object_new();
	char *pin = NULL;
	gint64 ref = 0;
	gboolean ok;

	if (!cs_step_check_transaction(step, "cs_step_send_password_transfer", error) ||
	    !cs_engine_require(tasks, "the office", error))
		return FALSE;
	if (account == NULL) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "bank_account: required for a transfer");
		return FALSE;
	}
	pin = cs_engine_open_order_secret(engine, order, "user_pin_ref", error);
	if (pin == NULL)
		return FALSE;
	json_object_set_string_member(payload, "kind", "micro_deposit");
	json_object_set_string_member(payload, "account_name",
				      account_name != NULL ? account_name : "");
	json_object_set_string_member(payload, "bank_name", bank_name != NULL ? bank_name : "");
	json_object_set_string_member(payload, "account", account);
	json_object_set_int_member(payload, "amount_fen", 1);
	json_object_set_string_member(payload, "template", "password_transfer");
	ok =
	    cs_ledger_seal_secret(cs_engine_get_ledger(engine), "bank", cs_order_get_id(order),
				  (const guint8 *)pin, strlen(pin), g_get_real_time(), &ref, error);
	cs_secret_free(pin);
	if (!ok)
		return FALSE;
	json_object_set_int_member(payload, "secret_ref", ref);
	return cs_tasks_enqueue_in_txn(tasks, "bank", cs_order_get_id(order), NULL, payload, ref,
				       NULL, error);
}
