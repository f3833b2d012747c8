/*
 * cs-assistant-words.c — the daemon's names in words: order states, the Order methods of
 * NextActions, the order kinds and the certificates' statuses, as a person reads them.
 *
 * These are translations of names only: which states and actions an order has, and what
 * follows what, comes from the daemon (State, NextActions). A name this table does not
 * know is shown as the daemon gave it.
 */
#include <string.h>

#include "cs-assistant.h"

typedef struct {
	const char *name;
	const char *text;
} Word;

static const Word states[] = {
    {"draft", N_("Being filled in")},
    {"confirmed", N_("Confirmed")},
    {"sms_pending", N_("Waiting for the SMS code")},
    {"unpaid", N_("Waiting for payment")},
    {"in_review", N_("In review")},
    {"approved", N_("Approved")},
    {"rejected", N_("Rejected")},
    {"making", N_("The key is being made")},
    {"made", N_("The key is made")},
    {"shipped", N_("Shipped")},
    {"downloadable", N_("Ready to download")},
    {"downloading", N_("Downloading")},
    {"verifying", N_("Verifying the identity")},
    {"authorized", N_("Authorized")},
    {"completed", N_("Completed")},
    {"cancelled", N_("Cancelled")},
    {"refunding", N_("Being refunded")},
    {"refunded", N_("Refunded")},
};

static const Word actions[] = {
    {"Update", N_("change the details")},
    {"Confirm", N_("confirm the order")},
    {"AttachMaterial", N_("upload the materials")},
    {"Submit", N_("confirm the application")},
    {"SendSmsCode", N_("send a new SMS code")},
    {"VerifySmsCode", N_("type the SMS code")},
    {"StartPayment", N_("pay")},
    {"Unlock", N_("unlock the key")},
    {"GetInvoice", N_("download the invoice")},
    {"Download", N_("download the certificate and seal")},
    {"Cancel", N_("cancel the order")},
};

static const Word kinds[] = {
    {"new", N_("Apply for a certificate")},
    {"renew", N_("Renew the certificate")},
    {"unlock", N_("Recover the password / unlock")},
    {"reissue", N_("Replace a lost key")},
    {"change", N_("Change the details")},
};

static const char *
lookup(const Word *words, gsize n, const char *name)
{
	if (name == NULL)
		return "";
	for (gsize i = 0; i < n; i++) {
		if (strcmp(words[i].name, name) == 0)
			return _(words[i].text);
	}
	return name;
}

/* An order's State in words. */
const char *
cs_state_text(const char *state)
{
	return lookup(states, G_N_ELEMENTS(states), state);
}

/* One of NextActions in words. */
const char *
cs_action_text(const char *action)
{
	return lookup(actions, G_N_ELEMENTS(actions), action);
}

static const Word certificate_statuses[] = {
    {"valid", N_("Valid")},
    {"expired", N_("Expired")},
    {"revoked", N_("Revoked")},
};

/* A certificate's status as FindCertificates names it. */
const char *
cs_certificate_status_text(const char *status)
{
	return lookup(certificate_statuses, G_N_ELEMENTS(certificate_statuses), status);
}

/* An order's Kind by the name of the service the manual gives it. */
const char *
cs_kind_text(const char *kind)
{
	return lookup(kinds, G_N_ELEMENTS(kinds), kind);
}

/* NextActions in words, in the daemon's order; "—" when there are none. */
char *
cs_actions_text(const char *const *next)
{
	GString *s = g_string_new(NULL);

	for (guint i = 0; next != NULL && next[i] != NULL; i++) {
		if (s->len > 0)
			/* TRANSLATORS: between the steps of a list ("pay, cancel the order") */
			g_string_append(s, _(", "));
		g_string_append(s, cs_action_text(next[i]));
	}
	if (s->len == 0)
		g_string_append(s, "—");
	return g_string_free(s, FALSE);
}

/* PasswordDelivery ("sms:138****8000", "transfer:****6789", masked by the daemon) in
 * words. */
char *
cs_delivery_text(const char *delivery)
{
	if (g_str_has_prefix(delivery, "sms:"))
		return g_strdup_printf(_("by SMS to %s"), delivery + 4);
	if (g_str_has_prefix(delivery, "transfer:"))
		return g_strdup_printf(_("in the remark of a 0.01 yuan transfer to the account %s"),
				       delivery + 9);
	return g_strdup(delivery);
}
