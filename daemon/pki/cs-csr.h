/*
 * cs-csr.h — certificate signing requests (PKCS#10, DER) as the CAs take them.
 */
#pragma once

#include <glib.h>
#include <openssl/x509.h>

#include "certseal/plugin.h"
#include "cs-crypto.h"

G_BEGIN_DECLS

#define CS_CSR_MAX_SIZE 16384 /* bytes of DER */

typedef struct _CsCsr CsCsr;

/* Parse DER (at most CS_CSR_MAX_SIZE bytes, nothing after it), check the key is one we
 * issue for (RSA-2048, EC P-256, SM2) and verify the proof of possession. Every refusal
 * is CS_ERROR_INVALID_INPUT "csr: …". */
CsCsr *cs_csr_parse(const guint8 *der, gsize len, GError **error);
CsKeyAlgorithm cs_csr_get_algorithm(const CsCsr *csr);
void cs_csr_free(CsCsr *csr);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsCsr, cs_csr_free)

/* The request's public key (borrowed), copied into the certificate as encoded. */
X509_PUBKEY *cs_csr_get_public_key(const CsCsr *csr);
/* SHA-1 of the public key bits (RFC 5280 §4.2.1.2, method 1), the subject key id. */
const ASN1_OCTET_STRING *cs_csr_get_key_id(const CsCsr *csr);

G_END_DECLS
