/*
 * cs-workdays.h — review deadlines counted in working days (docs/architecture.md §1.1: 5 for an
 * organisation, 3 for a person).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
	const char *const *holidays;	   /* "YYYY-MM-DD" days off on weekdays (法定节假日) */
	const char *const *extra_workdays; /* "YYYY-MM-DD" weekend days worked (调休上班) */
} CsCalendar;

/* Refuses a list entry that is not an existing YYYY-MM-DD date, naming it. */
gboolean cs_calendar_validate(const CsCalendar *calendar, GError **error);

/* Whether @date (local) is a working day. */
gboolean cs_calendar_is_workday(const CsCalendar *calendar, GDateTime *date);

/*
 * The end (23:59:59 local time) of the @working_days-th working day after the day of
 * @start: the day a review task arrives does not count, whatever the hour. With 0 working
 * days, the end of @start's day.
 */
GDateTime *cs_calendar_due_by(const CsCalendar *calendar, GDateTime *start, guint working_days);

G_END_DECLS
