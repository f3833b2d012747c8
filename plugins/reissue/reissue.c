/*
 * reissue.c — replacement after loss or damage (丢失补办, the manual's section 6), kind
 * "reissue", docs/architecture.md §1.4.
 *
 * The certificate is found first by an order query (SendQueryCode, FindCertificates): only
 * a certificate FindCertificates shows the calling connection within its grant may be
 * reissued, and only one not revoked, not expired and without another open reissue.
 * CreateOrder("reissue", subject_type, {certificate_serial, reason: lost|damaged, …})
 * pre-fills the order from the order the certificate was issued for and from the subject
 * registry. Then the order runs exactly as new (../common/new-steps.c): Confirm, materials,
 * Submit + SMS, pay (the vendor's reissue price), review, the password by the identity
 * method, make on a blank key, ship, deliver.
 *
 * Revocation: a lost key (挂失) must stop working now, so the old certificate is revoked
 * keyCompromise in the very step that verifies the order's SMS code, and stays revoked
 * whatever becomes of the order; a damaged key's certificate is revoked superseded in the
 * step that records the new key made. The new certificate keeps the old one's end date.
 */
#include <gmodule.h>
#include <string.h>

#include "new-steps.h"

CS_PLUGIN_DEFINE_ABI();

static const char *const reasons[] = {"lost", "damaged", NULL};
static const char *const reasons_zh[] = {"丢失", "损坏", NULL};
static const char *const reasons_en[] = {"the key was lost (the old certificate is revoked "
					 "as soon as the SMS code is verified)",
					 "the key was damaged (the old certificate is revoked "
					 "once the new key is made)",
					 NULL};

static const CsFieldSpec fields[] = {
    NEW_STEPS_FIELDS{"certificate_serial", CS_FIELD_TEXT, ANY, TRUE, FALSE, NULL, 64,
		     "原证书序列号", "the certificate replaced, as FindCertificates lists it"},
    {"reason", CS_FIELD_ENUM, ANY, TRUE, FALSE, reasons, 0, "补办原因", "lost or damaged",
     reasons_zh, reasons_en},
};
static const CsMaterialSpec materials[] = {NEW_STEPS_MATERIALS};

static gboolean
is_lost(CsOrder *order)
{
	return g_strcmp0(cs_order_get_field(order, "reason"), "lost") == 0;
}

/* The SMS code verified: a lost key's certificate is revoked now, in this step. */
static gboolean
revoke_if_lost(CsStep *step, GError **error)
{
	CsOrder *order = cs_step_get_order(step);

	if (!is_lost(order))
		return TRUE;
	return cs_step_revoke_certificate(step, cs_order_get_field(order, "certificate_serial"),
					  "keyCompromise", error);
}

static gboolean
on_verified_review(CsStep *step, GError **error)
{
	return revoke_if_lost(step, error) && new_on_review(step, error);
}

/* Making: as new, on a blank key, the certificate ending when the old one ends. */
static const CsKeyWork reissuing = {
    .done_action = "made",
    .failed_action = "make_failed",
    .provision = TRUE,
    .keeps_end_field = "certificate_serial",
};

static gboolean
on_make(CsStep *step, GError **error)
{
	return cs_step_prepare_key_work(step, &reissuing, cs_step_get_param(step, "key_serial"),
					error);
}

static void
after_make(CsStep *step)
{
	cs_step_start_key_work(step, &reissuing);
}

/* Made: a damaged key's certificate is superseded by the new one now. */
static gboolean
on_made(CsStep *step, GError **error)
{
	CsOrder *order = cs_step_get_order(step);

	if (!new_on_made(step, error))
		return FALSE;
	if (is_lost(order))
		return TRUE;
	return cs_step_revoke_certificate(step, cs_order_get_field(order, "certificate_serial"),
					  "superseded", error);
}

static const CsTransition transitions[] = {
    NEW_STEPS_TRANSITIONS(on_verified_review, revoke_if_lost, on_make, after_make, on_made)};
static const CsAttrSpec attrs[] = {NEW_STEPS_ATTRS, {NULL}};

/* CreateOrder: a certificate the query found on this connection, still valid, replaced by
 * no other open order; the order pre-filled from the certificate, the registry and the
 * order the certificate was issued for. */
static gboolean
reissue_prepare_order(CsCreate *create, GError **error)
{
	g_auto(CsKeyCertificate) cert = {0};
	CsSubjectType type = cs_create_get_subject_type(create);
	const char *reason = cs_create_get_field(create, "reason");
	const char *vendor = cs_create_get_field(create, "vendor");

	if (!g_strv_contains(reasons, reason != NULL ? reason : "")) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "reason: required, lost or damaged");
		return FALSE;
	}
	if (!cs_create_find_certificate(create, cs_create_get_field(create, "certificate_serial"),
					&cert, error))
		return FALSE;
	if (g_strcmp0(cert.status, "revoked") == 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_NOT_ELIGIBLE,
			    "certificate_serial: %s is revoked (%s): apply for a new certificate",
			    cert.certificate_serial,
			    cert.revocation_reason != NULL ? cert.revocation_reason : "revoked");
		return FALSE;
	}
	if (g_strcmp0(cert.status, "valid") != 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_NOT_ELIGIBLE,
			    "certificate_serial: %s has expired: apply for a new certificate",
			    cert.certificate_serial);
		return FALSE;
	}
	if (vendor != NULL && g_strcmp0(vendor, cert.vendor) != 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "vendor: certificate %s is of vendor %s, not %s",
			    cert.certificate_serial, cert.vendor, vendor);
		return FALSE;
	}
	if (!cs_create_check_no_open_order(create, "certificate_serial", cert.certificate_serial,
					   error))
		return FALSE;
	cs_create_set_field(create, "certificate_serial", cert.certificate_serial);
	cs_create_set_field(create, "vendor", cert.vendor);
	cs_create_set_field(create, cs_subject_number_field(type), cert.id_number);
	return cs_create_prefill_from_registry(create, cert.id_number,
					       type == CS_SUBJECT_ORG ? "handler_phone" : "phone",
					       error) &&
	       cs_create_prefill_from_order(create, cert.order_id, error);
}

static const CsPlugin plugin = {
    .kind = "reissue",
    .summary = "Replacement of a lost or damaged UKey, the old certificate revoked (补办)",
    .title_zh = "补办",
    .initial_state = "draft",
    .states = new_states,
    .terminal_states = new_terminal_states,
    .editable_states = new_editable_states,
    .material_states = new_material_states,
    .recoveries = new_recoveries,
    .transitions = transitions,
    .n_transitions = G_N_ELEMENTS(transitions),
    .fields = fields,
    .n_fields = G_N_ELEMENTS(fields),
    .materials = materials,
    .n_materials = G_N_ELEMENTS(materials),
    .attrs = attrs,
    .contact_phone = new_contact_phone,
    .prepare_order = reissue_prepare_order,
};

G_MODULE_EXPORT const CsPlugin *certseal_plugin_get(void);

const CsPlugin *
certseal_plugin_get(void)
{
	return &plugin;
}
