/*
 * cs-seal.c — GB/T 38540-2020 seals (SESeal) and document signatures (SES_Signature):
 * OpenSSL ASN.1 templates, building, parsing and verification (docs/architecture.md §9).
 *
 * Invariants:
 * - Input is parsed only if it is at most CS_SEAL_MAX_SIZE bytes, one DER structure with
 *   nothing after it, and re-encodes to exactly the same bytes (so what was signed is
 *   what is checked, and no BER ambiguity reaches a verifier).
 * - Signatures are checked over the re-encoded DER of SES_SealInfo / TBS_Sign, with the
 *   algorithm the signer's key dictates: an OID that does not match the key is refused
 *   rather than followed.
 * - BIT STRINGs are written with an explicit "0 unused bits", so trailing zero bytes of a
 *   signature or hash are never trimmed.
 * - Linked into the daemon and the `certseal` CLI: no ledger, no engine, no D-Bus here.
 */
#define G_LOG_DOMAIN "certseal-seal"

#include <string.h>
#include <time.h>

#include <openssl/asn1t.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "certseal/plugin.h"
#include "cs-crypto.h"
#include "cs-seal.h"

#define SM2_SM3_OID "1.2.156.10197.1.501"

/* ---- the ASN.1 of GB/T 38540 ---------------------------------------------------------- */

/* The template macros are declarations clang-format cannot read. */
/* clang-format off */

typedef struct {
	ASN1_IA5STRING *id;
	ASN1_INTEGER *version;
	ASN1_IA5STRING *vid;
} SES_HEADER;

ASN1_SEQUENCE(SES_HEADER) = {
    ASN1_SIMPLE(SES_HEADER, id, ASN1_IA5STRING),
    ASN1_SIMPLE(SES_HEADER, version, ASN1_INTEGER),
    ASN1_SIMPLE(SES_HEADER, vid, ASN1_IA5STRING),
} static_ASN1_SEQUENCE_END(SES_HEADER)

DEFINE_STACK_OF(ASN1_OCTET_STRING)

typedef struct {
	ASN1_INTEGER *type;
	ASN1_UTF8STRING *name;
	ASN1_INTEGER *certListType;
	STACK_OF(ASN1_OCTET_STRING) *certList;
	ASN1_GENERALIZEDTIME *createDate;
	ASN1_GENERALIZEDTIME *validStart;
	ASN1_GENERALIZEDTIME *validEnd;
} SES_PROPERTY;

ASN1_SEQUENCE(SES_PROPERTY) = {
    ASN1_SIMPLE(SES_PROPERTY, type, ASN1_INTEGER),
    ASN1_SIMPLE(SES_PROPERTY, name, ASN1_UTF8STRING),
    ASN1_SIMPLE(SES_PROPERTY, certListType, ASN1_INTEGER),
    ASN1_SEQUENCE_OF(SES_PROPERTY, certList, ASN1_OCTET_STRING),
    ASN1_SIMPLE(SES_PROPERTY, createDate, ASN1_GENERALIZEDTIME),
    ASN1_SIMPLE(SES_PROPERTY, validStart, ASN1_GENERALIZEDTIME),
    ASN1_SIMPLE(SES_PROPERTY, validEnd, ASN1_GENERALIZEDTIME),
} static_ASN1_SEQUENCE_END(SES_PROPERTY)

typedef struct {
	ASN1_IA5STRING *type;
	ASN1_OCTET_STRING *data;
	ASN1_INTEGER *width;
	ASN1_INTEGER *height;
} SES_PICTURE;

ASN1_SEQUENCE(SES_PICTURE) = {
    ASN1_SIMPLE(SES_PICTURE, type, ASN1_IA5STRING),
    ASN1_SIMPLE(SES_PICTURE, data, ASN1_OCTET_STRING),
    ASN1_SIMPLE(SES_PICTURE, width, ASN1_INTEGER),
    ASN1_SIMPLE(SES_PICTURE, height, ASN1_INTEGER),
} static_ASN1_SEQUENCE_END(SES_PICTURE)

typedef struct {
	ASN1_OBJECT *extnID;
	ASN1_BOOLEAN critical;
	ASN1_OCTET_STRING *extnValue;
} SES_EXTDATA;

ASN1_SEQUENCE(SES_EXTDATA) = {
    ASN1_SIMPLE(SES_EXTDATA, extnID, ASN1_OBJECT),
    ASN1_OPT(SES_EXTDATA, critical, ASN1_FBOOLEAN),
    ASN1_SIMPLE(SES_EXTDATA, extnValue, ASN1_OCTET_STRING),
} static_ASN1_SEQUENCE_END(SES_EXTDATA)

DEFINE_STACK_OF(SES_EXTDATA)

typedef struct {
	SES_HEADER *header;
	ASN1_IA5STRING *esID;
	SES_PROPERTY *property;
	SES_PICTURE *picture;
	STACK_OF(SES_EXTDATA) *extDatas;
} SES_SEALINFO;

ASN1_SEQUENCE(SES_SEALINFO) = {
    ASN1_SIMPLE(SES_SEALINFO, header, SES_HEADER),
    ASN1_SIMPLE(SES_SEALINFO, esID, ASN1_IA5STRING),
    ASN1_SIMPLE(SES_SEALINFO, property, SES_PROPERTY),
    ASN1_SIMPLE(SES_SEALINFO, picture, SES_PICTURE),
    ASN1_SEQUENCE_OF_OPT(SES_SEALINFO, extDatas, SES_EXTDATA),
} static_ASN1_SEQUENCE_END(SES_SEALINFO)

typedef struct {
	SES_SEALINFO *eSealInfo;
	ASN1_OCTET_STRING *cert;
	ASN1_OBJECT *signAlgID;
	ASN1_BIT_STRING *signedValue;
} SESEAL;

ASN1_SEQUENCE(SESEAL) = {
    ASN1_SIMPLE(SESEAL, eSealInfo, SES_SEALINFO),
    ASN1_SIMPLE(SESEAL, cert, ASN1_OCTET_STRING),
    ASN1_SIMPLE(SESEAL, signAlgID, ASN1_OBJECT),
    ASN1_SIMPLE(SESEAL, signedValue, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(SESEAL)

typedef struct {
	ASN1_INTEGER *version;
	SESEAL *eseal;
	ASN1_GENERALIZEDTIME *timeInfo;
	ASN1_BIT_STRING *dataHash;
	ASN1_IA5STRING *propertyInfo;
	STACK_OF(SES_EXTDATA) *extDatas;
} TBS_SIGN;

ASN1_SEQUENCE(TBS_SIGN) = {
    ASN1_SIMPLE(TBS_SIGN, version, ASN1_INTEGER),
    ASN1_SIMPLE(TBS_SIGN, eseal, SESEAL),
    ASN1_SIMPLE(TBS_SIGN, timeInfo, ASN1_GENERALIZEDTIME),
    ASN1_SIMPLE(TBS_SIGN, dataHash, ASN1_BIT_STRING),
    ASN1_SIMPLE(TBS_SIGN, propertyInfo, ASN1_IA5STRING),
    ASN1_EXP_SEQUENCE_OF_OPT(TBS_SIGN, extDatas, SES_EXTDATA, 0),
} static_ASN1_SEQUENCE_END(TBS_SIGN)

typedef struct {
	TBS_SIGN *toSign;
	ASN1_OCTET_STRING *cert;
	ASN1_OBJECT *signatureAlgID;
	ASN1_BIT_STRING *signature;
	ASN1_BIT_STRING *timeStamp;
} SES_SIGNATURE;

ASN1_SEQUENCE(SES_SIGNATURE) = {
    ASN1_SIMPLE(SES_SIGNATURE, toSign, TBS_SIGN),
    ASN1_SIMPLE(SES_SIGNATURE, cert, ASN1_OCTET_STRING),
    ASN1_SIMPLE(SES_SIGNATURE, signatureAlgID, ASN1_OBJECT),
    ASN1_SIMPLE(SES_SIGNATURE, signature, ASN1_BIT_STRING),
    ASN1_EXP_OPT(SES_SIGNATURE, timeStamp, ASN1_BIT_STRING, 0),
} static_ASN1_SEQUENCE_END(SES_SIGNATURE)
    /* clang-format on */

    static void sealinfo_free(SES_SEALINFO * p)
{
	ASN1_item_free((ASN1_VALUE *)p, ASN1_ITEM_rptr(SES_SEALINFO));
}

static void
seal_free(SESEAL *p)
{
	ASN1_item_free((ASN1_VALUE *)p, ASN1_ITEM_rptr(SESEAL));
}

static void
tbs_free(TBS_SIGN *p)
{
	ASN1_item_free((ASN1_VALUE *)p, ASN1_ITEM_rptr(TBS_SIGN));
}

static void
signature_free(SES_SIGNATURE *p)
{
	ASN1_item_free((ASN1_VALUE *)p, ASN1_ITEM_rptr(SES_SIGNATURE));
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(SES_SEALINFO, sealinfo_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SESEAL, seal_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TBS_SIGN, tbs_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SES_SIGNATURE, signature_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(X509_STORE, X509_STORE_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(X509_STORE_CTX, X509_STORE_CTX_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(BIO, BIO_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EVP_MD, EVP_MD_free)

/* ---- small helpers --------------------------------------------------------------------- */

static gboolean fail(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static gboolean
fail(GError **error, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	ERR_clear_error();
	g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT, msg);
	g_free(msg);
	return FALSE;
}

static GBytes *
item_to_der(const void *value, const ASN1_ITEM *it)
{
	guint8 *der = NULL;
	int len = ASN1_item_i2d((const ASN1_VALUE *)value, &der, it);
	GBytes *out;

	if (len <= 0)
		return NULL;
	out = g_bytes_new(der, (gsize)len);
	OPENSSL_free(der);
	return out;
}

/* Strict DER: one structure, nothing after it, and it re-encodes to the same bytes. */
static void *
item_from_der(const guint8 *der, gsize len, const ASN1_ITEM *it, const char *what, GError **error)
{
	const unsigned char *p = der;
	ASN1_VALUE *v;
	g_autoptr(GBytes) again = NULL;

	if (der == NULL || len == 0) {
		fail(error, "%s: empty", what);
		return NULL;
	}
	if (len > CS_SEAL_MAX_SIZE) {
		fail(error, "%s: too large (%" G_GSIZE_FORMAT " bytes, at most %d)", what, len,
		     CS_SEAL_MAX_SIZE);
		return NULL;
	}
	v = ASN1_item_d2i(NULL, &p, (long)len, it);
	if (v == NULL) {
		fail(error, "%s: not a DER %s", what, it->sname);
		return NULL;
	}
	if ((gsize)(p - der) != len) {
		ASN1_item_free(v, it);
		fail(error, "%s: %" G_GSIZE_FORMAT " bytes after the structure", what,
		     len - (gsize)(p - der));
		return NULL;
	}
	again = item_to_der(v, it);
	if (again == NULL || g_bytes_get_size(again) != len ||
	    memcmp(g_bytes_get_data(again, NULL), der, len) != 0) {
		ASN1_item_free(v, it);
		fail(error, "%s: not in DER (canonical) encoding", what);
		return NULL;
	}
	return v;
}

static gboolean
set_bits(ASN1_BIT_STRING *bs, const guint8 *data, gsize len)
{
	if (!ASN1_BIT_STRING_set(bs, (unsigned char *)data, (int)len))
		return FALSE;
	/* 0 unused bits, said explicitly: otherwise trailing zero bytes would be trimmed. */
	bs->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
	bs->flags |= ASN1_STRING_FLAG_BITS_LEFT;
	return TRUE;
}

static gboolean
set_time(ASN1_GENERALIZEDTIME **slot, gint64 t)
{
	ASN1_GENERALIZEDTIME *g = ASN1_GENERALIZEDTIME_set(*slot, (time_t)t);

	if (g == NULL)
		return FALSE;
	*slot = g;
	return TRUE;
}

static gint64
time_of(const ASN1_GENERALIZEDTIME *t)
{
	struct tm tm = {0};

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return (gint64)timegm(&tm);
}

static char *
date_text(gint64 t)
{
	g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(t);

	return dt != NULL ? g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ") : g_strdup("?");
}

static char *
ia5_dup(const ASN1_STRING *s)
{
	if (s == NULL)
		return g_strdup("");
	return g_strndup((const char *)ASN1_STRING_get0_data(s), (gsize)ASN1_STRING_length(s));
}

static gint64
int_of(const ASN1_INTEGER *i)
{
	int64_t v = 0;

	if (i == NULL || ASN1_INTEGER_get_int64(&v, i) != 1)
		return -1;
	return v;
}

static X509 *
cert_from_octets(const ASN1_OCTET_STRING *o)
{
	const unsigned char *p = ASN1_STRING_get0_data(o);
	X509 *x = d2i_X509(NULL, &p, ASN1_STRING_length(o));

	if (x == NULL)
		ERR_clear_error();
	if (x != NULL && p != ASN1_STRING_get0_data(o) + ASN1_STRING_length(o)) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static gboolean
set_cert_octets(ASN1_OCTET_STRING *o, X509 *x)
{
	guint8 *der = NULL;
	int len = i2d_X509(x, &der);
	gboolean ok = len > 0 && ASN1_OCTET_STRING_set(o, der, len);

	OPENSSL_free(der);
	return ok;
}

/* The signature algorithm a key signs with here. */
static ASN1_OBJECT *
sign_alg_for(EVP_PKEY *key)
{
	switch (cs_key_algorithm_of(key, NULL)) {
	case CS_KEY_SM2:
		return OBJ_txt2obj(SM2_SM3_OID, 1);
	case CS_KEY_EC_P256:
		return OBJ_nid2obj(NID_ecdsa_with_SHA256);
	case CS_KEY_RSA_2048:
		return OBJ_nid2obj(NID_sha256WithRSAEncryption);
	default:
		return NULL;
	}
}

static char *
oid_text(const ASN1_OBJECT *obj)
{
	char buf[128];

	if (obj == NULL || OBJ_obj2txt(buf, sizeof(buf), obj, 1) <= 0)
		return g_strdup("?");
	return g_strdup(buf);
}

/* Verify @sig over @data with @key, requiring @alg to be the algorithm of the key. */
static gboolean
verify_with(EVP_PKEY *key,
	    const ASN1_OBJECT *alg,
	    const ASN1_BIT_STRING *sig,
	    const guint8 *data,
	    gsize len,
	    const char *what,
	    GError **error)
{
	CsKeyAlgorithm kalg = cs_key_algorithm_of(key, NULL);
	ASN1_OBJECT *expected = sign_alg_for(key);
	g_autoptr(EVP_MD_CTX) ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	int cmp;

	if (expected == NULL)
		return fail(error, "%s: the signer's key type is not supported", what);
	cmp = OBJ_cmp(expected, alg);
	ASN1_OBJECT_free(expected);
	if (cmp != 0) {
		g_autofree char *got = oid_text(alg);
		return fail(error, "%s: algorithm %s does not match the signer's %s key", what, got,
			    cs_key_algorithm_to_string(kalg));
	}
	if (ctx == NULL ||
	    EVP_DigestVerifyInit_ex(ctx, &pctx, kalg == CS_KEY_SM2 ? "SM3" : "SHA256", NULL, NULL,
				    key, NULL) != 1 ||
	    (kalg == CS_KEY_SM2 &&
	     EVP_PKEY_CTX_set1_id(pctx, (const guint8 *)CS_SM2_ID, CS_SM2_ID_LEN) <= 0))
		return fail(error, "%s: cannot set up verification", what);
	if (EVP_DigestVerify(ctx, ASN1_STRING_get0_data(sig), (size_t)ASN1_STRING_length(sig), data,
			     len) != 1)
		return fail(error, "%s: does not verify", what);
	return TRUE;
}

static GBytes *
sign_with(CsSealSignFunc sign, gpointer user_data, const guint8 *data, gsize len, GError **error)
{
	GBytes *sig = sign(data, len, user_data, error);

	if (sig == NULL && error != NULL && *error == NULL)
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INTERNAL,
				    "signing failed without a reason");
	return sig;
}

GBytes *
cs_seal_sign_with_key(const guint8 *tbs, gsize len, gpointer user_data, GError **error)
{
	g_autoptr(EVP_MD_CTX) ctx = cs_sign_ctx_new(user_data, error);
	size_t sig_len = 0;
	guint8 *sig;

	if (ctx == NULL)
		return NULL;
	if (EVP_DigestSign(ctx, NULL, &sig_len, tbs, len) != 1) {
		cs_ssl_fail(error, CS_ERROR_INTERNAL, "signing");
		return NULL;
	}
	sig = g_malloc(sig_len);
	if (EVP_DigestSign(ctx, sig, &sig_len, tbs, len) != 1) {
		g_free(sig);
		cs_ssl_fail(error, CS_ERROR_INTERNAL, "signing");
		return NULL;
	}
	return g_bytes_new_take(sig, sig_len);
}

/* ---- pictures ---------------------------------------------------------------------- */

static const char *
sniff_picture(const guint8 *data, gsize len)
{
	if (len >= 8 && memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0)
		return "PNG";
	if (len >= 3 && memcmp(data, "\xff\xd8\xff", 3) == 0)
		return "JPG";
	return NULL;
}

static gboolean
check_picture(const char *type, const guint8 *data, gsize len, gint64 w, gint64 h, GError **error)
{
	const char *sniffed = sniff_picture(data, len);

	if (g_strcmp0(type, "PNG") != 0 && g_strcmp0(type, "JPG") != 0)
		return fail(error, "seal picture: type '%s' is not PNG or JPG", type);
	if (len > CS_SEAL_PICTURE_MAX_SIZE)
		return fail(error,
			    "seal picture: too large (%" G_GSIZE_FORMAT " bytes, at most %d)", len,
			    CS_SEAL_PICTURE_MAX_SIZE);
	if (g_strcmp0(sniffed, type) != 0)
		return fail(error, "seal picture: the data is %s, not %s",
			    sniffed != NULL ? sniffed : "neither PNG nor JPEG", type);
	if (w < 1 || h < 1 || w > CS_SEAL_PICTURE_MAX_MM || h > CS_SEAL_PICTURE_MAX_MM)
		return fail(error,
			    "seal picture: size %" G_GINT64_FORMAT "×%" G_GINT64_FORMAT
			    " mm is not within 1–%d mm",
			    w, h, CS_SEAL_PICTURE_MAX_MM);
	return TRUE;
}

/* ---- building a seal --------------------------------------------------------------- */

GBytes *
cs_seal_build(const CsSealSpec *spec, X509 *maker, EVP_PKEY *maker_key, GError **error)
{
	g_autoptr(SESEAL) seal = (SESEAL *)ASN1_item_new(ASN1_ITEM_rptr(SESEAL));
	g_autoptr(GBytes) info_der = NULL;
	g_autoptr(GBytes) sig = NULL;
	ASN1_OCTET_STRING *holder = ASN1_OCTET_STRING_new();
	SES_SEALINFO *info;
	const char *ptype =
	    spec->picture != NULL ? sniff_picture(spec->picture, spec->picture_len) : NULL;
	ASN1_OBJECT *alg = sign_alg_for(maker_key);

	if (seal == NULL || holder == NULL || alg == NULL) {
		ASN1_OCTET_STRING_free(holder);
		ASN1_OBJECT_free(alg);
		cs_ssl_fail(error, CS_ERROR_INTERNAL, "seal");
		return NULL;
	}
	ASN1_OBJECT_free(seal->signAlgID);
	seal->signAlgID = alg;
	if (ptype == NULL) {
		ASN1_OCTET_STRING_free(holder);
		fail(error, "seal_image: not a PNG or JPEG picture");
		return NULL;
	}
	if (!check_picture(ptype, spec->picture, spec->picture_len, spec->width_mm, spec->height_mm,
			   error) ||
	    spec->name == NULL || !g_utf8_validate(spec->name, -1, NULL) ||
	    spec->valid_end <= spec->valid_start || spec->holder == NULL) {
		ASN1_OCTET_STRING_free(holder);
		if (error != NULL && *error == NULL)
			fail(error, "seal: name, holder certificate and a valid period are needed");
		return NULL;
	}
	info = seal->eSealInfo;
	if (!ASN1_STRING_set(info->header->id, "ES", 2) ||
	    !ASN1_INTEGER_set(info->header->version, 4) ||
	    !ASN1_STRING_set(info->header->vid, spec->vendor_id, -1) ||
	    !ASN1_STRING_set(info->esID, spec->es_id, -1) ||
	    !ASN1_INTEGER_set(info->property->type, spec->type) ||
	    !ASN1_STRING_set(info->property->name, spec->name, -1) ||
	    !ASN1_INTEGER_set(info->property->certListType, 1) ||
	    !set_cert_octets(holder, spec->holder) ||
	    !sk_ASN1_OCTET_STRING_push(info->property->certList, holder)) {
		ASN1_OCTET_STRING_free(holder);
		cs_ssl_fail(error, CS_ERROR_INTERNAL, "seal fields");
		return NULL;
	}
	if (!set_time(&info->property->createDate, spec->created) ||
	    !set_time(&info->property->validStart, spec->valid_start) ||
	    !set_time(&info->property->validEnd, spec->valid_end) ||
	    !ASN1_STRING_set(info->picture->type, ptype, -1) ||
	    !ASN1_OCTET_STRING_set(info->picture->data, spec->picture, (int)spec->picture_len) ||
	    !ASN1_INTEGER_set(info->picture->width, (long)spec->width_mm) ||
	    !ASN1_INTEGER_set(info->picture->height, (long)spec->height_mm) ||
	    !set_cert_octets(seal->cert, maker)) {
		cs_ssl_fail(error, CS_ERROR_INTERNAL, "seal fields");
		return NULL;
	}
	info_der = item_to_der(info, ASN1_ITEM_rptr(SES_SEALINFO));
	if (info_der == NULL) {
		cs_ssl_fail(error, CS_ERROR_INTERNAL, "encoding the seal");
		return NULL;
	}
	sig = cs_seal_sign_with_key(g_bytes_get_data(info_der, NULL), g_bytes_get_size(info_der),
				    maker_key, error);
	if (sig == NULL ||
	    !set_bits(seal->signedValue, g_bytes_get_data(sig, NULL), g_bytes_get_size(sig))) {
		if (sig != NULL)
			cs_ssl_fail(error, CS_ERROR_INTERNAL, "seal signature");
		return NULL;
	}
	return item_to_der(seal, ASN1_ITEM_rptr(SESEAL));
}

/* ---- parsing --------------------------------------------------------------------------- */

void
cs_seal_info_free(CsSealInfo *info)
{
	if (info == NULL)
		return;
	g_free(info->vendor_id);
	g_free(info->es_id);
	g_free(info->name);
	g_free(info->picture_type);
	g_clear_pointer(&info->picture, g_bytes_unref);
	g_free(info->sign_algorithm);
	X509_free(info->maker);
	g_clear_pointer(&info->holders, g_ptr_array_unref);
	g_free(info);
}

static CsSealInfo *
info_from_seal(const SESEAL *seal)
{
	CsSealInfo *info = g_new0(CsSealInfo, 1);
	const SES_SEALINFO *si = seal->eSealInfo;

	info->vendor_id = ia5_dup(si->header->vid);
	info->es_id = ia5_dup(si->esID);
	info->version = int_of(si->header->version);
	info->type = (CsSealType)int_of(si->property->type);
	info->name = ia5_dup(si->property->name);
	info->created = time_of(si->property->createDate);
	info->valid_start = time_of(si->property->validStart);
	info->valid_end = time_of(si->property->validEnd);
	info->picture_type = ia5_dup(si->picture->type);
	info->picture = g_bytes_new(ASN1_STRING_get0_data(si->picture->data),
				    (gsize)ASN1_STRING_length(si->picture->data));
	info->width_mm = int_of(si->picture->width);
	info->height_mm = int_of(si->picture->height);
	info->sign_algorithm = oid_text(seal->signAlgID);
	info->maker = cert_from_octets(seal->cert);
	info->holders = g_ptr_array_new_with_free_func((GDestroyNotify)X509_free);
	for (int i = 0; i < sk_ASN1_OCTET_STRING_num(si->property->certList); i++) {
		X509 *x = cert_from_octets(sk_ASN1_OCTET_STRING_value(si->property->certList, i));
		if (x != NULL)
			g_ptr_array_add(info->holders, x);
	}
	return info;
}

CsSealInfo *
cs_seal_parse(const guint8 *der, gsize len, GError **error)
{
	g_autoptr(SESEAL) seal = item_from_der(der, len, ASN1_ITEM_rptr(SESEAL), "seal", error);

	if (seal == NULL)
		return NULL;
	return info_from_seal(seal);
}

int
cs_seal_sniff(const guint8 *der, gsize len)
{
	const unsigned char *p = der;
	ASN1_VALUE *v;

	if (der == NULL || len == 0 || len > CS_SEAL_MAX_SIZE)
		return 0;
	v = ASN1_item_d2i(NULL, &p, (long)len, ASN1_ITEM_rptr(SESEAL));
	if (v != NULL) {
		ASN1_item_free(v, ASN1_ITEM_rptr(SESEAL));
		return 1;
	}
	p = der;
	v = ASN1_item_d2i(NULL, &p, (long)len, ASN1_ITEM_rptr(SES_SIGNATURE));
	ERR_clear_error();
	if (v != NULL) {
		ASN1_item_free(v, ASN1_ITEM_rptr(SES_SIGNATURE));
		return 2;
	}
	return 0;
}

/* ---- trust ----------------------------------------------------------------------------- */

struct _CsSealTrust {
	GPtrArray *anchors;	  /* X509*, self-signed */
	GPtrArray *intermediates; /* X509* */
};

CsSealTrust *
cs_seal_trust_new(void)
{
	CsSealTrust *t = g_new0(CsSealTrust, 1);

	t->anchors = g_ptr_array_new_with_free_func((GDestroyNotify)X509_free);
	t->intermediates = g_ptr_array_new_with_free_func((GDestroyNotify)X509_free);
	return t;
}

void
cs_seal_trust_free(CsSealTrust *trust)
{
	if (trust == NULL)
		return;
	g_ptr_array_unref(trust->anchors);
	g_ptr_array_unref(trust->intermediates);
	g_free(trust);
}

void
cs_seal_trust_add(CsSealTrust *trust, X509 *cert)
{
	gboolean self_signed = X509_check_issued(cert, cert) == X509_V_OK;

	X509_up_ref(cert);
	g_ptr_array_add(self_signed ? trust->anchors : trust->intermediates, cert);
}

guint
cs_seal_trust_count(CsSealTrust *trust)
{
	return trust->anchors->len;
}

gboolean
cs_seal_trust_add_pem(CsSealTrust *trust, const char *pem, gsize len, GError **error)
{
	g_autoptr(BIO) bio = BIO_new_mem_buf(pem, (int)len);
	guint n = 0;
	X509 *x;

	while (bio != NULL && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		cs_seal_trust_add(trust, x);
		X509_free(x);
		n++;
	}
	ERR_clear_error();
	if (n == 0)
		return fail(error, "trusted certificates: no PEM certificate found");
	return TRUE;
}

/* Every DIR/ca/<vendor>/root.crt and issuing.crt that can be read: the embedded CAs of a
 * state directory. Returns how many files gave certificates. */
guint
cs_seal_trust_add_state_dir(CsSealTrust *trust, const char *state_dir)
{
	g_autofree char *ca_dir = g_build_filename(state_dir, "ca", NULL);
	g_autoptr(GDir) dir = g_dir_open(ca_dir, 0, NULL);
	static const char *const files[] = {"root.crt", "issuing.crt"};
	const char *name;
	guint n = 0;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		if (name[0] == '.')
			continue;
		for (guint i = 0; i < G_N_ELEMENTS(files); i++) {
			g_autofree char *path = g_build_filename(ca_dir, name, files[i], NULL);
			g_autofree char *pem = NULL;
			gsize len = 0;

			if (g_file_get_contents(path, &pem, &len, NULL) &&
			    cs_seal_trust_add_pem(trust, pem, len, NULL))
				n++;
		}
	}
	return n;
}

/* Is @cert chained to a trusted root at @at? SM2 links are checked with the ID. */
static gboolean
verify_chain(CsSealTrust *trust, X509 *cert, gint64 at, const char *what, GError **error)
{
	g_autoptr(X509_STORE) store = X509_STORE_new();
	g_autoptr(X509_STORE_CTX) ctx = X509_STORE_CTX_new();
	STACK_OF(X509) *untrusted = sk_X509_new_null();
	gboolean ok;

	if (trust == NULL || trust->anchors->len == 0) {
		sk_X509_free(untrusted);
		return fail(error, "%s: no trusted root certificate to check it against", what);
	}
	for (guint i = 0; i < trust->anchors->len; i++) {
		X509 *a = g_ptr_array_index(trust->anchors, i);
		if (cs_key_algorithm_of(X509_get0_pubkey(a), NULL) == CS_KEY_SM2)
			cs_x509_set_sm2_id(a);
		X509_STORE_add_cert(store, a);
	}
	for (guint i = 0; i < trust->intermediates->len; i++) {
		X509 *m = g_ptr_array_index(trust->intermediates, i);
		if (cs_key_algorithm_of(X509_get0_pubkey(m), NULL) == CS_KEY_SM2)
			cs_x509_set_sm2_id(m);
		sk_X509_push(untrusted, m);
	}
	if (X509_get0_pubkey(cert) != NULL) {
		/* The ID goes with the signer; certificates here are signed by keys of the same
		 * algorithm as their own (a vendor's CA is all SM2 or all not). */
		if (cs_key_algorithm_of(X509_get0_pubkey(cert), NULL) == CS_KEY_SM2)
			cs_x509_set_sm2_id(cert);
	}
	if (X509_STORE_CTX_init(ctx, store, cert, untrusted) != 1) {
		sk_X509_free(untrusted);
		return fail(error, "%s: cannot check the chain", what);
	}
	X509_STORE_CTX_set_time(ctx, 0, (time_t)at);
	ok = X509_verify_cert(ctx) == 1;
	sk_X509_free(untrusted);
	if (!ok)
		return fail(error, "%s: %s", what,
			    X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	return TRUE;
}

/* ---- verifying a seal -------------------------------------------------------------- */

static gboolean
verify_seal_struct(const SESEAL *seal, CsSealTrust *trust, gint64 at, GError **error)
{
	g_autoptr(CsSealInfo) info = info_from_seal(seal);
	g_autoptr(GBytes) info_der = NULL;
	g_autofree char *id = ia5_dup(seal->eSealInfo->header->id);

	if (g_strcmp0(id, "ES") != 0 || info->version != 4)
		return fail(error,
			    "seal header: id '%s' version %" G_GINT64_FORMAT " (expected ES, 4)",
			    id, info->version);
	if (info->type != CS_SEAL_ORG && info->type != CS_SEAL_PERSON)
		return fail(error, "seal property: type %d is not 1 (org) or 2 (person)",
			    info->type);
	if (int_of(seal->eSealInfo->property->certListType) != 1 || info->holders->len == 0 ||
	    (int)info->holders->len !=
		sk_ASN1_OCTET_STRING_num(seal->eSealInfo->property->certList))
		return fail(error, "seal property: certList must hold the holder's certificates");
	if (!check_picture(info->picture_type, g_bytes_get_data(info->picture, NULL),
			   g_bytes_get_size(info->picture), info->width_mm, info->height_mm, error))
		return FALSE;
	if (info->maker == NULL)
		return fail(error, "seal maker certificate: not a DER certificate");
	info_der = item_to_der(seal->eSealInfo, ASN1_ITEM_rptr(SES_SEALINFO));
	if (info_der == NULL)
		return fail(error, "seal: cannot encode SES_SealInfo");
	if (!verify_with(X509_get0_pubkey(info->maker), seal->signAlgID, seal->signedValue,
			 g_bytes_get_data(info_der, NULL), g_bytes_get_size(info_der),
			 "seal signature", error))
		return FALSE;
	if (X509_get_key_usage(info->maker) != UINT32_MAX &&
	    !(X509_get_key_usage(info->maker) & KU_DIGITAL_SIGNATURE))
		return fail(error, "seal maker certificate: not for digital signatures");
	if (!verify_chain(trust, info->maker, at, "seal maker certificate", error))
		return FALSE;
	if (info->valid_end <= info->valid_start || info->created > info->valid_end)
		return fail(error, "seal dates: the validity period is empty");
	if (at < info->valid_start) {
		g_autofree char *d = date_text(info->valid_start);
		return fail(error, "seal dates: not valid before %s", d);
	}
	if (at > info->valid_end) {
		g_autofree char *d = date_text(info->valid_end);
		return fail(error, "seal dates: expired on %s", d);
	}
	return TRUE;
}

gboolean
cs_seal_verify(const guint8 *der, gsize len, CsSealTrust *trust, gint64 at, GError **error)
{
	g_autoptr(SESEAL) seal = item_from_der(der, len, ASN1_ITEM_rptr(SESEAL), "seal", error);

	return seal != NULL && verify_seal_struct(seal, trust, at, error);
}

/* ---- document signatures ------------------------------------------------------------ */

static gboolean
hash_document(
    X509 *signer, const guint8 *doc, gsize len, guint8 *out, unsigned int *out_len, GError **error)
{
	gboolean sm2 = cs_key_algorithm_of(X509_get0_pubkey(signer), NULL) == CS_KEY_SM2;
	g_autoptr(EVP_MD) md = EVP_MD_fetch(NULL, sm2 ? "SM3" : "SHA256", NULL);

	if (md == NULL || EVP_Digest(doc, len, out, out_len, md, NULL) != 1)
		return cs_ssl_fail(error, CS_ERROR_INTERNAL, "hashing the document");
	return TRUE;
}

GBytes *
cs_seal_sign_document(GBytes *seal_der,
		      X509 *signer,
		      const guint8 *doc,
		      gsize doc_len,
		      const char *property_info,
		      gint64 time,
		      CsSealSignFunc sign,
		      gpointer user_data,
		      GError **error)
{
	g_autoptr(SES_SIGNATURE) sig =
	    (SES_SIGNATURE *)ASN1_item_new(ASN1_ITEM_rptr(SES_SIGNATURE));
	g_autoptr(CsSealInfo) info = NULL;
	g_autoptr(GBytes) tbs_der = NULL;
	g_autoptr(GBytes) value = NULL;
	guint8 hash[EVP_MAX_MD_SIZE];
	unsigned int hash_len = 0;
	gboolean listed = FALSE;
	SESEAL *seal;
	ASN1_OBJECT *alg = sign_alg_for(X509_get0_pubkey(signer));

	if (sig == NULL || alg == NULL) {
		ASN1_OBJECT_free(alg);
		return fail(error, "signer: unsupported key type"), NULL;
	}
	ASN1_OBJECT_free(sig->signatureAlgID);
	sig->signatureAlgID = alg;
	seal = item_from_der(g_bytes_get_data(seal_der, NULL), g_bytes_get_size(seal_der),
			     ASN1_ITEM_rptr(SESEAL), "seal", error);
	if (seal == NULL)
		return NULL;
	ASN1_item_free((ASN1_VALUE *)sig->toSign->eseal, ASN1_ITEM_rptr(SESEAL));
	sig->toSign->eseal = seal;
	info = info_from_seal(seal);
	for (guint i = 0; i < info->holders->len; i++)
		listed |= X509_cmp(g_ptr_array_index(info->holders, i), signer) == 0;
	if (!listed)
		return fail(error, "signer: the certificate is not in the seal's certList"), NULL;
	if (property_info == NULL || !g_str_is_ascii(property_info))
		return fail(error, "filename: must be ASCII (IA5String)"), NULL;
	if (!hash_document(signer, doc, doc_len, hash, &hash_len, error))
		return NULL;
	if (!ASN1_INTEGER_set(sig->toSign->version, 4) || !set_time(&sig->toSign->timeInfo, time) ||
	    !set_bits(sig->toSign->dataHash, hash, hash_len) ||
	    !ASN1_STRING_set(sig->toSign->propertyInfo, property_info, -1) ||
	    !set_cert_octets(sig->cert, signer)) {
		cs_ssl_fail(error, CS_ERROR_INTERNAL, "signature fields");
		return NULL;
	}
	tbs_der = item_to_der(sig->toSign, ASN1_ITEM_rptr(TBS_SIGN));
	if (tbs_der == NULL) {
		cs_ssl_fail(error, CS_ERROR_INTERNAL, "encoding TBS_Sign");
		return NULL;
	}
	value = sign_with(sign, user_data, g_bytes_get_data(tbs_der, NULL),
			  g_bytes_get_size(tbs_der), error);
	if (value == NULL)
		return NULL;
	if (!set_bits(sig->signature, g_bytes_get_data(value, NULL), g_bytes_get_size(value))) {
		cs_ssl_fail(error, CS_ERROR_INTERNAL, "signature");
		return NULL;
	}
	return item_to_der(sig, ASN1_ITEM_rptr(SES_SIGNATURE));
}

void
cs_signature_info_free(CsSignatureInfo *info)
{
	if (info == NULL)
		return;
	g_free(info->property_info);
	g_free(info->data_hash_hex);
	g_free(info->sign_algorithm);
	X509_free(info->signer);
	g_clear_pointer(&info->seal, g_bytes_unref);
	cs_seal_info_free(info->seal_info);
	g_free(info);
}

static CsSignatureInfo *
info_from_signature(const SES_SIGNATURE *sig)
{
	CsSignatureInfo *info = g_new0(CsSignatureInfo, 1);
	GString *hex = g_string_new(NULL);
	const ASN1_BIT_STRING *h = sig->toSign->dataHash;

	info->version = int_of(sig->toSign->version);
	info->time = time_of(sig->toSign->timeInfo);
	info->property_info = ia5_dup(sig->toSign->propertyInfo);
	for (int i = 0; i < ASN1_STRING_length(h); i++)
		g_string_append_printf(hex, "%02x", ASN1_STRING_get0_data(h)[i]);
	info->data_hash_hex = g_string_free(hex, FALSE);
	info->sign_algorithm = oid_text(sig->signatureAlgID);
	info->signer = cert_from_octets(sig->cert);
	info->seal = item_to_der(sig->toSign->eseal, ASN1_ITEM_rptr(SESEAL));
	info->seal_info = info_from_seal(sig->toSign->eseal);
	return info;
}

CsSignatureInfo *
cs_signature_parse(const guint8 *der, gsize len, GError **error)
{
	g_autoptr(SES_SIGNATURE) sig =
	    item_from_der(der, len, ASN1_ITEM_rptr(SES_SIGNATURE), "signature", error);

	if (sig == NULL)
		return NULL;
	return info_from_signature(sig);
}

gboolean
cs_signature_verify(const guint8 *der,
		    gsize len,
		    const guint8 *doc,
		    gsize doc_len,
		    CsSealTrust *trust,
		    GError **error)
{
	g_autoptr(SES_SIGNATURE) sig =
	    item_from_der(der, len, ASN1_ITEM_rptr(SES_SIGNATURE), "signature", error);
	g_autoptr(CsSignatureInfo) info = NULL;
	g_autoptr(GBytes) tbs_der = NULL;
	guint8 hash[EVP_MAX_MD_SIZE];
	unsigned int hash_len = 0;
	gboolean listed = FALSE;

	if (sig == NULL)
		return FALSE;
	info = info_from_signature(sig);
	if (info->version != 4)
		return fail(error, "signature: version %" G_GINT64_FORMAT " (expected 4)",
			    info->version);
	/* The seal as it was when the document was signed. */
	if (!verify_seal_struct(sig->toSign->eseal, trust, info->time, error))
		return FALSE;
	if (info->signer == NULL)
		return fail(error, "signer certificate: not a DER certificate");
	for (guint i = 0; i < info->seal_info->holders->len; i++)
		listed |=
		    X509_cmp(g_ptr_array_index(info->seal_info->holders, i), info->signer) == 0;
	if (!listed)
		return fail(error, "signer certificate: not in the seal's certList");
	if (!verify_chain(trust, info->signer, info->time, "signer certificate", error))
		return FALSE;
	tbs_der = item_to_der(sig->toSign, ASN1_ITEM_rptr(TBS_SIGN));
	if (tbs_der == NULL)
		return fail(error, "signature: cannot encode TBS_Sign");
	if (!verify_with(X509_get0_pubkey(info->signer), sig->signatureAlgID, sig->signature,
			 g_bytes_get_data(tbs_der, NULL), g_bytes_get_size(tbs_der), "signature",
			 error))
		return FALSE;
	if (!hash_document(info->signer, doc, doc_len, hash, &hash_len, error))
		return FALSE;
	if ((int)hash_len != ASN1_STRING_length(sig->toSign->dataHash) ||
	    memcmp(hash, ASN1_STRING_get0_data(sig->toSign->dataHash), hash_len) != 0)
		return fail(error, "document: its hash does not match the signed hash (the "
				   "document was changed, or is another one)");
	return TRUE;
}
