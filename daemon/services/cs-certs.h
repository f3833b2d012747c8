/*
 * cs-certs.h — the certificate service: where CSRs enter and seals are made for an order.
 *
 * The embedded CAs are set on the engine by the daemon; every issuance and revocation is
 * recorded in the ledger with the actor (pki/cs-ca.h). The subject of a certificate is
 * built from the order's validated fields, never from the CSR.
 */
#pragma once

#include "cs-engine.h"

G_BEGIN_DECLS

/* Issue the certificate of @order from a DER CSR: the subject from the order's name and
 * number, the vendor's CA, the profile's period — or, with @follows_serial, the period that
 * follows that certificate (a renewal carries the old validity on; its window checked at
 * @eligible_at, 0 = now). The CSR is parsed and
 * its proof of possession verified here, once. Returns the DER certificate. */
GBytes *cs_certs_issue(CsEngine *engine,
		       const CsRequest *request,
		       CsOrder *order,
		       const guint8 *csr_der,
		       gsize csr_len,
		       const char *follows_serial,
		       gint64 eligible_at,
		       GError **error);
/* As cs_certs_issue(), for a replacement: the period runs from now to the end of the
 * certificate @keep_end_serial (of the same subject and vendor, not expired). */
GBytes *cs_certs_issue_keeping_end(CsEngine *engine,
				   const CsRequest *request,
				   CsOrder *order,
				   const guint8 *csr_der,
				   gsize csr_len,
				   const char *keep_end_serial,
				   GError **error);
/* As cs_certs_issue() following @follows_serial, for the order's changed subject: valid
 * from now to the old certificate's end (a change order). */
GBytes *cs_certs_issue_replacing(CsEngine *engine,
				 const CsRequest *request,
				 CsOrder *order,
				 const guint8 *csr_der,
				 gsize csr_len,
				 const char *replaced_serial,
				 GError **error);
/* The e-seal (GB/T 38540 SESeal, DER) for @order's certificate @cert_der: the order's
 * name and subject type, the certificate's validity, the picture (PNG or JPEG, e.g. the
 * order's seal_image) with its size in mm, signed by the vendor's seal maker. The esID is
 * the certificate's serial. */
GBytes *cs_certs_make_seal(CsEngine *engine,
			   const CsRequest *request,
			   CsOrder *order,
			   GBytes *cert_der,
			   const guint8 *picture,
			   gsize picture_len,
			   guint width_mm,
			   guint height_mm,
			   GError **error);
/* Revoke with a reason (keyCompromise, superseded, affiliationChanged,
 * cessationOfOperation); @order may be NULL. The vendor's CRL is regenerated. */
gboolean cs_certs_revoke(CsEngine *engine,
			 const CsRequest *request,
			 const char *serial,
			 const char *reason,
			 CsOrder *order,
			 GError **error);
/* A subject's certificates with their status (CsCertRow: valid, revoked, expired). */
GPtrArray *cs_certs_find(CsEngine *engine,
			 const char *vendor,
			 const char *subject_type,
			 const char *id_number,
			 GError **error);

/* The subject's name (its CN) in DER certificate @der, or NULL. */
char *cs_certs_subject_name(GBytes *der);

G_END_DECLS
