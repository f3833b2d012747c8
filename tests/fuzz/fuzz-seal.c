/*
 * fuzz-seal.c — libFuzzer target for GB/T 38540 seals and SES_Signatures as they come
 * from a USB key or a document (docs/architecture.md §4): parse both ways and sniff. Whatever the
 * DER, the answer is a parsed structure or a refusal with an error; OpenSSL's ASN.1 templates bound
 * the nesting, and nothing is left in its error queue.
 */
#define G_LOG_DOMAIN "fuzz-seal"

#include <glib.h>
#include <openssl/err.h>

#include "cs-seal.h"

int LLVMFuzzerTestOneInput(const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput(const guint8 *data, size_t size)
{
	GError *error = NULL;
	CsSealInfo *seal = cs_seal_parse(data, size, &error);
	CsSignatureInfo *signature;

	g_assert((seal != NULL) == (error == NULL));
	g_clear_error(&error);
	cs_seal_info_free(seal);
	signature = cs_signature_parse(data, size, &error);
	g_assert((signature != NULL) == (error == NULL));
	g_clear_error(&error);
	cs_signature_info_free(signature);
	(void)cs_seal_sniff(data, size);
	ERR_clear_error();
	return 0;
}
