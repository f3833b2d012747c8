/*
 * cs-clock.c — the business clock (see cs-clock.h): the wall clock plus an offset that only
 * test mode may set, once, at start-up, before any worker thread exists; afterwards it is
 * only read.
 */
#define G_LOG_DOMAIN "certseald"

#include "certseal/plugin.h"
#include "cs-clock.h"

static gint64 clock_offset_us;

gint64
cs_clock_get_offset(void)
{
	return clock_offset_us;
}

void
cs_clock_set_offset_for_test(gint64 offset_us)
{
	clock_offset_us = offset_us;
}

gint64
cs_clock_now_us(void)
{
	return g_get_real_time() + cs_clock_get_offset();
}

gint64
cs_clock_now(void)
{
	return cs_clock_now_us() / G_USEC_PER_SEC;
}

GDateTime *
cs_clock_now_local(void)
{
	return g_date_time_new_from_unix_local(cs_clock_now());
}

/* "+Nd" / "-Nd": whole days, at most 100 years either way. */
static gboolean
parse_days(const char *value, gint64 *days)
{
	char *end = NULL;
	gint64 n;

	if ((value[0] != '+' && value[0] != '-') || !g_ascii_isdigit(value[1]))
		return FALSE;
	n = g_ascii_strtoll(value + 1, &end, 10);
	if (end == NULL || g_strcmp0(end, "d") != 0 || n > 36600)
		return FALSE;
	*days = value[0] == '-' ? -n : n;
	return TRUE;
}

gboolean
cs_clock_parse_offset(const char *value, gint64 real_now_us, gint64 *offset_us, GError **error)
{
	g_autoptr(GTimeZone) utc = g_time_zone_new_utc();
	g_autoptr(GDateTime) at = NULL;
	gint64 days = 0;

	if (value == NULL || *value == '\0') {
		*offset_us = 0;
		return TRUE;
	}
	if (parse_days(value, &days)) {
		*offset_us = days * G_GINT64_CONSTANT(86400) * G_USEC_PER_SEC;
		return TRUE;
	}
	at = g_date_time_new_from_iso8601(value, utc);
	if (at == NULL) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "%s: \"%s\" is neither an ISO-8601 date-time (2027-10-01T09:00:00Z) "
			    "nor a day offset (+30d, -30d)",
			    CS_CLOCK_ENV, value);
		return FALSE;
	}
	*offset_us = g_date_time_to_unix(at) * G_USEC_PER_SEC + g_date_time_get_microsecond(at) -
		     real_now_us;
	return TRUE;
}

gboolean
cs_clock_init(gboolean test_mode, const char *value, GError **error)
{
	gint64 offset = 0;
	g_autoptr(GDateTime) now = NULL;
	g_autofree char *text = NULL;

	cs_clock_set_offset_for_test(0);
	if (value == NULL || *value == '\0')
		return TRUE;
	if (!test_mode) {
		g_warning("%s is set but test_mode is off: ignored; business dates follow the "
			  "system clock",
			  CS_CLOCK_ENV);
		return TRUE;
	}
	if (!cs_clock_parse_offset(value, g_get_real_time(), &offset, error))
		return FALSE;
	cs_clock_set_offset_for_test(offset);
	now = g_date_time_new_from_unix_utc(cs_clock_now());
	text = g_date_time_format_iso8601(now);
	g_message("test mode: %s=%s moves business dates to %s (offset %+" G_GINT64_FORMAT
		  " s); timeouts and leases keep the system clock",
		  CS_CLOCK_ENV, value, text, offset / G_USEC_PER_SEC);
	return TRUE;
}
