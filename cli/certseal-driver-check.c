/*
 * certseal-driver-check.c — conformance checks for a vendor key driver, so a vendor can
 * check their plugin against a real token before shipping it.
 *
 *   certseal-driver-check DRIVER.so --profile FILE [--state-dir DIR] [--serial S]
 *                         [--remove-command CMD]
 *
 * The user PIN is read from the first line of stdin and must be right; the token must
 * allow at least three PIN tries. The driver is loaded with the daemon's own loader
 * (same refusals, test mode: any owner) and initialised with the profile like certseald
 * does. Checks, in order: enumerate, PIN status, login failure counting, key generation
 * (RSA-2048 and EC P-256), sign/verify, certificate and data-object round trips, removal
 * handling (only with --remove-command: a command that pulls the token, e.g.
 * `certseal-vkey --state-dir D unplug S`). Output is TAP; exit 0 when every check passed.
 */
#define G_LOG_DOMAIN "certseal-driver-check"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#include "cs-config.h"
#include "cs-loader.h"

static int n_checks, n_failed;

static void
report(gboolean ok, const char *name, const char *detail)
{
	n_checks++;
	if (!ok)
		n_failed++;
	g_print("%s %d - %s%s%s\n", ok ? "ok" : "not ok", n_checks, name,
		detail != NULL ? ": " : "", detail != NULL ? detail : "");
}

static const char *
msg(CsDriverError *err)
{
	return err->message[0] != '\0' ? err->message : "(no message)";
}

static gboolean
verify(const unsigned char *spki,
       size_t spki_len,
       const unsigned char *data,
       size_t len,
       const unsigned char *sig,
       size_t sig_len)
{
	const unsigned char *p = spki;
	EVP_PKEY *pkey = d2i_PUBKEY(NULL, &p, (long)spki_len);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	gboolean ok = pkey != NULL &&
		      EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1 &&
		      EVP_DigestVerify(md, sig, sig_len, data, len) == 1;

	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pkey);
	return ok;
}

/* A small self-signed certificate made in software, for the round trip. */
static GBytes *
make_certificate(void)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name = X509_get_subject_name(x);
	unsigned char *der = NULL;
	int len;
	GBytes *out = NULL;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)"driver check",
				   -1, -1, 0);
	X509_set_issuer_name(x, name);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	if (X509_sign(x, key, EVP_sha256()) > 0 && (len = i2d_X509(x, &der)) > 0)
		out = g_bytes_new(der, (gsize)len);
	OPENSSL_free(der);
	X509_free(x);
	EVP_PKEY_free(key);
	return out;
}

typedef struct {
	const CsLoadedDriver *driver;
	const CsDriverOps *ops;
	CsDriverContext *ctx;
	const char *serial;
	const char *pin;
	int max_tries;
} Check;

static void
check_pin(Check *c)
{
	CsDriverPinStatus st = {0};
	CsDriverError err = {.tries_left = -1};
	int before;
	CsDriverStatus s = c->ops->pin_status(c->ctx, c->serial, &st, &err);

	report(s == CS_DRIVER_OK && !st.locked, "PIN status", s == CS_DRIVER_OK ? NULL : msg(&err));
	before = st.tries_left;
	err = (CsDriverError){.tries_left = -1};
	s = c->ops->login(c->ctx, c->serial, "0000000000000", &err);
	report(s == CS_DRIVER_ERR_PIN_INCORRECT, "a wrong PIN is refused as PIN_INCORRECT",
	       msg(&err));
	report(before < 0 || err.tries_left == before - 1, "the refusal counts tries down", NULL);
	err = (CsDriverError){.tries_left = -1};
	s = c->ops->pin_status(c->ctx, c->serial, &st, &err);
	report(s == CS_DRIVER_OK && st.count_low && (before < 0 || st.tries_left == before - 1),
	       "PIN status shows the count going down", NULL);
	err = (CsDriverError){.tries_left = -1};
	s = c->ops->login(c->ctx, c->serial, c->pin, &err);
	report(s == CS_DRIVER_OK, "the right PIN logs in", s == CS_DRIVER_OK ? NULL : msg(&err));
	s = c->ops->pin_status(c->ctx, c->serial, &st, &err);
	report(s == CS_DRIVER_OK && st.logged_in && !st.count_low &&
		   (before < 0 || st.tries_left == before),
	       "a login resets the count and shows logged in", NULL);
}

static void
check_keys(Check *c)
{
	const char *algs[] = {"rsa-2048", "ec-p256"};
	static const unsigned char tbs[] = "to be signed: certseal driver check";

	for (guint i = 0; i < G_N_ELEMENTS(algs); i++) {
		unsigned char spki[2048], sig[1024];
		size_t spki_len = sizeof(spki), sig_len = sizeof(sig);
		CsDriverError err = {.tries_left = -1};
		g_autofree char *name = g_strdup_printf("generate a %s key", algs[i]);
		g_autofree char *key_id = g_strdup_printf("check-%s", algs[i]);
		CsDriverStatus s =
		    c->ops->generate_key(c->ctx, c->serial, key_id, algs[i], spki, &spki_len, &err);

		report(s == CS_DRIVER_OK, name, s == CS_DRIVER_OK ? NULL : msg(&err));
		if (s != CS_DRIVER_OK)
			continue;
		s = c->ops->sign(c->ctx, c->serial, key_id, "sha256", tbs, sizeof(tbs), sig,
				 &sig_len, &err);
		g_free(name);
		name = g_strdup_printf("a %s signature verifies with the public key", algs[i]);
		report(s == CS_DRIVER_OK && verify(spki, spki_len, tbs, sizeof(tbs), sig, sig_len),
		       name, s == CS_DRIVER_OK ? NULL : msg(&err));
	}
}

/* Minor 1: a key pair deleted by its id is gone, and a key pair beside it is untouched (a
 * renewal deletes the old key pair once the new one holds the certificate). */
static void
check_delete_key(Check *c)
{
	static const unsigned char tbs[] = "to be signed after a delete";
	const char *alg = "ec-p256";
	unsigned char spki[2048], sig[1024];
	size_t spki_len = sizeof(spki), sig_len = sizeof(sig);
	CsDriverError err = {.tries_left = -1};
	CsDriverStatus s;

	if (!cs_driver_has_op(c->driver, delete_key)) {
		g_print("ok %d - delete_key # SKIP not in this driver (ABI minor %d)\n", ++n_checks,
			c->driver->abi_minor);
		return;
	}
	s = c->ops->generate_key(c->ctx, c->serial, "check-old", alg, spki, &spki_len, &err);
	if (s == CS_DRIVER_OK) {
		spki_len = sizeof(spki);
		s = c->ops->generate_key(c->ctx, c->serial, "check-new", alg, spki, &spki_len,
					 &err);
	}
	report(s == CS_DRIVER_OK, "two key pairs side by side",
	       s == CS_DRIVER_OK ? NULL : msg(&err));
	if (s != CS_DRIVER_OK)
		return;
	s = c->ops->delete_key(c->ctx, c->serial, "check-old", &err);
	report(s == CS_DRIVER_OK, "delete_key deletes a key pair",
	       s == CS_DRIVER_OK ? NULL : msg(&err));
	s = c->ops->sign(c->ctx, c->serial, "check-old", "sha256", tbs, sizeof(tbs), sig, &sig_len,
			 &err);
	report(s == CS_DRIVER_ERR_NOT_FOUND, "a deleted key pair no longer signs (NOT_FOUND)",
	       msg(&err));
	spki_len = sizeof(spki);
	s = c->ops->get_public_key(c->ctx, c->serial, "check-old", spki, &spki_len, &err);
	report(s == CS_DRIVER_ERR_NOT_FOUND, "a deleted key pair has no public key", msg(&err));
	sig_len = sizeof(sig);
	s = c->ops->sign(c->ctx, c->serial, "check-new", "sha256", tbs, sizeof(tbs), sig, &sig_len,
			 &err);
	report(s == CS_DRIVER_OK, "the key pair beside it still signs",
	       s == CS_DRIVER_OK ? NULL : msg(&err));
	s = c->ops->delete_key(c->ctx, c->serial, "check-old", &err);
	report(s == CS_DRIVER_ERR_NOT_FOUND, "deleting it again is NOT_FOUND", msg(&err));
	c->ops->delete_key(c->ctx, c->serial, "check-new", &err);
}

static void
check_objects(Check *c)
{
	g_autoptr(GBytes) cert = make_certificate();
	static const unsigned char seal[] = "\x30\x03\x02\x01\x04 a seal";

	for (int is_cert = 1; is_cert >= 0; is_cert--) {
		const unsigned char *data = is_cert ? g_bytes_get_data(cert, NULL) : seal;
		size_t len = is_cert ? g_bytes_get_size(cert) : sizeof(seal);
		unsigned char back[8192];
		size_t back_len = sizeof(back);
		CsDriverError err = {.tries_left = -1};
		const char *what = is_cert ? "certificate" : "data object";
		g_autofree char *name = g_strdup_printf("%s round trip", what);
		CsDriverStatus s =
		    c->ops->put_object(c->ctx, c->serial, is_cert, "check", data, len, &err);

		if (s == CS_DRIVER_OK)
			s = c->ops->get_object(c->ctx, c->serial, is_cert, "check", back, &back_len,
					       &err);
		report(s == CS_DRIVER_OK && back_len == len && memcmp(back, data, len) == 0, name,
		       s == CS_DRIVER_OK ? NULL : msg(&err));
		s = c->ops->delete_object(c->ctx, c->serial, is_cert, "check", &err);
		back_len = sizeof(back);
		if (s == CS_DRIVER_OK)
			s = c->ops->get_object(c->ctx, c->serial, is_cert, "check", back, &back_len,
					       &err);
		g_free(name);
		name = g_strdup_printf("a deleted %s is gone", what);
		report(s == CS_DRIVER_ERR_NOT_FOUND, name, msg(&err));
	}
}

static gboolean
token_listed(Check *c)
{
	CsDriverTokenInfo tokens[32];
	size_t n = 0;
	CsDriverError err = {.tries_left = -1};

	if (c->ops->enumerate(c->ctx, tokens, G_N_ELEMENTS(tokens), &n, &err) != CS_DRIVER_OK)
		return FALSE;
	for (size_t i = 0; i < n; i++)
		if (g_str_equal(tokens[i].serial, c->serial))
			return TRUE;
	return FALSE;
}

static void
check_removal(Check *c, const char *command)
{
	g_autoptr(GError) error = NULL;
	gint status = 0;
	gint64 deadline;
	CsDriverPinStatus st;
	CsDriverError err = {.tries_left = -1};
	CsDriverStatus s;

	if (command == NULL) {
		g_print("ok %d - removal handling # SKIP no --remove-command\n", ++n_checks);
		return;
	}
	if (!g_spawn_command_line_sync(command, NULL, NULL, &status, &error) ||
	    !g_spawn_check_wait_status(status, &error)) {
		report(FALSE, "the remove command ran", error->message);
		return;
	}
	deadline = g_get_monotonic_time() + 3 * G_USEC_PER_SEC;
	while (token_listed(c) && g_get_monotonic_time() < deadline)
		g_usleep(50000);
	report(!token_listed(c), "a removed token leaves the list within 3 s", NULL);
	s = c->ops->pin_status(c->ctx, c->serial, &st, &err);
	report(s == CS_DRIVER_ERR_TOKEN_REMOVED || s == CS_DRIVER_ERR_NOT_FOUND,
	       "calls on a removed token fail as removed / not found", msg(&err));
}

int
main(int argc, char **argv)
{
	g_autofree char *profile = NULL, *state_dir = NULL, *serial = NULL, *remove_cmd = NULL;
	g_autoptr(GOptionContext) octx = g_option_context_new("DRIVER.so — check a key driver");
	g_autoptr(GError) error = NULL;
	g_autoptr(CsLoadedDriver) driver = NULL;
	g_autoptr(CsVendor) vendor = NULL;
	g_autofree char *driver_state = NULL;
	char pin[256] = "";
	CsDriverTokenInfo tokens[32];
	size_t n = 0;
	CsDriverError err = {.tries_left = -1};
	CsDriverConfig cfg;
	Check c = {0};
	gint64 deadline;
	GOptionEntry entries[] = {
	    {"profile", 0, 0, G_OPTION_ARG_FILENAME, &profile, "Vendor profile", "FILE"},
	    {"state-dir", 0, 0, G_OPTION_ARG_FILENAME, &state_dir, "State directory", "DIR"},
	    {"serial", 0, 0, G_OPTION_ARG_STRING, &serial, "Token to use (default: the first)",
	     "S"},
	    {"remove-command", 0, 0, G_OPTION_ARG_STRING, &remove_cmd, "Pulls the token", "CMD"},
	    {NULL},
	};

	g_option_context_add_main_entries(octx, entries, NULL);
	if (!g_option_context_parse(octx, &argc, &argv, &error) || argc != 2 || profile == NULL) {
		g_printerr(
		    "usage: certseal-driver-check DRIVER.so --profile FILE [--state-dir DIR] "
		    "[--serial S] [--remove-command CMD]  (user PIN on stdin)\n");
		return 2;
	}
	if (fgets(pin, sizeof(pin), stdin) == NULL || strlen(g_strchomp(pin)) == 0) {
		g_printerr("certseal-driver-check: the user PIN is read from stdin\n");
		return 2;
	}
	driver = cs_loader_load_driver(argv[1], TRUE, &error);
	report(driver != NULL, "the driver loads (ABI, symbols)",
	       driver == NULL ? error->message : NULL);
	if (driver == NULL)
		return 1;
	vendor = cs_vendor_load(profile, &error);
	if (vendor == NULL) {
		g_printerr("certseal-driver-check: %s\n", error->message);
		return 2;
	}
	if (state_dir == NULL)
		state_dir = g_dir_make_tmp("cs-check-XXXXXX", NULL);
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
	c.driver = driver;
	c.ops = driver->ops;
	if (!cs_driver_run_init(driver, &cfg, &c.ctx, &error)) {
		report(FALSE, "init with the profile", error->message);
		return 1;
	}
	report(TRUE, "init with the profile", NULL);
	c.pin = pin;
	deadline = g_get_monotonic_time() + 3 * G_USEC_PER_SEC;
	do {
		n = 0;
		if (c.ops->enumerate == NULL ||
		    c.ops->enumerate(c.ctx, tokens, G_N_ELEMENTS(tokens), &n, &err) != CS_DRIVER_OK)
			break;
		for (size_t i = 0; i < n && c.serial == NULL; i++)
			if (serial == NULL || g_str_equal(serial, tokens[i].serial))
				c.serial = tokens[i].serial;
		if (c.serial == NULL)
			g_usleep(100000);
	} while (c.serial == NULL && g_get_monotonic_time() < deadline);
	report(c.serial != NULL, "enumerate finds the token", NULL);
	if (c.serial != NULL) {
		check_pin(&c);
		check_keys(&c);
		check_delete_key(&c);
		check_objects(&c);
		check_removal(&c, remove_cmd);
	}
	memset(pin, 0, sizeof(pin));
	cs_driver_run_shutdown(driver, c.ctx);
	g_print("1..%d\n# %d passed, %d failed\n", n_checks, n_checks - n_failed, n_failed);
	return n_failed == 0 ? 0 : 1;
}
