/*
 * fuzz-csr.c — libFuzzer target for certificate signing requests (PKCS#10 DER) as a key
 * driver hands them over (daemon/pki/cs-csr.c): the size bound, the whole input, the key
 * types the CAs issue for, the proof of possession. Whatever the bytes, a CSR or a
 * refusal "csr: …", and nothing left in OpenSSL's error queue.
 */
#define G_LOG_DOMAIN "fuzz-csr"

#include <glib.h>
#include <openssl/err.h>
#include <string.h>

#include "cs-csr.h"

int LLVMFuzzerTestOneInput(const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput(const guint8 *data, size_t size)
{
	GError *error = NULL;
	CsCsr *csr = cs_csr_parse(data, size, &error);

	g_assert((csr != NULL) == (error == NULL));
	if (error != NULL) {
		g_assert(strncmp(error->message, "csr: ", 5) == 0);
		/* "Every refusal leaves nothing behind, not even OpenSSL's error queue." */
		g_assert(ERR_peek_error() == 0);
		g_error_free(error);
	}
	cs_csr_free(csr);
	ERR_clear_error();
	return 0;
}
