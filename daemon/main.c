/*
 * main.c — certseald's command line.
 *
 * Exit codes: 0 after a clean shutdown (or a verified ledger with --verify-ledger),
 * 1 when start-up was refused (configuration, vendor profile, ledger, bus name), 2 for a
 * usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>

#include "cs-build-config.h"
#include "cs-daemon.h"

/*
 * Recompute the whole chain. No vault is opened (nothing sealed is read) and the state
 * directory's lock is taken, so this never runs beside a daemon that is writing: a
 * running daemon's ledger is verified through the office bus instead.
 */
static int
verify_ledger(const char *config_path, const char *state_dir)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(CsConfig) config = cs_config_load(config_path, &error);
	g_autoptr(CsVault) vault = NULL; /* declared first: freed after the ledger */
	g_autoptr(CsLedger) ledger = NULL;
	g_autofree char *key_path = NULL;
	g_autofree char *path = NULL;
	g_autofree char *lock_path = NULL;
	gint64 bad = 0, checked = 0;
	int lock_fd;

	if (config == NULL)
		goto fail;
	if (state_dir == NULL)
		state_dir = config->state_dir;
	path = g_build_filename(state_dir, "ledger.db", NULL);
	if (!g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
		g_printerr("certseald: %s: no ledger here\n", path);
		return 1;
	}
	lock_path = g_build_filename(state_dir, "lock", NULL);
	lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
		g_printerr("certseald: %s: %s\n", state_dir,
			   lock_fd < 0 ? g_strerror(errno)
				       : "a running certseald holds this state directory; "
					 "verify through the office bus, or stop it first");
		if (lock_fd >= 0)
			close(lock_fd);
		return 1;
	}
	/* The vault key checks the chain's keyed MACs; it is never created here. */
	key_path = g_build_filename(state_dir, "vault.key", NULL);
	if (!g_file_test(key_path, G_FILE_TEST_EXISTS)) {
		g_printerr("certseald: %s is missing: the ledger's keyed MACs cannot be checked\n",
			   key_path);
		close(lock_fd);
		return 1;
	}
	vault = cs_vault_open(state_dir, &error);
	ledger =
	    vault != NULL ? cs_ledger_open(path, vault, config->checkpoint_interval, &error) : NULL;
	if (ledger == NULL || !cs_ledger_verify(ledger, 1, &bad, &checked, &error)) {
		close(lock_fd);
		goto fail;
	}
	g_print("%s: chain verified, %" G_GINT64_FORMAT " events\n", path, checked);
	close(lock_fd);
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
	if (verify)
		return verify_ledger(config_path, state_dir);

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
