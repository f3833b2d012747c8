/*
 * main.c — certseald's command line.
 *
 * Exit codes: 0 after a clean shutdown (or a verified ledger with --verify-ledger, or a
 * restored and verified state directory with --restore), 1 when start-up was refused
 * (configuration, vendor profile, ledger, bus name) or the restore failed, 2 for a usage
 * error.
 */
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "cs-backup.h"
#include "cs-build-config.h"
#include "cs-daemon.h"
#include "cs-tty.h"

/* The chain check of check_ledger(), the state directory's lock held by the caller. */
static gboolean
check_ledger_locked(CsConfig *config, const char *state_dir, gint64 *checked, GError **error)
{
	g_autoptr(CsVault) vault = NULL; /* declared first: freed after the ledger */
	g_autoptr(CsLedger) ledger = NULL;
	g_autofree char *key_path = g_build_filename(state_dir, "vault.key", NULL);
	g_autofree char *path = g_build_filename(state_dir, "ledger.db", NULL);
	gint64 bad = 0;

	/* The vault key checks the chain's keyed MACs; it is never created here. */
	if (!g_file_test(key_path, G_FILE_TEST_EXISTS)) {
		g_set_error(error, CS_ERROR, CS_ERROR_NOT_FOUND,
			    "%s is missing: the ledger's keyed MACs cannot be checked", key_path);
		return FALSE;
	}
	vault = cs_vault_open(state_dir, error);
	ledger =
	    vault != NULL ? cs_ledger_open(path, vault, config->checkpoint_interval, error) : NULL;
	return ledger != NULL && cs_ledger_verify(ledger, 1, &bad, checked, error);
}

/* The state directory's lock, taken (an open descriptor), or -1 with @error set. */
static int
lock_state_dir(const char *state_dir, gboolean *created, GError **error)
{
	g_autofree char *lock_path = g_build_filename(state_dir, "lock", NULL);
	int lock_fd;

	lock_fd = open(lock_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (created != NULL)
		*created = lock_fd >= 0;
	if (lock_fd < 0 && errno == EEXIST)
		lock_fd = open(lock_path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_UNAVAILABLE, "%s: %s", state_dir,
			    lock_fd < 0 ? g_strerror(errno)
					: "a running certseald holds this state directory; "
					  "verify through the office bus, or stop it first");
		if (lock_fd >= 0)
			close(lock_fd);
		if (created != NULL && *created)
			g_unlink(lock_path);
		return -1;
	}
	return lock_fd;
}

/*
 * Recompute the whole chain of the ledger in @state_dir. No vault key is created and the
 * state directory's lock is taken, so this never runs beside a daemon that is writing: a
 * running daemon's ledger is verified through the office bus instead. The events checked
 * go to @checked.
 */
static gboolean
check_ledger(CsConfig *config, const char *state_dir, gint64 *checked, GError **error)
{
	g_autofree char *path = g_build_filename(state_dir, "ledger.db", NULL);
	gboolean ok;
	int lock_fd;

	if (!g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
		g_set_error(error, CS_ERROR, CS_ERROR_NOT_FOUND, "%s: no ledger here", path);
		return FALSE;
	}
	lock_fd = lock_state_dir(state_dir, NULL, error);
	if (lock_fd < 0)
		return FALSE;
	ok = check_ledger_locked(config, state_dir, checked, error);
	close(lock_fd);
	return ok;
}

static int
verify_ledger(const char *config_path, const char *state_dir)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(CsConfig) config = cs_config_load(config_path, &error);
	g_autofree char *path = NULL;
	gint64 checked = 0;

	if (config == NULL)
		goto fail;
	if (state_dir == NULL)
		state_dir = config->state_dir;
	if (!check_ledger(config, state_dir, &checked, &error))
		goto fail;
	path = g_build_filename(state_dir, "ledger.db", NULL);
	g_print("%s: chain verified, %" G_GINT64_FORMAT " events\n", path, checked);
	return 0;
fail:
	g_printerr("certseald: %s\n", error->message);
	return 1;
}

/*
 * Restore a backup (certseal-office backup) into an empty state directory, then verify
 * its ledger as --verify-ledger does. The passphrase comes from the terminal without echo
 * or a line of stdin. The state directory's lock is held throughout, so no certseald
 * starts on it meanwhile (and none that runs is restored over). A refused archive or
 * passphrase leaves the directory as it was; what an interrupted restore left is removed
 * (cs_backup_check_target()).
 */
static int
restore(const char *config_path, const char *state_dir, const char *archive)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(CsConfig) config = cs_config_load(config_path, &error);
	g_autofree char *lock_path = NULL;
	CsBackupStats stats = {0};
	gboolean created = FALSE, lock_created = FALSE, ok;
	gint64 checked = 0;
	guint removed = 0;
	char *passphrase;
	int lock_fd;

	if (config == NULL)
		goto fail;
	if (state_dir == NULL)
		state_dir = config->state_dir;
	if (!g_file_test(archive, G_FILE_TEST_IS_REGULAR)) {
		g_printerr("certseald: %s: no such file\n", archive);
		return 1;
	}
	if (!g_file_test(state_dir, G_FILE_TEST_EXISTS)) {
		if (g_mkdir_with_parents(state_dir, 0700) != 0) {
			g_printerr("certseald: %s: cannot create: %s\n", state_dir,
				   g_strerror(errno));
			return 1;
		}
		created = TRUE;
	} else if (!g_file_test(state_dir, G_FILE_TEST_IS_DIR)) {
		g_printerr("certseald: %s: not a folder\n", state_dir);
		return 1;
	}
	lock_path = g_build_filename(state_dir, "lock", NULL);
	lock_fd = lock_state_dir(state_dir, &lock_created, &error);
	if (lock_fd < 0)
		goto fail_clean;
	if (!cs_backup_check_target(state_dir, &removed, &error))
		goto fail_unlock;
	if (removed > 0)
		g_printerr("certseald: %s: removed %u folder(s) .restore-XXXXXX that an "
			   "interrupted restore left\n",
			   state_dir, removed);
	cs_tty_unbuffer_stdin();
	passphrase = cs_backup_read_passphrase(FALSE, &error);
	ok =
	    passphrase != NULL && cs_backup_restore(archive, passphrase, state_dir, &stats, &error);
	cs_tty_free_secret(passphrase);
	if (!ok)
		goto fail_unlock;
	if (!check_ledger_locked(config, state_dir, &checked, &error)) {
		close(lock_fd);
		g_printerr("certseald: %s: restored %u files from %s, but the ledger does not "
			   "verify: %s\n",
			   state_dir, stats.entries, archive, error->message);
		return 1;
	}
	close(lock_fd);
	if (created) {
		/* The new directory's own name, durable as its contents are. */
		g_autofree char *parent = g_path_get_dirname(state_dir);
		int parent_fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (parent_fd >= 0) {
			fsync(parent_fd);
			close(parent_fd);
		}
	}
	g_print("%s: restored %u files from %s; ledger verified, %" G_GINT64_FORMAT " events\n",
		state_dir, stats.entries, archive, checked);
	return 0;
fail_unlock:
	if (lock_created)
		g_unlink(lock_path);
	close(lock_fd);
fail_clean:
	if (created)
		g_rmdir(state_dir);
fail:
	g_printerr("certseald: %s\n", error->message);
	return 1;
}

int
main(int argc, char **argv)
{
	gboolean session = FALSE, system_bus = FALSE, verify = FALSE, version = FALSE;
	gboolean verbose = FALSE;
	g_autofree char *state_dir = NULL;
	g_autofree char *restore_path = NULL;
	g_autofree char *config_path = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GOptionContext) context = NULL;
	g_autoptr(CsDaemon) daemon = NULL;
	CsDaemonOptions options = {0};
	const GOptionEntry entries[] = {
	    {"session", 0, 0, G_OPTION_ARG_NONE, &session,
	     "Serve on the session bus (development, tests)", NULL},
	    {"system", 0, 0, G_OPTION_ARG_NONE, &system_bus,
	     "Serve on the system bus (the default)", NULL},
	    {"state-dir", 0, 0, G_OPTION_ARG_FILENAME, &state_dir,
	     "Keep the ledger, vault and keys here", "DIR"},
	    {"config", 0, 0, G_OPTION_ARG_FILENAME, &config_path,
	     "Configuration file (default " CS_CONFIG_FILE ")", "FILE"},
	    {"verify-ledger", 0, 0, G_OPTION_ARG_NONE, &verify,
	     "Recompute the whole event chain and exit", NULL},
	    {"restore", 0, 0, G_OPTION_ARG_FILENAME, &restore_path,
	     "Restore a backup (certseal-office backup) into an empty --state-dir, verify its "
	     "ledger and exit",
	     "FILE"},
	    {"verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Log debug messages", NULL},
	    {"version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL},
	    {NULL},
	};

	setlocale(LC_ALL, "");
	context = g_option_context_new("— the certseal daemon");
	g_option_context_add_main_entries(context, entries, NULL);
	if (!g_option_context_parse(context, &argc, &argv, &error)) {
		g_printerr("certseald: %s\n", error->message);
		return 2;
	}
	if (session && system_bus) {
		g_printerr("certseald: --session and --system exclude each other\n");
		return 2;
	}
	if (version) {
		g_print("certseald %s\n", CS_VERSION);
		return 0;
	}
	if (verbose)
		g_log_set_debug_enabled(TRUE);
	if (config_path == NULL && g_file_test(CS_CONFIG_FILE, G_FILE_TEST_EXISTS))
		config_path = g_strdup(CS_CONFIG_FILE);
	if (verify && restore_path != NULL) {
		g_printerr("certseald: --verify-ledger and --restore exclude each other\n");
		return 2;
	}
	if (verify)
		return verify_ledger(config_path, state_dir);
	if (restore_path != NULL)
		return restore(config_path, state_dir, restore_path);

	options.config_path = config_path;
	options.state_dir = state_dir;
	options.bus_type = session ? CS_BUS_SESSION : CS_BUS_SYSTEM;
	daemon = cs_daemon_new(&options, &error);
	if (daemon == NULL || !cs_daemon_run(daemon, &error)) {
		g_printerr("certseald: %s\n", error->message);
		return 1;
	}
	return 0;
}
