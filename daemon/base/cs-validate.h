/*
 * cs-validate.h — field validators (docs/architecture.md §6, §9).
 *
 * Each returns FALSE with CS_ERROR_INVALID_INPUT and a reason that does not repeat the
 * value (it may be personal data): "bad check character", "birth date 1949-02-29 does not
 * exist", …. Callers prefix the field name: "uscc: bad check character".
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* GB 32100-2015; @legacy lists codes accepted although they fail the check (may be NULL). */
gboolean cs_validate_uscc(const char *s, const char *const *legacy, GError **error);

/* GB 11643-1999: format, check digit, an existing birth date not after @today
 * (a "YYYY-MM-DD" date; NULL = the local date now). */
gboolean cs_validate_resident_id(const char *s, const char *today, GError **error);

/* ^1[3-9][0-9]{9}$ after stripping "+86"/"86" and spaces or dashes; the normalised
 * 11-digit number in @normalized when non-NULL. */
gboolean cs_validate_phone(const char *s, char **normalized, GError **error);

/* Digits only, 12–19 long. Luhn is separate: a failure is a warning, not a refusal. */
gboolean cs_validate_bank_card(const char *s, GError **error);
gboolean cs_luhn_ok(const char *digits);

/* Digits, spaces and dashes, 6–34 long. */
gboolean cs_validate_bank_account(const char *s, GError **error);

gboolean cs_validate_email(const char *s, GError **error);
gboolean cs_validate_postcode(const char *s, GError **error);

/* The length a text field may have when its flow sets none. */
#define CS_TEXT_DEFAULT_MAX_CHARS 256

/* Valid UTF-8, no control characters, 1 … @max_chars characters (0 = CS_TEXT_DEFAULT_MAX_CHARS). */
gboolean cs_validate_text(const char *s, guint max_chars, GError **error);

/* How many characters of a bad value an error quotes. */
#define CS_QUOTE_MAX_CHARS 64

/*
 * A value from outside made fit to quote in an error or a log line: at most
 * CS_QUOTE_MAX_CHARS characters, then "…" and the length in bytes; control characters,
 * line breaks, bidi and other format characters written as \x1b or \u202e, bytes that are
 * not UTF-8 as \xff. NULL gives "(null)". An error must never hand back a megabyte of
 * input or an escape sequence a terminal would obey.
 */
char *cs_quote_value(const char *s);

/* @message with cs_quote_value()'s escaping, cut at @max_chars characters (0 = 1024): the
 * last guard of the fronts before an error leaves the daemon. */
char *cs_sanitize_message(const char *message, guint max_chars);

/* A phone number masked for display: 138****5678. */
char *cs_mask_phone(const char *normalized);

G_END_DECLS
