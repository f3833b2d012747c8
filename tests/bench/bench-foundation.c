/*
 * bench-foundation.c — what certseal's foundation costs against the unavoidable work
 * beneath it (docs/architecture.md §7), measured in the same run on the same machine:
 *
 *   (a) one ledger transition (cs_ledger_begin + cs_ledger_update_order +
 *       cs_ledger_append_event + cs_ledger_commit on a real ledger file) vs one raw SQLite
 *       single-row INSERT commit in a separate file with the same durability
 *       (journal_mode=WAL, synchronous=FULL);
 *   (b) a D-Bus org.freedesktop.DBus.Properties.Get(Order, "State") on a real certseald vs
 *       an org.freedesktop.DBus.Peer.Ping sent to certseald's own unique name through the
 *       same private dbus-daemon;
 *   (c) a lean idle daemon: certseald restarted on the state directory (c) left (two vendors,
 *       no key), start → READY=1 (sd_notify, on a socket of ours) and → the bus name owned,
 *       best and median of several starts; then VmRSS, Pss and threads 5 s after READY=1,
 *       beside a bare process that maps the same shared libraries and does nothing (the
 *       floor of loading them: /bin/sh run by the dynamic loader with them preloaded).
 *
 * Blocks of the two sides alternate so that a slow moment of the disk or the scheduler
 * hurts both. It prints rates and ratios and never judges them: the exit status is
 * non-zero only when something did not work. Child processes (dbus-daemon, certseald)
 * die with it (PR_SET_PDEATHSIG) and are killed and reaped on every exit path; the
 * temporary directory is removed.
 *
 * Run: meson test -C build --benchmark, or directly with CS_BUILD_DIR set.
 */
#define G_LOG_DOMAIN "bench-foundation"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "cs-ledger.h"
#include "cs-vault.h"

#define BUS_NAME "org.certseal.CertSeal1"
#define MANAGER_PATH "/org/certseal/CertSeal1"
#define MANAGER_IFACE "org.certseal.CertSeal1.Manager"
#define ORDER_IFACE "org.certseal.CertSeal1.Order"
#define N_BLOCKS 4
#define START_TIMEOUT_US (10 * G_USEC_PER_SEC)
#define STOP_TIMEOUT_US (10 * G_USEC_PER_SEC)
#define N_STARTS 5
#define IDLE_WAIT_US (5 * G_USEC_PER_SEC)

static int opt_iterations = 2000;
static int opt_calls = 20000;

/* Children and the temporary directory, for cleanup on every exit path. */
static volatile pid_t child_bus;
static volatile pid_t child_daemon;
static char *tmp_root;

G_DEFINE_AUTOPTR_CLEANUP_FUNC(sd_bus, sd_bus_flush_close_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sd_bus_message, sd_bus_message_unref)

static void
reap(volatile pid_t *pid)
{
	if (*pid > 0) {
		kill(*pid, SIGKILL);
		waitpid(*pid, NULL, 0);
		*pid = 0;
	}
}

static int
remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	remove(path); /* best effort: go on with the rest */
	return 0;
}

static void
cleanup(void)
{
	reap(&child_daemon);
	reap(&child_bus);
	if (tmp_root != NULL) {
		nftw(tmp_root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
		g_free(tmp_root);
		tmp_root = NULL;
	}
}

static void
on_fatal_signal(int sig)
{
	/* Only async-signal-safe calls here; the children also have PR_SET_PDEATHSIG. */
	if (child_daemon > 0)
		kill(child_daemon, SIGKILL);
	if (child_bus > 0)
		kill(child_bus, SIGKILL);
	signal(sig, SIG_DFL);
	raise(sig);
}

static double
rate(gint64 n, gint64 elapsed_us)
{
	return elapsed_us > 0 ? (double)n * G_USEC_PER_SEC / (double)elapsed_us : 0.0;
}

/* --- (a) ledger transition vs raw commit ------------------------------------------- */

typedef struct {
	CsLedger *ledger;
	char *order_id;
	GVariant *fields;
	guint flips;
} LedgerBench;

static gboolean
ledger_transition(LedgerBench *b, GError **error)
{
	const char *from = (b->flips % 2) == 0 ? "draft" : "confirmed";
	const char *to = (b->flips % 2) == 0 ? "confirmed" : "draft";
	gint64 now = g_get_real_time();

	b->flips++;
	if (!cs_ledger_begin(b->ledger, error))
		return FALSE;
	if (!cs_ledger_update_order(b->ledger, b->order_id, to, b->fields, now, error) ||
	    !cs_ledger_append_event(b->ledger, b->order_id, "bench", from, to, "uid:0", NULL, now,
				    NULL, error) ||
	    !cs_ledger_commit(b->ledger, error)) {
		cs_ledger_rollback(b->ledger);
		return FALSE;
	}
	return TRUE;
}

static gboolean
raw_exec(sqlite3 *db, const char *sql, GError **error)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return TRUE;
	g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: %s", sql, msg != NULL ? msg : "?");
	sqlite3_free(msg);
	return FALSE;
}

static gboolean
raw_open(const char *path, sqlite3 **db_out, sqlite3_stmt **insert_out, GError **error)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *stmt = NULL;
	const char *mode = NULL;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
	    SQLITE_OK) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: %s", path,
			    sqlite3_errmsg(db));
		sqlite3_close(db);
		return FALSE;
	}
	*db_out = db;
	if (sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &stmt, NULL) != SQLITE_OK ||
	    sqlite3_step(stmt) != SQLITE_ROW ||
	    (mode = (const char *)sqlite3_column_text(stmt, 0)) == NULL ||
	    g_ascii_strcasecmp(mode, "wal") != 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: cannot enter WAL mode",
			    path);
		sqlite3_finalize(stmt);
		return FALSE;
	}
	sqlite3_finalize(stmt);
	if (!raw_exec(db, "PRAGMA synchronous = FULL", error) ||
	    !raw_exec(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)", error))
		return FALSE;
	if (sqlite3_prepare_v2(db, "INSERT INTO t (v) VALUES (?1)", -1, insert_out, NULL) !=
	    SQLITE_OK) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "prepare: %s",
			    sqlite3_errmsg(db));
		return FALSE;
	}
	return TRUE;
}

/* One autocommit INSERT is one durable commit. */
static gboolean
raw_commit(sqlite3 *db, sqlite3_stmt *insert, int i, GError **error)
{
	char value[64];
	int rc;

	g_snprintf(value, sizeof(value), "row %d of the raw commit baseline", i);
	sqlite3_bind_text(insert, 1, value, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(insert);
	sqlite3_reset(insert);
	if (rc != SQLITE_DONE) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "insert: %s", sqlite3_errmsg(db));
		return FALSE;
	}
	return TRUE;
}

/* The ledger's own setting, to show that both sides have the same durability. */
static char *
pragma_text(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *stmt = NULL;
	char *value = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) == SQLITE_OK &&
	    sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0) != NULL)
		value = g_strdup((const char *)sqlite3_column_text(stmt, 0));
	sqlite3_finalize(stmt);
	return value != NULL ? value : g_strdup("?");
}

static gboolean
bench_ledger(const char *dir, GError **error)
{
	g_autofree char *state = g_build_filename(dir, "ledger-state", NULL);
	g_autofree char *ledger_path = g_build_filename(state, "ledger.db", NULL);
	g_autofree char *raw_path = g_build_filename(dir, "raw.db", NULL);
	g_autoptr(CsVault) vault = NULL;
	g_autoptr(CsLedger) ledger = NULL;
	g_autoptr(GVariant) fields = NULL;
	g_autofree char *order_id = NULL;
	sqlite3 *raw = NULL;
	sqlite3_stmt *insert = NULL;
	LedgerBench b = {0};
	GVariantBuilder builder;
	gint64 ledger_us = 0, raw_us = 0, n_ledger = 0, n_raw = 0;
	int per_block = MAX(1, opt_iterations / N_BLOCKS);
	int warmup = MAX(10, opt_iterations / 20);
	gboolean ok = FALSE;
	gint64 now = g_get_real_time();

	if (g_mkdir_with_parents(state, 0700) != 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "%s: %s", state,
			    g_strerror(errno));
		return FALSE;
	}
	vault = cs_vault_open(state, error);
	if (vault == NULL)
		return FALSE;
	ledger = cs_ledger_open(ledger_path, vault, 1000, error);
	if (ledger == NULL)
		return FALSE;
	g_variant_builder_init(&builder, G_VARIANT_TYPE("a{sv}"));
	g_variant_builder_add(&builder, "{sv}", "vendor", g_variant_new_string("demo-a"));
	g_variant_builder_add(&builder, "{sv}", "org_name",
			      g_variant_new_string("基准测试有限公司"));
	fields = g_variant_ref_sink(g_variant_builder_end(&builder));
	if (!cs_ledger_begin(ledger, error))
		return FALSE;
	if (!cs_ledger_insert_order(ledger, "new", "org", "demo-a", "draft", 0, fields, now,
				    &order_id, error) ||
	    !cs_ledger_append_event(ledger, order_id, "created", NULL, "draft", "uid:0", NULL, now,
				    NULL, error) ||
	    !cs_ledger_commit(ledger, error)) {
		cs_ledger_rollback(ledger);
		return FALSE;
	}
	b = (LedgerBench){ledger, order_id, fields, 0};
	if (!raw_open(raw_path, &raw, &insert, error))
		goto out;

	for (int i = 0; i < warmup; i++) {
		if (!ledger_transition(&b, error) || !raw_commit(raw, insert, -i, error))
			goto out;
	}
	for (int block = 0; block < N_BLOCKS; block++) {
		gint64 t0 = g_get_monotonic_time();
		for (int i = 0; i < per_block; i++) {
			if (!ledger_transition(&b, error))
				goto out;
		}
		ledger_us += g_get_monotonic_time() - t0;
		n_ledger += per_block;

		t0 = g_get_monotonic_time();
		for (int i = 0; i < per_block; i++) {
			if (!raw_commit(raw, insert, block * per_block + i, error))
				goto out;
		}
		raw_us += g_get_monotonic_time() - t0;
		n_raw += per_block;
	}
	{
		double l = rate(n_ledger, ledger_us), r = rate(n_raw, raw_us);
		g_autofree char *mode =
		    pragma_text(cs_ledger_get_db(ledger), "PRAGMA journal_mode");
		g_autofree char *sync = pragma_text(cs_ledger_get_db(ledger), "PRAGMA synchronous");
		g_print("ledger transition: %.0f/s  raw sqlite commit: %.0f/s  ratio %.2f "
			"(target >= 0.5)  [%" G_GINT64_FORMAT " each; ledger journal_mode=%s "
			"synchronous=%s; raw journal_mode=wal synchronous=2]\n",
			l, r, r > 0 ? l / r : 0.0, n_ledger, mode, sync);
	}
	ok = TRUE;
out:
	sqlite3_finalize(insert);
	sqlite3_close(raw);
	return ok;
}

/* --- (b) D-Bus Get vs Ping ---------------------------------------------------------- */

static const char bus_config[] =
    "<busconfig><type>session</type><listen>unix:dir=%s</listen><auth>EXTERNAL</auth>"
    "<policy context=\"default\"><allow send_destination=\"*\" eavesdrop=\"true\"/>"
    "<allow eavesdrop=\"true\"/><allow own=\"*\"/><allow user=\"*\"/></policy></busconfig>\n";

/* In the child: die with the parent, quiet stdin, then exec. Never returns. */
static void G_GNUC_NORETURN
exec_child(const char *const *argv, int out_fd)
{
	int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (null_fd >= 0)
		dup2(null_fd, STDIN_FILENO);
	if (out_fd >= 0) {
		dup2(out_fd, STDOUT_FILENO);
		dup2(out_fd, STDERR_FILENO);
	}
	execv(argv[0], (char *const *)argv);
	_exit(127);
}

static char *
spawn_bus(const char *dir, GError **error)
{
	g_autofree char *config = g_build_filename(dir, "bus.conf", NULL);
	g_autofree char *text = g_strdup_printf(bus_config, dir);
	g_autofree char *config_arg = g_strdup_printf("--config-file=%s", config);
	g_autofree char *dbus_daemon = g_find_program_in_path("dbus-daemon");
	GString *address = g_string_new(NULL);
	gint64 deadline = g_get_monotonic_time() + START_TIMEOUT_US;
	int fds[2];
	pid_t pid;

	if (dbus_daemon == NULL) {
		g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
				    "dbus-daemon not found");
		goto fail;
	}
	if (!g_file_set_contents(config, text, -1, error))
		goto fail;
	if (pipe2(fds, O_CLOEXEC) != 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "pipe: %s", g_strerror(errno));
		goto fail;
	}
	pid = fork();
	if (pid == 0) {
		const char *argv[] = {dbus_daemon, config_arg, "--nofork", "--print-address=1",
				      NULL};
		int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fds[1], STDOUT_FILENO);
		if (devnull >= 0)
			dup2(devnull, STDERR_FILENO);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	if (pid < 0) {
		close(fds[0]);
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "fork: %s", g_strerror(errno));
		goto fail;
	}
	child_bus = pid;
	while (address->len == 0 || address->str[address->len - 1] != '\n') {
		struct pollfd p = {fds[0], POLLIN, 0};
		gint64 left_ms = (deadline - g_get_monotonic_time()) / 1000;
		char c;
		if (left_ms <= 0 || poll(&p, 1, (int)left_ms) <= 0 || read(fds[0], &c, 1) != 1) {
			close(fds[0]);
			g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_FAILED,
					    "dbus-daemon did not print its address");
			goto fail;
		}
		g_string_append_c(address, c);
	}
	close(fds[0]);
	g_strchomp(address->str);
	return g_string_free(address, FALSE);
fail:
	g_string_free(address, TRUE);
	return NULL;
}

static gboolean spawn_daemon_notify(const char *build_dir,
				    const char *address,
				    const char *dir,
				    const char *log_path,
				    const char *notify_socket,
				    GError **error);

static gboolean
spawn_daemon(const char *build_dir,
	     const char *address,
	     const char *dir,
	     const char *log_path,
	     GError **error)
{
	return spawn_daemon_notify(build_dir, address, dir, log_path, NULL, error);
}

static gboolean
spawn_daemon_notify(const char *build_dir,
		    const char *address,
		    const char *dir,
		    const char *log_path,
		    const char *notify_socket,
		    GError **error)
{
	g_autofree char *certseald = g_build_filename(build_dir, "daemon", "certseald", NULL);
	g_autofree char *config = g_build_filename(build_dir, "certseal-dev.conf", NULL);
	g_autofree char *state = g_build_filename(dir, "daemon-state", NULL);
	int log_fd;
	pid_t pid;

	if (!g_file_test(certseald, G_FILE_TEST_IS_EXECUTABLE)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "%s is not built", certseald);
		return FALSE;
	}
	log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (log_fd < 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: %s", log_path,
			    g_strerror(errno));
		return FALSE;
	}
	pid = fork();
	if (pid == 0) {
		const char *argv[] = {certseald,  "--session", "--state-dir", state,
				      "--config", config,      NULL};
		setenv("DBUS_SESSION_BUS_ADDRESS", address, 1);
		setenv("G_SLICE", "always-malloc", 1);
		if (notify_socket != NULL)
			setenv("NOTIFY_SOCKET", notify_socket, 1);
		exec_child(argv, log_fd);
	}
	close(log_fd);
	if (pid < 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "fork: %s", g_strerror(errno));
		return FALSE;
	}
	child_daemon = pid;
	return TRUE;
}

static void
print_log(const char *log_path)
{
	g_autofree char *text = NULL;

	if (g_file_get_contents(log_path, &text, NULL, NULL))
		g_printerr("--- certseald log (%s):\n%s---\n", log_path, text);
}

static gboolean
bus_error(GError **error, const char *what, int r, const sd_bus_error *e)
{
	g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: %s", what,
		    e != NULL && sd_bus_error_is_set(e) ? e->message : g_strerror(-r));
	return FALSE;
}

static sd_bus *
connect_bus(const char *address, GError **error)
{
	sd_bus *bus = NULL;
	int r = sd_bus_new(&bus);

	if (r >= 0)
		r = sd_bus_set_address(bus, address);
	if (r >= 0)
		r = sd_bus_set_bus_client(bus, 1);
	if (r >= 0)
		r = sd_bus_start(bus);
	if (r < 0) {
		bus_error(error, "connecting to the private bus", r, NULL);
		sd_bus_unref(bus);
		return NULL;
	}
	return bus;
}

/* Wait until certseald owns its name; returns its unique name. */
static char *
wait_for_daemon(sd_bus *bus, const char *log_path, GError **error)
{
	gint64 deadline = g_get_monotonic_time() + START_TIMEOUT_US;

	while (g_get_monotonic_time() < deadline) {
		sd_bus_error e = SD_BUS_ERROR_NULL;
		g_autoptr(sd_bus_message) reply = NULL;
		const char *owner = NULL;
		int status;

		if (waitpid(child_daemon, &status, WNOHANG) == child_daemon) {
			child_daemon = 0;
			print_log(log_path);
			g_set_error(
			    error, G_IO_ERROR, G_IO_ERROR_FAILED,
			    "certseald %s %d before owning %s",
			    WIFEXITED(status) ? "exited with status" : "was killed by signal",
			    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), BUS_NAME);
			return NULL;
		}
		if (sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
				       "org.freedesktop.DBus", "GetNameOwner", &e, &reply, "s",
				       BUS_NAME) >= 0 &&
		    sd_bus_message_read(reply, "s", &owner) >= 0) {
			sd_bus_error_free(&e);
			return g_strdup(owner);
		}
		sd_bus_error_free(&e);
		g_usleep(20 * 1000);
	}
	print_log(log_path);
	g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "certseald did not own %s in time",
		    BUS_NAME);
	return NULL;
}

static char *
create_order(sd_bus *bus, GError **error)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	g_autoptr(sd_bus_message) m = NULL;
	g_autoptr(sd_bus_message) reply = NULL;
	const char *path = NULL;
	int r = sd_bus_message_new_method_call(bus, &m, BUS_NAME, MANAGER_PATH, MANAGER_IFACE,
					       "CreateOrder");

	if (r >= 0)
		r = sd_bus_message_append(m, "ssa{sv}", "new", "org", 2, "vendor", "s", "demo-a",
					  "org_name", "s", "基准测试有限公司");
	if (r >= 0)
		r = sd_bus_call(bus, m, 0, &e, &reply);
	if (r >= 0)
		r = sd_bus_message_read(reply, "o", &path);
	if (r < 0) {
		bus_error(error, "CreateOrder", r, &e);
		sd_bus_error_free(&e);
		return NULL;
	}
	return g_strdup(path);
}

static gboolean
call_get_state(sd_bus *bus, const char *path, GError **error)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	g_autoptr(sd_bus_message) reply = NULL;
	const char *state = NULL;
	int r = sd_bus_call_method(bus, BUS_NAME, path, "org.freedesktop.DBus.Properties", "Get",
				   &e, &reply, "ss", ORDER_IFACE, "State");

	if (r >= 0)
		r = sd_bus_message_read(reply, "v", "s", &state);
	if (r < 0) {
		bus_error(error, "Properties.Get(State)", r, &e);
		sd_bus_error_free(&e);
		return FALSE;
	}
	return TRUE;
}

static gboolean
call_ping(sd_bus *bus, const char *unique, GError **error)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	g_autoptr(sd_bus_message) reply = NULL;
	int r = sd_bus_call_method(bus, unique, "/", "org.freedesktop.DBus.Peer", "Ping", &e,
				   &reply, NULL);

	if (r < 0) {
		bus_error(error, "Peer.Ping", r, &e);
		sd_bus_error_free(&e);
		return FALSE;
	}
	return TRUE;
}

/* SIGTERM, then wait; a daemon that does not stop in time is a failure. */
static gboolean
stop_daemon(GError **error)
{
	gint64 deadline = g_get_monotonic_time() + STOP_TIMEOUT_US;
	int status = 0;

	if (child_daemon <= 0)
		return TRUE;
	kill(child_daemon, SIGTERM);
	while (waitpid(child_daemon, &status, WNOHANG) == 0) {
		if (g_get_monotonic_time() > deadline) {
			reap(&child_daemon);
			g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
					    "certseald ignored SIGTERM");
			return FALSE;
		}
		g_usleep(10 * 1000);
	}
	child_daemon = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
			    "certseald did not exit cleanly (status 0x%x)", (guint)status);
		return FALSE;
	}
	return TRUE;
}

static gboolean
bench_dbus(const char *build_dir, const char *dir, GError **error)
{
	g_autofree char *log_path = g_build_filename(dir, "certseald.log", NULL);
	g_autofree char *address = NULL;
	g_autofree char *unique = NULL;
	g_autofree char *path = NULL;
	g_autoptr(sd_bus) bus = NULL;
	gint64 get_us = 0, ping_us = 0, n_get = 0, n_ping = 0;
	int per_block = MAX(1, opt_calls / N_BLOCKS);
	int warmup = MAX(10, opt_calls / 40);

	address = spawn_bus(dir, error);
	if (address == NULL || !spawn_daemon(build_dir, address, dir, log_path, error))
		return FALSE;
	g_setenv("CS_BENCH_BUS_ADDRESS", address, TRUE); /* for bench_idle() */
	bus = connect_bus(address, error);
	if (bus == NULL)
		return FALSE;
	unique = wait_for_daemon(bus, log_path, error);
	if (unique == NULL)
		return FALSE;
	path = create_order(bus, error);
	if (path == NULL) {
		print_log(log_path);
		return FALSE;
	}
	for (int i = 0; i < warmup; i++) {
		if (!call_get_state(bus, path, error) || !call_ping(bus, unique, error))
			return FALSE;
	}
	for (int block = 0; block < N_BLOCKS; block++) {
		gint64 t0 = g_get_monotonic_time();
		for (int i = 0; i < per_block; i++) {
			if (!call_get_state(bus, path, error))
				return FALSE;
		}
		get_us += g_get_monotonic_time() - t0;
		n_get += per_block;

		t0 = g_get_monotonic_time();
		for (int i = 0; i < per_block; i++) {
			if (!call_ping(bus, unique, error))
				return FALSE;
		}
		ping_us += g_get_monotonic_time() - t0;
		n_ping += per_block;
	}
	{
		double g = rate(n_get, get_us), p = rate(n_ping, ping_us);
		g_print("dbus Get: %.0f/s  ping: %.0f/s  ratio %.2f (target >= 0.7)  "
			"[%" G_GINT64_FORMAT " synchronous calls each via a private dbus-daemon]\n",
			g, p, p > 0 ? g / p : 0.0, n_get);
	}
	return stop_daemon(error);
}

/* "Field:  N kB" of /proc/@pid/@file, in kB; -1 when absent. */
static gint64
proc_kb(pid_t pid, const char *file, const char *field)
{
	g_autofree char *path = g_strdup_printf("/proc/%d/%s", (int)pid, file);
	g_autofree char *text = NULL;
	g_autofree char *key = g_strdup_printf("\n%s:", field);
	const char *at;

	if (!g_file_get_contents(path, &text, NULL, NULL))
		return -1;
	at = strstr(text, key);
	return at != NULL ? g_ascii_strtoll(at + strlen(key), NULL, 10) : -1;
}

static int
cmp_str(const void *a, const void *b)
{
	return g_strcmp0(*(const char *const *)a, *(const char *const *)b);
}

/* The names of @pid's threads (/proc/PID/task/TID/comm), counted: "certseald, gmain, pool x2". */
static char *
thread_names(pid_t pid)
{
	g_autofree char *path = g_strdup_printf("/proc/%d/task", (int)pid);
	g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
	g_autoptr(GHashTable) counts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autofree const char **names = NULL;
	guint n_names = 0;
	GString *out = g_string_new(NULL);
	const char *tid;

	while (dir != NULL && (tid = g_dir_read_name(dir)) != NULL) {
		g_autofree char *comm_path = g_build_filename(path, tid, "comm", NULL);
		char *comm = NULL;
		if (!g_file_get_contents(comm_path, &comm, NULL, NULL))
			continue;
		g_strchomp(comm);
		g_hash_table_insert(
		    counts, comm,
		    GUINT_TO_POINTER(GPOINTER_TO_UINT(g_hash_table_lookup(counts, comm)) + 1));
	}
	names = (const char **)g_hash_table_get_keys_as_array(counts, &n_names);
	qsort(names, n_names, sizeof(char *), cmp_str);
	for (guint i = 0; i < n_names; i++) {
		const char *name = names[i];
		guint n = GPOINTER_TO_UINT(g_hash_table_lookup(counts, name));
		if (n > 1)
			g_string_append_printf(out, "%s%s x%u", out->len > 0 ? ", " : "", name, n);
		else
			g_string_append_printf(out, "%s%s", out->len > 0 ? ", " : "", name);
	}
	return g_string_free(out, FALSE);
}

/* Wait for "READY=1" on @fd (a datagram socket); FALSE after @deadline. */
static gboolean
wait_ready_notify(int fd, gint64 deadline)
{
	char buf[4096];

	while (g_get_monotonic_time() < deadline) {
		struct pollfd p = {fd, POLLIN, 0};
		ssize_t n;
		if (poll(&p, 1, (int)MAX(1, (deadline - g_get_monotonic_time()) / 1000)) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf) - 1, 0);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		if (g_str_has_prefix(buf, "READY=1") || strstr(buf, "\nREADY=1") != NULL)
			return TRUE;
	}
	return FALSE;
}

static gboolean
name_owned(sd_bus *bus)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	g_autoptr(sd_bus_message) reply = NULL;
	int owned = 0;
	int r =
	    sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
			       "org.freedesktop.DBus", "NameHasOwner", &e, &reply, "s", BUS_NAME);

	if (r >= 0)
		r = sd_bus_message_read(reply, "b", &owned);
	sd_bus_error_free(&e);
	return r >= 0 && owned;
}

static int
cmp_gint64(gconstpointer a, gconstpointer b)
{
	gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;
	return x < y ? -1 : x > y;
}

/* The shared libraries @pid maps, one path each. */
static GPtrArray *
mapped_libraries(pid_t pid)
{
	g_autofree char *path = g_strdup_printf("/proc/%d/maps", (int)pid);
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;
	GPtrArray *libs = g_ptr_array_new_with_free_func(g_free);

	if (!g_file_get_contents(path, &text, NULL, NULL))
		return libs;
	lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		const char *file = strchr(lines[i], '/');
		gboolean seen = FALSE;
		if (file == NULL || strstr(file, ".so") == NULL)
			continue;
		for (guint j = 0; j < libs->len && !seen; j++)
			seen = g_str_equal(g_ptr_array_index(libs, j), file);
		if (!seen)
			g_ptr_array_add(libs, g_strdup(file));
	}
	return libs;
}

/*
 * A new process that loads @libs and waits: its VmRSS and Pss (kB) once loaded. It is
 * exec'd, not forked from us: a forked child shares our pages without counting them, and
 * would show less than the libraries cost. The dynamic loader among @libs runs /bin/sh
 * with every other library preloaded (ld.so --preload); the shell says it runs, then
 * waits on its stdin.
 */
static gboolean
bare_process(GPtrArray *libs, gint64 *rss, gint64 *pss)
{
	g_autoptr(GString) preload = g_string_new(NULL);
	const char *loader = NULL;
	int to_child[2], from_child[2];
	pid_t pid;
	char c;

	for (guint i = 0; i < libs->len; i++) {
		const char *lib = g_ptr_array_index(libs, i);
		if (strstr(lib, "/ld-linux") != NULL) {
			loader = lib;
			continue;
		}
		g_string_append_printf(preload, "%s%s", preload->len > 0 ? " " : "", lib);
	}
	if (loader == NULL || pipe2(to_child, O_CLOEXEC) != 0)
		return FALSE;
	if (pipe2(from_child, O_CLOEXEC) != 0) {
		close(to_child[0]);
		close(to_child[1]);
		return FALSE;
	}
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(to_child[0], STDIN_FILENO);
		dup2(from_child[1], STDOUT_FILENO);
		execl(loader, loader, "--preload", preload->str, "/bin/sh", "-c", "echo x; read y",
		      (char *)NULL);
		_exit(127);
	}
	close(to_child[0]);
	close(from_child[1]);
	if (pid < 0 || read(from_child[0], &c, 1) != 1) {
		close(to_child[1]);
		close(from_child[0]);
		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
		return FALSE;
	}
	*rss = proc_kb(pid, "status", "VmRSS");
	*pss = proc_kb(pid, "smaps_rollup", "Pss");
	close(to_child[1]);
	close(from_child[0]);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return TRUE;
}

/* (c): certseald restarted on the state directory bench_dbus() left. */
static gboolean
bench_idle(const char *build_dir, const char *dir, GError **error)
{
	g_autofree char *log_path = g_build_filename(dir, "certseald-idle.log", NULL);
	g_autofree char *sock_path = g_build_filename(dir, "notify", NULL);
	g_autofree char *address = NULL;
	g_autoptr(sd_bus) bus = NULL;
	g_autoptr(GPtrArray) libs = NULL;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	gint64 ready_us[N_STARTS], name_us[N_STARTS];
	gint64 rss = -1, pss = -1, threads = -1, bare_rss = -1, bare_pss = -1;
	g_autofree char *thread_list = NULL;
	int fd;

	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	g_strlcpy(sa.sun_path, sock_path, sizeof(sa.sun_path));
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "notify socket: %s",
			    g_strerror(errno));
		if (fd >= 0)
			close(fd);
		return FALSE;
	}
	/* The bus of (b) is still up; certseald was stopped. */
	address = g_strdup(g_getenv("CS_BENCH_BUS_ADDRESS"));
	bus = connect_bus(address, error);
	if (bus == NULL ||
	    sd_bus_match_signal(bus, NULL, "org.freedesktop.DBus", "/org/freedesktop/DBus",
				"org.freedesktop.DBus", "NameOwnerChanged", NULL, NULL) < 0) {
		if (bus != NULL)
			bus_error(error, "watching NameOwnerChanged", -EIO, NULL);
		close(fd);
		return FALSE;
	}
	for (int i = 0; i < N_STARTS; i++) {
		gint64 t0 = g_get_monotonic_time(), deadline = t0 + START_TIMEOUT_US;
		gboolean last = i == N_STARTS - 1;

		name_us[i] = -1;
		while (recv(fd, &(char){0}, 1, MSG_DONTWAIT) >= 0)
			; /* the last start's STOPPING=1 */
		if (!spawn_daemon_notify(build_dir, address, dir, log_path, sock_path, error))
			goto fail;
		/* NameOwnerChanged tells when the name is taken (before READY=1 is sent). */
		for (;;) {
			struct pollfd p[2] = {{fd, POLLIN, 0}, {sd_bus_get_fd(bus), POLLIN, 0}};
			sd_bus_message *m = NULL;
			int r;
			while ((r = sd_bus_process(bus, &m)) > 0) {
				const char *name = NULL, *old = NULL, *new_owner = NULL;
				if (m != NULL &&
				    sd_bus_message_is_signal(m, "org.freedesktop.DBus",
							     "NameOwnerChanged") > 0 &&
				    sd_bus_message_read(m, "sss", &name, &old, &new_owner) >= 0 &&
				    g_strcmp0(name, BUS_NAME) == 0 && new_owner[0] != '\0' &&
				    name_us[i] < 0)
					name_us[i] = g_get_monotonic_time() - t0;
				sd_bus_message_unref(m);
				m = NULL;
			}
			if (g_get_monotonic_time() > deadline) {
				print_log(log_path);
				g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
						    "certseald never sent READY=1");
				goto fail;
			}
			if (poll(p, 2, 100) > 0 && (p[0].revents & POLLIN) &&
			    wait_ready_notify(fd, g_get_monotonic_time() + 1000))
				break;
		}
		ready_us[i] = g_get_monotonic_time() - t0;
		while (name_us[i] < 0 && g_get_monotonic_time() < deadline) {
			sd_bus_message *m = NULL; /* the signal may come after READY=1 arrived */
			const char *name = NULL, *old = NULL, *new_owner = NULL;
			if (sd_bus_process(bus, &m) <= 0) {
				sd_bus_wait(bus, 100 * 1000);
				continue;
			}
			if (m != NULL &&
			    sd_bus_message_is_signal(m, "org.freedesktop.DBus",
						     "NameOwnerChanged") > 0 &&
			    sd_bus_message_read(m, "sss", &name, &old, &new_owner) >= 0 &&
			    g_strcmp0(name, BUS_NAME) == 0 && new_owner[0] != '\0')
				name_us[i] = g_get_monotonic_time() - t0;
			sd_bus_message_unref(m);
		}
		if (last) {
			g_usleep(IDLE_WAIT_US);
			rss = proc_kb(child_daemon, "status", "VmRSS");
			pss = proc_kb(child_daemon, "smaps_rollup", "Pss");
			threads = proc_kb(child_daemon, "status", "Threads");
			thread_list = thread_names(child_daemon);
			libs = mapped_libraries(child_daemon);
		}
		if (!stop_daemon(error))
			goto fail;
		while (name_owned(bus))
			g_usleep(2000);
	}
	close(fd);
	if (libs == NULL || !bare_process(libs, &bare_rss, &bare_pss)) {
		g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_FAILED,
				    "the bare process with certseald's libraries did not start");
		return FALSE;
	}
	qsort(ready_us, N_STARTS, sizeof(gint64), cmp_gint64);
	qsort(name_us, N_STARTS, sizeof(gint64), cmp_gint64);
	g_print("start on an existing state directory (two vendors, no key), %d starts: "
		"to READY=1 best %.1f ms, median %.1f ms (target <= 100 ms); to the bus name owned "
		"best "
		"%.1f ms, median %.1f ms\n",
		N_STARTS, ready_us[0] / 1000.0, ready_us[N_STARTS / 2] / 1000.0,
		name_us[0] / 1000.0, name_us[N_STARTS / 2] / 1000.0);
	g_print("idle 5 s after READY=1: VmRSS %.1f MB (target <= 10 MB), Pss %.1f MB, "
		"%" G_GINT64_FORMAT
		" threads (%s); a bare process mapping the same %u libraries: VmRSS %.1f MB, Pss "
		"%.1f MB (ratio RSS %.2f)\n",
		rss / 1024.0, pss / 1024.0, threads, thread_list != NULL ? thread_list : "?",
		libs->len, bare_rss / 1024.0, bare_pss / 1024.0,
		bare_rss > 0 ? (double)rss / (double)bare_rss : 0.0);
	return TRUE;
fail:
	close(fd);
	return FALSE;
}

static char *
find_build_dir(const char *argv0)
{
	const char *env = g_getenv("CS_BUILD_DIR");
	g_autofree char *dir = NULL;
	g_autofree char *up = NULL;

	if (env != NULL && *env != '\0')
		return g_strdup(env);
	/* Built as <build>/tests/bench-foundation. */
	dir = g_path_get_dirname(argv0);
	up = g_build_filename(dir, "..", NULL);
	return g_canonicalize_filename(up, NULL);
}

int
main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GOptionContext) context = NULL;
	g_autofree char *build_dir = NULL;
	g_autofree char *ledger_dir = NULL;
	g_autofree char *dbus_dir = NULL;
	gboolean ok;
	const GOptionEntry entries[] = {
	    {"iterations", 'n', 0, G_OPTION_ARG_INT, &opt_iterations,
	     "Ledger transitions and raw commits to time (default 2000)", "N"},
	    {"calls", 'c', 0, G_OPTION_ARG_INT, &opt_calls,
	     "D-Bus Get and Ping calls to time (default 20000)", "N"},
	    {NULL},
	};

	context = g_option_context_new("— certseal foundation benchmark");
	g_option_context_add_main_entries(context, entries, NULL);
	if (!g_option_context_parse(context, &argc, &argv, &error) || opt_iterations <= 0 ||
	    opt_calls <= 0) {
		g_printerr("bench-foundation: %s\n",
			   error != NULL ? error->message : "counts must be positive");
		return 2;
	}
	build_dir = find_build_dir(argv[0]);
	signal(SIGINT, on_fatal_signal);
	signal(SIGTERM, on_fatal_signal);
	signal(SIGHUP, on_fatal_signal);
	signal(SIGPIPE, SIG_IGN);
	atexit(cleanup);

	/* Short, under /tmp: the bus socket lives here (Unix socket paths ≤ ~108 bytes). */
	tmp_root = g_strdup("/tmp/csbench-XXXXXX");
	if (g_mkdtemp(tmp_root) == NULL) {
		g_printerr("bench-foundation: %s: %s\n", tmp_root, g_strerror(errno));
		g_clear_pointer(&tmp_root, g_free);
		return 1;
	}
	ledger_dir = g_build_filename(tmp_root, "a", NULL);
	dbus_dir = g_build_filename(tmp_root, "b", NULL);
	ok = g_mkdir(ledger_dir, 0700) == 0 && g_mkdir(dbus_dir, 0700) == 0;
	if (!ok) {
		g_printerr("bench-foundation: %s: %s\n", tmp_root, g_strerror(errno));
		cleanup();
		return 1;
	}
	if (!bench_ledger(ledger_dir, &error)) {
		g_printerr("bench-foundation: ledger: %s\n", error->message);
		cleanup();
		return 1;
	}
	if (!bench_dbus(build_dir, dbus_dir, &error)) {
		g_printerr("bench-foundation: dbus: %s\n", error->message);
		cleanup();
		return 1;
	}
	if (!bench_idle(build_dir, dbus_dir, &error)) {
		g_printerr("bench-foundation: idle: %s\n", error->message);
		cleanup();
		return 1;
	}
	cleanup();
	return 0;
}
