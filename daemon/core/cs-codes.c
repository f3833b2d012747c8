/*
 * cs-codes.c — one-time SMS codes (an order's SendSmsCode / VerifySmsCode).
 *
 * A code is 6 random digits sent by SMS to the flow's contact phone; only its keyed hash
 * (HMAC with a vault-derived key, bound to the order) is kept, with its lifetime and its
 * wrong tries. The sealed copy inside the SMS task is the only other trace, wiped once the
 * SMS is delivered. Limits (code_lifetime_s, code_max_tries, resend cooldown, daily cap per
 * phone) come from the configuration's [sms] group.
 */
#define G_LOG_DOMAIN "certseald"

#include <string.h>

#include <json-glib/json-glib.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "cs-codes.h"
#include "cs-order-private.h"

static char *
code_hash(const CsCodeServices *s, CsOrder *order, const char *code)
{
	g_autofree char *data = g_strdup_printf("%s:%s", order->id, code);
	return cs_vault_keyed_hash(s->vault, "sms-code", data);
}

static gboolean
require_services(const CsCodeServices *s, GError **error)
{
	if (s->vault != NULL && s->tasks != NULL)
		return TRUE;
	g_set_error_literal(error, CS_ERROR, CS_ERROR_UNAVAILABLE,
			    "the office services are not running");
	return FALSE;
}

/* Inside a transaction: a new code for @order, sent by SMS to the flow's contact phone
 * (cooldown and daily cap enforced). Nothing of the code stays but its keyed hash and
 * the sealed copy the SMS task delivers. */
gboolean
cs_codes_send_in_txn(const CsCodeServices *s, CsOrder *order, char **masked_phone, GError **error)
{
	const char *phone =
	    order->plugin->contact_phone != NULL ? order->plugin->contact_phone(order) : NULL;
	g_autofree char *hash = NULL;
	g_autoptr(JsonObject) params = json_object_new();
	char code[8];
	guint32 r = 0;
	gint64 now = g_get_real_time();
	gboolean ok;

	if (!require_services(s, error))
		return FALSE;
	if (phone == NULL) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "phone: the order has no phone to send a code to");
		return FALSE;
	}
	do {
		if (RAND_bytes((unsigned char *)&r, sizeof r) != 1) {
			g_set_error_literal(error, CS_ERROR, CS_ERROR_INTERNAL,
					    "no random numbers for a code");
			return FALSE;
		}
	} while (r >= 4294000000u); /* 4294000000 = 4294 × 10^6: no modulo bias */
	g_snprintf(code, sizeof code, "%06u", r % 1000000u);
	hash = code_hash(s, order, code);
	json_object_set_string_member(params, "order", order->id);
	ok = cs_ledger_insert_code(s->ledger, order->id, "sms", hash, now,
				   now + (gint64)s->config->sms_code_lifetime_s * G_USEC_PER_SEC,
				   error) &&
	     cs_tasks_send_sms_in_txn(s->tasks, order->id, phone, "sms_code", params, code, TRUE,
				      error);
	OPENSSL_cleanse(code, sizeof code);
	OPENSSL_cleanse(&r, sizeof r);
	if (ok && masked_phone != NULL)
		*masked_phone = cs_mask_phone(phone);
	return ok;
}

/* Check @code against the order's open code. A wrong code counts a try in its own
 * transaction (so refusing the step keeps the count); *code_id is the code to mark used
 * in the step's transaction. */
gboolean
cs_codes_check(
    const CsCodeServices *s, CsOrder *order, const char *code, gint64 *code_id, GError **error)
{
	g_autoptr(CsCodeRow) row = NULL;
	g_autoptr(GError) local = NULL;
	g_autofree char *hash = NULL;
	guint max_tries = s->config->sms_code_max_tries;
	const char *state = NULL;
	gint64 tries;
	gboolean ok;

	if (!require_services(s, error))
		return FALSE;
	if (code == NULL || *code == '\0') {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "code: required (the SMS code)");
		return FALSE;
	}
	row = cs_ledger_latest_code(s->ledger, order->id, "sms", &local);
	if (row == NULL) {
		if (!g_error_matches(local, CS_ERROR, CS_ERROR_NOT_FOUND)) {
			g_propagate_error(error, g_steal_pointer(&local));
			return FALSE;
		}
		g_set_error_literal(error, CS_ERROR, CS_ERROR_CODE_INVALID,
				    "code: none was sent; ask for one with SendSmsCode");
		return FALSE;
	}
	if (g_strcmp0(row->state, "dead") == 0 || row->tries >= max_tries) {
		g_set_error_literal(
		    error, CS_ERROR, CS_ERROR_TOO_MANY_ATTEMPTS,
		    "code: too many wrong tries; ask for a new one with SendSmsCode");
		return FALSE;
	}
	if (g_strcmp0(row->state, "open") != 0) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_CODE_INVALID,
				    "code: already used; ask for a new one with SendSmsCode");
		return FALSE;
	}
	if (g_get_real_time() >= row->expires) {
		state = "dead";
		tries = row->tries;
	} else {
		hash = code_hash(s, order, code);
		if (strlen(hash) == strlen(row->code_hash) &&
		    CRYPTO_memcmp(hash, row->code_hash, strlen(hash)) == 0) {
			*code_id = row->id;
			return TRUE;
		}
		tries = row->tries + 1;
		state = tries >= max_tries ? "dead" : "open";
	}
	if (!cs_ledger_begin(s->ledger, error))
		return FALSE;
	ok = cs_ledger_update_code(s->ledger, row->id, tries, state, error) &&
	     cs_ledger_commit(s->ledger, error);
	if (!ok) {
		cs_ledger_rollback(s->ledger);
		return FALSE;
	}
	if (g_get_real_time() >= row->expires && tries == row->tries)
		g_set_error_literal(error, CS_ERROR, CS_ERROR_CODE_EXPIRED,
				    "code: expired; ask for a new one with SendSmsCode");
	else if (tries >= max_tries)
		g_set_error_literal(
		    error, CS_ERROR, CS_ERROR_TOO_MANY_ATTEMPTS,
		    "code: too many wrong tries; ask for a new one with SendSmsCode");
	else
		g_set_error(error, CS_ERROR, CS_ERROR_CODE_INVALID,
			    "code: wrong, %" G_GINT64_FORMAT " tries left", max_tries - tries);
	return FALSE;
}
