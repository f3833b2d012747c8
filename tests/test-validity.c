/*
 * test-validity.c — the renewal date rules of docs/architecture.md §1.2 at every edge: 89, 90 and
 * 91 days left, expired 365 and 366 days, and periods that cross or start on a leap day.
 */
#include <string.h>

#include "certseal/plugin.h"
#include "cs-validity.h"

#define DAY CS_VALIDITY_DAY_SECONDS

static gint64
utc(int y, int m, int d)
{
	g_autoptr(GDateTime) dt = g_date_time_new_utc(y, m, d, 0, 0, 0);
	g_assert_nonnull(dt);
	return g_date_time_to_unix(dt);
}

static char *
day_of(gint64 t)
{
	g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(t);
	return g_date_time_format(dt, "%Y-%m-%d");
}

static void
assert_day(gint64 t, const char *expected)
{
	g_autofree char *s = day_of(t);
	g_assert_cmpstr(s, ==, expected);
}

static void
test_new_period(void)
{
	g_autoptr(GError) error = NULL;
	gint64 nb = 0, na = 0;
	gint64 now = utc(2026, 11, 24) + 3600;

	g_assert_true(cs_validity_new(now, 365, &nb, &na, &error));
	g_assert_no_error(error);
	g_assert_cmpint(nb, ==, now);
	g_assert_cmpint(na, ==, now + 365 * DAY);
	g_assert_false(cs_validity_new(now, 0, &nb, &na, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
}

static void
assert_eligible(gint64 not_after, gint64 now, gboolean expected, const char *reason_part)
{
	g_autoptr(GError) error = NULL;
	gboolean ok = cs_validity_renewal_eligible(not_after, now, &error);

	g_assert_cmpint(ok, ==, expected);
	if (expected) {
		g_assert_no_error(error);
	} else {
		g_assert_error(error, CS_ERROR, CS_ERROR_NOT_ELIGIBLE);
		g_assert_nonnull(strstr(error->message, reason_part));
	}
}

static void
test_days_left_edges(void)
{
	gint64 now = utc(2026, 11, 24);

	assert_eligible(now + 89 * DAY, now, TRUE, NULL);
	assert_eligible(now + 90 * DAY - 1, now, TRUE, NULL);
	assert_eligible(now + 90 * DAY, now, FALSE, "90 days left");
	assert_eligible(now + 91 * DAY, now, FALSE, "91 days left");
	assert_eligible(now + 1, now, TRUE, NULL);
	assert_eligible(now, now, TRUE, NULL); /* ends this very second: expired 0 days */
}

static void
test_expired_edges(void)
{
	gint64 now = utc(2026, 11, 24);

	assert_eligible(now - 1 * DAY, now, TRUE, NULL);
	assert_eligible(now - 365 * DAY, now, TRUE, NULL);
	assert_eligible(now - 365 * DAY - 1, now, FALSE, "expired 365 days ago");
	assert_eligible(now - 366 * DAY, now, FALSE, "expired 366 days ago");
}

static void
test_renewal_continues_or_restarts(void)
{
	g_autoptr(GError) error = NULL;
	gint64 now = utc(2026, 11, 24);
	gint64 nb = 0, na = 0;

	/* 89 days left: valid from now, the end continues from the old end date. */
	g_assert_true(cs_validity_renewal(now + 89 * DAY, now, 365, &nb, &na, &error));
	g_assert_no_error(error);
	g_assert_cmpint(nb, ==, now);
	g_assert_cmpint(na, ==, now + 89 * DAY + 365 * DAY);

	/* Expired 365 days ago: starts the day of the download. */
	g_assert_true(cs_validity_renewal(now - 365 * DAY, now, 365, &nb, &na, &error));
	g_assert_no_error(error);
	g_assert_cmpint(nb, ==, now);
	g_assert_cmpint(na, ==, now + 365 * DAY);

	/* 91 days left, 366 days expired: refused, nothing computed. */
	nb = na = -1;
	g_assert_false(cs_validity_renewal(now + 91 * DAY, now, 365, &nb, &na, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_NOT_ELIGIBLE);
	g_clear_error(&error);
	g_assert_false(cs_validity_renewal(now - 366 * DAY, now, 365, &nb, &na, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_NOT_ELIGIBLE);
	g_assert_cmpint(nb, ==, -1);
	g_assert_cmpint(na, ==, -1);
}

static void
test_leap_day(void)
{
	g_autoptr(GError) error = NULL;
	gint64 nb = 0, na = 0;

	/* An old certificate ending on 29 Feb 2028, renewed 60 days before: continues from
	 * the leap day and runs 365 days, to 28 Feb 2029. */
	g_assert_true(
	    cs_validity_renewal(utc(2028, 2, 29), utc(2027, 12, 31), 365, &nb, &na, &error));
	g_assert_no_error(error);
	assert_day(nb, "2027-12-31");
	assert_day(na, "2029-02-28");

	/* A period that crosses 29 Feb 2028 is 365 days, ending a calendar day earlier. */
	g_assert_true(cs_validity_new(utc(2027, 6, 1), 365, &nb, &na, &error));
	assert_day(na, "2028-05-31");

	/* The expiry window counts the leap day as a day: expired 1 Mar 2027, on 29 Feb
	 * 2028 that is 365 days ago (eligible), on 1 Mar 2028 366 days (not eligible). */
	assert_eligible(utc(2027, 3, 1), utc(2028, 2, 29), TRUE, NULL);
	assert_eligible(utc(2027, 3, 1), utc(2028, 3, 1), FALSE, "expired 366 days ago");
	/* The 90-day window across the leap day: 1 Jun 2028 seen from 3 Mar 2028 is 90 days. */
	assert_eligible(utc(2028, 6, 1), utc(2028, 3, 3), FALSE, "90 days left");
	assert_eligible(utc(2028, 6, 1), utc(2028, 3, 4), TRUE, NULL);
}

static void
test_messages_name_dates(void)
{
	gint64 now = utc(2027, 5, 16);

	/* 200 days left: the end date and the day renewal opens. */
	assert_eligible(utc(2027, 12, 2), now, FALSE, "valid until 2027-12-02");
	assert_eligible(utc(2027, 12, 2), now, FALSE, "renewal opens on 2027-09-03");
	g_assert_cmpint(cs_validity_renewable_from(utc(2027, 12, 2)), ==, utc(2027, 9, 3) + 1);
	assert_eligible(utc(2027, 12, 2), utc(2027, 9, 3), FALSE, "opens on 2027-09-03");
	assert_eligible(utc(2027, 12, 2), utc(2027, 9, 3) + 1, TRUE, NULL);
	/* 400 days expired: the end date, and what to do instead. */
	assert_eligible(utc(2025, 1, 10), utc(2026, 2, 14), FALSE, "expired on 2025-01-10");
	assert_eligible(utc(2025, 1, 10), utc(2026, 2, 14), FALSE,
			"more than 365 days ago: apply for a new certificate");
}

static void
test_renewed_period_unchecked(void)
{
	g_autoptr(GError) error = NULL;
	gint64 now = utc(2026, 11, 24);
	gint64 nb = 0, na = 0;

	/* A resumed download past the window still gets its dates (the flow checked it
	 * before touching the key); the rule for the dates is the same. */
	g_assert_true(cs_validity_renewed_period(now + 200 * DAY, now, 365, &nb, &na, &error));
	g_assert_no_error(error);
	g_assert_cmpint(nb, ==, now);
	g_assert_cmpint(na, ==, now + 565 * DAY);
	g_assert_true(cs_validity_renewed_period(now - 400 * DAY, now, 365, &nb, &na, &error));
	g_assert_cmpint(nb, ==, now);
	g_assert_cmpint(na, ==, now + 365 * DAY);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/validity/new/profile-period", test_new_period);
	g_test_add_func("/validity/renew/days-left-89-90-91", test_days_left_edges);
	g_test_add_func("/validity/renew/expired-365-366", test_expired_edges);
	g_test_add_func("/validity/renew/continues-or-restarts",
			test_renewal_continues_or_restarts);
	g_test_add_func("/validity/renew/leap-day", test_leap_day);
	g_test_add_func("/validity/renew/messages-name-dates", test_messages_name_dates);
	g_test_add_func("/validity/renew/period-valid-from-issuance",
			test_renewed_period_unchecked);
	return g_test_run();
}
