/*
 * cs-daemon.h — certseald's parts put together: configuration, vault, ledger, engine,
 * plugins, drivers and the D-Bus front, started and stopped in a fixed order.
 */
#pragma once

#include <glib.h>

#include "cs-dbus.h"

G_BEGIN_DECLS

typedef struct {
	const char *config_path; /* NULL: defaults only */
	const char *state_dir;	 /* NULL: from the configuration */
	CsBusType bus_type;
} CsDaemonOptions;

typedef struct _CsDaemon CsDaemon;

/* Load the configuration and vendor profiles, open the vault and the ledger (verifying
 * it), load plugins and drivers, and recover transient states. Any failure here is fatal
 * and its message names the file and the problem. */
CsDaemon *cs_daemon_new(const CsDaemonOptions *options, GError **error);
/* Export on D-Bus, own the name, tell systemd READY=1, and run until SIGTERM/SIGINT. */
gboolean cs_daemon_run(CsDaemon *daemon, GError **error);
void cs_daemon_free(CsDaemon *daemon);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsDaemon, cs_daemon_free)

CsEngine *cs_daemon_get_engine(CsDaemon *daemon);
extern gpointer cs_daemon_busy[2];
CsLedger *cs_daemon_get_ledger(CsDaemon *daemon);

G_END_DECLS
