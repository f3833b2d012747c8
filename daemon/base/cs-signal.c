/*
 * cs-signal.c — Unix signals on the main loop without GLib's worker thread (cs-signal.h).
 *
 * Invariants:
 * - The handler only write()s to the signal's pipe and keeps errno: async-signal-safe.
 * - The handler is installed before cs_signal_add() returns and restored to the default
 *   before the pipe is closed, so no delivery writes to a closed (or reused) descriptor.
 */
#define G_LOG_DOMAIN "certseald"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "cs-signal.h"

typedef struct {
	int signum;
	int fds[2];
	GSourceFunc func;
	gpointer user_data;
} SignalWatch;

/* The write end of each watched signal's pipe; -1 when not watched. */
static volatile int signal_pipe[NSIG] = {[0 ... NSIG - 1] = -1};

static void
on_signal(int signum)
{
	int saved = errno;
	int fd = signal_pipe[signum];

	if (fd >= 0)
		(void)!write(fd, "", 1);
	errno = saved;
}

static gboolean
on_pipe(gint fd, GIOCondition condition, gpointer user_data)
{
	SignalWatch *w = user_data;
	char buf[64];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	return w->func(w->user_data);
}

static void
signal_watch_free(gpointer data)
{
	SignalWatch *w = data;
	struct sigaction action = {.sa_handler = SIG_DFL};

	sigemptyset(&action.sa_mask);
	sigaction(w->signum, &action, NULL);
	signal_pipe[w->signum] = -1;
	close(w->fds[0]);
	close(w->fds[1]);
	g_free(w);
}

guint
cs_signal_add(int signum, GSourceFunc func, gpointer user_data)
{
	SignalWatch *w;
	struct sigaction action = {.sa_handler = on_signal, .sa_flags = SA_RESTART | SA_NOCLDSTOP};

	g_return_val_if_fail(signum > 0 && signum < NSIG, 0);
	g_return_val_if_fail(signal_pipe[signum] < 0, 0);
	w = g_new0(SignalWatch, 1);
	w->signum = signum;
	w->func = func;
	w->user_data = user_data;
	if (pipe2(w->fds, O_CLOEXEC | O_NONBLOCK) != 0)
		g_error("cs_signal_add: pipe2: %s", g_strerror(errno));
	signal_pipe[signum] = w->fds[1];
	sigemptyset(&action.sa_mask);
	if (sigaction(signum, &action, NULL) != 0)
		g_error("cs_signal_add: sigaction(%d): %s", signum, g_strerror(errno));
	return g_unix_fd_add_full(G_PRIORITY_DEFAULT, w->fds[0], G_IO_IN, on_pipe, w,
				  signal_watch_free);
}
