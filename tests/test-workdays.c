/*
 * test-workdays.c — review deadlines: weekends skipped, listed holidays skipped, listed
 * make-up working days counted, the arrival day never counted, month and year rollover.
 */
#include "certseal/plugin.h"
#include "cs-workdays.h"

static void
assert_due(const CsCalendar *cal, int y, int m, int d, int hour, guint days, const char *expected)
{
	g_autoptr(GDateTime) start = g_date_time_new_local(y, m, d, hour, 30, 0);
	g_autoptr(GDateTime) due = cs_calendar_due_by(cal, start, days);
	g_autofree char *s = g_date_time_format(due, "%Y-%m-%d %H:%M:%S");

	g_assert_cmpstr(s, ==, expected);
}

static void
test_weekends_skipped(void)
{
	CsCalendar plain = {NULL, NULL};

	/* Friday 27 Nov 2026: org 5 working days → the next Friday; person 3 → Wednesday. */
	assert_due(&plain, 2026, 11, 27, 10, 5, "2026-12-04 23:59:59");
	assert_due(&plain, 2026, 11, 27, 17, 3, "2026-12-02 23:59:59");
	/* Arriving on Saturday or Sunday counts from Monday. */
	assert_due(&plain, 2026, 11, 28, 9, 3, "2026-12-02 23:59:59");
	assert_due(&plain, 2026, 11, 29, 23, 1, "2026-11-30 23:59:59");
	/* Monday late in the evening: the day itself never counts. */
	assert_due(&plain, 2026, 11, 30, 23, 1, "2026-12-01 23:59:59");
	assert_due(&plain, 2026, 11, 30, 8, 0, "2026-11-30 23:59:59");
}

static void
test_holidays_and_makeup_days(void)
{
	/* A National Day week: 1–7 Oct off, Saturday 10 Oct worked instead. */
	const char *holidays[] = {"2026-10-01", "2026-10-02", "2026-10-05",
				  "2026-10-06", "2026-10-07", NULL};
	const char *makeup[] = {"2026-10-10", NULL};
	CsCalendar cal = {holidays, makeup};
	g_autoptr(GDateTime) sat = g_date_time_new_local(2026, 10, 10, 12, 0, 0);
	g_autoptr(GDateTime) thu = g_date_time_new_local(2026, 10, 1, 12, 0, 0);

	g_assert_true(cs_calendar_is_workday(&cal, sat));
	g_assert_false(cs_calendar_is_workday(&cal, thu));
	/* Wednesday 30 Sep, a person's 3 days: Thu 8, Fri 9, Sat 10 (worked). */
	assert_due(&cal, 2026, 9, 30, 15, 3, "2026-10-10 23:59:59");
	/* An organisation's 5: … Mon 12, Tue 13. */
	assert_due(&cal, 2026, 9, 30, 15, 5, "2026-10-13 23:59:59");
}

static void
test_year_rollover(void)
{
	const char *holidays[] = {"2027-01-01", NULL};
	CsCalendar cal = {holidays, NULL};

	/* Thursday 31 Dec 2026; Friday 1 Jan is a holiday. */
	assert_due(&cal, 2026, 12, 31, 11, 3, "2027-01-06 23:59:59");
}

static void
test_bad_calendar_refused(void)
{
	const char *bad[] = {"2026-10-01", "2026-02-30", NULL};
	const char *worse[] = {"10/10/2026", NULL};
	CsCalendar cal1 = {bad, NULL};
	CsCalendar cal2 = {NULL, worse};
	g_autoptr(GError) error = NULL;

	g_assert_false(cs_calendar_validate(&cal1, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_cmpstr(error->message, ==,
			"holidays: '2026-02-30' is not an existing YYYY-MM-DD date");
	g_clear_error(&error);
	g_assert_false(cs_calendar_validate(&cal2, &error));
	g_assert_cmpstr(error->message, ==,
			"extra_workdays: '10/10/2026' is not an existing YYYY-MM-DD date");
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/new/review/due-by-skips-weekends", test_weekends_skipped);
	g_test_add_func("/new/review/due-by-follows-holidays-and-makeup-days",
			test_holidays_and_makeup_days);
	g_test_add_func("/new/review/due-by-across-the-year", test_year_rollover);
	g_test_add_func("/new/review/bad-calendar-refused", test_bad_calendar_refused);
	return g_test_run();
}
