/*
 * cs-pin-policy.c — a vendor's PIN policy (see cs-pin-policy.h).
 */
#define G_LOG_DOMAIN "certseald"

#include <string.h>

#include "cs-crypto.h"
#include "certseal/plugin.h"
#include "cs-pin-policy.h"

CsPinPolicy
cs_pin_policy_for_vendor(const CsVendor *vendor)
{
	return (CsPinPolicy){
	    .min_length = vendor->pin_min_length,
	    .max_length = vendor->pin_max_length,
	    .digits_only = vendor->pin_digits_only,
	};
}

static gboolean
one_digit_repeated(const char *pin)
{
	if (!g_ascii_isdigit(pin[0]))
		return FALSE;
	for (const char *p = pin + 1; *p != '\0'; p++) {
		if (*p != pin[0])
			return FALSE;
	}
	return TRUE;
}

gboolean
cs_pin_policy_check(const CsPinPolicy *policy, const char *field, const char *pin, GError **error)
{
	gsize len = pin != NULL ? strlen(pin) : 0;

	if (len == 0 || len < policy->min_length || len > policy->max_length) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "%s: must be %u to %u characters", field, policy->min_length,
			    policy->max_length);
		return FALSE;
	}
	for (gsize i = 0; i < len; i++) {
		guchar c = (guchar)pin[i];
		if (policy->digits_only && !g_ascii_isdigit(c)) {
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "%s: must be digits only", field);
			return FALSE;
		}
		if (c < 0x20 || c > 0x7e) {
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "%s: must be printable ASCII characters", field);
			return FALSE;
		}
	}
	if (one_digit_repeated(pin)) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "%s: must not be one digit repeated", field);
		return FALSE;
	}
	return TRUE;
}

char *
cs_pin_policy_generate(const CsPinPolicy *policy, guint length, GError **error)
{
	guint len = CLAMP(length, policy->min_length, policy->max_length);

	/* One digit repeated comes once in 10^(len-1) draws: draw again. */
	for (;;) {
		char *pin = cs_random_digits(len, error);
		if (pin == NULL || !one_digit_repeated(pin))
			return pin;
		cs_secret_free(pin);
	}
}
