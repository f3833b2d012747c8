/*
 * cs-tty.h — reading a secret (a PIN, a code, a passphrase) the way every certseal tool
 * does: from the terminal without echo, the prompt on stderr, or as one line of stdin
 * when stdin is not a terminal (scripts). Never from argv.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Secrets longer than this are cut (a PIN or code); cs_tty_read_secret_max() takes more. */
#define CS_TTY_SECRET_MAX 255

/* One secret line without its line end; NULL at end of input. Free with
 * cs_tty_free_secret(). A line longer than CS_TTY_SECRET_MAX characters is cut there. */
char *cs_tty_read_secret(const char *prompt);
/* The same for lines of up to @max_chars (at most 4096): a longer line is read whole and
 * thrown away, *@too_long set and NULL returned. */
char *cs_tty_read_secret_max(const char *prompt, gsize max_chars, gboolean *too_long);
/* TRUE when secrets come from a terminal (so a new one can be asked twice). */
gboolean cs_tty_is_terminal(void);
void cs_tty_free_secret(char *secret);
/* Before a tool's first read of stdin: stdin unbuffered, so that no stdio buffer (which is
 * never wiped) keeps a secret line after cs_tty_free_secret() wiped its copy. */
void cs_tty_unbuffer_stdin(void);

G_END_DECLS
