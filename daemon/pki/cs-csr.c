/*
 * cs-csr.c — certificate signing requests from outside (PKCS#10, DER).
 *
 * A CSR comes from the applicant's key, through a driver: it is parsed once, bounded in
 * size, must be the whole input, must hold a key the CAs issue for and must verify with
 * it (proof of possession). Only its public key and key identifier are used after that —
 * never its subject (cs-ca.c builds the subject from the order). OpenSSL's ASN.1 templates
 * bound the nesting of what it parses; tests/test-seal.c keeps that so, and
 * tests/fuzz/fuzz-csr.c fuzzes this file alone.
 */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "cs-csr.h"

struct _CsCsr {
	X509_REQ *req;
	X509_PUBKEY *pubkey; /* borrowed from req */
	CsKeyAlgorithm algorithm;
	ASN1_OCTET_STRING *ski; /* SHA-1 of the public key bits (RFC 5280 §4.2.1.2, method 1) */
};

void
cs_csr_free(CsCsr *csr)
{
	if (csr == NULL)
		return;
	X509_REQ_free(csr->req);
	ASN1_OCTET_STRING_free(csr->ski);
	g_free(csr);
}

/* Every refusal leaves nothing behind, not even OpenSSL's error queue. */
static CsCsr *
csr_refuse(void)
{
	ERR_clear_error();
	return NULL;
}

CsCsr *
cs_csr_parse(const guint8 *der, gsize len, GError **error)
{
	g_autoptr(CsCsr) csr = g_new0(CsCsr, 1);
	g_autofree char *what = NULL;
	const unsigned char *p = der;
	const unsigned char *bits = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	EVP_PKEY *pkey;
	int bits_len = 0;

	if (der == NULL || len == 0) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "csr: empty");
		return csr_refuse();
	}
	if (len > CS_CSR_MAX_SIZE) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "csr: too large (%" G_GSIZE_FORMAT " bytes, at most %d)", len,
			    CS_CSR_MAX_SIZE);
		return csr_refuse();
	}
	csr->req = d2i_X509_REQ(NULL, &p, (long)len);
	if (csr->req == NULL) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "csr: not a DER PKCS#10 request");
		return csr_refuse();
	}
	if ((gsize)(p - der) != len) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "csr: %" G_GSIZE_FORMAT " bytes after the request",
			    len - (gsize)(p - der));
		return csr_refuse();
	}
	csr->pubkey = X509_REQ_get_X509_PUBKEY(csr->req);
	pkey = X509_REQ_get0_pubkey(csr->req);
	if (csr->pubkey == NULL || pkey == NULL) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "csr: unreadable public key");
		return csr_refuse();
	}
	csr->algorithm = cs_key_algorithm_of(pkey, &what);
	if (csr->algorithm == CS_KEY_UNSUPPORTED) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "csr: unsupported key type %s (RSA-2048, EC P-256 or SM2)", what);
		return csr_refuse();
	}
	/* Proof of possession, once, here. */
	if (csr->algorithm == CS_KEY_SM2)
		X509_REQ_set0_distinguishing_id(csr->req, cs_sm2_id_new());
	if (X509_REQ_verify(csr->req, pkey) != 1) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "csr: signature does not verify (no proof of possession)");
		return csr_refuse();
	}
	X509_PUBKEY_get0_param(NULL, &bits, &bits_len, NULL, csr->pubkey);
	csr->ski = ASN1_OCTET_STRING_new();
	if (bits == NULL || csr->ski == NULL ||
	    EVP_Digest(bits, (size_t)bits_len, md, &md_len, EVP_sha1(), NULL) != 1 ||
	    !ASN1_OCTET_STRING_set(csr->ski, md, (int)md_len)) {
		cs_ssl_fail(error, CS_ERROR_INTERNAL, "csr: key identifier");
		return NULL;
	}
	return g_steal_pointer(&csr);
}

CsKeyAlgorithm
cs_csr_get_algorithm(const CsCsr *csr)
{
	return csr->algorithm;
}

X509_PUBKEY *
cs_csr_get_public_key(const CsCsr *csr)
{
	return csr->pubkey;
}

const ASN1_OCTET_STRING *
cs_csr_get_key_id(const CsCsr *csr)
{
	return csr->ski;
}
