/*
 * cs-authcodes.c — authorization codes (授权码, docs/architecture.md §1.3 and §6): the step
 * services cs_step_send_auth_code, cs_step_check_auth_code and cs_step_use_auth_code of
 * certseal/plugin.h.
 *
 * A code is 8 characters of "23456789ABCDEFGHJKLMNPQRSTUVWXYZ" (no 0 O 1 I: read aloud or
 * copied from a bank memo without doubt), bound to one order and one key: only the keyed
 * hash (HMAC with a vault-derived key) of "order:key:code" is kept, in the ledger's codes
 * table (purpose "auth") with its lifetime and its wrong tries. A code given for another
 * order or another key therefore never matches. The plaintext leaves once, sealed inside
 * the SMS or bank task that delivers it, and is wiped from memory here.
 */
#define G_LOG_DOMAIN "certseald"

#include <json-glib/json-glib.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <string.h>

#include "cs-engine.h"
#include "cs-keys.h"
#include "cs-tasks.h"
#include "cs-vault.h"

#define AUTH_CODE_LENGTH 8
#define AUTH_CODE_PURPOSE "auth"

static const char alphabet[] = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"; /* 32: no modulo bias */

static char *
code_hash(CsEngine *engine, CsOrder *order, const char *key_id, const char *code)
{
	g_autofree char *data = g_strdup_printf("%s:%s:%s", cs_order_get_id(order), key_id, code);
	return cs_vault_keyed_hash(cs_engine_get_vault(engine), "auth-code", data);
}

static gboolean
new_code(char out[AUTH_CODE_LENGTH + 1], GError **error)
{
	unsigned char b[AUTH_CODE_LENGTH];

	if (RAND_bytes(b, sizeof b) != 1) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INTERNAL,
				    "no random numbers for a code");
		return FALSE;
	}
	for (guint i = 0; i < AUTH_CODE_LENGTH; i++)
		out[i] = alphabet[b[i] % 32];
	out[AUTH_CODE_LENGTH] = '\0';
	OPENSSL_cleanse(b, sizeof b);
	return TRUE;
}

static const char *
key_of(CsOrder *order, const char *key_attr, GError **error)
{
	const char *key_id = cs_order_get_attr(order, key_attr);

	if (key_id == NULL)
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "order %s has no %s",
			    cs_order_get_id(order), key_attr);
	return key_id;
}

static gboolean
send_by_transfer(CsEngine *engine,
		 CsOrder *order,
		 const char *code,
		 const char *account_name,
		 const char *bank_name,
		 const char *account,
		 GError **error)
{
	g_autoptr(JsonObject) payload = json_object_new();
	gint64 ref = 0;

	if (account == NULL) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "bank_account: required for a transfer");
		return FALSE;
	}
	if (!cs_ledger_seal_secret(cs_engine_get_ledger(engine), "bank", cs_order_get_id(order),
				   (const guint8 *)code, strlen(code), g_get_real_time(), &ref,
				   error))
		return FALSE;
	json_object_set_string_member(payload, "kind", "micro_deposit");
	json_object_set_string_member(payload, "account_name",
				      account_name != NULL ? account_name : "");
	json_object_set_string_member(payload, "bank_name", bank_name != NULL ? bank_name : "");
	json_object_set_string_member(payload, "account", account);
	json_object_set_int_member(payload, "amount_fen", 1);
	json_object_set_string_member(payload, "template", "auth_code_transfer");
	json_object_set_int_member(payload, "secret_ref", ref);
	return cs_tasks_enqueue_in_txn(cs_engine_get_tasks(engine), "bank", cs_order_get_id(order),
				       NULL, payload, ref, NULL, error);
}

gboolean
cs_step_send_auth_code(CsStep *step,
		       const char *key_attr,
		       const char *phone,
		       const char *account_name,
		       const char *bank_name,
		       const char *account,
		       GError **error)
{
	CsEngine *engine = cs_step_get_engine(step);
	CsOrder *order = cs_step_get_order(step);
	CsConfig *config = cs_engine_get_config(engine);
	const char *key_id;
	g_autofree char *hash = NULL;
	char code[AUTH_CODE_LENGTH + 1];
	gint64 now = g_get_real_time();
	gboolean ok;

	if (!cs_step_check_transaction(step, "cs_step_send_auth_code", error) ||
	    !cs_engine_require(cs_engine_get_vault(engine), "the vault", error) ||
	    !cs_engine_require(cs_engine_get_tasks(engine), "the office", error))
		return FALSE;
	key_id = key_of(order, key_attr, error);
	if (key_id == NULL || !new_code(code, error))
		return FALSE;
	hash = code_hash(engine, order, key_id, code);
	ok = cs_ledger_insert_code(
	    cs_engine_get_ledger(engine), cs_order_get_id(order), AUTH_CODE_PURPOSE, hash, now,
	    now + (gint64)config->auth_code_lifetime_s * G_USEC_PER_SEC, error);
	if (ok && phone != NULL) {
		g_autoptr(JsonObject) params = json_object_new();
		json_object_set_string_member(params, "order", cs_order_get_id(order));
		/* Not subject to the SMS code limits: one code per identity check or Submit. */
		ok = cs_tasks_send_sms_in_txn(cs_engine_get_tasks(engine), cs_order_get_id(order),
					      phone, "auth_code", params, code, FALSE, error);
	} else if (ok) {
		ok = send_by_transfer(engine, order, code, account_name, bank_name, account, error);
	}
	OPENSSL_cleanse(code, sizeof code);
	return ok;
}

/* Count a wrong try (or the expiry) in a transaction of its own, so that refusing the step
 * keeps it, and say why the code was refused. */
static gboolean
refuse_code(
    CsLedger *ledger, const CsCodeRow *row, guint max_tries, gboolean expired, GError **error)
{
	gint64 tries = expired ? row->tries : row->tries + 1;
	const char *state = expired || tries >= max_tries ? "dead" : "open";
	gboolean ok;

	if (!cs_ledger_begin(ledger, error))
		return FALSE;
	ok = cs_ledger_update_code(ledger, row->id, tries, state, error) &&
	     cs_ledger_commit(ledger, error);
	if (!ok) {
		cs_ledger_rollback(ledger);
		return FALSE;
	}
	if (expired)
		g_set_error_literal(error, CS_ERROR, CS_ERROR_CODE_EXPIRED,
				    "code: the authorization code expired; submit again for a new "
				    "one");
	else if (tries >= max_tries)
		g_set_error_literal(error, CS_ERROR, CS_ERROR_TOO_MANY_ATTEMPTS,
				    "code: too many wrong tries; submit again for a new one");
	else
		g_set_error(error, CS_ERROR, CS_ERROR_CODE_INVALID,
			    "code: wrong, %" G_GINT64_FORMAT " tries left", max_tries - tries);
	return FALSE;
}

gboolean
cs_step_check_auth_code(CsStep *step, const char *key_attr, GError **error)
{
	CsEngine *engine = cs_step_get_engine(step);
	CsOrder *order = cs_step_get_order(step);
	CsLedger *ledger = cs_engine_get_ledger(engine);
	guint max_tries = cs_engine_get_config(engine)->auth_code_max_tries;
	const char *code = cs_step_get_secret(step, "code");
	g_autofree char *key_id = cs_keys_id_from_path(cs_step_get_param(step, "key"));
	g_autoptr(CsCodeRow) row = NULL;
	g_autoptr(GError) local = NULL;
	g_autofree char *hash = NULL;

	if (!cs_engine_require(cs_engine_get_vault(engine), "the vault", error) ||
	    key_of(order, key_attr, error) == NULL)
		return FALSE;
	if (code == NULL || *code == '\0') {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "code: required (the authorization code)");
		return FALSE;
	}
	if (key_id == NULL) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "key: not the object path of a key");
		return FALSE;
	}
	row = cs_ledger_latest_code(ledger, cs_order_get_id(order), AUTH_CODE_PURPOSE, &local);
	if (row == NULL) {
		if (!g_error_matches(local, CS_ERROR, CS_ERROR_NOT_FOUND)) {
			g_propagate_error(error, g_steal_pointer(&local));
			return FALSE;
		}
		g_set_error_literal(error, CS_ERROR, CS_ERROR_CODE_INVALID,
				    "code: no authorization code was sent for this order");
		return FALSE;
	}
	if (g_strcmp0(row->state, "dead") == 0 || row->tries >= max_tries) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_TOO_MANY_ATTEMPTS,
				    "code: too many wrong tries; submit again for a new one");
		return FALSE;
	}
	if (g_strcmp0(row->state, "open") != 0) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_CODE_INVALID, "code: already used");
		return FALSE;
	}
	if (g_get_real_time() >= row->expires)
		return refuse_code(ledger, row, max_tries, TRUE, error);
	hash = code_hash(engine, order, key_id, code);
	if (strlen(hash) == strlen(row->code_hash) &&
	    CRYPTO_memcmp(hash, row->code_hash, strlen(hash)) == 0)
		return TRUE;
	return refuse_code(ledger, row, max_tries, FALSE, error);
}

gboolean
cs_step_use_auth_code(CsStep *step, GError **error)
{
	CsEngine *engine = cs_step_get_engine(step);
	CsOrder *order = cs_step_get_order(step);
	g_autoptr(CsCodeRow) row = NULL;

	if (!cs_step_check_transaction(step, "cs_step_use_auth_code", error))
		return FALSE;
	row = cs_ledger_latest_code(cs_engine_get_ledger(engine), cs_order_get_id(order),
				    AUTH_CODE_PURPOSE, error);
	if (row == NULL)
		return FALSE;
	return cs_ledger_update_code(cs_engine_get_ledger(engine), row->id, row->tries, "used",
				     error);
}
