/*
 * cs-validity.h — the validity periods of issued certificates (docs/architecture.md §1.1, §1.2).
 *
 * All times are seconds since the Unix epoch (UTC); a day is 86,400 seconds, so a leap
 * day counts as one more day like any other. The rules, from the manual:
 *   - new: [now, now + period)
 *   - renewal is allowed while fewer than 90 days are left, or once expired for at most
 *     365 days; anything else is CS_ERROR_NOT_ELIGIBLE with the reason.
 *   - a renewed certificate is valid from its issuance (now); its end continues from the
 *     old end date when that has not passed (old end + period), and is one period from
 *     the day of the download (now + period) when it has.
 * The period is the vendor profile's validity_days (365 by default).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define CS_VALIDITY_DAY_SECONDS G_GINT64_CONSTANT(86400)
#define CS_VALIDITY_RENEW_BEFORE_DAYS 90 /* eligible when fewer days than this are left */
#define CS_VALIDITY_RENEW_AFTER_DAYS 365 /* eligible until expired this many days */

/* A new certificate's period. FALSE with CS_ERROR_INVALID_INPUT when @validity_days is 0. */
gboolean cs_validity_new(
    gint64 now, guint validity_days, gint64 *not_before, gint64 *not_after, GError **error);

/* May a certificate ending at @old_not_after be renewed at @now? CS_ERROR_NOT_ELIGIBLE
 * names the reason with the dates: "valid until 2027-12-02 (…); renewal opens on
 * 2027-09-04, …" or "expired on 2025-01-10 (…), more than 365 days ago: apply for a new
 * certificate". */
gboolean cs_validity_renewal_eligible(gint64 old_not_after, gint64 now, GError **error);

/* The first instant a certificate ending at @not_after may be renewed, and the last. */
gint64 cs_validity_renewable_from(gint64 not_after);
gint64 cs_validity_renewable_until(gint64 not_after);

/* The renewed certificate's period, without the eligibility check (the flow checked it
 * before the key was touched; a resumed download must not be refused half-way). */
gboolean cs_validity_renewed_period(gint64 old_not_after,
				    gint64 now,
				    guint validity_days,
				    gint64 *not_before,
				    gint64 *not_after,
				    GError **error);

/* The renewed certificate's period (eligibility checked first). */
gboolean cs_validity_renewal(gint64 old_not_after,
			     gint64 now,
			     guint validity_days,
			     gint64 *not_before,
			     gint64 *not_after,
			     GError **error);

G_END_DECLS
