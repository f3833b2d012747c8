/*
 * fuzz-backup-payload.c — libFuzzer target for the entries of a decrypted backup body
 * (cs_backup_check_payload(), the parser underneath certseald --restore): name lengths and
 * names, modes, sizes against what is left, the end mark, names twice, the files a state
 * directory cannot be without. Whatever the bytes, the entries' count or a refusal.
 */
#define G_LOG_DOMAIN "fuzz-backup-payload"

#include <glib.h>

#include "certseal/plugin.h"
#include "cs-backup-private.h"

int LLVMFuzzerTestOneInput(const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput(const guint8 *data, size_t size)
{
	GError *error = NULL;
	CsBackupStats stats = {0};
	gboolean ok = cs_backup_check_payload(data, size, &stats, &error);

	g_assert_true(ok == (error == NULL));
	if (ok) {
		/* At least ledger.db and vault.key, and no more bytes than were given. */
		g_assert_cmpuint(stats.entries, >=, 2);
		g_assert_cmpuint(stats.bytes, <=, size);
	} else {
		g_assert_true(error->domain == CS_ERROR && error->code == CS_ERROR_INVALID_INPUT);
		g_error_free(error);
	}
	return 0;
}
