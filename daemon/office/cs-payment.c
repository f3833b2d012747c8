/*
 * cs-payment.c — Alipay and WeChat Pay v3 notification checks, at the office front.
 *
 * Invariants:
 * - Nothing from a notification is trusted before its signature verified with the
 *   configured platform key; after that, the merchant must match the configuration, and
 *   the money service (services/cs-payments.c) checks the order and the amount and
 *   applies the payment exactly once.
 * - Amounts are integers in fen; Alipay's "12.34" yuan is parsed as decimal text, never
 *   through a floating-point number.
 */
#define G_LOG_DOMAIN "certseald"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <string.h>

#include "cs-json.h"
#include "cs-payment.h"
#include "cs-validate.h"

#define WECHAT_MAX_SKEW_S 300

G_DEFINE_AUTOPTR_CLEANUP_FUNC(EVP_PKEY, EVP_PKEY_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EVP_MD_CTX, EVP_MD_CTX_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EVP_CIPHER_CTX, EVP_CIPHER_CTX_free)

struct _CsPaymentKeys {
	char *alipay_app_id;
	EVP_PKEY *alipay_key;
	char *wechat_mchid;
	char *wechat_appid;
	GHashTable *wechat_keys;  /* serial (normalised) → EVP_PKEY, the platform certificates */
	EVP_PKEY *wechat_any_key; /* a public key without a serial: whatever the header says */
	guint8 apiv3_key[32];
	gboolean has_apiv3_key;
	gboolean sandbox; /* test_mode: the cashier-confirmed sandbox channel */
};

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

/* Serials compare as hex numbers: upper case, no leading zeros. */
static char *
normalize_serial(const char *serial)
{
	while (*serial == '0' && serial[1] != '\0')
		serial++;
	return g_ascii_strup(serial, -1);
}

static char *
certificate_serial(X509 *cert)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
	char *serial = hex != NULL ? normalize_serial(hex) : NULL;

	OPENSSL_free(hex);
	BN_free(bn);
	return serial;
}

/* Every certificate in the PEM file @path, keyed by its serial. */
static gboolean
load_platform_certificates(CsPaymentKeys *keys, const char *path, GError **error)
{
	g_autofree char *pem = NULL;
	gsize len = 0;
	BIO *bio;
	X509 *cert;
	guint n = 0;

	if (!g_file_get_contents(path, &pem, &len, error))
		return FALSE;
	bio = BIO_new_mem_buf(pem, (int)len);
	while ((cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		g_autofree char *serial = certificate_serial(cert);
		EVP_PKEY *key = X509_get_pubkey(cert);

		X509_free(cert);
		if (serial == NULL || key == NULL || EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
			EVP_PKEY_free(key);
			BIO_free(bio);
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "%s: certificate %u has no RSA public key", path, n + 1);
			return FALSE;
		}
		g_hash_table_replace(keys->wechat_keys, g_steal_pointer(&serial), key);
		n++;
	}
	BIO_free(bio);
	ERR_clear_error();
	if (n == 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "%s: no certificate in PEM",
			    path);
		return FALSE;
	}
	return TRUE;
}

static gboolean
load_wechat_keys(CsPaymentKeys *keys, CsConfig *config, GError **error)
{
	EVP_PKEY *key;

	for (guint i = 0; config->wechat_platform_certificates != NULL &&
			  config->wechat_platform_certificates[i] != NULL;
	     i++) {
		if (!load_platform_certificates(keys, config->wechat_platform_certificates[i],
						error))
			return FALSE;
	}
	if (config->wechat_platform_public_key == NULL)
		return TRUE;
	if (config->wechat_platform_serial == NULL && g_hash_table_size(keys->wechat_keys) > 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "[payment] wechat_platform_serial: required for %s when "
			    "wechat_platform_certificates are given too",
			    config->wechat_platform_public_key);
		return FALSE;
	}
	key = load_public_key(config->wechat_platform_public_key, error);
	if (key == NULL)
		return FALSE;
	if (config->wechat_platform_serial == NULL)
		keys->wechat_any_key = key;
	else
		g_hash_table_replace(keys->wechat_keys,
				     normalize_serial(config->wechat_platform_serial), key);
	return TRUE;
}

CsPaymentKeys *
cs_payment_keys_load(CsConfig *config, GError **error)
{
	g_autoptr(CsPaymentKeys) keys = g_new0(CsPaymentKeys, 1);

	keys->sandbox = config->test_mode;
	keys->wechat_keys =
	    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)EVP_PKEY_free);
	keys->alipay_app_id = g_strdup(config->alipay_app_id);
	keys->wechat_mchid = g_strdup(config->wechat_mchid);
	keys->wechat_appid = g_strdup(config->wechat_appid);
	if (config->alipay_public_key != NULL) {
		keys->alipay_key = load_public_key(config->alipay_public_key, error);
		if (keys->alipay_key == NULL)
			return NULL;
	}
	if (!load_wechat_keys(keys, config, error))
		return NULL;
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
	g_clear_pointer(&keys->wechat_keys, g_hash_table_unref);
	EVP_PKEY_free(keys->wechat_any_key);
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

/* The text Alipay signs: the parameters sorted by name as "name=value" joined by '&',
 * without sign (and without sign_type unless @with_sign_type), empty values included. */
static char *
alipay_sign_content(GHashTable *params, gboolean with_sign_type)
{
	g_autoptr(GPtrArray) names = g_ptr_array_new();
	GString *content = g_string_new(NULL);
	GHashTableIter iter;
	gpointer k;

	g_hash_table_iter_init(&iter, params);
	while (g_hash_table_iter_next(&iter, &k, NULL)) {
		if (*(const char *)k == '\0' || g_strcmp0(k, "sign") == 0 ||
		    (!with_sign_type && g_strcmp0(k, "sign_type") == 0))
			continue;
		g_ptr_array_add(names, k);
	}
	g_ptr_array_sort(names, compare_keys);
	for (guint i = 0; i < names->len; i++) {
		const char *name = g_ptr_array_index(names, i);
		g_string_append_printf(content, "%s%s=%s", i > 0 ? "&" : "", name,
				       (const char *)g_hash_table_lookup(params, name));
	}
	return g_string_free(content, FALSE);
}

CsPaymentNotice *
cs_payment_verify_alipay(CsPaymentKeys *keys, const char *form, GError **error)
{
	g_autoptr(GHashTable) params = NULL;
	g_autofree char *content = NULL;
	g_autoptr(CsPaymentNotice) notice = g_new0(CsPaymentNotice, 1);
	g_autoptr(GError) local = NULL;
	const char *status, *trade_no, *notify_id, *sign_type;

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
	sign_type = g_hash_table_lookup(params, "sign_type");
	if (sign_type == NULL) /* the SDK's default, and what its fallback then signs */
		g_hash_table_insert(params, g_strdup("sign_type"), g_strdup("RSA2"));
	sign_type = g_hash_table_lookup(params, "sign_type");
	if (strcmp(sign_type, "RSA2") != 0) {
		refuse(error, "sign_type: must be RSA2");
		return NULL;
	}
	/* As the official SDKs' notify check: every parameter but sign and sign_type, empty
	 * values kept; if that does not verify, the same with sign_type included. */
	content = alipay_sign_content(params, FALSE);
	if (!verify_rsa_sha256(keys->alipay_key, content, strlen(content),
			       g_hash_table_lookup(params, "sign"), NULL)) {
		g_autofree char *with_type = alipay_sign_content(params, TRUE);

		if (!verify_rsa_sha256(keys->alipay_key, with_type, strlen(with_type),
				       g_hash_table_lookup(params, "sign"), error))
			return NULL;
	}
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
	g_autoptr(GError) local = NULL;
	g_autoptr(JsonNode) root = NULL;

	if (text == NULL) {
		refuse(error, "%s: not a JSON object", what);
		return NULL;
	}
	root = cs_json_parse_untrusted(text, -1, &local);
	if (root == NULL) {
		refuse(error, "%s: %s", what, local->message);
		return NULL;
	}
	if (!JSON_NODE_HOLDS_OBJECT(root)) {
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

/* The platform key a notification names by its Wechatpay-Serial. */
static EVP_PKEY *
wechat_platform_key(CsPaymentKeys *keys, const char *serial, GError **error)
{
	g_autofree char *normalized = NULL;
	g_autofree char *quoted = NULL;
	EVP_PKEY *key;

	if (g_hash_table_size(keys->wechat_keys) == 0)
		return keys->wechat_any_key;
	if (serial == NULL || *serial == '\0') {
		refuse(error, "headers: Wechatpay-Serial is required");
		return NULL;
	}
	normalized = normalize_serial(serial);
	key = g_hash_table_lookup(keys->wechat_keys, normalized);
	if (key == NULL) {
		quoted = cs_quote_value(serial);
		refuse(error, "Wechatpay-Serial: no platform certificate with serial %s", quoted);
	}
	return key;
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
	EVP_PKEY *platform_key;

	if ((g_hash_table_size(keys->wechat_keys) == 0 && keys->wechat_any_key == NULL) ||
	    !keys->has_apiv3_key || keys->wechat_mchid == NULL || keys->wechat_appid == NULL) {
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
	platform_key = wechat_platform_key(keys, header_get(headers, "Wechatpay-Serial"), error);
	if (platform_key == NULL)
		return NULL;
	g_string_append_printf(message, "%s\n%s\n%s\n", ts, nonce, body);
	if (!verify_rsa_sha256(platform_key, message->str, message->len,
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
