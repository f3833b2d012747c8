/*
 * make-sealed-key.c — test helper: make a vkey token ready to seal documents, the way
 * key making will (docs/architecture.md §3.1, §9), with the daemon's own code and a state
 * directory's own CA.
 *
 *   make-sealed-key --config CONF --state-dir DIR --vendor ID --serial SERIAL [--no-seal]
 *                   [--other-holder] [--picture FILE]
 *
 * The user PIN comes on stdin (never argv). With the daemon stopped (the CA and ledger of
 * DIR are opened here): log in, generate the key pair CS_KEY_PAIR_ID on the token, build
 * a CSR signed on the token, issue its certificate from the vendor's CA (recorded in the
 * ledger like any issuance), write it under CS_KEY_OBJECT_LABEL, and — unless --no-seal —
 * build an e-seal with the vendor's seal maker holding that certificate (or, with
 * --other-holder, a software key's certificate from the same CA) and write it under
 * CS_KEY_SEAL_LABEL. --picture gives the seal's picture (a PNG file; by default the
 * smallest PNG header). Prints the certificate's serial (hex).
 */
#define G_LOG_DOMAIN "make-sealed-key"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#include "cs-ca.h"
#include "cs-config.h"
#include "cs-crypto.h"
#include "cs-keys.h"
#include "cs-ledger.h"
#include "cs-loader.h"
#include "cs-seal.h"
#include "cs-vault.h"

static const guint8 png[] = {0x89, 'P', 'N', 'G',  '\r', '\n', 0x1a, '\n', 0,	0,   0,	 13, 'I',
			     'H',  'D', 'R', 0,	   0,	 0,    1,    0,	   0,	0,   1,	 8,  6,
			     0,	   0,	0,   0x1f, 0x15, 0xc4, 0x89, 'P',  'I', 'C', 'T'};

static const char ORG_NAME[] = "厦门示例科技有限公司";
static const char USCC[] = "91350200776049653A";

static void G_GNUC_NORETURN
die(const char *what, const GError *error)
{
	g_printerr("make-sealed-key: %s: %s\n", what, error != NULL ? error->message : "failed");
	exit(1);
}

typedef struct {
	const CsLoadedDriver *driver;
	CsDriverContext *ctx;
	const char *serial;
} Token;

/* CsSignFunc: signed on the token with CS_KEY_PAIR_ID. */
static GBytes *
sign_on_token(const guint8 *tbs, gsize len, gpointer user_data, GError **error)
{
	Token *t = user_data;
	g_autoptr(GBytes) data = g_bytes_new_static(tbs, len);

	return cs_driver_run_sign(t->driver, t->ctx, t->serial, CS_KEY_PAIR_ID, "sha256", data,
				  error);
}

/* A CSR for @pub whose signature is made on the token. */
static GBytes *
csr_signed_on_token(Token *t, EVP_PKEY *pub)
{
	g_autoptr(X509_NAME) name = X509_NAME_new();
	g_autoptr(GError) error = NULL;
	GBytes *csr;

	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)"token key",
				   -1, -1, 0);
	csr = cs_csr_build_signed(pub, name, sign_on_token, t, &error);
	if (csr == NULL)
		die("signing the CSR on the token", error);
	return csr;
}

static GBytes *
issue(CsCaSet *cas, const char *vendor, GBytes *csr_der)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(CsCsr) csr =
	    cs_csr_parse(g_bytes_get_data(csr_der, NULL), g_bytes_get_size(csr_der), &error);
	CsIssueRequest request = {
	    .vendor = vendor,
	    .actor = "office:test",
	    .subject = {CS_SUBJECT_ORG, ORG_NAME, USCC},
	};
	GBytes *cert;

	if (csr == NULL)
		die("csr", error);
	cert = cs_ca_set_issue(cas, &request, csr, g_get_real_time() / G_USEC_PER_SEC, &error);
	if (cert == NULL)
		die("issuing", error);
	return cert;
}

/* A certificate from the same CA for a key that is not on the token. */
static GBytes *
other_certificate(CsCaSet *cas, const char *vendor, CsKeyAlgorithm alg)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(EVP_PKEY) key = cs_key_generate(alg, &error);
	X509_REQ *req = X509_REQ_new();
	g_autoptr(EVP_MD_CTX) md = NULL;
	unsigned char *der = NULL;
	int len;
	g_autoptr(GBytes) csr = NULL;

	if (key == NULL)
		die("software key", error);
	X509_REQ_set_pubkey(req, key);
	md = cs_sign_ctx_new(key, &error);
	if (md == NULL || X509_REQ_sign_ctx(req, md) <= 0)
		die("software CSR", error);
	len = i2d_X509_REQ(req, &der);
	csr = g_bytes_new(der, (gsize)MAX(len, 0));
	OPENSSL_free(der);
	X509_REQ_free(req);
	return issue(cas, vendor, csr);
}

int
main(int argc, char **argv)
{
	const char *config_path = NULL, *state_dir = NULL, *vendor_id = NULL, *serial = NULL;
	const char *picture_path = NULL;
	g_autofree char *picture = NULL;
	gsize picture_len = sizeof(png);
	gboolean no_seal = FALSE, other_holder = FALSE;
	g_autoptr(GError) error = NULL;
	g_autoptr(CsConfig) config = NULL;
	g_autoptr(CsLoadedDriver) driver = NULL;
	g_autofree char *driver_path = NULL, *driver_state = NULL, *ledger_path = NULL;
	const CsVendor *vendor = NULL;
	CsDriverContext *ctx = NULL;
	CsDriverConfig cfg;
	CsVault *vault;
	CsLedger *ledger;
	CsCaSet *cas;
	Token t;
	char pin[64] = {0};
	g_autoptr(GBytes) spki = NULL;
	g_autoptr(GBytes) csr = NULL;
	g_autoptr(GBytes) cert = NULL;
	g_autoptr(X509) x = NULL;
	EVP_PKEY *pub;
	const unsigned char *p;

	for (int i = 1; i < argc; i++) {
		if (g_str_equal(argv[i], "--config") && i + 1 < argc)
			config_path = argv[++i];
		else if (g_str_equal(argv[i], "--state-dir") && i + 1 < argc)
			state_dir = argv[++i];
		else if (g_str_equal(argv[i], "--vendor") && i + 1 < argc)
			vendor_id = argv[++i];
		else if (g_str_equal(argv[i], "--serial") && i + 1 < argc)
			serial = argv[++i];
		else if (g_str_equal(argv[i], "--no-seal"))
			no_seal = TRUE;
		else if (g_str_equal(argv[i], "--other-holder"))
			other_holder = TRUE;
		else if (g_str_equal(argv[i], "--picture") && i + 1 < argc)
			picture_path = argv[++i];
		else
			die("usage", NULL);
	}
	if (config_path == NULL || state_dir == NULL || vendor_id == NULL || serial == NULL)
		die("usage: --config, --state-dir, --vendor and --serial are needed", NULL);
	if (picture_path != NULL &&
	    !g_file_get_contents(picture_path, &picture, &picture_len, &error))
		die("--picture", error);
	if (fgets(pin, sizeof(pin), stdin) == NULL)
		die("the PIN is read from stdin", NULL);
	pin[strcspn(pin, "\r\n")] = '\0';

	config = cs_config_load(config_path, &error);
	if (config == NULL || !cs_config_load_vendors(config, &error))
		die(config_path, error);
	for (guint i = 0; i < config->vendors->len; i++) {
		const CsVendor *v = g_ptr_array_index(config->vendors, i);
		if (g_str_equal(v->id, vendor_id))
			vendor = v;
	}
	if (vendor == NULL)
		die(vendor_id, NULL);
	driver_path =
	    g_strdup_printf("%s/certseal-driver-%s.so", config->driver_dir, vendor->driver);
	driver = cs_loader_load_driver(driver_path, config->test_mode, &error);
	if (driver == NULL)
		die(driver_path, error);
	driver_state = g_build_filename(state_dir, "drivers", vendor->id, NULL);
	g_mkdir_with_parents(driver_state, 0700);
	cfg = (CsDriverConfig){
	    .vendor_id = vendor->id,
	    .module = vendor->module,
	    .manufacturer = vendor->manufacturer,
	    .model = vendor->model,
	    .key_algorithm = vendor->key_algorithm,
	    .pin_min_length = vendor->pin_min_length,
	    .pin_max_length = vendor->pin_max_length,
	    .pin_max_tries = vendor->pin_max_tries,
	    .state_dir = driver_state,
	    .init_args = vendor->init_args,
	};
	if (!cs_driver_run_init(driver, &cfg, &ctx, &error))
		die("driver init", error);
	t = (Token){driver, ctx, serial};

	if (!cs_driver_run_login(driver, ctx, serial, pin, &error))
		die("login", error);
	explicit_bzero(pin, sizeof(pin));
	spki = cs_driver_run_generate_key(driver, ctx, serial, CS_KEY_PAIR_ID,
					  vendor->key_algorithm, &error);
	if (spki == NULL)
		die("generating the key pair", error);
	p = g_bytes_get_data(spki, NULL);
	pub = d2i_PUBKEY(NULL, &p, (long)g_bytes_get_size(spki));
	if (pub == NULL)
		die("the token's public key", NULL);
	csr = csr_signed_on_token(&t, pub);
	EVP_PKEY_free(pub);

	g_mkdir_with_parents(state_dir, 0700);
	ledger_path = g_build_filename(state_dir, "ledger.db", NULL);
	vault = cs_vault_open(state_dir, &error);
	ledger = vault != NULL ? cs_ledger_open(ledger_path, vault, 1000, &error) : NULL;
	cas = ledger != NULL ? cs_ca_set_new(config, state_dir, ledger, &error) : NULL;
	if (cas == NULL)
		die("the state directory's CA", error);
	cert = issue(cas, vendor->id, csr);
	if (!cs_driver_run_put_object(driver, ctx, serial, TRUE, CS_KEY_OBJECT_LABEL, cert, &error))
		die("writing the certificate", error);
	x = cs_x509_from_der(cert);
	if (!no_seal) {
		CsCa *ca = cs_ca_set_get(cas, vendor->id, &error);
		gint64 now = g_get_real_time() / G_USEC_PER_SEC;
		g_autoptr(GBytes) holder_der =
		    other_holder ? other_certificate(cas, vendor->id, cs_ca_get_algorithm(ca))
				 : g_bytes_ref(cert);
		g_autoptr(X509) holder = cs_x509_from_der(holder_der);
		CsSealSpec spec = {
		    .vendor_id = vendor->id,
		    .es_id = serial,
		    .type = CS_SEAL_ORG,
		    .name = ORG_NAME,
		    .holder = holder,
		    .created = now - 60,
		    .valid_start = now - 60,
		    .valid_end = now + 365 * 86400,
		    .picture = picture != NULL ? (const guint8 *)picture : png,
		    .picture_len = picture_len,
		    .width_mm = 40,
		    .height_mm = 40,
		};
		g_autoptr(GBytes) seal = NULL;

		if (ca == NULL)
			die("the vendor's CA", error);
		seal = cs_seal_build(&spec, cs_ca_get_seal_maker(ca), cs_ca_get_seal_maker_key(ca),
				     &error);
		if (seal == NULL)
			die("building the seal", error);
		if (!cs_driver_run_put_object(driver, ctx, serial, FALSE, CS_KEY_SEAL_LABEL, seal,
					      &error))
			die("writing the seal", error);
	}
	cs_driver_run_logout(driver, ctx, serial, NULL);
	cs_driver_run_shutdown(driver, ctx);
	cs_ca_set_free(cas);
	cs_ledger_free(ledger);
	cs_vault_free(vault);
	{
		g_autofree char *hex = cs_serial_to_hex(X509_get0_serialNumber(x));
		g_print("%s\n", hex);
	}
	return 0;
}
