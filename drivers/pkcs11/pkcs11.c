/*
 * pkcs11.c — the generic PKCS#11 driver: libp11 plus raw PKCS#11 calls, one vendor profile
 * per context (docs/architecture.md §3.1, §8).
 *
 * What libp11 does and what we do raw. libp11 loads the module and owns its life
 * (PKCS11_CTX_load: dlopen + C_Initialize with the profile's init_args as pReserved;
 * PKCS11_CTX_unload: C_Finalize). Token work goes through the raw CK_FUNCTION_LIST taken
 * from the same dlopen handle (C_GetFunctionList), because libp11 0.4.12 cannot follow
 * hot-plug (its slot list is fixed at enumeration and PKCS11_update_slots crashes), hangs
 * on a failing C_OpenSession, exposes no data objects, and its key generator and signing
 * calls are deprecated (they break -Werror) and RSA-only. We never C_Finalize from the
 * raw side, treat CKR_CRYPTOKI_ALREADY_INITIALIZED as success, and open our own sessions
 * (login state is shared per application anyway).
 *
 * Threads (docs/architecture.md §3.1). One Module per module path, shared by every vendor profile
 * that names it (one PKCS11_CTX per module). Its worker thread runs every management call (login,
 * keygen, object writes, …) one after another, and between calls polls presence with raw
 * C_GetSlotList / C_GetSlotInfo / C_GetTokenInfo every poll interval (1 s). A waiter thread blocks
 * in C_WaitForSlotEvent where the module supports it and asks the worker for an immediate poll.
 * enumerate answers from the last poll (never touches the token); wait_for_event waits on the poll
 * generation. sign runs on the calling thread under a per-token lock with its own cached session,
 * so signatures never queue behind management calls. The main loop of the daemon never calls in
 * here.
 *
 * Invariants: a token's management session is only touched by the worker; a token seen
 * absent has its sessions forgotten and its presence generation bumped, so a signing
 * session opened before an unplug is never reused after the replug; PINs are passed to
 * the module and wiped from our copies, never logged or put into messages.
 */
#include <dlfcn.h>
#include <glib.h>
#include <libp11.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>
#include <stdio.h>
#include <string.h>

#include "certseal/driver.h"

CS_DRIVER_DEFINE_ABI();

#define POLL_INTERVAL_US (G_USEC_PER_SEC)
#define SHUTDOWN_WAIT_US (3 * G_USEC_PER_SEC)

/* A token as the last poll saw it. */
typedef struct {
	CK_SLOT_ID slot;
	CsDriverTokenInfo info;
	CK_FLAGS flags;
} Seen;

/* Per-token runtime state; lives as long as its module (looked up by serial). */
typedef struct {
	char serial[64];
	gint present_gen;	/* bumped each time the token (re)appears */
	CK_SESSION_HANDLE mgmt; /* worker only; 0 = none */
	int failures;		/* wrong PINs seen since the last success; -1 unknown */
	GMutex sign_lock;
	CK_SESSION_HANDLE sign_session;
	gint sign_gen;
	GHashTable *keys; /* key_id → KeyRef (sign_lock) */
} Tok;

typedef struct {
	CK_OBJECT_HANDLE handle;
	CK_KEY_TYPE type;
} KeyRef;

typedef struct Job Job;
typedef void (*JobFunc)(Job *job);

typedef struct Module {
	char *path;
	char *init_args;
	int refs;
	PKCS11_CTX *p11;
	void *dl;
	CK_FUNCTION_LIST_PTR f;
	GAsyncQueue *jobs;
	GThread *worker;
	GThread *waiter;
	gint stopping;
	gboolean worker_done;
	GMutex state_lock; /* seen, generation, toks, worker_done */
	GCond state_cond;
	GArray *seen; /* Seen */
	guint64 generation;
	GHashTable *toks; /* serial → Tok */
} Module;

struct Job {
	JobFunc func;
	CsDriverContext *ctx;
	const char *serial;
	const void *in[4];
	void *out[2];
	size_t *out_len;
	int flag;
	CsDriverStatus status;
	CsDriverError *err;
	GMutex lock;
	GCond cond;
	gboolean done;
};

struct CsDriverContext {
	Module *m;
	char *vendor;
	char *manufacturer;
	char *model;
	unsigned max_tries;
};

static GMutex modules_lock;
static GPtrArray *modules; /* Module* */

/* --- errors ------------------------------------------------------------------------- */

static const char *
rv_name(CK_RV rv)
{
	switch (rv) {
	case CKR_OK:
		return "CKR_OK";
	case CKR_PIN_INCORRECT:
		return "CKR_PIN_INCORRECT";
	case CKR_PIN_LOCKED:
		return "CKR_PIN_LOCKED";
	case CKR_PIN_LEN_RANGE:
		return "CKR_PIN_LEN_RANGE";
	case CKR_PIN_INVALID:
		return "CKR_PIN_INVALID";
	case CKR_DEVICE_REMOVED:
		return "CKR_DEVICE_REMOVED";
	case CKR_DEVICE_ERROR:
		return "CKR_DEVICE_ERROR";
	case CKR_TOKEN_NOT_PRESENT:
		return "CKR_TOKEN_NOT_PRESENT";
	case CKR_SESSION_HANDLE_INVALID:
		return "CKR_SESSION_HANDLE_INVALID";
	case CKR_SESSION_CLOSED:
		return "CKR_SESSION_CLOSED";
	case CKR_USER_NOT_LOGGED_IN:
		return "CKR_USER_NOT_LOGGED_IN";
	case CKR_FUNCTION_NOT_SUPPORTED:
		return "CKR_FUNCTION_NOT_SUPPORTED";
	case CKR_MECHANISM_INVALID:
		return "CKR_MECHANISM_INVALID";
	case CKR_FUNCTION_FAILED:
		return "CKR_FUNCTION_FAILED";
	case CKR_GENERAL_ERROR:
		return "CKR_GENERAL_ERROR";
	case CKR_SLOT_ID_INVALID:
		return "CKR_SLOT_ID_INVALID";
	case CKR_TEMPLATE_INCOMPLETE:
		return "CKR_TEMPLATE_INCOMPLETE";
	case CKR_ATTRIBUTE_VALUE_INVALID:
		return "CKR_ATTRIBUTE_VALUE_INVALID";
	case CKR_OBJECT_HANDLE_INVALID:
		return "CKR_OBJECT_HANDLE_INVALID";
	case CKR_KEY_HANDLE_INVALID:
		return "CKR_KEY_HANDLE_INVALID";
	case CKR_SESSION_READ_ONLY_EXISTS:
		return "CKR_SESSION_READ_ONLY_EXISTS";
	case CKR_SESSION_EXISTS:
		return "CKR_SESSION_EXISTS";
	default:
		return "CKR_?";
	}
}

static CsDriverStatus fail(CsDriverError *err, CsDriverStatus status, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

static CsDriverStatus
fail(CsDriverError *err, CsDriverStatus status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	err->status = status;
	return status;
}

static gboolean
rv_is_removal(CK_RV rv)
{
	return rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT ||
	       rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED ||
	       rv == CKR_SLOT_ID_INVALID;
}

static CsDriverStatus
fail_rv(CsDriverError *err, const char *what, CK_RV rv)
{
	CsDriverStatus st = CS_DRIVER_ERR_FAILED;

	if (rv_is_removal(rv))
		st = CS_DRIVER_ERR_TOKEN_REMOVED;
	else if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_INVALID)
		st = CS_DRIVER_ERR_PIN_INCORRECT;
	else if (rv == CKR_PIN_LEN_RANGE)
		st = CS_DRIVER_ERR_BAD_ARGUMENT;
	else if (rv == CKR_PIN_LOCKED)
		st = CS_DRIVER_ERR_PIN_LOCKED;
	else if (rv == CKR_FUNCTION_NOT_SUPPORTED || rv == CKR_MECHANISM_INVALID)
		st = CS_DRIVER_ERR_NOT_SUPPORTED;
	if (st == CS_DRIVER_ERR_TOKEN_REMOVED)
		return fail(err, st, "the key was removed (%s: %s)", what, rv_name(rv));
	return fail(err, st, "%s: %s (0x%lx)", what, rv_name(rv), (unsigned long)rv);
}

/* "abc   " (blank-padded, not terminated) → "abc". */
static void
unpad(char *dst, size_t dst_size, const CK_UTF8CHAR *src, size_t n)
{
	while (n > 0 && (src[n - 1] == ' ' || src[n - 1] == '\0'))
		n--;
	n = MIN(n, dst_size - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* --- the module's worker ------------------------------------------------------------ */

static Tok *
tok_get_locked(Module *m, const char *serial)
{
	Tok *t = g_hash_table_lookup(m->toks, serial);

	if (t == NULL) {
		t = g_new0(Tok, 1);
		g_strlcpy(t->serial, serial, sizeof(t->serial));
		g_mutex_init(&t->sign_lock);
		t->keys = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
		g_hash_table_insert(m->toks, t->serial, t);
	}
	return t;
}

static void
tok_free(Tok *t)
{
	g_hash_table_unref(t->keys);
	g_mutex_clear(&t->sign_lock);
	g_free(t);
}

static const Seen *
find_seen_locked(Module *m, const char *serial)
{
	for (guint i = 0; i < m->seen->len; i++) {
		const Seen *s = &g_array_index(m->seen, Seen, i);
		if (g_strcmp0(s->info.serial, serial) == 0)
			return s;
	}
	return NULL;
}

/* One presence poll (worker thread). */
static void
poll_presence(Module *m)
{
	g_autofree CK_SLOT_ID *slots = NULL;
	CK_ULONG n = 0;
	g_autoptr(GArray) now = g_array_new(FALSE, TRUE, sizeof(Seen));
	gboolean changed;
	CK_RV rv;

	/* As many slots as the module has (a maker's desk may hold hundreds of tokens); a
	 * token inserted between the two calls makes the buffer too small: ask again. */
	do {
		if (m->f->C_GetSlotList(CK_TRUE, NULL, &n) != CKR_OK) {
			n = 0;
			break;
		}
		g_free(slots);
		slots = g_new0(CK_SLOT_ID, n + 1);
		rv = m->f->C_GetSlotList(CK_TRUE, slots, &n);
		if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL)
			n = 0;
	} while (rv == CKR_BUFFER_TOO_SMALL);
	for (CK_ULONG i = 0; i < n; i++) {
		CK_SLOT_INFO si;
		CK_TOKEN_INFO ti;
		Seen s = {.slot = slots[i]};

		if (m->f->C_GetSlotInfo(slots[i], &si) != CKR_OK ||
		    !(si.flags & CKF_TOKEN_PRESENT) ||
		    m->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		unpad(s.info.serial, sizeof(s.info.serial), ti.serialNumber,
		      sizeof(ti.serialNumber));
		if (s.info.serial[0] == '\0')
			continue; /* SoftHSM2's spare uninitialised slot: not a key */
		unpad(s.info.label, sizeof(s.info.label), ti.label, sizeof(ti.label));
		unpad(s.info.manufacturer, sizeof(s.info.manufacturer), ti.manufacturerID,
		      sizeof(ti.manufacturerID));
		unpad(s.info.model, sizeof(s.info.model), ti.model, sizeof(ti.model));
		s.flags = ti.flags;
		g_array_append_val(now, s);
	}

	g_mutex_lock(&m->state_lock);
	changed = now->len != m->seen->len;
	/* Tokens gone: forget their sessions. */
	for (guint i = 0; i < m->seen->len; i++) {
		Seen *old = &g_array_index(m->seen, Seen, i);
		gboolean still = FALSE;
		for (guint j = 0; j < now->len && !still; j++) {
			Seen *s = &g_array_index(now, Seen, j);
			still =
			    g_str_equal(s->info.serial, old->info.serial) && s->slot == old->slot;
		}
		if (!still) {
			Tok *t = tok_get_locked(m, old->info.serial);
			t->mgmt = 0;
			t->failures = 0;
			g_atomic_int_inc(&t->present_gen);
			changed = TRUE;
		}
	}
	/* Tokens new: a fresh presence generation. */
	for (guint j = 0; j < now->len; j++) {
		Seen *s = &g_array_index(now, Seen, j);
		const Seen *old = find_seen_locked(m, s->info.serial);
		if (old == NULL || old->slot != s->slot) {
			Tok *t = tok_get_locked(m, s->info.serial);
			g_atomic_int_inc(&t->present_gen);
			changed = TRUE;
		} else if (old->flags != s->flags ||
			   g_strcmp0(old->info.label, s->info.label) != 0) {
			changed = TRUE;
		}
	}
	g_array_set_size(m->seen, 0);
	g_array_append_vals(m->seen, now->data, now->len);
	if (changed) {
		m->generation++;
		g_cond_broadcast(&m->state_cond);
	}
	g_mutex_unlock(&m->state_lock);
}

static void
job_poll(Job *job)
{
}

static gpointer
worker_main(gpointer data)
{
	Module *m = data;
	gint64 next_poll = 0;

	for (;;) {
		gint64 wait = next_poll - g_get_monotonic_time();
		Job *job = wait > 0 ? g_async_queue_timeout_pop(m->jobs, (guint64)wait)
				    : g_async_queue_try_pop(m->jobs);

		if (g_atomic_int_get(&m->stopping) && (job == NULL || job->func == NULL))
			break;
		if (job == NULL || job->func == job_poll) {
			poll_presence(m);
			next_poll = g_get_monotonic_time() + POLL_INTERVAL_US;
			if (job != NULL)
				g_free(job);
			continue;
		}
		job->func(job);
		g_mutex_lock(&job->lock);
		job->done = TRUE;
		g_cond_signal(&job->cond);
		g_mutex_unlock(&job->lock);
	}
	g_mutex_lock(&m->state_lock);
	m->worker_done = TRUE;
	g_cond_broadcast(&m->state_cond);
	g_mutex_unlock(&m->state_lock);
	return NULL;
}

static gpointer
waiter_main(gpointer data)
{
	Module *m = data;

	while (!g_atomic_int_get(&m->stopping)) {
		CK_SLOT_ID slot = 0;
		CK_RV rv = m->f->C_WaitForSlotEvent(0, &slot, NULL);

		if (g_atomic_int_get(&m->stopping) || rv == CKR_CRYPTOKI_NOT_INITIALIZED)
			break;
		if (rv == CKR_OK) {
			Job *poll = g_new0(Job, 1);
			poll->func = job_poll;
			g_async_queue_push(m->jobs, poll);
		} else {
			g_usleep(POLL_INTERVAL_US);
		}
	}
	return NULL;
}

/* Run @job on the module's worker and wait for it. */
static CsDriverStatus
run_job(CsDriverContext *ctx, Job *job)
{
	Module *m = ctx->m;

	job->ctx = ctx;
	job->status = CS_DRIVER_OK;
	g_mutex_init(&job->lock);
	g_cond_init(&job->cond);
	g_async_queue_push(m->jobs, job);
	g_mutex_lock(&job->lock);
	while (!job->done)
		g_cond_wait(&job->cond, &job->lock);
	g_mutex_unlock(&job->lock);
	g_mutex_clear(&job->lock);
	g_cond_clear(&job->cond);
	return job->status;
}

/* --- module life -------------------------------------------------------------------- */

static void
module_free(Module *m)
{
	g_free(m->path);
	g_free(m->init_args);
	if (m->seen != NULL)
		g_array_unref(m->seen);
	if (m->toks != NULL)
		g_hash_table_unref(m->toks);
	if (m->jobs != NULL)
		g_async_queue_unref(m->jobs);
	g_mutex_clear(&m->state_lock);
	g_cond_clear(&m->state_cond);
	g_free(m);
}

static Module *
module_open(const char *path, const char *init_args, CsDriverError *err)
{
	Module *m = g_new0(Module, 1);
	CK_C_GetFunctionList get;
	CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK, .pReserved = (void *)init_args};
	CK_SLOT_ID dummy;
	CK_RV rv;

	m->path = g_strdup(path);
	m->init_args = g_strdup(init_args);
	g_mutex_init(&m->state_lock);
	g_cond_init(&m->state_cond);
	m->seen = g_array_new(FALSE, TRUE, sizeof(Seen));
	m->toks = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)tok_free);
	m->jobs = g_async_queue_new();
	m->p11 = PKCS11_CTX_new();
	if (init_args != NULL)
		PKCS11_CTX_init_args(m->p11, init_args);
	if (PKCS11_CTX_load(m->p11, path) != 0) {
		fail(err, CS_DRIVER_ERR_FAILED, "cannot load PKCS#11 module %s", path);
		PKCS11_CTX_free(m->p11);
		module_free(m);
		return NULL;
	}
	/* The same handle libp11 holds: one instance of the module's state. */
	m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
	if (m->dl == NULL)
		m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	get = m->dl != NULL ? (CK_C_GetFunctionList)dlsym(m->dl, "C_GetFunctionList") : NULL;
	if (get == NULL || get(&m->f) != CKR_OK) {
		fail(err, CS_DRIVER_ERR_FAILED, "%s: no C_GetFunctionList", path);
		goto error;
	}
	rv = m->f->C_Initialize(&args);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		fail_rv(err, "C_Initialize", rv);
		goto error;
	}
	poll_presence(m);
	m->worker = g_thread_new("pkcs11-worker", worker_main, m);
	rv = m->f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &dummy, NULL);
	if (rv != CKR_FUNCTION_NOT_SUPPORTED)
		m->waiter = g_thread_new("pkcs11-events", waiter_main, m);
	g_info("%s: loaded (slot events: %s)", path, m->waiter != NULL ? "yes" : "polling only");
	return m;
error:
	if (m->dl != NULL)
		dlclose(m->dl);
	PKCS11_CTX_unload(m->p11);
	PKCS11_CTX_free(m->p11);
	module_free(m);
	return NULL;
}

static void
module_close(Module *m)
{
	Job *stop = g_new0(Job, 1);
	gint64 deadline = g_get_monotonic_time() + SHUTDOWN_WAIT_US;
	gboolean done;

	g_atomic_int_set(&m->stopping, 1);
	g_async_queue_push(m->jobs, stop);
	g_mutex_lock(&m->state_lock);
	while (!m->worker_done && g_cond_wait_until(&m->state_cond, &m->state_lock, deadline))
		;
	done = m->worker_done;
	g_mutex_unlock(&m->state_lock);
	if (!done) {
		/* A token call hangs: leave the module loaded rather than finalize it under the
		 * worker's feet; the process is exiting anyway. */
		g_warning("%s: a token call is still running; not finalizing the module", m->path);
		return;
	}
	g_thread_join(m->worker);
	g_free(stop);
	PKCS11_CTX_unload(m->p11); /* C_Finalize: releases a waiter blocked in the module */
	if (m->waiter != NULL)
		g_thread_join(m->waiter);
	PKCS11_CTX_free(m->p11);
	dlclose(m->dl);
	module_free(m);
}

/* --- helpers for jobs (worker thread) ----------------------------------------------- */

static const Seen *
seen_for(CsDriverContext *ctx, const char *serial, CK_SLOT_ID *slot)
{
	const Seen *s;

	g_mutex_lock(&ctx->m->state_lock);
	s = find_seen_locked(ctx->m, serial);
	if (s != NULL)
		*slot = s->slot;
	g_mutex_unlock(&ctx->m->state_lock);
	return s;
}

static Tok *
tok_for(CsDriverContext *ctx, const char *serial)
{
	Tok *t;

	g_mutex_lock(&ctx->m->state_lock);
	t = tok_get_locked(ctx->m, serial);
	g_mutex_unlock(&ctx->m->state_lock);
	return t;
}

/* The token's read/write management session, opened when needed. */
static CsDriverStatus
mgmt_session(Job *job, Tok **tok_out, CK_SLOT_ID *slot_out)
{
	CsDriverContext *ctx = job->ctx;
	CK_SLOT_ID slot = 0;
	Tok *t;
	CK_RV rv;

	if (seen_for(ctx, job->serial, &slot) == NULL)
		return fail(job->err, CS_DRIVER_ERR_NOT_FOUND, "no key %s is inserted",
			    job->serial);
	t = tok_for(ctx, job->serial);
	if (t->mgmt == 0) {
		rv = ctx->m->f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
					      &t->mgmt);
		if (rv != CKR_OK) {
			t->mgmt = 0;
			return fail_rv(job->err, "C_OpenSession", rv);
		}
	}
	*tok_out = t;
	if (slot_out != NULL)
		*slot_out = slot;
	return CS_DRIVER_OK;
}

/* After a failed call: a removal makes the session useless and asks for a poll now. */
static CsDriverStatus
job_fail_rv(Job *job, Tok *t, const char *what, CK_RV rv)
{
	if (rv_is_removal(rv) && t != NULL) {
		t->mgmt = 0;
		poll_presence(job->ctx->m);
	}
	return fail_rv(job->err, what, rv);
}

static void
fill_pin_status(CsDriverContext *ctx, Tok *t, CK_FLAGS flags, CsDriverPinStatus *st)
{
	CK_SESSION_INFO si;

	st->locked = (flags & CKF_USER_PIN_LOCKED) != 0;
	st->final_try = (flags & CKF_USER_PIN_FINAL_TRY) != 0;
	st->count_low = (flags & CKF_USER_PIN_COUNT_LOW) != 0;
	st->initialized = (flags & CKF_TOKEN_INITIALIZED) != 0;
	if (st->locked)
		st->tries_left = 0;
	else if (st->final_try)
		st->tries_left = 1;
	else if (!st->count_low)
		st->tries_left = (int)ctx->max_tries;
	else if (t->failures > 0 && (unsigned)t->failures < ctx->max_tries)
		st->tries_left = (int)ctx->max_tries - t->failures;
	else
		st->tries_left = -1;
	st->logged_in = t->mgmt != 0 && ctx->m->f->C_GetSessionInfo(t->mgmt, &si) == CKR_OK &&
			(si.state == CKS_RW_USER_FUNCTIONS || si.state == CKS_RO_USER_FUNCTIONS);
}

static CK_RV
token_flags(CsDriverContext *ctx, CK_SLOT_ID slot, CK_FLAGS *flags)
{
	CK_TOKEN_INFO ti;
	CK_RV rv = ctx->m->f->C_GetTokenInfo(slot, &ti);

	if (rv == CKR_OK)
		*flags = ti.flags;
	return rv;
}

/* --- management jobs ---------------------------------------------------------------- */

static void
do_pin_status(Job *job)
{
	CsDriverPinStatus *st = job->out[0];
	CK_SLOT_ID slot = 0;
	CK_FLAGS flags = 0;
	Tok *t = NULL;
	CK_RV rv;

	if (seen_for(job->ctx, job->serial, &slot) == NULL) {
		job->status =
		    fail(job->err, CS_DRIVER_ERR_NOT_FOUND, "no key %s is inserted", job->serial);
		return;
	}
	rv = token_flags(job->ctx, slot, &flags);
	if (rv != CKR_OK) {
		job->status = job_fail_rv(job, NULL, "C_GetTokenInfo", rv);
		poll_presence(job->ctx->m);
		return;
	}
	/* A blank key (waiting for init_token) takes no session yet. */
	if ((flags & CKF_TOKEN_INITIALIZED) != 0 &&
	    (job->status = mgmt_session(job, &t, NULL)) != CS_DRIVER_OK)
		return;
	if (t == NULL)
		t = tok_for(job->ctx, job->serial);
	fill_pin_status(job->ctx, t, flags, st);
}

/* A wrong PIN: say how many tries are left, from the token's flags and our count. */
static void
pin_failed(Job *job, Tok *t, CK_SLOT_ID slot, const char *what, CK_RV rv)
{
	CsDriverPinStatus st = {0};
	CK_FLAGS flags = 0;

	if (t->failures >= 0)
		t->failures++;
	if (rv == CKR_PIN_INCORRECT && token_flags(job->ctx, slot, &flags) == CKR_OK) {
		fill_pin_status(job->ctx, t, flags, &st);
		if (st.locked) {
			job->status = fail(job->err, CS_DRIVER_ERR_PIN_LOCKED, "the PIN is locked");
			return;
		}
		job->err->tries_left = st.tries_left;
	}
	if (rv == CKR_PIN_LOCKED) {
		job->status = fail(job->err, CS_DRIVER_ERR_PIN_LOCKED, "the PIN is locked");
		return;
	}
	job->status = fail(job->err, CS_DRIVER_ERR_PIN_INCORRECT, "%s: wrong PIN", what);
}

static void
do_login(Job *job)
{
	const char *pin = job->in[0];
	CK_SLOT_ID slot = 0;
	Tok *t = NULL;
	CK_RV rv;

	if ((job->status = mgmt_session(job, &t, &slot)) != CS_DRIVER_OK)
		return;
	rv = job->ctx->m->f->C_Login(t->mgmt, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
	if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN) {
		t->failures = 0;
		return;
	}
	if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED)
		pin_failed(job, t, slot, "C_Login", rv);
	else
		job->status = job_fail_rv(job, t, "C_Login", rv);
}

static void
do_logout(Job *job)
{
	Tok *t = NULL;
	CK_RV rv;

	if ((job->status = mgmt_session(job, &t, NULL)) != CS_DRIVER_OK)
		return;
	rv = job->ctx->m->f->C_Logout(t->mgmt);
	if (rv != CKR_OK && rv != CKR_USER_NOT_LOGGED_IN)
		job->status = job_fail_rv(job, t, "C_Logout", rv);
}

static void
do_change_pin(Job *job)
{
	const char *old_pin = job->in[0], *new_pin = job->in[1];
	CK_SLOT_ID slot = 0;
	Tok *t = NULL;
	CK_RV rv;

	if ((job->status = mgmt_session(job, &t, &slot)) != CS_DRIVER_OK)
		return;
	rv = job->ctx->m->f->C_SetPIN(t->mgmt, (CK_UTF8CHAR_PTR)old_pin, strlen(old_pin),
				      (CK_UTF8CHAR_PTR)new_pin, strlen(new_pin));
	if (rv == CKR_OK) {
		t->failures = 0;
		return;
	}
	if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED)
		pin_failed(job, t, slot, "C_SetPIN", rv);
	else
		job->status = job_fail_rv(job, t, "C_SetPIN", rv);
}

/* SO login on a fresh session, then C_InitPIN; the user is logged out first. */
static void
do_unblock(Job *job)
{
	const char *so_pin = job->in[0], *new_pin = job->in[1];
	CK_FUNCTION_LIST_PTR f = job->ctx->m->f;
	CK_SLOT_ID slot = 0;
	Tok *t = NULL;
	CK_RV rv;

	if ((job->status = mgmt_session(job, &t, &slot)) != CS_DRIVER_OK)
		return;
	f->C_Logout(t->mgmt);
	/* An SO login is refused while a read-only session exists (CKR_SESSION_READ_ONLY_
	 * EXISTS): close the signing session; the next signature opens a new one. */
	g_mutex_lock(&t->sign_lock);
	if (t->sign_session != 0)
		f->C_CloseSession(t->sign_session);
	t->sign_session = 0;
	g_hash_table_remove_all(t->keys);
	g_mutex_unlock(&t->sign_lock);
	rv = f->C_Login(t->mgmt, CKU_SO, (CK_UTF8CHAR_PTR)so_pin, strlen(so_pin));
	if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED) {
		job->status = fail(job->err,
				   rv == CKR_PIN_LOCKED ? CS_DRIVER_ERR_PIN_LOCKED
							: CS_DRIVER_ERR_PIN_INCORRECT,
				   "the administrator PIN was refused");
		return;
	}
	if (rv != CKR_OK) {
		job->status = job_fail_rv(job, t, "C_Login(SO)", rv);
		return;
	}
	rv = f->C_InitPIN(t->mgmt, (CK_UTF8CHAR_PTR)new_pin, strlen(new_pin));
	f->C_Logout(t->mgmt);
	if (rv != CKR_OK) {
		job->status = job_fail_rv(job, t, "C_InitPIN", rv);
		return;
	}
	t->failures = 0;
}

static void
do_init_token(Job *job)
{
	const char *label = job->in[0], *user_pin = job->in[1], *so_pin = job->in[2];
	CK_FUNCTION_LIST_PTR f = job->ctx->m->f;
	CK_UTF8CHAR lab[32];
	CK_SLOT_ID slot = 0;
	CK_SESSION_HANDLE s = 0;
	Tok *t;
	CK_RV rv;

	if (seen_for(job->ctx, job->serial, &slot) == NULL) {
		job->status =
		    fail(job->err, CS_DRIVER_ERR_NOT_FOUND, "no key %s is inserted", job->serial);
		return;
	}
	t = tok_for(job->ctx, job->serial);
	/* C_InitToken needs every session of the token closed. */
	f->C_CloseAllSessions(slot);
	t->mgmt = 0;
	g_atomic_int_inc(&t->present_gen);
	memset(lab, ' ', sizeof(lab));
	memcpy(lab, label, MIN(strlen(label), sizeof(lab)));
	rv = f->C_InitToken(slot, (CK_UTF8CHAR_PTR)so_pin, strlen(so_pin), lab);
	if (rv == CKR_OK)
		rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
	if (rv == CKR_OK)
		rv = f->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)so_pin, strlen(so_pin));
	if (rv == CKR_OK) {
		rv = f->C_InitPIN(s, (CK_UTF8CHAR_PTR)user_pin, strlen(user_pin));
		f->C_Logout(s);
	}
	if (s != 0)
		f->C_CloseSession(s);
	if (rv != CKR_OK) {
		job->status = job_fail_rv(job, NULL, "initialising the token", rv);
		return;
	}
	t->failures = 0;
	poll_presence(job->ctx->m);
}

/* Find objects of @klass whose CKA_LABEL is @label (up to @max). */
static CK_RV
find_objects(CK_FUNCTION_LIST_PTR f,
	     CK_SESSION_HANDLE s,
	     CK_OBJECT_CLASS klass,
	     const char *label,
	     CK_OBJECT_HANDLE *found,
	     CK_ULONG max,
	     CK_ULONG *n)
{
	CK_ATTRIBUTE tmpl[] = {
	    {CKA_CLASS, &klass, sizeof(klass)},
	    {CKA_LABEL, (void *)label, strlen(label)},
	};
	CK_RV rv = f->C_FindObjectsInit(s, tmpl, G_N_ELEMENTS(tmpl));

	*n = 0;
	if (rv != CKR_OK)
		return rv;
	rv = f->C_FindObjects(s, found, max, n);
	f->C_FindObjectsFinal(s);
	return rv;
}

static CK_RV
get_attr(CK_FUNCTION_LIST_PTR f,
	 CK_SESSION_HANDLE s,
	 CK_OBJECT_HANDLE o,
	 CK_ATTRIBUTE_TYPE type,
	 GBytes **out)
{
	CK_ATTRIBUTE a = {type, NULL, 0};
	CK_RV rv = f->C_GetAttributeValue(s, o, &a, 1);
	g_autofree guchar *buf = NULL;

	if (rv != CKR_OK)
		return rv;
	if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
		return CKR_ATTRIBUTE_TYPE_INVALID;
	buf = g_malloc(a.ulValueLen + 1);
	a.pValue = buf;
	rv = f->C_GetAttributeValue(s, o, &a, 1);
	if (rv != CKR_OK)
		return rv;
	*out = g_bytes_new_take(g_steal_pointer(&buf), a.ulValueLen);
	return CKR_OK;
}

/* DER SubjectPublicKeyInfo of the public key object @o. */
static CsDriverStatus
export_spki(
    Job *job, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, unsigned char *spki, size_t *spki_len)
{
	CK_FUNCTION_LIST_PTR f = job->ctx->m->f;
	CK_KEY_TYPE type = 0;
	CK_ATTRIBUTE ta = {CKA_KEY_TYPE, &type, sizeof(type)};
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	EVP_PKEY *pkey = NULL;
	BIGNUM *n = NULL, *e = NULL;
	g_autoptr(GBytes) a = NULL;
	g_autoptr(GBytes) b = NULL;
	CsDriverStatus status = CS_DRIVER_OK;
	int len;
	CK_RV rv = f->C_GetAttributeValue(s, o, &ta, 1);

	if (rv == CKR_OK && type == CKK_RSA) {
		rv = get_attr(f, s, o, CKA_MODULUS, &a);
		if (rv == CKR_OK)
			rv = get_attr(f, s, o, CKA_PUBLIC_EXPONENT, &b);
		if (rv == CKR_OK) {
			n = BN_bin2bn(g_bytes_get_data(a, NULL), (int)g_bytes_get_size(a), NULL);
			e = BN_bin2bn(g_bytes_get_data(b, NULL), (int)g_bytes_get_size(b), NULL);
			OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n);
			OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e);
			pctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
		}
	} else if (rv == CKR_OK && type == CKK_EC) {
		rv = get_attr(f, s, o, CKA_EC_POINT, &a);
		if (rv == CKR_OK) {
			/* CKA_EC_POINT is a DER OCTET STRING around the point. */
			const unsigned char *p = g_bytes_get_data(a, NULL);
			ASN1_OCTET_STRING *os =
			    d2i_ASN1_OCTET_STRING(NULL, &p, (long)g_bytes_get_size(a));
			if (os != NULL) {
				b = g_bytes_new(ASN1_STRING_get0_data(os),
						(gsize)ASN1_STRING_length(os));
				ASN1_OCTET_STRING_free(os);
			} else {
				b = g_bytes_ref(a);
			}
			OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
							"prime256v1", 0);
			OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
							 g_bytes_get_data(b, NULL),
							 g_bytes_get_size(b));
			pctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
		}
	} else if (rv == CKR_OK) {
		status = fail(job->err, CS_DRIVER_ERR_NOT_SUPPORTED, "key type 0x%lx",
			      (unsigned long)type);
	}
	if (rv != CKR_OK)
		status = fail_rv(job->err, "reading the public key", rv);
	if (status == CS_DRIVER_OK) {
		params = OSSL_PARAM_BLD_to_param(bld);
		if (pctx == NULL || params == NULL || EVP_PKEY_fromdata_init(pctx) <= 0 ||
		    EVP_PKEY_fromdata(pctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
			status =
			    fail(job->err, CS_DRIVER_ERR_FAILED, "cannot build the public key");
	}
	if (status == CS_DRIVER_OK) {
		len = i2d_PUBKEY(pkey, NULL);
		if (len <= 0 || (size_t)len > *spki_len) {
			*spki_len = len > 0 ? (size_t)len : 0;
			status = fail(job->err, CS_DRIVER_ERR_BAD_ARGUMENT, "buffer too small");
		} else {
			unsigned char *p = spki;
			*spki_len = (size_t)i2d_PUBKEY(pkey, &p);
		}
	}
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(pctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	return status;
}

static void
do_generate_key(Job *job)
{
	const char *key_id = job->in[0], *algorithm = job->in[1];
	CK_FUNCTION_LIST_PTR f = job->ctx->m->f;
	static const CK_BYTE p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
	CK_BYTE exponent[] = {0x01, 0x00, 0x01};
	CK_ULONG bits = 2048;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	gboolean rsa = g_strcmp0(algorithm, "rsa-2048") == 0;
	CK_MECHANISM mech = {rsa ? CKM_RSA_PKCS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_ULONG id_len = strlen(key_id);
	CK_ATTRIBUTE pub[] = {
	    {CKA_TOKEN, &yes, sizeof(yes)},
	    {CKA_VERIFY, &yes, sizeof(yes)},
	    {CKA_ID, (void *)key_id, id_len},
	    {CKA_LABEL, (void *)key_id, id_len},
	    {rsa ? CKA_MODULUS_BITS : CKA_EC_PARAMS, rsa ? (void *)&bits : (void *)p256,
	     rsa ? sizeof(bits) : sizeof(p256)},
	    {CKA_PUBLIC_EXPONENT, exponent, sizeof(exponent)},
	};
	CK_ATTRIBUTE priv[] = {
	    {CKA_TOKEN, &yes, sizeof(yes)},	 {CKA_PRIVATE, &yes, sizeof(yes)},
	    {CKA_SENSITIVE, &yes, sizeof(yes)},	 {CKA_EXTRACTABLE, &no, sizeof(no)},
	    {CKA_SIGN, &yes, sizeof(yes)},	 {CKA_ID, (void *)key_id, id_len},
	    {CKA_LABEL, (void *)key_id, id_len},
	};
	CK_OBJECT_HANDLE hpub = 0, hpriv = 0, old[8];
	CK_ULONG n = 0;
	Tok *t = NULL;
	CK_RV rv;

	if (!rsa && g_strcmp0(algorithm, "ec-p256") != 0) {
		job->status = fail(job->err, CS_DRIVER_ERR_NOT_SUPPORTED,
				   "algorithm %s is not supported by this token", algorithm);
		return;
	}
	if ((job->status = mgmt_session(job, &t, NULL)) != CS_DRIVER_OK)
		return;
	/* A key of the same id is replaced. */
	for (CK_OBJECT_CLASS k = CKO_PUBLIC_KEY; k <= CKO_PRIVATE_KEY; k++) {
		if (find_objects(f, t->mgmt, k, key_id, old, G_N_ELEMENTS(old), &n) == CKR_OK)
			for (CK_ULONG i = 0; i < n; i++)
				f->C_DestroyObject(t->mgmt, old[i]);
	}
	rv = f->C_GenerateKeyPair(t->mgmt, &mech, pub, rsa ? 6 : 5, priv, G_N_ELEMENTS(priv), &hpub,
				  &hpriv);
	if (rv != CKR_OK) {
		job->status = job_fail_rv(job, t, "C_GenerateKeyPair", rv);
		return;
	}
	g_mutex_lock(&t->sign_lock);
	g_hash_table_remove(t->keys, key_id);
	g_mutex_unlock(&t->sign_lock);
	job->status = export_spki(job, t->mgmt, hpub, job->out[0], job->out_len);
}

static void
do_get_public_key(Job *job)
{
	const char *key_id = job->in[0];
	CK_OBJECT_HANDLE o = 0;
	CK_ULONG n = 0;
	Tok *t = NULL;
	CK_RV rv;

	if ((job->status = mgmt_session(job, &t, NULL)) != CS_DRIVER_OK)
		return;
	rv = find_objects(job->ctx->m->f, t->mgmt, CKO_PUBLIC_KEY, key_id, &o, 1, &n);
	if (rv != CKR_OK) {
		job->status = job_fail_rv(job, t, "C_FindObjects", rv);
		return;
	}
	if (n == 0) {
		job->status = fail(job->err, CS_DRIVER_ERR_NOT_FOUND, "no key %s", key_id);
		return;
	}
	job->status = export_spki(job, t->mgmt, o, job->out[0], job->out_len);
}

static void
do_put_object(Job *job)
{
	const char *label = job->in[0];
	const unsigned char *data = job->in[1];
	size_t len = *(const size_t *)job->in[2];
	CK_FUNCTION_LIST_PTR f = job->ctx->m->f;
	CK_OBJECT_CLASS klass = job->flag ? CKO_CERTIFICATE : CKO_DATA;
	CK_CERTIFICATE_TYPE ctype = CKC_X_509;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	unsigned char *subject = NULL;
	int subject_len = 0;
	CK_OBJECT_HANDLE old[8], created = 0;
	CK_ULONG n = 0;
	Tok *t = NULL;
	CK_RV rv;

	if (job->flag) {
		const unsigned char *p = data;
		X509 *x = d2i_X509(NULL, &p, (long)len);
		if (x == NULL) {
			job->status = fail(job->err, CS_DRIVER_ERR_BAD_ARGUMENT,
					   "not a DER X.509 certificate");
			return;
		}
		subject_len = i2d_X509_NAME(X509_get_subject_name(x), &subject);
		X509_free(x);
	}
	if ((job->status = mgmt_session(job, &t, NULL)) != CS_DRIVER_OK)
		goto out;
	{
		CK_ATTRIBUTE tmpl[] = {
		    {CKA_CLASS, &klass, sizeof(klass)},
		    {CKA_TOKEN, &yes, sizeof(yes)},
		    {CKA_PRIVATE, &no, sizeof(no)},
		    {CKA_LABEL, (void *)label, strlen(label)},
		    {CKA_VALUE, (void *)data, len},
		    {job->flag ? CKA_ID : CKA_APPLICATION, (void *)(job->flag ? label : "certseal"),
		     strlen(job->flag ? label : "certseal")},
		    {CKA_CERTIFICATE_TYPE, &ctype, sizeof(ctype)},
		    {CKA_SUBJECT, subject, (CK_ULONG)MAX(subject_len, 0)},
		};
		/* Write the new object first, then remove the old ones: a key pulled in between
		 * leaves two copies (the newest wins on read), never none. */
		rv = find_objects(f, t->mgmt, klass, label, old, G_N_ELEMENTS(old), &n);
		if (rv == CKR_OK)
			rv = f->C_CreateObject(t->mgmt, tmpl, job->flag ? 8 : 6, &created);
		for (CK_ULONG i = 0; rv == CKR_OK && i < n; i++)
			rv = f->C_DestroyObject(t->mgmt, old[i]);
		if (rv != CKR_OK)
			job->status = job_fail_rv(job, t, "writing the object", rv);
	}
out:
	OPENSSL_free(subject);
}

static void
do_get_object(Job *job)
{
	const char *label = job->in[0];
	CK_OBJECT_CLASS klass = job->flag ? CKO_CERTIFICATE : CKO_DATA;
	CK_OBJECT_HANDLE found[8];
	CK_ULONG n = 0;
	g_autoptr(GBytes) value = NULL;
	Tok *t = NULL;
	CK_RV rv;

	if ((job->status = mgmt_session(job, &t, NULL)) != CS_DRIVER_OK)
		return;
	rv = find_objects(job->ctx->m->f, t->mgmt, klass, label, found, G_N_ELEMENTS(found), &n);
	if (rv == CKR_OK && n > 0)
		rv = get_attr(job->ctx->m->f, t->mgmt, found[n - 1], CKA_VALUE, &value);
	if (rv != CKR_OK) {
		job->status = job_fail_rv(job, t, "reading the object", rv);
		return;
	}
	if (n == 0) {
		job->status =
		    fail(job->err, CS_DRIVER_ERR_NOT_FOUND, "no %s labelled %s on the key",
			 job->flag ? "certificate" : "data object", label);
		return;
	}
	if (g_bytes_get_size(value) > *job->out_len) {
		*job->out_len = g_bytes_get_size(value);
		job->status = fail(job->err, CS_DRIVER_ERR_BAD_ARGUMENT, "buffer too small");
		return;
	}
	*job->out_len = g_bytes_get_size(value);
	memcpy(job->out[0], g_bytes_get_data(value, NULL), *job->out_len);
}

static void
do_delete_object(Job *job)
{
	const char *label = job->in[0];
	CK_OBJECT_CLASS klass = job->flag ? CKO_CERTIFICATE : CKO_DATA;
	CK_OBJECT_HANDLE found[8];
	CK_ULONG n = 0;
	Tok *t = NULL;
	CK_RV rv;

	if ((job->status = mgmt_session(job, &t, NULL)) != CS_DRIVER_OK)
		return;
	rv = find_objects(job->ctx->m->f, t->mgmt, klass, label, found, G_N_ELEMENTS(found), &n);
	for (CK_ULONG i = 0; rv == CKR_OK && i < n; i++)
		rv = job->ctx->m->f->C_DestroyObject(t->mgmt, found[i]);
	if (rv != CKR_OK)
		job->status = job_fail_rv(job, t, "deleting the object", rv);
	else if (n == 0)
		job->status =
		    fail(job->err, CS_DRIVER_ERR_NOT_FOUND, "no object labelled %s", label);
}

/* Both halves of key pair @key_id; the signing cache forgets it. */
static void
do_delete_key(Job *job)
{
	const char *key_id = job->in[0];
	CK_FUNCTION_LIST_PTR f = job->ctx->m->f;
	CK_OBJECT_HANDLE found[8];
	CK_ULONG n = 0, total = 0;
	Tok *t = NULL;
	CK_RV rv = CKR_OK;

	if ((job->status = mgmt_session(job, &t, NULL)) != CS_DRIVER_OK)
		return;
	for (CK_OBJECT_CLASS k = CKO_PUBLIC_KEY; rv == CKR_OK && k <= CKO_PRIVATE_KEY; k++) {
		rv = find_objects(f, t->mgmt, k, key_id, found, G_N_ELEMENTS(found), &n);
		for (CK_ULONG i = 0; rv == CKR_OK && i < n; i++, total++)
			rv = f->C_DestroyObject(t->mgmt, found[i]);
	}
	g_mutex_lock(&t->sign_lock);
	g_hash_table_remove(t->keys, key_id);
	g_mutex_unlock(&t->sign_lock);
	if (rv != CKR_OK)
		job->status = job_fail_rv(job, t, "deleting the key pair", rv);
	else if (total == 0)
		job->status = fail(job->err, CS_DRIVER_ERR_NOT_FOUND, "no key %s", key_id);
}

/* --- the ops table ------------------------------------------------------------------ */

static char *
expand_init_args(const char *args, const char *state_dir)
{
	g_auto(GStrv) parts = NULL;

	if (args == NULL)
		return NULL;
	parts = g_strsplit(args, "${state_dir}", 0);
	return g_strjoinv(state_dir != NULL ? state_dir : "", parts);
}

static CsDriverStatus
p11_init(const CsDriverConfig *config, CsDriverContext **ctx_out, CsDriverError *err)
{
	g_autofree char *args = expand_init_args(config->init_args, config->state_dir);
	CsDriverContext *ctx;
	Module *m = NULL;

	if (config->module == NULL)
		return fail(err, CS_DRIVER_ERR_BAD_ARGUMENT, "the profile names no [token] module");
	g_mutex_lock(&modules_lock);
	if (modules == NULL)
		modules = g_ptr_array_new();
	for (guint i = 0; i < modules->len && m == NULL; i++) {
		Module *x = g_ptr_array_index(modules, i);
		if (g_str_equal(x->path, config->module))
			m = x;
	}
	if (m == NULL) {
		m = module_open(config->module, args, err);
		if (m != NULL)
			g_ptr_array_add(modules, m);
	} else if (g_strcmp0(m->init_args, args) != 0) {
		g_info("%s: already loaded by another vendor; its init_args stay in force",
		       config->module);
	}
	if (m != NULL)
		m->refs++;
	g_mutex_unlock(&modules_lock);
	if (m == NULL)
		return err->status != CS_DRIVER_OK ? err->status : CS_DRIVER_ERR_FAILED;
	ctx = g_new0(CsDriverContext, 1);
	ctx->m = m;
	ctx->vendor = g_strdup(config->vendor_id);
	ctx->manufacturer = g_strdup(config->manufacturer);
	ctx->model = g_strdup(config->model);
	ctx->max_tries = config->pin_max_tries > 0 ? config->pin_max_tries : 6;
	*ctx_out = ctx;
	return CS_DRIVER_OK;
}

static void
p11_shutdown(CsDriverContext *ctx)
{
	gboolean last;

	if (ctx == NULL)
		return;
	g_mutex_lock(&modules_lock);
	last = --ctx->m->refs == 0;
	if (last)
		g_ptr_array_remove(modules, ctx->m);
	if (modules->len == 0)
		g_clear_pointer(&modules, g_ptr_array_unref);
	g_mutex_unlock(&modules_lock);
	if (last)
		module_close(ctx->m);
	g_free(ctx->vendor);
	g_free(ctx->manufacturer);
	g_free(ctx->model);
	g_free(ctx);
}

static gboolean
matches(CsDriverContext *ctx, const CsDriverTokenInfo *info)
{
	return (ctx->manufacturer == NULL || g_str_equal(ctx->manufacturer, info->manufacturer)) &&
	       (ctx->model == NULL || g_str_equal(ctx->model, info->model));
}

static CsDriverStatus
p11_enumerate(CsDriverContext *ctx,
	      CsDriverTokenInfo *tokens,
	      size_t max,
	      size_t *n_found,
	      CsDriverError *err)
{
	Module *m = ctx->m;

	*n_found = 0;
	g_mutex_lock(&m->state_lock);
	for (guint i = 0; i < m->seen->len; i++) {
		const Seen *s = &g_array_index(m->seen, Seen, i);
		if (!matches(ctx, &s->info))
			continue;
		if (*n_found < max)
			tokens[*n_found] = s->info;
		(*n_found)++;
	}
	g_mutex_unlock(&m->state_lock);
	/* More than @max: *n_found says how many, and the daemon asks again. */
	return CS_DRIVER_OK;
}

static CsDriverStatus
p11_wait_for_event(CsDriverContext *ctx, int timeout_ms, CsDriverError *err)
{
	Module *m = ctx->m;
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
	guint64 gen;
	gboolean changed;

	g_mutex_lock(&m->state_lock);
	gen = m->generation;
	while (m->generation == gen && !m->worker_done &&
	       g_cond_wait_until(&m->state_cond, &m->state_lock, deadline))
		;
	changed = m->generation != gen;
	g_mutex_unlock(&m->state_lock);
	return changed ? CS_DRIVER_OK : fail(err, CS_DRIVER_ERR_TIMEOUT, "no event");
}

static CsDriverStatus
p11_pin_status(CsDriverContext *ctx,
	       const char *serial,
	       CsDriverPinStatus *status,
	       CsDriverError *err)
{
	Job job = {.func = do_pin_status, .serial = serial, .out = {status}, .err = err};

	memset(status, 0, sizeof(*status));
	return run_job(ctx, &job);
}

static CsDriverStatus
p11_login(CsDriverContext *ctx, const char *serial, const char *pin, CsDriverError *err)
{
	Job job = {.func = do_login, .serial = serial, .in = {pin}, .err = err};

	return run_job(ctx, &job);
}

static CsDriverStatus
p11_logout(CsDriverContext *ctx, const char *serial, CsDriverError *err)
{
	Job job = {.func = do_logout, .serial = serial, .err = err};

	return run_job(ctx, &job);
}

static CsDriverStatus
p11_change_pin(CsDriverContext *ctx,
	       const char *serial,
	       const char *old_pin,
	       const char *new_pin,
	       CsDriverError *err)
{
	Job job = {.func = do_change_pin, .serial = serial, .in = {old_pin, new_pin}, .err = err};

	return run_job(ctx, &job);
}

static CsDriverStatus
p11_unblock(CsDriverContext *ctx,
	    const char *serial,
	    const char *so_pin,
	    const char *new_pin,
	    CsDriverError *err)
{
	Job job = {.func = do_unblock, .serial = serial, .in = {so_pin, new_pin}, .err = err};

	return run_job(ctx, &job);
}

static CsDriverStatus
p11_init_token(CsDriverContext *ctx,
	       const char *serial,
	       const char *label,
	       const char *user_pin,
	       const char *so_pin,
	       CsDriverError *err)
{
	Job job = {
	    .func = do_init_token, .serial = serial, .in = {label, user_pin, so_pin}, .err = err};

	return run_job(ctx, &job);
}

static CsDriverStatus
p11_generate_key(CsDriverContext *ctx,
		 const char *serial,
		 const char *key_id,
		 const char *algorithm,
		 unsigned char *spki,
		 size_t *spki_len,
		 CsDriverError *err)
{
	Job job = {.func = do_generate_key,
		   .serial = serial,
		   .in = {key_id, algorithm},
		   .out = {spki},
		   .out_len = spki_len,
		   .err = err};

	return run_job(ctx, &job);
}

static CsDriverStatus
p11_get_public_key(CsDriverContext *ctx,
		   const char *serial,
		   const char *key_id,
		   unsigned char *spki,
		   size_t *spki_len,
		   CsDriverError *err)
{
	Job job = {.func = do_get_public_key,
		   .serial = serial,
		   .in = {key_id},
		   .out = {spki},
		   .out_len = spki_len,
		   .err = err};

	return run_job(ctx, &job);
}

static CsDriverStatus
p11_put_object(CsDriverContext *ctx,
	       const char *serial,
	       int is_certificate,
	       const char *label,
	       const unsigned char *data,
	       size_t len,
	       CsDriverError *err)
{
	Job job = {.func = do_put_object,
		   .serial = serial,
		   .in = {label, data, &len},
		   .flag = is_certificate,
		   .err = err};

	return run_job(ctx, &job);
}

static CsDriverStatus
p11_get_object(CsDriverContext *ctx,
	       const char *serial,
	       int is_certificate,
	       const char *label,
	       unsigned char *data,
	       size_t *len,
	       CsDriverError *err)
{
	Job job = {.func = do_get_object,
		   .serial = serial,
		   .in = {label},
		   .out = {data},
		   .out_len = len,
		   .flag = is_certificate,
		   .err = err};

	return run_job(ctx, &job);
}

static CsDriverStatus
p11_delete_object(CsDriverContext *ctx,
		  const char *serial,
		  int is_certificate,
		  const char *label,
		  CsDriverError *err)
{
	Job job = {.func = do_delete_object,
		   .serial = serial,
		   .in = {label},
		   .flag = is_certificate,
		   .err = err};

	return run_job(ctx, &job);
}

static CsDriverStatus
p11_delete_key(CsDriverContext *ctx, const char *serial, const char *key_id, CsDriverError *err)
{
	Job job = {.func = do_delete_key, .serial = serial, .in = {key_id}, .err = err};

	return run_job(ctx, &job);
}

/* --- signing (calling thread, per-token lock) --------------------------------------- */

/* The signing session of @t for the current presence generation. Call with sign_lock. */
static CK_RV
sign_session(CsDriverContext *ctx, Tok *t, CK_SLOT_ID slot)
{
	CK_FUNCTION_LIST_PTR f = ctx->m->f;
	gint gen = g_atomic_int_get(&t->present_gen);
	CK_RV rv;

	if (t->sign_session != 0 && t->sign_gen == gen)
		return CKR_OK;
	if (t->sign_session != 0)
		f->C_CloseSession(t->sign_session);
	t->sign_session = 0;
	g_hash_table_remove_all(t->keys);
	rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &t->sign_session);
	if (rv != CKR_OK)
		t->sign_session = 0;
	t->sign_gen = gen;
	return rv;
}

static CK_RV
find_private_key(CsDriverContext *ctx, Tok *t, const char *key_id, KeyRef *out)
{
	CK_FUNCTION_LIST_PTR f = ctx->m->f;
	KeyRef *ref = g_hash_table_lookup(t->keys, key_id);
	CK_OBJECT_HANDLE o = 0;
	CK_ULONG n = 0;
	CK_RV rv;

	if (ref != NULL) {
		*out = *ref;
		return CKR_OK;
	}
	rv = find_objects(f, t->sign_session, CKO_PRIVATE_KEY, key_id, &o, 1, &n);
	if (rv != CKR_OK)
		return rv;
	if (n == 0)
		return CKR_KEY_HANDLE_INVALID;
	ref = g_new0(KeyRef, 1);
	ref->handle = o;
	{
		CK_ATTRIBUTE a = {CKA_KEY_TYPE, &ref->type, sizeof(ref->type)};
		rv = f->C_GetAttributeValue(t->sign_session, o, &a, 1);
	}
	if (rv != CKR_OK) {
		g_free(ref);
		return rv;
	}
	*out = *ref;
	g_hash_table_insert(t->keys, g_strdup(key_id), ref);
	return CKR_OK;
}

/* ECDSA r‖s → DER SEQUENCE { r, s }. */
static CsDriverStatus
ecdsa_to_der(const unsigned char *raw,
	     size_t raw_len,
	     unsigned char *sig,
	     size_t *sig_len,
	     CsDriverError *err)
{
	ECDSA_SIG *s = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(raw, (int)(raw_len / 2), NULL);
	BIGNUM *sv = BN_bin2bn(raw + raw_len / 2, (int)(raw_len / 2), NULL);
	int len;

	ECDSA_SIG_set0(s, r, sv);
	len = i2d_ECDSA_SIG(s, NULL);
	if (len <= 0 || (size_t)len > *sig_len) {
		ECDSA_SIG_free(s);
		*sig_len = len > 0 ? (size_t)len : 0;
		return fail(err, CS_DRIVER_ERR_BAD_ARGUMENT, "signature buffer too small");
	}
	{
		unsigned char *p = sig;
		*sig_len = (size_t)i2d_ECDSA_SIG(s, &p);
	}
	ECDSA_SIG_free(s);
	return CS_DRIVER_OK;
}

static CsDriverStatus
p11_sign(CsDriverContext *ctx,
	 const char *serial,
	 const char *key_id,
	 const char *digest,
	 const unsigned char *tbs,
	 size_t tbs_len,
	 unsigned char *sig,
	 size_t *sig_len,
	 CsDriverError *err)
{
	/* DER DigestInfo prefix for SHA-256 (RFC 8017 §9.2). */
	static const unsigned char sha256_prefix[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
						      0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
						      0x01, 0x05, 0x00, 0x04, 0x20};
	unsigned char input[sizeof(sha256_prefix) + 32];
	unsigned char raw[512];
	CK_ULONG raw_len = sizeof(raw);
	unsigned int md_len = 0;
	CK_SLOT_ID slot = 0;
	CK_MECHANISM mech = {0, NULL, 0};
	CK_FUNCTION_LIST_PTR f = ctx->m->f;
	CsDriverStatus status = CS_DRIVER_OK;
	KeyRef key = {0, 0};
	Tok *t;
	CK_RV rv;

	if (g_strcmp0(digest, "sha256") != 0)
		return fail(err, CS_DRIVER_ERR_NOT_SUPPORTED, "digest %s is not supported", digest);
	if (!EVP_Digest(tbs, tbs_len, input + sizeof(sha256_prefix), &md_len, EVP_sha256(), NULL))
		return fail(err, CS_DRIVER_ERR_FAILED, "hashing failed");
	memcpy(input, sha256_prefix, sizeof(sha256_prefix));
	if (seen_for(ctx, serial, &slot) == NULL)
		return fail(err, CS_DRIVER_ERR_NOT_FOUND, "no key %s is inserted", serial);
	t = tok_for(ctx, serial);
	g_mutex_lock(&t->sign_lock);
	rv = sign_session(ctx, t, slot);
	for (int attempt = 0; rv == CKR_OK && attempt < 2; attempt++) {
		gboolean cached = g_hash_table_contains(t->keys, key_id);

		rv = find_private_key(ctx, t, key_id, &key);
		if (rv == CKR_OK) {
			mech.mechanism = key.type == CKK_RSA ? CKM_RSA_PKCS : CKM_ECDSA;
			rv = f->C_SignInit(t->sign_session, &mech, key.handle);
		}
		/* A handle cached before a logout is stale (the module drops the handles of
		 * private objects at logout): look the key up again, once. */
		if (!cached || (rv != CKR_OBJECT_HANDLE_INVALID && rv != CKR_KEY_HANDLE_INVALID))
			break;
		g_hash_table_remove(t->keys, key_id);
		rv = CKR_OK;
	}
	if (rv == CKR_KEY_HANDLE_INVALID) {
		status =
		    fail(err, CS_DRIVER_ERR_NOT_FOUND, "no private key %s (logged in?)", key_id);
		goto out;
	}
	if (rv == CKR_OK && key.type == CKK_RSA)
		rv = f->C_Sign(t->sign_session, input, sizeof(input), raw, &raw_len);
	else if (rv == CKR_OK)
		rv = f->C_Sign(t->sign_session, input + sizeof(sha256_prefix), 32, raw, &raw_len);
	if (rv != CKR_OK) {
		if (rv_is_removal(rv) || rv == CKR_OBJECT_HANDLE_INVALID ||
		    rv == CKR_KEY_HANDLE_INVALID) {
			t->sign_session = 0;
			g_hash_table_remove_all(t->keys);
		}
		status = fail_rv(err, "signing", rv);
		goto out;
	}
	if (key.type == CKK_RSA) {
		if (raw_len > *sig_len) {
			*sig_len = raw_len;
			status =
			    fail(err, CS_DRIVER_ERR_BAD_ARGUMENT, "signature buffer too small");
			goto out;
		}
		memcpy(sig, raw, raw_len);
		*sig_len = raw_len;
	} else {
		status = ecdsa_to_der(raw, raw_len, sig, sig_len, err);
	}
out:
	g_mutex_unlock(&t->sign_lock);
	return status;
}

static const CsDriverOps ops = {
    .size = sizeof(CsDriverOps),
    .name = "pkcs11",
    .init = p11_init,
    .shutdown = p11_shutdown,
    .enumerate = p11_enumerate,
    .wait_for_event = p11_wait_for_event,
    .pin_status = p11_pin_status,
    .login = p11_login,
    .logout = p11_logout,
    .change_pin = p11_change_pin,
    .unblock = p11_unblock,
    .init_token = p11_init_token,
    .generate_key = p11_generate_key,
    .get_public_key = p11_get_public_key,
    .sign = p11_sign,
    .put_object = p11_put_object,
    .get_object = p11_get_object,
    .delete_object = p11_delete_object,
    .delete_key = p11_delete_key,
};

CS_DRIVER_EXPORT const CsDriverOps *certseal_driver_get_ops(void);
const CsDriverOps *
certseal_driver_get_ops(void)
{
	return &ops;
}
