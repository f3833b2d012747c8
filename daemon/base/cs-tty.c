/*
 * cs-tty.c — secrets from the terminal without echo, or a line of stdin (cs-tty.h).
 *
 * The buffer a line passes through is wiped before it is released; echo is restored
 * whatever was read, and when a signal ends the process at the prompt (Ctrl-C).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cs-tty.h"

#define CS_TTY_LINE_MAX 4096

/* The signals that end a process at a prompt; while echo is off each first restores the
 * terminal, then takes its default course (SA_RESETHAND, raised again on return). */
static const int quitting[] = {SIGINT, SIGTERM, SIGQUIT, SIGHUP};
static struct termios echoing; /* the terminal as it was, for the handler */

static void
on_quit(int sig)
{
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &echoing);
	(void)!write(STDERR_FILENO, "\n", 1);
	raise(sig);
}

static void
guard_echo(const struct termios *old, struct sigaction saved[G_N_ELEMENTS(quitting)])
{
	struct sigaction sa = {.sa_handler = on_quit, .sa_flags = SA_RESETHAND};

	echoing = *old;
	sigemptyset(&sa.sa_mask);
	for (gsize i = 0; i < G_N_ELEMENTS(quitting); i++)
		sigaction(quitting[i], &sa, &saved[i]);
}

static void
unguard_echo(const struct sigaction saved[G_N_ELEMENTS(quitting)])
{
	for (gsize i = 0; i < G_N_ELEMENTS(quitting); i++)
		sigaction(quitting[i], &saved[i], NULL);
}

gboolean
cs_tty_is_terminal(void)
{
	return isatty(STDIN_FILENO);
}

char *
cs_tty_read_secret_max(const char *prompt, gsize max_chars, gboolean *too_long)
{
	struct termios old, quiet;
	struct sigaction saved[G_N_ELEMENTS(quitting)];
	gboolean tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
	char buf[CS_TTY_LINE_MAX + 2];
	gboolean cut = FALSE;
	char *line;
	gsize len;
	int c;

	max_chars = MIN(max_chars, (gsize)CS_TTY_LINE_MAX);
	if (too_long != NULL)
		*too_long = FALSE;
	/* Never echoed on a terminal, --json or not (the prompt goes to stderr either way). */
	/* Echo goes off before the prompt shows, so nothing typed after it is echoed. */
	if (tty) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		guard_echo(&old, saved);
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
		g_printerr("%s: ", prompt);
	}
	line = fgets(buf, (int)max_chars + 2, stdin);
	len = line != NULL ? strcspn(buf, "\n") : 0;
	if (line != NULL && buf[len] != '\n' && len > max_chars) {
		/* More than max_chars before the line end: read the rest of the line away. */
		cut = TRUE;
		while ((c = getchar()) != EOF && c != '\n')
			;
	}
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		unguard_echo(saved);
		g_printerr("\n");
	}
	if (line == NULL) {
		explicit_bzero(buf, sizeof(buf));
		return NULL;
	}
	if (cut && too_long != NULL) {
		*too_long = TRUE;
		explicit_bzero(buf, sizeof(buf));
		return NULL;
	}
	buf[MIN(strcspn(buf, "\r\n"), max_chars)] = '\0';
	line = g_strdup(buf);
	explicit_bzero(buf, sizeof(buf));
	return line;
}

char *
cs_tty_read_secret(const char *prompt)
{
	return cs_tty_read_secret_max(prompt, CS_TTY_SECRET_MAX, NULL);
}

void
cs_tty_free_secret(char *secret)
{
	if (secret != NULL)
		explicit_bzero(secret, strlen(secret));
	g_free(secret);
}

void
cs_tty_unbuffer_stdin(void)
{
	setvbuf(stdin, NULL, _IONBF, 0);
}
