/*
 * fuzz-backup.c — libFuzzer target for a backup archive as certseald --restore reads it
 * (daemon/store/cs-backup.c), with a fixed passphrase: the header and its scrypt bounds,
 * the passphrase check, then — for the seeds' header, which the passphrase opens — the
 * entries of a body whose bytes decrypt to anything before the tag refuses them. Whatever
 * the bytes, either a restore or a refusal, and a refusal writes nothing into the target.
 */
#define G_LOG_DOMAIN "fuzz-backup"

#include <glib.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "certseal/plugin.h"
#include "cs-backup.h"
#include "cs-fs.h"

/* The passphrase of the seeds in corpus-backup/ (scrypt N = 2^10, r = 8, p = 1). */
#define PASSPHRASE "fuzzing passphrase 1234"

int LLVMFuzzerTestOneInput(const guint8 *data, size_t size);

static char *target;

static void
remove_target(void)
{
	cs_remove_tree(target);
}

static gboolean
is_empty(const char *dir)
{
	GDir *d = g_dir_open(dir, 0, NULL);
	gboolean empty;

	g_assert_nonnull(d);
	empty = g_dir_read_name(d) == NULL;
	g_dir_close(d);
	return empty;
}

int
LLVMFuzzerTestOneInput(const guint8 *data, size_t size)
{
	GError *error = NULL;
	g_autofree char *path = NULL;
	CsBackupStats stats = {0};
	gboolean ok;
	int fd;

	if (target == NULL) {
		target = g_dir_make_tmp("fuzz-backup-XXXXXX", NULL);
		g_assert_nonnull(target);
		atexit(remove_target);
	}
	fd = memfd_create("archive", MFD_CLOEXEC);
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(write(fd, data, size), ==, (ssize_t)size);
	path = g_strdup_printf("/proc/self/fd/%d", fd);
	ok = cs_backup_restore(path, PASSPHRASE, target, &stats, &error);
	close(fd);
	g_assert_true(ok == (error == NULL));
	if (ok) {
		/* A whole archive the passphrase opens: as many files as entries, then gone. */
		g_assert_cmpuint(stats.entries, >=, 2);
		cs_remove_tree(target);
		g_assert_no_errno(g_mkdir(target, 0700));
	} else {
		g_assert_true(error->domain == CS_ERROR);
		g_assert_null(strstr(error->message, PASSPHRASE));
		g_assert_true(is_empty(target));
		g_error_free(error);
	}
	return 0;
}
