/*
 * cs-validity.c — the date arithmetic of new and renewed certificates (DESIGN §1.2).
 *
 * Invariants: every result satisfies not_before < not_after; the renewal window is
 * decided in whole seconds against the exact day counts of the manual ("< 90 days left",
 * "expired ≤ 365 days"), so 90 days left exactly is not eligible and 365 days expired
 * exactly still is. No time zone enters: all values are UTC epoch seconds.
 */
#define G_LOG_DOMAIN "certseald"

#include "certseal/plugin.h"
#include "cs-validity.h"

gboolean
cs_validity_new(
    gint64 now, guint validity_days, gint64 *not_before, gint64 *not_after, GError **error)
{
	if (validity_days == 0) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "validity_days: must be at least 1");
		return FALSE;
	}
	*not_before = now;
	*not_after = now + (gint64)validity_days * CS_VALIDITY_DAY_SECONDS;
	return TRUE;
}

gboolean
cs_validity_renewal_eligible(gint64 old_not_after, gint64 now, GError **error)
{
	if (old_not_after > now) {
		gint64 left = old_not_after - now;

		if (left < CS_VALIDITY_RENEW_BEFORE_DAYS * CS_VALIDITY_DAY_SECONDS)
			return TRUE;
		g_set_error(error, CS_ERROR, CS_ERROR_NOT_ELIGIBLE,
			    "certificate: %" G_GINT64_FORMAT " days left; renewal opens when fewer "
			    "than %d days are left",
			    left / CS_VALIDITY_DAY_SECONDS, CS_VALIDITY_RENEW_BEFORE_DAYS);
		return FALSE;
	}
	if (now - old_not_after <= CS_VALIDITY_RENEW_AFTER_DAYS * CS_VALIDITY_DAY_SECONDS)
		return TRUE;
	g_set_error(error, CS_ERROR, CS_ERROR_NOT_ELIGIBLE,
		    "certificate: expired %" G_GINT64_FORMAT " days ago; renewal is possible only "
		    "within %d days of expiry (apply for a new certificate)",
		    (now - old_not_after) / CS_VALIDITY_DAY_SECONDS, CS_VALIDITY_RENEW_AFTER_DAYS);
	return FALSE;
}

gboolean
cs_validity_renewal(gint64 old_not_after,
		    gint64 now,
		    guint validity_days,
		    gint64 *not_before,
		    gint64 *not_after,
		    GError **error)
{
	if (!cs_validity_renewal_eligible(old_not_after, now, error))
		return FALSE;
	/* Not expired: continue from the old end. Expired: from the day of the download. */
	return cs_validity_new(old_not_after > now ? old_not_after : now, validity_days, not_before,
			       not_after, error);
}
