/*
 * cs-keys.h — the key manager: which USB keys are inserted, their PIN state and their
 * certificate, and the token work the fronts ask for (docs/architecture.md §1.7, §3.1, §3.3).
 *
 * Threads: each vendor profile with a driver has a watcher thread that polls the driver
 * (enumerate + pin_status, woken early by wait_for_event where supported) and hands a
 * snapshot to the main loop; requests (login, change PIN, read seal, sealing, the token
 * side of key making, …) run on a small pool of worker threads. Every result comes back
 * to the main context with g_main_context_invoke, so the key table and the listeners
 * live on the main loop only, and a slow or hung token never blocks it.
 *
 * A key's id is "<driver>_<serial>", the stable id of docs/architecture.md §3.1; when two vendor
 * profiles of the same driver both claim a token, the first profile (by id) keeps it.
 */
#pragma once

#include <glib.h>

#include "cs-config.h"
#include "cs-loader.h"

G_BEGIN_DECLS

/* Where the daemon keeps a key's certificate and e-seal (labels on the token). */
#define CS_KEY_OBJECT_LABEL "certseal"
#define CS_KEY_SEAL_LABEL "certseal-seal"
/* The key pair on the token whose certificate is CS_KEY_OBJECT_LABEL (its CKA_ID/label). */
#define CS_KEY_PAIR_ID "certseal"
/* The other place of a key pair and its certificate (same id and label): a renewal puts
 * the new ones where the current certificate is not, and deletes the old ones once the new
 * certificate and seal are written. The key shows the older certificate while both are
 * there. */
#define CS_KEY_PAIR_ID_NEXT "certseal-2"
/* The largest document SealDocument reads (bytes). */
#define CS_KEYS_DOCUMENT_MAX_SIZE (64 * 1024 * 1024)

typedef struct _CsKeys CsKeys;

typedef struct {
	char *id;
	char *vendor;
	char *serial;
	char *label;
	char *manufacturer;
	char *model;
	int pin_tries_left; /* -1 when unknown */
	gboolean pin_locked;
	gboolean logged_in;
	/* While logged in: the uid that logged in owns the key (cs_keys_check_user). */
	gboolean owned;
	guint32 owner_uid;
	gboolean initialized; /* FALSE for a blank key waiting for making (or not yet known) */
	gboolean has_seal;
	GBytes *certificate; /* DER, NULL when none */
	char *certificate_subject;
	char *certificate_serial;
	guint64 not_before; /* seconds since the epoch, 0 without a certificate */
	guint64 not_after;
} CsKey;

typedef enum {
	CS_KEY_ADDED,	/* after it entered the table */
	CS_KEY_CHANGED, /* after its properties changed */
	CS_KEY_REMOVED, /* before it leaves the table */
} CsKeyChange;

typedef void (*CsKeysFunc)(CsKeys *keys, CsKey *key, CsKeyChange change, gpointer user_data);
/* The result of a request, on the main loop. @result: the bytes read (ReadSeal), the
 * signature (SealDocument), the CSR (make_begin), or NULL. */
typedef void (*CsKeysDoneFunc)(GBytes *result, const GError *error, gpointer user_data);

CsKeys *cs_keys_new(void);
/* Watch the tokens of one vendor profile (all borrowed; they outlive the manager). */
void cs_keys_add_vendor(CsKeys *keys,
			const CsVendor *vendor,
			const CsLoadedDriver *driver,
			CsDriverContext *ctx);
/* Start the watchers; keys appear from now on. */
void cs_keys_start(CsKeys *keys);
void cs_keys_set_listener(CsKeys *keys, CsKeysFunc func, gpointer user_data);
/*
 * Stop the watchers and wait for running requests, at most @timeout_ms. Returns FALSE
 * when a driver call is still running: the caller must then not shut the drivers down.
 */
gboolean cs_keys_stop(CsKeys *keys, guint timeout_ms);
void cs_keys_free(CsKeys *keys);

/* The keys present, sorted by id (borrowed, valid until the main loop runs again). */
GPtrArray *cs_keys_list(CsKeys *keys);
CsKey *cs_keys_lookup(CsKeys *keys, const char *id);
/*
 * The single key inserted, for the flows where the manual allows only one key (renewal,
 * download): CS_ERROR_NO_KEY when none, CS_ERROR_MULTIPLE_KEYS when more than one,
 * whatever their vendors.
 */
CsKey *cs_keys_get_single(CsKeys *keys, GError **error);

/* Read the certificate and seal of key @id again (after a flow wrote them). */
void cs_keys_refresh_objects(CsKeys *keys, const char *id);

/* Requests; @done runs on the main loop. PINs are copied and wiped after use. A new PIN
 * must fit the vendor profile's [pin] min_length..max_length (InvalidInput otherwise). */
/* A successful login makes @uid the key's owner (see cs_keys_check_user). */
void cs_keys_login(CsKeys *keys,
		   const char *id,
		   guint32 uid,
		   const char *pin,
		   CsKeysDoneFunc done,
		   gpointer user_data);
void cs_keys_logout(CsKeys *keys, const char *id, CsKeysDoneFunc done, gpointer user_data);
void cs_keys_change_pin(CsKeys *keys,
			const char *id,
			const char *old_pin,
			const char *new_pin,
			CsKeysDoneFunc done,
			gpointer user_data);
/* Reset the user PIN of key @id to @new_pin with its SO PIN (the driver's unblock: SO
 * login + C_InitPIN); the key's tries are restored and PinTriesLeft read again at once. */
void cs_keys_unblock(CsKeys *keys,
		     const char *id,
		     const char *so_pin,
		     const char *new_pin,
		     CsKeysDoneFunc done,
		     gpointer user_data);
/* The key id a Key's D-Bus object path ends with (…/keys/pkcs11_5fKA0001 → "pkcs11_KA0001"),
 * or NULL when @path is not one. */
char *cs_keys_id_from_path(const char *path);
void cs_keys_read_seal(CsKeys *keys, const char *id, CsKeysDoneFunc done, gpointer user_data);
/*
 * Seal a document (docs/architecture.md §3.3 SealDocument, §9): @fd must be a regular file or a
 * memfd of at most CS_KEYS_DOCUMENT_MAX_SIZE bytes (checked with fstat before anything is read;
 * InvalidInput naming "fd" otherwise) and is taken over (closed when done). On a worker thread: the
 * key must be logged in (AccessDenied), its seal is read and parsed, its certificate must be in the
 * seal's certList, the document is read and hashed, and DER(TBS_Sign) is signed on the token with
 * CS_KEY_PAIR_ID. @filename becomes the signature's propertyInfo. Result: DER SES_Signature.
 */
void cs_keys_seal_document(CsKeys *keys,
			   const char *id,
			   const char *filename,
			   int fd,
			   CsKeysDoneFunc done,
			   gpointer user_data);

/*
 * Key making, the token side of approved → making → made (docs/architecture.md §1.1). Both run on a
 * worker thread like the requests above; PINs are copied, wiped after use and never
 * logged or put into errors. Both PINs must fit the vendor profile's [pin]
 * min_length..max_length (InvalidInput naming "user_pin" / "so_pin" otherwise).
 *
 * cs_keys_make_begin: provision key @id and return (as @result) a DER PKCS#10 request:
 * - the key must be blank, or already initialised with @so_pin — the key that an earlier,
 *   interrupted making of the same order initialised: it is initialised again. A key that
 *   refuses @so_pin is someone else's: InvalidInput "key: not blank …", and it is left
 *   as it was;
 * - init_token(@label, @user_pin, @so_pin), then login with @user_pin;
 * - the certificate CS_KEY_OBJECT_LABEL and the seal CS_KEY_SEAL_LABEL are deleted if the
 *   re-initialisation left them, and a new key pair CS_KEY_PAIR_ID of @algorithm
 *   ("rsa-2048", "ec-p256" or "sm2", as in the vendor profile; InvalidInput naming
 *   "algorithm" otherwise; a token that cannot generate it fails with the driver's
 *   error) replaces any earlier one;
 * - the request (subject CN=@subject_cn, 1–64 characters, InvalidInput naming
 *   "subject_cn"; @label 1–32 bytes, InvalidInput naming "label") is assembled here and
 *   signed on the token with the key pair (cs_csr_build_signed); then logout.
 * Errors: the key absent or pulled at any step → CS_ERROR_KEY_REMOVED; any other driver
 * failure → its mapped error with the driver's message. Whatever step fails, the key is
 * left blank or initialised with @so_pin, so making it again with the same SO PIN works.
 *
 * cs_keys_make_finish: write what the CA and the seal maker made for it: @cert_der must
 * be a DER certificate and @seal_der a DER e-seal listing it (InvalidInput naming
 * "certificate" / "seal" otherwise). On the worker: login with @user_pin, check that the
 * certificate is for the key pair CS_KEY_PAIR_ID on the token (InvalidInput
 * "certificate: …"), put the certificate (CS_KEY_OBJECT_LABEL) and the seal
 * (CS_KEY_SEAL_LABEL), replacing earlier ones, logout. Errors as for make_begin.
 *
 * One making step runs at a time on a key: another one asked for meanwhile is refused
 * with CS_ERROR_UNAVAILABLE "key: a making step is already running …".
 *
 * When either succeeds, the key's certificate, seal and PIN state (initialized, LoggedIn)
 * are read back before @done runs, so the Key's properties already show the result (a
 * CS_KEY_CHANGED is emitted first); after a failure the watcher reads them again.
 */
void cs_keys_make_begin(CsKeys *keys,
			const char *id,
			const char *label,
			const char *user_pin,
			const char *so_pin,
			const char *algorithm,
			const char *subject_cn,
			CsKeysDoneFunc done,
			gpointer user_data);
void cs_keys_make_finish(CsKeys *keys,
			 const char *id,
			 const char *user_pin,
			 GBytes *cert_der,
			 GBytes *seal_der,
			 CsKeysDoneFunc done,
			 gpointer user_data);

/*
 * Renewal, the token side (docs/architecture.md §1.2). No PIN passes: the user logged in on the key
 * (AccessDenied "key: … is not logged in: Login …" otherwise), and the PIN does not change.
 *
 * cs_keys_renew_begin: the key must hold the certificate @old_serial (hex; NotFound
 * "certificate: key … no longer holds certificate …" otherwise). In the other place
 * (CS_KEY_PAIR_ID / CS_KEY_PAIR_ID_NEXT) what an interrupted renewal left is deleted and
 * a new key pair of @algorithm generated; the result is the CSR (CN=@subject_cn) signed on
 * the token with it. The old certificate and key pair are untouched.
 *
 * cs_keys_renew_finish: @cert_der must be for one of the key pairs on the key; it is
 * written in that key pair's place, then the seal (replacing the old one), then the other
 * place's certificate and key pair are deleted (driver ABI 1.1 delete_key). Running it again
 * after an interruption finishes the same way.
 *
 * Errors, the one-at-a-time rule and the read-back are those of key making.
 */
void cs_keys_renew_begin(CsKeys *keys,
			 const char *id,
			 const char *old_serial,
			 const char *algorithm,
			 const char *subject_cn,
			 CsKeysDoneFunc done,
			 gpointer user_data);
void cs_keys_renew_finish(CsKeys *keys,
			  const char *id,
			  GBytes *cert_der,
			  GBytes *seal_der,
			  CsKeysDoneFunc done,
			  gpointer user_data);

/*
 * A key belongs to the uid that logged in to it: while it is logged in, every use of key
 * @id on behalf of another uid (root included) is refused with AccessDenied — a PIN one
 * person entered never serves another. The login lasts across the owner's connections
 * until Logout, the key's removal, or cs_keys_set_login_idle seconds without a call the
 * owner made (TRUE here counts as one), after which the key is logged out. TRUE for a key
 * not logged in, logged in by @uid, logged in with no owner (from outside the daemon), or
 * not inserted (the request itself then says so).
 */
gboolean cs_keys_check_user(CsKeys *keys, const char *id, guint32 uid, GError **error);
/* The idle timeout of an owner's login ([daemon] key_login_idle_s), default 900 s. */
void cs_keys_set_login_idle(CsKeys *keys, guint seconds);

/* For tests and the watchers: put a key into the table as a watcher would (main loop). */
void cs_keys_update_for_test(CsKeys *keys, const char *vendor_id, const char *serial);

G_END_DECLS
