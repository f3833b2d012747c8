/*
 * certseal/driver.h — the vendor key-driver ABI.
 *
 * A driver is a shared object that lets certseald talk to one key technology (PKCS#11,
 * GM/T 0016 SKF, …). Vendors build it out of tree against this header alone (plain C, no
 * GLib) and ship the .so. It exports exactly three symbols (see drivers/driver.map):
 *
 *   const int certseal_driver_abi_major;   must equal CS_DRIVER_ABI_MAJOR of the daemon
 *   const int certseal_driver_abi_minor;   at most the daemon's CS_DRIVER_ABI_MINOR
 *   const CsDriverOps *certseal_driver_get_ops (void);
 *
 * Compatibility: minors only append operations at the end of CsDriverOps, so a daemon
 * never calls past the table of a driver built against an older minor (ops.size tells
 * how long the driver's table is). Every operation returns CS_DRIVER_OK or an error code
 * and fills a CsDriverError; a NULL operation means "not supported".
 *
 * Threads: the daemon calls operations from its own worker threads, never from its main
 * loop, and may call several at once (a watcher thread polls enumerate/pin_status while a
 * request thread logs in; sign runs on yet other threads). A driver serialises what its
 * module needs internally. enumerate should answer from what the driver last saw (it is
 * called about once a second); wait_for_event may block up to its timeout. A call may
 * block while a token is slow, but must return once the token is removed or the driver
 * shut down. PINs passed in are never copied into logs or error messages.
 *
 * Build out of tree with `pkg-config --cflags certseal-driver`; link with
 * `-Wl,--version-script,$(pkg-config --variable=driver_map certseal-driver)` so that only
 * the three symbols above are exported.
 */
#ifndef CERTSEAL_DRIVER_H
#define CERTSEAL_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CS_DRIVER_ABI_MAJOR 1
#define CS_DRIVER_ABI_MINOR 1
/* Minor 1: delete_key (renewal puts a new key pair beside the old one, then removes the
 * old). A minor-0 table ends with delete_object; the daemon never calls past it. */

typedef enum {
	CS_DRIVER_OK = 0,
	CS_DRIVER_ERR_FAILED,	     /* anything else; see the message */
	CS_DRIVER_ERR_NOT_SUPPORTED, /* the token or module cannot do this */
	CS_DRIVER_ERR_PIN_INCORRECT, /* tries_left says how many remain, -1 if unknown */
	CS_DRIVER_ERR_PIN_LOCKED,
	CS_DRIVER_ERR_TOKEN_REMOVED,
	CS_DRIVER_ERR_NOT_FOUND, /* no such token or object */
	CS_DRIVER_ERR_BAD_ARGUMENT,
	CS_DRIVER_ERR_TIMEOUT,
} CsDriverStatus;

typedef struct {
	CsDriverStatus status;
	int tries_left;	   /* for CS_DRIVER_ERR_PIN_INCORRECT, else -1 */
	char message[256]; /* human readable; never contains a PIN */
} CsDriverError;

/* One vendor profile's settings, as the daemon parsed them from vendors.d/<id>.conf. */
typedef struct {
	const char *vendor_id;
	const char *module;	   /* PKCS#11 / SKF module path, may be NULL */
	const char *manufacturer;  /* token match rule, may be NULL */
	const char *model;	   /* token match rule, may be NULL */
	const char *key_algorithm; /* "rsa-2048", "ec-p256", "sm2" */
	unsigned pin_min_length;
	unsigned pin_max_length;
	unsigned pin_max_tries;
	const char *state_dir; /* a directory the driver may use for its own files */
	const char *init_args; /* [token] init_args: module-specific initialisation string
				* (PKCS#11: C_Initialize's pReserved), may be NULL */
} CsDriverConfig;

typedef struct {
	char serial[64]; /* with the driver's name, the token's stable id */
	char label[64];
	char manufacturer[64];
	char model[64];
} CsDriverTokenInfo;

typedef struct {
	int tries_left; /* -1 when the token does not say */
	int count_low;
	int final_try;
	int locked;
	int logged_in;	 /* the user is logged in on this token */
	int initialized; /* 0 for a blank token waiting for init_token */
} CsDriverPinStatus;

typedef struct CsDriverContext CsDriverContext; /* the driver's own state, opaque */

typedef struct {
	size_t size;	  /* sizeof(CsDriverOps) as the driver was built */
	const char *name; /* short name, e.g. "pkcs11"; prefixes every log line */

	/* Load one vendor profile; called once per profile that names this driver. */
	CsDriverStatus (*init)(const CsDriverConfig *config,
			       CsDriverContext **ctx,
			       CsDriverError *err);
	/* Release everything; must return within the daemon's shutdown deadline. */
	void (*shutdown)(CsDriverContext *ctx);

	/* Tokens present now; fills up to @max entries and sets *n_found to how many are
	 * present — more than @max when they do not fit: the daemon asks again with room
	 * for them all. */
	CsDriverStatus (*enumerate)(CsDriverContext *ctx,
				    CsDriverTokenInfo *tokens,
				    size_t max,
				    size_t *n_found,
				    CsDriverError *err);
	/* Block until a token appears or goes, at most @timeout_ms (CS_DRIVER_ERR_TIMEOUT
	 * when nothing happened); NULL = the daemon polls enumerate only. */
	CsDriverStatus (*wait_for_event)(CsDriverContext *ctx, int timeout_ms, CsDriverError *err);

	CsDriverStatus (*pin_status)(CsDriverContext *ctx,
				     const char *serial,
				     CsDriverPinStatus *status,
				     CsDriverError *err);
	CsDriverStatus (*login)(CsDriverContext *ctx,
				const char *serial,
				const char *pin,
				CsDriverError *err);
	CsDriverStatus (*logout)(CsDriverContext *ctx, const char *serial, CsDriverError *err);
	CsDriverStatus (*change_pin)(CsDriverContext *ctx,
				     const char *serial,
				     const char *old_pin,
				     const char *new_pin,
				     CsDriverError *err);
	/* Admin (SO) PIN → new user PIN; clears the lock. */
	CsDriverStatus (*unblock)(CsDriverContext *ctx,
				  const char *serial,
				  const char *so_pin,
				  const char *new_pin,
				  CsDriverError *err);
	/* Prepare a blank token for key making: set the user and the admin PIN. */
	CsDriverStatus (*init_token)(CsDriverContext *ctx,
				     const char *serial,
				     const char *label,
				     const char *user_pin,
				     const char *so_pin,
				     CsDriverError *err);

	/* Generate a key pair; @algorithm as in CsDriverConfig. Needs a login. The public
	 * key comes back as DER SubjectPublicKeyInfo into @spki (capacity *spki_len). */
	CsDriverStatus (*generate_key)(CsDriverContext *ctx,
				       const char *serial,
				       const char *key_id,
				       const char *algorithm,
				       unsigned char *spki,
				       size_t *spki_len,
				       CsDriverError *err);
	CsDriverStatus (*get_public_key)(CsDriverContext *ctx,
					 const char *serial,
					 const char *key_id,
					 unsigned char *spki,
					 size_t *spki_len,
					 CsDriverError *err);
	/* Sign to-be-signed bytes; @digest names the hash ("sha256", "sm3"). RSA keys use
	 * PKCS#1 v1.5; EC and SM2 return a DER SEQUENCE { r, s }. */
	CsDriverStatus (*sign)(CsDriverContext *ctx,
			       const char *serial,
			       const char *key_id,
			       const char *digest,
			       const unsigned char *tbs,
			       size_t tbs_len,
			       unsigned char *sig,
			       size_t *sig_len,
			       CsDriverError *err);

	/* Certificates (DER) and data objects (the e-seal) stored under a label. A get with
	 * a too-small buffer sets *len to the size needed and returns BAD_ARGUMENT. */
	CsDriverStatus (*put_object)(CsDriverContext *ctx,
				     const char *serial,
				     int is_certificate,
				     const char *label,
				     const unsigned char *data,
				     size_t len,
				     CsDriverError *err);
	CsDriverStatus (*get_object)(CsDriverContext *ctx,
				     const char *serial,
				     int is_certificate,
				     const char *label,
				     unsigned char *data,
				     size_t *len,
				     CsDriverError *err);
	CsDriverStatus (*delete_object)(CsDriverContext *ctx,
					const char *serial,
					int is_certificate,
					const char *label,
					CsDriverError *err);

	/* ---- minor 1 ---- */
	/* Delete the key pair @key_id (both halves; the id given to generate_key). Needs a
	 * login. CS_DRIVER_ERR_NOT_FOUND when the token has no key of that id. Keys of other
	 * ids are untouched: the daemon keeps the old key pair until the new one holds a
	 * certificate. */
	CsDriverStatus (*delete_key)(CsDriverContext *ctx,
				     const char *serial,
				     const char *key_id,
				     CsDriverError *err);
} CsDriverOps;

typedef const CsDriverOps *(*CsDriverGetOpsFunc)(void);

#define CS_DRIVER_ENTRY_SYMBOL "certseal_driver_get_ops"
#define CS_DRIVER_ABI_MAJOR_SYMBOL "certseal_driver_abi_major"
#define CS_DRIVER_ABI_MINOR_SYMBOL "certseal_driver_abi_minor"

#if defined(__GNUC__)
#define CS_DRIVER_EXPORT __attribute__((visibility("default")))
#else
#define CS_DRIVER_EXPORT
#endif

/* Use once in a driver to export its version integers. */
#define CS_DRIVER_DEFINE_ABI()                                                                     \
	CS_DRIVER_EXPORT const int certseal_driver_abi_major = CS_DRIVER_ABI_MAJOR;                \
	CS_DRIVER_EXPORT const int certseal_driver_abi_minor = CS_DRIVER_ABI_MINOR

#ifdef __cplusplus
}
#endif

#endif /* CERTSEAL_DRIVER_H */
