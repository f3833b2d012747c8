/*
 * cs-keys.c — the key manager (see cs-keys.h for the threads).
 *
 * Invariants:
 * - The key table and the listener are touched on the main loop only; worker and watcher
 *   threads hand results over with g_main_context_invoke.
 * - Threads reach the manager through a refcounted Shared record. A result that arrives
 *   after the manager was freed finds shared->keys == NULL and is dropped, so a driver
 *   call that hangs past shutdown cannot touch freed memory.
 * - PIN copies live only in a request and are wiped (explicit_bzero) when it ends; they
 *   are never logged or put into errors (the drivers' messages do not carry them either).
 */
#define G_LOG_DOMAIN "certseald"

#include <errno.h>
#include <openssl/x509.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cs-ca.h"
#include "cs-crypto.h"
#include "cs-clock.h"
#include "cs-keys.h"
#include "cs-pin-policy.h"
#include "cs-seal.h"
#include "cs-validate.h"

#define WATCH_INTERVAL_MS 1000
/* A PKCS#11 token label is 32 bytes, blank-padded. */
#define TOKEN_LABEL_MAX 32

typedef struct {
	gint refs;
	GMutex lock;
	GCond cond;
	gboolean stopping;
	guint running; /* watcher threads alive + requests in flight */
	CsKeys *keys;  /* main loop only; NULL once freed */
} Shared;

typedef struct {
	Shared *shared;
	char *vendor_id;
	CsPinPolicy pin_policy; /* the vendor's [pin] rule for every PIN set on its keys */
	const CsLoadedDriver *driver;
	CsDriverContext *ctx;
	GThread *thread;
	gint refresh;	 /* bumped to make the watcher read every key's objects again */
	gboolean exited; /* shared->lock */
} Watcher;

typedef struct {
	CsKey key;
	Watcher *watcher;
	gint64 owner_used_us; /* key.owned: the owner's last call on it (monotonic clock) */
} Entry;

struct _CsKeys {
	Shared *shared;
	GPtrArray *watchers; /* Watcher* */
	GHashTable *table;   /* id → Entry* */
	GThreadPool *pool;
	GHashTable *making; /* ids of keys with a making step running */
	CsKeysFunc func;
	gpointer user_data;
	gboolean started;
	guint login_idle_s; /* an owner's login ends after this long without a call */
	guint idle_source;  /* the timer of the next idle logout, 0 when none */
};

static Shared *
shared_ref(Shared *s)
{
	g_atomic_int_inc(&s->refs);
	return s;
}

static void
shared_unref(Shared *s)
{
	if (!g_atomic_int_dec_and_test(&s->refs))
		return;
	g_mutex_clear(&s->lock);
	g_cond_clear(&s->cond);
	g_free(s);
}

static void
shared_leave(Shared *s)
{
	g_mutex_lock(&s->lock);
	s->running--;
	g_cond_broadcast(&s->cond);
	g_mutex_unlock(&s->lock);
}

static void
entry_free(Entry *e)
{
	g_free(e->key.id);
	g_free(e->key.vendor);
	g_free(e->key.serial);
	g_free(e->key.label);
	g_free(e->key.manufacturer);
	g_free(e->key.model);
	g_clear_pointer(&e->key.certificate, g_bytes_unref);
	g_free(e->key.certificate_subject);
	g_free(e->key.certificate_serial);
	g_free(e);
}

/* --- snapshots from the watchers ---------------------------------------------------- */

typedef struct {
	CsDriverTokenInfo info;
	CsDriverPinStatus pin;
	gboolean pin_known;
	gboolean objects_read; /* certificate and seal looked at in this snapshot */
	GBytes *certificate;
	gboolean has_seal;
} TokenSnap;

typedef struct {
	Shared *shared;
	Watcher *watcher;
	GArray *tokens; /* TokenSnap */
} Snapshot;

static void
snapshot_free(Snapshot *s)
{
	for (guint i = 0; i < s->tokens->len; i++)
		g_clear_pointer(&g_array_index(s->tokens, TokenSnap, i).certificate, g_bytes_unref);
	g_array_unref(s->tokens);
	shared_unref(s->shared);
	g_free(s);
}

static char *
key_id(const Watcher *w, const char *serial)
{
	return g_strdup_printf("%s_%s", w->driver->ops->name, serial);
}

static guint64
asn1_time_to_unix(const ASN1_TIME *t)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return (guint64)timegm(&tm);
}

/* Certificate fields for the properties; FALSE when @der is not a certificate. */
static void
key_set_certificate(CsKey *key, GBytes *der)
{
	const unsigned char *p;
	X509 *x;

	g_clear_pointer(&key->certificate, g_bytes_unref);
	g_clear_pointer(&key->certificate_subject, g_free);
	g_clear_pointer(&key->certificate_serial, g_free);
	key->not_before = key->not_after = 0;
	if (der == NULL)
		return;
	p = g_bytes_get_data(der, NULL);
	x = d2i_X509(NULL, &p, (long)g_bytes_get_size(der));
	if (x == NULL) {
		g_warning("key %s: the certificate on it does not parse", key->id);
		return;
	}
	key->certificate = g_bytes_ref(der);
	{
		BIO *bio = BIO_new(BIO_s_mem());
		BUF_MEM *mem = NULL;
		X509_NAME_print_ex(bio, X509_get_subject_name(x), 0,
				   XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
		BIO_get_mem_ptr(bio, &mem);
		key->certificate_subject = g_strndup(mem->data, mem->length);
		BIO_free(bio);
	}
	{
		BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
		char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
		key->certificate_serial = g_strdup(hex != NULL ? hex : "");
		OPENSSL_free(hex);
		BN_free(bn);
	}
	key->not_before = asn1_time_to_unix(X509_get0_notBefore(x));
	key->not_after = asn1_time_to_unix(X509_get0_notAfter(x));
	X509_free(x);
}

static gboolean
set_str(char **field, const char *value)
{
	if (g_strcmp0(*field, value) == 0)
		return FALSE;
	g_free(*field);
	*field = g_strdup(value);
	return TRUE;
}

static void
emit(CsKeys *self, CsKey *key, CsKeyChange change)
{
	if (self->func != NULL)
		self->func(self, key, change, self->user_data);
}

/* Apply the PIN state a driver reported; TRUE when something changed. */
static gboolean
apply_pin(CsKey *key, const CsDriverPinStatus *pin)
{
	gboolean changed = FALSE;
	int tries = pin->locked ? 0 : pin->tries_left;

	if (key->pin_tries_left != tries) {
		key->pin_tries_left = tries;
		changed = TRUE;
	}
	if (key->pin_locked != (pin->locked != 0)) {
		key->pin_locked = pin->locked != 0;
		changed = TRUE;
	}
	if (key->logged_in != (pin->logged_in != 0)) {
		key->logged_in = pin->logged_in != 0;
		changed = TRUE;
	}
	/* Logged out, however it happened: the key belongs to no one any more. */
	if (!key->logged_in)
		key->owned = FALSE;
	if (key->initialized != (pin->initialized != 0)) {
		key->initialized = pin->initialized != 0;
		changed = TRUE;
	}
	return changed;
}

/* Apply the certificate and seal read from the key; TRUE when something changed. */
static gboolean
apply_objects(CsKey *key, GBytes *certificate, gboolean has_seal)
{
	gboolean changed = FALSE;
	gboolean same_cert = (certificate == NULL && key->certificate == NULL) ||
			     (certificate != NULL && key->certificate != NULL &&
			      g_bytes_equal(certificate, key->certificate));

	if (!same_cert) {
		key_set_certificate(key, certificate);
		changed = TRUE;
	}
	if (key->has_seal != has_seal) {
		key->has_seal = has_seal;
		changed = TRUE;
	}
	return changed;
}

static gboolean
apply_snapshot(gpointer data)
{
	Snapshot *snap = data;
	CsKeys *self = snap->shared->keys;
	g_autoptr(GHashTable) seen = NULL;
	GHashTableIter iter;
	gpointer k, v;
	g_autoptr(GPtrArray) gone = NULL;

	if (self == NULL)
		goto out;
	seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	for (guint i = 0; i < snap->tokens->len; i++) {
		TokenSnap *t = &g_array_index(snap->tokens, TokenSnap, i);
		g_autofree char *id = key_id(snap->watcher, t->info.serial);
		Entry *e = g_hash_table_lookup(self->table, id);
		gboolean changed = FALSE;

		if (e != NULL && e->watcher != snap->watcher)
			continue; /* claimed by an earlier vendor profile */
		g_hash_table_add(seen, g_strdup(id));
		if (e == NULL) {
			e = g_new0(Entry, 1);
			e->watcher = snap->watcher;
			e->key.id = g_strdup(id);
			e->key.vendor = g_strdup(snap->watcher->vendor_id);
			e->key.serial = g_strdup(t->info.serial);
			e->key.label = g_strdup(t->info.label);
			e->key.manufacturer = g_strdup(t->info.manufacturer);
			e->key.model = g_strdup(t->info.model);
			e->key.pin_tries_left = -1;
			if (t->pin_known)
				apply_pin(&e->key, &t->pin);
			key_set_certificate(&e->key, t->certificate);
			e->key.has_seal = t->has_seal;
			g_hash_table_insert(self->table, e->key.id, e);
			g_info("key %s (vendor %s) inserted", e->key.id, e->key.vendor);
			emit(self, &e->key, CS_KEY_ADDED);
			continue;
		}
		changed |= set_str(&e->key.label, t->info.label);
		if (t->pin_known)
			changed |= apply_pin(&e->key, &t->pin);
		if (t->objects_read)
			changed |= apply_objects(&e->key, t->certificate, t->has_seal);
		if (changed)
			emit(self, &e->key, CS_KEY_CHANGED);
	}
	gone = g_ptr_array_new();
	g_hash_table_iter_init(&iter, self->table);
	while (g_hash_table_iter_next(&iter, &k, &v)) {
		Entry *e = v;
		if (e->watcher == snap->watcher && !g_hash_table_contains(seen, k))
			g_ptr_array_add(gone, e);
	}
	for (guint i = 0; i < gone->len; i++) {
		Entry *e = g_ptr_array_index(gone, i);
		g_info("key %s (vendor %s) removed", e->key.id, e->key.vendor);
		emit(self, &e->key, CS_KEY_REMOVED);
		g_hash_table_remove(self->table, e->key.id);
	}
out:
	snapshot_free(snap);
	return G_SOURCE_REMOVE;
}

static gboolean
watcher_should_stop(Watcher *w, guint wait_ms)
{
	Shared *s = w->shared;
	gboolean stop;
	gint64 deadline = g_get_monotonic_time() + (gint64)wait_ms * 1000;

	g_mutex_lock(&s->lock);
	while (!s->stopping && wait_ms > 0 && g_cond_wait_until(&s->cond, &s->lock, deadline))
		;
	stop = s->stopping;
	g_mutex_unlock(&s->lock);
	return stop;
}

/*
 * The two places of a key pair and its certificate on a key (the key pair's id is the
 * certificate's label): making uses the first; a renewal generates the new key pair in
 * the place the current certificate does not use, so the old one keeps working until the
 * new certificate is written beside it.
 */
static const char *const key_slots[] = {CS_KEY_PAIR_ID, CS_KEY_PAIR_ID_NEXT};

static const char *
other_slot(const char *slot)
{
	return g_strcmp0(slot, key_slots[0]) == 0 ? key_slots[1] : key_slots[0];
}

static gint64
der_not_after(GBytes *der)
{
	g_autoptr(X509) x = cs_x509_from_der(der);
	struct tm tm;

	if (x == NULL || ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1)
		return G_MAXINT64;
	return (gint64)timegm(&tm);
}

static char *
der_serial(GBytes *der)
{
	g_autoptr(X509) x = cs_x509_from_der(der);

	return x != NULL ? cs_serial_to_hex(X509_get0_serialNumber(x)) : NULL;
}

/*
 * The certificate the key shows and its place (*slot, may be NULL): while a renewal runs
 * both places may hold one, and the older (the earlier end) is the key's until the renewal
 * deleted it. CS_ERROR_NOT_FOUND when the key holds none.
 */
static GBytes *
read_certificate(const CsLoadedDriver *d,
		 CsDriverContext *ctx,
		 const char *serial,
		 const char **slot,
		 GError **error)
{
	GBytes *found[G_N_ELEMENTS(key_slots)] = {NULL};
	guint pick = 0;

	for (guint i = 0; i < G_N_ELEMENTS(key_slots); i++) {
		g_autoptr(GError) local = NULL;

		found[i] = cs_driver_run_get_object(d, ctx, serial, TRUE, key_slots[i], &local);
		if (found[i] == NULL && !g_error_matches(local, CS_ERROR, CS_ERROR_NOT_FOUND)) {
			g_clear_pointer(&found[0], g_bytes_unref);
			g_propagate_error(error, g_steal_pointer(&local));
			return NULL;
		}
	}
	if (found[0] == NULL && found[1] == NULL) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_NOT_FOUND,
				    "certificate: the key holds no certificate");
		return NULL;
	}
	if (found[0] == NULL ||
	    (found[1] != NULL && der_not_after(found[1]) < der_not_after(found[0])))
		pick = 1;
	if (slot != NULL)
		*slot = key_slots[pick];
	g_clear_pointer(&found[1 - pick], g_bytes_unref);
	return found[pick];
}

/* The certificate on key @serial (NULL when none or unreadable) and whether it holds a
 * seal (worker or watcher thread). */
static void
read_objects(Watcher *w, const char *serial, GBytes **certificate, gboolean *has_seal)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) seal = NULL;

	*certificate = read_certificate(w->driver, w->ctx, serial, NULL, &error);
	if (*certificate == NULL && !g_error_matches(error, CS_ERROR, CS_ERROR_NOT_FOUND))
		g_debug("vendor %s: key %s: %s", w->vendor_id, serial, error->message);
	g_clear_error(&error);
	seal =
	    cs_driver_run_get_object(w->driver, w->ctx, serial, FALSE, CS_KEY_SEAL_LABEL, &error);
	*has_seal = seal != NULL;
}

static gpointer
watcher_main(gpointer data)
{
	Watcher *w = data;
	g_autoptr(GHashTable) known = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	gint refresh = g_atomic_int_get(&w->refresh);

	for (;;) {
		g_autoptr(GArray) tokens = g_array_new(FALSE, TRUE, sizeof(CsDriverTokenInfo));
		g_autoptr(GError) error = NULL;
		g_autoptr(GHashTable) now =
		    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
		Snapshot *snap = g_new0(Snapshot, 1);
		gboolean supported = FALSE;

		snap->shared = shared_ref(w->shared);
		snap->watcher = w;
		snap->tokens = g_array_new(FALSE, TRUE, sizeof(TokenSnap));
		if (g_atomic_int_get(&w->refresh) != refresh) {
			refresh = g_atomic_int_get(&w->refresh);
			g_hash_table_remove_all(known);
		}
		if (!cs_driver_run_enumerate(w->driver, w->ctx, tokens, &error)) {
			g_debug("vendor %s: %s", w->vendor_id, error->message);
			g_clear_error(&error);
		}
		for (guint i = 0; i < tokens->len; i++) {
			TokenSnap t = {.info = g_array_index(tokens, CsDriverTokenInfo, i)};

			t.pin_known = cs_driver_run_pin_status(w->driver, w->ctx, t.info.serial,
							       &t.pin, &error);
			g_clear_error(&error);
			if (!g_hash_table_contains(known, t.info.serial)) {
				read_objects(w, t.info.serial, &t.certificate, &t.has_seal);
				t.objects_read = TRUE;
			}
			g_hash_table_add(now, g_strdup(t.info.serial));
			g_array_append_val(snap->tokens, t);
		}
		g_hash_table_remove_all(known);
		{
			GHashTableIter iter;
			gpointer k;
			g_hash_table_iter_init(&iter, now);
			while (g_hash_table_iter_next(&iter, &k, NULL))
				g_hash_table_add(known, g_strdup(k));
		}
		g_main_context_invoke(NULL, apply_snapshot, snap);
		if (watcher_should_stop(w, 0))
			break;
		/* An event or a timeout of wait_for_event: look again at once. No event
		 * support, or a failing wait: sleep one interval. */
		if (!cs_driver_run_wait_for_event(w->driver, w->ctx, WATCH_INTERVAL_MS, &supported,
						  &error) &&
		    (!supported || !g_error_matches(error, CS_ERROR, CS_ERROR_UNAVAILABLE)) &&
		    watcher_should_stop(w, WATCH_INTERVAL_MS))
			break;
	}
	g_mutex_lock(&w->shared->lock);
	w->exited = TRUE;
	g_mutex_unlock(&w->shared->lock);
	shared_leave(w->shared);
	return NULL;
}

/* --- requests ----------------------------------------------------------------------- */

typedef enum {
	REQ_LOGIN,
	REQ_LOGOUT,
	REQ_CHANGE_PIN,
	REQ_UNBLOCK,
	REQ_READ_SEAL,
	REQ_SEAL_DOCUMENT,
	REQ_MAKE_BEGIN,
	REQ_MAKE_FINISH,
} ReqKind;

typedef struct {
	Shared *shared;
	ReqKind kind;
	char *id;
	char *serial;
	Watcher *watcher;
	char *pin1;
	char *pin2;
	char *pin3;	  /* REQ_MAKE_BEGIN: the SO PIN */
	char *old_serial; /* a renewal (no PIN: the key is logged in): the certificate renewed */
	guint32 uid;	  /* REQ_LOGIN: who logs in (the key's owner once it succeeds) */
	CsKeysDoneFunc done;
	gpointer user_data;
	GBytes *result;
	GError *error;
	CsDriverPinStatus pin;
	gboolean pin_known;
	int fd; /* REQ_SEAL_DOCUMENT: the document, owned; -1 otherwise */
	char *filename;
	/* REQ_MAKE_BEGIN */
	char *label;
	char *algorithm;
	char *subject_cn;
	/* REQ_MAKE_FINISH */
	GBytes *cert_in;
	GBytes *seal_in;
	/* The key's objects as read back after a making step. */
	gboolean objects_read;
	GBytes *certificate;
	gboolean has_seal;
} Request;

static void
wipe(char **pin)
{
	if (*pin != NULL)
		explicit_bzero(*pin, strlen(*pin));
	g_clear_pointer(pin, g_free);
}

static void
request_free(Request *r)
{
	wipe(&r->pin1);
	wipe(&r->pin2);
	wipe(&r->pin3);
	g_free(r->id);
	g_free(r->serial);
	g_free(r->filename);
	g_free(r->label);
	g_free(r->algorithm);
	g_free(r->subject_cn);
	g_free(r->old_serial);
	g_clear_pointer(&r->cert_in, g_bytes_unref);
	g_clear_pointer(&r->seal_in, g_bytes_unref);
	g_clear_pointer(&r->certificate, g_bytes_unref);
	if (r->fd >= 0)
		close(r->fd);
	g_clear_pointer(&r->result, g_bytes_unref);
	g_clear_error(&r->error);
	shared_unref(r->shared);
	g_free(r);
}

static void schedule_idle_logout(CsKeys *self);

static gboolean
request_finish(gpointer data)
{
	Request *r = data;
	CsKeys *self = r->shared->keys;
	Entry *e = self != NULL ? g_hash_table_lookup(self->table, r->id) : NULL;
	gboolean changed = FALSE;

	if (e != NULL && r->pin_known)
		changed |= apply_pin(&e->key, &r->pin);
	if (e != NULL && r->objects_read)
		changed |= apply_objects(&e->key, r->certificate, r->has_seal);
	if (e != NULL && r->error == NULL && r->kind == REQ_LOGIN) {
		e->key.owned = TRUE;
		e->key.owner_uid = r->uid;
		e->owner_used_us = g_get_monotonic_time();
		schedule_idle_logout(self);
	} else if (e != NULL && r->error == NULL && r->kind == REQ_LOGOUT) {
		e->key.owned = FALSE;
	}
	if (changed)
		emit(self, &e->key, CS_KEY_CHANGED);
	/* A making step that failed half-way: what the key holds now is for the watcher to
	 * read again. */
	if (e != NULL && r->error != NULL &&
	    (r->kind == REQ_MAKE_BEGIN || r->kind == REQ_MAKE_FINISH))
		g_atomic_int_inc(&e->watcher->refresh);
	if (self != NULL && (r->kind == REQ_MAKE_BEGIN || r->kind == REQ_MAKE_FINISH))
		g_hash_table_remove(self->making, r->id);
	r->done(r->result, r->error, r->user_data);
	request_free(r);
	return G_SOURCE_REMOVE;
}

/* --- signing with the key pair on the token ----------------------------------------- */

typedef struct {
	const CsLoadedDriver *driver;
	CsDriverContext *ctx;
	const char *serial;
	const char *digest;
	const char *key_pair; /* the key pair's id on the token */
} TokenSigner;

/* CsSignFunc: DER(TBS_Sign) or a CSR's request info signed on the token with the key
 * pair @key_pair; the private key stays there. */
static GBytes *
sign_on_token(const guint8 *tbs, gsize len, gpointer user_data, GError **error)
{
	TokenSigner *ts = user_data;
	g_autoptr(GBytes) data = g_bytes_new_static(tbs, len);

	return cs_driver_run_sign(ts->driver, ts->ctx, ts->serial, ts->key_pair, ts->digest, data,
				  error);
}

/* --- sealing a document (worker thread) ---------------------------------------------- */

/* The whole document from @fd (from offset 0), refusing one that grew past the limit. */
static GBytes *
read_document(int fd, GError **error)
{
	GByteArray *buf = g_byte_array_new();
	guint8 chunk[65536];
	off_t off = 0;

	for (;;) {
		ssize_t n = pread(fd, chunk, sizeof(chunk), off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			g_byte_array_unref(buf);
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "fd: cannot read the document: %s", g_strerror(e));
			return NULL;
		}
		if (n == 0)
			break;
		if (buf->len + (gsize)n > CS_KEYS_DOCUMENT_MAX_SIZE) {
			g_byte_array_unref(buf);
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "fd: too large (more than %d MB)",
				    CS_KEYS_DOCUMENT_MAX_SIZE / (1024 * 1024));
			return NULL;
		}
		g_byte_array_append(buf, chunk, (guint)n);
		off += n;
	}
	return g_byte_array_free_to_bytes(buf);
}

static GBytes *
seal_document(Request *r, GError **error)
{
	const CsLoadedDriver *d = r->watcher->driver;
	CsDriverContext *ctx = r->watcher->ctx;
	CsDriverPinStatus pin = {0};
	g_autoptr(GError) local = NULL;
	g_autoptr(GBytes) seal = NULL;
	g_autoptr(GBytes) cert_der = NULL;
	g_autoptr(CsSealInfo) info = NULL;
	g_autoptr(GBytes) doc = NULL;
	g_autoptr(X509) cert = NULL;
	gboolean listed = FALSE;
	TokenSigner ts = {d, ctx, r->serial, NULL, CS_KEY_PAIR_ID};

	if (!cs_driver_run_pin_status(d, ctx, r->serial, &pin, error))
		return NULL;
	if (!pin.logged_in) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_ACCESS_DENIED,
				    "the key is not logged in: Login with its PIN first");
		return NULL;
	}
	seal = cs_driver_run_get_object(d, ctx, r->serial, FALSE, CS_KEY_SEAL_LABEL, &local);
	if (seal == NULL) {
		if (g_error_matches(local, CS_ERROR, CS_ERROR_NOT_FOUND))
			g_set_error_literal(error, CS_ERROR, CS_ERROR_NOT_FOUND,
					    "seal: the key holds no e-seal");
		else
			g_propagate_error(error, g_steal_pointer(&local));
		return NULL;
	}
	info = cs_seal_parse(g_bytes_get_data(seal, NULL), g_bytes_get_size(seal), &local);
	if (info == NULL) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "seal: the e-seal on the key does not parse: %s", local->message);
		return NULL;
	}
	cert_der = read_certificate(d, ctx, r->serial, &ts.key_pair, &local);
	if (cert_der == NULL) {
		if (g_error_matches(local, CS_ERROR, CS_ERROR_NOT_FOUND))
			g_set_error_literal(error, CS_ERROR, CS_ERROR_NOT_FOUND,
					    "certificate: the key holds no certificate");
		else
			g_propagate_error(error, g_steal_pointer(&local));
		return NULL;
	}
	cert = cs_x509_from_der(cert_der);
	if (cert == NULL) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "certificate: the certificate on the key does not parse");
		return NULL;
	}
	for (guint i = 0; i < info->holders->len; i++)
		listed |= X509_cmp(g_ptr_array_index(info->holders, i), cert) == 0;
	if (!listed) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "seal: the key's certificate is not in the e-seal's certList");
		return NULL;
	}
	ts.digest = cs_key_algorithm_digest(cs_key_algorithm_of(X509_get0_pubkey(cert), NULL));
	doc = read_document(r->fd, error);
	if (doc == NULL)
		return NULL;
	return cs_seal_sign_document(seal, cert, g_bytes_get_data(doc, NULL), g_bytes_get_size(doc),
				     r->filename, cs_clock_now(), sign_on_token, &ts, error);
}

/* --- making a key (worker thread) ---------------------------------------------------- */

/* The public key of the key pair CS_KEY_PAIR_ID as the driver returned it (DER SPKI). */
static EVP_PKEY *
public_key_from_spki(GBytes *spki, GError **error)
{
	const unsigned char *p = g_bytes_get_data(spki, NULL);
	EVP_PKEY *pub = d2i_PUBKEY(NULL, &p, (long)g_bytes_get_size(spki));

	if (pub == NULL)
		cs_ssl_fail(error, CS_ERROR_INTERNAL, "the token's public key does not parse");
	return pub;
}

/*
 * init_token with the SO PIN. A blank key takes it; a key already initialised takes it
 * only with the SO PIN it was initialised with (C_InitToken then initialises it again):
 * the key an earlier, interrupted making of the same order provisioned. Any other key
 * refuses the SO PIN and is not ours to make.
 */
static gboolean
make_init_token(Request *r, GError **error)
{
	const CsLoadedDriver *d = r->watcher->driver;
	CsDriverContext *ctx = r->watcher->ctx;
	CsDriverPinStatus pin = {0};
	g_autoptr(GError) local = NULL;

	if (!cs_driver_run_pin_status(d, ctx, r->serial, &pin, error))
		return FALSE;
	if (cs_driver_run_init_token(d, ctx, r->serial, r->label, r->pin1, r->pin3, &local))
		return TRUE;
	if (pin.initialized && (g_error_matches(local, CS_ERROR, CS_ERROR_PIN_INCORRECT) ||
				g_error_matches(local, CS_ERROR, CS_ERROR_PIN_LOCKED))) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "key: not blank: %s is initialised and refuses this order's "
			    "administrator PIN; insert a blank key",
			    r->id);
		return FALSE;
	}
	g_propagate_error(error, g_steal_pointer(&local));
	return FALSE;
}

/* The certificate and seal of an earlier making, if the re-initialisation left them
 * (SoftHSM2 wipes a token it initialises; some tokens keep objects). The drivers report
 * "nothing to delete" like a missing key (CS_ERROR_NO_KEY): a key that really went away
 * is caught by the next step. */
static gboolean
make_delete_leftovers(Request *r, GError **error)
{
	static const struct {
		gboolean is_certificate;
		const char *label;
	} objects[] = {{TRUE, CS_KEY_OBJECT_LABEL}, {FALSE, CS_KEY_SEAL_LABEL}};

	for (guint i = 0; i < G_N_ELEMENTS(objects); i++) {
		g_autoptr(GError) local = NULL;

		if (cs_driver_run_delete_object(r->watcher->driver, r->watcher->ctx, r->serial,
						objects[i].is_certificate, objects[i].label,
						&local) ||
		    g_error_matches(local, CS_ERROR, CS_ERROR_NO_KEY) ||
		    g_error_matches(local, CS_ERROR, CS_ERROR_UNAVAILABLE))
			continue;
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	return TRUE;
}

/* Logged in: a new key pair @key_pair and the CSR signed with it on the token. */
static GBytes *
make_key_pair_and_csr(Request *r, const char *key_pair, GError **error)
{
	const CsLoadedDriver *d = r->watcher->driver;
	CsDriverContext *ctx = r->watcher->ctx;
	CsKeyAlgorithm wanted = cs_key_algorithm_from_string(r->algorithm);
	g_autoptr(GBytes) spki = NULL;
	g_autoptr(EVP_PKEY) pub = NULL;
	g_autoptr(X509_NAME) subject = X509_NAME_new();
	TokenSigner ts = {d, ctx, r->serial, cs_key_algorithm_digest(wanted), key_pair};

	spki = cs_driver_run_generate_key(d, ctx, r->serial, key_pair, r->algorithm, error);
	if (spki == NULL)
		return NULL;
	pub = public_key_from_spki(spki, error);
	if (pub == NULL)
		return NULL;
	if (cs_key_algorithm_of(pub, NULL) != wanted) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL,
			    "the token generated a %s key instead of %s",
			    cs_key_algorithm_to_string(cs_key_algorithm_of(pub, NULL)),
			    r->algorithm);
		return NULL;
	}
	if (subject == NULL ||
	    X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8,
				       (const unsigned char *)r->subject_cn, -1, -1, 0) != 1) {
		cs_ssl_fail(error, CS_ERROR_INVALID_INPUT, "subject_cn");
		return NULL;
	}
	return cs_csr_build_signed(pub, subject, sign_on_token, &ts, error);
}

/* Log out after a step that logged in; its failure counts only when the step worked. */
static gboolean
make_logout(Request *r, gboolean ok, GError **error)
{
	g_autoptr(GError) local = NULL;

	if (cs_driver_run_logout(r->watcher->driver, r->watcher->ctx, r->serial, &local))
		return ok;
	if (ok)
		g_propagate_error(error, g_steal_pointer(&local));
	return FALSE;
}

static GBytes *
make_begin(Request *r, GError **error)
{
	g_autoptr(GBytes) csr = NULL;

	if (!make_init_token(r, error) ||
	    !cs_driver_run_login(r->watcher->driver, r->watcher->ctx, r->serial, r->pin1, error) ||
	    !make_delete_leftovers(r, error))
		return NULL;
	csr = make_key_pair_and_csr(r, CS_KEY_PAIR_ID, error);
	if (!make_logout(r, csr != NULL, error))
		return NULL;
	return g_steal_pointer(&csr);
}

/* Is @cert for the key pair @key_pair on the token? */
static gboolean
make_check_certificate(Request *r, X509 *cert, const char *key_pair, GError **error)
{
	const CsLoadedDriver *d = r->watcher->driver;
	CsDriverContext *ctx = r->watcher->ctx;
	g_autoptr(GError) local = NULL;
	g_autoptr(GBytes) spki = NULL;
	g_autoptr(EVP_PKEY) pub = NULL;
	CsDriverPinStatus pin;

	spki = cs_driver_run_get_public_key(d, ctx, r->serial, key_pair, &local);
	if (spki == NULL) {
		/* "Not found" is a missing key pair when the key itself still answers. */
		if (g_error_matches(local, CS_ERROR, CS_ERROR_NO_KEY) &&
		    cs_driver_run_pin_status(d, ctx, r->serial, &pin, NULL)) {
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "key: %s holds no key pair %s; begin the making first", r->id,
				    key_pair);
			return FALSE;
		}
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	pub = public_key_from_spki(spki, error);
	if (pub == NULL)
		return FALSE;
	if (EVP_PKEY_eq(pub, X509_get0_pubkey(cert)) != 1) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "certificate: not for the key pair on key %s", r->id);
		return FALSE;
	}
	return TRUE;
}

static gboolean
make_finish(Request *r, GError **error)
{
	const CsLoadedDriver *d = r->watcher->driver;
	CsDriverContext *ctx = r->watcher->ctx;
	g_autoptr(X509) cert = cs_x509_from_der(r->cert_in);
	gboolean ok;

	if (!cs_driver_run_login(d, ctx, r->serial, r->pin1, error))
		return FALSE;
	ok = make_check_certificate(r, cert, CS_KEY_PAIR_ID, error) &&
	     cs_driver_run_put_object(d, ctx, r->serial, TRUE, CS_KEY_OBJECT_LABEL, r->cert_in,
				      error) &&
	     cs_driver_run_put_object(d, ctx, r->serial, FALSE, CS_KEY_SEAL_LABEL, r->seal_in,
				      error);
	return make_logout(r, ok, error);
}

/* --- renewing a key (worker thread) --------------------------------------------------- */

/* The user logged in on the key (Key.Login): renewal passes no PIN. */
static gboolean
renew_check_login(Request *r, GError **error)
{
	CsDriverPinStatus pin = {0};

	if (!cs_driver_run_pin_status(r->watcher->driver, r->watcher->ctx, r->serial, &pin, error))
		return FALSE;
	if (pin.logged_in)
		return TRUE;
	g_set_error(error, CS_ERROR, CS_ERROR_ACCESS_DENIED,
		    "key: %s is not logged in: Login with the key's PIN first", r->id);
	return FALSE;
}

/* Ignore "nothing to delete" (reported like a missing key). */
static gboolean
delete_if_present(gboolean ok, GError *local, GError **error)
{
	if (ok || g_error_matches(local, CS_ERROR, CS_ERROR_NO_KEY) ||
	    g_error_matches(local, CS_ERROR, CS_ERROR_NOT_FOUND)) {
		g_clear_error(&local);
		return TRUE;
	}
	g_propagate_error(error, local);
	return FALSE;
}

/* The place whose certificate is @cert_serial, or NULL. */
static const char *
find_slot_of(Request *r, const char *cert_serial, GError **error)
{
	for (guint i = 0; i < G_N_ELEMENTS(key_slots); i++) {
		g_autoptr(GError) local = NULL;
		g_autoptr(GBytes) der = cs_driver_run_get_object(
		    r->watcher->driver, r->watcher->ctx, r->serial, TRUE, key_slots[i], &local);
		g_autofree char *hex = der != NULL ? der_serial(der) : NULL;

		if (der == NULL && !g_error_matches(local, CS_ERROR, CS_ERROR_NOT_FOUND)) {
			g_propagate_error(error, g_steal_pointer(&local));
			return NULL;
		}
		if (hex != NULL && g_ascii_strcasecmp(hex, cert_serial) == 0)
			return key_slots[i];
	}
	g_set_error(error, CS_ERROR, CS_ERROR_NOT_FOUND,
		    "certificate: key %s no longer holds certificate %s", r->id, cert_serial);
	return NULL;
}

/* Beside the key pair of the certificate renewed: a new key pair (replacing what an
 * interrupted renewal left there) and the CSR signed with it. */
static GBytes *
renew_begin(Request *r, GError **error)
{
	GError *local = NULL;
	const char *old_slot;
	const char *new_slot;
	gboolean ok;

	if (!renew_check_login(r, error))
		return NULL;
	old_slot = find_slot_of(r, r->old_serial, error);
	if (old_slot == NULL)
		return NULL;
	new_slot = other_slot(old_slot);
	ok = cs_driver_run_delete_object(r->watcher->driver, r->watcher->ctx, r->serial, TRUE,
					 new_slot, &local);
	if (!delete_if_present(ok, local, error))
		return NULL;
	return make_key_pair_and_csr(r, new_slot, error);
}

/* Write the new certificate where its key pair is, and the new seal; only then delete the
 * other place's certificate and key pair. Run again after an interruption, it finishes the
 * same way. */
static gboolean
renew_finish(Request *r, GError **error)
{
	const CsLoadedDriver *d = r->watcher->driver;
	CsDriverContext *ctx = r->watcher->ctx;
	g_autoptr(X509) cert = cs_x509_from_der(r->cert_in);
	const char *slot = NULL;
	GError *local = NULL;
	gboolean ok;

	if (!renew_check_login(r, error))
		return FALSE;
	for (guint i = 0; i < G_N_ELEMENTS(key_slots) && slot == NULL; i++) {
		g_autoptr(GError) mismatch = NULL;
		if (make_check_certificate(r, cert, key_slots[i], &mismatch))
			slot = key_slots[i];
		else if (g_error_matches(mismatch, CS_ERROR, CS_ERROR_KEY_REMOVED) ||
			 g_error_matches(mismatch, CS_ERROR, CS_ERROR_NO_KEY)) {
			g_propagate_error(error, g_steal_pointer(&mismatch));
			return FALSE;
		}
	}
	if (slot == NULL) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "certificate: not for a key pair on key %s", r->id);
		return FALSE;
	}
	if (!cs_driver_run_put_object(d, ctx, r->serial, TRUE, slot, r->cert_in, error) ||
	    !cs_driver_run_put_object(d, ctx, r->serial, FALSE, CS_KEY_SEAL_LABEL, r->seal_in,
				      error))
		return FALSE;
	ok = cs_driver_run_delete_object(d, ctx, r->serial, TRUE, other_slot(slot), &local);
	if (!delete_if_present(ok, local, error))
		return FALSE;
	local = NULL;
	ok = cs_driver_run_delete_key(d, ctx, r->serial, other_slot(slot), &local);
	return delete_if_present(ok, local, error);
}

static void
request_run(gpointer data, gpointer pool_data)
{
	Request *r = data;
	const CsLoadedDriver *d = r->watcher->driver;
	CsDriverContext *ctx = r->watcher->ctx;
	g_autoptr(GError) error = NULL;
	Shared *shared;

	switch (r->kind) {
	case REQ_LOGIN:
		cs_driver_run_login(d, ctx, r->serial, r->pin1, &r->error);
		break;
	case REQ_LOGOUT:
		cs_driver_run_logout(d, ctx, r->serial, &r->error);
		break;
	case REQ_CHANGE_PIN:
		cs_driver_run_change_pin(d, ctx, r->serial, r->pin1, r->pin2, &r->error);
		break;
	case REQ_UNBLOCK:
		cs_driver_run_unblock(d, ctx, r->serial, r->pin1, r->pin2, &r->error);
		g_info("key %s: user PIN reset with the SO PIN: %s", r->id,
		       r->error != NULL ? r->error->message : "done");
		break;
	case REQ_READ_SEAL:
		r->result = cs_driver_run_get_object(d, ctx, r->serial, FALSE, CS_KEY_SEAL_LABEL,
						     &r->error);
		break;
	case REQ_SEAL_DOCUMENT:
		r->result = seal_document(r, &r->error);
		g_info("key %s: sealing %s: %s", r->id, r->filename,
		       r->error != NULL ? r->error->message : "done");
		break;
	case REQ_MAKE_BEGIN:
		r->result =
		    r->old_serial != NULL ? renew_begin(r, &r->error) : make_begin(r, &r->error);
		break;
	case REQ_MAKE_FINISH:
		if (r->old_serial != NULL)
			renew_finish(r, &r->error);
		else
			make_finish(r, &r->error);
		break;
	}
	wipe(&r->pin1);
	wipe(&r->pin2);
	wipe(&r->pin3);
	if (r->kind == REQ_MAKE_BEGIN || r->kind == REQ_MAKE_FINISH) {
		/* A key that went away between two steps answers "no such key". */
		if (g_error_matches(r->error, CS_ERROR, CS_ERROR_NO_KEY))
			r->error->code = CS_ERROR_KEY_REMOVED;
		if (r->error == NULL) {
			read_objects(r->watcher, r->serial, &r->certificate, &r->has_seal);
			r->objects_read = TRUE;
		}
		g_info("key %s: %s: %s", r->id,
		       r->kind == REQ_MAKE_BEGIN ? "provisioning for making"
						 : "writing what was made",
		       r->error != NULL ? r->error->message : "done");
	}
	/* PinTriesLeft / PinLocked / LoggedIn right after the call, not a second later. */
	if (r->error == NULL || r->error->code == CS_ERROR_PIN_INCORRECT ||
	    r->error->code == CS_ERROR_PIN_LOCKED)
		r->pin_known = cs_driver_run_pin_status(d, ctx, r->serial, &r->pin, &error);
	/* request_finish may free @r on the main loop as soon as it is queued. */
	shared = shared_ref(r->shared);
	g_main_context_invoke(NULL, request_finish, r);
	shared_leave(shared);
	shared_unref(shared);
}

/* The entry of key @id, or CS_ERROR_KEY_REMOVED. */
static Entry *
lookup_entry(CsKeys *self, const char *id, GError **error)
{
	Entry *e = g_hash_table_lookup(self->table, id);

	if (e == NULL)
		g_set_error(error, CS_ERROR, CS_ERROR_KEY_REMOVED, "the key %s is not inserted",
			    id);
	return e;
}

/* A PIN set on the key must follow its vendor profile's [pin] policy. */
static gboolean
check_pin_policy(const Watcher *w, const char *field, const char *pin, GError **error)
{
	return cs_pin_policy_check(&w->pin_policy, field, pin, error);
}

static Request *
request_new(CsKeys *self, ReqKind kind, Entry *e, CsKeysDoneFunc done, gpointer user_data)
{
	Request *r = g_new0(Request, 1);

	r->shared = shared_ref(self->shared);
	r->kind = kind;
	r->id = g_strdup(e->key.id);
	r->serial = g_strdup(e->key.serial);
	r->watcher = e->watcher;
	r->fd = -1;
	r->done = done;
	r->user_data = user_data;
	return r;
}

static void
request_push(CsKeys *self, Request *r)
{
	g_mutex_lock(&self->shared->lock);
	self->shared->running++;
	g_mutex_unlock(&self->shared->lock);
	g_thread_pool_push(self->pool, r, NULL);
}

static void
submit_full(CsKeys *self,
	    ReqKind kind,
	    const char *id,
	    const char *pin1,
	    const char *pin2,
	    const char *filename,
	    int fd,
	    CsKeysDoneFunc done,
	    gpointer user_data)
{
	g_autoptr(GError) error = NULL;
	Entry *e = lookup_entry(self, id, &error);
	Request *r;

	if (e == NULL || (pin2 != NULL && !check_pin_policy(e->watcher, "new_pin", pin2, &error))) {
		if (fd >= 0)
			close(fd);
		done(NULL, error, user_data);
		return;
	}
	r = request_new(self, kind, e, done, user_data);
	r->pin1 = g_strdup(pin1);
	r->pin2 = g_strdup(pin2);
	r->filename = g_strdup(filename);
	r->fd = fd;
	request_push(self, r);
}

static void
submit(CsKeys *self,
       ReqKind kind,
       const char *id,
       const char *pin1,
       const char *pin2,
       CsKeysDoneFunc done,
       gpointer user_data)
{
	submit_full(self, kind, id, pin1, pin2, NULL, -1, done, user_data);
}

void
cs_keys_login(CsKeys *self,
	      const char *id,
	      guint32 uid,
	      const char *pin,
	      CsKeysDoneFunc done,
	      gpointer user_data)
{
	g_autoptr(GError) error = NULL;
	Entry *e = lookup_entry(self, id, &error);
	Request *r;

	if (e == NULL || !cs_keys_check_user(self, id, uid, &error)) {
		done(NULL, error, user_data);
		return;
	}
	r = request_new(self, REQ_LOGIN, e, done, user_data);
	r->pin1 = g_strdup(pin);
	r->uid = uid;
	request_push(self, r);
}

gboolean
cs_keys_check_user(CsKeys *self, const char *id, guint32 uid, GError **error)
{
	Entry *e = id != NULL ? g_hash_table_lookup(self->table, id) : NULL;

	if (e == NULL || !e->key.owned)
		return TRUE;
	if (e->key.owner_uid != uid) {
		g_set_error(error, CS_ERROR, CS_ERROR_ACCESS_DENIED,
			    "key: %s is logged in by another user; it serves only them until "
			    "they log out, it is removed or its login times out",
			    e->key.serial);
		return FALSE;
	}
	e->owner_used_us = g_get_monotonic_time();
	return TRUE;
}

static void
idle_logout_done(GBytes *result, const GError *error, gpointer user_data)
{
	g_autofree char *id = user_data;

	if (error != NULL)
		g_warning("key %s: logging out after the idle timeout: %s", id, error->message);
}

static gboolean
idle_logout(gpointer data)
{
	CsKeys *self = data;
	gint64 now = g_get_monotonic_time();
	gint64 idle_us = (gint64)self->login_idle_s * G_USEC_PER_SEC;
	g_autoptr(GPtrArray) expired = g_ptr_array_new();
	GHashTableIter iter;
	gpointer v;

	self->idle_source = 0;
	if (self->shared->stopping)
		return G_SOURCE_REMOVE; /* no driver call once the drivers may be going */
	g_hash_table_iter_init(&iter, self->table);
	while (g_hash_table_iter_next(&iter, NULL, &v)) {
		Entry *e = v;
		if (e->key.owned && now - e->owner_used_us >= idle_us)
			g_ptr_array_add(expired, e);
	}
	for (guint i = 0; i < expired->len; i++) {
		Entry *e = g_ptr_array_index(expired, i);
		g_info("key %s: logged out after %u s without a call of its user", e->key.id,
		       self->login_idle_s);
		e->key.owned = FALSE;
		submit(self, REQ_LOGOUT, e->key.id, NULL, NULL, idle_logout_done,
		       g_strdup(e->key.id));
	}
	schedule_idle_logout(self);
	return G_SOURCE_REMOVE;
}

/* A timer for the earliest idle deadline of an owned key; it looks again when it fires,
 * so a call that pushed a deadline back needs no new timer. */
static void
schedule_idle_logout(CsKeys *self)
{
	gint64 now = g_get_monotonic_time();
	gint64 first = G_MAXINT64;
	GHashTableIter iter;
	gpointer v;

	if (self->idle_source != 0 || self->shared->stopping)
		return;
	g_hash_table_iter_init(&iter, self->table);
	while (g_hash_table_iter_next(&iter, NULL, &v)) {
		Entry *e = v;
		if (e->key.owned)
			first = MIN(first,
				    e->owner_used_us + (gint64)self->login_idle_s * G_USEC_PER_SEC);
	}
	if (first == G_MAXINT64)
		return;
	self->idle_source = g_timeout_add(
	    (guint)MIN(MAX(first - now, 0) / 1000 + 1, (gint64)G_MAXUINT), idle_logout, self);
}

void
cs_keys_set_login_idle(CsKeys *self, guint seconds)
{
	self->login_idle_s = seconds > 0 ? seconds : 1;
}

void
cs_keys_logout(CsKeys *self, const char *id, CsKeysDoneFunc done, gpointer user_data)
{
	submit(self, REQ_LOGOUT, id, NULL, NULL, done, user_data);
}

void
cs_keys_change_pin(CsKeys *self,
		   const char *id,
		   const char *old_pin,
		   const char *new_pin,
		   CsKeysDoneFunc done,
		   gpointer user_data)
{
	submit(self, REQ_CHANGE_PIN, id, old_pin, new_pin, done, user_data);
}

void
cs_keys_unblock(CsKeys *self,
		const char *id,
		const char *so_pin,
		const char *new_pin,
		CsKeysDoneFunc done,
		gpointer user_data)
{
	submit(self, REQ_UNBLOCK, id, so_pin, new_pin, done, user_data);
}

char *
cs_keys_id_from_path(const char *path)
{
	const char *last = path != NULL ? strrchr(path, '/') : NULL;
	GString *id;

	if (last == NULL || last[1] == '\0')
		return NULL;
	id = g_string_new(NULL);
	/* sd_bus_path_encode: every byte but [A-Za-z0-9] is "_" and two hex digits. */
	for (const char *p = last + 1; *p != '\0'; p++) {
		int hi, lo;
		if (g_ascii_isalnum(*p)) {
			g_string_append_c(id, *p);
			continue;
		}
		if (*p != '_' || (hi = g_ascii_xdigit_value(p[1])) < 0 ||
		    (lo = g_ascii_xdigit_value(p[2])) < 0) {
			g_string_free(id, TRUE);
			return NULL;
		}
		g_string_append_c(id, (char)(hi * 16 + lo));
		p += 2;
	}
	return g_string_free(id, FALSE);
}

void
cs_keys_read_seal(CsKeys *self, const char *id, CsKeysDoneFunc done, gpointer user_data)
{
	submit(self, REQ_READ_SEAL, id, NULL, NULL, done, user_data);
}

void
cs_keys_seal_document(CsKeys *self,
		      const char *id,
		      const char *filename,
		      int fd,
		      CsKeysDoneFunc done,
		      gpointer user_data)
{
	Entry *e = g_hash_table_lookup(self->table, id);
	g_autoptr(GError) error = NULL;
	struct stat st;

	/* fstat only here; the bytes are read on the worker. */
	if (fstat(fd, &st) != 0)
		error = g_error_new(CS_ERROR, CS_ERROR_INVALID_INPUT, "fd: cannot fstat: %s",
				    g_strerror(errno));
	else if (!S_ISREG(st.st_mode))
		error = g_error_new_literal(CS_ERROR, CS_ERROR_INVALID_INPUT,
					    "fd: must be a regular file or memfd");
	else if (st.st_size > CS_KEYS_DOCUMENT_MAX_SIZE)
		error = g_error_new(
		    CS_ERROR, CS_ERROR_INVALID_INPUT, "fd: too large (%lld bytes; at most %d MB)",
		    (long long)st.st_size, CS_KEYS_DOCUMENT_MAX_SIZE / (1024 * 1024));
	else if (filename == NULL || filename[0] == '\0' || !g_str_is_ascii(filename) ||
		 strlen(filename) > 255)
		error = g_error_new_literal(CS_ERROR, CS_ERROR_INVALID_INPUT,
					    "filename: must be 1 to 255 ASCII characters");
	else if (e != NULL && !e->key.logged_in)
		error = g_error_new_literal(CS_ERROR, CS_ERROR_ACCESS_DENIED,
					    "the key is not logged in: Login with its PIN first");
	if (error != NULL) {
		close(fd);
		done(NULL, error, user_data);
		return;
	}
	submit_full(self, REQ_SEAL_DOCUMENT, id, NULL, NULL, filename, fd, done, user_data);
}

/* One making step at a time on a key: a second one would interleave its token calls. */
static gboolean
check_not_making(CsKeys *self, const char *id, GError **error)
{
	if (!g_hash_table_contains(self->making, id))
		return TRUE;
	g_set_error(error, CS_ERROR, CS_ERROR_UNAVAILABLE,
		    "key: a making step is already running on %s", id);
	return FALSE;
}

static gboolean
check_make_begin(const char *label, const char *algorithm, const char *subject_cn, GError **error)
{
	if (label == NULL || !cs_validate_text(label, TOKEN_LABEL_MAX, error) ||
	    strlen(label) > TOKEN_LABEL_MAX) {
		g_clear_error(error);
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "label: must be 1 to %d bytes of printable UTF-8", TOKEN_LABEL_MAX);
		return FALSE;
	}
	if (cs_key_algorithm_from_string(algorithm) == CS_KEY_UNSUPPORTED) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "algorithm: must be rsa-2048, ec-p256 or sm2");
		return FALSE;
	}
	if (subject_cn == NULL || !cs_validate_text(subject_cn, CS_SUBJECT_NAME_MAX, error)) {
		if (subject_cn == NULL)
			g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "missing");
		g_prefix_error(error, "subject_cn: ");
		return FALSE;
	}
	return TRUE;
}

void
cs_keys_make_begin(CsKeys *self,
		   const char *id,
		   const char *label,
		   const char *user_pin,
		   const char *so_pin,
		   const char *algorithm,
		   const char *subject_cn,
		   CsKeysDoneFunc done,
		   gpointer user_data)
{
	g_autoptr(GError) error = NULL;
	Entry *e = lookup_entry(self, id, &error);
	Request *r;

	if (e == NULL || !check_not_making(self, id, &error) ||
	    !check_make_begin(label, algorithm, subject_cn, &error) ||
	    !check_pin_policy(e->watcher, "user_pin", user_pin, &error) ||
	    !check_pin_policy(e->watcher, "so_pin", so_pin, &error)) {
		done(NULL, error, user_data);
		return;
	}
	g_hash_table_add(self->making, g_strdup(id));
	r = request_new(self, REQ_MAKE_BEGIN, e, done, user_data);
	r->pin1 = g_strdup(user_pin);
	r->pin3 = g_strdup(so_pin);
	r->label = g_strdup(label);
	r->algorithm = g_strdup(algorithm);
	r->subject_cn = g_strdup(subject_cn);
	request_push(self, r);
}

/* The certificate and seal to write: a certificate, and a seal that lists it. */
static gboolean
check_make_finish(GBytes *cert_der, GBytes *seal_der, GError **error)
{
	g_autoptr(X509) cert = cert_der != NULL ? cs_x509_from_der(cert_der) : NULL;
	g_autoptr(CsSealInfo) info = NULL;
	gboolean listed = FALSE;

	if (cert == NULL) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "certificate: not a DER X.509 certificate");
		return FALSE;
	}
	if (seal_der == NULL) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "seal: missing");
		return FALSE;
	}
	info = cs_seal_parse(g_bytes_get_data(seal_der, NULL), g_bytes_get_size(seal_der), error);
	if (info == NULL)
		return FALSE;
	for (guint i = 0; i < info->holders->len; i++)
		listed |= X509_cmp(g_ptr_array_index(info->holders, i), cert) == 0;
	if (!listed) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "seal: the certificate is not in the e-seal's certList");
		return FALSE;
	}
	return TRUE;
}

void
cs_keys_make_finish(CsKeys *self,
		    const char *id,
		    const char *user_pin,
		    GBytes *cert_der,
		    GBytes *seal_der,
		    CsKeysDoneFunc done,
		    gpointer user_data)
{
	g_autoptr(GError) error = NULL;
	Entry *e = lookup_entry(self, id, &error);
	Request *r;

	if (e == NULL || !check_not_making(self, id, &error) ||
	    !check_make_finish(cert_der, seal_der, &error) ||
	    !check_pin_policy(e->watcher, "user_pin", user_pin, &error)) {
		done(NULL, error, user_data);
		return;
	}
	g_hash_table_add(self->making, g_strdup(id));
	r = request_new(self, REQ_MAKE_FINISH, e, done, user_data);
	r->pin1 = g_strdup(user_pin);
	r->cert_in = g_bytes_ref(cert_der);
	r->seal_in = g_bytes_ref(seal_der);
	request_push(self, r);
}

void
cs_keys_renew_begin(CsKeys *self,
		    const char *id,
		    const char *old_serial,
		    const char *algorithm,
		    const char *subject_cn,
		    CsKeysDoneFunc done,
		    gpointer user_data)
{
	g_autoptr(GError) error = NULL;
	Entry *e = lookup_entry(self, id, &error);
	Request *r;

	if (e == NULL || !check_not_making(self, id, &error) ||
	    !check_make_begin(CS_KEY_OBJECT_LABEL, algorithm, subject_cn, &error)) {
		done(NULL, error, user_data);
		return;
	}
	if (old_serial == NULL || *old_serial == '\0') {
		g_set_error_literal(&error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "certificate_serial: missing");
		done(NULL, error, user_data);
		return;
	}
	g_hash_table_add(self->making, g_strdup(id));
	r = request_new(self, REQ_MAKE_BEGIN, e, done, user_data);
	r->old_serial = g_strdup(old_serial);
	r->algorithm = g_strdup(algorithm);
	r->subject_cn = g_strdup(subject_cn);
	request_push(self, r);
}

void
cs_keys_renew_finish(CsKeys *self,
		     const char *id,
		     GBytes *cert_der,
		     GBytes *seal_der,
		     CsKeysDoneFunc done,
		     gpointer user_data)
{
	g_autoptr(GError) error = NULL;
	Entry *e = lookup_entry(self, id, &error);
	Request *r;

	if (e == NULL || !check_not_making(self, id, &error) ||
	    !check_make_finish(cert_der, seal_der, &error)) {
		done(NULL, error, user_data);
		return;
	}
	g_hash_table_add(self->making, g_strdup(id));
	r = request_new(self, REQ_MAKE_FINISH, e, done, user_data);
	r->old_serial = g_strdup("-"); /* a renewal: no PIN, the other place cleared */
	r->cert_in = g_bytes_ref(cert_der);
	r->seal_in = g_bytes_ref(seal_der);
	request_push(self, r);
}

void
cs_keys_refresh_objects(CsKeys *self, const char *id)
{
	Entry *e = g_hash_table_lookup(self->table, id);

	if (e != NULL)
		g_atomic_int_inc(&e->watcher->refresh);
}

/* --- life and lookups --------------------------------------------------------------- */

CsKeys *
cs_keys_new(void)
{
	CsKeys *self = g_new0(CsKeys, 1);

	self->shared = g_new0(Shared, 1);
	self->shared->refs = 1;
	g_mutex_init(&self->shared->lock);
	g_cond_init(&self->shared->cond);
	self->shared->keys = self;
	self->watchers = g_ptr_array_new();
	self->table =
	    g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)entry_free);
	self->pool = g_thread_pool_new(request_run, self, 4, FALSE, NULL);
	self->making = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	self->login_idle_s = 15 * 60;
	return self;
}

void
cs_keys_add_vendor(CsKeys *self,
		   const CsVendor *vendor,
		   const CsLoadedDriver *driver,
		   CsDriverContext *ctx)
{
	Watcher *w = g_new0(Watcher, 1);

	w->shared = self->shared;
	w->vendor_id = g_strdup(vendor->id);
	w->pin_policy = cs_pin_policy_for_vendor(vendor);
	w->driver = driver;
	w->ctx = ctx;
	g_ptr_array_add(self->watchers, w);
}

void
cs_keys_start(CsKeys *self)
{
	if (self->started)
		return;
	self->started = TRUE;
	for (guint i = 0; i < self->watchers->len; i++) {
		Watcher *w = g_ptr_array_index(self->watchers, i);
		if (!cs_driver_has_op(w->driver, enumerate))
			continue;
		g_mutex_lock(&self->shared->lock);
		self->shared->running++;
		g_mutex_unlock(&self->shared->lock);
		w->thread = g_thread_new("cs-key-watch", watcher_main, w);
	}
}

void
cs_keys_set_listener(CsKeys *self, CsKeysFunc func, gpointer user_data)
{
	self->func = func;
	self->user_data = user_data;
}

gboolean
cs_keys_stop(CsKeys *self, guint timeout_ms)
{
	Shared *s = self->shared;
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
	gboolean idle;

	g_mutex_lock(&s->lock);
	s->stopping = TRUE;
	g_cond_broadcast(&s->cond);
	while (s->running > 0 && g_cond_wait_until(&s->cond, &s->lock, deadline))
		;
	idle = s->running == 0;
	g_mutex_unlock(&s->lock);
	if (!idle)
		g_warning("a key driver call is still running after %u ms; leaving it behind",
			  timeout_ms);
	return idle;
}

void
cs_keys_free(CsKeys *self)
{
	gboolean idle;

	if (self == NULL)
		return;
	idle = cs_keys_stop(self, 0);
	if (self->idle_source != 0)
		g_source_remove(self->idle_source);
	self->shared->keys = NULL;
	for (guint i = 0; i < self->watchers->len; i++) {
		Watcher *w = g_ptr_array_index(self->watchers, i);
		gboolean done;

		g_mutex_lock(&self->shared->lock);
		done = w->thread == NULL || w->exited;
		g_mutex_unlock(&self->shared->lock);
		/* A watcher stuck in a driver call keeps its record (it is on its stack). */
		if (w->thread != NULL && done)
			g_thread_join(w->thread);
		else if (w->thread != NULL)
			g_thread_unref(w->thread);
		if (done) {
			g_free(w->vendor_id);
			g_free(w);
		}
	}
	g_ptr_array_unref(self->watchers);
	g_thread_pool_free(self->pool, TRUE, idle);
	g_hash_table_unref(self->table);
	g_hash_table_unref(self->making);
	shared_unref(self->shared);
	g_free(self);
}

static gint
compare_keys(gconstpointer a, gconstpointer b)
{
	return g_strcmp0((*(CsKey *const *)a)->id, (*(CsKey *const *)b)->id);
}

GPtrArray *
cs_keys_list(CsKeys *self)
{
	GPtrArray *list = g_ptr_array_new();
	GHashTableIter iter;
	gpointer v;

	g_hash_table_iter_init(&iter, self->table);
	while (g_hash_table_iter_next(&iter, NULL, &v))
		g_ptr_array_add(list, &((Entry *)v)->key);
	g_ptr_array_sort(list, compare_keys);
	return list;
}

CsKey *
cs_keys_lookup(CsKeys *self, const char *id)
{
	Entry *e = g_hash_table_lookup(self->table, id);

	return e != NULL ? &e->key : NULL;
}

CsKey *
cs_keys_get_single(CsKeys *self, GError **error)
{
	g_autoptr(GPtrArray) list = cs_keys_list(self);

	if (list->len == 0) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_NO_KEY, "no USB key is inserted");
		return NULL;
	}
	if (list->len > 1) {
		g_set_error(error, CS_ERROR, CS_ERROR_MULTIPLE_KEYS,
			    "%u USB keys are inserted; insert only the one to use", list->len);
		return NULL;
	}
	return g_ptr_array_index(list, 0);
}

void
cs_keys_update_for_test(CsKeys *self, const char *vendor_id, const char *serial)
{
	Entry *e = g_new0(Entry, 1);

	e->key.id = g_strdup_printf("test_%s", serial);
	e->key.vendor = g_strdup(vendor_id);
	e->key.serial = g_strdup(serial);
	e->key.pin_tries_left = -1;
	g_hash_table_replace(self->table, e->key.id, e);
	emit(self, &e->key, CS_KEY_ADDED);
}
