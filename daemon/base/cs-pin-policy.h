/*
 * cs-pin-policy.h — a vendor's PIN policy (its profile's [pin] group, docs/architecture.md §1.3 and
 * §1.7), the one rule for every PIN the platform accepts or makes: a new PIN given to
 * Key.ChangePin or Order.Unlock, and the certificate passwords and SO PINs it generates.
 *
 * A PIN is min_length to max_length characters, of digits only when digits_only is set,
 * and never one digit repeated (000000, 888888: the first PINs a guesser tries).
 */
#pragma once

#include <glib.h>

#include "cs-config.h"

G_BEGIN_DECLS

typedef struct {
	guint min_length;
	guint max_length;
	gboolean digits_only;
} CsPinPolicy;

/* The policy of @vendor's profile. */
CsPinPolicy cs_pin_policy_for_vendor(const CsVendor *vendor);
/* Does @pin follow @policy? CS_ERROR_INVALID_INPUT naming @field and the reason when not
 * (never the PIN itself). */
gboolean
cs_pin_policy_check(const CsPinPolicy *policy, const char *field, const char *pin, GError **error);
/* A random PIN of @length digits (clamped to the policy's lengths) that follows @policy;
 * free it with cs_secret_free(). */
char *cs_pin_policy_generate(const CsPinPolicy *policy, guint length, GError **error);

G_END_DECLS
