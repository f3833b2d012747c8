/*
 * cs-validity.c — the date arithmetic of new and renewed certificates (docs/architecture.md §1.2).
 *
 * Invariants: every result satisfies not_before < not_after, and not_before is the time of
 * issuance (a renewed certificate is valid at once); the renewal window is
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

static char *
format_day(gint64 t)
{
	g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(t);
	return dt != NULL ? g_date_time_format(dt, "%Y-%m-%d") : g_strdup("?");
}

gint64
cs_validity_renewable_from(gint64 not_after)
{
	/* Eligible once fewer than 90 days are left: one second past the 90-day mark. */
	return not_after - CS_VALIDITY_RENEW_BEFORE_DAYS * CS_VALIDITY_DAY_SECONDS + 1;
}

gint64
cs_validity_renewable_until(gint64 not_after)
{
	return not_after + CS_VALIDITY_RENEW_AFTER_DAYS * CS_VALIDITY_DAY_SECONDS;
}

gboolean
cs_validity_renewal_eligible(gint64 old_not_after, gint64 now, GError **error)
{
	g_autofree char *end = format_day(old_not_after);

	if (old_not_after > now) {
		gint64 left = old_not_after - now;
		g_autofree char *opens = NULL;

		if (left < CS_VALIDITY_RENEW_BEFORE_DAYS * CS_VALIDITY_DAY_SECONDS)
			return TRUE;
		opens = format_day(cs_validity_renewable_from(old_not_after));
		g_set_error(error, CS_ERROR, CS_ERROR_NOT_ELIGIBLE,
			    "certificate: valid until %s (%" G_GINT64_FORMAT " days left); renewal "
			    "opens on %s, when fewer than %d days are left",
			    end, left / CS_VALIDITY_DAY_SECONDS, opens,
			    CS_VALIDITY_RENEW_BEFORE_DAYS);
		return FALSE;
	}
	if (now <= cs_validity_renewable_until(old_not_after))
		return TRUE;
	g_set_error(error, CS_ERROR, CS_ERROR_NOT_ELIGIBLE,
		    "certificate: expired on %s (expired %" G_GINT64_FORMAT " days ago), more than "
		    "%d days ago: apply for a new certificate",
		    end, (now - old_not_after) / CS_VALIDITY_DAY_SECONDS,
		    CS_VALIDITY_RENEW_AFTER_DAYS);
	return FALSE;
}

gboolean
cs_validity_renewed_period(gint64 old_not_after,
			   gint64 now,
			   guint validity_days,
			   gint64 *not_before,
			   gint64 *not_after,
			   GError **error)
{
	/* Valid from the issuance, always: a certificate not valid yet would fail every chain
	 * check (the seal's included) until its old one ran out. Not expired: the new end
	 * continues from the old one (顺延); expired: one period from the download. */
	gint64 from = old_not_after > now ? old_not_after : now;

	if (!cs_validity_new(from, validity_days, not_before, not_after, error))
		return FALSE;
	*not_before = now;
	return TRUE;
}

gboolean
cs_validity_renewal(gint64 old_not_after,
		    gint64 now,
		    guint validity_days,
		    gint64 *not_before,
		    gint64 *not_after,
		    GError **error)
{
	return cs_validity_renewal_eligible(old_not_after, now, error) &&
	       cs_validity_renewed_period(old_not_after, now, validity_days, not_before, not_after,
					  error);
}
