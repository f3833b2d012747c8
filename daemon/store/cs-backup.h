/*
 * cs-backup.h — a state directory in one passphrase-encrypted file, and back
 * (docs/development.md, "Backup and restore").
 *
 * Without vault.key no key this platform made can be unlocked and no sealed secret
 * opened, so a backup holds what a state directory cannot be rebuilt without:
 *   ledger.db                 an online sqlite3_backup copy (cs_ledger_backup_unnamed), one
 *                             consistent state while the daemon goes on writing
 *   vault.key, vault.check    the vault key and its check value
 *   ca/<vendor>/…             each vendor's CA: root, issuing and seal-maker keys and
 *                             certificates, the CRL
 *   office/<name>.key         the office bus's server and admin key pairs
 *   materials/<2 hex>/<hash>  the uploaded materials the ledger names
 * and nothing else: not the lock, the ledger's -wal/-shm/-journal or *.vN.bak migration
 * copies, hidden or temporary files, office/info.json (rewritten at every start),
 * materials/tmp/, nor drivers/ (the virtual keys of development; real keys are hardware).
 * The CA and office files are copied before the ledger (a CRL in the backup is never newer
 * than the CRL numbers its ledger holds), the materials after it (a material its rows name
 * was written before the row committed, so it is there when the materials are copied).
 *
 * The file ("CSBACKUP" version 1), big-endian:
 *   header  "CSBACKUP" | u32 version | u32 log2(N) | u32 r | u32 p | salt[16] | nonce[12]
 *           | check[32]
 *   body    AES-256-GCM ciphertext, the header its associated data
 *   tag     16 bytes
 * scrypt(passphrase, salt, N, r, p) gives 64 bytes: the AES key, then 32 bytes whose
 * SHA-256 is the check (a wrong passphrase is told from a damaged file before anything is
 * decrypted). The plaintext is a list of entries, u16 name length | name | u32 mode |
 * u64 size | bytes, ended by a name length of 0.
 *
 * Restoring reads the whole file twice: first every entry is checked (its name one of the
 * above, no duplicates, its mode 0600 — always for keys, the ledger and materials — or
 * 0644) and the tag verified, with nothing written; then the files are written into a
 * private folder inside the target with their modes, synced, the tag verified again, and
 * moved into place by renames that never replace anything, ledger.db first and vault.key
 * last (a restore killed between them leaves a ledger without its vault key, which
 * certseald refuses to start on).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define CS_BACKUP_MAGIC "CSBACKUP"
#define CS_BACKUP_VERSION 1
/* Passphrase length in characters. */
#define CS_BACKUP_PASSPHRASE_MIN 12
#define CS_BACKUP_PASSPHRASE_MAX 1024

/* scrypt's cost: N = 2^log2_n, r, p. */
typedef struct {
	guint log2_n;
	guint r;
	guint p;
} CsBackupKdf;

/* N = 2^17, r = 8, p = 1 (128 MiB, about half a second). */
extern const CsBackupKdf cs_backup_kdf_default;

typedef struct {
	guint entries;
	guint64 bytes;	     /* of the files, before encryption */
	guint stale_removed; /* backup: folders a killed earlier backup left, removed */
} CsBackupStats;

/* Refuses (CS_ERROR_INVALID_INPUT, naming the passphrase, never showing it) a passphrase
 * that is not UTF-8 or is shorter than CS_BACKUP_PASSPHRASE_MIN or longer than
 * CS_BACKUP_PASSPHRASE_MAX characters. */
gboolean cs_backup_check_passphrase(const char *passphrase, GError **error);

/*
 * The passphrase from the terminal without echo (asked twice when @new_passphrase, the
 * two compared), or one line of stdin; checked with cs_backup_check_passphrase() when
 * @new_passphrase. Free with cs_tty_free_secret().
 */
char *cs_backup_read_passphrase(gboolean new_passphrase, GError **error);

/* TRUE when @name (relative, '/'-separated) is a file a backup holds, and with @mode. */
gboolean cs_backup_entry_ok(const char *name, guint32 mode, GError **error);

/*
 * What cs_backup_create() checks before it reads a passphrase's worth of work: @state_dir
 * holds a ledger and its vault key, @output does not exist, and its folder is not one others
 * may rename files in (CS_ERROR_INVALID_INPUT naming the path and the reason).
 */
gboolean cs_backup_check_source(const char *state_dir, const char *output, GError **error);

/*
 * Write a backup of @state_dir to the new file @output (0600; refused when it exists):
 * written and synced as an unnamed file in the same folder (O_TMPFILE; a hidden temporary
 * where the file system has none), then linked into place. A private ".<output>.XXXXXX"
 * folder that a killed backup of an earlier version left beside the output (holding the
 * ledger's plaintext copy) is removed and counted in @stats. @kdf NULL means
 * cs_backup_kdf_default. Runs beside a daemon serving @state_dir.
 */
gboolean cs_backup_create(const char *state_dir,
			  const char *output,
			  const char *passphrase,
			  const CsBackupKdf *kdf,
			  CsBackupStats *stats,
			  GError **error);

/*
 * Whether @dir, an existing folder whose "lock" the caller holds, may be restored into: it
 * holds nothing but that lock and the private ".restore-XXXXXX" folders an interrupted
 * restore left, which are removed (counted in *@removed). Anything else refuses
 * (CS_ERROR_INVALID_INPUT, naming it, and naming the ".restore-" folder when there is one:
 * a restore killed while it moved names into place leaves part of a state directory).
 */
gboolean cs_backup_check_target(const char *dir, guint *removed, GError **error);

/*
 * Restore the backup @archive into @target_dir, an existing folder holding none of the
 * names it restores (the caller checks it with cs_backup_check_target()). A wrong passphrase
 * (CS_ERROR_ACCESS_DENIED), an altered or damaged file or an entry that is not one of a
 * backup's (CS_ERROR_INVALID_INPUT, naming it) writes nothing.
 */
gboolean cs_backup_restore(const char *archive,
			   const char *passphrase,
			   const char *target_dir,
			   CsBackupStats *stats,
			   GError **error);

G_END_DECLS
