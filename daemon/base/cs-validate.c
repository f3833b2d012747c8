/*
 * cs-validate.c — field validators for everything a user or an office worker types in
 * (docs/architecture.md §6, §9).
 *
 * Invariants: every refusal is CS_ERROR_INVALID_INPUT with a short reason that never
 * repeats the value, because the value is often personal data (an ID number, a phone
 * number, a bank card) and error messages end up in logs and D-Bus replies. The callers
 * prefix the field name. The validators are strict rather than forgiving: a lowercase
 * USCC or an "x" check character is refused instead of normalised, so what the ledger
 * records is exactly what was checked.
 */
#define G_LOG_DOMAIN "certseald"

#include <string.h>

#include "certseal/plugin.h"
#include "cs-validate.h"

#define CS_USCC_LENGTH 18
#define CS_RESIDENT_ID_LENGTH 18
#define CS_EMAIL_MAX_LENGTH 254
#define CS_EMAIL_LOCAL_MAX_LENGTH 64

/* GB 32100-2015: the 31 characters a USCC may use (no I, O, S, V, Z) and the weights of
 * its first 17 positions. */
static const char uscc_charset[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";
static const guint uscc_weights[CS_USCC_LENGTH - 1] = {1,  3,  9,  27, 19, 26, 16, 17, 20,
						       29, 25, 13, 8,  24, 10, 30, 28};

/* GB 11643-1999: weights of the first 17 digits and the check character for Σ mod 11. */
static const guint resident_id_weights[CS_RESIDENT_ID_LENGTH - 1] = {7, 9, 10, 5,  8, 4, 2, 1, 6,
								     3, 7, 9,  10, 5, 8, 4, 2};
static const char resident_id_checks[] = "10X98765432";

/* People born before this year are not expected among applicants; earlier dates are typos. */
#define CS_RESIDENT_ID_MIN_YEAR 1850

static gboolean
refuse(GError **error, const char *reason)
{
	g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT, reason);
	return FALSE;
}

static gboolean
is_ascii_digits(const char *s, gsize len)
{
	for (gsize i = 0; i < len; i++) {
		if (!g_ascii_isdigit(s[i]))
			return FALSE;
	}
	return TRUE;
}

/* The value of a USCC character, or -1 when it is not in the charset. */
static int
uscc_char_value(char c)
{
	const char *p;

	if (c == '\0')
		return -1;
	p = strchr(uscc_charset, c);
	return p != NULL ? (int)(p - uscc_charset) : -1;
}

static gboolean
uscc_format_ok(const char *s)
{
	if (strlen(s) != CS_USCC_LENGTH)
		return FALSE;
	for (guint i = 0; i < CS_USCC_LENGTH; i++) {
		if (uscc_char_value(s[i]) < 0)
			return FALSE;
	}
	return TRUE;
}

static gboolean
uscc_is_listed(const char *s, const char *const *legacy)
{
	if (legacy == NULL)
		return FALSE;
	for (guint i = 0; legacy[i] != NULL; i++) {
		if (g_strcmp0(legacy[i], s) == 0)
			return TRUE;
	}
	return FALSE;
}

gboolean
cs_validate_uscc(const char *s, const char *const *legacy, GError **error)
{
	guint sum = 0;

	if (s == NULL || *s == '\0')
		return refuse(error, "must not be empty");
	if (!uscc_format_ok(s))
		return refuse(error, "must be 18 characters of 0-9 and uppercase A-Z "
				     "without I, O, S, V, Z");
	for (guint i = 0; i < CS_USCC_LENGTH - 1; i++)
		sum += (guint)uscc_char_value(s[i]) * uscc_weights[i];
	if (s[CS_USCC_LENGTH - 1] == uscc_charset[(31 - sum % 31) % 31])
		return TRUE;

	/* Some codes issued during the pilot years fail the check; the platform accepts
	 * exactly those listed in the configuration, and nothing else. */
	if (uscc_is_listed(s, legacy))
		return TRUE;
	return refuse(error, "bad check character");
}

/* Parses "YYYY-MM-DD" (or, with @dashes FALSE, "YYYYMMDD") into @date; FALSE when it is not
 * a date that exists. */
static gboolean
parse_date(const char *s, gboolean dashes, GDate *date)
{
	guint year, month, day;

	if (dashes) {
		if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' || !is_ascii_digits(s, 4) ||
		    !is_ascii_digits(s + 5, 2) || !is_ascii_digits(s + 8, 2))
			return FALSE;
		year = (guint)g_ascii_strtoull(s, NULL, 10);
		month = (guint)g_ascii_strtoull(s + 5, NULL, 10);
		day = (guint)g_ascii_strtoull(s + 8, NULL, 10);
	} else {
		char buf[9];

		memcpy(buf, s, 8);
		buf[8] = '\0';
		day = (guint)g_ascii_strtoull(buf + 6, NULL, 10);
		buf[6] = '\0';
		month = (guint)g_ascii_strtoull(buf + 4, NULL, 10);
		buf[4] = '\0';
		year = (guint)g_ascii_strtoull(buf, NULL, 10);
	}
	if (year == 0 || year > G_MAXUINT16 || !g_date_valid_dmy(day, month, year))
		return FALSE;
	g_date_clear(date, 1);
	g_date_set_dmy(date, day, month, year);
	return TRUE;
}

static gboolean
get_today(const char *today, GDate *date, GError **error)
{
	g_autoptr(GDateTime) now = NULL;

	if (today != NULL) {
		if (!parse_date(today, TRUE, date)) {
			/* A caller's mistake, not the user's: say so. */
			g_set_error_literal(error, CS_ERROR, CS_ERROR_INTERNAL,
					    "today is not a YYYY-MM-DD date");
			return FALSE;
		}
		return TRUE;
	}
	now = g_date_time_new_now_local();
	g_date_clear(date, 1);
	g_date_set_dmy(date, (GDateDay)g_date_time_get_day_of_month(now),
		       (GDateMonth)g_date_time_get_month(now),
		       (GDateYear)g_date_time_get_year(now));
	return TRUE;
}

gboolean
cs_validate_resident_id(const char *s, const char *today, GError **error)
{
	GDate birth, now;
	guint sum = 0;

	if (s == NULL || *s == '\0')
		return refuse(error, "must not be empty");
	if (strlen(s) != CS_RESIDENT_ID_LENGTH || !is_ascii_digits(s, CS_RESIDENT_ID_LENGTH - 1))
		return refuse(error, "must be 17 digits followed by a digit or X");
	if (s[CS_RESIDENT_ID_LENGTH - 1] == 'x')
		return refuse(error, "the check character X must be uppercase");
	if (!g_ascii_isdigit(s[CS_RESIDENT_ID_LENGTH - 1]) && s[CS_RESIDENT_ID_LENGTH - 1] != 'X')
		return refuse(error, "must be 17 digits followed by a digit or X");

	for (guint i = 0; i < CS_RESIDENT_ID_LENGTH - 1; i++)
		sum += (guint)(s[i] - '0') * resident_id_weights[i];
	if (s[CS_RESIDENT_ID_LENGTH - 1] != resident_id_checks[sum % 11])
		return refuse(error, "bad check character");

	/* Positions 7–14 are the birth date; the reason does not repeat it (personal data). */
	if (!parse_date(s + 6, FALSE, &birth))
		return refuse(error, "birth date does not exist");
	if (!get_today(today, &now, error))
		return FALSE;
	if (g_date_get_year(&birth) < CS_RESIDENT_ID_MIN_YEAR)
		return refuse(error, "birth date is implausibly early");
	if (g_date_compare(&birth, &now) > 0)
		return refuse(error, "birth date is in the future");
	return TRUE;
}

#define CS_PHONE_FORMAT_REASON "must be a mainland mobile number: 11 digits starting with 13 to 19"

gboolean
cs_validate_phone(const char *s, char **normalized, GError **error)
{
	g_autoptr(GString) digits = NULL;

	if (s == NULL || *s == '\0')
		return refuse(error, "must not be empty");

	/* Spaces and dashes are how people group digits when they type; a "+" is only
	 * meaningful as the start of "+86". */
	digits = g_string_new(NULL);
	for (const char *p = s; *p != '\0'; p++) {
		if (*p == ' ' || *p == '-')
			continue;
		if (!(g_ascii_isdigit(*p) || (*p == '+' && digits->len == 0)) || digits->len > 16)
			return refuse(error, CS_PHONE_FORMAT_REASON);
		g_string_append_c(digits, *p);
	}
	if (g_str_has_prefix(digits->str, "+86"))
		g_string_erase(digits, 0, 3);
	else if (digits->len == 13 && g_str_has_prefix(digits->str, "86"))
		g_string_erase(digits, 0, 2);

	if (digits->len != 11 || !is_ascii_digits(digits->str, digits->len) ||
	    digits->str[0] != '1' || digits->str[1] < '3')
		return refuse(error, CS_PHONE_FORMAT_REASON);
	if (normalized != NULL)
		*normalized = g_string_free(g_steal_pointer(&digits), FALSE);
	return TRUE;
}

gboolean
cs_validate_bank_card(const char *s, GError **error)
{
	gsize len;

	if (s == NULL || *s == '\0')
		return refuse(error, "must not be empty");
	len = strlen(s);
	if (len < 12 || len > 19 || !is_ascii_digits(s, len))
		return refuse(error, "must be 12 to 19 digits");
	return TRUE;
}

gboolean
cs_luhn_ok(const char *digits)
{
	guint sum = 0;
	gsize len;

	if (digits == NULL || *digits == '\0')
		return FALSE;
	len = strlen(digits);
	if (!is_ascii_digits(digits, len))
		return FALSE;
	/* From the right: every second digit is doubled, and 10–18 count as their digit sum. */
	for (gsize i = 0; i < len; i++) {
		guint d = (guint)(digits[len - 1 - i] - '0');

		if (i % 2 == 1) {
			d *= 2;
			if (d > 9)
				d -= 9;
		}
		sum += d;
	}
	return sum % 10 == 0;
}

gboolean
cs_validate_bank_account(const char *s, GError **error)
{
	guint n_digits = 0;
	gsize len;

	if (s == NULL || *s == '\0')
		return refuse(error, "must not be empty");
	len = strlen(s);
	for (gsize i = 0; i < len; i++) {
		if (g_ascii_isdigit(s[i]))
			n_digits++;
		else if (s[i] != ' ' && s[i] != '-')
			return refuse(error, "must contain only digits, spaces and dashes");
	}
	if (len < 6 || len > 34 || n_digits < 6)
		return refuse(error, "must be 6 to 34 characters with at least 6 digits");
	return TRUE;
}

/* Characters that print as nothing although Unicode does not class them as spaces or format
 * characters: the Hangul fillers, the braille blank, the combining grapheme joiner. A name
 * made only of these (or of spaces, or of combining marks with nothing to combine with)
 * reads as blank on a certificate. */
static gboolean
is_filler_char(gunichar c)
{
	return c == 0x115F || c == 0x1160 || c == 0x3164 || c == 0xFFA0 || c == 0x2800 ||
	       c == 0x034F || g_unichar_isspace(c) ||
	       g_unichar_type(c) == G_UNICODE_SPACE_SEPARATOR;
}

static gboolean
is_blank_char(gunichar c)
{
	GUnicodeType type = g_unichar_type(c);

	return is_filler_char(c) || type == G_UNICODE_NON_SPACING_MARK ||
	       type == G_UNICODE_SPACING_MARK || type == G_UNICODE_ENCLOSING_MARK;
}

/* Bidi controls and zero-width characters make a value display as another one;
 * private-use and unassigned characters cannot be printed reliably. */
static gboolean
is_invisible_char(gunichar c)
{
	GUnicodeType type = g_unichar_type(c);

	return type == G_UNICODE_FORMAT || type == G_UNICODE_PRIVATE_USE ||
	       type == G_UNICODE_UNASSIGNED || type == G_UNICODE_SURROGATE;
}

static gboolean
email_domain_ok(const char *domain)
{
	const char *dot = strchr(domain, '.');

	/* One dot at least, and no empty label: "a..b", ".a" and "a." are typos. */
	if (*domain == '\0' || dot == NULL)
		return FALSE;
	if (domain[0] == '.' || g_str_has_suffix(domain, ".") || strstr(domain, "..") != NULL)
		return FALSE;
	return TRUE;
}

gboolean
cs_validate_email(const char *s, GError **error)
{
	const char *at;
	const char *p;

	if (s == NULL || *s == '\0')
		return refuse(error, "must not be empty");
	if (strlen(s) > CS_EMAIL_MAX_LENGTH)
		return refuse(error, "must be at most 254 bytes");
	if (!g_utf8_validate(s, -1, NULL))
		return refuse(error, "must be valid UTF-8");
	for (p = s; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);

		if (g_unichar_isspace(c) || g_unichar_iscntrl(c))
			return refuse(error, "must not contain spaces or control characters");
		if (is_invisible_char(c) || is_filler_char(c))
			return refuse(error,
				      "must not contain invisible or bidi control characters");
	}
	at = strchr(s, '@');
	if (at == NULL || strchr(at + 1, '@') != NULL)
		return refuse(error, "must contain exactly one @");
	if (at == s || at - s > CS_EMAIL_LOCAL_MAX_LENGTH)
		return refuse(error, "the part before @ must be 1 to 64 bytes");
	if (!email_domain_ok(at + 1))
		return refuse(error, "the part after @ must be a domain name such as example.cn");
	return TRUE;
}

gboolean
cs_validate_postcode(const char *s, GError **error)
{
	if (s == NULL || strlen(s) != 6 || !is_ascii_digits(s, 6))
		return refuse(error, "must be 6 digits");
	return TRUE;
}

gboolean
cs_validate_text(const char *s, guint max_chars, GError **error)
{
	g_autofree char *reason = NULL;
	guint n_chars = 0;
	gboolean visible = FALSE;

	if (max_chars == 0)
		max_chars = CS_TEXT_DEFAULT_MAX_CHARS;
	if (s == NULL || *s == '\0')
		return refuse(error, "must not be empty");
	if (!g_utf8_validate(s, -1, NULL))
		return refuse(error, "must be valid UTF-8");
	for (const char *p = s; *p != '\0'; p = g_utf8_next_char(p)) {
		/* Control characters (newlines included) would forge log lines and break the
		 * one-line fields of certificates, invoices and forms. */
		gunichar c = g_utf8_get_char(p);
		GUnicodeType type = g_unichar_type(c);

		if (g_unichar_iscntrl(c) || type == G_UNICODE_LINE_SEPARATOR ||
		    type == G_UNICODE_PARAGRAPH_SEPARATOR)
			return refuse(error, "must not contain control characters or line breaks");
		if (is_invisible_char(c))
			return refuse(
			    error,
			    "must not contain invisible, private-use or unassigned characters");
		if (!is_blank_char(c))
			visible = TRUE;
		n_chars++;
	}
	if (!visible)
		return refuse(error, "must contain a visible character, not only blanks");
	if (n_chars > max_chars) {
		reason = g_strdup_printf("must be at most %u characters", max_chars);
		return refuse(error, reason);
	}
	return TRUE;
}

char *
cs_mask_phone(const char *normalized)
{
	gsize len;
	GString *masked;

	if (normalized == NULL)
		return g_strdup("");
	len = strlen(normalized);
	/* Keep the carrier prefix and the last four digits, as bank and telecom SMS do; a
	 * value too short for that is masked entirely rather than half shown. */
	if (len < 8)
		return g_strnfill(len, '*');
	masked = g_string_new_len(normalized, 3);
	for (gsize i = 3; i < len - 4; i++)
		g_string_append_c(masked, '*');
	g_string_append(masked, normalized + len - 4);
	return g_string_free(masked, FALSE);
}

static void
append_escaped_char(GString *out, const char *p, gunichar c, gboolean quoting)
{
	GUnicodeType type = g_unichar_type(c);

	if (c == (gunichar)-1 || c == (gunichar)-2)
		g_string_append_printf(out, "\\x%02x", (guint8)*p);
	else if (c < 0x80 && (g_ascii_iscntrl((char)c)))
		g_string_append_printf(out, "\\x%02x", c);
	else if (g_unichar_iscntrl(c) || type == G_UNICODE_FORMAT ||
		 type == G_UNICODE_LINE_SEPARATOR || type == G_UNICODE_PARAGRAPH_SEPARATOR ||
		 type == G_UNICODE_SURROGATE || type == G_UNICODE_PRIVATE_USE ||
		 type == G_UNICODE_UNASSIGNED)
		g_string_append_printf(out, "\\u%04x", c);
	else if (c == '\\' && quoting)
		g_string_append(out, "\\\\");
	else
		g_string_append_unichar(out, c);
}

/* Escape @s, at most @max_chars characters of it; TRUE when all of it fitted. A quoted
 * value escapes its backslashes too, so that an escape in it reads as one; a whole message
 * (which may hold quoted values already) does not. */
static gboolean
append_escaped_text(GString *out, const char *s, guint max_chars, gboolean quoting)
{
	guint n = 0;

	for (const char *p = s; *p != '\0'; n++) {
		gunichar c = g_utf8_get_char_validated(p, -1);

		if (n == max_chars)
			return FALSE;
		append_escaped_char(out, p, c, quoting);
		p = c == (gunichar)-1 || c == (gunichar)-2 ? p + 1 : g_utf8_next_char(p);
	}
	return TRUE;
}

char *
cs_quote_value(const char *s)
{
	GString *out;

	if (s == NULL)
		return g_strdup("(null)");
	out = g_string_new(NULL);
	if (!append_escaped_text(out, s, CS_QUOTE_MAX_CHARS, TRUE))
		g_string_append_printf(out, "… (%" G_GSIZE_FORMAT " bytes)", strlen(s));
	return g_string_free(out, FALSE);
}

char *
cs_sanitize_message(const char *message, guint max_chars)
{
	GString *out;

	if (message == NULL)
		return g_strdup("");
	out = g_string_new(NULL);
	if (!append_escaped_text(out, message, max_chars != 0 ? max_chars : 1024, FALSE))
		g_string_append(out, "…");
	return g_string_free(out, FALSE);
}
