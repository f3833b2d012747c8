/*
 * cs-ca.c — the embedded CA of each vendor: keys, CA certificates, CSRs, issuance,
 * revocation and CRLs (docs/architecture.md §4, §8, §9).
 *
 * Invariants:
 * - A CA directory is created whole or not at all: everything is written to a private
 *   temporary directory that is renamed into place last. An existing directory is only
 *   ever read; keys readable by group or others, missing files, keys that do not match
 *   their certificates and an algorithm other than the profile's are refused.
 * - Nothing reaches the ledger but public data (certificates, serials, status).
 * - A certificate is reported issued only after its row and its event committed; a serial
 *   is the primary key of the certificates table, so it is never used twice (a clash —
 *   2^-128 — is retried with a fresh serial).
 * - The subject always comes from the order (validated here), never from the CSR.
 * - Signing never re-initialises a key: each thread copies its own template context,
 *   made once per CA and thread (docs/architecture.md §8), into a scratch context per signature.
 * - SM2 signs and verifies with SM3 and the ID 1234567812345678, always.
 */
#define G_LOG_DOMAIN "certseald"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include <glib/gstdio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "cs-clock.h"
#include "cs-ca.h"
#include "cs-validate.h"
#include "cs-validity.h"

#define ROOT_DAYS (20 * 365)
#define CA_DAYS (10 * 365)
#define CRL_DAYS 7
#define SERIAL_ATTEMPTS 4

G_DEFINE_AUTOPTR_CLEANUP_FUNC(X509_EXTENSION, X509_EXTENSION_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(X509_REVOKED, X509_REVOKED_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(X509_STORE, X509_STORE_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(X509_STORE_CTX, X509_STORE_CTX_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(BIO, BIO_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(BIGNUM, BN_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ASN1_INTEGER, ASN1_INTEGER_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ASN1_OCTET_STRING, ASN1_OCTET_STRING_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ASN1_ENUMERATED, ASN1_ENUMERATED_free)

/* OPENSSL_free is a macro; GBytes needs a function. */
static void
CRYPTO_free_der(void *p)
{
	OPENSSL_free(p);
}

/* ---- serials ------------------------------------------------------------------------ */

char *
cs_serial_to_hex(const ASN1_INTEGER *serial)
{
	g_autoptr(BIGNUM) bn = ASN1_INTEGER_to_BN(serial, NULL);
	char *hex;
	char *out;

	if (bn == NULL)
		return g_strdup("?");
	hex = BN_bn2hex(bn);
	out = g_strdup(hex);
	OPENSSL_free(hex);
	return out;
}

X509 *
cs_x509_from_der(GBytes *der)
{
	gsize len = 0;
	const guint8 *p = g_bytes_get_data(der, &len);
	X509 *x = d2i_X509(NULL, &p, (long)len);
	int nid = 0;

	if (x == NULL) {
		ERR_clear_error();
		return NULL;
	}
	if (OBJ_find_sigid_algs(X509_get_signature_nid(x), NULL, &nid) && nid == NID_sm2)
		cs_x509_set_sm2_id(x);
	return x;
}

static gboolean
random_serial(guint8 serial[CS_SERIAL_SIZE], GError **error)
{
	do {
		if (RAND_bytes(serial, CS_SERIAL_SIZE) != 1)
			return cs_ssl_fail(error, CS_ERROR_INTERNAL, "random serial");
	} while (serial[0] == 0); /* a full 16 bytes, so every serial has 128 bits */
	return TRUE;
}

static ASN1_INTEGER *
serial_to_asn1(const guint8 serial[CS_SERIAL_SIZE])
{
	g_autoptr(BIGNUM) bn = BN_bin2bn(serial, CS_SERIAL_SIZE, NULL);

	return bn != NULL ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
}

static char *
serial_hex(const guint8 serial[CS_SERIAL_SIZE])
{
	GString *s = g_string_sized_new(CS_SERIAL_SIZE * 2);

	for (guint i = 0; i < CS_SERIAL_SIZE; i++)
		g_string_append_printf(s, "%02X", serial[i]);
	return g_string_free(s, FALSE);
}

/* ---- subjects ----------------------------------------------------------------------- */

static gboolean
add_entry(X509_NAME *name, int nid, int type, const char *value, GError **error)
{
	if (X509_NAME_add_entry_by_NID(name, nid, type, (const guint8 *)value, -1, -1, 0) != 1)
		return cs_ssl_fail(error, CS_ERROR_INVALID_INPUT, OBJ_nid2sn(nid));
	return TRUE;
}

X509_NAME *
cs_cert_subject_build(const CsCertSubject *subject, GError **error)
{
	g_autoptr(X509_NAME) name = X509_NAME_new();
	gboolean org = subject->type == CS_SUBJECT_ORG;
	const char *name_field = cs_subject_name_field(subject->type);
	const char *id_field = cs_subject_number_field(subject->type);

	if (subject->type != CS_SUBJECT_ORG && subject->type != CS_SUBJECT_PERSON) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "subject_type: must be org or person");
		return NULL;
	}
	if (subject->name == NULL || !cs_validate_text(subject->name, CS_SUBJECT_NAME_MAX, error)) {
		if (subject->name == NULL)
			g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "missing");
		g_prefix_error(error, "%s: ", name_field);
		return NULL;
	}
	if (subject->id_number == NULL ||
	    !(org ? cs_validate_uscc(subject->id_number, NULL, error)
		  : cs_validate_resident_id(subject->id_number, NULL, error))) {
		if (subject->id_number == NULL)
			g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "missing");
		g_prefix_error(error, "%s: ", id_field);
		return NULL;
	}
	if (!add_entry(name, NID_countryName, MBSTRING_ASC, "CN", error))
		return NULL;
	if (org) {
		g_autofree char *oid = g_strdup_printf("NTRCN-%s", subject->id_number);

		if (!add_entry(name, NID_organizationName, MBSTRING_UTF8, subject->name, error) ||
		    !add_entry(name, NID_commonName, MBSTRING_UTF8, subject->name, error) ||
		    !add_entry(name, NID_organizationIdentifier, MBSTRING_UTF8, oid, error))
			return NULL;
	} else {
		guint8 md[32];
		g_autofree char *hex = NULL;
		GString *s = g_string_new(NULL);

		SHA256((const guint8 *)subject->id_number, strlen(subject->id_number), md);
		for (guint i = 0; i < sizeof(md); i++)
			g_string_append_printf(s, "%02x", md[i]);
		hex = g_string_free(s, FALSE);
		if (!add_entry(name, NID_commonName, MBSTRING_UTF8, subject->name, error) ||
		    !add_entry(name, NID_serialNumber, MBSTRING_ASC, hex, error))
			return NULL;
	}
	return g_steal_pointer(&name);
}

static char *
name_to_text(const X509_NAME *name)
{
	g_autoptr(BIO) bio = BIO_new(BIO_s_mem());
	char *data = NULL;
	long len;

	if (bio == NULL ||
	    X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0)
		return g_strdup("?");
	len = BIO_get_mem_data(bio, &data);
	return g_strndup(data, (gsize)len);
}

/* ---- one vendor's CA ---------------------------------------------------------------- */

typedef struct {
	GThread *thread;
	EVP_MD_CTX *issuing; /* templates: initialised once, copied per signature */
} ThreadCtx;

struct _CsCa {
	char *vendor_id;
	char *vendor_name;
	char *dir;
	char *crl_url;
	guint validity_days;
	CsKeyAlgorithm algorithm;
	X509 *root, *issuing, *seal_maker;
	EVP_PKEY *root_key, *issuing_key, *seal_maker_key;
	/* Extensions every subscriber certificate carries, built once. */
	X509_EXTENSION *ext_basic, *ext_key_usage, *ext_aki, *ext_crl_dp;
	GMutex lock;	  /* guards contexts */
	GArray *contexts; /* ThreadCtx */
};

static const char *const ca_files[] = {"root.key",    "root.crt",	"issuing.key",
				       "issuing.crt", "seal-maker.key", "seal-maker.crt"};

void
cs_ca_free(CsCa *ca)
{
	if (ca == NULL)
		return;
	for (guint i = 0; ca->contexts != NULL && i < ca->contexts->len; i++)
		EVP_MD_CTX_free(g_array_index(ca->contexts, ThreadCtx, i).issuing);
	g_clear_pointer(&ca->contexts, g_array_unref);
	g_mutex_clear(&ca->lock);
	X509_free(ca->root);
	X509_free(ca->issuing);
	X509_free(ca->seal_maker);
	EVP_PKEY_free(ca->root_key);
	EVP_PKEY_free(ca->issuing_key);
	EVP_PKEY_free(ca->seal_maker_key);
	X509_EXTENSION_free(ca->ext_basic);
	X509_EXTENSION_free(ca->ext_key_usage);
	X509_EXTENSION_free(ca->ext_aki);
	X509_EXTENSION_free(ca->ext_crl_dp);
	g_free(ca->vendor_id);
	g_free(ca->vendor_name);
	g_free(ca->dir);
	g_free(ca->crl_url);
	g_free(ca);
}

/* This thread's template for the issuing key, made on first use. */
static EVP_MD_CTX *
thread_template(CsCa *ca, GError **error)
{
	GThread *self = g_thread_self();
	EVP_MD_CTX *found = NULL;
	ThreadCtx tc;

	g_mutex_lock(&ca->lock);
	for (guint i = 0; i < ca->contexts->len; i++) {
		if (g_array_index(ca->contexts, ThreadCtx, i).thread == self) {
			found = g_array_index(ca->contexts, ThreadCtx, i).issuing;
			break;
		}
	}
	if (found == NULL) {
		tc.thread = self;
		tc.issuing = cs_sign_ctx_new(ca->issuing_key, error);
		if (tc.issuing != NULL) {
			g_array_append_val(ca->contexts, tc);
			found = tc.issuing;
		}
	}
	g_mutex_unlock(&ca->lock);
	return found;
}

/* A scratch context for one signature, copied from this thread's template. */
static EVP_MD_CTX *
issuing_sign_ctx(CsCa *ca, GError **error)
{
	EVP_MD_CTX *tmpl = thread_template(ca, error);
	g_autoptr(EVP_MD_CTX) ctx = NULL;

	if (tmpl == NULL)
		return NULL;
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL || EVP_MD_CTX_copy_ex(ctx, tmpl) != 1) {
		cs_ssl_fail(error, CS_ERROR_INTERNAL, "copying the signing context");
		return NULL;
	}
	return g_steal_pointer(&ctx);
}

static X509_EXTENSION *
make_ext(X509 *issuer, X509 *subject, int nid, const char *value, GError **error)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&v3, issuer, subject, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (ext == NULL)
		cs_ssl_fail(error, CS_ERROR_INTERNAL, OBJ_nid2sn(nid));
	return ext;
}

static gboolean
add_ext(X509 *issuer, X509 *subject, int nid, const char *value, GError **error)
{
	g_autoptr(X509_EXTENSION) ext = make_ext(issuer, subject, nid, value, error);

	if (ext == NULL)
		return FALSE;
	if (X509_add_ext(subject, ext, -1) != 1)
		return cs_ssl_fail(error, CS_ERROR_INTERNAL, OBJ_nid2sn(nid));
	return TRUE;
}

static X509_NAME *
ca_name(const char *vendor_name, const char *vendor_id, const char *role, GError **error)
{
	g_autoptr(X509_NAME) name = X509_NAME_new();
	g_autofree char *cn = g_strdup_printf("certseal %s %s", vendor_id, role);

	if (!add_entry(name, NID_countryName, MBSTRING_ASC, "CN", error) ||
	    !add_entry(name, NID_organizationName, MBSTRING_UTF8, vendor_name, error) ||
	    !add_entry(name, NID_commonName, MBSTRING_UTF8, cn, error))
		return NULL;
	return g_steal_pointer(&name);
}

static gboolean
set_serial_and_dates(X509 *x, gint64 not_before, gint64 not_after, GError **error)
{
	guint8 serial[CS_SERIAL_SIZE];
	g_autoptr(ASN1_INTEGER) sn = NULL;

	if (!random_serial(serial, error))
		return FALSE;
	sn = serial_to_asn1(serial);
	if (sn == NULL || X509_set_serialNumber(x, sn) != 1 ||
	    ASN1_TIME_set(X509_getm_notBefore(x), (time_t)not_before) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after) == NULL)
		return cs_ssl_fail(error, CS_ERROR_INTERNAL, "certificate fields");
	return TRUE;
}

/* A CA-level certificate (root, issuing, seal maker), signed by @signer_key. */
static X509 *
make_ca_cert(X509 *issuer,
	     EVP_PKEY *signer_key,
	     EVP_PKEY *key,
	     X509_NAME *name,
	     gint64 now,
	     guint days,
	     const char *basic,
	     const char *key_usage,
	     GError **error)
{
	g_autoptr(X509) x = X509_new();
	g_autoptr(EVP_MD_CTX) ctx = NULL;
	X509 *issuer_cert;

	if (x == NULL || X509_set_version(x, X509_VERSION_3) != 1 ||
	    X509_set_subject_name(x, name) != 1 ||
	    X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name) != 1 ||
	    X509_set_pubkey(x, key) != 1) {
		cs_ssl_fail(error, CS_ERROR_INTERNAL, "CA certificate");
		return NULL;
	}
	if (!set_serial_and_dates(x, now, now + (gint64)days * CS_VALIDITY_DAY_SECONDS, error))
		return NULL;
	issuer_cert = issuer != NULL ? issuer : x;
	if (!add_ext(issuer_cert, x, NID_basic_constraints, basic, error) ||
	    !add_ext(issuer_cert, x, NID_key_usage, key_usage, error) ||
	    !add_ext(issuer_cert, x, NID_subject_key_identifier, "hash", error) ||
	    !add_ext(issuer_cert, x, NID_authority_key_identifier, "keyid:always", error))
		return NULL;
	ctx = cs_sign_ctx_new(signer_key, error);
	if (ctx == NULL)
		return NULL;
	if (X509_sign_ctx(x, ctx) <= 0) {
		cs_ssl_fail(error, CS_ERROR_INTERNAL, "signing a CA certificate");
		return NULL;
	}
	if (cs_key_algorithm_of(key, NULL) == CS_KEY_SM2 ||
	    cs_key_algorithm_of(signer_key, NULL) == CS_KEY_SM2)
		cs_x509_set_sm2_id(x);
	return g_steal_pointer(&x);
}

static char *
pem_of_cert(X509 *x)
{
	g_autoptr(BIO) bio = BIO_new(BIO_s_mem());
	char *data = NULL;
	long len;

	if (bio == NULL || PEM_write_bio_X509(bio, x) != 1)
		return NULL;
	len = BIO_get_mem_data(bio, &data);
	return g_strndup(data, (gsize)len);
}

static gboolean
write_file(const char *dir, const char *name, const char *data, gsize len, int mode, GError **error)
{
	g_autofree char *path = g_build_filename(dir, name, NULL);
	g_autoptr(GError) local = NULL;

	if (!g_file_set_contents_full(path, data, (gssize)len,
				      G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
				      mode, &local)) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s: %s", path, local->message);
		return FALSE;
	}
	return TRUE;
}

static gboolean
write_key(const char *dir, const char *name, EVP_PKEY *key, GError **error)
{
	/* A secure-memory BIO: the PEM text of the key is wiped when freed. */
	g_autoptr(BIO) bio = BIO_new(BIO_s_secmem());
	char *data = NULL;
	long len;

	if (bio == NULL || PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1)
		return cs_ssl_fail(error, CS_ERROR_INTERNAL, "encoding a CA key");
	len = BIO_get_mem_data(bio, &data);
	return write_file(dir, name, data, (gsize)len, 0600, error);
}

static gboolean
write_cert(const char *dir, const char *name, X509 *x, GError **error)
{
	g_autofree char *pem = pem_of_cert(x);

	if (pem == NULL)
		return cs_ssl_fail(error, CS_ERROR_INTERNAL, "encoding a CA certificate");
	return write_file(dir, name, pem, strlen(pem), 0644, error);
}

static gboolean
generate_ca(CsCa *ca, gint64 now, GError **error)
{
	g_autoptr(X509_NAME) root_name = NULL;
	g_autoptr(X509_NAME) issuing_name = NULL;
	g_autoptr(X509_NAME) maker_name = NULL;

	ca->root_key = cs_key_generate(ca->algorithm, error);
	if (ca->root_key == NULL)
		return FALSE;
	ca->issuing_key = cs_key_generate(ca->algorithm, error);
	if (ca->issuing_key == NULL)
		return FALSE;
	ca->seal_maker_key = cs_key_generate(ca->algorithm, error);
	if (ca->seal_maker_key == NULL)
		return FALSE;
	root_name = ca_name(ca->vendor_name, ca->vendor_id, "Root CA", error);
	issuing_name = ca_name(ca->vendor_name, ca->vendor_id, "Issuing CA", error);
	maker_name = ca_name(ca->vendor_name, ca->vendor_id, "Seal Maker", error);
	if (root_name == NULL || issuing_name == NULL || maker_name == NULL)
		return FALSE;
	ca->root = make_ca_cert(NULL, ca->root_key, ca->root_key, root_name, now, ROOT_DAYS,
				"critical,CA:TRUE", "critical,keyCertSign,cRLSign", error);
	if (ca->root == NULL)
		return FALSE;
	ca->issuing =
	    make_ca_cert(ca->root, ca->root_key, ca->issuing_key, issuing_name, now, CA_DAYS,
			 "critical,CA:TRUE,pathlen:0", "critical,keyCertSign,cRLSign", error);
	if (ca->issuing == NULL)
		return FALSE;
	ca->seal_maker =
	    make_ca_cert(ca->root, ca->root_key, ca->seal_maker_key, maker_name, now, CA_DAYS,
			 "critical,CA:FALSE", "critical,digitalSignature,nonRepudiation", error);
	return ca->seal_maker != NULL;
}

/* Write a fresh CA into a private temporary directory and rename it into place. */
static gboolean
create_ca_dir(CsCa *ca, GError **error)
{
	g_autofree char *parent = g_path_get_dirname(ca->dir);
	g_autofree char *base = g_path_get_basename(ca->dir);
	g_autofree char *tmpl = g_strdup_printf(".%s.new-XXXXXX", base);
	g_autofree char *tmp = g_build_filename(parent, tmpl, NULL);

	if (g_mkdir_with_parents(parent, 0700) != 0 || g_mkdtemp_full(tmp, 0700) == NULL) {
		int saved = errno;
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s: %s", parent,
			    g_strerror(saved));
		return FALSE;
	}
	if (!write_key(tmp, "root.key", ca->root_key, error) ||
	    !write_cert(tmp, "root.crt", ca->root, error) ||
	    !write_key(tmp, "issuing.key", ca->issuing_key, error) ||
	    !write_cert(tmp, "issuing.crt", ca->issuing, error) ||
	    !write_key(tmp, "seal-maker.key", ca->seal_maker_key, error) ||
	    !write_cert(tmp, "seal-maker.crt", ca->seal_maker, error))
		goto remove_tmp;
	if (g_rename(tmp, ca->dir) != 0) {
		int saved = errno;
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s: cannot create: %s", ca->dir,
			    g_strerror(saved));
		goto remove_tmp;
	}
	return TRUE;

remove_tmp:
	/* Only our own unfinished files: the real directory was never touched. */
	for (guint i = 0; i < G_N_ELEMENTS(ca_files); i++) {
		g_autofree char *p = g_build_filename(tmp, ca_files[i], NULL);
		(void)g_unlink(p);
	}
	(void)g_rmdir(tmp);
	return FALSE;
}

static X509 *
read_cert(const char *dir, const char *name, GError **error)
{
	g_autofree char *path = g_build_filename(dir, name, NULL);
	g_autoptr(BIO) bio = BIO_new_file(path, "r");
	X509 *x;

	if (bio == NULL) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s: cannot read", path);
		ERR_clear_error();
		return NULL;
	}
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	if (x == NULL) {
		g_autofree char *what = g_strdup_printf("%s: not a PEM certificate", path);
		cs_ssl_fail(error, CS_ERROR_INTERNAL, what);
	}
	return x;
}

static EVP_PKEY *
read_key(const char *dir, const char *name, GError **error)
{
	g_autofree char *path = g_build_filename(dir, name, NULL);
	g_autoptr(BIO) bio = NULL;
	struct stat st;
	EVP_PKEY *key;

	if (g_stat(path, &st) != 0) {
		int saved = errno;
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s: %s", path, g_strerror(saved));
		return NULL;
	}
	if ((st.st_mode & 077) != 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL,
			    "%s: a CA key readable by group or others is refused (mode %04o)", path,
			    st.st_mode & 07777);
		return NULL;
	}
	bio = BIO_new_file(path, "r");
	key = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	if (key == NULL) {
		g_autofree char *what = g_strdup_printf("%s: not a PEM private key", path);
		cs_ssl_fail(error, CS_ERROR_INTERNAL, what);
	}
	return key;
}

static gboolean
load_ca_dir(CsCa *ca, GError **error)
{
	struct {
		X509 **cert;
		EVP_PKEY **key;
		const char *crt_name;
		const char *key_name;
	} parts[] = {
	    {&ca->root, &ca->root_key, "root.crt", "root.key"},
	    {&ca->issuing, &ca->issuing_key, "issuing.crt", "issuing.key"},
	    {&ca->seal_maker, &ca->seal_maker_key, "seal-maker.crt", "seal-maker.key"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(parts); i++) {
		CsKeyAlgorithm alg;

		*parts[i].cert = read_cert(ca->dir, parts[i].crt_name, error);
		if (*parts[i].cert == NULL)
			return FALSE;
		*parts[i].key = read_key(ca->dir, parts[i].key_name, error);
		if (*parts[i].key == NULL)
			return FALSE;
		if (X509_check_private_key(*parts[i].cert, *parts[i].key) != 1) {
			ERR_clear_error();
			g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s/%s: does not match %s",
				    ca->dir, parts[i].key_name, parts[i].crt_name);
			return FALSE;
		}
		alg = cs_key_algorithm_of(*parts[i].key, NULL);
		if (alg != ca->algorithm) {
			g_set_error(
			    error, CS_ERROR, CS_ERROR_INTERNAL,
			    "%s: the CA is %s but the vendor profile says [ca] algorithm = "
			    "%s; a CA is never replaced (move the directory away to start a "
			    "new one)",
			    ca->dir, cs_key_algorithm_to_string(alg),
			    cs_key_algorithm_to_string(ca->algorithm));
			return FALSE;
		}
		if (alg == CS_KEY_SM2)
			cs_x509_set_sm2_id(*parts[i].cert);
	}
	return TRUE;
}

static gboolean
build_subscriber_extensions(CsCa *ca, GError **error)
{
	g_autofree char *dp = g_strdup_printf("URI:%s", ca->crl_url);

	ca->ext_basic =
	    make_ext(ca->issuing, NULL, NID_basic_constraints, "critical,CA:FALSE", error);
	if (ca->ext_basic == NULL)
		return FALSE;
	ca->ext_key_usage = make_ext(ca->issuing, NULL, NID_key_usage,
				     "critical,digitalSignature,nonRepudiation", error);
	if (ca->ext_key_usage == NULL)
		return FALSE;
	ca->ext_aki =
	    make_ext(ca->issuing, NULL, NID_authority_key_identifier, "keyid:always", error);
	if (ca->ext_aki == NULL)
		return FALSE;
	ca->ext_crl_dp = make_ext(ca->issuing, NULL, NID_crl_distribution_points, dp, error);
	return ca->ext_crl_dp != NULL;
}

CsCa *
cs_ca_open(const CsVendor *vendor, const char *ca_dir, gboolean *created, GError **error)
{
	g_autoptr(CsCa) ca = g_new0(CsCa, 1);
	gboolean fresh = FALSE;

	g_mutex_init(&ca->lock);
	ca->contexts = g_array_new(FALSE, TRUE, sizeof(ThreadCtx));
	ca->vendor_id = g_strdup(vendor->id);
	ca->vendor_name = g_strdup(vendor->name != NULL ? vendor->name : vendor->id);
	ca->dir = g_strdup(ca_dir);
	ca->crl_url = g_strdup(vendor->crl_url);
	ca->validity_days = vendor->validity_days;
	ca->algorithm = cs_key_algorithm_from_string(vendor->ca_algorithm);
	if (ca->algorithm == CS_KEY_UNSUPPORTED) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL,
			    "vendor %s: [ca] algorithm %s is not supported", vendor->id,
			    vendor->ca_algorithm);
		return NULL;
	}
	if (ca->crl_url == NULL) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "vendor %s: [ca] crl_url: missing",
			    vendor->id);
		return NULL;
	}
	if (g_file_test(ca_dir, G_FILE_TEST_EXISTS)) {
		if (!load_ca_dir(ca, error))
			return NULL;
	} else {
		if (!generate_ca(ca, cs_clock_now(), error) || !create_ca_dir(ca, error))
			return NULL;
		fresh = TRUE;
	}
	if (!build_subscriber_extensions(ca, error))
		return NULL;
	if (created != NULL)
		*created = fresh;
	return g_steal_pointer(&ca);
}

const char *
cs_ca_get_vendor_id(CsCa *ca)
{
	return ca->vendor_id;
}

const char *
cs_ca_get_dir(CsCa *ca)
{
	return ca->dir;
}

CsKeyAlgorithm
cs_ca_get_algorithm(CsCa *ca)
{
	return ca->algorithm;
}

guint
cs_ca_get_validity_days(CsCa *ca)
{
	return ca->validity_days;
}

X509 *
cs_ca_get_root(CsCa *ca)
{
	return ca->root;
}

X509 *
cs_ca_get_issuing(CsCa *ca)
{
	return ca->issuing;
}

X509 *
cs_ca_get_seal_maker(CsCa *ca)
{
	return ca->seal_maker;
}

EVP_PKEY *
cs_ca_get_seal_maker_key(CsCa *ca)
{
	return ca->seal_maker_key;
}

char *
cs_ca_export_pem(CsCa *ca)
{
	g_autofree char *a = pem_of_cert(ca->root);
	g_autofree char *b = pem_of_cert(ca->issuing);
	g_autofree char *c = pem_of_cert(ca->seal_maker);

	return g_strconcat(a != NULL ? a : "", b != NULL ? b : "", c != NULL ? c : "", NULL);
}

GBytes *
cs_ca_sign_certificate(CsCa *ca,
		       const CsCsr *csr,
		       X509_NAME *subject,
		       const guint8 serial[CS_SERIAL_SIZE],
		       gint64 not_before,
		       gint64 not_after,
		       GError **error)
{
	g_autoptr(X509) x = X509_new();
	g_autoptr(ASN1_INTEGER) sn = serial_to_asn1(serial);
	g_autoptr(EVP_MD_CTX) ctx = NULL;
	ASN1_OBJECT *alg_obj = NULL;
	int ptype = 0;
	const void *pval = NULL;
	const unsigned char *bits = NULL;
	int bits_len = 0;
	X509_ALGOR *alg = NULL;
	guint8 *bits_copy;
	void *pval_copy = NULL;
	guint8 *der = NULL;
	int der_len;

	if (x == NULL || sn == NULL || X509_set_version(x, X509_VERSION_3) != 1 ||
	    X509_set_serialNumber(x, sn) != 1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(ca->issuing)) != 1 ||
	    X509_set_subject_name(x, subject) != 1 ||
	    ASN1_TIME_set(X509_getm_notBefore(x), (time_t)not_before) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after) == NULL) {
		cs_ssl_fail(error, CS_ERROR_INTERNAL, "certificate fields");
		return NULL;
	}
	/* Copy the key's encoding, not the key (docs/architecture.md §8: no X509_set_pubkey). */
	if (X509_PUBKEY_get0_param(&alg_obj, &bits, &bits_len, &alg, cs_csr_get_public_key(csr)) !=
	    1) {
		cs_ssl_fail(error, CS_ERROR_INTERNAL, "certificate public key");
		return NULL;
	}
	X509_ALGOR_get0((const ASN1_OBJECT **)&alg_obj, &ptype, &pval, alg);
	if (ptype == V_ASN1_OBJECT)
		pval_copy = OBJ_dup(pval);
	else if (ptype == V_ASN1_SEQUENCE)
		pval_copy = ASN1_STRING_dup(pval);
	else
		ptype = ptype == V_ASN1_NULL ? V_ASN1_NULL : V_ASN1_UNDEF;
	bits_copy = OPENSSL_memdup(bits, (size_t)bits_len);
	if (bits_copy == NULL ||
	    X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), OBJ_dup(alg_obj), ptype, pval_copy,
				   bits_copy, bits_len) != 1) {
		OPENSSL_free(bits_copy);
		cs_ssl_fail(error, CS_ERROR_INTERNAL, "certificate public key");
		return NULL;
	}
	if (X509_add_ext(x, ca->ext_basic, -1) != 1 ||
	    X509_add_ext(x, ca->ext_key_usage, -1) != 1 ||
	    X509_add1_ext_i2d(x, NID_subject_key_identifier, (void *)cs_csr_get_key_id(csr), 0,
			      X509V3_ADD_DEFAULT) != 1 ||
	    X509_add_ext(x, ca->ext_aki, -1) != 1 || X509_add_ext(x, ca->ext_crl_dp, -1) != 1) {
		cs_ssl_fail(error, CS_ERROR_INTERNAL, "certificate extensions");
		return NULL;
	}
	ctx = issuing_sign_ctx(ca, error);
	if (ctx == NULL)
		return NULL;
	if (X509_sign_ctx(x, ctx) <= 0) {
		cs_ssl_fail(error, CS_ERROR_INTERNAL, "signing a certificate");
		return NULL;
	}
	/* DER out: the key was copied as encoded bytes, so this object has no decoded key to
	 * offer, and decoding one (OpenSSL 3 decoders) would cost more than the signature. */
	der_len = i2d_X509(x, &der);
	if (der_len <= 0) {
		cs_ssl_fail(error, CS_ERROR_INTERNAL, "encoding a certificate");
		return NULL;
	}
	return g_bytes_new_with_free_func(der, (gsize)der_len, (GDestroyNotify)CRYPTO_free_der,
					  der);
}

static int
reason_code(const char *reason)
{
	static const struct {
		const char *name;
		int code;
	} reasons[] = {
	    {"keyCompromise", CRL_REASON_KEY_COMPROMISE},
	    {"affiliationChanged", CRL_REASON_AFFILIATION_CHANGED},
	    {"superseded", CRL_REASON_SUPERSEDED},
	    {"cessationOfOperation", CRL_REASON_CESSATION_OF_OPERATION},
	};

	for (guint i = 0; i < G_N_ELEMENTS(reasons); i++)
		if (g_strcmp0(reasons[i].name, reason) == 0)
			return reasons[i].code;
	return -1;
}

gboolean
cs_revocation_reason_ok(const char *reason)
{
	return reason_code(reason) >= 0;
}

static X509_REVOKED *
revoked_entry(const CsCertRow *row, GError **error)
{
	g_autoptr(X509_REVOKED) rev = X509_REVOKED_new();
	g_autoptr(BIGNUM) bn = NULL;
	g_autoptr(ASN1_INTEGER) sn = NULL;
	g_autoptr(ASN1_ENUMERATED) reason = ASN1_ENUMERATED_new();
	ASN1_TIME *when = NULL;

	if (BN_hex2bn(&bn, row->serial) == 0 || (sn = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
	    rev == NULL || reason == NULL || X509_REVOKED_set_serialNumber(rev, sn) != 1 ||
	    (when = ASN1_TIME_set(NULL, (time_t)row->revoked_at)) == NULL) {
		cs_ssl_fail(error, CS_ERROR_INTERNAL, "CRL entry");
		return NULL;
	}
	if (X509_REVOKED_set_revocationDate(rev, when) != 1 ||
	    ASN1_ENUMERATED_set(reason, reason_code(row->reason)) != 1 ||
	    X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, reason, 0, 0) != 1) {
		ASN1_TIME_free(when);
		cs_ssl_fail(error, CS_ERROR_INTERNAL, "CRL entry");
		return NULL;
	}
	ASN1_TIME_free(when);
	return g_steal_pointer(&rev);
}

X509_CRL *
cs_ca_sign_crl(CsCa *ca, GPtrArray *revoked, gint64 crl_number, gint64 now, GError **error)
{
	g_autoptr(X509_CRL) crl = X509_CRL_new();
	g_autoptr(ASN1_INTEGER) number = ASN1_INTEGER_new();
	g_autoptr(EVP_MD_CTX) ctx = NULL;
	ASN1_TIME *last = ASN1_TIME_set(NULL, (time_t)now);
	ASN1_TIME *next = ASN1_TIME_set(NULL, (time_t)(now + CRL_DAYS * CS_VALIDITY_DAY_SECONDS));
	gboolean ok;

	ok = crl != NULL && number != NULL && last != NULL && next != NULL &&
	     X509_CRL_set_version(crl, X509_CRL_VERSION_2) == 1 &&
	     X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->issuing)) == 1 &&
	     X509_CRL_set1_lastUpdate(crl, last) == 1 && X509_CRL_set1_nextUpdate(crl, next) == 1 &&
	     ASN1_INTEGER_set_int64(number, crl_number) == 1 &&
	     X509_CRL_add1_ext_i2d(crl, NID_crl_number, number, 0, 0) == 1;
	ASN1_TIME_free(last);
	ASN1_TIME_free(next);
	if (ok) {
		g_autoptr(X509_EXTENSION) aki = make_ext(
		    ca->issuing, NULL, NID_authority_key_identifier, "keyid:always", error);
		if (aki == NULL)
			return NULL;
		ok = X509_CRL_add_ext(crl, aki, -1) == 1;
	}
	if (!ok) {
		cs_ssl_fail(error, CS_ERROR_INTERNAL, "CRL fields");
		return NULL;
	}
	for (guint i = 0; i < revoked->len; i++) {
		X509_REVOKED *rev = revoked_entry(g_ptr_array_index(revoked, i), error);

		if (rev == NULL)
			return NULL;
		if (X509_CRL_add0_revoked(crl, rev) != 1) {
			X509_REVOKED_free(rev);
			cs_ssl_fail(error, CS_ERROR_INTERNAL, "CRL entry");
			return NULL;
		}
	}
	X509_CRL_sort(crl);
	ctx = issuing_sign_ctx(ca, error);
	if (ctx == NULL)
		return NULL;
	if (X509_CRL_sign_ctx(crl, ctx) <= 0) {
		cs_ssl_fail(error, CS_ERROR_INTERNAL, "signing the CRL");
		return NULL;
	}
	return g_steal_pointer(&crl);
}

gboolean
cs_ca_raw_sign(CsCa *ca, const guint8 *data, gsize len, GError **error)
{
	g_autoptr(EVP_MD_CTX) ctx = issuing_sign_ctx(ca, error);
	guint8 sig[512];
	size_t sig_len = sizeof(sig);

	if (ctx == NULL)
		return FALSE;
	if (EVP_DigestSign(ctx, sig, &sig_len, data, len) != 1)
		return cs_ssl_fail(error, CS_ERROR_INTERNAL, "raw signature");
	return TRUE;
}

gboolean
cs_ca_verify_chain(CsCa *ca, X509 *cert, gint64 at, GError **error)
{
	g_autoptr(X509_STORE) store = X509_STORE_new();
	g_autoptr(X509_STORE_CTX) ctx = X509_STORE_CTX_new();
	STACK_OF(X509) *untrusted = sk_X509_new_null();
	int rc;

	if (store == NULL || ctx == NULL || untrusted == NULL ||
	    X509_STORE_add_cert(store, ca->root) != 1 || !sk_X509_push(untrusted, ca->issuing) ||
	    X509_STORE_CTX_init(ctx, store, cert, untrusted) != 1) {
		sk_X509_free(untrusted);
		return cs_ssl_fail(error, CS_ERROR_INTERNAL, "preparing chain verification");
	}
	X509_STORE_CTX_set_time(ctx, 0, (time_t)at);
	rc = X509_verify_cert(ctx);
	sk_X509_free(untrusted);
	if (rc != 1) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "certificate chain: %s",
			    X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
		ERR_clear_error();
		return FALSE;
	}
	return TRUE;
}

/* ---- the set, with the ledger -------------------------------------------------------- */

struct _CsCaSet {
	CsLedger *ledger;	    /* borrowed */
	GHashTable *cas;	    /* vendor id → CsCa* */
	GHashTable *key_algorithms; /* vendor id → key algorithm string (borrowed from config) */
};

void
cs_ca_set_free(CsCaSet *set)
{
	if (set == NULL)
		return;
	g_clear_pointer(&set->cas, g_hash_table_unref);
	g_clear_pointer(&set->key_algorithms, g_hash_table_unref);
	g_free(set);
}

static GVariant *
event_data(const char *serial,
	   const char *vendor,
	   const char *role,
	   gint64 nb,
	   gint64 na,
	   const char *reason)
{
	GVariantDict d;

	g_variant_dict_init(&d, NULL);
	g_variant_dict_insert(&d, "serial", "s", serial);
	g_variant_dict_insert(&d, "vendor", "s", vendor);
	if (role != NULL)
		g_variant_dict_insert(&d, "role", "s", role);
	if (nb != 0 || na != 0) {
		g_variant_dict_insert(&d, "not_before", "x", nb);
		g_variant_dict_insert(&d, "not_after", "x", na);
	}
	if (reason != NULL)
		g_variant_dict_insert(&d, "reason", "s", reason);
	return g_variant_ref_sink(g_variant_dict_end(&d));
}

static gint64
asn1_time_to_unix(const ASN1_TIME *t)
{
	struct tm tm = {0};

	if (ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return (gint64)timegm(&tm);
}

static GBytes *
cert_der(X509 *x)
{
	guint8 *der = NULL;
	int len = i2d_X509(x, &der);
	GBytes *b;

	if (len <= 0)
		return NULL;
	b = g_bytes_new(der, (gsize)len);
	OPENSSL_free(der);
	return b;
}

/* Record the CA's own certificates once (their serials are never reused either). */
static gboolean
record_ca_certificates(CsCaSet *set, CsCa *ca, GError **error)
{
	struct {
		X509 *cert;
		const char *role;
	} parts[] = {{ca->root, "root"}, {ca->issuing, "issuing"}, {ca->seal_maker, "seal_maker"}};
	gboolean began = FALSE;

	for (guint i = 0; i < G_N_ELEMENTS(parts); i++) {
		g_autofree char *serial = cs_serial_to_hex(X509_get0_serialNumber(parts[i].cert));
		g_autofree char *subject = name_to_text(X509_get_subject_name(parts[i].cert));
		g_autoptr(GBytes) der = cert_der(parts[i].cert);
		g_autoptr(GVariant) data = NULL;
		gboolean used = FALSE;
		CsCertRow row = {0};

		if (!cs_ledger_serial_used(set->ledger, serial, &used, error))
			goto fail;
		if (used)
			continue;
		if (!began && !cs_ledger_begin(set->ledger, error))
			return FALSE;
		began = TRUE;
		row.serial = serial;
		row.vendor = ca->vendor_id;
		row.role = (char *)parts[i].role;
		row.subject = subject;
		row.not_before = asn1_time_to_unix(X509_get0_notBefore(parts[i].cert));
		row.not_after = asn1_time_to_unix(X509_get0_notAfter(parts[i].cert));
		row.der = der;
		row.created = g_get_real_time();
		data = event_data(serial, ca->vendor_id, parts[i].role, row.not_before,
				  row.not_after, NULL);
		if (!cs_ledger_insert_certificate(set->ledger, &row, error) ||
		    !cs_ledger_append_event(set->ledger, NULL, "ca_certificate_created", NULL, NULL,
					    "system", data, row.created, NULL, error))
			goto fail;
	}
	if (began && !cs_ledger_commit(set->ledger, error))
		goto fail;
	return TRUE;
fail:
	if (began)
		cs_ledger_rollback(set->ledger);
	return FALSE;
}

static GBytes *
crl_der(X509_CRL *crl)
{
	guint8 *der = NULL;
	int len = i2d_X509_CRL(crl, &der);
	GBytes *b;

	if (len <= 0)
		return NULL;
	b = g_bytes_new(der, (gsize)len);
	OPENSSL_free(der);
	return b;
}

/* Sign the CRL of @revoked, write issuing.crl atomically and return its DER. */
static GBytes *
publish_crl(CsCa *ca, GPtrArray *revoked, gint64 number, gint64 now, GError **error)
{
	g_autoptr(X509_CRL) crl = cs_ca_sign_crl(ca, revoked, number, now, error);
	g_autoptr(GBytes) der = NULL;

	if (crl == NULL)
		return NULL;
	der = crl_der(crl);
	if (der == NULL) {
		cs_ssl_fail(error, CS_ERROR_INTERNAL, "encoding the CRL");
		return NULL;
	}
	if (!write_file(ca->dir, "issuing.crl", g_bytes_get_data(der, NULL), g_bytes_get_size(der),
			0644, error))
		return NULL;
	return g_steal_pointer(&der);
}

/* In one transaction: take the next CRL number and read the revoked list. */
static GPtrArray *
crl_snapshot(CsCaSet *set, const char *vendor, gint64 *number, GError **error)
{
	g_autoptr(GPtrArray) revoked = NULL;

	if (!cs_ledger_begin(set->ledger, error))
		return NULL;
	if (!cs_ledger_next_crl_number(set->ledger, vendor, number, error) ||
	    (revoked = cs_ledger_list_revoked(set->ledger, vendor, error)) == NULL ||
	    !cs_ledger_commit(set->ledger, error)) {
		cs_ledger_rollback(set->ledger);
		return NULL;
	}
	return g_steal_pointer(&revoked);
}

GBytes *
cs_ca_set_regenerate_crl(CsCaSet *set, const char *vendor, gint64 now, GError **error)
{
	CsCa *ca = cs_ca_set_get(set, vendor, error);
	g_autoptr(GPtrArray) revoked = NULL;
	gint64 number = 0;

	if (ca == NULL)
		return NULL;
	revoked = crl_snapshot(set, vendor, &number, error);
	if (revoked == NULL)
		return NULL;
	return publish_crl(ca, revoked, number, now, error);
}

void
cs_ca_set_refresh_crls(CsCaSet *set, gint64 now)
{
	GHashTableIter iter;
	gpointer vendor;

	g_hash_table_iter_init(&iter, set->cas);
	while (g_hash_table_iter_next(&iter, &vendor, NULL)) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) crl = cs_ca_set_regenerate_crl(set, vendor, now, &error);
		if (crl == NULL)
			g_warning("vendor %s: the CRL was not re-issued: %s", (const char *)vendor,
				  error->message);
	}
}

/* Whether the CRL in @path is to be issued again at @now: missing, unreadable, issued
 * CS_CA_CRL_REFRESH_S ago or more (the daemon was down when its timer would have run), or
 * dated after @now. */
static gboolean
crl_due(const char *path, gint64 now)
{
	g_autofree char *data = NULL;
	g_autoptr(X509_CRL) crl = NULL;
	const unsigned char *p;
	struct tm tm = {0};
	gsize len = 0;
	gint64 last;

	if (!g_file_get_contents(path, &data, &len, NULL) || len > G_MAXLONG)
		return TRUE;
	p = (const unsigned char *)data;
	crl = d2i_X509_CRL(NULL, &p, (long)len);
	if (crl == NULL || ASN1_TIME_to_tm(X509_CRL_get0_lastUpdate(crl), &tm) != 1)
		return TRUE;
	last = (gint64)timegm(&tm);
	return now - last >= CS_CA_CRL_REFRESH_S || last > now;
}

CsCaSet *
cs_ca_set_new(CsConfig *config, const char *state_dir, CsLedger *ledger, GError **error)
{
	g_autoptr(CsCaSet) set = g_new0(CsCaSet, 1);

	set->ledger = ledger;
	set->cas = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)cs_ca_free);
	set->key_algorithms = g_hash_table_new(g_str_hash, g_str_equal);
	for (guint i = 0; config->vendors != NULL && i < config->vendors->len; i++) {
		const CsVendor *v = g_ptr_array_index(config->vendors, i);
		g_autofree char *dir = g_build_filename(state_dir, "ca", v->id, NULL);
		g_autofree char *crl_path = g_build_filename(dir, "issuing.crl", NULL);
		gboolean created = FALSE;
		CsCa *ca = cs_ca_open(v, dir, &created, error);

		if (ca == NULL) {
			g_prefix_error(error, "vendor %s: CA: ", v->id);
			return NULL;
		}
		g_hash_table_insert(set->cas, ca->vendor_id, ca);
		g_hash_table_insert(set->key_algorithms, ca->vendor_id, v->key_algorithm);
		if (created)
			g_message("vendor %s: created its %s CA in %s", v->id,
				  cs_key_algorithm_to_string(ca->algorithm), dir);
		if (!record_ca_certificates(set, ca, error)) {
			g_prefix_error(error, "vendor %s: CA: ", v->id);
			return NULL;
		}
		if (crl_due(crl_path, cs_clock_now())) {
			g_autoptr(GBytes) crl =
			    cs_ca_set_regenerate_crl(set, v->id, cs_clock_now(), error);
			if (crl == NULL) {
				g_prefix_error(error, "vendor %s: CRL: ", v->id);
				return NULL;
			}
		}
	}
	return g_steal_pointer(&set);
}

CsCa *
cs_ca_set_get(CsCaSet *set, const char *vendor, GError **error)
{
	CsCa *ca = vendor != NULL ? g_hash_table_lookup(set->cas, vendor) : NULL;

	if (ca == NULL)
		g_set_error(error, CS_ERROR, CS_ERROR_NOT_FOUND, "vendor: no CA for '%s'",
			    vendor != NULL ? vendor : "");
	return ca;
}

/* The subscriber certificate @serial of the request's subject and of @ca's vendor that a
 * new one follows or replaces, or NULL (NotEligible, naming certificate_serial). */
static CsCertRow *
load_subject_certificate(
    CsCaSet *set, CsCa *ca, const CsIssueRequest *request, const char *serial, GError **error)
{
	g_autoptr(CsCertRow) old = cs_ledger_load_certificate(set->ledger, serial, error);

	if (old == NULL) {
		g_prefix_error(error, "certificate_serial: ");
		return NULL;
	}
	if (g_strcmp0(old->role, "subscriber") != 0 || g_strcmp0(old->vendor, ca->vendor_id) != 0 ||
	    g_strcmp0(old->id_number, request->subject.id_number) != 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_NOT_ELIGIBLE,
			    "certificate_serial: %s is not a %s certificate of this subject",
			    serial, ca->vendor_id);
		return NULL;
	}
	return g_steal_pointer(&old);
}

/* A replacement (reissue, change): from now to the end of @old, which must not have ended. */
static gboolean
keep_old_end(
    const CsCertRow *old, const char *serial, gint64 now, gint64 *nb, gint64 *na, GError **error)
{
	if (old->not_after <= now) {
		g_set_error(error, CS_ERROR, CS_ERROR_NOT_ELIGIBLE,
			    "certificate_serial: %s has expired; apply for a new certificate",
			    serial);
		return FALSE;
	}
	*nb = now;
	*na = old->not_after;
	return TRUE;
}

static gboolean
issue_dates(CsCaSet *set,
	    CsCa *ca,
	    const CsIssueRequest *request,
	    gint64 now,
	    gint64 *nb,
	    gint64 *na,
	    GError **error)
{
	g_autoptr(CsCertRow) old = NULL;

	if (request->keep_end_serial != NULL) {
		old = load_subject_certificate(set, ca, request, request->keep_end_serial, error);
		return old != NULL &&
		       keep_old_end(old, request->keep_end_serial, now, nb, na, error);
	}
	if (request->renew_serial == NULL)
		return cs_validity_new(now, ca->validity_days, nb, na, error);
	old = load_subject_certificate(set, ca, request, request->renew_serial, error);
	if (old == NULL)
		return FALSE;
	if (g_strcmp0(old->status, "valid") != 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_NOT_ELIGIBLE,
			    "certificate_serial: %s is revoked (%s); apply for a new certificate",
			    request->renew_serial, old->reason);
		return FALSE;
	}
	if (request->keep_end)
		return keep_old_end(old, request->renew_serial, now, nb, na, error);
	/* The window as of when the flow checked it (before the key was touched), the dates
	 * as of now. */
	if (!cs_validity_renewal_eligible(
		old->not_after, request->eligible_at != 0 ? request->eligible_at : now, error))
		return FALSE;
	return cs_validity_renewed_period(old->not_after, now, ca->validity_days, nb, na, error);
}

static gboolean
record_issue(CsCaSet *set,
	     const CsIssueRequest *request,
	     const char *serial,
	     const char *subject,
	     GBytes *der,
	     gint64 nb,
	     gint64 na,
	     GError **error)
{
	g_autoptr(GVariant) data = event_data(serial, request->vendor, NULL, nb, na, NULL);
	CsCertRow row = {
	    .serial = (char *)serial,
	    .vendor = (char *)request->vendor,
	    .role = (char *)"subscriber",
	    .subject = (char *)subject,
	    .subject_type = (char *)cs_subject_type_to_string(request->subject.type),
	    .id_number = (char *)request->subject.id_number,
	    .order_id = (char *)request->order_id,
	    .not_before = nb,
	    .not_after = na,
	    .der = der,
	    .created = g_get_real_time(),
	};

	if (!cs_ledger_begin(set->ledger, error))
		return FALSE;
	if (!cs_ledger_insert_certificate(set->ledger, &row, error) ||
	    !cs_ledger_append_event(set->ledger, request->order_id, "certificate_issued", NULL,
				    NULL, request->actor != NULL ? request->actor : "system", data,
				    row.created, NULL, error) ||
	    !cs_ledger_commit(set->ledger, error)) {
		cs_ledger_rollback(set->ledger);
		return FALSE;
	}
	return TRUE;
}

GBytes *
cs_ca_set_issue(
    CsCaSet *set, const CsIssueRequest *request, const CsCsr *csr, gint64 now, GError **error)
{
	CsCa *ca = cs_ca_set_get(set, request->vendor, error);
	g_autoptr(X509_NAME) subject = NULL;
	g_autofree char *subject_text = NULL;
	CsKeyAlgorithm wanted;
	gint64 nb = 0, na = 0;

	if (ca == NULL)
		return NULL;
	wanted =
	    cs_key_algorithm_from_string(g_hash_table_lookup(set->key_algorithms, ca->vendor_id));
	if (cs_csr_get_algorithm(csr) != wanted) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "csr: the key is %s but vendor %s issues for %s keys",
			    cs_key_algorithm_to_string(cs_csr_get_algorithm(csr)), ca->vendor_id,
			    cs_key_algorithm_to_string(wanted));
		return NULL;
	}
	subject = cs_cert_subject_build(&request->subject, error);
	if (subject == NULL || !issue_dates(set, ca, request, now, &nb, &na, error))
		return NULL;
	if (na > asn1_time_to_unix(X509_get0_notAfter(ca->issuing))) {
		g_set_error(error, CS_ERROR, CS_ERROR_UNAVAILABLE,
			    "certificate: would outlive vendor %s's issuing CA; a new issuing CA "
			    "is needed",
			    ca->vendor_id);
		return NULL;
	}
	subject_text = name_to_text(subject);
	for (guint attempt = 0; attempt < SERIAL_ATTEMPTS; attempt++) {
		g_autoptr(GError) local = NULL;
		g_autoptr(GBytes) x = NULL;
		g_autofree char *hex = NULL;
		guint8 serial[CS_SERIAL_SIZE];

		if (!random_serial(serial, error))
			return NULL;
		x = cs_ca_sign_certificate(ca, csr, subject, serial, nb, na, error);
		if (x == NULL)
			return NULL;
		hex = serial_hex(serial);
		if (record_issue(set, request, hex, subject_text, x, nb, na, &local)) {
			g_info("vendor %s: issued certificate %s", ca->vendor_id, hex);
			return g_steal_pointer(&x);
		}
		if (!g_str_has_suffix(local->message, "already used")) {
			g_propagate_error(error, g_steal_pointer(&local));
			return NULL;
		}
	}
	g_set_error_literal(error, CS_ERROR, CS_ERROR_INTERNAL, "no unused serial found");
	return NULL;
}

/* The checks and the ledger writes of a revocation, in the caller's transaction. */
static gboolean
revoke_in_txn(CsCaSet *set,
	      const char *serial,
	      const char *reason,
	      const char *actor,
	      const char *order_id,
	      gint64 now,
	      CsCertRow **out,
	      GError **error)
{
	g_autoptr(CsCertRow) row = NULL;
	g_autoptr(GVariant) data = NULL;

	if (!cs_revocation_reason_ok(reason)) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "reason: '%s' is not keyCompromise, affiliationChanged, superseded or "
			    "cessationOfOperation",
			    reason != NULL ? reason : "");
		return FALSE;
	}
	row = cs_ledger_load_certificate(set->ledger, serial, error);
	if (row == NULL)
		return FALSE;
	if (g_strcmp0(row->role, "subscriber") != 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "serial: %s is a CA certificate, not a subscriber's", serial);
		return FALSE;
	}
	if (cs_ca_set_get(set, row->vendor, error) == NULL)
		return FALSE;
	data = event_data(serial, row->vendor, NULL, 0, 0, reason);
	if (!cs_ledger_revoke_certificate(set->ledger, serial, reason, now, error) ||
	    !cs_ledger_append_event(set->ledger, order_id, "certificate_revoked", NULL, NULL,
				    actor != NULL ? actor : "system", data, g_get_real_time(), NULL,
				    error))
		return FALSE;
	*out = g_steal_pointer(&row);
	return TRUE;
}

gboolean
cs_ca_set_revoke(CsCaSet *set,
		 const char *serial,
		 const char *reason,
		 const char *actor,
		 const char *order_id,
		 gint64 now,
		 GError **error)
{
	g_autoptr(CsCertRow) row = NULL;
	g_autoptr(GPtrArray) revoked = NULL;
	g_autoptr(GBytes) crl = NULL;
	gint64 number = 0;

	if (!cs_ledger_begin(set->ledger, error))
		return FALSE;
	if (!revoke_in_txn(set, serial, reason, actor, order_id, now, &row, error) ||
	    !cs_ledger_next_crl_number(set->ledger, row->vendor, &number, error) ||
	    (revoked = cs_ledger_list_revoked(set->ledger, row->vendor, error)) == NULL ||
	    !cs_ledger_commit(set->ledger, error)) {
		cs_ledger_rollback(set->ledger);
		return FALSE;
	}
	g_info("vendor %s: revoked certificate %s (%s)", row->vendor, serial, reason);
	/* Recorded: a failure to publish now is reported, and the next regeneration (on
	 * demand or at the next change) includes this entry anyway. */
	crl = publish_crl(cs_ca_set_get(set, row->vendor, NULL), revoked, number, now, error);
	if (crl == NULL) {
		g_prefix_error(error, "revoked, but the CRL was not written: ");
		return FALSE;
	}
	return TRUE;
}

gboolean
cs_ca_set_revoke_in_transaction(CsCaSet *set,
				const char *serial,
				const char *reason,
				const char *actor,
				const char *order_id,
				gint64 now,
				char **vendor,
				GError **error)
{
	g_autoptr(CsCertRow) row = NULL;

	if (!revoke_in_txn(set, serial, reason, actor, order_id, now, &row, error))
		return FALSE;
	g_info("vendor %s: revoking certificate %s (%s)", row->vendor, serial, reason);
	*vendor = g_strdup(row->vendor);
	return TRUE;
}

GPtrArray *
cs_ca_set_find_certificates(CsCaSet *set,
			    const char *vendor,
			    const char *subject_type,
			    const char *id_number,
			    gint64 now,
			    GError **error)
{
	GPtrArray *rows =
	    cs_ledger_find_certificates(set->ledger, vendor, subject_type, id_number, error);

	for (guint i = 0; rows != NULL && i < rows->len; i++) {
		CsCertRow *row = g_ptr_array_index(rows, i);

		if (g_strcmp0(row->status, "valid") == 0 && row->not_after <= now) {
			g_free(row->status);
			row->status = g_strdup("expired");
		}
	}
	return rows;
}
