/*
 * test-keys.c — the pkcs11 driver over real SoftHSM2 tokens behind the virtual UKey, called
 * through the daemon's runners as the key manager calls it; the single-key rule; the CSR
 * helper; and key making through the key manager (blank key → CSR signed on the token →
 * certificate and seal written), with keys of someone else, again after an interruption,
 * and pulled or hung mid-way.
 *
 * Each case gets its own state directory (a short path under /tmp), a fresh vkey token
 * made by the real certseal-vkey tool, and the driver initialised with the demo-a
 * profile the build generates; the making cases add a blank token, the key manager
 * watching both, and a CA of the state directory for the algorithm made.
 */
#include <glib/gstdio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cs-ca.h"
#include "cs-config.h"
#include "cs-crypto.h"
#include "cs-keys.h"
#include "cs-ledger.h"
#include "cs-loader.h"
#include "cs-seal-picture.h"
#include "cs-seal.h"
#include "cs-vault.h"

typedef struct {
	char *state;
	char *serial;
	CsLoadedDriver *driver;
	CsVendor *vendor;
	CsDriverContext *ctx;
	char *driver_state;
	/* Key making: a blank key, the key manager and a CA. */
	char *blank;
	CsKeys *keys;
	CsConfig *config;
	CsVault *vault;
	CsLedger *ledger;
	CsCaSet *cas;
} Fixture;

static const char *
build_dir(void)
{
	const char *b = g_getenv("CS_BUILD_DIR");
	g_assert_nonnull(b);
	return b;
}

static void
vkey(Fixture *f, const char *const *args)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GError) error = NULL;
	g_autofree char *err = NULL;
	gint status = 0;

	g_ptr_array_add(argv, g_build_filename(build_dir(), "cli", "certseal-vkey", NULL));
	g_ptr_array_add(argv, g_strdup("--state-dir"));
	g_ptr_array_add(argv, g_strdup(f->state));
	for (guint i = 0; args[i] != NULL; i++)
		g_ptr_array_add(argv, g_strdup(args[i]));
	g_ptr_array_add(argv, NULL);
	g_assert_true(g_spawn_sync(NULL, (char **)argv->pdata, NULL, G_SPAWN_STDOUT_TO_DEV_NULL,
				   NULL, NULL, NULL, &err, &status, &error));
	if (!g_spawn_check_wait_status(status, NULL))
		g_error("certseal-vkey %s: %s", args[0], err);
}

static gboolean
listed(Fixture *f)
{
	g_autoptr(GArray) tokens = g_array_new(FALSE, TRUE, sizeof(CsDriverTokenInfo));

	g_assert_true(cs_driver_run_enumerate(f->driver, f->ctx, tokens, NULL));
	for (guint i = 0; i < tokens->len; i++)
		if (g_str_equal(g_array_index(tokens, CsDriverTokenInfo, i).serial, f->serial))
			return TRUE;
	return FALSE;
}

static void
wait_listed(Fixture *f, gboolean want)
{
	gint64 deadline = g_get_monotonic_time() + 3 * G_USEC_PER_SEC;

	while (listed(f) != want && g_get_monotonic_time() < deadline)
		g_usleep(50000);
	g_assert_cmpint(listed(f), ==, want);
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *profile =
	    g_build_filename(build_dir(), "daemon", "vendors.d", "demo-a.conf", NULL);
	g_autofree char *driver =
	    g_build_filename(build_dir(), "drivers", "certseal-driver-pkcs11.so", NULL);
	CsDriverConfig cfg;

	f->state = g_dir_make_tmp("cst-XXXXXX", &error);
	g_assert_no_error(error);
	f->serial = g_strdup_printf("T%06X", g_random_int_range(0, 0xffffff));
	vkey(f, (const char *const[]){"create", "--vendor", "demo-a", "--serial", f->serial, NULL});
	f->driver = cs_loader_load_driver(driver, TRUE, &error);
	g_assert_no_error(error);
	f->vendor = cs_vendor_load(profile, &error);
	g_assert_no_error(error);
	f->driver_state = g_build_filename(f->state, "drivers", "demo-a", NULL);
	g_mkdir_with_parents(f->driver_state, 0700);
	cfg = (CsDriverConfig){
	    .vendor_id = f->vendor->id,
	    .module = f->vendor->module,
	    .manufacturer = f->vendor->manufacturer,
	    .model = f->vendor->model,
	    .key_algorithm = f->vendor->key_algorithm,
	    .pin_max_tries = f->vendor->pin_max_tries,
	    .state_dir = f->driver_state,
	    .init_args = f->vendor->init_args,
	};
	g_assert_true(cs_driver_run_init(f->driver, &cfg, &f->ctx, &error));
	g_assert_no_error(error);
	wait_listed(f, TRUE);
}

static void
rm_rf(const char *path)
{
	g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
	const char *name;

	while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
		g_autofree char *child = g_build_filename(path, name, NULL);
		if (g_file_test(child, G_FILE_TEST_IS_DIR) &&
		    !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
			rm_rf(child);
		else
			g_unlink(child);
	}
	g_rmdir(path);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	cs_driver_run_shutdown(f->driver, f->ctx);
	cs_loaded_driver_free(f->driver);
	cs_vendor_free(f->vendor);
	rm_rf(f->state);
	g_free(f->state);
	g_free(f->serial);
	g_free(f->driver_state);
}

static void
test_wrong_pin_counts_down_to_lock_then_unblock(Fixture *f, gconstpointer data)
{
	CsDriverPinStatus st;

	for (int left = 5; left >= 1; left--) {
		g_autoptr(GError) error = NULL;
		g_autofree char *expect = g_strdup_printf("(%d tries left)", left);
		g_assert_false(cs_driver_run_login(f->driver, f->ctx, f->serial, "000000", &error));
		g_assert_error(error, CS_ERROR, CS_ERROR_PIN_INCORRECT);
		g_assert_nonnull(strstr(error->message, expect));
		g_assert_true(cs_driver_run_pin_status(f->driver, f->ctx, f->serial, &st, NULL));
		g_assert_cmpint(st.tries_left, ==, left);
		g_assert_true(st.count_low);
		g_assert_cmpint(st.final_try, ==, left == 1);
	}
	{
		g_autoptr(GError) error = NULL;
		g_assert_false(cs_driver_run_login(f->driver, f->ctx, f->serial, "000000", &error));
		g_assert_error(error, CS_ERROR, CS_ERROR_PIN_LOCKED);
	}
	{
		/* Locked: the right PIN is refused too. */
		g_autoptr(GError) error = NULL;
		g_assert_false(cs_driver_run_login(f->driver, f->ctx, f->serial, "123456", &error));
		g_assert_error(error, CS_ERROR, CS_ERROR_PIN_LOCKED);
		g_assert_null(strstr(error->message, "123456"));
	}
	g_assert_true(cs_driver_run_pin_status(f->driver, f->ctx, f->serial, &st, NULL));
	g_assert_true(st.locked);
	g_assert_cmpint(st.tries_left, ==, 0);
	{
		/* A wrong SO PIN does not unblock. */
		g_autoptr(GError) error = NULL;
		g_assert_false(cs_driver_run_unblock(f->driver, f->ctx, f->serial, "11111111",
						     "777777", &error));
		g_assert_error(error, CS_ERROR, CS_ERROR_PIN_INCORRECT);
	}
	g_assert_true(
	    cs_driver_run_unblock(f->driver, f->ctx, f->serial, "12345678", "777777", NULL));
	g_assert_true(cs_driver_run_pin_status(f->driver, f->ctx, f->serial, &st, NULL));
	g_assert_false(st.locked);
	g_assert_cmpint(st.tries_left, ==, 6);
	g_assert_true(cs_driver_run_login(f->driver, f->ctx, f->serial, "777777", NULL));
	g_assert_true(cs_driver_run_pin_status(f->driver, f->ctx, f->serial, &st, NULL));
	g_assert_true(st.logged_in);
}

static void
test_change_pin(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	g_assert_false(
	    cs_driver_run_change_pin(f->driver, f->ctx, f->serial, "000000", "654321", &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_PIN_INCORRECT);
	g_assert_true(
	    cs_driver_run_change_pin(f->driver, f->ctx, f->serial, "123456", "654321", NULL));
	g_assert_true(cs_driver_run_login(f->driver, f->ctx, f->serial, "654321", NULL));
	g_assert_true(cs_driver_run_logout(f->driver, f->ctx, f->serial, NULL));
	g_clear_error(&error);
	g_assert_false(cs_driver_run_login(f->driver, f->ctx, f->serial, "123456", &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_PIN_INCORRECT);
}

typedef struct {
	Fixture *f;
	const char *key_id;
} TokenKey;

/* CsSignFunc: a signature made on the fixture's token with @user_data's key. */
static GBytes *
sign_on_fixture_token(const guint8 *tbs, gsize len, gpointer user_data, GError **error)
{
	TokenKey *k = user_data;
	g_autoptr(GBytes) data = g_bytes_new(tbs, len);

	return cs_driver_run_sign(k->f->driver, k->f->ctx, k->f->serial, k->key_id, "sha256", data,
				  error);
}

/* A CSR assembled by the daemon's external-signing helper, signed on the token; the
 * openssl command must accept it. */
static void
check_csr(Fixture *f, const char *algorithm)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) spki =
	    cs_driver_run_generate_key(f->driver, f->ctx, f->serial, "csr-key", algorithm, &error);
	const unsigned char *p;
	g_autoptr(EVP_PKEY) pub = NULL;
	g_autoptr(X509_NAME) name = X509_NAME_new();
	g_autoptr(X509_REQ) req = NULL;
	g_autoptr(GBytes) der = NULL;
	gboolean rsa = g_str_equal(algorithm, "rsa-2048");
	TokenKey key = {f, "csr-key"};
	g_autofree char *pem_path = g_build_filename(f->state, "req.pem", NULL);
	g_autofree char *out = NULL, *err = NULL;
	gint status = 0;
	FILE *fp;

	g_assert_no_error(error);
	p = g_bytes_get_data(spki, NULL);
	pub = d2i_PUBKEY(NULL, &p, (long)g_bytes_get_size(spki));
	g_assert_nonnull(pub);
	g_assert_cmpint(EVP_PKEY_get_base_id(pub), ==, rsa ? EVP_PKEY_RSA : EVP_PKEY_EC);
	X509_NAME_add_entry_by_txt(name, "C", MBSTRING_UTF8, (const unsigned char *)"CN", -1, -1,
				   0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
				   (const unsigned char *)"厦门示例科技有限公司", -1, -1, 0);
	der = cs_csr_build_signed(pub, name, sign_on_fixture_token, &key, &error);
	g_assert_no_error(error);
	p = g_bytes_get_data(der, NULL);
	req = d2i_X509_REQ(NULL, &p, (long)g_bytes_get_size(der));
	g_assert_nonnull(req);
	g_assert_cmpint(X509_REQ_get_signature_nid(req), ==,
			rsa ? NID_sha256WithRSAEncryption : NID_ecdsa_with_SHA256);
	g_assert_cmpint(X509_REQ_verify(req, pub), ==, 1);
	fp = fopen(pem_path, "w");
	g_assert_nonnull(fp);
	PEM_write_X509_REQ(fp, req);
	fclose(fp);
	{
		const char *argv[] = {"openssl", "req", "-verify", "-noout", "-in", pem_path, NULL};
		g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL,
					   NULL, &out, &err, &status, NULL));
	}
	g_assert_true(g_spawn_check_wait_status(status, NULL));
	g_assert_true(strstr(err, "verify OK") != NULL || strstr(out, "verify OK") != NULL);
	/* A signer that used another key is caught before the request leaves the helper. */
	{
		g_autoptr(GBytes) other = cs_driver_run_generate_key(
		    f->driver, f->ctx, f->serial, "other-key", algorithm, &error);
		g_autoptr(GBytes) bad = NULL;

		g_assert_no_error(error);
		key.key_id = "other-key";
		bad = cs_csr_build_signed(pub, name, sign_on_fixture_token, &key, &error);
		g_assert_null(bad);
		g_assert_error(error, CS_ERROR, CS_ERROR_INTERNAL);
	}
}

static void
test_keygen_and_csr(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	/* Key generation needs a login. */
	g_assert_null(
	    cs_driver_run_generate_key(f->driver, f->ctx, f->serial, "k", "ec-p256", &error));
	g_assert_nonnull(error);
	g_assert_true(cs_driver_run_login(f->driver, f->ctx, f->serial, "123456", NULL));
	check_csr(f, "rsa-2048");
	check_csr(f, "ec-p256");
}

/* A key handle cached by a signature outlives a logout in the driver, not in the module;
 * and the signing session must not stand in the way of the SO's login. */
static void
test_sign_after_logout_then_unblock(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) tbs = g_bytes_new_static("to be signed", 12);
	g_autoptr(GBytes) spki = NULL;

	g_assert_true(cs_driver_run_login(f->driver, f->ctx, f->serial, "123456", NULL));
	spki =
	    cs_driver_run_generate_key(f->driver, f->ctx, f->serial, "sig-key", "ec-p256", &error);
	g_assert_no_error(error);
	for (int round = 0; round < 2; round++) {
		g_autoptr(GBytes) sig = cs_driver_run_sign(f->driver, f->ctx, f->serial, "sig-key",
							   "sha256", tbs, &error);
		g_assert_no_error(error);
		g_assert_nonnull(sig);
		g_assert_true(cs_driver_run_logout(f->driver, f->ctx, f->serial, NULL));
		g_assert_true(cs_driver_run_login(f->driver, f->ctx, f->serial, "123456", NULL));
	}
	cs_driver_run_unblock(f->driver, f->ctx, f->serial, "12345678", "654321", &error);
	g_assert_no_error(error);
	g_assert_true(cs_driver_run_login(f->driver, f->ctx, f->serial, "654321", NULL));
	{
		g_autoptr(GBytes) sig = cs_driver_run_sign(f->driver, f->ctx, f->serial, "sig-key",
							   "sha256", tbs, &error);
		g_assert_no_error(error);
	}
}

static void
test_certificate_and_seal_round_trip(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) seal = g_bytes_new_static("\x30\x03\x02\x01\x04", 5);
	g_autoptr(GBytes) back = NULL;

	g_assert_true(cs_driver_run_put_object(f->driver, f->ctx, f->serial, FALSE,
					       CS_KEY_SEAL_LABEL, seal, NULL));
	back =
	    cs_driver_run_get_object(f->driver, f->ctx, f->serial, FALSE, CS_KEY_SEAL_LABEL, NULL);
	g_assert_true(back != NULL && g_bytes_equal(back, seal));
	g_assert_null(
	    cs_driver_run_get_object(f->driver, f->ctx, f->serial, TRUE, "nothing", &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_NOT_FOUND);
	g_clear_error(&error);
	/* Not a certificate: refused before the token is touched. */
	g_assert_false(
	    cs_driver_run_put_object(f->driver, f->ctx, f->serial, TRUE, "x", seal, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
}

static void
test_pulled_mid_write_is_key_removed(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) seal = g_bytes_new_static("seal", 4);

	vkey(f, (const char *const[]){"fault", f->serial, "C_CreateObject", "--after", "1",
				      "--mode", "unplug", NULL});
	g_assert_false(
	    cs_driver_run_put_object(f->driver, f->ctx, f->serial, FALSE, "s", seal, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_KEY_REMOVED);
	wait_listed(f, FALSE);
	vkey(f, (const char *const[]){"plug", f->serial, NULL});
	wait_listed(f, TRUE);
	/* A fresh insertion: the object never got written, the key works. */
	g_clear_error(&error);
	g_assert_null(cs_driver_run_get_object(f->driver, f->ctx, f->serial, FALSE, "s", &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_NOT_FOUND);
	g_assert_true(cs_driver_run_login(f->driver, f->ctx, f->serial, "123456", NULL));
}

/* Key making: a blank key gets its user and admin PIN, then works like any other. */
static void
test_blank_key_is_initialised_for_making(Fixture *f, gconstpointer data)
{
	g_autofree char *blank = g_strdup_printf("%s9", f->serial);
	const char *create[] = {"create", "--vendor", "demo-a", "--serial", blank, "--blank", NULL};
	CsDriverPinStatus st;
	char *serial = f->serial;

	vkey(f, create);
	f->serial = blank;
	wait_listed(f, TRUE);
	g_assert_true(cs_driver_run_pin_status(f->driver, f->ctx, blank, &st, NULL));
	g_assert_false(st.initialized);
	g_assert_true(
	    cs_driver_run_init_token(f->driver, f->ctx, blank, "made", "246810", "13579135", NULL));
	g_assert_true(cs_driver_run_pin_status(f->driver, f->ctx, blank, &st, NULL));
	g_assert_true(st.initialized);
	g_assert_true(cs_driver_run_login(f->driver, f->ctx, blank, "246810", NULL));
	g_assert_true(cs_driver_run_unblock(f->driver, f->ctx, blank, "13579135", "112233", NULL));
	f->serial = serial;
}

static void
test_only_one_key_for_renewal(void)
{
	CsKeys *keys = cs_keys_new();
	g_autoptr(GError) error = NULL;

	g_assert_null(cs_keys_get_single(keys, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_NO_KEY);
	g_clear_error(&error);
	cs_keys_update_for_test(keys, "demo-a", "A1");
	g_assert_cmpstr(cs_keys_get_single(keys, &error)->serial, ==, "A1");
	cs_keys_update_for_test(keys, "demo-b", "B1");
	g_assert_null(cs_keys_get_single(keys, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_MULTIPLE_KEYS);
	cs_keys_free(keys);
}

/* --- key making through the key manager ---------------------------------------------- */

#define ORG_NAME "厦门示例科技有限公司"
#define USCC "91350200776049653A"
#define USER_PIN "246810"
#define SO_PIN "13579135"

static CsKey *wait_key(Fixture *f, const char *serial, gboolean present);

/* A blank key beside the fixture's initialised one, the key manager watching both, and
 * the CA of a vendor issuing for @data's algorithm. */
static void
make_setup(Fixture *f, gconstpointer data)
{
	const char *algorithm = data != NULL ? data : "ec-p256";
	g_autoptr(GError) error = NULL;
	g_autofree char *vendor_dir = NULL;
	g_autofree char *profile = NULL;
	g_autofree char *text = NULL;
	g_autofree char *ledger_path = NULL;

	fixture_setup(f, data);
	f->blank = g_strdup_printf("%sB", f->serial);
	vkey(f, (const char *const[]){"create", "--vendor", "demo-a", "--serial", f->blank,
				      "--blank", NULL});
	f->keys = cs_keys_new();
	cs_keys_add_vendor(f->keys, f->vendor, f->driver, f->ctx);
	cs_keys_start(f->keys);
	wait_key(f, f->serial, TRUE);
	wait_key(f, f->blank, TRUE);

	vendor_dir = g_build_filename(f->state, "vendors.d", NULL);
	g_assert_cmpint(g_mkdir(vendor_dir, 0700), ==, 0);
	profile = g_build_filename(vendor_dir, "maker.conf", NULL);
	text = g_strdup_printf("[vendor]\nname = Maker\ndriver = pkcs11\n[key]\nalgorithm = %s\n"
			       "[ca]\nalgorithm = %s\ncrl_url = http://crl.maker.test/i.crl\n",
			       algorithm, algorithm);
	g_assert_true(g_file_set_contents(profile, text, -1, NULL));
	f->config = cs_config_load(NULL, &error);
	g_assert_no_error(error);
	g_free(f->config->vendor_dir);
	f->config->vendor_dir = g_steal_pointer(&vendor_dir);
	g_assert_true(cs_config_load_vendors(f->config, &error));
	f->vault = cs_vault_open(f->state, &error);
	g_assert_no_error(error);
	ledger_path = g_build_filename(f->state, "ledger.db", NULL);
	f->ledger = cs_ledger_open(ledger_path, f->vault, 1000, &error);
	g_assert_no_error(error);
	f->cas = cs_ca_set_new(f->config, f->state, f->ledger, &error);
	g_assert_no_error(error);
}

static void
make_teardown(Fixture *f, gconstpointer data)
{
	g_assert_true(cs_keys_stop(f->keys, 10000));
	cs_keys_free(f->keys);
	/* Results the threads queued after the manager went away. */
	while (g_main_context_iteration(NULL, FALSE))
		;
	g_clear_pointer(&f->cas, cs_ca_set_free);
	g_clear_pointer(&f->ledger, cs_ledger_free);
	g_clear_pointer(&f->vault, cs_vault_free);
	g_clear_pointer(&f->config, cs_config_free);
	g_free(f->blank);
	fixture_teardown(f, data);
}

typedef struct {
	gboolean done;
	GBytes *result;
	GError *error;
} Outcome;

static void
outcome_clear(Outcome *o)
{
	g_clear_pointer(&o->result, g_bytes_unref);
	g_clear_error(&o->error);
	o->done = FALSE;
}

static void
on_done(GBytes *result, const GError *error, gpointer user_data)
{
	Outcome *o = user_data;

	g_assert_false(o->done);
	o->done = TRUE;
	o->result = result != NULL ? g_bytes_ref(result) : NULL;
	o->error = error != NULL ? g_error_copy(error) : NULL;
}

/* Run the main loop until @o is done; fails after @seconds. */
static void
wait_done(Outcome *o, guint seconds)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)seconds * G_USEC_PER_SEC;

	while (!o->done && g_get_monotonic_time() < deadline)
		if (!g_main_context_iteration(NULL, FALSE))
			g_usleep(5000);
	g_assert_true(o->done);
}

static char *
key_id_of(const char *serial)
{
	return g_strdup_printf("pkcs11_%s", serial);
}

/* The key manager's entry for @serial once it is (or is no longer) there. */
static CsKey *
wait_key(Fixture *f, const char *serial, gboolean present)
{
	g_autofree char *id = key_id_of(serial);
	gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

	while ((cs_keys_lookup(f->keys, id) != NULL) != present &&
	       g_get_monotonic_time() < deadline)
		if (!g_main_context_iteration(NULL, FALSE))
			g_usleep(5000);
	g_assert_cmpint(cs_keys_lookup(f->keys, id) != NULL, ==, present);
	return cs_keys_lookup(f->keys, id);
}

static void
make_begin(Fixture *f, const char *serial, const char *so_pin, const char *algorithm, Outcome *o)
{
	g_autofree char *id = key_id_of(serial);

	outcome_clear(o);
	cs_keys_make_begin(f->keys, id, "certseal", USER_PIN, so_pin, algorithm, ORG_NAME, on_done,
			   o);
	wait_done(o, 60);
}

static void
make_finish(Fixture *f, const char *serial, GBytes *cert, GBytes *seal, Outcome *o)
{
	g_autofree char *id = key_id_of(serial);

	outcome_clear(o);
	cs_keys_make_finish(f->keys, id, USER_PIN, cert, seal, on_done, o);
	wait_done(o, 60);
}

/* The CSR make_begin returned: it verifies, names ORG_NAME, and holds the public key of
 * the key pair the token now has. */
static EVP_PKEY *
check_made_csr(Fixture *f, const char *serial, GBytes *csr, const char *algorithm)
{
	const unsigned char *p = g_bytes_get_data(csr, NULL);
	g_autoptr(X509_REQ) req = d2i_X509_REQ(NULL, &p, (long)g_bytes_get_size(csr));
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) spki = NULL;
	g_autoptr(EVP_PKEY) token_key = NULL;
	char cn[256] = "";
	EVP_PKEY *pub;

	g_assert_nonnull(req);
	g_assert_true(p ==
		      (const unsigned char *)g_bytes_get_data(csr, NULL) + g_bytes_get_size(csr));
	pub = X509_REQ_get0_pubkey(req);
	g_assert_nonnull(pub);
	g_assert_cmpint(X509_REQ_verify(req, pub), ==, 1);
	g_assert_cmpint(cs_key_algorithm_of(pub, NULL), ==,
			cs_key_algorithm_from_string(algorithm));
	g_assert_cmpint(X509_REQ_get_signature_nid(req), ==,
			g_str_equal(algorithm, "rsa-2048") ? NID_sha256WithRSAEncryption
							   : NID_ecdsa_with_SHA256);
	g_assert_cmpint(X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req), NID_commonName,
						  cn, sizeof(cn)),
			>, 0);
	g_assert_cmpstr(cn, ==, ORG_NAME);
	spki = cs_driver_run_get_public_key(f->driver, f->ctx, serial, CS_KEY_PAIR_ID, &error);
	g_assert_no_error(error);
	p = g_bytes_get_data(spki, NULL);
	token_key = d2i_PUBKEY(NULL, &p, (long)g_bytes_get_size(spki));
	g_assert_nonnull(token_key);
	g_assert_cmpint(EVP_PKEY_eq(pub, token_key), ==, 1);
	return EVP_PKEY_dup(pub);
}

/* What the CA and the seal maker make from the CSR, as the engine will. */
static void
issue_and_seal(Fixture *f, GBytes *csr_der, GBytes **cert, GBytes **seal)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(CsCsr) csr =
	    cs_csr_parse(g_bytes_get_data(csr_der, NULL), g_bytes_get_size(csr_der), &error);
	CsIssueRequest request = {
	    .vendor = "maker",
	    .actor = "office:test",
	    .subject = {CS_SUBJECT_ORG, ORG_NAME, USCC},
	};
	CsCa *ca = cs_ca_set_get(f->cas, "maker", NULL);
	g_autoptr(GBytes) picture = NULL;
	g_autoptr(X509) holder = NULL;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	guint w = 0, h = 0;
	CsSealSpec spec = {
	    .vendor_id = "maker",
	    .es_id = "made",
	    .type = CS_SEAL_ORG,
	    .name = ORG_NAME,
	    .created = now,
	    .valid_start = now - 60,
	    .valid_end = now + 365 * 86400,
	};

	g_assert_no_error(error);
	*cert = cs_ca_set_issue(f->cas, &request, csr, now, &error);
	g_assert_no_error(error);
	holder = cs_x509_from_der(*cert);
	picture = cs_seal_picture_render(ORG_NAME, TRUE, &w, &h, &error);
	g_assert_no_error(error);
	spec.holder = holder;
	spec.picture = g_bytes_get_data(picture, &spec.picture_len);
	spec.width_mm = w;
	spec.height_mm = h;
	*seal =
	    cs_seal_build(&spec, cs_ca_get_seal_maker(ca), cs_ca_get_seal_maker_key(ca), &error);
	g_assert_no_error(error);
}

/* The made key seals a document that verifies against the CA. */
static void
check_made_key_seals(Fixture *f, const char *serial)
{
	g_autofree char *id = key_id_of(serial);
	static const char doc[] = "合同 contract 2024-001";
	g_autoptr(CsSealTrust) trust = cs_seal_trust_new();
	g_autofree char *pem = cs_ca_export_pem(cs_ca_set_get(f->cas, "maker", NULL));
	g_autoptr(GError) error = NULL;
	Outcome o = {0};
	int fd = memfd_create("doc", MFD_CLOEXEC);

	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(write(fd, doc, strlen(doc)), ==, (gssize)strlen(doc));
	cs_keys_login(f->keys, id, getuid(), USER_PIN, on_done, &o);
	wait_done(&o, 30);
	g_assert_no_error(o.error);
	g_assert_true(cs_keys_lookup(f->keys, id)->logged_in);
	outcome_clear(&o);
	cs_keys_seal_document(f->keys, id, "contract.pdf", fd, on_done, &o);
	wait_done(&o, 30);
	g_assert_no_error(o.error);
	g_assert_true(cs_seal_trust_add_pem(trust, pem, strlen(pem), &error));
	g_assert_true(cs_signature_verify(g_bytes_get_data(o.result, NULL),
					  g_bytes_get_size(o.result), (const guint8 *)doc,
					  strlen(doc), trust, &error));
	g_assert_no_error(error);
	outcome_clear(&o);
}

static void
test_make_blank_key(Fixture *f, gconstpointer data)
{
	const char *algorithm = data;
	g_autofree char *id = key_id_of(f->blank);
	g_autoptr(GBytes) cert = NULL;
	g_autoptr(GBytes) seal = NULL;
	g_autoptr(EVP_PKEY) pub = NULL;
	CsKey *key = wait_key(f, f->blank, TRUE);
	Outcome o = {0};

	g_assert_false(key->initialized);
	g_assert_true(wait_key(f, f->serial, TRUE)->initialized);
	make_begin(f, f->blank, SO_PIN, algorithm, &o);
	g_assert_no_error(o.error);
	pub = check_made_csr(f, f->blank, o.result, algorithm);
	key = cs_keys_lookup(f->keys, id);
	g_assert_true(key->initialized);
	g_assert_false(key->logged_in);
	g_assert_null(key->certificate);
	g_assert_false(key->has_seal);

	issue_and_seal(f, o.result, &cert, &seal);
	make_finish(f, f->blank, cert, seal, &o);
	g_assert_no_error(o.error);
	/* The Key's properties show what was written, as soon as it is done. */
	key = cs_keys_lookup(f->keys, id);
	g_assert_nonnull(key->certificate);
	g_assert_true(g_bytes_equal(key->certificate, cert));
	g_assert_true(key->has_seal);
	g_assert_false(key->logged_in);
	{
		g_autoptr(GBytes) on_key = cs_driver_run_get_object(f->driver, f->ctx, f->blank,
								    FALSE, CS_KEY_SEAL_LABEL, NULL);
		g_assert_true(on_key != NULL && g_bytes_equal(on_key, seal));
	}
	/* The administrator PIN is the one given: it resets the user PIN. */
	{
		g_autoptr(GError) error = NULL;
		cs_driver_run_unblock(f->driver, f->ctx, f->blank, SO_PIN, USER_PIN, &error);
		g_assert_no_error(error);
	}
	check_made_key_seals(f, f->blank);
	outcome_clear(&o);
}

static void
test_make_refuses_a_key_of_someone_else(Fixture *f, gconstpointer data)
{
	g_autoptr(GBytes) mine = g_bytes_new_static("mine", 4);
	g_autoptr(GBytes) back = NULL;
	Outcome o = {0};

	/* The fixture's key was initialised with another SO PIN (12345678) and holds data. */
	g_assert_true(cs_driver_run_put_object(f->driver, f->ctx, f->serial, FALSE,
					       CS_KEY_SEAL_LABEL, mine, NULL));
	make_begin(f, f->serial, SO_PIN, "ec-p256", &o);
	g_assert_error(o.error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_true(g_str_has_prefix(o.error->message, "key: "));
	g_assert_null(strstr(o.error->message, SO_PIN));
	g_assert_null(o.result);
	/* Untouched: its PIN and its objects are still there. */
	back =
	    cs_driver_run_get_object(f->driver, f->ctx, f->serial, FALSE, CS_KEY_SEAL_LABEL, NULL);
	g_assert_true(back != NULL && g_bytes_equal(back, mine));
	g_assert_true(cs_driver_run_login(f->driver, f->ctx, f->serial, "123456", NULL));
	outcome_clear(&o);
}

static void
expect_begin_refused(Fixture *f,
		     const char *id,
		     const char *label,
		     const char *user_pin,
		     const char *so_pin,
		     const char *algorithm,
		     const char *subject_cn,
		     int code,
		     const char *field)
{
	Outcome o = {0};

	cs_keys_make_begin(f->keys, id, label, user_pin, so_pin, algorithm, subject_cn, on_done,
			   &o);
	wait_done(&o, 10);
	g_assert_error(o.error, CS_ERROR, code);
	if (field != NULL) {
		g_autofree char *prefix = g_strconcat(field, ": ", NULL);
		g_assert_true(g_str_has_prefix(o.error->message, prefix));
	}
	outcome_clear(&o);
}

static void
test_make_refuses_bad_input(Fixture *f, gconstpointer data)
{
	g_autofree char *id = key_id_of(f->blank);
	g_autoptr(GBytes) junk = g_bytes_new_static("junk", 4);
	Outcome o = {0};

	expect_begin_refused(f, "pkcs11_NOSUCH", "certseal", USER_PIN, SO_PIN, "ec-p256", ORG_NAME,
			     CS_ERROR_KEY_REMOVED, NULL);
	expect_begin_refused(f, id, "certseal", USER_PIN, SO_PIN, "dsa-1024", ORG_NAME,
			     CS_ERROR_INVALID_INPUT, "algorithm");
	expect_begin_refused(f, id, "certseal", "12", SO_PIN, "ec-p256", ORG_NAME,
			     CS_ERROR_INVALID_INPUT, "user_pin");
	expect_begin_refused(f, id, "certseal", USER_PIN, "", "ec-p256", ORG_NAME,
			     CS_ERROR_INVALID_INPUT, "so_pin");
	expect_begin_refused(f, id, "certseal", USER_PIN, SO_PIN, "ec-p256", "a\nb",
			     CS_ERROR_INVALID_INPUT, "subject_cn");
	expect_begin_refused(f, id, "一个比三十二字节还要长得多的令牌标签", USER_PIN, SO_PIN,
			     "ec-p256", ORG_NAME, CS_ERROR_INVALID_INPUT, "label");
	/* Nothing reached the token: it is still blank. */
	g_assert_false(wait_key(f, f->blank, TRUE)->initialized);
	/* One making step at a time on a key. */
	{
		Outcome second = {0};

		cs_keys_make_begin(f->keys, id, "certseal", USER_PIN, SO_PIN, "ec-p256", ORG_NAME,
				   on_done, &o);
		cs_keys_make_begin(f->keys, id, "certseal", USER_PIN, SO_PIN, "ec-p256", ORG_NAME,
				   on_done, &second);
		g_assert_true(second.done);
		g_assert_error(second.error, CS_ERROR, CS_ERROR_UNAVAILABLE);
		wait_done(&o, 60);
		g_assert_no_error(o.error);
		outcome_clear(&o);
		outcome_clear(&second);
	}
	cs_keys_make_finish(f->keys, id, USER_PIN, junk, junk, on_done, &o);
	wait_done(&o, 10);
	g_assert_error(o.error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_true(g_str_has_prefix(o.error->message, "certificate: "));
	outcome_clear(&o);
}

static void
test_make_again_with_the_same_so_pin(Fixture *f, gconstpointer data)
{
	g_autofree char *id = key_id_of(f->blank);
	g_autoptr(GBytes) cert1 = NULL, seal1 = NULL, cert2 = NULL, seal2 = NULL;
	g_autoptr(GBytes) csr2 = NULL;
	g_autoptr(EVP_PKEY) pub1 = NULL;
	g_autoptr(EVP_PKEY) pub2 = NULL;
	g_autoptr(GError) error = NULL;
	Outcome o = {0};
	CsKey *key;

	/* A first making got as far as writing the certificate and the seal… */
	make_begin(f, f->blank, SO_PIN, "ec-p256", &o);
	g_assert_no_error(o.error);
	pub1 = check_made_csr(f, f->blank, o.result, "ec-p256");
	issue_and_seal(f, o.result, &cert1, &seal1);
	make_finish(f, f->blank, cert1, seal1, &o);
	g_assert_no_error(o.error);
	g_assert_true(cs_keys_lookup(f->keys, id)->has_seal);

	/* …then the order is made again on the same key with the same SO PIN: a new key
	 * pair, and nothing of the first making left on the key. */
	make_begin(f, f->blank, SO_PIN, "ec-p256", &o);
	g_assert_no_error(o.error);
	csr2 = g_bytes_ref(o.result);
	pub2 = check_made_csr(f, f->blank, csr2, "ec-p256");
	g_assert_cmpint(EVP_PKEY_eq(pub1, pub2), !=, 1);
	key = cs_keys_lookup(f->keys, id);
	g_assert_null(key->certificate);
	g_assert_false(key->has_seal);
	g_assert_null(cs_driver_run_get_object(f->driver, f->ctx, f->blank, TRUE,
					       CS_KEY_OBJECT_LABEL, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_NOT_FOUND);

	/* The first certificate is not for the new key pair. */
	make_finish(f, f->blank, cert1, seal1, &o);
	g_assert_error(o.error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_true(g_str_has_prefix(o.error->message, "certificate: "));
	g_assert_false(cs_keys_lookup(f->keys, id)->has_seal);
	/* Nor is a seal that does not list the certificate. */
	issue_and_seal(f, csr2, &cert2, &seal2);
	make_finish(f, f->blank, cert2, seal1, &o);
	g_assert_error(o.error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_true(g_str_has_prefix(o.error->message, "seal: "));
	/* A wrong user PIN is the token's answer. */
	outcome_clear(&o);
	cs_keys_make_finish(f->keys, id, "999998", cert2, seal2, on_done, &o);
	wait_done(&o, 30);
	g_assert_error(o.error, CS_ERROR, CS_ERROR_PIN_INCORRECT);
	make_finish(f, f->blank, cert2, seal2, &o);
	g_assert_no_error(o.error);
	g_assert_true(g_bytes_equal(cs_keys_lookup(f->keys, id)->certificate, cert2));
	check_made_key_seals(f, f->blank);

	/* Another SO PIN is refused now that the key is initialised. */
	make_begin(f, f->blank, "97531975", "ec-p256", &o);
	g_assert_error(o.error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_true(g_str_has_prefix(o.error->message, "key: "));
	outcome_clear(&o);
}

typedef struct {
	Fixture *f;
	const char *serial;
} Unplug;

static gboolean
unplug_now(gpointer data)
{
	Unplug *u = data;

	vkey(u->f, (const char *const[]){"unplug", u->serial, NULL});
	return G_SOURCE_REMOVE;
}

/* Pull the key at @function's first call (or hang it there and pull it): KEY_REMOVED
 * without waiting for any timeout, and the key, plugged in again, is made with the same
 * SO PIN. */
static void
pulled_during_begin(Fixture *f, const char *function, const char *mode)
{
	Outcome o = {0};
	Unplug u = {f, f->blank};
	gint64 start;

	vkey(f, (const char *const[]){"fault", f->blank, function, "--after", "1", "--mode", mode,
				      "--timeout", "60000", NULL});
	if (g_str_equal(mode, "hang"))
		g_timeout_add(300, unplug_now, &u);
	start = g_get_monotonic_time();
	make_begin(f, f->blank, SO_PIN, "ec-p256", &o);
	g_assert_error(o.error, CS_ERROR, CS_ERROR_KEY_REMOVED);
	g_assert_null(o.result);
	g_assert_cmpint(g_get_monotonic_time() - start, <, 20 * G_USEC_PER_SEC);
	wait_key(f, f->blank, FALSE);
	vkey(f, (const char *const[]){"plug", f->blank, NULL});
	wait_key(f, f->blank, TRUE);
	make_begin(f, f->blank, SO_PIN, "ec-p256", &o);
	g_assert_no_error(o.error);
	outcome_clear(&o);
}

static void
test_make_pulled_key(Fixture *f, gconstpointer data)
{
	g_autofree char *id = key_id_of(f->blank);
	g_autoptr(GBytes) cert = NULL;
	g_autoptr(GBytes) seal = NULL;
	Outcome o = {0};

	pulled_during_begin(f, "C_InitToken", "unplug");
	pulled_during_begin(f, "C_InitPIN", "unplug");
	pulled_during_begin(f, "C_GenerateKeyPair", "unplug");
	pulled_during_begin(f, "C_Sign", "unplug");
	pulled_during_begin(f, "C_GenerateKeyPair", "hang");
	/* Pulled while the seal is written: the certificate went in (C_CreateObject #1),
	 * the seal did not. */
	make_begin(f, f->blank, SO_PIN, "ec-p256", &o);
	g_assert_no_error(o.error);
	issue_and_seal(f, o.result, &cert, &seal);
	vkey(f, (const char *const[]){"fault", f->blank, "C_CreateObject", "--after", "2", "--mode",
				      "unplug", NULL});
	make_finish(f, f->blank, cert, seal, &o);
	g_assert_error(o.error, CS_ERROR, CS_ERROR_KEY_REMOVED);
	wait_key(f, f->blank, FALSE);
	vkey(f, (const char *const[]){"plug", f->blank, NULL});
	g_assert_false(wait_key(f, f->blank, TRUE)->has_seal);
	make_finish(f, f->blank, cert, seal, &o);
	g_assert_no_error(o.error);
	g_assert_true(cs_keys_lookup(f->keys, id)->has_seal);
	outcome_clear(&o);
}

/* A made key, then renewed (twice: the two places alternate): each renewal's key pair is
 * generated beside the old one, which keeps its certificate until the new one is written;
 * then the old certificate and key pair are gone and the key seals with the new pair. No
 * PIN passes: the user's login is what allows it. */
static void
renew_once(Fixture *f, const char *old_place, const char *new_place)
{
	g_autofree char *id = key_id_of(f->blank);
	g_autofree char *old_serial = g_strdup(cs_keys_lookup(f->keys, id)->certificate_serial);
	g_autoptr(GBytes) old_cert = g_bytes_ref(cs_keys_lookup(f->keys, id)->certificate);
	g_autoptr(GBytes) cert = NULL;
	g_autoptr(GBytes) seal = NULL;
	g_autoptr(GBytes) gone = NULL;
	g_autoptr(GError) error = NULL;
	Outcome o = {0};

	cs_keys_renew_begin(f->keys, id, old_serial, "ec-p256", ORG_NAME, on_done, &o);
	wait_done(&o, 60);
	g_assert_no_error(o.error);
	/* Both key pairs now; the old certificate still the key's. */
	g_autoptr(GBytes) spki_new =
	    cs_driver_run_get_public_key(f->driver, f->ctx, f->blank, new_place, &error);
	g_assert_no_error(error);
	g_autoptr(GBytes) spki_old =
	    cs_driver_run_get_public_key(f->driver, f->ctx, f->blank, old_place, &error);
	g_assert_no_error(error);
	g_assert_true(g_bytes_equal(cs_keys_lookup(f->keys, id)->certificate, old_cert));
	issue_and_seal(f, o.result, &cert, &seal);
	outcome_clear(&o);
	cs_keys_renew_finish(f->keys, id, cert, seal, on_done, &o);
	wait_done(&o, 60);
	g_assert_no_error(o.error);
	g_assert_true(g_bytes_equal(cs_keys_lookup(f->keys, id)->certificate, cert));
	g_assert_true(cs_keys_lookup(f->keys, id)->logged_in);
	gone = cs_driver_run_get_object(f->driver, f->ctx, f->blank, TRUE, old_place, &error);
	g_assert_error(error, CS_ERROR, CS_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_assert_null(cs_driver_run_get_public_key(f->driver, f->ctx, f->blank, old_place, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_NO_KEY);
	g_clear_error(&error);
	/* The certificate renewed must be the one on the key. */
	outcome_clear(&o);
	cs_keys_renew_begin(f->keys, id, old_serial, "ec-p256", ORG_NAME, on_done, &o);
	wait_done(&o, 60);
	g_assert_error(o.error, CS_ERROR, CS_ERROR_NOT_FOUND);
	outcome_clear(&o);
	/* It seals with the new key pair. */
	cs_keys_logout(f->keys, id, on_done, &o);
	wait_done(&o, 30);
	outcome_clear(&o);
	check_made_key_seals(f, f->blank);
}

static void
test_renew_beside_the_old(Fixture *f, gconstpointer data)
{
	g_autofree char *id = key_id_of(f->blank);
	g_autoptr(GBytes) cert = NULL;
	g_autoptr(GBytes) seal = NULL;
	Outcome o = {0};

	wait_key(f, f->blank, TRUE);
	make_begin(f, f->blank, SO_PIN, "ec-p256", &o);
	g_assert_no_error(o.error);
	issue_and_seal(f, o.result, &cert, &seal);
	make_finish(f, f->blank, cert, seal, &o);
	g_assert_no_error(o.error);
	/* Not logged in: refused, naming Login, the key untouched. */
	outcome_clear(&o);
	cs_keys_renew_begin(f->keys, id, cs_keys_lookup(f->keys, id)->certificate_serial, "ec-p256",
			    ORG_NAME, on_done, &o);
	wait_done(&o, 30);
	g_assert_error(o.error, CS_ERROR, CS_ERROR_ACCESS_DENIED);
	g_assert_nonnull(strstr(o.error->message, "Login"));
	outcome_clear(&o);
	cs_keys_login(f->keys, id, getuid(), USER_PIN, on_done, &o);
	wait_done(&o, 30);
	g_assert_no_error(o.error);
	outcome_clear(&o);
	renew_once(f, CS_KEY_PAIR_ID, CS_KEY_PAIR_ID_NEXT);
	/* check_made_key_seals logged in again: the next renewal goes back to the first place. */
	renew_once(f, CS_KEY_PAIR_ID_NEXT, CS_KEY_PAIR_ID);
}

/* The CSR helper with a signer kept elsewhere, for the algorithm SoftHSM2 cannot hold. */
static void
test_csr_sm2_signed_elsewhere(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(EVP_PKEY) key = cs_key_generate(CS_KEY_SM2, &error);
	g_autoptr(EVP_PKEY) other = cs_key_generate(CS_KEY_SM2, &error);
	g_autoptr(X509_NAME) name = X509_NAME_new();
	g_autoptr(GBytes) der = NULL;
	g_autoptr(GBytes) bad = NULL;
	g_autoptr(X509_REQ) req = NULL;
	g_autoptr(CsCsr) csr = NULL;
	const unsigned char *p;

	g_assert_no_error(error);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)ORG_NAME, -1,
				   -1, 0);
	der = cs_csr_build_signed(key, name, cs_seal_sign_with_key, key, &error);
	g_assert_no_error(error);
	p = g_bytes_get_data(der, NULL);
	req = d2i_X509_REQ(NULL, &p, (long)g_bytes_get_size(der));
	g_assert_nonnull(req);
	g_assert_cmpint(X509_REQ_get_signature_nid(req), ==, NID_SM2_with_SM3);
	/* Signed with the distinguishing ID Chinese CAs use, not OpenSSL's empty default. */
	g_assert_cmpint(X509_REQ_verify(req, key), !=, 1);
	ERR_clear_error();
	X509_REQ_set0_distinguishing_id(req, cs_sm2_id_new());
	g_assert_cmpint(X509_REQ_verify(req, key), ==, 1);
	/* The CA's own proof-of-possession check accepts it. */
	csr = cs_csr_parse(g_bytes_get_data(der, NULL), g_bytes_get_size(der), &error);
	g_assert_no_error(error);
	g_assert_cmpint(cs_csr_get_algorithm(csr), ==, CS_KEY_SM2);
	/* A signer with another key is caught. */
	bad = cs_csr_build_signed(key, name, cs_seal_sign_with_key, other, &error);
	g_assert_null(bad);
	g_assert_error(error, CS_ERROR, CS_ERROR_INTERNAL);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/keys/vkey/wrong-pin-counts-down-to-lock-right-pin-refused-then-unblock",
		   Fixture, NULL, fixture_setup, test_wrong_pin_counts_down_to_lock_then_unblock,
		   fixture_teardown);
	g_test_add("/keys/vkey/change-pin", Fixture, NULL, fixture_setup, test_change_pin,
		   fixture_teardown);
	g_test_add("/keys/vkey/rsa-and-ec-keygen-csr-accepted-by-openssl", Fixture, NULL,
		   fixture_setup, test_keygen_and_csr, fixture_teardown);
	g_test_add("/keys/vkey/sign-after-logout-and-login-then-unblock", Fixture, NULL,
		   fixture_setup, test_sign_after_logout_then_unblock, fixture_teardown);
	g_test_add("/keys/vkey/seal-round-trip", Fixture, NULL, fixture_setup,
		   test_certificate_and_seal_round_trip, fixture_teardown);
	g_test_add("/keys/vkey/pulled-mid-write-is-key-removed", Fixture, NULL, fixture_setup,
		   test_pulled_mid_write_is_key_removed, fixture_teardown);
	g_test_add("/keys/vkey/blank-key-is-initialised-for-making", Fixture, NULL, fixture_setup,
		   test_blank_key_is_initialised_for_making, fixture_teardown);
	g_test_add_func("/keys/renew/refused-with-multiple-keys-whatever-the-vendors",
			test_only_one_key_for_renewal);
	g_test_add_func("/keys/csr/sm2-signed-elsewhere-carries-the-distinguishing-id",
			test_csr_sm2_signed_elsewhere);
	g_test_add("/keys/make/blank-key-ec-p256-csr-signed-on-the-token-then-certificate-and-seal",
		   Fixture, "ec-p256", make_setup, test_make_blank_key, make_teardown);
	g_test_add(
	    "/keys/make/blank-key-rsa-2048-csr-signed-on-the-token-then-certificate-and-seal",
	    Fixture, "rsa-2048", make_setup, test_make_blank_key, make_teardown);
	g_test_add("/keys/make/refused-on-a-key-initialised-with-another-so-pin", Fixture, NULL,
		   make_setup, test_make_refuses_a_key_of_someone_else, make_teardown);
	g_test_add("/keys/make/refuses-bad-input-before-touching-the-key", Fixture, NULL,
		   make_setup, test_make_refuses_bad_input, make_teardown);
	g_test_add("/keys/make/again-on-the-same-key-with-the-same-so-pin", Fixture, NULL,
		   make_setup, test_make_again_with_the_same_so_pin, make_teardown);
	g_test_add("/keys/make/pulled-or-hung-mid-way-is-key-removed-then-made-again", Fixture,
		   NULL, make_setup, test_make_pulled_key, make_teardown);
	g_test_add("/keys/renew/new-key-pair-beside-the-old-then-the-old-deleted", Fixture, NULL,
		   make_setup, test_renew_beside_the_old, make_teardown);
	return g_test_run();
}
