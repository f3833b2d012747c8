/*
 * cs-workdays.c — working-day arithmetic for review deadlines.
 *
 * A day is a working day when it is Monday to Friday and not a listed holiday, or when it
 * is a listed make-up working day (China moves weekend days around public holidays). The
 * lists are configuration, so a deadline never depends on a built-in calendar going stale.
 */
#include <string.h>

#include "certseal/plugin.h"
#include "cs-workdays.h"

static gboolean
parse_date(const char *s, int *y, int *m, int *d)
{
	if (s == NULL || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return FALSE;
	for (int i = 0; i < 10; i++) {
		if (i != 4 && i != 7 && !g_ascii_isdigit(s[i]))
			return FALSE;
	}
	*y = atoi(s);
	*m = atoi(s + 5);
	*d = atoi(s + 8);
	return g_date_valid_dmy((GDateDay)*d, (GDateMonth)*m, (GDateYear)*y);
}

static gboolean
validate_list(const char *const *list, const char *what, GError **error)
{
	int y, m, d;

	for (guint i = 0; list != NULL && list[i] != NULL; i++) {
		if (!parse_date(list[i], &y, &m, &d)) {
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "%s: '%s' is not an existing YYYY-MM-DD date", what, list[i]);
			return FALSE;
		}
	}
	return TRUE;
}

gboolean
cs_calendar_validate(const CsCalendar *calendar, GError **error)
{
	return validate_list(calendar->holidays, "holidays", error) &&
	       validate_list(calendar->extra_workdays, "extra_workdays", error);
}

static gboolean
listed(const char *const *list, const char *day)
{
	return list != NULL && g_strv_contains(list, day);
}

gboolean
cs_calendar_is_workday(const CsCalendar *calendar, GDateTime *date)
{
	g_autofree char *day = g_date_time_format(date, "%Y-%m-%d");
	int weekday = g_date_time_get_day_of_week(date); /* 1 = Monday … 7 = Sunday */

	if (listed(calendar->extra_workdays, day))
		return TRUE;
	if (weekday >= 6)
		return FALSE;
	return !listed(calendar->holidays, day);
}

GDateTime *
cs_calendar_due_by(const CsCalendar *calendar, GDateTime *start, guint working_days)
{
	/* Walk whole days from local noon, which no DST change can push into another day. */
	g_autoptr(GDateTime) day =
	    g_date_time_new_local(g_date_time_get_year(start), g_date_time_get_month(start),
				  g_date_time_get_day_of_month(start), 12, 0, 0);
	guint counted = 0;

	while (counted < working_days) {
		GDateTime *next = g_date_time_add_days(day, 1);
		g_date_time_unref(day);
		day = next;
		if (cs_calendar_is_workday(calendar, day))
			counted++;
	}
	return g_date_time_new_local(g_date_time_get_year(day), g_date_time_get_month(day),
				     g_date_time_get_day_of_month(day), 23, 59, 59);
}
