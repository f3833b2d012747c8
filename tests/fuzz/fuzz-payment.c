/*
 * fuzz-payment.c — libFuzzer target for payment notifications (daemon/office/cs-payment.c):
 * an Alipay form, WeChat Pay headers and body, and the WeChat resource inside.
 *
 * The first byte picks what the rest is:
 *   0  an Alipay x-www-form-urlencoded body (verified with a key of the harness: the
 *      fuzzer explores the form parsing and canonicalisation, not RSA);
 *   1  WeChat headers (JSON) and a body, cut at the first 0x00 0xff pair;
 *   2  a body the harness signs with the platform key, so that the fuzzer gets past the
 *      signature into the body's JSON;
 *   3  a resource (the decrypted JSON) the harness encrypts with the APIv3 key inside a
 *      signed body, so that the fuzzer reaches the merchant, amount and id checks.
 * Whatever the bytes: a notice or a refusal with an error. The money service is not
 * linked: cs_payment_notify() (which applies a notice) is not called here.
 */
#define G_LOG_DOMAIN "fuzz-payment"

#include <glib.h>
#include <glib/gstdio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <string.h>

#include "cs-config.h"
#include "cs-json.h"
#include "cs-payment.h"

int LLVMFuzzerTestOneInput(const guint8 *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* cs-payment.c's calls into the engine and the money service, made only by
 * cs_payment_notify(), which this target does not call. */
CsOrder *
cs_engine_get_order(CsEngine *engine, const char *id, GError **error)
{
	g_assert_not_reached();
}

guint64
cs_engine_amount_fen(CsEngine *engine, CsOrder *order)
{
	g_assert_not_reached();
}

gboolean
cs_payment_apply(CsEngine *engine,
		 CsPaymentNotice *notice,
		 gboolean *applied,
		 gboolean *refunding,
		 GError **error)
{
	g_assert_not_reached();
}

/* The notice's destructor, as services/cs-payments.c has it. */
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

static const guint8 apiv3[32] = "0123456789abcdef0123456789abcdef";
static CsPaymentKeys *keys;
static EVP_PKEY *platform;
static const gint64 now_s = 1764756000;

static char *
write_public(EVP_PKEY *key, const char *dir, const char *name)
{
	char *path = g_build_filename(dir, name, NULL);
	BIO *bio = BIO_new_file(path, "w");

	g_assert(bio != NULL && PEM_write_bio_PUBKEY(bio, key) == 1);
	BIO_free(bio);
	return path;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char *dir = g_dir_make_tmp("csfuzz-pay-XXXXXX", NULL);
	EVP_PKEY *alipay = EVP_RSA_gen(2048);
	CsConfig config = {0};
	char *apiv3_path = g_build_filename(dir, "apiv3.key", NULL);

	platform = EVP_RSA_gen(2048);
	g_assert(g_file_set_contents(apiv3_path, (const char *)apiv3, 32, NULL));
	config.alipay_app_id = (char *)"2021000000000001";
	config.alipay_public_key = write_public(alipay, dir, "alipay.pem");
	config.wechat_mchid = (char *)"1900000001";
	config.wechat_appid = (char *)"wx0000000000000001";
	config.wechat_platform_public_key = write_public(platform, dir, "wechat.pem");
	config.wechat_apiv3_key_file = apiv3_path;
	keys = cs_payment_keys_load(&config, NULL);
	g_assert(keys != NULL);
	g_unlink(config.alipay_public_key);
	g_unlink(config.wechat_platform_public_key);
	g_unlink(apiv3_path);
	g_rmdir(dir);
	g_free(config.alipay_public_key);
	g_free(config.wechat_platform_public_key);
	g_free(apiv3_path);
	g_free(dir);
	EVP_PKEY_free(alipay);
	return 0;
}

static char *
sign_b64(const char *text)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	guchar sig[512];
	size_t sig_len = sizeof(sig);

	g_assert(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, platform) == 1);
	g_assert(EVP_DigestSign(ctx, sig, &sig_len, (const guchar *)text, strlen(text)) == 1);
	EVP_MD_CTX_free(ctx);
	return g_base64_encode(sig, sig_len);
}

/* A body around @resource (plaintext JSON), encrypted as WeChat Pay does. */
static char *
encrypted_body(const char *resource)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	gsize len = strlen(resource);
	guchar *ct = g_malloc(len + 16);
	char *b64, *body;
	int n = 0;

	g_assert(EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, apiv3,
				    (const guchar *)"abcdefghijkl") == 1);
	g_assert(EVP_EncryptUpdate(ctx, NULL, &n, (const guchar *)"transaction", 11) == 1);
	g_assert(EVP_EncryptUpdate(ctx, ct, &n, (const guchar *)resource, (int)len) == 1);
	g_assert(EVP_EncryptFinal_ex(ctx, ct + n, &n) == 1);
	g_assert(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, ct + len) == 1);
	EVP_CIPHER_CTX_free(ctx);
	b64 = g_base64_encode(ct, len + 16);
	body = g_strdup_printf("{\"id\":\"e\",\"resource\":{\"algorithm\":\"AEAD_AES_256_GCM\","
			       "\"ciphertext\":\"%s\",\"associated_data\":\"transaction\","
			       "\"nonce\":\"abcdefghijkl\"}}",
			       b64);
	g_free(b64);
	g_free(ct);
	return body;
}

static CsPaymentNotice *
verify_signed(const char *body, GError **error)
{
	char *ts = g_strdup_printf("%" G_GINT64_FORMAT, now_s);
	char *message = g_strdup_printf("%s\nN\n%s\n", ts, body);
	char *sig = sign_b64(message);
	JsonObject *headers = json_object_new();
	CsPaymentNotice *notice;

	json_object_set_string_member(headers, "Wechatpay-Timestamp", ts);
	json_object_set_string_member(headers, "Wechatpay-Nonce", "N");
	json_object_set_string_member(headers, "Wechatpay-Signature", sig);
	json_object_set_string_member(headers, "Wechatpay-Serial", "5157F09EFDC096DE");
	notice = cs_payment_verify_wechat(keys, headers, body, now_s, error);
	json_object_unref(headers);
	g_free(sig);
	g_free(message);
	g_free(ts);
	return notice;
}

int
LLVMFuzzerTestOneInput(const guint8 *data, size_t size)
{
	GError *error = NULL;
	CsPaymentNotice *notice = NULL;
	char *text;

	if (size == 0)
		return 0;
	text = g_strndup((const char *)data + 1, size - 1);
	switch (data[0] % 4) {
	case 0:
		notice = cs_payment_verify_alipay(keys, text, &error);
		break;
	case 1: {
		const char *cut = NULL;
		JsonNode *root = NULL;

		for (size_t i = 1; i + 1 < size; i++) {
			if (data[i] == 0x00 && data[i + 1] == 0xff) {
				cut = (const char *)data + i + 2;
				break;
			}
		}
		if (cut != NULL)
			root = cs_json_parse_untrusted(text, -1, NULL);
		if (root != NULL && JSON_NODE_HOLDS_OBJECT(root)) {
			char *body = g_strndup(cut, size - (size_t)(cut - (const char *)data));
			notice = cs_payment_verify_wechat(keys, json_node_get_object(root), body,
							  now_s, &error);
			g_free(body);
		} else {
			error = g_error_new_literal(g_quark_from_static_string("fuzz"), 0,
						    "not headers and a body");
		}
		g_clear_pointer(&root, json_node_unref);
		break;
	}
	case 2:
		notice = verify_signed(text, &error);
		break;
	default: {
		char *body = encrypted_body(text);
		notice = verify_signed(body, &error);
		g_free(body);
		break;
	}
	}
	g_assert((notice != NULL) == (error == NULL));
	g_clear_error(&error);
	cs_payment_notice_free(notice);
	g_free(text);
	return 0;
}
