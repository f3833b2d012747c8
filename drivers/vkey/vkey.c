/*
 * vkey.c — the virtual UKey: a PKCS#11 module over SoftHSM2 that behaves like the USB keys
 * of the vendors (docs/architecture.md §2, §8).
 *
 * What it adds to SoftHSM2: removable tokens (plug/unplug while the daemon runs), tokens
 * created by another process appearing without a restart, C_WaitForSlotEvent, a user PIN
 * that locks after max_tries wrong tries (COUNT_LOW / FINAL_TRY / LOCKED flags, and
 * CKR_PIN_LOCKED even for the right PIN until the SO resets it with C_InitPIN; a wrong PIN
 * given for CKU_CONTEXT_SPECIFIC counts as well), an SO PIN that locks the same way after
 * so_max_tries (then nothing can reset the user PIN: the key must be replaced), the
 * vendor's PIN length (ulMinPinLen / ulMaxPinLen, enforced by C_InitPIN and C_SetPIN), the
 * manufacturer / model / serial of a vendor's keys, and fault injection.
 *
 * Design — one SoftHSM2 instance per virtual token, and why. SoftHSM2 2.6.1 fixes its slot
 * list at C_Initialize, sees tokens made by another process only after C_Finalize +
 * C_Initialize (which drops every other token's sessions and logins) and keeps global
 * state. Hiding one shared instance's slots would make "a new key is plugged in" log every
 * other key out. Instead each token directory carries its own copy of libsofthsm2.so; a
 * copy at another path (a different file, not a hard link: the loader matches inodes) is
 * an independent instance with its own configuration, so a token is loaded when first
 * used and never disturbs the others; a pulled token's instance is finalised and unmapped
 * (plugged again, it is loaded afresh). dlmopen is not used: ASan does not support it and
 * glibc allows 16 namespaces. The cost is a file copy per token (a few MB) — fine for a
 * test and demo device.
 *
 * SoftHSM2 reads its configuration path from SOFTHSM2_CONF during C_Initialize only. We
 * set it under env_lock just before an instance initialises. The variable is added to the
 * environment once, in C_Initialize; later setenv calls only replace its value, which
 * glibc does without reallocating the environment array, so concurrent getenv calls of
 * other threads stay safe.
 *
 * Handles: our session handle = (slot + 1) << 24 | the instance's handle, so a session
 * names its token without a table; object handles pass through (they are scoped to the
 * instance). Slots are the numbers token.conf assigns at creation and never change.
 *
 * Presence: a token is present while <dir>/plugged exists. Each call that reaches a token
 * compares the plugged file's identity with the last one seen; when it went away or was
 * replaced, every session of the instance is closed (a re-plugged key is a fresh key, as
 * with real hardware), and calls answer CKR_DEVICE_REMOVED / CKR_TOKEN_NOT_PRESENT.
 * Every call into the instance holds the token's `calls` lock as a reader; closing the
 * sessions takes it as the writer, so a removal waits for the calls already inside
 * SoftHSM2 (which would otherwise use a freed session) and the calls that start after it
 * see the key gone.
 *
 * Faults (<dir>/fault, see vkey-store.h): the Nth call of the named function on that
 * token fails (CKR_DEVICE_ERROR), hangs (until the key is unplugged or the timeout passes
 * — never forever), or pulls the key (CKR_DEVICE_REMOVED). A fault fires once. A failed
 * call that ends an operation (C_Sign, C_SignUpdate, C_Verify, C_Digest, …) ends it at the
 * instance as well, as PKCS#11 says, so the next *Init works.
 */
#define G_LOG_DOMAIN "vkey"

#include <dlfcn.h>
#include <errno.h>
#include <glib/gstdio.h>
#include <p11-kit/pkcs11.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vkey-store.h"

#define SESSION_SHIFT 24
#define SESSION_MASK ((1UL << SESSION_SHIFT) - 1)
#define VKEY_EXPORT __attribute__((visibility("default")))

typedef struct {
	VkeyTokenConf *conf;
	GMutex lock;	/* instance loading, plugged identity, PIN counters, faults */
	GRWLock calls;	/* readers: calls inside the instance; writer: closing its sessions */
	gboolean stale; /* pulled or re-plugged: the sessions are to be closed */
	void *dl;
	CK_FUNCTION_LIST_PTR f;
	CK_SLOT_ID inner_slot;
	gboolean loaded;
	gboolean present; /* as last seen */
	dev_t plug_dev;
	ino_t plug_ino;
	struct timespec plug_mtime;
	struct timespec fault_mtime; /* the fault file whose calls we count */
	guint fault_calls;
	gboolean reported_present; /* for C_WaitForSlotEvent */
} Token;

static GMutex global_lock; /* tokens, root, initialized */
static GMutex env_lock;
static GPtrArray *tokens; /* Token*, stable pointers until C_Finalize */
static char *root;
static gboolean initialized;
static gint finalizing;

static CK_FUNCTION_LIST function_list;

/* --- the store ---------------------------------------------------------------------- */

static void
token_free(Token *t)
{
	if (t->loaded && t->f != NULL)
		t->f->C_Finalize(NULL);
	/* The instance stays mapped: unloading a C++ library with live static state at
	 * process exit buys nothing and has crashed SoftHSM2 builds before. */
	vkey_token_conf_free(t->conf);
	g_mutex_clear(&t->lock);
	g_rw_lock_clear(&t->calls);
	g_free(t);
}

/* Pick up tokens created since the last look (a new token directory changes the root's
 * mtime; nothing else is read while it stays the same). Call with global_lock held. */
static struct timespec root_mtime;

static void
rescan_locked(void)
{
	g_autoptr(GPtrArray) list = NULL;
	struct stat st;

	if (stat(root, &st) != 0)
		memset(&st, 0, sizeof(st));
	else if (st.st_mtim.tv_sec == root_mtime.tv_sec && st.st_mtim.tv_nsec == root_mtime.tv_nsec)
		return;
	root_mtime = st.st_mtim;
	list = vkey_store_list(root);
	{
		/* A token still being created (no token.conf yet): look again next time. */
		g_autoptr(GDir) d = g_dir_open(root, 0, NULL);
		guint entries = 0;
		while (d != NULL && g_dir_read_name(d) != NULL)
			entries++;
		if (entries != list->len)
			root_mtime = (struct timespec){0, 0};
	}
	for (guint i = 0; i < list->len; i++) {
		VkeyTokenConf *conf = g_ptr_array_index(list, i);
		gboolean known = FALSE;

		for (guint j = 0; j < tokens->len && !known; j++) {
			Token *t = g_ptr_array_index(tokens, j);
			known = t->conf->slot == conf->slot;
		}
		if (known)
			continue;
		Token *t = g_new0(Token, 1);
		g_mutex_init(&t->lock);
		g_rw_lock_init(&t->calls);
		t->conf = g_ptr_array_steal_index(list, i);
		i--;
		g_ptr_array_add(tokens, t);
	}
}

static Token *
find_token(CK_SLOT_ID slot)
{
	Token *found = NULL;

	g_mutex_lock(&global_lock);
	if (initialized) {
		for (guint pass = 0; pass < 2 && found == NULL; pass++) {
			if (pass == 1)
				rescan_locked();
			for (guint i = 0; i < tokens->len && found == NULL; i++) {
				Token *t = g_ptr_array_index(tokens, i);
				if (t->conf->slot == slot)
					found = t;
			}
		}
	}
	g_mutex_unlock(&global_lock);
	return found;
}

/* --- one token's SoftHSM2 instance -------------------------------------------------- */

static CK_RV
load_instance_locked(Token *t)
{
	g_autofree char *lib = g_build_filename(t->conf->dir, "libsofthsm2.so", NULL);
	g_autofree char *cfg = g_build_filename(t->conf->dir, "softhsm2.conf", NULL);
	CK_C_GetFunctionList get = NULL;
	CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
	CK_SLOT_ID slots[8];
	CK_ULONG n = G_N_ELEMENTS(slots);
	CK_RV rv;

	if (t->loaded)
		return CKR_OK;
	t->dl = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	if (t->dl == NULL) {
		g_warning("%s: %s", lib, dlerror());
		return CKR_DEVICE_ERROR;
	}
	get = (CK_C_GetFunctionList)dlsym(t->dl, "C_GetFunctionList");
	if (get == NULL || get(&t->f) != CKR_OK) {
		dlclose(t->dl);
		t->dl = NULL;
		return CKR_DEVICE_ERROR;
	}
	g_mutex_lock(&env_lock);
	setenv("SOFTHSM2_CONF", cfg, 1);
	rv = t->f->C_Initialize(&args);
	g_mutex_unlock(&env_lock);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		g_warning("%s: C_Initialize: 0x%lx", lib, (unsigned long)rv);
		return CKR_DEVICE_ERROR;
	}
	rv = t->f->C_GetSlotList(CK_TRUE, slots, &n);
	if (rv != CKR_OK || n == 0)
		return CKR_DEVICE_ERROR;
	/* An initialised token when there is one (SoftHSM2 adds an empty slot beside it). */
	t->inner_slot = slots[0];
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO info;
		if (t->f->C_GetTokenInfo(slots[i], &info) == CKR_OK &&
		    (info.flags & CKF_TOKEN_INITIALIZED) != 0) {
			t->inner_slot = slots[i];
			break;
		}
	}
	t->loaded = TRUE;
	return CKR_OK;
}

/* Is the key inserted? Marks the instance's sessions stale when it was pulled or
 * re-plugged since the last look (enter_slot closes them once no call is inside). Call
 * with t->lock held. */
static gboolean
check_present_locked(Token *t)
{
	g_autofree char *path = g_build_filename(t->conf->dir, "plugged", NULL);
	struct stat st;
	gboolean now = stat(path, &st) == 0;
	gboolean same = now && t->present && st.st_dev == t->plug_dev && st.st_ino == t->plug_ino &&
			st.st_mtim.tv_sec == t->plug_mtime.tv_sec &&
			st.st_mtim.tv_nsec == t->plug_mtime.tv_nsec;

	/* Closed once, when the change is first seen (an absent key has no sessions). */
	if (!same && t->loaded && t->present)
		t->stale = TRUE;
	if (now) {
		t->plug_dev = st.st_dev;
		t->plug_ino = st.st_ino;
		t->plug_mtime = st.st_mtim;
	}
	t->present = now;
	return now;
}

/* --- PIN counters ------------------------------------------------------------------- */

typedef enum { PIN_USER, PIN_SO } PinKind;

static guint
pin_max_tries(Token *t, PinKind kind)
{
	return kind == PIN_SO ? t->conf->so_max_tries : t->conf->max_tries;
}

static guint
tries_left_locked(Token *t, PinKind kind)
{
	g_autofree char *path =
	    g_build_filename(t->conf->dir, kind == PIN_SO ? "so_pin" : "pin", NULL);
	g_autofree char *text = NULL;
	guint64 v;

	if (!g_file_get_contents(path, &text, NULL, NULL) ||
	    !g_ascii_string_to_unsigned(g_strstrip(text), 10, 0, pin_max_tries(t, kind), &v, NULL))
		return pin_max_tries(t, kind);
	return (guint)v;
}

static void
set_tries_left_locked(Token *t, PinKind kind, guint tries)
{
	g_autofree char *path =
	    g_build_filename(t->conf->dir, kind == PIN_SO ? "so_pin" : "pin", NULL);
	g_autofree char *text = g_strdup_printf("%u\n", tries);
	g_autoptr(GError) error = NULL;

	if (tries_left_locked(t, kind) == tries)
		return;
	if (!g_file_set_contents(path, text, -1, &error))
		g_warning("%s: %s", path, error->message);
}

/* A PIN check through the instance, counted: a locked PIN is refused without asking it; a
 * wrong one uses a try (the last one locks it); the right one restores the tries. Holds
 * t->lock across @check so two threads cannot both spend the last try. */
typedef CK_RV (*PinCheck)(Token *t, gpointer data);

static CK_RV
counted_pin_check(Token *t, PinKind kind, PinCheck check, gpointer data)
{
	guint tries;
	CK_RV rv;

	g_mutex_lock(&t->lock);
	tries = tries_left_locked(t, kind);
	if (tries == 0) {
		g_mutex_unlock(&t->lock);
		return CKR_PIN_LOCKED;
	}
	rv = check(t, data);
	if (rv == CKR_PIN_INCORRECT) {
		set_tries_left_locked(t, kind, tries - 1);
		if (tries - 1 == 0)
			rv = CKR_PIN_LOCKED;
	} else if (rv == CKR_OK) {
		set_tries_left_locked(t, kind, pin_max_tries(t, kind));
	}
	g_mutex_unlock(&t->lock);
	return rv;
}

static gboolean
pin_length_ok(Token *t, CK_ULONG len)
{
	return len >= t->conf->min_pin_length && len <= t->conf->max_pin_length;
}

/* --- faults ------------------------------------------------------------------------- */

/* Does the fault file name this call? Returns the CK_RV to answer with, or CKR_OK to go
 * on. May wait (mode hang) with t->lock released. Call with t->lock held. */
static CK_RV
apply_fault_locked(Token *t, const char *function)
{
	g_autofree char *path = g_build_filename(t->conf->dir, "fault", NULL);
	g_autofree char *text = NULL;
	g_auto(GStrv) parts = NULL;
	struct stat st;
	guint64 after = 0, timeout_ms = 30000;
	gint64 deadline;

	if (stat(path, &st) != 0)
		return CKR_OK;
	if (st.st_mtim.tv_sec != t->fault_mtime.tv_sec ||
	    st.st_mtim.tv_nsec != t->fault_mtime.tv_nsec) {
		t->fault_mtime = st.st_mtim;
		t->fault_calls = 0;
	}
	if (!g_file_get_contents(path, &text, NULL, NULL))
		return CKR_OK;
	parts = g_strsplit(g_strstrip(text), " ", 0);
	if (g_strv_length(parts) < 3 || g_strcmp0(parts[0], function) != 0 ||
	    !g_ascii_string_to_unsigned(parts[1], 10, 1, G_MAXUINT, &after, NULL))
		return CKR_OK;
	if (parts[3] != NULL)
		g_ascii_string_to_unsigned(parts[3], 10, 1, 3600000, &timeout_ms, NULL);
	if (++t->fault_calls < after)
		return CKR_OK;
	g_unlink(path);
	g_message("slot %u: fault on %s call %u: %s", t->conf->slot, function, t->fault_calls,
		  parts[2]);
	if (g_strcmp0(parts[2], "fail") == 0)
		return CKR_DEVICE_ERROR;
	if (g_strcmp0(parts[2], "unplug") == 0) {
		vkey_unplug(t->conf->dir, NULL);
		check_present_locked(t);
		return CKR_DEVICE_REMOVED;
	}
	/* hang: bounded, released by an unplug or the timeout. */
	deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
	g_mutex_unlock(&t->lock);
	while (g_get_monotonic_time() < deadline && vkey_is_plugged(t->conf->dir) &&
	       !g_atomic_int_get(&finalizing))
		g_usleep(20000);
	g_mutex_lock(&t->lock);
	if (!check_present_locked(t))
		return CKR_DEVICE_REMOVED;
	return CKR_DEVICE_ERROR;
}

/* A pulled key's instance goes away whole: finalised and unmapped, so that a desk that
 * has seen hundreds of keys holds only the plugged ones' (about 0.7 MB each); plugged again,
 * the key is loaded afresh from its directory. Call with t->calls held as the writer and
 * t->lock. */
static void
unload_instance_locked(Token *t)
{
	t->f->C_Finalize(NULL);
	dlclose(t->dl);
	t->dl = NULL;
	t->f = NULL;
	t->loaded = FALSE;
}

/* Close the sessions of a pulled or re-plugged key once no call is inside the instance;
 * a pulled key's instance is unloaded. Call with nothing held. */
static void
close_stale_sessions(Token *t)
{
	g_rw_lock_writer_lock(&t->calls);
	g_mutex_lock(&t->lock);
	if (t->stale && t->loaded && t->present)
		t->f->C_CloseAllSessions(t->inner_slot);
	else if (t->stale && t->loaded)
		unload_instance_locked(t);
	t->stale = FALSE;
	g_mutex_unlock(&t->lock);
	g_rw_lock_writer_unlock(&t->calls);
}

/* A key seen pulled in the slot list (nobody may call its slot again) is unloaded now,
 * not at its next call. Call with nothing held. */
static void
unload_if_pulled(Token *t)
{
	gboolean stale;

	g_rw_lock_reader_lock(&t->calls);
	g_mutex_lock(&t->lock);
	check_present_locked(t);
	stale = t->stale;
	g_mutex_unlock(&t->lock);
	g_rw_lock_reader_unlock(&t->calls);
	if (stale)
		close_stale_sessions(t);
}

static void
leave(Token *t)
{
	g_rw_lock_reader_unlock(&t->calls);
}

/* Enter a call on the token of @slot: present, loaded, fault checked. On CKR_OK the call
 * holds t->calls as a reader (release it with leave()) and t->lock is NOT held (SoftHSM2
 * does its own locking); *out is the token. When a fault fired and @faulted is not NULL,
 * *faulted is set and the reader lock is held as well, so the caller can end the
 * operation the failed call would have ended. */
static CK_RV
enter_slot(
    CK_SLOT_ID slot, const char *function, gboolean need_present, Token **out, gboolean *faulted)
{
	Token *t;
	CK_RV rv = CKR_OK;
	gboolean present;

	if (faulted != NULL)
		*faulted = FALSE;
	if (!g_atomic_int_get(&initialized))
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	t = find_token(slot);
	if (t == NULL)
		return CKR_SLOT_ID_INVALID;
	*out = t;
	for (;;) {
		g_rw_lock_reader_lock(&t->calls);
		g_mutex_lock(&t->lock);
		present = check_present_locked(t);
		if (!t->stale)
			break;
		g_mutex_unlock(&t->lock);
		g_rw_lock_reader_unlock(&t->calls);
		close_stale_sessions(t);
	}
	if (!present) {
		rv = need_present ? CKR_TOKEN_NOT_PRESENT : CKR_OK;
	} else {
		rv = load_instance_locked(t);
		if (rv == CKR_OK) {
			rv = apply_fault_locked(t, function);
			if (rv != CKR_OK && faulted != NULL && !t->stale) {
				*faulted = TRUE;
				g_mutex_unlock(&t->lock);
				return rv;
			}
		}
	}
	g_mutex_unlock(&t->lock);
	if (rv != CKR_OK)
		g_rw_lock_reader_unlock(&t->calls);
	return rv;
}

static CK_RV
enter_session_faulted(CK_SESSION_HANDLE h,
		      const char *function,
		      Token **out,
		      CK_SESSION_HANDLE *inner,
		      gboolean *faulted)
{
	CK_RV rv;

	if ((h >> SESSION_SHIFT) == 0)
		return CKR_SESSION_HANDLE_INVALID;
	rv = enter_slot((h >> SESSION_SHIFT) - 1, function, TRUE, out, faulted);
	if (rv == CKR_TOKEN_NOT_PRESENT)
		return CKR_DEVICE_REMOVED;
	if (rv == CKR_SLOT_ID_INVALID)
		return CKR_SESSION_HANDLE_INVALID;
	*inner = h & SESSION_MASK;
	return rv;
}

static CK_RV
enter_session(CK_SESSION_HANDLE h, const char *function, Token **out, CK_SESSION_HANDLE *inner)
{
	return enter_session_faulted(h, function, out, inner, NULL);
}

/* --- general ------------------------------------------------------------------------ */

/* "dir=PATH" in the initialisation string (pReserved), else $CERTSEAL_VKEY_DIR. */
static char *
root_from_args(CK_VOID_PTR init_args)
{
	CK_C_INITIALIZE_ARGS *args = init_args;
	const char *env = g_getenv("CERTSEAL_VKEY_DIR");

	if (args != NULL && args->pReserved != NULL) {
		g_auto(GStrv) parts = g_strsplit((const char *)args->pReserved, ";", 0);
		for (guint i = 0; parts[i] != NULL; i++) {
			if (g_str_has_prefix(parts[i], "dir="))
				return g_canonicalize_filename(parts[i] + 4, NULL);
		}
	}
	return env != NULL ? g_canonicalize_filename(env, NULL) : NULL;
}

static CK_RV
vkey_initialize(CK_VOID_PTR init_args)
{
	g_autofree char *dir = NULL;

	g_mutex_lock(&global_lock);
	if (initialized) {
		g_mutex_unlock(&global_lock);
		return CKR_CRYPTOKI_ALREADY_INITIALIZED;
	}
	dir = root_from_args(init_args);
	if (dir == NULL) {
		g_mutex_unlock(&global_lock);
		return CKR_ARGUMENTS_BAD;
	}
	g_mutex_lock(&env_lock);
	if (g_getenv("SOFTHSM2_CONF") == NULL)
		setenv("SOFTHSM2_CONF", "/dev/null", 1);
	g_mutex_unlock(&env_lock);
	root = g_steal_pointer(&dir);
	g_mkdir_with_parents(root, 0700);
	tokens = g_ptr_array_new_with_free_func((GDestroyNotify)token_free);
	rescan_locked();
	g_atomic_int_set(&finalizing, 0);
	g_atomic_int_set(&initialized, TRUE);
	g_mutex_unlock(&global_lock);
	return CKR_OK;
}

static CK_RV
vkey_finalize(CK_VOID_PTR reserved)
{
	g_mutex_lock(&global_lock);
	if (!initialized) {
		g_mutex_unlock(&global_lock);
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	}
	g_atomic_int_set(&finalizing, 1);
	g_atomic_int_set(&initialized, FALSE);
	g_clear_pointer(&tokens, g_ptr_array_unref);
	g_clear_pointer(&root, g_free);
	root_mtime = (struct timespec){0, 0};
	g_mutex_unlock(&global_lock);
	return CKR_OK;
}

static void
pad(CK_UTF8CHAR *field, size_t size, const char *value)
{
	size_t n = value != NULL ? strlen(value) : 0;

	memset(field, ' ', size);
	memcpy(field, value, MIN(n, size));
}

static CK_RV
vkey_get_info(CK_INFO_PTR info)
{
	if (info == NULL)
		return CKR_ARGUMENTS_BAD;
	memset(info, 0, sizeof(*info));
	info->cryptokiVersion.major = 2;
	info->cryptokiVersion.minor = 40;
	pad(info->manufacturerID, sizeof(info->manufacturerID), "certseal");
	pad(info->libraryDescription, sizeof(info->libraryDescription), "certseal virtual UKey");
	info->libraryVersion.major = 1;
	return CKR_OK;
}

static CK_RV
vkey_get_function_list(CK_FUNCTION_LIST_PTR_PTR list)
{
	if (list == NULL)
		return CKR_ARGUMENTS_BAD;
	*list = &function_list;
	return CKR_OK;
}

static CK_RV
vkey_get_slot_list(CK_BBOOL token_present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
	g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(CK_SLOT_ID));
	g_autoptr(GPtrArray) pulled = g_ptr_array_new();
	CK_RV rv = CKR_OK;

	if (count == NULL)
		return CKR_ARGUMENTS_BAD;
	g_mutex_lock(&global_lock);
	if (!initialized) {
		g_mutex_unlock(&global_lock);
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	}
	rescan_locked();
	for (guint i = 0; i < tokens->len; i++) {
		Token *t = g_ptr_array_index(tokens, i);
		CK_SLOT_ID id = t->conf->slot;
		gboolean plugged = vkey_is_plugged(t->conf->dir);
		if (!plugged && g_atomic_int_get(&t->loaded))
			g_ptr_array_add(pulled, t);
		if (token_present && !plugged)
			continue;
		g_array_append_val(ids, id);
	}
	g_mutex_unlock(&global_lock);
	for (guint i = 0; i < pulled->len; i++)
		unload_if_pulled(g_ptr_array_index(pulled, i));
	if (list != NULL && *count < ids->len)
		rv = CKR_BUFFER_TOO_SMALL;
	else if (list != NULL && ids->len > 0)
		memcpy(list, ids->data, ids->len * sizeof(CK_SLOT_ID));
	*count = ids->len;
	return rv;
}

static CK_RV
vkey_get_slot_info(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info)
{
	Token *t = NULL;
	g_autofree char *desc = NULL;
	CK_RV rv = enter_slot(slot, "C_GetSlotInfo", FALSE, &t, NULL);

	if (rv != CKR_OK)
		return rv;
	leave(t);
	if (info == NULL)
		return CKR_ARGUMENTS_BAD;
	memset(info, 0, sizeof(*info));
	desc = g_strdup_printf("certseal vkey slot %u", t->conf->slot);
	pad(info->slotDescription, sizeof(info->slotDescription), desc);
	pad(info->manufacturerID, sizeof(info->manufacturerID), "certseal");
	info->flags = CKF_REMOVABLE_DEVICE | CKF_HW_SLOT;
	if (vkey_is_plugged(t->conf->dir))
		info->flags |= CKF_TOKEN_PRESENT;
	return CKR_OK;
}

/* The COUNT_LOW / FINAL_TRY / LOCKED flags of one PIN from its counter. */
static CK_FLAGS
pin_flags_locked(Token *t, PinKind kind, CK_FLAGS low, CK_FLAGS final, CK_FLAGS locked)
{
	guint tries = tries_left_locked(t, kind);
	CK_FLAGS flags = 0;

	if (tries < pin_max_tries(t, kind))
		flags |= low;
	if (tries == 1)
		flags |= final;
	if (tries == 0)
		flags |= locked;
	return flags;
}

static CK_RV
vkey_get_token_info(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
	Token *t = NULL;
	CK_RV rv = enter_slot(slot, "C_GetTokenInfo", TRUE, &t, NULL);

	if (rv != CKR_OK)
		return rv;
	if (info == NULL) {
		leave(t);
		return CKR_ARGUMENTS_BAD;
	}
	rv = t->f->C_GetTokenInfo(t->inner_slot, info);
	leave(t);
	if (rv != CKR_OK)
		return rv;
	pad(info->manufacturerID, sizeof(info->manufacturerID), t->conf->manufacturer);
	pad(info->model, sizeof(info->model), t->conf->model);
	pad(info->serialNumber, sizeof(info->serialNumber), t->conf->serial);
	info->ulMinPinLen = t->conf->min_pin_length;
	info->ulMaxPinLen = t->conf->max_pin_length;
	info->flags &=
	    ~(CK_FLAGS)(CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED |
			CKF_USER_PIN_TO_BE_CHANGED | CKF_SO_PIN_COUNT_LOW | CKF_SO_PIN_FINAL_TRY |
			CKF_SO_PIN_LOCKED | CKF_SO_PIN_TO_BE_CHANGED);
	g_mutex_lock(&t->lock);
	info->flags |= pin_flags_locked(t, PIN_USER, CKF_USER_PIN_COUNT_LOW, CKF_USER_PIN_FINAL_TRY,
					CKF_USER_PIN_LOCKED);
	info->flags |= pin_flags_locked(t, PIN_SO, CKF_SO_PIN_COUNT_LOW, CKF_SO_PIN_FINAL_TRY,
					CKF_SO_PIN_LOCKED);
	g_mutex_unlock(&t->lock);
	return CKR_OK;
}

static CK_RV
vkey_wait_for_slot_event(CK_FLAGS flags, CK_SLOT_ID_PTR slot, CK_VOID_PTR reserved)
{
	if (slot == NULL)
		return CKR_ARGUMENTS_BAD;
	for (;;) {
		if (!g_atomic_int_get(&initialized) || g_atomic_int_get(&finalizing))
			return CKR_CRYPTOKI_NOT_INITIALIZED;
		g_mutex_lock(&global_lock);
		if (initialized) {
			rescan_locked();
			for (guint i = 0; i < tokens->len; i++) {
				Token *t = g_ptr_array_index(tokens, i);
				gboolean now = vkey_is_plugged(t->conf->dir);
				if (now != t->reported_present) {
					t->reported_present = now;
					*slot = t->conf->slot;
					g_mutex_unlock(&global_lock);
					return CKR_OK;
				}
			}
		}
		g_mutex_unlock(&global_lock);
		if (flags & CKF_DONT_BLOCK)
			return CKR_NO_EVENT;
		g_usleep(100000);
	}
}

static CK_RV
vkey_get_mechanism_list(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count)
{
	Token *t = NULL;
	CK_RV rv = enter_slot(slot, "C_GetMechanismList", TRUE, &t, NULL);

	if (rv != CKR_OK)
		return rv;
	rv = t->f->C_GetMechanismList(t->inner_slot, list, count);
	leave(t);
	return rv;
}

static CK_RV
vkey_get_mechanism_info(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info)
{
	Token *t = NULL;
	CK_RV rv = enter_slot(slot, "C_GetMechanismInfo", TRUE, &t, NULL);

	if (rv != CKR_OK)
		return rv;
	rv = t->f->C_GetMechanismInfo(t->inner_slot, type, info);
	leave(t);
	return rv;
}

typedef struct {
	CK_SESSION_HANDLE inner;
	CK_USER_TYPE user;
	CK_UTF8CHAR_PTR pin;
	CK_ULONG len;
	CK_UTF8CHAR_PTR new_pin;
	CK_ULONG new_len;
	CK_UTF8CHAR_PTR label;
} PinCall;

static CK_RV
init_token_check(Token *t, gpointer data)
{
	PinCall *c = data;

	return t->f->C_InitToken(t->inner_slot, c->pin, c->len, c->label);
}

static CK_RV
vkey_init_token(CK_SLOT_ID slot, CK_UTF8CHAR_PTR so_pin, CK_ULONG len, CK_UTF8CHAR_PTR label)
{
	Token *t = NULL;
	PinCall c = {.pin = so_pin, .len = len, .label = label};
	CK_RV rv = enter_slot(slot, "C_InitToken", TRUE, &t, NULL);

	if (rv != CKR_OK)
		return rv;
	if (!pin_length_ok(t, len)) {
		leave(t);
		return CKR_PIN_LEN_RANGE;
	}
	/* Re-initialising a token asks its SO PIN: counted, and refused once that is locked. */
	rv = counted_pin_check(t, PIN_SO, init_token_check, &c);
	if (rv == CKR_OK) {
		g_mutex_lock(&t->lock);
		set_tries_left_locked(t, PIN_USER, t->conf->max_tries);
		g_mutex_unlock(&t->lock);
	}
	leave(t);
	return rv;
}

/* --- sessions ----------------------------------------------------------------------- */

static CK_RV
vkey_open_session(CK_SLOT_ID slot,
		  CK_FLAGS flags,
		  CK_VOID_PTR app,
		  CK_NOTIFY notify,
		  CK_SESSION_HANDLE_PTR session)
{
	Token *t = NULL;
	CK_SESSION_HANDLE inner = 0;
	CK_RV rv = enter_slot(slot, "C_OpenSession", TRUE, &t, NULL);

	if (rv != CKR_OK)
		return rv;
	if (session == NULL) {
		leave(t);
		return CKR_ARGUMENTS_BAD;
	}
	rv = t->f->C_OpenSession(t->inner_slot, flags, NULL, NULL, &inner);
	if (rv == CKR_OK && inner > SESSION_MASK) {
		t->f->C_CloseSession(inner);
		rv = CKR_SESSION_COUNT;
	}
	leave(t);
	if (rv == CKR_OK)
		*session = ((CK_SESSION_HANDLE)(t->conf->slot + 1) << SESSION_SHIFT) | inner;
	return rv;
}

static CK_RV
vkey_close_all_sessions(CK_SLOT_ID slot)
{
	Token *t = NULL;
	CK_RV rv = enter_slot(slot, "C_CloseAllSessions", FALSE, &t, NULL);

	if (rv != CKR_OK)
		return rv;
	leave(t);
	/* As a removal: wait for the calls inside the instance, then close. */
	g_rw_lock_writer_lock(&t->calls);
	if (t->loaded)
		rv = t->f->C_CloseAllSessions(t->inner_slot);
	g_rw_lock_writer_unlock(&t->calls);
	return rv;
}

static CK_RV
vkey_get_session_info(CK_SESSION_HANDLE h, CK_SESSION_INFO_PTR info)
{
	Token *t = NULL;
	CK_SESSION_HANDLE inner = 0;
	CK_RV rv = enter_session(h, "C_GetSessionInfo", &t, &inner);

	if (rv != CKR_OK)
		return rv;
	rv = t->f->C_GetSessionInfo(inner, info);
	leave(t);
	if (rv == CKR_OK)
		info->slotID = t->conf->slot;
	return rv;
}

static CK_RV
login_check(Token *t, gpointer data)
{
	PinCall *c = data;

	return t->f->C_Login(c->inner, c->user, c->pin, c->len);
}

static CK_RV
vkey_login(CK_SESSION_HANDLE h, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
	Token *t = NULL;
	PinCall c = {.user = user, .pin = pin, .len = len};
	CK_RV rv = enter_session(h, "C_Login", &t, &c.inner);

	if (rv != CKR_OK)
		return rv;
	/* CKU_CONTEXT_SPECIFIC asks the user PIN again: a wrong one counts as at CKU_USER. */
	if (user == CKU_USER || user == CKU_CONTEXT_SPECIFIC)
		rv = counted_pin_check(t, PIN_USER, login_check, &c);
	else if (user == CKU_SO)
		rv = counted_pin_check(t, PIN_SO, login_check, &c);
	else
		rv = login_check(t, &c);
	leave(t);
	return rv;
}

static CK_RV
set_pin_check(Token *t, gpointer data)
{
	PinCall *c = data;

	return t->f->C_SetPIN(c->inner, c->pin, c->len, c->new_pin, c->new_len);
}

static CK_RV
vkey_set_pin(CK_SESSION_HANDLE h,
	     CK_UTF8CHAR_PTR old_pin,
	     CK_ULONG old_len,
	     CK_UTF8CHAR_PTR new_pin,
	     CK_ULONG new_len)
{
	Token *t = NULL;
	PinCall c = {.pin = old_pin, .len = old_len, .new_pin = new_pin, .new_len = new_len};
	CK_SESSION_INFO info;
	CK_RV rv = enter_session(h, "C_SetPIN", &t, &c.inner);

	if (rv != CKR_OK)
		return rv;
	rv = t->f->C_GetSessionInfo(c.inner, &info);
	if (rv == CKR_OK && !pin_length_ok(t, new_len))
		rv = CKR_PIN_LEN_RANGE;
	if (rv == CKR_OK)
		rv = counted_pin_check(t, info.state == CKS_RW_SO_FUNCTIONS ? PIN_SO : PIN_USER,
				       set_pin_check, &c);
	leave(t);
	return rv;
}

static CK_RV
vkey_init_pin(CK_SESSION_HANDLE h, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
	Token *t = NULL;
	CK_SESSION_HANDLE inner = 0;
	CK_RV rv = enter_session(h, "C_InitPIN", &t, &inner);

	if (rv != CKR_OK)
		return rv;
	rv = pin_length_ok(t, len) ? t->f->C_InitPIN(inner, pin, len) : CKR_PIN_LEN_RANGE;
	if (rv == CKR_OK) {
		g_mutex_lock(&t->lock);
		set_tries_left_locked(t, PIN_USER, t->conf->max_tries);
		g_mutex_unlock(&t->lock);
	}
	leave(t);
	return rv;
}

/* Calls that only need their session translated. */
#define FORWARD(name, field, params, args)                                                         \
	static CK_RV name params                                                                   \
	{                                                                                          \
		Token *t = NULL;                                                                   \
		CK_SESSION_HANDLE inner = 0;                                                       \
		CK_RV rv = enter_session(h, "C_" #field, &t, &inner);                              \
		if (rv != CKR_OK)                                                                  \
			return rv;                                                                 \
		rv = t->f->C_##field args;                                                         \
		leave(t);                                                                          \
		return rv;                                                                         \
	}

/* Calls whose failure ends the active operation of kind @op (PKCS#11 §5.2: every failed
 * call of an operation but a size query or a too small buffer ends it): when a fault
 * makes one fail, end the operation at the instance too. */
typedef enum { OP_SIGN, OP_VERIFY, OP_DIGEST, OP_ENCRYPT, OP_DECRYPT } OpKind;

static void
end_operation(Token *t, CK_SESSION_HANDLE inner, OpKind op)
{
	CK_BYTE scratch[8192];
	CK_ULONG len = sizeof(scratch);
	CK_BYTE none = 0;

	/* Each *Final ends its operation whatever it answers; a single-part operation that
	 * refuses *Final is ended by its one-part call on no data. */
	switch (op) {
	case OP_SIGN:
		if (t->f->C_SignFinal(inner, scratch, &len) != CKR_OK)
			t->f->C_Sign(inner, &none, 0, scratch, &(CK_ULONG){sizeof(scratch)});
		break;
	case OP_VERIFY:
		if (t->f->C_VerifyFinal(inner, scratch, 1) != CKR_OK)
			t->f->C_Verify(inner, &none, 0, scratch, 1);
		break;
	case OP_DIGEST:
		if (t->f->C_DigestFinal(inner, scratch, &len) != CKR_OK)
			t->f->C_Digest(inner, &none, 0, scratch, &(CK_ULONG){sizeof(scratch)});
		break;
	case OP_ENCRYPT:
		if (t->f->C_EncryptFinal(inner, scratch, &len) != CKR_OK)
			t->f->C_Encrypt(inner, &none, 0, scratch, &(CK_ULONG){sizeof(scratch)});
		break;
	case OP_DECRYPT:
		if (t->f->C_DecryptFinal(inner, scratch, &len) != CKR_OK)
			t->f->C_Decrypt(inner, &none, 0, scratch, &(CK_ULONG){sizeof(scratch)});
		break;
	}
}

#define FORWARD_OP(name, field, op, params, args)                                                  \
	static CK_RV name params                                                                   \
	{                                                                                          \
		Token *t = NULL;                                                                   \
		CK_SESSION_HANDLE inner = 0;                                                       \
		gboolean faulted = FALSE;                                                          \
		CK_RV rv = enter_session_faulted(h, "C_" #field, &t, &inner, &faulted);            \
		if (faulted) {                                                                     \
			end_operation(t, inner, op);                                               \
			leave(t);                                                                  \
			return rv;                                                                 \
		}                                                                                  \
		if (rv != CKR_OK)                                                                  \
			return rv;                                                                 \
		rv = t->f->C_##field args;                                                         \
		leave(t);                                                                          \
		return rv;                                                                         \
	}

FORWARD(vkey_close_session, CloseSession, (CK_SESSION_HANDLE h), (inner))
FORWARD(vkey_logout, Logout, (CK_SESSION_HANDLE h), (inner))
FORWARD(vkey_create_object,
	CreateObject,
	(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR a, CK_ULONG n, CK_OBJECT_HANDLE_PTR o),
	(inner, a, n, o))
FORWARD(vkey_copy_object,
	CopyObject,
	(CK_SESSION_HANDLE h,
	 CK_OBJECT_HANDLE o,
	 CK_ATTRIBUTE_PTR a,
	 CK_ULONG n,
	 CK_OBJECT_HANDLE_PTR no),
	(inner, o, a, n, no))
FORWARD(vkey_destroy_object, DestroyObject, (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o), (inner, o))
FORWARD(vkey_get_object_size,
	GetObjectSize,
	(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ULONG_PTR n),
	(inner, o, n))
FORWARD(vkey_get_attribute_value,
	GetAttributeValue,
	(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR a, CK_ULONG n),
	(inner, o, a, n))
FORWARD(vkey_set_attribute_value,
	SetAttributeValue,
	(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR a, CK_ULONG n),
	(inner, o, a, n))
FORWARD(vkey_find_objects_init,
	FindObjectsInit,
	(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR a, CK_ULONG n),
	(inner, a, n))
FORWARD(vkey_find_objects,
	FindObjects,
	(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE_PTR o, CK_ULONG max, CK_ULONG_PTR n),
	(inner, o, max, n))
FORWARD(vkey_find_objects_final, FindObjectsFinal, (CK_SESSION_HANDLE h), (inner))
FORWARD(vkey_sign_init,
	SignInit,
	(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k),
	(inner, m, k))
FORWARD_OP(vkey_sign,
	   Sign,
	   OP_SIGN,
	   (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR s, CK_ULONG_PTR sl),
	   (inner, d, dl, s, sl))
FORWARD_OP(vkey_sign_update,
	   SignUpdate,
	   OP_SIGN,
	   (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dl),
	   (inner, d, dl))
FORWARD_OP(vkey_sign_final,
	   SignFinal,
	   OP_SIGN,
	   (CK_SESSION_HANDLE h, CK_BYTE_PTR s, CK_ULONG_PTR sl),
	   (inner, s, sl))
FORWARD(vkey_verify_init,
	VerifyInit,
	(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k),
	(inner, m, k))
FORWARD_OP(vkey_verify,
	   Verify,
	   OP_VERIFY,
	   (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR s, CK_ULONG sl),
	   (inner, d, dl, s, sl))
FORWARD_OP(vkey_verify_update,
	   VerifyUpdate,
	   OP_VERIFY,
	   (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dl),
	   (inner, d, dl))
FORWARD_OP(vkey_verify_final,
	   VerifyFinal,
	   OP_VERIFY,
	   (CK_SESSION_HANDLE h, CK_BYTE_PTR s, CK_ULONG sl),
	   (inner, s, sl))
FORWARD(vkey_digest_init, DigestInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m), (inner, m))
FORWARD_OP(vkey_digest,
	   Digest,
	   OP_DIGEST,
	   (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR o, CK_ULONG_PTR ol),
	   (inner, d, dl, o, ol))
FORWARD_OP(vkey_digest_update,
	   DigestUpdate,
	   OP_DIGEST,
	   (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dl),
	   (inner, d, dl))
FORWARD_OP(
    vkey_digest_key, DigestKey, OP_DIGEST, (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE k), (inner, k))
FORWARD_OP(vkey_digest_final,
	   DigestFinal,
	   OP_DIGEST,
	   (CK_SESSION_HANDLE h, CK_BYTE_PTR o, CK_ULONG_PTR ol),
	   (inner, o, ol))
FORWARD(vkey_encrypt_init,
	EncryptInit,
	(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k),
	(inner, m, k))
FORWARD_OP(vkey_encrypt,
	   Encrypt,
	   OP_ENCRYPT,
	   (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR o, CK_ULONG_PTR ol),
	   (inner, d, dl, o, ol))
FORWARD_OP(vkey_encrypt_update,
	   EncryptUpdate,
	   OP_ENCRYPT,
	   (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR o, CK_ULONG_PTR ol),
	   (inner, d, dl, o, ol))
FORWARD_OP(vkey_encrypt_final,
	   EncryptFinal,
	   OP_ENCRYPT,
	   (CK_SESSION_HANDLE h, CK_BYTE_PTR o, CK_ULONG_PTR ol),
	   (inner, o, ol))
FORWARD(vkey_decrypt_init,
	DecryptInit,
	(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k),
	(inner, m, k))
FORWARD_OP(vkey_decrypt,
	   Decrypt,
	   OP_DECRYPT,
	   (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR o, CK_ULONG_PTR ol),
	   (inner, d, dl, o, ol))
FORWARD_OP(vkey_decrypt_update,
	   DecryptUpdate,
	   OP_DECRYPT,
	   (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR o, CK_ULONG_PTR ol),
	   (inner, d, dl, o, ol))
FORWARD_OP(vkey_decrypt_final,
	   DecryptFinal,
	   OP_DECRYPT,
	   (CK_SESSION_HANDLE h, CK_BYTE_PTR o, CK_ULONG_PTR ol),
	   (inner, o, ol))
FORWARD(vkey_generate_key,
	GenerateKey,
	(CK_SESSION_HANDLE h,
	 CK_MECHANISM_PTR m,
	 CK_ATTRIBUTE_PTR a,
	 CK_ULONG n,
	 CK_OBJECT_HANDLE_PTR k),
	(inner, m, a, n, k))
FORWARD(vkey_generate_key_pair,
	GenerateKeyPair,
	(CK_SESSION_HANDLE h,
	 CK_MECHANISM_PTR m,
	 CK_ATTRIBUTE_PTR pub,
	 CK_ULONG npub,
	 CK_ATTRIBUTE_PTR priv,
	 CK_ULONG npriv,
	 CK_OBJECT_HANDLE_PTR hpub,
	 CK_OBJECT_HANDLE_PTR hpriv),
	(inner, m, pub, npub, priv, npriv, hpub, hpriv))
FORWARD(vkey_generate_random,
	GenerateRandom,
	(CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG n),
	(inner, d, n))
FORWARD(vkey_seed_random,
	SeedRandom,
	(CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG n),
	(inner, d, n))

static CK_RV
vkey_not_supported(void)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

#define NS(type) ((type)(void (*)(void))vkey_not_supported)

static CK_FUNCTION_LIST function_list = {
    .version = {2, 40},
    .C_Initialize = vkey_initialize,
    .C_Finalize = vkey_finalize,
    .C_GetInfo = vkey_get_info,
    .C_GetFunctionList = vkey_get_function_list,
    .C_GetSlotList = vkey_get_slot_list,
    .C_GetSlotInfo = vkey_get_slot_info,
    .C_GetTokenInfo = vkey_get_token_info,
    .C_GetMechanismList = vkey_get_mechanism_list,
    .C_GetMechanismInfo = vkey_get_mechanism_info,
    .C_InitToken = vkey_init_token,
    .C_InitPIN = vkey_init_pin,
    .C_SetPIN = vkey_set_pin,
    .C_OpenSession = vkey_open_session,
    .C_CloseSession = vkey_close_session,
    .C_CloseAllSessions = vkey_close_all_sessions,
    .C_GetSessionInfo = vkey_get_session_info,
    .C_GetOperationState = NS(CK_C_GetOperationState),
    .C_SetOperationState = NS(CK_C_SetOperationState),
    .C_Login = vkey_login,
    .C_Logout = vkey_logout,
    .C_CreateObject = vkey_create_object,
    .C_CopyObject = vkey_copy_object,
    .C_DestroyObject = vkey_destroy_object,
    .C_GetObjectSize = vkey_get_object_size,
    .C_GetAttributeValue = vkey_get_attribute_value,
    .C_SetAttributeValue = vkey_set_attribute_value,
    .C_FindObjectsInit = vkey_find_objects_init,
    .C_FindObjects = vkey_find_objects,
    .C_FindObjectsFinal = vkey_find_objects_final,
    .C_EncryptInit = vkey_encrypt_init,
    .C_Encrypt = vkey_encrypt,
    .C_EncryptUpdate = vkey_encrypt_update,
    .C_EncryptFinal = vkey_encrypt_final,
    .C_DecryptInit = vkey_decrypt_init,
    .C_Decrypt = vkey_decrypt,
    .C_DecryptUpdate = vkey_decrypt_update,
    .C_DecryptFinal = vkey_decrypt_final,
    .C_DigestInit = vkey_digest_init,
    .C_Digest = vkey_digest,
    .C_DigestUpdate = vkey_digest_update,
    .C_DigestKey = vkey_digest_key,
    .C_DigestFinal = vkey_digest_final,
    .C_SignInit = vkey_sign_init,
    .C_Sign = vkey_sign,
    .C_SignUpdate = vkey_sign_update,
    .C_SignFinal = vkey_sign_final,
    .C_SignRecoverInit = NS(CK_C_SignRecoverInit),
    .C_SignRecover = NS(CK_C_SignRecover),
    .C_VerifyInit = vkey_verify_init,
    .C_Verify = vkey_verify,
    .C_VerifyUpdate = vkey_verify_update,
    .C_VerifyFinal = vkey_verify_final,
    .C_VerifyRecoverInit = NS(CK_C_VerifyRecoverInit),
    .C_VerifyRecover = NS(CK_C_VerifyRecover),
    .C_DigestEncryptUpdate = NS(CK_C_DigestEncryptUpdate),
    .C_DecryptDigestUpdate = NS(CK_C_DecryptDigestUpdate),
    .C_SignEncryptUpdate = NS(CK_C_SignEncryptUpdate),
    .C_DecryptVerifyUpdate = NS(CK_C_DecryptVerifyUpdate),
    .C_GenerateKey = vkey_generate_key,
    .C_GenerateKeyPair = vkey_generate_key_pair,
    .C_WrapKey = NS(CK_C_WrapKey),
    .C_UnwrapKey = NS(CK_C_UnwrapKey),
    .C_DeriveKey = NS(CK_C_DeriveKey),
    .C_SeedRandom = vkey_seed_random,
    .C_GenerateRandom = vkey_generate_random,
    .C_GetFunctionStatus = NS(CK_C_GetFunctionStatus),
    .C_CancelFunction = NS(CK_C_CancelFunction),
    .C_WaitForSlotEvent = vkey_wait_for_slot_event,
};

VKEY_EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list);
CK_RV
C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
	return vkey_get_function_list(list);
}
