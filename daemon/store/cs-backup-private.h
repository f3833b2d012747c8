/*
 * cs-backup-private.h — the archive writer underneath cs_backup_create(), for tests that
 * craft archives (entries a backup never holds, to check that restoring refuses them), and
 * the parser underneath cs_backup_restore(), for the fuzzer.
 */
#pragma once

#include "cs-backup.h"

G_BEGIN_DECLS

typedef struct _CsBackupWriter CsBackupWriter;

/* Start an archive in the open file @fd (not closed here). */
CsBackupWriter *
cs_backup_writer_new(int fd, const char *passphrase, const CsBackupKdf *kdf, GError **error);
/* One entry, its name and mode taken as given. */
gboolean cs_backup_writer_add(CsBackupWriter *writer,
			      const char *name,
			      guint32 mode,
			      const guint8 *data,
			      gsize len,
			      GError **error);
/* The end of the entries and the tag; the file is synced. */
gboolean cs_backup_writer_finish(CsBackupWriter *writer, GError **error);
void cs_backup_writer_free(CsBackupWriter *writer);

/* The entries of a decrypted body (the first entry to the end mark, without the tag)
 * checked as restoring checks them before it writes anything: names, modes, no name twice,
 * sizes within the body, nothing after the end, ledger.db and vault.key there. The parser
 * underneath cs_backup_restore(), for the fuzzer. */
gboolean
cs_backup_check_payload(const guint8 *data, gsize len, CsBackupStats *stats, GError **error);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsBackupWriter, cs_backup_writer_free)

G_END_DECLS
