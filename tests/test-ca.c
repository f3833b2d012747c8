/*
 * test-ca.c — the embedded CA of each vendor (docs/architecture.md §4, §8, §9) with a real ledger
 * file: CA creation, issuance from CSRs at the C API where CSRs enter, chains and CRLs
 * checked by the real `openssl` command (RSA, EC, and SM2 with its distinguishing ID),
 * renewal dates, revocation, and every bad CSR or subject refused with nothing stored.
 */
#include <glib/gstdio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "cs-ca.h"
#include "cs-certs.h"
#include "cs-engine.h"
#include "cs-loader.h"
#include "cs-seal.h"
#include "cs-validity.h"

#define DAY CS_VALIDITY_DAY_SECONDS

typedef struct {
	char *dir;
	CsConfig *config;
	CsVault *vault;
	CsLedger *ledger;
	CsCaSet *cas;
	gint64 eligible_at; /* renewals: the window checked at this instant (0: now) */
} Fixture;

static const char *const profiles[][2] = {
    {"v-rsa", "rsa-2048"},
    {"v-ec", "ec-p256"},
    {"v-sm2", "sm2"},
};

static const char ORG_NAME[] = "厦门示例科技有限公司";
static const char USCC[] = "91350200776049653A";
static const char PERSON_ID[] = "11010519491231002X";

static void
write_profile(const char *vendor_dir, const char *id, const char *alg)
{
	g_autofree char *path = g_strdup_printf("%s/%s.conf", vendor_dir, id);
	g_autofree char *text = g_strdup_printf(
	    "[vendor]\nname = Test vendor %s\ndriver = pkcs11\n[key]\nalgorithm = %s\n"
	    "[ca]\nalgorithm = %s\nvalidity_days = 365\ncrl_url = http://crl.%s.test/issuing.crl\n",
	    id, alg, alg, id);
	g_assert_true(g_file_set_contents(path, text, -1, NULL));
}

static void
open_all(Fixture *f)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *ledger_path = g_build_filename(f->dir, "ledger.db", NULL);

	f->vault = cs_vault_open(f->dir, &error);
	g_assert_no_error(error);
	f->ledger = cs_ledger_open(ledger_path, f->vault, 1000, &error);
	g_assert_no_error(error);
	f->cas = cs_ca_set_new(f->config, f->dir, f->ledger, &error);
	g_assert_no_error(error);
	g_assert_nonnull(f->cas);
}

static void
close_all(Fixture *f)
{
	g_clear_pointer(&f->cas, cs_ca_set_free);
	g_clear_pointer(&f->ledger, cs_ledger_free);
	g_clear_pointer(&f->vault, cs_vault_free);
}

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *vendor_dir = NULL;

	f->dir = g_dir_make_tmp("cs-ca-XXXXXX", &error);
	g_assert_no_error(error);
	vendor_dir = g_build_filename(f->dir, "vendors.d", NULL);
	g_assert_cmpint(g_mkdir(vendor_dir, 0700), ==, 0);
	for (guint i = 0; i < G_N_ELEMENTS(profiles); i++)
		write_profile(vendor_dir, profiles[i][0], profiles[i][1]);
	f->config = cs_config_load(NULL, &error);
	g_assert_no_error(error);
	g_free(f->config->vendor_dir);
	f->config->vendor_dir = g_steal_pointer(&vendor_dir);
	g_assert_true(cs_config_load_vendors(f->config, &error));
	g_assert_no_error(error);
	open_all(f);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
	g_autofree char *cmd = NULL;

	close_all(f);
	g_clear_pointer(&f->config, cs_config_free);
	/* Our own temporary directory only. */
	cmd = g_strdup_printf("rm -rf '%s'", f->dir);
	g_assert_cmpint(system(cmd), ==, 0);
	g_free(f->dir);
}

/* ---- helpers -------------------------------------------------------------------------- */

static GBytes *
der_of_req(X509_REQ *req)
{
	guint8 *der = NULL;
	int len = i2d_X509_REQ(req, &der);
	GBytes *b;

	g_assert_cmpint(len, >, 0);
	b = g_bytes_new(der, (gsize)len);
	OPENSSL_free(der);
	return b;
}

/* A CSR for @key, signed with it (SM2 with the standard ID unless @sm2_id is NULL). */
static GBytes *
make_csr_with_id(EVP_PKEY *key, const char *sm2_id)
{
	g_autoptr(X509_REQ) req = X509_REQ_new();
	g_autoptr(EVP_MD_CTX) ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	gboolean sm2 = cs_key_algorithm_of(key, NULL) == CS_KEY_SM2;

	g_assert_cmpint(X509_REQ_set_version(req, 0), ==, 1);
	g_assert_cmpint(X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN",
						   MBSTRING_ASC, (const guint8 *)"ignored", -1, -1,
						   0),
			==, 1);
	g_assert_cmpint(X509_REQ_set_pubkey(req, key), ==, 1);
	g_assert_cmpint(
	    EVP_DigestSignInit_ex(ctx, &pctx, sm2 ? "SM3" : "SHA256", NULL, NULL, key, NULL), ==,
	    1);
	if (sm2 && sm2_id != NULL)
		g_assert_cmpint(EVP_PKEY_CTX_set1_id(pctx, sm2_id, strlen(sm2_id)), ==, 1);
	g_assert_cmpint(X509_REQ_sign_ctx(req, ctx), >, 0);
	return der_of_req(req);
}

static GBytes *
make_csr(EVP_PKEY *key)
{
	return make_csr_with_id(key, CS_SM2_ID);
}

static EVP_PKEY *
generate(CsKeyAlgorithm alg)
{
	g_autoptr(GError) error = NULL;
	EVP_PKEY *key = cs_key_generate(alg, &error);

	g_assert_no_error(error);
	return key;
}

static CsCsr *
parse_csr(GBytes *der)
{
	g_autoptr(GError) error = NULL;
	CsCsr *csr = cs_csr_parse(g_bytes_get_data(der, NULL), g_bytes_get_size(der), &error);

	g_assert_no_error(error);
	g_assert_nonnull(csr);
	return csr;
}

static X509 *
issue_full(Fixture *f,
	   const char *vendor,
	   CsSubjectType type,
	   const char *name,
	   const char *id,
	   const char *renew,
	   gint64 now,
	   EVP_PKEY **key_out,
	   GError **error)
{
	CsCa *ca = cs_ca_set_get(f->cas, vendor, NULL);
	g_autoptr(EVP_PKEY) key = generate(cs_ca_get_algorithm(ca));
	g_autoptr(GBytes) der = make_csr(key);
	g_autoptr(CsCsr) csr = parse_csr(der);
	CsIssueRequest request = {
	    .vendor = vendor,
	    .actor = "office:test",
	    .subject = {type, name, id},
	    .renew_serial = renew,
	    .eligible_at = f->eligible_at,
	};
	g_autoptr(GBytes) der_out = cs_ca_set_issue(f->cas, &request, csr, now, error);
	X509 *x = der_out != NULL ? cs_x509_from_der(der_out) : NULL;

	if (key_out != NULL)
		*key_out = g_steal_pointer(&key);
	return x;
}

static X509 *
issue_org(Fixture *f, const char *vendor)
{
	g_autoptr(GError) error = NULL;
	X509 *x = issue_full(f, vendor, CS_SUBJECT_ORG, ORG_NAME, USCC, NULL,
			     g_get_real_time() / G_USEC_PER_SEC, NULL, &error);

	g_assert_no_error(error);
	g_assert_nonnull(x);
	return x;
}

static char *
serial_of(X509 *x)
{
	return cs_serial_to_hex(X509_get0_serialNumber(x));
}

static char *
write_pem(Fixture *f, const char *name, X509 *x)
{
	char *path = g_build_filename(f->dir, name, NULL);
	BIO *bio = BIO_new_file(path, "w");

	g_assert_nonnull(bio);
	g_assert_cmpint(PEM_write_bio_X509(bio, x), ==, 1);
	BIO_free(bio);
	return path;
}

/* Run the real openssl; its exit status, and stdout+stderr in @output. */
static int
run_openssl(const char *const *args, char **output)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autoptr(GError) error = NULL;
	g_autofree char *out = NULL;
	g_autofree char *err = NULL;
	int status = -1;

	g_ptr_array_add(argv, (gpointer) "openssl");
	for (guint i = 0; args[i] != NULL; i++)
		g_ptr_array_add(argv, (gpointer)args[i]);
	g_ptr_array_add(argv, NULL);
	g_assert_true(g_spawn_sync(NULL, (char **)argv->pdata, NULL, G_SPAWN_SEARCH_PATH, NULL,
				   NULL, &out, &err, &status, &error));
	g_assert_no_error(error);
	g_test_message("openssl %s: %s%s", args[0], out, err);
	if (output != NULL)
		*output = g_strconcat(out, err, NULL);
	return g_spawn_check_wait_status(status, NULL) ? 0 : 1;
}

static char *
ca_file(Fixture *f, const char *vendor, const char *name)
{
	return g_build_filename(f->dir, "ca", vendor, name, NULL);
}

static gint64
count_rows(Fixture *f, const char *sql)
{
	sqlite3_stmt *stmt = NULL;
	gint64 n;

	g_assert_cmpint(sqlite3_prepare_v2(cs_ledger_get_db(f->ledger), sql, -1, &stmt, NULL), ==,
			SQLITE_OK);
	g_assert_cmpint(sqlite3_step(stmt), ==, SQLITE_ROW);
	n = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	return n;
}

static void
assert_verifies(Fixture *f)
{
	g_autoptr(GError) error = NULL;
	gint64 bad = 0;

	g_assert_true(cs_ledger_verify(f->ledger, 1, &bad, NULL, &error));
	g_assert_no_error(error);
}

/* ---- creation ------------------------------------------------------------------------- */

static void
test_created_on_first_start(Fixture *f, gconstpointer data)
{
	const char *const files[] = {"root.key",    "root.crt",	      "issuing.key",
				     "issuing.crt", "seal-maker.key", "seal-maker.crt",
				     "issuing.crl"};
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) root_before = NULL;
	g_autofree char *root_path = ca_file(f, "v-ec", "root.crt");
	g_autofree char *root_text = NULL;

	for (guint v = 0; v < G_N_ELEMENTS(profiles); v++) {
		CsCa *ca = cs_ca_set_get(f->cas, profiles[v][0], &error);

		g_assert_no_error(error);
		g_assert_cmpint(cs_ca_get_algorithm(ca), ==,
				cs_key_algorithm_from_string(profiles[v][1]));
		for (guint i = 0; i < G_N_ELEMENTS(files); i++) {
			g_autofree char *p = ca_file(f, profiles[v][0], files[i]);
			struct stat st;

			g_assert_cmpint(g_stat(p, &st), ==, 0);
			if (g_str_has_suffix(files[i], ".key"))
				g_assert_cmpint(st.st_mode & 0777, ==, 0600);
		}
	}
	/* Three CA certificates per vendor, recorded once, each with its event. */
	g_assert_cmpint(
	    count_rows(f, "SELECT count(*) FROM certificates WHERE role != 'subscriber'"), ==, 9);
	g_assert_cmpint(count_rows(f, "SELECT count(*) FROM events "
				      "WHERE kind = 'ca_certificate_created'"),
			==, 9);
	g_assert_cmpint(
	    count_rows(f, "SELECT count(*) FROM certificates WHERE length(serial) = 32"), ==, 9);

	/* A restart loads the same CA and records nothing twice. */
	g_assert_true(g_file_get_contents(root_path, &root_text, NULL, NULL));
	close_all(f);
	open_all(f);
	{
		g_autofree char *again = NULL;
		g_assert_true(g_file_get_contents(root_path, &again, NULL, NULL));
		g_assert_cmpstr(again, ==, root_text);
	}
	g_assert_cmpint(count_rows(f, "SELECT count(*) FROM certificates"), ==, 9);
	assert_verifies(f);
}

static void
test_refuses_unsafe_key(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *key = ca_file(f, "v-ec", "issuing.key");
	CsCaSet *set;

	g_clear_pointer(&f->cas, cs_ca_set_free);
	g_assert_cmpint(g_chmod(key, 0644), ==, 0);
	set = cs_ca_set_new(f->config, f->dir, f->ledger, &error);
	g_assert_null(set);
	g_assert_error(error, CS_ERROR, CS_ERROR_INTERNAL);
	g_assert_nonnull(strstr(error->message, "issuing.key"));
	g_assert_nonnull(strstr(error->message, "group or others"));
	g_clear_error(&error);
	g_assert_cmpint(g_chmod(key, 0600), ==, 0);

	/* The profile now says another algorithm: the existing CA is never replaced. */
	for (guint i = 0; i < f->config->vendors->len; i++) {
		CsVendor *v = g_ptr_array_index(f->config->vendors, i);
		if (g_strcmp0(v->id, "v-ec") == 0) {
			g_free(v->ca_algorithm);
			v->ca_algorithm = g_strdup("rsa-2048");
		}
	}
	set = cs_ca_set_new(f->config, f->dir, f->ledger, &error);
	g_assert_null(set);
	g_assert_error(error, CS_ERROR, CS_ERROR_INTERNAL);
	g_assert_nonnull(strstr(error->message, "never replaced"));
}

/* ---- issuance and openssl verify ------------------------------------------------------ */

static void
check_extensions(CsCa *ca, X509 *x)
{
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(x);
	const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(x);
	STACK_OF(DIST_POINT) *dps = X509_get_ext_d2i(x, NID_crl_distribution_points, NULL, NULL);
	BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, NULL, NULL);
	const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
	GENERAL_NAME *gn;

	g_assert_cmpint(X509_get_version(x), ==, X509_VERSION_3);
	g_assert_cmpint(ASN1_STRING_length(sn), ==, CS_SERIAL_SIZE);
	g_assert_nonnull(bc);
	g_assert_false(bc->ca);
	BASIC_CONSTRAINTS_free(bc);
	g_assert_cmpuint(X509_get_key_usage(x), ==, KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION);
	g_assert_nonnull(ski);
	g_assert_nonnull(aki);
	g_assert_cmpint(ASN1_OCTET_STRING_cmp(aki, X509_get0_subject_key_id(cs_ca_get_issuing(ca))),
			==, 0);
	g_assert_nonnull(dps);
	g_assert_cmpint(sk_DIST_POINT_num(dps), ==, 1);
	gn = sk_GENERAL_NAME_value(sk_DIST_POINT_value(dps, 0)->distpoint->name.fullname, 0);
	g_assert_cmpint(gn->type, ==, GEN_URI);
	g_assert_true(g_str_has_prefix(
	    (const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier), "http://crl."));
	sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
}

static void
test_issue_and_openssl_verify(Fixture *f, gconstpointer data)
{
	const char *vendor = data;
	CsCa *ca = cs_ca_set_get(f->cas, vendor, NULL);
	gboolean sm2 = cs_ca_get_algorithm(ca) == CS_KEY_SM2;
	g_autoptr(X509) x = issue_org(f, vendor);
	g_autofree char *leaf = write_pem(f, "leaf.pem", x);
	g_autofree char *root = ca_file(f, vendor, "root.crt");
	g_autofree char *issuing = ca_file(f, vendor, "issuing.crt");
	g_autofree char *maker = ca_file(f, vendor, "seal-maker.crt");
	g_autofree char *out = NULL;
	g_autofree char *serial = serial_of(x);
	g_autoptr(CsCertRow) row = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *subject = NULL;
	const char *verify_sm2_issuing[] = {
	    "verify", "-vfyopt", "distid:" CS_SM2_ID, "-CAfile", root, issuing, NULL};
	const char *verify_sm2[] = {
	    "verify", "-vfyopt", "distid:" CS_SM2_ID, "-partial_chain", "-CAfile", issuing,
	    leaf,     NULL};
	const char *verify_plain[] = {"verify", "-CAfile", root, "-untrusted", issuing, leaf, NULL};
	const char *verify_maker_sm2[] = {"verify", "-vfyopt", "distid:" CS_SM2_ID, "-CAfile", root,
					  maker,    NULL};
	const char *verify_maker[] = {"verify", "-CAfile", root, maker, NULL};
	const char *verify_wrong_root[] = {"verify",	 "-CAfile", issuing, "-partial_chain",
					   "-untrusted", root,	    maker,   NULL};

	/* The real openssl accepts the chain. SM2: openssl verify applies -vfyopt to the
	 * certificate it is given only, so the chain is checked link by link, each link
	 * with the distinguishing ID: root → issuing, then issuing → subscriber. */
	if (sm2) {
		g_assert_cmpint(run_openssl(verify_sm2_issuing, &out), ==, 0);
		g_assert_nonnull(strstr(out, ": OK"));
		g_clear_pointer(&out, g_free);
	}
	g_assert_cmpint(run_openssl(sm2 ? verify_sm2 : verify_plain, &out), ==, 0);
	g_assert_nonnull(strstr(out, ": OK"));
	g_clear_pointer(&out, g_free);
	g_assert_cmpint(run_openssl(sm2 ? verify_maker_sm2 : verify_maker, &out), ==, 0);
	g_clear_pointer(&out, g_free);
	/* The control: the seal maker is not issued by the issuing CA. */
	g_assert_cmpint(run_openssl(verify_wrong_root, &out), !=, 0);
	g_clear_pointer(&out, g_free);
	if (sm2) {
		/* Without the ID, OpenSSL uses an empty one and the signature does not verify:
		 * proof that the ID really is in the signatures. */
		const char *no_id[] = {"verify", "-partial_chain", "-CAfile", issuing, leaf, NULL};
		g_assert_cmpint(run_openssl(no_id, &out), !=, 0);
		g_clear_pointer(&out, g_free);
	}

	check_extensions(ca, x);
	cs_ca_verify_chain(ca, x, g_get_real_time() / G_USEC_PER_SEC, &error);
	g_assert_no_error(error);
	g_assert_cmpint(X509_cmp_time(X509_get0_notAfter(x), NULL), >, 0);
	{
		int days = 0, secs = 0;
		g_assert_cmpint(
		    ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x), X509_get0_notAfter(x)), ==,
		    1);
		g_assert_cmpint(days, ==, 365);
		g_assert_cmpint(secs, ==, 0);
	}
	/* Subject per docs/architecture.md §9, from the order. */
	subject = X509_NAME_oneline(X509_get_subject_name(x), NULL, 0);
	g_assert_nonnull(strstr(subject, "/C=CN/O="));
	g_assert_nonnull(strstr(subject, "organizationIdentifier=NTRCN-91350200776049653A"));
	OPENSSL_free(g_steal_pointer(&subject));

	/* Recorded durably: the row and a chained event; no private key anywhere. */
	row = cs_ledger_load_certificate(f->ledger, serial, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(row->status, ==, "valid");
	g_assert_cmpstr(row->vendor, ==, vendor);
	g_assert_cmpstr(row->id_number, ==, USCC);
	g_assert_cmpint(
	    count_rows(f, "SELECT count(*) FROM events WHERE kind = 'certificate_issued'"), ==, 1);
	g_assert_cmpint(count_rows(f, "SELECT count(*) FROM certificates WHERE "
				      "instr(der, CAST('PRIVATE' AS BLOB)) > 0"),
			==, 0);
	assert_verifies(f);
}

static void
test_person_subject(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(X509) x = issue_full(f, "v-ec", CS_SUBJECT_PERSON, "王五", PERSON_ID, NULL,
				       g_get_real_time() / G_USEC_PER_SEC, NULL, &error);
	X509_NAME *name;
	char buf[128];
	guint8 *der = NULL;
	int len;

	g_assert_no_error(error);
	name = X509_get_subject_name(x);
	g_assert_cmpint(X509_NAME_get_text_by_NID(name, NID_serialNumber, buf, sizeof(buf)), ==,
			64);
	{
		g_autofree char *expect =
		    g_compute_checksum_for_string(G_CHECKSUM_SHA256, PERSON_ID, -1);
		g_assert_cmpstr(buf, ==, expect);
	}
	/* The resident ID number itself never appears in the certificate. */
	len = i2d_X509(x, &der);
	g_assert_null(g_strstr_len((const char *)der, len, PERSON_ID));
	OPENSSL_free(der);
	g_assert_cmpint(X509_NAME_get_index_by_NID(name, NID_organizationName, -1), <, 0);
}

static void
test_renewal_dates(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	g_autoptr(X509) first =
	    issue_full(f, "v-ec", CS_SUBJECT_ORG, ORG_NAME, USCC, NULL, now, NULL, &error);
	g_autofree char *serial = serial_of(first);
	g_autoptr(X509) early = NULL;
	g_autoptr(X509) renewed = NULL;
	gint64 old_end = now + 365 * DAY;

	g_assert_no_error(error);
	/* 365 days left: not eligible, nothing issued. */
	early = issue_full(f, "v-ec", CS_SUBJECT_ORG, ORG_NAME, USCC, serial, now, NULL, &error);
	g_assert_null(early);
	g_assert_error(error, CS_ERROR, CS_ERROR_NOT_ELIGIBLE);
	g_clear_error(&error);
	/* 89 days left: valid from its issuance, the end continues from the old end date. */
	renewed = issue_full(f, "v-ec", CS_SUBJECT_ORG, ORG_NAME, USCC, serial, old_end - 89 * DAY,
			     NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpint(
	    ASN1_TIME_cmp_time_t(X509_get0_notBefore(renewed), (time_t)(old_end - 89 * DAY)), ==,
	    0);
	g_assert_cmpint(
	    ASN1_TIME_cmp_time_t(X509_get0_notAfter(renewed), (time_t)(old_end + 365 * DAY)), ==,
	    0);
	g_clear_pointer(&renewed, X509_free);
	/* Expired 366 days: refused; 10 days: from the download day. */
	renewed = issue_full(f, "v-ec", CS_SUBJECT_ORG, ORG_NAME, USCC, serial, old_end + 366 * DAY,
			     NULL, &error);
	g_assert_null(renewed);
	g_assert_error(error, CS_ERROR, CS_ERROR_NOT_ELIGIBLE);
	g_clear_error(&error);
	renewed = issue_full(f, "v-ec", CS_SUBJECT_ORG, ORG_NAME, USCC, serial, old_end + 10 * DAY,
			     NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpint(
	    ASN1_TIME_cmp_time_t(X509_get0_notBefore(renewed), (time_t)(old_end + 10 * DAY)), ==,
	    0);
	/* A resumed download whose window closed meanwhile: checked as of when the flow
	 * checked it, dated from now. */
	g_clear_pointer(&renewed, X509_free);
	f->eligible_at = old_end + 10 * DAY;
	renewed = issue_full(f, "v-ec", CS_SUBJECT_ORG, ORG_NAME, USCC, serial, old_end + 366 * DAY,
			     NULL, &error);
	f->eligible_at = 0;
	g_assert_no_error(error);
	g_assert_cmpint(
	    ASN1_TIME_cmp_time_t(X509_get0_notAfter(renewed), (time_t)(old_end + 731 * DAY)), ==,
	    0);
	/* Another subject cannot renew this certificate. */
	g_clear_pointer(&renewed, X509_free);
	renewed = issue_full(f, "v-ec", CS_SUBJECT_ORG, "另一家公司", "91440101MA5CJQ4N59", serial,
			     old_end - DAY, NULL, &error);
	g_assert_null(renewed);
	g_assert_error(error, CS_ERROR, CS_ERROR_NOT_ELIGIBLE);
	g_assert_cmpint(
	    count_rows(f, "SELECT count(*) FROM certificates WHERE role = 'subscriber'"), ==, 4);
}

/* ---- bad input ------------------------------------------------------------------------ */

static void
assert_csr_refused(GBytes *der, const char *reason)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(CsCsr) csr =
	    cs_csr_parse(g_bytes_get_data(der, NULL), g_bytes_get_size(der), &error);

	g_assert_null(csr);
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_true(g_str_has_prefix(error->message, "csr: "));
	if (strstr(error->message, reason) == NULL)
		g_error("expected '%s' in '%s'", reason, error->message);
	g_assert_cmpint(ERR_peek_error(), ==, 0);
}

static void
test_bad_csrs_refused(Fixture *f, gconstpointer data)
{
	g_autoptr(EVP_PKEY) ec = generate(CS_KEY_EC_P256);
	g_autoptr(EVP_PKEY) sm2 = generate(CS_KEY_SM2);
	g_autoptr(EVP_PKEY) rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	g_autoptr(EVP_PKEY) p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	g_autoptr(EVP_PKEY) ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	g_autoptr(GBytes) good = make_csr(ec);
	gsize len = g_bytes_get_size(good);
	g_autofree guint8 *buf = g_malloc(CS_CSR_MAX_SIZE + 1);
	gint64 seq = cs_ledger_last_seq(f->ledger);
	gint64 certs = count_rows(f, "SELECT count(*) FROM certificates");

	memcpy(buf, g_bytes_get_data(good, NULL), len);
	/* Malformed: garbage, a truncated request, trailing bytes. */
	{
		g_autoptr(GBytes) junk = g_bytes_new_static("\x30\x03\x02\x01\x01not a csr", 12);
		g_autoptr(GBytes) cut = g_bytes_new(buf, len - 10);
		g_autoptr(GBytes) tail = NULL;

		assert_csr_refused(junk, "not a DER PKCS#10 request");
		assert_csr_refused(cut, "not a DER PKCS#10 request");
		buf[len] = 0;
		tail = g_bytes_new(buf, len + 1);
		assert_csr_refused(tail, "1 bytes after the request");
	}
	/* Oversized. */
	{
		g_autoptr(GBytes) big = NULL;
		memset(buf + len, 0, CS_CSR_MAX_SIZE + 1 - len);
		big = g_bytes_new(buf, CS_CSR_MAX_SIZE + 1);
		assert_csr_refused(big, "too large");
	}
	/* Wrong signature: the last byte of the signature flipped. */
	{
		g_autoptr(GBytes) bad = NULL;
		memcpy(buf, g_bytes_get_data(good, NULL), len);
		buf[len - 1] ^= 0x01;
		bad = g_bytes_new(buf, len);
		assert_csr_refused(bad, "signature does not verify");
	}
	/* SM2 signed with an empty ID (OpenSSL's default): not the proof we accept. */
	{
		g_autoptr(GBytes) no_id = make_csr_with_id(sm2, NULL);
		g_autoptr(GBytes) with_id = make_csr(sm2);
		g_autoptr(CsCsr) ok = NULL;

		assert_csr_refused(no_id, "signature does not verify");
		ok = parse_csr(with_id);
		g_assert_cmpint(cs_csr_get_algorithm(ok), ==, CS_KEY_SM2);
	}
	/* Unsupported keys. */
	{
		g_autoptr(GBytes) a = make_csr(rsa1024);
		g_autoptr(GBytes) b = make_csr(p384);
		g_autoptr(X509_REQ) req = X509_REQ_new();
		g_autoptr(GBytes) c = NULL;

		assert_csr_refused(a, "unsupported key type RSA-1024");
		assert_csr_refused(b, "unsupported key type EC secp384r1");
		X509_REQ_set_pubkey(req, ed);
		g_assert_cmpint(X509_REQ_sign(req, ed, NULL), >, 0);
		c = der_of_req(req);
		assert_csr_refused(c, "unsupported key type ED25519");
	}
	/* A supported key of another algorithm than the vendor's. */
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(CsCsr) csr = parse_csr(good);
		CsIssueRequest request = {.vendor = "v-rsa",
					  .subject = {CS_SUBJECT_ORG, ORG_NAME, USCC}};
		g_autoptr(GBytes) x = cs_ca_set_issue(f->cas, &request, csr, 0, &error);

		g_assert_null(x);
		g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
		g_assert_cmpstr(
		    error->message, ==,
		    "csr: the key is ec-p256 but vendor v-rsa issues for rsa-2048 keys");
	}
	/* Nothing issued, nothing stored. */
	g_assert_cmpint(cs_ledger_last_seq(f->ledger), ==, seq);
	g_assert_cmpint(count_rows(f, "SELECT count(*) FROM certificates"), ==, certs);
}

static void
test_bad_subjects_refused(Fixture *f, gconstpointer data)
{
	const struct {
		CsSubjectType type;
		const char *name;
		const char *id;
		const char *field;
	} cases[] = {
	    {CS_SUBJECT_ORG, "示例\x07公司", USCC, "org_name: "},
	    {CS_SUBJECT_ORG, "示例\n公司", USCC, "org_name: "},
	    {CS_SUBJECT_ORG, NULL, USCC, "org_name: "},
	    {CS_SUBJECT_ORG, ORG_NAME, "91350200776049653B", "uscc: "},
	    {CS_SUBJECT_PERSON, "王五", "110105194912310021", "id_number: "},
	    {CS_SUBJECT_PERSON, "", PERSON_ID, "name: "},
	    {CS_SUBJECT_PERSON, "\xff\xfe", PERSON_ID, "name: "},
	};
	g_autofree char *long_name = g_strnfill(CS_SUBJECT_NAME_MAX + 1, 'A');
	g_autofree char *max_name = g_strnfill(CS_SUBJECT_NAME_MAX, 'A');
	gint64 seq = cs_ledger_last_seq(f->ledger);
	gint64 certs = count_rows(f, "SELECT count(*) FROM certificates");

	for (guint i = 0; i <= G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		gboolean over = i == G_N_ELEMENTS(cases);
		g_autoptr(X509) x =
		    issue_full(f, "v-ec", over ? CS_SUBJECT_ORG : cases[i].type,
			       over ? long_name : cases[i].name, over ? USCC : cases[i].id, NULL,
			       g_get_real_time() / G_USEC_PER_SEC, NULL, &error);
		g_assert_null(x);
		g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
		g_assert_true(
		    g_str_has_prefix(error->message, over ? "org_name: " : cases[i].field));
	}
	g_assert_cmpint(cs_ledger_last_seq(f->ledger), ==, seq);
	g_assert_cmpint(count_rows(f, "SELECT count(*) FROM certificates"), ==, certs);
	/* The control: exactly the maximum length is accepted. */
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(X509) x = issue_full(f, "v-ec", CS_SUBJECT_ORG, max_name, USCC, NULL,
					       g_get_real_time() / G_USEC_PER_SEC, NULL, &error);
		g_assert_no_error(error);
		g_assert_nonnull(x);
	}
}

/* ---- revocation and CRLs -------------------------------------------------------------- */

static void
test_revoke_and_crl(Fixture *f, gconstpointer data)
{
	const char *vendor = data;
	CsCa *ca = cs_ca_set_get(f->cas, vendor, NULL);
	gboolean sm2 = cs_ca_get_algorithm(ca) == CS_KEY_SM2;
	g_autoptr(X509) a = issue_org(f, vendor);
	g_autoptr(X509) b = issue_org(f, vendor);
	g_autoptr(X509) c = issue_org(f, vendor);
	g_autofree char *sa = serial_of(a);
	g_autofree char *sb = serial_of(b);
	g_autofree char *sc = serial_of(c);
	g_autofree char *crl = ca_file(f, vendor, "issuing.crl");
	g_autofree char *issuing = ca_file(f, vendor, "issuing.crt");
	g_autofree char *out = NULL;
	g_autoptr(GError) error = NULL;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	const char *verify[] = {"crl",	   "-inform", "DER",	"-in",	   crl,
				"-CAfile", issuing,   "-noout", "-verify", NULL};
	const char *text[] = {"crl", "-inform", "DER", "-in", crl, "-noout", "-text", NULL};

	g_assert_true(
	    cs_ca_set_revoke(f->cas, sa, "keyCompromise", "office:test", NULL, now, &error));
	g_assert_no_error(error);
	g_assert_true(cs_ca_set_revoke(f->cas, sb, "superseded", "office:test", NULL, now, &error));
	g_assert_no_error(error);

	/* Refusals: twice, an unknown reason, a CA certificate, an unknown serial. */
	g_assert_false(cs_ca_set_revoke(f->cas, sa, "superseded", NULL, NULL, now, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_WRONG_STATE);
	g_clear_error(&error);
	g_assert_false(cs_ca_set_revoke(f->cas, sc, "bored", NULL, NULL, now, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_true(g_str_has_prefix(error->message, "reason: "));
	g_clear_error(&error);
	{
		g_autofree char *root_serial = serial_of(cs_ca_get_root(ca));
		g_assert_false(cs_ca_set_revoke(f->cas, root_serial, "keyCompromise", NULL, NULL,
						now, &error));
		g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
		g_clear_error(&error);
	}
	g_assert_false(cs_ca_set_revoke(f->cas, "00", "keyCompromise", NULL, NULL, now, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_NOT_FOUND);
	g_clear_error(&error);

	if (!sm2) {
		/* openssl crl -verify accepts it (SM2: see below). */
		g_assert_cmpint(run_openssl(verify, &out), ==, 0);
		g_assert_nonnull(strstr(out, "verify OK"));
		g_clear_pointer(&out, g_free);
	}
	g_assert_cmpint(run_openssl(text, &out), ==, 0);
	g_assert_nonnull(strstr(out, sa));
	g_assert_nonnull(strstr(out, sb));
	g_assert_null(strstr(out, sc));
	g_assert_nonnull(strstr(out, "Key Compromise"));
	g_assert_nonnull(strstr(out, "Superseded"));
	g_assert_nonnull(strstr(out, "X509v3 CRL Number: \n                3"));
	g_clear_pointer(&out, g_free);

	/* In-process verification of the file with the issuing key (SM2 with the ID). */
	{
		g_autofree char *data_ = NULL;
		gsize n = 0;
		const guint8 *p;
		g_autoptr(X509_CRL) parsed = NULL;

		g_assert_true(g_file_get_contents(crl, &data_, &n, NULL));
		p = (const guint8 *)data_;
		parsed = d2i_X509_CRL(NULL, &p, (long)n);
		g_assert_nonnull(parsed);
		g_assert_cmpint(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(parsed)), ==, 2);
		if (!sm2)
			g_assert_cmpint(
			    X509_CRL_verify(parsed, X509_get0_pubkey(cs_ca_get_issuing(ca))), ==,
			    1);
		/* Any algorithm, by hand: the signature over the TBS bytes with the issuing
		 * key (SM3 and the distinguishing ID for SM2, which openssl crl cannot set). */
		{
			const ASN1_BIT_STRING *sig = NULL;
			guint8 *tbs = NULL;
			int tbs_len = i2d_re_X509_CRL_tbs(parsed, &tbs);
			g_autoptr(EVP_MD_CTX) vctx = EVP_MD_CTX_new();
			EVP_PKEY_CTX *pctx = NULL;

			X509_CRL_get0_signature(parsed, &sig, NULL);
			g_assert_cmpint(
			    EVP_DigestVerifyInit_ex(vctx, &pctx, sm2 ? "SM3" : "SHA256", NULL, NULL,
						    X509_get0_pubkey(cs_ca_get_issuing(ca)), NULL),
			    ==, 1);
			if (sm2)
				g_assert_cmpint(
				    EVP_PKEY_CTX_set1_id(pctx, CS_SM2_ID, CS_SM2_ID_LEN), ==, 1);
			g_assert_cmpint(EVP_DigestVerify(vctx, ASN1_STRING_get0_data(sig),
							 (size_t)ASN1_STRING_length(sig), tbs,
							 (size_t)tbs_len),
					==, 1);
			/* The control: one TBS byte changed does not verify. */
			tbs[tbs_len - 1] ^= 1;
			g_assert_cmpint(
			    EVP_DigestVerifyInit_ex(vctx, &pctx, sm2 ? "SM3" : "SHA256", NULL, NULL,
						    X509_get0_pubkey(cs_ca_get_issuing(ca)), NULL),
			    ==, 1);
			if (sm2)
				g_assert_cmpint(
				    EVP_PKEY_CTX_set1_id(pctx, CS_SM2_ID, CS_SM2_ID_LEN), ==, 1);
			g_assert_cmpint(EVP_DigestVerify(vctx, ASN1_STRING_get0_data(sig),
							 (size_t)ASN1_STRING_length(sig), tbs,
							 (size_t)tbs_len),
					!=, 1);
			ERR_clear_error();
			OPENSSL_free(tbs);
		}
	}

	/* Tampered: the control that openssl really checks the signature. */
	if (!sm2) {
		g_autofree char *bytes = NULL;
		gsize n = 0;
		g_assert_true(g_file_get_contents(crl, &bytes, &n, NULL));
		bytes[n - 5] ^= 0x20;
		g_assert_true(g_file_set_contents(crl, bytes, (gssize)n, NULL));
		/* openssl 3.0's crl command exits 0 either way: read what it says. */
		run_openssl(verify, &out);
		g_assert_nonnull(strstr(out, "verify failure"));
		g_assert_null(strstr(out, "verify OK"));
		g_clear_pointer(&out, g_free);
	}
	/* On demand: regenerated (a new number), the revoked entries kept. */
	{
		g_autoptr(GBytes) der = cs_ca_set_regenerate_crl(f->cas, vendor, now, &error);
		g_assert_no_error(error);
		g_assert_nonnull(der);
	}
	if (!sm2) {
		g_assert_cmpint(run_openssl(verify, &out), ==, 0);
		g_assert_nonnull(strstr(out, "verify OK"));
		g_clear_pointer(&out, g_free);
	}
	g_assert_cmpint(run_openssl(text, &out), ==, 0);
	g_assert_nonnull(strstr(out, "X509v3 CRL Number: \n                4"));
	g_assert_nonnull(strstr(out, sa));

	g_assert_cmpint(
	    count_rows(f, "SELECT count(*) FROM events WHERE kind = 'certificate_revoked'"), ==, 2);
	assert_verifies(f);
}

static void
test_find_certificates_status(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	g_autoptr(X509) old = issue_full(f, "v-ec", CS_SUBJECT_ORG, ORG_NAME, USCC, NULL,
					 now - 400 * DAY, NULL, &error);
	g_autoptr(X509) revoked = issue_org(f, "v-ec");
	g_autoptr(X509) valid = issue_org(f, "v-rsa");
	g_autofree char *s_old = serial_of(old);
	g_autofree char *s_revoked = serial_of(revoked);
	g_autofree char *s_valid = serial_of(valid);
	g_autoptr(GPtrArray) all = NULL;
	g_autoptr(GPtrArray) ec = NULL;
	g_autoptr(GPtrArray) other = NULL;

	g_assert_no_error(error);
	g_assert_true(
	    cs_ca_set_revoke(f->cas, s_revoked, "affiliationChanged", NULL, NULL, now, &error));
	all = cs_ca_set_find_certificates(f->cas, "", "org", USCC, now, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(all->len, ==, 3);
	for (guint i = 0; i < all->len; i++) {
		CsCertRow *row = g_ptr_array_index(all, i);
		const char *expect = g_strcmp0(row->serial, s_old) == 0	      ? "expired"
				     : g_strcmp0(row->serial, s_revoked) == 0 ? "revoked"
									      : "valid";
		g_assert_cmpstr(row->status, ==, expect);
		if (g_strcmp0(row->serial, s_valid) == 0)
			g_assert_cmpstr(row->vendor, ==, "v-rsa");
	}
	ec = cs_ca_set_find_certificates(f->cas, "v-ec", "org", USCC, now, &error);
	g_assert_cmpuint(ec->len, ==, 2);
	other = cs_ca_set_find_certificates(f->cas, "", "person", USCC, now, &error);
	g_assert_cmpuint(other->len, ==, 0);
}

/* Per-thread signing contexts: two threads sign at once; each certificate verifies. */
typedef struct {
	CsCa *ca;
	CsCsr *csr;
	X509_NAME *name;
	gint64 now;
	X509 *out[8];
} ThreadJob;

static gpointer
sign_thread(gpointer data)
{
	ThreadJob *job = data;

	for (guint i = 0; i < G_N_ELEMENTS(job->out); i++) {
		guint8 serial[CS_SERIAL_SIZE];
		memset(serial, (int)(i + 1), sizeof(serial));
		g_autoptr(GBytes) der = cs_ca_sign_certificate(job->ca, job->csr, job->name, serial,
							       job->now, job->now + DAY, NULL);
		job->out[i] = der != NULL ? cs_x509_from_der(der) : NULL;
	}
	return NULL;
}

static void
test_signing_threads(Fixture *f, gconstpointer data)
{
	CsCa *ca = cs_ca_set_get(f->cas, "v-sm2", NULL);
	g_autoptr(EVP_PKEY) key = generate(CS_KEY_SM2);
	g_autoptr(GBytes) der = make_csr(key);
	g_autoptr(CsCsr) csr = parse_csr(der);
	CsCertSubject subject = {CS_SUBJECT_ORG, ORG_NAME, USCC};
	g_autoptr(X509_NAME) name = cs_cert_subject_build(&subject, NULL);
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	ThreadJob jobs[2] = {{ca, csr, name, now, {0}}, {ca, csr, name, now, {0}}};
	GThread *threads[2];

	for (guint t = 0; t < 2; t++)
		threads[t] = g_thread_new("signer", sign_thread, &jobs[t]);
	for (guint t = 0; t < 2; t++)
		g_thread_join(threads[t]);
	for (guint t = 0; t < 2; t++) {
		for (guint i = 0; i < G_N_ELEMENTS(jobs[t].out); i++) {
			g_assert_nonnull(jobs[t].out[i]);
			g_assert_true(cs_ca_verify_chain(ca, jobs[t].out[i], now + 60, NULL));
			X509_free(jobs[t].out[i]);
		}
	}
}

/* ---- the engine-level API where CSRs enter ------------------------------------------- */

static void
test_engine_issue_from_order(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *plugin_path =
	    g_build_filename(g_getenv("CS_BUILD_DIR"), "plugins", "certseal-plugin-new.so", NULL);
	CsLoadedPlugin *plugin = cs_loader_load_plugin(plugin_path, TRUE, &error);
	g_autoptr(CsEngine) engine = NULL;
	g_autoptr(GVariantDict) d = g_variant_dict_new(NULL);
	g_autoptr(GVariant) fields = NULL;
	g_autoptr(EVP_PKEY) key = generate(CS_KEY_EC_P256);
	g_autoptr(GBytes) csr = make_csr(key);
	g_autoptr(GBytes) cert = NULL;
	g_autoptr(GPtrArray) events = NULL;
	g_autoptr(GPtrArray) found = NULL;
	g_autoptr(X509) x = NULL;
	const CsRequest owner = {.actor = CS_ACTOR_DESKTOP, .uid = 1000};
	const CsRequest stranger = {.actor = CS_ACTOR_DESKTOP, .uid = 1001};
	const CsRequest maker = {
	    .actor = CS_ACTOR_MAKER, .user_id = "wang", .roles = CS_ACTOR_MAKER};
	CsOrder *order;
	gint64 seq;

	g_assert_no_error(error);
	engine = cs_engine_new(f->config, f->ledger);
	/* Without CAs, the engine says so rather than pretending. */
	g_assert_true(cs_engine_add_plugin(engine, plugin->plugin, &error));
	g_variant_dict_insert(d, "vendor", "s", "v-ec");
	g_variant_dict_insert(d, "org_name", "s", ORG_NAME);
	g_variant_dict_insert(d, "uscc", "s", USCC);
	fields = g_variant_ref_sink(g_variant_dict_end(d));
	order = cs_engine_create_order(engine, &owner, "new", "org", fields, &error);
	g_assert_no_error(error);
	g_assert_null(cs_certs_issue(engine, &maker, order, g_bytes_get_data(csr, NULL),
				     g_bytes_get_size(csr), NULL, 0, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_UNAVAILABLE);
	g_clear_error(&error);
	cs_engine_set_cas(engine, f->cas);

	/* A stranger cannot; a bad CSR stores nothing. */
	seq = cs_ledger_last_seq(f->ledger);
	g_assert_null(cs_certs_issue(engine, &stranger, order, g_bytes_get_data(csr, NULL),
				     g_bytes_get_size(csr), NULL, 0, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_ACCESS_DENIED);
	g_clear_error(&error);
	g_assert_null(
	    cs_certs_issue(engine, &maker, order, (const guint8 *)"junk", 4, NULL, 0, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_clear_error(&error);
	g_assert_cmpint(cs_ledger_last_seq(f->ledger), ==, seq);

	cert = cs_certs_issue(engine, &maker, order, g_bytes_get_data(csr, NULL),
			      g_bytes_get_size(csr), NULL, 0, &error);
	g_assert_no_error(error);
	x = cs_x509_from_der(cert);
	g_assert_nonnull(x);
	g_assert_true(cs_ca_verify_chain(cs_ca_set_get(f->cas, "v-ec", NULL), x,
					 g_get_real_time() / G_USEC_PER_SEC + 1, &error));
	/* The event is the order's, with the maker as actor, and names no personal data. */
	events = cs_ledger_order_events(f->ledger, cs_order_get_id(order), &error);
	g_assert_no_error(error);
	{
		CsEventRow *last = g_ptr_array_index(events, events->len - 1);
		g_autofree char *serial = serial_of(x);
		g_assert_cmpstr(last->kind, ==, "certificate_issued");
		g_assert_cmpstr(last->actor, ==, "office:wang");
		g_assert_nonnull(strstr(last->data, serial));
		g_assert_null(strstr(last->data, USCC));
		g_assert_null(strstr(last->data, "厦门"));
	}
	/* The order's e-seal, signed by the vendor's seal maker, verifies. */
	{
		static const guint8 png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0};
		g_autoptr(GBytes) seal = cs_certs_make_seal(engine, &maker, order, cert, png,
							    sizeof(png), 40, 40, &error);
		g_autoptr(CsSealTrust) trust = cs_seal_trust_new();
		g_autoptr(CsSealInfo) info = NULL;

		g_assert_no_error(error);
		cs_seal_trust_add(trust, cs_ca_get_root(cs_ca_set_get(f->cas, "v-ec", NULL)));
		cs_seal_trust_add(trust, cs_ca_get_issuing(cs_ca_set_get(f->cas, "v-ec", NULL)));
		g_assert_true(cs_seal_verify(g_bytes_get_data(seal, NULL), g_bytes_get_size(seal),
					     trust, g_get_real_time() / G_USEC_PER_SEC + 1,
					     &error));
		g_assert_no_error(error);
		info = cs_seal_parse(g_bytes_get_data(seal, NULL), g_bytes_get_size(seal), &error);
		g_assert_cmpstr(info->name, ==, ORG_NAME);
		g_assert_cmpint(info->type, ==, CS_SEAL_ORG);
		g_assert_cmpint(info->valid_end, ==,
				info->valid_start + 365 * CS_VALIDITY_DAY_SECONDS);
		/* Another vendor's certificate does not get this vendor's seal. */
		{
			g_autoptr(GBytes) other = NULL;
			g_autoptr(GBytes) other_seal = NULL;
			g_autoptr(X509) ox = issue_org(f, "v-rsa");
			guint8 *der = NULL;
			int len = i2d_X509(ox, &der);
			other = g_bytes_new(der, (gsize)len);
			OPENSSL_free(der);
			other_seal = cs_certs_make_seal(engine, &maker, order, other, png,
							sizeof(png), 40, 40, &error);
			g_assert_null(other_seal);
			g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
			g_clear_error(&error);
		}
	}
	found = cs_certs_find(engine, "v-ec", "org", USCC, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(found->len, ==, 1);
	g_assert_cmpstr(((CsCertRow *)g_ptr_array_index(found, 0))->order_id, ==,
			cs_order_get_id(order));
	{
		g_autofree char *serial = serial_of(x);
		g_assert_true(cs_certs_revoke(engine, &maker, serial, "superseded", order, &error));
		g_assert_no_error(error);
	}
	g_clear_pointer(&engine, cs_engine_free);
	cs_loaded_plugin_free(plugin);
	assert_verifies(f);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, func, data)                                                                      \
	g_test_add(path, Fixture, data, fixture_set_up, func, fixture_tear_down)
	ADD("/ca/create/first-start-files-modes-ledger", test_created_on_first_start, NULL);
	ADD("/ca/create/refuses-unsafe-or-changed", test_refuses_unsafe_key, NULL);
	ADD("/ca/issue/rsa/openssl-verify", test_issue_and_openssl_verify, "v-rsa");
	ADD("/ca/issue/ec/openssl-verify", test_issue_and_openssl_verify, "v-ec");
	ADD("/ca/issue/sm2/openssl-verify-distid", test_issue_and_openssl_verify, "v-sm2");
	ADD("/ca/issue/person-subject", test_person_subject, NULL);
	ADD("/ca/issue/renewal-dates", test_renewal_dates, NULL);
	ADD("/ca/issue/bad-csrs-refused", test_bad_csrs_refused, NULL);
	ADD("/ca/issue/bad-subjects-refused", test_bad_subjects_refused, NULL);
	ADD("/ca/revoke/rsa/crl-openssl-verify", test_revoke_and_crl, "v-rsa");
	ADD("/ca/revoke/ec/crl-openssl-verify", test_revoke_and_crl, "v-ec");
	ADD("/ca/revoke/sm2/crl", test_revoke_and_crl, "v-sm2");
	ADD("/ca/find-certificates/status", test_find_certificates_status, NULL);
	ADD("/ca/sign/per-thread-contexts", test_signing_threads, NULL);
	ADD("/ca/engine/issue-from-order", test_engine_issue_from_order, NULL);
#undef ADD
	return g_test_run();
}
