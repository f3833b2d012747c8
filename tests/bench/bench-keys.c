/*
 * bench-keys.c — signatures per second through the pkcs11 driver's sign operation, called
 * directly as the engine's worker threads call it, against raw libp11 signing on the same
 * virtual UKey token in the same run (RSA-2048 and EC P-256). Both sides hash the same
 * to-be-signed bytes on the host; the token does the private-key operation. Prints the
 * ratios; asserts nothing about time (docs/architecture.md §7).
 *
 * The two sides run one after the other, each with the module loaded once: the driver
 * first (its own PKCS11_CTX), then libp11 with a fresh context — never two contexts on
 * one module at the same time (docs/architecture.md §8).
 */
#include <glib/gstdio.h>
#include <libp11.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <string.h>

#include "cs-config.h"
#include "cs-loader.h"

/* Each side runs SLICES slices of RUN_US and keeps its best slice: a 2-core machine's
 * scheduling hiccups hit one slice, not the figure. */
#define RUN_US (G_USEC_PER_SEC / 2)
#define SLICES 4

static const unsigned char tbs[] = "a certificate request's to-be-signed bytes, about this long...";

static const char *
build_dir(void)
{
	const char *b = g_getenv("CS_BUILD_DIR");
	return b != NULL ? b : "build";
}

static double
bench_driver_slice(const CsLoadedDriver *d,
		   CsDriverContext *ctx,
		   const char *serial,
		   const char *key_id)
{
	gint64 start = g_get_monotonic_time(), now;
	guint n = 0;

	do {
		unsigned char sig[1024];
		size_t sig_len = sizeof(sig);
		CsDriverError err = {.tries_left = -1};
		if (d->ops->sign(ctx, serial, key_id, "sha256", tbs, sizeof(tbs), sig, &sig_len,
				 &err) != CS_DRIVER_OK)
			g_error("driver sign: %s", err.message);
		n++;
		now = g_get_monotonic_time();
	} while (now - start < RUN_US);
	return n * (double)G_USEC_PER_SEC / (double)(now - start);
}

static double
bench_driver(const CsLoadedDriver *d, CsDriverContext *ctx, const char *serial, const char *key_id)
{
	double best = 0;

	for (int i = 0; i < SLICES; i++)
		best = MAX(best, bench_driver_slice(d, ctx, serial, key_id));
	return best;
}

static double
bench_libp11_slice(EVP_PKEY *pkey, gboolean rsa)
{
	gint64 start = g_get_monotonic_time(), now;
	guint n = 0;

	do {
		unsigned char md[32], sig[1024];
		unsigned int md_len = 0;
		size_t sig_len = sizeof(sig);
		EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new(pkey, NULL);

		EVP_Digest(tbs, sizeof(tbs), md, &md_len, EVP_sha256(), NULL);
		if (pctx == NULL || EVP_PKEY_sign_init(pctx) <= 0 ||
		    (rsa && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0) ||
		    EVP_PKEY_CTX_set_signature_md(pctx, EVP_sha256()) <= 0 ||
		    EVP_PKEY_sign(pctx, sig, &sig_len, md, md_len) <= 0)
			g_error("libp11 sign failed");
		EVP_PKEY_CTX_free(pctx);
		n++;
		now = g_get_monotonic_time();
	} while (now - start < RUN_US);
	return n * (double)G_USEC_PER_SEC / (double)(now - start);
}

static double
bench_libp11(EVP_PKEY *pkey, gboolean rsa)
{
	double best = 0;

	for (int i = 0; i < SLICES; i++)
		best = MAX(best, bench_libp11_slice(pkey, rsa));
	return best;
}

int
main(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *state = g_dir_make_tmp("csb-XXXXXX", &error);
	g_autofree char *vkey = g_build_filename(build_dir(), "cli", "certseal-vkey", NULL);
	g_autofree char *profile =
	    g_build_filename(build_dir(), "daemon", "vendors.d", "demo-a.conf", NULL);
	g_autofree char *driver_path =
	    g_build_filename(build_dir(), "drivers", "certseal-driver-pkcs11.so", NULL);
	g_autofree char *driver_state = NULL;
	g_autofree char *cmd = NULL;
	g_autofree char *init_args = NULL;
	g_autofree char *out = NULL;
	g_autoptr(CsLoadedDriver) driver = NULL;
	g_autoptr(CsVendor) vendor = NULL;
	CsDriverContext *ctx = NULL;
	CsDriverConfig cfg;
	const char *algs[] = {"rsa-2048", "ec-p256"};
	double via_driver[2], via_libp11[2];
	PKCS11_CTX *p11;
	PKCS11_SLOT *slots = NULL, *slot;
	PKCS11_KEY *keys = NULL;
	unsigned int n_slots = 0, n_keys = 0;
	gint status = 0;

	g_assert_no_error(error);
	cmd = g_strdup_printf("%s --state-dir %s create --vendor demo-a --serial BENCH1", vkey,
			      state);
	if (!g_spawn_command_line_sync(cmd, &out, NULL, &status, &error) ||
	    !g_spawn_check_wait_status(status, &error))
		g_error("%s: %s", cmd, error->message);

	/* The driver, as certseald runs it. */
	driver = cs_loader_load_driver(driver_path, TRUE, &error);
	vendor = driver != NULL ? cs_vendor_load(profile, &error) : NULL;
	if (vendor == NULL)
		g_error("%s", error->message);
	driver_state = g_build_filename(state, "drivers", "demo-a", NULL);
	g_mkdir_with_parents(driver_state, 0700);
	cfg = (CsDriverConfig){.vendor_id = vendor->id,
			       .module = vendor->module,
			       .manufacturer = vendor->manufacturer,
			       .model = vendor->model,
			       .pin_max_tries = vendor->pin_max_tries,
			       .state_dir = driver_state,
			       .init_args = vendor->init_args};
	if (!cs_driver_run_init(driver, &cfg, &ctx, &error))
		g_error("%s", error->message);
	for (int i = 0; i < 50; i++) {
		g_autoptr(GError) e = NULL;
		if (cs_driver_run_login(driver, ctx, "BENCH1", "123456", &e))
			break;
		g_usleep(100000);
	}
	for (guint i = 0; i < G_N_ELEMENTS(algs); i++) {
		g_autoptr(GBytes) spki =
		    cs_driver_run_generate_key(driver, ctx, "BENCH1", algs[i], algs[i], &error);
		if (spki == NULL)
			g_error("%s", error->message);
		via_driver[i] = bench_driver(driver, ctx, "BENCH1", algs[i]);
	}
	cs_driver_run_shutdown(driver, ctx);

	/* Raw libp11 on the same token. */
	{
		g_autofree char *vkey_dir = g_build_filename(state, "drivers", "vkey", NULL);
		init_args = g_strdup_printf("dir=%s", vkey_dir);
	}
	p11 = PKCS11_CTX_new();
	PKCS11_CTX_init_args(p11, init_args);
	if (PKCS11_CTX_load(p11, vendor->module) != 0 ||
	    PKCS11_enumerate_slots(p11, &slots, &n_slots) != 0 ||
	    (slot = PKCS11_find_token(p11, slots, n_slots)) == NULL ||
	    PKCS11_open_session(slot, 1) != 0 || PKCS11_login(slot, 0, "123456") != 0 ||
	    PKCS11_enumerate_keys(slot->token, &keys, &n_keys) != 0)
		g_error("libp11 could not reach the token");
	for (guint i = 0; i < G_N_ELEMENTS(algs); i++) {
		EVP_PKEY *pkey = NULL;
		for (unsigned int k = 0; k < n_keys && pkey == NULL; k++)
			if (g_strcmp0(keys[k].label, algs[i]) == 0)
				pkey = PKCS11_get_private_key(&keys[k]);
		if (pkey == NULL)
			g_error("libp11: no key %s", algs[i]);
		via_libp11[i] = bench_libp11(pkey, i == 0);
		EVP_PKEY_free(pkey);
	}
	PKCS11_release_all_slots(p11, slots, n_slots);
	PKCS11_CTX_unload(p11);
	PKCS11_CTX_free(p11);

	for (guint i = 0; i < G_N_ELEMENTS(algs); i++)
		g_print(
		    "sign %-9s driver %8.1f/s   raw libp11 %8.1f/s   ratio %.2f (target >= 0.9)\n",
		    algs[i], via_driver[i], via_libp11[i], via_driver[i] / via_libp11[i]);
	g_free(cmd);
	cmd = g_strdup_printf("rm -rf %s", state);
	g_spawn_command_line_sync(cmd, NULL, NULL, NULL, NULL);
	return 0;
}
