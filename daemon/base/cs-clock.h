/*
 * cs-clock.h — the one clock of business dates (docs/architecture.md §1.2: eligibility, validity,
 * reminders, DueBy, certificate and CRL dates, seals, invoices).
 *
 * In production it is the wall clock. With [daemon] test_mode=true, CERTSEAL_TEST_NOW in
 * the daemon's environment moves it: an ISO-8601 date-time ("2027-10-01T09:00:00Z"; UTC
 * when no zone is given) or a day offset ("+300d", "-30d"). Either is taken as an offset
 * from the wall clock at start-up, so time keeps running from that instant. Without test
 * mode the variable is ignored with a warning.
 *
 * Never for leases, heartbeats, timeouts or code lifetimes: those stay on the monotonic
 * clock (or the real one) so that moving the business date cannot expire or extend them.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define CS_CLOCK_ENV "CERTSEAL_TEST_NOW"

/* Business "now", µs since the epoch (UTC), like g_get_real_time(). */
gint64 cs_clock_now_us(void);
/* Business "now", seconds since the epoch (UTC). */
gint64 cs_clock_now(void);
/* Business "now" as a local GDateTime (for calendar work: DueBy, invoice dates). */
GDateTime *cs_clock_now_local(void);

/*
 * Parse @value (CERTSEAL_TEST_NOW's syntax) against the wall clock @real_now_us: the
 * offset in µs to add to it. FALSE with CS_ERROR_INVALID_INPUT naming the variable.
 */
gboolean
cs_clock_parse_offset(const char *value, gint64 real_now_us, gint64 *offset_us, GError **error);

/*
 * Configure the clock at start-up from @value (the environment's CERTSEAL_TEST_NOW, may be
 * NULL): honoured (and logged) only with @test_mode; ignored with a warning otherwise.
 * A malformed value in test mode is refused (FALSE, error set) so a test never runs on the
 * wrong date.
 */
gboolean cs_clock_init(gboolean test_mode, const char *value, GError **error);

/* The current offset in µs (0 unless moved). */
gint64 cs_clock_get_offset(void);
/* For unit tests: set the offset directly. */
void cs_clock_set_offset_for_test(gint64 offset_us);

G_END_DECLS
