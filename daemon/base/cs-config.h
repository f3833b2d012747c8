/*
 * cs-config.h — the daemon's configuration and the vendor profiles (docs/architecture.md §1.7, §4).
 *
 * certseald.conf is a GKeyFile; daemon/certseald.conf documents every key and its
 * default. Unknown groups or keys are refused (a typo should not silently fall back to a
 * default), and every refusal names the file, the line and the problem.
 *
 * Vendor profiles are <vendor_dir>/<id>.conf, one per vendor; the id is the file name
 * without ".conf" ([a-z0-9_-], at most 32 characters).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
	char *id;
	char *path;
	char *name;	      /* [vendor] name, shown to users */
	char *driver;	      /* [vendor] driver: the driver's name, e.g. "pkcs11" */
	char *module;	      /* [token] module: PKCS#11/SKF module path (may be NULL) */
	char *manufacturer;   /* [token] manufacturer match rule (may be NULL) */
	char *model;	      /* [token] model match rule (may be NULL) */
	char *init_args;      /* [token] init_args: module initialisation string (may be NULL) */
	guint pin_min_length; /* [pin] min_length, default 6 */
	guint pin_max_length; /* [pin] max_length, default 16 */
	guint pin_max_tries;  /* [pin] max_tries, default 6 */
	char *key_algorithm;  /* [key] algorithm: rsa-2048 | ec-p256 | sm2, default ec-p256 */
	char *ca_algorithm;   /* [ca] algorithm, same set, default = key algorithm */
	guint validity_days;  /* [ca] validity_days, default 365 */
	char *crl_url;	      /* [ca] crl_url, required, http(s):// */
	GHashTable *prices;   /* [prices] "<kind>.<subject_type>" → guint64 fen (boxed) */

	/* [pin] so_pin_max_tries: the tries of the key's SO PIN, default 10 */
	guint so_pin_max_tries;
	/* [pin] digits_only: PINs of digits only, default false */
	gboolean pin_digits_only;
} CsVendor;

typedef struct {
	char *path;		   /* NULL when only defaults */
	char *state_dir;	   /* [daemon] state_dir, default CS_STATE_DIR */
	char *plugin_dir;	   /* [daemon] plugin_dir, default CS_PLUGIN_DIR */
	char *driver_dir;	   /* [daemon] driver_dir, default CS_DRIVER_DIR */
	char *draw_module;	   /* [daemon] draw_module, default CS_DRAW_MODULE */
	char *vendor_dir;	   /* [daemon] vendor_dir, default CS_VENDOR_DIR */
	gboolean test_mode;	   /* [daemon] test_mode, default false */
	guint shutdown_timeout_ms; /* [daemon] shutdown_timeout_ms, default 5000 */
	/* [daemon] key_login_idle_s: a key's login, held by the uid that logged in, ends after
	 * this many seconds without a call of that uid on it (monotonic clock), default 900 */
	guint key_login_idle_s;
	guint material_max_size; /* [daemon] material_max_size: bytes per upload, default 10 MiB */
	/* [daemon] material_uploads_per_user, material_uploads_max: AttachMaterial calls read
	 * and stored at once, per caller uid (default 2) and in all (default 8); beyond:
	 * RateLimited */
	guint material_uploads_per_user;
	guint material_uploads_max;
	guint checkpoint_interval; /* [ledger] checkpoint_interval, default 1000 */
	char **legacy_uscc;	   /* [validation] legacy_uscc, list, default empty */
	GPtrArray *vendors;	   /* CsVendor*, sorted by id; filled by cs_config_load_vendors() */
	/* The office bus (docs/architecture.md §3.4). */
	char *office_dir;      /* [daemon] office_dir: worker allow-list, default CS_OFFICE_DIR */
	char *office_endpoint; /* [office] endpoint, NULL: ipc://@certseal-<hash of state dir> */
	char *office_events_endpoint; /* [office] events_endpoint, NULL: <endpoint>-events */
	gboolean office_curve;	      /* [office] curve, default true */
	/* [office] sandbox_gateways: the built-in sms/mail/idv/bank sandbox serves tasks no
	 * worker is READY for (test_mode only), default false */
	gboolean office_sandbox_gateways;
	guint office_heartbeat_ms; /* [office] heartbeat_ms, default 2500 */
	guint office_liveness;	   /* [office] liveness: silent beats before a lease is lost, 3 */
	guint office_claim_ms;	   /* [office] claim_ms: a person's claim, default 15 minutes */
	/* Payment notifications (docs/architecture.md §9); unset: that channel is refused. */
	char *alipay_app_id;		  /* [payment] alipay_app_id */
	char *alipay_public_key;	  /* [payment] alipay_public_key: PEM file */
	char *wechat_mchid;		  /* [payment] wechat_mchid */
	char *wechat_appid;		  /* [payment] wechat_appid */
	char *wechat_platform_public_key; /* [payment] wechat_platform_public_key: PEM file */
	char *wechat_platform_serial;	  /* [payment] wechat_platform_serial: that key's serial */
	char **wechat_platform_certificates; /* [payment] wechat_platform_certificates: PEM files */
	char *wechat_apiv3_key_file;	     /* [payment] wechat_apiv3_key_file: 32 bytes, 0600 */
	/* SMS limits (docs/architecture.md §6). */
	guint sms_resend_cooldown_s; /* [sms] resend_cooldown_s, default 60 */
	guint sms_daily_cap;	     /* [sms] daily_cap per phone, default 10 */
	guint sms_code_lifetime_s;   /* [sms] code_lifetime_s, default 300 */
	guint sms_code_max_tries;    /* [sms] code_max_tries: wrong tries, default 5 */
	/* Order query (订单查询): how long a verified query code opens a subject's orders to
	 * the connection, and the codes one uid may ask for per hour and one subject may get
	 * per day (against enumeration). */
	guint query_grant_s;		   /* [sms] query_grant_s, default 1800 */
	guint query_codes_per_uid_hour;	   /* [sms] query_codes_per_uid_hour, default 10 */
	guint query_codes_per_subject_day; /* [sms] query_codes_per_subject_day, default 5 */
	guint auth_code_lifetime_s; /* [auth_code] lifetime_s: an unlock's 授权码, default 600 */
	guint auth_code_max_tries;  /* [auth_code] max_tries: wrong tries, default 5 */
	/* Review deadlines (docs/architecture.md §1.1). */
	char **review_holidays;	      /* [review] holidays: YYYY-MM-DD weekdays off */
	char **review_extra_workdays; /* [review] extra_workdays: weekend days worked */
	guint review_org_days;	      /* [review] org_days, default 5 */
	guint review_person_days;     /* [review] person_days, default 3 */
	/* The e-invoice's seller. */
	char *invoice_seller_name;	 /* [invoice] seller_name */
	char *invoice_seller_tax_id;	 /* [invoice] seller_tax_id */
	guint invoice_tax_rate_permille; /* [invoice] tax_rate_permille, default 60 */
	/* Expiry reminders (docs/architecture.md §1.2): days before and after a certificate's end.
	 */
	GArray *reminder_before_days;	 /* [reminders] before_days (guint), 90;30;7;1 */
	GArray *reminder_after_days;	 /* [reminders] after_days (guint), 30;180;330 */
	guint reminder_check_interval_s; /* [reminders] check_interval_s, default 3600 */
} CsConfig;

/* Defaults, then @path when non-NULL. */
CsConfig *cs_config_load(const char *path, GError **error);
/* Parse and validate every <vendor_dir>/<id>.conf. A missing directory means no vendors. */
gboolean cs_config_load_vendors(CsConfig *config, GError **error);
void cs_config_free(CsConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsConfig, cs_config_free)

/* A vendor id (the name of its profile, <id>.conf, and of its CA folder): 1 to
 * 32 characters of a-z, 0-9, _ and -. */
gboolean cs_config_vendor_id_ok(const char *id);
/* Parse one vendor profile file. */
CsVendor *cs_vendor_load(const char *path, GError **error);
void cs_vendor_free(CsVendor *vendor);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsVendor, cs_vendor_free)
const CsVendor *cs_config_find_vendor(CsConfig *config, const char *id);
/* The kinds the price table names. */
GStrv cs_vendor_get_price_kinds(const CsVendor *vendor);
/* The price in fen of @kind for @subject_type; 0 when the table has no entry. */
guint64 cs_vendor_get_price(const CsVendor *vendor, const char *kind, const char *subject_type);

G_END_DECLS
