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

/*
 * Recompute the whole chain of the ledger in @state_dir. No vault key is created and the
 * state directory's lock is taken, so this never runs beside a daemon that is writing: a
 * running daemon's ledger is verified through the office bus instead. The events checked
 * go to @checked.
 */
static gboolean
check_ledger(CsConfig *config, const char *state_dir, gint64 *checked, GError **error)
{
	g_autoptr(CsVault) vault = NULL; /* declared first: freed after the ledger */
	g_autoptr(CsLedger) ledger = NULL;
	g_autofree char *key_path = g_build_filename(state_dir, "vault.key", NULL);
	g_autofree char *path = g_build_filename(state_dir, "ledger.db", NULL);
	g_autofree char *lock_path = g_build_filename(state_dir, "lock", NULL);
	gint64 bad = 0;
	gboolean ok;
	int lock_fd;

	if (!g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
		g_set_error(error, CS_ERROR, CS_ERROR_NOT_FOUND, "%s: no ledger here", path);
		return FALSE;
	}
	lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_UNAVAILABLE, "%s: %s", state_dir,
			    lock_fd < 0 ? g_strerror(errno)
					: "a running certseald holds this state directory; "
					  "verify through the office bus, or stop it first");
		if (lock_fd >= 0)
			close(lock_fd);
		return FALSE;
	}
	/* The vault key checks the chain's keyed MACs; it is never created here. */
	if (!g_file_test(key_path, G_FILE_TEST_EXISTS)) {
		g_set_error(error, CS_ERROR, CS_ERROR_NOT_FOUND,
			    "%s is missing: the ledger's keyed MACs cannot be checked", key_path);
		close(lock_fd);
		return FALSE;
	}
	vault = cs_vault_open(state_dir, error);
	ledger =
	    vault != NULL ? cs_ledger_open(path, vault, config->checkpoint_interval, error) : NULL;
	ok = ledger != NULL && cs_ledger_verify(ledger, 1, &bad, checked, error);
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

/* TRUE when @dir does not exist (*@created: made here, 0700) or is an empty folder. */
static gboolean
prepare_restore_dir(const char *dir, gboolean *created, GError **error)
{
	g_autoptr(GDir) d = NULL;
	g_autoptr(GError) local = NULL;

	*created = FALSE;
	if (!g_file_test(dir, G_FILE_TEST_EXISTS)) {
		if (g_mkdir_with_parents(dir, 0700) != 0) {
			g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s: cannot create: %s",
				    dir, g_strerror(errno));
			return FALSE;
		}
		*created = TRUE;
		return TRUE;
	}
	d = g_dir_open(dir, 0, &local);
	if (d == NULL) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "%s", local->message);
		return FALSE;
	}
	if (g_dir_read_name(d) != NULL) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "%s: not empty; restore into a new or empty state directory", dir);
		return FALSE;
	}
	return TRUE;
}

/*
 * Restore a backup (certseal-office backup) into an empty state directory, then verify
 * its ledger as --verify-ledger does. The passphrase comes from the terminal without echo
 * or a line of stdin. A refused archive or passphrase leaves the directory as it was.
 */
static int
restore(const char *config_path, const char *state_dir, const char *archive)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(CsConfig) config = cs_config_load(config_path, &error);
	CsBackupStats stats = {0};
	gboolean created = FALSE, ok;
	gint64 checked = 0;
	char *passphrase;

	if (config == NULL)
		goto fail;
	if (state_dir == NULL)
		state_dir = config->state_dir;
	if (!g_file_test(archive, G_FILE_TEST_IS_REGULAR)) {
		g_printerr("certseald: %s: no such file\n", archive);
		return 1;
	}
	if (!prepare_restore_dir(state_dir, &created, &error))
		goto fail;
	passphrase = cs_backup_read_passphrase(FALSE, &error);
	ok =
	    passphrase != NULL && cs_backup_restore(archive, passphrase, state_dir, &stats, &error);
	cs_tty_free_secret(passphrase);
	if (!ok) {
		if (created)
			g_rmdir(state_dir);
		goto fail;
	}
	if (!check_ledger(config, state_dir, &checked, &error)) {
		g_printerr("certseald: %s: restored %u files from %s, but the ledger does not "
			   "verify: %s\n",
			   state_dir, stats.entries, archive, error->message);
		return 1;
	}
	g_print("%s: restored %u files from %s; ledger verified, %" G_GINT64_FORMAT " events\n",
		state_dir, stats.entries, archive, checked);
	return 0;
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
