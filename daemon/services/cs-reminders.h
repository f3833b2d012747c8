/*
 * cs-reminders.h — expiry reminders (docs/architecture.md §1.2; what certmonger does for servers,
 * done for people): for every certificate the platform issued that is neither revoked nor
 * superseded, an SMS to the subject's contact phone at [reminders] before_days before its
 * end (90, 30, 7, 1) and after_days after it (30, 180, 330: before the renewal window
 * closes). Each reminder is recorded as an "expiry_reminder" event of the order that
 * issued the certificate, in the transaction that queues the SMS, so a restart neither
 * loses nor repeats one. When several thresholds came due at once (the daemon was off, or
 * a test moved the clock), one SMS goes for the latest and the earlier ones are recorded as
 * passed.
 *
 * Dates are the business clock's (cs_clock_now); the check runs at start and every
 * check_interval_s on the main loop's monotonic clock, over the certificates ending from
 * 365 days (or the last after_days) ago to before_days ahead only, with the reminders
 * already recorded read in one query.
 */
#pragma once

#include "cs-engine.h"

G_BEGIN_DECLS

typedef struct _CsReminders CsReminders;

/* Check once now; the number of SMS queued (-1 with @error set). */
gint cs_reminders_check(CsEngine *engine, GError **error);

/* Check now, then every [reminders] check_interval_s. */
CsReminders *cs_reminders_start(CsEngine *engine);
void cs_reminders_free(CsReminders *reminders);

G_END_DECLS
