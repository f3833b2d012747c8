/*
 * test-keys.c — the pkcs11 driver over real SoftHSM2 tokens behind the virtual UKey, called
 * through the daemon's runners as the key manager calls it; and the single-key rule.
 *
 * Each case gets its own state directory (a short path under /tmp), a fresh vkey token
 * made by the real certseal-vkey tool, and the driver initialised with the demo-a
 * profile the build generates.
 */
#include <glib/gstdio.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <string.h>

#include "cs-config.h"
#include "cs-keys.h"
#include "cs-loader.h"

typedef struct {
	char *state;
	char *serial;
	CsLoadedDriver *driver;
	CsVendor *vendor;
	CsDriverContext *ctx;
	char *driver_state;
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

/* A CSR assembled by the daemon's external-signing pattern, signed on the token; the
 * openssl command must accept it. */
static void
check_csr(Fixture *f, const char *algorithm)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) spki =
	    cs_driver_run_generate_key(f->driver, f->ctx, f->serial, "csr-key", algorithm, &error);
	const unsigned char *p;
	EVP_PKEY *pub;
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	X509_ALGOR *alg = X509_ALGOR_new();
	ASN1_BIT_STRING *bits = ASN1_BIT_STRING_new();
	unsigned char *tbs = NULL;
	int tbs_len;
	gboolean rsa = g_str_equal(algorithm, "rsa-2048");
	g_autoptr(GBytes) tbs_bytes = NULL;
	g_autoptr(GBytes) sig = NULL;
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
	X509_REQ_set_subject_name(req, name);
	X509_REQ_set_pubkey(req, pub);
	X509_ALGOR_set0(alg, OBJ_nid2obj(rsa ? NID_sha256WithRSAEncryption : NID_ecdsa_with_SHA256),
			rsa ? V_ASN1_NULL : V_ASN1_UNDEF, NULL);
	g_assert_cmpint(X509_REQ_set1_signature_algo(req, alg), ==, 1);
	tbs_len = i2d_re_X509_REQ_tbs(req, &tbs);
	g_assert_cmpint(tbs_len, >, 0);
	tbs_bytes = g_bytes_new(tbs, (gsize)tbs_len);
	sig = cs_driver_run_sign(f->driver, f->ctx, f->serial, "csr-key", "sha256", tbs_bytes,
				 &error);
	g_assert_no_error(error);
	ASN1_BIT_STRING_set(bits, (unsigned char *)g_bytes_get_data(sig, NULL),
			    (int)g_bytes_get_size(sig));
	bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
	bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
	X509_REQ_set0_signature(req, bits);
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
	OPENSSL_free(tbs);
	X509_ALGOR_free(alg);
	X509_NAME_free(name);
	X509_REQ_free(req);
	EVP_PKEY_free(pub);
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
	return g_test_run();
}
