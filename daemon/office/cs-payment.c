/*
 * cs-payment.c — Alipay and WeChat Pay v3 notification checks (DESIGN §9).
 *
 * Invariants:
 * - Nothing from a notification is trusted before its signature verified with the
 *   configured platform key; after that, the order number, amount and merchant must
 *   match the order and the configuration exactly.
 * - The idempotency key is recorded in `payments` inside the transaction of the order's
 *   "pay" transition: the payment is applied once, and a duplicate is acknowledged as such.
 * - Amounts are integers in fen; Alipay's "12.34" yuan is parsed as decimal text, never
 *   through a floating-point number.
 */
#define G_LOG_DOMAIN "certseald"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sqlite3.h>
#include <string.h>

#include "cs-engine-flow.h"
#include "cs-payment.h"
#include "cs-tasks.h"

#define WECHAT_MAX_SKEW_S 300

G_DEFINE_AUTOPTR_CLEANUP_FUNC(EVP_PKEY, EVP_PKEY_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EVP_MD_CTX, EVP_MD_CTX_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EVP_CIPHER_CTX, EVP_CIPHER_CTX_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sqlite3_stmt, sqlite3_finalize)

struct _CsPaymentKeys {
	char *alipay_app_id;
	EVP_PKEY *alipay_key;
	char *wechat_mchid;
	char *wechat_appid;
	EVP_PKEY *wechat_key;
	guint8 apiv3_key[32];
	gboolean has_apiv3_key;
	gboolean sandbox; /* test_mode: the cashier-confirmed sandbox channel */
};

void
cs_payment_notice_free(CsPaymentNotice *notice)
{
	if (notice == NULL)
		return;
	g_free(notice->channel);
	g_free(notice->order_id);
	g_free(notice->trade_no);
	g_free(notice->notify_key);
	g_free(notice);
}

static EVP_PKEY *
load_public_key(const char *path, GError **error)
{
	g_autofree char *pem = NULL;
	gsize len = 0;
	BIO *bio;
	EVP_PKEY *key;

	if (!g_file_get_contents(path, &pem, &len, error))
		return NULL;
	bio = BIO_new_mem_buf(pem, (int)len);
	key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (key == NULL || EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
		EVP_PKEY_free(key);
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "%s: not an RSA public key in PEM", path);
		return NULL;
	}
	return key;
}

CsPaymentKeys *
cs_payment_keys_load(CsConfig *config, GError **error)
{
	g_autoptr(CsPaymentKeys) keys = g_new0(CsPaymentKeys, 1);

	keys->sandbox = config->test_mode;
	keys->alipay_app_id = g_strdup(config->alipay_app_id);
	keys->wechat_mchid = g_strdup(config->wechat_mchid);
	keys->wechat_appid = g_strdup(config->wechat_appid);
	if (config->alipay_public_key != NULL) {
		keys->alipay_key = load_public_key(config->alipay_public_key, error);
		if (keys->alipay_key == NULL)
			return NULL;
	}
	if (config->wechat_platform_public_key != NULL) {
		keys->wechat_key = load_public_key(config->wechat_platform_public_key, error);
		if (keys->wechat_key == NULL)
			return NULL;
	}
	if (config->wechat_apiv3_key_file != NULL) {
		g_autofree char *data = NULL;
		gsize len = 0;

		if (!g_file_get_contents(config->wechat_apiv3_key_file, &data, &len, error))
			return NULL;
		while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
			len--;
		if (len != sizeof(keys->apiv3_key)) {
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "%s: the APIv3 key must be 32 bytes",
				    config->wechat_apiv3_key_file);
			return NULL;
		}
		memcpy(keys->apiv3_key, data, len);
		memset(data, 0, len);
		keys->has_apiv3_key = TRUE;
	}
	return g_steal_pointer(&keys);
}

void
cs_payment_keys_free(CsPaymentKeys *keys)
{
	if (keys == NULL)
		return;
	g_free(keys->alipay_app_id);
	g_free(keys->wechat_mchid);
	g_free(keys->wechat_appid);
	EVP_PKEY_free(keys->alipay_key);
	EVP_PKEY_free(keys->wechat_key);
	memset(keys->apiv3_key, 0, sizeof(keys->apiv3_key));
	g_free(keys);
}

static gboolean refuse(GError **error, const char *format, ...) G_GNUC_PRINTF(2, 3);

static gboolean
refuse(GError **error, const char *format, ...)
{
	va_list args;
	g_autofree char *msg = NULL;

	va_start(args, format);
	msg = g_strdup_vprintf(format, args);
	va_end(args);
	g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT, msg);
	return FALSE;
}

static gboolean
verify_rsa_sha256(EVP_PKEY *key, const char *data, gsize len, const char *sig_b64, GError **error)
{
	g_autoptr(EVP_MD_CTX) ctx = EVP_MD_CTX_new();
	g_autofree guchar *sig = NULL;
	gsize sig_len = 0;

	if (sig_b64 == NULL || *sig_b64 == '\0')
		return refuse(error, "signature: missing");
	sig = g_base64_decode(sig_b64, &sig_len);
	if (sig_len == 0 || ctx == NULL ||
	    EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestVerify(ctx, sig, sig_len, (const guchar *)data, len) != 1)
		return refuse(error, "signature: does not verify with the platform key");
	return TRUE;
}

/* "12.34" → 1234; at most two decimals, no sign, no exponent. */
static gboolean
parse_yuan(const char *s, guint64 *fen)
{
	guint64 yuan = 0, cents = 0;
	const char *dot = s != NULL ? strchr(s, '.') : NULL;
	g_autofree char *whole = NULL;

	if (s == NULL || *s == '\0')
		return FALSE;
	whole = dot != NULL ? g_strndup(s, (gsize)(dot - s)) : g_strdup(s);
	if (!g_ascii_string_to_unsigned(whole, 10, 0, G_MAXUINT32, &yuan, NULL))
		return FALSE;
	if (dot != NULL) {
		gsize n = strlen(dot + 1);
		if (n == 0 || n > 2 ||
		    !g_ascii_string_to_unsigned(dot + 1, 10, 0, 99, &cents, NULL))
			return FALSE;
		if (n == 1)
			cents *= 10;
	}
	*fen = yuan * 100 + cents;
	return TRUE;
}

static int
compare_keys(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

CsPaymentNotice *
cs_payment_verify_alipay(CsPaymentKeys *keys, const char *form, GError **error)
{
	g_autoptr(GHashTable) params = NULL;
	g_autoptr(GPtrArray) names = g_ptr_array_new();
	g_autoptr(GString) content = g_string_new(NULL);
	g_autoptr(CsPaymentNotice) notice = g_new0(CsPaymentNotice, 1);
	g_autoptr(GError) local = NULL;
	GHashTableIter iter;
	gpointer k, v;
	const char *status, *trade_no, *notify_id;

	if (keys->alipay_key == NULL || keys->alipay_app_id == NULL) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_UNAVAILABLE,
				    "channel: alipay is not configured");
		return NULL;
	}
	if (form == NULL || !g_utf8_validate(form, -1, NULL)) {
		refuse(error, "form: missing or not UTF-8");
		return NULL;
	}
	params = g_uri_parse_params(form, -1, "&", G_URI_PARAMS_WWW_FORM, &local);
	if (params == NULL) {
		refuse(error, "form: %s", local->message);
		return NULL;
	}
	g_hash_table_iter_init(&iter, params);
	while (g_hash_table_iter_next(&iter, &k, &v)) {
		if (g_strcmp0(k, "sign") == 0 || g_strcmp0(k, "sign_type") == 0 ||
		    *(char *)v == '\0')
			continue;
		g_ptr_array_add(names, k);
	}
	g_ptr_array_sort(names, compare_keys);
	for (guint i = 0; i < names->len; i++) {
		const char *name = g_ptr_array_index(names, i);
		g_string_append_printf(content, "%s%s=%s", i > 0 ? "&" : "", name,
				       (const char *)g_hash_table_lookup(params, name));
	}
	if (g_strcmp0(g_hash_table_lookup(params, "sign_type"), "RSA2") != 0) {
		refuse(error, "sign_type: must be RSA2");
		return NULL;
	}
	if (!verify_rsa_sha256(keys->alipay_key, content->str, content->len,
			       g_hash_table_lookup(params, "sign"), error))
		return NULL;
	if (g_strcmp0(g_hash_table_lookup(params, "app_id"), keys->alipay_app_id) != 0) {
		refuse(error, "app_id: not this platform's application");
		return NULL;
	}
	status = g_hash_table_lookup(params, "trade_status");
	if (g_strcmp0(status, "TRADE_SUCCESS") != 0 && g_strcmp0(status, "TRADE_FINISHED") != 0) {
		refuse(error, "trade_status: %s is not a payment",
		       status != NULL ? status : "missing");
		return NULL;
	}
	trade_no = g_hash_table_lookup(params, "trade_no");
	notify_id = g_hash_table_lookup(params, "notify_id");
	if (trade_no == NULL || g_hash_table_lookup(params, "out_trade_no") == NULL ||
	    !parse_yuan(g_hash_table_lookup(params, "total_amount"), &notice->amount_fen)) {
		refuse(error, "form: trade_no, out_trade_no and total_amount (yuan) are required");
		return NULL;
	}
	notice->channel = g_strdup("alipay");
	notice->order_id = g_strdup(g_hash_table_lookup(params, "out_trade_no"));
	notice->trade_no = g_strdup(trade_no);
	/* The trade, not the notification: Alipay sends the same trade again with new
	 * notify_ids (TRADE_SUCCESS then TRADE_FINISHED), and it must count once. */
	notice->notify_key = g_strdup_printf("alipay:%s", trade_no);
	(void)notify_id;
	return g_steal_pointer(&notice);
}

static const char *
header_get(JsonObject *headers, const char *name)
{
	g_autoptr(GList) members = headers != NULL ? json_object_get_members(headers) : NULL;

	for (GList *l = members; l != NULL; l = l->next) {
		if (g_ascii_strcasecmp(l->data, name) == 0) {
			JsonNode *n = json_object_get_member(headers, l->data);
			if (JSON_NODE_HOLDS_VALUE(n) &&
			    json_node_get_value_type(n) == G_TYPE_STRING)
				return json_node_get_string(n);
		}
	}
	return NULL;
}

/* AES-256-GCM: @ct_b64 is ciphertext ‖ 16-byte tag. */
static char *
wechat_decrypt(
    const guint8 key[32], const char *nonce, const char *aad, const char *ct_b64, GError **error)
{
	g_autoptr(EVP_CIPHER_CTX) ctx = EVP_CIPHER_CTX_new();
	g_autofree guchar *ct = NULL;
	g_autofree char *plain = NULL;
	gsize ct_len = 0;
	int n = 0, fin = 0;

	if (nonce == NULL || ct_b64 == NULL) {
		refuse(error, "resource: nonce and ciphertext are required");
		return NULL;
	}
	ct = g_base64_decode(ct_b64, &ct_len);
	if (ct_len <= 16 || strlen(nonce) != 12) {
		refuse(error, "resource: malformed ciphertext or nonce");
		return NULL;
	}
	plain = g_malloc0(ct_len - 16 + 1);
	if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) != 1 ||
	    EVP_DecryptInit_ex(ctx, NULL, NULL, key, (const guchar *)nonce) != 1 ||
	    (aad != NULL &&
	     EVP_DecryptUpdate(ctx, NULL, &n, (const guchar *)aad, (int)strlen(aad)) != 1) ||
	    EVP_DecryptUpdate(ctx, (guchar *)plain, &n, ct, (int)(ct_len - 16)) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, ct + ct_len - 16) != 1 ||
	    EVP_DecryptFinal_ex(ctx, (guchar *)plain + n, &fin) != 1) {
		refuse(error, "resource: does not decrypt with the APIv3 key");
		return NULL;
	}
	return g_steal_pointer(&plain);
}

static JsonObject *
parse_object(const char *text, const char *what, GError **error)
{
	g_autoptr(JsonParser) parser = json_parser_new();
	JsonNode *root;

	if (text == NULL || !json_parser_load_from_data(parser, text, -1, NULL) ||
	    (root = json_parser_get_root(parser)) == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
		refuse(error, "%s: not a JSON object", what);
		return NULL;
	}
	return json_object_ref(json_node_get_object(root));
}

static const char *
obj_string(JsonObject *o, const char *name)
{
	JsonNode *n = o != NULL ? json_object_get_member(o, name) : NULL;

	if (n == NULL || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
		return NULL;
	return json_node_get_string(n);
}

static JsonObject *
obj_object(JsonObject *o, const char *name)
{
	JsonNode *n = o != NULL ? json_object_get_member(o, name) : NULL;

	return n != NULL && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

CsPaymentNotice *
cs_payment_verify_wechat(
    CsPaymentKeys *keys, JsonObject *headers, const char *body, gint64 now_s, GError **error)
{
	g_autoptr(CsPaymentNotice) notice = g_new0(CsPaymentNotice, 1);
	g_autoptr(GString) message = g_string_new(NULL);
	g_autoptr(JsonObject) outer = NULL;
	g_autoptr(JsonObject) inner = NULL;
	g_autofree char *plain = NULL;
	const char *ts = header_get(headers, "Wechatpay-Timestamp");
	const char *nonce = header_get(headers, "Wechatpay-Nonce");
	JsonObject *resource, *amount;
	gint64 ts_value = 0;
	JsonNode *total;

	if (keys->wechat_key == NULL || !keys->has_apiv3_key || keys->wechat_mchid == NULL ||
	    keys->wechat_appid == NULL) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_UNAVAILABLE,
				    "channel: wechat is not configured");
		return NULL;
	}
	if (ts == NULL || nonce == NULL || body == NULL ||
	    !g_ascii_string_to_signed(ts, 10, 0, G_MAXINT64, &ts_value, NULL)) {
		refuse(error,
		       "headers: Wechatpay-Timestamp, Wechatpay-Nonce and a body are required");
		return NULL;
	}
	g_string_append_printf(message, "%s\n%s\n%s\n", ts, nonce, body);
	if (!verify_rsa_sha256(keys->wechat_key, message->str, message->len,
			       header_get(headers, "Wechatpay-Signature"), error))
		return NULL;
	if (ts_value <= now_s - WECHAT_MAX_SKEW_S || ts_value >= now_s + WECHAT_MAX_SKEW_S) {
		refuse(error, "Wechatpay-Timestamp: more than 5 minutes off");
		return NULL;
	}
	outer = parse_object(body, "body", error);
	if (outer == NULL)
		return NULL;
	resource = obj_object(outer, "resource");
	if (resource == NULL ||
	    g_strcmp0(obj_string(resource, "algorithm"), "AEAD_AES_256_GCM") != 0) {
		refuse(error, "resource: missing or not AEAD_AES_256_GCM");
		return NULL;
	}
	plain = wechat_decrypt(keys->apiv3_key, obj_string(resource, "nonce"),
			       obj_string(resource, "associated_data"),
			       obj_string(resource, "ciphertext"), error);
	if (plain == NULL)
		return NULL;
	inner = parse_object(plain, "resource", error);
	if (inner == NULL)
		return NULL;
	if (g_strcmp0(obj_string(inner, "trade_state"), "SUCCESS") != 0) {
		refuse(error, "trade_state: not SUCCESS");
		return NULL;
	}
	if (g_strcmp0(obj_string(inner, "mchid"), keys->wechat_mchid) != 0 ||
	    g_strcmp0(obj_string(inner, "appid"), keys->wechat_appid) != 0) {
		refuse(error, "mchid/appid: not this platform's merchant");
		return NULL;
	}
	amount = obj_object(inner, "amount");
	total = amount != NULL ? json_object_get_member(amount, "total") : NULL;
	if (total == NULL || !JSON_NODE_HOLDS_VALUE(total) ||
	    json_node_get_value_type(total) != G_TYPE_INT64 || json_node_get_int(total) < 0 ||
	    obj_string(inner, "out_trade_no") == NULL ||
	    obj_string(inner, "transaction_id") == NULL) {
		refuse(error,
		       "resource: amount.total, out_trade_no and transaction_id are required");
		return NULL;
	}
	notice->channel = g_strdup("wechat");
	notice->order_id = g_strdup(obj_string(inner, "out_trade_no"));
	notice->amount_fen = (guint64)json_node_get_int(total);
	notice->trade_no = g_strdup(obj_string(inner, "transaction_id"));
	notice->notify_key = g_strdup_printf("wechat:%s", notice->trade_no);
	return g_steal_pointer(&notice);
}

/* ---- applying -------------------------------------------------------------------------- */

static gboolean
already_applied(CsLedger *ledger, const char *key, gboolean *found, GError **error)
{
	sqlite3 *db = cs_ledger_get_db(ledger);
	g_autoptr(sqlite3_stmt) stmt = NULL;

	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM payments WHERE notify_key = ?1", -1, &stmt,
			       NULL) != SQLITE_OK) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "ledger: %s", sqlite3_errmsg(db));
		return FALSE;
	}
	sqlite3_bind_text(stmt, 1, key, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(stmt) != SQLITE_ROW) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "ledger: %s", sqlite3_errmsg(db));
		return FALSE;
	}
	*found = sqlite3_column_int64(stmt, 0) > 0;
	return TRUE;
}

static gboolean
record_payment(CsEngine *engine, CsOrder *order, gpointer user_data, GError **error)
{
	CsPaymentNotice *n = user_data;
	sqlite3 *db = cs_ledger_get_db(cs_engine_get_ledger(engine));
	g_autoptr(sqlite3_stmt) stmt = NULL;

	if (sqlite3_prepare_v2(db,
			       "INSERT INTO payments (notify_key, channel, order_id, amount_fen, "
			       "trade_no, time) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
			       -1, &stmt, NULL) != SQLITE_OK) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "ledger: %s", sqlite3_errmsg(db));
		return FALSE;
	}
	sqlite3_bind_text(stmt, 1, n->notify_key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(stmt, 2, n->channel, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(stmt, 3, n->order_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(stmt, 4, (gint64)n->amount_fen);
	sqlite3_bind_text(stmt, 5, n->trade_no, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(stmt, 6, g_get_real_time());
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "ledger: recording a payment: %s",
			    sqlite3_errmsg(db));
		return FALSE;
	}
	/* PaymentChannel: the channel that was paid, not the last one tried. */
	return cs_engine_set_attr(engine, order, "payment_channel", n->channel, error);
}

/*
 * Money for an order that no longer waits for it — cancelled meanwhile, or paid twice
 * through two QR codes: it was taken, so it is recorded (with an event) and a cashier
 * refund task queued, in one transaction. The notification is acknowledged.
 */
static gboolean
record_unexpected_payment(CsEngine *engine, CsOrder *order, CsPaymentNotice *n, GError **error)
{
	CsLedger *ledger = cs_engine_get_ledger(engine);
	g_autoptr(JsonObject) payload = json_object_new();
	g_autoptr(GVariant) data = NULL;
	GVariantDict d;
	gboolean ok;

	g_variant_dict_init(&d, NULL);
	g_variant_dict_insert(&d, "channel", "s", n->channel);
	g_variant_dict_insert(&d, "amount_fen", "x", (gint64)n->amount_fen);
	g_variant_dict_insert(&d, "reason", "s", "the order no longer waits for a payment");
	data = g_variant_ref_sink(g_variant_dict_end(&d));
	json_object_set_string_member(payload, "kind", "refund");
	json_object_set_string_member(payload, "order_id", order->id);
	json_object_set_string_member(payload, "channel", n->channel);
	json_object_set_int_member(payload, "amount_fen", (gint64)n->amount_fen);
	json_object_set_string_member(payload, "trade_no", n->trade_no);
	if (!cs_ledger_begin(ledger, error))
		return FALSE;
	ok =
	    record_payment(engine, order, n, error) &&
	    cs_ledger_append_event(ledger, order->id, "payment_unexpected", order->state,
				   order->state, "gateway", data, g_get_real_time(), NULL, error) &&
	    cs_tasks_enqueue_in_txn(cs_engine_get_tasks(engine), "cashier", order->id, NULL,
				    payload, 0, NULL, error) &&
	    cs_ledger_commit(ledger, error);
	cs_order_forget_attrs(order);
	if (!ok) {
		cs_ledger_rollback(ledger);
		return FALSE;
	}
	g_message("order %s: %s payment of %" G_GUINT64_FORMAT
		  " fen arrived while it is %s; a refund is queued for the cashier",
		  order->id, n->channel, n->amount_fen, order->state);
	return TRUE;
}

gboolean
cs_payment_apply(CsEngine *engine,
		 CsPaymentNotice *notice,
		 gboolean *applied,
		 gboolean *refunding,
		 GError **error)
{
	CsRequest request = {.actor = CS_ACTOR_GATEWAY, .user_id = notice->channel};
	gboolean found = FALSE;
	CsOrder *order;
	guint64 due;

	*applied = FALSE;
	if (refunding != NULL)
		*refunding = FALSE;
	if (!already_applied(cs_engine_get_ledger(engine), notice->notify_key, &found, error))
		return FALSE;
	if (found)
		return TRUE; /* a duplicate: acknowledged, nothing changes */
	order = cs_engine_get_order(engine, notice->order_id, error);
	if (order == NULL)
		return FALSE;
	if (!cs_engine_awaits_payment(engine, order)) {
		if (cs_engine_get_tasks(engine) == NULL) {
			g_set_error(error, CS_ERROR, CS_ERROR_WRONG_STATE,
				    "order %s is %s: it does not wait for a payment", order->id,
				    order->state);
			return FALSE;
		}
		if (!record_unexpected_payment(engine, order, notice, error))
			return FALSE;
		if (refunding != NULL)
			*refunding = TRUE;
		return TRUE;
	}
	due = cs_engine_amount_fen(engine, order);
	if (notice->amount_fen != due) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "amount: %" G_GUINT64_FORMAT
			    " fen paid, the order costs %" G_GUINT64_FORMAT,
			    notice->amount_fen, due);
		return FALSE;
	}
	if (!cs_engine_act_full(engine, &request, order, "pay", record_payment, notice, error))
		return FALSE;
	*applied = TRUE;
	return TRUE;
}

gboolean
cs_payment_notify(CsEngine *engine,
		  CsPaymentKeys *keys,
		  JsonObject *params,
		  gboolean *applied,
		  gboolean *refunding,
		  char **order_id_out,
		  GError **error)
{
	const char *channel = obj_string(params, "channel");
	g_autoptr(CsPaymentNotice) notice = NULL;

	if (g_strcmp0(channel, "alipay") == 0) {
		notice = cs_payment_verify_alipay(keys, obj_string(params, "form"), error);
	} else if (g_strcmp0(channel, "wechat") == 0) {
		notice = cs_payment_verify_wechat(keys, obj_object(params, "headers"),
						  obj_string(params, "body"),
						  g_get_real_time() / G_USEC_PER_SEC, error);
	} else if (g_strcmp0(channel, "sandbox") == 0) {
		const char *order_id = obj_string(params, "order_id");
		CsOrder *order;

		if (!keys->sandbox) {
			g_set_error_literal(error, CS_ERROR, CS_ERROR_UNAVAILABLE,
					    "channel: sandbox payments need test_mode");
			return FALSE;
		}
		if (order_id == NULL)
			return refuse(error, "order_id: required");
		order = cs_engine_get_order(engine, order_id, error);
		if (order == NULL)
			return FALSE;
		notice = g_new0(CsPaymentNotice, 1);
		notice->channel = g_strdup("sandbox");
		notice->order_id = g_strdup(order_id);
		notice->amount_fen = cs_engine_amount_fen(engine, order);
		notice->trade_no = g_strdup_printf("sandbox-%s", order_id);
		notice->notify_key = g_strdup_printf("sandbox:%s", order_id);
	} else {
		return refuse(error, "channel: must be alipay, wechat or sandbox");
	}
	if (notice == NULL)
		return FALSE;
	if (order_id_out != NULL)
		*order_id_out = g_strdup(notice->order_id);
	return cs_payment_apply(engine, notice, applied, refunding, error);
}
