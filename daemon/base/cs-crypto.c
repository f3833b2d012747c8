/*
 * cs-crypto.c — the OpenSSL helpers the CA (daemon) and the seal code (daemon and CLI)
 * share: key algorithms, signing contexts, the SM2 distinguishing ID, error text.
 *
 * Invariant: every SM2 signing or verifying context made here carries SM3 and the ID
 * 1234567812345678 (docs/architecture.md §8); RSA signs PKCS#1 v1.5 with SHA-256, EC ECDSA-SHA-256.
 */
#define G_LOG_DOMAIN "certseald"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <string.h>

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

const char *
cs_key_algorithm_digest(CsKeyAlgorithm alg)
{
	return alg == CS_KEY_SM2 ? "sm3" : "sha256";
}

/* ---- certificate requests signed elsewhere ------------------------------------------ */

G_DEFINE_AUTOPTR_CLEANUP_FUNC(X509_ALGOR, X509_ALGOR_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ASN1_BIT_STRING, ASN1_BIT_STRING_free)

/* The signature algorithm a CSR of @pub carries; NULL with @error for other keys. */
static X509_ALGOR *
csr_signature_algorithm(EVP_PKEY *pub, GError **error)
{
	g_autoptr(X509_ALGOR) alg = X509_ALGOR_new();
	g_autofree char *what = NULL;
	gboolean ok = FALSE;

	if (alg == NULL) {
		cs_ssl_fail(error, CS_ERROR_INTERNAL, "csr: signature algorithm");
		return NULL;
	}
	switch (cs_key_algorithm_of(pub, &what)) {
	case CS_KEY_RSA_2048:
		ok = X509_ALGOR_set0(alg, OBJ_nid2obj(NID_sha256WithRSAEncryption), V_ASN1_NULL,
				     NULL);
		break;
	case CS_KEY_EC_P256:
		ok = X509_ALGOR_set0(alg, OBJ_nid2obj(NID_ecdsa_with_SHA256), V_ASN1_UNDEF, NULL);
		break;
	case CS_KEY_SM2:
		ok = X509_ALGOR_set0(alg, OBJ_nid2obj(NID_SM2_with_SM3), V_ASN1_UNDEF, NULL);
		break;
	default:
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL,
			    "csr: unsupported key type %s (RSA-2048, EC P-256 or SM2)", what);
		return NULL;
	}
	if (!ok) {
		cs_ssl_fail(error, CS_ERROR_INTERNAL, "csr: signature algorithm");
		return NULL;
	}
	return g_steal_pointer(&alg);
}

GBytes *
cs_csr_build_signed(
    EVP_PKEY *pub, const X509_NAME *subject, CsSignFunc sign, gpointer user_data, GError **error)
{
	g_autoptr(X509_REQ) req = X509_REQ_new();
	g_autoptr(X509_ALGOR) alg = csr_signature_algorithm(pub, error);
	g_autoptr(ASN1_BIT_STRING) bits = NULL;
	g_autoptr(GBytes) sig = NULL;
	unsigned char *tbs = NULL, *der = NULL;
	int tbs_len, der_len;
	GBytes *out;

	if (alg == NULL)
		return NULL;
	if (req == NULL || X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
	    X509_REQ_set_subject_name(req, subject) != 1 || X509_REQ_set_pubkey(req, pub) != 1 ||
	    X509_REQ_set1_signature_algo(req, alg) != 1) {
		cs_ssl_fail(error, CS_ERROR_INTERNAL, "csr: assembling the request");
		return NULL;
	}
	tbs_len = i2d_re_X509_REQ_tbs(req, &tbs);
	if (tbs_len <= 0) {
		cs_ssl_fail(error, CS_ERROR_INTERNAL, "csr: encoding the request info");
		return NULL;
	}
	sig = sign(tbs, (gsize)tbs_len, user_data, error);
	OPENSSL_free(tbs);
	if (sig == NULL)
		return NULL;
	bits = ASN1_BIT_STRING_new();
	if (bits == NULL || g_bytes_get_size(sig) > G_MAXINT ||
	    !ASN1_BIT_STRING_set(bits, (unsigned char *)g_bytes_get_data(sig, NULL),
				 (int)g_bytes_get_size(sig))) {
		cs_ssl_fail(error, CS_ERROR_INTERNAL, "csr: signature");
		return NULL;
	}
	/* A signature is a whole number of bytes: no unused bits. */
	bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
	bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
	X509_REQ_set0_signature(req, g_steal_pointer(&bits));
	if (cs_key_algorithm_of(pub, NULL) == CS_KEY_SM2)
		X509_REQ_set0_distinguishing_id(req, cs_sm2_id_new());
	if (X509_REQ_verify(req, pub) != 1) {
		ERR_clear_error();
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INTERNAL,
				    "csr: the signature does not verify with the request's key");
		return NULL;
	}
	der_len = i2d_X509_REQ(req, &der);
	if (der_len <= 0) {
		cs_ssl_fail(error, CS_ERROR_INTERNAL, "csr: encoding the request");
		return NULL;
	}
	out = g_bytes_new(der, (gsize)der_len);
	OPENSSL_free(der);
	return out;
}

/* A string of @len random decimal digits, from the OpenSSL generator without bias. */
char *
cs_random_digits(guint len, GError **error)
{
	char *out = g_malloc0(len + 1);

	for (guint i = 0; i < len;) {
		unsigned char b[16];
		if (RAND_bytes(b, sizeof b) != 1) {
			g_set_error_literal(error, CS_ERROR, CS_ERROR_INTERNAL,
					    "the random generator failed");
			OPENSSL_cleanse(out, len);
			g_free(out);
			return NULL;
		}
		for (guint j = 0; j < sizeof b && i < len; j++) {
			if (b[j] < 250) /* 250 = 25 × 10: no modulo bias */
				out[i++] = (char)('0' + b[j] % 10);
		}
		OPENSSL_cleanse(b, sizeof b);
	}
	return out;
}

void
cs_secret_free(char *secret)
{
	if (secret == NULL)
		return;
	OPENSSL_cleanse(secret, strlen(secret));
	g_free(secret);
}
