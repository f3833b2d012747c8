/*
 * cs-signal.h — a Unix signal handled on the main loop, like g_unix_signal_add(), without
 * GLib's worker thread: g_unix_signal_add() starts the "gmain" thread that dispatches
 * signals, which an idle daemon has no other use for. Here the signal handler writes one
 * byte to a pipe and the pipe is a source on the default main context.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Calls @func(@user_data) on the default main context after each delivery of @signum
 * (deliveries between two dispatches may be merged into one call, as with GLib's). One
 * source a signal at a time. Returns the source id: g_source_remove() it, or return
 * G_SOURCE_REMOVE from @func; then the signal's default action is restored. */
guint cs_signal_add(int signum, GSourceFunc func, gpointer user_data);

G_END_DECLS
