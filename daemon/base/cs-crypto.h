/*
 * cs-crypto.h — OpenSSL helpers shared by the CA, the seals and the CLI: the key
 * algorithms certseal issues for, signing contexts (SM2 always with SM3 and the
 * distinguishing ID 1234567812345678), and OpenSSL error text for messages.
 */
#pragma once

#include <glib.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

G_BEGIN_DECLS

#define CS_SM2_ID "1234567812345678"
#define CS_SM2_ID_LEN 16

typedef enum {
	CS_KEY_UNSUPPORTED = 0,
	CS_KEY_RSA_2048,
	CS_KEY_EC_P256,
	CS_KEY_SM2,
} CsKeyAlgorithm;

/* "rsa-2048", "ec-p256", "sm2" ↔ the enum; CS_KEY_UNSUPPORTED for anything else. */
CsKeyAlgorithm cs_key_algorithm_from_string(const char *s);
const char *cs_key_algorithm_to_string(CsKeyAlgorithm alg);
/* What @pkey is; CS_KEY_UNSUPPORTED (and a description in @what) for other keys. */
CsKeyAlgorithm cs_key_algorithm_of(EVP_PKEY *pkey, char **what);
EVP_PKEY *cs_key_generate(CsKeyAlgorithm alg, GError **error);

/* A digest-sign context for @pkey: SHA-256 (RSA PKCS#1 v1.5, ECDSA) or SM3 with the SM2
 * distinguishing ID. */
EVP_MD_CTX *cs_sign_ctx_new(EVP_PKEY *pkey, GError **error);
/* Set the SM2 distinguishing ID on @x, for verifying its signature; only for certificates
 * signed with SM2 (OpenSSL refuses an ID for RSA or ECDSA). */
void cs_x509_set_sm2_id(X509 *x);
/* The hash a signer of @alg uses, by the name the driver ABI's sign takes: "sm3" for SM2,
 * "sha256" otherwise. */
const char *cs_key_algorithm_digest(CsKeyAlgorithm alg);

/*
 * Sign @len to-be-signed bytes with a key kept elsewhere (a token, or a software key) and
 * return the signature: PKCS#1 v1.5 for RSA, a DER SEQUENCE { r, s } for EC and SM2 (SM2
 * over SM3 with the distinguishing ID CS_SM2_ID).
 */
typedef GBytes *(*CsSignFunc)(const guint8 *tbs, gsize len, gpointer user_data, GError **error);

/*
 * A DER PKCS#10 request for the public key @pub with @subject, whose private key signs
 * through @sign — the external-signing pattern of docs/architecture.md §3.1: the request is
 * assembled here, DER(CertificationRequestInfo) (i2d_re_X509_REQ_tbs) is handed to @sign, and the
 * signature is put in with X509_REQ_set0_signature. The signature algorithm follows @pub:
 * sha256WithRSAEncryption, ecdsa-with-SHA256 or SM2-with-SM3. The finished request is
 * verified against @pub before it is returned, so a signer that used another key (or
 * garbage) is caught here: CS_ERROR_INTERNAL "csr: …". @sign's own errors pass through.
 */
GBytes *cs_csr_build_signed(
    EVP_PKEY *pub, const X509_NAME *subject, CsSignFunc sign, gpointer user_data, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(X509, X509_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(X509_CRL, X509_CRL_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(X509_NAME, X509_NAME_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EVP_PKEY, EVP_PKEY_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EVP_MD_CTX, EVP_MD_CTX_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(X509_REQ, X509_REQ_free)

/* A fresh OCTET STRING holding CS_SM2_ID. */
ASN1_OCTET_STRING *cs_sm2_id_new(void);

/* The last OpenSSL error as text (the queue is cleared). */
char *cs_ssl_reason(void);
/* Set @error to "@what: <OpenSSL reason>" with @code (a CsErrorCode); returns FALSE. */
gboolean cs_ssl_fail(GError **error, int code, const char *what);

/* @len random decimal digits, without bias (free with cs_secret_free). */
char *cs_random_digits(guint len, GError **error);
/* Wipe and free a secret string; NULL is fine. */
void cs_secret_free(char *secret);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(char, cs_secret_free)

G_END_DECLS
