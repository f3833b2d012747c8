/*
 * fuzz-validate.c — libFuzzer target for the field validators the D-Bus front applies to
 * every a{sv} value (docs/architecture.md §6), and for the quoting of bad values in errors.
 *
 * The first byte picks the validator, the rest is the value (cut at its first NUL, as a
 * D-Bus string would be). Whatever the bytes, a validator answers yes or no with an error,
 * and a quoted value is short, valid UTF-8 and free of control characters.
 */
#define G_LOG_DOMAIN "fuzz-validate"

#include <glib.h>
#include <string.h>

#include "cs-validate.h"

int LLVMFuzzerTestOneInput(const guint8 *data, size_t size);

static void
check_quoted(const char *value)
{
	char *quoted = cs_quote_value(value);
	char *message = cs_sanitize_message(value, 0);

	g_assert(g_utf8_validate(quoted, -1, NULL));
	g_assert(g_utf8_strlen(quoted, -1) <= CS_QUOTE_MAX_CHARS * 6 + 40);
	for (const char *p = quoted; *p != '\0'; p++)
		g_assert((guchar)*p >= 0x20 && *p != 0x7f);
	g_assert(g_utf8_validate(message, -1, NULL));
	for (const char *p = message; *p != '\0'; p++)
		g_assert((guchar)*p >= 0x20 && *p != 0x7f);
	g_free(quoted);
	g_free(message);
}

int
LLVMFuzzerTestOneInput(const guint8 *data, size_t size)
{
	char *value;
	char *normalized = NULL;
	GError *error = NULL;
	gboolean ok = FALSE;

	if (size == 0)
		return 0;
	value = g_strndup((const char *)data + 1, size - 1);
	switch (data[0] % 9) {
	case 0:
		ok = cs_validate_uscc(value, NULL, &error);
		break;
	case 1:
		ok = cs_validate_resident_id(value, "2026-12-03", &error);
		break;
	case 2:
		ok = cs_validate_phone(value, &normalized, &error);
		if (ok) {
			char *masked = cs_mask_phone(normalized);
			g_free(masked);
		}
		break;
	case 3:
		ok = cs_validate_bank_card(value, &error);
		if (ok)
			(void)cs_luhn_ok(value);
		break;
	case 4:
		ok = cs_validate_bank_account(value, &error);
		break;
	case 5:
		ok = cs_validate_email(value, &error);
		break;
	case 6:
		ok = cs_validate_postcode(value, &error);
		break;
	case 7:
		ok = cs_validate_text(value, (guint)(size % 300), &error);
		break;
	default:
		ok = TRUE;
		check_quoted(value);
		break;
	}
	g_assert(ok == (error == NULL));
	if (error != NULL) {
		check_quoted(error->message);
		g_error_free(error);
	}
	g_free(normalized);
	g_free(value);
	return 0;
}
