/*
 * cs-seal.h — GB/T 38540-2020 electronic seals and document signatures (docs/architecture.md §9).
 *
 * A seal (SESeal) binds a holder's certificate, a name and a picture (PNG or JPEG, size
 * in mm) for a period; the vendor's seal maker signs DER(SES_SealInfo) and puts its own
 * certificate in the seal. Sealing a document makes an SES_Signature: the key holder
 * signs DER(TBS_Sign), which carries the seal, the time, the document's hash (SM3 for
 * SM2 holders, SHA-256 otherwise — the standard names SM2-with-SM3; RSA and EC vendors
 * use their own OIDs, a documented deviation) and the document's name.
 *
 * Parsing is strict (DER only, size-limited, nothing after the structure) and is the
 * same code the daemon and the `certseal` CLI run. Verification says what failed:
 * "seal signature: …", "seal picture: …", "seal dates: …", "seal maker certificate: …",
 * "document: …", each as CS_ERROR_INVALID_INPUT.
 *
 * Trust: a CsSealTrust holds the CA certificates to trust (self-signed ones are anchors,
 * the others intermediates), e.g. the PEM that `certseal-office ca export` prints, or
 * <state_dir>/ca/<vendor>/{root,issuing}.crt.
 */
#pragma once

#include <glib.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "cs-crypto.h"

G_BEGIN_DECLS

#define CS_SEAL_MAX_SIZE (4 * 1024 * 1024)     /* bytes of DER, seal or signature */
#define CS_SEAL_PICTURE_MAX_SIZE (1024 * 1024) /* bytes */
#define CS_SEAL_PICTURE_MAX_MM 200

typedef enum {
	CS_SEAL_ORG = 1,
	CS_SEAL_PERSON = 2,
} CsSealType;

typedef struct {
	const char *vendor_id; /* header.vid */
	const char *es_id;     /* esID */
	CsSealType type;
	const char *name; /* the organisation's or person's name */
	X509 *holder;	  /* the holder's certificate (certList) */
	gint64 created;	  /* seconds since the epoch */
	gint64 valid_start;
	gint64 valid_end;
	const guint8 *picture; /* PNG or JPEG bytes */
	gsize picture_len;
	guint width_mm;
	guint height_mm;
} CsSealSpec;

/* Build and sign a seal with the seal maker's key; DER SESeal. */
GBytes *cs_seal_build(const CsSealSpec *spec, X509 *maker, EVP_PKEY *maker_key, GError **error);

/* What a seal says (no verification). */
typedef struct {
	char *vendor_id;
	char *es_id;
	gint64 version;
	CsSealType type;
	char *name;
	gint64 created, valid_start, valid_end;
	char *picture_type; /* as stored: "PNG" | "JPG" | anything for a bad seal */
	GBytes *picture;
	gint64 width_mm, height_mm;
	char *sign_algorithm; /* OID, dotted */
	X509 *maker;	      /* NULL when the cert field is not a certificate */
	GPtrArray *holders;   /* X509*, the certList */
} CsSealInfo;

void cs_seal_info_free(CsSealInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsSealInfo, cs_seal_info_free)
CsSealInfo *cs_seal_parse(const guint8 *der, gsize len, GError **error);

typedef struct _CsSealTrust CsSealTrust;
CsSealTrust *cs_seal_trust_new(void);
/* Add every certificate of a PEM text (a bundle). */
gboolean cs_seal_trust_add_pem(CsSealTrust *trust, const char *pem, gsize len, GError **error);
void cs_seal_trust_add(CsSealTrust *trust, X509 *cert);
/* The CA certificates of a state directory (DIR/ca/<vendor>/root.crt, issuing.crt) that can
 * be read; returns how many files gave some. */
guint cs_seal_trust_add_state_dir(CsSealTrust *trust, const char *state_dir);
guint cs_seal_trust_count(CsSealTrust *trust);
void cs_seal_trust_free(CsSealTrust *trust);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsSealTrust, cs_seal_trust_free)

/* Verify a seal at @at (seconds): strict DER, header ("ES", version 4), picture type
 * and content, the maker's signature, the maker's chain to a trusted root, the dates. */
gboolean
cs_seal_verify(const guint8 *der, gsize len, CsSealTrust *trust, gint64 at, GError **error);

/* Sign over DER(TBS_Sign) for a document signature: return the signature bytes (DER
 * SEQUENCE{r, s} for SM2/ECDSA, PKCS#1 v1.5 for RSA). A token driver implements this. */
typedef CsSignFunc CsSealSignFunc;
/* A CsSealSignFunc for a software key (@user_data: EVP_PKEY*). */
GBytes *cs_seal_sign_with_key(const guint8 *tbs, gsize len, gpointer user_data, GError **error);

/* Seal a document: an SES_Signature over @doc with the holder @signer (whose certificate
 * must be in the seal's certList), made at @time with @property_info (the document's
 * name). */
GBytes *cs_seal_sign_document(GBytes *seal,
			      X509 *signer,
			      const guint8 *doc,
			      gsize doc_len,
			      const char *property_info,
			      gint64 time,
			      CsSealSignFunc sign,
			      gpointer user_data,
			      GError **error);

typedef struct {
	gint64 version;
	gint64 time;
	char *property_info;
	char *data_hash_hex;
	char *sign_algorithm;
	X509 *signer; /* NULL when not a certificate */
	GBytes *seal; /* DER SESeal inside */
	CsSealInfo *seal_info;
} CsSignatureInfo;

void cs_signature_info_free(CsSignatureInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsSignatureInfo, cs_signature_info_free)
CsSignatureInfo *cs_signature_parse(const guint8 *der, gsize len, GError **error);

/* Verify an SES_Signature over @doc: the seal inside (at the signing time), the signer
 * in the seal's certList and chained to a trusted root, the signature, and the hash. */
gboolean cs_signature_verify(const guint8 *der,
			     gsize len,
			     const guint8 *doc,
			     gsize doc_len,
			     CsSealTrust *trust,
			     GError **error);

/* Which of the two a DER blob is: 1 seal, 2 signature, 0 neither. */
int cs_seal_sniff(const guint8 *der, gsize len);

G_END_DECLS
