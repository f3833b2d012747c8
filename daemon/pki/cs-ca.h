/*
 * cs-ca.h — the embedded certificate authority of each vendor (docs/architecture.md §1.7, §4, §8,
 * §9).
 *
 * Each vendor profile gets, on first start, in <state_dir>/ca/<vendor>/:
 *   root.crt / root.key           self-signed root CA
 *   issuing.crt / issuing.key     issuing CA (signed by the root): signs subscribers and CRLs
 *   seal-maker.crt / seal-maker.key  the seal maker (signed by the root, CA:FALSE), which
 *                                 signs GB/T 38540 seals
 *   issuing.crl                   the issuing CA's CRL (DER), rewritten on every change
 * Private keys are PEM PKCS#8 files of mode 0600; the algorithm is the profile's
 * [ca] algorithm (rsa-2048, ec-p256, sm2). A CA, once created, is never replaced: a
 * directory that is incomplete, unreadable, or of another algorithm is refused.
 *
 * Subscriber certificates are X.509 v3 with a 128-bit random serial (never reused: the
 * serial is the ledger's primary key), basicConstraints CA:FALSE, keyUsage
 * digitalSignature + nonRepudiation, SKI/AKI, the profile's CRL distribution point and
 * the subject of docs/architecture.md §9 built from the order (never from the CSR). CSRs are parsed
 * and their proof of possession verified once (cs_csr_parse); signing copies a per-thread template
 * EVP_MD_CTX (docs/architecture.md §8). SM2 uses SM3 and the distinguishing ID 1234567812345678 for
 * CSR verification, certificate, CRL and seal signatures.
 *
 * CsCaSet ties the CAs to the ledger: issuance and revocation are recorded durably
 * (a certificates row and a chained event in one transaction) before they are reported.
 */
#pragma once

#include <glib.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "certseal/plugin.h"
#include "cs-config.h"
#include "cs-crypto.h"
#include "cs-csr.h"
#include "cs-ledger.h"

G_BEGIN_DECLS

#define CS_SERIAL_SIZE 16      /* bytes: 128-bit serial numbers */
#define CS_SUBJECT_NAME_MAX 64 /* characters: RFC 5280 ub-common-name */

/* ---- subjects (docs/architecture.md §9)
 * --------------------------------------------------------------- */

typedef struct {
	CsSubjectType type;
	const char *name;      /* org_name or the person's name */
	const char *id_number; /* USCC (org) or resident ID (person) */
} CsCertSubject;

/* org: C=CN, O=name, CN=name, organizationIdentifier=NTRCN-<uscc>;
 * person: C=CN, CN=name, serialNumber=<hex SHA-256 of the resident ID>.
 * CS_ERROR_INVALID_INPUT naming the field for control characters, over-long names, bad
 * codes. */
X509_NAME *cs_cert_subject_build(const CsCertSubject *subject, GError **error);

/* ---- one vendor's CA -------------------------------------------------------------------- */

typedef struct _CsCa CsCa;

/* Load <ca_dir> or, when it does not exist, create it. *created says which. */
CsCa *cs_ca_open(const CsVendor *vendor, const char *ca_dir, gboolean *created, GError **error);
void cs_ca_free(CsCa *ca);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsCa, cs_ca_free)

const char *cs_ca_get_vendor_id(CsCa *ca);
const char *cs_ca_get_dir(CsCa *ca);
CsKeyAlgorithm cs_ca_get_algorithm(CsCa *ca);
guint cs_ca_get_validity_days(CsCa *ca);
X509 *cs_ca_get_root(CsCa *ca);
X509 *cs_ca_get_issuing(CsCa *ca);
X509 *cs_ca_get_seal_maker(CsCa *ca);
EVP_PKEY *cs_ca_get_seal_maker_key(CsCa *ca);
/* root + issuing + seal maker, PEM. */
char *cs_ca_export_pem(CsCa *ca);

/* Sign a subscriber certificate (not recorded: see cs_ca_set_issue); its DER. */
GBytes *cs_ca_sign_certificate(CsCa *ca,
			       const CsCsr *csr,
			       X509_NAME *subject,
			       const guint8 serial[CS_SERIAL_SIZE],
			       gint64 not_before,
			       gint64 not_after,
			       GError **error);
/* A CRL over @revoked (CsCertRow), numbered @crl_number, valid 7 days from @now. */
X509_CRL *
cs_ca_sign_crl(CsCa *ca, GPtrArray *revoked, gint64 crl_number, gint64 now, GError **error);
/* One raw signature with the issuing key through the same per-thread context (the
 * benchmark's lower bound). */
gboolean cs_ca_raw_sign(CsCa *ca, const guint8 *data, gsize len, GError **error);
/* Verify @cert's chain to this CA's root at @at (seconds), SM2 ID included. */
gboolean cs_ca_verify_chain(CsCa *ca, X509 *cert, gint64 at, GError **error);

/* ---- every vendor's CA, with the ledger ----------------------------------------------- */

typedef struct _CsCaSet CsCaSet;

/* Open or create the CA of every vendor profile of @config under <state_dir>/ca, record
 * their certificates in the ledger (once) and write a CRL where none is. */
CsCaSet *cs_ca_set_new(CsConfig *config, const char *state_dir, CsLedger *ledger, GError **error);
void cs_ca_set_free(CsCaSet *set);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsCaSet, cs_ca_set_free)
/* NULL with CS_ERROR_NOT_FOUND when @vendor has no CA. */
CsCa *cs_ca_set_get(CsCaSet *set, const char *vendor, GError **error);

typedef struct {
	const char *vendor;
	const char *order_id; /* may be NULL; must name an order in the ledger otherwise */
	const char *actor;    /* recorded in the event, e.g. "office:alice" */
	CsCertSubject subject;
	const char *renew_serial;    /* NULL: new (profile period from now); otherwise the
				      * certificate renewed (docs/architecture.md §1.2 eligibility and
				      * dates) */
	const char *keep_end_serial; /* NULL, or the certificate a replacement ends with (from now
				      * to its not_after) */
	gint64 eligible_at;	     /* renewal: the instant the window is checked at, when the flow
				      * checked it before touching the key (a resumed download keeps
				      * that instant); 0: now */
	gboolean keep_end; /* with renew_serial: the certificate replaces the old one for a
			    * changed subject (a change order): valid from now to the old one's
			    * end, no renewal window; the old one still valid */
} CsIssueRequest;

/* Sign and durably record one certificate from a verified CSR; its DER. The CSR's key
 * must be of the vendor's key algorithm. Nothing is stored when anything is refused. */
GBytes *cs_ca_set_issue(
    CsCaSet *set, const CsIssueRequest *request, const CsCsr *csr, gint64 now, GError **error);

/* Revocation reasons (RFC 5280 CRLReason names): keyCompromise, affiliationChanged,
 * superseded, cessationOfOperation. */
gboolean cs_revocation_reason_ok(const char *reason);
/* Revoke, record (row + event) and regenerate the vendor's CRL. */
gboolean cs_ca_set_revoke(CsCaSet *set,
			  const char *serial,
			  const char *reason,
			  const char *actor,
			  const char *order_id,
			  gint64 now,
			  GError **error);
/* Regenerate the vendor's CRL now (a new number), write issuing.crl and return its DER. */
GBytes *cs_ca_set_regenerate_crl(CsCaSet *set, const char *vendor, gint64 now, GError **error);
/* How often the daemon re-issues every CRL, well before their nextUpdate (7 days on): a
 * day. */
#define CS_CA_CRL_REFRESH_S (24 * 3600)
/* Re-issue the CRL of every vendor (failures are logged; the next round tries again). */
void cs_ca_set_refresh_crls(CsCaSet *set, gint64 now);
/* A subject's certificates (CsCertRow; status valid | revoked | expired at @now), what
 * FindCertificates returns once SMS query codes exist. */
/* The revocation's checks and ledger writes only, in the caller's open transaction; the
 * caller regenerates the vendor's CRL (cs_ca_set_regenerate_crl) once it committed.
 * @vendor: the certificate's vendor (free it). */
gboolean cs_ca_set_revoke_in_transaction(CsCaSet *set,
					 const char *serial,
					 const char *reason,
					 const char *actor,
					 const char *order_id,
					 gint64 now,
					 char **vendor,
					 GError **error);
GPtrArray *cs_ca_set_find_certificates(CsCaSet *set,
				       const char *vendor,
				       const char *subject_type,
				       const char *id_number,
				       gint64 now,
				       GError **error);

/* The upper-case hex of a serial. */
char *cs_serial_to_hex(const ASN1_INTEGER *serial);
/* Decode a DER certificate (with the SM2 ID set when it is SM2-signed); NULL if it is not
 * one. */
X509 *cs_x509_from_der(GBytes *der);

G_END_DECLS
