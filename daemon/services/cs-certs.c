/*
 * cs-certs.c — the certificate service: where CSRs enter and seals are made for an order.
 *
 * Invariants: the subject of a certificate is built from the order's validated fields,
 * never from the CSR; the CSR is parsed and its proof of possession checked exactly once,
 * here; whoever asks is checked against the order like any other action and recorded as
 * the actor of the ledger event; nothing is issued for a refused request.
 */
#define G_LOG_DOMAIN "certseald"

#include <time.h>

#include "cs-ca.h"
#include "cs-clock.h"
#include "cs-certs.h"
#include "cs-seal.h"

static CsCaSet *
require_cas(CsEngine *engine, GError **error)
{
	CsCaSet *cas = cs_engine_get_cas(engine);

	if (cas == NULL)
		g_set_error_literal(error, CS_ERROR, CS_ERROR_UNAVAILABLE,
				    "certificates: no certificate authority is configured");
	return cas;
}

static GBytes *
issue(CsEngine *engine,
      const CsRequest *request,
      CsOrder *order,
      const guint8 *csr_der,
      gsize csr_len,
      const char *follows_serial,
      const char *keep_end_serial,
      gint64 eligible_at,
      gboolean keep_end,
      GError **error)
{
	CsCaSet *cas = require_cas(engine, error);
	g_autofree char *actor = NULL;
	g_autoptr(CsCsr) csr = NULL;
	CsIssueRequest issue = {0};

	if (cas == NULL || !cs_engine_check_access(engine, request, order, error))
		return NULL;
	issue.renew_serial = follows_serial;
	issue.keep_end_serial = keep_end_serial;
	issue.eligible_at = eligible_at;
	issue.keep_end = keep_end;
	csr = cs_csr_parse(csr_der, csr_len, error);
	if (csr == NULL)
		return NULL;
	actor = cs_request_to_actor(request);
	issue.vendor = cs_order_get_vendor(order);
	issue.order_id = cs_order_get_id(order);
	issue.actor = actor;
	issue.subject.type = cs_order_get_subject_type(order);
	issue.subject.name = cs_order_get_subject_name(order);
	issue.subject.id_number = cs_order_get_subject_number(order);
	return cs_ca_set_issue(cas, &issue, csr, cs_clock_now(), error);
}

GBytes *
cs_certs_issue(CsEngine *engine,
	       const CsRequest *request,
	       CsOrder *order,
	       const guint8 *csr_der,
	       gsize csr_len,
	       const char *follows_serial,
	       gint64 eligible_at,
	       GError **error)
{
	return issue(engine, request, order, csr_der, csr_len, follows_serial, NULL, eligible_at,
		     FALSE, error);
}

GBytes *
cs_certs_issue_keeping_end(CsEngine *engine,
			   const CsRequest *request,
			   CsOrder *order,
			   const guint8 *csr_der,
			   gsize csr_len,
			   const char *keep_end_serial,
			   GError **error)
{
	return issue(engine, request, order, csr_der, csr_len, NULL, keep_end_serial, 0, FALSE,
		     error);
}

GBytes *
cs_certs_issue_replacing(CsEngine *engine,
			 const CsRequest *request,
			 CsOrder *order,
			 const guint8 *csr_der,
			 gsize csr_len,
			 const char *replaced_serial,
			 GError **error)
{
	return issue(engine, request, order, csr_der, csr_len, replaced_serial, NULL, 0, TRUE,
		     error);
}

GBytes *
cs_certs_make_seal(CsEngine *engine,
		   const CsRequest *request,
		   CsOrder *order,
		   GBytes *cert_der,
		   const guint8 *picture,
		   gsize picture_len,
		   guint width_mm,
		   guint height_mm,
		   GError **error)
{
	CsCaSet *cas = require_cas(engine, error);
	gboolean org = cs_order_get_subject_type(order) == CS_SUBJECT_ORG;
	g_autoptr(X509) holder = NULL;
	g_autofree char *serial = NULL;
	CsSealSpec spec = {0};
	CsCa *ca;
	struct tm tm;

	if (cas == NULL || !cs_engine_check_access(engine, request, order, error))
		return NULL;
	ca = cs_ca_set_get(cas, cs_order_get_vendor(order), error);
	if (ca == NULL)
		return NULL;
	holder = cs_x509_from_der(cert_der);
	if (holder == NULL) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "certificate: not a DER certificate");
		return NULL;
	}
	/* Only a certificate this vendor's CA issued gets this vendor's seal. */
	if (!cs_ca_verify_chain(ca, holder, cs_clock_now(), error)) {
		g_prefix_error(error, "certificate: ");
		return NULL;
	}
	serial = cs_serial_to_hex(X509_get0_serialNumber(holder));
	spec.vendor_id = cs_order_get_vendor(order);
	spec.es_id = serial;
	spec.type = org ? CS_SEAL_ORG : CS_SEAL_PERSON;
	spec.name = cs_order_get_subject_name(order);
	spec.holder = holder;
	spec.created = cs_clock_now();
	if (ASN1_TIME_to_tm(X509_get0_notBefore(holder), &tm) != 1)
		return NULL;
	spec.valid_start = (gint64)timegm(&tm);
	if (ASN1_TIME_to_tm(X509_get0_notAfter(holder), &tm) != 1)
		return NULL;
	spec.valid_end = (gint64)timegm(&tm);
	spec.picture = picture;
	spec.picture_len = picture_len;
	spec.width_mm = width_mm;
	spec.height_mm = height_mm;
	return cs_seal_build(&spec, cs_ca_get_seal_maker(ca), cs_ca_get_seal_maker_key(ca), error);
}

gboolean
cs_certs_revoke(CsEngine *engine,
		const CsRequest *request,
		const char *serial,
		const char *reason,
		CsOrder *order,
		GError **error)
{
	CsCaSet *cas = require_cas(engine, error);
	g_autofree char *actor = NULL;

	if (cas == NULL)
		return FALSE;
	if (order != NULL && !cs_engine_check_access(engine, request, order, error))
		return FALSE;
	actor = cs_request_to_actor(request);
	return cs_ca_set_revoke(cas, serial, reason, actor,
				order != NULL ? cs_order_get_id(order) : NULL, cs_clock_now(),
				error);
}

typedef struct {
	char *vendor;
} CrlJob;

static void
crl_job_free(CrlJob *job)
{
	g_free(job->vendor);
	g_free(job);
}

/* Once the revocation committed: the vendor's CRL lists it. */
static void
publish_after_revoke(CsEngine *engine, gpointer data)
{
	CrlJob *job = data;
	CsCaSet *cas = cs_engine_get_cas(engine);
	g_autoptr(GBytes) crl = NULL;
	g_autoptr(GError) error = NULL;

	if (cas == NULL)
		return;
	crl = cs_ca_set_regenerate_crl(cas, job->vendor, cs_clock_now(), &error);
	/* Recorded: the next regeneration (the timer, on demand, the next change) lists it. */
	if (crl == NULL)
		g_warning("vendor %s: revoked, but the CRL was not written: %s", job->vendor,
			  error->message);
}

gboolean
cs_step_revoke_certificate(CsStep *step, const char *serial, const char *reason, GError **error)
{
	CsEngine *engine = cs_step_get_engine(step);
	CsOrder *order = cs_step_get_order(step);
	CsCaSet *cas = require_cas(engine, error);
	g_autoptr(CsCertRow) row = NULL;
	g_autofree char *actor = NULL;
	CrlJob *job;

	if (cas == NULL || !cs_step_check_transaction(step, "cs_step_revoke_certificate", error))
		return FALSE;
	if (serial == NULL) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "certificate_serial: required");
		return FALSE;
	}
	row = cs_ledger_load_certificate(cs_engine_get_ledger(engine), serial, error);
	if (row == NULL)
		return FALSE;
	if (g_strcmp0(row->subject_type,
		      cs_subject_type_to_string(cs_order_get_subject_type(order))) != 0 ||
	    g_strcmp0(row->id_number, cs_order_get_subject_number(order)) != 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_ACCESS_DENIED,
			    "certificate_serial: %s is not a certificate of this order's subject",
			    serial);
		return FALSE;
	}
	/* Revoked already (a resubmission after a rejection): nothing more to do. */
	if (g_strcmp0(row->status, "revoked") == 0)
		return TRUE;
	job = g_new0(CrlJob, 1);
	actor = cs_request_to_actor(cs_step_get_request(step));
	if (!cs_ca_set_revoke_in_transaction(cas, serial, reason, actor, cs_order_get_id(order),
					     cs_clock_now(), &job->vendor, error)) {
		crl_job_free(job);
		return FALSE;
	}
	cs_step_on_commit(step, publish_after_revoke, job, (GDestroyNotify)crl_job_free);
	return TRUE;
}

GPtrArray *
cs_certs_find(CsEngine *engine,
	      const char *vendor,
	      const char *subject_type,
	      const char *id_number,
	      GError **error)
{
	CsCaSet *cas = require_cas(engine, error);

	if (cas == NULL)
		return NULL;
	return cs_ca_set_find_certificates(cas, vendor, subject_type, id_number, cs_clock_now(),
					   error);
}

char *
cs_certs_subject_name(GBytes *der)
{
	g_autoptr(X509) x = der != NULL ? cs_x509_from_der(der) : NULL;
	X509_NAME *name = x != NULL ? X509_get_subject_name(x) : NULL;
	int i = name != NULL ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;
	ASN1_STRING *data;
	unsigned char *utf8 = NULL;
	char *out;
	int len;

	if (i < 0)
		return NULL;
	data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
	len = ASN1_STRING_to_UTF8(&utf8, data);
	if (len < 0)
		return NULL;
	out = g_strndup((const char *)utf8, len);
	OPENSSL_free(utf8);
	return out;
}
