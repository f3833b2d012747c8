/*
 * cs-crypto.c — the OpenSSL helpers the CA (daemon) and the seal code (daemon and CLI)
 * share: key algorithms, signing contexts, the SM2 distinguishing ID, error text.
 *
 * Invariant: every SM2 signing or verifying context made here carries SM3 and the ID
 * 1234567812345678 (DESIGN §8); RSA signs PKCS#1 v1.5 with SHA-256, EC ECDSA-SHA-256.
 */
#define G_LOG_DOMAIN "certseald"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include "certseal/plugin.h"
#include "cs-crypto.h"

/* The first OpenSSL error queued, for messages; the queue is cleared. */
char *
cs_ssl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	char buf[256];

	if (e == 0)
		return g_strdup("unknown error");
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return g_strdup(buf);
}

gboolean
cs_ssl_fail(GError **error, int code, const char *what)
{
	g_autofree char *reason = cs_ssl_reason();

	g_set_error(error, CS_ERROR, code, "%s: %s", what, reason);
	return FALSE;
}

/* ---- algorithms and signing contexts ------------------------------------------------ */

CsKeyAlgorithm
cs_key_algorithm_from_string(const char *s)
{
	if (g_strcmp0(s, "rsa-2048") == 0)
		return CS_KEY_RSA_2048;
	if (g_strcmp0(s, "ec-p256") == 0)
		return CS_KEY_EC_P256;
	if (g_strcmp0(s, "sm2") == 0)
		return CS_KEY_SM2;
	return CS_KEY_UNSUPPORTED;
}

const char *
cs_key_algorithm_to_string(CsKeyAlgorithm alg)
{
	switch (alg) {
	case CS_KEY_RSA_2048:
		return "rsa-2048";
	case CS_KEY_EC_P256:
		return "ec-p256";
	case CS_KEY_SM2:
		return "sm2";
	default:
		return "unsupported";
	}
}

CsKeyAlgorithm
cs_key_algorithm_of(EVP_PKEY *pkey, char **what)
{
	char group[64] = "";

	if (EVP_PKEY_is_a(pkey, "RSA")) {
		if (EVP_PKEY_get_bits(pkey) == 2048)
			return CS_KEY_RSA_2048;
		if (what != NULL)
			*what = g_strdup_printf("RSA-%d", EVP_PKEY_get_bits(pkey));
		return CS_KEY_UNSUPPORTED;
	}
	if (EVP_PKEY_is_a(pkey, "SM2"))
		return CS_KEY_SM2;
	if (EVP_PKEY_is_a(pkey, "EC")) {
		(void)EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
						     sizeof(group), NULL);
		if (g_strcmp0(group, "prime256v1") == 0 || g_strcmp0(group, "P-256") == 0)
			return CS_KEY_EC_P256;
		if (g_strcmp0(group, "SM2") == 0)
			return CS_KEY_SM2;
		if (what != NULL)
			*what =
			    g_strdup_printf("EC %s", group[0] != '\0' ? group : "(unnamed curve)");
		return CS_KEY_UNSUPPORTED;
	}
	if (what != NULL)
		*what =
		    g_strdup(EVP_PKEY_get0_type_name(pkey) != NULL ? EVP_PKEY_get0_type_name(pkey)
								   : "an unknown key type");
	return CS_KEY_UNSUPPORTED;
}

EVP_PKEY *
cs_key_generate(CsKeyAlgorithm alg, GError **error)
{
	EVP_PKEY *pkey = NULL;

	switch (alg) {
	case CS_KEY_RSA_2048:
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
		break;
	case CS_KEY_EC_P256:
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		break;
	case CS_KEY_SM2:
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "SM2");
		break;
	default:
		break;
	}
	if (pkey == NULL)
		cs_ssl_fail(error, CS_ERROR_INTERNAL, "generating a key");
	return pkey;
}

EVP_MD_CTX *
cs_sign_ctx_new(EVP_PKEY *pkey, GError **error)
{
	g_autoptr(EVP_MD_CTX) ctx = EVP_MD_CTX_new();
	CsKeyAlgorithm alg = cs_key_algorithm_of(pkey, NULL);
	EVP_PKEY_CTX *pctx = NULL;

	if (ctx == NULL ||
	    EVP_DigestSignInit_ex(ctx, &pctx, alg == CS_KEY_SM2 ? "SM3" : "SHA256", NULL, NULL,
				  pkey, NULL) != 1 ||
	    (alg == CS_KEY_SM2 &&
	     EVP_PKEY_CTX_set1_id(pctx, (const guint8 *)CS_SM2_ID, CS_SM2_ID_LEN) <= 0) ||
	    (alg == CS_KEY_RSA_2048 &&
	     EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0)) {
		cs_ssl_fail(error, CS_ERROR_INTERNAL, "preparing a signing context");
		return NULL;
	}
	return g_steal_pointer(&ctx);
}

ASN1_OCTET_STRING *
cs_sm2_id_new(void)
{
	ASN1_OCTET_STRING *id = ASN1_OCTET_STRING_new();

	if (id != NULL && !ASN1_OCTET_STRING_set(id, (const guint8 *)CS_SM2_ID, CS_SM2_ID_LEN))
		g_clear_pointer(&id, ASN1_OCTET_STRING_free);
	return id;
}

void
cs_x509_set_sm2_id(X509 *x)
{
	/* The ID is the signer's; all our SM2 signers use the same one. Only for
	 * certificates signed with SM2: OpenSSL refuses an ID for ECDSA or RSA. */
	X509_set0_distinguishing_id(x, cs_sm2_id_new());
}
