/*
 * vkey-threads.c — checks of the virtual UKey (drivers/vkey) that OpenSC's pkcs11-tool
 * cannot make: run by tests/integration/test_vkey_pkcs11.py against a key made with
 * certseal-vkey, the module's store named by CERTSEAL_VKEY_DIR.
 *
 *   vkey-threads MODULE TOKEN_DIR unplug-while-signing   two threads sign in a loop on
 *       one key while it is pulled: every call answers CKR_OK or a removal code, nothing
 *       crashes, and the key signs again once plugged back in
 *   vkey-threads MODULE TOKEN_DIR context-specific PIN   a wrong PIN given to
 *       C_Login(CKU_CONTEXT_SPECIFIC) uses a try like CKU_USER
 *   vkey-threads MODULE TOKEN_DIR sign-fault PIN   a C_Sign failed by a fault ends the
 *       operation: the next C_SignInit works (the fault file is written by the test)
 *
 * User PIN as the argument: this is a test tool for virtual keys. Exit 0 passed, 1 failed
 * (the reason on stderr), 2 usage.
 */
#include <dlfcn.h>
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <p11-kit/pkcs11.h>
#include <stdio.h>
#include <string.h>

static CK_FUNCTION_LIST_PTR f;
static CK_SLOT_ID slot;
static const char *token_dir;

#define CHECK(rv, what)                                                                            \
	do {                                                                                       \
		CK_RV r_ = (rv);                                                                   \
		if (r_ != CKR_OK) {                                                                \
			g_printerr("%s: 0x%lx\n", what, (unsigned long)r_);                        \
			return 1;                                                                  \
		}                                                                                  \
	} while (0)

static CK_RV
open_logged_in(const char *pin, CK_SESSION_HANDLE *s)
{
	CK_RV rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, s);

	if (rv != CKR_OK)
		return rv;
	rv = f->C_Login(*s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
	return rv == CKR_USER_ALREADY_LOGGED_IN ? CKR_OK : rv;
}

/* An EC P-256 key pair; @always_auth asks the PIN again for every signature. */
static CK_RV
make_key(CK_SESSION_HANDLE s, CK_BBOOL always_auth, CK_OBJECT_HANDLE *priv)
{
	static const CK_BYTE p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
	CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_BBOOL yes = CK_TRUE;
	CK_ATTRIBUTE pub_tmpl[] = {
	    {CKA_EC_PARAMS, (void *)p256, sizeof(p256)},
	    {CKA_VERIFY, &yes, sizeof(yes)},
	};
	CK_ATTRIBUTE priv_tmpl[] = {
	    {CKA_SIGN, &yes, sizeof(yes)},
	    {CKA_PRIVATE, &yes, sizeof(yes)},
	    {CKA_ALWAYS_AUTHENTICATE, &always_auth, sizeof(always_auth)},
	};
	CK_OBJECT_HANDLE pub;

	return f->C_GenerateKeyPair(s, &mech, pub_tmpl, G_N_ELEMENTS(pub_tmpl), priv_tmpl,
				    G_N_ELEMENTS(priv_tmpl), &pub, priv);
}

static CK_RV
sign_once(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key)
{
	CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
	CK_BYTE hash[32] = {1, 2, 3};
	CK_BYTE sig[256];
	CK_ULONG len = sizeof(sig);
	CK_RV rv = f->C_SignInit(s, &mech, key);

	return rv != CKR_OK ? rv : f->C_Sign(s, hash, sizeof(hash), sig, &len);
}

static guint
tries_flags(void)
{
	CK_TOKEN_INFO info;

	if (f->C_GetTokenInfo(slot, &info) != CKR_OK)
		return G_MAXUINT;
	return (guint)(info.flags & (CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_LOCKED));
}

/* --- two threads signing while the key is pulled ------------------------------------ */

typedef struct {
	CK_SESSION_HANDLE session;
	CK_OBJECT_HANDLE key;
	guint ok;
	guint removed;
	CK_RV unexpected;
} Signer;

static gpointer
signer_run(gpointer data)
{
	Signer *w = data;

	for (;;) {
		CK_RV rv = sign_once(w->session, w->key);
		if (rv == CKR_OK) {
			g_atomic_int_inc((gint *)&w->ok);
			continue;
		}
		if (rv == CKR_DEVICE_REMOVED || rv == CKR_SESSION_HANDLE_INVALID ||
		    rv == CKR_SESSION_CLOSED || rv == CKR_TOKEN_NOT_PRESENT) {
			w->removed++;
			break;
		}
		w->unexpected = rv;
		break;
	}
	return NULL;
}

static int
unplug_while_signing(const char *pin)
{
	g_autofree char *plugged = g_build_filename(token_dir, "plugged", NULL);
	CK_SESSION_HANDLE s0;
	CK_OBJECT_HANDLE key;
	Signer w[2] = {{0}};
	GThread *th[2];
	CK_RV rv;

	CHECK(open_logged_in(pin, &s0), "login");
	CHECK(make_key(s0, CK_FALSE, &key), "C_GenerateKeyPair");
	for (guint i = 0; i < 2; i++) {
		CHECK(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &w[i].session),
		      "C_OpenSession");
		w[i].key = key;
	}
	for (guint i = 0; i < 2; i++)
		th[i] = g_thread_new("signer", signer_run, &w[i]);
	/* Let both get going, then pull the key while they sign. */
	while (g_atomic_int_get((gint *)&w[0].ok) < 20 || g_atomic_int_get((gint *)&w[1].ok) < 20)
		g_usleep(1000);
	if (g_unlink(plugged) != 0) {
		g_printerr("unplug: %s\n", g_strerror(errno));
		return 1;
	}
	for (guint i = 0; i < 2; i++)
		g_thread_join(th[i]);
	for (guint i = 0; i < 2; i++) {
		if (w[i].unexpected != CKR_OK) {
			g_printerr("signer %u: 0x%lx while the key was pulled\n", i,
				   (unsigned long)w[i].unexpected);
			return 1;
		}
		if (w[i].removed == 0) {
			g_printerr("signer %u never saw the key removed\n", i);
			return 1;
		}
	}
	/* A re-plugged key is a fresh key: old sessions are gone, a new login signs. */
	if (!g_file_set_contents(plugged, "replugged\n", -1, NULL))
		return 1;
	rv = sign_once(w[0].session, key);
	if (rv == CKR_OK) {
		g_printerr("a session of the pulled key still signs\n");
		return 1;
	}
	CHECK(open_logged_in(pin, &s0), "login after re-plug");
	CHECK(make_key(s0, CK_FALSE, &key), "C_GenerateKeyPair after re-plug");
	CHECK(sign_once(s0, key), "signing after re-plug");
	g_print("signed %u and %u times, then both saw the key removed\n", w[0].ok, w[1].ok);
	return 0;
}

/* --- CKU_CONTEXT_SPECIFIC ------------------------------------------------------------ */

static int
context_specific(const char *pin)
{
	CK_SESSION_HANDLE s, s2;
	CK_OBJECT_HANDLE key;
	CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
	CK_RV rv;

	CHECK(open_logged_in(pin, &s), "login");
	CHECK(make_key(s, CK_TRUE, &key), "C_GenerateKeyPair");
	if (tries_flags() != 0) {
		g_printerr("the PIN counter is not full at the start\n");
		return 1;
	}
	CHECK(f->C_SignInit(s, &mech, key), "C_SignInit");
	rv = f->C_Login(s, CKU_CONTEXT_SPECIFIC, (CK_UTF8CHAR_PTR) "000000", 6);
	if (rv != CKR_PIN_INCORRECT) {
		g_printerr("a wrong context-specific PIN: 0x%lx, not CKR_PIN_INCORRECT\n",
			   (unsigned long)rv);
		return 1;
	}
	if ((tries_flags() & CKF_USER_PIN_COUNT_LOW) == 0) {
		g_printerr("a wrong context-specific PIN was not counted\n");
		return 1;
	}
	/* The right one restores the tries (on another session: the first one's operation
	 * may still wait for its PIN; the key, a session object, lives until both close). */
	CHECK(open_logged_in(pin, &s2), "login");
	CHECK(f->C_SignInit(s2, &mech, key), "C_SignInit");
	CHECK(f->C_Login(s2, CKU_CONTEXT_SPECIFIC, (CK_UTF8CHAR_PTR)pin, strlen(pin)),
	      "C_Login(CKU_CONTEXT_SPECIFIC)");
	if (tries_flags() != 0) {
		g_printerr("the right context-specific PIN did not restore the tries\n");
		return 1;
	}
	g_print("a wrong context-specific PIN is counted\n");
	return 0;
}

/* --- a failed C_Sign ends the operation ---------------------------------------------- */

static int
sign_fault(const char *pin)
{
	g_autofree char *fault = g_build_filename(token_dir, "fault", NULL);
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE key;
	CK_RV rv;

	CHECK(open_logged_in(pin, &s), "login");
	CHECK(make_key(s, CK_FALSE, &key), "C_GenerateKeyPair");
	if (!g_file_set_contents(fault, "C_Sign 1 fail 30000\n", -1, NULL))
		return 1;
	rv = sign_once(s, key);
	if (rv != CKR_DEVICE_ERROR) {
		g_printerr("the faulted C_Sign answered 0x%lx\n", (unsigned long)rv);
		return 1;
	}
	CHECK(sign_once(s, key), "signing after a failed C_Sign");
	g_print("a failed C_Sign ended the operation\n");
	return 0;
}

int
main(int argc, char **argv)
{
	CK_C_GetFunctionList get;
	CK_SLOT_ID slots[16];
	CK_ULONG n = G_N_ELEMENTS(slots);
	void *dl;
	int rc;

	if (argc < 4)
		return 2;
	token_dir = argv[2];
	dl = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (dl == NULL) {
		g_printerr("%s\n", dlerror());
		return 1;
	}
	get = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList");
	CHECK(get(&f), "C_GetFunctionList");
	CHECK(f->C_Initialize(NULL), "C_Initialize");
	CHECK(f->C_GetSlotList(CK_TRUE, slots, &n), "C_GetSlotList");
	if (n != 1) {
		g_printerr("%lu keys inserted, one expected\n", (unsigned long)n);
		return 1;
	}
	slot = slots[0];
	if (g_str_equal(argv[3], "unplug-while-signing") && argc == 5)
		rc = unplug_while_signing(argv[4]);
	else if (g_str_equal(argv[3], "context-specific") && argc == 5)
		rc = context_specific(argv[4]);
	else if (g_str_equal(argv[3], "sign-fault") && argc == 5)
		rc = sign_fault(argv[4]);
	else
		rc = 2;
	f->C_Finalize(NULL);
	return rc;
}
